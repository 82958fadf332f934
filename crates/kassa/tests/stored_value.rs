//! Gift cards across a chain, with real `kassa` processes on 127.0.0.1: a card issued at one
//! store is redeemed at another with HQ's balance; with HQ down each store redeems within its
//! offline liability cap and is refused over it; when HQ is back the redemptions reconcile and
//! the offline over-redemption shows as an exception at HQ.
#![allow(clippy::unwrap_used)] // Test code: a panic is a test failure.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use domain::stored_value::{AccountNumber, StoredValueKind};
use serde_json::{Value, json};
use test_support::chain::{ChainSpec, HqDatabase, StoreSpec, spawn_chain};
use test_support::client;

const BREAD: &str = "9003909062415";
const VIENNA: &str = "vienna-01";
const GRAZ: &str = "graz-01";

fn kassa() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kassa"))
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let key = format!(
        "sv-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let response = test_support::signed(http.post(url), url, body)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn get(http: &reqwest::Client, url: &str) -> Value {
    let response = test_support::signed(http.get(url), url, &Value::Null)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// Ten loaves of bread (more than any redemption here), paid `gift` from the card and the rest
/// in cash.
async fn redeem(
    http: &reqwest::Client,
    store: &str,
    terminal: &str,
    card: &str,
    gift: &str,
) -> (u16, Value) {
    post(
        http,
        &format!("{store}/v1/sales"),
        &json!({
            "terminal": terminal,
            "lines": [{"code": BREAD, "quantity": "10"}],
            "tenders": [
                {"kind": "gift-card", "amount": gift, "reference": card},
                {"kind": "cash", "amount": "50.00"}
            ],
        }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gift_cards_redeem_across_stores_online_and_within_the_cap_offline() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = spawn_chain(
        &kassa(),
        dir.path(),
        HqDatabase::Sqlite(dir.path().join("hq")),
        ChainSpec {
            stores: vec![
                StoreSpec::new(VIENNA, "Kassa Wien Mariahilf", &["vienna-01-t1"])
                    .with_run_args(&["--stored-value-offline-cap", "30.00"]),
                StoreSpec::new(GRAZ, "Kassa Graz Herrengasse", &["graz-01-t1"])
                    .with_run_args(&["--stored-value-offline-cap", "30.00"]),
            ],
            hq_up: true,
            pull_every_secs: 1,
        },
    )
    .await
    .unwrap();
    let http = client();
    let vienna = chain.store(VIENNA).unwrap().url().unwrap().to_owned();
    let graz = chain.store(GRAZ).unwrap().url().unwrap().to_owned();
    let card = AccountNumber::generate(StoredValueKind::GiftCard, u64::from(std::process::id()))
        .to_string();

    // Issued at Vienna for 50.00, paid in cash.
    let (status, body) = post(
        &http,
        &format!("{vienna}/v1/gift-cards"),
        &json!({"terminal": "vienna-01-t1", "number": card, "amount": "50.00",
                "tenders": [{"kind": "cash", "amount": "50.00"}]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    chain
        .wait_synced(&http, Duration::from_secs(60), &[])
        .await
        .unwrap();

    // Graz sees HQ's balance and redeems part of it; more than the balance is refused.
    let balance = get(&http, &format!("{graz}/v1/stored-value/{card}")).await;
    assert_eq!(balance["source"], "hq", "{balance}");
    assert_eq!(balance["balance"], "50.00", "{balance}");
    let (status, body) = redeem(&http, &graz, "graz-01-t1", &card, "20.00").await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = redeem(&http, &graz, "graz-01-t1", &card, "30.01").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "insufficient_balance", "{body}");
    assert_eq!(body["field"], "tenders[0].amount", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("30.00"),
        "{body}"
    );
    chain
        .wait_synced(&http, Duration::from_secs(60), &[])
        .await
        .unwrap();
    let hq = chain.hq_url().unwrap().to_owned();
    let account = get(&http, &format!("{hq}/v1/stored-value/{card}")).await;
    assert_eq!(account["balance"], "30.00", "{account}");

    // HQ down: each store may redeem up to its cap of 30.00 without asking.
    chain.kill_hq().await.unwrap();
    let (status, body) = redeem(&http, &graz, "graz-01-t1", &card, "20.00").await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = redeem(&http, &vienna, "vienna-01-t1", &card, "25.00").await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = redeem(&http, &graz, "graz-01-t1", &card, "15.00").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "offline_cap_exceeded", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("30.00"),
        "{body}"
    );
    let offline = get(&http, &format!("{graz}/v1/stored-value/{card}")).await;
    assert_eq!(offline["online"], false, "{offline}");
    assert_eq!(offline["source"], "local", "{offline}");
    assert_eq!(offline["offline_headroom"], "10.00", "{offline}");

    // HQ back: the redemptions reconcile, and the card is 15.00 over-redeemed.
    chain.start_hq().await.unwrap();
    chain
        .wait_synced(&http, Duration::from_secs(120), &[])
        .await
        .unwrap();
    let hq = chain.hq_url().unwrap().to_owned();
    let account = get(&http, &format!("{hq}/v1/stored-value/{card}")).await;
    assert_eq!(account["balance"], "-15.00", "{account}");
    assert_eq!(account["status"], "overdrawn", "{account}");
    assert_eq!(
        account["movements"].as_array().unwrap().len(),
        4,
        "{account}"
    );
    let exceptions = get(&http, &format!("{hq}/v1/exceptions/stored-value")).await;
    let listed = exceptions["stored_value"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{exceptions}");
    assert_eq!(listed[0]["number"], card.as_str(), "{exceptions}");
    assert_eq!(listed[0]["balance"], "-15.00", "{exceptions}");
    let liability = get(&http, &format!("{hq}/v1/reports/stored-value")).await;
    assert_eq!(
        liability["liability"][0]["overdrawn"], "-15.00",
        "{liability}"
    );
    // Online again, Graz sees HQ's figure and refuses any further redemption.
    let balance = get(&http, &format!("{graz}/v1/stored-value/{card}")).await;
    assert_eq!(balance["source"], "hq", "{balance}");
    assert_eq!(balance["balance"], "-15.00", "{balance}");
    let (status, body) = redeem(&http, &graz, "graz-01-t1", &card, "0.01").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "insufficient_balance", "{body}");
    drop(chain);
}
