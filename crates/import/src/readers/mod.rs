//! The readers, one per legacy format, and format detection from the header row.

mod lightspeed;
mod loyverse;
mod mapped;
mod odoo;
mod ospos;
mod shopify;
mod square;
mod woocommerce;

use std::io::Read;

pub use mapped::{Mapping, MappingError};

use crate::diag::Severity;
use crate::model::{Format, SourceOptions, SourceRead};
use crate::table::{Ctx, Encoding, Table, header_key};

/// Guesses the format from a header row; `None` when it is none Kassa knows (use a mapping).
pub fn detect(headers: &[String]) -> Option<Format> {
    let keys: Vec<String> = headers.iter().map(|h| header_key(h)).collect();
    let has = |h: &str| keys.iter().any(|k| k == h);
    let has_prefix = |p: &str| keys.iter().any(|k| k.starts_with(p));
    if has("system id") && (has("custom sku") || has("manufact. sku")) {
        Some(Format::LightspeedR)
    } else if has("handle") && (has("retail_price") || has("supply_price")) {
        Some(Format::LightspeedX)
    } else if has("handle") && (has("sold by weight") || has_prefix("price [")) {
        Some(Format::Loyverse)
    } else if (has("handle") || has("url handle"))
        && (has("variant sku") || has("variant price") || has("option1 name") || has("sku"))
    {
        Some(Format::Shopify)
    } else if has("type") && has("regular price") {
        Some(Format::WooCommerce)
    } else if has("item name") && has("variation name") {
        Some(Format::Square)
    } else if has("item name") && has("unit price") {
        Some(Format::Ospos)
    } else if has("internal reference") || (has("sales price") && has("product type")) {
        Some(Format::Odoo)
    } else {
        None
    }
}

/// Reads the header row of `input` (decoded as `encoding`) and guesses its format.
pub fn sniff(input: impl Read + 'static, encoding: Encoding) -> std::io::Result<Option<Format>> {
    let table = Table::open(input, b',', encoding)?;
    Ok(detect(table.headers()))
}

/// Reads one source. Never fails on bad content: every problem becomes a diagnostic, and a file
/// that cannot be read at all gives no items and a diagnostic at line 1.
pub fn read(
    input: impl Read + 'static,
    options: &SourceOptions,
    mapping: Option<&Mapping>,
) -> SourceRead {
    let (delimiter, encoding) = match mapping {
        Some(m) => (m.delimiter_byte(), m.encoding()),
        None => (b',', Encoding::Utf8),
    };
    let mut ctx = Ctx {
        opts: options,
        headers: Vec::new(),
        columns: Vec::new(),
        default_location: std::sync::Arc::from("default"),
        diags: Vec::new(),
    };
    let mut table = match Table::open(input, delimiter, encoding) {
        Ok(t) => t,
        Err(e) => {
            ctx.push(
                1,
                None,
                Severity::Error,
                "unreadable",
                format!("cannot read the file: {e}"),
            );
            return SourceRead {
                options: options.clone(),
                rows: 0,
                items: Vec::new(),
                diagnostics: ctx.diags,
            };
        }
    };
    ctx.headers = table.headers().to_vec();
    ctx.columns = ctx
        .headers
        .iter()
        .map(|h| std::sync::Arc::from(h.as_str()))
        .collect();
    let items = match (options.format, mapping) {
        (Format::Shopify, _) => shopify::read(&mut table, &mut ctx),
        (Format::WooCommerce, _) => woocommerce::read(&mut table, &mut ctx),
        (Format::Square, _) => square::read(&mut table, &mut ctx),
        (Format::LightspeedR, _) => lightspeed::read_r(&mut table, &mut ctx),
        (Format::LightspeedX, _) => lightspeed::read_x(&mut table, &mut ctx),
        (Format::Loyverse, _) => loyverse::read(&mut table, &mut ctx),
        (Format::Ospos, _) => ospos::read(&mut table, &mut ctx),
        (Format::Odoo, _) => odoo::read(&mut table, &mut ctx),
        (Format::Mapped, Some(m)) => mapped::read(&mut table, &mut ctx, m),
        (Format::Mapped, None) => {
            ctx.push(
                1,
                None,
                Severity::Error,
                "mapping-missing",
                "a mapped source needs a mapping file".to_owned(),
            );
            Vec::new()
        }
    };
    let mut items = items;
    items.shrink_to_fit();
    SourceRead {
        options: options.clone(),
        rows: table.rows,
        items,
        diagnostics: ctx.diags,
    }
}
