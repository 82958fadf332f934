//! Kassa's pure domain core: money, quantities, barcodes, catalog, pricebooks, tax, carts,
//! tenders, returns and ledger events.
//!
//! Everything here is deterministic: no IO, no clock, no async, no floating point. Instants and
//! identifiers are passed in by the caller, so the till and head office compute the same sale
//! bit for bit from the same inputs.
#![deny(missing_docs)]
#![deny(
    clippy::float_arithmetic,
    clippy::float_cmp,
    clippy::cast_precision_loss
)]

pub mod barcode;
pub mod card;
pub mod catalog;
pub mod ids;
pub mod ledger;
pub mod money;
pub mod presets;
pub mod pricebook;
pub mod quantity;
pub mod receipt;
pub mod sale;
pub mod shift;
pub mod staff;
pub mod stock;
pub mod stored_value;
pub mod tax;
pub mod time;

pub use barcode::{BarcodeError, Gtin};
pub use ids::{IdError, StaffId, StoreId, TerminalId};
pub use money::{Currency, Money, MoneyError, RoundingMode};
pub use quantity::{Quantity, QuantityError, UnitOfSale};
pub use time::{Hlc, Timestamp};
