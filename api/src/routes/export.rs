//! Exporting a channel or a whole workspace (issue 16, data governance): workspace owners and
//! admins only, audited, streamed.
//!
//! The handler checks access, records the export in the audit log and answers at once with the
//! headers; a task then reads history a page of [`PAGE`] messages at a time (folded with their
//! edits, deletion, reactions and replies), formats it (`crate::export`) and pushes the bytes
//! through a channel of [`CHUNKS_IN_FLIGHT`] chunks into the response body. So memory stays one
//! page whatever the export's size, a slow reader slows the reading of history rather than
//! filling memory, and a client that goes away stops the task at its next send. A store error
//! once the body has started cannot change the status any more: the task logs it and aborts the
//! body, so the client sees a truncated transfer (and, for JSON, a document that does not parse),
//! never a silently short export.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chorus_core::HistoryQuery;
use chorus_core::messages::{MessageState, materialize};
use chorus_core::model::Channel;
use chorus_protocol::MessageEvent;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::AppState;
use crate::audit::{self, Audit};
use crate::context::{ChannelContext, require, role_in};
use crate::error::{ApiResult, ErrorBody};
use crate::export::{ExportFormat, ExportWriter};
use crate::extract::{Caller, Params, PathParams};
use crate::policy::Action;

/// Messages read from history per step.
const PAGE: usize = 200;
/// Chunks (one page each at most) formatted ahead of the client.
const CHUNKS_IN_FLIGHT: usize = 4;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `json` (default): one document, lossless. `csv`: one row per message (RFC 4180).
    pub format: Option<ExportFormat>,
}

const REFUSAL: &str = "only workspace owners and admins export data";

#[utoipa::path(get, path = "/v1/channels/{channel_id}/export", tag = "export",
    operation_id = "export_channel",
    security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "Channel id"), ExportParams),
    responses(
        (status = 200, description = "The channel's messages in seq order (thread replies with `parent_seq`), each as history shows it now: current and original text, edits, deletion, reactions, reply count. Streamed; a failure after the first byte aborts the transfer. Audited as `data_exported`.", content_type = "application/json"),
        (status = 400, description = "`invalid_query`: a format other than `json` or `csv`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only workspace owners and admins export", body = ErrorBody),
        (status = 404, description = "`not_found`: no such channel, not in its workspace, or a private channel or DM the caller is not in", body = ErrorBody),
    ))]
pub async fn channel(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
    Params(params): Params<ExportParams>,
) -> ApiResult<Response> {
    let format = params.format.unwrap_or_default();
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    require(context.role, Action::ExportData, REFUSAL)?;
    let workspace_id = context.channel.workspace_id;
    audit::record(
        &state,
        Audit {
            workspace_id: Some(workspace_id),
            actor_id: Some(caller.user_id),
            action: "data_exported",
            target_id: Some(channel_id),
            details: json!({"scope": "channel", "format": format, "channels": 1}),
        },
    )
    .await;
    let name = format!("chorus-channel-{channel_id}.{}", format.extension());
    Ok(stream(
        state,
        format,
        workspace_id,
        vec![context.channel],
        &name,
    ))
}

#[utoipa::path(get, path = "/v1/workspaces/{workspace_id}/export", tag = "export",
    operation_id = "export_workspace",
    security(("bearer" = [])),
    params(("workspace_id" = Uuid, Path, description = "Workspace id"), ExportParams),
    responses(
        (status = 200, description = "Every channel the caller can see (public channels, and the private channels and DMs they are in), ordered by name, each with its messages as in the channel export. Streamed; audited as `data_exported`.", content_type = "application/json"),
        (status = 400, description = "`invalid_query`: a format other than `json` or `csv`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only workspace owners and admins export", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
    ))]
pub async fn workspace(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
    Params(params): Params<ExportParams>,
) -> ApiResult<Response> {
    let format = params.format.unwrap_or_default();
    let role = role_in(&state, workspace_id, caller.user_id).await?;
    require(role, Action::ExportData, REFUSAL)?;
    // The channel list is metadata, small next to history: read it whole, then stream history.
    let channels: Vec<Channel> = state
        .api
        .store
        .channels_visible_to(workspace_id, caller.user_id)
        .await?
        .into_iter()
        .map(|listing| listing.channel)
        .collect();
    audit::record(
        &state,
        Audit {
            workspace_id: Some(workspace_id),
            actor_id: Some(caller.user_id),
            action: "data_exported",
            target_id: Some(workspace_id),
            details: json!({"scope": "workspace", "format": format, "channels": channels.len()}),
        },
    )
    .await;
    let name = format!("chorus-workspace-{workspace_id}.{}", format.extension());
    Ok(stream(state, format, workspace_id, channels, &name))
}

/// The response: headers now, the body from a task that reads history page by page.
fn stream(
    state: AppState,
    format: ExportFormat,
    workspace_id: Uuid,
    channels: Vec<Channel>,
    file_name: &str,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS_IN_FLIGHT);
    tokio::spawn(async move {
        if let Err(err) = produce(&state, format, workspace_id, channels, &tx).await {
            match err {
                Stop::ClientGone => {}
                Stop::Store(err) => {
                    tracing::error!(error = %err, %workspace_id, "export failed; aborting the body");
                    let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
                }
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// Why the producing task stopped early.
enum Stop {
    ClientGone,
    Store(chorus_core::StoreError),
}

impl From<chorus_core::StoreError> for Stop {
    fn from(err: chorus_core::StoreError) -> Self {
        Stop::Store(err)
    }
}

async fn send(
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
    bytes: Vec<u8>,
) -> Result<(), Stop> {
    if bytes.is_empty() {
        return Ok(());
    }
    tx.send(Ok(Bytes::from(bytes)))
        .await
        .map_err(|_| Stop::ClientGone)
}

async fn produce(
    state: &AppState,
    format: ExportFormat,
    workspace_id: Uuid,
    channels: Vec<Channel>,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), Stop> {
    let mut writer = ExportWriter::new(format);
    send(tx, writer.begin(workspace_id, Utc::now())).await?;
    for channel in channels {
        send(tx, writer.channel(&channel)).await?;
        let mut after = 0;
        loop {
            let page = state
                .api
                .messages
                .message_page(channel.id, HistoryQuery::After { after, limit: PAGE })
                .await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            let full = page.len() == PAGE;
            let mut chunk = Vec::new();
            for message in fold(state, channel.id, page).await? {
                chunk.extend(writer.message(&message));
            }
            send(tx, chunk).await?;
            if !full {
                break;
            }
        }
        send(tx, writer.channel_end()).await?;
    }
    send(tx, writer.end()).await
}

/// One page of messages folded with the events that act on or reply to them (one read).
async fn fold(
    state: &AppState,
    channel: Uuid,
    messages: Vec<MessageEvent>,
) -> Result<Vec<MessageState>, chorus_core::StoreError> {
    let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
    let related = state.api.messages.related(channel, &seqs).await?;
    let mut by_target: HashMap<u64, Vec<MessageEvent>> = HashMap::new();
    for event in related {
        for seq in [event.target_seq, event.parent_seq].into_iter().flatten() {
            by_target.entry(seq).or_default().push(event.clone());
        }
    }
    Ok(messages
        .into_iter()
        .map(|m| {
            let related = by_target.remove(&m.seq).unwrap_or_default();
            materialize(m, &related)
        })
        .collect())
}
