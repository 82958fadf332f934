//! Kassa's store node: an append-only, hash-chained and signed SQLite ledger per terminal that
//! never refuses a sale for want of a network, its HTTP API for the tills, and the store's local
//! copy of reference data.
//!
//! `App::build` opens the database, starts the ledger writer and binds the listener; `App::run`
//! serves until the shutdown future resolves.

pub mod api;
pub mod auth;
pub mod backup;
pub mod cards;
pub mod cards_api;
pub mod clock;
pub mod db;
pub mod enrol;
pub mod fiscal;
pub mod holds;
pub mod keys;
pub mod ledger;
pub mod node;
pub mod offsite;
pub mod online;
pub mod payments;
pub mod printing;
pub mod refdata;
pub mod shifts;
pub mod staff;
pub mod staff_api;
pub mod stored_value;
pub mod support;
pub mod sync;
pub mod till;
pub mod verify;
pub mod views;
pub mod web_orders;
pub mod web_returns;

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use domain::{StoreId, TerminalId};
use sqlx::Row;
use tokio::net::TcpListener;

use crate::clock::Clock;
use crate::node::Node;

/// Errors from setting up or running a node.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Opening the database failed.
    #[error(transparent)]
    Db(#[from] db::DbError),
    /// HQ cannot be reached the way the node was told to.
    #[error("HQ link {0}")]
    HqLink(String),
    /// SQLite failed.
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A key file failed.
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    /// Reference data failed.
    #[error(transparent)]
    Ref(#[from] refdata::RefError),
    /// The ledger writer failed to start.
    #[error(transparent)]
    Write(#[from] ledger::WriteError),
    /// The node has not been provisioned.
    #[error("data directory {0} has not been provisioned: run `kassa store provision` first")]
    NotProvisioned(String),
    /// Provisioning named another store.
    #[error("data directory belongs to store `{existing}`, not `{requested}`")]
    StoreMismatch {
        /// The store it was provisioned for.
        existing: String,
        /// The store asked for.
        requested: String,
    },
    /// The node hosts no such terminal.
    #[error("this node hosts no terminal `{0}`")]
    UnknownTerminal(String),
    /// A terminal's key file does not match the key registered for it.
    #[error("key file of terminal {0} does not match its registered public key")]
    KeyMismatch(String),
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

/// Where the node keeps its data and where it listens.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The data directory (database and keys).
    pub data_dir: PathBuf,
    /// The listen address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// HQ, if this node syncs.
    pub sync: Option<sync::SyncSettings>,
}

/// Registers the node's store and terminals, creating each terminal's key pair. Repeatable:
/// existing terminals keep their keys. Returns each terminal's public key.
pub async fn provision(
    data_dir: &Path,
    store: &StoreId,
    terminals: &[TerminalId],
) -> Result<Vec<(TerminalId, [u8; 32])>, StoreError> {
    let pools = db::open(data_dir).await?;
    let existing: Option<String> = sqlx::query_scalar("SELECT store_id FROM node")
        .fetch_optional(&pools.writer)
        .await?;
    match existing {
        Some(existing) if existing != store.as_str() => {
            return Err(StoreError::StoreMismatch {
                existing,
                requested: store.to_string(),
            });
        }
        Some(_) => {}
        None => {
            sqlx::query("INSERT INTO node (singleton, store_id) VALUES (1, $1)")
                .bind(store.as_str())
                .execute(&pools.writer)
                .await?;
        }
    }
    let mut out = Vec::new();
    for terminal in terminals {
        let key = keys::create_or_load(data_dir, terminal)?;
        let public = keys::public_bytes(&key);
        let stored: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT public_key FROM terminals WHERE id = $1")
                .bind(terminal.as_str())
                .fetch_optional(&pools.writer)
                .await?;
        match stored {
            Some(stored) if stored != public => {
                return Err(StoreError::KeyMismatch(terminal.to_string()));
            }
            Some(_) => {}
            None => {
                sqlx::query(
                    "INSERT INTO terminals (id, public_key, genesis_key) VALUES ($1, $2, $2)",
                )
                .bind(terminal.as_str())
                .bind(&public[..])
                .execute(&pools.writer)
                .await?;
            }
        }
        out.push((terminal.clone(), public));
    }
    pools.writer.close().await;
    pools.reader.close().await;
    Ok(out)
}

/// `terminal`'s signing key, which must be the one its chain names last (`public_key`). A
/// rotation the ledger recorded before the node stopped short of renaming the key file is
/// finished here.
fn signing_key(
    data_dir: &Path,
    terminal: &TerminalId,
    public_key: &[u8],
) -> Result<ed25519_dalek::SigningKey, StoreError> {
    let key = keys::load(data_dir, terminal)?;
    if keys::public_bytes(&key)[..] == *public_key {
        return Ok(key);
    }
    match keys::next_key(data_dir, terminal)? {
        Some(next) if keys::public_bytes(&next)[..] == *public_key => {
            keys::promote_next(data_dir, terminal)?;
            tracing::info!(%terminal, "finished a key rotation the ledger had recorded");
            Ok(next)
        }
        _ => Err(StoreError::KeyMismatch(terminal.to_string())),
    }
}

async fn provisioned_store(pools: &db::Pools, data_dir: &Path) -> Result<StoreId, StoreError> {
    let store: Option<String> = sqlx::query_scalar("SELECT store_id FROM node")
        .fetch_optional(&pools.writer)
        .await?;
    let store = store.ok_or_else(|| StoreError::NotProvisioned(data_dir.display().to_string()))?;
    StoreId::parse(&store).map_err(|_| StoreError::NotProvisioned(data_dir.display().to_string()))
}

/// Prepares a new signing key for one of the node's terminals (see [`keys::prepare_rotation`]);
/// the node announces it in the terminal's ledger, signed by the current key, when it next
/// starts. Answers the new public key.
pub async fn prepare_key_rotation(
    data_dir: &Path,
    terminal: &TerminalId,
) -> Result<[u8; 32], StoreError> {
    let pools = db::open_existing(data_dir).await?;
    provisioned_store(&pools, data_dir).await?;
    let hosted: Option<i64> = sqlx::query_scalar("SELECT 1 FROM terminals WHERE id = $1")
        .bind(terminal.as_str())
        .fetch_optional(&pools.reader)
        .await?;
    pools.writer.close().await;
    pools.reader.close().await;
    if hosted.is_none() {
        return Err(StoreError::UnknownTerminal(terminal.to_string()));
    }
    let key = keys::prepare_rotation(data_dir, terminal)?;
    Ok(keys::public_bytes(&key))
}

/// Loads a reference data file (format `kassa-seed/1`) into the node, whole or not at all.
pub async fn seed(data_dir: &Path, seed: &protocol::seed::SeedDto) -> Result<i64, StoreError> {
    let pools = db::open_existing(data_dir).await?;
    let store = provisioned_store(&pools, data_dir).await?;
    let pepper = keys::pepper(data_dir, None)?;
    let version = refdata::apply_seed(&pools.writer, seed, &store, &pepper).await?;
    pools.writer.close().await;
    pools.reader.close().await;
    Ok(version)
}

/// Stops following HQ's reference change log (see [`refdata::detach`]); answers the log left.
pub async fn detach(data_dir: &Path) -> Result<Option<refdata::HqLog>, StoreError> {
    let pools = db::open_existing(data_dir).await?;
    provisioned_store(&pools, data_dir).await?;
    let left = refdata::detach(&pools.writer).await?;
    pools.writer.close().await;
    pools.reader.close().await;
    Ok(left)
}

/// A built node, listening, not yet serving.
#[derive(Debug)]
pub struct App {
    node: Arc<Node>,
    listener: TcpListener,
}

impl App {
    /// Opens the database, loads keys and reference data, starts the ledger writer and binds.
    pub async fn build(settings: &Settings, clock: Arc<dyn Clock>) -> Result<App, StoreError> {
        let pools = db::open_existing(&settings.data_dir).await?;
        let store = provisioned_store(&pools, &settings.data_dir).await?;
        let rows = sqlx::query("SELECT id, public_key FROM terminals ORDER BY id")
            .fetch_all(&pools.writer)
            .await?;
        let mut signing = HashMap::new();
        let mut terminals = BTreeSet::new();
        let mut rotations = Vec::new();
        for row in rows {
            let id: String = row.get("id");
            let terminal =
                TerminalId::parse(&id).map_err(|_| StoreError::KeyMismatch(id.clone()))?;
            let key = signing_key(&settings.data_dir, &terminal, row.get("public_key"))?;
            if let Some(next) = keys::next_key(&settings.data_dir, &terminal)? {
                rotations.push((terminal.clone(), next));
            }
            terminals.insert(terminal.clone());
            signing.insert(terminal, key);
        }
        let context = refdata::load_context(&pools.writer).await?;
        let appended = Arc::new(tokio::sync::Notify::new());
        let fiscal = fiscal::load(&pools.writer, &settings.data_dir).await?;
        let unstarted: Vec<TerminalId> = fiscal
            .iter()
            .filter(|(_, till)| !till.started())
            .map(|(terminal, _)| terminal.clone())
            .collect();
        let ledger = ledger::start(
            pools.writer.clone(),
            store.clone(),
            signing,
            fiscal,
            clock.clone(),
            appended.clone(),
        )
        .await?;
        // A till commissioned since the node last ran makes its start receipt first.
        for terminal in unstarted {
            ledger
                .write(None, ledger::Op::FiscalStart { terminal })
                .await?;
        }
        // A key rotation asked for since the node last ran (`kassa store rotate-key`): announced
        // in the ledger under the old key, then the new key file takes the old one's place.
        for (terminal, key) in rotations {
            let public_key = hex::encode(keys::public_bytes(&key));
            ledger
                .write(
                    None,
                    ledger::Op::RotateKey {
                        terminal: terminal.clone(),
                        key,
                    },
                )
                .await?;
            keys::promote_next(&settings.data_dir, &terminal)?;
            tracing::info!(%terminal, %public_key, "the terminal's signing key was rotated");
        }
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| StoreError::Listen {
                    addr: settings.listen,
                    source,
                })?;
        let pepper = staff::Pepper(keys::pepper(&settings.data_dir, None)?);
        let node = Arc::new(Node::new(
            store, pools, ledger, clock, terminals, context, appended, pepper,
        ));
        cards::start(&node).await?;
        let followed = refdata::hq_log(&node.pools.reader).await?;
        match &followed {
            Some(log) => {
                tracing::info!(hq = %log.url, log = %log.log, "reference data follows HQ's change log")
            }
            None => tracing::info!("reference data is local (a seed file, or none yet)"),
        }
        // Said at start, not only at the first sign-in: the operator sees it in the log.
        sync::check_pin_pepper(&node, followed.as_ref());
        if let Some(settings) = &settings.sync {
            let link = |timeout, connect| {
                settings
                    .client(timeout, connect)
                    .map_err(|e| StoreError::HqLink(format!("{}: {e}", settings.hq_url)))
            };
            node.online
                .connect(settings, link(online::HQ_TIMEOUT, online::HQ_TIMEOUT)?);
            sync::start(
                node.clone(),
                settings.clone(),
                link(sync::TIMEOUT, sync::CONNECT_TIMEOUT)?,
            );
        }
        Ok(App { node, listener })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// The node's shared state.
    pub fn node(&self) -> Arc<Node> {
        self.node.clone()
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StoreError> {
        let router = api::router(self.node.clone());
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(StoreError::Serve)
    }
}
