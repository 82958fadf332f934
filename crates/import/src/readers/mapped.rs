//! Any other CSV, read through a mapping file (TOML) that names which column holds which field,
//! the delimiter, the encoding (UTF-8, ISO-8859-1, UTF-16), the decimal style, the currency and
//! whether prices include tax.
//!
//! ```toml
//! delimiter = ";"
//! encoding = "ISO-8859-1"
//! decimal = "comma"
//! currency = "EUR"
//! prices_include_tax = true
//!
//! [columns]
//! "Artikelnr" = "sku"
//! "Bezeichnung" = "title"
//! "EAN" = "barcode"
//! "VK brutto" = "price"
//! "Bestand Filiale 1" = "stock:filiale-1"
//! ```

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::diag::Severity;
use crate::model::SourceItem;
use crate::normalize::{self, DecimalStyle};
use crate::table::{Ctx, Encoding, Table};

/// The fields a column may be mapped to; `stock:<location>` and `option:<name>` take a name.
pub const FIELDS: [&str; 19] = [
    "product",
    "title",
    "variant",
    "sku",
    "barcode",
    "legacy_id",
    "price",
    "compare_at_price",
    "cost",
    "tax",
    "taxable",
    "category",
    "brand",
    "supplier",
    "active",
    "weight_g",
    "weight_kg",
    "weight_lb",
    "pack_size",
];

/// Errors in a mapping file.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// Not TOML of the expected shape.
    #[error("mapping file: {0}")]
    Toml(#[from] toml::de::Error),
    /// A setting has a value Kassa does not know.
    #[error("mapping file: {0}")]
    Invalid(String),
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    decimal: Option<DecimalStyle>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    prices_include_tax: Option<bool>,
    columns: BTreeMap<String, String>,
}

/// A parsed mapping file.
#[derive(Debug, Clone)]
pub struct Mapping {
    delimiter: u8,
    encoding: Encoding,
    /// How numbers are written, when declared.
    pub decimal: Option<DecimalStyle>,
    /// The currency, when declared.
    pub currency: Option<domain::Currency>,
    /// Whether prices include tax, when declared.
    pub prices_include_tax: Option<bool>,
    /// Column header → field.
    pub columns: BTreeMap<String, String>,
}

impl Mapping {
    /// Parses a mapping file's text.
    pub fn parse(text: &str) -> Result<Mapping, MappingError> {
        let file: MappingFile = toml::from_str(text)?;
        let delimiter = match file.delimiter.as_deref() {
            None => b',',
            Some("\\t" | "tab" | "\t") => b'\t',
            Some(d) if d.len() == 1 => d.as_bytes().first().copied().unwrap_or(b','),
            Some(d) => {
                return Err(MappingError::Invalid(format!(
                    "delimiter `{d}` must be one ASCII character or `tab`"
                )));
            }
        };
        let encoding = match file.encoding.as_deref() {
            None => Encoding::Utf8,
            Some(e) => Encoding::parse(e).ok_or_else(|| {
                MappingError::Invalid(format!("encoding `{e}` is not UTF-8, ISO-8859-1 or UTF-16"))
            })?,
        };
        let currency = file
            .currency
            .as_deref()
            .map(|c| {
                domain::Currency::parse(c)
                    .map_err(|e| MappingError::Invalid(format!("currency: {e}")))
            })
            .transpose()?;
        for (column, field) in &file.columns {
            let known = FIELDS.contains(&field.as_str())
                || field.starts_with("stock:")
                || field.starts_with("option:");
            if !known {
                return Err(MappingError::Invalid(format!(
                    "column `{column}` maps to `{field}`, which is not one of {} or stock:<location> or option:<name>",
                    FIELDS.join(", ")
                )));
            }
        }
        Ok(Mapping {
            delimiter,
            encoding,
            decimal: file.decimal,
            currency,
            prices_include_tax: file.prices_include_tax,
            columns: file.columns,
        })
    }

    pub(crate) fn delimiter_byte(&self) -> u8 {
        self.delimiter
    }

    pub(crate) fn encoding(&self) -> Encoding {
        self.encoding
    }
}

pub(crate) fn read(t: &mut Table, ctx: &mut Ctx<'_>, m: &Mapping) -> Vec<SourceItem> {
    let mut col: BTreeMap<&str, usize> = BTreeMap::new();
    let mut stock = Vec::new();
    let mut options = Vec::new();
    for (header, field) in &m.columns {
        let Some(c) = t.find(&[header]) else {
            ctx.push(
                1,
                None,
                Severity::Error,
                "header-missing",
                format!("mapped column `{header}` is not in the file"),
            );
            continue;
        };
        if let Some(location) = field.strip_prefix("stock:") {
            stock.push((c, std::sync::Arc::from(location)));
        } else if let Some(name) = field.strip_prefix("option:") {
            options.push((c, name.to_owned()));
        } else {
            col.insert(field.as_str(), c);
        }
    }
    let get = |f: &str| col.get(f).copied();
    let weight = [
        ("weight_g", Decimal::ONE),
        ("weight_kg", Decimal::from(1000)),
    ]
    .into_iter()
    .chain(normalize::grams_per("lb").map(|g| ("weight_lb", g)))
    .find_map(|(f, g)| get(f).map(|c| (c, g)));
    let mut first: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut items = Vec::new();
    while let Some(row) = t.next_row(ctx) {
        if row.is_blank() {
            continue;
        }
        let title = ctx.text(&row, get("title"));
        let sku = ctx.text(&row, get("sku"));
        let key = ctx
            .text(&row, get("product"))
            .or_else(|| sku.clone())
            .unwrap_or_else(|| format!("line:{}", row.line));
        let (product_line, product_title) = first
            .entry(key.clone())
            .or_insert_with(|| (row.line, title.clone().unwrap_or_default()))
            .clone();
        if product_title.is_empty() {
            ctx.push(
                row.line,
                get("title"),
                Severity::Error,
                "title-missing",
                "row has no title; skipped".to_owned(),
            );
            continue;
        }
        let mut item = SourceItem {
            line: row.line,
            product_line,
            product_key: key,
            product_title,
            sku,
            legacy_id: ctx.text(&row, get("legacy_id")),
            category: ctx.text(&row, get("category")),
            brand: ctx.text(&row, get("brand")),
            supplier: ctx.text(&row, get("supplier")),
            ..SourceItem::default()
        };
        ctx.barcode(&row, get("barcode"), &mut item);
        item.price = ctx.money(&row, get("price"), "price");
        item.compare_at_price = ctx.money(&row, get("compare_at_price"), "compare-at price");
        item.cost = ctx.money(&row, get("cost"), "cost");
        item.tax_classes.extend(ctx.text(&row, get("tax")));
        item.taxable = ctx.boolean(&row, get("taxable"));
        item.active = ctx.boolean(&row, get("active"));
        item.pack_size = ctx
            .decimal(&row, get("pack_size"), "pack size")
            .filter(|p| *p > Decimal::ONE);
        if let Some((c, g)) = weight {
            item.weight_grams = ctx.weight(&row, Some(c), g);
        }
        if let Some(v) = ctx.text(&row, get("variant")) {
            item.options.push(("Variant".to_owned(), v));
        }
        for (c, name) in &options {
            if let Some(v) = ctx.text(&row, Some(*c)) {
                item.options.push((name.clone(), v));
            }
        }
        ctx.stock(&row, &stock, &mut item);
        item.compact();
        items.push(item);
    }
    items
}
