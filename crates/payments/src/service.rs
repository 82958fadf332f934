//! Card payments with recovery: every request is recorded as in flight before it leaves, and a
//! lost answer is recovered by asking the terminal for the outcome (`TransactionStatus` on the
//! lost ServiceID) before the money is ever asked for again. Offline approvals wait in a queue
//! under per-store limits until the terminal reports their final outcome.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::link::{LinkError, TerminalLink, new_service_id};
use crate::nexo::{
    Amount, AmountsReq, GetTotalsRequest, MessageReference, OriginalPoiTransaction, PaymentData,
    PaymentRequest, PaymentResponse, PaymentTransaction, ReconciliationRequest, ReversalRequest,
    ReversalResponse, SaleData, SaleToPoiRequest, SaleToPoiResponse, TransactionIdentification,
    TransactionStatusRequest,
};
use crate::pan::{MaskedPan, clean_text, filter_additional_response};

/// What an in-flight request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpKind {
    /// Take money.
    Payment,
    /// Give money back to the original card, referenced to its transaction.
    Refund,
    /// Undo a whole payment.
    Reversal,
    /// Give money back to whatever card the customer presents on the terminal, referenced to no
    /// payment (a return without one to refund to): a `PaymentRequest` of `PaymentType`
    /// `Refund`.
    UnreferencedRefund,
}

impl OpKind {
    /// The nexo `MessageCategory` of the request, which recovery names when it asks the terminal
    /// about it.
    fn category(self) -> &'static str {
        match self {
            OpKind::Payment | OpKind::UnreferencedRefund => "Payment",
            OpKind::Refund | OpKind::Reversal => "Reversal",
        }
    }
}

/// A request recorded before it leaves for the terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    /// Its ServiceID: what recovery asks about.
    pub service_id: String,
    /// What it asks for.
    pub kind: OpKind,
    /// The sale (or return) it belongs to.
    pub sale_transaction_id: String,
    /// Amount, minor units.
    pub amount_minor: i64,
    /// Currency code.
    pub currency: String,
    /// Exponent of the currency.
    pub exponent: u32,
    /// For referenced refunds and reversals: the payment's POI transaction id.
    pub original_poi_transaction_id: Option<String>,
    /// The shift it is taken in (offline limits count per shift).
    pub shift_id: Option<String>,
    /// When it was recorded (RFC 3339).
    pub started_at: String,
}

impl InFlight {
    /// A request for a card presented at the terminal (a payment, or a refund to a presented
    /// card), referenced to no earlier payment, recorded now.
    fn card_present(
        service_id: &str,
        kind: OpKind,
        sale_transaction_id: &str,
        amount_minor: i64,
        (currency, exponent): (&str, u32),
        shift_id: Option<&str>,
    ) -> Self {
        Self {
            service_id: service_id.to_owned(),
            kind,
            sale_transaction_id: sale_transaction_id.to_owned(),
            amount_minor,
            currency: currency.to_owned(),
            exponent,
            original_poi_transaction_id: None,
            shift_id: shift_id.map(str::to_owned),
            started_at: now(),
        }
    }
}

/// What Kassa keeps of an approved card payment: references, a masked PAN, a token. There is
/// no field that could hold a card number, track data, a CVV or a PIN block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardPayment {
    /// The terminal's transaction id (`tenderReference.pspReference`).
    pub poi_transaction_id: String,
    /// The PSP reference.
    pub psp_reference: Option<String>,
    /// Authorisation code.
    pub auth_code: Option<String>,
    /// Brand (`visa`, `mc`, …).
    pub brand: Option<String>,
    /// At most BIN and last four.
    #[serde(with = "masked_serde")]
    pub masked_pan: Option<MaskedPan>,
    /// Token or alias for the card.
    pub token: Option<String>,
    /// `Contactless`, `ICC`, …
    pub entry_mode: Option<String>,
    /// Approved offline by the terminal (store-and-forward).
    pub offline: bool,
    /// Authorised amount, minor units (less than asked on a partial approval).
    pub authorised_minor: i64,
    /// Currency code.
    pub currency: String,
}

mod masked_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::pan::MaskedPan;

    #[allow(clippy::ref_option)]
    pub fn serialize<S: Serializer>(v: &Option<MaskedPan>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(m) => s.serialize_some(&m.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MaskedPan>, D::Error> {
        // Re-masked on the way in too: a stored value can never widen.
        Ok(Option::<String>::deserialize(d)?.and_then(|s| MaskedPan::mask(&s)))
    }
}

/// Settlement of an offline approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Settlement {
    /// Approved online, nothing to wait for.
    Online,
    /// Approved offline, not yet forwarded.
    Pending,
    /// Forwarded and approved.
    Settled,
    /// Forwarded and declined after the customer left: an exception for HQ.
    DeclinedLater,
}

/// How a request ended, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Money taken (possibly less than asked).
    Approved {
        /// What Kassa keeps.
        payment: CardPayment,
        /// Offline settlement state.
        settlement: Settlement,
    },
    /// Refused (declined, expired, removed, cancelled…).
    Declined {
        /// nexo `ErrorCondition`.
        condition: String,
        /// Filtered reason for the cashier.
        reason: Option<String>,
    },
    /// The terminal never had it: safe to ask again under a new ServiceID.
    NotProcessed,
    /// Money given back.
    Refunded {
        /// The refund's own POI transaction id.
        poi_transaction_id: String,
        /// Amount, minor units.
        amount_minor: i64,
    },
}

/// One journal row: a request and, once known, its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The request.
    pub op: InFlight,
    /// Its outcome; `None` while in flight.
    pub outcome: Option<Outcome>,
}

/// Journal errors.
#[derive(Debug, thiserror::Error)]
#[error("payment journal: {0}")]
pub struct JournalError(pub String);

/// Durable storage of in-flight requests and outcomes (SQLite in the store node, a file here).
/// `begin` must be durable when it returns: the request leaves only afterwards.
pub trait Journal: Send + Sync {
    /// Records a request before it is sent.
    fn begin(&self, op: &InFlight) -> impl Future<Output = Result<(), JournalError>> + Send;
    /// Records (or replaces) the outcome of a request.
    fn finish(
        &self,
        service_id: &str,
        outcome: &Outcome,
    ) -> impl Future<Output = Result<(), JournalError>> + Send;
    /// Every record, oldest first.
    fn records(&self) -> impl Future<Output = Result<Vec<Record>, JournalError>> + Send;
}

/// A journal in one JSON file, rewritten and fsynced on every change.
#[derive(Debug)]
pub struct FileJournal {
    path: std::path::PathBuf,
    records: Mutex<Vec<Record>>,
}

impl FileJournal {
    /// Opens (or creates) the journal file.
    pub fn open(path: impl Into<std::path::PathBuf>) -> Result<Self, JournalError> {
        let path = path.into();
        let records = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| JournalError(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(JournalError(e.to_string())),
        };
        Ok(Self {
            path,
            records: Mutex::new(records),
        })
    }

    fn write(&self, records: &[Record]) -> Result<(), JournalError> {
        use std::io::Write as _;
        let err = |e: std::io::Error| JournalError(e.to_string());
        let tmp = self.path.with_extension("tmp");
        let bytes = serde_json::to_vec_pretty(records).map_err(|e| JournalError(e.to_string()))?;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Record>> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Journal for FileJournal {
    async fn begin(&self, op: &InFlight) -> Result<(), JournalError> {
        let mut r = self.lock();
        r.push(Record {
            op: op.clone(),
            outcome: None,
        });
        self.write(&r)
    }

    async fn finish(&self, service_id: &str, outcome: &Outcome) -> Result<(), JournalError> {
        let mut r = self.lock();
        let Some(rec) = r.iter_mut().find(|x| x.op.service_id == service_id) else {
            return Err(JournalError(format!("no request {service_id}")));
        };
        rec.outcome = Some(outcome.clone());
        self.write(&r)
    }

    async fn records(&self) -> Result<Vec<Record>, JournalError> {
        Ok(self.lock().clone())
    }
}

/// Per-store limits on offline approvals, checked before the terminal is asked while it is
/// known to be offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflineLimits {
    /// Largest single offline payment.
    pub per_transaction_minor: i64,
    /// Sum of offline payments in one shift.
    pub per_shift_minor: i64,
    /// Sum of offline payments not yet settled, across shifts.
    pub outstanding_minor: i64,
}

/// Why a card operation did not complete.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// An earlier request's outcome is still unknown; nothing new is sent until it is.
    #[error("request {service_id} is still unresolved: ask the terminal again before charging")]
    Unresolved {
        /// The unresolved ServiceID.
        service_id: String,
    },
    /// The outcome of this request could not be learnt yet; it stays in flight.
    #[error("outcome of {service_id} unknown: {cause}")]
    OutcomeUnknown {
        /// The ServiceID.
        service_id: String,
        /// The link error.
        cause: LinkError,
    },
    /// The terminal could not be reached; nothing was sent.
    #[error("terminal unreachable: {0}")]
    Unreachable(LinkError),
    /// A limit on offline approvals would be exceeded.
    #[error("offline limit {limit} would be exceeded: take another tender")]
    OfflineLimit {
        /// `per-transaction`, `per-shift` or `outstanding`.
        limit: &'static str,
    },
    /// A refund above what is left of the payment.
    #[error("refund of {asked} exceeds {left} left to refund on {poi_transaction_id}")]
    RefundTooLarge {
        /// Payment.
        poi_transaction_id: String,
        /// Asked.
        asked: i64,
        /// Left.
        left: i64,
    },
    /// The payment to refund is not known here.
    #[error("no approved card payment {0}")]
    UnknownPayment(String),
    /// An amount of zero or less: nothing to ask the terminal for.
    #[error("amount {0} minor units is not positive")]
    InvalidAmount(i64),
    /// The terminal refused a refund or reversal.
    #[error("terminal refused: {0}")]
    Refused(String),
    /// The terminal's answer had no usable body.
    #[error("terminal answer without the expected body")]
    Malformed,
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// An offline approval waiting for its final outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOffline {
    /// The request.
    pub op: InFlight,
    /// The payment.
    pub payment: CardPayment,
    /// Seconds since it was taken.
    pub age_secs: i64,
}

/// A later decline of an offline approval: the customer has gone with the goods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineException {
    /// The sale.
    pub sale_transaction_id: String,
    /// The payment.
    pub payment: CardPayment,
}

/// Terminal totals against Kassa's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    /// The terminal's reconciliation id.
    pub poi_reconciliation_id: Option<String>,
    /// Terminal: (count, minor) of payments per currency.
    pub terminal_debits: Vec<(String, u64, i64)>,
    /// Terminal: (count, minor) of refunds and reversals per currency.
    pub terminal_credits: Vec<(String, u64, i64)>,
    /// Reversals matched: (count, minor) per currency of the terminal's payments that were
    /// reversed before any sale used them. The terminal counts each as a payment and a refund,
    /// the ledger as neither; they are taken out of both sides before comparing.
    pub reversals_matched: Vec<(String, u64, i64)>,
    /// Differences, one line each; empty when both agree.
    pub differences: Vec<String>,
}

/// Card payments through one terminal.
#[derive(Debug)]
pub struct CardPayments<J> {
    link: TerminalLink,
    journal: J,
    limits: OfflineLimits,
    status_attempts: u32,
    status_interval: Duration,
    terminal_offline: Mutex<bool>,
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

impl<J: Journal> CardPayments<J> {
    /// Card payments over `link`, recorded in `journal`.
    pub fn new(link: TerminalLink, journal: J, limits: OfflineLimits) -> Self {
        Self {
            link,
            journal,
            limits,
            status_attempts: 20,
            status_interval: Duration::from_millis(250),
            terminal_offline: Mutex::new(false),
        }
    }

    /// How often and how fast recovery asks the terminal.
    pub fn with_recovery(mut self, attempts: u32, interval: Duration) -> Self {
        self.status_attempts = attempts.max(1);
        self.status_interval = interval;
        self
    }

    /// The journal.
    pub fn journal(&self) -> &J {
        &self.journal
    }

    fn offline_flag(&self) -> std::sync::MutexGuard<'_, bool> {
        self.terminal_offline
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a card payment. Any earlier unresolved request is recovered first; while it stays
    /// unknown, no new payment is sent.
    pub async fn pay(
        &self,
        sale_transaction_id: &str,
        amount_minor: i64,
        currency: &str,
        exponent: u32,
        shift_id: Option<&str>,
    ) -> Result<Outcome, PaymentError> {
        let service_id = new_service_id();
        self.pay_as(
            &service_id,
            sale_transaction_id,
            amount_minor,
            (currency, exponent),
            shift_id,
        )
        .await
    }

    /// [`CardPayments::pay`] under a ServiceID chosen by the caller (fresh, never sent before),
    /// so a caller can remember which request answers its client's retry.
    pub async fn pay_as(
        &self,
        service_id: &str,
        sale_transaction_id: &str,
        amount_minor: i64,
        (currency, exponent): (&str, u32),
        shift_id: Option<&str>,
    ) -> Result<Outcome, PaymentError> {
        self.ensure_resolved().await?;
        if *self.offline_flag() {
            self.check_offline_limits(amount_minor, shift_id).await?;
        }
        let op = InFlight::card_present(
            service_id,
            OpKind::Payment,
            sale_transaction_id,
            amount_minor,
            (currency, exponent),
            shift_id,
        );
        self.journal.begin(&op).await?;
        let request = self.payment_request(&op, None);
        self.exchange(&op, request).await
    }

    /// Refunds `amount_minor` to whatever card the customer presents on the terminal, for the
    /// return `refund_id`: an unreferenced refund (a nexo `PaymentRequest` of `PaymentType`
    /// `Refund`), for a return without a payment to refund to. Like a payment, it is recorded
    /// before it leaves and recovered by `TransactionStatus` when its answer is lost, and any
    /// earlier unresolved request is recovered first. When that recovered request was a refund
    /// for `refund_id` that gave money back, it is the answer and nothing is sent: the same
    /// request asked again after its answer was lost never refunds twice. Whether an earlier,
    /// already known refund of `refund_id` answers a new request is the caller's rule (it
    /// knows what is left to refund).
    pub async fn refund_to_presented_card(
        &self,
        refund_id: &str,
        amount_minor: i64,
        (currency, exponent): (&str, u32),
        shift_id: Option<&str>,
    ) -> Result<Outcome, PaymentError> {
        if let Some(done) = self.recovered_refund(refund_id).await? {
            return Ok(done);
        }
        if amount_minor <= 0 {
            return Err(PaymentError::InvalidAmount(amount_minor));
        }
        let op = InFlight::card_present(
            &new_service_id(),
            OpKind::UnreferencedRefund,
            refund_id,
            amount_minor,
            (currency, exponent),
            shift_id,
        );
        self.journal.begin(&op).await?;
        let request = self.payment_request(
            &op,
            Some(PaymentData {
                payment_type: Some("Refund".into()),
            }),
        );
        refused_as_error(self.exchange(&op, request).await?)
    }

    /// A `PaymentRequest` for `op` (a payment, or with `PaymentType` `Refund` an unreferenced
    /// refund).
    fn payment_request(
        &self,
        op: &InFlight,
        payment_data: Option<PaymentData>,
    ) -> SaleToPoiRequest {
        SaleToPoiRequest {
            payment_request: Some(PaymentRequest {
                sale_data: sale_data(op),
                payment_transaction: PaymentTransaction {
                    amounts_req: AmountsReq {
                        currency: op.currency.clone(),
                        requested_amount: Amount::from_minor(op.amount_minor, op.exponent),
                    },
                },
                payment_data,
            }),
            ..blank_request(self.link.header("Payment", &op.service_id))
        }
    }

    /// Recovers every request left in flight (an error while one stays unknown: nothing new may
    /// be sent), and answers the refund to a presented card for `refund_id` among them that
    /// gave money back, if there is one: the lost answer to the request now asked again.
    pub async fn recovered_refund(&self, refund_id: &str) -> Result<Option<Outcome>, PaymentError> {
        Ok(self.ensure_resolved().await?.into_iter().rev().find_map(
            |(op, outcome)| match outcome {
                Outcome::Refunded { .. }
                    if op.kind == OpKind::UnreferencedRefund
                        && op.sale_transaction_id == refund_id =>
                {
                    Some(outcome)
                }
                _ => None,
            },
        ))
    }

    /// Recovers every request left in flight and answers each with the outcome it was found to
    /// have; while one stays unknown, nothing new may be sent.
    pub async fn ensure_resolved(&self) -> Result<Vec<(InFlight, Outcome)>, PaymentError> {
        self.recover_in_flight()
            .await?
            .into_iter()
            .map(|(op, outcome)| match outcome {
                Some(outcome) => Ok((op, outcome)),
                None => Err(PaymentError::Unresolved {
                    service_id: op.service_id,
                }),
            })
            .collect()
    }

    /// Refunds `amount_minor` to the card of an approved payment, referenced to it; all refunds
    /// of one payment together never exceed what it captured.
    pub async fn refund(
        &self,
        poi_transaction_id: &str,
        refund_id: &str,
        amount_minor: i64,
    ) -> Result<Outcome, PaymentError> {
        self.give_back(
            OpKind::Refund,
            poi_transaction_id,
            refund_id,
            Some(amount_minor),
        )
        .await
    }

    /// Reverses what is left of an approved payment.
    pub async fn reverse(
        &self,
        poi_transaction_id: &str,
        reversal_id: &str,
    ) -> Result<Outcome, PaymentError> {
        self.give_back(OpKind::Reversal, poi_transaction_id, reversal_id, None)
            .await
    }

    async fn give_back(
        &self,
        kind: OpKind,
        poi_transaction_id: &str,
        sale_transaction_id: &str,
        amount: Option<i64>,
    ) -> Result<Outcome, PaymentError> {
        self.ensure_resolved().await?;
        let records = self.journal.records().await?;
        let original = records.iter().find_map(|r| match &r.outcome {
            Some(Outcome::Approved {
                payment,
                settlement,
            }) if payment.poi_transaction_id == poi_transaction_id
                && *settlement != Settlement::DeclinedLater =>
            {
                Some((r.op.clone(), payment.clone()))
            }
            _ => None,
        });
        let Some((orig_op, payment)) = original else {
            return Err(PaymentError::UnknownPayment(poi_transaction_id.to_owned()));
        };
        let refunded =
            amount_given_back(records.iter().filter(|r| {
                r.op.original_poi_transaction_id.as_deref() == Some(poi_transaction_id)
            }));
        let left = payment.authorised_minor - refunded;
        let asked = amount.unwrap_or(left);
        if asked <= 0 || asked > left {
            return Err(PaymentError::RefundTooLarge {
                poi_transaction_id: poi_transaction_id.to_owned(),
                asked,
                left,
            });
        }
        let op = InFlight {
            service_id: new_service_id(),
            kind,
            sale_transaction_id: sale_transaction_id.to_owned(),
            amount_minor: asked,
            currency: payment.currency.clone(),
            exponent: orig_op.exponent,
            original_poi_transaction_id: Some(poi_transaction_id.to_owned()),
            shift_id: None,
            started_at: now(),
        };
        self.journal.begin(&op).await?;
        let header = self.link.header("Reversal", &op.service_id);
        let request = SaleToPoiRequest {
            reversal_request: Some(ReversalRequest {
                original_poi_transaction: OriginalPoiTransaction {
                    poi_transaction_id: TransactionIdentification {
                        transaction_id: poi_transaction_id.to_owned(),
                        time_stamp: orig_op.started_at.clone(),
                    },
                },
                reversal_reason: "MerchantCancel".into(),
                reversed_amount: amount.map(|a| Amount::from_minor(a, orig_op.exponent)),
                sale_data: Some(sale_data(&op)),
            }),
            ..blank_request(header)
        };
        refused_as_error(self.exchange(&op, request).await?)
    }

    /// Sends a request already recorded as in flight; on a lost answer, recovers its outcome.
    async fn exchange(
        &self,
        op: &InFlight,
        request: SaleToPoiRequest,
    ) -> Result<Outcome, PaymentError> {
        match self.link.send(request).await {
            Ok(Some(response)) => match outcome_of(op, &response) {
                Some(outcome) => self.record(op, outcome).await,
                None => {
                    self.recover_or_unknown(op, LinkError::Mismatch("no body"))
                        .await
                }
            },
            Ok(None) => {
                self.recover_or_unknown(op, LinkError::Mismatch("empty answer"))
                    .await
            }
            Err(e) if !e.outcome_unknown() => {
                // Nothing left: close the record so it is not recovered.
                self.journal
                    .finish(&op.service_id, &Outcome::NotProcessed)
                    .await?;
                Err(PaymentError::Unreachable(e))
            }
            Err(e) => {
                tracing::warn!(service_id = %op.service_id, error = %e, "terminal answer lost; asking for the outcome");
                self.recover_or_unknown(op, e).await
            }
        }
    }

    async fn recover_or_unknown(
        &self,
        op: &InFlight,
        cause: LinkError,
    ) -> Result<Outcome, PaymentError> {
        match self.resolve(op).await? {
            Some(outcome) => Ok(outcome),
            None => Err(PaymentError::OutcomeUnknown {
                service_id: op.service_id.clone(),
                cause,
            }),
        }
    }

    async fn record(&self, op: &InFlight, outcome: Outcome) -> Result<Outcome, PaymentError> {
        if let Outcome::Approved { payment, .. } = &outcome {
            *self.offline_flag() = payment.offline;
        }
        self.journal.finish(&op.service_id, &outcome).await?;
        tracing::info!(
            service_id = %op.service_id,
            kind = ?op.kind,
            outcome = outcome_name(&outcome),
            "card request finished"
        );
        Ok(outcome)
    }

    /// Asks the terminal for the outcome of an in-flight request until it is known, the
    /// terminal says it never had it, or the attempts run out (`None`: still unknown).
    async fn resolve(&self, op: &InFlight) -> Result<Option<Outcome>, PaymentError> {
        for attempt in 0..self.status_attempts {
            if attempt > 0 {
                tokio::time::sleep(self.status_interval).await;
            }
            let status_id = new_service_id();
            let request = SaleToPoiRequest {
                transaction_status_request: Some(TransactionStatusRequest {
                    message_reference: Some(MessageReference {
                        message_category: Some(op.kind.category().to_owned()),
                        service_id: Some(op.service_id.clone()),
                        sale_id: Some(self.link.sale_id().to_owned()),
                        poi_id: None,
                    }),
                    receipt_reprint_flag: None,
                }),
                ..blank_request(self.link.header("TransactionStatus", &status_id))
            };
            let Ok(Some(response)) = self.link.send(request).await else {
                continue;
            };
            let header = response.message_header.clone();
            let Some(status) = response.transaction_status_response else {
                continue;
            };
            match (
                status.response.result.as_str(),
                status.response.error_condition.as_deref(),
            ) {
                ("Success", _) => {
                    let Some(repeated) = status.repeated_message_response else {
                        continue;
                    };
                    let body = repeated.repeated_response_message_body;
                    let wrapped = SaleToPoiResponse {
                        payment_response: body.payment_response,
                        reversal_response: body.reversal_response,
                        ..blank_response(header)
                    };
                    if let Some(outcome) = outcome_of(op, &wrapped) {
                        return self.record(op, outcome).await.map(Some);
                    }
                }
                (_, Some("NotFound")) => {
                    return self.record(op, Outcome::NotProcessed).await.map(Some);
                }
                // InProgress: the customer is still at the terminal; ask again.
                _ => {}
            }
        }
        Ok(None)
    }

    /// Asks the terminal to abort the payment (or refund to a presented card) in progress (the
    /// cashier cancels); the request itself then ends as declined with `Aborted`.
    pub async fn abort_in_progress(&self) -> Result<(), PaymentError> {
        let records = self.journal.records().await?;
        let Some(r) = records.iter().rev().find(|r| {
            r.outcome.is_none() && matches!(r.op.kind, OpKind::Payment | OpKind::UnreferencedRefund)
        }) else {
            return Ok(());
        };
        let request = SaleToPoiRequest {
            abort_request: Some(crate::nexo::AbortRequest {
                abort_reason: "MerchantAbort".into(),
                message_reference: MessageReference {
                    message_category: Some("Payment".into()),
                    service_id: Some(r.op.service_id.clone()),
                    sale_id: Some(self.link.sale_id().to_owned()),
                    poi_id: None,
                },
            }),
            ..blank_request(self.link.header("Abort", &new_service_id()))
        };
        self.link
            .send(request)
            .await
            .map(|_| ())
            .map_err(PaymentError::Unreachable)
    }

    /// Recovers every request recorded as in flight (after a crash or a lost answer); returns
    /// each with its outcome, `None` for those still unknown.
    pub async fn recover_in_flight(
        &self,
    ) -> Result<Vec<(InFlight, Option<Outcome>)>, PaymentError> {
        let mut out = Vec::new();
        for r in self.journal.records().await? {
            if r.outcome.is_none() {
                let outcome = self.resolve(&r.op).await?;
                out.push((r.op, outcome));
            }
        }
        Ok(out)
    }

    async fn check_offline_limits(
        &self,
        amount: i64,
        shift: Option<&str>,
    ) -> Result<(), PaymentError> {
        if amount > self.limits.per_transaction_minor {
            return Err(PaymentError::OfflineLimit {
                limit: "per-transaction",
            });
        }
        let records = self.journal.records().await?;
        let offline = records.iter().filter_map(|r| match &r.outcome {
            Some(Outcome::Approved {
                payment,
                settlement,
            }) if payment.offline => Some((&r.op, payment, *settlement)),
            _ => None,
        });
        let mut shift_sum = 0i64;
        let mut outstanding = 0i64;
        for (op, p, settlement) in offline {
            if shift.is_some() && op.shift_id.as_deref() == shift {
                shift_sum += p.authorised_minor;
            }
            if settlement == Settlement::Pending {
                outstanding += p.authorised_minor;
            }
        }
        if shift_sum + amount > self.limits.per_shift_minor {
            return Err(PaymentError::OfflineLimit { limit: "per-shift" });
        }
        if outstanding + amount > self.limits.outstanding_minor {
            return Err(PaymentError::OfflineLimit {
                limit: "outstanding",
            });
        }
        Ok(())
    }

    /// Offline approvals still waiting for their final outcome, oldest first, with their age.
    pub async fn pending_offline(&self) -> Result<Vec<PendingOffline>, PaymentError> {
        let now = jiff::Timestamp::now();
        Ok(self
            .journal
            .records()
            .await?
            .into_iter()
            .filter_map(|r| match r.outcome {
                Some(Outcome::Approved {
                    payment,
                    settlement: Settlement::Pending,
                }) => {
                    let age =
                        r.op.started_at
                            .parse::<jiff::Timestamp>()
                            .map(|t| now.as_second() - t.as_second())
                            .unwrap_or(0);
                    Some(PendingOffline {
                        op: r.op,
                        payment,
                        age_secs: age,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Asks the terminal for the final outcome of every pending offline approval; settled ones
    /// leave the queue, declined ones come back as exceptions for HQ.
    pub async fn reconcile_offline(&self) -> Result<Vec<OfflineException>, PaymentError> {
        let mut exceptions = Vec::new();
        for p in self.pending_offline().await? {
            let status_id = new_service_id();
            let request = SaleToPoiRequest {
                transaction_status_request: Some(TransactionStatusRequest {
                    message_reference: Some(MessageReference {
                        message_category: Some("Payment".into()),
                        service_id: Some(p.op.service_id.clone()),
                        sale_id: Some(self.link.sale_id().to_owned()),
                        poi_id: None,
                    }),
                    receipt_reprint_flag: None,
                }),
                ..blank_request(self.link.header("TransactionStatus", &status_id))
            };
            let Ok(Some(response)) = self.link.send(request).await else {
                continue;
            };
            let Some(body) = response
                .transaction_status_response
                .and_then(|s| s.repeated_message_response)
                .and_then(|r| r.repeated_response_message_body.payment_response)
            else {
                continue;
            };
            let extras = extras_of(body.response.additional_response.as_deref());
            let forwarded = extras
                .iter()
                .find(|(k, _)| k == "storeAndForward")
                .map(|(_, v)| v.as_str());
            let settlement = match (body.response.result.as_str(), forwarded) {
                ("Success", Some("settled")) => Settlement::Settled,
                ("Failure", _) => Settlement::DeclinedLater,
                _ => continue,
            };
            let outcome = Outcome::Approved {
                payment: p.payment.clone(),
                settlement,
            };
            self.journal.finish(&p.op.service_id, &outcome).await?;
            if settlement == Settlement::DeclinedLater {
                tracing::warn!(service_id = %p.op.service_id, "offline card payment declined when forwarded");
                exceptions.push(OfflineException {
                    sale_transaction_id: p.op.sale_transaction_id,
                    payment: p.payment,
                });
            }
        }
        Ok(exceptions)
    }

    /// End of day: the terminal's totals (`Reconciliation`, closing the period when `close`,
    /// else `GetTotals`) against the card tenders Kassa recorded in `ledger_debits` and
    /// `ledger_credits` (per currency: count, minor units).
    pub async fn reconcile(
        &self,
        close: bool,
        ledger_debits: &[(String, u64, i64)],
        ledger_credits: &[(String, u64, i64)],
    ) -> Result<Reconciliation, PaymentError> {
        let id = new_service_id();
        let (category, request) = if close {
            (
                "Reconciliation",
                SaleToPoiRequest {
                    reconciliation_request: Some(ReconciliationRequest {
                        reconciliation_type: "SaleReconciliation".into(),
                        poi_reconciliation_id: None,
                    }),
                    ..blank_request(self.link.header("Reconciliation", &id))
                },
            )
        } else {
            (
                "GetTotals",
                SaleToPoiRequest {
                    get_totals_request: Some(GetTotalsRequest::default()),
                    ..blank_request(self.link.header("GetTotals", &id))
                },
            )
        };
        tracing::info!(category, "asking the terminal for its totals");
        let response = match self.link.send(request).await {
            Ok(Some(r)) => r,
            Ok(None) => return Err(PaymentError::Malformed),
            Err(e) => return Err(PaymentError::Unreachable(e)),
        };
        let body = response
            .reconciliation_response
            .or(response.get_totals_response)
            .ok_or(PaymentError::Malformed)?;
        let mut debits = Vec::new();
        let mut credits = Vec::new();
        for t in &body.transaction_totals {
            let cur = t.payment_currency.clone().unwrap_or_default();
            let exp = domain::money::Currency::parse(&cur)
                .map(|c| c.exponent())
                .unwrap_or(2);
            for p in &t.payment_totals {
                let minor = p.transaction_amount.to_minor(exp).unwrap_or(i64::MIN);
                let line = (cur.clone(), p.transaction_count, minor);
                if p.transaction_type == "Debit" {
                    debits.push(line);
                } else {
                    credits.push(line);
                }
            }
        }
        let reversed = reversed_payments(&self.journal.records().await?);
        let matched = match_reversals(&debits, &credits, ledger_debits, ledger_credits, &reversed);
        let mut differences = Vec::new();
        compare(
            "payments",
            &without(&debits, &matched),
            ledger_debits,
            &mut differences,
        );
        compare(
            "refunds",
            &without(&credits, &matched),
            ledger_credits,
            &mut differences,
        );
        Ok(Reconciliation {
            poi_reconciliation_id: body.poi_reconciliation_id,
            terminal_debits: debits,
            terminal_credits: credits,
            reversals_matched: matched,
            differences,
        })
    }
}

/// (count, minor) per currency of the reversals in the journal that gave a whole payment back.
fn reversed_payments(records: &[Record]) -> Vec<(String, u64, i64)> {
    let mut out: Vec<(String, u64, i64)> = Vec::new();
    for r in records {
        if let (OpKind::Reversal, Some(Outcome::Refunded { amount_minor, .. })) =
            (r.op.kind, &r.outcome)
        {
            match out.iter_mut().find(|x| x.0 == r.op.currency) {
                Some(x) => {
                    x.1 += 1;
                    x.2 += amount_minor;
                }
                None => out.push((r.op.currency.clone(), 1, *amount_minor)),
            }
        }
    }
    out
}

fn figure(rows: &[(String, u64, i64)], currency: &str) -> (u64, i64) {
    rows.iter()
        .find(|x| x.0 == currency)
        .map_or((0, 0), |x| (x.1, x.2))
}

/// The part of the terminal's surplus over the ledger that reversals explain, per currency: a
/// reversal of a payment no sale used is one payment and one refund of the same amount at the
/// terminal and nothing in the ledger. The terminal's surplus in refunds is matched when the
/// journal holds at least that many reversals for at least that amount and the surplus in
/// payments covers it too; what is left on either side stays a difference.
fn match_reversals(
    debits: &[(String, u64, i64)],
    credits: &[(String, u64, i64)],
    ledger_debits: &[(String, u64, i64)],
    ledger_credits: &[(String, u64, i64)],
    reversed: &[(String, u64, i64)],
) -> Vec<(String, u64, i64)> {
    let mut matched = Vec::new();
    for (currency, count, amount) in reversed {
        let (td, ta) = figure(debits, currency);
        let (ld, la) = figure(ledger_debits, currency);
        let (tc, tca) = figure(credits, currency);
        let (lc, lca) = figure(ledger_credits, currency);
        let (Some(dn), Some(cn)) = (td.checked_sub(ld), tc.checked_sub(lc)) else {
            continue;
        };
        let (da, ca) = (ta - la, tca - lca);
        if cn > 0 && cn <= dn && ca > 0 && ca <= da && cn <= *count && ca <= *amount {
            matched.push((currency.clone(), cn, ca));
        }
    }
    matched
}

/// `rows` less `matched`, per currency.
fn without(rows: &[(String, u64, i64)], matched: &[(String, u64, i64)]) -> Vec<(String, u64, i64)> {
    rows.iter()
        .map(|(c, n, a)| {
            let (mn, ma) = figure(matched, c);
            (c.clone(), n - mn, a - ma)
        })
        .filter(|(_, n, a)| *n != 0 || *a != 0)
        .collect()
}

fn compare(
    what: &str,
    terminal: &[(String, u64, i64)],
    ledger: &[(String, u64, i64)],
    out: &mut Vec<String>,
) {
    let mut currencies: Vec<&String> = terminal.iter().chain(ledger).map(|(c, _, _)| c).collect();
    currencies.sort();
    currencies.dedup();
    for c in currencies {
        let t = terminal
            .iter()
            .find(|x| &x.0 == c)
            .map_or((0, 0), |x| (x.1, x.2));
        let l = ledger
            .iter()
            .find(|x| &x.0 == c)
            .map_or((0, 0), |x| (x.1, x.2));
        if t != l {
            out.push(format!(
                "{what} in {c}: terminal {} for {} minor, ledger {} for {} minor",
                t.0, t.1, l.0, l.1
            ));
        }
    }
}

/// What `records` (refunds and reversals) gave back, minor units: those that succeeded, and those
/// still in flight, which count until they are known to have failed.
pub fn amount_given_back<'a>(records: impl IntoIterator<Item = &'a Record>) -> i64 {
    records
        .into_iter()
        .filter_map(|r| match &r.outcome {
            Some(Outcome::Refunded { amount_minor, .. }) => Some(*amount_minor),
            None => Some(r.op.amount_minor),
            _ => None,
        })
        .sum()
}

/// A refund or reversal the terminal declined is an error for the caller to show (the reason
/// too, when the terminal gave one); the record keeps the decline.
fn refused_as_error(outcome: Outcome) -> Result<Outcome, PaymentError> {
    match outcome {
        Outcome::Declined { condition, reason } => Err(PaymentError::Refused(match reason {
            Some(reason) => format!("{condition} ({reason})"),
            None => condition,
        })),
        other => Ok(other),
    }
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Approved { .. } => "approved",
        Outcome::Declined { .. } => "declined",
        Outcome::NotProcessed => "not-processed",
        Outcome::Refunded { .. } => "refunded",
    }
}

fn sale_data(op: &InFlight) -> SaleData {
    SaleData {
        sale_transaction_id: TransactionIdentification {
            transaction_id: op.sale_transaction_id.clone(),
            time_stamp: op.started_at.clone(),
        },
    }
}

fn blank_request(header: crate::nexo::MessageHeader) -> SaleToPoiRequest {
    SaleToPoiRequest {
        message_header: header,
        payment_request: None,
        reversal_request: None,
        abort_request: None,
        transaction_status_request: None,
        reconciliation_request: None,
        get_totals_request: None,
    }
}

fn blank_response(header: crate::nexo::MessageHeader) -> SaleToPoiResponse {
    SaleToPoiResponse {
        message_header: header,
        payment_response: None,
        reversal_response: None,
        transaction_status_response: None,
        reconciliation_response: None,
        get_totals_response: None,
    }
}

fn extras_of(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(filter_additional_response).unwrap_or_default()
}

/// The decline condition of a refund to a presented card the terminal approved offline.
pub const OFFLINE_REFUND: &str = "OfflineRefund";

/// Turns a terminal answer into what Kassa records, through the whitelist: only the fields of
/// [`CardPayment`] survive, each masked or checked for card numbers.
pub fn outcome_of(op: &InFlight, response: &SaleToPoiResponse) -> Option<Outcome> {
    match op.kind {
        OpKind::Payment => response
            .payment_response
            .as_ref()
            .filter(|p| p.sale_data.sale_transaction_id.transaction_id == op.sale_transaction_id)
            .map(|p| payment_outcome(op, p)),
        // An unreferenced refund answers like a payment and passes the same whitelist; what it
        // approved is money given back, never a payment a tender could reference.
        OpKind::UnreferencedRefund => response
            .payment_response
            .as_ref()
            .filter(|p| p.sale_data.sale_transaction_id.transaction_id == op.sale_transaction_id)
            .map(|p| match payment_outcome(op, p) {
                // A refund approved offline is only a promise the terminal may fail to keep when
                // it forwards it: it is recorded as declined, the customer is refunded another
                // way, and should the terminal still credit the card, end of day shows a
                // difference to look into.
                Outcome::Approved { payment, .. } if payment.offline => Outcome::Declined {
                    condition: OFFLINE_REFUND.to_owned(),
                    reason: Some(
                        "the terminal approved the refund offline; refund in cash or store credit"
                            .to_owned(),
                    ),
                },
                Outcome::Approved { payment, .. } => Outcome::Refunded {
                    poi_transaction_id: payment.poi_transaction_id,
                    amount_minor: payment.authorised_minor,
                },
                other => other,
            }),
        OpKind::Refund | OpKind::Reversal => response
            .reversal_response
            .as_ref()
            .map(|r| reversal_outcome(op, r)),
    }
}

fn payment_outcome(op: &InFlight, p: &PaymentResponse) -> Outcome {
    let extras = extras_of(p.response.additional_response.as_deref());
    let extra = |k: &str| {
        extras
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    if !matches!(p.response.result.as_str(), "Success" | "Partial") {
        return Outcome::Declined {
            condition: p
                .response
                .error_condition
                .as_deref()
                .and_then(clean_text)
                .unwrap_or_else(|| "Unknown".into()),
            reason: extra("refusalReason").or_else(|| extra("message")),
        };
    }
    let result = p.payment_result.clone().unwrap_or_default();
    let card = result
        .payment_instrument_data
        .and_then(|i| i.card_data)
        .unwrap_or_default();
    let authorised = result
        .amounts_resp
        .as_ref()
        .and_then(|a| a.authorized_amount.to_minor(op.exponent))
        .unwrap_or(op.amount_minor)
        .min(op.amount_minor);
    let offline = result.online_flag == Some(false) || extra("offline").as_deref() == Some("true");
    let payment = CardPayment {
        // An identifier, kept exactly as the terminal sent it: a refund by reference must name
        // it again, and its PSP reference part may be 16 digits that pass Luhn.
        poi_transaction_id: p.poi_data.poi_transaction_id.transaction_id.clone(),
        psp_reference: extra("pspReference"),
        auth_code: result
            .payment_acquirer_data
            .and_then(|a| a.approval_code)
            .as_deref()
            .and_then(clean_text)
            .or_else(|| extra("authCode")),
        brand: card.payment_brand.as_deref().and_then(clean_text),
        masked_pan: card.masked_pan.as_deref().and_then(MaskedPan::mask),
        token: card
            .payment_token
            .map(|t| t.token_value)
            .as_deref()
            .and_then(clean_text)
            .or_else(|| extra("alias")),
        entry_mode: card
            .entry_mode
            .first()
            .map(String::as_str)
            .and_then(clean_text),
        offline,
        authorised_minor: authorised,
        currency: op.currency.clone(),
    };
    Outcome::Approved {
        payment,
        settlement: if offline {
            Settlement::Pending
        } else {
            Settlement::Online
        },
    }
}

fn reversal_outcome(op: &InFlight, r: &ReversalResponse) -> Outcome {
    if r.response.result != "Success" {
        return Outcome::Declined {
            condition: r
                .response
                .error_condition
                .as_deref()
                .and_then(clean_text)
                .unwrap_or_else(|| "Unknown".into()),
            reason: None,
        };
    }
    Outcome::Refunded {
        poi_transaction_id: r
            .poi_data
            .as_ref()
            .map(|d| d.poi_transaction_id.transaction_id.clone())
            .unwrap_or_default(),
        amount_minor: r
            .reversed_amount
            .and_then(|a| a.to_minor(op.exponent))
            .unwrap_or(op.amount_minor),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::nexo::MessageHeader;

    /// The terminal's answer to `op`: approved for its amount, online or offline.
    fn approved_answer(op: &InFlight, online: bool) -> SaleToPoiResponse {
        let payment: PaymentResponse = serde_json::from_value(serde_json::json!({
            "Response": {"Result": "Success"},
            "SaleData": {"SaleTransactionID": {"TransactionID": op.sale_transaction_id, "TimeStamp": op.started_at}},
            "POIData": {"POITransactionID": {"TransactionID": "poi-1", "TimeStamp": op.started_at}},
            "PaymentResult": {"OnlineFlag": online},
        }))
        .unwrap();
        SaleToPoiResponse {
            payment_response: Some(payment),
            ..blank_response(MessageHeader::request("Payment", "s-1", "till", "poi"))
        }
    }

    #[test]
    fn a_refund_to_a_presented_card_approved_offline_is_recorded_as_declined() {
        let op = InFlight::card_present(
            "s-1",
            OpKind::UnreferencedRefund,
            "return-1",
            349,
            ("EUR", 2),
            None,
        );
        assert_eq!(
            outcome_of(&op, &approved_answer(&op, false)),
            Some(Outcome::Declined {
                condition: OFFLINE_REFUND.to_owned(),
                reason: Some(
                    "the terminal approved the refund offline; refund in cash or store credit"
                        .to_owned()
                ),
            })
        );
        assert_eq!(
            outcome_of(&op, &approved_answer(&op, true)),
            Some(Outcome::Refunded {
                poi_transaction_id: "poi-1".to_owned(),
                amount_minor: 349,
            })
        );
    }
}
