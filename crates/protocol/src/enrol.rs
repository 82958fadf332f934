//! Enrolment: the one-time code HQ issues for a store (`kassa hq store enrol`) and the exchange
//! a store node makes with it (`kassa store enrol CODE`), so that nothing — HQ's address, its
//! CA, the store's credential, a terminal's public key — is copied by hand.
//!
//! The code is `kassa-enrol-1.` followed by the URL-safe base64 (no padding) of a JSON object:
//! HQ's URL, the store, the SHA-256 fingerprint of the chain's CA (absent when HQ serves plain
//! HTTP) and a 128-bit secret. HQ keeps only the secret's SHA-256; the code works once, until it
//! expires.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

const PREFIX: &str = "kassa-enrol-1.";

/// What an enrolment code carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentCode {
    /// HQ's base URL, as the store will reach it.
    pub url: String,
    /// The store the code enrols.
    pub store: String,
    /// The SHA-256 fingerprint of the chain's CA (lowercase hex); `None` for plain HTTP.
    pub ca_pin: Option<String>,
    /// The one-time secret (hex).
    pub secret: String,
    /// When the code stops working (milliseconds since the epoch).
    pub expires_ms: i64,
}

/// Why a text is not an enrolment code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodeError {
    /// Not one of ours, or cut short when copied.
    #[error(
        "this is not a Kassa enrolment code (it starts `{PREFIX}`): copy the whole code `kassa hq store enrol` printed"
    )]
    Malformed,
    /// A field is missing or wrong.
    #[error("the enrolment code's {0}")]
    Field(String),
}

impl EnrolmentCode {
    /// The code as text.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// Reads a code (surrounding white space ignored).
    pub fn decode(text: &str) -> Result<Self, CodeError> {
        let body = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(CodeError::Malformed)?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CodeError::Malformed)?;
        let code: EnrolmentCode =
            serde_json::from_slice(&json).map_err(|_| CodeError::Malformed)?;
        if !(code.url.starts_with("https://") || code.url.starts_with("http://")) {
            return Err(CodeError::Field(format!(
                "url `{}` is not an http(s) URL",
                code.url
            )));
        }
        if code.url.starts_with("https://") && code.ca_pin.is_none() {
            return Err(CodeError::Field(
                "ca_pin is missing for an https URL".into(),
            ));
        }
        if let Some(pin) = &code.ca_pin
            && (pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(CodeError::Field(
                "ca_pin is not a SHA-256 fingerprint".into(),
            ));
        }
        if code.secret.len() != 32 || !code.secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CodeError::Field("secret is not 32 hex digits".into()));
        }
        Ok(code)
    }
}

/// The SHA-256 of a secret, in hex: all HQ keeps of it.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.trim().as_bytes()))
}

/// A terminal a node hosts, with the public key its ledger is signed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolTerminal {
    /// The terminal's id.
    pub id: String,
    /// Its Ed25519 public key (hex).
    pub public_key: String,
}

/// `POST /v1/enrol`: the secret and the node's terminals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// The code's secret.
    pub secret: String,
    /// The terminals to register.
    pub terminals: Vec<EnrolTerminal>,
}

/// HQ's answer to an enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolAnswer {
    /// The store enrolled.
    pub store: String,
    /// The store's sync credential (issued now; an earlier one stops working).
    pub credential: String,
    /// The chain's CA (PEM), which the node trusts for HQ from now on; `None` over plain HTTP.
    pub ca_pem: Option<String>,
    /// The chain's PIN pepper (64 hex digits), so that PINs HQ publishes verify at the tills.
    pub pin_pepper: Option<String>,
    /// The node's client certificate for mutual TLS, when HQ holds the chain's CA key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<ClientCertificate>,
}

/// A store node's client certificate for its links to HQ (mutual TLS), issued under the
/// chain's CA, with its private key (PEM both). It crosses the network once, inside the TLS
/// session that also carries the store's credential.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCertificate {
    /// The certificate, then the CA's.
    pub chain_pem: String,
    /// The private key.
    pub key_pem: String,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate").finish_non_exhaustive()
    }
}

/// `POST /v1/sync/credential`: a store replaces its own credential.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// How long the credential in use keeps working, in hours (24 unless given, at most 168).
    pub overlap_hours: Option<u32>,
}

/// HQ's answer to a rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateAnswer {
    /// The store's new credential.
    pub credential: String,
    /// Until when the credential that asked keeps working (milliseconds since the epoch).
    pub previous_valid_until_ms: i64,
    /// A new client certificate for mutual TLS, when HQ holds the chain's CA key: the renewal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<ClientCertificate>,
}

/// The overlap a rotation gives unless asked for another.
pub const DEFAULT_OVERLAP_HOURS: u32 = 24;
/// The longest overlap.
pub const MAX_OVERLAP_HOURS: u32 = 168;

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> EnrolmentCode {
        EnrolmentCode {
            url: "https://hq.example:8443".into(),
            store: "wien-01".into(),
            ca_pin: Some("ab".repeat(32)),
            secret: "0123456789abcdef".repeat(2),
            expires_ms: 1_800_000_000_000,
        }
    }

    #[test]
    fn a_code_reads_back_and_a_damaged_one_is_refused_with_what_to_do() {
        let text = code().encode();
        assert!(text.starts_with("kassa-enrol-1."), "{text}");
        assert_eq!(
            EnrolmentCode::decode(&format!(" {text}\n")).unwrap(),
            code()
        );
        for bad in [
            &text[..text.len() - 5],
            "hello",
            &text.replace("kassa", "kasse"),
        ] {
            assert_eq!(
                EnrolmentCode::decode(bad),
                Err(CodeError::Malformed),
                "{bad}"
            );
        }
        let mut no_pin = code();
        no_pin.ca_pin = None;
        let err = EnrolmentCode::decode(&no_pin.encode()).unwrap_err();
        assert!(err.to_string().contains("ca_pin"), "{err}");
        let mut short = code();
        short.secret = "abc".into();
        let err = EnrolmentCode::decode(&short.encode()).unwrap_err();
        assert!(err.to_string().contains("secret"), "{err}");
        assert_eq!(secret_hash("abc"), secret_hash(" abc\n"));
    }
}
