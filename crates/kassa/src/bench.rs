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
    /// What signing a receipt for Austria's RKSV costs: the whole receipt (code, counter,
    /// chain, signature) with the software key and, given a token, with PKCS#11; beside the
    /// raw ECDSA P-256 signature of the same bytes.
    Rksv {
        /// Receipts to sign.
        #[arg(long, default_value_t = 5000)]
        receipts: usize,
        /// A PKCS#11 module to sign with as well (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so).
        #[arg(long, requires_all = ["token", "pin_file", "key_label"])]
        pkcs11_module: Option<PathBuf>,
        /// The token's label.
        #[arg(long)]
        token: Option<String>,
        /// A file whose first line is the user PIN.
        #[arg(long)]
        pin_file: Option<PathBuf>,
        /// The label of a P-256 key pair on the token.
        #[arg(long)]
        key_label: Option<String>,
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
    /// The web shop's view: a till sale reaching HQ's availability API and webhook, and
    /// reservations per second at HQ.
    Shop {
        /// Sales at the till, one at a time.
        #[arg(long, default_value_t = 100)]
        sales: usize,
        /// Reservations made at HQ.
        #[arg(long, default_value_t = 2000)]
        reservations: usize,
        /// Clients making them at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
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
        BenchWhat::Rksv {
            receipts,
            pkcs11_module,
            token,
            pin_file,
            key_label,
        } => {
            let pkcs11 = match (pkcs11_module, token, pin_file, key_label) {
                (Some(module), Some(token), Some(pin_file), Some(key_label)) => {
                    let pin = std::fs::read_to_string(&pin_file)
                        .with_context(|| format!("{}", pin_file.display()))?;
                    let pin = pin.lines().next().unwrap_or_default().trim().to_owned();
                    Some((module, token, pin, key_label))
                }
                _ => None,
            };
            bench_rksv(receipts.max(1), pkcs11)
        }
        BenchWhat::Catalog { variants } => {
            runtime.block_on(crate::bench_sync::bench_catalog(variants))
        }
        BenchWhat::Search { variants, postgres } => runtime.block_on(
            crate::bench_back_office::bench_search(variants, postgres.as_deref()),
        ),
        BenchWhat::Shop {
            sales,
            reservations,
            concurrency,
            postgres,
        } => runtime.block_on(crate::bench_shop::bench_shop(
            sales.max(1),
            reservations.max(1),
            concurrency.max(1),
            postgres.as_deref(),
        )),
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

/// One node for the store benchmark: `store_id` with a till `bench-t1`, commissioned for the
/// RKSV (a software key, not a legal device) when `rksv`; answers its URL and a device token.
async fn bench_node(root: &Path, store_id: &str, rksv: bool) -> anyhow::Result<(String, String)> {
    let data = root.join(store_id);
    let store = StoreId::parse(store_id).map_err(anyhow::Error::msg)?;
    let terminal = TerminalId::parse("bench-t1").map_err(anyhow::Error::msg)?;
    store::provision(&data, &store, std::slice::from_ref(&terminal)).await?;
    let seed: protocol::seed::SeedDto = serde_json::from_str(DEMO_SEED)?;
    store::seed(&data, &seed).await?;
    if rksv {
        let key_file = data.join("rksv.pem");
        store::fiscal::ensure_software_key(&key_file, "U:ATU13572463-bench")
            .map_err(anyhow::Error::msg)?;
        let pools = store::db::open(&data).await?;
        store::fiscal::commission(
            &pools.writer,
            &data,
            &terminal,
            &store::fiscal::Commission {
                register_id: "bench-t1".into(),
                aes_key: fiscal::rksv::new_aes_key().map_err(anyhow::Error::msg)?,
                device: store::fiscal::DeviceConfig::SoftwareKeyNotALegalDevice {
                    key_file,
                    key_id: "U:ATU13572463-bench".into(),
                    certificate: None,
                },
                time_zone: "Europe/Vienna".into(),
            },
        )
        .await
        .map_err(anyhow::Error::msg)?;
        pools.writer.close().await;
        pools.reader.close().await;
    }
    let settings = store::Settings {
        data_dir: data,
        listen: "127.0.0.1:0".parse()?,
        sync: None,
    };
    let app = store::App::build(&settings, Arc::new(SystemClock)).await?;
    let token = crate::bench::open_shift(&app.node(), "bench-t1").await?;
    let url = format!("http://{}", app.local_addr().context("no address")?);
    tokio::spawn(app.run(std::future::pending()));
    Ok((url, token))
}

async fn bench_store(
    sales: usize,
    clients: Vec<usize>,
    dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let temp = tempfile::Builder::new()
        .prefix("kassa-bench-")
        .tempdir_in(dir.unwrap_or_else(|| PathBuf::from(".")))?;
    // An Austrian store whose till signs every receipt for the RKSV, and a Swiss one whose
    // till has no fiscal step, in the same run.
    let nodes = [
        (
            "vienna-01 (RKSV)",
            bench_node(temp.path(), "vienna-01", true).await?,
        ),
        (
            "zurich-01",
            bench_node(temp.path(), "zurich-01", false).await?,
        ),
    ];

    println!(
        "Kassa store benchmark: {sales} durable sales per row, completed over HTTP on 127.0.0.1"
    );
    println!("| store | clients | basket | sales/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let mut bests = Vec::new();
    for (name, (url, token)) in &nodes {
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
                        let body = response.bytes().await?;
                        anyhow::ensure!(
                            status.as_u16() == 201,
                            "sale refused: {status} {}",
                            String::from_utf8_lossy(&body)
                        );
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
                "| {name} | {clients} | {lines} line{} | {rate:.0} | {} | {} |",
                if lines == 1 { "" } else { "s" },
                ms(percentile(&latencies, 50)),
                ms(percentile(&latencies, 99))
            );
        }
        bests.push(best);
    }
    let best = bests.iter().copied().fold(0.0_f64, f64::max);
    println!();
    println!(
        "best sales/s with the RKSV step over without it: {:.0} %",
        bests[0] / bests[1] * 100.0
    );
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

/// Signs `receipts` receipts of a register with `device`: the time per receipt.
fn sign_receipts(receipts: usize, device: &dyn fiscal::signer::Signer) -> anyhow::Result<Duration> {
    use fiscal::rksv::{Amounts, Kind, Receipt, Register};
    let mut register = Register::new(
        "bench-t1",
        &fiscal::rksv::new_aes_key().map_err(anyhow::Error::msg)?,
    )
    .map_err(anyhow::Error::msg)?;
    let at = "2026-12-05T10:00:00[Europe/Vienna]".parse::<jiff::Zoned>()?;
    let start = Receipt {
        number: "0",
        at: at.clone(),
        kind: Kind::Start,
        amounts: Amounts::default(),
    };
    register.sign(&start, device).map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    for n in 1..=receipts {
        let number = n.to_string();
        let receipt = Receipt {
            number: &number,
            at: at.clone(),
            kind: Kind::Standard,
            amounts: Amounts([1234, 560, 0, 0, 0]),
        };
        register
            .sign(&receipt, device)
            .map_err(anyhow::Error::msg)?;
    }
    Ok(started.elapsed() / u32::try_from(receipts).unwrap_or(u32::MAX))
}

fn bench_rksv(
    receipts: usize,
    pkcs11: Option<(PathBuf, String, String, String)>,
) -> anyhow::Result<()> {
    use fiscal::signer::Signer as _;
    let key = fiscal::signer::SoftwareKeyNotALegalDevice::generate("U:ATU13572463-bench")
        .map_err(anyhow::Error::msg)?;
    // The raw limit: the ECDSA signature alone, over bytes as long as a receipt's.
    let message = [b'x'; 220];
    let started = Instant::now();
    for _ in 0..receipts {
        key.sign(&message).map_err(anyhow::Error::msg)?;
    }
    let raw = started.elapsed() / u32::try_from(receipts).unwrap_or(u32::MAX);
    println!("Kassa RKSV benchmark: {receipts} receipts signed per device");
    println!("| device | per receipt µs | receipts/s |");
    println!("|---|---|---|");
    let row = |name: &str, per: Duration| {
        println!(
            "| {name} | {:.0} | {:.0} |",
            per.as_secs_f64() * 1e6,
            1.0 / per.as_secs_f64()
        );
    };
    row(
        "software key (not a legal device)",
        sign_receipts(receipts, &key)?,
    );
    if let Some((module, token, pin, key_label)) = pkcs11 {
        let token = fiscal::signer::pkcs11::Token::open(&module, &token, &pin)
            .map_err(anyhow::Error::msg)?;
        let device = token
            .device(&key_label, "U:ATU13572463-hsm")
            .map_err(anyhow::Error::msg)?;
        row(
            &format!("PKCS#11 ({})", module.display()),
            sign_receipts(receipts, &device)?,
        );
    }
    row("raw: one ECDSA P-256 signature (software)", raw);
    Ok(())
}
