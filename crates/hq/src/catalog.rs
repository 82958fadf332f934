//! The catalog over HQ's API: a variant read with its prices in every book and its price
//! history, a variant written (created or edited with `If-Match`), and price changes scheduled
//! for an instant, previewed per store, and cancelled before they take effect. Every write is a
//! new version of the reference change log, which stores pull as they always have; a scheduled
//! price is a price entry with a future `from`, which tills apply at that instant.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::StoreId;
use domain::catalog::Sku;
use domain::money::{Currency, Money};
use domain::pricebook::{PriceChange, PriceEntry, Pricebook, price_at};
use domain::time::Timestamp;
use protocol::seed::{PriceEntryDto, PricebookDto, ScopeDto, StoreDto};
use protocol::sync::{PricesEntity, VariantEntity};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::api::{Access, ApiError, ApiResult, Hq, authorize};
use crate::extract::{Path, Query};
use crate::identity::{Audit, Scope};
use crate::now_ms;
use crate::writes;

pub(crate) fn invalid(field: impl Into<String>, reason: impl ToString) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", reason).at(field)
}

pub(crate) fn field_error(e: protocol::FieldError) -> ApiError {
    invalid(e.field, e.reason)
}

/// The `prices` entities of `sku` in every book, by book.
pub(crate) async fn prices_of(
    conn: &mut sqlx::AnyConnection,
    sku: &str,
) -> Result<BTreeMap<String, (i64, PricesEntity)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT key, version, payload FROM ref_entities WHERE kind = 'prices' AND key LIKE $1 ESCAPE '\\' AND payload IS NOT NULL",
    )
    .bind(format!("%|{}", sku.replace('%', "\\%").replace('_', "\\_")))
    .fetch_all(conn)
    .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let key: String = row.get("key");
        let payload: Option<String> = row.get("payload");
        let Some(entity) = payload.and_then(|p| serde_json::from_str::<PricesEntity>(&p).ok())
        else {
            continue;
        };
        if entity.sku == sku && key == format!("{}|{sku}", entity.book) {
            out.insert(entity.book.clone(), (row.get("version"), entity));
        }
    }
    Ok(out)
}

/// Every store HQ holds, by id.
pub(crate) async fn stores(
    conn: &mut sqlx::AnyConnection,
) -> Result<BTreeMap<String, StoreDto>, sqlx::Error> {
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT key, payload FROM ref_entities WHERE kind = 'store'")
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(key, payload)| {
            let store = serde_json::from_str::<StoreDto>(&payload?).ok()?;
            Some((key, store))
        })
        .collect())
}

pub(crate) fn book_of(entity: &PricesEntity) -> Result<Pricebook, protocol::FieldError> {
    PricebookDto {
        id: entity.book.clone(),
        version: entity.version,
        scope: entity.scope.clone(),
        currency: entity.currency.clone(),
        entries: entity.entries.clone(),
    }
    .parse(&format!("prices {}|{}", entity.book, entity.sku))
}

pub(crate) fn entry_dtos(entries: &[PriceEntry]) -> Vec<PriceEntryDto> {
    entries
        .iter()
        .map(|e| PriceEntryDto {
            sku: e.sku.to_string(),
            price: e.price.amount_string(),
            from: (e.from != Timestamp::from_millis(i64::MIN)).then(|| e.from.to_string()),
            to: e.to.map(|t| t.to_string()),
        })
        .collect()
}

fn instant_text(ms: i64) -> String {
    Timestamp::from_millis(ms).to_string()
}

// ---------------------------------------------------------------------------------------------
// Variants

/// `GET /v1/variants/{sku}`: the variant, its prices in every book (each book's entries are
/// the variant's price history there) and the price changes made through the API; its
/// version is the `ETag` an edit sends back.
pub(crate) async fn read_variant(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(sku): Path<String>,
) -> ApiResult<Response> {
    authorize(&hq, &headers, Scope::CatalogRead, None, Access::Read).await?;
    let mut conn = hq.db.pool.acquire().await?;
    let held = writes::held(&mut conn, "variant", &sku).await?;
    let Some((version, Some(payload))) = held.map(|h| (h.version, h.payload)) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no variant `{sku}`"),
        )
        .at("sku"));
    };
    let variant: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
    let prices: Vec<Value> = prices_of(&mut conn, &sku)
        .await?
        .into_values()
        .map(|(_, p)| json!(p))
        .collect();
    let changes = changes_where(&mut conn, "sku = $1", &sku).await?;
    let imports: Vec<Value> = imports_of(&mut conn, &sku)
        .await?
        .iter()
        .map(|i| {
            json!({
                "batch": i.batch,
                "label": i.label,
                "at_ms": i.at_ms,
                "undone": i.undone,
                "provenance": i.provenance,
            })
        })
        .collect();
    Ok(writes::tagged(
        StatusCode::OK,
        json!({
            "variant": variant,
            "version": version,
            "prices": prices,
            "price_changes": changes,
            "imports": imports,
        }),
        version,
    ))
}

/// An import batch that wrote a variant, and where its fields came from.
pub(crate) struct ImportRow {
    pub batch: String,
    pub label: String,
    pub at_ms: i64,
    /// Whether the batch was undone since.
    pub undone: bool,
    /// The import's provenance of the variant: for each source row, its system, file, line,
    /// legacy id and the fields it gave (or a note, such as what it was merged into).
    pub provenance: Value,
}

/// (batch, label, created, the version that undid it, provenance) as HQ keeps them.
type ImportRecord = (String, String, i64, Option<i64>, Option<String>);

/// The import batches that wrote variant `sku`, the latest first.
pub(crate) async fn imports_of(
    conn: &mut sqlx::AnyConnection,
    sku: &str,
) -> Result<Vec<ImportRow>, sqlx::Error> {
    let rows: Vec<ImportRecord> = sqlx::query_as(
        "SELECT b.id, b.label, b.created_ms, b.rolled_back_version, e.provenance
         FROM import_batch_entities e JOIN import_batches b ON b.id = e.batch
         WHERE e.kind = 'variant' AND e.key = $1 ORDER BY b.created_ms DESC, b.id",
    )
    .bind(sku)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(batch, label, at_ms, undone, provenance)| ImportRow {
            batch,
            label,
            at_ms,
            undone: undone.is_some(),
            provenance: provenance.map_or(Value::Null, |text| {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            }),
        })
        .collect())
}

/// `PUT /v1/variants/{sku}`: creates the variant, or replaces it when `If-Match` names the
/// version it was read at. The body is the variant entity stores receive
/// (`{product_id, product_name, variant}`); it is validated as the catalog import validates
/// (identifiers by their check digits, the unit, the channels), its tax category must be one
/// a jurisdiction defines, and no identifier may belong to another variant.
pub(crate) async fn write_variant(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(sku): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let path = format!("/v1/variants/{sku}");
    let (actor, entity, key) =
        match writes::put_request::<VariantEntity>(&hq, &headers, Scope::CatalogWrite, &path, body)
            .await?
        {
            Ok(asked) => asked,
            Err(answer) => return Ok(answer),
        };
    writes::same_as_path("variant.sku", &entity.variant.sku, &sku)?;
    if entity.product_id.trim().is_empty() {
        return Err(invalid("product_id", "a product id is required"));
    }
    if entity.product_name.trim().is_empty() {
        return Err(invalid("product_name", "a product name is required"));
    }
    entity.variant.parse("variant").map_err(field_error)?;
    let payload = serde_json::to_string(&entity)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;

    if let Some(category) = &entity.category {
        protocol::seed::check_category_id(category, "category")
            .map_err(crate::stores::field_error)?;
    }
    let (_guard, mut tx) = hq.db.begin_write().await?;
    check_tax_category(&mut tx, &entity.variant.tax).await?;
    if let Some(category) = &entity.category {
        if !crate::categories::held(&mut tx)
            .await?
            .contains_key(category)
        {
            return Err(invalid("category", format!("no category `{category}`")));
        }
    }
    crate::search::refresh_within(&mut tx, hq.db.backend).await?;
    let keys = crate::search::identifier_keys(&entity);
    if let Some((key, other)) = crate::search::holders(&mut tx, &keys, &sku).await?.first() {
        let i = keys.iter().position(|k| k == key).unwrap_or(0);
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "identifier_taken",
            format!("{key} belongs to variant `{other}`"),
        )
        .at(format!("variant.identifiers[{i}]")));
    }
    let answer = writes::put_entity(
        &hq,
        tx,
        &headers,
        &key,
        &actor,
        writes::Entity {
            kind: "variant",
            key: &sku,
            payload,
            answer: json!({ "variant": entity }),
        },
    )
    .await?;
    Ok(answer)
}

/// Refuses a tax category no jurisdiction at HQ defines.
/// The tax categories the jurisdictions HQ holds define, sorted.
pub(crate) async fn tax_categories(
    conn: &mut sqlx::AnyConnection,
) -> Result<Vec<String>, sqlx::Error> {
    let jurisdictions: Vec<Option<String>> =
        sqlx::query_scalar("SELECT payload FROM ref_entities WHERE kind = 'jurisdiction'")
            .fetch_all(conn)
            .await?;
    let mut known: Vec<String> = jurisdictions
        .into_iter()
        .flatten()
        .filter_map(|p| serde_json::from_str::<protocol::seed::JurisdictionDto>(&p).ok())
        .flat_map(|j| j.rules.into_iter().map(|r| r.category))
        .collect();
    known.sort();
    known.dedup();
    Ok(known)
}

async fn check_tax_category(conn: &mut sqlx::AnyConnection, category: &str) -> ApiResult<()> {
    let known = tax_categories(conn).await?;
    if known.iter().any(|k| k == category) {
        return Ok(());
    }
    Err(invalid(
        "variant.tax",
        format!(
            "no jurisdiction defines the tax category `{category}` (known: {})",
            known.join(", ")
        ),
    ))
}

// ---------------------------------------------------------------------------------------------
// Price changes

/// A price change as asked for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPriceChange {
    pub(crate) sku: String,
    /// In the book's currency, major units (`2.49`).
    pub(crate) price: String,
    /// An RFC 3339 instant, or a local date and time (`2027-01-01T06:00`) in the time zone of
    /// the stores it applies to; absent: now.
    pub(crate) effective: Option<String>,
    /// One store's own price (its store book); absent: the chain book.
    pub(crate) store: Option<String>,
    /// The chain book's currency, when the variant is priced in several.
    pub(crate) currency: Option<String>,
}

/// Where a price change goes: a book, its scope and currency, and the stores it reaches.
pub(crate) struct Target {
    pub(crate) book: String,
    pub(crate) scope: ScopeDto,
    pub(crate) currency: Currency,
    /// The book's version and scope as the change log holds it, when it exists.
    pub(crate) held: Option<(i64, PricesEntity)>,
    pub(crate) stores: Vec<StoreDto>,
}

/// The book a change goes to and the stores it reaches, among `all` the stores HQ holds.
pub(crate) fn target(
    all: &BTreeMap<String, StoreDto>,
    ask: &NewPriceChange,
    books: &BTreeMap<String, (i64, PricesEntity)>,
) -> ApiResult<Target> {
    if let Some(store) = &ask.store {
        let Some(dto) = all.get(store) else {
            return Err(invalid("store", format!("HQ holds no store `{store}`")));
        };
        let currency = Currency::parse(&dto.currency)
            .map_err(|e| invalid("store", format!("the store's currency: {e}")))?;
        if ask.currency.as_deref().is_some_and(|c| c != dto.currency) {
            return Err(invalid(
                "currency",
                format!("store `{store}` trades in {}", dto.currency),
            ));
        }
        let own = books.iter().find(|(_, (_, p))| {
            matches!(&p.scope, ScopeDto::Store { store: s } if s == store)
                && p.currency == dto.currency
        });
        let (book, held) = match own {
            Some((book, held)) => (book.clone(), Some(held.clone())),
            None => (format!("store-{store}"), None),
        };
        return Ok(Target {
            book,
            scope: ScopeDto::Store {
                store: store.clone(),
            },
            currency,
            held,
            stores: vec![dto.clone()],
        });
    }
    let chain_books: Vec<(&String, &(i64, PricesEntity))> = books
        .iter()
        .filter(|(_, (_, p))| matches!(&p.scope, ScopeDto::Chain(c) if c == "chain"))
        .filter(|(_, (_, p))| ask.currency.as_ref().is_none_or(|c| &p.currency == c))
        .collect();
    let (book, held, code) = match (chain_books.as_slice(), &ask.currency) {
        ([(book, held)], _) => (
            (*book).clone(),
            Some((*held).clone()),
            held.1.currency.clone(),
        ),
        ([], Some(code)) => (format!("chain-{}", code.to_lowercase()), None, code.clone()),
        ([], None) => {
            return Err(invalid(
                "currency",
                format!("`{}` has no chain price yet: name the currency", ask.sku),
            ));
        }
        (several, _) => {
            let codes: Vec<&str> = several
                .iter()
                .map(|(_, (_, p))| p.currency.as_str())
                .collect();
            return Err(invalid(
                "currency",
                format!(
                    "`{}` is priced in {}: name the currency",
                    ask.sku,
                    codes.join(" and ")
                ),
            ));
        }
    };
    let currency = Currency::parse(&code).map_err(|e| invalid("currency", e))?;
    let stores: Vec<StoreDto> = all
        .values()
        .filter(|s| s.currency == code)
        .cloned()
        .collect();
    if stores.is_empty() {
        return Err(invalid(
            "currency",
            format!("no store of the chain trades in {code}"),
        ));
    }
    Ok(Target {
        book,
        scope: ScopeDto::Chain("chain".into()),
        currency,
        held,
        stores,
    })
}

/// The instant a change takes effect, and the local date and time and zone it was given in.
pub(crate) fn effective(
    ask: &NewPriceChange,
    stores: &[StoreDto],
    now: i64,
) -> ApiResult<(i64, Option<(String, String)>)> {
    let Some(text) = ask.effective.as_deref().map(str::trim) else {
        return Ok((now, None));
    };
    let (at, local) = if let Ok(instant) = text.parse::<jiff::Timestamp>() {
        (instant.as_millisecond(), None)
    } else {
        let civil: jiff::civil::DateTime = text.parse().map_err(|_| {
            invalid(
                "effective",
                format!("`{text}` is neither an RFC 3339 instant nor a local date and time (2027-01-01T06:00)"),
            )
        })?;
        let mut zones: Vec<&str> = stores.iter().map(|s| s.timezone.as_str()).collect();
        zones.sort_unstable();
        zones.dedup();
        let zone = match zones.as_slice() {
            [zone] => *zone,
            [] => {
                return Err(invalid(
                    "effective",
                    "no store gets this price: give the instant with its offset",
                ));
            }
            several => {
                return Err(invalid(
                    "effective",
                    format!(
                        "the stores of this book are in {} time zones ({}): give the instant with its offset, or change each store",
                        several.len(),
                        several.join(", ")
                    ),
                ));
            }
        };
        let zoned = civil
            .in_tz(zone)
            .map_err(|e| invalid("effective", format!("`{text}` in {zone}: {e}")))?;
        (
            zoned.timestamp().as_millisecond(),
            Some((civil.to_string(), zone.to_owned())),
        )
    };
    if at < now {
        return Err(invalid(
            "effective",
            format!(
                "{} is in the past: a price change takes effect now or later",
                instant_text(at)
            ),
        ));
    }
    Ok((at, local))
}

/// The changes of `(book, sku)` in force (neither cancelled nor replaced), as domain changes
/// with their ids.
async fn active_changes(
    conn: &mut sqlx::AnyConnection,
    book: &str,
    sku: &str,
    currency: Currency,
) -> Result<Vec<(String, PriceChange)>, sqlx::Error> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT id, effective_ms, price_minor FROM price_changes
         WHERE book = $1 AND sku = $2 AND cancelled_ms IS NULL AND replaced_version IS NULL",
    )
    .bind(book)
    .bind(sku)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, at, minor)| {
            (
                id,
                PriceChange {
                    at: Timestamp::from_millis(at),
                    price: Money::from_minor(minor, currency),
                },
            )
        })
        .collect())
}

/// The base entries of `(book, sku)` and the changes in force on it. When the entries held
/// now are not what the base and those changes make (a publish or import rewrote them), the
/// entries now become the base and the changes are marked replaced by that version.
async fn base_and_changes(
    conn: &mut sqlx::AnyConnection,
    target: &Target,
    sku: &Sku,
) -> ApiResult<(Vec<PriceEntry>, Vec<(String, PriceChange)>)> {
    let held_entries: Vec<PriceEntry> = match &target.held {
        Some((_, entity)) => book_of(entity)
            .map_err(field_error)?
            .entries()
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    let stored: Option<String> =
        sqlx::query_scalar("SELECT entries FROM price_bases WHERE book = $1 AND sku = $2")
            .bind(&target.book)
            .bind(sku.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    let base: Option<Vec<PriceEntry>> = stored
        .and_then(|s| serde_json::from_str::<Vec<PriceEntryDto>>(&s).ok())
        .and_then(|entries| {
            let entity = PricesEntity {
                book: target.book.clone(),
                version: 0,
                scope: target.scope.clone(),
                currency: target.currency.code().to_owned(),
                sku: sku.to_string(),
                entries,
            };
            book_of(&entity)
                .ok()
                .map(|b| b.entries().cloned().collect())
        });
    let changes = active_changes(conn, &target.book, sku.as_str(), target.currency).await?;
    let only: Vec<PriceChange> = changes.iter().map(|(_, c)| *c).collect();
    match base {
        Some(base) if domain::pricebook::with_changes(sku, &base, &only) == held_entries => {
            Ok((base, changes))
        }
        _ => {
            if !changes.is_empty() {
                let replaced_by = target.held.as_ref().map_or(0, |(v, _)| *v);
                sqlx::query(
                    "UPDATE price_changes SET replaced_version = $1
                     WHERE book = $2 AND sku = $3 AND cancelled_ms IS NULL AND replaced_version IS NULL",
                )
                .bind(replaced_by)
                .bind(&target.book)
                .bind(sku.as_str())
                .execute(&mut *conn)
                .await?;
            }
            Ok((held_entries, Vec::new()))
        }
    }
}

/// What a change does at each store it reaches: its instant there, the price just before and
/// from then on (a store's own price wins over a chain change), its tills, and whether the
/// store has been sent the version that carries it.
async fn preview(
    conn: &mut sqlx::AnyConnection,
    sku: &Sku,
    books: &BTreeMap<String, (i64, PricesEntity)>,
    stores: &[StoreDto],
    at: i64,
    version: Option<i64>,
) -> ApiResult<Vec<Value>> {
    let built: Vec<Pricebook> = books
        .values()
        .filter_map(|(_, p)| book_of(p).ok())
        .collect();
    let mut out = Vec::new();
    for store in stores {
        let Ok(id) = StoreId::parse(&store.id) else {
            continue;
        };
        let Ok(currency) = Currency::parse(&store.currency) else {
            continue;
        };
        let price = |t: i64| {
            price_at(&built, &id, currency, sku, Timestamp::from_millis(t))
                .map(|m| m.amount_string())
        };
        let local = jiff::Timestamp::from_millisecond(at)
            .ok()
            .and_then(|t| t.in_tz(&store.timezone).ok())
            .map(|z| z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string());
        let terminals: Vec<String> =
            sqlx::query_scalar("SELECT id FROM terminals WHERE store = $1 ORDER BY id")
                .bind(&store.id)
                .fetch_all(&mut *conn)
                .await?;
        let sent: Option<Option<i64>> =
            sqlx::query_scalar("SELECT reference_version FROM stores WHERE id = $1")
                .bind(&store.id)
                .fetch_optional(&mut *conn)
                .await?;
        let sent = sent.flatten();
        out.push(json!({
            "store": store.id,
            "time_zone": store.timezone,
            "effective_local": local,
            "price_before": price(at.saturating_sub(1)),
            "price_after": price(at),
            "terminals": terminals,
            "sent_version": sent,
            "sent": match (version, sent) {
                (Some(v), Some(s)) => s >= v,
                _ => false,
            },
        }));
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleQuery {
    dry_run: Option<bool>,
}

/// `POST /v1/price-changes`: schedules a price change (`?dry_run=true`: only previews it).
pub(crate) async fn schedule(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(q): Query<ScheduleQuery>,
    body: Body,
) -> ApiResult<Response> {
    let actor = authorize(&hq, &headers, Scope::CatalogWrite, None, Access::Write).await?;
    let (ask, bytes): (NewPriceChange, _) = writes::json_body(&headers, body).await?;
    let dry_run = q.dry_run.unwrap_or(false);
    let key = if dry_run {
        None
    } else {
        match writes::idempotency(&hq, &headers, &actor, &[b"POST /v1/price-changes", &bytes])
            .await?
        {
            Ok(key) => key,
            Err(answer) => return Ok(answer),
        }
    };
    let sku = Sku::parse(&ask.sku).map_err(|e| invalid("sku", e))?;
    let now = now_ms();

    let (_guard, mut tx) = hq.db.begin_write().await?;
    let variant = writes::held(&mut tx, "variant", sku.as_str()).await?;
    if variant.and_then(|h| h.payload).is_none() {
        return Err(invalid("sku", format!("HQ holds no variant `{sku}`")));
    }
    let mut books = prices_of(&mut tx, sku.as_str()).await?;
    let all = stores(&mut tx).await?;
    let target = target(&all, &ask, &books)?;
    let price = Money::parse_major(&ask.price, target.currency).map_err(|e| invalid("price", e))?;
    if price.is_negative() {
        return Err(invalid("price", "a price must not be negative"));
    }
    let (at, local) = effective(&ask, &target.stores, now)?;
    let (base, changes) = base_and_changes(&mut tx, &target, &sku).await?;
    if changes.iter().any(|(_, c)| c.at.millis() == at) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "change_at_that_instant",
            format!(
                "a change of `{sku}` in {} takes effect at {} already: cancel it first",
                target.book,
                instant_text(at)
            ),
        )
        .at("effective"));
    }
    let mut all: Vec<PriceChange> = changes.iter().map(|(_, c)| *c).collect();
    all.push(PriceChange {
        at: Timestamp::from_millis(at),
        price,
    });
    let entries = domain::pricebook::with_changes(&sku, &base, &all);
    let (book_version, scope) = match &target.held {
        Some((_, p)) => (p.version, p.scope.clone()),
        None => (1, target.scope.clone()),
    };
    let entity = PricesEntity {
        book: target.book.clone(),
        version: book_version,
        scope,
        currency: target.currency.code().to_owned(),
        sku: sku.to_string(),
        entries: entry_dtos(&entries),
    };
    book_of(&entity).map_err(field_error)?;
    books.insert(target.book.clone(), (0, entity.clone()));

    let id = format!(
        "pc_{}",
        crate::random_hex(8)
            .map_err(|e| { ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e) })?
    );
    let version = if dry_run {
        None
    } else {
        let (_, version) = crate::refdata::next_version(&mut tx, hq.db.backend).await?;
        Some(version)
    };
    let stores = preview(&mut tx, &sku, &books, &target.stores, at, version).await?;
    let change = json!({
        "id": id,
        "sku": sku.as_str(),
        "book": target.book,
        "scope": target.scope,
        "currency": target.currency.code(),
        "price": price.amount_string(),
        "effective": instant_text(at),
        "effective_ms": at,
        "effective_local": local.as_ref().map(|(l, _)| l),
        "time_zone": local.as_ref().map(|(_, z)| z),
        "version": version,
        "status": if at <= now { "effective" } else { "scheduled" },
        "created_by": actor,
        "created_at": instant_text(now),
        "stores": stores,
    });
    let Some(version) = version else {
        return Ok(Json(json!({ "dry_run": true, "change": change })).into_response());
    };
    let payload = serde_json::to_string(&entity)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    crate::refdata::write_entities(
        &mut tx,
        hq.db.backend,
        version,
        vec![(
            "prices".into(),
            format!("{}|{sku}", target.book),
            Some(payload),
        )],
    )
    .await?;
    crate::refdata::set_version(&mut tx, version).await?;
    sqlx::query(
        "INSERT INTO price_bases (book, sku, entries) VALUES ($1, $2, $3)
         ON CONFLICT (book, sku) DO UPDATE SET entries = excluded.entries",
    )
    .bind(&target.book)
    .bind(sku.as_str())
    .bind(serde_json::to_string(&entry_dtos(&base)).unwrap_or_default())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO price_changes (id, sku, book, store, currency, price_minor, effective_ms, effective_local, time_zone, version, created_ms, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&id)
    .bind(sku.as_str())
    .bind(&target.book)
    .bind(ask.store.as_deref())
    .bind(target.currency.code())
    .bind(price.minor())
    .bind(at)
    .bind(local.as_ref().map(|(l, _)| l.clone()))
    .bind(local.as_ref().map(|(_, z)| z.clone()))
    .bind(version)
    .bind(now)
    .bind(&actor)
    .execute(&mut *tx)
    .await?;
    let target_name = format!("price-change:{id}");
    let after = change.to_string();
    Audit {
        at_ms: now,
        actor: &actor,
        source: None,
        action: "price.schedule",
        target: Some(&target_name),
        before: None,
        after: Some(&after),
    }
    .append(&mut tx)
    .await?;
    writes::remember(&key, &mut tx, StatusCode::CREATED, &change, now).await?;
    tx.commit().await?;
    hq.announce_version(version);
    Ok((StatusCode::CREATED, Json(change)).into_response())
}

/// Price changes matching `condition` on `value`, newest instant first, as the API shows them.
pub(crate) async fn changes_where(
    conn: &mut sqlx::AnyConnection,
    condition: &str,
    value: &str,
) -> Result<Vec<Value>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, sku, book, store, currency, price_minor, effective_ms, effective_local, time_zone,
                version, created_ms, created_by, cancelled_ms, cancelled_by, replaced_version
         FROM price_changes WHERE {condition} ORDER BY effective_ms DESC, id LIMIT 500"
    )))
    .bind(value)
    .fetch_all(conn)
    .await?;
    let now = now_ms();
    Ok(rows.iter().map(|r| change_json(r, now)).collect())
}

fn change_json(r: &sqlx::any::AnyRow, now: i64) -> Value {
    let at: i64 = r.get("effective_ms");
    let cancelled: Option<i64> = r.get("cancelled_ms");
    let replaced: Option<i64> = r.get("replaced_version");
    let currency: String = r.get("currency");
    let minor: i64 = r.get("price_minor");
    let price = Currency::parse(&currency)
        .map(|c| Money::from_minor(minor, c).amount_string())
        .unwrap_or_default();
    let store: Option<String> = r.get("store");
    let status = match (cancelled, replaced) {
        (Some(_), _) => "cancelled",
        (None, Some(_)) => "replaced",
        (None, None) if at <= now => "effective",
        (None, None) => "scheduled",
    };
    json!({
        "id": r.get::<String, _>("id"),
        "sku": r.get::<String, _>("sku"),
        "book": r.get::<String, _>("book"),
        "scope": match &store {
            Some(s) => json!({ "store": s }),
            None => json!("chain"),
        },
        "currency": currency,
        "price": price,
        "effective": instant_text(at),
        "effective_ms": at,
        "effective_local": r.get::<Option<String>, _>("effective_local"),
        "time_zone": r.get::<Option<String>, _>("time_zone"),
        "version": r.get::<i64, _>("version"),
        "status": status,
        "created_by": r.get::<String, _>("created_by"),
        "created_at": instant_text(r.get("created_ms")),
        "cancelled_by": r.get::<Option<String>, _>("cancelled_by"),
        "cancelled_at": cancelled.map(instant_text),
        "replaced_by_version": replaced,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangesQuery {
    sku: Option<String>,
}

/// `GET /v1/price-changes`: the price changes made through the API, of one SKU or all.
pub(crate) async fn list_changes(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(q): Query<ChangesQuery>,
) -> ApiResult<Json<Value>> {
    authorize(&hq, &headers, Scope::CatalogRead, None, Access::Read).await?;
    let mut conn = hq.db.pool.acquire().await?;
    let changes = match q.sku.as_deref().filter(|s| !s.is_empty()) {
        Some(sku) => changes_where(&mut conn, "sku = $1", sku).await?,
        None => changes_where(&mut conn, "$1 = ''", "").await?,
    };
    Ok(Json(json!({ "changes": changes })))
}

async fn one_change(conn: &mut sqlx::AnyConnection, id: &str) -> ApiResult<sqlx::any::AnyRow> {
    sqlx::query(
        "SELECT id, sku, book, store, currency, price_minor, effective_ms, effective_local, time_zone,
                version, created_ms, created_by, cancelled_ms, cancelled_by, replaced_version
         FROM price_changes WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no price change `{id}`"),
        )
        .at("id")
    })
}

/// `GET /v1/price-changes/{id}`: the change and, per store it reaches, its instant there, the
/// price before and after, the tills, and whether the store has been sent it.
pub(crate) async fn read_change(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    authorize(&hq, &headers, Scope::CatalogRead, None, Access::Read).await?;
    let mut conn = hq.db.pool.acquire().await?;
    let row = one_change(&mut conn, &id).await?;
    let mut change = change_json(&row, now_ms());
    let sku = Sku::parse(&row.get::<String, _>("sku"))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    let store: Option<String> = row.get("store");
    let currency: String = row.get("currency");
    let books = prices_of(&mut conn, sku.as_str()).await?;
    let reached: Vec<StoreDto> = stores(&mut conn)
        .await?
        .into_values()
        .filter(|s| match &store {
            Some(id) => &s.id == id,
            None => s.currency == currency,
        })
        .collect();
    let stores = preview(
        &mut conn,
        &sku,
        &books,
        &reached,
        row.get("effective_ms"),
        Some(row.get("version")),
    )
    .await?;
    if let Some(map) = change.as_object_mut() {
        map.insert("stores".into(), Value::Array(stores));
    }
    Ok(Json(change))
}

/// `DELETE /v1/price-changes/{id}`: cancels a change that has not taken effect; the SKU's
/// entries in its book become what the other changes make of its base.
pub(crate) async fn cancel(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let actor = authorize(&hq, &headers, Scope::CatalogWrite, None, Access::Write).await?;
    let key = match writes::idempotency(
        &hq,
        &headers,
        &actor,
        &[b"DELETE /v1/price-changes/", id.as_bytes()],
    )
    .await?
    {
        Ok(key) => key,
        Err(answer) => return Ok(answer),
    };
    let now = now_ms();
    let (_guard, mut tx) = hq.db.begin_write().await?;
    let row = one_change(&mut tx, &id).await?;
    let before = change_json(&row, now);
    let refuse =
        |code, message: String| Err(ApiError::new(StatusCode::CONFLICT, code, message).at("id"));
    match before["status"].as_str() {
        Some("cancelled") => {
            return refuse("already_cancelled", format!("{id} was cancelled already"));
        }
        Some("replaced") => {
            return refuse(
                "replaced",
                format!(
                    "{id} was replaced by a publish or import of its prices (version {})",
                    before["replaced_by_version"]
                ),
            );
        }
        Some("effective") => {
            return refuse(
                "already_effective",
                format!(
                    "{id} took effect at {}: schedule another change instead",
                    before["effective"].as_str().unwrap_or_default()
                ),
            );
        }
        _ => {}
    }
    let sku = Sku::parse(&row.get::<String, _>("sku"))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    let book: String = row.get("book");
    let currency = Currency::parse(&row.get::<String, _>("currency"))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    let books = prices_of(&mut tx, sku.as_str()).await?;
    let held = books.get(&book).cloned();
    let scope = match row.get::<Option<String>, _>("store") {
        Some(store) => ScopeDto::Store { store },
        None => ScopeDto::Chain("chain".into()),
    };
    let target = Target {
        book: book.clone(),
        scope,
        currency,
        held,
        stores: Vec::new(),
    };
    let (base, changes) = base_and_changes(&mut tx, &target, &sku).await?;
    if !changes.iter().any(|(c, _)| c == &id) {
        // The book was rewritten since: `base_and_changes` marked the change replaced.
        tx.commit().await?;
        return refuse(
            "replaced",
            format!("{id} was replaced by a publish or import of its prices"),
        );
    }
    let rest: Vec<PriceChange> = changes
        .iter()
        .filter(|(c, _)| c != &id)
        .map(|(_, c)| *c)
        .collect();
    let entries = domain::pricebook::with_changes(&sku, &base, &rest);
    let Some((_, entity)) = &target.held else {
        return refuse("replaced", format!("the prices of {id} were removed"));
    };
    let entity = PricesEntity {
        entries: entry_dtos(&entries),
        ..entity.clone()
    };
    let payload = serde_json::to_string(&entity)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    let (_, version) = crate::refdata::next_version(&mut tx, hq.db.backend).await?;
    crate::refdata::write_entities(
        &mut tx,
        hq.db.backend,
        version,
        vec![("prices".into(), format!("{book}|{sku}"), Some(payload))],
    )
    .await?;
    crate::refdata::set_version(&mut tx, version).await?;
    sqlx::query("UPDATE price_changes SET cancelled_ms = $1, cancelled_by = $2 WHERE id = $3")
        .bind(now)
        .bind(&actor)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    let after = change_json(&one_change(&mut tx, &id).await?, now);
    let target_name = format!("price-change:{id}");
    Audit {
        at_ms: now,
        actor: &actor,
        source: None,
        action: "price.cancel",
        target: Some(&target_name),
        before: Some(&before.to_string()),
        after: Some(&after.to_string()),
    }
    .append(&mut tx)
    .await?;
    writes::remember(&key, &mut tx, StatusCode::OK, &after, now).await?;
    tx.commit().await?;
    hq.announce_version(version);
    Ok(Json(after).into_response())
}
