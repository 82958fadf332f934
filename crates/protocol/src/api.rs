//! JSON shapes shared by the store node's HTTP API and the basket file: lines, discounts and
//! tenders in; priced carts and receipts out. Amounts are decimal strings in major units
//! (`"11.99"`), never JSON numbers, so no float ever touches money.

use domain::catalog::{Sku, TaxCategory};
use domain::sale::{Discount, LineInput, Percent, PricedCart, Settlement, Tender, TenderKind};
use domain::{Currency, Money, Quantity, UnitOfSale};
use serde::{Deserialize, Serialize};

use crate::FieldError;
use crate::error::AtField;

/// A discount as sent: `{"percent": "10"}` or `{"amount": "1.50"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "lowercase",
    deny_unknown_fields,
    try_from = "DiscountFields"
)]
pub enum DiscountDto {
    /// A percentage, greater than 0 and at most 100.
    Percent(String),
    /// A fixed amount in major units.
    Amount(String),
}

/// A discount's fields as read, so that one with both or neither is refused in words
/// ("both percent and amount") rather than by a parser's position.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscountFields {
    percent: Option<String>,
    amount: Option<String>,
}

impl TryFrom<DiscountFields> for DiscountDto {
    type Error = &'static str;

    fn try_from(f: DiscountFields) -> Result<Self, Self::Error> {
        match (f.percent, f.amount) {
            (Some(p), None) => Ok(DiscountDto::Percent(p)),
            (None, Some(a)) => Ok(DiscountDto::Amount(a)),
            (Some(_), Some(_)) => Err("a discount has both percent and amount; give one of them"),
            (None, None) => Err("a discount needs percent or amount"),
        }
    }
}

impl DiscountDto {
    /// The domain discount, in `currency`.
    pub fn parse(&self, currency: Currency, field: &str) -> Result<Discount, FieldError> {
        match self {
            DiscountDto::Percent(p) => Percent::parse(p)
                .map(Discount::Percent)
                .at(|| format!("{field}.percent")),
            DiscountDto::Amount(a) => Money::parse_major(a, currency)
                .map(Discount::Amount)
                .at(|| format!("{field}.amount")),
        }
    }
}

/// A tender as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenderDto {
    /// `cash`, `card`, `gift-card` or `store-credit`.
    pub kind: String,
    /// Amount in major units.
    pub amount: String,
    /// Payment reference (never card data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// Parses tenders, naming `tenders[i].field` on error.
pub fn parse_tenders(tenders: &[TenderDto], currency: Currency) -> Result<Vec<Tender>, FieldError> {
    tenders
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let kind = TenderKind::parse(&t.kind).ok_or_else(|| {
                FieldError::new(
                    format!("tenders[{i}].kind"),
                    format!(
                        "`{}` is not one of cash, card, gift-card, store-credit",
                        t.kind
                    ),
                )
            })?;
            let amount =
                Money::parse_major(&t.amount, currency).at(|| format!("tenders[{i}].amount"))?;
            Ok(Tender {
                kind,
                amount,
                reference: t.reference.clone(),
            })
        })
        .collect()
}

/// A fully described line, as in a basket file (no catalog needed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasketLineDto {
    /// SKU.
    pub sku: String,
    /// Receipt name.
    pub name: String,
    /// Unit price in major units.
    pub price: String,
    /// Quantity (default 1).
    #[serde(default = "one")]
    pub quantity: String,
    /// `each`, `kg` or `l` (default each).
    #[serde(default = "each")]
    pub unit: String,
    /// Tax category.
    pub tax: String,
    /// Line discount.
    #[serde(default)]
    pub discount: Option<DiscountDto>,
}

fn one() -> String {
    "1".into()
}

fn each() -> String {
    "each".into()
}

/// A basket file: a jurisdiction, an instant, lines, an optional cart discount and tenders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasketFile {
    /// Jurisdiction code (`AT`, `CA-QC`, …).
    pub jurisdiction: String,
    /// When the sale happens (RFC 3339); defaults to now.
    #[serde(default)]
    pub at: Option<String>,
    /// Store name for the receipt header.
    #[serde(default)]
    pub store_name: Option<String>,
    /// Lines.
    pub lines: Vec<BasketLineDto>,
    /// Cart discount.
    #[serde(default)]
    pub discount: Option<DiscountDto>,
    /// Tenders.
    #[serde(default)]
    pub tenders: Vec<TenderDto>,
    /// Registration numbers printed under each tax, by tax code (Quebec: `GST`, `QST`).
    #[serde(default)]
    pub tax_registrations: std::collections::BTreeMap<String, String>,
}

impl BasketFile {
    /// The lines as domain inputs, in `currency`.
    pub fn lines(&self, currency: Currency) -> Result<Vec<LineInput>, FieldError> {
        self.lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let f = |name: &str| format!("lines[{i}].{name}");
                let unit = UnitOfSale::parse(&l.unit).ok_or_else(|| {
                    FieldError::new(f("unit"), format!("`{}` is not one of each, kg, l", l.unit))
                })?;
                Ok(LineInput {
                    sku: Sku::parse(&l.sku).at(|| f("sku"))?,
                    name: l.name.clone(),
                    unit_price: Money::parse_major(&l.price, currency).at(|| f("price"))?,
                    quantity: Quantity::parse(&l.quantity).at(|| f("quantity"))?,
                    unit,
                    tax_category: TaxCategory::parse(&l.tax).at(|| f("tax"))?,
                    discount: l
                        .discount
                        .as_ref()
                        .map(|d| d.parse(currency, &f("discount")))
                        .transpose()?,
                    fixed_amount: None,
                })
            })
            .collect()
    }

    /// The instant, if given.
    pub fn at(&self) -> Result<Option<domain::Timestamp>, FieldError> {
        self.at
            .as_deref()
            .map(parse_instant)
            .transpose()
            .at(|| "at".into())
    }
}

/// Parses an RFC 3339 instant into a domain timestamp.
pub fn parse_instant(value: &str) -> Result<domain::Timestamp, FieldError> {
    let ts: jiff::Timestamp = value.parse().map_err(|e| {
        FieldError::new(
            "instant",
            format!("`{value}` is not an RFC 3339 instant: {e}"),
        )
    })?;
    Ok(domain::Timestamp::from_millis(ts.as_millisecond()))
}

/// An amount as shown to clients.
fn show(m: Money) -> String {
    m.amount_string()
}

/// Tax on a line or in the breakdown, as shown to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxView {
    /// Component code.
    pub code: String,
    /// Rate in percent.
    pub rate: String,
    /// Taxable base (breakdown only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Tax amount.
    pub amount: String,
}

/// A priced line as shown to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineView {
    /// SKU.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Quantity.
    pub quantity: String,
    /// Unit of sale.
    pub unit: String,
    /// Unit price.
    pub unit_price: String,
    /// Price × quantity.
    pub extended: String,
    /// Line discount plus its share of the cart discount.
    pub discount: String,
    /// Net of tax.
    pub net: String,
    /// Taxes.
    pub taxes: Vec<TaxView>,
    /// What the customer pays for the line.
    pub gross: String,
}

/// A priced cart (and, once paid, its settlement) as shown to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartView {
    /// Currency code.
    pub currency: String,
    /// Lines.
    pub lines: Vec<LineView>,
    /// Tax breakdown.
    pub taxes: Vec<TaxView>,
    /// Before discounts.
    pub subtotal: String,
    /// All discounts.
    pub discount_total: String,
    /// Net total.
    pub net_total: String,
    /// Tax total.
    pub tax_total: String,
    /// Goods total.
    pub total: String,
    /// Cash rounding, once settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_rounding: Option<String>,
    /// Amount due, once settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<String>,
    /// Tendered, once settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tendered: Option<String>,
    /// Change, once settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
}

impl CartView {
    /// The view of a priced cart, with its settlement if paid.
    pub fn new(cart: &PricedCart, settlement: Option<&Settlement>) -> Self {
        CartView {
            currency: cart.currency.code().to_owned(),
            lines: cart
                .lines
                .iter()
                .map(|l| LineView {
                    sku: l.sku.to_string(),
                    name: l.name.clone(),
                    quantity: l.quantity.to_string(),
                    unit: l.unit.as_str().to_owned(),
                    unit_price: show(l.unit_price),
                    extended: show(l.extended),
                    discount: show(Money::from_minor(
                        l.line_discount.minor() + l.cart_discount.minor(),
                        cart.currency,
                    )),
                    net: show(l.net),
                    taxes: l
                        .taxes
                        .iter()
                        .map(|t| TaxView {
                            code: t.code.clone(),
                            rate: t.rate.percent().to_string(),
                            base: None,
                            amount: show(t.amount),
                        })
                        .collect(),
                    gross: show(l.gross),
                })
                .collect(),
            taxes: cart
                .taxes
                .iter()
                .map(|t| TaxView {
                    code: t.code.clone(),
                    rate: t.rate.percent().to_string(),
                    base: Some(show(t.base)),
                    amount: show(t.amount),
                })
                .collect(),
            subtotal: show(cart.subtotal),
            discount_total: show(cart.discount_total),
            net_total: show(cart.net_total),
            tax_total: show(cart.tax_total),
            total: show(cart.total),
            cash_rounding: settlement.map(|s| show(s.cash_rounding)),
            due: settlement.map(|s| show(s.due)),
            tendered: settlement.map(|s| show(s.tendered)),
            change: settlement.map(|s| show(s.change)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basket_errors_name_the_field() {
        let basket: BasketFile = serde_json::from_str(
            r#"{"jurisdiction":"AT","lines":[{"sku":"A","name":"a","price":"1.00","tax":"standard"},
                {"sku":"B","name":"b","price":"1.005","tax":"standard"}]}"#,
        )
        .unwrap();
        let err = basket.lines(Currency::EUR).unwrap_err();
        assert_eq!(err.field, "lines[1].price");
        assert_eq!(
            err.to_string(),
            "lines[1].price: amount `1.005` has more than 2 decimals, the minor unit of EUR"
        );
        let tenders = [TenderDto {
            kind: "cheque".into(),
            amount: "1".into(),
            reference: None,
        }];
        assert_eq!(
            parse_tenders(&tenders, Currency::EUR).unwrap_err().field,
            "tenders[0].kind"
        );
        assert!(
            serde_json::from_str::<BasketFile>(r#"{"jurisdiction":"AT","lines":[],"x":1}"#)
                .is_err()
        );
    }

    #[test]
    fn a_discount_with_both_percent_and_amount_is_refused_in_words() {
        let both = serde_json::from_str::<DiscountDto>(r#"{"percent":"10","amount":"1.00"}"#)
            .unwrap_err()
            .to_string();
        assert!(both.contains("both percent and amount"), "{both}");
        let neither = serde_json::from_str::<DiscountDto>("{}")
            .unwrap_err()
            .to_string();
        assert!(neither.contains("needs percent or amount"), "{neither}");
        assert!(serde_json::from_str::<DiscountDto>(r#"{"percent":"10","x":"1"}"#).is_err());
        assert_eq!(
            serde_json::from_str::<DiscountDto>(r#"{"amount":"1.50"}"#).unwrap(),
            DiscountDto::Amount("1.50".into())
        );
        // Written as before.
        assert_eq!(
            serde_json::to_string(&DiscountDto::Percent("10".into())).unwrap(),
            r#"{"percent":"10"}"#
        );
    }
}

/// A line as the till sends it: a scanned or typed code and a quantity; the node finds the
/// item, its price and its tax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartLineRequest {
    /// Barcode, PLU or SKU.
    pub code: String,
    /// Quantity (default 1; ignored for scale labels, which carry their own).
    #[serde(default)]
    pub quantity: Option<String>,
    /// Line discount.
    #[serde(default)]
    pub discount: Option<DiscountDto>,
    /// The unit price the cashier typed, for an open-price item (a department key) only.
    #[serde(default)]
    pub price: Option<String>,
}

/// `POST /v1/carts/price`: price a cart without writing anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceCartRequest {
    /// Lines.
    pub lines: Vec<CartLineRequest>,
    /// Cart discount.
    #[serde(default)]
    pub discount: Option<DiscountDto>,
    /// A supervisor's approval for what the cart needs (a large discount), checked when a member
    /// is signed in; the sale checks it again.
    #[serde(default)]
    pub approval: Option<ApprovalRequest>,
}

/// `POST /v1/sales`: complete a sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaleRequest {
    /// The terminal ringing the sale.
    pub terminal: String,
    /// The cashier, when signed in.
    #[serde(default)]
    pub cashier: Option<String>,
    /// Lines.
    pub lines: Vec<CartLineRequest>,
    /// Cart discount.
    #[serde(default)]
    pub discount: Option<DiscountDto>,
    /// Tenders.
    pub tenders: Vec<TenderDto>,
    /// A supervisor's approval, given on the spot, for what the cashier may not do alone.
    #[serde(default)]
    pub approval: Option<ApprovalRequest>,
}

/// A line to return: a line of the original sale (with a receipt) or a code (without).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnLineRequest {
    /// Line number on the original receipt (0-based), for returns with a receipt.
    #[serde(default)]
    pub line: Option<usize>,
    /// Barcode, PLU or SKU, for returns without a receipt.
    #[serde(default)]
    pub code: Option<String>,
    /// Quantity to return.
    pub quantity: String,
}

/// `POST /v1/returns`: return goods, with or without a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    /// The terminal taking the return.
    pub terminal: String,
    /// The original receipt number, if the customer has it.
    #[serde(default)]
    pub receipt: Option<String>,
    /// Lines.
    pub lines: Vec<ReturnLineRequest>,
    /// Why (required without a receipt).
    #[serde(default)]
    pub reason: Option<String>,
    /// How the refund is paid: `cash` (default), `store-credit`, `gift-card` or `card`.
    #[serde(default)]
    pub refund_tender: Option<String>,
    /// For a refund as `store-credit`: the account to credit (a new one is issued when absent);
    /// for `gift-card`: the card to refund onto.
    #[serde(default)]
    pub refund_reference: Option<String>,
    /// A supervisor's approval, given on the spot, for what the cashier may not do alone.
    #[serde(default)]
    pub approval: Option<ApprovalRequest>,
}

/// `POST /v1/sales/void-last`: void the terminal's last sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    /// Terminal.
    pub terminal: String,
    /// Why.
    pub reason: String,
    /// The receipt of the sale the cashier was shown (`GET /v1/sales/last`): when given, the
    /// void is refused unless that sale is still the terminal's last.
    #[serde(default)]
    pub receipt: Option<String>,
    /// A supervisor's approval, given on the spot, for what the cashier may not do alone.
    #[serde(default)]
    pub approval: Option<ApprovalRequest>,
}

/// `POST /v1/stock/adjustments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRequest {
    /// Terminal recording it.
    pub terminal: String,
    /// SKU.
    pub sku: String,
    /// Signed change (`12`, `-1.5`): positive for received, negative for damaged and shrink.
    pub delta: String,
    /// `received`, `damaged`, `shrink` or `correction`.
    pub reason: String,
    /// Free-text note.
    #[serde(default)]
    pub note: Option<String>,
}

/// `POST /v1/stock/counts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountRequest {
    /// Terminal recording it.
    pub terminal: String,
    /// SKU.
    pub sku: String,
    /// What was counted (zero or more).
    pub counted: String,
}

/// A supervisor's approval: who approves, and their PIN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRequest {
    /// The approving member of staff.
    pub staff: String,
    /// Their PIN.
    pub pin: String,
}

/// `POST /v1/sign-in`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// The till.
    pub terminal: String,
    /// Staff id.
    pub staff: String,
    /// PIN.
    pub pin: String,
}

/// `POST /v1/shifts/open`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenShiftRequest {
    /// The till.
    pub terminal: String,
    /// The counted float (`"150.00"`).
    pub float: String,
}

/// `POST /v1/shifts/cash`: a paid-in or paid-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CashRequest {
    /// The till.
    pub terminal: String,
    /// `paid-in` or `paid-out`.
    pub kind: String,
    /// Amount (`"20.00"`).
    pub amount: String,
    /// Why.
    pub reason: String,
    /// A supervisor's approval, given on the spot, for what the cashier may not do alone.
    #[serde(default)]
    pub approval: Option<ApprovalRequest>,
}

/// `POST /v1/shifts/no-sale`: open the drawer without a sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSaleRequest {
    /// The till.
    pub terminal: String,
    /// A supervisor's approval, given on the spot, for what the cashier may not do alone.
    #[serde(default)]
    pub approval: Option<ApprovalRequest>,
}

/// Notes or coins of one value counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenominationCount {
    /// The note's or coin's value (`"50.00"`).
    pub denomination: String,
    /// How many.
    pub count: u32,
}

/// `POST /v1/shifts/close`: a blind count of the drawer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseShiftRequest {
    /// The till.
    pub terminal: String,
    /// The count by denomination.
    pub counted: Vec<DenominationCount>,
    /// The language of the Z report's text in the answer (the till's: `en`, `de`); the printed
    /// report is in the store's.
    #[serde(default)]
    pub lang: Option<String>,
}
