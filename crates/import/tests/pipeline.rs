//! Profile, match, review file and canonical catalog across several sources: one product in
//! three sources under different SKUs with the same GTIN, a fuzzy suggestion accepted (and one
//! rejected) through the review file, precedence of title and price, provenance.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use import::canonical::{self, CanonicalOptions};
use import::matching::{self, MatchOptions, item_key};
use import::review::{Decision, Review};
use import::{Format, SourceOptions, SourceRead};

fn local(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn source(name: &str, file: &str, format: Format, gross: bool) -> SourceRead {
    let path = local(file);
    let mut options = SourceOptions::new(name, &path.display().to_string(), format);
    options.currency = domain::Currency::GBP;
    options.prices_include_tax = gross;
    import::read(std::fs::File::open(path).unwrap(), &options, None)
}

fn sources() -> Vec<SourceRead> {
    vec![
        source("square", "square.csv", Format::Square, true),
        source("lightspeed", "lightspeed-r.csv", Format::LightspeedR, true),
        source("ospos", "ospos.csv", Format::Ospos, false),
        source("odoo", "odoo-small.csv", Format::Odoo, true),
    ]
}

#[test]
fn profile_counts_barcodes_duplicates_and_price_anomalies() {
    let reads = sources();
    let p = import::profile::profile(&reads);
    let square = &p.sources[0];
    assert_eq!((square.rows, square.products, square.variants), (5, 4, 5));
    assert_eq!(square.barcodes.valid, 2);
    assert_eq!(square.barcodes.scientific, 1);
    assert_eq!(square.barcodes.missing, 2);
    assert_eq!(square.prices.missing, 2);
    let fill: std::collections::BTreeMap<_, _> = square.fill.iter().copied().collect();
    assert_eq!(fill["sku"], 5);
    assert_eq!(fill["barcode"], 3);
    // 4006381333931 is in square, lightspeed and ospos; 036000291452 in square and lightspeed.
    assert_eq!(p.barcodes_across_sources, 2);
    let ospos = &p.sources[2];
    assert_eq!(ospos.barcodes.not_gtin, 1);
}

#[test]
fn one_product_in_three_sources_under_different_skus_becomes_one_variant() {
    let reads = sources();
    let m = matching::match_items(&reads, &Review::default(), MatchOptions::default());
    let machine: Vec<_> = m
        .clusters
        .iter()
        .find(|c| c.len() == 3)
        .unwrap()
        .iter()
        .map(|r| {
            let item = r.get(&reads).unwrap();
            (
                reads[r.source as usize].options.name.clone(),
                item.sku.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        machine,
        [
            ("square".to_owned(), "ESP-DLX".to_owned()),
            ("lightspeed".to_owned(), "MFR-ESP".to_owned()),
            ("ospos".to_owned(), "4006381333931".to_owned())
        ]
    );
    // Beans merge on the UPC: square + lightspeed.
    assert_eq!(m.stats.by_gtin, 3);
    // 5 + 3 + 2 + 2 items in 12 - 3 merges = 9 clusters.
    assert_eq!(m.clusters.len(), 9);

    let mut options = CanonicalOptions {
        currency: domain::Currency::GBP,
        prices_include_tax: true,
        title_precedence: vec!["lightspeed".into()],
        price_precedence: vec!["ospos".into(), "square".into()],
        ..CanonicalOptions::default()
    };
    options.tax_map.insert("VAT".into(), "standard".into());
    options
        .tax_rates
        .insert("standard".into(), "20".parse().unwrap());
    options
        .tax_rates
        .insert("zero".into(), "0".parse().unwrap());
    options
        .locations
        .insert("square/Soho".into(), "london-01".into());
    options
        .locations
        .insert("ospos/Shop".into(), "london-01".into());
    options
        .locations
        .insert("square/Leeds".into(), "leeds-01".into());
    let catalog = canonical::build(&reads, &m, &options).unwrap();
    let v = catalog
        .variants
        .iter()
        .find(|v| v.members.len() == 3)
        .unwrap();
    // Lightspeed wins the title and its SKU becomes the global SKU.
    assert_eq!(v.sku.as_str(), "MFR-ESP");
    assert_eq!(v.name, "Espresso Machine");
    // OSPOS wins the price: 4250.00 net, converted to the chain's gross pricing at 20 %.
    assert_eq!(v.price.unwrap().minor(), 510_000);
    let provenance = v.provenance(&reads);
    let price_from = provenance.iter().find(|p| p.field == "price").unwrap();
    assert_eq!((price_from.source.as_str(), price_from.line), ("ospos", 2));
    // Square's Soho (London) and Leeds prices differ from the chain price OSPOS gave: store
    // prices.
    let stores: Vec<(&str, i64)> = v
        .store_prices
        .iter()
        .map(|s| (s.store.as_str(), s.price.minor()))
        .collect();
    assert_eq!(stores, [("london-01", 425_000), ("leeds-01", 419_900)]);
    let keys: Vec<String> = v.identifiers(&reads).iter().map(|i| i.key()).collect();
    assert_eq!(
        keys,
        [
            "gtin:04006381333931",
            "legacy:lightspeed:210000000029",
            "legacy:lightspeed-sku:MFR-ESP",
            "legacy:square:TKN1A",
            "legacy:square-sku:ESP-DLX",
            "legacy:ospos-sku:4006381333931",
        ]
    );
    let gtin_from = provenance
        .iter()
        .find(|p| p.field == "gtin:04006381333931")
        .unwrap();
    assert_eq!(gtin_from.system, "lightspeed-r");
    assert_eq!(gtin_from.legacy_id.as_deref(), Some("210000000029"));
    assert_eq!(v.tax.as_str(), "standard");
    // Stock: London gets Square's Soho count (the title winner, Lightspeed, has no mapped one).
    let london: Vec<_> = catalog
        .opening_counts
        .iter()
        .filter(|c| c.sku.as_str() == "MFR-ESP")
        .collect();
    assert_eq!(london.len(), 2);
    // Leeds: Square's `New Quantity` 2.
    assert_eq!(
        (london[1].location.as_str(), london[1].quantity.to_string()),
        ("leeds-01", "2".to_owned())
    );
    assert_eq!(london[0].quantity.to_string(), "3");
    assert_eq!(london[0].provenance(&reads).source, "square");
    assert!(
        catalog
            .diagnostics
            .iter()
            .any(|d| d.code == "location-unmapped")
    );
    // The archived grinder is not imported.
    assert!(catalog.variants.iter().all(|v| v.name != "Old Grinder"));
    // Every global SKU and identifier is unique.
    let skus: std::collections::HashSet<_> = catalog.variants.iter().map(|v| &v.sku).collect();
    assert_eq!(skus.len(), catalog.variants.len());
}

#[test]
fn a_fuzzy_suggestion_accepted_in_the_review_file_merges_on_the_next_run() {
    let reads = sources();
    let first = matching::match_items(&reads, &Review::default(), MatchOptions::default());
    assert_eq!(first.suggestions.len(), 1, "{:?}", first.suggestions);
    let s = &first.suggestions[0];
    let titles = (
        s.left.get(&reads).unwrap().product_title.clone(),
        s.right.get(&reads).unwrap().product_title.clone(),
    );
    assert_eq!(titles, ("Tea Towel".to_owned(), "Tea Towl".to_owned()));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("review.csv");
    Review::default()
        .write(
            std::fs::File::create(&path).unwrap(),
            &reads,
            &first.suggestions,
        )
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert!(lines[0].starts_with("decision,score,left,right"));
    assert!(lines[1].starts_with(",0.9"), "{}", lines[1]);
    assert!(lines[1].contains("ospos:sku:INT-77"));
    assert!(lines[1].contains("odoo:id:odoo_towel"));
    // A person accepts the merge.
    lines[1] = format!("accept{}", lines[1]);
    std::fs::write(&path, lines.join("\n")).unwrap();

    let review = Review::read(std::fs::File::open(&path).unwrap()).unwrap();
    let second = matching::match_items(&reads, &review, MatchOptions::default());
    assert_eq!(second.stats.by_review, 1);
    assert!(second.suggestions.is_empty());
    assert_eq!(second.clusters.len(), first.clusters.len() - 1);
    let towel = second
        .clusters
        .iter()
        .find(|c| {
            c.iter()
                .any(|r| r.get(&reads).unwrap().sku.as_deref() == Some("TT-9"))
        })
        .unwrap();
    assert_eq!(towel.len(), 2);
    // Writing the file again keeps the decision.
    let again = dir.path().join("review2.csv");
    review
        .write(
            std::fs::File::create(&again).unwrap(),
            &reads,
            &second.suggestions,
        )
        .unwrap();
    let kept = Review::read(std::fs::File::open(&again).unwrap()).unwrap();
    assert_eq!(
        kept.decision("ospos:sku:INT-77", "odoo:id:odoo_towel"),
        Some(Decision::Accept)
    );
}

#[test]
fn a_rejected_suggestion_is_not_proposed_again() {
    let reads = sources();
    let first = matching::match_items(&reads, &Review::default(), MatchOptions::default());
    let s = &first.suggestions[0];
    let mut review = Review::default();
    review.decide(
        &item_key(&reads, s.right),
        &item_key(&reads, s.left),
        Decision::Reject,
    );
    let second = matching::match_items(&reads, &review, MatchOptions::default());
    assert!(second.suggestions.is_empty());
    assert_eq!(second.clusters.len(), first.clusters.len());
}

#[test]
fn a_review_file_with_an_unknown_decision_is_refused_with_its_line() {
    let text = "decision,score,left,right\naccept,1,a,b\nmaybe,1,c,d\n";
    let err = Review::read(text.as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "review file line 3: decision `maybe` is neither accept nor reject"
    );
}

#[test]
fn weighed_items_priced_per_pound_are_priced_per_kilogram() {
    let path = local("loyverse.csv");
    let mut options = SourceOptions::new("market", &path.display().to_string(), Format::Loyverse);
    options.currency = domain::Currency::GBP;
    options.prices_include_tax = true;
    options.weight_unit_grams = import::normalize::grams_per("lb");
    let reads = vec![import::read(
        std::fs::File::open(path).unwrap(),
        &options,
        None,
    )];
    let m = matching::match_items(&reads, &Review::default(), MatchOptions::default());
    let mut canonical_options = CanonicalOptions {
        currency: domain::Currency::GBP,
        ..CanonicalOptions::default()
    };
    canonical_options
        .locations
        .insert("market/Main Store".into(), "london-01".into());
    let catalog = canonical::build(&reads, &m, &canonical_options).unwrap();
    let bananas = catalog
        .variants
        .iter()
        .find(|v| v.name == "Bananas")
        .unwrap();
    assert_eq!(bananas.unit, domain::UnitOfSale::Weight);
    // £2.99 per lb is £6.59 per kg (2.99 / 0.45359237 = 6.5918…).
    assert_eq!(bananas.price.unwrap().minor(), 659);
    let count = catalog
        .opening_counts
        .iter()
        .find(|c| c.sku == bananas.sku)
        .unwrap();
    // 12.5 lb on hand is 5.669904625 kg.
    assert_eq!(count.quantity.to_string(), "5.669904625");
    let latte = catalog
        .variants
        .iter()
        .find(|v| v.name == "Latte Small")
        .unwrap();
    assert_eq!(latte.unit, domain::UnitOfSale::Each);
    assert_eq!(latte.price.unwrap().minor(), 350);
}

#[test]
fn packs_become_units_by_the_mapped_pack_size() {
    let mapping =
        import::Mapping::parse(&std::fs::read_to_string(local("kasse-mapping.toml")).unwrap())
            .unwrap();
    let path = local("kasse-latin1.csv");
    let mut options = SourceOptions::new("kasse", &path.display().to_string(), Format::Mapped);
    options.decimal = mapping.decimal.unwrap();
    options.prices_include_tax = true;
    let reads = vec![import::read(
        std::fs::File::open(path).unwrap(),
        &options,
        Some(&mapping),
    )];
    let m = matching::match_items(&reads, &Review::default(), MatchOptions::default());
    let mut canonical_options = CanonicalOptions::default();
    canonical_options
        .locations
        .insert("kasse/filiale-1".into(), "vienna-01".into());
    let catalog = canonical::build(&reads, &m, &canonical_options).unwrap();
    let muesli = catalog
        .variants
        .iter()
        .find(|v| v.sku.as_str() == "A-2")
        .unwrap();
    // A pack of 6 for 3.49: 0.58 each (0.5816… rounded half-up); 10 packs are 60 units.
    assert_eq!(muesli.price.unwrap().minor(), 58);
    let count = catalog
        .opening_counts
        .iter()
        .find(|c| c.sku.as_str() == "A-2")
        .unwrap();
    assert_eq!(count.quantity.to_string(), "60");
    let cheese = catalog
        .variants
        .iter()
        .find(|v| v.sku.as_str() == "A-1")
        .unwrap();
    assert_eq!(cheese.price.unwrap().minor(), 1290);
}

#[test]
fn stock_of_legacy_locations_mapped_to_one_store_is_added_up() {
    let mapping = import::Mapping::parse(
        "[columns]\n\"SKU\" = \"sku\"\n\"Name\" = \"title\"\n\"Shop\" = \"stock:shop\"\n\"Back room\" = \"stock:back\"\n\"Annex\" = \"stock:annex\"\n",
    )
    .unwrap();
    let csv = "SKU,Name,Shop,Back room,Annex\nM-1,Mug,3,4,1.5\n";
    let mut options = SourceOptions::new("legacy", "legacy.csv", Format::Mapped);
    options.prices_include_tax = true;
    let reads = vec![import::read(
        std::io::Cursor::new(csv.as_bytes().to_vec()),
        &options,
        Some(&mapping),
    )];
    let m = matching::match_items(&reads, &Review::default(), MatchOptions::default());
    let mut canonical_options = CanonicalOptions::default();
    canonical_options
        .locations
        .insert("legacy/shop".into(), "vienna-01".into());
    canonical_options
        .locations
        .insert("back".into(), "vienna-01".into());
    canonical_options
        .locations
        .insert("legacy/annex".into(), "graz-01".into());
    let catalog = canonical::build(&reads, &m, &canonical_options).unwrap();
    let counts: Vec<(&str, &str, String)> = catalog
        .opening_counts
        .iter()
        .map(|c| (c.location.as_str(), c.sku.as_str(), c.quantity.to_string()))
        .collect();
    assert_eq!(
        counts,
        [
            ("graz-01", "M-1", "1.5".to_owned()),
            ("vienna-01", "M-1", "7".to_owned())
        ]
    );
}

#[test]
fn a_reimport_finds_its_earlier_variants_and_keeps_their_skus() {
    let reads = sources();
    let m = matching::match_items(&reads, &Review::default(), MatchOptions::default());
    let mut options = CanonicalOptions {
        currency: domain::Currency::GBP,
        ..CanonicalOptions::default()
    };
    options
        .tax_rates
        .insert("standard".into(), "20".parse().unwrap());
    let first = canonical::build(&reads, &m, &options).unwrap();
    for v in &first.variants {
        options.existing.add(v.sku.as_str(), &v.identifiers(&reads));
    }
    let second = canonical::build(&reads, &m, &options).unwrap();
    assert_eq!(first.variants.len(), second.variants.len());
    for (a, b) in first.variants.iter().zip(&second.variants) {
        assert_eq!(a.sku, b.sku);
        assert_eq!(a.identifiers(&reads), b.identifiers(&reads));
        assert!(b.existing && !a.existing);
    }
}
