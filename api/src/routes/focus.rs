//! Focus mode over REST: the caller's settings (time zone, weekly schedule, priority rules,
//! automatic reply), starting and ending a session by hand, the digests of ended sessions, the
//! caller's statistics (focus time per local day, sessions, streaks), and a workspace's "who is
//! in focus now". Times come from the API's clock (`ApiState::clock`), so tests fix them. Every route but the workspace view is about the caller
//! only; the workspace view is for its members.
//!
//! What happens during a session — holding notifications, the digest at its end, scheduled
//! sessions starting and ending — is `chorus_notify` (`delivery.rs`, `focus.rs`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_core::focus::policy::{PolicyRefusal, check_all};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::AppState;
use crate::audit::{self, Audit};
use crate::context::{require, role_in};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Caller, Params, PathParams};
use crate::policy::Action;
use crate::routes::history::page_limit;
use crate::views::{
    FocusDigestList, FocusDigestView, FocusSessionView, FocusSettingsView, FocusStatsView,
    FocusView, MemberInFocus, Refusal, StartFocusRequest, TeamFocus, planned_end, sessions_since,
    settings_from, stats_days,
};
use crate::views::{FocusPolicyView, WorkspaceFocusPolicy, policy_from};

fn refused((code, message): Refusal) -> ApiError {
    ApiError::bad_request(code, message)
}

/// The refusal of a session a workspace's focus policy does not allow.
fn not_allowed(workspace: Uuid, why: PolicyRefusal) -> ApiError {
    let message = match why {
        PolicyRefusal::OutsideHours => format!(
            "workspace {workspace} allows focus sessions only in its focus hours, and now is \
             outside them"
        ),
        PolicyRefusal::EndsAfterHours { window_end } => format!(
            "workspace {workspace} allows focus sessions only in its focus hours, which end at \
             {}: end the session by then",
            window_end.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ),
    };
    ApiError::new(StatusCode::CONFLICT, "focus_not_allowed", message)
}

#[utoipa::path(get, path = "/v1/users/me/focus", tag = "focus", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's session in effect (null when none) and settings", body = FocusView),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<FocusView>> {
    let focus = state.api.store.focus();
    let session = focus.open_focus_session(caller.user_id).await?;
    let settings = focus
        .focus_settings(caller.user_id)
        .await?
        .unwrap_or_default();
    Ok(Json(FocusView {
        session: session.map(Into::into),
        settings: (&settings).into(),
    }))
}

#[utoipa::path(put, path = "/v1/users/me/focus/settings", tag = "focus", security(("bearer" = [])),
    request_body = FocusSettingsView,
    responses(
        (status = 200, description = "The settings as stored; a new schedule takes effect at the next tick of the focus runtime", body = FocusSettingsView),
        (status = 400, description = "`invalid_time_zone`, `invalid_schedule`, `invalid_rules`, `invalid_auto_reply`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
    ))]
pub async fn set_settings(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(request): Body<FocusSettingsView>,
) -> ApiResult<Json<FocusSettingsView>> {
    let settings = settings_from(request).map_err(refused)?;
    state
        .api
        .store
        .focus()
        .set_focus_settings(caller.user_id, &settings)
        .await?;
    Ok(Json((&settings).into()))
}

#[utoipa::path(post, path = "/v1/users/me/focus", tag = "focus", security(("bearer" = [])),
    request_body = StartFocusRequest,
    responses(
        (status = 200, description = "The session in effect now: a new one, or the open one with its planned end changed", body = FocusSessionView),
        (status = 400, description = "`invalid_duration`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 409, description = "`focus_not_allowed`: a workspace the caller is in allows focus only in its hours (`GET /v1/workspaces/{id}/focus/policy`); the message names the workspace and says why", body = ErrorBody),
    ))]
pub async fn start(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(request): Body<StartFocusRequest>,
) -> ApiResult<Json<FocusSessionView>> {
    let now = state.api.clock.now();
    let ends_at = planned_end(&request, now).map_err(refused)?;
    let policies = state
        .api
        .store
        .focus()
        .focus_policies_for(caller.user_id)
        .await?;
    if let Err((workspace, why)) = check_all(&policies, now, ends_at) {
        return Err(not_allowed(workspace, why));
    }
    let session = chorus_notify::focus::start_session(
        state.api.store.as_ref(),
        state.api.presence.as_ref(),
        caller.user_id,
        now,
        ends_at,
    )
    .await?;
    Ok(Json(session.into()))
}

#[utoipa::path(delete, path = "/v1/users/me/focus", tag = "focus", security(("bearer" = [])),
    responses(
        (status = 200, description = "Ended; the digest of what it held (also sent as a `focus_digest` frame)", body = FocusDigestView),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 404, description = "`not_in_focus`: no session in effect", body = ErrorBody),
    ))]
pub async fn end(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<FocusDigestView>> {
    let digest = chorus_notify::focus::end_session(
        state.api.store.as_ref(),
        state.api.presence.as_ref(),
        caller.user_id,
        state.api.clock.now(),
    )
    .await?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_in_focus",
            "no focus session is in effect",
        )
    })?;
    Ok(Json(digest.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DigestParams {
    /// 1 to 50; default 10.
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/v1/users/me/focus/digests", tag = "focus", security(("bearer" = [])),
    params(DigestParams),
    responses(
        (status = 200, description = "The digests of the caller's ended sessions, newest first", body = FocusDigestList),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
    ))]
pub async fn digests(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(params): Params<DigestParams>,
) -> ApiResult<Json<FocusDigestList>> {
    let limit = page_limit(params.limit, 10, 50)?;
    let digests = state
        .api
        .store
        .focus()
        .focus_digests(caller.user_id, limit)
        .await?;
    Ok(Json(FocusDigestList {
        digests: digests.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// How many local days, today included: 1 to 90; default 7.
    pub days: Option<u32>,
}

#[utoipa::path(get, path = "/v1/users/me/focus/stats", tag = "focus", security(("bearer" = [])),
    params(StatsParams),
    responses(
        (status = 200, description = "Focus time per local day (in the caller's focus time zone), sessions and streaks over the last `days` days", body = FocusStatsView),
        (status = 400, description = "`invalid_days` (outside 1–90), `invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
    ))]
pub async fn stats(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(params): Params<StatsParams>,
) -> ApiResult<Json<FocusStatsView>> {
    let days = stats_days(params.days).map_err(refused)?;
    let now = state.api.clock.now();
    let focus = state.api.store.focus();
    let time_zone = focus
        .focus_settings(caller.user_id)
        .await?
        .unwrap_or_default()
        .time_zone;
    let since = sessions_since(time_zone, now, days);
    let mut sessions = focus.focus_sessions_of(caller.user_id, since).await?;
    // An open session may have started before `since` (one without a planned end).
    if let Some(open) = focus.open_focus_session(caller.user_id).await?
        && open.started_at < since
    {
        sessions.push(open);
    }
    let stats = chorus_core::focus::stats::focus_stats(&sessions, time_zone, now, days);
    Ok(Json(FocusStatsView::new(time_zone, stats)))
}

#[utoipa::path(get, path = "/v1/workspaces/{workspace_id}/focus", tag = "focus",
    security(("bearer" = [])),
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "The members in focus now (team focus)", body = TeamFocus),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
    ))]
pub async fn team(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
) -> ApiResult<Json<TeamFocus>> {
    role_in(&state, workspace_id, caller.user_id).await?;
    let sessions = state
        .api
        .store
        .focus()
        .open_focus_sessions_in(workspace_id)
        .await?;
    Ok(Json(TeamFocus {
        in_focus: sessions
            .into_iter()
            .map(|s| MemberInFocus {
                user_id: s.user_id,
                since: s.started_at,
                until: s.ends_at,
            })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/v1/workspaces/{workspace_id}/focus/policy", tag = "focus",
    operation_id = "get_focus_policy",
    security(("bearer" = [])),
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "The hours in which members may focus (null: any time)", body = WorkspaceFocusPolicy),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
    ))]
pub async fn get_policy(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
) -> ApiResult<Json<WorkspaceFocusPolicy>> {
    role_in(&state, workspace_id, caller.user_id).await?;
    let policy = state.api.store.focus().focus_policy(workspace_id).await?;
    Ok(Json(WorkspaceFocusPolicy {
        policy: policy.as_ref().map(Into::into),
    }))
}

#[utoipa::path(put, path = "/v1/workspaces/{workspace_id}/focus/policy", tag = "focus",
    operation_id = "set_focus_policy",
    security(("bearer" = [])), request_body = FocusPolicyView,
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "Set: members start sessions only within these hours (audited as `focus_policy_set`); sessions already open are left alone", body = WorkspaceFocusPolicy),
        (status = 400, description = "`invalid_time_zone`, `invalid_schedule`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins set the focus policy", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
    ))]
pub async fn set_policy(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
    Body(request): Body<FocusPolicyView>,
) -> ApiResult<Json<WorkspaceFocusPolicy>> {
    let role = role_in(&state, workspace_id, caller.user_id).await?;
    require(
        role,
        Action::ManageFocusPolicy,
        "only owners and admins set the focus policy",
    )?;
    let policy = policy_from(&request).map_err(refused)?;
    state
        .api
        .store
        .focus()
        .set_focus_policy(workspace_id, Some(&policy))
        .await?;
    let view = FocusPolicyView::from(&policy);
    audit::record(
        &state,
        Audit {
            workspace_id: Some(workspace_id),
            actor_id: Some(caller.user_id),
            action: "focus_policy_set",
            target_id: Some(workspace_id),
            details: json!(view),
        },
    )
    .await;
    Ok(Json(WorkspaceFocusPolicy { policy: Some(view) }))
}

#[utoipa::path(delete, path = "/v1/workspaces/{workspace_id}/focus/policy", tag = "focus",
    operation_id = "remove_focus_policy",
    security(("bearer" = [])),
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "Removed: members may focus at any time (audited as `focus_policy_removed`)", body = WorkspaceFocusPolicy),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins set the focus policy", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
    ))]
pub async fn remove_policy(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
) -> ApiResult<Json<WorkspaceFocusPolicy>> {
    let role = role_in(&state, workspace_id, caller.user_id).await?;
    require(
        role,
        Action::ManageFocusPolicy,
        "only owners and admins set the focus policy",
    )?;
    state
        .api
        .store
        .focus()
        .set_focus_policy(workspace_id, None)
        .await?;
    audit::record(
        &state,
        Audit {
            workspace_id: Some(workspace_id),
            actor_id: Some(caller.user_id),
            action: "focus_policy_removed",
            target_id: Some(workspace_id),
            details: json!({}),
        },
    )
    .await;
    Ok(Json(WorkspaceFocusPolicy { policy: None }))
}
