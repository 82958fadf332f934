//! `kassa bench prices`: how long a price changed at HQ takes to reach a till. HQ (SQLite) and a
//! store node run with real HTTP on 127.0.0.1 and the store's default pull interval; prices are
//! changed through HQ's write API with an API key, and the node's item lookup (what the till
//! asks when an item is scanned) is watched for the new price. Beside it, the raw limit
//! measured in the same run: one item lookup's round trip.

use std::time::{Duration, Instant};

use anyhow::Context;
use domain::StoreId;
use serde_json::{Value, json};

use crate::bench::DEMO_SEED;
use crate::bench_sync::{BENCH_PEPPER, start_node};

/// The variant whose price changes, and the code a till scans for it.
const SKU: &str = "GRO-BRD-0012";
const CODE: &str = "9003909062415";

/// The price the node's item lookup answers for [`CODE`].
async fn till_price(http: &reqwest::Client, node: &str) -> anyhow::Result<Option<String>> {
    let item: Value = http
        .get(format!("{node}/v1/items/{CODE}"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(item["price"].as_str().map(str::to_owned))
}

async fn change(
    http: &reqwest::Client,
    hq: &str,
    key: &str,
    price: &str,
    effective: Option<String>,
) -> anyhow::Result<()> {
    let response = http
        .post(format!("{hq}/v1/price-changes"))
        .bearer_auth(key)
        .json(&json!({"sku": SKU, "price": price, "currency": "EUR", "effective": effective}))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().as_u16() == 201,
        "price change refused: {}",
        response.text().await?
    );
    Ok(())
}

/// Waits until the till's price is `price`; the instant it was first seen.
async fn until_price(http: &reqwest::Client, node: &str, price: &str) -> anyhow::Result<Instant> {
    let asked = Instant::now();
    loop {
        if till_price(http, node).await?.as_deref() == Some(price) {
            return Ok(Instant::now());
        }
        anyhow::ensure!(
            asked.elapsed() < Duration::from_secs(60),
            "the till did not show {price} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the benchmark: `changes` immediate changes one after another, then `scheduled` changes
/// each a second and a half ahead.
pub async fn bench_prices(changes: usize, scheduled: usize) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = temp.path();
    let url = hq::db::sqlite_url(&dir.join("hq"))?;
    let db = hq::db::open(&url).await?;
    let seed: protocol::seed::SeedDto = serde_json::from_str(DEMO_SEED)?;
    hq::refdata::publish(&db, &seed, BENCH_PEPPER).await?;
    let store = StoreId::parse("vienna-01").map_err(anyhow::Error::msg)?;
    let token = hq::add_store(&db, &store, "bench").await?;
    let now = jiff::Timestamp::now().as_millisecond();
    let key = hq::identity::create_api_key(
        &db,
        &hq::identity::Actor::Cli,
        "price benchmark",
        &[hq::identity::Scope::CatalogWrite],
        now,
    )
    .await?
    .secret;
    let app = hq::App::build(&hq::Settings {
        database_url: url,
        listen: "127.0.0.1:0".parse()?,
        api_token: None,
    })
    .await?;
    let hq_url = format!("http://{}", app.local_addr().context("no address")?);
    tokio::spawn(app.run(std::future::pending()));
    let pull_every = Duration::from_secs(crate::store_cmd::DEFAULT_PULL_EVERY_S);
    let node = start_node(
        &dir.join("store"),
        Some(store::sync::SyncSettings {
            hq_url: hq_url.clone(),
            token,
            pull_every,
        }),
        1,
    )
    .await?;
    let http = reqwest::Client::new();
    // The node follows HQ's change log once it has taken HQ's snapshot.
    let started = Instant::now();
    while crate::bench_sync::followed_version(&node).await? == 0 {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "the node did not follow HQ within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut floor = Vec::new();
    for _ in 0..200 {
        let asked = Instant::now();
        till_price(&http, &node.url).await?;
        floor.push(asked.elapsed());
    }
    floor.sort();

    let mut now_samples = Vec::with_capacity(changes);
    for k in 0..changes {
        let price = format!("{}.{:02}", 1 + k / 100, k % 100);
        change(&http, &hq_url, &key, &price, None).await?;
        let committed = Instant::now();
        let seen = until_price(&http, &node.url, &price).await?;
        now_samples.push(seen - committed);
    }
    now_samples.sort();

    let mut late = Vec::with_capacity(scheduled);
    for k in 0..scheduled {
        let before = till_price(&http, &node.url).await?.unwrap_or_default();
        let price = format!("9.{k:02}");
        let effective = jiff::Timestamp::now() + jiff::SignedDuration::from_millis(1500);
        change(&http, &hq_url, &key, &price, Some(effective.to_string())).await?;
        // Until the instant the till keeps the price before; from it on, the new one.
        loop {
            let shown = till_price(&http, &node.url).await?.unwrap_or_default();
            let at = jiff::Timestamp::now();
            if shown == price {
                anyhow::ensure!(at >= effective, "{price} was shown before its instant");
                let after = at.duration_since(effective);
                late.push(Duration::try_from(after).unwrap_or_default());
                break;
            }
            anyhow::ensure!(shown == before, "the till showed {shown} before {price}");
            anyhow::ensure!(
                at.duration_since(effective).as_secs() < 60,
                "{price} not shown within 60 s of its instant"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    late.sort();

    let p = crate::bench::percentile;
    println!(
        "## Price change at HQ → price on a till (HQ on SQLite, one store, pull interval {} s, HTTP on 127.0.0.1)",
        pull_every.as_secs()
    );
    println!(
        "raw limit: one item lookup at the store node, p50 {:.1} ms, p95 {:.1} ms (200 lookups)",
        ms(p(&floor, 50)),
        ms(p(&floor, 95))
    );
    println!(
        "effective now: committed (HQ's 201) → the till's lookup answers the new price: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms ({changes} changes, one at a time)",
        ms(p(&now_samples, 50)),
        ms(p(&now_samples, 95)),
        ms(now_samples.last().copied().unwrap_or_default())
    );
    println!(
        "scheduled 1.5 s ahead: the old price until the instant, the new one after it by p50 {:.1} ms, p95 {:.1} ms ({scheduled} changes)",
        ms(p(&late, 50)),
        ms(p(&late, 95))
    );
    Ok(())
}
