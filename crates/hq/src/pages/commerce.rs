//! The web shop's side of the chain: `GET /orders`, the orders from the web with their state and
//! exceptions (a store manager sees their stores'), a cancel button for an open one; and
//! `GET /webhooks`, the subscriptions and the delivery log with the status each attempt got, and
//! a button to send a delivery again; `GET /reorder`, a store's reorder suggestions from its
//! sales at the tills and online, with their CSV.

use std::sync::Arc;

use askama::Template;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::{Frame, Params, entered, failed, local, page, visible_stores};
use crate::api::Hq;
use crate::extract::Query;
use crate::identity::Scope;

struct OrderRow {
    number: String,
    store: String,
    fulfilment: String,
    payment: String,
    status: String,
    customer: String,
    lines: String,
    exception: String,
    created: String,
    open: bool,
}

#[derive(Template)]
#[template(path = "orders.html")]
struct Orders {
    f: Frame,
    can_write: bool,
    orders: Vec<OrderRow>,
    stores: Vec<(String, String, bool)>,
    statuses: Vec<(&'static str, bool)>,
}

/// `GET /orders?store=&status=`: the newest 200 orders of the stores the viewer sees.
pub(super) async fn orders(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    uri: OriginalUri,
    Query(params): Query<Params>,
) -> Response {
    let (session, frame, lang) = entered!(
        &hq,
        &headers,
        &uri,
        &params,
        "/orders",
        Some(Scope::OrdersRead)
    );
    let stores = match visible_stores(&hq, &session).await {
        Ok(stores) => stores,
        Err(e) => return failed(e),
    };
    let store = params.get("store").cloned().unwrap_or_default();
    let status = params.get("status").cloned().unwrap_or_default();
    let seen: Vec<String> = stores
        .iter()
        .filter(|s| store.is_empty() || s.id == store)
        .map(|s| s.id.clone())
        .collect();
    // A status the list does not know shows every order.
    let status = if status == "open" || crate::orders::STATUSES.contains(&status.as_str()) {
        status
    } else {
        String::new()
    };
    // No store in view is no order (an empty list of stores would read every store's).
    let rows = if seen.is_empty() {
        Vec::new()
    } else {
        match crate::orders::newest(&hq.db, &seen, &status, 200).await {
            Ok(rows) => rows,
            Err(e) => return failed(e),
        }
    };
    let zone_of = |id: &str| {
        stores
            .iter()
            .find(|s| s.id == id)
            .map_or_else(|| "UTC".to_owned(), |s| s.timezone.clone())
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let template = Orders {
        can_write: session.user.role.scopes().contains(&Scope::OrdersWrite),
        orders: rows
            .iter()
            .map(|o| OrderRow {
                number: text(&o["number"]),
                store: text(&o["store"]),
                fulfilment: text(&o["fulfilment"]),
                payment: text(&o["payment"]),
                status: text(&o["status"]),
                customer: text(&o["customer"]["name"]),
                lines: o["lines"]
                    .as_array()
                    .map(|lines| {
                        lines
                            .iter()
                            .map(|l| {
                                format!(
                                    "{} × {}{}",
                                    text(&l["quantity"]),
                                    text(&l["sku"]),
                                    l["picked"]
                                        .as_str()
                                        .map(|p| format!(" ({p})"))
                                        .unwrap_or_default()
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default(),
                exception: text(&o["exception"]),
                created: local(
                    o["created_ms"].as_i64().unwrap_or(0),
                    &zone_of(&text(&o["store"])),
                ),
                open: ["placed", "picked", "ready"].contains(&o["status"].as_str().unwrap_or("")),
            })
            .collect(),
        statuses: [
            "",
            "open",
            "placed",
            "picked",
            "ready",
            "shipped",
            "collected",
            "cancelled",
        ]
        .into_iter()
        .map(|s| (s, s == status))
        .collect(),
        stores: stores
            .into_iter()
            .map(|s| {
                let chosen = s.id == store;
                (s.id, s.name, chosen)
            })
            .collect(),
        f: frame,
    };
    page(&template, StatusCode::OK, lang)
}

struct SubscriptionRow {
    id: String,
    api_key: String,
    url: String,
    events: String,
}

struct DeliveryRow {
    id: i64,
    subscription: String,
    kind: String,
    resource: String,
    sequence: i64,
    state: String,
    attempts: i64,
    last: String,
    created: String,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct Webhooks {
    f: Frame,
    subscriptions: Vec<SubscriptionRow>,
    counts: Vec<(String, i64)>,
    deliveries: Vec<DeliveryRow>,
}

/// `GET /webhooks`: for a role that manages webhooks (admin, support).
pub(super) async fn webhooks(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    uri: OriginalUri,
    Query(params): Query<Params>,
) -> Response {
    let (_session, frame, lang) = entered!(
        &hq,
        &headers,
        &uri,
        &params,
        "/webhooks",
        Some(Scope::WebhooksWrite)
    );
    let (subscriptions, (counts, newest)) = match tokio::try_join!(
        crate::webhooks::subscriptions(&hq.db),
        crate::webhooks::overview(&hq.db)
    ) {
        Ok(read) => read,
        Err(e) => return failed(e),
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let template = Webhooks {
        subscriptions: subscriptions
            .iter()
            .map(|s| SubscriptionRow {
                id: text(&s["id"]),
                api_key: text(&s["api_key"]),
                url: text(&s["url"]),
                events: s["events"]
                    .as_array()
                    .map(|e| e.iter().map(text).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default(),
            })
            .collect(),
        counts: counts.into_iter().collect(),
        deliveries: newest
            .iter()
            .map(|d| DeliveryRow {
                id: d["id"].as_i64().unwrap_or(0),
                subscription: text(&d["subscription"]),
                kind: text(&d["type"]),
                resource: text(&d["resource"]),
                sequence: d["sequence"].as_i64().unwrap_or(0),
                state: text(&d["state"]),
                attempts: d["attempts"].as_i64().unwrap_or(0),
                last: match (d["last_status"].as_i64(), d["last_error"].as_str()) {
                    (Some(status), _) => status.to_string(),
                    (None, Some(error)) => error.chars().take(80).collect(),
                    (None, None) => "–".into(),
                },
                created: local(d["created_ms"].as_i64().unwrap_or(0), "UTC"),
            })
            .collect(),
        f: frame,
    };
    page(&template, StatusCode::OK, lang)
}

struct ReorderRow {
    sku: String,
    name: String,
    in_store: String,
    online: String,
    per_day: String,
    on_hand: String,
    reserved: String,
    reorder_point: String,
    suggested: String,
}

#[derive(Template)]
#[template(path = "reorder.html")]
struct Reorder {
    f: Frame,
    stores: Vec<(String, String, bool)>,
    store: String,
    window: i64,
    lead: i64,
    cover: i64,
    rows: Vec<ReorderRow>,
    csv: String,
    error: String,
}

/// `GET /reorder?store=&window_days=&lead_days=&cover_days=`: the store's suggestions (the first
/// store the viewer sees when none is named).
pub(super) async fn reorder(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    uri: OriginalUri,
    Query(params): Query<Params>,
) -> Response {
    let (session, frame, lang) = entered!(
        &hq,
        &headers,
        &uri,
        &params,
        "/reorder",
        Some(Scope::StockRead)
    );
    let stores = match visible_stores(&hq, &session).await {
        Ok(stores) => stores,
        Err(e) => return failed(e),
    };
    let asked = params.get("store").cloned().unwrap_or_default();
    let store = stores
        .iter()
        .find(|s| s.id == asked)
        .or_else(|| stores.first())
        .map(|s| s.id.clone())
        .unwrap_or_default();
    let number = |name: &str| params.get(name).and_then(|v| v.trim().parse::<i64>().ok());
    let (horizon, error) = match crate::reorder::horizon_of(
        number("window_days"),
        number("lead_days"),
        number("cover_days"),
    ) {
        Ok(h) => (h, String::new()),
        Err(e) => (
            crate::reorder::horizon_of(None, None, None).unwrap_or(crate::reorder::Horizon {
                window_days: 28,
                lead_days: 7,
                cover_days: 14,
            }),
            e.message().to_owned(),
        ),
    };
    let rows = if store.is_empty() {
        Vec::new()
    } else {
        match crate::reorder::suggestions(&hq.db, &store, horizon, crate::now_ms()).await {
            Ok(rows) => rows,
            Err(e) => return failed(e),
        }
    };
    let q = domain::quantity::format_signed_milli;
    let template = Reorder {
        csv: format!(
            "/v1/reorder-suggestions?store={store}&window_days={}&lead_days={}&cover_days={}&format=csv",
            horizon.window_days, horizon.lead_days, horizon.cover_days
        ),
        rows: rows
            .into_iter()
            .filter(|s| s.suggested > 0)
            .map(|s| ReorderRow {
                in_store: q(s.in_store),
                online: q(s.online),
                per_day: q(s.per_day),
                on_hand: q(s.on_hand),
                reserved: q(s.reserved),
                reorder_point: q(s.reorder_point),
                suggested: q(s.suggested),
                sku: s.sku,
                name: s.name,
            })
            .collect(),
        stores: stores
            .into_iter()
            .map(|s| {
                let chosen = s.id == store;
                (s.id, s.name, chosen)
            })
            .collect(),
        store,
        window: horizon.window_days,
        lead: horizon.lead_days,
        cover: horizon.cover_days,
        error,
        f: frame,
    };
    page(&template, StatusCode::OK, lang)
}
