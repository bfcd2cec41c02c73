//! The priority score of a notification during focus, and whether it gets through.
//!
//! The score is a number from 0 to 100, the sum of (capped at 100):
//!
//! | part | points |
//! | --- | --- |
//! | kind: `mention` 50, `dm` 40, `thread_reply` 30, `channel_mention` 20, `here_mention` 20, `message` 10, `invitation` 10 | base |
//! | the sender is one of the rules' `senders` | +40 |
//! | the rules let mentions through and the kind is `mention` | +30 |
//! | the channel is one of the rules' `channels` | +30 |
//! | the text contains one of the rules' `keywords` (case-insensitive, whole text) | +30 |
//!
//! A notification is delivered during focus when its score is at least `min_priority` (default
//! [`DEFAULT_MIN_PRIORITY`]); otherwise it is held for the digest. With the defaults, a DM from a
//! named sender (80), a mention when mentions are let through (80), anything in a named
//! channel that also mentions or DMs (≥ 50 + 30) gets through; a DM from anyone else (40) or
//! `@channel` (20) waits. The score is the extension point for smarter ranking: whatever computes
//! it, the rest of focus mode only compares it with `min_priority`.

use chorus_protocol::NotificationKind;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The threshold a user who sets none gets.
pub const DEFAULT_MIN_PRIORITY: u8 = 70;

/// Most senders, channels and keywords a rule set holds (each).
pub const MAX_RULE_ITEMS: usize = 50;

/// What gets through a user's focus.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FocusRules {
    /// People whose messages get through (DMs from them score 80).
    #[serde(default)]
    pub senders: Vec<Uuid>,
    /// Let mentions of the user through.
    #[serde(default)]
    pub mentions: bool,
    /// Channels whose notifications score higher.
    #[serde(default)]
    pub channels: Vec<Uuid>,
    /// Words that make a notification urgent (matched case-insensitively in its text).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Deliver at or above this score (0–100); `None` for [`DEFAULT_MIN_PRIORITY`].
    #[serde(default)]
    pub min_priority: Option<u8>,
}

impl FocusRules {
    pub fn threshold(&self) -> u8 {
        self.min_priority.unwrap_or(DEFAULT_MIN_PRIORITY)
    }
}

/// What the score is computed from.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    pub kind: NotificationKind,
    pub actor: Uuid,
    pub channel: Option<Uuid>,
    pub text: &'a str,
}

fn base(kind: NotificationKind) -> u32 {
    match kind {
        NotificationKind::Mention => 50,
        NotificationKind::Dm => 40,
        NotificationKind::ThreadReply => 30,
        NotificationKind::ChannelMention | NotificationKind::HereMention => 20,
        NotificationKind::Message | NotificationKind::Invitation => 10,
    }
}

/// The score of `candidate` under `rules` (see the module's table).
pub fn priority_score(candidate: &Candidate<'_>, rules: &FocusRules) -> u8 {
    let mut score = base(candidate.kind);
    if rules.senders.contains(&candidate.actor) {
        score += 40;
    }
    if rules.mentions && candidate.kind == NotificationKind::Mention {
        score += 30;
    }
    if candidate
        .channel
        .is_some_and(|channel| rules.channels.contains(&channel))
    {
        score += 30;
    }
    let text = candidate.text.to_lowercase();
    if rules
        .keywords
        .iter()
        .any(|k| !k.is_empty() && text.contains(&k.to_lowercase()))
    {
        score += 30;
    }
    score.min(100) as u8
}

/// Whether a notification with this score reaches a user in focus now.
pub fn passes(score: u8, rules: &FocusRules) -> bool {
    score >= rules.threshold()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOSS: Uuid = Uuid::from_u128(1);
    const PEER: Uuid = Uuid::from_u128(2);
    const INCIDENTS: Uuid = Uuid::from_u128(10);

    fn candidate(kind: NotificationKind, actor: Uuid, text: &str) -> Candidate<'_> {
        Candidate {
            kind,
            actor,
            channel: Some(Uuid::from_u128(11)),
            text,
        }
    }

    fn rules() -> FocusRules {
        FocusRules {
            senders: vec![BOSS],
            mentions: true,
            channels: vec![INCIDENTS],
            keywords: vec!["Outage".into()],
            min_priority: None,
        }
    }

    #[test]
    fn a_dm_from_a_named_sender_passes_and_from_anyone_else_waits() {
        let boss = priority_score(&candidate(NotificationKind::Dm, BOSS, "hi"), &rules());
        let peer = priority_score(&candidate(NotificationKind::Dm, PEER, "hi"), &rules());
        assert_eq!((boss, peer), (80, 40));
        assert!(passes(boss, &rules()) && !passes(peer, &rules()));
    }

    #[test]
    fn mentions_pass_only_when_the_rules_let_them() {
        let mention = candidate(NotificationKind::Mention, PEER, "look");
        assert_eq!(priority_score(&mention, &rules()), 80);
        let strict = FocusRules {
            mentions: false,
            ..rules()
        };
        assert_eq!(priority_score(&mention, &strict), 50);
        assert!(!passes(50, &strict));
    }

    #[test]
    fn channels_and_keywords_raise_the_score_and_it_stays_within_100() {
        let everyone = candidate(NotificationKind::ChannelMention, PEER, "@channel lunch");
        assert_eq!(priority_score(&everyone, &rules()), 20);
        let urgent = candidate(
            NotificationKind::ChannelMention,
            PEER,
            "@channel OUTAGE now",
        );
        assert_eq!(priority_score(&urgent, &rules()), 50);
        let in_incidents = Candidate {
            channel: Some(INCIDENTS),
            ..urgent
        };
        assert_eq!(priority_score(&in_incidents, &rules()), 80);
        let everything = Candidate {
            kind: NotificationKind::Mention,
            actor: BOSS,
            ..in_incidents
        };
        assert_eq!(priority_score(&everything, &rules()), 100);
    }

    #[test]
    fn the_threshold_is_the_users_or_the_default() {
        assert!(passes(70, &FocusRules::default()));
        assert!(!passes(69, &FocusRules::default()));
        let lenient = FocusRules {
            min_priority: Some(0),
            ..FocusRules::default()
        };
        assert!(passes(0, &lenient));
    }
}
