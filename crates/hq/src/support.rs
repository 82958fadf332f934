//! Remote support: support staff ask a store node for a diagnostics bundle, a re-sync or a
//! configuration profile from
//! the back office or the API (`POST /v1/stores/{id}/support`, scope `support:write`, which only
//! the `support` role holds); the node learns that some are waiting from its stock pull
//! (`Kassa-Support-Pending`), fetches them (`GET /v1/sync/support`, its store credential) and answers each request once (`POST
//! /v1/sync/support/{id}`). Asking and answering are in the audit log with who asked and why.
//! No remote shell: a node does only the kinds `protocol::support` names.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use protocol::support::{Profile, SupportAnswer, SupportKind, SupportRequest, SupportRequests};
use serde_json::{Value, json};
use sqlx::Row as _;

use crate::api::{Access, ApiError, ApiResult, Hq, authenticate_store, authorize};
use crate::extract::Path;
use crate::identity::{Audit, Scope};
use crate::writes;

/// The longest reason kept.
const REASON_CHARS: usize = 500;
/// The largest answer a node may send (a bundle with its recent log lines).
pub const MAX_ANSWER_BYTES: u64 = 2 * 1024 * 1024;
/// The most requests one store may have waiting: a flood of asks stays bounded.
const MAX_PENDING: i64 = 20;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Ask {
    kind: SupportKind,
    reason: String,
    #[serde(default)]
    profile: Option<Profile>,
}

fn bad(field: &str, reason: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", reason).at(field)
}

pub(crate) async fn known_store(hq: &Hq, id: &str) -> ApiResult<()> {
    let known: Option<String> = sqlx::query_scalar("SELECT id FROM stores WHERE id = $1")
        .bind(id)
        .fetch_optional(&hq.db.pool)
        .await?;
    known.map(|_| ()).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no store `{}` is registered", crate::api::echo(id)),
        )
        .at("id")
    })
}

/// `POST /v1/stores/{id}/support` (`support:write`): asks the store's node for a diagnostics
/// bundle or a re-sync, delivered on its next sync cycle. Audited (`support.diagnostics`,
/// `support.resync`) with who asked and why.
pub(crate) async fn ask(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let actor = authorize(&hq, &headers, Scope::SupportWrite, Some(&id), Access::Write).await?;
    let (asked, _): (Ask, _) = writes::json_body(&headers, body).await?;
    let reason = asked.reason.trim();
    if reason.is_empty() || reason.chars().count() > REASON_CHARS {
        return Err(bad(
            "reason",
            format!("say why you ask, in 1 to {REASON_CHARS} characters"),
        ));
    }
    let profile = match (asked.kind, &asked.profile) {
        (SupportKind::Profile, Some(profile)) => {
            profile
                .check()
                .map_err(|e| bad(&e.field, e.reason.clone()))?;
            serde_json::to_string(profile).ok()
        }
        (SupportKind::Profile, None) => {
            return Err(bad(
                "profile",
                "a profile request carries the profile".into(),
            ));
        }
        (_, Some(_)) => {
            return Err(bad(
                "profile",
                "only a profile request carries a profile".into(),
            ));
        }
        (_, None) => None,
    };
    known_store(&hq, &id).await?;
    let now = crate::now_ms();
    let (_guard, mut tx) = hq.db.begin_write().await?;
    let pending = pending_count(&mut tx, &id).await?;
    if pending >= MAX_PENDING {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_pending",
            format!(
                "store `{id}` has {pending} requests it has not answered yet: wait for its node to come online"
            ),
        ));
    }
    let request: i64 = sqlx::query_scalar(
        "INSERT INTO support_requests (store, kind, reason, profile, asked_by, asked_ms) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&id)
    .bind(asked.kind.as_str())
    .bind(reason)
    .bind(profile.as_deref())
    .bind(&actor)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let answer = json!({
        "id": request,
        "store": id,
        "kind": asked.kind,
        "reason": reason,
        "asked_by": actor,
        "asked_ms": now,
        "state": "pending",
        "profile": asked.profile,
    });
    Audit {
        at_ms: now,
        actor: &actor,
        source: None,
        action: &format!("support.{}", asked.kind.as_str()),
        target: Some(&format!("store:{id}")),
        before: None,
        after: Some(&answer.to_string()),
    }
    .append(&mut tx)
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// A request's state from when it was fetched and answered and whether it was done:
/// `pending`, `fetched`, `done` or `failed`.
pub(crate) fn state(
    fetched: Option<i64>,
    answered: Option<i64>,
    done: Option<i64>,
) -> &'static str {
    match (fetched, answered, done) {
        (_, Some(_), Some(1)) => "done",
        (_, Some(_), _) => "failed",
        (Some(_), None, _) => "fetched",
        (None, None, _) => "pending",
    }
}

fn request_json(r: &sqlx::any::AnyRow) -> Value {
    let answered: Option<i64> = r.get("answered_ms");
    let fetched: Option<i64> = r.get("fetched_ms");
    let result: Option<String> = r.get("result");
    let profile: Option<String> = r.get("profile");
    json!({
        "id": r.get::<i64, _>("id"),
        "store": r.get::<String, _>("store"),
        "kind": r.get::<String, _>("kind"),
        "reason": r.get::<String, _>("reason"),
        "asked_by": r.get::<String, _>("asked_by"),
        "asked_ms": r.get::<i64, _>("asked_ms"),
        "fetched_ms": fetched,
        "answered_ms": answered,
        "state": state(fetched, answered, r.get("done")),
        "result": result.and_then(|t| serde_json::from_str::<Value>(&t).ok()),
        "profile": profile.and_then(|t| serde_json::from_str::<Value>(&t).ok()),
    })
}

/// `GET /v1/stores/{id}/support` (`support:write`): the store's requests, newest first (at most
/// 50), with what the node answered.
pub(crate) async fn list(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    authorize(&hq, &headers, Scope::SupportWrite, Some(&id), Access::Read).await?;
    known_store(&hq, &id).await?;
    let rows = sqlx::query(
        "SELECT id, store, kind, reason, profile, asked_by, asked_ms, fetched_ms, answered_ms, done, result
         FROM support_requests WHERE store = $1 ORDER BY id DESC LIMIT 50",
    )
    .bind(&id)
    .fetch_all(&hq.db.pool)
    .await?;
    Ok(Json(
        json!({"requests": rows.iter().map(request_json).collect::<Vec<_>>()}),
    ))
}

/// How many requests of `store` its node has not answered.
pub(crate) async fn pending_count(
    conn: &mut sqlx::AnyConnection,
    store: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM support_requests WHERE store = $1 AND answered_ms IS NULL",
    )
    .bind(store)
    .fetch_one(conn)
    .await
}

/// `GET /v1/sync/support` (store credential): the requests the store's node has not answered,
/// oldest first; each is marked fetched.
pub(crate) async fn pending(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
) -> ApiResult<Json<SupportRequests>> {
    let store = authenticate_store(&hq, &headers).await?;
    let rows: Vec<(i64, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT id, kind, asked_by, reason, profile FROM support_requests
         WHERE store = $1 AND answered_ms IS NULL ORDER BY id",
    )
    .bind(&store)
    .fetch_all(&hq.db.pool)
    .await?;
    if rows.is_empty() {
        return Ok(Json(SupportRequests { requests: vec![] }));
    }
    let _guard = hq.db.write_guard().await;
    sqlx::query(
        "UPDATE support_requests SET fetched_ms = $1
         WHERE store = $2 AND answered_ms IS NULL AND fetched_ms IS NULL",
    )
    .bind(crate::now_ms())
    .bind(&store)
    .execute(&hq.db.pool)
    .await?;
    let requests = rows
        .into_iter()
        .filter_map(|(id, kind, asked_by, reason, profile)| {
            let kind = serde_json::from_value(Value::String(kind)).ok()?;
            Some(SupportRequest {
                id,
                kind,
                asked_by,
                reason,
                profile: profile.and_then(|p| serde_json::from_str(&p).ok()),
            })
        })
        .collect();
    Ok(Json(SupportRequests { requests }))
}

/// `POST /v1/sync/support/{id}` (store credential): the node's answer to one of its store's
/// requests, taken once. Audited (`support.answered`, by `store:ID`).
pub(crate) async fn answer(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Body,
) -> ApiResult<Response> {
    let store = authenticate_store(&hq, &headers).await?;
    let (answer, _): (SupportAnswer, _) =
        writes::json_body_limited(&headers, body, MAX_ANSWER_BYTES).await?;
    let now = crate::now_ms();
    let (_guard, mut tx) = hq.db.begin_write().await?;
    let held: Option<(String, String, Option<i64>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT store, kind, answered_ms FROM support_requests WHERE id = $1{}",
        hq.db.backend.for_update()
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    // Another store's request is answered as if it did not exist.
    let Some((_, kind, answered)) = held.filter(|(s, ..)| *s == store) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("store `{store}` has no support request {id}"),
        ));
    };
    if answered.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_answered",
            format!("support request {id} was answered already"),
        ));
    }
    let result = answer.result.to_string();
    sqlx::query(
        "UPDATE support_requests SET answered_ms = $1, done = $2, result = $3,
             fetched_ms = COALESCE(fetched_ms, $1) WHERE id = $4",
    )
    .bind(now)
    .bind(i64::from(answer.done))
    .bind(&result)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Audit {
        at_ms: now,
        actor: &format!("store:{store}"),
        source: None,
        action: "support.answered",
        target: Some(&format!("support:{id}")),
        before: None,
        after: Some(&json!({"kind": kind, "done": answer.done, "bytes": result.len()}).to_string()),
    }
    .append(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
