//! Reorder suggestions per store and variant, from what left the store over a window: sales at
//! its tills (less voids) and orders from the web it shipped or handed over (less what came
//! back), both read from the stock movements ingest kept with the kind of event behind each.
//!
//! For a variant selling `v` units a day, with `lead` days until a delivery arrives and `cover`
//! days a delivery should last: the reorder point is `v × lead + safety stock`, and when what the
//! store holds for itself (on hand less reserved) is at or below it, the suggestion is what
//! brings it to `v × (lead + cover) + safety stock`, in whole units.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::quantity::format_signed_milli;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiError, ApiResult, Hq, authorize_reader};
use crate::db::Db;
use crate::extract::Query;
use crate::identity::Scope;

/// One variant's suggestion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub sku: String,
    pub name: String,
    /// Sold at the tills over the window, less voids (thousandths).
    pub in_store: i64,
    /// Shipped or handed over to web orders, less what came back (thousandths).
    pub online: i64,
    pub on_hand: i64,
    pub reserved: i64,
    pub safety: i64,
    /// Thousandths a day.
    pub per_day: i64,
    pub reorder_point: i64,
    /// Whole units, in thousandths (0: enough).
    pub suggested: i64,
}

/// What the suggestions are worked out from.
#[derive(Debug, Clone, Copy)]
pub struct Horizon {
    pub window_days: i64,
    pub lead_days: i64,
    pub cover_days: i64,
}

/// The suggestions of `store` at `now_ms`, the largest first (every variant that moved in the
/// window, or that the store holds).
pub async fn suggestions(
    db: &Db,
    store: &str,
    horizon: Horizon,
    now_ms: i64,
) -> Result<Vec<Suggestion>, sqlx::Error> {
    let since = now_ms - horizon.window_days * 86_400_000;
    let moved: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT m.sku, i.kind, CAST(SUM(m.delta) AS BIGINT) FROM stock_moves m
         JOIN inbox i ON i.id = m.event_id
         WHERE m.location = $1 AND m.hlc_wall >= $2
           AND i.kind IN ('SaleCompleted', 'SaleVoided', 'OrderStep')
         GROUP BY m.sku, i.kind",
    )
    .bind(store)
    .bind(since)
    .fetch_all(&db.pool)
    .await?;
    let mut sold: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (sku, kind, delta) in moved {
        let out = -delta.unwrap_or(0);
        let entry = sold.entry(sku).or_default();
        if kind == "OrderStep" {
            entry.1 += out;
        } else {
            entry.0 += out;
        }
    }
    let held: Vec<(String, i64)> = sqlx::query_as(
        "SELECT sku, on_hand FROM stock_levels WHERE location = $1 AND on_hand <> 0",
    )
    .bind(store)
    .fetch_all(&db.pool)
    .await?;
    for (sku, _) in &held {
        sold.entry(sku.clone()).or_default();
    }
    let skus: Vec<String> = sold.keys().cloned().collect();
    let mut conn = db.pool.acquire().await?;
    let mut figures = BTreeMap::new();
    let mut names = BTreeMap::new();
    for chunk in skus.chunks(crate::availability::MAX_SKUS) {
        figures.extend(
            crate::availability::figures(&mut conn, db.backend, &[store.to_owned()], chunk, now_ms)
                .await?,
        );
        for (sku, entity) in
            crate::availability::variant_entities(&mut conn, db.backend, chunk).await?
        {
            names.insert(sku, entity.variant.name);
        }
    }
    let days = horizon.window_days.max(1);
    let mut out: Vec<Suggestion> = sold
        .into_iter()
        .map(|(sku, (in_store, online))| {
            let f = figures
                .get(&(store.to_owned(), sku.clone()))
                .copied()
                .unwrap_or_default();
            let per_day = (in_store + online).max(0) / days;
            let reorder_point = per_day * horizon.lead_days + f.safety;
            let target = per_day * (horizon.lead_days + horizon.cover_days) + f.safety;
            let own = f.on_hand - f.reserved;
            let suggested = if own <= reorder_point && target > own {
                // Whole units: round the shortfall up.
                (target - own + 999) / 1000 * 1000
            } else {
                0
            };
            Suggestion {
                name: names.get(&sku).cloned().unwrap_or_default(),
                sku,
                in_store,
                online,
                on_hand: f.on_hand,
                reserved: f.reserved,
                safety: f.safety,
                per_day,
                reorder_point,
                suggested,
            }
        })
        .collect();
    out.sort_by(|a, b| b.suggested.cmp(&a.suggested).then(a.sku.cmp(&b.sku)));
    Ok(out)
}

impl Suggestion {
    fn json(&self) -> Value {
        let q = format_signed_milli;
        json!({
            "sku": self.sku,
            "name": self.name,
            "sold_in_store": q(self.in_store),
            "sold_online": q(self.online),
            "per_day": q(self.per_day),
            "on_hand": q(self.on_hand),
            "reserved": q(self.reserved),
            "safety_stock": q(self.safety),
            "reorder_point": q(self.reorder_point),
            "suggested": q(self.suggested),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReorderQuery {
    store: Option<String>,
    window_days: Option<i64>,
    lead_days: Option<i64>,
    cover_days: Option<i64>,
    /// `json` (the default) or `csv`.
    format: Option<String>,
    /// `1`: every variant, not only those to reorder.
    all: Option<String>,
}

fn days(value: Option<i64>, default: i64, max: i64, field: &str) -> ApiResult<i64> {
    let v = value.unwrap_or(default);
    if (0..=max).contains(&v) && !(field == "window_days" && v == 0) {
        Ok(v)
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("{} to {max} days", i64::from(field == "window_days")),
        )
        .at(field))
    }
}

/// The horizon a request asks for: window 28 days (1 to 365), lead 7 (0 to 180), cover 14 (0
/// to 365).
pub(crate) fn horizon_of(
    window: Option<i64>,
    lead: Option<i64>,
    cover: Option<i64>,
) -> ApiResult<Horizon> {
    Ok(Horizon {
        window_days: days(window, 28, 365, "window_days")?,
        lead_days: days(lead, 7, 180, "lead_days")?,
        cover_days: days(cover, 14, 365, "cover_days")?,
    })
}

/// `GET /v1/reorder-suggestions?store=&window_days=&lead_days=&cover_days=[&format=csv][&all=1]`
/// (`stock:read`, a store manager for their stores).
pub(crate) async fn read(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(q): Query<ReorderQuery>,
) -> ApiResult<Response> {
    let store = q.store.clone().filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", "name the store").at("store")
    })?;
    let actor = authorize_reader(&hq, &headers, Scope::StockRead, Some(&store)).await?;
    let horizon = horizon_of(q.window_days, q.lead_days, q.cover_days)?;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            return Err(
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", "`json` or `csv`")
                    .at("format"),
            );
        }
    };
    let mut conn = hq.db.pool.acquire().await?;
    if !crate::availability::locations(&mut conn)
        .await?
        .contains(&store)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("no store `{}`", crate::api::echo(&store)),
        )
        .at("store"));
    }
    drop(conn);
    let all = q.all.as_deref() == Some("1");
    let rows: Vec<Suggestion> = suggestions(&hq.db, &store, horizon, crate::now_ms())
        .await?
        .into_iter()
        .filter(|s| all || s.suggested > 0)
        .collect();
    if csv {
        crate::identity::record_read(
            &hq.db,
            &actor,
            "report.export",
            &format!("reorder:{store}"),
            &json!({"window_days": horizon.window_days, "lead_days": horizon.lead_days, "cover_days": horizon.cover_days}),
        )
        .await?;
        let mut out = csv::Writer::from_writer(Vec::new());
        let header = [
            "sku",
            "name",
            "sold_in_store",
            "sold_online",
            "per_day",
            "on_hand",
            "reserved",
            "safety_stock",
            "reorder_point",
            "suggested",
        ];
        let fail = |e: &dyn std::fmt::Display| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        };
        out.write_record(header).map_err(|e| fail(&e))?;
        for s in &rows {
            let v = s.json();
            out.write_record(header.map(|h| v[h].as_str().unwrap_or_default().to_owned()))
                .map_err(|e| fail(&e))?;
        }
        let bytes = out.into_inner().map_err(|e| fail(&e))?;
        return Ok((
            [
                ("content-type", "text/csv; charset=utf-8"),
                (
                    "content-disposition",
                    "attachment; filename=\"reorder-suggestions.csv\"",
                ),
            ],
            bytes,
        )
            .into_response());
    }
    Ok(axum::Json(json!({
        "store": store,
        "window_days": horizon.window_days,
        "lead_days": horizon.lead_days,
        "cover_days": horizon.cover_days,
        "suggestions": rows.iter().map(Suggestion::json).collect::<Vec<_>>(),
    }))
    .into_response())
}
