//! `kassa bench store`: durable sales per second and latency of completing a sale over HTTP on
//! 127.0.0.1, beside the raw limit measured in the same run on the same disk: single-row SQLite
//! inserts with the same durability (WAL, synchronous=FULL, one transaction each).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use domain::{StoreId, TerminalId};
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use store::clock::SystemClock;

/// The demo reference data, built into the binary.
pub const DEMO_SEED: &str = include_str!("../../../data/demo/seed.json");

/// Arguments of `kassa bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(Debug, clap::Subcommand)]
enum BenchWhat {
    /// Completing sales over HTTP against the raw SQLite insert rate.
    Store {
        /// Sales per basket size.
        #[arg(long, default_value_t = 4000)]
        sales: usize,
        /// Concurrent clients (tills), comma-separated for several runs.
        #[arg(long, default_value = "4,16", value_delimiter = ',')]
        clients: Vec<usize>,
        /// Where to put the databases (default: a temporary directory on the current disk).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// How long a large catalog takes to reach a new store and be usable there.
    Catalog {
        /// Variants in the catalog.
        #[arg(long, default_value_t = 300_000)]
        variants: usize,
    },
    /// Catalog search at HQ over a large catalog.
    Search {
        /// Variants in the catalog.
        #[arg(long, default_value_t = 300_000)]
        variants: usize,
        /// Run HQ on this PostgreSQL server instead of SQLite (a scratch database is created).
        #[arg(long, env = "KASSA_BENCH_POSTGRES")]
        postgres: Option<String>,
    },
    /// How long a price changed at HQ takes to reach a till.
    Prices {
        /// Changes that take effect at once, made one after another.
        #[arg(long, default_value_t = 100)]
        changes: usize,
        /// Changes scheduled a moment ahead.
        #[arg(long, default_value_t = 10)]
        scheduled: usize,
    },
    /// The back office's dashboard and a 90-day sales report of a large chain, and HQ's memory.
    Pages {
        /// Stores in the chain.
        #[arg(long, default_value_t = 100)]
        stores: usize,
        /// Tills per store.
        #[arg(long, default_value_t = 4)]
        tills: usize,
        /// Business days of sales (the report's range).
        #[arg(long, default_value_t = 90)]
        days: usize,
        /// Fetches of each page.
        #[arg(long, default_value_t = 30)]
        rounds: usize,
    },
    /// Bytes per sale on the wire, HQ ingest rate, sale-to-HQ latency.
    Sync {
        /// Sales to ring and sync.
        #[arg(long, default_value_t = 20000)]
        sales: usize,
        /// Also measure HQ ingest on this PostgreSQL server (a scratch database is created).
        #[arg(long, env = "KASSA_BENCH_POSTGRES")]
        postgres: Option<String>,
        /// Tills whose ledgers HQ ingests side by side (each pushing its batches in order).
        #[arg(long, default_value_t = 1)]
        terminals: usize,
    },
}

/// Runs `kassa bench …`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    match args.what {
        BenchWhat::Store {
            sales,
            clients,
            dir,
        } => runtime.block_on(bench_store(sales, clients, dir)),
        BenchWhat::Catalog { variants } => {
            runtime.block_on(crate::bench_sync::bench_catalog(variants))
        }
        BenchWhat::Search { variants, postgres } => runtime.block_on(
            crate::bench_back_office::bench_search(variants, postgres.as_deref()),
        ),
        BenchWhat::Prices { changes, scheduled } => {
            runtime.block_on(crate::bench_back_office::bench_prices(changes, scheduled))
        }
        BenchWhat::Pages {
            stores,
            tills,
            days,
            rounds,
        } => runtime.block_on(crate::bench_back_office::bench_pages(
            stores,
            tills.max(1),
            days.max(1),
            rounds.max(1),
        )),
        BenchWhat::Sync {
            sales,
            postgres,
            terminals,
        } => runtime.block_on(crate::bench_sync::bench_sync(
            sales,
            postgres,
            terminals.max(1),
        )),
    }
}

/// Opens a shift on `terminal` of the benchmark node (a sale needs one) and answers the
/// credential the benchmark's clients send: it rings as an unattended device of the till.
pub(crate) async fn open_shift(node: &store::node::Node, terminal: &str) -> anyhow::Result<String> {
    let eur = domain::Currency::parse("EUR")?;
    store::shifts::ensure_open(
        node,
        &TerminalId::parse(terminal).map_err(anyhow::Error::msg)?,
        &domain::StaffId::parse("anna").map_err(anyhow::Error::msg)?,
        domain::Money::from_minor(15_000, eur),
    )
    .await?;
    device_token(node, terminal).await
}

/// A device credential for a benchmark or demo client ringing at `terminal` (a new one on
/// every run; the device keeps its id).
pub(crate) async fn device_token(
    node: &store::node::Node,
    terminal: &str,
) -> anyhow::Result<String> {
    let id = format!("sim-{terminal}");
    let now = jiff::Timestamp::now().as_millisecond();
    match store::auth::add_device(&node.pools, &id, terminal, now).await {
        Ok(token) => Ok(token),
        Err(store::auth::DeviceError::Taken(_)) => Ok(store::auth::rotate_device(&node.pools, &id)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

pub(crate) fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = (sorted.len() * p)
        .div_ceil(100)
        .saturating_sub(1)
        .min(sorted.len() - 1);
    sorted[index]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

async fn raw_inserts(dir: &Path, count: usize) -> anyhow::Result<f64> {
    let options = SqliteConnectOptions::new()
        .filename(dir.join("raw.sqlite"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    sqlx::query("CREATE TABLE raw (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        .execute(&pool)
        .await?;
    let body = vec![7_u8; 600];
    let started = Instant::now();
    for _ in 0..count {
        sqlx::query("INSERT INTO raw (body) VALUES ($1)")
            .bind(&body)
            .execute(&pool)
            .await?;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

fn basket(lines: usize, k: usize) -> Value {
    const CODES: [&str; 8] = [
        "9003909062415",
        "CLO-TEE-0001-XS-WEI",
        "2104011012507",
        "9113446044673",
        "GRO-DEL-0003",
        "GRO-FRU-0001",
        "GRO-FRU-0016",
        "2311101008993",
    ];
    let lines: Vec<Value> = (0..lines)
        .map(|i| {
            let code = CODES[(k + i) % CODES.len()];
            if code.starts_with("GRO-") {
                json!({"code": code, "quantity": "0.75"})
            } else {
                json!({"code": code})
            }
        })
        .collect();
    json!({"terminal": "bench-t1", "lines": lines, "tenders": [{"kind": "cash", "amount": "1000.00"}]})
}

async fn bench_store(
    sales: usize,
    clients: Vec<usize>,
    dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let temp = tempfile::Builder::new()
        .prefix("kassa-bench-")
        .tempdir_in(dir.unwrap_or_else(|| PathBuf::from(".")))?;
    let data = temp.path().join("node");
    let store_id = StoreId::parse("vienna-01").map_err(anyhow::Error::msg)?;
    let terminal = TerminalId::parse("bench-t1").map_err(anyhow::Error::msg)?;
    store::provision(&data, &store_id, &[terminal]).await?;
    let seed: protocol::seed::SeedDto = serde_json::from_str(DEMO_SEED)?;
    store::seed(&data, &seed).await?;
    let settings = store::Settings {
        data_dir: data,
        listen: "127.0.0.1:0".parse()?,
        sync: None,
    };
    let app = store::App::build(&settings, Arc::new(SystemClock)).await?;
    let token = crate::bench::open_shift(&app.node(), "bench-t1").await?;
    let url = format!("http://{}", app.local_addr().context("no address")?);
    tokio::spawn(app.run(std::future::pending()));

    println!(
        "Kassa store benchmark: {sales} durable sales per row, completed over HTTP on 127.0.0.1"
    );
    println!("| clients | basket | sales/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let mut best = 0.0_f64;
    let rows = clients.iter().flat_map(|c| [1, 4, 16].map(|l| (*c, l)));
    for (round, (clients, lines)) in rows.enumerate() {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            let per = sales / clients;
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per);
                for i in 0..per {
                    let k = c * per + i;
                    let t = Instant::now();
                    let response = http
                        .post(format!("{url}/v1/sales"))
                        .header("Idempotency-Key", format!("bench-{round}-{k}"))
                        .bearer_auth(&token)
                        .json(&basket(lines, k))
                        .send()
                        .await?;
                    let status = response.status();
                    let _ = response.bytes().await?;
                    anyhow::ensure!(status.as_u16() == 201, "sale refused: {status}");
                    latencies.push(t.elapsed());
                }
                Ok::<_, anyhow::Error>(latencies)
            }));
        }
        let mut latencies = Vec::new();
        for t in tasks {
            latencies.extend(t.await??);
        }
        let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
        best = best.max(rate);
        latencies.sort();
        println!(
            "| {clients} | {lines} line{} | {rate:.0} | {} | {} |",
            if lines == 1 { "" } else { "s" },
            ms(percentile(&latencies, 50)),
            ms(percentile(&latencies, 99))
        );
    }
    let raw = raw_inserts(temp.path(), sales.min(2000)).await?;
    println!();
    println!(
        "raw limit: {raw:.0} single-row inserts/s (WAL, synchronous=FULL, one transaction each, same disk)"
    );
    println!(
        "best sales/s over raw inserts/s: {:.0} %",
        best / raw * 100.0
    );
    Ok(())
}
