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
        !matches!(self, LinkError::Unreachable(_) | LinkError::Tls(_))
    }
}

/// A client for one terminal.
#[derive(Debug, Clone)]
pub struct TerminalLink {
    http: reqwest::Client,
    url: String,
    key: SecurityKey,
    sale_id: String,
    poi_id: String,
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

impl TerminalLink {
    /// Builds the HTTPS client: it trusts only the given CA and connects to the name on the
    /// terminal's certificate, resolved to its LAN address.
    pub fn new(cfg: LinkConfig) -> Result<Self, LinkError> {
        let tls =
            crate::tls::client_config(&cfg.ca_pem).map_err(|e| LinkError::Tls(e.to_string()))?;
        let host = terminal_host(&cfg.poi_id);
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .resolve(&host, cfg.addr)
            .timeout(cfg.timeout)
            .connect_timeout(Duration::from_secs(3))
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| LinkError::Tls(e.to_string()))?;
        Ok(Self {
            http,
            url: format!("https://{host}:{}/nexo", cfg.addr.port()),
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
        let res = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(sealed)
            .send()
            .await
            .map_err(classify)?;
        let status = res.status();
        let body = res.bytes().await.map_err(classify)?;
        if !status.is_success() {
            return Err(LinkError::Status(status.as_u16()));
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
}

fn classify(e: reqwest::Error) -> LinkError {
    if e.is_timeout() {
        LinkError::Timeout
    } else if e.is_connect() {
        LinkError::Unreachable(short(&e))
    } else {
        LinkError::Lost(short(&e))
    }
}

fn short(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
