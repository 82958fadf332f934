//! Lightspeed Retail exports. R-Series: one row per item with `System ID` (an internal
//! 12-digit id that looks like a prefix-2 barcode but is not one), `UPC`, `EAN`, `Custom SKU`,
//! `Manufact. SKU`, `Item`, `Qty.`, `Price` with a currency symbol, `Default Cost` with nine
//! decimals, `Tax` Yes/No, `Category` and `Subcategory 1..9`. X-Series (Vend): rows grouped by
//! `handle`, `sku` holding the barcode, `variant_option_{one,two,three}_{name,value}`,
//! `supply_price`, `retail_price`, `tax_name`, `inventory_<Outlet>`.

use std::collections::HashMap;

use crate::diag::Severity;
use crate::model::{LocationStock, SourceItem};
use crate::normalize::{self, BarcodeCheck};
use crate::table::{Ctx, Table};

pub(crate) fn read_r(t: &mut Table, ctx: &mut Ctx<'_>) -> Vec<SourceItem> {
    let system_id = t.find(&["System ID"]);
    let upc = t.find(&["UPC"]);
    let ean = t.find(&["EAN"]);
    let custom_sku = t.find(&["Custom SKU"]);
    let manufacturer_sku = t.find(&["Manufact. SKU", "Manufacturer SKU"]);
    let name = t.find(&["Item", "Description"]);
    let qty = t.find(&["Qty.", "Qty", "Quantity on Hand"]);
    let shop_qty = t.find_shared("Qty. ", "");
    let price = t.find(&["Price", "Default Price"]);
    let cost = t.find(&["Default Cost", "Avg. Cost"]);
    let tax = t.find(&["Tax"]);
    let tax_class = t.find(&["Tax Class"]);
    let brand = t.find(&["Brand"]);
    let vendor = t.find(&["Vendor"]);
    let category = t.find(&["Category"]);
    let subcategories: Vec<usize> = (1..=9)
        .filter_map(|n| t.find(&[&format!("Subcategory {n}")]))
        .collect();
    let matrix = t.find(&["Matrix Description"]);
    let mut items = Vec::new();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    while let Some(row) = t.next_row(ctx) {
        if row.is_blank() {
            continue;
        }
        let Some(title) = ctx.text(&row, name) else {
            ctx.push(
                row.line,
                name,
                Severity::Error,
                "title-missing",
                "item has no description; skipped".to_owned(),
            );
            continue;
        };
        let legacy = ctx.text(&row, system_id);
        let matrix_title = ctx.text(&row, matrix);
        let product_key = matrix_title
            .clone()
            .or_else(|| legacy.clone())
            .unwrap_or_else(|| format!("line:{}", row.line));
        let product_line = *first_line.entry(product_key.clone()).or_insert(row.line);
        let mut path: Vec<String> = ctx.text(&row, category).into_iter().collect();
        for col in &subcategories {
            path.extend(ctx.text(&row, Some(*col)));
        }
        let mut item = SourceItem {
            line: row.line,
            product_line,
            product_key,
            product_title: matrix_title.clone().unwrap_or_else(|| title.clone()),
            // The System ID stays a legacy id: it is never read as a barcode.
            legacy_id: legacy,
            sku: ctx
                .text(&row, custom_sku)
                .or_else(|| ctx.text(&row, manufacturer_sku)),
            category: (!path.is_empty()).then(|| path.join(" > ")),
            brand: ctx.text(&row, brand),
            supplier: ctx.text(&row, vendor),
            ..SourceItem::default()
        };
        if let Some(m) = &matrix_title {
            // A matrix item's own description is `Matrix Size Colour`; the rest is the option.
            let rest = title
                .strip_prefix(m.as_str())
                .map(str::trim)
                .unwrap_or(&title);
            if !rest.is_empty() {
                item.options.push(("Variant".to_owned(), rest.to_owned()));
            }
        }
        ctx.barcode(&row, upc, &mut item);
        ctx.barcode(&row, ean, &mut item);
        item.price = ctx.money(&row, price, "price");
        item.cost = ctx.money(&row, cost, "default cost");
        item.taxable = ctx.boolean(&row, tax);
        item.tax_classes.extend(ctx.text(&row, tax_class));
        if let Some(q) = ctx.decimal(&row, qty, "quantity") {
            item.stock.push(LocationStock {
                location: ctx.default_location.clone(),
                quantity: q,
            });
        }
        ctx.stock(&row, &shop_qty, &mut item);
        item.compact();
        items.push(item);
    }
    items
}

pub(crate) fn read_x(t: &mut Table, ctx: &mut Ctx<'_>) -> Vec<SourceItem> {
    let id = t.find(&["id"]);
    let handle = t.find(&["handle"]);
    let sku = t.find(&["sku"]);
    let name = t.find(&["name"]);
    let options: Vec<(Option<usize>, Option<usize>)> = ["one", "two", "three"]
        .iter()
        .map(|n| {
            (
                t.find(&[&format!("variant_option_{n}_name")]),
                t.find(&[&format!("variant_option_{n}_value")]),
            )
        })
        .collect();
    let supply = t.find(&["supply_price"]);
    let retail = t.find(&["retail_price"]);
    let tax_name = t.find(&["tax_name", "sales_tax_name"]);
    let brand = t.find(&["brand_name"]);
    let supplier = t.find(&["supplier_name"]);
    let category = t.find(&["product_category", "type"]);
    let active = t.find(&["active"]);
    let inventory = t.find_shared("inventory_", "");
    let mut first: HashMap<String, (u64, String)> = HashMap::new();
    let mut items = Vec::new();
    while let Some(row) = t.next_row(ctx) {
        if row.is_blank() {
            continue;
        }
        let Some(key) = ctx.handle(&row, handle, "row has no handle; skipped") else {
            continue;
        };
        let row_name = ctx.text(&row, name);
        let (product_line, product_title) = first
            .entry(key.clone())
            .or_insert_with(|| (row.line, row_name.clone().unwrap_or_else(|| key.clone())))
            .clone();
        let mut item = SourceItem {
            line: row.line,
            product_line,
            product_key: key,
            product_title,
            legacy_id: ctx.text(&row, id),
            sku: ctx.text(&row, sku),
            brand: ctx.text(&row, brand),
            supplier: ctx.text(&row, supplier),
            category: ctx.text(&row, category),
            active: ctx.boolean(&row, active),
            ..SourceItem::default()
        };
        // X-Series keeps the scanned code in `sku`: a valid GTIN there is the barcode too, and
        // anything else is a plain SKU (not a bad barcode).
        if let Some(BarcodeCheck::Valid { gtin, note }) =
            item.sku.as_deref().and_then(normalize::barcode)
        {
            if note.is_none() {
                item.barcodes.push((
                    std::sync::Arc::from("sku"),
                    BarcodeCheck::Valid { gtin, note },
                ));
            }
        }
        for (name_col, value_col) in &options {
            if let (Some(n), Some(v)) = (ctx.text(&row, *name_col), ctx.text(&row, *value_col)) {
                item.options.push((n, v));
            }
        }
        item.price = ctx.money(&row, retail, "retail price");
        item.cost = ctx.money(&row, supply, "supply price");
        if let Some(tax) = ctx.text(&row, tax_name) {
            item.tax_classes.push(tax);
        }
        ctx.stock(&row, &inventory, &mut item);
        item.compact();
        items.push(item);
    }
    items
}
