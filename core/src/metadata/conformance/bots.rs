//! Bots: bot users, bot tokens (sessions that only revocation ends), incoming webhooks.

use chrono::Duration;
use uuid::Uuid;

use super::{now_ms, tick, user};
use crate::auth::verify_password;
use crate::bots::{BOT_SESSION_REFRESH_HASH, BotToken, IncomingWebhook, NewBot, Scope, Scopes};
use crate::metadata::MetadataStore;
use crate::model::Role;

fn new_bot(workspace_id: Uuid, created_by: Uuid, name: &str) -> NewBot {
    NewBot {
        workspace_id,
        name: name.into(),
        description: format!("{name} answers questions"),
        avatar_url: Some("https://example.com/bot.png".into()),
        created_by,
    }
}

fn token(bot_id: Uuid, created_by: Uuid, scopes: Scopes) -> BotToken {
    BotToken {
        id: Uuid::now_v7(),
        bot_id,
        name: "ci".into(),
        scopes,
        created_by,
        created_at: now_ms(),
        revoked_at: None,
    }
}

pub async fn bots_are_workspace_members_that_cannot_log_in(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let workspace = store.create_workspace("Acme", ada).await.unwrap();
    let other = store.create_workspace("Other", ada).await.unwrap();
    let helper = store
        .create_bot(&new_bot(workspace.id, ada, "helper"))
        .await
        .unwrap();
    tick().await;
    let second = store
        .create_bot(&new_bot(workspace.id, ada, "second"))
        .await
        .unwrap();
    assert_eq!(helper.user.display_name, "helper");
    assert_eq!(
        helper.user.avatar_url.as_deref(),
        Some("https://example.com/bot.png")
    );
    assert_eq!(
        store.bot(helper.user.id).await.unwrap(),
        Some(helper.clone())
    );
    assert_eq!(
        store.user(helper.user.id).await.unwrap(),
        Some(helper.user.clone())
    );
    assert_eq!(store.bot(ada).await.unwrap(), None, "a person is no bot");
    assert_eq!(
        store.bots_of(workspace.id).await.unwrap(),
        vec![helper.clone(), second]
    );
    assert!(store.bots_of(other.id).await.unwrap().is_empty());
    assert_eq!(
        store
            .workspace_role(workspace.id, helper.user.id)
            .await
            .unwrap(),
        Some(Role::Member)
    );
    assert_eq!(
        store
            .workspace_role(other.id, helper.user.id)
            .await
            .unwrap(),
        None
    );
    let credentials = store
        .user_by_email(&helper.user.email)
        .await
        .unwrap()
        .expect("the bot's user exists");
    for guess in ["", "!bot", "helper"] {
        assert!(!verify_password(guess, &credentials.password_hash));
    }
}

pub async fn bot_tokens_are_sessions_that_only_revocation_ends(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let workspace = store.create_workspace("Acme", ada).await.unwrap();
    let bot = store
        .create_bot(&new_bot(workspace.id, ada, "helper"))
        .await
        .unwrap();
    let other = store
        .create_bot(&new_bot(workspace.id, ada, "other"))
        .await
        .unwrap();
    let scopes = Scopes::default()
        .with(Scope::ChannelsRead)
        .with(Scope::MessagesWrite);
    let first = token(bot.user.id, ada, scopes);
    store.create_bot_token(&first, "hash-1").await.unwrap();
    tick().await;
    let second = token(bot.user.id, ada, Scopes::default().with(Scope::UsersRead));
    store.create_bot_token(&second, "hash-2").await.unwrap();

    assert_eq!(
        store.bot_token(first.id).await.unwrap(),
        Some((first.clone(), "hash-1".to_string()))
    );
    assert_eq!(store.bot_token(Uuid::now_v7()).await.unwrap(), None);
    assert_eq!(
        store.bot_tokens_of(bot.user.id).await.unwrap(),
        vec![second.clone(), first.clone()],
        "newest first"
    );
    let session = store.session(first.id).await.unwrap().expect("a session");
    assert_eq!(session.user_id, bot.user.id);
    assert_eq!(session.refresh_hash, BOT_SESSION_REFRESH_HASH);
    assert!(session.is_active(now_ms() + Duration::days(3650)));

    // Only the bot's own, live token is revoked, once.
    let at = now_ms();
    assert!(
        !store
            .revoke_bot_token(other.user.id, first.id, at)
            .await
            .unwrap()
    );
    assert!(
        store
            .revoke_bot_token(bot.user.id, first.id, at)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_bot_token(bot.user.id, first.id, at)
            .await
            .unwrap()
    );
    let (revoked, _) = store.bot_token(first.id).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(at));
    assert!(
        !store
            .session(first.id)
            .await
            .unwrap()
            .unwrap()
            .is_active(at)
    );
    assert!(
        store
            .access_revoked_since(at - Duration::seconds(1))
            .await
            .unwrap()
            .iter()
            .any(|r| r.session_id == Some(first.id) && r.user_id == bot.user.id),
        "the gateways' sweep sees a revoked token"
    );
    assert!(
        store
            .bot_token(second.id)
            .await
            .unwrap()
            .unwrap()
            .0
            .revoked_at
            .is_none()
    );
    // A person's session is no bot token.
    let session = super::session(ada, "refresh");
    store.create_session(&session).await.unwrap();
    assert!(!store.revoke_bot_token(ada, session.id, at).await.unwrap());
}

pub async fn incoming_webhooks_are_created_listed_and_deleted(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let workspace = store.create_workspace("Acme", ada).await.unwrap();
    let bot = store
        .create_bot(&new_bot(workspace.id, ada, "hooks"))
        .await
        .unwrap();
    let channel = store
        .create_channel(&super::channel(
            workspace.id,
            "deploys",
            crate::model::ChannelKind::Public,
            ada,
        ))
        .await
        .unwrap();
    let hook = |name: &str| IncomingWebhook {
        id: Uuid::now_v7(),
        workspace_id: workspace.id,
        channel_id: channel.id,
        bot_id: bot.user.id,
        name: name.into(),
        secret_hash: format!("secret-{name}"),
        created_by: ada,
        created_at: now_ms(),
    };
    let first = hook("ci");
    store.create_webhook(&first).await.unwrap();
    tick().await;
    let second = hook("alerts");
    store.create_webhook(&second).await.unwrap();
    assert_eq!(store.webhook(first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(
        store.webhooks_of(channel.id).await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    assert!(store.delete_webhook(first.id).await.unwrap());
    assert!(!store.delete_webhook(first.id).await.unwrap());
    assert_eq!(store.webhook(first.id).await.unwrap(), None);
    assert_eq!(store.webhooks_of(channel.id).await.unwrap(), vec![second]);
}
