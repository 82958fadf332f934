//! Property tests: masking never reveals more than the BIN and the last four digits, and the
//! scanner finds every card number however it is grouped.
#![allow(clippy::unwrap_used)]

use payments::pan::{MaskedPan, find_pans, is_not_a_card_number, luhn_valid};
use proptest::prelude::*;

/// A Luhn-valid number of 13 to 19 digits.
fn pan() -> impl Strategy<Value = String> {
    (2u8..=6, prop::collection::vec(0u8..10, 11..=17)).prop_map(|(first, body)| {
        let mut digits: Vec<u8> = std::iter::once(first).chain(body).collect();
        // Choose the check digit that makes the whole number pass Luhn.
        for check in 0..10 {
            digits.push(check);
            let text: Vec<u8> = digits.iter().map(|d| b'0' + d).collect();
            if luhn_valid(&text) {
                break;
            }
            digits.pop();
        }
        digits.iter().map(|d| char::from(b'0' + d)).collect()
    })
}

fn digits_of(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

proptest! {
    #[test]
    fn masking_a_card_number_shows_at_most_bin_and_last_four(pan in pan(), sep in prop::sample::select(vec!["", " ", "-"])) {
        let grouped: String = pan
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(sep);
        let masked = MaskedPan::mask(&grouped).unwrap().to_string();
        let shown = digits_of(&masked);
        prop_assert!(shown.len() <= 10, "{masked}");
        prop_assert!(find_pans(masked.as_bytes()).is_empty());
        let bin = MaskedPan::mask(&grouped).unwrap();
        prop_assert_eq!(bin.last4(), &pan[pan.len() - 4..]);
        if let Some(b) = bin.bin() {
            prop_assert_eq!(b, &pan[..6]);
        }
    }

    #[test]
    fn masking_anything_shows_at_most_ten_digits_from_the_ends(text in "[0-9 *-]{0,40}") {
        if let Some(m) = MaskedPan::mask(&text) {
            let shown = m.to_string();
            let all = digits_of(&text);
            prop_assert!(digits_of(&shown).len() <= 10);
            prop_assert!(all.ends_with(m.last4()));
            if let Some(b) = m.bin() {
                prop_assert!(all.starts_with(b));
            }
        }
    }

    #[test]
    fn the_scanner_finds_every_card_number_in_surrounding_text(
        pan in pan(),
        sep in prop::sample::select(vec!["", " ", "-"]),
        before in "[a-z=\":{ ]{0,12}",
        after in "[a-z\":}; ]{0,12}",
    ) {
        let grouped: String = pan
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(sep);
        prop_assume!(!is_not_a_card_number(pan.as_bytes()));
        // Separators next to the number would join it with nothing; keep the borders non-digit.
        let text = format!("{before}x{grouped}x{after}");
        let hits = find_pans(text.as_bytes());
        prop_assert_eq!(hits.len(), 1);
        prop_assert_eq!(&hits[0].digits, &pan);
    }
}

proptest! {
    #[test]
    fn amounts_round_trip_exactly_through_the_wire(minor in -1_000_000_000i64..1_000_000_000, exp in 0u32..=3) {
        let a = payments::nexo::Amount::from_minor(minor, exp);
        let json = serde_json::to_string(&a).unwrap();
        let back: payments::nexo::Amount = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back.to_minor(exp), Some(minor));
    }
}
