//! TLS for the terminal link: a test CA and a terminal certificate named like Adyen's
//! (`<POIID>.test.terminal.adyen.com`), the simulator's server config and the client's trust.

use std::path::Path;
use std::sync::Arc;

use ::tls::{restrict_to_owner, write_private};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Errors setting up TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Certificate generation failed.
    #[error("cannot generate the test certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A PEM file could not be read.
    #[error("cannot read PEM `{path}`: {reason}")]
    Pem {
        /// File.
        path: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
    /// File IO.
    #[error("certificate file: {0}")]
    Io(#[from] std::io::Error),
}

/// The host name a terminal's certificate carries; clients connect to it, resolved to the
/// terminal's LAN address, so the certificate proves which terminal answers.
pub fn terminal_host(poi_id: &str) -> String {
    format!("{poi_id}.test.terminal.adyen.com")
}

/// The files a simulated terminal keeps in its state folder: `ca.pem` (what clients trust),
/// `terminal.pem` and `terminal.key`. Created on first start, reused afterwards.
#[derive(Debug, Clone)]
pub struct TerminalIdentity {
    /// PEM of the CA clients trust.
    pub ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
}

impl TerminalIdentity {
    /// Loads the identity from `dir`, generating it when absent.
    pub fn load_or_generate(dir: &Path, poi_id: &str) -> Result<Self, TlsError> {
        let ca = dir.join("ca.pem");
        let cert = dir.join("terminal.pem");
        let key = dir.join("terminal.key");
        if !(ca.exists() && cert.exists() && key.exists()) {
            let (ca_pem, cert_pem, key_pem) = generate(poi_id)?;
            std::fs::create_dir_all(dir)?;
            write_private(&key, key_pem.as_bytes())?;
            std::fs::write(&cert, cert_pem)?;
            std::fs::write(&ca, ca_pem)?;
        }
        // A key written world-readable by an earlier version is closed now.
        restrict_to_owner(&key)?;
        let ca_pem = std::fs::read_to_string(&ca)?;
        let pem_err = |path: &Path, e: rustls::pki_types::pem::Error| TlsError::Pem {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let mut chain = Vec::new();
        for c in CertificateDer::pem_file_iter(&cert).map_err(|e| pem_err(&cert, e))? {
            chain.push(c.map_err(|e| pem_err(&cert, e))?);
        }
        let key_der = PrivateKeyDer::from_pem_file(&key)
            .map_err(|e| pem_err(&key, e))?
            .secret_der()
            .to_vec();
        Ok(Self {
            ca_pem,
            chain,
            key_der,
        })
    }

    /// The server configuration for the simulator.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let key = PrivateKeyDer::try_from(self.key_der.clone()).map_err(|e| TlsError::Pem {
            path: "terminal.key".into(),
            reason: e.to_string(),
        })?;
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(self.chain.clone(), key)?;
        Ok(Arc::new(cfg))
    }
}

/// A client configuration that trusts only the given CA (PEM).
pub fn client_config(ca_pem: &[u8]) -> Result<rustls::ClientConfig, TlsError> {
    let pem = std::str::from_utf8(ca_pem).map_err(|e| TlsError::Pem {
        path: "ca".into(),
        reason: e.to_string(),
    })?;
    ::tls::client_config(pem).map_err(|e| TlsError::Pem {
        path: "ca".into(),
        reason: e.to_string(),
    })
}

fn generate(poi_id: &str) -> Result<(String, String, String), TlsError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Kassa terminal simulator test CA");
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let host = terminal_host(poi_id);
    let leaf_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![host.clone(), "localhost".to_owned()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    params.distinguished_name.push(DnType::CommonName, host);
    let leaf = params.signed_by(&leaf_key, &issuer)?;
    let chain = format!("{}{}", leaf.pem(), ca_cert.pem());
    Ok((ca_cert.pem(), chain, leaf_key.serialize_pem()))
}
