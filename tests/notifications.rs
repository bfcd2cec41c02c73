//! The notification stream on a real embedded node with real sockets: mentions, `@channel`,
//! DMs, thread replies and invitations each reach the user once, on every device; a muted
//! channel and the `nothing` level produce none; `ready` carries unread and mention counts and
//! `read_state` updates them when the user reads on another device.

mod common;

use chorus_protocol::{ClientFrame, Notification, NotificationKind, ServerFrame};
use common::{Client, TestNode};
use serde_json::json;
use uuid::Uuid;

/// The next `notification` frame.
async fn notification(client: &mut Client) -> Notification {
    match client
        .wait_for(|f| matches!(f, ServerFrame::Notification(_)))
        .await
    {
        ServerFrame::Notification(n) => n,
        _ => unreachable!(),
    }
}

/// Posts over REST and returns the message's seq.
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

#[tokio::test]
async fn mentions_dms_and_thread_replies_notify_once_on_every_device() {
    let node = TestNode::start().await;
    let (alice, alice_token) = node.user("alice").await;
    let (bob, bob_token) = node.user("bob").await;
    let (_carol, carol_token) = node.user("carol").await;
    let (workspace, general) = node.team(&alice_token, &[&bob_token, &carol_token]).await;
    let (mut phone, _) = Client::identify(node.ws(), &bob_token).await;
    let (mut laptop, _) = Client::identify(node.ws(), &bob_token).await;
    let (mut a, _) = Client::identify(node.ws(), &alice_token).await;

    // A mention over the WebSocket reaches both of Bob's devices, once, with what opens it.
    let (_, seq) = a.post(general, "m1", &format!("lunch, <@{bob}>?")).await;
    for device in [&mut phone, &mut laptop] {
        let n = notification(device).await;
        assert_eq!(n.kind, NotificationKind::Mention);
        assert_eq!(
            (n.workspace_id, n.channel_id, n.seq, n.actor_id),
            (workspace, Some(general), Some(seq), alice)
        );
        assert_eq!(n.preview, format!("lunch, <@{bob}>?"));
    }

    // A plain message notifies nobody at the default level; @channel notifies every member.
    a.post(general, "m2", "just chatting").await;
    let (_, everyone) = a.post(general, "m3", "@channel standup in 5").await;
    let n = notification(&mut phone).await;
    assert_eq!(
        (n.kind, n.seq),
        (NotificationKind::ChannelMention, Some(everyone)),
        "the next notification is @channel: no repeat of the mention, none for the plain message"
    );

    // A DM: every message notifies (default level `all` in a DM).
    let (status, dm) = node
        .post(
            &format!("/v1/workspaces/{workspace}/dms"),
            Some(&alice_token),
            json!({"user_ids": [bob]}),
        )
        .await;
    assert!(status == 200 || status == 201, "open dm: {dm}");
    let dm: Uuid = dm["id"].as_str().unwrap().parse().unwrap();
    let dm_seq = post(&node, &alice_token, dm, "psst").await;
    let n = notification(&mut phone).await;
    assert_eq!(
        (n.kind, n.channel_id, n.seq),
        (NotificationKind::Dm, Some(dm), Some(dm_seq))
    );

    // Carol replies in the thread of Bob's message: Bob hears of it, with the thread to open.
    let (_, parent) = phone.post(general, "b1", "who has the keys?").await;
    let reply = node
        .post(
            &format!("/v1/channels/{general}/messages"),
            Some(&carol_token),
            json!({"text": "me", "parent_seq": parent}),
        )
        .await;
    assert_eq!(reply.0, 201, "reply: {}", reply.1);
    let n = notification(&mut phone).await;
    assert_eq!(
        (n.kind, n.parent_seq),
        (NotificationKind::ThreadReply, Some(parent))
    );

    // The same notifications are listed over REST, newest first, each once.
    let (status, page) = node.get("/v1/notifications", &bob_token).await;
    assert_eq!(status, 200, "{page}");
    let kinds: Vec<&str> = page["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "thread_reply",
            "dm",
            "channel_mention",
            "mention",
            "invitation"
        ]
    );
}

/// The notifier skips the member list for a plain message when nobody chose level `all`; one
/// member who did must still hear of every message, and only they.
#[tokio::test]
async fn the_all_level_notifies_of_every_plain_message() {
    let node = TestNode::start().await;
    let (_alice, alice_token) = node.user("alice").await;
    let (_bob, bob_token) = node.user("bob").await;
    let (_carol, carol_token) = node.user("carol").await;
    let (_, general) = node.team(&alice_token, &[&bob_token, &carol_token]).await;
    let (mut b, _) = Client::identify(node.ws(), &bob_token).await;
    let (mut c, _) = Client::identify(node.ws(), &carol_token).await;

    let before = post(&node, &alice_token, general, "before bob chose all").await;
    let (status, body) = node
        .call(
            "PUT",
            &format!("/v1/channels/{general}/notifications"),
            Some(&bob_token),
            Some(json!({"level": "all"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let plain = post(&node, &alice_token, general, "just chatting").await;
    let n = notification(&mut b).await;
    assert_eq!(
        (n.kind, n.channel_id, n.seq),
        (NotificationKind::Message, Some(general), Some(plain)),
        "the first notification is the plain message after the change, not seq {before}"
    );
    // Carol, at the default level, gets nothing for it: her first notification is a mention.
    let mention = post(&node, &alice_token, general, "@channel and now everyone").await;
    let n = notification(&mut c).await;
    assert_eq!(
        (n.kind, n.seq),
        (NotificationKind::ChannelMention, Some(mention))
    );
}

#[tokio::test]
async fn mute_and_the_nothing_level_silence_a_channel() {
    let node = TestNode::start().await;
    let (_alice, alice_token) = node.user("alice").await;
    let (bob, bob_token) = node.user("bob").await;
    let (carol, carol_token) = node.user("carol").await;
    let (workspace, general) = node.team(&alice_token, &[&bob_token, &carol_token]).await;
    let (mut b, _) = Client::identify(node.ws(), &bob_token).await;
    let (mut c, _) = Client::identify(node.ws(), &carol_token).await;

    let (status, body) = node
        .call(
            "PUT",
            &format!("/v1/channels/{general}/mute"),
            Some(&bob_token),
            Some(json!({"muted": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = node
        .call(
            "PUT",
            &format!("/v1/channels/{general}/notifications"),
            Some(&carol_token),
            Some(json!({"level": "nothing"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["effective_level"], "nothing");
    let (status, body) = node
        .call(
            "PUT",
            &format!("/v1/channels/{general}/notifications"),
            Some(&carol_token),
            Some(json!({"level": "loud"})),
        )
        .await;
    assert_eq!(status, 400, "an unknown level is refused: {body}");

    post(
        &node,
        &alice_token,
        general,
        &format!("<@{bob}> <@{carol}> @channel"),
    )
    .await;
    // A DM afterwards is the first notification either of them gets.
    for (user, client) in [(bob, &mut b), (carol, &mut c)] {
        let (_, dm) = node
            .post(
                &format!("/v1/workspaces/{workspace}/dms"),
                Some(&alice_token),
                json!({"user_ids": [user]}),
            )
            .await;
        let dm: Uuid = dm["id"].as_str().unwrap().parse().unwrap();
        post(&node, &alice_token, dm, "marker").await;
        let n = notification(client).await;
        assert_eq!(
            (n.kind, n.channel_id),
            (NotificationKind::Dm, Some(dm)),
            "nothing came from the silenced channel"
        );
    }
}

#[tokio::test]
async fn ready_carries_badges_and_reading_elsewhere_clears_them() {
    let node = TestNode::start().await;
    let (_alice, alice_token) = node.user("alice").await;
    let (bob, bob_token) = node.user("bob").await;
    let (_, general) = node.team(&alice_token, &[&bob_token]).await;
    let (mut phone, _) = Client::identify(node.ws(), &bob_token).await;
    post(&node, &alice_token, general, "one").await;
    post(&node, &alice_token, general, &format!("two <@{bob}>")).await;
    let last = post(&node, &alice_token, general, "three @channel").await;
    // Notifications are recorded after commit, off the sequencer's path: the last one reaching
    // the phone means both mentions are counted.
    phone
        .wait_for(|f| matches!(f, ServerFrame::Notification(n) if n.seq == Some(last)))
        .await;

    let (mut laptop, ready) = Client::identify(node.ws(), &bob_token).await;
    let ServerFrame::Ready {
        channels, unreads, ..
    } = ready
    else {
        panic!("not ready: {ready:?}")
    };
    assert_eq!(channels.len(), unreads.len());
    let badge = unreads.iter().find(|u| u.channel_id == general).unwrap();
    assert_eq!(
        (badge.last_read_seq, badge.unread_count, badge.mention_count),
        (0, 3, 2)
    );

    // Reading on another device (REST) updates this one's badge.
    let (status, body) = node
        .post(
            &format!("/v1/channels/{general}/read"),
            Some(&bob_token),
            json!({"seq": last}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let state = laptop
        .wait_for(|f| matches!(f, ServerFrame::ReadState(_)))
        .await;
    let ServerFrame::ReadState(badge) = state else {
        unreachable!()
    };
    assert_eq!(
        (
            badge.channel_id,
            badge.last_read_seq,
            badge.unread_count,
            badge.mention_count
        ),
        (general, last, 0, 0)
    );
    laptop.send(&ClientFrame::Heartbeat).await;
}

#[tokio::test]
async fn being_added_to_a_workspace_is_an_invitation_notification() {
    let node = TestNode::start().await;
    let (alice, alice_token) = node.user("alice").await;
    let (_dave, dave_token) = node.user("dave").await;
    let (workspace, _) = node.team(&alice_token, &[]).await;
    let (mut d, _) = Client::identify(node.ws(), &dave_token).await;
    let (_, me) = node.get("/v1/users/me", &dave_token).await;
    let (status, body) = node
        .post(
            &format!("/v1/workspaces/{workspace}/members"),
            Some(&alice_token),
            json!({"email": me["email"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let n = notification(&mut d).await;
    assert_eq!(
        (n.kind, n.workspace_id, n.actor_id, n.channel_id),
        (NotificationKind::Invitation, workspace, alice, None)
    );
    assert_eq!(n.preview, "Team");
}
