//! HQ's HTTP API: the sync endpoints stores call (push, reference, stock) with their store
//! credential, the read API for the back office and other systems, and Prometheus metrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use protocol::sync::{
    BATCH_MEDIA_TYPE, MAX_PUSH_BYTES, REFERENCE_MEDIA_TYPE, StockSnapshot, decode_batch,
    encode_reference, verify_batch,
};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::db::Db;
use crate::extract::{Query, read_body, require_content_type};
use crate::identity::Scope;
use crate::ingest::{IngestError, gap_ranges, ingest_pushed};
use crate::stored_value;
use crate::{now_ms, token_hash};

/// HQ's shared state.
#[derive(Debug)]
pub struct Hq {
    /// The database.
    pub db: Db,
    api_token: Option<String>,
    pub(crate) metrics: Metrics,
    /// Sign-ins checking a password now.
    pub(crate) sign_ins: tokio::sync::Semaphore,
    /// The reference version as last seen, for pulls that wait for the next one.
    reference: Arc<tokio::sync::watch::Sender<i64>>,
    watching: std::sync::atomic::AtomicBool,
    /// Set when HQ shuts down, so that waiting pulls answer at once.
    closing: tokio::sync::watch::Sender<bool>,
    /// Whether `/metrics` needs a reader with `fleet:read`.
    metrics_closed: bool,
    /// Failed sign-ins per source address in the current window, for throttling.
    pub(crate) sign_in_failures:
        std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (u32, i64)>>,
    /// The chain's PIN pepper, when HQ was given it: the staff write API hashes PINs with it.
    pub(crate) pin_pepper: Option<[u8; 32]>,
    /// Whether the session cookie is `Secure` (HQ is reached over HTTPS).
    pub(crate) secure_cookies: bool,
    /// The chain's CA (PEM) HQ's HTTPS certificate chains to: what enrolment codes pin.
    pub(crate) ca_pem: Option<String>,
    /// The chain's CA with its key: what store nodes' client certificates are issued under.
    pub(crate) client_ca: Option<Arc<tls::Authority>>,
    /// Where store backups are kept, when HQ keeps them.
    pub(crate) store_backups: Option<crate::store_backups::StoreBackups>,
}

/// How often HQ reads the reference version for the pulls waiting on it: a change made by
/// another process on the same database (`kassa hq publish`, an import, another HQ) reaches
/// them within this; a change made through this process's API at once.
const VERSION_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// The longest a store's reference pull may wait for a new version, in seconds.
pub const REFERENCE_WAIT_MAX_S: i64 = 25;

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pushes: AtomicU64,
    events_accepted: AtomicU64,
    events_duplicate: AtomicU64,
    batches_parked: AtomicU64,
    parked_repeats: AtomicU64,
    parked_unrecorded: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    push_micros: AtomicU64,
    /// Bytes of store backups appended (pieces taken).
    pub(crate) backup_bytes: AtomicU64,
}

impl Hq {
    /// State over an open database.
    pub fn new(db: Db, api_token: Option<String>) -> Self {
        Hq {
            db,
            api_token,
            metrics: Metrics::default(),
            sign_ins: tokio::sync::Semaphore::new(crate::sessions::SIGN_INS_AT_ONCE),
            reference: Arc::new(tokio::sync::watch::channel(0).0),
            watching: std::sync::atomic::AtomicBool::new(false),
            closing: tokio::sync::watch::channel(false).0,
            metrics_closed: false,
            sign_in_failures: std::sync::Mutex::default(),
            pin_pepper: None,
            secure_cookies: false,
            ca_pem: None,
            client_ca: None,
            store_backups: None,
        }
    }

    /// The same state, its session cookie `Secure` when `secure` (HQ is reached over HTTPS).
    pub fn with_secure_cookies(mut self, secure: bool) -> Self {
        self.secure_cookies = secure;
        self
    }

    /// The same state, hashing the PINs the staff write API is sent under `pepper`.
    pub fn with_pin_pepper(mut self, pepper: Option<[u8; 32]>) -> Self {
        self.pin_pepper = pepper;
        self
    }

    /// The same state, issuing store nodes client certificates under `ca`.
    pub fn with_client_ca(mut self, ca: Option<Arc<tls::Authority>>) -> Self {
        self.client_ca = ca;
        self
    }

    /// The same state, keeping the store backups the nodes send in `kept`.
    pub fn with_store_backups(mut self, kept: Option<crate::store_backups::StoreBackups>) -> Self {
        self.store_backups = kept;
        self
    }

    /// The same state, issuing enrolment codes that pin the CA `ca_pem`.
    pub fn with_ca(mut self, ca_pem: Option<String>) -> Self {
        self.ca_pem = ca_pem;
        self
    }

    /// The same state, with `/metrics` closed to all but readers with `fleet:read`.
    pub fn with_metrics_closed(mut self, closed: bool) -> Self {
        self.metrics_closed = closed;
        self
    }

    /// Ends every wait for a new reference version: HQ is shutting down.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Wakes the pulls waiting for a version up to `version`, just committed by this process.
    pub(crate) fn announce_version(&self, version: i64) {
        announce(&self.reference, version);
    }

    /// Waits until the reference version is past `since`, `wait` has passed, or HQ shuts down.
    async fn wait_for_version(&self, since: i64, wait: std::time::Duration) {
        self.watch_versions();
        let mut versions = self.reference.subscribe();
        let mut closing = self.closing.subscribe();
        let _ = tokio::time::timeout(wait, async {
            loop {
                if *versions.borrow_and_update() > since || *closing.borrow_and_update() {
                    return;
                }
                tokio::select! {
                    changed = versions.changed() => if changed.is_err() { return },
                    changed = closing.changed() => if changed.is_err() { return },
                }
            }
        })
        .await;
    }

    /// Starts (once) the task that reads the reference version every [`VERSION_POLL`] for the
    /// waiting pulls; it ends with this state.
    fn watch_versions(&self) {
        if self.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        let db = self.db.clone();
        let sender = Arc::downgrade(&self.reference);
        tokio::spawn(async move {
            while let Some(versions) = sender.upgrade() {
                let read: Result<Option<i64>, sqlx::Error> =
                    sqlx::query_scalar("SELECT version FROM ref_meta WHERE singleton = 1")
                        .fetch_optional(&db.pool)
                        .await;
                if let Ok(Some(version)) = read {
                    announce(&versions, version);
                }
                drop(versions);
                tokio::time::sleep(VERSION_POLL).await;
            }
        });
    }
}

fn announce(versions: &tokio::sync::watch::Sender<i64>, version: i64) {
    versions.send_if_modified(|seen| {
        let newer = version > *seen;
        if newer {
            *seen = version;
        }
        newer
    });
}

/// An error answer: status, code, message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    extra: serde_json::Map<String, Value>,
}

/// A caller's value as an error message repeats it: cut to 64 characters.
pub(crate) fn echo(value: &str) -> String {
    value.chars().take(64).collect()
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl ToString) -> Self {
        ApiError {
            status,
            code,
            message: message.to_string(),
            field: None,
            extra: serde_json::Map::new(),
        }
    }

    /// `404 not_found`: there is no `what` by the id the caller gave (`no order `…``).
    pub(crate) fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no {what} `{}`", echo(id)),
        )
    }

    /// The same error, its field named within `path` (`line 4: price`).
    pub(crate) fn within(mut self, path: &str) -> Self {
        self.field = Some(match self.field {
            Some(field) => format!("{path}: {field}"),
            None => path.to_owned(),
        });
        self
    }

    /// The same error, with `name: value` in its body (what changed, the entity as it is).
    pub(crate) fn with(mut self, name: &str, value: Value) -> Self {
        self.extra.insert(name.to_owned(), value);
        self
    }

    /// What is wrong, in words.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// The field at fault, when one is.
    pub(crate) fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The same error, naming the field at fault.
    pub(crate) fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "database failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "database unavailable",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.extra;
        body.insert("code".into(), Value::String(self.code.to_owned()));
        body.insert("message".into(), Value::String(self.message));
        if let Some(field) = self.field {
            body.insert("field".into(), Value::String(field));
        }
        (self.status, Json(Value::Object(body))).into_response()
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// The router.
pub fn router(hq: Arc<Hq>) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route(
            "/v1/session",
            post(crate::sessions::sign_in)
                .get(crate::sessions::current)
                .delete(crate::sessions::sign_out),
        )
        .route(
            "/v1/session/sign-out-everywhere",
            post(crate::sessions::sign_out_everywhere),
        )
        .route("/v1/sync/push", post(push))
        .route("/v1/enrol", post(crate::enrol::redeem))
        .route("/v1/sync/credential", post(crate::enrol::rotate))
        .route("/v1/stores/{id}/enrolment", post(crate::enrol::issue_route))
        .route(
            "/v1/stores/{id}/support",
            get(crate::support::list).post(crate::support::ask),
        )
        .route("/v1/stores/{id}/backups", get(crate::store_backups::list))
        .route(
            "/v1/stores/{id}/backups/{name}",
            get(crate::store_backups::download),
        )
        .route(
            "/v1/sync/backups/{name}",
            put(crate::store_backups::put_piece),
        )
        .route("/v1/sync/support", get(crate::support::pending))
        .route("/v1/sync/support/{id}", post(crate::support::answer))
        .route("/v1/sync/reference", get(reference))
        .route("/v1/sync/stock", get(stock_for_store))
        .route(
            "/v1/terminals",
            get(terminals).post(crate::stores::register_terminal),
        )
        .route(
            "/v1/terminals/{id}/revoke",
            post(crate::stores::revoke_terminal),
        )
        .route("/v1/parked", get(parked))
        .route("/v1/licence", get(licence))
        .route("/v1/reports/sales", get(crate::reports::sales_report))
        .route(
            "/v1/reports/breakdown",
            get(crate::reports::breakdown_report),
        )
        .route("/v1/reports/shifts", get(crate::reports::shifts_report))
        .route("/v1/stock", get(stock))
        .route("/v1/availability", get(crate::availability::read))
        .route("/v1/availability/changes", get(crate::availability::feed))
        .route("/v1/reorder-suggestions", get(crate::reorder::read))
        .route("/v1/reservations", post(crate::availability::create))
        .route("/v1/reservations/{id}", get(crate::availability::read_one))
        .route(
            "/v1/reservations/{id}/actions",
            post(crate::availability::act),
        )
        .route(
            "/v1/safety-stock/{location}/{sku}",
            axum::routing::put(crate::availability::set_safety),
        )
        .route(
            "/v1/orders",
            get(crate::orders::list).post(crate::orders::create),
        )
        .route("/v1/orders/{id}", get(crate::orders::read_one))
        .route("/v1/orders/{id}/actions", post(crate::orders::act))
        .route(
            "/v1/returns",
            get(crate::returns::list).post(crate::returns::create),
        )
        .route("/v1/returns/{id}", get(crate::returns::read_one))
        .route(
            "/v1/webhooks",
            get(crate::webhooks::list).post(crate::webhooks::subscribe),
        )
        .route(
            "/v1/webhooks/{id}",
            axum::routing::delete(crate::webhooks::remove),
        )
        .route(
            "/v1/webhooks/{id}/rotate-secret",
            post(crate::webhooks::rotate),
        )
        .route(
            "/v1/webhooks/{id}/deliveries",
            get(crate::webhooks::deliveries),
        )
        .route(
            "/v1/webhook-deliveries/{id}",
            get(crate::webhooks::delivery),
        )
        .route(
            "/v1/webhook-deliveries/{id}/redeliver",
            post(crate::webhooks::redeliver),
        )
        .route("/v1/exceptions/negative-stock", get(negative_stock))
        .route(
            "/v1/sync/stored-value/{number}",
            get(stored_value::for_store),
        )
        .route("/v1/stored-value/{number}", get(stored_value::read_account))
        .route(
            "/v1/reports/stored-value",
            get(stored_value::liability_report),
        )
        .route("/v1/exceptions/stored-value", get(stored_value::overdrawn))
        .route("/v1/audit-log", get(audit_log))
        .route("/v1/reconciliation", get(crate::reconcile::read_day))
        .route("/v1/exceptions", get(crate::exceptions::list))
        .route(
            "/v1/exceptions/{kind}/{key}",
            axum::routing::put(crate::exceptions::say),
        )
        .route("/v1/variants", get(crate::search::search))
        .route("/v1/categories", get(crate::categories::list))
        .route("/v1/catalog/changes", get(crate::catalog_feed::changes))
        .route(
            "/v1/categories/{id}",
            axum::routing::put(crate::categories::write),
        )
        .route(
            "/v1/variants/{sku}",
            get(crate::catalog::read_variant).put(crate::catalog::write_variant),
        )
        .route(
            "/v1/price-changes",
            get(crate::catalog::list_changes).post(crate::catalog::schedule),
        )
        .route("/v1/price-lists", post(crate::price_list::upload))
        .route(
            "/v1/price-lists/{batch}",
            axum::routing::delete(crate::price_list::undo),
        )
        .route(
            "/v1/price-changes/{id}",
            get(crate::catalog::read_change).delete(crate::catalog::cancel),
        )
        .route("/v1/stores", get(crate::stores::list))
        .route("/v1/jurisdictions", get(crate::stores::jurisdictions))
        .route(
            "/v1/jurisdictions/{code}",
            axum::routing::put(crate::stores::write_jurisdiction),
        )
        .route(
            "/v1/stores/{id}",
            get(crate::stores::read).put(crate::stores::write),
        )
        .route("/v1/staff", get(crate::staff::list))
        .route(
            "/v1/staff/{id}",
            get(crate::staff::read).put(crate::staff::write),
        )
        .route(
            "/v1/users",
            get(crate::people::list_users).post(crate::people::add_user),
        )
        .route(
            "/v1/users/{name}/disabled",
            axum::routing::put(crate::people::set_disabled),
        )
        .route(
            "/v1/api-keys",
            get(crate::people::list_keys).post(crate::people::create_key),
        )
        .route(
            "/v1/api-keys/{id}",
            axum::routing::delete(crate::people::revoke_key),
        )
        .route("/v1/api-keys/{id}/rotate", post(crate::people::rotate_key))
        .route("/v1/cards/pending", get(crate::cards::pending))
        .route("/v1/exceptions/card-declines", get(crate::cards::declines))
        .merge(crate::pages::router())
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "the endpoint does not take this method",
            )
        })
        // The push reads its own body under `MAX_PUSH_BYTES`, after the store credential; every
        // other body (a sign-in) gets this small cap.
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            hq.clone(),
            client_certificates,
        ))
        // Every answer states the sync protocols HQ accepts from store nodes.
        .layer(axum::middleware::map_response(
            |mut answer: Response| async move {
                answer.headers_mut().insert(
                    protocol::sync::ACCEPTED_PROTOCOLS_HEADER,
                    ACCEPTED_PROTOCOLS.clone(),
                );
                answer
            },
        ))
        .with_state(hq)
}

/// The most any body but a push may be (no other route takes one today).
const BODY_LIMIT: usize = 64 * 1024;

/// The OpenAPI document.
pub const OPENAPI: &str = include_str!("../openapi.json");

async fn openapi() -> Response {
    ([("content-type", "application/json")], OPENAPI).into_response()
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Mutual TLS per store, checked for every request made with a store's credential before its
/// handler runs: over a connection whose client certificate names another store it is refused
/// (`403 client_certificate_mismatch`), and without the store's own certificate it is refused
/// when the store requires one (`401 client_certificate_required`, `kassa hq store client-cert
/// --id S --require`). Other requests (a session, an API key, an unknown credential, which the
/// handler refuses) pass untouched.
async fn client_certificates(
    State(hq): State<Arc<Hq>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(token) = bearer(request.headers())
        .filter(|t| t.starts_with("kassa_") && !t.starts_with(crate::identity::KEY_PREFIX))
    else {
        return next.run(request).await;
    };
    let owner = match credential_owner(&hq, token).await {
        Ok(Some(owner)) => owner,
        Ok(None) => return next.run(request).await,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let presented = request
        .extensions()
        .get::<axum::extract::ConnectInfo<crate::https::Peer>>()
        .and_then(|info| info.0.client_store.clone());
    let (store, required) = owner;
    match presented {
        Some(certified) if certified != store => {
            tracing::warn!(%certified, %store, "store request refused: another store's client certificate");
            ApiError::new(
                StatusCode::FORBIDDEN,
                "client_certificate_mismatch",
                format!(
                    "the connection's client certificate is store `{certified}`'s, the credential store `{store}`'s"
                ),
            )
            .into_response()
        }
        None if required => {
            tracing::warn!(%store, "store request refused: no client certificate");
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "client_certificate_required",
                format!(
                    "store `{store}` must connect with its client certificate (mutual TLS), which enrolment gives the node (keys/hq-client.pem): enrol the node again if it has none"
                ),
            )
            .into_response()
        }
        _ => next.run(request).await,
    }
}

/// The store whose credential `token` is (its current one, or the one it replaced itself while
/// the overlap lasts), and whether it must show its client certificate.
async fn credential_owner(hq: &Hq, token: &str) -> Result<Option<(String, bool)>, sqlx::Error> {
    let found: Option<(String, i64)> = sqlx::query_as(
        "SELECT id, client_cert_required FROM stores WHERE token_hash = $1 OR (previous_token_hash = $1 AND previous_until_ms > $2)",
    )
    .bind(&token_hash(token)[..])
    .bind(now_ms())
    .fetch_optional(&hq.db.pool)
    .await?;
    Ok(found.map(|(store, required)| (store, required != 0)))
}

/// The store whose credential `token` is.
async fn store_of_credential(hq: &Hq, token: &str) -> Result<Option<String>, sqlx::Error> {
    Ok(credential_owner(hq, token).await?.map(|(store, _)| store))
}

/// The store a sync request's credential belongs to.
/// The oldest sync protocol HQ still accepts from a store node: HQ is upgraded first, and keeps
/// taking the previous release's nodes until they are upgraded too.
pub const OLDEST_NODE_PROTOCOL: u32 = 1;
/// [`OLDEST_NODE_PROTOCOL`] to [`protocol::sync::SYNC_PROTOCOL`], as HQ states it (`1-1`).
static ACCEPTED_PROTOCOLS: std::sync::LazyLock<axum::http::HeaderValue> =
    std::sync::LazyLock::new(|| {
        let range = format!("{OLDEST_NODE_PROTOCOL}-{}", protocol::sync::SYNC_PROTOCOL);
        axum::http::HeaderValue::from_str(&range)
            .unwrap_or(axum::http::HeaderValue::from_static("1-1"))
    });

/// `426 node_protocol_unsupported` for a node that speaks a sync protocol HQ does not accept
/// (an older node past [`OLDEST_NODE_PROTOCOL`], or a node newer than HQ); a node that names
/// none speaks the first. The node keeps every event and tries again.
fn check_node_protocol(headers: &HeaderMap) -> ApiResult<()> {
    let Some(value) = headers.get(protocol::sync::NODE_PROTOCOL_HEADER) else {
        return Ok(());
    };
    let spoken = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok());
    let accepted = OLDEST_NODE_PROTOCOL..=protocol::sync::SYNC_PROTOCOL;
    match spoken {
        Some(p) if accepted.contains(&p) => Ok(()),
        spoken => {
            let node = headers
                .get(protocol::sync::NODE_VERSION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map_or_else(|| "?".to_owned(), |v| clip(v, 40).to_owned());
            let what = match spoken {
                Some(p) if p > protocol::sync::SYNC_PROTOCOL => {
                    "the node is newer than HQ: upgrade HQ first"
                }
                Some(_) => "the node is older than HQ still accepts: upgrade the node",
                None => "the node names no protocol HQ can read",
            };
            Err(ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "node_protocol_unsupported",
                format!(
                    "this node (kassa {node}) speaks sync protocol {}, HQ (kassa {}) accepts {}-{}: {what}; the node keeps every event until then",
                    spoken.map_or_else(|| "?".to_owned(), |p| p.to_string()),
                    env!("CARGO_PKG_VERSION"),
                    accepted.start(),
                    accepted.end()
                ),
            ))
        }
    }
}

/// Who sends a sync request, by the store credential, once the node's sync protocol is one HQ
/// accepts.
pub(crate) async fn authenticate_store(hq: &Hq, headers: &HeaderMap) -> ApiResult<String> {
    let store = authenticate_store_only(hq, headers).await?;
    check_node_protocol(headers)?;
    Ok(store)
}

async fn authenticate_store_only(hq: &Hq, headers: &HeaderMap) -> ApiResult<String> {
    let unauthorized = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid store credential is required (Authorization: Bearer …)",
        )
    };
    let Some(token) = bearer(headers) else {
        tracing::warn!("sync request refused: no store credential");
        return Err(unauthorized());
    };
    let store = store_of_credential(hq, token).await?;
    if store.is_none() {
        // The credential names its store (`kassa_<store>_…`), which tells the operator which
        // store still runs with a replaced or mistyped credential; the secret is never logged.
        let claimed = token
            .strip_prefix("kassa_")
            .and_then(|rest| rest.rsplit_once('_'))
            .map_or("?", |(store, _)| store);
        tracing::warn!(
            claimed_store = claimed,
            "sync request refused: unknown store credential (replaced by `kassa hq store rotate-credential`, or mistyped)"
        );
    }
    store.ok_or_else(unauthorized)
}

/// What a request does with the data it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reads it.
    Read,
    /// Changes it: a session must send its CSRF token, and the read-API token is not enough.
    Write,
}

/// Lets a read through that needs `scope`: [`authorize`] for reading.
pub(crate) async fn authorize_reader(
    hq: &Hq,
    headers: &HeaderMap,
    scope: Scope,
    store: Option<&str>,
) -> ApiResult<String> {
    authorize(hq, headers, scope, store, Access::Read).await
}

/// Lets a request through that needs `scope`, of `store`'s data when the request names one,
/// and names the caller as the audit log does (`user:NAME`, `key:ID`, `token`): a signed-in
/// person whose role holds the scope (a store manager only for a store they run; a change
/// only with the session's CSRF token), an API key holding it, or, for a read, the read API's
/// bearer token (`--api-token`, every read scope). A session that has ended, or a key that is
/// unknown, revoked or expired, is refused whatever else is configured; so is one without the
/// scope (`403 missing_scope`) or another store's manager (`403 store_not_yours`).
pub(crate) async fn authorize(
    hq: &Hq,
    headers: &HeaderMap,
    scope: Scope,
    store: Option<&str>,
    access: Access,
) -> ApiResult<String> {
    let verb = match access {
        Access::Read => "read",
        Access::Write => "change",
    };
    if let Some(session) = crate::sessions::session_of(hq, headers).await? {
        let actor = crate::identity::Actor::User(session.user.name.clone()).to_string();
        if access == Access::Write {
            if let Err(e) = crate::sessions::check_csrf(headers, &session) {
                return Err(refused(hq, &actor, e, &format!("scope:{scope}"), store).await);
            }
        }
        let user = &session.user;
        if !user.role.scopes().contains(&scope) {
            let e = ApiError::new(
                StatusCode::FORBIDDEN,
                "missing_scope",
                format!("the role {} may not {verb} this (`{scope}`)", user.role),
            );
            return Err(refused(hq, &actor, e, &format!("scope:{scope}"), store).await);
        }
        if user.role == crate::identity::Role::StoreManager
            && !store.is_some_and(|s| user.stores.iter().any(|mine| mine == s))
        {
            let e = ApiError::new(
                StatusCode::FORBIDDEN,
                "store_not_yours",
                format!("a store manager may {verb} the stores they run: name one of them"),
            );
            return Err(refused(hq, &actor, e, &format!("scope:{scope}"), store).await);
        }
        return Ok(actor);
    }
    if let Some(secret) = bearer(headers).filter(|t| t.starts_with(crate::identity::KEY_PREFIX)) {
        let key = crate::identity::key_for_secret(&hq.db, secret, now_ms())
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "this API key is unknown, revoked or expired",
                )
            })?;
        if !key.scopes.contains(&scope) {
            let e = ApiError::new(
                StatusCode::FORBIDDEN,
                "missing_scope",
                format!("the API key {} lacks the scope `{scope}`", key.id),
            );
            return Err(refused(
                hq,
                &format!("key:{}", key.id),
                e,
                &format!("scope:{scope}"),
                store,
            )
            .await);
        }
        return Ok(format!("key:{}", key.id));
    }
    // A store node holds stock for a customer at its own store (a hold placed at a till) with
    // its sync credential: that scope only, that store only.
    if scope == Scope::ReservationsWrite {
        if let Some(token) = bearer(headers) {
            if let Some(own) = store_of_credential(hq, token).await? {
                let actor = format!("store:{own}");
                if store.is_some_and(|s| s != own) {
                    let e = ApiError::new(
                        StatusCode::FORBIDDEN,
                        "store_not_yours",
                        "a store holds stock at its own store only",
                    );
                    return Err(refused(hq, &actor, e, &format!("scope:{scope}"), store).await);
                }
                return Ok(actor);
            }
        }
    }
    match (&hq.api_token, bearer(headers), access) {
        (Some(expected), Some(given), Access::Read) if given == expected => Ok("token".to_owned()),
        (Some(expected), Some(given), Access::Write) if given == expected => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "missing_scope",
            "the read-API token only reads: changes need a session or an API key with the scope",
        )),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            match access {
                Access::Read => {
                    "the read API needs a session (sign in), an API key or the read-API token"
                }
                Access::Write => "a change needs a session (sign in) or an API key",
            },
        )),
    }
}

/// Records that a known caller (a person signed in, an API key) was refused `what` (`scope:…`,
/// `users`; of `store`), as a line of the audit log (`access.refused`), and answers the
/// refusal. A failure to record is logged, never turned into another answer.
pub(crate) async fn refused(
    hq: &Hq,
    actor: &str,
    error: ApiError,
    what: &str,
    store: Option<&str>,
) -> ApiError {
    let target = what;
    let after = json!({ "code": error.code, "store": store }).to_string();
    let recorded = async {
        let mut conn = hq.db.pool.acquire().await?;
        crate::identity::Audit {
            at_ms: now_ms(),
            actor,
            source: None,
            action: "access.refused",
            target: Some(target),
            before: None,
            after: Some(&after),
        }
        .append(&mut conn)
        .await
    };
    if let Err(e) = recorded.await {
        tracing::error!(error = %e, "a refused access was not recorded in the audit log");
    }
    error
}

/// Parked records kept per terminal of a store. A terminal whose batches keep failing needs an
/// operator after the first few; more rows would only let a store (or a stolen credential)
/// grow HQ's database without bound.
pub const PARKED_PER_TERMINAL: i64 = 20;

/// Parked records kept per store, whatever terminals its batches name (a batch may name any
/// terminal, registered or not).
pub const PARKED_PER_STORE: i64 = 200;

/// The longest reason HQ records; a reason quotes values from the batch, which can be long.
const REASON_CHARS: usize = 1000;

/// A batch HQ did not take, as it is parked.
struct Refusal<'a> {
    terminal: &'a str,
    from_seq: u64,
    count: usize,
    code: &'a str,
    reason: String,
}

/// `text` cut to at most `chars` characters.
fn clip(text: &str, chars: usize) -> &str {
    text.char_indices()
        .nth(chars)
        .map_or(text, |(at, _)| &text[..at])
}

/// Parks a refused batch and returns the record's id: a new record, or the one already
/// holding the same refusal (same terminal and the same body, or the same code and reason),
/// whose repeat count and last-seen time go up. Returns `None` when the terminal or the store
/// already has as many records as HQ keeps; the refusal is then only counted in the metrics.
async fn park(hq: &Hq, store: &str, digest: &str, refusal: Refusal<'_>) -> ApiResult<Option<i64>> {
    hq.metrics.batches_parked.fetch_add(1, Ordering::Relaxed);
    let Refusal {
        terminal,
        from_seq,
        count,
        code,
        reason,
    } = refusal;
    let reason = clip(&reason, REASON_CHARS);
    tracing::warn!(store, terminal, from_seq, code, reason, "batch parked");
    let now = now_ms();
    let (_guard, mut tx) = hq.db.begin_write().await?;
    // On PostgreSQL the store's row serialises its parkings, so the caps hold under
    // concurrent pushes (SQLite serialises writers with the write guard).
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM stores WHERE id = $1{}",
        hq.db.backend.for_update()
    )))
    .bind(store)
    .fetch_optional(&mut *tx)
    .await?;
    let existing: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM parked WHERE store = $1 AND terminal = $2 AND (digest = $3 OR (code = $4 AND reason = $5)) ORDER BY id LIMIT 1",
    )
    .bind(store)
    .bind(terminal)
    .bind(digest)
    .bind(code)
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = existing {
        sqlx::query("UPDATE parked SET repeats = repeats + 1, last_ms = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        hq.metrics.parked_repeats.fetch_add(1, Ordering::Relaxed);
        return Ok(Some(id));
    }
    let (of_terminal, of_store): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(CASE WHEN terminal = $2 THEN 1 ELSE 0 END), 0), COUNT(*) FROM parked WHERE store = $1",
    )
    .bind(store)
    .bind(terminal)
    .fetch_one(&mut *tx)
    .await?;
    if of_terminal >= PARKED_PER_TERMINAL || of_store >= PARKED_PER_STORE {
        tx.commit().await?;
        hq.metrics.parked_unrecorded.fetch_add(1, Ordering::Relaxed);
        return Ok(None);
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO parked (store, terminal, from_seq, count, code, reason, received_ms, digest, repeats, last_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $7) RETURNING id",
    )
    .bind(store)
    .bind(terminal)
    .bind(i64::try_from(from_seq).unwrap_or(i64::MAX))
    .bind(i64::try_from(count).unwrap_or(i64::MAX))
    .bind(code)
    .bind(reason)
    .bind(now)
    .bind(digest)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(id))
}

/// Parks a refused batch and answers the push with the refusal: `status` and `code` (a batch
/// parked as `batch_unreadable` is answered as `batch_rejected`).
async fn refuse(
    hq: &Hq,
    store: &str,
    digest: &str,
    (status, code): (StatusCode, &str),
    refusal: Refusal<'_>,
) -> ApiResult<Response> {
    let message = clip(&refusal.reason, REASON_CHARS).to_owned();
    let id = park(hq, store, digest, refusal).await?;
    Ok((
        status,
        Json(json!({"code": code, "message": message, "parked": id})),
    )
        .into_response())
}

/// The answer to a batch that cannot be read or does not verify.
const REJECTED: (StatusCode, &str) = (StatusCode::UNPROCESSABLE_ENTITY, "batch_rejected");

async fn push(State(hq): State<Arc<Hq>>, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    let started = std::time::Instant::now();
    // The credential and the media type come from the headers, before a byte of the body is
    // read: a request without a valid credential costs HQ no memory for its body.
    let store = authenticate_store(&hq, &headers).await?;
    require_content_type(&headers, BATCH_MEDIA_TYPE)?;
    let body = read_body(&headers, body, MAX_PUSH_BYTES).await?;
    hq.metrics.pushes.fetch_add(1, Ordering::Relaxed);
    hq.metrics
        .bytes_received
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    let digest = hex::encode(Sha256::digest(&body));
    let wire_bytes = body.len() as u64;
    let unreadable = |reason: String| Refusal {
        terminal: "?",
        from_seq: 0,
        count: 0,
        code: "batch_unreadable",
        reason,
    };
    let batch = match decode_batch(&body) {
        Ok(batch) => batch,
        Err(e) => return refuse(&hq, &store, &digest, REJECTED, unreadable(e.to_string())).await,
    };
    drop(body);
    // The header's terminal is recorded and quoted only once it is a terminal id: a batch
    // naming something else is unreadable, whatever it names.
    let terminal = match domain::TerminalId::parse(&batch.header.terminal) {
        Ok(t) => t.as_str().to_owned(),
        Err(e) => {
            let reason = format!("batch.header.terminal: {e}");
            return refuse(&hq, &store, &digest, REJECTED, unreadable(reason)).await;
        }
    };
    let from_seq = batch.header.from_seq;
    let count = batch.events.len();
    // The key in force at the batch's first event: the registered one, or the one the last key
    // rotation before it named.
    let key: Option<(String, Vec<u8>, Option<i64>)> = sqlx::query_as(
        "SELECT t.store, COALESCE((SELECT k.public_key FROM terminal_keys k WHERE k.terminal_id = t.id AND k.from_seq <= $2 ORDER BY k.from_seq DESC LIMIT 1), t.public_key), t.revoked_after_seq FROM terminals t WHERE t.id = $1",
    )
    .bind(&terminal)
    .bind(i64::try_from(from_seq).unwrap_or(i64::MAX))
    .fetch_optional(&hq.db.pool)
    .await?;
    let (key, revoked_after) = match key {
        Some((owner, key, revoked_after)) if owner == store => (key, revoked_after),
        _ => {
            let reason = format!("terminal `{terminal}` is not registered to store `{store}`");
            let refusal = Refusal {
                terminal: &terminal,
                from_seq,
                count,
                code: "terminal_not_registered",
                reason,
            };
            let answer = (StatusCode::FORBIDDEN, "terminal_not_registered");
            return refuse(&hq, &store, &digest, answer, refusal).await;
        }
    };
    let Some(key) = <[u8; 32]>::try_from(key)
        .ok()
        .and_then(|k| ed25519_dalek::VerifyingKey::from_bytes(&k).ok())
    else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "bad_key",
            "registered key is unusable",
        ));
    };
    // Verification is CPU work on every core (see `verify_batch`): off the async workers.
    let checked_store = store.clone();
    let verified = tokio::task::spawn_blocking(move || verify_batch(&batch, &checked_store, &key))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "verification_failed",
                e.to_string(),
            )
        })?;
    let verified = match verified {
        Ok(v) => v,
        Err(e) => {
            let refusal = Refusal {
                terminal: &terminal,
                from_seq,
                count,
                code: "batch_rejected",
                reason: e.to_string(),
            };
            return refuse(&hq, &store, &digest, REJECTED, refusal).await;
        }
    };
    // A revoked till: what it signed up to the revocation point is taken, the rest parked.
    let (verified, beyond): (Vec<protocol::sync::VerifiedEvent>, Vec<_>) = match revoked_after {
        Some(point) => verified
            .into_iter()
            .partition(|v| i64::try_from(v.event.meta.seq).is_ok_and(|seq| seq <= point)),
        None => (verified, Vec::new()),
    };
    let ack = match ingest_pushed(&hq.db, &terminal, &verified, now_ms(), wire_bytes).await {
        Ok(ack) => ack,
        Err(IngestError::Conflict(reason)) => {
            let refusal = Refusal {
                terminal: &terminal,
                from_seq,
                count,
                code: "batch_conflict",
                reason,
            };
            let answer = (StatusCode::CONFLICT, "batch_conflict");
            return refuse(&hq, &store, &digest, answer, refusal).await;
        }
        Err(IngestError::Db(e)) => return Err(e.into()),
    };
    hq.metrics
        .events_accepted
        .fetch_add(u64::from(ack.accepted), Ordering::Relaxed);
    hq.metrics
        .events_duplicate
        .fetch_add(u64::from(ack.duplicates), Ordering::Relaxed);
    hq.metrics.push_micros.fetch_add(
        u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    if let (Some(point), Some(first)) = (revoked_after, beyond.first()) {
        let refusal = Refusal {
            terminal: &terminal,
            from_seq: first.event.meta.seq,
            count: beyond.len(),
            code: "terminal_revoked",
            reason: format!(
                "terminal `{terminal}` was revoked at HQ after sequence {point}: events from {} on are not taken",
                first.event.meta.seq
            ),
        };
        let answer = (StatusCode::FORBIDDEN, "terminal_revoked");
        return refuse(&hq, &store, &digest, answer, refusal).await;
    }
    Ok(Json(ack).into_response())
}

#[derive(Debug, Deserialize)]
struct Since {
    since: Option<String>,
    /// Seconds to wait for a version past `since` before answering that nothing changed.
    wait: Option<String>,
}

/// A query parameter that must be an integer, when present (absent or empty is `None`).
fn integer_param(name: &str, value: Option<&str>) -> ApiResult<Option<i64>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("`{}` is not an integer", clip(text, 40)),
            )
            .at(name)
        }),
    }
}

/// Keeps what a store node says of itself with its pull (version, unsynced events, clock), as
/// far as it is readable: a header that is absent or not what it should be is kept as unknown,
/// never refused (an older node sends none).
async fn record_node_status(hq: &Hq, store: &str, headers: &HeaderMap) -> ApiResult<()> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let version = text(protocol::sync::NODE_VERSION_HEADER)
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 40
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-._".contains(c))
        })
        .map(str::to_owned);
    let unsynced = text(protocol::sync::NODE_UNSYNCED_HEADER)
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|n| *n >= 0);
    let oldest = text(protocol::sync::NODE_OLDEST_UNSYNCED_HEADER)
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|ms| *ms > 0);
    let now = now_ms();
    let offset = text(protocol::sync::NODE_CLOCK_HEADER)
        .and_then(|v| v.parse::<i64>().ok())
        .and_then(|clock| clock.checked_sub(now));
    let (_guard, mut tx) = hq.db.begin_write().await?;
    sqlx::query(
        "UPDATE stores SET node_version = $1, node_unsynced = $2, node_clock_offset_ms = $3, node_status_ms = $4, node_oldest_unsynced_ms = $5 WHERE id = $6",
    )
    .bind(version)
    .bind(unsynced)
    .bind(offset)
    .bind(now)
    .bind(oldest)
    .bind(store)
    .execute(&mut *tx)
    .await?;
    if let Some(heads) = text(protocol::sync::NODE_HEADS_HEADER) {
        record_heads(&mut tx, store, &protocol::sync::parse_heads(heads), now).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Keeps what a node says of its tills' ledgers (`Kassa-Node-Heads`). A till whose ledger now
/// ends before where the node said it ended (its PC replaced, restored from an older backup)
/// lost the sequences in between that HQ does not hold: they are kept in `lost_sequences`
/// (an exception for people, a line of the audit log), since the till's new events take those
/// numbers again. A till of another store is left alone.
async fn record_heads(
    tx: &mut sqlx::AnyConnection,
    store: &str,
    heads: &[(String, u64)],
    now: i64,
) -> Result<(), sqlx::Error> {
    for (terminal, head) in heads {
        let head = i64::try_from(*head).unwrap_or(i64::MAX);
        let known: Option<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT acked_seq, reported_seq FROM terminals WHERE id = $1 AND store = $2",
        )
        .bind(terminal)
        .bind(store)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((acked, reported)) = known else {
            continue;
        };
        if let Some(reported) = reported.filter(|r| head < *r) {
            let from = head.max(acked) + 1;
            if from <= reported {
                sqlx::query(
                    "INSERT INTO lost_sequences (terminal_id, from_seq, to_seq, detected_ms) VALUES ($1, $2, $3, $4)",
                )
                .bind(terminal)
                .bind(from)
                .bind(reported)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let actor = format!("store:{store}");
                let target = format!("terminal:{terminal}");
                let after =
                    json!({"from_seq": from, "to_seq": reported, "ledger_now_ends_at": head})
                        .to_string();
                crate::identity::Audit {
                    at_ms: now,
                    actor: &actor,
                    source: None,
                    action: "terminal.sequences_lost",
                    target: Some(&target),
                    before: None,
                    after: Some(&after),
                }
                .append(tx)
                .await?;
                tracing::warn!(%store, %terminal, from, to = reported, "a till's ledger came back shorter: sequences lost");
            }
        }
        // Every pull reports every till: a head that did not move costs no write.
        if reported != Some(head) {
            sqlx::query("UPDATE terminals SET reported_seq = $1 WHERE id = $2")
                .bind(head)
                .bind(terminal)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

async fn reference(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(q): Query<Since>,
) -> ApiResult<Response> {
    let store = authenticate_store(&hq, &headers).await?;
    record_node_status(&hq, &store, &headers).await?;
    let since = integer_param("since", q.since.as_deref())?.unwrap_or(0);
    let wait = integer_param("wait", q.wait.as_deref())?
        .unwrap_or(0)
        .clamp(0, REFERENCE_WAIT_MAX_S);
    if since > 0 && wait > 0 {
        // A long poll: a change made at HQ reaches a store as soon as it is committed, not at
        // the store's next pull. Only a store at the version HQ has waits: one behind gets the
        // change now, one ahead (another log) is answered now and refuses it.
        let current: Option<i64> =
            sqlx::query_scalar("SELECT version FROM ref_meta WHERE singleton = 1")
                .fetch_optional(&hq.db.pool)
                .await?;
        if current == Some(since) {
            hq.wait_for_version(since, std::time::Duration::from_secs(wait.unsigned_abs()))
                .await;
        }
    }
    let update = crate::refdata::changes_since(&hq.db, &store, since.max(0)).await?;
    {
        // Which version each store was sent, so the back office can say which stores hold a
        // change (a price change's preview).
        let _guard = hq.db.write_guard().await;
        sqlx::query(
            "UPDATE stores SET reference_version = $1, reference_pulled_ms = $2 WHERE id = $3",
        )
        .bind(update.to_version)
        .bind(now_ms())
        .bind(&store)
        .execute(&hq.db.pool)
        .await?;
    }
    let body = encode_reference(&update);
    hq.metrics
        .bytes_sent
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    let log = crate::refdata::log_id(&hq.db).await?;
    Ok((
        [
            ("content-type", REFERENCE_MEDIA_TYPE),
            (protocol::sync::REFERENCE_LOG_HEADER, log.as_str()),
        ],
        body,
    )
        .into_response())
}

/// Stock at a location and the per-terminal sequences it includes, read in one transaction so
/// the two agree.
pub async fn stock_snapshot(db: &Db, location: &str) -> Result<StockSnapshot, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let marks = sqlx::query("SELECT id, acked_seq FROM terminals WHERE store = $1")
        .bind(location)
        .fetch_all(&mut *tx)
        .await?;
    let levels = sqlx::query("SELECT sku, on_hand FROM stock_levels WHERE location = $1")
        .bind(location)
        .fetch_all(&mut *tx)
        .await?;
    let reserved: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT sku, CAST(SUM(quantity_milli) AS BIGINT) FROM reservation_lines
         WHERE location = $1 AND live_until_ms > $2 GROUP BY sku",
    )
    .bind(location)
    .bind(crate::now_ms())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(StockSnapshot {
        location: location.to_owned(),
        watermarks: marks
            .iter()
            .map(|r| {
                (
                    r.get::<String, _>("id"),
                    u64::try_from(r.get::<i64, _>("acked_seq")).unwrap_or(0),
                )
            })
            .collect(),
        levels: levels
            .iter()
            .map(|r| (r.get::<String, _>("sku"), r.get::<i64, _>("on_hand")))
            .collect(),
        reserved: reserved
            .into_iter()
            .filter_map(|(sku, milli)| milli.filter(|m| *m > 0).map(|m| (sku, m)))
            .collect(),
    })
}

/// `GET /v1/sync/stock`: the store's stock as HQ holds it, with the number of support requests
/// waiting for the node (`Kassa-Support-Pending`), so that the node asks for them only when
/// there are some.
async fn stock_for_store(State(hq): State<Arc<Hq>>, headers: HeaderMap) -> ApiResult<Response> {
    let store = authenticate_store(&hq, &headers).await?;
    let snapshot = stock_snapshot(&hq.db, &store).await?;
    let pending = crate::support::pending_count(&mut *hq.db.pool.acquire().await?, &store).await?;
    Ok((
        [(protocol::support::PENDING_HEADER, pending.to_string())],
        Json(snapshot),
    )
        .into_response())
}

pub(crate) fn milli(value: i64) -> String {
    domain::quantity::format_signed_milli(value)
}

/// A till as HQ knows it: what it acknowledged, what it holds beyond a gap, when it was last
/// heard from.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct TerminalState {
    pub id: String,
    pub store: String,
    pub acked_seq: i64,
    pub held_beyond_gaps: usize,
    pub gaps: Vec<(u64, u64)>,
    pub last_contact_ms: Option<i64>,
    pub lag_ms: Option<i64>,
    /// Batches of the till HQ refused and parked.
    pub parked: i64,
    /// Revoked at HQ: the last sequence taken, when, by whom and why.
    pub revoked: Option<Revoked>,
    /// How long its latest event took to reach HQ (received less the event's clock), ms.
    pub push_lag_ms: Option<i64>,
    /// Bytes its pushes brought today (UTC).
    pub bytes_today: i64,
    /// The sequence from which the till signs with its current key: 1 until its key rotates.
    pub key_since_seq: i64,
    /// Where its store node last said the till's ledger ends.
    pub reported_seq: Option<i64>,
    /// Sequences HQ knows the till wrote and will never receive (its ledger came back without
    /// them), oldest first.
    pub lost: Vec<(i64, i64)>,
}

/// A till's revocation.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Revoked {
    pub after_seq: i64,
    pub at_ms: i64,
    pub by: String,
    pub reason: String,
}

/// Every till HQ knows, by id.
pub(crate) async fn terminal_states(db: &Db) -> Result<Vec<TerminalState>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT id, store, acked_seq, last_contact_ms, revoked_after_seq, revoked_ms, revoked_by, revoked_reason, reported_seq FROM terminals ORDER BY id")
            .fetch_all(&db.pool)
            .await?;
    let keys: Vec<(String, i64)> =
        sqlx::query_as("SELECT terminal_id, MAX(from_seq) FROM terminal_keys GROUP BY terminal_id")
            .fetch_all(&db.pool)
            .await?;
    let keys: BTreeMap<String, i64> = keys.into_iter().collect();
    let lost: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT terminal_id, from_seq, to_seq FROM lost_sequences ORDER BY detected_ms, from_seq",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut lost_by: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (terminal, from, to) in lost {
        lost_by.entry(terminal).or_default().push((from, to));
    }
    let parked: Vec<(String, i64)> =
        sqlx::query_as("SELECT terminal, COUNT(*) FROM parked GROUP BY terminal")
            .fetch_all(&db.pool)
            .await?;
    let parked: BTreeMap<String, i64> = parked.into_iter().collect();
    let traffic: Vec<(String, i64)> =
        sqlx::query_as("SELECT terminal, bytes FROM push_traffic WHERE day = $1")
            .bind(crate::ingest::business_day(now_ms(), "UTC"))
            .fetch_all(&db.pool)
            .await?;
    let traffic: BTreeMap<String, i64> = traffic.into_iter().collect();
    let mut out = Vec::new();
    for row in rows {
        let id: String = row.get("id");
        let acked: i64 = row.get("acked_seq");
        // The acknowledged event and every one held beyond it, with how late each arrived: the
        // gaps come from the sequences, the push lag from the latest.
        let from_acked: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT seq, received_ms - hlc_wall FROM inbox WHERE terminal = $1 AND seq >= $2 ORDER BY seq",
        )
        .bind(&id)
        .bind(acked)
        .fetch_all(&db.pool)
        .await?;
        let push_lag_ms = from_acked.last().map(|(_, lag)| *lag);
        let held: Vec<i64> = from_acked
            .iter()
            .map(|(seq, _)| *seq)
            .filter(|seq| *seq > acked)
            .collect();
        let last_contact: Option<i64> = row.get("last_contact_ms");
        let revoked = row
            .get::<Option<i64>, _>("revoked_after_seq")
            .map(|after_seq| Revoked {
                after_seq,
                at_ms: row.get::<Option<i64>, _>("revoked_ms").unwrap_or_default(),
                by: row
                    .get::<Option<String>, _>("revoked_by")
                    .unwrap_or_default(),
                reason: row
                    .get::<Option<String>, _>("revoked_reason")
                    .unwrap_or_default(),
            });
        out.push(TerminalState {
            key_since_seq: keys.get(&id).copied().unwrap_or(1),
            reported_seq: row.get("reported_seq"),
            lost: lost_by.remove(&id).unwrap_or_default(),
            revoked,
            push_lag_ms,
            bytes_today: traffic.get(&id).copied().unwrap_or(0),
            parked: parked.get(&id).copied().unwrap_or(0),
            store: row.get("store"),
            acked_seq: acked,
            held_beyond_gaps: held.len(),
            gaps: gap_ranges(acked, &held),
            last_contact_ms: last_contact,
            lag_ms: last_contact.map(|t| now_ms() - t),
            id,
        });
    }
    Ok(out)
}

async fn terminals(State(hq): State<Arc<Hq>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    authorize_reader(&hq, &headers, Scope::FleetRead, None).await?;
    let out: Vec<Value> = terminal_states(&hq.db)
        .await?
        .into_iter()
        .map(|t| {
            json!({
                "id": t.id,
                "store": t.store,
                "acked_seq": t.acked_seq,
                "held_beyond_gaps": t.held_beyond_gaps,
                "gaps": t.gaps,
                "last_contact_ms": t.last_contact_ms,
                "lag_ms": t.lag_ms,
                "revoked": t.revoked,
                "push_lag_ms": t.push_lag_ms,
                "bytes_today": t.bytes_today,
                "key_since_seq": t.key_since_seq,
                "reported_seq": t.reported_seq,
                "lost": t.lost,
            })
        })
        .collect();
    Ok(Json(json!({"terminals": out})))
}

/// `GET /v1/licence` (`fleet:read`): the installed licence, what the chain uses of it and where
/// it stands (`null` standing: no licence, HQ runs unrestricted).
async fn licence(State(hq): State<Arc<Hq>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    authorize_reader(&hq, &headers, Scope::FleetRead, None).await?;
    let report = crate::licence::report(&hq.db, now_ms())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let notice = report.notice();
    let mut answer = serde_json::to_value(&report)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    answer["notice"] = json!(notice);
    Ok(Json(answer))
}

async fn parked(State(hq): State<Arc<Hq>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    authorize_reader(&hq, &headers, Scope::FleetRead, None).await?;
    let rows = sqlx::query("SELECT id, store, terminal, from_seq, count, code, reason, received_ms, repeats, last_ms FROM parked ORDER BY id")
        .fetch_all(&hq.db.pool)
        .await?;
    let parked: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<i64, _>("id"),
                "store": r.get::<String, _>("store"),
                "terminal": r.get::<String, _>("terminal"),
                "from_seq": r.get::<i64, _>("from_seq"),
                "count": r.get::<i64, _>("count"),
                "code": r.get::<String, _>("code"),
                "reason": r.get::<String, _>("reason"),
                "received_ms": r.get::<i64, _>("received_ms"),
                "repeats": r.get::<i64, _>("repeats"),
                "last_ms": r.get::<i64, _>("last_ms"),
            })
        })
        .collect();
    Ok(Json(json!({"parked": parked})))
}

/// A business day filter, `YYYY-MM-DD` exactly (the form the projection keeps), when present
/// (absent or empty does not filter).
pub(crate) fn business_day(
    name: &str,
    value: Option<&str>,
) -> ApiResult<Option<jiff::civil::Date>> {
    let Some(text) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    let date = if shaped {
        text.parse::<jiff::civil::Date>().ok()
    } else {
        None
    };
    date.map(Some).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_date",
            format!(
                "`{}` is not a calendar date in the form YYYY-MM-DD",
                clip(text, 40)
            ),
        )
        .at(name)
    })
}

#[derive(Debug, Deserialize)]
struct StockQuery {
    location: Option<String>,
    sku: Option<String>,
}

/// Stock level rows (location, SKU, on hand) as the read API shows them.
fn level_views(rows: &[sqlx::any::AnyRow]) -> Vec<Value> {
    rows.iter()
        .map(|r| {
            json!({
                "location": r.get::<String, _>("location"),
                "sku": r.get::<String, _>("sku"),
                "on_hand": milli(r.get("on_hand")),
            })
        })
        .collect()
}

async fn stock(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(q): Query<StockQuery>,
) -> ApiResult<Json<Value>> {
    let store = q.location.as_deref().filter(|s| !s.is_empty());
    authorize_reader(&hq, &headers, Scope::StockRead, store).await?;
    let rows = sqlx::query(
        "SELECT location, sku, on_hand FROM stock_levels WHERE ($1 = '' OR location = $1) AND ($2 = '' OR sku = $2) ORDER BY location, sku",
    )
    .bind(q.location.unwrap_or_default())
    .bind(q.sku.unwrap_or_default())
    .fetch_all(&hq.db.pool)
    .await?;
    Ok(Json(json!({"stock": level_views(&rows)})))
}

async fn negative_stock(State(hq): State<Arc<Hq>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    authorize_reader(&hq, &headers, Scope::StockRead, None).await?;
    let rows = sqlx::query(
        "SELECT location, sku, on_hand FROM stock_levels WHERE on_hand < 0 ORDER BY location, sku",
    )
    .fetch_all(&hq.db.pool)
    .await?;
    Ok(Json(json!({"negative_stock": level_views(&rows)})))
}

async fn metrics(State(hq): State<Arc<Hq>>, headers: HeaderMap) -> ApiResult<Response> {
    if hq.metrics_closed {
        authorize_reader(&hq, &headers, Scope::FleetRead, None).await?;
    }
    let m = &hq.metrics;
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, value: u64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        ));
    };
    counter(
        "kassa_hq_pushes_total",
        "Push requests received.",
        m.pushes.load(Ordering::Relaxed),
    );
    counter(
        "kassa_hq_events_accepted_total",
        "Events new to HQ.",
        m.events_accepted.load(Ordering::Relaxed),
    );
    counter(
        "kassa_hq_events_duplicate_total",
        "Events HQ already held.",
        m.events_duplicate.load(Ordering::Relaxed),
    );
    counter(
        "kassa_hq_batches_parked_total",
        "Batches parked since start.",
        m.batches_parked.load(Ordering::Relaxed),
    );
    counter(
        "kassa_hq_parked_repeats_total",
        "Refusals recorded on an earlier parked record of the same terminal and batch or reason.",
        m.parked_repeats.load(Ordering::Relaxed),
    );
    counter(
        "kassa_hq_parked_unrecorded_total",
        "Refusals not recorded because their terminal or store has as many parked records as HQ keeps.",
        m.parked_unrecorded.load(Ordering::Relaxed),
    );
    counter(
        "kassa_hq_bytes_received_total",
        "Push bytes received.",
        m.bytes_received.load(Ordering::Relaxed),
    );
    counter(
        "kassa_hq_bytes_sent_total",
        "Reference bytes sent.",
        m.bytes_sent.load(Ordering::Relaxed),
    );
    counter(
        "kassa_hq_store_backup_bytes_total",
        "Bytes of store backups received (pieces appended; a resumed backup counts only what it still lacked).",
        m.backup_bytes.load(Ordering::Relaxed),
    );
    counter(
        "kassa_hq_push_seconds_micros_total",
        "Microseconds spent handling successful pushes.",
        m.push_micros.load(Ordering::Relaxed),
    );
    let rows = sqlx::query("SELECT id, acked_seq, last_contact_ms FROM terminals ORDER BY id")
        .fetch_all(&hq.db.pool)
        .await?;
    let mut held: BTreeMap<String, i64> = BTreeMap::new();
    for r in
        sqlx::query("SELECT terminal, COUNT(*) AS n FROM inbox WHERE applied = 0 GROUP BY terminal")
            .fetch_all(&hq.db.pool)
            .await?
    {
        held.insert(r.get("terminal"), r.get("n"));
    }
    out.push_str("# HELP kassa_hq_terminal_acked_seq Highest contiguous sequence held per terminal.\n# TYPE kassa_hq_terminal_acked_seq gauge\n");
    for r in &rows {
        out.push_str(&format!(
            "kassa_hq_terminal_acked_seq{{terminal=\"{}\"}} {}\n",
            r.get::<String, _>("id"),
            r.get::<i64, _>("acked_seq")
        ));
    }
    out.push_str("# HELP kassa_hq_terminal_held_beyond_gap Events held but not applied because earlier ones are missing.\n# TYPE kassa_hq_terminal_held_beyond_gap gauge\n");
    for r in &rows {
        let id: String = r.get("id");
        out.push_str(&format!(
            "kassa_hq_terminal_held_beyond_gap{{terminal=\"{id}\"}} {}\n",
            held.get(&id).copied().unwrap_or(0)
        ));
    }
    out.push_str("# HELP kassa_hq_terminal_lag_seconds Seconds since the terminal last pushed.\n# TYPE kassa_hq_terminal_lag_seconds gauge\n");
    for r in &rows {
        if let Some(t) = r.get::<Option<i64>, _>("last_contact_ms") {
            out.push_str(&format!(
                "kassa_hq_terminal_lag_seconds{{terminal=\"{}\"}} {:.3}\n",
                r.get::<String, _>("id"),
                (now_ms() - t) as f64 / 1000.0
            ));
        }
    }
    let parked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM parked")
        .fetch_one(&hq.db.pool)
        .await?;
    out.push_str(&format!("# HELP kassa_hq_parked_batches Parked batches on record.\n# TYPE kassa_hq_parked_batches gauge\nkassa_hq_parked_batches {parked}\n"));
    let licence = crate::licence::report(&hq.db, now_ms())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    out.push_str("# HELP kassa_hq_licence_state The chain against its licence: 0 within, 1 grace period, 2 lapsed (no new store or till admitted); no sample without a licence.\n# TYPE kassa_hq_licence_state gauge\n");
    out.push_str("# HELP kassa_hq_licence_expires_seconds Seconds until the licence's last day ends (negative once past).\n# TYPE kassa_hq_licence_expires_seconds gauge\n");
    if let (Some(installed), Some(standing)) = (&licence.licence, &licence.standing) {
        let state = match standing {
            protocol::licence::Standing::Valid => 0,
            protocol::licence::Standing::Grace { .. } => 1,
            protocol::licence::Standing::Lapsed { .. } => 2,
        };
        out.push_str(&format!(
            "kassa_hq_licence_state {state}\nkassa_hq_licence_expires_seconds {}\n",
            (installed.terms.expires_after_ms() - now_ms()) / 1000
        ));
    }
    Ok(([("content-type", "text/plain; version=0.0.4")], out).into_response())
}

/// The most lines one read of the audit log answers.
const AUDIT_PAGE_MAX: i64 = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    before: Option<i64>,
    limit: Option<i64>,
    format: Option<String>,
}

/// `GET /v1/audit-log`: the audit log, newest first, filtered, as JSON or CSV. Reading it is
/// itself a line of the log (who read what).
async fn audit_log(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Response> {
    let reader = authorize_reader(&hq, &headers, Scope::AuditRead, None).await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=AUDIT_PAGE_MAX).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("limit must be 1 to {AUDIT_PAGE_MAX}"),
        )
        .at("limit"));
    }
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("format is json or csv, not `{other}`"),
            )
            .at("format"));
        }
    };
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let filter = crate::identity::AuditFilter {
        actor: nonempty(q.actor),
        action: nonempty(q.action),
        target: nonempty(q.target),
        from_ms: q.from_ms,
        to_ms: q.to_ms,
        before_id: q.before,
    };
    let action = if csv { "audit.export" } else { "audit.read" };
    let entries = crate::identity::read_audit(&hq.db, &reader, &filter, limit, action).await?;
    if !csv {
        let next = entries
            .last()
            .map(|e| e.id)
            .filter(|_| entries.len() as i64 == limit);
        return Ok(Json(json!({ "entries": entries, "before_next": next })).into_response());
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = [
        "id", "at", "at_ms", "actor", "source", "action", "target", "before", "after",
    ];
    let written = out.write_record(header).and_then(|()| {
        entries.iter().try_for_each(|e| {
            let at = jiff::Timestamp::from_millisecond(e.at_ms)
                .map(|t| t.to_string())
                .unwrap_or_default();
            out.write_record([
                e.id.to_string().as_str(),
                &at,
                &e.at_ms.to_string(),
                &e.actor,
                e.source.as_deref().unwrap_or(""),
                &e.action,
                e.target.as_deref().unwrap_or(""),
                e.before.as_deref().unwrap_or(""),
                e.after.as_deref().unwrap_or(""),
            ])
        })
    });
    let bytes = written
        .map_err(|e| e.to_string())
        .and_then(|()| out.into_inner().map_err(|e| e.to_string()))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    Ok((
        [
            ("content-type", "text/csv; charset=utf-8"),
            (
                "content-disposition",
                "attachment; filename=\"kassa-audit-log.csv\"",
            ),
        ],
        bytes,
    )
        .into_response())
}
