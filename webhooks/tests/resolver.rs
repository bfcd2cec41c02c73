//! The outgoing client's resolver against real name resolution and a real local server: a name
//! that resolves to this host is refused unless loopback is allowed, and reached when it is.

use std::sync::Arc;
use std::time::Duration;

use chorus_webhooks::resolver::{outbound_client, refused};
use chorus_webhooks::target::TargetPolicy;

/// A local server answering 204; returns its port.
async fn local_server() -> u16 {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

#[tokio::test]
async fn a_name_resolving_to_this_host_is_refused_by_default() {
    let port = local_server().await;
    let client = outbound_client(
        Arc::new(TargetPolicy::public_only()),
        Duration::from_secs(5),
    )
    .unwrap();
    let err = client
        .post(format!("http://localhost:{port}/hook"))
        .send()
        .await
        .expect_err("the resolver refuses localhost");
    let name = refused(&err).expect("refused by the resolver, not a connection error");
    assert_eq!(name.0, "localhost");
}

#[tokio::test]
async fn a_name_resolving_to_an_allowed_network_is_reached() {
    let port = local_server().await;
    let policy = TargetPolicy::parse(&["127.0.0.0/8".into(), "::1".into()]).unwrap();
    let client = outbound_client(Arc::new(policy), Duration::from_secs(5)).unwrap();
    let response = client
        .post(format!("http://localhost:{port}/hook"))
        .send()
        .await
        .expect("localhost is allowed");
    assert_eq!(response.status().as_u16(), 204);
}
