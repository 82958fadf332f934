//! Price lists over HQ's API: a CSV of prices uploaded, previewed row by row (what each row
//! changes, in which book, from when), committed as one import batch at a new reference
//! version, and undone as a whole by rolling that batch back. Each row is read as a price
//! change is (`sku`, `price`, and `currency`, `store` or `effective` when given).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::catalog::Sku;
use domain::money::Money;
use domain::pricebook::{PriceChange, PriceEntry};
use domain::time::Timestamp;
use protocol::sync::PricesEntity;
use serde::Deserialize;
use serde_json::json;

use crate::api::{Access, ApiError, ApiResult, Hq, authorize};
use crate::catalog::{NewPriceChange, book_of, entry_dtos, field_error, invalid};
use crate::extract::{Path, Query, read_body, require_content_type};
use crate::identity::{Audit, Scope};
use crate::import::{EntityWrite, ImportError};
use crate::now_ms;
use crate::writes;

/// The largest price list (about 300,000 rows).
const PRICE_LIST_BYTES: u64 = 16 * 1024 * 1024;

/// The label every price-list batch starts with.
const LABEL: &str = "price list";

/// The columns a price list may have.
const COLUMNS: [&str; 5] = ["sku", "price", "currency", "store", "effective"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UploadQuery {
    dry_run: Option<bool>,
}

/// Reads the CSV: a header naming its columns (`sku` and `price` required), then one price a
/// row; `(line, change)` per row.
fn parse(bytes: &[u8]) -> ApiResult<Vec<(u64, NewPriceChange)>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header = reader
        .headers()
        .map_err(|e| invalid("line 1", format!("the header does not read: {e}")))?
        .clone();
    let mut at = BTreeMap::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.to_lowercase();
        if !COLUMNS.contains(&name.as_str()) {
            return Err(invalid(
                "line 1",
                format!(
                    "`{name}` is no column of a price list ({})",
                    COLUMNS.join(", ")
                ),
            ));
        }
        if at.insert(name.clone(), i).is_some() {
            return Err(invalid("line 1", format!("`{name}` is given twice")));
        }
    }
    for required in ["sku", "price"] {
        if !at.contains_key(required) {
            return Err(invalid(
                "line 1",
                format!("the column `{required}` is missing"),
            ));
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            invalid(
                format!("line {line}"),
                format!("the row does not read: {e}"),
            )
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        let cell = |name: &str| {
            at.get(name)
                .and_then(|i| record.get(*i))
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        rows.push((
            line,
            NewPriceChange {
                sku: cell("sku").unwrap_or_default(),
                price: cell("price").unwrap_or_default(),
                effective: cell("effective"),
                store: cell("store"),
                currency: cell("currency"),
            },
        ));
    }
    if rows.is_empty() {
        return Err(invalid("body", "the price list has no rows"));
    }
    Ok(rows)
}

/// One row as it would change a book.
struct Planned {
    line: u64,
    sku: Sku,
    book: String,
    at: i64,
    price: Money,
}

/// `POST /v1/price-lists`: a CSV price list, previewed (`?dry_run=true`) or committed as one
/// batch.
pub(crate) async fn upload(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(q): Query<UploadQuery>,
    body: Body,
) -> ApiResult<Response> {
    let actor = authorize(&hq, &headers, Scope::CatalogWrite, None, Access::Write).await?;
    require_content_type(&headers, "text/csv")?;
    let bytes = read_body(&headers, body, PRICE_LIST_BYTES).await?;
    let dry_run = q.dry_run.unwrap_or(false);
    let key = if dry_run {
        None
    } else {
        match writes::idempotency(&hq, &headers, &actor, &[b"POST /v1/price-lists", &bytes]).await?
        {
            Ok(key) => key,
            Err(answer) => return Ok(answer),
        }
    };
    let asks = parse(&bytes)?;
    let now = now_ms();
    let (_guard, mut tx) = hq.db.begin_write().await?;
    let stores = crate::catalog::stores(&mut tx).await?;

    // What HQ holds of every SKU named: the variant, and its prices in every book (found in
    // one pass over the prices' keys).
    let mut skus = BTreeSet::new();
    for (line, ask) in &asks {
        let sku = Sku::parse(&ask.sku).map_err(|e| invalid(format!("line {line}: sku"), e))?;
        skus.insert(sku.to_string());
    }
    let price_keys: Vec<String> = sqlx::query_scalar(
        "SELECT key FROM ref_entities WHERE kind = 'prices' AND payload IS NOT NULL",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut keys: Vec<(String, String)> = price_keys
        .into_iter()
        .filter(|k| {
            k.rsplit_once('|')
                .is_some_and(|(_, sku)| skus.contains(sku))
        })
        .map(|k| ("prices".to_owned(), k))
        .collect();
    keys.extend(skus.iter().map(|s| ("variant".to_owned(), s.clone())));
    let held = crate::import::held_for(&mut tx, hq.db.backend, &keys).await?;
    let mut books_of: BTreeMap<String, BTreeMap<String, (i64, PricesEntity)>> = BTreeMap::new();
    for ((kind, _), payload) in &held {
        let entity = payload
            .as_deref()
            .filter(|_| kind == "prices")
            .and_then(|p| serde_json::from_str::<PricesEntity>(p).ok());
        if let Some(entity) = entity {
            books_of
                .entry(entity.sku.clone())
                .or_default()
                .insert(entity.book.clone(), (0, entity));
        }
    }

    // Each row's book and instant; the rows of one book and SKU applied together.
    let mut planned = Vec::new();
    let mut targets: BTreeMap<(String, String), crate::catalog::Target> = BTreeMap::new();
    for (line, ask) in &asks {
        let at_line = |e: ApiError| e.within(&format!("line {line}"));
        let sku = Sku::parse(&ask.sku)
            .map_err(|e| invalid("sku", e))
            .map_err(at_line)?;
        let variant = held.get(&("variant".to_owned(), sku.to_string()));
        if variant.is_none_or(Option::is_none) {
            return Err(at_line(invalid(
                "sku",
                format!("HQ holds no variant `{sku}`"),
            )));
        }
        let books = books_of.get(sku.as_str()).cloned().unwrap_or_default();
        let target = crate::catalog::target(&stores, ask, &books).map_err(at_line)?;
        let price = Money::parse_major(&ask.price, target.currency)
            .map_err(|e| at_line(invalid("price", e)))?;
        if price.is_negative() {
            return Err(at_line(invalid("price", "a price must not be negative")));
        }
        let (at, _) = crate::catalog::effective(ask, &target.stores, now).map_err(at_line)?;
        if planned
            .iter()
            .any(|p: &Planned| p.sku == sku && p.book == target.book && p.at == at)
        {
            return Err(at_line(invalid(
                "effective",
                format!(
                    "another row prices `{sku}` in {} from the same instant",
                    target.book
                ),
            )));
        }
        planned.push(Planned {
            line: *line,
            sku: sku.clone(),
            book: target.book.clone(),
            at,
            price,
        });
        targets.insert((target.book.clone(), sku.to_string()), target);
    }

    let mut entity_writes = Vec::new();
    let mut rows = Vec::new();
    for ((book, sku_text), target) in &targets {
        let Ok(sku) = Sku::parse(sku_text) else {
            continue;
        };
        let current: Vec<PriceEntry> = match &target.held {
            Some((_, entity)) => book_of(entity)
                .map_err(field_error)?
                .entries()
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let mine: Vec<&Planned> = planned
            .iter()
            .filter(|p| &p.book == book && p.sku == sku)
            .collect();
        let changes: Vec<PriceChange> = mine
            .iter()
            .map(|p| PriceChange {
                at: Timestamp::from_millis(p.at),
                price: p.price,
            })
            .collect();
        let entries = domain::pricebook::with_changes(&sku, &current, &changes);
        let (version, scope) = match &target.held {
            Some((_, p)) => (p.version, p.scope.clone()),
            None => (1, target.scope.clone()),
        };
        let entity = PricesEntity {
            book: book.clone(),
            version,
            scope,
            currency: target.currency.code().to_owned(),
            sku: sku.to_string(),
            entries: entry_dtos(&entries),
        };
        book_of(&entity).map_err(field_error)?;
        for p in mine {
            let before = current
                .iter()
                .find(|e| e.from.millis() < p.at && e.to.is_none_or(|to| to.millis() >= p.at))
                .map(|e| e.price.amount_string());
            rows.push(json!({
                "line": p.line,
                "sku": sku.as_str(),
                "book": book,
                "effective": Timestamp::from_millis(p.at).to_string(),
                "price_before": before,
                "price_after": p.price.amount_string(),
            }));
        }
        entity_writes.push(EntityWrite {
            kind: "prices".into(),
            key: format!("{book}|{sku}"),
            payload: Some(
                serde_json::to_string(&entity)
                    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?,
            ),
            provenance: None,
        });
    }
    rows.sort_by_key(|r| r["line"].as_u64());

    if dry_run {
        let plan = crate::import::plan_within(&mut tx, hq.db.backend, &entity_writes).await?;
        return Ok(Json(json!({
            "dry_run": true,
            "rows": rows,
            "books_created": plan.created.len(),
            "books_updated": plan.updated.len(),
            "unchanged": plan.unchanged,
        }))
        .into_response());
    }
    let label = format!("{LABEL} by {actor}");
    let committed = crate::import::commit_within(
        &mut tx,
        &hq.db,
        &label,
        now,
        &mut crate::import::chunks_of(&entity_writes),
        &[],
    )
    .await?;
    let Some(batch) = committed.batch.clone() else {
        let answer = json!({"batch": null, "version": committed.version, "rows": rows});
        tx.rollback().await?;
        return Ok(Json(answer).into_response());
    };
    // Changes scheduled through the API on these prices can no longer be cancelled one by one:
    // the list rewrote the entries they were made on.
    for (book, sku) in targets.keys() {
        sqlx::query(
            "UPDATE price_changes SET replaced_version = $1
             WHERE book = $2 AND sku = $3 AND cancelled_ms IS NULL AND replaced_version IS NULL",
        )
        .bind(committed.version)
        .bind(book)
        .bind(sku)
        .execute(&mut *tx)
        .await?;
    }
    let answer = json!({
        "batch": batch,
        "version": committed.version,
        "books_created": committed.plan.created.len(),
        "books_updated": committed.plan.updated.len(),
        "unchanged": committed.plan.unchanged,
        "rows": rows,
    });
    let target = format!("import-batch:{batch}");
    let after =
        json!({"batch": batch, "version": committed.version, "rows": asks.len()}).to_string();
    Audit {
        at_ms: now,
        actor: &actor,
        source: None,
        action: "price-list.commit",
        target: Some(&target),
        before: None,
        after: Some(&after),
    }
    .append(&mut tx)
    .await?;
    writes::remember(&key, &mut tx, StatusCode::CREATED, &answer, now).await?;
    tx.commit().await?;
    hq.announce_version(committed.version);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

fn import_error(e: ImportError) -> ApiError {
    match e {
        ImportError::Db(e) => e.into(),
        e @ ImportError::UnknownBatch(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", e).at("batch")
        }
        e @ ImportError::AlreadyRolledBack { .. } => {
            ApiError::new(StatusCode::CONFLICT, "already_undone", e).at("batch")
        }
        ImportError::ChangedSince { batch, keys } => ApiError::new(
            StatusCode::CONFLICT,
            "changed_since",
            format!(
                "price list `{batch}` cannot be undone: {} of its prices changed since (first: {})",
                keys.len(),
                keys.first().map_or("", String::as_str)
            ),
        )
        .at("batch")
        .with("changed", json!(keys)),
        e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e),
    }
}

/// `DELETE /v1/price-lists/{batch}`: undoes a committed price list as a new reference version:
/// every price it wrote goes back to what it was. Refused when one of them changed since.
pub(crate) async fn undo(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(batch): Path<String>,
) -> ApiResult<Response> {
    let actor = authorize(&hq, &headers, Scope::CatalogWrite, None, Access::Write).await?;
    let key = match writes::idempotency(
        &hq,
        &headers,
        &actor,
        &[b"DELETE /v1/price-lists/", batch.as_bytes()],
    )
    .await?
    {
        Ok(key) => key,
        Err(answer) => return Ok(answer),
    };
    let now = now_ms();
    let (_guard, mut tx) = hq.db.begin_write().await?;
    let label: Option<String> =
        sqlx::query_scalar("SELECT label FROM import_batches WHERE id = $1")
            .bind(&batch)
            .fetch_optional(&mut *tx)
            .await?;
    if !label.is_some_and(|l| l.starts_with(LABEL)) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no price list `{batch}` (a catalog import is undone with `kassa catalog rollback`)"
            ),
        )
        .at("batch"));
    }
    let undone = crate::import::rollback_within(&mut tx, &hq.db, &batch).await?;
    let answer = json!({
        "batch": batch,
        "version": undone.version,
        "restored": undone.restored,
        "removed": undone.removed,
    });
    let target = format!("import-batch:{batch}");
    let after = answer.to_string();
    Audit {
        at_ms: now,
        actor: &actor,
        source: None,
        action: "price-list.undo",
        target: Some(&target),
        before: None,
        after: Some(&after),
    }
    .append(&mut tx)
    .await?;
    writes::remember(&key, &mut tx, StatusCode::OK, &answer, now).await?;
    tx.commit().await?;
    hq.announce_version(undone.version);
    Ok(Json(answer).into_response())
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        import_error(e)
    }
}
