//! Reference data at HQ: a versioned change log of entities (stores, jurisdictions, variants,
//! prices per book and SKU). Publishing a data set writes a new version for every entity that
//! changed and a removal for every entity that disappeared; a store pulls what changed since
//! its version, filtered to what concerns it.

use std::collections::BTreeMap;

use protocol::seed::{ScopeDto, SeedDto};
use protocol::sync::{
    EntityChange, PIN_PEPPER_KIND, PricesEntity, REFERENCE_FORMAT, ReferenceUpdate,
};
use sqlx::Row;

use crate::db::{Arg, Db, insert_many};

/// Errors from publishing reference data.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The data set does not validate.
    #[error("reference data: {0}")]
    Invalid(#[from] protocol::FieldError),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A PIN could not be hashed.
    #[error("{0}")]
    Pin(String),
}

/// Writes entities as `version` of the reference change log: each `(kind, key, payload)`
/// replaces the entity's row, a `None` payload marking it removed at that version.
pub(crate) async fn write_entities(
    tx: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
    version: i64,
    states: Vec<(String, String, Option<String>)>,
) -> Result<u64, sqlx::Error> {
    insert_many(
        tx,
        backend,
        "INSERT INTO ref_entities (kind, key, version, payload) VALUES",
        "ON CONFLICT (kind, key) DO UPDATE SET version = excluded.version, payload = excluded.payload",
        states
            .into_iter()
            .map(|(kind, key, payload)| {
                vec![
                    Arg::Text(kind),
                    Arg::Text(key),
                    Arg::Int(version),
                    Arg::OptText(payload),
                ]
            })
            .collect(),
    )
    .await
}

/// The reference version now and the next one, the row locked (on PostgreSQL) until the
/// transaction ends so that two writers never take the same version.
pub(crate) async fn next_version(
    tx: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
) -> Result<(i64, i64), sqlx::Error> {
    let current: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM ref_meta WHERE singleton = 1{}",
        backend.for_update()
    )))
    .fetch_optional(&mut *tx)
    .await?;
    let current = current.unwrap_or(0);
    Ok((current, current + 1))
}

/// Makes `version` the reference version stores pull up to.
pub(crate) async fn set_version(
    tx: &mut sqlx::AnyConnection,
    version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO ref_meta (singleton, version) VALUES (1, $1) ON CONFLICT (singleton) DO UPDATE SET version = excluded.version")
        .bind(version)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Writes one entity as the next version of the reference change log and makes that version
/// the one stores pull up to; answers it (announce it once the transaction commits).
pub(crate) async fn publish_entity(
    tx: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
    kind: &str,
    key: &str,
    payload: String,
) -> Result<i64, sqlx::Error> {
    let (_, version) = next_version(tx, backend).await?;
    write_entities(
        tx,
        backend,
        version,
        vec![(kind.to_owned(), key.to_owned(), Some(payload))],
    )
    .await?;
    set_version(tx, version).await?;
    Ok(version)
}

/// Publishes a whole reference data set as the new state: returns the new version (or the
/// current one when nothing changed). Staff PINs given in clear are hashed under the chain's
/// `pepper` and only the hash is kept and published; a PIN that matches the hash already held
/// keeps that hash, so publishing the same set twice changes nothing.
pub async fn publish(db: &Db, seed: &SeedDto, pepper: &[u8]) -> Result<i64, PublishError> {
    // Validate everything first: a set that does not build is never published.
    seed.parse()?;
    let (_guard, mut tx) = db.begin_write().await?;
    let mut seed = seed.clone();
    for member in &mut seed.staff {
        let Some(pin) = member.pin.take() else {
            continue;
        };
        let held: Option<Option<String>> = sqlx::query_scalar(
            "SELECT payload FROM ref_entities WHERE kind = 'staff' AND key = $1",
        )
        .bind(&member.id)
        .fetch_optional(&mut *tx)
        .await?;
        let held_hash = held
            .flatten()
            .and_then(|p| serde_json::from_str::<protocol::seed::StaffDto>(&p).ok())
            .and_then(|m| m.pin_hash)
            .filter(|h| protocol::pin::verify(pepper, &pin, h));
        member.pin_hash = Some(match held_hash {
            Some(hash) => hash,
            None => {
                protocol::pin::hash(pepper, &pin).map_err(|e| PublishError::Pin(e.to_string()))?
            }
        });
    }
    let mut wanted: BTreeMap<(String, String), String> = protocol::sync::entities_of(&seed)
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    // Which pepper the published PIN hashes are keyed with, so a store without it can say so
    // instead of answering "wrong PIN" to every cashier.
    wanted.insert(
        (PIN_PEPPER_KIND.to_owned(), "chain".to_owned()),
        serde_json::json!({ "id": protocol::pin::pepper_id(pepper) }).to_string(),
    );
    let (current, version) = next_version(&mut tx, db.backend).await?;
    let rows = sqlx::query("SELECT kind, key, payload FROM ref_entities WHERE kind <> 'order'")
        .fetch_all(&mut *tx)
        .await?;
    let mut held: BTreeMap<(String, String), Option<String>> = BTreeMap::new();
    for row in rows {
        held.insert((row.get("kind"), row.get("key")), row.get("payload"));
    }
    let mut changed = 0;
    let mut upserts = Vec::new();
    for ((kind, key), payload) in &wanted {
        if held.get(&(kind.clone(), key.clone())) == Some(&Some(payload.clone())) {
            continue;
        }
        upserts.push((kind.clone(), key.clone(), Some(payload.clone())));
    }
    for ((kind, key), payload) in &held {
        // Orders and web returns are not reference data a data set holds: publishing leaves
        // them be.
        if kind == protocol::sync::ORDER_KIND || kind == protocol::sync::WEB_RETURN_KIND {
            continue;
        }
        if payload.is_some() && !wanted.contains_key(&(kind.clone(), key.clone())) {
            upserts.push((kind.clone(), key.clone(), None));
        }
    }
    changed += upserts.len();
    write_entities(&mut tx, db.backend, version, upserts).await?;
    if changed == 0 {
        tx.rollback().await?;
        return Ok(current);
    }
    set_version(&mut tx, version).await?;
    tx.commit().await?;
    Ok(version)
}

/// The identity of this HQ's reference change log, made (at random) on first use. Stores keep it
/// with their reference version: versions of another log are not comparable with theirs.
pub async fn log_id(db: &Db) -> Result<String, sqlx::Error> {
    let held: Option<String> = sqlx::query_scalar("SELECT id FROM ref_log WHERE singleton = 1")
        .fetch_optional(&db.pool)
        .await?;
    if let Some(id) = held {
        return Ok(id);
    }
    let mut bytes = [0_u8; 16];
    // Without randomness the id falls back to the clock: still distinct between databases.
    if getrandom::fill(&mut bytes).is_err() {
        bytes[..8].copy_from_slice(&crate::now_ms().to_le_bytes());
    }
    let _guard = db.write_guard().await;
    // Two HQ processes on one database may race here: the first id written wins for both.
    sqlx::query(
        "INSERT INTO ref_log (singleton, id) VALUES (1, $1) ON CONFLICT (singleton) DO NOTHING",
    )
    .bind(hex::encode(bytes))
    .execute(&db.pool)
    .await?;
    sqlx::query_scalar("SELECT id FROM ref_log WHERE singleton = 1")
        .fetch_one(&db.pool)
        .await
}

/// What changed since `since` that concerns `store`: its own configuration, every jurisdiction,
/// every variant, and prices from chain books in its currency and from its own books.
pub async fn changes_since(
    db: &Db,
    store: &str,
    since: i64,
) -> Result<ReferenceUpdate, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let to_version: i64 = sqlx::query_scalar("SELECT version FROM ref_meta WHERE singleton = 1")
        .fetch_optional(&mut *tx)
        .await?
        .unwrap_or(0);
    let currency: Option<String> = sqlx::query_scalar::<_, Option<String>>(
        "SELECT payload FROM ref_entities WHERE kind = 'store' AND key = $1",
    )
    .bind(store)
    .fetch_optional(&mut *tx)
    .await?
    .flatten()
    .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
    .and_then(|v| v["currency"].as_str().map(str::to_owned));
    let rows = sqlx::query("SELECT kind, key, payload FROM ref_entities WHERE version > $1 ORDER BY version, kind, key")
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut entities = Vec::new();
    for row in rows {
        let kind: String = row.get("kind");
        let key: String = row.get("key");
        let payload: Option<String> = row.get("payload");
        // A snapshot carries no removals: the store has nothing to remove.
        if since == 0 && payload.is_none() {
            continue;
        }
        let value: Option<serde_json::Value> = payload.and_then(|p| serde_json::from_str(&p).ok());
        let concerns = match kind.as_str() {
            "store" => key == store,
            // An order goes to its store; a snapshot leaves out the ones that have ended.
            // A web return goes to the store that sold the goods and the one receiving them.
            protocol::sync::WEB_RETURN_KIND => value.as_ref().is_none_or(|v| {
                v["sale_store"].as_str() == Some(store) || v["receive_at"].as_str() == Some(store)
            }),
            protocol::sync::ORDER_KIND => value.as_ref().is_none_or(|v| {
                v["store"].as_str() == Some(store)
                    && !(since == 0
                        && matches!(
                            v["status"].as_str(),
                            Some("shipped" | "collected" | "cancelled")
                        ))
            }),
            "prices" => match value
                .as_ref()
                .and_then(|v| serde_json::from_value::<PricesEntity>(v.clone()).ok())
            {
                Some(p) => match p.scope {
                    ScopeDto::Store { store: s } => s == store,
                    ScopeDto::Chain(_) => Some(&p.currency) == currency.as_ref(),
                },
                // A removed price row: the store drops it if it has it.
                None => true,
            },
            _ => true,
        };
        if concerns {
            entities.push(EntityChange {
                kind,
                key,
                payload: value,
            });
        }
    }
    Ok(ReferenceUpdate {
        format: REFERENCE_FORMAT.into(),
        from_version: since,
        to_version,
        entities,
    })
}
