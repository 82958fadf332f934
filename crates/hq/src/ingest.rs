//! Ingest: a verified batch goes into the inbox (the durable receipt), then every event that is
//! now contiguous with what the terminal had is applied to the projections, all in one
//! transaction. Idempotent on (terminal, sequence) and on the event id; the same position or id
//! with other bytes is a conflict that parks the batch, never a merge.

use domain::ledger::{Event, EventBody, StockEffect, stock_movements};
use protocol::chain::{GENESIS, Hash};
use protocol::sync::{PushAck, VerifiedEvent};
use sqlx::{Any, Row, Transaction};

use crate::db::{Backend, Db};

/// Why a batch was not taken.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The batch conflicts with what HQ holds; it was parked.
    #[error("{0}")]
    Conflict(String),
    /// The database failed; nothing was acknowledged.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

fn i64_of(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Takes a verified batch of `terminal`'s events and answers with what HQ now holds.
pub async fn ingest(
    db: &Db,
    terminal: &str,
    events: &[VerifiedEvent],
    now_ms: i64,
) -> Result<PushAck, IngestError> {
    let _guard = db.write_guard().await;
    let mut tx = db.pool.begin().await?;
    let head = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT acked_seq, acked_hash FROM terminals WHERE id = $1{}",
        db.backend.for_update()
    )))
    .bind(terminal)
    .fetch_one(&mut *tx)
    .await?;
    let mut acked_seq: i64 = head.get("acked_seq");
    let mut acked_hash: Vec<u8> = head.get("acked_hash");
    let mut accepted = 0_u32;
    let mut duplicates = 0_u32;
    if let (Some(first), Some(last)) = (events.first(), events.last()) {
        let first_seq = i64_of(first.event.meta.seq);
        let last_seq = i64_of(last.event.meta.seq);
        if first_seq == 1 && first.prev_hash != GENESIS {
            return Err(IngestError::Conflict(
                "the first event of a terminal must follow the genesis link".into(),
            ));
        }
        // The events around the batch, to check that the chain links on both sides.
        let neighbours = sqlx::query(
            "SELECT seq, id, hash, prev_hash FROM inbox WHERE terminal = $1 AND seq BETWEEN $2 AND $3",
        )
        .bind(terminal)
        .bind(first_seq - 1)
        .bind(last_seq + 1)
        .fetch_all(&mut *tx)
        .await?;
        let held: std::collections::HashMap<i64, (String, Vec<u8>, Vec<u8>)> = neighbours
            .iter()
            .map(|r| {
                (
                    r.get("seq"),
                    (r.get("id"), r.get("hash"), r.get("prev_hash")),
                )
            })
            .collect();
        if let Some((_, hash, _)) = held.get(&(first_seq - 1)) {
            if hash[..] != first.prev_hash[..] {
                return Err(IngestError::Conflict(format!(
                    "event {first_seq} does not link to the event {} HQ holds",
                    first_seq - 1
                )));
            }
        }
        if let Some((_, _, prev)) = held.get(&(last_seq + 1)) {
            if prev[..] != last.hash[..] {
                return Err(IngestError::Conflict(format!(
                    "event {} HQ holds does not link to event {last_seq}",
                    last_seq + 1
                )));
            }
        }
        for e in events {
            let seq = i64_of(e.event.meta.seq);
            let id = e.event.meta.id.to_string();
            if let Some((held_id, held_hash, _)) = held.get(&seq) {
                if *held_id == id && held_hash[..] == e.hash[..] {
                    duplicates += 1;
                    continue;
                }
                return Err(IngestError::Conflict(format!(
                    "sequence {seq} of terminal {terminal} is already held as event {held_id} with other contents"
                )));
            }
            let inserted = sqlx::query(
                "INSERT INTO inbox (terminal, seq, id, kind, body, prev_hash, hash, hlc_wall, hlc_counter, received_ms, applied)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0) ON CONFLICT DO NOTHING",
            )
            .bind(terminal)
            .bind(seq)
            .bind(&id)
            .bind(e.event.body.kind())
            .bind(e.bytes.as_slice())
            .bind(&e.prev_hash[..])
            .bind(&e.hash[..])
            .bind(e.event.meta.hlc.wall_ms())
            .bind(i64::from(e.event.meta.hlc.counter()))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                return Err(IngestError::Conflict(format!(
                    "event id {id} is already held under another terminal or sequence"
                )));
            }
            accepted += 1;
        }
    }
    // Apply, in sequence order, every held event that is now contiguous with the acknowledged head.
    loop {
        let next = sqlx::query("SELECT seq, body, prev_hash, hash FROM inbox WHERE terminal = $1 AND seq > $2 ORDER BY seq LIMIT 500")
            .bind(terminal)
            .bind(acked_seq)
            .fetch_all(&mut *tx)
            .await?;
        let mut advanced = false;
        for row in next {
            let seq: i64 = row.get("seq");
            if seq != acked_seq + 1 {
                break;
            }
            let prev: Vec<u8> = row.get("prev_hash");
            if prev != acked_hash {
                return Err(IngestError::Conflict(format!(
                    "event {seq} does not link to event {acked_seq}"
                )));
            }
            let body: Vec<u8> = row.get("body");
            let event = protocol::event::decode(&body).map_err(|e| {
                IngestError::Conflict(format!("held event {seq} does not decode: {e}"))
            })?;
            apply(&mut tx, db.backend, &event).await?;
            acked_seq = seq;
            acked_hash = row.get("hash");
            advanced = true;
        }
        if !advanced {
            break;
        }
    }
    sqlx::query("UPDATE inbox SET applied = 1 WHERE terminal = $1 AND seq <= $2 AND applied = 0")
        .bind(terminal)
        .bind(acked_seq)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE terminals SET acked_seq = $1, acked_hash = $2, last_contact_ms = $3 WHERE id = $4",
    )
    .bind(acked_seq)
    .bind(acked_hash.as_slice())
    .bind(now_ms)
    .bind(terminal)
    .execute(&mut *tx)
    .await?;
    let gaps = gaps_in(&mut tx, terminal, acked_seq).await?;
    tx.commit().await?;
    Ok(PushAck {
        acked_seq: u64::try_from(acked_seq).unwrap_or(0),
        accepted,
        duplicates,
        gaps,
    })
}

/// Missing ranges between the acknowledged head and the highest event held.
async fn gaps_in(
    tx: &mut Transaction<'_, Any>,
    terminal: &str,
    acked: i64,
) -> Result<Vec<(u64, u64)>, sqlx::Error> {
    let held: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM inbox WHERE terminal = $1 AND seq > $2 ORDER BY seq")
            .bind(terminal)
            .bind(acked)
            .fetch_all(&mut **tx)
            .await?;
    Ok(gap_ranges(acked, &held))
}

/// Ranges missing after `acked` given the sequences held beyond it.
pub fn gap_ranges(acked: i64, held: &[i64]) -> Vec<(u64, u64)> {
    let mut gaps = Vec::new();
    let mut expected = acked + 1;
    for seq in held {
        if *seq > expected {
            gaps.push((
                u64::try_from(expected).unwrap_or(0),
                u64::try_from(seq - 1).unwrap_or(0),
            ));
        }
        expected = seq + 1;
    }
    gaps
}

/// The business day of an instant in a time zone (`YYYY-MM-DD`); UTC when the zone is unknown.
pub fn business_day(ms: i64, timezone: &str) -> String {
    let Ok(ts) = jiff::Timestamp::from_millisecond(ms) else {
        return "invalid".into();
    };
    let zone = jiff::tz::TimeZone::get(timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    ts.to_zoned(zone).date().to_string()
}

async fn store_timezone(tx: &mut Transaction<'_, Any>, store: &str) -> Result<String, sqlx::Error> {
    let payload: Option<Option<String>> =
        sqlx::query_scalar("SELECT payload FROM ref_entities WHERE kind = 'store' AND key = $1")
            .bind(store)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(payload
        .flatten()
        .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
        .and_then(|v| v["timezone"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "UTC".into()))
}

/// Applies one event to the projections.
async fn apply(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    event: &Event,
) -> Result<(), sqlx::Error> {
    let _ = backend;
    let store = event.meta.store.as_str();
    let (sales, voids, returns, gross, tax, refunds, cash, currency) = match &event.body {
        EventBody::SaleCompleted(s) => {
            let cash: i64 = s
                .tenders
                .iter()
                .filter(|t| t.kind == domain::sale::TenderKind::Cash)
                .map(|t| t.amount.minor())
                .sum::<i64>()
                - s.settlement.change.minor();
            (
                1,
                0,
                0,
                s.settlement.due.minor(),
                s.cart.tax_total.minor(),
                0,
                cash,
                Some(s.cart.currency),
            )
        }
        EventBody::SaleVoided(v) => (
            0,
            1,
            0,
            -v.refund.minor(),
            0,
            0,
            0,
            Some(v.refund.currency()),
        ),
        EventBody::ReturnCompleted(r) => {
            let cash: i64 = r
                .tenders
                .iter()
                .filter(|t| t.kind == domain::sale::TenderKind::Cash)
                .map(|t| t.amount.minor())
                .sum();
            (
                0,
                0,
                1,
                0,
                0,
                r.refund.refund.minor(),
                -cash,
                Some(r.refund.refund.currency()),
            )
        }
        _ => (0, 0, 0, 0, 0, 0, 0, None),
    };
    if let Some(currency) = currency {
        let zone = store_timezone(tx, store).await?;
        let day = business_day(event.meta.hlc.wall_ms(), &zone);
        sqlx::query(
            "INSERT INTO sales_daily (store, day, currency, sales, voids, returns, gross_minor, tax_minor, refunds_minor, cash_minor)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (store, day) DO UPDATE SET sales = sales_daily.sales + excluded.sales,
               voids = sales_daily.voids + excluded.voids, returns = sales_daily.returns + excluded.returns,
               gross_minor = sales_daily.gross_minor + excluded.gross_minor, tax_minor = sales_daily.tax_minor + excluded.tax_minor,
               refunds_minor = sales_daily.refunds_minor + excluded.refunds_minor, cash_minor = sales_daily.cash_minor + excluded.cash_minor",
        )
        .bind(store)
        .bind(day)
        .bind(currency.code())
        .bind(sales)
        .bind(voids)
        .bind(returns)
        .bind(gross)
        .bind(tax)
        .bind(refunds)
        .bind(cash)
        .execute(&mut **tx)
        .await?;
    }
    let id = event.meta.id.to_string();
    let wall = event.meta.hlc.wall_ms();
    let counter = i64::from(event.meta.hlc.counter());
    for movement in stock_movements(event) {
        sqlx::query("INSERT INTO stock_levels (location, sku, on_hand) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING")
            .bind(movement.location.as_str())
            .bind(movement.sku.as_str())
            .execute(&mut **tx)
            .await?;
        match movement.effect {
            StockEffect::Move(delta) => {
                sqlx::query(
                    "INSERT INTO stock_moves (location, sku, hlc_wall, hlc_counter, event_id, delta) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT DO NOTHING",
                )
                .bind(movement.location.as_str())
                .bind(movement.sku.as_str())
                .bind(wall)
                .bind(counter)
                .bind(&id)
                .bind(delta)
                .execute(&mut **tx)
                .await?;
                // A movement at or before the latest count is already in that count.
                sqlx::query(
                    "UPDATE stock_levels SET on_hand = on_hand + $1 WHERE location = $2 AND sku = $3
                     AND (count_event IS NULL OR (count_wall, count_counter, count_event) < ($4, $5, $6))",
                )
                .bind(delta)
                .bind(movement.location.as_str())
                .bind(movement.sku.as_str())
                .bind(wall)
                .bind(counter)
                .bind(&id)
                .execute(&mut **tx)
                .await?;
            }
            StockEffect::Count(counted) => {
                // A count sets on-hand as of its clock reading: the counted quantity plus every
                // movement recorded after it, whatever order they arrived in.
                sqlx::query(
                    "UPDATE stock_levels SET on_hand = $1 + COALESCE((SELECT SUM(m.delta) FROM stock_moves m
                         WHERE m.location = $2 AND m.sku = $3 AND (m.hlc_wall, m.hlc_counter, m.event_id) > ($4, $5, $6)), 0),
                       count_wall = $4, count_counter = $5, count_event = $6
                     WHERE location = $2 AND sku = $3
                     AND (count_event IS NULL OR (count_wall, count_counter, count_event) < ($4, $5, $6))",
                )
                .bind(counted)
                .bind(movement.location.as_str())
                .bind(movement.sku.as_str())
                .bind(wall)
                .bind(counter)
                .bind(&id)
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    Ok(())
}

/// The link before a terminal's first event, as stored for a new terminal.
pub fn genesis() -> Hash {
    GENESIS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_listed_as_inclusive_ranges() {
        assert_eq!(gap_ranges(3, &[5, 6, 9]), vec![(4, 4), (7, 8)]);
        assert_eq!(gap_ranges(3, &[]), vec![]);
        assert_eq!(gap_ranges(0, &[1, 2]), vec![]);
    }

    #[test]
    fn business_days_follow_the_store_time_zone() {
        // 2026-11-23 23:30 UTC is already the 24th in Vienna.
        let ms = 1_795_476_600_000;
        assert_eq!(business_day(ms, "UTC"), "2026-11-23");
        assert_eq!(business_day(ms, "Europe/Vienna"), "2026-11-24");
        assert_eq!(business_day(ms, "Not/AZone"), "2026-11-23");
    }
}
