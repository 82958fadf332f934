//! The exceptions inbox: what needs a person's eye — stock gone negative, a batch HQ parked,
//! sequences missing from a till's ledger, a card declined after the customer left with an
//! offline approval, a gift card redeemed below zero offline, a day's counted cash off by more
//! than the tolerance, a shift whose events or card terminal disagree with what the till said at
//! its close (kept by the daily reconciliation), a till silent for too long, an order from the
//! web its store cannot cover or handed over after it was cancelled — found in HQ's
//! projections when asked, each with what people said of it (acknowledged or resolved, with a
//! note, who and when). Saying something of one is a line of the audit log.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::quantity::format_signed_milli;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;

use crate::api::{Access, ApiError, ApiResult, Hq, authorize, authorize_reader};
use crate::db::Db;
use crate::extract::{Path, Query};
use crate::identity::{Audit, Scope};
use crate::now_ms;
use crate::writes;

/// A till not heard from for longer is an exception.
pub const SILENT_MS: i64 = 24 * 3_600_000;

/// A business day whose counted cash differs from the expected by more is an exception (in
/// minor units of the store's currency: 5.00).
pub const CASH_TOLERANCE_MINOR: i64 = 500;

/// How far back cash differences are looked for, in days.
const CASH_DAYS: i64 = 90;

/// The kinds of exception.
pub const KINDS: [&str; 14] = [
    "negative_stock",
    "parked_batch",
    "sequence_gap",
    "card_declined",
    "stored_value_overdrawn",
    "cash_over_short",
    "z_mismatch",
    "card_difference",
    "silent_till",
    "stock_conflict",
    "order_conflict",
    "returned_twice",
    "fiscal_device_out",
    "sequences_lost",
];

/// An exception and what was said of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exception {
    /// One of [`KINDS`].
    pub kind: &'static str,
    /// Which one: `location|sku`, the parked record's id, `terminal|from-to`, `terminal|service
    /// id`, the redemption's event id, `store|day`, `terminal|shift` (reconciliation), the till,
    /// `terminal|from-to@detected_ms` (sequences lost).
    pub key: String,
    /// The store it concerns.
    pub store: String,
    /// What it is, for people.
    pub summary: String,
    /// `open`, `acknowledged` or `resolved`.
    pub state: String,
    /// What was said of it.
    pub note: Option<String>,
    /// Who said it.
    pub by: Option<String>,
    /// When (epoch ms).
    pub at_ms: Option<i64>,
}

/// Every exception HQ finds now, of `stores` (all when `None`), with what was said of it.
pub async fn exceptions(db: &Db, stores: Option<&[String]>) -> Result<Vec<Exception>, sqlx::Error> {
    let mut found: Vec<(&'static str, String, String, String)> = Vec::new();
    let rows = sqlx::query(
        "SELECT location, sku, on_hand FROM stock_levels WHERE on_hand < 0 ORDER BY location, sku",
    )
    .fetch_all(&db.pool)
    .await?;
    for r in rows {
        let (location, sku, on_hand): (String, String, i64) =
            (r.get("location"), r.get("sku"), r.get("on_hand"));
        found.push((
            "negative_stock",
            format!("{location}|{sku}"),
            location.clone(),
            format!(
                "{sku} at {location}: {}",
                domain::quantity::format_signed_milli(on_hand)
            ),
        ));
    }
    let rows = sqlx::query("SELECT id, store, terminal, code, reason FROM parked ORDER BY id")
        .fetch_all(&db.pool)
        .await?;
    for r in rows {
        let id: i64 = r.get("id");
        let terminal: String = r.get("terminal");
        let code: String = r.get("code");
        let reason: String = r.get("reason");
        found.push((
            "parked_batch",
            id.to_string(),
            r.get("store"),
            format!(
                "{terminal}: {code}: {}",
                reason.chars().take(200).collect::<String>()
            ),
        ));
    }
    let rows = sqlx::query(
        "SELECT store, terminal, service_id, receipt, currency, amount_minor FROM card_declines ORDER BY declined_ms",
    )
    .fetch_all(&db.pool)
    .await?;
    for r in rows {
        let terminal: String = r.get("terminal");
        let service: String = r.get("service_id");
        let receipt: Option<String> = r.get("receipt");
        let amount = domain::Currency::parse(&r.get::<String, _>("currency"))
            .map(|c| domain::Money::from_minor(r.get("amount_minor"), c).to_string())
            .unwrap_or_default();
        found.push((
            "card_declined",
            format!("{terminal}|{service}"),
            r.get("store"),
            format!(
                "{terminal}: {amount} declined after an offline approval (receipt {})",
                receipt.unwrap_or_default()
            ),
        ));
    }
    for till in crate::api::terminal_states(db).await? {
        for (from, to) in &till.gaps {
            found.push((
                "sequence_gap",
                format!("{}|{from}-{to}", till.id),
                till.store.clone(),
                format!(
                    "{}: sequences {from} to {to} missing, {} events held beyond them",
                    till.id, till.held_beyond_gaps
                ),
            ));
        }
    }
    let rows = sqlx::query(
        "SELECT m.event_id, m.number, m.store, m.terminal, a.currency, m.balance_after_minor
         FROM stored_value_moves m JOIN stored_value_accounts a ON a.number = m.number
         WHERE m.kind = 'redemption' AND m.balance_after_minor < 0
         ORDER BY m.hlc_wall, m.terminal, m.seq",
    )
    .fetch_all(&db.pool)
    .await?;
    for r in rows {
        let number: String = r.get("number");
        let terminal: String = r.get("terminal");
        let currency: String = r.get("currency");
        // The account's number is a bearer's secret: the inbox shows its last four.
        let tail: String = number
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        found.push((
            "stored_value_overdrawn",
            r.get("event_id"),
            r.get("store"),
            format!(
                "{terminal}: card …{tail} redeemed offline below zero: balance {} {currency}",
                crate::stored_value::money(r.get("balance_after_minor"), &currency)
            ),
        ));
    }
    let since = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(24 * CASH_DAYS))
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let rows = sqlx::query(
        "SELECT store, day, currency, cash_expected_minor, cash_counted_minor FROM sales_daily
         WHERE day >= $1 AND shifts_closed > 0 AND ABS(cash_counted_minor - cash_expected_minor) > $2
         ORDER BY day, store",
    )
    .bind(&since)
    .bind(CASH_TOLERANCE_MINOR)
    .fetch_all(&db.pool)
    .await?;
    for r in rows {
        let (store, day, currency): (String, String, String) =
            (r.get("store"), r.get("day"), r.get("currency"));
        let difference =
            r.get::<i64, _>("cash_counted_minor") - r.get::<i64, _>("cash_expected_minor");
        found.push((
            "cash_over_short",
            format!("{store}|{day}"),
            store.clone(),
            format!(
                "{store} on {day}: counted cash {} {currency} against the expected",
                crate::stored_value::money(difference, &currency)
            ),
        ));
    }
    let rows = sqlx::query(
        "SELECT store, day, kind, terminal, shift, currency, expected, actual, difference
         FROM reconciliation_findings ORDER BY day, store, terminal, kind",
    )
    .fetch_all(&db.pool)
    .await?;
    for r in rows {
        let kind: String = r.get("kind");
        let Some(kind) = KINDS.iter().copied().find(|k| *k == kind) else {
            continue;
        };
        let (terminal, shift, currency): (String, String, String) =
            (r.get("terminal"), r.get("shift"), r.get("currency"));
        let what = if kind == "z_mismatch" {
            "the events HQ holds come to"
        } else {
            "the card terminal's approvals come to"
        };
        found.push((
            kind,
            format!("{terminal}|{shift}"),
            r.get("store"),
            format!(
                "{terminal}, shift {shift} of {}: the till said {} {currency}, {what} {} {currency} (difference {} {currency})",
                r.get::<String, _>("day"),
                r.get::<String, _>("expected"),
                r.get::<String, _>("actual"),
                r.get::<String, _>("difference"),
            ),
        ));
    }
    let rows = sqlx::query(
        "SELECT l.terminal_id, t.store, l.from_seq, l.to_seq, l.detected_ms FROM lost_sequences l JOIN terminals t ON t.id = l.terminal_id ORDER BY l.detected_ms, l.terminal_id",
    )
    .fetch_all(&db.pool)
    .await?;
    for r in rows {
        let terminal: String = r.get("terminal_id");
        let (from, to, at): (i64, i64, i64) =
            (r.get("from_seq"), r.get("to_seq"), r.get("detected_ms"));
        found.push((
            "sequences_lost",
            format!("{terminal}|{from}-{to}@{at}"),
            r.get("store"),
            format!(
                "{terminal}: sequences {from} to {to} were written at the store but never reached HQ, and its ledger came back without them (a replaced PC, an older backup): those events are lost, and the till's new events take their numbers again"
            ),
        ));
    }
    let now = now_ms();
    let rows = sqlx::query("SELECT id, store, last_contact_ms FROM terminals ORDER BY id")
        .fetch_all(&db.pool)
        .await?;
    for r in rows {
        let last: Option<i64> = r.get("last_contact_ms");
        if let Some(last) = last.filter(|l| now - l > SILENT_MS) {
            let id: String = r.get("id");
            found.push((
                "silent_till",
                id.clone(),
                r.get("store"),
                format!("{id}: silent for {} hours", (now - last) / 3_600_000),
            ));
        }
    }
    let rows = sqlx::query(
        "SELECT number, store, status, exception FROM orders WHERE exception IS NOT NULL ORDER BY created_ms",
    )
    .fetch_all(&db.pool)
    .await?;
    for r in rows {
        let number: String = r.get("number");
        let status: String = r.get("status");
        match r.get::<String, _>("exception").as_str() {
            "stock_conflict" if ["placed", "picked", "ready"].contains(&status.as_str()) => {
                found.push((
                    "stock_conflict",
                    number.clone(),
                    r.get("store"),
                    format!("order {number}: the store has fewer than its open orders hold (sold at a till)"),
                ));
            }
            "order_conflict" => found.push((
                "order_conflict",
                number.clone(),
                r.get("store"),
                format!(
                    "order {number}: the store handed it over or shipped it after it was cancelled"
                ),
            )),
            _ => {}
        }
    }
    let mut conn = db.pool.acquire().await?;
    for (receipt, store, sku, sold, back) in crate::returns::returned_twice(&mut conn).await? {
        found.push((
            "returned_twice",
            format!("{receipt}|{sku}"),
            store,
            format!(
                "sale {receipt}: {} of `{sku}` taken back at a till and through the web shop, {} sold (a till returned it while its store did not know of the web return)",
                format_signed_milli(back),
                format_signed_milli(sold)
            ),
        ));
    }
    drop(conn);
    for (terminal, store, since) in crate::fiscal::long_outages(db, now).await? {
        found.push((
            "fiscal_device_out",
            terminal.clone(),
            store,
            format!(
                "{terminal}: the signature device has been out for {} hours (since {}): report the outage to the tax office and mend or replace the device",
                (now - since) / 3_600_000,
                jiff::Timestamp::from_millisecond(since).map_or_else(|_| since.to_string(), |t| t.to_string())
            ),
        ));
    }
    let said: Vec<(String, String, String, String, String, i64)> =
        sqlx::query_as("SELECT kind, key, state, note, by_actor, at_ms FROM exception_states")
            .fetch_all(&db.pool)
            .await?;
    let said: BTreeMap<(String, String), (String, String, String, i64)> = said
        .into_iter()
        .map(|(kind, key, state, note, by, at)| ((kind, key), (state, note, by, at)))
        .collect();
    Ok(found
        .into_iter()
        .filter(|(_, _, store, _)| stores.is_none_or(|s| s.contains(store)))
        .map(|(kind, key, store, summary)| {
            let state = said.get(&(kind.to_owned(), key.clone()));
            Exception {
                kind,
                store,
                summary,
                state: state.map_or_else(|| "open".to_owned(), |s| s.0.clone()),
                note: state.map(|s| s.1.clone()),
                by: state.map(|s| s.2.clone()),
                at_ms: state.map(|s| s.3),
                key,
            }
        })
        .collect())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    store: Option<String>,
    state: Option<String>,
}

/// `GET /v1/exceptions?store=…&state=open|acknowledged|resolved|all`: the inbox (default: what
/// is not resolved).
pub(crate) async fn list(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let store = q.store.filter(|s| !s.is_empty());
    authorize_reader(&hq, &headers, Scope::ReportsRead, store.as_deref()).await?;
    let state = q.state.unwrap_or_default();
    if !["", "open", "acknowledged", "resolved", "all"].contains(&state.as_str()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("state is open, acknowledged, resolved or all, not `{state}`"),
        )
        .at("state"));
    }
    let stores = store.map(|s| vec![s]);
    let all = exceptions(&hq.db, stores.as_deref()).await?;
    let shown: Vec<&Exception> = all
        .iter()
        .filter(|e| match state.as_str() {
            "" => e.state != "resolved",
            "all" => true,
            s => e.state == s,
        })
        .collect();
    Ok(Json(json!({ "exceptions": shown })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Said {
    state: String,
    note: String,
}

/// `PUT /v1/exceptions/{kind}/{key}` with `{state: acknowledged|resolved, note}`: says something
/// of an exception HQ finds now; recorded in the audit log with what was said before.
pub(crate) async fn say(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path((kind, key)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Response> {
    // The store is known only once the exception is found: a store manager is checked then,
    // and the body is read only after the caller is.
    let all = exceptions(&hq.db, None).await?;
    let Some(found) = all.iter().find(|e| e.kind == kind && e.key == key) else {
        authorize(&hq, &headers, Scope::ExceptionsWrite, None, Access::Write).await?;
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no {kind} exception `{key}` now"),
        )
        .at("key"));
    };
    let actor = authorize(
        &hq,
        &headers,
        Scope::ExceptionsWrite,
        Some(&found.store),
        Access::Write,
    )
    .await?;
    let (said, bytes): (Said, _) = writes::json_body(&headers, body).await?;
    let key_for = match writes::idempotency(
        &hq,
        &headers,
        &actor,
        &[
            b"PUT /v1/exceptions/",
            kind.as_bytes(),
            b"/",
            key.as_bytes(),
            &bytes,
        ],
    )
    .await?
    {
        Ok(k) => k,
        Err(answer) => return Ok(answer),
    };
    if !["acknowledged", "resolved"].contains(&said.state.as_str()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            format!("state is acknowledged or resolved, not `{}`", said.state),
        )
        .at("state"));
    }
    let note = said.note.trim();
    if note.is_empty() || note.chars().count() > 1000 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "a note of 1 to 1000 characters says why",
        )
        .at("note"));
    }
    let now = now_ms();
    let (_guard, mut tx) = hq.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO exception_states (kind, key, state, note, by_actor, at_ms) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (kind, key) DO UPDATE SET state = excluded.state, note = excluded.note, by_actor = excluded.by_actor, at_ms = excluded.at_ms",
    )
    .bind(&kind)
    .bind(&key)
    .bind(&said.state)
    .bind(note)
    .bind(&actor)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let answer = json!(Exception {
        state: said.state.clone(),
        note: Some(note.to_owned()),
        by: Some(actor.clone()),
        at_ms: Some(now),
        ..found.clone()
    });
    let target = format!("exception:{kind}:{key}");
    let before = json!({"state": found.state, "note": found.note}).to_string();
    let after = json!({"state": said.state, "note": note}).to_string();
    Audit {
        at_ms: now,
        actor: &actor,
        source: None,
        action: if said.state == "resolved" {
            "exception.resolve"
        } else {
            "exception.acknowledge"
        },
        target: Some(&target),
        before: Some(&before),
        after: Some(&after),
    }
    .append(&mut tx)
    .await?;
    writes::remember(&key_for, &mut tx, StatusCode::OK, &answer, now).await?;
    tx.commit().await?;
    Ok(Json(answer).into_response())
}
