//! Bots and their credentials: bot users, bot tokens with scopes, and incoming webhooks — the
//! records, the spelling of a token, and the scope set (pure; storage is `metadata::BotStore`).
//!
//! A bot is a user of one workspace (a `users` row that cannot log in, plus a `bots` row), a
//! member of it with role `member`, so the permission matrix judges it like a person; its
//! tokens add scopes on top, which can only take rights away. A bot token is long-lived and
//! opaque: `chb_<token id, 32 hex>_<43 random URL-safe characters>`. Only its SHA-256 is stored.
//! Each token is also a login session with the token's id (never refreshable): revoking the token
//! revokes that session, so every check that ends a person's revoked session — the REST token
//! check, the gateway's access notices and its periodic sweep — ends the token's sockets too.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::{new_refresh_token, refresh_token_hash};
use crate::model::User;

/// What every bot token starts with: tells a bot token from a JWT at a glance (and to secret
/// scanners).
pub const BOT_TOKEN_PREFIX: &str = "chb_";

/// The stored `refresh_hash` of a bot token's session: not the form of any SHA-256, so no
/// refresh token can ever match it and a bot token's session is never refreshed into JWTs.
pub const BOT_SESSION_REFRESH_HASH: &str = "bot-token";

/// A bot user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bot {
    /// The bot's user: `id`, `display_name` (the bot's name) and `avatar_url` are the bot's.
    pub user: User,
    /// The one workspace the bot belongs to.
    pub workspace_id: Uuid,
    pub description: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

/// Fields of a bot to create.
#[derive(Clone, Debug)]
pub struct NewBot {
    pub workspace_id: Uuid,
    pub name: String,
    pub description: String,
    pub avatar_url: Option<String>,
    pub created_by: Uuid,
}

/// One right a bot token may carry. A token can never do more than its bot's role allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Read the channels the bot is in: channel details, members, history, events; receive
    /// their events over the WebSocket.
    ChannelsRead,
    /// Post messages (REST and WebSocket `send`), edit and delete its own.
    MessagesWrite,
    /// Add and remove reactions.
    ReactionsWrite,
    /// Create channels, change the ones it manages, add and remove channel members.
    ChannelsManage,
    /// Read user profiles, workspace members and presence.
    UsersRead,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::ChannelsRead,
        Scope::MessagesWrite,
        Scope::ReactionsWrite,
        Scope::ChannelsManage,
        Scope::UsersRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ChannelsRead => "channels:read",
            Scope::MessagesWrite => "messages:write",
            Scope::ReactionsWrite => "reactions:write",
            Scope::ChannelsManage => "channels:manage",
            Scope::UsersRead => "users:read",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of scopes (a bit set: `Copy`, so it travels inside a `Principal`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u16);

impl Scopes {
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn with(self, scope: Scope) -> Scopes {
        Scopes(self.0 | scope.bit())
    }

    /// The scopes named, or the first unknown name.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Scopes, String> {
        names.into_iter().try_fold(Scopes::default(), |set, name| {
            Scope::parse(name)
                .map(|scope| set.with(scope))
                .ok_or_else(|| name.to_string())
        })
    }

    /// Names, in [`Scope::ALL`] order.
    pub fn names(self) -> Vec<&'static str> {
        Scope::ALL
            .into_iter()
            .filter(|s| self.contains(*s))
            .map(Scope::as_str)
            .collect()
    }

    /// The stored form: names joined by spaces (as OAuth spells scopes).
    pub fn to_text(self) -> String {
        self.names().join(" ")
    }

    /// Reads the stored form; unknown names (from a newer version) are ignored, never granted.
    pub fn from_text(text: &str) -> Scopes {
        text.split_whitespace()
            .filter_map(Scope::parse)
            .fold(Scopes::default(), Scopes::with)
    }
}

/// A bot token as listed: everything but the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BotToken {
    /// Also the id of the token's login session.
    pub id: Uuid,
    pub bot_id: Uuid,
    /// The admin's label ("deploy bot on ci-3").
    pub name: String,
    pub scopes: Scopes,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new token: the text shown once, and its stored hash.
pub struct IssuedToken {
    pub token: String,
    pub hash: String,
}

/// Now, at the millisecond precision every metadata backend keeps, so a record created with it
/// reads back equal.
pub fn stored_now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_default()
}

/// Spells a new bot token for token `id`.
pub fn new_bot_token(id: Uuid) -> IssuedToken {
    let token = format!("{BOT_TOKEN_PREFIX}{}_{}", id.simple(), new_refresh_token());
    let hash = refresh_token_hash(&token);
    IssuedToken { token, hash }
}

/// The token id of something spelled like a bot token; `None` for anything else (a JWT).
pub fn bot_token_id(token: &str) -> Option<Uuid> {
    let rest = token.strip_prefix(BOT_TOKEN_PREFIX)?;
    let (id, secret) = (rest.get(..32)?, rest.get(32..)?);
    let secret = secret.strip_prefix('_')?;
    if secret.is_empty() {
        return None;
    }
    Uuid::try_parse(id).ok()
}

/// An incoming webhook: a secret URL that posts into one channel as one bot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingWebhook {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub channel_id: Uuid,
    /// The bot the webhook posts as.
    pub bot_id: Uuid,
    pub name: String,
    /// SHA-256 of the secret part of the URL.
    pub secret_hash: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_id_and_nothing_else_parses_as_one() {
        let id = Uuid::now_v7();
        let issued = new_bot_token(id);
        assert!(issued.token.starts_with("chb_"));
        assert_eq!(bot_token_id(&issued.token), Some(id));
        assert_eq!(issued.hash, refresh_token_hash(&issued.token));
        assert_ne!(
            issued.token,
            new_bot_token(id).token,
            "the secret is random"
        );
        for other in [
            "eyJhbGciOiJIUzI1NiJ9.e30.x",
            "chb_",
            "chb_nothex",
            &format!("chb_{}", id.simple()),
            &format!("chb_{}_", id.simple()),
            &format!("chb_{}x{}", id.simple(), "secret"),
        ] {
            assert_eq!(bot_token_id(other), None, "{other}");
        }
    }

    #[test]
    fn scopes_round_trip_and_unknown_names_are_refused_or_ignored() {
        let scopes = Scopes::parse(["messages:write", "channels:read"]).unwrap();
        assert!(scopes.contains(Scope::ChannelsRead));
        assert!(scopes.contains(Scope::MessagesWrite));
        assert!(!scopes.contains(Scope::ReactionsWrite));
        assert_eq!(scopes.names(), ["channels:read", "messages:write"]);
        assert_eq!(Scopes::from_text(&scopes.to_text()), scopes);
        assert_eq!(Scopes::parse(["admin"]), Err("admin".to_string()));
        assert_eq!(
            Scopes::from_text("admin channels:read"),
            Scopes::default().with(Scope::ChannelsRead)
        );
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
    }

    #[test]
    fn the_session_marker_is_no_refresh_hash() {
        // A refresh hash is 43 URL-safe characters; the marker never equals one.
        assert_ne!(
            BOT_SESSION_REFRESH_HASH.len(),
            refresh_token_hash("x").len()
        );
    }
}
