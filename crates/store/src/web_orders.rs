//! Orders from the web at this store: what HQ routed here (the reference change log's `order`
//! entities, kept in `web_orders`), the tills' task list (to pick, ready for pickup, to ship),
//! and the steps a till records on its ledger (`OrderStep`: picked, ready, shipped, handed
//! over). A step is checked and recorded inside the ledger writer's transaction, so two tills
//! never hand over one order; its status here is the later of HQ's and this store's own, so a
//! step shows at once, online or not.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use domain::catalog::Sku;
use domain::ledger::OrderStepKind;
use domain::quantity::{Quantity, format_signed_milli};
use protocol::sync::OrderEntity;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::api::{ApiError, ApiResult, WriteRequest, recorded, terminal};
use crate::auth::Caller;
use crate::ledger::{Op, WriteError};
use crate::node::Node;

/// The prefix of the text in an order's pickup QR code (`kassa-order:W-000123`); a scanner
/// that reads it sends it whole.
pub const QR_PREFIX: &str = "kassa-order:";

/// An order as this store holds it.
#[derive(Debug, Clone)]
pub(crate) struct WebOrder {
    pub entity: OrderEntity,
    /// What this store's tills did last, before HQ said so.
    pub local_status: Option<String>,
    /// The quantities picked here, per SKU (thousandths).
    pub picked: Option<BTreeMap<String, i64>>,
    /// The quantities brought back here after delivery, per SKU (thousandths).
    pub returned: Option<BTreeMap<String, i64>>,
}

fn rank(status: &str) -> u8 {
    match status {
        "placed" => 0,
        "picked" => 1,
        "ready" => 2,
        "shipped" | "collected" => 3,
        "cancelled" => 4,
        _ => 0,
    }
}

impl WebOrder {
    /// Where the order stands: the later of HQ's status and this store's; a cancellation stands
    /// unless the goods had already left.
    pub fn status(&self) -> &str {
        match &self.local_status {
            Some(local) if rank(local) > rank(&self.entity.status) => local,
            Some(local) if self.entity.status == "cancelled" && rank(local) == 3 => local,
            _ => &self.entity.status,
        }
    }

    /// The quantities picked per SKU: this store's, else HQ's record of them.
    fn picked(&self) -> Option<BTreeMap<String, i64>> {
        if let Some(p) = &self.picked {
            return Some(p.clone());
        }
        let mut out = BTreeMap::new();
        for line in &self.entity.lines {
            *out.entry(line.sku.clone()).or_default() += line.picked?;
        }
        Some(out)
    }

    /// What came back per SKU: this store's record, else HQ's.
    fn returned(&self) -> BTreeMap<String, i64> {
        if let Some(r) = &self.returned {
            return r.clone();
        }
        let mut out = BTreeMap::new();
        for line in &self.entity.lines {
            *out.entry(line.sku.clone()).or_default() += line.returned.unwrap_or(0);
        }
        out
    }

    fn ordered(&self) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        for line in &self.entity.lines {
            *out.entry(line.sku.clone()).or_default() += line.quantity;
        }
        out
    }

    /// The order as the till shows it.
    pub fn view(&self) -> Value {
        let currency = domain::Currency::parse(&self.entity.currency).ok();
        let picked = self.picked();
        let task = match (self.status(), self.entity.fulfilment.as_str()) {
            ("placed", _) => Some("pick"),
            ("picked", "pickup") => Some("ready"),
            ("ready", _) => Some("hand-over"),
            ("picked", _) => Some("ship"),
            _ => None,
        };
        json!({
            "id": self.entity.id,
            "number": self.entity.number,
            "qr": format!("{QR_PREFIX}{}", self.entity.number),
            "status": self.status(),
            "task": task,
            "fulfilment": self.entity.fulfilment,
            "payment": self.entity.payment,
            "customer": self.entity.customer,
            "shipping_address": self.entity.shipping_address,
            "currency": self.entity.currency,
            "created_ms": self.entity.created_ms,
            "lines": self.entity.lines.iter().map(|l| json!({
                "sku": l.sku,
                "name": l.name,
                "quantity": format_signed_milli(l.quantity),
                "unit_price": currency.map(|c| domain::Money::from_minor(l.unit_price_minor, c).amount_string()),
            })).collect::<Vec<_>>(),
            "picked": picked.map(|p| p.iter().map(|(sku, q)| json!({"sku": sku, "quantity": format_signed_milli(*q)})).collect::<Vec<_>>()),
            "returned": self.returned().iter().filter(|(_, q)| **q > 0).map(|(sku, q)| json!({"sku": sku, "quantity": format_signed_milli(*q)})).collect::<Vec<_>>(),
        })
    }
}

fn order_of(row: &sqlx::sqlite::SqliteRow) -> Option<WebOrder> {
    Some(WebOrder {
        entity: serde_json::from_str(row.get::<&str, _>("payload")).ok()?,
        local_status: row.get("local_status"),
        picked: row
            .get::<Option<String>, _>("picked")
            .and_then(|p| serde_json::from_str(&p).ok()),
        returned: row
            .get::<Option<String>, _>("returned")
            .and_then(|p| serde_json::from_str(&p).ok()),
    })
}

/// The order by number, id or the text of its QR code.
pub(crate) async fn find(
    conn: &mut sqlx::SqliteConnection,
    asked: &str,
) -> Result<Option<WebOrder>, sqlx::Error> {
    let key = asked.trim();
    let key = key.strip_prefix(QR_PREFIX).unwrap_or(key);
    let row = sqlx::query(
        "SELECT payload, local_status, picked, returned FROM web_orders WHERE number = $1 OR id = $1",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().and_then(order_of))
}

/// A step the till asks for, before it is checked against the order.
#[derive(Debug, Clone)]
pub struct Step {
    /// The order's number, id or QR text.
    pub order: String,
    /// What is done.
    pub step: OrderStepKind,
    /// The quantities picked (a pick only).
    pub lines: Vec<(Sku, Quantity)>,
    /// The sale that took payment at pickup (a handover of an order paid at pickup only).
    pub sale_receipt: Option<String>,
    /// A return refunded as store credit onto this new account, instead of by the web shop.
    pub store_credit: Option<domain::stored_value::AccountNumber>,
}

/// What the returned `lines` of `order` are worth at the order's prices (half a cent up).
pub(crate) fn value_of(order: &WebOrder, lines: &[(Sku, Quantity)]) -> Option<domain::Money> {
    let currency = domain::Currency::parse(&order.entity.currency).ok()?;
    let mut minor: i64 = 0;
    for (sku, q) in lines {
        let line = order.entity.lines.iter().find(|l| l.sku == sku.as_str())?;
        let value = (i128::from(line.unit_price_minor) * i128::from(q.milli()) + 500) / 1000;
        minor = minor.checked_add(i64::try_from(value).ok()?)?;
    }
    Some(domain::Money::from_minor(minor, currency))
}

fn conflict(code: &'static str, message: String) -> WriteError {
    WriteError::Conflict { code, message }
}

fn rejected(field: &str, message: String) -> WriteError {
    WriteError::Rejected {
        code: "invalid_field",
        field: field.to_owned(),
        message,
    }
}

/// Checks `step` against the order as it stands in `conn`'s transaction: the order, its status
/// after the step, the quantities it concerns and what the store records of it.
pub(crate) async fn check(
    conn: &mut sqlx::SqliteConnection,
    step: &Step,
) -> Result<(WebOrder, &'static str, Vec<(Sku, Quantity)>), WriteError> {
    let order = find(conn, &step.order)
        .await?
        .ok_or_else(|| WriteError::NotFound {
            code: "order_not_found",
            message: format!(
                "no order `{}` for this store (an order of another store is picked up there)",
                step.order.chars().take(64).collect::<String>()
            ),
        })?;
    let status = order.status().to_owned();
    let number = &order.entity.number;
    if matches!(step.step, OrderStepKind::Returned) {
        return check_return(&order, &status, step)
            .map(|lines| (order.clone(), rank_name(&status), lines));
    }
    if status == "cancelled" {
        return Err(conflict(
            "order_cancelled",
            format!("order {number} was cancelled: give nothing out"),
        ));
    }
    let pickup = order.entity.fulfilment == "pickup";
    let (allowed, next): (&[&str], &'static str) = match &step.step {
        OrderStepKind::Picked => (&["placed"], "picked"),
        OrderStepKind::Ready if pickup => (&["picked"], "ready"),
        OrderStepKind::Shipped { .. } if !pickup => (&["picked"], "shipped"),
        OrderStepKind::HandedOver if pickup => (&["picked", "ready"], "collected"),
        _ => {
            return Err(conflict(
                "wrong_fulfilment",
                format!(
                    "order {number} is for {}: it is not {}",
                    order.entity.fulfilment,
                    step.step.as_str()
                ),
            ));
        }
    };
    if !allowed.contains(&status.as_str()) {
        return Err(conflict(
            "order_not_ready",
            format!(
                "order {number} is {status}: it cannot be {} now",
                step.step.as_str()
            ),
        ));
    }
    let lines = match &step.step {
        OrderStepKind::Picked => {
            let ordered = order.ordered();
            let mut picked: BTreeMap<String, i64> = BTreeMap::new();
            for (i, (sku, q)) in step.lines.iter().enumerate() {
                let Some(max) = ordered.get(sku.as_str()) else {
                    return Err(rejected(
                        &format!("lines[{i}].sku"),
                        format!("order {number} has no `{sku}`"),
                    ));
                };
                let total = picked.entry(sku.to_string()).or_default();
                *total += q.milli();
                if *total > *max {
                    return Err(rejected(
                        &format!("lines[{i}].quantity"),
                        format!(
                            "order {number} has {} of `{sku}`: no more can be picked",
                            format_signed_milli(*max)
                        ),
                    ));
                }
            }
            step.lines.clone()
        }
        _ => {
            if !step.lines.is_empty() {
                return Err(rejected(
                    "lines",
                    "only a pick names quantities: the rest go by what was picked".into(),
                ));
            }
            order
                .picked()
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, q)| *q > 0)
                .filter_map(|(sku, q)| {
                    Some((Sku::parse(&sku).ok()?, Quantity::from_milli(q).ok()?))
                })
                .collect()
        }
    };
    match (
        &step.step,
        order.entity.payment.as_str(),
        &step.sale_receipt,
    ) {
        (OrderStepKind::HandedOver, "at-pickup", None) => {
            return Err(rejected(
                "sale_receipt",
                format!("order {number} is paid at pickup: ring it up and name the sale's receipt"),
            ));
        }
        (OrderStepKind::HandedOver, "at-pickup", Some(receipt)) => {
            let known: Option<String> =
                sqlx::query_scalar("SELECT number FROM receipts WHERE number = $1")
                    .bind(receipt)
                    .fetch_optional(&mut *conn)
                    .await?;
            if known.is_none() {
                return Err(rejected(
                    "sale_receipt",
                    format!("no sale `{receipt}` at this store"),
                ));
            }
        }
        (_, _, Some(_)) => {
            return Err(rejected(
                "sale_receipt",
                format!("order {number} is not paid at pickup: no sale to name"),
            ));
        }
        _ => {}
    }
    Ok((order, next, lines))
}

/// The status names the writer records (a return leaves the status as it is).
fn rank_name(status: &str) -> &'static str {
    match status {
        "shipped" => "shipped",
        _ => "collected",
    }
}

/// A return of goods of a delivered order: what came back, never more than was delivered less
/// what came back before.
fn check_return(
    order: &WebOrder,
    status: &str,
    step: &Step,
) -> Result<Vec<(Sku, Quantity)>, WriteError> {
    let number = &order.entity.number;
    if !matches!(status, "collected" | "shipped") {
        return Err(conflict(
            "order_not_delivered",
            format!("order {number} is {status}: only what the customer received comes back"),
        ));
    }
    if order.entity.payment == "at-pickup" {
        // The till took the money with a sale, and that sale took the stock: a return of the
        // sale refunds it and puts the stock back, once.
        return Err(conflict(
            "paid_at_till",
            format!(
                "order {number} was paid at pickup: take it back as a return of the sale that took the payment"
            ),
        ));
    }
    if step.lines.is_empty() {
        return Err(rejected("lines", "name what comes back".into()));
    }
    let delivered = order.picked().unwrap_or_else(|| order.ordered());
    let before = order.returned();
    let mut back: BTreeMap<String, i64> = BTreeMap::new();
    for (i, (sku, q)) in step.lines.iter().enumerate() {
        let Some(had) = delivered.get(sku.as_str()) else {
            return Err(rejected(
                &format!("lines[{i}].sku"),
                format!("order {number} delivered no `{sku}`"),
            ));
        };
        let total = back.entry(sku.to_string()).or_default();
        *total += q.milli();
        let room = had - before.get(sku.as_str()).copied().unwrap_or(0);
        if *total > room {
            return Err(rejected(
                &format!("lines[{i}].quantity"),
                format!(
                    "order {number} delivered {} of `{sku}` and {} came back before: at most {} more",
                    format_signed_milli(*had),
                    format_signed_milli(had - room),
                    format_signed_milli(room.max(0))
                ),
            ));
        }
    }
    Ok(step.lines.clone())
}

/// Records in `conn`'s transaction what the step did to the order here.
pub(crate) async fn record(
    conn: &mut sqlx::SqliteConnection,
    order: &WebOrder,
    status: &str,
    step: &OrderStepKind,
    lines: &[(Sku, Quantity)],
) -> Result<(), sqlx::Error> {
    if matches!(step, OrderStepKind::Returned) {
        let mut back = order.returned();
        for (sku, q) in lines {
            *back.entry(sku.to_string()).or_default() += q.milli();
        }
        sqlx::query("UPDATE web_orders SET returned = $1 WHERE id = $2")
            .bind(serde_json::to_string(&back).unwrap_or_default())
            .bind(&order.entity.id)
            .execute(&mut *conn)
            .await?;
        return Ok(());
    }
    let picked = matches!(step, OrderStepKind::Picked).then_some(lines);
    let picked = picked.map(|lines| {
        let mut per_sku: BTreeMap<String, i64> = BTreeMap::new();
        for (sku, q) in lines {
            *per_sku.entry(sku.to_string()).or_default() += q.milli();
        }
        serde_json::to_string(&per_sku).unwrap_or_default()
    });
    sqlx::query(
        "UPDATE web_orders SET local_status = $1, picked = COALESCE($2, picked) WHERE id = $3",
    )
    .bind(status)
    .bind(picked)
    .bind(&order.entity.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The query of a task list: `show=open` (the default: what the store still has to do) or
/// `show=all`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskQuery {
    #[serde(default)]
    show: Option<String>,
}

impl TaskQuery {
    /// Whether everything is asked for; anything but `open` or `all` is refused at `show`.
    pub(crate) fn all(
        query: Result<Query<TaskQuery>, axum::extract::rejection::QueryRejection>,
    ) -> ApiResult<bool> {
        match crate::api::query_params(query)?.show.as_deref() {
            None | Some("open") => Ok(false),
            Some("all") => Ok(true),
            Some(_) => Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_query",
                "`open` or `all`",
            )
            .at("show")),
        }
    }
}

/// `GET /v1/web-orders?show=open|all`: the store's orders from the web, oldest first, each with
/// its task (`pick`, `ready`, `ship`, `hand-over`), for any member signed in here.
pub(crate) async fn list(
    State(node): State<Arc<Node>>,
    _caller: Caller,
    query: Result<Query<TaskQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let all = TaskQuery::all(query)?;
    let rows = sqlx::query("SELECT payload, local_status, picked, returned FROM web_orders")
        .fetch_all(&node.pools.reader)
        .await?;
    let mut orders: Vec<WebOrder> = rows.iter().filter_map(order_of).collect();
    orders.sort_by_key(|o| (o.entity.created_ms, o.entity.number.clone()));
    let orders: Vec<Value> = orders
        .iter()
        .filter(|o| all || rank(o.status()) < 3)
        .map(WebOrder::view)
        .collect();
    Ok(Json(json!({ "orders": orders })))
}

/// `GET /v1/web-orders/{number}`: one order by number, id or the text of its QR code.
pub(crate) async fn one(
    State(node): State<Arc<Node>>,
    _caller: Caller,
    Path(number): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut conn = node.pools.reader.acquire().await?;
    let order = find(&mut conn, &number).await?.ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "order_not_found",
            format!(
                "no order `{}` for this store",
                number.chars().take(64).collect::<String>()
            ),
        )
    })?;
    Ok(Json(order.view()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepRequest {
    terminal: String,
    /// `picked`, `ready`, `shipped` or `handed-over`.
    step: String,
    #[serde(default)]
    lines: Vec<StepLine>,
    #[serde(default)]
    carrier: Option<String>,
    #[serde(default)]
    tracking: Option<String>,
    #[serde(default)]
    sale_receipt: Option<String>,
    /// For a return: `web` (the shop refunds; the default) or `store-credit` (the customer
    /// takes store credit here instead).
    #[serde(default)]
    refund: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepLine {
    sku: String,
    quantity: String,
}

fn required_text(field: &str, value: Option<&str>) -> ApiResult<String> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() && v.chars().count() <= 100 => Ok(v.to_owned()),
        Some(v) if !v.is_empty() => Err(ApiError::invalid(
            "invalid_field",
            field,
            "at most 100 characters",
        )),
        _ => Err(ApiError::invalid("invalid_field", field, "required")),
    }
}

/// `POST /v1/web-orders/{number}/steps`: records a step of the order on the till's ledger —
/// `picked` with the quantities found, `ready`, `shipped` with carrier and tracking number, or
/// `handed-over` (naming the sale when it was paid at pickup). The session must be the till's.
pub(crate) async fn step(
    State(node): State<Arc<Node>>,
    Path(number): Path<String>,
    WriteRequest { key, body, caller }: WriteRequest,
) -> ApiResult<Response> {
    let request: StepRequest = body.parse()?;
    let terminal = terminal(&node, &request.terminal)?;
    caller.at(&terminal)?;
    let kind = match request.step.as_str() {
        "picked" => OrderStepKind::Picked,
        "ready" => OrderStepKind::Ready,
        "shipped" => OrderStepKind::Shipped {
            carrier: required_text("carrier", request.carrier.as_deref())?,
            tracking: required_text("tracking", request.tracking.as_deref())?,
        },
        "handed-over" => OrderStepKind::HandedOver,
        "returned" => OrderStepKind::Returned,
        _ => {
            return Err(ApiError::invalid(
                "invalid_field",
                "step",
                "`picked`, `ready`, `shipped`, `handed-over` or `returned`",
            ));
        }
    };
    let mut lines = Vec::with_capacity(request.lines.len());
    for (i, line) in request.lines.iter().enumerate() {
        let sku = Sku::parse(&line.sku)
            .map_err(|e| ApiError::invalid("invalid_field", format!("lines[{i}].sku"), e))?;
        // A line found nowhere is picked 0: it may be sent as such, or left out.
        if line.quantity.trim() == "0" {
            continue;
        }
        let quantity = Quantity::parse(&line.quantity)
            .map_err(|e| ApiError::invalid("invalid_field", format!("lines[{i}].quantity"), e))?;
        let by_the_piece = crate::api::context(&node)?
            .variant(&sku, node.clock.now())
            .is_some_and(|item| item.unit == domain::quantity::UnitOfSale::Each);
        if by_the_piece && quantity.milli() % 1000 != 0 {
            return Err(ApiError::invalid(
                "invalid_field",
                format!("lines[{i}].quantity"),
                format!("`{sku}` is sold by the piece: a whole number"),
            ));
        }
        lines.push((sku, quantity));
    }
    let store_credit = match (request.refund.as_deref(), &kind) {
        (None | Some("web"), _) => None,
        (Some("store-credit"), OrderStepKind::Returned) => {
            crate::stored_value::refund_account(domain::sale::TenderKind::StoreCredit, None)?
                .and_then(|n| domain::stored_value::AccountNumber::parse(&n).ok())
        }
        _ => {
            return Err(ApiError::invalid(
                "invalid_field",
                "refund",
                "`web` or `store-credit`, for a return only",
            ));
        }
    };
    let op = Op::OrderStep {
        terminal,
        staff: caller.staff.clone(),
        step: Step {
            order: number,
            step: kind,
            lines,
            sale_receipt: request.sale_receipt.filter(|r| !r.trim().is_empty()),
            store_credit,
        },
    };
    Ok(recorded(node.ledger.write(Some(key), op).await?))
}
