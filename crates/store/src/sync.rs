//! Sync with HQ, always after the fact: the outbox pushes each terminal's events after what HQ
//! has acknowledged, in compressed batches, as soon as the ledger writer commits; the puller
//! applies HQ's reference data changes atomically and fetches HQ's stock figures. "HQ
//! unreachable" is retried quietly with exponential backoff and jitter; "HQ rejected" is kept
//! apart, shown in the node's status and retried only slowly, and never holds up other terminals.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use domain::TerminalId;
use protocol::chain::{GENESIS, Hash};
use protocol::sync::{
    BATCH_FORMAT, BATCH_MEDIA_TYPE, Batch, BatchHeader, PushAck, StockSnapshot, decode_reference,
    encode_batch,
};
use serde::Serialize;
use sqlx::Row;

use crate::node::Node;

/// How long a reference pull waits at HQ for a change, in seconds (within the HTTP client's
/// timeout).
const REFERENCE_WAIT_S: u64 = 20;

/// Where HQ is and how this store proves who it is.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// HQ's base URL.
    pub hq_url: String,
    /// The store credential HQ issued (enrolment, or `kassa hq store add`).
    pub token: Credential,
    /// How often reference data and stock are pulled.
    pub pull_every: Duration,
    /// The chain's CA (PEM), the only one trusted for an `https://` HQ; `None` for plain HTTP,
    /// which the command line allows only with `--insecure-http`.
    pub hq_ca: Option<String>,
    /// The node's client certificate, presented when HQ asks for one (mutual TLS); enrolment
    /// keeps it in `keys/hq-client.pem`.
    pub hq_client_cert: Option<Arc<tls::Identity>>,
}

/// The store's credential, shared by every link of the node to HQ and replaced in place when
/// the node reads a newer one from its data directory (`kassa store rotate-credential` wrote
/// it). Never printed.
#[derive(Clone)]
pub struct Credential {
    secret: Arc<std::sync::RwLock<String>>,
    file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl From<String> for Credential {
    fn from(secret: String) -> Self {
        Credential {
            secret: Arc::new(std::sync::RwLock::new(secret)),
            file: None,
        }
    }
}

impl From<&str> for Credential {
    fn from(secret: &str) -> Self {
        secret.to_owned().into()
    }
}

impl Credential {
    /// A credential kept in `file` (an enrolled node's), read again when HQ refuses the one held.
    pub fn kept_in(secret: String, file: std::path::PathBuf) -> Self {
        Credential {
            file: Some(file),
            ..secret.into()
        }
    }

    /// The secret.
    pub fn get(&self) -> String {
        self.secret.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// Reads the credential's file again: whether it held another credential than the one in
    /// use (which it then replaces).
    pub fn reload(&self) -> bool {
        let Some(file) = &self.file else {
            return false;
        };
        let Ok(text) = std::fs::read_to_string(file) else {
            return false;
        };
        let fresh = text.trim();
        match self.secret.write() {
            Ok(mut held) if !fresh.is_empty() && *held != fresh => {
                fresh.clone_into(&mut held);
                true
            }
            _ => false,
        }
    }
}

impl SyncSettings {
    /// An HTTP client for HQ with these timeouts: over HTTPS it trusts the chain's CA alone,
    /// never the operating system's roots.
    pub fn client(
        &self,
        timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<reqwest::Client, String> {
        // Every request to HQ names the node's release and the sync protocol it speaks, so
        // that HQ can refuse a protocol it does not accept instead of misreading it.
        let mut said = reqwest::header::HeaderMap::new();
        said.insert(
            protocol::sync::NODE_VERSION_HEADER,
            reqwest::header::HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
        );
        said.insert(
            protocol::sync::NODE_PROTOCOL_HEADER,
            reqwest::header::HeaderValue::from(protocol::sync::SYNC_PROTOCOL),
        );
        let builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .default_headers(said);
        let builder = match (&self.hq_ca, self.hq_url.starts_with("https://")) {
            (Some(ca), true) => builder.tls_backend_preconfigured(
                tls::client_config_as(ca, self.hq_client_cert.as_deref())
                    .map_err(|e| format!("the chain's CA or the node's client certificate: {e}"))?,
            ),
            (None, true) => {
                return Err(format!(
                    "{} is HTTPS, but the node holds no CA to trust it with: enrol the node (`kassa store enrol`) or give --hq-ca",
                    self.hq_url
                ));
            }
            (_, false) => builder,
        };
        builder.build().map_err(|e| format!("HTTP client: {e}"))
    }
}

/// How a terminal's outbox stands.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TerminalSync {
    /// Highest sequence HQ holds.
    pub acked_seq: u64,
    /// `ok`, `unreachable`, `rejected` or `idle` (never pushed).
    pub state: String,
    /// The reason, when unreachable or rejected.
    pub reason: Option<String>,
}

/// The node's view of sync, shown in its status and metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncStatus {
    /// Whether HQ answered the last request.
    pub online: bool,
    /// Per terminal.
    pub terminals: BTreeMap<String, TerminalSync>,
    /// Last successful push (ms since epoch).
    pub last_push_ms: Option<i64>,
    /// Last successful pull.
    pub last_pull_ms: Option<i64>,
    /// Bytes sent to HQ.
    pub bytes_sent: u64,
    /// Bytes received from HQ.
    pub bytes_received: u64,
    /// Pushes HQ acknowledged.
    pub pushes: u64,
    /// Seconds spent in acknowledged pushes, summed (with `pushes`, the mean push latency).
    pub push_seconds: f64,
    /// Seconds the last acknowledged push took.
    pub last_push_seconds: f64,
    /// Why the last reference update was refused, if it was.
    pub reference_error: Option<String>,
    /// HQ's stock figures for this store, as last pulled.
    #[serde(skip)]
    pub hq_stock: Option<StockSnapshot>,
}

const BATCH_LIMIT: i64 = 2000;

/// How the status and the log name a push HQ refused for the store's credential.
const CREDENTIAL_REFUSED: &str = "HQ refused this store's credential: check --hq-token (a credential replaced by `kassa hq store rotate-credential` stops working at once)";

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// An error with its causes, joined: a request error's own message hides why (a certificate
/// under another CA, a refused connection).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The timeouts of sync's requests (a reference pull waits at HQ for up to
/// `REFERENCE_WAIT_S`).
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// How long sync waits for a connection to HQ.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the outbox and the puller, with `http` from [`SyncSettings::client`].
pub fn start(node: Arc<Node>, settings: SyncSettings, http: reqwest::Client) {
    tokio::spawn(push_loop(node.clone(), settings.clone(), http.clone()));
    tokio::spawn(pull_loop(node, settings, http));
}

enum PushOutcome {
    Nothing,
    Pushed,
    Unreachable(String),
    Rejected(String),
}

async fn acked(node: &Node, terminal: &TerminalId) -> Result<i64, sqlx::Error> {
    Ok(
        sqlx::query_scalar("SELECT acked_seq FROM outbox WHERE terminal = $1")
            .bind(terminal.as_str())
            .fetch_optional(&node.pools.reader)
            .await?
            .unwrap_or(0),
    )
}

/// The batch of `terminal`'s events after `acked_seq` (at most `limit`, and up to the first key
/// rotation), as the outbox sends it: the link before the first event and the signature of the
/// last.
pub async fn build_batch(
    pool: &sqlx::SqlitePool,
    store: &str,
    terminal: &str,
    acked_seq: i64,
    limit: i64,
) -> Result<Option<Batch>, sqlx::Error> {
    let mut rows = sqlx::query("SELECT seq, kind, body, signature FROM events WHERE terminal = $1 AND seq > $2 ORDER BY seq LIMIT $3")
        .bind(terminal)
        .bind(acked_seq)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    // A key rotation ends its batch: the batch's one signature, over its last event, is then
    // the old key's, which is what vouches for the new key at HQ.
    if let Some(at) = rows
        .iter()
        .position(|r| r.get::<&str, _>("kind") == domain::ledger::KEY_ROTATED)
    {
        rows.truncate(at + 1);
    }
    let Some(last) = rows.last() else {
        return Ok(None);
    };
    let prev: Hash = if acked_seq == 0 {
        GENESIS
    } else {
        let hash: Vec<u8> =
            sqlx::query_scalar("SELECT hash FROM events WHERE terminal = $1 AND seq = $2")
                .bind(terminal)
                .bind(acked_seq)
                .fetch_one(pool)
                .await?;
        hash.try_into().unwrap_or(GENESIS)
    };
    Ok(Some(Batch {
        header: BatchHeader {
            format: BATCH_FORMAT.into(),
            store: store.to_owned(),
            terminal: terminal.to_owned(),
            from_seq: u64::try_from(acked_seq + 1).unwrap_or(1),
            count: u32::try_from(rows.len()).unwrap_or(u32::MAX),
            prev_hash: hex::encode(prev),
            head_signature: hex::encode(last.get::<Vec<u8>, _>("signature")),
        },
        events: rows.iter().map(|r| r.get::<Vec<u8>, _>("body")).collect(),
    }))
}

/// The compression level of pushed batches: high, because till PCs have CPU to spare and WAN
/// links are thin.
pub const BATCH_LEVEL: i32 = 9;

async fn push_terminal(
    node: &Node,
    settings: &SyncSettings,
    http: &reqwest::Client,
    terminal: &TerminalId,
) -> Result<PushOutcome, sqlx::Error> {
    let acked_seq = acked(node, terminal).await?;
    let Some(batch) = build_batch(
        &node.pools.reader,
        node.store.as_str(),
        terminal.as_str(),
        acked_seq,
        BATCH_LIMIT,
    )
    .await?
    else {
        return Ok(PushOutcome::Nothing);
    };
    let body = encode_batch(&batch, BATCH_LEVEL);
    let sent = body.len() as u64;
    let started = std::time::Instant::now();
    let response = http
        .post(format!("{}/v1/sync/push", settings.hq_url))
        .bearer_auth(settings.token.get())
        .header("content-type", BATCH_MEDIA_TYPE)
        .body(body)
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => return Ok(PushOutcome::Unreachable(error_chain(&e))),
    };
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    node.update_sync(|s| {
        s.bytes_sent += sent;
        s.bytes_received += text.len() as u64;
    });
    if status.is_success() {
        let Ok(ack) = serde_json::from_str::<PushAck>(&text) else {
            return Ok(PushOutcome::Unreachable(format!(
                "HQ answered something unreadable: {text}"
            )));
        };
        // HQ's acknowledgement is the truth: if HQ lost events (restored from a backup), the
        // cursor goes back and they are pushed again.
        sqlx::query("INSERT INTO outbox (terminal, acked_seq) VALUES ($1, $2) ON CONFLICT (terminal) DO UPDATE SET acked_seq = excluded.acked_seq")
            .bind(terminal.as_str())
            .bind(i64::try_from(ack.acked_seq).unwrap_or(i64::MAX))
            .execute(&node.pools.writer)
            .await?;
        let took = started.elapsed().as_secs_f64();
        node.update_sync(|s| {
            s.online = true;
            s.pushes += 1;
            s.push_seconds += took;
            s.last_push_seconds = took;
            s.last_push_ms = Some(now_ms());
            s.terminals.insert(
                terminal.to_string(),
                TerminalSync {
                    acked_seq: ack.acked_seq,
                    state: "ok".into(),
                    reason: None,
                },
            );
        });
        return Ok(PushOutcome::Pushed);
    }
    if status.as_u16() == 401 {
        // A newer credential in the data directory (rotated while the node ran) is taken at
        // once and the push tried again.
        if settings.token.reload() {
            tracing::info!(
                "HQ refused the store's credential; took the newer one from the data directory"
            );
            return Ok(PushOutcome::Unreachable(
                "took the store's newer credential; pushing again".into(),
            ));
        }
        // Retried like an outage (a restart with the right credential fixes it, and nothing is
        // lost meanwhile), but named for what it is and logged by the push loop.
        return Ok(PushOutcome::Unreachable(format!(
            "{CREDENTIAL_REFUSED} ({status}): {text}"
        )));
    }
    if status.is_server_error() || status.as_u16() == 429 {
        return Ok(PushOutcome::Unreachable(format!(
            "HQ answered {status}: {text}"
        )));
    }
    Ok(PushOutcome::Rejected(format!(
        "HQ rejected the batch ({status}): {text}"
    )))
}

async fn push_loop(node: Arc<Node>, settings: SyncSettings, http: reqwest::Client) {
    let mut backoff = Duration::from_millis(250);
    let mut rejected_until: BTreeMap<TerminalId, std::time::Instant> = BTreeMap::new();
    let appended = node.appended();
    // A refused credential is logged when it starts, not on every retry.
    let mut credential_refused = false;
    loop {
        let mut pushed = false;
        let mut unreachable = None;
        for terminal in node.terminals().clone() {
            if rejected_until
                .get(&terminal)
                .is_some_and(|t| *t > std::time::Instant::now())
            {
                continue;
            }
            match push_terminal(&node, &settings, &http, &terminal).await {
                Ok(PushOutcome::Nothing) => {}
                Ok(PushOutcome::Pushed) => {
                    pushed = true;
                    rejected_until.remove(&terminal);
                }
                Ok(PushOutcome::Rejected(reason)) => {
                    tracing::warn!(%terminal, %reason, "HQ rejected a batch");
                    rejected_until.insert(
                        terminal.clone(),
                        std::time::Instant::now() + Duration::from_secs(60),
                    );
                    node.update_sync(|s| {
                        s.online = true;
                        let entry = s.terminals.entry(terminal.to_string()).or_default();
                        entry.state = "rejected".into();
                        entry.reason = Some(reason.clone());
                    });
                }
                Ok(PushOutcome::Unreachable(reason)) => {
                    unreachable = Some(reason);
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "outbox could not read the ledger");
                    unreachable = Some(e.to_string());
                    break;
                }
            }
        }
        if let Some(reason) = unreachable {
            if reason.starts_with(CREDENTIAL_REFUSED) {
                if !credential_refused {
                    tracing::error!(%reason, "HQ refused a push; retrying with backoff");
                }
                credential_refused = true;
            } else {
                tracing::debug!(%reason, "HQ unreachable; retrying");
            }
            // Every terminal, also one that never reached HQ yet, shows HQ as unreachable.
            node.update_sync(|s| {
                s.online = false;
                for terminal in node.terminals() {
                    let t = s.terminals.entry(terminal.to_string()).or_default();
                    if t.state != "rejected" {
                        t.state = "unreachable".into();
                        t.reason = Some(reason.clone());
                    }
                }
            });
            // Exponential backoff with full jitter, capped at 30 s.
            let mut jitter = [0_u8; 2];
            let _ = getrandom::fill(&mut jitter);
            let wait = backoff.mul_f64(0.5 + f64::from(u16::from_le_bytes(jitter)) / 131_070.0);
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
            continue;
        }
        backoff = Duration::from_millis(250);
        credential_refused = false;
        if !pushed {
            // Wait for the next commit, or look again in a few seconds.
            let _ = tokio::time::timeout(Duration::from_secs(5), appended.notified()).await;
        }
    }
}

/// Pulls what changed in HQ's reference data since the node's version, waiting at HQ up to
/// [`REFERENCE_WAIT_S`] for a change when there is none yet; whether a change was applied.
async fn pull_reference(
    node: &Node,
    settings: &SyncSettings,
    http: &reqwest::Client,
) -> Result<bool, String> {
    let followed = crate::refdata::hq_log(&node.pools.reader)
        .await
        .map_err(|e| e.to_string())?;
    let held = node.context().map_or(0, |c| c.version);
    // A version counts only within the log it came from: a node not yet following HQ's log
    // asks for HQ's snapshot, whatever its local seed's version number is.
    let since = if followed.is_some() { held } else { 0 };
    // What the node says of itself on each pull (the fleet page shows it): its version, the
    // events HQ has yet to acknowledge, each till's last sequence, its clock.
    let (unsynced, oldest): (i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), MIN(e.hlc_wall) FROM events e LEFT JOIN outbox o ON o.terminal = e.terminal
         WHERE e.seq > COALESCE(o.acked_seq, 0)",
    )
    .fetch_one(&node.pools.reader)
    .await
    .map_err(|e| e.to_string())?;
    let heads: Vec<(String, i64)> =
        sqlx::query_as("SELECT terminal, MAX(seq) FROM events GROUP BY terminal ORDER BY terminal")
            .fetch_all(&node.pools.reader)
            .await
            .map_err(|e| e.to_string())?;
    let heads: Vec<(String, u64)> = heads
        .into_iter()
        .map(|(terminal, seq)| (terminal, u64::try_from(seq).unwrap_or(0)))
        .collect();
    let mut request = http
        .get(format!(
            "{}/v1/sync/reference?since={since}&wait={REFERENCE_WAIT_S}",
            settings.hq_url
        ))
        .bearer_auth(settings.token.get())
        .header(protocol::sync::NODE_UNSYNCED_HEADER, unsynced.to_string())
        .header(
            protocol::sync::NODE_HEADS_HEADER,
            protocol::sync::encode_heads(&heads),
        )
        .header(protocol::sync::NODE_CLOCK_HEADER, now_ms().to_string());
    if let Some(oldest) = oldest {
        request = request.header(
            protocol::sync::NODE_OLDEST_UNSYNCED_HEADER,
            oldest.to_string(),
        );
    }
    let response = request.send().await.map_err(|e| error_chain(&e))?;
    if !response.status().is_success() {
        return Err(format!("HQ answered {}", response.status()));
    }
    let log = response
        .headers()
        .get(protocol::sync::REFERENCE_LOG_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    node.update_sync(|s| s.bytes_received += bytes.len() as u64);
    let update = decode_reference(&bytes).map_err(|e| e.to_string())?;
    match reference_refusal(followed.as_ref(), log.as_deref(), held, &update, settings) {
        Some(problem) => refuse_reference(node, problem),
        None => {
            let from = crate::refdata::HqLog {
                log: log.unwrap_or_default(),
                url: settings.hq_url.clone(),
                pin_pepper: None,
            };
            if update.to_version > since {
                apply_reference(node, &update, &from, followed.is_none(), held).await?;
                return Ok(true);
            } else if followed.is_none() && held > 0 {
                // Not silence either: the store sells on data HQ does not know about.
                refuse_reference(
                    node,
                    format!(
                        "HQ at {} has published no reference data yet; this store sells on its local seed (version {held}) until HQ publishes",
                        settings.hq_url
                    ),
                );
            } else {
                node.update_sync(|s| s.reference_error = None);
            }
        }
    }
    Ok(false)
}

/// Pulls HQ's view of the store's stock; whether support requests wait for the node.
async fn pull_stock(
    node: &Node,
    settings: &SyncSettings,
    http: &reqwest::Client,
) -> Result<bool, String> {
    let response = http
        .get(format!("{}/v1/sync/stock", settings.hq_url))
        .bearer_auth(settings.token.get())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        let support_waiting = response
            .headers()
            .get(protocol::support::PENDING_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > 0);
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        let snapshot: StockSnapshot = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        node.update_sync(|s| {
            s.bytes_received += bytes.len() as u64;
            s.hq_stock = Some(snapshot);
            s.last_pull_ms = Some(now_ms());
            s.online = true;
        });
        return Ok(support_waiting);
    }
    Ok(false)
}

/// Why an answer to a reference pull must not be applied, if it must not: it comes from another
/// change log than the one the node's version counts in, names no log, or is behind the node.
fn reference_refusal(
    followed: Option<&crate::refdata::HqLog>,
    log: Option<&str>,
    held: i64,
    update: &protocol::sync::ReferenceUpdate,
    settings: &SyncSettings,
) -> Option<String> {
    let url = &settings.hq_url;
    let Some(log) = log.filter(|l| !l.is_empty()) else {
        return Some(format!(
            "HQ at {url} did not name its reference change log ({}); nothing applied: upgrade HQ",
            protocol::sync::REFERENCE_LOG_HEADER
        ));
    };
    let followed = followed?;
    if followed.log != log {
        return Some(format!(
            "HQ at {url} serves reference change log {log}, but this store's reference data (version {held}) comes from change log {} (HQ at {}): another HQ, or HQ's database was replaced. Nothing applied; the store keeps selling on version {held}. If this HQ is the right one, stop the store, run `kassa store detach` and start it again to take this HQ's data",
            followed.log, followed.url
        ));
    }
    if update.to_version < held {
        return Some(format!(
            "HQ at {url} is at reference version {} of change log {log}, behind this store's {held} (HQ restored from an older backup?); nothing applied",
            update.to_version
        ));
    }
    None
}

/// Records a refused reference pull in the status, and in the log when the reason is new (the
/// puller asks again every few seconds).
fn refuse_reference(node: &Node, problem: String) {
    let mut new = false;
    node.update_sync(|s| {
        new = s.reference_error.as_deref() != Some(problem.as_str());
        s.reference_error = Some(problem.clone());
    });
    if new {
        tracing::error!(reason = %problem, "reference data from HQ refused");
    }
}

async fn apply_reference(
    node: &Node,
    update: &protocol::sync::ReferenceUpdate,
    from: &crate::refdata::HqLog,
    attaching: bool,
    held: i64,
) -> Result<(), String> {
    match crate::refdata::apply_hq_update(
        &node.pools.writer,
        &node.store,
        update,
        &node.pepper.0,
        from,
    )
    .await
    {
        Ok(_) => {
            match crate::refdata::load_context(&node.pools.writer).await {
                Ok(Some(ctx)) => node.set_context(ctx),
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
            node.update_sync(|s| s.reference_error = None);
            if attaching {
                tracing::warn!(
                    hq = %from.url,
                    log = %from.log,
                    version = update.to_version,
                    replaced_local_version = held,
                    "store now follows HQ's reference change log: took HQ's snapshot, replacing local reference data"
                );
            } else {
                tracing::info!(version = update.to_version, "reference data applied");
            }
            let followed = crate::refdata::hq_log(&node.pools.reader)
                .await
                .map_err(|e| e.to_string())?;
            check_pin_pepper(node, followed.as_ref());
        }
        Err(e) => refuse_reference(node, format!("reference update refused: {e}")),
    }
    Ok(())
}

/// Compares the pepper HQ keyed its PIN hashes with against the node's own, records the problem
/// for the status and sign-in, and logs it when it appears.
pub fn check_pin_pepper(node: &Node, followed: Option<&crate::refdata::HqLog>) {
    let problem = crate::refdata::pin_pepper_problem(followed, &node.pepper.0);
    if let Some(problem) = &problem {
        if node.pin_pepper_problem().is_none() {
            tracing::error!(reason = %problem, "staff PINs from HQ cannot be checked");
        }
    }
    node.set_pin_pepper_problem(problem);
}

async fn pull_loop(node: Arc<Node>, settings: SyncSettings, http: reqwest::Client) {
    tokio::spawn(stock_loop(node.clone(), settings.clone(), http.clone()));
    loop {
        let started = tokio::time::Instant::now();
        match pull_reference(&node, &settings, &http).await {
            // HQ answers a waiting pull as soon as a change is committed, or after the wait:
            // ask again at once after a change or a wait, but no sooner than `pull_every` after
            // a pull that brought nothing at once (an HQ that does not wait, a node not yet
            // following its log).
            Ok(true) => {}
            Ok(false) => tokio::time::sleep_until(started + settings.pull_every).await,
            Err(reason) => {
                tracing::debug!(%reason, "reference pull failed");
                node.update_sync(|s| s.online = false);
                tokio::time::sleep(settings.pull_every).await;
            }
        }
    }
}

async fn stock_loop(node: Arc<Node>, settings: SyncSettings, http: reqwest::Client) {
    loop {
        match pull_stock(&node, &settings, &http).await {
            // Support asked something of this node: answered now, on a blocking thread of its
            // own (a diagnostics bundle verifies the whole ledger), so the runtime's workers go
            // on answering the tills.
            Ok(true) => {
                let (node, settings, http) = (node.clone(), settings.clone(), http.clone());
                let runtime = tokio::runtime::Handle::current();
                let served = tokio::task::spawn_blocking(move || {
                    runtime.block_on(crate::support::serve(&node, &settings, &http))
                })
                .await
                .unwrap_or_else(|e| Err(format!("the support task: {e}")));
                if let Err(reason) = served {
                    tracing::warn!(%reason, "support requests not answered");
                }
            }
            Ok(false) => {}
            Err(reason) => {
                tracing::debug!(%reason, "stock pull failed");
                node.update_sync(|s| s.online = false);
            }
        }
        tokio::time::sleep(settings.pull_every).await;
    }
}
