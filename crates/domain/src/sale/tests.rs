//! Unit and property tests of cart pricing, settlement and returns.

use super::*;
use crate::presets;
use proptest::prelude::*;

fn line(j: &Jurisdiction, sku: &str, price: i64, qty: &str, cat: &str) -> LineInput {
    LineInput {
        sku: Sku::parse(sku).unwrap(),
        name: sku.to_owned(),
        unit_price: Money::from_minor(price, j.currency()),
        quantity: Quantity::parse(qty).unwrap(),
        unit: if qty.contains('.') {
            UnitOfSale::Weight
        } else {
            UnitOfSale::Each
        },
        tax_category: TaxCategory::parse(cat).unwrap(),
        discount: None,
        fixed_amount: None,
    }
}

const NOW: Timestamp = Timestamp::from_millis(1_790_000_000_000);

fn cash(amount: Money) -> Tender {
    Tender {
        kind: TenderKind::Cash,
        amount,
        reference: None,
    }
}

#[test]
fn inclusive_line_extracts_tax_from_the_gross() {
    let at = presets::jurisdiction("AT").unwrap();
    let cart = price_cart(&at, &[line(&at, "A", 1199, "1", "standard")], None, NOW).unwrap();
    // 11.99 / 1.2 = 9.9917 → tax 1.9983 → 2.00
    assert_eq!(cart.lines[0].gross.minor(), 1199);
    assert_eq!(cart.lines[0].taxes[0].amount.minor(), 200);
    assert_eq!(cart.lines[0].net.minor(), 999);
}

#[test]
fn exclusive_line_adds_tax() {
    let nyc = presets::jurisdiction("US-NY-NYC").unwrap();
    let cart = price_cart(&nyc, &[line(&nyc, "A", 1000, "1", "standard")], None, NOW).unwrap();
    assert_eq!(cart.lines[0].net.minor(), 1000);
    assert_eq!(cart.tax_total.minor(), 89); // 0.8875 → 0.89
    assert_eq!(cart.total.minor(), 1089);
}

#[test]
fn weighed_line_rounds_the_extended_price() {
    let de = presets::jurisdiction("DE").unwrap();
    // 2.99 €/kg × 0.333 kg = 0.99567 € → 1.00 €
    let cart = price_cart(
        &de,
        &[line(&de, "APPLE", 299, "0.333", "reduced")],
        None,
        NOW,
    )
    .unwrap();
    assert_eq!(cart.lines[0].extended.minor(), 100);
}

#[test]
fn german_vat_follows_its_effective_dates() {
    let de = presets::jurisdiction("DE").unwrap();
    let basket = [line(&de, "A", 11600, "1", "standard")];
    let during = price_cart(&de, &basket, None, presets::DE_CUT_FROM).unwrap();
    assert_eq!(during.tax_total.minor(), 1600);
    let after = price_cart(&de, &basket, None, presets::DE_CUT_TO).unwrap();
    assert_eq!(after.tax_total.minor(), 1852);
}

#[test]
fn document_rounding_differs_from_line_rounding_and_both_balance() {
    // Three lines of 0.10 at 20 % inclusive: per line 0.0167 → 0.02 each (0.06); per document
    // 0.05 allocated 0.02 + 0.02 + 0.01.
    let gb = presets::jurisdiction("GB").unwrap();
    let at = presets::jurisdiction("AT").unwrap();
    let lines_gb: Vec<_> = (0..3)
        .map(|i| line(&gb, &format!("L{i}"), 10, "1", "standard"))
        .collect();
    let lines_at: Vec<_> = (0..3)
        .map(|i| line(&at, &format!("L{i}"), 10, "1", "standard"))
        .collect();
    let per_line = price_cart(&gb, &lines_gb, None, NOW).unwrap();
    let per_doc = price_cart(&at, &lines_at, None, NOW).unwrap();
    assert_eq!(per_line.tax_total.minor(), 6);
    assert_eq!(per_doc.tax_total.minor(), 5);
    let line_taxes: Vec<i64> = per_doc
        .lines
        .iter()
        .map(|l| l.taxes[0].amount.minor())
        .collect();
    assert_eq!(line_taxes, vec![2, 2, 1]);
}

#[test]
fn discounts_are_checked_and_allocated() {
    let at = presets::jurisdiction("AT").unwrap();
    let mut a = line(&at, "A", 1000, "1", "standard");
    a.discount = Some(Discount::Percent(Percent::parse("10").unwrap()));
    let b = line(&at, "B", 500, "1", "reduced");
    let cart = price_cart(
        &at,
        &[a.clone(), b.clone()],
        Some(Discount::Amount(Money::from_minor(140, Currency::EUR))),
        NOW,
    )
    .unwrap();
    assert_eq!(cart.lines[0].line_discount.minor(), 100);
    assert_eq!(
        cart.lines[0].cart_discount.minor() + cart.lines[1].cart_discount.minor(),
        140
    );
    assert_eq!(cart.total.minor(), 1000 - 100 + 500 - 140);
    assert_eq!(cart.discount_total.minor(), 240);
    let mut too_much = b;
    too_much.discount = Some(Discount::Amount(Money::from_minor(501, Currency::EUR)));
    assert_eq!(
        price_cart(&at, &[too_much], None, NOW)
            .unwrap_err()
            .to_string(),
        "lines[0].discount: discount EUR 5.01 is not between zero and EUR 5.00"
    );
    assert!(Percent::parse("0").is_err());
    assert!(Percent::parse("100.5").is_err());
}

#[test]
fn bad_lines_are_rejected_with_their_index() {
    let at = presets::jurisdiction("AT").unwrap();
    let mut l = line(&at, "A", 1000, "1", "standard");
    l.unit_price = Money::from_minor(1000, Currency::CHF);
    assert_eq!(
        price_cart(&at, &[l], None, NOW).unwrap_err().to_string(),
        "lines[0].price: price is in CHF, but the store trades in EUR"
    );
    let mut l = line(&at, "A", 1000, "1", "standard");
    l.quantity = Quantity::parse("1.5").unwrap();
    assert!(matches!(
        price_cart(&at, &[l], None, NOW),
        Err(SaleError::LineQuantity { line: 0, .. })
    ));
    let l = line(&at, "A", 1000, "1", "no-such-category");
    assert_eq!(
        price_cart(&at, &[line(&at, "B", 100, "1", "standard"), l], None, NOW)
            .unwrap_err()
            .to_string(),
        "lines[1].tax: no tax rule for category `no-such-category` in AT at 2026-09-21T14:13:20Z"
    );
    let mut l = line(&at, "A", 1000, "2", "standard");
    l.discount = Some(Discount::Amount(Money::from_minor(2500, Currency::EUR)));
    assert_eq!(
        price_cart(&at, &[l], None, NOW).unwrap_err().to_string(),
        "lines[0].discount: discount EUR 25.00 is not between zero and EUR 20.00"
    );
}

#[test]
fn new_york_clothing_is_exempt_under_110_dollars_an_item_and_fully_taxed_above() {
    let nyc = presets::jurisdiction("US-NY-NYC").unwrap();
    let tax = |price: i64, qty: &str, discount: Option<i64>| {
        let mut l = line(&nyc, "C", price, qty, "clothing-exempt");
        l.discount = discount.map(|d| Discount::Amount(Money::from_minor(d, Currency::USD)));
        price_cart(&nyc, &[l], None, NOW).unwrap().tax_total.minor()
    };
    // A 250.00 coat: 8.875 % = 22.1875 → 22.19; jeans at 79.50: nothing.
    assert_eq!(tax(25_000, "1", None), 2_219);
    assert_eq!(tax(7_950, "1", None), 0);
    // At the threshold the item is taxed; a cent under it, not.
    assert_eq!(tax(11_000, "1", None), 976);
    assert_eq!(tax(10_999, "1", None), 0);
    // Per item: two coats at 120.00 are taxed, three shirts at 40.00 are not.
    assert_eq!(tax(12_000, "2", None), 2_130);
    assert_eq!(tax(4_000, "3", None), 0);
    // The price after a store discount counts: 120.00 less 20.00 is under 110.00.
    assert_eq!(tax(12_000, "1", Some(2_000)), 0);
}

#[test]
fn a_negative_price_is_refused_in_a_sale() {
    // A sale of -1.00 would pay money out with VAT of -0.17; returns are the way money goes
    // back, priced from what was sold.
    let at = presets::jurisdiction("AT").unwrap();
    let l = line(&at, "A", -100, "1", "standard");
    assert_eq!(
        price_cart(&at, &[line(&at, "B", 100, "1", "standard"), l], None, NOW)
            .unwrap_err()
            .to_string(),
        "lines[1].price: EUR -1.00 is negative; a sale cannot pay money out, a return gives it back"
    );
    let mut l = line(&at, "A", 100, "1", "standard");
    l.fixed_amount = Some(Money::from_minor(-5, Currency::EUR));
    assert!(matches!(
        price_cart(&at, &[l], None, NOW),
        Err(SaleError::NegativePrice { line: 0, .. })
    ));
    // Free is a price.
    assert!(price_cart(&at, &[line(&at, "A", 0, "1", "standard")], None, NOW).is_ok());
}

#[test]
fn settlement_gives_change_only_in_cash() {
    let ch = presets::jurisdiction("CH").unwrap();
    let cart = price_cart(&ch, &[line(&ch, "A", 1003, "1", "standard")], None, NOW).unwrap();
    let s = settle(
        &cart,
        &[cash(Money::from_minor(2000, Currency::CHF))],
        ch.cash_rounding(),
    )
    .unwrap();
    assert_eq!(
        (s.due.minor(), s.cash_rounding.minor(), s.change.minor()),
        (1005, 2, 995)
    );
    let card = Tender {
        kind: TenderKind::Card,
        amount: Money::from_minor(1003, Currency::CHF),
        reference: Some("psp-1".into()),
    };
    let s = settle(&cart, std::slice::from_ref(&card), ch.cash_rounding()).unwrap();
    assert_eq!(
        (s.due.minor(), s.cash_rounding.minor(), s.change.minor()),
        (1003, 0, 0)
    );
    let over = Tender {
        amount: Money::from_minor(1100, Currency::CHF),
        ..card
    };
    assert!(matches!(
        settle(&cart, &[over], ch.cash_rounding()),
        Err(SaleError::NonCashOverTender { .. })
    ));
    assert_eq!(
        settle(
            &cart,
            &[cash(Money::from_minor(1000, Currency::CHF))],
            ch.cash_rounding()
        )
        .unwrap_err()
        .to_string(),
        "tenders CHF 10.00 do not cover the amount due CHF 10.05"
    );
    assert!(matches!(
        settle(&cart, &[cash(Money::from_minor(0, Currency::CHF))], None),
        Err(SaleError::TenderNotPositive { index: 0 })
    ));
}

#[test]
fn returns_never_exceed_what_was_sold() {
    let at = presets::jurisdiction("AT").unwrap();
    let cart = price_cart(&at, &[line(&at, "A", 1000, "3", "standard")], None, NOW).unwrap();
    let s = settle(&cart, &[cash(cart.total)], None).unwrap();
    let two = Quantity::each(2).unwrap();
    let first = price_return(&cart, &s, &[0], &[(0, two)]).unwrap();
    assert_eq!(first.refund.minor(), 2000);
    let err = price_return(&cart, &s, &[2000], &[(0, two)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "return of line 0: 2 asked, but only 1 of 3 sold is left to return"
    );
    assert!(matches!(
        price_return(&cart, &s, &[0], &[(1, two)]),
        Err(SaleError::NoSuchLine { index: 0, line: 1 })
    ));
}

#[test]
fn return_of_a_cash_rounded_sale_gives_back_what_was_paid() {
    let se = presets::jurisdiction("SE").unwrap();
    let cart = price_cart(
        &se,
        &[
            line(&se, "A", 2990, "1", "standard"),
            line(&se, "B", 1245, "1", "reduced"),
        ],
        None,
        NOW,
    )
    .unwrap();
    let s = settle(
        &cart,
        &[cash(Money::from_minor(5000, Currency::SEK))],
        se.cash_rounding(),
    )
    .unwrap();
    assert_eq!(s.due.minor(), 4200); // 42.35 → 42.00
    let one = Quantity::ONE;
    let first = price_return(&cart, &s, &[0, 0], &[(0, one)]).unwrap();
    let second = price_return(&cart, &s, &[1000, 0], &[(1, one)]).unwrap();
    assert_eq!(first.refund.minor() + second.refund.minor(), s.due.minor());
}

fn card(amount: Money) -> Tender {
    Tender {
        kind: TenderKind::Card,
        amount,
        reference: Some("psp-1".into()),
    }
}

#[test]
fn a_split_payment_rounds_only_the_cash_part() {
    // Zürich: 16.24, of which 10.00 by card; the 6.24 left in cash is 6.25 in coins.
    let ch = presets::jurisdiction("CH").unwrap();
    let chf = |m| Money::from_minor(m, Currency::CHF);
    let cart = price_cart(&ch, &[line(&ch, "A", 1624, "1", "standard")], None, NOW).unwrap();
    let s = settle(
        &cart,
        &[card(chf(1000)), cash(chf(1000))],
        ch.cash_rounding(),
    )
    .unwrap();
    assert_eq!(
        (s.due.minor(), s.cash_rounding.minor(), s.change.minor()),
        (1625, 1, 375)
    );
    // Stockholm: 126.60 with 100.00 by card; 26.60 left, paid with a 50 note: 27 due, 23 back.
    let se = presets::jurisdiction("SE").unwrap();
    let sek = |m| Money::from_minor(m, Currency::SEK);
    let cart = price_cart(&se, &[line(&se, "A", 12660, "1", "standard")], None, NOW).unwrap();
    let s = settle(
        &cart,
        &[card(sek(10000)), cash(sek(5000))],
        se.cash_rounding(),
    )
    .unwrap();
    assert_eq!(
        (s.due.minor(), s.cash_rounding.minor(), s.change.minor()),
        (12700, 40, 2300)
    );
    // A card alone pays exactly what it is charged.
    let s = settle(&cart, &[card(sek(12660))], se.cash_rounding()).unwrap();
    assert_eq!((s.due.minor(), s.cash_rounding.minor()), (12660, 0));
}

#[test]
fn cash_that_no_coins_make_is_refused() {
    let ch = presets::jurisdiction("CH").unwrap();
    let chf = |m| Money::from_minor(m, Currency::CHF);
    let cart = price_cart(&ch, &[line(&ch, "A", 1003, "1", "standard")], None, NOW).unwrap();
    let err = settle(&cart, &[card(chf(500)), cash(chf(503))], ch.cash_rounding()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tenders[1].amount: cash amount CHF 5.03 cannot be handed over in coins; cash here is a multiple of CHF 0.05"
    );
    // Where cash is not rounded, any amount is cash.
    let at = presets::jurisdiction("AT").unwrap();
    let cart = price_cart(&at, &[line(&at, "A", 1003, "1", "standard")], None, NOW).unwrap();
    let eur = Money::from_minor(1003, Currency::EUR);
    assert!(settle(&cart, &[cash(eur)], at.cash_rounding()).is_ok());
}

#[test]
fn a_cash_refund_is_paid_in_coins_and_never_more_than_was_paid() {
    let ch = presets::jurisdiction("CH").unwrap();
    let chf = |m| Money::from_minor(m, Currency::CHF);
    let rounding = ch.cash_rounding();
    // A card sale of 16.24 refunded in cash: 16.25 would be more than was paid, so 16.20.
    let cart = price_cart(&ch, &[line(&ch, "A", 1624, "1", "standard")], None, NOW).unwrap();
    let s = settle(&cart, &[card(chf(1624))], rounding).unwrap();
    let exact = price_return(&cart, &s, &[0], &[(0, Quantity::ONE)]).unwrap();
    let paid = pay_out_refund(exact.clone(), TenderKind::Cash, rounding, chf(0)).unwrap();
    assert_eq!(
        (
            paid.refund.total.minor(),
            paid.refund.cash_rounding.minor(),
            paid.refund.refund.minor(),
            paid.held_back.minor()
        ),
        (1624, -4, 1620, -4)
    );
    // The same refund to the card is exact.
    let to_card = pay_out_refund(exact, TenderKind::Card, rounding, chf(0)).unwrap();
    assert_eq!(
        (to_card.refund.refund.minor(), to_card.held_back.minor()),
        (1624, 0)
    );

    // A cash sale of 2 × 2.49 = 4.98, paid 5.00, returned one item at a time in cash: the first
    // refund's 2.50 is payable, the second's 2.50 too; what was paid comes back exactly.
    let cart = price_cart(&ch, &[line(&ch, "A", 249, "2", "standard")], None, NOW).unwrap();
    let s = settle(&cart, &[cash(chf(500))], rounding).unwrap();
    assert_eq!(s.due.minor(), 500);
    let first = price_return(&cart, &s, &[0], &[(0, Quantity::ONE)]).unwrap();
    let first = pay_out_refund(first, TenderKind::Cash, rounding, chf(0)).unwrap();
    let second = price_return(&cart, &s, &[1000], &[(0, Quantity::ONE)]).unwrap();
    let second = pay_out_refund(second, TenderKind::Cash, rounding, first.held_back).unwrap();
    assert_eq!(
        (first.refund.refund.minor(), second.refund.refund.minor()),
        (250, 250)
    );

    // Three items of 1.33 = 3.99, paid 4.00 in cash: 1.33 + 0.00 share is 1.30 in coins, the
    // 0.03 held back is added to the next refund, and the last gives back the rest.
    let cart = price_cart(&ch, &[line(&ch, "A", 133, "3", "standard")], None, NOW).unwrap();
    let s = settle(&cart, &[cash(chf(400))], rounding).unwrap();
    let mut returned = 0;
    let mut held = chf(0);
    let mut refunds = Vec::new();
    for _ in 0..3 {
        let r = price_return(&cart, &s, &[returned], &[(0, Quantity::ONE)]).unwrap();
        let p = pay_out_refund(r, TenderKind::Cash, rounding, held).unwrap();
        returned += 1000;
        held = p.held_back;
        refunds.push(p.refund.refund.minor());
    }
    assert_eq!(refunds, vec![130, 135, 135]);
    assert_eq!(refunds.iter().sum::<i64>(), 400);
}

/// A line as generated: price, quantity in thousandths, category index, line discount percent.
type LineSpec = (i64, i64, usize, Option<u8>);

fn arb_basket() -> impl Strategy<Value = (String, Vec<LineSpec>, Option<u8>)> {
    let code = proptest::sample::select(presets::CODES.to_vec()).prop_map(str::to_owned);
    let lines = proptest::collection::vec(
        (
            1_i64..200_000,
            1_i64..5_000,
            0_usize..3,
            proptest::option::of(1_u8..=100),
        ),
        1..8,
    );
    (code, lines, proptest::option::of(1_u8..=100))
}

fn build_lines(j: &Jurisdiction, spec: &[LineSpec]) -> Vec<LineInput> {
    let categories: Vec<TaxCategory> = {
        let mut seen: Vec<TaxCategory> = j.rules().iter().map(|r| r.category.clone()).collect();
        seen.dedup();
        seen
    };
    spec.iter()
        .enumerate()
        .map(|(i, (price, milli, cat, pct))| {
            let weighed = i % 3 == 2;
            LineInput {
                sku: Sku::parse(&format!("S{i}")).unwrap(),
                name: format!("item {i}"),
                unit_price: Money::from_minor(*price, j.currency()),
                quantity: Quantity::from_milli(if weighed {
                    *milli
                } else {
                    (milli % 9 + 1) * 1000
                })
                .unwrap(),
                unit: if weighed {
                    UnitOfSale::Weight
                } else {
                    UnitOfSale::Each
                },
                tax_category: categories[cat % categories.len()].clone(),
                discount: pct.map(|p| Discount::Percent(Percent::new(Decimal::from(p)).unwrap())),
                fixed_amount: None,
            }
        })
        .collect()
}

proptest! {
    #[test]
    fn net_plus_tax_is_gross_on_every_line_and_document((code, spec, cart_pct) in arb_basket()) {
        let j = presets::jurisdiction(&code).unwrap();
        let lines = build_lines(&j, &spec);
        let discount = cart_pct.map(|p| Discount::Percent(Percent::new(Decimal::from(p)).unwrap()));
        let cart = price_cart(&j, &lines, discount, NOW).unwrap();
        for l in &cart.lines {
            let tax: i64 = l.taxes.iter().map(|t| t.amount.minor()).sum();
            prop_assert_eq!(l.net.minor() + tax, l.gross.minor());
            prop_assert_eq!(
                l.extended.minor() - l.line_discount.minor() - l.cart_discount.minor(),
                match j.pricing() { PricingMode::Inclusive => l.gross.minor(), PricingMode::Exclusive => l.net.minor() }
            );
        }
        prop_assert_eq!(cart.net_total.minor() + cart.tax_total.minor(), cart.total.minor());
        let breakdown: i64 = cart.taxes.iter().map(|t| t.amount.minor()).sum();
        prop_assert_eq!(breakdown, cart.tax_total.minor());
    }

    #[test]
    fn a_full_return_of_any_sale_nets_to_zero(
        (code, spec, cart_pct) in arb_basket(),
        steps in 1_usize..4,
        all_cash in any::<bool>(),
    ) {
        let j = presets::jurisdiction(&code).unwrap();
        let lines = build_lines(&j, &spec);
        let discount = cart_pct.map(|p| Discount::Percent(Percent::new(Decimal::from(p)).unwrap()));
        let cart = price_cart(&j, &lines, discount, NOW).unwrap();
        // Cash in whole notes, which every jurisdiction's coins make.
        let pay = Money::from_minor((cart.total.minor() / 100 + 11) * 100, j.currency());
        let tender = if all_cash { cash(pay) } else {
            Tender { kind: TenderKind::Card, amount: cart.total.max_with(Money::from_minor(1, j.currency())), reference: None }
        };
        let Ok(settlement) = settle(&cart, &[tender], j.cash_rounding()) else {
            // A zero-total card sale cannot be tendered; nothing to return.
            return Ok(());
        };
        // Return every line in `steps` parts: the refunds add up to what was paid.
        let mut returned = vec![0_i64; cart.lines.len()];
        let mut refunded = 0_i64;
        let mut taxes_refunded = 0_i64;
        for step in 0..steps {
            let mut request = Vec::new();
            for (i, l) in cart.lines.iter().enumerate() {
                let left = l.quantity.milli() - returned[i];
                let take = if step + 1 == steps { left } else { left / 2 };
                if take > 0 {
                    request.push((i, Quantity::from_milli(take).unwrap()));
                }
            }
            if request.is_empty() { continue; }
            let r = price_return(&cart, &settlement, &returned, &request).unwrap();
            for rl in &r.lines {
                returned[rl.sale_line] += rl.quantity.milli();
                let tax: i64 = rl.taxes.iter().map(|t| t.amount.minor()).sum();
                prop_assert_eq!(rl.net.minor() + tax, rl.gross.minor());
                taxes_refunded += tax;
            }
            refunded += r.refund.minor();
        }
        prop_assert_eq!(refunded, settlement.due.minor());
        prop_assert_eq!(taxes_refunded, cart.tax_total.minor());
    }
}
