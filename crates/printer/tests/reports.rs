//! X and Z shift reports: snapshots of the paper text in English and German on both widths, and
//! the over/short line read back from the ESC/POS bytes.
#![allow(clippy::unwrap_used)]

use domain::Money;
use domain::sale::TenderKind;
use domain::tax::TaxRate;
use printer::escpos::{self, Decoded};
use printer::locale::{LocalDateTime, Locale};
use printer::receipt::{Layout, StoreHeader};
use printer::report::{
    CashCount, DenominationCount, ShiftReport, TaxTotal, TenderTotal, x_report_document,
    z_report_document,
};
use printer::{Labels, Paper, render_text};

fn eur(minor: i64) -> Money {
    Money::from_minor(minor, domain::Currency::EUR)
}

fn report() -> ShiftReport {
    ShiftReport {
        store: StoreHeader {
            name: "Kassa Wien Mitte".into(),
            address: vec!["Landstraßer Hauptstraße 1".into(), "1030 Wien".into()],
            tax_id: Some("ATU12345678".into()),
            tax_registrations: Vec::new(),
        },
        terminal: "T2".into(),
        shift: "S-2026-11-23-T2".into(),
        opened_by: "Jürgen".into(),
        opened_at: LocalDateTime::new(2026, 11, 23, 7, 55).unwrap(),
        closed_at: None,
        printed_at: LocalDateTime::new(2026, 11, 23, 13, 30).unwrap(),
        float: eur(15_000),
        cash_sales: eur(123_450),
        cash_refunds: eur(1_148),
        paid_in: eur(5_000),
        paid_out: eur(2_390),
        // 150.00 + 1234.50 − 11.48 + 50.00 − 23.90
        expected_cash: eur(139_912),
        sales_count: 87,
        returns_count: 1,
        voids_count: 2,
        // Gross 2451.78 − voids 21.48 − returns 11.48 = net 2418.82 = goods 2082.35 + tax
        // 336.47, and the tenders net (1223.02 + 1145.80 + 50.00) come to the same.
        sales_total: eur(245_178),
        voids_total: eur(2_148),
        returns_total: eur(1_148),
        goods_net: eur(208_235),
        tax_total: eur(33_647),
        rounding: eur(0),
        tenders: vec![
            TenderTotal {
                kind: TenderKind::Cash,
                sales: eur(123_450),
                refunds: eur(1_148),
            },
            TenderTotal {
                kind: TenderKind::Card,
                sales: eur(116_728),
                refunds: eur(2_148),
            },
            TenderTotal {
                kind: TenderKind::GiftCard,
                sales: eur(5_000),
                refunds: eur(0),
            },
        ],
        taxes: vec![
            TaxTotal {
                code: "VAT".into(),
                rate: TaxRate::parse_percent("10").unwrap(),
                net: eur(80_000),
                tax: eur(8_000),
            },
            TaxTotal {
                code: "VAT".into(),
                rate: TaxRate::parse_percent("20").unwrap(),
                net: eur(128_235),
                tax: eur(25_647),
            },
        ],
    }
}

fn closed() -> ShiftReport {
    let mut r = report();
    r.closed_at = Some(LocalDateTime::new(2026, 11, 23, 18, 2).unwrap());
    r.printed_at = LocalDateTime::new(2026, 11, 23, 18, 3).unwrap();
    r
}

fn count(short_by: i64) -> CashCount {
    // 1399.12 expected: 20 × 50, 15 × 20, 9 × 10, 4 × 2, 1 × 1, 12 × 0.01 = 1399.12
    let mut coins = vec![
        DenominationCount {
            value: eur(5_000),
            count: 20,
        },
        DenominationCount {
            value: eur(2_000),
            count: 15,
        },
        DenominationCount {
            value: eur(1_000),
            count: 9,
        },
        DenominationCount {
            value: eur(200),
            count: 4,
        },
        DenominationCount {
            value: eur(100),
            count: 1,
        },
        DenominationCount {
            value: eur(1),
            count: 12,
        },
    ];
    coins[5].count -= u32::try_from(short_by).unwrap();
    CashCount::by_denomination(domain::Currency::EUR, coins).unwrap()
}

fn layout(paper: Paper, tag: &str) -> Layout {
    Layout::new(paper, Locale::parse(tag))
}

#[test]
fn an_x_report_on_80_mm_in_english() {
    let doc = x_report_document(
        &report(),
        &layout(Paper::Mm80, "en-GB"),
        Labels::for_tag("en"),
    )
    .unwrap();
    insta::assert_snapshot!(render_text(&doc));
}

#[test]
fn an_x_report_on_58_mm_in_german() {
    let doc = x_report_document(
        &report(),
        &layout(Paper::Mm58, "de-AT"),
        Labels::for_tag("de"),
    )
    .unwrap();
    insta::assert_snapshot!(render_text(&doc));
}

#[test]
fn a_z_report_on_58_mm_in_german() {
    let doc = z_report_document(
        &closed(),
        &count(0),
        &layout(Paper::Mm58, "de-AT"),
        Labels::for_tag("de"),
    )
    .unwrap();
    insta::assert_snapshot!(render_text(&doc));
}

#[test]
fn a_z_report_on_80_mm_in_english() {
    let doc = z_report_document(
        &closed(),
        &count(0),
        &layout(Paper::Mm80, "en-GB"),
        Labels::for_tag("en"),
    )
    .unwrap();
    insta::assert_snapshot!(render_text(&doc));
}

#[test]
fn counted_denominations_add_up() {
    assert_eq!(count(0).total(), eur(139_912));
    assert_eq!(count(5).total(), eur(139_907));
    assert!(
        CashCount::by_denomination(
            domain::Currency::EUR,
            vec![DenominationCount {
                value: Money::from_minor(100, domain::Currency::CHF),
                count: 1
            }]
        )
        .is_err()
    );
}

fn last_bold_rows(paper: Paper, tag: &str, count: &CashCount) -> Vec<String> {
    let doc =
        z_report_document(&closed(), count, &layout(paper, tag), Labels::for_tag(tag)).unwrap();
    let decoded = escpos::decode(&escpos::encode(&doc).unwrap()).unwrap();
    assert_eq!(decoded.last(), Some(&Decoded::Cut));
    assert!(
        !decoded.contains(&Decoded::OpenDrawer),
        "a report does not open the drawer"
    );
    decoded
        .iter()
        .filter_map(|d| match d {
            Decoded::Text { text, style } if style.bold => Some(text.trim_end().to_owned()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_z_report_says_short_over_or_balanced() {
    let rows = last_bold_rows(Paper::Mm58, "de-AT", &count(5));
    assert_eq!(
        rows[rows.len() - 2],
        format!("Ist-Bestand{}1.399,07 €", " ".repeat(32 - 11 - 10))
    );
    assert_eq!(
        rows[rows.len() - 1],
        format!("Fehlbetrag{}-0,05 €", " ".repeat(32 - 10 - 7))
    );

    let over = CashCount::total_only(eur(140_000));
    let rows = last_bold_rows(Paper::Mm80, "en-GB", &over);
    assert_eq!(
        rows[rows.len() - 1],
        format!("Over{}€0.88", " ".repeat(48 - 4 - 5))
    );

    let rows = last_bold_rows(Paper::Mm80, "en-GB", &count(0));
    assert_eq!(
        rows[rows.len() - 1],
        format!("Difference{}€0.00", " ".repeat(48 - 10 - 5))
    );
}

#[test]
fn a_count_known_only_by_its_total_prints_no_denominations() {
    let doc = z_report_document(
        &closed(),
        &CashCount::total_only(eur(139_912)),
        &layout(Paper::Mm80, "en-GB"),
        Labels::for_tag("en"),
    )
    .unwrap();
    let text = render_text(&doc);
    assert!(!text.contains(" × "), "{text}");
    assert!(text.contains("Counted cash"), "{text}");
    let with = render_text(
        &z_report_document(
            &closed(),
            &count(0),
            &layout(Paper::Mm80, "en-GB"),
            Labels::for_tag("en"),
        )
        .unwrap(),
    );
    assert!(with.contains("  €50.00 × 20"), "{with}");
}
