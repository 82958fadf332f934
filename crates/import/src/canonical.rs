//! The canonical catalog: one variant per cluster of matched items, with one global SKU, every
//! identifier kept (GTINs, legacy SKUs and ids), the provenance of every field, title and price
//! taken from sources by declared precedence, prices converted to the chain's pricing (tax
//! included or not) and stock per legacy location mapped to Kassa locations as opening counts.

use std::collections::{BTreeMap, HashMap, HashSet};

use domain::catalog::{Identifier, Sku, TaxCategory, key_hash};
use domain::{Currency, Money, RoundingMode, UnitOfSale};
use rust_decimal::Decimal;

use crate::diag::{Diagnostic, Severity};
use crate::matching::{ItemRef, Matching};
use crate::model::{SourceItem, SourceRead};

/// What HQ already holds, so that a re-import finds its earlier variants: each SKU once, and a
/// 128-bit hash of each identifier key (a million variants' identifiers fit in about 100 MiB).
#[derive(Debug, Clone, Default)]
pub struct Existing {
    skus: Vec<String>,
    by_identifier: HashMap<u128, u32>,
}

impl Existing {
    /// Adds a variant HQ holds.
    pub fn add(&mut self, sku: &str, identifiers: &[Identifier]) {
        let ordinal = u32::try_from(self.skus.len()).unwrap_or(u32::MAX);
        self.skus.push(sku.to_owned());
        for id in identifiers {
            self.by_identifier.insert(key_hash(&id.key()), ordinal);
        }
    }

    /// The SKU of the variant holding `identifier`.
    fn holder(&self, identifier: &Identifier) -> Option<u32> {
        self.by_identifier
            .get(&key_hash(&identifier.key()))
            .copied()
    }

    /// Every SKU HQ holds.
    pub fn skus(&self) -> &[String] {
        &self.skus
    }
}

/// How to build the canonical catalog.
#[derive(Debug, Clone)]
pub struct CanonicalOptions {
    /// The chain's currency; prices in another currency are not imported.
    pub currency: Currency,
    /// Whether the chain's prices include tax.
    pub prices_include_tax: bool,
    /// Source names in order of precedence for titles (unlisted sources follow in run order).
    pub title_precedence: Vec<String>,
    /// Source names in order of precedence for prices.
    pub price_precedence: Vec<String>,
    /// Source tax name or class (compared case-insensitively; several joined with `+`) →
    /// Kassa tax category.
    pub tax_map: BTreeMap<String, String>,
    /// Percent rate per Kassa tax category, for converting between net and gross prices.
    pub tax_rates: BTreeMap<String, Decimal>,
    /// The category for taxable items whose source names no tax.
    pub default_tax: String,
    /// The category for items a source marks as not taxable.
    pub untaxed: String,
    /// `source/location` (or just `location`) → Kassa location for opening counts.
    pub locations: BTreeMap<String, String>,
    /// Import variants that every source marks inactive.
    pub include_inactive: bool,
    /// What HQ holds already.
    pub existing: Existing,
}

impl Default for CanonicalOptions {
    fn default() -> Self {
        CanonicalOptions {
            currency: Currency::EUR,
            prices_include_tax: true,
            title_precedence: Vec::new(),
            price_precedence: Vec::new(),
            tax_map: BTreeMap::new(),
            tax_rates: BTreeMap::new(),
            default_tax: "standard".to_owned(),
            untaxed: "zero".to_owned(),
            locations: BTreeMap::new(),
            include_inactive: false,
            existing: Existing::default(),
        }
    }
}

/// Where a field's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The field (`title`, `price`, `gtin`, `stock:<location>`…).
    pub field: String,
    /// The source's name.
    pub source: String,
    /// Its format (the legacy system).
    pub system: &'static str,
    /// The file.
    pub file: String,
    /// The row's line.
    pub line: u64,
    /// The row's legacy id, if it has one.
    pub legacy_id: Option<String>,
}

impl Provenance {
    /// The provenance of `field` taken from item `item`.
    pub fn of(field: &str, item: ItemRef, reads: &[SourceRead]) -> Provenance {
        let src = reads.get(item.source as usize);
        let row = item.get(reads);
        Provenance {
            field: field.to_owned(),
            source: src.map(|s| s.options.name.clone()).unwrap_or_default(),
            system: src.map_or("", |s| s.options.format.as_str()),
            file: src.map(|s| s.options.file.clone()).unwrap_or_default(),
            line: row.map_or(0, |i| i.line),
            legacy_id: row.and_then(|i| i.legacy_id.clone()),
        }
    }
}

/// Which item a field of a canonical variant was taken from; kept as a reference so that a
/// catalog of millions of variants does not copy file names and ids for every field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldFrom {
    /// The global SKU.
    Sku(ItemRef),
    /// Title and product.
    Title(ItemRef),
    /// The price.
    Price(ItemRef),
    /// The cost.
    Cost(ItemRef),
    /// The tax category.
    Tax(ItemRef),
    /// The identifier at this index of `identifier_refs`.
    Identifier(u32, ItemRef),
}

/// One identifier of a canonical variant, kept as a reference to the row it came from: half a
/// million variants then hold no copies of system names and legacy ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifierRef {
    /// A GTIN.
    Gtin(domain::Gtin),
    /// The row's legacy id (else its SKU, else its line) under its source's name.
    Legacy(ItemRef),
    /// The row's SKU (`<source>-sku`), kept beside its legacy id.
    LegacySku(ItemRef),
}

impl IdentifierRef {
    /// The identifier, read from `reads` (the sources the catalog was built from).
    pub fn resolve(&self, reads: &[SourceRead]) -> Option<Identifier> {
        let source = |r: &ItemRef| {
            reads
                .get(r.source as usize)
                .map(|s| s.options.name.as_str())
        };
        match self {
            IdentifierRef::Gtin(g) => Some(Identifier::Gtin(*g)),
            IdentifierRef::Legacy(r) => Some(legacy_identifier(source(r)?, r.get(reads)?)),
            IdentifierRef::LegacySku(r) => Some(Identifier::Legacy {
                system: format!("{}-sku", source(r)?),
                id: r.get(reads)?.sku.clone()?,
            }),
        }
    }
}

/// One variant of the master catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalVariant {
    /// The global SKU.
    pub sku: Sku,
    /// The product's id.
    pub product_id: String,
    /// The product's name.
    pub product_name: String,
    /// The variant's name.
    pub name: String,
    /// Every other code it is found by, as references ([`CanonicalVariant::identifiers`]
    /// spells them out).
    pub identifier_refs: Vec<IdentifierRef>,
    /// Its tax category.
    pub tax: TaxCategory,
    /// How it is sold.
    pub unit: UnitOfSale,
    /// Its price in the chain's pricing, if any source gave one.
    pub price: Option<Money>,
    /// Prices of mapped stores that differ from `price`.
    pub store_prices: Vec<StorePrice>,
    /// Its unit cost.
    pub cost: Option<Money>,
    /// The items merged into it.
    pub members: Vec<ItemRef>,
    /// Whether HQ already had it (found by an identifier).
    pub existing: bool,
    /// Where each field came from.
    pub sources: Vec<FieldFrom>,
}

impl CanonicalVariant {
    /// Every other code it is found by: GTINs, legacy ids and SKUs.
    pub fn identifiers(&self, reads: &[SourceRead]) -> Vec<Identifier> {
        self.identifier_refs
            .iter()
            .filter_map(|i| i.resolve(reads))
            .collect()
    }

    /// Where each field came from, spelled out: source, system, file, line, legacy id.
    pub fn provenance(&self, reads: &[SourceRead]) -> Vec<Provenance> {
        self.sources
            .iter()
            .map(|f| match *f {
                FieldFrom::Sku(r) => Provenance::of("sku", r, reads),
                FieldFrom::Title(r) => Provenance::of("title", r, reads),
                FieldFrom::Price(r) => Provenance::of("price", r, reads),
                FieldFrom::Cost(r) => Provenance::of("cost", r, reads),
                FieldFrom::Tax(r) => Provenance::of("tax", r, reads),
                FieldFrom::Identifier(i, r) => {
                    let key = self
                        .identifier_refs
                        .get(i as usize)
                        .and_then(|id| id.resolve(reads))
                        .map(|id| id.key())
                        .unwrap_or_default();
                    Provenance::of(&key, r, reads)
                }
            })
            .collect()
    }
}

/// A store's own price for a variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePrice {
    /// The Kassa store.
    pub store: String,
    /// Its price, in the chain's pricing.
    pub price: Money,
    /// The item it came from.
    pub item: ItemRef,
}

/// An opening stock count for a Kassa location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpeningCount {
    /// The Kassa location.
    pub location: String,
    /// The SKU.
    pub sku: Sku,
    /// The quantity.
    pub quantity: Decimal,
    /// The item it came from.
    pub item: ItemRef,
}

impl OpeningCount {
    /// Where it came from, spelled out.
    pub fn provenance(&self, reads: &[SourceRead]) -> Provenance {
        Provenance::of(&format!("stock:{}", self.location), self.item, reads)
    }
}

/// The master catalog built from all sources.
#[derive(Debug, Clone, Default)]
pub struct CanonicalCatalog {
    /// The variants, in the order of their first item.
    pub variants: Vec<CanonicalVariant>,
    /// Opening stock counts.
    pub opening_counts: Vec<OpeningCount>,
    /// Problems found while building.
    pub diagnostics: Vec<Diagnostic>,
}

/// Errors in the options themselves.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// A tax category is not a valid code.
    #[error("tax category `{0}` must be 1 to 32 characters of a-z, 0-9, `-` or `_`")]
    TaxCategory(String),
    /// Prices must be converted between net and gross, but a category has no rate.
    #[error(
        "tax category `{0}` has no rate, needed to convert prices between tax-included and tax-excluded"
    )]
    MissingRate(String),
}

fn rank(precedence: &[String], reads: &[SourceRead], r: ItemRef) -> (usize, u32, u32) {
    let name = reads
        .get(r.source as usize)
        .map_or("", |s| s.options.name.as_str());
    let p = precedence
        .iter()
        .position(|n| n == name)
        .unwrap_or(precedence.len());
    (p, r.source, r.index)
}

fn sanitize(raw: &str, max: usize) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.len() > max {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(raw, &mut h);
        let tail = format!("-{:016x}", std::hash::Hasher::finish(&h));
        s.truncate(max.saturating_sub(tail.len()));
        s.push_str(&tail);
    }
    s
}

/// The legacy identifier of an item: its id, else its SKU, else its line, in its source.
fn legacy_identifier(source: &str, item: &SourceItem) -> Identifier {
    match (&item.legacy_id, &item.sku) {
        (Some(id), _) => Identifier::Legacy {
            system: source.to_owned(),
            id: id.clone(),
        },
        (None, Some(sku)) => Identifier::Legacy {
            system: format!("{source}-sku"),
            id: sku.clone(),
        },
        (None, None) => Identifier::Legacy {
            system: format!("{source}-line"),
            id: item.line.to_string(),
        },
    }
}

/// A source's price in the chain's pricing: per kilogram for weighed items priced per another
/// unit, tax included or not as the chain prices, rounded half-up to the minor unit.
fn chain_price(
    p: Money,
    item: &SourceItem,
    source: &crate::model::SourceOptions,
    options: &CanonicalOptions,
    tax: &TaxCategory,
) -> Option<Money> {
    // A pack's price is shared out over its units.
    let p = match item.pack_size {
        Some(pack) if pack > Decimal::ONE => p.to_decimal().checked_div(pack).and_then(|v| {
            Money::from_decimal_rounded(v, p.currency(), RoundingMode::HalfUp).ok()
        })?,
        _ => p,
    };
    let p = match (item.sold_by_weight, source.weight_unit_grams) {
        (true, Some(grams)) if !grams.is_zero() && grams != Decimal::from(1000) => p
            .to_decimal()
            .checked_mul(Decimal::from(1000))
            .and_then(|v| v.checked_div(grams))
            .and_then(|v| {
                Money::from_decimal_rounded(v, p.currency(), RoundingMode::HalfUp).ok()
            })?,
        _ => p,
    };
    if source.prices_include_tax == options.prices_include_tax {
        return Some(p);
    }
    let rate = options
        .tax_rates
        .get(tax.as_str())
        .copied()
        .unwrap_or_default();
    let factor = rate
        .checked_div(Decimal::from(100))
        .and_then(|r| r.checked_add(Decimal::ONE))?;
    let value = if options.prices_include_tax {
        p.to_decimal().checked_mul(factor)
    } else {
        p.to_decimal().checked_div(factor)
    }?;
    Money::from_decimal_rounded(value, options.currency, RoundingMode::HalfUp).ok()
}

/// Builds the canonical catalog from matched sources.
pub fn build(
    reads: &[SourceRead],
    matching: &Matching,
    options: &CanonicalOptions,
) -> Result<CanonicalCatalog, OptionsError> {
    let category =
        |c: &str| TaxCategory::parse(c).map_err(|_| OptionsError::TaxCategory(c.to_owned()));
    let default_tax = category(&options.default_tax)?;
    let untaxed = category(&options.untaxed)?;
    let tax_map: BTreeMap<String, TaxCategory> = options
        .tax_map
        .iter()
        .map(|(k, v)| Ok((k.to_lowercase(), category(v)?)))
        .collect::<Result<_, OptionsError>>()?;
    let converting = reads
        .iter()
        .any(|r| r.options.prices_include_tax != options.prices_include_tax);
    if converting {
        for c in tax_map.values().chain([&default_tax]) {
            if !options.tax_rates.contains_key(c.as_str()) {
                return Err(OptionsError::MissingRate(c.to_string()));
            }
        }
    }
    let mut out = CanonicalCatalog::default();
    // Reserved once: a list of half a million variants grown by doubling holds both copies.
    out.variants.reserve_exact(matching.clusters.len());
    // SKUs in use (as hashes) and HQ's variants found again.
    let mut taken: HashSet<u128> = options.existing.skus.iter().map(|s| key_hash(s)).collect();
    let mut reused: HashSet<u32> = HashSet::new();
    // Identifier key (as a 128-bit hash, to keep millions of keys small) → index of the variant
    // that holds it.
    let mut claimed: HashMap<u128, usize> = HashMap::new();
    let mut unmapped_locations: HashSet<(u32, std::sync::Arc<str>)> = HashSet::new();
    let mut unmapped_taxes: HashSet<(u32, String)> = HashSet::new();
    for cluster in &matching.clusters {
        let mut by_title = cluster.clone();
        by_title.sort_by_key(|r| rank(&options.title_precedence, reads, *r));
        let mut by_price = cluster.clone();
        by_price.sort_by_key(|r| rank(&options.price_precedence, reads, *r));
        // The title comes from the first source by precedence that has one.
        let titled = by_title.iter().copied().find(|r| {
            r.get(reads)
                .is_some_and(|i| !i.product_title.trim().is_empty())
        });
        let Some(winner_ref) = titled.or_else(|| by_title.first().copied()) else {
            continue;
        };
        let Some(winner) = winner_ref.get(reads) else {
            continue;
        };
        let source_of = |r: ItemRef| reads.get(r.source as usize);
        let diag =
            |r: ItemRef, severity: Severity, code: &'static str, reason: String| Diagnostic {
                file: source_of(r)
                    .map(|s| s.options.file.clone())
                    .unwrap_or_default(),
                line: r.get(reads).map_or(0, |i| i.line),
                column: None,
                severity,
                code,
                reason,
            };
        if winner.variant_title().trim().is_empty() {
            out.diagnostics.push(diag(
                winner_ref,
                Severity::Error,
                "title-missing",
                "the variant has no title in any source; not imported".to_owned(),
            ));
            continue;
        }
        let all_inactive = cluster
            .iter()
            .all(|r| r.get(reads).is_some_and(|i| i.active == Some(false)));
        if all_inactive && !options.include_inactive {
            out.diagnostics.push(diag(
                winner_ref,
                Severity::Warning,
                "inactive",
                format!("`{}` is inactive (draft, archived or not for sale) in every source; not imported", winner.variant_title()),
            ));
            continue;
        }

        // Identifiers: every valid GTIN and every legacy id of every member.
        let mut provenance = Vec::new();
        let mut identifiers: Vec<(Identifier, IdentifierRef, ItemRef)> = Vec::new();
        let mut seen = HashSet::new();
        for r in &by_title {
            let Some(item) = r.get(reads) else { continue };
            for (_, b) in &item.barcodes {
                if let Some(g) = b.gtin() {
                    let id = Identifier::Gtin(g);
                    if seen.insert(id.key()) {
                        identifiers.push((id, IdentifierRef::Gtin(g), *r));
                    }
                }
            }
            let source = source_of(*r).map_or("", |s| s.options.name.as_str());
            let legacy = legacy_identifier(source, item);
            if seen.insert(legacy.key()) {
                identifiers.push((legacy, IdentifierRef::Legacy(*r), *r));
            }
            if let (Some(sku), Some(_)) = (&item.sku, &item.legacy_id) {
                let legacy_sku = Identifier::Legacy {
                    system: format!("{source}-sku"),
                    id: sku.clone(),
                };
                if seen.insert(legacy_sku.key()) {
                    identifiers.push((legacy_sku, IdentifierRef::LegacySku(*r), *r));
                }
            }
        }

        // The global SKU: the one HQ already has for any of these identifiers, else the
        // winning source's SKU, else another member's, else one made from a GTIN or legacy id.
        // A restricted-circulation GTIN at HQ may be another source's item: it never finds one.
        let found = identifiers
            .iter()
            .filter(|_| !options.existing.by_identifier.is_empty())
            .filter(|(id, _, _)| {
                !matches!(id, Identifier::Gtin(g) if crate::normalize::is_restricted(g))
            })
            .find_map(|(id, _, _)| options.existing.holder(id));
        let held = found
            .filter(|i| reused.insert(*i))
            .and_then(|i| options.existing.skus.get(i as usize));
        let (sku, existing) = match held {
            Some(s) => (s.clone(), true),
            _ => {
                let candidates = by_title
                    .iter()
                    .filter_map(|r| r.get(reads).and_then(|i| i.sku.as_deref()))
                    .filter_map(|s| Sku::parse(s).ok())
                    .map(|s| s.as_str().to_owned());
                let fallback = identifiers.first().map(|(id, _, _)| match id {
                    Identifier::Gtin(g) => format!("G{}", g.to_gtin14()),
                    other => sanitize(&other.key().replacen("legacy:", "", 1), 64),
                });
                let mut chosen = None;
                for c in candidates.chain(fallback) {
                    if !taken.contains(&key_hash(&c)) {
                        chosen = Some(c);
                        break;
                    }
                }
                let chosen = match chosen {
                    Some(c) => c,
                    None => {
                        let base = winner
                            .sku
                            .as_deref()
                            .map_or_else(|| "K".to_owned(), |s| sanitize(s, 56));
                        let mut n = 2;
                        let mut c = format!("{base}-{n}");
                        while taken.contains(&key_hash(&c)) {
                            n += 1;
                            c = format!("{base}-{n}");
                        }
                        out.diagnostics.push(diag(
                            winner_ref,
                            Severity::Warning,
                            "sku-renamed",
                            format!(
                                "SKU `{}` is taken by another variant; this one becomes `{c}`",
                                winner.sku.as_deref().unwrap_or("")
                            ),
                        ));
                        c
                    }
                };
                (chosen, false)
            }
        };
        let Ok(sku) = Sku::parse(&sku) else { continue };
        taken.insert(key_hash(sku.as_str()));
        provenance.push(FieldFrom::Sku(winner_ref));

        let mut kept = Vec::new();
        for (id, compact, r) in identifiers {
            let key = id.key();
            let variant_index = out.variants.len();
            match claimed.get(&key_hash(&key)).copied() {
                Some(other) if other != variant_index => {
                    let other = out.variants.get(other).map_or("", |v| v.sku.as_str());
                    out.diagnostics.push(diag(
                        r,
                        Severity::Warning,
                        "identifier-duplicate",
                        format!(
                            "identifier `{key}` already belongs to `{other}`; not added to `{sku}`"
                        ),
                    ));
                }
                _ => {
                    claimed.insert(key_hash(&key), variant_index);
                    let index = u32::try_from(kept.len()).unwrap_or(u32::MAX);
                    provenance.push(FieldFrom::Identifier(index, r));
                    kept.push(compact);
                }
            }
        }

        // Tax category from the first member that says anything about tax.
        let mut tax = default_tax.clone();
        let tax_source = by_title.iter().copied().find(|r| {
            r.get(reads)
                .is_some_and(|i| !i.tax_classes.is_empty() || i.taxable.is_some())
        });
        if let Some(r) = tax_source {
            if let Some(item) = r.get(reads) {
                if item.taxable == Some(false) && item.tax_classes.is_empty() {
                    tax = untaxed.clone();
                } else if !item.tax_classes.is_empty() {
                    let joined = item.tax_classes.join("+").to_lowercase();
                    let first = item
                        .tax_classes
                        .first()
                        .map(|t| t.to_lowercase())
                        .unwrap_or_default();
                    match tax_map.get(&joined).or_else(|| tax_map.get(&first)) {
                        Some(c) => tax = c.clone(),
                        None => {
                            if unmapped_taxes.insert((r.source, joined.clone())) {
                                out.diagnostics.push(diag(
                                    r,
                                    Severity::Warning,
                                    "tax-unmapped",
                                    format!("tax `{}` is not in the tax mapping; `{}` is used (and for every later item with it)", item.tax_classes.join("+"), default_tax),
                                ));
                            }
                        }
                    }
                }
                provenance.push(FieldFrom::Tax(r));
            }
        }

        // Price: the first member by price precedence with a price in the chain's currency,
        // converted to the chain's pricing.
        let mut price = None;
        for r in &by_price {
            let (Some(item), Some(src)) = (r.get(reads), source_of(*r)) else {
                continue;
            };
            let Some(p) = item.price else { continue };
            if p.currency() != options.currency {
                out.diagnostics.push(diag(
                    *r,
                    Severity::Warning,
                    "price-currency",
                    format!(
                        "price is in {}, the chain prices in {}; not used",
                        p.currency().code(),
                        options.currency.code()
                    ),
                ));
                continue;
            }
            if p.is_negative() {
                out.diagnostics.push(diag(
                    *r,
                    Severity::Warning,
                    "price-negative",
                    format!("price {} is negative; not used", p.amount_string()),
                ));
                continue;
            }
            let converted = chain_price(p, item, &src.options, options, &tax);
            if let Some(c) = converted {
                price = Some(c);
                provenance.push(FieldFrom::Price(*r));
                break;
            }
        }
        // Prices per legacy location that maps to a Kassa store, where they differ from the
        // chain price: the first source by price precedence that has one for that store.
        let mut store_prices: Vec<StorePrice> = Vec::new();
        for r in &by_price {
            let (Some(item), Some(src)) = (r.get(reads), source_of(*r)) else {
                continue;
            };
            for lp in &item.location_prices {
                let keyed = format!("{}/{}", src.options.name, lp.location);
                let Some(store) = options
                    .locations
                    .get(&keyed)
                    .or_else(|| options.locations.get(&*lp.location))
                else {
                    continue;
                };
                if lp.price.currency() != options.currency
                    || lp.price.is_negative()
                    || store_prices.iter().any(|s| &s.store == store)
                {
                    continue;
                }
                let Some(converted) = chain_price(lp.price, item, &src.options, options, &tax)
                else {
                    continue;
                };
                if Some(converted) != price {
                    store_prices.push(StorePrice {
                        store: store.clone(),
                        price: converted,
                        item: *r,
                    });
                }
            }
        }
        let mut cost = None;
        for r in &by_price {
            if let Some(c) = r
                .get(reads)
                .and_then(|i| i.cost)
                .filter(|c| c.currency() == options.currency)
            {
                cost = Some(c);
                provenance.push(FieldFrom::Cost(*r));
                break;
            }
        }
        provenance.push(FieldFrom::Title(winner_ref));
        let unit = if cluster
            .iter()
            .any(|r| r.get(reads).is_some_and(|i| i.sold_by_weight))
        {
            UnitOfSale::Weight
        } else {
            UnitOfSale::Each
        };
        let winner_source = source_of(winner_ref).map_or("", |s| s.options.name.as_str());
        let product_id = sanitize(&format!("{winner_source}-{}", winner.product_key), 64);

        // Opening counts per mapped Kassa location, from the first member that has stock there.
        // Several legacy locations of one row may map to one Kassa location (a shop and its
        // stockroom): their stock is added up.
        let mut counted: HashSet<String> = HashSet::new();
        for r in &by_title {
            let (Some(item), Some(src)) = (r.get(reads), source_of(*r)) else {
                continue;
            };
            let mut here: Vec<(&String, Decimal)> = Vec::new();
            for s in &item.stock {
                let keyed = format!("{}/{}", src.options.name, s.location);
                let Some(location) = options
                    .locations
                    .get(&keyed)
                    .or_else(|| options.locations.get(&*s.location))
                else {
                    if unmapped_locations.insert((r.source, s.location.clone())) {
                        out.diagnostics.push(diag(*r, Severity::Warning, "location-unmapped", format!("stock location `{keyed}` is not mapped to a Kassa location; its counts are not imported")));
                    }
                    continue;
                };
                if counted.contains(location) {
                    continue;
                }
                let quantity = match (item.pack_size, src.options.weight_unit_grams) {
                    (Some(pack), _) => s.quantity.checked_mul(pack).unwrap_or(s.quantity),
                    (None, _) if !item.sold_by_weight => s.quantity,
                    (None, Some(grams)) => s
                        .quantity
                        .checked_mul(grams)
                        .and_then(|q| q.checked_div(Decimal::from(1000)))
                        .map_or(s.quantity, |q| q.normalize()),
                    _ => s.quantity,
                };
                match here.iter_mut().find(|(l, _)| *l == location) {
                    Some((_, sum)) => *sum = sum.checked_add(quantity).unwrap_or(*sum),
                    None => here.push((location, quantity)),
                }
            }
            for (location, quantity) in here {
                counted.insert(location.clone());
                out.opening_counts.push(OpeningCount {
                    location: location.clone(),
                    sku: sku.clone(),
                    quantity,
                    item: *r,
                });
            }
        }
        // Half a million variants are held at once: no spare room in their lists.
        kept.shrink_to_fit();
        provenance.shrink_to_fit();
        store_prices.shrink_to_fit();
        out.variants.push(CanonicalVariant {
            sku,
            product_id,
            product_name: winner.product_title.clone(),
            name: winner.variant_title(),
            identifier_refs: kept,
            tax,
            unit,
            price,
            store_prices,
            cost,
            members: cluster.clone(),
            existing,
            sources: provenance,
        });
    }
    Ok(out)
}
