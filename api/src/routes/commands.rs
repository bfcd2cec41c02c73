//! Slash commands over REST (docs/BOTS.md, "Slash commands"): admins register a workspace's
//! commands; a member invokes one in a channel; the handler answers with the invocation's
//! response token. Built-in commands (`/topic`, `/invite`, `/me`, `/focus`, `/mute`) run here,
//! through the same handlers (and so the same permission checks) as their REST routes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_core::StoreError;
use chorus_core::auth::{Principal, new_refresh_token, refresh_token_hash};
use chorus_core::bots::stored_now;
use chorus_core::commands::{Invocation, InvocationState, SlashCommand};
use chorus_protocol::CommandInvocation;
use chrono::Utc;
use uuid::Uuid;

use crate::AppState;
use crate::commands::parse::{
    Builtin, BuiltinAction, Invitee, Visibility, builtin_action, parse_invocation, valid_name,
};
use crate::commands::{deliver_answer, dispatch};
use crate::context::{ChannelContext, require, role_in};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Caller, PathParams};
use crate::policy::Action;
use crate::views::{
    AddChannelMemberRequest, CommandListView, CommandOutcomeView, CommandResponseRequest,
    CommandResponseView, CommandView, InvokeCommandRequest, MuteRequest, PostMessageRequest,
    RegisterCommandRequest, RegisteredCommandView, StartFocusRequest, UpdateChannelRequest,
};

#[utoipa::path(post, path = "/v1/workspaces/{workspace_id}/commands", tag = "bots",
    security(("bearer" = [])), request_body = RegisterCommandRequest,
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 201, description = "Registered; a URL command's signing secret is shown only now", body = RegisteredCommandView),
        (status = 400, description = "`invalid_command_name`, `reserved_command`, `invalid_description`, `invalid_url`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins register commands", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace or no such bot in it", body = ErrorBody),
        (status = 409, description = "`command_exists`: the workspace has a command of that name", body = ErrorBody),
    ))]
pub async fn register_command(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
    Body(request): Body<RegisterCommandRequest>,
) -> ApiResult<(StatusCode, Json<RegisteredCommandView>)> {
    let role = role_in(&state, workspace_id, caller.user_id).await?;
    require(
        role,
        Action::ManageBots,
        "only owners and admins register commands",
    )?;
    let name = request.name.trim().trim_start_matches('/').to_string();
    valid_name(&name)
        .map_err(|err| ApiError::bad_request("invalid_command_name", err.to_string()))?;
    if Builtin::named(&name).is_some() {
        return Err(ApiError::bad_request(
            "reserved_command",
            format!("/{name} is a built-in command"),
        ));
    }
    if request.description.chars().count() > 250 {
        return Err(ApiError::bad_request(
            "invalid_description",
            "description must be at most 250 characters",
        ));
    }
    let bot = state
        .api
        .store
        .bot(request.bot_id)
        .await?
        .filter(|bot| bot.workspace_id == workspace_id)
        .ok_or_else(|| ApiError::not_found("bot"))?;
    let url = match &request.url {
        None => None,
        Some(url) => Some(
            chorus_webhooks::endpoint::check_url(url, &state.api.outbound.policy)
                .map_err(|err| ApiError::bad_request("invalid_url", err.to_string()))?
                .to_string(),
        ),
    };
    let secret = url
        .as_ref()
        .map(|_| format!("cmdsec_{}", new_refresh_token()));
    let command = SlashCommand {
        id: Uuid::now_v7(),
        workspace_id,
        name,
        description: request.description.trim().to_string(),
        bot_id: bot.user.id,
        url,
        secret: secret.clone(),
        created_by: caller.user_id,
        created_at: stored_now(),
    };
    match state.api.store.commands().create_command(&command).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "command_exists",
                format!("this workspace already has /{}", command.name),
            ));
        }
        Err(err) => return Err(err.into()),
    }
    Ok((
        StatusCode::CREATED,
        Json(RegisteredCommandView {
            command: command.into(),
            secret,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/workspaces/{workspace_id}/commands", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "The built-in commands and the workspace's registered ones (for any member: clients offer them as the user types)", body = CommandListView),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such workspace, or the caller is not in it", body = ErrorBody),
    ))]
pub async fn list_commands(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(workspace_id): PathParams<Uuid>,
) -> ApiResult<Json<CommandListView>> {
    role_in(&state, workspace_id, caller.user_id).await?;
    let commands = state.api.store.commands().commands_of(workspace_id).await?;
    Ok(Json(CommandListView {
        builtins: Builtin::ALL.iter().map(|b| b.name().to_string()).collect(),
        commands: commands.into_iter().map(CommandView::from).collect(),
    }))
}

#[utoipa::path(delete, path = "/v1/commands/{command_id}", tag = "bots",
    security(("bearer" = [])),
    params(("command_id" = Uuid, Path, description = "Command id")),
    responses(
        (status = 204, description = "Deleted; pending invocations can no longer be answered"),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only owners and admins delete commands", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn delete_command(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(command_id): PathParams<Uuid>,
) -> ApiResult<StatusCode> {
    let commands = state.api.store.commands();
    let command = commands
        .command(command_id)
        .await?
        .ok_or_else(|| ApiError::not_found("command"))?;
    let role = role_in(&state, command.workspace_id, caller.user_id)
        .await
        .map_err(|_| ApiError::not_found("command"))?;
    require(
        role,
        Action::ManageBots,
        "only owners and admins delete commands",
    )?;
    commands.delete_command(command_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/channels/{channel_id}/commands", tag = "bots",
    security(("bearer" = [])), request_body = InvokeCommandRequest,
    params(("channel_id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 200, description = "A built-in command ran; `text` says what it did (for the caller only)", body = CommandOutcomeView),
        (status = 202, description = "Sent to the command's handler; its answer (or a `command_timeout` / `command_failed` error) arrives as an `ephemeral` frame, or as a message in the channel", body = CommandOutcomeView),
        (status = 400, description = "`invalid_command` (not `/name args`), `invalid_arguments` (a built-in's usage), and the errors of the built-in's own route", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `token_expired`, `session_revoked`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a member; `channel_archived`; a built-in's refusal", body = ErrorBody),
        (status = 404, description = "`not_found` (channel), `unknown_command`", body = ErrorBody),
    ))]
pub async fn invoke(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(channel_id): PathParams<Uuid>,
    Body(request): Body<InvokeCommandRequest>,
) -> ApiResult<(StatusCode, Json<CommandOutcomeView>)> {
    let context = ChannelContext::load(&state, channel_id, caller.user_id).await?;
    context.require_writable()?;
    let parsed = parse_invocation(&request.text)
        .map_err(|err| ApiError::bad_request("invalid_command", err.to_string()))?;
    if let Some(builtin) = Builtin::named(&parsed.name) {
        let action = builtin_action(builtin, &parsed.args)
            .map_err(|usage| ApiError::bad_request("invalid_arguments", usage.to_string()))?;
        let text = run_builtin(&state, &caller, channel_id, action).await?;
        return Ok((
            StatusCode::OK,
            Json(CommandOutcomeView {
                command: parsed.name,
                handled_by: "builtin".into(),
                text: Some(text),
                invocation_id: None,
                expires_at: None,
            }),
        ));
    }
    let workspace_id = context.channel.workspace_id;
    let command = state
        .api
        .store
        .commands()
        .command_named(workspace_id, &parsed.name)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_command",
                format!("this workspace has no /{}", parsed.name),
            )
        })?;
    let token = new_refresh_token();
    let now = stored_now();
    let expires_at =
        now + chrono::Duration::milliseconds(state.api.limits.command_deadline_ms as i64);
    let invocation = Invocation {
        id: Uuid::now_v7(),
        command_id: command.id,
        command: command.name.clone(),
        workspace_id,
        channel_id,
        user_id: caller.user_id,
        bot_id: command.bot_id,
        token_hash: refresh_token_hash(&token),
        expires_at,
        state: InvocationState::Pending,
        created_at: now,
    };
    state
        .api
        .store
        .commands()
        .create_invocation(&invocation)
        .await?;
    let frame = CommandInvocation {
        invocation_id: invocation.id,
        command: command.name.clone(),
        text: parsed.args,
        workspace_id,
        channel_id,
        user_id: caller.user_id,
        response_token: token,
        expires_at,
    };
    let invocation_id = invocation.id;
    dispatch(&state, &command, invocation, frame);
    Ok((
        StatusCode::ACCEPTED,
        Json(CommandOutcomeView {
            command: command.name,
            handled_by: if command.url.is_some() {
                "url"
            } else {
                "socket"
            }
            .into(),
            text: None,
            invocation_id: Some(invocation_id),
            expires_at: Some(expires_at),
        }),
    ))
}

/// Runs a built-in through the handler of its REST route, so it is held to the same rules.
async fn run_builtin(
    state: &AppState,
    caller: &Principal,
    channel_id: Uuid,
    action: BuiltinAction,
) -> ApiResult<String> {
    use crate::routes::{channel_members, channels, focus, messages};
    let who = || Caller(*caller);
    let channel = || PathParams(channel_id);
    let state = || State(state.clone());
    // Each route's own answer is dropped: the caller is told what happened in `text`.
    Ok(match action {
        BuiltinAction::SetTopic(topic) => {
            let cleared = topic.is_empty();
            let _ = channels::update(
                state(),
                who(),
                channel(),
                Body(UpdateChannelRequest {
                    name: None,
                    description: None,
                    topic: Some(topic.clone()),
                    private: None,
                }),
            )
            .await?;
            if cleared {
                "Topic cleared".into()
            } else {
                format!("Topic set to: {topic}")
            }
        }
        BuiltinAction::Invite(invitee) => {
            let user_id = match invitee {
                Invitee::User(id) => id,
                Invitee::Email(email) => {
                    let State(inner) = state();
                    inner
                        .api
                        .store
                        .user_by_email(&email)
                        .await?
                        .ok_or_else(|| ApiError::not_found("user"))?
                        .user
                        .id
                }
            };
            let _ = channel_members::add(
                state(),
                who(),
                channel(),
                Body(AddChannelMemberRequest { user_id }),
            )
            .await?;
            format!("Added <@{user_id}> to the channel")
        }
        BuiltinAction::Me(text) => {
            let (_, Json(message)) = messages::post(
                state(),
                who(),
                channel(),
                Body(PostMessageRequest {
                    text,
                    nonce: None,
                    parent_seq: None,
                }),
            )
            .await?;
            format!("Posted as message {}", message.seq)
        }
        BuiltinAction::StartFocus { minutes } => {
            let _ = focus::start(
                state(),
                who(),
                Body(StartFocusRequest {
                    duration_minutes: Some(minutes),
                    until: None,
                }),
            )
            .await?;
            format!("Focus on for {minutes} minutes")
        }
        BuiltinAction::EndFocus => {
            let _ = focus::end(state(), who()).await?;
            "Focus ended; your digest is on its way".into()
        }
        BuiltinAction::Mute(muted) => {
            let _ =
                channel_members::set_mute(state(), who(), channel(), Body(MuteRequest { muted }))
                    .await?;
            if muted {
                "Channel muted".into()
            } else {
                "Channel unmuted".into()
            }
        }
    })
}

#[utoipa::path(post, path = "/v1/commands/respond", tag = "bots",
    request_body = CommandResponseRequest,
    responses(
        (status = 200, description = "The answer is shown: to the caller only (`ephemeral` frame) or in the channel as the bot", body = CommandResponseView),
        (status = 400, description = "`invalid_text`, `invalid_visibility`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 410, description = "`invocation_closed`: unknown token, already answered, or past its deadline (the caller was told `command_timeout`)", body = ErrorBody),
        (status = 403, description = "`channel_archived` (a `channel` answer)", body = ErrorBody),
        (status = 503, description = "`overloaded`, `unavailable`: the channel service could not take a `channel` answer", body = ErrorBody),
    ))]
pub async fn respond(
    State(state): State<AppState>,
    Body(request): Body<CommandResponseRequest>,
) -> ApiResult<Json<CommandResponseView>> {
    crate::routes::messages::valid_text(&request.text)?;
    let visibility = Visibility::parse(request.visibility.as_deref()).ok_or_else(|| {
        ApiError::bad_request("invalid_visibility", "visibility is ephemeral or channel")
    })?;
    let invocation = state
        .api
        .store
        .commands()
        .answer_invocation(&refresh_token_hash(request.response_token.trim()), Utc::now())
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::GONE,
                "invocation_closed",
                "no open invocation has this token: unknown, already answered, or past its deadline",
            )
        })?;
    let seq = deliver_answer(&state, &invocation, request.text, visibility).await?;
    Ok(Json(CommandResponseView {
        visibility: match visibility {
            Visibility::Ephemeral => "ephemeral",
            Visibility::Channel => "channel",
        }
        .into(),
        seq,
    }))
}
