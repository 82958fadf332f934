//! Auditing the ledger: recompute every terminal's chain and signatures and report the first
//! broken link; export a terminal's journal as JSON lines.

use std::io::Write;

use domain::TerminalId;
use domain::ledger::{Event, EventBody};
use protocol::chain::{self, GENESIS, Hash};
use sqlx::{Row, SqlitePool};

use crate::keys::verifying_key;

/// The first broken link of a terminal's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// Terminal.
    pub terminal: String,
    /// Sequence number of the first bad event.
    pub seq: i64,
    /// Its event id as stored.
    pub event_id: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "terminal {} sequence {} (event {}): {}",
            self.terminal, self.seq, self.event_id, self.reason
        )
    }
}

/// What verification found per terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalReport {
    /// Terminal.
    pub terminal: String,
    /// Events checked.
    pub events: u64,
    /// The first broken link, if any.
    pub broken: Option<BrokenLink>,
}

/// Verifies every terminal's chain: contiguous sequence from 1, the canonical bytes decode and
/// agree with the stored columns, each hash links to the one before, each signature verifies
/// with the terminal's key at that point (the key it was provisioned with, then each key a
/// `KeyRotated` event names, from the event after it).
pub async fn verify(pool: &SqlitePool) -> Result<Vec<TerminalReport>, sqlx::Error> {
    // A ledger of a release before key rotation (a backup's copy, read as it is) has no
    // `genesis_key`: its `public_key` is the key its chains began with.
    let rotations: bool = sqlx::query_scalar(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('terminals') WHERE name = 'genesis_key'",
    )
    .fetch_one(pool)
    .await?;
    let first_key = if rotations {
        "COALESCE(genesis_key, public_key)"
    } else {
        "public_key"
    };
    let terminals = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, {first_key} AS first_key FROM terminals ORDER BY id"
    )))
    .fetch_all(pool)
    .await?;
    let mut reports = Vec::new();
    for t in terminals {
        let terminal: String = t.get("id");
        // The key the chain begins with; a `KeyRotated` event hands over to the key it names.
        let mut key = verifying_key(t.get::<&[u8], _>("first_key"));
        let rows = sqlx::query(
            "SELECT seq, id, body, hash, signature FROM events WHERE terminal = $1 ORDER BY seq",
        )
        .bind(&terminal)
        .fetch_all(pool)
        .await?;
        let mut previous: Hash = GENESIS;
        let mut broken = None;
        let mut events = 0;
        for (expected_seq, row) in (1_i64..).zip(rows) {
            events += 1;
            let seq: i64 = row.get("seq");
            let event_id: String = row.get("id");
            let body: Vec<u8> = row.get("body");
            let hash: Vec<u8> = row.get("hash");
            let signature: Vec<u8> = row.get("signature");
            let fail = |reason: String| BrokenLink {
                terminal: terminal.clone(),
                seq,
                event_id: event_id.clone(),
                reason,
            };
            let problem = if seq != expected_seq {
                Some(format!("sequence gap: expected {expected_seq}"))
            } else {
                let computed = chain::link(&previous, &body);
                let decoded = protocol::event::decode(&body);
                let problem = match &decoded {
                    Err(e) => Some(format!("event bytes do not decode: {e}")),
                    Ok(event)
                        if event.meta.terminal.as_str() != terminal
                            || i64::try_from(event.meta.seq).ok() != Some(seq)
                            || event.meta.id.to_string() != event_id =>
                    {
                        Some("stored columns disagree with the signed event".into())
                    }
                    Ok(_) if computed[..] != hash[..] => {
                        Some("hash does not match the event and the link before it".into())
                    }
                    Ok(_) => match &key {
                        None => Some("terminal has no valid public key".into()),
                        Some(key) if !chain::verify(key, &computed, &signature) => {
                            Some("signature does not verify".into())
                        }
                        Some(_) => None,
                    },
                };
                if let Ok(Event {
                    body: EventBody::KeyRotated { public_key },
                    ..
                }) = &decoded
                {
                    key = verifying_key(public_key);
                }
                problem
            };
            if let Some(reason) = problem {
                broken = Some(fail(reason));
                break;
            }
            previous = chain::link(&previous, &body);
        }
        reports.push(TerminalReport {
            terminal,
            events,
            broken,
        });
    }
    Ok(reports)
}

/// Writes `terminal`'s journal from sequence `from` as JSON lines; returns how many.
pub async fn export(
    pool: &SqlitePool,
    terminal: &TerminalId,
    from: u64,
    out: &mut impl Write,
) -> Result<u64, ExportError> {
    let from = i64::try_from(from).unwrap_or(i64::MAX);
    export_range(pool, terminal, from..=i64::MAX, out).await
}

/// Writes the entries of `terminal`'s journal whose sequence is in `seqs` as JSON lines;
/// returns how many.
pub async fn export_range(
    pool: &SqlitePool,
    terminal: &TerminalId,
    seqs: std::ops::RangeInclusive<i64>,
    out: &mut impl Write,
) -> Result<u64, ExportError> {
    let rows = sqlx::query(
        "SELECT seq, id, kind, body, hash, signature FROM events WHERE terminal = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq",
    )
    .bind(terminal.as_str())
    .bind(seqs.start())
    .bind(seqs.end())
    .fetch_all(pool)
    .await?;
    let mut written = 0;
    for r in rows {
        let entry = protocol::journal::entry(
            r.get("seq"),
            r.get("id"),
            r.get("kind"),
            r.get("body"),
            r.get("hash"),
            Some(r.get("signature")),
        );
        writeln!(out, "{entry}")?;
        written += 1;
    }
    Ok(written)
}

/// Errors from exporting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Writing failed.
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
}
