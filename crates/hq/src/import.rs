//! Catalog import batches: a set of reference entities (variants, prices) written through the
//! reference-data change log as one new version, with the state of every entity before and
//! after kept per batch. A batch that changes nothing is not recorded, so running the same
//! import again changes nothing; rolling a batch back writes the earlier state as another new
//! version, because the change log only ever grows.

use std::collections::BTreeMap;

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
}

/// One entity an import wants to hold.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityWrite {
    /// `variant` or `prices`.
    pub kind: String,
    /// SKU, or `book|sku`.
    pub key: String,
    /// The entity; `null` removes it (a variant merged into another).
    pub payload: Value,
    /// Where its fields came from (kept with the batch, not published).
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

async fn held(
    conn: &mut sqlx::AnyConnection,
    kinds: &[&str],
) -> Result<BTreeMap<(String, String), Option<String>>, sqlx::Error> {
    let mut out = BTreeMap::new();
    for kind in kinds {
        let rows = sqlx::query("SELECT key, payload FROM ref_entities WHERE kind = $1")
            .bind(*kind)
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            out.insert(((*kind).to_owned(), row.get("key")), row.get("payload"));
        }
    }
    Ok(out)
}

fn same(held: Option<&Option<String>>, wanted: &Value) -> bool {
    match held.and_then(|p| p.as_deref()) {
        None => wanted.is_null(),
        Some(p) => serde_json::from_str::<Value>(p).is_ok_and(|v| &v == wanted),
    }
}

fn plan_of(held: &BTreeMap<(String, String), Option<String>>, writes: &[EntityWrite]) -> Plan {
    let mut plan = Plan::default();
    for w in writes {
        let id = (w.kind.clone(), w.key.clone());
        match held.get(&id) {
            h if same(h, &w.payload) => plan.unchanged += 1,
            Some(Some(_)) if w.payload.is_null() => plan.removed.push(id),
            Some(Some(_)) => plan.updated.push(id),
            _ => plan.created.push(id),
        }
    }
    plan
}

fn kinds_of(writes: &[EntityWrite]) -> Vec<&str> {
    let mut kinds: Vec<&str> = writes.iter().map(|w| w.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
}

/// What committing `writes` would do, without writing.
pub async fn plan(db: &Db, writes: &[EntityWrite]) -> Result<Plan, sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    let held = held(&mut conn, &kinds_of(writes)).await?;
    Ok(plan_of(&held, writes))
}

async fn next_version(tx: &mut sqlx::AnyConnection, db: &Db) -> Result<(i64, i64), sqlx::Error> {
    let current: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM ref_meta WHERE singleton = 1{}",
        db.backend.for_update()
    )))
    .fetch_optional(&mut *tx)
    .await?;
    let current = current.unwrap_or(0);
    Ok((current, current + 1))
}

async fn set_version(tx: &mut sqlx::AnyConnection, version: i64) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO ref_meta (singleton, version) VALUES (1, $1) ON CONFLICT (singleton) DO UPDATE SET version = excluded.version")
        .bind(version)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Commits `writes` as one batch at a new reference version, labelled `label`; entities that
/// HQ already holds exactly so are left alone, and when nothing changes nothing is written.
pub async fn commit(
    db: &Db,
    label: &str,
    created_ms: i64,
    writes: &[EntityWrite],
) -> Result<Committed, ImportError> {
    let _guard = db.write_guard().await;
    let mut tx = db.pool.begin().await?;
    let (current, version) = next_version(&mut tx, db).await?;
    let held = held(&mut tx, &kinds_of(writes)).await?;
    let plan = plan_of(&held, writes);
    if plan.created.is_empty() && plan.updated.is_empty() && plan.removed.is_empty() {
        tx.rollback().await?;
        return Ok(Committed {
            batch: None,
            version: current,
            plan,
        });
    }
    let batch = format!("import-{version}");
    sqlx::query(
        "INSERT INTO import_batches (id, label, created_ms, version) VALUES ($1, $2, $3, $4)",
    )
    .bind(&batch)
    .bind(label)
    .bind(created_ms)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    let mut upserts = Vec::new();
    let mut records = Vec::new();
    for w in writes {
        let id = (w.kind.clone(), w.key.clone());
        let before = held.get(&id);
        if same(before, &w.payload) {
            continue;
        }
        let after = (!w.payload.is_null()).then(|| w.payload.to_string());
        upserts.push(vec![
            Arg::Text(w.kind.clone()),
            Arg::Text(w.key.clone()),
            Arg::Int(version),
            Arg::OptText(after.clone()),
        ]);
        records.push(vec![
            Arg::Text(batch.clone()),
            Arg::Text(w.kind.clone()),
            Arg::Text(w.key.clone()),
            Arg::OptText(before.cloned().flatten()),
            Arg::OptText(after),
            Arg::OptText(w.provenance.clone()),
        ]);
    }
    insert_many(
        &mut tx,
        db.backend,
        "INSERT INTO ref_entities (kind, key, version, payload) VALUES",
        "ON CONFLICT (kind, key) DO UPDATE SET version = excluded.version, payload = excluded.payload",
        upserts,
    )
    .await?;
    insert_many(
        &mut tx,
        db.backend,
        "INSERT INTO import_batch_entities (batch, kind, key, before_payload, after_payload, provenance) VALUES",
        "",
        records,
    )
    .await?;
    set_version(&mut tx, version).await?;
    tx.commit().await?;
    Ok(Committed {
        batch: Some(batch),
        version,
        plan,
    })
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
}

/// Undoes exactly batch `batch` as a new reference version: each entity it wrote goes back to
/// what it was before (removed if the batch created it). Refused when any of them changed
/// since, so that a later change is never silently undone.
pub async fn rollback(db: &Db, batch: &str) -> Result<RolledBack, ImportError> {
    let _guard = db.write_guard().await;
    let mut tx = db.pool.begin().await?;
    let info: Option<(i64, Option<i64>)> =
        sqlx::query_as("SELECT version, rolled_back_version FROM import_batches WHERE id = $1")
            .bind(batch)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((_, rolled_back)) = info else {
        return Err(ImportError::UnknownBatch(batch.to_owned()));
    };
    if let Some(version) = rolled_back {
        return Err(ImportError::AlreadyRolledBack {
            batch: batch.to_owned(),
            version,
        });
    }
    let (_, version) = next_version(&mut tx, db).await?;
    let rows = sqlx::query(
        "SELECT b.kind, b.key, b.before_payload, b.after_payload, e.payload AS current
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
        let after: Option<String> = row.get("after_payload");
        let current: Option<String> = row.get("current");
        let unchanged = match (&current, &after) {
            (Some(c), Some(a)) => {
                serde_json::from_str::<Value>(c).ok() == serde_json::from_str::<Value>(a).ok()
            }
            (None, None) => true,
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
        upserts.push(vec![
            Arg::Text(kind),
            Arg::Text(key),
            Arg::Int(version),
            Arg::OptText(before),
        ]);
    }
    if !changed.is_empty() {
        tx.rollback().await?;
        return Err(ImportError::ChangedSince {
            batch: batch.to_owned(),
            keys: changed,
        });
    }
    insert_many(
        &mut tx,
        db.backend,
        "INSERT INTO ref_entities (kind, key, version, payload) VALUES",
        "ON CONFLICT (kind, key) DO UPDATE SET version = excluded.version, payload = excluded.payload",
        upserts,
    )
    .await?;
    sqlx::query("UPDATE import_batches SET rolled_back_version = $1 WHERE id = $2")
        .bind(version)
        .bind(batch)
        .execute(&mut *tx)
        .await?;
    set_version(&mut tx, version).await?;
    tx.commit().await?;
    Ok(RolledBack {
        version,
        restored,
        removed,
    })
}

/// Every batch, newest first.
pub async fn batches(db: &Db) -> Result<Vec<BatchInfo>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT b.id, b.label, b.created_ms, b.version, b.rolled_back_version,
                (SELECT COUNT(*) FROM import_batch_entities e WHERE e.batch = b.id) AS entities
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
            rolled_back_version: row.get("rolled_back_version"),
        })
        .collect())
}
