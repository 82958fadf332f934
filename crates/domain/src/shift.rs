//! Shift figures: the X and Z report totals of one terminal's shift, folded from its ledger
//! events, and the cash the drawer should hold. A shift owns every event of its terminal from
//! its `ShiftOpened` up to the sequence its `ShiftClosed` names, never a span of clock time.

use std::collections::BTreeMap;

use crate::ledger::{
    CashMovementKind, Event, EventBody, ReturnCompleted, SaleCompleted, SaleVoided,
};
use crate::money::{Currency, Money, MoneyError};
use crate::sale::{TaxSummary, Tender, TenderKind};
use crate::tax::TaxRate;

/// Running totals of one shift.
///
/// Every figure is a fold of the same events, so the report adds up whatever the shift held:
///
/// - `sales_total` is gross sales: what every completed sale came to (after discounts and cash
///   rounding), voided sales included;
/// - `voids_total` is what voids gave back (each voided sale's whole amount) and
///   `refunds_total` what returns gave back;
/// - [`ShiftTally::net_sales`] is gross sales less voids less returns;
/// - the net sales split exactly into `goods_net` (the goods net of tax), `tax_total` and
///   `rounding_total` (cash rounding), each net of voids and returns;
/// - `tax_total` is the sum of the per-rate table `taxes`, and a voided sale leaves no trace in
///   either;
/// - the tenders taken less given back add up to the net sales plus the stored value sold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftTally {
    /// The drawer's currency.
    pub currency: Currency,
    /// The counted float the shift opened with.
    pub float: Money,
    /// Completed sales, voided ones included.
    pub sales: u32,
    /// Gross sales: what the completed sales came to (after discounts and cash rounding),
    /// voided ones included.
    pub sales_total: Money,
    /// The goods' value net of tax: of the sales, less the voided sales' and the returned
    /// lines'.
    pub goods_net: Money,
    /// Tax of the sales less the tax of the voided sales and of the returned lines: always the
    /// sum of the tax column of `taxes`.
    pub tax_total: Money,
    /// Cash rounding of the sales less that of the voided sales and of the returns.
    pub rounding_total: Money,
    /// Tax per code and rate, net of voids and returns: (rate, taxable base, tax).
    pub taxes: BTreeMap<(String, String), (TaxRate, Money, Money)>,
    /// Returns taken.
    pub returns: u32,
    /// What the returns refunded.
    pub refunds_total: Money,
    /// Sales voided.
    pub voids: u32,
    /// What the voids gave back (the voided sales' whole amounts).
    pub voids_total: Money,
    /// Per tender kind: taken in sales and stored value (cash net of change) and given back
    /// (refunds and voids, positive).
    pub tenders: BTreeMap<TenderKind, (Money, Money)>,
    /// Cash paid into the drawer outside sales.
    pub paid_in: Money,
    /// Cash paid out of the drawer outside sales.
    pub paid_out: Money,
    /// Gift cards issued and topped up (not sales: no goods, no tax).
    pub stored_value_sold: Money,
    /// The last sequence number folded in.
    pub last_seq: u64,
    /// What each sale of the shift added, and its tenders net of change by kind, by receipt,
    /// so that its void takes back exactly that.
    sales_by_receipt: BTreeMap<String, (SalesEffect, BTreeMap<TenderKind, Money>)>,
}

/// What one sale, void or return does to the sales figures, every amount signed: the one fold
/// the till's X and Z reports and HQ's sales report share, so they agree to the cent.
///
/// `sold − voided − refunded` (the net sales it makes) always equals `goods_net + tax +
/// rounding`, where `tax` is the sum of `taxes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesEffect {
    /// Gross sales added: a sale's amount due.
    pub sold: Money,
    /// What a void gave back (positive).
    pub voided: Money,
    /// What a return gave back (positive).
    pub refunded: Money,
    /// Goods net of tax (negative for voids and returns).
    pub goods_net: Money,
    /// Cash rounding (signed).
    pub rounding: Money,
    /// Tax per component and rate with its base (negative for voids and returns).
    pub taxes: Vec<TaxSummary>,
}

impl SalesEffect {
    /// No effect at all.
    pub fn zero(currency: Currency) -> Self {
        let zero = Money::zero(currency);
        SalesEffect {
            sold: zero,
            voided: zero,
            refunded: zero,
            goods_net: zero,
            rounding: zero,
            taxes: Vec::new(),
        }
    }

    /// The tax: the sum of `taxes`.
    pub fn tax(&self) -> Result<Money, MoneyError> {
        Money::sum(self.sold.currency(), self.taxes.iter().map(|t| &t.amount))
    }

    /// What a completed sale adds.
    pub fn of_sale(sale: &SaleCompleted) -> Result<Self, MoneyError> {
        let currency = sale.cart.currency;
        let tax = Money::sum(currency, sale.cart.taxes.iter().map(|t| &t.amount))?;
        Ok(SalesEffect {
            sold: sale.settlement.due,
            goods_net: sale.cart.total.checked_sub(tax)?,
            rounding: sale.settlement.due.checked_sub(sale.cart.total)?,
            taxes: sale.cart.taxes.clone(),
            ..SalesEffect::zero(currency)
        })
    }

    /// What the void of the sale whose effect this is takes back, when it gives back `refund`:
    /// the sale's goods and tax rows exactly; whatever else the refund holds is rounding.
    pub fn voided(&self, refund: Money) -> Result<Self, MoneyError> {
        let taxes = self
            .taxes
            .iter()
            .map(|t| {
                Ok(TaxSummary {
                    code: t.code.clone(),
                    rate: t.rate,
                    base: t.base.checked_neg()?,
                    amount: t.amount.checked_neg()?,
                })
            })
            .collect::<Result<Vec<_>, MoneyError>>()?;
        let rounding = refund
            .checked_sub(self.goods_net)?
            .checked_sub(self.tax()?)?;
        Ok(SalesEffect {
            voided: refund,
            goods_net: self.goods_net.checked_neg()?,
            rounding: rounding.checked_neg()?,
            taxes,
            ..SalesEffect::zero(refund.currency())
        })
    }

    /// What a return takes back: its lines' goods and tax, and the rest of its refund as
    /// rounding.
    pub fn of_return(ret: &ReturnCompleted) -> Result<Self, MoneyError> {
        let currency = ret.refund.refund.currency();
        let mut taxes = Vec::new();
        let mut tax = Money::zero(currency);
        for line in &ret.refund.lines {
            for t in &line.taxes {
                taxes.push(TaxSummary {
                    code: t.code.clone(),
                    rate: t.rate,
                    base: line.net.checked_neg()?,
                    amount: t.amount.checked_neg()?,
                });
                tax = tax.checked_add(t.amount)?;
            }
        }
        let goods = Money::sum(currency, ret.refund.lines.iter().map(|l| &l.gross))?;
        Ok(SalesEffect {
            refunded: ret.refund.refund,
            goods_net: goods.checked_sub(tax)?.checked_neg()?,
            rounding: ret.refund.refund.checked_sub(goods)?.checked_neg()?,
            taxes,
            ..SalesEffect::zero(currency)
        })
    }
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
            goods_net: zero,
            tax_total: zero,
            rounding_total: zero,
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
            sales_by_receipt: BTreeMap::new(),
        }
    }

    /// Net sales: gross sales less voids less returns; always `goods_net + tax_total +
    /// rounding_total`.
    pub fn net_sales(&self) -> Result<Money, MoneyError> {
        self.sales_total
            .checked_sub(self.voids_total)?
            .checked_sub(self.refunds_total)
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

    /// Adds `base` and `tax` (negative to take them back) to one row of the tax table, and the
    /// tax to `tax_total`, so the two never part.
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
        self.tax_total = self.tax_total.checked_add(tax)?;
        Ok(())
    }

    /// Taken minus given back for one tender kind.
    pub fn tender_net(&self, kind: TenderKind) -> Result<Money, MoneyError> {
        match self.tenders.get(&kind) {
            Some((taken, back)) => taken.checked_sub(*back),
            None => Ok(Money::zero(self.currency)),
        }
    }

    /// Tenders net of change, per kind: cash less the change, the others as given.
    fn net_tenders(
        &self,
        tenders: &[Tender],
        change: Money,
    ) -> Result<BTreeMap<TenderKind, Money>, MoneyError> {
        let mut by_kind: BTreeMap<TenderKind, Money> = BTreeMap::new();
        by_kind.insert(TenderKind::Cash, change.checked_neg()?);
        for t in tenders {
            let entry = by_kind.entry(t.kind).or_insert(Money::zero(self.currency));
            *entry = entry.checked_add(t.amount)?;
        }
        Ok(by_kind)
    }

    /// Adds what a sale, void or return did to the sales figures.
    fn apply(&mut self, effect: &SalesEffect) -> Result<(), MoneyError> {
        self.sales_total = self.sales_total.checked_add(effect.sold)?;
        self.voids_total = self.voids_total.checked_add(effect.voided)?;
        self.refunds_total = self.refunds_total.checked_add(effect.refunded)?;
        self.goods_net = self.goods_net.checked_add(effect.goods_net)?;
        self.rounding_total = self.rounding_total.checked_add(effect.rounding)?;
        for t in &effect.taxes {
            self.tax(&t.code, t.rate, t.base, t.amount)?;
        }
        Ok(())
    }

    fn sale(&mut self, sale: &SaleCompleted) -> Result<(), MoneyError> {
        self.sales += 1;
        let effect = SalesEffect::of_sale(sale)?;
        self.apply(&effect)?;
        let tenders = self.net_tenders(&sale.tenders, sale.settlement.change)?;
        for (kind, amount) in &tenders {
            self.taken(*kind, *amount)?;
        }
        self.sales_by_receipt
            .insert(sale.receipt.clone(), (effect, tenders));
        Ok(())
    }

    fn void(&mut self, void: &SaleVoided) -> Result<(), MoneyError> {
        self.voids += 1;
        // The ledger voids only a terminal's last event, and only a sale, so the voided sale
        // is always of this shift. Should it not be known, the void is taken back as untaxed
        // goods given back in cash, which keeps the figures adding up.
        let Some((sale, tenders)) = self.sales_by_receipt.remove(&void.receipt) else {
            let unknown = SalesEffect {
                voided: void.refund,
                goods_net: void.refund.checked_neg()?,
                ..SalesEffect::zero(self.currency)
            };
            self.apply(&unknown)?;
            return self.given_back(TenderKind::Cash, void.refund);
        };
        self.apply(&sale.voided(void.refund)?)?;
        // The customer gets back what they paid, in the tenders they paid with.
        for (kind, amount) in tenders {
            self.given_back(kind, amount)?;
        }
        Ok(())
    }

    fn return_(&mut self, ret: &ReturnCompleted) -> Result<(), MoneyError> {
        self.returns += 1;
        self.apply(&SalesEffect::of_return(ret)?)?;
        for t in &ret.tenders {
            self.given_back(t.kind, t.amount)?;
        }
        Ok(())
    }

    /// Folds one event of the shift's terminal in. Events in another currency than the drawer's
    /// are refused: a drawer holds one currency.
    pub fn add(&mut self, event: &Event) -> Result<(), MoneyError> {
        self.last_seq = self.last_seq.max(event.meta.seq);
        match &event.body {
            EventBody::SaleCompleted(sale) => self.sale(sale)?,
            EventBody::SaleVoided(void) => self.void(void)?,
            EventBody::ReturnCompleted(ret) => self.return_(ret)?,
            EventBody::StoredValueIssued(load) | EventBody::StoredValueToppedUp(load) => {
                // Stored value sold is no sale (no goods, no tax), but its tenders are taken
                // like a sale's: cash net of change goes into the drawer.
                for (kind, amount) in self.net_tenders(&load.tenders, load.change)? {
                    self.taken(kind, amount)?;
                }
                self.stored_value_sold = self.stored_value_sold.checked_add(load.amount)?;
            }
            // The drawer gave back what the card did not: the card refunded less, cash more.
            EventBody::CardRefundPaidInCash { amount, .. } => {
                self.given_back(TenderKind::Card, amount.checked_neg()?)?;
                self.given_back(TenderKind::Cash, *amount)?;
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

    /// The identities every report relies on.
    fn assert_adds_up(tally: &ShiftTally) {
        let taxes = tally
            .taxes
            .values()
            .map(|(_, _, tax)| tax.minor())
            .sum::<i64>();
        assert_eq!(
            tally.tax_total.minor(),
            taxes,
            "tax total is the table's sum"
        );
        let net = tally.net_sales().unwrap_or_else(|_| unreachable!());
        assert_eq!(
            net.minor(),
            tally.goods_net.minor() + tally.tax_total.minor() + tally.rounding_total.minor(),
            "net sales split into goods, tax and rounding"
        );
        let tenders = tally
            .tenders
            .keys()
            .map(|k| tally.tender_net(*k).map(|m| m.minor()).unwrap_or(0))
            .sum::<i64>();
        assert_eq!(
            tenders,
            net.minor() + tally.stored_value_sold.minor(),
            "tenders net add up to net sales and stored value"
        );
    }

    fn priced_sale(
        receipt: &str,
        jurisdiction: &str,
        lines: &[(i64, &str)],
        tender: TenderKind,
    ) -> SaleCompleted {
        let j = crate::presets::jurisdiction(jurisdiction).unwrap_or_else(|| unreachable!());
        let inputs: Vec<crate::sale::LineInput> = lines
            .iter()
            .enumerate()
            .map(|(i, (price, category))| crate::sale::LineInput {
                sku: crate::catalog::Sku::parse(&format!("SKU{i}"))
                    .unwrap_or_else(|_| unreachable!()),
                name: format!("item {i}"),
                unit_price: Money::from_minor(*price, j.currency()),
                quantity: crate::quantity::Quantity::parse("2").unwrap_or_else(|_| unreachable!()),
                unit: crate::quantity::UnitOfSale::Each,
                tax_category: crate::catalog::TaxCategory::parse(category)
                    .unwrap_or_else(|_| unreachable!()),
                discount: None,
                fixed_amount: None,
            })
            .collect();
        let at = crate::Timestamp::from_millis(1_790_000_000_000);
        let cart =
            crate::sale::price_cart(&j, &inputs, None, at).unwrap_or_else(|_| unreachable!());
        let tendered = Tender {
            kind: tender,
            amount: cart.total,
            reference: None,
        };
        let settlement =
            crate::sale::settle(&cart, std::slice::from_ref(&tendered), j.cash_rounding())
                .unwrap_or_else(|_| unreachable!());
        SaleCompleted {
            receipt: receipt.into(),
            cashier: None,
            cart,
            tenders: vec![tendered],
            settlement,
            approvals: Vec::new(),
        }
    }

    #[test]
    fn a_voided_sale_leaves_no_trace_in_tax_and_returns_reduce_the_tax_total() {
        let kept = priced_sale(
            "1",
            "AT",
            &[(1_199, "standard"), (249, "reduced")],
            TenderKind::Cash,
        );
        let voided = priced_sale(
            "2",
            "AT",
            &[(1_000, "standard"), (333, "reduced")],
            TenderKind::Card,
        );
        let mut alone = ShiftTally::new(eur(10_000));
        alone
            .add(&event(2, EventBody::SaleCompleted(kept.clone())))
            .unwrap_or_else(|_| unreachable!());
        let mut tally = ShiftTally::new(eur(10_000));
        let void = SaleVoided {
            sale: EventId::from_uuid(uuid::Uuid::from_u128(3)),
            receipt: "2".into(),
            reason: "wrong item".into(),
            lines: Vec::new(),
            refund: voided.settlement.due,
            approvals: Vec::new(),
        };
        for (seq, body) in [
            (2, EventBody::SaleCompleted(kept.clone())),
            (3, EventBody::SaleCompleted(voided)),
            (4, EventBody::SaleVoided(void)),
        ] {
            tally
                .add(&event(seq, body))
                .unwrap_or_else(|_| unreachable!());
            assert_adds_up(&tally);
        }
        // After the void, tax, goods and the tax table are exactly the kept sale's.
        assert_eq!(tally.taxes, alone.taxes);
        assert_eq!(tally.tax_total, alone.tax_total);
        assert_eq!(tally.goods_net, alone.goods_net);
        assert_eq!(tally.net_sales(), alone.net_sales());
        assert_eq!(tally.tender_net(TenderKind::Card), Ok(eur(0)));
        // A return of one of each line takes its tax out of the table and the total alike.
        let refund = crate::sale::price_return(
            &kept.cart,
            &kept.settlement,
            &[],
            &[
                (
                    0,
                    crate::quantity::Quantity::parse("1").unwrap_or_else(|_| unreachable!()),
                ),
                (
                    1,
                    crate::quantity::Quantity::parse("1").unwrap_or_else(|_| unreachable!()),
                ),
            ],
        )
        .unwrap_or_else(|_| unreachable!());
        let returned_tax: i64 = refund
            .lines
            .iter()
            .flat_map(|l| l.taxes.iter().map(|t| t.amount.minor()))
            .sum();
        assert!(returned_tax > 0);
        let ret = ReturnCompleted {
            receipt: "R1".into(),
            original_receipt: Some("1".into()),
            reason: None,
            tenders: vec![cash(refund.refund.minor())],
            refund,
            approvals: Vec::new(),
        };
        tally
            .add(&event(5, EventBody::ReturnCompleted(ret)))
            .unwrap_or_else(|_| unreachable!());
        assert_adds_up(&tally);
        assert_eq!(
            tally.tax_total.minor(),
            alone.tax_total.minor() - returned_tax
        );
        assert_eq!(tally.net_sales(), Ok(eur(1_199 + 249)));
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
