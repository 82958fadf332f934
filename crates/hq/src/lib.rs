//! Kassa's head office: registers stores and terminals, ingests every terminal's ledger exactly
//! once (verifying chain and signature first), keeps projections (sales per store and day, stock
//! per location), publishes reference data as a versioned change log, and serves read APIs and
//! metrics. Runs on SQLite (embedded default) or PostgreSQL, where several HQ processes may share
//! one database.

pub mod api;
pub mod availability;
pub mod breakdown;
pub mod cards;
mod catalog;
mod catalog_feed;
mod categories;
pub mod db;
pub mod enrol;
pub mod exceptions;
mod extract;
pub mod fiscal;
pub mod https;
pub mod identity;
pub mod import;
pub mod ingest;
pub mod licence;
pub mod orders;
pub mod pages;
mod people;
mod price_list;
pub mod reconcile;
pub mod refdata;
pub mod reorder;
pub mod reports;
pub mod returns;
pub mod search;
pub mod sessions;
mod staff;
pub mod store_backups;
pub mod stored_value;
mod stores;
pub mod support;
pub mod webhooks;
mod writes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use domain::{StoreId, TerminalId};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::db::Db;

/// Errors from administering or running HQ.
#[derive(Debug, thiserror::Error)]
pub enum HqError {
    /// Opening the database failed.
    #[error(transparent)]
    Db(#[from] db::DbError),
    /// The database failed.
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A name or key was refused.
    #[error("{0}")]
    Invalid(String),
    /// `store add` named a store that is registered already.
    #[error(
        "store `{0}` is already registered; its credential stays valid. To issue a new one (the old one stops working), run `kassa hq store rotate-credential --id {0}`"
    )]
    StoreExists(String),
    /// The store is not registered.
    #[error("store `{0}` is not registered: run `kassa hq store add` first")]
    UnknownStore(String),
    /// The terminal is registered with another store or key.
    #[error("terminal `{0}` is already registered with another store or key")]
    TerminalTaken(String),
    /// The licence admits no new store or terminal.
    #[error("{0}")]
    Licence(String),
    /// Binding the listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The hash HQ keeps of a store credential.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// [`token_hash`] in hex: what HQ keeps of an API key's secret, a session's token and a
/// payload an import batch wrote.
pub(crate) fn hex_hash(text: &str) -> String {
    hex::encode(token_hash(text))
}

/// `bytes` random bytes in hex, for secrets, tokens and ids.
pub(crate) fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0_u8; bytes];
    getrandom::fill(&mut buf)?;
    Ok(hex::encode(buf))
}

/// Registers a store and issues its sync credential (shown once; HQ keeps only its hash). A
/// store that exists is refused: a new credential would lock the running store out of sync, so
/// replacing one is its own command ([`rotate_credential`]).
pub async fn add_store(db: &Db, store: &StoreId, name: &str) -> Result<String, HqError> {
    let token = new_credential(store)?;
    let (_guard, mut tx) = db.begin_write().await?;
    let known: Option<String> = sqlx::query_scalar("SELECT id FROM stores WHERE id = $1")
        .bind(store.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    if known.is_some() {
        return Err(HqError::StoreExists(store.to_string()));
    }
    let now = now_ms();
    licence::admit(&mut tx, licence::Adding::Store, now).await?;
    let added = sqlx::query(
        "INSERT INTO stores (id, name, token_hash, created_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(store.as_str())
    .bind(name)
    .bind(&token_hash(&token)[..])
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if added.rows_affected() == 0 {
        return Err(HqError::StoreExists(store.to_string()));
    }
    tx.commit().await?;
    Ok(token)
}

/// Issues a registered store a new sync credential; the old one stops working at once, so the
/// store must be restarted with the new one.
pub async fn rotate_credential(db: &Db, store: &StoreId) -> Result<String, HqError> {
    let (_guard, mut tx) = db.begin_write().await?;
    let token = replace_credential_within(&mut tx, store, None).await?;
    tx.commit().await?;
    tracing::warn!(%store, "store credential replaced; the old one is refused from now on");
    Ok(token)
}

/// Mutual TLS per store: whether HQ takes `store`'s credential only with its client
/// certificate (see `api::client_certificates`). Audited (`store.client_cert_required`).
pub async fn require_client_cert(db: &Db, store: &StoreId, required: bool) -> Result<(), HqError> {
    let (_guard, mut tx) = db.begin_write().await?;
    let changed = sqlx::query("UPDATE stores SET client_cert_required = $1 WHERE id = $2")
        .bind(i64::from(required))
        .bind(store.as_str())
        .execute(&mut *tx)
        .await?;
    if changed.rows_affected() == 0 {
        return Err(HqError::UnknownStore(store.to_string()));
    }
    let target = format!("store:{store}");
    let after = serde_json::json!({ "client_cert_required": required }).to_string();
    identity::Audit {
        at_ms: now_ms(),
        actor: "cli",
        source: None,
        action: "store.client_cert_required",
        target: Some(&target),
        before: None,
        after: Some(&after),
    }
    .append(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Issues `store` a new sync credential inside the caller's transaction (which holds the write
/// guard) and answers it. With `keep` (a credential and an instant), that credential keeps
/// working until the instant; without, every earlier one stops at once.
pub(crate) async fn replace_credential_within(
    tx: &mut sqlx::AnyConnection,
    store: &StoreId,
    keep: Option<(&str, i64)>,
) -> Result<String, HqError> {
    let token = new_credential(store)?;
    let changed = sqlx::query(
        "UPDATE stores SET token_hash = $1, previous_token_hash = $2, previous_until_ms = $3 WHERE id = $4",
    )
    .bind(&token_hash(&token)[..])
    .bind(keep.map(|(old, _)| token_hash(old).to_vec()))
    .bind(keep.map(|(_, until)| until))
    .bind(store.as_str())
    .execute(&mut *tx)
    .await?;
    if changed.rows_affected() == 0 {
        return Err(HqError::UnknownStore(store.to_string()));
    }
    Ok(token)
}

fn new_credential(store: &StoreId) -> Result<String, HqError> {
    let secret = random_hex(32).map_err(|e| HqError::Invalid(format!("no randomness: {e}")))?;
    Ok(format!("kassa_{store}_{secret}"))
}

/// Registers a terminal of a store with its public key (hex, as `kassa store provision` prints).
pub async fn add_terminal(
    db: &Db,
    store: &StoreId,
    terminal: &TerminalId,
    public_key_hex: &str,
) -> Result<(), HqError> {
    let (_guard, mut tx) = db.begin_write().await?;
    add_terminal_within(&mut tx, store, terminal, public_key_hex).await?;
    tx.commit().await?;
    Ok(())
}

/// A terminal's public key, checked: 32 bytes of an Ed25519 key, in hex.
pub(crate) fn terminal_key(public_key_hex: &str) -> Result<ed25519_dalek::VerifyingKey, HqError> {
    hex::decode(public_key_hex.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| {
            HqError::Invalid(format!(
                "public key `{public_key_hex}` is not a 32-byte Ed25519 key in hex"
            ))
        })
}

/// [`add_terminal`] inside the caller's transaction (which holds the write guard): whether the
/// terminal is new (registering it again with the same store and key changes nothing).
pub(crate) async fn add_terminal_within(
    tx: &mut sqlx::AnyConnection,
    store: &StoreId,
    terminal: &TerminalId,
    public_key_hex: &str,
) -> Result<bool, HqError> {
    let key = terminal_key(public_key_hex)?;
    let known: Option<String> = sqlx::query_scalar("SELECT id FROM stores WHERE id = $1")
        .bind(store.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    if known.is_none() {
        return Err(HqError::UnknownStore(store.to_string()));
    }
    let existing: Option<(String, Vec<u8>)> =
        sqlx::query_as("SELECT store, public_key FROM terminals WHERE id = $1")
            .bind(terminal.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    match existing {
        Some((s, k)) if s == store.as_str() && k == key.to_bytes() => Ok(false),
        Some(_) => Err(HqError::TerminalTaken(terminal.to_string())),
        None => {
            licence::admit(&mut *tx, licence::Adding::Terminal, now_ms()).await?;
            sqlx::query(
                "INSERT INTO terminals (id, store, public_key, acked_seq, acked_hash) VALUES ($1, $2, $3, 0, $4)",
            )
            .bind(terminal.as_str())
            .bind(store.as_str())
            .bind(&key.to_bytes()[..])
            .bind(&protocol::chain::GENESIS[..])
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO terminal_keys (terminal_id, from_seq, public_key) VALUES ($1, 1, $2)",
            )
            .bind(terminal.as_str())
            .bind(&key.to_bytes()[..])
            .execute(&mut *tx)
            .await?;
            Ok(true)
        }
    }
}

/// How HQ listens and whom its read API answers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Listen address (port 0 picks one).
    pub listen: SocketAddr,
    /// A bearer token the read API requires, if set.
    pub api_token: Option<String>,
    /// Whether `/metrics` needs a reader with `fleet:read` (a session, a key or the read-API
    /// token) instead of being open to the network's scraper.
    pub close_metrics: bool,
    /// The chain's PIN pepper, for the staff write API (without it a PIN is refused).
    pub pin_pepper: Option<[u8; 32]>,
    /// Whether people reach HQ over HTTPS (a TLS-terminating proxy in front of it): the session
    /// cookie is then `Secure`, never sent over plain HTTP.
    pub secure_cookies: bool,
    /// When failed webhook deliveries are tried again.
    pub webhook_backoff: webhooks::Backoff,
    /// HTTPS with this configuration; plain HTTP when `None` (behind a TLS-terminating proxy,
    /// or a lab: `kassa hq run --insecure-http`).
    pub tls: Option<Arc<tls::rustls::ServerConfig>>,
    /// The chain's CA (PEM) the certificate of `tls` chains to, for the enrolment codes the
    /// back office issues.
    pub ca_pem: Option<String>,
    /// The chain's CA with its key, when HQ holds it: HQ then issues each enrolled store node a
    /// client certificate for mutual TLS (renewed with each rotation of its credential).
    pub client_ca: Option<Arc<tls::Authority>>,
    /// Where store backups the nodes send are kept; `None`: HQ takes none.
    pub store_backups: Option<store_backups::StoreBackups>,
}

/// A built HQ, listening, not yet serving.
#[derive(Debug)]
pub struct App {
    state: Arc<api::Hq>,
    listener: TcpListener,
    webhook_backoff: webhooks::Backoff,
    tls: Option<Arc<tls::rustls::ServerConfig>>,
}

impl App {
    /// Opens and migrates the database and binds the listener.
    pub async fn build(settings: &Settings) -> Result<App, HqError> {
        let db = db::open(&settings.database_url).await?;
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| HqError::Listen {
                    addr: settings.listen,
                    source,
                })?;
        Ok(App {
            state: Arc::new(
                api::Hq::new(db, settings.api_token.clone())
                    .with_metrics_closed(settings.close_metrics)
                    .with_pin_pepper(settings.pin_pepper)
                    .with_secure_cookies(settings.secure_cookies || settings.tls.is_some())
                    .with_ca(settings.ca_pem.clone())
                    .with_client_ca(settings.client_ca.clone())
                    .with_store_backups(settings.store_backups.clone()),
            ),
            listener,
            webhook_backoff: settings.webhook_backoff,
            tls: settings.tls.clone(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// The shared state.
    pub fn state(&self) -> Arc<api::Hq> {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), HqError> {
        let state = self.state.clone();
        let indexer = tokio::spawn(search::keep_fresh(self.state.db.clone()));
        let reconciler = tokio::spawn(reconcile::keep_up(self.state.db.clone()));
        let expirer = tokio::spawn(availability::keep_up(self.state.db.clone()));
        let deliverer = tokio::spawn(webhooks::keep_up(
            self.state.db.clone(),
            self.webhook_backoff,
        ));
        let shutdown = async move {
            shutdown.await;
            state.close();
        };
        let service = api::router(self.state).into_make_service_with_connect_info::<https::Peer>();
        let served = match self.tls {
            Some(config) => {
                let listener =
                    https::TlsListener::new(self.listener, config).map_err(HqError::Serve)?;
                axum::serve(listener, service)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            None => {
                axum::serve(self.listener, service)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        }
        .map_err(HqError::Serve);
        indexer.abort();
        reconciler.abort();
        expirer.abort();
        deliverer.abort();
        served
    }
}
