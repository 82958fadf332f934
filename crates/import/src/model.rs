//! What a reader produces: the items of one source file with where each came from, and the
//! options that say how to read a source (its format, currency, decimal style, whether its
//! prices include tax).

use std::sync::Arc;

use domain::{Currency, Money};
use rust_decimal::Decimal;

use crate::diag::Diagnostic;
use crate::normalize::{BarcodeCheck, DecimalStyle};

/// The legacy systems Kassa reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// Shopify products CSV (every header dialect).
    Shopify,
    /// WooCommerce product CSV.
    WooCommerce,
    /// Square item library CSV.
    Square,
    /// Lightspeed Retail R-Series item export.
    LightspeedR,
    /// Lightspeed Retail X-Series (Vend) product export.
    LightspeedX,
    /// Loyverse items CSV.
    Loyverse,
    /// Open Source Point of Sale items CSV.
    Ospos,
    /// Odoo product CSV.
    Odoo,
    /// Any CSV described by a mapping file.
    Mapped,
}

impl Format {
    /// Every format, for listing.
    pub const ALL: [Format; 9] = [
        Format::Shopify,
        Format::WooCommerce,
        Format::Square,
        Format::LightspeedR,
        Format::LightspeedX,
        Format::Loyverse,
        Format::Ospos,
        Format::Odoo,
        Format::Mapped,
    ];

    /// The name used on the command line and as the legacy system of identifiers.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Shopify => "shopify",
            Format::WooCommerce => "woocommerce",
            Format::Square => "square",
            Format::LightspeedR => "lightspeed-r",
            Format::LightspeedX => "lightspeed-x",
            Format::Loyverse => "loyverse",
            Format::Ospos => "ospos",
            Format::Odoo => "odoo",
            Format::Mapped => "mapped",
        }
    }

    /// Parses a format name (`woo` and `vend` are accepted too).
    pub fn parse(name: &str) -> Option<Format> {
        let n = name.trim().to_ascii_lowercase();
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == n)
            .or(match n.as_str() {
                "woo" => Some(Format::WooCommerce),
                "vend" | "lightspeed-x-series" => Some(Format::LightspeedX),
                "lightspeed" | "lightspeed-r-series" => Some(Format::LightspeedR),
                "opensourcepos" => Some(Format::Ospos),
                _ => None,
            })
    }
}

/// How to read one source.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// A short name for this source, unique in a run (`web`, `shop-east`); it becomes the
    /// legacy system of its identifiers.
    pub name: String,
    /// The file as the user named it, for diagnostics and provenance.
    pub file: String,
    /// The format.
    pub format: Format,
    /// The currency of its prices.
    pub currency: Currency,
    /// Whether `currency` was declared (in the plan, the source's entry or its mapping file).
    /// When it was not, the first currency sign or code in a price decides it.
    pub currency_declared: bool,
    /// The text encoding the source declares; `None` reads UTF-8 (a BOM is honoured) and
    /// refuses a file that is not.
    pub encoding: Option<crate::table::Encoding>,
    /// How its numbers are written.
    pub decimal: DecimalStyle,
    /// Whether its prices include tax.
    pub prices_include_tax: bool,
    /// Grams in the unit this source prices and counts weighed items by (453.59237 for a
    /// source that sells by the pound); Kassa prices by the kilogram. `None` means kilograms.
    pub weight_unit_grams: Option<Decimal>,
}

impl SourceOptions {
    /// Options with EUR, automatic decimals and tax-exclusive prices.
    pub fn new(name: &str, file: &str, format: Format) -> SourceOptions {
        SourceOptions {
            name: name.to_owned(),
            file: file.to_owned(),
            format,
            currency: Currency::EUR,
            currency_declared: false,
            encoding: None,
            decimal: DecimalStyle::Auto,
            prices_include_tax: false,
            weight_unit_grams: None,
        }
    }
}

/// A price given for one legacy location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationPrice {
    /// The legacy location (store, outlet) as named in the file (shared by every row of the
    /// column).
    pub location: Arc<str>,
    /// The price there.
    pub price: Money,
}

/// A stock figure for one legacy location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationStock {
    /// The legacy location as named in the file (shared by every row of the column).
    pub location: Arc<str>,
    /// The quantity on hand (may be negative in a legacy system).
    pub quantity: Decimal,
}

/// One sellable variant as a legacy source describes it, normalised, with its provenance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceItem {
    /// The line of the row the variant's own fields came from.
    pub line: u64,
    /// The line of the row the product's fields (title, vendor, category) came from.
    pub product_line: u64,
    /// The product this variant belongs to within its source (handle, parent SKU, item name).
    pub product_key: String,
    /// The product's title.
    pub product_title: String,
    /// Option names and values (`Color` = `Green`), in the source's order.
    pub options: Vec<(String, String)>,
    /// The source's SKU, trimmed.
    pub sku: Option<String>,
    /// Barcodes as classified, with the column each came from.
    pub barcodes: Vec<(Arc<str>, BarcodeCheck)>,
    /// The source's own id for the row (Shopify has none; Square's token, Lightspeed's system id).
    pub legacy_id: Option<String>,
    /// The selling price as given (tax included or not, as the source declares).
    pub price: Option<Money>,
    /// A compare-at or regular price higher than `price`.
    pub compare_at_price: Option<Money>,
    /// The unit cost.
    pub cost: Option<Money>,
    /// Tax names or classes as the source writes them; empty when none is named.
    pub tax_classes: Vec<String>,
    /// Tax rates the source itself states with the names (percent).
    pub tax_rates: Vec<Decimal>,
    /// Whether the source charges tax on it.
    pub taxable: Option<bool>,
    /// Category path, `A > B`.
    pub category: Option<String>,
    /// Brand or vendor.
    pub brand: Option<String>,
    /// Supplier.
    pub supplier: Option<String>,
    /// Whether the item is active (sellable) in the source.
    pub active: Option<bool>,
    /// Sold by weight.
    pub sold_by_weight: bool,
    /// Shipping weight in grams.
    pub weight_grams: Option<Decimal>,
    /// Units in one of the source's selling units when it sells packs (a case of 6): its price
    /// and stock are per pack and become per unit in the canonical catalog.
    pub pack_size: Option<Decimal>,
    /// Stock per legacy location.
    pub stock: Vec<LocationStock>,
    /// Prices per legacy location, when the source has them.
    pub location_prices: Vec<LocationPrice>,
}

impl SourceItem {
    /// The variant's display name: product title plus option values (`T-Shirt Green / S`).
    pub fn variant_title(&self) -> String {
        if self.options.is_empty() {
            return self.product_title.clone();
        }
        let values: Vec<&str> = self.options.iter().map(|(_, v)| v.as_str()).collect();
        format!("{} {}", self.product_title, values.join(" / "))
    }

    /// The first valid GTIN.
    pub fn gtin(&self) -> Option<domain::Gtin> {
        self.barcodes.iter().find_map(|(_, b)| b.gtin())
    }

    /// The first valid GTIN that means the same item in every system: restricted-circulation
    /// numbers (prefixes 02, 04, 20 to 29) are numbered by each store or system for itself and
    /// are never a match key across sources.
    pub fn shared_gtin(&self) -> Option<domain::Gtin> {
        self.barcodes
            .iter()
            .filter_map(|(_, b)| b.gtin())
            .find(|g| !crate::normalize::is_restricted(g))
    }

    /// Gives back the spare room of its lists and texts. A list's first push makes room for
    /// four entries where most rows have one or two, and texts built character by character
    /// keep room to grow: on a million rows held in memory that is hundreds of megabytes.
    /// Readers call it on every item they keep.
    pub fn compact(&mut self) {
        fn text(s: &mut Option<String>) {
            if let Some(s) = s {
                s.shrink_to_fit();
            }
        }
        self.product_key.shrink_to_fit();
        self.product_title.shrink_to_fit();
        for (name, value) in &mut self.options {
            name.shrink_to_fit();
            value.shrink_to_fit();
        }
        self.options.shrink_to_fit();
        text(&mut self.sku);
        text(&mut self.legacy_id);
        text(&mut self.category);
        text(&mut self.brand);
        text(&mut self.supplier);
        self.barcodes.shrink_to_fit();
        for class in &mut self.tax_classes {
            class.shrink_to_fit();
        }
        self.tax_classes.shrink_to_fit();
        self.tax_rates.shrink_to_fit();
        self.stock.shrink_to_fit();
        self.location_prices.shrink_to_fit();
    }
}

/// One source file read: its items, how many rows it had, and every problem found.
#[derive(Debug, Clone)]
pub struct SourceRead {
    /// How it was read.
    pub options: SourceOptions,
    /// Data rows (header excluded, multi-line rows counted once).
    pub rows: u64,
    /// The variants.
    pub items: Vec<SourceItem>,
    /// Problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// How the source's currency was settled (declared, or decided by a sign in a price).
    pub currency_note: String,
}
