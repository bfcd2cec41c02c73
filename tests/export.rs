//! Exports (issue 16, data governance): what was posted comes back out, in order, with its edits,
//! deletions, reactions and thread replies, as JSON and as CSV; only owners and admins may
//! export; every export is in the audit log.

mod common;

use common::TestNode;
use serde_json::{Value, json};
use uuid::Uuid;

/// Fetches an export; returns status, content type and body text.
async fn export(node: &TestNode, path: &str, token: &str) -> (u16, String, String) {
    let response = node
        .http
        .get(node.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

async fn post(node: &TestNode, channel: Uuid, token: &str, body: Value) -> u64 {
    let (status, message) = node
        .post(
            &format!("/v1/channels/{channel}/messages"),
            Some(token),
            body,
        )
        .await;
    assert_eq!(status, 201, "{message}");
    message["seq"].as_u64().unwrap()
}

/// Splits RFC 4180 text into records of fields (quoted fields may hold commas, quotes, breaks).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        field.is_empty() && record.is_empty(),
        "text ends mid-record"
    );
    records
}

#[tokio::test]
async fn a_channel_export_round_trips_what_was_posted() {
    let node = TestNode::start().await;
    let (alice_id, alice) = node.user("alice").await;
    let (bob_id, bob) = node.user("bob").await;
    let (workspace, channel) = node.team(&alice, &[&bob]).await;

    // More than one page of history (the export reads 200 messages at a time), with a thread,
    // an edit, a deletion and reactions among them.
    let mut posted: Vec<(u64, String)> = Vec::new();
    for i in 0..205 {
        let (token, text) = if i % 2 == 0 {
            (&alice, format!("message {i}, with a comma"))
        } else {
            (&bob, format!("message {i} \"quoted\"\nand a second line"))
        };
        let seq = post(&node, channel, token, json!({"text": text})).await;
        posted.push((seq, text));
    }
    let (parent, _) = posted[3].clone();
    let reply = post(
        &node,
        channel,
        &alice,
        json!({"text": "a reply", "parent_seq": parent}),
    )
    .await;
    posted.push((reply, "a reply".into()));
    let (edited, _) = posted[5].clone();
    let (status, body) = node
        .call(
            "PATCH",
            &format!("/v1/channels/{channel}/messages/{edited}"),
            Some(&bob),
            Some(json!({"text": "edited text"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (deleted, _) = posted[8].clone();
    let (status, body) = node
        .call(
            "DELETE",
            &format!("/v1/channels/{channel}/messages/{deleted}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    for token in [&alice, &bob] {
        let (status, body) = node
            .call(
                "PUT",
                &format!("/v1/channels/{channel}/messages/{parent}/reactions/tada"),
                Some(token),
                None,
            )
            .await;
        assert!(status == 200 || status == 204, "{status} {body}");
    }

    // JSON: every message in seq order, folded.
    let (status, content_type, text) =
        export(&node, &format!("/v1/channels/{channel}/export"), &alice).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_type, "application/json");
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["workspace_id"], workspace.to_string());
    assert_eq!(doc["channels"].as_array().unwrap().len(), 1);
    assert_eq!(doc["channels"][0]["channel"]["id"], channel.to_string());
    let messages = doc["channels"][0]["messages"].as_array().unwrap();
    let seqs: Vec<u64> = messages
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = posted.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, expected, "every message, in order");
    for (message, (seq, text)) in messages.iter().zip(&posted) {
        match *seq {
            s if s == edited => {
                assert_eq!(message["text"], "edited text");
                assert_eq!(message["original_text"], text.as_str());
                assert_eq!(message["edits"][0]["text"], "edited text");
            }
            s if s == deleted => {
                assert_eq!(message["deleted"]["by"], alice_id.to_string());
                assert_eq!(message["text"], "");
            }
            _ => assert_eq!(message["text"], text.as_str(), "seq {seq}"),
        }
    }
    let parent_row = messages.iter().find(|m| m["seq"] == parent).unwrap();
    assert_eq!(parent_row["reply_count"], 1);
    assert_eq!(parent_row["reactions"][0]["emoji"], "tada");
    assert_eq!(
        parent_row["reactions"][0]["users"],
        json!([alice_id, bob_id])
    );
    let reply_row = messages.iter().find(|m| m["seq"] == reply).unwrap();
    assert_eq!(reply_row["parent_seq"], parent);

    // CSV: the same messages, one record each, texts intact through the quoting.
    let (status, content_type, text) = export(
        &node,
        &format!("/v1/channels/{channel}/export?format=csv"),
        &alice,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let records = parse_csv(&text);
    let header = &records[0];
    let column = |name: &str| header.iter().position(|c| c == name).unwrap();
    assert_eq!(records.len(), posted.len() + 1);
    for (record, (seq, text)) in records[1..].iter().zip(&posted) {
        assert_eq!(record[column("seq")], seq.to_string());
        match *seq {
            s if s == edited => assert_eq!(record[column("text")], "edited text"),
            s if s == deleted => {
                assert_eq!(record[column("deleted_by")], alice_id.to_string());
                assert_eq!(record[column("text")], "");
            }
            s if s == parent => {
                assert_eq!(record[column("reactions")], "tada=2");
                assert_eq!(record[column("reply_count")], "1");
            }
            _ => assert_eq!(&record[column("text")], text),
        }
    }

    // Both exports are in the audit log.
    let (status, audit) = node
        .get(&format!("/v1/workspaces/{workspace}/audit"), &alice)
        .await;
    assert_eq!(status, 200, "{audit}");
    let exports: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "data_exported")
        .collect();
    assert_eq!(exports.len(), 2, "{audit}");
    assert_eq!(exports[0]["actor_id"], alice_id.to_string());
    assert_eq!(exports[0]["details"]["format"], "csv");
    node.shutdown().await;
}

#[tokio::test]
async fn a_workspace_export_holds_what_the_admin_sees_and_only_admins_export() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (_, bob) = node.user("bob").await;
    let (workspace, general) = node.team(&alice, &[&bob]).await;
    post(&node, general, &bob, json!({"text": "in general"})).await;
    // A private channel of the owner's, and one of bob's that the owner is not in.
    let create = |token: &str, name: &str| {
        let token = token.to_string();
        let name = name.to_string();
        let node = &node;
        async move {
            let (status, body) = node
                .post(
                    &format!("/v1/workspaces/{workspace}/channels"),
                    Some(&token),
                    json!({"name": name, "private": true}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            body["id"].as_str().unwrap().parse::<Uuid>().unwrap()
        }
    };
    let mine = create(&alice, "owners-room").await;
    let theirs = create(&bob, "bobs-room").await;
    post(&node, mine, &alice, json!({"text": "owner only"})).await;
    post(&node, theirs, &bob, json!({"text": "bob only"})).await;

    let (status, _, text) =
        export(&node, &format!("/v1/workspaces/{workspace}/export"), &alice).await;
    assert_eq!(status, 200, "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    let ids: Vec<String> = doc["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"]["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains(&general.to_string()) && ids.contains(&mine.to_string()));
    assert!(
        !ids.contains(&theirs.to_string()),
        "a private channel the owner is not in"
    );
    assert!(text.contains("owner only") && !text.contains("bob only"));

    // A member may not export; a channel they cannot see does not exist; a bad format is a 400.
    let (status, body) = node
        .get(&format!("/v1/workspaces/{workspace}/export"), &bob)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, _) = node
        .get(&format!("/v1/channels/{general}/export"), &bob)
        .await;
    assert_eq!(status, 403);
    let (status, _) = node
        .get(&format!("/v1/channels/{theirs}/export"), &alice)
        .await;
    assert_eq!(status, 404);
    let (status, body) = node
        .get(&format!("/v1/channels/{general}/export?format=xml"), &alice)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    node.shutdown().await;
}
