//! In-store sales returned through the web shop, as HQ routes them here (`web-return`
//! entities, kept in `web_returns` with their lines in `web_return_lines`).
//!
//! At the store that sold the goods, the lines a web return took back count as returned: a
//! till may return only what is left of the sale (the ledger writer reads them beside its own
//! returns). At the store the goods are sent back to, a till receives the parcel: the
//! `ReturnReceived` event puts the goods back into stock, checked and recorded inside the
//! ledger writer's transaction, so two tills never receive one parcel. The money was refunded
//! by the web shop; no drawer here sees it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use domain::catalog::Sku;
use domain::ledger::ReturnReceived;
use domain::quantity::{Quantity, format_signed_milli};
use protocol::sync::WebReturnEntity;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::api::{ApiResult, WriteRequest, recorded, terminal};
use crate::auth::Caller;
use crate::ledger::{Op, WriteError};
use crate::node::Node;
use crate::web_orders::TaskQuery;

/// Keeps a web return HQ routed here, with its lines, in `conn`'s transaction (a reference
/// update). What this store's tills did with it stays.
pub(crate) async fn keep(
    conn: &mut sqlx::SqliteConnection,
    ret: &WebReturnEntity,
    payload: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO web_returns (id, number, sale_receipt, receive_at, status, payload) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, payload = excluded.payload",
    )
    .bind(&ret.id)
    .bind(&ret.number)
    .bind(&ret.sale_receipt)
    .bind(&ret.receive_at)
    .bind(&ret.status)
    .bind(payload.to_string())
    .execute(&mut *conn)
    .await?;
    for line in &ret.lines {
        sqlx::query(
            "INSERT INTO web_return_lines (web_return, sale_receipt, line, milli) VALUES ($1, $2, $3, $4)
             ON CONFLICT (web_return, line) DO UPDATE SET milli = excluded.milli",
        )
        .bind(&ret.id)
        .bind(&ret.sale_receipt)
        .bind(i64::from(line.line))
        .bind(line.quantity)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// What web returns took back of each line of sale `receipt`, added onto `returned`.
pub(crate) async fn add_returned(
    conn: &mut sqlx::SqliteConnection,
    receipt: &str,
    returned: &mut [i64],
) -> Result<(), sqlx::Error> {
    let rows = sqlx::query(
        "SELECT line, SUM(milli) AS milli FROM web_return_lines WHERE sale_receipt = $1 GROUP BY line",
    )
    .bind(receipt)
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let line: i64 = row.get("line");
        if let Some(slot) = usize::try_from(line).ok().and_then(|l| returned.get_mut(l)) {
            *slot += row.get::<i64, _>("milli");
        }
    }
    Ok(())
}

/// A web return as this store holds it.
struct Held {
    entity: WebReturnEntity,
    local_status: Option<String>,
}

impl Held {
    fn status(&self) -> &str {
        self.local_status.as_deref().unwrap_or(&self.entity.status)
    }

    fn view(&self, store: &str) -> Value {
        let currency = domain::Currency::parse(&self.entity.currency).ok();
        json!({
            "id": self.entity.id,
            "number": self.entity.number,
            "receipt": self.entity.sale_receipt,
            "sale_store": self.entity.sale_store,
            "receive_at": self.entity.receive_at,
            "status": self.status(),
            "to_receive": self.entity.receive_at == store && self.status() == "open",
            "refund_due": currency.map(|c| domain::Money::from_minor(self.entity.refund_minor, c).amount_string()),
            "lines": self.entity.lines.iter().map(|l| json!({
                "line": l.line,
                "sku": l.sku,
                "name": l.name,
                "quantity": format_signed_milli(l.quantity),
            })).collect::<Vec<_>>(),
            "created_ms": self.entity.created_ms,
        })
    }
}

fn held_of(row: &sqlx::sqlite::SqliteRow) -> Option<Held> {
    Some(Held {
        entity: serde_json::from_str(row.get::<&str, _>("payload")).ok()?,
        local_status: row.get("local_status"),
    })
}

async fn find(conn: &mut sqlx::SqliteConnection, asked: &str) -> Result<Option<Held>, sqlx::Error> {
    let row =
        sqlx::query("SELECT payload, local_status FROM web_returns WHERE number = $1 OR id = $1")
            .bind(asked.trim())
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.as_ref().and_then(held_of))
}

/// Checks that web return `asked` may be received at `store` now, inside the ledger writer's
/// transaction, and answers the event body to record (the lines as HQ sent them).
pub(crate) async fn check_receive(
    conn: &mut sqlx::SqliteConnection,
    store: &str,
    asked: &str,
    staff: &domain::StaffId,
) -> Result<ReturnReceived, WriteError> {
    let held = find(conn, asked)
        .await?
        .ok_or_else(|| WriteError::NotFound {
            code: "return_not_found",
            message: format!(
                "no web return `{}` for this store",
                asked.chars().take(64).collect::<String>()
            ),
        })?;
    let number = &held.entity.number;
    if held.entity.receive_at != store {
        return Err(WriteError::Conflict {
            code: "wrong_store",
            message: format!(
                "return {number} is sent back to store {}, not here",
                held.entity.receive_at
            ),
        });
    }
    if held.status() != "open" {
        return Err(WriteError::Conflict {
            code: "already_received",
            message: format!("return {number} was received already"),
        });
    }
    let mut lines = Vec::with_capacity(held.entity.lines.len());
    for line in &held.entity.lines {
        let sku = Sku::parse(&line.sku).map_err(|e| WriteError::Db(e.to_string()))?;
        let quantity =
            Quantity::from_milli(line.quantity).map_err(|e| WriteError::Db(e.to_string()))?;
        lines.push((sku, quantity));
    }
    Ok(ReturnReceived {
        web_return: held.entity.id.clone(),
        number: number.clone(),
        sale_receipt: held.entity.sale_receipt.clone(),
        lines,
        staff: staff.clone(),
    })
}

/// Records in `conn`'s transaction that the parcel arrived here.
pub(crate) async fn record_received(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE web_returns SET local_status = 'received' WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// `GET /v1/web-returns?show=open|all`: returns through the web shop that concern this store —
/// to receive here (`open`, the default), or every one, sold or received here (`all`) — oldest
/// first, for any member signed in here.
pub(crate) async fn list(
    State(node): State<Arc<Node>>,
    _caller: Caller,
    query: Result<Query<TaskQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let all = TaskQuery::all(query)?;
    let rows = sqlx::query("SELECT payload, local_status FROM web_returns")
        .fetch_all(&node.pools.reader)
        .await?;
    let store = node.store.as_str();
    let mut held: Vec<Held> = rows.iter().filter_map(held_of).collect();
    held.sort_by_key(|h| (h.entity.created_ms, h.entity.number.clone()));
    let returns: Vec<Value> = held
        .iter()
        .map(|h| h.view(store))
        .filter(|v| all || v["to_receive"] == json!(true))
        .collect();
    Ok(Json(json!({ "returns": returns })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiveRequest {
    terminal: String,
}

/// `POST /v1/web-returns/{number}/receive`: the parcel of a web return arrived at this store;
/// its goods go back into stock with a `ReturnReceived` event on the till's ledger. The session
/// must be the till's.
pub(crate) async fn receive(
    State(node): State<Arc<Node>>,
    Path(number): Path<String>,
    WriteRequest { key, body, caller }: WriteRequest,
) -> ApiResult<Response> {
    let request: ReceiveRequest = body.parse()?;
    let terminal = terminal(&node, &request.terminal)?;
    caller.at(&terminal)?;
    let op = Op::ReceiveWebReturn {
        terminal,
        staff: caller.staff.clone(),
        number,
    };
    Ok(recorded(node.ledger.write(Some(key), op).await?))
}
