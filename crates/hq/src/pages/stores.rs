//! `GET /stores`: each store's configuration as the chain publishes it, whether it has pulled
//! the latest reference version, and its tills; an admin edits a store's receipt details and
//! time zone (through `PUT /v1/stores/{id}` with `If-Match`, so that two people editing the
//! same store never overwrite each other silently).

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use sqlx::Row;

use super::{Frame, Params, entered, failed, local, page};
use crate::api::Hq;
use crate::extract::Query;
use crate::identity::Scope;

struct StoreRow {
    id: String,
    name: String,
    address: String,
    timezone: String,
    jurisdiction: String,
    currency: String,
    tax_id: String,
    registered: bool,
    pulled: String,
    current: bool,
    tills: Vec<TillRow>,
}

/// (store, till, revoked after, when, by, why) as HQ keeps a till.
type TillRecord = (
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// A till of a store, and its revocation when it was revoked.
struct TillRow {
    id: String,
    revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "stores.html")]
struct Stores {
    f: Frame,
    can_write: bool,
    version: i64,
    stores: Vec<StoreRow>,
}

/// `GET /stores` (`fleet:read`).
pub(super) async fn stores(
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
        "/stores",
        Some(Scope::FleetRead)
    );
    let t = lang.0;
    let read = async {
        let mut conn = hq.db.pool.acquire().await?;
        let configured = crate::catalog::stores(&mut conn).await?;
        let version: i64 = sqlx::query_scalar("SELECT version FROM ref_meta WHERE singleton = 1")
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or(0);
        let registered =
            sqlx::query("SELECT id, reference_version, reference_pulled_ms FROM stores")
                .fetch_all(&mut *conn)
                .await?;
        let tills: Vec<TillRecord> =
            sqlx::query_as("SELECT store, id, revoked_after_seq, revoked_ms, revoked_by, revoked_reason FROM terminals ORDER BY id")
                .fetch_all(&mut *conn)
                .await?;
        Ok::<_, sqlx::Error>((configured, version, registered, tills))
    };
    let (configured, version, registered, tills) = match read.await {
        Ok(read) => read,
        Err(e) => return failed(e),
    };
    let pulls: BTreeMap<String, (Option<i64>, Option<i64>)> = registered
        .iter()
        .map(|r| {
            (
                r.get::<String, _>("id"),
                (r.get("reference_version"), r.get("reference_pulled_ms")),
            )
        })
        .collect();
    let stores = configured
        .into_values()
        .map(|s| {
            let pull = pulls.get(&s.id);
            let (pulled_version, pulled_ms) = pull.copied().unwrap_or((None, None));
            StoreRow {
                registered: pull.is_some(),
                pulled: match (pulled_version, pulled_ms) {
                    (Some(v), Some(ms)) => format!("{v} · {}", local(ms, &s.timezone)),
                    _ => t.get("dash.never").to_owned(),
                },
                current: pulled_version == Some(version),
                tills: tills
                    .iter()
                    .filter(|till| till.0 == s.id)
                    .map(|(_, id, after, at, by, reason)| TillRow {
                        id: id.clone(),
                        revoked: after.map(|after| {
                            t.get("stores.revoked_as")
                                .replace("{seq}", &after.to_string())
                                .replace("{at}", &local(at.unwrap_or_default(), &s.timezone))
                                .replace("{by}", by.as_deref().unwrap_or_default())
                                .replace("{reason}", reason.as_deref().unwrap_or_default())
                        }),
                    })
                    .collect(),
                tax_id: s.tax_id.clone().unwrap_or_default(),
                id: s.id,
                name: s.name,
                address: s.address,
                timezone: s.timezone,
                jurisdiction: s.jurisdiction,
                currency: s.currency,
            }
        })
        .collect();
    let template = Stores {
        can_write: session.user.role.scopes().contains(&Scope::StoresWrite),
        version,
        stores,
        f: frame,
    };
    page(&template, StatusCode::OK, lang)
}
