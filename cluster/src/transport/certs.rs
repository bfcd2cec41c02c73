//! A development CA and node certificates for a local cluster (`chorus cluster certs`).
//!
//! Production clusters bring their own CA; this makes the files a local cluster and the tests
//! need: `ca.pem`/`ca.key` and, per name, `NAME.pem`/`NAME.key` signed by it. Every certificate
//! names `chorus-node` (what clients check), the given name, `localhost` and 127.0.0.1, and may
//! act as server and client (mutual TLS). An existing CA in the directory is reused, so nodes
//! can be added to a cluster later.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

use super::TransportError;
use super::tls::SERVER_NAME;

const CA_NAME: &str = "Chorus cluster CA";

fn cert_err(err: rcgen::Error) -> TransportError {
    TransportError::Tls(format!("certificate generation: {err}"))
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> TransportError + '_ {
    move |err| TransportError::Io(format!("{}: {err}", path.display()))
}

fn ca_params() -> Result<CertificateParams, TransportError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    params.distinguished_name = name;
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

/// Writes a file readable by its owner only (private keys).
fn write_private(path: &Path, contents: &str) -> Result<(), TransportError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io_err(path))?;
    std::io::Write::write_all(&mut file, contents.as_bytes()).map_err(io_err(path))
}

/// Writes (or reuses) the CA in `dir` and a certificate and key for each name.
pub fn generate_dev_certs(dir: &Path, names: &[String]) -> Result<(), TransportError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let (ca_cert_path, ca_key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
    let ca_key = match std::fs::read_to_string(&ca_key_path) {
        Ok(pem) => KeyPair::from_pem(&pem).map_err(cert_err)?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let key = KeyPair::generate().map_err(cert_err)?;
            write_private(&ca_key_path, &key.serialize_pem())?;
            key
        }
        Err(err) => return Err(io_err(&ca_key_path)(err)),
    };
    // Re-signing the same name with the same key yields an issuer that verifies against the CA
    // certificate already handed out.
    let ca = ca_params()?.self_signed(&ca_key).map_err(cert_err)?;
    if !ca_cert_path.exists() {
        std::fs::write(&ca_cert_path, ca.pem()).map_err(io_err(&ca_cert_path))?;
    }
    for name in names {
        let mut dns = vec![SERVER_NAME.to_string(), "localhost".to_string()];
        if name.parse::<std::net::IpAddr>().is_err() && !dns.contains(name) {
            dns.push(name.clone());
        }
        let mut params = CertificateParams::new(dns).map_err(cert_err)?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, name.as_str());
        params.distinguished_name = subject;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().map_err(cert_err)?;
        let cert = params.signed_by(&key, &ca, &ca_key).map_err(cert_err)?;
        let cert_path = dir.join(format!("{name}.pem"));
        std::fs::write(&cert_path, cert.pem()).map_err(io_err(&cert_path))?;
        write_private(&dir.join(format!("{name}.key")), &key.serialize_pem())?;
    }
    Ok(())
}
