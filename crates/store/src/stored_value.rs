//! Gift cards and store credit at the store node: issuing and topping up (ledger events paid
//! with cash or card), the balance of an account (HQ's figure plus this node's own movements
//! that HQ does not have yet, or only what this node knows while HQ is out of reach), and the
//! redemption check every sale and return runs before it is written: online never above HQ's
//! balance, offline never over the store's liability cap counting the redemptions HQ has not
//! yet acknowledged.
//!
//! Each appended event's stored-value movements are kept in `stored_value_moves` by terminal
//! and sequence, like `local_moves` for stock, so the node can add exactly its events after
//! HQ's watermarks.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::ledger::{Event, EventBody};
use domain::sale::{Tender, TenderKind};
use domain::stored_value::{
    AccountNumber, Movement, MovementKind, StoredValueError, StoredValueKind, StoredValueLoad,
    check_offline_cap, check_redemption, settle_load, void_movements,
};
use domain::{Currency, Money};
use protocol::api::parse_tenders;
use protocol::stored_value::{IssueRequest, StoredValueBalance, TopUpRequest};
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;

use crate::api::{ApiError, ApiResult, WriteRequest, context, recorded, replay, terminal};
use crate::ledger::{Op, WriteError};
use crate::node::Node;

/// The node's stored-value service: the lock that makes a check and the write it allows one
/// step.
#[derive(Debug, Default)]
pub struct Service {
    lock: tokio::sync::Mutex<()>,
}

/// Sets the store's offline liability cap (major units of the store's currency), kept in the
/// node's database.
pub async fn set_offline_cap(node: &Node, cap: &str) -> Result<(), String> {
    if let Some(ctx) = node.context() {
        let parsed = Money::parse_major(cap, ctx.config.currency)
            .map_err(|e| format!("offline cap: {e}"))?;
        if parsed.is_negative() {
            return Err("offline cap: must not be negative".into());
        }
    } else if cap.trim().is_empty() {
        return Err("offline cap: empty".into());
    }
    sqlx::query(
        "INSERT INTO stored_value_settings (singleton, offline_cap) VALUES (1, $1)
         ON CONFLICT (singleton) DO UPDATE SET offline_cap = excluded.offline_cap",
    )
    .bind(cap.trim())
    .execute(&node.pools.writer)
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

async fn offline_cap(node: &Node, currency: Currency) -> ApiResult<Money> {
    let cap: Option<String> =
        sqlx::query_scalar("SELECT offline_cap FROM stored_value_settings WHERE singleton = 1")
            .fetch_optional(&node.pools.reader)
            .await?;
    Ok(cap
        .and_then(|c| Money::parse_major(&c, currency).ok())
        .unwrap_or(Money::zero(currency)))
}

/// Records the stored-value movements of an event just appended (inside the writer's
/// transaction). A void gives back what the voided sale redeemed.
pub(crate) async fn record(conn: &mut SqliteConnection, event: &Event) -> Result<(), WriteError> {
    let moves = match &event.body {
        EventBody::SaleVoided(void) => {
            let rows = sqlx::query(
                "SELECT account, kind, currency, delta FROM stored_value_moves WHERE event_id = $1",
            )
            .bind(void.sale.to_string())
            .fetch_all(&mut *conn)
            .await?;
            let sale: Vec<Movement> = rows.iter().filter_map(row_movement).collect();
            void_movements(&sale)
        }
        body => domain::stored_value::movements(body),
    };
    // Two tenders on one account in one sale are one movement.
    let mut summed: BTreeMap<(String, MovementKind), Money> = BTreeMap::new();
    for m in moves {
        let key = (m.account.to_string(), m.kind);
        let sum = match summed.get(&key) {
            Some(s) => s.checked_add(m.delta).unwrap_or(*s),
            None => m.delta,
        };
        summed.insert(key, sum);
    }
    for ((account, kind), delta) in summed {
        sqlx::query(
            "INSERT INTO stored_value_moves (terminal, seq, event_id, account, kind, currency, delta)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(event.meta.terminal.as_str())
        .bind(i64::try_from(event.meta.seq).unwrap_or(i64::MAX))
        .bind(event.meta.id.to_string())
        .bind(account)
        .bind(kind.as_str())
        .bind(delta.currency().code())
        .bind(delta.minor())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn row_movement(row: &sqlx::sqlite::SqliteRow) -> Option<Movement> {
    let currency = Currency::parse(row.get::<&str, _>("currency")).ok()?;
    Some(Movement {
        account: AccountNumber::parse(row.get::<&str, _>("account")).ok()?,
        kind: MovementKind::parse(row.get::<&str, _>("kind"))?,
        delta: Money::from_minor(row.get("delta"), currency),
    })
}

/// What HQ said about an account.
enum HqAnswer {
    /// HQ answered.
    Known(StoredValueBalance),
    /// HQ could not be reached (or answered with an error).
    Unreachable(String),
    /// This node does not sync: it is the whole chain, and what it knows is complete.
    Standalone,
}

async fn ask_hq(node: &Node, number: &AccountNumber) -> HqAnswer {
    let Some((settings, http)) = node.online.link() else {
        return HqAnswer::Standalone;
    };
    let response = http
        .get(format!(
            "{}/v1/sync/stored-value/{}",
            settings.hq_url, number
        ))
        .bearer_auth(settings.token.get())
        .send()
        .await;
    let response = match response {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => return HqAnswer::Unreachable(format!("HQ answered {}", r.status())),
        Err(e) => return HqAnswer::Unreachable(e.to_string()),
    };
    match response.json::<StoredValueBalance>().await {
        Ok(balance) => HqAnswer::Known(balance),
        Err(e) => HqAnswer::Unreachable(format!("HQ answered something unreadable: {e}")),
    }
}

/// This node's movements of `account` after the per-terminal watermarks (all of them when the
/// map is empty), in the store's currency.
async fn local_delta(
    node: &Node,
    account: &AccountNumber,
    after: &BTreeMap<String, u64>,
    currency: Currency,
) -> ApiResult<(Money, bool)> {
    let rows = sqlx::query(
        "SELECT terminal, seq, account, kind, currency, delta FROM stored_value_moves WHERE account = $1",
    )
    .bind(account.as_str())
    .fetch_all(&node.pools.reader)
    .await?;
    let mut total = Money::zero(currency);
    let mut issued = false;
    for row in &rows {
        let terminal: String = row.get("terminal");
        let seq = u64::try_from(row.get::<i64, _>("seq")).unwrap_or(0);
        if after.get(&terminal).is_some_and(|w| seq <= *w) {
            continue;
        }
        let Some(m) = row_movement(row) else { continue };
        issued |= m.kind == MovementKind::Issue;
        total = total.checked_add(m.delta).map_err(|e| {
            ApiError::new(StatusCode::CONFLICT, "currency_mismatch", e).at("number")
        })?;
    }
    Ok((total, issued))
}

/// Redemptions this node made that HQ has not acknowledged yet (the outbox watermark).
async fn unconfirmed_redemptions(node: &Node, currency: Currency) -> ApiResult<Money> {
    let rows = sqlx::query(
        "SELECT m.account, m.kind, m.currency, m.delta FROM stored_value_moves m
         LEFT JOIN outbox o ON o.terminal = m.terminal
         WHERE m.seq > COALESCE(o.acked_seq, 0) AND m.kind IN ('redemption', 'void')",
    )
    .fetch_all(&node.pools.reader)
    .await?;
    let moves: Vec<Movement> = rows.iter().filter_map(row_movement).collect();
    domain::stored_value::redeemed(currency, &moves)
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, "currency_mismatch", e))
}

/// An account's balance as this node can tell it.
struct Balance {
    /// The balance, when known.
    amount: Money,
    /// `hq` (HQ's figure plus this node's later movements), `local` (HQ out of reach: only
    /// what this node recorded) or `node` (a node without HQ: its own ledger is complete).
    source: &'static str,
    /// Whether the account exists as far as the source knows.
    known: bool,
    /// This node's movements HQ does not have yet.
    pending: Money,
    /// Why HQ was not asked or did not answer.
    offline_reason: Option<String>,
}

async fn balance_of(
    node: &Node,
    account: &AccountNumber,
    currency: Currency,
) -> ApiResult<Balance> {
    match ask_hq(node, account).await {
        HqAnswer::Known(hq) => {
            if let Some(code) = &hq.currency {
                if code != currency.code() {
                    return Err(ApiError::invalid(
                        "currency_mismatch",
                        "number",
                        format!(
                            "{account} holds {code}, but this store trades in {}",
                            currency.code()
                        ),
                    ));
                }
            }
            let (pending, issued_here) =
                local_delta(node, account, &hq.watermarks, currency).await?;
            let amount = Money::from_minor(hq.balance_minor, currency)
                .checked_add(pending)
                .map_err(|e| ApiError::invalid("invalid_balance", "number", e))?;
            Ok(Balance {
                amount,
                source: "hq",
                known: hq.status != "unknown" || issued_here || !pending.is_zero(),
                pending,
                offline_reason: None,
            })
        }
        HqAnswer::Unreachable(reason) => {
            let (amount, issued) = local_delta(node, account, &BTreeMap::new(), currency).await?;
            let (pending, _) = local_delta(node, account, &acked(node).await?, currency).await?;
            Ok(Balance {
                amount,
                source: "local",
                known: issued,
                pending,
                offline_reason: Some(reason),
            })
        }
        HqAnswer::Standalone => {
            let (amount, issued) = local_delta(node, account, &BTreeMap::new(), currency).await?;
            Ok(Balance {
                amount,
                source: "node",
                known: issued || !amount.is_zero(),
                pending: Money::zero(currency),
                offline_reason: None,
            })
        }
    }
}

async fn acked(node: &Node) -> ApiResult<BTreeMap<String, u64>> {
    let rows = sqlx::query("SELECT terminal, acked_seq FROM outbox")
        .fetch_all(&node.pools.reader)
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<String, _>("terminal"),
                u64::try_from(r.get::<i64, _>("acked_seq")).unwrap_or(0),
            )
        })
        .collect())
}

fn stored_value_error(e: StoredValueError, field: &str) -> ApiError {
    let code = match &e {
        StoredValueError::BadNumber { .. } | StoredValueError::WrongKind { .. } => "invalid_number",
        StoredValueError::InsufficientBalance { .. } => "insufficient_balance",
        StoredValueError::OverOfflineCap { .. } => "offline_cap_exceeded",
        StoredValueError::TendersShort { .. } => "tenders_short",
        _ => "invalid_field",
    };
    ApiError::invalid(code, field, e)
}

/// Checks the gift card and store credit tenders of a sale before it is written, and returns
/// the lock the caller holds until the sale is written, so two tills cannot both spend the same
/// balance or the same headroom under the cap. Nothing is locked when no tender redeems stored
/// value.
pub(crate) async fn check_redemptions<'a>(
    node: &'a Node,
    tenders: &[Tender],
    currency: Currency,
) -> ApiResult<Option<tokio::sync::MutexGuard<'a, ()>>> {
    // Per account: the tenders' total and the first tender's index (for the error's field).
    let mut per_account: BTreeMap<AccountNumber, (usize, Money)> = BTreeMap::new();
    for (i, t) in tenders.iter().enumerate() {
        let Some(kind) = StoredValueKind::of_tender(t.kind) else {
            continue;
        };
        let reference = t.reference.as_deref().ok_or_else(|| {
            ApiError::invalid(
                "invalid_number",
                format!("tenders[{i}].reference"),
                format!("a {} tender needs the account number", kind.as_str()),
            )
        })?;
        let account = AccountNumber::parse_kind(reference, kind)
            .map_err(|e| stored_value_error(e, &format!("tenders[{i}].reference")))?;
        let entry = per_account
            .entry(account)
            .or_insert((i, Money::zero(currency)));
        entry.1 = entry
            .1
            .checked_add(t.amount)
            .map_err(|e| ApiError::invalid("invalid_field", format!("tenders[{i}].amount"), e))?;
    }
    if per_account.is_empty() {
        return Ok(None);
    }
    let guard = node.stored_value.lock.lock().await;
    let mut offline_total = Money::zero(currency);
    let mut first_offline = None;
    for (account, (index, amount)) in &per_account {
        let field = format!("tenders[{index}].amount");
        let balance = balance_of(node, account, currency).await?;
        if balance.source == "local" {
            offline_total = offline_total
                .checked_add(*amount)
                .map_err(|e| ApiError::invalid("invalid_field", &field, e))?;
            first_offline.get_or_insert(*index);
            continue;
        }
        check_redemption(account, *amount, balance.amount)
            .map_err(|e| stored_value_error(e, &field))?;
    }
    if let Some(index) = first_offline {
        let cap = offline_cap(node, currency).await?;
        let unconfirmed = unconfirmed_redemptions(node, currency).await?;
        check_offline_cap(cap, unconfirmed, offline_total)
            .map_err(|e| stored_value_error(e, &format!("tenders[{index}].amount")))?;
    }
    Ok(Some(guard))
}

/// The account a refund to `tender` goes to: the store credit account named or a new one, or
/// the gift card named. `None` for cash and card.
pub(crate) fn refund_account(
    tender: TenderKind,
    reference: Option<&str>,
) -> ApiResult<Option<String>> {
    let Some(kind) = StoredValueKind::of_tender(tender) else {
        return Ok(None);
    };
    let field = "refund_reference";
    match (kind, reference.map(str::trim).filter(|r| !r.is_empty())) {
        (_, Some(given)) => Ok(Some(
            AccountNumber::parse_kind(given, kind)
                .map_err(|e| stored_value_error(e, field))?
                .to_string(),
        )),
        (StoredValueKind::StoreCredit, None) => {
            let mut entropy = [0_u8; 8];
            getrandom::fill(&mut entropy).map_err(|e| {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_entropy", e.to_string())
            })?;
            Ok(Some(
                AccountNumber::generate(StoredValueKind::StoreCredit, u64::from_le_bytes(entropy))
                    .to_string(),
            ))
        }
        (StoredValueKind::GiftCard, None) => Err(ApiError::invalid(
            "invalid_number",
            field,
            "a refund onto a gift card needs the card's number",
        )),
    }
}

/// The routes: issue, top up, balance.
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/v1/gift-cards", post(issue))
        .route("/v1/gift-cards/{number}/top-up", post(top_up))
        .route("/v1/stored-value/{number}", get(balance))
}

/// The JSON view of a load event's own part.
pub(crate) fn load_view(load: &StoredValueLoad) -> Value {
    json!({
        "number": load.account.to_string(),
        "account_kind": load.account.kind().as_str(),
        "cashier": load.cashier.as_ref().map(ToString::to_string),
        "amount": load.amount.amount_string(),
        "tenders": load.tenders.iter().map(|t| json!({
            "kind": t.kind.as_str(),
            "amount": t.amount.amount_string(),
            "reference": t.reference,
        })).collect::<Vec<_>>(),
        "change": load.change.amount_string(),
    })
}

/// What issuing and topping up share.
struct LoadRequest<'a> {
    terminal: &'a str,
    cashier: Option<&'a str>,
    amount: &'a str,
    tenders: &'a [protocol::api::TenderDto],
}

async fn load(
    node: &Node,
    WriteRequest { key, caller, .. }: &WriteRequest,
    request: LoadRequest<'_>,
    account: AccountNumber,
    issue: bool,
) -> ApiResult<Response> {
    let terminal = terminal(node, request.terminal)?;
    let cashier = caller.at(&terminal)?.cashier(request.cashier)?;
    let ctx = context(node)?;
    let currency = ctx.config.currency;
    let amount = Money::parse_major(request.amount, currency)
        .map_err(|e| ApiError::invalid("invalid_field", "amount", e))?;
    let tenders = parse_tenders(request.tenders, currency)?;
    let change = settle_load(amount, &tenders).map_err(|e| {
        let field = match &e {
            StoredValueError::AmountNotPositive => "amount".to_owned(),
            StoredValueError::TenderNotAllowed { index, .. } => format!("tenders[{index}].kind"),
            StoredValueError::BadTender { index, .. } => format!("tenders[{index}].amount"),
            _ => "tenders".to_owned(),
        };
        stored_value_error(e, &field)
    })?;
    let _guard = node.stored_value.lock.lock().await;
    let balance = balance_of(node, &account, currency).await?;
    if issue && balance.known {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_issued",
            format!("{account} has already been issued; top it up instead"),
        )
        .at("number"));
    }
    if !issue && !balance.known && balance.source != "local" {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_account",
            format!("{account} has never been issued"),
        )
        .at("number"));
    }
    let op = Op::LoadStoredValue {
        terminal,
        issue,
        load: StoredValueLoad {
            account,
            cashier: Some(cashier),
            amount,
            tenders,
            change,
        },
    };
    Ok(recorded(node.ledger.write(Some(key.clone()), op).await?))
}

async fn issue(State(node): State<Arc<Node>>, request: WriteRequest) -> ApiResult<Response> {
    if let Some(response) = replay(&node, &request.key).await? {
        return Ok(response);
    }
    let body: IssueRequest = request.body.parse()?;
    let account = AccountNumber::parse_kind(&body.number, StoredValueKind::GiftCard)
        .map_err(|e| stored_value_error(e, "number"))?;
    let load_request = LoadRequest {
        terminal: &body.terminal,
        cashier: body.cashier.as_deref(),
        amount: &body.amount,
        tenders: &body.tenders,
    };
    load(&node, &request, load_request, account, true).await
}

async fn top_up(
    State(node): State<Arc<Node>>,
    Path(number): Path<String>,
    request: WriteRequest,
) -> ApiResult<Response> {
    if let Some(response) = replay(&node, &request.key).await? {
        return Ok(response);
    }
    let body: TopUpRequest = request.body.parse()?;
    let account = AccountNumber::parse(&number).map_err(|e| stored_value_error(e, "number"))?;
    let load_request = LoadRequest {
        terminal: &body.terminal,
        cashier: body.cashier.as_deref(),
        amount: &body.amount,
        tenders: &body.tenders,
    };
    load(&node, &request, load_request, account, false).await
}

/// A card's balance, for a member or device signed in at this node.
async fn balance(
    State(node): State<Arc<Node>>,
    _caller: crate::auth::Caller,
    Path(number): Path<String>,
) -> ApiResult<Json<Value>> {
    let account = AccountNumber::parse(&number).map_err(|e| stored_value_error(e, "number"))?;
    let currency = context(&node)?.config.currency;
    let b = balance_of(&node, &account, currency).await?;
    let cap = offline_cap(&node, currency).await?;
    let unconfirmed = unconfirmed_redemptions(&node, currency).await?;
    Ok(Json(json!({
        "number": account.to_string(),
        "kind": account.kind().as_str(),
        "currency": currency.code(),
        "balance": b.amount.amount_string(),
        "status": if b.known { "active" } else { "unknown" },
        "source": b.source,
        "online": b.source != "local",
        "pending": b.pending.amount_string(),
        "offline_reason": b.offline_reason,
        "offline_cap": cap.amount_string(),
        "offline_headroom": cap.checked_sub(unconfirmed).unwrap_or(cap).max_with(Money::zero(currency)).amount_string(),
    })))
}
