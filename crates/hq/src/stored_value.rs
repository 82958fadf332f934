//! Gift card and store credit balances at HQ: applied in ingest from the stores' events
//! (issue, top-up, redemptions as sale tenders, refunds onto an account, voids giving back a
//! sale's redemptions), read by store nodes before a redemption, and reported to the back
//! office: the liability outstanding per kind and currency, and the accounts that redemptions
//! made offline drove below zero.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use domain::ledger::{Event, EventBody};
use domain::stored_value::{AccountNumber, Movement, MovementKind, void_movements};
use domain::{Currency, Money};
use protocol::stored_value::StoredValueBalance;
use serde_json::{Value, json};
use sqlx::{Any, Row, Transaction};

use crate::api::{ApiError, ApiResult, Hq, authenticate_store, authorize_reader};
use crate::db::{Backend, Db};
use crate::extract::Path;
use crate::identity::Scope;

/// One movement as it is applied: the account, what, how much, and where it came from.
struct Applied<'a> {
    event: &'a Event,
    movement: Movement,
}

/// Applies the stored-value movements of `events` (in sequence order per terminal, each applied
/// exactly once by ingest) inside ingest's transaction.
pub(crate) async fn apply(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    events: &[&Event],
) -> Result<(), sqlx::Error> {
    // The movements of the sales in this call, for voids of sales that arrived with them.
    let mut by_event: BTreeMap<String, Vec<Movement>> = BTreeMap::new();
    let mut applied: Vec<Applied<'_>> = Vec::new();
    for event in events {
        let moves = match &event.body {
            EventBody::SaleVoided(void) => {
                let sale_id = void.sale.to_string();
                let sale = match by_event.get(&sale_id) {
                    Some(moves) => moves.clone(),
                    None => held_movements(tx, &sale_id).await?,
                };
                void_movements(&sale)
            }
            body => domain::stored_value::movements(body),
        };
        if moves.is_empty() {
            continue;
        }
        by_event.insert(event.meta.id.to_string(), moves.clone());
        applied.extend(
            moves
                .into_iter()
                .map(|movement| Applied { event, movement }),
        );
    }
    if applied.is_empty() {
        return Ok(());
    }
    // Two tenders on one account in one sale are one movement.
    let mut summed: Vec<Applied<'_>> = Vec::new();
    for a in applied {
        let same = summed.iter_mut().find(|s| {
            s.event.meta.id == a.event.meta.id
                && s.movement.account == a.movement.account
                && s.movement.kind == a.movement.kind
        });
        match same {
            Some(s) => {
                if let Ok(sum) = s.movement.delta.checked_add(a.movement.delta) {
                    s.movement.delta = sum;
                }
            }
            None => summed.push(a),
        }
    }
    let mut balances: BTreeMap<String, Option<(String, i64)>> = BTreeMap::new();
    for a in &summed {
        let number = a.movement.account.to_string();
        if balances.contains_key(&number) {
            continue;
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT currency, balance_minor FROM stored_value_accounts WHERE number = $1{}",
            backend.for_update()
        )))
        .bind(&number)
        .fetch_optional(&mut **tx)
        .await?;
        balances.insert(
            number,
            row.map(|r| (r.get("currency"), r.get("balance_minor"))),
        );
    }
    for a in &summed {
        let number = a.movement.account.to_string();
        let currency = a.movement.delta.currency().code().to_owned();
        let wall = a.event.meta.hlc.wall_ms();
        let held = balances.get(&number).cloned().flatten();
        let balance = match &held {
            Some((held_currency, _)) if *held_currency != currency => {
                // An account holds one currency; a movement in another cannot be added to it.
                tracing::warn!(%number, %currency, "stored-value movement in another currency skipped");
                continue;
            }
            Some((_, balance)) => balance + a.movement.delta.minor(),
            None => a.movement.delta.minor(),
        };
        if held.is_none() {
            sqlx::query(
                "INSERT INTO stored_value_accounts (number, kind, currency, balance_minor, issued_store, first_ms, updated_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(&number)
            .bind(a.movement.account.kind().as_str())
            .bind(&currency)
            .bind(balance)
            .bind(
                matches!(a.movement.kind, MovementKind::Issue | MovementKind::Refund)
                    .then(|| a.event.meta.store.to_string()),
            )
            .bind(wall)
            .execute(&mut **tx)
            .await?;
        } else {
            sqlx::query(
                "UPDATE stored_value_accounts SET balance_minor = $1, updated_ms = $2 WHERE number = $3",
            )
            .bind(balance)
            .bind(wall)
            .bind(&number)
            .execute(&mut **tx)
            .await?;
        }
        balances.insert(number.clone(), Some((currency.clone(), balance)));
        sqlx::query(
            "INSERT INTO stored_value_moves (event_id, number, kind, store, terminal, seq, hlc_wall, currency, delta_minor, balance_after_minor)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(a.event.meta.id.to_string())
        .bind(&number)
        .bind(a.movement.kind.as_str())
        .bind(a.event.meta.store.to_string())
        .bind(a.event.meta.terminal.to_string())
        .bind(i64::try_from(a.event.meta.seq).unwrap_or(i64::MAX))
        .bind(wall)
        .bind(&currency)
        .bind(a.movement.delta.minor())
        .bind(balance)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The movements HQ applied for one event.
async fn held_movements(
    tx: &mut Transaction<'_, Any>,
    event_id: &str,
) -> Result<Vec<Movement>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT number, kind, currency, delta_minor FROM stored_value_moves WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(Movement {
                account: AccountNumber::parse(r.get::<&str, _>("number")).ok()?,
                kind: MovementKind::parse(r.get::<&str, _>("kind"))?,
                delta: Money::from_minor(
                    r.get("delta_minor"),
                    Currency::parse(r.get::<&str, _>("currency")).ok()?,
                ),
            })
        })
        .collect())
}

/// An account's balance with the sequences of `store`'s terminals it includes, read in one
/// transaction so the two agree.
pub async fn balance_for_store(
    db: &Db,
    store: &str,
    number: &AccountNumber,
) -> Result<StoredValueBalance, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let marks = sqlx::query("SELECT id, acked_seq FROM terminals WHERE store = $1")
        .bind(store)
        .fetch_all(&mut *tx)
        .await?;
    let row =
        sqlx::query("SELECT currency, balance_minor FROM stored_value_accounts WHERE number = $1")
            .bind(number.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(StoredValueBalance {
        number: number.to_string(),
        kind: number.kind().as_str().to_owned(),
        status: if row.is_some() { "active" } else { "unknown" }.to_owned(),
        currency: row.as_ref().map(|r| r.get("currency")),
        balance_minor: row.as_ref().map_or(0, |r| r.get("balance_minor")),
        watermarks: marks
            .iter()
            .map(|r| {
                (
                    r.get::<String, _>("id"),
                    u64::try_from(r.get::<i64, _>("acked_seq")).unwrap_or(0),
                )
            })
            .collect(),
    })
}

/// An amount in minor units as a decimal string of its currency (the minor units when the
/// currency is unknown).
pub(crate) fn money(minor: i64, currency: &str) -> String {
    Currency::parse(currency).map_or_else(
        |_| minor.to_string(),
        |c| Money::from_minor(minor, c).amount_string(),
    )
}

/// An account with its movements, oldest first, as the read API shows it; `None` when HQ has
/// never seen it.
pub async fn account_view(db: &Db, number: &AccountNumber) -> Result<Option<Value>, sqlx::Error> {
    let Some(account) = sqlx::query(
        "SELECT number, kind, currency, balance_minor, issued_store, first_ms, updated_ms FROM stored_value_accounts WHERE number = $1",
    )
    .bind(number.as_str())
    .fetch_optional(&db.pool)
    .await?
    else {
        return Ok(None);
    };
    let currency: String = account.get("currency");
    let moves = sqlx::query(
        "SELECT event_id, kind, store, terminal, seq, hlc_wall, delta_minor, balance_after_minor FROM stored_value_moves
         WHERE number = $1 ORDER BY hlc_wall, terminal, seq",
    )
    .bind(number.as_str())
    .fetch_all(&db.pool)
    .await?;
    Ok(Some(json!({
        "number": account.get::<String, _>("number"),
        "kind": account.get::<String, _>("kind"),
        "currency": currency,
        "balance": money(account.get("balance_minor"), &currency),
        "status": if account.get::<i64, _>("balance_minor") < 0 { "overdrawn" } else { "active" },
        "issued_store": account.get::<Option<String>, _>("issued_store"),
        "first_ms": account.get::<i64, _>("first_ms"),
        "updated_ms": account.get::<i64, _>("updated_ms"),
        "movements": moves.iter().map(|m| move_view(m, &currency)).collect::<Vec<_>>(),
    })))
}

fn move_view(m: &sqlx::any::AnyRow, currency: &str) -> Value {
    json!({
        "event_id": m.get::<String, _>("event_id"),
        "kind": m.get::<String, _>("kind"),
        "store": m.get::<String, _>("store"),
        "terminal": m.get::<String, _>("terminal"),
        "seq": m.get::<i64, _>("seq"),
        "at_ms": m.get::<i64, _>("hlc_wall"),
        "amount": money(m.get("delta_minor"), currency),
        "balance_after": money(m.get("balance_after_minor"), currency),
    })
}

/// The liability outstanding: per kind and currency, the number of accounts, the sum of the
/// positive balances (owed to customers) and of the negative ones (over-redeemed).
pub async fn liability(db: &Db) -> Result<Value, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT kind, currency, COUNT(*) AS accounts,
                CAST(SUM(CASE WHEN balance_minor > 0 THEN balance_minor ELSE 0 END) AS BIGINT) AS outstanding,
                CAST(SUM(CASE WHEN balance_minor < 0 THEN balance_minor ELSE 0 END) AS BIGINT) AS overdrawn
         FROM stored_value_accounts GROUP BY kind, currency ORDER BY kind, currency",
    )
    .fetch_all(&db.pool)
    .await?;
    let lines: Vec<Value> = rows
        .iter()
        .map(|r| {
            let currency: String = r.get("currency");
            json!({
                "kind": r.get::<String, _>("kind"),
                "currency": currency,
                "accounts": r.get::<i64, _>("accounts"),
                "outstanding": money(r.get::<Option<i64>, _>("outstanding").unwrap_or(0), &currency),
                "overdrawn": money(r.get::<Option<i64>, _>("overdrawn").unwrap_or(0), &currency),
            })
        })
        .collect();
    Ok(json!({"liability": lines}))
}

/// Accounts that redemptions drove below zero (redemptions made offline at stores that could
/// not ask HQ), with the redemptions that left them below zero and their balance now.
pub async fn exceptions(db: &Db) -> Result<Value, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT m.number, a.kind, a.currency, a.balance_minor, m.event_id, m.kind AS move_kind, m.store, m.terminal, m.seq, m.hlc_wall, m.delta_minor, m.balance_after_minor
         FROM stored_value_moves m JOIN stored_value_accounts a ON a.number = m.number
         WHERE m.kind = 'redemption' AND m.balance_after_minor < 0
         ORDER BY m.number, m.hlc_wall, m.terminal, m.seq",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut accounts: Vec<Value> = Vec::new();
    for r in &rows {
        let number: String = r.get("number");
        let currency: String = r.get("currency");
        let same = accounts
            .last()
            .is_some_and(|a: &Value| a["number"] == number.as_str());
        if !same {
            accounts.push(json!({
                "number": number,
                "kind": r.get::<String, _>("kind"),
                "currency": currency,
                "balance": money(r.get("balance_minor"), &currency),
                "redemptions": [],
            }));
        }
        let view = json!({
            "event_id": r.get::<String, _>("event_id"),
            "store": r.get::<String, _>("store"),
            "terminal": r.get::<String, _>("terminal"),
            "seq": r.get::<i64, _>("seq"),
            "at_ms": r.get::<i64, _>("hlc_wall"),
            "amount": money(-r.get::<i64, _>("delta_minor"), &currency),
            "balance_after": money(r.get("balance_after_minor"), &currency),
        });
        if let Some(list) = accounts
            .last_mut()
            .and_then(|a| a["redemptions"].as_array_mut())
        {
            list.push(view);
        }
    }
    Ok(json!({"stored_value": accounts}))
}

fn account_number(value: &str) -> ApiResult<AccountNumber> {
    AccountNumber::parse(value).map_err(|e| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_number", e).at("number")
    })
}

/// `GET /v1/sync/stored-value/{number}` (store credential).
pub(crate) async fn for_store(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(number): Path<String>,
) -> ApiResult<Json<StoredValueBalance>> {
    let store = authenticate_store(&hq, &headers).await?;
    let number = account_number(&number)?;
    Ok(Json(balance_for_store(&hq.db, &store, &number).await?))
}

/// `GET /v1/stored-value/{number}` (read API).
pub(crate) async fn read_account(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(number): Path<String>,
) -> ApiResult<Json<Value>> {
    let reader = authorize_reader(&hq, &headers, Scope::ReportsRead, None).await?;
    let number = account_number(&number)?;
    // A gift card's number is a bearer's secret: the audit log names its last four.
    let text = number.to_string();
    let tail = &text[text.len().saturating_sub(4)..];
    crate::identity::record_read(
        &hq.db,
        &reader,
        "stored-value.read",
        &format!("account:…{tail}"),
        &json!({}),
    )
    .await?;
    account_view(&hq.db, &number)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_account",
                format!("HQ holds no movement of {number}"),
            )
            .at("number")
        })
}

/// `GET /v1/reports/stored-value` (read API).
pub(crate) async fn liability_report(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize_reader(&hq, &headers, Scope::ReportsRead, None).await?;
    Ok(Json(liability(&hq.db).await?))
}

/// `GET /v1/exceptions/stored-value` (read API).
pub(crate) async fn overdrawn(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize_reader(&hq, &headers, Scope::ReportsRead, None).await?;
    Ok(Json(exceptions(&hq.db).await?))
}
