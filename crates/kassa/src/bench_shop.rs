//! `kassa bench shop`: the web shop's side of the chain, end to end over HTTP on 127.0.0.1.
//!
//! 1. A sale at a till → the new figure in HQ's availability API and as an
//!    `availability.changed` webhook at a receiver: a store node syncing to HQ (SQLite or
//!    PostgreSQL), one sale at a time, the API polled and the receiver watched for the figure
//!    the sale made. Raw limit in the same run: the sale's own round trip at the node.
//! 2. Reservations per second at HQ: `concurrency` clients each holding one unit at a time until
//!    `reservations` are made, with their latency. Raw limit in the same run: one availability
//!    read of the same SKU (what a reservation reads before it writes).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use domain::StoreId;
use serde_json::{Value, json};

use crate::bench::{DEMO_SEED, percentile};
use crate::bench_sync::{BENCH_PEPPER, start_node};

const SKU: &str = "GRO-BRD-0012";
const CODE: &str = "9003909062415";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What the receiver heard: each `availability.changed` figure (on hand) with when it came.
type Heard = Arc<Mutex<Vec<(String, Instant)>>>;

async fn receive(
    axum::extract::State(heard): axum::extract::State<Heard>,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if event["data"]["sku"] == SKU {
        if let Ok(mut heard) = heard.lock() {
            heard.push((
                event["data"]["on_hand"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                Instant::now(),
            ));
        }
    }
    axum::http::StatusCode::NO_CONTENT
}

async fn on_hand(http: &reqwest::Client, hq: &str, key: &str) -> anyhow::Result<String> {
    let answer: Value = http
        .get(format!(
            "{hq}/v1/availability?skus={SKU}&location=vienna-01"
        ))
        .bearer_auth(key)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(answer["variants"][0]["locations"][0]["on_hand"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// Runs both parts on SQLite, or on the PostgreSQL server `postgres` names.
pub async fn bench_shop(
    sales: usize,
    reservations: usize,
    concurrency: usize,
    postgres: Option<&str>,
) -> anyhow::Result<()> {
    let temp = tempfile::Builder::new()
        .prefix("kassa-bench-shop-")
        .tempdir_in(".")?;
    let dir = temp.path();
    let url = match postgres {
        Some(server) => crate::bench_sync::fresh_postgres(server).await?,
        None => hq::db::sqlite_url(&dir.join("hq"))?,
    };
    let backend = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let db = hq::db::open(&url).await?;
    let seed: protocol::seed::SeedDto = serde_json::from_str(DEMO_SEED)?;
    hq::refdata::publish(&db, &seed, BENCH_PEPPER).await?;
    let store = StoreId::parse("vienna-01").map_err(anyhow::Error::msg)?;
    let token = hq::add_store(&db, &store, "bench").await?;
    let now = jiff::Timestamp::now().as_millisecond();
    use hq::identity::Scope;
    let key = hq::identity::create_api_key(
        &db,
        &hq::identity::Actor::Cli,
        "shop benchmark",
        &[
            Scope::StockRead,
            Scope::ReservationsWrite,
            Scope::WebhooksWrite,
        ],
        now,
    )
    .await?
    .secret;
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
    let http = reqwest::Client::new();

    // The receiver, subscribed to availability.
    let heard: Heard = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    let receiver = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(heard.clone());
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let answer = http
        .post(format!("{hq_url}/v1/webhooks"))
        .bearer_auth(&key)
        .json(&json!({"url": hook, "events": ["availability.changed"]}))
        .send()
        .await?;
    anyhow::ensure!(
        answer.status().as_u16() == 201,
        "subscription refused: {}",
        answer.text().await?
    );

    // Part 1: sales at a till.
    let node = start_node(
        &dir.join("store"),
        Some(store::sync::SyncSettings {
            hq_url: hq_url.clone(),
            token: token.into(),
            pull_every: Duration::from_secs(crate::store_cmd::DEFAULT_PULL_EVERY_S),
            hq_ca: None,
            hq_client_cert: None,
        }),
        1,
    )
    .await?;
    for (terminal, public_key) in &node.terminals {
        hq::add_terminal(&db, &store, terminal, public_key).await?;
    }
    let tokens = node.open_shifts().await?;
    let till = tokens.first().context("no till")?;
    let terminal = "vienna-01-t1";
    let count = http
        .post(format!("{}/v1/stock/counts", node.url))
        .bearer_auth(till)
        .header("Idempotency-Key", "bench-count")
        .json(&json!({"terminal": terminal, "sku": SKU, "counted": (sales + 10).to_string()}))
        .send()
        .await?;
    anyhow::ensure!(count.status().as_u16() == 201, "{}", count.text().await?);
    let started = Instant::now();
    while on_hand(&http, &hq_url, &key).await? != (sales + 10).to_string() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the count did not reach HQ"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (mut sale_rtt, mut api, mut hook_lag) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..sales {
        let expected = (sales + 10 - k - 1).to_string();
        let sent = Instant::now();
        let sale = http
            .post(format!("{}/v1/sales", node.url))
            .bearer_auth(till)
            .header("Idempotency-Key", format!("bench-sale-{k}"))
            .json(&json!({"terminal": terminal, "lines": [{"code": CODE, "quantity": "1"}], "tenders": [{"kind": "cash", "amount": "20.00"}]}))
            .send()
            .await?;
        anyhow::ensure!(sale.status().as_u16() == 201, "{}", sale.text().await?);
        let sold = Instant::now();
        sale_rtt.push(sold - sent);
        loop {
            if on_hand(&http, &hq_url, &key).await? == expected {
                api.push(sold.elapsed());
                break;
            }
            anyhow::ensure!(
                sold.elapsed() < Duration::from_secs(30),
                "sale {k} not in the API within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        loop {
            let at = heard
                .lock()
                .ok()
                .and_then(|h| h.iter().find(|(f, _)| *f == expected).map(|(_, at)| *at));
            if let Some(at) = at {
                hook_lag.push(at.saturating_duration_since(sold));
                break;
            }
            anyhow::ensure!(
                sold.elapsed() < Duration::from_secs(30),
                "sale {k} not told by webhook within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    for samples in [&mut sale_rtt, &mut api, &mut hook_lag] {
        samples.sort();
    }

    // Part 2: reservations.
    sqlx::query("UPDATE stock_levels SET on_hand = on_hand + 100000000 WHERE location = 'vienna-01' AND sku = $1")
        .bind(SKU)
        .execute(&db.pool)
        .await?;
    let mut read = Vec::new();
    for _ in 0..200 {
        let asked = Instant::now();
        on_hand(&http, &hq_url, &key).await?;
        read.push(asked.elapsed());
    }
    read.sort();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (http, hq_url, key, next) = (http.clone(), hq_url.clone(), key.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            let mut took = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < reservations {
                let asked = Instant::now();
                let answer = http
                    .post(format!("{hq_url}/v1/reservations"))
                    .bearer_auth(&key)
                    .json(
                        &json!({"location": "vienna-01", "lines": [{"sku": SKU, "quantity": "1"}]}),
                    )
                    .send()
                    .await?;
                anyhow::ensure!(
                    answer.status().as_u16() == 201,
                    "reservation refused: {}",
                    answer.text().await?
                );
                took.push(asked.elapsed());
            }
            Ok(took)
        }));
    }
    let mut held = Vec::new();
    for client in clients {
        held.extend(client.await??);
    }
    let elapsed = started.elapsed();
    held.sort();

    let p = percentile;
    println!("## The web shop's view (HQ on {backend}, one store node syncing, HTTP on 127.0.0.1)");
    println!(
        "raw limit: the sale's own round trip at the store node p50 {:.1} ms, p95 {:.1} ms",
        ms(p(&sale_rtt, 50)),
        ms(p(&sale_rtt, 95))
    );
    println!(
        "sale answered → new figure in GET /v1/availability: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms ({sales} sales, one at a time)",
        ms(p(&api, 50)),
        ms(p(&api, 95)),
        ms(api.last().copied().unwrap_or_default())
    );
    println!(
        "sale answered → availability.changed webhook received: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        ms(p(&hook_lag, 50)),
        ms(p(&hook_lag, 95)),
        ms(hook_lag.last().copied().unwrap_or_default())
    );
    println!(
        "raw limit: one availability read of the SKU p50 {:.1} ms, p99 {:.1} ms (200 reads)",
        ms(p(&read, 50)),
        ms(p(&read, 99))
    );
    println!(
        "reservations: {reservations} in {:.2} s with {concurrency} clients = {:.0}/s; latency p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
        elapsed.as_secs_f64(),
        reservations as f64 / elapsed.as_secs_f64(),
        ms(p(&held, 50)),
        ms(p(&held, 95)),
        ms(p(&held, 99))
    );
    drop(node);
    Ok(())
}
