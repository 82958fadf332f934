//! The tax engine's rules: jurisdictions, effective-dated rates per tax category, pricing mode,
//! rounding policy and cash rounding. The arithmetic that applies them lives in `sale`.

use std::fmt;

use rust_decimal::Decimal;

use crate::catalog::TaxCategory;
use crate::money::{Currency, Money, MoneyError, RoundingMode};
use crate::time::Timestamp;

/// Errors from building tax rules or looking them up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxError {
    /// A rate that is not a percentage from 0 up to (not including) 100.
    #[error("tax rate `{value}` must be a percentage from 0 up to 100")]
    BadRate {
        /// The text as given.
        value: String,
    },
    /// A component code Kassa does not accept.
    #[error("tax code `{value}` must be 1 to 16 letters, digits, `-` or `_`")]
    BadCode {
        /// The text as given.
        value: String,
    },
    /// Two rules for one category are in force at the same instant.
    #[error("tax rules for category `{category}` in {jurisdiction} overlap at {at}")]
    Overlap {
        /// The jurisdiction.
        jurisdiction: String,
        /// The category.
        category: TaxCategory,
        /// Start of the later rule.
        at: Timestamp,
    },
    /// No rule for a category at an instant.
    #[error("no tax rule for category `{category}` in {jurisdiction} at {at}")]
    NoRule {
        /// The jurisdiction.
        jurisdiction: String,
        /// The category.
        category: TaxCategory,
        /// The instant.
        at: Timestamp,
    },
    /// A cash rounding increment that is not positive.
    #[error("cash rounding increment must be a positive amount in {currency}")]
    BadCashRounding {
        /// The jurisdiction's currency.
        currency: Currency,
    },
    /// A rounding or amount computation failed.
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// A tax rate as an exact fraction (0.2 for 20 %).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaxRate(Decimal);

impl TaxRate {
    /// Parses a percentage such as `20`, `5.5` or `9.975`.
    pub fn parse_percent(value: &str) -> Result<Self, TaxError> {
        let bad = || TaxError::BadRate {
            value: value.to_owned(),
        };
        let trimmed = value.trim();
        if trimmed.is_empty() || !trimmed.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(bad());
        }
        let percent = Decimal::from_str_exact(trimmed).map_err(|_| bad())?;
        TaxRate::from_percent(percent).ok_or_else(bad)
    }

    /// A rate from an exact percentage; `None` outside 0 ≤ p < 100.
    pub fn from_percent(percent: Decimal) -> Option<Self> {
        if percent < Decimal::ZERO || percent >= Decimal::ONE_HUNDRED {
            return None;
        }
        Some(TaxRate((percent / Decimal::ONE_HUNDRED).normalize()))
    }

    /// The rate as a fraction.
    pub fn fraction(&self) -> Decimal {
        self.0
    }

    /// The rate as a percentage, normalised (`20`, `5.5`, `9.975`).
    pub fn percent(&self) -> Decimal {
        (self.0 * Decimal::ONE_HUNDRED).normalize()
    }
}

impl fmt::Debug for TaxRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.percent())
    }
}

impl fmt::Display for TaxRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.percent())
    }
}

/// One tax levied on a line (VAT, GST, QST, a city sales tax…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxComponent {
    code: String,
    rate: TaxRate,
    compound: bool,
}

impl TaxComponent {
    /// A component; `compound` taxes are levied on the net plus the components before them.
    pub fn new(code: &str, rate: TaxRate, compound: bool) -> Result<Self, TaxError> {
        let ok = !code.is_empty()
            && code.len() <= 16
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        if !ok {
            return Err(TaxError::BadCode {
                value: code.to_owned(),
            });
        }
        Ok(TaxComponent {
            code: code.to_owned(),
            rate,
            compound,
        })
    }

    /// The code printed on receipts (`VAT`, `GST`, `QST`).
    pub fn code(&self) -> &str {
        &self.code
    }
    /// The rate.
    pub fn rate(&self) -> TaxRate {
        self.rate
    }
    /// Whether it is levied on tax too.
    pub fn compound(&self) -> bool {
        self.compound
    }
}

/// The components that apply to one tax category during a validity interval. An empty list
/// means the category is exempt (no tax line at all), unlike a zero rate, which is printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxRule {
    /// The category.
    pub category: TaxCategory,
    /// The taxes, in the order they are levied.
    pub components: Vec<TaxComponent>,
    /// First instant the rule applies.
    pub from: Timestamp,
    /// First instant it no longer applies, if it ends.
    pub to: Option<Timestamp>,
    /// Other components for items priced under a threshold each (New York's clothing and
    /// footwear under $110 an item); `None` when the price does not matter.
    pub under: Option<ItemThreshold>,
}

/// Components that replace a rule's own for an item whose price is under an amount. The price
/// of an item is the line's amount after discounts divided by its quantity: the shelf price,
/// which is before tax where prices exclude tax (as in New York).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemThreshold {
    /// The threshold: items priced under it each get `components`; at or above it, the rule's.
    pub below: Money,
    /// The taxes under the threshold; empty when such items are exempt.
    pub components: Vec<TaxComponent>,
}

/// Whether shelf prices include tax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PricingMode {
    /// Prices include tax (VAT and GST countries); tax is extracted from the gross.
    Inclusive,
    /// Prices exclude tax (US and Canadian sales taxes); tax is added at the till.
    Exclusive,
}

/// Where tax is rounded to the minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoundingLevel {
    /// Each line's tax is rounded; the document's tax is the sum of the lines'.
    Line,
    /// Tax is summed exactly per rate over the document and rounded once, then allocated back
    /// to the lines so each line still satisfies net + tax = gross.
    Document,
}

/// A named rounding policy: how and where tax is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoundingPolicy {
    /// Half-up or half-even.
    pub mode: RoundingMode,
    /// Per line or per document.
    pub level: RoundingLevel,
}

/// Rounding of amounts paid in cash where the smallest coin is larger than the minor unit
/// (Swiss 5 Rappen, Swedish whole kronor…): the cash part of a sale is rounded to the nearest
/// increment, and cash handed back on a return is rounded down (`sale::pay_out_refund`). The
/// difference is its own line on the receipt. Which jurisdictions round, and why, is stated
/// with its source in `presets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CashRounding {
    increment: i64,
}

impl CashRounding {
    /// Rounding to multiples of `increment` (in the currency's minor units), to the nearest,
    /// halves away from zero.
    pub fn new(increment: Money) -> Result<Self, TaxError> {
        if !increment.is_positive() {
            return Err(TaxError::BadCashRounding {
                currency: increment.currency(),
            });
        }
        Ok(CashRounding {
            increment: increment.minor(),
        })
    }

    /// The increment in minor units.
    pub fn increment(&self) -> i64 {
        self.increment
    }

    /// `amount` rounded down to a multiple of the increment (towards minus infinity): what
    /// coins can make of an amount handed back without giving more than it.
    pub fn round_down(&self, amount: Money) -> Money {
        // `increment` is positive (checked in `new`), so neither operation can overflow or
        // divide by zero, and the result is never above `amount`.
        let minor = amount.minor();
        Money::from_minor(minor - minor.rem_euclid(self.increment), amount.currency())
    }

    /// Whether `amount` can be handed over in coins and notes: a multiple of the increment.
    pub fn is_payable(&self, amount: Money) -> bool {
        amount.minor().rem_euclid(self.increment) == 0
    }

    /// `amount` rounded to the nearest multiple of the increment.
    pub fn round(&self, amount: Money) -> Result<Money, MoneyError> {
        let quotient = Decimal::from(amount.minor()) / Decimal::from(self.increment);
        let steps = RoundingMode::HalfUp.round_to_integer(quotient)?;
        let minor = steps
            .checked_mul(self.increment)
            .ok_or(MoneyError::Overflow {
                operation: "cash rounding",
            })?;
        Ok(Money::from_minor(minor, amount.currency()))
    }
}

/// A tax jurisdiction: a country, or a state or city with its own sales tax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jurisdiction {
    code: String,
    currency: Currency,
    pricing: PricingMode,
    rounding: RoundingPolicy,
    cash_rounding: Option<CashRounding>,
    rules: Vec<TaxRule>,
}

impl Jurisdiction {
    /// Builds a jurisdiction, rejecting rules for one category that are in force at once.
    pub fn new(
        code: &str,
        currency: Currency,
        pricing: PricingMode,
        rounding: RoundingPolicy,
        cash_rounding: Option<CashRounding>,
        mut rules: Vec<TaxRule>,
    ) -> Result<Self, TaxError> {
        rules.sort_by(|a, b| a.category.cmp(&b.category).then(a.from.cmp(&b.from)));
        for pair in rules.windows(2) {
            if let [first, second] = pair {
                if first.category == second.category && first.to.is_none_or(|to| to > second.from) {
                    return Err(TaxError::Overlap {
                        jurisdiction: code.to_owned(),
                        category: second.category.clone(),
                        at: second.from,
                    });
                }
            }
        }
        Ok(Jurisdiction {
            code: code.to_owned(),
            currency,
            pricing,
            rounding,
            cash_rounding,
            rules,
        })
    }

    /// The jurisdiction's code (`AT`, `CA-QC`, `US-NY-NYC`).
    pub fn code(&self) -> &str {
        &self.code
    }
    /// The currency of its stores.
    pub fn currency(&self) -> Currency {
        self.currency
    }
    /// Whether prices include tax.
    pub fn pricing(&self) -> PricingMode {
        self.pricing
    }
    /// The rounding policy.
    pub fn rounding(&self) -> RoundingPolicy {
        self.rounding
    }
    /// Cash rounding, if the jurisdiction has it.
    pub fn cash_rounding(&self) -> Option<CashRounding> {
        self.cash_rounding
    }
    /// All rules.
    pub fn rules(&self) -> &[TaxRule] {
        &self.rules
    }

    /// The rule in force for `category` at `at`.
    pub fn rule(&self, category: &TaxCategory, at: Timestamp) -> Result<&TaxRule, TaxError> {
        self.rules
            .iter()
            .find(|r| &r.category == category && r.from <= at && r.to.is_none_or(|to| at < to))
            .ok_or_else(|| TaxError::NoRule {
                jurisdiction: self.code.clone(),
                category: category.clone(),
                at,
            })
    }

    /// The components in force for `category` at `at`, for an item priced at or above any
    /// threshold the rule has.
    pub fn components(
        &self,
        category: &TaxCategory,
        at: Timestamp,
    ) -> Result<&[TaxComponent], TaxError> {
        self.rule(category, at).map(|r| r.components.as_slice())
    }
}

/// A tax amount kept exact as a fraction (minor units): dividing only once, when it is rounded,
/// keeps a tax that is exactly half a minor unit from drifting below the half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExactTax {
    /// Numerator: amount × rate factor, exact.
    pub numerator: Decimal,
    /// Denominator: 1 for exclusive pricing, 1 + the sum of factors for inclusive pricing.
    pub denominator: Decimal,
}

impl ExactTax {
    /// The value as a decimal (one division).
    pub fn value(&self) -> Decimal {
        self.numerator / self.denominator
    }
}

/// Exact tax per component on a line `amount` (minor units). With inclusive pricing `amount` is
/// the gross and the taxes are extracted from it; with exclusive pricing `amount` is the net and
/// the taxes come on top.
pub(crate) fn exact_taxes(
    amount: Decimal,
    components: &[TaxComponent],
    pricing: PricingMode,
) -> Vec<ExactTax> {
    // Each component's tax per unit of net, compounding where asked.
    let mut factors: Vec<Decimal> = Vec::with_capacity(components.len());
    for component in components {
        let base = if component.compound {
            Decimal::ONE + factors.iter().copied().sum::<Decimal>()
        } else {
            Decimal::ONE
        };
        factors.push(component.rate.fraction() * base);
    }
    let denominator = match pricing {
        PricingMode::Exclusive => Decimal::ONE,
        PricingMode::Inclusive => Decimal::ONE + factors.iter().copied().sum::<Decimal>(),
    };
    factors
        .into_iter()
        .map(|f| ExactTax {
            numerator: amount * f,
            denominator,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_exactly() {
        assert_eq!(
            TaxRate::parse_percent("9.975")
                .unwrap()
                .fraction()
                .to_string(),
            "0.09975"
        );
        assert_eq!(TaxRate::parse_percent("20").unwrap().to_string(), "20%");
        assert_eq!(
            TaxRate::parse_percent("100").unwrap_err().to_string(),
            "tax rate `100` must be a percentage from 0 up to 100"
        );
        assert!(TaxRate::parse_percent("-1").is_err());
        assert!(TaxRate::parse_percent("1e2").is_err());
    }

    #[test]
    fn cash_rounding_goes_to_the_nearest_increment() {
        let chf = CashRounding::new(Money::from_minor(5, Currency::CHF)).unwrap();
        let r = |m| {
            chf.round(Money::from_minor(m, Currency::CHF))
                .unwrap()
                .minor()
        };
        assert_eq!(
            (r(1002), r(1003), r(1007), r(1008), r(1025)),
            (1000, 1005, 1005, 1010, 1025)
        );
        let dkk = CashRounding::new(Money::from_minor(50, Currency::DKK)).unwrap();
        let r = |m| {
            dkk.round(Money::from_minor(m, Currency::DKK))
                .unwrap()
                .minor()
        };
        assert_eq!(
            (r(1024), r(1025), r(1074), r(1075)),
            (1000, 1050, 1050, 1100)
        );
        assert!(CashRounding::new(Money::zero(Currency::CHF)).is_err());
        let down = |m| chf.round_down(Money::from_minor(m, Currency::CHF)).minor();
        assert_eq!(
            (down(249), down(250), down(1624), down(-3)),
            (245, 250, 1620, -5)
        );
        assert!(chf.is_payable(Money::from_minor(1620, Currency::CHF)));
        assert!(!chf.is_payable(Money::from_minor(1624, Currency::CHF)));
    }

    #[test]
    fn overlapping_rules_are_rejected() {
        let cat = TaxCategory::parse("standard").unwrap();
        let rule = |from, to: Option<i64>| TaxRule {
            category: cat.clone(),
            components: vec![],
            from: Timestamp::from_millis(from),
            to: to.map(Timestamp::from_millis),
            under: None,
        };
        let policy = RoundingPolicy {
            mode: RoundingMode::HalfUp,
            level: RoundingLevel::Line,
        };
        let err = Jurisdiction::new(
            "XX",
            Currency::EUR,
            PricingMode::Inclusive,
            policy,
            None,
            vec![rule(0, None), rule(10, None)],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "tax rules for category `standard` in XX overlap at 1970-01-01T00:00:00.010Z"
        );
        let j = Jurisdiction::new(
            "XX",
            Currency::EUR,
            PricingMode::Inclusive,
            policy,
            None,
            vec![rule(0, Some(10)), rule(10, None)],
        )
        .unwrap();
        assert!(j.components(&cat, Timestamp::from_millis(5)).is_ok());
        assert_eq!(
            j.components(&cat, Timestamp::from_millis(-5))
                .unwrap_err()
                .to_string(),
            "no tax rule for category `standard` in XX at 1969-12-31T23:59:59.995Z"
        );
    }
}
