//! Receipts end to end: a priced sale or return in, a document out, encoded as ESC/POS and read
//! back with the decoder, compared with the expected lines and snapshots of the paper text.
#![allow(clippy::unwrap_used)]

use domain::catalog::{Sku, TaxCategory};
use domain::presets;
use domain::quantity::{Quantity, UnitOfSale};
use domain::sale::{
    Discount, LineInput, Percent, PricedCart, Tender, TenderKind, price_cart, price_return, settle,
};
use domain::time::Timestamp;
use domain::{Currency, Money};
use printer::document::{Line, room};
use printer::escpos::{self, Decoded};
use printer::html::render_html;
use printer::locale::{LocalDateTime, Locale, format_amount, format_money};
use printer::receipt::{
    Layout, ReceiptBody, ReceiptCode, ReceiptData, ReturnReceipt, SaleReceipt, StoreHeader,
    receipt_document,
};
use printer::{Document, Labels, Paper, render_text};

fn line(
    currency: Currency,
    sku: &str,
    name: &str,
    price: i64,
    qty: &str,
    unit: UnitOfSale,
    cat: &str,
) -> LineInput {
    LineInput {
        sku: Sku::parse(sku).unwrap(),
        name: name.to_owned(),
        unit_price: Money::from_minor(price, currency),
        quantity: Quantity::parse(qty).unwrap(),
        unit,
        tax_category: TaxCategory::parse(cat).unwrap(),
        discount: None,
        fixed_amount: None,
    }
}

fn at() -> Timestamp {
    Timestamp::from_millis(1_790_000_000_000)
}

fn when() -> LocalDateTime {
    LocalDateTime::new(2026, 11, 23, 10, 15).unwrap()
}

fn cash(minor: i64, currency: Currency) -> Tender {
    Tender {
        kind: TenderKind::Cash,
        amount: Money::from_minor(minor, currency),
        reference: None,
    }
}

/// The basket of the domain crate's receipt snapshot (Zürich, cash with rounding and change).
fn zurich_sale() -> SaleReceipt {
    let ch = presets::jurisdiction("CH").unwrap();
    let c = ch.currency();
    let cart = price_cart(
        &ch,
        &[
            line(
                c,
                "BREAD",
                "Bauernbrot",
                420,
                "1",
                UnitOfSale::Each,
                "reduced",
            ),
            line(
                c,
                "CHEESE",
                "Gruyère AOP",
                3290,
                "0.315",
                UnitOfSale::Weight,
                "reduced",
            ),
            line(c, "SOAP", "Seife", 395, "2", UnitOfSale::Each, "standard"),
        ],
        None,
        at(),
    )
    .unwrap();
    let tenders = vec![cash(3000, c)];
    let settlement = settle(&cart, &tenders, ch.cash_rounding()).unwrap();
    SaleReceipt {
        cart,
        tenders,
        settlement,
    }
}

fn zurich(body: ReceiptBody) -> ReceiptData {
    ReceiptData {
        store: StoreHeader {
            name: "Kassa Zürich HB".into(),
            address: vec!["Bahnhofplatz 1, 8001 Zürich".into()],
            tax_id: Some("CHE-123.456.789 MWST".into()),
            tax_registrations: Vec::new(),
        },
        number: "T1-000042".into(),
        terminal: Some("T1".into()),
        cashier: Some("Anna Muster".into()),
        when: when(),
        body,
        footer: vec!["Danke für Ihren Einkauf!".into()],
        copy: false,
        fiscal: None,
    }
}

/// A Vienna sale paid by card and cash: line and cart discounts, a long name.
fn vienna_cart() -> PricedCart {
    let at_ = presets::jurisdiction("AT").unwrap();
    let c = at_.currency();
    let mut wine = line(
        c,
        "WINE",
        "Grüner Veltliner Federspiel Wachau 0,75 l",
        1290,
        "3",
        UnitOfSale::Each,
        "standard",
    );
    wine.discount = Some(Discount::Percent(Percent::parse("10").unwrap()));
    price_cart(
        &at_,
        &[
            wine,
            line(
                c,
                "APPLES",
                "Äpfel Gala",
                249,
                "1.25",
                UnitOfSale::Weight,
                "reduced",
            ),
            line(
                c,
                "BAG",
                "Tragetasche",
                50,
                "1",
                UnitOfSale::Each,
                "standard",
            ),
        ],
        Some(Discount::Amount(Money::from_minor(200, c))),
        at(),
    )
    .unwrap()
}

fn vienna_sale() -> SaleReceipt {
    let cart = vienna_cart();
    let c = cart.currency;
    let tenders = vec![
        Tender {
            kind: TenderKind::Card,
            amount: Money::from_minor(2000, c),
            reference: Some("****1234".into()),
        },
        cash(5000, c),
    ];
    let settlement = settle(&cart, &tenders, None).unwrap();
    SaleReceipt {
        cart,
        tenders,
        settlement,
    }
}

fn vienna(body: ReceiptBody, number: &str) -> ReceiptData {
    ReceiptData {
        store: StoreHeader {
            name: "Kassa Wien Mitte".into(),
            address: vec!["Landstraßer Hauptstraße 1".into(), "1030 Wien".into()],
            tax_id: Some("ATU12345678".into()),
            tax_registrations: Vec::new(),
        },
        number: number.into(),
        terminal: Some("T2".into()),
        cashier: Some("Jürgen".into()),
        when: when(),
        body,
        footer: vec!["Umtausch binnen 14 Tagen mit Beleg.".into()],
        copy: false,
        fiscal: None,
    }
}

fn document(data: &ReceiptData, paper: Paper, tag: &str) -> Document {
    let layout = Layout::new(paper, Locale::parse(tag));
    receipt_document(data, &layout, Labels::for_tag(tag)).unwrap()
}

/// The decoded text lines, placed as on paper (alignment padding, trailing spaces trimmed).
fn decoded_text(decoded: &[Decoded], columns: usize) -> Vec<String> {
    decoded
        .iter()
        .filter_map(|d| match d {
            Decoded::Text { text, style } => Some(
                printer::document::positioned(text, *style, columns)
                    .trim_end()
                    .to_owned(),
            ),
            _ => None,
        })
        .collect()
}

#[test]
fn a_zurich_sale_on_58_mm_in_swiss_german() {
    let doc = document(
        &zurich(ReceiptBody::Sale(zurich_sale())),
        Paper::Mm58,
        "de-CH",
    );
    insta::assert_snapshot!(render_text(&doc));
}

#[test]
fn a_zurich_sale_on_80_mm_in_english() {
    let doc = document(
        &zurich(ReceiptBody::Sale(zurich_sale())),
        Paper::Mm80,
        "en-GB",
    );
    insta::assert_snapshot!(render_text(&doc));
}

#[test]
fn a_vienna_sale_with_discounts_on_80_mm() {
    let doc = document(
        &vienna(ReceiptBody::Sale(vienna_sale()), "T2-000007"),
        Paper::Mm80,
        "de-AT",
    );
    insta::assert_snapshot!(render_text(&doc));
}

#[test]
fn a_vienna_sale_with_discounts_on_58_mm() {
    let doc = document(
        &vienna(ReceiptBody::Sale(vienna_sale()), "T2-000007"),
        Paper::Mm58,
        "de-AT",
    );
    insta::assert_snapshot!(render_text(&doc));
}

#[test]
fn a_new_york_sale_shows_subtotal_and_sales_tax() {
    let ny = presets::jurisdiction("US-NY-NYC").unwrap();
    let c = ny.currency();
    let cart = price_cart(
        &ny,
        &[
            line(
                c,
                "MUG",
                "Coffee mug",
                1299,
                "2",
                UnitOfSale::Each,
                "standard",
            ),
            line(
                c,
                "SOCKS",
                "Socks",
                900,
                "1",
                UnitOfSale::Each,
                "clothing-exempt",
            ),
        ],
        None,
        at(),
    )
    .unwrap();
    let tenders = vec![cash(4000, c)];
    let settlement = settle(&cart, &tenders, ny.cash_rounding()).unwrap();
    let mut data = zurich(ReceiptBody::Sale(SaleReceipt {
        cart: cart.clone(),
        tenders,
        settlement,
    }));
    data.store = StoreHeader {
        name: "Kassa Broadway".into(),
        address: vec!["1 Broadway, New York, NY 10004".into()],
        tax_id: None,
        tax_registrations: Vec::new(),
    };
    data.footer = vec![];
    let doc = document(&data, Paper::Mm80, "en-US");
    let text = render_text(&doc);
    let en = Locale::parse("en-US");
    assert!(
        text.contains(&format!(
            "Subtotal{}",
            " ".repeat(48 - 8 - format_amount(cart.net_total, &en).len())
        )),
        "{text}"
    );
    assert!(text.contains(&format_money(cart.total, &en)), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn a_quebec_sale_prints_gst_and_qst_with_their_registration_numbers() {
    let qc = presets::jurisdiction("CA-QC").unwrap();
    let c = qc.currency();
    let cart = price_cart(
        &qc,
        &[line(
            c,
            "BOOK",
            "Livre",
            2495,
            "1",
            UnitOfSale::Each,
            "standard",
        )],
        None,
        at(),
    )
    .unwrap();
    let tenders = vec![cash(3000, c)];
    let settlement = settle(&cart, &tenders, qc.cash_rounding()).unwrap();
    let mut data = zurich(ReceiptBody::Sale(SaleReceipt {
        cart,
        tenders,
        settlement,
    }));
    data.store = StoreHeader {
        name: "Kassa Montréal".into(),
        address: vec!["1 rue Sainte-Catherine, Montréal".into()],
        tax_id: None,
        tax_registrations: vec![
            ("GST".into(), "123456789 RT0001".into()),
            ("QST".into(), "1234567890 TQ0001".into()),
        ],
    };
    let text = render_text(&document(&data, Paper::Mm80, "en-CA"));
    // Each tax with its amount and, under it, its registration number; 5 % of 24.95 = 1.2475
    // and 9.975 % = 2.4888 on the document, rounded half up.
    let after = |label: &str| {
        let at = text
            .find(label)
            .unwrap_or_else(|| panic!("{label} in {text}"));
        text[at..]
            .lines()
            .take(2)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(after("GST 5%")[0].ends_with("1.25"), "{text}");
    assert_eq!(after("GST 5%")[1].trim(), "No. 123456789 RT0001", "{text}");
    assert!(after("QST 9.975%")[0].ends_with("2.49"), "{text}");
    assert_eq!(
        after("QST 9.975%")[1].trim(),
        "No. 1234567890 TQ0001",
        "{text}"
    );
    // No rate table with a gross per tax, which would count the same 24.95 twice.
    assert!(!text.contains("Gross"), "{text}");
}

#[test]
fn a_return_prints_negative_amounts_and_the_original_receipt() {
    let sale = vienna_sale();
    let refund = price_return(
        &sale.cart,
        &sale.settlement,
        &[],
        &[
            (0, Quantity::each(2).unwrap()),
            (2, Quantity::each(1).unwrap()),
        ],
    )
    .unwrap();
    let c = refund.total.currency();
    assert_eq!(
        ReturnReceipt::names_from_cart(&refund, &sale.cart),
        [
            sale.cart.lines[0].name.clone(),
            sale.cart.lines[2].name.clone()
        ]
    );
    let ret = ReturnReceipt {
        original_receipt: Some("T2-000007".into()),
        reason: Some("Korken defekt".into()),
        tenders: vec![cash(refund.refund.minor(), c)],
        names: ReturnReceipt::names_from_cart(&refund, &sale.cart),
        refund: refund.clone(),
    };
    let data = vienna(ReceiptBody::Return(ret), "T2-R-000001");
    let doc = document(&data, Paper::Mm58, "de-AT");
    let text = render_text(&doc);
    let de = Locale::parse("de-AT");
    let refund_text = format_money(refund.total.checked_neg().unwrap(), &de);
    assert!(
        text.contains(&refund_text),
        "{refund_text} missing:\n{text}"
    );
    assert!(text.contains("Originalbeleg"), "{text}");
    assert!(text.contains("2 × Grüner Veltliner"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn escpos_bytes_decode_to_the_same_lines_as_the_text_receipt() {
    for (paper, tag) in [(Paper::Mm58, "de-CH"), (Paper::Mm80, "en-GB")] {
        let data = zurich(ReceiptBody::Sale(zurich_sale()));
        let doc = document(&data, paper, tag);
        let bytes = escpos::encode(&doc).unwrap();
        let decoded = escpos::decode(&bytes).unwrap();
        let text = render_text(&doc);
        // The text shows the barcode as `|number|` and the final feed as empty lines.
        let expected: Vec<&str> = text
            .trim_end()
            .lines()
            .filter(|l| l.trim() != format!("|{}|", data.number))
            .collect();
        let columns = paper.columns();
        assert_eq!(decoded_text(&decoded, columns), expected);
        // Paid in cash: the drawer opens first; the receipt number is the barcode; the paper
        // is cut last.
        assert_eq!(decoded.first(), Some(&Decoded::OpenDrawer));
        let barcodes: Vec<_> = decoded
            .iter()
            .filter_map(|d| match d {
                Decoded::Barcode { data } => Some(data.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(barcodes, ["T1-000042"]);
        assert_eq!(decoded.last(), Some(&Decoded::Cut));
        for d in &decoded {
            if let Decoded::Text { text, style } = d {
                assert!(
                    text.chars().count() <= room(columns, style.size),
                    "{text:?}"
                );
            }
        }
    }
}

#[test]
fn the_receipt_carries_the_figures_of_the_domain_receipt() {
    let sale = zurich_sale();
    let doc = document(
        &zurich(ReceiptBody::Sale(sale.clone())),
        Paper::Mm58,
        "de-CH",
    );
    let decoded = escpos::decode(&escpos::encode(&doc).unwrap()).unwrap();
    let text = decoded_text(&decoded, 32).join("\n");
    let ch = Locale::parse("de-CH");
    let amount = |m: Money| format_amount(m, &ch);
    // Each line ends with its amount and the letter of its rate; the tax table names the rate
    // of each letter.
    let letter = |rate| {
        let index = sale.cart.taxes.iter().position(|t| t.rate == rate).unwrap();
        char::from(b'A' + u8::try_from(index).unwrap())
    };
    for l in &sale.cart.lines {
        let row = text.lines().find(|t| t.starts_with(&l.name)).unwrap();
        let mark = letter(l.taxes[0].rate);
        assert!(
            row.ends_with(&format!("{} {mark}", amount(l.extended))),
            "{row}"
        );
    }
    for t in &sale.cart.taxes {
        let row = text
            .lines()
            .find(|r| {
                r.starts_with(&format!(
                    "{} {}",
                    letter(t.rate),
                    printer::locale::format_rate(t.rate, &ch)
                ))
            })
            .unwrap();
        assert!(
            row.contains(&amount(t.base)) && row.contains(&amount(t.amount)),
            "{row}"
        );
    }
    let s = &sale.settlement;
    let find = |label: &str| {
        text.lines()
            .find(|r| r.starts_with(label))
            .unwrap()
            .to_owned()
    };
    assert!(find("SUMME").ends_with(&format_money(s.total, &ch)));
    assert!(find("Rundung").ends_with(&amount(s.cash_rounding)));
    assert!(find("Zu zahlen").ends_with(&format_money(s.due, &ch)));
    assert!(find("Bar").ends_with(&amount(s.tendered)));
    assert!(find("Rückgeld").ends_with(&format_money(s.change, &ch)));
    assert!(text.contains("23.11.2026 10:15"));
    assert!(text.contains("Kassierer"));
}

#[test]
fn a_card_only_sale_leaves_the_drawer_shut_and_can_print_a_qr_code() {
    let cart = vienna_cart();
    let tenders = vec![Tender {
        kind: TenderKind::Card,
        amount: cart.total,
        reference: None,
    }];
    let settlement = settle(&cart, &tenders, None).unwrap();
    let data = vienna(
        ReceiptBody::Sale(SaleReceipt {
            cart,
            tenders,
            settlement,
        }),
        "T2-000008",
    );
    let mut layout = Layout::new(Paper::Mm80, Locale::parse("de-AT"));
    layout.code = ReceiptCode::Qr;
    let doc = receipt_document(&data, &layout, Labels::for_tag("de")).unwrap();
    let decoded = escpos::decode(&escpos::encode(&doc).unwrap()).unwrap();
    assert!(!decoded.contains(&Decoded::OpenDrawer));
    assert!(decoded.contains(&Decoded::Qr {
        data: "T2-000008".into()
    }));
    assert!(!decoded.iter().any(|d| matches!(d, Decoded::Barcode { .. })));
    let html = render_html(&doc);
    assert!(html.contains("<svg"), "{html}");
}

#[test]
fn a_long_name_wraps_and_keeps_its_amount_on_the_first_line() {
    let doc = document(
        &vienna(ReceiptBody::Sale(vienna_sale()), "T2-000007"),
        Paper::Mm58,
        "de-AT",
    );
    let lines: Vec<String> = doc
        .lines()
        .into_iter()
        .filter_map(|l| match l {
            Line::Text { text, .. } => Some(text),
            _ => None,
        })
        .collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("Grüner Veltliner"))
        .unwrap();
    assert!(lines[at].ends_with("38,70 B"), "{}", lines[at]);
    assert_eq!(lines[at].chars().count(), 32);
    assert_eq!(lines[at + 1], "Federspiel Wachau 0,75 l");
    assert!(
        lines[at + 2].starts_with("  3 × 12,90"),
        "{}",
        lines[at + 2]
    );
}

#[test]
fn the_html_preview_escapes_names() {
    let mut sale = zurich_sale();
    sale.cart.lines[0].name = "<script>alert(1)</script>".into();
    let doc = document(&zurich(ReceiptBody::Sale(sale)), Paper::Mm80, "de-CH");
    let html = render_html(&doc);
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("Kassa Zürich HB"));
}

#[test]
fn a_reprint_is_marked_as_a_copy_and_keeps_the_drawer_shut() {
    let mut data = zurich(ReceiptBody::Sale(zurich_sale()));
    data.copy = true;
    let doc = document(&data, Paper::Mm58, "de-CH");
    let decoded = escpos::decode(&escpos::encode(&doc).unwrap()).unwrap();
    assert!(!decoded.contains(&Decoded::OpenDrawer));
    assert!(decoded.iter().any(|d| matches!(
        d,
        Decoded::Text { text, style } if text == "KOPIE" && style.bold && style.size == printer::Size::Double
    )));
    let original = document(
        &zurich(ReceiptBody::Sale(zurich_sale())),
        Paper::Mm58,
        "de-CH",
    );
    assert!(!render_text(&original).contains("KOPIE"));
}

#[test]
fn the_html_preview_of_a_receipt() {
    let doc = document(
        &zurich(ReceiptBody::Sale(zurich_sale())),
        Paper::Mm58,
        "de-CH",
    );
    insta::assert_snapshot!(render_html(&doc));
}

#[test]
fn a_gift_card_tender_prints_only_the_last_four_of_its_number() {
    let cart = vienna_cart();
    let number = "GC7Q2KX9M4TB1ZP";
    let tenders = vec![
        Tender {
            kind: TenderKind::GiftCard,
            amount: Money::from_minor(1000, cart.currency),
            reference: Some(number.into()),
        },
        cash(5000, cart.currency),
    ];
    let settlement = settle(&cart, &tenders, None).unwrap();
    let data = vienna(
        ReceiptBody::Sale(SaleReceipt {
            cart,
            tenders,
            settlement,
        }),
        "T2-000009",
    );
    let doc = document(&data, Paper::Mm80, "en-GB");
    let text = render_text(&doc);
    let decoded = escpos::decode(&escpos::encode(&doc).unwrap()).unwrap();
    let paper = decoded_text(&decoded, 48).join("\n");
    let html = render_html(&doc);
    for (what, shown) in [("text", &text), ("ESC/POS", &paper), ("HTML", &html)] {
        assert!(
            !shown.contains(number),
            "{what} shows the whole number:\n{shown}"
        );
        assert!(
            !shown.contains("GC7Q2K"),
            "{what} shows the number's start:\n{shown}"
        );
        assert!(
            shown.contains("**** B1ZP"),
            "{what} lacks the last four:\n{shown}"
        );
    }
    insta::assert_snapshot!(text);
}

/// A Zürich return of the cheese with cash rounding: what a simplified invoice needs, in German
/// and English.
fn zurich_return() -> ReceiptData {
    let sale = zurich_sale();
    let priced = price_return(
        &sale.cart,
        &sale.settlement,
        &[],
        &[(1, Quantity::parse("0.315").unwrap())],
    )
    .unwrap();
    let ch = presets::jurisdiction("CH").unwrap();
    let refund = domain::sale::pay_out_refund(
        priced,
        TenderKind::Cash,
        ch.cash_rounding(),
        Money::zero(ch.currency()),
    )
    .unwrap()
    .refund;
    assert!(!refund.cash_rounding.is_zero(), "the test needs rounding");
    let c = refund.total.currency();
    let mut data = zurich(ReceiptBody::Return(ReturnReceipt {
        original_receipt: Some("T1-000042".into()),
        reason: None,
        tenders: vec![cash(refund.refund.minor(), c)],
        names: ReturnReceipt::names_from_cart(&refund, &sale.cart),
        refund,
    }));
    data.number = "T1-R-000001".into();
    data
}

#[test]
fn a_return_receipt_says_refund_never_due_in_german() {
    let text = render_text(&document(&zurich_return(), Paper::Mm80, "de-CH"));
    assert!(!text.contains("Zu zahlen"), "{text}");
    assert!(text.contains("ERSTATTUNG"), "{text}");
    assert!(text.contains("MWST"), "the seller's VAT number:\n{text}");
    assert!(
        !text.contains("VAT"),
        "tax named in the receipt's language:\n{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn a_return_receipt_says_refund_never_due_in_english() {
    let text = render_text(&document(&zurich_return(), Paper::Mm80, "en-GB"));
    assert!(!text.contains("Due"), "{text}");
    assert!(text.contains("REFUND"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn tax_is_named_in_the_receipts_language() {
    assert_eq!(Labels::for_tag("de").tax_code("VAT"), "MwSt.");
    assert_eq!(Labels::for_tag("en").tax_code("VAT"), "VAT");
    assert_eq!(Labels::for_tag("de").tax_code("QST"), "QST");
}
