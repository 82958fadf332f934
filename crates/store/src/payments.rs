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
