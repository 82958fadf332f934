//! X and Z reports of a shift: the figures the store node computes from its ledger (float,
//! cash sales and refunds, paid-ins and -outs, expected cash, counts, totals per tender and
//! per tax rate) laid out as documents. The X report is an interim reading of an open shift; the
//! Z report closes it with the counted cash and the difference.

use domain::sale::TenderKind;
use domain::tax::TaxRate;
use domain::{Currency, Money, MoneyError};

use crate::document::{Align, Block, Document, Size, Style};
use crate::labels::Labels;
use crate::locale::{self, LocalDateTime};
use crate::receipt::{Layout, StoreHeader, TaxRow, push_header, push_tax_table};

/// How many of one note or coin were counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenominationCount {
    /// The note or coin (`50.00`, `0.05`).
    pub value: Money,
    /// How many.
    pub count: u32,
}

/// The cash counted at the close of a shift: a total, and the denominations when counted by
/// note and coin (a reprint from the ledger has only the total).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CashCount {
    total: Money,
    denominations: Vec<DenominationCount>,
}

impl CashCount {
    /// A count known only by its total (as the `ShiftClosed` event records it).
    pub fn total_only(total: Money) -> Self {
        CashCount {
            total,
            denominations: Vec::new(),
        }
    }

    /// A count by denomination; the total is their sum. Fails on mixed currencies or overflow.
    pub fn by_denomination(
        currency: Currency,
        denominations: Vec<DenominationCount>,
    ) -> Result<Self, MoneyError> {
        let mut total = Money::zero(currency);
        for d in &denominations {
            total = total.checked_add(d.value.checked_mul(i64::from(d.count))?)?;
        }
        Ok(CashCount {
            total,
            denominations,
        })
    }

    /// The counted cash.
    pub fn total(&self) -> Money {
        self.total
    }

    /// The denominations, empty when only the total is known.
    pub fn denominations(&self) -> &[DenominationCount] {
        &self.denominations
    }
}

/// Sales and refunds of one tender in a shift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenderTotal {
    /// The tender.
    pub kind: TenderKind,
    /// Taken in sales (after change for cash).
    pub sales: Money,
    /// Paid out in refunds (positive).
    pub refunds: Money,
}

/// Tax of one component at one rate in a shift, net of refunds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxTotal {
    /// Component code (`VAT`).
    pub code: String,
    /// The rate.
    pub rate: TaxRate,
    /// The taxable net.
    pub net: Money,
    /// The tax.
    pub tax: Money,
}

/// The figures of a shift, as the store node computes them from the ledger. Refunds and
/// paid-outs are positive amounts; the report prints them negative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftReport {
    /// The store header.
    pub store: StoreHeader,
    /// The terminal's name or id.
    pub terminal: String,
    /// The shift's id.
    pub shift: String,
    /// Display name of who opened the shift.
    pub opened_by: String,
    /// When the shift opened, store time.
    pub opened_at: LocalDateTime,
    /// When it closed (Z report), store time.
    pub closed_at: Option<LocalDateTime>,
    /// When this report is printed, store time.
    pub printed_at: LocalDateTime,
    /// The counted float at opening.
    pub float: Money,
    /// Cash taken in sales, after change.
    pub cash_sales: Money,
    /// Cash paid out in refunds and voids.
    pub cash_refunds: Money,
    /// Cash paid into the drawer.
    pub paid_in: Money,
    /// Cash paid out of the drawer.
    pub paid_out: Money,
    /// Cash the ledger expects in the drawer (float + cash sales − cash refunds + paid in −
    /// paid out), as the `ShiftClosed` event records it.
    pub expected_cash: Money,
    /// Completed sales.
    pub sales_count: u32,
    /// Completed returns.
    pub returns_count: u32,
    /// Voided sales.
    pub voids_count: u32,
    /// Gross sales: every completed sale, voided ones included.
    pub sales_total: Money,
    /// What voids gave back (positive).
    pub voids_total: Money,
    /// What returns gave back (positive).
    pub returns_total: Money,
    /// The net sales' goods net of tax (sales less voids less returns).
    pub goods_net: Money,
    /// The net sales' tax: the sum of the tax column of `taxes`.
    pub tax_total: Money,
    /// The net sales' cash rounding.
    pub rounding: Money,
    /// Per tender.
    pub tenders: Vec<TenderTotal>,
    /// Per tax component and rate.
    pub taxes: Vec<TaxTotal>,
}

fn title(doc: &mut Document, text: &str) {
    doc.text(
        text,
        Style {
            align: Align::Centre,
            bold: true,
            size: Size::Double,
        },
    );
}

fn heading(doc: &mut Document, text: &str) {
    doc.text(
        text,
        Style {
            bold: true,
            ..Style::PLAIN
        },
    );
}

fn shift_document(
    report: &ShiftReport,
    count: Option<&CashCount>,
    layout: &Layout,
    labels: &Labels,
    blind: bool,
) -> Result<Document, MoneyError> {
    let loc = &layout.locale;
    let amount = |m: Money| locale::format_amount(m, loc);
    let money = |m: Money| locale::format_money(m, loc);
    let when = |t: &LocalDateTime| locale::format_date_time(t, loc);
    let mut doc = Document::new(layout.paper);
    push_header(&mut doc, &report.store, labels);
    doc.separator();
    match count {
        None => {
            title(&mut doc, labels.x_report);
            doc.text(
                labels.interim,
                Style {
                    align: Align::Centre,
                    ..Style::PLAIN
                },
            );
        }
        Some(_) => title(&mut doc, labels.z_report),
    }
    doc.row(labels.shift, report.shift.clone());
    doc.row(labels.terminal, report.terminal.clone());
    doc.row(labels.cashier, report.opened_by.clone());
    doc.row(labels.opened, when(&report.opened_at));
    if let Some(closed) = &report.closed_at {
        doc.row(labels.closed, when(closed));
    }
    doc.row(labels.printed, when(&report.printed_at));
    doc.separator();

    doc.row(labels.sales_count, report.sales_count.to_string());
    doc.row(labels.returns_count, report.returns_count.to_string());
    doc.row(labels.voids_count, report.voids_count.to_string());
    // Gross sales less voids less returns is the net; the net splits into goods, tax and
    // rounding. Each figure is a fold of the same events, so both sums hold on paper.
    doc.row(labels.sales, amount(report.sales_total));
    doc.row(labels.voids, amount(report.voids_total.checked_neg()?));
    doc.row(labels.returns, amount(report.returns_total.checked_neg()?));
    doc.bold_row(
        labels.net_sales,
        money(
            report
                .sales_total
                .checked_sub(report.voids_total)?
                .checked_sub(report.returns_total)?,
        ),
    );
    doc.row(format!("  {}", labels.goods_net), amount(report.goods_net));
    doc.row(format!("  {}", labels.tax), amount(report.tax_total));
    if !report.rounding.is_zero() {
        doc.row(
            format!("  {}", labels.cash_rounding),
            amount(report.rounding),
        );
    }
    doc.separator();

    if !report.tenders.is_empty() {
        heading(&mut doc, labels.by_tender);
        for tender in &report.tenders {
            doc.row(labels.tender(tender.kind), amount(tender.sales));
            if !tender.refunds.is_zero() {
                doc.row(
                    format!("  {}", labels.returns),
                    amount(tender.refunds.checked_neg()?),
                );
            }
        }
        doc.separator();
    }

    if !report.taxes.is_empty() {
        heading(&mut doc, labels.by_tax_rate);
        let rows = report
            .taxes
            .iter()
            .map(|t| {
                Ok(TaxRow {
                    label: format!(
                        "{} {}",
                        labels.tax_code(&t.code),
                        locale::format_rate(t.rate, loc)
                    ),
                    net: t.net,
                    tax: t.tax,
                    gross: t.net.checked_add(t.tax)?,
                })
            })
            .collect::<Result<Vec<_>, MoneyError>>()?;
        push_tax_table(&mut doc, &rows, layout, labels);
        doc.separator();
    }

    // A blind reading leaves out the drawer, from which the expected cash follows.
    if !blind {
        heading(&mut doc, labels.cash_drawer);
        doc.row(labels.float, amount(report.float));
        doc.row(labels.cash_sales, amount(report.cash_sales));
        doc.row(
            labels.cash_refunds,
            amount(report.cash_refunds.checked_neg()?),
        );
        doc.row(labels.paid_in, amount(report.paid_in));
        doc.row(labels.paid_out, amount(report.paid_out.checked_neg()?));
        doc.bold_row(labels.expected_cash, money(report.expected_cash));
    }

    if let Some(count) = count {
        doc.separator();
        if !count.denominations().is_empty() {
            heading(&mut doc, labels.denominations);
            for d in count.denominations() {
                doc.row(
                    format!("  {} × {}", money(d.value), d.count),
                    amount(d.value.checked_mul(i64::from(d.count))?),
                );
            }
        }
        doc.bold_row(labels.counted_cash, money(count.total()));
        let difference = count.total().checked_sub(report.expected_cash)?;
        let label = if difference.is_positive() {
            labels.over
        } else if difference.is_zero() {
            labels.balanced
        } else {
            labels.short
        };
        doc.bold_row(label, money(difference));
    }
    doc.separator();
    doc.push(Block::Feed(1));
    doc.push(Block::Cut);
    Ok(doc)
}

/// The X report: an interim reading of an open shift, without a count.
pub fn x_report_document(
    report: &ShiftReport,
    layout: &Layout,
    labels: &Labels,
) -> Result<Document, MoneyError> {
    shift_document(report, None, layout, labels, false)
}

/// The X report a cashier may read before a blind close: sales, voids, returns, taxes and
/// tenders, without the cash drawer section (float, cash movements and the expected cash).
pub fn blind_x_report_document(
    report: &ShiftReport,
    layout: &Layout,
    labels: &Labels,
) -> Result<Document, MoneyError> {
    shift_document(report, None, layout, labels, true)
}

/// The Z report: the shift's close with the counted cash (by denomination when known) and the
/// difference to the expected cash, printed as over, short or difference zero.
pub fn z_report_document(
    report: &ShiftReport,
    count: &CashCount,
    layout: &Layout,
    labels: &Labels,
) -> Result<Document, MoneyError> {
    shift_document(report, Some(count), layout, labels, false)
}
