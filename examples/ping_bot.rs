//! A bot that answers `!ping` with `pong` in every channel it was added to: the example of
//! docs/BOTS.md, written on the wire-protocol crate (`chorus-protocol`) and kept working by
//! `tests/bots.rs`, which runs [`run`] against a real node.
//!
//! ```text
//! CHORUS_WS_URL=ws://127.0.0.1:8081/ws CHORUS_BOT_TOKEN=chb_… cargo run --example ping_bot
//! ```
//!
//! It declares only the `messages` intent (it never sees reactions, edits or typing), answers
//! with a nonce derived from the command's channel and `seq` (a retry after a reconnect cannot
//! post twice), and sends a heartbeat at the interval `hello` gives.

use std::future::Future;
use std::time::Duration;

use chorus_protocol::{ClientFrame, Intent, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The answer to a message's text, if it is a command this bot knows.
pub fn answer(text: &str) -> Option<String> {
    match text.trim() {
        "!ping" => Some("pong".to_string()),
        other => other
            .strip_prefix("!echo ")
            .map(|rest| rest.trim().to_string())
            .filter(|rest| !rest.is_empty()),
    }
}

/// Connects with `token`, answers commands until `stop` resolves or the connection ends.
pub async fn run(ws_url: &str, token: &str, stop: impl Future<Output = ()>) -> Result<(), Error> {
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await?;
    let mut heartbeat = Duration::from_secs(30);
    let mut me = None;
    let send = |frame: &ClientFrame| Message::Text(frame.to_json().into());
    tokio::pin!(stop);
    let mut beat = tokio::time::interval(heartbeat);
    loop {
        let message = tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = beat.tick(), if me.is_some() => {
                ws.send(send(&ClientFrame::Heartbeat)).await?;
                continue;
            }
            message = ws.next() => match message {
                Some(message) => message?,
                None => return Ok(()),
            },
        };
        let Message::Text(text) = message else {
            continue;
        };
        match ServerFrame::parse(&text)? {
            ServerFrame::Hello {
                heartbeat_interval_ms,
                ..
            } => {
                heartbeat = Duration::from_millis(heartbeat_interval_ms);
                beat = tokio::time::interval(heartbeat);
                let identify = ClientFrame::Identify {
                    token: token.to_string(),
                    intents: Some(vec![Intent::Messages]),
                };
                ws.send(send(&identify)).await?;
            }
            ServerFrame::Ready { user, .. } => me = Some(user.id),
            ServerFrame::Message(event) if Some(event.author_id) != me => {
                if let Some(reply) = answer(&event.text) {
                    let frame = ClientFrame::Send {
                        channel_id: event.channel_id,
                        nonce: format!("pong-{}-{}", event.channel_id.simple(), event.seq),
                        text: reply,
                        parent_seq: None,
                    };
                    ws.send(send(&frame)).await?;
                }
            }
            ServerFrame::Error { code, message, .. } => {
                eprintln!("ping_bot: {code:?}: {message}");
            }
            _ => {}
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("CHORUS_WS_URL").unwrap_or_else(|_| "ws://127.0.0.1:8081/ws".into());
    let token = std::env::var("CHORUS_BOT_TOKEN").map_err(|_| "set CHORUS_BOT_TOKEN")?;
    run(&url, &token, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_knows_ping_and_echo_and_nothing_else() {
        assert_eq!(answer("!ping").as_deref(), Some("pong"));
        assert_eq!(answer(" !echo hi there ").as_deref(), Some("hi there"));
        assert_eq!(answer("!echo "), None);
        assert_eq!(answer("ping"), None);
    }
}
