//! Normalisation of raw cell text: titles (trimmed, Unicode NFC, single spaces), barcodes (GTIN
//! with check-digit validation, UPC-E expansion, lost leading zeros restored only when that is
//! unambiguous, spreadsheet scientific notation flagged and never repaired), prices (currency
//! symbols, thousands separators, many decimals, always exact decimals, never floats), booleans
//! and weights.

use std::str::FromStr;

use domain::barcode::BarcodeError;
use domain::{Currency, Gtin, Money, RoundingMode};
use rust_decimal::Decimal;
use unicode_normalization::UnicodeNormalization;

/// Trims, normalises to Unicode NFC and collapses runs of whitespace (newlines included) into
/// one space.
pub fn text(raw: &str) -> String {
    let trimmed = raw.trim();
    let mut out = String::with_capacity(trimmed.len());
    let mut space = false;
    let mut push = |c: char, out: &mut String| {
        if c.is_whitespace() {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    };
    if trimmed.is_ascii() {
        for c in trimmed.chars() {
            push(c, &mut out);
        }
    } else {
        for c in trimmed.nfc() {
            push(c, &mut out);
        }
    }
    out
}

/// A key for comparing SKUs across systems: trimmed, upper case, without spaces, dashes,
/// underscores, dots or slashes (`srt-cot 111` and `SRT_COT_111` compare equal).
pub fn sku_key(raw: &str) -> String {
    raw.trim()
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '_' | '.' | '/'))
        .flat_map(char::to_uppercase)
        .collect()
}

/// What a barcode cell holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BarcodeCheck {
    /// A valid GTIN; `note` says what was done to the text to get it (UPC-E expanded, leading
    /// zeros restored).
    Valid {
        /// The GTIN.
        gtin: Gtin,
        /// What was changed, if anything.
        note: Option<&'static str>,
    },
    /// The digits are there but the check digit is wrong.
    BadCheckDigit(String),
    /// Spreadsheet scientific notation: the digits are lost.
    Scientific(String),
    /// Not a GTIN at all (letters, a length no GTIN has, an internal code).
    NotGtin(String),
    /// Digits that could be more than one valid GTIN once the lost zeros are put back.
    Ambiguous(String),
}

impl BarcodeCheck {
    /// The GTIN, when valid.
    pub fn gtin(&self) -> Option<Gtin> {
        match self {
            BarcodeCheck::Valid { gtin, .. } => Some(*gtin),
            _ => None,
        }
    }

    /// A short code for counting and diagnostics.
    pub fn code(&self) -> &'static str {
        match self {
            BarcodeCheck::Valid { .. } => "barcode-valid",
            BarcodeCheck::BadCheckDigit(_) => "barcode-check-digit",
            BarcodeCheck::Scientific(_) => "barcode-scientific",
            BarcodeCheck::NotGtin(_) => "barcode-not-gtin",
            BarcodeCheck::Ambiguous(_) => "barcode-ambiguous",
        }
    }

    /// Why the barcode is not used, for a diagnostic; `None` when valid.
    pub fn reason(&self) -> Option<String> {
        match self {
            BarcodeCheck::Valid { .. } => None,
            BarcodeCheck::BadCheckDigit(v) => Some(format!(
                "barcode `{v}` has a wrong check digit; it is kept as a legacy code only"
            )),
            BarcodeCheck::Scientific(v) => Some(format!(
                "barcode `{v}` was turned into scientific notation by a spreadsheet; its digits \
                 are lost and it is not repaired: export the file again with the column as text"
            )),
            BarcodeCheck::NotGtin(v) => Some(format!(
                "`{v}` is not a GTIN (8, 12, 13 or 14 digits); it is kept as a legacy code only"
            )),
            BarcodeCheck::Ambiguous(v) => Some(format!(
                "barcode `{v}` has lost leading zeros and could be more than one valid GTIN; \
                 it is not guessed"
            )),
        }
    }
}

/// Classifies a barcode cell. Empty cells give `None`.
///
/// Eight digits are read as GTIN-8, or as UPC-E when only that reading has a valid check
/// digit (both valid is ambiguous). Nine to eleven digits are a UPC-A or EAN-13 whose leading
/// zeros a spreadsheet dropped: padding with zeros cannot change which GTIN-14 they are, so
/// they are restored when the check digit is then valid. Seven digits could be a GTIN-8 or a
/// UPC-E that lost its leading zero, so they are restored only when exactly one reading is
/// valid. Shorter codes are internal codes, never GTINs.
pub fn barcode(raw: &str) -> Option<BarcodeCheck> {
    let value = raw.trim();
    if value.is_empty() {
        return None;
    }
    // A trailing `.0` is what a spreadsheet adds to a number it did not reformat otherwise.
    let digits = value.strip_suffix(".0").unwrap_or(value);
    let check = match Gtin::parse(digits) {
        Ok(gtin) => {
            if digits.len() == 8 && Gtin::from_upc_e(digits).is_ok() && starts_upc_e(digits) {
                // Valid both as GTIN-8 and as UPC-E: which one was printed cannot be told.
                BarcodeCheck::Ambiguous(value.to_owned())
            } else {
                BarcodeCheck::Valid {
                    gtin,
                    note: (digits != value).then_some("trailing `.0` removed"),
                }
            }
        }
        Err(BarcodeError::ScientificNotation { .. }) => BarcodeCheck::Scientific(value.to_owned()),
        Err(BarcodeError::CheckDigit { .. }) if digits.len() == 8 => {
            match Gtin::from_upc_e(digits) {
                Ok(gtin) => BarcodeCheck::Valid {
                    gtin,
                    note: Some("UPC-E expanded to UPC-A"),
                },
                Err(_) => BarcodeCheck::BadCheckDigit(value.to_owned()),
            }
        }
        Err(BarcodeError::CheckDigit { .. }) => BarcodeCheck::BadCheckDigit(value.to_owned()),
        Err(BarcodeError::Length { len, .. }) if (9..=11).contains(&len) => {
            match Gtin::parse(&format!("{digits:0>12}")) {
                Ok(gtin) => BarcodeCheck::Valid {
                    gtin,
                    note: Some("leading zeros restored"),
                },
                Err(_) => BarcodeCheck::BadCheckDigit(value.to_owned()),
            }
        }
        Err(BarcodeError::Length { len: 7, .. }) => {
            let padded = format!("0{digits}");
            let as_gtin8 = Gtin::parse(&padded).ok();
            let as_upc_e = Gtin::from_upc_e(&padded).ok();
            match (as_gtin8, as_upc_e) {
                (Some(gtin), None) => BarcodeCheck::Valid {
                    gtin,
                    note: Some("leading zero restored"),
                },
                (None, Some(gtin)) => BarcodeCheck::Valid {
                    gtin,
                    note: Some("leading zero restored and UPC-E expanded to UPC-A"),
                },
                (Some(_), Some(_)) => BarcodeCheck::Ambiguous(value.to_owned()),
                (None, None) => BarcodeCheck::NotGtin(value.to_owned()),
            }
        }
        Err(_) => BarcodeCheck::NotGtin(value.to_owned()),
    };
    Some(check)
}

fn starts_upc_e(digits: &str) -> bool {
    matches!(digits.as_bytes().first(), Some(b'0' | b'1'))
}

/// How a source writes the decimal separator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecimalStyle {
    /// `1,234.56`; a lone comma followed by exactly three digits is a thousands separator,
    /// otherwise a lone comma is a decimal comma.
    #[default]
    Auto,
    /// `1,234.56`.
    Dot,
    /// `1.234,56`.
    Comma,
}

/// Parses a decimal number as written by people and spreadsheets: currency symbols and codes
/// around it (`£4,250.00`, `19,90 €`, `EUR 5`), thousands separators, any number of decimals,
/// a leading minus or parentheses for negatives. Exact: the digits go straight into a
/// [`Decimal`].
pub fn decimal(raw: &str, style: DecimalStyle) -> Result<Decimal, String> {
    let s = raw.trim();
    let mut negative = false;
    let mut body = String::with_capacity(s.len());
    let mut seen_digit = false;
    let mut letters = String::new();
    let inner = match s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        Some(inner) => {
            negative = true;
            inner
        }
        None => s,
    };
    for c in inner.chars() {
        match c {
            '0'..='9' => {
                seen_digit = true;
                body.push(c);
            }
            '.' | ',' => body.push(c),
            '-' | '\u{2212}' if !seen_digit && !negative => negative = true,
            '+' if !seen_digit => {}
            // Thin and no-break spaces and apostrophes are thousands separators in some locales.
            ' ' | '\u{a0}' | '\u{202f}' | '\'' => {}
            c if c.is_alphabetic() => letters.push(c),
            c if is_currency_symbol(c) => {}
            _ => return Err(format!("`{raw}` is not a number")),
        }
    }
    // Letters may only be a currency code or sign (`EUR`, `kr`); a lone `e` is an exponent,
    // which prices never have.
    if !seen_digit || letters.eq_ignore_ascii_case("e") || letters.chars().count() > 3 {
        return Err(format!("`{raw}` is not a number"));
    }
    let dots = body.matches('.').count();
    let commas = body.matches(',').count();
    let plain: String = match style {
        DecimalStyle::Dot => body.replace(',', ""),
        DecimalStyle::Comma => body.replace('.', "").replace(',', "."),
        DecimalStyle::Auto => match (dots, commas) {
            (0, 0) => body,
            (_, 0) if dots > 1 => body.replace('.', ""),
            (_, 0) => body,
            (0, 1) => {
                let after = body.rsplit(',').next().map_or(0, str::len);
                if after == 3 {
                    body.replace(',', "")
                } else {
                    body.replace(',', ".")
                }
            }
            (0, _) => body.replace(',', ""),
            _ => {
                // Both: whichever comes last is the decimal separator.
                let last_dot = body.rfind('.').unwrap_or(0);
                let last_comma = body.rfind(',').unwrap_or(0);
                if last_dot > last_comma {
                    body.replace(',', "")
                } else {
                    body.replace('.', "").replace(',', ".")
                }
            }
        },
    };
    if plain.matches('.').count() > 1 || plain.starts_with('.') && plain.len() == 1 {
        return Err(format!("`{raw}` is not a number"));
    }
    let value = Decimal::from_str(&plain).map_err(|_| format!("`{raw}` is not a number"))?;
    Ok(if negative { -value } else { value })
}

fn is_currency_symbol(c: char) -> bool {
    matches!(
        c,
        '$' | '£'
            | '€'
            | '¥'
            | '₹'
            | '₩'
            | '₽'
            | '₺'
            | '₪'
            | '₫'
            | '฿'
            | '₴'
            | '₦'
            | '¢'
            | 'ƒ'
    )
}

/// The currency sign or code written in a price cell (`£`, `$`, `EUR`, `kr`), if any.
pub fn currency_mark(raw: &str) -> Option<String> {
    let mut mark = String::new();
    for c in raw.chars() {
        if is_currency_symbol(c) || c.is_alphabetic() {
            mark.push(c);
        }
    }
    (!mark.is_empty()).then_some(mark)
}

/// The ISO 4217 codes a currency sign or code can stand for, the usual one first (`$` is the
/// US dollar unless a source declares another dollar). Empty when the mark is no currency
/// Kassa knows.
pub fn mark_currencies(mark: &str) -> Vec<String> {
    let known: &[&'static str] = match mark {
        "$" | "US$" => &["USD", "CAD", "AUD", "NZD", "SGD", "HKD", "MXN"],
        "£" => &["GBP"],
        "€" => &["EUR"],
        "¥" => &["JPY", "CNY"],
        "₹" => &["INR"],
        "₩" => &["KRW"],
        "₽" => &["RUB"],
        "₺" => &["TRY"],
        "₪" => &["ILS"],
        "₫" => &["VND"],
        "฿" => &["THB"],
        "₴" => &["UAH"],
        "₦" => &["NGN"],
        "R$" => &["BRL"],
        "kr" | "Kr" | "kr." => &["SEK", "NOK", "DKK", "ISK"],
        "zł" => &["PLN"],
        "Kč" => &["CZK"],
        "Ft" => &["HUF"],
        "Fr" | "fr" => &["CHF"],
        _ => &[],
    };
    if !known.is_empty() {
        return known.iter().map(|c| (*c).to_owned()).collect();
    }
    if mark.len() == 3 && mark.chars().all(|c| c.is_ascii_alphabetic()) {
        if let Ok(c) = Currency::parse(mark) {
            return vec![c.code().to_owned()];
        }
    }
    Vec::new()
}

/// Whether a GTIN is a restricted-circulation number: GS1 prefixes 02 and 20 to 29 (numbers a
/// store or a country's GS1 office gives out for local use, weighed and price-labelled goods)
/// and 040 to 049 (numbers a company uses in-house), and 8-digit codes starting with 0 or 2.
/// Two systems number such items each for itself, so the same code in two sources says
/// nothing about whether they are one item.
pub fn is_restricted(gtin: &Gtin) -> bool {
    if gtin.is_restricted_circulation() {
        return true;
    }
    gtin.len() != 8 && gtin.to_gtin13().is_some_and(|g| g.starts_with("04"))
}

/// Whether a value looks like a barcode: only digits, as many as a GTIN has (8, 12, 13 or 14).
pub fn barcode_shaped(raw: &str) -> bool {
    let v = raw.trim();
    matches!(v.len(), 8 | 12 | 13 | 14) && v.bytes().all(|b| b.is_ascii_digit())
}

/// A parsed amount and, when it had more decimals than the currency's minor unit, the
/// original text it was rounded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    /// The amount.
    pub money: Money,
    /// Whether rounding to the minor unit changed the value.
    pub rounded: bool,
}

/// Parses a price or cost into money of `currency`; more decimals than the minor unit are
/// rounded half-up (nine-decimal costs are common) and `rounded` says so.
pub fn money(raw: &str, currency: Currency, style: DecimalStyle) -> Result<Amount, String> {
    let value = decimal(raw, style)?;
    match Money::from_decimal_exact(value, currency) {
        Ok(money) => Ok(Amount {
            money,
            rounded: false,
        }),
        Err(domain::MoneyError::TooPrecise { .. }) => {
            Money::from_decimal_rounded(value, currency, RoundingMode::HalfUp)
                .map(|money| Amount {
                    money,
                    rounded: true,
                })
                .map_err(|e| format!("`{raw}`: {e}"))
        }
        Err(e) => Err(format!("`{raw}`: {e}")),
    }
}

/// Reads a yes/no cell: `Y`/`N`, `yes`/`no`, `true`/`false`, `1`/`0`, `on`/`off`, and the
/// WooCommerce `taxable`/`none`. Empty gives `None`; anything else is an error.
pub fn boolean(raw: &str) -> Result<Option<bool>, String> {
    let v = raw.trim();
    if v.is_empty() {
        return Ok(None);
    }
    match v.to_ascii_lowercase().as_str() {
        "y" | "yes" | "true" | "1" | "on" | "ja" | "oui" | "si" | "sí" | "active" | "taxable" => {
            Ok(Some(true))
        }
        "n" | "no" | "false" | "0" | "off" | "nein" | "non" | "inactive" | "none" => {
            Ok(Some(false))
        }
        _ => Err(format!("`{v}` is neither yes nor no")),
    }
}

/// Grams per unit of weight, by the unit's usual spellings; `None` for an unknown unit.
pub fn grams_per(unit: &str) -> Option<Decimal> {
    let u = unit.trim().to_ascii_lowercase();
    // Exact factors: 1 lb = 453.59237 g, 1 oz = 28.349523125 g (international avoirdupois).
    let factor = match u.as_str() {
        "g" | "gram" | "grams" => Decimal::ONE,
        "kg" | "kilogram" | "kilograms" => Decimal::from(1000),
        "lb" | "lbs" | "pound" | "pounds" => Decimal::new(45_359_237, 5),
        "oz" | "ounce" | "ounces" => Decimal::new(28_349_523_125, 9),
        _ => return None,
    };
    Some(factor)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn text_is_trimmed_nfc_and_single_spaced() {
        // "e" followed by a combining acute accent becomes the single code point é.
        assert_eq!(text("  Cafe\u{301}\n  au   lait "), "Caf\u{e9} au lait");
        assert_eq!(text("plain"), "plain");
    }

    #[test]
    fn barcodes_are_classified() {
        let valid = |s: &str| barcode(s).unwrap().gtin().unwrap().to_gtin14();
        assert_eq!(valid("4006381333931"), "04006381333931");
        assert_eq!(valid("036000291452"), "00036000291452");
        // The same UPC-A after a spreadsheet dropped its leading zero.
        assert_eq!(valid("36000291452"), "00036000291452");
        assert_eq!(valid("36000291452.0"), "00036000291452");
        // UPC-E 04252614 expands to UPC-A 042100005264.
        assert_eq!(
            barcode("04252614").unwrap(),
            BarcodeCheck::Valid {
                gtin: Gtin::parse("042100005264").unwrap(),
                note: Some("UPC-E expanded to UPC-A")
            }
        );
        assert!(matches!(
            barcode("3.65275E+11"),
            Some(BarcodeCheck::Scientific(_))
        ));
        assert!(matches!(
            barcode("4006381333932"),
            Some(BarcodeCheck::BadCheckDigit(_))
        ));
        assert!(matches!(barcode("ABC-123"), Some(BarcodeCheck::NotGtin(_))));
        assert!(matches!(barcode("12345"), Some(BarcodeCheck::NotGtin(_))));
        assert_eq!(barcode("  "), None);
    }

    #[test]
    fn a_code_valid_as_gtin8_and_upc_e_is_ambiguous() {
        // 01234565 is a valid GTIN-8 and a valid UPC-E (for 012345000065).
        assert!(Gtin::parse("01234565").is_ok());
        assert!(Gtin::from_upc_e("01234565").is_ok());
        assert!(matches!(
            barcode("01234565"),
            Some(BarcodeCheck::Ambiguous(_))
        ));
    }

    #[test]
    fn prices_are_parsed_exactly() {
        let eur = |s: &str| money(s, Currency::EUR, DecimalStyle::Auto).unwrap();
        assert_eq!(eur("£4,250.00").money.minor(), 425_000);
        assert_eq!(eur("€19.90").money.minor(), 1990);
        assert_eq!(eur("19,90 €").money.minor(), 1990);
        assert_eq!(eur("1.234,56").money.minor(), 123_456);
        assert_eq!(eur("EUR 5").money.minor(), 500);
        assert_eq!(eur("-3.10").money.minor(), -310);
        assert_eq!(eur("(3.10)").money.minor(), -310);
        assert_eq!(eur("0.1").money.minor(), 10);
        let cost = eur("12.500000000");
        assert_eq!((cost.money.minor(), cost.rounded), (1250, false));
        let cost = eur("12.345678901");
        assert_eq!((cost.money.minor(), cost.rounded), (1235, true));
        // Floats would make 0.1 + 0.2 wrong; decimals keep 0.30000000000000004 out.
        assert_eq!(eur("0.300000000000000000").money.minor(), 30);
        assert!(money("abc", Currency::EUR, DecimalStyle::Auto).is_err());
        assert!(money("1.2.3,4,5", Currency::EUR, DecimalStyle::Dot).is_err());
        assert!(money("", Currency::EUR, DecimalStyle::Auto).is_err());
        assert_eq!(
            money("1.234", Currency::EUR, DecimalStyle::Comma)
                .unwrap()
                .money
                .minor(),
            123_400
        );
    }

    #[test]
    fn booleans_and_units() {
        assert_eq!(boolean("Y").unwrap(), Some(true));
        assert_eq!(boolean("FALSE").unwrap(), Some(false));
        assert_eq!(boolean("").unwrap(), None);
        assert!(boolean("maybe").is_err());
        assert_eq!(grams_per("lbs").unwrap(), Decimal::new(45_359_237, 5));
        assert_eq!(grams_per("furlong"), None);
    }

    #[test]
    fn sku_keys_ignore_case_and_separators() {
        assert_eq!(sku_key(" srt-cot 111"), sku_key("SRT_COT_111"));
    }
}
