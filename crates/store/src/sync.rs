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

/// Where HQ is and how this store proves who it is.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// HQ's base URL.
    pub hq_url: String,
    /// The store credential HQ issued (`kassa hq store add`).
    pub token: String,
    /// How often reference data and stock are pulled.
    pub pull_every: Duration,
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

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Starts the outbox and the puller.
pub fn start(node: Arc<Node>, settings: SyncSettings) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default();
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

/// The batch of `terminal`'s events after `acked_seq` (at most `limit`), as the outbox sends it:
/// the link before the first event and the signature of the last.
pub async fn build_batch(
    pool: &sqlx::SqlitePool,
    store: &str,
    terminal: &str,
    acked_seq: i64,
    limit: i64,
) -> Result<Option<Batch>, sqlx::Error> {
    let rows = sqlx::query("SELECT seq, body, signature FROM events WHERE terminal = $1 AND seq > $2 ORDER BY seq LIMIT $3")
        .bind(terminal)
        .bind(acked_seq)
        .bind(limit)
        .fetch_all(pool)
        .await?;
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
        .bearer_auth(&settings.token)
        .header("content-type", BATCH_MEDIA_TYPE)
        .body(body)
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => return Ok(PushOutcome::Unreachable(e.to_string())),
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
    if status.is_server_error() || status.as_u16() == 401 || status.as_u16() == 429 {
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
            tracing::debug!(%reason, "HQ unreachable; retrying");
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
        if !pushed {
            // Wait for the next commit, or look again in a few seconds.
            let _ = tokio::time::timeout(Duration::from_secs(5), appended.notified()).await;
        }
    }
}

async fn pull_once(
    node: &Node,
    settings: &SyncSettings,
    http: &reqwest::Client,
) -> Result<(), String> {
    let since = node.context().map_or(0, |c| c.version);
    let response = http
        .get(format!(
            "{}/v1/sync/reference?since={since}",
            settings.hq_url
        ))
        .bearer_auth(&settings.token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HQ answered {}", response.status()));
    }
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    node.update_sync(|s| s.bytes_received += bytes.len() as u64);
    let update = decode_reference(&bytes).map_err(|e| e.to_string())?;
    if update.to_version > since {
        match crate::refdata::apply_update(&node.pools.writer, &node.store, &update, &node.pepper.0)
            .await
        {
            Ok(_) => {
                match crate::refdata::load_context(&node.pools.writer).await {
                    Ok(Some(ctx)) => node.set_context(ctx),
                    Ok(None) => {}
                    Err(e) => return Err(e.to_string()),
                }
                node.update_sync(|s| s.reference_error = None);
                tracing::info!(version = update.to_version, "reference data applied");
            }
            Err(e) => {
                tracing::warn!(error = %e, "reference update refused");
                node.update_sync(|s| s.reference_error = Some(e.to_string()));
            }
        }
    }
    let response = http
        .get(format!("{}/v1/sync/stock", settings.hq_url))
        .bearer_auth(&settings.token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        let snapshot: StockSnapshot = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        node.update_sync(|s| {
            s.bytes_received += bytes.len() as u64;
            s.hq_stock = Some(snapshot);
            s.last_pull_ms = Some(now_ms());
            s.online = true;
        });
    }
    Ok(())
}

async fn pull_loop(node: Arc<Node>, settings: SyncSettings, http: reqwest::Client) {
    loop {
        if let Err(reason) = pull_once(&node, &settings, &http).await {
            tracing::debug!(%reason, "pull failed");
            node.update_sync(|s| s.online = false);
        }
        tokio::time::sleep(settings.pull_every).await;
    }
}
