//! TLS on the client-facing listeners and to PostgreSQL: a client trusting a test CA registers
//! over `https://` and chats over `wss://` (TLS 1.3), a plain-text client to the same ports gets
//! nothing, incomplete or unreadable TLS settings stop the node at start, and a PostgreSQL URL
//! asking for TLS gets it (or a start-up error), never a plain-text connection.

mod common;

use std::path::Path;
use std::sync::Arc;

use chorus::{Node, NodeConfig};
use chorus_core::testing;
use chorus_protocol::{ClientFrame, ServerFrame};
use common::Rest;
use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// A CA made for this test and a `localhost` certificate it signed, as PEM.
struct TestPki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki() -> TestPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    TestPki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// Writes the server's PEM files into `dir` and points the config at them.
fn use_tls(config: &mut NodeConfig, dir: &Path, pki: &TestPki) {
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    std::fs::write(&cert, &pki.cert_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    config.client_tls.cert = Some(cert);
    config.client_tls.key = Some(key);
}

fn connector(pki: &TestPki) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pki.ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

type Wss = WebSocketStream<TlsStream<TcpStream>>;

async fn next_frame(ws: &mut Wss) -> ServerFrame {
    loop {
        let message = tokio::time::timeout(common::FRAME_WAIT, ws.next())
            .await
            .expect("timed out waiting for a frame")
            .expect("connection ended")
            .expect("websocket error");
        if let Message::Text(text) = message {
            return ServerFrame::parse(&text).unwrap();
        }
    }
}

async fn send_frame(ws: &mut Wss, frame: &ClientFrame) {
    ws.send(Message::Text(frame.to_json().into()))
        .await
        .unwrap();
}

/// Opens `wss://localhost:PORT/ws`, checks the TLS version, reads `hello` and identifies.
async fn wss_identify(pki: &TestPki, port: u16, token: &str) -> Wss {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector(pki).connect(name, tcp).await.unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3),
        "TLS 1.3 is preferred"
    );
    let (mut ws, _) = tokio_tungstenite::client_async(format!("wss://localhost:{port}/ws"), tls)
        .await
        .unwrap();
    assert!(matches!(
        next_frame(&mut ws).await,
        ServerFrame::Hello { .. }
    ));
    send_frame(
        &mut ws,
        &ClientFrame::Identify {
            intents: None,
            token: token.into(),
        },
    )
    .await;
    let ready = next_frame(&mut ws).await;
    assert!(matches!(ready, ServerFrame::Ready { .. }), "{ready:?}");
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trusting_the_ca_chats_over_https_and_wss() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::for_tests(dir.path());
    use_tls(&mut config, dir.path(), &pki);
    let node = Node::start(config).await.unwrap();

    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let rest = Rest {
        base: format!("https://localhost:{}", node.api_addr.port()),
        http,
    };
    let (_, alice) = rest.user("alice").await;
    let (_, bob) = rest.user("bob").await;
    let (_, channel) = rest.team(&alice, &[&bob]).await;

    let mut alice_ws = wss_identify(&pki, node.ws_addr.port(), &alice).await;
    let mut bob_ws = wss_identify(&pki, node.ws_addr.port(), &bob).await;
    send_frame(
        &mut bob_ws,
        &ClientFrame::Subscribe {
            channel_id: channel,
            since_seq: None,
        },
    )
    .await;
    while !matches!(
        next_frame(&mut bob_ws).await,
        ServerFrame::Subscribed { .. }
    ) {}
    send_frame(
        &mut alice_ws,
        &ClientFrame::Send {
            channel_id: channel,
            nonce: "n1".into(),
            text: "over tls".into(),
            parent_seq: None,
        },
    )
    .await;
    loop {
        match next_frame(&mut bob_ws).await {
            ServerFrame::Message(event) => {
                assert_eq!(event.text, "over tls");
                break;
            }
            _ => continue,
        }
    }
    // And the REST read of the same history, over TLS.
    let (status, page) = rest
        .get(&format!("/v1/channels/{channel}/messages"), &bob)
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.to_string().contains("over tls"), "{page}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_text_client_gets_nothing_from_the_tls_ports() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::for_tests(dir.path());
    use_tls(&mut config, dir.path(), &pki);
    let node = Node::start(config).await.unwrap();

    let plain = reqwest::get(format!("http://{}/v1/users/me", node.api_addr)).await;
    assert!(plain.is_err(), "plain HTTP to the TLS API: {plain:?}");
    let ws = tokio_tungstenite::connect_async(format!("ws://{}/ws", node.ws_addr)).await;
    assert!(ws.is_err(), "plain WebSocket to the TLS gateway succeeded");
    // A TLS client that does not trust the CA is refused too.
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let untrusted = http
        .get(format!(
            "https://localhost:{}/v1/users/me",
            node.api_addr.port()
        ))
        .send()
        .await;
    assert!(untrusted.is_err(), "{untrusted:?}");
    node.shutdown().await;
}

#[tokio::test]
async fn incomplete_or_unreadable_tls_settings_stop_the_node_at_start() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();

    let mut only_cert = NodeConfig::for_tests(dir.path());
    use_tls(&mut only_cert, dir.path(), &pki);
    only_cert.client_tls.key = None;
    let Err(err) = Node::start(only_cert).await else {
        panic!("a certificate without a key must not start");
    };
    assert!(format!("{err:#}").contains("client_tls"), "{err:#}");

    let mut garbage = NodeConfig::for_tests(dir.path());
    use_tls(&mut garbage, dir.path(), &pki);
    std::fs::write(garbage.client_tls.key.as_ref().unwrap(), "not a key").unwrap();
    let Err(err) = Node::start(garbage).await else {
        panic!("an unreadable key must not start");
    };
    assert!(format!("{err:#}").contains("no PEM private key"), "{err:#}");

    let mut missing = NodeConfig::for_tests(dir.path());
    use_tls(&mut missing, dir.path(), &pki);
    missing.client_tls.cert = Some(dir.path().join("absent.pem"));
    let Err(err) = Node::start(missing).await else {
        panic!("a missing certificate file must not start");
    };
    assert!(format!("{err:#}").contains("absent.pem"), "{err:#}");
}

/// The test server runs PostgreSQL with `ssl = on` and a certificate no public CA signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sslmode_require_connects_over_tls_and_verify_full_refuses_an_unknown_ca() {
    let database = testing::fresh_database("tls").await;
    let app = format!("chorus-tls-{}", uuid::Uuid::new_v4().simple());
    let separator = if database.contains('?') { '&' } else { '?' };
    let required = format!("{database}{separator}sslmode=require&application_name={app}");
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::for_tests(dir.path());
    config.metadata_url = Some(required);
    let node = Node::start(config).await.unwrap();

    // Every connection the node holds under that application name is encrypted.
    let observer = sqlx::PgPool::connect(&testing::postgres_url())
        .await
        .unwrap();
    let connections: Vec<(bool,)> = sqlx::query_as(
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = $1",
    )
    .bind(&app)
    .fetch_all(&observer)
    .await
    .unwrap();
    assert!(!connections.is_empty(), "the node holds no connection");
    assert!(connections.iter().all(|(ssl,)| *ssl), "{connections:?}");
    node.shutdown().await;

    // verify-full checks the server's certificate against the trusted roots; this server's is
    // not among them, so the node must not start (rather than fall back to plain text).
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::for_tests(dir.path());
    config.metadata_url = Some(format!("{database}{separator}sslmode=verify-full"));
    let Err(err) = Node::start(config).await else {
        panic!("verify-full against an untrusted certificate must not start");
    };
    let why = format!("{err:#}");
    assert!(
        why.contains("metadata") && why.contains("certificate"),
        "{why}"
    );
    observer.close().await;
    testing::drop_database(&database).await;
}
