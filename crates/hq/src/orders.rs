//! Orders from the web, fulfilled by a store.
//!
//! A shop places an order (`POST /v1/orders`) for pickup at a store or to be shipped from one.
//! HQ holds its stock at that store (a reservation in state `ordered`, converting the shop's
//! cart hold when it names one) and routes it to the store through the reference change log: an
//! `order` entity with the order's latest state, which a store pulls like any other change, so
//! an order placed while the store is offline reaches it when it reconnects.
//!
//! The store works the order on its own ledger (`OrderStep` events: picked, ready, shipped,
//! handed over), which reach HQ like every other event; ingest moves the order on, ends its hold
//! when the goods leave (stock leaves the store with the shipment or the handover, never at
//! ordering) and tells the shop through webhooks. A store never refuses a sale: when a till
//! sells what an order holds and the store has fewer than its orders hold, the newest orders it
//! cannot cover get a `stock_conflict` exception (and an `order.stock_conflict` webhook) until
//! stock comes back or someone cancels.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::ledger::{Event, EventBody, OrderStepKind};
use domain::quantity::{Quantity, format_signed_milli};
use protocol::sync::{ORDER_KIND, OrderCustomer, OrderEntity, OrderLine};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::api::{Access, ApiError, ApiResult, Hq, authorize};
use crate::availability::{self, invalid};
use crate::db::Backend;
use crate::extract::{Path, Query};
use crate::identity::Scope;
use crate::now_ms;
use crate::writes;

/// Lines one order may hold.
pub const MAX_LINES: usize = 100;

/// Where an order stands, in the order it gets there.
pub(crate) const STATUSES: [&str; 6] = [
    "placed",
    "picked",
    "ready",
    "shipped",
    "collected",
    "cancelled",
];
/// The statuses of an order its store still works on.
const OPEN: [&str; 3] = ["placed", "picked", "ready"];

/// The newest `limit` orders of `stores` (every store when empty) in `status` (`open`, one
/// status, or any when empty), as answered.
pub(crate) async fn newest(
    db: &crate::db::Db,
    stores: &[String],
    status: &str,
    limit: i64,
) -> Result<Vec<Value>, sqlx::Error> {
    let statuses: Vec<&str> = match status {
        "" => STATUSES.to_vec(),
        "open" => OPEN.to_vec(),
        s => vec![s],
    };
    let mut marks = db.backend.marks();
    let listed = marks.tuple(statuses.len());
    let mut sql = format!("SELECT id FROM orders WHERE status IN {listed}");
    if !stores.is_empty() {
        sql.push_str(&format!(" AND store IN {}", marks.tuple(stores.len())));
    }
    sql.push_str(&format!(" ORDER BY created_ms DESC LIMIT {}", marks.next()));
    let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
    for s in &statuses {
        query = query.bind(*s);
    }
    for s in stores {
        query = query.bind(s);
    }
    let mut conn = db.pool.acquire().await?;
    let ids = query.bind(limit).fetch_all(&mut *conn).await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(v) = view(&mut conn, &id).await? {
            out.push(v);
        }
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewOrderLine {
    sku: String,
    quantity: String,
    /// One unit's price, tax included, in the store's currency (`3.49`).
    unit_price: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Payment {
    /// `paid` (online) or `at-pickup`.
    state: String,
    #[serde(default)]
    psp_reference: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewOrder {
    store: String,
    /// `pickup` or `ship-from-store`.
    fulfilment: String,
    payment: Payment,
    customer: OrderCustomer,
    #[serde(default)]
    shipping_address: Option<String>,
    lines: Vec<NewOrderLine>,
    /// The shop's own id of the order.
    #[serde(default)]
    reference: Option<String>,
    /// The shop's cart hold to convert (its units count towards this order).
    #[serde(default)]
    reservation: Option<String>,
}

pub(crate) fn conflict(
    code: &'static str,
    message: impl ToString,
    field: impl Into<String>,
) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, message).at(field)
}

pub(crate) fn text(field: &str, value: Option<&str>, max: usize, required: bool) -> ApiResult<()> {
    match value.map(str::trim) {
        None | Some("") if required => Err(invalid(field, "required")),
        Some(v) if v.chars().count() > max => {
            Err(invalid(field, format!("at most {max} characters")))
        }
        _ => Ok(()),
    }
}

/// The order as answered: its entity plus HQ's own columns.
async fn view(conn: &mut sqlx::AnyConnection, id: &str) -> Result<Option<Value>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT payload, short, exception, reservation, reference, carrier, tracking, sale_receipt, updated_ms, credited_minor
         FROM orders WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut v: Value = serde_json::from_str(row.get::<&str, _>("payload")).unwrap_or(Value::Null);
    let currency = domain::Currency::parse(v["currency"].as_str().unwrap_or_default()).ok();
    // Quantities and prices read as decimals, like every other answer of the API.
    if let Some(lines) = v["lines"].as_array_mut() {
        for line in lines {
            line["quantity"] = json!(format_signed_milli(line["quantity"].as_i64().unwrap_or(0)));
            if let Some(p) = line["picked"].as_i64() {
                line["picked"] = json!(format_signed_milli(p));
            }
            if let Some(c) = currency {
                let minor = line["unit_price_minor"].as_i64().unwrap_or(0);
                line["unit_price"] = json!(domain::Money::from_minor(minor, c).amount_string());
            }
        }
    }
    v["short"] = json!(row.get::<i64, _>("short") != 0);
    v["exception"] = json!(row.get::<Option<String>, _>("exception"));
    v["reservation"] = json!(row.get::<String, _>("reservation"));
    v["reference"] = json!(row.get::<Option<String>, _>("reference"));
    v["carrier"] = json!(row.get::<Option<String>, _>("carrier"));
    v["tracking"] = json!(row.get::<Option<String>, _>("tracking"));
    v["sale_receipt"] = json!(row.get::<Option<String>, _>("sale_receipt"));
    v["updated_ms"] = json!(row.get::<i64, _>("updated_ms"));
    // What the shop owes the customer for goods brought back to a store.
    if let Some(c) = currency {
        let due: i64 = v["lines"]
            .as_array()
            .map(|lines| {
                lines
                    .iter()
                    .map(|l| {
                        let back = l["returned"].as_i64().unwrap_or(0);
                        l["unit_price_minor"].as_i64().unwrap_or(0) * back / 1000
                    })
                    .sum()
            })
            .unwrap_or(0);
        // Less what the customer took as store credit at the till.
        let credited = row.get::<i64, _>("credited_minor");
        v["store_credit"] = json!(domain::Money::from_minor(credited, c).amount_string());
        v["refund_due"] =
            json!(domain::Money::from_minor((due - credited).max(0), c).amount_string());
    }
    if let Some(lines) = v["lines"].as_array_mut() {
        for line in lines {
            if let Some(r) = line["returned"].as_i64() {
                line["returned"] = json!(format_signed_milli(r));
            }
        }
    }
    Ok(Some(v))
}

/// Publishes the order's state to its store (a new reference version), records it in the
/// order's history and tells the webhooks `order.<event>`.
async fn publish(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    entity: &OrderEntity,
    event: &'static str,
    actor: &str,
    detail: Option<&str>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let payload = serde_json::to_string(entity).unwrap_or_default();
    sqlx::query("UPDATE orders SET payload = $1, status = $2, updated_ms = $3 WHERE id = $4")
        .bind(&payload)
        .bind(&entity.status)
        .bind(now)
        .bind(&entity.id)
        .execute(&mut *conn)
        .await?;
    let version =
        crate::refdata::publish_entity(conn, backend, ORDER_KIND, &entity.id, payload).await?;
    sqlx::query(
        "INSERT INTO order_history (order_id, at_ms, status, actor, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&entity.id)
    .bind(now)
    .bind(&entity.status)
    .bind(actor)
    .bind(detail)
    .execute(&mut *conn)
    .await?;
    let data = view(conn, &entity.id).await?.unwrap_or(Value::Null);
    crate::webhooks::emit(
        conn,
        now,
        vec![crate::webhooks::Event {
            kind: event,
            resource: format!("order:{}", entity.number),
            data,
        }],
    )
    .await?;
    Ok(version)
}

/// `POST /v1/orders` (`orders:write`): places an order for pickup at a store or shipping from
/// it, holding its stock there (all lines or none: `409 insufficient_stock` at the line the
/// store cannot promise). Idempotent with `Idempotency-Key`.
pub(crate) async fn create(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    authorize(&hq, &headers, Scope::OrdersWrite, None, Access::Write).await?;
    let (asked, bytes): (NewOrder, _) = writes::json_body(&headers, body).await?;
    let actor = authorize(
        &hq,
        &headers,
        Scope::OrdersWrite,
        Some(&asked.store),
        Access::Write,
    )
    .await?;
    let key =
        match writes::idempotency(&hq, &headers, &actor, &[b"POST /v1/orders ", &bytes]).await? {
            Ok(key) => key,
            Err(answer) => return Ok(answer),
        };
    let ship = match asked.fulfilment.as_str() {
        "pickup" => false,
        "ship-from-store" => true,
        _ => {
            return Err(invalid(
                "fulfilment",
                "`pickup` or `ship-from-store` (an order fulfilled elsewhere is not routed to a store)",
            ));
        }
    };
    match (asked.payment.state.as_str(), ship) {
        ("paid", _) => text(
            "payment.psp_reference",
            asked.payment.psp_reference.as_deref(),
            200,
            true,
        )?,
        ("at-pickup", false) => text(
            "payment.psp_reference",
            asked.payment.psp_reference.as_deref(),
            200,
            false,
        )?,
        ("at-pickup", true) => {
            return Err(invalid(
                "payment.state",
                "an order shipped from a store is paid online",
            ));
        }
        _ => return Err(invalid("payment.state", "`paid` or `at-pickup`")),
    }
    text("customer.name", Some(&asked.customer.name), 200, true)?;
    text(
        "customer.email",
        asked.customer.email.as_deref(),
        320,
        false,
    )?;
    text("customer.phone", asked.customer.phone.as_deref(), 50, false)?;
    text(
        "shipping_address",
        asked.shipping_address.as_deref(),
        1000,
        ship,
    )?;
    text("reference", asked.reference.as_deref(), 200, false)?;
    if asked.lines.is_empty() || asked.lines.len() > MAX_LINES {
        return Err(invalid("lines", format!("1 to {MAX_LINES} lines")));
    }
    let now = now_ms();
    let (_guard, mut tx) = hq.db.begin_write().await?;
    let stores = crate::catalog::stores(&mut tx).await?;
    let Some(store) = stores.get(&asked.store) else {
        return Err(invalid("store", format!("no store `{}`", asked.store)));
    };
    let currency = domain::Currency::parse(&store.currency)
        .map_err(|e| invalid("store", format!("the store's currency: {e}")))?;
    let skus: Vec<String> = asked
        .lines
        .iter()
        .map(|l| l.sku.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let held = availability::variant_entities(&mut tx, hq.db.backend, &skus).await?;
    let mut lines = Vec::with_capacity(asked.lines.len());
    let mut wanted: BTreeMap<String, i64> = BTreeMap::new();
    for (i, line) in asked.lines.iter().enumerate() {
        let Some(entity) = held.get(&line.sku) else {
            return Err(invalid(
                format!("lines[{i}].sku"),
                format!("no variant `{}`", line.sku),
            ));
        };
        if !availability::channels(entity).1 {
            return Err(conflict(
                "not_sold_online",
                format!("`{}` is sold in stores only", line.sku),
                format!("lines[{i}].sku"),
            ));
        }
        let quantity = Quantity::parse(&line.quantity)
            .map_err(|e| invalid(format!("lines[{i}].quantity"), e))?;
        if entity.variant.unit == "each" && quantity.milli() % 1000 != 0 {
            return Err(invalid(
                format!("lines[{i}].quantity"),
                format!("`{}` is sold by the piece: a whole number", line.sku),
            ));
        }
        let price = domain::Money::parse_major(&line.unit_price, currency)
            .ok()
            .filter(|m| m.minor() >= 0)
            .ok_or_else(|| {
                invalid(
                    format!("lines[{i}].unit_price"),
                    format!("an amount of 0 or more in {} (`3.49`)", currency.code()),
                )
            })?;
        *wanted.entry(line.sku.clone()).or_default() += quantity.milli();
        lines.push(OrderLine {
            sku: line.sku.clone(),
            name: entity.variant.name.clone(),
            quantity: quantity.milli(),
            picked: None,
            returned: None,
            unit_price_minor: price.minor(),
        });
    }
    // The cart hold it converts: its units are the order's.
    if let Some(cart) = &asked.reservation {
        let row: Option<(String, String, i64)> =
            sqlx::query_as("SELECT location, state, expires_ms FROM reservations WHERE id = $1")
                .bind(cart)
                .fetch_optional(&mut *tx)
                .await?;
        match row {
            None => return Err(invalid("reservation", format!("no reservation `{cart}`"))),
            Some((location, _, _)) if location != asked.store => {
                return Err(invalid(
                    "reservation",
                    format!(
                        "the reservation holds stock at {location}, not {}",
                        asked.store
                    ),
                ));
            }
            Some((_, state, expires)) if state != "active" || expires <= now => {
                return Err(conflict(
                    "not_active",
                    format!("reservation `{cart}` is no longer active"),
                    "reservation",
                ));
            }
            Some(_) => {
                sqlx::query(
                    "UPDATE reservations SET state = 'converted', updated_ms = $1 WHERE id = $2",
                )
                .bind(now)
                .bind(cart)
                .execute(&mut *tx)
                .await?;
                availability::hold_until(&mut tx, cart, 0).await?;
            }
        }
    }
    let line_skus: Vec<&str> = asked.lines.iter().map(|l| l.sku.as_str()).collect();
    let keys = availability::promise(
        &mut tx,
        hq.db.backend,
        &asked.store,
        &line_skus,
        &wanted,
        now,
    )
    .await?;
    let id = uuid::Uuid::now_v7().to_string();
    let reservation = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO reservations (id, location, reference, state, created_ms, expires_ms, updated_ms, actor)
         VALUES ($1, $2, $3, 'ordered', $4, $5, $4, $6)",
    )
    .bind(&reservation)
    .bind(&asked.store)
    .bind(format!("order:{id}"))
    .bind(now)
    .bind(i64::MAX)
    .bind(&actor)
    .execute(&mut *tx)
    .await?;
    availability::insert_lines(&mut tx, &reservation, &asked.store, &wanted, i64::MAX).await?;
    let number: i64 = sqlx::query_scalar(
        "INSERT INTO order_numbers (singleton, last) VALUES (1, 1)
         ON CONFLICT (singleton) DO UPDATE SET last = order_numbers.last + 1 RETURNING last",
    )
    .fetch_one(&mut *tx)
    .await?;
    let entity = OrderEntity {
        id: id.clone(),
        number: format!("W-{number:06}"),
        store: asked.store.clone(),
        fulfilment: asked.fulfilment.clone(),
        payment: asked.payment.state.clone(),
        psp_reference: asked.payment.psp_reference.clone(),
        status: "placed".into(),
        customer: asked.customer.clone(),
        shipping_address: asked.shipping_address.clone(),
        currency: currency.code().to_owned(),
        lines,
        created_ms: now,
    };
    sqlx::query(
        "INSERT INTO orders (id, number, store, fulfilment, payment, psp_reference, status, reservation, reference, payload, created_ms, updated_ms, actor)
         VALUES ($1, $2, $3, $4, $5, $6, 'placed', $7, $8, '{}', $9, $9, $10)",
    )
    .bind(&id)
    .bind(&entity.number)
    .bind(&entity.store)
    .bind(&entity.fulfilment)
    .bind(&entity.payment)
    .bind(&entity.psp_reference)
    .bind(&reservation)
    .bind(&asked.reference)
    .bind(now)
    .bind(&actor)
    .execute(&mut *tx)
    .await?;
    let version = publish(
        &mut tx,
        hq.db.backend,
        &entity,
        "order.created",
        &actor,
        None,
        now,
    )
    .await?;
    availability::changed(&mut tx, hq.db.backend, &keys, now).await?;
    let answer = view(&mut tx, &id).await?.unwrap_or(Value::Null);
    writes::remember(&key, &mut tx, StatusCode::CREATED, &answer, now).await?;
    tx.commit().await?;
    hq.announce_version(version);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// The order `id` or number, and its store.
async fn find(
    conn: &mut sqlx::AnyConnection,
    id: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, store FROM orders WHERE id = $1 OR number = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("order", id)
}

/// `GET /v1/orders/{id}` (`orders:read`; by id or number): the order with its history.
pub(crate) async fn read_one(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    authorize(&hq, &headers, Scope::OrdersRead, None, Access::Read).await?;
    let mut conn = hq.db.pool.acquire().await?;
    let (id, store) = find(&mut conn, &id).await?.ok_or_else(|| not_found(&id))?;
    authorize(&hq, &headers, Scope::OrdersRead, Some(&store), Access::Read).await?;
    let mut order = view(&mut conn, &id).await?.ok_or_else(|| not_found(&id))?;
    let history: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(
        "SELECT at_ms, status, actor, detail FROM order_history WHERE order_id = $1 ORDER BY seq",
    )
    .bind(&id)
    .fetch_all(&mut *conn)
    .await?;
    order["history"] = history
        .into_iter()
        .map(|(at, status, actor, detail)| {
            json!({"at_ms": at, "status": status, "actor": actor, "detail": detail})
        })
        .collect();
    Ok(Json(order))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    store: Option<String>,
    /// `open` (placed, picked or ready) or one status.
    status: Option<String>,
    limit: Option<i64>,
}

/// `GET /v1/orders?store=&status=` (`orders:read`): orders newest first.
pub(crate) async fn list(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let store = q.store.as_deref().filter(|s| !s.is_empty());
    authorize(&hq, &headers, Scope::OrdersRead, store, Access::Read).await?;
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    if status.is_some_and(|s| s != "open" && !STATUSES.contains(&s)) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "open, placed, picked, ready, shipped, collected or cancelled",
        )
        .at("status"));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let stores = match store {
        Some(s) => vec![s.to_owned()],
        None => Vec::new(),
    };
    let orders = newest(&hq.db, &stores, status.unwrap_or_default(), limit).await?;
    Ok(Json(json!({ "orders": orders })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Action {
    /// `cancel`.
    action: String,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /v1/orders/{id}/actions` (`orders:write`) with `{"action": "cancel", "reason": …}`: an
/// open order is cancelled, its stock available again and the store told; cancelling a
/// cancelled order answers it as it is; one that has left the store is `409 not_open`.
pub(crate) async fn act(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    authorize(&hq, &headers, Scope::OrdersWrite, None, Access::Write).await?;
    let (asked, _): (Action, _) = writes::json_body(&headers, body).await?;
    if asked.action != "cancel" {
        return Err(invalid(
            "action",
            "`cancel` (a store's steps come from its tills)",
        ));
    }
    text("reason", asked.reason.as_deref(), 500, false)?;
    let mut conn = hq.db.pool.acquire().await?;
    let (id, store) = find(&mut conn, &id).await?.ok_or_else(|| not_found(&id))?;
    drop(conn);
    let actor = authorize(
        &hq,
        &headers,
        Scope::OrdersWrite,
        Some(&store),
        Access::Write,
    )
    .await?;
    let now = now_ms();
    let (_guard, mut tx) = hq.db.begin_write().await?;
    let (payload, reservation): (String, String) =
        sqlx::query_as("SELECT payload, reservation FROM orders WHERE id = $1")
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?;
    let mut entity: OrderEntity = serde_json::from_str(&payload)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    if entity.status == "cancelled" {
        let answer = view(&mut tx, &id).await?.unwrap_or(Value::Null);
        return Ok(Json(answer).into_response());
    }
    if !OPEN.contains(&entity.status.as_str()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_open",
            format!("order {} is {}", entity.number, entity.status),
        ));
    }
    let keys = end_hold(&mut tx, &reservation, &store, "released", now).await?;
    entity.status = "cancelled".into();
    let version = publish(
        &mut tx,
        hq.db.backend,
        &entity,
        "order.cancelled",
        &actor,
        asked.reason.as_deref(),
        now,
    )
    .await?;
    availability::changed(&mut tx, hq.db.backend, &keys, now).await?;
    let answer = view(&mut tx, &id).await?.unwrap_or(Value::Null);
    tx.commit().await?;
    hq.announce_version(version);
    Ok(Json(answer).into_response())
}

/// Ends an order's hold (`fulfilled` or `released`): the keys whose figures changed.
async fn end_hold(
    conn: &mut sqlx::AnyConnection,
    reservation: &str,
    store: &str,
    state: &str,
    now: i64,
) -> Result<BTreeSet<(String, String)>, sqlx::Error> {
    sqlx::query(
        "UPDATE reservations SET state = $1, updated_ms = $2 WHERE id = $3 AND state = 'ordered'",
    )
    .bind(state)
    .bind(now)
    .bind(reservation)
    .execute(&mut *conn)
    .await?;
    availability::hold_until(conn, reservation, 0).await?;
    let skus: Vec<String> =
        sqlx::query_scalar("SELECT sku FROM reservation_lines WHERE reservation = $1")
            .bind(reservation)
            .fetch_all(&mut *conn)
            .await?;
    Ok(skus.into_iter().map(|s| (store.to_owned(), s)).collect())
}

/// Moves the order on to `to`, never back: the steps of one order may come from several tills,
/// whose ledgers reach HQ in any order. A cancelled order stays cancelled unless its goods left
/// the store (shipped or handed over: the store's fact stands).
fn advance(entity: &mut OrderEntity, to: &str) {
    let rank = |s: &str| match s {
        "placed" => 0,
        "picked" => 1,
        "ready" => 2,
        _ => 3,
    };
    let left = matches!(to, "shipped" | "collected");
    if (entity.status == "cancelled" && left)
        || (entity.status != "cancelled" && rank(to) > rank(&entity.status))
    {
        entity.status = to.to_owned();
    }
}

/// Applies the order steps among ingested `events` (in ledger order): each moves its order on
/// and tells the webhooks; the keys (store, SKU) whose holds changed are returned. A step of an
/// order HQ does not hold, or of another store's, is logged and left.
pub(crate) async fn apply(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    events: &[&Event],
) -> Result<BTreeSet<(String, String)>, sqlx::Error> {
    let mut keys = BTreeSet::new();
    for event in events {
        let EventBody::OrderStep(step) = &event.body else {
            continue;
        };
        let row: Option<(String, String, String)> =
            sqlx::query_as("SELECT store, payload, reservation FROM orders WHERE id = $1")
                .bind(&step.order)
                .fetch_optional(&mut *conn)
                .await?;
        let Some((store, payload, reservation)) = row else {
            tracing::warn!(order = %step.order, "an order step for an order HQ does not hold");
            continue;
        };
        if store != event.meta.store.as_str() {
            tracing::warn!(order = %step.order, %store, from = %event.meta.store, "an order step from another store");
            continue;
        }
        let Ok(mut entity) = serde_json::from_str::<OrderEntity>(&payload) else {
            continue;
        };
        let now = now_ms();
        let actor = format!("staff:{}@{}", step.staff, event.meta.terminal);
        let was_cancelled = entity.status == "cancelled";
        let kind = match &step.step {
            OrderStepKind::Picked => {
                let mut picked: BTreeMap<String, i64> = BTreeMap::new();
                for (sku, q) in &step.lines {
                    *picked.entry(sku.to_string()).or_default() += q.milli();
                }
                let mut short = false;
                for line in &mut entity.lines {
                    let left = picked.entry(line.sku.clone()).or_default();
                    let got = (*left).min(line.quantity).max(0);
                    *left -= got;
                    short |= got < line.quantity;
                    line.picked = Some(got);
                }
                // A short pick holds what was found; the rest is available again.
                if !was_cancelled {
                    let mut per_sku: BTreeMap<&str, i64> = BTreeMap::new();
                    for line in &entity.lines {
                        *per_sku.entry(&line.sku).or_default() += line.picked.unwrap_or(0);
                    }
                    for (sku, milli) in per_sku {
                        sqlx::query("UPDATE reservation_lines SET quantity_milli = $1 WHERE reservation = $2 AND sku = $3")
                            .bind(milli)
                            .bind(&reservation)
                            .bind(sku)
                            .execute(&mut *conn)
                            .await?;
                        keys.insert((store.clone(), sku.to_owned()));
                    }
                }
                sqlx::query("UPDATE orders SET short = $1 WHERE id = $2")
                    .bind(i64::from(short))
                    .bind(&entity.id)
                    .execute(&mut *conn)
                    .await?;
                advance(&mut entity, "picked");
                "order.picked"
            }
            OrderStepKind::Ready => {
                advance(&mut entity, "ready");
                "order.ready"
            }
            OrderStepKind::Shipped { carrier, tracking } => {
                sqlx::query("UPDATE orders SET carrier = $1, tracking = $2 WHERE id = $3")
                    .bind(carrier)
                    .bind(tracking)
                    .bind(&entity.id)
                    .execute(&mut *conn)
                    .await?;
                keys.extend(end_hold(conn, &reservation, &store, "fulfilled", now).await?);
                advance(&mut entity, "shipped");
                "order.shipped"
            }
            OrderStepKind::Returned => {
                // Back in the store's stock (the event's movement); the shop refunds what it
                // took for it, less what the customer took as store credit at the till.
                if let Some((_, credit)) = &step.store_credit {
                    sqlx::query(
                        "UPDATE orders SET credited_minor = credited_minor + $1 WHERE id = $2",
                    )
                    .bind(credit.minor())
                    .bind(&entity.id)
                    .execute(&mut *conn)
                    .await?;
                }
                let mut back: BTreeMap<String, i64> = BTreeMap::new();
                for (sku, q) in &step.lines {
                    *back.entry(sku.to_string()).or_default() += q.milli();
                }
                for line in &mut entity.lines {
                    let left = back.entry(line.sku.clone()).or_default();
                    let delivered = line.picked.unwrap_or(line.quantity);
                    let room = (delivered - line.returned.unwrap_or(0)).max(0);
                    let now_back = (*left).min(room);
                    if now_back > 0 {
                        *left -= now_back;
                        line.returned = Some(line.returned.unwrap_or(0) + now_back);
                    }
                }
                "order.returned"
            }
            OrderStepKind::HandedOver => {
                sqlx::query("UPDATE orders SET sale_receipt = $1 WHERE id = $2")
                    .bind(&step.sale_receipt)
                    .bind(&entity.id)
                    .execute(&mut *conn)
                    .await?;
                keys.extend(end_hold(conn, &reservation, &store, "fulfilled", now).await?);
                advance(&mut entity, "collected");
                "order.collected"
            }
        };
        if was_cancelled && matches!(entity.status.as_str(), "shipped" | "collected") {
            // The goods left the store after HQ cancelled: the store's fact stands, and a
            // person looks at it.
            sqlx::query("UPDATE orders SET exception = 'order_conflict' WHERE id = $1")
                .bind(&entity.id)
                .execute(&mut *conn)
                .await?;
        }
        publish(
            conn,
            backend,
            &entity,
            kind,
            &actor,
            Some(step.step.as_str()),
            now,
        )
        .await?;
    }
    Ok(keys)
}

/// After stock moved at `keys`: an open order whose store has fewer of a SKU than the open
/// orders there hold (the oldest served first) is in `stock_conflict`, and the shop is told
/// once; an order covered again loses the exception.
pub(crate) async fn check_conflicts(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    keys: &BTreeSet<(String, String)>,
) -> Result<(), sqlx::Error> {
    let mut by_store: BTreeMap<&String, Vec<String>> = BTreeMap::new();
    for (store, sku) in keys {
        by_store.entry(store).or_default().push(sku.clone());
    }
    let now = now_ms();
    for (store, skus) in by_store {
        for chunk in skus.chunks(200) {
            let held = held_lines(conn, backend, store, chunk).await?;
            if held.is_empty() {
                continue;
            }
            let on_hand = on_hand(conn, backend, store, chunk).await?;
            let mut used: BTreeMap<&str, i64> = BTreeMap::new();
            let mut short: BTreeSet<&str> = BTreeSet::new();
            let mut flagged: BTreeMap<&str, bool> = BTreeMap::new();
            for (order, sku, milli, exception) in &held {
                let u = used.entry(sku).or_default();
                *u += milli;
                if *u > on_hand.get(sku.as_str()).copied().unwrap_or(0) {
                    short.insert(order);
                }
                flagged.insert(order, exception.as_deref() == Some("stock_conflict"));
            }
            for (order, was) in flagged {
                let is = short.contains(order);
                if is == was {
                    continue;
                }
                sqlx::query("UPDATE orders SET exception = $1 WHERE id = $2")
                    .bind(is.then_some("stock_conflict"))
                    .bind(order)
                    .execute(&mut *conn)
                    .await?;
                if is {
                    let data = view(conn, order).await?.unwrap_or(Value::Null);
                    let number = data["number"].as_str().unwrap_or_default().to_owned();
                    crate::webhooks::emit(
                        conn,
                        now,
                        vec![crate::webhooks::Event {
                            kind: "order.stock_conflict",
                            resource: format!("order:{number}"),
                            data,
                        }],
                    )
                    .await?;
                }
            }
        }
    }
    Ok(())
}

/// What the open orders of `store` hold of `skus`: (order, SKU, thousandths, exception), the
/// oldest order first.
async fn held_lines(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    store: &str,
    skus: &[String],
) -> Result<Vec<(String, String, i64, Option<String>)>, sqlx::Error> {
    let mut marks = backend.marks();
    let store_mark = marks.next();
    let listed = marks.tuple(skus.len());
    let sql = format!(
        "SELECT o.id, l.sku, l.quantity_milli, o.exception FROM orders o
         JOIN reservations r ON r.id = o.reservation
         JOIN reservation_lines l ON l.reservation = o.reservation
         WHERE o.store = {store_mark} AND r.state = 'ordered' AND l.sku IN {listed}
         ORDER BY o.created_ms, o.id"
    );
    let mut query =
        sqlx::query_as::<_, (String, String, i64, Option<String>)>(sqlx::AssertSqlSafe(sql))
            .bind(store);
    for sku in skus {
        query = query.bind(sku);
    }
    query.fetch_all(&mut *conn).await
}

/// The stock on hand of `skus` at `store`.
async fn on_hand(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    store: &str,
    skus: &[String],
) -> Result<BTreeMap<String, i64>, sqlx::Error> {
    let mut marks = backend.marks();
    let store_mark = marks.next();
    let listed = marks.tuple(skus.len());
    let sql = format!(
        "SELECT sku, on_hand FROM stock_levels WHERE location = {store_mark} AND sku IN {listed}"
    );
    let mut query = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql)).bind(store);
    for sku in skus {
        query = query.bind(sku);
    }
    Ok(query.fetch_all(&mut *conn).await?.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(status: &str) -> OrderEntity {
        OrderEntity {
            id: "o".into(),
            number: "W-000001".into(),
            store: "vienna-01".into(),
            fulfilment: "pickup".into(),
            payment: "paid".into(),
            psp_reference: None,
            status: status.into(),
            customer: OrderCustomer {
                name: "Eva".into(),
                email: None,
                phone: None,
            },
            shipping_address: None,
            currency: "EUR".into(),
            lines: Vec::new(),
            created_ms: 0,
        }
    }

    #[test]
    fn an_order_moves_on_never_back_whatever_order_its_tills_steps_arrive_in() {
        for (from, to, expected) in [
            ("placed", "picked", "picked"),
            ("picked", "ready", "ready"),
            ("ready", "collected", "collected"),
            // A handover synced from one till before the pick synced from another.
            ("collected", "picked", "collected"),
            ("collected", "ready", "collected"),
            ("ready", "picked", "ready"),
            // Cancelled stays so, unless the goods left the store.
            ("cancelled", "picked", "cancelled"),
            ("cancelled", "collected", "collected"),
            ("cancelled", "shipped", "shipped"),
        ] {
            let mut entity = order(from);
            advance(&mut entity, to);
            assert_eq!(entity.status, expected, "{from} then {to}");
        }
    }
}
