//! The ledger writer: the one task that appends events. Requests queue on a channel; the writer
//! takes whatever has queued, applies each request in turn inside one transaction,
//! commits once (one fsync for the whole group) and only then answers. A request is answered 2xx
//! only after its event is durable; a request that fails leaves nothing behind.

use std::collections::HashMap;
use std::sync::Arc;

use domain::catalog::Sku;
use domain::ids::{EventId, StaffId};
use domain::ledger::{
    AdjustmentReason, Approval, CashMovementKind, Event, EventBody, EventMeta, ReturnCompleted,
    SaleCompleted, SaleVoided, StockEffect, stock_movements,
};
use domain::sale::{PricedCart, PricedReturn, Settlement, Tender, price_return};
use domain::{Hlc, Money, Quantity, StoreId, TerminalId};
use ed25519_dalek::SigningKey;
use protocol::chain::{self, GENESIS, Hash};
use sqlx::sqlite::SqliteConnection;
use sqlx::{Acquire, Row, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::shifts::{self, OpenShift};
use crate::views;
use fiscal::rksv::{Amounts, Kind};

/// How many queued requests one commit takes at most.
const MAX_GROUP: usize = 256;

/// Why a write was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The idempotency key was used before with another request.
    #[error("idempotency key `{0}` was already used for a different request")]
    KeyReused(String),
    /// The request cannot be carried out; nothing was written.
    #[error("{message}")]
    Rejected {
        /// Machine-readable code.
        code: &'static str,
        /// The field at fault.
        field: String,
        /// What was wrong.
        message: String,
    },
    /// The request does not fit the terminal's state (no open shift, one already open).
    #[error("{message}")]
    Conflict {
        /// Machine-readable code.
        code: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The referenced thing does not exist.
    #[error("{message}")]
    NotFound {
        /// Machine-readable code.
        code: &'static str,
        /// What was missing.
        message: String,
    },
    /// The database failed; nothing was acknowledged.
    #[error("ledger write failed: {0}")]
    Db(String),
    /// The writer has stopped.
    #[error("the ledger writer has stopped")]
    Stopped,
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        WriteError::Db(e.to_string())
    }
}

fn rejected(code: &'static str, field: impl Into<String>, message: impl ToString) -> WriteError {
    WriteError::Rejected {
        code,
        field: field.into(),
        message: message.to_string(),
    }
}

/// The terminal's last sale, if it can still be voided: the terminal's last event is that sale
/// and none of its goods have come back (they were refunded once; voiding would refund them
/// again).
pub(crate) async fn last_voidable_sale(
    conn: &mut SqliteConnection,
    terminal: &TerminalId,
) -> Result<(Event, SaleCompleted), WriteError> {
    let last = sqlx::query(
        "SELECT id, body, kind FROM events WHERE terminal = $1 AND kind NOT IN ('FiscalReceipt', 'KeyRotated') ORDER BY seq DESC LIMIT 1",
    )
    .bind(terminal.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(last) = last.filter(|row| row.get::<&str, _>("kind") == "SaleCompleted") else {
        return Err(rejected(
            "nothing_to_void",
            "terminal",
            format!(
                "the last event of terminal {terminal} is not a sale; only the last sale can be voided"
            ),
        ));
    };
    let event = decode_stored(last.get("body"))?;
    let EventBody::SaleCompleted(sale) = event.body.clone() else {
        return Err(WriteError::Db(
            "stored sale does not decode as a sale".into(),
        ));
    };
    let returned: Option<i64> = sqlx::query_scalar(
        "SELECT SUM(milli) FROM (SELECT milli FROM returned_lines WHERE sale_receipt = $1
                                 UNION ALL SELECT milli FROM web_return_lines WHERE sale_receipt = $1)",
    )
    .bind(&sale.receipt)
    .fetch_one(&mut *conn)
    .await?;
    if returned.unwrap_or(0) > 0 {
        return Err(rejected(
            "sale_partly_returned",
            "terminal",
            format!(
                "sale {} has returns; it can no longer be voided",
                sale.receipt
            ),
        ));
    }
    Ok((event, sale))
}

/// A request's idempotency key and the hash of its body.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// The client's key.
    pub key: String,
    /// SHA-256 of method, path and body.
    pub request_hash: [u8; 32],
}

/// A response as recorded for its idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: serde_json::Value,
}

/// A write the ledger can carry out.
#[derive(Debug, Clone)]
pub enum Op {
    /// Record a priced and settled sale.
    Sale {
        /// Terminal.
        terminal: TerminalId,
        /// Cashier.
        cashier: Option<StaffId>,
        /// Priced lines.
        cart: PricedCart,
        /// Tenders.
        tenders: Vec<Tender>,
        /// Settlement.
        settlement: Settlement,
        /// Approvals given for it.
        approvals: Vec<Approval>,
    },
    /// Return lines of an earlier sale, by its receipt number.
    Return {
        /// Terminal taking the return.
        terminal: TerminalId,
        /// The sale's receipt.
        receipt: String,
        /// (line, quantity) pairs.
        lines: Vec<(usize, Quantity)>,
        /// How the refund is paid.
        tender: domain::sale::TenderKind,
        /// The jurisdiction's cash rounding, which a cash refund is paid out in.
        cash_rounding: Option<domain::tax::CashRounding>,
        /// The store credit or gift card account refunded onto, for those tenders.
        reference: Option<String>,
        /// Reason, if given.
        reason: Option<String>,
        /// Approvals given for it.
        approvals: Vec<Approval>,
    },
    /// Return goods without a receipt, priced now.
    ReturnWithoutReceipt {
        /// Terminal.
        terminal: TerminalId,
        /// The refund, already priced.
        refund: PricedReturn,
        /// How it is paid.
        tender: domain::sale::TenderKind,
        /// The store credit or gift card account refunded onto, for those tenders.
        reference: Option<String>,
        /// Why (required).
        reason: String,
        /// Approvals given for it.
        approvals: Vec<Approval>,
    },
    /// Void the terminal's last sale.
    VoidLast {
        /// Terminal.
        terminal: TerminalId,
        /// Why.
        reason: String,
        /// The sale the cashier confirmed voiding, if named.
        receipt: Option<String>,
        /// Approvals given for it.
        approvals: Vec<Approval>,
    },
    /// Adjust stock.
    Adjust {
        /// Terminal.
        terminal: TerminalId,
        /// SKU.
        sku: Sku,
        /// Signed change in thousandths.
        delta_milli: i64,
        /// Why.
        reason: AdjustmentReason,
        /// Note.
        note: Option<String>,
    },
    /// Record a stock count.
    Count {
        /// Terminal.
        terminal: TerminalId,
        /// SKU.
        sku: Sku,
        /// Counted quantity in thousandths.
        counted_milli: i64,
    },
    /// Open a shift with a counted float.
    OpenShift {
        /// Terminal.
        terminal: TerminalId,
        /// Who opens it.
        staff: StaffId,
        /// The counted float.
        float: Money,
    },
    /// Cash paid into or out of the drawer.
    Cash {
        /// Terminal.
        terminal: TerminalId,
        /// In or out.
        kind: CashMovementKind,
        /// How much.
        amount: Money,
        /// Why.
        reason: String,
        /// Approvals given for it.
        approvals: Vec<Approval>,
    },
    /// Pay from the drawer in cash what a return's card refund did not give back.
    CardRefundInCash {
        /// Terminal.
        terminal: TerminalId,
        /// The return's receipt number.
        return_receipt: String,
        /// How much.
        amount: Money,
        /// What the return's earlier `CardRefundInCash` records paid, as the caller read it:
        /// when another record came in between, this one is refused rather than paid twice.
        in_cash_before: i64,
    },
    /// Open the drawer without a sale.
    NoSale {
        /// Terminal.
        terminal: TerminalId,
        /// Who.
        staff: StaffId,
        /// Approvals given for it.
        approvals: Vec<Approval>,
    },
    /// Close the open shift with a blind count.
    CloseShift {
        /// Terminal.
        terminal: TerminalId,
        /// Who counts.
        staff: StaffId,
        /// What was counted.
        counted: Money,
    },
    /// Issue or top up a gift card or store credit account.
    LoadStoredValue {
        /// Terminal.
        terminal: TerminalId,
        /// Issue (`true`) or top up.
        issue: bool,
        /// The account, the amount and how it was paid.
        load: domain::stored_value::StoredValueLoad,
    },
    /// Record a PIN lockout.
    LockOut {
        /// Terminal.
        terminal: TerminalId,
        /// Who is locked out.
        staff: StaffId,
        /// Until when, epoch milliseconds.
        until_ms: i64,
    },
    /// A step of an order from the web: checked against the order as this store holds it
    /// and recorded with it.
    OrderStep {
        /// Terminal.
        terminal: TerminalId,
        /// Who.
        staff: StaffId,
        /// What.
        step: crate::web_orders::Step,
    },
    /// The parcel of a web return arrived at this store: its goods go back into stock.
    ReceiveWebReturn {
        /// Terminal.
        terminal: TerminalId,
        /// Who.
        staff: StaffId,
        /// The return's number or id.
        number: String,
    },
    /// A till commissioned for a fiscal regime makes its start receipt.
    FiscalStart {
        /// Terminal.
        terminal: TerminalId,
    },
    /// A null receipt on demand, or (`close`) the Schlussbeleg that closes the register.
    FiscalNull {
        /// Terminal.
        terminal: TerminalId,
        /// Close the register with it.
        close: bool,
    },
    /// A training receipt (Trainingsbuchung): a priced basket signed as training. Nothing is
    /// sold, no stock moves, no report and no turnover counter counts it.
    FiscalTraining {
        /// Terminal.
        terminal: TerminalId,
        /// The basket, priced as a sale would be.
        cart: PricedCart,
    },
    /// Replace the terminal's signing key: a `KeyRotated` event naming the new key, signed by
    /// the current one; every later event is signed by the new key.
    RotateKey {
        /// Terminal.
        terminal: TerminalId,
        /// The new key.
        key: SigningKey,
    },
    /// Record a card request, its outcome or an offline settlement, with its journal row.
    Card {
        /// Terminal (the till the payment terminal belongs to).
        terminal: TerminalId,
        /// The fact.
        event: domain::card::CardEvent,
        /// The change to the `card_requests` projection, made in the same transaction.
        journal: crate::payments::JournalChange,
    },
}

impl Op {
    fn terminal(&self) -> &TerminalId {
        match self {
            Op::Sale { terminal, .. }
            | Op::Return { terminal, .. }
            | Op::ReturnWithoutReceipt { terminal, .. }
            | Op::VoidLast { terminal, .. }
            | Op::Adjust { terminal, .. }
            | Op::Count { terminal, .. }
            | Op::OpenShift { terminal, .. }
            | Op::Cash { terminal, .. }
            | Op::CardRefundInCash { terminal, .. }
            | Op::NoSale { terminal, .. }
            | Op::CloseShift { terminal, .. }
            | Op::LockOut { terminal, .. }
            | Op::LoadStoredValue { terminal, .. }
            | Op::OrderStep { terminal, .. }
            | Op::ReceiveWebReturn { terminal, .. }
            | Op::FiscalStart { terminal }
            | Op::FiscalNull { terminal, .. }
            | Op::FiscalTraining { terminal, .. }
            | Op::RotateKey { terminal, .. } => terminal,
            Op::Card { terminal, .. } => terminal,
        }
    }

    /// Whether the op needs an open shift on its terminal: everything that moves money or
    /// goods across the counter does; stock-room work and sign-in records do not.
    fn needs_shift(&self) -> bool {
        !matches!(
            self,
            Op::Adjust { .. }
                | Op::Count { .. }
                | Op::OpenShift { .. }
                | Op::LockOut { .. }
                | Op::Card { .. }
                | Op::OrderStep { .. }
                | Op::ReceiveWebReturn { .. }
                | Op::FiscalStart { .. }
                | Op::FiscalNull { .. }
                | Op::FiscalTraining { .. }
                | Op::RotateKey { .. }
        )
    }
}

struct Job {
    key: Option<IdempotencyKey>,
    op: Op,
    reply: oneshot::Sender<Result<Recorded, WriteError>>,
}

/// A handle to the ledger writer.
#[derive(Debug, Clone)]
pub struct Ledger {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("op", &self.op)
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// Appends through the writer and waits until the result is durable.
    pub async fn write(&self, key: Option<IdempotencyKey>, op: Op) -> Result<Recorded, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { key, op, reply })
            .await
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }
}

#[derive(Clone)]
struct TerminalState {
    last_seq: u64,
    last_hash: Hash,
    next_receipt: u64,
    key: SigningKey,
    shift: Option<OpenShift>,
    /// The fiscal regime's register, when the till is commissioned for one.
    fiscal: Option<crate::fiscal::FiscalTill>,
}

#[derive(Clone)]
struct State {
    store: StoreId,
    terminals: HashMap<TerminalId, TerminalState>,
    hlc: Hlc,
}

/// Loads the chain heads and starts the writer task.
pub async fn start(
    pool: SqlitePool,
    store: StoreId,
    keys: HashMap<TerminalId, SigningKey>,
    mut fiscal: HashMap<TerminalId, crate::fiscal::FiscalTill>,
    clock: Arc<dyn Clock>,
    appended: Arc<tokio::sync::Notify>,
) -> Result<Ledger, WriteError> {
    let mut terminals = HashMap::new();
    let mut hlc = Hlc::default();
    for (terminal, key) in keys {
        let head = sqlx::query(
            "SELECT seq, hash, hlc_wall, hlc_counter FROM events WHERE terminal = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(terminal.as_str())
        .fetch_optional(&pool)
        .await?;
        let (last_seq, last_hash) = match &head {
            Some(row) => {
                let seq: i64 = row.get("seq");
                let hash: Vec<u8> = row.get("hash");
                let hash: Hash = hash.try_into().map_err(|_| {
                    WriteError::Db(format!("stored hash of {terminal} is not 32 bytes"))
                })?;
                let event_hlc = Hlc::new(
                    row.get("hlc_wall"),
                    u32::try_from(row.get::<i64, _>("hlc_counter")).unwrap_or(u32::MAX),
                );
                hlc = hlc.max(event_hlc);
                (u64::try_from(seq).unwrap_or(0), hash)
            }
            None => (0, GENESIS),
        };
        let (receipts,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM receipts WHERE terminal = $1")
                .bind(terminal.as_str())
                .fetch_one(&pool)
                .await?;
        let shift = shifts::open_shift(&pool, &terminal).await?;
        let fiscal = fiscal.remove(&terminal);
        terminals.insert(
            terminal,
            TerminalState {
                last_seq,
                last_hash,
                next_receipt: u64::try_from(receipts).unwrap_or(0) + 1,
                key,
                shift,
                fiscal,
            },
        );
    }
    let (jobs, rx) = mpsc::channel(4096);
    let state = State {
        store,
        terminals,
        hlc,
    };
    tokio::spawn(run(rx, pool, state, clock, appended));
    Ok(Ledger { jobs })
}

async fn run(
    mut rx: mpsc::Receiver<Job>,
    pool: SqlitePool,
    mut state: State,
    clock: Arc<dyn Clock>,
    appended: Arc<tokio::sync::Notify>,
) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let before = state.clone();
        match write_group(&pool, &mut state, clock.as_ref(), &jobs).await {
            Ok(results) => {
                for (job, result) in jobs.into_iter().zip(results) {
                    let _ = job.reply.send(result);
                }
                // Wake the outbox: there is something new to push.
                appended.notify_one();
            }
            Err(e) => {
                // The commit failed: nothing of this group is durable, so nothing is acknowledged
                // and the chain heads go back to what is on disk.
                tracing::error!(error = %e, "ledger commit failed");
                state = before;
                for job in jobs {
                    let _ = job.reply.send(Err(WriteError::Db(e.to_string())));
                }
            }
        }
    }
}

async fn write_group(
    pool: &SqlitePool,
    state: &mut State,
    clock: &dyn Clock,
    jobs: &[Job],
) -> Result<Vec<Result<Recorded, WriteError>>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        let before = state.clone();
        match apply(&mut tx, state, clock, job).await {
            Ok(recorded) => results.push(Ok(recorded)),
            Err(WriteError::Db(message)) => {
                // A database failure inside the group fails the whole group: the transaction
                // is dropped (rolled back) and nothing of it is acknowledged.
                *state = before;
                return Err(sqlx::Error::Protocol(message));
            }
            Err(e) => {
                // `apply` refuses a request before its first write, so there is nothing of it
                // to undo in the transaction; only the in-memory heads go back.
                *state = before;
                results.push(Err(e));
            }
        }
    }
    tx.commit().await?;
    Ok(results)
}

/// What the drawer has paid in cash of return `receipt`'s card refund, minor units.
pub(crate) async fn card_refund_in_cash(
    conn: &mut SqliteConnection,
    receipt: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(minor), 0) FROM card_refunds_in_cash WHERE return_receipt = $1",
    )
    .bind(receipt)
    .fetch_one(conn)
    .await
}

/// Carries out one request. Every check that can refuse it runs before its first write, so a
/// refusal leaves the transaction untouched; after the first write only a database error can
/// fail it, and that fails the whole group.
async fn apply(
    conn: &mut SqliteConnection,
    state: &mut State,
    clock: &dyn Clock,
    job: &Job,
) -> Result<Recorded, WriteError> {
    if let Some(key) = &job.key {
        if let Some(recorded) = recorded_response(&mut *conn, key).await? {
            return Ok(recorded);
        }
    }
    let terminal = job.op.terminal().clone();
    let Some(open) = state.terminals.get(&terminal).map(|t| t.shift.clone()) else {
        return Err(WriteError::NotFound {
            code: "unknown_terminal",
            message: format!("terminal `{terminal}` is not hosted by this node"),
        });
    };
    if job.op.needs_shift() && open.is_none() {
        return Err(WriteError::Conflict {
            code: "no_open_shift",
            message: format!(
                "terminal {terminal} has no open shift: open one with a counted float first"
            ),
        });
    }
    let recorded = match &job.op {
        Op::Sale {
            cashier,
            cart,
            tenders,
            settlement,
            approvals,
            ..
        } => {
            let per_rate = gross_per_rate(cart.lines.iter().map(|l| (&l.taxes, l.gross)), 1);
            fiscal_check(state, clock, &terminal, &per_rate)?;
            crate::payments::check_card_tenders(conn, &terminal, tenders).await?;
            let receipt = next_receipt(state, &terminal);
            let body = EventBody::SaleCompleted(SaleCompleted {
                receipt: receipt.clone(),
                cashier: cashier.clone(),
                cart: cart.clone(),
                tenders: tenders.clone(),
                settlement: settlement.clone(),
                approvals: approvals.clone(),
            });
            let event = append(conn, state, clock, &terminal, body).await?;
            index_receipt(conn, &receipt, &event, "sale").await?;
            crate::payments::use_card_tenders(conn, &terminal, tenders, &receipt).await?;
            fiscal_receipt(
                conn,
                state,
                clock,
                &terminal,
                &receipt,
                Kind::Standard,
                &per_rate,
            )
            .await?;
            Recorded {
                status: 201,
                body: views::event_view(&event),
            }
        }
        Op::Return {
            receipt: original,
            lines,
            tender,
            cash_rounding,
            reference,
            reason,
            approvals,
            ..
        } => {
            let sale = sale_by_receipt(conn, original).await?;
            let voided: Option<String> =
                sqlx::query_scalar("SELECT sale_receipt FROM voided_sales WHERE sale_receipt = $1")
                    .bind(original)
                    .fetch_optional(&mut *conn)
                    .await?;
            if voided.is_some() {
                return Err(rejected(
                    "sale_voided",
                    "receipt",
                    format!("sale {original} was voided; nothing is left to return"),
                ));
            }
            let returned = returned_milli(conn, original, sale.cart.lines.len()).await?;
            let refund =
                price_return(&sale.cart, &sale.settlement, &returned, lines).map_err(|e| {
                    // Asked for no more than was sold, but earlier returns took it: a second
                    // press of Refund, or the same return from another till. A conflict with
                    // what is recorded, not a bad request.
                    if let domain::sale::SaleError::ReturnExceedsSold { line, sold, .. } = &e {
                        let asked: i64 = lines
                            .iter()
                            .filter(|(l, _)| l == line)
                            .map(|(_, q)| q.milli())
                            .sum();
                        if returned.get(*line).is_some_and(|r| *r > 0) && asked <= sold.milli() {
                            return WriteError::Conflict {
                                code: "already_returned",
                                message: format!(
                                    "line {line} of sale {original} was already returned ({e}); nothing was recorded or paid out"
                                ),
                            };
                        }
                    }
                    let field = match &e {
                        domain::sale::SaleError::NoSuchLine { index, .. } => {
                            format!("lines[{index}].line")
                        }
                        domain::sale::SaleError::ReturnExceedsSold { line, .. } => lines
                            .iter()
                            .position(|(l, _)| l == line)
                            .map_or_else(|| "lines".to_owned(), |i| format!("lines[{i}].quantity")),
                        _ => "lines".to_owned(),
                    };
                    rejected("return_exceeds_sale", field, e)
                })?;
            let held_back: i64 =
                sqlx::query_scalar("SELECT minor FROM refund_held_back WHERE sale_receipt = $1")
                    .bind(original)
                    .fetch_optional(&mut *conn)
                    .await?
                    .unwrap_or(0);
            fiscal_check(
                state,
                clock,
                &terminal,
                &gross_per_rate(refund.lines.iter().map(|l| (&l.taxes, l.gross)), -1),
            )?;
            let currency = refund.total.currency();
            let payout = domain::sale::pay_out_refund(
                refund,
                *tender,
                *cash_rounding,
                domain::Money::from_minor(held_back, currency),
            )
            .map_err(|e| rejected("return_exceeds_sale", "lines", e))?;
            let refund = payout.refund;
            sqlx::query(
                "INSERT INTO refund_held_back (sale_receipt, minor) VALUES ($1, $2)
                 ON CONFLICT (sale_receipt) DO UPDATE SET minor = excluded.minor",
            )
            .bind(original)
            .bind(payout.held_back.minor())
            .execute(&mut *conn)
            .await?;
            let receipt = next_receipt(state, &terminal);
            let body = EventBody::ReturnCompleted(ReturnCompleted {
                receipt: receipt.clone(),
                original_receipt: Some(original.clone()),
                reason: reason.clone(),
                tenders: vec![Tender {
                    kind: *tender,
                    amount: refund.refund,
                    reference: reference.clone(),
                }],
                refund,
                approvals: approvals.clone(),
            });
            let event = append(conn, state, clock, &terminal, body).await?;
            for (line, quantity) in lines {
                sqlx::query(
                    "INSERT INTO returned_lines (sale_receipt, line, milli) VALUES ($1, $2, $3)
                     ON CONFLICT (sale_receipt, line) DO UPDATE SET milli = milli + excluded.milli",
                )
                .bind(original)
                .bind(i64::try_from(*line).unwrap_or(i64::MAX))
                .bind(quantity.milli())
                .execute(&mut *conn)
                .await?;
            }
            index_receipt(conn, &receipt, &event, "return").await?;
            if let EventBody::ReturnCompleted(ret) = &event.body {
                let per_rate =
                    gross_per_rate(ret.refund.lines.iter().map(|l| (&l.taxes, l.gross)), -1);
                fiscal_receipt(
                    conn,
                    state,
                    clock,
                    &terminal,
                    &receipt,
                    Kind::Standard,
                    &per_rate,
                )
                .await?;
            }
            Recorded {
                status: 201,
                body: views::event_view(&event),
            }
        }
        Op::ReturnWithoutReceipt {
            refund,
            tender,
            reference,
            reason,
            approvals,
            ..
        } => {
            let per_rate = gross_per_rate(refund.lines.iter().map(|l| (&l.taxes, l.gross)), -1);
            fiscal_check(state, clock, &terminal, &per_rate)?;
            let receipt = next_receipt(state, &terminal);
            let body = EventBody::ReturnCompleted(ReturnCompleted {
                receipt: receipt.clone(),
                original_receipt: None,
                reason: Some(reason.clone()),
                tenders: vec![Tender {
                    kind: *tender,
                    amount: refund.refund,
                    reference: reference.clone(),
                }],
                refund: refund.clone(),
                approvals: approvals.clone(),
            });
            let event = append(conn, state, clock, &terminal, body).await?;
            index_receipt(conn, &receipt, &event, "return").await?;
            fiscal_receipt(
                conn,
                state,
                clock,
                &terminal,
                &receipt,
                Kind::Standard,
                &per_rate,
            )
            .await?;
            Recorded {
                status: 201,
                body: views::event_view(&event),
            }
        }
        Op::VoidLast {
            reason,
            receipt: confirmed,
            approvals,
            ..
        } => {
            // A closed register rings no storno either.
            fiscal_check(state, clock, &terminal, &[])?;
            let (event, sale) = last_voidable_sale(&mut *conn, &terminal).await?;
            // The cashier confirmed one sale; another sale since (on this terminal) is not it.
            if let Some(confirmed) = confirmed.as_ref().filter(|r| **r != sale.receipt) {
                return Err(rejected(
                    "not_last_sale",
                    "receipt",
                    format!(
                        "sale {confirmed} is no longer the last sale of terminal {terminal} (the last is {}); look again before voiding",
                        sale.receipt
                    ),
                ));
            }
            let body = EventBody::SaleVoided(SaleVoided {
                sale: event.meta.id,
                receipt: sale.receipt.clone(),
                reason: reason.clone(),
                lines: sale
                    .cart
                    .lines
                    .iter()
                    .map(|l| (l.sku.clone(), l.quantity))
                    .collect(),
                refund: sale.settlement.due,
                approvals: approvals.clone(),
            });
            let voided = append(conn, state, clock, &terminal, body).await?;
            sqlx::query("INSERT INTO voided_sales (sale_receipt) VALUES ($1)")
                .bind(&sale.receipt)
                .execute(&mut *conn)
                .await?;
            // The fiscal regime's cancellation of the sale: a storno receipt of its own number.
            if state
                .terminals
                .get(&terminal)
                .is_some_and(|t| t.fiscal.is_some())
            {
                let storno = next_receipt(state, &terminal);
                let per_rate =
                    gross_per_rate(sale.cart.lines.iter().map(|l| (&l.taxes, l.gross)), -1);
                fiscal_receipt(
                    conn,
                    state,
                    clock,
                    &terminal,
                    &storno,
                    Kind::Storno,
                    &per_rate,
                )
                .await?;
            }
            Recorded {
                status: 201,
                body: views::event_view(&voided),
            }
        }
        Op::Adjust {
            sku,
            delta_milli,
            reason,
            note,
            ..
        } => {
            let body = EventBody::StockAdjusted {
                sku: sku.clone(),
                delta_milli: *delta_milli,
                reason: *reason,
                note: note.clone(),
            };
            let event = append(conn, state, clock, &terminal, body).await?;
            Recorded {
                status: 201,
                body: views::event_view(&event),
            }
        }
        Op::OrderStep { staff, step, .. } => {
            let (order, status, lines) = crate::web_orders::check(conn, step).await?;
            let store_credit = match &step.store_credit {
                None => None,
                Some(account) => {
                    let value = crate::web_orders::value_of(&order, &lines)
                        .filter(domain::Money::is_positive)
                        .ok_or_else(|| WriteError::Rejected {
                            code: "invalid_field",
                            field: "lines".into(),
                            message: "the returned lines are worth nothing at the order's prices: no store credit to give".into(),
                        })?;
                    Some((account.clone(), value))
                }
            };
            let body = EventBody::OrderStep(domain::ledger::OrderStep {
                order: order.entity.id.clone(),
                number: order.entity.number.clone(),
                step: step.step.clone(),
                lines: lines.clone(),
                sale_receipt: step.sale_receipt.clone(),
                store_credit,
                staff: staff.clone(),
            });
            let event = append(conn, state, clock, &terminal, body).await?;
            crate::web_orders::record(conn, &order, status, &step.step, &lines).await?;
            Recorded {
                status: 201,
                body: views::event_view(&event),
            }
        }
        Op::ReceiveWebReturn { staff, number, .. } => {
            let received =
                crate::web_returns::check_receive(conn, state.store.as_str(), number, staff)
                    .await?;
            let id = received.web_return.clone();
            let event = append(
                conn,
                state,
                clock,
                &terminal,
                EventBody::ReturnReceived(received),
            )
            .await?;
            crate::web_returns::record_received(conn, &id).await?;
            Recorded {
                status: 201,
                body: views::event_view(&event),
            }
        }
        Op::RotateKey { key, .. } => {
            let public_key = crate::keys::public_bytes(key);
            append(
                conn,
                state,
                clock,
                &terminal,
                EventBody::KeyRotated { public_key },
            )
            .await?;
            sqlx::query("UPDATE terminals SET public_key = $1 WHERE id = $2")
                .bind(&public_key[..])
                .bind(terminal.as_str())
                .execute(&mut *conn)
                .await?;
            if let Some(head) = state.terminals.get_mut(&terminal) {
                head.key = key.clone();
            }
            Recorded {
                status: 201,
                body: serde_json::json!({
                    "terminal": terminal.to_string(),
                    "public_key": hex::encode(public_key),
                }),
            }
        }
        Op::FiscalStart { .. } => {
            let Some(till) = state
                .terminals
                .get(&terminal)
                .and_then(|t| t.fiscal.as_ref())
            else {
                return Err(WriteError::Conflict {
                    code: "not_commissioned",
                    message: format!("terminal {terminal} is not commissioned for a fiscal regime"),
                });
            };
            if till.started() {
                return Err(WriteError::Conflict {
                    code: "started_already",
                    message: format!("terminal {terminal} has made its start receipt already"),
                });
            }
            let number = next_receipt(state, &terminal);
            fiscal_receipt(conn, state, clock, &terminal, &number, Kind::Start, &[]).await?;
            Recorded {
                status: 201,
                body: serde_json::json!({"terminal": terminal.to_string(), "receipt": number}),
            }
        }
        Op::FiscalNull { close, .. } => {
            started_register(state, &terminal)?;
            let number = next_receipt(state, &terminal);
            let qr =
                fiscal_receipt(conn, state, clock, &terminal, &number, Kind::Null, &[]).await?;
            if *close {
                if let Some(till) = state
                    .terminals
                    .get_mut(&terminal)
                    .and_then(|t| t.fiscal.as_mut())
                {
                    till.close(conn, &terminal, &number).await?;
                }
            }
            Recorded {
                status: 201,
                body: serde_json::json!({
                    "terminal": terminal.to_string(),
                    "receipt": number,
                    "closed": *close,
                    "qr": qr,
                }),
            }
        }
        Op::FiscalTraining { cart, .. } => {
            started_register(state, &terminal)?;
            let per_rate = gross_per_rate(cart.lines.iter().map(|l| (&l.taxes, l.gross)), 1);
            fiscal_check(state, clock, &terminal, &per_rate)?;
            let number = next_receipt(state, &terminal);
            let qr = fiscal_receipt(
                conn,
                state,
                clock,
                &terminal,
                &number,
                Kind::Training,
                &per_rate,
            )
            .await?;
            Recorded {
                status: 201,
                body: serde_json::json!({
                    "terminal": terminal.to_string(),
                    "receipt": number,
                    "training": true,
                    "cart": protocol::api::CartView::new(cart, None),
                    "qr": qr,
                }),
            }
        }
        Op::Count {
            sku, counted_milli, ..
        } => {
            let body = EventBody::StockCounted {
                sku: sku.clone(),
                counted_milli: *counted_milli,
            };
            let event = append(conn, state, clock, &terminal, body).await?;
            Recorded {
                status: 201,
                body: views::event_view(&event),
            }
        }
        Op::OpenShift { staff, float, .. } => {
            if let Some(shift) = &open {
                return Err(WriteError::Conflict {
                    code: "shift_already_open",
                    message: format!(
                        "terminal {terminal} already has shift {} open (by {}); close it first",
                        shift.id, shift.staff
                    ),
                });
            }
            let id = uuid::Uuid::now_v7().to_string();
            let body = EventBody::ShiftOpened {
                shift: id.clone(),
                staff: staff.clone(),
                float: *float,
            };
            let event = append(conn, state, clock, &terminal, body).await?;
            let shift = OpenShift {
                id,
                staff: staff.clone(),
                float: *float,
                opened_seq: event.meta.seq,
                opened_ms: event.meta.hlc.wall_ms(),
            };
            shifts::record_open(conn, &terminal, &shift).await?;
            set_shift(state, &terminal, Some(shift.clone()));
            Recorded {
                status: 201,
                body: shifts::shift_view(&terminal, &shift),
            }
        }
        Op::Cash {
            kind,
            amount,
            reason,
            approvals,
            ..
        } => {
            let shift = open.as_ref().map(|s| s.id.clone()).unwrap_or_default();
            let body = EventBody::CashMovement {
                shift,
                kind: *kind,
                amount: *amount,
                reason: reason.clone(),
                approvals: approvals.clone(),
            };
            let event = append(conn, state, clock, &terminal, body).await?;
            Recorded {
                status: 201,
                body: views::event_view(&event),
            }
        }
        Op::CardRefundInCash {
            return_receipt,
            amount,
            in_cash_before,
            ..
        } => {
            let before = card_refund_in_cash(&mut *conn, return_receipt).await?;
            if before != *in_cash_before {
                return Err(WriteError::Conflict {
                    code: "card_refund_changed",
                    message: format!(
                        "return {return_receipt}'s card refund was paid in cash by another request meanwhile; nothing was recorded: ask again"
                    ),
                });
            }
            let body = EventBody::CardRefundPaidInCash {
                return_receipt: return_receipt.clone(),
                amount: *amount,
            };
            let event = append(conn, state, clock, &terminal, body).await?;
            sqlx::query(
                "INSERT INTO card_refunds_in_cash (event_id, return_receipt, minor) VALUES ($1, $2, $3)",
            )
            .bind(event.meta.id.to_string())
            .bind(return_receipt)
            .bind(amount.minor())
            .execute(&mut *conn)
            .await?;
            Recorded {
                status: 201,
                body: views::event_view(&event),
            }
        }
        Op::NoSale {
            staff, approvals, ..
        } => {
            let shift = open.as_ref().map(|s| s.id.clone()).unwrap_or_default();
            let body = EventBody::NoSale {
                shift,
                staff: staff.clone(),
                approvals: approvals.clone(),
            };
            let event = append(conn, state, clock, &terminal, body).await?;
            Recorded {
                status: 201,
                body: views::event_view(&event),
            }
        }
        Op::CloseShift { staff, counted, .. } => {
            let Some(shift) = open else {
                return Err(WriteError::Db("shift vanished".into()));
            };
            let up_to_seq = state.terminals.get(&terminal).map_or(0, |t| t.last_seq);
            let tally = shifts::tally(conn, &terminal, &shift, up_to_seq).await?;
            let expected = tally
                .expected_cash()
                .map_err(|e| rejected("invalid_count", "counted", e))?;
            if expected.currency() != counted.currency() {
                return Err(rejected(
                    "invalid_count",
                    "counted",
                    "the count is not in the drawer's currency",
                ));
            }
            let body = EventBody::ShiftClosed {
                shift: shift.id.clone(),
                staff: staff.clone(),
                up_to_seq,
                expected,
                counted: *counted,
            };
            let event = append(conn, state, clock, &terminal, body).await?;
            shifts::record_close(conn, &shift, up_to_seq, expected, *counted).await?;
            set_shift(state, &terminal, None);
            Recorded {
                status: 201,
                body: shifts::report_view(&terminal, &shift, &tally, Some((*counted, &event))),
            }
        }
        Op::LoadStoredValue { issue, load, .. } => {
            crate::payments::check_card_tenders(conn, &terminal, &load.tenders).await?;
            let body = if *issue {
                EventBody::StoredValueIssued(load.clone())
            } else {
                EventBody::StoredValueToppedUp(load.clone())
            };
            let event = append(conn, state, clock, &terminal, body).await?;
            // The card payment is used by the account it loaded (there is no receipt number).
            crate::payments::use_card_tenders(
                conn,
                &terminal,
                &load.tenders,
                &load.account.to_string(),
            )
            .await?;
            Recorded {
                status: 201,
                body: views::event_view(&event),
            }
        }
        Op::LockOut {
            staff, until_ms, ..
        } => {
            let body = EventBody::StaffLockedOut {
                staff: staff.clone(),
                until_ms: *until_ms,
            };
            let event = append(conn, state, clock, &terminal, body).await?;
            Recorded {
                status: 201,
                body: views::event_view(&event),
            }
        }
        Op::Card { event, journal, .. } => {
            let body = EventBody::Card(event.clone());
            let event = append(conn, state, clock, &terminal, body).await?;
            crate::payments::project(conn, &terminal, journal).await?;
            Recorded {
                status: 201,
                body: views::event_view(&event),
            }
        }
    };
    if let Some(key) = &job.key {
        sqlx::query(
            "INSERT INTO idempotency (key, request_hash, status, response) VALUES ($1, $2, $3, $4)",
        )
        .bind(&key.key)
        .bind(&key.request_hash[..])
        .bind(i64::from(recorded.status))
        .bind(recorded.body.to_string())
        .execute(&mut *conn)
        .await?;
    }
    Ok(recorded)
}

/// The response recorded for `key`, if the same request was made before; an error if the key
/// was used for a different request.
pub async fn recorded_response(
    conn: &mut SqliteConnection,
    key: &IdempotencyKey,
) -> Result<Option<Recorded>, WriteError> {
    let row = sqlx::query("SELECT request_hash, status, response FROM idempotency WHERE key = $1")
        .bind(&key.key)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let hash: Vec<u8> = row.get("request_hash");
    if hash != key.request_hash {
        return Err(WriteError::KeyReused(key.key.clone()));
    }
    let status: i64 = row.get("status");
    let body: String = row.get("response");
    Ok(Some(Recorded {
        status: u16::try_from(status).unwrap_or(500),
        body: serde_json::from_str(&body).map_err(|e| WriteError::Db(e.to_string()))?,
    }))
}

fn set_shift(state: &mut State, terminal: &TerminalId, shift: Option<OpenShift>) {
    if let Some(t) = state.terminals.get_mut(terminal) {
        t.shift = shift;
    }
}

/// Gross amounts per tax rate (the percentage as text, cents times `sign`) of priced lines.
fn gross_per_rate<'a>(
    lines: impl Iterator<Item = (&'a Vec<domain::sale::LineTax>, domain::Money)>,
    sign: i64,
) -> Vec<(String, i64)> {
    lines
        .map(|(taxes, gross)| {
            let rate = taxes
                .iter()
                .map(|t| t.rate.percent())
                .reduce(|a, b| a + b)
                .map_or_else(|| "0".to_owned(), |r| r.normalize().to_string());
            (rate, gross.minor() * sign)
        })
        .collect()
}

/// The fiscal document of `receipt` on a commissioned till, each its own `FiscalReceipt`
/// event chained after the receipt: first the regime's receipts that are due (the month's null
/// receipt, the Sammelbeleg after an outage), then this one. Nothing on a till that is not
/// commissioned, or has not made its start receipt yet (then only the start receipt itself).
async fn fiscal_receipt(
    conn: &mut SqliteConnection,
    state: &mut State,
    clock: &dyn Clock,
    terminal: &TerminalId,
    receipt: &str,
    kind: Kind,
    per_rate: &[(String, i64)],
) -> Result<Option<String>, WriteError> {
    let Some(mut till) = state.terminals.get(terminal).and_then(|t| t.fiscal.clone()) else {
        return Ok(None);
    };
    if !till.started() && kind != Kind::Start {
        return Ok(None);
    }
    let at = till.local(clock.now().millis().max(state.hlc.wall_ms()));
    let amounts = till
        .amounts(per_rate, at.date())
        .map_err(|e| WriteError::Db(format!("fiscal receipt: {e}")))?;
    let failed = |e: fiscal::rksv::RksvError| WriteError::Db(format!("fiscal receipt: {e}"));
    let mut due = Vec::new();
    if kind != Kind::Start && till.month_due(&at) {
        due.push(Kind::Null);
    }
    due.push(kind);
    let mut sammelbeleg_made = false;
    let mut asked = None;
    while let Some(next) = due.first().copied() {
        // A receipt due before this one is a null receipt, numbered here.
        let before = next != kind;
        let number = if before {
            next_receipt(state, terminal)
        } else {
            receipt.to_owned()
        };
        let amounts = if before { Amounts::default() } else { amounts };
        let signed = match till.sign(&number, at.clone(), next, amounts) {
            Err(fiscal::rksv::RksvError::SammelbelegDue) if !sammelbeleg_made => {
                sammelbeleg_made = true;
                due.insert(0, Kind::Null);
                continue;
            }
            other => other.map_err(failed)?,
        };
        due.remove(0);
        let event = append(
            conn,
            state,
            clock,
            terminal,
            EventBody::FiscalReceipt(signed.clone()),
        )
        .await?;
        // A sale's or a return's number is theirs; the regime's own receipts are indexed here.
        if next != Kind::Standard {
            index_receipt(conn, &number, &event, "fiscal").await?;
        }
        till.record(conn, terminal, event.meta.seq, &signed).await?;
        if number == receipt {
            asked = fiscal::rksv::qr_text(&signed.document);
        }
    }
    if let Some(t) = state.terminals.get_mut(terminal) {
        t.fiscal = Some(till);
    }
    Ok(asked)
}

/// Refuses, before anything is written, a receipt whose rates the till's fiscal regime has no
/// column for (a rate a jurisdiction was given that the regime's table does not know).
fn fiscal_check(
    state: &State,
    clock: &dyn Clock,
    terminal: &TerminalId,
    per_rate: &[(String, i64)],
) -> Result<(), WriteError> {
    let started = state
        .terminals
        .get(terminal)
        .and_then(|t| t.fiscal.as_ref())
        .is_some_and(|t| t.started());
    if !started {
        return Ok(());
    }
    let till = started_register(state, terminal)?;
    let day = till.local(clock.now().millis()).date();
    till.amounts(per_rate, day)
        .map(|_| ())
        .map_err(|e| rejected("fiscal_rate", "lines", e.to_string()))
}

/// The register of `terminal` when it may sign a receipt of its own: commissioned, started
/// and not closed.
fn started_register<'s>(
    state: &'s State,
    terminal: &TerminalId,
) -> Result<&'s crate::fiscal::FiscalTill, WriteError> {
    let till = state
        .terminals
        .get(terminal)
        .and_then(|t| t.fiscal.as_ref())
        .filter(|t| t.started())
        .ok_or_else(|| WriteError::Conflict {
            code: "not_commissioned",
            message: format!(
                "terminal {terminal} is not commissioned for a fiscal regime (or has not made its start receipt)"
            ),
        })?;
    match till.closed() {
        Some(closed) => Err(WriteError::Conflict {
            code: "register_closed",
            message: format!(
                "the register of terminal {terminal} was closed with receipt {closed}: this till rings no more receipts"
            ),
        }),
        None => Ok(till),
    }
}

fn next_receipt(state: &mut State, terminal: &TerminalId) -> String {
    let Some(t) = state.terminals.get_mut(terminal) else {
        return String::new();
    };
    let number = format!("{terminal}-{:06}", t.next_receipt);
    t.next_receipt += 1;
    number
}

/// Appends one event: next sequence number, next clock reading, chain link, signature; and
/// applies its stock movements to the local projection.
async fn append(
    conn: &mut SqliteConnection,
    state: &mut State,
    clock: &dyn Clock,
    terminal: &TerminalId,
    body: EventBody,
) -> Result<Event, WriteError> {
    state.hlc = state.hlc.tick(clock.now());
    let store = state.store.clone();
    let hlc = state.hlc;
    let head = state
        .terminals
        .get_mut(terminal)
        .ok_or_else(|| WriteError::Db(format!("terminal {terminal} vanished")))?;
    let event = Event {
        meta: EventMeta {
            id: EventId::from_uuid(uuid::Uuid::now_v7()),
            store,
            terminal: terminal.clone(),
            seq: head.last_seq + 1,
            hlc,
        },
        body,
    };
    let bytes = protocol::event::encode(&event);
    let hash = chain::link(&head.last_hash, &bytes);
    let signature = chain::sign(&head.key, &hash);
    sqlx::query(
        "INSERT INTO events (terminal, seq, id, hlc_wall, hlc_counter, kind, body, hash, signature)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(terminal.as_str())
    .bind(i64::try_from(event.meta.seq).unwrap_or(i64::MAX))
    .bind(event.meta.id.to_string())
    .bind(hlc.wall_ms())
    .bind(i64::from(hlc.counter()))
    .bind(event.body.kind())
    .bind(&bytes)
    .bind(&hash[..])
    .bind(&signature[..])
    .execute(&mut *conn)
    .await?;
    head.last_seq += 1;
    head.last_hash = hash;
    apply_stock(conn, &event).await?;
    crate::stored_value::record(conn, &event).await?;
    Ok(event)
}

/// Applies an event's stock movements to the local projection in one statement per kind, and
/// records them per terminal and sequence (see `local_moves`).
async fn apply_stock(conn: &mut SqliteConnection, event: &Event) -> Result<(), WriteError> {
    let mut moves: std::collections::BTreeMap<Sku, i64> = std::collections::BTreeMap::new();
    for movement in stock_movements(event) {
        if movement.location != event.meta.store {
            continue;
        }
        let (delta, counted) = match movement.effect {
            StockEffect::Move(d) => (Some(d), None),
            StockEffect::Count(c) => (None, Some(c)),
        };
        sqlx::query(
            "INSERT INTO local_moves (terminal, seq, sku, hlc_wall, hlc_counter, delta, counted)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (sku, terminal, seq) DO UPDATE SET delta = COALESCE(delta, 0) + COALESCE(excluded.delta, 0)",
        )
        .bind(event.meta.terminal.as_str())
        .bind(i64::try_from(event.meta.seq).unwrap_or(i64::MAX))
        .bind(movement.sku.as_str())
        .bind(event.meta.hlc.wall_ms())
        .bind(i64::from(event.meta.hlc.counter()))
        .bind(delta)
        .bind(counted)
        .execute(&mut *conn)
        .await?;
        match movement.effect {
            StockEffect::Move(delta) => *moves.entry(movement.sku).or_default() += delta,
            // Local events are appended in clock order, so a count simply sets on-hand.
            StockEffect::Count(counted) => {
                sqlx::query(
                    "INSERT INTO stock (sku, on_hand_milli) VALUES ($1, $2)
                     ON CONFLICT (sku) DO UPDATE SET on_hand_milli = excluded.on_hand_milli",
                )
                .bind(movement.sku.as_str())
                .bind(counted)
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    if moves.is_empty() {
        return Ok(());
    }
    let placeholders: Vec<String> = (0..moves.len())
        .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
        .collect();
    let sql = format!(
        "INSERT INTO stock (sku, on_hand_milli) VALUES {}
         ON CONFLICT (sku) DO UPDATE SET on_hand_milli = on_hand_milli + excluded.on_hand_milli",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (sku, delta) in &moves {
        query = query.bind(sku.as_str()).bind(*delta);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

async fn index_receipt(
    conn: &mut SqliteConnection,
    receipt: &str,
    event: &Event,
    kind: &str,
) -> Result<(), WriteError> {
    sqlx::query("INSERT INTO receipts (number, terminal, seq, kind) VALUES ($1, $2, $3, $4)")
        .bind(receipt)
        .bind(event.meta.terminal.as_str())
        .bind(i64::try_from(event.meta.seq).unwrap_or(i64::MAX))
        .bind(kind)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn decode_stored(bytes: Vec<u8>) -> Result<Event, WriteError> {
    protocol::event::decode(&bytes).map_err(|e| WriteError::Db(format!("stored event: {e}")))
}

async fn sale_by_receipt(
    conn: &mut SqliteConnection,
    receipt: &str,
) -> Result<SaleCompleted, WriteError> {
    let row = sqlx::query(
        "SELECT e.body FROM receipts r JOIN events e ON e.terminal = r.terminal AND e.seq = r.seq
         WHERE r.number = $1 AND r.kind = 'sale'",
    )
    .bind(receipt)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Err(WriteError::NotFound {
            code: "unknown_receipt",
            message: format!("no sale with receipt `{receipt}`"),
        });
    };
    match decode_stored(row.get("body"))?.body {
        EventBody::SaleCompleted(sale) => Ok(sale),
        _ => Err(WriteError::Db(format!(
            "receipt {receipt} does not point at a sale"
        ))),
    }
}

async fn returned_milli(
    conn: &mut SqliteConnection,
    receipt: &str,
    lines: usize,
) -> Result<Vec<i64>, WriteError> {
    let mut returned = vec![0; lines];
    let rows = sqlx::query("SELECT line, milli FROM returned_lines WHERE sale_receipt = $1")
        .bind(receipt)
        .fetch_all(&mut *conn)
        .await?;
    for row in rows {
        let line: i64 = row.get("line");
        if let Some(slot) = usize::try_from(line).ok().and_then(|l| returned.get_mut(l)) {
            *slot = row.get("milli");
        }
    }
    // What the web shop took back of the sale is returned too.
    crate::web_returns::add_returned(conn, receipt, &mut returned).await?;
    Ok(returned)
}
