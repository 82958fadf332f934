//! The chain's configuration through the write API: stores (`GET /v1/stores`, `GET/PUT
//! /v1/stores/{id}`), tax jurisdictions (`GET /v1/jurisdictions`, `PUT
//! /v1/jurisdictions/{code}`) and the registration of tills (`POST /v1/terminals`).
//!
//! A store's configuration (name, address, time zone, jurisdiction, currency, VAT number,
//! scale-label layouts, quick keys) is a reference entity like a variant: a `PUT` is the next
//! version of the change log, which the store pulls as it pulls everything else, with the
//! version as its `ETag`, `If-Match` to change it, `Idempotency-Key`, and the audit log. The
//! store's sync credential is not part of it: `kassa hq store add` issues that.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::catalog::Sku;
use protocol::seed::{JurisdictionDto, QuickKeyPageDto, StoreDto};
use serde_json::{Value, json};

use crate::api::{Access, ApiError, ApiResult, Hq, authorize};
use crate::extract::Path;
use crate::identity::Scope;
use crate::writes;

/// A validation error of an entity checked at the root (`.name` is answered as `name`).
pub(crate) fn field_error(e: protocol::FieldError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", e.reason)
        .at(e.field.trim_start_matches('.').to_owned())
}

/// `GET /v1/stores`: every store's configuration, by id (`fleet:read`).
pub(crate) async fn list(State(hq): State<Arc<Hq>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    authorize(&hq, &headers, Scope::FleetRead, None, Access::Read).await?;
    let mut conn = hq.db.pool.acquire().await?;
    let stores: Vec<StoreDto> = crate::catalog::stores(&mut conn)
        .await?
        .into_values()
        .collect();
    Ok(Json(json!({ "stores": stores })))
}

/// `GET /v1/stores/{id}`: the configuration with its version as the `ETag`.
pub(crate) async fn read(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    authorize(&hq, &headers, Scope::FleetRead, Some(&id), Access::Read).await?;
    let mut conn = hq.db.pool.acquire().await?;
    let held = writes::held(&mut conn, "store", &id).await?;
    let Some((version, Some(payload))) = held.map(|h| (h.version, h.payload)) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no store `{id}`"),
        )
        .at("id"));
    };
    let store: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
    Ok(writes::tagged(
        StatusCode::OK,
        json!({ "store": store, "version": version }),
        version,
    ))
}

/// `PUT /v1/stores/{id}` (`stores:write`): creates the store's configuration, or replaces it
/// when `If-Match` names the version it was read at. Validated as a published file's stores
/// are: its jurisdiction one HQ defines (and its currency that jurisdiction's), a time zone of
/// the tz database, every quick key's SKU a variant HQ holds.
pub(crate) async fn write(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let path = format!("/v1/stores/{id}");
    let (actor, store, key) =
        match writes::put_request::<StoreDto>(&hq, &headers, Scope::StoresWrite, &path, body)
            .await?
        {
            Ok(asked) => asked,
            Err(answer) => return Ok(answer),
        };
    writes::same_as_path("id", &store.id, &id)?;
    let payload = serde_json::to_string(&store)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    let (_guard, mut tx) = hq.db.begin_write().await?;
    let jurisdictions: Vec<Option<String>> =
        sqlx::query_scalar("SELECT payload FROM ref_entities WHERE kind = 'jurisdiction'")
            .fetch_all(&mut *tx)
            .await?;
    let jurisdictions = jurisdictions
        .into_iter()
        .flatten()
        .filter_map(|p| serde_json::from_str::<JurisdictionDto>(&p).ok())
        .filter_map(|j| j.parse("jurisdiction").ok())
        .collect::<Vec<_>>();
    store.parse("", &jurisdictions).map_err(field_error)?;
    let skus: BTreeSet<String> = store
        .quick_keys
        .iter()
        .flat_map(|page| page.keys.iter().map(|k| k.sku.clone()))
        .collect();
    let mut held = BTreeSet::new();
    for sku in &skus {
        if writes::held(&mut tx, "variant", sku)
            .await?
            .is_some_and(|h| h.payload.is_some())
        {
            held.insert(sku.clone());
        }
    }
    QuickKeyPageDto::check_pages(
        &store.quick_keys,
        &|sku: &Sku| held.contains(sku.as_str()),
        "quick_keys",
    )
    .map_err(field_error)?;
    writes::put_entity(
        &hq,
        tx,
        &headers,
        &key,
        &actor,
        writes::Entity {
            kind: "store",
            key: &id,
            payload,
            answer: json!({ "store": store }),
        },
    )
    .await
}

/// `GET /v1/jurisdictions` (`fleet:read`): every tax jurisdiction with its rules.
pub(crate) async fn jurisdictions(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&hq, &headers, Scope::FleetRead, None, Access::Read).await?;
    let rows: Vec<(String, i64, Option<String>)> = sqlx::query_as(
        "SELECT key, version, payload FROM ref_entities WHERE kind = 'jurisdiction' ORDER BY key",
    )
    .fetch_all(&hq.db.pool)
    .await?;
    let list: Vec<Value> = rows
        .into_iter()
        .filter_map(|(_, version, payload)| {
            let jurisdiction: Value = serde_json::from_str(&payload?).ok()?;
            Some(json!({ "jurisdiction": jurisdiction, "version": version }))
        })
        .collect();
    Ok(Json(json!({ "jurisdictions": list })))
}

/// `PUT /v1/jurisdictions/{code}` (`stores:write`): a jurisdiction's currency, pricing,
/// rounding and tax rules (by category, with the dates they hold), `If-Match` as for a store.
/// Validated as a published file's are; refused when a store of the jurisdiction keeps another
/// currency, or when a tax category a variant uses would no longer be defined.
pub(crate) async fn write_jurisdiction(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(code): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let path = format!("/v1/jurisdictions/{code}");
    let (actor, jurisdiction, key) = match writes::put_request::<JurisdictionDto>(
        &hq,
        &headers,
        Scope::StoresWrite,
        &path,
        body,
    )
    .await?
    {
        Ok(asked) => asked,
        Err(answer) => return Ok(answer),
    };
    writes::same_as_path("code", &jurisdiction.code, &code)?;
    jurisdiction.parse("").map_err(field_error)?;
    let payload = serde_json::to_string(&jurisdiction)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    let (_guard, mut tx) = hq.db.begin_write().await?;
    let stores = crate::catalog::stores(&mut tx).await?;
    if let Some(store) = stores
        .values()
        .find(|s| s.jurisdiction == code && s.currency != jurisdiction.currency)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "in_use",
            format!(
                "store `{}` of this jurisdiction keeps {}: change the store first",
                store.id, store.currency
            ),
        )
        .at("currency"));
    }
    // A category this jurisdiction defined and defines no more must not be a variant's (unless
    // another jurisdiction still defines it).
    let held = writes::held(&mut tx, "jurisdiction", &code).await?;
    let before: Vec<String> = held
        .as_ref()
        .and_then(|h| serde_json::from_str::<JurisdictionDto>(h.payload.as_deref()?).ok())
        .map(|j| j.rules.into_iter().map(|r| r.category).collect())
        .unwrap_or_default();
    let others: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT payload FROM ref_entities WHERE kind = 'jurisdiction' AND key <> $1",
    )
    .bind(&code)
    .fetch_all(&mut *tx)
    .await?;
    let defined: BTreeSet<String> = others
        .into_iter()
        .flatten()
        .filter_map(|p| serde_json::from_str::<JurisdictionDto>(&p).ok())
        .flat_map(|j| j.rules.into_iter().map(|r| r.category))
        .chain(jurisdiction.rules.iter().map(|r| r.category.clone()))
        .collect();
    for category in before.iter().filter(|c| !defined.contains(*c)) {
        let pattern = format!("%\"tax\":{}%", json!(category));
        let user: Option<String> = sqlx::query_scalar(
            "SELECT key FROM ref_entities WHERE kind = 'variant' AND payload LIKE $1 LIMIT 1",
        )
        .bind(&pattern)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(sku) = user {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "in_use",
                format!("the tax category `{category}` is variant `{sku}`'s: keep its rule"),
            )
            .at("rules"));
        }
    }
    writes::put_entity(
        &hq,
        tx,
        &headers,
        &key,
        &actor,
        writes::Entity {
            kind: "jurisdiction",
            key: &code,
            payload,
            answer: json!({ "jurisdiction": jurisdiction }),
        },
    )
    .await
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTerminal {
    store: String,
    id: String,
    public_key: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Revocation {
    reason: String,
    after_seq: Option<u64>,
}

/// The longest reason for a revocation.
const REASON_CHARS: usize = 500;

/// `POST /v1/terminals/{id}/revoke` (`stores:write`): a till stolen or lost. HQ keeps what it
/// holds of the till's ledger up to `after_seq` (by default all it holds now; never less) and
/// parks every batch beyond it from then on. Audited (`terminal.revoke`); a till is revoked
/// once.
pub(crate) async fn revoke_terminal(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let actor = authorize(&hq, &headers, Scope::StoresWrite, None, Access::Write).await?;
    let (asked, _): (Revocation, _) = writes::json_body(&headers, body).await?;
    let reason = asked.reason.trim();
    if reason.is_empty() || reason.chars().count() > REASON_CHARS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            format!("say why the till is revoked, in 1 to {REASON_CHARS} characters"),
        )
        .at("reason"));
    }
    let (_guard, mut tx) = hq.db.begin_write().await?;
    let held: Option<(String, i64, Option<i64>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT store, acked_seq, revoked_after_seq FROM terminals WHERE id = $1{}",
        hq.db.backend.for_update()
    )))
    .bind(&id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((store, acked, revoked)) = held else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no till `{}` is registered", crate::api::echo(&id)),
        ));
    };
    if let Some(point) = revoked {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_revoked",
            format!("till `{id}` was revoked after sequence {point}"),
        ));
    }
    let after = match asked.after_seq.map(i64::try_from) {
        None => acked,
        Some(Ok(seq)) if seq >= acked => seq,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_field",
                format!(
                    "HQ already holds the till's ledger up to sequence {acked}; revoke it after that or later"
                ),
            )
            .at("after_seq"));
        }
    };
    let now = crate::now_ms();
    sqlx::query(
        "UPDATE terminals SET revoked_after_seq = $1, revoked_ms = $2, revoked_by = $3, revoked_reason = $4 WHERE id = $5",
    )
    .bind(after)
    .bind(now)
    .bind(&actor)
    .bind(reason)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    let answer = json!({
        "id": id,
        "store": store,
        "revoked_after_seq": after,
        "reason": reason,
    });
    let target = format!("terminal:{id}");
    crate::identity::Audit {
        at_ms: now,
        actor: &actor,
        source: None,
        action: "terminal.revoke",
        target: Some(&target),
        before: Some(&json!({ "acked_seq": acked }).to_string()),
        after: Some(&answer.to_string()),
    }
    .append(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(Json(answer).into_response())
}

/// `POST /v1/terminals` (`stores:write`): registers a till of a registered store with the
/// public key its ledger is signed with (as `kassa store provision` prints it), audited
/// (`terminal.register`). The same till, store and key again changes nothing (`200`).
pub(crate) async fn register_terminal(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let actor = authorize(&hq, &headers, Scope::StoresWrite, None, Access::Write).await?;
    let (asked, _): (NewTerminal, _) = writes::json_body(&headers, body).await?;
    let bad = |field: &str, reason: String| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", reason).at(field)
    };
    let store = domain::StoreId::parse(&asked.store).map_err(|e| bad("store", e.to_string()))?;
    let terminal = domain::TerminalId::parse(&asked.id).map_err(|e| bad("id", e.to_string()))?;
    crate::terminal_key(&asked.public_key).map_err(|e| bad("public_key", e.to_string()))?;
    let (_guard, mut tx) = hq.db.begin_write().await?;
    let added = crate::add_terminal_within(&mut tx, &store, &terminal, &asked.public_key)
        .await
        .map_err(|e| match e {
            crate::HqError::UnknownStore(_) => bad("store", e.to_string()),
            crate::HqError::TerminalTaken(_) => {
                ApiError::new(StatusCode::CONFLICT, "terminal_taken", e.to_string()).at("id")
            }
            crate::HqError::Sqlx(e) => e.into(),
            crate::HqError::Licence(m) => crate::licence::refusal(m),
            e => bad("public_key", e.to_string()),
        })?;
    let answer = json!({
        "store": store.as_str(),
        "id": terminal.as_str(),
        "public_key": asked.public_key.trim().to_lowercase(),
    });
    if added {
        let target = format!("terminal:{terminal}");
        crate::identity::Audit {
            at_ms: crate::now_ms(),
            actor: &actor,
            source: None,
            action: "terminal.register",
            target: Some(&target),
            before: None,
            after: Some(&answer.to_string()),
        }
        .append(&mut tx)
        .await?;
    }
    tx.commit().await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(answer)).into_response())
}
