//! The sales report's breakdowns, folded from the same events as the daily figures: per store
//! and business day, gross sales by the hour of the day (in the store's zone) and by cashier,
//! money taken per tender, and each shift close with its cash count.
//!
//! Each breakdown adds up to a figure of the day (`sales_daily`): the hours and the cashiers to
//! its gross, the cash tender to its cash. A void counts against the hour it was made in and the
//! cashier of the sale it voids; a return's refund is taken from the tenders it was paid out in.

use std::collections::{BTreeMap, BTreeSet};

use domain::ledger::{Event, EventBody, SaleCompleted};
use domain::sale::{Tender, TenderKind};
use domain::shift::SalesEffect;
use sqlx::{Any, Transaction};

use crate::db::Db;
use crate::ingest::{business_day, business_hour, sales_effect, store_timezone, voided_sale};

/// The dimensions of `sales_breakdown`.
pub const HOUR: &str = "hour";
pub const TENDER: &str = "tender";
pub const CASHIER: &str = "cashier";

/// The name of the fold of held events into these tables, run once.
const BACKFILL: &str = "report_breakdowns";

type Key = (String, String, &'static str, String);

/// What a run of events adds to the breakdowns, written with one statement per row touched,
/// and the store-days the events fall on (due for reconciliation).
#[derive(Default)]
pub(crate) struct Breakdowns {
    /// (store, day, dimension, key) → (currency, count, amount in minor units).
    rows: BTreeMap<Key, (String, i64, i64)>,
    closes: Vec<ShiftClose>,
    due: BTreeSet<(String, String)>,
}

struct ShiftClose {
    terminal: String,
    shift: String,
    store: String,
    day: String,
    closed_ms: i64,
    staff: String,
    currency: String,
    expected: i64,
    counted: i64,
}

/// Per tender kind, what `tenders` took (cash less the change given).
fn taken(tenders: &[Tender], change: i64) -> BTreeMap<TenderKind, i64> {
    let mut by_kind: BTreeMap<TenderKind, i64> = BTreeMap::new();
    for t in tenders {
        *by_kind.entry(t.kind).or_default() += t.amount.minor();
    }
    if let Some(cash) = by_kind.get_mut(&TenderKind::Cash) {
        *cash -= change;
    }
    by_kind
}

fn sale_taken(sale: &SaleCompleted) -> BTreeMap<TenderKind, i64> {
    taken(&sale.tenders, sale.settlement.change.minor())
}

impl Breakdowns {
    fn add(
        &mut self,
        at: (&str, &str),
        dimension: &'static str,
        key: String,
        currency: &str,
        count: i64,
        amount: i64,
    ) {
        let (store, day) = at;
        let entry = self
            .rows
            .entry((store.to_owned(), day.to_owned(), dimension, key))
            .or_insert_with(|| (currency.to_owned(), 0, 0));
        entry.1 += count;
        entry.2 += amount;
    }

    /// Adds `event`, which falls on business `day` of its store (whose zone is `zone`);
    /// `voided` is the sale it voids, `effect` what it does to the sales figures (as ingest
    /// worked them out for the daily figures).
    pub(crate) fn event(
        &mut self,
        event: &Event,
        voided: Option<&SaleCompleted>,
        effect: Option<&SalesEffect>,
        zone: &str,
        day: &str,
    ) {
        let store = event.meta.store.as_str();
        let wall = event.meta.hlc.wall_ms();
        self.due.insert((store.to_owned(), day.to_owned()));
        let at = (store, day);
        // Gross by hour and cashier: a sale adds, its void takes back.
        if let Some(effect) = effect {
            let gross = effect.sold.minor() - effect.voided.minor();
            let currency = effect.sold.currency().code().to_owned();
            let (count, cashier) = match &event.body {
                EventBody::SaleCompleted(s) => (1, s.cashier.as_ref()),
                EventBody::SaleVoided(_) => (-1, voided.and_then(|s| s.cashier.as_ref())),
                _ => (0, None),
            };
            if count != 0 {
                let hour = format!("{:02}", business_hour(wall, zone));
                self.add(at, HOUR, hour, &currency, count, gross);
                let cashier = cashier.map(ToString::to_string).unwrap_or_default();
                self.add(at, CASHIER, cashier, &currency, count, gross);
            }
        }
        // Money per tender: what a sale took, given back by its void or a return.
        let (sign, by_kind, currency) = match &event.body {
            EventBody::SaleCompleted(s) => (1, sale_taken(s), s.settlement.change.currency()),
            EventBody::SaleVoided(v) => (
                -1,
                voided.map_or_else(
                    // A void whose sale HQ does not hold gives its refund back in cash.
                    || BTreeMap::from([(TenderKind::Cash, v.refund.minor())]),
                    sale_taken,
                ),
                v.refund.currency(),
            ),
            EventBody::ReturnCompleted(r) => (-1, taken(&r.tenders, 0), r.refund.total.currency()),
            EventBody::CardRefundPaidInCash { amount, .. } => (
                -1,
                BTreeMap::from([(TenderKind::Cash, amount.minor())]),
                amount.currency(),
            ),
            EventBody::ShiftClosed {
                shift,
                staff,
                expected,
                counted,
                ..
            } => {
                self.closes.push(ShiftClose {
                    terminal: event.meta.terminal.to_string(),
                    shift: shift.clone(),
                    store: store.to_owned(),
                    day: day.to_owned(),
                    closed_ms: wall,
                    staff: staff.to_string(),
                    currency: expected.currency().code().to_owned(),
                    expected: expected.minor(),
                    counted: counted.minor(),
                });
                return;
            }
            _ => return,
        };
        let counts = matches!(
            event.body,
            EventBody::SaleCompleted(_) | EventBody::SaleVoided(_)
        );
        for (kind, amount) in by_kind {
            self.add(
                at,
                TENDER,
                kind.as_str().to_owned(),
                currency.code(),
                if counts { sign } else { 0 },
                sign * amount,
            );
        }
    }

    /// Writes what the events added, and marks their store-days due for reconciliation.
    pub(crate) async fn write(self, tx: &mut Transaction<'_, Any>) -> Result<(), sqlx::Error> {
        for ((store, day, dimension, key), (currency, count, amount)) in self.rows {
            sqlx::query(
                "INSERT INTO sales_breakdown (store, day, dimension, key, currency, count, amount_minor) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (store, day, dimension, key) DO UPDATE SET count = sales_breakdown.count + excluded.count,
                   amount_minor = sales_breakdown.amount_minor + excluded.amount_minor",
            )
            .bind(store)
            .bind(day)
            .bind(dimension)
            .bind(key)
            .bind(currency)
            .bind(count)
            .bind(amount)
            .execute(&mut **tx)
            .await?;
        }
        for c in self.closes {
            sqlx::query(
                "INSERT INTO shift_closes (terminal, shift, store, day, closed_ms, staff, currency, expected_minor, counted_minor)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (terminal, shift) DO NOTHING",
            )
            .bind(c.terminal)
            .bind(c.shift)
            .bind(c.store)
            .bind(c.day)
            .bind(c.closed_ms)
            .bind(c.staff)
            .bind(c.currency)
            .bind(c.expected)
            .bind(c.counted)
            .execute(&mut **tx)
            .await?;
        }
        crate::reconcile::mark_due(tx, &self.due).await
    }
}

/// Folds `events` HQ applied before the breakdowns existed (in sequence order per terminal)
/// into them; ingest folds new events in its own pass over a batch.
async fn fold_held(tx: &mut Transaction<'_, Any>, events: &[&Event]) -> Result<(), sqlx::Error> {
    let mut zones: BTreeMap<String, String> = BTreeMap::new();
    let mut breakdowns = Breakdowns::default();
    for event in events {
        let voided = match &event.body {
            EventBody::SaleVoided(v) => voided_sale(tx, events, v).await?,
            _ => None,
        };
        let effect = sales_effect(event, voided.as_ref())?;
        let store = event.meta.store.as_str();
        if !zones.contains_key(store) {
            let zone = store_timezone(tx, store).await?;
            zones.insert(store.to_owned(), zone);
        }
        let zone = zones.get(store).map_or("UTC", String::as_str);
        let day = business_day(event.meta.hlc.wall_ms(), zone);
        breakdowns.event(event, voided.as_ref(), effect.as_ref(), zone, &day);
    }
    breakdowns.write(tx).await
}

/// Folds every event HQ applied before the breakdowns existed, once per database (an HQ
/// upgraded from an earlier version); a database that has run it does nothing.
pub async fn backfill(db: &Db) -> Result<(), sqlx::Error> {
    crate::ingest::backfill_once(db, BACKFILL, async |tx, events| fold_held(tx, events).await).await
}
