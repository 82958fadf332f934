//! Enrolment of a store node: HQ issues a one-time code for a registered store (`kassa hq store
//! enrol`, or `POST /v1/stores/{id}/enrolment` from the back office); the node redeems it
//! (`POST /v1/enrol`) with its terminals' public keys and receives the store's credential, the
//! chain's CA and the PIN pepper. HQ keeps only the secret's SHA-256, the code works once and
//! expires, and every step is in the audit log. A store later replaces its own credential
//! (`POST /v1/sync/credential`), the old one working on for an overlap.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::{StoreId, TerminalId};
use protocol::enrol::{
    ClientCertificate, DEFAULT_OVERLAP_HOURS, EnrolAnswer, EnrolRequest, EnrolmentCode,
    MAX_OVERLAP_HOURS, RotateAnswer, RotateRequest, secret_hash,
};
use serde_json::json;

use crate::api::{Access, ApiError, ApiResult, Hq, authorize};
use crate::db::Db;
use crate::extract::Path;
use crate::identity::{Audit, Scope};
use crate::{HqError, writes};

/// How long a code works unless told otherwise.
pub const DEFAULT_HOURS: u32 = 24;
/// The longest a code may work.
pub const MAX_HOURS: u32 = 24 * 14;

/// What an enrolment code is made from, beside the store.
#[derive(Debug, Clone)]
pub struct Issue {
    /// HQ's URL as the store reaches it.
    pub url: String,
    /// The chain's CA (PEM) when HQ serves HTTPS: its fingerprint goes into the code, the PEM
    /// to the node once it has proven it holds the code.
    pub ca_pem: Option<String>,
    /// How long the code works.
    pub hours: u32,
}

/// Issues a one-time enrolment code for a registered store; an earlier code of the store not
/// yet used stops working. Audited (`store.enrolment_issued`) as done by `actor`.
pub async fn issue(
    db: &Db,
    store: &StoreId,
    issue: &Issue,
    actor: &str,
) -> Result<EnrolmentCode, HqError> {
    let url = issue.url.trim_end_matches('/').to_owned();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(HqError::Invalid(format!(
            "url `{url}` is not an http(s) URL: give HQ's address as the store reaches it, such as https://hq.example.com:8443"
        )));
    }
    let ca_pin = match (&issue.ca_pem, url.starts_with("https://")) {
        (Some(pem), true) => {
            Some(tls::fingerprint(pem).map_err(|e| HqError::Invalid(format!("the CA: {e}")))?)
        }
        (None, true) => {
            return Err(HqError::Invalid(
                "an https URL needs the chain's CA (run `kassa hq tls init`, or give --ca FILE)"
                    .into(),
            ));
        }
        (_, false) => None,
    };
    if !(1..=MAX_HOURS).contains(&issue.hours) {
        return Err(HqError::Invalid(format!(
            "a code works for 1 to {MAX_HOURS} hours, not {}",
            issue.hours
        )));
    }
    let secret =
        crate::random_hex(16).map_err(|e| HqError::Invalid(format!("no randomness: {e}")))?;
    let now = crate::now_ms();
    let expires_ms = now + i64::from(issue.hours) * 3_600_000;
    let (_guard, mut tx) = db.begin_write().await?;
    let known: Option<String> = sqlx::query_scalar("SELECT id FROM stores WHERE id = $1")
        .bind(store.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    if known.is_none() {
        return Err(HqError::UnknownStore(store.to_string()));
    }
    sqlx::query("DELETE FROM enrolments WHERE store = $1 AND used_ms IS NULL")
        .bind(store.as_str())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO enrolments (secret_hash, store, url, ca_pem, created_ms, expires_ms, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(secret_hash(&secret))
    .bind(store.as_str())
    .bind(&url)
    .bind(issue.ca_pem.as_deref().filter(|_| ca_pin.is_some()))
    .bind(now)
    .bind(expires_ms)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    let target = format!("store:{store}");
    let after = json!({"url": url, "ca_pin": ca_pin, "expires_ms": expires_ms}).to_string();
    Audit {
        at_ms: now,
        actor,
        source: None,
        action: "store.enrolment_issued",
        target: Some(&target),
        before: None,
        after: Some(&after),
    }
    .append(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(EnrolmentCode {
        url,
        store: store.to_string(),
        ca_pin,
        secret,
        expires_ms,
    })
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssueBody {
    url: String,
    hours: Option<u32>,
}

/// `POST /v1/stores/{id}/enrolment` (`stores:write`): a one-time code for the store, made with
/// the CA HQ serves under. Audited.
pub(crate) async fn issue_route(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let actor = authorize(&hq, &headers, Scope::StoresWrite, None, Access::Write).await?;
    let (asked, _): (IssueBody, _) = writes::json_body(&headers, body).await?;
    let bad = |field: &str, reason: String| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", reason).at(field)
    };
    let store = StoreId::parse(&id).map_err(|e| bad("id", e.to_string()))?;
    let hours = asked.hours.unwrap_or(DEFAULT_HOURS);
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(bad(
            "hours",
            format!("a code works for 1 to {MAX_HOURS} hours, not {hours}"),
        ));
    }
    let made = issue(
        &hq.db,
        &store,
        &Issue {
            url: asked.url,
            ca_pem: hq.ca_pem.clone(),
            hours,
        },
        &actor,
    )
    .await
    .map_err(|e| match e {
        HqError::UnknownStore(_) => ApiError::not_found("store", &id),
        HqError::Sqlx(e) => e.into(),
        e => bad("url", e.to_string()),
    })?;
    let answer = json!({
        "store": made.store,
        "code": made.encode(),
        "expires_ms": made.expires_ms,
    });
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// An enrolment row: store, CA, expiry, use and who issued it.
type Enrolment = (String, Option<String>, i64, Option<i64>, String);

/// `500 internal`, logged: what the caller could not have caused.
fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "store credential");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
}

/// A failed credential replacement: the database's own answer, else `500`.
fn credential_error(e: HqError) -> ApiError {
    match e {
        HqError::Sqlx(e) => e.into(),
        e => internal(e),
    }
}

fn refused(status: StatusCode, code: &'static str, message: String) -> ApiError {
    ApiError::new(status, code, message)
}

/// `POST /v1/enrol`: a node redeems a code. Its terminals are registered with their public keys,
/// the store gets a new credential (any earlier one stops working), and the answer carries it
/// with the chain's CA and PIN pepper. The code works once; a wrong, used or expired code
/// changes nothing.
pub(crate) async fn redeem(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let (asked, _): (EnrolRequest, _) = writes::json_body(&headers, body).await?;
    let bad = |field: String, reason: String| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", reason).at(field)
    };
    if asked.terminals.is_empty() || asked.terminals.len() > 64 {
        return Err(bad(
            "terminals".into(),
            "name the node's terminals (1 to 64)".into(),
        ));
    }
    let mut terminals = Vec::new();
    for (i, t) in asked.terminals.iter().enumerate() {
        let id = TerminalId::parse(&t.id)
            .map_err(|e| bad(format!("terminals[{i}].id"), e.to_string()))?;
        crate::terminal_key(&t.public_key)
            .map_err(|e| bad(format!("terminals[{i}].public_key"), e.to_string()))?;
        terminals.push((id, t.public_key.trim().to_lowercase()));
    }
    let now = crate::now_ms();
    let hash = secret_hash(&asked.secret);
    // A code HQ does not know is refused from a read, without the write lock: guessing codes
    // holds up no other write.
    let known: Option<String> =
        sqlx::query_scalar("SELECT store FROM enrolments WHERE secret_hash = $1")
            .bind(&hash)
            .fetch_optional(&hq.db.pool)
            .await?;
    let unknown = || {
        refused(
            StatusCode::UNAUTHORIZED,
            "enrolment_refused",
            "HQ does not know this enrolment code (or a newer code for the store replaced it): ask HQ for a new one (`kassa hq store enrol`)".into(),
        )
    };
    if known.is_none() {
        return Err(unknown());
    }
    let (_guard, mut tx) = hq.db.begin_write().await?;
    let found: Option<Enrolment> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT store, ca_pem, expires_ms, used_ms, created_by FROM enrolments WHERE secret_hash = $1{}",
            hq.db.backend.for_update()
        )))
        .bind(&hash)
        .fetch_optional(&mut *tx)
        .await?;
    let Some((store, ca_pem, expires_ms, used_ms, issued_by)) = found else {
        return Err(unknown());
    };
    if let Some(used) = used_ms {
        return Err(refused(
            StatusCode::CONFLICT,
            "enrolment_used",
            format!(
                "this enrolment code was used at {}: a code works once; ask HQ for a new one",
                jiff::Timestamp::from_millisecond(used)
                    .map_or_else(|_| used.to_string(), |t| t.to_string())
            ),
        ));
    }
    if expires_ms <= now {
        return Err(refused(
            StatusCode::GONE,
            "enrolment_expired",
            format!(
                "this enrolment code expired at {}: ask HQ for a new one",
                jiff::Timestamp::from_millisecond(expires_ms)
                    .map_or_else(|_| expires_ms.to_string(), |t| t.to_string())
            ),
        ));
    }
    let store_id = StoreId::parse(&store).map_err(internal)?;
    for (i, (terminal, key)) in terminals.iter().enumerate() {
        crate::add_terminal_within(&mut tx, &store_id, terminal, key)
            .await
            .map_err(|e| match e {
                HqError::TerminalTaken(_) => ApiError::new(
                    StatusCode::CONFLICT,
                    "terminal_taken",
                    format!("{e}: a till keeps its id and key for life; give a new till a new id, or revoke the old one first"),
                )
                .at(format!("terminals[{i}].id")),
                HqError::Sqlx(e) => e.into(),
                HqError::Licence(m) => crate::licence::refusal(m),
                e => bad(format!("terminals[{i}]"), e.to_string()),
            })?;
    }
    let credential = crate::replace_credential_within(&mut tx, &store_id, None)
        .await
        .map_err(credential_error)?;
    sqlx::query("UPDATE enrolments SET used_ms = $1 WHERE secret_hash = $2")
        .bind(now)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    let target = format!("store:{store}");
    let actor = format!("enrolment (issued by {issued_by})");
    let after = json!({
        "terminals": terminals.iter().map(|(t, k)| json!({"id": t.as_str(), "public_key": k})).collect::<Vec<_>>(),
    })
    .to_string();
    Audit {
        at_ms: now,
        actor: &actor,
        source: None,
        action: "store.enrolled",
        target: Some(&target),
        before: None,
        after: Some(&after),
    }
    .append(&mut tx)
    .await?;
    // Issued before the code is spent, so a failure leaves the code to be used again.
    let client_certificate = client_certificate(&hq, &store)?;
    tx.commit().await?;
    tracing::info!(%store, terminals = terminals.len(), "store enrolled");
    let answer = EnrolAnswer {
        client_certificate,
        store,
        credential,
        ca_pem,
        pin_pepper: hq.pin_pepper.map(hex::encode),
    };
    Ok((StatusCode::OK, Json(answer)).into_response())
}

/// A client certificate for `store`'s node, when HQ holds the chain's CA key.
fn client_certificate(hq: &Hq, store: &str) -> ApiResult<Option<ClientCertificate>> {
    let Some(ca) = &hq.client_ca else {
        return Ok(None);
    };
    let issued = ca.issue_store_client(store).map_err(internal)?;
    Ok(Some(ClientCertificate {
        chain_pem: issued.chain_pem.clone(),
        key_pem: issued.key_pem.clone(),
    }))
}

/// `POST /v1/sync/credential` (the store's credential): the store replaces its own credential.
/// The one that asked keeps working for the overlap (24 hours unless asked for another, at
/// most a week), so requests already on their way with it pass and a node picks the new one up
/// without a gap. Audited (`store.credential_rotated`).
pub(crate) async fn rotate(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let store = crate::api::authenticate_store(&hq, &headers).await?;
    let (asked, _): (RotateRequest, _) = writes::json_body(&headers, body).await?;
    let hours = asked.overlap_hours.unwrap_or(DEFAULT_OVERLAP_HOURS);
    if !(1..=MAX_OVERLAP_HOURS).contains(&hours) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            format!("the overlap is 1 to {MAX_OVERLAP_HOURS} hours, not {hours}"),
        )
        .at("overlap_hours"));
    }
    let presented = crate::api::bearer(&headers).unwrap_or_default();
    let store_id = StoreId::parse(&store).map_err(internal)?;
    let now = crate::now_ms();
    let until = now + i64::from(hours) * 3_600_000;
    let (_guard, mut tx) = hq.db.begin_write().await?;
    let credential = crate::replace_credential_within(&mut tx, &store_id, Some((presented, until)))
        .await
        .map_err(credential_error)?;
    let target = format!("store:{store}");
    let actor = format!("store:{store}");
    let after = json!({ "previous_valid_until_ms": until }).to_string();
    Audit {
        at_ms: now,
        actor: &actor,
        source: None,
        action: "store.credential_rotated",
        target: Some(&target),
        before: None,
        after: Some(&after),
    }
    .append(&mut tx)
    .await?;
    let client_certificate = client_certificate(&hq, &store)?;
    tx.commit().await?;
    tracing::info!(%store, until, "store replaced its credential");
    let answer = RotateAnswer {
        credential,
        previous_valid_until_ms: until,
        client_certificate,
    };
    Ok((StatusCode::OK, Json(answer)).into_response())
}
