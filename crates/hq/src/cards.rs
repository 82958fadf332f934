//! Card payments at HQ: the stores' card events projected into every payment request with its
//! outcome and offline settlement, the read API for offline approvals still pending per store
//! (with their age), and the exceptions raised when an offline approval was declined after the
//! customer left (with the sale's receipt, the cashier and the amount).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use domain::card::{CardEvent, CardOutcome};
use domain::ledger::{Event, EventBody};
use domain::{Currency, Money};
use serde_json::{Value, json};
use sqlx::any::Any;
use sqlx::{Row, Transaction};

use crate::api::{ApiResult, Hq, authorize_reader};
use crate::identity::Scope;

/// Applies the card events among `events` (inside the ingest transaction).
pub(crate) async fn apply(
    tx: &mut Transaction<'_, Any>,
    events: &[&Event],
) -> Result<(), sqlx::Error> {
    for event in events {
        let EventBody::Card(card) = &event.body else {
            continue;
        };
        let store = event.meta.store.as_str();
        let terminal = event.meta.terminal.as_str();
        let at = event.meta.hlc.wall_ms();
        match card {
            CardEvent::RequestStarted(s) => {
                sqlx::query(
                    "INSERT INTO card_payments (store, terminal, service_id, sale, shift, currency, requested_minor, started_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                )
                .bind(store)
                .bind(terminal)
                .bind(s.service_id.as_str())
                .bind(s.sale.as_str())
                .bind(s.shift.clone())
                .bind(s.amount.currency().code())
                .bind(s.amount.minor())
                .bind(at)
                .execute(&mut **tx)
                .await?;
            }
            CardEvent::RequestEnded {
                service_id,
                outcome,
            } => {
                let (poi, authorised, settlement) = match outcome {
                    CardOutcome::Approved(a) => (
                        Some(a.poi_transaction_id.clone()),
                        Some(a.authorised.minor()),
                        Some(if a.offline { "pending" } else { "online" }),
                    ),
                    CardOutcome::Refunded {
                        poi_transaction_id,
                        amount,
                    } => (Some(poi_transaction_id.clone()), Some(amount.minor()), None),
                    _ => (None, None, None),
                };
                sqlx::query(
                    "UPDATE card_payments SET outcome = $1, poi = $2, authorised_minor = $3, settlement = $4
                     WHERE terminal = $5 AND service_id = $6",
                )
                .bind(outcome.as_str())
                .bind(poi)
                .bind(authorised)
                .bind(settlement.map(str::to_owned))
                .bind(terminal)
                .bind(service_id.as_str())
                .execute(&mut **tx)
                .await?;
            }
            CardEvent::OfflineSettled { service_id, .. } => {
                settle(tx, terminal, service_id, "settled").await?;
            }
            CardEvent::OfflineDeclined {
                service_id,
                poi_transaction_id,
                receipt,
                cashier,
                amount,
            } => {
                settle(tx, terminal, service_id, "declined").await?;
                sqlx::query(
                    "INSERT INTO card_declines (store, terminal, service_id, poi, receipt, cashier, currency, amount_minor, declined_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                )
                .bind(store)
                .bind(terminal)
                .bind(service_id.as_str())
                .bind(poi_transaction_id.as_str())
                .bind(receipt.clone())
                .bind(cashier.as_ref().map(ToString::to_string))
                .bind(amount.currency().code())
                .bind(amount.minor())
                .bind(at)
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    Ok(())
}

async fn settle(
    tx: &mut Transaction<'_, Any>,
    terminal: &str,
    service_id: &str,
    settlement: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE card_payments SET settlement = $1 WHERE terminal = $2 AND service_id = $3")
        .bind(settlement)
        .bind(terminal)
        .bind(service_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn amount(minor: i64, currency: &str) -> String {
    Currency::parse(currency).map_or_else(
        |_| minor.to_string(),
        |c| Money::from_minor(minor, c).amount_string(),
    )
}

/// Offline card approvals not yet settled, oldest first, with their age, and a summary per
/// store.
pub(crate) async fn pending(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize_reader(&hq, &headers, Scope::ReportsRead, None).await?;
    let rows = sqlx::query(
        "SELECT store, terminal, service_id, sale, currency, authorised_minor, started_ms FROM card_payments
         WHERE settlement = 'pending' ORDER BY started_ms, terminal, service_id",
    )
    .fetch_all(&hq.db.pool)
    .await?;
    let now = crate::now_ms();
    let mut per_store: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let pending: Vec<Value> = rows
        .iter()
        .map(|r| {
            let store: String = r.get("store");
            let age = (now - r.get::<i64, _>("started_ms")).max(0) / 1000;
            let slot = per_store.entry(store.clone()).or_default();
            slot.0 += 1;
            slot.1 = slot.1.max(age);
            let currency: String = r.get("currency");
            json!({
                "store": store,
                "terminal": r.get::<String, _>("terminal"),
                "service_id": r.get::<String, _>("service_id"),
                "sale": r.get::<String, _>("sale"),
                "amount": amount(r.get::<Option<i64>, _>("authorised_minor").unwrap_or(0), &currency),
                "currency": currency,
                "age_secs": age,
            })
        })
        .collect();
    let stores: Vec<Value> = per_store
        .into_iter()
        .map(|(store, (count, oldest))| {
            json!({"store": store, "count": count, "oldest_age_secs": oldest})
        })
        .collect();
    Ok(Json(json!({"pending": pending, "stores": stores})))
}

/// Offline approvals declined later: sale receipt, cashier, amount.
pub(crate) async fn declines(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize_reader(&hq, &headers, Scope::ReportsRead, None).await?;
    let rows = sqlx::query(
        "SELECT store, terminal, service_id, poi, receipt, cashier, currency, amount_minor, declined_ms FROM card_declines
         ORDER BY declined_ms, terminal, service_id",
    )
    .fetch_all(&hq.db.pool)
    .await?;
    let declines: Vec<Value> = rows
        .iter()
        .map(|r| {
            let currency: String = r.get("currency");
            json!({
                "store": r.get::<String, _>("store"),
                "terminal": r.get::<String, _>("terminal"),
                "receipt": r.get::<Option<String>, _>("receipt"),
                "cashier": r.get::<Option<String>, _>("cashier"),
                "amount": amount(r.get("amount_minor"), &currency),
                "currency": currency,
                "poi_transaction_id": r.get::<String, _>("poi"),
                "service_id": r.get::<String, _>("service_id"),
                "declined_ms": r.get::<i64, _>("declined_ms"),
            })
        })
        .collect();
    Ok(Json(json!({"card_declines": declines})))
}
