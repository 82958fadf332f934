//! Holds for a customer, placed at the till: HQ reserves the goods at this store (channel
//! `store`) for the days asked, so that the web shop cannot promise them meanwhile. A hold is
//! HQ's promise, kept where every channel's promises are kept: placing or releasing one needs
//! HQ, and is refused as out of reach when HQ cannot be asked. Selling never waits for it — a
//! till sells what is on the shelf, held or not (the policy of one stock for every channel).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::quantity::{Quantity, UnitOfSale};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiError, ApiResult, WriteRequest, context, lookup_error, terminal};
use crate::auth::Caller;
use crate::node::Node;

/// Lines one hold may hold.
const MAX_LINES: usize = 20;
/// The longest hold, in days.
const MAX_DAYS: u32 = 14;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldRequest {
    terminal: String,
    /// Who it is held for (a name, a phone number): 1 to 80 characters.
    customer: String,
    /// For how many days (1 to 14; 2 when absent).
    #[serde(default)]
    days: Option<u32>,
    lines: Vec<HoldLine>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldLine {
    /// A barcode, PLU or SKU, as scanned or typed.
    code: String,
    quantity: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseRequest {
    terminal: String,
}

/// HQ, or why it cannot be asked.
fn hq(node: &Node) -> ApiResult<&(crate::sync::SyncSettings, reqwest::Client)> {
    node.online.link().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_hq",
            "this store runs without HQ: a hold is HQ's promise to the web shop, and there is none",
        )
    })
}

fn unreachable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "hq_unreachable",
        format!(
            "a hold is kept at HQ, which cannot be reached now ({e}): put the goods aside and place the hold when the store is online"
        ),
    )
}

/// HQ's answer: its body on success; its refusal (what the store can promise, a variant sold
/// online only, an unknown hold) with its field; anything else as HQ's refusal.
async fn answer(response: reqwest::Response) -> ApiResult<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let message = body["message"].as_str().unwrap_or_default().to_owned();
    let code = match body["code"].as_str() {
        Some("insufficient_stock") => "insufficient_stock",
        Some("not_sold_in_stores") => "not_sold_in_stores",
        Some("not_found") => "hold_not_found",
        _ => "hq_refused",
    };
    let status = match code {
        "hq_refused" => StatusCode::BAD_GATEWAY,
        "hold_not_found" => StatusCode::NOT_FOUND,
        _ => StatusCode::CONFLICT,
    };
    let error = ApiError::new(status, code, format!("HQ: {message}"));
    Err(match body["field"].as_str() {
        Some(field) => error.at(field),
        None => error,
    })
}

/// `POST /v1/holds`: holds the lines at this store for a customer, at HQ, for `days` days. The
/// session must be the till's; idempotent under its `Idempotency-Key` (HQ keeps the answer).
pub(crate) async fn place(
    State(node): State<Arc<Node>>,
    WriteRequest { key, body, caller }: WriteRequest,
) -> ApiResult<Response> {
    let request: HoldRequest = body.parse()?;
    let terminal = terminal(&node, &request.terminal)?;
    caller.at(&terminal)?;
    let customer = request.customer.trim();
    if customer.is_empty() || customer.chars().count() > 80 {
        return Err(ApiError::invalid(
            "invalid_field",
            "customer",
            "who it is held for: 1 to 80 characters",
        ));
    }
    let days = request.days.unwrap_or(2);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ApiError::invalid(
            "invalid_field",
            "days",
            format!("1 to {MAX_DAYS} days"),
        ));
    }
    if request.lines.is_empty() || request.lines.len() > MAX_LINES {
        return Err(ApiError::invalid(
            "invalid_field",
            "lines",
            format!("1 to {MAX_LINES} lines"),
        ));
    }
    let ctx = context(&node)?;
    let now = node.clock.now();
    let mut lines = Vec::with_capacity(request.lines.len());
    for (i, line) in request.lines.iter().enumerate() {
        let found = ctx
            .lookup(&line.code, now)
            .map_err(|e| lookup_error(e, format!("lines[{i}].code")))?;
        let quantity = Quantity::parse(&line.quantity)
            .map_err(|e| ApiError::invalid("invalid_field", format!("lines[{i}].quantity"), e))?;
        if quantity.milli() <= 0 || (found.unit == UnitOfSale::Each && quantity.milli() % 1000 != 0)
        {
            return Err(ApiError::invalid(
                "invalid_field",
                format!("lines[{i}].quantity"),
                format!(
                    "`{}` is held by the piece: a whole number above 0",
                    found.sku
                ),
            ));
        }
        lines.push(json!({"sku": found.sku.to_string(), "quantity": line.quantity.trim()}));
    }
    let (settings, http) = hq(&node)?;
    let hold = json!({
        "location": node.store.as_str(),
        "channel": "store",
        "ttl_seconds": u64::from(days) * 86_400,
        "reference": format!("{customer} (held at {terminal} by {})", caller.staff),
        "lines": lines,
    });
    let response = http
        .post(format!("{}/v1/reservations", settings.hq_url))
        .bearer_auth(settings.token.get())
        .header(
            "Idempotency-Key",
            format!("hold-{}-{}", node.store, key.key),
        )
        .json(&hold)
        .send()
        .await
        .map_err(unreachable)?;
    let held = answer(response).await?;
    // Kept for the tills' list; a retry of the same request finds the row there already.
    sqlx::query(
        "INSERT OR IGNORE INTO holds (id, customer, lines, until_ms, terminal, staff, created_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(held["id"].as_str().unwrap_or_default())
    .bind(customer)
    .bind(held["lines"].to_string())
    .bind(held["expires_ms"].as_i64().unwrap_or(0))
    .bind(terminal.as_str())
    .bind(caller.staff.as_str())
    .bind(now.millis())
    .execute(&node.pools.writer)
    .await?;
    let mut answer = held;
    answer["customer"] = json!(customer);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `POST /v1/holds/{id}/release`: ends a hold of this store before its time (the customer
/// took the goods, or will not come).
pub(crate) async fn release(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    WriteRequest { body, caller, .. }: WriteRequest,
) -> ApiResult<Response> {
    let request: ReleaseRequest = body.parse()?;
    let terminal = terminal(&node, &request.terminal)?;
    caller.at(&terminal)?;
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(ApiError::invalid("invalid_field", "id", "a hold's id"));
    }
    let (settings, http) = hq(&node)?;
    let response = http
        .post(format!("{}/v1/reservations/{id}/actions", settings.hq_url))
        .bearer_auth(settings.token.get())
        .json(&json!({"action": "release"}))
        .send()
        .await
        .map_err(unreachable)?;
    let released = answer(response).await?;
    sqlx::query("UPDATE holds SET released_ms = $1 WHERE id = $2 AND released_ms IS NULL")
        .bind(node.clock.now().millis())
        .bind(&id)
        .execute(&node.pools.writer)
        .await?;
    Ok((StatusCode::CREATED, Json(released)).into_response())
}

/// `GET /v1/holds`: the holds this store's tills placed that still hold, soonest ending first.
pub(crate) async fn list(State(node): State<Arc<Node>>, _caller: Caller) -> ApiResult<Json<Value>> {
    let rows: Vec<(String, String, String, i64, String, String)> = sqlx::query_as(
        "SELECT id, customer, lines, until_ms, terminal, staff FROM holds
         WHERE released_ms IS NULL AND until_ms > $1 ORDER BY until_ms, id",
    )
    .bind(node.clock.now().millis())
    .fetch_all(&node.pools.reader)
    .await?;
    let holds: Vec<Value> = rows
        .into_iter()
        .map(|(id, customer, lines, until, terminal, staff)| {
            json!({
                "id": id,
                "customer": customer,
                "lines": serde_json::from_str::<Value>(&lines).unwrap_or(Value::Null),
                "until_ms": until,
                "terminal": terminal,
                "staff": staff,
            })
        })
        .collect();
    Ok(Json(json!({ "holds": holds })))
}
