//! Reference tax jurisdictions with their default rounding policies, each citing the rule it
//! follows. HQ publishes the chain's own rules; these are the documented defaults and the
//! fixtures of the golden-basket tests.
//!
//! | code | pricing | rounding | cash rounding |
//! |---|---|---|---|
//! | AT, DE, FR | inclusive | per document and rate, half up | none |
//! | GB | inclusive | per line, half up | none |
//! | CH | inclusive | per document, half up | 0.05 |
//! | SE | inclusive | per document, half up | 1.00 |
//! | DK | inclusive | per document, half up | 0.50 |
//! | CA-QC, CA-ON | exclusive | per document, half up | 0.05 |
//! | US-NY-NYC | exclusive | per document, half up | none |
//! | JP | inclusive | per document and rate, down | none |

use crate::catalog::TaxCategory;
use crate::money::{Currency, Money, RoundingMode};
use crate::tax::{
    CashRounding, Jurisdiction, PricingMode, RoundingLevel, RoundingPolicy, TaxComponent, TaxError,
    TaxRate, TaxRule,
};
use crate::time::Timestamp;

/// 2020-07-01 00:00 in Germany (CEST), when the temporary VAT cut began.
pub const DE_CUT_FROM: Timestamp = Timestamp::from_millis(1_593_554_400_000);
/// 2021-01-01 00:00 in Germany (CET), when it ended.
pub const DE_CUT_TO: Timestamp = Timestamp::from_millis(1_609_455_600_000);

/// A rule as written in this file: category, components (code, percent, compound), validity.
type RuleSpec<'a> = (
    &'a str,
    Vec<(&'a str, &'a str, bool)>,
    Option<Timestamp>,
    Option<Timestamp>,
);

struct Spec<'a> {
    code: &'a str,
    currency: Currency,
    pricing: PricingMode,
    level: RoundingLevel,
    mode: RoundingMode,
    cash: Option<i64>,
    rules: Vec<RuleSpec<'a>>,
}

fn build(spec: Spec<'_>) -> Result<Jurisdiction, TaxError> {
    let mut rules = Vec::new();
    for (category, components, from, to) in spec.rules {
        let category = TaxCategory::parse(category).map_err(|_| TaxError::BadCode {
            value: category.to_owned(),
        })?;
        let components = components
            .into_iter()
            .map(|(code, percent, compound)| {
                TaxComponent::new(code, TaxRate::parse_percent(percent)?, compound)
            })
            .collect::<Result<Vec<_>, _>>()?;
        rules.push(TaxRule {
            category,
            components,
            from: from.unwrap_or(Timestamp::from_millis(i64::MIN)),
            to,
        });
    }
    let cash = spec
        .cash
        .map(|minor| CashRounding::new(Money::from_minor(minor, spec.currency)))
        .transpose()?;
    Jurisdiction::new(
        spec.code,
        spec.currency,
        spec.pricing,
        RoundingPolicy {
            mode: spec.mode,
            level: spec.level,
        },
        cash,
        rules,
    )
}

fn vat(
    code: &str,
    currency: Currency,
    level: RoundingLevel,
    cash: Option<i64>,
    rates: &[(&'static str, &'static str)],
) -> Result<Jurisdiction, TaxError> {
    let mut rules: Vec<_> = rates
        .iter()
        .map(|(category, percent)| (*category, vec![("VAT", *percent, false)], None, None))
        .collect();
    // Exempt supplies carry no tax line at all (unlike zero-rated ones).
    rules.push(("exempt", vec![], None, None));
    build(Spec {
        code,
        currency,
        pricing: PricingMode::Inclusive,
        level,
        mode: RoundingMode::HalfUp,
        cash,
        rules,
    })
}

/// The codes of every preset.
pub const CODES: [&str; 11] = [
    "AT",
    "DE",
    "FR",
    "GB",
    "CH",
    "SE",
    "DK",
    "CA-QC",
    "CA-ON",
    "US-NY-NYC",
    "JP",
];

/// The preset jurisdiction with this code.
pub fn jurisdiction(code: &str) -> Option<Jurisdiction> {
    let built = match code {
        // Austria, UStG 1994 §10: 20 % standard, 10 % (food, books), 13 % (plants, culture).
        "AT" => vat(
            "AT",
            Currency::EUR,
            RoundingLevel::Document,
            None,
            &[
                ("standard", "20"),
                ("reduced", "10"),
                ("reduced2", "13"),
                ("zero", "0"),
            ],
        ),
        // Germany, UStG §12: 19 % and 7 %, with the temporary 16 % and 5 % from 2020-07-01 to
        // 2020-12-31 (Zweites Corona-Steuerhilfegesetz). Tax per rate on the document total
        // (UStAE 14.5 (19)).
        "DE" => {
            let mut rules = Vec::new();
            for (category, normal, cut) in [("standard", "19", "16"), ("reduced", "7", "5")] {
                rules.push((
                    category,
                    vec![("VAT", normal, false)],
                    None,
                    Some(DE_CUT_FROM),
                ));
                rules.push((
                    category,
                    vec![("VAT", cut, false)],
                    Some(DE_CUT_FROM),
                    Some(DE_CUT_TO),
                ));
                rules.push((
                    category,
                    vec![("VAT", normal, false)],
                    Some(DE_CUT_TO),
                    None,
                ));
            }
            rules.push(("zero", vec![("VAT", "0", false)], None, None));
            rules.push(("exempt", vec![], None, None));
            build(Spec {
                code: "DE",
                currency: Currency::EUR,
                pricing: PricingMode::Inclusive,
                level: RoundingLevel::Document,
                mode: RoundingMode::HalfUp,
                cash: None,
                rules,
            })
        }
        // France, CGI art. 278 ff.: 20 %, 10 %, 5.5 % (food), 2.1 % (press, medicines).
        "FR" => vat(
            "FR",
            Currency::EUR,
            RoundingLevel::Document,
            None,
            &[
                ("standard", "20"),
                ("reduced", "5.5"),
                ("reduced2", "10"),
                ("super-reduced", "2.1"),
                ("zero", "0"),
            ],
        ),
        // United Kingdom: 20 %, 5 %, 0 %; HMRC VAT Notice 700 §17.5 lets a retailer compute VAT
        // per line, rounded to the nearest penny.
        "GB" => vat(
            "GB",
            Currency::GBP,
            RoundingLevel::Line,
            None,
            &[("standard", "20"), ("reduced", "5"), ("zero", "0")],
        ),
        // Switzerland, MWSTG Art. 25 from 2024-01-01: 8.1 %, 2.6 % (food), 3.8 % (lodging).
        // Cash totals are rounded to 5 Rappen, the smallest coin in circulation.
        "CH" => vat(
            "CH",
            Currency::CHF,
            RoundingLevel::Document,
            Some(5),
            &[
                ("standard", "8.1"),
                ("reduced", "2.6"),
                ("lodging", "3.8"),
                ("zero", "0"),
            ],
        ),
        // Sweden, ML 9 kap.: 25 %, 12 % (food), 6 % (books, transport). Öre coins were withdrawn
        // in 2010; cash totals are rounded to the whole krona (Riksbank, "avrundning").
        "SE" => vat(
            "SE",
            Currency::SEK,
            RoundingLevel::Document,
            Some(100),
            &[
                ("standard", "25"),
                ("reduced", "12"),
                ("reduced2", "6"),
                ("zero", "0"),
            ],
        ),
        // Denmark, momsloven §33: one 25 % rate. The smallest coin is 50 øre, so cash totals
        // are rounded to the nearest 0.50 (bekendtgørelse om afrunding).
        "DK" => vat(
            "DK",
            Currency::DKK,
            RoundingLevel::Document,
            Some(50),
            &[("standard", "25"), ("zero", "0")],
        ),
        // Quebec: GST 5 % (Excise Tax Act) plus QST 9.975 % (since 2013 levied on the price
        // alone, not compounded on GST); basic groceries zero-rated. Canada stopped issuing
        // the cent in 2013: cash totals are rounded to 5 cents.
        "CA-QC" => build(Spec {
            code: "CA-QC",
            currency: Currency::CAD,
            pricing: PricingMode::Exclusive,
            level: RoundingLevel::Document,
            mode: RoundingMode::HalfUp,
            cash: Some(5),
            rules: vec![
                (
                    "standard",
                    vec![("GST", "5", false), ("QST", "9.975", false)],
                    None,
                    None,
                ),
                (
                    "zero",
                    vec![("GST", "0", false), ("QST", "0", false)],
                    None,
                    None,
                ),
                ("exempt", vec![], None, None),
            ],
        }),
        // Ontario: harmonized sales tax 13 % (5 % federal + 8 % provincial); children's
        // clothing carries only the federal part through the point-of-sale rebate.
        "CA-ON" => build(Spec {
            code: "CA-ON",
            currency: Currency::CAD,
            pricing: PricingMode::Exclusive,
            level: RoundingLevel::Document,
            mode: RoundingMode::HalfUp,
            cash: Some(5),
            rules: vec![
                ("standard", vec![("HST", "13", false)], None, None),
                ("children", vec![("HST", "5", false)], None, None),
                ("zero", vec![("HST", "0", false)], None, None),
                ("exempt", vec![], None, None),
            ],
        }),
        // New York City: 8.875 % combined (4 % state, 4.5 % city, 0.375 % MCTD), added at the
        // till and rounded to the cent (NYS Publication 718); clothing and footwear under
        // $110 an item are exempt (Tax Law §1115(a)(30)); most groceries are exempt.
        "US-NY-NYC" => build(Spec {
            code: "US-NY-NYC",
            currency: Currency::USD,
            pricing: PricingMode::Exclusive,
            level: RoundingLevel::Document,
            mode: RoundingMode::HalfUp,
            cash: None,
            rules: vec![
                ("standard", vec![("SALES", "8.875", false)], None, None),
                ("clothing-exempt", vec![], None, None),
                ("food-exempt", vec![], None, None),
                ("exempt", vec![], None, None),
            ],
        }),
        // Japan: consumption tax 10 %, 8 % for food and drink taken away; prices are shown
        // tax-inclusive (total price display, since 2021) and the qualified invoice system
        // (2023) rounds tax once per rate per invoice; retailers commonly truncate.
        "JP" => build(Spec {
            code: "JP",
            currency: Currency::JPY,
            pricing: PricingMode::Inclusive,
            level: RoundingLevel::Document,
            mode: RoundingMode::Down,
            cash: None,
            rules: vec![
                ("standard", vec![("CT", "10", false)], None, None),
                ("reduced", vec![("CT", "8", false)], None, None),
                ("exempt", vec![], None, None),
            ],
        }),
        _ => return None,
    };
    // The presets are constants of this file; a failure would be a bug caught by the tests.
    built.ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_preset_builds() {
        for code in super::CODES {
            assert!(super::jurisdiction(code).is_some(), "{code}");
        }
        assert!(super::jurisdiction("XX").is_none());
    }
}
