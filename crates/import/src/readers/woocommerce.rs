//! WooCommerce product CSV: `simple`, `variable`, `variation`, `grouped` and `external` rows
//! (types may be compound, `simple, downloadable, virtual`); a variation names its parent by
//! SKU (or `id:<ID>`) in `Parent` and inherits what it leaves blank. Weights carry their unit
//! in the header (`Weight (lbs)`, `Weight (kg)`); newer exports add a GTIN column.

use std::collections::HashMap;

use rust_decimal::Decimal;

use crate::diag::Severity;
use crate::model::{LocationStock, SourceItem};
use crate::normalize;
use crate::table::{Ctx, Row, Table};

struct Cols {
    id: Option<usize>,
    kind: Option<usize>,
    sku: Option<usize>,
    name: Option<usize>,
    published: Option<usize>,
    tax_status: Option<usize>,
    tax_class: Option<usize>,
    stock: Option<usize>,
    sale: Option<usize>,
    regular: Option<usize>,
    categories: Option<usize>,
    parent: Option<usize>,
    gtin: Option<usize>,
    weight: Option<(usize, Decimal)>,
    attributes: Vec<(usize, usize)>,
    brand: Option<usize>,
}

/// A variable product's fields, which its variations inherit.
struct Parent {
    line: u64,
    title: String,
    category: Option<String>,
    tax_class: Option<String>,
    taxable: Option<bool>,
    active: Option<bool>,
    brand: Option<String>,
}

pub(crate) fn read(t: &mut Table, ctx: &mut Ctx<'_>) -> Vec<SourceItem> {
    let weight = t
        .find_pattern("Weight (", ")")
        .into_iter()
        .find_map(|(col, unit)| normalize::grams_per(&unit).map(|g| (col, g)));
    let attributes = (1..=20)
        .map_while(|n| {
            let name = t.find(&[&format!("Attribute {n} name")])?;
            let value = t.find(&[&format!("Attribute {n} value(s)")])?;
            Some((name, value))
        })
        .collect();
    let c = Cols {
        id: t.find(&["ID"]),
        kind: t.find(&["Type"]),
        sku: t.find(&["SKU"]),
        name: t.find(&["Name"]),
        published: t.find(&["Published"]),
        tax_status: t.find(&["Tax status"]),
        tax_class: t.find(&["Tax class"]),
        stock: t.find(&["Stock"]),
        sale: t.find(&["Sale price"]),
        regular: t.find(&["Regular price"]),
        categories: t.find(&["Categories"]),
        parent: t.find(&["Parent"]),
        gtin: t.find(&[
            "GTIN, UPC, EAN, or ISBN",
            "GTIN",
            "EAN",
            "Meta: _global_unique_id",
        ]),
        weight,
        attributes,
        brand: t.find(&["Brands", "Brand"]),
    };
    let mut parents: HashMap<String, Parent> = HashMap::new();
    let mut items: Vec<(Option<String>, SourceItem)> = Vec::new();
    while let Some(row) = t.next_row(ctx) {
        if row.is_blank() {
            continue;
        }
        let kinds: Vec<String> = row
            .get(c.kind)
            .split(',')
            .map(|k| k.trim().to_ascii_lowercase())
            .filter(|k| !k.is_empty())
            .collect();
        let is = |k: &str| kinds.iter().any(|x| x == k);
        let id = row.get(c.id).to_owned();
        let sku = ctx.text(&row, c.sku);
        if is("variable") {
            let parent = Parent {
                line: row.line,
                title: ctx.text(&row, c.name).unwrap_or_default(),
                category: categories(ctx, &row, c.categories),
                tax_class: ctx.text(&row, c.tax_class),
                taxable: tax_status(ctx, &row, c.tax_status),
                active: ctx.boolean(&row, c.published),
                brand: ctx.text(&row, c.brand),
            };
            if let Some(sku) = &sku {
                // A parent may be named by SKU or by `id:<ID>`; keep both.
                parents.insert(format!("id:{id}"), clone_parent(&parent));
                parents.insert(sku.clone(), parent);
            } else {
                parents.insert(format!("id:{id}"), parent);
            }
            continue;
        }
        if is("grouped") || is("external") {
            let what = if is("grouped") {
                "grouped product (a set of other products)"
            } else {
                "external product (sold on another site)"
            };
            ctx.push(
                row.line,
                c.kind,
                Severity::Warning,
                "not-sellable",
                format!(
                    "{what} `{}` is not sold at the till; skipped",
                    row.get(c.name)
                ),
            );
            continue;
        }
        if !(is("simple") || is("variation")) {
            ctx.push(row.line, c.kind, Severity::Error, "type-unknown", format!("product type `{}` is not simple, variable, variation, grouped or external; skipped", row.get(c.kind)));
            continue;
        }
        let mut item = SourceItem {
            line: row.line,
            product_line: row.line,
            legacy_id: (!id.is_empty()).then(|| id.clone()),
            sku: sku.clone(),
            ..SourceItem::default()
        };
        ctx.barcode(&row, c.gtin, &mut item);
        let regular = ctx.money(&row, c.regular, "regular price");
        let sale = ctx.money(&row, c.sale, "sale price");
        // The regular price is the list price; a sale price is a promotion, kept as the lower
        // price only when there is no regular one.
        item.price = regular.or(sale);
        if let Some((col, grams)) = c.weight {
            item.weight_grams = ctx.weight(&row, Some(col), grams);
        }
        if let Some(q) = ctx.decimal(&row, c.stock, "stock") {
            item.stock.push(LocationStock {
                location: ctx.default_location.clone(),
                quantity: q,
            });
        }
        item.active = ctx.boolean(&row, c.published);
        item.taxable = tax_status(ctx, &row, c.tax_status);
        let tax_class = ctx.text(&row, c.tax_class);
        for (name_col, value_col) in &c.attributes {
            let (Some(name), Some(value)) = (
                ctx.text(&row, Some(*name_col)),
                ctx.text(&row, Some(*value_col)),
            ) else {
                continue;
            };
            if is("variation") {
                item.options.push((name, value));
            }
        }
        if is("variation") {
            let parent_ref = row.get(c.parent).to_owned();
            if parent_ref.is_empty() {
                ctx.push(
                    row.line,
                    c.parent,
                    Severity::Error,
                    "parent-missing",
                    "variation names no parent; skipped".to_owned(),
                );
                continue;
            }
            item.tax_classes.extend(tax_class.filter(|t| t != "parent"));
            item.product_title = ctx.text(&row, c.name).unwrap_or_default();
            items.push((Some(parent_ref), item));
        } else {
            item.product_key = sku.clone().unwrap_or_else(|| format!("id:{id}"));
            item.product_title = ctx.text(&row, c.name).unwrap_or_default();
            item.category = categories(ctx, &row, c.categories);
            item.brand = ctx.text(&row, c.brand);
            item.tax_classes.extend(tax_class);
            if item.product_title.is_empty() {
                ctx.push(
                    row.line,
                    c.name,
                    Severity::Warning,
                    "title-missing",
                    "product has no name".to_owned(),
                );
            }
            items.push((None, item));
        }
    }
    let mut out = Vec::with_capacity(items.len());
    let mut parents_used = std::collections::HashSet::new();
    for (parent_ref, mut item) in items {
        if let Some(parent_ref) = parent_ref {
            let Some(parent) = parents.get(&parent_ref) else {
                ctx.push(item.line, c.parent, Severity::Error, "parent-unknown", format!("variation names parent `{parent_ref}`, which is not a variable product in this file; skipped"));
                continue;
            };
            parents_used.insert(parent.line);
            // WooCommerce writes a variation's name as `Parent - Value, Value`; the product's
            // title is the parent's.
            item.product_key = parent_ref.clone();
            item.product_title = parent.title.clone();
            item.product_line = parent.line;
            item.category = parent.category.clone();
            item.brand = parent.brand.clone();
            if item.tax_classes.is_empty() {
                item.tax_classes.extend(parent.tax_class.clone());
            }
            item.taxable = item.taxable.or(parent.taxable);
            item.active = match (item.active, parent.active) {
                (Some(a), Some(b)) => Some(a && b),
                (a, b) => a.or(b),
            };
        }
        item.compact();
        out.push(item);
    }
    let mut lonely: Vec<u64> = parents
        .values()
        .map(|p| p.line)
        .filter(|l| !parents_used.contains(l))
        .collect();
    lonely.sort_unstable();
    lonely.dedup();
    for line in lonely {
        ctx.push(
            line,
            c.kind,
            Severity::Warning,
            "no-variants",
            "variable product has no variations in this file; nothing to sell".to_owned(),
        );
    }
    out
}

fn clone_parent(p: &Parent) -> Parent {
    Parent {
        line: p.line,
        title: p.title.clone(),
        category: p.category.clone(),
        tax_class: p.tax_class.clone(),
        taxable: p.taxable,
        active: p.active,
        brand: p.brand.clone(),
    }
}

/// `taxable`, `shipping` (tax on shipping only, so not on the item) or `none`.
fn tax_status(ctx: &mut Ctx<'_>, row: &Row, col: Option<usize>) -> Option<bool> {
    match row.get(col).to_ascii_lowercase().as_str() {
        "" => None,
        "taxable" => Some(true),
        "shipping" | "none" => Some(false),
        other => {
            ctx.push(
                row.line,
                col,
                Severity::Warning,
                "tax-status-unknown",
                format!("tax status `{other}` is not taxable, shipping or none"),
            );
            None
        }
    }
}

/// `Clothing > Tshirts, Sale`: the first category path, normalised.
fn categories(_ctx: &mut Ctx<'_>, row: &Row, col: Option<usize>) -> Option<String> {
    let first = row.get(col).split(',').next().unwrap_or("");
    let path: Vec<String> = first
        .split('>')
        .map(normalize::text)
        .filter(|p| !p.is_empty())
        .collect();
    (!path.is_empty()).then(|| path.join(" > "))
}
