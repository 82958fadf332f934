//! Returns through the web shop of what was sold in a store.
//!
//! A customer who bought at a till may send the goods back through the web shop. The shop asks
//! HQ with the sale's receipt number (`POST /v1/returns`); HQ checks the lines against what the
//! sale sold less what came back before — at a till (the `ReturnCompleted` events HQ holds) or
//! through the web — and prices the refund with the till's own arithmetic
//! (`domain::sale::price_return`), so the shop refunds exactly the returned lines' share of
//! what was charged. The money is the shop's to give back; no store's drawer sees it.
//!
//! HQ never moves stock itself: the return is a `web-return` entity on the reference change
//! log, routed to the store that sold the goods (whose tills may then return only what is left)
//! and to the store they are sent back to, which receives them on its ledger
//! (`ReturnReceived`): the goods go back into stock there, and ingest marks the return
//! received. A till that returned the same goods while its store was offline is not refused
//! (a store never refuses its customers); the receipt is then returned more than it sold, an
//! exception in the back office (`returned_twice`).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::ledger::{Event, EventBody};
use domain::quantity::{Quantity, format_signed_milli};
use protocol::sync::{WEB_RETURN_KIND, WebReturnEntity, WebReturnLine};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{Any, Row, Transaction};

use crate::api::{Access, ApiError, ApiResult, Hq, authorize};
use crate::availability::invalid;
use crate::db::{Arg, Backend, insert_many};
use crate::extract::{Path, Query};
use crate::identity::Scope;
use crate::now_ms;
use crate::orders::{conflict, text};
use crate::writes;

/// Lines one return may name.
pub const MAX_LINES: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewReturnLine {
    sku: String,
    quantity: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewReturn {
    /// The receipt number of the sale (`T1-000042`).
    receipt: String,
    lines: Vec<NewReturnLine>,
    /// The store the goods are sent back to; the selling store when left out.
    #[serde(default)]
    receive_at: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    /// The shop's own id of the return.
    #[serde(default)]
    reference: Option<String>,
}

/// One line of a receipt as HQ holds it.
struct SoldLine {
    line: usize,
    sku: String,
    sold: i64,
    /// Taken back at tills and through the web.
    back: i64,
}

/// The return as answered: its entity with decimals, plus HQ's own columns.
async fn view(conn: &mut sqlx::AnyConnection, id: &str) -> Result<Option<Value>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT payload, reason, reference, received_ms FROM web_returns WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let Ok(entity) = serde_json::from_str::<WebReturnEntity>(row.get::<&str, _>("payload")) else {
        return Ok(None);
    };
    let refund = domain::Currency::parse(&entity.currency)
        .map(|c| domain::Money::from_minor(entity.refund_minor, c).amount_string())
        .ok();
    Ok(Some(json!({
        "id": entity.id,
        "number": entity.number,
        "receipt": entity.sale_receipt,
        "sale_store": entity.sale_store,
        "receive_at": entity.receive_at,
        "status": entity.status,
        "currency": entity.currency,
        "refund_due": refund,
        "lines": entity.lines.iter().map(|l| json!({
            "line": l.line,
            "sku": l.sku,
            "name": l.name,
            "quantity": format_signed_milli(l.quantity),
        })).collect::<Vec<_>>(),
        "reason": row.get::<Option<String>, _>("reason"),
        "reference": row.get::<Option<String>, _>("reference"),
        "created_ms": entity.created_ms,
        "received_ms": row.get::<Option<i64>, _>("received_ms"),
    })))
}

/// Writes the return's state, publishes it to the stores concerned (a new reference version)
/// and tells the webhooks `return.<event>`.
async fn publish(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    entity: &WebReturnEntity,
    event: &'static str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let payload = serde_json::to_string(entity).unwrap_or_default();
    sqlx::query("UPDATE web_returns SET payload = $1, status = $2, updated_ms = $3 WHERE id = $4")
        .bind(&payload)
        .bind(&entity.status)
        .bind(now)
        .bind(&entity.id)
        .execute(&mut *conn)
        .await?;
    let version =
        crate::refdata::publish_entity(conn, backend, WEB_RETURN_KIND, &entity.id, payload).await?;
    let data = view(conn, &entity.id).await?.unwrap_or(Value::Null);
    crate::webhooks::emit(
        conn,
        now,
        vec![crate::webhooks::Event {
            kind: event,
            resource: format!("return:{}", entity.number),
            data,
        }],
    )
    .await?;
    Ok(version)
}

/// The lines of receipt `receipt` with what came back of each, its store, terminal and
/// sequence, and whether it was voided; `None` when HQ holds no such sale.
async fn sold_lines(
    conn: &mut sqlx::AnyConnection,
    receipt: &str,
) -> Result<Option<(String, String, i64, bool, Vec<SoldLine>)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT r.line, r.store, r.terminal, r.seq, r.sku, r.sold, r.returned, r.voided,
                CAST(COALESCE((SELECT SUM(w.quantity) FROM web_return_lines w WHERE w.receipt = r.receipt AND w.line = r.line), 0) AS BIGINT) AS web
         FROM receipt_lines r WHERE r.receipt = $1 ORDER BY r.line",
    )
    .bind(receipt)
    .fetch_all(&mut *conn)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let head = (
        first.get::<String, _>("store"),
        first.get::<String, _>("terminal"),
        first.get::<i64, _>("seq"),
        first.get::<i64, _>("voided") != 0,
    );
    let lines = rows
        .iter()
        .map(|r| SoldLine {
            line: usize::try_from(r.get::<i64, _>("line")).unwrap_or(usize::MAX),
            sku: r.get("sku"),
            sold: r.get("sold"),
            back: r.get::<i64, _>("returned") + r.get::<i64, _>("web"),
        })
        .collect();
    Ok(Some((head.0, head.1, head.2, head.3, lines)))
}

/// `POST /v1/returns` (`orders:write`): an in-store sale returned through the web shop, by its
/// receipt number. Each line (a SKU and a quantity) is taken from the receipt's lines of that
/// SKU in order; more than the sale sold less what came back before is `409 more_than_sold`
/// at the line. Answers the return with the refund the shop owes (`refund_due`). Idempotent
/// with `Idempotency-Key`.
pub(crate) async fn create(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    authorize(&hq, &headers, Scope::OrdersWrite, None, Access::Write).await?;
    let (asked, bytes): (NewReturn, _) = writes::json_body(&headers, body).await?;
    text("receipt", Some(&asked.receipt), 100, true)?;
    text("reason", asked.reason.as_deref(), 500, false)?;
    text("reference", asked.reference.as_deref(), 200, false)?;
    if asked.lines.is_empty() || asked.lines.len() > MAX_LINES {
        return Err(invalid("lines", format!("1 to {MAX_LINES} lines")));
    }
    let receipt = asked.receipt.trim().to_owned();
    let mut conn = hq.db.pool.acquire().await?;
    let Some((sale_store, ..)) = sold_lines(&mut conn, &receipt).await? else {
        return Err(invalid(
            "receipt",
            format!(
                "HQ holds no sale `{}` (a sale reaches HQ when its store syncs: try again once it is online)",
                crate::api::echo(&receipt)
            ),
        ));
    };
    drop(conn);
    let actor = authorize(
        &hq,
        &headers,
        Scope::OrdersWrite,
        Some(&sale_store),
        Access::Write,
    )
    .await?;
    let key =
        match writes::idempotency(&hq, &headers, &actor, &[b"POST /v1/returns ", &bytes]).await? {
            Ok(key) => key,
            Err(answer) => return Ok(answer),
        };
    let now = now_ms();
    let (_guard, mut tx) = hq.db.begin_write().await?;
    // Read again inside the write: two returns of one receipt never both take the last unit.
    let Some((sale_store, terminal, seq, voided, mut lines)) =
        sold_lines(&mut tx, &receipt).await?
    else {
        return Err(invalid("receipt", format!("HQ holds no sale `{receipt}`")));
    };
    if voided {
        return Err(conflict(
            "sale_voided",
            format!("sale {receipt} was voided at the till: nothing to return"),
            "receipt",
        ));
    }
    let receive_at = asked
        .receive_at
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(&sale_store)
        .to_owned();
    let stores = crate::catalog::stores(&mut tx).await?;
    if !stores.contains_key(&receive_at) {
        return Err(invalid("receive_at", format!("no store `{receive_at}`")));
    }
    let body: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT body FROM inbox WHERE terminal = $1 AND seq = $2")
            .bind(&terminal)
            .bind(seq)
            .fetch_optional(&mut *tx)
            .await?;
    let sale = match body.map(|b| protocol::event::decode(&b)) {
        Some(Ok(Event {
            body: EventBody::SaleCompleted(sale),
            ..
        })) => sale,
        _ => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "sale_unreadable",
                format!("the sale of receipt {receipt} does not decode at HQ"),
            ));
        }
    };
    let already: Vec<i64> = {
        let mut out = vec![0; sale.cart.lines.len()];
        for l in &lines {
            if let Some(slot) = out.get_mut(l.line) {
                *slot = l.back;
            }
        }
        out
    };
    // Each asked line is taken from the receipt's lines of its SKU, in order.
    let mut request: Vec<(usize, Quantity)> = Vec::new();
    for (i, asked_line) in asked.lines.iter().enumerate() {
        let field = format!("lines[{i}].quantity");
        let quantity =
            Quantity::parse(&asked_line.quantity).map_err(|e| invalid(field.clone(), e))?;
        if quantity.milli() <= 0 {
            return Err(invalid(field, "more than zero"));
        }
        let of_sku: Vec<&mut SoldLine> = lines
            .iter_mut()
            .filter(|l| l.sku == asked_line.sku.trim())
            .collect();
        let Some(first) = of_sku.first() else {
            return Err(invalid(
                format!("lines[{i}].sku"),
                format!("sale {receipt} has no `{}`", asked_line.sku),
            ));
        };
        let by_the_piece = sale
            .cart
            .lines
            .get(first.line)
            .is_some_and(|l| l.unit == domain::quantity::UnitOfSale::Each);
        if by_the_piece && quantity.milli() % 1000 != 0 {
            return Err(invalid(
                field,
                format!("`{}` was sold by the piece: a whole number", asked_line.sku),
            ));
        }
        let sold: i64 = of_sku.iter().map(|l| l.sold).sum();
        let back: i64 = of_sku.iter().map(|l| l.back).sum();
        if quantity.milli() > sold - back {
            return Err(conflict(
                "more_than_sold",
                format!(
                    "sale {receipt} sold {} of `{}` and {} came back before: at most {} more",
                    format_signed_milli(sold),
                    asked_line.sku,
                    format_signed_milli(back),
                    format_signed_milli((sold - back).max(0))
                ),
                field,
            ));
        }
        let mut wanted = quantity.milli();
        for l in of_sku {
            let take = wanted.min(l.sold - l.back).max(0);
            if take > 0 {
                l.back += take;
                wanted -= take;
                request.push((
                    l.line,
                    Quantity::from_milli(take).map_err(|e| invalid("lines", e))?,
                ));
            }
        }
    }
    let priced = domain::sale::price_return(&sale.cart, &sale.settlement, &already, &request)
        .map_err(|e| conflict("more_than_sold", e, "lines"))?;
    let currency = sale.cart.currency;
    let id = uuid::Uuid::now_v7().to_string();
    let number: i64 = sqlx::query_scalar(
        "INSERT INTO web_return_numbers (singleton, last) VALUES (1, 1)
         ON CONFLICT (singleton) DO UPDATE SET last = web_return_numbers.last + 1 RETURNING last",
    )
    .fetch_one(&mut *tx)
    .await?;
    let entity = WebReturnEntity {
        id: id.clone(),
        number: format!("R-{number:06}"),
        sale_receipt: receipt.clone(),
        sale_store: sale_store.clone(),
        receive_at: receive_at.clone(),
        status: "open".into(),
        currency: currency.code().to_owned(),
        refund_minor: priced.refund.minor(),
        lines: request
            .iter()
            .map(|(line, q)| WebReturnLine {
                line: u32::try_from(*line).unwrap_or(u32::MAX),
                sku: sale.cart.lines[*line].sku.to_string(),
                name: sale.cart.lines[*line].name.clone(),
                quantity: q.milli(),
            })
            .collect(),
        created_ms: now,
    };
    sqlx::query(
        "INSERT INTO web_returns (id, number, receipt, sale_store, receive_at, status, reason, reference, payload, created_ms, updated_ms, actor)
         VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, '{}', $8, $8, $9)",
    )
    .bind(&id)
    .bind(&entity.number)
    .bind(&receipt)
    .bind(&sale_store)
    .bind(&receive_at)
    .bind(asked.reason.as_deref().map(str::trim))
    .bind(asked.reference.as_deref().map(str::trim))
    .bind(now)
    .bind(&actor)
    .execute(&mut *tx)
    .await?;
    let rows: Vec<Vec<Arg>> = entity
        .lines
        .iter()
        .map(|l| {
            vec![
                Arg::Text(id.clone()),
                Arg::Text(receipt.clone()),
                Arg::Int(i64::from(l.line)),
                Arg::Int(l.quantity),
            ]
        })
        .collect();
    insert_many(
        &mut tx,
        hq.db.backend,
        "INSERT INTO web_return_lines (web_return, receipt, line, quantity) VALUES",
        "",
        rows,
    )
    .await?;
    let version = publish(&mut tx, hq.db.backend, &entity, "return.created", now).await?;
    let target = format!("return:{}", entity.number);
    let after =
        json!({"receipt": receipt, "receive_at": receive_at, "refund_minor": entity.refund_minor})
            .to_string();
    crate::identity::Audit {
        at_ms: now,
        actor: &actor,
        source: None,
        action: "return.created",
        target: Some(&target),
        before: None,
        after: Some(&after),
    }
    .append(&mut tx)
    .await?;
    let answer = view(&mut tx, &id).await?.unwrap_or(Value::Null);
    writes::remember(&key, &mut tx, StatusCode::CREATED, &answer, now).await?;
    tx.commit().await?;
    hq.announce_version(version);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("return", id)
}

/// `GET /v1/returns/{id}` (`orders:read`; by id or number).
pub(crate) async fn read_one(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    authorize(&hq, &headers, Scope::OrdersRead, None, Access::Read).await?;
    let mut conn = hq.db.pool.acquire().await?;
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT id, sale_store FROM web_returns WHERE id = $1 OR number = $1")
            .bind(&id)
            .fetch_optional(&mut *conn)
            .await?;
    let (found, store) = row.ok_or_else(|| not_found(&id))?;
    authorize(&hq, &headers, Scope::OrdersRead, Some(&store), Access::Read).await?;
    Ok(Json(
        view(&mut conn, &found)
            .await?
            .ok_or_else(|| not_found(&id))?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    receipt: Option<String>,
    store: Option<String>,
    limit: Option<i64>,
}

/// `GET /v1/returns?receipt=&store=` (`orders:read`): returns through the web, newest first.
pub(crate) async fn list(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let store = q.store.as_deref().filter(|s| !s.is_empty());
    authorize(&hq, &headers, Scope::OrdersRead, store, Access::Read).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let mut conn = hq.db.pool.acquire().await?;
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM web_returns WHERE ($1 = '' OR receipt = $1) AND ($2 = '' OR sale_store = $2 OR receive_at = $2)
         ORDER BY created_ms DESC, id DESC LIMIT $3",
    )
    .bind(q.receipt.as_deref().unwrap_or_default())
    .bind(store.unwrap_or_default())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(v) = view(&mut conn, &id).await? {
            // A key limited to stores sees the returns of its stores only.
            let sale_store = v["sale_store"].as_str().unwrap_or_default().to_owned();
            if store.is_none()
                && authorize(
                    &hq,
                    &headers,
                    Scope::OrdersRead,
                    Some(&sale_store),
                    Access::Read,
                )
                .await
                .is_err()
            {
                continue;
            }
            out.push(v);
        }
    }
    Ok(Json(json!({ "returns": out })))
}

/// Fills the receipt lines from every event HQ applied before they existed, once per database.
pub async fn backfill(db: &crate::db::Db) -> Result<(), sqlx::Error> {
    let backend = db.backend;
    crate::ingest::backfill_once(db, "receipt_lines", async |tx, events| {
        apply(tx, backend, events).await
    })
    .await
}

/// Keeps what tills sold and took back, by receipt line, from ingested `events` (in ledger
/// order), and marks web returns received by their store's `ReturnReceived` events.
pub(crate) async fn apply(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    events: &[&Event],
) -> Result<(), sqlx::Error> {
    let mut sold: Vec<Vec<Arg>> = Vec::new();
    for event in events {
        match &event.body {
            EventBody::SaleCompleted(sale) => {
                for (i, line) in sale.cart.lines.iter().enumerate() {
                    sold.push(vec![
                        Arg::Text(sale.receipt.clone()),
                        Arg::Int(i64::try_from(i).unwrap_or(i64::MAX)),
                        Arg::Text(event.meta.store.to_string()),
                        Arg::Text(event.meta.terminal.to_string()),
                        Arg::Int(i64::try_from(event.meta.seq).unwrap_or(i64::MAX)),
                        Arg::Text(line.sku.to_string()),
                        Arg::Int(line.quantity.milli()),
                    ]);
                }
            }
            _ => {
                // What follows a sale reads its lines: write them first.
                write_sold(tx, backend, std::mem::take(&mut sold)).await?;
                after_sale(tx, backend, event).await?;
            }
        }
    }
    write_sold(tx, backend, sold).await
}

async fn write_sold(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    rows: Vec<Vec<Arg>>,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    insert_many(
        tx,
        backend,
        "INSERT INTO receipt_lines (receipt, line, store, terminal, seq, sku, sold) VALUES",
        "ON CONFLICT DO NOTHING",
        rows,
    )
    .await
    .map(|_| ())
}

async fn after_sale(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    event: &Event,
) -> Result<(), sqlx::Error> {
    match &event.body {
        EventBody::SaleVoided(void) => {
            sqlx::query("UPDATE receipt_lines SET voided = 1 WHERE receipt = $1")
                .bind(&void.receipt)
                .execute(&mut **tx)
                .await?;
        }
        EventBody::ReturnCompleted(ret) => {
            let Some(original) = &ret.original_receipt else {
                return Ok(());
            };
            for line in &ret.refund.lines {
                sqlx::query(
                    "UPDATE receipt_lines SET returned = returned + $1 WHERE receipt = $2 AND line = $3",
                )
                .bind(line.quantity.milli())
                .bind(original)
                .bind(i64::try_from(line.sale_line).unwrap_or(i64::MAX))
                .execute(&mut **tx)
                .await?;
            }
        }
        EventBody::ReturnReceived(received) => {
            let payload: Option<String> =
                sqlx::query_scalar("SELECT payload FROM web_returns WHERE id = $1")
                    .bind(&received.web_return)
                    .fetch_optional(&mut **tx)
                    .await?;
            let Some(mut entity) =
                payload.and_then(|p| serde_json::from_str::<WebReturnEntity>(&p).ok())
            else {
                tracing::warn!(web_return = %received.web_return, "a web return received that HQ does not hold");
                return Ok(());
            };
            if entity.receive_at != event.meta.store.as_str() || entity.status == "received" {
                tracing::warn!(web_return = %entity.number, from = %event.meta.store, "a web return received twice or at another store");
                return Ok(());
            }
            let now = now_ms();
            sqlx::query("UPDATE web_returns SET received_ms = $1 WHERE id = $2")
                .bind(event.meta.hlc.wall_ms())
                .bind(&entity.id)
                .execute(&mut **tx)
                .await?;
            entity.status = "received".into();
            publish(tx, backend, &entity, "return.received", now).await?;
        }
        _ => {}
    }
    Ok(())
}

/// Receipt lines taken back more than they sold — a till's return while its store did not yet
/// know of a web return of the same goods — as (receipt, store, SKU, sold, taken back).
pub(crate) async fn returned_twice(
    conn: &mut sqlx::AnyConnection,
) -> Result<Vec<(String, String, String, i64, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT r.receipt, r.store, r.sku, r.sold, CAST(r.returned + SUM(w.quantity) AS BIGINT) AS back
         FROM receipt_lines r JOIN web_return_lines w ON w.receipt = r.receipt AND w.line = r.line
         GROUP BY r.receipt, r.line, r.store, r.sku, r.sold, r.returned
         HAVING r.returned + SUM(w.quantity) > r.sold
         ORDER BY r.receipt, r.line",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get("receipt"),
                r.get("store"),
                r.get("sku"),
                r.get("sold"),
                r.get("back"),
            )
        })
        .collect())
}
