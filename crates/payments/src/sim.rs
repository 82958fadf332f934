//! A simulated payment terminal speaking the Adyen Terminal API over local communication: nexo
//! Sale-to-POI JSON with Adyen's message protection, over HTTPS with a test certificate.
//!
//! One transaction at a time (a second one gets `Busy`), transactions kept in a file across
//! restarts, outcomes chosen by magic amounts, an offline store-and-forward mode, and faults
//! (latency, dropped connections before or after authorisation or on a status request, a stale
//! duplicate response, a bad HMAC, and a misbehaving mode that leaks a full card number in
//! `AdditionalResponse`).
//!
//! Magic amounts, by the amount in minor units modulo 1000:
//!
//! | ends in | outcome |
//! |---|---|
//! | 001 | partial approval of half the amount (`Partial`) |
//! | 002 | declined: `Refusal`, `refusalReason=Not enough balance` |
//! | 003 | declined: `Refusal`, `refusalReason=Expired Card` |
//! | 004 | card removed: `Aborted` |
//! | 005 | cancelled by the customer: `Cancel` |
//! | 006 | approved, but no answer ever comes back |
//! | 013 | offline only: approved offline, declined when forwarded |
//! | anything else | approved |
//!
//! An unreferenced refund (a `PaymentRequest` of `PaymentType` `Refund`: money back to whatever
//! card the customer presents) follows the same table, except that a refund is never partial
//! (001 refunds the whole amount), 002 is refused with `refusalReason=Refund declined`, and with
//! no link to the acquirer it is refused (`UnreachableHost`) rather than stored and forwarded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use domain::money::Currency;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::crypto::SecurityKey;
use crate::nexo::{
    Amount, AmountsResp, CardData, MessageHeader, PaymentAcquirerData, PaymentInstrumentData,
    PaymentRequest, PaymentResponse, PaymentResult, PaymentToken, PaymentTotals, PoiData,
    ReconciliationResponse, RepeatedMessageResponse, RepeatedResponseMessageBody, RequestEnvelope,
    Response as NexoResponse, ReversalRequest, ReversalResponse, SaleToPoiResponse,
    TransactionIdentification, TransactionStatusResponse, TransactionTotals,
};
use crate::tls::TerminalIdentity;

/// Errors starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// TLS set-up.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The state file.
    #[error("simulator state: {0}")]
    Io(#[from] std::io::Error),
    /// The state file is not ours.
    #[error("simulator state file is corrupt: {0}")]
    State(#[from] serde_json::Error),
}

/// How the simulator is set up.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The terminal's id (`POIID`), also its certificate name.
    pub poi_id: String,
    /// The shared key.
    pub key: SecurityKey,
    /// Where transactions and the certificate live.
    pub state_dir: PathBuf,
    /// Largest payment approved offline, in minor units.
    pub offline_floor_limit_minor: i64,
}

/// Faults and modes, switchable while running (in process, or `POST /sim/faults`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Time the customer takes at the terminal, per payment (an abort cuts it short); longer
    /// than the client's timeout, it makes the response late.
    pub latency_ms: u64,
    /// Close the connection before authorising: nothing happened.
    pub drop_before_auth: bool,
    /// Authorise (or refund or reverse), then close the connection without answering.
    pub drop_after_auth: bool,
    /// Close the connection on every `TransactionStatus` without answering: a lost answer stays
    /// unknown to the sale system.
    pub drop_status: bool,
    /// Answer a payment with the previous payment's response (a duplicate of an old answer).
    pub stale_response: bool,
    /// Answer with an HMAC that does not verify.
    pub bad_hmac: bool,
    /// Misbehave: put a full card number in `AdditionalResponse` and `MaskedPan`.
    pub leak_pan: bool,
    /// No link to the acquirer: store-and-forward under the floor limit.
    pub offline: bool,
}

/// A transaction as the terminal remembers it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimTxn {
    /// `Payment`, `Refund` (referenced), `Reversal` or `UnreferencedRefund`.
    pub kind: String,
    /// ServiceID of the request.
    pub service_id: String,
    /// SaleID of the request.
    pub sale_id: String,
    /// The terminal's transaction id.
    pub poi_transaction_id: String,
    /// The sale system's transaction id.
    pub sale_transaction_id: String,
    /// Currency code.
    pub currency: String,
    /// Amount asked for, minor units.
    pub requested_minor: i64,
    /// Amount authorised (payments) or credited (refunds), minor units.
    pub captured_minor: i64,
    /// Refunded so far (payments).
    pub refunded_minor: i64,
    /// `Approved`, `Declined`, `Pending` (offline, not yet forwarded), `Aborted`.
    pub state: String,
    /// Approved offline.
    pub offline: bool,
    /// Reconciliation period.
    pub period: u64,
    /// For referenced refunds and reversals: the payment's POI transaction id.
    pub original: Option<String>,
    /// The header of the answer.
    pub response_header: MessageHeader,
    /// The answer's body, `PaymentResponse` (payments, unreferenced refunds) or
    /// `ReversalResponse` as JSON.
    pub response_body: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    txns: Vec<SimTxn>,
    seq: u64,
    period: u64,
    /// (SaleID, ServiceID) of the requests that closed a period, so a replay closes none.
    #[serde(default)]
    closed_by: Vec<(String, String)>,
}

struct BusyGuard {
    inner: Arc<Inner>,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        *lock(&self.inner.busy) = None;
    }
}

struct Busy {
    service_id: String,
    abort: Arc<Notify>,
}

struct Inner {
    cfg: SimConfig,
    state: Mutex<State>,
    busy: Mutex<Option<Busy>>,
    faults: Mutex<Faults>,
    state_path: PathBuf,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running simulator; dropping it stops accepting connections.
#[derive(Debug)]
pub struct Simulator {
    inner: Arc<Inner>,
    addr: SocketAddr,
    ca_pem: String,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("poi_id", &self.cfg.poi_id)
            .finish()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Reply = Result<Response<Full<Bytes>>, Dropped>;

/// The simulator closed the connection on purpose.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

impl Simulator {
    /// Loads state and certificate from `cfg.state_dir` and serves on `listener`.
    pub async fn start(cfg: SimConfig, listener: TcpListener) -> Result<Self, SimError> {
        std::fs::create_dir_all(&cfg.state_dir)?;
        let identity = TerminalIdentity::load_or_generate(&cfg.state_dir, &cfg.poi_id)?;
        let tls = tokio_rustls::TlsAcceptor::from(identity.server_config()?);
        let state_path = cfg.state_dir.join("transactions.json");
        let state = match std::fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e.into()),
        };
        let inner = Arc::new(Inner {
            cfg,
            state: Mutex::new(state),
            busy: Mutex::new(None),
            faults: Mutex::new(Faults::default()),
            state_path,
        });
        let addr = listener.local_addr()?;
        let served = inner.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let tls = tls.clone();
                let inner = served.clone();
                tokio::spawn(async move {
                    let Ok(stream) = tls.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |req| handle(inner.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self {
            inner,
            addr,
            ca_pem: identity.ca_pem,
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA certificate clients must trust (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Replaces the faults and modes.
    pub fn set_faults(&self, faults: Faults) {
        set_faults(&self.inner, faults);
    }

    /// Every transaction the terminal remembers.
    pub fn transactions(&self) -> Vec<SimTxn> {
        lock(&self.inner.state).txns.clone()
    }
}

fn set_faults(inner: &Inner, faults: Faults) {
    let was_offline = lock(&inner.faults).offline;
    let now_online = !faults.offline;
    *lock(&inner.faults) = faults;
    if was_offline && now_online {
        forward_offline(inner);
    }
}

/// Back online: every payment approved offline is forwarded; the acquirer approves it, or
/// declines it when its amount ends in 013.
fn forward_offline(inner: &Inner) {
    let mut state = lock(&inner.state);
    for t in state.txns.iter_mut().filter(|t| t.state == "Pending") {
        let Ok(mut body) = serde_json::from_str::<PaymentResponse>(&t.response_body) else {
            continue;
        };
        if t.requested_minor % 1000 == 13 {
            t.state = "Declined".into();
            body.response = NexoResponse {
                result: "Failure".into(),
                error_condition: Some("Refusal".into()),
                additional_response: Some(format!(
                    "pspReference={}&offline=true&storeAndForward=declined&refusalReason=Declined%20when%20forwarded",
                    psp_of(&t.poi_transaction_id)
                )),
            };
        } else {
            t.state = "Approved".into();
            body.response.additional_response = Some(format!(
                "pspReference={}&offline=true&storeAndForward=settled",
                psp_of(&t.poi_transaction_id)
            ));
        }
        if let Ok(s) = serde_json::to_string(&body) {
            t.response_body = s;
        }
    }
    let _ = persist(&inner.state_path, &state);
}

fn psp_of(poi_txn: &str) -> &str {
    poi_txn.rsplit('.').next().unwrap_or(poi_txn)
}

fn persist(path: &Path, state: &State) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

async fn handle(inner: Arc<Inner>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let method = req.method().clone();
    let Ok(body) = req.into_body().collect().await else {
        return Err(Dropped);
    };
    let body = body.to_bytes();
    match (method.as_str(), path.as_str()) {
        // A terminal finishes a transaction whether or not the sale system still listens, so
        // the work runs in its own task that a dropped connection does not cancel.
        ("POST", "/nexo") => tokio::spawn(async move { nexo(inner, &body).await })
            .await
            .unwrap_or(Err(Dropped)),
        ("POST", "/sim/faults") => match serde_json::from_slice::<Faults>(&body) {
            Ok(f) => {
                set_faults(&inner, f);
                reply(StatusCode::OK, "{}")
            }
            Err(e) => reply(StatusCode::BAD_REQUEST, e.to_string()),
        },
        ("GET", "/sim/transactions") => {
            let txns = lock(&inner.state).txns.clone();
            reply(
                StatusCode::OK,
                serde_json::to_vec(&txns).unwrap_or_default(),
            )
        }
        _ => reply(StatusCode::NOT_FOUND, "not found"),
    }
}

async fn nexo(inner: Arc<Inner>, body: &[u8]) -> Reply {
    let key = &inner.cfg.key;
    let Ok((_, plaintext)) = key.open_bytes(body) else {
        // A terminal answers a message it cannot authenticate with an error and does nothing.
        tracing::warn!(
            poi_id = %inner.cfg.poi_id,
            bytes = body.len(),
            "terminal simulator rejected a message: message protection failed"
        );
        return reply(StatusCode::UNAUTHORIZED, "message protection failed");
    };
    let env = match serde_json::from_slice::<RequestEnvelope>(&plaintext) {
        Ok(env) => env,
        Err(e) => return malformed(&inner, &plaintext, &e),
    };
    let req = env.request;
    let header = req.message_header.clone();
    // An encrypted request replayed byte for byte authenticates again; a terminal processes a
    // ServiceID once, so a repeated one is refused rather than charged or refunded twice.
    let changes_money = req.payment_request.is_some()
        || req.reversal_request.is_some()
        || req
            .reconciliation_request
            .as_ref()
            .is_some_and(|r| r.reconciliation_type != "PreviousReconciliation");
    if changes_money && seen(&inner, &header) {
        tracing::warn!(
            poi_id = %inner.cfg.poi_id,
            sale_id = %header.sale_id,
            service_id = %header.service_id,
            category = %header.message_category,
            "terminal simulator rejected a message: ServiceID already used"
        );
        let why = "message=ServiceID%20already%20used";
        return match (req.payment_request, req.reversal_request) {
            (Some(p), _) => seal_reply(
                &inner,
                &failure_payment(&header, &p.sale_data.sale_transaction_id, "NotAllowed", why),
            ),
            (None, Some(_)) => seal_reply(&inner, &failure_reversal(&header, "NotAllowed", why)),
            (None, None) => seal_reply(
                &inner,
                &SaleToPoiResponse {
                    reconciliation_response: Some(failure_totals("NotAllowed", why)),
                    ..empty_response(&header)
                },
            ),
        };
    }
    let response = if let Some(p) = req.payment_request {
        match payment(inner.clone(), &header, p).await? {
            Some(r) => r,
            None => return reply(StatusCode::OK, ""),
        }
    } else if let Some(r) = req.reversal_request {
        if lock(&inner.faults).drop_before_auth {
            return Err(Dropped);
        }
        let response = reversal(&inner, &header, r);
        if lock(&inner.faults).drop_after_auth {
            return Err(Dropped);
        }
        response
    } else if let Some(a) = req.abort_request {
        let target = a.message_reference.service_id.unwrap_or_default();
        if let Some(b) = lock(&inner.busy).as_ref() {
            if b.service_id == target {
                b.abort.notify_one();
            }
        }
        // The terminal does not answer an abort; the aborted payment answers instead.
        return reply(StatusCode::OK, "");
    } else if let Some(s) = req.transaction_status_request {
        if lock(&inner.faults).drop_status {
            return Err(Dropped);
        }
        let reference = s
            .message_reference
            .unwrap_or(crate::nexo::MessageReference {
                message_category: None,
                service_id: None,
                sale_id: None,
                poi_id: None,
            });
        status(
            &inner,
            &header,
            reference.service_id,
            reference.message_category,
        )
    } else if let Some(r) = req.reconciliation_request {
        let body = if r.reconciliation_type == "PreviousReconciliation" {
            previous_totals(&inner, r.poi_reconciliation_id.as_deref())
        } else {
            remember_close(&inner, &header);
            totals(&inner, true)
        };
        SaleToPoiResponse {
            message_header: header.response(),
            reconciliation_response: Some(ReconciliationResponse {
                reconciliation_type: Some(r.reconciliation_type),
                ..body
            }),
            ..empty_response(&header)
        }
    } else if req.get_totals_request.is_some() {
        SaleToPoiResponse {
            get_totals_response: Some(totals(&inner, false)),
            ..empty_response(&header)
        }
    } else {
        tracing::warn!(
            poi_id = %inner.cfg.poi_id,
            service_id = %header.service_id,
            "terminal simulator rejected a message: no request body"
        );
        return reply(StatusCode::BAD_REQUEST, "no request body");
    };
    seal_reply(&inner, &response)
}

/// A request that authenticated but does not parse (an amount such as `3.3000000000000003`,
/// which is no exact decimal of the currency): a terminal answers with a nexo `Failure` of
/// `MessageFormat` in the body the request asked for, not with a bare HTTP error, whenever its
/// header can be read.
fn malformed(inner: &Inner, plaintext: &[u8], error: &serde_json::Error) -> Reply {
    let value: serde_json::Value = serde_json::from_slice(plaintext).unwrap_or_default();
    let request = &value["SaleToPOIRequest"];
    let header = serde_json::from_value::<MessageHeader>(request["MessageHeader"].clone()).ok();
    tracing::warn!(
        poi_id = %inner.cfg.poi_id,
        service_id = header.as_ref().map_or("", |h| h.service_id.as_str()),
        %error,
        "terminal simulator rejected a message: it does not parse"
    );
    let Some(header) = header else {
        return reply(StatusCode::BAD_REQUEST, "not a SaleToPOIRequest");
    };
    let why = "message=Message%20format%20error";
    let response = match header.message_category.as_str() {
        "Payment" => {
            let sale_txn = serde_json::from_value::<TransactionIdentification>(
                request["PaymentRequest"]["SaleData"]["SaleTransactionID"].clone(),
            )
            .unwrap_or(TransactionIdentification {
                transaction_id: String::new(),
                time_stamp: now(),
            });
            failure_payment(&header, &sale_txn, "MessageFormat", why)
        }
        "Reversal" => failure_reversal(&header, "MessageFormat", why),
        "Reconciliation" => SaleToPoiResponse {
            reconciliation_response: Some(failure_totals("MessageFormat", why)),
            ..empty_response(&header)
        },
        _ => return reply(StatusCode::BAD_REQUEST, "not a SaleToPOIRequest"),
    };
    seal_reply(inner, &response)
}

/// Whether a request with this header's SaleID and ServiceID was processed before: payments and
/// reversals are kept as transactions, period closes in the state's list.
fn seen(inner: &Inner, header: &MessageHeader) -> bool {
    let state = lock(&inner.state);
    state
        .txns
        .iter()
        .any(|t| t.sale_id == header.sale_id && t.service_id == header.service_id)
        || state
            .closed_by
            .iter()
            .any(|(sale, service)| *sale == header.sale_id && *service == header.service_id)
}

fn remember_close(inner: &Inner, header: &MessageHeader) {
    lock(&inner.state)
        .closed_by
        .push((header.sale_id.clone(), header.service_id.clone()));
}

fn failure_reversal(
    header: &MessageHeader,
    condition: &str,
    additional: &str,
) -> SaleToPoiResponse {
    SaleToPoiResponse {
        reversal_response: Some(ReversalResponse {
            response: NexoResponse {
                result: "Failure".into(),
                error_condition: Some(condition.into()),
                additional_response: Some(additional.into()),
            },
            poi_data: None,
            reversed_amount: None,
        }),
        ..empty_response(header)
    }
}

fn failure_totals(condition: &str, additional: &str) -> ReconciliationResponse {
    ReconciliationResponse {
        response: NexoResponse {
            result: "Failure".into(),
            error_condition: Some(condition.into()),
            additional_response: Some(additional.into()),
        },
        reconciliation_type: None,
        poi_reconciliation_id: None,
        transaction_totals: Vec::new(),
    }
}

fn seal_reply(inner: &Inner, response: &SaleToPoiResponse) -> Reply {
    let Some(plaintext) = serialize_response(response) else {
        return reply(StatusCode::INTERNAL_SERVER_ERROR, "cannot serialise");
    };
    let header = serde_json::to_value(&response.message_header).unwrap_or_default();
    let Ok(mut sealed) = inner
        .cfg
        .key
        .seal_bytes("SaleToPOIResponse", header, &plaintext)
    else {
        return reply(StatusCode::INTERNAL_SERVER_ERROR, "cannot seal");
    };
    if lock(&inner.faults).bad_hmac {
        if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&sealed) {
            v["SaleToPOIResponse"]["SecurityTrailer"]["Hmac"] =
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
            sealed = serde_json::to_vec(&v).unwrap_or(sealed);
        }
    }
    reply(StatusCode::OK, sealed)
}

fn serialize_response(response: &SaleToPoiResponse) -> Option<Vec<u8>> {
    serde_json::to_vec(&crate::nexo::ResponseEnvelope {
        response: response.clone(),
    })
    .ok()
}

fn empty_response(header: &MessageHeader) -> SaleToPoiResponse {
    SaleToPoiResponse {
        message_header: header.response(),
        payment_response: None,
        reversal_response: None,
        transaction_status_response: None,
        reconciliation_response: None,
        get_totals_response: None,
    }
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

fn next_ids(state: &mut State) -> (String, String) {
    state.seq += 1;
    // Alphanumeric like Adyen's current references, so no reference looks like a card number.
    let psp = format!("SIMPSP{:010X}", state.seq * 7919 + 0xA5A5);
    let tender = format!("sim{:06x}", state.seq);
    (format!("{tender}.{psp}"), psp)
}

struct Card {
    pan: &'static str,
    brand: &'static str,
}

fn card_for(amount_minor: i64) -> Card {
    if amount_minor % 2 == 0 {
        Card {
            pan: "4111111111111111",
            brand: "visa",
        }
    } else {
        Card {
            pan: "5555555555554444",
            brand: "mc",
        }
    }
}

fn exponent_of(code: &str) -> u32 {
    Currency::parse(code).map(|c| c.exponent()).unwrap_or(2)
}

#[allow(clippy::too_many_lines)]
async fn payment(
    inner: Arc<Inner>,
    header: &MessageHeader,
    req: PaymentRequest,
) -> Result<Option<SaleToPoiResponse>, Dropped> {
    let currency = req.payment_transaction.amounts_req.currency.clone();
    let exp = exponent_of(&currency);
    let sale_txn = req.sale_data.sale_transaction_id.clone();
    let refund = req
        .payment_data
        .as_ref()
        .and_then(|d| d.payment_type.as_deref())
        == Some("Refund");
    let kind = if refund {
        "UnreferencedRefund"
    } else {
        "Payment"
    };
    let Some(amount) = req
        .payment_transaction
        .amounts_req
        .requested_amount
        .to_minor(exp)
    else {
        return Ok(Some(failure_payment(
            header,
            &sale_txn,
            "MessageFormat",
            "",
        )));
    };
    let abort = Arc::new(Notify::new());
    {
        let mut busy = lock(&inner.busy);
        if busy.is_some() {
            return Ok(Some(failure_payment(header, &sale_txn, "Busy", "")));
        }
        *busy = Some(Busy {
            service_id: header.service_id.clone(),
            abort: abort.clone(),
        });
    }
    let guard = BusyGuard {
        inner: inner.clone(),
    };
    let faults = lock(&inner.faults).clone();
    if faults.drop_before_auth {
        return Err(Dropped);
    }
    let aborted = tokio::select! {
        () = tokio::time::sleep(Duration::from_millis(faults.latency_ms)) => false,
        () = abort.notified() => true,
    };
    let magic = amount % 1000;
    let card = card_for(amount);
    let mut authorised = amount;
    let mut offline = false;
    let (state_name, result, condition, extra): (&str, &str, Option<&str>, String) = if aborted {
        (
            "Aborted",
            "Failure",
            Some("Aborted"),
            "message=Aborted%20by%20the%20sale%20system".into(),
        )
    } else {
        match magic {
            1 if !refund => {
                authorised = amount / 2;
                ("Approved", "Partial", None, String::new())
            }
            2 => (
                "Declined",
                "Failure",
                Some("Refusal"),
                if refund {
                    "refusalReason=Refund%20declined".into()
                } else {
                    "refusalReason=Not%20enough%20balance".into()
                },
            ),
            3 => (
                "Declined",
                "Failure",
                Some("Refusal"),
                "refusalReason=Expired%20Card".into(),
            ),
            4 => (
                "Aborted",
                "Failure",
                Some("Aborted"),
                "message=Card%20removed".into(),
            ),
            5 => (
                "Aborted",
                "Failure",
                Some("Cancel"),
                "message=Cancelled%20by%20customer".into(),
            ),
            _ if faults.offline => {
                if amount <= inner.cfg.offline_floor_limit_minor && !refund {
                    offline = true;
                    (
                        "Pending",
                        "Success",
                        None,
                        "offline=true&storeAndForward=pending".into(),
                    )
                } else {
                    (
                        "Declined",
                        "Failure",
                        Some("UnreachableHost"),
                        "refusalReason=Acquirer%20unreachable".into(),
                    )
                }
            }
            _ => ("Approved", "Success", None, String::new()),
        }
    };
    let approved = matches!(state_name, "Approved" | "Pending");
    let (body, previous) = {
        let mut state = lock(&inner.state);
        let (poi_txn, psp) = next_ids(&mut state);
        let alias = format!("SIMALIAS{}", card.brand.to_uppercase());
        let masked = if faults.leak_pan {
            card.pan.to_owned()
        } else {
            format!(
                "{} **** {}",
                &card.pan[..6],
                &card.pan[card.pan.len() - 4..]
            )
        };
        let mut additional = format!("pspReference={psp}");
        if approved {
            additional.push_str(&format!(
            "&alias={alias}&aliasType=Default&authCode=A{:05}&cardType={}&paymentMethod={}&posEntryMode=CLESS_CHIP",
            state.seq % 100_000,
            card.brand,
            card.brand
        ));
        }
        if !extra.is_empty() {
            additional.push('&');
            additional.push_str(&extra);
        }
        if faults.leak_pan {
            additional.push_str(&format!(
                "&cardNumber={}&message=Card%20{}&track2=%3B{}%3D2512",
                card.pan, card.pan, card.pan
            ));
        }
        let ts = now();
        let body = PaymentResponse {
            response: NexoResponse {
                result: result.into(),
                error_condition: condition.map(Into::into),
                additional_response: Some(additional),
            },
            sale_data: req.sale_data.clone(),
            poi_data: PoiData {
                poi_transaction_id: TransactionIdentification {
                    transaction_id: poi_txn.clone(),
                    time_stamp: ts.clone(),
                },
                poi_reconciliation_id: Some(format!("{}", state.period + 1000)),
            },
            payment_result: approved.then(|| PaymentResult {
                payment_instrument_data: Some(PaymentInstrumentData {
                    payment_instrument_type: Some("Card".into()),
                    card_data: Some(CardData {
                        payment_brand: Some(card.brand.into()),
                        masked_pan: Some(masked),
                        entry_mode: vec!["Contactless".into()],
                        payment_token: Some(PaymentToken {
                            token_requested_type: "Customer".into(),
                            token_value: alias.clone(),
                        }),
                    }),
                }),
                amounts_resp: Some(AmountsResp {
                    currency: currency.clone(),
                    authorized_amount: Amount::from_minor(authorised, exp),
                }),
                online_flag: Some(!offline),
                payment_acquirer_data: Some(PaymentAcquirerData {
                    approval_code: Some(format!("A{:05}", state.seq % 100_000)),
                }),
            }),
        };
        let previous = state
            .txns
            .iter()
            .rev()
            .find(|t| t.kind == kind)
            .map(|t| (t.response_header.clone(), t.response_body.clone()));
        let txn = SimTxn {
            kind: kind.into(),
            service_id: header.service_id.clone(),
            sale_id: header.sale_id.clone(),
            poi_transaction_id: poi_txn,
            sale_transaction_id: sale_txn.transaction_id.clone(),
            currency,
            requested_minor: amount,
            captured_minor: if approved { authorised } else { 0 },
            refunded_minor: 0,
            state: state_name.into(),
            offline,
            period: state.period,
            original: None,
            response_header: header.response(),
            response_body: serde_json::to_string(&body).unwrap_or_default(),
        };
        state.txns.push(txn);
        if persist(&inner.state_path, &state).is_err() {
            return Err(Dropped);
        }
        (body, previous)
    };
    drop(guard);
    if magic == 6 && !aborted {
        // Approved at the acquirer, but the answer never leaves the terminal.
        tokio::time::sleep(Duration::from_secs(120)).await;
        return Err(Dropped);
    }
    if faults.drop_after_auth {
        return Err(Dropped);
    }
    if faults.stale_response {
        if let Some((h, b)) = previous {
            if let Ok(old) = serde_json::from_str::<PaymentResponse>(&b) {
                return Ok(Some(SaleToPoiResponse {
                    payment_response: Some(old),
                    ..empty_response(&MessageHeader {
                        message_type: "Request".into(),
                        ..h
                    })
                }));
            }
        }
    }
    Ok(Some(SaleToPoiResponse {
        payment_response: Some(body),
        ..empty_response(header)
    }))
}

fn failure_payment(
    header: &MessageHeader,
    sale_txn: &TransactionIdentification,
    condition: &str,
    additional: &str,
) -> SaleToPoiResponse {
    SaleToPoiResponse {
        payment_response: Some(PaymentResponse {
            response: NexoResponse {
                result: "Failure".into(),
                error_condition: Some(condition.into()),
                additional_response: (!additional.is_empty()).then(|| additional.to_owned()),
            },
            sale_data: crate::nexo::SaleData {
                sale_transaction_id: sale_txn.clone(),
            },
            poi_data: PoiData {
                poi_transaction_id: TransactionIdentification {
                    transaction_id: String::new(),
                    time_stamp: now(),
                },
                poi_reconciliation_id: None,
            },
            payment_result: None,
        }),
        ..empty_response(header)
    }
}

fn reversal(inner: &Inner, header: &MessageHeader, r: ReversalRequest) -> SaleToPoiResponse {
    let original_id = r.original_poi_transaction.poi_transaction_id.transaction_id;
    let mut state = lock(&inner.state);
    let fail = |condition: &str| SaleToPoiResponse {
        reversal_response: Some(ReversalResponse {
            response: NexoResponse {
                result: "Failure".into(),
                error_condition: Some(condition.into()),
                additional_response: None,
            },
            poi_data: None,
            reversed_amount: None,
        }),
        ..empty_response(header)
    };
    let Some(idx) = state
        .txns
        .iter()
        .position(|t| t.kind == "Payment" && t.poi_transaction_id == original_id)
    else {
        return fail("NotFound");
    };
    let orig = state.txns[idx].clone();
    if !matches!(orig.state.as_str(), "Approved" | "Pending") {
        return fail("NotAllowed");
    }
    let exp = exponent_of(&orig.currency);
    let left = orig.captured_minor - orig.refunded_minor;
    let amount = match r.reversed_amount {
        Some(a) => match a.to_minor(exp) {
            Some(m) if m > 0 => m,
            _ => return fail("MessageFormat"),
        },
        None => left,
    };
    if amount > left || left <= 0 {
        return fail("NotAllowed");
    }
    let kind = if r.reversed_amount.is_some() {
        "Refund"
    } else {
        "Reversal"
    };
    state.txns[idx].refunded_minor += amount;
    let (poi_txn, psp) = next_ids(&mut state);
    let body = ReversalResponse {
        response: NexoResponse {
            result: "Success".into(),
            error_condition: None,
            additional_response: Some(format!("pspReference={psp}")),
        },
        poi_data: Some(PoiData {
            poi_transaction_id: TransactionIdentification {
                transaction_id: poi_txn.clone(),
                time_stamp: now(),
            },
            poi_reconciliation_id: Some(format!("{}", state.period + 1000)),
        }),
        reversed_amount: Some(Amount::from_minor(amount, exp)),
    };
    let txn = SimTxn {
        kind: kind.into(),
        service_id: header.service_id.clone(),
        sale_id: header.sale_id.clone(),
        poi_transaction_id: poi_txn,
        sale_transaction_id: r
            .sale_data
            .map(|s| s.sale_transaction_id.transaction_id)
            .unwrap_or_default(),
        currency: orig.currency.clone(),
        requested_minor: amount,
        captured_minor: amount,
        refunded_minor: 0,
        state: "Approved".into(),
        offline: false,
        period: state.period,
        original: Some(original_id),
        response_header: header.response(),
        response_body: serde_json::to_string(&body).unwrap_or_default(),
    };
    state.txns.push(txn);
    if persist(&inner.state_path, &state).is_err() {
        return fail("UnavailableDevice");
    }
    SaleToPoiResponse {
        reversal_response: Some(body),
        ..empty_response(header)
    }
}

/// Whether a transaction of `kind` answers like a payment (`PaymentResponse`, message category
/// `Payment`) rather than like a reversal.
fn answers_as_payment(kind: &str) -> bool {
    matches!(kind, "Payment" | "UnreferencedRefund")
}

/// The outcome of an earlier request, named by its ServiceID and, when given, its message
/// category: a terminal keeps payments and reversals apart, so asking about a refund to a
/// presented card as a `Reversal` finds nothing.
fn status(
    inner: &Inner,
    header: &MessageHeader,
    service_id: Option<String>,
    category: Option<String>,
) -> SaleToPoiResponse {
    let result = |result: &str, condition: Option<&str>, repeated| SaleToPoiResponse {
        transaction_status_response: Some(TransactionStatusResponse {
            response: NexoResponse {
                result: result.into(),
                error_condition: condition.map(Into::into),
                additional_response: None,
            },
            repeated_message_response: repeated,
        }),
        ..empty_response(header)
    };
    let in_progress = lock(&inner.busy)
        .as_ref()
        .map(|b| service_id.as_deref().is_none_or(|s| s == b.service_id))
        .unwrap_or(false);
    if in_progress {
        return result("Failure", Some("InProgress"), None);
    }
    let state = lock(&inner.state);
    let found = state.txns.iter().rev().find(|t| {
        let t_category = if answers_as_payment(&t.kind) {
            "Payment"
        } else {
            "Reversal"
        };
        t.sale_id == header.sale_id
            && service_id.as_deref().is_none_or(|s| s == t.service_id)
            && category.as_deref().is_none_or(|c| c == t_category)
    });
    let Some(t) = found else {
        return result("Failure", Some("NotFound"), None);
    };
    let mut body = RepeatedResponseMessageBody {
        payment_response: None,
        reversal_response: None,
    };
    if answers_as_payment(&t.kind) {
        body.payment_response = serde_json::from_str(&t.response_body).ok();
    } else {
        body.reversal_response = serde_json::from_str(&t.response_body).ok();
    }
    let repeated = RepeatedMessageResponse {
        message_header: t.response_header.clone(),
        repeated_response_message_body: body,
    };
    result("Success", None, Some(repeated))
}

/// The totals of a closed period: the one asked for by its POIReconciliationID, or the last one
/// closed; `NotFound` for a period still open or never closed.
fn previous_totals(inner: &Inner, asked: Option<&str>) -> ReconciliationResponse {
    let open = lock(&inner.state).period;
    let period = match asked {
        Some(id) => id
            .parse::<u64>()
            .ok()
            .and_then(|id| id.checked_sub(1000))
            .filter(|p| *p < open),
        None => open.checked_sub(1),
    };
    match period {
        Some(period) => totals_of(inner, period, false),
        None => failure_totals("NotFound", "message=No%20such%20closed%20period"),
    }
}

fn totals(inner: &Inner, close: bool) -> ReconciliationResponse {
    let period = lock(&inner.state).period;
    totals_of(inner, period, close)
}

fn totals_of(inner: &Inner, period: u64, close: bool) -> ReconciliationResponse {
    let mut state = lock(&inner.state);
    let mut by_currency: HashMap<String, [(u64, i64); 2]> = HashMap::new();
    for t in state.txns.iter().filter(|t| t.period == period) {
        if !matches!(t.state.as_str(), "Approved" | "Pending") {
            continue;
        }
        let slot = by_currency.entry(t.currency.clone()).or_default();
        let i = usize::from(t.kind != "Payment");
        slot[i].0 += 1;
        slot[i].1 += t.captured_minor;
    }
    let mut currencies: Vec<_> = by_currency.into_iter().collect();
    currencies.sort_by(|a, b| a.0.cmp(&b.0));
    let transaction_totals = currencies
        .into_iter()
        .map(|(cur, slots)| {
            let exp = exponent_of(&cur);
            TransactionTotals {
                payment_instrument_type: "Card".into(),
                payment_currency: Some(cur),
                payment_totals: ["Debit", "Credit"]
                    .iter()
                    .zip(slots)
                    .filter(|(_, (n, _))| *n > 0)
                    .map(|(kind, (n, sum))| PaymentTotals {
                        transaction_type: (*kind).into(),
                        transaction_count: n,
                        transaction_amount: Amount::from_minor(sum, exp),
                    })
                    .collect(),
            }
        })
        .collect();
    let id = format!("{}", period + 1000);
    if close {
        state.period += 1;
        let _ = persist(&inner.state_path, &state);
    }
    ReconciliationResponse {
        response: NexoResponse {
            result: "Success".into(),
            error_condition: None,
            additional_response: None,
        },
        reconciliation_type: None,
        poi_reconciliation_id: Some(id),
        transaction_totals,
    }
}
