//! Cash rounding at every edge where cash changes hands, by property, in every preset
//! jurisdiction that rounds cash: any sale, paid with any mix of tenders, then returned in any
//! sequence of steps with any refund tender. Every cash amount handed over (the cash tendered,
//! the change, each cash refund) is a multiple of the smallest coin, and the customer never gets
//! back more than was paid.
#![allow(clippy::unwrap_used)] // Test code: a panic is a test failure.

use domain::catalog::{Sku, TaxCategory};
use domain::money::Money;
use domain::presets;
use domain::quantity::{Quantity, UnitOfSale};
use domain::sale::{
    LineInput, Tender, TenderKind, pay_out_refund, price_cart, price_return, settle,
};
use domain::tax::{CashRounding, Jurisdiction};
use domain::time::Timestamp;
use proptest::prelude::*;

/// 2025-03-14 12:00 UTC: every preset's current rates apply.
const NOW: Timestamp = Timestamp::from_millis(1_741_953_600_000);

/// Presets with cash rounding; the test fails if none has it, so it cannot pass vacuously.
fn rounding_codes() -> Vec<&'static str> {
    let codes: Vec<&'static str> = presets::CODES
        .into_iter()
        .filter(|c| presets::jurisdiction(c).unwrap().cash_rounding().is_some())
        .collect();
    assert!(codes.len() >= 4, "{codes:?}");
    codes
}

/// A line as generated: unit price in minor units, quantity (whole units, or thousandths of a
/// kilogram when weighed), weighed or not, category index.
type LineSpec = (i64, i64, bool, usize);

fn lines(j: &Jurisdiction, spec: &[LineSpec]) -> Vec<LineInput> {
    let mut categories: Vec<TaxCategory> = j.rules().iter().map(|r| r.category.clone()).collect();
    categories.dedup();
    spec.iter()
        .enumerate()
        .map(|(i, &(price, qty, weighed, cat))| LineInput {
            sku: Sku::parse(&format!("S{i}")).unwrap(),
            name: format!("item {i}"),
            unit_price: Money::from_minor(price, j.currency()),
            quantity: Quantity::from_milli(if weighed { qty * 37 } else { qty * 1000 }).unwrap(),
            unit: if weighed {
                UnitOfSale::Weight
            } else {
                UnitOfSale::Each
            },
            tax_category: categories[cat % categories.len()].clone(),
            discount: None,
            fixed_amount: None,
        })
        .collect()
}

const KINDS: [TenderKind; 4] = [
    TenderKind::Cash,
    TenderKind::Card,
    TenderKind::GiftCard,
    TenderKind::StoreCredit,
];

fn payable(r: CashRounding, m: Money) -> bool {
    m.minor() % r.increment() == 0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn cash_handed_over_is_always_in_coins_and_never_more_than_was_paid(
        code in proptest::sample::select(rounding_codes()),
        spec in proptest::collection::vec((1_i64..60_000, 1_i64..6, any::<bool>(), 0_usize..4), 1..6),
        non_cash_kind in 1_usize..4,
        non_cash_per_mille in 0_i64..=1000,
        extra_coins in 0_i64..40,
        returns in proptest::collection::vec((0_i64..=100, 0_usize..4), 1..6),
        return_everything in any::<bool>(),
    ) {
        let j = presets::jurisdiction(code).unwrap();
        let rounding = j.cash_rounding().unwrap();
        let unit = rounding.increment();
        let money = |m: i64| Money::from_minor(m, j.currency());
        let cart = price_cart(&j, &lines(&j, &spec), None, NOW).unwrap();

        // The tender mix: a non-cash part of any size (none, some, all of the total) and cash
        // in coins for the rest, with any amount of change.
        let total = cart.total.minor();
        let non_cash = total * non_cash_per_mille / 1000;
        let mut tenders = Vec::new();
        if non_cash > 0 {
            tenders.push(Tender { kind: KINDS[non_cash_kind], amount: money(non_cash), reference: None });
        }
        let rest = total - non_cash;
        let cash = (rest + unit - 1).div_euclid(unit) * unit + extra_coins * unit;
        if cash > 0 {
            tenders.push(Tender { kind: TenderKind::Cash, amount: money(cash), reference: None });
        }
        prop_assume!(!tenders.is_empty());
        let s = settle(&cart, &tenders, Some(rounding)).unwrap();
        prop_assert!(payable(rounding, s.change), "change {}", s.change);
        prop_assert!(payable(rounding, s.due.checked_sub(money(non_cash)).unwrap()), "cash part of {}", s.due);
        prop_assert!((s.due.minor() - total).abs() * 2 <= unit, "rounding {} of {}", s.cash_rounding, cart.total);
        prop_assert_eq!(s.tendered.minor() - s.change.minor(), s.due.minor());

        // Returns in steps, each refunded in any tender.
        let mut returned = vec![0_i64; cart.lines.len()];
        let mut held_back = money(0);
        let mut refunded = 0_i64;
        let mut last_kind = None;
        let steps = returns.len();
        for (step, (percent, kind)) in returns.into_iter().enumerate() {
            let last = return_everything && step + 1 == steps;
            let mut request = Vec::new();
            for (i, l) in cart.lines.iter().enumerate() {
                let left = l.quantity.milli() - returned[i];
                let share = (percent + 37 * i64::try_from(i).unwrap()) % 101;
                let mut take = if last { left } else { left * share / 100 };
                if l.unit == UnitOfSale::Each {
                    take -= take % 1000;
                }
                if take > 0 {
                    request.push((i, Quantity::from_milli(take).unwrap()));
                }
            }
            if request.is_empty() {
                continue;
            }
            let exact = price_return(&cart, &s, &returned, &request).unwrap();
            let kind = KINDS[kind];
            let paid = pay_out_refund(exact, kind, Some(rounding), held_back).unwrap();
            let r = &paid.refund;
            prop_assert!(!r.refund.is_negative());
            prop_assert_eq!(r.total.minor() + r.cash_rounding.minor(), r.refund.minor());
            if kind == TenderKind::Cash {
                prop_assert!(payable(rounding, r.refund), "cash refund {}", r.refund);
            }
            prop_assert!(!paid.held_back.is_positive() && paid.held_back.minor() > -unit);
            held_back = paid.held_back;
            refunded += r.refund.minor();
            last_kind = Some(kind);
            for (line, q) in &request {
                returned[*line] += q.milli();
            }
            // Never back more than was paid, at every step.
            prop_assert!(refunded <= s.due.minor(), "refunded {} of {}", refunded, s.due);
        }
        let all_back = cart.lines.iter().zip(&returned).all(|(l, r)| l.quantity.milli() == *r);
        if all_back {
            // Everything back: what was paid, less at most what no coin makes, and exactly when
            // the last refund was not cash.
            prop_assert!(s.due.minor() - refunded < unit);
            if last_kind != Some(TenderKind::Cash) {
                prop_assert_eq!(refunded, s.due.minor());
            }
        }
    }
}
