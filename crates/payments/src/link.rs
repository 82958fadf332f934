//! The terminal link: one nexo request over HTTPS to the terminal, protected with the shared
//! key, and its answer checked (HMAC, ServiceID) before anyone reads it.

use std::net::SocketAddr;
use std::time::Duration;

use crate::crypto::{CryptoError, SecurityKey};
use crate::nexo::{
    MessageHeader, RequestEnvelope, ResponseEnvelope, SaleToPoiRequest, SaleToPoiResponse,
};
use crate::tls::terminal_host;

/// Where the terminal is and how to talk to it.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// The terminal's LAN address (port 8443 on a real terminal).
    pub addr: SocketAddr,
    /// The terminal's `POIID`; its certificate must carry the matching name.
    pub poi_id: String,
    /// This till's `SaleID`.
    pub sale_id: String,
    /// The shared key.
    pub key: SecurityKey,
    /// PEM of the CA the terminal's certificate chains to.
    pub ca_pem: Vec<u8>,
    /// How long to wait for an answer; a payment waits on a customer, so this is generous.
    pub timeout: Duration,
}

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No connection could be made: the request never left.
    #[error("terminal unreachable: {0}")]
    Unreachable(String),
    /// Sent, but no answer in time: the outcome is unknown.
    #[error("no answer from the terminal within the timeout")]
    Timeout,
    /// Sent, but the connection was lost before an answer: the outcome is unknown.
    #[error("connection to the terminal lost: {0}")]
    Lost(String),
    /// The terminal answered with an HTTP error.
    #[error("terminal answered HTTP {0}")]
    Status(u16),
    /// The terminal refused the request's message protection (HTTP 401): it could not read the
    /// request, so it did nothing with it. Almost always a key id, version or passphrase that
    /// differs from the terminal's.
    #[error(
        "the terminal refused the message protection: check key id, version and passphrase (HTTP 401)"
    )]
    ProtectionRefused,
    /// The answer failed message protection (bad HMAC, other key).
    #[error("answer failed message protection: {0}")]
    Protection(#[from] CryptoError),
    /// The answer is for another request.
    #[error("answer does not match the request: {0}")]
    Mismatch(&'static str),
    /// The answer is not a Sale-to-POI response.
    #[error("answer is not a SaleToPOIResponse: {0}")]
    Malformed(String),
    /// TLS could not be set up.
    #[error("TLS set-up: {0}")]
    Tls(String),
}

impl LinkError {
    /// Whether the request may have reached the terminal, so its outcome must be asked for
    /// before the money is asked for again.
    pub fn outcome_unknown(&self) -> bool {
        !matches!(
            self,
            LinkError::Unreachable(_) | LinkError::Tls(_) | LinkError::ProtectionRefused
        )
    }
}

/// A client for one terminal.
#[derive(Clone)]
pub struct TerminalLink {
    tls: tokio_rustls::TlsConnector,
    addr: SocketAddr,
    host: String,
    timeout: Duration,
    key: SecurityKey,
    sale_id: String,
    poi_id: String,
}

impl std::fmt::Debug for TerminalLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalLink")
            .field("addr", &self.addr)
            .field("host", &self.host)
            .field("sale_id", &self.sale_id)
            .finish_non_exhaustive()
    }
}

/// A fresh `ServiceID`: ten random alphanumeric characters (nexo allows ten).
pub fn new_service_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = [0u8; 10];
    // Without randomness a clock-based id is still unique enough per till.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = jiff::Timestamp::now().as_nanosecond();
        bytes = nanos.to_le_bytes()[..10].try_into().unwrap_or([7u8; 10]);
    }
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// How long connecting (TCP and TLS) may take before the terminal counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

impl TerminalLink {
    /// Sets up TLS: the link trusts only the given CA and checks that the terminal's
    /// certificate carries the name for its POIID, whatever LAN address it answers on.
    pub fn new(cfg: LinkConfig) -> Result<Self, LinkError> {
        let tls =
            crate::tls::client_config(&cfg.ca_pem).map_err(|e| LinkError::Tls(e.to_string()))?;
        Ok(Self {
            tls: tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls)),
            addr: cfg.addr,
            host: terminal_host(&cfg.poi_id),
            timeout: cfg.timeout,
            key: cfg.key,
            sale_id: cfg.sale_id,
            poi_id: cfg.poi_id,
        })
    }

    /// This till's `SaleID`.
    pub fn sale_id(&self) -> &str {
        &self.sale_id
    }

    /// A request header for `category` under a given ServiceID.
    pub fn header(&self, category: &str, service_id: &str) -> MessageHeader {
        MessageHeader::request(category, service_id, &self.sale_id, &self.poi_id)
    }

    /// Sends one request and returns the terminal's answer; `None` when the terminal answers
    /// with an empty body (as it does to an abort).
    pub async fn send(
        &self,
        request: SaleToPoiRequest,
    ) -> Result<Option<SaleToPoiResponse>, LinkError> {
        let service_id = request.message_header.service_id.clone();
        let header = serde_json::to_value(&request.message_header)
            .map_err(|e| LinkError::Malformed(e.to_string()))?;
        let plaintext = serde_json::to_vec(&RequestEnvelope { request })
            .map_err(|e| LinkError::Malformed(e.to_string()))?;
        let sealed = self
            .key
            .seal_bytes("SaleToPOIRequest", header, &plaintext)?;
        let (status, body) = self.post(sealed).await?;
        if status == 401 {
            return Err(LinkError::ProtectionRefused);
        }
        if !(200..300).contains(&status) {
            return Err(LinkError::Status(status));
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let (_, plaintext) = self.key.open_bytes(&body)?;
        let env: ResponseEnvelope =
            serde_json::from_slice(&plaintext).map_err(|e| LinkError::Malformed(e.to_string()))?;
        let h = &env.response.message_header;
        if h.service_id != service_id {
            return Err(LinkError::Mismatch("ServiceID differs"));
        }
        if h.sale_id != self.sale_id {
            return Err(LinkError::Mismatch("SaleID differs"));
        }
        Ok(Some(env.response))
    }

    /// Posts an already sealed message as it is and returns the HTTP status and body, for tools
    /// and tests that must send exact bytes (a replayed message, a malformed one).
    pub async fn post_sealed(&self, sealed: Vec<u8>) -> Result<(u16, Vec<u8>), LinkError> {
        self.post(sealed).await
    }

    /// One HTTPS POST on a fresh connection. Failing to connect or to complete the TLS handshake
    /// means nothing was sent; anything after that leaves the outcome unknown.
    async fn post(&self, body: Vec<u8>) -> Result<(u16, Vec<u8>), LinkError> {
        use http_body_util::{BodyExt as _, Full};
        use hyper::body::Bytes;

        let connect = async {
            let tcp = tokio::net::TcpStream::connect(self.addr)
                .await
                .map_err(|e| LinkError::Unreachable(e.to_string()))?;
            let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                .map_err(|e| LinkError::Tls(e.to_string()))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| LinkError::Unreachable(format!("TLS: {e}")))?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                    .await
                    .map_err(|e| LinkError::Unreachable(e.to_string()))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok::<_, LinkError>(sender)
        };
        let mut sender = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| LinkError::Unreachable("connect timed out".into()))??;
        let request = hyper::Request::post("/nexo")
            .header(
                hyper::header::HOST,
                format!("{}:{}", self.host, self.addr.port()),
            )
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| LinkError::Malformed(e.to_string()))?;
        let exchange = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| LinkError::Lost(e.to_string()))?;
            let status = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| LinkError::Lost(e.to_string()))?
                .to_bytes();
            Ok::<_, LinkError>((status, bytes.to_vec()))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| LinkError::Timeout)?
    }
}
