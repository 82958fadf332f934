//! What the store node's API tests share: signing a member in, and a router that sends each
//! request as the member signed in at the till the request names (in its JSON body or its
//! `terminal` query parameter), so that tests of other things need not carry sessions around.
#![allow(dead_code, clippy::unwrap_used)] // Each test binary uses part of it; a panic fails the test.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Sends `request` to `router` in process: the status and the body as JSON (`Null` when it is
/// empty or not JSON). (The kassa crate's tests have the same in `test_support::respond`; the
/// store's tests cannot use that crate, which depends on the store.)
pub async fn respond(router: &Router, request: Request) -> (axum::http::StatusCode, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Signs `staff` in at `terminal` through `router`; answers the session token.
pub async fn sign_in(router: &Router, terminal: &str, staff: &str, pin: &str) -> String {
    let body = json!({"terminal": terminal, "staff": staff, "pin": pin}).to_string();
    let request = Request::post("/v1/sign-in")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let (status, body) = respond(router, request).await;
    assert_eq!(status, 200, "{body}");
    body["session"].as_str().unwrap().to_owned()
}

/// `router`, sending every request that carries no `Authorization` of its own with the session
/// `sessions` holds for the till it names (any of them when it names none).
pub fn signed(router: Router, sessions: HashMap<String, String>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        Arc::new(sessions),
        sign,
    ))
}

async fn sign(
    State(sessions): State<Arc<HashMap<String, String>>>,
    request: Request,
    next: Next,
) -> Response {
    if request.headers().contains_key("authorization") {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let from_body = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["terminal"].as_str().map(str::to_owned));
    let from_query = parts.uri.query().and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("terminal="))
            .map(str::to_owned)
    });
    let session = from_body
        .or(from_query)
        .and_then(|t| sessions.get(&t))
        .or_else(|| sessions.values().min());
    if let Some(session) = session {
        parts.headers.insert(
            "authorization",
            format!("Bearer {session}").parse().unwrap(),
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
