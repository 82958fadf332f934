//! Daily reconciliation of a store: for each shift closed on a business day, the events HQ
//! holds for the shift's sequences are folded again and compared with what the till said at
//! its close (the Z figures), the card terminal's movements with the card tenders, and the
//! counted cash with the expected. A day is `reconciled`, `with_differences` (each one a
//! finding), `incomplete` (naming the sequences HQ lacks, or a shift still open) or `open`
//! (the day, plus a grace period, has not ended in the store's time zone). It is computed from
//! the inbox whenever it is asked for, so late events are taken in as soon as they arrive.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use domain::card::{CardEvent, CardOutcome};
use domain::ledger::{Event, EventBody};
use domain::money::{Currency, Money, MoneyError};
use domain::sale::TenderKind;
use domain::shift::ShiftTally;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{ApiError, ApiResult, Hq, authorize_reader};
use crate::db::Db;
use crate::extract::Query;
use crate::identity::Scope;
use crate::now_ms;

/// How long after a business day ends (in the store's time zone) its reconciliation is due:
/// tills close their last shifts and sync.
pub const GRACE_MS: i64 = 2 * 3_600_000;

/// A difference reconciliation found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `cash_over_short`, `z_mismatch` or `card_difference`.
    pub kind: &'static str,
    /// The till.
    pub terminal: String,
    /// The shift.
    pub shift: String,
    /// What was expected (the till's figure, or the card tenders).
    pub expected: String,
    /// What was found (counted cash, the events' figure, the terminal's movements).
    pub actual: String,
    /// `actual − expected`.
    pub difference: String,
}

/// Sequences of a till HQ does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Missing {
    /// The till.
    pub terminal: String,
    /// First missing sequence.
    pub from_seq: u64,
    /// Last missing sequence.
    pub to_seq: u64,
}

/// A shift closed on the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShiftView {
    /// The till.
    pub terminal: String,
    /// The shift.
    pub shift: String,
    /// Its first and last sequence.
    pub from_seq: u64,
    /// Its last sequence (the close's `up_to_seq`).
    pub to_seq: u64,
    /// Whether HQ holds every event of it.
    pub complete: bool,
}

/// A store's business day, reconciled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayReport {
    /// The store.
    pub store: String,
    /// The day, `YYYY-MM-DD` in the store's time zone.
    pub day: String,
    /// `reconciled`, `with_differences`, `incomplete` or `open`.
    pub status: &'static str,
    /// The shifts closed on the day.
    pub shifts: Vec<ShiftView>,
    /// The differences.
    pub findings: Vec<Finding>,
    /// The sequences HQ lacks.
    pub missing: Vec<Missing>,
    /// Tills with events on the day after their last close (a shift not closed yet).
    pub open_shifts: Vec<String>,
}

/// What a till said when it closed a shift.
#[derive(Debug, Clone)]
pub struct Close {
    /// The shift.
    pub shift: String,
    /// The last sequence of the shift.
    pub up_to_seq: u64,
    /// Cash the till expected.
    pub expected: Money,
    /// Cash counted.
    pub counted: Money,
}

fn show(m: Money) -> String {
    m.amount_string()
}

/// The findings of one closed shift whose events (every one from its opening on) are
/// `events`: the events folded again against the till's expected cash, the counted cash
/// against the expected (beyond `tolerance`), and the card tenders against the card terminal's
/// approvals less its refunds.
pub fn check_shift(
    terminal: &str,
    close: &Close,
    events: &[Event],
    tolerance: Money,
) -> Result<Vec<Finding>, MoneyError> {
    let currency = close.expected.currency();
    let float = events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::ShiftOpened { shift, float, .. } if *shift == close.shift => Some(*float),
            _ => None,
        })
        .unwrap_or(Money::zero(currency));
    let mut tally = ShiftTally::new(float);
    let mut terminal_net = Money::zero(currency);
    for event in events {
        tally.add(event)?;
        if let EventBody::Card(CardEvent::RequestEnded { outcome, .. }) = &event.body {
            terminal_net = match outcome {
                CardOutcome::Approved(a) => terminal_net.checked_add(a.authorised)?,
                CardOutcome::Refunded { amount, .. } => terminal_net.checked_sub(*amount)?,
                _ => terminal_net,
            };
        }
    }
    let finding = |kind, expected: Money, actual: Money| -> Result<Finding, MoneyError> {
        Ok(Finding {
            kind,
            terminal: terminal.to_owned(),
            shift: close.shift.clone(),
            expected: show(expected),
            actual: show(actual),
            difference: show(actual.checked_sub(expected)?),
        })
    };
    let mut findings = Vec::new();
    let folded = tally.expected_cash()?;
    if folded != close.expected {
        findings.push(finding("z_mismatch", close.expected, folded)?);
    }
    let over = close.counted.checked_sub(close.expected)?;
    if over.minor().abs() > tolerance.minor() {
        findings.push(finding("cash_over_short", close.expected, close.counted)?);
    }
    let card = tally.tender_net(TenderKind::Card)?;
    if card != terminal_net {
        findings.push(finding("card_difference", card, terminal_net)?);
    }
    Ok(findings)
}

/// The ranges of `from..=to` that `held` (sorted) lacks.
fn missing_in(from: u64, to: u64, held: &[u64]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut next = from;
    for seq in held.iter().copied().filter(|s| (from..=to).contains(s)) {
        if seq > next {
            out.push((next, seq - 1));
        }
        next = seq + 1;
    }
    if next <= to {
        out.push((next, to));
    }
    out
}

/// Errors from reconciling.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// An event or amount HQ holds does not read.
    #[error("{0}")]
    Data(String),
}

impl From<MoneyError> for ReconcileError {
    fn from(e: MoneyError) -> Self {
        ReconcileError::Data(e.to_string())
    }
}

fn decode(body: &[u8]) -> Result<Event, ReconcileError> {
    protocol::event::decode(body).map_err(|e| ReconcileError::Data(e.to_string()))
}

/// Reconciles `store`'s business day `day` as HQ holds it at `now_ms`, with cash differences
/// up to `tolerance` (minor units of the store's currency) let through.
pub async fn reconcile(
    db: &Db,
    store: &str,
    day: jiff::civil::Date,
    tolerance_minor: i64,
    now_ms: i64,
) -> Result<DayReport, ReconcileError> {
    let payload: Option<Option<String>> =
        sqlx::query_scalar("SELECT payload FROM ref_entities WHERE kind = 'store' AND key = $1")
            .bind(store)
            .fetch_optional(&db.pool)
            .await?;
    let config = payload
        .flatten()
        .and_then(|p| serde_json::from_str::<protocol::seed::StoreDto>(&p).ok());
    let zone = config
        .as_ref()
        .and_then(|c| jiff::tz::TimeZone::get(&c.timezone).ok())
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let currency = config
        .as_ref()
        .and_then(|c| Currency::parse(&c.currency).ok())
        .unwrap_or(Currency::EUR);
    let bounds = |d: jiff::civil::Date| {
        d.to_zoned(zone.clone())
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| ReconcileError::Data(e.to_string()))
    };
    let start = bounds(day)?;
    let end = bounds(
        day.tomorrow()
            .map_err(|e| ReconcileError::Data(e.to_string()))?,
    )?;
    let tolerance = Money::from_minor(tolerance_minor, currency);
    let terminals: Vec<String> =
        sqlx::query_scalar("SELECT id FROM terminals WHERE store = $1 ORDER BY id")
            .bind(store)
            .fetch_all(&db.pool)
            .await?;
    let mut report = DayReport {
        store: store.to_owned(),
        day: day.to_string(),
        status: "reconciled",
        shifts: Vec::new(),
        findings: Vec::new(),
        missing: Vec::new(),
        open_shifts: Vec::new(),
    };
    for terminal in &terminals {
        // Every close of the till up to the day's end, for where each shift starts.
        let closes: Vec<(i64, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT seq, body, hlc_wall FROM inbox
             WHERE terminal = $1 AND kind = 'ShiftClosed' AND hlc_wall < $2 ORDER BY seq",
        )
        .bind(terminal)
        .bind(end)
        .fetch_all(&db.pool)
        .await?;
        let mut after_close = 0_u64;
        for (seq, body, wall) in closes {
            let close_seq = u64::try_from(seq).unwrap_or(0);
            let from = after_close + 1;
            after_close = close_seq;
            if wall < start {
                continue;
            }
            let EventBody::ShiftClosed {
                shift,
                up_to_seq,
                expected,
                counted,
                ..
            } = decode(&body)?.body
            else {
                continue;
            };
            let close = Close {
                shift,
                up_to_seq,
                expected,
                counted,
            };
            let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                "SELECT seq, body FROM inbox WHERE terminal = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq",
            )
            .bind(terminal)
            .bind(i64::try_from(from).unwrap_or(i64::MAX))
            .bind(i64::try_from(up_to_seq).unwrap_or(i64::MAX))
            .fetch_all(&db.pool)
            .await?;
            let held: Vec<u64> = rows
                .iter()
                .map(|(s, _)| u64::try_from(*s).unwrap_or(0))
                .collect();
            let gaps = missing_in(from, up_to_seq, &held);
            report.shifts.push(ShiftView {
                terminal: terminal.clone(),
                shift: close.shift.clone(),
                from_seq: from,
                to_seq: up_to_seq,
                complete: gaps.is_empty(),
            });
            if !gaps.is_empty() {
                report
                    .missing
                    .extend(gaps.into_iter().map(|(from_seq, to_seq)| Missing {
                        terminal: terminal.clone(),
                        from_seq,
                        to_seq,
                    }));
                continue;
            }
            let events = rows
                .iter()
                .map(|(_, body)| decode(body))
                .collect::<Result<Vec<_>, _>>()?;
            report
                .findings
                .extend(check_shift(terminal, &close, &events, tolerance)?);
        }
        // Money taken on the day after the till's last close: a shift still open.
        let later: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(seq) FROM inbox WHERE terminal = $1 AND seq > $2 AND hlc_wall >= $3 AND hlc_wall < $4
               AND kind IN ('SaleCompleted', 'ReturnCompleted', 'ShiftOpened', 'CashMovement')",
        )
        .bind(terminal)
        .bind(i64::try_from(after_close).unwrap_or(i64::MAX))
        .bind(start)
        .bind(end)
        .fetch_one(&db.pool)
        .await?;
        // A shift that closes on a later day is reconciled with that day; one that has not
        // closed at all (as HQ knows) leaves this day open.
        if let Some(last) = later {
            let closed_later: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM inbox WHERE terminal = $1 AND kind = 'ShiftClosed' AND seq > $2",
            )
            .bind(terminal)
            .bind(last)
            .fetch_one(&db.pool)
            .await?;
            if closed_later == 0 {
                report.open_shifts.push(terminal.clone());
            }
        }
    }
    report.status = if now_ms < end + GRACE_MS {
        "open"
    } else if !report.missing.is_empty() || !report.open_shifts.is_empty() {
        "incomplete"
    } else if !report.findings.is_empty() {
        "with_differences"
    } else {
        "reconciled"
    };
    Ok(report)
}

/// [`reconcile`] now, recorded in the audit log as read by `reader` (the day shows cash and
/// card totals).
pub(crate) async fn recorded(
    db: &Db,
    reader: &str,
    store: &str,
    day: jiff::civil::Date,
    tolerance_minor: i64,
) -> Result<DayReport, ReconcileError> {
    let report = reconcile(db, store, day, tolerance_minor, now_ms()).await?;
    let asked = json!({"day": report.day, "status": report.status});
    crate::identity::record_read(
        db,
        reader,
        "reconciliation.read",
        &format!("store:{store}"),
        &asked,
    )
    .await?;
    Ok(report)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DayQuery {
    store: Option<String>,
    day: Option<String>,
    tolerance: Option<String>,
}

/// `GET /v1/reconciliation?store=S&day=YYYY-MM-DD[&tolerance=0.50]`: the store's day,
/// reconciled now. Each answer is a line of the audit log (it shows cash and card totals).
pub(crate) async fn read_day(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(q): Query<DayQuery>,
) -> ApiResult<Json<Value>> {
    let store = q.store.filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", "name the store").at("store")
    })?;
    let reader = authorize_reader(&hq, &headers, Scope::ReportsRead, Some(&store)).await?;
    let day: jiff::civil::Date = q.day.as_deref().unwrap_or_default().parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "the day is a date, YYYY-MM-DD",
        )
        .at("day")
    })?;
    let tolerance = match q.tolerance.as_deref().filter(|t| !t.is_empty()) {
        None => 0,
        Some(text) => Money::parse_major(text, Currency::EUR)
            .ok()
            .filter(|m| !m.is_negative())
            .map(|m| m.minor())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    format!("`{text}` is not an amount (0.50)"),
                )
                .at("tolerance")
            })?,
    };
    let report = recorded(&hq.db, &reader, &store, day, tolerance)
        .await
        .map_err(|e| match e {
            ReconcileError::Db(e) => e.into(),
            ReconcileError::Data(m) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m)
            }
        })?;
    Ok(Json(json!(report)))
}

/// Marks the store-days `days` (store, `YYYY-MM-DD`) as due for reconciliation: events of
/// theirs were just applied.
pub(crate) async fn mark_due(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    days: &std::collections::BTreeSet<(String, String)>,
) -> Result<(), sqlx::Error> {
    for (store, day) in days {
        sqlx::query(
            "INSERT INTO reconcile_due (store, day, marks) VALUES ($1, $2, 1)
             ON CONFLICT (store, day) DO UPDATE SET marks = reconcile_due.marks + 1",
        )
        .bind(store)
        .bind(day)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The differences kept for the exceptions inbox: the till's own fold and the card terminal's
/// (a day's counted cash is its own kind of exception, with its own tolerance).
const KEPT: [&str; 2] = ["z_mismatch", "card_difference"];

/// Reconciles, at `now_ms`, up to `limit` due store-days whose grace has ended, keeping the
/// differences of each in place of what an earlier run kept. Answers how many it reconciled.
pub async fn sweep(db: &Db, now_ms: i64, limit: usize) -> Result<usize, ReconcileError> {
    let due: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT store, day, marks FROM reconcile_due ORDER BY day, store")
            .fetch_all(&db.pool)
            .await?;
    let mut done = 0;
    for (store, day, marks) in due {
        if done == limit {
            break;
        }
        let Ok(date) = day.parse::<jiff::civil::Date>() else {
            // Not a day (an event with a clock no calendar holds): nothing to reconcile.
            forget(db, &store, &day, marks).await?;
            continue;
        };
        let report = match reconcile(db, &store, date, 0, now_ms).await {
            Ok(report) => report,
            // A day whose events do not read stays due (and named in the log); the others go on.
            Err(ReconcileError::Data(e)) => {
                tracing::warn!(store, day, error = %e, "a due day did not reconcile");
                continue;
            }
            Err(e) => return Err(e),
        };
        if report.status == "open" {
            continue;
        }
        let currency: Option<String> =
            sqlx::query_scalar("SELECT currency FROM sales_daily WHERE store = $1 AND day = $2")
                .bind(&store)
                .bind(&day)
                .fetch_optional(&db.pool)
                .await?;
        let (_guard, mut tx) = db.begin_write().await?;
        sqlx::query("DELETE FROM reconciliation_findings WHERE store = $1 AND day = $2")
            .bind(&store)
            .bind(&day)
            .execute(&mut *tx)
            .await?;
        for f in report.findings.iter().filter(|f| KEPT.contains(&f.kind)) {
            sqlx::query(
                "INSERT INTO reconciliation_findings (store, day, kind, terminal, shift, currency, expected, actual, difference)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            )
            .bind(&store)
            .bind(&day)
            .bind(f.kind)
            .bind(&f.terminal)
            .bind(&f.shift)
            .bind(currency.as_deref().unwrap_or_default())
            .bind(&f.expected)
            .bind(&f.actual)
            .bind(&f.difference)
            .execute(&mut *tx)
            .await?;
        }
        forget_within(&mut tx, &store, &day, marks).await?;
        tx.commit().await?;
        done += 1;
    }
    Ok(done)
}

/// No longer due, unless events marked the day again since it was read with `marks`.
async fn forget(db: &Db, store: &str, day: &str, marks: i64) -> Result<(), sqlx::Error> {
    let (_guard, mut tx) = db.begin_write().await?;
    forget_within(&mut tx, store, day, marks).await?;
    tx.commit().await
}

async fn forget_within(
    tx: &mut sqlx::AnyConnection,
    store: &str,
    day: &str,
    marks: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM reconcile_due WHERE store = $1 AND day = $2 AND marks = $3")
        .bind(store)
        .bind(day)
        .bind(marks)
        .execute(tx)
        .await?;
    Ok(())
}

/// Sweeps the due days in the background: at once while some are ready, then every 30 s.
pub(crate) async fn keep_up(db: Db) {
    loop {
        match sweep(&db, now_ms(), 50).await {
            Ok(50) => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reconciliation sweep failed"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::missing_in;

    #[test]
    fn missing_ranges_are_named_from_first_to_last() {
        assert_eq!(
            missing_in(1, 10, &[1, 2, 5, 6, 9]),
            [(3, 4), (7, 8), (10, 10)]
        );
        assert_eq!(missing_in(3, 4, &[1, 2, 3, 4, 5]), []);
        assert_eq!(missing_in(1, 3, &[]), [(1, 3)]);
    }
}
