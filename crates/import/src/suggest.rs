//! The fuzzy pass of matching: pairs of variants from different sources that a person would
//! want to review, each with a score and the reasons for it. Never merged on its own.
//!
//! Candidates are blocked on more than exact options: the normalised words of title and
//! options together (sizes as their abbreviations, `500 g` as `500g`, `1 kg` as `1000g`, `6
//! pack` as `6pk`, plurals as singulars), the same with any one word left out (a material, a
//! brand, a colour one system records and the other does not), and barcode near-misses (a
//! barcode with a wrong check digit against the valid GTIN whose other digits it shares).
//! Title and options are scored apart: the title by word-by-word similarity (Jaro-Winkler per
//! word, so a typo costs little and a missing word a little more), the options by what both
//! sides say — the same size, colour, weight or pack agrees, one side saying nothing is
//! neutral, two different values rule the pair out. Prices outside a band lower the score.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use crate::model::SourceItem;
use crate::normalize::BarcodeCheck;

/// Prices further apart than this share of the higher one lower a pair's score.
const PRICE_BAND: f64 = 0.25;

/// What the fuzzy pass compares of one variant.
#[derive(Debug, Clone, Default)]
pub(crate) struct Signature {
    /// Normalised words of title and option values together, sorted and distinct.
    all: Vec<String>,
    /// Option values by kind: sizes, measures (weights, volumes), packs, colours, other.
    attributes: Vec<(Kind, String)>,
    /// Price in minor units, when given.
    price: Option<i64>,
    /// The first 13 digits of each barcode as a GTIN-14 (everything but the check digit),
    /// with whether the barcode was valid.
    barcodes: Vec<(u64, bool)>,
}

/// A kind of attribute that tells variants of one product apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Size,
    Measure,
    Pack,
    Colour,
}

const SIZES: [(&str, &str); 14] = [
    ("xxs", "xxs"),
    ("xs", "xs"),
    ("xsmall", "xs"),
    ("s", "s"),
    ("small", "s"),
    ("m", "m"),
    ("med", "m"),
    ("medium", "m"),
    ("l", "l"),
    ("large", "l"),
    ("xl", "xl"),
    ("xlarge", "xl"),
    ("xxl", "xxl"),
    ("xxlarge", "xxl"),
];

const COLOURS: [&str; 18] = [
    "black", "white", "red", "blue", "green", "grey", "gray", "navy", "brown", "pink", "yellow",
    "orange", "purple", "beige", "cream", "silver", "gold", "natural",
];

const UNITS: [(&str, &str, u64); 12] = [
    ("g", "g", 1),
    ("gr", "g", 1),
    ("kg", "g", 1000),
    ("ml", "ml", 1),
    ("cl", "ml", 10),
    ("l", "ml", 1000),
    ("ltr", "ml", 1000),
    ("cm", "mm", 10),
    ("mm", "mm", 1),
    ("oz", "oz", 1),
    ("lb", "lb", 1),
    ("m", "mm", 1000),
];

/// Words of a text, normalised: lower case, sizes as abbreviations, quantities joined with
/// their unit in a base unit, packs as `Npk`, plurals as singulars.
pub(crate) fn words(text: &str) -> Vec<String> {
    let raw: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric() && c != '.')
        .map(|w| w.trim_matches('.').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(w) = raw.get(i) {
        let next = raw.get(i + 1).map(String::as_str);
        // `extra large`, `x large` → `xl`; `extra small` → `xs`.
        if matches!(w.as_str(), "extra" | "x") {
            match next {
                Some("large") => {
                    out.push("xl".to_owned());
                    i += 2;
                    continue;
                }
                Some("small") => {
                    out.push("xs".to_owned());
                    i += 2;
                    continue;
                }
                _ => {}
            }
        }
        // A number followed by a unit or a pack word.
        if w.chars().all(|c| c.is_ascii_digit() || c == '.')
            && w.chars().any(|c| c.is_ascii_digit())
        {
            if let Some(unit) = next {
                if let Some(q) = quantity(w, unit) {
                    out.push(q);
                    i += 2;
                    continue;
                }
            }
        }
        // A number glued to its unit: `500g`, `6pk`.
        let split = w.find(|c: char| c.is_alphabetic()).filter(|&p| p > 0);
        if let Some(p) = split {
            let (n, unit) = w.split_at(p);
            if n.chars().all(|c| c.is_ascii_digit() || c == '.') {
                if let Some(q) = quantity(n, unit) {
                    out.push(q);
                    i += 1;
                    continue;
                }
            }
        }
        out.push(singular(size_word(w)));
        i += 1;
    }
    out
}

fn size_word(w: &str) -> &str {
    SIZES
        .iter()
        .find(|(word, _)| *word == w)
        .map_or(w, |(_, abbreviation)| abbreviation)
}

fn singular(w: &str) -> String {
    if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") && w.chars().all(char::is_alphabetic) {
        w[..w.len() - 1].to_owned()
    } else {
        w.to_owned()
    }
}

/// `500` `g` → `500g`; `1` `kg` → `1000g`; `6` `pack` → `6pk`.
fn quantity(number: &str, unit: &str) -> Option<String> {
    if matches!(
        unit,
        "pack" | "pk" | "pcs" | "pc" | "x" | "er" | "count" | "ct"
    ) {
        return Some(format!("{number}pk"));
    }
    let (_, base, factor) = UNITS.iter().find(|(u, _, _)| *u == unit)?;
    let value: rust_decimal::Decimal = number.parse().ok()?;
    let scaled = value
        .checked_mul(rust_decimal::Decimal::from(*factor))?
        .normalize();
    Some(format!("{scaled}{base}"))
}

fn kind_of(word: &str) -> Option<Kind> {
    if SIZES.iter().any(|(_, a)| *a == word) {
        return Some(Kind::Size);
    }
    if COLOURS.contains(&word) {
        return Some(Kind::Colour);
    }
    let digits = word.find(|c: char| c.is_alphabetic())?;
    if digits == 0 {
        return None;
    }
    match &word[digits..] {
        "pk" => Some(Kind::Pack),
        "g" | "ml" | "mm" | "oz" | "lb" => Some(Kind::Measure),
        _ => None,
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort_unstable();
    v.dedup();
    v
}

/// What the fuzzy pass compares of `item`.
pub(crate) fn signature(item: &SourceItem) -> Signature {
    let mut all = words(&item.product_title);
    for (_, value) in &item.options {
        all.extend(words(value));
    }
    let all = sorted(all);
    let attributes = all
        .iter()
        .filter_map(|w| kind_of(w).map(|k| (k, w.clone())))
        .collect();
    let barcodes = item
        .barcodes
        .iter()
        .filter_map(|(_, b)| match b {
            BarcodeCheck::Valid { gtin, .. } => Some((crate::matching::gtin_u64(*gtin) / 10, true)),
            BarcodeCheck::BadCheckDigit(v) => {
                let digits = v.trim().strip_suffix(".0").unwrap_or(v.trim());
                (digits.len() <= 14)
                    .then(|| digits.parse::<u64>().ok())
                    .flatten()
                    .map(|n| (n / 10, false))
            }
            _ => None,
        })
        .collect();
    Signature {
        all,
        attributes,
        price: item.price.map(|p| p.minor()),
        barcodes,
    }
}

fn hash_of(parts: &[&str]) -> u64 {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// The blocks a variant is a candidate in: its words, its words less any one, and its barcodes
/// without their check digit.
pub(crate) fn block_keys(sig: &Signature) -> Vec<u64> {
    let mut keys = vec![hash_of(&["w", &sig.all.join(" ")])];
    if (2..=10).contains(&sig.all.len()) {
        for skip in 0..sig.all.len() {
            let rest: Vec<&str> = sig
                .all
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, w)| w.as_str())
                .collect();
            keys.push(hash_of(&["w", &rest.join(" ")]));
        }
    }
    for (digits, _) in &sig.barcodes {
        keys.push(hash_of(&["b", &digits.to_string()]));
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// A pair's scores and the reasons, in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// Title similarity, 0 to 1.
    pub title: f64,
    /// What the options say, 0 (they disagree) to 1 (they agree); 0.95 when one side says
    /// nothing of an attribute the other has.
    pub options: f64,
    /// The overall score: title × options × price factor, raised by a barcode near-miss.
    pub total: f64,
    /// Why, for the review file.
    pub why: String,
}

/// Word-by-word title similarity: each word of the shorter title is matched with its most
/// similar word in the other (Jaro-Winkler, counted from 0.88 up); the share matched of the
/// shorter title and of both together are blended, so a missing word costs less than a wrong
/// one.
fn title_score(a: &[String], b: &[String]) -> (f64, usize) {
    if a.is_empty() || b.is_empty() {
        return (0.0, 0);
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut matched = 0.0;
    let mut exact = 0;
    for w in short {
        let best = long
            .iter()
            .map(|o| {
                if o == w {
                    1.0
                } else {
                    strsim::jaro_winkler(w, o)
                }
            })
            .fold(0.0_f64, f64::max);
        if best >= 1.0 {
            exact += 1;
        }
        if best >= 0.88 {
            matched += best;
        }
    }
    let cover = matched / short.len() as f64;
    let dice = 2.0 * matched / (short.len() + long.len()) as f64;
    (0.7 * cover + 0.3 * dice, exact)
}

/// Scores a pair; `None` when it is ruled out (two different sizes, colours, weights or
/// packs).
pub(crate) fn score(a: &Signature, b: &Signature) -> Option<Score> {
    let mut why = Vec::new();
    // Attributes: per kind, agree, one side silent, or disagree.
    let mut options = 1.0;
    for kind in [Kind::Size, Kind::Measure, Kind::Pack, Kind::Colour] {
        let left: HashSet<&str> = a
            .attributes
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, v)| v.as_str())
            .collect();
        let right: HashSet<&str> = b
            .attributes
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, v)| v.as_str())
            .collect();
        let name = match kind {
            Kind::Size => "size",
            Kind::Measure => "weight or volume",
            Kind::Pack => "pack",
            Kind::Colour => "colour",
        };
        match (left.is_empty(), right.is_empty()) {
            (true, true) => {}
            (false, false) if left.is_disjoint(&right) => return None,
            (false, false) => why.push(format!("same {name}")),
            _ => {
                options *= 0.95;
                why.push(format!("{name} on one side only"));
            }
        }
    }
    // The title without the words the attributes already judged.
    let plain = |s: &Signature| -> Vec<String> {
        s.all
            .iter()
            .filter(|w| kind_of(w).is_none())
            .cloned()
            .collect()
    };
    let (pa, pb) = (plain(a), plain(b));
    let (title, exact) = title_score(&pa, &pb);
    why.insert(
        0,
        format!(
            "title {title:.2} ({exact} of {} words equal)",
            pa.len().min(pb.len())
        ),
    );
    let mut total = title * options;
    if let (Some(x), Some(y)) = (a.price, b.price) {
        let high = x.max(y).max(1) as f64;
        let gap = (x - y).abs() as f64 / high;
        if gap <= PRICE_BAND {
            why.push(format!("prices within {:.0}%", (gap * 100.0).ceil()));
        } else {
            total *= 0.9;
            why.push(format!("prices {:.0}% apart", gap * 100.0));
        }
    }
    let near_miss = a.barcodes.iter().any(|(da, va)| {
        b.barcodes
            .iter()
            .any(|(db, vb)| da == db && (va != vb || !va))
    });
    if near_miss {
        total = (total + 0.15).min(1.0);
        why.push("barcodes differ only in a wrong check digit".to_owned());
    }
    Some(Score {
        title,
        options,
        total,
        why: why.join("; "),
    })
}

/// Pairs of blocked candidates to compare, each once.
pub(crate) fn candidate_pairs(
    blocks: &mut [(u64, u32)],
    max_block: usize,
    oversized: &mut usize,
) -> Vec<(u32, u32)> {
    blocks.sort_unstable();
    let mut seen: HashSet<(u32, u32)> = HashSet::new();
    let mut out = Vec::new();
    for chunk in blocks.chunk_by(|a, b| a.0 == b.0).filter(|c| c.len() > 1) {
        if chunk.len() > max_block {
            *oversized += 1;
            continue;
        }
        for (i, &(_, a)) in chunk.iter().enumerate() {
            for &(_, b) in chunk.iter().skip(i + 1) {
                let pair = (a.min(b), a.max(b));
                if pair.0 != pair.1 && seen.insert(pair) {
                    out.push(pair);
                }
            }
        }
    }
    out
}

/// Signatures by cluster root, for the roots that take part.
pub(crate) type Signatures = HashMap<u32, Signature>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn words_normalise_sizes_units_packs_and_plurals() {
        assert_eq!(words("Tea Towels, Extra Large"), ["tea", "towel", "xl"]);
        assert_eq!(words("Coffee Beans 1 kg"), ["coffee", "bean", "1000g"]);
        assert_eq!(words("Coffee Beans 1000g"), ["coffee", "bean", "1000g"]);
        assert_eq!(
            words("Sparkling Water 6 pack"),
            ["sparkling", "water", "6pk"]
        );
        assert_eq!(words("Sparkling Water 6pk"), ["sparkling", "water", "6pk"]);
        assert_eq!(words("Glass 0.5 l"), ["glass", "500ml"]);
    }

    #[test]
    fn different_sizes_rule_a_pair_out_and_a_missing_option_does_not() {
        let item = |title: &str, options: &[(&str, &str)]| SourceItem {
            product_title: title.to_owned(),
            options: options
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            ..SourceItem::default()
        };
        let small = signature(&item("Tee Shirt", &[("Size", "Small")]));
        let s = signature(&item("Tee Shirt", &[("Size", "S")]));
        let m = signature(&item("Tee Shirt M", &[]));
        let bare = signature(&item("Tee Shirt", &[]));
        assert!(score(&small, &s).unwrap().total > 0.99);
        assert!(score(&small, &m).is_none());
        let one_sided = score(&small, &bare).unwrap();
        assert!(
            one_sided.total > 0.9 && one_sided.total < 1.0,
            "{one_sided:?}"
        );
        assert!(
            one_sided.why.contains("size on one side only"),
            "{one_sided:?}"
        );
    }
}
