//! The review file: a CSV of proposed merges in which a person writes `accept` or `reject`
//! against each pair. It is read back on the next run: accepted pairs are merged, rejected
//! pairs are never proposed again, and undecided pairs are proposed again.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use crate::matching::{Suggestion, item_key};
use crate::model::SourceRead;

/// A person's decision on a proposed merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Merge the two.
    Accept,
    /// Keep them apart.
    Reject,
}

/// Decisions read from a review file, by pair of item keys (smaller key first).
#[derive(Debug, Clone, Default)]
pub struct Review {
    decisions: BTreeMap<(String, String), Decision>,
}

/// A review file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The CSV is broken or lacks a column.
    #[error("review file line {line}: {reason}")]
    Invalid {
        /// The line.
        line: u64,
        /// Why.
        reason: String,
    },
    /// Writing failed.
    #[error("review file: {0}")]
    Io(#[from] std::io::Error),
}

const HEADER: [&str; 13] = [
    "decision",
    "score",
    "left",
    "right",
    "left_title",
    "right_title",
    "left_sku",
    "right_sku",
    "left_price",
    "right_price",
    "title_score",
    "option_score",
    "why",
];

fn ordered(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

impl Review {
    /// Records a decision.
    pub fn decide(&mut self, a: &str, b: &str, decision: Decision) {
        self.decisions.insert(ordered(a, b), decision);
    }

    /// The decision on a pair, either way round.
    pub fn decision(&self, a: &str, b: &str) -> Option<Decision> {
        self.decisions.get(&ordered(a, b)).copied()
    }

    /// Every decision.
    pub fn decisions(&self) -> impl Iterator<Item = (&(String, String), &Decision)> {
        self.decisions.iter()
    }

    /// Reads a review file; blank decisions are undecided.
    pub fn read(input: impl Read) -> Result<Review, ReviewError> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
        let headers = reader.headers().map_err(|e| ReviewError::Invalid {
            line: 1,
            reason: e.to_string(),
        })?;
        let col = |name: &str| headers.iter().position(|h| h.trim() == name);
        let (Some(d), Some(l), Some(r)) = (col("decision"), col("left"), col("right")) else {
            return Err(ReviewError::Invalid {
                line: 1,
                reason: "expected columns decision, left and right".to_owned(),
            });
        };
        let mut review = Review::default();
        for record in reader.records() {
            let record = record.map_err(|e| ReviewError::Invalid {
                line: e.position().map_or(0, csv::Position::line),
                reason: e.to_string(),
            })?;
            let line = record.position().map_or(0, csv::Position::line);
            let get = |i: usize| record.get(i).map_or("", str::trim);
            let decision = match get(d).to_ascii_lowercase().as_str() {
                "" => continue,
                "accept" | "accepted" | "yes" | "y" | "merge" => Decision::Accept,
                "reject" | "rejected" | "no" | "n" | "keep apart" => Decision::Reject,
                other => {
                    return Err(ReviewError::Invalid {
                        line,
                        reason: format!("decision `{other}` is neither accept nor reject"),
                    });
                }
            };
            review.decide(get(l), get(r), decision);
        }
        Ok(review)
    }

    /// Writes a review file listing `suggestions` (undecided, or with the decision already
    /// taken when the pair was decided before) and every earlier decision no longer proposed,
    /// so that nothing a person decided is lost.
    pub fn write(
        &self,
        out: impl Write,
        reads: &[SourceRead],
        suggestions: &[Suggestion],
    ) -> Result<(), ReviewError> {
        let mut w = csv::Writer::from_writer(out);
        let csv_err = |e: csv::Error| ReviewError::Io(std::io::Error::other(e.to_string()));
        w.write_record(HEADER).map_err(csv_err)?;
        let mut written = std::collections::BTreeSet::new();
        for s in suggestions {
            let (lk, rk) = (item_key(reads, s.left), item_key(reads, s.right));
            let (left, right) = (s.left.get(reads), s.right.get(reads));
            let decision = match self.decision(&lk, &rk) {
                Some(Decision::Accept) => "accept",
                Some(Decision::Reject) => "reject",
                None => "",
            };
            let title =
                |i: Option<&crate::SourceItem>| i.map(|i| i.variant_title()).unwrap_or_default();
            let sku =
                |i: Option<&crate::SourceItem>| i.and_then(|i| i.sku.clone()).unwrap_or_default();
            let price = |i: Option<&crate::SourceItem>| {
                i.and_then(|i| i.price)
                    .map(|p| format!("{} {}", p.amount_string(), p.currency().code()))
                    .unwrap_or_default()
            };
            w.write_record([
                decision,
                &format!("{:.3}", s.score),
                &lk,
                &rk,
                &title(left),
                &title(right),
                &sku(left),
                &sku(right),
                &price(left),
                &price(right),
                &format!("{:.3}", s.title_score),
                &format!("{:.3}", s.option_score),
                &s.why,
            ])
            .map_err(csv_err)?;
            written.insert(ordered(&lk, &rk));
        }
        for ((l, r), d) in &self.decisions {
            if written.contains(&(l.clone(), r.clone())) {
                continue;
            }
            let decision = match d {
                Decision::Accept => "accept",
                Decision::Reject => "reject",
            };
            w.write_record([decision, "", l, r, "", "", "", "", "", "", "", "", ""])
                .map_err(csv_err)?;
        }
        w.flush()?;
        Ok(())
    }
}
