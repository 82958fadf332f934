//! Money as integer minor units of an ISO 4217 currency, with checked arithmetic and exact
//! allocation.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

/// Errors from constructing or combining amounts of money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The currency code is not an ISO 4217 currency with a minor unit.
    #[error("currency `{code}` is not an ISO 4217 currency code with a minor unit")]
    UnknownCurrency {
        /// The code as given.
        code: String,
    },
    /// Two amounts in different currencies were combined.
    #[error("cannot combine {left} with {right}: currencies differ")]
    CurrencyMismatch {
        /// The currency of the left operand.
        left: Currency,
        /// The currency of the right operand.
        right: Currency,
    },
    /// An operation overflowed the 64-bit range of minor units.
    #[error("amount overflow in {operation}")]
    Overflow {
        /// What was being computed.
        operation: &'static str,
    },
    /// A number, but too large for any amount, or written with an exponent (`1e30`), which
    /// amounts never are.
    #[error(
        "amount `{value}` is out of range: an amount is a plain decimal such as 12.50 of at most 18 digits in minor units"
    )]
    OutOfRange {
        /// The text as given.
        value: String,
    },
    /// A decimal amount could not be read.
    #[error("amount `{value}` is not a decimal number")]
    NotANumber {
        /// The text as given.
        value: String,
    },
    /// A decimal amount has more decimals than the currency's minor unit allows.
    #[error("amount `{value}` has more than {exponent} decimals, the minor unit of {currency}")]
    TooPrecise {
        /// The text as given.
        value: String,
        /// The currency's exponent.
        exponent: u32,
        /// The currency.
        currency: Currency,
    },
    /// Allocation weights were unusable.
    #[error("cannot allocate over weights: {reason}")]
    BadWeights {
        /// Why the weights were rejected.
        reason: &'static str,
    },
}

/// An ISO 4217 currency that has a minor unit (exponent 0 to 4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

impl Currency {
    /// Euro.
    pub const EUR: Currency = Currency::known(*b"EUR", 2);
    /// Swiss franc.
    pub const CHF: Currency = Currency::known(*b"CHF", 2);
    /// Swedish krona.
    pub const SEK: Currency = Currency::known(*b"SEK", 2);
    /// Danish krone.
    pub const DKK: Currency = Currency::known(*b"DKK", 2);
    /// Pound sterling.
    pub const GBP: Currency = Currency::known(*b"GBP", 2);
    /// Canadian dollar.
    pub const CAD: Currency = Currency::known(*b"CAD", 2);
    /// US dollar.
    pub const USD: Currency = Currency::known(*b"USD", 2);
    /// Japanese yen (no minor unit).
    pub const JPY: Currency = Currency::known(*b"JPY", 0);
    /// Kuwaiti dinar (three decimals).
    pub const KWD: Currency = Currency::known(*b"KWD", 3);

    const fn known(code: [u8; 3], exponent: u8) -> Self {
        Currency { code, exponent }
    }

    /// Parses an ISO 4217 alphabetic code such as `EUR` (case-insensitive).
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let unknown = || MoneyError::UnknownCurrency {
            code: code.to_owned(),
        };
        let upper = code.trim().to_ascii_uppercase();
        let iso = iso_currency::Currency::from_code(&upper).ok_or_else(unknown)?;
        let exponent = iso.exponent().ok_or_else(unknown)?;
        let exponent = u8::try_from(exponent).map_err(|_| unknown())?;
        let bytes: [u8; 3] = upper.as_bytes().try_into().map_err(|_| unknown())?;
        if exponent > 4 {
            return Err(unknown());
        }
        Ok(Currency {
            code: bytes,
            exponent,
        })
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        // The bytes come from a validated ASCII code, so this never fails.
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// The number of decimals of the minor unit (EUR 2, JPY 0, KWD 3).
    pub fn exponent(&self) -> u32 {
        u32::from(self.exponent)
    }

    /// How many minor units make one major unit (100 for EUR, 1 for JPY).
    pub fn minor_per_major(&self) -> i64 {
        10_i64.pow(self.exponent())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

/// How a value exactly between two representable amounts is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoundingMode {
    /// Half away from zero ("commercial rounding"): 0.5 → 1, −0.5 → −1.
    HalfUp,
    /// Half to even ("banker's rounding"): 0.5 → 0, 1.5 → 2.
    HalfEven,
    /// Toward zero (truncation), as Japanese retailers commonly round consumption tax.
    Down,
}

impl RoundingMode {
    fn strategy(self) -> RoundingStrategy {
        match self {
            RoundingMode::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            RoundingMode::HalfEven => RoundingStrategy::MidpointNearestEven,
            RoundingMode::Down => RoundingStrategy::ToZero,
        }
    }

    /// Rounds an exact decimal to a whole number with this mode.
    pub fn round_to_integer(self, value: Decimal) -> Result<i64, MoneyError> {
        let rounded = value.round_dp_with_strategy(0, self.strategy());
        i64::try_from(rounded).map_err(|_| MoneyError::Overflow {
            operation: "rounding",
        })
    }

    /// The name used in configuration and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RoundingMode::HalfUp => "half-up",
            RoundingMode::HalfEven => "half-even",
            RoundingMode::Down => "down",
        }
    }

    /// Parses `half-up`, `half-even` or `down`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "half-up" => Some(RoundingMode::HalfUp),
            "half-even" => Some(RoundingMode::HalfEven),
            "down" => Some(RoundingMode::Down),
            _ => None,
        }
    }
}

/// An amount of money: integer minor units of one currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// An amount of `minor` units (cents, øre, yen…) of `currency`.
    pub const fn from_minor(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    /// Zero in `currency`.
    pub const fn zero(currency: Currency) -> Self {
        Money { minor: 0, currency }
    }

    /// Parses a decimal amount in major units (`"12.34"`, `"-0.5"`, `"1500"`) exactly.
    /// More decimals than the currency's minor unit is an error, never a silent rounding.
    pub fn parse_major(value: &str, currency: Currency) -> Result<Self, MoneyError> {
        let trimmed = value.trim();
        let not_a_number = || MoneyError::NotANumber {
            value: value.to_owned(),
        };
        let valid_shape = !trimmed.is_empty()
            && trimmed
                .trim_start_matches(['-', '+'])
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.')
            && trimmed.matches('.').count() <= 1
            && trimmed.chars().any(|c| c.is_ascii_digit());
        let out_of_range = || MoneyError::OutOfRange {
            value: value.to_owned(),
        };
        if !valid_shape {
            // `1e30` is a number to a JSON parser, just not one an amount is written as.
            let scientific = trimmed
                .split_once(['e', 'E'])
                .is_some_and(|(mantissa, exponent)| {
                    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
                    let mantissa = mantissa.trim_start_matches(['-', '+']);
                    let exponent = exponent.trim_start_matches(['-', '+']);
                    mantissa.split('.').all(|p| p.is_empty() || digits(p))
                        && mantissa.bytes().any(|b| b.is_ascii_digit())
                        && mantissa.matches('.').count() <= 1
                        && digits(exponent)
                });
            return Err(if scientific {
                out_of_range()
            } else {
                not_a_number()
            });
        }
        // The shape is a decimal number; one that does not fit is too large, not malformed.
        let decimal = Decimal::from_str_exact(trimmed).map_err(|_| out_of_range())?;
        Money::from_decimal_exact(decimal, currency).map_err(|e| match e {
            MoneyError::Overflow { .. } => out_of_range(),
            MoneyError::TooPrecise { .. } => MoneyError::TooPrecise {
                value: value.to_owned(),
                exponent: currency.exponent(),
                currency,
            },
            other => other,
        })
    }

    /// Converts an exact decimal in major units; errors if it has more decimals than the
    /// minor unit.
    pub fn from_decimal_exact(value: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let scaled = value
            .checked_mul(Decimal::from(currency.minor_per_major()))
            .ok_or(MoneyError::Overflow {
                operation: "conversion",
            })?;
        if scaled.fract() != Decimal::ZERO {
            return Err(MoneyError::TooPrecise {
                value: value.to_string(),
                exponent: currency.exponent(),
                currency,
            });
        }
        let minor = i64::try_from(scaled).map_err(|_| MoneyError::Overflow {
            operation: "conversion",
        })?;
        Ok(Money { minor, currency })
    }

    /// Converts an exact decimal in major units, rounding to the minor unit with `mode`.
    pub fn from_decimal_rounded(
        value: Decimal,
        currency: Currency,
        mode: RoundingMode,
    ) -> Result<Self, MoneyError> {
        let scaled = value
            .checked_mul(Decimal::from(currency.minor_per_major()))
            .ok_or(MoneyError::Overflow {
                operation: "conversion",
            })?;
        Ok(Money {
            minor: mode.round_to_integer(scaled)?,
            currency,
        })
    }

    /// The amount in minor units.
    pub const fn minor(&self) -> i64 {
        self.minor
    }

    /// The currency.
    pub const fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount as an exact decimal in major units.
    pub fn to_decimal(&self) -> Decimal {
        Decimal::new(self.minor, self.currency.exponent())
    }

    /// True for a zero amount.
    pub const fn is_zero(&self) -> bool {
        self.minor == 0
    }

    /// True for an amount below zero.
    pub const fn is_negative(&self) -> bool {
        self.minor < 0
    }

    /// True for an amount above zero.
    pub const fn is_positive(&self) -> bool {
        self.minor > 0
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    /// `self + other`; differing currencies and overflow are errors.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow {
                operation: "addition",
            })?;
        Ok(Money { minor, ..self })
    }

    /// `self - other`; differing currencies and overflow are errors.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow {
                operation: "subtraction",
            })?;
        Ok(Money { minor, ..self })
    }

    /// `self × factor` for an integer factor.
    pub fn checked_mul(self, factor: i64) -> Result<Money, MoneyError> {
        let minor = self.minor.checked_mul(factor).ok_or(MoneyError::Overflow {
            operation: "multiplication",
        })?;
        Ok(Money { minor, ..self })
    }

    /// `-self`.
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        let minor = self.minor.checked_neg().ok_or(MoneyError::Overflow {
            operation: "negation",
        })?;
        Ok(Money { minor, ..self })
    }

    /// The absolute amount.
    pub fn checked_abs(self) -> Result<Money, MoneyError> {
        if self.minor < 0 {
            self.checked_neg()
        } else {
            Ok(self)
        }
    }

    /// Sums amounts of one currency; an empty iterator sums to zero in `currency`.
    pub fn sum<'a>(
        currency: Currency,
        amounts: impl IntoIterator<Item = &'a Money>,
    ) -> Result<Money, MoneyError> {
        amounts
            .into_iter()
            .try_fold(Money::zero(currency), |acc, m| acc.checked_add(*m))
    }

    /// Splits this amount over `weights` by the largest-remainder method: the parts always
    /// sum exactly to `self`, each part is as close to its exact share as whole minor units
    /// allow, and ties go to the earlier weight so the result is deterministic.
    pub fn allocate(self, weights: &[u128]) -> Result<Vec<Money>, MoneyError> {
        let parts = allocate_integer(i128::from(self.minor), weights)?;
        parts
            .into_iter()
            .map(|p| {
                i64::try_from(p)
                    .map(|minor| Money { minor, ..self })
                    .map_err(|_| MoneyError::Overflow {
                        operation: "allocation",
                    })
            })
            .collect()
    }

    /// The larger of two amounts of one currency (`self` when they differ in currency).
    pub fn max_with(self, other: Money) -> Money {
        if other.currency == self.currency && other.minor > self.minor {
            other
        } else {
            self
        }
    }

    /// Formats the amount in major units without the currency code (`12.34`, `-0.05`, `1500`).
    pub fn amount_string(&self) -> String {
        self.to_decimal().to_string()
    }
}

/// Largest-remainder allocation of an integer `total` over non-negative `weights`.
pub(crate) fn allocate_integer(total: i128, weights: &[u128]) -> Result<Vec<i128>, MoneyError> {
    if weights.is_empty() {
        return Err(MoneyError::BadWeights {
            reason: "no weights",
        });
    }
    let sum: u128 = weights
        .iter()
        .try_fold(0_u128, |acc, w| acc.checked_add(*w))
        .ok_or(MoneyError::BadWeights {
            reason: "weights overflow",
        })?;
    if sum == 0 {
        // Nothing to weigh by: split evenly, which is what a person would do.
        return allocate_integer(total, &vec![1; weights.len()]);
    }
    let negative = total < 0;
    let magnitude = total.unsigned_abs();
    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    let mut given: u128 = 0;
    for (index, weight) in weights.iter().enumerate() {
        // magnitude × weight can exceed u128 only for absurd inputs; reject rather than wrap.
        let product = magnitude
            .checked_mul(*weight)
            .ok_or(MoneyError::BadWeights {
                reason: "amount times weight overflows",
            })?;
        let share = product / sum;
        let remainder = product % sum;
        given += share;
        parts.push(share);
        remainders.push((remainder, index));
    }
    let mut left = magnitude - given;
    // Largest remainder first; equal remainders go to the earlier index.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, index) in remainders {
        if left == 0 {
            break;
        }
        parts[index] += 1;
        left -= 1;
    }
    parts
        .into_iter()
        .map(|p| {
            let signed = i128::try_from(p).map_err(|_| MoneyError::Overflow {
                operation: "allocation",
            })?;
            Ok(if negative { -signed } else { signed })
        })
        .collect()
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency, self.amount_string())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency, self.amount_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn currencies_carry_their_exponent() {
        for (code, exponent) in [("EUR", 2), ("JPY", 0), ("KWD", 3), ("BHD", 3), ("chf", 2)] {
            assert_eq!(
                Currency::parse(code).unwrap().exponent(),
                exponent,
                "{code}"
            );
        }
        assert_eq!(Currency::parse("eur").unwrap(), Currency::EUR);
    }

    #[test]
    fn unknown_currency_is_named() {
        let err = Currency::parse("EUX").unwrap_err();
        assert_eq!(
            err.to_string(),
            "currency `EUX` is not an ISO 4217 currency code with a minor unit"
        );
        // Gold has no minor unit, so it cannot be a till currency.
        assert!(Currency::parse("XAU").is_err());
    }

    #[test]
    fn an_amount_too_large_or_with_an_exponent_is_out_of_range_not_malformed() {
        for value in [
            "1e30",
            "1E5",
            "-2.5e3",
            "1000000000000000000000000000000",
            "99999999999999999999",
        ] {
            assert_eq!(
                Money::parse_major(value, Currency::EUR),
                Err(MoneyError::OutOfRange {
                    value: value.to_owned()
                }),
                "{value}"
            );
        }
        for value in ["abc", "1e", "e5", "1.2.3", ""] {
            assert!(
                matches!(
                    Money::parse_major(value, Currency::EUR),
                    Err(MoneyError::NotANumber { .. })
                ),
                "{value}"
            );
        }
    }

    #[test]
    fn parse_major_is_exact() {
        assert_eq!(
            Money::parse_major("12.34", Currency::EUR).unwrap().minor(),
            1234
        );
        assert_eq!(
            Money::parse_major("-0.5", Currency::EUR).unwrap().minor(),
            -50
        );
        assert_eq!(
            Money::parse_major("1500", Currency::JPY).unwrap().minor(),
            1500
        );
        assert_eq!(
            Money::parse_major("1.234", Currency::KWD).unwrap().minor(),
            1234
        );
        let err = Money::parse_major("1.005", Currency::EUR).unwrap_err();
        assert_eq!(
            err.to_string(),
            "amount `1.005` has more than 2 decimals, the minor unit of EUR"
        );
        assert!(Money::parse_major("12.5", Currency::JPY).is_err());
        for bad in ["", "abc", "1e5", "1.2.3", "--1", "NaN", "."] {
            assert!(Money::parse_major(bad, Currency::EUR).is_err(), "{bad}");
        }
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Money::from_minor(i64::MAX, Currency::EUR);
        assert!(matches!(
            a.checked_add(Money::from_minor(1, Currency::EUR)),
            Err(MoneyError::Overflow { .. })
        ));
        let err = Money::from_minor(1, Currency::EUR)
            .checked_add(Money::from_minor(1, Currency::CHF))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot combine EUR with CHF: currencies differ"
        );
        assert!(
            Money::from_minor(i64::MIN, Currency::EUR)
                .checked_neg()
                .is_err()
        );
    }

    #[test]
    fn allocation_splits_by_largest_remainder() {
        let total = Money::from_minor(100, Currency::EUR);
        let parts: Vec<i64> = total
            .allocate(&[1, 1, 1])
            .unwrap()
            .iter()
            .map(Money::minor)
            .collect();
        assert_eq!(parts, vec![34, 33, 33]);
        let parts: Vec<i64> = Money::from_minor(-100, Currency::EUR)
            .allocate(&[1, 1, 1])
            .unwrap()
            .iter()
            .map(Money::minor)
            .collect();
        assert_eq!(parts, vec![-34, -33, -33]);
        let parts: Vec<i64> = Money::from_minor(5, Currency::EUR)
            .allocate(&[0, 0])
            .unwrap()
            .iter()
            .map(Money::minor)
            .collect();
        assert_eq!(parts, vec![3, 2]);
        assert!(total.allocate(&[]).is_err());
    }

    #[test]
    fn display_uses_the_minor_unit() {
        assert_eq!(
            Money::from_minor(1234, Currency::EUR).to_string(),
            "EUR 12.34"
        );
        assert_eq!(
            Money::from_minor(-5, Currency::CHF).to_string(),
            "CHF -0.05"
        );
        assert_eq!(
            Money::from_minor(1500, Currency::JPY).to_string(),
            "JPY 1500"
        );
        assert_eq!(Money::from_minor(1, Currency::KWD).to_string(), "KWD 0.001");
    }

    proptest! {
        #[test]
        fn allocation_always_sums_to_the_total(
            total in -1_000_000_000_i64..1_000_000_000,
            weights in proptest::collection::vec(0_u128..1_000_000, 1..20),
        ) {
            let money = Money::from_minor(total, Currency::EUR);
            let parts = money.allocate(&weights).unwrap();
            prop_assert_eq!(parts.len(), weights.len());
            let sum: i64 = parts.iter().map(Money::minor).sum();
            prop_assert_eq!(sum, total);
            // Each part is within one minor unit of its exact share.
            let weight_sum: u128 = weights.iter().sum();
            if weight_sum > 0 {
                for (part, weight) in parts.iter().zip(&weights) {
                    let exact = i128::from(total) * i128::try_from(*weight).unwrap();
                    let scaled = i128::from(part.minor()) * i128::try_from(weight_sum).unwrap();
                    prop_assert!((scaled - exact).abs() < i128::try_from(weight_sum).unwrap());
                }
            }
        }

        #[test]
        fn parse_major_never_panics(s in ".*") {
            let _ = Money::parse_major(&s, Currency::EUR);
            let _ = Currency::parse(&s);
        }

        #[test]
        fn parse_major_round_trips(minor in -1_000_000_000_000_i64..1_000_000_000_000) {
            let money = Money::from_minor(minor, Currency::EUR);
            prop_assert_eq!(Money::parse_major(&money.amount_string(), Currency::EUR).unwrap(), money);
        }
    }
}
