//! `kassa bench sync`: bytes on the wire per sale against one JSON document per sale, HQ ingest
//! rate on SQLite and PostgreSQL against the raw insert rate of the same database, and
//! sale-to-HQ latency when online.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use domain::{StoreId, TerminalId};
use serde_json::{Value, json};
use store::clock::SystemClock;

use crate::bench::DEMO_SEED;

/// The PIN pepper of the benchmark chain (nobody signs in).
pub(crate) const BENCH_PEPPER: &[u8; 32] = b"kassa benchmark pepper, 32 bytes";

impl Node {
    /// Opens a shift on each till (a sale needs one); answers each till's credential, in
    /// the order of the tills.
    pub(crate) async fn open_shifts(&self) -> anyhow::Result<Vec<String>> {
        let mut tokens = Vec::with_capacity(self.terminals.len());
        for (terminal, _) in &self.terminals {
            tokens.push(crate::bench::open_shift(&self.node, terminal.as_str()).await?);
        }
        Ok(tokens)
    }
}

/// The reference version the node holds from HQ's change log; 0 until it follows the log.
pub(crate) async fn followed_version(node: &Node) -> anyhow::Result<i64> {
    let followed = store::refdata::hq_log(&node.node.pools.reader).await?;
    Ok(match followed {
        Some(_) => node.node.context().map_or(0, |c| c.version),
        None => 0,
    })
}

/// What a browser POS sends per sale: a request line and headers, then the order as JSON.
fn http_request_bytes(path: &str, content_type: &str, body_len: usize) -> usize {
    format!(
        "POST {path} HTTP/1.1\r\nHost: hq.example.com\r\nContent-Type: {content_type}\r\nContent-Length: {body_len}\r\nAuthorization: Bearer {}\r\n\r\n",
        "x".repeat(64)
    )
    .len()
        + body_len
}

pub(crate) struct Node {
    pub(crate) url: String,
    data: std::path::PathBuf,
    /// Terminal ids with their public keys (hex), in provisioning order.
    pub(crate) terminals: Vec<(TerminalId, String)>,
    node: Arc<store::node::Node>,
    _app: tokio::task::JoinHandle<()>,
}

pub(crate) async fn start_node(
    dir: &Path,
    sync: Option<store::sync::SyncSettings>,
    terminals: usize,
) -> anyhow::Result<Node> {
    let data = dir.join("node");
    let store_id = StoreId::parse("vienna-01").map_err(anyhow::Error::msg)?;
    let ids = (1..=terminals)
        .map(|t| TerminalId::parse(&format!("vienna-01-t{t}")).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let keys = store::provision(&data, &store_id, &ids).await?;
    // HQ's pepper, as an installer gives it: the node takes HQ's staff when it syncs.
    store::keys::pepper(&data, Some(&hex::encode(BENCH_PEPPER)))?;
    let seed: protocol::seed::SeedDto = serde_json::from_str(DEMO_SEED)?;
    store::seed(&data, &seed).await?;
    let app = store::App::build(
        &store::Settings {
            data_dir: data.clone(),
            listen: "127.0.0.1:0".parse()?,
            sync,
        },
        Arc::new(SystemClock),
    )
    .await?;
    let url = format!("http://{}", app.local_addr().context("no address")?);
    let node = app.node();
    let handle = tokio::spawn(async move {
        let _ = app.run(std::future::pending()).await;
    });
    Ok(Node {
        url,
        data,
        terminals: keys.into_iter().map(|(t, k)| (t, hex::encode(k))).collect(),
        node,
        _app: handle,
    })
}

fn basket(rng: &mut u64, codes: &[&str], terminal: &str) -> Value {
    let mut next = || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng
    };
    let lines: Vec<Value> = (0..(next() % 5 + 1))
        .map(|_| json!({"code": codes[(next() % codes.len() as u64) as usize], "quantity": (next() % 2 + 1).to_string()}))
        .collect();
    json!({"terminal": terminal, "lines": lines, "tenders": [{"kind": "cash", "amount": "500.00"}]})
}

const CODES: [&str; 10] = [
    "9003909062415",
    "CLO-TEE-0001-XS-WEI",
    "9113446044673",
    "GRO-BRD-0012",
    "CLO-TEE-0001-XS-SWZ",
    "9131397069101",
    "GRO-DRK-0001-6ER",
    "10012",
    "CLO-TEE-0001-L-NAV",
    "GRO-BRD-0003",
];

async fn ring(
    http: &reqwest::Client,
    url: &str,
    (terminal, token): (&TerminalId, &str),
    k: usize,
    rng: &mut u64,
) -> anyhow::Result<Value> {
    let response = http
        .post(format!("{url}/v1/sales"))
        .header("Idempotency-Key", format!("bench-sync-{k}"))
        .bearer_auth(token)
        .json(&basket(rng, &CODES, terminal.as_str()))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().as_u16() == 201,
        "sale refused: {}",
        response.text().await?
    );
    Ok(response.json().await?)
}

/// Runs the sync benchmarks.
pub async fn bench_sync(
    sales: usize,
    postgres: Option<String>,
    terminals: usize,
) -> anyhow::Result<()> {
    let temp = tempfile::Builder::new()
        .prefix("kassa-bench-sync-")
        .tempdir_in(".")?;
    let node = start_node(temp.path(), None, terminals).await?;
    let tokens = node.open_shifts().await?;
    let http = reqwest::Client::new();
    let mut rng = 0x2545_F491_4F6C_DD1D_u64;
    let mut baseline = 0_usize;
    for k in 0..sales {
        let till = k % node.terminals.len();
        let terminal = (&node.terminals[till].0, tokens[till].as_str());
        let receipt = ring(&http, &node.url, terminal, k, &mut rng).await?;
        baseline += http_request_bytes(
            "/api/pos/orders",
            "application/json",
            receipt.to_string().len(),
        );
    }
    let pools = store::db::open(&node.data).await?;
    // Each terminal's outbox as it would push it: batches of up to 2,000 events, in order.
    let mut pushes: Vec<(TerminalId, String, Vec<Vec<u8>>)> = Vec::new();
    let mut wire = 0_usize;
    for (terminal, key) in &node.terminals {
        let mut batches = Vec::new();
        let mut acked = 0_i64;
        while let Some(batch) =
            store::sync::build_batch(&pools.reader, "vienna-01", terminal.as_str(), acked, 2000)
                .await?
        {
            acked += i64::from(batch.header.count);
            let body = protocol::sync::encode_batch(&batch, store::sync::BATCH_LEVEL);
            wire += http_request_bytes(
                "/v1/sync/push",
                protocol::sync::BATCH_MEDIA_TYPE,
                body.len(),
            );
            batches.push(body);
        }
        pushes.push((terminal.clone(), key.clone(), batches));
    }
    let batch_count: usize = pushes.iter().map(|(_, _, b)| b.len()).sum();
    let per_sale = wire as f64 / sales as f64;
    let baseline_per_sale = baseline as f64 / sales as f64;
    println!(
        "## Bytes on the wire per sale ({sales} sales of 1-5 lines, batches of up to 2,000 events)"
    );
    println!("| format | bytes per sale |");
    println!("|---|---|");
    println!(
        "| Kassa batches (canonical events, zstd level {}) | {per_sale:.1} |",
        store::sync::BATCH_LEVEL
    );
    println!(
        "| baseline: one JSON document per sale, one HTTP POST each | {baseline_per_sale:.0} |"
    );
    println!("ratio: {:.0}x fewer bytes", baseline_per_sale / per_sale);
    println!();

    println!(
        "## HQ ingest ({sales} sales of {terminals} terminals in {batch_count} batches, verified and applied)"
    );
    println!("| database | events/s | raw inserts/s (same rows, same batch size) | ratio |");
    println!("|---|---|---|---|");
    let sqlite_dir = temp.path().join("hq");
    let mut targets = vec![("SQLite", hq::db::sqlite_url(&sqlite_dir)?)];
    if let Some(url) = postgres {
        targets.push(("PostgreSQL", fresh_postgres(&url).await?));
    }
    for (name, url) in targets {
        let (events, raw) = ingest_rate(&url, &pushes).await?;
        println!(
            "| {name} | {events:.0} | {raw:.0} | {:.0} % |",
            events / raw * 100.0
        );
    }
    println!();
    latency(temp.path()).await?;
    Ok(())
}

/// User plus system CPU time of this process so far, in seconds (Linux; `None` elsewhere).
fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Clock ticks: 100 per second on Linux.
    Some((utime + stime) / 100.0)
}

/// A scratch database on the PostgreSQL server of `url`, named after this process.
pub(crate) async fn fresh_postgres(url: &str) -> anyhow::Result<String> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await?;
    let name = format!("kassa_bench_{}", std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&pool)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await?;
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

async fn ingest_rate(
    url: &str,
    pushes: &[(TerminalId, String, Vec<Vec<u8>>)],
) -> anyhow::Result<(f64, f64)> {
    let db = hq::db::open(url).await?;
    let seed: protocol::seed::SeedDto = serde_json::from_str(DEMO_SEED)?;
    hq::refdata::publish(&db, &seed, BENCH_PEPPER).await?;
    let store = StoreId::parse("vienna-01").map_err(anyhow::Error::msg)?;
    hq::add_store(&db, &store, "bench").await?;
    let mut work = Vec::new();
    for (terminal, public_key, batches) in pushes {
        hq::add_terminal(&db, &store, terminal, public_key).await?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(
            &<[u8; 32]>::try_from(hex::decode(public_key)?).map_err(|_| anyhow::anyhow!("key"))?,
        )?;
        work.push((terminal.clone(), key, batches.clone()));
    }
    // Each terminal pushes its batches one after the other, as its outbox does; the terminals
    // push at the same time, as a chain's do. Verification runs in the request, before ingest.
    let started = Instant::now();
    let cpu_before = process_cpu_secs();
    let mut tasks = tokio::task::JoinSet::new();
    for (terminal, key, batches) in work {
        let db = db.clone();
        tasks.spawn(async move {
            let mut events = 0_usize;
            let mut verifying = Duration::ZERO;
            for body in &batches {
                let t = Instant::now();
                let batch = protocol::sync::decode_batch(body)?;
                let verified = protocol::sync::verify_batch(&batch, "vienna-01", &key)?;
                verifying += t.elapsed();
                events += verified.len();
                hq::ingest::ingest(&db, terminal.as_str(), &verified, 0).await?;
            }
            anyhow::Ok((events, verifying))
        });
    }
    let mut events = 0_usize;
    let mut verifying = Duration::ZERO;
    while let Some(done) = tasks.join_next().await {
        let (e, v) = done??;
        events += e;
        verifying += v;
    }
    let elapsed = started.elapsed();
    let cpu = process_cpu_secs()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let rate = events as f64 / elapsed.as_secs_f64();
    if let Some(cpu) = cpu {
        // CPU time holds better than wall time on a shared machine; on SQLite it is all of
        // ingest, on PostgreSQL only HQ's side (the server's own work is not counted).
        eprintln!(
            "  (this process spent {:.1} µs of CPU per event ingested)",
            cpu * 1e6 / events as f64
        );
    }
    eprintln!(
        "  ({url_kind}: decompressing, decoding and verifying {:.0} events/s, decoding on every core)",
        events as f64 / verifying.as_secs_f64(),
        url_kind = if url.starts_with("sqlite") {
            "SQLite"
        } else {
            "PostgreSQL"
        },
    );
    // The raw limit: the same number of rows of the same size, inserted in transactions of the
    // same size, into a plain table of the same database.
    sqlx::query("CREATE TABLE raw_bench (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&db.pool)
        .await?;
    let body = "x".repeat(700);
    let started = Instant::now();
    let mut id = 0_i64;
    for batch in pushes.iter().flat_map(|(_, _, b)| b) {
        let n = protocol::sync::decode_batch(batch)?.events.len();
        let mut tx = db.pool.begin().await?;
        for _ in 0..n {
            id += 1;
            sqlx::query("INSERT INTO raw_bench (id, body) VALUES ($1, $2)")
                .bind(id)
                .bind(&body)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    let raw = id as f64 / started.elapsed().as_secs_f64();
    db.pool.close().await;
    Ok((rate, raw))
}

async fn latency(dir: &Path) -> anyhow::Result<()> {
    let hq_dir = dir.join("hq-latency");
    let url = hq::db::sqlite_url(&hq_dir)?;
    let db = hq::db::open(&url).await?;
    let seed: protocol::seed::SeedDto = serde_json::from_str(DEMO_SEED)?;
    hq::refdata::publish(&db, &seed, BENCH_PEPPER).await?;
    let store = StoreId::parse("vienna-01").map_err(anyhow::Error::msg)?;
    let token = hq::add_store(&db, &store, "bench").await?;
    let app = hq::App::build(&hq::Settings {
        tls: None,
        ca_pem: None,
        client_ca: None,
        store_backups: None,
        database_url: url,
        listen: "127.0.0.1:0".parse()?,
        api_token: None,
        close_metrics: false,
        pin_pepper: None,
        secure_cookies: false,
        webhook_backoff: hq::webhooks::Backoff::default(),
    })
    .await?;
    let hq_url = format!("http://{}", app.local_addr().context("no address")?);
    tokio::spawn(app.run(std::future::pending()));
    let node = start_node(
        &dir.join("latency"),
        Some(store::sync::SyncSettings {
            hq_url,
            token: token.into(),
            pull_every: Duration::from_secs(60),
            hq_ca: None,
            hq_client_cert: None,
        }),
        1,
    )
    .await?;
    let (terminal, public_key) = node.terminals.first().context("no terminal")?;
    hq::add_terminal(&db, &store, terminal, public_key).await?;
    // The shift opens once HQ knows the till, so its first push is accepted.
    let tokens = node.open_shifts().await?;
    let http = reqwest::Client::new();
    let mut rng = 7_u64;
    let mut samples = Vec::new();
    for k in 0..200 {
        let receipt = ring(&http, &node.url, (terminal, &tokens[0]), k, &mut rng).await?;
        let seq = receipt["seq"].as_i64().unwrap_or(0);
        let rang = Instant::now();
        loop {
            let acked: i64 =
                sqlx::query_scalar("SELECT acked_seq FROM terminals WHERE id = 'vienna-01-t1'")
                    .fetch_one(&db.pool)
                    .await?;
            if acked >= seq {
                break;
            }
            anyhow::ensure!(
                rang.elapsed() < Duration::from_secs(30),
                "sale {seq} did not reach HQ in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(rang.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    samples.sort();
    let at = |p: usize| samples[(samples.len() * p).div_ceil(100).saturating_sub(1)];
    println!("## Sale-to-HQ latency when online (200 sales, one at a time, HQ on SQLite)");
    println!(
        "p50 {:.1} ms, p95 {:.1} ms (from the node's 201 to HQ's acknowledgement)",
        at(50).as_secs_f64() * 1000.0,
        at(95).as_secs_f64() * 1000.0
    );
    Ok(())
}

/// A synthetic chain catalog of `variants` variants, each with a GTIN, priced in both chain
/// books, plus the demo chain's stores and tax rules.
pub(crate) fn large_seed(variants: usize) -> anyhow::Result<protocol::seed::SeedDto> {
    use protocol::seed::{
        IdentifierDto, PriceEntryDto, PricebookDto, ProductDto, ScopeDto, VariantDto,
    };
    let mut seed: protocol::seed::SeedDto = serde_json::from_str(DEMO_SEED)?;
    let mut eur = Vec::with_capacity(variants);
    let mut chf = Vec::with_capacity(variants);
    for i in 0..variants {
        let payload = format!("20{:010}", i);
        let check = domain::barcode::gtin_check_digit(&payload).context("check digit")?;
        let sku = format!("BULK-{i:07}");
        seed.products.push(ProductDto {
            id: format!("bulk-{i:07}"),
            name: format!("Artikel {i}"),
            brand: None,
            category: None,
            variants: vec![VariantDto {
                sku: sku.clone(),
                name: format!("Artikel {i} 500 g"),
                identifiers: vec![IdentifierDto::Gtin(format!("{payload}{check}"))],
                tax: if i % 3 == 0 {
                    "standard".into()
                } else {
                    "reduced".into()
                },
                unit: "each".into(),
                channels: "all".into(),
                open_price: false,
            }],
        });
        let price = format!("{}.{:02}", 1 + i % 50, i % 100);
        eur.push(PriceEntryDto {
            sku: sku.clone(),
            price: price.clone(),
            from: None,
            to: None,
        });
        chf.push(PriceEntryDto {
            sku,
            price,
            from: None,
            to: None,
        });
    }
    seed.pricebooks.push(PricebookDto {
        id: "bulk-eur".into(),
        version: 1,
        scope: ScopeDto::Chain("chain".into()),
        currency: "EUR".into(),
        entries: eur,
    });
    seed.pricebooks.push(PricebookDto {
        id: "bulk-chf".into(),
        version: 1,
        scope: ScopeDto::Chain("chain".into()),
        currency: "CHF".into(),
        entries: chf,
    });
    Ok(seed)
}

/// How long a large catalog takes to reach a new store and be usable there.
pub async fn bench_catalog(variants: usize) -> anyhow::Result<()> {
    let temp = tempfile::Builder::new()
        .prefix("kassa-bench-catalog-")
        .tempdir_in(".")?;
    let url = hq::db::sqlite_url(&temp.path().join("hq"))?;
    let db = hq::db::open(&url).await?;
    let seed = large_seed(variants)?;
    let started = Instant::now();
    hq::refdata::publish(&db, &seed, BENCH_PEPPER).await?;
    let publish = started.elapsed();
    let store = StoreId::parse("vienna-01").map_err(anyhow::Error::msg)?;
    let terminal = TerminalId::parse("vienna-01-t1").map_err(anyhow::Error::msg)?;
    let token = hq::add_store(&db, &store, "bench").await?;
    let app = hq::App::build(&hq::Settings {
        tls: None,
        ca_pem: None,
        client_ca: None,
        store_backups: None,
        database_url: url,
        listen: "127.0.0.1:0".parse()?,
        api_token: None,
        close_metrics: false,
        pin_pepper: None,
        secure_cookies: false,
        webhook_backoff: hq::webhooks::Backoff::default(),
    })
    .await?;
    let hq_url = format!("http://{}", app.local_addr().context("no address")?);
    tokio::spawn(app.run(std::future::pending()));
    let data = temp.path().join("node");
    let keys = store::provision(&data, &store, &[terminal]).await?;
    store::keys::pepper(&data, Some(&hex::encode(BENCH_PEPPER)))?;
    hq::add_terminal(&db, &store, &keys[0].0, &hex::encode(keys[0].1)).await?;
    // The clock starts when the new node starts: it has nothing but its keys.
    let started = Instant::now();
    let app = store::App::build(
        &store::Settings {
            data_dir: data,
            listen: "127.0.0.1:0".parse()?,
            sync: Some(store::sync::SyncSettings {
                hq_url,
                token: token.into(),
                pull_every: Duration::from_millis(200),
                hq_ca: None,
                hq_client_cert: None,
            }),
        },
        Arc::new(SystemClock),
    )
    .await?;
    let node_url = format!("http://{}", app.local_addr().context("no address")?);
    tokio::spawn(app.run(std::future::pending()));
    let last = format!("BULK-{:07}", variants - 1);
    let http = reqwest::Client::new();
    loop {
        let response = http
            .get(format!("{node_url}/v1/items/{last}"))
            .send()
            .await?;
        if response.status().is_success() {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "catalog did not arrive within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let usable = started.elapsed();
    let response: Value = http
        .get(format!("{node_url}/v1/items/{last}"))
        .send()
        .await?
        .json()
        .await?;
    println!(
        "## A {variants}-variant catalog reaching a new store (HQ and store on SQLite, 127.0.0.1)"
    );
    println!(
        "HQ publish: {:.1} s; new store from start to the last variant priced and scannable: {:.1} s",
        publish.as_secs_f64(),
        usable.as_secs_f64()
    );
    println!(
        "last variant at the store: {} {} {}",
        response["sku"], response["price"], response["currency"]
    );
    Ok(())
}
