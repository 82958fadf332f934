//! Issue 20's process test: an Austrian store (two tills commissioned for the RKSV) rings
//! sales, a return and a training receipt, loses a till's signature device and gets it back,
//! and crosses the year end (its clock is the test's: the node is built in-process, as the CLI
//! has no flag for the clock) while syncing with a real HQ process. Each till's DEP export
//! verifies with the independent verifier, and HQ holds exactly the same receipts — its own
//! export, with the material the till sent, verifies too.
#![allow(clippy::unwrap_used)]

#[path = "../../fiscal/tests/verifier/mod.rs"]
mod verifier;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::chain::{ChainSpec, HqDatabase, kassa_cli, spawn_chain};
use test_support::{client, open_shifts, session};

const T1: &str = "vienna-01-t1";
const T2: &str = "vienna-01-t2";
const BREAD: &str = "9003909062415";

/// Numbers the writes' idempotency keys.
static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn kassa() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kassa"))
}

/// A clock the test moves.
#[derive(Debug)]
struct TestClock(AtomicI64);

impl store::clock::Clock for TestClock {
    fn now(&self) -> domain::Timestamp {
        domain::Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

fn ms(at: &str) -> i64 {
    at.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// The store node, running in-process and syncing with HQ.
struct Node {
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), store::StoreError>>,
}

async fn start(data: &Path, hq: &str, token: &str, clock: Arc<TestClock>) -> Node {
    let app = store::App::build(
        &store::Settings {
            data_dir: data.to_path_buf(),
            listen: "127.0.0.1:0".parse().unwrap(),
            sync: Some(store::sync::SyncSettings {
                hq_url: hq.to_owned(),
                token: token.into(),
                pull_every: Duration::from_secs(1),
                hq_ca: Some(test_support::test_ca().ca_pem.clone()),
                hq_client_cert: None,
            }),
        },
        clock,
    )
    .await
    .unwrap();
    let url = format!("http://{}", app.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    open_shifts(&client(), &url, &[T1, T2]).await.unwrap();
    Node { url, stop, server }
}

impl Node {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.server.await.unwrap().unwrap();
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let terminal = body["terminal"].as_str().unwrap();
        let response = client()
            .post(format!("{}{path}", self.url))
            .header(
                "Idempotency-Key",
                format!("fiscal-{}", WRITES.fetch_add(1, Ordering::SeqCst)),
            )
            .bearer_auth(session(&self.url, terminal).unwrap())
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{path}: {body}");
        body
    }

    async fn sell(&self, terminal: &str, quantity: &str) -> Value {
        self.post(
            "/v1/sales",
            json!({"terminal": terminal, "lines": [{"code": BREAD, "quantity": quantity}],
                   "tenders": [{"kind": "cash", "amount": "50.00"}]}),
        )
        .await
    }

    async fn status(&self) -> Value {
        client()
            .get(format!("{}/v1/status", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_austrian_store_signs_through_an_outage_and_the_year_end_and_hq_holds_the_same_receipts()
{
    let dir = tempfile::tempdir().unwrap();
    let database = HqDatabase::Sqlite(dir.path().join("hq"));
    let chain = spawn_chain(
        &kassa(),
        dir.path(),
        database.clone(),
        ChainSpec {
            stores: vec![],
            hq_up: true,
            pull_every_secs: 1,
        },
    )
    .await
    .unwrap();
    let hq = chain.hq_url().unwrap().to_owned();
    let hq_cli = |args: &[&str]| {
        let mut all = vec!["hq".to_owned()];
        all.extend(database.cli_args());
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all
    };
    let token = kassa_cli(
        &kassa(),
        &hq_cli(&["store", "add", "--id", "vienna-01", "--name", "Kassa Wien"]),
    )
    .await
    .unwrap()
    .trim()
    .to_owned();
    let data = dir.path().join("vienna-01");
    // The chain's PIN pepper, as `provision --pin-pepper-file` takes it.
    let pepper = std::fs::read_to_string(dir.path().join("pin.pepper")).unwrap();
    store::keys::pepper(&data, Some(&pepper)).unwrap();
    let tills = [T1, T2].map(|t| domain::TerminalId::parse(t).unwrap());
    let keys = store::provision(&data, &domain::StoreId::parse("vienna-01").unwrap(), &tills)
        .await
        .unwrap();
    store::seed(&data, &test_support::demo_seed().unwrap())
        .await
        .unwrap();
    for (terminal, key) in &keys {
        kassa_cli(
            &kassa(),
            &hq_cli(&[
                "terminal",
                "add",
                "--store",
                "vienna-01",
                "--id",
                terminal.as_str(),
                "--public-key",
                &hex::encode(key),
            ]),
        )
        .await
        .unwrap();
    }
    let pools = store::db::open(&data).await.unwrap();
    for till in &tills {
        let key_file = data.join(format!("rksv-{till}.pem"));
        let key_id = format!("U:ATU13572463-{till}");
        store::fiscal::ensure_software_key(&key_file, &key_id).unwrap();
        store::fiscal::commission(
            &pools.writer,
            &data,
            till,
            &store::fiscal::Commission {
                register_id: till.to_string(),
                aes_key: fiscal::rksv::new_aes_key().unwrap(),
                device: store::fiscal::DeviceConfig::SoftwareKeyNotALegalDevice {
                    key_file,
                    key_id,
                    certificate: None,
                },
                time_zone: "Europe/Vienna".into(),
            },
        )
        .await
        .unwrap();
    }

    // New Year's Eve, 23:40 in Vienna.
    let clock = Arc::new(TestClock(AtomicI64::new(ms("2026-12-31T22:40:00Z"))));
    let node = start(&data, &hq, &token, clock.clone()).await;
    let first = node.sell(T1, "2").await;
    node.post(
        "/v1/returns",
        json!({"terminal": T1, "receipt": first["receipt"], "lines": [{"line": 0, "quantity": "1"}]}),
    )
    .await;
    let training = node
        .post(
            "/v1/fiscal/training-receipt",
            json!({"terminal": T1, "lines": [{"code": BREAD, "quantity": "4"}]}),
        )
        .await;
    assert!(
        training["qr"].as_str().unwrap().contains("_VFJB_"),
        "{training}"
    );
    node.sell(T2, "1").await;

    // T1's signature device is gone when the node starts again: it sells on, marked.
    node.stop().await;
    let key_file = data.join(format!("rksv-{T1}.pem"));
    let away = data.join("rksv-t1.away");
    std::fs::rename(&key_file, &away).unwrap();
    clock.0.store(ms("2026-12-31T22:50:00Z"), Ordering::SeqCst);
    let node = start(&data, &hq, &token, clock.clone()).await;
    node.sell(T1, "1").await;
    let status = node.status().await;
    let t1 = status["fiscal"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["terminal"] == T1)
        .unwrap()
        .clone();
    assert_eq!(t1["device_failed"], true, "{status}");

    // Back, past midnight: the year's null receipt (which is also T1's Sammelbeleg), then the sale.
    node.stop().await;
    std::fs::rename(&away, &key_file).unwrap();
    clock.0.store(ms("2026-12-31T23:10:00Z"), Ordering::SeqCst);
    let node = start(&data, &hq, &token, clock.clone()).await;
    node.sell(T1, "3").await;
    node.sell(T2, "2").await;

    let kinds = |till: &str| {
        let pools = pools.reader.clone();
        let till = till.to_owned();
        async move {
            sqlx::query_as::<_, (String, i64)>(
                "SELECT kind, device_failed FROM fiscal_receipts WHERE terminal = $1 ORDER BY seq",
            )
            .bind(till)
            .fetch_all(&pools)
            .await
            .unwrap()
        }
    };
    let k = |kind: &str, failed: i64| (kind.to_owned(), failed);
    assert_eq!(
        kinds(T1).await,
        [
            k("start", 0),
            k("standard", 0),
            k("standard", 0),
            k("training", 0),
            k("standard", 1),
            k("null", 0),
            k("standard", 0)
        ]
    );
    assert_eq!(
        kinds(T2).await,
        [
            k("start", 0),
            k("standard", 0),
            k("null", 0),
            k("standard", 0)
        ]
    );

    // Everything reaches HQ.
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = node.status().await;
        let waiting: i64 = status["sync"]["outbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["unsynced"].as_i64().unwrap_or(0))
            .sum();
        if waiting == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "still unsynced: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(http);
    node.stop().await;

    let at_hq = dir.path().join("dep-hq");
    kassa_cli(
        &kassa(),
        &hq_cli(&[
            "fiscal",
            "export",
            "--store",
            "vienna-01",
            "--out",
            &at_hq.display().to_string(),
        ]),
    )
    .await
    .unwrap();
    for till in &tills {
        let export = store::fiscal::export(&pools.reader, &data, till, None)
            .await
            .unwrap();
        let report = verifier::verify(&export.dep, &export.material)
            .unwrap_or_else(|f| panic!("{till}: {f}"));
        assert!(report.receipts >= 4, "{till}: {report:?}");
        let read =
            |name: &str| std::fs::read_to_string(at_hq.join(format!("{till}.{name}"))).unwrap();
        let hq_dep = read("dep7.json");
        assert_eq!(
            verifier::receipts(&hq_dep),
            verifier::receipts(&export.dep),
            "{till}"
        );
        verifier::verify(&hq_dep, &read("cryptographic-material.json"))
            .unwrap_or_else(|f| panic!("{till} at HQ: {f}"));
        let store_journal = String::from_utf8(export.journal).unwrap();
        assert_eq!(
            read("journal.jsonl").lines().count(),
            store_journal.lines().count(),
            "{till}: HQ's journal holds every event the till's does"
        );
    }
    drop(chain);
}
