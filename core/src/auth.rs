//! Credentials: Argon2id password hashes, JWT access tokens and opaque refresh tokens.
//!
//! An access token (HS256 JWT, 1 h) names the user (`sub`) and the session (`sid`). Every check of
//! an access token also checks that its session is still active, so logging out (revoking the
//! session) stops its access tokens at their next use, not only at expiry. A refresh token (7 d) is
//! 32 random bytes; only its SHA-256 is stored, and it is replaced on every use.

use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::bots::{Scopes, bot_token_id};
use crate::{MetadataStore, StoreError};

/// Lifetime of an access token (RF-01.3).
pub const ACCESS_TTL: Duration = Duration::from_secs(3600);
/// Lifetime of a refresh token (RF-01.3).
pub const REFRESH_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Who is calling: the result of a successful token check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub session_id: Uuid,
    /// For a bot token, its scopes (the session is the token's); `None` for a person.
    pub bot_scopes: Option<Scopes>,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("token is malformed or its signature is wrong")]
    Invalid,
    #[error("token has expired")]
    Expired,
    #[error("session has been revoked")]
    Revoked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Serialize, Deserialize)]
struct AccessClaims {
    sub: Uuid,
    sid: Uuid,
    iat: i64,
    exp: i64,
}

/// Hashes a password with Argon2id and a random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(StoreError::backend)
}

/// Checks a password against a PHC string. A malformed stored hash counts as a mismatch.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new random refresh token (43 URL-safe characters).
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a refresh token.
pub fn refresh_token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    URL_SAFE_NO_PAD.encode(digest)
}

/// Issues and checks access tokens against the sessions of a metadata store.
#[derive(Clone)]
pub struct Authenticator {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    store: Arc<dyn MetadataStore>,
}

impl Authenticator {
    /// `secret` signs the tokens (HS256); every node of a deployment must share it.
    pub fn new(secret: &[u8], store: Arc<dyn MetadataStore>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Authenticator {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            store,
        }
    }

    /// The metadata store sessions are checked against.
    pub fn store(&self) -> &Arc<dyn MetadataStore> {
        &self.store
    }

    /// An access token for a session, valid for `ttl` from `now`.
    pub fn issue_access(&self, principal: Principal, now: DateTime<Utc>, ttl: Duration) -> String {
        let claims = AccessClaims {
            sub: principal.user_id,
            sid: principal.session_id,
            iat: now.timestamp(),
            exp: now.timestamp() + ttl.as_secs() as i64,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with a byte secret cannot fail")
    }

    /// Checks signature, expiry and that the session is still active. A bot token (`chb_…`) is
    /// checked against its stored hash and its session instead, and carries its scopes.
    pub async fn verify_access(&self, token: &str) -> Result<Principal, AuthError> {
        if let Some(id) = bot_token_id(token) {
            return self.verify_bot_token(id, token).await;
        }
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })?
            .claims;
        let session = self
            .store
            .session(claims.sid)
            .await?
            .ok_or(AuthError::Revoked)?;
        if session.user_id != claims.sub || !session.is_active(Utc::now()) {
            return Err(AuthError::Revoked);
        }
        Ok(Principal {
            user_id: claims.sub,
            session_id: claims.sid,
            bot_scopes: None,
        })
    }

    async fn verify_bot_token(&self, id: Uuid, token: &str) -> Result<Principal, AuthError> {
        let (record, hash) = self.store.bot_token(id).await?.ok_or(AuthError::Invalid)?;
        // Both sides are digests of a secret: comparing them leaks nothing about the token.
        if hash != refresh_token_hash(token) {
            return Err(AuthError::Invalid);
        }
        let session = self.store.session(id).await?.ok_or(AuthError::Revoked)?;
        if record.revoked_at.is_some() || !session.is_active(Utc::now()) {
            return Err(AuthError::Revoked);
        }
        Ok(Principal {
            user_id: record.bot_id,
            session_id: id,
            bot_scopes: Some(record.scopes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_verifies_only_the_right_password() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong horse", &phc));
        assert!(!verify_password("correct horse", "not a phc string"));
    }

    #[test]
    fn refresh_tokens_are_random_and_hash_stably() {
        let a = new_refresh_token();
        let b = new_refresh_token();
        assert_ne!(a, b);
        assert_eq!(refresh_token_hash(&a), refresh_token_hash(&a));
        assert_ne!(refresh_token_hash(&a), refresh_token_hash(&b));
    }
}
