//! Slash commands: what a typed `/command` means (`parse.rs`, pure), and how an invocation of a
//! registered command reaches its handler and how its answer or error reaches the caller.
//!
//! An invocation enters over REST (`POST /v1/channels/{id}/commands`, `routes/commands.rs`) and
//! is stored with the hash of a fresh response token and a deadline. It leaves as a `command`
//! frame to the bot's sockets (through the presence store's user feed, like notifications) or
//! as a signed POST to the command's URL. The answer comes back as
//! `POST /v1/commands/respond` (or in the URL's own response); the deadline task and the answer
//! both settle the invocation in the store, and only the first does anything, so the caller
//! gets an answer or a `command_timeout` error, never both.

pub mod parse;

use std::sync::Arc;
use std::time::Duration;

use chorus_cluster::PublishRequest;
use chorus_core::commands::{Invocation, InvocationState, SlashCommand};
use chorus_core::mentions::parse_mentions;
use chorus_presence::UserFrame;
use chorus_protocol::{CommandError, CommandInvocation, Ephemeral, ServerFrame};
use chorus_webhooks::endpoint::check_url;
use chorus_webhooks::resolver::refused;
use chorus_webhooks::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiResult;
use parse::Visibility;

/// Sends a frame to every connection of `user` (any gateway).
pub async fn send_to_user(state: &AppState, user: Uuid, frame: &ServerFrame) {
    state
        .api
        .presence
        .send_to_user(UserFrame {
            user_id: user,
            frame: Arc::from(frame.to_json()),
        })
        .await;
}

/// Tells the caller, and only them, why their command has no answer.
pub async fn tell_error(state: &AppState, invocation: &Invocation, code: &str, message: &str) {
    let frame = ServerFrame::Ephemeral(Ephemeral {
        channel_id: invocation.channel_id,
        invocation_id: invocation.id,
        command: invocation.command.clone(),
        bot_id: invocation.bot_id,
        text: String::new(),
        error: Some(CommandError {
            code: code.into(),
            message: message.into(),
        }),
    });
    send_to_user(state, invocation.user_id, &frame).await;
}

/// Shows an accepted answer: to the caller only, or in the channel as the command's bot.
/// Returns the message's `seq` for a channel answer.
pub async fn deliver_answer(
    state: &AppState,
    invocation: &Invocation,
    text: String,
    visibility: Visibility,
) -> ApiResult<Option<u64>> {
    match visibility {
        Visibility::Ephemeral => {
            let frame = ServerFrame::Ephemeral(Ephemeral {
                channel_id: invocation.channel_id,
                invocation_id: invocation.id,
                command: invocation.command.clone(),
                bot_id: invocation.bot_id,
                text,
                error: None,
            });
            send_to_user(state, invocation.user_id, &frame).await;
            Ok(None)
        }
        Visibility::Channel => {
            // The invocation id is the nonce: an answer retried after a lost reply posts once.
            let ack = crate::routes::messages::submit(
                state,
                PublishRequest {
                    mentions: parse_mentions(&text),
                    ..PublishRequest::message(
                        invocation.channel_id,
                        invocation.bot_id,
                        invocation.id.to_string(),
                        text,
                    )
                },
            )
            .await?;
            Ok(Some(ack.seq))
        }
    }
}

/// Sends an invocation to its handler and starts its deadline. Returns at once: the handler's
/// answer and the deadline both come later, from tasks.
pub fn dispatch(
    state: &AppState,
    command: &SlashCommand,
    invocation: Invocation,
    frame: CommandInvocation,
) {
    let deadline = (invocation.expires_at - Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    let body = ServerFrame::Command(frame).to_json();
    match (&command.url, &command.secret) {
        (Some(url), Some(secret)) => {
            tokio::spawn(post_to_url(
                state.clone(),
                invocation.clone(),
                url.clone(),
                secret.clone(),
                body,
                deadline,
            ));
        }
        _ => {
            let state = state.clone();
            let bot = invocation.bot_id;
            tokio::spawn(async move {
                state
                    .api
                    .presence
                    .send_to_user(UserFrame {
                        user_id: bot,
                        frame: Arc::from(body),
                    })
                    .await;
            });
        }
    }
    let state = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(deadline).await;
        expire(&state, &invocation).await;
    });
}

/// At the deadline: if nothing settled the invocation, it expires and the caller is told.
async fn expire(state: &AppState, invocation: &Invocation) {
    match state
        .api
        .store
        .commands()
        .settle_invocation(invocation.id, InvocationState::Expired)
        .await
    {
        Ok(true) => {
            tell_error(
                state,
                invocation,
                "command_timeout",
                &format!("/{} did not answer in time", invocation.command),
            )
            .await
        }
        Ok(false) => {}
        Err(err) => tracing::error!(error = %err, "cannot expire a command invocation"),
    }
}

/// What a URL handler may answer at once, in its response body.
#[derive(Debug, Deserialize)]
struct ImmediateAnswer {
    text: String,
    visibility: Option<String>,
}

/// Responses read from a URL handler at most (an answer is at most 4,000 characters).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// POSTs the invocation, signed like outgoing webhooks; a 2xx body with `text` is the answer.
async fn post_to_url(
    state: AppState,
    invocation: Invocation,
    url: String,
    secret: String,
    body: String,
    deadline: Duration,
) {
    // Again at send time: a literal address never meets the client's resolver, and the operator
    // may have narrowed `allow_internal` since the command was registered.
    if let Err(why) = check_url(&url, &state.api.outbound.policy) {
        let failure = format!("the command's URL is not allowed: {why}");
        return fail_invocation(&state, &invocation, &failure).await;
    }
    let timestamp = Utc::now().timestamp();
    let signature = sign(&secret, timestamp, body.as_bytes());
    let sent = state
        .api
        .outbound
        .client
        .post(&url)
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .timeout(deadline)
        .send()
        .await;
    let failure = match sent {
        Err(err) if err.is_timeout() => return, // the deadline task tells the caller
        Err(err) => match refused(&err) {
            Some(name) => format!("the command's URL is not allowed: {name}"),
            None => format!(
                "the command's URL could not be reached: {}",
                err.without_url()
            ),
        },
        Ok(response) if !response.status().is_success() => {
            format!("the command's URL answered {}", response.status().as_u16())
        }
        Ok(response) => {
            let bytes = match response.bytes().await {
                Ok(bytes) if bytes.len() <= MAX_ANSWER_BYTES => bytes,
                _ => return,
            };
            let Ok(answer) = serde_json::from_slice::<ImmediateAnswer>(&bytes) else {
                // An empty or other body: the handler answers later with its response token.
                return;
            };
            answer_now(&state, &invocation, answer).await;
            return;
        }
    };
    fail_invocation(&state, &invocation, &failure).await;
}

/// Settles an invocation as failed and tells the caller why, unless it was settled already.
async fn fail_invocation(state: &AppState, invocation: &Invocation, failure: &str) {
    let settled = state
        .api
        .store
        .commands()
        .settle_invocation(invocation.id, InvocationState::Failed)
        .await;
    if matches!(settled, Ok(true)) {
        tell_error(state, invocation, "command_failed", failure).await;
    }
}

/// A URL handler's answer in its response body, taken like one sent to `/v1/commands/respond`.
async fn answer_now(state: &AppState, invocation: &Invocation, answer: ImmediateAnswer) {
    let visibility = Visibility::parse(answer.visibility.as_deref());
    let commands = state.api.store.commands();
    let (Some(visibility), Ok(())) = (
        visibility,
        crate::routes::messages::valid_text(&answer.text),
    ) else {
        if matches!(
            commands
                .settle_invocation(invocation.id, InvocationState::Failed)
                .await,
            Ok(true)
        ) {
            tell_error(
                state,
                invocation,
                "command_failed",
                "the command's URL answered with an invalid text or visibility",
            )
            .await;
        }
        return;
    };
    match commands
        .answer_invocation(&invocation.token_hash, Utc::now())
        .await
    {
        Ok(Some(invocation)) => {
            if let Err(err) = deliver_answer(state, &invocation, answer.text, visibility).await {
                tracing::warn!(code = err.code, "a command's answer could not be shown");
            }
        }
        Ok(None) => {}
        Err(err) => tracing::error!(error = %err, "cannot record a command's answer"),
    }
}
