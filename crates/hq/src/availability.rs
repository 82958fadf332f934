//! One stock for every channel. What a location can promise is its stock on hand (the sum of
//! the movements its tills synced) less what is reserved (carts of the web shop, holds for a
//! customer) and less the safety stock kept back: `available = on_hand − reserved − safety`.
//!
//! A reservation never takes `available` below zero: it is made inside HQ's write transaction
//! after the location's stock row of each SKU is locked (`FOR UPDATE` on PostgreSQL; SQLite has
//! one writer), so of two requests for the last unit exactly one succeeds. A reservation lives
//! until its expiry (a cart hold: 15 minutes unless asked otherwise), unless it is extended,
//! released or converted into an order. Tills never ask: a store sells what is on its shelf even
//! offline, so a sale can take a reserved unit; the reservation then stands against less stock
//! and `available` is negative until someone acts (see the README's policy).
//!
//! Every change to a location's figure of a SKU (a synced movement, a reservation made, ended or
//! expired, a safety stock set) is a line of the change feed (`availability_changes`), which a
//! shop follows with a cursor and answers by reading the figures again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::quantity::{Quantity, format_signed_milli, parse_signed_milli};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::api::{Access, ApiError, ApiResult, Hq, authorize};
use crate::db::{Arg, Db, insert_many};
use crate::extract::{Path, Query};
use crate::identity::Scope;
use crate::now_ms;
use crate::writes;

/// A cart hold lasts this long unless the request asks otherwise.
pub const DEFAULT_TTL_S: i64 = 15 * 60;
/// The longest a reservation may last at once (a hold for a customer over a weekend and more).
pub const MAX_TTL_S: i64 = 14 * 24 * 3600;
/// The shortest.
pub const MIN_TTL_S: i64 = 60;
/// SKUs one availability request may ask for.
pub const MAX_SKUS: usize = 200;
/// Lines one reservation may hold.
pub const MAX_LINES: usize = 100;
/// The safety stock key of a location's default (for SKUs without their own).
const EVERY_SKU: &str = "*";

/// A location's figures of one SKU, in thousandths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub on_hand: i64,
    pub reserved: i64,
    pub safety: i64,
}

impl Figures {
    /// What the location can promise: never less than nothing.
    pub fn available(&self) -> i64 {
        (self.on_hand - self.reserved - self.safety).max(0)
    }

    fn json(&self) -> Value {
        json!({
            "on_hand": format_signed_milli(self.on_hand),
            "reserved": format_signed_milli(self.reserved),
            "safety_stock": format_signed_milli(self.safety),
            "available": format_signed_milli(self.available()),
        })
    }
}

/// The figures of `skus` (at most [`MAX_SKUS`]) at `locations` at `now_ms`, by (location,
/// SKU): three statements whatever the number of stores and SKUs.
pub(crate) async fn figures(
    conn: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
    locations: &[String],
    skus: &[String],
    now_ms: i64,
) -> Result<BTreeMap<(String, String), Figures>, sqlx::Error> {
    let mut out: BTreeMap<(String, String), Figures> = locations
        .iter()
        .flat_map(|l| {
            skus.iter()
                .map(move |s| ((l.clone(), s.clone()), Figures::default()))
        })
        .collect();
    if skus.is_empty() {
        return Ok(out);
    }
    let mut marks = backend.marks();
    let listed = marks.tuple(skus.len());
    let on_hand = format!("SELECT location, sku, on_hand FROM stock_levels WHERE sku IN {listed}");
    let mut query = sqlx::query_as::<_, (String, String, i64)>(sqlx::AssertSqlSafe(on_hand));
    for sku in skus {
        query = query.bind(sku);
    }
    for (location, sku, milli) in query.fetch_all(&mut *conn).await? {
        if let Some(f) = out.get_mut(&(location, sku)) {
            f.on_hand = milli;
        }
    }
    let mut marks = backend.marks();
    let listed = marks.tuple(skus.len());
    let reserved = format!(
        "SELECT location, sku, CAST(SUM(quantity_milli) AS BIGINT) FROM reservation_lines
         WHERE sku IN {listed} AND live_until_ms > {}
         GROUP BY location, sku",
        marks.next()
    );
    let mut query =
        sqlx::query_as::<_, (String, String, Option<i64>)>(sqlx::AssertSqlSafe(reserved));
    for sku in skus {
        query = query.bind(sku);
    }
    for (location, sku, milli) in query.bind(now_ms).fetch_all(&mut *conn).await? {
        if let Some(f) = out.get_mut(&(location, sku)) {
            f.reserved = milli.unwrap_or(0);
        }
    }
    // Safety stock is set by hand: a small table, read whole.
    let safety: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT location, sku, quantity_milli FROM safety_stock")
            .fetch_all(&mut *conn)
            .await?;
    let safety: BTreeMap<(String, String), i64> =
        safety.into_iter().map(|(l, s, q)| ((l, s), q)).collect();
    for ((location, sku), f) in &mut out {
        f.safety = safety
            .get(&(location.clone(), sku.clone()))
            .or_else(|| safety.get(&(location.clone(), EVERY_SKU.to_owned())))
            .copied()
            .unwrap_or(0);
    }
    Ok(out)
}

/// Records that the figures of `keys` (location, SKU) changed at `now_ms`, in a statement or
/// a few (ingest records every SKU a batch moved), and tells the webhooks that want it the
/// figures now (`availability.changed`, one event per location and SKU).
pub(crate) async fn changed(
    conn: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
    keys: &BTreeSet<(String, String)>,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    if keys.is_empty() {
        return Ok(());
    }
    if crate::webhooks::wanted(conn, "availability.changed").await? {
        let mut by_location: BTreeMap<&String, Vec<String>> = BTreeMap::new();
        for (location, sku) in keys {
            by_location.entry(location).or_default().push(sku.clone());
        }
        let mut events = Vec::new();
        for (location, skus) in by_location {
            for chunk in skus.chunks(MAX_SKUS) {
                let now =
                    figures(conn, backend, std::slice::from_ref(location), chunk, now_ms).await?;
                events.extend(now.into_iter().map(|((location, sku), f)| {
                    let mut data = f.json();
                    data["location"] = json!(location);
                    data["sku"] = json!(sku);
                    crate::webhooks::Event {
                        kind: "availability.changed",
                        resource: format!("availability:{location}|{sku}"),
                        data,
                    }
                }));
            }
        }
        crate::webhooks::emit(conn, now_ms, events).await?;
    }
    let rows = keys
        .iter()
        .map(|(location, sku)| {
            vec![
                Arg::Text(location.clone()),
                Arg::Text(sku.clone()),
                Arg::Int(now_ms),
            ]
        })
        .collect();
    insert_many(
        conn,
        backend,
        "INSERT INTO availability_changes (location, sku, at_ms) VALUES",
        "",
        rows,
    )
    .await?;
    Ok(())
}

/// How long the change feed keeps a change: a shop away longer reads every figure again.
pub const FEED_DAYS: i64 = 7;

/// Forgets the changes of the feed older than [`FEED_DAYS`]; how many.
pub async fn prune(db: &Db, now_ms: i64) -> Result<u64, sqlx::Error> {
    let (_guard, mut tx) = db.begin_write().await?;
    let gone = sqlx::query("DELETE FROM availability_changes WHERE at_ms < $1")
        .bind(now_ms - FEED_DAYS * 24 * 3_600_000)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(gone)
}

pub(crate) fn invalid(field: impl Into<String>, reason: impl ToString) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", reason).at(field)
}

/// The variants HQ holds of `skus` (at most [`MAX_SKUS`]): one statement.
pub(crate) async fn variant_entities(
    conn: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
    skus: &[String],
) -> Result<BTreeMap<String, protocol::sync::VariantEntity>, sqlx::Error> {
    if skus.is_empty() {
        return Ok(BTreeMap::new());
    }
    let listed = backend.marks().tuple(skus.len());
    let sql = format!(
        "SELECT key, payload FROM ref_entities WHERE kind = 'variant' AND payload IS NOT NULL AND key IN {listed}"
    );
    let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
    for sku in skus {
        query = query.bind(sku);
    }
    Ok(query
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .filter_map(|(sku, payload)| Some((sku, serde_json::from_str(&payload).ok()?)))
        .collect())
}

/// Whether a variant is sold in stores and online.
pub(crate) fn channels(entity: &protocol::sync::VariantEntity) -> (bool, bool) {
    match entity.variant.channels.as_str() {
        "store" => (true, false),
        "online" => (false, true),
        _ => (true, true),
    }
}

/// The variants HQ holds of `skus` (at most [`MAX_SKUS`]), with the channels each is sold in
/// (stores, online): one statement.
async fn variants(
    conn: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
    skus: &[String],
) -> Result<BTreeMap<String, (bool, bool)>, sqlx::Error> {
    Ok(variant_entities(conn, backend, skus)
        .await?
        .iter()
        .map(|(sku, entity)| (sku.clone(), channels(entity)))
        .collect())
}

/// Every store HQ holds, by id.
pub(crate) async fn locations(conn: &mut sqlx::AnyConnection) -> Result<Vec<String>, sqlx::Error> {
    Ok(crate::catalog::stores(conn).await?.into_keys().collect())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AvailabilityQuery {
    /// SKUs, comma-separated.
    skus: Option<String>,
    location: Option<String>,
}

/// `GET /v1/availability?skus=A,B[&location=L]` (`stock:read`): per SKU and location the stock
/// on hand, reserved, kept back and available, the total over the locations, the channels the
/// variant is sold in, and per location the point of each till's ledger the figures include.
pub(crate) async fn read(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(q): Query<AvailabilityQuery>,
) -> ApiResult<Json<Value>> {
    let location = q.location.as_deref().filter(|l| !l.is_empty());
    authorize(&hq, &headers, Scope::StockRead, location, Access::Read).await?;
    let skus: Vec<String> = q
        .skus
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if skus.is_empty() || skus.len() > MAX_SKUS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("name 1 to {MAX_SKUS} SKUs, comma-separated"),
        )
        .at("skus"));
    }
    let mut conn = hq.db.pool.acquire().await?;
    let all = locations(&mut conn).await?;
    let locations: Vec<String> = match location {
        Some(l) if all.iter().any(|a| a == l) => vec![l.to_owned()],
        Some(l) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("no store `{}`", crate::api::echo(l)),
            )
            .at("location"));
        }
        None => all,
    };
    let held = variants(&mut conn, hq.db.backend, &skus).await?;
    let now = now_ms();
    let figures = figures(&mut conn, hq.db.backend, &locations, &skus, now).await?;
    let variants: Vec<Value> = skus
        .iter()
        .map(|sku| {
            let Some((store, online)) = held.get(sku) else {
                return json!({"sku": sku, "known": false});
            };
            let mut total = Figures::default();
            let mut available = 0;
            let per_location: Vec<Value> = locations
                .iter()
                .map(|l| {
                    let f = figures
                        .get(&(l.clone(), sku.clone()))
                        .copied()
                        .unwrap_or_default();
                    total.on_hand += f.on_hand;
                    total.reserved += f.reserved;
                    total.safety += f.safety;
                    available += f.available();
                    let mut v = f.json();
                    v["location"] = json!(l);
                    v
                })
                .collect();
            let mut total = total.json();
            // The total can promise what each location can, not what one location's shortfall
            // would take from another's.
            total["available"] = json!(format_signed_milli(available));
            json!({
                "sku": sku,
                "known": true,
                "channels": {"store": store, "online": online},
                "locations": per_location,
                "total": total,
            })
        })
        .collect();
    let mut as_of = serde_json::Map::new();
    for l in &locations {
        let tills = sqlx::query(
            "SELECT id, acked_seq, last_contact_ms FROM terminals WHERE store = $1 ORDER BY id",
        )
        .bind(l)
        .fetch_all(&mut *conn)
        .await?;
        let tills: Vec<Value> = tills
            .iter()
            .map(|t| {
                json!({
                    "terminal": t.get::<String, _>("id"),
                    "acked_seq": t.get::<i64, _>("acked_seq"),
                    "last_contact_ms": t.get::<Option<i64>, _>("last_contact_ms"),
                })
            })
            .collect();
        as_of.insert(l.clone(), json!({ "tills": tills }));
    }
    Ok(Json(
        json!({"at_ms": now, "variants": variants, "as_of": as_of}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedQuery {
    after: Option<i64>,
    limit: Option<i64>,
}

/// `GET /v1/availability/changes?after=N&limit=M` (`stock:read`): the locations and SKUs whose
/// figures changed after cursor `N`, oldest first; `next` is the cursor to ask with next.
pub(crate) async fn feed(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(q): Query<FeedQuery>,
) -> ApiResult<Json<Value>> {
    authorize(&hq, &headers, Scope::StockRead, None, Access::Read).await?;
    let after = q.after.unwrap_or(0).max(0);
    let limit = q.limit.unwrap_or(500).clamp(1, 1000);
    let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT seq, location, sku, at_ms FROM availability_changes WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(&hq.db.pool)
    .await?;
    let next = rows.last().map_or(after, |r| r.0);
    let changes: Vec<Value> = rows
        .iter()
        .map(|(seq, location, sku, at)| {
            json!({"cursor": seq, "location": location, "sku": sku, "at_ms": at})
        })
        .collect();
    Ok(Json(json!({ "changes": changes, "next": next })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewLine {
    sku: String,
    quantity: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewReservation {
    location: String,
    lines: Vec<NewLine>,
    #[serde(default)]
    ttl_seconds: Option<i64>,
    /// The shop's cart or order, or the customer a store holds for.
    #[serde(default)]
    reference: Option<String>,
    /// `online` (the default: a variant sold only in stores cannot be held) or `store`.
    #[serde(default)]
    channel: Option<String>,
}

fn ttl(asked: Option<i64>, field: &str) -> ApiResult<i64> {
    let ttl = asked.unwrap_or(DEFAULT_TTL_S);
    if (MIN_TTL_S..=MAX_TTL_S).contains(&ttl) {
        Ok(ttl)
    } else {
        Err(invalid(
            field,
            format!("a reservation lasts {MIN_TTL_S} to {MAX_TTL_S} seconds"),
        ))
    }
}

/// Takes the lock of each of `keys` until the transaction ends (PostgreSQL; SQLite's write
/// transaction already excludes every other writer), so two reservations of the same stock take
/// turns. A transaction-scoped advisory lock per location and SKU, taken in key order: held in
/// memory, where locking the stock row itself would write to it on every reservation (a tenth
/// of the throughput on one hot SKU, measured).
pub(crate) async fn lock(
    conn: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
    keys: &BTreeSet<(String, String)>,
) -> Result<(), sqlx::Error> {
    if backend != crate::db::Backend::Postgres {
        return Ok(());
    }
    for (location, sku) in keys {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("stock|{location}|{sku}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A reservation as answered.
async fn view(conn: &mut sqlx::AnyConnection, id: &str) -> Result<Option<Value>, sqlx::Error> {
    let row: Option<(String, Option<String>, String, i64, i64)> = sqlx::query_as(
        "SELECT location, reference, state, created_ms, expires_ms FROM reservations WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((location, reference, state, created, expires)) = row else {
        return Ok(None);
    };
    let lines: Vec<(String, i64)> = sqlx::query_as(
        "SELECT sku, quantity_milli FROM reservation_lines WHERE reservation = $1 ORDER BY sku",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    // An active reservation past its expiry is expired, whether or not the sweep has said so.
    let state = if state == "active" && expires <= now_ms() {
        "expired".to_owned()
    } else {
        state
    };
    Ok(Some(json!({
        "id": id,
        "location": location,
        "reference": reference,
        "state": state,
        "created_ms": created,
        "expires_ms": expires,
        "lines": lines.iter().map(|(sku, q)| json!({"sku": sku, "quantity": format_signed_milli(*q)})).collect::<Vec<_>>(),
    })))
}

/// `POST /v1/reservations` (`reservations:write`): holds the lines at the location for
/// `ttl_seconds`, or refuses the whole with `409 insufficient_stock` naming the first line that
/// the location cannot promise. Idempotent with `Idempotency-Key`.
pub(crate) async fn create(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    // The caller holds the scope before a byte of the body is read; then the store is checked
    // as theirs (a store manager's).
    authorize(&hq, &headers, Scope::ReservationsWrite, None, Access::Write).await?;
    let (asked, bytes): (NewReservation, _) = writes::json_body(&headers, body).await?;
    let actor = authorize(
        &hq,
        &headers,
        Scope::ReservationsWrite,
        Some(&asked.location),
        Access::Write,
    )
    .await?;
    let key = match writes::idempotency(&hq, &headers, &actor, &[b"POST /v1/reservations ", &bytes])
        .await?
    {
        Ok(key) => key,
        Err(answer) => return Ok(answer),
    };
    let ttl = ttl(asked.ttl_seconds, "ttl_seconds")?;
    let online = match asked.channel.as_deref().unwrap_or("online") {
        "online" => true,
        "store" => false,
        _ => return Err(invalid("channel", "`online` or `store`")),
    };
    if online && actor.starts_with("store:") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "missing_scope",
            "a store holds stock for customers in the store: channel `store`",
        )
        .at("channel"));
    }
    if asked.lines.is_empty() || asked.lines.len() > MAX_LINES {
        return Err(invalid("lines", format!("1 to {MAX_LINES} lines")));
    }
    if asked
        .reference
        .as_deref()
        .is_some_and(|r| r.chars().count() > 200)
    {
        return Err(invalid("reference", "at most 200 characters"));
    }
    let mut lines: BTreeMap<String, i64> = BTreeMap::new();
    for (i, line) in asked.lines.iter().enumerate() {
        let quantity = Quantity::parse(&line.quantity)
            .map_err(|e| invalid(format!("lines[{i}].quantity"), e))?;
        let entry = lines.entry(line.sku.clone()).or_default();
        *entry = entry.saturating_add(quantity.milli());
    }
    let now = now_ms();
    let (_guard, mut tx) = hq.db.begin_write().await?;
    if !locations(&mut tx).await?.contains(&asked.location) {
        return Err(invalid(
            "location",
            format!("no store `{}`", asked.location),
        ));
    }
    let skus: Vec<String> = lines.keys().cloned().collect();
    let held = variants(&mut tx, hq.db.backend, &skus).await?;
    for (i, line) in asked.lines.iter().enumerate() {
        match held.get(&line.sku) {
            None => {
                return Err(invalid(
                    format!("lines[{i}].sku"),
                    format!("no variant `{}`", line.sku),
                ));
            }
            Some((_, false)) if online => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "not_sold_online",
                    format!("`{}` is sold in stores only", line.sku),
                )
                .at(format!("lines[{i}].sku")));
            }
            Some((false, _)) if !online => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "not_sold_in_stores",
                    format!("`{}` is sold online only", line.sku),
                )
                .at(format!("lines[{i}].sku")));
            }
            Some(_) => {}
        }
    }
    let line_skus: Vec<&str> = asked.lines.iter().map(|l| l.sku.as_str()).collect();
    let keys = promise(
        &mut tx,
        hq.db.backend,
        &asked.location,
        &line_skus,
        &lines,
        now,
    )
    .await?;
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO reservations (id, location, reference, state, created_ms, expires_ms, updated_ms, actor)
         VALUES ($1, $2, $3, 'active', $4, $5, $4, $6)",
    )
    .bind(&id)
    .bind(&asked.location)
    .bind(&asked.reference)
    .bind(now)
    .bind(now + ttl * 1000)
    .bind(&actor)
    .execute(&mut *tx)
    .await?;
    insert_lines(&mut tx, &id, &asked.location, &lines, now + ttl * 1000).await?;
    changed(&mut tx, hq.db.backend, &keys, now).await?;
    let answer = view(&mut tx, &id).await?.unwrap_or(Value::Null);
    told(&mut tx, "reservation.created", &id, &answer, now).await?;
    writes::remember(&key, &mut tx, StatusCode::CREATED, &answer, now).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// Locks `wanted` (SKU → thousandths) at `location` for the rest of the transaction and checks
/// the location can promise all of it: `409 insufficient_stock` names the first of the
/// request's lines (`line_skus`, in order) it cannot. The keys locked.
pub(crate) async fn promise(
    conn: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
    location: &str,
    line_skus: &[&str],
    wanted: &BTreeMap<String, i64>,
    now_ms: i64,
) -> ApiResult<BTreeSet<(String, String)>> {
    let keys: BTreeSet<(String, String)> = wanted
        .keys()
        .map(|s| (location.to_owned(), s.clone()))
        .collect();
    lock(conn, backend, &keys).await?;
    let skus: Vec<String> = wanted.keys().cloned().collect();
    let figures = figures(conn, backend, &[location.to_owned()], &skus, now_ms).await?;
    for (i, sku) in line_skus.iter().enumerate() {
        let f = figures
            .get(&(location.to_owned(), (*sku).to_owned()))
            .copied()
            .unwrap_or_default();
        let want = wanted.get(*sku).copied().unwrap_or(0);
        if want > f.available() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "insufficient_stock",
                format!(
                    "{location} can promise {} of `{sku}`, not {}",
                    format_signed_milli(f.available()),
                    format_signed_milli(want)
                ),
            )
            .at(format!("lines[{i}].quantity")));
        }
    }
    Ok(keys)
}

/// Writes a reservation's lines, holding until `until_ms` at `location`.
pub(crate) async fn insert_lines(
    conn: &mut sqlx::AnyConnection,
    reservation: &str,
    location: &str,
    lines: &BTreeMap<String, i64>,
    until_ms: i64,
) -> Result<(), sqlx::Error> {
    for (sku, milli) in lines {
        sqlx::query(
            "INSERT INTO reservation_lines (reservation, sku, quantity_milli, location, live_until_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(reservation)
        .bind(sku)
        .bind(milli)
        .bind(location)
        .bind(until_ms)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Makes a reservation's lines hold until `until_ms` (0: no longer).
pub(crate) async fn hold_until(
    conn: &mut sqlx::AnyConnection,
    reservation: &str,
    until_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE reservation_lines SET live_until_ms = $1 WHERE reservation = $2")
        .bind(until_ms)
        .bind(reservation)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Tells the webhooks of a reservation's change.
async fn told(
    conn: &mut sqlx::AnyConnection,
    kind: &'static str,
    id: &str,
    answer: &Value,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    crate::webhooks::emit(
        conn,
        now_ms,
        vec![crate::webhooks::Event {
            kind,
            resource: format!("reservation:{id}"),
            data: answer.clone(),
        }],
    )
    .await
}

/// `GET /v1/reservations/{id}` (`stock:read`).
pub(crate) async fn read_one(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    authorize(&hq, &headers, Scope::StockRead, None, Access::Read).await?;
    let mut conn = hq.db.pool.acquire().await?;
    view(&mut conn, &id)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(&id))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("reservation", id)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Change {
    /// `extend` (from now, `ttl_seconds`), `release` or `convert`.
    action: String,
    #[serde(default)]
    ttl_seconds: Option<i64>,
}

/// `POST /v1/reservations/{id}/actions` (`reservations:write`) with `{"action": "extend" |
/// "release" | "convert"}`: an active reservation is extended (from now), released (its stock
/// is available again) or converted (it becomes an order's). The same action again answers the
/// reservation as it is; any other on a reservation that is no longer active is
/// `409 not_active`.
pub(crate) async fn act(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    authorize(&hq, &headers, Scope::ReservationsWrite, None, Access::Write).await?;
    let (asked, _): (Change, _) = writes::json_body(&headers, body).await?;
    let location: Option<String> =
        sqlx::query_scalar("SELECT location FROM reservations WHERE id = $1")
            .bind(&id)
            .fetch_optional(&hq.db.pool)
            .await?;
    let Some(location) = location else {
        return Err(not_found(&id));
    };
    authorize(
        &hq,
        &headers,
        Scope::ReservationsWrite,
        Some(&location),
        Access::Write,
    )
    .await?;
    let (target, ttl) = match asked.action.as_str() {
        "extend" => ("active", Some(ttl(asked.ttl_seconds, "ttl_seconds")?)),
        "release" => ("released", None),
        "convert" => ("converted", None),
        _ => return Err(invalid("action", "`extend`, `release` or `convert`")),
    };
    let now = now_ms();
    let (_guard, mut tx) = hq.db.begin_write().await?;
    let (state, expires): (String, i64) =
        sqlx::query_as("SELECT state, expires_ms FROM reservations WHERE id = $1")
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?;
    let live = state == "active" && expires > now;
    match (live, state.as_str() == target && ttl.is_none()) {
        (_, true) => {
            let answer = view(&mut tx, &id).await?.unwrap_or(Value::Null);
            return Ok(Json(answer).into_response());
        }
        (false, _) => {
            let now_state = if state == "active" {
                "expired"
            } else {
                state.as_str()
            };
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_active",
                format!("reservation `{id}` is {now_state}"),
            ));
        }
        (true, false) => {}
    }
    let until = ttl.map_or(expires, |t| now + t * 1000);
    sqlx::query(
        "UPDATE reservations SET state = $1, expires_ms = $2, updated_ms = $3 WHERE id = $4",
    )
    .bind(target)
    .bind(until)
    .bind(now)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    hold_until(&mut tx, &id, if target == "active" { until } else { 0 }).await?;
    let skus: Vec<String> =
        sqlx::query_scalar("SELECT sku FROM reservation_lines WHERE reservation = $1")
            .bind(&id)
            .fetch_all(&mut *tx)
            .await?;
    let keys = skus.into_iter().map(|s| (location.clone(), s)).collect();
    changed(&mut tx, hq.db.backend, &keys, now).await?;
    let answer = view(&mut tx, &id).await?.unwrap_or(Value::Null);
    let kind = match target {
        "released" => "reservation.released",
        "converted" => "reservation.converted",
        _ => "reservation.extended",
    };
    told(&mut tx, kind, &id, &answer, now).await?;
    tx.commit().await?;
    Ok(Json(answer).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Safety {
    quantity: String,
}

/// `PUT /v1/safety-stock/{location}/{sku}` (`stores:write`; `*` for the location's default):
/// the stock kept back from what the location promises.
pub(crate) async fn set_safety(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path((location, sku)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Response> {
    let actor = authorize(&hq, &headers, Scope::StoresWrite, None, Access::Write).await?;
    let (asked, _): (Safety, _) = writes::json_body(&headers, body).await?;
    let milli = parse_signed_milli(&asked.quantity)
        .ok()
        .filter(|m| *m >= 0)
        .ok_or_else(|| invalid("quantity", "a quantity of 0 or more (`2`, `0.5`)"))?;
    let now = now_ms();
    let (_guard, mut tx) = hq.db.begin_write().await?;
    if !locations(&mut tx).await?.contains(&location) {
        return Err(invalid("location", format!("no store `{location}`")));
    }
    if sku != EVERY_SKU
        && variants(&mut tx, hq.db.backend, std::slice::from_ref(&sku))
            .await?
            .is_empty()
    {
        return Err(invalid("sku", format!("no variant `{sku}`")));
    }
    let before: Option<i64> = sqlx::query_scalar(
        "SELECT quantity_milli FROM safety_stock WHERE location = $1 AND sku = $2",
    )
    .bind(&location)
    .bind(&sku)
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO safety_stock (location, sku, quantity_milli) VALUES ($1, $2, $3)
         ON CONFLICT (location, sku) DO UPDATE SET quantity_milli = excluded.quantity_milli",
    )
    .bind(&location)
    .bind(&sku)
    .bind(milli)
    .execute(&mut *tx)
    .await?;
    let answer = json!({"location": location, "sku": sku, "quantity": format_signed_milli(milli)});
    let target = format!("safety-stock:{location}|{sku}");
    crate::identity::Audit {
        at_ms: now,
        actor: &actor,
        source: None,
        action: "safety-stock.set",
        target: Some(&target),
        before: before
            .map(|b| json!({"quantity": format_signed_milli(b)}).to_string())
            .as_deref(),
        after: Some(&answer.to_string()),
    }
    .append(&mut tx)
    .await?;
    if sku != EVERY_SKU {
        let key = BTreeSet::from([(location.clone(), sku.clone())]);
        changed(&mut tx, hq.db.backend, &key, now).await?;
    }
    tx.commit().await?;
    Ok(Json(answer).into_response())
}

/// Marks the reservations past their expiry `expired`, each SKU of theirs a change of the feed;
/// how many.
pub async fn expire(db: &Db, now_ms: i64) -> Result<usize, sqlx::Error> {
    let (_guard, mut tx) = db.begin_write().await?;
    let gone: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, location FROM reservations WHERE state = 'active' AND expires_ms <= $1",
    )
    .bind(now_ms)
    .fetch_all(&mut *tx)
    .await?;
    let mut keys = BTreeSet::new();
    for (id, location) in &gone {
        sqlx::query("UPDATE reservations SET state = 'expired', updated_ms = $1 WHERE id = $2")
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let skus: Vec<String> =
            sqlx::query_scalar("SELECT sku FROM reservation_lines WHERE reservation = $1")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        keys.extend(skus.into_iter().map(|s| (location.clone(), s)));
        let answer = view(&mut tx, id).await?.unwrap_or(Value::Null);
        told(&mut tx, "reservation.expired", id, &answer, now_ms).await?;
    }
    changed(&mut tx, db.backend, &keys, now_ms).await?;
    tx.commit().await?;
    Ok(gone.len())
}

/// Expires reservations in the background, every 15 s, and prunes the feed every hour.
pub(crate) async fn keep_up(db: Db) {
    for round in 0_u64.. {
        if let Err(e) = expire(&db, now_ms()).await {
            tracing::warn!(error = %e, "reservations not expired");
        }
        if round % 240 == 0 {
            if let Err(e) = prune(&db, now_ms()).await {
                tracing::warn!(error = %e, "availability feed not pruned");
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(15)).await;
    }
}
