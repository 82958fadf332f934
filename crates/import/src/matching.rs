//! Matching the same variant across sources: exact on a valid GTIN (never a restricted-circulation
//! number, prefixes 02, 04 and 20 to 29, which each source numbers for itself), then on the
//! normalised SKU,
//! then pairs a person accepted in the review file; finally fuzzy title-and-attribute
//! similarity (Jaro-Winkler) proposes merges that are only suggestions, written to the review
//! file for a person to accept or reject. Candidates are blocked by title tokens and attributes
//! so that no pass compares every item with every other.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use crate::model::{SourceItem, SourceRead};
use crate::normalize::sku_key;
use crate::review::{Decision, Review};
use crate::suggest;

/// One item of one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemRef {
    /// Index of the source in the run.
    pub source: u32,
    /// Index of the item in its source.
    pub index: u32,
}

impl ItemRef {
    /// The item in `reads`.
    pub fn get<'a>(&self, reads: &'a [SourceRead]) -> Option<&'a SourceItem> {
        reads
            .get(self.source as usize)
            .and_then(|r| r.items.get(self.index as usize))
    }
}

/// A key for an item that stays the same from run to run while the files do: the source's name
/// and the item's legacy id, else its SKU, else its line.
pub fn item_key(reads: &[SourceRead], r: ItemRef) -> String {
    let name = reads
        .get(r.source as usize)
        .map_or("", |s| s.options.name.as_str());
    match r.get(reads) {
        Some(item) => match (&item.legacy_id, &item.sku) {
            (Some(id), _) => format!("{name}:id:{id}"),
            (None, Some(sku)) => format!("{name}:sku:{sku}"),
            (None, None) => format!("{name}:line:{}", item.line),
        },
        None => format!("{name}:?"),
    }
}

/// A proposed merge of two clusters, for a person to decide.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    /// A member of the first cluster.
    pub left: ItemRef,
    /// A member of the second cluster.
    pub right: ItemRef,
    /// Overall similarity from 0 to 1.
    pub score: f64,
    /// Title similarity from 0 to 1.
    pub title_score: f64,
    /// What the options say, from 0 to 1.
    pub option_score: f64,
    /// Why the pair is suggested, in words (for the review file).
    pub why: String,
}

/// Two items that look like one but cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// One item.
    pub left: ItemRef,
    /// The other.
    pub right: ItemRef,
    /// Why they were not merged.
    pub reason: String,
}

/// How matching went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchStats {
    /// Merges made on a GTIN.
    pub by_gtin: usize,
    /// Merges made on a SKU.
    pub by_sku: usize,
    /// Merges a person accepted in the review file.
    pub by_review: usize,
    /// Pairs compared by the fuzzy pass.
    pub compared: usize,
    /// Blocks too large to compare pair by pair (their items were not compared).
    pub oversized_blocks: usize,
}

/// The result of matching: clusters of items that are one variant, suggestions and conflicts.
#[derive(Debug, Clone, Default)]
pub struct Matching {
    /// Each cluster's members, in source order; every item is in exactly one cluster.
    pub clusters: Vec<Vec<ItemRef>>,
    /// Proposed merges, best first.
    pub suggestions: Vec<Suggestion>,
    /// Merges refused.
    pub conflicts: Vec<Conflict>,
    /// Counts.
    pub stats: MatchStats,
}

/// Tuning of the fuzzy pass.
#[derive(Debug, Clone, Copy)]
pub struct MatchOptions {
    /// Jaro-Winkler similarity from which a pair is suggested.
    pub threshold: f64,
    /// Blocks with more clusters than this are not compared pair by pair.
    pub max_block: usize,
}

impl Default for MatchOptions {
    fn default() -> Self {
        MatchOptions {
            threshold: 0.92,
            max_block: 40,
        }
    }
}

struct UnionFind {
    parent: Vec<u32>,
    gtin: Vec<Option<u64>>,
    sources: Vec<u128>,
}

impl UnionFind {
    fn find(&mut self, mut x: u32) -> u32 {
        loop {
            let p = self.parent[x as usize];
            if p == x {
                return x;
            }
            let gp = self.parent[p as usize];
            self.parent[x as usize] = gp;
            x = gp;
        }
    }

    /// Merges the clusters of `a` and `b`; refuses when they carry different GTINs.
    fn union(&mut self, a: u32, b: u32) -> Result<bool, (u64, u64)> {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return Ok(false);
        }
        let (ga, gb) = (self.gtin[ra as usize], self.gtin[rb as usize]);
        if let (Some(x), Some(y)) = (ga, gb) {
            if x != y {
                return Err((x, y));
            }
        }
        let (keep, gone) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.parent[gone as usize] = keep;
        self.gtin[keep as usize] = ga.or(gb);
        self.sources[keep as usize] |= self.sources[gone as usize];
        Ok(true)
    }
}

/// A GTIN as a number: leading zeros do not change it, so every length of one code agrees.
pub(crate) fn gtin_u64(g: domain::Gtin) -> u64 {
    g.as_str()
        .bytes()
        .fold(0_u64, |n, b| n * 10 + u64::from(b.wrapping_sub(b'0') % 10))
}

/// The GTIN an item is matched on across sources: restricted-circulation numbers are left out,
/// as each source numbers those for itself.
fn gtin_number(item: &SourceItem) -> Option<u64> {
    item.shared_gtin().map(gtin_u64)
}

fn hash_of(parts: &[&str]) -> u64 {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// Matches the items of `reads`, applying the decisions of `review`.
pub fn match_items(reads: &[SourceRead], review: &Review, options: MatchOptions) -> Matching {
    let mut refs = Vec::new();
    for (s, read) in reads.iter().enumerate() {
        for i in 0..read.items.len() {
            refs.push(ItemRef {
                source: u32::try_from(s).unwrap_or(u32::MAX),
                index: u32::try_from(i).unwrap_or(u32::MAX),
            });
        }
    }
    let item = |g: u32| refs.get(g as usize).and_then(|r| r.get(reads));
    let mut uf = UnionFind {
        parent: (0..u32::try_from(refs.len()).unwrap_or(u32::MAX)).collect(),
        gtin: refs
            .iter()
            .map(|r| r.get(reads).and_then(gtin_number))
            .collect(),
        sources: refs.iter().map(|r| 1_u128 << (r.source % 128)).collect(),
    };
    let mut result = Matching::default();
    let conflict = |result: &mut Matching, a: u32, b: u32, reason: String| {
        if let (Some(&left), Some(&right)) = (refs.get(a as usize), refs.get(b as usize)) {
            result.conflicts.push(Conflict {
                left,
                right,
                reason,
            });
        }
    };

    // 1. Valid GTINs, across sources: the first item of each source with that GTIN.
    // Grouped by sorting pairs rather than in a map of vectors: a tenth of the memory on
    // millions of items.
    let mut by_gtin: Vec<(u64, u32)> = Vec::new();
    for (g, r) in refs.iter().enumerate() {
        let Some(it) = r.get(reads) else { continue };
        let first = by_gtin.len();
        for (_, b) in &it.barcodes {
            let shared = b.gtin().filter(|g| !crate::normalize::is_restricted(g));
            if let Some(n) = shared.map(gtin_u64) {
                let own = by_gtin.get(first..).unwrap_or(&[]);
                if !own.iter().any(|(m, _)| *m == n) {
                    by_gtin.push((n, u32::try_from(g).unwrap_or(u32::MAX)));
                }
            }
        }
    }
    by_gtin.sort_unstable();
    let gtin_groups: Vec<Vec<u32>> = by_gtin
        .chunk_by(|a, b| a.0 == b.0)
        .filter(|c| c.len() > 1)
        .map(|c| c.iter().map(|(_, g)| *g).collect())
        .collect();
    drop(by_gtin);
    for group in gtin_groups {
        let firsts = first_per_source(&refs, &group);
        for pair in firsts.windows(2) {
            if let [a, b] = *pair {
                match uf.union(a, b) {
                    Ok(true) => result.stats.by_gtin += 1,
                    Ok(false) => {}
                    Err((x, y)) => conflict(
                        &mut result,
                        a,
                        b,
                        format!("share a GTIN but also carry GTINs {x:014} and {y:014}"),
                    ),
                }
            }
        }
    }

    // 2. Normalised SKUs, across sources, unless the clusters carry different GTINs.
    let mut by_sku: Vec<(u64, u32)> = Vec::new();
    for (g, r) in refs.iter().enumerate() {
        if let Some(sku) = r.get(reads).and_then(|i| i.sku.as_deref()) {
            let key = sku_key(sku);
            if !key.is_empty() {
                by_sku.push((hash_of(&[&key]), u32::try_from(g).unwrap_or(u32::MAX)));
            }
        }
    }
    by_sku.sort_unstable();
    // Items with equal hashes are grouped again by the key itself, so a hash collision never
    // merges two SKUs.
    let mut sku_groups: Vec<(String, Vec<u32>)> = Vec::new();
    for chunk in by_sku.chunk_by(|a, b| a.0 == b.0).filter(|c| c.len() > 1) {
        let mut keyed: Vec<(String, u32)> = chunk
            .iter()
            .filter_map(|(_, g)| {
                let sku = item(*g).and_then(|i| i.sku.as_deref())?;
                Some((sku_key(sku), *g))
            })
            .collect();
        keyed.sort_unstable();
        for same in keyed.chunk_by(|a, b| a.0 == b.0).filter(|c| c.len() > 1) {
            let key = same.first().map(|(k, _)| k.clone()).unwrap_or_default();
            sku_groups.push((key, same.iter().map(|(_, g)| *g).collect()));
        }
    }
    drop(by_sku);
    sku_groups.sort_unstable();
    for (sku, group) in sku_groups {
        let firsts = first_per_source(&refs, &group);
        let Some((&head, rest)) = firsts.split_first() else {
            continue;
        };
        for &other in rest {
            match uf.union(head, other) {
                Ok(true) => result.stats.by_sku += 1,
                Ok(false) => {}
                Err((x, y)) => conflict(
                    &mut result,
                    head,
                    other,
                    format!("share SKU `{sku}` but carry different GTINs {x:014} and {y:014}"),
                ),
            }
        }
    }

    // 3. Pairs a person accepted. Keys are built only when there are decisions to apply.
    let keys: Vec<String> = if review.decisions().next().is_some() {
        refs.iter().map(|r| item_key(reads, *r)).collect()
    } else {
        Vec::new()
    };
    let by_key: HashMap<&str, u32> = keys
        .iter()
        .enumerate()
        .map(|(g, k)| (k.as_str(), u32::try_from(g).unwrap_or(u32::MAX)))
        .collect();
    for ((left, right), decision) in review.decisions() {
        if *decision != Decision::Accept {
            continue;
        }
        let (Some(&a), Some(&b)) = (by_key.get(left.as_str()), by_key.get(right.as_str())) else {
            continue;
        };
        match uf.union(a, b) {
            Ok(true) => result.stats.by_review += 1,
            Ok(false) => {}
            Err((x, y)) => conflict(
                &mut result,
                a,
                b,
                format!(
                    "accepted in the review file but carry different GTINs {x:014} and {y:014}"
                ),
            ),
        }
    }

    // 4. Fuzzy suggestions between clusters (see `suggest` for blocking and scoring).
    let n = refs.len();
    let all_sources: u128 = (0..reads.len().min(128)).fold(0, |m, s| m | 1 << s);
    let mut signatures: suggest::Signatures = HashMap::new();
    // (block key, cluster) pairs, grouped by sorting: a map of vectors would cost five times
    // the memory for the millions of keys a large run has, most of them seen once.
    let mut blocks: Vec<(u64, u32)> = Vec::new();
    for g in 0..u32::try_from(n).unwrap_or(u32::MAX) {
        let root = uf.find(g);
        // A cluster with an item from every source has no one left to pair with.
        if signatures.contains_key(&root) || uf.sources[root as usize] == all_sources {
            continue;
        }
        let Some(it) = item(root) else { continue };
        let signature = suggest::signature(it);
        blocks.extend(
            suggest::block_keys(&signature)
                .into_iter()
                .map(|k| (k, root)),
        );
        signatures.insert(root, signature);
    }
    let pairs = suggest::candidate_pairs(
        &mut blocks,
        options.max_block,
        &mut result.stats.oversized_blocks,
    );
    drop(blocks);
    let mut suggestions = Vec::new();
    for (a, b) in pairs {
        let (ra, rb) = (a as usize, b as usize);
        if uf.sources[ra] & uf.sources[rb] != 0 {
            continue;
        }
        if let (Some(x), Some(y)) = (uf.gtin[ra], uf.gtin[rb]) {
            if x != y {
                continue;
            }
        }
        result.stats.compared += 1;
        let (Some(sa), Some(sb)) = (signatures.get(&a), signatures.get(&b)) else {
            continue;
        };
        let Some(score) = suggest::score(sa, sb) else {
            continue;
        };
        if score.total < options.threshold {
            continue;
        }
        let (Some(&left), Some(&right)) = (refs.get(ra), refs.get(rb)) else {
            continue;
        };
        if !keys.is_empty()
            && review.decision(&item_key(reads, left), &item_key(reads, right))
                == Some(Decision::Reject)
        {
            continue;
        }
        suggestions.push(Suggestion {
            left,
            right,
            score: score.total,
            title_score: score.title,
            option_score: score.options,
            why: score.why,
        });
    }
    suggestions.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| (a.left, a.right).cmp(&(b.left, b.right)))
    });
    result.suggestions = suggestions;

    drop(signatures);
    // Clusters by sorting (root, item) pairs; the stable sort keeps each cluster's members in
    // source order, and each cluster gets exactly the room it needs.
    let mut members: Vec<(u32, ItemRef)> = refs
        .iter()
        .enumerate()
        .map(|(g, r)| (uf.find(u32::try_from(g).unwrap_or(u32::MAX)), *r))
        .collect();
    members.sort_by_key(|(root, _)| *root);
    result.clusters = members
        .chunk_by(|a, b| a.0 == b.0)
        .map(|c| c.iter().map(|(_, r)| *r).collect())
        .collect();
    result
}

/// The first of `group` from each source, in source order.
fn first_per_source(refs: &[ItemRef], group: &[u32]) -> Vec<u32> {
    let mut seen = HashSet::new();
    group
        .iter()
        .copied()
        .filter(|g| refs.get(*g as usize).is_some_and(|r| seen.insert(r.source)))
        .collect()
}
