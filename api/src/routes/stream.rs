//! `GET /v1/stream`: the caller's channel events as Server-Sent Events (docs/PROTOCOL.md,
//! "Server-Sent Events"). This handler decides which channels and from where; the stream itself
//! is `crate::stream`.

use std::collections::VecDeque;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Caller, Params};
use crate::routes::messages::route_error;
use crate::stream::{MAX_STREAM_CHANNELS, Positions, StreamBody};

/// The query of `GET /v1/stream`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Comma-separated channel ids to stream (each must be readable by the caller); all the
    /// caller's channels when absent, and then channels joined later are added as they are.
    pub channels: Option<String>,
}

#[utoipa::path(get, path = "/v1/stream", tag = "stream",
    security(("bearer" = [])),
    params(StreamParams,
        ("Last-Event-ID" = Option<String>, Header,
         description = "The `id` of the last event received: resumes every channel after it")),
    responses(
        (status = 200, content_type = "text/event-stream",
         description = "Events `ready`, `message`, `subscribed`, `unsubscribed`, `close`; \
                        `:heartbeat` comments when quiet", body = String),
        (status = 400, description = "`invalid_last_event_id`, `invalid_query`, `too_many_channels`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`missing_scope` (a bot token without `channels:read`)", body = ErrorBody),
        (status = 404, description = "`not_found`: a channel of `channels=` the caller cannot read", body = ErrorBody),
        (status = 503, description = "`too_many_streams` (retry after `Retry-After`), `unavailable`", body = ErrorBody),
    ))]
pub async fn stream(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    Params(params): Params<StreamParams>,
) -> ApiResult<Response> {
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(value) => {
            let id = value.to_str().map_err(|_| bad_id("is not text"))?;
            Some(Positions::decode(id).map_err(|err| bad_id(&err.to_string()))?)
        }
    };
    let store = &state.api.store;
    let (channels, follows_memberships) = match &params.channels {
        Some(list) => (named_channels(list)?, false),
        None => (store.channel_ids_of(caller.user_id).await?, true),
    };
    if channels.len() > MAX_STREAM_CHANNELS {
        return Err(ApiError::bad_request(
            "too_many_channels",
            format!(
                "a stream follows at most {MAX_STREAM_CHANNELS} channels; name them with channels="
            ),
        ));
    }
    let mut readable = Vec::with_capacity(channels.len());
    for channel in channels {
        let access = store.channel_access(channel, caller.user_id).await?;
        if access.can_read() {
            readable.push(channel);
        } else if !follows_memberships {
            return Err(ApiError::not_found("channel"));
        }
    }
    let streams = &state.api.streams;
    let mut registration = streams.register(caller.user_id).ok_or_else(|| ApiError {
        retry_after: Some(5),
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            "this process serves as many streams as it may; retry",
        )
    })?;
    // Subscribed before positions are read, so no event falls between the two.
    for &channel in &readable {
        registration.subscribe(channel);
    }
    let (positions, catch_ups) = starting_positions(&state, &readable, resume.as_ref()).await?;
    let ready = Event::default().event("ready").id(positions.encode()).data(
        json!({
            "channels": positions.channels().collect::<Vec<_>>(),
            "resumed": resume.is_some(),
        })
        .to_string(),
    );
    let body = StreamBody {
        state: state.clone(),
        registration,
        positions,
        user: caller.user_id,
        session: caller.session_id,
        catch_ups,
        follows_memberships,
        ready: VecDeque::from([ready]),
        done: false,
    };
    let heartbeat = Duration::from_millis(streams.limits.heartbeat_ms.max(1));
    let mut response = Sse::new(body.into_stream())
        .keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat"))
        .into_response();
    // Proxies that buffer responses (nginx) would hold events back.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// The position of each channel: from `Last-Event-ID` when it names the channel (then caught
/// up from there), otherwise the channel's newest `seq` (the stream starts now).
async fn starting_positions(
    state: &AppState,
    channels: &[Uuid],
    resume: Option<&Positions>,
) -> ApiResult<(Positions, VecDeque<Uuid>)> {
    let mut positions = Positions::new();
    let mut catch_ups = VecDeque::new();
    let mut fresh = Vec::new();
    for &channel in channels {
        match resume.and_then(|resume| resume.get(channel)) {
            Some(seq) => {
                positions.set(channel, seq);
                catch_ups.push_back(channel);
            }
            None => fresh.push(channel),
        }
    }
    if !fresh.is_empty() {
        let seqs = state
            .api
            .router
            .last_seqs(&fresh)
            .await
            .map_err(route_error)?;
        for (channel, seq) in fresh.into_iter().zip(seqs) {
            positions.set(channel, seq);
        }
    }
    Ok((positions, catch_ups))
}

/// The ids of `channels=`, deduplicated.
fn named_channels(list: &str) -> ApiResult<Vec<Uuid>> {
    let mut channels = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let channel = Uuid::try_parse(part).map_err(|_| {
            ApiError::bad_request("invalid_query", format!("{part:?} is not a channel id"))
        })?;
        if !channels.contains(&channel) {
            channels.push(channel);
        }
        if channels.len() > MAX_STREAM_CHANNELS {
            break;
        }
    }
    if channels.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "channels= names no channel",
        ));
    }
    Ok(channels)
}

fn bad_id(why: &str) -> ApiError {
    ApiError::bad_request(
        "invalid_last_event_id",
        format!("Last-Event-ID {why}; reconnect without it to start from now"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_channels_are_parsed_deduplicated_and_checked() {
        let a = Uuid::from_u128(1);
        let list = format!("{a}, {a},");
        assert_eq!(named_channels(&list).unwrap(), vec![a]);
        assert_eq!(named_channels("nope").unwrap_err().code, "invalid_query");
        assert_eq!(named_channels(" , ").unwrap_err().code, "invalid_query");
    }
}
