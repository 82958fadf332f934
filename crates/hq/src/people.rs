//! Users and API keys over HTTP: `GET/POST /v1/users`, `PUT /v1/users/{name}/disabled`,
//! `GET/POST /v1/api-keys`, `POST /v1/api-keys/{id}/rotate`, `DELETE /v1/api-keys/{id}`.
//!
//! Only people manage people and keys: a signed-in admin changes them (with the session's CSRF
//! token), an admin or an auditor reads them. An API key never does either, so a leaked key
//! cannot make itself a stronger one or a person to sign in as. Every change is in the audit
//! log, named by the admin who made it.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiError, ApiResult, Hq};
use crate::extract::Path;
use crate::identity::{self, Actor, IdentityError, NewUser, Role, Scope, Session};
use crate::now_ms;
use crate::writes::json_body;

/// The session of a person who may read (`write == false`: admin, auditor) or change
/// (`write`: admin, with the CSRF token) users and keys.
async fn manager(hq: &Hq, headers: &HeaderMap, write: bool) -> ApiResult<Session> {
    let Some(session) = crate::sessions::session_of(hq, headers).await? else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "users and API keys are managed by a person signed in: an API key never manages them",
        ));
    };
    let role = session.user.role;
    let may = if write {
        role == Role::Admin
    } else {
        matches!(role, Role::Admin | Role::Auditor)
    };
    let refusal = if !may {
        Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "missing_role",
            format!(
                "the role {role} may not {} users and API keys",
                if write { "change" } else { "read" }
            ),
        ))
    } else if write {
        crate::sessions::check_csrf(headers, &session).err()
    } else {
        None
    };
    match refusal {
        Some(e) => {
            Err(crate::api::refused(hq, &actor(&session).to_string(), e, "users", None).await)
        }
        None => Ok(session),
    }
}

fn actor(session: &Session) -> Actor {
    Actor::User(session.user.name.clone())
}

fn identity_error(e: IdentityError) -> ApiError {
    match e {
        IdentityError::Db(e) => e.into(),
        IdentityError::Invalid { field, reason } => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", reason).at(field)
        }
        e @ IdentityError::UserExists(_) => {
            ApiError::new(StatusCode::CONFLICT, "user_exists", e).at("name")
        }
        e @ (IdentityError::UnknownUser(_) | IdentityError::UnknownKey(_)) => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", e)
        }
        e @ IdentityError::KeyNotLive(_) => ApiError::new(StatusCode::CONFLICT, "key_not_live", e),
        e => {
            tracing::error!(error = %e, "a user or key change failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the change failed",
            )
        }
    }
}

/// `GET /v1/users`.
pub(crate) async fn list_users(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let session = manager(&hq, &headers, false).await?;
    let reader = actor(&session).to_string();
    identity::record_read(&hq.db, &reader, "users.read", "users", &json!({})).await?;
    Ok(Json(json!({ "users": identity::users(&hq.db).await? })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddUser {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
    role: String,
    #[serde(default)]
    stores: Vec<String>,
    password: String,
}

/// `POST /v1/users`.
pub(crate) async fn add_user(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let session = manager(&hq, &headers, true).await?;
    let (form, _) = json_body::<AddUser>(&headers, body).await?;
    let role = Role::parse(&form.role).map_err(|e| identity_error(e).at("role"))?;
    let user = identity::add_user(
        &hq.db,
        &NewUser {
            display_name: form.display_name.unwrap_or_else(|| form.name.clone()),
            name: form.name,
            role,
            stores: form.stores,
            password: form.password,
        },
        &actor(&session),
        now_ms(),
    )
    .await
    .map_err(identity_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": user.name,
            "display_name": user.display_name,
            "role": user.role.as_str(),
            "stores": user.stores,
        })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Disabled {
    disabled: bool,
}

/// `PUT /v1/users/{name}/disabled` with `{"disabled": true|false}`.
pub(crate) async fn set_disabled(
    State(hq): State<Arc<Hq>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let session = manager(&hq, &headers, true).await?;
    let (form, _) = json_body::<Disabled>(&headers, body).await?;
    identity::set_disabled(&hq.db, &actor(&session), &name, form.disabled, now_ms())
        .await
        .map_err(identity_error)?;
    Ok(Json(
        json!({ "name": name.trim().to_lowercase(), "disabled": form.disabled }),
    ))
}

/// `GET /v1/api-keys`: every key, live or not, without secrets.
pub(crate) async fn list_keys(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let session = manager(&hq, &headers, false).await?;
    let reader = actor(&session).to_string();
    identity::record_read(&hq.db, &reader, "keys.read", "api-keys", &json!({})).await?;
    let now = now_ms();
    let keys: Vec<Value> = identity::api_keys(&hq.db)
        .await?
        .iter()
        .map(|k| {
            let mut v = json!(k);
            v["live"] = json!(k.live(now));
            v
        })
        .collect();
    Ok(Json(json!({ "keys": keys })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    scopes: Vec<String>,
}

fn key_json(made: &identity::NewKey) -> Value {
    json!({
        "id": made.key.id,
        "name": made.key.name,
        "scopes": made.key.scopes,
        "secret": made.secret,
    })
}

/// `POST /v1/api-keys`: the secret is in this answer and nowhere else.
pub(crate) async fn create_key(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let session = manager(&hq, &headers, true).await?;
    let (form, _) = json_body::<NewKey>(&headers, body).await?;
    let scopes = form
        .scopes
        .iter()
        .enumerate()
        .map(|(i, s)| Scope::parse(s).map_err(|e| identity_error(e).at(format!("scopes[{i}]"))))
        .collect::<ApiResult<Vec<_>>>()?;
    let made = identity::create_api_key(&hq.db, &actor(&session), &form.name, &scopes, now_ms())
        .await
        .map_err(identity_error)?;
    Ok((StatusCode::CREATED, Json(key_json(&made))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotate {
    overlap_hours: u32,
}

/// The longest overlap a rotated key keeps working for: 30 days.
const MAX_OVERLAP_HOURS: u32 = 720;

/// `POST /v1/api-keys/{id}/rotate`: a new key of the same name and scopes; the old one keeps
/// working for `overlap_hours`, then expires.
pub(crate) async fn rotate_key(
    State(hq): State<Arc<Hq>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let session = manager(&hq, &headers, true).await?;
    let (form, _) = json_body::<Rotate>(&headers, body).await?;
    if form.overlap_hours > MAX_OVERLAP_HOURS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            format!("an overlap is at most {MAX_OVERLAP_HOURS} hours"),
        )
        .at("overlap_hours"));
    }
    let made = identity::rotate_api_key(
        &hq.db,
        &actor(&session),
        &id,
        i64::from(form.overlap_hours) * 3_600_000,
        now_ms(),
    )
    .await
    .map_err(identity_error)?;
    Ok((StatusCode::CREATED, Json(key_json(&made))).into_response())
}

/// `DELETE /v1/api-keys/{id}`: the key stops working at once, on every HQ process.
pub(crate) async fn revoke_key(
    State(hq): State<Arc<Hq>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let session = manager(&hq, &headers, true).await?;
    identity::revoke_api_key(&hq.db, &actor(&session), &id, now_ms())
        .await
        .map_err(identity_error)?;
    Ok(Json(json!({ "id": id.trim(), "revoked": true })))
}
