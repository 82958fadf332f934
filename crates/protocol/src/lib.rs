//! Kassa's wire and storage formats: the JSON the store node's API speaks, the basket file,
//! and (with the ledger) the canonical encoding of events. Every outside value becomes a domain
//! type here, once; a rejection names the field and the reason.
#![deny(missing_docs)]

pub mod api;
pub mod backup;
pub mod chain;
pub mod enrol;
mod error;
pub mod event;
pub mod journal;
pub mod licence;
pub mod pin;
pub mod seed;
pub mod stored_value;
pub mod support;
pub mod sync;

pub use error::FieldError;
