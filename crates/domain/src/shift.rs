//! Shift figures: the X and Z report totals of one terminal's shift, folded from its ledger
//! events, and the cash the drawer should hold. A shift owns every event of its terminal from
//! its `ShiftOpened` up to the sequence its `ShiftClosed` names, never a span of clock time.

use std::collections::BTreeMap;

use crate::ledger::{CashMovementKind, Event, EventBody};
use crate::money::{Currency, Money, MoneyError};
use crate::sale::TenderKind;
use crate::tax::TaxRate;

/// Running totals of one shift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftTally {
    /// The drawer's currency.
    pub currency: Currency,
    /// The counted float the shift opened with.
    pub float: Money,
    /// Completed sales.
    pub sales: u32,
    /// What the sales came to (after discounts and cash rounding).
    pub sales_total: Money,
    /// Tax within the sales.
    pub tax_total: Money,
    /// Tax per code and rate, net of returns: (rate, taxable base, tax).
    pub taxes: BTreeMap<(String, String), (TaxRate, Money, Money)>,
    /// Returns taken.
    pub returns: u32,
    /// What the returns refunded.
    pub refunds_total: Money,
    /// Sales voided.
    pub voids: u32,
    /// What the voids gave back.
    pub voids_total: Money,
    /// Per tender kind: taken in sales (cash net of change) and given back (refunds and
    /// voids, positive).
    pub tenders: BTreeMap<TenderKind, (Money, Money)>,
    /// Cash paid into the drawer outside sales.
    pub paid_in: Money,
    /// Cash paid out of the drawer outside sales.
    pub paid_out: Money,
    /// Gift cards issued and topped up (not sales: no goods, no tax).
    pub stored_value_sold: Money,
    /// The last sequence number folded in.
    pub last_seq: u64,
    /// Cash taken per sale receipt, so a void can give back exactly that.
    cash_by_receipt: BTreeMap<String, Money>,
}

impl ShiftTally {
    /// An empty tally for a shift that opened with `float`.
    pub fn new(float: Money) -> Self {
        let zero = Money::zero(float.currency());
        ShiftTally {
            currency: float.currency(),
            float,
            sales: 0,
            sales_total: zero,
            tax_total: zero,
            taxes: BTreeMap::new(),
            returns: 0,
            refunds_total: zero,
            voids: 0,
            voids_total: zero,
            tenders: BTreeMap::new(),
            paid_in: zero,
            paid_out: zero,
            stored_value_sold: zero,
            last_seq: 0,
            cash_by_receipt: BTreeMap::new(),
        }
    }

    fn taken(&mut self, kind: TenderKind, amount: Money) -> Result<(), MoneyError> {
        let zero = Money::zero(self.currency);
        let entry = self.tenders.entry(kind).or_insert((zero, zero));
        entry.0 = entry.0.checked_add(amount)?;
        Ok(())
    }

    fn given_back(&mut self, kind: TenderKind, amount: Money) -> Result<(), MoneyError> {
        let zero = Money::zero(self.currency);
        let entry = self.tenders.entry(kind).or_insert((zero, zero));
        entry.1 = entry.1.checked_add(amount)?;
        Ok(())
    }

    fn tax(
        &mut self,
        code: &str,
        rate: TaxRate,
        base: Money,
        tax: Money,
    ) -> Result<(), MoneyError> {
        let zero = Money::zero(self.currency);
        let entry = self
            .taxes
            .entry((code.to_owned(), rate.to_string()))
            .or_insert((rate, zero, zero));
        entry.1 = entry.1.checked_add(base)?;
        entry.2 = entry.2.checked_add(tax)?;
        Ok(())
    }

    /// Taken minus given back for one tender kind.
    pub fn tender_net(&self, kind: TenderKind) -> Result<Money, MoneyError> {
        match self.tenders.get(&kind) {
            Some((taken, back)) => taken.checked_sub(*back),
            None => Ok(Money::zero(self.currency)),
        }
    }

    /// Folds one event of the shift's terminal in. Events in another currency than the drawer's
    /// are refused: a drawer holds one currency.
    pub fn add(&mut self, event: &Event) -> Result<(), MoneyError> {
        self.last_seq = self.last_seq.max(event.meta.seq);
        match &event.body {
            EventBody::SaleCompleted(sale) => {
                self.sales += 1;
                self.sales_total = self.sales_total.checked_add(sale.settlement.due)?;
                self.tax_total = self.tax_total.checked_add(sale.cart.tax_total)?;
                for t in &sale.cart.taxes {
                    self.tax(&t.code, t.rate, t.base, t.amount)?;
                }
                let mut cash = Money::zero(self.currency);
                for t in &sale.tenders {
                    if t.kind == TenderKind::Cash {
                        cash = cash.checked_add(t.amount)?;
                    } else {
                        self.taken(t.kind, t.amount)?;
                    }
                }
                cash = cash.checked_sub(sale.settlement.change)?;
                self.taken(TenderKind::Cash, cash)?;
                self.cash_by_receipt.insert(sale.receipt.clone(), cash);
            }
            EventBody::SaleVoided(void) => {
                self.voids += 1;
                self.voids_total = self.voids_total.checked_add(void.refund)?;
                // The customer gets back what they paid; cash comes out of this drawer only if
                // the sale was paid in cash during this shift.
                let cash = self
                    .cash_by_receipt
                    .remove(&void.receipt)
                    .unwrap_or(Money::zero(self.currency));
                let other = void.refund.checked_sub(cash)?;
                self.given_back(TenderKind::Cash, cash)?;
                if other.minor() != 0 {
                    self.given_back(TenderKind::Card, other)?;
                }
            }
            EventBody::ReturnCompleted(ret) => {
                self.returns += 1;
                self.refunds_total = self.refunds_total.checked_add(ret.refund.refund)?;
                for t in &ret.tenders {
                    self.given_back(t.kind, t.amount)?;
                }
                for line in &ret.refund.lines {
                    for t in &line.taxes {
                        self.tax(
                            &t.code,
                            t.rate,
                            line.net.checked_neg()?,
                            t.amount.checked_neg()?,
                        )?;
                    }
                }
            }
            EventBody::StoredValueIssued(load) | EventBody::StoredValueToppedUp(load) => {
                // Stored value sold is no sale (no goods, no tax), but its tenders are taken
                // like a sale's: cash net of change goes into the drawer.
                let mut cash = Money::zero(self.currency);
                for t in &load.tenders {
                    if t.kind == TenderKind::Cash {
                        cash = cash.checked_add(t.amount)?;
                    } else {
                        self.taken(t.kind, t.amount)?;
                    }
                }
                self.taken(TenderKind::Cash, cash.checked_sub(load.change)?)?;
                self.stored_value_sold = self.stored_value_sold.checked_add(load.amount)?;
            }
            EventBody::CashMovement { kind, amount, .. } => match kind {
                CashMovementKind::PaidIn => self.paid_in = self.paid_in.checked_add(*amount)?,
                CashMovementKind::PaidOut => self.paid_out = self.paid_out.checked_add(*amount)?,
            },
            _ => {}
        }
        Ok(())
    }

    /// The cash the drawer should hold: the float, cash taken net of change and refunds, and
    /// paid-ins less paid-outs.
    pub fn expected_cash(&self) -> Result<Money, MoneyError> {
        let cash = self.tender_net(TenderKind::Cash)?;
        self.float
            .checked_add(cash)?
            .checked_add(self.paid_in)?
            .checked_sub(self.paid_out)
    }
}

/// A blind count: how many of each note or coin are in the drawer.
pub fn count_cash(currency: Currency, counted: &[(Money, u32)]) -> Result<Money, MoneyError> {
    let mut total = Money::zero(currency);
    for (denomination, count) in counted {
        total = total.checked_add(denomination.checked_mul(i64::from(*count))?)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{EventId, StoreId, TerminalId};
    use crate::ledger::{EventMeta, SaleCompleted, SaleVoided};
    use crate::sale::{PricedCart, Settlement, Tender};
    use crate::tax::PricingMode;
    use crate::time::Hlc;

    fn eur(minor: i64) -> Money {
        Money::from_minor(
            minor,
            Currency::parse("EUR").unwrap_or_else(|_| unreachable!()),
        )
    }

    fn event(seq: u64, body: EventBody) -> Event {
        Event {
            meta: EventMeta {
                id: EventId::from_uuid(uuid::Uuid::from_u128(u128::from(seq))),
                store: StoreId::parse("s").unwrap_or_else(|_| unreachable!()),
                terminal: TerminalId::parse("t").unwrap_or_else(|_| unreachable!()),
                seq,
                hlc: Hlc::new(1, 0),
            },
            body,
        }
    }

    fn sale(receipt: &str, due: i64, tenders: Vec<Tender>, change: i64) -> EventBody {
        let tendered = tenders.iter().map(|t| t.amount.minor()).sum();
        EventBody::SaleCompleted(SaleCompleted {
            receipt: receipt.into(),
            cashier: None,
            cart: PricedCart {
                currency: eur(0).currency(),
                pricing: PricingMode::Inclusive,
                lines: Vec::new(),
                taxes: Vec::new(),
                subtotal: eur(due),
                discount_total: eur(0),
                net_total: eur(due),
                tax_total: eur(0),
                total: eur(due),
            },
            tenders,
            settlement: Settlement {
                total: eur(due),
                cash_rounding: eur(0),
                due: eur(due),
                tendered: eur(tendered),
                change: eur(change),
            },
            approvals: Vec::new(),
        })
    }

    fn cash(minor: i64) -> Tender {
        Tender {
            kind: TenderKind::Cash,
            amount: eur(minor),
            reference: None,
        }
    }

    #[test]
    fn expected_cash_is_float_plus_cash_net_of_change_voids_and_paid_outs() {
        let mut tally = ShiftTally::new(eur(15_000));
        let card = Tender {
            kind: TenderKind::Card,
            amount: eur(2_000),
            reference: None,
        };
        let events = [
            sale("1", 1_250, vec![cash(2_000)], 750),
            sale("2", 2_000, vec![card], 0),
            sale("3", 500, vec![cash(500)], 0),
            EventBody::SaleVoided(SaleVoided {
                sale: EventId::from_uuid(uuid::Uuid::from_u128(3)),
                receipt: "3".into(),
                reason: "wrong item".into(),
                lines: Vec::new(),
                refund: eur(500),
                approvals: Vec::new(),
            }),
            EventBody::CashMovement {
                shift: "x".into(),
                kind: CashMovementKind::PaidOut,
                amount: eur(1_000),
                reason: "milk delivery".into(),
                approvals: Vec::new(),
            },
        ];
        for (i, body) in events.into_iter().enumerate() {
            tally
                .add(&event(i as u64 + 2, body))
                .unwrap_or_else(|_| unreachable!());
        }
        assert_eq!(tally.sales, 3);
        assert_eq!(tally.voids, 1);
        assert_eq!(
            tally.tenders.get(&TenderKind::Cash),
            Some(&(eur(1_750), eur(500)))
        );
        assert_eq!(tally.tender_net(TenderKind::Card), Ok(eur(2_000)));
        assert_eq!(tally.expected_cash(), Ok(eur(15_000 + 1_250 - 1_000)));
        assert_eq!(tally.last_seq, 6);
    }

    #[test]
    fn a_blind_count_adds_up_denominations() {
        let c = eur(0).currency();
        assert_eq!(
            count_cash(c, &[(eur(5_000), 2), (eur(200), 3), (eur(1), 7)]),
            Ok(eur(10_607))
        );
    }
}
