//! The card-payment routes of the store node: take a card payment on a till's terminal
//! (idempotent, recovered after a crash), reverse an abandoned one, refund by reference or to a
//! card presented on the terminal, the queue of offline approvals and its reconciliation, and
//! end-of-day totals against the ledger.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::ledger::EventBody;
use domain::sale::TenderKind;
use domain::staff::Role;
use domain::{Currency, Money, TerminalId};
use payments::service::{
    CardPayment, Journal as _, OpKind, Outcome, PaymentError, Record, Settlement, amount_given_back,
};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::api::{ApiError, ApiResult, RawBody, WriteRequest, context, terminal};
use crate::auth::Caller;
use crate::cards::{TillCards, TillTerminal};
use crate::node::Node;
use crate::payments::{TotalsScope, ledger_card_totals};

/// The card-payment routes.
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/v1/card-payments", post(pay))
        .route("/v1/card-payments/pending", get(pending))
        .route(
            "/v1/card-payments/reconcile-offline",
            post(reconcile_offline),
        )
        .route("/v1/card-payments/totals", get(totals))
        .route("/v1/card-payments/refund", post(refund_to_presented_card))
        .route("/v1/card-payments/refund-return", post(refund_return))
        .route("/v1/card-payments/refund-in-cash", post(refund_in_cash))
        .route("/v1/card-payments/{poi}/reverse", post(reverse))
        .route("/v1/card-payments/{poi}/refund", post(refund))
}

/// `terminal`'s card service, or why there is none.
fn till_cards(node: &Node, till: &TerminalId) -> ApiResult<Arc<TillCards>> {
    match node.cards.of(till) {
        TillTerminal::Ready(cards) => Ok(cards),
        TillTerminal::None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_payment_terminal",
            format!(
                "terminal {till} has no payment terminal: set one with `kassa store payment-terminal --terminal {till} …`, or record the card tender by hand"
            ),
        )),
        TillTerminal::Broken(e) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "payment_terminal_unavailable",
            format!("the payment terminal of {till} could not be set up: {e}"),
        )),
    }
}

fn payment_error(e: PaymentError) -> ApiError {
    match &e {
        PaymentError::Unresolved { .. } | PaymentError::OutcomeUnknown { .. } => ApiError::new(
            StatusCode::CONFLICT,
            "card_request_unresolved",
            format!("{e}; retry with the same Idempotency-Key"),
        ),
        PaymentError::Unreachable(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "terminal_unreachable", &e)
        }
        PaymentError::OfflineLimit { limit } => ApiError::invalid(
            "offline_limit_exceeded",
            "amount",
            format!("the {limit} offline limit would be exceeded: take another tender"),
        ),
        PaymentError::RefundTooLarge { .. } => {
            ApiError::invalid("refund_exceeds_captured", "amount", &e)
        }
        PaymentError::UnknownPayment(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_card_payment", &e)
        }
        PaymentError::InvalidAmount(_) => ApiError::invalid("invalid_field", "amount", &e),
        PaymentError::Refused(_) => {
            ApiError::new(StatusCode::PAYMENT_REQUIRED, "card_refund_refused", &e)
        }
        PaymentError::Malformed => ApiError::new(StatusCode::BAD_GATEWAY, "terminal_error", &e),
        PaymentError::Journal(_) => {
            tracing::error!(error = %e, "card journal failed");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable", &e)
        }
    }
}

fn amount(value: &str, currency: Currency, field: &str) -> ApiResult<Money> {
    let m = Money::parse_major(value, currency)
        .map_err(|e| ApiError::invalid("invalid_field", field, e))?;
    if m.minor() <= 0 {
        return Err(ApiError::invalid(
            "invalid_field",
            field,
            "the amount must be positive",
        ));
    }
    Ok(m)
}

fn minor(m: i64, currency: &str) -> String {
    Currency::parse(currency).map_or_else(
        |_| m.to_string(),
        |c| Money::from_minor(m, c).amount_string(),
    )
}

fn payment_view(p: &CardPayment) -> Value {
    json!({
        "poi_transaction_id": p.poi_transaction_id,
        "psp_reference": p.psp_reference,
        "auth_code": p.auth_code,
        "brand": p.brand,
        "masked_pan": p.masked_pan.as_ref().map(ToString::to_string),
        "entry_mode": p.entry_mode,
        "offline": p.offline,
        "authorised": minor(p.authorised_minor, &p.currency),
        "currency": p.currency,
    })
}

/// The answer to a card payment, from its journal record.
fn payment_answer(record: &Record) -> ApiResult<Response> {
    let op = &record.op;
    let base = json!({
        "service_id": op.service_id,
        "sale": op.sale_transaction_id,
        "requested": minor(op.amount_minor, &op.currency),
    });
    let (status, extra) = match &record.outcome {
        Some(Outcome::Approved { payment, .. }) => {
            let mut v = payment_view(payment);
            if let Some(o) = v.as_object_mut() {
                o.insert("status".into(), "approved".into());
                o.insert(
                    "partial".into(),
                    (payment.authorised_minor < op.amount_minor).into(),
                );
            }
            (StatusCode::CREATED, v)
        }
        Some(Outcome::Declined { condition, reason }) => (
            StatusCode::PAYMENT_REQUIRED,
            json!({
                "status": "declined",
                "code": "card_declined",
                "condition": condition,
                "reason": reason,
                "message": format!("the card was declined: {}", reason.as_deref().unwrap_or(condition)),
            }),
        ),
        Some(Outcome::NotProcessed) | None => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "terminal_not_processed",
                "the terminal did not take the payment; ask again",
            ));
        }
        Some(Outcome::Refunded { .. }) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_a_payment",
                "that request was a refund",
            ));
        }
    };
    let mut body = base;
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    Ok((status, Json(body)).into_response())
}

async fn record_of(cards: &TillCards, service_id: &str) -> ApiResult<Option<Record>> {
    Ok(cards
        .service
        .journal()
        .records()
        .await
        .map_err(|e| payment_error(e.into()))?
        .into_iter()
        .find(|r| r.op.service_id == service_id))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PayRequest {
    terminal: String,
    sale: String,
    amount: String,
}

async fn pay(
    State(node): State<Arc<Node>>,
    WriteRequest { key, body, caller }: WriteRequest,
) -> ApiResult<Response> {
    let request: PayRequest = body.parse()?;
    let till = terminal(&node, &request.terminal)?;
    caller.at(&till)?;
    let cards = till_cards(&node, &till)?;
    let ctx = context(&node)?;
    let currency = ctx.config.currency;
    let asked = amount(&request.amount, currency, "amount")?;
    let sale = request.sale.trim();
    if sale.is_empty() || sale.len() > 64 || !sale.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            "invalid_field",
            "sale",
            "the sale id is 1 to 64 visible ASCII characters",
        ));
    }
    let _held = cards.lock.lock().await;
    let known = sqlx::query(
        "SELECT request_hash, terminal, service_id FROM card_payment_keys WHERE key = $1",
    )
    .bind(&key.key)
    .fetch_optional(&node.pools.writer)
    .await?;
    if let Some(row) = known {
        if row.get::<Vec<u8>, _>("request_hash") != key.request_hash.to_vec() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                format!(
                    "idempotency key `{}` was already used for a different request",
                    key.key
                ),
            )
            .at("Idempotency-Key"));
        }
        let service_id: String = row.get("service_id");
        if let Some(record) = record_of(&cards, &service_id).await? {
            if record.outcome.is_none() {
                // Left in flight (the node crashed or the answer was lost): ask the terminal.
                cards
                    .service
                    .recover_in_flight()
                    .await
                    .map_err(payment_error)?;
            }
            if let Some(record) = record_of(&cards, &service_id).await? {
                match &record.outcome {
                    None => {
                        return Err(ApiError::new(
                            StatusCode::CONFLICT,
                            "card_request_unresolved",
                            "the terminal has not told the outcome yet; retry with the same Idempotency-Key",
                        ));
                    }
                    Some(Outcome::NotProcessed) => {}
                    Some(_) => return payment_answer(&record),
                }
            }
        }
    }
    let shift = crate::shifts::open_shift(&node.pools.reader, &till)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_open_shift",
                format!("terminal {till} has no open shift: open one with a counted float first"),
            )
        })?;
    let service_id = payments::link::new_service_id();
    sqlx::query(
        "INSERT INTO card_payment_keys (key, request_hash, terminal, service_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (key) DO UPDATE SET service_id = excluded.service_id",
    )
    .bind(&key.key)
    .bind(&key.request_hash[..])
    .bind(till.as_str())
    .bind(&service_id)
    .execute(&node.pools.writer)
    .await?;
    cards
        .service
        .pay_as(
            &service_id,
            sale,
            asked.minor(),
            (currency.code(), currency.exponent()),
            Some(&shift.id),
        )
        .await
        .map_err(payment_error)?;
    let record = record_of(&cards, &service_id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "card_journal_error",
            "the payment is missing from the journal",
        )
    })?;
    payment_answer(&record)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReverseRequest {
    terminal: String,
}

async fn used_by(node: &Node, till: &TerminalId, poi: &str) -> ApiResult<Option<String>> {
    let used: Option<Option<String>> = sqlx::query_scalar(
        "SELECT used_by FROM card_requests WHERE terminal = $1
         AND json_extract(outcome, '$.Approved.payment.poi_transaction_id') = $2",
    )
    .bind(till.as_str())
    .bind(poi)
    .fetch_optional(&node.pools.reader)
    .await?;
    Ok(used.flatten())
}

/// The answer to a refund or reversal: `201` with what was given back; a request the terminal
/// never had is `503`, to be asked again.
fn given_back(outcome: &Outcome, currency: &str) -> ApiResult<Response> {
    match outcome {
        Outcome::Refunded {
            poi_transaction_id,
            amount_minor,
        } => Ok((
            StatusCode::CREATED,
            Json(json!({
                "status": "refunded",
                "poi_transaction_id": poi_transaction_id,
                "amount": minor(*amount_minor, currency),
            })),
        )
            .into_response()),
        Outcome::NotProcessed => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "terminal_not_processed",
            "the terminal did not take the request; ask again",
        )),
        other => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "terminal_error",
            format!("the terminal answered a refund with {other:?}"),
        )),
    }
}

/// The outcome of the latest earlier refund or reversal of `poi` (none: a refund to a presented
/// card) made for `id` (a retry).
async fn given_back_before(
    cards: &TillCards,
    kind: OpKind,
    poi: Option<&str>,
    id: &str,
) -> ApiResult<Option<Outcome>> {
    Ok(cards
        .service
        .journal()
        .records()
        .await
        .map_err(|e| payment_error(e.into()))?
        .into_iter()
        .rev()
        .find_map(|r| match r.outcome {
            Some(o @ Outcome::Refunded { .. })
                if r.op.kind == kind
                    && r.op.sale_transaction_id == id
                    && r.op.original_poi_transaction_id.as_deref() == poi =>
            {
                Some(o)
            }
            _ => None,
        }))
}

/// Reverses an approved payment a sale never used (the sale was abandoned after approval).
async fn reverse(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Path(poi): Path<String>,
    body: RawBody,
) -> ApiResult<Response> {
    let request: ReverseRequest = body.parse()?;
    let till = terminal(&node, &request.terminal)?;
    caller.at(&till)?;
    let cards = till_cards(&node, &till)?;
    let currency = context(&node)?.config.currency;
    if let Some(receipt) = used_by(&node, &till, &poi).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "card_payment_used",
            format!("card payment {poi} paid sale {receipt}: return the goods instead"),
        ));
    }
    let _held = cards.lock.lock().await;
    // A reversal whose answer was lost is learnt first, so asked again it answers that one.
    cards
        .service
        .ensure_resolved()
        .await
        .map_err(payment_error)?;
    let reversal_id = format!("reversal-{poi}");
    // The same reversal asked again answers the first one's outcome.
    let outcome =
        match given_back_before(&cards, OpKind::Reversal, Some(&poi), &reversal_id).await? {
            Some(done) => done,
            None => cards
                .service
                .reverse(&poi, &reversal_id)
                .await
                .map_err(payment_error)?,
        };
    given_back(&outcome, currency.code())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundRequest {
    terminal: String,
    amount: String,
    #[serde(rename = "return")]
    return_receipt: String,
}

/// Refunds a return to the card of an earlier payment, by its reference; all refunds of one
/// payment together never exceed what it captured, and all card refunds of a return, on every
/// till of this node, never exceed what it paid out to a card.
async fn refund(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Path(poi): Path<String>,
    body: RawBody,
) -> ApiResult<Response> {
    let request: RefundRequest = body.parse()?;
    let till = terminal(&node, &request.terminal)?;
    caller.at(&till)?;
    let cards = till_cards(&node, &till)?;
    let currency = context(&node)?.config.currency;
    let asked = amount(&request.amount, currency, "amount")?;
    let number = request.return_receipt.trim();
    let ret = return_named(&node, number).await?;
    let _held = cards.lock.lock().await;
    // A refund whose answer was lost is learnt first, so asked again it answers that one.
    cards
        .service
        .ensure_resolved()
        .await
        .map_err(payment_error)?;
    // The same return asked again answers the first refund's outcome.
    if let Some(done) = given_back_before(&cards, OpKind::Refund, Some(&poi), number).await? {
        return given_back(&done, currency.code());
    }
    ReturnCardRefund::of(&node, number, &ret).await?.check(
        number,
        Some(asked.minor()),
        currency.code(),
    )?;
    let outcome = cards
        .service
        .refund(&poi, number, asked.minor())
        .await
        .map_err(|e| match e {
            // The till reads how much is left from the message ("at most … is left").
            PaymentError::RefundTooLarge { left, .. } => ApiError::invalid(
                "refund_exceeds_captured",
                "amount",
                format!(
                    "{e}: at most {} is left to refund on card payment {poi}",
                    minor(left.max(0), currency.code())
                ),
            ),
            e => payment_error(e),
        })?;
    given_back(&outcome, currency.code())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnRefundRequest {
    terminal: String,
    #[serde(rename = "return")]
    return_receipt: String,
}

/// A card payment that paid a return's sale, as the terminal approved it.
struct SaleCardPayment {
    /// Its POI transaction id.
    poi: String,
    /// The till whose terminal approved it.
    paid_on: String,
    /// What it authorised, minor units.
    authorised: i64,
    /// Its currency.
    currency: String,
    /// Approved offline and declined later: the money was never collected.
    declined_later: bool,
}

/// The approved card payments of a return's sale, in the sale's tender order (none for a
/// return without receipt).
async fn sale_card_approvals(
    node: &Node,
    ret: &domain::ledger::ReturnCompleted,
) -> ApiResult<Vec<SaleCardPayment>> {
    let Some(original) = &ret.original_receipt else {
        return Ok(Vec::new());
    };
    let sale = crate::payments::receipt_event(&node.pools.reader, original)
        .await
        .map_err(|e| payment_error(e.into()))?;
    let Some(EventBody::SaleCompleted(sale)) = sale.map(|e| e.body) else {
        return Ok(Vec::new());
    };
    let mut payments = Vec::new();
    for poi in sale
        .tenders
        .iter()
        .filter(|t| t.kind == TenderKind::Card)
        .filter_map(|t| t.reference.as_deref())
    {
        let approved = card_requests(
            node,
            "json_extract(outcome, '$.Approved.payment.poi_transaction_id') = $1",
            poi,
        )
        .await?;
        if let Some((
            paid_on,
            Record {
                outcome:
                    Some(Outcome::Approved {
                        payment,
                        settlement,
                    }),
                ..
            },
        )) = approved.into_iter().next()
        {
            payments.push(SaleCardPayment {
                poi: poi.to_owned(),
                paid_on,
                authorised: payment.authorised_minor,
                currency: payment.currency,
                declined_later: settlement == Settlement::DeclinedLater,
            });
        }
    }
    Ok(payments)
}

/// One refund part as the answer shows it, with its amount in minor units.
fn part_view(outcome: &Outcome, original: &str, currency: &str) -> Option<(Value, i64)> {
    match outcome {
        Outcome::Refunded {
            poi_transaction_id,
            amount_minor,
        } => Some((
            json!({
                "card_payment": original,
                "poi_transaction_id": poi_transaction_id,
                "amount": minor(*amount_minor, currency),
            }),
            *amount_minor,
        )),
        _ => None,
    }
}

/// Refunds what a return paid out to a card across every card payment of its sale that this
/// till's terminal took, each by its own reference and at most what is left of it, until the
/// return's card refund is given back. Asked again (after a refusal, a lost link or a lost
/// answer) it refunds only what is still due: a payment already refunded for this return
/// answers that refund. The answer lists every part (`parts`), what they gave back
/// (`refunded`) and what is still `due` (to a card presented on the terminal, when the sale's
/// payments have nothing left or were taken at another till). A terminal that stops part-way
/// answers `card_refund_incomplete` with the parts so far and what is due: ask again.
async fn refund_return(
    State(node): State<Arc<Node>>,
    caller: Caller,
    body: RawBody,
) -> ApiResult<Response> {
    let request: ReturnRefundRequest = body.parse()?;
    let till = terminal(&node, &request.terminal)?;
    caller.at(&till)?;
    let cards = till_cards(&node, &till)?;
    let currency = context(&node)?.config.currency;
    let code = currency.code();
    let number = request.return_receipt.trim();
    let ret = card_return_named(&node, number).await?;
    let payments: Vec<_> = sale_card_approvals(&node, &ret)
        .await?
        .into_iter()
        .filter(|p| !p.declined_later && p.paid_on == till.as_str())
        .map(|p| (p.poi, p.authorised))
        .collect();
    let _held = cards.lock.lock().await;
    // A refund whose answer was lost is learnt first, so it counts as given back below.
    cards
        .service
        .ensure_resolved()
        .await
        .map_err(payment_error)?;
    let mut parts = Vec::new();
    let mut todo = Vec::new();
    for (poi, authorised) in &payments {
        match given_back_before(&cards, OpKind::Refund, Some(poi), number).await? {
            Some(done) => parts.extend(part_view(&done, poi, code)),
            None => todo.push((poi, *authorised)),
        }
    }
    let mut due = ReturnCardRefund::of(&node, number, &ret).await?.left();
    let answer = |parts: &[(Value, i64)], due: i64| {
        let refunded: i64 = parts.iter().map(|(_, m)| m).sum();
        let parts: Vec<&Value> = parts.iter().map(|(v, _)| v).collect();
        let mut map = serde_json::Map::new();
        map.insert("return".into(), json!(number));
        map.insert("parts".into(), json!(parts));
        map.insert("refunded".into(), json!(minor(refunded, code)));
        map.insert("due".into(), json!(minor(due.max(0), code)));
        map
    };
    for (poi, authorised) in todo {
        if due <= 0 {
            break;
        }
        let refunds = card_requests(
            &node,
            "json_extract(op, '$.original_poi_transaction_id') = $1",
            poi,
        )
        .await?
        .into_iter()
        .filter(|(t, _)| t == till.as_str())
        .collect::<Vec<_>>();
        let amount = due.min(authorised - given_back_by(&refunds));
        if amount <= 0 {
            continue;
        }
        let outcome = cards.service.refund(poi, number, amount).await;
        let stopped = match &outcome {
            Ok(done @ Outcome::Refunded { amount_minor, .. }) => {
                due -= amount_minor;
                parts.extend(part_view(done, poi, code));
                continue;
            }
            Ok(Outcome::NotProcessed) => "the terminal did not take the request".to_owned(),
            Ok(other) => format!("the terminal answered {other:?}"),
            Err(e) => e.to_string(),
        };
        let mut detail = answer(&parts, due);
        detail.insert("status".into(), json!("incomplete"));
        let status = match &outcome {
            Err(PaymentError::Refused(_)) => StatusCode::PAYMENT_REQUIRED,
            Err(PaymentError::Unresolved { .. } | PaymentError::OutcomeUnknown { .. }) => {
                StatusCode::CONFLICT
            }
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        return Err(ApiError::new(
            status,
            "card_refund_incomplete",
            format!(
                "card refund of return {number} stopped at card payment {poi} ({stopped}): {} is still due; ask again",
                minor(due, code)
            ),
        )
        .with_detail(detail));
    }
    let mut body = answer(&parts, due);
    body.insert(
        "status".into(),
        json!(if due > 0 { "partial" } else { "refunded" }),
    );
    Ok((StatusCode::CREATED, Json(Value::Object(body))).into_response())
}

/// Pays from the drawer in cash what return `return`'s card refund has not given back, when
/// no terminal can (it refuses, it is down, the card is gone), so the ledger never holds more
/// refunded to a card than the cards got. This till's terminal is asked first about a refund
/// whose answer was lost, so what it did give back is not paid twice. Answers the
/// `CardRefundPaidInCash` event; a return with nothing left to give back is `409 nothing_due`.
/// Sent again with the same `Idempotency-Key`, it answers the same event.
async fn refund_in_cash(
    State(node): State<Arc<Node>>,
    WriteRequest { key, body, caller }: WriteRequest,
) -> ApiResult<Response> {
    if let Some(response) = crate::api::replay(&node, &key).await? {
        return Ok(response);
    }
    let request: ReturnRefundRequest = body.parse()?;
    let till = terminal(&node, &request.terminal)?;
    caller.at(&till)?;
    let currency = context(&node)?.config.currency;
    let number = request.return_receipt.trim();
    let ret = card_return_named(&node, number).await?;
    // The cash comes from the drawer of the till that took the return, so its shift and its
    // terminal's end of day hold both halves.
    let taken_at = crate::payments::receipt_event(&node.pools.reader, number)
        .await
        .map_err(|e| payment_error(e.into()))?
        .map(|e| e.meta.terminal);
    if let Some(other) = taken_at.filter(|t| *t != till) {
        return Err(ApiError::invalid(
            "return_at_another_till",
            "return",
            format!(
                "return {number} was taken at till {other}: pay its card refund in cash from that till's drawer"
            ),
        ));
    }
    // While this is written no refund runs on this till's terminal, and one whose answer was
    // lost is learnt first.
    let cards = match node.cards.of(&till) {
        TillTerminal::Ready(cards) => Some(cards),
        _ => None,
    };
    let _held = match &cards {
        Some(cards) => {
            let held = cards.lock.lock().await;
            cards
                .service
                .ensure_resolved()
                .await
                .map_err(payment_error)?;
            Some(held)
        }
        None => None,
    };
    let in_cash_before = {
        let mut conn = node.pools.reader.acquire().await?;
        crate::ledger::card_refund_in_cash(&mut conn, number).await?
    };
    let left = ReturnCardRefund::of(&node, number, &ret).await?.left();
    if left <= 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "nothing_due",
            format!("return {number}'s card refund was given back in full: nothing is due"),
        ));
    }
    let op = crate::ledger::Op::CardRefundInCash {
        terminal: till,
        return_receipt: number.to_owned(),
        amount: Money::from_minor(left, currency),
        in_cash_before,
    };
    Ok(crate::api::recorded(
        node.ledger.write(Some(key), op).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresentedCardRefundRequest {
    terminal: String,
    #[serde(rename = "return")]
    return_receipt: String,
    amount: Option<String>,
}

/// The return with receipt `number`, recorded on any till of this node (the node's ledger has
/// every till's events), or `422 unknown_return`.
async fn return_named(node: &Node, number: &str) -> ApiResult<domain::ledger::ReturnCompleted> {
    let event = crate::payments::receipt_event(&node.pools.reader, number)
        .await
        .map_err(|e| payment_error(e.into()))?;
    match event.map(|e| e.body) {
        Some(EventBody::ReturnCompleted(ret)) => Ok(ret),
        _ => Err(ApiError::invalid(
            "unknown_return",
            "return",
            format!("no return with receipt `{number}` on this store node"),
        )),
    }
}

/// The return with receipt `number` ([`return_named`]), refunded to a card, or
/// `422 return_not_refunded_to_card`.
async fn card_return_named(
    node: &Node,
    number: &str,
) -> ApiResult<domain::ledger::ReturnCompleted> {
    let ret = return_named(node, number).await?;
    if !ret.tenders.iter().any(|t| t.kind == TenderKind::Card) {
        return Err(ApiError::invalid(
            "return_not_refunded_to_card",
            "return",
            format!("return {number} was not refunded to a card: nothing is due back to a card"),
        ));
    }
    Ok(ret)
}

/// The card requests of every till of this node that match `condition`, with their till.
async fn card_requests(
    node: &Node,
    condition: &str,
    value: &str,
) -> ApiResult<Vec<(String, Record)>> {
    crate::payments::records_where(&node.pools.reader, condition, value)
        .await
        .map_err(|e| payment_error(e.into()))
}

/// What the card requests of `records` gave back (see [`amount_given_back`]).
fn given_back_by(records: &[(String, Record)]) -> i64 {
    amount_given_back(records.iter().map(|(_, r)| r))
}

/// Refuses a refund to a presented card for a return whose sale was paid through a terminal of
/// this node: while its card payment has money left, the return goes back to that card by
/// reference; a card payment approved offline and declined later never collected the money, so
/// nothing goes back to any card.
async fn refund_by_reference_first(
    node: &Node,
    number: &str,
    ret: &domain::ledger::ReturnCompleted,
) -> ApiResult<()> {
    let Some(original) = &ret.original_receipt else {
        return Ok(());
    };
    let mut declined = None;
    for payment in sale_card_approvals(node, ret).await? {
        let SaleCardPayment {
            poi,
            paid_on,
            authorised,
            currency,
            declined_later,
        } = payment;
        if declined_later {
            declined = Some(poi);
            continue;
        }
        let refunds: Vec<_> = card_requests(
            node,
            "json_extract(op, '$.original_poi_transaction_id') = $1",
            &poi,
        )
        .await?
        .into_iter()
        .filter(|(t, _)| *t == paid_on)
        .collect();
        let left = authorised - given_back_by(&refunds);
        if left > 0 {
            return Err(ApiError::invalid(
                "refund_by_reference",
                "return",
                format!(
                    "return {number}'s sale {original} was paid by card payment {poi} on terminal {paid_on}, with {} left to refund: refund it by reference (POST /v1/card-payments/{poi}/refund with terminal {paid_on})",
                    minor(left, &currency),
                ),
            ));
        }
    }
    if let Some(poi) = declined {
        return Err(ApiError::invalid(
            "card_payment_declined_later",
            "return",
            format!(
                "return {number}'s sale {original} was paid by card payment {poi}, approved offline and declined later: the money was never collected, so nothing goes back to a card"
            ),
        ));
    }
    Ok(())
}

/// What a return paid out to a card (its card tenders less what the drawer paid in cash
/// instead, minor units), against what card refunds of it, by reference or to a presented card,
/// on every till of this node, already gave back.
struct ReturnCardRefund {
    paid_out: i64,
    given_back: i64,
}

impl ReturnCardRefund {
    /// Counts refunds still in flight as given back until they are known to have failed; the
    /// caller resolves its own till's first, so only other tills' can still be in flight.
    async fn of(
        node: &Node,
        number: &str,
        ret: &domain::ledger::ReturnCompleted,
    ) -> ApiResult<Self> {
        let refunds = card_requests(
            node,
            "json_extract(op, '$.sale_transaction_id') = $1
             AND json_extract(op, '$.kind') IN ('Refund', 'UnreferencedRefund')",
            number,
        )
        .await?;
        let in_cash = {
            let mut conn = node.pools.reader.acquire().await?;
            crate::ledger::card_refund_in_cash(&mut conn, number).await?
        };
        let to_card: i64 = ret
            .tenders
            .iter()
            .filter(|t| t.kind == TenderKind::Card)
            .map(|t| t.amount.minor())
            .sum();
        Ok(Self {
            paid_out: to_card - in_cash,
            given_back: given_back_by(&refunds),
        })
    }

    fn left(&self) -> i64 {
        self.paid_out - self.given_back
    }

    /// `asked` (all that is left when `None`), or why it cannot be given back.
    fn check(&self, number: &str, asked: Option<i64>, currency: &str) -> ApiResult<i64> {
        let left = self.left();
        let refund = asked.unwrap_or(left);
        if refund <= 0 || refund > left {
            return Err(ApiError::invalid(
                "refund_exceeds_return",
                if asked.is_some() { "amount" } else { "return" },
                format!(
                    "return {number} paid out {} to a card and card refunds gave back {}: at most {} is left to refund",
                    minor(self.paid_out, currency),
                    minor(self.given_back, currency),
                    minor(left.max(0), currency),
                ),
            ));
        }
        Ok(refund)
    }
}

/// Refunds a return to the card the customer presents on the till's terminal (an unreferenced
/// refund), for a return with no card payment to refund by reference: at most what the return
/// paid out to a card less what card refunds of that return already gave back. Asked again
/// when nothing is left, it answers the last refund to a presented card; while something is
/// left (an earlier refund of a smaller amount), it refunds what is asked of the rest. A request
/// asked again after its answer was lost answers that refund: it is learnt from the terminal
/// before anything new is sent.
async fn refund_to_presented_card(
    State(node): State<Arc<Node>>,
    caller: Caller,
    body: RawBody,
) -> ApiResult<Response> {
    let request: PresentedCardRefundRequest = body.parse()?;
    let till = terminal(&node, &request.terminal)?;
    caller.at(&till)?;
    let cards = till_cards(&node, &till)?;
    let currency = context(&node)?.config.currency;
    let asked = request
        .amount
        .as_deref()
        .map(|a| amount(a, currency, "amount"))
        .transpose()?;
    let number = request.return_receipt.trim();
    let ret = card_return_named(&node, number).await?;
    refund_by_reference_first(&node, number, &ret).await?;
    let _held = cards.lock.lock().await;
    if let Some(lost) = cards
        .service
        .recovered_refund(number)
        .await
        .map_err(payment_error)?
    {
        return given_back(&lost, currency.code());
    }
    let so_far = ReturnCardRefund::of(&node, number, &ret).await?;
    if so_far.left() <= 0 {
        if let Some(done) =
            given_back_before(&cards, OpKind::UnreferencedRefund, None, number).await?
        {
            return given_back(&done, currency.code());
        }
    }
    let refund = so_far.check(number, asked.map(|m| m.minor()), currency.code())?;
    let shift = crate::shifts::open_shift(&node.pools.reader, &till)
        .await?
        .map(|s| s.id);
    let outcome = cards
        .service
        .refund_to_presented_card(
            number,
            refund,
            (currency.code(), currency.exponent()),
            shift.as_deref(),
        )
        .await
        .map_err(payment_error)?;
    given_back(&outcome, currency.code())
}

#[derive(Debug, Deserialize)]
struct TillQuery {
    terminal: Option<String>,
}

fn tills(node: &Node, only: Option<&str>) -> ApiResult<Vec<(TerminalId, Arc<TillCards>)>> {
    match only {
        Some(t) => {
            let till = terminal(node, t)?;
            let cards = till_cards(node, &till)?;
            Ok(vec![(till, cards)])
        }
        None => {
            let mut all = node.cards.ready();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(all)
        }
    }
}

/// Offline approvals waiting for their final outcome, with their age.
/// Offline card approvals not yet settled, for any member or device signed in at this node.
async fn pending(
    State(node): State<Arc<Node>>,
    _caller: Caller,
    Query(query): Query<TillQuery>,
) -> ApiResult<Json<Value>> {
    let mut out = Vec::new();
    for (till, cards) in tills(&node, query.terminal.as_deref())? {
        for p in cards
            .service
            .pending_offline()
            .await
            .map_err(payment_error)?
        {
            let receipt: Option<Option<String>> =
                sqlx::query_scalar("SELECT used_by FROM card_requests WHERE service_id = $1")
                    .bind(&p.op.service_id)
                    .fetch_optional(&node.pools.reader)
                    .await?;
            out.push(json!({
                "terminal": till.to_string(),
                "service_id": p.op.service_id,
                "sale": p.op.sale_transaction_id,
                "receipt": receipt.flatten(),
                "poi_transaction_id": p.payment.poi_transaction_id,
                "amount": minor(p.payment.authorised_minor, &p.payment.currency),
                "currency": p.payment.currency,
                "age_secs": p.age_secs,
            }));
        }
    }
    let oldest = out.iter().filter_map(|p| p["age_secs"].as_i64()).max();
    Ok(Json(
        json!({"count": out.len(), "oldest_age_secs": oldest, "pending": out}),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReconcileRequest {
    terminal: Option<String>,
}

/// Asks the terminals for the final outcome of every offline approval; later declines are
/// recorded (`CardOfflineDeclined`) and listed.
/// Settles the offline card approvals of one till (its own member or device) or of every till
/// (a supervisor or above).
async fn reconcile_offline(
    State(node): State<Arc<Node>>,
    caller: Caller,
    body: RawBody,
) -> ApiResult<Json<Value>> {
    let request: ReconcileRequest = if body.is_empty() {
        ReconcileRequest::default()
    } else {
        body.parse()?
    };
    match request.terminal.as_deref() {
        Some(t) => {
            caller.at(&terminal(&node, t)?)?;
        }
        None => {
            caller.with_role(
                Role::Supervisor,
                "settling every till's offline card approvals",
            )?;
        }
    }
    let mut declined = Vec::new();
    let mut left = 0;
    for (till, cards) in tills(&node, request.terminal.as_deref())? {
        let _held = cards.lock.lock().await;
        for e in cards
            .service
            .reconcile_offline()
            .await
            .map_err(payment_error)?
        {
            declined.push(json!({
                "terminal": till.to_string(),
                "sale": e.sale_transaction_id,
                "poi_transaction_id": e.payment.poi_transaction_id,
                "amount": minor(e.payment.authorised_minor, &e.payment.currency),
            }));
        }
        left += cards
            .service
            .pending_offline()
            .await
            .map_err(payment_error)?
            .len();
    }
    Ok(Json(json!({"declined": declined, "pending": left})))
}

#[derive(Debug, Deserialize)]
struct TotalsQuery {
    terminal: String,
    shift: Option<String>,
    day: Option<String>,
    #[serde(default)]
    close: bool,
}

fn lines(rows: &[(String, u64, i64)]) -> Value {
    rows.iter()
        .map(|(c, n, m)| json!({"currency": c, "count": n, "amount": minor(*m, c)}))
        .collect()
}

/// End of day: the terminal's totals against the ledger's card tenders of a shift or a
/// business day, with the differences.
/// The end-of-day card totals of a till against its terminal's, for supervisors and above.
async fn totals(
    State(node): State<Arc<Node>>,
    caller: Caller,
    query: Result<Query<TotalsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let query = crate::api::query_params(query)?;
    caller.with_role(Role::Supervisor, "the end-of-day card totals")?;
    let till = terminal(&node, &query.terminal)?;
    let cards = till_cards(&node, &till)?;
    let mut scope = TotalsScope {
        terminal: Some(till.clone()),
        ..TotalsScope::default()
    };
    match (&query.shift, &query.day) {
        (Some(shift), None) => {
            let row: Option<(i64, Option<i64>)> = sqlx::query_as(
                "SELECT opened_seq, closed_seq FROM shifts WHERE id = $1 AND terminal = $2",
            )
            .bind(shift)
            .bind(till.as_str())
            .fetch_optional(&node.pools.reader)
            .await?;
            let (from, to) = row.ok_or_else(|| {
                ApiError::invalid(
                    "unknown_shift",
                    "shift",
                    format!("no shift {shift} on {till}"),
                )
            })?;
            scope.seq = Some((from, to.unwrap_or(i64::MAX)));
        }
        (None, Some(day)) => {
            let tz = context(&node)?.config.timezone.clone();
            scope.wall_ms = Some(day_bounds(day, &tz)?);
        }
        _ => {
            return Err(ApiError::invalid(
                "invalid_query",
                "shift",
                "give either shift=ID or day=YYYY-MM-DD",
            ));
        }
    }
    let ledger = ledger_card_totals(&node.pools.reader, &scope)
        .await
        .map_err(|e| payment_error(e.into()))?;
    let _held = cards.lock.lock().await;
    let r = cards
        .service
        .reconcile(query.close, &ledger.debits, &ledger.credits)
        .await
        .map_err(payment_error)?;
    Ok(Json(json!({
        "terminal": till.to_string(),
        "shift": query.shift,
        "day": query.day,
        "closed": query.close,
        "poi_reconciliation_id": r.poi_reconciliation_id,
        "terminal_totals": {"payments": lines(&r.terminal_debits), "refunds": lines(&r.terminal_credits)},
        "ledger_totals": {"payments": lines(&ledger.debits), "refunds": lines(&ledger.credits)},
        "differences": r.differences,
        "unused_approvals": unused_approvals(&node, &till, &cards).await?,
        "card_refunds_owed": card_refunds_owed(&node, &ledger.card_returns).await?,
    })))
}

/// The returns among `receipts` whose card refund no terminal has given back in full and the
/// drawer has not paid in cash: money a customer is still owed. End of day lists them with
/// what is owed, so someone refunds it (`POST /v1/card-payments/refund-return`, `…/refund`) or
/// pays it in cash (`POST /v1/card-payments/refund-in-cash`).
async fn card_refunds_owed(node: &Node, receipts: &[String]) -> ApiResult<Value> {
    let currency = context(node)?.config.currency;
    let mut owed = Vec::new();
    for number in receipts {
        let ret = return_named(node, number).await?;
        let left = ReturnCardRefund::of(node, number, &ret).await?.left();
        if left > 0 {
            owed.push(json!({"return": number, "owed": minor(left, currency.code())}));
        }
    }
    Ok(Value::Array(owed))
}

/// Card payments the terminal approved that no sale or gift card took and that were never
/// reversed: money a customer was charged for nothing (a sale abandoned after approval, a till
/// whose page was lost). End of day lists them so that someone gives them back.
async fn unused_approvals(node: &Node, till: &TerminalId, cards: &TillCards) -> ApiResult<Value> {
    let records = cards
        .service
        .journal()
        .records()
        .await
        .map_err(|e| payment_error(e.into()))?;
    let reversed: std::collections::BTreeSet<&str> = records
        .iter()
        .filter(|r| {
            r.op.kind == OpKind::Reversal && matches!(r.outcome, Some(Outcome::Refunded { .. }))
        })
        .filter_map(|r| r.op.original_poi_transaction_id.as_deref())
        .collect();
    // Payments a sale or a gift card took, read at once rather than one by one.
    let used: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT json_extract(outcome, '$.Approved.payment.poi_transaction_id') FROM card_requests
         WHERE terminal = $1 AND used_by IS NOT NULL",
    )
    .bind(till.as_str())
    .fetch_all(&node.pools.reader)
    .await?;
    let used: std::collections::BTreeSet<String> = used.into_iter().flatten().collect();
    let mut unused = Vec::new();
    for r in &records {
        let Some(Outcome::Approved { payment, .. }) = &r.outcome else {
            continue;
        };
        if r.op.kind != OpKind::Payment
            || reversed.contains(payment.poi_transaction_id.as_str())
            || used.contains(&payment.poi_transaction_id)
        {
            continue;
        }
        unused.push(json!({
            "poi_transaction_id": payment.poi_transaction_id,
            "amount": minor(payment.authorised_minor, &payment.currency),
            "currency": payment.currency,
            "approved_at": r.op.started_at,
        }));
    }
    Ok(Value::Array(unused))
}

/// Start and end (epoch ms) of a business day in the store's time zone.
fn day_bounds(day: &str, timezone: &str) -> ApiResult<(i64, i64)> {
    let bad = |e: &dyn std::fmt::Display| {
        ApiError::invalid(
            "invalid_field",
            "day",
            format!("`{day}` is not YYYY-MM-DD: {e}"),
        )
    };
    let date: jiff::civil::Date = day.parse().map_err(|e| bad(&e))?;
    let tz = jiff::tz::TimeZone::get(timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let start = date.to_zoned(tz.clone()).map_err(|e| bad(&e))?;
    let end = date
        .tomorrow()
        .and_then(|d| d.to_zoned(tz))
        .map_err(|e| bad(&e))?;
    Ok((
        start.timestamp().as_millisecond(),
        end.timestamp().as_millisecond(),
    ))
}
