//! Signing in to HQ over HTTP: a session in a cookie (`HttpOnly`, `SameSite=Strict`, `Path=/`)
//! whose CSRF token every state-changing request of the session sends back in `X-CSRF-Token`;
//! sign-out, and sign-out everywhere. Password checks run a few at a time, so that a flood of
//! sign-ins cannot take HQ's CPU from the stores' sync.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use std::net::IpAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::api::{ApiError, ApiResult, Hq};
use crate::extract::{read_body, require_content_type};
use crate::identity::{self, IdentityError, Session};
use crate::now_ms;

/// The session cookie's name.
pub const COOKIE: &str = "kassa_hq_session";

/// The header a state-changing request of a session carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The largest sign-in body.
const SIGN_IN_BYTES: u64 = 4 * 1024;

/// Password checks running at once; more sign-ins wait a moment and are refused (`429`).
pub(crate) const SIGN_INS_AT_ONCE: usize = 2;

/// Failed sign-ins from one address (whatever names they try) after which that address is
/// refused until [`THROTTLE_WINDOW_MS`] has passed since its first failure: the per-account
/// lockout stops guessing one password, this stops trying one password on many names.
pub const FAILURES_PER_ADDRESS: u32 = 20;

/// The window failed sign-ins from an address are counted in.
pub const THROTTLE_WINDOW_MS: i64 = 15 * 60_000;

/// Addresses kept at most; past it, windows that ended are dropped first, then all.
const ADDRESSES_KEPT: usize = 10_000;

/// Whether `address` has failed too often in its window.
fn throttled(hq: &Hq, address: IpAddr, now_ms: i64) -> bool {
    let failures = hq
        .sign_in_failures
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    failures.get(&address).is_some_and(|(count, since)| {
        *count >= FAILURES_PER_ADDRESS && now_ms - since < THROTTLE_WINDOW_MS
    })
}

/// Counts a failed sign-in from `address`.
fn failed_from(hq: &Hq, address: IpAddr, now_ms: i64) {
    let mut failures = hq
        .sign_in_failures
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if failures.len() >= ADDRESSES_KEPT {
        failures.retain(|_, (_, since)| now_ms - *since < THROTTLE_WINDOW_MS);
        if failures.len() >= ADDRESSES_KEPT {
            failures.clear();
        }
    }
    let entry = failures.entry(address).or_insert((0, now_ms));
    if now_ms - entry.1 >= THROTTLE_WINDOW_MS {
        *entry = (0, now_ms);
    }
    entry.0 += 1;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    name: String,
    password: String,
}

/// The session token in the request's cookie, if any.
pub(crate) fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

fn identity_error(e: IdentityError) -> ApiError {
    match e {
        IdentityError::Db(e) => e.into(),
        IdentityError::WrongPassword { .. } => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong_password",
            "wrong name or password",
        ),
        e @ IdentityError::Locked { .. } => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "locked", e)
        }
        e @ IdentityError::Disabled => ApiError::new(StatusCode::FORBIDDEN, "disabled", e),
        IdentityError::Invalid { field, reason } => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", reason).at(field)
        }
        e => {
            tracing::error!(error = %e, "sign-in failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "sign-in failed",
            )
        }
    }
}

fn session_json(session: &Session) -> serde_json::Value {
    json!({
        "name": session.user.name,
        "display_name": session.user.display_name,
        "role": session.user.role.as_str(),
        "stores": session.user.stores,
        "csrf": session.csrf,
        "expires_ms": session.expires_ms,
    })
}

fn set_cookie(hq: &Hq, value: &str, max_age_s: i64) -> HeaderValue {
    let secure = if hq.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_s}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("kassa_hq_session=; Max-Age=0"))
}

/// `POST /v1/session`: signs in with `{name, password}`.
pub(crate) async fn sign_in(
    State(hq): State<Arc<Hq>>,
    peer: Option<Extension<ConnectInfo<crate::https::Peer>>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let address = peer.map(|Extension(ConnectInfo(at))| at.addr.ip());
    if address.is_some_and(|a| throttled(&hq, a, now_ms())) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            "too many failed sign-ins from this address: try again in 15 minutes",
        ));
    }
    require_content_type(&headers, "application/json")?;
    let body = read_body(&headers, body, SIGN_IN_BYTES).await?;
    let form: SignIn = serde_json::from_slice(&body).map_err(|e| {
        let message = e.to_string();
        let field = crate::extract::backticked(&message)
            .filter(|f| ["name", "password"].contains(f))
            .map(str::to_owned);
        let error = ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", message);
        match field {
            Some(f) => error.at(f),
            None => error,
        }
    })?;
    let Ok(_permit) = hq.sign_ins.try_acquire() else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            "too many sign-ins at once: try again in a moment",
        ));
    };
    let now = now_ms();
    let source = address.map(|a| a.to_string());
    let user =
        match identity::sign_in(&hq.db, &form.name, &form.password, source.as_deref(), now).await {
            Ok(user) => user,
            Err(e) => {
                if let (Some(a), IdentityError::WrongPassword { .. }) = (address, &e) {
                    failed_from(&hq, a, now);
                }
                return Err(identity_error(e));
            }
        };
    let started = identity::start_session(&hq.db, &user, now)
        .await
        .map_err(identity_error)?;
    let session = Session {
        user,
        csrf: started.csrf,
        expires_ms: started.expires_ms,
    };
    let mut response = Json(session_json(&session)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&hq, &started.token, identity::SESSION_MS / 1000),
    );
    Ok(response)
}

/// The session of the request's cookie, or `401`.
pub(crate) async fn session_of(hq: &Hq, headers: &HeaderMap) -> ApiResult<Option<Session>> {
    let Some(token) = cookie_token(headers) else {
        return Ok(None);
    };
    match identity::session_for(&hq.db, token, now_ms()).await {
        Ok(Some(s)) => Ok(Some(s)),
        Ok(None) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the session has ended: sign in again",
        )),
        Err(e) => Err(identity_error(e)),
    }
}

/// Refuses a state-changing request of `session` that does not carry its CSRF token.
pub(crate) fn check_csrf(headers: &HeaderMap, session: &Session) -> ApiResult<()> {
    let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if sent == Some(session.csrf.as_str()) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf",
        "this request does not carry the session's CSRF token (X-CSRF-Token)",
    )
    .at(CSRF_HEADER))
}

/// The session of a state-changing request: its cookie, and its CSRF token in the header.
async fn changing_session(hq: &Hq, headers: &HeaderMap) -> ApiResult<(Session, String)> {
    let session = session_of(hq, headers)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "sign in first"))?;
    check_csrf(headers, &session)?;
    let token = cookie_token(headers).unwrap_or_default().to_owned();
    Ok((session, token))
}

/// `GET /v1/session`: who is signed in.
pub(crate) async fn current(State(hq): State<Arc<Hq>>, headers: HeaderMap) -> ApiResult<Response> {
    match session_of(&hq, &headers).await? {
        Some(s) => Ok(Json(session_json(&s)).into_response()),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "nobody is signed in",
        )),
    }
}

async fn end(hq: &Hq, headers: &HeaderMap, everywhere: bool) -> ApiResult<Response> {
    let (_, token) = changing_session(hq, headers).await?;
    let ended = identity::end_sessions(&hq.db, &token, everywhere, now_ms())
        .await
        .map_err(identity_error)?;
    let mut response = Json(json!({ "sessions_ended": ended })).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(hq, "", 0));
    Ok(response)
}

/// `DELETE /v1/session`: signs out.
pub(crate) async fn sign_out(State(hq): State<Arc<Hq>>, headers: HeaderMap) -> ApiResult<Response> {
    end(&hq, &headers, false).await
}

/// `POST /v1/session/sign-out-everywhere`: ends every session of the user.
pub(crate) async fn sign_out_everywhere(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    end(&hq, &headers, true).await
}
