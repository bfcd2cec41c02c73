//! rustls configurations for mutual TLS inside the cluster: TLS 1.3 only (QUIC requires it), the
//! ring provider (chosen here, not process-wide), the cluster CA as the only root on both sides.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::{TlsFiles, TransportError};

/// The name every node certificate carries and every client checks.
pub const SERVER_NAME: &str = "chorus-node";
/// ALPN of protocol version 1 of the transport.
pub const ALPN: &[u8] = b"chorus/1";

fn tls_err(what: &str) -> impl Fn(rustls::Error) -> TransportError + '_ {
    move |err| TransportError::Tls(format!("{what}: {err}"))
}

/// The certificates and key of a process's identity, and the CA it trusts.
pub struct Identity {
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, TransportError> {
    std::fs::read(path)
        .map_err(|err| TransportError::Tls(format!("cannot read {}: {err}", path.display())))
}

fn certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let pem = read(path)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TransportError::Tls(format!("{}: {err}", path.display())))?;
    if certs.is_empty() {
        return Err(TransportError::Tls(format!(
            "{} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

impl Identity {
    pub fn load(files: &TlsFiles) -> Result<Self, TransportError> {
        let mut roots = RootCertStore::empty();
        for ca in certs(&files.ca_cert)? {
            roots
                .add(ca)
                .map_err(tls_err("the cluster CA certificate is not usable"))?;
        }
        let pem = read(&files.key)?;
        let key = rustls_pemfile::private_key(&mut pem.as_slice())
            .map_err(|err| TransportError::Tls(format!("{}: {err}", files.key.display())))?
            .ok_or_else(|| {
                TransportError::Tls(format!("{} holds no PEM private key", files.key.display()))
            })?;
        Ok(Identity {
            roots: Arc::new(roots),
            chain: certs(&files.cert)?,
            key,
        })
    }

    /// Accepts only clients whose certificate the cluster CA signed.
    pub fn server_config(&self) -> Result<ServerConfig, TransportError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider.clone())
                .build()
                .map_err(|err| TransportError::Tls(format!("client verifier: {err}")))?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err("TLS 1.3"))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(tls_err("this node's certificate or key"))?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(config)
    }

    /// Trusts only servers whose certificate the cluster CA signed, and presents ours.
    pub fn client_config(&self) -> Result<ClientConfig, TransportError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err("TLS 1.3"))?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(tls_err("this process's certificate or key"))?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(config)
    }
}
