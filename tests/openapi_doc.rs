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

/// Every parameter declared `in: path` is a `{name}` of its path, and every `{name}` is declared:
/// a query parameter declared as a path parameter breaks generated clients.
#[test]
fn path_parameters_are_exactly_the_path_templates() {
    let document: serde_json::Value =
        serde_json::from_str(&chorus_api::openapi().to_pretty_json().unwrap()).unwrap();
    let mut wrong = Vec::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        let templated: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, operation) in operations.as_object().unwrap() {
            let declared: Vec<&str> = operation["parameters"]
                .as_array()
                .map(|params| {
                    params
                        .iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            for name in &declared {
                if !templated.contains(name) {
                    wrong.push(format!("{method} {path}: `{name}` is not in the path"));
                }
            }
            for name in &templated {
                if !declared.contains(name) {
                    wrong.push(format!("{method} {path}: `{{{name}}}` is not declared"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
