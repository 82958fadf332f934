//! `kassa catalog profile`: what is in each source before anything is merged — rows, products,
//! variants, how often each field is filled, barcode quality, duplicate SKUs and barcodes within
//! and across sources, and price anomalies.

use std::collections::{HashMap, HashSet};

use crate::diag::Severity;
use crate::model::SourceRead;
use crate::normalize::{BarcodeCheck, sku_key};

/// Barcode quality counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BarcodeCounts {
    /// Valid GTINs.
    pub valid: usize,
    /// Valid after a repair that cannot be wrong (UPC-E expanded, leading zeros restored).
    pub repaired: usize,
    /// Wrong check digit.
    pub bad_check_digit: usize,
    /// Destroyed by spreadsheet scientific notation.
    pub scientific: usize,
    /// Not a GTIN at all.
    pub not_gtin: usize,
    /// Could be more than one GTIN.
    pub ambiguous: usize,
    /// Variants with no barcode.
    pub missing: usize,
    /// Valid GTINs that are restricted-circulation numbers (prefixes 02, 04, 20 to 29): kept as
    /// identifiers within this source, never matched across sources.
    pub restricted: usize,
}

/// Price anomalies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PriceCounts {
    /// No price.
    pub missing: usize,
    /// Price zero.
    pub zero: usize,
    /// Price below zero.
    pub negative: usize,
    /// Cost above price.
    pub cost_above_price: usize,
}

/// The profile of one source.
#[derive(Debug, Clone)]
pub struct SourceProfile {
    /// The source's name.
    pub name: String,
    /// The file.
    pub file: String,
    /// The format.
    pub format: &'static str,
    /// Data rows.
    pub rows: u64,
    /// Distinct products.
    pub products: usize,
    /// Variants.
    pub variants: usize,
    /// Share of variants with each field filled, as (field, filled count).
    pub fill: Vec<(&'static str, usize)>,
    /// Barcode quality.
    pub barcodes: BarcodeCounts,
    /// Distinct SKUs used by more than one variant of this source.
    pub duplicate_skus: usize,
    /// Distinct GTINs used by more than one variant of this source.
    pub duplicate_barcodes: usize,
    /// Price anomalies.
    pub prices: PriceCounts,
    /// Diagnostics that are errors.
    pub errors: usize,
    /// Diagnostics that are warnings.
    pub warnings: usize,
    /// The currency its prices are read in, and how it was settled.
    pub currency: String,
}

/// The profile of a set of sources.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Per source.
    pub sources: Vec<SourceProfile>,
    /// Distinct SKUs (compared case- and separator-insensitively) found in more than one source.
    pub skus_across_sources: usize,
    /// Distinct GTINs found in more than one source.
    pub barcodes_across_sources: usize,
}

/// The fields whose fill rate is reported.
pub const FIELDS: [&str; 12] = [
    "title",
    "sku",
    "barcode",
    "price",
    "cost",
    "compare_at",
    "tax",
    "category",
    "brand",
    "options",
    "stock",
    "weight",
];

/// Profiles sources that have been read.
pub fn profile(reads: &[SourceRead]) -> Profile {
    let mut sources = Vec::with_capacity(reads.len());
    // Per key: the sources it was seen in, and the sources it was seen in twice (bit masks).
    let mut sku_sources: HashMap<String, (u128, u128)> = HashMap::new();
    let mut gtin_sources: HashMap<u64, (u128, u128)> = HashMap::new();
    let mark = |entry: &mut (u128, u128), s: usize| {
        let bit = 1_u128 << (s % 128);
        if entry.0 & bit != 0 {
            entry.1 |= bit;
        }
        entry.0 |= bit;
    };
    for (s, read) in reads.iter().enumerate() {
        let mut fill = [0_usize; FIELDS.len()];
        let mut barcodes = BarcodeCounts::default();
        let mut prices = PriceCounts::default();
        let mut products = HashSet::new();
        for item in &read.items {
            products.insert(item.product_key.as_str());
            let filled = [
                !item.product_title.is_empty(),
                item.sku.is_some(),
                !item.barcodes.is_empty(),
                item.price.is_some(),
                item.cost.is_some(),
                item.compare_at_price.is_some(),
                !item.tax_classes.is_empty() || item.taxable.is_some(),
                item.category.is_some(),
                item.brand.is_some(),
                !item.options.is_empty(),
                !item.stock.is_empty(),
                item.weight_grams.is_some(),
            ];
            for (count, f) in fill.iter_mut().zip(filled) {
                *count += usize::from(f);
            }
            if item.barcodes.is_empty() {
                barcodes.missing += 1;
            }
            for (_, b) in &item.barcodes {
                match b {
                    BarcodeCheck::Valid { note: None, .. } => barcodes.valid += 1,
                    BarcodeCheck::Valid { .. } => barcodes.repaired += 1,
                    BarcodeCheck::BadCheckDigit(_) => barcodes.bad_check_digit += 1,
                    BarcodeCheck::Scientific(_) => barcodes.scientific += 1,
                    BarcodeCheck::NotGtin(_) => barcodes.not_gtin += 1,
                    BarcodeCheck::Ambiguous(_) => barcodes.ambiguous += 1,
                }
                if b.gtin()
                    .is_some_and(|g| crate::normalize::is_restricted(&g))
                {
                    barcodes.restricted += 1;
                    continue;
                }
                if let Some(g) = b.gtin() {
                    mark(
                        gtin_sources
                            .entry(crate::matching::gtin_u64(g))
                            .or_default(),
                        s,
                    );
                }
            }
            if let Some(sku) = &item.sku {
                mark(sku_sources.entry(sku_key(sku)).or_default(), s);
            }
            match item.price {
                None => prices.missing += 1,
                Some(p) if p.is_zero() => prices.zero += 1,
                Some(p) if p.is_negative() => prices.negative += 1,
                Some(_) => {}
            }
            if let (Some(p), Some(c)) = (item.price, item.cost) {
                if c.minor() > p.minor() {
                    prices.cost_above_price += 1;
                }
            }
        }
        let errors = read
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        sources.push(SourceProfile {
            name: read.options.name.clone(),
            file: read.options.file.clone(),
            format: read.options.format.as_str(),
            rows: read.rows,
            products: products.len(),
            variants: read.items.len(),
            fill: FIELDS.iter().copied().zip(fill).collect(),
            barcodes,
            duplicate_skus: 0,
            duplicate_barcodes: 0,
            prices,
            errors,
            warnings: read.diagnostics.len() - errors,
            currency: read.currency_note.clone(),
        });
    }
    for (s, source) in sources.iter_mut().enumerate() {
        let bit = 1_u128 << (s % 128);
        source.duplicate_skus = sku_sources.values().filter(|e| e.1 & bit != 0).count();
        source.duplicate_barcodes = gtin_sources.values().filter(|e| e.1 & bit != 0).count();
    }
    Profile {
        sources,
        skus_across_sources: sku_sources
            .values()
            .filter(|e| e.0.count_ones() > 1)
            .count(),
        barcodes_across_sources: gtin_sources
            .values()
            .filter(|e| e.0.count_ones() > 1)
            .count(),
    }
}
