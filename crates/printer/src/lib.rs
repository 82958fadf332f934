//! Receipt printing for Kassa: receipts and shift reports as documents, rendered to ESC/POS
//! bytes, plain text and HTML, with translated labels and locale formatting.
//!
//! # Shape
//!
//! - [`receipt::receipt_document`] and [`report::x_report_document`] /
//!   [`report::z_report_document`] build a [`Document`] (blocks) from plain input structs.
//! - The document lays itself out into lines no wider than the paper ([`Paper::Mm58`], 32
//!   characters; [`Paper::Mm80`], 48), and every renderer prints those lines:
//!   [`escpos::encode`], [`render_text`], [`html::render_html`].
//! - [`transport::print()`] sends the bytes to a network printer (raw TCP, port 9100) or a
//!   device file.
//! - [`locale`] formats money (integer minor units only), quantities, rates and dates; the till
//!   screen uses the same functions. [`Labels`] holds the printed words in English and German.
//!
//! # Why an own ESC/POS encoder
//!
//! The `escpos` crate (0.20) requires Rust 1.88 while the workspace builds with 1.85, and it
//! offers no decoder. The subset a receipt needs (`ESC @`, `ESC t`, `ESC a`, `ESC E`, `GS !`,
//! `GS k`, `GS ( k`, `GS V`, `ESC p`, `ESC d`) is a few dozen lines of public protocol, so the
//! encoder is written here, byte for byte, next to the decoder that tests read it back with.

pub mod document;
pub mod escpos;
pub mod html;
pub mod labels;
pub mod locale;
pub mod receipt;
pub mod report;
pub mod transport;

pub use document::{Align, Block, Document, Line, Paper, Size, Style, render_text};
pub use html::render_html;
pub use labels::Labels;
pub use locale::{Language, LocalDateTime, Locale};
pub use receipt::{
    FiscalCode, Layout, ReceiptBody, ReceiptCode, ReceiptData, ReturnReceipt, SaleReceipt,
    StoreHeader, receipt_document,
};
pub use report::{
    CashCount, DenominationCount, ShiftReport, TaxTotal, TenderTotal, blind_x_report_document,
    x_report_document, z_report_document,
};
pub use transport::{PrintError, Printer, print, print_document};
