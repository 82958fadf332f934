//! JSON views of ledger events, as the API answers them (and records them for idempotent
//! retries). Amounts are decimal strings.

use domain::ledger::{Event, EventBody};
use domain::sale::Tender;
use protocol::api::CartView;
use serde_json::{Value, json};

fn tenders(tenders: &[Tender]) -> Value {
    tenders
        .iter()
        .map(|t| {
            json!({
                "kind": t.kind.as_str(),
                "amount": t.amount.amount_string(),
                "reference": t.reference,
            })
        })
        .collect()
}

/// The view of an event: its identity plus what the till shows for its kind.
pub fn event_view(event: &Event) -> Value {
    let mut view = json!({
        "event_id": event.meta.id.to_string(),
        "terminal": event.meta.terminal.to_string(),
        "seq": event.meta.seq,
        "kind": event.body.kind(),
    });
    let extra = match &event.body {
        EventBody::SaleCompleted(sale) => json!({
            "receipt": sale.receipt,
            "cashier": sale.cashier.as_ref().map(ToString::to_string),
            "cart": CartView::new(&sale.cart, Some(&sale.settlement)),
            "tenders": tenders(&sale.tenders),
        }),
        EventBody::ReturnCompleted(ret) => json!({
            "receipt": ret.receipt,
            "original_receipt": ret.original_receipt,
            "reason": ret.reason,
            "currency": ret.refund.total.currency().code(),
            "lines": ret.refund.lines.iter().map(|l| json!({
                "sale_line": l.sale_line,
                "sku": l.sku.to_string(),
                "quantity": l.quantity.to_string(),
                "net": l.net.amount_string(),
                "tax": domain::Money::from_minor(
                    l.taxes.iter().map(|t| t.amount.minor()).sum::<i64>(),
                    l.gross.currency(),
                ).amount_string(),
                "gross": l.gross.amount_string(),
            })).collect::<Vec<_>>(),
            "total": ret.refund.total.amount_string(),
            "cash_rounding": ret.refund.cash_rounding.amount_string(),
            "refund": ret.refund.refund.amount_string(),
            "tenders": tenders(&ret.tenders),
        }),
        EventBody::SaleVoided(void) => json!({
            "voided_receipt": void.receipt,
            "reason": void.reason,
            "refund": void.refund.amount_string(),
        }),
        EventBody::StockAdjusted {
            sku,
            delta_milli,
            reason,
            note,
        } => json!({
            "sku": sku.to_string(),
            "delta": domain::quantity::format_signed_milli(*delta_milli),
            "reason": reason.as_str(),
            "note": note,
        }),
        EventBody::StockCounted { sku, counted_milli } => json!({
            "sku": sku.to_string(),
            "counted": domain::quantity::format_signed_milli(*counted_milli),
        }),
        _ => json!({}),
    };
    if let (Some(view), Value::Object(extra)) = (view.as_object_mut(), extra) {
        view.extend(extra);
    }
    view
}
