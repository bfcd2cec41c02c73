//! The behaviour every [`MetadataStore`] must have, as test functions.
//!
//! Each backend's test file runs every function here against a fresh store (see
//! `core/tests/metadata_sqlite.rs`), so the embedded and the real backends are held to the same
//! contract. A function panics on the first broken expectation. The checks in
//! `conformance/connections.rs` need a second handle on the same database and are not in [`ALL`]:
//! each test file calls them with one.

mod accounts;
mod audit;
mod bots;
mod channels;
mod commands;
mod connections;
mod dm;
mod focus;
mod invites;
mod limits;
mod notifications;
mod retention;
mod subscriptions;
mod workspaces;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

pub use self::accounts::*;
pub use self::audit::*;
pub use self::bots::*;
pub use self::channels::*;
pub use self::commands::*;
pub use self::connections::*;
pub use self::dm::*;
pub use self::focus::*;
pub use self::invites::*;
pub use self::limits::*;
pub use self::notifications::*;
pub use self::retention::*;
pub use self::subscriptions::*;
pub use self::workspaces::*;
use super::{MetadataStore, NewChannel};
use crate::StoreError;
use crate::model::{ChannelAccess, ChannelKind, Role, Session, Workspace};

/// Every check, by name, for backends that run them in a loop.
pub const ALL: &[&str] = &[
    "emails_are_unique_case_insensitively",
    "refresh_rotation_is_compare_and_swap",
    "revoked_sessions_stay_revoked",
    "workspace_creator_is_owner",
    "channel_names_are_unique_per_workspace",
    "channel_access_follows_membership",
    "private_channels_are_listed_to_members_only",
    // accounts
    "profiles_are_updated_and_cleared",
    "password_hashes_are_replaced",
    "active_sessions_are_listed_newest_first",
    "revoking_all_sessions_can_keep_one",
    "disabling_revokes_sessions_and_enabling_clears_the_mark",
    "revoked_access_is_listed_since_a_time",
    // workspaces
    "workspaces_are_renamed",
    "workspace_members_are_listed_with_their_roles",
    "removed_members_leave_every_channel_of_the_workspace",
    // invitations
    "invites_are_found_by_token_hash",
    "pending_invites_exclude_expired_and_accepted_ones",
    "invites_are_accepted_once",
    "accepting_an_invite_keeps_a_stronger_role",
    // channels
    "channel_metadata_is_updated",
    "channel_members_are_added_listed_and_removed",
    "channels_are_muted_per_member",
    "read_positions_never_decrease",
    "channel_standing_reads_the_channel_role_and_membership_together",
    // direct messages
    "direct_messages_are_one_channel_per_set_of_people",
    "concurrent_first_direct_messages_open_one_channel",
    // audit log
    "audit_log_shows_workspace_entries_and_member_logins",
    "audit_log_pages_by_cursor",
    // notifications
    "notify_levels_are_set_per_member",
    "notifications_are_recorded_once_and_paged",
    // focus mode
    "focus_settings_and_sessions_round_trip",
    "focus_holds_while_open_and_digests_exactly_what_it_held",
    "focus_policies_apply_to_the_members_of_their_workspace",
    // bots
    "bots_are_workspace_members_that_cannot_log_in",
    "bot_tokens_are_sessions_that_only_revocation_ends",
    "incoming_webhooks_are_created_listed_and_deleted",
    // outgoing webhooks
    "subscriptions_enqueue_once_and_lease_deliveries",
    "settled_deliveries_are_pruned_by_age_and_pending_ones_kept",
    "slash_commands_are_unique_per_workspace_and_settled_once",
    // retention
    "retention_policies_and_legal_holds_round_trip",
    // workspace limits
    "workspace_limits_round_trip_and_usage_counts_people_and_channels",
    "retention_caps_shorten_policies_and_apply_alone",
];

/// Runs the check called `name`.
pub async fn run(name: &str, store: &dyn MetadataStore) {
    match name {
        "emails_are_unique_case_insensitively" => emails_are_unique_case_insensitively(store).await,
        "refresh_rotation_is_compare_and_swap" => refresh_rotation_is_compare_and_swap(store).await,
        "revoked_sessions_stay_revoked" => revoked_sessions_stay_revoked(store).await,
        "workspace_creator_is_owner" => workspace_creator_is_owner(store).await,
        "channel_names_are_unique_per_workspace" => {
            channel_names_are_unique_per_workspace(store).await
        }
        "channel_access_follows_membership" => channel_access_follows_membership(store).await,
        "private_channels_are_listed_to_members_only" => {
            private_channels_are_listed_to_members_only(store).await
        }
        "profiles_are_updated_and_cleared" => profiles_are_updated_and_cleared(store).await,
        "password_hashes_are_replaced" => password_hashes_are_replaced(store).await,
        "active_sessions_are_listed_newest_first" => {
            active_sessions_are_listed_newest_first(store).await
        }
        "revoking_all_sessions_can_keep_one" => revoking_all_sessions_can_keep_one(store).await,
        "disabling_revokes_sessions_and_enabling_clears_the_mark" => {
            disabling_revokes_sessions_and_enabling_clears_the_mark(store).await
        }
        "revoked_access_is_listed_since_a_time" => {
            revoked_access_is_listed_since_a_time(store).await
        }
        "workspaces_are_renamed" => workspaces_are_renamed(store).await,
        "workspace_members_are_listed_with_their_roles" => {
            workspace_members_are_listed_with_their_roles(store).await
        }
        "removed_members_leave_every_channel_of_the_workspace" => {
            removed_members_leave_every_channel_of_the_workspace(store).await
        }
        "invites_are_found_by_token_hash" => invites_are_found_by_token_hash(store).await,
        "pending_invites_exclude_expired_and_accepted_ones" => {
            pending_invites_exclude_expired_and_accepted_ones(store).await
        }
        "invites_are_accepted_once" => invites_are_accepted_once(store).await,
        "accepting_an_invite_keeps_a_stronger_role" => {
            accepting_an_invite_keeps_a_stronger_role(store).await
        }
        "channel_metadata_is_updated" => channel_metadata_is_updated(store).await,
        "channel_members_are_added_listed_and_removed" => {
            channel_members_are_added_listed_and_removed(store).await
        }
        "channels_are_muted_per_member" => channels_are_muted_per_member(store).await,
        "read_positions_never_decrease" => read_positions_never_decrease(store).await,
        "channel_standing_reads_the_channel_role_and_membership_together" => {
            channel_standing_reads_the_channel_role_and_membership_together(store).await
        }
        "direct_messages_are_one_channel_per_set_of_people" => {
            direct_messages_are_one_channel_per_set_of_people(store).await
        }
        "concurrent_first_direct_messages_open_one_channel" => {
            concurrent_first_direct_messages_open_one_channel(store).await
        }
        "audit_log_shows_workspace_entries_and_member_logins" => {
            audit_log_shows_workspace_entries_and_member_logins(store).await
        }
        "audit_log_pages_by_cursor" => audit_log_pages_by_cursor(store).await,
        "notify_levels_are_set_per_member" => notify_levels_are_set_per_member(store).await,
        "notifications_are_recorded_once_and_paged" => {
            notifications_are_recorded_once_and_paged(store).await
        }
        "focus_settings_and_sessions_round_trip" => {
            focus_settings_and_sessions_round_trip(store).await
        }
        "focus_holds_while_open_and_digests_exactly_what_it_held" => {
            focus_holds_while_open_and_digests_exactly_what_it_held(store).await
        }
        "focus_policies_apply_to_the_members_of_their_workspace" => {
            focus_policies_apply_to_the_members_of_their_workspace(store).await
        }
        "bots_are_workspace_members_that_cannot_log_in" => {
            bots_are_workspace_members_that_cannot_log_in(store).await
        }
        "bot_tokens_are_sessions_that_only_revocation_ends" => {
            bot_tokens_are_sessions_that_only_revocation_ends(store).await
        }
        "incoming_webhooks_are_created_listed_and_deleted" => {
            incoming_webhooks_are_created_listed_and_deleted(store).await
        }
        "subscriptions_enqueue_once_and_lease_deliveries" => {
            subscriptions_enqueue_once_and_lease_deliveries(store).await
        }
        "settled_deliveries_are_pruned_by_age_and_pending_ones_kept" => {
            settled_deliveries_are_pruned_by_age_and_pending_ones_kept(store).await
        }
        "slash_commands_are_unique_per_workspace_and_settled_once" => {
            slash_commands_are_unique_per_workspace_and_settled_once(store).await
        }
        "retention_policies_and_legal_holds_round_trip" => {
            retention_policies_and_legal_holds_round_trip(store).await
        }
        "workspace_limits_round_trip_and_usage_counts_people_and_channels" => {
            workspace_limits_round_trip_and_usage_counts_people_and_channels(store).await
        }
        "retention_caps_shorten_policies_and_apply_alone" => {
            retention_caps_shorten_policies_and_apply_alone(store).await
        }
        other => panic!("no conformance check named {other}"),
    }
}

/// Now at millisecond precision, which every backend keeps exactly: a time written with it reads
/// back equal.
fn now_ms() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
}

/// Lets the clock move on, so that records made before and after have distinct times.
async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
}

/// A workspace owned by `owner` with `members` added in order, each joining at a distinct time.
async fn workspace_with(
    store: &dyn MetadataStore,
    owner: Uuid,
    members: &[(Uuid, Role)],
) -> Workspace {
    let workspace = store.create_workspace("Acme", owner).await.unwrap();
    for (member, role) in members {
        tick().await;
        store
            .set_workspace_member(workspace.id, *member, *role)
            .await
            .unwrap();
    }
    workspace
}

/// Ids in the order the store expects a direct message's members.
fn sorted(ids: &[Uuid]) -> Vec<Uuid> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids
}

async fn user(store: &dyn MetadataStore, name: &str) -> Uuid {
    let email = format!("{name}-{}@example.com", Uuid::new_v4().simple());
    store
        .create_user(&email, name, "$argon2id$fake")
        .await
        .unwrap()
        .id
}

/// An active session created now.
fn session(user_id: Uuid, hash: &str) -> Session {
    let now = Utc::now();
    Session {
        id: Uuid::new_v4(),
        user_id,
        refresh_hash: hash.into(),
        refresh_expires_at: now + Duration::days(7),
        created_at: now,
        revoked_at: None,
    }
}

/// A session created `age` ago that expires `expires_in` from now (negative: already expired).
fn session_aged(user_id: Uuid, age: Duration, expires_in: Duration) -> Session {
    let now = now_ms();
    Session {
        id: Uuid::new_v4(),
        user_id,
        refresh_hash: Uuid::new_v4().simple().to_string(),
        refresh_expires_at: now + expires_in,
        created_at: now - age,
        revoked_at: None,
    }
}

fn channel(workspace_id: Uuid, name: &str, kind: ChannelKind, created_by: Uuid) -> NewChannel {
    NewChannel {
        workspace_id,
        name: name.into(),
        description: String::new(),
        kind,
        created_by,
    }
}

pub async fn emails_are_unique_case_insensitively(store: &dyn MetadataStore) {
    let email = format!("Ada.{}@Example.com", Uuid::new_v4().simple());
    let ada = store.create_user(&email, "Ada", "hash").await.unwrap();
    assert_eq!(ada.email, email.to_lowercase());
    let again = store
        .create_user(&email.to_uppercase(), "Ada 2", "hash")
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let found = store
        .user_by_email(&email.to_uppercase())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.user.id, found.password_hash.as_str()),
        (ada.id, "hash")
    );
    assert_eq!(store.user(ada.id).await.unwrap(), Some(ada));
    assert!(
        store
            .user_by_email("nobody@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn refresh_rotation_is_compare_and_swap(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let s = session(ada, "h1");
    store.create_session(&s).await.unwrap();
    let later = Utc::now() + Duration::days(7);
    assert!(store.rotate_refresh(s.id, "h1", "h2", later).await.unwrap());
    assert!(
        !store.rotate_refresh(s.id, "h1", "h3", later).await.unwrap(),
        "a used hash must not rotate again"
    );
    assert_eq!(
        store.session(s.id).await.unwrap().unwrap().refresh_hash,
        "h2"
    );
    assert!(
        !store
            .rotate_refresh(Uuid::new_v4(), "h2", "h3", later)
            .await
            .unwrap()
    );
}

pub async fn revoked_sessions_stay_revoked(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let s = session(ada, "h1");
    store.create_session(&s).await.unwrap();
    store.revoke_session(s.id, Utc::now()).await.unwrap();
    let stored = store.session(s.id).await.unwrap().unwrap();
    assert!(stored.revoked_at.is_some());
    assert!(!stored.is_active(Utc::now()));
    assert!(
        !store
            .rotate_refresh(s.id, "h1", "h2", Utc::now())
            .await
            .unwrap(),
        "a revoked session cannot be refreshed"
    );
}

pub async fn workspace_creator_is_owner(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let workspace = store.create_workspace("Acme", ada).await.unwrap();
    assert_eq!(
        store.workspace_role(workspace.id, ada).await.unwrap(),
        Some(Role::Owner)
    );
    assert_eq!(store.workspace_role(workspace.id, bob).await.unwrap(), None);
    store
        .set_workspace_member(workspace.id, bob, Role::Guest)
        .await
        .unwrap();
    store
        .set_workspace_member(workspace.id, bob, Role::Member)
        .await
        .unwrap();
    assert_eq!(
        store.workspace_role(workspace.id, bob).await.unwrap(),
        Some(Role::Member)
    );
    let mine = store.workspaces_of(bob).await.unwrap();
    assert_eq!(mine, vec![(workspace.clone(), Role::Member)]);
    assert_eq!(
        store.workspace(workspace.id).await.unwrap(),
        Some(workspace)
    );
}

pub async fn channel_names_are_unique_per_workspace(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let one = store.create_workspace("One", ada).await.unwrap();
    let two = store.create_workspace("Two", ada).await.unwrap();
    let general = store
        .create_channel(&channel(one.id, "general", ChannelKind::Public, ada))
        .await
        .unwrap();
    let again = store
        .create_channel(&channel(one.id, "general", ChannelKind::Private, ada))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    store
        .create_channel(&channel(two.id, "general", ChannelKind::Public, ada))
        .await
        .expect("the same name in another workspace is fine");
    assert_eq!(store.channel(general.id).await.unwrap(), Some(general));
}

pub async fn channel_access_follows_membership(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let eve = user(store, "eve").await;
    let workspace = store.create_workspace("Acme", ada).await.unwrap();
    store
        .set_workspace_member(workspace.id, bob, Role::Member)
        .await
        .unwrap();
    let general = store
        .create_channel(&channel(workspace.id, "general", ChannelKind::Public, ada))
        .await
        .unwrap();
    assert_eq!(
        store.channel_access(general.id, ada).await.unwrap(),
        ChannelAccess::Member { archived: false }
    );
    assert_eq!(
        store.channel_access(general.id, bob).await.unwrap(),
        ChannelAccess::NotMember
    );
    assert_eq!(
        store.channel_access(general.id, eve).await.unwrap(),
        ChannelAccess::Invisible
    );
    assert_eq!(
        store.channel_access(Uuid::new_v4(), ada).await.unwrap(),
        ChannelAccess::Invisible
    );
    store.add_channel_member(general.id, bob).await.unwrap();
    store.add_channel_member(general.id, bob).await.unwrap();
    assert_eq!(
        store.channel_access(general.id, bob).await.unwrap(),
        ChannelAccess::Member { archived: false }
    );
    assert_eq!(store.channel_ids_of(bob).await.unwrap(), vec![general.id]);
    assert!(store.channel_ids_of(eve).await.unwrap().is_empty());
}

pub async fn private_channels_are_listed_to_members_only(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let workspace = store.create_workspace("Acme", ada).await.unwrap();
    store
        .set_workspace_member(workspace.id, bob, Role::Member)
        .await
        .unwrap();
    store
        .create_channel(&channel(workspace.id, "zeta", ChannelKind::Public, ada))
        .await
        .unwrap();
    store
        .create_channel(&channel(workspace.id, "alpha", ChannelKind::Private, ada))
        .await
        .unwrap();
    let names = |listing: Vec<super::ChannelListing>| {
        listing
            .into_iter()
            .map(|l| (l.channel.name, l.membership.is_some()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.channels_visible_to(workspace.id, ada).await.unwrap()),
        vec![("alpha".to_string(), true), ("zeta".to_string(), true)]
    );
    assert_eq!(
        names(store.channels_visible_to(workspace.id, bob).await.unwrap()),
        vec![("zeta".to_string(), false)]
    );
}
