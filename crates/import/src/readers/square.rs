//! Square item library CSV: one row per variation, grouped into items by `Item Name`; options
//! in `Option Name/Value 1..3`; per location `Enabled <Loc>`, `Current Quantity <Loc>`,
//! `New Quantity <Loc>` and `Price <Loc>`; one `Tax - <Name> (<rate>%)` Y/N column per tax.
//! Prices may carry currency symbols and thousands separators (`"£4,250.00"`), and
//! descriptions are multi-line quoted HTML.

use std::collections::HashMap;

use crate::diag::Severity;
use crate::model::{LocationPrice, SourceItem};
use crate::normalize;
use crate::table::{Ctx, Table};

/// Splits `VAT (20%)` into the tax's name and rate.
pub(crate) fn tax_header(inner: &str) -> (String, Option<rust_decimal::Decimal>) {
    let inner = inner.trim().trim_end_matches(')');
    match inner.rsplit_once('(') {
        Some((name, rate)) => (
            normalize::text(name),
            normalize::decimal(
                rate.trim().trim_end_matches('%'),
                normalize::DecimalStyle::Auto,
            )
            .ok(),
        ),
        None => (normalize::text(inner), None),
    }
}

pub(crate) fn read(t: &mut Table, ctx: &mut Ctx<'_>) -> Vec<SourceItem> {
    let token = t.find(&["Token"]);
    let item_name = t.find(&["Item Name"]);
    let variation = t.find(&["Variation Name"]);
    let sku = t.find(&["SKU"]);
    let gtin = t.find(&["GTIN", "UPC"]);
    let price = t.find(&["Price"]);
    let category = t.find(&["Categories", "Category", "Reporting Category"]);
    let cost = t.find(&["Default Unit Cost"]);
    let vendor = t.find(&["Default Vendor Name"]);
    let archived = t.find(&["Archived"]);
    let sellable = t.find(&["Sellable"]);
    let options: Vec<(Option<usize>, Option<usize>)> = (1..=3)
        .map(|n| {
            (
                t.find(&[&format!("Option Name {n}")]),
                t.find(&[&format!("Option Value {n}")]),
            )
        })
        .collect();
    let current = t.find_shared("Current Quantity ", "");
    let new_qty: HashMap<std::sync::Arc<str>, usize> = t
        .find_shared("New Quantity ", "")
        .into_iter()
        .map(|(c, l)| (l, c))
        .collect();
    let location_prices = t.find_shared("Price ", "");
    let taxes: Vec<(usize, String, Option<rust_decimal::Decimal>)> = t
        .find_pattern("Tax - ", "")
        .into_iter()
        .map(|(c, inner)| {
            let (name, rate) = tax_header(&inner);
            (c, name, rate)
        })
        .collect();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    let mut items = Vec::new();
    while let Some(row) = t.next_row(ctx) {
        if row.is_blank() {
            continue;
        }
        let Some(title) = ctx.text(&row, item_name) else {
            ctx.push(
                row.line,
                item_name,
                Severity::Error,
                "title-missing",
                "variation has no item name, so it belongs to no item; skipped".to_owned(),
            );
            continue;
        };
        let product_line = *first_line.entry(title.clone()).or_insert(row.line);
        let mut item = SourceItem {
            line: row.line,
            product_line,
            product_key: title.clone(),
            product_title: title,
            legacy_id: ctx.text(&row, token),
            sku: ctx.text(&row, sku),
            category: ctx.text(&row, category),
            supplier: ctx.text(&row, vendor),
            ..SourceItem::default()
        };
        ctx.barcode(&row, gtin, &mut item);
        if row.get(price).eq_ignore_ascii_case("variable") {
            ctx.push(
                row.line,
                price,
                Severity::Warning,
                "price-variable",
                "variable price (entered at the till); no list price imported".to_owned(),
            );
        } else {
            item.price = ctx.money(&row, price, "price");
        }
        item.cost = ctx.money(&row, cost, "default unit cost");
        let archived = ctx.boolean(&row, archived);
        let sellable = ctx.boolean(&row, sellable);
        item.active = match (archived, sellable) {
            (Some(true), _) | (_, Some(false)) => Some(false),
            (Some(false), _) | (_, Some(true)) => Some(true),
            _ => None,
        };
        for (name_col, value_col) in &options {
            if let (Some(name), Some(value)) =
                (ctx.text(&row, *name_col), ctx.text(&row, *value_col))
            {
                item.options.push((name, value));
            }
        }
        if item.options.is_empty() {
            if let Some(v) = ctx.text(&row, variation) {
                if !v.eq_ignore_ascii_case("regular") {
                    item.options.push(("Variation".to_owned(), v));
                }
            }
        }
        for (col, location) in &current {
            // `New Quantity` is what the merchant typed to be imported; when set it wins.
            let col = new_qty
                .get(location)
                .filter(|c| !row.at(**c).is_empty())
                .copied()
                .unwrap_or(*col);
            ctx.stock(&row, &[(col, location.clone())], &mut item);
        }
        for (col, location) in &location_prices {
            if let Some(p) = ctx.money(&row, Some(*col), "location price") {
                item.location_prices.push(LocationPrice {
                    location: location.clone(),
                    price: p,
                });
            }
        }
        for (col, name, rate) in &taxes {
            if ctx.boolean(&row, Some(*col)) == Some(true) {
                item.tax_classes.push(name.clone());
                item.tax_rates.extend(*rate);
            }
        }
        item.taxable = (!taxes.is_empty()).then_some(!item.tax_classes.is_empty());
        item.compact();
        items.push(item);
    }
    items
}
