//! The chat API end to end through a real node: accounts, workspaces and roles, channels, direct
//! messages, messages (edits, deletes, reactions, threads, mentions), history, search, audit,
//! and what open WebSockets see when rights change.

mod common;

use std::time::Duration;

use chorus_core::{MetadataStore, SqliteMetadataStore};
use chorus_protocol::{ClientFrame, CloseCode, ErrorCode, EventKind, ServerFrame};
use chrono::Utc;
use common::{Client, TestNode, close_code};
use serde_json::{Value, json};
use uuid::Uuid;

fn uuid(value: &Value) -> Uuid {
    value.as_str().unwrap().parse().unwrap()
}

async fn email_of(node: &TestNode, token: &str) -> String {
    let (_, me) = node.get("/v1/users/me", token).await;
    me["email"].as_str().unwrap().to_string()
}

async fn subscribed(node: &TestNode, token: &str, channel: Uuid) -> Client {
    let (mut client, _) = Client::identify(node.ws(), token).await;
    client
        .send(&ClientFrame::Subscribe {
            channel_id: channel,
            since_seq: None,
        })
        .await;
    client
        .wait_for(|f| matches!(f, ServerFrame::Subscribed { .. }))
        .await;
    client
}

async fn next_event(client: &mut Client) -> chorus_protocol::MessageEvent {
    match client
        .wait_for(|f| matches!(f, ServerFrame::Message(_)))
        .await
    {
        ServerFrame::Message(event) => event,
        _ => unreachable!(),
    }
}

/// Sends `count` messages at once (without waiting in between) and returns, per send in order,
/// its acknowledged seq or the error code it was refused with.
async fn send_burst(
    client: &mut Client,
    channel: Uuid,
    tag: &str,
    count: usize,
) -> Vec<Result<u64, ErrorCode>> {
    let nonces: Vec<String> = (0..count).map(|i| format!("{tag}-{i}")).collect();
    for nonce in &nonces {
        client
            .send(&ClientFrame::Send {
                channel_id: channel,
                nonce: nonce.clone(),
                text: "burst".into(),
                parent_seq: None,
            })
            .await;
    }
    let mut answers: std::collections::HashMap<String, Result<u64, ErrorCode>> = Default::default();
    while answers.len() < count {
        match client
            .wait_for(|f| matches!(f, ServerFrame::Ack { .. } | ServerFrame::Error { .. }))
            .await
        {
            ServerFrame::Ack { nonce, seq, .. } => {
                answers.insert(nonce, Ok(seq));
            }
            ServerFrame::Error {
                nonce: Some(nonce),
                code,
                ..
            } => {
                answers.insert(nonce, Err(code));
            }
            other => panic!("an error without a nonce: {other:?}"),
        }
    }
    nonces.iter().map(|n| answers[n]).collect()
}

#[tokio::test]
async fn messages_edits_deletes_reactions_and_threads_arrive_in_channel_order() {
    let node = TestNode::start().await;
    let (alice_id, alice) = node.user("alice").await;
    let (bob_id, bob) = node.user("bob").await;
    let (_, channel) = node.team(&alice, &[&bob]).await;
    let mut bob_ws = subscribed(&node, &bob, channel).await;
    let base = format!("/v1/channels/{channel}/messages");

    // A REST post with a mention reaches Bob over WebSocket; the same nonce again posts nothing.
    let text = format!("hey <@{bob_id}>, look");
    let (status, posted) = node
        .post(&base, Some(&alice), json!({"text": text, "nonce": "r-1"}))
        .await;
    assert_eq!(status, 201, "{posted}");
    assert_eq!(posted["mentions"], json!([bob_id]));
    let seq = posted["seq"].as_u64().unwrap();
    let event = next_event(&mut bob_ws).await;
    assert_eq!(
        (event.seq, event.kind, event.mentions.clone()),
        (seq, EventKind::Message, vec![bob_id])
    );
    let (status, again) = node
        .post(
            &base,
            Some(&alice),
            json!({"text": "different", "nonce": "r-1"}),
        )
        .await;
    assert_eq!((status, again["seq"].as_u64()), (200, Some(seq)));

    // Edit, react, reply: each is its own event, in order, and history shows the result.
    let (status, edited) = node
        .call(
            "PATCH",
            &format!("{base}/{seq}"),
            Some(&alice),
            Some(json!({"text": "hey, look again"})),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["text"], "hey, look again");
    assert_eq!(edited["mentions"], json!([]));
    let (status, _) = node
        .call(
            "PATCH",
            &format!("{base}/{seq}"),
            Some(&bob),
            Some(json!({"text": "not mine"})),
        )
        .await;
    assert_eq!(status, 403, "only the author edits");
    for token in [&bob, &bob, &alice] {
        let (status, body) = node
            .call(
                "PUT",
                &format!("{base}/{seq}/reactions/tada"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, reply) = node
        .post(
            &base,
            Some(&bob),
            json!({"text": "in the thread", "parent_seq": seq}),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    let (status, _) = node
        .post(
            &base,
            Some(&bob),
            json!({"text": "nested", "parent_seq": reply["seq"]}),
        )
        .await;
    assert_eq!(status, 404, "threads are one level deep");

    let kinds: Vec<(EventKind, Option<u64>)> = {
        let mut kinds = Vec::new();
        for _ in 0..4 {
            let e = next_event(&mut bob_ws).await;
            kinds.push((e.kind, e.target_seq.or(e.parent_seq)));
        }
        kinds
    };
    assert_eq!(
        kinds,
        vec![
            (EventKind::Edit, Some(seq)),
            (EventKind::ReactionAdd, Some(seq)),
            (EventKind::ReactionAdd, Some(seq)),
            (EventKind::Message, Some(seq)),
        ],
        "Bob's second tada changed nothing and made no event"
    );

    let (_, message) = node.get(&format!("{base}/{seq}"), &bob).await;
    assert_eq!(message["text"], "hey, look again");
    assert_eq!(message["edit_count"], 1);
    assert_eq!(
        message["reactions"],
        json!([{"emoji": "tada", "count": 2, "users": [bob_id, alice_id]}])
    );
    assert_eq!(message["reply_count"], 1);
    let (_, edits) = node.get(&format!("{base}/{seq}/edits"), &bob).await;
    assert_eq!(edits["original_text"], text);
    assert_eq!(edits["edits"][0]["text"], "hey, look again");
    let (_, thread) = node.get(&format!("{base}/{seq}/replies"), &alice).await;
    assert_eq!(thread["replies"][0]["text"], "in the thread");

    // Bob takes his reaction back; Alice deletes her message: a tombstone, and edits stop.
    node.call(
        "DELETE",
        &format!("{base}/{seq}/reactions/tada"),
        Some(&bob),
        None,
    )
    .await;
    let (status, _) = node
        .call("DELETE", &format!("{base}/{seq}"), Some(&alice), None)
        .await;
    assert_eq!(status, 204);
    let (status, body) = node
        .call(
            "PATCH",
            &format!("{base}/{seq}"),
            Some(&alice),
            Some(json!({"text": "x"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("message_deleted"))
    );
    let (_, history) = node.get(&base, &bob).await;
    let first = &history["messages"][0];
    assert_eq!(
        (first["deleted"].as_bool(), first["text"].as_str()),
        (Some(true), Some(""))
    );
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        2,
        "message + reply, no edit rows"
    );

    // A deleted message starts no thread, nor does a reply: over REST, and over WebSocket, where
    // the channel service's replay buffer still shows what the parent is.
    let (status, _) = node
        .post(
            &base,
            Some(&bob),
            json!({"text": "late", "parent_seq": seq}),
        )
        .await;
    assert_eq!(status, 404, "a deleted message starts no thread");
    let reply_seq = reply["seq"].as_u64().unwrap();
    for (nonce, parent) in [("w-1", seq), ("w-2", reply_seq)] {
        bob_ws
            .send(&ClientFrame::Send {
                channel_id: channel,
                nonce: nonce.into(),
                text: "over the socket".into(),
                parent_seq: Some(parent),
            })
            .await;
        let answer = bob_ws
            .wait_for(|f| matches!(f, ServerFrame::Ack { nonce: n, .. } | ServerFrame::Error { nonce: Some(n), .. } if n == nonce))
            .await;
        assert!(
            matches!(
                answer,
                ServerFrame::Error {
                    code: ErrorCode::NotFound,
                    ..
                }
            ),
            "parent {parent}: {answer:?}"
        );
    }

    // The raw event stream has everything, in order, for clients resyncing.
    let (_, events) = node
        .get(&format!("/v1/channels/{channel}/events?after=0"), &bob)
        .await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "message",
            "edit",
            "reaction_add",
            "reaction_add",
            "message",
            "reaction_remove",
            "delete"
        ]
    );
}

#[tokio::test]
async fn history_pages_around_a_message_and_search_finds_only_readable_messages() {
    let node = TestNode::start().await;
    let (alice_id, alice) = node.user("alice").await;
    let (_, eve) = node.user("eve").await;
    let (_, channel) = node.team(&alice, &[]).await;
    let (_, eve_channel) = node.team(&eve, &[]).await;
    let base = format!("/v1/channels/{channel}/messages");
    for i in 1..=9 {
        node.post(&base, Some(&alice), json!({"text": format!("note {i}")}))
            .await;
    }
    node.post(
        &format!("/v1/channels/{eve_channel}/messages"),
        Some(&eve),
        json!({"text": "note from eve"}),
    )
    .await;

    let (_, page) = node.get(&format!("{base}?around=5&limit=4"), &alice).await;
    let seqs: Vec<u64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [4, 5, 6, 7]);
    assert_eq!(page["has_more"], true);
    let (status, _) = node.get(&format!("{base}?around=5&before=3"), &alice).await;
    assert_eq!(status, 400);

    // Edited text is what search sees.
    node.call(
        "PATCH",
        &format!("{base}/3"),
        Some(&alice),
        Some(json!({"text": "renamed item"})),
    )
    .await;
    let (_, wsid) = node.get("/v1/workspaces", &alice).await;
    let workspace = uuid(&wsid[0]["id"]);
    let (_, found) = node
        .get(&format!("/v1/workspaces/{workspace}/search?q=NOTE"), &alice)
        .await;
    let texts: Vec<&str> = found["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 8, "{texts:?}");
    assert!(
        texts
            .iter()
            .all(|t| t.starts_with("note ") && *t != "note 3"),
        "newest first, nothing of eve's: {texts:?}"
    );
    let (_, found) = node
        .get(
            &format!("/v1/workspaces/{workspace}/search?q=renamed&author={alice_id}"),
            &alice,
        )
        .await;
    assert_eq!(found["messages"][0]["seq"], 3);
    // Eve cannot search Alice's workspace, nor read its channel by id.
    let (status, _) = node
        .get(&format!("/v1/workspaces/{workspace}/search?q=note"), &eve)
        .await;
    assert_eq!(status, 404);
    let (status, _) = node.get(&base, &eve).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn channels_have_topics_archives_mutes_and_unread_counts() {
    let node = TestNode::start().await;
    let (alice_id, alice) = node.user("alice").await;
    let (bob_id, bob) = node.user("bob").await;
    let (workspace, channel) = node.team(&alice, &[&bob]).await;
    let path = format!("/v1/channels/{channel}");

    let (status, body) = node
        .call(
            "PATCH",
            &path,
            Some(&bob),
            Some(json!({"topic": "release day"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["topic"].as_str(), body["topic_set_by"].as_str()),
        (Some("release day"), Some(bob_id.to_string().as_str()))
    );
    let (status, _) = node
        .call("PATCH", &path, Some(&bob), Some(json!({"name": "renamed"})))
        .await;
    assert_eq!(
        status, 403,
        "members don't rename channels they didn't create"
    );
    let (status, body) = node
        .call(
            "PATCH",
            &path,
            Some(&alice),
            Some(json!({"name": "Bad Name"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_channel_name"))
    );

    // Unread counts follow messages, not edits, and "mark read" moves forward only.
    for i in 0..3 {
        node.post(
            &format!("{path}/messages"),
            Some(&alice),
            json!({"text": format!("m{i}")}),
        )
        .await;
    }
    node.call(
        "PATCH",
        &format!("{path}/messages/1"),
        Some(&alice),
        Some(json!({"text": "m0!"})),
    )
    .await;
    let unread = |listing: &Value| {
        listing
            .as_array()
            .unwrap()
            .iter()
            .find(|c| uuid(&c["id"]) == channel)
            .unwrap()["unread_count"]
            .as_u64()
    };
    let (_, listing) = node
        .get(&format!("/v1/workspaces/{workspace}/channels"), &bob)
        .await;
    assert_eq!(unread(&listing), Some(3));
    let (_, read) = node
        .post(&format!("{path}/read"), Some(&bob), json!({"seq": 2}))
        .await;
    assert_eq!(read["last_read_seq"], 2);
    let (_, read) = node
        .post(&format!("{path}/read"), Some(&bob), json!({"seq": 1}))
        .await;
    assert_eq!(read["last_read_seq"], 2, "never moves back");
    let (_, listing) = node
        .get(&format!("/v1/workspaces/{workspace}/channels"), &bob)
        .await;
    assert_eq!(unread(&listing), Some(1));
    let (_, muted) = node
        .call(
            "PUT",
            &format!("{path}/mute"),
            Some(&bob),
            Some(json!({"muted": true})),
        )
        .await;
    assert_eq!(muted["muted"], true);

    // Archived: read-only for REST and for an open WebSocket, readable still.
    let mut bob_ws = subscribed(&node, &bob, channel).await;
    let (status, _) = node
        .post(&format!("{path}/archive"), Some(&alice), json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, body) = node
        .post(
            &format!("{path}/messages"),
            Some(&bob),
            json!({"text": "late"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("channel_archived"))
    );
    // Every send issued once the archive was answered is refused — the first ones too, before
    // the gateway has heard of it: the channel's sequencer refuses them (issue: 1–4 of 20 used
    // to be acknowledged).
    let answers = send_burst(&mut bob_ws, channel, "archived", 20).await;
    assert!(
        answers
            .iter()
            .all(|answer| answer == &Err(ErrorCode::Forbidden)),
        "{answers:?}"
    );
    let (status, _) = node.get(&format!("{path}/messages"), &bob).await;
    assert_eq!(status, 200);
    let (status, _) = node
        .post(&format!("{path}/unarchive"), Some(&alice), json!({}))
        .await;
    assert_eq!(status, 200);
    // And every send once the unarchive was answered is accepted (2–4 of 20 used to be refused).
    let answers = send_burst(&mut bob_ws, channel, "unarchived", 20).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");

    // Leaving and being removed end WebSocket subscriptions.
    let (status, _) = node
        .call(
            "DELETE",
            &format!("{path}/members/{bob_id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let frame = bob_ws
        .wait_for(|f| matches!(f, ServerFrame::Unsubscribed { .. }))
        .await;
    assert!(matches!(frame, ServerFrame::Unsubscribed { channel_id } if channel_id == channel));
    let (status, _) = node.get(&format!("{path}/messages"), &bob).await;
    assert_eq!(status, 403);
    let _ = alice_id;
}

#[tokio::test]
async fn direct_messages_are_opened_once_per_set_of_people() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (bob_id, bob) = node.user("bob").await;
    let (carol_id, carol) = node.user("carol").await;
    let (workspace, _) = node.team(&alice, &[&bob, &carol]).await;
    let dms = format!("/v1/workspaces/{workspace}/dms");
    let (status, first) = node
        .post(&dms, Some(&alice), json!({"user_ids": [bob_id]}))
        .await;
    assert_eq!((status, first["kind"].as_str()), (201, Some("dm")));
    let (_, alice_id) = node.get("/v1/users/me", &alice).await;
    let (status, again) = node
        .post(&dms, Some(&bob), json!({"user_ids": [alice_id["id"]]}))
        .await;
    assert_eq!(
        (status, &again["id"]),
        (200, &first["id"]),
        "Bob opens the same conversation"
    );
    let (status, group) = node
        .post(&dms, Some(&alice), json!({"user_ids": [bob_id, carol_id]}))
        .await;
    assert_eq!(status, 201);
    assert_ne!(group["id"], first["id"]);
    let too_many: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
    let (status, _) = node
        .post(&dms, Some(&alice), json!({"user_ids": too_many}))
        .await;
    assert_eq!(status, 400);
    // Carol is not in the 1:1: to her it does not exist (404, as for a channel id that is no
    // channel), over REST and over the socket.
    let dm = uuid(&first["id"]);
    for (status, body) in [
        node.post(&format!("/v1/channels/{dm}/join"), Some(&carol), json!({}))
            .await,
        node.get(&format!("/v1/channels/{dm}/messages"), &carol)
            .await,
        node.get(&format!("/v1/channels/{dm}"), &carol).await,
    ] {
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found"))
        );
    }
    let (mut carol_ws, _) = Client::identify(node.ws(), &carol).await;
    carol_ws
        .send(&ClientFrame::Subscribe {
            channel_id: dm,
            since_seq: None,
        })
        .await;
    match carol_ws.next().await {
        ServerFrame::Error { code, .. } => assert_eq!(code, ErrorCode::NotFound),
        other => panic!("{other:?}"),
    }
    let (status, _) = node
        .post(
            &format!("/v1/channels/{dm}/messages"),
            Some(&bob),
            json!({"text": "psst"}),
        )
        .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn invitations_roles_removal_and_the_audit_log() {
    let node = TestNode::start().await;
    let (owner_id, owner) = node.user("owner").await;
    let (dave_id, dave) = node.user("dave").await;
    let (_, mallory) = node.user("mallory").await;
    let (workspace, channel) = node.team(&owner, &[]).await;
    let base = format!("/v1/workspaces/{workspace}");

    let (status, invite) = node
        .post(
            &format!("{base}/invites"),
            Some(&owner),
            json!({"email": email_of(&node, &dave).await, "role": "admin"}),
        )
        .await;
    assert_eq!(status, 201, "{invite}");
    let token = invite["token"].as_str().unwrap();
    let (status, body) = node
        .post(
            "/v1/invites/accept",
            Some(&mallory),
            json!({"token": token}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("invite_for_another_email"))
    );
    let (status, joined) = node
        .post("/v1/invites/accept", Some(&dave), json!({"token": token}))
        .await;
    assert_eq!((status, joined["role"].as_str()), (200, Some("admin")));
    let (status, _) = node
        .post("/v1/invites/accept", Some(&dave), json!({"token": token}))
        .await;
    assert_eq!(status, 404, "an invitation is used once");

    // The last owner can neither leave nor be demoted; an admin cannot touch the owner.
    let (status, body) = node
        .call(
            "DELETE",
            &format!("{base}/members/{owner_id}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("last_owner"))
    );
    let (status, _) = node
        .call(
            "PATCH",
            &format!("{base}/members/{owner_id}"),
            Some(&dave),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = node
        .call(
            "PATCH",
            &format!("{base}/members/{dave_id}"),
            Some(&owner),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(status, 200);

    // Dave posts, the owner deletes it (audited), then removes Dave, whose socket loses the channel.
    node.post(
        &format!("/v1/channels/{channel}/join"),
        Some(&dave),
        json!({}),
    )
    .await;
    let (_, posted) = node
        .post(
            &format!("/v1/channels/{channel}/messages"),
            Some(&dave),
            json!({"text": "oops"}),
        )
        .await;
    let seq = posted["seq"].as_u64().unwrap();
    let (status, _) = node
        .call(
            "DELETE",
            &format!("/v1/channels/{channel}/messages/{seq}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let mut dave_ws = subscribed(&node, &dave, channel).await;
    let (status, _) = node
        .call(
            "DELETE",
            &format!("{base}/members/{dave_id}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(status, 204);
    dave_ws
        .wait_for(|f| matches!(f, ServerFrame::Unsubscribed { .. }))
        .await;
    let (status, _) = node.get(&base, &dave).await;
    assert_eq!(status, 404, "the workspace no longer exists for Dave");

    let (status, log) = node.get(&format!("{base}/audit"), &owner).await;
    assert_eq!(status, 200, "{log}");
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for wanted in [
        "member_removed",
        "message_deleted",
        "role_changed",
        "invite_accepted",
        "member_invited",
        "login_succeeded",
    ] {
        assert!(
            actions.contains(&wanted),
            "{wanted} missing from {actions:?}"
        );
    }
    let text = log.to_string();
    assert!(
        !text.contains(token) && !text.contains("password"),
        "no secrets in the audit log"
    );
    let (status, _) = node.get(&format!("{base}/audit"), &mallory).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn accounts_profiles_passwords_sessions_and_disabling() {
    let node =
        TestNode::start_with(|config| config.admin_token = Some("operator-secret".into())).await;
    let (user_id, first) = node.user("zoe").await;
    let email = email_of(&node, &first).await;
    let (status, profile) = node
        .call("PATCH", "/v1/users/me", Some(&first), Some(json!({"display_name": "Zoé", "time_zone": "Europe/Paris", "avatar_url": "https://example.com/z.png"})))
        .await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(
        (
            profile["display_name"].as_str(),
            profile["time_zone"].as_str()
        ),
        (Some("Zoé"), Some("Europe/Paris"))
    );
    let (_, profile) = node
        .call(
            "PATCH",
            "/v1/users/me",
            Some(&first),
            Some(json!({"avatar_url": null})),
        )
        .await;
    assert_eq!(
        (
            profile["avatar_url"].is_null(),
            profile["time_zone"].as_str()
        ),
        (true, Some("Europe/Paris"))
    );
    let (status, _) = node
        .call(
            "PATCH",
            "/v1/users/me",
            Some(&first),
            Some(json!({"time_zone": "not a zone"})),
        )
        .await;
    assert_eq!(status, 400);

    // A second session; the first changes the password: the second stops working, its socket closes.
    let (_, login) = node
        .post(
            "/v1/auth/login",
            None,
            json!({"email": email, "password": "correct horse battery"}),
        )
        .await;
    let second = login["access_token"].as_str().unwrap().to_string();
    let (_, sessions) = node.get("/v1/users/me/sessions", &first).await;
    assert_eq!(sessions.as_array().unwrap().len(), 2);
    let (mut second_ws, _) = Client::identify(node.ws(), &second).await;
    let (status, _) = node
        .post(
            "/v1/users/me/password",
            Some(&first),
            json!({"current_password": "wrong one!", "new_password": "new horse battery"}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = node.post("/v1/users/me/password", Some(&first), json!({"current_password": "correct horse battery", "new_password": "new horse battery"})).await;
    assert_eq!(status, 204);
    assert_eq!(
        close_code(&second_ws.closed().await),
        Some(CloseCode::AuthenticationFailed.code())
    );
    let (status, _) = node.get("/v1/users/me", &second).await;
    assert_eq!(status, 401);
    let (status, _) = node
        .post(
            "/v1/auth/login",
            None,
            json!({"email": email, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, 401, "the old password is gone");

    // The operator disables the account: the last session and its socket end, login is refused.
    let (mut first_ws, _) = Client::identify(node.ws(), &first).await;
    let disable = node
        .http
        .post(node.url(&format!("/v1/admin/users/{user_id}/disable")))
        .send()
        .await
        .unwrap();
    assert_eq!(disable.status(), 401, "the operator token is required");
    let disable = node
        .http
        .post(node.url(&format!("/v1/admin/users/{user_id}/disable")))
        .header("x-chorus-admin-token", "operator-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(disable.status(), 204);
    assert_eq!(
        close_code(&first_ws.closed().await),
        Some(CloseCode::AuthenticationFailed.code())
    );
    let (status, body) = node
        .post(
            "/v1/auth/login",
            None,
            json!({"email": email, "password": "new horse battery"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("account_disabled"))
    );
}

#[tokio::test]
async fn revocations_no_notice_announced_still_close_sockets() {
    let node = TestNode::start_with(|config| config.gateway.access_sweep_ms = 200).await;
    let (_, zoe) = node.user("zoe").await;
    let (yan_id, yan) = node.user("yan").await;
    let email = email_of(&node, &zoe).await;
    let (_, login) = node
        .post(
            "/v1/auth/login",
            None,
            json!({"email": email, "password": "correct horse battery"}),
        )
        .await;
    let zoe_elsewhere = login["access_token"].as_str().unwrap().to_string();
    let (mut zoe_ws, _) = Client::identify(node.ws(), &zoe).await;
    let (mut zoe_other_ws, _) = Client::identify(node.ws(), &zoe_elsewhere).await;
    let (mut yan_ws, _) = Client::identify(node.ws(), &yan).await;
    let (_, sessions) = node.get("/v1/users/me/sessions", &zoe).await;
    let current = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap();

    // Written straight to the metadata store: no access notice goes out, as when one is lost.
    let store = SqliteMetadataStore::open(&node.dir.path().join("metadata.db"))
        .await
        .unwrap();
    store
        .revoke_session(uuid(&current["id"]), Utc::now())
        .await
        .unwrap();
    store
        .set_user_disabled(yan_id, Some(Utc::now()))
        .await
        .unwrap();

    for ws in [&mut zoe_ws, &mut yan_ws] {
        let closed = tokio::time::timeout(Duration::from_secs(5), ws.closed())
            .await
            .expect("the sweep closes the socket within seconds");
        assert_eq!(
            close_code(&closed),
            Some(CloseCode::AuthenticationFailed.code())
        );
    }
    // Zoé's other session was not revoked: its socket was re-checked and stays.
    zoe_other_ws.send(&ClientFrame::Heartbeat).await;
    assert!(matches!(
        zoe_other_ws.next().await,
        ServerFrame::HeartbeatAck
    ));
}

#[tokio::test]
async fn a_reused_refresh_token_closes_the_sessions_sockets_at_once() {
    let node = TestNode::start().await;
    let email = format!("thief-{}@example.com", Uuid::new_v4().simple());
    let (status, _) = node
        .post(
            "/v1/auth/register",
            None,
            json!({"email": email, "password": "correct horse battery", "display_name": "v"}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, login) = node
        .post(
            "/v1/auth/login",
            None,
            json!({"email": email, "password": "correct horse battery"}),
        )
        .await;
    let access = login["access_token"].as_str().unwrap().to_string();
    let stolen = login["refresh_token"].as_str().unwrap().to_string();
    let (mut ws, _) = Client::identify(node.ws(), &access).await;

    // The owner refreshes; then the stolen (already used) token comes back.
    let (status, _) = node
        .post("/v1/auth/refresh", None, json!({"refresh_token": stolen}))
        .await;
    assert_eq!(status, 200);
    let (status, body) = node
        .post("/v1/auth/refresh", None, json!({"refresh_token": stolen}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_refresh_token"))
    );

    // The session's socket closes now, not at the next access sweep (15 s).
    let closed = tokio::time::timeout(Duration::from_secs(2), ws.closed())
        .await
        .expect("the socket of a session revoked by refresh-token reuse stayed open");
    assert_eq!(
        close_code(&closed),
        Some(CloseCode::AuthenticationFailed.code())
    );
}

/// The `created_at` of a JSON text, as written.
fn created_at_of(json: &str) -> String {
    let value: Value = serde_json::from_str(json).unwrap();
    value["created_at"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_message_has_one_millisecond_timestamp_on_the_socket_and_in_rest() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (_, channel) = node.team(&alice, &[]).await;
    let mut ws = subscribed(&node, &alice, channel).await;
    ws.send(&ClientFrame::Send {
        channel_id: channel,
        nonce: "t1".into(),
        text: "what time is it".into(),
        parent_seq: None,
    })
    .await;
    // The raw frames, as a client reads them: the ack and the message echo, in either order.
    let (mut ack, mut echo) = (None, None);
    while ack.is_none() || echo.is_none() {
        let message = tokio::time::timeout(
            common::FRAME_WAIT,
            futures_util::StreamExt::next(&mut ws.ws),
        )
        .await
        .unwrap()
        .unwrap()
        .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            match ServerFrame::parse(&text).unwrap() {
                ServerFrame::Ack { .. } => ack = Some(created_at_of(&text)),
                ServerFrame::Message(_) => echo = Some(created_at_of(&text)),
                _ => {}
            }
        }
    }
    let (status, events) = node
        .get(&format!("/v1/channels/{channel}/events?after=0"), &alice)
        .await;
    assert_eq!(status, 200, "{events}");
    let (status, history) = node
        .get(&format!("/v1/channels/{channel}/messages"), &alice)
        .await;
    assert_eq!(status, 200, "{history}");
    let from_events = events["events"][0]["created_at"].as_str().unwrap();
    let from_history = history["messages"][0]["created_at"].as_str().unwrap();
    let spellings = [
        ack.unwrap(),
        echo.unwrap(),
        from_events.to_string(),
        from_history.to_string(),
    ];
    for spelling in &spellings {
        // RFC 3339, UTC, exactly three fraction digits: `2026-11-24T12:00:00.120Z`.
        let (_, fraction) = spelling.rsplit_once('.').expect("a fraction");
        assert!(
            fraction.len() == 4
                && fraction.ends_with('Z')
                && fraction[..3].bytes().all(|b| b.is_ascii_digit()),
            "{spelling}"
        );
    }
    assert!(
        spellings.iter().all(|s| *s == spellings[0]),
        "{spellings:?}"
    );
    // Other timestamps of the API are spelled the same way.
    let (_, me) = node.get("/v1/users/me", &alice).await;
    let (_, channel_view) = node.get(&format!("/v1/channels/{channel}"), &alice).await;
    for spelling in [&me["created_at"], &channel_view["created_at"]] {
        let spelling = spelling.as_str().unwrap();
        assert_eq!(spelling.rsplit_once('.').unwrap().1.len(), 4, "{spelling}");
    }
    node.shutdown().await;
}
