//! Loyverse items CSV: rows grouped by `Handle` (variant rows leave `Name` blank), `Sold by
//! weight`, options, `Cost`, `Barcode`, and per store `Available for sale [<Store>]`,
//! `Price [<Store>]` and `In stock [<Store>]`.

use std::collections::HashMap;

use crate::model::{LocationPrice, SourceItem};
use crate::table::{Ctx, Table};

pub(crate) fn read(t: &mut Table, ctx: &mut Ctx<'_>) -> Vec<SourceItem> {
    let handle = t.find(&["Handle"]);
    let sku = t.find(&["SKU"]);
    let name = t.find(&["Name"]);
    let category = t.find(&["Category"]);
    let by_weight = t.find(&["Sold by weight"]);
    let options: Vec<(Option<usize>, Option<usize>)> = (1..=3)
        .map(|n| {
            (
                t.find(&[&format!("Option {n} name")]),
                t.find(&[&format!("Option {n} value")]),
            )
        })
        .collect();
    let cost = t.find(&["Cost"]);
    let barcode = t.find(&["Barcode"]);
    let default_price = t.find(&["Default price", "Price"]);
    let available = t.find_pattern("Available for sale [", "]");
    let prices = t.find_shared("Price [", "]");
    let in_stock = t.find_shared("In stock [", "]");
    let taxes: Vec<(usize, String, Option<rust_decimal::Decimal>)> = t
        .find_pattern("Tax - ", "")
        .into_iter()
        .map(|(c, inner)| {
            let (name, rate) = super::square::tax_header(&inner);
            (c, name, rate)
        })
        .collect();
    struct Product {
        line: u64,
        title: String,
        category: Option<String>,
        by_weight: bool,
        option_names: Vec<Option<String>>,
    }
    let mut products: HashMap<String, Product> = HashMap::new();
    let mut items = Vec::new();
    while let Some(row) = t.next_row(ctx) {
        if row.is_blank() {
            continue;
        }
        let Some(key) = ctx.handle(&row, handle, "row has no handle; skipped") else {
            continue;
        };
        if !products.contains_key(&key) {
            let title = ctx.text(&row, name).unwrap_or_else(|| key.clone());
            let product = Product {
                line: row.line,
                title,
                category: ctx.text(&row, category),
                by_weight: ctx.boolean(&row, by_weight).unwrap_or(false),
                option_names: options.iter().map(|(n, _)| ctx.text(&row, *n)).collect(),
            };
            products.insert(key.clone(), product);
        }
        let Some(p) = products.get(&key) else {
            continue;
        };
        let mut item = SourceItem {
            line: row.line,
            product_line: p.line,
            product_key: key.clone(),
            product_title: p.title.clone(),
            category: p.category.clone(),
            sold_by_weight: p.by_weight,
            sku: ctx.text(&row, sku),
            ..SourceItem::default()
        };
        let names = p.option_names.clone();
        for (n, (_, value_col)) in options.iter().enumerate() {
            if let Some(v) = ctx.text(&row, *value_col) {
                let name = names
                    .get(n)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| format!("Option {}", n + 1));
                item.options.push((name, v));
            }
        }
        ctx.barcode(&row, barcode, &mut item);
        item.cost = ctx.money(&row, cost, "cost");
        item.price = ctx.money(&row, default_price, "price");
        for (col, store) in &prices {
            if let Some(price) = ctx.money(&row, Some(*col), "store price") {
                item.location_prices.push(LocationPrice {
                    location: store.clone(),
                    price,
                });
            }
        }
        if item.price.is_none() {
            item.price = item.location_prices.first().map(|p| p.price);
        }
        let mut any_available = None;
        for (col, _) in &available {
            if let Some(a) = ctx.boolean(&row, Some(*col)) {
                any_available = Some(any_available.unwrap_or(false) || a);
            }
        }
        item.active = any_available;
        ctx.stock(&row, &in_stock, &mut item);
        for (col, name, rate) in &taxes {
            if ctx.boolean(&row, Some(*col)) == Some(true) {
                item.tax_classes.push(name.clone());
                item.tax_rates.extend(*rate);
            }
        }
        item.compact();
        items.push(item);
    }
    items
}
