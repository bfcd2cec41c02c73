//! Bot users and their tokens: workspace admins create bots, issue tokens (shown once, stored
//! hashed, scoped) and revoke them. A revoked token stops at its next REST call, and its open
//! WebSockets close with 4100 at once: the token is a session, and revoking it is announced to
//! every gateway like a logout.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_cluster::access::AccessNotice;
use chorus_core::bots::{Bot, BotToken, NewBot, Scopes, new_bot_token, stored_now};
use serde_json::json;
use uuid::Uuid;

use crate::AppState;
use crate::audit::{self, Audit};
use crate::context::{require, role_in};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Caller, PathParams};
use crate::policy::Action;
use crate::routes::account::valid_avatar_url;
use crate::views::{
    BotTokenView, BotView, CreateBotRequest, CreateBotTokenRequest, CreatedBotTokenView,
};

/// Live tokens a bot may hold at once: a leaked-token clean-up stays a short list.
const MAX_LIVE_TOKENS: usize = 25;

/// A name of 1 to 80 characters, trimmed.
pub(crate) fn valid_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(ApiError::bad_request(
            "invalid_name",
            "name must be 1 to 80 characters",
        ));
    }
    Ok(name.to_string())
}

/// The bot `bot_id`, for an admin of its workspace; 404 when it is no bot the caller can see.
pub(crate) async fn bot_for_admin(state: &AppState, bot_id: Uuid, caller: Uuid) -> ApiResult<Bot> {
    let bot = state
        .api
        .store
        .bot(bot_id)
        .await?
        .ok_or_else(|| ApiError::not_found("bot"))?;
    let role = role_in(state, bot.workspace_id, caller)
        .await
        .map_err(|_| ApiError::not_found("bot"))?;
    require(
        role,
        Action::ManageBots,
        "only owners and admins manage bots",
    )?;
    Ok(bot)
}

#[utoipa::path(post, path = "/v1/workspaces/{workspace_id}/bots", tag = "bots",
    security(("bearer" = [])), request_body = CreateBotRequest,
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 201, description = "Created: a member of the workspace (role member) that no one can log in as", body = BotView),
        (status = 400, description = "`invalid_name`, `invalid_description`, `invalid_avatar_url`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins create bots", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
    Body(request): Body<CreateBotRequest>,
) -> ApiResult<(StatusCode, Json<BotView>)> {
    let role = role_in(&state, workspace_id, caller.user_id).await?;
    require(
        role,
        Action::ManageBots,
        "only owners and admins create bots",
    )?;
    let name = valid_name(&request.name)?;
    if request.description.chars().count() > 500 {
        return Err(ApiError::bad_request(
            "invalid_description",
            "description must be at most 500 characters",
        ));
    }
    if let Some(url) = &request.avatar_url
        && !valid_avatar_url(url)
    {
        return Err(ApiError::bad_request(
            "invalid_avatar_url",
            "avatar_url must be an https:// URL of at most 500 characters",
        ));
    }
    let bot = state
        .api
        .store
        .create_bot(&NewBot {
            workspace_id,
            name,
            description: request.description,
            avatar_url: request.avatar_url,
            created_by: caller.user_id,
        })
        .await?;
    audit::record(
        &state,
        Audit {
            workspace_id: Some(workspace_id),
            actor_id: Some(caller.user_id),
            action: "bot_created",
            target_id: Some(bot.user.id),
            details: json!({ "name": bot.user.display_name }),
        },
    )
    .await;
    Ok((StatusCode::CREATED, Json(bot.into())))
}

#[utoipa::path(get, path = "/v1/workspaces/{workspace_id}/bots", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "The workspace's bots, oldest first", body = [BotView]),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
) -> ApiResult<Json<Vec<BotView>>> {
    role_in(&state, workspace_id, caller.user_id).await?;
    let bots = state.api.store.bots_of(workspace_id).await?;
    Ok(Json(bots.into_iter().map(BotView::from).collect()))
}

#[utoipa::path(post, path = "/v1/bots/{bot_id}/tokens", tag = "bots",
    security(("bearer" = [])), request_body = CreateBotTokenRequest,
    params(("bot_id" = Uuid, Path, description = "The bot's user id")),
    responses(
        (status = 201, description = "Issued; the token is shown only now", body = CreatedBotTokenView),
        (status = 400, description = "`invalid_name`, `invalid_scopes` (none, or an unknown name), `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins issue tokens", body = ErrorBody),
        (status = 404, description = "`not_found`: no such bot in a workspace of the caller", body = ErrorBody),
        (status = 409, description = "`too_many_tokens`: 25 live tokens already; revoke one", body = ErrorBody),
    ))]
pub async fn create_token(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(bot_id): PathParams<Uuid>,
    Body(request): Body<CreateBotTokenRequest>,
) -> ApiResult<(StatusCode, Json<CreatedBotTokenView>)> {
    let bot = bot_for_admin(&state, bot_id, caller.user_id).await?;
    let name = valid_name(&request.name)?;
    let scopes = Scopes::parse(request.scopes.iter().map(String::as_str)).map_err(|unknown| {
        ApiError::bad_request("invalid_scopes", format!("unknown scope {unknown:?}"))
    })?;
    if scopes == Scopes::default() {
        return Err(ApiError::bad_request(
            "invalid_scopes",
            "name at least one scope",
        ));
    }
    let store = &state.api.store;
    let live = store
        .bot_tokens_of(bot_id)
        .await?
        .iter()
        .filter(|t| t.revoked_at.is_none())
        .count();
    if live >= MAX_LIVE_TOKENS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_tokens",
            "this bot has 25 live tokens; revoke one first",
        ));
    }
    let token = BotToken {
        id: Uuid::now_v7(),
        bot_id,
        name,
        scopes,
        created_by: caller.user_id,
        created_at: stored_now(),
        revoked_at: None,
    };
    let issued = new_bot_token(token.id);
    store.create_bot_token(&token, &issued.hash).await?;
    audit::record(
        &state,
        Audit {
            workspace_id: Some(bot.workspace_id),
            actor_id: Some(caller.user_id),
            action: "bot_token_issued",
            target_id: Some(bot_id),
            details: json!({ "token_id": token.id, "scopes": token.scopes.names() }),
        },
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedBotTokenView {
            token: issued.token,
            details: token.into(),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/bots/{bot_id}/tokens", tag = "bots",
    security(("bearer" = [])),
    params(("bot_id" = Uuid, Path, description = "The bot's user id")),
    responses(
        (status = 200, description = "The bot's tokens without their secrets, revoked ones too, newest first", body = [BotTokenView]),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins list tokens", body = ErrorBody),
        (status = 404, description = "`not_found`: no such bot in a workspace of the caller", body = ErrorBody),
    ))]
pub async fn list_tokens(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(bot_id): PathParams<Uuid>,
) -> ApiResult<Json<Vec<BotTokenView>>> {
    bot_for_admin(&state, bot_id, caller.user_id).await?;
    let tokens = state.api.store.bot_tokens_of(bot_id).await?;
    Ok(Json(tokens.into_iter().map(BotTokenView::from).collect()))
}

#[utoipa::path(delete, path = "/v1/bots/{bot_id}/tokens/{token_id}", tag = "bots",
    security(("bearer" = [])),
    params(("bot_id" = Uuid, Path, description = "The bot's user id"),
           ("token_id" = Uuid, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked: the token stops working and its WebSockets close with 4100 at once"),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins revoke tokens", body = ErrorBody),
        (status = 404, description = "`not_found`: no such bot, or no live token of it with that id", body = ErrorBody),
    ))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams((bot_id, token_id)): PathParams<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let bot = bot_for_admin(&state, bot_id, caller.user_id).await?;
    let revoked = state
        .api
        .store
        .revoke_bot_token(bot_id, token_id, stored_now())
        .await?;
    if !revoked {
        return Err(ApiError::not_found("token"));
    }
    state
        .api
        .access
        .notify(AccessNotice::Sessions {
            user_id: bot_id,
            session_id: Some(token_id),
        })
        .await;
    audit::record(
        &state,
        Audit {
            workspace_id: Some(bot.workspace_id),
            actor_id: Some(caller.user_id),
            action: "bot_token_revoked",
            target_id: Some(bot_id),
            details: json!({ "token_id": token_id }),
        },
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
