//! `docs/openapi.json` is the document the API serves; regenerate it with
//! `cargo run -- openapi > docs/openapi.json` when this fails.

#[test]
fn the_committed_openapi_document_is_current() {
    let served = chorus_api::openapi().to_pretty_json().unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
            .expect("docs/openapi.json exists");
    assert_eq!(
        committed.trim_end(),
        served.trim_end(),
        "docs/openapi.json is stale: run `cargo run -- openapi > docs/openapi.json`"
    );
}
