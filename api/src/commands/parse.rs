//! What a line of text asks for, decided without I/O: whether it is a slash command, which one,
//! and for a built-in command what it should do. Every refusal carries the message the caller
//! is shown. Unit-tested here; `routes/commands.rs` carries the decisions out.

use uuid::Uuid;

/// Longest command name.
pub const MAX_NAME_CHARS: usize = 32;

/// `/name args`, split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// Lowercase, without the slash.
    pub name: String,
    /// The rest of the line, trimmed (may be empty).
    pub args: String,
}

/// Why a line is not a command one can run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("a command starts with /")]
    NoSlash,
    #[error("a command name is 1 to 32 letters, digits, - or _")]
    BadName,
}

/// Splits `/name args`. Names are case-insensitive (`/Topic` is `/topic`).
pub fn parse_invocation(text: &str) -> Result<Invocation, ParseError> {
    let text = text.trim();
    let rest = text.strip_prefix('/').ok_or(ParseError::NoSlash)?;
    let (name, args) = match rest.find(char::is_whitespace) {
        Some(at) => (&rest[..at], rest[at..].trim()),
        None => (rest, ""),
    };
    let name = name.to_lowercase();
    valid_name(&name)?;
    Ok(Invocation {
        name,
        args: args.to_string(),
    })
}

/// A registrable (or invocable) name: 1 to 32 of `a-z`, `0-9`, `-`, `_`.
pub fn valid_name(name: &str) -> Result<(), ParseError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok { Ok(()) } else { Err(ParseError::BadName) }
}

/// The commands every workspace has; their names cannot be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    Topic,
    Invite,
    Me,
    Focus,
    Mute,
}

impl Builtin {
    pub const ALL: [Builtin; 5] = [
        Builtin::Topic,
        Builtin::Invite,
        Builtin::Me,
        Builtin::Focus,
        Builtin::Mute,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Builtin::Topic => "topic",
            Builtin::Invite => "invite",
            Builtin::Me => "me",
            Builtin::Focus => "focus",
            Builtin::Mute => "mute",
        }
    }

    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// One line of help, shown with a usage error.
    pub fn usage(self) -> &'static str {
        match self {
            Builtin::Topic => "/topic <text> sets the channel's topic; /topic alone clears it",
            Builtin::Invite => {
                "/invite <@user-id> | <user-id> | <email> adds someone to the channel"
            }
            Builtin::Me => "/me <text> posts an action, shown as _text_",
            Builtin::Focus => "/focus [minutes] starts focus (default 60); /focus off ends it",
            Builtin::Mute => "/mute mutes the channel for you; /mute off unmutes it",
        }
    }
}

/// Whom `/invite` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invitee {
    User(Uuid),
    Email(String),
}

/// What a built-in command does, with its arguments read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuiltinAction {
    /// Sets the topic (empty: clears it).
    SetTopic(String),
    Invite(Invitee),
    /// Posts `_text_` as the caller.
    Me(String),
    StartFocus {
        minutes: u32,
    },
    EndFocus,
    Mute(bool),
}

/// A built-in command's arguments were not understood: the usage line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("usage: {0}")]
pub struct Usage(pub &'static str);

/// The default length of `/focus` without minutes.
pub const DEFAULT_FOCUS_MINUTES: u32 = 60;

/// Reads a built-in command's arguments.
pub fn builtin_action(builtin: Builtin, args: &str) -> Result<BuiltinAction, Usage> {
    let usage = Usage(builtin.usage());
    let off = args.eq_ignore_ascii_case("off");
    match builtin {
        Builtin::Topic => Ok(BuiltinAction::SetTopic(args.to_string())),
        Builtin::Me if args.is_empty() => Err(usage),
        Builtin::Me => Ok(BuiltinAction::Me(format!("_{args}_"))),
        Builtin::Invite => invitee(args).map(BuiltinAction::Invite).ok_or(usage),
        Builtin::Focus if off => Ok(BuiltinAction::EndFocus),
        Builtin::Focus if args.is_empty() => Ok(BuiltinAction::StartFocus {
            minutes: DEFAULT_FOCUS_MINUTES,
        }),
        Builtin::Focus => args
            .parse::<u32>()
            .ok()
            .filter(|m| *m > 0)
            .map(|minutes| BuiltinAction::StartFocus { minutes })
            .ok_or(usage),
        Builtin::Mute if off => Ok(BuiltinAction::Mute(false)),
        Builtin::Mute if args.is_empty() => Ok(BuiltinAction::Mute(true)),
        Builtin::Mute => Err(usage),
    }
}

/// `<@uuid>`, a bare uuid, or an e-mail address.
fn invitee(args: &str) -> Option<Invitee> {
    if args.split_whitespace().count() != 1 {
        return None;
    }
    let bare = args
        .strip_prefix("<@")
        .and_then(|rest| rest.strip_suffix('>'))
        .unwrap_or(args);
    if let Ok(id) = Uuid::try_parse(bare) {
        return Some(Invitee::User(id));
    }
    let (local, domain) = args.split_once('@')?;
    (!local.is_empty() && domain.contains('.')).then(|| Invitee::Email(args.to_lowercase()))
}

/// Who shows a handler's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    /// Only the caller, as an `ephemeral` frame.
    Ephemeral,
    /// Everyone in the channel: a message posted as the command's bot.
    Channel,
}

impl Visibility {
    /// `ephemeral` (the default) or `channel`.
    pub fn parse(text: Option<&str>) -> Option<Self> {
        match text {
            None | Some("ephemeral") => Some(Visibility::Ephemeral),
            Some("channel") => Some(Visibility::Channel),
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_a_slash_a_name_and_the_rest() {
        assert_eq!(
            parse_invocation("  /Deploy  api  prod  "),
            Ok(Invocation {
                name: "deploy".into(),
                args: "api  prod".into()
            })
        );
        assert_eq!(
            parse_invocation("/me\twaves"),
            Ok(Invocation {
                name: "me".into(),
                args: "waves".into()
            })
        );
        assert_eq!(parse_invocation("/poll").unwrap().args, "");
        assert_eq!(parse_invocation("hello /topic"), Err(ParseError::NoSlash));
        assert_eq!(parse_invocation("/"), Err(ParseError::BadName));
        assert_eq!(parse_invocation("//escaped"), Err(ParseError::BadName));
        assert_eq!(parse_invocation("/dé"), Err(ParseError::BadName));
        assert_eq!(
            parse_invocation(&format!("/{}", "a".repeat(33))),
            Err(ParseError::BadName)
        );
    }

    #[test]
    fn builtins_are_known_by_name() {
        for builtin in Builtin::ALL {
            assert_eq!(Builtin::named(builtin.name()), Some(builtin));
        }
        assert_eq!(Builtin::named("deploy"), None);
    }

    #[test]
    fn builtin_arguments_are_read_or_refused_with_their_usage() {
        use BuiltinAction::*;
        let user = Uuid::from_u128(42);
        let cases = [
            (
                Builtin::Topic,
                "Release day",
                Ok(SetTopic("Release day".into())),
            ),
            (Builtin::Topic, "", Ok(SetTopic(String::new()))),
            (Builtin::Me, "waves", Ok(Me("_waves_".into()))),
            (Builtin::Me, "", Err(Usage(Builtin::Me.usage()))),
            (
                Builtin::Invite,
                &format!("<@{user}>"),
                Ok(Invite(Invitee::User(user))),
            ),
            (
                Builtin::Invite,
                &user.to_string(),
                Ok(Invite(Invitee::User(user))),
            ),
            (
                Builtin::Invite,
                "Bob@Example.com",
                Ok(Invite(Invitee::Email("bob@example.com".into()))),
            ),
            (Builtin::Invite, "bob", Err(Usage(Builtin::Invite.usage()))),
            (
                Builtin::Invite,
                "a@b.c d@e.f",
                Err(Usage(Builtin::Invite.usage())),
            ),
            (Builtin::Invite, "", Err(Usage(Builtin::Invite.usage()))),
            (Builtin::Focus, "", Ok(StartFocus { minutes: 60 })),
            (Builtin::Focus, "25", Ok(StartFocus { minutes: 25 })),
            (Builtin::Focus, "OFF", Ok(EndFocus)),
            (Builtin::Focus, "0", Err(Usage(Builtin::Focus.usage()))),
            (Builtin::Focus, "soon", Err(Usage(Builtin::Focus.usage()))),
            (Builtin::Mute, "", Ok(Mute(true))),
            (Builtin::Mute, "off", Ok(Mute(false))),
            (Builtin::Mute, "loudly", Err(Usage(Builtin::Mute.usage()))),
        ];
        for (builtin, args, expected) in cases {
            assert_eq!(
                builtin_action(builtin, args),
                expected,
                "/{} {args}",
                builtin.name()
            );
        }
    }

    #[test]
    fn names_are_checked_for_registration() {
        assert_eq!(valid_name("deploy-prod_2"), Ok(()));
        assert_eq!(valid_name("Deploy"), Err(ParseError::BadName));
        assert_eq!(valid_name(""), Err(ParseError::BadName));
    }

    #[test]
    fn visibility_defaults_to_ephemeral() {
        assert_eq!(Visibility::parse(None), Some(Visibility::Ephemeral));
        assert_eq!(
            Visibility::parse(Some("channel")),
            Some(Visibility::Channel)
        );
        assert_eq!(Visibility::parse(Some("everyone")), None);
    }
}
