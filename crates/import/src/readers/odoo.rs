//! Odoo product CSV (`product.template` export or import template): the external `ID`, `Name`,
//! `Product Type`, `Internal Reference`, `Barcode`, `Sales Price`, `Cost`; one row per product.

use crate::diag::Severity;
use crate::model::SourceItem;
use crate::table::{Ctx, Table};

pub(crate) fn read(t: &mut Table, ctx: &mut Ctx<'_>) -> Vec<SourceItem> {
    let id = t.find(&["ID", "External ID"]);
    let name = t.find(&["Name"]);
    let kind = t.find(&["Product Type", "Type"]);
    let reference = t.find(&["Internal Reference", "default_code"]);
    let barcode = t.find(&["Barcode"]);
    let price = t.find(&["Sales Price", "list_price"]);
    let cost = t.find(&["Cost", "standard_price"]);
    let category = t.find(&["Product Category", "Category"]);
    let taxes = t.find(&["Customer Taxes", "Taxes"]);
    let weight = t.find(&["Weight"]);
    let active = t.find(&["Active"]);
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
                "product has no name; skipped".to_owned(),
            );
            continue;
        };
        let legacy = ctx.text(&row, id);
        let mut item = SourceItem {
            line: row.line,
            product_line: row.line,
            product_key: legacy
                .clone()
                .unwrap_or_else(|| format!("line:{}", row.line)),
            product_title: title,
            legacy_id: legacy,
            sku: ctx.text(&row, reference),
            category: ctx
                .text(&row, category)
                .map(|c| c.split('/').map(str::trim).collect::<Vec<_>>().join(" > ")),
            active: ctx.boolean(&row, active),
            ..SourceItem::default()
        };
        ctx.barcode(&row, barcode, &mut item);
        item.price = ctx.money(&row, price, "sales price");
        item.cost = ctx.money(&row, cost, "cost");
        // Odoo's weight field is in the database's unit, kilograms by default.
        item.weight_grams = ctx.weight(&row, weight, rust_decimal::Decimal::from(1000));
        item.tax_classes.extend(ctx.text(&row, taxes));
        if let Some(k) = ctx.text(&row, kind) {
            // Services (consulting, repairs) are sold but never counted.
            item.category = item.category.or(Some(k));
        }
        item.compact();
        items.push(item);
    }
    items
}
