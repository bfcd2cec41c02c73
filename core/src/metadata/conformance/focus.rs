//! Conformance checks of focus mode's tables (`crate::focus::FocusStore`): settings round-trip,
//! one open session per user and one per scheduled window, holding only while a session is
//! open, and ending a session turning exactly what it held into a digest.

use chorus_protocol::{Notification, NotificationKind};
use chrono::{Duration, NaiveTime, Weekday};
use uuid::Uuid;

use super::{channel, now_ms, user};
use crate::MetadataStore;
use crate::focus::policy::FocusPolicy;
use crate::focus::priority::FocusRules;
use crate::focus::schedule::{FocusSource, WeeklySchedule};
use crate::focus::{FocusSession, FocusSettings, HoldOutcome, HoldRequest};
use crate::model::ChannelKind;
use crate::notify::notification_id;

fn session(user: Uuid, source: FocusSource, ends_in: Option<Duration>) -> FocusSession {
    let now = now_ms();
    FocusSession {
        id: Uuid::now_v7(),
        user_id: user,
        source,
        started_at: now,
        ends_at: ends_in.map(|d| now + d),
        ended_at: None,
    }
}

fn mention(user: Uuid, workspace: Uuid, channel: Uuid, seq: u64) -> Notification {
    Notification {
        id: notification_id(user, channel, seq),
        kind: NotificationKind::Mention,
        workspace_id: workspace,
        channel_id: Some(channel),
        seq: Some(seq),
        parent_seq: None,
        actor_id: Uuid::new_v4(),
        preview: format!("message {seq}"),
        created_at: now_ms() + Duration::milliseconds(seq as i64),
    }
}

pub async fn focus_settings_and_sessions_round_trip(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let focus = store.focus();
    assert_eq!(focus.focus_settings(ada).await.unwrap(), None);
    let settings = FocusSettings {
        time_zone: "Europe/Paris".parse().unwrap(),
        schedule: Some(WeeklySchedule {
            days: vec![Weekday::Mon, Weekday::Wed],
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(11, 30, 0).unwrap(),
        }),
        rules: FocusRules {
            senders: vec![Uuid::new_v4()],
            mentions: true,
            channels: vec![],
            keywords: vec!["outage".into()],
            min_priority: Some(60),
        },
        auto_reply: Some("heads down until 11:30".into()),
    };
    focus.set_focus_settings(ada, &settings).await.unwrap();
    assert_eq!(focus.focus_settings(ada).await.unwrap(), Some(settings));
    // A new schedule is due at once; a parked one is not.
    let now = now_ms();
    assert_eq!(focus.due_focus_users(now, 10).await.unwrap(), vec![ada]);
    focus.set_next_focus_check(ada, None).await.unwrap();
    assert!(focus.due_focus_users(now, 10).await.unwrap().is_empty());
    focus
        .set_next_focus_check(ada, Some(now + Duration::hours(1)))
        .await
        .unwrap();
    assert!(focus.due_focus_users(now, 10).await.unwrap().is_empty());
    assert_eq!(
        focus
            .due_focus_users(now + Duration::hours(1), 10)
            .await
            .unwrap(),
        vec![ada]
    );

    // One open session per user; a window is entered once.
    let first = session(ada, FocusSource::Schedule, Some(Duration::minutes(30)));
    let window = Some(first.started_at);
    assert!(focus.start_focus_session(&first, window).await.unwrap());
    let second = session(ada, FocusSource::Manual, None);
    assert!(!focus.start_focus_session(&second, None).await.unwrap());
    assert_eq!(focus.open_focus_session(ada).await.unwrap(), Some(first));
    // Its planned end passed: due.
    assert!(
        focus
            .due_focus_users(now + Duration::minutes(31), 10)
            .await
            .unwrap()
            .contains(&ada)
    );
    let longer = focus
        .extend_focus_session(ada, Some(first.started_at + Duration::hours(2)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (longer.id, longer.source),
        (first.id, FocusSource::Manual),
        "extending makes it the user's own"
    );
    let digest = focus
        .end_focus_session(ada, now_ms())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((digest.session_id, digest.total), (first.id, 0));
    assert_eq!(focus.end_focus_session(ada, now_ms()).await.unwrap(), None);
    let again = session(ada, FocusSource::Schedule, Some(Duration::minutes(30)));
    assert!(
        !focus.start_focus_session(&again, window).await.unwrap(),
        "the same window is not entered twice"
    );
    assert_eq!(
        focus
            .focus_sessions_of(ada, now - Duration::minutes(1))
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn focus_holds_while_open_and_digests_exactly_what_it_held(store: &dyn MetadataStore) {
    let (ada, bob) = (user(store, "ada").await, user(store, "bob").await);
    let workspace = store.create_workspace("Acme", ada).await.unwrap();
    store
        .set_workspace_member(workspace.id, bob, crate::model::Role::Member)
        .await
        .unwrap();
    let general = store
        .create_channel(&channel(workspace.id, "general", ChannelKind::Public, ada))
        .await
        .unwrap();
    let focus = store.focus();
    let open = session(bob, FocusSource::Manual, None);
    assert!(focus.start_focus_session(&open, None).await.unwrap());
    let in_focus = focus.in_focus(&[ada, bob]).await.unwrap();
    assert_eq!(in_focus.len(), 1);
    assert_eq!(in_focus[0].session, open);
    assert_eq!(in_focus[0].rules, FocusRules::default());
    let listed = focus.open_focus_sessions_in(workspace.id).await.unwrap();
    assert_eq!(listed, vec![open]);

    let hold = |seq: u64, priority: u8| HoldRequest {
        user: bob,
        session: open.id,
        priority,
        notification: mention(bob, workspace.id, general.id, seq),
    };
    let outcomes = focus
        .hold_notifications(&[hold(1, 20), hold(2, 50), hold(1, 20)])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [HoldOutcome::Held, HoldOutcome::Held, HoldOutcome::Duplicate]
    );
    // Held notifications are recorded like any other (the REST list, the badges).
    assert_eq!(
        store
            .notifications()
            .notifications_of(bob, None, 10)
            .await
            .unwrap()
            .len(),
        2
    );

    let digest = focus
        .end_focus_session(bob, now_ms())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(digest.total, 2);
    assert_eq!(digest.channels.len(), 1);
    let top: Vec<Option<u64>> = digest.channels[0].top.iter().map(|n| n.seq).collect();
    assert_eq!(top, [Some(2), Some(1)], "highest priority first");
    assert_eq!(focus.focus_digests(bob, 10).await.unwrap(), vec![digest]);

    // After the end, a late hold for the ended session is recorded for delivery instead.
    assert_eq!(
        focus.hold_notifications(&[hold(3, 10)]).await.unwrap(),
        [HoldOutcome::Deliver]
    );
    let next = session(bob, FocusSource::Manual, None);
    assert!(focus.start_focus_session(&next, None).await.unwrap());
    let digest = focus
        .end_focus_session(bob, now_ms())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        digest.total, 0,
        "nothing of the first session leaks into the next"
    );
    assert!(focus.record_auto_reply(next.id, ada).await.unwrap());
    assert!(!focus.record_auto_reply(next.id, ada).await.unwrap());
}

pub async fn focus_policies_apply_to_the_members_of_their_workspace(store: &dyn MetadataStore) {
    let (ada, bob) = (user(store, "ada").await, user(store, "bob").await);
    let acme = store.create_workspace("Acme", ada).await.unwrap().id;
    let beta = store.create_workspace("Beta", bob).await.unwrap().id;
    let focus = store.focus();
    let office = FocusPolicy {
        time_zone: "Europe/Paris".parse().unwrap(),
        hours: WeeklySchedule {
            days: vec![Weekday::Mon, Weekday::Fri],
            start: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(18, 30, 0).unwrap(),
        },
    };
    assert_eq!(focus.focus_policy(acme).await.unwrap(), None);
    focus.set_focus_policy(acme, Some(&office)).await.unwrap();
    assert_eq!(
        focus.focus_policy(acme).await.unwrap(),
        Some(office.clone())
    );
    assert_eq!(
        focus.focus_policies_for(ada).await.unwrap(),
        [(acme, office.clone())]
    );
    assert!(focus.focus_policies_for(bob).await.unwrap().is_empty());
    // Replacing, then removing.
    let night = FocusPolicy {
        time_zone: "UTC".parse().unwrap(),
        hours: WeeklySchedule {
            days: vec![Weekday::Sun],
            start: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
        },
    };
    focus.set_focus_policy(beta, Some(&night)).await.unwrap();
    focus.set_focus_policy(beta, Some(&office)).await.unwrap();
    assert_eq!(
        focus.focus_policies_for(bob).await.unwrap(),
        [(beta, office.clone())]
    );
    focus.set_focus_policy(acme, None).await.unwrap();
    assert_eq!(focus.focus_policy(acme).await.unwrap(), None);
    assert!(focus.focus_policies_for(ada).await.unwrap().is_empty());
}
