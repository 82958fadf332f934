//! Every reader on the shared sample exports and on test files with each format's quirks:
//! continuation rows, scientific-notation barcodes, currency symbols, BOM, ISO-8859-1, UTF-16
//! and quoted newlines.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use import::normalize::BarcodeCheck;
use import::{Format, Mapping, SourceOptions, SourceRead};

/// A real export kept in `tests/data/samples` (see the README there for where each came from).
fn shared(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/samples")
        .join(name)
}

fn local(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read(path: PathBuf, format: Format, mapping: Option<&Mapping>) -> SourceRead {
    let file = std::fs::File::open(&path).unwrap();
    let mut options = SourceOptions::new(format.as_str(), &path.display().to_string(), format);
    if let Some(m) = mapping {
        if let Some(c) = m.currency {
            options.currency = c;
        }
        if let Some(d) = m.decimal {
            options.decimal = d;
        }
    }
    import::read(file, &options, mapping)
}

fn headers_format(path: PathBuf) -> Option<Format> {
    import::sniff(std::fs::File::open(path).unwrap(), import::Encoding::Utf8).unwrap()
}

fn codes(r: &SourceRead) -> Vec<(&'static str, u64)> {
    r.diagnostics.iter().map(|d| (d.code, d.line)).collect()
}

#[test]
fn shopify_template_groups_by_handle_and_flags_every_scientific_barcode() {
    let path = shared("shopify_product_template.csv");
    assert_eq!(headers_format(path.clone()), Some(Format::Shopify));
    let r = read(path, Format::Shopify, None);
    assert_eq!(r.rows, 17);
    // 12 shirts, 3 jeans, 1 beanie; the image-only row is not an item.
    assert_eq!(r.items.len(), 16);
    let products: std::collections::BTreeSet<&str> =
        r.items.iter().map(|i| i.product_key.as_str()).collect();
    assert_eq!(products.len(), 3);
    let second = &r.items[1];
    assert_eq!(second.product_title, "Example T-Shirt");
    assert_eq!(second.product_line, 2);
    assert_eq!(second.line, 3);
    assert_eq!(
        second.options,
        vec![
            ("Color".to_owned(), "Green".to_owned()),
            ("Size".to_owned(), "M".to_owned())
        ]
    );
    assert_eq!(second.sku.as_deref(), Some("SRT_COT_122"));
    assert_eq!(second.price.unwrap().minor(), 2500);
    // Every barcode was destroyed by a spreadsheet: flagged, never repaired.
    assert!(r.items.iter().all(|i| i.gtin().is_none()));
    let scientific = r
        .diagnostics
        .iter()
        .filter(|d| d.code == "barcode-scientific")
        .count();
    assert_eq!(scientific, 16);
    let d = r
        .diagnostics
        .iter()
        .find(|d| d.code == "barcode-scientific")
        .unwrap();
    assert_eq!(d.line, 2);
    assert_eq!(d.column.as_deref(), Some("Variant Barcode"));
    assert!(d.to_string().contains("3.65275E+11"), "{d}");
    let jeans = r
        .items
        .iter()
        .find(|i| i.sku.as_deref() == Some("PNT_DEN_285"))
        .unwrap();
    assert_eq!(jeans.weight_grams.unwrap().to_string(), "226.796185");
    assert_eq!(jeans.active, Some(false));
    let hat = r.items.last().unwrap();
    assert!(hat.options.is_empty(), "`Default Title` is no option");
    assert_eq!(hat.price.unwrap().minor(), 1799);
}

#[test]
fn shopify_friendly_dialect_with_continuation_rows_and_a_bad_check_digit() {
    let path = local("shopify-friendly.csv");
    assert_eq!(headers_format(path.clone()), Some(Format::Shopify));
    let r = read(path, Format::Shopify, None);
    let skus: Vec<&str> = r.items.iter().filter_map(|i| i.sku.as_deref()).collect();
    assert_eq!(skus, ["CT-S", "CT-M", "OR-1", "BN-1"]);
    let small = &r.items[0];
    assert_eq!(small.price.unwrap().minor(), 101_900);
    assert_eq!(
        small.gtin().unwrap().to_gtin14(),
        "00036000291452".to_owned()
    );
    assert_eq!(small.stock[0].quantity.to_string(), "5");
    let medium = &r.items[1];
    assert_eq!(medium.product_title, "Cotton Tee");
    assert_eq!(medium.options[0], ("Size".to_owned(), "M".to_owned()));
    assert!(matches!(
        medium.barcodes[0].1,
        BarcodeCheck::BadCheckDigit(_)
    ));
    assert!(codes(&r).contains(&("barcode-check-digit", 4)));
    // The orphan's first row has no title: the handle stands in, with a warning.
    assert_eq!(r.items[2].product_title, "orphan");
    assert!(codes(&r).contains(&("title-missing", 6)));
    assert!(codes(&r).contains(&("barcode-scientific", 7)));
}

#[test]
fn woocommerce_sample_variations_inherit_from_their_parent() {
    let path = shared("woocommerce_sample_products.csv");
    assert_eq!(headers_format(path.clone()), Some(Format::WooCommerce));
    let r = read(path, Format::WooCommerce, None);
    // 25 rows: 2 variable parents, 1 grouped and 1 external are not sellable themselves.
    assert_eq!(r.rows, 25);
    assert_eq!(r.items.len(), 21);
    let red = r
        .items
        .iter()
        .find(|i| i.sku.as_deref() == Some("woo-hoodie-red"))
        .unwrap();
    assert_eq!(red.product_title, "Hoodie");
    assert_eq!(red.product_key, "woo-hoodie");
    assert_eq!(red.category.as_deref(), Some("Clothing > Hoodies"));
    assert_eq!(red.price.unwrap().minor(), 4500);
    assert_eq!(
        red.options,
        vec![
            ("Color".to_owned(), "Red".to_owned()),
            ("Logo".to_owned(), "No".to_owned())
        ]
    );
    let album = r
        .items
        .iter()
        .find(|i| i.sku.as_deref() == Some("woo-album"))
        .unwrap();
    assert_eq!(album.product_title, "Album");
    let codes = codes(&r);
    assert!(codes.iter().filter(|c| c.0 == "not-sellable").count() == 2);
    let weighted = r
        .items
        .iter()
        .find(|i| i.sku.as_deref() == Some("woo-hoodie-with-logo"))
        .unwrap();
    // 2 lbs in grams, exactly.
    assert_eq!(weighted.weight_grams.unwrap().to_string(), "907.18474");
}

#[test]
fn older_woocommerce_layout_reads_with_metric_units() {
    let r = read(
        shared("classic-commerce_sample_products.csv"),
        Format::WooCommerce,
        None,
    );
    assert_eq!(r.rows, 24);
    let tee = r
        .items
        .iter()
        .find(|i| i.sku.as_deref() == Some("cc-t-shirt-blue"))
        .unwrap();
    assert_eq!(tee.product_title, "T-Shirt");
    assert_eq!(tee.price.unwrap().minor(), 2500);
}

#[test]
fn woocommerce_gtin_column_id_parents_and_compound_types() {
    let r = read(local("woo-gtin.csv"), Format::WooCommerce, None);
    let skus: Vec<&str> = r.items.iter().filter_map(|i| i.sku.as_deref()).collect();
    assert_eq!(skus, ["mug-red", "mug-blue", "voucher"]);
    let red = &r.items[0];
    assert_eq!(red.product_title, "Mug");
    assert_eq!(red.tax_classes, ["reduced-rate"]);
    assert_eq!(red.gtin().unwrap().as_str(), "4006381333931");
    assert_eq!(red.category.as_deref(), Some("Home > Kitchen"));
    assert_eq!(red.weight_grams.unwrap().to_string(), "350");
    assert_eq!(r.items[1].price.unwrap().minor(), 950);
    assert_eq!(r.items[2].taxable, Some(false));
    let codes = codes(&r);
    assert!(codes.contains(&("parent-unknown", 5)), "{codes:?}");
    assert!(codes.contains(&("not-sellable", 7)), "{codes:?}");
}

#[test]
fn odoo_template_reads_references_and_prices() {
    let path = shared("odoo_product.template.csv");
    assert_eq!(headers_format(path.clone()), Some(Format::Odoo));
    let r = read(path, Format::Odoo, None);
    assert_eq!(r.items.len(), 3);
    let laptop = &r.items[1];
    assert_eq!(laptop.legacy_id.as_deref(), Some("product_template_2"));
    assert_eq!(laptop.sku.as_deref(), Some("DELL15"));
    assert_eq!(laptop.price.unwrap().minor(), 249_900);
    assert_eq!(laptop.cost.unwrap().minor(), 164_300);
    assert_eq!(r.items[0].price.unwrap().minor(), 2999);
    assert_eq!(r.items[2].sku, None);
    assert_eq!(
        r.diagnostics
            .iter()
            .map(|d| (d.code, d.column.as_deref()))
            .collect::<Vec<_>>(),
        [("not-imported", Some("Sale Description"))]
    );
}

#[test]
fn square_reads_currency_symbols_locations_taxes_and_multiline_html() {
    let path = local("square.csv");
    assert_eq!(headers_format(path.clone()), Some(Format::Square));
    let mut r = read(path, Format::Square, None);
    assert_eq!(r.rows, 5);
    let machine = r.items.remove(0);
    assert_eq!(machine.price.unwrap().minor(), 425_000);
    assert_eq!(machine.cost.unwrap().minor(), 210_050);
    assert_eq!(machine.legacy_id.as_deref(), Some("TKN1A"));
    assert_eq!(machine.tax_classes, ["VAT"]);
    assert_eq!(machine.tax_rates[0].to_string(), "20");
    assert_eq!(machine.taxable, Some(true));
    assert!(machine.options.is_empty());
    let stock: Vec<(String, String)> = machine
        .stock
        .iter()
        .map(|s| (s.location.to_string(), s.quantity.to_string()))
        .collect();
    // Leeds has a `New Quantity`, which wins over the current one.
    assert_eq!(
        stock,
        [("Soho".into(), "3".into()), ("Leeds".into(), "2".into())]
    );
    assert_eq!(machine.location_prices[1].price.minor(), 419_900);
    // The multi-line quoted description is one row: the next item starts at line 4.
    let beans = &r.items[0];
    assert_eq!(beans.line, 4);
    assert_eq!(beans.product_key, "Coffee Beans");
    assert_eq!(beans.options, [("Size".to_owned(), "250g".to_owned())]);
    assert_eq!(beans.tax_classes, ["Zero Rated"]);
    let kilo = &r.items[1];
    assert_eq!(kilo.product_line, 4);
    let codes = codes(&r);
    assert!(codes.contains(&("barcode-scientific", 5)), "{codes:?}");
    assert!(codes.contains(&("price-variable", 6)), "{codes:?}");
    assert!(codes.contains(&("price-invalid", 7)), "{codes:?}");
    let bad = r
        .diagnostics
        .iter()
        .find(|d| d.code == "price-invalid")
        .unwrap();
    assert_eq!(bad.column.as_deref(), Some("Price"));
    assert_eq!(r.items[3].active, Some(false));
}

#[test]
fn lightspeed_r_keeps_the_system_id_out_of_barcodes() {
    let path = local("lightspeed-r.csv");
    assert_eq!(headers_format(path.clone()), Some(Format::LightspeedR));
    let r = read(path, Format::LightspeedR, None);
    assert_eq!(r.items.len(), 3);
    let beans = &r.items[0];
    assert_eq!(beans.legacy_id.as_deref(), Some("210000000012"));
    assert_eq!(beans.barcodes.len(), 1, "only the UPC column is a barcode");
    assert_eq!(beans.gtin().unwrap().as_str(), "036000291452");
    assert_eq!(beans.sku.as_deref(), Some("LS-100"));
    assert_eq!(beans.price.unwrap().minor(), 890);
    assert_eq!(beans.cost.unwrap().minor(), 325);
    assert_eq!(beans.category.as_deref(), Some("Grocery > Coffee > Beans"));
    assert_eq!(beans.taxable, Some(true));
    let machine = &r.items[1];
    assert_eq!(machine.sku.as_deref(), Some("MFR-ESP"));
    assert_eq!(machine.price.unwrap().minor(), 425_000);
    assert_eq!(machine.cost.unwrap().minor(), 210_012);
    assert!(codes(&r).contains(&("price-rounded", 3)));
    assert_eq!(r.items[2].taxable, Some(false));
    assert!(r.items[2].barcodes.is_empty());
}

#[test]
fn lightspeed_x_groups_by_handle_and_reads_barcodes_from_sku() {
    let path = local("lightspeed-x.csv");
    assert_eq!(headers_format(path.clone()), Some(Format::LightspeedX));
    let r = read(path, Format::LightspeedX, None);
    assert_eq!(r.items.len(), 3);
    let small = &r.items[0];
    assert_eq!(small.gtin().unwrap().as_str(), "9300000000002");
    assert_eq!(small.options.len(), 2);
    assert_eq!(r.items[1].product_line, 2);
    assert!(
        r.items[1].barcodes.is_empty(),
        "a plain SKU is not a bad barcode"
    );
    assert_eq!(small.price.unwrap().minor(), 1990);
    assert_eq!(small.stock.len(), 2);
    assert_eq!(&*small.stock[0].location, "Main_Street");
    assert_eq!(r.items[2].active, Some(false));
    // The description is not imported, and the report says so per column.
    assert!(
        r.diagnostics
            .iter()
            .any(|d| d.code == "not-imported" && d.column.as_deref() == Some("description")),
        "{:?}",
        r.diagnostics
    );
    assert!(
        r.diagnostics.iter().all(|d| d.code == "not-imported"),
        "{:?}",
        r.diagnostics
    );
}

#[test]
fn loyverse_variants_follow_their_handle_with_store_prices() {
    let path = local("loyverse.csv");
    assert_eq!(headers_format(path.clone()), Some(Format::Loyverse));
    let r = read(path, Format::Loyverse, None);
    assert_eq!(r.items.len(), 3);
    let large = &r.items[1];
    assert_eq!(large.product_title, "Latte");
    assert_eq!(large.options, [("Size".to_owned(), "Large".to_owned())]);
    assert_eq!(large.price.unwrap().minor(), 410);
    assert_eq!(&*large.location_prices[1].location, "Airport");
    assert_eq!(large.location_prices[1].price.minor(), 490);
    assert_eq!(large.tax_classes, ["VAT"]);
    let bananas = &r.items[2];
    assert!(bananas.sold_by_weight);
    assert_eq!(bananas.stock[0].quantity.to_string(), "12.5");
}

#[test]
fn ospos_with_bom_reads_taxes_locations_and_attributes() {
    let path = local("ospos.csv");
    assert_eq!(headers_format(path.clone()), Some(Format::Ospos));
    let r = read(path, Format::Ospos, None);
    assert_eq!(r.items.len(), 2);
    let machine = &r.items[0];
    assert_eq!(machine.gtin().unwrap().as_str(), "4006381333931");
    assert_eq!(machine.price.unwrap().minor(), 425_000);
    assert_eq!(
        machine.options,
        [("Colour".to_owned(), "Silver".to_owned())]
    );
    assert_eq!(machine.stock.len(), 2);
    let towel = &r.items[1];
    assert_eq!(towel.sku.as_deref(), Some("INT-77"));
    assert_eq!(towel.tax_classes, ["VAT", "Eco"]);
    assert_eq!(towel.tax_rates[1].to_string(), "1.5");
    assert!(codes(&r).contains(&("barcode-not-gtin", 3)));
}

#[test]
fn a_mapped_iso_8859_1_file_with_decimal_commas() {
    let mapping =
        Mapping::parse(&std::fs::read_to_string(local("kasse-mapping.toml")).unwrap()).unwrap();
    assert_eq!(mapping.prices_include_tax, Some(true));
    let r = read(local("kasse-latin1.csv"), Format::Mapped, Some(&mapping));
    assert_eq!(r.items.len(), 3);
    assert_eq!(r.items[0].product_title, "Käse Gouda jung");
    assert_eq!(r.items[0].price.unwrap().minor(), 1290);
    assert_eq!(r.items[0].cost.unwrap().minor(), 750);
    assert_eq!(r.items[0].tax_classes, ["ermäßigt"]);
    assert_eq!(&*r.items[0].stock[0].location, "filiale-1");
    assert_eq!(r.items[1].product_title, "Müsli Crème");
    let codes = codes(&r);
    assert!(codes.contains(&("barcode-not-gtin", 4)), "{codes:?}");
    assert!(codes.contains(&("price-invalid", 4)), "{codes:?}");
    assert!(r.diagnostics.iter().all(|d| d.code != "encoding"));
}

#[test]
fn a_mapped_utf16_file_with_tabs() {
    let mapping =
        Mapping::parse(&std::fs::read_to_string(local("till-mapping.toml")).unwrap()).unwrap();
    let r = read(local("till-utf16.txt"), Format::Mapped, Some(&mapping));
    assert_eq!(r.items.len(), 1, "{:?}", r.diagnostics);
    let item = &r.items[0];
    assert_eq!(item.product_title, "Café Crème ☕");
    assert_eq!(item.price.unwrap().minor(), 123_450);
    assert_eq!(item.price.unwrap().currency().code(), "USD");
    assert_eq!(item.stock[0].quantity.to_string(), "3");
}

#[test]
fn a_mapping_file_with_an_unknown_field_is_refused_by_name() {
    let err = Mapping::parse("[columns]\n\"X\" = \"colour\"\n").unwrap_err();
    assert!(err.to_string().contains("`X` maps to `colour`"), "{err}");
    assert!(Mapping::parse("encoding = \"EBCDIC\"\n[columns]\n").is_err());
}

#[test]
fn undeclared_latin1_is_refused_before_reading_and_never_read_lossily() {
    let bytes = "SKU,Name,Barcode,Sales Price,Internal Reference,Product Type\nA,K\u{e4}se,,1,A,Consumable\n";
    let latin1: Vec<u8> = bytes.chars().map(|c| c as u8).collect();
    let options = SourceOptions::new("odoo", "odoo.csv", Format::Odoo);
    let r = import::read(std::io::Cursor::new(latin1.clone()), &options, None);
    assert_eq!(r.items.len(), 0);
    assert_eq!(codes(&r), [("encoding", 1)]);
    assert!(
        r.diagnostics[0]
            .reason
            .contains("not UTF-8 (line 2 has byte 0xE4)"),
        "{:?}",
        r.diagnostics
    );
    assert!(r.diagnostics[0].is_file_level());
    // Declared, the same bytes read as they were meant.
    let mut declared = options.clone();
    declared.encoding = Some(import::Encoding::Latin1);
    let r = import::read(std::io::Cursor::new(latin1), &declared, None);
    assert_eq!(r.items[0].product_title, "K\u{e4}se");
    // A bad byte past the part checked up front: that row is left out, never damaged.
    let mut late = b"SKU,Name,Barcode,Sales Price,Internal Reference,Product Type\n".to_vec();
    for n in 0..3000 {
        late.extend_from_slice(format!("S{n},Plain Item {n},,1,S{n},Consumable\n").as_bytes());
    }
    late.extend_from_slice(b"Z,K\xE4se,,1,Z,Consumable\n");
    let r = import::read(std::io::Cursor::new(late), &options, None);
    assert_eq!(r.items.len(), 3000);
    let encoding: Vec<_> = codes(&r)
        .into_iter()
        .filter(|c| c.0 == "encoding")
        .collect();
    assert_eq!(encoding, [("encoding", 3002)]);
    assert!(
        r.items
            .iter()
            .all(|i| !i.product_title.contains('\u{FFFD}'))
    );
}
