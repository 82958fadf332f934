//! Stored value: gift cards and store credit. An account is identified by its number, holds
//! money in one currency, and its balance is the sum of its movements (issue, top-up and refund
//! add, redemption takes away). HQ holds the balances; a store checks a redemption against HQ's
//! figure when it can reach HQ, and against its offline liability cap when it cannot.
//!
//! Account numbers carry their kind in a two-letter prefix (`GC` gift card, `SC` store credit)
//! and end in a Luhn mod 36 check character. They never contain 13 or more digits in a row, so
//! no account number can be taken for a payment card number by the card-number scanner.

use crate::ids::StaffId;
use crate::ledger::EventBody;
use crate::money::{Currency, Money, MoneyError};
use crate::sale::{Tender, TenderKind};

/// Errors from stored-value rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoredValueError {
    /// The text is not an account number.
    #[error("`{value}` is not a gift card or store credit number: {reason}")]
    BadNumber {
        /// The text as given.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// The number belongs to another kind of account than the tender or request names.
    #[error("{number} is a {found} number, not a {expected} number")]
    WrongKind {
        /// The number.
        number: String,
        /// The kind asked for.
        expected: &'static str,
        /// The kind the number has.
        found: &'static str,
    },
    /// A redemption above the known balance.
    #[error("{amount} is more than the balance {balance} of {number}")]
    InsufficientBalance {
        /// The account.
        number: String,
        /// What was asked.
        amount: Money,
        /// What the account holds.
        balance: Money,
    },
    /// An offline redemption that would take the store's unconfirmed redemptions over its cap.
    #[error(
        "HQ cannot be reached and this store may redeem at most {cap} offline; {unconfirmed} is not yet confirmed, so {amount} more is over the cap"
    )]
    OverOfflineCap {
        /// The store's offline liability cap.
        cap: Money,
        /// Redemptions HQ has not yet acknowledged.
        unconfirmed: Money,
        /// What was asked.
        amount: Money,
    },
    /// An amount to load that is zero or negative.
    #[error("amount must be greater than zero")]
    AmountNotPositive,
    /// A tender that cannot pay for stored value.
    #[error("tender {index}: stored value is paid with cash or card, not {kind}")]
    TenderNotAllowed {
        /// Tender index (0-based).
        index: usize,
        /// The tender's kind.
        kind: &'static str,
    },
    /// A tender that is zero or negative, or in another currency.
    #[error("tender {index}: amount must be greater than zero and in {currency}")]
    BadTender {
        /// Tender index (0-based).
        index: usize,
        /// The currency of the amount loaded.
        currency: Currency,
    },
    /// Tenders that do not cover the amount.
    #[error("tenders {tendered} do not cover the amount {amount}")]
    TendersShort {
        /// The amount loaded.
        amount: Money,
        /// The sum of tenders.
        tendered: Money,
    },
    /// Card tenders above the amount: only cash gives change.
    #[error("card tenders {card} exceed the amount {amount}; only cash gives change")]
    NonCashOverTender {
        /// The amount loaded.
        amount: Money,
        /// The card tenders.
        card: Money,
    },
    /// Arithmetic overflow or mixed currencies.
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// The two kinds of stored-value account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoredValueKind {
    /// A gift card, sold to a customer.
    GiftCard,
    /// Store credit, given instead of a refund.
    StoreCredit,
}

impl StoredValueKind {
    /// The name used on the wire (the same as the tender kind's).
    pub fn as_str(self) -> &'static str {
        match self {
            StoredValueKind::GiftCard => "gift-card",
            StoredValueKind::StoreCredit => "store-credit",
        }
    }

    /// Parses the wire name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "gift-card" => Some(StoredValueKind::GiftCard),
            "store-credit" => Some(StoredValueKind::StoreCredit),
            _ => None,
        }
    }

    /// The number prefix of this kind.
    pub fn prefix(self) -> &'static str {
        match self {
            StoredValueKind::GiftCard => "GC",
            StoredValueKind::StoreCredit => "SC",
        }
    }

    /// The tender that redeems this kind.
    pub fn tender_kind(self) -> TenderKind {
        match self {
            StoredValueKind::GiftCard => TenderKind::GiftCard,
            StoredValueKind::StoreCredit => TenderKind::StoreCredit,
        }
    }

    /// The kind a tender redeems, if it redeems stored value.
    pub fn of_tender(kind: TenderKind) -> Option<Self> {
        match kind {
            TenderKind::GiftCard => Some(StoredValueKind::GiftCard),
            TenderKind::StoreCredit => Some(StoredValueKind::StoreCredit),
            TenderKind::Cash | TenderKind::Card => None,
        }
    }
}

/// Characters after the prefix: at least this many (the last is the check character).
pub const NUMBER_MIN_BODY: usize = 8;
/// And at most this many.
pub const NUMBER_MAX_BODY: usize = 20;
/// The longest run of digits a number may contain: one more and it could pass for a card number.
pub const NUMBER_MAX_DIGIT_RUN: usize = 12;

/// A validated account number: prefix, body, Luhn mod 36 check character; upper case, no
/// separators.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountNumber(String);

fn code_point(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 10),
        _ => None,
    }
}

fn character(point: u32) -> char {
    // `point` is below 36 by construction.
    char::from_digit(point, 36)
        .unwrap_or('0')
        .to_ascii_uppercase()
}

/// The Luhn mod 36 sum over `bytes`, doubling every second character from the right starting
/// with the first (`double_first`) or the second.
fn luhn36_sum(bytes: &[u8], double_first: bool) -> Option<u32> {
    let mut sum = 0;
    let mut double = double_first;
    for &b in bytes.iter().rev() {
        let mut addend = code_point(b)? * if double { 2 } else { 1 };
        addend = addend / 36 + addend % 36;
        sum += addend;
        double = !double;
    }
    Some(sum)
}

fn check_character(bytes: &[u8]) -> Option<char> {
    let sum = luhn36_sum(bytes, true)?;
    Some(character((36 - sum % 36) % 36))
}

impl AccountNumber {
    /// Parses a number as typed or scanned: case, spaces and dashes do not matter.
    pub fn parse(value: &str) -> Result<Self, StoredValueError> {
        let bad = |reason| StoredValueError::BadNumber {
            value: value.to_owned(),
            reason,
        };
        let text: String = value
            .chars()
            .filter(|c| *c != ' ' && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if !text.bytes().all(|b| code_point(b).is_some()) {
            return Err(bad("only letters and digits are allowed"));
        }
        if StoredValueKind::of_prefix(&text).is_none() {
            return Err(bad(
                "it must start with GC (gift card) or SC (store credit)",
            ));
        }
        let body = text.len() - 2;
        if !(NUMBER_MIN_BODY..=NUMBER_MAX_BODY).contains(&body) {
            return Err(bad("it must have 8 to 20 characters after the prefix"));
        }
        let longest_run = text
            .split(|c: char| !c.is_ascii_digit())
            .map(str::len)
            .max()
            .unwrap_or(0);
        if longest_run > NUMBER_MAX_DIGIT_RUN {
            return Err(bad("it has more than 12 digits in a row"));
        }
        if luhn36_sum(text.as_bytes(), false).is_none_or(|s| s % 36 != 0) {
            return Err(bad("its check character is wrong (mistyped?)"));
        }
        Ok(AccountNumber(text))
    }

    /// A new number of `kind` from 64 bits of entropy (the caller draws them): the prefix, 11
    /// base-36 characters and the check character.
    pub fn generate(kind: StoredValueKind, entropy: u64) -> Self {
        let mut body = String::with_capacity(14);
        body.push_str(kind.prefix());
        let mut rest = entropy;
        for _ in 0..11 {
            body.push(character(u32::try_from(rest % 36).unwrap_or(0)));
            rest /= 36;
        }
        let check = check_character(body.as_bytes()).unwrap_or('0');
        body.push(check);
        AccountNumber(body)
    }

    /// The number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its kind, from the prefix.
    pub fn kind(&self) -> StoredValueKind {
        StoredValueKind::of_prefix(&self.0).unwrap_or(StoredValueKind::GiftCard)
    }

    /// Parses a number that must be of `kind`.
    pub fn parse_kind(value: &str, kind: StoredValueKind) -> Result<Self, StoredValueError> {
        let number = AccountNumber::parse(value)?;
        if number.kind() != kind {
            let found = number.kind().as_str();
            return Err(StoredValueError::WrongKind {
                number: number.0,
                expected: kind.as_str(),
                found,
            });
        }
        Ok(number)
    }
}

impl StoredValueKind {
    fn of_prefix(text: &str) -> Option<Self> {
        if text.starts_with("GC") {
            Some(StoredValueKind::GiftCard)
        } else if text.starts_with("SC") {
            Some(StoredValueKind::StoreCredit)
        } else {
            None
        }
    }
}

impl std::fmt::Display for AccountNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Money loaded onto an account (issued or topped up), with the tenders that paid for it. Stored
/// value is not goods: no tax, no stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredValueLoad {
    /// The account.
    pub account: AccountNumber,
    /// The cashier, when signed in.
    pub cashier: Option<StaffId>,
    /// What was loaded.
    pub amount: Money,
    /// How it was paid (cash or card).
    pub tenders: Vec<Tender>,
    /// Change given back in cash.
    pub change: Money,
}

/// Checks the tenders paying for `amount` of stored value and returns the change: cash and card
/// only, card never above the amount, together at least the amount.
pub fn settle_load(amount: Money, tenders: &[Tender]) -> Result<Money, StoredValueError> {
    if !amount.is_positive() {
        return Err(StoredValueError::AmountNotPositive);
    }
    let currency = amount.currency();
    for (index, t) in tenders.iter().enumerate() {
        if StoredValueKind::of_tender(t.kind).is_some() {
            return Err(StoredValueError::TenderNotAllowed {
                index,
                kind: t.kind.as_str(),
            });
        }
        if t.amount.currency() != currency || !t.amount.is_positive() {
            return Err(StoredValueError::BadTender { index, currency });
        }
    }
    let tendered = Money::sum(currency, tenders.iter().map(|t| &t.amount))?;
    let card = Money::sum(
        currency,
        tenders
            .iter()
            .filter(|t| t.kind != TenderKind::Cash)
            .map(|t| &t.amount),
    )?;
    if card.minor() > amount.minor() {
        return Err(StoredValueError::NonCashOverTender { amount, card });
    }
    if tendered.minor() < amount.minor() {
        return Err(StoredValueError::TendersShort { amount, tendered });
    }
    Ok(tendered.checked_sub(amount)?)
}

/// What a movement did to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MovementKind {
    /// The account was issued with an opening amount.
    Issue,
    /// Money was added.
    TopUp,
    /// A sale was paid from it.
    Redemption,
    /// A return was refunded onto it.
    Refund,
    /// A voided sale gave back what it had redeemed.
    Void,
}

impl MovementKind {
    /// The name used in storage and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            MovementKind::Issue => "issue",
            MovementKind::TopUp => "top-up",
            MovementKind::Redemption => "redemption",
            MovementKind::Refund => "refund",
            MovementKind::Void => "void",
        }
    }

    /// Parses the stored name.
    pub fn parse(value: &str) -> Option<Self> {
        [
            MovementKind::Issue,
            MovementKind::TopUp,
            MovementKind::Redemption,
            MovementKind::Refund,
            MovementKind::Void,
        ]
        .into_iter()
        .find(|k| k.as_str() == value)
    }
}

/// One change to one account's balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    /// The account.
    pub account: AccountNumber,
    /// What happened.
    pub kind: MovementKind,
    /// Signed change: positive adds to the balance.
    pub delta: Money,
}

fn tender_movements(tenders: &[Tender], kind: MovementKind, sign: i64) -> Vec<Movement> {
    tenders
        .iter()
        .filter(|t| StoredValueKind::of_tender(t.kind).is_some())
        .filter_map(|t| {
            // Tenders recorded before balances were held carry no number; they move nothing.
            let account = AccountNumber::parse(t.reference.as_deref()?).ok()?;
            let delta = t.amount.checked_mul(sign).ok()?;
            Some(Movement {
                account,
                kind,
                delta,
            })
        })
        .collect()
}

/// The stored-value movements an event implies: loads add, a sale's gift card and store credit
/// tenders redeem, a return refunded onto an account credits it. A void's movements depend on
/// the voided sale: see [`void_movements`].
pub fn movements(body: &EventBody) -> Vec<Movement> {
    match body {
        EventBody::StoredValueIssued(load) | EventBody::StoredValueToppedUp(load) => {
            vec![Movement {
                account: load.account.clone(),
                kind: if matches!(body, EventBody::StoredValueIssued(_)) {
                    MovementKind::Issue
                } else {
                    MovementKind::TopUp
                },
                delta: load.amount,
            }]
        }
        EventBody::SaleCompleted(sale) => {
            tender_movements(&sale.tenders, MovementKind::Redemption, -1)
        }
        EventBody::ReturnCompleted(ret) => tender_movements(&ret.tenders, MovementKind::Refund, 1),
        // An online order brought back to a till and refunded as store credit.
        EventBody::OrderStep(step) => step
            .store_credit
            .iter()
            .map(|(account, amount)| Movement {
                account: account.clone(),
                kind: MovementKind::Refund,
                delta: *amount,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// What voiding a sale gives back: each of its redemptions, reversed.
pub fn void_movements(sale: &[Movement]) -> Vec<Movement> {
    sale.iter()
        .filter(|m| m.kind == MovementKind::Redemption)
        .filter_map(|m| {
            Some(Movement {
                account: m.account.clone(),
                kind: MovementKind::Void,
                delta: m.delta.checked_neg().ok()?,
            })
        })
        .collect()
}

/// The balance of `account`: the sum of its movements.
pub fn balance<'a>(
    account: &AccountNumber,
    currency: Currency,
    movements: impl IntoIterator<Item = &'a Movement>,
) -> Result<Money, MoneyError> {
    Money::sum(
        currency,
        movements
            .into_iter()
            .filter(|m| &m.account == account)
            .map(|m| &m.delta),
    )
}

/// A redemption of `amount` from an account whose balance is known: never above the balance.
pub fn check_redemption(
    account: &AccountNumber,
    amount: Money,
    balance: Money,
) -> Result<(), StoredValueError> {
    if amount.currency() != balance.currency() {
        return Err(MoneyError::CurrencyMismatch {
            left: amount.currency(),
            right: balance.currency(),
        }
        .into());
    }
    if amount.minor() > balance.minor() {
        return Err(StoredValueError::InsufficientBalance {
            number: account.to_string(),
            amount,
            balance,
        });
    }
    Ok(())
}

/// The offline rule: with HQ out of reach, a store's redemptions that HQ has not yet
/// acknowledged, this one included, stay within the store's liability cap.
pub fn check_offline_cap(
    cap: Money,
    unconfirmed: Money,
    amount: Money,
) -> Result<(), StoredValueError> {
    let after = unconfirmed.checked_add(amount)?;
    if after.minor() > cap.minor() || after.currency() != cap.currency() {
        return Err(StoredValueError::OverOfflineCap {
            cap,
            unconfirmed,
            amount,
        });
    }
    Ok(())
}

/// What a store's redemptions add up to among `movements` (positive).
pub fn redeemed<'a>(
    currency: Currency,
    movements: impl IntoIterator<Item = &'a Movement>,
) -> Result<Money, MoneyError> {
    let mut total = Money::zero(currency);
    for m in movements {
        match m.kind {
            MovementKind::Redemption => total = total.checked_sub(m.delta)?,
            MovementKind::Void => total = total.checked_sub(m.delta)?,
            _ => {}
        }
    }
    Ok(total)
}

/// A gift card or store credit number as receipts and screens show it: its last four letters
/// or digits only, as card numbers are (`**** 7Q2K`). The number is all anyone needs to spend
/// the balance, so it is never printed whole.
pub fn masked_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().filter(char::is_ascii_alphanumeric).collect();
    let last4: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("**** {last4}")
}

#[cfg(test)]
mod tests;
