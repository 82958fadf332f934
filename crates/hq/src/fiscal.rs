//! The tills' fiscal documents at HQ (Austria: the RKSV's signed receipt codes), kept as the
//! `FiscalReceipt` events carried them — HQ never rewrites one — for the export of a store's
//! tills and for the exception of a signature device that has been out for too long.

use std::collections::BTreeMap;

use domain::ledger::{Event, EventBody};
use sqlx::{Any, Row, Transaction};

use crate::db::{Arg, Backend, Db, insert_many};

/// How long a signature device may be out before the tax office must be told (RKSV: 48 hours).
pub const OUTAGE_LIMIT_MS: i64 = 48 * 3_600_000;

/// Keeps the fiscal documents among ingested `events`.
pub(crate) async fn apply(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    events: &[&Event],
) -> Result<(), sqlx::Error> {
    let rows: Vec<Vec<Arg>> = events
        .iter()
        .filter_map(|event| match &event.body {
            EventBody::FiscalReceipt(f) => Some(vec![
                Arg::Text(event.meta.terminal.to_string()),
                Arg::Int(i64::try_from(event.meta.seq).unwrap_or(i64::MAX)),
                Arg::Text(event.meta.store.to_string()),
                Arg::Text(f.regime.clone()),
                Arg::Text(f.receipt.clone()),
                Arg::Text(f.kind.clone()),
                Arg::Text(f.document.clone()),
                Arg::Int(i64::from(f.device_failed)),
                Arg::Int(event.meta.hlc.wall_ms()),
            ]),
            _ => None,
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    insert_many(
        tx,
        backend,
        "INSERT INTO fiscal_receipts (terminal, seq, store, regime, receipt, kind, document, device_failed, at_ms) VALUES",
        "ON CONFLICT DO NOTHING",
        rows,
    )
    .await
    .map(|_| ())
}

/// Tills whose signature device has been out for longer than [`OUTAGE_LIMIT_MS`] at `now`:
/// (terminal, store, since) — the first unsigned receipt after the last signed one.
pub(crate) async fn long_outages(
    db: &Db,
    now: i64,
) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT f.terminal, f.store, MIN(f.at_ms) AS since FROM fiscal_receipts f
         WHERE f.device_failed = 1
           AND f.seq > COALESCE((SELECT MAX(s.seq) FROM fiscal_receipts s
                                 WHERE s.terminal = f.terminal AND s.device_failed = 0), 0)
         GROUP BY f.terminal, f.store",
    )
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get("terminal"), r.get("store"), r.get::<i64, _>("since")))
        .filter(|(_, _, since)| now - since > OUTAGE_LIMIT_MS)
        .collect())
}

/// The DEP export of each till of `store` that has fiscal documents, as HQ holds them: the
/// till's id and the export's JSON text (the cryptographic material stays with the store,
/// which holds the AES key and the device).
pub async fn export_store(db: &Db, store: &str) -> Result<BTreeMap<String, String>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT terminal, document FROM fiscal_receipts WHERE store = $1 ORDER BY terminal, seq",
    )
    .bind(store)
    .fetch_all(&db.pool)
    .await?;
    let mut per_till: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows {
        per_till
            .entry(row.get("terminal"))
            .or_default()
            .push(row.get("document"));
    }
    Ok(per_till
        .into_iter()
        .map(|(terminal, documents)| {
            let dep = fiscal::rksv::dep::Dep::of(documents.iter().map(|d| (d.as_str(), None)));
            (
                terminal,
                serde_json::to_string_pretty(&dep).unwrap_or_default(),
            )
        })
        .collect())
}
