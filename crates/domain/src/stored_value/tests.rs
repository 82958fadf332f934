//! Tests of account numbers, the balance fold, loads and the offline cap.

use super::*;
use crate::ids::{EventId, StoreId, TerminalId};
use crate::ledger::{Event, EventMeta, ReturnCompleted, SaleCompleted};
use crate::sale::{PricedCart, PricedReturn, Settlement};
use crate::shift::ShiftTally;
use crate::tax::PricingMode;
use crate::time::Hlc;

fn eur(minor: i64) -> Money {
    Money::from_minor(minor, Currency::parse("EUR").unwrap())
}

fn tender(kind: TenderKind, minor: i64, reference: Option<&str>) -> Tender {
    Tender {
        kind,
        amount: eur(minor),
        reference: reference.map(str::to_owned),
    }
}

fn gift_card(entropy: u64) -> AccountNumber {
    AccountNumber::generate(StoredValueKind::GiftCard, entropy)
}

#[test]
fn generated_numbers_parse_back_with_their_kind() {
    for entropy in [0, 1, 35, 36, 1_000_000_007, u64::MAX] {
        for kind in [StoredValueKind::GiftCard, StoredValueKind::StoreCredit] {
            let number = AccountNumber::generate(kind, entropy);
            assert_eq!(number.as_str().len(), 14);
            let parsed = AccountNumber::parse(number.as_str()).unwrap();
            assert_eq!(parsed, number);
            assert_eq!(parsed.kind(), kind);
        }
    }
}

#[test]
fn numbers_are_read_as_typed_but_a_mistyped_character_is_caught() {
    let number = gift_card(123_456_789);
    let typed = format!(
        "{} {}-{}",
        &number.as_str()[..4].to_lowercase(),
        &number.as_str()[4..9],
        &number.as_str()[9..]
    );
    assert_eq!(AccountNumber::parse(&typed).unwrap(), number);
    // Every single-character change is caught by the check character.
    let bytes = number.as_str().as_bytes();
    for i in 2..bytes.len() {
        for c in b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" {
            if *c == bytes[i] {
                continue;
            }
            let mut changed = bytes.to_vec();
            changed[i] = *c;
            let text = String::from_utf8(changed).unwrap();
            assert!(AccountNumber::parse(&text).is_err(), "{text} passed");
        }
    }
}

#[test]
fn bad_numbers_name_the_reason() {
    let cases = [
        ("XX12345678", "must start with GC"),
        ("GC1234", "8 to 20 characters"),
        ("GC12345678!", "only letters and digits"),
        ("GC4111111111111111", "more than 12 digits"),
    ];
    for (text, reason) in cases {
        let err = AccountNumber::parse(text).unwrap_err().to_string();
        assert!(err.contains(reason), "{text}: {err}");
    }
    let store_credit = AccountNumber::generate(StoredValueKind::StoreCredit, 7);
    let err = AccountNumber::parse_kind(store_credit.as_str(), StoredValueKind::GiftCard)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a store-credit number"), "{err}");
}

#[test]
fn no_number_has_a_digit_run_long_enough_for_a_card_number() {
    // Entropy that produces only digits in the body still keeps the run within 12.
    for entropy in 0..2000_u64 {
        let number = gift_card(entropy);
        let longest = number
            .as_str()
            .split(|c: char| !c.is_ascii_digit())
            .map(str::len)
            .max()
            .unwrap();
        assert!(longest <= NUMBER_MAX_DIGIT_RUN, "{number}");
    }
}

fn sale(tenders: Vec<Tender>) -> EventBody {
    let total = Money::sum(eur(0).currency(), tenders.iter().map(|t| &t.amount)).unwrap();
    EventBody::SaleCompleted(SaleCompleted {
        receipt: "T1-1".into(),
        cashier: None,
        cart: PricedCart {
            currency: total.currency(),
            pricing: PricingMode::Inclusive,
            lines: Vec::new(),
            taxes: Vec::new(),
            subtotal: total,
            discount_total: eur(0),
            net_total: total,
            tax_total: eur(0),
            total,
        },
        tenders,
        settlement: Settlement {
            total,
            cash_rounding: eur(0),
            due: total,
            tendered: total,
            change: eur(0),
        },
        approvals: Vec::new(),
    })
}

fn load(account: &AccountNumber, minor: i64, tenders: Vec<Tender>, change: i64) -> StoredValueLoad {
    StoredValueLoad {
        account: account.clone(),
        cashier: None,
        amount: eur(minor),
        tenders,
        change: eur(change),
    }
}

#[test]
fn the_balance_is_the_sum_of_issue_top_up_redemption_refund_and_void() {
    let card = gift_card(42);
    let other = gift_card(43);
    let credit = AccountNumber::generate(StoredValueKind::StoreCredit, 44);
    let bodies = [
        EventBody::StoredValueIssued(load(&card, 5000, Vec::new(), 0)),
        EventBody::StoredValueToppedUp(load(&card, 1000, Vec::new(), 0)),
        sale(vec![
            tender(TenderKind::GiftCard, 1500, Some(card.as_str())),
            tender(TenderKind::GiftCard, 700, Some(other.as_str())),
            tender(TenderKind::Cash, 300, None),
            // A tender recorded before balances were held has no number and moves nothing.
            tender(TenderKind::GiftCard, 100, None),
        ]),
        EventBody::ReturnCompleted(ReturnCompleted {
            receipt: "T1-2".into(),
            original_receipt: None,
            reason: Some("no receipt".into()),
            refund: PricedReturn {
                lines: Vec::new(),
                total: eur(800),
                cash_rounding: eur(0),
                refund: eur(800),
            },
            tenders: vec![tender(TenderKind::StoreCredit, 800, Some(credit.as_str()))],
            approvals: Vec::new(),
        }),
    ];
    let moves: Vec<Movement> = bodies.iter().flat_map(movements).collect();
    assert_eq!(
        moves.iter().map(|m| m.kind).collect::<Vec<_>>(),
        [
            MovementKind::Issue,
            MovementKind::TopUp,
            MovementKind::Redemption,
            MovementKind::Redemption,
            MovementKind::Refund
        ]
    );
    let cur = eur(0).currency();
    assert_eq!(balance(&card, cur, &moves).unwrap(), eur(4500));
    assert_eq!(balance(&other, cur, &moves).unwrap(), eur(-700));
    assert_eq!(balance(&credit, cur, &moves).unwrap(), eur(800));
    assert_eq!(redeemed(cur, &moves).unwrap(), eur(2200));
    // Voiding the sale gives both redemptions back.
    let voided = void_movements(&movements(&bodies[2]));
    let all: Vec<Movement> = moves.iter().chain(&voided).cloned().collect();
    assert_eq!(balance(&card, cur, &all).unwrap(), eur(6000));
    assert_eq!(balance(&other, cur, &all).unwrap(), eur(0));
    assert_eq!(redeemed(cur, &all).unwrap(), eur(0));
}

#[test]
fn a_redemption_never_exceeds_a_known_balance() {
    let card = gift_card(1);
    assert!(check_redemption(&card, eur(500), eur(500)).is_ok());
    let err = check_redemption(&card, eur(501), eur(500)).unwrap_err();
    assert!(matches!(err, StoredValueError::InsufficientBalance { .. }));
    assert!(err.to_string().contains("5.00"), "{err}");
}

#[test]
fn offline_redemptions_stay_within_the_cap() {
    let cases = [
        // cap, unconfirmed, amount, allowed
        (10_000, 0, 10_000, true),
        (10_000, 6_000, 4_000, true),
        (10_000, 6_000, 4_001, false),
        (0, 0, 1, false),
    ];
    for (cap, unconfirmed, amount, allowed) in cases {
        let result = check_offline_cap(eur(cap), eur(unconfirmed), eur(amount));
        assert_eq!(result.is_ok(), allowed, "{cap} {unconfirmed} {amount}");
    }
    let err = check_offline_cap(eur(10_000), eur(6_000), eur(4_001)).unwrap_err();
    assert!(err.to_string().contains("100.00 offline"), "{err}");
}

#[test]
fn loads_take_cash_and_card_and_give_change_in_cash_only() {
    let card = |m| tender(TenderKind::Card, m, Some("psp-1"));
    let cash = |m| tender(TenderKind::Cash, m, None);
    assert_eq!(settle_load(eur(5000), &[cash(6000)]).unwrap(), eur(1000));
    assert_eq!(
        settle_load(eur(5000), &[card(3000), cash(2000)]).unwrap(),
        eur(0)
    );
    assert!(matches!(
        settle_load(eur(5000), &[card(6000)]),
        Err(StoredValueError::NonCashOverTender { .. })
    ));
    assert!(matches!(
        settle_load(eur(5000), &[cash(4999)]),
        Err(StoredValueError::TendersShort { .. })
    ));
    assert!(matches!(
        settle_load(eur(0), &[cash(1)]),
        Err(StoredValueError::AmountNotPositive)
    ));
    let other = gift_card(9);
    assert!(matches!(
        settle_load(
            eur(5000),
            &[tender(TenderKind::GiftCard, 5000, Some(other.as_str()))]
        ),
        Err(StoredValueError::TenderNotAllowed { index: 0, .. })
    ));
}

#[test]
fn cash_taken_for_a_gift_card_counts_in_the_drawer() {
    let mut tally = ShiftTally::new(eur(10_000));
    let event = Event {
        meta: EventMeta {
            id: EventId::parse("0190a000-0000-7000-8000-000000000001").unwrap(),
            store: StoreId::parse("S1").unwrap(),
            terminal: TerminalId::parse("T1").unwrap(),
            seq: 2,
            hlc: Hlc::new(1, 0),
        },
        body: EventBody::StoredValueIssued(load(
            &gift_card(5),
            5000,
            vec![
                tender(TenderKind::Card, 2000, Some("psp")),
                tender(TenderKind::Cash, 5000, None),
            ],
            2000,
        )),
    };
    tally.add(&event).unwrap();
    assert_eq!(tally.expected_cash().unwrap(), eur(13_000));
    assert_eq!(tally.tender_net(TenderKind::Card).unwrap(), eur(2000));
    assert_eq!(tally.stored_value_sold, eur(5000));
    assert_eq!(tally.sales, 0);
    assert_eq!(tally.tax_total, eur(0));
}

#[test]
fn a_masked_number_keeps_the_last_four_only() {
    let number = gift_card(7);
    let masked = masked_number(number.as_str());
    assert!(masked.starts_with("**** "), "{masked}");
    assert_eq!(masked.len(), 9);
    assert!(number.as_str().ends_with(&masked[5..]));
    assert!(!masked.contains(&number.as_str()[..6]));
    assert_eq!(masked_number("GC-12"), "**** GC12");
    assert_eq!(masked_number(""), "**** ");
}
