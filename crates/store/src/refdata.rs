//! Reference data at the node: the store's configuration, tax rules, catalog and prices, kept
//! in SQLite and replaced whole in one transaction, and the look-ups the till makes against them.

use std::collections::{BTreeMap, HashMap};

use domain::barcode::EmbeddedValue;
use domain::catalog::{CatalogError, Lookup, Sku, TaxCategory, scan_plan};
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

/// What the node knows about its store: configuration, tax rules and an in-memory index of the
/// catalog and prices, so a scan is answered without touching the disk. A new version of the
/// reference data replaces the whole context at once.
#[derive(Debug, Clone)]
pub struct StoreContext {
    /// Configuration, tax jurisdiction and label layouts.
    pub config: StoreConfig,
    /// The reference data version.
    pub version: i64,
    catalog: CatalogIndex,
}

#[derive(Debug, Clone, Default)]
struct CatalogIndex {
    identifiers: HashMap<String, Sku>,
    variants: HashMap<Sku, VariantRow>,
    prices: HashMap<Sku, Vec<PriceRow>>,
}

#[derive(Debug, Clone)]
struct VariantRow {
    name: String,
    tax_category: TaxCategory,
    unit: UnitOfSale,
    sold_in_store: bool,
}

#[derive(Debug, Clone)]
struct PriceRow {
    book: String,
    version: u64,
    chain: bool,
    entry: PriceEntry,
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

/// Loads the store context (configuration, tax rules, catalog and prices) from the database.
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
    let catalog = load_catalog(pool, &config).await?;
    Ok(Some(StoreContext {
        config,
        version: row.get("version"),
        catalog,
    }))
}

async fn load_catalog(pool: &SqlitePool, config: &StoreConfig) -> Result<CatalogIndex, RefError> {
    let bad = |what: String| RefError::Stored(what);
    let mut index = CatalogIndex::default();
    for row in sqlx::query("SELECT sku, name, tax_category, unit, store_channel FROM variants")
        .fetch_all(pool)
        .await?
    {
        let sku_text: &str = row.get("sku");
        let sku = Sku::parse(sku_text).map_err(|e| bad(e.to_string()))?;
        let unit = UnitOfSale::parse(row.get("unit"))
            .ok_or_else(|| bad(format!("variant {sku}: unit")))?;
        let tax_category =
            TaxCategory::parse(row.get("tax_category")).map_err(|e| bad(e.to_string()))?;
        index.variants.insert(
            sku,
            VariantRow {
                name: row.get("name"),
                tax_category,
                unit,
                sold_in_store: row.get("store_channel"),
            },
        );
    }
    for row in sqlx::query("SELECT key, sku FROM identifiers")
        .fetch_all(pool)
        .await?
    {
        let sku = Sku::parse(row.get("sku")).map_err(|e| bad(e.to_string()))?;
        index.identifiers.insert(row.get("key"), sku);
    }
    for row in
        sqlx::query("SELECT book, version, scope, sku, price_minor, from_ms, to_ms FROM prices")
            .fetch_all(pool)
            .await?
    {
        let sku = Sku::parse(row.get("sku")).map_err(|e| bad(e.to_string()))?;
        let to: Option<i64> = row.get("to_ms");
        let version: i64 = row.get("version");
        index.prices.entry(sku.clone()).or_default().push(PriceRow {
            book: row.get("book"),
            version: u64::try_from(version).unwrap_or(0),
            chain: row.get::<&str, _>("scope") == "chain",
            entry: PriceEntry {
                sku,
                price: Money::from_minor(row.get("price_minor"), config.currency),
                from: Timestamp::from_millis(row.get("from_ms")),
                to: to.map(Timestamp::from_millis),
            },
        });
    }
    Ok(index)
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

impl StoreContext {
    /// Looks up what a cashier scanned or typed, with its price at `at`.
    pub fn lookup(&self, code: &str, at: Timestamp) -> Result<Item, CatalogError> {
        let plan = scan_plan(code, &self.config.layouts)?;
        for candidate in &plan.candidates {
            let sku = match &candidate.lookup {
                Lookup::Identifier(identifier) => self.catalog.identifiers.get(&identifier.key()),
                Lookup::Sku(sku) => Some(sku),
            };
            if let Some(mut item) = sku.and_then(|sku| self.variant(sku, at)) {
                item.embedded = candidate.embedded;
                return Ok(item);
            }
        }
        Err(plan.not_found(code))
    }

    /// The variant with this SKU, priced at `at`.
    pub fn variant(&self, sku: &Sku, at: Timestamp) -> Option<Item> {
        let row = self.catalog.variants.get(sku)?;
        Some(Item {
            sku: sku.clone(),
            name: row.name.clone(),
            unit: row.unit,
            tax_category: row.tax_category.clone(),
            price: self.price_of(sku, at),
            embedded: None,
            sold_in_store: row.sold_in_store,
        })
    }

    /// The price of `sku` at `at` by the domain's rule (store book over chain book).
    fn price_of(&self, sku: &Sku, at: Timestamp) -> Option<Money> {
        let rows = self.catalog.prices.get(sku)?;
        let currency = self.config.currency;
        let mut books: Vec<Pricebook> = Vec::new();
        let mut grouped: BTreeMap<(&str, u64, bool), Vec<PriceEntry>> = BTreeMap::new();
        for row in rows {
            grouped
                .entry((row.book.as_str(), row.version, row.chain))
                .or_default()
                .push(row.entry.clone());
        }
        for ((id, version, chain), entries) in grouped {
            let scope = if chain {
                Scope::Chain
            } else {
                Scope::Store(self.config.id.clone())
            };
            // The rows were validated as a whole book when they were loaded.
            if let Ok(book) = Pricebook::build(id, version, scope, currency, entries) {
                books.push(book);
            }
        }
        price_at(&books, &self.config.id, currency, sku, at)
    }

    /// Whether the catalog has this SKU.
    pub fn has_sku(&self, sku: &Sku) -> bool {
        self.catalog.variants.contains_key(sku)
    }
}
