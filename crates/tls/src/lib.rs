//! TLS across the WAN: the chain's own certificate authority (CA), the certificates it issues,
//! and rustls configurations that trust that CA alone, pinned by its SHA-256 fingerprint.
//!
//! A store node never trusts the operating system's roots for HQ: it trusts the one CA it was
//! enrolled with. Before it has that CA (enrolment), it knows only the CA's fingerprint, and
//! [`pinned_client_config`] accepts HQ's chain only when it ends in a CA with that fingerprint.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
pub use rustls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest as _, Sha256};

/// How long a CA the chain makes itself is valid.
const CA_DAYS: i64 = 20 * 366;
/// How long a server certificate is valid: renewed well before (`kassa hq tls renew`).
pub const SERVER_DAYS: i64 = 2 * 366;
/// How long a store node's client certificate is valid: a new one comes with each rotation of
/// the store's credential (`kassa store rotate-credential`, monthly from a timer).
pub const CLIENT_DAYS: i64 = 397;
/// The common name of a store node's client certificate starts with this, then the store's id.
const STORE_CLIENT_PREFIX: &str = "kassa-store:";

/// Errors setting up TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Certificate generation failed.
    #[error("cannot make the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Text that should hold PEM does not.
    #[error("{what} is not a PEM certificate or key: {reason}")]
    Pem {
        /// What was read.
        what: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
    /// The CA is not the one pinned.
    #[error(
        "the CA's SHA-256 fingerprint is {actual}, not the pinned {pinned}: this is not the chain's CA"
    )]
    PinMismatch {
        /// The fingerprint expected.
        pinned: String,
        /// The fingerprint found.
        actual: String,
    },
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The crypto every configuration here uses (ring), named rather than taken from a process
/// default, so no other crate's choice changes it.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The chain's certificate authority: its certificate and private key (PEM).
pub struct Authority {
    /// The CA certificate (PEM): what store nodes trust.
    pub cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("fingerprint", &fingerprint(&self.cert_pem).ok())
            .finish_non_exhaustive()
    }
}

/// A certificate chain and its private key (PEM): a server's, or a client's for mutual TLS.
pub struct Identity {
    /// The leaf first, then the CA.
    pub chain_pem: String,
    /// The private key.
    pub key_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

fn days_from_now(days: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::days(days)
}

impl Authority {
    /// Makes a new CA named after the chain.
    pub fn create(chain: &str) -> Result<Self, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{chain} Kassa chain CA"));
        params.not_before = days_from_now(-1);
        params.not_after = days_from_now(CA_DAYS);
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Reads a CA from its certificate and key files.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let cert_pem = std::fs::read_to_string(cert).map_err(|e| file_error(cert, e))?;
        let key_pem = std::fs::read_to_string(key).map_err(|e| file_error(key, e))?;
        fingerprint(&cert_pem)?;
        KeyPair::from_pem(&key_pem).map_err(|e| TlsError::Pem {
            what: key.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self { cert_pem, key_pem })
    }

    /// Writes the certificate and the key (the key readable by its owner only).
    pub fn save(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        write_private(key, self.key_pem.as_bytes()).map_err(|e| file_error(key, e))?;
        std::fs::write(cert, &self.cert_pem).map_err(|e| file_error(cert, e))
    }

    /// The CA's SHA-256 fingerprint, the pin an enrolment code carries.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert_pem).unwrap_or_default()
    }

    fn issue(&self, params: CertificateParams) -> Result<Identity, TlsError> {
        let ca_key = KeyPair::from_pem(&self.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key)?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Identity {
            chain_pem: format!("{}{}", cert.pem(), self.cert_pem),
            key_pem: key.serialize_pem(),
        })
    }

    /// A server certificate for HQ under `names` (host names or IP addresses), valid for
    /// [`SERVER_DAYS`].
    pub fn issue_server(&self, names: &[String]) -> Result<Identity, TlsError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        for name in names {
            params.subject_alt_names.push(match name.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(name.as_str().try_into()?),
            });
        }
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, first.as_str());
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = days_from_now(-1);
        params.not_after = days_from_now(SERVER_DAYS);
        self.issue(params)
    }

    /// A client certificate for store `store`'s links to HQ (mutual TLS): common name
    /// `kassa-store:<store>`, client authentication only, valid for [`CLIENT_DAYS`].
    pub fn issue_store_client(&self, store: &str) -> Result<Identity, TlsError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{STORE_CLIENT_PREFIX}{store}"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = days_from_now(-1);
        params.not_after = days_from_now(CLIENT_DAYS);
        self.issue(params)
    }
}

/// The store a client certificate (DER) names, by its common name `kassa-store:<store>`. Only
/// meaningful for a certificate the TLS handshake verified under the chain's CA.
pub fn client_store(cert_der: &[u8]) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let name = parsed.subject().iter_common_name().next()?.as_str().ok()?;
    name.strip_prefix(STORE_CLIENT_PREFIX)
        .filter(|store| !store.is_empty())
        .map(str::to_owned)
}

impl Identity {
    /// Reads a chain and its key from files.
    pub fn load(chain: &Path, key: &Path) -> Result<Self, TlsError> {
        let chain_pem = std::fs::read_to_string(chain).map_err(|e| file_error(chain, e))?;
        let key_pem = std::fs::read_to_string(key).map_err(|e| file_error(key, e))?;
        Ok(Self { chain_pem, key_pem })
    }

    /// Writes the chain and the key (the key readable by its owner only).
    pub fn save(&self, chain: &Path, key: &Path) -> Result<(), TlsError> {
        write_private(key, self.key_pem.as_bytes()).map_err(|e| file_error(key, e))?;
        std::fs::write(chain, &self.chain_pem).map_err(|e| file_error(chain, e))
    }

    fn parts(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        let chain = certificates(&self.chain_pem, "the certificate chain")?;
        let key =
            PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| TlsError::Pem {
                what: "the private key".into(),
                reason: e.to_string(),
            })?;
        Ok((chain, key))
    }

    /// A server configuration presenting this chain (HTTP/1.1). With `client_ca` (the chain's
    /// CA, PEM) it also asks each client for a certificate under that CA, which a client may
    /// decline (a browser, a node without one); one it presents must verify, or the handshake
    /// fails. Who presented which is then the connection's ([`client_store`]).
    pub fn server_config(
        &self,
        client_ca: Option<&str>,
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let (chain, key) = self.parts()?;
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca_pem) => {
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots(ca_pem)?),
                    provider(),
                )
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The days until the leaf certificate expires (negative once it has).
    pub fn days_left(&self) -> Result<i64, TlsError> {
        let chain = certificates(&self.chain_pem, "the certificate chain")?;
        let leaf = chain.first().ok_or_else(|| TlsError::Pem {
            what: "the certificate chain".into(),
            reason: "it holds no certificate".into(),
        })?;
        let (_, parsed) = x509_parser::parse_x509_certificate(leaf).map_err(|e| TlsError::Pem {
            what: "the certificate chain".into(),
            reason: e.to_string(),
        })?;
        let not_after = parsed.validity().not_after.timestamp();
        Ok((not_after - time::OffsetDateTime::now_utc().unix_timestamp()).div_euclid(86_400))
    }
}

/// The certificates of a PEM text.
fn certificates(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_error = |e: rustls::pki_types::pem::Error| TlsError::Pem {
        what: what.to_owned(),
        reason: e.to_string(),
    };
    let all = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if all.is_empty() {
        return Err(TlsError::Pem {
            what: what.to_owned(),
            reason: "it holds no certificate".into(),
        });
    }
    Ok(all)
}

fn fingerprint_der(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The SHA-256 fingerprint of the first certificate of a PEM text, in lowercase hex.
pub fn fingerprint(cert_pem: &str) -> Result<String, TlsError> {
    let all = certificates(cert_pem, "the CA certificate")?;
    Ok(fingerprint_der(&all[0]))
}

fn roots(ca_pem: &str) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certificates(ca_pem, "the CA certificate")? {
        roots.add(c)?;
    }
    Ok(roots)
}

/// A client configuration that trusts the CA `ca_pem` and nothing else (HTTP/1.1).
pub fn client_config(ca_pem: &str) -> Result<rustls::ClientConfig, TlsError> {
    client_config_as(ca_pem, None)
}

/// [`client_config`] that presents `identity` when the server asks for a client certificate
/// (a store node's, for mutual TLS).
pub fn client_config_as(
    ca_pem: &str,
    identity: Option<&Identity>,
) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca_pem)?);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let (chain, key) = identity.parts()?;
            builder.with_client_auth_cert(chain, key)?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A client configuration for a server whose CA is known only by its fingerprint `pin` (an
/// enrolment code's): the chain the server presents must end in a CA with that fingerprint,
/// and verify under it like any other chain.
pub fn pinned_client_config(pin: &str) -> Result<rustls::ClientConfig, TlsError> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCa {
            pin: pin.to_ascii_lowercase(),
            provider: provider(),
        }))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Checks that `ca_pem` is the CA with fingerprint `pin`.
pub fn check_pin(ca_pem: &str, pin: &str) -> Result<(), TlsError> {
    let actual = fingerprint(ca_pem)?;
    if actual.eq_ignore_ascii_case(pin) {
        Ok(())
    } else {
        Err(TlsError::PinMismatch {
            pinned: pin.to_owned(),
            actual,
        })
    }
}

#[derive(Debug)]
struct PinnedCa {
    pin: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|c| fingerprint_der(c) == self.pin)
            .ok_or_else(|| {
                rustls::Error::General(format!(
                    "HQ's certificate chain holds no CA with the pinned fingerprint {}",
                    self.pin
                ))
            })?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Writes a private key readable by its owner only (mode 0600 on Unix), created with that mode
/// so it is never readable by others, not even for a moment.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    restrict_to_owner(path)
}

/// Makes an existing key file readable by its owner only.
pub fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_certificate_chains_to_its_ca_and_the_pin_is_the_cas() {
        let ca = Authority::create("Test").unwrap();
        let server = ca
            .issue_server(&["hq.example".into(), "127.0.0.1".into()])
            .unwrap();
        assert!(server.server_config(None).is_ok());
        assert!(server.server_config(Some(&ca.cert_pem)).is_ok());
        assert!(client_config(&ca.cert_pem).is_ok());
        let days = server.days_left().unwrap();
        assert!((SERVER_DAYS - 2..=SERVER_DAYS).contains(&days), "{days}");
        check_pin(&ca.cert_pem, &ca.fingerprint()).unwrap();
        let other = Authority::create("Other").unwrap();
        let err = check_pin(&other.cert_pem, &ca.fingerprint()).unwrap_err();
        assert!(matches!(err, TlsError::PinMismatch { .. }), "{err}");
        // The server's chain carries its CA, which is what a pinned client looks for.
        assert!(server.chain_pem.ends_with(&ca.cert_pem));
    }

    #[test]
    fn a_store_client_certificate_names_its_store_and_a_server_certificate_none() {
        let ca = Authority::create("Test").unwrap();
        let client = ca.issue_store_client("vienna-01").unwrap();
        let der = certificates(&client.chain_pem, "chain").unwrap();
        assert_eq!(client_store(&der[0]).as_deref(), Some("vienna-01"));
        assert!(client.chain_pem.ends_with(&ca.cert_pem));
        assert!(client_config_as(&ca.cert_pem, Some(&client)).is_ok());
        let server = ca.issue_server(&["hq.example".into()]).unwrap();
        let der = certificates(&server.chain_pem, "chain").unwrap();
        assert_eq!(client_store(&der[0]), None);
        assert_eq!(client_store(b"not a certificate"), None);
    }

    #[test]
    fn a_ca_saved_and_loaded_issues_certificates_under_the_same_name() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::create("Test").unwrap();
        let (cert, key) = (dir.path().join("ca.pem"), dir.path().join("ca.key"));
        ca.save(&cert, &key).unwrap();
        let again = Authority::load(&cert, &key).unwrap();
        assert_eq!(again.fingerprint(), ca.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(again.issue_server(&["hq.example".into()]).is_ok());
        let err = Authority::load(&cert, &dir.path().join("missing.key")).unwrap_err();
        assert!(err.to_string().contains("missing.key"), "{err}");
        let err = fingerprint("not pem").unwrap_err();
        assert!(err.to_string().contains("no certificate"), "{err}");
    }
}
