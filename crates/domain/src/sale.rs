//! Pricing a cart, settling it with tenders, and pricing returns: the one calculation that the
//! till and head office both run.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::catalog::{Sku, TaxCategory};
use crate::money::{Currency, Money, MoneyError, RoundingMode};
use crate::quantity::{Quantity, QuantityError, UnitOfSale};
use crate::tax::{
    CashRounding, ExactTax, Jurisdiction, PricingMode, RoundingLevel, TaxError, TaxRate,
    exact_taxes,
};
use crate::time::Timestamp;

/// Errors from pricing, settling or returning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaleError {
    /// A line's price is in another currency than the store's.
    #[error("lines[{line}].price: price is in {found}, but the store trades in {expected}")]
    LineCurrency {
        /// Line index (0-based).
        line: usize,
        /// The store's currency.
        expected: Currency,
        /// The line's currency.
        found: Currency,
    },
    /// A line's quantity does not fit its unit of sale.
    #[error("lines[{line}].quantity: {source}")]
    LineQuantity {
        /// Line index (0-based).
        line: usize,
        /// What was wrong.
        source: QuantityError,
    },
    /// A negative unit price or label amount: a sale takes money; money goes back to a customer
    /// through a return, which prices what was sold.
    #[error(
        "lines[{line}].price: {price} is negative; a sale cannot pay money out, a return gives it back"
    )]
    NegativePrice {
        /// Line index (0-based).
        line: usize,
        /// The price as given.
        price: Money,
    },
    /// No tax rule for a line's category at the sale's instant.
    #[error("lines[{line}].tax: {source}")]
    LineTax {
        /// Line index (0-based).
        line: usize,
        /// What was missing.
        source: TaxError,
    },
    /// A discount larger than what it applies to, or not positive.
    #[error("{target}: discount {discount} is not between zero and {limit}")]
    Discount {
        /// The field: `lines[N].discount` or `discount`.
        target: String,
        /// The discount.
        discount: String,
        /// The amount it applies to.
        limit: String,
    },
    /// A percentage outside 0–100.
    #[error("discount percent `{value}` must be greater than 0 and at most 100")]
    BadPercent {
        /// The text or value as given.
        value: String,
    },
    /// A sale without lines.
    #[error("a sale needs at least one line")]
    NoLines,
    /// A tender that is zero or negative.
    #[error("tenders[{index}].amount: amount must be greater than zero")]
    TenderNotPositive {
        /// Tender index (0-based).
        index: usize,
    },
    /// A tender in another currency.
    #[error("tenders[{index}].amount: amount is in {found}, but the sale is in {expected}")]
    TenderCurrency {
        /// Tender index (0-based).
        index: usize,
        /// The sale's currency.
        expected: Currency,
        /// The tender's currency.
        found: Currency,
    },
    /// A cash tender that no coins make where the jurisdiction rounds cash (10.03 where the
    /// smallest coin is 0.05): change from it could not be handed back either.
    #[error(
        "tenders[{index}].amount: cash amount {amount} cannot be handed over in coins; cash here is a multiple of {increment}"
    )]
    CashNotPayable {
        /// Tender index (0-based).
        index: usize,
        /// The amount.
        amount: Money,
        /// The smallest amount coins make.
        increment: Money,
    },
    /// Tenders do not cover the amount due.
    #[error("tenders {tendered} do not cover the amount due {due}")]
    TendersShort {
        /// The amount due.
        due: Money,
        /// The sum of tenders.
        tendered: Money,
    },
    /// Card, gift card and store credit together exceed the amount due; only cash gives change.
    #[error("non-cash tenders {non_cash} exceed the amount due {due}; only cash gives change")]
    NonCashOverTender {
        /// The amount due.
        due: Money,
        /// The sum of non-cash tenders.
        non_cash: Money,
    },
    /// A return names a line the sale does not have.
    #[error("lines[{index}].line: the sale has no line {line}")]
    NoSuchLine {
        /// Index in the return request.
        index: usize,
        /// The line asked for.
        line: usize,
    },
    /// A return of more than is left to return on a line.
    #[error(
        "return of line {line}: {requested} asked, but only {left} of {sold} sold is left to return"
    )]
    ReturnExceedsSold {
        /// Line of the sale.
        line: usize,
        /// Quantity asked for.
        requested: Quantity,
        /// Quantity sold on that line.
        sold: Quantity,
        /// What is left after earlier returns (may be zero).
        left: String,
    },
    /// A tax rule was missing or wrong.
    #[error(transparent)]
    Tax(#[from] TaxError),
    /// An amount overflowed or mixed currencies.
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// A percentage discount, greater than 0 and at most 100, exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Percent(Decimal);

impl Percent {
    /// Parses `10`, `12.5` …
    pub fn parse(value: &str) -> Result<Self, SaleError> {
        let bad = || SaleError::BadPercent {
            value: value.to_owned(),
        };
        let trimmed = value.trim();
        if trimmed.is_empty() || !trimmed.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(bad());
        }
        let d = Decimal::from_str_exact(trimmed).map_err(|_| bad())?;
        Percent::new(d).ok_or_else(bad)
    }

    /// An exact percentage, `None` outside 0 < p ≤ 100.
    pub fn new(value: Decimal) -> Option<Self> {
        (value > Decimal::ZERO && value <= Decimal::ONE_HUNDRED).then(|| Percent(value.normalize()))
    }

    /// The percentage (`12.5` for 12.5 %).
    pub fn value(&self) -> Decimal {
        self.0
    }
}

/// A discount on a line or on the whole cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Discount {
    /// A percentage of the amount.
    Percent(Percent),
    /// A fixed amount off.
    Amount(Money),
}

/// A line as the till asks for it: what, how much, at which price and tax category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInput {
    /// The variant.
    pub sku: Sku,
    /// The name printed on the receipt.
    pub name: String,
    /// Unit price (per piece, kg or litre), from the pricebook or a scale label.
    pub unit_price: Money,
    /// Quantity.
    pub quantity: Quantity,
    /// How it is sold.
    pub unit: UnitOfSale,
    /// Its tax category.
    pub tax_category: TaxCategory,
    /// A line discount.
    pub discount: Option<Discount>,
    /// The line amount printed on a price-embedded scale label; when set it replaces unit
    /// price × quantity, because the customer pays what the label says.
    pub fixed_amount: Option<Money>,
}

/// Tax on one line for one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineTax {
    /// Component code (`VAT`, `GST`).
    pub code: String,
    /// The rate.
    pub rate: TaxRate,
    /// The tax, in minor units of the sale's currency.
    pub amount: Money,
}

/// A priced line: every amount the receipt and the books need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    /// The variant.
    pub sku: Sku,
    /// The receipt name.
    pub name: String,
    /// Quantity.
    pub quantity: Quantity,
    /// How it is sold.
    pub unit: UnitOfSale,
    /// Its tax category.
    pub tax_category: TaxCategory,
    /// Unit price.
    pub unit_price: Money,
    /// Unit price × quantity, before discounts.
    pub extended: Money,
    /// The line's own discount.
    pub line_discount: Money,
    /// This line's share of the cart discount.
    pub cart_discount: Money,
    /// Net of tax, after discounts.
    pub net: Money,
    /// Taxes by component.
    pub taxes: Vec<LineTax>,
    /// Net plus taxes: what the customer pays for this line.
    pub gross: Money,
}

/// One row of the tax breakdown: a component at a rate, with its taxable base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxSummary {
    /// Component code.
    pub code: String,
    /// Rate.
    pub rate: TaxRate,
    /// The net the tax was levied on.
    pub base: Money,
    /// The tax.
    pub amount: Money,
}

/// A priced cart: lines, tax breakdown and totals; nothing here came from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedCart {
    /// The currency.
    pub currency: Currency,
    /// Whether prices included tax when this was priced.
    pub pricing: PricingMode,
    /// Priced lines, in the order given.
    pub lines: Vec<PricedLine>,
    /// Tax per component and rate.
    pub taxes: Vec<TaxSummary>,
    /// Sum of extended amounts before discounts.
    pub subtotal: Money,
    /// Line and cart discounts together.
    pub discount_total: Money,
    /// Sum of nets.
    pub net_total: Money,
    /// Sum of taxes.
    pub tax_total: Money,
    /// What the goods cost, taxes included (before any cash rounding).
    pub total: Money,
}

/// Prices `lines` with an optional cart discount under `jurisdiction`'s rules at `at`.
pub fn price_cart(
    jurisdiction: &Jurisdiction,
    lines: &[LineInput],
    cart_discount: Option<Discount>,
    at: Timestamp,
) -> Result<PricedCart, SaleError> {
    let currency = jurisdiction.currency();
    let mode = jurisdiction.rounding().mode;
    let mut after_line_discount = Vec::with_capacity(lines.len());
    let mut extended = Vec::with_capacity(lines.len());
    let mut line_discounts = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        if line.unit_price.currency() != currency {
            return Err(SaleError::LineCurrency {
                line: index,
                expected: currency,
                found: line.unit_price.currency(),
            });
        }
        line.quantity
            .check_unit(line.unit)
            .map_err(|source| SaleError::LineQuantity {
                line: index,
                source,
            })?;
        let ext = match line.fixed_amount {
            Some(fixed) if fixed.currency() != currency => {
                return Err(SaleError::LineCurrency {
                    line: index,
                    expected: currency,
                    found: fixed.currency(),
                });
            }
            Some(fixed) => fixed,
            None => {
                let amount = Decimal::from(line.unit_price.minor()) * line.quantity.to_decimal();
                Money::from_minor(mode.round_to_integer(amount)?, currency)
            }
        };
        if ext.is_negative() || line.unit_price.is_negative() {
            return Err(SaleError::NegativePrice {
                line: index,
                price: if ext.is_negative() {
                    ext
                } else {
                    line.unit_price
                },
            });
        }
        let discount = discount_amount(line.discount, ext, mode, || {
            format!("lines[{index}].discount")
        })?;
        extended.push(ext);
        line_discounts.push(discount);
        after_line_discount.push(ext.checked_sub(discount)?);
    }
    let before_cart = Money::sum(currency, &after_line_discount)?;
    let cart_total_discount =
        discount_amount(cart_discount, before_cart, mode, || "discount".into())?;
    let weights: Vec<u128> = after_line_discount
        .iter()
        .map(|m| u128::try_from(m.minor()).unwrap_or(0))
        .collect();
    let cart_shares = if lines.is_empty() {
        Vec::new()
    } else {
        cart_total_discount.allocate(&weights)?
    };
    let amounts: Vec<Money> = after_line_discount
        .iter()
        .zip(&cart_shares)
        .map(|(a, s)| a.checked_sub(*s))
        .collect::<Result<_, _>>()?;

    // Tax per line and component, exact first.
    let pricing = jurisdiction.pricing();
    let mut exact: Vec<Vec<(String, TaxRate, ExactTax)>> = Vec::with_capacity(lines.len());
    for (index, (line, amount)) in lines.iter().zip(&amounts).enumerate() {
        let rule = jurisdiction
            .rule(&line.tax_category, at)
            .map_err(|source| SaleError::LineTax {
                line: index,
                source,
            })?;
        // A threshold is per item: the line's amount after discounts against the threshold
        // times the quantity, exactly (two coats at 120.00 are two items at or above 110.00).
        let components = match &rule.under {
            Some(t)
                if Decimal::from(amount.minor())
                    < Decimal::from(t.below.minor()) * line.quantity.to_decimal() =>
            {
                t.components.as_slice()
            }
            _ => rule.components.as_slice(),
        };
        let taxes = exact_taxes(Decimal::from(amount.minor()), components, pricing);
        exact.push(
            components
                .iter()
                .zip(taxes)
                .map(|(c, t)| (c.code().to_owned(), c.rate(), t))
                .collect(),
        );
    }
    let rounded = round_taxes(&exact, jurisdiction.rounding().level, mode)?;

    let mut priced = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let taxes: Vec<LineTax> = exact[index]
            .iter()
            .zip(&rounded[index])
            .map(|((code, rate, _), minor)| LineTax {
                code: code.clone(),
                rate: *rate,
                amount: Money::from_minor(*minor, currency),
            })
            .collect();
        let tax = Money::sum(currency, taxes.iter().map(|t| &t.amount))?;
        let (net, gross) = match pricing {
            PricingMode::Inclusive => (amounts[index].checked_sub(tax)?, amounts[index]),
            PricingMode::Exclusive => (amounts[index], amounts[index].checked_add(tax)?),
        };
        priced.push(PricedLine {
            sku: line.sku.clone(),
            name: line.name.clone(),
            quantity: line.quantity,
            unit: line.unit,
            tax_category: line.tax_category.clone(),
            unit_price: line.unit_price,
            extended: extended[index],
            line_discount: line_discounts[index],
            cart_discount: cart_shares[index],
            net,
            taxes,
            gross,
        });
    }
    summarise(currency, pricing, priced)
}

/// Builds the tax breakdown and totals of priced lines.
fn summarise(
    currency: Currency,
    pricing: PricingMode,
    lines: Vec<PricedLine>,
) -> Result<PricedCart, SaleError> {
    let mut breakdown: BTreeMap<(String, TaxRate), (Money, Money)> = BTreeMap::new();
    for line in &lines {
        for tax in &line.taxes {
            let entry = breakdown
                .entry((tax.code.clone(), tax.rate))
                .or_insert((Money::zero(currency), Money::zero(currency)));
            entry.0 = entry.0.checked_add(line.net)?;
            entry.1 = entry.1.checked_add(tax.amount)?;
        }
    }
    let taxes = breakdown
        .into_iter()
        .map(|((code, rate), (base, amount))| TaxSummary {
            code,
            rate,
            base,
            amount,
        })
        .collect();
    let sum = |f: fn(&PricedLine) -> Money| -> Result<Money, MoneyError> {
        lines
            .iter()
            .try_fold(Money::zero(currency), |acc, l| acc.checked_add(f(l)))
    };
    let subtotal = sum(|l| l.extended)?;
    let line_disc = sum(|l| l.line_discount)?;
    let cart_disc = sum(|l| l.cart_discount)?;
    let net_total = sum(|l| l.net)?;
    let total = sum(|l| l.gross)?;
    Ok(PricedCart {
        currency,
        pricing,
        subtotal,
        discount_total: line_disc.checked_add(cart_disc)?,
        net_total,
        tax_total: total.checked_sub(net_total)?,
        total,
        lines,
        taxes,
    })
}

fn discount_amount(
    discount: Option<Discount>,
    of: Money,
    mode: RoundingMode,
    target: impl Fn() -> String,
) -> Result<Money, SaleError> {
    let amount = match discount {
        None => return Ok(Money::zero(of.currency())),
        Some(Discount::Percent(p)) => Money::from_minor(
            mode.round_to_integer(Decimal::from(of.minor()) * p.value() / Decimal::ONE_HUNDRED)?,
            of.currency(),
        ),
        Some(Discount::Amount(a)) => a,
    };
    if amount.currency() != of.currency() || amount.is_negative() || amount.minor() > of.minor() {
        return Err(SaleError::Discount {
            target: target(),
            discount: amount.to_string(),
            limit: of.to_string(),
        });
    }
    Ok(amount)
}

/// Rounds exact taxes per line (line level), or per component and rate over the document
/// (document level). At document level each group's exact sum is rounded once and given back to
/// the lines by largest remainder: every line gets its exact tax rounded down, and the units
/// left over go to the lines with the largest fractions (ties to the earlier line), so each line
/// stays within one minor unit of its exact tax and the lines add up to the rounded total.
fn round_taxes(
    exact: &[Vec<(String, TaxRate, ExactTax)>],
    level: RoundingLevel,
    mode: RoundingMode,
) -> Result<Vec<Vec<i64>>, SaleError> {
    let mut rounded: Vec<Vec<i64>> = exact
        .iter()
        .map(|line| {
            line.iter()
                .map(|(_, _, t)| mode.round_to_integer(t.value()))
                .collect::<Result<_, _>>()
        })
        .collect::<Result<_, _>>()?;
    if level == RoundingLevel::Line {
        return Ok(rounded);
    }
    // Members of each (component, rate) group: (line, component index, exact tax).
    type Member = (usize, usize, ExactTax);
    let mut groups: BTreeMap<(&str, TaxRate), Vec<Member>> = BTreeMap::new();
    for (l, line) in exact.iter().enumerate() {
        for (c, (code, rate, tax)) in line.iter().enumerate() {
            groups
                .entry((code.as_str(), *rate))
                .or_default()
                .push((l, c, *tax));
        }
    }
    let overflow = || MoneyError::Overflow {
        operation: "tax rounding",
    };
    for members in groups.values() {
        // Sum numerators over a shared denominator before dividing, so the sum stays exact.
        let mut by_denominator: BTreeMap<Decimal, Decimal> = BTreeMap::new();
        for m in members {
            *by_denominator.entry(m.2.denominator).or_default() += m.2.numerator;
        }
        let sum: Decimal = by_denominator.iter().map(|(d, n)| *n / *d).sum();
        let total = mode.round_to_integer(sum)?;
        let mut floors = Vec::with_capacity(members.len());
        for m in members {
            let value = m.2.value();
            let floor = i64::try_from(value.floor()).map_err(|_| overflow())?;
            floors.push((floor, value - value.floor()));
        }
        let mut left = total - floors.iter().map(|f| f.0).sum::<i64>();
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.sort_by(|a, b| floors[*b].1.cmp(&floors[*a].1).then(a.cmp(b)));
        let mut parts: Vec<i64> = floors.iter().map(|f| f.0).collect();
        for index in order.iter().cycle().take(order.len() * 2) {
            if left <= 0 {
                break;
            }
            parts[*index] += 1;
            left -= 1;
        }
        for (member, part) in members.iter().zip(parts) {
            rounded[member.0][member.1] = part;
        }
    }
    Ok(rounded)
}

/// How a customer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TenderKind {
    /// Notes and coins; the only tender that gives change.
    Cash,
    /// A payment card through the terminal.
    Card,
    /// A gift card.
    GiftCard,
    /// Store credit.
    StoreCredit,
}

impl TenderKind {
    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            TenderKind::Cash => "cash",
            TenderKind::Card => "card",
            TenderKind::GiftCard => "gift-card",
            TenderKind::StoreCredit => "store-credit",
        }
    }

    /// Parses the wire name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "cash" => Some(TenderKind::Cash),
            "card" => Some(TenderKind::Card),
            "gift-card" => Some(TenderKind::GiftCard),
            "store-credit" => Some(TenderKind::StoreCredit),
            _ => None,
        }
    }
}

/// One payment towards a sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tender {
    /// How.
    pub kind: TenderKind,
    /// How much was handed over or authorised.
    pub amount: Money,
    /// A reference (card payment reference, gift card number), never card data.
    pub reference: Option<String>,
}

/// The money side of a completed sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The goods' total.
    pub total: Money,
    /// Cash rounding (due minus total): the rounding of the part paid in cash, where the
    /// jurisdiction rounds cash; zero without a cash tender.
    pub cash_rounding: Money,
    /// What the customer owes: total plus cash rounding.
    pub due: Money,
    /// What was handed over.
    pub tendered: Money,
    /// Change given back, in cash.
    pub change: Money,
}

/// Settles a priced cart with tenders: rounds the part paid in cash where the jurisdiction
/// rounds cash, refuses card over-tender (only cash gives change), cash no coins can make, and
/// tenders short of what is due.
///
/// The cash part is what the non-cash tenders leave of the total. It alone is rounded, so a
/// card pays exactly what it was charged while the cash handed over and the change are
/// multiples of the smallest coin, whether the sale is paid in cash alone or split between a
/// card and cash (Finance Canada's rounding guidelines: only cash payments are rounded; the
/// other jurisdictions' rules are in `presets`).
pub fn settle(
    cart: &PricedCart,
    tenders: &[Tender],
    cash_rounding: Option<CashRounding>,
) -> Result<Settlement, SaleError> {
    let currency = cart.currency;
    for (index, tender) in tenders.iter().enumerate() {
        if tender.amount.currency() != currency {
            return Err(SaleError::TenderCurrency {
                index,
                expected: currency,
                found: tender.amount.currency(),
            });
        }
        if !tender.amount.is_positive() {
            return Err(SaleError::TenderNotPositive { index });
        }
    }
    let tendered = Money::sum(currency, tenders.iter().map(|t| &t.amount))?;
    let non_cash = Money::sum(
        currency,
        tenders
            .iter()
            .filter(|t| t.kind != TenderKind::Cash)
            .map(|t| &t.amount),
    )?;
    if non_cash.minor() > cart.total.minor() {
        return Err(SaleError::NonCashOverTender {
            due: cart.total,
            non_cash,
        });
    }
    let has_cash = tenders.iter().any(|t| t.kind == TenderKind::Cash);
    let due = match cash_rounding {
        Some(rounding) if has_cash => {
            for (index, tender) in tenders.iter().enumerate() {
                if tender.kind == TenderKind::Cash && !rounding.is_payable(tender.amount) {
                    return Err(SaleError::CashNotPayable {
                        index,
                        amount: tender.amount,
                        increment: Money::from_minor(rounding.increment(), currency),
                    });
                }
            }
            due_with_cash(cart.total, non_cash, Some(rounding))?
        }
        _ => cart.total,
    };
    if tendered.minor() < due.minor() {
        return Err(SaleError::TendersShort { due, tendered });
    }
    Ok(Settlement {
        total: cart.total,
        cash_rounding: due.checked_sub(cart.total)?,
        due,
        tendered,
        change: tendered.checked_sub(due)?,
    })
}

/// What is due for `total` when `non_cash` of it is paid by card, gift card or store credit and
/// the rest in cash: the non-cash part exactly, the cash part rounded to the nearest increment
/// where the jurisdiction rounds cash. The till shows it while a customer still has the rest to
/// pay in cash.
pub fn due_with_cash(
    total: Money,
    non_cash: Money,
    cash_rounding: Option<CashRounding>,
) -> Result<Money, SaleError> {
    let cash_part = total.checked_sub(non_cash)?;
    Ok(match cash_rounding {
        Some(rounding) if !cash_part.is_negative() => {
            non_cash.checked_add(rounding.round(cash_part)?)?
        }
        _ => total,
    })
}

/// A line of a return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnedLine {
    /// The line of the original sale.
    pub sale_line: usize,
    /// The variant.
    pub sku: Sku,
    /// Quantity returned.
    pub quantity: Quantity,
    /// Net refunded.
    pub net: Money,
    /// Tax refunded, by component.
    pub taxes: Vec<LineTax>,
    /// Gross refunded.
    pub gross: Money,
}

/// A priced return against an earlier sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedReturn {
    /// The returned lines.
    pub lines: Vec<ReturnedLine>,
    /// Gross of the returned lines.
    pub total: Money,
    /// This return's share of the sale's cash rounding.
    pub cash_rounding: Money,
    /// What goes back to the customer: total plus the cash rounding share.
    pub refund: Money,
}

/// `value × part / whole`, rounded half away from zero.
fn prorate(value: i64, part: i64, whole: i64) -> Result<i64, MoneyError> {
    if whole == 0 {
        return Ok(0);
    }
    let exact = Decimal::from(value) * Decimal::from(part) / Decimal::from(whole);
    RoundingMode::HalfUp.round_to_integer(exact)
}

/// Prices the return of `request` (sale line, quantity) against a sale whose lines were
/// `cart` and money side `settlement`, after earlier returns of `returned_milli` per line.
///
/// Each amount is refunded as the difference of its cumulative pro-rata share before and after
/// this return, so a sale returned in any number of steps refunds exactly what was charged —
/// line by line, tax by tax, and the cash rounding too.
pub fn price_return(
    cart: &PricedCart,
    settlement: &Settlement,
    returned_milli: &[i64],
    request: &[(usize, Quantity)],
) -> Result<PricedReturn, SaleError> {
    let currency = cart.currency;
    let already = |line: usize| returned_milli.get(line).copied().unwrap_or(0);
    let mut asked: BTreeMap<usize, i64> = BTreeMap::new();
    for (index, (line, quantity)) in request.iter().enumerate() {
        let sold = cart
            .lines
            .get(*line)
            .ok_or(SaleError::NoSuchLine { index, line: *line })?;
        let total_asked = asked.entry(*line).or_insert(0);
        *total_asked += quantity.milli();
        let left = sold.quantity.milli() - already(*line);
        if *total_asked > left {
            return Err(SaleError::ReturnExceedsSold {
                line: *line,
                requested: *quantity,
                sold: sold.quantity,
                left: Quantity::from_milli(left).map_or_else(|_| "0".into(), |q| q.to_string()),
            });
        }
    }
    let share = |value: Money, line: &PricedLine, milli: i64| -> Result<i64, MoneyError> {
        prorate(value.minor(), milli, line.quantity.milli())
    };
    let mut lines = Vec::new();
    let mut gross_before = 0_i64;
    let mut gross_after = 0_i64;
    for (index, line) in cart.lines.iter().enumerate() {
        let before = already(index);
        let now = asked.get(&index).copied().unwrap_or(0);
        gross_before += share(line.gross, line, before)?;
        gross_after += share(line.gross, line, before + now)?;
        if now == 0 {
            continue;
        }
        let delta = |value: Money| -> Result<Money, MoneyError> {
            Ok(Money::from_minor(
                share(value, line, before + now)? - share(value, line, before)?,
                currency,
            ))
        };
        let gross = delta(line.gross)?;
        let taxes = line
            .taxes
            .iter()
            .map(|t| {
                Ok(LineTax {
                    code: t.code.clone(),
                    rate: t.rate,
                    amount: delta(t.amount)?,
                })
            })
            .collect::<Result<Vec<_>, MoneyError>>()?;
        let tax = Money::sum(currency, taxes.iter().map(|t| &t.amount))?;
        lines.push(ReturnedLine {
            sale_line: index,
            sku: line.sku.clone(),
            quantity: Quantity::from_milli(now).map_err(|source| SaleError::LineQuantity {
                line: index,
                source,
            })?,
            net: gross.checked_sub(tax)?,
            taxes,
            gross,
        });
    }
    let total = Money::sum(currency, lines.iter().map(|l| &l.gross))?;
    let rounding = settlement.cash_rounding.minor();
    let whole = settlement.total.minor();
    let cash_rounding = Money::from_minor(
        prorate(rounding, gross_after, whole)? - prorate(rounding, gross_before, whole)?,
        currency,
    );
    Ok(PricedReturn {
        refund: total.checked_add(cash_rounding)?,
        lines,
        total,
        cash_rounding,
    })
}

/// A return's refund as it is handed over, and what rounding held back of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundPayout {
    /// The return with `refund` set to what is handed over and `cash_rounding` to the
    /// difference from the returned goods' total.
    pub refund: PricedReturn,
    /// What the refunds of the sale so far have held back by cash rounding, this one included:
    /// zero or negative, less than one increment; pass it to the sale's next refund.
    pub held_back: Money,
}

/// Pays out a priced return in `tender`.
///
/// Cash is handed back in what coins make: the amount owed (this return's exact refund plus
/// what earlier cash refunds of the same sale held back, `held_back`, zero or negative) is
/// rounded down to the jurisdiction's increment. Down, not to the nearest, so that no return
/// ever hands back more than the customer paid: nearest rounding of a card sale of 16.24 would
/// give 16.25 in cash. What is held back is owed to the customer and is added to the sale's
/// next refund, so returning a sale in any number of steps gives back what was paid to within
/// one coin, and exactly when the sale was paid in cash or the last refund is not cash. Other
/// tenders hand back the amount owed exactly.
///
/// A return without a receipt passes zero for `held_back`: the till knows no sale to carry to.
pub fn pay_out_refund(
    priced: PricedReturn,
    tender: TenderKind,
    cash_rounding: Option<CashRounding>,
    held_back: Money,
) -> Result<RefundPayout, SaleError> {
    let currency = priced.total.currency();
    // Held back is never positive: a refund never hands back more than it owes.
    let held_back = if held_back.is_positive() {
        Money::zero(currency)
    } else {
        held_back
    };
    let owed = priced.refund.checked_sub(held_back)?;
    let paid = match (tender, cash_rounding) {
        (TenderKind::Cash, Some(rounding)) => rounding.round_down(owed),
        _ => owed,
    };
    Ok(RefundPayout {
        held_back: paid.checked_sub(owed)?,
        refund: PricedReturn {
            cash_rounding: paid.checked_sub(priced.total)?,
            refund: paid,
            ..priced
        },
    })
}

#[cfg(test)]
mod tests;
