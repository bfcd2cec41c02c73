//! Resuming on any gateway: two gateways in one process share one channel service, one metadata
//! store, one bus and one Redis session store, as the gateways of a cluster do. A client whose
//! gateway lost it resumes on the other one with every missed event once, in order.
//!
//! Uses the shared Redis given by `CHORUS_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`;
//! unreachable, the tests fail — never skipped) and, for the outage, a private `redis-server`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chorus_channel_node::{ChannelNodeConfig, ChannelService};
use chorus_cluster::LocalBus;
use chorus_cluster::access::LocalAccessNotifier;
use chorus_core::auth::{Authenticator, Principal};
use chorus_core::metadata::NewChannel;
use chorus_core::model::{ChannelKind, Role, Session};
use chorus_core::{MetadataStore, RedbMessageStore, SqliteMetadataStore};
use chorus_gateway::{GatewayConfig, GatewayDeps, RedisSessions, SessionStore};
use chorus_presence::MemoryPresence;
use chorus_protocol::{ChannelPosition, ClientFrame, CloseCode, ServerFrame};
use common::private_redis::PrivateRedis;
use common::{Client, close_code};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use uuid::Uuid;

fn redis_url() -> String {
    std::env::var("CHORUS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// What the gateways of one deployment share, and the gateways themselves.
struct Deployment {
    _dir: tempfile::TempDir,
    store: Arc<dyn MetadataStore>,
    auth: Authenticator,
    channels: ChannelService,
    bus: Arc<LocalBus>,
    sessions: Arc<dyn SessionStore>,
}

/// One running gateway; dropping `stop` shuts it down (clients get 4003).
struct Gateway {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Deployment {
    /// Everything but the gateways, with sessions in Redis at `redis_url` (a namespace of their own).
    async fn start(redis_url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn MetadataStore> = Arc::new(
            SqliteMetadataStore::open(&dir.path().join("metadata.db"))
                .await
                .unwrap(),
        );
        let messages = Arc::new(RedbMessageStore::open(&dir.path().join("messages.redb")).unwrap());
        let bus = Arc::new(LocalBus::new(1024));
        let channels = ChannelService::start(
            ChannelNodeConfig::new(dir.path().join("channels")),
            messages,
            bus.clone(),
        )
        .await
        .unwrap();
        let sessions = RedisSessions::connect(redis_url, gateway_config().session_limits())
            .await
            .unwrap_or_else(|err| panic!("Redis at {redis_url} is required for this test: {err}"))
            .with_prefix(format!(
                "chorus-test:{{sessions-{}}}",
                Uuid::new_v4().simple()
            ));
        Deployment {
            auth: Authenticator::new(b"test-secret-test-secret-test-secret", store.clone()),
            _dir: dir,
            store,
            channels,
            bus,
            sessions: Arc::new(sessions),
        }
    }

    async fn gateway(&self) -> Gateway {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let deps = GatewayDeps {
            auth: self.auth.clone(),
            store: self.store.clone(),
            router: Arc::new(self.channels.clone()),
            bus: self.bus.clone(),
            presence: Arc::new(MemoryPresence::default()),
            sessions: self.sessions.clone(),
            access: Arc::new(LocalAccessNotifier::default()),
            quotas: Arc::new(chorus_core::limits::quota::MessageQuotas::new(
                self.store.clone(),
                Arc::new(chorus_api::RateLimitQuotas::new(Arc::new(
                    chorus_cluster::rate_limit::LocalRateLimits,
                ))),
            )),
            badges: None,
            tls: None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(chorus_gateway::serve(
            listener,
            gateway_config(),
            deps,
            async move {
                let _ = stopped.await;
            },
        ));
        Gateway {
            addr,
            stop: Some(stop),
        }
    }

    /// A user with a live login session; returns (id, access token).
    async fn user(&self, name: &str) -> (Uuid, String) {
        let email = format!("{name}-{}@example.com", Uuid::new_v4().simple());
        let user = self.store.create_user(&email, name, "x").await.unwrap();
        let now = chrono::Utc::now();
        let session = Session {
            id: Uuid::new_v4(),
            user_id: user.id,
            refresh_hash: Uuid::new_v4().to_string(),
            refresh_expires_at: now + chrono::TimeDelta::days(1),
            created_at: now,
            revoked_at: None,
        };
        self.store.create_session(&session).await.unwrap();
        let principal = Principal {
            bot_scopes: None,
            user_id: user.id,
            session_id: session.id,
        };
        let token = self
            .auth
            .issue_access(principal, now, Duration::from_secs(3600));
        (user.id, token)
    }

    /// A channel created by `owner` with `members` in it.
    async fn channel(&self, owner: Uuid, members: &[Uuid]) -> Uuid {
        let workspace = self.store.create_workspace("Team", owner).await.unwrap();
        let channel = self
            .store
            .create_channel(&NewChannel {
                workspace_id: workspace.id,
                name: "general".into(),
                description: String::new(),
                kind: ChannelKind::Public,
                created_by: owner,
            })
            .await
            .unwrap();
        for member in members {
            self.store
                .set_workspace_member(workspace.id, *member, Role::Member)
                .await
                .unwrap();
            self.store
                .add_channel_member(channel.id, *member)
                .await
                .unwrap();
        }
        channel.id
    }
}

impl Gateway {
    fn shut_down(&mut self) {
        self.stop.take();
    }
}

fn gateway_config() -> GatewayConfig {
    GatewayConfig {
        // Tests drive many frames quickly from one connection.
        frames_per_second: 10_000,
        frame_burst: 10_000,
        ..GatewayConfig::default()
    }
}

fn session_of(ready: &ServerFrame) -> Uuid {
    match ready {
        ServerFrame::Ready { session_id, .. } => *session_id,
        other => panic!("expected ready, got {other:?}"),
    }
}

fn seq_of(frame: &ServerFrame) -> Option<u64> {
    match frame {
        ServerFrame::Message(event) => Some(event.seq),
        _ => None,
    }
}

/// Bob posts messages `range` and waits for each acknowledgement.
async fn posts(bob: &mut Client, channel: Uuid, range: std::ops::RangeInclusive<u64>) {
    for n in range {
        let (_, seq) = bob.post(channel, &format!("b-{n}"), &format!("m{n}")).await;
        assert_eq!(seq, n);
    }
}

/// Connects to `addr` and resumes `session` at `last_seq` of `channel`.
async fn resume(
    addr: SocketAddr,
    token: &str,
    session: Uuid,
    channel: Uuid,
    last_seq: u64,
) -> Client {
    let mut client = Client::connect(addr).await;
    client
        .send(&ClientFrame::Resume {
            intents: None,
            token: token.into(),
            session_id: session,
            channels: vec![ChannelPosition {
                channel_id: channel,
                last_seq,
            }],
        })
        .await;
    client
}

/// The message seqs that arrive until `resumed`, and the `replayed` count it carries.
async fn replay_until_resumed(client: &mut Client, session: Uuid) -> (Vec<u64>, u64) {
    let mut seqs = Vec::new();
    loop {
        match client.next().await {
            ServerFrame::Resumed {
                session_id,
                replayed,
            } => {
                assert_eq!(session_id, session);
                return (seqs, replayed);
            }
            frame => seqs.extend(seq_of(&frame)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_client_resumes_on_another_gateway_without_missing_or_repeating_anything() {
    let deployment = Deployment::start(&redis_url()).await;
    let (a, b) = (deployment.gateway().await, deployment.gateway().await);
    let (alice_id, alice) = deployment.user("alice").await;
    let (bob_id, bob) = deployment.user("bob").await;
    let channel = deployment.channel(alice_id, &[bob_id]).await;

    // Alice is on gateway A and reads Bob's first three messages; Bob writes through B.
    let (mut alice_on_a, ready) = Client::identify(a.addr, &alice).await;
    let session = session_of(&ready);
    let (mut bob_ws, _) = Client::identify(b.addr, &bob).await;
    posts(&mut bob_ws, channel, 1..=3).await;
    for n in 1..=3 {
        let frame = alice_on_a.next_matching(|f| seq_of(f).is_some()).await;
        assert_eq!(seq_of(&frame), Some(n));
    }

    // Her socket drops without a close frame; Bob writes three more while she is away.
    drop(alice_on_a);
    posts(&mut bob_ws, channel, 4..=6).await;

    // She resumes on gateway B from seq 3: the three she missed, once each, in order.
    let mut alice_on_b = resume(b.addr, &alice, session, channel, 3).await;
    let (replayed, count) = replay_until_resumed(&mut alice_on_b, session).await;
    assert_eq!(replayed, vec![4, 5, 6]);
    assert_eq!(count, 3);

    // Then live events, with nothing repeated in between.
    posts(&mut bob_ws, channel, 7..=7).await;
    let next = alice_on_b.next_matching(|f| seq_of(f).is_some()).await;
    assert_eq!(seq_of(&next), Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_gateway_that_shuts_down_resume_on_another() {
    let deployment = Deployment::start(&redis_url()).await;
    let (mut a, b) = (deployment.gateway().await, deployment.gateway().await);
    let (alice_id, alice) = deployment.user("alice").await;
    let (bob_id, bob) = deployment.user("bob").await;
    let channel = deployment.channel(alice_id, &[bob_id]).await;
    let (mut alice_on_a, ready) = Client::identify(a.addr, &alice).await;
    let session = session_of(&ready);
    let (mut bob_ws, _) = Client::identify(b.addr, &bob).await;
    posts(&mut bob_ws, channel, 1..=2).await;
    for n in 1..=2 {
        let frame = alice_on_a.next_matching(|f| seq_of(f).is_some()).await;
        assert_eq!(seq_of(&frame), Some(n));
    }

    // Gateway A shuts down: Alice is told to reconnect elsewhere.
    a.shut_down();
    assert_eq!(
        close_code(&alice_on_a.closed().await),
        Some(CloseCode::ServerRestart.code())
    );
    posts(&mut bob_ws, channel, 3..=4).await;

    let mut alice_on_b = resume(b.addr, &alice, session, channel, 2).await;
    let (replayed, _) = replay_until_resumed(&mut alice_on_b, session).await;
    assert_eq!(replayed, vec![3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_session_is_refused_on_every_gateway() {
    let deployment = Deployment::start(&redis_url()).await;
    let b = deployment.gateway().await;
    let (alice_id, alice) = deployment.user("alice").await;
    let channel = deployment.channel(alice_id, &[]).await;

    let mut client = resume(b.addr, &alice, Uuid::new_v4(), channel, 0).await;
    assert_eq!(
        close_code(&client.closed().await),
        Some(CloseCode::SessionInvalid.code())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_store_outage_at_resume_closes_4000_to_retry() {
    let mut redis = PrivateRedis::start();
    let deployment = Deployment::start(&redis.url()).await;
    let (a, b) = (deployment.gateway().await, deployment.gateway().await);
    let (alice_id, alice) = deployment.user("alice").await;
    let channel = deployment.channel(alice_id, &[]).await;
    let (alice_on_a, ready) = Client::identify(a.addr, &alice).await;
    let session = session_of(&ready);
    drop(alice_on_a);

    // Redis goes away: the resume ends, within the store's timeout, with "reconnect and resume".
    redis.kill();
    let mut client = resume(b.addr, &alice, session, channel, 0).await;
    assert_eq!(
        close_code(&client.closed().await),
        Some(CloseCode::InternalError.code())
    );
}
