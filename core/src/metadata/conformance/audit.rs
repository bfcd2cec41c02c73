//! The audit log: what a workspace sees, and paging.

use chrono::Duration;
use serde_json::json;
use uuid::Uuid;

use super::{now_ms, user, workspace_with};
use crate::metadata::MetadataStore;
use crate::model::{AuditEntry, Role};

fn entry(workspace_id: Option<Uuid>, actor_id: Option<Uuid>, action: &str) -> AuditEntry {
    AuditEntry {
        id: Uuid::now_v7(),
        workspace_id,
        actor_id,
        action: action.into(),
        target_id: None,
        details: json!({}),
        at: now_ms(),
    }
}

pub async fn audit_log_shows_workspace_entries_and_member_logins(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let eve = user(store, "eve").await;
    let acme = workspace_with(store, ada, &[(bob, Role::Member)]).await;
    let globex = workspace_with(store, eve, &[]).await;

    let role_changed = AuditEntry {
        target_id: Some(bob),
        details: json!({"old": "guest", "new": "member", "nested": {"n": 1, "ok": true}}),
        at: now_ms() - Duration::seconds(1),
        ..entry(Some(acme.id), Some(ada), "role_changed")
    };
    let other_workspace = entry(Some(globex.id), Some(eve), "channel_archived");
    let bob_login = AuditEntry {
        details: json!({"ip": "192.0.2.1"}),
        ..entry(None, Some(bob), "login_succeeded")
    };
    let eve_login = entry(None, Some(eve), "login_succeeded");
    let unknown_failure = AuditEntry {
        details: json!({"email": "nobody@example.com"}),
        ..entry(None, None, "login_failed")
    };
    for e in [
        &role_changed,
        &other_workspace,
        &bob_login,
        &eve_login,
        &unknown_failure,
    ] {
        store.append_audit(e).await.unwrap();
    }

    assert_eq!(
        store.audit_log(acme.id, None, 50).await.unwrap(),
        vec![bob_login.clone(), role_changed.clone()],
        "newest first: the workspace's own entries and its members' logins"
    );
    assert_eq!(
        store.audit_log(globex.id, None, 50).await.unwrap(),
        vec![eve_login.clone(), other_workspace.clone()]
    );

    assert!(store.remove_workspace_member(acme.id, bob).await.unwrap());
    assert_eq!(
        store.audit_log(acme.id, None, 50).await.unwrap(),
        vec![role_changed],
        "a former member's logins are no longer shown"
    );
    assert!(
        store
            .audit_log(Uuid::new_v4(), None, 50)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn audit_log_pages_by_cursor(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let acme = workspace_with(store, ada, &[]).await;
    let mut entries = Vec::new();
    for n in 0..5 {
        let e = AuditEntry {
            details: json!({ "n": n }),
            ..entry(Some(acme.id), Some(ada), "channel_archived")
        };
        store.append_audit(&e).await.unwrap();
        entries.push(e);
    }
    entries.reverse();

    let first = store.audit_log(acme.id, None, 2).await.unwrap();
    assert_eq!(first, entries[0..2]);
    let second = store
        .audit_log(acme.id, Some(first[1].id), 2)
        .await
        .unwrap();
    assert_eq!(second, entries[2..4]);
    let third = store
        .audit_log(acme.id, Some(second[1].id), 2)
        .await
        .unwrap();
    assert_eq!(third, entries[4..5]);
    assert!(
        store
            .audit_log(acme.id, Some(third[0].id), 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.audit_log(acme.id, None, 0).await.unwrap(), vec![]);
}
