//! The stock fold: on-hand per location and SKU as the sum of movements, where a count sets
//! on-hand as of its clock reading whatever order the events arrive in.

use std::collections::BTreeMap;

use crate::catalog::Sku;
use crate::ids::{EventId, StoreId};
use crate::ledger::{Event, StockEffect, stock_movements};
use crate::time::Hlc;

/// The order in which stock facts took effect: clock reading, then event id to break ties.
pub type StockClock = (Hlc, EventId);

/// The history of one location's stock of one SKU.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockPosition {
    latest_count: Option<(StockClock, i64)>,
    moves: BTreeMap<StockClock, i64>,
}

impl StockPosition {
    /// Records a movement or a count; applying the same event twice has no further effect.
    pub fn apply(&mut self, at: StockClock, effect: &StockEffect) {
        match effect {
            StockEffect::Move(delta) => {
                self.moves.entry(at).or_insert(*delta);
            }
            StockEffect::Count(counted) => {
                if self.latest_count.as_ref().is_none_or(|(c, _)| at > *c) {
                    self.latest_count = Some((at, *counted));
                }
            }
        }
    }

    /// On hand: the latest count plus every movement after it (or all movements, without a
    /// count). Movements at or before the count are absorbed by it.
    pub fn on_hand(&self) -> i64 {
        match &self.latest_count {
            None => self.moves.values().sum(),
            Some((at, counted)) => {
                counted
                    + self
                        .moves
                        .range((std::ops::Bound::Excluded(*at), std::ops::Bound::Unbounded))
                        .map(|(_, d)| d)
                        .sum::<i64>()
            }
        }
    }
}

/// Stock per (location, SKU), folded from events in any order.
#[derive(Debug, Clone, Default)]
pub struct StockBook {
    positions: BTreeMap<(StoreId, Sku), StockPosition>,
}

impl StockBook {
    /// Applies an event's stock movements; several movements of one SKU in one event (two lines
    /// of the same item) are summed first, so applying the event again changes nothing.
    pub fn apply(&mut self, event: &Event) {
        let mut moves: BTreeMap<(StoreId, Sku), i64> = BTreeMap::new();
        for movement in stock_movements(event) {
            let key = (movement.location, movement.sku);
            match movement.effect {
                StockEffect::Move(delta) => *moves.entry(key).or_default() += delta,
                count @ StockEffect::Count(_) => self
                    .positions
                    .entry(key)
                    .or_default()
                    .apply((event.meta.hlc, event.meta.id), &count),
            }
        }
        for (key, delta) in moves {
            self.positions
                .entry(key)
                .or_default()
                .apply((event.meta.hlc, event.meta.id), &StockEffect::Move(delta));
        }
    }

    /// On hand in thousandths; zero for a SKU never seen at the location.
    pub fn on_hand(&self, location: &StoreId, sku: &Sku) -> i64 {
        self.positions
            .get(&(location.clone(), sku.clone()))
            .map_or(0, StockPosition::on_hand)
    }
}
