//! The catalog: products, their variants, the identifiers a variant is found by, and how each
//! variant is taxed and sold.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::barcode::{BarcodeError, EmbeddedValue, Gtin, RcnLayout};
use crate::quantity::UnitOfSale;

/// Errors from building catalog entries or looking items up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// A SKU with characters or a length Kassa does not accept.
    #[error("sku `{value}` must be 1 to 64 characters of letters, digits, `-`, `_`, `.` or `/`")]
    BadSku {
        /// The text as given.
        value: String,
    },
    /// A PLU that is not 1 to 6 digits.
    #[error("plu `{value}` must be 1 to 6 digits")]
    BadPlu {
        /// The text as given.
        value: String,
    },
    /// A tax category code Kassa does not accept.
    #[error("tax category `{value}` must be 1 to 32 characters of a-z, 0-9, `-` or `_`")]
    BadTaxCategory {
        /// The text as given.
        value: String,
    },
    /// A variant that is sold in no channel.
    #[error("variant `{sku}` is sold in no channel")]
    NoChannel {
        /// The variant's SKU.
        sku: Sku,
    },
    /// An empty name.
    #[error("{what} name must not be empty")]
    EmptyName {
        /// Which name.
        what: &'static str,
    },
    /// A product without variants.
    #[error("product `{product}` has no variants")]
    NoVariants {
        /// The product id.
        product: String,
    },
    /// The same SKU on two variants.
    #[error("sku `{sku}` is used by more than one variant")]
    DuplicateSku {
        /// The SKU.
        sku: Sku,
    },
    /// One identifier pointing at two variants.
    #[error("identifier `{identifier}` belongs to both `{first}` and `{second}`")]
    DuplicateIdentifier {
        /// The identifier.
        identifier: String,
        /// The variant that had it first.
        first: Sku,
        /// The variant that claimed it too.
        second: Sku,
    },
    /// Nothing in the catalog has this code.
    #[error("no item with {kind} `{code}`")]
    NotFound {
        /// What kind of code was looked up.
        kind: &'static str,
        /// The code as given.
        code: String,
    },
    /// The scanned code is not a valid barcode.
    #[error(transparent)]
    Barcode(#[from] BarcodeError),
}

/// A stock-keeping unit: the canonical identity of one variant, chain-wide.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sku(String);

impl Sku {
    /// Parses a SKU; surrounding whitespace is trimmed.
    pub fn parse(value: &str) -> Result<Self, CatalogError> {
        let trimmed = value.trim();
        let ok = !trimmed.is_empty()
            && trimmed.len() <= 64
            && trimmed
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
        if ok {
            Ok(Sku(trimmed.to_owned()))
        } else {
            Err(CatalogError::BadSku {
                value: value.to_owned(),
            })
        }
    }

    /// The SKU as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A price look-up code typed at the till or embedded in a scale label (1 to 6 digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Plu(String);

impl Plu {
    /// Parses a PLU; leading zeros are not significant (`04011` is `4011`).
    pub fn parse(value: &str) -> Result<Self, CatalogError> {
        let trimmed = value.trim();
        if trimmed.is_empty() || trimmed.len() > 6 || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CatalogError::BadPlu {
                value: value.to_owned(),
            });
        }
        let canonical = trimmed.trim_start_matches('0');
        Ok(Plu(if canonical.is_empty() {
            "0".to_owned()
        } else {
            canonical.to_owned()
        }))
    }

    /// The PLU as text, without leading zeros.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tax category such as `standard`, `reduced`, `food`, `zero` or `exempt`; jurisdictions
/// give each category its rates.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaxCategory(String);

impl TaxCategory {
    /// Parses a category code.
    pub fn parse(value: &str) -> Result<Self, CatalogError> {
        let ok = !value.is_empty()
            && value.len() <= 32
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'));
        if ok {
            Ok(TaxCategory(value.to_owned()))
        } else {
            Err(CatalogError::BadTaxCategory {
                value: value.to_owned(),
            })
        }
    }

    /// The category code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TaxCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for TaxCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Another code a variant is found by, besides its SKU.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identifier {
    /// A GS1 barcode.
    Gtin(Gtin),
    /// A price look-up code.
    Plu(Plu),
    /// An id from a system the chain used before (kept for returns and reconciliation).
    Legacy {
        /// The legacy system, such as `shopify` or `lightspeed-r`.
        system: String,
        /// The id in that system.
        id: String,
    },
}

impl Identifier {
    /// A normalised key that is equal for equal identifiers (GTINs as GTIN-14).
    pub fn key(&self) -> String {
        match self {
            Identifier::Gtin(g) => format!("gtin:{}", g.to_gtin14()),
            Identifier::Plu(p) => format!("plu:{}", p.as_str()),
            Identifier::Legacy { system, id } => format!("legacy:{system}:{id}"),
        }
    }
}

/// Where a variant may be sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Channels {
    /// Sold at the till.
    pub store: bool,
    /// Sold in the web shop.
    pub online: bool,
}

impl Channels {
    /// Sold everywhere.
    pub const ALL: Channels = Channels {
        store: true,
        online: true,
    };
    /// Sold only in stores.
    pub const STORE_ONLY: Channels = Channels {
        store: true,
        online: false,
    };
    /// Sold only online.
    pub const ONLINE_ONLY: Channels = Channels {
        store: false,
        online: true,
    };
}

/// One sellable variant of a product (a size, a colour, a pack).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    sku: Sku,
    name: String,
    identifiers: Vec<Identifier>,
    tax_category: TaxCategory,
    unit: UnitOfSale,
    channels: Channels,
}

impl Variant {
    /// A variant; the name must not be empty and at least one channel must be set.
    pub fn new(
        sku: Sku,
        name: &str,
        identifiers: Vec<Identifier>,
        tax_category: TaxCategory,
        unit: UnitOfSale,
        channels: Channels,
    ) -> Result<Self, CatalogError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(CatalogError::EmptyName { what: "variant" });
        }
        if !channels.store && !channels.online {
            return Err(CatalogError::NoChannel { sku });
        }
        Ok(Variant {
            sku,
            name: name.to_owned(),
            identifiers,
            tax_category,
            unit,
            channels,
        })
    }

    /// The canonical SKU.
    pub fn sku(&self) -> &Sku {
        &self.sku
    }
    /// The name shown on the till and the receipt.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Barcodes, PLUs and legacy ids.
    pub fn identifiers(&self) -> &[Identifier] {
        &self.identifiers
    }
    /// The tax category.
    pub fn tax_category(&self) -> &TaxCategory {
        &self.tax_category
    }
    /// How it is sold.
    pub fn unit(&self) -> UnitOfSale {
        self.unit
    }
    /// Where it is sold.
    pub fn channels(&self) -> Channels {
        self.channels
    }
}

/// A product and its variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    id: String,
    name: String,
    variants: Vec<Variant>,
}

impl Product {
    /// Whether `id` and `name` make a product's id and name.
    pub fn check(id: &str, name: &str) -> Result<(), CatalogError> {
        crate::ids::check_code("product id", id, 64).map_err(|_| CatalogError::BadSku {
            value: id.to_owned(),
        })?;
        if name.trim().is_empty() {
            return Err(CatalogError::EmptyName { what: "product" });
        }
        Ok(())
    }

    /// A product with at least one variant.
    pub fn new(id: &str, name: &str, variants: Vec<Variant>) -> Result<Self, CatalogError> {
        Product::check(id, name)?;
        if variants.is_empty() {
            return Err(CatalogError::NoVariants {
                product: id.to_owned(),
            });
        }
        Ok(Product {
            id: id.to_owned(),
            name: name.trim().to_owned(),
            variants,
        })
    }

    /// The product id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The product name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The variants.
    pub fn variants(&self) -> &[Variant] {
        &self.variants
    }
}

/// A consistent catalog: every SKU and every identifier names exactly one variant.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    products: Vec<Product>,
    by_sku: BTreeMap<Sku, (usize, usize)>,
    by_identifier: BTreeMap<String, Sku>,
}

/// The rule that makes a catalog consistent, one variant at a time: no SKU twice, no identifier
/// on two variants. [`Catalog::build`] checks with it; a check of a catalog too large to hold
/// whole (an import of a million rows) feeds it variants as they are made and drops them, so it
/// keeps only a 128-bit hash of each key and each SKU once.
#[derive(Debug, Clone, Default)]
pub struct CatalogIndex {
    skus: Vec<Sku>,
    by_sku: HashMap<u128, u32>,
    by_identifier: HashMap<u128, u32>,
}

impl CatalogIndex {
    /// Adds `variant`, or says why the catalog would not build with it.
    pub fn add(&mut self, variant: &Variant) -> Result<(), CatalogError> {
        let ordinal = u32::try_from(self.skus.len()).unwrap_or(u32::MAX);
        if self
            .by_sku
            .insert(key_hash(variant.sku.as_str()), ordinal)
            .is_some()
        {
            return Err(CatalogError::DuplicateSku {
                sku: variant.sku.clone(),
            });
        }
        self.skus.push(variant.sku.clone());
        for identifier in &variant.identifiers {
            let key = identifier.key();
            let first = *self.by_identifier.entry(key_hash(&key)).or_insert(ordinal);
            if first != ordinal {
                return Err(CatalogError::DuplicateIdentifier {
                    identifier: key,
                    first: self
                        .skus
                        .get(first as usize)
                        .cloned()
                        .unwrap_or_else(|| variant.sku.clone()),
                    second: variant.sku.clone(),
                });
            }
        }
        Ok(())
    }
}

/// A 128-bit hash of a key (an identifier's [`Identifier::key`], a SKU): two SipHash passes
/// with different prefixes, for sets of millions of keys that must stay small.
pub fn key_hash(key: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let half = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        key.hash(&mut h);
        h.finish()
    };
    u128::from(half(1)) << 64 | u128::from(half(2))
}

/// What a scanned or typed code resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanMatch<'a> {
    /// The variant.
    pub variant: &'a Variant,
    /// A price or weight embedded in a scale label, if the code was one.
    pub embedded: Option<EmbeddedValue>,
}

impl Catalog {
    /// Builds the catalog, rejecting duplicate SKUs and identifiers shared by two variants.
    pub fn build(products: Vec<Product>) -> Result<Self, CatalogError> {
        let mut index = CatalogIndex::default();
        let mut by_sku = BTreeMap::new();
        let mut by_identifier = BTreeMap::new();
        for (p, product) in products.iter().enumerate() {
            for (v, variant) in product.variants.iter().enumerate() {
                index.add(variant)?;
                by_sku.insert(variant.sku.clone(), (p, v));
                for identifier in &variant.identifiers {
                    by_identifier.insert(identifier.key(), variant.sku.clone());
                }
            }
        }
        Ok(Catalog {
            products,
            by_sku,
            by_identifier,
        })
    }

    /// The products.
    pub fn products(&self) -> &[Product] {
        &self.products
    }

    /// All variants, in catalog order.
    pub fn variants(&self) -> impl Iterator<Item = &Variant> {
        self.products.iter().flat_map(|p| p.variants.iter())
    }

    /// The variant with this SKU.
    pub fn by_sku(&self, sku: &Sku) -> Option<&Variant> {
        let (p, v) = self.by_sku.get(sku)?;
        self.products.get(*p)?.variants.get(*v)
    }

    /// The variant with this identifier.
    pub fn by_identifier(&self, identifier: &Identifier) -> Option<&Variant> {
        let sku = self.by_identifier.get(&identifier.key())?;
        self.by_sku(sku)
    }

    /// Resolves what a cashier scanned or typed, trying the candidates of [`scan_plan`] in
    /// order.
    pub fn resolve(
        &self,
        code: &str,
        layouts: &[RcnLayout],
    ) -> Result<ScanMatch<'_>, CatalogError> {
        let plan = scan_plan(code, layouts)?;
        for candidate in &plan.candidates {
            let found = match &candidate.lookup {
                Lookup::Identifier(identifier) => self.by_identifier(identifier),
                Lookup::Sku(sku) => self.by_sku(sku),
            };
            if let Some(variant) = found {
                return Ok(ScanMatch {
                    variant,
                    embedded: candidate.embedded,
                });
            }
        }
        Err(plan.not_found(code))
    }
}

/// One way to read a scanned or typed code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Look the code up as a barcode or PLU.
    Identifier(Identifier),
    /// Look it up as a SKU.
    Sku(Sku),
}

/// A reading of a code, with the price or weight a scale label embeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// What to look up.
    pub lookup: Lookup,
    /// The embedded value, for scale labels.
    pub embedded: Option<EmbeddedValue>,
}

/// The readings of a code, in the order they are tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPlan {
    /// Candidates, first match wins.
    pub candidates: Vec<Candidate>,
    /// Why the code is not a valid barcode, if it looked like one; reported when nothing matches.
    pub barcode_error: Option<BarcodeError>,
}

impl ScanPlan {
    /// The error to report when no candidate matched.
    pub fn not_found(self, code: &str) -> CatalogError {
        match self.barcode_error {
            Some(e) => CatalogError::Barcode(e),
            None => CatalogError::NotFound {
                kind: "code",
                code: code.trim().to_owned(),
            },
        }
    }
}

/// How a code is read, in order: a scale label when a layout matches its prefix (its item
/// reference is a PLU, and nothing else is tried); a GTIN; a PLU (up to six digits); a SKU. A
/// code of GTIN length with a bad check digit may still be a SKU; if it is not, the barcode error
/// is what the cashier sees.
pub fn scan_plan(code: &str, layouts: &[RcnLayout]) -> Result<ScanPlan, CatalogError> {
    let code = code.trim();
    let mut candidates = Vec::new();
    let mut barcode_error = None;
    let all_digits = !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit());
    if all_digits && matches!(code.len(), 8 | 12 | 13 | 14) {
        match Gtin::parse(code) {
            Ok(gtin) => {
                for layout in layouts {
                    if let Some(label) = layout.decode(&gtin)? {
                        let plu = Plu::parse(&label.item_ref)?;
                        return Ok(ScanPlan {
                            candidates: vec![Candidate {
                                lookup: Lookup::Identifier(Identifier::Plu(plu)),
                                embedded: Some(label.value),
                            }],
                            barcode_error: None,
                        });
                    }
                }
                candidates.push(Candidate {
                    lookup: Lookup::Identifier(Identifier::Gtin(gtin)),
                    embedded: None,
                });
            }
            Err(e) => barcode_error = Some(e),
        }
    } else if code.contains(['E', 'e']) && code.contains(['.', ',']) {
        // A spreadsheet mangled this barcode; say so rather than "not found".
        if let Err(e) = Gtin::parse(code) {
            barcode_error = Some(e);
        }
    }
    if all_digits && code.len() <= 6 {
        if let Ok(plu) = Plu::parse(code) {
            candidates.push(Candidate {
                lookup: Lookup::Identifier(Identifier::Plu(plu)),
                embedded: None,
            });
        }
    }
    if let Ok(sku) = Sku::parse(code) {
        candidates.push(Candidate {
            lookup: Lookup::Sku(sku),
            embedded: None,
        });
    }
    Ok(ScanPlan {
        candidates,
        barcode_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::barcode::EmbeddedKind;

    fn variant(sku: &str, ids: Vec<Identifier>, unit: UnitOfSale) -> Variant {
        Variant::new(
            Sku::parse(sku).unwrap(),
            sku,
            ids,
            TaxCategory::parse("standard").unwrap(),
            unit,
            Channels::ALL,
        )
        .unwrap()
    }

    fn catalog() -> Catalog {
        Catalog::build(vec![
            Product::new(
                "tee",
                "T-shirt",
                vec![
                    variant(
                        "TEE-S",
                        vec![Identifier::Gtin(Gtin::parse("4006381333931").unwrap())],
                        UnitOfSale::Each,
                    ),
                    variant("TEE-M", vec![], UnitOfSale::Each),
                ],
            )
            .unwrap(),
            Product::new(
                "apples",
                "Apples",
                vec![variant(
                    "APPLE-KG",
                    vec![Identifier::Plu(Plu::parse("4131").unwrap())],
                    UnitOfSale::Weight,
                )],
            )
            .unwrap(),
        ])
        .unwrap()
    }

    #[test]
    fn resolves_barcodes_plus_skus_and_plus() {
        let c = catalog();
        assert_eq!(
            c.resolve("4006381333931", &[])
                .unwrap()
                .variant
                .sku()
                .as_str(),
            "TEE-S"
        );
        // The same GTIN with its leading zero, as some scanners send it.
        assert_eq!(
            c.resolve("04006381333931", &[])
                .unwrap()
                .variant
                .sku()
                .as_str(),
            "TEE-S"
        );
        assert_eq!(
            c.resolve("TEE-M", &[]).unwrap().variant.sku().as_str(),
            "TEE-M"
        );
        assert_eq!(
            c.resolve("04131", &[]).unwrap().variant.sku().as_str(),
            "APPLE-KG"
        );
        assert_eq!(
            c.resolve("NOPE", &[]).unwrap_err().to_string(),
            "no item with code `NOPE`"
        );
        assert!(matches!(
            c.resolve("4006381333932", &[]),
            Err(CatalogError::Barcode(BarcodeError::CheckDigit { .. }))
        ));
    }

    #[test]
    fn resolves_scale_labels_through_their_plu() {
        let c = catalog();
        let layout = RcnLayout::ean13_item5_value5(&["21"], EmbeddedKind::Weight);
        // 21 04131 01250 + check digit: 1.250 kg of apples.
        let payload = "210413101250";
        let check = crate::barcode::gtin_check_digit(payload).unwrap();
        let code = format!("{payload}{check}");
        let found = c.resolve(&code, std::slice::from_ref(&layout)).unwrap();
        assert_eq!(found.variant.sku().as_str(), "APPLE-KG");
        assert_eq!(found.embedded, Some(EmbeddedValue::Weight { grams: 1250 }));
    }

    #[test]
    fn rejects_duplicates() {
        let dup = Catalog::build(vec![
            Product::new("a", "A", vec![variant("X", vec![], UnitOfSale::Each)]).unwrap(),
            Product::new("b", "B", vec![variant("X", vec![], UnitOfSale::Each)]).unwrap(),
        ]);
        assert_eq!(
            dup.unwrap_err().to_string(),
            "sku `X` is used by more than one variant"
        );
        let plu = || vec![Identifier::Plu(Plu::parse("1").unwrap())];
        let dup = Catalog::build(vec![
            Product::new(
                "a",
                "A",
                vec![
                    variant("X", plu(), UnitOfSale::Each),
                    variant("Y", plu(), UnitOfSale::Each),
                ],
            )
            .unwrap(),
        ]);
        assert_eq!(
            dup.unwrap_err().to_string(),
            "identifier `plu:1` belongs to both `X` and `Y`"
        );
    }

    #[test]
    fn codes_are_validated() {
        assert!(Sku::parse("A B").is_err());
        assert!(Plu::parse("1234567").is_err());
        assert!(TaxCategory::parse("Standard").is_err());
        assert!(
            Variant::new(
                Sku::parse("X").unwrap(),
                "x",
                vec![],
                TaxCategory::parse("standard").unwrap(),
                UnitOfSale::Each,
                Channels {
                    store: false,
                    online: false
                }
            )
            .is_err()
        );
    }
}
