//! Who is notified of a committed message, and why — a pure function of the event and the
//! channel's members (their mute and level), the author of the thread it replies to, and who is
//! online. No I/O: the notifier gathers these facts and records what this decides.
//!
//! The rules:
//! - Only new messages notify (`kind: message`); edits, deletions and reactions never do.
//! - Only members of the channel are notified, never the author.
//! - A member who muted the channel, or whose level is `nothing`, gets nothing.
//! - Each member gets at most one notification per message, for the strongest reason:
//!   `dm` (every message of a direct-message channel) > `mention` (`<@user-uuid>`) >
//!   `thread_reply` (a reply in the thread of one of their messages) > `channel_mention`
//!   (`@channel`) > `here_mention` (`@here`, members online and not idle) > `message`.
//! - Level `mentions` keeps only the kinds that concern the member: `mention`,
//!   `thread_reply`, `channel_mention`, `here_mention` (and `dm` in a direct-message channel,
//!   whose default level is `all`). Level `all` adds `message` for every other message.

use std::collections::HashSet;

use chorus_protocol::{EventKind, MessageEvent, NotificationKind};
use uuid::Uuid;

use super::NotifyLevel;
use crate::model::ChannelKind;

/// A member of the channel, as the rules see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub user: Uuid,
    pub muted: bool,
    /// The member's level, the channel kind's default already applied.
    pub level: NotifyLevel,
}

/// The facts about a message's channel that the rules read.
#[derive(Clone, Copy, Debug)]
pub struct Audience<'a> {
    pub channel_kind: ChannelKind,
    pub members: &'a [Member],
    /// For a thread reply: who wrote the thread's parent message.
    pub thread_author: Option<Uuid>,
    /// Users online and not idle now (for `@here`).
    pub online: &'a HashSet<Uuid>,
}

/// Whether `text` says `@channel` / `@here` (or Slack's `<!channel>` / `<!here>`), as words.
pub fn broadcast_mentions(text: &str) -> (bool, bool) {
    (
        has_word(text, "@channel") || text.contains("<!channel>"),
        has_word(text, "@here") || text.contains("<!here>"),
    )
}

/// `word` in `text`, not inside a longer word (`@channels`, `a@here`).
fn has_word(text: &str, word: &str) -> bool {
    let is_word_char = |c: char| c.is_alphanumeric() || c == '_' || c == '@';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char)
    })
}

/// Whether `recipients` could notify anyone of `event`, knowing only the channel's kind and the
/// levels its members set explicitly (`explicit`; everyone else has the kind's default) — so the
/// notifier need not read the member list for the common message that concerns nobody: no
/// mention, no `@channel`/`@here`, not a thread reply, outside a direct message, in a channel
/// where nobody asked for level `all`. `false` guarantees `recipients` is empty.
pub fn may_notify_anyone(
    event: &MessageEvent,
    channel_kind: ChannelKind,
    explicit: impl IntoIterator<Item = NotifyLevel>,
) -> bool {
    if event.kind != EventKind::Message {
        return false;
    }
    let (channel_wide, here) = broadcast_mentions(&event.text);
    NotifyLevel::default_for(channel_kind) == NotifyLevel::All
        || channel_wide
        || here
        || !event.mentions.is_empty()
        || event.parent_seq.is_some()
        || explicit.into_iter().any(|level| level == NotifyLevel::All)
}

/// Each member to notify of `event`, with the reason, in the order of `audience.members`.
pub fn recipients(event: &MessageEvent, audience: &Audience<'_>) -> Vec<(Uuid, NotificationKind)> {
    if event.kind != EventKind::Message {
        return Vec::new();
    }
    let (channel_wide, here) = broadcast_mentions(&event.text);
    audience
        .members
        .iter()
        .filter(|member| member.user != event.author_id && !member.muted)
        .filter_map(|member| {
            let kind = strongest_reason(event, audience, member.user, channel_wide, here)?;
            wanted(member.level, kind).then_some((member.user, kind))
        })
        .collect()
}

fn strongest_reason(
    event: &MessageEvent,
    audience: &Audience<'_>,
    user: Uuid,
    channel_wide: bool,
    here: bool,
) -> Option<NotificationKind> {
    if audience.channel_kind == ChannelKind::Dm {
        Some(NotificationKind::Dm)
    } else if event.mentions.contains(&user) {
        Some(NotificationKind::Mention)
    } else if event.parent_seq.is_some() && audience.thread_author == Some(user) {
        Some(NotificationKind::ThreadReply)
    } else if channel_wide {
        Some(NotificationKind::ChannelMention)
    } else if here && audience.online.contains(&user) {
        Some(NotificationKind::HereMention)
    } else {
        Some(NotificationKind::Message)
    }
}

fn wanted(level: NotifyLevel, kind: NotificationKind) -> bool {
    match level {
        NotifyLevel::All => true,
        NotifyLevel::Mentions => kind.is_mention(),
        NotifyLevel::Nothing => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    const AUTHOR: Uuid = Uuid::from_u128(1);
    const BOB: Uuid = Uuid::from_u128(2);
    const CAROL: Uuid = Uuid::from_u128(3);

    fn message(text: &str) -> MessageEvent {
        MessageEvent::new_message(
            Uuid::from_u128(100),
            7,
            Uuid::from_u128(200),
            AUTHOR,
            text,
            DateTime::from_timestamp(0, 0).unwrap(),
            "n",
        )
    }

    fn member(user: Uuid, level: NotifyLevel) -> Member {
        Member {
            user,
            muted: false,
            level,
        }
    }

    fn decide(
        event: &MessageEvent,
        kind: ChannelKind,
        members: &[Member],
    ) -> Vec<(Uuid, NotificationKind)> {
        let online = HashSet::from([BOB]);
        recipients(
            event,
            &Audience {
                channel_kind: kind,
                members,
                thread_author: None,
                online: &online,
            },
        )
    }

    fn everyone(level: NotifyLevel) -> Vec<Member> {
        vec![
            member(AUTHOR, level),
            member(BOB, level),
            member(CAROL, level),
        ]
    }

    #[test]
    fn a_plain_message_in_a_channel_at_default_levels_needs_no_member_list() {
        let plain = message("lunch?");
        assert!(!may_notify_anyone(&plain, ChannelKind::Public, []));
        assert!(!may_notify_anyone(
            &plain,
            ChannelKind::Private,
            [NotifyLevel::Mentions, NotifyLevel::Nothing]
        ));
        assert!(may_notify_anyone(
            &plain,
            ChannelKind::Public,
            [NotifyLevel::All]
        ));
        assert!(may_notify_anyone(&plain, ChannelKind::Dm, []));
        let mut edit = message("lunch? @channel");
        edit.kind = EventKind::Edit;
        assert!(!may_notify_anyone(&edit, ChannelKind::Dm, []));
    }

    /// Over every combination of text, mentions, thread, channel kind and explicit levels: when
    /// the pre-check says nobody, the full decision notifies nobody.
    #[test]
    fn the_pre_check_never_hides_a_recipient() {
        let texts = ["lunch?", "@channel deploy", "<!here> anyone?", "hi <@bob>"];
        let kinds = [ChannelKind::Public, ChannelKind::Private, ChannelKind::Dm];
        let levels = [
            None,
            Some(NotifyLevel::All),
            Some(NotifyLevel::Mentions),
            Some(NotifyLevel::Nothing),
        ];
        let online = HashSet::from([BOB]);
        for text in texts {
            for mentions in [vec![], vec![BOB]] {
                for parent_seq in [None, Some(3)] {
                    for kind in kinds {
                        for bob_level in levels {
                            let mut event = message(text);
                            event.mentions = mentions.clone();
                            event.parent_seq = parent_seq;
                            let default = NotifyLevel::default_for(kind);
                            let members = vec![
                                member(AUTHOR, default),
                                member(BOB, bob_level.unwrap_or(default)),
                                member(CAROL, default),
                            ];
                            let decided = recipients(
                                &event,
                                &Audience {
                                    channel_kind: kind,
                                    members: &members,
                                    thread_author: Some(CAROL),
                                    online: &online,
                                },
                            );
                            if !may_notify_anyone(&event, kind, bob_level) {
                                assert_eq!(
                                    decided,
                                    vec![],
                                    "{text:?} mentions {mentions:?} parent {parent_seq:?} \
                                     {kind:?} bob {bob_level:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_mention_notifies_the_mentioned_member_only() {
        let mut event = message(&format!("hi <@{BOB}>"));
        event.mentions = vec![BOB, Uuid::from_u128(99)]; // 99 is not a member
        let got = decide(
            &event,
            ChannelKind::Public,
            &everyone(NotifyLevel::Mentions),
        );
        assert_eq!(got, vec![(BOB, NotificationKind::Mention)]);
    }

    #[test]
    fn a_plain_message_notifies_only_members_at_level_all() {
        let members = vec![
            member(BOB, NotifyLevel::All),
            member(CAROL, NotifyLevel::Mentions),
        ];
        let got = decide(&message("lunch?"), ChannelKind::Public, &members);
        assert_eq!(got, vec![(BOB, NotificationKind::Message)]);
    }

    #[test]
    fn every_dm_notifies_the_other_members_once() {
        let mut event = message("psst @channel");
        event.mentions = vec![BOB];
        let got = decide(&event, ChannelKind::Dm, &everyone(NotifyLevel::All));
        assert_eq!(
            got,
            vec![(BOB, NotificationKind::Dm), (CAROL, NotificationKind::Dm)]
        );
    }

    #[test]
    fn channel_and_here_reach_everyone_and_the_online() {
        let members = everyone(NotifyLevel::Mentions);
        assert_eq!(
            decide(
                &message("@channel deploy at 5"),
                ChannelKind::Public,
                &members
            ),
            vec![
                (BOB, NotificationKind::ChannelMention),
                (CAROL, NotificationKind::ChannelMention)
            ]
        );
        // Only Bob is online.
        assert_eq!(
            decide(&message("<!here> anyone?"), ChannelKind::Public, &members),
            vec![(BOB, NotificationKind::HereMention)]
        );
        assert!(decide(&message("email@here.com"), ChannelKind::Public, &members).is_empty());
        assert!(decide(&message("@channels"), ChannelKind::Public, &members).is_empty());
    }

    #[test]
    fn a_thread_reply_notifies_the_parent_author() {
        let mut event = message("agreed");
        event.parent_seq = Some(3);
        let members = everyone(NotifyLevel::Mentions);
        let online = HashSet::new();
        let got = recipients(
            &event,
            &Audience {
                channel_kind: ChannelKind::Public,
                members: &members,
                thread_author: Some(CAROL),
                online: &online,
            },
        );
        assert_eq!(got, vec![(CAROL, NotificationKind::ThreadReply)]);
    }

    #[test]
    fn the_strongest_reason_wins_and_only_once() {
        let mut event = message(&format!("@channel <@{BOB}>"));
        event.mentions = vec![BOB];
        let got = decide(&event, ChannelKind::Public, &everyone(NotifyLevel::All));
        assert_eq!(
            got,
            vec![
                (BOB, NotificationKind::Mention),
                (CAROL, NotificationKind::ChannelMention)
            ]
        );
    }

    #[test]
    fn mute_and_nothing_silence_a_member_and_the_author_is_never_told() {
        let mut event = message(&format!("<@{BOB}> <@{CAROL}> <@{AUTHOR}>"));
        event.mentions = vec![BOB, CAROL, AUTHOR];
        let members = vec![
            member(AUTHOR, NotifyLevel::All),
            Member {
                muted: true,
                ..member(BOB, NotifyLevel::All)
            },
            member(CAROL, NotifyLevel::Nothing),
        ];
        assert!(decide(&event, ChannelKind::Public, &members).is_empty());
    }

    #[test]
    fn only_new_messages_notify() {
        let mut edit = message(&format!("<@{BOB}>"));
        edit.mentions = vec![BOB];
        edit.kind = EventKind::Edit;
        edit.target_seq = Some(1);
        assert!(decide(&edit, ChannelKind::Dm, &everyone(NotifyLevel::All)).is_empty());
    }
}
