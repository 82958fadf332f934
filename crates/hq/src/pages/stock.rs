//! `GET /stock`: a store's stock per variant (the sum of its movements, as HQ holds it),
//! searched by name, SKU or barcode, optionally only what has gone negative; 50 a page.

use std::sync::Arc;

use askama::Template;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use sqlx::Row;

use super::{Frame, Params, entered, failed, not_found, page, visible_stores};
use crate::api::{Hq, milli};
use crate::extract::Query;
use crate::identity::Scope;

const PAGE: i64 = 50;

struct StockRow {
    sku: String,
    name: String,
    on_hand: String,
    negative: bool,
}

#[derive(Template)]
#[template(path = "stock.html")]
struct StockPage {
    f: Frame,
    stores: Vec<(String, String)>,
    location: String,
    q: String,
    negative: bool,
    rows: Vec<StockRow>,
    next: Option<String>,
}

/// `GET /stock?location=…&q=…&negative=1&after=…`: by default the first store the person sees.
pub(super) async fn stock(
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
        "/stock",
        Some(Scope::StockRead)
    );
    let stores = match visible_stores(&hq, &session).await {
        Ok(stores) => stores,
        Err(e) => return failed(e),
    };
    // Another store's stock is never shown: a location the person may not see is not chosen.
    let chosen = params
        .get("location")
        .and_then(|id| stores.iter().find(|s| &s.id == id))
        .or_else(|| stores.first());
    let Some(location) = chosen.map(|s| s.id.clone()) else {
        return not_found(frame, lang);
    };
    let q: String = params
        .get("q")
        .map(|q| q.trim().chars().take(100).collect())
        .unwrap_or_default();
    let needle = q.to_lowercase();
    let negative = params.get("negative").is_some_and(|v| v == "1");
    let after = params.get("after").cloned().unwrap_or_default();
    if !needle.is_empty() {
        if let Err(e) = crate::search::refresh(&hq.db).await {
            return failed(e);
        }
    }
    let exact = crate::search::exact_keys(&needle);
    let rows = sqlx::query(
        "SELECT l.sku, l.on_hand, c.product_name, c.name FROM stock_levels l
         LEFT JOIN catalog_search c ON c.sku = l.sku
         WHERE l.location = $1 AND l.sku > $2 AND ($3 = 0 OR l.on_hand < 0)
           AND ($4 = '' OR c.folded LIKE $5 ESCAPE '\\' OR l.sku IN
                (SELECT sku FROM catalog_identifiers WHERE identifier IN ($6, $7)))
         ORDER BY l.sku LIMIT $8",
    )
    .bind(&location)
    .bind(&after)
    .bind(i64::from(negative))
    .bind(&needle)
    .bind(crate::search::like_pattern(&needle))
    .bind(exact.first().cloned().unwrap_or_default())
    .bind(exact.get(1).cloned().unwrap_or_default())
    .bind(PAGE + 1)
    .fetch_all(&hq.db.pool)
    .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => return failed(e),
    };
    let more = rows.len() as i64 > PAGE;
    let rows: Vec<StockRow> = rows
        .iter()
        .take(PAGE as usize)
        .map(|r| {
            let on_hand: i64 = r.get("on_hand");
            let product: Option<String> = r.get("product_name");
            let variant: Option<String> = r.get("name");
            StockRow {
                sku: r.get("sku"),
                name: match (product, variant) {
                    (Some(p), Some(v)) if p != v => format!("{p} · {v}"),
                    (_, Some(v)) => v,
                    (p, None) => p.unwrap_or_default(),
                },
                on_hand: milli(on_hand),
                negative: on_hand < 0,
            }
        })
        .collect();
    let template = StockPage {
        f: frame,
        stores: stores
            .iter()
            .map(|s| (s.id.clone(), s.name.clone()))
            .collect(),
        next: more.then(|| rows.last().map(|r| r.sku.clone())).flatten(),
        location,
        q,
        negative,
        rows,
    };
    page(&template, StatusCode::OK, lang)
}
