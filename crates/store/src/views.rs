//! JSON views of ledger events, as the API answers them (and records them for idempotent
//! retries). Amounts are decimal strings.

use domain::ledger::{Approval, CashMovementKind, Event, EventBody};
use domain::sale::{Tender, TenderKind};
use protocol::api::CartView;
use serde_json::{Value, json};

fn tenders(tenders: &[Tender]) -> Value {
    tenders
        .iter()
        .map(|t| {
            let mut view = json!({
                "kind": t.kind.as_str(),
                "amount": t.amount.amount_string(),
                "reference": t.reference,
            });
            // What a receipt on screen shows of a gift card: its last four only.
            if let (TenderKind::GiftCard, Some(number), Some(map)) =
                (t.kind, &t.reference, view.as_object_mut())
            {
                map.insert(
                    "masked_reference".into(),
                    json!(domain::stored_value::masked_number(number)),
                );
            }
            view
        })
        .collect()
}

fn approvals(approvals: &[Approval]) -> Value {
    approvals
        .iter()
        .map(|a| json!({"permission": a.permission.as_str(), "by": a.by.to_string()}))
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
            "approvals": approvals(&sale.approvals),
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
            "approvals": approvals(&ret.approvals),
        }),
        EventBody::SaleVoided(void) => json!({
            "voided_receipt": void.receipt,
            "reason": void.reason,
            "refund": void.refund.amount_string(),
            "approvals": approvals(&void.approvals),
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
        EventBody::CashMovement {
            shift,
            kind,
            amount,
            reason,
            approvals: given,
        } => json!({
            "shift": shift,
            "movement": match kind {
                CashMovementKind::PaidIn => "paid-in",
                CashMovementKind::PaidOut => "paid-out",
            },
            "amount": amount.amount_string(),
            "reason": reason,
            "approvals": approvals(given),
        }),
        EventBody::CardRefundPaidInCash {
            return_receipt,
            amount,
        } => json!({
            "return": return_receipt,
            "amount": amount.amount_string(),
        }),
        EventBody::NoSale {
            shift,
            staff,
            approvals: given,
        } => json!({
            "shift": shift,
            "staff": staff.to_string(),
            "approvals": approvals(given),
        }),
        EventBody::OrderStep(o) => json!({
            "order": o.order,
            "number": o.number,
            "step": o.step.as_str(),
            "carrier": match &o.step {
                domain::ledger::OrderStepKind::Shipped { carrier, .. } => Some(carrier),
                _ => None,
            },
            "tracking": match &o.step {
                domain::ledger::OrderStepKind::Shipped { tracking, .. } => Some(tracking),
                _ => None,
            },
            "lines": o.lines.iter().map(|(sku, q)| json!({"sku": sku.to_string(), "quantity": q.to_string()})).collect::<Vec<_>>(),
            "sale": o.sale_receipt,
            "store_credit": o.store_credit.as_ref().map(|(account, amount)| json!({
                "number": account.to_string(),
                "amount": amount.amount_string(),
            })),
            "staff": o.staff.to_string(),
        }),
        EventBody::FiscalReceipt(f) => json!({
            "regime": f.regime,
            "receipt": f.receipt,
            "fiscal_kind": f.kind,
            "document": f.document,
            "device_failed": f.device_failed,
        }),
        EventBody::ReturnReceived(r) => json!({
            "web_return": r.web_return,
            "number": r.number,
            "sale": r.sale_receipt,
            "lines": r.lines.iter().map(|(sku, q)| json!({"sku": sku.to_string(), "quantity": q.to_string()})).collect::<Vec<_>>(),
            "staff": r.staff.to_string(),
        }),
        EventBody::KeyRotated { public_key } => json!({
            "public_key": hex::encode(public_key),
        }),
        EventBody::StaffLockedOut { staff, until_ms } => json!({
            "staff": staff.to_string(),
            "until_ms": until_ms,
        }),
        EventBody::ShiftOpened {
            shift,
            staff,
            float,
        } => json!({
            "shift": shift,
            "staff": staff.to_string(),
            "float": float.amount_string(),
        }),
        EventBody::ShiftClosed {
            shift,
            staff,
            up_to_seq,
            expected,
            counted,
        } => json!({
            "shift": shift,
            "staff": staff.to_string(),
            "up_to_seq": up_to_seq,
            "expected": expected.amount_string(),
            "counted": counted.amount_string(),
        }),
        EventBody::StockTransferred { .. } => json!({}),
        EventBody::StoredValueIssued(load) | EventBody::StoredValueToppedUp(load) => {
            crate::stored_value::load_view(load)
        }
        EventBody::Card(card) => crate::cards::card_view(card),
    };
    if let (Some(view), Value::Object(extra)) = (view.as_object_mut(), extra) {
        view.extend(extra);
    }
    view
}
