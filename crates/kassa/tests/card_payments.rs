//! Card payments with the store node as a real `kassa` process and the terminal simulator on a
//! local port, set up through the CLI as an operator would (`kassa store payment-terminal`):
//! a node killed with SIGKILL while the terminal holds an approval finds it again at restart
//! (exactly one capture) and the till finishes the sale with it; and an offline approval the
//! acquirer declines later reaches HQ through sync as an exception with the sale's receipt, the
//! cashier and the amount.
#![allow(clippy::unwrap_used)] // Test code: a panic is a test failure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use payments::crypto::SecurityKey;
use payments::sim::{Faults, SimConfig, Simulator};
use serde_json::{Value, json};
use test_support::chain::{ChainSpec, HqDatabase, StoreSpec, spawn_chain};
use test_support::{
    PaymentTerminal, Process, client, open_shifts, provision_demo_store, set_payment_terminal,
};

const POI: &str = "V400m-324688179";
const KEY_ID: &str = "KassaCardKey";
const PASSPHRASE: &str = "card test passphrase";
const T1: &str = "vienna-01-t1";

fn kassa() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kassa"))
}

async fn start_sim(state: &Path) -> Simulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Simulator::start(
        SimConfig {
            poi_id: POI.into(),
            key: SecurityKey::new(KEY_ID, 1, PASSPHRASE),
            state_dir: state.to_owned(),
            offline_floor_limit_minor: 5_000,
        },
        listener,
    )
    .await
    .unwrap()
}

/// `kassa store payment-terminal` for `T1` of the node in `data`, pointing at the simulator.
async fn configure_terminal(data: &Path, sim: &Simulator) {
    let terminal = PaymentTerminal {
        till: T1.into(),
        addr: sim.addr().to_string(),
        poi_id: POI.into(),
        key_id: KEY_ID.into(),
        passphrase: PASSPHRASE.into(),
        ca_pem: sim.ca_pem().into(),
    };
    let printed = set_payment_terminal(
        &kassa(),
        data,
        &terminal,
        &["--offline-per-transaction", "3000"],
    )
    .await
    .unwrap();
    assert!(printed.contains("takes cards"), "{printed}");
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> (u16, Value) {
    let response = test_support::signed(http.post(format!("{url}{path}")), url, body)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(http: &reqwest::Client, url: &str) -> Value {
    test_support::signed(http.get(url), url, &Value::Null)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_payment_recovers_the_approval_at_restart_with_one_capture() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    provision_demo_store(&data, "vienna-01", &[T1])
        .await
        .unwrap();
    let sim = start_sim(&dir.path().join("terminal")).await;
    configure_terminal(&data, &sim).await;
    let run = [
        "store",
        "--data",
        data.to_str().unwrap(),
        "run",
        "--listen",
        "127.0.0.1:0",
    ];
    let node = Process::spawn(&kassa(), &run).await.unwrap();
    let http = client();
    open_shifts(&http, &node.url, &[T1]).await.unwrap();

    // 10.06 ends in 006: the terminal approves, and its answer never leaves it.
    let body = json!({"terminal": T1, "sale": "sale-1", "amount": "10.06"});
    let waiting = {
        let (http, url, body) = (http.clone(), node.url.clone(), body.clone());
        tokio::spawn(async move {
            test_support::signed(http.post(format!("{url}/v1/card-payments")), &url, &body)
                .header("Idempotency-Key", "pay-sale-1")
                .json(&body)
                .send()
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.transactions().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the terminal never got the payment"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sim.transactions()[0].state, "Approved");
    // The till PC loses power while the terminal holds the answer.
    node.kill9().await.unwrap();
    assert!(
        waiting.await.unwrap().is_err(),
        "the till never heard the answer"
    );

    let node = Process::spawn(&kassa(), &run).await.unwrap();
    // A restarted node has signed everyone out: the cashier signs in again.
    open_shifts(&http, &node.url, &[T1]).await.unwrap();
    // The till asks again with the same key: the node asked the terminal for the outcome of the
    // request in its ledger before anything else, and answers with that approval.
    let (status, paid) = post(&http, &node.url, "/v1/card-payments", "pay-sale-1", &body).await;
    assert_eq!(status, 201, "{paid}");
    assert_eq!(paid["authorised"], "10.06");
    let payments = sim
        .transactions()
        .iter()
        .filter(|t| t.kind == "Payment")
        .count();
    assert_eq!(payments, 1, "exactly one capture at the terminal");
    // And finishes the sale with it.
    let (status, sale) = post(
        &http,
        &node.url,
        "/v1/sales",
        "sale-1",
        &json!({
            "terminal": T1,
            "lines": [{"code": "9003909062415", "quantity": "3"}],
            "tenders": [
                {"kind": "card", "amount": "10.06", "reference": paid["poi_transaction_id"]},
                {"kind": "cash", "amount": "1.00"},
            ],
        }),
    )
    .await;
    assert_eq!(status, 201, "{sale}");
    // The journal is for a manager to read.
    let maria = test_support::sign_in(&http, &node.url, T1, "maria", "3333")
        .await
        .unwrap();
    let journal: Value = http
        .get(format!("{}/v1/journal?terminal={T1}", node.url))
        .bearer_auth(maria["session"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = journal["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "ShiftOpened",
            "CardRequestStarted",
            "CardRequestEnded",
            "SaleCompleted"
        ]
    );
    // A new payment goes out normally afterwards.
    let (status, next) = post(
        &http,
        &node.url,
        "/v1/card-payments",
        "pay-sale-2",
        &json!({"terminal": T1, "sale": "sale-2", "amount": "2.50"}),
    )
    .await;
    assert_eq!(status, 201, "{next}");
    assert_eq!(sim.transactions().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_approval_declined_later_is_an_exception_at_hq() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = spawn_chain(
        &kassa(),
        dir.path(),
        HqDatabase::Sqlite(dir.path().join("hq")),
        ChainSpec {
            stores: vec![StoreSpec::new("vienna-01", "Wien Mitte", &[T1])],
            hq_up: true,
            pull_every_secs: 1,
        },
    )
    .await
    .unwrap();
    let sim = start_sim(&dir.path().join("terminal")).await;
    chain.kill_store(0).await.unwrap();
    let data = chain.stores[0].data.clone();
    configure_terminal(&data, &sim).await;
    chain.start_store(0).await.unwrap();
    let url = chain.stores[0].url().unwrap().to_owned();
    let hq = chain.hq_url().unwrap().to_owned();
    let http = client();

    // The terminal has lost its acquirer: it approves 10.13 offline (store-and-forward).
    sim.set_faults(Faults {
        offline: true,
        ..Faults::default()
    });
    let (status, paid) = post(
        &http,
        &url,
        "/v1/card-payments",
        "pay-1",
        &json!({"terminal": T1, "sale": "sale-1", "amount": "10.13"}),
    )
    .await;
    assert_eq!(status, 201, "{paid}");
    assert_eq!(paid["offline"], true);
    // The cashier signed in by the harness (anna) completes the sale with it.
    let session = test_support::session(&url, T1).unwrap();
    let response = http
        .post(format!("{url}/v1/sales"))
        .header("Idempotency-Key", "sale-1")
        .bearer_auth(&session)
        .json(&json!({
            "terminal": T1,
            "lines": [{"code": "9003909062415", "quantity": "3"}],
            "tenders": [
                {"kind": "card", "amount": "10.13", "reference": paid["poi_transaction_id"]},
                {"kind": "cash", "amount": "1.00"},
            ],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let sale: Value = response.json().await.unwrap();
    let pending = get(&http, &format!("{url}/v1/card-payments/pending")).await;
    assert_eq!(pending["count"], 1, "{pending}");
    assert_eq!(pending["pending"][0]["receipt"], sale["receipt"]);
    // The gauge the alert on ageing offline approvals reads counts it too.
    let offline_gauge = || async {
        let metrics = http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "kassa_store_offline_card_approvals{{terminal=\"{T1}\"}} "
                ))
                .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("{metrics}"))
    };
    assert_eq!(offline_gauge().await, "1");
    chain
        .wait_synced(&http, Duration::from_secs(60), &[])
        .await
        .unwrap();
    let at_hq = get(&http, &format!("{hq}/v1/cards/pending")).await;
    assert_eq!(at_hq["stores"][0]["store"], "vienna-01", "{at_hq}");
    assert_eq!(at_hq["stores"][0]["count"], 1, "{at_hq}");
    assert_eq!(at_hq["pending"][0]["amount"], "10.13");

    // Back online, the terminal forwards it and the acquirer declines: the customer has gone.
    sim.set_faults(Faults::default());
    let done = http
        .post(format!("{url}/v1/card-payments/reconcile-offline"))
        .bearer_auth(&session)
        .json(&json!({"terminal": T1}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(done["declined"].as_array().unwrap().len(), 1, "{done}");
    assert_eq!(offline_gauge().await, "0");
    chain
        .wait_synced(&http, Duration::from_secs(60), &[])
        .await
        .unwrap();
    let declines = get(&http, &format!("{hq}/v1/exceptions/card-declines")).await;
    let list = declines["card_declines"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{declines}");
    assert_eq!(list[0]["store"], "vienna-01");
    assert_eq!(list[0]["receipt"], sale["receipt"]);
    assert_eq!(list[0]["cashier"], "anna");
    assert_eq!(list[0]["amount"], "10.13");
    assert_eq!(list[0]["currency"], "EUR");
    let at_hq = get(&http, &format!("{hq}/v1/cards/pending")).await;
    assert_eq!(at_hq["pending"], json!([]), "{at_hq}");
}
