//! Catalog import batches: a set of reference entities (variants, prices) written through the
//! reference-data change log as one new version, with the state of every entity before and
//! after kept per batch. A batch that changes nothing is not recorded, so running the same
//! import again changes nothing; rolling a batch back writes the earlier state as another new
//! version, because the change log only ever grows.
//!
//! A batch may also carry opening stock counts: what the legacy systems held per Kassa location
//! and SKU. Each is applied to the stock projection like a till's count, stamped with the
//! batch's clock (its commit instant, then its reference version and id): on-hand becomes the
//! counted quantity plus every movement recorded after that instant, and a till's later count
//! replaces it. Rolling the batch back withdraws its counts (see [`rollback`]); the movements
//! (sales, returns, adjustments) recorded since are kept.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;
use sqlx::Row;

use crate::db::{Arg, Db, insert_many};

/// Errors from committing or rolling back an import batch.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// No batch has this id.
    #[error("no import batch `{0}`")]
    UnknownBatch(String),
    /// The batch was rolled back already.
    #[error("import batch `{batch}` was already rolled back at reference version {version}")]
    AlreadyRolledBack {
        /// The batch.
        batch: String,
        /// The version of its rollback.
        version: i64,
    },
    /// Entities of the batch changed after it; undoing it would undo those changes too.
    #[error(
        "import batch `{batch}` cannot be rolled back: {} of its entities changed since (first: {})",
        keys.len(),
        keys.first().map_or("", String::as_str)
    )]
    ChangedSince {
        /// The batch.
        batch: String,
        /// `kind/key` of each entity changed since.
        keys: Vec<String>,
    },
    /// The entities to write could not be made (the caller's own error, passed through).
    #[error("{0}")]
    Entities(String),
    /// The same location and SKU is counted twice in one batch.
    #[error("opening count of `{sku}` at `{location}` is given twice")]
    DuplicateCount {
        /// The location.
        location: String,
        /// The SKU.
        sku: String,
    },
}

/// One entity an import wants to hold.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityWrite {
    /// `variant` or `prices`.
    pub kind: String,
    /// SKU, or `book|sku`.
    pub key: String,
    /// The entity as JSON text; `None` removes it (a variant merged into another). Text, not
    /// a parsed value: an import of half a million variants holds a million of these at once.
    pub payload: Option<String>,
    /// Where its fields came from (kept with the batch, not published).
    pub provenance: Option<String>,
}

/// An opening stock count an import sets: what the legacy system held at a Kassa location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountWrite {
    /// The Kassa location (a store id).
    pub location: String,
    /// The SKU.
    pub sku: String,
    /// The quantity counted, in thousandths.
    pub counted_milli: i64,
    /// Where it came from (kept with the batch).
    pub provenance: Option<String>,
}

/// What a set of writes would do, or did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// `(kind, key)` of entities HQ does not hold.
    pub created: Vec<(String, String)>,
    /// `(kind, key)` of entities HQ holds with another payload.
    pub updated: Vec<(String, String)>,
    /// `(kind, key)` of entities HQ holds that the import removes.
    pub removed: Vec<(String, String)>,
    /// Entities HQ holds exactly so.
    pub unchanged: usize,
    /// `(location, sku)` of opening counts to set: no batch counted it yet, or the batch that
    /// counted it last (and is not rolled back) counted another quantity.
    pub counts: Vec<(String, String)>,
    /// Opening counts the last batch to count them set to the same quantity.
    pub counts_unchanged: usize,
}

impl Plan {
    /// Whether committing would change anything.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty()
            && self.updated.is_empty()
            && self.removed.is_empty()
            && self.counts.is_empty()
    }
}

/// A committed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The batch id, `None` when nothing changed (and nothing was recorded).
    pub batch: Option<String>,
    /// The reference version it was published at (the current one when nothing changed).
    pub version: i64,
    /// What it did.
    pub plan: Plan,
    /// Opening counts recorded but not in effect, because a later count (a till's, by its
    /// clock) already holds for that location and SKU.
    pub counts_superseded: usize,
}

/// A batch as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInfo {
    /// Its id.
    pub id: String,
    /// Its label (the sources it came from).
    pub label: String,
    /// When it was committed (ms since the Unix epoch).
    pub created_ms: i64,
    /// Its reference version.
    pub version: i64,
    /// Entities it wrote.
    pub entities: i64,
    /// Opening counts it set.
    pub counts: i64,
    /// The version of its rollback, if rolled back.
    pub rolled_back_version: Option<i64>,
}

/// Every live entity of `kind`, by key (removed ones are left out).
pub async fn entities(db: &Db, kind: &str) -> Result<BTreeMap<String, Value>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT key, payload FROM ref_entities WHERE kind = $1 AND payload IS NOT NULL",
    )
    .bind(kind)
    .fetch_all(&db.pool)
    .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let key: String = row.get("key");
        let payload: Option<String> = row.get("payload");
        if let Some(value) = payload.and_then(|p| serde_json::from_str(&p).ok()) {
            out.insert(key, value);
        }
    }
    Ok(out)
}

/// The stock levels HQ holds for `skus`, as `(location, sku, on-hand in thousandths)`.
pub async fn levels(db: &Db, skus: &[String]) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let mut out = Vec::new();
    for chunk in skus.chunks(500) {
        let mut marks = db.backend.marks();
        let list: Vec<String> = chunk.iter().map(|_| marks.next()).collect();
        let sql = format!(
            "SELECT location, sku, on_hand FROM stock_levels WHERE sku IN ({}) ORDER BY location, sku",
            list.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for sku in chunk {
            query = query.bind(sku.clone());
        }
        for row in query.fetch_all(&db.pool).await? {
            out.push((row.get("location"), row.get("sku"), row.get("on_hand")));
        }
    }
    Ok(out)
}

/// What an import may name at HQ.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    /// Stores, registered (`kassa hq store add`) or in the reference data: the locations
    /// opening counts and store prices may go to.
    pub locations: BTreeSet<String>,
    /// The tax categories of every jurisdiction in the reference data.
    pub tax_categories: BTreeSet<String>,
}

/// The stores and tax categories HQ knows.
pub async fn known(db: &Db) -> Result<Known, sqlx::Error> {
    let mut out = Known::default();
    let registered: Vec<String> = sqlx::query_scalar("SELECT id FROM stores")
        .fetch_all(&db.pool)
        .await?;
    out.locations.extend(registered);
    out.locations
        .extend(entities(db, "store").await?.into_keys());
    for jurisdiction in entities(db, "jurisdiction").await?.values() {
        let rules = jurisdiction.get("rules").and_then(Value::as_array);
        for rule in rules.into_iter().flatten() {
            if let Some(category) = rule.get("category").and_then(Value::as_str) {
                out.tax_categories.insert(category.to_owned());
            }
        }
    }
    Ok(out)
}

/// What HQ holds of some entities: `(kind, key)` → payload (`None`: removed).
pub type Held = BTreeMap<(String, String), Option<String>>;

/// What HQ holds of the entities `keys` name, read a few hundred keys a statement: an import
/// reads only what it is about to compare, never the whole catalog at once.
pub(crate) async fn held_for(
    conn: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
    keys: &[(String, String)],
) -> Result<Held, sqlx::Error> {
    let mut by_kind: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (kind, key) in keys {
        by_kind.entry(kind.as_str()).or_default().push(key.as_str());
    }
    let mut out = BTreeMap::new();
    for (kind, keys) in by_kind {
        for some in keys.chunks(500) {
            let mut marks = backend.marks();
            let kind_mark = marks.next();
            let list: Vec<String> = some.iter().map(|_| marks.next()).collect();
            let sql = format!(
                "SELECT key, payload FROM ref_entities WHERE kind = {kind_mark} AND key IN ({})",
                list.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(kind);
            for key in some {
                query = query.bind(*key);
            }
            for row in query.fetch_all(&mut *conn).await? {
                out.insert((kind.to_owned(), row.get("key")), row.get("payload"));
            }
        }
    }
    Ok(out)
}

/// What HQ holds of `keys`, as [`held_for`] reads it for an import.
pub async fn held(db: &Db, keys: &[(String, String)]) -> Result<Held, sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    held_for(&mut conn, db.backend, keys).await
}

/// Calls `each` with the key and payload of every live entity of `kind`, a row at a time: a
/// scan of a million-variant catalog never holds it whole. With `payloads` false, only keys
/// are read (the payload passed is empty).
pub async fn scan(
    db: &Db,
    kind: &str,
    payloads: bool,
    mut each: impl FnMut(&str, &str),
) -> Result<(), sqlx::Error> {
    use futures_util::TryStreamExt;
    let sql = if payloads {
        "SELECT key, payload FROM ref_entities WHERE kind = $1 AND payload IS NOT NULL"
    } else {
        "SELECT key, '' AS payload FROM ref_entities WHERE kind = $1 AND payload IS NOT NULL"
    };
    let mut rows = sqlx::query(sql).bind(kind).fetch(&db.pool);
    while let Some(row) = rows.try_next().await? {
        let key: &str = row.try_get("key")?;
        let payload: &str = row.try_get("payload")?;
        each(key, payload);
    }
    Ok(())
}

/// What HQ holds of what `writes` name, read where `asked` left it out.
async fn complete(
    conn: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
    held: &mut Held,
    asked: &[(String, String)],
    writes: &[EntityWrite],
) -> Result<(), sqlx::Error> {
    let asked: BTreeSet<(&str, &str)> = asked
        .iter()
        .map(|(k, e)| (k.as_str(), e.as_str()))
        .collect();
    let missing: Vec<(String, String)> = writes
        .iter()
        .filter(|w| !asked.contains(&(w.kind.as_str(), w.key.as_str())))
        .map(|w| (w.kind.clone(), w.key.clone()))
        .collect();
    if !missing.is_empty() {
        held.extend(held_for(conn, backend, &missing).await?);
    }
    Ok(())
}

/// Whether HQ holds the entity exactly as wanted: the same JSON, whatever its key order and
/// spacing.
fn same(held: Option<&Option<String>>, wanted: Option<&str>) -> bool {
    match (held.and_then(|p| p.as_deref()), wanted) {
        (None, None) => true,
        (Some(h), Some(w)) => {
            h == w
                || serde_json::from_str::<Value>(h)
                    .is_ok_and(|h| serde_json::from_str::<Value>(w).is_ok_and(|w| h == w))
        }
        _ => false,
    }
}

/// Adds what `writes` would do, against what HQ holds of them, to `plan`.
fn plan_of(
    plan: &mut Plan,
    held: &BTreeMap<(String, String), Option<String>>,
    writes: &[EntityWrite],
) {
    for w in writes {
        let id = (w.kind.clone(), w.key.clone());
        match held.get(&id) {
            h if same(h, w.payload.as_deref()) => plan.unchanged += 1,
            Some(Some(_)) if w.payload.is_none() => plan.removed.push(id),
            Some(Some(_)) => plan.updated.push(id),
            _ => plan.created.push(id),
        }
    }
}

/// The entity writes of an import, made a chunk at a time while HQ compares and writes them,
/// so that an import of a million rows never holds them all, nor all HQ holds of them: each
/// chunk names the entities it reads and writes, and is made from what HQ holds of those.
pub trait ChunkSource: Send {
    /// The entities the next chunk reads and writes, or `None` when no chunk is left. (A write
    /// outside them is read before it is compared, one more query.)
    fn next_keys(&mut self) -> Option<Vec<(String, String)>>;
    /// The writes of that chunk, given what HQ holds of its entities. An error ends the plan or
    /// rolls the commit back.
    fn writes(&mut self, held: &Held) -> Result<Vec<EntityWrite>, ImportError>;
}

/// Writes made beforehand, as chunks of a few thousand.
struct Made<'a> {
    rest: &'a [EntityWrite],
    next: &'a [EntityWrite],
}

impl ChunkSource for Made<'_> {
    fn next_keys(&mut self) -> Option<Vec<(String, String)>> {
        let (next, rest) = self.rest.split_at(self.rest.len().min(2_000));
        (self.next, self.rest) = (next, rest);
        (!next.is_empty()).then(|| {
            next.iter()
                .map(|w| (w.kind.clone(), w.key.clone()))
                .collect()
        })
    }

    fn writes(&mut self, _: &Held) -> Result<Vec<EntityWrite>, ImportError> {
        Ok(self.next.to_vec())
    }
}

pub(crate) fn chunks_of(writes: &[EntityWrite]) -> impl ChunkSource + '_ {
    Made {
        rest: writes,
        next: &[],
    }
}

/// The next chunk of `chunks` and what HQ holds of it.
async fn next_chunk(
    conn: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
    chunks: &mut dyn ChunkSource,
) -> Result<Option<(Vec<EntityWrite>, Held)>, ImportError> {
    let Some(keys) = chunks.next_keys() else {
        return Ok(None);
    };
    let mut held = held_for(conn, backend, &keys).await?;
    let writes = chunks.writes(&held)?;
    complete(conn, backend, &mut held, &keys, &writes).await?;
    Ok(Some((writes, held)))
}

/// A stock level: location, SKU.
type Level = (String, String);

/// A 128-bit hash of a stock level, to hold a million of them small.
fn level_hash(location: &str, sku: &str) -> u128 {
    domain::catalog::key_hash(&format!("{location}\u{0}{sku}"))
}

/// The opening count per level (by [`level_hash`]) of the last batch to count it that is not
/// rolled back, read a row at a time.
async fn held_counts(conn: &mut sqlx::AnyConnection) -> Result<HashMap<u128, i64>, sqlx::Error> {
    use futures_util::TryStreamExt;
    let mut out = HashMap::new();
    let mut rows = sqlx::query(
        "SELECT c.location, c.sku, c.counted FROM import_batch_counts c
         JOIN import_batches b ON b.id = c.batch
         WHERE b.rolled_back_version IS NULL ORDER BY b.version",
    )
    .fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        let (location, sku): (&str, &str) = (row.try_get("location")?, row.try_get("sku")?);
        out.insert(level_hash(location, sku), row.try_get("counted")?);
    }
    Ok(out)
}

/// Refuses a location and SKU counted twice.
fn check_counts(counts: &[CountWrite]) -> Result<(), ImportError> {
    let mut seen = BTreeSet::new();
    for c in counts {
        if !seen.insert((c.location.as_str(), c.sku.as_str())) {
            return Err(ImportError::DuplicateCount {
                location: c.location.clone(),
                sku: c.sku.clone(),
            });
        }
    }
    Ok(())
}

fn plan_counts(plan: &mut Plan, held: &HashMap<u128, i64>, counts: &[CountWrite]) {
    for c in counts {
        let level = (c.location.clone(), c.sku.clone());
        if held.get(&level_hash(&c.location, &c.sku)) == Some(&c.counted_milli) {
            plan.counts_unchanged += 1;
        } else {
            plan.counts.push(level);
        }
    }
}

/// What committing `writes` would do, read inside the caller's transaction.
pub(crate) async fn plan_within(
    conn: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
    writes: &[EntityWrite],
) -> Result<Plan, ImportError> {
    let mut plan = Plan::default();
    let mut chunks = chunks_of(writes);
    while let Some((chunk, held)) = next_chunk(conn, backend, &mut chunks).await? {
        plan_of(&mut plan, &held, &chunk);
    }
    Ok(plan)
}

/// What committing `writes` and `counts` would do, without writing.
pub async fn plan(
    db: &Db,
    writes: &[EntityWrite],
    counts: &[CountWrite],
) -> Result<Plan, ImportError> {
    plan_chunks(db, &mut chunks_of(writes), counts).await
}

/// What committing the writes of `chunks` and `counts` would do, without writing.
pub async fn plan_chunks(
    db: &Db,
    chunks: &mut dyn ChunkSource,
    counts: &[CountWrite],
) -> Result<Plan, ImportError> {
    check_counts(counts)?;
    let mut conn = db.pool.acquire().await?;
    let mut plan = Plan::default();
    while let Some((chunk, held)) = next_chunk(&mut conn, db.backend, chunks).await? {
        plan_of(&mut plan, &held, &chunk);
    }
    if !counts.is_empty() {
        plan_counts(&mut plan, &held_counts(&mut conn).await?, counts);
    }
    Ok(plan)
}

/// On SQLite, takes the database's write lock at the start of the transaction (waiting for
/// another writer up to the busy timeout). `kassa catalog` runs beside a running HQ process:
/// a transaction that reads first and writes later would fail outright if HQ ingested a batch
/// in between.
async fn lock_for_writing(tx: &mut sqlx::AnyConnection, db: &Db) -> Result<(), sqlx::Error> {
    if db.backend == crate::db::Backend::Sqlite {
        sqlx::query("UPDATE ref_meta SET version = version WHERE singleton = 1")
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Commits `writes` and opening `counts` as one batch at a new reference version, labelled
/// `label`, at `created_ms` (ms since the Unix epoch, also the instant of its counts). Entities
/// that HQ already holds exactly so, and counts the last batch to count them set to the same
/// quantity, are left alone; when nothing changes nothing is written.
pub async fn commit(
    db: &Db,
    label: &str,
    created_ms: i64,
    writes: &[EntityWrite],
    counts: &[CountWrite],
) -> Result<Committed, ImportError> {
    commit_chunks(db, label, created_ms, &mut chunks_of(writes), counts).await
}

/// [`commit`] of the writes of `chunks`, each compared with what HQ holds and written before
/// the next is made. A chunk that cannot be made rolls the whole batch back.
pub async fn commit_chunks(
    db: &Db,
    label: &str,
    created_ms: i64,
    chunks: &mut dyn ChunkSource,
    counts: &[CountWrite],
) -> Result<Committed, ImportError> {
    check_counts(counts)?;
    let (_guard, mut tx) = db.begin_write().await?;
    let committed = commit_within(&mut tx, db, label, created_ms, chunks, counts).await?;
    if committed.batch.is_some() {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(committed)
}

/// [`commit_chunks`] inside the caller's transaction `tx` (whose writer holds the write
/// guard), so that the caller can record what it did (an audit line, an idempotency key) with
/// the batch. When nothing changes, `batch` is `None` and the caller rolls `tx` back.
pub(crate) async fn commit_within(
    tx: &mut sqlx::AnyConnection,
    db: &Db,
    label: &str,
    created_ms: i64,
    chunks: &mut dyn ChunkSource,
    counts: &[CountWrite],
) -> Result<Committed, ImportError> {
    check_counts(counts)?;
    lock_for_writing(tx, db).await?;
    let (current, version) = crate::refdata::next_version(tx, db.backend).await?;
    let batch = format!("import-{version}");
    // Recorded first, so the entity rows can name it; when nothing changes the transaction is
    // rolled back and no batch remains.
    sqlx::query(
        "INSERT INTO import_batches (id, label, created_ms, version) VALUES ($1, $2, $3, $4)",
    )
    .bind(&batch)
    .bind(label)
    .bind(created_ms)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    let mut plan = Plan::default();
    while let Some((chunk, held)) = next_chunk(tx, db.backend, chunks).await? {
        plan_of(&mut plan, &held, &chunk);
        // The rows to bind copy every payload twice: a chunk at a time keeps that small.
        let mut upserts = Vec::with_capacity(chunk.len());
        let mut records = Vec::with_capacity(chunk.len());
        for w in chunk {
            let id = (w.kind.clone(), w.key.clone());
            let before = held.get(&id);
            if same(before, w.payload.as_deref()) {
                continue;
            }
            records.push(vec![
                Arg::Text(batch.clone()),
                Arg::Text(w.kind.clone()),
                Arg::Text(w.key.clone()),
                Arg::OptText(before.cloned().flatten()),
                Arg::OptText(w.payload.as_deref().map(crate::hex_hash)),
                Arg::OptText(w.provenance),
            ]);
            upserts.push((w.kind, w.key, w.payload));
        }
        crate::refdata::write_entities(tx, db.backend, version, upserts).await?;
        insert_many(
            tx,
            db.backend,
            "INSERT INTO import_batch_entities (batch, kind, key, before_payload, after_hash, provenance) VALUES",
            "",
            records,
        )
        .await?;
    }
    if !counts.is_empty() {
        plan_counts(&mut plan, &held_counts(tx).await?, counts);
    }
    if plan.is_empty() {
        return Ok(Committed {
            batch: None,
            version: current,
            plan,
            counts_superseded: 0,
        });
    }
    // The counts to set, in location and SKU order (the order `set_levels` takes row locks in,
    // across chunks too), recorded and applied a few thousand at a time.
    let counted: BTreeSet<(&str, &str)> = plan
        .counts
        .iter()
        .map(|(location, sku)| (location.as_str(), sku.as_str()))
        .collect();
    let mut todo: Vec<&CountWrite> = counts
        .iter()
        .filter(|c| counted.contains(&(c.location.as_str(), c.sku.as_str())))
        .collect();
    todo.sort_by(|a, b| (&a.location, &a.sku).cmp(&(&b.location, &b.sku)));
    let mut applied = 0;
    for chunk in todo.chunks(2_000) {
        let rows = chunk
            .iter()
            .map(|c| {
                vec![
                    Arg::Text(batch.clone()),
                    Arg::Text(c.location.clone()),
                    Arg::Text(c.sku.clone()),
                    Arg::Int(c.counted_milli),
                    Arg::OptText(c.provenance.clone()),
                ]
            })
            .collect();
        insert_many(
            tx,
            db.backend,
            "INSERT INTO import_batch_counts (batch, location, sku, counted, provenance) VALUES",
            "",
            rows,
        )
        .await?;
        let sets = chunk
            .iter()
            .map(|c| LevelSet {
                level: (c.location.clone(), c.sku.clone()),
                counted: c.counted_milli,
                clock: Some((created_ms, version, batch.clone())),
            })
            .collect();
        applied += set_levels(tx, db.backend, sets, LevelGuard::OlderCount).await?;
    }
    let counts_superseded = plan.counts.len().saturating_sub(applied);
    crate::refdata::set_version(tx, version).await?;
    Ok(Committed {
        batch: Some(batch),
        version,
        plan,
        counts_superseded,
    })
}

/// A point in stock time: clock wall reading, counter, event id (a batch's counts: its commit
/// instant, its reference version, its id).
type StockClock = (i64, i64, String);

/// A stock level to set from a count: on-hand becomes `counted` plus every movement after
/// `clock`; without a clock (no count), the sum of every movement, and the level's count is
/// cleared.
struct LevelSet {
    level: Level,
    counted: i64,
    clock: Option<StockClock>,
}

/// Which levels [`set_levels`] may change.
enum LevelGuard {
    /// Only those whose latest count is older than the new one (or that have none), as a till's
    /// count is applied at ingest.
    OlderCount,
    /// Only those whose latest count is this batch's.
    CountedBy(String),
}

/// Sets stock levels from counts (creating missing levels), in location and SKU order so that
/// concurrent ingests on PostgreSQL take the row locks in the same order; returns how many
/// levels changed.
async fn set_levels(
    tx: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
    mut sets: Vec<LevelSet>,
    guard: LevelGuard,
) -> Result<usize, sqlx::Error> {
    if sets.is_empty() {
        return Ok(0);
    }
    sets.sort_by(|a, b| a.level.cmp(&b.level));
    insert_many(
        tx,
        backend,
        "INSERT INTO stock_levels (location, sku, on_hand) VALUES",
        "ON CONFLICT DO NOTHING",
        sets.iter()
            .map(|s| {
                vec![
                    Arg::Text(s.level.0.clone()),
                    Arg::Text(s.level.1.clone()),
                    Arg::Int(0),
                ]
            })
            .collect(),
    )
    .await?;
    let mut changed = 0;
    for chunk in sets.chunks(200) {
        if backend == crate::db::Backend::Postgres {
            let mut marks = backend.marks();
            let lock: Vec<String> = chunk.iter().map(|_| marks.tuple(2)).collect();
            let sql = format!(
                "SELECT location FROM stock_levels WHERE (location, sku) IN (VALUES {}) ORDER BY location, sku FOR UPDATE",
                lock.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for s in chunk {
                query = query.bind(s.level.0.clone()).bind(s.level.1.clone());
            }
            query.fetch_all(&mut *tx).await?;
        }
        let mut marks = backend.marks();
        let selects: Vec<String> = chunk
            .iter()
            .map(|_| marks.select(&["loc", "sku", "c", "w", "n", "e"]))
            .collect();
        let condition = match &guard {
            LevelGuard::OlderCount => "(stock_levels.count_event IS NULL OR (stock_levels.count_wall, stock_levels.count_counter, stock_levels.count_event) < (v.w, v.n, v.e))".to_owned(),
            LevelGuard::CountedBy(_) => format!("stock_levels.count_event = {}", marks.next()),
        };
        // A level without a count sums every movement: its clock is the smallest there is,
        // and the empty event id clears the level's count.
        let sql = format!(
            "UPDATE stock_levels SET
               on_hand = v.c + COALESCE((SELECT SUM(m.delta) FROM stock_moves m
                 WHERE m.location = v.loc AND m.sku = v.sku AND (m.hlc_wall, m.hlc_counter, m.event_id) > (v.w, v.n, v.e)), 0),
               count_wall = CASE WHEN v.e = '' THEN NULL ELSE v.w END,
               count_counter = CASE WHEN v.e = '' THEN NULL ELSE v.n END,
               count_event = CASE WHEN v.e = '' THEN NULL ELSE v.e END
             FROM ({}) AS v
             WHERE stock_levels.location = v.loc AND stock_levels.sku = v.sku AND {condition}",
            selects.join(" UNION ALL ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for s in chunk {
            let (w, n, e) = s
                .clock
                .clone()
                .unwrap_or((i64::MIN, i64::MIN, String::new()));
            query = query
                .bind(s.level.0.clone())
                .bind(s.level.1.clone())
                .bind(s.counted)
                .bind(w)
                .bind(n)
                .bind(e);
        }
        if let LevelGuard::CountedBy(batch) = &guard {
            query = query.bind(batch.clone());
        }
        let done = query.execute(&mut *tx).await?.rows_affected();
        changed += usize::try_from(done).unwrap_or(usize::MAX);
    }
    Ok(changed)
}

/// What a rollback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    /// The new reference version carrying the undo.
    pub version: i64,
    /// Entities put back to their earlier payload.
    pub restored: usize,
    /// Entities the batch had created, now removed.
    pub removed: usize,
    /// Opening counts withdrawn from the stock levels they were in effect at.
    pub counts_withdrawn: usize,
    /// Opening counts a later count had already replaced (those levels are left alone).
    pub counts_superseded: usize,
}

/// Undoes exactly batch `batch` as a new reference version: each entity it wrote goes back to
/// what it was before (removed if the batch created it). Refused when any of them changed
/// since, so that a later change is never silently undone.
///
/// Its opening counts are withdrawn. Where the batch's count is still the latest count of a
/// level, on-hand becomes what it would be had the count never been made: the latest earlier
/// count (a till's, or another batch's that is not rolled back) plus every movement after it,
/// or with no earlier count the sum of every movement. Sales and other movements recorded
/// since the import are kept either way. Where a later count (a till's) has replaced the
/// batch's, the level already no longer depends on it and is left alone.
pub async fn rollback(db: &Db, batch: &str) -> Result<RolledBack, ImportError> {
    let (_guard, mut tx) = db.begin_write().await?;
    let done = rollback_within(&mut tx, db, batch).await?;
    tx.commit().await?;
    Ok(done)
}

/// [`rollback`] inside the caller's transaction `tx` (whose writer holds the write guard).
pub(crate) async fn rollback_within(
    tx: &mut sqlx::AnyConnection,
    db: &Db,
    batch: &str,
) -> Result<RolledBack, ImportError> {
    lock_for_writing(tx, db).await?;
    let info: Option<(i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT created_ms, version, rolled_back_version FROM import_batches WHERE id = $1",
    )
    .bind(batch)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((created_ms, batch_version, rolled_back)) = info else {
        return Err(ImportError::UnknownBatch(batch.to_owned()));
    };
    if let Some(version) = rolled_back {
        return Err(ImportError::AlreadyRolledBack {
            batch: batch.to_owned(),
            version,
        });
    }
    let (_, version) = crate::refdata::next_version(tx, db.backend).await?;
    let rows = sqlx::query(
        "SELECT b.kind, b.key, b.before_payload, b.after_hash, b.after_payload, e.payload AS current
         FROM import_batch_entities b LEFT JOIN ref_entities e ON e.kind = b.kind AND e.key = b.key
         WHERE b.batch = $1 ORDER BY b.kind, b.key",
    )
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    let mut changed = Vec::new();
    let mut upserts = Vec::new();
    let (mut restored, mut removed) = (0, 0);
    for row in rows {
        let kind: String = row.get("kind");
        let key: String = row.get("key");
        let before: Option<String> = row.get("before_payload");
        let after_hash: Option<String> = row.get("after_hash");
        let after: Option<String> = row.get("after_payload");
        let current: Option<String> = row.get("current");
        // As the batch left it (or as a rollback of a later batch restored it)?
        let unchanged = match (&current, &after_hash, &after) {
            (Some(c), Some(h), _) => crate::hex_hash(c) == *h,
            // Batches committed before the hash was kept.
            (Some(c), None, Some(a)) => {
                serde_json::from_str::<Value>(c).ok() == serde_json::from_str::<Value>(a).ok()
            }
            (None, None, None) => true,
            _ => false,
        };
        if !unchanged {
            changed.push(format!("{kind}/{key}"));
            continue;
        }
        if before.is_some() {
            restored += 1;
        } else {
            removed += 1;
        }
        upserts.push((kind, key, before));
    }
    if !changed.is_empty() {
        return Err(ImportError::ChangedSince {
            batch: batch.to_owned(),
            keys: changed,
        });
    }
    crate::refdata::write_entities(tx, db.backend, version, upserts).await?;
    let clock = (created_ms, batch_version, batch.to_owned());
    let (counts_withdrawn, counts_superseded) = withdraw_counts(tx, db.backend, &clock).await?;
    sqlx::query("UPDATE import_batches SET rolled_back_version = $1 WHERE id = $2")
        .bind(version)
        .bind(batch)
        .execute(&mut *tx)
        .await?;
    crate::refdata::set_version(tx, version).await?;
    Ok(RolledBack {
        version,
        restored,
        removed,
        counts_withdrawn,
        counts_superseded,
    })
}

/// Withdraws the opening counts of the batch whose counts carry `clock` (its id is the clock's
/// event): each level where the batch's count is still the latest goes back to its latest
/// earlier count — another batch's that is not rolled back, or a till's from the inbox — plus
/// the movements after it, or to the sum of its movements. Returns how many counts were
/// withdrawn and how many a later count had already replaced.
async fn withdraw_counts(
    tx: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
    clock: &StockClock,
) -> Result<(usize, usize), sqlx::Error> {
    let batch = clock.2.as_str();
    let total: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM import_batch_counts WHERE batch = $1")
            .bind(batch)
            .fetch_one(&mut *tx)
            .await?;
    let total = usize::try_from(total).unwrap_or(0);
    if total == 0 {
        return Ok((0, 0));
    }
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT c.location, c.sku FROM import_batch_counts c
         JOIN stock_levels l ON l.location = c.location AND l.sku = c.sku
         WHERE c.batch = $1 AND l.count_event = $1 ORDER BY c.location, c.sku{}",
        backend.for_update()
    )))
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    let in_effect: BTreeSet<Level> = rows
        .iter()
        .map(|r| (r.get("location"), r.get("sku")))
        .collect();
    if in_effect.is_empty() {
        return Ok((0, total));
    }
    // The latest count before the batch's, per level.
    let mut earlier: HashMap<Level, (StockClock, i64)> = HashMap::new();
    let mut offer = |level: Level, at: StockClock, counted: i64| {
        if at < *clock
            && in_effect.contains(&level)
            && earlier.get(&level).is_none_or(|(held, _)| at > *held)
        {
            earlier.insert(level, (at, counted));
        }
    };
    let others = sqlx::query(
        "SELECT c.location, c.sku, c.counted, b.created_ms, b.version, b.id FROM import_batch_counts c
         JOIN import_batches b ON b.id = c.batch
         JOIN import_batch_counts mine ON mine.location = c.location AND mine.sku = c.sku AND mine.batch = $1
         WHERE b.rolled_back_version IS NULL AND b.id <> $1",
    )
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    for row in others {
        offer(
            (row.get("location"), row.get("sku")),
            (row.get("created_ms"), row.get("version"), row.get("id")),
            row.get("counted"),
        );
    }
    let locations: BTreeSet<&str> = in_effect.iter().map(|(l, _)| l.as_str()).collect();
    for location in locations {
        let bodies: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT i.body FROM inbox i JOIN terminals t ON t.id = i.terminal
             WHERE t.store = $1 AND i.kind = 'StockCounted' AND i.applied = 1",
        )
        .bind(location)
        .fetch_all(&mut *tx)
        .await?;
        for body in bodies {
            // Events in the inbox were verified when they arrived; one that no longer decodes
            // cannot have been applied, so it is no earlier count.
            let Ok(event) = protocol::event::decode(&body) else {
                continue;
            };
            let at = (
                event.meta.hlc.wall_ms(),
                i64::from(event.meta.hlc.counter()),
                event.meta.id.to_string(),
            );
            for m in domain::ledger::stock_movements(&event) {
                if let domain::ledger::StockEffect::Count(counted) = m.effect {
                    offer(
                        (m.location.to_string(), m.sku.to_string()),
                        at.clone(),
                        counted,
                    );
                }
            }
        }
    }
    let sets: Vec<LevelSet> = in_effect
        .iter()
        .map(|level| {
            let found = earlier.get(level);
            LevelSet {
                level: level.clone(),
                counted: found.map_or(0, |(_, c)| *c),
                clock: found.map(|(at, _)| at.clone()),
            }
        })
        .collect();
    let withdrawn = set_levels(tx, backend, sets, LevelGuard::CountedBy(batch.to_owned())).await?;
    // A level the batch brought into being and that is now empty, uncounted and without a
    // movement is exactly a level that never existed: it goes, so that nothing of the batch is
    // left behind (a SKU the rollback removed keeps no zero row).
    sqlx::query(
        "DELETE FROM stock_levels WHERE on_hand = 0 AND count_event IS NULL
           AND EXISTS (SELECT 1 FROM import_batch_counts c WHERE c.batch = $1
                       AND c.location = stock_levels.location AND c.sku = stock_levels.sku)
           AND NOT EXISTS (SELECT 1 FROM stock_moves m
                           WHERE m.location = stock_levels.location AND m.sku = stock_levels.sku)",
    )
    .bind(batch)
    .execute(&mut *tx)
    .await?;
    Ok((withdrawn, total.saturating_sub(withdrawn)))
}

/// Every batch, newest first.
pub async fn batches(db: &Db) -> Result<Vec<BatchInfo>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT b.id, b.label, b.created_ms, b.version, b.rolled_back_version,
                (SELECT COUNT(*) FROM import_batch_entities e WHERE e.batch = b.id) AS entities,
                (SELECT COUNT(*) FROM import_batch_counts c WHERE c.batch = b.id) AS counts
         FROM import_batches b ORDER BY b.version DESC",
    )
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| BatchInfo {
            id: row.get("id"),
            label: row.get("label"),
            created_ms: row.get("created_ms"),
            version: row.get("version"),
            entities: row.get("entities"),
            counts: row.get("counts"),
            rolled_back_version: row.get("rolled_back_version"),
        })
        .collect())
}
