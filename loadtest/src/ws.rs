//! A minimal protocol-v1 client over tokio-tungstenite.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use chorus_protocol::{ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// A TCP connect plus WebSocket handshake plus `hello` that takes longer than this has failed:
/// a load run must not hang on one stuck socket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Conn {
    pub ws: WebSocketStream<TcpStream>,
}

impl Conn {
    /// Connects from `source` (a loopback address, to spread connections over more ephemeral
    /// ports than one address has) and reads `hello`.
    pub async fn connect(server: SocketAddr, source: Option<IpAddr>) -> anyhow::Result<Self> {
        tokio::time::timeout(CONNECT_TIMEOUT, Self::open(server, source))
            .await
            .context("connect timed out")?
    }

    async fn open(server: SocketAddr, source: Option<IpAddr>) -> anyhow::Result<Self> {
        let socket = if server.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(ip) = source {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let stream = socket.connect(server).await.context("tcp connect")?;
        stream.set_nodelay(true)?;
        // tungstenite allocates its read buffer (128 KiB by default) up front for every
        // connection, and zeroes all of it before every socket read — twice per frame when frames
        // arrive one at a time, as fan-out frames do. 2 KiB still takes a few chat frames per read,
        // costs a fan-out receiver little, and lets one process hold tens of thousands of
        // connections.
        let config = WebSocketConfig::default().read_buffer_size(2 * 1024);
        let (ws, _) = tokio_tungstenite::client_async_with_config(
            format!("ws://{server}/ws"),
            stream,
            Some(config),
        )
        .await
        .context("websocket handshake")?;
        let mut conn = Conn { ws };
        match conn.next().await? {
            ServerFrame::Hello { .. } => Ok(conn),
            other => bail!("expected hello, got {other:?}"),
        }
    }

    pub async fn identify(&mut self, token: &str) -> anyhow::Result<ServerFrame> {
        self.send(&ClientFrame::Identify {
            intents: None,
            token: token.into(),
        })
        .await?;
        match self.next().await? {
            ready @ ServerFrame::Ready { .. } => Ok(ready),
            other => bail!("expected ready, got {other:?}"),
        }
    }

    pub async fn send(&mut self, frame: &ClientFrame) -> anyhow::Result<()> {
        self.ws.send(Message::Text(frame.to_json().into())).await?;
        Ok(())
    }

    pub async fn next(&mut self) -> anyhow::Result<ServerFrame> {
        loop {
            match self.ws.next().await.context("connection ended")?? {
                Message::Text(text) => return Ok(ServerFrame::parse(&text)?),
                Message::Close(frame) => bail!("closed by server: {frame:?}"),
                _ => continue,
            }
        }
    }
}
