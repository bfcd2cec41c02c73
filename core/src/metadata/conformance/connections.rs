//! Checks that need two handles on one database: what one handle writes, the other must see.
//!
//! Each handle is its own connection pool, so the reads below go through other connections than
//! the writes — what a pooled, file-backed SQLite store (and any server database) does in
//! production, where the API writes on one connection and the next request reads on another.

use super::invites::invite;
use super::{channel, now_ms, user};
use crate::metadata::MetadataStore;
use crate::model::{ChannelKind, ChannelUpdate, ProfileUpdate, Role};

/// Every update that answers with the changed row (`UPDATE … RETURNING` in SQL) is kept: the
/// other handle reads it back, and can write after it (nothing was left holding the database).
///
/// `reader` is a second handle on `writer`'s database; a backend with no second way in (SQLite
/// in memory) passes the same store twice.
pub async fn updates_are_seen_through_other_connections(
    writer: &dyn MetadataStore,
    reader: &dyn MetadataStore,
) {
    let ada = user(writer, "ada").await;
    let bob = user(writer, "bob").await;
    let workspace = writer.create_workspace("Acme", ada).await.unwrap();
    let general = writer
        .create_channel(&channel(workspace.id, "general", ChannelKind::Public, ada))
        .await
        .unwrap();

    let profile = writer
        .update_profile(
            ada,
            &ProfileUpdate {
                display_name: Some("Ada L.".into()),
                ..ProfileUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        reader.user(ada).await.unwrap(),
        Some(profile),
        "update_profile"
    );

    let renamed = writer
        .rename_workspace(workspace.id, "Acme Corp")
        .await
        .unwrap();
    assert_eq!(
        reader.workspace(workspace.id).await.unwrap(),
        Some(renamed),
        "rename_workspace"
    );

    let topical = writer
        .update_channel(
            general.id,
            &ChannelUpdate {
                topic: Some(("Launch day".into(), ada, now_ms())),
                ..ChannelUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        reader.channel(general.id).await.unwrap(),
        Some(topical),
        "update_channel"
    );

    let sent = invite(workspace.id, Role::Member, ada, now_ms());
    writer.create_invite(&sent).await.unwrap();
    assert!(writer.accept_invite(sent.id, bob, now_ms()).await.unwrap());
    assert_eq!(
        reader.workspace_role(workspace.id, bob).await.unwrap(),
        Some(Role::Member),
        "accept_invite"
    );
    let accepted = reader
        .invite_by_token_hash(&sent.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(accepted.accepted_by, Some(bob), "accept_invite");

    assert_eq!(writer.mark_read(general.id, ada, 7).await.unwrap(), 7);
    assert_eq!(
        reader
            .channel_membership(general.id, ada)
            .await
            .unwrap()
            .map(|m| m.last_read_seq),
        Some(7),
        "mark_read"
    );

    // The other handle writes too, and the first one sees that.
    let back = reader
        .update_profile(
            ada,
            &ProfileUpdate {
                display_name: Some("Ada".into()),
                ..ProfileUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(writer.user(ada).await.unwrap(), Some(back));
}
