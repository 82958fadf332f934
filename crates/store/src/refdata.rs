//! Reference data at the node: the store's configuration, tax rules, catalog and prices, kept
//! in SQLite and replaced whole in one transaction, and the look-ups the till makes against them.

use std::sync::Arc;

use domain::barcode::EmbeddedValue;
use domain::catalog::{Identifier, Lookup, Sku, TaxCategory, scan_plan};
use domain::pricebook::{PriceEntry, Pricebook, Scope, price_at};
use domain::{Money, StoreId, Timestamp, UnitOfSale};
use protocol::seed::{JurisdictionDto, SeedDto, StoreConfig, StoreDto};
use sqlx::{Row, SqlitePool};

/// Errors from loading or reading reference data.
#[derive(Debug, thiserror::Error)]
pub enum RefError {
    /// The file does not validate.
    #[error("reference data: {0}")]
    Invalid(#[from] protocol::FieldError),
    /// The file has no configuration for this node's store.
    #[error("reference data has no store `{0}`")]
    NoStore(StoreId),
    /// Nothing has been loaded yet.
    #[error("no reference data loaded yet: run `kassa store seed` or connect the node to HQ")]
    NotLoaded,
    /// SQLite failed.
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// Stored JSON could not be read back.
    #[error("stored reference data is unreadable: {0}")]
    Stored(String),
}

/// What the node knows about its store: configuration and tax rules, ready for pricing.
#[derive(Debug, Clone)]
pub struct StoreContext {
    /// Configuration, tax jurisdiction and label layouts.
    pub config: StoreConfig,
    /// The reference data version.
    pub version: i64,
}

/// Replaces the node's reference data with the parts of `seed` that concern `store`, in one
/// transaction: either all of it is applied or none.
pub async fn apply_seed(
    pool: &SqlitePool,
    seed: &SeedDto,
    store: &StoreId,
) -> Result<i64, RefError> {
    let parsed = seed.parse()?;
    let config = parsed
        .stores
        .iter()
        .find(|s| &s.id == store)
        .ok_or_else(|| RefError::NoStore(store.clone()))?;
    let store_dto: &StoreDto = seed
        .stores
        .iter()
        .find(|s| s.id == store.as_str())
        .ok_or_else(|| RefError::NoStore(store.clone()))?;
    let jurisdiction_dto: &JurisdictionDto = seed
        .jurisdictions
        .iter()
        .find(|j| j.code == store_dto.jurisdiction)
        .ok_or_else(|| RefError::NoStore(store.clone()))?;
    let mut tx = pool.begin().await?;
    let (version,): (i64,) =
        sqlx::query_as("SELECT COALESCE(MAX(version), 0) + 1 FROM reference_meta")
            .fetch_one(&mut *tx)
            .await?;
    for table in ["reference_meta", "variants", "identifiers", "prices"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO reference_meta (singleton, version, store_config, jurisdiction) VALUES (1, $1, $2, $3)",
    )
    .bind(version)
    .bind(serde_json::to_string(store_dto).map_err(|e| RefError::Stored(e.to_string()))?)
    .bind(serde_json::to_string(jurisdiction_dto).map_err(|e| RefError::Stored(e.to_string()))?)
    .execute(&mut *tx)
    .await?;
    for product in parsed.catalog.products() {
        for variant in product.variants() {
            sqlx::query(
                "INSERT INTO variants (sku, product_id, name, tax_category, unit, store_channel, online_channel)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(variant.sku().as_str())
            .bind(product.id())
            .bind(variant.name())
            .bind(variant.tax_category().as_str())
            .bind(variant.unit().as_str())
            .bind(variant.channels().store)
            .bind(variant.channels().online)
            .execute(&mut *tx)
            .await?;
            for identifier in variant.identifiers() {
                sqlx::query("INSERT INTO identifiers (key, sku) VALUES ($1, $2)")
                    .bind(identifier.key())
                    .bind(variant.sku().as_str())
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    for book in &parsed.pricebooks {
        let scope = match book.scope() {
            Scope::Chain => "chain".to_owned(),
            Scope::Store(s) if s == store => s.to_string(),
            Scope::Store(_) => continue,
        };
        if book.currency() != config.currency {
            continue;
        }
        for entry in book.entries() {
            sqlx::query(
                "INSERT INTO prices (book, version, scope, sku, price_minor, from_ms, to_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(book.id())
            .bind(i64::try_from(book.version()).unwrap_or(i64::MAX))
            .bind(&scope)
            .bind(entry.sku.as_str())
            .bind(entry.price.minor())
            .bind(entry.from.millis())
            .bind(entry.to.map(|t| t.millis()))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(version)
}

/// Loads the store context (configuration and tax rules) from the database.
pub async fn load_context(pool: &SqlitePool) -> Result<Option<StoreContext>, RefError> {
    let row = sqlx::query("SELECT version, store_config, jurisdiction FROM reference_meta")
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let stored = |e: serde_json::Error| RefError::Stored(e.to_string());
    let store: StoreDto =
        serde_json::from_str(row.get::<&str, _>("store_config")).map_err(stored)?;
    let jurisdiction: JurisdictionDto =
        serde_json::from_str(row.get::<&str, _>("jurisdiction")).map_err(stored)?;
    let seed = SeedDto {
        format: protocol::seed::FORMAT.to_owned(),
        jurisdictions: vec![jurisdiction],
        stores: vec![store],
        products: vec![],
        pricebooks: vec![],
    };
    let mut parsed = seed.parse()?;
    let config = parsed.stores.pop().ok_or(RefError::NotLoaded)?;
    Ok(Some(StoreContext {
        config,
        version: row.get("version"),
    }))
}

/// A variant as the till sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// SKU.
    pub sku: Sku,
    /// Name.
    pub name: String,
    /// How it is sold.
    pub unit: UnitOfSale,
    /// Tax category.
    pub tax_category: TaxCategory,
    /// The price in force now, if it has one.
    pub price: Option<Money>,
    /// A price or weight embedded in a scanned scale label.
    pub embedded: Option<EmbeddedValue>,
    /// Whether it may be sold at the till.
    pub sold_in_store: bool,
}

/// Errors from looking an item up.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The code matches nothing, or is a broken barcode.
    #[error(transparent)]
    Catalog(#[from] domain::catalog::CatalogError),
    /// Reading failed.
    #[error(transparent)]
    Ref(#[from] RefError),
}

impl From<sqlx::Error> for LookupError {
    fn from(e: sqlx::Error) -> Self {
        LookupError::Ref(RefError::Sqlx(e))
    }
}

/// Looks up what a cashier scanned or typed, with its price at `at`.
pub async fn lookup(
    pool: &SqlitePool,
    ctx: &Arc<StoreContext>,
    code: &str,
    at: Timestamp,
) -> Result<Item, LookupError> {
    let plan = scan_plan(code, &ctx.config.layouts)?;
    for candidate in &plan.candidates {
        let sku: Option<String> = match &candidate.lookup {
            Lookup::Identifier(identifier) => {
                sqlx::query_scalar("SELECT sku FROM identifiers WHERE key = $1")
                    .bind(identifier_key(identifier))
                    .fetch_optional(pool)
                    .await?
            }
            Lookup::Sku(sku) => Some(sku.to_string()),
        };
        let Some(sku) = sku else { continue };
        if let Some(mut item) = variant(pool, ctx, &sku, at).await? {
            item.embedded = candidate.embedded;
            return Ok(item);
        }
    }
    Err(LookupError::Catalog(plan.not_found(code)))
}

fn identifier_key(identifier: &Identifier) -> String {
    identifier.key()
}

/// The variant with this SKU, priced at `at`.
pub async fn variant(
    pool: &SqlitePool,
    ctx: &Arc<StoreContext>,
    sku: &str,
    at: Timestamp,
) -> Result<Option<Item>, LookupError> {
    let row = sqlx::query(
        "SELECT sku, name, tax_category, unit, store_channel FROM variants WHERE sku = $1",
    )
    .bind(sku)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let stored = |what: &str| LookupError::Ref(RefError::Stored(format!("variant {sku}: {what}")));
    let sku = Sku::parse(row.get("sku")).map_err(|_| stored("sku"))?;
    let price = price_of(pool, ctx, &sku, at).await?;
    Ok(Some(Item {
        name: row.get("name"),
        unit: UnitOfSale::parse(row.get("unit")).ok_or_else(|| stored("unit"))?,
        tax_category: TaxCategory::parse(row.get("tax_category"))
            .map_err(|_| stored("tax category"))?,
        price,
        embedded: None,
        sold_in_store: row.get("store_channel"),
        sku,
    }))
}

/// The price of `sku` at `at` by the domain's rule (store book over chain book).
async fn price_of(
    pool: &SqlitePool,
    ctx: &Arc<StoreContext>,
    sku: &Sku,
    at: Timestamp,
) -> Result<Option<Money>, LookupError> {
    let rows = sqlx::query(
        "SELECT book, version, scope, price_minor, from_ms, to_ms FROM prices WHERE sku = $1",
    )
    .bind(sku.as_str())
    .fetch_all(pool)
    .await?;
    let currency = ctx.config.currency;
    let mut books: Vec<Pricebook> = Vec::new();
    let mut by_book: std::collections::BTreeMap<(String, i64, String), Vec<PriceEntry>> =
        std::collections::BTreeMap::new();
    for row in rows {
        let to: Option<i64> = row.get("to_ms");
        by_book
            .entry((row.get("book"), row.get("version"), row.get("scope")))
            .or_default()
            .push(PriceEntry {
                sku: sku.clone(),
                price: Money::from_minor(row.get("price_minor"), currency),
                from: Timestamp::from_millis(row.get("from_ms")),
                to: to.map(Timestamp::from_millis),
            });
    }
    for ((id, version, scope), entries) in by_book {
        let scope = if scope == "chain" {
            Scope::Chain
        } else {
            Scope::Store(ctx.config.id.clone())
        };
        let book = Pricebook::build(
            &id,
            u64::try_from(version).unwrap_or(0),
            scope,
            currency,
            entries,
        )
        .map_err(|e| RefError::Stored(e.to_string()))?;
        books.push(book);
    }
    Ok(price_at(&books, &ctx.config.id, currency, sku, at))
}
