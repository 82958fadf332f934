//! The store node's HTTP API: JSON in and out, one error type mapped to status codes in one
//! place, idempotent writes through the ledger writer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::barcode::EmbeddedValue;
use domain::catalog::Sku;
use domain::ledger::AdjustmentReason;
use domain::quantity::{format_signed_milli, parse_signed_milli};
use domain::sale::{
    LineInput, PricedReturn, ReturnedLine, SaleError, TenderKind, price_cart, settle,
};
use domain::staff::{Permission, Role};
use domain::{Money, Quantity, TerminalId, UnitOfSale};
use protocol::FieldError;
use protocol::api::{
    AdjustmentRequest, CartLineRequest, CartView, CountRequest, DiscountDto, PriceCartRequest,
    ReturnRequest, SaleRequest, VoidRequest, parse_tenders,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::auth::Caller;
use crate::ledger::{IdempotencyKey, Op, WriteError, recorded_response};
use crate::node::Node;
use crate::refdata::{Item, StoreContext};
use crate::staff_api::{approve, sale_permissions};
use crate::views::event_view;

/// The largest request body accepted.
pub const MAX_BODY: usize = 256 * 1024;

/// Every error the API answers with: a status, a code, the field at fault, a message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    field: Option<String>,
    message: String,
    /// For `approval_required`: the permission that needs an approval.
    permission: Option<&'static str>,
    /// More of the error's state, merged into its body (a card refund that stopped part-way
    /// carries the parts given back and what is still due).
    detail: Option<serde_json::Map<String, Value>>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl ToString) -> Self {
        ApiError {
            status,
            code,
            field: None,
            message: message.to_string(),
            permission: None,
            detail: None,
        }
    }

    /// The same error, its body carrying `detail`'s fields too.
    pub(crate) fn with_detail(mut self, detail: serde_json::Map<String, Value>) -> Self {
        self.detail = Some(detail);
        self
    }

    pub(crate) fn invalid(
        code: &'static str,
        field: impl Into<String>,
        message: impl ToString,
    ) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).at(field)
    }

    /// The same error, naming the field at fault.
    pub(crate) fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// An approval by someone with more authority is needed for `permission`.
    pub(crate) fn approval_required(permission: &'static str, message: impl ToString) -> Self {
        let mut e =
            ApiError::new(StatusCode::FORBIDDEN, "approval_required", message).at("approval");
        e.permission = Some(permission);
        e
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::invalid("invalid_field", e.field.clone(), e)
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::KeyReused(_) => {
                ApiError::new(StatusCode::CONFLICT, "idempotency_key_reused", &e)
                    .at("Idempotency-Key")
            }
            WriteError::Conflict { code, message } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            WriteError::Rejected {
                code,
                field,
                message,
            } => ApiError::invalid(code, field, message),
            WriteError::NotFound { code, message } => {
                ApiError::new(StatusCode::NOT_FOUND, code, message)
            }
            WriteError::Db(_) | WriteError::Stopped => {
                tracing::error!(error = %e, "write failed");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable", e)
            }
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "database read failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "database_error",
            "database read failed",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.code, "message": self.message});
        if let Some(map) = body.as_object_mut() {
            if let Some(field) = self.field {
                map.insert("field".into(), Value::String(field));
            }
            if let Some(permission) = self.permission {
                map.insert("permission".into(), Value::String(permission.into()));
            }
            for (key, value) in self.detail.into_iter().flatten() {
                map.entry(key).or_insert(value);
            }
        }
        (self.status, Json(body)).into_response()
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// A JSON request body read as bytes (for the idempotency hash) and then parsed, with errors in
/// the API's own shape.
pub(crate) struct RawBody {
    bytes: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(req.headers());
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("request body is larger than {MAX_BODY} bytes"),
                )
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "unreadable_body", e)
            }
        })?;
        // A body in another media type is refused rather than guessed at: a form or plain text
        // that happens to parse as JSON was not meant as this request.
        if !json && !bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be JSON sent as `Content-Type: application/json`",
            )
            .at("Content-Type"));
        }
        Ok(RawBody { bytes })
    }
}

/// Whether the request says its body is JSON (`application/json`, or a `+json` type).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .is_some_and(|t| t == "application/json" || t.ends_with("+json"))
}

/// Gives every error answer the API's own shape. Handlers answer `{code, message, field}`
/// already; what axum's extractors refuse on their own (a query string that does not parse, a
/// path segment that is not UTF-8, a method a route does not take) comes as plain text, and is
/// rewritten here, once, so a client never has to read two shapes.
/// A handler's query parameters, or `400 invalid_query` saying what is wrong with them.
pub(crate) fn query_params<T>(
    query: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<T> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))
}

pub(crate) async fn json_errors(request: Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_plain_error = (status.is_client_error() || status.is_server_error())
        && !response
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| {
                t.starts_with("application/json") || t.starts_with("text/event-stream")
            });
    if !is_plain_error {
        return response;
    }
    let text = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let code = match status {
        StatusCode::BAD_REQUEST => "invalid_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_field",
        s if s.is_server_error() => "internal_error",
        _ => "invalid_request",
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_lowercase()
    } else {
        text
    };
    let mut error = ApiError::new(status, code, &message);
    // serde's messages name the field at fault as "missing field `x`" or "unknown field `x`".
    if let Some(field) = ["field `", "variant `"]
        .iter()
        .find_map(|p| message.split_once(p))
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(field, _)| field.to_owned())
    {
        error = error.at(field);
    }
    error.into_response()
}

impl RawBody {
    /// The body's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the body is empty (or only whitespace).
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.iter().all(u8::is_ascii_whitespace)
    }

    pub(crate) fn parse<T: DeserializeOwned>(&self) -> ApiResult<T> {
        serde_json::from_slice(&self.bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("request body is not valid: {e}"),
            )
        })
    }
}

fn idempotency_key(
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    body: &RawBody,
) -> ApiResult<IdempotencyKey> {
    let missing = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "idempotency_key_required",
            "every write needs an Idempotency-Key header of 1 to 128 visible ASCII characters",
        )
        .at("Idempotency-Key")
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(missing)?;
    let mut hasher = Sha256::new();
    hasher.update(method.as_str().as_bytes());
    hasher.update(b" ");
    hasher.update(uri.path().as_bytes());
    hasher.update(b"\n");
    hasher.update(&body.bytes);
    Ok(IdempotencyKey {
        key: key.to_owned(),
        request_hash: hasher.finalize().into(),
    })
}

/// A write request: its caller (checked from the headers before the body is read, so a request
/// without a credential costs the node nothing), its body, and its idempotency key (hashed with
/// method, path and body).
pub(crate) struct WriteRequest {
    pub(crate) key: IdempotencyKey,
    pub(crate) body: RawBody,
    pub(crate) caller: Caller,
}

impl FromRequest<Arc<Node>> for WriteRequest {
    type Rejection = ApiError;

    async fn from_request(req: Request, node: &Arc<Node>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let caller = Caller::from_request_parts(&mut parts, node).await?;
        let (method, uri, headers) = (
            parts.method.clone(),
            parts.uri.clone(),
            parts.headers.clone(),
        );
        let body = RawBody::from_request(Request::from_parts(parts, body), node).await?;
        let key = idempotency_key(&headers, &method, &uri, &body)?;
        Ok(WriteRequest { key, body, caller })
    }
}

pub(crate) fn recorded(r: crate::ledger::Recorded) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    (status, Json(r.body)).into_response()
}

/// The router of the node's API.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/v1/status", get(status))
        .route("/metrics", get(metrics))
        .route("/v1/items/{code}", get(item))
        .route("/v1/carts/price", post(price))
        .route("/v1/sales", post(sale))
        .route("/v1/sales/void-last", post(void_last))
        .route("/v1/sales/last", get(last_sale))
        .route("/v1/returns", post(return_goods))
        .route("/v1/stock/adjustments", post(adjust))
        .route("/v1/stock/counts", post(count))
        .route("/v1/stock/{sku}", get(stock))
        .route("/v1/receipts/{number}", get(receipt))
        .route("/v1/web-orders", get(crate::web_orders::list))
        .route("/v1/web-orders/{number}", get(crate::web_orders::one))
        .route(
            "/v1/web-orders/{number}/steps",
            post(crate::web_orders::step),
        )
        .route("/v1/fiscal/null-receipt", post(crate::fiscal::null_receipt))
        .route("/v1/fiscal/close", post(crate::fiscal::close))
        .route(
            "/v1/fiscal/training-receipt",
            post(crate::fiscal::training_receipt),
        )
        .route("/v1/web-returns", get(crate::web_returns::list))
        .route(
            "/v1/web-returns/{number}/receive",
            post(crate::web_returns::receive),
        )
        .route(
            "/v1/holds",
            get(crate::holds::list).post(crate::holds::place),
        )
        .route("/v1/holds/{id}/release", post(crate::holds::release))
        .route("/v1/journal", get(journal))
        .merge(crate::till::routes())
        .merge(crate::staff_api::routes())
        .merge(crate::printing::routes())
        .merge(crate::stored_value::routes())
        .merge(crate::cards_api::routes())
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(node)
}

/// The OpenAPI document, written by hand beside the routes and checked against them by tests.
pub const OPENAPI: &str = include_str!("../openapi.json");

async fn openapi() -> Response {
    ([("content-type", "application/json")], OPENAPI).into_response()
}

pub(crate) fn context(node: &Node) -> ApiResult<Arc<StoreContext>> {
    node.context().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_reference_data",
            "this node has no reference data yet: run `kassa store seed` or connect it to HQ",
        )
    })
}

pub(crate) fn terminal(node: &Node, value: &str) -> ApiResult<TerminalId> {
    let id =
        TerminalId::parse(value).map_err(|e| ApiError::invalid("invalid_field", "terminal", e))?;
    if !node.hosts(&id) {
        return Err(ApiError::invalid(
            "unknown_terminal",
            "terminal",
            format!("terminal `{id}` is not hosted by this node"),
        ));
    }
    Ok(id)
}

/// How far one terminal's ledger has reached HQ.
struct OutboxHead {
    terminal: TerminalId,
    last_seq: i64,
    acked_seq: i64,
    /// Wall-clock part of the oldest event HQ has not acknowledged.
    oldest_unsynced_ms: Option<i64>,
}

/// Every hosted terminal's last sequence, acknowledged sequence and oldest unsynced event: what
/// both the status and the metrics report.
async fn outbox_heads(node: &Node) -> ApiResult<Vec<OutboxHead>> {
    let mut heads = Vec::new();
    for t in node.terminals() {
        let last_seq: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events WHERE terminal = $1")
                .bind(t.as_str())
                .fetch_one(&node.pools.reader)
                .await?;
        let acked_seq: i64 = sqlx::query_scalar("SELECT acked_seq FROM outbox WHERE terminal = $1")
            .bind(t.as_str())
            .fetch_optional(&node.pools.reader)
            .await?
            .unwrap_or(0);
        let oldest_unsynced_ms: Option<i64> =
            sqlx::query_scalar("SELECT hlc_wall FROM events WHERE terminal = $1 AND seq = $2")
                .bind(t.as_str())
                .bind(acked_seq + 1)
                .fetch_optional(&node.pools.reader)
                .await?;
        heads.push(OutboxHead {
            terminal: t.clone(),
            last_seq,
            acked_seq,
            oldest_unsynced_ms,
        });
    }
    Ok(heads)
}

async fn status(State(node): State<Arc<Node>>) -> ApiResult<Json<Value>> {
    status_json(&node).await.map(Json)
}

/// What `GET /v1/status` answers; also the status in a diagnostics bundle.
pub(crate) async fn status_json(node: &Node) -> ApiResult<Value> {
    let heads = outbox_heads(node).await?;
    let terminals: Vec<Value> = heads
        .iter()
        .map(|h| json!({"id": h.terminal.to_string(), "last_seq": h.last_seq}))
        .collect();
    let ctx = node.context();
    let sync = node.sync_status();
    let now = node.clock.now().millis();
    let unsynced: Vec<Value> = heads
        .iter()
        .map(|h| {
            let state = sync.terminals.get(h.terminal.as_str());
            json!({
                "terminal": h.terminal.to_string(),
                "acked_seq": h.acked_seq,
                "unsynced": h.last_seq - h.acked_seq,
                "oldest_unsynced_age_ms": h.oldest_unsynced_ms.map(|w| now - w),
                "state": state.map_or("idle", |s| s.state.as_str()),
                "reason": state.and_then(|s| s.reason.clone()),
            })
        })
        .collect();
    let followed = crate::refdata::hq_log(&node.pools.reader)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "database_unavailable", e))?;
    Ok(json!({
        "store": node.store.to_string(),
        "version": env!("CARGO_PKG_VERSION"),
        "reference_version": ctx.as_ref().map(|c| c.version),
        // Which history `reference_version` counts in: HQ's change log, or a local seed.
        "reference_source": followed.map_or_else(
            || json!({"kind": "local"}),
            |f| json!({"kind": "hq", "hq_url": f.url, "log": f.log}),
        ),
        "pin_pepper_error": node.pin_pepper_problem(),
        "currency": ctx.as_ref().map(|c| c.config.currency.code().to_owned()),
        "terminals": terminals,
        "fiscal": crate::fiscal::status(&node.pools.reader).await?,
        "sync": {
            "online": sync.online,
            "outbox": unsynced,
            "last_push_ms": sync.last_push_ms,
            "last_pull_ms": sync.last_pull_ms,
            "bytes_sent": sync.bytes_sent,
            "bytes_received": sync.bytes_received,
            "reference_error": sync.reference_error,
        },
        "backups": node.backups(),
    }))
}

/// Prometheus metrics: per terminal the last sequence, the sequence HQ acknowledged, unsynced
/// events and the age of the oldest; sync state and bytes on the wire.
async fn metrics(State(node): State<Arc<Node>>) -> ApiResult<Response> {
    let sync = node.sync_status();
    let now = node.clock.now().millis();
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, rows: Vec<(Option<String>, String)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for (terminal, value) in rows {
            match terminal {
                Some(t) => out.push_str(&format!("{name}{{terminal=\"{t}\"}} {value}\n")),
                None => out.push_str(&format!("{name} {value}\n")),
            }
        }
    };
    let mut last = Vec::new();
    let mut unsynced = Vec::new();
    let mut oldest = Vec::new();
    let heads = outbox_heads(&node).await?;
    for h in &heads {
        let t = Some(h.terminal.to_string());
        let age_ms = h.oldest_unsynced_ms.map_or(0, |w| (now - w).max(0));
        last.push((t.clone(), h.last_seq.to_string()));
        unsynced.push((t.clone(), (h.last_seq - h.acked_seq).to_string()));
        oldest.push((t, format!("{:.3}", age_ms as f64 / 1000.0)));
    }
    gauge(
        "kassa_store_last_seq",
        "Last sequence number per terminal.",
        last,
    );
    gauge(
        "kassa_store_unsynced_events",
        "Events HQ has not acknowledged yet.",
        unsynced,
    );
    gauge(
        "kassa_store_oldest_unsynced_seconds",
        "Age of the oldest unacknowledged event.",
        oldest,
    );
    gauge(
        "kassa_store_online",
        "1 when HQ answered the last request.",
        vec![(None, u8::from(sync.online).to_string())],
    );
    let rejected = sync
        .terminals
        .values()
        .filter(|t| t.state == "rejected")
        .count();
    gauge(
        "kassa_store_rejected_terminals",
        "Terminals whose batches HQ rejected.",
        vec![(None, rejected.to_string())],
    );
    gauge(
        "kassa_store_bytes_sent",
        "Bytes sent to HQ since start.",
        vec![(None, sync.bytes_sent.to_string())],
    );
    gauge(
        "kassa_store_bytes_received",
        "Bytes received from HQ since start.",
        vec![(None, sync.bytes_received.to_string())],
    );
    let mut failed = Vec::new();
    let mut unsigned = Vec::new();
    for (terminal, since) in crate::fiscal::unsigned_since(&node.pools.reader).await? {
        let t = Some(terminal);
        failed.push((t.clone(), u8::from(since.is_some()).to_string()));
        let age_ms = since.map_or(0, |w| (now - w).max(0));
        unsigned.push((t, format!("{:.3}", age_ms as f64 / 1000.0)));
    }
    gauge(
        "kassa_store_fiscal_device_failed",
        "1 while the till's fiscal signature device fails (receipts are marked, not signed).",
        failed,
    );
    gauge(
        "kassa_store_fiscal_unsigned_seconds",
        "Age of the till's first unsigned fiscal receipt since its last signed one (0 while it signs).",
        unsigned,
    );
    let pending = crate::payments::pending_offline_per_till(&node.pools.reader).await?;
    let mut offline = Vec::new();
    let mut offline_oldest = Vec::new();
    for h in &heads {
        let terminal = h.terminal.to_string();
        let (count, oldest) = pending.get(&terminal).cloned().unwrap_or_default();
        let age_ms = oldest
            .and_then(|at| at.parse::<jiff::Timestamp>().ok())
            .map_or(0, |at| (now - at.as_millisecond()).max(0));
        offline.push((Some(terminal.clone()), count.to_string()));
        offline_oldest.push((Some(terminal), (age_ms / 1000).to_string()));
    }
    gauge(
        "kassa_store_offline_card_approvals",
        "Card payments approved offline by the terminal and not settled yet.",
        offline,
    );
    gauge(
        "kassa_store_offline_card_oldest_seconds",
        "Age of the oldest card payment approved offline and not settled yet.",
        offline_oldest,
    );
    let backups = node.backups();
    gauge(
        "kassa_store_backup_age_seconds",
        "Seconds since the last scheduled backup was written whole (since the schedule started, before the first); no sample without scheduled backups.",
        backups
            .iter()
            .map(|b| {
                let since = b.last_ok_ms.unwrap_or(b.started_ms);
                (None, ((now - since).max(0) / 1000).to_string())
            })
            .collect(),
    );
    gauge(
        "kassa_store_backup_hq_age_seconds",
        "Seconds since HQ last held one of the node's backups whole (since the schedule started, before the first); no sample unless the node sends its backups to HQ.",
        backups
            .iter()
            .filter_map(|b| {
                let sent = b.to_hq.as_ref()?;
                let since = sent.last_ok_ms.unwrap_or(b.started_ms);
                Some((None, ((now - since).max(0) / 1000).to_string()))
            })
            .collect(),
    );
    gauge(
        "kassa_store_backup_interval_seconds",
        "The interval of the scheduled backups.",
        backups
            .iter()
            .map(|b| (None, b.every_s.to_string()))
            .collect(),
    );
    out.push_str(&format!(
        "# HELP kassa_store_pushes_total Pushes HQ acknowledged.\n# TYPE kassa_store_pushes_total counter\nkassa_store_pushes_total {}\n\
         # HELP kassa_store_push_seconds_total Seconds spent in acknowledged pushes.\n# TYPE kassa_store_push_seconds_total counter\nkassa_store_push_seconds_total {:.6}\n\
         # HELP kassa_store_last_push_seconds Latency of the last acknowledged push.\n# TYPE kassa_store_last_push_seconds gauge\nkassa_store_last_push_seconds {:.6}\n",
        sync.pushes, sync.push_seconds, sync.last_push_seconds
    ));
    Ok(([("content-type", "text/plain; version=0.0.4")], out).into_response())
}

pub(crate) fn lookup_error(e: domain::catalog::CatalogError, field: String) -> ApiError {
    use domain::barcode::BarcodeError;
    use domain::catalog::CatalogError;
    // A stable `reason` beside `invalid_code`, so that the till can say what is wrong with the
    // code in its own language; a wrong check digit also says which digit was expected.
    let mut detail = serde_json::Map::new();
    let reason = match &e {
        CatalogError::NotFound { .. } => {
            return ApiError::new(StatusCode::NOT_FOUND, "unknown_item", e).at(field);
        }
        CatalogError::Barcode(
            BarcodeError::CheckDigit {
                expected, found, ..
            }
            | BarcodeError::PriceCheckDigit {
                expected, found, ..
            },
        ) => {
            detail.insert("expected".into(), json!(expected));
            detail.insert("found".into(), json!(found));
            if matches!(e, CatalogError::Barcode(BarcodeError::CheckDigit { .. })) {
                "check_digit"
            } else {
                "price_check_digit"
            }
        }
        CatalogError::Barcode(BarcodeError::Empty) => "empty",
        CatalogError::Barcode(BarcodeError::ScientificNotation { .. }) => "scientific_notation",
        CatalogError::Barcode(BarcodeError::NotDigits { .. }) => "not_digits",
        CatalogError::Barcode(BarcodeError::Length { .. }) => "length",
        _ => "malformed",
    };
    detail.insert("reason".into(), json!(reason));
    ApiError::invalid("invalid_code", field, e).with_detail(detail)
}

fn embedded_view(embedded: Option<EmbeddedValue>, currency: domain::Currency) -> Value {
    match embedded {
        Some(EmbeddedValue::Price { minor }) => {
            json!({"price": Money::from_minor(minor, currency).amount_string()})
        }
        Some(EmbeddedValue::Weight { grams }) => json!({"weight_kg": format_signed_milli(grams)}),
        None => Value::Null,
    }
}

async fn on_hand(node: &Node, sku: &str) -> ApiResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT on_hand_milli FROM stock WHERE sku = $1")
            .bind(sku)
            .fetch_optional(&node.pools.reader)
            .await?
            .unwrap_or(0),
    )
}

async fn item(State(node): State<Arc<Node>>, Path(code): Path<String>) -> ApiResult<Json<Value>> {
    let ctx = context(&node)?;
    let found = ctx
        .lookup(&code, node.clock.now())
        .map_err(|e| lookup_error(e, "code".into()))?;
    let stock = on_hand(&node, found.sku.as_str()).await?;
    Ok(Json(json!({
        "sku": found.sku.to_string(),
        "name": found.name,
        "unit": found.unit.as_str(),
        "tax_category": found.tax_category.to_string(),
        "price": found.price.map(|p| p.amount_string()),
        "currency": ctx.config.currency.code(),
        "embedded": embedded_view(found.embedded, ctx.config.currency),
        "sold_in_store": found.sold_in_store,
        "open_price": found.open_price,
        "on_hand": format_signed_milli(stock),
        "reserved": node.hq_reserved(found.sku.as_str()).map(format_signed_milli),
    })))
}

/// `a / b` rounded half up, for positive `a` and `b`.
fn round_half_up_div(a: i64, b: i64) -> i64 {
    let (a, b) = (i128::from(a), i128::from(b));
    i64::try_from((2 * a + b) / (2 * b)).unwrap_or(i64::MAX)
}

/// Turns what the till sent into priced-ready lines: item, price, quantity (from the scale
/// label when it carries one).
/// A price typed for an open-price item: a positive amount in the store's currency, at most
/// [`protocol::seed::OPEN_PRICE_MAX_MINOR`].
fn open_price(typed: &str, currency: domain::Currency) -> Result<Money, String> {
    let price = Money::parse_major(typed, currency).map_err(|e| e.to_string())?;
    if price.minor() <= 0 {
        return Err(format!("{typed} is not above zero"));
    }
    if price.minor() > protocol::seed::OPEN_PRICE_MAX_MINOR {
        let max = Money::from_minor(protocol::seed::OPEN_PRICE_MAX_MINOR, currency);
        return Err(format!(
            "{typed} is above {} (a typing slip? a larger amount is not an open price)",
            max.amount_string()
        ));
    }
    Ok(price)
}

pub(crate) async fn resolve_lines(
    node: &Node,
    ctx: &Arc<StoreContext>,
    lines: &[CartLineRequest],
) -> ApiResult<Vec<LineInput>> {
    let currency = ctx.config.currency;
    let now = node.clock.now();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let f = |name: &str| format!("lines[{i}].{name}");
        let item: Item = ctx.lookup(&line.code, now).map_err(|e| {
            let mut err = lookup_error(e, f("code"));
            if err.status == StatusCode::NOT_FOUND {
                err.status = StatusCode::UNPROCESSABLE_ENTITY;
            }
            err
        })?;
        if !item.sold_in_store {
            return Err(ApiError::invalid(
                "not_sold_in_store",
                f("code"),
                format!("`{}` is sold online only", item.sku),
            ));
        }
        let price = match (&line.price, item.open_price) {
            (Some(typed), true) => open_price(typed, currency)
                .map_err(|reason| ApiError::invalid("invalid_price", f("price"), reason))?,
            (Some(_), false) => {
                return Err(ApiError::invalid(
                    "price_not_open",
                    f("price"),
                    format!(
                        "`{}` has a fixed price; only an open-price item takes a typed price",
                        item.sku
                    ),
                ));
            }
            (None, true) => {
                return Err(ApiError::invalid(
                    "price_required",
                    f("price"),
                    format!("`{}` is an open-price item: type its price", item.sku),
                ));
            }
            (None, false) => item.price.ok_or_else(|| {
                ApiError::invalid(
                    "no_price",
                    f("code"),
                    format!("`{}` has no price in force at this store", item.sku),
                )
            })?,
        };
        let requested = line
            .quantity
            .as_deref()
            .map(|q| {
                Quantity::parse(q).map_err(|e| ApiError::invalid("invalid_field", f("quantity"), e))
            })
            .transpose()?;
        let (quantity, fixed_amount) = match item.embedded {
            Some(EmbeddedValue::Weight { grams }) => (
                Quantity::from_milli(grams)
                    .map_err(|e| ApiError::invalid("invalid_code", f("code"), e))?,
                None,
            ),
            Some(EmbeddedValue::Price { minor }) => {
                // The label's price is what the customer pays; the weight is derived from it.
                let milli = if item.unit == UnitOfSale::Each || price.is_zero() {
                    1000
                } else {
                    round_half_up_div(minor.saturating_mul(1000), price.minor()).max(1)
                };
                (
                    Quantity::from_milli(milli)
                        .map_err(|e| ApiError::invalid("invalid_code", f("code"), e))?,
                    Some(Money::from_minor(minor, currency)),
                )
            }
            None => (requested.unwrap_or(Quantity::ONE), None),
        };
        let quantity = quantity
            .check_unit(item.unit)
            .map_err(|e| ApiError::invalid("invalid_field", f("quantity"), e))?;
        out.push(LineInput {
            sku: item.sku,
            name: item.name,
            unit_price: price,
            quantity,
            unit: item.unit,
            tax_category: item.tax_category,
            discount: line
                .discount
                .as_ref()
                .map(|d| d.parse(currency, &f("discount")))
                .transpose()?,
            fixed_amount,
        });
    }
    Ok(out)
}

pub(crate) fn sale_error(e: SaleError) -> ApiError {
    let field = match &e {
        SaleError::LineCurrency { line, .. } => format!("lines[{line}].code"),
        SaleError::LineQuantity { line, .. } => format!("lines[{line}].quantity"),
        SaleError::Discount { target, .. } => target.clone(),
        SaleError::BadPercent { .. } => "discount".into(),
        SaleError::NegativePrice { line, .. } => format!("lines[{line}].code"),
        SaleError::LineTax { line, .. } => format!("lines[{line}].code"),
        SaleError::NoLines => "lines".into(),
        SaleError::TenderNotPositive { index }
        | SaleError::TenderCurrency { index, .. }
        | SaleError::CashNotPayable { index, .. } => {
            format!("tenders[{index}].amount")
        }
        SaleError::TendersShort { .. } | SaleError::NonCashOverTender { .. } => "tenders".into(),
        SaleError::NoSuchLine { index, .. } | SaleError::ReturnExceedsSold { line: index, .. } => {
            format!("lines[{index}]")
        }
        SaleError::Tax(_) => "lines".into(),
        SaleError::Money(_) => "lines".into(),
    };
    let code = match &e {
        SaleError::TendersShort { .. } => "tenders_short",
        SaleError::NonCashOverTender { .. } => "non_cash_over_tender",
        SaleError::Tax(_) | SaleError::LineTax { .. } => "no_tax_rule",
        _ => "invalid_sale",
    };
    ApiError::invalid(code, field, e)
}

pub(crate) fn cart_discount(
    d: Option<&DiscountDto>,
    ctx: &StoreContext,
) -> ApiResult<Option<domain::sale::Discount>> {
    Ok(d.map(|d| d.parse(ctx.config.currency, "discount"))
        .transpose()?)
}

/// Prices a cart, writing nothing. When a member is signed in (the till), a cart that needs a
/// supervisor (a discount above the member's limit) is answered `403 approval_required` here,
/// at the moment the discount is given, rather than first at payment; with `approval` the
/// supervisor's PIN is checked now (and again by the sale).
async fn price(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: RawBody,
) -> ApiResult<Json<CartView>> {
    let request: PriceCartRequest = body.parse()?;
    let ctx = context(&node)?;
    let lines = resolve_lines(&node, &ctx, &request.lines).await?;
    let discount = cart_discount(request.discount.as_ref(), &ctx)?;
    let cart = price_cart(&ctx.config.jurisdiction, &lines, discount, node.clock.now())
        .map_err(sale_error)?;
    let needed = sale_permissions(&cart);
    if !needed.is_empty()
        && let Some(token) = crate::auth::bearer(&headers)
        && let Ok(member) = crate::auth::caller(&node, Some(&token)).await
        && !member.device
    {
        approve(
            &node,
            &member.terminal,
            &member,
            &needed,
            request.approval.as_ref(),
        )
        .await?;
    }
    Ok(Json(CartView::new(&cart, None)))
}

/// Answers a retry from the recorded response before doing any work.
pub(crate) async fn replay(node: &Node, key: &IdempotencyKey) -> ApiResult<Option<Response>> {
    let mut conn = node.pools.reader.acquire().await?;
    Ok(recorded_response(&mut conn, key).await?.map(recorded))
}

async fn sale(
    State(node): State<Arc<Node>>,
    WriteRequest { key, body, caller }: WriteRequest,
) -> ApiResult<Response> {
    if let Some(response) = replay(&node, &key).await? {
        return Ok(response);
    }
    let request: SaleRequest = body.parse()?;
    let terminal = terminal(&node, &request.terminal)?;
    let actor = caller.at(&terminal)?;
    let cashier = Some(actor.cashier(request.cashier.as_deref())?);
    let ctx = context(&node)?;
    if request.lines.is_empty() {
        return Err(ApiError::invalid(
            "invalid_sale",
            "lines",
            "a sale needs at least one line",
        ));
    }
    let lines = resolve_lines(&node, &ctx, &request.lines).await?;
    let discount = cart_discount(request.discount.as_ref(), &ctx)?;
    let cart = price_cart(&ctx.config.jurisdiction, &lines, discount, node.clock.now())
        .map_err(sale_error)?;
    let tenders = parse_tenders(&request.tenders, ctx.config.currency)?;
    if tenders.is_empty() && !cart.total.is_zero() {
        return Err(ApiError::invalid(
            "tenders_short",
            "tenders",
            "a sale needs at least one tender",
        ));
    }
    let settlement =
        settle(&cart, &tenders, ctx.config.jurisdiction.cash_rounding()).map_err(sale_error)?;
    let approvals = approve(
        &node,
        &terminal,
        actor,
        &sale_permissions(&cart),
        request.approval.as_ref(),
    )
    .await?;
    // Held until the sale is written: see `stored_value::check_redemptions`.
    let _redeeming =
        crate::stored_value::check_redemptions(&node, &tenders, ctx.config.currency).await?;
    let op = Op::Sale {
        terminal,
        cashier,
        cart,
        tenders,
        settlement,
        approvals,
    };
    Ok(recorded(node.ledger.write(Some(key), op).await?))
}

fn tender_kind(value: Option<&str>) -> ApiResult<TenderKind> {
    match value {
        None => Ok(TenderKind::Cash),
        Some(v) => TenderKind::parse(v).ok_or_else(|| {
            ApiError::invalid(
                "invalid_field",
                "refund_tender",
                format!("`{v}` is not one of cash, card, gift-card, store-credit"),
            )
        }),
    }
}

async fn return_goods(
    State(node): State<Arc<Node>>,
    WriteRequest { key, body, caller }: WriteRequest,
) -> ApiResult<Response> {
    if let Some(response) = replay(&node, &key).await? {
        return Ok(response);
    }
    let request: ReturnRequest = body.parse()?;
    let terminal = terminal(&node, &request.terminal)?;
    let actor = caller.at(&terminal)?;
    let tender = tender_kind(request.refund_tender.as_deref())?;
    let reference =
        crate::stored_value::refund_account(tender, request.refund_reference.as_deref())?;
    if request.lines.is_empty() {
        return Err(ApiError::invalid(
            "invalid_return",
            "lines",
            "a return needs at least one line",
        ));
    }
    let op = match &request.receipt {
        Some(receipt) => {
            let lines = request
                .lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let line = l.line.ok_or_else(|| {
                        ApiError::invalid(
                            "invalid_field",
                            format!("lines[{i}].line"),
                            "a return with a receipt names the receipt line",
                        )
                    })?;
                    let quantity = Quantity::parse(&l.quantity).map_err(|e| {
                        ApiError::invalid("invalid_field", format!("lines[{i}].quantity"), e)
                    })?;
                    Ok((line, quantity))
                })
                .collect::<ApiResult<Vec<_>>>()?;
            Op::Return {
                terminal,
                receipt: receipt.clone(),
                lines,
                tender,
                cash_rounding: context(&node)?.config.jurisdiction.cash_rounding(),
                reference,
                reason: request.reason.clone(),
                approvals: Vec::new(),
            }
        }
        None => {
            let reason = request
                .reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .ok_or_else(|| {
                    ApiError::invalid(
                        "reason_required",
                        "reason",
                        "a return without a receipt needs a reason",
                    )
                })?
                .to_owned();
            let ctx = context(&node)?;
            let cart_lines = request
                .lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let code = l.code.clone().ok_or_else(|| {
                        ApiError::invalid(
                            "invalid_field",
                            format!("lines[{i}].code"),
                            "a return without a receipt names the item",
                        )
                    })?;
                    Ok(CartLineRequest {
                        code,
                        quantity: Some(l.quantity.clone()),
                        discount: None,
                        price: None,
                    })
                })
                .collect::<ApiResult<Vec<_>>>()?;
            let lines = resolve_lines(&node, &ctx, &cart_lines).await?;
            let cart = price_cart(&ctx.config.jurisdiction, &lines, None, node.clock.now())
                .map_err(sale_error)?;
            let currency = cart.currency;
            let exact = PricedReturn {
                refund: cart.total,
                total: cart.total,
                cash_rounding: Money::zero(currency),
                lines: cart
                    .lines
                    .into_iter()
                    .enumerate()
                    .map(|(i, l)| ReturnedLine {
                        sale_line: i,
                        sku: l.sku,
                        quantity: l.quantity,
                        net: l.net,
                        taxes: l.taxes,
                        gross: l.gross,
                    })
                    .collect(),
            };
            // Cash goes back in what coins make, rounded down: without a receipt there is no
            // sale whose later refunds could make up what is held back.
            let refund = domain::sale::pay_out_refund(
                exact,
                tender,
                ctx.config.jurisdiction.cash_rounding(),
                Money::zero(currency),
            )
            .map_err(|e| ApiError::invalid("invalid_return", "lines", e))?
            .refund;
            let approvals = approve(
                &node,
                &terminal,
                actor,
                &[Permission::ReturnWithoutReceipt],
                request.approval.as_ref(),
            )
            .await?;
            Op::ReturnWithoutReceipt {
                terminal,
                refund,
                tender,
                reference,
                reason,
                approvals,
            }
        }
    };
    Ok(recorded(node.ledger.write(Some(key), op).await?))
}

async fn void_last(
    State(node): State<Arc<Node>>,
    WriteRequest { key, body, caller }: WriteRequest,
) -> ApiResult<Response> {
    if let Some(response) = replay(&node, &key).await? {
        return Ok(response);
    }
    let request: VoidRequest = body.parse()?;
    let terminal = terminal(&node, &request.terminal)?;
    let actor = caller.at(&terminal)?;
    if request.reason.trim().is_empty() {
        return Err(ApiError::invalid(
            "reason_required",
            "reason",
            "a void needs a reason",
        ));
    }
    let approvals = approve(
        &node,
        &terminal,
        actor,
        &[Permission::Void],
        request.approval.as_ref(),
    )
    .await?;
    let op = Op::VoidLast {
        terminal,
        reason: request.reason.trim().to_owned(),
        receipt: request.receipt,
        approvals,
    };
    Ok(recorded(node.ledger.write(Some(key), op).await?))
}

#[derive(Debug, Deserialize)]
struct LastSaleQuery {
    terminal: String,
}

/// The sale `void-last` would void now, so the till can show the cashier which sale and amount
/// before they confirm: `404 nothing_to_void` when the terminal's last event is no sale.
async fn last_sale(
    State(node): State<Arc<Node>>,
    caller: Caller,
    query: Result<Query<LastSaleQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let query = crate::api::query_params(query)?;
    let terminal = terminal(&node, &query.terminal)?;
    caller.at(&terminal)?;
    let mut conn = node.pools.reader.acquire().await?;
    let (event, sale) = crate::ledger::last_voidable_sale(&mut conn, &terminal)
        .await
        .map_err(|e| match e {
            WriteError::Rejected { code, message, .. } => {
                ApiError::new(StatusCode::NOT_FOUND, code, message)
            }
            other => ApiError::from(other),
        })?;
    Ok(Json(json!({
        "terminal": terminal.to_string(),
        "receipt": sale.receipt,
        "total": sale.settlement.due.amount_string(),
        "currency": sale.settlement.due.currency().code(),
        "at_ms": event.meta.hlc.wall_ms(),
        "lines": sale.cart.lines.len(),
    })))
}

fn sku_field(value: &str) -> ApiResult<Sku> {
    Sku::parse(value).map_err(|e| ApiError::invalid("invalid_field", "sku", e))
}

fn known_sku(node: &Node, sku: &Sku) -> ApiResult<()> {
    if context(node)?.has_sku(sku) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "unknown_item",
            "sku",
            format!("no item with sku `{sku}`"),
        ))
    }
}

async fn adjust(
    State(node): State<Arc<Node>>,
    WriteRequest { key, body, caller }: WriteRequest,
) -> ApiResult<Response> {
    let request: AdjustmentRequest = body.parse()?;
    let terminal = terminal(&node, &request.terminal)?;
    caller.at(&terminal)?;
    let sku = sku_field(&request.sku)?;
    known_sku(&node, &sku)?;
    let reason = AdjustmentReason::parse(&request.reason).ok_or_else(|| {
        ApiError::invalid(
            "invalid_field",
            "reason",
            format!(
                "`{}` is not one of received, damaged, shrink, correction",
                request.reason
            ),
        )
    })?;
    let delta = parse_signed_milli(&request.delta)
        .map_err(|e| ApiError::invalid("invalid_field", "delta", e))?;
    let sign_ok = match reason {
        AdjustmentReason::Received => delta > 0,
        AdjustmentReason::Damaged | AdjustmentReason::Shrink => delta < 0,
        AdjustmentReason::Correction => delta != 0,
    };
    if !sign_ok {
        return Err(ApiError::invalid(
            "invalid_field",
            "delta",
            format!(
                "delta `{}` does not fit reason {}: received adds stock, damaged and shrink remove it",
                request.delta,
                reason.as_str()
            ),
        ));
    }
    let op = Op::Adjust {
        terminal,
        sku,
        delta_milli: delta,
        reason,
        note: request.note.clone(),
    };
    Ok(recorded(node.ledger.write(Some(key), op).await?))
}

async fn count(
    State(node): State<Arc<Node>>,
    WriteRequest { key, body, caller }: WriteRequest,
) -> ApiResult<Response> {
    let request: CountRequest = body.parse()?;
    let terminal = terminal(&node, &request.terminal)?;
    caller.at(&terminal)?;
    let sku = sku_field(&request.sku)?;
    known_sku(&node, &sku)?;
    let counted = parse_signed_milli(&request.counted)
        .map_err(|e| ApiError::invalid("invalid_field", "counted", e))?;
    if counted < 0 {
        return Err(ApiError::invalid(
            "invalid_field",
            "counted",
            "a count cannot be negative",
        ));
    }
    let op = Op::Count {
        terminal,
        sku,
        counted_milli: counted,
    };
    Ok(recorded(node.ledger.write(Some(key), op).await?))
}

async fn stock(State(node): State<Arc<Node>>, Path(sku): Path<String>) -> ApiResult<Json<Value>> {
    let sku = sku_field(&sku)?;
    let milli = on_hand(&node, sku.as_str()).await?;
    let mut answer = json!({"sku": sku.to_string(), "on_hand": format_signed_milli(milli)});
    // What HQ promised the web shop and customers out of this store, as of the last pull.
    if let Some(reserved) = node.hq_reserved(sku.as_str()) {
        answer["reserved"] = json!(format_signed_milli(reserved));
    }
    Ok(Json(answer))
}

/// A receipt, for any member signed in at this node (a return or a reprint starts from it).
async fn receipt(
    State(node): State<Arc<Node>>,
    _caller: Caller,
    Path(number): Path<String>,
) -> ApiResult<Json<Value>> {
    let event = crate::printing::event_of_receipt(&node, &number).await?;
    Ok(Json(event_view(&event)))
}

#[derive(Debug, Deserialize)]
struct JournalQuery {
    terminal: String,
    #[serde(default = "first")]
    from: u64,
    #[serde(default = "page")]
    limit: u32,
}

fn first() -> u64 {
    1
}

fn page() -> u32 {
    100
}

/// The journal of a terminal: every event with its hash and signature, for supervisors and
/// above.
async fn journal(
    State(node): State<Arc<Node>>,
    caller: Caller,
    query: Result<Query<JournalQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let query = crate::api::query_params(query)?;
    caller.with_role(Role::Supervisor, "reading the journal")?;
    let terminal = terminal(&node, &query.terminal)?;
    let limit = query.limit.clamp(1, 1000);
    let rows = sqlx::query(
        "SELECT seq, id, kind, body, hash, signature FROM events WHERE terminal = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
    )
    .bind(terminal.as_str())
    .bind(i64::try_from(query.from).unwrap_or(i64::MAX))
    .bind(i64::from(limit))
    .fetch_all(&node.pools.reader)
    .await?;
    let events: Vec<Value> = rows
        .iter()
        .map(|r| {
            protocol::journal::entry(
                r.get("seq"),
                r.get("id"),
                r.get("kind"),
                r.get("body"),
                r.get("hash"),
                Some(r.get("signature")),
            )
        })
        .collect();
    Ok(Json(
        json!({"terminal": terminal.to_string(), "events": events}),
    ))
}
