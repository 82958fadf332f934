//! Store → HQ sync under faults, with real `kassa` processes on 127.0.0.1 and each store's link
//! to HQ running through a fault proxy: HQ down while three stores sell, SIGKILL of store and HQ
//! in the middle of pushes and ingest, a link that cuts, drops and crawls, a store whose clock
//! is two hours behind, a batch HQ cannot verify, a stock count made while earlier sales were
//! still unsynced, and two HQ processes serving one PostgreSQL database while the stores move
//! between them and one dies. Every scenario ends with "every acknowledged sale is at HQ
//! exactly once".
//!
//! Every scenario runs on SQLite (`_sqlite`) and on PostgreSQL (`_postgres`) — the one with two
//! HQ processes on PostgreSQL only — on the server `KASSA_TEST_POSTGRES` names, else the local
//! one at 127.0.0.1:5432; each such run creates a fresh database. Without a server the
//! PostgreSQL variants fail, unless the run allows skipping (`test_support::skip`).
#![allow(clippy::unwrap_used)] // Test code: a panic is a test failure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use domain::quantity::parse_signed_milli;
use serde_json::{Value, json};
use sqlx::{Connection, Row};
use test_support::chain::{
    Chain, ChainSpec, HqDatabase, StoreSpec, addr_of, kassa_cli, spawn_chain,
};
use test_support::proxy::FaultProxy;
use test_support::{Rng, client};
use tokio::sync::Mutex;

const BREAD: &str = "9003909062415";
const BREAD_SKU: &str = "GRO-BRD-0012";
const TEE: &str = "CLO-TEE-0001-XS-WEI";
/// A scale label: 1.250 kg of bananas (PLU 4011).
const BANANAS: &str = "2104011012507";
const BANANAS_SKU: &str = "GRO-FRU-0001";

const SYNC_TIMEOUT: Duration = Duration::from_secs(120);

fn kassa() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kassa"))
}

fn test_seed() -> u64 {
    std::env::var("KASSA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()))
}

// ---------------------------------------------------------------------------------------------
// HQ's database: SQLite in the test's directory, or a fresh PostgreSQL database.

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A PostgreSQL database made for one test, dropped by [`HqDb::cleanup`].
struct HqDb {
    database: HqDatabase,
    postgres: Option<(String, String)>,
}

impl HqDb {
    /// Drops the PostgreSQL database (best effort; every process using it must be gone).
    async fn cleanup(self) {
        if let Some((admin, name)) = self.postgres {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await;
            }
        }
    }
}

/// HQ's database for `backend`, or `None` when PostgreSQL is not configured (outside CI).
async fn hq_db(backend: Backend, root: &Path, test: &str) -> Option<HqDb> {
    match backend {
        Backend::Sqlite => Some(HqDb {
            database: HqDatabase::Sqlite(root.join("hq")),
            postgres: None,
        }),
        Backend::Postgres => {
            let admin =
                test_support::skip::postgres_url(&format!("the PostgreSQL variant of {test}"))
                    .await?;
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let name = format!(
                "kassa_s_{:x}{:x}{:x}",
                nanos & 0xffff_ffff_ffff,
                std::process::id(),
                NEXT.fetch_add(1, Ordering::SeqCst)
            );
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {admin}: {e}"));
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
            let (path, query) = admin.split_once('?').unwrap_or((admin.as_str(), ""));
            let (server, _) = path.rsplit_once('/').unwrap();
            let mut url = format!("{server}/{name}");
            if !query.is_empty() {
                url = format!("{url}?{query}");
            }
            Some(HqDb {
                database: HqDatabase::Postgres(url),
                postgres: Some((admin, name)),
            })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sales.

/// The basket of sale `k`: request lines and the stock each takes (sku, thousandths).
fn basket(k: u64) -> (Vec<Value>, Vec<(&'static str, i64)>) {
    match k % 4 {
        0 => (
            vec![json!({"code": BREAD, "quantity": "1"})],
            vec![(BREAD_SKU, 1000)],
        ),
        1 => (
            vec![
                json!({"code": BREAD, "quantity": "2"}),
                json!({"code": TEE, "quantity": "1"}),
            ],
            vec![(BREAD_SKU, 2000), (TEE, 1000)],
        ),
        2 => (
            vec![json!({"code": BANANAS}), json!({"code": BREAD})],
            vec![(BANANAS_SKU, 1250), (BREAD_SKU, 1000)],
        ),
        _ => (
            vec![json!({"code": TEE, "quantity": "1"})],
            vec![(TEE, 1000)],
        ),
    }
}

/// The request of sale `k` on `terminal`; the same every time, so a retry sends the same body.
fn sale_body(k: u64, terminal: &str) -> Value {
    json!({
        "terminal": terminal,
        "lines": basket(k).0,
        // Generous cash: enough in EUR and in CHF.
        "tenders": [{"kind": "cash", "amount": "500.00"}],
    })
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Value,
) -> Result<(u16, Value), String> {
    let response = test_support::signed(http.post(url), url, body)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// What the tills were told, by sale number.
#[derive(Debug, Default)]
struct Book {
    /// Sale number → (terminal, event id) of every acknowledged sale.
    acked: BTreeMap<u64, (String, String)>,
    /// Sales whose outcome the till never heard (the node died under it).
    in_doubt: BTreeSet<u64>,
}

impl Book {
    fn record(&mut self, k: u64, terminal: &str, result: Result<(u16, Value), String>) {
        match result {
            Ok((200 | 201, body)) => {
                let id = body["event_id"].as_str().unwrap().to_owned();
                assert_eq!(body["terminal"], terminal, "{body}");
                if let Some((_, previous)) = self.acked.insert(k, (terminal.to_owned(), id.clone()))
                {
                    assert_eq!(previous, id, "a retry of sale {k} made a second sale");
                }
                self.in_doubt.remove(&k);
            }
            Ok((status, body)) => panic!("sale {k} refused with {status}: {body}"),
            Err(_) => {
                if !self.acked.contains_key(&k) {
                    self.in_doubt.insert(k);
                }
            }
        }
    }

    /// Expected stock change per sku over every acknowledged sale.
    fn moves(&self) -> BTreeMap<String, i64> {
        let mut moves = BTreeMap::new();
        for k in self.acked.keys() {
            for (sku, milli) in basket(*k).1 {
                *moves.entry(sku.to_owned()).or_default() -= milli;
            }
        }
        moves
    }

    fn event_ids(&self) -> BTreeSet<String> {
        self.acked.values().map(|(_, id)| id.clone()).collect()
    }
}

fn terminal_of(k: u64, terminals: &[String]) -> String {
    terminals[usize::try_from(k).unwrap() % terminals.len()].clone()
}

async fn sell_one(
    http: &reqwest::Client,
    url: &str,
    prefix: &str,
    k: u64,
    terminals: &[String],
) -> (String, Result<(u16, Value), String>) {
    let terminal = terminal_of(k, terminals);
    let result = post(
        http,
        &format!("{url}/v1/sales"),
        &format!("{prefix}-{k}"),
        &sale_body(k, &terminal),
    )
    .await;
    (terminal, result)
}

/// `clients` tills ring sales `1..=count` on `url`, spread over `terminals`; every one must be
/// acknowledged.
async fn sell_batch(
    url: &str,
    prefix: &str,
    terminals: &[String],
    count: u64,
    clients: usize,
) -> Book {
    let http = client();
    let next = Arc::new(AtomicU64::new(1));
    let book = Arc::new(Mutex::new(Book::default()));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, prefix, terminals, next, book) = (
            http.clone(),
            url.to_owned(),
            prefix.to_owned(),
            terminals.to_vec(),
            next.clone(),
            book.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k > count {
                    break;
                }
                let (terminal, result) = sell_one(&http, &url, &prefix, k, &terminals).await;
                assert!(result.is_ok(), "sale {k}: {result:?}");
                book.lock().await.record(k, &terminal, result);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(book).unwrap().into_inner()
}

/// Tills ringing sales on one store until stopped or until the node stops answering.
struct Sellers {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Sellers {
    fn start(
        clients: usize,
        url: &str,
        prefix: &str,
        terminals: &[String],
        next: &Arc<AtomicU64>,
        book: &Arc<Mutex<Book>>,
    ) -> Sellers {
        let http = client();
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (http, url, prefix, terminals, next, book, stop) = (
                http.clone(),
                url.to_owned(),
                prefix.to_owned(),
                terminals.to_vec(),
                next.clone(),
                book.clone(),
                stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    let (terminal, result) = sell_one(&http, &url, &prefix, k, &terminals).await;
                    let failed = result.is_err();
                    book.lock().await.record(k, &terminal, result);
                    if failed {
                        break;
                    }
                }
            }));
        }
        Sellers { stop, tasks }
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

/// Sends every in-doubt sale again with its key and body; each must now be answered.
async fn settle_in_doubt(url: &str, prefix: &str, terminals: &[String], book: &Mutex<Book>) {
    let http = client();
    let doubtful: Vec<u64> = book.lock().await.in_doubt.iter().copied().collect();
    for k in doubtful {
        let (terminal, result) = sell_one(&http, url, prefix, k, terminals).await;
        assert!(result.is_ok(), "retry of sale {k} failed: {result:?}");
        book.lock().await.record(k, &terminal, result);
    }
}

// ---------------------------------------------------------------------------------------------
// HQ's view.

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let response = test_support::signed(http.get(url), url, &Value::Null)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "GET {url}: {status} {body}");
    body
}

/// Sales HQ counts for `store`, over all business days.
async fn hq_sales(http: &reqwest::Client, hq: &str, store: &str) -> i64 {
    let report = get_json(http, &format!("{hq}/v1/reports/sales?store={store}")).await;
    report["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["sales"].as_i64().unwrap())
        .sum()
}

/// HQ's stock at `location`: sku → thousandths.
async fn hq_stock(http: &reqwest::Client, hq: &str, location: &str) -> BTreeMap<String, i64> {
    let answer = get_json(http, &format!("{hq}/v1/stock?location={location}")).await;
    answer["stock"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["sku"].as_str().unwrap().to_owned(),
                parse_signed_milli(l["on_hand"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

async fn hq_parked(http: &reqwest::Client, hq: &str) -> Vec<Value> {
    get_json(http, &format!("{hq}/v1/parked")).await["parked"]
        .as_array()
        .unwrap()
        .clone()
}

/// Every sale event HQ holds: (terminal, seq, event id), read from its database.
async fn hq_sale_events(database: &HqDatabase) -> Vec<(String, i64, String)> {
    let db = hq::db::open(&database.url()).await.unwrap();
    let rows = sqlx::query(
        "SELECT terminal, seq, id FROM inbox WHERE kind = 'SaleCompleted' ORDER BY terminal, seq",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let out = rows
        .iter()
        .map(|r| (r.get("terminal"), r.get("seq"), r.get("id")))
        .collect();
    db.pool.close().await;
    out
}

/// HQ holds exactly the acknowledged sales: each once, under its own terminal, and nothing else;
/// and HQ's sales report counts each once. HQ must run; `heads` are the nodes' last sequences.
async fn assert_exactly_once(
    chain: &mut Chain,
    http: &reqwest::Client,
    store: &str,
    book: &Book,
    heads: &BTreeMap<String, u64>,
) {
    assert_all_exactly_once(chain, http, &[(store, book)], heads).await;
}

/// [`assert_exactly_once`] over several stores, each with its own book.
async fn assert_all_exactly_once(
    chain: &mut Chain,
    http: &reqwest::Client,
    books: &[(&str, &Book)],
    heads: &BTreeMap<String, u64>,
) {
    let hq = chain.hq_url().unwrap().to_owned();
    for (store, book) in books {
        let acked = book.acked.len();
        assert_eq!(
            hq_sales(http, &hq, store).await,
            i64::try_from(acked).unwrap(),
            "HQ's sales report for {store} differs from the sales acknowledged"
        );
    }
    let parked = hq_parked(http, &hq).await;
    assert!(parked.is_empty(), "HQ parked batches: {parked:?}");
    chain.kill_hq().await.unwrap();
    let events = hq_sale_events(&chain.hq.database).await;
    let ids: BTreeSet<String> = events.iter().map(|(_, _, id)| id.clone()).collect();
    assert_eq!(ids.len(), events.len(), "an event id is held twice at HQ");
    let expected: BTreeSet<String> = books.iter().flat_map(|(_, b)| b.event_ids()).collect();
    let missing: Vec<_> = expected.difference(&ids).take(5).collect();
    let extra: Vec<_> = ids.difference(&expected).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "HQ's sales differ from the acknowledged ones: missing {missing:?}…, extra {extra:?}…"
    );
    let by_id: BTreeMap<&String, &String> = events.iter().map(|(t, _, id)| (id, t)).collect();
    for (id, terminal) in books
        .iter()
        .flat_map(|(_, b)| b.acked.values())
        .map(|(t, id)| (id, t))
        .collect::<BTreeMap<_, _>>()
    {
        assert_eq!(
            by_id[id], terminal,
            "event {id} is held under another terminal"
        );
    }
    for (terminal, head) in heads {
        // The node's head counts the shift's opening too.
        let held = events.iter().filter(|(t, _, _)| t == terminal).count();
        assert_eq!(
            u64::try_from(held).unwrap() + 1,
            *head,
            "HQ holds {held} sales of {terminal}, the node has {head} events"
        );
    }
}

fn terminals_of(chain: &Chain, store: &str) -> Vec<String> {
    chain.store(store).unwrap().terminals.clone()
}

fn store_url(chain: &Chain, store: &str) -> String {
    chain.store(store).unwrap().url().unwrap().to_owned()
}

// ---------------------------------------------------------------------------------------------
// (a) HQ down while three stores sell.

async fn offline_stores_catch_up(backend: Backend) {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = hq_db(backend, dir.path(), "offline_stores_catch_up").await else {
        return;
    };
    let mut chain = spawn_chain(
        &kassa(),
        dir.path(),
        db.database.clone(),
        ChainSpec {
            stores: vec![
                StoreSpec::new(
                    "vienna-01",
                    "Kassa Wien Mariahilf",
                    &["vienna-01-t1", "vienna-01-t2"],
                ),
                StoreSpec::new("graz-01", "Kassa Graz Herrengasse", &["graz-01-t1"]),
                StoreSpec::new("zurich-01", "Kassa Zürich HB", &["zurich-01-t1"]),
            ],
            hq_up: false,
            pull_every_secs: 1,
        },
    )
    .await
    .unwrap();
    let http = client();
    const PER_STORE: u64 = 1000;
    let mut sellers = Vec::new();
    for store in &chain.stores {
        let (url, id, terminals) = (
            store.url().unwrap().to_owned(),
            store.id.clone(),
            store.terminals.clone(),
        );
        sellers.push(tokio::spawn(async move {
            let book = sell_batch(&url, &format!("a-{id}"), &terminals, PER_STORE, 3).await;
            (id, book)
        }));
    }
    let mut books = BTreeMap::new();
    for s in sellers {
        let (id, book) = s.await.unwrap();
        assert_eq!(book.acked.len(), 1000, "{id}");
        books.insert(id, book);
    }
    let sold_in = started.elapsed();
    // Nothing reached HQ: it is down, and the nodes say so.
    for store in &chain.stores {
        assert_eq!(store.proxy.bytes_up(), 0, "{} reached HQ", store.id);
        let status = get_json(&http, &format!("{}/v1/status", store.url().unwrap())).await;
        assert_eq!(status["sync"]["online"], false, "{status}");
        let unsynced: i64 = status["sync"]["outbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["unsynced"].as_i64().unwrap())
            .sum();
        let shifts = i64::try_from(store.terminals.len()).unwrap();
        assert_eq!(unsynced, 1000 + shifts, "{}: {status}", store.id);
    }

    chain.start_hq().await.unwrap();
    let up = Instant::now();
    let heads = chain.wait_synced(&http, SYNC_TIMEOUT, &[]).await.unwrap();
    let caught_up = up.elapsed();
    // 3,000 sales and the shift openings of four tills.
    assert_eq!(heads.values().sum::<u64>(), 3004, "{heads:?}");
    let hq = chain.hq_url().unwrap().to_owned();
    let mut total = 0;
    for (id, book) in &books {
        let sales = hq_sales(&http, &hq, id).await;
        assert_eq!(sales, 1000, "HQ counts {sales} sales for {id}");
        total += sales;
        let stock = hq_stock(&http, &hq, id).await;
        let expected = book.moves();
        assert_eq!(stock, expected, "HQ stock at {id}");
    }
    assert_eq!(total, 3000);
    let parked = hq_parked(&http, &hq).await;
    assert!(parked.is_empty(), "{parked:?}");
    // And each sale exactly once, by event id.
    chain.kill_hq().await.unwrap();
    let events = hq_sale_events(&chain.hq.database).await;
    let held: BTreeSet<String> = events.iter().map(|(_, _, id)| id.clone()).collect();
    assert_eq!(held.len(), 3000);
    let acked: BTreeSet<String> = books.values().flat_map(Book::event_ids).collect();
    assert_eq!(held, acked);
    eprintln!(
        "[{}] 3000 offline sales rung in {sold_in:?}; HQ caught up {caught_up:?} after it came back; total {:?}",
        db.database.backend(),
        started.elapsed()
    );
    drop(chain);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offline_stores_catch_up_sqlite() {
    offline_stores_catch_up(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offline_stores_catch_up_postgres() {
    offline_stores_catch_up(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------------
// (b) SIGKILL of the store during pushes and of HQ during ingest.

async fn sigkill_of_store_and_hq_loses_and_doubles_nothing(backend: Backend) {
    let started = Instant::now();
    let seed = test_seed();
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = hq_db(
        backend,
        dir.path(),
        "sigkill_of_store_and_hq_loses_and_doubles_nothing",
    )
    .await
    else {
        return;
    };
    eprintln!(
        "[{}] sigkill test seed {seed} (set KASSA_TEST_SEED to replay)",
        db.database.backend()
    );
    let mut rng = Rng::new(seed);
    let mut chain = spawn_chain(
        &kassa(),
        dir.path(),
        db.database.clone(),
        ChainSpec {
            stores: vec![StoreSpec::new(
                "vienna-01",
                "Kassa Wien Mariahilf",
                &["vienna-01-t1", "vienna-01-t2"],
            )],
            hq_up: true,
            pull_every_secs: 1,
        },
    )
    .await
    .unwrap();
    let http = client();
    let terminals = terminals_of(&chain, "vienna-01");
    let book = Arc::new(Mutex::new(Book::default()));
    let next = Arc::new(AtomicU64::new(1));
    let (mut store_kills, mut hq_kills) = (0, 0);
    let rounds = 8;
    for round in 0..rounds {
        chain.start_hq().await.unwrap();
        chain.start_store(0).await.unwrap();
        let url = store_url(&chain, "vienna-01");
        settle_in_doubt(&url, "b", &terminals, &book).await;
        let sellers = Sellers::start(3, &url, "b", &terminals, &next, &book);
        tokio::time::sleep(Duration::from_millis(50 + rng.below(451))).await;
        // Alternate: the store mid-push, HQ mid-ingest, both at once.
        match round % 3 {
            0 => {
                chain.kill_store(0).await.unwrap();
                store_kills += 1;
            }
            1 => {
                chain.kill_hq().await.unwrap();
                hq_kills += 1;
                // Sales go on while HQ is gone.
                tokio::time::sleep(Duration::from_millis(50 + rng.below(451))).await;
            }
            _ => {
                chain.kill_hq().await.unwrap();
                chain.kill_store(0).await.unwrap();
                store_kills += 1;
                hq_kills += 1;
            }
        }
        sellers.stop().await;
    }
    chain.start_hq().await.unwrap();
    chain.start_store(0).await.unwrap();
    let url = store_url(&chain, "vienna-01");
    settle_in_doubt(&url, "b", &terminals, &book).await;
    let heads = chain.wait_synced(&http, SYNC_TIMEOUT, &[]).await.unwrap();
    let book = Arc::try_unwrap(book).unwrap().into_inner();
    assert!(book.in_doubt.is_empty(), "{:?}", book.in_doubt);
    assert_eq!(
        heads.values().sum::<u64>(),
        u64::try_from(book.acked.len() + terminals.len()).unwrap(),
        "the node holds other sales than those acknowledged: {heads:?}"
    );
    assert!(book.acked.len() > 50, "too few sales: {}", book.acked.len());
    let proxy_bytes = chain.stores[0].proxy.bytes_up();
    assert!(store_kills >= 3 && hq_kills >= 3, "too few kills");
    assert_exactly_once(&mut chain, &http, "vienna-01", &book, &heads).await;
    eprintln!(
        "[{}] sigkill: {} sales, {store_kills} store kills, {hq_kills} HQ kills, {proxy_bytes} bytes pushed, {:?}",
        db.database.backend(),
        book.acked.len(),
        started.elapsed()
    );
    drop(chain);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_store_and_hq_loses_and_doubles_nothing_sqlite() {
    sigkill_of_store_and_hq_loses_and_doubles_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_store_and_hq_loses_and_doubles_nothing_postgres() {
    sigkill_of_store_and_hq_loses_and_doubles_nothing(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------------
// (c) A bad link: cut mid-batch, random drops, latency and a narrow pipe.

/// Lets a fault phase run for `phase`, and on (up to 15 s in all) until `happened`.
async fn faulty_phase(phase: Duration, happened: impl Fn() -> bool) {
    let started = Instant::now();
    tokio::time::sleep(phase).await;
    while !happened() && started.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn link_faults_keep_sync_exactly_once(backend: Backend) {
    let started = Instant::now();
    let seed = test_seed();
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = hq_db(backend, dir.path(), "link_faults_keep_sync_exactly_once").await else {
        return;
    };
    eprintln!(
        "[{}] link fault test seed {seed} (set KASSA_TEST_SEED to replay)",
        db.database.backend()
    );
    let mut chain = spawn_chain(
        &kassa(),
        dir.path(),
        db.database.clone(),
        ChainSpec {
            stores: vec![StoreSpec::new(
                "graz-01",
                "Kassa Graz Herrengasse",
                &["graz-01-t1", "graz-01-t2"],
            )],
            hq_up: true,
            pull_every_secs: 1,
        },
    )
    .await
    .unwrap();
    let http = client();
    let terminals = terminals_of(&chain, "graz-01");
    let url = store_url(&chain, "graz-01");
    let book = Arc::new(Mutex::new(Book::default()));
    let next = Arc::new(AtomicU64::new(1));
    let phase = Duration::from_secs(3);

    // 1. Connections are cut once they have carried N bytes upstream (N drawn per window from
    //    300 B to 30 kB: in headers, mid-body of a batch, or after it), with clear windows
    //    between so the backlog drains and the node's backoff starts over.
    let mut rng = Rng::new(seed);
    let sellers = Sellers::start(2, &url, "c", &terminals, &next, &book);
    for _ in 0..4 {
        chain.stores[0]
            .proxy
            .cut_after_bytes(Some(300 + rng.below(29_700)));
        tokio::time::sleep(Duration::from_millis(800)).await;
        chain.stores[0].proxy.cut_after_bytes(None);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    chain.stores[0].proxy.cut_after_bytes(Some(3_000));
    faulty_phase(Duration::ZERO, || chain.stores[0].proxy.cuts() > 0).await;
    sellers.stop().await;
    let cut_cuts = chain.stores[0].proxy.cuts();
    chain.stores[0].proxy.cut_after_bytes(None);

    // 2. Random drops: each chunk either way is lost with the connection, 1 in 10.
    chain.stores[0].proxy.set_drop_probability(0.1, seed);
    let sellers = Sellers::start(2, &url, "c", &terminals, &next, &book);
    faulty_phase(phase, || chain.stores[0].proxy.cuts() > cut_cuts).await;
    sellers.stop().await;
    let drop_cuts = chain.stores[0].proxy.cuts() - cut_cuts;
    chain.stores[0].proxy.set_drop_probability(0.0, 0);

    // 3. A slow, narrow link: 40 ms per chunk and 16 kB/s each way.
    chain.stores[0].proxy.set_delay(Duration::from_millis(40));
    chain.stores[0].proxy.set_bandwidth(Some(16_000));
    let sellers = Sellers::start(2, &url, "c", &terminals, &next, &book);
    tokio::time::sleep(phase).await;
    sellers.stop().await;

    // 4. All three at once, lighter.
    chain.stores[0].proxy.set_delay(Duration::from_millis(10));
    chain.stores[0].proxy.cut_after_bytes(Some(20_000));
    chain.stores[0]
        .proxy
        .set_drop_probability(0.02, seed ^ 0x5eed);
    let sellers = Sellers::start(2, &url, "c", &terminals, &next, &book);
    tokio::time::sleep(phase).await;
    sellers.stop().await;

    chain.stores[0].proxy.clear_faults();
    let heads = chain.wait_synced(&http, SYNC_TIMEOUT, &[]).await.unwrap();
    let book = Arc::try_unwrap(book).unwrap().into_inner();
    assert!(book.in_doubt.is_empty(), "{:?}", book.in_doubt);
    assert!(book.acked.len() > 50, "too few sales: {}", book.acked.len());
    assert!(cut_cuts > 0, "cut_after_bytes never cut a push");
    assert!(drop_cuts > 0, "random drops never dropped a connection");
    let hq = chain.hq_url().unwrap().to_owned();
    assert_eq!(hq_stock(&http, &hq, "graz-01").await, book.moves());
    let (up, down, cuts) = (
        chain.stores[0].proxy.bytes_up(),
        chain.stores[0].proxy.bytes_down(),
        chain.stores[0].proxy.cuts(),
    );
    assert_exactly_once(&mut chain, &http, "graz-01", &book, &heads).await;
    eprintln!(
        "[{}] link faults: {} sales; {cut_cuts} cuts mid-body, {drop_cuts} random drops, {cuts} cuts in all; {up} bytes up, {down} down; {:?}",
        db.database.backend(),
        book.acked.len(),
        started.elapsed()
    );
    drop(chain);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn link_faults_keep_sync_exactly_once_sqlite() {
    link_faults_keep_sync_exactly_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn link_faults_keep_sync_exactly_once_postgres() {
    link_faults_keep_sync_exactly_once(Backend::Postgres).await;
}

// A store whose clock is two hours behind: built in-process (the CLI has no flag for the clock)
// and syncing with a real HQ process.
async fn a_store_two_hours_behind_still_syncs(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = hq_db(backend, dir.path(), "a_store_two_hours_behind_still_syncs").await else {
        return;
    };
    let mut chain = spawn_chain(
        &kassa(),
        dir.path(),
        db.database.clone(),
        ChainSpec {
            stores: vec![],
            hq_up: true,
            pull_every_secs: 1,
        },
    )
    .await
    .unwrap();
    let hq = chain.hq_url().unwrap().to_owned();
    let mut hq_args = vec!["hq".to_owned()];
    hq_args.extend(chain.hq.database.cli_args());
    let cli = |args: &[&str]| {
        let mut all = hq_args.clone();
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all
    };
    let token = kassa_cli(
        &kassa(),
        &cli(&[
            "store",
            "add",
            "--id",
            "zurich-01",
            "--name",
            "Kassa Zürich HB",
        ]),
    )
    .await
    .unwrap()
    .trim()
    .to_owned();
    let data = dir.path().join("zurich-01");
    let store_id = domain::StoreId::parse("zurich-01").unwrap();
    let terminal = domain::TerminalId::parse("zurich-01-t1").unwrap();
    let keys = store::provision(&data, &store_id, std::slice::from_ref(&terminal))
        .await
        .unwrap();
    store::seed(&data, &test_support::demo_seed().unwrap())
        .await
        .unwrap();
    let key = hex::encode(keys[0].1);
    kassa_cli(
        &kassa(),
        &cli(&[
            "terminal",
            "add",
            "--store",
            "zurich-01",
            "--id",
            "zurich-01-t1",
            "--public-key",
            &key,
        ]),
    )
    .await
    .unwrap();
    let proxy = FaultProxy::start(test_support::chain::addr_of(&hq).unwrap())
        .await
        .unwrap();
    const OFFSET_MS: i64 = -2 * 3600 * 1000;
    let app = store::App::build(
        &store::Settings {
            data_dir: data,
            listen: "127.0.0.1:0".parse().unwrap(),
            sync: Some(store::sync::SyncSettings {
                hq_url: format!("https://{}", proxy.addr()),
                token: token.into(),
                pull_every: Duration::from_secs(1),
                hq_ca: Some(test_support::test_ca().ca_pem.clone()),
                hq_client_cert: None,
            }),
        },
        Arc::new(store::clock::OffsetClock(OFFSET_MS)),
    )
    .await
    .unwrap();
    let url = format!("http://{}", app.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    test_support::open_shifts(&client(), &url, &["zurich-01-t1"])
        .await
        .unwrap();
    let day = |ms: i64| hq::ingest::business_day(ms, "Europe/Zurich");
    let before = day(jiff::Timestamp::now().as_millisecond() + OFFSET_MS);
    let terminals = vec!["zurich-01-t1".to_owned()];
    let book = sell_batch(&url, "clock", &terminals, 40, 2).await;
    let after = day(jiff::Timestamp::now().as_millisecond() + OFFSET_MS);
    let http = client();
    let deadline = Instant::now() + SYNC_TIMEOUT;
    loop {
        let acked = chain.hq_acked(&http).await.unwrap();
        // 40 sales after the shift's opening.
        if acked.get("zurich-01-t1") == Some(&41) {
            break;
        }
        assert!(Instant::now() < deadline, "HQ holds {acked:?}, not 41");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(hq_sales(&http, &hq, "zurich-01").await, 40);
    // The sales count on the business day of the store's own (slow) clock.
    let report = get_json(&http, &format!("{hq}/v1/reports/sales?store=zurich-01")).await;
    for d in report["days"].as_array().unwrap() {
        let d = d["day"].as_str().unwrap();
        assert!(
            d == before || d == after,
            "sales booked on {d}, expected {before}"
        );
    }
    assert_eq!(hq_stock(&http, &hq, "zurich-01").await, book.moves());
    let status = get_json(&http, &format!("{url}/v1/status")).await;
    assert_eq!(status["sync"]["outbox"][0]["state"], "ok", "{status}");
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let heads = BTreeMap::from([("zurich-01-t1".to_owned(), 41)]);
    assert_exactly_once(&mut chain, &http, "zurich-01", &book, &heads).await;
    drop(chain);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_two_hours_behind_still_syncs_sqlite() {
    a_store_two_hours_behind_still_syncs(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_two_hours_behind_still_syncs_postgres() {
    a_store_two_hours_behind_still_syncs(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------------
// (d) A batch HQ cannot verify is parked; the other terminal keeps flowing.

async fn unverifiable_batches_are_parked(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = hq_db(backend, dir.path(), "unverifiable_batches_are_parked").await else {
        return;
    };
    // HQ knows t2 by t1's key: every batch of t2 fails signature verification.
    let mut chain = spawn_chain(
        &kassa(),
        dir.path(),
        db.database.clone(),
        ChainSpec {
            stores: vec![
                StoreSpec::new(
                    "vienna-01",
                    "Kassa Wien Mariahilf",
                    &["vienna-01-t1", "vienna-01-t2"],
                )
                .with_hq_key_of("vienna-01-t2", "vienna-01-t1"),
            ],
            hq_up: true,
            pull_every_secs: 1,
        },
    )
    .await
    .unwrap();
    let http = client();
    let url = store_url(&chain, "vienna-01");
    let hq = chain.hq_url().unwrap().to_owned();
    let both = terminals_of(&chain, "vienna-01");
    let first = sell_batch(&url, "d1", &both, 30, 2).await;
    // The refusal shows at HQ (parked, with the reason) and in the node's status.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (parked, outbox) = loop {
        let parked = hq_parked(&http, &hq).await;
        let status = get_json(&http, &format!("{url}/v1/status")).await;
        let outbox = status["sync"]["outbox"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["terminal"] == "vienna-01-t2")
            .unwrap()
            .clone();
        if !parked.is_empty() && outbox["state"] == "rejected" {
            break (parked, outbox);
        }
        assert!(
            Instant::now() < deadline,
            "no refusal seen: parked {parked:?}, node {outbox}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for p in &parked {
        assert_eq!(p["terminal"], "vienna-01-t2", "{p}");
        assert_eq!(p["store"], "vienna-01", "{p}");
        assert_eq!(p["code"], "batch_rejected", "{p}");
        assert_eq!(p["from_seq"], 1, "{p}");
        let reason = p["reason"].as_str().unwrap();
        assert!(reason.contains("signature"), "parked reason: {reason}");
    }
    let reason = outbox["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("signature"),
        "node's reason for t2: {outbox}"
    );
    assert_eq!(outbox["acked_seq"], 0, "{outbox}");

    // t1 goes on: its earlier and later sales all reach HQ.
    let t1 = vec!["vienna-01-t1".to_owned()];
    let second = sell_batch(&url, "d2", &t1, 20, 2).await;
    let heads = chain
        .wait_synced(&http, SYNC_TIMEOUT, &["vienna-01-t2"])
        .await
        .unwrap();
    let t1_sales = first
        .acked
        .values()
        .filter(|(t, _)| t == "vienna-01-t1")
        .count()
        + second.acked.len();
    assert_eq!(heads["vienna-01-t1"], u64::try_from(t1_sales + 1).unwrap());
    assert_eq!(heads["vienna-01-t2"], 16);
    let acked = chain.hq_acked(&http).await.unwrap();
    assert_eq!(acked["vienna-01-t2"], 0, "HQ took t2's events: {acked:?}");
    assert_eq!(
        hq_sales(&http, &hq, "vienna-01").await,
        i64::try_from(t1_sales).unwrap()
    );
    let metrics = http
        .get(format!("{hq}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("kassa_hq_parked_batches ") && !l.ends_with(" 0")),
        "{metrics}"
    );
    chain.kill_hq().await.unwrap();
    let events = hq_sale_events(&chain.hq.database).await;
    assert!(events.iter().all(|(t, _, _)| t == "vienna-01-t1"));
    let mut expected: BTreeSet<String> = first
        .acked
        .values()
        .filter(|(t, _)| t == "vienna-01-t1")
        .map(|(_, id)| id.clone())
        .collect();
    expected.extend(second.event_ids());
    let held: BTreeSet<String> = events.into_iter().map(|(_, _, id)| id).collect();
    assert_eq!(held, expected);
    drop(chain);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unverifiable_batches_are_parked_sqlite() {
    unverifiable_batches_are_parked(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unverifiable_batches_are_parked_postgres() {
    unverifiable_batches_are_parked(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------------
// (e) A stock count made while earlier sales were still unsynced.

async fn count_after_unsynced_sales(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = hq_db(backend, dir.path(), "count_after_unsynced_sales").await else {
        return;
    };
    let mut chain = spawn_chain(
        &kassa(),
        dir.path(),
        db.database.clone(),
        ChainSpec {
            stores: vec![StoreSpec::new(
                "vienna-01",
                "Kassa Wien Mariahilf",
                &["vienna-01-t1", "vienna-01-t2"],
            )],
            hq_up: false,
            pull_every_secs: 1,
        },
    )
    .await
    .unwrap();
    let http = client();
    let url = store_url(&chain, "vienna-01");
    // Bread: sold on t1, counted on t2, so at HQ the count (pushed after all of t1) arrives
    // after the later sale. Tee: sold and counted on t1, in order.
    let plan = [
        (BREAD, BREAD_SKU, "vienna-01-t2"),
        (TEE, TEE, "vienna-01-t1"),
    ];
    let sale = |code: &str, quantity: &str| {
        json!({
            "terminal": "vienna-01-t1",
            "lines": [{"code": code, "quantity": quantity}],
            "tenders": [{"kind": "cash", "amount": "50.00"}],
        })
    };
    let mut step = 0;
    let mut write = async |path: &str, body: Value| {
        step += 1;
        let (status, answer) = post(&http, &format!("{url}{path}"), &format!("e-{step}"), &body)
            .await
            .unwrap();
        assert!(
            status == 200 || status == 201,
            "{path} {body}: {status} {answer}"
        );
    };
    for (code, _, _) in plan {
        write("/v1/sales", sale(code, "3")).await;
    }
    for (_, sku, counter) in plan {
        write(
            "/v1/stock/counts",
            json!({"terminal": counter, "sku": sku, "counted": "10"}),
        )
        .await;
    }
    for (code, _, _) in plan {
        write("/v1/sales", sale(code, "2")).await;
    }
    let on_hand_at_node = async |sku: &str| {
        let local = get_json(&http, &format!("{url}/v1/stock/{sku}")).await;
        parse_signed_milli(local["on_hand"].as_str().unwrap()).unwrap()
    };
    for (_, sku, _) in plan {
        assert_eq!(on_hand_at_node(sku).await, 8000, "{sku} at the node");
    }

    chain.start_hq().await.unwrap();
    let synced_at = jiff::Timestamp::now().as_millisecond();
    let heads = chain.wait_synced(&http, SYNC_TIMEOUT, &[]).await.unwrap();
    // Each till's shift opening, then the sales and counts.
    assert_eq!(heads["vienna-01-t1"], 6);
    assert_eq!(heads["vienna-01-t2"], 2);
    let hq = chain.hq_url().unwrap().to_owned();
    let stock = hq_stock(&http, &hq, "vienna-01").await;
    for (_, sku, _) in plan {
        assert_eq!(
            stock.get(sku).copied(),
            Some(8000),
            "HQ's stock of {sku} after the count: {stock:?}"
        );
    }
    // The node's figures agree after its next pull.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = get_json(&http, &format!("{url}/v1/status")).await;
        if status["sync"]["last_pull_ms"]
            .as_i64()
            .is_some_and(|t| t > synced_at)
        {
            break;
        }
        assert!(Instant::now() < deadline, "no pull since sync: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (_, sku, _) in plan {
        assert_eq!(on_hand_at_node(sku).await, 8000, "{sku} at the node");
    }
    drop(chain);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn count_after_unsynced_sales_sqlite() {
    count_after_unsynced_sales(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn count_after_unsynced_sales_postgres() {
    count_after_unsynced_sales(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------------
// (f) Two `kassa hq` processes serving one PostgreSQL database: each store pushes to one of
// them, the stores change HQ process mid-push, and one process dies with SIGKILL.

/// Each terminal's `acked_seq` at the HQ process at `hq`.
async fn hq_acked_at(http: &reqwest::Client, hq: &str) -> BTreeMap<String, u64> {
    get_json(http, &format!("{hq}/v1/terminals")).await["terminals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["acked_seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Polls until the HQ process at `hq` acknowledges every terminal's last sequence; returns the
/// nodes' heads.
async fn wait_synced_at(chain: &Chain, http: &reqwest::Client, hq: &str) -> BTreeMap<String, u64> {
    let deadline = Instant::now() + SYNC_TIMEOUT;
    loop {
        let heads = chain.node_heads(http).await.unwrap();
        let acked = hq_acked_at(http, hq).await;
        if heads.iter().all(|(t, seq)| acked.get(t) == Some(seq)) {
            return heads;
        }
        assert!(
            Instant::now() < deadline,
            "not in sync at {hq} after {SYNC_TIMEOUT:?}: nodes {heads:?}, HQ {acked:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Points `store`'s link at `upstream` and cuts its open connections, so the next push (or the
/// retry of the one in flight) goes to that HQ process.
fn switch_hq(chain: &Chain, store: usize, upstream: std::net::SocketAddr) {
    chain.stores[store].proxy.set_upstream(upstream);
    chain.stores[store].proxy.cut_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hq_processes_share_one_postgres_database() {
    let started = Instant::now();
    let seed = test_seed();
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = hq_db(
        Backend::Postgres,
        dir.path(),
        "two_hq_processes_share_one_postgres_database",
    )
    .await
    else {
        return;
    };
    eprintln!("two HQ processes test seed {seed} (set KASSA_TEST_SEED to replay)");
    let mut rng = Rng::new(seed);
    let mut chain = spawn_chain(
        &kassa(),
        dir.path(),
        db.database.clone(),
        ChainSpec {
            stores: vec![
                StoreSpec::new(
                    "vienna-01",
                    "Kassa Wien Mariahilf",
                    &["vienna-01-t1", "vienna-01-t2"],
                ),
                StoreSpec::new(
                    "graz-01",
                    "Kassa Graz Herrengasse",
                    &["graz-01-t1", "graz-01-t2"],
                ),
            ],
            hq_up: true,
            pull_every_secs: 1,
        },
    )
    .await
    .unwrap();
    let http = client();
    // HQ 1 is the chain's own process; HQ 2 a second one on the same database.
    let hq2 = chain.spawn_hq_process().await.unwrap();
    let hq2_url = hq2.url.clone();
    let hq1_addr = addr_of(chain.hq_url().unwrap()).unwrap();
    let hq2_addr = addr_of(&hq2_url).unwrap();
    let (a, b) = (0, 1);
    let ids = ["vienna-01", "graz-01"];
    switch_hq(&chain, b, hq2_addr);

    let books: Vec<Arc<Mutex<Book>>> = (0..2)
        .map(|_| Arc::new(Mutex::new(Book::default())))
        .collect();
    let nexts: Vec<Arc<AtomicU64>> = (0..2).map(|_| Arc::new(AtomicU64::new(1))).collect();
    let sellers: Vec<Sellers> = (0..2)
        .map(|i| {
            Sellers::start(
                2,
                &store_url(&chain, ids[i]),
                &format!("f-{}", ids[i]),
                &terminals_of(&chain, ids[i]),
                &nexts[i],
                &books[i],
            )
        })
        .collect();
    let phase = Duration::from_millis(1500);

    // 1. Store A pushes to HQ 1, store B to HQ 2.
    tokio::time::sleep(phase).await;
    // 2. They swap, mid-push.
    switch_hq(&chain, a, hq2_addr);
    switch_hq(&chain, b, hq1_addr);
    tokio::time::sleep(phase).await;
    // 3. Flapping: a store's link jumps to the other process every 50–250 ms, cutting what is in
    //    flight, so one terminal's batch may still be committing at one process while its retry
    //    arrives at the other.
    let mut at_hq2 = [true, false];
    let flapping = Instant::now();
    let mut switches = 0;
    while flapping.elapsed() < Duration::from_secs(2) {
        let store = usize::try_from(rng.below(2)).unwrap();
        at_hq2[store] = !at_hq2[store];
        switch_hq(
            &chain,
            store,
            if at_hq2[store] { hq2_addr } else { hq1_addr },
        );
        switches += 1;
        tokio::time::sleep(Duration::from_millis(50 + rng.below(201))).await;
    }
    // 4. Both stores on HQ 1, which dies with SIGKILL mid-ingest; a moment later both go on
    //    through HQ 2 while sales go on.
    switch_hq(&chain, a, hq1_addr);
    switch_hq(&chain, b, hq1_addr);
    tokio::time::sleep(Duration::from_millis(300 + rng.below(500))).await;
    chain.kill_hq().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    switch_hq(&chain, a, hq2_addr);
    switch_hq(&chain, b, hq2_addr);
    tokio::time::sleep(phase).await;
    for s in sellers {
        s.stop().await;
    }
    for (i, id) in ids.iter().enumerate() {
        settle_in_doubt(
            &store_url(&chain, id),
            &format!("f-{id}"),
            &terminals_of(&chain, id),
            &books[i],
        )
        .await;
    }
    // Everything reaches HQ through HQ 2 alone.
    let heads = wait_synced_at(&chain, &http, &hq2_url).await;
    let books: Vec<Book> = books
        .into_iter()
        .map(|b| Arc::try_unwrap(b).unwrap().into_inner())
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let book = &books[i];
        assert!(book.in_doubt.is_empty(), "{id}: {:?}", book.in_doubt);
        assert!(book.acked.len() > 50, "{id}: too few sales");
        let held: u64 = heads
            .iter()
            .filter(|(t, _)| t.starts_with(id))
            .map(|(_, seq)| seq)
            .sum();
        // Each till's head counts its shift opening too.
        let tills = heads.keys().filter(|t| t.starts_with(id)).count();
        assert_eq!(
            held,
            u64::try_from(book.acked.len() + tills).unwrap(),
            "{id}: the node holds other sales than those acknowledged: {heads:?}"
        );
    }

    // HQ 1 again, on a new port: both processes tell the same story.
    chain.start_hq().await.unwrap();
    let hq1_url = chain.hq_url().unwrap().to_owned();
    assert_eq!(
        hq_acked_at(&http, &hq1_url).await,
        hq_acked_at(&http, &hq2_url).await
    );
    let report = |hq: String| {
        let http = http.clone();
        async move { get_json(&http, &format!("{hq}/v1/reports/sales")).await }
    };
    assert_eq!(
        report(hq1_url.clone()).await,
        report(hq2_url.clone()).await,
        "the sales reports of the two HQ processes differ"
    );
    for (i, id) in ids.iter().enumerate() {
        let acked = i64::try_from(books[i].acked.len()).unwrap();
        for hq in [&hq1_url, &hq2_url] {
            assert_eq!(hq_sales(&http, hq, id).await, acked, "{id} at {hq}");
            assert_eq!(
                hq_stock(&http, hq, id).await,
                books[i].moves(),
                "{id} at {hq}"
            );
        }
    }
    let parked = hq_parked(&http, &hq2_url).await;
    assert!(parked.is_empty(), "HQ 2 parked batches: {parked:?}");
    hq2.kill9().await.unwrap();
    let cuts: u64 = chain.stores.iter().map(|s| s.proxy.cuts()).sum();
    assert_all_exactly_once(
        &mut chain,
        &http,
        &[(ids[a], &books[a]), (ids[b], &books[b])],
        &heads,
    )
    .await;
    eprintln!(
        "two HQ processes: {} + {} sales, {switches} switches while flapping, {cuts} connections cut, 1 HQ kill; {:?}",
        books[a].acked.len(),
        books[b].acked.len(),
        started.elapsed()
    );
    drop(chain);
    db.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// (e) An order from the web placed while its store is offline.

/// What a shop's webhook receiver got: (type, resource, sequence) of each event, in arrival order.
type Told = Arc<std::sync::Mutex<Vec<(String, String, i64)>>>;

async fn hear(
    axum::extract::State(told): axum::extract::State<Told>,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    told.lock().unwrap().push((
        event["type"].as_str().unwrap_or_default().to_owned(),
        event["resource"].as_str().unwrap_or_default().to_owned(),
        event["sequence"].as_i64().unwrap_or_default(),
    ));
    axum::http::StatusCode::OK
}

async fn an_order_placed_while_its_store_is_offline_is_picked_up_after_it_reconnects(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = hq_db(
        backend,
        dir.path(),
        "an_order_placed_while_its_store_is_offline",
    )
    .await
    else {
        return;
    };
    let mut chain = spawn_chain(
        &kassa(),
        dir.path(),
        db.database.clone(),
        ChainSpec {
            stores: vec![StoreSpec::new(
                "vienna-01",
                "Kassa Wien Mariahilf",
                &["vienna-01-t1"],
            )],
            hq_up: true,
            pull_every_secs: 1,
        },
    )
    .await
    .unwrap();
    let http = client();
    let terminal = "vienna-01-t1";
    let url = store_url(&chain, "vienna-01");
    test_support::open_shifts(&http, &url, &[terminal])
        .await
        .unwrap();
    let (status, body) = post(
        &http,
        &format!("{url}/v1/stock/counts"),
        "count-bread",
        &json!({"terminal": terminal, "sku": "GRO-BRD-0012", "counted": "5"}),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{body}");
    chain.wait_synced(&http, SYNC_TIMEOUT, &[]).await.unwrap();

    // The shop: an API key, and a receiver that is down for now.
    let shop = shop_key(
        &db.database,
        &[
            hq::identity::Scope::OrdersRead,
            hq::identity::Scope::OrdersWrite,
            hq::identity::Scope::StockRead,
            hq::identity::Scope::WebhooksWrite,
        ],
    )
    .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hq = chain.hq_url().unwrap().to_owned();
    let answer = http
        .post(format!("{hq}/v1/webhooks"))
        .bearer_auth(&shop)
        .json(&json!({"url": format!("http://127.0.0.1:{port}/hook"), "events": ["order.*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);

    // The store goes offline; the order is placed; HQ dies before telling anyone.
    chain.kill_store(0).await.unwrap();
    let answer = http
        .post(format!("{hq}/v1/orders"))
        .bearer_auth(&shop)
        .header("Idempotency-Key", "shop-order-1001")
        .json(&json!({
            "store": "vienna-01",
            "fulfilment": "pickup",
            "payment": {"state": "paid", "psp_reference": "psp-8841"},
            "customer": {"name": "Eva Huber", "email": "eva@example.at"},
            "lines": [{"sku": "GRO-BRD-0012", "quantity": "2", "unit_price": "4.20"}],
            "reference": "shop-1001",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    let order: Value = answer.json().await.unwrap();
    let number = order["number"].as_str().unwrap().to_owned();
    chain.kill_hq().await.unwrap();
    chain.start_hq().await.unwrap();
    let hq = chain.hq_url().unwrap().to_owned();

    // The store comes back and finds the order on its task list.
    chain.start_store(0).await.unwrap();
    let url = store_url(&chain, "vienna-01");
    test_support::open_shifts(&http, &url, &[terminal])
        .await
        .unwrap();
    let session = test_support::session(&url, terminal).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let list: Value = http
            .get(format!("{url}/v1/web-orders"))
            .bearer_auth(&session)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if list["orders"].as_array().is_some_and(|o| !o.is_empty()) {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "the order never reached the store: {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(listed["orders"][0]["number"], number.as_str());
    assert_eq!(listed["orders"][0]["task"], "pick");
    let step = |key: &str, order: &str, body: Value| {
        let http = http.clone();
        let url = url.clone();
        let (key, order) = (key.to_owned(), order.to_owned());
        async move {
            post(
                &http,
                &format!("{url}/v1/web-orders/{order}/steps"),
                &key,
                &body,
            )
            .await
            .unwrap()
        }
    };
    // Somebody else's order, and a step out of turn: refused, nothing written.
    let (status, body) = step(
        "no-such",
        "W-999999",
        json!({"terminal": terminal, "step": "picked"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("order_not_found")),
        "{body}"
    );
    let (status, body) = step(
        "too-early",
        &number,
        json!({"terminal": terminal, "step": "handed-over"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("order_not_ready")),
        "{body}"
    );
    let (status, body) = step(
        "too-many",
        &number,
        json!({"terminal": terminal, "step": "picked", "lines": [{"sku": "GRO-BRD-0012", "quantity": "3"}]}),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("lines[0].quantity")),
        "{body}"
    );
    for (key, body) in [
        (
            "pick",
            json!({"terminal": terminal, "step": "picked", "lines": [{"sku": "GRO-BRD-0012", "quantity": "2"}]}),
        ),
        ("ready", json!({"terminal": terminal, "step": "ready"})),
    ] {
        let (status, answer) = step(key, &number, body).await;
        assert_eq!(status, 201, "{key}: {answer}");
    }
    // The customer shows the QR code at the counter.
    let qr = format!("kassa-order:{number}");
    let found: Value = http
        .get(format!("{url}/v1/web-orders/{qr}"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&found["status"], &found["task"]),
        (&json!("ready"), &json!("hand-over")),
        "{found}"
    );
    let (status, answer) = step(
        "hand-over",
        &qr,
        json!({"terminal": terminal, "step": "handed-over"}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let (status, body) = step(
        "hand-over-again",
        &number,
        json!({"terminal": terminal, "step": "handed-over"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("order_not_ready")),
        "{body}"
    );
    // The customer brings one back to the till: the till refunds nothing (it never saw the
    // card); the stock comes back here and the shop is told to refund.
    let (status, body) = step(
        "return-too-many",
        &number,
        json!({"terminal": terminal, "step": "returned", "lines": [{"sku": "GRO-BRD-0012", "quantity": "3"}]}),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("lines[0].quantity")),
        "{body}"
    );
    let (status, body) = step(
        "return-one",
        &number,
        json!({"terminal": terminal, "step": "returned", "lines": [{"sku": "GRO-BRD-0012", "quantity": "1"}]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = step(
        "return-two-more",
        &number,
        json!({"terminal": terminal, "step": "returned", "lines": [{"sku": "GRO-BRD-0012", "quantity": "2"}]}),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("lines[0].quantity")),
        "{body}"
    );
    chain.wait_synced(&http, SYNC_TIMEOUT, &[]).await.unwrap();

    // HQ, the store and the shop agree.
    let at_hq: Value = http
        .get(format!("{hq}/v1/orders/{number}"))
        .bearer_auth(&shop)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(at_hq["status"], "collected", "{at_hq}");
    assert_eq!(at_hq["lines"][0]["returned"], "1", "{at_hq}");
    assert_eq!(at_hq["refund_due"], "4.20", "{at_hq}");
    let figures: Value = http
        .get(format!(
            "{hq}/v1/availability?skus=GRO-BRD-0012&location=vienna-01"
        ))
        .bearer_auth(&shop)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let f = &figures["variants"][0]["locations"][0];
    assert_eq!(
        (&f["on_hand"], &f["reserved"], &f["available"]),
        (&json!("4"), &json!("0"), &json!("4")),
        "{figures}"
    );
    let at_store = get_json(&http, &format!("{url}/v1/stock/GRO-BRD-0012")).await;
    assert_eq!(at_store["on_hand"], "4", "{at_store}");
    // The order's goods left the store online: 2 handed over, 1 came back.
    let reorder: Value = http
        .get(format!("{hq}/v1/reorder-suggestions?store=vienna-01&all=1"))
        .bearer_auth(&shop)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bread = reorder["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sku"] == "GRO-BRD-0012")
        .unwrap_or_else(|| panic!("{reorder}"));
    assert_eq!(
        (&bread["sold_in_store"], &bread["sold_online"]),
        (&json!("0"), &json!("1")),
        "{reorder}"
    );
    let csv = http
        .get(format!(
            "{hq}/v1/reorder-suggestions?store=vienna-01&all=1&format=csv"
        ))
        .bearer_auth(&shop)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.starts_with("sku,name,sold_in_store,sold_online,per_day,"),
        "{csv}"
    );
    assert!(csv.contains("GRO-BRD-0012,"), "{csv}");
    // The receiver comes up: every step, in order, though HQ was killed after the order.
    let told: Told = Arc::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hear))
        .with_state(told.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if told.lock().unwrap().len() >= 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "told only {:?}",
            told.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let told = told.lock().unwrap().clone();
    let resource = format!("order:{number}");
    assert_eq!(
        told,
        [
            ("order.created".to_owned(), resource.clone(), 1),
            ("order.picked".to_owned(), resource.clone(), 2),
            ("order.ready".to_owned(), resource.clone(), 3),
            ("order.collected".to_owned(), resource.clone(), 4),
            ("order.returned".to_owned(), resource, 5),
        ]
    );
    server.abort();
    drop(chain);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_placed_while_its_store_is_offline_is_picked_up_after_it_reconnects_sqlite() {
    an_order_placed_while_its_store_is_offline_is_picked_up_after_it_reconnects(Backend::Sqlite)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_placed_while_its_store_is_offline_is_picked_up_after_it_reconnects_postgres() {
    an_order_placed_while_its_store_is_offline_is_picked_up_after_it_reconnects(Backend::Postgres)
        .await;
}

// ---------------------------------------------------------------------------------------------
// (f) The last item, sold at a till and reserved by the web shop at the same instant.

/// A shop's API key with `scopes`, made on HQ's database.
async fn shop_key(database: &HqDatabase, scopes: &[hq::identity::Scope]) -> String {
    let db = hq::db::open(&database.url()).await.unwrap();
    let key = hq::identity::create_api_key(
        &db,
        &hq::identity::Actor::Cli,
        "web shop",
        scopes,
        jiff::Timestamp::now().as_millisecond(),
    )
    .await
    .unwrap()
    .secret;
    db.pool.close().await;
    key
}

async fn the_last_item_sold_and_reserved_at_once_follows_the_policy(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = hq_db(
        backend,
        dir.path(),
        "the_last_item_sold_and_reserved_at_once",
    )
    .await
    else {
        return;
    };
    let chain = spawn_chain(
        &kassa(),
        dir.path(),
        db.database.clone(),
        ChainSpec {
            stores: vec![StoreSpec::new(
                "vienna-01",
                "Kassa Wien Mariahilf",
                &["vienna-01-t1"],
            )],
            hq_up: true,
            pull_every_secs: 1,
        },
    )
    .await
    .unwrap();
    let http = client();
    let terminal = "vienna-01-t1";
    let url = store_url(&chain, "vienna-01");
    test_support::open_shifts(&http, &url, &[terminal])
        .await
        .unwrap();
    let hq = chain.hq_url().unwrap().to_owned();
    let shop = shop_key(
        &db.database,
        &[
            hq::identity::Scope::StockRead,
            hq::identity::Scope::ReservationsWrite,
        ],
    )
    .await;
    let figures = || async {
        let answer: Value = http
            .get(format!(
                "{hq}/v1/availability?skus={BREAD_SKU}&location=vienna-01"
            ))
            .bearer_auth(&shop)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let f = answer["variants"][0]["locations"][0].clone();
        (
            f["on_hand"].as_str().unwrap().to_owned(),
            f["reserved"].as_str().unwrap().to_owned(),
            f["available"].as_str().unwrap().to_owned(),
        )
    };
    let (mut held, mut refused) = (0, 0);
    for round in 0..100 {
        let (status, body) = post(
            &http,
            &format!("{url}/v1/stock/counts"),
            &format!("count-{round}"),
            &json!({"terminal": terminal, "sku": BREAD_SKU, "counted": "1"}),
        )
        .await
        .unwrap();
        assert_eq!(status, 201, "{body}");
        // HQ has the count (the node pushes after every commit).
        let deadline = Instant::now() + SYNC_TIMEOUT;
        while figures().await.2 != "1" {
            assert!(
                Instant::now() < deadline,
                "round {round}: the count never reached HQ"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (sale_url, sale_key) = (format!("{url}/v1/sales"), format!("sale-{round}"));
        let sale_body = json!({"terminal": terminal, "lines": [{"code": BREAD, "quantity": "1"}], "tenders": [{"kind": "cash", "amount": "20.00"}]});
        let sale = post(&http, &sale_url, &sale_key, &sale_body);
        // The shop's request leaves at the till's instant or a few milliseconds later, so that
        // both orders of arrival at HQ occur.
        let lag = Duration::from_millis(round % 4 * 15);
        let reservation = async {
            tokio::time::sleep(lag).await;
            http.post(format!("{hq}/v1/reservations"))
                .bearer_auth(&shop)
                .json(&json!({"location": "vienna-01", "lines": [{"sku": BREAD_SKU, "quantity": "1"}], "reference": format!("cart-{round}")}))
                .send()
                .await
        };
        let (sale, reservation) = tokio::join!(sale, reservation);
        // The store never refuses a sale.
        let (status, body) = sale.unwrap();
        assert_eq!(status, 201, "round {round}: {body}");
        let reservation = reservation.unwrap();
        let status = reservation.status().as_u16();
        let answer: Value = reservation.json().await.unwrap();
        let id = match status {
            201 => {
                held += 1;
                answer["id"].as_str().map(str::to_owned)
            }
            409 => {
                assert_eq!(answer["code"], "insufficient_stock", "{answer}");
                refused += 1;
                None
            }
            other => panic!("round {round}: {other} {answer}"),
        };
        let deadline = Instant::now() + SYNC_TIMEOUT;
        while figures().await.0 != "0" {
            assert!(
                Instant::now() < deadline,
                "round {round}: the sale never reached HQ"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Both sides agree: the unit left with the customer at the till; a hold the shop got
        // first stands against nothing and promises nothing more.
        let expected_reserved = if id.is_some() { "1" } else { "0" };
        assert_eq!(
            figures().await,
            ("0".to_owned(), expected_reserved.to_owned(), "0".to_owned()),
            "round {round}"
        );
        let at_store = get_json(&http, &format!("{url}/v1/stock/{BREAD_SKU}")).await;
        assert_eq!(at_store["on_hand"], "0", "round {round}");
        if let Some(id) = id {
            let answer = http
                .post(format!("{hq}/v1/reservations/{id}/actions"))
                .bearer_auth(&shop)
                .json(&json!({"action": "release"}))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
        }
    }
    assert_eq!(held + refused, 100);
    // A hundred sold at the till in the window: what to order.
    let reorder: Value = http
        .get(format!(
            "{hq}/v1/reorder-suggestions?store=vienna-01&window_days=28&lead_days=7&cover_days=14"
        ))
        .bearer_auth(&shop)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bread = reorder["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sku"] == BREAD_SKU)
        .unwrap_or_else(|| panic!("{reorder}"));
    // 100 / 28 = 3.571 a day; nothing left: 3.571 × (7 + 14) = 74.991, ordered whole: 75.
    assert_eq!(
        (
            &bread["sold_in_store"],
            &bread["sold_online"],
            &bread["per_day"],
            &bread["suggested"]
        ),
        (&json!("100"), &json!("0"), &json!("3.571"), &json!("75")),
        "{reorder}"
    );
    eprintln!(
        "[{}] the last item: the till sold it 100 times out of 100; the shop's hold was taken {held} times (before HQ heard of the sale) and refused {refused} times",
        db.database.backend()
    );
    drop(chain);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_item_sold_and_reserved_at_once_follows_the_policy_sqlite() {
    the_last_item_sold_and_reserved_at_once_follows_the_policy(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_item_sold_and_reserved_at_once_follows_the_policy_postgres() {
    the_last_item_sold_and_reserved_at_once_follows_the_policy(Backend::Postgres).await;
}
