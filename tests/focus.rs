//! Focus mode on a real embedded node with real sockets: a session holds what does not pass the
//! user's rules and lets the rest through at once, keeps what it held across a node restart, and
//! ends with a digest listing exactly what it held; teammates see `focus` in the user's presence;
//! a weekly schedule starts and ends sessions on
//! a test clock (the node's ticker is off; the test ticks it).

mod common;

use chorus_protocol::{
    ClientFrame, FocusDigest, Notification, NotificationKind, PresenceInfo, ServerFrame,
};
use chrono::{DateTime, Utc};
use common::{Client, TestNode};
use serde_json::json;
use uuid::Uuid;

/// Every notification frame up to and including the next DM notification, in order. Channel
/// messages seen meanwhile are counted (focus gates notifications, not the chat).
async fn notifications_until_dm(client: &mut Client) -> (Vec<Notification>, usize) {
    let (mut seen, mut messages) = (Vec::new(), 0);
    loop {
        match client.next().await {
            ServerFrame::Notification(n) => {
                let dm = n.kind == NotificationKind::Dm;
                seen.push(n);
                if dm {
                    return (seen, messages);
                }
            }
            ServerFrame::Message(_) => messages += 1,
            _ => {}
        }
    }
}

async fn digest_frame(client: &mut Client) -> FocusDigest {
    match client
        .wait_for(|f| matches!(f, ServerFrame::FocusDigest(_)))
        .await
    {
        ServerFrame::FocusDigest(d) => d,
        _ => unreachable!(),
    }
}

/// A client of `token` following the presence of `user`.
async fn follower(node: &TestNode, token: &str, user: Uuid) -> (Client, ServerFrame) {
    let (mut client, ready) = Client::identify(node.ws(), token).await;
    client
        .send(&ClientFrame::PresenceSubscribe {
            user_ids: vec![user],
        })
        .await;
    client
        .wait_for(|f| matches!(f, ServerFrame::PresenceSubscribed { .. }))
        .await;
    (client, ready)
}

/// The next `presence` frame about `user`.
async fn presence_of(client: &mut Client, user: Uuid) -> PresenceInfo {
    match client
        .wait_for(|f| matches!(f, ServerFrame::Presence(info) if info.user_id == user))
        .await
    {
        ServerFrame::Presence(info) => info,
        _ => unreachable!(),
    }
}

async fn post(node: &TestNode, token: &str, channel: Uuid, text: &str) -> u64 {
    let (status, body) = node
        .post(
            &format!("/v1/channels/{channel}/messages"),
            Some(token),
            json!({"text": text}),
        )
        .await;
    assert_eq!(status, 201, "post: {body}");
    body["seq"].as_u64().unwrap()
}

async fn dm(node: &TestNode, token: &str, workspace: Uuid, with: Uuid) -> Uuid {
    let (status, body) = node
        .post(
            &format!("/v1/workspaces/{workspace}/dms"),
            Some(token),
            json!({"user_ids": [with]}),
        )
        .await;
    assert!(status == 200 || status == 201, "open dm: {body}");
    body["id"].as_str().unwrap().parse().unwrap()
}

async fn put(
    node: &TestNode,
    token: &str,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let (status, body) = node.call("PUT", path, Some(token), Some(body)).await;
    assert_eq!(status, 200, "PUT {path}: {body}");
    body
}

#[tokio::test]
async fn a_session_holds_a_mention_lets_a_priority_dm_through_survives_a_restart_and_ends_with_a_digest()
 {
    let mut node = TestNode::start().await;
    let (alice, alice_token) = node.user("alice").await;
    let (bob, bob_token) = node.user("bob").await;
    let (_carol, carol_token) = node.user("carol").await;
    let (workspace, general) = node.team(&alice_token, &[&bob_token, &carol_token]).await;
    let alice_dm = dm(&node, &alice_token, workspace, bob).await;

    // Bob lets DMs from Alice through, nothing else.
    put(
        &node,
        &bob_token,
        "/v1/users/me/focus/settings",
        json!({"rules": {"senders": [alice], "mentions": false}}),
    )
    .await;
    // Alice follows Bob's presence: his focus shows there, with its end.
    let (mut a, _) = follower(&node, &alice_token, bob).await;
    let (status, session) = node
        .post(
            "/v1/users/me/focus",
            Some(&bob_token),
            json!({"duration_minutes": 50}),
        )
        .await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["source"], "manual");
    let shown = presence_of(&mut a, bob).await;
    let until = shown.focus.expect("focus shows in presence").until.unwrap();
    assert_eq!(
        until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        session["ends_at"].as_str().unwrap()
    );
    drop(a);
    let (_, team) = node
        .get(&format!("/v1/workspaces/{workspace}/focus"), &alice_token)
        .await;
    assert_eq!(team["in_focus"][0]["user_id"], bob.to_string(), "{team}");

    let (mut b, _) = Client::identify(node.ws(), &bob_token).await;
    // Carol's mention is held; Alice's DM (a named sender: 80) arrives at once. The notifier
    // works in order, so the DM's arrival means the mention was decided before it.
    let held_first = post(&node, &carol_token, general, &format!("<@{bob}> review?")).await;
    let dm_seq = post(&node, &alice_token, alice_dm, "the build is red").await;
    let (seen, messages) = notifications_until_dm(&mut b).await;
    assert_eq!(seen.len(), 1, "only the DM got through: {seen:?}");
    assert_eq!(
        (seen[0].channel_id, seen[0].seq),
        (Some(alice_dm), Some(dm_seq))
    );
    assert!(
        messages >= 1,
        "the channel message itself still reached Bob"
    );
    drop(b);

    // A restart keeps the session and what it held; it goes on holding afterwards.
    node.restart().await;
    let (mut b, _) = Client::identify(node.ws(), &bob_token).await;
    let (_, focus) = node.get("/v1/users/me/focus", &bob_token).await;
    assert_eq!(focus["session"]["id"], session["id"], "{focus}");
    let held_second = post(
        &node,
        &carol_token,
        general,
        &format!("@channel and <@{bob}>"),
    )
    .await;
    post(&node, &alice_token, alice_dm, "still red").await;
    let (seen, _) = notifications_until_dm(&mut b).await;
    assert_eq!(seen.len(), 1, "{seen:?}");

    // Ending it: the digest, over REST and on the socket, lists exactly the two held mentions;
    // focus leaves Bob's presence.
    let (mut a, _) = follower(&node, &alice_token, bob).await;
    let (status, digest) = node
        .call("DELETE", "/v1/users/me/focus", Some(&bob_token), None)
        .await;
    assert_eq!(status, 200, "{digest}");
    assert_eq!(presence_of(&mut a, bob).await.focus, None);
    assert_eq!(digest["total"], 2);
    assert_eq!(digest["channels"].as_array().unwrap().len(), 1);
    assert_eq!(digest["channels"][0]["channel_id"], general.to_string());
    assert_eq!(digest["channels"][0]["count"], 2);
    let frame = digest_frame(&mut b).await;
    assert_eq!(frame.id.to_string(), digest["id"].as_str().unwrap());
    let mut seqs: Vec<u64> = frame.channels[0].top.iter().filter_map(|n| n.seq).collect();
    seqs.sort();
    assert_eq!(seqs, [held_first, held_second]);
    let (_, listed) = node.get("/v1/users/me/focus/digests", &bob_token).await;
    assert_eq!(listed["digests"][0]["id"], digest["id"]);

    // Out of focus, a mention is delivered at once again; a second end finds nothing.
    let mention = post(&node, &carol_token, general, &format!("<@{bob}> thanks")).await;
    let n = b
        .wait_for(|f| matches!(f, ServerFrame::Notification(_)))
        .await;
    assert!(matches!(n, ServerFrame::Notification(n) if n.seq == Some(mention)));
    let (status, body) = node
        .call("DELETE", "/v1/users/me/focus", Some(&bob_token), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_in_focus"))
    );
}

#[tokio::test]
async fn a_weekly_schedule_starts_and_ends_a_session_on_a_test_clock() {
    let node = TestNode::start_with(|config| config.focus_tick_ms = 0).await;
    let (_alice, alice_token) = node.user("alice").await;
    let (bob, bob_token) = node.user("bob").await;
    let (workspace, general) = node.team(&alice_token, &[&bob_token]).await;
    let alice_dm = dm(&node, &alice_token, workspace, bob).await;
    put(
        &node,
        &bob_token,
        "/v1/users/me/focus/settings",
        json!({
            "time_zone": "Europe/Paris",
            "schedule": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "11:00"},
            "rules": {"keywords": ["URGENT"]}
        }),
    )
    .await;
    let (mut b, _) = Client::identify(node.ws(), &bob_token).await;
    let tick = |at: &str| {
        let at: DateTime<Utc> = at.parse().unwrap();
        let node = node.node.as_ref().unwrap();
        async move { node.focus_tick(at).await.unwrap() }
    };
    let in_focus = || async {
        let (_, focus) = node.get("/v1/users/me/focus", &bob_token).await;
        !focus["session"].is_null()
    };

    // Monday 7 December 2026, Paris is UTC+1: the window is 08:00–10:00 UTC.
    assert_eq!(tick("2026-12-07T07:59:00Z").await.started, 0);
    assert!(!in_focus().await);
    assert_eq!(tick("2026-12-07T08:00:00Z").await.started, 1);
    assert!(in_focus().await);
    assert_eq!(
        tick("2026-12-07T08:00:01Z").await.started,
        0,
        "started once"
    );

    let held = post(&node, &alice_token, general, &format!("<@{bob}> lunch?")).await;
    post(&node, &alice_token, alice_dm, "urgent").await;
    let (seen, _) = notifications_until_dm(&mut b).await;
    assert_eq!(
        seen.len(),
        1,
        "the mention (50) waits, the urgent DM (40 + 30) does not: {seen:?}"
    );

    assert_eq!(tick("2026-12-07T09:59:59Z").await.ended, 0);
    let report = tick("2026-12-07T10:00:00Z").await;
    assert_eq!((report.started, report.ended), (0, 1));
    assert!(!in_focus().await);
    let digest = digest_frame(&mut b).await;
    assert_eq!(digest.total, 1);
    assert_eq!(digest.channels[0].top[0].seq, Some(held));
    assert_eq!(
        digest.ended_at,
        "2026-12-07T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );

    // Saturday: no window.
    assert_eq!(tick("2026-12-12T08:30:00Z").await.started, 0);
    assert!(!in_focus().await);
}

#[tokio::test]
async fn statistics_count_focus_per_local_day_with_a_session_across_midnight_and_bounded_days() {
    let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
    let clock = chorus_core::Clock::manual(at("2026-12-01T12:00:00Z"));
    let node = TestNode::start_with(|config| {
        config.focus_tick_ms = 0;
        config.clock = clock.clone();
    })
    .await;
    let (_bob, bob_token) = node.user("bob").await;
    put(
        &node,
        &bob_token,
        "/v1/users/me/focus/settings",
        json!({"time_zone": "Europe/Paris"}),
    )
    .await;
    // Sessions on the API's clock; Paris is UTC+1 in December.
    let session = |from: &'static str, to: Option<&'static str>| {
        let (node, token, clock) = (&node, &bob_token, &clock);
        async move {
            clock.set(at(from));
            let (status, body) = node
                .post("/v1/users/me/focus", Some(token), json!({}))
                .await;
            assert_eq!(status, 200, "{body}");
            if let Some(to) = to {
                clock.set(at(to));
                let (status, body) = node
                    .call("DELETE", "/v1/users/me/focus", Some(token), None)
                    .await;
                assert_eq!(status, 200, "{body}");
            }
        }
    };
    // 23:30–00:30 local: started the day before the window, half an hour of it inside.
    session("2026-12-01T22:30:00Z", Some("2026-12-01T23:30:00Z")).await;
    session("2026-12-02T08:00:00Z", Some("2026-12-02T09:00:00Z")).await;
    // 23:00–01:30 local, split between 3 and 4 December.
    session("2026-12-03T22:00:00Z", Some("2026-12-04T00:30:00Z")).await;
    // Open since 11:00 local; the query comes an hour later.
    session("2026-12-04T10:00:00Z", None).await;
    clock.set(at("2026-12-04T11:00:00Z"));

    let (status, stats) = node
        .get("/v1/users/me/focus/stats?days=3", &bob_token)
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["time_zone"], "Europe/Paris");
    assert_eq!(
        stats["days"],
        json!([
            {"date": "2026-12-02", "focus_seconds": 1800 + 3600, "sessions": 1},
            {"date": "2026-12-03", "focus_seconds": 3600, "sessions": 1},
            {"date": "2026-12-04", "focus_seconds": 5400 + 3600, "sessions": 1},
        ])
    );
    assert_eq!(stats["total_focus_seconds"], 18000);
    assert_eq!(stats["sessions"], 3);
    assert_eq!(stats["current_streak_days"], 3);
    assert_eq!(stats["longest_streak_days"], 3);

    // A week by default: 1 December has its half hour, 28–30 November nothing.
    let (_, week) = node.get("/v1/users/me/focus/stats", &bob_token).await;
    let days = week["days"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    assert_eq!(days[0]["date"], "2026-11-28");
    assert_eq!(days[3]["focus_seconds"], 1800);
    assert_eq!(week["current_streak_days"], 4);

    for (query, code) in [
        ("days=0", "invalid_days"),
        ("days=91", "invalid_days"),
        ("days=week", "invalid_query"),
    ] {
        let (status, body) = node
            .get(&format!("/v1/users/me/focus/stats?{query}"), &bob_token)
            .await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some(code)));
    }
}

/// The next `message` frame in `channel`.
async fn message_in(client: &mut Client, channel: Uuid) -> chorus_protocol::MessageEvent {
    match client
        .wait_for(|f| matches!(f, ServerFrame::Message(m) if m.channel_id == channel))
        .await
    {
        ServerFrame::Message(event) => event,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn a_dm_to_a_user_in_focus_gets_one_automatic_reply_per_sender_per_session() {
    let node = TestNode::start_with(|config| config.focus_tick_ms = 0).await;
    let (_alice, alice_token) = node.user("alice").await;
    let (bob, bob_token) = node.user("bob").await;
    let (_carol, carol_token) = node.user("carol").await;
    let (workspace, _) = node.team(&alice_token, &[&bob_token, &carol_token]).await;
    let alice_dm = dm(&node, &alice_token, workspace, bob).await;
    let carol_dm = dm(&node, &carol_token, workspace, bob).await;
    put(
        &node,
        &bob_token,
        "/v1/users/me/focus/settings",
        json!({"auto_reply": "Focusing until 11:00, I will answer then"}),
    )
    .await;
    let (mut a, _) = Client::identify(node.ws(), &alice_token).await;
    let (mut c, _) = Client::identify(node.ws(), &carol_token).await;
    let start = || async {
        let (status, body) = node
            .post("/v1/users/me/focus", Some(&bob_token), json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
    };
    start().await;

    // Alice's first DM: Bob answers at once, automatically, right after it.
    let first = post(&node, &alice_token, alice_dm, "are you there?").await;
    assert_eq!(message_in(&mut a, alice_dm).await.seq, first);
    let reply = message_in(&mut a, alice_dm).await;
    assert_eq!(
        (reply.author_id, reply.seq, reply.automatic),
        (bob, first + 1, true)
    );
    assert_eq!(reply.text, "Focusing until 11:00, I will answer then");
    // Her second DM in the same session gets none; Carol, another sender, gets hers.
    let second = post(&node, &alice_token, alice_dm, "ping").await;
    post(&node, &carol_token, carol_dm, "lunch?").await;
    let to_carol = loop {
        let event = message_in(&mut c, carol_dm).await;
        if event.author_id == bob {
            break event;
        }
    };
    assert!(to_carol.automatic);

    // A new session answers Alice once more.
    let (status, _) = node
        .call("DELETE", "/v1/users/me/focus", Some(&bob_token), None)
        .await;
    assert_eq!(status, 200);
    start().await;
    let third = post(&node, &alice_token, alice_dm, "and now?").await;
    let mut after_first = Vec::new();
    loop {
        let event = message_in(&mut a, alice_dm).await;
        after_first.push((event.seq, event.author_id == bob, event.automatic));
        if event.seq > third {
            break;
        }
    }
    assert_eq!(
        after_first,
        [
            (second, false, false),
            (third, false, false),
            (third + 1, true, true)
        ],
        "no reply to the second DM; one to the first DM of the new session"
    );
    // History keeps the mark; a typed message has `automatic: false`.
    let (_, history) = node
        .get(&format!("/v1/channels/{alice_dm}/messages"), &alice_token)
        .await;
    let marks: Vec<(u64, bool)> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().unwrap(),
                m["automatic"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        marks,
        [
            (first, false),
            (first + 1, true),
            (second, false),
            (third, false),
            (third + 1, true)
        ]
    );
}

#[tokio::test]
async fn a_workspace_focus_policy_refuses_sessions_outside_its_hours() {
    let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
    // Monday 7 December 2026, 07:30 in Paris (UTC+1).
    let clock = chorus_core::Clock::manual(at("2026-12-07T06:30:00Z"));
    let node = TestNode::start_with(|config| {
        config.focus_tick_ms = 0;
        config.clock = clock.clone();
    })
    .await;
    let (_alice, alice_token) = node.user("alice").await;
    let (_bob, bob_token) = node.user("bob").await;
    let (workspace, _) = node.team(&alice_token, &[&bob_token]).await;
    let path = format!("/v1/workspaces/{workspace}/focus/policy");
    let office = json!({
        "time_zone": "Europe/Paris",
        "hours": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}
    });

    // Only owners and admins set it; a bad one is refused; every member reads it.
    let (status, body) = node
        .call("PUT", &path, Some(&bob_token), Some(office.clone()))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, body) = node
        .call(
            "PUT",
            &path,
            Some(&alice_token),
            Some(json!({"time_zone": "Mars/Olympus", "hours": office["hours"]})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_time_zone"))
    );
    assert_eq!(
        put(&node, &alice_token, &path, office.clone()).await["policy"],
        office
    );
    let (_, shown) = node.get(&path, &bob_token).await;
    assert_eq!(shown["policy"], office);

    let start = |body: serde_json::Value| {
        let (node, token) = (&node, &bob_token);
        async move { node.post("/v1/users/me/focus", Some(token), body).await }
    };
    // 07:30: before the hours.
    let (status, body) = start(json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("focus_not_allowed")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&workspace.to_string())
    );
    // 10:00: for 9 hours would end after 18:00; for 8 ends at 18:00 exactly.
    clock.set(at("2026-12-07T09:00:00Z"));
    let (status, body) = start(json!({"duration_minutes": 540})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("focus_not_allowed"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2026-12-07T17:00:00.000Z"),
        "{body}"
    );
    let (status, session) = start(json!({"duration_minutes": 480})).await;
    assert_eq!(status, 200, "{session}");
    let (status, _) = node
        .call("DELETE", "/v1/users/me/focus", Some(&bob_token), None)
        .await;
    assert_eq!(status, 200);

    // Scheduled sessions are held to it too: a Saturday window does not start, a Monday one does.
    let tick = |at: DateTime<Utc>| {
        let node = node.node.as_ref().unwrap();
        async move { node.focus_tick(at).await.unwrap() }
    };
    let schedule = |day: &str| {
        json!({"time_zone": "Europe/Paris",
               "schedule": {"days": [day], "start": "10:00", "end": "12:00"}})
    };
    put(
        &node,
        &bob_token,
        "/v1/users/me/focus/settings",
        schedule("sat"),
    )
    .await;
    assert_eq!(tick(at("2026-12-12T09:00:00Z")).await.started, 0);
    put(
        &node,
        &bob_token,
        "/v1/users/me/focus/settings",
        schedule("mon"),
    )
    .await;
    assert_eq!(tick(at("2026-12-14T09:00:00Z")).await.started, 1);
    clock.set(at("2026-12-14T09:30:00Z"));
    let (status, _) = node
        .call("DELETE", "/v1/users/me/focus", Some(&bob_token), None)
        .await;
    assert_eq!(status, 200);

    // Without a policy, Saturday night is fine again.
    let (status, body) = node.call("DELETE", &path, Some(&alice_token), None).await;
    assert_eq!((status, &body["policy"]), (200, &serde_json::Value::Null));
    clock.set(at("2026-12-19T23:00:00Z"));
    let (status, body) = start(json!({})).await;
    assert_eq!(status, 200, "{body}");
}
