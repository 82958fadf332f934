//! Pricebooks: effective-dated prices, chain-wide and per store, and the one rule that picks
//! the price of a variant at a store at an instant.

use std::collections::BTreeMap;

use crate::catalog::Sku;
use crate::ids::StoreId;
use crate::money::{Currency, Money};
use crate::time::Timestamp;

/// Errors from building a pricebook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricebookError {
    /// Two prices for one SKU are valid at the same instant.
    #[error(
        "prices for `{sku}` overlap: one valid from {first_from} and one from {second_from} are both in force at {second_from}"
    )]
    Overlap {
        /// The SKU.
        sku: Sku,
        /// Start of the earlier entry (ms since epoch).
        first_from: i64,
        /// Start of the later entry (ms since epoch).
        second_from: i64,
    },
    /// An entry ends before it starts.
    #[error("price for `{sku}` ends at {to} before it starts at {from}")]
    EmptyValidity {
        /// The SKU.
        sku: Sku,
        /// Start (ms since epoch).
        from: i64,
        /// End (ms since epoch).
        to: i64,
    },
    /// A price in another currency than the book's.
    #[error("price for `{sku}` is in {found}, but the pricebook is in {expected}")]
    Currency {
        /// The SKU.
        sku: Sku,
        /// The book's currency.
        expected: Currency,
        /// The entry's currency.
        found: Currency,
    },
    /// A negative price.
    #[error("price for `{sku}` must not be negative")]
    Negative {
        /// The SKU.
        sku: Sku,
    },
}

/// Which stores a pricebook applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Every store of the chain that trades in the book's currency.
    Chain,
    /// One store; its prices override the chain's.
    Store(StoreId),
}

/// A price valid from an instant (inclusive) until another (exclusive) or open-ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceEntry {
    /// The variant.
    pub sku: Sku,
    /// The unit price (per piece, per kilogram or per litre).
    pub price: Money,
    /// First instant the price applies.
    pub from: Timestamp,
    /// First instant it no longer applies, if it ends.
    pub to: Option<Timestamp>,
}

impl PriceEntry {
    fn contains(&self, at: Timestamp) -> bool {
        self.from <= at && self.to.is_none_or(|to| at < to)
    }
}

/// A validated, versioned pricebook for one scope and currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pricebook {
    id: String,
    version: u64,
    scope: Scope,
    currency: Currency,
    entries: BTreeMap<Sku, Vec<PriceEntry>>,
}

impl Pricebook {
    /// Builds a book, rejecting overlapping validity for one SKU, empty intervals, negative
    /// prices and prices in another currency.
    pub fn build(
        id: &str,
        version: u64,
        scope: Scope,
        currency: Currency,
        entries: Vec<PriceEntry>,
    ) -> Result<Self, PricebookError> {
        let mut by_sku: BTreeMap<Sku, Vec<PriceEntry>> = BTreeMap::new();
        for entry in entries {
            if entry.price.currency() != currency {
                return Err(PricebookError::Currency {
                    sku: entry.sku,
                    expected: currency,
                    found: entry.price.currency(),
                });
            }
            if entry.price.is_negative() {
                return Err(PricebookError::Negative { sku: entry.sku });
            }
            if let Some(to) = entry.to {
                if to <= entry.from {
                    return Err(PricebookError::EmptyValidity {
                        sku: entry.sku,
                        from: entry.from.millis(),
                        to: to.millis(),
                    });
                }
            }
            by_sku.entry(entry.sku.clone()).or_default().push(entry);
        }
        for (sku, list) in &mut by_sku {
            list.sort_by_key(|e| e.from);
            for pair in list.windows(2) {
                if let [first, second] = pair {
                    if first.to.is_none_or(|to| to > second.from) {
                        return Err(PricebookError::Overlap {
                            sku: sku.clone(),
                            first_from: first.from.millis(),
                            second_from: second.from.millis(),
                        });
                    }
                }
            }
        }
        Ok(Pricebook {
            id: id.to_owned(),
            version,
            scope,
            currency,
            entries: by_sku,
        })
    }

    /// The book's id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The version; a newer version of a book replaces the older one whole.
    pub fn version(&self) -> u64 {
        self.version
    }
    /// Where it applies.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }
    /// Its currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }
    /// All entries, by SKU and start.
    pub fn entries(&self) -> impl Iterator<Item = &PriceEntry> {
        self.entries.values().flatten()
    }

    /// The entry in force for `sku` at `at`, if any.
    pub fn entry_at(&self, sku: &Sku, at: Timestamp) -> Option<&PriceEntry> {
        self.entries.get(sku)?.iter().find(|e| e.contains(at))
    }
}

/// The price of `sku` at `store` at instant `at`: a price in force in the store's own book wins;
/// otherwise the chain book's price in force. Books in another currency than the store's are
/// never consulted, so a store can only ever be quoted in its own currency.
pub fn price_at(
    books: &[Pricebook],
    store: &StoreId,
    currency: Currency,
    sku: &Sku,
    at: Timestamp,
) -> Option<Money> {
    let in_scope = |scope: &Scope| {
        books
            .iter()
            .filter(|b| b.currency == currency && &b.scope == scope)
            .max_by_key(|b| b.version)
            .and_then(|b| b.entry_at(sku, at))
            .map(|e| e.price)
    };
    in_scope(&Scope::Store(store.clone())).or_else(|| in_scope(&Scope::Chain))
}

/// A price change: from `at` the variant costs `price`, until the next price the book already
/// had starts (or for good).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceChange {
    /// When it takes effect.
    pub at: Timestamp,
    /// The new price.
    pub price: Money,
}

/// The entries of `sku` in one book with `changes` applied to `base` (its entries), earliest
/// first: each change ends the entry in force at its instant there, replaces one that starts
/// then, and holds until the next entry of the book starts (or for good). Applying the
/// remaining changes to the same base is how one is cancelled, so a cancelled change leaves
/// exactly what the others make. The result never overlaps.
pub fn with_changes(sku: &Sku, base: &[PriceEntry], changes: &[PriceChange]) -> Vec<PriceEntry> {
    let mut entries = base.to_vec();
    let mut ordered = changes.to_vec();
    ordered.sort_by_key(|c| c.at);
    for change in ordered {
        entries.retain(|e| e.from != change.at);
        let next = entries
            .iter()
            .map(|e| e.from)
            .filter(|from| *from > change.at)
            .min();
        for entry in &mut entries {
            if entry.contains(change.at) {
                entry.to = Some(change.at);
            }
        }
        entries.push(PriceEntry {
            sku: sku.clone(),
            price: change.price,
            from: change.at,
            to: next,
        });
    }
    entries.sort_by_key(|e| e.from);
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }
    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::EUR)
    }
    fn entry(s: &str, minor: i64, from: i64, to: Option<i64>) -> PriceEntry {
        PriceEntry {
            sku: sku(s),
            price: eur(minor),
            from: Timestamp::from_millis(from),
            to: to.map(Timestamp::from_millis),
        }
    }

    #[test]
    fn store_overrides_chain_within_validity() {
        let store = StoreId::parse("vienna").unwrap();
        let chain = Pricebook::build(
            "chain",
            1,
            Scope::Chain,
            Currency::EUR,
            vec![entry("A", 1000, 0, Some(100)), entry("A", 1200, 100, None)],
        )
        .unwrap();
        let local = Pricebook::build(
            "vienna",
            1,
            Scope::Store(store.clone()),
            Currency::EUR,
            vec![entry("A", 900, 50, Some(80))],
        )
        .unwrap();
        let books = [chain, local];
        let at = |t| {
            price_at(
                &books,
                &store,
                Currency::EUR,
                &sku("A"),
                Timestamp::from_millis(t),
            )
        };
        assert_eq!(at(10), Some(eur(1000)));
        assert_eq!(at(50), Some(eur(900)));
        assert_eq!(at(80), Some(eur(1000)));
        assert_eq!(at(100), Some(eur(1200)));
        assert_eq!(at(-1), None);
        let other = StoreId::parse("graz").unwrap();
        assert_eq!(
            price_at(
                &books,
                &other,
                Currency::EUR,
                &sku("A"),
                Timestamp::from_millis(60)
            ),
            Some(eur(1000))
        );
        assert_eq!(
            price_at(
                &books,
                &other,
                Currency::CHF,
                &sku("A"),
                Timestamp::from_millis(60)
            ),
            None
        );
    }

    #[test]
    fn newest_version_of_a_scope_wins() {
        let store = StoreId::parse("s").unwrap();
        let v1 = Pricebook::build(
            "c",
            1,
            Scope::Chain,
            Currency::EUR,
            vec![entry("A", 1, 0, None)],
        );
        let v2 = Pricebook::build(
            "c",
            2,
            Scope::Chain,
            Currency::EUR,
            vec![entry("A", 2, 0, None)],
        );
        let books = [v2.unwrap(), v1.unwrap()];
        assert_eq!(
            price_at(
                &books,
                &store,
                Currency::EUR,
                &sku("A"),
                Timestamp::from_millis(5)
            ),
            Some(eur(2))
        );
    }

    #[test]
    fn overlaps_are_rejected_when_the_book_is_built() {
        let err = Pricebook::build(
            "c",
            1,
            Scope::Chain,
            Currency::EUR,
            vec![entry("A", 1, 0, Some(100)), entry("A", 2, 99, None)],
        )
        .unwrap_err();
        assert!(matches!(err, PricebookError::Overlap { .. }), "{err}");
        let err = Pricebook::build(
            "c",
            1,
            Scope::Chain,
            Currency::EUR,
            vec![entry("A", 1, 0, None), entry("A", 2, 500, None)],
        )
        .unwrap_err();
        assert!(matches!(err, PricebookError::Overlap { .. }));
        // Touching intervals do not overlap: the end is exclusive.
        assert!(
            Pricebook::build(
                "c",
                1,
                Scope::Chain,
                Currency::EUR,
                vec![entry("A", 1, 0, Some(100)), entry("A", 2, 100, None)],
            )
            .is_ok()
        );
        assert!(matches!(
            Pricebook::build(
                "c",
                1,
                Scope::Chain,
                Currency::EUR,
                vec![entry("A", 1, 10, Some(10))]
            ),
            Err(PricebookError::EmptyValidity { .. })
        ));
        assert!(matches!(
            Pricebook::build(
                "c",
                1,
                Scope::Chain,
                Currency::CHF,
                vec![entry("A", 1, 0, None)]
            ),
            Err(PricebookError::Currency { .. })
        ));
    }

    fn change(minor: i64, at: i64) -> PriceChange {
        PriceChange {
            at: Timestamp::from_millis(at),
            price: eur(minor),
        }
    }

    #[test]
    fn a_change_ends_the_price_in_force_and_holds_until_the_next_one() {
        let base = [
            entry("A", 1000, 0, Some(100)),
            entry("A", 800, 100, Some(150)),
            entry("A", 1200, 200, None),
        ];
        let got = with_changes(&sku("A"), &base, &[change(900, 50), change(700, 160)]);
        assert_eq!(
            got,
            vec![
                entry("A", 1000, 0, Some(50)),
                entry("A", 900, 50, Some(100)),
                entry("A", 800, 100, Some(150)),
                entry("A", 700, 160, Some(200)),
                entry("A", 1200, 200, None),
            ]
        );
        assert_eq!(
            with_changes(&sku("A"), &[], &[change(5, 10)]),
            vec![entry("A", 5, 10, None)]
        );
    }

    proptest::proptest! {
        /// Whatever the base and the changes, the result builds (no overlap), and at every
        /// instant the price is the latest change's unless a base entry started after it.
        #[test]
        fn changes_never_overlap_and_the_latest_one_holds(
            cuts in proptest::collection::btree_set(0_i64..1000, 0..6),
            open_end in proptest::bool::ANY,
            changes in proptest::collection::btree_map(0_i64..1000, 1_i64..5000, 0..5),
            probes in proptest::collection::vec(0_i64..1100, 20),
        ) {
            let starts: Vec<i64> = cuts.into_iter().collect();
            let base: Vec<PriceEntry> = starts
                .iter()
                .enumerate()
                .map(|(i, from)| {
                    let to = starts.get(i + 1).copied().or((!open_end).then_some(1000));
                    entry("A", 10_000 + *from, *from, to)
                })
                .collect();
            let changes: Vec<PriceChange> =
                changes.iter().map(|(at, minor)| change(*minor, *at)).collect();
            let got = with_changes(&sku("A"), &base, &changes);
            let book = Pricebook::build("c", 1, Scope::Chain, Currency::EUR, got);
            proptest::prop_assert!(book.is_ok(), "{:?}", book);
            let Ok(book) = book else { return Ok(()) };
            for t in probes {
                let at = Timestamp::from_millis(t);
                let latest_change = changes.iter().filter(|c| c.at <= at).max_by_key(|c| c.at);
                let latest_base_start = base.iter().filter(|e| e.from <= at).map(|e| e.from).max();
                let expected = match (latest_change, latest_base_start) {
                    (Some(c), Some(b)) if b > c.at => {
                        base.iter().find(|e| e.contains(at)).map(|e| e.price)
                    }
                    (Some(c), _) => Some(c.price),
                    (None, _) => base.iter().find(|e| e.contains(at)).map(|e| e.price),
                };
                proptest::prop_assert_eq!(book.entry_at(&sku("A"), at).map(|e| e.price), expected, "at {}", t);
            }
        }
    }
}
