//! Enrolment of this node with HQ (`kassa store enrol CODE`): the node is provisioned for the
//! code's store (each terminal's signing key made), proves it holds the code over a TLS link
//! that trusts only the CA the code pins, registers its terminals' public keys, and keeps what
//! HQ answers — the store's credential, the chain's CA and its PIN pepper — in its data
//! directory, where `kassa store run` finds them. A code HQ refuses leaves a directory that did
//! not exist before as it was: absent.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use domain::{StoreId, TerminalId};
use protocol::enrol::{EnrolAnswer, EnrolRequest, EnrolTerminal, EnrolmentCode};
use serde::{Deserialize, Serialize};

use crate::keys;
use crate::sync::SyncSettings;

/// How long the node waits for HQ's answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why enrolment failed; nothing was kept.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    /// The code is not one.
    #[error(transparent)]
    Code(#[from] protocol::enrol::CodeError),
    /// The code is for plain HTTP and the operator did not allow it.
    #[error(
        "the code names HQ at {0}, over plain HTTP: enrol over HTTPS (ask for a code with HQ's https:// URL), or pass --insecure-http for a lab"
    )]
    PlainHttp(String),
    /// The code has expired (by this node's clock; HQ checks again).
    #[error("the enrolment code expired at {0}: ask HQ for a new one (`kassa hq store enrol`)")]
    Expired(String),
    /// HQ could not be reached, or its certificate is not under the pinned CA.
    #[error("cannot reach HQ at {url}: {reason}")]
    Unreachable {
        /// HQ's URL.
        url: String,
        /// Why (a certificate under another CA says so here).
        reason: String,
    },
    /// HQ refused the enrolment.
    #[error("HQ refused the enrolment ({code}): {message}")]
    Refused {
        /// HQ's error code.
        code: String,
        /// HQ's message.
        message: String,
    },
    /// HQ answered with a CA other than the pinned one.
    #[error("HQ's answer: {0}")]
    Answer(String),
    /// The node's directory belongs to another store, or its keys cannot be made.
    #[error(transparent)]
    Node(#[from] crate::StoreError),
    /// A key or a file could not be written.
    #[error("{0}")]
    Files(String),
}

/// The link to HQ enrolment leaves in the data directory (`hq.json`; the credential and the CA
/// beside the terminal keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkFile {
    url: String,
    store: String,
    enrolled_ms: i64,
}

fn link_path(data_dir: &Path) -> PathBuf {
    data_dir.join("hq.json")
}

fn credential_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("hq.credential")
}

fn client_cert_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let keys = data_dir.join("keys");
    (keys.join("hq-client.pem"), keys.join("hq-client.key"))
}

/// Keeps the node's client certificate for mutual TLS (the key readable by its owner only;
/// each written beside and renamed, the key first).
fn keep_client_certificate(
    data_dir: &Path,
    issued: &protocol::enrol::ClientCertificate,
) -> std::io::Result<()> {
    let (chain, key) = client_cert_paths(data_dir);
    for (path, text) in [(&key, &issued.key_pem), (&chain, &issued.chain_pem)] {
        let fresh = path.with_extension("new");
        tls::write_private(&fresh, text.as_bytes())?;
        std::fs::rename(&fresh, path)?;
    }
    Ok(())
}

/// Where the chain's CA is kept.
pub fn ca_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("hq-ca.pem")
}

/// What enrolment did.
#[derive(Debug)]
pub struct Enrolled {
    /// The store.
    pub store: StoreId,
    /// HQ's URL.
    pub url: String,
    /// The terminals registered, with their public keys.
    pub terminals: Vec<(TerminalId, [u8; 32])>,
}

/// Enrols the node in `data_dir` with `code` for `terminals`. `allow_http` admits a code for a
/// plain-HTTP HQ. `now_ms` is the node's clock, for the code's expiry.
pub async fn enrol(
    data_dir: &Path,
    code: &str,
    terminals: &[TerminalId],
    allow_http: bool,
    now_ms: i64,
) -> Result<Enrolled, EnrolError> {
    let code = EnrolmentCode::decode(code)?;
    if !code.url.starts_with("https://") && !allow_http {
        return Err(EnrolError::PlainHttp(code.url));
    }
    if code.expires_ms <= now_ms {
        return Err(EnrolError::Expired(
            jiff::Timestamp::from_millisecond(code.expires_ms)
                .map_or_else(|_| code.expires_ms.to_string(), |t| t.to_string()),
        ));
    }
    let store = StoreId::parse(&code.store)
        .map_err(|e| EnrolError::Answer(format!("the code's store: {e}")))?;
    if terminals.is_empty() {
        return Err(EnrolError::Files(
            "--terminal: name at least one terminal this node hosts".into(),
        ));
    }
    let existed = data_dir.exists();
    match redeem(data_dir, &code, &store, terminals).await {
        Ok(enrolled) => Ok(enrolled),
        Err(e) => {
            if !existed {
                let _ = std::fs::remove_dir_all(data_dir);
            }
            Err(e)
        }
    }
}

async fn redeem(
    data_dir: &Path,
    code: &EnrolmentCode,
    store: &StoreId,
    terminals: &[TerminalId],
) -> Result<Enrolled, EnrolError> {
    let keys = crate::provision(data_dir, store, terminals).await?;
    let mut builder = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(10));
    if let Some(pin) = &code.ca_pin {
        builder = builder.tls_backend_preconfigured(
            tls::pinned_client_config(pin).map_err(|e| EnrolError::Files(e.to_string()))?,
        );
    }
    let http = builder
        .build()
        .map_err(|e| EnrolError::Files(format!("HTTP client: {e}")))?;
    let request = EnrolRequest {
        secret: code.secret.clone(),
        terminals: keys
            .iter()
            .map(|(id, public)| EnrolTerminal {
                id: id.to_string(),
                public_key: hex::encode(public),
            })
            .collect(),
    };
    let unreachable = |e: reqwest::Error| EnrolError::Unreachable {
        url: code.url.clone(),
        reason: crate::sync::error_chain(&e),
    };
    let response = http
        .post(format!("{}/v1/enrol", code.url))
        .json(&request)
        .send()
        .await
        .map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    let answer: EnrolAnswer = response.json().await.map_err(unreachable)?;
    if answer.store != store.as_str() {
        return Err(EnrolError::Answer(format!(
            "HQ enrolled store `{}`, not the code's `{store}`",
            answer.store
        )));
    }
    match (&code.ca_pin, &answer.ca_pem) {
        (Some(pin), Some(ca)) => {
            tls::check_pin(ca, pin).map_err(|e| EnrolError::Answer(e.to_string()))?;
        }
        (Some(_), None) => {
            return Err(EnrolError::Answer(
                "it carries no CA, though the code pins one".into(),
            ));
        }
        (None, _) => {}
    }
    keep(data_dir, code, &answer)?;
    Ok(Enrolled {
        store: store.clone(),
        url: code.url.clone(),
        terminals: keys,
    })
}

/// HQ's refusal, from its JSON error.
async fn refusal(response: reqwest::Response) -> EnrolError {
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    EnrolError::Refused {
        code: body["code"]
            .as_str()
            .map_or_else(|| status.as_u16().to_string(), str::to_owned),
        message: body["message"]
            .as_str()
            .unwrap_or("no reason given")
            .to_owned(),
    }
}

/// Writes the credential file whole or not at all (beside, then renamed), readable by its
/// owner only.
fn write_credential(data_dir: &Path, credential: &str) -> std::io::Result<()> {
    let path = credential_path(data_dir);
    let fresh = path.with_extension("new");
    tls::write_private(&fresh, credential.as_bytes())?;
    std::fs::rename(&fresh, &path)
}

/// Replaces an enrolled node's credential with a new one from HQ (`kassa store
/// rotate-credential`). HQ keeps the one in use working for `overlap_hours`; a running node
/// takes the new one from its data directory the first time HQ refuses the old, so it never
/// stops syncing. Answers until when the old one works.
pub async fn rotate(data_dir: &Path, overlap_hours: u32) -> Result<i64, EnrolError> {
    let settings = link(data_dir, Duration::from_secs(5))?.ok_or_else(|| {
        EnrolError::Files(
            "this node is not enrolled (`kassa store enrol`): a credential given with --hq-token is replaced at HQ (`kassa hq store rotate-credential`)".into(),
        )
    })?;
    let http = settings
        .client(TIMEOUT, Duration::from_secs(10))
        .map_err(EnrolError::Files)?;
    let response = http
        .post(format!("{}/v1/sync/credential", settings.hq_url))
        .bearer_auth(settings.token.get())
        .json(&protocol::enrol::RotateRequest {
            overlap_hours: Some(overlap_hours),
        })
        .send()
        .await
        .map_err(|e| EnrolError::Unreachable {
            url: settings.hq_url.clone(),
            reason: crate::sync::error_chain(&e),
        })?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    let answer: protocol::enrol::RotateAnswer = response
        .json()
        .await
        .map_err(|e| EnrolError::Answer(e.to_string()))?;
    write_credential(data_dir, &answer.credential).map_err(|e| {
        EnrolError::Files(format!(
            "HQ issued a new credential, but it could not be kept ({e}); the old one works until {}: rotate again before then",
            answer.previous_valid_until_ms
        ))
    })?;
    // The client certificate is renewed with the credential; the one in use stays valid, and a
    // running node presents the new one from its next start.
    if let Some(issued) = &answer.client_certificate {
        keep_client_certificate(data_dir, issued).map_err(|e| {
            EnrolError::Files(format!(
                "HQ issued a new client certificate, but it could not be kept ({e}); the one in use stays valid: rotate again"
            ))
        })?;
    }
    Ok(answer.previous_valid_until_ms)
}

fn keep(data_dir: &Path, code: &EnrolmentCode, answer: &EnrolAnswer) -> Result<(), EnrolError> {
    let files = |e: std::io::Error| EnrolError::Files(format!("cannot write the HQ link: {e}"));
    if let Some(pepper) = &answer.pin_pepper {
        keys::pepper(data_dir, Some(pepper)).map_err(|e| EnrolError::Files(e.to_string()))?;
    }
    if let Some(ca) = &answer.ca_pem {
        std::fs::write(ca_path(data_dir), ca).map_err(files)?;
    }
    write_credential(data_dir, &answer.credential).map_err(files)?;
    if let Some(issued) = &answer.client_certificate {
        keep_client_certificate(data_dir, issued).map_err(files)?;
    }
    let link = LinkFile {
        url: code.url.clone(),
        store: answer.store.clone(),
        enrolled_ms: jiff::Timestamp::now().as_millisecond(),
    };
    let text = serde_json::to_string_pretty(&link).unwrap_or_default();
    std::fs::write(link_path(data_dir), text).map_err(files)
}

/// The HQ link enrolment left in `data_dir`, as sync settings (`None` when the node was never
/// enrolled).
pub fn link(data_dir: &Path, pull_every: Duration) -> Result<Option<SyncSettings>, EnrolError> {
    let path = link_path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EnrolError::Files(format!("{}: {e}", path.display()))),
    };
    let file = |path: &Path, e: &dyn std::fmt::Display| {
        EnrolError::Files(format!(
            "{}: {e} (enrol the node again: `kassa store enrol`)",
            path.display()
        ))
    };
    let link: LinkFile = serde_json::from_str(&text).map_err(|e| file(&path, &e))?;
    let credential_file = credential_path(data_dir);
    let token =
        std::fs::read_to_string(&credential_file).map_err(|e| file(&credential_file, &e))?;
    let ca_file = ca_path(data_dir);
    let hq_ca = if link.url.starts_with("https://") {
        Some(std::fs::read_to_string(&ca_file).map_err(|e| file(&ca_file, &e))?)
    } else {
        None
    };
    let (chain, key) = client_cert_paths(data_dir);
    let hq_client_cert = if chain.exists() {
        Some(Arc::new(
            tls::Identity::load(&chain, &key).map_err(|e| file(&chain, &e))?,
        ))
    } else {
        None
    };
    Ok(Some(SyncSettings {
        hq_url: link.url,
        token: crate::sync::Credential::kept_in(token.trim().to_owned(), credential_file),
        pull_every,
        hq_ca,
        hq_client_cert,
    }))
}
