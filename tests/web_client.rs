//! The web client is served from the API's address: the page at `/`, its files with their
//! content types and caching headers, `GET /v1/gateway` naming the WebSocket port, and the JSON
//! 404 for any other path, as before. (What the client does is tested in a real browser:
//! `tests/browser/`.)

mod common;

use common::TestNode;

#[tokio::test]
async fn the_page_and_its_scripts_are_served_with_types_and_revalidation() {
    let node = TestNode::start().await;
    let page = node.http.get(node.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&page, "cache-control"), "no-cache");
    assert!(header(&page, "content-security-policy").contains("default-src 'self'"));
    let etag = header(&page, "etag");
    assert!(page.text().await.unwrap().contains("js/main.js"));

    let again = node
        .http
        .get(node.url("/"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    let script = node.http.get(node.url("/js/main.js")).send().await.unwrap();
    assert_eq!(script.status(), 200);
    assert_eq!(
        header(&script, "content-type"),
        "text/javascript; charset=utf-8"
    );
    let style = node.http.get(node.url("/style.css")).send().await.unwrap();
    assert_eq!(header(&style, "content-type"), "text/css; charset=utf-8");
    node.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_stay_json_errors_and_the_api_is_untouched() {
    let node = TestNode::start().await;
    for path in ["/nope.js", "/v1/nope", "/js/nope/"] {
        let response = node.http.get(node.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
    let post = node.http.post(node.url("/")).send().await.unwrap();
    assert_eq!(post.status(), 405);

    let (status, health) = node.call("GET", "/healthz", None, None).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    node.shutdown().await;
}

#[tokio::test]
async fn the_gateway_endpoint_names_this_nodes_websocket_port() {
    let node = TestNode::start().await;
    let response = node.http.get(node.url("/v1/gateway")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["port"], u64::from(node.ws().port()));
    assert_eq!(body["path"], "/ws");
    node.shutdown().await;
}
