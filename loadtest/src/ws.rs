//! A minimal protocol-v1 client over tokio-tungstenite.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, bail};
use chorus_protocol::{ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

pub struct Conn {
    pub ws: WebSocketStream<TcpStream>,
}

impl Conn {
    /// Connects from `source` (a loopback address, to spread connections over more ephemeral
    /// ports than one address has) and reads `hello`.
    pub async fn connect(server: SocketAddr, source: Option<IpAddr>) -> anyhow::Result<Self> {
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
        let (ws, _) = tokio_tungstenite::client_async(format!("ws://{server}/ws"), stream)
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
