//! The store node's card-payment journal: in-flight terminal requests and their outcomes in the
//! node's SQLite file, written before a request leaves for the terminal.

use payments::service::{InFlight, Journal, JournalError, Outcome, Record};
use sqlx::SqlitePool;

/// [`Journal`] over the node database (table `card_requests`).
#[derive(Debug, Clone)]
pub struct SqliteJournal {
    pool: SqlitePool,
}

impl SqliteJournal {
    /// A journal on the node's writer pool (migrations already run by [`crate::db::open`]).
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

fn err(e: impl std::fmt::Display) -> JournalError {
    JournalError(e.to_string())
}

impl Journal for SqliteJournal {
    async fn begin(&self, op: &InFlight) -> Result<(), JournalError> {
        let json = serde_json::to_string(op).map_err(err)?;
        // The pool runs with synchronous=FULL: once this returns, the row survives power loss.
        sqlx::query("INSERT INTO card_requests (service_id, op) VALUES ($1, $2)")
            .bind(&op.service_id)
            .bind(json)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn finish(&self, service_id: &str, outcome: &Outcome) -> Result<(), JournalError> {
        let json = serde_json::to_string(outcome).map_err(err)?;
        let done = sqlx::query("UPDATE card_requests SET outcome = $1 WHERE service_id = $2")
            .bind(json)
            .bind(service_id)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        if done.rows_affected() == 0 {
            return Err(JournalError(format!("no card request {service_id}")));
        }
        Ok(())
    }

    async fn records(&self) -> Result<Vec<Record>, JournalError> {
        let rows: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT op, outcome FROM card_requests ORDER BY seq")
                .fetch_all(&self.pool)
                .await
                .map_err(err)?;
        rows.into_iter()
            .map(|(op, outcome)| {
                Ok(Record {
                    op: serde_json::from_str(&op).map_err(err)?,
                    outcome: outcome
                        .map(|o| serde_json::from_str(&o))
                        .transpose()
                        .map_err(err)?,
                })
            })
            .collect()
    }
}

/// Card tenders in the ledger, per currency: `(currency, count, minor units)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerCardTotals {
    /// Card tenders of completed sales.
    pub debits: Vec<(String, u64, i64)>,
    /// Card refunds of completed returns.
    pub credits: Vec<(String, u64, i64)>,
}

/// Sums the card tenders of every sale and return in the ledger, for end-of-day comparison with
/// the terminal's totals.
pub async fn ledger_card_totals(pool: &SqlitePool) -> Result<LedgerCardTotals, JournalError> {
    use domain::ledger::EventBody;
    use domain::sale::TenderKind;

    let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
        "SELECT body FROM events WHERE kind IN ('SaleCompleted', 'ReturnCompleted') ORDER BY terminal, seq",
    )
    .fetch_all(pool)
    .await
    .map_err(err)?;
    let mut debits: std::collections::BTreeMap<String, (u64, i64)> = Default::default();
    let mut credits: std::collections::BTreeMap<String, (u64, i64)> = Default::default();
    for (body,) in rows {
        let event = protocol::event::decode(&body).map_err(err)?;
        let (tenders, into) = match &event.body {
            EventBody::SaleCompleted(s) => (&s.tenders, &mut debits),
            EventBody::ReturnCompleted(r) => (&r.tenders, &mut credits),
            _ => continue,
        };
        for t in tenders.iter().filter(|t| t.kind == TenderKind::Card) {
            let slot = into
                .entry(t.amount.currency().code().to_owned())
                .or_default();
            slot.0 += 1;
            slot.1 += t.amount.minor();
        }
    }
    let flat = |m: std::collections::BTreeMap<String, (u64, i64)>| {
        m.into_iter().map(|(c, (n, s))| (c, n, s)).collect()
    };
    Ok(LedgerCardTotals {
        debits: flat(debits),
        credits: flat(credits),
    })
}
