//! Card payments as the ledger records them: the request written before it leaves for the
//! payment terminal, how it ended, and how an offline approval settled later.
//!
//! Nothing here can hold a card number: the only card-derived value is [`MaskedPan`], which
//! keeps at most the first six digits (BIN) and the last four, and free text from a terminal is
//! filtered before it reaches these types.

use std::fmt;

use crate::ids::StaffId;
use crate::money::Money;

/// A masked card number: at most the BIN (six digits) and the last four digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MaskedPan {
    bin: Option<String>,
    last4: String,
}

impl MaskedPan {
    /// From its parts; `None` unless `bin` is six digits (when given) and `last4` four digits.
    pub fn new(bin: Option<&str>, last4: &str) -> Option<Self> {
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(last4, 4) || bin.is_some_and(|b| !digits(b, 6)) {
            return None;
        }
        Some(MaskedPan {
            bin: bin.map(str::to_owned),
            last4: last4.to_owned(),
        })
    }

    /// Reads the display form, `411111 **** 1111` or `**** 1111`, and nothing else.
    pub fn parse(text: &str) -> Option<Self> {
        match text.split(" **** ").collect::<Vec<_>>().as_slice() {
            [bin, last4] if !bin.is_empty() => MaskedPan::new(Some(*bin), last4),
            _ => MaskedPan::new(None, text.strip_prefix("**** ")?),
        }
    }

    /// The first six digits, when known.
    pub fn bin(&self) -> Option<&str> {
        self.bin.as_deref()
    }

    /// The last four digits.
    pub fn last4(&self) -> &str {
        &self.last4
    }
}

impl fmt::Display for MaskedPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.bin {
            Some(bin) => write!(f, "{bin} **** {}", self.last4),
            None => write!(f, "**** {}", self.last4),
        }
    }
}

impl fmt::Debug for MaskedPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MaskedPan({self})")
    }
}

/// What a request to the terminal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardRequestKind {
    /// Take money.
    Payment,
    /// Give money back to the card of an earlier payment, by reference.
    Refund,
    /// Undo what is left of a payment (a sale abandoned after approval).
    Reversal,
    /// Give money back to whatever card the customer presents, referenced to no payment (a
    /// return without one to refund to).
    UnreferencedRefund,
}

impl CardRequestKind {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            CardRequestKind::Payment => "payment",
            CardRequestKind::Refund => "refund",
            CardRequestKind::Reversal => "reversal",
            CardRequestKind::UnreferencedRefund => "unreferenced-refund",
        }
    }

    /// Reads the wire name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "payment" => Some(CardRequestKind::Payment),
            "refund" => Some(CardRequestKind::Refund),
            "reversal" => Some(CardRequestKind::Reversal),
            "unreferenced-refund" => Some(CardRequestKind::UnreferencedRefund),
            _ => None,
        }
    }
}

/// A request recorded before it leaves for the terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRequestStarted {
    /// Its nexo ServiceID: what recovery asks the terminal about.
    pub service_id: String,
    /// What it asks for.
    pub kind: CardRequestKind,
    /// The sale (or return) it belongs to, as the till names it.
    pub sale: String,
    /// The amount asked for (what is left, for a reversal).
    pub amount: Money,
    /// For referenced refunds and reversals: the payment's POI transaction id.
    pub original: Option<String>,
    /// The shift it was taken in.
    pub shift: Option<String>,
}

/// What Kassa keeps of an approved card payment: references, a masked PAN, a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardApproval {
    /// The terminal's transaction id, which a card tender references.
    pub poi_transaction_id: String,
    /// The payment service provider's reference.
    pub psp_reference: Option<String>,
    /// Authorisation code.
    pub auth_code: Option<String>,
    /// Brand (`visa`, `mc`, …).
    pub brand: Option<String>,
    /// At most BIN and last four.
    pub masked_pan: Option<MaskedPan>,
    /// Token or alias of the card.
    pub token: Option<String>,
    /// `Contactless`, `ICC`, …
    pub entry_mode: Option<String>,
    /// Approved offline by the terminal (store-and-forward): pending until settled.
    pub offline: bool,
    /// Authorised amount (less than asked on a partial approval).
    pub authorised: Money,
}

/// How a request to the terminal ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardOutcome {
    /// Money taken.
    Approved(CardApproval),
    /// Refused (declined, expired, card removed, cancelled…).
    Declined {
        /// nexo `ErrorCondition`.
        condition: String,
        /// Filtered reason for the cashier.
        reason: Option<String>,
    },
    /// The terminal never had it.
    NotProcessed,
    /// Money given back (a refund, referenced or to a presented card, or a reversal).
    Refunded {
        /// The refund's own POI transaction id.
        poi_transaction_id: String,
        /// How much.
        amount: Money,
    },
}

impl CardOutcome {
    /// The outcome's name on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            CardOutcome::Approved(_) => "approved",
            CardOutcome::Declined { .. } => "declined",
            CardOutcome::NotProcessed => "not-processed",
            CardOutcome::Refunded { .. } => "refunded",
        }
    }
}

/// The card facts a terminal's ledger records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardEvent {
    /// A request is about to leave for the payment terminal.
    RequestStarted(CardRequestStarted),
    /// A request's outcome became known (answered, or recovered after a lost answer).
    RequestEnded {
        /// The request's ServiceID.
        service_id: String,
        /// How it ended.
        outcome: CardOutcome,
    },
    /// An offline approval was forwarded and approved.
    OfflineSettled {
        /// The payment's ServiceID.
        service_id: String,
        /// The payment's POI transaction id.
        poi_transaction_id: String,
    },
    /// An offline approval was forwarded and declined after the customer left: an exception.
    OfflineDeclined {
        /// The payment's ServiceID.
        service_id: String,
        /// The payment's POI transaction id.
        poi_transaction_id: String,
        /// The receipt of the sale it paid, when a sale used it.
        receipt: Option<String>,
        /// The cashier of that sale.
        cashier: Option<StaffId>,
        /// The amount lost.
        amount: Money,
    },
}

impl CardEvent {
    /// The event's type name, as stored beside it.
    pub fn kind(&self) -> &'static str {
        match self {
            CardEvent::RequestStarted(_) => "CardRequestStarted",
            CardEvent::RequestEnded { .. } => "CardRequestEnded",
            CardEvent::OfflineSettled { .. } => "CardOfflineSettled",
            CardEvent::OfflineDeclined { .. } => "CardOfflineDeclined",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_pan_holds_at_most_bin_and_last_four() {
        let m = MaskedPan::parse("411111 **** 1111").expect("masked");
        assert_eq!(m.to_string(), "411111 **** 1111");
        assert_eq!(
            MaskedPan::parse("**** 0010").map(|m| m.to_string()),
            Some("**** 0010".into())
        );
        assert_eq!(MaskedPan::parse("4111111111111111"), None);
        assert_eq!(MaskedPan::parse("4111111 **** 1111"), None);
        assert_eq!(MaskedPan::parse("411111 **** 11111"), None);
        assert_eq!(MaskedPan::new(Some("41111a"), "1111"), None);
    }
}
