//! Each till's payment terminal: its configuration in the node database, the card-payment
//! service built for it when the node starts, recovery of requests left in flight by a crash
//! before the till takes a new card payment, and the background reconciliation of offline
//! approvals.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use domain::TerminalId;
use domain::card::{CardEvent, CardOutcome};
use domain::sale::{Tender, TenderKind};
use payments::crypto::SecurityKey;
use payments::link::{LinkConfig, TerminalLink};
use payments::service::{CardPayments, OfflineLimits, Outcome};
use serde_json::{Value, json};
use sqlx::{Row, SqlitePool};

use crate::node::Node;
use crate::payments::SqliteJournal;

/// A till's payment terminal as configured (`kassa store payment-terminal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalConfig {
    /// `HOST:PORT` of the terminal on the LAN (port 8443 on a real terminal).
    pub addr: String,
    /// The terminal's POIID.
    pub poi_id: String,
    /// The shared key's identifier.
    pub key_id: String,
    /// The shared key's version.
    pub key_version: u64,
    /// A file holding the shared passphrase (read when the node starts, never stored).
    pub passphrase_file: String,
    /// A PEM file with the CA the terminal's certificate chains to.
    pub ca_file: String,
    /// Offline limits, minor units of the store currency.
    pub limits: OfflineLimits,
}

fn read_file(path: &str, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{what} {path}: {e}"))
}

impl TerminalConfig {
    /// Checks the configuration: the address resolves, the files are readable, the CA parses,
    /// the limits are not negative.
    pub fn check(&self) -> Result<(), String> {
        resolve(&self.addr)?;
        if self.poi_id.trim().is_empty() || self.key_id.trim().is_empty() {
            return Err("--poi-id and --key-id must not be empty".into());
        }
        let passphrase = read_file(&self.passphrase_file, "--passphrase-file")?;
        if passphrase.trim().is_empty() {
            return Err(format!(
                "--passphrase-file {} is empty",
                self.passphrase_file
            ));
        }
        let ca = read_file(&self.ca_file, "--ca-file")?;
        payments::tls::client_config(ca.as_bytes())
            .map_err(|e| format!("--ca-file {}: {e}", self.ca_file))?;
        let l = self.limits;
        if l.per_transaction_minor < 0 || l.per_shift_minor < 0 || l.outstanding_minor < 0 {
            return Err("offline limits cannot be negative".into());
        }
        Ok(())
    }

    /// The link to the terminal for `till`, reading the passphrase and CA files.
    pub fn link(&self, till: &TerminalId) -> Result<TerminalLink, String> {
        let passphrase = read_file(&self.passphrase_file, "passphrase file")?;
        let ca = read_file(&self.ca_file, "CA file")?;
        TerminalLink::new(LinkConfig {
            addr: resolve(&self.addr)?,
            poi_id: self.poi_id.clone(),
            sale_id: till.to_string(),
            key: SecurityKey::new(&self.key_id, self.key_version, passphrase.trim_end()),
            ca_pem: ca.into_bytes(),
            timeout: answer_timeout(),
        })
        .map_err(|e| e.to_string())
    }
}

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = addr.parse() {
        return Ok(a);
    }
    addr.to_socket_addrs()
        .map_err(|e| format!("--addr {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("--addr {addr} does not resolve"))
}

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// How long a request waits for the terminal's answer: a customer is at the terminal, so this is
/// generous (`KASSA_TERMINAL_TIMEOUT_SECS`, 120 s by default).
fn answer_timeout() -> Duration {
    env_secs("KASSA_TERMINAL_TIMEOUT_SECS", 120)
}

/// Sets `terminal`'s payment terminal, after checking it.
pub async fn set_terminal(
    pool: &SqlitePool,
    terminal: &TerminalId,
    config: &TerminalConfig,
) -> Result<(), String> {
    config.check()?;
    let l = config.limits;
    sqlx::query(
        "INSERT INTO payment_terminals (terminal, addr, poi_id, key_id, key_version, passphrase_file, ca_file,
             offline_per_transaction, offline_per_shift, offline_outstanding)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (terminal) DO UPDATE SET addr = excluded.addr, poi_id = excluded.poi_id,
             key_id = excluded.key_id, key_version = excluded.key_version,
             passphrase_file = excluded.passphrase_file, ca_file = excluded.ca_file,
             offline_per_transaction = excluded.offline_per_transaction,
             offline_per_shift = excluded.offline_per_shift,
             offline_outstanding = excluded.offline_outstanding",
    )
    .bind(terminal.as_str())
    .bind(&config.addr)
    .bind(&config.poi_id)
    .bind(&config.key_id)
    .bind(i64::try_from(config.key_version).unwrap_or(i64::MAX))
    .bind(abs(&config.passphrase_file))
    .bind(abs(&config.ca_file))
    .bind(l.per_transaction_minor)
    .bind(l.per_shift_minor)
    .bind(l.outstanding_minor)
    .execute(pool)
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// A path made absolute, so the node finds it whatever directory it runs in.
fn abs(path: &str) -> String {
    std::path::absolute(Path::new(path))
        .map_or_else(|_| path.to_owned(), |p| p.display().to_string())
}

/// Every configured payment terminal, by till.
pub async fn terminals(
    pool: &SqlitePool,
) -> Result<Vec<(TerminalId, TerminalConfig)>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM payment_terminals ORDER BY terminal")
        .fetch_all(pool)
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let till = TerminalId::parse(r.get::<&str, _>("terminal")).ok()?;
            Some((
                till,
                TerminalConfig {
                    addr: r.get("addr"),
                    poi_id: r.get("poi_id"),
                    key_id: r.get("key_id"),
                    key_version: u64::try_from(r.get::<i64, _>("key_version")).unwrap_or(0),
                    passphrase_file: r.get("passphrase_file"),
                    ca_file: r.get("ca_file"),
                    limits: OfflineLimits {
                        per_transaction_minor: r.get("offline_per_transaction"),
                        per_shift_minor: r.get("offline_per_shift"),
                        outstanding_minor: r.get("offline_outstanding"),
                    },
                },
            ))
        })
        .collect())
}

/// One till's card payments; `lock` keeps one request at a time per till (the terminal takes
/// one at a time, and recovery must finish before a new payment).
#[derive(Debug)]
pub struct TillCards {
    /// The service.
    pub service: CardPayments<SqliteJournal>,
    /// Held for every request to the terminal.
    pub lock: Arc<tokio::sync::Mutex<()>>,
}

/// The tills' card services, or why a configured till has none.
#[derive(Debug, Default)]
pub struct Cards {
    tills: RwLock<HashMap<TerminalId, Result<Arc<TillCards>, String>>>,
}

/// What a till has for cards.
#[derive(Debug)]
pub enum TillTerminal {
    /// No payment terminal configured: manual card tenders.
    None,
    /// Configured, but it could not be set up (files missing…).
    Broken(String),
    /// Ready.
    Ready(Arc<TillCards>),
}

impl Cards {
    /// `till`'s payment terminal.
    pub fn of(&self, till: &TerminalId) -> TillTerminal {
        let tills = self.tills.read().unwrap_or_else(|p| p.into_inner());
        match tills.get(till) {
            None => TillTerminal::None,
            Some(Err(e)) => TillTerminal::Broken(e.clone()),
            Some(Ok(t)) => TillTerminal::Ready(t.clone()),
        }
    }

    /// Every ready till.
    pub fn ready(&self) -> Vec<(TerminalId, Arc<TillCards>)> {
        let tills = self.tills.read().unwrap_or_else(|p| p.into_inner());
        tills
            .iter()
            .filter_map(|(k, v)| v.as_ref().ok().map(|t| (k.clone(), t.clone())))
            .collect()
    }
}

/// Builds each configured till's card service and starts, per till, recovery of requests left
/// in flight (holding the till's lock, so no new payment goes out first) and the periodic
/// reconciliation of offline approvals (`KASSA_CARD_RECONCILE_SECS`, 60 s by default).
pub async fn start(node: &Arc<Node>) -> Result<(), sqlx::Error> {
    let configured = terminals(&node.pools.writer).await?;
    let mut built = HashMap::new();
    for (till, config) in configured {
        if !node.hosts(&till) {
            continue;
        }
        let entry = config.link(&till).map(|link| {
            let journal =
                SqliteJournal::new(node.ledger.clone(), node.pools.writer.clone(), till.clone());
            Arc::new(TillCards {
                service: CardPayments::new(link, journal, config.limits),
                lock: Arc::new(tokio::sync::Mutex::new(())),
            })
        });
        if let Err(e) = &entry {
            tracing::error!(terminal = %till, error = %e, "payment terminal cannot be set up");
        }
        built.insert(till, entry);
    }
    *node.cards.tills.write().unwrap_or_else(|p| p.into_inner()) = built;
    for (till, cards) in node.cards.ready() {
        // Taken before the task runs, so a payment arriving first waits for the recovery.
        let guard = cards.lock.clone().try_lock_owned().ok();
        let recovering = cards.clone();
        tokio::spawn(async move {
            let _held = guard;
            match recovering.service.recover_in_flight().await {
                Ok(found) if !found.is_empty() => tracing::warn!(
                    terminal = %till,
                    recovered = found.iter().filter(|(_, o)| o.is_some()).count(),
                    unresolved = found.iter().filter(|(_, o)| o.is_none()).count(),
                    "card requests left in flight were recovered"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(terminal = %till, error = %e, "card recovery failed"),
            }
        });
    }
    let every = env_secs("KASSA_CARD_RECONCILE_SECS", 60).max(Duration::from_secs(1));
    let weak = Arc::downgrade(node);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(node) = weak.upgrade() else { return };
            for (till, cards) in node.cards.ready() {
                let Ok(_held) = cards.lock.try_lock() else {
                    continue;
                };
                if let Err(e) = cards.service.reconcile_offline().await {
                    tracing::warn!(terminal = %till, error = %e, "offline card reconciliation failed");
                }
            }
        }
    });
    Ok(())
}

/// A sale's tenders as its receipt prints them: a card tender paid through the terminal names
/// the card's brand, masked PAN (at most BIN and last four) and authorisation code instead of
/// the bare POI transaction id.
pub(crate) async fn printed_card_tenders(
    pool: &SqlitePool,
    till: &TerminalId,
    tenders: &[Tender],
) -> Result<Vec<Tender>, sqlx::Error> {
    let mut printed = tenders.to_vec();
    for tender in printed.iter_mut().filter(|t| t.kind == TenderKind::Card) {
        let Some(reference) = tender.reference.as_deref() else {
            continue;
        };
        let outcome: Option<String> = sqlx::query_scalar(
            "SELECT outcome FROM card_requests WHERE terminal = $1
             AND json_extract(outcome, '$.Approved.payment.poi_transaction_id') = $2",
        )
        .bind(till.as_str())
        .bind(reference)
        .fetch_optional(pool)
        .await?;
        let payment = outcome
            .and_then(|o| serde_json::from_str::<Outcome>(&o).ok())
            .and_then(|o| match o {
                Outcome::Approved { payment, .. } => Some(payment),
                _ => None,
            });
        if let Some(p) = payment {
            let parts: Vec<String> = [p.brand, p.masked_pan.map(|m| m.to_string()), p.auth_code]
                .into_iter()
                .flatten()
                .collect();
            if !parts.is_empty() {
                tender.reference = Some(parts.join(" "));
            }
        }
    }
    Ok(printed)
}

/// The JSON view of a card event (in the journal and in write answers).
pub fn card_view(event: &CardEvent) -> Value {
    match event {
        CardEvent::RequestStarted(s) => json!({
            "service_id": s.service_id,
            "request": s.kind.as_str(),
            "sale": s.sale,
            "amount": s.amount.amount_string(),
            "currency": s.amount.currency().code(),
            "original": s.original,
            "shift": s.shift,
        }),
        CardEvent::RequestEnded {
            service_id,
            outcome,
        } => {
            let mut v = json!({"service_id": service_id, "outcome": outcome.as_str()});
            let extra = match outcome {
                CardOutcome::Approved(a) => approval_view(a),
                CardOutcome::Declined { condition, reason } => {
                    json!({"condition": condition, "reason": reason})
                }
                CardOutcome::NotProcessed => json!({}),
                CardOutcome::Refunded {
                    poi_transaction_id,
                    amount,
                } => json!({
                    "poi_transaction_id": poi_transaction_id,
                    "amount": amount.amount_string(),
                }),
            };
            if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
                v.extend(extra);
            }
            v
        }
        CardEvent::OfflineSettled {
            service_id,
            poi_transaction_id,
        } => json!({"service_id": service_id, "poi_transaction_id": poi_transaction_id}),
        CardEvent::OfflineDeclined {
            service_id,
            poi_transaction_id,
            receipt,
            cashier,
            amount,
        } => json!({
            "service_id": service_id,
            "poi_transaction_id": poi_transaction_id,
            "receipt": receipt,
            "cashier": cashier.as_ref().map(ToString::to_string),
            "amount": amount.amount_string(),
            "currency": amount.currency().code(),
        }),
    }
}

/// An approval as the API shows it.
pub fn approval_view(a: &domain::card::CardApproval) -> Value {
    json!({
        "poi_transaction_id": a.poi_transaction_id,
        "psp_reference": a.psp_reference,
        "auth_code": a.auth_code,
        "brand": a.brand,
        "masked_pan": a.masked_pan.as_ref().map(ToString::to_string),
        "entry_mode": a.entry_mode,
        "offline": a.offline,
        "authorised": a.authorised.amount_string(),
        "currency": a.authorised.currency().code(),
    })
}
