//! The readable report of `kassa catalog import --report FILE`: what a merchandiser checks
//! before (or after) a commit — which variants merge and why, which are new, updated or
//! removed, the fuzzy suggestions waiting for a decision, and what was not imported. The
//! per-row diagnostics stay apart, in `--diagnostics`.

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use import::canonical::{CanonicalCatalog, CanonicalVariant};
use import::matching::{self, ItemRef, Matching};
use import::normalize::sku_key;
use import::{Severity, SourceRead};

/// Writes the report to `path`.
pub(crate) fn write(
    path: &Path,
    reads: &[SourceRead],
    matching: &Matching,
    catalog: &CanonicalCatalog,
    plan: &hq::import::Plan,
) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut w = BufWriter::new(file);
    render(&mut w, reads, matching, catalog, plan)
        .and_then(|()| w.flush())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn row_name(reads: &[SourceRead], r: ItemRef) -> String {
    let source = reads
        .get(r.source as usize)
        .map_or("", |s| s.options.name.as_str());
    match r.get(reads) {
        Some(item) => {
            let mut out = format!("{source} line {}", item.line);
            if let Some(sku) = &item.sku {
                out.push_str(&format!(", SKU {sku}"));
            }
            if let Some(g) = item.gtin() {
                out.push_str(&format!(", GTIN {}", g.as_str()));
            }
            out.push_str(&format!(": \"{}\"", item.variant_title()));
            out
        }
        None => source.to_owned(),
    }
}

/// Why the rows of a variant were merged: a GTIN they share, a SKU they share, or a person's
/// decision in the review file.
fn merge_reason(reads: &[SourceRead], v: &CanonicalVariant) -> String {
    let items: Vec<_> = v.members.iter().filter_map(|r| r.get(reads)).collect();
    let mut gtins = HashSet::new();
    for item in &items {
        if let Some(g) = item.shared_gtin() {
            if !gtins.insert(g.to_gtin14()) {
                return format!("same GTIN {}", g.as_str());
            }
        }
    }
    let mut skus = HashSet::new();
    for item in &items {
        if let Some(sku) = &item.sku {
            if !skus.insert(sku_key(sku)) {
                return format!("same SKU {sku}");
            }
        }
    }
    "accepted in the review file".to_owned()
}

fn price(v: &CanonicalVariant) -> String {
    v.price.map_or_else(
        || "no price".to_owned(),
        |p| format!("{} {}", p.amount_string(), p.currency().code()),
    )
}

fn render(
    w: &mut impl Write,
    reads: &[SourceRead],
    matching: &Matching,
    catalog: &CanonicalCatalog,
    plan: &hq::import::Plan,
) -> std::io::Result<()> {
    writeln!(w, "# Catalog import report\n")?;
    writeln!(w, "Sources:")?;
    for r in reads {
        writeln!(
            w,
            "- {} = {} ({}, {} rows, {} variants read, prices in {})",
            r.options.name,
            r.options.file,
            r.options.format.as_str(),
            r.rows,
            r.items.len(),
            r.currency_note
        )?;
    }
    let variants = |kind: &[(String, String)]| -> HashSet<String> {
        kind.iter()
            .filter(|(k, _)| k == "variant")
            .map(|(_, key)| key.clone())
            .collect()
    };
    let (created, updated) = (variants(&plan.created), variants(&plan.updated));

    let merged: Vec<&CanonicalVariant> = catalog
        .variants
        .iter()
        .filter(|v| v.members.len() > 1)
        .collect();
    writeln!(
        w,
        "\n## Merged: {} variants made from several rows\n",
        merged.len()
    )?;
    for v in merged {
        writeln!(
            w,
            "- {} \"{}\" ({}; {})",
            v.sku,
            v.name,
            price(v),
            merge_reason(reads, v)
        )?;
        for r in &v.members {
            writeln!(w, "  - {}", row_name(reads, *r))?;
        }
    }
    for (title, set) in [("New", &created), ("Updated", &updated)] {
        let list: Vec<&CanonicalVariant> = catalog
            .variants
            .iter()
            .filter(|v| set.contains(v.sku.as_str()))
            .collect();
        writeln!(w, "\n## {title}: {} variants\n", list.len())?;
        for v in list {
            let from = v
                .members
                .first()
                .map(|r| row_name(reads, *r))
                .unwrap_or_default();
            writeln!(w, "- {} \"{}\" ({}) from {from}", v.sku, v.name, price(v))?;
        }
    }
    let removed: Vec<&String> = plan
        .removed
        .iter()
        .filter(|(k, _)| k == "variant")
        .map(|(_, key)| key)
        .collect();
    writeln!(
        w,
        "\n## Removed (merged into another): {} variants\n",
        removed.len()
    )?;
    for sku in removed {
        writeln!(w, "- {sku}")?;
    }
    writeln!(
        w,
        "\n## Suggestions to review: {} (decide them in the review file; never merged on their own)\n",
        matching.suggestions.len()
    )?;
    for s in &matching.suggestions {
        writeln!(
            w,
            "- {:.3}: {} <-> {} [{} / {}]",
            s.score,
            row_name(reads, s.left),
            row_name(reads, s.right),
            matching::item_key(reads, s.left),
            matching::item_key(reads, s.right)
        )?;
    }
    writeln!(w, "\n## Not imported\n")?;
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    for d in reads
        .iter()
        .flat_map(|r| r.diagnostics.iter())
        .chain(catalog.diagnostics.iter())
    {
        if d.code == "not-imported" {
            columns.push(d);
        } else if d.severity == Severity::Error || d.code == "inactive" {
            rows.push(d);
        }
    }
    writeln!(w, "Columns ({}):", columns.len())?;
    for d in columns {
        writeln!(
            w,
            "- {}: column `{}`: {}",
            d.file,
            d.column.as_deref().unwrap_or(""),
            d.reason
        )?;
    }
    writeln!(w, "\nRows and values left out ({}):", rows.len())?;
    for d in rows {
        writeln!(w, "- {d}")?;
    }
    Ok(())
}
