//! Kassa's catalog migration: readers for legacy point-of-sale and web-shop exports (Shopify,
//! WooCommerce, Square, Lightspeed R- and X-Series, Loyverse, Open Source POS, Odoo, any CSV
//! through a mapping file), normalisation, profiling, matching across sources with a review
//! file for fuzzy suggestions, and the canonical catalog with provenance.
//!
//! Pure: `impl Read` in, items and per-row diagnostics out. No database, no network, no clock;
//! `kassa catalog` commits the result to HQ.

pub mod canonical;
pub mod diag;
pub mod matching;
pub mod model;
pub mod normalize;
pub mod profile;
pub mod readers;
pub mod review;
mod suggest;
mod table;

pub use diag::{Diagnostic, Severity};
pub use model::{Format, SourceItem, SourceOptions, SourceRead};
pub use readers::{Mapping, MappingError, detect, read, sniff};
pub use suggest::Score;
pub use table::Encoding;
