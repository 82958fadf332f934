//! Stored-value requests and answers: what a store node asks HQ about a gift card or store
//! credit account, and the store node's own issue and top-up requests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::TenderDto;

/// `GET /v1/sync/stored-value/{number}`: an account's balance as HQ holds it, with, per terminal
/// of the asking store, the sequence up to which the balance includes that terminal's events (a
/// store adds only its own later movements).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredValueBalance {
    /// The account number.
    pub number: String,
    /// `gift-card` or `store-credit`.
    pub kind: String,
    /// `active`, or `unknown` when HQ has no movement of it.
    pub status: String,
    /// The account's currency (absent while unknown).
    pub currency: Option<String>,
    /// The balance in minor units (zero while unknown).
    pub balance_minor: i64,
    /// Terminal id → sequence included.
    pub watermarks: BTreeMap<String, u64>,
}

/// `POST /v1/gift-cards`: issue a gift card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// The terminal selling it.
    pub terminal: String,
    /// The cashier, when not signed in through a session.
    #[serde(default)]
    pub cashier: Option<String>,
    /// The card's number, as typed or scanned.
    pub number: String,
    /// The opening amount in major units.
    pub amount: String,
    /// How it is paid (cash or card).
    pub tenders: Vec<TenderDto>,
}

/// `POST /v1/gift-cards/{number}/top-up`: add money to an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopUpRequest {
    /// The terminal taking the money.
    pub terminal: String,
    /// The cashier, when not signed in through a session.
    #[serde(default)]
    pub cashier: Option<String>,
    /// The amount added, in major units.
    pub amount: String,
    /// How it is paid (cash or card).
    pub tenders: Vec<TenderDto>,
}
