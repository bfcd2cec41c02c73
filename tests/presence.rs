//! Presence reaching clients (RF-06.1–06.3, RF-07.2) on a real embedded node with real sockets:
//! two workspace mates see each other come online, go idle, change their custom status and go
//! offline; presence never crosses workspaces; a subscription beyond the bound is refused.

mod common;

use chorus_protocol::limits::MAX_PRESENCE_SUBSCRIPTIONS;
use chorus_protocol::{
    Activity, ClientFrame, CustomStatus, ErrorCode, PresenceInfo, PresenceStatus, ServerFrame,
};
use common::{Client, TestNode};
use serde_json::json;
use uuid::Uuid;

/// Follows `users` and returns the presences of the answer.
async fn follow(client: &mut Client, users: &[Uuid]) -> Vec<PresenceInfo> {
    client
        .send(&ClientFrame::PresenceSubscribe {
            user_ids: users.to_vec(),
        })
        .await;
    match client
        .wait_for(|f| matches!(f, ServerFrame::PresenceSubscribed { .. }))
        .await
    {
        ServerFrame::PresenceSubscribed { presences } => presences,
        _ => unreachable!(),
    }
}

/// The next `presence` frame about `user`.
async fn change_of(client: &mut Client, user: Uuid) -> PresenceInfo {
    match client
        .wait_for(|f| matches!(f, ServerFrame::Presence(info) if info.user_id == user))
        .await
    {
        ServerFrame::Presence(info) => info,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn workspace_mates_see_each_other_come_and_go() {
    let node = TestNode::start().await;
    let (alice, alice_token) = node.user("alice").await;
    let (bob, bob_token) = node.user("bob").await;
    node.team(&alice_token, &[&bob_token]).await;

    let (mut a, _) = Client::identify(node.ws(), &alice_token).await;
    let before = follow(&mut a, &[bob, alice]).await;
    assert_eq!(before.len(), 2);
    assert_eq!(
        (before[0].user_id, before[0].status),
        (bob, PresenceStatus::Offline)
    );
    assert_eq!(before[0].last_seen, None, "bob never connected");
    assert_eq!(
        (before[1].user_id, before[1].status),
        (alice, PresenceStatus::Online)
    );

    // Bob connects from two devices: one `online` for both.
    let (mut phone, _) = Client::identify(node.ws(), &bob_token).await;
    let online = change_of(&mut a, bob).await;
    assert_eq!(online.status, PresenceStatus::Online);
    assert!(online.last_seen.is_some());
    let (mut laptop, _) = Client::identify(node.ws(), &bob_token).await;

    // Idle only once both devices are.
    phone
        .send(&ClientFrame::Activity {
            state: Activity::Idle,
        })
        .await;
    laptop
        .send(&ClientFrame::Activity {
            state: Activity::Idle,
        })
        .await;
    assert_eq!(change_of(&mut a, bob).await.status, PresenceStatus::Idle);
    laptop
        .send(&ClientFrame::Activity {
            state: Activity::Active,
        })
        .await;
    assert_eq!(change_of(&mut a, bob).await.status, PresenceStatus::Online);

    // A custom status set over REST reaches Alice's socket.
    let (status, body) = node
        .call(
            "PUT",
            "/v1/users/me/status",
            Some(&bob_token),
            Some(json!({"text": "in a meeting", "emoji": "📅"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let with_status = change_of(&mut a, bob).await;
    assert_eq!(
        with_status.custom_status,
        Some(CustomStatus {
            text: "in a meeting".into(),
            emoji: Some("📅".into()),
            expires_at: None,
        })
    );

    // Closing one device changes nothing others see; closing the second takes Bob offline.
    drop(phone);
    laptop.send(&ClientFrame::Heartbeat).await;
    laptop
        .wait_for(|f| matches!(f, ServerFrame::HeartbeatAck))
        .await;
    drop(laptop);
    let offline = change_of(&mut a, bob).await;
    assert_eq!(offline.status, PresenceStatus::Offline);
    assert!(offline.last_seen.is_some());
    assert!(
        offline.custom_status.is_some(),
        "a status outlives the connection"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn presence_stays_inside_workspaces_and_subscriptions_are_bounded() {
    let node = TestNode::start().await;
    let (_, alice_token) = node.user("alice").await;
    let (bob, bob_token) = node.user("bob").await;
    let (stranger, stranger_token) = node.user("stranger").await;
    node.team(&alice_token, &[&bob_token]).await;

    let (mut a, _) = Client::identify(node.ws(), &alice_token).await;
    let (_s, _) = Client::identify(node.ws(), &stranger_token).await;
    let seen = follow(&mut a, &[stranger, bob, Uuid::new_v4()]).await;
    assert_eq!(
        seen.iter().map(|p| p.user_id).collect::<Vec<_>>(),
        vec![bob],
        "a stranger is left out like an unknown user"
    );

    // One over the bound: refused with the documented code, the previous list stays.
    let too_many: Vec<Uuid> = (0..=MAX_PRESENCE_SUBSCRIPTIONS)
        .map(|_| Uuid::new_v4())
        .collect();
    a.send(&ClientFrame::PresenceSubscribe { user_ids: too_many })
        .await;
    match a.wait_for(|f| matches!(f, ServerFrame::Error { .. })).await {
        ServerFrame::Error { code, .. } => assert_eq!(code, ErrorCode::PresenceLimit),
        _ => unreachable!(),
    }
    let (_b, _) = Client::identify(node.ws(), &bob_token).await;
    assert_eq!(change_of(&mut a, bob).await.status, PresenceStatus::Online);

    // The bulk REST query keeps the same rules.
    let (status, body) = node
        .post(
            "/v1/presence/query",
            Some(&alice_token),
            json!({"user_ids": [bob, stranger]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let presences = body["presences"].as_array().unwrap();
    assert_eq!(presences.len(), 1);
    assert_eq!(presences[0]["user_id"], json!(bob));
    assert_eq!(presences[0]["status"], "online");
    let (status, body) = node
        .post(
            "/v1/presence/query",
            Some(&alice_token),
            json!({"user_ids": (0..=MAX_PRESENCE_SUBSCRIPTIONS).map(|_| Uuid::new_v4()).collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "too_many_users");

    // Bad statuses are refused with their codes.
    for (request, code) in [
        (json!({"text": "x".repeat(101)}), "status_too_long"),
        (json!({"text": "  "}), "empty_status"),
        (json!({"text": "x", "emoji": "a b"}), "invalid_emoji"),
        (
            json!({"text": "x", "expires_at": "2000-01-01T00:00:00Z"}),
            "status_expired",
        ),
    ] {
        let (status, body) = node
            .call(
                "PUT",
                "/v1/users/me/status",
                Some(&alice_token),
                Some(request),
            )
            .await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some(code)));
    }
    let (status, _) = node
        .call("DELETE", "/v1/users/me/status", Some(&alice_token), None)
        .await;
    assert_eq!(status, 204);
    node.shutdown().await;
}

/// Two nodes share accounts (PostgreSQL) and presence (Redis), as the gateways of a cluster do:
/// presence crosses from one gateway to the other, and a connection whose gateway died (a lease
/// nobody renews) ends with an `offline` once the lease runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_crosses_gateways_through_redis_and_outlives_a_dead_gateway_by_its_lease() {
    let database = chorus_core::testing::fresh_database("presence").await;
    let redis =
        std::env::var("CHORUS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let shared = |config: &mut chorus::NodeConfig| {
        config.metadata_url = Some(database.clone());
        config.presence_url = Some(redis.clone());
        config.jwt_secret = Some("presence-test-secret-presence-test-secret".into());
    };
    let one = TestNode::start_with(shared).await;
    let two = TestNode::start_with(shared).await;
    let (_, alice_token) = one.user("alice").await;
    let (bob, bob_token) = one.user("bob").await;
    let (carol, carol_token) = one.user("carol").await;
    one.team(&alice_token, &[&bob_token, &carol_token]).await;

    let (mut a, _) = Client::identify(one.ws(), &alice_token).await;
    follow(&mut a, &[bob, carol]).await;
    let (b, _) = Client::identify(two.ws(), &bob_token).await;
    assert_eq!(change_of(&mut a, bob).await.status, PresenceStatus::Online);
    let (status, _) = two
        .call(
            "PUT",
            "/v1/users/me/status",
            Some(&bob_token),
            Some(json!({"emoji": "palm_tree"})),
        )
        .await;
    assert_eq!(status, 200);
    let with_status = change_of(&mut a, bob).await;
    assert_eq!(
        with_status.custom_status.and_then(|s| s.emoji).as_deref(),
        Some("palm_tree")
    );
    drop(b);
    assert_eq!(change_of(&mut a, bob).await.status, PresenceStatus::Offline);

    // Carol's connection lived on a gateway that died: its lease was renewed last almost a
    // lease ago and nobody will renew it again.
    let ghost_gateway = chorus_presence::RedisPresence::connect(&redis)
        .await
        .unwrap();
    let renewed_last =
        chrono::Utc::now() - chorus_presence::CONNECTION_LEASE + chrono::Duration::seconds(2);
    chorus_presence::PresenceStore::connected(&ghost_gateway, carol, Uuid::new_v4(), renewed_last)
        .await
        .unwrap();
    let now = follow(&mut a, &[bob, carol]).await;
    assert_eq!(now[1].status, PresenceStatus::Online);
    // The live gateways' sweep takes her offline once the lease is over.
    assert_eq!(
        change_of(&mut a, carol).await.status,
        PresenceStatus::Offline
    );
    one.shutdown().await;
    two.shutdown().await;
}
