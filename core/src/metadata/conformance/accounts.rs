//! Profiles, passwords, sessions and disabled accounts.

use chrono::Duration;
use uuid::Uuid;

use super::{now_ms, session, session_aged, user};
use crate::StoreError;
use crate::metadata::MetadataStore;
use crate::model::{ProfileUpdate, RevokedAccess};

pub async fn profiles_are_updated_and_cleared(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let created = store.user(ada).await.unwrap().unwrap();
    assert_eq!(
        (&created.avatar_url, &created.time_zone, created.disabled_at),
        (&None, &None, None),
        "a new user has no profile extras"
    );

    let updated = store
        .update_profile(
            ada,
            &ProfileUpdate {
                display_name: Some("Ada L.".into()),
                avatar_url: Some(Some("https://example.com/ada.png".into())),
                time_zone: Some(Some("Europe/Paris".into())),
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.display_name, "Ada L.");
    assert_eq!(
        updated.avatar_url.as_deref(),
        Some("https://example.com/ada.png")
    );
    assert_eq!(updated.time_zone.as_deref(), Some("Europe/Paris"));
    assert_eq!(
        (updated.id, updated.email.as_str()),
        (ada, created.email.as_str())
    );
    assert_eq!(store.user(ada).await.unwrap().as_ref(), Some(&updated));
    let credentials = store.user_by_email(&created.email).await.unwrap().unwrap();
    assert_eq!(credentials.user, updated, "login reads the profile too");

    let unchanged = store
        .update_profile(ada, &ProfileUpdate::default())
        .await
        .unwrap();
    assert_eq!(unchanged, updated, "an empty update changes nothing");

    let cleared = store
        .update_profile(
            ada,
            &ProfileUpdate {
                avatar_url: Some(None),
                ..ProfileUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cleared.avatar_url, None);
    assert_eq!(
        (cleared.display_name.as_str(), cleared.time_zone.as_deref()),
        ("Ada L.", Some("Europe/Paris")),
        "fields left as None keep their value"
    );
    let cleared = store
        .update_profile(
            ada,
            &ProfileUpdate {
                time_zone: Some(None),
                ..ProfileUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cleared.time_zone, None);
    assert_eq!(store.user(ada).await.unwrap(), Some(cleared));

    let missing = store
        .update_profile(Uuid::new_v4(), &ProfileUpdate::default())
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub async fn password_hashes_are_replaced(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let email = store.user(ada).await.unwrap().unwrap().email;
    store.set_password_hash(ada, "$argon2id$new").await.unwrap();
    let credentials = store.user_by_email(&email).await.unwrap().unwrap();
    assert_eq!(credentials.password_hash, "$argon2id$new");
    let missing = store.set_password_hash(Uuid::new_v4(), "$argon2id$x").await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub async fn active_sessions_are_listed_newest_first(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let week = Duration::days(7);
    let oldest = session_aged(ada, Duration::hours(3), week);
    let newest = session_aged(ada, Duration::hours(1), week);
    let middle = session_aged(ada, Duration::hours(2), week);
    let expired = session_aged(ada, Duration::hours(4), -Duration::minutes(1));
    let revoked = session_aged(ada, Duration::minutes(30), week);
    let someone_else = session_aged(bob, Duration::minutes(10), week);
    for s in [&oldest, &newest, &middle, &expired, &revoked, &someone_else] {
        store.create_session(s).await.unwrap();
    }
    store.revoke_session(revoked.id, now_ms()).await.unwrap();

    let active = store.active_sessions_of(ada, now_ms()).await.unwrap();
    assert_eq!(active, vec![newest.clone(), middle.clone(), oldest.clone()]);
    let later = now_ms() + week + Duration::minutes(1);
    assert!(
        store
            .active_sessions_of(ada, later)
            .await
            .unwrap()
            .is_empty(),
        "every session has expired a week later"
    );
    assert!(
        store
            .active_sessions_of(Uuid::new_v4(), now_ms())
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn revoking_all_sessions_can_keep_one(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let current = session(ada, "current");
    let phone = session(ada, "phone");
    let laptop = session(ada, "laptop");
    let revoked_earlier = session(ada, "old");
    let bobs = session(bob, "bob");
    for s in [&current, &phone, &laptop, &revoked_earlier, &bobs] {
        store.create_session(s).await.unwrap();
    }
    let earlier = now_ms() - Duration::minutes(5);
    store
        .revoke_session(revoked_earlier.id, earlier)
        .await
        .unwrap();

    let at = now_ms();
    let revoked = store
        .revoke_sessions_of(ada, Some(current.id), at)
        .await
        .unwrap();
    assert_eq!(revoked, 2, "phone and laptop");
    let active: Vec<_> = store
        .active_sessions_of(ada, at)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(active, vec![current.id]);
    for s in [&phone, &laptop] {
        assert_eq!(
            store.session(s.id).await.unwrap().unwrap().revoked_at,
            Some(at)
        );
    }
    assert_eq!(
        store
            .session(revoked_earlier.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(earlier),
        "an already revoked session keeps its revocation time"
    );
    assert!(
        store
            .session(bobs.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none(),
        "another user's sessions are untouched"
    );

    assert_eq!(store.revoke_sessions_of(ada, None, at).await.unwrap(), 1);
    assert!(store.active_sessions_of(ada, at).await.unwrap().is_empty());
    assert_eq!(store.revoke_sessions_of(ada, None, at).await.unwrap(), 0);
}

pub async fn disabling_revokes_sessions_and_enabling_clears_the_mark(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let one = session(ada, "one");
    let two = session(ada, "two");
    let bobs = session(bob, "bob");
    for s in [&one, &two, &bobs] {
        store.create_session(s).await.unwrap();
    }

    let at = now_ms();
    store.set_user_disabled(ada, Some(at)).await.unwrap();
    assert_eq!(
        store.user(ada).await.unwrap().unwrap().disabled_at,
        Some(at)
    );
    for s in [&one, &two] {
        assert_eq!(
            store.session(s.id).await.unwrap().unwrap().revoked_at,
            Some(at)
        );
    }
    assert!(store.active_sessions_of(ada, at).await.unwrap().is_empty());
    assert!(
        store
            .session(bobs.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none(),
        "another user's sessions are untouched"
    );
    assert!(
        !store
            .rotate_refresh(one.id, "one", "again", at + Duration::days(1))
            .await
            .unwrap(),
        "a disabled user's session cannot be refreshed"
    );
    let email = store.user(ada).await.unwrap().unwrap().email;
    assert_eq!(
        store
            .user_by_email(&email)
            .await
            .unwrap()
            .unwrap()
            .user
            .disabled_at,
        Some(at),
        "login sees that the account is disabled"
    );

    store.set_user_disabled(ada, None).await.unwrap();
    assert_eq!(store.user(ada).await.unwrap().unwrap().disabled_at, None);
    assert!(
        store
            .active_sessions_of(ada, now_ms())
            .await
            .unwrap()
            .is_empty(),
        "re-enabling does not bring sessions back"
    );

    let missing = store.set_user_disabled(Uuid::new_v4(), Some(at)).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub async fn revoked_access_is_listed_since_a_time(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bob = user(store, "bob").await;
    let cal = user(store, "cal").await;
    let (old, new, kept) = (
        session(ada, "old"),
        session(ada, "new"),
        session(ada, "kept"),
    );
    let (bobs, cals) = (session(bob, "bob"), session(cal, "cal"));
    for s in [&old, &new, &kept, &bobs, &cals] {
        store.create_session(s).await.unwrap();
    }
    let since = now_ms();
    store
        .revoke_session(old.id, since - Duration::minutes(1))
        .await
        .unwrap();
    store.revoke_session(new.id, since).await.unwrap();
    let disabled_at = since + Duration::seconds(1);
    store
        .set_user_disabled(bob, Some(disabled_at))
        .await
        .unwrap();

    // The suite shares a store between checks: look only at this check's users.
    let ours = |at: chrono::DateTime<chrono::Utc>| async move {
        let mut listed: Vec<RevokedAccess> = store
            .access_revoked_since(at)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| [ada, bob, cal].contains(&r.user_id))
            .collect();
        listed.sort_by_key(|r| (r.at, r.user_id, r.session_id));
        listed
    };
    let revoked = |user_id, session_id: Option<uuid::Uuid>, at| RevokedAccess {
        user_id,
        session_id,
        at,
    };
    let mut expected = vec![
        revoked(ada, Some(new.id), since),
        revoked(bob, None, disabled_at),
        revoked(bob, Some(bobs.id), disabled_at),
    ];
    expected.sort_by_key(|r| (r.at, r.user_id, r.session_id));
    assert_eq!(
        ours(since).await,
        expected,
        "from `since` on (inclusive): a revoked session, a disabled user and the sessions that \
         disabling revoked; not what was revoked before, nor active sessions"
    );
    assert!(
        ours(disabled_at + Duration::milliseconds(1))
            .await
            .is_empty()
    );

    store.set_user_disabled(bob, None).await.unwrap();
    assert_eq!(
        ours(since).await,
        vec![
            revoked(ada, Some(new.id), since),
            revoked(bob, Some(bobs.id), disabled_at)
        ],
        "a user enabled again is not listed as disabled; their revoked sessions stay revoked"
    );
}
