//! The web client (`web/` at the repository root), embedded in the binary and served at `/` from
//! the API's address.
//!
//! The client is plain ES modules with no build step; rust-embed compiles the files into the
//! binary — debug builds too (`debug-embed`), so the browser tests test what ships — and the
//! one-command run serves them with nothing loaded from outside the machine. This
//! router is the API router's fallback: only a path no API route takes comes here. `GET` or
//! `HEAD` of `/` or of an embedded file answers the file; any other path answers the API's JSON
//! `404 not_found`, as an unknown path did before the client existed.

use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chorus_api::ApiError;

#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Assets;

/// Scripts, styles and connections only from this node: the page's own address, and the
/// gateway's WebSocket port on the same host (a different origin, hence `ws:`/`wss:`).
const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The fallback router serving the embedded files.
pub(crate) fn router() -> Router {
    Router::new().fallback(serve)
}

async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let Some(file) = asset_name(uri.path()).and_then(|name| Some((name, Assets::get(name)?)))
    else {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route").into_response();
    };
    let (name, file) = file;
    if method != Method::GET && method != Method::HEAD {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this route",
        )
        .into_response();
    }
    let etag = etag(&file.metadata.sha256_hash());
    let mut response = if is_fresh(headers.get(IF_NONE_MATCH), &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = file.data.into_owned().into_response();
        let content_type = content_type(name, file.metadata.mimetype());
        if let Ok(value) = HeaderValue::from_str(&content_type) {
            response.headers_mut().insert(CONTENT_TYPE, value);
        }
        response
    };
    let out = response.headers_mut();
    // The names carry no content hash, so a browser must revalidate (cheaply, by ETag) each time:
    // a new binary's client is never mixed with an old cached one.
    out.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    out.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        out.insert(ETAG, value);
    }
    response
}

/// The embedded file a request path names: `/` is the page. `None` for a path that cannot name
/// one (empty segments, `.` or `..`), which is then a plain 404.
pub(crate) fn asset_name(path: &str) -> Option<&str> {
    if path == "/" {
        return Some("index.html");
    }
    let name = path.strip_prefix('/')?;
    let bad = |segment: &str| segment.is_empty() || segment == "." || segment == "..";
    (!name.split('/').any(bad)).then_some(name)
}

/// The `Content-Type` of a file: the guessed type, with the charset for text (every file of the
/// client is UTF-8).
pub(crate) fn content_type(name: &str, guessed: &str) -> String {
    let textual = guessed.starts_with("text/")
        || guessed.ends_with("javascript")
        || guessed.ends_with("json")
        || guessed.ends_with("+xml");
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        // `.js` must be served as JavaScript for module scripts, whatever the guess says.
        Some("js") => "text/javascript; charset=utf-8".to_owned(),
        _ if textual => format!("{guessed}; charset=utf-8"),
        _ => guessed.to_owned(),
    }
}

/// A strong ETag from the file's SHA-256.
pub(crate) fn etag(hash: &[u8]) -> String {
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{}\"", &hex[..32.min(hex.len())])
}

/// Whether the client's `If-None-Match` already names this version (`*` or any listed tag).
pub(crate) fn is_fresh(if_none_match: Option<&HeaderValue>, etag: &str) -> bool {
    let Some(value) = if_none_match.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_page_and_paths_name_files() {
        assert_eq!(asset_name("/"), Some("index.html"));
        assert_eq!(asset_name("/js/app.js"), Some("js/app.js"));
        assert_eq!(asset_name("/js/../secret"), None);
        assert_eq!(asset_name("/js//app.js"), None);
        assert_eq!(asset_name("/./x"), None);
        assert_eq!(asset_name(""), None);
    }

    #[test]
    fn text_types_say_utf8_and_scripts_are_javascript() {
        assert_eq!(
            content_type("index.html", "text/html"),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type("js/app.js", "application/javascript"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("icon.png", "image/png"), "image/png");
        assert_eq!(
            content_type("icon.svg", "image/svg+xml"),
            "image/svg+xml; charset=utf-8"
        );
    }

    #[test]
    fn a_matching_if_none_match_is_fresh() {
        let tag = etag(&[0xab; 32]);
        assert_eq!(tag.len(), 34);
        let header = |s: &str| HeaderValue::from_str(s).unwrap();
        assert!(is_fresh(Some(&header(&tag)), &tag));
        assert!(is_fresh(Some(&header(&format!("\"x\", W/{tag}"))), &tag));
        assert!(is_fresh(Some(&header("*")), &tag));
        assert!(!is_fresh(Some(&header("\"other\"")), &tag));
        assert!(!is_fresh(None, &tag));
    }

    #[test]
    fn every_embedded_file_is_reachable_and_the_page_exists() {
        assert!(Assets::get("index.html").is_some());
        for name in Assets::iter() {
            assert_eq!(asset_name(&format!("/{name}")), Some(name.as_ref()));
        }
    }
}
