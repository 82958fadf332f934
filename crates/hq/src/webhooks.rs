//! Webhooks: HQ tells a shop (or any system holding an API key) what changed, at least once and
//! never lost.
//!
//! An event is written to the outbox (`webhook_events`, one `webhook_deliveries` row per
//! subscription that wants it) in the transaction of the change it tells of: a crash between
//! the change and the delivery loses nothing, and a change rolled back is never told. Each
//! resource numbers its events (`sequence`, 1, 2, …); a subscription's deliveries of one resource
//! go out one after the other in that order, each retried with exponential backoff until the
//! receiver answers 2xx or [`GIVE_UP_MS`] (72 hours) have passed. Every attempt is logged with
//! its status code; a delivery can be sent again by hand.
//!
//! Each request is signed: `Kassa-Webhook-Signature: t=<unix seconds>,v1=<hex>` where the hex
//! is HMAC-SHA256 under the subscription's secret of `<t>.<body>`. While a rotated secret's
//! overlap lasts, a second `v1=` signs with the previous one. A receiver checks one of them and
//! refuses a `t` more than [`REPLAY_WINDOW_S`] from its clock, and keeps the event ids it has
//! seen for as long (a retry carries the same `Kassa-Webhook-Id`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{KeyInit, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::api::{Access, ApiError, ApiResult, Hq, authorize};
use crate::db::Db;
use crate::extract::{Path, Query};
use crate::identity::{Audit, Scope};
use crate::now_ms;
use crate::writes;

/// A delivery not answered 2xx within this long after its event is given up.
pub const GIVE_UP_MS: i64 = 72 * 3_600_000;
/// How far a request's signed time may be from the receiver's clock before it refuses it.
pub const REPLAY_WINDOW_S: i64 = 300;
/// How long a receiver has to answer one request.
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The signature header.
pub const SIGNATURE_HEADER: &str = "kassa-webhook-signature";
/// The event's id header: the same on every attempt of the event.
pub const ID_HEADER: &str = "kassa-webhook-id";
/// The longest overlap a rotated secret may have.
const MAX_OVERLAP_S: i64 = 7 * 24 * 3600;
/// Subscriptions one API key may hold.
const MAX_SUBSCRIPTIONS: i64 = 20;

/// Every event type a subscription may name (`order.*` names every `order.` type, `*` all).
pub const EVENT_TYPES: &[&str] = &[
    "availability.changed",
    "reservation.created",
    "reservation.extended",
    "reservation.released",
    "reservation.converted",
    "reservation.expired",
    "order.created",
    "order.picked",
    "order.ready",
    "order.shipped",
    "order.collected",
    "order.cancelled",
    "order.stock_conflict",
    "order.returned",
    "return.created",
    "return.received",
];

/// One event to tell: its type, the resource it is about (`order:W-1001`) and what to say.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub kind: &'static str,
    pub resource: String,
    pub data: Value,
}

/// Wakes this process's deliverer when an event was written (it looks a moment later, when the
/// writing transaction has committed; at the latest its next round finds it).
static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

fn wants(events: &str, kind: &str) -> bool {
    events.split(',').any(|e| {
        e == "*"
            || e == kind
            || e.strip_suffix('*')
                .is_some_and(|prefix| kind.starts_with(prefix))
    })
}

/// Whether a live subscription wants events of `kind` (so the caller can skip working out
/// what to say).
pub(crate) async fn wanted(
    conn: &mut sqlx::AnyConnection,
    kind: &str,
) -> Result<bool, sqlx::Error> {
    let subscriptions: Vec<String> =
        sqlx::query_scalar("SELECT events FROM webhook_subscriptions WHERE removed_ms IS NULL")
            .fetch_all(&mut *conn)
            .await?;
    Ok(subscriptions.iter().any(|e| wants(e, kind)))
}

/// Writes `events` to the outbox in `conn`'s transaction, one delivery per live subscription
/// that wants each; an event nobody subscribed to is not written. Each event's resource counts
/// one more in its sequence.
pub(crate) async fn emit(
    conn: &mut sqlx::AnyConnection,
    now_ms: i64,
    events: Vec<Event>,
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let subscriptions: Vec<(String, String)> =
        sqlx::query_as("SELECT id, events FROM webhook_subscriptions WHERE removed_ms IS NULL")
            .fetch_all(&mut *conn)
            .await?;
    if subscriptions.is_empty() {
        return Ok(());
    }
    for event in events {
        let to: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, wanted)| wants(wanted, event.kind))
            .map(|(id, _)| id)
            .collect();
        if to.is_empty() {
            continue;
        }
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO webhook_sequences (resource, seq) VALUES ($1, 1)
             ON CONFLICT (resource) DO UPDATE SET seq = webhook_sequences.seq + 1 RETURNING seq",
        )
        .bind(&event.resource)
        .fetch_one(&mut *conn)
        .await?;
        let id = uuid::Uuid::now_v7().to_string();
        let body = json!({
            "id": id,
            "type": event.kind,
            "resource": event.resource,
            "sequence": seq,
            "created_ms": now_ms,
            "data": event.data,
        })
        .to_string();
        sqlx::query(
            "INSERT INTO webhook_events (id, type, resource, seq, created_ms, body) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(event.kind)
        .bind(&event.resource)
        .bind(seq)
        .bind(now_ms)
        .bind(&body)
        .execute(&mut *conn)
        .await?;
        WAKE.notify_one();
        for subscription in to {
            sqlx::query(
                "INSERT INTO webhook_deliveries (event, subscription, resource, state, next_ms, created_ms)
                 VALUES ($1, $2, $3, 'pending', $4, $4)",
            )
            .bind(&id)
            .bind(subscription)
            .bind(&event.resource)
            .bind(now_ms)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// The HMAC-SHA256 of `<timestamp>.<body>` under `secret`, in hex.
pub fn sign(secret: &str, timestamp_s: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length.
    #[allow(clippy::expect_used)]
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// What a receiver checks: `header` (`t=…,v1=…[,v1=…]`) signs `body` under `secret` and its
/// time is within [`REPLAY_WINDOW_S`] of `now_s`.
pub fn verify(secret: &str, header: &str, body: &[u8], now_s: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", s)) => signatures.push(s),
            _ => {}
        }
    }
    let Some(t) = timestamp else {
        return false;
    };
    if (now_s - t).abs() > REPLAY_WINDOW_S {
        return false;
    }
    let expected = sign(secret, t, body);
    signatures
        .iter()
        .any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// When a failed delivery is tried again: `base` doubled per failed attempt up to `cap`, less a
/// random part of up to a quarter (so receivers coming back are not hit by every sender at
/// once).
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base_ms: i64,
    pub cap_ms: i64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base_ms: 5_000,
            cap_ms: 3_600_000,
        }
    }
}

impl Backoff {
    /// The wait after `attempts` failed attempts.
    pub fn after(&self, attempts: i64) -> i64 {
        let doubled = self
            .base_ms
            .saturating_mul(1_i64 << attempts.clamp(1, 30).saturating_sub(1));
        let wait = doubled.min(self.cap_ms).max(1);
        let mut byte = [0_u8; 2];
        let jitter = if getrandom::fill(&mut byte).is_ok() {
            wait / 4 * i64::from(u16::from_le_bytes(byte)) / i64::from(u16::MAX)
        } else {
            0
        };
        wait - jitter
    }
}

struct Due {
    id: i64,
    attempts: i64,
    created_ms: i64,
    body: String,
    url: String,
    secret: String,
    previous: Option<String>,
}

/// Sends what is due now (at most 64 deliveries, at most one per subscription and resource, the
/// oldest first) and records each outcome; how many were attempted. Deliveries of a removed
/// subscription, or of one whose API key no longer works, are not sent ([`cancel_orphans`] ends
/// them).
pub async fn deliver_due(
    db: &Db,
    client: &reqwest::Client,
    backoff: Backoff,
    now_ms: i64,
) -> Result<usize, sqlx::Error> {
    // The head of each subscription's queue per resource (its oldest pending delivery), when it
    // is due: one pass over the pending deliveries however long a queue grows.
    let rows = sqlx::query(
        "SELECT d.id, d.attempts, d.created_ms, e.body, s.url, s.secret, s.previous_secret, s.previous_until_ms
         FROM (SELECT MIN(id) AS id FROM webhook_deliveries WHERE state = 'pending'
               GROUP BY subscription, resource) h
         JOIN webhook_deliveries d ON d.id = h.id
         JOIN webhook_events e ON e.id = d.event
         JOIN webhook_subscriptions s ON s.id = d.subscription
         JOIN api_keys k ON k.id = s.api_key
         WHERE d.next_ms <= $1 AND d.lease_ms <= $1 AND s.removed_ms IS NULL
           AND k.revoked_ms IS NULL AND (k.expires_ms IS NULL OR k.expires_ms > $1)
         ORDER BY d.id LIMIT 64",
    )
    .bind(now_ms)
    .fetch_all(&db.pool)
    .await?;
    let mut due = Vec::new();
    for row in &rows {
        let id: i64 = row.get(0);
        // Claimed for a minute, so another HQ process on the same database does not send it
        // too; an HQ that dies holding it leaves it to be sent after the lease.
        let claimed = {
            let _guard = db.write_guard().await;
            sqlx::query(
                "UPDATE webhook_deliveries SET lease_ms = $1 WHERE id = $2 AND state = 'pending' AND lease_ms <= $3",
            )
            .bind(now_ms + 60_000)
            .bind(id)
            .bind(now_ms)
            .execute(&db.pool)
            .await?
            .rows_affected()
                == 1
        };
        if !claimed {
            continue;
        }
        let previous_until: Option<i64> = row.get(7);
        due.push(Due {
            id,
            attempts: row.get(1),
            created_ms: row.get(2),
            body: row.get(3),
            url: row.get(4),
            secret: row.get(5),
            previous: row
                .get::<Option<String>, _>(6)
                .filter(|_| previous_until.is_some_and(|u| u > now_ms)),
        });
    }
    let attempted = due.len();
    let outcomes = futures_util::future::join_all(due.into_iter().map(|d| async move {
        let started = std::time::Instant::now();
        let outcome = send(client, &d).await;
        (d, outcome, started.elapsed())
    }))
    .await;
    for (d, outcome, elapsed) in outcomes {
        let at = crate::now_ms();
        let (status, error) = match &outcome {
            Ok(status) => (Some(i64::from(*status)), None),
            Err(e) => (None, Some(e.clone())),
        };
        let delivered = matches!(outcome, Ok(s) if (200..300).contains(&s));
        let attempts = d.attempts + 1;
        let error = error
            .or_else(|| (!delivered).then(|| format!("answered {}", status.unwrap_or_default())));
        let (state, next) = if delivered {
            ("delivered", at)
        } else if at - d.created_ms >= GIVE_UP_MS {
            ("failed", at)
        } else {
            ("pending", at + backoff.after(attempts))
        };
        let (_guard, mut tx) = db.begin_write().await?;
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $1, attempts = $2, next_ms = $3, lease_ms = 0,
                    last_status = $4, last_error = $5, done_ms = $6 WHERE id = $7",
        )
        .bind(state)
        .bind(attempts)
        .bind(next)
        .bind(status)
        .bind(&error)
        .bind((state != "pending").then_some(at))
        .bind(d.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery, at_ms, status, error, elapsed_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(d.id)
        .bind(at)
        .bind(status)
        .bind(&error)
        .bind(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(attempted)
}

async fn send(client: &reqwest::Client, d: &Due) -> Result<u16, String> {
    let t = crate::now_ms().div_euclid(1000);
    let mut signature = format!("t={t},v1={}", sign(&d.secret, t, d.body.as_bytes()));
    if let Some(previous) = &d.previous {
        signature.push_str(&format!(",v1={}", sign(previous, t, d.body.as_bytes())));
    }
    let event: Value = serde_json::from_str(&d.body).unwrap_or(Value::Null);
    let answer = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("kassa-hq/", env!("CARGO_PKG_VERSION")),
        )
        .header(SIGNATURE_HEADER, signature)
        .header(ID_HEADER, event["id"].as_str().unwrap_or_default())
        .header(
            "kassa-webhook-type",
            event["type"].as_str().unwrap_or_default(),
        )
        .header("kassa-webhook-sequence", event["sequence"].to_string())
        .body(d.body.clone())
        .send()
        .await
        .map_err(|e| {
            let mut text = e.to_string();
            text.truncate(300);
            text
        })?;
    Ok(answer.status().as_u16())
}

/// Cancels the pending deliveries of removed subscriptions and of keys that no longer work
/// (never sent meanwhile: [`deliver_due`] skips them).
pub async fn cancel_orphans(db: &Db, now_ms: i64) -> Result<(), sqlx::Error> {
    let orphans: Vec<i64> = sqlx::query_scalar(
        "SELECT d.id FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription
         LEFT JOIN api_keys k ON k.id = s.api_key
         WHERE d.state = 'pending' AND (s.removed_ms IS NOT NULL OR k.id IS NULL
               OR k.revoked_ms IS NOT NULL OR (k.expires_ms IS NOT NULL AND k.expires_ms <= $1))
         LIMIT 1000",
    )
    .bind(now_ms)
    .fetch_all(&db.pool)
    .await?;
    if orphans.is_empty() {
        return Ok(());
    }
    let (_guard, mut tx) = db.begin_write().await?;
    for id in orphans {
        sqlx::query(
            "UPDATE webhook_deliveries SET state = 'cancelled', done_ms = $1, last_error = 'the subscription or its API key ended' WHERE id = $2 AND state = 'pending'",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Delivers in the background: what is due every 200 ms, and soon after an event is written.
pub(crate) async fn keep_up(db: Db, backoff: Backoff) {
    let client = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "webhooks cannot be delivered: no HTTP client");
            return;
        }
    };
    for round in 0_u64.. {
        if round % 50 == 0 {
            if let Err(e) = cancel_orphans(&db, now_ms()).await {
                tracing::warn!(error = %e, "webhook deliveries of ended subscriptions not cancelled");
            }
        }
        match deliver_due(&db, &client, backoff, now_ms()).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "webhooks not delivered"),
        }
        tokio::select! {
            () = WAKE.notified() => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            () = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
        }
    }
}

// ---- the API ----

fn invalid(field: &str, reason: impl ToString) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", reason).at(field)
}

fn new_secret() -> Result<String, ApiError> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("no randomness for a secret: {e}"),
        )
    })?;
    Ok(format!("whsec_{}", hex::encode(bytes)))
}

/// The API key a caller stands for: `key:ID` is `ID`; a person stands for none.
fn key_of(actor: &str) -> Option<&str> {
    actor.strip_prefix("key:")
}

/// Checks a webhook URL: absolute http(s) with a host, no credentials in it.
fn check_url(url: &str) -> Result<(), ApiError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid("url", format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("url", "an http:// or https:// URL"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("url", "a URL with a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            "url",
            "no credentials in the URL: requests are signed instead",
        ));
    }
    if url.len() > 2000 {
        return Err(invalid("url", "at most 2,000 characters"));
    }
    Ok(())
}

fn check_events(events: &[String]) -> Result<String, ApiError> {
    if events.is_empty() || events.len() > EVENT_TYPES.len() {
        return Err(invalid(
            "events",
            "name 1 or more event types (`order.*`, `*`)",
        ));
    }
    for (i, e) in events.iter().enumerate() {
        let known = e == "*"
            || EVENT_TYPES.contains(&e.as_str())
            || e.strip_suffix(".*").is_some_and(|prefix| {
                EVENT_TYPES
                    .iter()
                    .any(|t| t.starts_with(&format!("{prefix}.")))
            });
        if !known {
            return Err(invalid(
                &format!("events[{i}]"),
                format!(
                    "`{}` is no event type (one of {}, a prefix with `.*`, or `*`)",
                    crate::api::echo(e),
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
    }
    Ok(events.join(","))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSubscription {
    url: String,
    events: Vec<String>,
    /// The key the subscription is for: a key subscribes for itself; a person names one.
    #[serde(default)]
    api_key: Option<String>,
}

fn subscription_json(row: &sqlx::any::AnyRow) -> Value {
    let events: String = row.get("events");
    json!({
        "id": row.get::<String, _>("id"),
        "api_key": row.get::<String, _>("api_key"),
        "url": row.get::<String, _>("url"),
        "events": events.split(',').collect::<Vec<_>>(),
        "created_ms": row.get::<i64, _>("created_ms"),
        "created_by": row.get::<String, _>("created_by"),
        "previous_secret_until_ms": row.get::<Option<i64>, _>("previous_until_ms"),
    })
}

const SUBSCRIPTION_COLUMNS: &str =
    "id, api_key, url, events, created_ms, created_by, previous_until_ms";

/// `POST /v1/webhooks` (`webhooks:write`): subscribes `url` to `events` for an API key; the
/// answer carries the signing secret, this once.
pub(crate) async fn subscribe(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let actor = authorize(&hq, &headers, Scope::WebhooksWrite, None, Access::Write).await?;
    let (asked, _): (NewSubscription, _) = writes::json_body(&headers, body).await?;
    check_url(&asked.url)?;
    let events = check_events(&asked.events)?;
    let api_key = match (key_of(&actor), asked.api_key) {
        (Some(own), None) => own.to_owned(),
        (Some(own), Some(named)) if named == own => named,
        (Some(_), Some(_)) => {
            return Err(invalid("api_key", "an API key subscribes for itself only"));
        }
        (None, None) => return Err(invalid("api_key", "name the API key to subscribe for")),
        (None, Some(named)) => named,
    };
    let now = now_ms();
    let live = crate::identity::api_keys(&hq.db)
        .await?
        .into_iter()
        .any(|k| k.id == api_key && k.revoked_ms.is_none() && k.expires_ms.is_none_or(|e| e > now));
    if !live {
        return Err(invalid(
            "api_key",
            format!("no live API key `{}`", crate::api::echo(&api_key)),
        ));
    }
    let secret = new_secret()?;
    let id = format!("wh-{}", uuid::Uuid::now_v7().simple());
    let (_guard, mut tx) = hq.db.begin_write().await?;
    let held: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM webhook_subscriptions WHERE api_key = $1 AND removed_ms IS NULL",
    )
    .bind(&api_key)
    .fetch_one(&mut *tx)
    .await?;
    if held >= MAX_SUBSCRIPTIONS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_subscriptions",
            format!("an API key holds at most {MAX_SUBSCRIPTIONS} subscriptions: remove one first"),
        )
        .at("api_key"));
    }
    sqlx::query(
        "INSERT INTO webhook_subscriptions (id, api_key, url, events, secret, created_ms, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(&api_key)
    .bind(&asked.url)
    .bind(&events)
    .bind(&secret)
    .bind(now)
    .bind(&actor)
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = $1"
    )))
    .bind(&id)
    .fetch_one(&mut *tx)
    .await?;
    let view = subscription_json(&row);
    Audit {
        at_ms: now,
        actor: &actor,
        source: None,
        action: "webhook.subscribe",
        target: Some(&format!("webhook:{id}")),
        before: None,
        after: Some(&view.to_string()),
    }
    .append(&mut tx)
    .await?;
    tx.commit().await?;
    let mut answer = view;
    answer["secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// The subscription `id` as the caller may see it: a key sees its own only (another's is not
/// found), a person every one.
async fn owned(hq: &Hq, actor: &str, id: &str) -> ApiResult<sqlx::any::AnyRow> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = $1 AND removed_ms IS NULL"
    )))
    .bind(id)
    .fetch_optional(&hq.db.pool)
    .await?;
    match row {
        Some(row) if key_of(actor).is_none_or(|k| row.get::<String, _>("api_key") == k) => Ok(row),
        _ => Err(ApiError::not_found("webhook subscription", id)),
    }
}

/// Every live subscription, oldest first, without secrets.
pub(crate) async fn subscriptions(db: &Db) -> Result<Vec<Value>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE removed_ms IS NULL ORDER BY created_ms, id"
    )))
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(subscription_json).collect())
}

/// `GET /v1/webhooks` (`webhooks:write`): the live subscriptions (a key's own), without secrets.
pub(crate) async fn list(State(hq): State<Arc<Hq>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let actor = authorize(&hq, &headers, Scope::WebhooksWrite, None, Access::Read).await?;
    let subscriptions: Vec<Value> = subscriptions(&hq.db)
        .await?
        .into_iter()
        .filter(|s| key_of(&actor).is_none_or(|k| s["api_key"] == k))
        .collect();
    Ok(Json(json!({ "subscriptions": subscriptions })))
}

/// `DELETE /v1/webhooks/{id}` (`webhooks:write`): ends the subscription; what it has not
/// delivered yet is cancelled.
pub(crate) async fn remove(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let actor = authorize(&hq, &headers, Scope::WebhooksWrite, None, Access::Write).await?;
    let row = owned(&hq, &actor, &id).await?;
    let now = now_ms();
    let (_guard, mut tx) = hq.db.begin_write().await?;
    sqlx::query("UPDATE webhook_subscriptions SET removed_ms = $1 WHERE id = $2")
        .bind(now)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    Audit {
        at_ms: now,
        actor: &actor,
        source: None,
        action: "webhook.remove",
        target: Some(&format!("webhook:{id}")),
        before: Some(&subscription_json(&row).to_string()),
        after: None,
    }
    .append(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rotation {
    /// How long the previous secret still signs too (default a day, at most 7 days).
    #[serde(default)]
    overlap_seconds: Option<i64>,
}

/// `POST /v1/webhooks/{id}/rotate-secret` (`webhooks:write`): a new secret, answered this once;
/// the previous one still signs every request beside it for `overlap_seconds`.
pub(crate) async fn rotate(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let actor = authorize(&hq, &headers, Scope::WebhooksWrite, None, Access::Write).await?;
    let (asked, _): (Rotation, _) = writes::json_body(&headers, body).await?;
    let overlap = asked.overlap_seconds.unwrap_or(24 * 3600);
    if !(0..=MAX_OVERLAP_S).contains(&overlap) {
        return Err(invalid(
            "overlap_seconds",
            format!("0 to {MAX_OVERLAP_S} seconds"),
        ));
    }
    owned(&hq, &actor, &id).await?;
    let secret = new_secret()?;
    let now = now_ms();
    let (_guard, mut tx) = hq.db.begin_write().await?;
    sqlx::query(
        "UPDATE webhook_subscriptions SET previous_secret = secret, previous_until_ms = $1, secret = $2 WHERE id = $3",
    )
    .bind(now + overlap * 1000)
    .bind(&secret)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    Audit {
        at_ms: now,
        actor: &actor,
        source: None,
        action: "webhook.rotate-secret",
        target: Some(&format!("webhook:{id}")),
        before: None,
        after: Some(&json!({ "overlap_seconds": overlap }).to_string()),
    }
    .append(&mut tx)
    .await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = $1"
    )))
    .bind(&id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut answer = subscription_json(&row);
    answer["secret"] = json!(secret);
    Ok(Json(answer))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveryQuery {
    state: Option<String>,
    limit: Option<i64>,
}

/// A subscription's deliveries, newest first (at most `limit`, `state` one of pending,
/// delivered, failed, cancelled): the rows of the back office's delivery log.
pub(crate) async fn delivery_rows(
    conn: &mut sqlx::AnyConnection,
    subscription: Option<&str>,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<Value>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT d.id, d.subscription, d.state, d.attempts, d.next_ms, d.created_ms, d.last_status, d.last_error, d.done_ms,
                e.id AS event, e.type, e.resource, e.seq
         FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event
         WHERE ($1 = '' OR d.subscription = $1) AND ($2 = '' OR d.state = $2)
         ORDER BY d.id DESC LIMIT $3",
    )
    .bind(subscription.unwrap_or_default())
    .bind(state.unwrap_or_default())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<i64, _>("id"),
                "subscription": r.get::<String, _>("subscription"),
                "event": r.get::<String, _>("event"),
                "type": r.get::<String, _>("type"),
                "resource": r.get::<String, _>("resource"),
                "sequence": r.get::<i64, _>("seq"),
                "state": r.get::<String, _>("state"),
                "attempts": r.get::<i64, _>("attempts"),
                "created_ms": r.get::<i64, _>("created_ms"),
                "next_ms": r.get::<i64, _>("next_ms"),
                "last_status": r.get::<Option<i64>, _>("last_status"),
                "last_error": r.get::<Option<String>, _>("last_error"),
                "done_ms": r.get::<Option<i64>, _>("done_ms"),
            })
        })
        .collect())
}

/// `GET /v1/webhooks/{id}/deliveries?state=&limit=` (`webhooks:write`): the delivery log.
pub(crate) async fn deliveries(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<DeliveryQuery>,
) -> ApiResult<Json<Value>> {
    let actor = authorize(&hq, &headers, Scope::WebhooksWrite, None, Access::Read).await?;
    owned(&hq, &actor, &id).await?;
    let state = q.state.as_deref().filter(|s| !s.is_empty());
    if let Some(s) = state {
        if !["pending", "delivered", "failed", "cancelled"].contains(&s) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "pending, delivered, failed or cancelled",
            )
            .at("state"));
        }
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let mut conn = hq.db.pool.acquire().await?;
    let deliveries = delivery_rows(&mut conn, Some(&id), state, limit).await?;
    Ok(Json(json!({ "deliveries": deliveries })))
}

/// `GET /v1/webhook-deliveries/{id}` (`webhooks:write`): one delivery with every attempt.
pub(crate) async fn delivery(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    let actor = authorize(&hq, &headers, Scope::WebhooksWrite, None, Access::Read).await?;
    let (subscription, mut view) = delivery_of(&hq, &actor, id).await?;
    let attempts: Vec<(i64, Option<i64>, Option<String>, i64)> = sqlx::query_as(
        "SELECT at_ms, status, error, elapsed_ms FROM webhook_attempts WHERE delivery = $1 ORDER BY at_ms",
    )
    .bind(id)
    .fetch_all(&hq.db.pool)
    .await?;
    view["attempts"] = attempts
        .into_iter()
        .map(|(at, status, error, elapsed)| {
            json!({"at_ms": at, "status": status, "error": error, "elapsed_ms": elapsed})
        })
        .collect();
    view["subscription"] = json!(subscription);
    Ok(Json(view))
}

async fn delivery_of(hq: &Hq, actor: &str, id: i64) -> ApiResult<(String, Value)> {
    let subscription: Option<String> =
        sqlx::query_scalar("SELECT subscription FROM webhook_deliveries WHERE id = $1")
            .bind(id)
            .fetch_optional(&hq.db.pool)
            .await?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no delivery {id}"),
        )
    };
    let subscription = subscription.ok_or_else(not_found)?;
    owned(hq, actor, &subscription)
        .await
        .map_err(|_| not_found())?;
    let mut conn = hq.db.pool.acquire().await?;
    let view = delivery_rows(&mut conn, Some(&subscription), None, i64::MAX)
        .await?
        .into_iter()
        .find(|d| d["id"] == json!(id))
        .ok_or_else(not_found)?;
    Ok((subscription, view))
}

/// `POST /v1/webhook-deliveries/{id}/redeliver` (`webhooks:write`): sends the event again (the
/// same id and body), at once and then with backoff for another 72 hours; delivered or not
/// before. Audited.
pub(crate) async fn redeliver(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    let actor = authorize(&hq, &headers, Scope::WebhooksWrite, None, Access::Write).await?;
    let (subscription, _) = delivery_of(&hq, &actor, id).await?;
    let now = now_ms();
    let (_guard, mut tx) = hq.db.begin_write().await?;
    sqlx::query(
        "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_ms = $1, created_ms = $1, lease_ms = 0, done_ms = NULL WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Audit {
        at_ms: now,
        actor: &actor,
        source: None,
        action: "webhook.redeliver",
        target: Some(&format!("webhook:{subscription}")),
        before: None,
        after: Some(&json!({ "delivery": id }).to_string()),
    }
    .append(&mut tx)
    .await?;
    tx.commit().await?;
    let (_, view) = delivery_of(&hq, &actor, id).await?;
    Ok(Json(view))
}

/// The deliveries of every subscription for the back office: counts per state and the newest.
pub(crate) async fn overview(db: &Db) -> Result<(BTreeMap<String, i64>, Vec<Value>), sqlx::Error> {
    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, COUNT(*) FROM webhook_deliveries GROUP BY state")
            .fetch_all(&db.pool)
            .await?;
    let mut conn = db.pool.acquire().await?;
    let newest = delivery_rows(&mut conn, None, None, 100).await?;
    Ok((counts.into_iter().collect(), newest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_name_types() {
        assert!(wants("order.*", "order.ready"));
        assert!(!wants("order.*", "reservation.created"));
        assert!(wants("*", "availability.changed"));
        assert!(wants("reservation.created,order.ready", "order.ready"));
        assert!(!wants("order.ready", "order.readyx"));
    }

    #[test]
    fn a_signature_verifies_within_the_window_only() {
        let body = br#"{"id":"e1"}"#;
        let t = 1_800_000_000;
        let header = format!("t={t},v1={}", sign("whsec_a", t, body));
        assert!(verify("whsec_a", &header, body, t + 10));
        assert!(!verify("whsec_b", &header, body, t + 10));
        assert!(!verify("whsec_a", &header, b"{}", t + 10));
        assert!(!verify("whsec_a", &header, body, t + REPLAY_WINDOW_S + 1));
        let two = format!("{header},v1={}", sign("whsec_old", t, body));
        assert!(verify("whsec_old", &two, body, t));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = Backoff {
            base_ms: 1000,
            cap_ms: 8000,
        };
        for (attempts, full) in [(1, 1000), (2, 2000), (3, 4000), (4, 8000), (9, 8000)] {
            let wait = b.after(attempts);
            assert!(
                wait <= full && wait >= full - full / 4,
                "{attempts}: {wait}"
            );
        }
    }
}
