//! Shopify products CSV, every header dialect: the classic template (`Handle`, `Variant SKU`,
//! `Type` with or without `Product Category`), newer exports (`Option1 Linked To`, unit-price
//! columns) and the friendly style (`URL handle`, `SKU`, `Inventory quantity`). Rows sharing a
//! handle are one product; follow-on rows leave product fields blank; a row may carry only an
//! image.

use std::collections::HashMap;

use crate::diag::Severity;
use crate::model::{LocationStock, SourceItem};
use crate::table::{Ctx, Table};

struct Product {
    line: u64,
    title: String,
    option_names: [Option<String>; 3],
    vendor: Option<String>,
    category: Option<String>,
    active: Option<bool>,
}

pub(crate) fn read(t: &mut Table, ctx: &mut Ctx<'_>) -> Vec<SourceItem> {
    let handle = t.find(&["Handle", "URL handle"]);
    let title = t.find(&["Title"]);
    let vendor = t.find(&["Vendor"]);
    let kind = t.find(&["Type"]);
    let category = t.find(&["Product Category", "Product category"]);
    let option_name =
        [1, 2, 3].map(|n| t.find(&[&format!("Option{n} Name"), &format!("Option{n} name")]));
    let option_value =
        [1, 2, 3].map(|n| t.find(&[&format!("Option{n} Value"), &format!("Option{n} value")]));
    let sku = t.find(&["Variant SKU", "SKU"]);
    let barcode = t.find(&["Variant Barcode", "Barcode"]);
    let price = t.find(&["Variant Price", "Price"]);
    let compare = t.find(&[
        "Variant Compare At Price",
        "Compare-at price",
        "Compare At Price",
    ]);
    let cost = t.find(&["Cost per item", "Cost Per Item"]);
    let grams = t.find(&["Variant Grams", "Weight value (grams)"]);
    let taxable = t.find(&["Variant Taxable", "Charge tax"]);
    let tax_code = t.find(&["Variant Tax Code", "Tax code"]);
    let qty = t.find(&["Variant Inventory Qty", "Inventory quantity"]);
    let status = t.find(&["Status"]);
    if handle.is_none() {
        ctx.push(
            1,
            None,
            Severity::Error,
            "header-missing",
            "no `Handle` (or `URL handle`) column: rows cannot be grouped into products".to_owned(),
        );
        return Vec::new();
    }
    let mut products: HashMap<String, Product> = HashMap::new();
    let mut items = Vec::new();
    while let Some(row) = t.next_row(ctx) {
        if row.is_blank() {
            continue;
        }
        let Some(key) = ctx.handle(
            &row,
            handle,
            "row has no handle, so it belongs to no product; skipped",
        ) else {
            continue;
        };
        let row_title = ctx.text(&row, title);
        if !products.contains_key(&key)
            || row_title.is_some() && products.get(&key).is_some_and(|p| p.title.is_empty())
        {
            let option_names = option_name.map(|c| ctx.text(&row, c));
            let category = ctx.text(&row, kind).or_else(|| ctx.text(&row, category));
            let active = match row.get(status).to_ascii_lowercase().as_str() {
                "" => None,
                "active" => Some(true),
                _ => Some(false),
            };
            if row_title.is_none() {
                ctx.push(
                    row.line,
                    title,
                    Severity::Warning,
                    "title-missing",
                    format!("first row of product `{key}` has no title; the handle is used"),
                );
            }
            products.insert(
                key.clone(),
                Product {
                    line: row.line,
                    title: row_title.unwrap_or_default(),
                    option_names,
                    vendor: ctx.text(&row, vendor),
                    category,
                    active,
                },
            );
        }
        let has_variant = [sku, barcode, price, option_value[0], option_value[1]]
            .iter()
            .any(|c| !row.get(*c).is_empty());
        if !has_variant {
            // An image-only row: it adds a picture to the product and nothing Kassa keeps.
            continue;
        }
        let Some(product) = products.get(&key) else {
            continue;
        };
        let mut item = SourceItem {
            line: row.line,
            product_line: product.line,
            product_key: key.clone(),
            product_title: if product.title.is_empty() {
                key.clone()
            } else {
                product.title.clone()
            },
            brand: product.vendor.clone(),
            category: product.category.clone(),
            active: product.active,
            ..SourceItem::default()
        };
        for (n, value_col) in option_value.iter().enumerate() {
            let Some(value) = ctx.text(&row, *value_col) else {
                continue;
            };
            if value == "Default Title" {
                continue;
            }
            let name = product
                .option_names
                .get(n)
                .cloned()
                .flatten()
                .unwrap_or_else(|| format!("Option{}", n + 1));
            item.options.push((name, value));
        }
        item.sku = ctx.text(&row, sku);
        ctx.barcode(&row, barcode, &mut item);
        item.price = ctx.money(&row, price, "price");
        item.compare_at_price = ctx.money(&row, compare, "compare-at price");
        item.cost = ctx.money(&row, cost, "cost");
        item.weight_grams = ctx.weight(&row, grams, rust_decimal::Decimal::ONE);
        item.taxable = ctx.boolean(&row, taxable);
        if let Some(code) = ctx.text(&row, tax_code) {
            item.tax_classes.push(code);
        }
        if let Some(q) = ctx.decimal(&row, qty, "inventory quantity") {
            item.stock.push(LocationStock {
                location: ctx.default_location.clone(),
                quantity: q,
            });
        }
        item.compact();
        items.push(item);
    }
    items
}
