//! The canonical encoding of card events (`BodyDto::Card`): the request before it leaves for
//! the terminal, its outcome and an offline approval settling. Amounts are minor units with
//! their currency; a masked PAN travels only in its display form and is re-checked on the way in.

use domain::Money;
use domain::card::{
    CardApproval, CardEvent, CardOutcome, CardRequestKind, CardRequestStarted, MaskedPan,
};
use serde::{Deserialize, Serialize};

use crate::FieldError;
use crate::error::AtField;

/// A card event as encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum CardDto {
    Started {
        service: String,
        kind: String,
        sale: String,
        cur: String,
        amount: i64,
        original: Option<String>,
        shift: Option<String>,
    },
    Ended {
        service: String,
        outcome: OutcomeDto,
    },
    OfflineSettled {
        service: String,
        poi: String,
    },
    OfflineDeclined {
        service: String,
        poi: String,
        receipt: Option<String>,
        cashier: Option<String>,
        cur: String,
        amount: i64,
    },
}

/// How a card request ended, as encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum OutcomeDto {
    Approved {
        poi: String,
        psp: Option<String>,
        auth: Option<String>,
        brand: Option<String>,
        pan: Option<String>,
        token: Option<String>,
        entry: Option<String>,
        offline: bool,
        cur: String,
        amount: i64,
    },
    Declined {
        condition: String,
        reason: Option<String>,
    },
    NotProcessed,
    Refunded {
        poi: String,
        cur: String,
        amount: i64,
    },
}

impl From<&CardEvent> for CardDto {
    fn from(event: &CardEvent) -> Self {
        match event {
            CardEvent::RequestStarted(s) => CardDto::Started {
                service: s.service_id.clone(),
                kind: s.kind.as_str().to_owned(),
                sale: s.sale.clone(),
                cur: s.amount.currency().code().to_owned(),
                amount: s.amount.minor(),
                original: s.original.clone(),
                shift: s.shift.clone(),
            },
            CardEvent::RequestEnded {
                service_id,
                outcome,
            } => CardDto::Ended {
                service: service_id.clone(),
                outcome: outcome_dto(outcome),
            },
            CardEvent::OfflineSettled {
                service_id,
                poi_transaction_id,
            } => CardDto::OfflineSettled {
                service: service_id.clone(),
                poi: poi_transaction_id.clone(),
            },
            CardEvent::OfflineDeclined {
                service_id,
                poi_transaction_id,
                receipt,
                cashier,
                amount,
            } => CardDto::OfflineDeclined {
                service: service_id.clone(),
                poi: poi_transaction_id.clone(),
                receipt: receipt.clone(),
                cashier: cashier.as_ref().map(ToString::to_string),
                cur: amount.currency().code().to_owned(),
                amount: amount.minor(),
            },
        }
    }
}

fn outcome_dto(outcome: &CardOutcome) -> OutcomeDto {
    match outcome {
        CardOutcome::Approved(a) => OutcomeDto::Approved {
            poi: a.poi_transaction_id.clone(),
            psp: a.psp_reference.clone(),
            auth: a.auth_code.clone(),
            brand: a.brand.clone(),
            pan: a.masked_pan.as_ref().map(ToString::to_string),
            token: a.token.clone(),
            entry: a.entry_mode.clone(),
            offline: a.offline,
            cur: a.authorised.currency().code().to_owned(),
            amount: a.authorised.minor(),
        },
        CardOutcome::Declined { condition, reason } => OutcomeDto::Declined {
            condition: condition.clone(),
            reason: reason.clone(),
        },
        CardOutcome::NotProcessed => OutcomeDto::NotProcessed,
        CardOutcome::Refunded {
            poi_transaction_id,
            amount,
        } => OutcomeDto::Refunded {
            poi: poi_transaction_id.clone(),
            cur: amount.currency().code().to_owned(),
            amount: amount.minor(),
        },
    }
}

fn money(cur: &str, minor: i64, field: &str) -> Result<Money, FieldError> {
    let currency = domain::Currency::parse(cur).at(|| format!("body.{field}"))?;
    Ok(Money::from_minor(minor, currency))
}

/// Reads a card event back.
pub(super) fn card_from(dto: &CardDto) -> Result<CardEvent, FieldError> {
    Ok(match dto {
        CardDto::Started {
            service,
            kind,
            sale,
            cur,
            amount,
            original,
            shift,
        } => CardEvent::RequestStarted(CardRequestStarted {
            service_id: service.clone(),
            kind: CardRequestKind::parse(kind).ok_or_else(|| {
                FieldError::new(
                    "body.kind",
                    "must be payment, refund, reversal or unreferenced-refund",
                )
            })?,
            sale: sale.clone(),
            amount: money(cur, *amount, "cur")?,
            original: original.clone(),
            shift: shift.clone(),
        }),
        CardDto::Ended { service, outcome } => CardEvent::RequestEnded {
            service_id: service.clone(),
            outcome: outcome_from(outcome)?,
        },
        CardDto::OfflineSettled { service, poi } => CardEvent::OfflineSettled {
            service_id: service.clone(),
            poi_transaction_id: poi.clone(),
        },
        CardDto::OfflineDeclined {
            service,
            poi,
            receipt,
            cashier,
            cur,
            amount,
        } => CardEvent::OfflineDeclined {
            service_id: service.clone(),
            poi_transaction_id: poi.clone(),
            receipt: receipt.clone(),
            cashier: cashier
                .as_deref()
                .map(domain::StaffId::parse)
                .transpose()
                .at(|| "body.cashier".into())?,
            amount: money(cur, *amount, "cur")?,
        },
    })
}

fn outcome_from(dto: &OutcomeDto) -> Result<CardOutcome, FieldError> {
    Ok(match dto {
        OutcomeDto::Approved {
            poi,
            psp,
            auth,
            brand,
            pan,
            token,
            entry,
            offline,
            cur,
            amount,
        } => CardOutcome::Approved(CardApproval {
            poi_transaction_id: poi.clone(),
            psp_reference: psp.clone(),
            auth_code: auth.clone(),
            brand: brand.clone(),
            masked_pan: pan
                .as_deref()
                .map(|p| {
                    MaskedPan::parse(p).ok_or_else(|| {
                        FieldError::new(
                            "body.outcome.pan",
                            "a masked PAN shows at most the BIN and the last four digits",
                        )
                    })
                })
                .transpose()?,
            token: token.clone(),
            entry_mode: entry.clone(),
            offline: *offline,
            authorised: money(cur, *amount, "outcome.cur")?,
        }),
        OutcomeDto::Declined { condition, reason } => CardOutcome::Declined {
            condition: condition.clone(),
            reason: reason.clone(),
        },
        OutcomeDto::NotProcessed => CardOutcome::NotProcessed,
        OutcomeDto::Refunded { poi, cur, amount } => CardOutcome::Refunded {
            poi_transaction_id: poi.clone(),
            amount: money(cur, *amount, "outcome.cur")?,
        },
    })
}
