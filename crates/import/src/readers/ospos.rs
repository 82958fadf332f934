//! Open Source Point of Sale items CSV (written with a UTF-8 BOM): `Barcode`, `Item Name`,
//! `Category`, `Cost Price`, `Unit Price`, two taxes with name and percent, stock per location
//! in `location_<name>` columns and attributes in `attribute_<name>` columns.

use crate::diag::Severity;
use crate::model::SourceItem;
use crate::table::{Ctx, Table};

pub(crate) fn read(t: &mut Table, ctx: &mut Ctx<'_>) -> Vec<SourceItem> {
    let barcode = t.find(&["Barcode", "UPC/EAN/ISBN", "item_number"]);
    let name = t.find(&["Item Name", "name"]);
    let category = t.find(&["Category"]);
    let supplier = t.find(&["Supplier ID", "Supplier"]);
    let cost = t.find(&["Cost Price", "cost_price"]);
    let price = t.find(&["Unit Price", "unit_price"]);
    let taxes = [1, 2].map(|n| {
        (
            t.find(&[&format!("Tax {n} Name")]),
            t.find(&[&format!("Tax {n} Percent")]),
        )
    });
    let item_id = t.find(&["Item ID", "Id"]);
    let locations = t.find_shared("location_", "");
    let attributes = t.find_pattern("attribute_", "");
    let mut items = Vec::new();
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
                "item has no name; skipped".to_owned(),
            );
            continue;
        };
        let mut item = SourceItem {
            line: row.line,
            product_line: row.line,
            product_title: title.clone(),
            category: ctx.text(&row, category),
            supplier: ctx.text(&row, supplier),
            legacy_id: ctx.text(&row, item_id),
            ..SourceItem::default()
        };
        // OSPOS keeps one code per item, `item_number`, shown as the barcode; an internal code
        // there is still the item's SKU.
        let code = ctx.text(&row, barcode);
        ctx.barcode(&row, barcode, &mut item);
        item.sku = code;
        item.product_key = item
            .sku
            .clone()
            .unwrap_or_else(|| format!("line:{}", row.line));
        item.cost = ctx.money(&row, cost, "cost price");
        item.price = ctx.money(&row, price, "unit price");
        for (name_col, percent_col) in taxes {
            if let Some(tax) = ctx.text(&row, name_col) {
                item.tax_classes.push(tax);
                if let Some(rate) = ctx.decimal(&row, percent_col, "tax percent") {
                    item.tax_rates.push(rate);
                }
            }
        }
        for (col, attribute) in &attributes {
            if let Some(value) = ctx.text(&row, Some(*col)) {
                item.options.push((attribute.clone(), value));
            }
        }
        ctx.stock(&row, &locations, &mut item);
        item.compact();
        items.push(item);
    }
    items
}
