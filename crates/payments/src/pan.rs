//! Keeping card numbers out: the Luhn scanner, masking to at most BIN and last four, and the
//! whitelist every raw terminal payload passes before anything is stored or logged.

use std::fmt;

/// Digits the scanner looks for: card numbers are 13 to 19 digits long (ISO/IEC 7812).
pub const PAN_MIN_DIGITS: usize = 13;
/// See [`PAN_MIN_DIGITS`].
pub const PAN_MAX_DIGITS: usize = 19;

/// The Luhn (mod 10) check over ASCII digits.
pub fn luhn_valid(digits: &[u8]) -> bool {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum % 10 == 0
}

/// A card number found by [`find_pans`]: where it starts and ends in the scanned bytes, and its
/// digits with separators removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanHit {
    /// Byte offset of the first digit.
    pub start: usize,
    /// Byte offset after the last digit.
    pub end: usize,
    /// The digits, separators removed.
    pub digits: String,
}

/// Finds every Luhn-valid run of 13 to 19 digits, written together or grouped with single spaces
/// or dashes (`4111 1111 1111 1111`, `4111-1111-1111-1111`), anywhere in `bytes`: SQLite pages,
/// logs, sync batches and receipts are all scanned as bytes. Product barcodes are left out
/// (see [`is_barcode`]).
///
/// A run is the whole stretch of digits between non-digits, as PCI discovery tools match
/// `\b\d{13,19}\b`: checking every window of longer runs would flag most long numbers that are
/// not cards (one window in ten passes Luhn by chance).
pub fn find_pans(bytes: &[u8]) -> Vec<PanHit> {
    let mut hits = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // Collect one run: digits, allowing a single space or dash between two digits.
        let mut positions = Vec::new();
        let mut j = i;
        while j < bytes.len() {
            if bytes[j].is_ascii_digit() {
                positions.push(j);
                j += 1;
            } else if (bytes[j] == b' ' || bytes[j] == b'-')
                && j + 1 < bytes.len()
                && bytes[j + 1].is_ascii_digit()
                && j > i
            {
                j += 1;
            } else {
                break;
            }
        }
        if (PAN_MIN_DIGITS..=PAN_MAX_DIGITS).contains(&positions.len()) {
            let digits: Vec<u8> = positions.iter().map(|&p| bytes[p]).collect();
            if luhn_valid(&digits) && !is_not_a_card_number(&digits) && !in_hex_token(bytes, i, j) {
                hits.push(PanHit {
                    start: i,
                    end: j,
                    digits: String::from_utf8_lossy(&digits).into_owned(),
                });
            }
        }
        i = j.max(i + 1);
    }
    hits
}

/// Hex digits in a token long enough to be an identifier or a digest: a UUID (32, with dashes),
/// a SHA-256 link (64), a signature (128).
const HEX_TOKEN_DIGITS: usize = 32;

/// Whether the digits at `start..end` lie inside a hex token of at least [`HEX_TOKEN_DIGITS`]
/// hex digits that holds a letter: part of a UUID (event ids, ServiceIDs, idempotency keys) or
/// a digest, not a number written out. A UUID's last two groups are all digits for a 14- to
/// 16-digit run once in a few thousand, and one such run in ten passes Luhn; every event has
/// a UUID, so without this the scan of a busy ledger reports one now and then.
fn in_hex_token(bytes: &[u8], start: usize, end: usize) -> bool {
    let part = |b: &u8| b.is_ascii_hexdigit() || *b == b'-';
    let from = bytes[..start]
        .iter()
        .rposition(|b| !part(b))
        .map_or(0, |p| p + 1);
    let to = bytes[end..]
        .iter()
        .position(|b| !part(b))
        .map_or(bytes.len(), |p| end + p);
    let token = &bytes[from..to];
    token.iter().filter(|b| b.is_ascii_hexdigit()).count() >= HEX_TOKEN_DIGITS
        && token.iter().any(u8::is_ascii_alphabetic)
}

/// Product barcodes are not card numbers: no card number starts with 0 (major industry
/// identifier 0 is not issued to card schemes) while every GTIN normalised to 14 digits does,
/// and a 13- or 14-digit run with a valid GTIN check digit is taken for a barcode. Without
/// this, a catalog's barcodes pass Luhn one time in ten and drown real findings; the price is
/// that the rare 13- or 14-digit card number that is also a valid GTIN goes unreported.
pub fn is_barcode(digits: &[u8]) -> bool {
    if digits.first() == Some(&b'0') {
        return true;
    }
    if digits.len() != 13 && digits.len() != 14 {
        return false;
    }
    let (body, check) = digits.split_at(digits.len() - 1);
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| u32::from(d - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    (10 - sum % 10) % 10 == u32::from(check[0] - b'0')
}

/// Digit runs that pass Luhn but are no card number: product barcodes ([`is_barcode`]) and
/// 13-digit runs that do not start with 4. Only Visa ever issued 13-digit card numbers; a
/// millisecond timestamp (`1795449986029`, in every event) is 13 digits and passes Luhn one
/// time in ten.
pub fn is_not_a_card_number(digits: &[u8]) -> bool {
    is_barcode(digits) || (digits.len() == 13 && digits.first() != Some(&b'4'))
}

/// Whether the text holds anything that looks like a card number.
pub fn contains_pan(text: &str) -> bool {
    !find_pans(text.as_bytes()).is_empty()
}

/// Replaces every card number in `text` by its masked form, for free text that Kassa keeps in
/// part. Never for identifiers (a POI transaction id, a PSP reference): their digits are a
/// reference, not a card, even when they pass Luhn, and a masked reference names nothing.
pub fn redact(text: &str) -> String {
    let hits = find_pans(text.as_bytes());
    if hits.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for h in hits {
        out.push_str(&text[at..h.start]);
        let masked = MaskedPan::mask(&h.digits)
            .map(|m| m.to_string())
            .unwrap_or_default();
        out.push_str(&masked);
        at = h.end;
    }
    out.push_str(&text[at..]);
    out
}

/// A masked card number: at most the first six digits (the BIN) and the last four.
///
/// The only constructor is [`MaskedPan::mask`], which keeps no more than that whatever it is
/// given, so a value of this type cannot hold a card number.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MaskedPan {
    bin: String,
    last4: String,
}

impl MaskedPan {
    /// Masks whatever the terminal called a masked PAN (`541333 **** 0010`, `****0010`, or a
    /// full number from a misbehaving terminal). Returns `None` when fewer than four digits are
    /// left to show.
    pub fn mask(input: &str) -> Option<Self> {
        let all: String = input.chars().filter(char::is_ascii_digit).collect();
        if all.len() < 4 {
            return None;
        }
        let last4 = all[all.len() - 4..].to_owned();
        // The BIN is the digits the input starts with, before any masking character; it is
        // shown only when at least ten digits are there, so it never overlaps the last four.
        let leading: String = input
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ' ' || *c == '-')
            .filter(char::is_ascii_digit)
            .collect();
        let bin = if leading.len() >= 6 && all.len() >= 10 {
            leading[..6].to_owned()
        } else {
            String::new()
        };
        Some(Self { bin, last4 })
    }

    /// The first six digits, when known.
    pub fn bin(&self) -> Option<&str> {
        (!self.bin.is_empty()).then_some(self.bin.as_str())
    }

    /// The last four digits.
    pub fn last4(&self) -> &str {
        &self.last4
    }
}

impl fmt::Display for MaskedPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bin.is_empty() {
            write!(f, "**** {}", self.last4)
        } else {
            write!(f, "{} **** {}", self.bin, self.last4)
        }
    }
}

impl fmt::Debug for MaskedPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MaskedPan({self})")
    }
}

/// `AdditionalResponse` keys whose values are identifiers Kassa must keep exactly as sent: the
/// PSP reference (what a refund by reference names), the sale system's own reference and the
/// card's token. Adyen's PSP references were 16 digits until they became alphanumeric, and one
/// numeric reference in ten passes Luhn; masking one would lose the reference a later refund
/// needs. These keys name references by their definition in Adyen's Terminal API, never card
/// data, so their values are not scanned.
pub const ADDITIONAL_RESPONSE_IDENTIFIERS: &[&str] =
    &["pspReference", "merchantReference", "alias"];

/// `AdditionalResponse` keys Kassa keeps; everything else a terminal sends is dropped. Values of
/// keys that are not [`ADDITIONAL_RESPONSE_IDENTIFIERS`] may carry free text from the terminal
/// (a message, a refusal reason) and are dropped when they hold anything like a card number.
pub const ADDITIONAL_RESPONSE_WHITELIST: &[&str] = &[
    "pspReference",
    "alias",
    "aliasType",
    "authCode",
    "cardType",
    "paymentMethod",
    "paymentMethodVariant",
    "posEntryMode",
    "fundingSource",
    "offline",
    "refusalReason",
    "message",
    "storeAndForward",
    "merchantReference",
];

/// Parses an `AdditionalResponse` (URL-encoded `key=value&…`), keeps only whitelisted keys,
/// keeps identifiers as sent and drops any other value that looks like a card number.
pub fn filter_additional_response(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k);
            let v = percent_decode(v);
            let keep = if ADDITIONAL_RESPONSE_IDENTIFIERS.contains(&k.as_str()) {
                true
            } else {
                ADDITIONAL_RESPONSE_WHITELIST.contains(&k.as_str()) && !contains_pan(&v)
            };
            keep.then_some((k, v))
        })
        .collect()
}

/// A free-text field from the terminal (a reason, a brand): kept only if short, printable and
/// free of anything that looks like a card number.
pub fn clean_text(raw: &str) -> Option<String> {
    let t: String = raw.chars().filter(|c| !c.is_control()).take(64).collect();
    (!t.is_empty() && !contains_pan(&t)).then_some(t)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn finds_card_numbers_written_in_every_usual_way() {
        for text in [
            "4111111111111111",
            "pan=4111 1111 1111 1111;",
            "x4111-1111-1111-1111y",
            "378282246310005",
            "30569309025904",
            "{\"n\":\"6011000990139424\"}",
        ] {
            assert_eq!(find_pans(text.as_bytes()).len(), 1, "{text}");
        }
        for text in [
            "4111111111111112",
            "4111  1111 1111 1111",
            "541333 **** 0010",
            "2019-05-08 14:25:15",
            "QFQTPCQ8HXSKGK82",
            "09131397070107",
            // The last groups of a UUID, digits only by chance: Luhn-valid, but no card.
            "\"id\":\"01935f4e-8a2b-7c3d-3162-7750698956ab\"",
        ] {
            assert!(find_pans(text.as_bytes()).is_empty(), "{text}");
        }
        // The same digits written out, or next to a short hex word, are reported.
        for text in [
            "\"n\":\"31627750698956\"",
            "id4111111111111111",
            "deadbeef-4111-1111-1111-1111",
        ] {
            assert_eq!(find_pans(text.as_bytes()).len(), 1, "{text}");
        }
    }

    #[test]
    fn masks_to_bin_and_last_four_at_most() {
        let m = MaskedPan::mask("4111111111111111").unwrap();
        assert_eq!(m.to_string(), "411111 **** 1111");
        assert_eq!(
            MaskedPan::mask("541333 **** 0010").unwrap().to_string(),
            "541333 **** 0010"
        );
        assert_eq!(
            MaskedPan::mask("**** **** **** 0010").unwrap().to_string(),
            "**** 0010"
        );
        assert!(MaskedPan::mask("***").is_none());
    }

    #[test]
    fn redact_masks_card_numbers_inside_free_text() {
        assert_eq!(redact("tx.4111111111111111.9"), "tx.411111 **** 1111.9");
        assert_eq!(redact("SIMPSP0001"), "SIMPSP0001");
    }

    #[test]
    fn identifiers_are_kept_even_when_their_digits_pass_luhn() {
        // A numeric PSP reference that passes Luhn, as one in ten of Adyen's numeric ones do.
        assert!(luhn_valid(b"8817055293814125"));
        let kept = filter_additional_response(
            "pspReference=8817055293814125&merchantReference=8817055293817334&message=8817055293814125",
        );
        assert_eq!(
            kept,
            vec![
                ("pspReference".to_owned(), "8817055293814125".to_owned()),
                (
                    "merchantReference".to_owned(),
                    "8817055293817334".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn whitelist_drops_unknown_keys_and_card_numbers() {
        let kept = filter_additional_response(
            "pspReference=QFQT1&cardNumber=4111111111111111&message=card%204111%201111%201111%201111&alias=K1&track2=%3B4111",
        );
        assert_eq!(
            kept,
            vec![
                ("pspReference".to_owned(), "QFQT1".to_owned()),
                ("alias".to_owned(), "K1".to_owned())
            ]
        );
    }
}
