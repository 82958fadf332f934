//! Plain-text receipts: a priced sale in, the lines a printer or screen shows out. Printer
//! encodings (ESC/POS) and translations wrap this text; the figures come only from here.

use crate::money::Money;
use crate::sale::{PricedCart, Settlement, Tender, TenderKind};

/// What is printed above the lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptHeader {
    /// The store's name.
    pub store_name: String,
    /// Address or other lines under the name.
    pub lines: Vec<String>,
    /// Receipt number.
    pub receipt: String,
    /// Date and time, already formatted in the store's locale.
    pub when: String,
}

fn amount(m: Money) -> String {
    m.amount_string()
}

fn row(left: &str, right: &str, width: usize) -> String {
    let room = width.saturating_sub(right.chars().count() + 1).max(1);
    let mut left: String = left.chars().take(room).collect();
    let pad = width.saturating_sub(left.chars().count() + right.chars().count());
    left.push_str(&" ".repeat(pad.max(1)));
    left.push_str(right);
    left
}

fn centre(text: &str, width: usize) -> String {
    let len = text.chars().count();
    if len >= width {
        return text.chars().take(width).collect();
    }
    format!("{}{}", " ".repeat((width - len) / 2), text)
}

fn tender_name(kind: TenderKind) -> &'static str {
    match kind {
        TenderKind::Cash => "Cash",
        TenderKind::Card => "Card",
        TenderKind::GiftCard => "Gift card",
        TenderKind::StoreCredit => "Store credit",
    }
}

/// Renders a sale as receipt text `width` characters wide (32 for 58 mm, 48 for 80 mm paper).
pub fn render(
    header: &ReceiptHeader,
    cart: &PricedCart,
    tenders: &[Tender],
    settlement: &Settlement,
    width: usize,
) -> String {
    let width = width.max(24);
    let rule = "-".repeat(width);
    let mut out = Vec::new();
    out.push(centre(&header.store_name, width));
    for line in &header.lines {
        out.push(centre(line, width));
    }
    out.push(rule.clone());
    out.push(format!("Receipt {}", header.receipt));
    out.push(header.when.clone());
    out.push(rule.clone());
    for line in &cart.lines {
        out.push(row(&line.name, &amount(line.extended), width));
        if line.quantity.milli() != 1000 {
            out.push(format!(
                "  {} {} x {}",
                line.quantity,
                line.unit.as_str(),
                amount(line.unit_price)
            ));
        }
        if !line.line_discount.is_zero() {
            out.push(row(
                "  Discount",
                &format!("-{}", amount(line.line_discount)),
                width,
            ));
        }
    }
    let cart_discount: i64 = cart.lines.iter().map(|l| l.cart_discount.minor()).sum();
    if cart_discount != 0 {
        out.push(row(
            "Cart discount",
            &format!(
                "-{}",
                amount(Money::from_minor(cart_discount, cart.currency))
            ),
            width,
        ));
    }
    out.push(rule.clone());
    if cart.pricing == crate::tax::PricingMode::Exclusive {
        out.push(row("Subtotal", &amount(cart.net_total), width));
        for tax in &cart.taxes {
            out.push(row(
                &format!("{} {}", tax.code, tax.rate),
                &amount(tax.amount),
                width,
            ));
        }
    }
    out.push(row(
        &format!("TOTAL {}", cart.currency),
        &amount(cart.total),
        width,
    ));
    if !settlement.cash_rounding.is_zero() {
        out.push(row(
            "Cash rounding",
            &amount(settlement.cash_rounding),
            width,
        ));
        out.push(row("Due", &amount(settlement.due), width));
    }
    for tender in tenders {
        out.push(row(tender_name(tender.kind), &amount(tender.amount), width));
    }
    if !settlement.change.is_zero() {
        out.push(row("Change", &amount(settlement.change), width));
    }
    if cart.pricing == crate::tax::PricingMode::Inclusive && !cart.taxes.is_empty() {
        out.push(rule.clone());
        out.push(row("Tax      Net", "Tax", width));
        for tax in &cart.taxes {
            out.push(row(
                &format!(
                    "{} {:<6} {}",
                    tax.code,
                    tax.rate.to_string(),
                    amount(tax.base)
                ),
                &amount(tax.amount),
                width,
            ));
        }
    }
    out.push(rule);
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Sku, TaxCategory};
    use crate::presets;
    use crate::quantity::{Quantity, UnitOfSale};
    use crate::sale::{LineInput, price_cart, settle};
    use crate::time::Timestamp;

    #[test]
    fn a_basket_in_the_receipt_text_out() {
        let ch = presets::jurisdiction("CH").unwrap();
        let line = |sku: &str, name: &str, price, qty: &str, unit, cat: &str| LineInput {
            sku: Sku::parse(sku).unwrap(),
            name: name.to_owned(),
            unit_price: Money::from_minor(price, ch.currency()),
            quantity: Quantity::parse(qty).unwrap(),
            unit,
            tax_category: TaxCategory::parse(cat).unwrap(),
            discount: None,
            fixed_amount: None,
        };
        let cart = price_cart(
            &ch,
            &[
                line("BREAD", "Bauernbrot", 420, "1", UnitOfSale::Each, "reduced"),
                line(
                    "CHEESE",
                    "Gruyère AOP",
                    3290,
                    "0.315",
                    UnitOfSale::Weight,
                    "reduced",
                ),
                line("SOAP", "Seife", 395, "2", UnitOfSale::Each, "standard"),
            ],
            None,
            Timestamp::from_millis(1_790_000_000_000),
        )
        .unwrap();
        let tenders = [Tender {
            kind: TenderKind::Cash,
            amount: Money::from_minor(3000, ch.currency()),
            reference: None,
        }];
        let settlement = settle(&cart, &tenders, ch.cash_rounding()).unwrap();
        let header = ReceiptHeader {
            store_name: "Kassa Zürich HB".into(),
            lines: vec!["Bahnhofplatz 1, 8001 Zürich".into()],
            receipt: "T1-000042".into(),
            when: "23.11.2026 10:15".into(),
        };
        insta::assert_snapshot!(render(&header, &cart, &tenders, &settlement, 32));
    }
}
