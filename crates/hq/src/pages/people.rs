//! `GET /users`: the people who sign in to the back office and the API keys of other systems.
//! An admin adds and disables people and makes, rotates and revokes keys (through the JSON API,
//! `hq::people`); an auditor reads both lists.

use std::sync::Arc;

use askama::Template;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{Frame, Params, entered, failed, local, page, visible_stores};
use crate::api::Hq;
use crate::extract::Query;
use crate::identity::{self, Role, Scope};

struct UserRow {
    name: String,
    display_name: String,
    role: String,
    stores: String,
    state: &'static str,
    disabled: bool,
    itself: bool,
}

struct KeyRow {
    id: String,
    name: String,
    scopes: String,
    created: String,
    state: &'static str,
    live: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct People {
    f: Frame,
    can_write: bool,
    users: Vec<UserRow>,
    keys: Vec<KeyRow>,
    roles: Vec<&'static str>,
    scopes: Vec<&'static str>,
    stores: Vec<(String, String)>,
}

/// `GET /users`: for a role that reads the audit log (admin, auditor).
pub(super) async fn users(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    uri: OriginalUri,
    Query(params): Query<Params>,
) -> Response {
    let (session, frame, lang) = entered!(
        &hq,
        &headers,
        &uri,
        &params,
        "/users",
        Some(Scope::AuditRead)
    );
    let t = lang.0;
    let (users, keys, stores) = match tokio::try_join!(
        identity::users(&hq.db),
        identity::api_keys(&hq.db),
        visible_stores(&hq, &session)
    ) {
        Ok(read) => read,
        Err(e) => return failed(e),
    };
    let now = crate::now_ms();
    let template = People {
        can_write: session.user.role == Role::Admin,
        users: users
            .into_iter()
            .map(|u| UserRow {
                itself: u.name == session.user.name,
                state: t.get(if u.disabled_ms.is_some() {
                    "people.disabled"
                } else if u.locked_until_ms.is_some_and(|until| until > now) {
                    "people.locked"
                } else {
                    "people.active"
                }),
                disabled: u.disabled_ms.is_some(),
                stores: u.stores.join(", "),
                name: u.name,
                display_name: u.display_name,
                role: u.role,
            })
            .collect(),
        keys: keys
            .iter()
            .map(|k| KeyRow {
                id: k.id.clone(),
                name: k.name.clone(),
                scopes: k
                    .scopes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                created: format!("{} ({})", local(k.created_ms, "UTC"), k.created_by),
                state: t.get(if k.revoked_ms.is_some() {
                    "people.revoked"
                } else if k.expires_ms.is_some_and(|e| e <= now) {
                    "people.expired"
                } else if k.expires_ms.is_some() {
                    "people.expiring"
                } else {
                    "people.active"
                }),
                live: k.live(now),
            })
            .collect(),
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        scopes: Scope::ALL.iter().map(|s| s.as_str()).collect(),
        stores: stores.into_iter().map(|s| (s.id, s.name)).collect(),
        f: frame,
    };
    page(&template, StatusCode::OK, lang)
}
