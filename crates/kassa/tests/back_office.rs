//! The back office end to end, with real `kassa` processes on 127.0.0.1: a price changed
//! through HQ's write API (an API key made with `kassa hq api-key create`) reaches a running
//! store node through sync, and the till's item lookup answers it from its instant on.
#![allow(clippy::unwrap_used)] // Test code: a panic is a test failure.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::chain::{ChainSpec, HqDatabase, StoreSpec, kassa_cli, spawn_chain};

/// The bread's barcode, as a till scans it, and its SKU.
const BREAD: &str = "9003909062415";
const BREAD_SKU: &str = "GRO-BRD-0012";

fn kassa() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kassa"))
}

/// The price the store node answers for the bread now.
async fn till_price(http: &reqwest::Client, store: &str) -> String {
    let item: Value = http
        .get(format!("{store}/v1/items/{BREAD}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    item["price"].as_str().unwrap_or_default().to_owned()
}

async fn schedule(http: &reqwest::Client, hq: &str, key: &str, body: Value) -> Value {
    let response = http
        .post(format!("{hq}/v1/price-changes"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{answer}");
    answer
}

/// A price scheduled at HQ for a few seconds ahead reaches a running store node before its
/// instant, and the till keeps the old price until the instant and shows the new one from it
/// on; a price changed for now reaches the till within seconds (the store pulls every 5 s, but
/// HQ answers its waiting pull as soon as the change is committed).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_price_scheduled_at_hq_reaches_a_running_till_at_its_instant() {
    let root = tempfile::tempdir().unwrap();
    let database = HqDatabase::Sqlite(root.path().join("hq"));
    let chain = spawn_chain(
        &kassa(),
        root.path(),
        database.clone(),
        ChainSpec {
            stores: vec![StoreSpec::new("vienna-01", "Kassa Wien", &["vienna-01-t1"])],
            hq_up: true,
            pull_every_secs: 5,
        },
    )
    .await
    .unwrap();
    let mut create = vec!["hq".to_owned()];
    create.extend(database.cli_args());
    create.extend(
        [
            "api-key",
            "create",
            "--name",
            "merchandising",
            "--scope",
            "catalog:write",
        ]
        .map(str::to_owned),
    );
    let printed = kassa_cli(&kassa(), &create).await.unwrap();
    let key = printed.lines().last().unwrap().trim().to_owned();
    let hq = chain.hq.url().unwrap().to_owned();
    let store = chain.stores[0].url().unwrap().to_owned();
    let http = reqwest::Client::new();
    let before = till_price(&http, &store).await;
    assert!(!before.is_empty(), "the bread has a price at the till");

    // HQ keeps instants to the millisecond: so does the instant compared with.
    let effective = jiff::Timestamp::from_millisecond(
        (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(4)).as_millisecond(),
    )
    .unwrap();
    let change = schedule(
        &http,
        &hq,
        &key,
        json!({"sku": BREAD_SKU, "price": "4.44", "currency": "EUR", "effective": effective.to_string()}),
    )
    .await;
    assert_eq!(change["status"], "scheduled");
    let seen = loop {
        let shown = till_price(&http, &store).await;
        let now = jiff::Timestamp::now();
        if shown == "4.44" {
            break now;
        }
        assert_eq!(
            shown, before,
            "the till shows the old price until the change"
        );
        assert!(
            now < effective + jiff::SignedDuration::from_secs(10),
            "4.44 not shown 10 s after its instant"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        seen >= effective,
        "shown at {seen}, before its instant {effective}"
    );
    let late = seen.duration_since(effective);
    assert!(
        late < jiff::SignedDuration::from_secs(1),
        "shown {late:?} after its instant"
    );
    // HQ says the store has been sent the change.
    let id = change["id"].as_str().unwrap();
    let read: Value = http
        .get(format!("{hq}/v1/price-changes/{id}"))
        .bearer_auth(test_support::HQ_READ_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let vienna = read["stores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["store"] == "vienna-01")
        .unwrap();
    assert_eq!(vienna["sent"], true, "{read}");
    assert_eq!(vienna["terminals"], json!(["vienna-01-t1"]), "{read}");

    schedule(
        &http,
        &hq,
        &key,
        json!({"sku": BREAD_SKU, "price": "3.33", "currency": "EUR"}),
    )
    .await;
    let committed = Instant::now();
    while till_price(&http, &store).await != "3.33" {
        assert!(
            committed.elapsed() < Duration::from_secs(5),
            "a price changed for now did not reach the till within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(chain);
}
