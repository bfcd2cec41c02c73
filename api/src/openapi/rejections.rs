//! The errors every route can answer before its handler runs — a malformed path parameter, query
//! or body, a body too large or not JSON — added to each operation of the document from what the
//! operation takes, so that no route's list of responses forgets them.
//!
//! The extractors in `extract.rs` produce these errors; this module only documents them.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

/// What an operation takes from the request, as far as rejections go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inputs {
    pub path: bool,
    pub query: bool,
    pub body: bool,
}

/// A rejection the document must mention: the status, the error code and why it happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: &'static str,
    pub code: &'static str,
    pub why: &'static str,
}

/// The rejections an operation with these inputs can answer.
pub fn rejections(inputs: Inputs) -> Vec<Rejection> {
    let mut found = Vec::new();
    if inputs.path {
        found.push(Rejection {
            status: "400",
            code: "invalid_path",
            why: "a path parameter is malformed (not a UUID, not an integer in range)",
        });
    }
    if inputs.query {
        found.push(Rejection {
            status: "400",
            code: "invalid_query",
            why: "a query parameter is malformed or out of range",
        });
    }
    if inputs.body {
        found.extend([
            Rejection {
                status: "400",
                code: "invalid_json",
                why: "the body is not JSON",
            },
            Rejection {
                status: "400",
                code: "invalid_body",
                why: "the body lacks a field or has one of the wrong type",
            },
            Rejection {
                status: "413",
                code: "body_too_large",
                why: "the body is larger than 64 KiB",
            },
            Rejection {
                status: "415",
                code: "unsupported_media_type",
                why: "the body's content type is not `application/json`",
            },
        ]);
    }
    found
}

/// A response description that names `rejection`: `existing` as it is if it already names the
/// code, else with the rejection appended (or the rejection alone).
pub fn describe(existing: Option<&str>, rejection: &Rejection) -> String {
    let mention = format!("`{}`: {}", rejection.code, rejection.why);
    match existing {
        Some(text) if text.contains(&format!("`{}`", rejection.code)) => text.to_string(),
        Some(text) if !text.is_empty() => format!("{text}; {mention}"),
        _ => mention,
    }
}

/// What `operation` takes from the request.
pub fn inputs_of(operation: &Operation) -> Inputs {
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    Inputs {
        path: parameters
            .iter()
            .any(|p| p.parameter_in == ParameterIn::Path),
        query: parameters
            .iter()
            .any(|p| p.parameter_in == ParameterIn::Query),
        body: operation.request_body.is_some(),
    }
}

/// Adds or extends the operation's responses so that each of its rejections is documented.
pub fn document(operation: &mut Operation) {
    for rejection in rejections(inputs_of(operation)) {
        let responses = &mut operation.responses.responses;
        let existing = match responses.get(rejection.status) {
            Some(RefOr::T(response)) => Some(response.description.clone()),
            // A shared response defined elsewhere is left as it is.
            Some(RefOr::Ref(_)) => continue,
            None => None,
        };
        let description = describe(existing.as_deref(), &rejection);
        match responses.get_mut(rejection.status) {
            Some(RefOr::T(response)) => response.description = description,
            _ => {
                let response = ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build();
                responses.insert(rejection.status.to_string(), RefOr::T(response));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_input_brings_its_rejections() {
        assert!(rejections(Inputs::default()).is_empty());
        let codes = |inputs| {
            rejections(inputs)
                .into_iter()
                .map(|r| (r.status, r.code))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            codes(Inputs {
                path: true,
                ..Inputs::default()
            }),
            [("400", "invalid_path")]
        );
        assert_eq!(
            codes(Inputs {
                body: true,
                query: true,
                ..Inputs::default()
            }),
            [
                ("400", "invalid_query"),
                ("400", "invalid_json"),
                ("400", "invalid_body"),
                ("413", "body_too_large"),
                ("415", "unsupported_media_type"),
            ]
        );
    }

    #[test]
    fn a_description_names_a_code_once() {
        let path = rejections(Inputs {
            path: true,
            ..Inputs::default()
        })[0];
        let added = describe(Some("`invalid_body`"), &path);
        assert_eq!(
            added,
            "`invalid_body`; `invalid_path`: a path parameter is malformed (not a UUID, not an integer in range)"
        );
        assert_eq!(describe(Some(&added), &path), added);
        assert!(describe(None, &path).starts_with("`invalid_path`"));
    }
}
