//! The fuzzy pass measured on a labelled set made here, never from customer data: two systems'
//! renderings of 60 products with their sizes, colours, weights and packs, written the way
//! different systems write them (size words against abbreviations, an option one system records
//! and the other puts in the title or leaves out, a material or brand word missing, a typo, a
//! barcode with a wrong check digit), and hard negatives: the other sizes, colours, weights and
//! packs of the same product, and other products sharing most of their words. Precision and
//! recall are printed (`cargo test -p import --test suggestions -- --nocapture`) and held to a
//! floor; the README reports them.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;

use domain::{Currency, Money};
use import::matching::{self, ItemRef, MatchOptions};
use import::review::Review;
use import::{Format, SourceItem, SourceOptions, SourceRead};

const NOUNS: [&str; 20] = [
    "Tea Towel",
    "Coffee Mug",
    "Cutting Board",
    "Water Bottle",
    "Wine Glass",
    "Table Lamp",
    "Cushion Cover",
    "Bath Towel",
    "Storage Jar",
    "Serving Bowl",
    "Desk Organiser",
    "Notebook",
    "Scented Candle",
    "Plant Pot",
    "Doormat",
    "Lunch Box",
    "Kitchen Apron",
    "Oven Glove",
    "Teapot",
    "Salad Bowl",
];
const MATERIALS: [&str; 6] = ["Linen", "Stoneware", "Bamboo", "Steel", "Oak", "Cotton"];
const BRANDS: [&str; 3] = ["Nordal", "Brixton", "Verde"];

/// One kind of variant a product comes in: how system A writes each value, how system B
/// abbreviates it, and the option's name.
struct Axis {
    name: &'static str,
    a: [&'static str; 3],
    b: [&'static str; 3],
}

const AXES: [Axis; 4] = [
    Axis {
        name: "Size",
        a: ["Small", "Medium", "Large"],
        b: ["S", "M", "L"],
    },
    Axis {
        name: "Colour",
        a: ["Blue", "Green", "Grey"],
        b: ["Blue", "Green", "Grey"],
    },
    Axis {
        name: "Weight",
        a: ["250 g", "500 g", "1 kg"],
        b: ["250g", "500g", "1000g"],
    },
    Axis {
        name: "Pack",
        a: ["4 pack", "6 pack", "12 pack"],
        b: ["4pk", "6pk", "12pk"],
    },
];

fn gtin(seed: u64) -> String {
    let body = format!("40{:010}", seed);
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

fn with_bad_check_digit(code: &str) -> String {
    let (body, check) = code.split_at(code.len() - 1);
    let wrong = (check.parse::<u32>().unwrap() + 3) % 10;
    format!("{body}{wrong}")
}

fn typo(word: &str) -> String {
    // Two neighbouring letters swapped in the middle of the word.
    let mut chars: Vec<char> = word.chars().collect();
    let i = chars.len() / 2;
    chars.swap(i - 1, i);
    chars.into_iter().collect()
}

struct Set {
    reads: Vec<SourceRead>,
    positives: HashSet<(ItemRef, ItemRef)>,
    negatives: HashSet<(ItemRef, ItemRef)>,
}

fn item(
    line: u64,
    key: &str,
    title: &str,
    options: Vec<(String, String)>,
    price: i64,
) -> SourceItem {
    SourceItem {
        line,
        product_line: line,
        product_key: key.to_owned(),
        product_title: title.to_owned(),
        options,
        sku: Some(format!("{key}-{line}")),
        price: Some(Money::from_minor(price, Currency::EUR)),
        ..SourceItem::default()
    }
}

fn labelled_set() -> Set {
    let mut a_items = Vec::new();
    let mut b_items = Vec::new();
    let mut positives = HashSet::new();
    let mut negatives = HashSet::new();
    let at = |source: u32, index: usize| ItemRef {
        source,
        index: u32::try_from(index).unwrap(),
    };
    for p in 0..60_usize {
        let noun = NOUNS[p % NOUNS.len()];
        let brand = BRANDS[p / NOUNS.len()];
        let material = MATERIALS[(p * 7) % MATERIALS.len()];
        let axis = &AXES[p % AXES.len()];
        let style = p % 6;
        let title_a = format!("{brand} {material} {noun}");
        // How system B writes the product's title.
        let title_b = match style {
            1 => format!("{brand} {noun}"),
            2 => {
                let mut words: Vec<String> = noun.split(' ').map(str::to_owned).collect();
                let last = words.len() - 1;
                words[last] = typo(&words[last]);
                format!("{brand} {material} {}", words.join(" "))
            }
            5 => format!("{material} {noun}"),
            _ => title_a.clone(),
        };
        // A style-4 product comes in one variant; the others in three.
        let count = if style == 4 { 1 } else { 3 };
        let first_a = a_items.len();
        let first_b = b_items.len();
        for v in 0..count {
            let price = 500 + i64::try_from(p * 37 + v * 150).unwrap();
            let line = u64::try_from(a_items.len() + 2).unwrap();
            let mut a = item(
                line,
                &format!("a{p}"),
                &title_a,
                vec![(axis.name.to_owned(), axis.a[v].to_owned())],
                price,
            );
            let line = u64::try_from(b_items.len() + 2).unwrap();
            let b_price = price + price / 20 * i64::try_from(v % 2).unwrap();
            let mut b = match style {
                // The value in the title, no option.
                3 => item(
                    line,
                    &format!("b{p}"),
                    &format!("{title_b} {}", axis.b[v]),
                    Vec::new(),
                    b_price,
                ),
                // One system records the option, the other nothing.
                4 => item(line, &format!("b{p}"), &title_b, Vec::new(), b_price),
                _ => item(
                    line,
                    &format!("b{p}"),
                    &title_b,
                    vec![(axis.name.to_owned(), axis.b[v].to_owned())],
                    b_price,
                ),
            };
            if style == 5 {
                let code = gtin(u64::try_from(p * 10 + v).unwrap());
                a.barcodes.push((
                    Arc::from("barcode"),
                    import::normalize::barcode(&code).unwrap(),
                ));
                let bad = with_bad_check_digit(&code);
                b.barcodes.push((
                    Arc::from("barcode"),
                    import::normalize::barcode(&bad).unwrap(),
                ));
            }
            a_items.push(a);
            b_items.push(b);
        }
        for v in 0..count {
            for w in 0..count {
                let pair = (at(0, first_a + v), at(1, first_b + w));
                if v == w {
                    positives.insert(pair);
                } else {
                    negatives.insert(pair);
                }
            }
        }
    }
    // Other products that share most words: the same noun and brand in another material.
    for p in 0..60_usize {
        let noun = NOUNS[p % NOUNS.len()];
        let brand = BRANDS[p / NOUNS.len()];
        let material = MATERIALS[(p * 7 + 3) % MATERIALS.len()];
        let axis = &AXES[p % AXES.len()];
        let line = u64::try_from(b_items.len() + 2).unwrap();
        let title = format!("{brand} {material} {noun}");
        let options = if p % 6 == 3 || p % 6 == 4 {
            Vec::new()
        } else {
            vec![(axis.name.to_owned(), axis.b[0].to_owned())]
        };
        b_items.push(item(line, &format!("x{p}"), &title, options, 900));
        let other = at(1, b_items.len() - 1);
        for (i, a) in a_items.iter().enumerate() {
            if a.product_key == format!("a{p}") {
                negatives.insert((at(0, i), other));
            }
        }
    }
    let read = |name: &str, items: Vec<SourceItem>| SourceRead {
        options: SourceOptions::new(name, &format!("{name}.csv"), Format::Mapped),
        rows: u64::try_from(items.len()).unwrap(),
        items,
        diagnostics: Vec::new(),
        currency_note: String::new(),
    };
    Set {
        reads: vec![read("a", a_items), read("b", b_items)],
        positives,
        negatives,
    }
}

#[test]
fn suggestions_find_what_a_person_would_review_and_leave_other_variants_alone() {
    let set = labelled_set();
    let labelled = set.positives.len() + set.negatives.len();
    assert!(labelled >= 500, "only {labelled} labelled pairs");
    let matched = matching::match_items(&set.reads, &Review::default(), MatchOptions::default());
    assert_eq!(matched.stats.by_gtin + matched.stats.by_sku, 0);
    let suggested: HashSet<(ItemRef, ItemRef)> = matched
        .suggestions
        .iter()
        .map(|s| (s.left.min(s.right), s.left.max(s.right)))
        .collect();
    let found = suggested.intersection(&set.positives).count();
    let wrong_labelled = suggested.intersection(&set.negatives).count();
    let precision = found as f64 / suggested.len().max(1) as f64;
    let recall = found as f64 / set.positives.len() as f64;
    println!(
        "labelled pairs: {labelled} ({} same variant, {} hard negatives); suggested {}: {found} right, {} wrong ({wrong_labelled} of them labelled hard negatives); precision {precision:.3}, recall {recall:.3}",
        set.positives.len(),
        set.negatives.len(),
        suggested.len(),
        suggested.len() - found,
    );
    let missed: Vec<String> = set
        .positives
        .difference(&suggested)
        .take(5)
        .map(|(l, r)| {
            format!(
                "{:?} / {:?}",
                l.get(&set.reads).unwrap().variant_title(),
                r.get(&set.reads).unwrap().variant_title()
            )
        })
        .collect();
    println!("missed, first five: {missed:?}");
    // Every suggestion explains itself.
    assert!(
        matched
            .suggestions
            .iter()
            .all(|s| s.why.starts_with("title "))
    );
    assert!(precision >= 0.95, "precision {precision:.3}");
    assert!(recall >= 0.90, "recall {recall:.3}");
}
