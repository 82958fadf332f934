//! The till screen and the customer display: static assets built into the binary, the few
//! read-only helpers the screen needs (store settings, search, quick keys, settling a cart
//! without writing) and a relay that pushes each till's cart to its customer display with
//! Server-Sent Events.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use domain::sale::{price_cart, settle};
use futures_util::Stream;
use protocol::api::{CartLineRequest, CartView, DiscountDto, TenderDto, parse_tenders};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::api::{ApiError, ApiResult, RawBody, cart_discount, context, resolve_lines, sale_error};
use crate::node::Node;

/// The assets of the till screen and the customer display, by file name.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "till.html",
        "text/html; charset=utf-8",
        include_str!("../till/till.html"),
    ),
    (
        "display.html",
        "text/html; charset=utf-8",
        include_str!("../till/display.html"),
    ),
    (
        "till.css",
        "text/css; charset=utf-8",
        include_str!("../till/till.css"),
    ),
    (
        "till.js",
        "text/javascript; charset=utf-8",
        include_str!("../till/till.js"),
    ),
    (
        "display.js",
        "text/javascript; charset=utf-8",
        include_str!("../till/display.js"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("../till/common.js"),
    ),
    (
        "i18n.js",
        "text/javascript; charset=utf-8",
        include_str!("../till/i18n.js"),
    ),
];

/// The largest cart a till may post to its display.
const MAX_DISPLAY_BODY: usize = 256 * 1024;

/// Search results and quick keys offered at most.
const SEARCH_LIMIT: usize = 30;
const QUICK_KEYS: usize = 24;

/// Per terminal, the last cart posted and the channel its displays listen on.
#[derive(Debug, Default)]
struct DisplayHub {
    terminals: Mutex<HashMap<String, Relay>>,
}

#[derive(Debug)]
struct Relay {
    last: Option<Arc<str>>,
    sender: broadcast::Sender<Arc<str>>,
}

impl DisplayHub {
    /// The last message and a subscription for `terminal`.
    fn subscribe(&self, terminal: &str) -> (Option<Arc<str>>, broadcast::Receiver<Arc<str>>) {
        let mut map = self.terminals.lock().unwrap_or_else(|p| p.into_inner());
        let relay = map.entry(terminal.to_owned()).or_insert_with(Relay::new);
        (relay.last.clone(), relay.sender.subscribe())
    }

    /// Keeps `message` as the terminal's last and sends it to every listening display.
    fn publish(&self, terminal: &str, message: Arc<str>) -> usize {
        let mut map = self.terminals.lock().unwrap_or_else(|p| p.into_inner());
        let relay = map.entry(terminal.to_owned()).or_insert_with(Relay::new);
        relay.last = Some(message.clone());
        relay.sender.send(message).unwrap_or(0)
    }
}

impl Relay {
    fn new() -> Self {
        Relay {
            last: None,
            sender: broadcast::channel(64).0,
        }
    }
}

/// The routes of the till screen, merged into the node's API router.
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/till", get(|| asset_response("till.html")))
        .route("/display", get(|| asset_response("display.html")))
        .route("/till/assets/{file}", get(asset))
        .route("/v1/till/config", get(config))
        .route("/v1/till/search", get(search))
        .route("/v1/till/quick-keys", get(quick_keys))
        .route("/v1/till/settle", axum::routing::post(settle_cart))
        .route(
            "/v1/display/{terminal}",
            axum::routing::post(display_publish),
        )
        .route("/v1/display/{terminal}/events", get(display_events))
        .layer(Extension(Arc::new(DisplayHub::default())))
}

async fn asset_response(name: &str) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, mime, body)) => (
            [
                (header::CONTENT_TYPE, *mime),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such asset").into_response(),
    }
}

async fn asset(Path(file): Path<String>) -> Response {
    asset_response(&file).await
}

async fn config(State(node): State<Arc<Node>>) -> ApiResult<Json<Value>> {
    let ctx = context(&node)?;
    let c = &ctx.config;
    let cash_rounding = c
        .jurisdiction
        .cash_rounding()
        .map(|r| domain::Money::from_minor(r.increment(), c.currency).amount_string());
    Ok(Json(json!({
        "store": c.id.to_string(),
        "name": c.name,
        "address": c.address,
        "tax_id": c.tax_id,
        "currency": c.currency.code(),
        "locale": c.locale,
        "timezone": c.timezone,
        "cash_rounding": cash_rounding,
        "terminals": node.terminals().iter().map(ToString::to_string).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

fn item_json(code: &str, item: &crate::refdata::Item) -> Value {
    json!({
        "code": code,
        "sku": item.sku.to_string(),
        "name": item.name,
        "unit": item.unit.as_str(),
        "price": item.price.map(|p| p.amount_string()),
        "open_price": item.open_price,
    })
}

async fn search(
    State(node): State<Arc<Node>>,
    Query(query): Query<SearchQuery>,
) -> ApiResult<Json<Value>> {
    let ctx = context(&node)?;
    let items: Vec<Value> = ctx
        .search(&query.q, node.clock.now(), SEARCH_LIMIT)
        .iter()
        .map(|item| item_json(item.sku.as_str(), item))
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// The till's quick keys, in pages: as the store's reference data lays them out (label, colour,
/// position), or, when it has none, one page of the items with a PLU. A key whose item this
/// node does not sell now (unknown, online only, no price in force) is left out.
async fn quick_keys(State(node): State<Arc<Node>>) -> ApiResult<Json<Value>> {
    let ctx = context(&node)?;
    let now = node.clock.now();
    let pages: Vec<Value> = if ctx.quick_keys.is_empty() {
        let keys: Vec<Value> = ctx
            .plu_items(now, QUICK_KEYS)
            .iter()
            .enumerate()
            .map(|(i, (plu, item))| {
                let mut key = item_json(plu, item);
                key["position"] = json!(i + 1);
                key
            })
            .collect();
        vec![json!({"label": null, "keys": keys})]
    } else {
        ctx.quick_keys
            .iter()
            .map(|page| {
                // Keys placed by the file keep their place; the others take the free places in
                // file order.
                let taken: std::collections::BTreeSet<u32> =
                    page.keys.iter().filter_map(|k| k.position).collect();
                let mut free = (1_u32..).filter(|p| !taken.contains(p));
                let mut keys: Vec<Value> = page
                    .keys
                    .iter()
                    .filter_map(|key| {
                        let position = key.position.or_else(|| free.next())?;
                        let sku = domain::catalog::Sku::parse(&key.sku).ok()?;
                        let item = ctx.variant(&sku, now).filter(|i| i.sold_in_store)?;
                        if item.price.is_none() && !item.open_price {
                            return None;
                        }
                        let mut json = item_json(sku.as_str(), &item);
                        json["label"] = json!(key.label.as_deref().unwrap_or(&item.name));
                        json["colour"] = json!(key.colour);
                        json["position"] = json!(position);
                        Some(json)
                    })
                    .collect();
                keys.sort_by_key(|k| k["position"].as_u64());
                json!({"label": page.label, "keys": keys})
            })
            .collect()
    };
    Ok(Json(json!({ "pages": pages })))
}

/// A cart with the tenders offered so far.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettleRequest {
    lines: Vec<CartLineRequest>,
    #[serde(default)]
    discount: Option<DiscountDto>,
    #[serde(default)]
    tenders: Vec<TenderDto>,
    /// A supervisor approval travels with the cart; settling writes nothing, so it is not read.
    #[serde(default)]
    #[allow(dead_code)]
    approval: Option<Value>,
}

/// Prices a cart and settles it against the tenders offered so far, writing nothing: what is
/// due (cash rounding applied when every tender is cash), what is still open and the change.
async fn settle_cart(State(node): State<Arc<Node>>, body: RawBody) -> ApiResult<Json<Value>> {
    let request: SettleRequest = body.parse()?;
    let ctx = context(&node)?;
    let lines = resolve_lines(&node, &ctx, &request.lines).await?;
    let discount = cart_discount(request.discount.as_ref(), &ctx)?;
    let cart = price_cart(&ctx.config.jurisdiction, &lines, discount, node.clock.now())
        .map_err(sale_error)?;
    let tenders = parse_tenders(&request.tenders, ctx.config.currency)?;
    let rounding = ctx.config.jurisdiction.cash_rounding();
    let tendered = domain::Money::sum(cart.currency, tenders.iter().map(|t| &t.amount))
        .map_err(|e| ApiError::invalid("invalid_field", "tenders", e))?;
    let non_cash = domain::Money::sum(
        cart.currency,
        tenders
            .iter()
            .filter(|t| t.kind != domain::sale::TenderKind::Cash)
            .map(|t| &t.amount),
    )
    .map_err(|e| ApiError::invalid("invalid_field", "tenders", e))?;
    // Until the tenders cover it, show what is due if the rest is paid in cash: where cash is
    // rounded, the cash part is rounded and a card part is not.
    let due_rest_in_cash = domain::sale::due_with_cash(cart.total, non_cash, rounding)
        .map_err(|e| ApiError::invalid("invalid_field", "tenders", e))?;
    let zero = domain::Money::zero(cart.currency);
    let (due, complete, change, error) = if tenders.is_empty() {
        (due_rest_in_cash, false, zero, None)
    } else {
        match settle(&cart, &tenders, rounding) {
            Ok(s) => (s.due, true, s.change, None),
            Err(domain::sale::SaleError::TendersShort { .. }) => {
                (due_rest_in_cash, false, zero, None)
            }
            Err(e @ domain::sale::SaleError::NonCashOverTender { due, .. }) => {
                (due, false, zero, Some(e.to_string()))
            }
            Err(e @ domain::sale::SaleError::CashNotPayable { .. }) => {
                (due_rest_in_cash, false, zero, Some(e.to_string()))
            }
            Err(e) => return Err(sale_error(e)),
        }
    };
    let remaining = due
        .checked_sub(tendered)
        .map_err(|e| ApiError::invalid("invalid_field", "tenders", e))?;
    let remaining = if remaining.is_positive() {
        remaining
    } else {
        domain::Money::zero(cart.currency)
    };
    Ok(Json(json!({
        "cart": CartView::new(&cart, None),
        "due": due.amount_string(),
        "cash_due": match rounding {
            Some(r) => r.round(cart.total).map_err(|e| ApiError::invalid("invalid_field", "lines", e))?.amount_string(),
            None => cart.total.amount_string(),
        },
        "tendered": tendered.amount_string(),
        "remaining": remaining.amount_string(),
        "change": change.amount_string(),
        "complete": complete,
        "error": error,
    })))
}

/// The till posts what its customer display shows (a cart view, a total, a thank-you); the
/// relay keeps the last one and passes it on. Nothing is written to the ledger, but only the
/// till's own session may put something in front of its customer.
async fn display_publish(
    State(node): State<Arc<Node>>,
    caller: crate::auth::Caller,
    Extension(hub): Extension<Arc<DisplayHub>>,
    Path(terminal): Path<String>,
    body: RawBody,
) -> ApiResult<Json<Value>> {
    let terminal = crate::api::terminal(&node, &terminal)?;
    caller.at(&terminal)?;
    let terminal = terminal.to_string();
    if body.len() > MAX_DISPLAY_BODY {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("a display message is at most {MAX_DISPLAY_BODY} bytes"),
        ));
    }
    let value: Value = body.parse()?;
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "a display message is a JSON object",
        ));
    }
    let listeners = hub.publish(&terminal, Arc::from(value.to_string()));
    Ok(Json(json!({ "listeners": listeners })))
}

/// Server-Sent Events for one terminal's customer display: the last message at once, then
/// every new one. A display that falls behind skips to the newest message.
async fn display_events(
    State(node): State<Arc<Node>>,
    Extension(hub): Extension<Arc<DisplayHub>>,
    Path(terminal): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let terminal = crate::api::terminal(&node, &terminal)?.to_string();
    let (last, receiver) = hub.subscribe(&terminal);
    let stream =
        futures_util::stream::unfold((last, receiver), |(pending, mut receiver)| async move {
            if let Some(message) = pending {
                return Some((Ok(Event::default().data(&*message)), (None, receiver)));
            }
            loop {
                match receiver.recv().await {
                    Ok(message) => {
                        return Some((Ok(Event::default().data(&*message)), (None, receiver)));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
