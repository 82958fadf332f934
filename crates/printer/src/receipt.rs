//! Sale and return receipts as documents: the same content as the domain's plain-text receipt
//! (lines, discounts, totals, rounding, tenders, change, tax breakdown), plus the store header,
//! translated labels, locale formatting, the receipt number as a barcode, and the cut.

use std::collections::BTreeMap;

use domain::ledger::{ReturnCompleted, SaleCompleted};
use domain::quantity::UnitOfSale;
use domain::sale::{PricedCart, PricedReturn, Settlement, Tender, TenderKind};
use domain::tax::{PricingMode, TaxRate};
use domain::{Currency, Money, MoneyError};

use crate::document::{Align, Block, Document, Paper, Size, Style};
use crate::labels::Labels;
use crate::locale::{self, LocalDateTime, Locale};

/// What the store prints at the top of every receipt and report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreHeader {
    /// The store's name.
    pub name: String,
    /// Address lines (street, town), printed centred under the name.
    pub address: Vec<String>,
    /// The store's tax number (VAT/UID), printed after the label `tax_id` when present.
    pub tax_id: Option<String>,
    /// Registration numbers per tax code where each tax has its own (Quebec: `GST`
    /// `123456789 RT0001`, `QST` `1234567890 TQ0001`), printed under that tax's amount.
    pub tax_registrations: Vec<(String, String)>,
}

/// How the receipt number is printed for scanning at a later return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReceiptCode {
    /// Not at all.
    None,
    /// As a CODE128 barcode.
    #[default]
    Code128,
    /// As a QR code.
    Qr,
}

/// Paper, locale and options for a printer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Paper width.
    pub paper: Paper,
    /// Formatting conventions for money, quantities and dates.
    pub locale: Locale,
    /// How the receipt number is printed.
    pub code: ReceiptCode,
    /// Pulse the cash drawer when cash changes hands.
    pub open_drawer: bool,
}

impl Layout {
    /// `paper` in `locale`, receipt number as CODE128, drawer pulse on cash.
    pub fn new(paper: Paper, locale: Locale) -> Self {
        Layout {
            paper,
            locale,
            code: ReceiptCode::Code128,
            open_drawer: true,
        }
    }
}

/// A sale as printed: the figures of a `SaleCompleted` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleReceipt {
    /// Priced lines and taxes.
    pub cart: PricedCart,
    /// Tenders as given.
    pub tenders: Vec<Tender>,
    /// Totals, cash rounding and change.
    pub settlement: Settlement,
}

impl From<&SaleCompleted> for SaleReceipt {
    fn from(sale: &SaleCompleted) -> Self {
        SaleReceipt {
            cart: sale.cart.clone(),
            tenders: sale.tenders.clone(),
            settlement: sale.settlement.clone(),
        }
    }
}

/// A return as printed: the figures of a `ReturnCompleted` event plus the names of the lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnReceipt {
    /// The original sale's receipt number, when returned with a receipt.
    pub original_receipt: Option<String>,
    /// Why, when given.
    pub reason: Option<String>,
    /// The returned lines and refund.
    pub refund: PricedReturn,
    /// How the refund was paid out.
    pub tenders: Vec<Tender>,
    /// Receipt names of the returned lines, in the order of `refund.lines`; a missing name
    /// prints the line's SKU.
    pub names: Vec<String>,
}

impl ReturnReceipt {
    /// The receipt of a return event; `names` as in [`ReturnReceipt::names`] (the store takes
    /// them from the original sale's lines).
    pub fn from_event(event: &ReturnCompleted, names: Vec<String>) -> Self {
        ReturnReceipt {
            original_receipt: event.original_receipt.clone(),
            reason: event.reason.clone(),
            refund: event.refund.clone(),
            tenders: event.tenders.clone(),
            names,
        }
    }
}

impl ReturnReceipt {
    /// The names of `refund`'s lines taken from the cart they were returned from (the
    /// original sale's, or the one priced for a return without receipt); lines the cart does
    /// not have print their SKU.
    pub fn names_from_cart(refund: &PricedReturn, cart: &PricedCart) -> Vec<String> {
        refund
            .lines
            .iter()
            .map(|l| {
                cart.lines
                    .get(l.sale_line)
                    .map_or_else(|| l.sku.to_string(), |sold| sold.name.clone())
            })
            .collect()
    }
}

/// What kind of receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptBody {
    /// A sale.
    Sale(SaleReceipt),
    /// A return.
    Return(ReturnReceipt),
}

/// Everything a sale or return receipt prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptData {
    /// The store header.
    pub store: StoreHeader,
    /// Receipt number.
    pub number: String,
    /// The terminal's name or id, when printed.
    pub terminal: Option<String>,
    /// The cashier's display name, when signed in.
    pub cashier: Option<String>,
    /// When, in the store's time zone.
    pub when: LocalDateTime,
    /// The sale or return.
    pub body: ReceiptBody,
    /// Lines printed centred at the bottom (thanks, return policy, opening hours).
    pub footer: Vec<String>,
    /// A reprint: marked as a copy at the top, and the drawer stays shut.
    pub copy: bool,
    /// The fiscal regime's code (Austria: the RKSV QR code), when the till has one.
    pub fiscal: Option<FiscalCode>,
}

/// The machine-readable code a fiscal regime puts on a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiscalCode {
    /// The QR code's text.
    pub qr: String,
    /// The signature device had failed: printed under the code.
    pub device_failed: bool,
}

fn centred(bold: bool, size: Size) -> Style {
    Style {
        align: Align::Centre,
        bold,
        size,
    }
}

/// The store name (double size), address and tax number, centred.
pub(crate) fn push_header(doc: &mut Document, store: &StoreHeader, labels: &Labels) {
    doc.text(store.name.clone(), centred(true, Size::Double));
    for line in &store.address {
        doc.text(line.clone(), centred(false, Size::Normal));
    }
    if let Some(tax_id) = &store.tax_id {
        doc.text(
            format!("{} {tax_id}", labels.tax_id),
            centred(false, Size::Normal),
        );
    }
}

fn push_identity(doc: &mut Document, data: &ReceiptData, layout: &Layout, labels: &Labels) {
    doc.row(labels.receipt, data.number.clone());
    let when = locale::format_date_time(&data.when, &layout.locale);
    match &data.terminal {
        Some(terminal) => doc.row(when, format!("{} {terminal}", labels.terminal)),
        None => doc.line(when),
    };
    if let Some(cashier) = &data.cashier {
        doc.row(labels.cashier, cashier.clone());
    }
}

fn sum(currency: Currency, values: impl IntoIterator<Item = Money>) -> Result<Money, MoneyError> {
    values
        .into_iter()
        .try_fold(Money::zero(currency), Money::checked_add)
}

fn neg(m: Money) -> Result<Money, MoneyError> {
    m.checked_neg()
}

/// One row of the tax breakdown.
pub(crate) struct TaxRow {
    pub(crate) label: String,
    pub(crate) net: Money,
    pub(crate) tax: Money,
    pub(crate) gross: Money,
}

fn tax_label(code: &str, rate: TaxRate, locale: &Locale, labels: &Labels) -> String {
    format!(
        "{} {}",
        labels.tax_code(code),
        locale::format_rate(rate, locale)
    )
}

/// Letters for the tax rates of a receipt (`A`, `B`, …, in the order of its tax table), so
/// that each line names its rate and the table names the rate of each letter, as a simplified
/// invoice must.
fn rate_letters<'a>(
    rates: impl IntoIterator<Item = (&'a str, TaxRate)>,
) -> BTreeMap<(String, TaxRate), char> {
    let mut letters = BTreeMap::new();
    for (code, rate) in rates {
        let next = char::from(b'A' + u8::try_from(letters.len() % 26).unwrap_or(0));
        letters.entry((code.to_owned(), rate)).or_insert(next);
    }
    letters
}

/// A tax table row's label: the rate's letter and the rate, with the tax's name too when the
/// receipt has more than one kind of tax (with one, the table's tax column names it).
fn lettered(
    letters: &BTreeMap<(String, TaxRate), char>,
    code: &str,
    rate: TaxRate,
    locale: &Locale,
    labels: &Labels,
) -> String {
    let mut codes = letters.keys().map(|(c, _)| c);
    let first = codes.next();
    let label = if codes.all(|c| Some(c) == first) {
        locale::format_rate(rate, locale)
    } else {
        tax_label(code, rate, locale, labels)
    };
    match letters.get(&(code.to_owned(), rate)) {
        Some(letter) => format!("{letter} {label}"),
        None => label,
    }
}

/// A line's amount with the letters of its tax rates after it.
fn with_letters(
    amount: String,
    taxes: &[domain::sale::LineTax],
    letters: &BTreeMap<(String, TaxRate), char>,
) -> String {
    let marks: String = taxes
        .iter()
        .filter_map(|t| letters.get(&(t.code.clone(), t.rate)))
        .collect();
    if marks.is_empty() {
        amount
    } else {
        format!("{amount} {marks}")
    }
}

/// Left-aligned first cell, right-aligned others, each leaving a space; `None` when a cell
/// does not fit.
fn columns(cells: &[&str], widths: &[usize]) -> Option<String> {
    let mut out = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        let len = cell.chars().count();
        if len + 1 > *width && !(i == 0 && len <= *width) {
            return None;
        }
        if i == 0 {
            out.push_str(cell);
            out.push_str(&" ".repeat(width - len));
        } else {
            out.push_str(&" ".repeat(width - len));
            out.push_str(cell);
        }
    }
    Some(out)
}

/// The tax breakdown as a table `rate | net | tax | gross`, on one line per rate when it fits
/// the paper, else with the rate on a line of its own, else as labelled rows.
pub(crate) fn push_tax_table(
    doc: &mut Document,
    rows: &[TaxRow],
    layout: &Layout,
    labels: &Labels,
) {
    let width = layout.paper.columns();
    let amount = |m: Money| locale::format_amount(m, &layout.locale);
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            [
                r.label.clone(),
                amount(r.net),
                amount(r.tax),
                amount(r.gross),
            ]
        })
        .collect();
    let header = [labels.rate, labels.net, labels.tax, labels.gross];
    let c = width / 4;
    let one_line = [width - 3 * c, c, c, c];
    let table = |widths: &[usize], with_label: bool| -> Option<Vec<String>> {
        let mut lines = Vec::new();
        let head: Vec<&str> = if with_label {
            header.to_vec()
        } else {
            vec!["", header[1], header[2], header[3]]
        };
        if !with_label {
            lines.push(header[0].to_owned());
        }
        lines.push(columns(&head, widths)?);
        for row in &cells {
            if with_label {
                lines.push(columns(&[&row[0], &row[1], &row[2], &row[3]], widths)?);
            } else {
                lines.push(row[0].clone());
                lines.push(columns(&["", &row[1], &row[2], &row[3]], widths)?);
            }
        }
        Some(lines)
    };
    let c2 = (width - 2) / 3;
    let two_line = [width - 3 * c2, c2, c2, c2];
    if let Some(lines) = table(&one_line, true).or_else(|| table(&two_line, false)) {
        for line in lines {
            doc.line(line);
        }
        return;
    }
    for (row, cell) in rows.iter().zip(&cells) {
        doc.line(row.label.clone());
        doc.row(format!("  {}", labels.net), cell[1].clone());
        doc.row(format!("  {}", labels.tax), cell[2].clone());
        doc.row(format!("  {}", labels.gross), cell[3].clone());
    }
}

fn push_tenders(
    doc: &mut Document,
    tenders: &[Tender],
    sign: impl Fn(Money) -> Result<Money, MoneyError>,
    layout: &Layout,
    labels: &Labels,
) -> Result<(), MoneyError> {
    for tender in tenders {
        let name = match &tender.reference {
            // A gift card's number is all anyone needs to spend it: printed masked, as card
            // numbers are.
            Some(reference) if tender.kind == TenderKind::GiftCard => format!(
                "{} {}",
                labels.tender(tender.kind),
                domain::stored_value::masked_number(reference)
            ),
            // A card reference is never card data (the domain keeps tokens and masked numbers
            // only), and it lets the customer match a card slip. A store credit issued by a
            // return is printed whole: the receipt is how the customer learns its number.
            Some(reference) if tender.kind != TenderKind::Cash => {
                format!("{} {reference}", labels.tender(tender.kind))
            }
            _ => labels.tender(tender.kind).to_owned(),
        };
        doc.row(
            name,
            locale::format_amount(sign(tender.amount)?, &layout.locale),
        );
    }
    Ok(())
}

fn push_code(doc: &mut Document, number: &str, layout: &Layout) {
    match layout.code {
        ReceiptCode::None => {}
        ReceiptCode::Code128 => {
            doc.push(Block::Barcode(number.to_owned()));
        }
        ReceiptCode::Qr => {
            doc.push(Block::Qr(number.to_owned()));
        }
    }
}

fn push_footer(doc: &mut Document, footer: &[String]) {
    for line in footer {
        doc.text(line.clone(), centred(false, Size::Normal));
    }
    doc.push(Block::Feed(1));
    doc.push(Block::Cut);
}

fn quantity_text(quantity: domain::Quantity, unit: UnitOfSale, locale: &Locale) -> String {
    let q = locale::format_quantity(quantity, locale);
    match unit {
        UnitOfSale::Each => q,
        other => format!("{q} {}", other.as_str()),
    }
}

/// Whether the rate table (rate, net, tax, gross) says something the totals do not: not where
/// prices exclude tax and a line carries several taxes (Quebec's GST and QST). There each tax is
/// already printed with its amount above the total, and a gross per tax would count the same
/// net twice, so Canadian receipts show each tax with its amount and registration number only.
fn rate_table_wanted(pricing: PricingMode, codes: &[&str]) -> bool {
    let mut distinct: Vec<&str> = codes.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    pricing == PricingMode::Inclusive || distinct.len() < 2
}

fn push_sale(
    doc: &mut Document,
    sale: &SaleReceipt,
    store: &StoreHeader,
    layout: &Layout,
    labels: &Labels,
) -> Result<(), MoneyError> {
    let loc = &layout.locale;
    let amount = |m: Money| locale::format_amount(m, loc);
    let cart = &sale.cart;
    let codes: Vec<&str> = cart.taxes.iter().map(|t| t.code.as_str()).collect();
    let table = !cart.taxes.is_empty() && rate_table_wanted(cart.pricing, &codes);
    let letters = if table {
        rate_letters(cart.taxes.iter().map(|t| (t.code.as_str(), t.rate)))
    } else {
        BTreeMap::new()
    };
    for line in &cart.lines {
        doc.row(
            line.name.clone(),
            with_letters(amount(line.extended), &line.taxes, &letters),
        );
        if line.quantity.milli() != 1000 || line.unit != UnitOfSale::Each {
            let per = match line.unit {
                UnitOfSale::Each => String::new(),
                unit => format!("/{}", unit.as_str()),
            };
            doc.line(format!(
                "  {} × {}{per}",
                quantity_text(line.quantity, line.unit, loc),
                amount(line.unit_price)
            ));
        }
        if !line.line_discount.is_zero() {
            doc.row(
                format!("  {}", labels.discount),
                amount(neg(line.line_discount)?),
            );
        }
    }
    let cart_discount = sum(cart.currency, cart.lines.iter().map(|l| l.cart_discount))?;
    if !cart_discount.is_zero() {
        doc.row(labels.cart_discount, amount(neg(cart_discount)?));
    }
    doc.separator();
    if cart.pricing == PricingMode::Exclusive {
        doc.row(labels.subtotal, amount(cart.net_total));
        for tax in &cart.taxes {
            doc.row(
                tax_label(&tax.code, tax.rate, loc, labels),
                amount(tax.amount),
            );
            for (_, number) in store.tax_registrations.iter().filter(|r| r.0 == tax.code) {
                doc.text(
                    format!("  {} {number}", labels.registration),
                    Style::default(),
                );
            }
        }
    }
    doc.bold_row(labels.total, locale::format_money(cart.total, loc));
    let settlement = &sale.settlement;
    if !settlement.cash_rounding.is_zero() {
        doc.row(labels.cash_rounding, amount(settlement.cash_rounding));
        doc.row(labels.due, locale::format_money(settlement.due, loc));
    }
    push_tenders(doc, &sale.tenders, Ok, layout, labels)?;
    if !settlement.change.is_zero() {
        doc.bold_row(labels.change, locale::format_money(settlement.change, loc));
    }
    if table {
        doc.separator();
        let rows = cart
            .taxes
            .iter()
            .map(|t| {
                Ok(TaxRow {
                    label: lettered(&letters, &t.code, t.rate, loc, labels),
                    net: t.base,
                    tax: t.amount,
                    gross: t.base.checked_add(t.amount)?,
                })
            })
            .collect::<Result<Vec<_>, MoneyError>>()?;
        push_tax_table(doc, &rows, layout, labels);
    }
    Ok(())
}

fn push_return(
    doc: &mut Document,
    ret: &ReturnReceipt,
    layout: &Layout,
    labels: &Labels,
) -> Result<(), MoneyError> {
    let loc = &layout.locale;
    let amount = |m: Money| locale::format_amount(m, loc);
    let refund = &ret.refund;
    let currency = refund.total.currency();
    let mut taxes: BTreeMap<(String, TaxRate), (Money, Money)> = BTreeMap::new();
    for line in &refund.lines {
        for tax in &line.taxes {
            let entry = taxes
                .entry((tax.code.clone(), tax.rate))
                .or_insert((Money::zero(currency), Money::zero(currency)));
            entry.0 = entry.0.checked_add(line.net)?;
            entry.1 = entry.1.checked_add(tax.amount)?;
        }
    }
    let letters = rate_letters(taxes.keys().map(|(code, rate)| (code.as_str(), *rate)));
    for (i, line) in refund.lines.iter().enumerate() {
        let name = ret
            .names
            .get(i)
            .cloned()
            .unwrap_or_else(|| line.sku.to_string());
        let label = if line.quantity.milli() == 1000 {
            name
        } else {
            format!("{} × {name}", locale::format_quantity(line.quantity, loc))
        };
        doc.row(
            label,
            with_letters(amount(neg(line.gross)?), &line.taxes, &letters),
        );
    }
    doc.separator();
    // A return pays out: its last money row says refund, never "due" (what a sale asks for).
    if refund.cash_rounding.is_zero() {
        doc.bold_row(labels.refund, locale::format_money(neg(refund.total)?, loc));
    } else {
        doc.bold_row(labels.total, locale::format_money(neg(refund.total)?, loc));
        doc.row(labels.cash_rounding, amount(neg(refund.cash_rounding)?));
        doc.bold_row(
            labels.refund,
            locale::format_money(neg(refund.refund)?, loc),
        );
    }
    push_tenders(doc, &ret.tenders, neg, layout, labels)?;
    if !taxes.is_empty() {
        doc.separator();
        let rows = taxes
            .into_iter()
            .map(|((code, rate), (net, tax))| {
                Ok(TaxRow {
                    label: lettered(&letters, &code, rate, loc, labels),
                    net: neg(net)?,
                    tax: neg(tax)?,
                    gross: neg(net.checked_add(tax)?)?,
                })
            })
            .collect::<Result<Vec<_>, MoneyError>>()?;
        push_tax_table(doc, &rows, layout, labels);
    }
    Ok(())
}

fn cash_changes_hands(body: &ReceiptBody) -> bool {
    let tenders = match body {
        ReceiptBody::Sale(sale) => &sale.tenders,
        ReceiptBody::Return(ret) => &ret.tenders,
    };
    tenders.iter().any(|t| t.kind == TenderKind::Cash)
}

/// The receipt of a sale or return: header, number, date and time, cashier, lines with
/// quantities and discounts, totals, cash rounding, tenders, change, tax breakdown per rate,
/// the receipt number as a code, footer and cut. Returns print their amounts negative.
///
/// Fails only when a sum of the given amounts overflows or mixes currencies.
pub fn receipt_document(
    data: &ReceiptData,
    layout: &Layout,
    labels: &Labels,
) -> Result<Document, MoneyError> {
    let mut doc = Document::new(layout.paper);
    if layout.open_drawer && !data.copy && cash_changes_hands(&data.body) {
        doc.push(Block::OpenDrawer);
    }
    push_header(&mut doc, &data.store, labels);
    doc.separator();
    if data.copy {
        doc.text(labels.copy, centred(true, Size::Double));
    }
    if let ReceiptBody::Return(_) = data.body {
        doc.text(
            labels.return_receipt.to_uppercase(),
            centred(true, Size::Double),
        );
    }
    push_identity(&mut doc, data, layout, labels);
    if let ReceiptBody::Return(ret) = &data.body {
        if let Some(original) = &ret.original_receipt {
            doc.row(labels.original_receipt, original.clone());
        }
        if let Some(reason) = &ret.reason {
            doc.line(format!("{}: {reason}", labels.reason));
        }
    }
    doc.separator();
    match &data.body {
        ReceiptBody::Sale(sale) => push_sale(&mut doc, sale, &data.store, layout, labels)?,
        ReceiptBody::Return(ret) => push_return(&mut doc, ret, layout, labels)?,
    }
    doc.separator();
    if let Some(fiscal) = &data.fiscal {
        doc.push(Block::Qr(fiscal.qr.clone()));
        if fiscal.device_failed {
            doc.text(
                "Sicherheitseinrichtung ausgefallen",
                centred(false, Size::Normal),
            );
        }
    }
    push_code(&mut doc, &data.number, layout);
    push_footer(&mut doc, &data.footer);
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{DE, EN};

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::EUR)
    }

    fn table(paper: Paper, tag: &str, rows: &[TaxRow], labels: &Labels) -> Vec<String> {
        let mut doc = Document::new(paper);
        let layout = Layout::new(paper, Locale::parse(tag));
        push_tax_table(&mut doc, rows, &layout, labels);
        crate::document::render_text(&doc)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn row(label: &str, net: i64, tax: i64) -> TaxRow {
        TaxRow {
            label: label.into(),
            net: eur(net),
            tax: eur(tax),
            gross: eur(net + tax),
        }
    }

    #[test]
    fn the_tax_table_fits_one_line_per_rate_when_it_can() {
        let lines = table(Paper::Mm58, "de-DE", &[row("VAT 7 %", 1_000, 70)], &DE);
        assert_eq!(
            lines,
            [
                "Satz       Netto    MwSt  Brutto",
                "VAT 7 %    10,00    0,70   10,70"
            ]
        );
    }

    #[test]
    fn the_tax_table_puts_the_rate_on_its_own_line_when_amounts_are_wide() {
        let lines = table(
            Paper::Mm58,
            "de-DE",
            &[row("VAT 19 %", 1_234_567, 234_568)],
            &DE,
        );
        assert_eq!(
            lines,
            [
                "Satz",
                "       Netto      MwSt    Brutto",
                "VAT 19 %",
                "   12.345,67  2.345,68 14.691,35"
            ]
        );
    }

    #[test]
    fn the_tax_table_falls_back_to_labelled_rows() {
        let lines = table(
            Paper::Mm58,
            "en",
            &[row("SALES 8.875%", 987_654_321_000, 87_654_321_000)],
            &EN,
        );
        assert_eq!(
            lines,
            [
                "SALES 8.875%",
                "  Net           9,876,543,210.00",
                "  Tax             876,543,210.00",
                "  Gross        10,753,086,420.00"
            ]
        );
        for line in lines {
            assert!(line.chars().count() <= 32);
        }
    }
}
