//! How long a busy store's day (2,000 sales rung offline) takes to reach HQ through a link
//! capped at 64 kbit/s, beside the raw limit of the same link in the same run: the bytes that
//! crossed it divided by its capacity. Real processes on 127.0.0.1 and the in-repo fault proxy.
//! Run with `cargo bench -p kassa --bench slow_link`.
#![allow(clippy::unwrap_used)] // Benchmark code: a panic is a failed run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use test_support::chain::{ChainSpec, HqDatabase, StoreSpec, spawn_chain};
use test_support::{Rng, client};

const BYTES_PER_SECOND: u64 = 8_000;
const CODES: [&str; 6] = [
    "9003909062415",
    "CLO-TEE-0001-XS-WEI",
    "9113446044673",
    "GRO-BRD-0012",
    "2104011012507",
    "CLO-TEE-0001-L-NAV",
];

fn main() {
    let sales: usize = std::env::var("KASSA_BENCH_SALES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let kassa = PathBuf::from(env!("CARGO_BIN_EXE_kassa"));
        let mut chain = spawn_chain(
            &kassa,
            dir.path(),
            HqDatabase::Sqlite(dir.path().join("hq")),
            ChainSpec {
                stores: vec![StoreSpec::new("vienna-01", "Kassa Wien Mariahilf", &["vienna-01-t1", "vienna-01-t2"])],
                hq_up: false,
                pull_every_secs: 60,
            },
        )
        .await
        .unwrap();
        let http = client();
        let url = chain.stores[0].url().unwrap().to_owned();
        let mut rng = Rng::new(42);
        for k in 0..sales {
            let lines: Vec<_> = (0..(rng.below(5) + 1))
                .map(|_| json!({"code": CODES[usize::try_from(rng.below(6)).unwrap()]}))
                .collect();
            let terminal = if k % 2 == 0 { "vienna-01-t1" } else { "vienna-01-t2" };
            let response = http
                .post(format!("{url}/v1/sales"))
                .header("Idempotency-Key", format!("day-{k}"))
                .json(&json!({"terminal": terminal, "lines": lines, "tenders": [{"kind": "cash", "amount": "500.00"}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
        }
        let proxy = &chain.stores[0].proxy;
        proxy.set_bandwidth(Some(BYTES_PER_SECOND));
        let (up_before, down_before) = (proxy.bytes_up(), proxy.bytes_down());
        let started = Instant::now();
        chain.start_hq().await.unwrap();
        chain.wait_synced(&http, Duration::from_secs(600), &[]).await.unwrap();
        let took = started.elapsed();
        let proxy = &chain.stores[0].proxy;
        let (up, down) = (proxy.bytes_up() - up_before, proxy.bytes_down() - down_before);
        let limit = (up + down) as f64 / BYTES_PER_SECOND as f64;
        println!("## A busy store's day through a 64 kbit/s link ({sales} sales of 1-5 lines, two tills)");
        println!("| measure | value |");
        println!("|---|---|");
        println!("| time from HQ reachable to every sale acknowledged | {:.1} s |", took.as_secs_f64());
        println!("| bytes store → HQ | {up} ({:.1} per sale) |", up as f64 / sales as f64);
        println!("| bytes HQ → store | {down} |");
        println!("| raw limit: those bytes at 8,000 B/s | {limit:.1} s |");
    });
}
