//! Reference data as HQ publishes it and `kassa store seed` loads it: jurisdictions, stores,
//! products and pricebooks (format `kassa-seed/1`). Parsing builds and validates the domain
//! types, so a file that loads is consistent.

use domain::barcode::{EmbeddedKind, Gtin, RcnLayout};
use domain::catalog::{Catalog, Channels, Identifier, Plu, Product, Sku, TaxCategory, Variant};
use domain::money::RoundingMode;
use domain::pricebook::{PriceEntry, Pricebook, Scope};
use domain::tax::{
    CashRounding, ItemThreshold, Jurisdiction, PricingMode, RoundingLevel, RoundingPolicy,
    TaxComponent, TaxRate, TaxRule,
};
use domain::{Currency, Money, StoreId, Timestamp, UnitOfSale};
use serde::{Deserialize, Serialize};

use crate::FieldError;
use crate::api::parse_instant;
use crate::error::AtField;

/// The format name this module reads and writes.
pub const FORMAT: &str = "kassa-seed/1";

/// A whole reference data set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct SeedDto {
    pub format: String,
    pub jurisdictions: Vec<JurisdictionDto>,
    pub stores: Vec<StoreDto>,
    pub products: Vec<ProductDto>,
    pub pricebooks: Vec<PricebookDto>,
    /// Members of staff; PINs as argon2 hashes, or in clear for the one who hashes them on
    /// import (`kassa store seed`, `kassa hq publish`), never further.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub staff: Vec<StaffDto>,
    /// The catalog's category tree; a product names the category it sits in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<CategoryDto>,
}

/// A category of the catalog, under another or at the top.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryDto {
    /// Category id (1 to 64 of `a-z`, `0-9`, `-`, `_`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The category it sits under; none at the top.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// The longest category name.
pub const CATEGORY_NAME_CHARS: usize = 100;

impl CategoryDto {
    /// Checks id and name; `path` names the entry in errors.
    pub fn check(&self, path: &str) -> Result<(), FieldError> {
        check_category_id(&self.id, &format!("{path}.id"))?;
        let name = self.name.trim();
        if name.is_empty() || self.name.chars().count() > CATEGORY_NAME_CHARS {
            return Err(FieldError::new(
                format!("{path}.name"),
                format!("must be 1 to {CATEGORY_NAME_CHARS} characters"),
            ));
        }
        if let Some(parent) = &self.parent {
            check_category_id(parent, &format!("{path}.parent"))?;
        }
        Ok(())
    }

    /// Checks a whole tree: each category, ids unique, every parent one of them, and no
    /// category under itself (however far down).
    pub fn check_tree(categories: &[CategoryDto], path: &str) -> Result<(), FieldError> {
        let mut parents = std::collections::BTreeMap::new();
        for (i, c) in categories.iter().enumerate() {
            c.check(&format!("{path}[{i}]"))?;
            if parents.insert(c.id.as_str(), c.parent.as_deref()).is_some() {
                return Err(FieldError::new(
                    format!("{path}[{i}].id"),
                    format!("`{}` appears twice", c.id),
                ));
            }
        }
        for (i, c) in categories.iter().enumerate() {
            let at = || format!("{path}[{i}].parent");
            let mut up = c.parent.as_deref();
            let mut steps = 0;
            while let Some(parent) = up {
                if parent == c.id || steps > categories.len() {
                    return Err(FieldError::new(
                        at(),
                        format!("`{}` would sit under itself", c.id),
                    ));
                }
                up = *parents
                    .get(parent)
                    .ok_or_else(|| FieldError::new(at(), format!("no category `{parent}`")))?;
                steps += 1;
            }
        }
        Ok(())
    }
}

/// Checks a category id: 1 to 64 of `a-z`, `0-9`, `-`, `_`.
pub fn check_category_id(id: &str, path: &str) -> Result<(), FieldError> {
    let fine = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if fine {
        Ok(())
    } else {
        Err(FieldError::new(
            path,
            format!(
                "`{}` is not 1 to 64 of a-z, 0-9, `-` and `_`",
                id.chars().take(64).collect::<String>()
            ),
        ))
    }
}

/// A member of staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffDto {
    /// Staff id (letters, digits, `-`, `_`, `.`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// `cashier`, `supervisor`, `manager` or `admin`.
    pub role: String,
    /// The PIN in clear: only in a file an administrator imports; hashed on import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    /// The PIN's argon2id hash (PHC string), salted and peppered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_hash: Option<String>,
}

impl StaffDto {
    /// Checks id, role and PIN; `path` names the entry in errors.
    pub fn check(&self, path: &str) -> Result<(), FieldError> {
        let f = |name: &str| format!("{path}.{name}");
        domain::StaffId::parse(&self.id).at(|| f("id"))?;
        if self.name.trim().is_empty() {
            return Err(FieldError::new(f("name"), "must not be empty"));
        }
        if domain::staff::Role::parse(&self.role).is_none() {
            return Err(FieldError::new(
                f("role"),
                format!(
                    "`{}` is not one of cashier, supervisor, manager, admin",
                    self.role
                ),
            ));
        }
        match (&self.pin, &self.pin_hash) {
            (Some(pin), None) => {
                domain::staff::check_pin(pin).map_err(|e| FieldError::new(f("pin"), e))
            }
            (None, Some(hash)) if hash.starts_with("$argon2id$") => Ok(()),
            (None, Some(_)) => Err(FieldError::new(
                f("pin_hash"),
                "is not an argon2id hash in PHC form",
            )),
            _ => Err(FieldError::new(
                f("pin"),
                "give exactly one of pin and pin_hash",
            )),
        }
    }

    /// The same entry with its PIN hashed under `pepper`.
    pub fn hashed(&self, pepper: &[u8]) -> Result<StaffDto, crate::pin::PinError> {
        let mut out = self.clone();
        if let Some(pin) = out.pin.take() {
            out.pin_hash = Some(crate::pin::hash(pepper, &pin)?);
        }
        Ok(out)
    }
}

/// A tax jurisdiction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct JurisdictionDto {
    pub code: String,
    pub currency: String,
    pub pricing: String,
    pub rounding: RoundingDto,
    pub cash_rounding: Option<String>,
    pub rules: Vec<RuleDto>,
}

/// A rounding policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RoundingDto {
    pub mode: String,
    pub level: String,
}

/// A tax rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RuleDto {
    pub category: String,
    pub components: Vec<ComponentDto>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Other components for items priced under an amount each (`{"below": "110.00",
    /// "components": []}`: New York's clothing exemption).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub under: Option<ThresholdDto>,
}

/// A per-item price threshold of a tax rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ThresholdDto {
    pub below: String,
    pub components: Vec<ComponentDto>,
}

/// A tax component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ComponentDto {
    pub code: String,
    pub rate: String,
    pub compound: bool,
}

/// A store's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct StoreDto {
    pub id: String,
    pub name: String,
    pub address: String,
    pub jurisdiction: String,
    pub currency: String,
    pub locale: String,
    pub timezone: String,
    pub scale_layouts: Vec<LayoutDto>,
    /// The seller's VAT (tax) number, printed on every receipt (`ATU13572463`,
    /// `CHE-116.348.254 MWST`); absent in files written before receipts carried it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_id: Option<String>,
    /// The till's quick keys, in pages (tabs); none: the till offers the items with a PLU.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_keys: Vec<QuickKeyPageDto>,
}

/// Most quick-key pages a store may have, and most keys on a page.
pub const QUICK_KEY_PAGES: usize = 12;
/// Most keys on one quick-key page.
pub const QUICK_KEYS_PER_PAGE: usize = 60;
/// Longest page or key label, in characters.
pub const QUICK_KEY_LABEL: usize = 32;

/// A page (tab) of quick keys on the till's selling screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuickKeyPageDto {
    /// The tab's label (`"Gebäck"`).
    pub label: String,
    /// Its keys.
    pub keys: Vec<QuickKeyDto>,
}

/// One quick key: a variant of the catalog, with an optional label (else the variant's name),
/// colour (`#rrggbb`) and position on its page (1 is top left, counting across; keys without one
/// follow in file order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuickKeyDto {
    /// The variant it rings up.
    pub sku: String,
    /// Text on the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Background colour, `#rrggbb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<String>,
    /// Place on the page, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
}

impl QuickKeyPageDto {
    /// Checks a store's pages against the catalog: labels given and not too long, every key's
    /// SKU in the catalog (`known`), colours `#rrggbb`, positions from 1 to the page size and
    /// not repeated.
    pub fn check_pages(
        pages: &[QuickKeyPageDto],
        known: &dyn Fn(&Sku) -> bool,
        field: &str,
    ) -> Result<(), FieldError> {
        if pages.len() > QUICK_KEY_PAGES {
            return Err(FieldError::new(
                field,
                format!("{} pages; at most {QUICK_KEY_PAGES}", pages.len()),
            ));
        }
        let label = |text: &str, at: String| {
            let n = text.chars().count();
            if text.trim().is_empty() {
                Err(FieldError::new(at, "is empty"))
            } else if n > QUICK_KEY_LABEL {
                Err(FieldError::new(
                    at,
                    format!("{n} characters; at most {QUICK_KEY_LABEL}"),
                ))
            } else {
                Ok(())
            }
        };
        for (p, page) in pages.iter().enumerate() {
            let f = format!("{field}[{p}]");
            label(&page.label, format!("{f}.label"))?;
            if page.keys.len() > QUICK_KEYS_PER_PAGE {
                return Err(FieldError::new(
                    format!("{f}.keys"),
                    format!("{} keys; at most {QUICK_KEYS_PER_PAGE}", page.keys.len()),
                ));
            }
            let mut taken = std::collections::BTreeSet::new();
            for (k, key) in page.keys.iter().enumerate() {
                let f = format!("{f}.keys[{k}]");
                let sku = Sku::parse(&key.sku).at(|| format!("{f}.sku"))?;
                if !known(&sku) {
                    return Err(FieldError::new(
                        format!("{f}.sku"),
                        format!("no variant `{sku}` in the catalog"),
                    ));
                }
                if let Some(text) = &key.label {
                    label(text, format!("{f}.label"))?;
                }
                if let Some(colour) = &key.colour {
                    let hex = colour.strip_prefix('#').unwrap_or("");
                    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                        return Err(FieldError::new(
                            format!("{f}.colour"),
                            format!("`{colour}` is not a colour such as #1e88e5"),
                        ));
                    }
                }
                if let Some(position) = key.position {
                    let max = u32::try_from(QUICK_KEYS_PER_PAGE).unwrap_or(u32::MAX);
                    if position == 0 || position > max {
                        return Err(FieldError::new(
                            format!("{f}.position"),
                            format!("{position} is not from 1 to {max}"),
                        ));
                    }
                    if !taken.insert(position) {
                        return Err(FieldError::new(
                            format!("{f}.position"),
                            format!("position {position} is taken by another key on this page"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A restricted-circulation label layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct LayoutDto {
    pub prefixes: Vec<String>,
    pub item_start: usize,
    pub item_len: usize,
    pub value_start: usize,
    pub value_len: usize,
    pub kind: String,
    pub price_check_digit_at: Option<usize>,
}

/// A product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ProductDto {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub brand: Option<String>,
    /// The category the product sits in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub variants: Vec<VariantDto>,
}

/// A variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct VariantDto {
    pub sku: String,
    pub name: String,
    pub identifiers: Vec<IdentifierDto>,
    pub tax: String,
    pub unit: String,
    pub channels: String,
    /// An open-price item (a department key such as "Sundries 20 %"): the cashier types its
    /// price at the till, from 0.01 to [`OPEN_PRICE_MAX_MINOR`] minor units.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open_price: bool,
}

/// The highest price a cashier may type for an open-price item, in minor units (9,999.99): a
/// guard against a slip of the finger (`1299` for `12.99`), not a business limit.
pub const OPEN_PRICE_MAX_MINOR: i64 = 999_999;

/// An identifier: `{"gtin": "…"}`, `{"plu": "…"}` or `{"legacy": {"system": …, "id": …}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
#[allow(missing_docs)]
pub enum IdentifierDto {
    Gtin(String),
    Plu(String),
    Legacy { system: String, id: String },
}

/// A pricebook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct PricebookDto {
    pub id: String,
    pub version: u64,
    pub scope: ScopeDto,
    pub currency: String,
    pub entries: Vec<PriceEntryDto>,
}

/// `"chain"` or `{"store": "id"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[allow(missing_docs)]
pub enum ScopeDto {
    Chain(String),
    Store { store: String },
}

/// A price entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct PriceEntryDto {
    pub sku: String,
    pub price: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl StoreDto {
    /// Validates a store at `path` (`stores[2]`) against the jurisdictions it may name: a
    /// name and a locale, a time zone the tz database knows, its jurisdiction's currency, a
    /// VAT number's form. Its quick keys are checked against a catalog
    /// ([`QuickKeyPageDto::check_pages`]).
    pub fn parse(
        &self,
        path: &str,
        jurisdictions: &[Jurisdiction],
    ) -> Result<StoreConfig, FieldError> {
        let s = self;
        let f = |name: &str| format!("{path}.{name}");
        let text = |name: &str, value: &str, least: usize, most: usize| {
            let n = value.trim().chars().count();
            if n < least || value.chars().count() > most {
                return Err(FieldError::new(
                    f(name),
                    format!("{least} to {most} characters"),
                ));
            }
            Ok(())
        };
        text("name", &s.name, 1, 100)?;
        text("address", &s.address, 0, 500)?;
        text("locale", &s.locale, 2, 35)?;
        if jiff::tz::TimeZone::get(&s.timezone).is_err() {
            return Err(FieldError::new(
                f("timezone"),
                format!(
                    "`{}` is not a time zone of the tz database (Europe/Vienna)",
                    s.timezone
                ),
            ));
        }
        let jurisdiction = jurisdictions
            .iter()
            .find(|j| j.code() == s.jurisdiction)
            .cloned()
            .ok_or_else(|| {
                FieldError::new(
                    f("jurisdiction"),
                    format!("no jurisdiction `{}` is defined", s.jurisdiction),
                )
            })?;
        let currency = Currency::parse(&s.currency).at(|| f("currency"))?;
        if currency != jurisdiction.currency() {
            return Err(FieldError::new(
                f("currency"),
                format!(
                    "{currency} differs from jurisdiction {}'s {}",
                    jurisdiction.code(),
                    jurisdiction.currency()
                ),
            ));
        }
        let tax_id = match s.tax_id.as_deref().map(str::trim) {
            None => None,
            Some(id)
                if !id.is_empty()
                    && id.chars().count() <= 40
                    && id.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '-' | '/')
                    }) =>
            {
                Some(id.to_owned())
            }
            Some(id) => {
                return Err(FieldError::new(
                    f("tax_id"),
                    format!(
                        "`{id}` is not a VAT number: 1 to 40 letters, digits, spaces, `.`, `-` or `/`"
                    ),
                ));
            }
        };
        Ok(StoreConfig {
            tax_id,
            id: StoreId::parse(&s.id).at(|| f("id"))?,
            name: s.name.clone(),
            address: s.address.clone(),
            currency,
            locale: s.locale.clone(),
            timezone: s.timezone.clone(),
            jurisdiction,
            layouts: s
                .scale_layouts
                .iter()
                .enumerate()
                .map(|(l, layout)| layout.parse(&f(&format!("scale_layouts[{l}]"))))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// A store's configuration as domain values.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The store.
    pub id: StoreId,
    /// Its name, for receipts.
    pub name: String,
    /// Its address, for receipts.
    pub address: String,
    /// Its currency.
    pub currency: Currency,
    /// BCP 47 locale for formatting.
    pub locale: String,
    /// IANA time zone of its business day.
    pub timezone: String,
    /// Its tax jurisdiction.
    pub jurisdiction: Jurisdiction,
    /// Its scale-label layouts.
    pub layouts: Vec<RcnLayout>,
    /// The seller's VAT (tax) number, for receipts.
    pub tax_id: Option<String>,
}

/// A validated reference data set.
#[derive(Debug, Clone)]
pub struct Seed {
    /// Store configurations.
    pub stores: Vec<StoreConfig>,
    /// The catalog.
    pub catalog: Catalog,
    /// Pricebooks.
    pub pricebooks: Vec<Pricebook>,
}

fn instant(
    value: Option<&str>,
    field: impl Fn() -> String,
) -> Result<Option<Timestamp>, FieldError> {
    value
        .map(parse_instant)
        .transpose()
        .map_err(|e| FieldError::new(field(), e.reason))
}

impl JurisdictionDto {
    /// Builds the domain jurisdiction.
    pub fn parse(&self, path: &str) -> Result<Jurisdiction, FieldError> {
        let f = |name: &str| format!("{path}.{name}");
        let currency = Currency::parse(&self.currency).at(|| f("currency"))?;
        let pricing = match self.pricing.as_str() {
            "inclusive" => PricingMode::Inclusive,
            "exclusive" => PricingMode::Exclusive,
            other => {
                return Err(FieldError::new(
                    f("pricing"),
                    format!("`{other}` is not inclusive or exclusive"),
                ));
            }
        };
        let mode = RoundingMode::parse(&self.rounding.mode).ok_or_else(|| {
            FieldError::new(
                f("rounding.mode"),
                format!("`{}` is not half-up, half-even or down", self.rounding.mode),
            )
        })?;
        let level = match self.rounding.level.as_str() {
            "line" => RoundingLevel::Line,
            "document" => RoundingLevel::Document,
            other => {
                return Err(FieldError::new(
                    f("rounding.level"),
                    format!("`{other}` is not line or document"),
                ));
            }
        };
        let cash_rounding = self
            .cash_rounding
            .as_deref()
            .map(|c| {
                let increment = Money::parse_major(c, currency).at(|| f("cash_rounding"))?;
                CashRounding::new(increment).at(|| f("cash_rounding"))
            })
            .transpose()?;
        let rules = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let rf = |name: &str| format!("{path}.rules[{i}].{name}");
                let components = |list: &[ComponentDto], at: &str| {
                    list.iter()
                        .enumerate()
                        .map(|(c, comp)| {
                            let rate = TaxRate::parse_percent(&comp.rate)
                                .at(|| rf(&format!("{at}components[{c}].rate")))?;
                            TaxComponent::new(&comp.code, rate, comp.compound)
                                .at(|| rf(&format!("{at}components[{c}].code")))
                        })
                        .collect::<Result<Vec<_>, FieldError>>()
                };
                let under = match &r.under {
                    None => None,
                    Some(t) => {
                        let below =
                            Money::parse_major(&t.below, currency).at(|| rf("under.below"))?;
                        if !below.is_positive() {
                            return Err(FieldError::new(
                                rf("under.below"),
                                "a threshold must be greater than zero",
                            ));
                        }
                        Some(ItemThreshold {
                            below,
                            components: components(&t.components, "under.")?,
                        })
                    }
                };
                Ok(TaxRule {
                    category: TaxCategory::parse(&r.category).at(|| rf("category"))?,
                    components: components(&r.components, "")?,
                    under,
                    from: instant(r.from.as_deref(), || rf("from"))?
                        .unwrap_or(Timestamp::from_millis(i64::MIN)),
                    to: instant(r.to.as_deref(), || rf("to"))?,
                })
            })
            .collect::<Result<Vec<_>, FieldError>>()?;
        Jurisdiction::new(
            &self.code,
            currency,
            pricing,
            RoundingPolicy { mode, level },
            cash_rounding,
            rules,
        )
        .at(|| f("rules"))
    }
}

impl LayoutDto {
    /// Builds the domain layout.
    pub fn parse(&self, path: &str) -> Result<RcnLayout, FieldError> {
        let kind = match self.kind.as_str() {
            "price" => EmbeddedKind::Price,
            "weight" => EmbeddedKind::Weight,
            other => {
                return Err(FieldError::new(
                    format!("{path}.kind"),
                    format!("`{other}` is not price or weight"),
                ));
            }
        };
        RcnLayout::new(
            self.prefixes.clone(),
            self.item_start,
            self.item_len,
            self.value_start,
            self.value_len,
            kind,
            self.price_check_digit_at,
        )
        .at(|| path.to_owned())
    }
}

impl VariantDto {
    /// Builds the domain variant.
    pub fn parse(&self, path: &str) -> Result<Variant, FieldError> {
        let f = |name: &str| format!("{path}.{name}");
        let identifiers = self
            .identifiers
            .iter()
            .enumerate()
            .map(|(i, id)| {
                Ok(match id {
                    IdentifierDto::Gtin(g) => Identifier::Gtin(
                        Gtin::parse(g).at(|| f(&format!("identifiers[{i}].gtin")))?,
                    ),
                    IdentifierDto::Plu(p) => {
                        Identifier::Plu(Plu::parse(p).at(|| f(&format!("identifiers[{i}].plu")))?)
                    }
                    IdentifierDto::Legacy { system, id } => Identifier::Legacy {
                        system: system.clone(),
                        id: id.clone(),
                    },
                })
            })
            .collect::<Result<Vec<_>, FieldError>>()?;
        let unit = UnitOfSale::parse(&self.unit).ok_or_else(|| {
            FieldError::new(f("unit"), format!("`{}` is not each, kg or l", self.unit))
        })?;
        let channels = match self.channels.as_str() {
            "all" => Channels::ALL,
            "store" => Channels::STORE_ONLY,
            "online" => Channels::ONLINE_ONLY,
            other => {
                return Err(FieldError::new(
                    f("channels"),
                    format!("`{other}` is not all, store or online"),
                ));
            }
        };
        Variant::new(
            Sku::parse(&self.sku).at(|| f("sku"))?,
            &self.name,
            identifiers,
            TaxCategory::parse(&self.tax).at(|| f("tax"))?,
            unit,
            channels,
        )
        .at(|| path.to_owned())
    }
}

impl PricebookDto {
    /// Builds the domain pricebook.
    pub fn parse(&self, path: &str) -> Result<Pricebook, FieldError> {
        let f = |name: &str| format!("{path}.{name}");
        let currency = Currency::parse(&self.currency).at(|| f("currency"))?;
        let scope = match &self.scope {
            ScopeDto::Chain(c) if c == "chain" => Scope::Chain,
            ScopeDto::Chain(other) => {
                return Err(FieldError::new(
                    f("scope"),
                    format!("`{other}` is not chain or {{\"store\": id}}"),
                ));
            }
            ScopeDto::Store { store } => {
                Scope::Store(StoreId::parse(store).at(|| f("scope.store"))?)
            }
        };
        let entries = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let ef = |name: &str| format!("{path}.entries[{i}].{name}");
                Ok(PriceEntry {
                    sku: Sku::parse(&e.sku).at(|| ef("sku"))?,
                    price: Money::parse_major(&e.price, currency).at(|| ef("price"))?,
                    from: instant(e.from.as_deref(), || ef("from"))?
                        .unwrap_or(Timestamp::from_millis(i64::MIN)),
                    to: instant(e.to.as_deref(), || ef("to"))?,
                })
            })
            .collect::<Result<Vec<_>, FieldError>>()?;
        Pricebook::build(&self.id, self.version, scope, currency, entries).at(|| f("entries"))
    }
}

impl SeedDto {
    /// Validates the whole set into domain values.
    pub fn parse(&self) -> Result<Seed, FieldError> {
        if self.format != FORMAT {
            return Err(FieldError::new(
                "format",
                format!("`{}` is not {FORMAT}", self.format),
            ));
        }
        let jurisdictions = self
            .jurisdictions
            .iter()
            .enumerate()
            .map(|(i, j)| j.parse(&format!("jurisdictions[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut staff_ids = std::collections::BTreeSet::new();
        for (i, member) in self.staff.iter().enumerate() {
            member.check(&format!("staff[{i}]"))?;
            if !staff_ids.insert(member.id.as_str()) {
                return Err(FieldError::new(
                    format!("staff[{i}].id"),
                    format!("`{}` appears twice", member.id),
                ));
            }
        }
        CategoryDto::check_tree(&self.categories, "categories")?;
        for (p, product) in self.products.iter().enumerate() {
            if let Some(category) = &product.category {
                if !self.categories.iter().any(|c| c.id == *category) {
                    return Err(FieldError::new(
                        format!("products[{p}].category"),
                        format!("no category `{category}`"),
                    ));
                }
            }
        }
        let stores = self
            .stores
            .iter()
            .enumerate()
            .map(|(i, s)| s.parse(&format!("stores[{i}]"), &jurisdictions))
            .collect::<Result<Vec<_>, FieldError>>()?;
        let products = self
            .products
            .iter()
            .enumerate()
            .map(|(p, product)| {
                let variants = product
                    .variants
                    .iter()
                    .enumerate()
                    .map(|(v, variant)| variant.parse(&format!("products[{p}].variants[{v}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                Product::new(&product.id, &product.name, variants).at(|| format!("products[{p}]"))
            })
            .collect::<Result<Vec<_>, FieldError>>()?;
        let catalog = Catalog::build(products).at(|| "products".into())?;
        for (i, store) in self.stores.iter().enumerate() {
            QuickKeyPageDto::check_pages(
                &store.quick_keys,
                &|sku| catalog.by_sku(sku).is_some(),
                &format!("stores[{i}].quick_keys"),
            )?;
        }
        let pricebooks = self
            .pricebooks
            .iter()
            .enumerate()
            .map(|(i, b)| b.parse(&format!("pricebooks[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Seed {
            stores,
            catalog,
            pricebooks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nyc(under: &str) -> Result<Jurisdiction, FieldError> {
        let json = format!(
            r#"{{"code":"US-NY-NYC","currency":"USD","pricing":"exclusive",
                "rounding":{{"mode":"half-up","level":"document"}},"cash_rounding":null,
                "rules":[{{"category":"clothing","components":[{{"code":"SALES","rate":"8.875","compound":false}}],
                           "from":"2012-04-01T00:00:00-04:00","to":null{under}}}]}}"#
        );
        serde_json::from_str::<JurisdictionDto>(&json)
            .unwrap()
            .parse("jurisdiction")
    }

    fn demo_seed() -> SeedDto {
        serde_json::from_str(include_str!("../../../data/demo/seed.json")).unwrap()
    }

    #[test]
    fn a_store_carries_its_vat_number_and_a_bad_one_names_the_field() {
        let parsed = demo_seed().parse().unwrap();
        let vienna = parsed.stores.iter().find(|s| s.id.as_str() == "vienna-01");
        assert_eq!(
            vienna.and_then(|s| s.tax_id.as_deref()),
            Some("ATU13572463")
        );
        let mut older = demo_seed();
        older.stores[0].tax_id = None;
        assert_eq!(older.parse().unwrap().stores[0].tax_id, None);
        for bad in ["", "  ", "ATU<script>", &"9".repeat(41)] {
            let mut seed = demo_seed();
            seed.stores[0].tax_id = Some(bad.to_owned());
            let err = seed.parse().unwrap_err();
            assert_eq!(err.field, "stores[0].tax_id", "{bad}");
        }
    }

    #[test]
    fn quick_keys_are_checked_against_the_catalog_and_name_the_field_at_fault() {
        let demo: SeedDto = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../data/demo/seed.json"
            ))
            .unwrap(),
        )
        .unwrap();
        assert!(demo.parse().is_ok());
        let with = |keys: serde_json::Value| {
            let mut seed = demo.clone();
            seed.stores[1].quick_keys =
                serde_json::from_value(serde_json::json!([{"label": "Page", "keys": keys}]))
                    .unwrap();
            seed.parse().map(|_| ()).unwrap_err()
        };
        let err = with(serde_json::json!([{"sku": "NOPE-1"}]));
        assert_eq!(err.field, "stores[1].quick_keys[0].keys[0].sku");
        let err = with(serde_json::json!([{"sku": "GRO-BRD-0001", "colour": "blue"}]));
        assert_eq!(err.field, "stores[1].quick_keys[0].keys[0].colour");
        let err = with(serde_json::json!([
            {"sku": "GRO-BRD-0001", "position": 3},
            {"sku": "GRO-BRD-0002", "position": 3}
        ]));
        assert_eq!(err.field, "stores[1].quick_keys[0].keys[1].position");
        let err = with(serde_json::json!([{"sku": "GRO-BRD-0001", "position": 0}]));
        assert_eq!(err.field, "stores[1].quick_keys[0].keys[0].position");
        let long = "x".repeat(QUICK_KEY_LABEL + 1);
        let err = with(serde_json::json!([{"sku": "GRO-BRD-0001", "label": long}]));
        assert_eq!(err.field, "stores[1].quick_keys[0].keys[0].label");
        let mut seed = demo.clone();
        seed.stores[0].quick_keys[2].label = " ".into();
        assert_eq!(
            seed.parse().map(|_| ()).unwrap_err().field,
            "stores[0].quick_keys[2].label"
        );
    }

    #[test]
    fn a_rule_carries_a_per_item_threshold() {
        let j = nyc(r#","under":{"below":"110.00","components":[]}"#).unwrap();
        let under = j.rules()[0].under.as_ref().unwrap();
        assert_eq!(under.below, Money::from_minor(11_000, Currency::USD));
        assert!(under.components.is_empty());
        assert!(nyc("").unwrap().rules()[0].under.is_none());
        let err = nyc(r#","under":{"below":"0","components":[]}"#).unwrap_err();
        assert_eq!(err.field, "jurisdiction.rules[0].under.below");
        let err = nyc(r#","under":{"below":"110.00","components":[{"code":"X","rate":"200","compound":false}]}"#)
            .unwrap_err();
        assert_eq!(err.field, "jurisdiction.rules[0].under.components[0].rate");
    }
}
