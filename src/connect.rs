//! `chorus connect`: a line-oriented WebSocket client for trying the protocol by hand.
//!
//! Each line typed (or piped) on standard input is sent as one text frame; each frame received is
//! printed on its own line. It exits when the server closes the connection (printing the close
//! code) or, after standard input ends, once the server has been quiet for a second.

use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

/// How long to keep printing frames after standard input has ended.
const LINGER: Duration = Duration::from_secs(1);

pub async fn run(url: &str) -> anyhow::Result<()> {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    let (mut sink, mut stream) = ws.split();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut input_open = true;
    loop {
        let linger = tokio::time::sleep(LINGER);
        tokio::select! {
            line = lines.next_line(), if input_open => match line? {
                Some(line) if line.trim().is_empty() => {}
                Some(line) => sink.send(Message::Text(line.into())).await?,
                None => input_open = false,
            },
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => println!("{text}"),
                Some(Ok(Message::Close(frame))) => {
                    match frame {
                        Some(frame) => println!("closed: {} {}", u16::from(frame.code), frame.reason),
                        None => println!("closed"),
                    }
                    return Ok(());
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err.into()),
                None => return Ok(()),
            },
            _ = linger, if !input_open => return Ok(()),
        }
    }
}
