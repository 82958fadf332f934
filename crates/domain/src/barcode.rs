//! Barcodes scanned at the till: GTIN-8, -12, -13 and -14 validation, UPC-E and ISBN-10
//! conversion, and decoding of price- or weight-embedded restricted-circulation numbers printed
//! by in-store scales.
//!
//! Everything here works on ASCII digits with integer arithmetic only. A barcode that has been
//! through a spreadsheet (for example `3.65275E+11`) is rejected with its own error, because its
//! digits are gone and guessing them back would ring up the wrong product.

use std::fmt;
use std::str::FromStr;

/// Errors from parsing or decoding barcodes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BarcodeError {
    /// The input was empty or only whitespace.
    #[error("barcode is empty")]
    Empty,
    /// The input is a number in spreadsheet scientific notation, such as `3.65275E+11`.
    #[error(
        "barcode `{value}` is in spreadsheet scientific notation; its digits are lost and cannot \
         be recovered"
    )]
    ScientificNotation {
        /// The text as given, without surrounding whitespace.
        value: String,
    },
    /// The input contains something other than the ASCII digits 0 to 9.
    #[error("barcode `{value}` contains characters other than the digits 0 to 9")]
    NotDigits {
        /// The text as given, without surrounding whitespace.
        value: String,
    },
    /// The input has a number of digits that no GTIN has.
    #[error("barcode `{value}` has {len} digits, expected 8, 12, 13 or 14")]
    Length {
        /// The digits as given.
        value: String,
        /// How many digits there are.
        len: usize,
    },
    /// The final GS1 mod-10 check digit does not match the other digits.
    #[error("barcode `{value}` has check digit {found}, expected {expected}")]
    CheckDigit {
        /// The digits as given.
        value: String,
        /// The check digit computed from the other digits.
        expected: u8,
        /// The check digit found in the barcode.
        found: u8,
    },
    /// A UPC-E code has the wrong shape.
    #[error("invalid UPC-E barcode `{value}`: {reason}")]
    UpcE {
        /// The text as given, without surrounding whitespace.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An ISBN-10 has the wrong shape or a wrong mod-11 check digit.
    #[error("invalid ISBN-10 `{value}`: {reason}")]
    Isbn {
        /// The text as given, without surrounding whitespace.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A restricted-circulation layout configuration is unusable.
    #[error("invalid restricted-circulation layout: {reason}")]
    Layout {
        /// Which field is wrong and why.
        reason: String,
    },
    /// The price (or weight) check digit inside a restricted-circulation number does not match
    /// the embedded value.
    #[error("barcode `{value}` has price/weight check digit {found}, expected {expected}")]
    PriceCheckDigit {
        /// The barcode digits as given.
        value: String,
        /// The check digit computed from the embedded value.
        expected: u8,
        /// The check digit found in the barcode.
        found: u8,
    },
}

/// The longest GTIN, GTIN-14.
const MAX_GTIN_LEN: usize = 14;

/// The first digit position after the two-digit prefix of a GTIN-13.
const RCN_BODY_START: usize = 2;

/// The position of the final check digit of a GTIN-13, which layouts must not use.
const RCN_BODY_END: usize = 12;

/// A validated GTIN-8, -12, -13 or -14; keeps its original length.
///
/// The digits are stored as given, so a UPC-A stays 12 digits and prints the way it is printed
/// on the pack. Use [`Gtin::to_gtin14`] as the key when codes of different lengths must compare
/// equal (a UPC-A and the same code with a leading zero as EAN-13).
///
/// Ordering is lexicographic over the digits as given, so it groups codes by prefix; it is not
/// numeric order across lengths.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gtin {
    // Invariant: the first `len` bytes are ASCII digits whose last digit is the correct check
    // digit, `len` is 8, 12, 13 or 14, and the remaining bytes are zero so that the derived
    // comparisons only see the digits.
    digits: [u8; MAX_GTIN_LEN],
    len: u8,
}

impl Gtin {
    /// Parses a GTIN-8, -12 (UPC-A), -13 (EAN-13) or -14 and validates its check digit.
    ///
    /// Surrounding ASCII whitespace is ignored, since scanners and CSV exports often add a
    /// newline or padding. Spreadsheet scientific notation such as `3.65275E+11` is recognised
    /// before anything else, so the error tells the user to fix the export rather than merely
    /// saying the value contains letters.
    ///
    /// Eight digits are read as a GTIN-8; an eight-digit UPC-E must go through
    /// [`Gtin::from_upc_e`] instead, because the two cannot be told apart by their digits.
    ///
    /// # Errors
    ///
    /// In the order checked: [`BarcodeError::Empty`], [`BarcodeError::ScientificNotation`],
    /// [`BarcodeError::NotDigits`], [`BarcodeError::Length`] and [`BarcodeError::CheckDigit`].
    pub fn parse(input: &str) -> Result<Gtin, BarcodeError> {
        let value = input.trim_ascii();
        if value.is_empty() {
            return Err(BarcodeError::Empty);
        }
        if looks_like_scientific_notation(value) {
            return Err(BarcodeError::ScientificNotation {
                value: value.to_owned(),
            });
        }
        let bytes = value.as_bytes();
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err(BarcodeError::NotDigits {
                value: value.to_owned(),
            });
        }
        if !matches!(bytes.len(), 8 | 12 | 13 | 14) {
            return Err(BarcodeError::Length {
                value: value.to_owned(),
                len: bytes.len(),
            });
        }
        let Some((&last, payload)) = bytes.split_last() else {
            return Err(BarcodeError::Empty);
        };
        let expected = mod10_check_digit(payload);
        let found = last.wrapping_sub(b'0');
        if expected != found {
            return Err(BarcodeError::CheckDigit {
                value: value.to_owned(),
                expected,
                found,
            });
        }
        Ok(Gtin::from_checked_digits(bytes))
    }

    /// Expands a UPC-E code to the UPC-A (GTIN-12) it abbreviates.
    ///
    /// Accepts eight digits (number system 0 or 1, six body digits, check digit) or just the six
    /// body digits, in which case number system 0 is assumed and the check digit is computed.
    /// The last body digit selects where the zeros that UPC-E suppresses are put back (GS1
    /// General Specifications, UPC-E zero suppression):
    ///
    /// - 0, 1 or 2: `N d1 d2 d6 0 0 0 0 d3 d4 d5`
    /// - 3: `N d1 d2 d3 0 0 0 0 0 d4 d5`
    /// - 4: `N d1 d2 d3 d4 0 0 0 0 0 d5`
    /// - 5 to 9: `N d1 d2 d3 d4 d5 0 0 0 0 d6`
    ///
    /// The check digit of a UPC-E is that of the expanded UPC-A, so it is validated after
    /// expansion. Codes that an encoder would not have produced (for example last digit 3 with
    /// d3 below 3) are still expanded, as barcode readers do, because the result is a
    /// well-defined UPC-A.
    ///
    /// # Errors
    ///
    /// [`BarcodeError::Empty`], [`BarcodeError::NotDigits`], [`BarcodeError::UpcE`] for a wrong
    /// length or number system, and [`BarcodeError::CheckDigit`] when the given check digit
    /// does not match the expanded UPC-A.
    pub fn from_upc_e(input: &str) -> Result<Gtin, BarcodeError> {
        let value = input.trim_ascii();
        if value.is_empty() {
            return Err(BarcodeError::Empty);
        }
        let bytes = value.as_bytes();
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err(BarcodeError::NotDigits {
                value: value.to_owned(),
            });
        }
        let (number_system, body, given_check) = match *bytes {
            [d1, d2, d3, d4, d5, d6] => (b'0', [d1, d2, d3, d4, d5, d6], None),
            [ns, d1, d2, d3, d4, d5, d6, check] => {
                (ns, [d1, d2, d3, d4, d5, d6], Some(check.wrapping_sub(b'0')))
            }
            _ => {
                return Err(BarcodeError::UpcE {
                    value: value.to_owned(),
                    reason: "expected 6 digits, or 8 digits with number system and check digit",
                });
            }
        };
        if !matches!(number_system, b'0' | b'1') {
            return Err(BarcodeError::UpcE {
                value: value.to_owned(),
                reason: "number system digit must be 0 or 1",
            });
        }
        let payload = expand_upc_e(number_system, body);
        let expected = mod10_check_digit(&payload);
        if let Some(found) = given_check {
            if found != expected {
                return Err(BarcodeError::CheckDigit {
                    value: value.to_owned(),
                    expected,
                    found,
                });
            }
        }
        let mut upc_a = [0_u8; 12];
        for (slot, &digit) in upc_a.iter_mut().zip(payload.iter()) {
            *slot = digit;
        }
        if let Some(slot) = upc_a.last_mut() {
            *slot = b'0' + expected;
        }
        Ok(Gtin::from_checked_digits(&upc_a))
    }

    /// Converts an ISBN-10 to the `978`-prefixed GTIN-13 printed as the book's barcode.
    ///
    /// Hyphens and spaces between the digits are ignored, and the final character may be `X`
    /// (or `x`), which stands for a check value of 10. The ISBN-10 mod-11 check digit is
    /// validated before conversion so that a mistyped ISBN is not turned into a different,
    /// valid-looking GTIN; the GTIN-13 then gets its own GS1 mod-10 check digit.
    ///
    /// # Errors
    ///
    /// [`BarcodeError::Empty`], or [`BarcodeError::Isbn`] for stray characters, a wrong number
    /// of digits, a misplaced `X` or a wrong check digit (the reason says what it should be).
    pub fn from_isbn10(input: &str) -> Result<Gtin, BarcodeError> {
        let value = input.trim_ascii();
        if value.is_empty() {
            return Err(BarcodeError::Empty);
        }
        let isbn_error = |reason: &'static str| BarcodeError::Isbn {
            value: value.to_owned(),
            reason,
        };
        let wrong_length = "expected 10 digits, the last of which may be X";
        let mut chars = [0_u8; 10];
        let mut count = 0_usize;
        for byte in value.bytes() {
            match byte {
                b'-' | b' ' => {}
                b'0'..=b'9' | b'X' | b'x' => {
                    let slot = chars
                        .get_mut(count)
                        .ok_or_else(|| isbn_error(wrong_length))?;
                    *slot = byte;
                    count += 1;
                }
                _ => {
                    return Err(isbn_error(
                        "only digits, hyphens, spaces and a final X are allowed",
                    ));
                }
            }
        }
        if count != chars.len() {
            return Err(isbn_error(wrong_length));
        }
        let [body @ .., check] = chars;
        if !body.iter().all(u8::is_ascii_digit) {
            return Err(isbn_error("X is only allowed as the final check digit"));
        }
        // The weighted sum of all ten digits (weights 10 down to 1) must be a multiple of 11,
        // so the check value is whatever brings the first nine digits' sum up to one.
        let sum: u32 = body
            .iter()
            .zip((2..=10_u32).rev())
            .map(|(&digit, weight)| u32::from(digit.wrapping_sub(b'0')) * weight)
            .sum();
        let expected = (11 - sum % 11) % 11;
        let found = match check {
            b'X' | b'x' => 10,
            digit => u32::from(digit.wrapping_sub(b'0')),
        };
        if expected != found {
            let reason = usize::try_from(expected)
                .ok()
                .and_then(|index| ISBN_CHECK_REASONS.get(index))
                .copied()
                .unwrap_or("wrong check digit");
            return Err(isbn_error(reason));
        }
        let mut gtin = [0_u8; 13];
        for (slot, &digit) in gtin.iter_mut().zip(b"978".iter().chain(body.iter())) {
            *slot = digit;
        }
        let check = gtin.get(..12).map(mod10_check_digit).unwrap_or_default();
        if let Some(slot) = gtin.last_mut() {
            *slot = b'0' + check;
        }
        Ok(Gtin::from_checked_digits(&gtin))
    }

    /// Builds a GTIN from digits whose length and check digit the caller has validated.
    fn from_checked_digits(bytes: &[u8]) -> Gtin {
        let mut digits = [0_u8; MAX_GTIN_LEN];
        for (slot, &byte) in digits.iter_mut().zip(bytes) {
            *slot = byte;
        }
        let len = u8::try_from(bytes.len().min(MAX_GTIN_LEN)).unwrap_or(0);
        Gtin { digits, len }
    }

    /// The number of digits as given: 8, 12, 13 or 14.
    #[expect(
        clippy::len_without_is_empty,
        reason = "a GTIN always has at least 8 digits, so an is_empty method would be meaningless"
    )]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// The digits as given, at their original length.
    pub fn as_str(&self) -> &str {
        // The bytes are ASCII digits by construction, so neither fallback is ever taken.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    fn as_bytes(&self) -> &[u8] {
        self.digits.get(..self.len()).unwrap_or(&[])
    }

    /// The digits left-padded with zeros to 14, without allocating.
    fn padded14(&self) -> [u8; MAX_GTIN_LEN] {
        let mut out = [b'0'; MAX_GTIN_LEN];
        let bytes = self.as_bytes();
        let offset = MAX_GTIN_LEN.saturating_sub(bytes.len());
        for (slot, &byte) in out.iter_mut().skip(offset).zip(bytes) {
            *slot = byte;
        }
        out
    }

    /// The GTIN-13 form, if the GTIN-14 form starts with indicator digit 0.
    fn gtin13_bytes(&self) -> Option<[u8; 13]> {
        match self.padded14() {
            [b'0', rest @ ..] => Some(rest),
            _ => None,
        }
    }

    /// The 14-digit form, left-padded with zeros: the canonical key for storing and comparing
    /// GTINs of different lengths.
    pub fn to_gtin14(&self) -> String {
        self.padded14()
            .iter()
            .map(|&byte| char::from(byte))
            .collect()
    }

    /// The 13-digit form, or `None` for a GTIN-14 whose indicator digit is not 0 (a case or
    /// pallet code that has no EAN-13 equivalent).
    pub fn to_gtin13(&self) -> Option<String> {
        self.gtin13_bytes()
            .map(|bytes| bytes.iter().map(|&byte| char::from(byte)).collect())
    }

    /// Whether this is a restricted-circulation number: a code assigned by a store, a company
    /// or a country's GS1 organisation for local use (typically weighed or price-labelled
    /// goods), which must not be looked up as a globally unique product.
    ///
    /// The rule implemented:
    ///
    /// - A code given as 8 digits is an RCN-8 when it starts with 0 or 2 (GS1-8 prefixes 0 and
    ///   2).
    /// - Any other code is an RCN when its GTIN-13 form starts with GS1 prefix 02 or 20 to 29.
    ///   A UPC-A starting with 2 therefore counts, since its GTIN-13 form starts with 02.
    /// - A GTIN-14 with a non-zero indicator digit has no GTIN-13 form and never counts.
    ///
    /// GS1 prefixes 040 to 049 (numbers restricted to one company) are not included: this check
    /// covers the regional and store-level ranges that scales and price labels use.
    pub fn is_restricted_circulation(&self) -> bool {
        if self.len() == 8 {
            return matches!(self.as_bytes().first(), Some(b'0' | b'2'));
        }
        match self.gtin13_bytes() {
            Some(gtin13) => is_rcn_prefix_bytes(gtin13.get(..2).unwrap_or(&[])),
            None => false,
        }
    }
}

impl fmt::Debug for Gtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gtin({})", self.as_str())
    }
}

impl fmt::Display for Gtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` rather than `write_str` so that width and alignment flags work on receipts.
        f.pad(self.as_str())
    }
}

impl FromStr for Gtin {
    type Err = BarcodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Gtin::parse(s)
    }
}

/// The reasons for a wrong ISBN-10 check digit, indexed by the expected check value, so the
/// error can say what the digit should be while keeping a `&'static str` reason.
const ISBN_CHECK_REASONS: [&str; 11] = [
    "check digit should be 0",
    "check digit should be 1",
    "check digit should be 2",
    "check digit should be 3",
    "check digit should be 4",
    "check digit should be 5",
    "check digit should be 6",
    "check digit should be 7",
    "check digit should be 8",
    "check digit should be 9",
    "check digit should be X",
];

/// Puts back the zeros that UPC-E suppresses, giving the 11 UPC-A digits before the check
/// digit. `number_system` and `body` are ASCII digits.
fn expand_upc_e(number_system: u8, body: [u8; 6]) -> [u8; 11] {
    let z = b'0';
    let [d1, d2, d3, d4, d5, d6] = body;
    match d6 {
        b'0'..=b'2' => [number_system, d1, d2, d6, z, z, z, z, d3, d4, d5],
        b'3' => [number_system, d1, d2, d3, z, z, z, z, z, d4, d5],
        b'4' => [number_system, d1, d2, d3, d4, z, z, z, z, z, d5],
        _ => [number_system, d1, d2, d3, d4, d5, z, z, z, z, d6],
    }
}

/// Whether `text` looks like a number a spreadsheet has reformatted, such as `3.65275E+11`,
/// `3,65275E+11` (a comma decimal separator) or `3.65275e11`.
fn looks_like_scientific_notation(text: &str) -> bool {
    let Some((mantissa, exponent)) = text.split_once(['e', 'E']) else {
        return false;
    };
    let mantissa = mantissa.strip_prefix(['+', '-']).unwrap_or(mantissa);
    let (whole, fraction) = mantissa.split_once(['.', ',']).unwrap_or((mantissa, ""));
    let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    !whole.is_empty()
        && digits(whole)
        && digits(fraction)
        && !exponent.is_empty()
        && digits(exponent)
}

/// The GS1 mod-10 check digit of ASCII digits: weights 3 and 1 alternate from the rightmost
/// digit leftwards, and the check digit tops the weighted sum up to a multiple of ten.
fn mod10_check_digit(ascii_digits: &[u8]) -> u8 {
    let mut sum = 0_u8;
    for (position, &byte) in ascii_digits.iter().rev().enumerate() {
        // Reducing modulo 10 keeps a stray non-digit from overflowing; callers pass digits.
        let digit = byte.wrapping_sub(b'0') % 10;
        let weight = if position % 2 == 0 { 3 } else { 1 };
        sum = (sum + digit * weight) % 10;
    }
    (10 - sum) % 10
}

/// The GS1 mod-10 check digit for a digit string without its check digit (payload of 7, 11, 12
/// or 13 digits), or `None` if the payload contains anything but ASCII digits.
///
/// The algorithm is the same for every length, so other lengths are accepted too; an empty
/// payload has no check digit and also gives `None`.
pub fn gtin_check_digit(payload: &str) -> Option<u8> {
    let bytes = payload.as_bytes();
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(mod10_check_digit(bytes))
}

// Weighting-factor products of the GS1 price/weight check digit (GS1 General Specifications,
// section 7.9), indexed by digit. "2-" doubles the digit and subtracts the tens digit of the
// product from its units digit; "3" keeps the units digit of the tripled digit; "5+" and "5-"
// multiply by five and add or subtract the tens digit. All results are taken modulo 10.
const WEIGHT_TWO_MINUS: [u8; 10] = [0, 2, 4, 6, 8, 9, 1, 3, 5, 7];
const WEIGHT_THREE: [u8; 10] = [0, 3, 6, 9, 2, 5, 8, 1, 4, 7];
const WEIGHT_FIVE_PLUS: [u8; 10] = [0, 5, 1, 6, 2, 7, 3, 8, 4, 9];
const WEIGHT_FIVE_MINUS: [u8; 10] = [0, 5, 9, 4, 8, 3, 7, 2, 6, 1];

/// The GS1 check digit for a 4- or 5-digit price or weight embedded in a restricted-circulation
/// number, or `None` if `value` is not 4 or 5 ASCII digits.
///
/// Four digits use weighting factors 2-, 2-, 3, 5-: the products are summed, the sum is
/// multiplied by 3 and the units digit is the check digit (`2875` gives 9). Five digits use
/// 5+, 2-, 5-, 5+, 2-: the sum is subtracted from the next multiple of ten and the check digit
/// is the digit whose 5- product equals that difference (`14685` gives 6).
pub fn price_check_digit(value: &str) -> Option<u8> {
    let bytes = value.as_bytes();
    if !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let weights: &[&[u8; 10]] = match bytes.len() {
        4 => &[
            &WEIGHT_TWO_MINUS,
            &WEIGHT_TWO_MINUS,
            &WEIGHT_THREE,
            &WEIGHT_FIVE_MINUS,
        ],
        5 => &[
            &WEIGHT_FIVE_PLUS,
            &WEIGHT_TWO_MINUS,
            &WEIGHT_FIVE_MINUS,
            &WEIGHT_FIVE_PLUS,
            &WEIGHT_TWO_MINUS,
        ],
        _ => return None,
    };
    let mut sum = 0_u8;
    for (&byte, table) in bytes.iter().zip(weights) {
        let product = table.get(usize::from(byte.wrapping_sub(b'0')))?;
        sum = (sum + product) % 10;
    }
    if bytes.len() == 4 {
        return Some(sum * 3 % 10);
    }
    let target = (10 - sum) % 10;
    WEIGHT_FIVE_MINUS
        .iter()
        .position(|&product| product == target)
        .and_then(|digit| u8::try_from(digit).ok())
}

/// Whether two ASCII bytes are a GS1 prefix for variable-measure restricted-circulation
/// numbers: 02 or 20 to 29.
fn is_rcn_prefix_bytes(prefix: &[u8]) -> bool {
    matches!(prefix, [b'0', b'2'] | [b'2', b'0'..=b'9'])
}

/// What a restricted-circulation number carries in its value digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmbeddedKind {
    /// A price in minor currency units (cents, øre…); the currency is the store's.
    Price,
    /// A weight in grams (thousandths of a kilogram).
    Weight,
}

/// How a store's scales and price labels lay out restricted-circulation numbers (configured per
/// store).
///
/// Positions are 0-based indices into the 13-digit GTIN-13 form, so a UPC-A `2 IIIII C PPPP C`
/// label is described with prefix `02`, item reference at 2 (5 digits), price check digit at 7
/// and a 4-digit value at 8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcnLayout {
    prefixes: Vec<String>,
    item_start: usize,
    item_len: usize,
    value_start: usize,
    value_len: usize,
    kind: EmbeddedKind,
    price_check_digit_at: Option<usize>,
}

impl RcnLayout {
    /// Validates and builds a layout.
    ///
    /// - `prefixes` are two-digit strings, each `02` or `20` to `29`, and there is at least one.
    /// - The item reference (`item_start`, `item_len`) and the value (`value_start`,
    ///   `value_len`) lie inside digits 2..12, that is after the prefix and before the final
    ///   check digit at 12, and do not overlap.
    /// - `item_len` is 1 to 6 and `value_len` is 4 to 6.
    /// - `price_check_digit_at`, when set, is inside 2..12 and overlaps neither range, and the
    ///   value then has 4 or 5 digits, since GS1 defines the price check digit only for those
    ///   lengths. It is used for weights as well as prices, as GS1 does.
    ///
    /// Digits that belong to no range are allowed, because some national layouts have filler
    /// digits.
    ///
    /// # Errors
    ///
    /// [`BarcodeError::Layout`] naming the first offending field and its value.
    pub fn new(
        prefixes: Vec<String>,
        item_start: usize,
        item_len: usize,
        value_start: usize,
        value_len: usize,
        kind: EmbeddedKind,
        price_check_digit_at: Option<usize>,
    ) -> Result<Self, BarcodeError> {
        let layout_error = |reason: String| Err(BarcodeError::Layout { reason });
        if prefixes.is_empty() {
            return layout_error("prefixes is empty; give at least one of 02 and 20 to 29".into());
        }
        if let Some(bad) = prefixes.iter().find(|p| !is_rcn_prefix_bytes(p.as_bytes())) {
            return layout_error(format!(
                "prefix `{bad}` is not a restricted-circulation prefix; expected 02 or 20 to 29"
            ));
        }
        if !(1..=6).contains(&item_len) {
            return layout_error(format!("item_len {item_len} is outside 1 to 6"));
        }
        if !(4..=6).contains(&value_len) {
            return layout_error(format!("value_len {value_len} is outside 4 to 6"));
        }
        let item = body_range("item_start", item_start, item_len).map_err(layout_reason)?;
        let value = body_range("value_start", value_start, value_len).map_err(layout_reason)?;
        if item.start < value.end && value.start < item.end {
            return layout_error(format!(
                "item reference digits {}..{} overlap value digits {}..{}",
                item.start, item.end, value.start, value.end
            ));
        }
        if let Some(at) = price_check_digit_at {
            if !(RCN_BODY_START..RCN_BODY_END).contains(&at) {
                return layout_error(format!(
                    "price_check_digit_at {at} is not inside digits 2..12, between the prefix \
                     and the check digit"
                ));
            }
            if item.contains(&at) {
                return layout_error(format!(
                    "price_check_digit_at {at} overlaps item reference digits {}..{}",
                    item.start, item.end
                ));
            }
            if value.contains(&at) {
                return layout_error(format!(
                    "price_check_digit_at {at} overlaps value digits {}..{}",
                    value.start, value.end
                ));
            }
            if !matches!(value_len, 4 | 5) {
                return layout_error(format!(
                    "price_check_digit_at is set but value_len is {value_len}; the GS1 price \
                     check digit is defined only for 4 or 5 digits"
                ));
            }
        }
        Ok(RcnLayout {
            prefixes,
            item_start,
            item_len,
            value_start,
            value_len,
            kind,
            price_check_digit_at,
        })
    }

    /// The common European layout "2P IIIII VVVVV C" (prefix, 5-digit item, 5-digit value,
    /// check): prefixes given, item 2..7, value 7..12.
    ///
    /// This constructor cannot fail, so prefixes other than 02 and 20 to 29 are left out; a
    /// layout left with no prefixes decodes nothing.
    pub fn ean13_item5_value5(prefixes: &[&str], kind: EmbeddedKind) -> Self {
        RcnLayout {
            prefixes: prefixes
                .iter()
                .filter(|p| is_rcn_prefix_bytes(p.as_bytes()))
                .map(|p| (*p).to_owned())
                .collect(),
            item_start: 2,
            item_len: 5,
            value_start: 7,
            value_len: 5,
            kind,
            price_check_digit_at: None,
        }
    }

    /// The two-digit prefixes this layout applies to.
    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }

    /// Whether the value digits are a price or a weight.
    pub fn kind(&self) -> EmbeddedKind {
        self.kind
    }

    /// Decodes a GTIN if its prefix is one of this layout's, giving `Ok(None)` otherwise.
    ///
    /// The GTIN's own check digit was validated when it was parsed. The price check digit is
    /// the GS1 4- or 5-digit algorithm described at [`price_check_digit`]. A GTIN-8, or a
    /// GTIN-14 with a non-zero indicator, never matches, because its GTIN-13 form (if any)
    /// starts with 00.
    ///
    /// # Errors
    ///
    /// [`BarcodeError::PriceCheckDigit`] when a configured price check digit does not match
    /// the embedded value.
    pub fn decode(&self, gtin: &Gtin) -> Result<Option<ScaleLabel>, BarcodeError> {
        let Some(gtin13) = gtin.gtin13_bytes() else {
            return Ok(None);
        };
        let Some(prefix_digits) = gtin13.get(..2) else {
            return Ok(None);
        };
        let Some(prefix) = self.prefixes.iter().find(|p| p.as_bytes() == prefix_digits) else {
            return Ok(None);
        };
        // The layout was validated to lie inside the 13 digits, so these lookups only fail if
        // that invariant is broken; report it instead of panicking or guessing.
        let outside = || BarcodeError::Layout {
            reason: format!("layout digits lie outside barcode `{gtin}`"),
        };
        let item = digits_at(&gtin13, self.item_start, self.item_len).ok_or_else(outside)?;
        let value_digits =
            digits_at(&gtin13, self.value_start, self.value_len).ok_or_else(outside)?;
        if let Some(at) = self.price_check_digit_at {
            let found = gtin13.get(at).ok_or_else(outside)?.wrapping_sub(b'0');
            let expected = std::str::from_utf8(value_digits)
                .ok()
                .and_then(price_check_digit)
                .ok_or_else(outside)?;
            if found != expected {
                return Err(BarcodeError::PriceCheckDigit {
                    value: gtin.as_str().to_owned(),
                    expected,
                    found,
                });
            }
        }
        // At most six digits, so the number stays far below i64::MAX.
        let number = value_digits.iter().fold(0_i64, |acc, &byte| {
            acc * 10 + i64::from(byte.wrapping_sub(b'0'))
        });
        let value = match self.kind {
            EmbeddedKind::Price => EmbeddedValue::Price { minor: number },
            EmbeddedKind::Weight => EmbeddedValue::Weight { grams: number },
        };
        Ok(Some(ScaleLabel {
            prefix: prefix.clone(),
            item_ref: item.iter().map(|&byte| char::from(byte)).collect(),
            value,
        }))
    }
}

/// Checks that `len` digits from `start` lie between the prefix and the check digit of a
/// GTIN-13, returning the range or the reason it does not.
fn body_range(field: &str, start: usize, len: usize) -> Result<std::ops::Range<usize>, String> {
    match start.checked_add(len) {
        Some(end) if start >= RCN_BODY_START && end <= RCN_BODY_END => Ok(start..end),
        _ => Err(format!(
            "{field} {start} with length {len} does not fit inside digits 2..12, between the \
             prefix and the check digit"
        )),
    }
}

fn layout_reason(reason: String) -> BarcodeError {
    BarcodeError::Layout { reason }
}

/// The `len` bytes from `start`, or `None` if they run past the end.
fn digits_at(bytes: &[u8], start: usize, len: usize) -> Option<&[u8]> {
    bytes.get(start..start.checked_add(len)?)
}

/// A decoded restricted-circulation label from a scale or price-labelling machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleLabel {
    /// The two-digit GS1 prefix of the GTIN-13 form, such as `20` or `02`.
    pub prefix: String,
    /// The store's item reference digits, as printed (leading zeros kept).
    pub item_ref: String,
    /// The embedded price or weight.
    pub value: EmbeddedValue,
}

/// The price or weight embedded in a restricted-circulation number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddedValue {
    /// A price in minor units of the store's currency.
    Price {
        /// The amount in minor units (cents, øre…).
        minor: i64,
    },
    /// A weight.
    Weight {
        /// The weight in grams.
        grams: i64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn layout_err(result: Result<RcnLayout, BarcodeError>) -> String {
        match result {
            Err(BarcodeError::Layout { reason }) => reason,
            other => panic!("expected a layout error, got {other:?}"),
        }
    }

    #[test]
    fn valid_gtins_of_every_length() {
        let cases = [
            ("96385074", 8),
            ("73513537", 8),
            ("00011112", 8),
            ("036000291452", 12),
            ("012345678905", 12),
            ("042100005264", 12),
            ("4006381333931", 13),
            ("5901234123457", 13),
            ("9780306406157", 13),
            ("10614141000415", 14),
            ("00012345678905", 14),
        ];
        for (input, len) in cases {
            let gtin = Gtin::parse(input).unwrap();
            assert_eq!(gtin.len(), len, "{input}");
            assert_eq!(gtin.as_str(), input);
            assert_eq!(gtin.to_string(), input);
            assert_eq!(input.parse::<Gtin>().unwrap(), gtin);
        }
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        let gtin = Gtin::parse(" \t4006381333931\r\n").unwrap();
        assert_eq!(gtin.as_str(), "4006381333931");
    }

    #[test]
    fn bad_check_digits_say_expected_and_found() {
        let cases = [
            ("96385075", 4, 5),
            ("036000291453", 2, 3),
            ("4006381333932", 1, 2),
            ("10614141000416", 5, 6),
        ];
        for (input, expected, found) in cases {
            assert_eq!(
                Gtin::parse(input),
                Err(BarcodeError::CheckDigit {
                    value: input.to_owned(),
                    expected,
                    found
                })
            );
        }
        let err = Gtin::parse("4006381333932").unwrap_err();
        assert_eq!(
            err.to_string(),
            "barcode `4006381333932` has check digit 2, expected 1"
        );
    }

    #[test]
    fn empty_input() {
        for input in ["", "   ", "\t\n"] {
            assert_eq!(Gtin::parse(input), Err(BarcodeError::Empty));
        }
        assert_eq!(BarcodeError::Empty.to_string(), "barcode is empty");
    }

    #[test]
    fn non_digits_are_rejected() {
        for input in [
            "40063813339A1",
            "4006381-333931",
            "4006381 333931",
            "12.5",
            "1e",
            "E12",
            "٣٣٣٣٣٣٣٣",
            "４００６３８１３３３９３１",
        ] {
            assert_eq!(
                Gtin::parse(input),
                Err(BarcodeError::NotDigits {
                    value: input.to_owned()
                }),
                "{input}"
            );
        }
        assert_eq!(
            Gtin::parse("12A4").unwrap_err().to_string(),
            "barcode `12A4` contains characters other than the digits 0 to 9"
        );
    }

    #[test]
    fn wrong_lengths_are_rejected() {
        for input in [
            "1",
            "1234567",
            "123456789",
            "12345678901",
            "123456789012345",
        ] {
            assert_eq!(
                Gtin::parse(input),
                Err(BarcodeError::Length {
                    value: input.to_owned(),
                    len: input.len()
                })
            );
        }
        assert_eq!(
            Gtin::parse("1234567").unwrap_err().to_string(),
            "barcode `1234567` has 7 digits, expected 8, 12, 13 or 14"
        );
    }

    #[test]
    fn scientific_notation_is_detected_before_non_digits() {
        for input in [
            "3.65275E+11",
            "8.71E+12",
            "3,65275E+11",
            "3.65275e11",
            "4E+12",
            "1.23E-05",
            "  8.71E+12  ",
        ] {
            assert_eq!(
                Gtin::parse(input),
                Err(BarcodeError::ScientificNotation {
                    value: input.trim().to_owned()
                }),
                "{input}"
            );
        }
        assert_eq!(
            Gtin::parse("3.65275E+11").unwrap_err().to_string(),
            "barcode `3.65275E+11` is in spreadsheet scientific notation; its digits are lost \
             and cannot be recovered"
        );
    }

    #[test]
    fn gtin14_and_gtin13_forms() {
        let gtin8 = Gtin::parse("96385074").unwrap();
        assert_eq!(gtin8.to_gtin14(), "00000096385074");
        assert_eq!(gtin8.to_gtin13().as_deref(), Some("0000096385074"));

        let upc_a = Gtin::parse("036000291452").unwrap();
        assert_eq!(upc_a.to_gtin14(), "00036000291452");
        assert_eq!(upc_a.to_gtin13().as_deref(), Some("0036000291452"));

        let ean13 = Gtin::parse("4006381333931").unwrap();
        assert_eq!(ean13.to_gtin14(), "04006381333931");
        assert_eq!(ean13.to_gtin13().as_deref(), Some("4006381333931"));

        let case = Gtin::parse("10614141000415").unwrap();
        assert_eq!(case.to_gtin14(), "10614141000415");
        assert_eq!(case.to_gtin13(), None);

        let padded = Gtin::parse("00012345678905").unwrap();
        assert_eq!(padded.to_gtin13().as_deref(), Some("0012345678905"));
        // The original length is kept, so the two spellings differ until normalised.
        let short = Gtin::parse("012345678905").unwrap();
        assert_ne!(padded, short);
        assert_eq!(padded.to_gtin14(), short.to_gtin14());
    }

    #[test]
    fn debug_and_display_show_the_digits() {
        let gtin = Gtin::parse("96385074").unwrap();
        assert_eq!(format!("{gtin:?}"), "Gtin(96385074)");
        assert_eq!(format!("{gtin:>10}"), "  96385074");
    }

    #[test]
    fn gtin_check_digit_vectors() {
        assert_eq!(gtin_check_digit("400638133393"), Some(1));
        assert_eq!(gtin_check_digit("03600029145"), Some(2));
        assert_eq!(gtin_check_digit("9638507"), Some(4));
        assert_eq!(gtin_check_digit("1061414100041"), Some(5));
        assert_eq!(gtin_check_digit("9501234"), Some(6));
        assert_eq!(gtin_check_digit("950110153100"), Some(0));
        assert_eq!(gtin_check_digit(""), None);
        assert_eq!(gtin_check_digit("12a4"), None);
        assert_eq!(gtin_check_digit("12 4"), None);
    }

    #[test]
    fn restricted_circulation_rule() {
        let cases = [
            // RCN-8: GS1-8 prefixes 0 and 2.
            ("00011112", true),
            ("96385074", false),
            // UPC-A number system 2 is GS1 prefix 02 in the GTIN-13 form.
            ("201111111115", true),
            ("212345928752", true),
            ("036000291452", false),
            // GTIN-13 prefixes 20 to 29.
            ("2001111111119", true),
            ("2991111111113", true),
            ("2011122912346", true),
            ("4006381333931", false),
            ("9780306406157", false),
            // GTIN-14: only with indicator 0.
            ("02011122912346", true),
            ("10614141000415", false),
        ];
        for (input, expected) in cases {
            let gtin = Gtin::parse(input).unwrap();
            assert_eq!(gtin.is_restricted_circulation(), expected, "{input}");
        }
        // A case of restricted-circulation items (indicator 1) is not itself an RCN.
        let payload = "1201112291234";
        let check = gtin_check_digit(payload).unwrap();
        let case_of_rcn = Gtin::parse(&format!("{payload}{check}")).unwrap();
        assert!(!case_of_rcn.is_restricted_circulation());
    }

    #[test]
    fn upc_e_expansions() {
        // The first five are published examples (biip's test suite); the rest were computed
        // by hand from the expansion rules and the mod-10 check digit.
        let cases = [
            ("04252614", "042100005264"), // last digit 1
            ("06397126", "063200009716"), // last digit 2
            ("08679339", "086700000939"), // last digit 3
            ("02345147", "023450000017"), // last digit 4
            ("02345673", "023456000073"), // last digit 7
            ("01234505", "012000003455"), // last digit 0
            ("01234565", "012345000065"), // last digit 5
            ("14252611", "142100005261"), // number system 1
            ("425261", "042100005264"),   // six-digit body, number system 0 assumed
            (" 04252614 ", "042100005264"),
        ];
        for (input, upc_a) in cases {
            let gtin = Gtin::from_upc_e(input).unwrap();
            assert_eq!(gtin.as_str(), upc_a, "{input}");
            assert_eq!(gtin.len(), 12);
            assert_eq!(Gtin::parse(upc_a).unwrap(), gtin);
        }
    }

    #[test]
    fn upc_e_errors() {
        assert_eq!(
            Gtin::from_upc_e("04252615"),
            Err(BarcodeError::CheckDigit {
                value: "04252615".into(),
                expected: 4,
                found: 5
            })
        );
        assert_eq!(
            Gtin::from_upc_e("24252614"),
            Err(BarcodeError::UpcE {
                value: "24252614".into(),
                reason: "number system digit must be 0 or 1"
            })
        );
        for input in ["0425261", "42526", "042526141", "042100005264"] {
            assert!(
                matches!(Gtin::from_upc_e(input), Err(BarcodeError::UpcE { .. })),
                "{input}"
            );
        }
        assert_eq!(
            Gtin::from_upc_e("04252a14"),
            Err(BarcodeError::NotDigits {
                value: "04252a14".into()
            })
        );
        assert_eq!(Gtin::from_upc_e(" "), Err(BarcodeError::Empty));
        assert_eq!(
            Gtin::from_upc_e("24252614").unwrap_err().to_string(),
            "invalid UPC-E barcode `24252614`: number system digit must be 0 or 1"
        );
    }

    #[test]
    fn isbn10_to_gtin13() {
        let cases = [
            ("0-306-40615-2", "9780306406157"),
            ("0306406152", "9780306406157"),
            ("0 306 40615 2", "9780306406157"),
            ("0-8044-2957-X", "9780804429573"),
            ("080442957x", "9780804429573"),
        ];
        for (input, gtin13) in cases {
            let gtin = Gtin::from_isbn10(input).unwrap();
            assert_eq!(gtin.as_str(), gtin13, "{input}");
            assert_eq!(Gtin::parse(gtin13).unwrap(), gtin);
        }
    }

    #[test]
    fn isbn10_errors() {
        let isbn = |value: &str, reason: &'static str| {
            Err(BarcodeError::Isbn {
                value: value.into(),
                reason,
            })
        };
        assert_eq!(
            Gtin::from_isbn10("0-306-40615-3"),
            isbn("0-306-40615-3", "check digit should be 2")
        );
        assert_eq!(
            Gtin::from_isbn10("0-8044-2957-1"),
            isbn("0-8044-2957-1", "check digit should be X")
        );
        assert_eq!(
            Gtin::from_isbn10("0-306-4061X-2"),
            isbn(
                "0-306-4061X-2",
                "X is only allowed as the final check digit"
            )
        );
        for input in ["0-306-40615", "0-306-40615-2-1", "97803064061577"] {
            assert_eq!(
                Gtin::from_isbn10(input),
                isbn(input, "expected 10 digits, the last of which may be X")
            );
        }
        assert_eq!(
            Gtin::from_isbn10("0-306/40615-2"),
            isbn(
                "0-306/40615-2",
                "only digits, hyphens, spaces and a final X are allowed"
            )
        );
        assert_eq!(Gtin::from_isbn10(""), Err(BarcodeError::Empty));
        assert_eq!(
            Gtin::from_isbn10("0-306-40615-3").unwrap_err().to_string(),
            "invalid ISBN-10 `0-306-40615-3`: check digit should be 2"
        );
    }

    #[test]
    fn weighting_tables_follow_their_definitions() {
        // Rebuild each table from the rule in the GS1 text so a typo in a constant shows up.
        for digit in 0..10_i32 {
            let index = usize::try_from(digit).unwrap();
            let two = digit * 2;
            let three = digit * 3;
            let five = digit * 5;
            let expect = |value: i32| u8::try_from(value.rem_euclid(10)).unwrap();
            assert_eq!(WEIGHT_TWO_MINUS[index], expect(two % 10 - two / 10));
            assert_eq!(WEIGHT_THREE[index], expect(three));
            assert_eq!(WEIGHT_FIVE_PLUS[index], expect(five % 10 + five / 10));
            assert_eq!(WEIGHT_FIVE_MINUS[index], expect(five % 10 - five / 10));
        }
    }

    #[test]
    fn price_check_digit_vectors() {
        // The worked examples of the GS1 General Specifications, section 7.9.
        assert_eq!(price_check_digit("2875"), Some(9));
        assert_eq!(price_check_digit("14685"), Some(6));
        // 1234: 2 + 4 + 9 + 8 = 23, times 3 is 69, so 9 (also GS1 UK's example label).
        assert_eq!(price_check_digit("1234"), Some(9));
        // 1086: 2 + 0 + 4 + 7 = 13, times 3 is 39, so 9.
        assert_eq!(price_check_digit("1086"), Some(9));
        assert_eq!(price_check_digit("0000"), Some(0));
        assert_eq!(price_check_digit("00000"), Some(0));
        assert_eq!(price_check_digit("123"), None);
        assert_eq!(price_check_digit("123456"), None);
        assert_eq!(price_check_digit("12a4"), None);
    }

    fn uk_price_layout() -> RcnLayout {
        // "20 IIIII C PPPP C": GS1 UK's price label with a price check digit.
        RcnLayout::new(vec!["20".into()], 2, 5, 8, 4, EmbeddedKind::Price, Some(7)).unwrap()
    }

    #[test]
    fn decodes_price_label_with_four_digit_price_check() {
        let gtin = Gtin::parse("2011122912346").unwrap();
        assert_eq!(
            uk_price_layout().decode(&gtin),
            Ok(Some(ScaleLabel {
                prefix: "20".into(),
                item_ref: "11122".into(),
                value: EmbeddedValue::Price { minor: 1234 },
            }))
        );
    }

    #[test]
    fn wrong_price_check_digit_is_reported() {
        // The GTIN check digit is right, but the price check digit 8 should be 9.
        let gtin = Gtin::parse("2011122812349").unwrap();
        let err = uk_price_layout().decode(&gtin).unwrap_err();
        assert_eq!(
            err,
            BarcodeError::PriceCheckDigit {
                value: "2011122812349".into(),
                expected: 9,
                found: 8
            }
        );
        assert_eq!(
            err.to_string(),
            "barcode `2011122812349` has price/weight check digit 8, expected 9"
        );
    }

    #[test]
    fn decodes_five_digit_price_with_check_digit() {
        // "28 IIII C PPPPP C" with price 146.85 and its GS1 check digit 6. GTIN check digit:
        // odd positions 2+1+3+6+4+8 = 24, even positions (8+2+4+1+6+5) * 3 = 78, 102 -> 8.
        let layout =
            RcnLayout::new(vec!["28".into()], 2, 4, 7, 5, EmbeddedKind::Price, Some(6)).unwrap();
        let gtin = Gtin::parse("2812346146858").unwrap();
        assert_eq!(
            layout.decode(&gtin),
            Ok(Some(ScaleLabel {
                prefix: "28".into(),
                item_ref: "1234".into(),
                value: EmbeddedValue::Price { minor: 14685 },
            }))
        );
        // Price check digit 5 instead of 6; GTIN check digit recomputed to 9.
        let gtin = Gtin::parse("2812345146859").unwrap();
        assert_eq!(
            layout.decode(&gtin),
            Err(BarcodeError::PriceCheckDigit {
                value: "2812345146859".into(),
                expected: 6,
                found: 5
            })
        );
    }

    #[test]
    fn decodes_upc_a_price_label() {
        // UPC-A "2 12345 9 2875 2": GTIN-13 form 0212345928752, price check digit 9 for 2875.
        let layout =
            RcnLayout::new(vec!["02".into()], 2, 5, 8, 4, EmbeddedKind::Price, Some(7)).unwrap();
        let gtin = Gtin::parse("212345928752").unwrap();
        assert_eq!(
            layout.decode(&gtin),
            Ok(Some(ScaleLabel {
                prefix: "02".into(),
                item_ref: "12345".into(),
                value: EmbeddedValue::Price { minor: 2875 },
            }))
        );
    }

    #[test]
    fn decodes_weight_labels() {
        // Swedish and Norwegian weight labels "23 IIIIII WWWW C" (real packs from biip's tests).
        let layout =
            RcnLayout::new(vec!["23".into()], 2, 6, 8, 4, EmbeddedKind::Weight, None).unwrap();
        let cases = [
            ("2388060112344", "880601", 1234),
            ("2302148210869", "021482", 1086),
            ("2368091402263", "680914", 226),
        ];
        for (input, item_ref, grams) in cases {
            let gtin = Gtin::parse(input).unwrap();
            assert_eq!(
                layout.decode(&gtin),
                Ok(Some(ScaleLabel {
                    prefix: "23".into(),
                    item_ref: item_ref.into(),
                    value: EmbeddedValue::Weight { grams },
                })),
                "{input}"
            );
        }
    }

    #[test]
    fn decodes_the_common_european_layout() {
        // "21 12345 01999 C": odd positions 2+1+3+5+1+9 = 21, even (1+2+4+0+9+9) * 3 = 75,
        // 96 -> check digit 4.
        let layout = RcnLayout::ean13_item5_value5(&["21", "22"], EmbeddedKind::Price);
        let gtin = Gtin::parse("2112345019994").unwrap();
        assert_eq!(
            layout.decode(&gtin),
            Ok(Some(ScaleLabel {
                prefix: "21".into(),
                item_ref: "12345".into(),
                value: EmbeddedValue::Price { minor: 1999 },
            }))
        );
        let weight = RcnLayout::ean13_item5_value5(&["22"], EmbeddedKind::Weight);
        let payload = "220004200750";
        let check = gtin_check_digit(payload).unwrap();
        let gtin = Gtin::parse(&format!("{payload}{check}")).unwrap();
        assert_eq!(
            weight.decode(&gtin).unwrap().map(|label| label.value),
            Some(EmbeddedValue::Weight { grams: 750 })
        );
    }

    #[test]
    fn codes_outside_the_layout_decode_to_none() {
        let layout = RcnLayout::ean13_item5_value5(&["20"], EmbeddedKind::Price);
        for input in [
            "2112345019994",  // another RCN prefix
            "4006381333931",  // an ordinary GTIN-13
            "212345928752",   // UPC-A: GTIN-13 prefix 02
            "00011112",       // RCN-8
            "10614141000415", // GTIN-14 with indicator 1
        ] {
            let gtin = Gtin::parse(input).unwrap();
            assert_eq!(layout.decode(&gtin), Ok(None), "{input}");
        }
    }

    #[test]
    fn european_layout_drops_invalid_prefixes() {
        let layout = RcnLayout::ean13_item5_value5(&["20", "30", "2", "021"], EmbeddedKind::Price);
        assert_eq!(layout.prefixes(), ["20".to_owned()]);
        assert_eq!(layout.kind(), EmbeddedKind::Price);
        let none = RcnLayout::ean13_item5_value5(&["99"], EmbeddedKind::Weight);
        let gtin = Gtin::parse("2112345019994").unwrap();
        assert_eq!(none.decode(&gtin), Ok(None));
    }

    #[test]
    fn layout_validation_errors_name_the_field() {
        let p = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let price = EmbeddedKind::Price;
        let cases: Vec<(Result<RcnLayout, BarcodeError>, &str)> = vec![
            (RcnLayout::new(vec![], 2, 5, 7, 5, price, None), "prefixes"),
            (
                RcnLayout::new(p(&["20", "30"]), 2, 5, 7, 5, price, None),
                "prefix `30`",
            ),
            (
                RcnLayout::new(p(&["01"]), 2, 5, 7, 5, price, None),
                "prefix `01`",
            ),
            (
                RcnLayout::new(p(&["2"]), 2, 5, 7, 5, price, None),
                "prefix `2`",
            ),
            (
                RcnLayout::new(p(&["200"]), 2, 5, 7, 5, price, None),
                "prefix `200`",
            ),
            (
                RcnLayout::new(p(&["20"]), 2, 0, 7, 5, price, None),
                "item_len 0",
            ),
            (
                RcnLayout::new(p(&["20"]), 2, 7, 9, 4, price, None),
                "item_len 7",
            ),
            (
                RcnLayout::new(p(&["20"]), 2, 5, 7, 3, price, None),
                "value_len 3",
            ),
            (
                RcnLayout::new(p(&["20"]), 2, 3, 5, 7, price, None),
                "value_len 7",
            ),
            (
                RcnLayout::new(p(&["20"]), 1, 5, 7, 5, price, None),
                "item_start 1",
            ),
            (
                RcnLayout::new(p(&["20"]), 8, 5, 2, 5, price, None),
                "item_start 8",
            ),
            (
                RcnLayout::new(p(&["20"]), 2, 5, 8, 5, price, None),
                "value_start 8",
            ),
            (
                RcnLayout::new(p(&["20"]), 2, 5, usize::MAX, 5, price, None),
                "value_start",
            ),
            (
                RcnLayout::new(p(&["20"]), 2, 5, 6, 5, price, None),
                "overlap",
            ),
            (
                RcnLayout::new(p(&["20"]), 2, 5, 7, 5, price, Some(12)),
                "price_check_digit_at 12",
            ),
            (
                RcnLayout::new(p(&["20"]), 2, 5, 7, 5, price, Some(1)),
                "price_check_digit_at 1",
            ),
            (
                RcnLayout::new(p(&["20"]), 2, 5, 8, 4, price, Some(6)),
                "item reference digits",
            ),
            (
                RcnLayout::new(p(&["20"]), 2, 4, 6, 4, price, Some(9)),
                "value digits",
            ),
            (
                RcnLayout::new(p(&["20"]), 2, 3, 6, 6, price, Some(5)),
                "value_len is 6",
            ),
        ];
        for (result, needle) in cases {
            let reason = layout_err(result);
            assert!(
                reason.contains(needle),
                "`{reason}` should mention `{needle}`"
            );
        }
        assert_eq!(
            RcnLayout::new(p(&["20"]), 2, 5, 6, 5, price, None)
                .unwrap_err()
                .to_string(),
            "invalid restricted-circulation layout: item reference digits 2..7 overlap value \
             digits 6..11"
        );
        // The same layouts are fine once corrected, including ones with spare filler digits.
        assert!(RcnLayout::new(p(&["02", "29"]), 2, 5, 7, 5, price, None).is_ok());
        assert!(RcnLayout::new(p(&["20"]), 2, 3, 6, 6, price, None).is_ok());
        assert!(RcnLayout::new(p(&["20"]), 3, 1, 8, 4, price, Some(2)).is_ok());
    }

    fn digit_payload() -> impl Strategy<Value = String> {
        prop_oneof!["[0-9]{7}", "[0-9]{11}", "[0-9]{12}", "[0-9]{13}"]
    }

    proptest! {
        #[test]
        fn parse_never_panics(input in ".*") {
            let _ = Gtin::parse(&input);
            let _ = Gtin::from_upc_e(&input);
            let _ = Gtin::from_isbn10(&input);
            let _ = gtin_check_digit(&input);
            let _ = price_check_digit(&input);
        }

        #[test]
        fn parse_never_panics_on_number_like_text(input in "[0-9Ee+.,]{0,20}") {
            let _ = Gtin::parse(&input);
            let _ = Gtin::from_upc_e(&input);
            let _ = Gtin::from_isbn10(&input);
        }

        #[test]
        fn spreadsheet_numbers_are_always_scientific(
            input in "[1-9][.,][0-9]{1,6}[Ee][+]?[0-9]{1,2}"
        ) {
            let is_scientific = matches!(
                Gtin::parse(&input),
                Err(BarcodeError::ScientificNotation { .. })
            );
            prop_assert!(is_scientific);
        }

        #[test]
        fn payload_plus_check_digit_round_trips(payload in digit_payload()) {
            let check = gtin_check_digit(&payload).unwrap();
            let full = format!("{payload}{check}");
            let gtin = Gtin::parse(&full).unwrap();
            prop_assert_eq!(gtin.as_str(), full.as_str());
            prop_assert_eq!(gtin.len(), full.len());
            let gtin14 = gtin.to_gtin14();
            prop_assert_eq!(gtin14.len(), 14);
            prop_assert!(gtin14.ends_with(&full));
            prop_assert!(gtin14.bytes().all(|b| b.is_ascii_digit()));
            prop_assert_eq!(Gtin::parse(&gtin14).unwrap().to_gtin14(), gtin14);
        }

        #[test]
        fn any_single_digit_change_fails_the_check_digit(
            payload in digit_payload(),
            position in any::<prop::sample::Index>(),
            delta in 1_u8..=9,
        ) {
            let check = gtin_check_digit(&payload).unwrap();
            let mut bytes = format!("{payload}{check}").into_bytes();
            let at = position.index(bytes.len());
            let old = bytes[at] - b'0';
            bytes[at] = b'0' + (old + delta) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            let is_check_digit_error =
                matches!(Gtin::parse(&changed), Err(BarcodeError::CheckDigit { .. }));
            prop_assert!(is_check_digit_error, "{} was accepted", changed);
        }

        #[test]
        fn upc_e_bodies_expand_to_valid_upc_a(body in "[0-9]{6}", ns in "[01]") {
            let from_body = Gtin::from_upc_e(&body).unwrap();
            prop_assert_eq!(from_body.len(), 12);
            prop_assert_eq!(Gtin::parse(from_body.as_str()).unwrap(), from_body);
            let expanded = Gtin::from_upc_e(&format!("{ns}{body}0"));
            let with_check = match expanded {
                Ok(gtin) => gtin,
                Err(BarcodeError::CheckDigit { expected, .. }) => {
                    Gtin::from_upc_e(&format!("{ns}{body}{expected}")).unwrap()
                }
                Err(other) => return Err(TestCaseError::fail(other.to_string())),
            };
            prop_assert_eq!(with_check.as_str().get(..1), Some(ns.as_str()));
            prop_assert_eq!(with_check.as_str().len(), 12);
        }

        #[test]
        fn decode_never_panics(payload in "2[0-9]{11}", start in 0_usize..14, len in 0_usize..8) {
            let check = gtin_check_digit(&payload).unwrap();
            let gtin = Gtin::parse(&format!("{payload}{check}")).unwrap();
            let prefix = payload.get(..2).unwrap().to_owned();
            if let Ok(layout) =
                RcnLayout::new(vec![prefix], 2, 2, start, len, EmbeddedKind::Price, Some(4))
            {
                let _ = layout.decode(&gtin);
            }
            let layout = RcnLayout::ean13_item5_value5(&["20", "21", "22", "23"], EmbeddedKind::Weight);
            let _ = layout.decode(&gtin);
        }
    }
}
