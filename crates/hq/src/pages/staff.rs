//! `GET /staff`: the people who sign in at the tills with a PIN, and (for a role that may
//! change stores) a form that adds a member or changes a name, role or PIN through
//! `PUT /v1/staff/{id}` with `If-Match`.

use std::sync::Arc;

use askama::Template;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use protocol::seed::StaffDto;

use super::{Frame, Params, entered, failed, page};
use crate::api::Hq;
use crate::extract::Query;
use crate::identity::Scope;

#[derive(Template)]
#[template(path = "staff.html")]
struct Staff {
    f: Frame,
    can_write: bool,
    staff: Vec<(String, String, String)>,
}

/// `GET /staff` (`fleet:read`).
pub(super) async fn staff(
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
        "/staff",
        Some(Scope::FleetRead)
    );
    let rows: Vec<Option<String>> = match sqlx::query_scalar(
        "SELECT payload FROM ref_entities WHERE kind = 'staff' ORDER BY key",
    )
    .fetch_all(&hq.db.pool)
    .await
    {
        Ok(rows) => rows,
        Err(e) => return failed(e),
    };
    let template = Staff {
        can_write: session.user.role.scopes().contains(&Scope::StoresWrite),
        staff: rows
            .iter()
            .filter_map(|p| serde_json::from_str::<StaffDto>(p.as_deref()?).ok())
            .map(|m| (m.id, m.name, m.role))
            .collect(),
        f: frame,
    };
    page(&template, StatusCode::OK, lang)
}
