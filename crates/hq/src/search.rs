//! Catalog search at HQ: an index of every variant's names, SKU and identifiers, kept from the
//! reference change log in order of version, whoever wrote it (a publish, an import, the write
//! API, another HQ process). The index is brought up to date before each search and each
//! variant write, and in the background while HQ runs, a batch at a time so that a
//! million-variant import never holds the database for long.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use domain::barcode::Gtin;
use domain::catalog::{Identifier, Plu};
use protocol::sync::VariantEntity;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::api::{Access, ApiError, ApiResult, Hq, authorize};
use crate::db::{Arg, Db, insert_many};
use crate::extract::Query;
use crate::identity::Scope;

/// Variant rows indexed per transaction.
const BATCH: i64 = 5_000;

/// The most variants one page answers.
pub const PAGE_MAX: i64 = 200;

/// The identifier keys (`gtin:…`, `plu:…`, `legacy:…`) of a variant, as the catalog compares
/// them.
pub(crate) fn identifier_keys(entity: &VariantEntity) -> Vec<String> {
    entity
        .variant
        .identifiers
        .iter()
        .filter_map(|dto| {
            Some(match dto {
                protocol::seed::IdentifierDto::Gtin(g) => Identifier::Gtin(Gtin::parse(g).ok()?),
                protocol::seed::IdentifierDto::Plu(p) => Identifier::Plu(Plu::parse(p).ok()?),
                protocol::seed::IdentifierDto::Legacy { system, id } => Identifier::Legacy {
                    system: system.clone(),
                    id: id.clone(),
                },
            })
        })
        .map(|i| i.key())
        .collect()
}

/// Brings the index up to the reference change log, a batch per transaction; the variant rows
/// indexed.
pub async fn refresh(db: &Db) -> Result<u64, sqlx::Error> {
    let mut indexed = 0;
    loop {
        // Deferred, not `begin_write`: before every search there is mostly nothing to index,
        // and a search should not take the database's write lock to find that out.
        let _guard = db.write_guard().await;
        let mut tx = db.pool.begin().await?;
        let step = refresh_batch(&mut tx, db.backend).await?;
        tx.commit().await?;
        if step == 0 {
            break;
        }
        indexed += step;
    }
    // A large change of the index (a publish, an import) on PostgreSQL: its statistics are
    // brought up to date at once, not whenever autovacuum gets to it, so the planner takes the
    // identifier's index for a barcode instead of walking the catalog (measured: 95 ms for
    // 300,000 variants before, 1 ms after).
    if db.backend == crate::db::Backend::Postgres && indexed >= ANALYZE_AFTER {
        sqlx::query("ANALYZE catalog_search, catalog_identifiers")
            .execute(&db.pool)
            .await?;
    }
    Ok(indexed)
}

/// Variants indexed in one refresh past which PostgreSQL's statistics of the index are renewed.
const ANALYZE_AFTER: u64 = 10_000;

/// Brings the index up to date inside `tx`, whose writer holds the write guard: a write that
/// checks the index sees every variant committed before it (on PostgreSQL the cursor row is
/// locked until `tx` ends, so two such writers take turns).
pub(crate) async fn refresh_within(
    tx: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
) -> Result<(), sqlx::Error> {
    while refresh_batch(tx, backend).await? > 0 {}
    Ok(())
}

/// Indexes the next [`BATCH`] variant rows after the cursor; the rows indexed.
async fn refresh_batch(
    tx: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
) -> Result<u64, sqlx::Error> {
    let cursor: Option<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT version, key FROM search_cursor WHERE singleton = 1{}",
        backend.for_update()
    )))
    .fetch_optional(&mut *tx)
    .await?;
    // The cursor is the last variant row indexed, or `(version, "")` once every row up to
    // `version` is: a version's rows are committed together, so none can follow.
    let (version, key) = cursor.unwrap_or((0, String::new()));
    let mut rows = Vec::new();
    if !key.is_empty() {
        rows = sqlx::query(
            "SELECT key, version, payload FROM ref_entities
             WHERE kind = 'variant' AND version = $1 AND key > $2 ORDER BY key LIMIT $3",
        )
        .bind(version)
        .bind(&key)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
    }
    if rows.is_empty() {
        // SQLite would walk every variant by the primary key (kind, key) for this; rows past a
        // version are found by the version index.
        let by_version = match backend {
            crate::db::Backend::Sqlite => "INDEXED BY ref_entities_by_version",
            crate::db::Backend::Postgres => "",
        };
        rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT key, version, payload FROM ref_entities {by_version}
             WHERE kind = 'variant' AND version > $1 ORDER BY version, key LIMIT $2"
        )))
        .bind(version)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
    }
    let next: (i64, String) = match rows.last() {
        Some(last) if rows.len() as i64 == BATCH => (last.get("version"), last.get("key")),
        Some(last) => (last.get("version"), String::new()),
        None if key.is_empty() => return Ok(0),
        None => (version, String::new()),
    };
    let skus: Vec<String> = rows.iter().map(|r| r.get("key")).collect();
    for table in ["catalog_search", "catalog_identifiers"] {
        for chunk in skus.chunks(500) {
            let mut marks = backend.marks();
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE sku IN {}",
                marks.tuple(chunk.len())
            )));
            for sku in chunk {
                query = query.bind(sku.clone());
            }
            query.execute(&mut *tx).await?;
        }
    }
    let mut search_rows = Vec::new();
    let mut identifier_rows = Vec::new();
    for row in &rows {
        let sku: String = row.get("key");
        let payload: Option<String> = row.get("payload");
        let Some(entity) = payload.and_then(|p| serde_json::from_str::<VariantEntity>(&p).ok())
        else {
            continue;
        };
        let keys = identifier_keys(&entity);
        let raw: Vec<String> = entity
            .variant
            .identifiers
            .iter()
            .map(|i| match i {
                protocol::seed::IdentifierDto::Gtin(g) => g.clone(),
                protocol::seed::IdentifierDto::Plu(p) => p.clone(),
                protocol::seed::IdentifierDto::Legacy { id, .. } => id.clone(),
            })
            .collect();
        let folded = format!(
            "{} {} {} {}",
            entity.product_name,
            entity.variant.name,
            sku,
            raw.join(" ")
        )
        .to_lowercase();
        for k in &keys {
            identifier_rows.push(vec![Arg::Text(k.clone()), Arg::Text(sku.clone())]);
        }
        search_rows.push(vec![
            Arg::Text(sku),
            Arg::Text(entity.product_id),
            Arg::Text(entity.product_name),
            Arg::Text(entity.variant.name),
            Arg::Text(folded),
            Arg::Text(keys.join(" ")),
        ]);
    }
    insert_many(
        &mut *tx,
        backend,
        "INSERT INTO catalog_search (sku, product_id, product_name, name, folded, identifiers) VALUES",
        "",
        search_rows,
    )
    .await?;
    insert_many(
        &mut *tx,
        backend,
        "INSERT INTO catalog_identifiers (identifier, sku) VALUES",
        "ON CONFLICT (identifier, sku) DO NOTHING",
        identifier_rows,
    )
    .await?;
    sqlx::query(
        "INSERT INTO search_cursor (singleton, version, key) VALUES (1, $1, $2)
         ON CONFLICT (singleton) DO UPDATE SET version = excluded.version, key = excluded.key",
    )
    .bind(next.0)
    .bind(&next.1)
    .execute(&mut *tx)
    .await?;
    Ok(rows.len() as u64)
}

/// Keeps the index up to date while HQ runs: a publish or an import by another process is
/// searchable within seconds without a search paying for it.
pub(crate) async fn keep_fresh(db: Db) {
    loop {
        if let Err(e) = refresh(&db).await {
            tracing::warn!(error = %e, "catalog search index not refreshed");
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

/// The SKUs other than `sku` that hold any of `keys`.
pub(crate) async fn holders(
    conn: &mut sqlx::AnyConnection,
    keys: &[String],
    sku: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let mut out = Vec::new();
    for key in keys {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT sku FROM catalog_identifiers WHERE identifier = $1 AND sku <> $2",
        )
        .bind(key)
        .bind(sku)
        .fetch_all(&mut *conn)
        .await?;
        out.extend(found.into_iter().map(|s| (key.clone(), s)));
    }
    Ok(out)
}

/// A variant found.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Found {
    pub sku: String,
    pub product_id: String,
    pub product_name: String,
    pub name: String,
    /// As the catalog compares them (`gtin:…`, `plu:…`).
    pub identifiers: Vec<String>,
}

/// A page of variants found.
pub(crate) struct Page {
    pub variants: Vec<Found>,
    /// The SKU to go on after, when there is more.
    pub after_next: Option<String>,
}

/// The identifier keys `needle` (lower case) is as a barcode or a PLU, when it is one.
pub(crate) fn exact_keys(needle: &str) -> Vec<String> {
    [
        Gtin::parse(needle).ok().map(|g| Identifier::Gtin(g).key()),
        Plu::parse(needle).ok().map(|p| Identifier::Plu(p).key()),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A `LIKE … ESCAPE '\'` pattern for the names, SKUs and identifiers holding `needle`.
pub(crate) fn like_pattern(needle: &str) -> String {
    format!(
        "%{}%",
        needle
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// The variants whose barcode or PLU is `needle` (lower case), when there are any, else those
/// whose names, SKU or identifiers contain it; in SKU order after `after`, at most `limit`.
pub(crate) async fn find(
    db: &Db,
    needle: &str,
    after: &str,
    limit: i64,
) -> Result<Page, sqlx::Error> {
    refresh(db).await?;
    let exact = exact_keys(needle);
    let pattern = like_pattern(needle);
    let held: Option<i64> =
        sqlx::query_scalar("SELECT COUNT(*) FROM catalog_identifiers WHERE identifier IN ($1, $2)")
            .bind(exact.first().cloned().unwrap_or_default())
            .bind(exact.get(1).cloned().unwrap_or_default())
            .fetch_optional(&db.pool)
            .await?;
    let rows = if held.unwrap_or(0) > 0 {
        sqlx::query(
            // Driven by the identifier's index: PostgreSQL otherwise walks the whole catalog in
            // SKU order probing each (50 ms for 300,000 variants instead of 1).
            "SELECT DISTINCT s.sku, s.product_id, s.product_name, s.name, s.identifiers
             FROM catalog_identifiers i JOIN catalog_search s ON s.sku = i.sku
             WHERE i.identifier IN ($2, $3) AND s.sku > $1
             ORDER BY s.sku LIMIT $4",
        )
        .bind(after)
        .bind(exact.first().cloned().unwrap_or_default())
        .bind(exact.get(1).cloned().unwrap_or_default())
        .bind(limit + 1)
        .fetch_all(&db.pool)
        .await?
    } else {
        sqlx::query(
            "SELECT sku, product_id, product_name, name, identifiers FROM catalog_search
             WHERE sku > $1 AND folded LIKE $2 ESCAPE '\\' ORDER BY sku LIMIT $3",
        )
        .bind(after)
        .bind(&pattern)
        .bind(limit + 1)
        .fetch_all(&db.pool)
        .await?
    };
    let more = rows.len() as i64 > limit;
    let variants: Vec<Found> = rows
        .iter()
        .take(usize::try_from(limit).unwrap_or(0))
        .map(|r| {
            let identifiers: String = r.get("identifiers");
            Found {
                sku: r.get("sku"),
                product_id: r.get("product_id"),
                product_name: r.get("product_name"),
                name: r.get("name"),
                identifiers: identifiers.split_whitespace().map(str::to_owned).collect(),
            }
        })
        .collect();
    let after_next = more
        .then(|| variants.last().map(|v| v.sku.clone()))
        .flatten();
    Ok(Page {
        variants,
        after_next,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchQuery {
    q: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

/// `GET /v1/variants`: the variants whose barcode or PLU is `q`, when there are any, else
/// those whose product name, name, SKU or an identifier contains `q` (any case), in SKU order, a page at a time (`after` the last
/// SKU of the previous page).
pub(crate) async fn search(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<Value>> {
    authorize(&hq, &headers, Scope::CatalogRead, None, Access::Read).await?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("limit must be 1 to {PAGE_MAX}"),
        )
        .at("limit"));
    }
    let needle = q.q.unwrap_or_default().trim().to_lowercase();
    if needle.chars().count() > 100 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "a search is at most 100 characters",
        )
        .at("q"));
    }
    let page = find(&hq.db, &needle, &q.after.unwrap_or_default(), limit).await?;
    let next = page.after_next.clone();
    let variants: Vec<Value> = page.variants.iter().map(|v| json!(v)).collect();
    Ok(Json(json!({ "variants": variants, "after_next": next })))
}
