//! Exact quantities: whole units, or weighed and measured goods in thousandths.

use std::fmt;

use rust_decimal::Decimal;

/// Errors from reading a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The text is not a decimal number.
    #[error("quantity `{value}` is not a decimal number")]
    NotANumber {
        /// The text as given.
        value: String,
    },
    /// Spaces (or other white space) around the number: what was sent is not what was meant.
    #[error("quantity `{value}` has spaces around the number")]
    Spaced {
        /// The text as given.
        value: String,
    },
    /// Zero or a negative number where a positive quantity is needed.
    #[error("quantity `{value}` must be greater than zero")]
    NotPositive {
        /// The text or value as given.
        value: String,
    },
    /// More than three decimals.
    #[error("quantity `{value}` has more than 3 decimals")]
    TooPrecise {
        /// The text as given.
        value: String,
    },
    /// A fraction of an item sold by the piece.
    #[error("quantity `{value}` must be a whole number for items sold each")]
    NotWhole {
        /// The text or value as given.
        value: String,
    },
    /// Too large to represent.
    #[error("quantity `{value}` is too large")]
    TooLarge {
        /// The text or value as given.
        value: String,
    },
}

/// How an item is sold, which decides what one unit of quantity means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnitOfSale {
    /// By the piece: quantities are whole.
    Each,
    /// By weight: price per kilogram, quantity in kilograms with gram precision.
    Weight,
    /// By volume: price per litre, quantity in litres with millilitre precision.
    Volume,
}

impl UnitOfSale {
    /// The name used in configuration and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitOfSale::Each => "each",
            UnitOfSale::Weight => "kg",
            UnitOfSale::Volume => "l",
        }
    }

    /// Parses `each`, `kg` or `l`.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "each" | "ea" | "piece" | "pc" => Some(UnitOfSale::Each),
            "kg" | "weight" => Some(UnitOfSale::Weight),
            "l" | "volume" => Some(UnitOfSale::Volume),
            _ => None,
        }
    }
}

/// A positive quantity in thousandths of a unit (1 piece = 1000; 0.250 kg = 250).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quantity {
    milli: i64,
}

/// The largest quantity accepted on one line: a million units.
const MAX_MILLI: i64 = 1_000_000_000;

impl Quantity {
    /// One piece.
    pub const ONE: Quantity = Quantity { milli: 1000 };

    /// `count` whole pieces.
    pub fn each(count: i64) -> Result<Self, QuantityError> {
        let milli = count.checked_mul(1000).ok_or(QuantityError::TooLarge {
            value: count.to_string(),
        })?;
        Quantity::from_milli(milli)
    }

    /// A quantity in thousandths of a unit (grams of a kilogram, millilitres of a litre).
    pub fn from_milli(milli: i64) -> Result<Self, QuantityError> {
        if milli <= 0 {
            return Err(QuantityError::NotPositive {
                value: format_milli(milli),
            });
        }
        if milli > MAX_MILLI {
            return Err(QuantityError::TooLarge {
                value: format_milli(milli),
            });
        }
        Ok(Quantity { milli })
    }

    /// Parses a decimal such as `2`, `0.25` or `1.125` exactly.
    pub fn parse(value: &str) -> Result<Self, QuantityError> {
        let trimmed = value.trim();
        if trimmed.len() != value.len() && !trimmed.is_empty() {
            return Err(QuantityError::Spaced {
                value: value.to_owned(),
            });
        }
        let not_a_number = || QuantityError::NotANumber {
            value: value.to_owned(),
        };
        let valid_shape = !trimmed.is_empty()
            && trimmed
                .trim_start_matches('-')
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.')
            && trimmed.chars().any(|c| c.is_ascii_digit());
        if !valid_shape {
            return Err(not_a_number());
        }
        let decimal = Decimal::from_str_exact(trimmed).map_err(|_| not_a_number())?;
        let scaled =
            decimal
                .checked_mul(Decimal::from(1000))
                .ok_or_else(|| QuantityError::TooLarge {
                    value: value.to_owned(),
                })?;
        if scaled.fract() != Decimal::ZERO {
            return Err(QuantityError::TooPrecise {
                value: value.to_owned(),
            });
        }
        let milli = i64::try_from(scaled).map_err(|_| QuantityError::TooLarge {
            value: value.to_owned(),
        })?;
        Quantity::from_milli(milli).map_err(|e| match e {
            QuantityError::NotPositive { .. } => QuantityError::NotPositive {
                value: value.to_owned(),
            },
            QuantityError::TooLarge { .. } => QuantityError::TooLarge {
                value: value.to_owned(),
            },
            other => other,
        })
    }

    /// Checks that the quantity fits how the item is sold (whole pieces for `Each`).
    pub fn check_unit(self, unit: UnitOfSale) -> Result<Self, QuantityError> {
        if unit == UnitOfSale::Each && self.milli % 1000 != 0 {
            return Err(QuantityError::NotWhole {
                value: self.to_string(),
            });
        }
        Ok(self)
    }

    /// The quantity in thousandths.
    pub const fn milli(&self) -> i64 {
        self.milli
    }

    /// The quantity as an exact decimal in units.
    pub fn to_decimal(&self) -> Decimal {
        Decimal::new(self.milli, 3).normalize()
    }
}

fn format_milli(milli: i64) -> String {
    Decimal::new(milli, 3).normalize().to_string()
}

/// Formats a signed quantity in thousandths (a stock movement or on-hand figure) as a decimal:
/// `-1.5`, `12`, `0`.
pub fn format_signed_milli(milli: i64) -> String {
    format_milli(milli)
}

/// Parses a signed decimal quantity (`-1.5`, `12`, `0`) into thousandths, exactly.
pub fn parse_signed_milli(value: &str) -> Result<i64, QuantityError> {
    let trimmed = value.trim();
    let (negative, digits) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let is_zero = digits.contains('0')
        && digits.chars().all(|c| c == '0' || c == '.')
        && digits.matches('.').count() <= 1;
    if is_zero {
        return Ok(0);
    }
    let q = Quantity::parse(digits).map_err(|e| match e {
        QuantityError::NotPositive { .. } => QuantityError::NotANumber {
            value: value.to_owned(),
        },
        QuantityError::NotANumber { .. } => QuantityError::NotANumber {
            value: value.to_owned(),
        },
        QuantityError::TooPrecise { .. } => QuantityError::TooPrecise {
            value: value.to_owned(),
        },
        QuantityError::TooLarge { .. } => QuantityError::TooLarge {
            value: value.to_owned(),
        },
        other => other,
    })?;
    Ok(if negative { -q.milli() } else { q.milli() })
}

impl fmt::Debug for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_milli(self.milli))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_milli(self.milli))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_exact_quantities() {
        assert_eq!(Quantity::parse("2").unwrap().milli(), 2000);
        assert_eq!(Quantity::parse("0.25").unwrap().milli(), 250);
        assert_eq!(Quantity::parse("1.125").unwrap().milli(), 1125);
        assert_eq!(Quantity::parse("1.125").unwrap().to_string(), "1.125");
    }

    #[test]
    fn a_quantity_with_spaces_around_it_is_refused() {
        for spaced in [" 1", "1 ", "\t2", "0.5\n"] {
            assert_eq!(
                Quantity::parse(spaced),
                Err(QuantityError::Spaced {
                    value: spaced.to_owned()
                }),
                "{spaced:?}"
            );
        }
        assert_eq!(Quantity::each(3).unwrap().to_string(), "3");
    }

    #[test]
    fn rejects_bad_quantities_by_name() {
        assert_eq!(
            Quantity::parse("0").unwrap_err().to_string(),
            "quantity `0` must be greater than zero"
        );
        assert_eq!(
            Quantity::parse("-1").unwrap_err().to_string(),
            "quantity `-1` must be greater than zero"
        );
        assert_eq!(
            Quantity::parse("0.0001").unwrap_err().to_string(),
            "quantity `0.0001` has more than 3 decimals"
        );
        assert!(matches!(
            Quantity::parse("1e3"),
            Err(QuantityError::NotANumber { .. })
        ));
        assert!(matches!(
            Quantity::parse("99999999999999999999"),
            Err(QuantityError::TooLarge { .. })
        ));
        assert_eq!(
            Quantity::parse("1.5")
                .unwrap()
                .check_unit(UnitOfSale::Each)
                .unwrap_err()
                .to_string(),
            "quantity `1.5` must be a whole number for items sold each"
        );
        assert!(
            Quantity::parse("1.5")
                .unwrap()
                .check_unit(UnitOfSale::Weight)
                .is_ok()
        );
    }

    #[test]
    fn signed_quantities_parse_exactly() {
        assert_eq!(parse_signed_milli("-1.5").unwrap(), -1500);
        assert_eq!(parse_signed_milli("12").unwrap(), 12000);
        assert_eq!(parse_signed_milli("0").unwrap(), 0);
        assert_eq!(parse_signed_milli("0.000").unwrap(), 0);
        assert_eq!(format_signed_milli(-1500), "-1.5");
        assert!(parse_signed_milli("--1").is_err());
        assert!(parse_signed_milli("").is_err());
        assert!(parse_signed_milli("1.0001").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = Quantity::parse(&s);
        }

        #[test]
        fn display_round_trips(milli in 1_i64..=MAX_MILLI) {
            let q = Quantity::from_milli(milli).unwrap();
            prop_assert_eq!(Quantity::parse(&q.to_string()).unwrap(), q);
        }
    }
}
