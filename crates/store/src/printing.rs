//! Receipts on paper and on screen: each till's printer (raw TCP port 9100 or a device file,
//! 58 or 80 mm) kept in the node's database, receipt documents built from ledger events with the
//! `printer` crate, the on-screen preview of the same document, and printing.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::TerminalId;
use domain::ledger::{Event, EventBody};
use printer::{Document, Paper, Printer, ReceiptBody, ReceiptData, ReturnReceipt, SaleReceipt};
use serde_json::{Value, json};
use sqlx::{Row, SqlitePool};

use crate::api::{ApiError, ApiResult, context};
use crate::node::Node;

/// A till's printer as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterConfig {
    /// Where the bytes go.
    pub printer: Printer,
    /// The paper.
    pub paper: Paper,
}

/// Reads a printer target: `tcp:HOST:PORT` (or `tcp:HOST` for port 9100) or a device path.
pub fn parse_target(target: &str) -> Result<Printer, String> {
    if let Some(addr) = target.strip_prefix("tcp:") {
        if addr.is_empty() {
            return Err("`tcp:` needs a host, as in tcp:192.168.1.50:9100".into());
        }
        return Ok(Printer::tcp(addr));
    }
    if target.starts_with('/') {
        return Ok(Printer::device(target));
    }
    Err(format!(
        "`{target}` is neither tcp:HOST[:PORT] nor an absolute device path such as /dev/usb/lp0"
    ))
}

/// Sets `terminal`'s printer (`paper` is 58 or 80).
pub async fn set_printer(
    pool: &SqlitePool,
    terminal: &TerminalId,
    target: &str,
    paper: u32,
) -> Result<(), String> {
    parse_target(target)?;
    if paper != 58 && paper != 80 {
        return Err(format!("paper {paper} mm: use 58 or 80"));
    }
    sqlx::query(
        "INSERT INTO printers (terminal, target, paper) VALUES ($1, $2, $3)
         ON CONFLICT (terminal) DO UPDATE SET target = excluded.target, paper = excluded.paper",
    )
    .bind(terminal.as_str())
    .bind(target)
    .bind(paper.to_string())
    .execute(pool)
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// `terminal`'s printer, if one is configured.
pub async fn printer_of(
    pool: &SqlitePool,
    terminal: &TerminalId,
) -> Result<Option<PrinterConfig>, sqlx::Error> {
    let row = sqlx::query("SELECT target, paper FROM printers WHERE terminal = $1")
        .bind(terminal.as_str())
        .fetch_optional(pool)
        .await?;
    Ok(row.and_then(|r| {
        let printer = parse_target(r.get::<&str, _>("target")).ok()?;
        let paper = if r.get::<&str, _>("paper") == "58" {
            Paper::Mm58
        } else {
            Paper::Mm80
        };
        Some(PrinterConfig { printer, paper })
    }))
}

/// The receipt and preview routes.
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/v1/receipts/{number}/preview", get(preview))
        .route("/v1/receipts/{number}/print", post(print_receipt))
}

/// The sale or return event behind receipt `number`.
pub(crate) async fn event_of_receipt(node: &Node, number: &str) -> ApiResult<Event> {
    let row = sqlx::query(
        "SELECT e.body FROM receipts r JOIN events e ON e.terminal = r.terminal AND e.seq = r.seq WHERE r.number = $1",
    )
    .bind(number)
    .fetch_optional(&node.pools.reader)
    .await?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_receipt",
            format!("no receipt `{number}`"),
        )
    })?;
    protocol::event::decode(row.get::<&[u8], _>("body")).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "corrupt_event",
            format!("stored event does not decode: {e}"),
        )
    })
}

/// The receipt document of a sale or return event.
async fn receipt_document(
    node: &Node,
    event: &Event,
    paper: Paper,
    copy: bool,
) -> ApiResult<Document> {
    let ctx = context(node)?;
    let config = &ctx.config;
    let (number, cashier, body) = match &event.body {
        EventBody::SaleCompleted(sale) => (
            sale.receipt.clone(),
            sale.cashier.as_ref().map(ToString::to_string),
            ReceiptBody::Sale(SaleReceipt {
                tenders: crate::cards::printed_card_tenders(
                    &node.pools.reader,
                    &event.meta.terminal,
                    &sale.tenders,
                )
                .await?,
                ..SaleReceipt::from(sale)
            }),
        ),
        EventBody::ReturnCompleted(ret) => {
            // The return event keeps SKUs; names come from the original sale, or the catalog.
            let names = match &ret.original_receipt {
                Some(original) => match event_of_receipt(node, original).await?.body {
                    EventBody::SaleCompleted(sale) => {
                        ReturnReceipt::names_from_cart(&ret.refund, &sale.cart)
                    }
                    _ => Vec::new(),
                },
                None => ret
                    .refund
                    .lines
                    .iter()
                    .map(|l| {
                        ctx.variant(&l.sku, node.clock.now())
                            .map_or_else(|| l.sku.to_string(), |v| v.name)
                    })
                    .collect(),
            };
            (
                ret.receipt.clone(),
                None,
                ReceiptBody::Return(ReturnReceipt::from_event(ret, names)),
            )
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_receipt",
                "that event has no receipt",
            ));
        }
    };
    let offset_minutes =
        crate::shifts::utc_offset_minutes(event.meta.hlc.wall_ms(), &config.timezone);
    // The cashier by name, as a customer knows them, not by their staff id.
    let cashier = match cashier {
        Some(id) => Some(crate::staff::display_name(node, &id).await?),
        None => None,
    };
    let number_for_fiscal = number.clone();
    let data = ReceiptData {
        store: crate::shifts::store_header(config),
        number,
        terminal: Some(event.meta.terminal.to_string()),
        cashier,
        when: printer::LocalDateTime::from_timestamp(
            domain::Timestamp::from_millis(event.meta.hlc.wall_ms()),
            offset_minutes,
        ),
        body,
        footer: Vec::new(),
        copy,
        fiscal: crate::fiscal::qr_of(&node.pools.reader, &number_for_fiscal)
            .await?
            .map(|(qr, device_failed)| printer::FiscalCode { qr, device_failed }),
    };
    let locale = printer::Locale::parse(&config.locale);
    let mut layout = printer::Layout::new(paper, locale);
    layout.code = printer::ReceiptCode::Qr;
    printer::receipt_document(&data, &layout, printer::Labels::for_tag(&config.locale))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "receipt_failed", e))
}

/// A receipt as printed, for any member or device signed in at this node.
async fn preview(
    State(node): State<Arc<Node>>,
    _caller: crate::auth::Caller,
    Path(number): Path<String>,
) -> ApiResult<Json<Value>> {
    let event = event_of_receipt(&node, &number).await?;
    let paper = printer_of(&node.pools.reader, &event.meta.terminal)
        .await?
        .map_or(Paper::Mm80, |p| p.paper);
    let document = receipt_document(&node, &event, paper, false).await?;
    Ok(Json(json!({
        "receipt": number,
        "text": printer::render_text(&document),
        "html": printer::render_html(&document),
    })))
}

/// `terminal`'s printer, or `409 no_printer` saying how to set one.
pub async fn required_printer(node: &Node, terminal: &TerminalId) -> ApiResult<PrinterConfig> {
    printer_of(&node.pools.reader, terminal).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_printer",
            format!("terminal {terminal} has no printer: kassa store printer --terminal {terminal} --target tcp:HOST:9100"),
        )
    })
}

/// Sends `document` to the printer of `config`, off the async workers.
pub async fn print(config: &PrinterConfig, document: Document) -> ApiResult<()> {
    let printer = config.printer.clone();
    tokio::task::spawn_blocking(move || printer::print_document(&printer, &document))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "print_failed", e))?
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "printer_unreachable", e))
}

/// Prints a receipt on its till's printer: the first time as the original, after that as a
/// copy (marked so, drawer shut). Only from that till's own session or device, since a printed
/// original opens its drawer.
async fn print_receipt(
    State(node): State<Arc<Node>>,
    caller: crate::auth::Caller,
    Path(number): Path<String>,
) -> ApiResult<Response> {
    let event = event_of_receipt(&node, &number).await?;
    let terminal = event.meta.terminal.clone();
    caller.at(&terminal)?;
    let config = required_printer(&node, &terminal).await?;
    let printed: i64 = sqlx::query_scalar("SELECT printed FROM receipts WHERE number = $1")
        .bind(&number)
        .fetch_one(&node.pools.reader)
        .await?;
    let document = receipt_document(&node, &event, config.paper, printed > 0).await?;
    print(&config, document).await?;
    sqlx::query("UPDATE receipts SET printed = printed + 1 WHERE number = $1")
        .bind(&number)
        .execute(&node.pools.writer)
        .await?;
    Ok(axum::response::IntoResponse::into_response((
        StatusCode::OK,
        Json(json!({"receipt": number, "copy": printed > 0})),
    )))
}
