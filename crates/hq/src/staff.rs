//! Staff through the write API: `GET /v1/staff`, `GET/PUT /v1/staff/{id}`.
//!
//! A member of staff (who signs in at the tills with a PIN) is a reference entity: a `PUT` is
//! the next version of the change log, with `If-Match`, `Idempotency-Key` and the audit log as
//! for a store. A PIN sent in clear is hashed under the chain's PIN pepper before anything is
//! written and never kept or answered; a change without a PIN keeps the PIN the member has.
//! HQ needs the pepper for that (`kassa hq run` loads it as `kassa hq publish` does); without
//! it a PIN is refused with `409 no_pin_pepper`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use protocol::seed::StaffDto;
use serde::Deserialize;
use serde_json::{Value, json};

use std::collections::BTreeMap;

use crate::api::{Access, ApiError, ApiResult, Hq, authorize};
use crate::extract::Path;
use crate::identity::Scope;
use crate::writes;

/// A member of staff as answered: never the PIN's hash.
fn shown(member: &StaffDto) -> Value {
    json!({ "id": member.id, "name": member.name, "role": member.role })
}

fn held_member(payload: Option<&str>) -> Option<StaffDto> {
    serde_json::from_str::<StaffDto>(payload?).ok()
}

/// Every member's name by id.
pub(crate) async fn names(db: &crate::db::Db) -> Result<BTreeMap<String, String>, sqlx::Error> {
    let rows: Vec<Option<String>> =
        sqlx::query_scalar("SELECT payload FROM ref_entities WHERE kind = 'staff'")
            .fetch_all(&db.pool)
            .await?;
    Ok(rows
        .iter()
        .filter_map(|p| held_member(p.as_deref()))
        .map(|m| (m.id.to_string(), m.name))
        .collect())
}

/// `GET /v1/staff` (`fleet:read`): every member of staff, without PINs.
pub(crate) async fn list(State(hq): State<Arc<Hq>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    authorize(&hq, &headers, Scope::FleetRead, None, Access::Read).await?;
    let rows: Vec<Option<String>> =
        sqlx::query_scalar("SELECT payload FROM ref_entities WHERE kind = 'staff' ORDER BY key")
            .fetch_all(&hq.db.pool)
            .await?;
    let staff: Vec<Value> = rows
        .iter()
        .filter_map(|p| held_member(p.as_deref()))
        .map(|m| shown(&m))
        .collect();
    Ok(Json(json!({ "staff": staff })))
}

/// `GET /v1/staff/{id}`: the member with the version as its `ETag`.
pub(crate) async fn read(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    authorize(&hq, &headers, Scope::FleetRead, None, Access::Read).await?;
    let mut conn = hq.db.pool.acquire().await?;
    let held = writes::held(&mut conn, "staff", &id).await?;
    let Some((version, Some(member))) =
        held.map(|h| (h.version, held_member(h.payload.as_deref())))
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no member of staff `{id}`"),
        )
        .at("id"));
    };
    Ok(writes::tagged(
        StatusCode::OK,
        json!({ "staff": shown(&member), "version": version }),
        version,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Member {
    id: String,
    name: String,
    role: String,
    /// A new PIN in clear; absent: the member keeps theirs.
    #[serde(default)]
    pin: Option<String>,
}

/// `PUT /v1/staff/{id}` (`stores:write`): adds the member, or changes their name, role or PIN
/// when `If-Match` names the version they were read at. A new member needs a PIN.
pub(crate) async fn write(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let path = format!("/v1/staff/{id}");
    let (actor, member, key) = match writes::put_request::<Member>(
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
    writes::same_as_path("id", &member.id, &id)?;
    let mut dto = StaffDto {
        id: member.id,
        name: member.name,
        role: member.role,
        pin: member.pin,
        pin_hash: None,
    };
    // The PIN, when one is sent, is checked and hashed (slow by design) before the write
    // begins; without one the member's held hash stands in for the check.
    if dto.pin.is_some() {
        dto.check("").map_err(crate::stores::field_error)?;
        let pepper = hq.pin_pepper.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_pin_pepper",
                "HQ runs without the chain's PIN pepper, so it cannot set a PIN: start it with --pin-pepper-file (or its data directory's own)",
            )
            .at("pin")
        })?;
        let (asked, pepper) = (dto.clone(), *pepper);
        // Hashing is slow by design: on a blocking thread, not the server's.
        dto = tokio::task::spawn_blocking(move || asked.hashed(&pepper))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?
            .map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", e.to_string()).at("pin")
            })?;
    }
    let (_guard, mut tx) = hq.db.begin_write().await?;
    if dto.pin_hash.is_none() {
        let held = writes::held(&mut tx, "staff", &id).await?;
        dto.pin_hash = held
            .and_then(|h| held_member(h.payload.as_deref()))
            .and_then(|m| m.pin_hash);
        if dto.pin_hash.is_none() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_field",
                "a new member of staff needs a PIN",
            )
            .at("pin"));
        }
        dto.check("").map_err(crate::stores::field_error)?;
    }
    let payload = serde_json::to_string(&dto)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    writes::put_entity(
        &hq,
        tx,
        &headers,
        &key,
        &actor,
        writes::Entity {
            kind: "staff",
            key: &id,
            payload,
            answer: json!({ "staff": shown(&dto) }),
        },
    )
    .await
}
