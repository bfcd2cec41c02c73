//! Backup and restore of an embedded node (issue 16): a backup taken while messages are being
//! posted, restored into a new data directory, holds every message acknowledged before the
//! backup began; the restored node serves them and sequences new ones after them.

mod common;

use chorus::{Node, NodeConfig};
use common::TestNode;
use serde_json::{Value, json};
use uuid::Uuid;

const ADMIN: &str = "operator-token";

/// Every message of `channel`, oldest first, through history pages.
async fn history(node: &TestNode, channel: Uuid, token: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = node
            .get(
                &format!("/v1/channels/{channel}/messages?after={after}&limit=200"),
                token,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let messages = page["messages"].as_array().unwrap().clone();
        let Some(last) = messages.last() else { break };
        after = last["seq"].as_u64().unwrap();
        all.extend(messages);
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_posting_restores_every_acknowledged_message() {
    let node = TestNode::start_with(|c| {
        c.admin_token = Some(ADMIN.into());
        // Snapshots (and log purges) happen during the test, as they would in production.
        c.channels.snapshot_every = 50;
    })
    .await;
    let (_, alice) = node.user("alice").await;
    let (_, channel) = node.team(&alice, &[]).await;
    let post = |i: usize| {
        let rest = node.rest();
        let alice = alice.clone();
        async move {
            let (status, body) = rest
                .post(
                    &format!("/v1/channels/{channel}/messages"),
                    Some(&alice),
                    json!({"text": format!("before {i}")}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            body["seq"].as_u64().unwrap()
        }
    };
    let mut acknowledged = Vec::new();
    for i in 0..120 {
        acknowledged.push(post(i).await);
    }

    // Posting goes on while the backup is taken.
    let writer = {
        let rest = node.rest();
        let alice = alice.clone();
        tokio::spawn(async move {
            for i in 0..60 {
                let (status, body) = rest
                    .post(
                        &format!("/v1/channels/{channel}/messages"),
                        Some(&alice),
                        json!({"text": format!("during {i}")}),
                    )
                    .await;
                assert_eq!(status, 201, "{body}");
            }
        })
    };
    let backups = tempfile::tempdir().unwrap();
    let dest = backups.path().join("monday");
    let manifest = chorus::backup::request(&node.rest().base, ADMIN, &dest)
        .await
        .unwrap();
    writer.await.unwrap();
    assert!(manifest.events >= acknowledged.len() as u64, "{manifest:?}");
    for file in ["metadata.db", "messages.redb", "channels/raft.redb"] {
        assert!(manifest.files.iter().any(|f| f == file), "{manifest:?}");
    }
    // A second backup into the same place is refused, not merged.
    let again = chorus::backup::request(&node.rest().base, ADMIN, &dest).await;
    assert!(again.unwrap_err().to_string().contains("409"));
    node.shutdown().await;

    // Restore into a new data directory; a non-empty one is refused unless forced.
    let restored_dir = tempfile::tempdir().unwrap();
    std::fs::write(restored_dir.path().join("stray"), b"x").unwrap();
    let refused = chorus::backup::restore(&dest, restored_dir.path(), false).unwrap_err();
    assert!(refused.to_string().contains("--force"), "{refused}");
    chorus::backup::restore(&dest, restored_dir.path(), true).unwrap();

    let mut config = NodeConfig::for_tests(restored_dir.path());
    config.gateway.frames_per_second = 10_000;
    let restored = TestNode {
        node: Some(Node::start(config.clone()).await.unwrap()),
        dir: restored_dir,
        config,
        http: reqwest::Client::new(),
    };
    // The old access token still works: sessions and the signing secret came back too.
    let messages = history(&restored, channel, &alice).await;
    let seqs: Vec<u64> = messages
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    for (i, seq) in acknowledged.iter().enumerate() {
        let found = messages.iter().find(|m| m["seq"] == *seq);
        assert_eq!(
            found.map(|m| m["text"].clone()),
            Some(json!(format!("before {i}"))),
            "acknowledged message {i} (seq {seq}) is restored"
        );
    }
    // New messages follow what the restored channel state knows, never before it.
    let (status, body) = restored
        .post(
            &format!("/v1/channels/{channel}/messages"),
            Some(&alice),
            json!({"text": "after the restore"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let new_seq = body["seq"].as_u64().unwrap();
    assert!(new_seq > *acknowledged.last().unwrap());
    let after = history(&restored, channel, &alice).await;
    for seq in &acknowledged {
        assert!(after.iter().any(|m| m["seq"] == *seq), "seq {seq} kept");
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    restored.shutdown().await;
}
