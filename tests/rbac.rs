//! The RBAC matrix: every REST endpoint and WebSocket action, tried as owner, admin, member,
//! guest, a user outside the workspace and a member of another workspace, against the allow/deny
//! table of `api/src/policy.rs` (docs/PERMISSIONS.md). Any unexpected allow fails the test.

mod common;

use chorus_protocol::{ClientFrame, ErrorCode, ServerFrame};
use common::{Client, TestNode};
use serde_json::{Value, json};
use uuid::Uuid;

/// The six kinds of caller, in table order.
const CALLERS: [&str; 6] = ["owner", "admin", "member", "guest", "outsider", "other_ws"];

struct World {
    node: TestNode,
    tokens: Vec<String>,
    ids: Vec<Uuid>,
    workspace: Uuid,
    /// A public channel every workspace role is in.
    channel: Uuid,
    /// A private channel only the owner is in.
    private: Uuid,
}

fn id(body: &Value) -> Uuid {
    body["id"].as_str().unwrap().parse().unwrap()
}

impl World {
    async fn build() -> World {
        let node = TestNode::start().await;
        let mut tokens = Vec::new();
        let mut ids = Vec::new();
        for name in CALLERS {
            let (user, token) = node.user(name).await;
            ids.push(user);
            tokens.push(token);
        }
        let (workspace, channel) = node.team(&tokens[0], &[]).await;
        for (i, role) in [(1, "admin"), (2, "member"), (3, "guest")] {
            let (_, me) = node.get("/v1/users/me", &tokens[i]).await;
            let (status, body) = node
                .post(
                    &format!("/v1/workspaces/{workspace}/members"),
                    Some(&tokens[0]),
                    json!({"email": me["email"], "role": role}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            let (status, body) = node
                .post(
                    &format!("/v1/channels/{channel}/members"),
                    Some(&tokens[0]),
                    json!({"user_id": ids[i]}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
        }
        // The other workspace's member owns a workspace of their own.
        node.team(&tokens[5], &[]).await;
        let (status, private) = node
            .post(
                &format!("/v1/workspaces/{workspace}/channels"),
                Some(&tokens[0]),
                json!({"name": "secret", "private": true}),
            )
            .await;
        assert_eq!(status, 201, "{private}");
        World {
            tokens,
            ids,
            workspace,
            channel,
            private: id(&private),
            node,
        }
    }

    /// A fresh message by the owner in the public channel; returns its seq.
    async fn owner_message(&self) -> u64 {
        let (status, body) = self
            .node
            .post(
                &format!("/v1/channels/{}/messages", self.channel),
                Some(&self.tokens[0]),
                json!({"text": "owner's words"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["seq"].as_u64().unwrap()
    }

    /// A fresh message by `caller` (who must be able to post) in the public channel.
    async fn own_message(&self, caller: usize) -> u64 {
        let (status, body) = self
            .node
            .post(
                &format!("/v1/channels/{}/messages", self.channel),
                Some(&self.tokens[caller]),
                json!({"text": "my words"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["seq"].as_u64().unwrap()
    }

    /// A fresh workspace user with `role`, to be acted on.
    async fn victim(&self, role: &str) -> Uuid {
        let (user, token) = self.node.user("victim").await;
        let (_, me) = self.node.get("/v1/users/me", &token).await;
        let (status, body) = self
            .node
            .post(
                &format!("/v1/workspaces/{}/members", self.workspace),
                Some(&self.tokens[0]),
                json!({"email": me["email"], "role": role}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        user
    }

    /// A fresh public channel created by the owner.
    async fn owner_channel(&self) -> Uuid {
        let name = format!("c-{}", &Uuid::new_v4().simple().to_string()[..10]);
        let (status, body) = self
            .node
            .post(
                &format!("/v1/workspaces/{}/channels", self.workspace),
                Some(&self.tokens[0]),
                json!({"name": name}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        id(&body)
    }
}

/// One row of the matrix: what to try, and whether each caller (in `CALLERS` order) may.
struct Row {
    name: &'static str,
    allowed: [bool; 6],
}

const Y: bool = true;
const N: bool = false;

/// Runs one REST attempt as `caller` and says whether it was allowed (2xx) or refused (403/404).
/// Anything else (a 400, a 500) is a broken test setup and fails loudly.
async fn attempt(w: &World, row: &str, caller: usize) -> bool {
    let t = Some(w.tokens[caller].as_str());
    let ws = w.workspace;
    let ch = w.channel;
    let (method, path, body): (&str, String, Option<Value>) = match row {
        "read workspace" => ("GET", format!("/v1/workspaces/{ws}"), None),
        "list members" => ("GET", format!("/v1/workspaces/{ws}/members"), None),
        "list channels" => ("GET", format!("/v1/workspaces/{ws}/channels"), None),
        "rename workspace" => (
            "PATCH",
            format!("/v1/workspaces/{ws}"),
            Some(json!({"name": "Team"})),
        ),
        "add member" => {
            let (_, token) = w.node.user("newcomer").await;
            let (_, me) = w.node.get("/v1/users/me", &token).await;
            (
                "POST",
                format!("/v1/workspaces/{ws}/members"),
                Some(json!({"email": me["email"]})),
            )
        }
        "invite" => (
            "POST",
            format!("/v1/workspaces/{ws}/invites"),
            Some(json!({"email": format!("{}@example.com", Uuid::new_v4().simple())})),
        ),
        "list invites" => ("GET", format!("/v1/workspaces/{ws}/invites"), None),
        "remove a member" => {
            let victim = w.victim("member").await;
            (
                "DELETE",
                format!("/v1/workspaces/{ws}/members/{victim}"),
                None,
            )
        }
        "remove an admin" => {
            let victim = w.victim("admin").await;
            (
                "DELETE",
                format!("/v1/workspaces/{ws}/members/{victim}"),
                None,
            )
        }
        "make a guest a member" => {
            let victim = w.victim("guest").await;
            (
                "PATCH",
                format!("/v1/workspaces/{ws}/members/{victim}"),
                Some(json!({"role": "member"})),
            )
        }
        "make someone owner" => {
            let victim = w.victim("member").await;
            (
                "PATCH",
                format!("/v1/workspaces/{ws}/members/{victim}"),
                Some(json!({"role": "owner"})),
            )
        }
        "read audit log" => ("GET", format!("/v1/workspaces/{ws}/audit"), None),
        "create channel" => (
            "POST",
            format!("/v1/workspaces/{ws}/channels"),
            Some(json!({"name": format!("n-{}", &Uuid::new_v4().simple().to_string()[..10])})),
        ),
        "join public channel" => {
            let fresh = w.owner_channel().await;
            ("POST", format!("/v1/channels/{fresh}/join"), None)
        }
        "join private channel" => ("POST", format!("/v1/channels/{}/join", w.private), None),
        "read private channel" => ("GET", format!("/v1/channels/{}/messages", w.private), None),
        "open dm with the owner" => {
            // The owner opens one with the admin instead.
            let other = if caller == 0 { w.ids[1] } else { w.ids[0] };
            (
                "POST",
                format!("/v1/workspaces/{ws}/dms"),
                Some(json!({"user_ids": [other]})),
            )
        }
        "read channel" => ("GET", format!("/v1/channels/{ch}"), None),
        "read history" => ("GET", format!("/v1/channels/{ch}/messages"), None),
        "read events" => ("GET", format!("/v1/channels/{ch}/events?after=0"), None),
        "post message" => (
            "POST",
            format!("/v1/channels/{ch}/messages"),
            Some(json!({"text": "hello"})),
        ),
        "react" => {
            let seq = w.owner_message().await;
            (
                "PUT",
                format!("/v1/channels/{ch}/messages/{seq}/reactions/tada"),
                None,
            )
        }
        "edit others' message" => {
            let seq = w.owner_message().await;
            (
                "PATCH",
                format!("/v1/channels/{ch}/messages/{seq}"),
                Some(json!({"text": "changed"})),
            )
        }
        "delete others' message" => {
            let seq = w.owner_message().await;
            ("DELETE", format!("/v1/channels/{ch}/messages/{seq}"), None)
        }
        "set topic" => (
            "PATCH",
            format!("/v1/channels/{ch}"),
            Some(json!({"topic": "today"})),
        ),
        "rename someone else's channel" => {
            let fresh = w.owner_channel().await;
            (
                "PATCH",
                format!("/v1/channels/{fresh}"),
                Some(json!({"description": "renamed"})),
            )
        }
        "archive someone else's channel" => {
            let fresh = w.owner_channel().await;
            ("POST", format!("/v1/channels/{fresh}/archive"), None)
        }
        "add someone to the channel" => {
            let victim = w.victim("member").await;
            (
                "POST",
                format!("/v1/channels/{ch}/members"),
                Some(json!({"user_id": victim})),
            )
        }
        "remove someone from a channel" => {
            let victim = w.victim("member").await;
            let fresh = w.owner_channel().await;
            w.node
                .post(
                    &format!("/v1/channels/{fresh}/members"),
                    Some(&w.tokens[0]),
                    json!({"user_id": victim}),
                )
                .await;
            (
                "DELETE",
                format!("/v1/channels/{fresh}/members/{victim}"),
                None,
            )
        }
        "mute" => (
            "PUT",
            format!("/v1/channels/{ch}/mute"),
            Some(json!({"muted": true})),
        ),
        "mark read" => (
            "POST",
            format!("/v1/channels/{ch}/read"),
            Some(json!({"seq": 0})),
        ),
        "search" => ("GET", format!("/v1/workspaces/{ws}/search?q=hello"), None),
        "export channel" => ("GET", format!("/v1/channels/{ch}/export"), None),
        "export workspace" => (
            "GET",
            format!("/v1/workspaces/{ws}/export?format=csv"),
            None,
        ),
        "read retention policy" => ("GET", format!("/v1/workspaces/{ws}/retention"), None),
        "read workspace limits" => ("GET", format!("/v1/workspaces/{ws}/limits"), None),
        "set retention policy" => (
            "PUT",
            format!("/v1/workspaces/{ws}/retention"),
            Some(json!({"days": null})),
        ),
        "set legal hold" => (
            "PUT",
            format!("/v1/channels/{ch}/legal-hold"),
            Some(json!({"held": false})),
        ),
        other => panic!("no attempt named {other}"),
    };
    let (status, answer) = w.node.call(method, &path, t, body).await;
    match status {
        200..=299 => true,
        403 | 404 => false,
        _ => panic!("{row} as {}: unexpected {status} {answer}", CALLERS[caller]),
    }
}

fn rest_rows() -> Vec<Row> {
    let row = |name, allowed| Row { name, allowed };
    //                                       owner admin member guest outsider other_ws
    vec![
        row("read workspace", [Y, Y, Y, Y, N, N]),
        row("list members", [Y, Y, Y, Y, N, N]),
        row("list channels", [Y, Y, Y, Y, N, N]),
        row("rename workspace", [Y, Y, N, N, N, N]),
        row("add member", [Y, Y, N, N, N, N]),
        row("invite", [Y, Y, N, N, N, N]),
        row("list invites", [Y, Y, N, N, N, N]),
        row("remove a member", [Y, Y, N, N, N, N]),
        row("remove an admin", [Y, N, N, N, N, N]),
        row("make a guest a member", [Y, Y, N, N, N, N]),
        row("make someone owner", [Y, N, N, N, N, N]),
        row("read audit log", [Y, Y, N, N, N, N]),
        row("create channel", [Y, Y, Y, N, N, N]),
        row("join public channel", [Y, Y, Y, N, N, N]),
        row("join private channel", [Y, N, N, N, N, N]),
        row("read private channel", [Y, N, N, N, N, N]),
        row("open dm with the owner", [Y, Y, Y, Y, N, N]),
        row("read channel", [Y, Y, Y, Y, N, N]),
        row("read history", [Y, Y, Y, Y, N, N]),
        row("read events", [Y, Y, Y, Y, N, N]),
        row("post message", [Y, Y, Y, Y, N, N]),
        row("react", [Y, Y, Y, Y, N, N]),
        row("edit others' message", [Y, N, N, N, N, N]),
        row("delete others' message", [Y, Y, N, N, N, N]),
        row("set topic", [Y, Y, Y, N, N, N]),
        row("rename someone else's channel", [Y, Y, N, N, N, N]),
        row("archive someone else's channel", [Y, Y, N, N, N, N]),
        row("add someone to the channel", [Y, Y, Y, N, N, N]),
        row("remove someone from a channel", [Y, Y, N, N, N, N]),
        row("mute", [Y, Y, Y, Y, N, N]),
        row("mark read", [Y, Y, Y, Y, N, N]),
        row("search", [Y, Y, Y, Y, N, N]),
        row("export channel", [Y, Y, N, N, N, N]),
        row("export workspace", [Y, Y, N, N, N, N]),
        row("read retention policy", [Y, Y, Y, Y, N, N]),
        row("read workspace limits", [Y, Y, Y, Y, N, N]),
        row("set retention policy", [Y, Y, N, N, N, N]),
        row("set legal hold", [Y, Y, N, N, N, N]),
    ]
}

#[tokio::test]
async fn every_rest_endpoint_allows_exactly_the_roles_of_the_matrix() {
    let w = World::build().await;
    let mut wrong = Vec::new();
    for row in rest_rows() {
        for (caller, expected) in row.allowed.iter().enumerate() {
            // "edit others' message" as the owner edits the owner's own message: the author.
            let allowed = attempt(&w, row.name, caller).await;
            if allowed != *expected {
                wrong.push(format!(
                    "{} as {}: {} (expected {})",
                    row.name,
                    CALLERS[caller],
                    if allowed { "ALLOWED" } else { "denied" },
                    if *expected { "allow" } else { "deny" }
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "matrix mismatches:\n{}", wrong.join("\n"));
    // Authors edit and delete their own messages, whatever their role.
    for (caller, who) in CALLERS.iter().enumerate().take(4) {
        let seq = w.own_message(caller).await;
        let path = format!("/v1/channels/{}/messages/{seq}", w.channel);
        let token = Some(w.tokens[caller].as_str());
        let (status, body) = w
            .node
            .call("PATCH", &path, token, Some(json!({"text": "fixed"})))
            .await;
        assert_eq!(status, 200, "{who} edits own: {body}");
        let (status, body) = w.node.call("DELETE", &path, token, None).await;
        assert_eq!(status, 204, "{who} deletes own: {body}");
    }
}

/// What a WebSocket subscribe, send and typing get, per caller.
#[tokio::test]
async fn websocket_actions_follow_channel_membership() {
    let w = World::build().await;
    //                     owner admin member guest outsider other_ws
    let may_use_channel = [Y, Y, Y, Y, N, N];
    for (caller, expected) in may_use_channel.into_iter().enumerate() {
        let who = CALLERS[caller];
        let (mut client, _) = Client::identify(w.node.ws(), &w.tokens[caller]).await;
        client
            .send(&ClientFrame::Subscribe {
                channel_id: w.channel,
                since_seq: None,
            })
            .await;
        let answer = client
            .wait_for(|f| {
                matches!(
                    f,
                    ServerFrame::Subscribed { .. } | ServerFrame::Error { .. }
                )
            })
            .await;
        assert_eq!(
            matches!(answer, ServerFrame::Subscribed { .. }),
            expected,
            "subscribe as {who}: {answer:?}"
        );
        client
            .send(&ClientFrame::Send {
                channel_id: w.channel,
                nonce: format!("rbac-{caller}"),
                text: "hi".into(),
                parent_seq: None,
            })
            .await;
        let answer = client
            .wait_for(|f| matches!(f, ServerFrame::Ack { .. } | ServerFrame::Error { .. }))
            .await;
        assert_eq!(
            matches!(answer, ServerFrame::Ack { .. }),
            expected,
            "send as {who}: {answer:?}"
        );
        if !expected {
            assert!(
                matches!(
                    answer,
                    ServerFrame::Error {
                        code: ErrorCode::NotFound | ErrorCode::Forbidden,
                        ..
                    }
                ),
                "{answer:?}"
            );
        }
        // Nobody outside a private channel subscribes to it.
        client
            .send(&ClientFrame::Subscribe {
                channel_id: w.private,
                since_seq: None,
            })
            .await;
        let answer = client
            .wait_for(|f| {
                matches!(
                    f,
                    ServerFrame::Subscribed { .. } | ServerFrame::Error { .. }
                )
            })
            .await;
        assert_eq!(
            matches!(answer, ServerFrame::Subscribed { .. }),
            caller == 0,
            "subscribe to the private channel as {who}: {answer:?}"
        );
    }
}
