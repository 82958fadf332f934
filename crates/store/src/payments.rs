//! The store node's card-payment journal. Every request to a till's payment terminal is a ledger
//! event (`CardRequestStarted`) appended through the ledger writer, so hash-chained, signed and
//! synced to HQ, before the request leaves; its outcome is a `CardRequestEnded` event, and an
//! offline approval settling later a `CardOfflineSettled` or `CardOfflineDeclined` event. The
//! table `card_requests` is a projection of those events, written in the same transaction, that
//! recovery and the offline limits read.

use domain::card::{CardApproval, CardEvent, CardOutcome, CardRequestKind, CardRequestStarted};
use domain::ledger::{Event, EventBody};
use domain::sale::{Tender, TenderKind};
use domain::{Currency, Money, TerminalId};
use payments::service::{InFlight, Journal, JournalError, OpKind, Outcome, Record, Settlement};
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnection;

use crate::ledger::{Ledger, Op, WriteError};

/// [`Journal`] of one till, over the ledger writer and the node database.
#[derive(Debug, Clone)]
pub struct SqliteJournal {
    ledger: Ledger,
    pool: SqlitePool,
    terminal: TerminalId,
}

impl SqliteJournal {
    /// The journal of `terminal`: events through `ledger`, records read from `pool`.
    pub fn new(ledger: Ledger, pool: SqlitePool, terminal: TerminalId) -> Self {
        Self {
            ledger,
            pool,
            terminal,
        }
    }
}

/// The change to the `card_requests` projection that goes with a card event.
#[derive(Debug, Clone)]
pub enum JournalChange {
    /// A new request (the payments crate's `InFlight`, as JSON).
    Begin {
        /// Its ServiceID.
        service_id: String,
        /// The request as JSON.
        op: String,
    },
    /// A request's outcome, replacing any earlier one (the payments crate's `Outcome`, as JSON).
    Finish {
        /// Its ServiceID.
        service_id: String,
        /// The outcome as JSON.
        outcome: String,
    },
}

fn err(e: impl std::fmt::Display) -> JournalError {
    JournalError(e.to_string())
}

fn money(minor: i64, currency: &str) -> Result<Money, JournalError> {
    Ok(Money::from_minor(
        minor,
        Currency::parse(currency).map_err(err)?,
    ))
}

fn request_kind(kind: OpKind) -> CardRequestKind {
    match kind {
        OpKind::Payment => CardRequestKind::Payment,
        OpKind::Refund => CardRequestKind::Refund,
        OpKind::Reversal => CardRequestKind::Reversal,
        OpKind::UnreferencedRefund => CardRequestKind::UnreferencedRefund,
    }
}

/// What the ledger keeps of an outcome: the whitelisted fields, with a masked PAN only.
fn card_outcome(op: &InFlight, outcome: &Outcome) -> Result<CardOutcome, JournalError> {
    Ok(match outcome {
        Outcome::Approved { payment, .. } => CardOutcome::Approved(CardApproval {
            poi_transaction_id: payment.poi_transaction_id.clone(),
            psp_reference: payment.psp_reference.clone(),
            auth_code: payment.auth_code.clone(),
            brand: payment.brand.clone(),
            masked_pan: payment
                .masked_pan
                .as_ref()
                .and_then(|m| domain::card::MaskedPan::new(m.bin(), m.last4())),
            token: payment.token.clone(),
            entry_mode: payment.entry_mode.clone(),
            offline: payment.offline,
            authorised: money(payment.authorised_minor, &payment.currency)?,
        }),
        Outcome::Declined { condition, reason } => CardOutcome::Declined {
            condition: condition.clone(),
            reason: reason.clone(),
        },
        Outcome::NotProcessed => CardOutcome::NotProcessed,
        Outcome::Refunded {
            poi_transaction_id,
            amount_minor,
        } => CardOutcome::Refunded {
            poi_transaction_id: poi_transaction_id.clone(),
            amount: money(*amount_minor, &op.currency)?,
        },
    })
}

impl SqliteJournal {
    async fn append(&self, event: CardEvent, journal: JournalChange) -> Result<(), JournalError> {
        self.ledger
            .write(
                None,
                Op::Card {
                    terminal: self.terminal.clone(),
                    event,
                    journal,
                },
            )
            .await
            .map(|_| ())
            .map_err(err)
    }

    async fn record(&self, service_id: &str) -> Result<(Record, Option<String>), JournalError> {
        let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT op, outcome, used_by FROM card_requests WHERE service_id = $1 AND terminal = $2",
        )
        .bind(service_id)
        .bind(self.terminal.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(err)?;
        let (op, outcome, used_by) =
            row.ok_or_else(|| JournalError(format!("no card request {service_id}")))?;
        Ok((
            Record {
                op: serde_json::from_str(&op).map_err(err)?,
                outcome: outcome
                    .map(|o| serde_json::from_str(&o))
                    .transpose()
                    .map_err(err)?,
            },
            used_by,
        ))
    }

    /// The cashier of the sale with `receipt`.
    async fn cashier_of(&self, receipt: &str) -> Result<Option<domain::StaffId>, JournalError> {
        match receipt_event(&self.pool, receipt).await?.map(|e| e.body) {
            Some(EventBody::SaleCompleted(sale)) => Ok(sale.cashier),
            _ => Ok(None),
        }
    }
}

/// The event (a sale or a return) a receipt number names.
pub(crate) async fn receipt_event(
    pool: &SqlitePool,
    receipt: &str,
) -> Result<Option<Event>, JournalError> {
    let body: Option<Vec<u8>> = sqlx::query_scalar(
        "SELECT e.body FROM receipts r JOIN events e ON e.terminal = r.terminal AND e.seq = r.seq WHERE r.number = $1",
    )
    .bind(receipt)
    .fetch_optional(pool)
    .await
    .map_err(err)?;
    body.map(|b| protocol::event::decode(&b).map_err(err))
        .transpose()
}

impl Journal for SqliteJournal {
    async fn begin(&self, op: &InFlight) -> Result<(), JournalError> {
        let event = CardEvent::RequestStarted(CardRequestStarted {
            service_id: op.service_id.clone(),
            kind: request_kind(op.kind),
            sale: op.sale_transaction_id.clone(),
            amount: money(op.amount_minor, &op.currency)?,
            original: op.original_poi_transaction_id.clone(),
            shift: op.shift_id.clone(),
        });
        let change = JournalChange::Begin {
            service_id: op.service_id.clone(),
            op: serde_json::to_string(op).map_err(err)?,
        };
        // The writer answers only after the commit (synchronous=FULL): once this returns, the
        // request is in the ledger and survives a crash.
        self.append(event, change).await
    }

    async fn finish(&self, service_id: &str, outcome: &Outcome) -> Result<(), JournalError> {
        let (record, used_by) = self.record(service_id).await?;
        let was_pending = matches!(
            record.outcome,
            Some(Outcome::Approved {
                settlement: Settlement::Pending,
                ..
            })
        );
        let event = match outcome {
            Outcome::Approved {
                payment,
                settlement: Settlement::Settled,
            } if was_pending => CardEvent::OfflineSettled {
                service_id: service_id.to_owned(),
                poi_transaction_id: payment.poi_transaction_id.clone(),
            },
            Outcome::Approved {
                payment,
                settlement: Settlement::DeclinedLater,
            } if was_pending => CardEvent::OfflineDeclined {
                service_id: service_id.to_owned(),
                poi_transaction_id: payment.poi_transaction_id.clone(),
                cashier: match &used_by {
                    Some(receipt) => self.cashier_of(receipt).await?,
                    None => None,
                },
                receipt: used_by,
                amount: money(payment.authorised_minor, &payment.currency)?,
            },
            _ => CardEvent::RequestEnded {
                service_id: service_id.to_owned(),
                outcome: card_outcome(&record.op, outcome)?,
            },
        };
        let change = JournalChange::Finish {
            service_id: service_id.to_owned(),
            outcome: serde_json::to_string(outcome).map_err(err)?,
        };
        self.append(event, change).await
    }

    async fn records(&self) -> Result<Vec<Record>, JournalError> {
        Ok(
            records_where(&self.pool, "terminal = $1", self.terminal.as_str())
                .await?
                .into_iter()
                .map(|(_, record)| record)
                .collect(),
        )
    }
}

/// The card requests of every till of this node that match `condition` (SQL on `terminal`,
/// `op` and `outcome`, with `$1` bound to `value`), oldest first, each with its till.
pub(crate) async fn records_where(
    pool: &SqlitePool,
    condition: &str,
    value: &str,
) -> Result<Vec<(String, Record)>, JournalError> {
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT terminal, op, outcome FROM card_requests WHERE {condition} ORDER BY seq"
    )))
    .bind(value)
    .fetch_all(pool)
    .await
    .map_err(err)?;
    rows.into_iter()
        .map(|(terminal, op, outcome)| {
            Ok((
                terminal,
                Record {
                    op: serde_json::from_str(&op).map_err(err)?,
                    outcome: outcome
                        .map(|o| serde_json::from_str(&o))
                        .transpose()
                        .map_err(err)?,
                },
            ))
        })
        .collect()
}

/// Per till, the card payments its terminal approved offline that have not settled yet: how
/// many, and when the oldest was asked for (RFC 3339). One query over the projection, for the
/// metrics a scraper reads every few seconds (the payment service's own list reads each
/// request of the till).
pub(crate) async fn pending_offline_per_till(
    pool: &SqlitePool,
) -> Result<std::collections::HashMap<String, (i64, Option<String>)>, sqlx::Error> {
    let rows: Vec<(String, i64, Option<String>)> = sqlx::query_as(
        "SELECT terminal, count(*), min(json_extract(op, '$.started_at')) FROM card_requests
         WHERE json_extract(outcome, '$.Approved.settlement') = 'Pending' GROUP BY terminal",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(terminal, count, oldest)| (terminal, (count, oldest)))
        .collect())
}

/// Applies a card event's change to the `card_requests` projection (inside the ledger writer's
/// transaction).
pub(crate) async fn project(
    conn: &mut SqliteConnection,
    terminal: &TerminalId,
    change: &JournalChange,
) -> Result<(), WriteError> {
    match change {
        JournalChange::Begin { service_id, op } => {
            sqlx::query("INSERT INTO card_requests (service_id, op, terminal) VALUES ($1, $2, $3)")
                .bind(service_id)
                .bind(op)
                .bind(terminal.as_str())
                .execute(&mut *conn)
                .await?;
        }
        JournalChange::Finish {
            service_id,
            outcome,
        } => {
            sqlx::query(
                "UPDATE card_requests SET outcome = $1 WHERE service_id = $2 AND terminal = $3",
            )
            .bind(outcome)
            .bind(service_id)
            .bind(terminal.as_str())
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// The POI transaction id of an approved payment in the projection, as SQL.
const APPROVED_POI: &str = "json_extract(outcome, '$.Approved.payment.poi_transaction_id')";

/// Whether `terminal` has a payment terminal configured.
pub(crate) async fn has_terminal(
    conn: &mut SqliteConnection,
    terminal: &TerminalId,
) -> Result<bool, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM payment_terminals WHERE terminal = $1")
            .bind(terminal.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    Ok(found.is_some())
}

/// On a till with a payment terminal, every card tender must reference an approved card payment
/// of that till (its POI transaction id), not reversed, not used by another sale, for exactly
/// the tender's amount. Tills without a terminal keep manual card tenders.
pub(crate) async fn check_card_tenders(
    conn: &mut SqliteConnection,
    terminal: &TerminalId,
    tenders: &[Tender],
) -> Result<(), WriteError> {
    if !tenders.iter().any(|t| t.kind == TenderKind::Card) || !has_terminal(conn, terminal).await? {
        return Ok(());
    }
    let rejected = |code: &'static str, field: String, message: String| WriteError::Rejected {
        code,
        field,
        message,
    };
    let mut seen = Vec::new();
    for (i, t) in tenders.iter().enumerate() {
        if t.kind != TenderKind::Card {
            continue;
        }
        let field = format!("tenders[{i}].reference");
        let Some(reference) = t.reference.as_deref() else {
            return Err(rejected(
                "card_payment_required",
                field,
                format!(
                    "terminal {terminal} takes cards through its payment terminal: pay with POST /v1/card-payments and give the POI transaction id as the reference"
                ),
            ));
        };
        if seen.contains(&reference) {
            return Err(rejected(
                "card_payment_used",
                field,
                format!("card payment {reference} is referenced twice"),
            ));
        }
        seen.push(reference);
        let row: Option<(Option<String>, Option<i64>, Option<String>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT used_by, json_extract(outcome, '$.Approved.payment.authorised_minor'),
                        json_extract(outcome, '$.Approved.settlement')
                 FROM card_requests WHERE terminal = $1 AND {APPROVED_POI} = $2"
            )))
            .bind(terminal.as_str())
            .bind(reference)
            .fetch_optional(&mut *conn)
            .await?;
        let Some((used_by, authorised, settlement)) = row else {
            return Err(rejected(
                "unknown_card_payment",
                field,
                format!("no approved card payment {reference} on terminal {terminal}"),
            ));
        };
        if let Some(receipt) = used_by {
            return Err(rejected(
                "card_payment_used",
                field,
                format!("card payment {reference} already paid sale {receipt}"),
            ));
        }
        let reversed: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM card_requests WHERE terminal = $1
             AND json_extract(op, '$.kind') = 'Reversal'
             AND json_extract(op, '$.original_poi_transaction_id') = $2
             AND json_extract(outcome, '$.Refunded') IS NOT NULL",
        )
        .bind(terminal.as_str())
        .bind(reference)
        .fetch_optional(&mut *conn)
        .await?;
        if reversed.is_some() || settlement.as_deref() == Some("DeclinedLater") {
            return Err(rejected(
                "card_payment_reversed",
                field,
                format!("card payment {reference} was reversed or declined"),
            ));
        }
        if authorised != Some(t.amount.minor()) {
            return Err(rejected(
                "card_amount_mismatch",
                format!("tenders[{i}].amount"),
                format!(
                    "card payment {reference} authorised {} minor units, the tender is {}",
                    authorised.unwrap_or(0),
                    t.amount.minor()
                ),
            ));
        }
    }
    Ok(())
}

/// Marks the card payments a sale's card tenders reference as used by its receipt.
pub(crate) async fn use_card_tenders(
    conn: &mut SqliteConnection,
    terminal: &TerminalId,
    tenders: &[Tender],
    receipt: &str,
) -> Result<(), WriteError> {
    for t in tenders.iter().filter(|t| t.kind == TenderKind::Card) {
        let Some(reference) = t.reference.as_deref() else {
            continue;
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE card_requests SET used_by = $1
             WHERE terminal = $2 AND {APPROVED_POI} = $3 AND used_by IS NULL"
        )))
        .bind(receipt)
        .bind(terminal.as_str())
        .bind(reference)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Card tenders in the ledger, per currency: `(currency, count, minor units)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerCardTotals {
    /// Card tenders of completed sales.
    pub debits: Vec<(String, u64, i64)>,
    /// Card refunds of completed returns.
    pub credits: Vec<(String, u64, i64)>,
    /// The receipts of the returns refunded to a card.
    pub card_returns: Vec<String>,
}

/// Which part of the ledger to sum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TotalsScope {
    /// One till, or all.
    pub terminal: Option<TerminalId>,
    /// Sequence numbers from..=to (a shift).
    pub seq: Option<(i64, i64)>,
    /// Clock readings from..to, epoch milliseconds (a business day).
    pub wall_ms: Option<(i64, i64)>,
}

/// Sums the card tenders of the sales and returns in `scope`, for end-of-day comparison with
/// the terminal's totals.
pub async fn ledger_card_totals(
    pool: &SqlitePool,
    scope: &TotalsScope,
) -> Result<LedgerCardTotals, JournalError> {
    let (from_seq, to_seq) = scope.seq.unwrap_or((0, i64::MAX));
    let (from_ms, to_ms) = scope.wall_ms.unwrap_or((i64::MIN, i64::MAX));
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
        "SELECT body FROM events
         WHERE kind IN ('SaleCompleted', 'ReturnCompleted', 'CardRefundPaidInCash', 'StoredValueIssued', 'StoredValueToppedUp')
         AND ($1 IS NULL OR terminal = $1) AND seq BETWEEN $2 AND $3
         AND hlc_wall >= $4 AND hlc_wall < $5
         ORDER BY terminal, seq",
    )
    .bind(scope.terminal.as_ref().map(TerminalId::as_str))
    .bind(from_seq)
    .bind(to_seq)
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(pool)
    .await
    .map_err(err)?;
    let mut debits: std::collections::BTreeMap<String, (u64, i64)> = Default::default();
    // Card refunds per return, so one paid in cash in full no longer counts as a card refund.
    let mut returns: std::collections::BTreeMap<String, (String, u64, i64)> = Default::default();
    let mut in_cash_elsewhere: std::collections::BTreeMap<String, i64> = Default::default();
    for (body,) in rows {
        let event = protocol::event::decode(&body).map_err(err)?;
        let cards = |tenders: &[domain::sale::Tender]| {
            tenders
                .iter()
                .filter(|t| t.kind == TenderKind::Card)
                .map(|t| (t.amount.currency().code().to_owned(), t.amount.minor()))
                .collect::<Vec<_>>()
        };
        match &event.body {
            // A gift card sold or topped up by card is a card debit like a sale.
            EventBody::SaleCompleted(domain::ledger::SaleCompleted { tenders, .. })
            | EventBody::StoredValueIssued(domain::stored_value::StoredValueLoad {
                tenders, ..
            })
            | EventBody::StoredValueToppedUp(domain::stored_value::StoredValueLoad {
                tenders,
                ..
            }) => {
                for (currency, minor) in cards(tenders) {
                    let slot = debits.entry(currency).or_default();
                    slot.0 += 1;
                    slot.1 += minor;
                }
            }
            EventBody::ReturnCompleted(r) => {
                for (currency, minor) in cards(&r.tenders) {
                    let slot = returns.entry(r.receipt.clone()).or_insert((currency, 0, 0));
                    slot.1 += 1;
                    slot.2 += minor;
                }
            }
            EventBody::CardRefundPaidInCash {
                return_receipt,
                amount,
            } => match returns.get_mut(return_receipt) {
                Some(slot) => slot.2 -= amount.minor(),
                // The return itself lies outside the scope (an earlier day).
                None => {
                    *in_cash_elsewhere
                        .entry(amount.currency().code().to_owned())
                        .or_default() += amount.minor();
                }
            },
            _ => {}
        }
    }
    let card_returns = returns.keys().cloned().collect();
    let mut credits: std::collections::BTreeMap<String, (u64, i64)> = Default::default();
    for (currency, count, minor) in returns.into_values() {
        let slot = credits.entry(currency).or_default();
        if minor > 0 {
            slot.0 += count;
        }
        slot.1 += minor;
    }
    for (currency, minor) in in_cash_elsewhere {
        credits.entry(currency).or_default().1 -= minor;
    }
    let flat = |m: std::collections::BTreeMap<String, (u64, i64)>| {
        m.into_iter().map(|(c, (n, s))| (c, n, s)).collect()
    };
    Ok(LedgerCardTotals {
        debits: flat(debits),
        credits: flat(credits),
        card_returns,
    })
}
