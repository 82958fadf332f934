//! Reference data at the node: the store's configuration, tax rules, catalog and prices, kept
//! in SQLite and replaced whole in one transaction, and the look-ups the till makes against them.

use std::collections::{BTreeMap, HashMap};

use domain::barcode::EmbeddedValue;
use domain::catalog::{CatalogError, Lookup, Sku, TaxCategory, scan_plan};
use domain::pricebook::{PriceEntry, Pricebook, Scope, price_at};
use domain::{Money, StoreId, Timestamp, UnitOfSale};
use protocol::seed::{
    JurisdictionDto, PricebookDto, ScopeDto, SeedDto, StaffDto, StoreConfig, StoreDto,
};
use protocol::sync::{EntityChange, PricesEntity, ReferenceUpdate, VariantEntity};
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
    /// A local seed while the node follows HQ's change log.
    #[error(
        "this store takes its reference data from HQ ({url}, change log {log}, version {version}); a local seed would mix two version histories and HQ's later changes would be lost. Run `kassa store detach` first if the store is to stand alone"
    )]
    Attached {
        /// HQ's URL when the node attached.
        url: String,
        /// HQ's change log.
        log: String,
        /// The node's reference version in that log.
        version: i64,
    },
}

/// HQ's change log a node follows: its reference version counts in this log's versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HqLog {
    /// The log's identity (HQ's `kassa-reference-log` header).
    pub log: String,
    /// HQ's URL as the node last reached it.
    pub url: String,
    /// The identity of the pepper HQ keys published PIN hashes with, when HQ published it.
    pub pin_pepper: Option<String>,
}

/// The HQ change log the node follows, or `None` while its reference data is local (a seed
/// file, or nothing yet).
pub async fn hq_log(pool: &SqlitePool) -> Result<Option<HqLog>, RefError> {
    let row = sqlx::query("SELECT hq_log, hq_url, pin_pepper FROM reference_source")
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| HqLog {
        log: r.get("hq_log"),
        url: r.get("hq_url"),
        pin_pepper: r.get("pin_pepper"),
    }))
}

/// Stops following HQ's change log: the reference data stays, and a local seed is accepted
/// again; the next start with HQ attaches anew and takes HQ's snapshot. Answers the log left.
pub async fn detach(pool: &SqlitePool) -> Result<Option<HqLog>, RefError> {
    let held = hq_log(pool).await?;
    sqlx::query("DELETE FROM reference_source")
        .execute(pool)
        .await?;
    Ok(held)
}

/// Why staff PINs published by HQ cannot be checked here, if they cannot: HQ keyed their hashes
/// with a pepper whose identity differs from this node's.
pub fn pin_pepper_problem(log: Option<&HqLog>, own_pepper: &[u8]) -> Option<String> {
    let hq = log?.pin_pepper.as_deref()?;
    (hq != protocol::pin::pepper_id(own_pepper)).then(|| {
        "this store cannot check PINs published by HQ: give it HQ's pin.pepper (`kassa store provision --pin-pepper-file FILE`, the file HQ keeps in keys/pin.pepper)".to_owned()
    })
}

/// What the node knows about its store: configuration, tax rules and an in-memory index of the
/// catalog and prices, so a scan is answered without touching the disk. A new version of the
/// reference data replaces the whole context at once.
#[derive(Debug, Clone)]
pub struct StoreContext {
    /// Configuration, tax jurisdiction and label layouts.
    pub config: StoreConfig,
    /// The till's quick-key pages as HQ configured them (checked against the catalog when
    /// published); empty: the till offers the items with a PLU.
    pub quick_keys: Vec<protocol::seed::QuickKeyPageDto>,
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
    open_price: bool,
}

#[derive(Debug, Clone)]
struct PriceRow {
    book: String,
    version: u64,
    chain: bool,
    entry: PriceEntry,
}

/// A value bound into a batched insert.
enum Arg {
    Text(String),
    Int(i64),
    OptInt(Option<i64>),
}

/// Inserts rows in statements of up to 25 rows (SQLite slows down sharply with many parameters
/// per statement; see `hq::db::Backend::rows_per_statement`): one round trip per statement instead of one
/// per row keeps a 300,000-variant snapshot within seconds.
async fn insert_rows(
    conn: &mut sqlx::SqliteConnection,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<Arg>>,
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(25) {
        let mut n = 0;
        let values: Vec<String> = chunk
            .iter()
            .map(|row| {
                let marks: Vec<String> = row
                    .iter()
                    .map(|_| {
                        n += 1;
                        format!("${n}")
                    })
                    .collect();
                format!("({})", marks.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {}",
            columns.join(", "),
            values.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            for arg in row {
                query = match arg {
                    Arg::Text(t) => query.bind(t.clone()),
                    Arg::Int(i) => query.bind(*i),
                    Arg::OptInt(i) => query.bind(*i),
                };
            }
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Replaces the node's reference data with `seed` (a snapshot), whole or not at all.
pub async fn apply_seed(
    pool: &SqlitePool,
    seed: &SeedDto,
    store: &StoreId,
    pepper: &[u8],
) -> Result<i64, RefError> {
    // Validate the whole set first, as HQ does before it publishes.
    seed.parse()?;
    if let Some(log) = hq_log(pool).await? {
        let version: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM reference_meta")
                .fetch_one(pool)
                .await?;
        return Err(RefError::Attached {
            url: log.url,
            log: log.log,
            version,
        });
    }
    let current: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM reference_meta")
        .fetch_one(pool)
        .await?;
    let update = ReferenceUpdate {
        format: protocol::sync::REFERENCE_FORMAT.into(),
        from_version: 0,
        to_version: current + 1,
        entities: protocol::sync::entities_of(seed)
            .into_iter()
            .map(|((kind, key), payload)| EntityChange {
                kind,
                key,
                payload: Some(payload),
            })
            .collect(),
    };
    apply_update(pool, store, &update, pepper).await
}

fn entity<T: serde::de::DeserializeOwned>(
    change: &EntityChange,
    payload: &serde_json::Value,
) -> Result<T, RefError> {
    serde_json::from_value(payload.clone()).map_err(|e| {
        RefError::Invalid(protocol::FieldError::new(
            format!("{} {}", change.kind, change.key),
            e,
        ))
    })
}

/// Applies a reference update from a seed file in one transaction: all of it or none. An update
/// from version 0 is a snapshot and replaces everything.
pub async fn apply_update(
    pool: &SqlitePool,
    store: &StoreId,
    update: &ReferenceUpdate,
    pepper: &[u8],
) -> Result<i64, RefError> {
    apply(pool, store, update, pepper, None).await
}

/// Applies a reference update from HQ's change log `from` in one transaction, recording in the
/// same transaction that the node's version counts in that log (and which pepper HQ's PIN
/// hashes need). An update from version 0 is a snapshot and replaces everything.
pub async fn apply_hq_update(
    pool: &SqlitePool,
    store: &StoreId,
    update: &ReferenceUpdate,
    pepper: &[u8],
    from: &HqLog,
) -> Result<i64, RefError> {
    apply(pool, store, update, pepper, Some(from)).await
}

async fn apply(
    pool: &SqlitePool,
    store: &StoreId,
    update: &ReferenceUpdate,
    pepper: &[u8],
    from: Option<&HqLog>,
) -> Result<i64, RefError> {
    let mut tx = pool.begin().await?;
    let meta = sqlx::query("SELECT store_config, jurisdiction FROM reference_meta")
        .fetch_optional(&mut *tx)
        .await?;
    let mut store_json: Option<serde_json::Value> = None;
    let mut jurisdiction_json: Option<serde_json::Value> = None;
    if update.from_version != 0 {
        if let Some(row) = &meta {
            store_json = serde_json::from_str(row.get::<&str, _>("store_config")).ok();
            jurisdiction_json = serde_json::from_str(row.get::<&str, _>("jurisdiction")).ok();
        }
    } else {
        for table in [
            "reference_meta",
            "variants",
            "identifiers",
            "prices",
            "staff",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await?;
        }
    }
    if let Some(change) = update
        .entities
        .iter()
        .find(|c| c.kind == "store" && c.key == store.as_str())
    {
        store_json = change.payload.clone();
    }
    let store_dto: StoreDto = match &store_json {
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| RefError::Stored(e.to_string()))?
        }
        None => return Err(RefError::NoStore(store.clone())),
    };
    if let Some(change) = update
        .entities
        .iter()
        .find(|c| c.kind == "jurisdiction" && c.key == store_dto.jurisdiction)
    {
        jurisdiction_json = change.payload.clone();
    }
    let jurisdiction_dto: JurisdictionDto = match &jurisdiction_json {
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| RefError::Stored(e.to_string()))?
        }
        None => return Err(RefError::NoStore(store.clone())),
    };
    // Both must build, or the store would be left unable to price. (Quick keys were checked
    // against the whole catalog when HQ published them.)
    let check = SeedDto {
        format: protocol::seed::FORMAT.to_owned(),
        jurisdictions: vec![jurisdiction_dto.clone()],
        stores: vec![StoreDto {
            quick_keys: Vec::new(),
            ..store_dto.clone()
        }],
        products: vec![],
        pricebooks: vec![],
        staff: vec![],
        categories: vec![],
    };
    let config = check.parse()?.stores.pop().ok_or(RefError::NotLoaded)?;
    let mut variant_rows = Vec::new();
    let mut identifier_rows = Vec::new();
    let mut price_rows = Vec::new();
    let mut staff_rows = Vec::new();
    // The pepper identity HQ published: `None` leaves the recorded one, except in a snapshot,
    // which says everything.
    let mut pin_pepper: Option<Option<String>> = (update.from_version == 0).then_some(None);
    for change in &update.entities {
        match change.kind.as_str() {
            protocol::sync::PIN_PEPPER_KIND => {
                pin_pepper = Some(
                    change
                        .payload
                        .as_ref()
                        .and_then(|p| p["id"].as_str())
                        .map(str::to_owned),
                );
            }
            "variant" => {
                if update.from_version != 0 {
                    for table in ["variants", "identifiers"] {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DELETE FROM {table} WHERE sku = $1"
                        )))
                        .bind(&change.key)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                let Some(payload) = &change.payload else {
                    continue;
                };
                let v: VariantEntity = entity(change, payload)?;
                let variant = v.variant.parse(&format!("variant {}", change.key))?;
                variant_rows.push(vec![
                    Arg::Text(variant.sku().to_string()),
                    Arg::Text(v.product_id.clone()),
                    Arg::Text(variant.name().to_owned()),
                    Arg::Text(variant.tax_category().to_string()),
                    Arg::Text(variant.unit().as_str().to_owned()),
                    Arg::Int(i64::from(variant.channels().store)),
                    Arg::Int(i64::from(variant.channels().online)),
                    Arg::Int(i64::from(v.variant.open_price)),
                ]);
                for identifier in variant.identifiers() {
                    identifier_rows.push(vec![
                        Arg::Text(identifier.key()),
                        Arg::Text(variant.sku().to_string()),
                    ]);
                }
            }
            "prices" => {
                if update.from_version != 0 {
                    if let Some((book, sku)) = change.key.split_once('|') {
                        sqlx::query("DELETE FROM prices WHERE book = $1 AND sku = $2")
                            .bind(book)
                            .bind(sku)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                let Some(payload) = &change.payload else {
                    continue;
                };
                let p: PricesEntity = entity(change, payload)?;
                let scope = match &p.scope {
                    ScopeDto::Store { store: s } if s == store.as_str() => s.clone(),
                    ScopeDto::Chain(c) if c == "chain" => "chain".to_owned(),
                    _ => continue,
                };
                if p.currency != config.currency.code() {
                    continue;
                }
                let book = PricebookDto {
                    id: p.book.clone(),
                    version: p.version,
                    scope: p.scope.clone(),
                    currency: p.currency.clone(),
                    entries: p.entries.clone(),
                }
                .parse(&format!("prices {}", change.key))?;
                for e in book.entries() {
                    price_rows.push(vec![
                        Arg::Text(p.book.clone()),
                        Arg::Int(i64::try_from(p.version).unwrap_or(i64::MAX)),
                        Arg::Text(scope.clone()),
                        Arg::Text(e.sku.to_string()),
                        Arg::Int(e.price.minor()),
                        Arg::Int(e.from.millis()),
                        Arg::OptInt(e.to.map(|t| t.millis())),
                    ]);
                }
            }
            protocol::sync::ORDER_KIND => {
                let Some(payload) = &change.payload else {
                    sqlx::query("DELETE FROM web_orders WHERE id = $1")
                        .bind(&change.key)
                        .execute(&mut *tx)
                        .await?;
                    continue;
                };
                let order: protocol::sync::OrderEntity = entity(change, payload)?;
                if order.store != store.as_str() {
                    continue;
                }
                // What the tills did stays: HQ's state is the latest it has heard.
                sqlx::query(
                    "INSERT INTO web_orders (id, number, status, payload) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (id) DO UPDATE SET status = excluded.status, payload = excluded.payload",
                )
                .bind(&order.id)
                .bind(&order.number)
                .bind(&order.status)
                .bind(payload.to_string())
                .execute(&mut *tx)
                .await?;
            }
            protocol::sync::WEB_RETURN_KIND => {
                let Some(payload) = &change.payload else {
                    continue;
                };
                let ret: protocol::sync::WebReturnEntity = entity(change, payload)?;
                if ret.sale_store != store.as_str() && ret.receive_at != store.as_str() {
                    continue;
                }
                crate::web_returns::keep(&mut tx, &ret, payload).await?;
            }
            "staff" => {
                sqlx::query("DELETE FROM staff WHERE id = $1")
                    .bind(&change.key)
                    .execute(&mut *tx)
                    .await?;
                let Some(payload) = &change.payload else {
                    continue;
                };
                let member: StaffDto = entity(change, payload)?;
                let path = format!("staff {}", change.key);
                member.check(&path)?;
                // A PIN in clear (a local seed file) is hashed here and goes no further.
                let member = member
                    .hashed(pepper)
                    .map_err(|e| RefError::Stored(e.to_string()))?;
                staff_rows.push(vec![
                    Arg::Text(member.id),
                    Arg::Text(member.name),
                    Arg::Text(member.role),
                    Arg::Text(member.pin_hash.unwrap_or_default()),
                ]);
            }
            _ => {}
        }
    }
    insert_rows(
        &mut tx,
        "staff",
        &["id", "name", "role", "pin_hash"],
        staff_rows,
    )
    .await?;
    insert_rows(
        &mut tx,
        "variants",
        &[
            "sku",
            "product_id",
            "name",
            "tax_category",
            "unit",
            "store_channel",
            "online_channel",
            "open_price",
        ],
        variant_rows,
    )
    .await?;
    insert_rows(&mut tx, "identifiers", &["key", "sku"], identifier_rows).await?;
    insert_rows(
        &mut tx,
        "prices",
        &[
            "book",
            "version",
            "scope",
            "sku",
            "price_minor",
            "from_ms",
            "to_ms",
        ],
        price_rows,
    )
    .await?;
    sqlx::query("DELETE FROM reference_meta")
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO reference_meta (singleton, version, store_config, jurisdiction) VALUES (1, $1, $2, $3)")
        .bind(update.to_version)
        .bind(serde_json::to_string(&store_dto).map_err(|e| RefError::Stored(e.to_string()))?)
        .bind(serde_json::to_string(&jurisdiction_dto).map_err(|e| RefError::Stored(e.to_string()))?)
        .execute(&mut *tx)
        .await?;
    if let Some(from) = from {
        let kept: Option<Option<String>> =
            sqlx::query_scalar("SELECT pin_pepper FROM reference_source WHERE hq_log = $1")
                .bind(&from.log)
                .fetch_optional(&mut *tx)
                .await?;
        let pin_pepper = pin_pepper.unwrap_or_else(|| kept.flatten());
        sqlx::query(
            "INSERT INTO reference_source (singleton, hq_log, hq_url, pin_pepper) VALUES (1, $1, $2, $3)
             ON CONFLICT (singleton) DO UPDATE SET hq_log = excluded.hq_log, hq_url = excluded.hq_url, pin_pepper = excluded.pin_pepper",
        )
        .bind(&from.log)
        .bind(&from.url)
        .bind(pin_pepper)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(update.to_version)
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
    let mut store: StoreDto =
        serde_json::from_str(row.get::<&str, _>("store_config")).map_err(stored)?;
    // Checked against the catalog when they were published; this set has no catalog.
    let quick_keys = std::mem::take(&mut store.quick_keys);
    let jurisdiction: JurisdictionDto =
        serde_json::from_str(row.get::<&str, _>("jurisdiction")).map_err(stored)?;
    let seed = SeedDto {
        format: protocol::seed::FORMAT.to_owned(),
        jurisdictions: vec![jurisdiction],
        stores: vec![store],
        products: vec![],
        pricebooks: vec![],
        staff: vec![],
        categories: vec![],
    };
    let mut parsed = seed.parse()?;
    let config = parsed.stores.pop().ok_or(RefError::NotLoaded)?;
    let catalog = load_catalog(pool, &config).await?;
    Ok(Some(StoreContext {
        config,
        quick_keys,
        version: row.get("version"),
        catalog,
    }))
}

async fn load_catalog(pool: &SqlitePool, config: &StoreConfig) -> Result<CatalogIndex, RefError> {
    let bad = |what: String| RefError::Stored(what);
    let mut index = CatalogIndex::default();
    for row in
        sqlx::query("SELECT sku, name, tax_category, unit, store_channel, open_price FROM variants")
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
                open_price: row.get("open_price"),
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
    /// Whether the cashier types its price (a department key).
    pub open_price: bool,
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
            open_price: row.open_price,
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

    /// Variants sold in the store whose name contains `query` (any case) or whose SKU starts
    /// with it, in SKU order, at most `limit`, priced at `at`.
    pub fn search(&self, query: &str, at: Timestamp, limit: usize) -> Vec<Item> {
        let needle = query.trim().to_lowercase();
        if needle.is_empty() {
            return Vec::new();
        }
        let sku_prefix = needle.to_uppercase();
        let mut found: Vec<&Sku> = self
            .catalog
            .variants
            .iter()
            .filter(|(sku, row)| {
                row.sold_in_store
                    && (sku.as_str().starts_with(&sku_prefix)
                        || row.name.to_lowercase().contains(&needle))
            })
            .map(|(sku, _)| sku)
            .collect();
        found.sort();
        found
            .into_iter()
            .take(limit)
            .filter_map(|sku| self.variant(sku, at))
            .collect()
    }

    /// Variants sold in the store that have a PLU, in SKU order, at most `limit`, each with its
    /// PLU: what the till offers as quick keys (loose produce, bakery, deli counter).
    pub fn plu_items(&self, at: Timestamp, limit: usize) -> Vec<(String, Item)> {
        let mut found: Vec<(&Sku, &str)> = self
            .catalog
            .identifiers
            .iter()
            .filter_map(|(key, sku)| key.strip_prefix("plu:").map(|plu| (sku, plu)))
            .filter(|(sku, _)| {
                self.catalog
                    .variants
                    .get(*sku)
                    .is_some_and(|row| row.sold_in_store)
            })
            .collect();
        found.sort();
        found.dedup_by(|a, b| a.0 == b.0);
        found
            .into_iter()
            .take(limit)
            .filter_map(|(sku, plu)| self.variant(sku, at).map(|item| (plu.to_owned(), item)))
            .collect()
    }
}
