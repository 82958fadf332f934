//! Card payments recorded in the store node's SQLite file: a crash mid-payment recovered after
//! a restart with exactly one capture, and a PAN-leak scan of every file the node wrote after a
//! run against a misbehaving terminal that sends full card numbers.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use payments::crypto::SecurityKey;
use payments::link::{LinkConfig, TerminalLink};
use payments::pan::find_pans;
use payments::service::{CardPayments, OfflineLimits, Outcome};
use payments::sim::{Faults, SimConfig, Simulator};
use store::payments::SqliteJournal;

const POI: &str = "V400m-324688179";

fn key() -> SecurityKey {
    SecurityKey::new("StoreTestKey", 1, "store test passphrase")
}

async fn sim(dir: &Path) -> Simulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cfg = SimConfig {
        poi_id: POI.into(),
        key: key(),
        state_dir: dir.to_owned(),
        offline_floor_limit_minor: 5_000,
    };
    Simulator::start(cfg, listener).await.unwrap()
}

async fn card_payments(sim: &Simulator, data_dir: &Path) -> CardPayments<SqliteJournal> {
    let pools = store::db::open(data_dir).await.unwrap();
    let link = TerminalLink::new(LinkConfig {
        addr: sim.addr(),
        poi_id: POI.into(),
        sale_id: "till-1".into(),
        key: key(),
        ca_pem: sim.ca_pem().as_bytes().to_vec(),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let limits = OfflineLimits {
        per_transaction_minor: 5_000,
        per_shift_minor: 20_000,
        outstanding_minor: 20_000,
    };
    CardPayments::new(link, SqliteJournal::new(pools.writer), limits)
        .with_recovery(40, Duration::from_millis(100))
}

fn approved(o: &Outcome) -> &payments::service::CardPayment {
    match o {
        Outcome::Approved { payment, .. } => payment,
        other => panic!("expected an approval, got {other:?}"),
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Every Luhn-valid 13–19 digit run (plain, spaced or dashed) in every file under `dir`.
fn scan(dir: &Path) -> Vec<(PathBuf, String)> {
    files_under(dir)
        .into_iter()
        .flat_map(|f| {
            let bytes = std::fs::read(&f).unwrap();
            find_pans(&bytes)
                .into_iter()
                .map(move |h| (f.clone(), h.digits))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Provisions and seeds a node for `vienna-01` with one till, and builds its app and router.
async fn start_node(node: &Path) -> (store::App, axum::Router) {
    let store_id = domain::StoreId::parse("vienna-01").unwrap();
    let till = domain::TerminalId::parse("vienna-01-t1").unwrap();
    store::provision(node, &store_id, std::slice::from_ref(&till))
        .await
        .unwrap();
    let seed: protocol::seed::SeedDto = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data/demo/seed.json"
        ))
        .unwrap(),
    )
    .unwrap();
    store::seed(node, &seed).await.unwrap();
    let app = store::App::build(
        &store::Settings {
            data_dir: node.to_owned(),
            listen: "127.0.0.1:0".parse().unwrap(),
            sync: None,
        },
        std::sync::Arc::new(store::clock::SystemClock),
    )
    .await
    .unwrap();
    // A shift managed by a manager: the sales here need neither a sign-in nor approvals.
    store::shifts::ensure_open(
        &app.node(),
        &till,
        &domain::StaffId::parse("maria").unwrap(),
        domain::Money::from_minor(10_000, domain::Currency::EUR),
    )
    .await
    .unwrap();
    let router = store::api::router(app.node());
    (app, router)
}

async fn get(router: &axum::Router, path: &str) -> Vec<u8> {
    use tower::ServiceExt as _;
    let request = axum::http::Request::get(path)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), axum::http::StatusCode::OK);
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_payment_is_recovered_from_sqlite_with_exactly_one_capture() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node");
    let terminal = dir.path().join("terminal");
    let sim = sim(&terminal).await;
    sim.set_faults(Faults {
        latency_ms: 800,
        ..Faults::default()
    });
    {
        let pay = card_payments(&sim, &node).await;
        let crashed = tokio::time::timeout(
            Duration::from_millis(300),
            pay.pay("sale-1", 3_300, "EUR", 2, None),
        )
        .await;
        assert!(crashed.is_err(), "the till died before the answer");
    }
    // The request was in SQLite before it left: a restarted node knows what to ask about.
    let pay = card_payments(&sim, &node).await;
    let recovered = pay.recover_in_flight().await.unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(
        approved(recovered[0].1.as_ref().unwrap()).authorised_minor,
        3_300
    );
    assert_eq!(sim.transactions().len(), 1, "exactly one capture");
    sim.set_faults(Faults::default());
    approved(&pay.pay("sale-2", 1_000, "EUR", 2, None).await.unwrap());
    assert_eq!(sim.transactions().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_card_number_reaches_sqlite_or_logs_even_from_a_misbehaving_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node");
    let terminal = dir.path().join("terminal");
    std::fs::create_dir_all(&node).unwrap();
    // Everything logged, at every level, from every crate, goes to a file in the node folder.
    let log = std::fs::File::create(node.join("kassa.log")).unwrap();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(std::sync::Mutex::new(log))
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let (app, router) = start_node(&node).await;
    let sim = sim(&terminal).await;
    sim.set_faults(Faults {
        leak_pan: true,
        ..Faults::default()
    });
    let pay = card_payments(&sim, &node).await;
    let a = pay.pay("sale-1", 2_000, "EUR", 2, None).await.unwrap();
    let p = approved(&a);
    assert_eq!(
        p.masked_pan.as_ref().unwrap().to_string(),
        "411111 **** 1111"
    );
    let b = pay.pay("sale-2", 1_001, "EUR", 2, None).await.unwrap();
    pay.pay("sale-3", 1_002, "EUR", 2, None).await.unwrap();
    pay.refund(&p.poi_transaction_id, "return-1", 500)
        .await
        .unwrap();
    pay.reverse(&approved(&b).poi_transaction_id, "void-1")
        .await
        .unwrap();
    sim.set_faults(Faults {
        leak_pan: true,
        offline: true,
        ..Faults::default()
    });
    pay.pay("sale-4", 1_013, "EUR", 2, None).await.unwrap();
    sim.set_faults(Faults {
        leak_pan: true,
        ..Faults::default()
    });
    assert_eq!(pay.reconcile_offline().await.unwrap().len(), 1);
    pay.reconcile(true, &[], &[]).await.unwrap();
    drop(pay);

    // The card payment's reference travels into the ledger, the receipt and the sync batch.
    let sale = post(
        &router,
        "/v1/sales",
        "sale-1",
        &serde_json::json!({
            "terminal": "vienna-01-t1",
            "lines": [{"code": "9003909062415"}],
            "tenders": [{"kind": "card", "amount": "3.49", "reference": p.poi_transaction_id}],
        }),
    )
    .await;
    let receipt = get(
        &router,
        &format!("/v1/receipts/{}", sale["receipt"].as_str().unwrap()),
    )
    .await;
    std::fs::write(node.join("receipt.out"), receipt).unwrap();
    let pools = store::db::open(&node).await.unwrap();
    let batch = store::sync::build_batch(&pools.reader, "vienna-01", "vienna-01-t1", 0, 1_000)
        .await
        .unwrap()
        .unwrap();
    assert!(!batch.events.is_empty());
    // The batch as it crosses the wire is zstd; what it carries is scanned decompressed.
    let decoded = protocol::sync::decode_batch(&protocol::sync::encode_batch(&batch, 3)).unwrap();
    std::fs::write(node.join("batch.out"), decoded.events.concat()).unwrap();
    drop(app);

    // The terminal did send full card numbers: the scan can find them where they are.
    let at_terminal = scan(&terminal);
    assert!(
        at_terminal.iter().any(|(_, d)| d == "4111111111111111"),
        "the misbehaving terminal should have sent card numbers"
    );
    // And Kassa kept none of them, in SQLite (file and WAL) or in its logs.
    let leaks = scan(&node);
    assert!(leaks.is_empty(), "card numbers found: {leaks:?}");
    let db = std::fs::read(node.join("ledger.sqlite-wal"))
        .unwrap_or_default()
        .into_iter()
        .chain(std::fs::read(node.join("ledger.sqlite")).unwrap())
        .collect::<Vec<u8>>();
    let needle = b"411111 **** 1111";
    assert!(
        db.windows(needle.len()).any(|w| w == needle),
        "the masked PAN is what SQLite keeps"
    );
}

async fn post(
    router: &axum::Router,
    path: &str,
    key: &str,
    body: &serde_json::Value,
) -> serde_json::Value {
    use tower::ServiceExt as _;
    let request = axum::http::Request::post(path)
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(axum::body::Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, axum::http::StatusCode::CREATED, "{value}");
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_of_day_compares_terminal_totals_with_the_ledgers_card_tenders() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node");
    let (app, router) = start_node(&node).await;

    let sim = sim(&dir.path().join("terminal")).await;
    let pay = card_payments(&sim, &node).await;
    // The terminal takes 16.97; the sale is recorded with the card payment's reference.
    let o = pay.pay("sale-1", 1_697, "EUR", 2, None).await.unwrap();
    let poi = approved(&o).poi_transaction_id.clone();
    let sale = post(
        &router,
        "/v1/sales",
        "sale-1",
        &serde_json::json!({
            "terminal": "vienna-01-t1",
            "lines": [{"code": "9003909062415", "quantity": "2"}, {"code": "CLO-TEE-0001-XS-WEI"}],
            "tenders": [{"kind": "card", "amount": "16.97", "reference": poi}],
        }),
    )
    .await;
    // A return of the T-shirt goes back to the same card by reference.
    let ret = post(
        &router,
        "/v1/returns",
        "return-1",
        &serde_json::json!({
            "terminal": "vienna-01-t1",
            "receipt": sale["receipt"],
            "lines": [{"line": 1, "quantity": "1"}],
            "refund_tender": "card",
        }),
    )
    .await;
    let refund_minor = i64::try_from(
        (ret["refund"].as_str().unwrap().replace('.', ""))
            .parse::<u64>()
            .unwrap(),
    )
    .unwrap();
    pay.refund(&poi, "return-1", refund_minor).await.unwrap();

    let pools = store::db::open(&node).await.unwrap();
    let ledger = store::payments::ledger_card_totals(&pools.reader)
        .await
        .unwrap();
    assert_eq!(ledger.debits, vec![("EUR".to_owned(), 1, 1_697)]);
    assert_eq!(ledger.credits, vec![("EUR".to_owned(), 1, refund_minor)]);
    let totals = pay
        .reconcile(false, &ledger.debits, &ledger.credits)
        .await
        .unwrap();
    assert!(totals.differences.is_empty(), "{:?}", totals.differences);

    // A card sale rung without the terminal shows up as a difference at the end of the day.
    post(
        &router,
        "/v1/sales",
        "sale-2",
        &serde_json::json!({
            "terminal": "vienna-01-t1",
            "lines": [{"code": "9003909062415"}],
            "tenders": [{"kind": "card", "amount": "3.49"}],
        }),
    )
    .await;
    let ledger = store::payments::ledger_card_totals(&pools.reader)
        .await
        .unwrap();
    let closing = pay
        .reconcile(true, &ledger.debits, &ledger.credits)
        .await
        .unwrap();
    assert_eq!(closing.differences.len(), 1, "{:?}", closing.differences);
    assert!(closing.differences[0].starts_with("payments in EUR"));
    drop(app);
}
