//! The canonical encoding of the stored-value events: a gift card or store credit account
//! issued or topped up, with the tenders that paid for it.

use domain::Money;
use domain::ledger::EventBody;
use domain::stored_value::{AccountNumber, StoredValueLoad};
use serde::{Deserialize, Serialize};

use super::{Reader, TenderEventDto, tenders};
use crate::FieldError;

/// Money loaded onto an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct LoadDto {
    pub account: String,
    pub cashier: Option<String>,
    pub cur: String,
    pub amount: i64,
    pub tenders: Vec<TenderEventDto>,
    pub change: i64,
}

impl From<&StoredValueLoad> for LoadDto {
    fn from(load: &StoredValueLoad) -> Self {
        LoadDto {
            account: load.account.to_string(),
            cashier: load.cashier.as_ref().map(ToString::to_string),
            cur: load.amount.currency().code().to_owned(),
            amount: load.amount.minor(),
            tenders: tenders(&load.tenders),
            change: load.change.minor(),
        }
    }
}

/// Reads a load back, naming the failing field under `body`.
pub(super) fn load_from(dto: &LoadDto) -> Result<StoredValueLoad, FieldError> {
    let r = Reader { path: "body" };
    let cur = r.currency("cur", &dto.cur)?;
    Ok(StoredValueLoad {
        account: AccountNumber::parse(&dto.account)
            .map_err(|e| FieldError::new("body.account", e.to_string()))?,
        cashier: dto
            .cashier
            .as_deref()
            .map(|c| r.staff("cashier", c))
            .transpose()?,
        amount: Money::from_minor(dto.amount, cur),
        tenders: r.tenders(&dto.tenders, cur)?,
        change: Money::from_minor(dto.change, cur),
    })
}

/// The body of an issue or a top-up.
pub(super) fn issued(dto: &LoadDto) -> Result<EventBody, FieldError> {
    Ok(EventBody::StoredValueIssued(load_from(dto)?))
}

/// See [`issued`].
pub(super) fn topped_up(dto: &LoadDto) -> Result<EventBody, FieldError> {
    Ok(EventBody::StoredValueToppedUp(load_from(dto)?))
}
