//! Price changes as the pages show them: on a variant's page and on `GET /price-changes`, the
//! changes of the whole catalog (by default those still to take effect), each cancellable
//! before its instant by a role that may change prices.

use std::sync::Arc;

use askama::Template;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::{Frame, Lang, Params, entered, failed, local, page};
use crate::api::Hq;
use crate::extract::Query;
use crate::identity::Scope;

pub(super) struct ChangeRow {
    pub id: String,
    pub sku: String,
    pub effective: String,
    pub book: String,
    pub price: String,
    pub status: &'static str,
    pub by: String,
    pub cancellable: bool,
}

/// The rows of `changes` as the API answers them.
pub(super) fn change_rows(t: Lang, changes: &[Value], can_write: bool) -> Vec<ChangeRow> {
    changes
        .iter()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            let status = match c["status"].as_str() {
                Some("scheduled") => "status.scheduled",
                Some("effective") => "status.effective",
                Some("cancelled") => "status.cancelled",
                _ => "status.replaced",
            };
            let effective = match (c["effective_local"].as_str(), c["time_zone"].as_str()) {
                (Some(local_time), Some(zone)) => {
                    format!("{} {zone}", local_time.replace('T', " "))
                }
                _ => c["effective_ms"]
                    .as_i64()
                    .map_or_else(String::new, |ms| local(ms, "UTC")),
            };
            ChangeRow {
                id: text("id"),
                sku: text("sku"),
                effective,
                book: text("book"),
                price: t.money(&text("price"), &text("currency")),
                status: t.get(status),
                by: text("created_by"),
                cancellable: can_write && status == "status.scheduled",
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "price_changes.html")]
struct PriceChanges {
    f: Frame,
    all: bool,
    changes: Vec<ChangeRow>,
}

/// `GET /price-changes[?all=1]`: the scheduled changes of the catalog, or the last 500 of any
/// status.
pub(super) async fn price_changes(
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
        "/price-changes",
        Some(Scope::CatalogRead)
    );
    let all = params.get("all").is_some_and(|v| v == "1");
    let changes = match hq.db.pool.acquire().await {
        Ok(mut conn) => crate::catalog::changes_where(&mut conn, "$1 = $1", "").await,
        Err(e) => Err(e),
    };
    let changes: Vec<Value> = match changes {
        Ok(changes) => changes
            .into_iter()
            .filter(|c| all || c["status"] == "scheduled")
            .collect(),
        Err(e) => return failed(e),
    };
    let can_write = session.user.role.scopes().contains(&Scope::CatalogWrite);
    let template = PriceChanges {
        changes: change_rows(lang.0, &changes, can_write),
        f: frame,
        all,
    };
    page(&template, StatusCode::OK, lang)
}
