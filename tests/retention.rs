//! Retention (issue 16): the job deletes exactly the history older than the workspace's policy,
//! spares channels under legal hold, says what it deleted in the audit log; owners and admins
//! set the policy and holds. Driven by `Node::retention_tick` with an explicit clock.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::TestNode;
use serde_json::{Value, json};
use uuid::Uuid;

async fn post(node: &TestNode, channel: Uuid, token: &str, text: &str) {
    let (status, body) = node
        .post(
            &format!("/v1/channels/{channel}/messages"),
            Some(token),
            json!({"text": text}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn messages(node: &TestNode, channel: Uuid, token: &str) -> Vec<Value> {
    let (status, page) = node
        .get(
            &format!("/v1/channels/{channel}/messages?after=0&limit=200"),
            token,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["messages"].as_array().unwrap().clone()
}

fn created_at(message: &Value) -> DateTime<Utc> {
    message["created_at"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn retention_deletes_exactly_what_is_older_than_the_policy_except_held_channels() {
    let node = TestNode::start().await;
    let (_, alice) = node.user("alice").await;
    let (_, bob) = node.user("bob").await;
    let (workspace, general) = node.team(&alice, &[&bob]).await;
    let (status, body) = node
        .post(
            &format!("/v1/workspaces/{workspace}/channels"),
            Some(&alice),
            json!({"name": "evidence"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let held: Uuid = body["id"].as_str().unwrap().parse().unwrap();
    for i in 0..3 {
        post(&node, held, &alice, &format!("evidence {i}")).await;
    }
    for i in 0..8 {
        post(&node, general, &bob, &format!("general {i}")).await;
    }

    // Only owners and admins set the policy and holds; members read the policy.
    let hold = format!("/v1/channels/{held}/legal-hold");
    let policy = format!("/v1/workspaces/{workspace}/retention");
    let (status, _) = node
        .call("PUT", &hold, Some(&bob), Some(json!({"held": true})))
        .await;
    assert_eq!(status, 403);
    let (status, body) = node
        .call("PUT", &hold, Some(&alice), Some(json!({"held": true})))
        .await;
    assert_eq!((status, &body["held"]), (200, &json!(true)), "{body}");
    let (status, _) = node
        .call("PUT", &policy, Some(&bob), Some(json!({"days": 1})))
        .await;
    assert_eq!(status, 403);
    let (status, body) = node
        .call("PUT", &policy, Some(&alice), Some(json!({"days": 0})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_retention"))
    );
    let (status, body) = node
        .call("PUT", &policy, Some(&alice), Some(json!({"days": 1})))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = node.get(&policy, &bob).await;
    assert_eq!((status, &body["days"]), (200, &json!(1)));

    // The clock: one day after a message of general whose predecessor is strictly older, so
    // exactly the messages before it are older than the policy.
    let before = messages(&node, general, &bob).await;
    let k = (1..before.len())
        .rev()
        .find(|&k| created_at(&before[k - 1]) < created_at(&before[k]))
        .expect("two messages a millisecond apart");
    let cutoff = created_at(&before[k]);
    let now = cutoff + Duration::days(1);
    let report = node
        .node
        .as_ref()
        .unwrap()
        .retention_tick(now)
        .await
        .unwrap();
    assert_eq!(report.deleted, k as u64, "{report:?}");
    assert_eq!(report.failed, 0);
    let after = messages(&node, general, &bob).await;
    assert_eq!(
        after,
        before[k..].to_vec(),
        "exactly the older messages are gone"
    );
    assert_eq!(
        messages(&node, held, &alice).await.len(),
        3,
        "held: untouched"
    );

    // The audit log says what went; a second tick deletes nothing more.
    let (_, audit) = node
        .get(&format!("/v1/workspaces/{workspace}/audit"), &alice)
        .await;
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "retention_deleted")
        .expect("a retention entry")
        .clone();
    assert_eq!(entry["target_id"], general.to_string());
    assert_eq!(entry["details"]["events"], k as u64);
    assert_eq!(entry["details"]["policy_days"], 1);
    let again = node
        .node
        .as_ref()
        .unwrap()
        .retention_tick(now)
        .await
        .unwrap();
    assert_eq!(again.deleted, 0);

    // Lifting the hold lets the policy apply to the channel.
    let (status, _) = node
        .call("PUT", &hold, Some(&alice), Some(json!({"held": false})))
        .await;
    assert_eq!(status, 200);
    let lifted = node
        .node
        .as_ref()
        .unwrap()
        .retention_tick(now)
        .await
        .unwrap();
    assert_eq!(lifted.deleted, 3);
    assert!(messages(&node, held, &alice).await.is_empty());
    // Forever again: nothing more is deleted, however late it is.
    let (status, _) = node
        .call("PUT", &policy, Some(&alice), Some(json!({"days": null})))
        .await;
    assert_eq!(status, 200);
    let later = now + Duration::days(365);
    let report = node
        .node
        .as_ref()
        .unwrap()
        .retention_tick(later)
        .await
        .unwrap();
    assert_eq!((report.channels, report.deleted), (0, 0));
    assert_eq!(messages(&node, general, &bob).await.len(), before.len() - k);
    node.shutdown().await;
}
