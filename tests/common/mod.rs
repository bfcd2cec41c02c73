//! Test harness: a real embedded node on port 0, a real HTTP client and real WebSocket clients.

#![allow(dead_code)]

pub mod cluster;
pub mod private_redis;
pub mod sse;
pub mod webhooks;

use std::net::SocketAddr;
use std::time::Duration;

use chorus::{Node, NodeConfig};
use chorus_protocol::{ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

/// How long a test waits for any single expected frame before failing.
pub const FRAME_WAIT: Duration = Duration::from_secs(10);

pub struct TestNode {
    pub node: Option<Node>,
    pub dir: tempfile::TempDir,
    pub config: NodeConfig,
    pub http: reqwest::Client,
}

impl TestNode {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut NodeConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = NodeConfig::for_tests(dir.path());
        // Tests drive many frames quickly from one connection.
        config.gateway.frames_per_second = 10_000;
        config.gateway.frame_burst = 10_000;
        config.api.login_per_minute_per_ip = 10_000;
        config.api.register_per_minute_per_ip = 10_000;
        tune(&mut config);
        let node = Node::start(config.clone()).await.unwrap();
        TestNode {
            node: Some(node),
            dir,
            config,
            http: reqwest::Client::new(),
        }
    }

    /// Stops the node and starts a new one on the same data directory (new ports).
    pub async fn restart(&mut self) {
        self.node.take().unwrap().shutdown().await;
        self.node = Some(Node::start(self.config.clone()).await.unwrap());
    }

    pub fn api(&self) -> SocketAddr {
        self.node.as_ref().unwrap().api_addr
    }

    pub fn ws(&self) -> SocketAddr {
        self.node.as_ref().unwrap().ws_addr
    }

    /// A REST client of this node's API.
    pub fn rest(&self) -> Rest {
        Rest {
            base: format!("http://{}", self.api()),
            http: self.http.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.rest().url(path)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.rest().post(path, token, body).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.rest().get(path, token).await
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.rest().call(method, path, token, body).await
    }

    pub async fn user(&self, name: &str) -> (Uuid, String) {
        self.rest().user(name).await
    }

    pub async fn team(&self, owner: &str, members: &[&str]) -> (Uuid, Uuid) {
        self.rest().team(owner, members).await
    }

    pub async fn shutdown(mut self) {
        if let Some(node) = self.node.take() {
            node.shutdown().await;
        }
    }
}

/// A WebSocket client speaking protocol v1.
/// A REST client of one API address (an embedded node's, or a cluster gateway's).
#[derive(Clone)]
pub struct Rest {
    pub base: String,
    pub http: reqwest::Client,
}

impl Rest {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POSTs JSON (with a bearer token when given) and returns status and body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self.http.post(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Any method, optional bearer token and JSON body; returns status and body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method.parse().unwrap(), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Registers and logs in a user; returns (user id, access token).
    pub async fn user(&self, name: &str) -> (Uuid, String) {
        let email = format!("{name}-{}@example.com", Uuid::new_v4().simple());
        let (status, body) = self
            .post(
                "/v1/auth/register",
                None,
                json!({"email": email, "password": "correct horse battery", "display_name": name}),
            )
            .await;
        assert_eq!(status, 201, "register: {body}");
        let (status, body) = self
            .post(
                "/v1/auth/login",
                None,
                json!({"email": email, "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(status, 200, "login: {body}");
        let id = body["user"]["id"].as_str().unwrap().parse().unwrap();
        (id, body["access_token"].as_str().unwrap().to_string())
    }

    /// A workspace owned by `owner` with `members` added, and one public channel all have joined.
    pub async fn team(&self, owner: &str, members: &[&str]) -> (Uuid, Uuid) {
        let (status, workspace) = self
            .post("/v1/workspaces", Some(owner), json!({"name": "Team"}))
            .await;
        assert_eq!(status, 201, "workspace: {workspace}");
        let workspace_id: Uuid = workspace["id"].as_str().unwrap().parse().unwrap();
        let name = format!("general-{}", &Uuid::new_v4().simple().to_string()[..8]);
        let (status, channel) = self
            .post(
                &format!("/v1/workspaces/{workspace_id}/channels"),
                Some(owner),
                json!({"name": name}),
            )
            .await;
        assert_eq!(status, 201, "channel: {channel}");
        let channel_id: Uuid = channel["id"].as_str().unwrap().parse().unwrap();
        for token in members {
            let (_, me) = self.get("/v1/users/me", token).await;
            let email = me["email"].as_str().unwrap();
            let (status, body) = self
                .post(
                    &format!("/v1/workspaces/{workspace_id}/members"),
                    Some(owner),
                    json!({"email": email}),
                )
                .await;
            assert_eq!(status, 201, "add member: {body}");
            let (status, body) = self
                .post(
                    &format!("/v1/channels/{channel_id}/join"),
                    Some(token),
                    json!({}),
                )
                .await;
            assert_eq!(status, 200, "join: {body}");
        }
        (workspace_id, channel_id)
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Frames read while waiting for another one, handed out first by [`Client::next`].
    pending: std::collections::VecDeque<ServerFrame>,
}

impl Client {
    /// Connects and reads `hello`.
    pub async fn connect(addr: SocketAddr) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .unwrap();
        let mut client = Client {
            ws,
            pending: Default::default(),
        };
        match client.next().await {
            ServerFrame::Hello { protocol, .. } => assert_eq!(protocol, 1),
            other => panic!("expected hello, got {other:?}"),
        }
        client
    }

    /// Like [`Client::identify`], over a socket with a 4 KiB receive buffer (a client that reads
    /// slowly fills up quickly).
    pub async fn identify_with_small_buffer(addr: SocketAddr, token: &str) -> (Self, ServerFrame) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(
            format!("ws://{addr}/ws"),
            MaybeTlsStream::Plain(stream),
        )
        .await
        .unwrap();
        let mut client = Client {
            ws,
            pending: Default::default(),
        };
        assert!(matches!(client.next().await, ServerFrame::Hello { .. }));
        client
            .send(&ClientFrame::Identify {
                intents: None,
                token: token.into(),
            })
            .await;
        let ready = client.next().await;
        assert!(
            matches!(ready, ServerFrame::Ready { .. }),
            "expected ready, got {ready:?}"
        );
        (client, ready)
    }

    /// Connects, identifies, and returns the client with its `ready` frame.
    pub async fn identify(addr: SocketAddr, token: &str) -> (Self, ServerFrame) {
        let mut client = Self::connect(addr).await;
        client
            .send(&ClientFrame::Identify {
                intents: None,
                token: token.into(),
            })
            .await;
        let ready = client.next().await;
        assert!(
            matches!(ready, ServerFrame::Ready { .. }),
            "expected ready, got {ready:?}"
        );
        (client, ready)
    }

    pub async fn send(&mut self, frame: &ClientFrame) {
        self.send_raw(&frame.to_json()).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    /// The next server frame; panics on close or after [`FRAME_WAIT`].
    pub async fn next(&mut self) -> ServerFrame {
        if let Some(frame) = self.pending.pop_front() {
            return frame;
        }
        self.read().await
    }

    async fn read(&mut self) -> ServerFrame {
        self.read_within(FRAME_WAIT).await
    }

    async fn read_within(&mut self, wait: Duration) -> ServerFrame {
        loop {
            let message = tokio::time::timeout(wait, self.ws.next())
                .await
                .expect("timed out waiting for a frame")
                .expect("connection ended")
                .expect("websocket error");
            match message {
                Message::Text(text) => return ServerFrame::parse(&text).unwrap(),
                Message::Close(frame) => panic!("connection closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Skips frames until one matches.
    pub async fn next_matching(
        &mut self,
        mut wanted: impl FnMut(&ServerFrame) -> bool,
    ) -> ServerFrame {
        loop {
            let frame = self.next().await;
            if wanted(&frame) {
                return frame;
            }
        }
    }

    /// Waits for a matching frame, keeping the others for later [`Client::next`] calls.
    pub async fn wait_for(&mut self, wanted: impl FnMut(&ServerFrame) -> bool) -> ServerFrame {
        self.wait_for_within(FRAME_WAIT, wanted).await
    }

    /// [`Client::wait_for`] with its own wait for the next frame instead of [`FRAME_WAIT`]: for
    /// what the server may take longer to send, like a cluster's retried automatic reply.
    pub async fn wait_for_within(
        &mut self,
        wait: Duration,
        mut wanted: impl FnMut(&ServerFrame) -> bool,
    ) -> ServerFrame {
        if let Some(at) = self.pending.iter().position(&mut wanted) {
            return self.pending.remove(at).unwrap();
        }
        loop {
            let frame = self.read_within(wait).await;
            if wanted(&frame) {
                return frame;
            }
            self.pending.push_back(frame);
        }
    }

    /// Reads until the server closes; returns the close frame (None if the socket just ended).
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            match tokio::time::timeout(FRAME_WAIT, self.ws.next())
                .await
                .expect("timed out waiting for close")
            {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Sends a message and waits for its acknowledgement; returns (message id, seq).
    pub async fn post(&mut self, channel: Uuid, nonce: &str, text: &str) -> (Uuid, u64) {
        self.send(&ClientFrame::Send {
            channel_id: channel,
            nonce: nonce.into(),
            text: text.into(),
            parent_seq: None,
        })
        .await;
        match self
            .wait_for(|f| matches!(f, ServerFrame::Ack { nonce: n, .. } | ServerFrame::Error { nonce: Some(n), .. } if n == nonce))
            .await
        {
            ServerFrame::Ack {
                message_id, seq, ..
            } => (message_id, seq),
            other => panic!("send failed: {other:?}"),
        }
    }
}

/// The close code of a close frame, as a number.
pub fn close_code(frame: &Option<CloseFrame>) -> Option<u16> {
    frame.as_ref().map(|f| u16::from(f.code))
}
