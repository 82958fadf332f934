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
                Arg::OptText(f.material.clone()),
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
        "INSERT INTO fiscal_receipts (terminal, seq, store, regime, receipt, kind, document, device_failed, at_ms, material) VALUES",
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

/// What HQ exports of one till for the tax office.
#[derive(Debug, Clone)]
pub struct TillExport {
    /// The DEP export (DEP7), JSON.
    pub dep: String,
    /// The cryptographic material container, JSON, as the till sent it with its start receipt
    /// (none when HQ has not had that receipt).
    pub material: Option<String>,
    /// The till's journal as HQ holds it (DEP131): every event with its chain hash, as JSON
    /// lines in the format of `kassa store export` (HQ keeps no signatures: it checked them).
    pub journal: Vec<u8>,
}

/// The exports of each till of `store` that has fiscal documents, from what HQ holds.
pub async fn export_store(
    db: &Db,
    store: &str,
) -> Result<BTreeMap<String, TillExport>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT terminal, document, material FROM fiscal_receipts WHERE store = $1 ORDER BY terminal, seq",
    )
    .bind(store)
    .fetch_all(&db.pool)
    .await?;
    let mut per_till: BTreeMap<String, (Vec<String>, Option<String>)> = BTreeMap::new();
    for row in rows {
        let till = per_till.entry(row.get("terminal")).or_default();
        till.0.push(row.get("document"));
        if let Some(material) = row.get::<Option<String>, _>("material") {
            till.1 = Some(material);
        }
    }
    let mut out = BTreeMap::new();
    for (terminal, (documents, material)) in per_till {
        let certificate = material.as_deref().and_then(certificate_of);
        let dep = fiscal::rksv::dep::Dep::of(
            documents
                .iter()
                .map(|d| (d.as_str(), certificate.as_deref())),
        );
        let journal = journal(db, &terminal).await?;
        out.insert(
            terminal,
            TillExport {
                dep: serde_json::to_string_pretty(&dep).unwrap_or_default(),
                material,
                journal,
            },
        );
    }
    Ok(out)
}

/// The signing certificate (DER) a container names, when its device has one.
fn certificate_of(material: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let material: fiscal::rksv::dep::CryptographicMaterial = serde_json::from_str(material).ok()?;
    material
        .devices
        .values()
        .find(|d| d.kind == fiscal::rksv::dep::DeviceType::Certificate)
        .and_then(|d| {
            base64::engine::general_purpose::STANDARD
                .decode(&d.material)
                .ok()
        })
}

/// `terminal`'s events as HQ holds them, as journal lines.
async fn journal(db: &Db, terminal: &str) -> Result<Vec<u8>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT seq, id, kind, body, hash FROM inbox WHERE terminal = $1 ORDER BY seq")
            .bind(terminal)
            .fetch_all(&db.pool)
            .await?;
    let mut out = Vec::new();
    for r in rows {
        let entry = protocol::journal::entry(
            r.get("seq"),
            r.get("id"),
            r.get("kind"),
            &r.get::<Vec<u8>, _>("body"),
            &r.get::<Vec<u8>, _>("hash"),
            None,
        );
        out.extend_from_slice(entry.to_string().as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}
