//! The catalog as a web shop (or any other system) follows it: every product variant, price row
//! and category HQ holds, as changes of the reference change log after a cursor, a page at a
//! time. A first call without a cursor reads the whole catalog; later calls read what changed
//! since, removals included (an entity without `payload`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiError, ApiResult, Hq, authorize_reader};
use crate::extract::Query;
use crate::identity::Scope;

/// The kinds of the catalog.
const KINDS: [&str; 3] = ["category", "prices", "variant"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedQuery {
    /// Where the last page ended (its `next`); none for the whole catalog.
    after: Option<String>,
    limit: Option<i64>,
}

fn bad_cursor() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        "a cursor is the `next` of an earlier page",
    )
    .at("after")
}

/// `GET /v1/catalog/changes?after=&limit=` (`catalog:read`): the variants, prices and categories
/// that changed after the cursor, in change-log order (oldest first, at most `limit`, 500 by
/// default, 2,000 at most); `next` is the cursor to ask with next, `version` the change-log
/// version the page reaches, `more` whether another page follows now.
pub(crate) async fn changes(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(q): Query<FeedQuery>,
) -> ApiResult<Json<Value>> {
    authorize_reader(&hq, &headers, Scope::CatalogRead, None).await?;
    let limit = q.limit.unwrap_or(500).clamp(1, 2000);
    let (version, kind, key) = match q.after.as_deref().filter(|a| !a.is_empty()) {
        None => (0, String::new(), String::new()),
        Some(after) => {
            let mut parts = after.splitn(3, ':');
            let version = parts
                .next()
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|v| *v >= 0)
                .ok_or_else(bad_cursor)?;
            let kind = parts.next().ok_or_else(bad_cursor)?.to_owned();
            let key = parts.next().ok_or_else(bad_cursor)?.to_owned();
            (version, kind, key)
        }
    };
    let rows: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(
        "SELECT version, kind, key, payload FROM ref_entities
         WHERE kind IN ('category', 'prices', 'variant')
           AND (version > $1 OR (version = $1 AND (kind > $2 OR (kind = $2 AND key > $3))))
         ORDER BY version, kind, key LIMIT $4",
    )
    .bind(version)
    .bind(&kind)
    .bind(&key)
    .bind(limit + 1)
    .fetch_all(&hq.db.pool)
    .await?;
    let more = rows.len() as i64 > limit;
    let page = &rows[..rows.len().min(usize::try_from(limit).unwrap_or(0))];
    let next = page.last().map_or_else(
        || q.after.clone().unwrap_or_default(),
        |(v, kind, key, _)| format!("{v}:{kind}:{key}"),
    );
    let reached = page.last().map_or(version, |r| r.0);
    let changes: Vec<Value> = page
        .iter()
        .filter(|(_, kind, _, _)| KINDS.contains(&kind.as_str()))
        .map(|(v, kind, key, payload)| {
            json!({
                "version": v,
                "kind": kind,
                "key": key,
                "payload": payload.as_deref().and_then(|p| serde_json::from_str::<Value>(p).ok()),
            })
        })
        .collect();
    Ok(Json(json!({
        "changes": changes,
        "next": next,
        "version": reached,
        "more": more,
    })))
}
