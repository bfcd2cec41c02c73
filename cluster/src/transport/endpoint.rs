//! [`QuicEndpoint`]: one UDP socket, the connections to peers (one per peer, dialled on demand
//! and re-dialled after a failure), and — for a server — the task that accepts peers and serves
//! their calls.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, IdleTimeout, TransportConfig, VarInt};

use super::frame::{
    self, HeaderError, RESPONSE_HEADER, RequestHeader, ResponseHeader, STATUS_OK, STATUS_REFUSED,
};
use super::tls::{Identity, SERVER_NAME};
use super::{RpcHandler, TlsFiles, TransportError, TransportLimits};

/// A process's end of the cluster transport; clones share it.
#[derive(Clone)]
pub struct QuicEndpoint {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Endpoint,
    limits: TransportLimits,
    /// One connection (or one dial in progress) per peer.
    peers: Mutex<HashMap<SocketAddr, Arc<tokio::sync::Mutex<Option<Connection>>>>>,
}

fn transport_config(limits: &TransportLimits) -> Result<Arc<TransportConfig>, TransportError> {
    let mut config = TransportConfig::default();
    config
        .max_idle_timeout(Some(
            IdleTimeout::try_from(limits.idle_timeout)
                .map_err(|err| TransportError::Io(format!("idle timeout: {err}")))?,
        ))
        .keep_alive_interval(Some(limits.idle_timeout / 3))
        .max_concurrent_bidi_streams(VarInt::from_u32(limits.max_concurrent_streams))
        .max_concurrent_uni_streams(VarInt::from_u32(0));
    Ok(Arc::new(config))
}

fn client_config(
    identity: &Identity,
    limits: &TransportLimits,
) -> Result<quinn::ClientConfig, TransportError> {
    let crypto = QuicClientConfig::try_from(identity.client_config()?)
        .map_err(|err| TransportError::Tls(err.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport_config(limits)?);
    Ok(config)
}

impl QuicEndpoint {
    /// Listens on `bind` and serves every peer presenting a certificate the cluster CA signed.
    pub fn server(
        bind: SocketAddr,
        tls: &TlsFiles,
        handler: Arc<dyn RpcHandler>,
        limits: TransportLimits,
    ) -> Result<Self, TransportError> {
        let identity = Identity::load(tls)?;
        let crypto = QuicServerConfig::try_from(identity.server_config()?)
            .map_err(|err| TransportError::Tls(err.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        server.transport_config(transport_config(&limits)?);
        let mut endpoint = Endpoint::server(server, bind)
            .map_err(|err| TransportError::Io(format!("cannot listen on {bind}: {err}")))?;
        endpoint.set_default_client_config(client_config(&identity, &limits)?);
        tokio::spawn(accept(endpoint.clone(), handler, limits));
        Ok(Self::wrap(endpoint, limits))
    }

    /// Calls only (gateways, the API); still presents its certificate.
    pub fn client(tls: &TlsFiles, limits: TransportLimits) -> Result<Self, TransportError> {
        let identity = Identity::load(tls)?;
        let mut endpoint = Endpoint::client(SocketAddr::from(([0, 0, 0, 0], 0)))
            .map_err(|err| TransportError::Io(format!("cannot open a UDP socket: {err}")))?;
        endpoint.set_default_client_config(client_config(&identity, &limits)?);
        Ok(Self::wrap(endpoint, limits))
    }

    fn wrap(endpoint: Endpoint, limits: TransportLimits) -> Self {
        QuicEndpoint {
            inner: Arc::new(Inner {
                endpoint,
                limits,
                peers: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.endpoint.local_addr().ok()
    }

    /// One call on its own stream of the connection to `peer`.
    pub async fn call(
        &self,
        peer: SocketAddr,
        group: u64,
        method: u16,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, TransportError> {
        let max = self.inner.limits.max_frame_bytes;
        frame::check_len(body.len(), max).map_err(header_error)?;
        let connection = self.connection(peer).await?;
        let exchange = async {
            let (mut send, mut recv) = connection.open_bi().await.map_err(connection_error)?;
            let header = frame::encode_request(RequestHeader {
                group,
                method,
                len: body.len() as u32,
            });
            send.write_all(&header).await.map_err(write_error)?;
            send.write_all(&body).await.map_err(write_error)?;
            let _ = send.finish();
            let mut header = [0u8; RESPONSE_HEADER];
            recv.read_exact(&mut header).await.map_err(read_error)?;
            let header = frame::decode_response(&header, max).map_err(header_error)?;
            let mut reply = vec![0u8; header.len as usize];
            recv.read_exact(&mut reply).await.map_err(read_error)?;
            if header.status == STATUS_OK {
                Ok(Bytes::from(reply))
            } else {
                Err(TransportError::Remote(
                    String::from_utf8_lossy(&reply).into_owned(),
                ))
            }
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Err(err @ (TransportError::Closed(_) | TransportError::Io(_)))) => {
                self.drop_connection(peer, &connection);
                Err(err)
            }
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout),
        }
    }

    /// The live connection to `peer`, dialled if there is none.
    async fn connection(&self, peer: SocketAddr) -> Result<Connection, TransportError> {
        let slot = self.inner.peers.lock().entry(peer).or_default().clone();
        // Callers racing to dial one peer wait for the first dial rather than make their own.
        let mut slot = slot.lock().await;
        if let Some(connection) = slot.as_ref()
            && connection.close_reason().is_none()
        {
            return Ok(connection.clone());
        }
        let connecting = self
            .inner
            .endpoint
            .connect(peer, SERVER_NAME)
            .map_err(|err| TransportError::Connect(format!("{peer}: {err}")))?;
        let connection = tokio::time::timeout(self.inner.limits.connect_timeout, connecting)
            .await
            .map_err(|_| {
                TransportError::Connect(format!("{peer}: no answer within the connect timeout"))
            })?
            .map_err(|err| TransportError::Connect(format!("{peer}: {err}")))?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    fn drop_connection(&self, peer: SocketAddr, dead: &Connection) {
        if let Some(slot) = self.inner.peers.lock().get(&peer).cloned()
            && let Ok(mut slot) = slot.try_lock()
            && slot
                .as_ref()
                .is_some_and(|c| c.stable_id() == dead.stable_id())
        {
            *slot = None;
        }
    }

    /// Closes every connection and stops accepting; waits (boundedly) for peers to be told.
    pub async fn close(&self) {
        self.inner.endpoint.close(VarInt::from_u32(0), b"shutdown");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.inner.endpoint.wait_idle()).await;
    }
}

fn header_error(err: HeaderError) -> TransportError {
    match err {
        HeaderError::TooLarge { size, max } => TransportError::FrameTooLarge { size, max },
        HeaderError::BadStatus(status) => {
            TransportError::Io(format!("bad response status {status}"))
        }
    }
}

fn connection_error(err: quinn::ConnectionError) -> TransportError {
    TransportError::Closed(err.to_string())
}

fn write_error(err: quinn::WriteError) -> TransportError {
    match err {
        quinn::WriteError::ConnectionLost(err) => connection_error(err),
        other => TransportError::Io(other.to_string()),
    }
}

fn read_error(err: quinn::ReadExactError) -> TransportError {
    match err {
        quinn::ReadExactError::ReadError(quinn::ReadError::ConnectionLost(err)) => {
            connection_error(err)
        }
        other => TransportError::Io(other.to_string()),
    }
}

/// Accepts peers until the endpoint closes; each connection and each stream gets its own task.
async fn accept(endpoint: Endpoint, handler: Arc<dyn RpcHandler>, limits: TransportLimits) {
    while let Some(incoming) = endpoint.accept().await {
        let handler = handler.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            let connection = match incoming.await {
                Ok(connection) => connection,
                Err(err) => {
                    // Most often: a peer without a certificate the cluster CA signed.
                    tracing::warn!(%remote, error = %err, "refused a transport connection");
                    return;
                }
            };
            while let Ok((send, recv)) = connection.accept_bi().await {
                tokio::spawn(serve_stream(send, recv, handler.clone(), limits));
            }
        });
    }
}

/// Reads one request, runs the handler, writes the response.
async fn serve_stream(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    handler: Arc<dyn RpcHandler>,
    limits: TransportLimits,
) {
    let max = limits.max_frame_bytes;
    let mut header = [0u8; frame::REQUEST_HEADER];
    if recv.read_exact(&mut header).await.is_err() {
        return;
    }
    let header = match frame::decode_request(&header, max) {
        Ok(header) => header,
        Err(err) => {
            tracing::warn!(?err, "refused an oversized transport request");
            let _ = recv.stop(VarInt::from_u32(1));
            respond(
                &mut send,
                STATUS_REFUSED,
                format!("{err:?}").as_bytes(),
                max,
            )
            .await;
            return;
        }
    };
    let mut body = vec![0u8; header.len as usize];
    if recv.read_exact(&mut body).await.is_err() {
        return;
    }
    // A panicking handler ends its own task; the caller sees the stream reset.
    let handled = tokio::spawn(async move {
        handler
            .handle(header.group, header.method, Bytes::from(body))
            .await
    })
    .await;
    match handled {
        Ok(Ok(reply)) => respond(&mut send, STATUS_OK, &reply, max).await,
        Ok(Err(reason)) => respond(&mut send, STATUS_REFUSED, reason.as_bytes(), max).await,
        Err(_) => {
            let _ = send.reset(VarInt::from_u32(2));
        }
    }
}

async fn respond(send: &mut quinn::SendStream, status: u8, body: &[u8], max: usize) {
    let (status, body) = match frame::check_len(body.len(), max) {
        Ok(()) => (status, body),
        Err(_) => (STATUS_REFUSED, &b"response over the frame limit"[..]),
    };
    let header = frame::encode_response(ResponseHeader {
        status,
        len: body.len() as u32,
    });
    if send.write_all(&header).await.is_ok() && send.write_all(body).await.is_ok() {
        let _ = send.finish();
    }
}
