//! Scan to line on screen in a real browser: headless Chromium runs the till screen against a
//! store node whose catalog holds 300,000 variants; a scan is typed at scanner speed
//! (13 digits and Enter, no pause) and timed until its line is in the page. Reported beside the
//! raw limit measured in the same run: the till's two HTTP calls for a scan (item look-up, cart
//! price) made directly from Rust, with no browser.
//! Run with `cargo bench -p kassa --bench till -- --variants 300000 --scans 300`.
#![allow(clippy::unwrap_used)] // Benchmark code: a panic is a failed run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::seed::{
    IdentifierDto, PriceEntryDto, PricebookDto, ProductDto, ScopeDto, SeedDto, VariantDto,
};
use serde_json::{Value, json};
use test_support::browser::{Browser, dt};
use test_support::{Rng, client};

const T1: &str = "vienna-01-t1";
/// Lines per basket: the cart is cleared after this many scans.
const BASKET: usize = 20;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn gtin(i: usize) -> String {
    let payload = format!("20{i:010}");
    let check = domain::barcode::gtin_check_digit(&payload).unwrap();
    format!("{payload}{check}")
}

/// The demo catalog plus `variants` generated items priced in EUR, each with a GTIN.
fn large_seed(variants: usize) -> SeedDto {
    let mut seed: SeedDto = test_support::demo_seed().unwrap();
    let mut entries = Vec::with_capacity(variants);
    for i in 0..variants {
        let sku = format!("BULK-{i:07}");
        seed.products.push(ProductDto {
            id: format!("bulk-{i:07}"),
            name: format!("Artikel {i}"),
            brand: None,
            category: None,
            variants: vec![VariantDto {
                sku: sku.clone(),
                name: format!("Artikel {i} 500 g"),
                identifiers: vec![IdentifierDto::Gtin(gtin(i))],
                tax: if i % 3 == 0 { "standard" } else { "reduced" }.into(),
                unit: "each".into(),
                channels: "all".into(),
                open_price: false,
            }],
        });
        entries.push(PriceEntryDto {
            sku,
            price: format!("{}.{:02}", 1 + i % 50, i % 100),
            from: None,
            to: None,
        });
    }
    seed.pricebooks.push(PricebookDto {
        id: "bulk-eur".into(),
        version: 1,
        scope: ScopeDto::Chain("chain".into()),
        currency: "EUR".into(),
        entries,
    });
    seed
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64) * p / 100.0).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(name: &str, mut values: Vec<f64>) {
    values.sort_by(f64::total_cmp);
    println!(
        "{name:<44} n={:<4} p50 {:>6.2} ms  p95 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms",
        values.len(),
        percentile(&values, 50.0),
        percentile(&values, 95.0),
        percentile(&values, 99.0),
        values.last().copied().unwrap_or(0.0)
    );
}

fn main() {
    let variants = arg("--variants", 300_000);
    let scans = arg("--scans", 300);
    let warmup = 20;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let Some(browser) = Browser::launch_or_skip().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("node");
        let started = Instant::now();
        let store_id = domain::StoreId::parse("vienna-01").unwrap();
        let terminal = domain::TerminalId::parse(T1).unwrap();
        store::provision(&data, &store_id, &[terminal]).await.unwrap();
        store::seed(&data, &large_seed(variants)).await.unwrap();
        println!(
            "catalog of {variants} generated variants (plus the demo catalog) seeded in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        // The node runs in this process: a 300,000-variant catalog can take longer to load than
        // a spawned process is given to start listening.
        let app = store::App::build(
            &store::Settings {
                data_dir: data.clone(),
                listen: "127.0.0.1:0".parse().unwrap(),
                sync: None,
            },
            Arc::new(store::clock::SystemClock),
        )
        .await
        .unwrap();
        let url = format!("http://{}", app.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = app.run(std::future::pending()).await;
        });
        println!(
            "node serving {url} after {:.1} s",
            started.elapsed().as_secs_f64()
        );

        let page = browser
            .open(&format!("{url}/till?terminal={T1}&lang=en"))
            .await
            .unwrap();
        page.wait_for(
            "till start",
            "document.body.dataset.screen === 'sell' || document.body.dataset.screen === 'signin'",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        if page.eval("document.body.dataset.screen").await.unwrap() == "signin" {
            page.click(&dt("staff-anna")).await.unwrap();
            page.wait_visible(&dt("pin-input")).await.unwrap();
            page.type_keys("1111").await.unwrap();
            page.press("Enter").await.unwrap();
            page.wait_for(
                "signed in",
                "document.body.dataset.screen === 'sell' || document.body.dataset.screen === 'shift'",
                Duration::from_secs(15),
            )
            .await
            .unwrap();
            if page.eval("document.body.dataset.screen").await.unwrap() == "shift" {
                page.fill(&dt("float-input"), "150.00").await.unwrap();
                page.click(&dt("open-shift")).await.unwrap();
            }
        }
        page.wait_for(
            "selling screen",
            "document.body.dataset.screen === 'sell'",
            Duration::from_secs(15),
        )
        .await
        .unwrap();

        let mut rng = Rng::new(7);
        let mut end_to_end = Vec::new();
        let mut in_page = Vec::new();
        let mut lines = 0_usize;
        for k in 0..(warmup + scans) {
            if lines == BASKET {
                page.click(&dt("btn-clear")).await.unwrap();
                page.click(&dt("confirm-yes")).await.unwrap();
                page.wait_for(
                    "empty cart",
                    "document.querySelectorAll('[data-test=cart-line]').length === 0",
                    Duration::from_secs(15),
                )
                .await
                .unwrap();
                lines = 0;
            }
            let code = gtin(usize::try_from(rng.below(variants as u64)).unwrap());
            let before = page.eval("window.kassaScanTimings.length").await.unwrap();
            let before = before.as_u64().unwrap_or(0);
            lines += 1;
            let wait = format!(
                "new Promise(resolve => {{
                    const list = document.querySelector('[data-test=cart-lines]');
                    const done = () => list.querySelectorAll('[data-test=cart-line]').length >= {lines};
                    if (done()) return resolve(true);
                    const observer = new MutationObserver(() => {{ if (done()) {{ observer.disconnect(); resolve(true); }} }});
                    observer.observe(list, {{ childList: true }});
                    setTimeout(() => {{ observer.disconnect(); resolve(false); }}, 10000);
                }})"
            );
            let t0 = Instant::now();
            page.scan(&code).await.unwrap();
            let shown = page.eval(&wait).await.unwrap();
            let elapsed = t0.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(shown, Value::Bool(true), "scan {k} ({code}) never showed its line");
            let timing = page
                .eval(&format!("window.kassaScanTimings[{before}]"))
                .await
                .unwrap();
            if k >= warmup {
                end_to_end.push(elapsed);
                in_page.push(timing.as_f64().unwrap_or(f64::NAN));
            }
        }

        // The raw limit: the same two requests per scan straight from Rust.
        let http = client();
        let mut raw = Vec::new();
        let mut basket: Vec<Value> = Vec::new();
        for k in 0..(warmup + scans) {
            if basket.len() == BASKET {
                basket.clear();
            }
            let code = gtin(usize::try_from(rng.below(variants as u64)).unwrap());
            let t0 = Instant::now();
            let item = http
                .get(format!("{url}/v1/items/{code}"))
                .send()
                .await
                .unwrap();
            assert_eq!(item.status(), 200);
            let _: Value = item.json().await.unwrap();
            basket.push(json!({"code": code, "quantity": "1"}));
            let priced = http
                .post(format!("{url}/v1/carts/price"))
                .json(&json!({ "lines": basket }))
                .send()
                .await
                .unwrap();
            assert_eq!(priced.status(), 200);
            let _: Value = priced.json().await.unwrap();
            if k >= warmup {
                raw.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
        }

        println!("scan to line on screen, {scans} scans, baskets of {BASKET} lines:");
        summary("end to end (keys sent from Rust → line in DOM)", end_to_end);
        summary("in the page (Enter keydown → line drawn)", in_page);
        summary("raw limit: look-up + price over HTTP, no browser", raw);
        browser.close().await;
        server.abort();
    });
}
