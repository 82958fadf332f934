//! Ingest: a verified batch goes into the inbox (the durable receipt), then every event that is
//! now contiguous with what the terminal had is applied to the projections, all in one
//! transaction. Idempotent on (terminal, sequence) and on the event id; the same position or id
//! with other bytes is a conflict that parks the batch, never a merge.

use std::collections::{BTreeMap, BTreeSet};

use domain::ledger::{Event, EventBody, StockEffect, stock_movements};
use domain::shift::SalesEffect;
use protocol::chain::GENESIS;
use protocol::sync::{PushAck, VerifiedEvent};
use sqlx::{Any, Row, Transaction};

use crate::db::{Arg, Backend, Db, insert_many};

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
    ingest_pushed(db, terminal, events, now_ms, 0).await
}

/// [`ingest`] of a push of `bytes` on the wire, counted for the till's day (UTC) in the same
/// transaction (the fleet page's bytes per day).
pub async fn ingest_pushed(
    db: &Db,
    terminal: &str,
    events: &[VerifiedEvent],
    now_ms: i64,
    bytes: u64,
) -> Result<PushAck, IngestError> {
    let (_guard, mut tx) = db.begin_write().await?;
    if bytes > 0 {
        sqlx::query(
            "INSERT INTO push_traffic (terminal, day, pushes, bytes) VALUES ($1, $2, 1, $3)
             ON CONFLICT (terminal, day) DO UPDATE SET pushes = push_traffic.pushes + 1, bytes = push_traffic.bytes + excluded.bytes",
        )
        .bind(terminal)
        .bind(business_day(now_ms, "UTC"))
        .bind(i64_of(bytes))
        .execute(&mut *tx)
        .await?;
    }
    let head = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT acked_seq, acked_hash FROM terminals WHERE id = $1{}",
        db.backend.for_update()
    )))
    .bind(terminal)
    .fetch_one(&mut *tx)
    .await?;
    let mut acked_seq: i64 = head.get("acked_seq");
    let mut acked_hash: Vec<u8> = head.get("acked_hash");
    let mut duplicates = 0_u32;
    let mut fresh: Vec<&VerifiedEvent> = Vec::new();
    if let (Some(first), Some(last)) = (events.first(), events.last()) {
        let first_seq = i64_of(first.event.meta.seq);
        let last_seq = i64_of(last.event.meta.seq);
        if first_seq == 1 && first.prev_hash != GENESIS {
            return Err(IngestError::Conflict(
                "the first event of a terminal must follow the genesis link".into(),
            ));
        }
        // What HQ already holds in and around the batch, to check that the chain links on both
        // sides and to tell duplicates from conflicts.
        let neighbours = sqlx::query("SELECT seq, id, hash, prev_hash FROM inbox WHERE terminal = $1 AND seq BETWEEN $2 AND $3")
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
            match held.get(&seq) {
                Some((held_id, held_hash, _))
                    if *held_id == e.event.meta.id.to_string() && held_hash[..] == e.hash[..] =>
                {
                    duplicates += 1;
                }
                Some((held_id, _, _)) => {
                    return Err(IngestError::Conflict(format!(
                        "sequence {seq} of terminal {terminal} is already held as event {held_id} with other contents"
                    )));
                }
                None => fresh.push(e),
            }
        }
    }
    // Fresh events that extend the acknowledged head are applied straight from the batch, by
    // reference; only events held from an earlier batch are decoded (`held_now`).
    let mut apply_now: Vec<&Event> = Vec::new();
    let mut held_now: Vec<Event> = Vec::new();
    for e in &fresh {
        let seq = i64_of(e.event.meta.seq);
        if seq != acked_seq + 1 {
            break;
        }
        if e.prev_hash[..] != acked_hash[..] {
            return Err(IngestError::Conflict(format!(
                "event {seq} does not link to event {acked_seq}"
            )));
        }
        apply_now.push(&e.event);
        acked_seq = seq;
        acked_hash = e.hash.to_vec();
    }
    let rows: Vec<Vec<Arg>> = fresh
        .iter()
        .map(|e| {
            let seq = i64_of(e.event.meta.seq);
            vec![
                Arg::Text(terminal.to_owned()),
                Arg::Int(seq),
                Arg::Text(e.event.meta.id.to_string()),
                Arg::Text(e.event.body.kind().to_owned()),
                Arg::Bytes(e.bytes.clone()),
                Arg::Bytes(e.prev_hash.to_vec()),
                Arg::Bytes(e.hash.to_vec()),
                Arg::Int(e.event.meta.hlc.wall_ms()),
                Arg::Int(i64::from(e.event.meta.hlc.counter())),
                Arg::Int(now_ms),
                Arg::Int(i64::from(seq <= acked_seq)),
            ]
        })
        .collect();
    let inserted = insert_many(
        &mut tx,
        db.backend,
        "INSERT INTO inbox (terminal, seq, id, kind, body, prev_hash, hash, hlc_wall, hlc_counter, received_ms, applied) VALUES",
        "ON CONFLICT DO NOTHING",
        rows,
    )
    .await?;
    if inserted != fresh.len() as u64 {
        return Err(IngestError::Conflict(
            "an event id of this batch is already held under another terminal or sequence".into(),
        ));
    }
    let accepted = u32::try_from(fresh.len()).unwrap_or(u32::MAX);
    for e in &fresh {
        if let EventBody::KeyRotated { public_key } = &e.event.body {
            record_key_rotation(&mut tx, terminal, &e.event, public_key, now_ms).await?;
        }
    }
    // Events held beyond a gap that the batch filled are applied now, in sequence order.
    loop {
        let next = sqlx::query("SELECT seq, body, prev_hash, hash FROM inbox WHERE terminal = $1 AND seq > $2 AND applied = 0 ORDER BY seq LIMIT 1000")
            .bind(terminal)
            .bind(acked_seq)
            .fetch_all(&mut *tx)
            .await?;
        let before = acked_seq;
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
            held_now.push(event);
            acked_seq = seq;
            acked_hash = row.get("hash");
        }
        if acked_seq == before {
            break;
        }
        sqlx::query("UPDATE inbox SET applied = 1 WHERE terminal = $1 AND seq > $2 AND seq <= $3")
            .bind(terminal)
            .bind(before)
            .bind(acked_seq)
            .execute(&mut *tx)
            .await?;
    }
    apply_now.extend(held_now.iter());
    apply_all(&mut tx, db.backend, &apply_now).await?;
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

/// Keeps the key a terminal's `KeyRotated` event names as its key from the next sequence on
/// (the batch that carried the event ended with it and was signed by the key before), makes it
/// the terminal's newest key unless a later rotation is held already, and audits it.
async fn record_key_rotation(
    tx: &mut Transaction<'static, Any>,
    terminal: &str,
    event: &Event,
    public_key: &[u8; 32],
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let from_seq = i64_of(event.meta.seq).saturating_add(1);
    sqlx::query(
        "INSERT INTO terminal_keys (terminal_id, from_seq, public_key, rotated_ms) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(terminal)
    .bind(from_seq)
    .bind(&public_key[..])
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE terminals SET public_key = $1 WHERE id = $2 AND NOT EXISTS (SELECT 1 FROM terminal_keys WHERE terminal_id = $2 AND from_seq > $3)",
    )
    .bind(&public_key[..])
    .bind(terminal)
    .bind(from_seq)
    .execute(&mut **tx)
    .await?;
    let actor = format!("store:{}", event.meta.store);
    let target = format!("terminal:{terminal}");
    let after = serde_json::json!({
        "from_seq": from_seq,
        "public_key": hex::encode(public_key),
    })
    .to_string();
    crate::identity::Audit {
        at_ms: now_ms,
        actor: &actor,
        source: None,
        action: "terminal.key_rotated",
        target: Some(&target),
        before: None,
        after: Some(&after),
    }
    .append(tx)
    .await?;
    tracing::info!(%terminal, from_seq, "a terminal's signing key was rotated");
    Ok(())
}

/// Runs `fold` once per database under `name` over every event HQ applied before (each
/// terminal's in sequence order, a thousand at a time, in one transaction): how a projection
/// added in a later version is filled from the inbox. A database that has run it does nothing.
pub(crate) async fn backfill_once(
    db: &Db,
    name: &str,
    mut fold: impl AsyncFnMut(&mut Transaction<'static, Any>, &[&Event]) -> Result<(), sqlx::Error>,
) -> Result<(), sqlx::Error> {
    let (_guard, mut tx) = db.begin_write().await?;
    let done: Option<i64> =
        sqlx::query_scalar("SELECT done_ms FROM projection_backfills WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
    if done.is_some() {
        return Ok(());
    }
    let terminals: Vec<String> = sqlx::query_scalar("SELECT id FROM terminals ORDER BY id")
        .fetch_all(&mut *tx)
        .await?;
    for terminal in terminals {
        let mut after = 0_i64;
        loop {
            let rows = sqlx::query(
                "SELECT seq, body FROM inbox WHERE terminal = $1 AND applied = 1 AND seq > $2 ORDER BY seq LIMIT 1000",
            )
            .bind(&terminal)
            .bind(after)
            .fetch_all(&mut *tx)
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.get("seq");
            let events: Vec<Event> = rows
                .iter()
                .filter_map(|r| protocol::event::decode(&r.get::<Vec<u8>, _>("body")).ok())
                .collect();
            let events: Vec<&Event> = events.iter().collect();
            fold(&mut tx, &events).await?;
        }
    }
    sqlx::query("INSERT INTO projection_backfills (name, done_ms) VALUES ($1, $2)")
        .bind(name)
        .bind(jiff::Timestamp::now().as_millisecond())
        .execute(&mut *tx)
        .await?;
    tx.commit().await
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

/// The hour of the day (0–23) at `ms` in `timezone` (UTC for an unknown zone).
pub fn business_hour(ms: i64, timezone: &str) -> i8 {
    let Ok(ts) = jiff::Timestamp::from_millisecond(ms) else {
        return 0;
    };
    let zone = jiff::tz::TimeZone::get(timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    ts.to_zoned(zone).hour()
}

pub(crate) async fn store_timezone(
    tx: &mut Transaction<'_, Any>,
    store: &str,
) -> Result<String, sqlx::Error> {
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

/// Figures kept per store and business day: sales, voids, returns (counts), gross (sales less
/// voids), tax, refunds, cash, shifts closed, cash expected, cash counted, voided, goods net of
/// tax, cash rounding.
const DAY_FIGURES: usize = 13;

fn money_overflow(e: domain::MoneyError) -> sqlx::Error {
    sqlx::Error::Protocol(format!("sales figures overflow: {e}"))
}

/// The sale a void takes back: the terminal's event just before it, found in this batch or in
/// the inbox (`None` when HQ does not hold it; the ledger never records such a void).
pub(crate) async fn voided_sale(
    tx: &mut Transaction<'_, Any>,
    batch: &[&Event],
    void: &domain::ledger::SaleVoided,
) -> Result<Option<domain::ledger::SaleCompleted>, sqlx::Error> {
    let in_batch = batch
        .iter()
        .find(|e| e.meta.id == void.sale)
        .map(|e| (*e).clone());
    let sale = match in_batch {
        Some(e) => Some(e),
        None => {
            let body: Option<Vec<u8>> = sqlx::query_scalar("SELECT body FROM inbox WHERE id = $1")
                .bind(void.sale.to_string())
                .fetch_optional(&mut **tx)
                .await?;
            body.and_then(|b| protocol::event::decode(&b).ok())
        }
    };
    Ok(match sale.map(|e| e.body) {
        Some(EventBody::SaleCompleted(s)) => Some(s),
        _ => None,
    })
}

/// What a sale, void (of `voided`, its sale) or return does to the sales figures (`None` for
/// other events). A void takes back exactly what its sale added.
pub(crate) fn sales_effect(
    event: &Event,
    voided: Option<&domain::ledger::SaleCompleted>,
) -> Result<Option<SalesEffect>, sqlx::Error> {
    let effect = match &event.body {
        EventBody::SaleCompleted(s) => SalesEffect::of_sale(s),
        EventBody::ReturnCompleted(r) => SalesEffect::of_return(r),
        EventBody::SaleVoided(v) => match voided {
            Some(s) => SalesEffect::of_sale(s).and_then(|e| e.voided(v.refund)),
            // A void whose sale HQ does not hold is taken back as untaxed goods given back in
            // cash, as the till's tally does.
            None => v.refund.checked_neg().map(|goods_net| SalesEffect {
                voided: v.refund,
                goods_net,
                ..SalesEffect::zero(v.refund.currency())
            }),
        },
        _ => return Ok(None),
    };
    effect.map(Some).map_err(money_overflow)
}

/// A stock key.
type StockKey = (String, String);
/// A point in stock time: clock reading, then event id.
type StockClock = (i64, i64, String);

/// Applies events (in sequence order per terminal) to the projections with a handful of
/// statements per call: sales per store and day aggregated in memory, stock movements inserted
/// in bulk, and each touched stock level updated once.
async fn apply_all(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    events: &[&Event],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    crate::stored_value::apply(tx, backend, events).await?;
    crate::cards::apply(tx, events).await?;
    crate::returns::apply(tx, backend, events).await?;
    crate::fiscal::apply(tx, backend, events).await?;
    let order_keys = crate::orders::apply(tx, backend, events).await?;
    let mut breakdowns = crate::breakdown::Breakdowns::default();
    let mut zones: BTreeMap<String, String> = BTreeMap::new();
    let mut days: BTreeMap<(String, String, String), [i64; DAY_FIGURES]> = BTreeMap::new();
    let mut day_taxes: BTreeMap<(String, String, String, String), (i64, i64)> = BTreeMap::new();
    // Movements summed per level and event: one sale may have several lines of one SKU.
    let mut moves: BTreeMap<(StockKey, StockClock), i64> = BTreeMap::new();
    let mut counts: BTreeMap<StockKey, (StockClock, i64)> = BTreeMap::new();
    for event in events {
        let store = event.meta.store.as_str();
        let voided = match &event.body {
            EventBody::SaleVoided(v) => voided_sale(tx, events, v).await?,
            _ => None,
        };
        let effect = sales_effect(event, voided.as_ref())?;
        if !zones.contains_key(store) {
            let zone = store_timezone(tx, store).await?;
            zones.insert(store.to_owned(), zone);
        }
        let zone = zones.get(store).map_or("UTC", String::as_str);
        let day = business_day(event.meta.hlc.wall_ms(), zone);
        breakdowns.event(event, voided.as_ref(), effect.as_ref(), zone, &day);
        let cash_of = |tenders: &[domain::sale::Tender]| -> i64 {
            tenders
                .iter()
                .filter(|t| t.kind == domain::sale::TenderKind::Cash)
                .map(|t| t.amount.minor())
                .sum()
        };
        let sale_cash =
            |s: &domain::ledger::SaleCompleted| cash_of(&s.tenders) - s.settlement.change.minor();
        // Counts and cash into the drawer; the amounts come from the sales effect. A void gives
        // back the cash its sale took (all of the refund when the sale is not known).
        let (counted, cash) = match &event.body {
            EventBody::SaleCompleted(s) => ([1, 0, 0], sale_cash(s)),
            EventBody::SaleVoided(v) => (
                [0, 1, 0],
                -voided.as_ref().map_or(v.refund.minor(), sale_cash),
            ),
            EventBody::ReturnCompleted(r) => ([0, 0, 1], -cash_of(&r.tenders)),
            EventBody::CardRefundPaidInCash { amount, .. } => ([0, 0, 0], -amount.minor()),
            _ => ([0, 0, 0], 0),
        };
        let figures = match (&effect, &event.body) {
            (Some(e), _) => Some((
                e.sold.currency(),
                [
                    counted[0],
                    counted[1],
                    counted[2],
                    e.sold.minor() - e.voided.minor(),
                    e.tax().map_err(money_overflow)?.minor(),
                    e.refunded.minor(),
                    cash,
                    0,
                    0,
                    0,
                    e.voided.minor(),
                    e.goods_net.minor(),
                    e.rounding.minor(),
                ],
            )),
            (None, EventBody::CardRefundPaidInCash { amount, .. }) => Some((
                amount.currency(),
                [0, 0, 0, 0, 0, 0, cash, 0, 0, 0, 0, 0, 0],
            )),
            (
                None,
                EventBody::ShiftClosed {
                    expected, counted, ..
                },
            ) => Some((
                expected.currency(),
                [
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    1,
                    expected.minor(),
                    counted.minor(),
                    0,
                    0,
                    0,
                ],
            )),
            _ => None,
        };
        if let Some((currency, figures)) = figures {
            for t in effect.iter().flat_map(|e| &e.taxes) {
                let entry = day_taxes
                    .entry((
                        store.to_owned(),
                        day.clone(),
                        t.code.clone(),
                        t.rate.to_string(),
                    ))
                    .or_insert((0, 0));
                entry.0 += t.base.minor();
                entry.1 += t.amount.minor();
            }
            let entry = days
                .entry((store.to_owned(), day, currency.code().to_owned()))
                .or_insert([0; DAY_FIGURES]);
            for (sum, value) in entry.iter_mut().zip(figures) {
                *sum += value;
            }
        }
        let clock: StockClock = (
            event.meta.hlc.wall_ms(),
            i64::from(event.meta.hlc.counter()),
            event.meta.id.to_string(),
        );
        for movement in stock_movements(event) {
            let key = (movement.location.to_string(), movement.sku.to_string());
            match movement.effect {
                StockEffect::Move(delta) => {
                    *moves.entry((key, clock.clone())).or_default() += delta
                }
                StockEffect::Count(counted) => {
                    let newer = counts.get(&key).is_none_or(|(c, _)| clock > *c);
                    if newer {
                        counts.insert(key, (clock.clone(), counted));
                    }
                }
            }
        }
    }
    breakdowns.write(tx).await?;
    for ((store, day, currency), f) in days {
        sqlx::query(
            "INSERT INTO sales_daily (store, day, currency, sales, voids, returns, gross_minor, tax_minor, refunds_minor, cash_minor, shifts_closed, cash_expected_minor, cash_counted_minor, voided_minor, goods_net_minor, rounding_minor)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             ON CONFLICT (store, day) DO UPDATE SET sales = sales_daily.sales + excluded.sales,
               voids = sales_daily.voids + excluded.voids, returns = sales_daily.returns + excluded.returns,
               gross_minor = sales_daily.gross_minor + excluded.gross_minor, tax_minor = sales_daily.tax_minor + excluded.tax_minor,
               refunds_minor = sales_daily.refunds_minor + excluded.refunds_minor, cash_minor = sales_daily.cash_minor + excluded.cash_minor,
               shifts_closed = sales_daily.shifts_closed + excluded.shifts_closed,
               cash_expected_minor = sales_daily.cash_expected_minor + excluded.cash_expected_minor,
               cash_counted_minor = sales_daily.cash_counted_minor + excluded.cash_counted_minor,
               voided_minor = sales_daily.voided_minor + excluded.voided_minor,
               goods_net_minor = sales_daily.goods_net_minor + excluded.goods_net_minor,
               rounding_minor = sales_daily.rounding_minor + excluded.rounding_minor",
        )
        .bind(store)
        .bind(day)
        .bind(currency)
        .bind(f[0])
        .bind(f[1])
        .bind(f[2])
        .bind(f[3])
        .bind(f[4])
        .bind(f[5])
        .bind(f[6])
        .bind(f[7])
        .bind(f[8])
        .bind(f[9])
        .bind(f[10])
        .bind(f[11])
        .bind(f[12])
        .execute(&mut **tx)
        .await?;
    }
    for ((store, day, code, rate), (base, tax)) in day_taxes {
        sqlx::query(
            "INSERT INTO sales_daily_taxes (store, day, code, rate, base_minor, tax_minor) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (store, day, code, rate) DO UPDATE SET base_minor = sales_daily_taxes.base_minor + excluded.base_minor,
               tax_minor = sales_daily_taxes.tax_minor + excluded.tax_minor",
        )
        .bind(store)
        .bind(day)
        .bind(code)
        .bind(rate)
        .bind(base)
        .bind(tax)
        .execute(&mut **tx)
        .await?;
    }
    let keys: BTreeSet<StockKey> = moves
        .keys()
        .map(|(key, _)| key.clone())
        .chain(counts.keys().cloned())
        .collect();
    if !keys.is_empty() {
        apply_stock(tx, backend, &keys, &moves, &counts).await?;
    }
    // What the orders now hold and what the stores now have: a line the store can no longer
    // cover is the order's stock conflict; every figure that changed is a change of the feed.
    crate::orders::check_conflicts(tx, backend, &keys).await?;
    let changed: BTreeSet<StockKey> = keys.into_iter().chain(order_keys).collect();
    crate::availability::changed(tx, backend, &changed, crate::now_ms()).await?;
    Ok(())
}

/// Applies the movements and counts of a batch to the stock levels of `keys`: movements
/// inserted in bulk, each level updated once, a count setting its level as of its clock.
async fn apply_stock(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    keys: &BTreeSet<StockKey>,
    moves: &BTreeMap<(StockKey, StockClock), i64>,
    counts: &BTreeMap<StockKey, (StockClock, i64)>,
) -> Result<(), sqlx::Error> {
    let key_rows = || {
        keys.iter()
            .map(|(l, s)| vec![Arg::Text(l.clone()), Arg::Text(s.clone())])
            .collect::<Vec<_>>()
    };
    let mut ensure = key_rows();
    for row in &mut ensure {
        row.push(Arg::Int(0));
    }
    insert_many(
        tx,
        backend,
        "INSERT INTO stock_levels (location, sku, on_hand) VALUES",
        "ON CONFLICT DO NOTHING",
        ensure,
    )
    .await?;
    let move_rows: Vec<Vec<Arg>> = moves
        .iter()
        .map(|(((l, s), (w, c, id)), d)| {
            vec![
                Arg::Text(l.clone()),
                Arg::Text(s.clone()),
                Arg::Int(*w),
                Arg::Int(*c),
                Arg::Text(id.clone()),
                Arg::Int(*d),
            ]
        })
        .collect();
    insert_many(
        tx,
        backend,
        "INSERT INTO stock_moves (location, sku, hlc_wall, hlc_counter, event_id, delta) VALUES",
        "ON CONFLICT DO NOTHING",
        move_rows,
    )
    .await?;
    // The latest count of every touched level, locked so concurrent HQ processes apply counts
    // and movements to one level one at a time.
    let mut latest: BTreeMap<StockKey, Option<StockClock>> = BTreeMap::new();
    let all_keys: Vec<&StockKey> = keys.iter().collect();
    for chunk in all_keys.chunks(200) {
        let mut marks = backend.marks();
        let tuples: Vec<String> = chunk.iter().map(|_| marks.tuple(2)).collect();
        let sql = format!(
            "SELECT location, sku, count_wall, count_counter, count_event FROM stock_levels WHERE (location, sku) IN (VALUES {}) ORDER BY location, sku{}",
            tuples.join(", "),
            backend.for_update()
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (l, s) in chunk {
            query = query.bind(l.clone()).bind(s.clone());
        }
        for row in query.fetch_all(&mut **tx).await? {
            let event: Option<String> = row.get("count_event");
            let clock = event.map(|e| {
                (
                    row.get::<Option<i64>, _>("count_wall").unwrap_or(0),
                    row.get::<Option<i64>, _>("count_counter").unwrap_or(0),
                    e,
                )
            });
            latest.insert((row.get("location"), row.get("sku")), clock);
        }
    }
    let mut deltas: BTreeMap<&StockKey, i64> = BTreeMap::new();
    for ((key, clock), delta) in moves {
        if counts.get(key).is_some_and(|(c, _)| {
            latest
                .get(key)
                .cloned()
                .flatten()
                .is_none_or(|held| *c > held)
        }) {
            // A newer count in this batch: the level is recomputed from it below.
            continue;
        }
        // A movement at or before the latest count is already in that count.
        if latest
            .get(key)
            .cloned()
            .flatten()
            .is_none_or(|held| *clock > held)
        {
            *deltas.entry(key).or_default() += delta;
        }
    }
    let delta_rows: Vec<(&StockKey, i64)> = deltas.into_iter().filter(|(_, d)| *d != 0).collect();
    for chunk in delta_rows.chunks(200) {
        let mut marks = backend.marks();
        let selects: Vec<String> = chunk
            .iter()
            .map(|_| marks.select(&["loc", "sku", "d"]))
            .collect();
        let sql = format!(
            "UPDATE stock_levels SET on_hand = stock_levels.on_hand + v.d FROM ({}) AS v WHERE stock_levels.location = v.loc AND stock_levels.sku = v.sku",
            selects.join(" UNION ALL ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for ((l, s), d) in chunk {
            query = query.bind(l.clone()).bind(s.clone()).bind(*d);
        }
        query.execute(&mut **tx).await?;
    }
    // A count sets on-hand as of its clock reading: the counted quantity plus every movement
    // recorded after it, whatever order they arrived in.
    for (key, ((wall, counter, id), counted)) in counts {
        sqlx::query(
            "UPDATE stock_levels SET on_hand = $1 + COALESCE((SELECT SUM(m.delta) FROM stock_moves m
                 WHERE m.location = $2 AND m.sku = $3 AND (m.hlc_wall, m.hlc_counter, m.event_id) > ($4, $5, $6)), 0),
               count_wall = $4, count_counter = $5, count_event = $6
             WHERE location = $2 AND sku = $3
             AND (count_event IS NULL OR (count_wall, count_counter, count_event) < ($4, $5, $6))",
        )
        .bind(*counted)
        .bind(key.0.as_str())
        .bind(key.1.as_str())
        .bind(*wall)
        .bind(*counter)
        .bind(id.as_str())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
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
        assert_eq!(business_hour(ms, "UTC"), 23);
        assert_eq!(business_hour(ms, "Europe/Vienna"), 0);
    }
}
