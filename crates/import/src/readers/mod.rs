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
    let (delimiter, mapped_encoding) = match mapping {
        Some(m) => (m.delimiter_byte(), m.encoding()),
        None => (b',', Encoding::Utf8),
    };
    let encoding = options.encoding.unwrap_or(mapped_encoding);
    let mut ctx = Ctx {
        opts: options,
        headers: Vec::new(),
        columns: Vec::new(),
        default_location: std::sync::Arc::from("default"),
        diags: Vec::new(),
        currency: options.currency,
        currency_decided: None,
    };
    let declared_note = if options.currency_declared {
        format!("{} (declared)", options.currency.code())
    } else {
        format!(
            "{} (no currency declared and no sign in any price: the default)",
            options.currency.code()
        )
    };
    let mut table = match Table::open(input, delimiter, encoding) {
        Ok(t) => t,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::InvalidData {
                "encoding"
            } else {
                "unreadable"
            };
            ctx.push(
                1,
                None,
                Severity::Error,
                code,
                format!("cannot read the file: {e}"),
            );
            return SourceRead {
                options: options.clone(),
                rows: 0,
                items: Vec::new(),
                diagnostics: ctx.diags,
                currency_note: declared_note,
            };
        }
    };
    if table.headers().is_empty() {
        ctx.push(
            1,
            None,
            Severity::Error,
            "file-empty",
            "the file is empty: no header row and no items".to_owned(),
        );
    }
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
    check_barcode_shaped_skus(&items, &mut ctx);
    if !table.headers().is_empty() && table.rows == 0 {
        ctx.push(
            1,
            None,
            Severity::Error,
            "file-no-rows",
            "the file has a header row but no items".to_owned(),
        );
    } else if table.rows > 0 && items.is_empty() {
        ctx.push(
            1,
            None,
            Severity::Error,
            "file-all-rows-failed",
            format!(
                "none of its {} rows could be imported (see the errors for each row)",
                table.rows
            ),
        );
    }
    let mut read_options = options.clone();
    read_options.currency = ctx.currency;
    let currency_note = ctx.currency_decided.clone().unwrap_or(declared_note);
    SourceRead {
        options: read_options,
        rows: table.rows,
        items,
        diagnostics: ctx.diags,
        currency_note,
    }
}

/// Validates every SKU that is shaped like a barcode (8, 12, 13 or 14 digits): systems such as
/// X-Series keep the scanned code there, so a wrong check digit there is a mistyped barcode.
fn check_barcode_shaped_skus(items: &[crate::model::SourceItem], ctx: &mut Ctx<'_>) {
    for item in items {
        let Some(sku) = item.sku.as_deref() else {
            continue;
        };
        if !crate::normalize::barcode_shaped(sku) {
            continue;
        }
        if let Some(crate::normalize::BarcodeCheck::BadCheckDigit(_)) =
            crate::normalize::barcode(sku)
        {
            ctx.diags.push(crate::Diagnostic {
                file: ctx.opts.file.clone(),
                line: item.line,
                column: None,
                severity: Severity::Warning,
                code: "barcode-check-digit",
                reason: format!(
                    "SKU `{sku}` is shaped like a barcode ({} digits) but its check digit is \
                     wrong: if it is the item's barcode it was mistyped; it is kept as the SKU \
                     only, never as a barcode",
                    sku.trim().len()
                ),
            });
        }
    }
}
