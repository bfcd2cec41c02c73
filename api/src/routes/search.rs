//! Search (RF-08.3): by text, author, channel and date range, only within the channels the
//! caller may read in one workspace.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_core::StoreError;
use chorus_core::messages::SearchQuery;
use chorus_protocol::MessageEvent;
use uuid::Uuid;

use crate::AppState;
use crate::context::role_in;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Caller, Params, PathParams};
use crate::routes::history::{materialize_all, page_limit};
use crate::views::{SearchParams, SearchResults};

#[utoipa::path(get, path = "/v1/workspaces/{workspace_id}/search", tag = "messages",
    security(("bearer" = [])),
    params(("workspace_id" = Uuid, Path, description = "Workspace id"), SearchParams),
    responses(
        (status = 200, description = "Matching messages as they are now (deleted ones never match), newest first", body = SearchResults),
        (status = 400, description = "`invalid_query`: no filter, `q` not 2 to 200 characters, limit out of 1..=100", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
        (status = 501, description = "`search_unsupported`: the message store (ScyllaDB) has no text search", body = ErrorBody),
    ))]
pub async fn search(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
    Params(params): Params<SearchParams>,
) -> ApiResult<Json<SearchResults>> {
    let limit = page_limit(params.limit, 20, 100)?;
    let text = params.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if let Some(q) = text
        && !(2..=200).contains(&q.chars().count())
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            "q must be 2 to 200 characters",
        ));
    }
    if text.is_none() && params.author.is_none() && params.channel.is_none() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "give at least one of q, author and channel",
        ));
    }
    role_in(&state, workspace_id, caller.user_id).await?;
    // Readable channels only: the caller's own memberships in this workspace.
    let channels: Vec<Uuid> = state
        .api
        .store
        .channels_visible_to(workspace_id, caller.user_id)
        .await?
        .into_iter()
        .filter(|l| l.membership.is_some())
        .map(|l| l.channel.id)
        .filter(|id| params.channel.is_none_or(|wanted| wanted == *id))
        .collect();
    if channels.is_empty() {
        return Ok(Json(SearchResults {
            messages: Vec::new(),
        }));
    }
    let query = SearchQuery {
        channels,
        text: text.map(str::to_string),
        author: params.author,
        from: params.from,
        to: params.to,
        // Candidates that no longer match (edited away, deleted) are dropped below.
        limit: limit * 2,
    };
    let candidates = match state.api.messages.search(&query).await {
        Ok(found) => found,
        Err(StoreError::Unsupported(_)) => {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "search_unsupported",
                "this deployment's message store has no text search",
            ));
        }
        Err(err) => return Err(err.into()),
    };
    let mut by_channel: BTreeMap<Uuid, Vec<MessageEvent>> = BTreeMap::new();
    for candidate in candidates {
        by_channel
            .entry(candidate.channel_id)
            .or_default()
            .push(candidate);
    }
    let needle = text.map(str::to_lowercase);
    let mut found = Vec::new();
    for (channel, messages) in by_channel {
        for view in materialize_all(&state, channel, messages).await? {
            let still_matches = needle
                .as_deref()
                .is_none_or(|n| view.text.to_lowercase().contains(n));
            if !view.deleted && still_matches {
                found.push(view);
            }
        }
    }
    found.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.seq.cmp(&a.seq)));
    found.truncate(limit);
    Ok(Json(SearchResults { messages: found }))
}
