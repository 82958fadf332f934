//! Fiscal receipts: what the law of a country asks a register to add to each receipt, computed
//! where the sale is written and with no network. Each country is a strategy of its own module;
//! Austria's RKSV is the first (`rksv`). Signature devices sit behind one trait (`signer`).
//!
//! Nothing here reads a clock, a file or the network on its own: instants, keys and the
//! register's state are arguments, so a receipt is computed bit for bit alike wherever it is
//! checked. (A PKCS#11 device is the one exception: talking to it is the point.)

pub mod rksv;
pub mod signer;
