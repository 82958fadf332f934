//! A till commissioned for Austria's RKSV, end to end at the node: the start receipt when the
//! node starts, a signed code for every sale and return, a storno for a void, the month's null
//! receipt before the first sale of December, the code on the printed receipt, a sale while the
//! signature device is out (marked, and said in the status) and the Sammelbeleg when it is back,
//! a null receipt on demand and the Schlussbeleg that closes the register; the DEP export
//! checked by the independent verifier (`crates/fiscal/tests/verifier`), which adds every
//! receipt up to the same turnover as the sales did. And what commissioning refuses.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "../../fiscal/tests/verifier/mod.rs"]
mod verifier;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use domain::{StoreId, TerminalId, Timestamp};
use fiscal::signer::SoftwareKeyNotALegalDevice;
use serde_json::{Value, json};
use store::fiscal::{Commission, DeviceConfig};

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/demo/seed.json");
const T1: &str = "vienna-01-t1";
/// The AES key of the BMF's test scenarios.
const AES_KEY: &str = "WQRtiiya3hYh/Uz44Bv3x8ETl1nrH6nCdErn69g5/lU=";

/// A clock the test moves.
#[derive(Debug)]
struct TestClock(AtomicI64);

impl store::clock::Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

fn ms(at: &str) -> i64 {
    at.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

async fn call(
    router: &Router,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if body.is_some() {
        request = request
            .header("content-type", "application/json")
            .header("idempotency-key", uuid_like());
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    common::respond(router, request.body(body).unwrap()).await
}

fn uuid_like() -> String {
    static N: AtomicI64 = AtomicI64::new(0);
    format!("fiscal-{}", N.fetch_add(1, Ordering::SeqCst))
}

fn cents(amount: &Value) -> i64 {
    let text = amount.as_str().unwrap();
    let (whole, frac) = text.split_once('.').unwrap();
    let sign = if whole.starts_with('-') { -1 } else { 1 };
    sign * (whole.trim_start_matches('-').parse::<i64>().unwrap() * 100
        + frac.parse::<i64>().unwrap())
}

/// A provisioned and seeded Vienna store with one till, `T1`, in `dir`.
async fn vienna_store(dir: &std::path::Path) -> TerminalId {
    let terminal = TerminalId::parse(T1).unwrap();
    store::provision(
        dir,
        &StoreId::parse("vienna-01").unwrap(),
        std::slice::from_ref(&terminal),
    )
    .await
    .unwrap();
    let seed: protocol::seed::SeedDto =
        serde_json::from_str(&std::fs::read_to_string(SEED).unwrap()).unwrap();
    store::seed(dir, &seed).await.unwrap();
    terminal
}

#[tokio::test]
async fn an_austrian_till_signs_every_receipt_and_its_export_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let terminal = vienna_store(dir.path()).await;

    // Commissioning: what it refuses changes nothing; then the till is commissioned once.
    let key = SoftwareKeyNotALegalDevice::generate("U:ATU12345678-K1").unwrap();
    std::fs::write(dir.path().join("rksv-t1.pem"), key.to_pkcs8_pem().unwrap()).unwrap();
    let pools = store::db::open(dir.path()).await.unwrap();
    let commission = |aes_key: &str, key_file: &str| Commission {
        register_id: T1.into(),
        aes_key: aes_key.into(),
        device: DeviceConfig::SoftwareKeyNotALegalDevice {
            key_file: key_file.into(),
            key_id: "U:ATU12345678-K1".into(),
            certificate: None,
        },
        time_zone: "Europe/Vienna".into(),
    };
    for (who, aes, file, expected) in [
        (T1, "c2hvcnQ=", "rksv-t1.pem", "aes_key"),
        (T1, AES_KEY, "missing.pem", "the key file"),
        (
            "vienna-01-t9",
            AES_KEY,
            "rksv-t1.pem",
            "not hosted by this node",
        ),
        (
            "vienna_01-t1",
            AES_KEY,
            "rksv-t1.pem",
            "cannot number RKSV receipts",
        ),
    ] {
        let e = store::fiscal::commission(
            &pools.writer,
            dir.path(),
            &TerminalId::parse(who).unwrap(),
            &commission(aes, file),
        )
        .await
        .unwrap_err();
        assert!(e.contains(expected), "{e}");
    }
    // A certificate that is not the key's: refused, nothing kept.
    let stranger = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["another card".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2040, 1, 1);
    std::fs::write(
        dir.path().join("stranger.pem"),
        params.self_signed(&stranger).unwrap().pem(),
    )
    .unwrap();
    let mut certified = commission(AES_KEY, "rksv-t1.pem");
    certified.device = DeviceConfig::SoftwareKeyNotALegalDevice {
        key_file: "rksv-t1.pem".into(),
        key_id: String::new(),
        certificate: Some(store::fiscal::CertificateConfig {
            file: "stranger.pem".into(),
            provider: "AT1".into(),
        }),
    };
    let e = store::fiscal::commission(&pools.writer, dir.path(), &terminal, &certified)
        .await
        .unwrap_err();
    assert!(e.contains("for another key than the device's"), "{e}");
    let named = store::fiscal::commission(
        &pools.writer,
        dir.path(),
        &terminal,
        &commission(AES_KEY, "rksv-t1.pem"),
    )
    .await
    .unwrap();
    assert_eq!(named, "U:ATU12345678-K1");
    let again = store::fiscal::commission(
        &pools.writer,
        dir.path(),
        &terminal,
        &commission(AES_KEY, "rksv-t1.pem"),
    )
    .await
    .unwrap_err();
    assert!(again.contains("commissioned already"), "{again}");

    // The node starts on the last evening of November, Vienna time: the start receipt.
    let clock = Arc::new(TestClock(AtomicI64::new(ms("2026-11-30T21:50:00Z"))));
    let app = store::App::build(
        &store::Settings {
            data_dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".parse().unwrap(),
            sync: None,
        },
        clock.clone(),
    )
    .await
    .unwrap();
    let router = store::api::router(app.node());
    let session = common::sign_in(&router, T1, "maria", "3333").await;
    let router = common::signed(router, [(T1.to_owned(), session)].into_iter().collect());
    let (status, body) = call(
        &router,
        "POST",
        "/v1/shifts/open",
        Some(json!({"terminal": T1, "float": "100.00"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let sale = |lines: Value| json!({"terminal": T1, "lines": lines, "tenders": [{"kind": "cash", "amount": "100.00"}]});
    let (status, first) = call(
        &router,
        "POST",
        "/v1/sales",
        Some(sale(
            json!([{"code": "9003909062415", "quantity": "2"}, {"code": "CLO-TEE-0001-XS-WEI"}]),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let receipt = first["receipt"].as_str().unwrap().to_owned();
    let (status, back) = call(
        &router,
        "POST",
        "/v1/returns",
        Some(json!({"terminal": T1, "receipt": receipt, "lines": [{"line": 0, "quantity": "1"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{back}");
    // A basket rung in training mode: priced, signed as training (the counter field says
    // `TRA`), and nothing sold.
    let (status, training) = call(
        &router,
        "POST",
        "/v1/fiscal/training-receipt",
        Some(json!({"terminal": T1, "lines": [{"code": "9003909062415", "quantity": "5"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{training}");
    assert!(
        training["qr"].as_str().unwrap().contains("_VFJB_"),
        "{training}"
    );
    assert!(cents(&training["cart"]["total"]) > 0, "{training}");
    let training_number = training["receipt"].as_str().unwrap().to_owned();
    let (status, second) = call(
        &router,
        "POST",
        "/v1/sales",
        Some(sale(json!([{"code": "9003909062415"}]))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    // The last sale is voided even though its fiscal receipt follows it: a storno receipt.
    let (status, voided) = call(
        &router,
        "POST",
        "/v1/sales/void-last",
        Some(json!({"terminal": T1, "reason": "wrong item"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{voided}");

    // Past midnight, the first of December: the month's null receipt comes first.
    clock.0.store(ms("2026-11-30T23:10:00Z"), Ordering::SeqCst);
    let (status, third) = call(
        &router,
        "POST",
        "/v1/sales",
        Some(sale(json!([{"code": "9003909062415", "quantity": "3"}]))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{third}");

    let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM fiscal_receipts ORDER BY seq")
        .fetch_all(&pools.reader)
        .await
        .unwrap();
    assert_eq!(
        kinds,
        [
            "start", "standard", "standard", "training", "standard", "storno", "null", "standard"
        ]
    );

    // The printed receipt carries the code.
    let (status, preview) = call(
        &router,
        "GET",
        &format!("/v1/receipts/{receipt}/preview"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    // (The text preview wraps the code's text; read without the breaks.)
    let text: String = preview["text"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(
        text.contains(&format!("[QR_R1-AT0_{T1}_{receipt}_2026-11-30T22:50:00_")),
        "{text}"
    );

    // The signature device fails (its key cannot be read when the node starts again): the till
    // goes on selling, the receipt is marked, and the tills' status says so.
    drop(router);
    drop(app);
    // As a node before the register's state was kept with each receipt left it: the state in
    // the register's row, none in the receipts'. The chain carries on from it (the export at
    // the end verifies).
    sqlx::query(
        "UPDATE fiscal_registers SET
           turnover = (SELECT f.turnover FROM fiscal_receipts f WHERE f.terminal = fiscal_registers.terminal ORDER BY f.seq DESC LIMIT 1),
           last_jws = (SELECT f.document FROM fiscal_receipts f WHERE f.terminal = fiscal_registers.terminal ORDER BY f.seq DESC LIMIT 1),
           last_at = (SELECT f.at FROM fiscal_receipts f WHERE f.terminal = fiscal_registers.terminal ORDER BY f.seq DESC LIMIT 1)",
    )
    .execute(&pools.writer)
    .await
    .unwrap();
    sqlx::query("UPDATE fiscal_receipts SET turnover = NULL, at = NULL")
        .execute(&pools.writer)
        .await
        .unwrap();
    let key_file = dir.path().join("rksv-t1.pem");
    std::fs::rename(&key_file, dir.path().join("rksv-t1.pem.away")).unwrap();
    let settings = store::Settings {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        sync: None,
    };
    let restart = |clock: Arc<TestClock>| {
        let settings = settings.clone();
        async move {
            let app = store::App::build(&settings, clock).await.unwrap();
            let router = store::api::router(app.node());
            let session = common::sign_in(&router, T1, "maria", "3333").await;
            let router = common::signed(router, [(T1.to_owned(), session)].into_iter().collect());
            (app, router)
        }
    };
    let (app, router) = restart(clock.clone()).await;
    let one_loaf = sale(json!([{"code": "9003909062415"}]));
    let (status, fourth) = call(&router, "POST", "/v1/sales", Some(one_loaf.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{fourth}");
    let (_, node_status) = call(&router, "GET", "/v1/status", None).await;
    assert_eq!(
        node_status["fiscal"][0]["device_failed"], true,
        "{node_status}"
    );
    // Back: the Sammelbeleg comes before the next sale's receipt.
    drop(router);
    drop(app);
    std::fs::rename(dir.path().join("rksv-t1.pem.away"), &key_file).unwrap();
    let (_app, router) = restart(clock.clone()).await;
    let (status, fifth) = call(&router, "POST", "/v1/sales", Some(one_loaf)).await;
    assert_eq!(status, StatusCode::CREATED, "{fifth}");
    let (_, node_status) = call(&router, "GET", "/v1/status", None).await;
    assert_eq!(
        node_status["fiscal"][0]["device_failed"], false,
        "{node_status}"
    );
    let after: Vec<(String, i64)> =
        sqlx::query_as("SELECT kind, device_failed FROM fiscal_receipts ORDER BY seq")
            .fetch_all(&pools.reader)
            .await
            .unwrap();
    assert_eq!(
        after[8..],
        [
            ("standard".to_owned(), 1),
            ("null".to_owned(), 0),
            ("standard".to_owned(), 0)
        ]
    );

    // A null receipt on demand; then the Schlussbeleg closes the register: the till rings no
    // receipt afterwards, not even a null one.
    let till = json!({"terminal": T1});
    let (status, null) = call(
        &router,
        "POST",
        "/v1/fiscal/null-receipt",
        Some(till.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{null}");
    assert!(
        null["qr"]
            .as_str()
            .unwrap()
            .contains("_0,00_0,00_0,00_0,00_0,00_"),
        "{null}"
    );
    let (status, closed) = call(&router, "POST", "/v1/fiscal/close", Some(till.clone())).await;
    assert_eq!(
        (status, &closed["closed"]),
        (StatusCode::CREATED, &json!(true)),
        "{closed}"
    );
    let (status, refused) = call(
        &router,
        "POST",
        "/v1/sales",
        Some(sale(json!([{"code": "9003909062415"}]))),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::CONFLICT, Some("register_closed")),
        "{refused}"
    );
    let (status, refused) = call(&router, "POST", "/v1/fiscal/null-receipt", Some(till)).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::CONFLICT, Some("register_closed")),
        "{refused}"
    );
    let (_, node_status) = call(&router, "GET", "/v1/status", None).await;
    assert_eq!(
        node_status["fiscal"][0]["closed_receipt"], closed["receipt"],
        "{node_status}"
    );

    // The export verifies, and adds up to what the sales took.
    let export = store::fiscal::export(&pools.reader, dir.path(), &terminal, None)
        .await
        .unwrap();
    let report = verifier::verify(&export.dep, &export.material).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.receipts, 13);
    assert_eq!(report.unsigned, 1);
    let taken = cents(&first["cart"]["due"]) - cents(&back["refund"])
        + cents(&third["cart"]["due"])
        + cents(&fourth["cart"]["due"])
        + cents(&fifth["cart"]["due"]);
    assert_eq!(report.turnover, taken);
    // The training receipt is only a fiscal document: no sale, no stock movement names it.
    let naming: Vec<String> = sqlx::query_scalar(
        "SELECT kind FROM events WHERE CAST(body AS TEXT) LIKE '%' || $1 || '%'",
    )
    .bind(&training_number)
    .fetch_all(&pools.reader)
    .await
    .unwrap();
    assert_eq!(naming, ["FiscalReceipt"]);
    // The full journal (DEP131) beside it: every event of the till, in order, chained.
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE terminal = $1")
        .bind(T1)
        .fetch_one(&pools.reader)
        .await
        .unwrap();
    let journal: Vec<Value> = String::from_utf8(export.journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(journal.len() as i64, events);
    assert!(
        journal
            .iter()
            .enumerate()
            .all(|(i, e)| e["seq"] == json!(i + 1) && e["hash"].is_string()),
        "{journal:?}"
    );
    let december = store::fiscal::export(
        &pools.reader,
        dir.path(),
        &terminal,
        Some(("2026-12-01".parse().unwrap(), "2026-12-31".parse().unwrap())),
    )
    .await
    .unwrap();
    assert_eq!(december.dep.matches("eyJhbGciOiJFUzI1NiJ9.").count(), 7);
    // December's journal starts with December's first event: the sale past midnight.
    let first_of_december: Value =
        serde_json::from_slice(december.journal.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(
        first_of_december["kind"], "SaleCompleted",
        "{first_of_december}"
    );
    assert!(
        first_of_december
            .to_string()
            .contains(third["receipt"].as_str().unwrap()),
        "{first_of_december}"
    );
    let empty = store::fiscal::export(
        &pools.reader,
        dir.path(),
        &terminal,
        Some(("2027-01-01".parse().unwrap(), "2027-01-31".parse().unwrap())),
    )
    .await
    .unwrap_err();
    assert!(empty.contains("no receipts in that range"), "{empty}");
    let unknown = store::fiscal::export(
        &pools.reader,
        dir.path(),
        &TerminalId::parse("vienna-01-t2").unwrap(),
        None,
    )
    .await
    .unwrap_err();
    assert!(unknown.contains("not commissioned"), "{unknown}");
}

/// A till whose device has a certificate (a card of a certification service provider; here a
/// software key and a certificate made for it): its receipts name the provider and the
/// certificate's serial, and its export carries the certificate, which the verifier reads the
/// key from.
#[tokio::test]
async fn a_till_with_a_certified_device_names_it_by_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let terminal = vienna_store(dir.path()).await;
    let key = SoftwareKeyNotALegalDevice::generate("unused").unwrap();
    let pem = key.to_pkcs8_pem().unwrap();
    std::fs::write(dir.path().join("card.pem"), &pem).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["signature card".to_owned()]).unwrap();
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x0a, 0xbc, 0xde, 0xf1]));
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2040, 1, 1);
    let pair = rcgen::KeyPair::from_pem(&pem).unwrap();
    std::fs::write(
        dir.path().join("card.crt"),
        params.self_signed(&pair).unwrap().pem(),
    )
    .unwrap();
    let pools = store::db::open(dir.path()).await.unwrap();
    let named = store::fiscal::commission(
        &pools.writer,
        dir.path(),
        &terminal,
        &Commission {
            register_id: "KASSE-7".into(),
            aes_key: AES_KEY.into(),
            device: DeviceConfig::SoftwareKeyNotALegalDevice {
                key_file: "card.pem".into(),
                key_id: String::new(),
                certificate: Some(store::fiscal::CertificateConfig {
                    file: "card.crt".into(),
                    provider: "AT1".into(),
                }),
            },
            time_zone: "Europe/Vienna".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(named, "abcdef1");
    let clock = Arc::new(TestClock(AtomicI64::new(ms("2026-12-04T09:00:00Z"))));
    let app = store::App::build(
        &store::Settings {
            data_dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".parse().unwrap(),
            sync: None,
        },
        clock,
    )
    .await
    .unwrap();
    // The start receipt, made as the node starts.
    for _ in 0..100 {
        let made: i64 = sqlx::query_scalar("SELECT count(*) FROM fiscal_receipts")
            .fetch_one(&pools.reader)
            .await
            .unwrap();
        if made > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(app);
    let export = store::fiscal::export(&pools.reader, dir.path(), &terminal, None)
        .await
        .unwrap();
    let report = verifier::verify(&export.dep, &export.material).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.receipts, 1);
    let dep: Value = serde_json::from_str(&export.dep).unwrap();
    let group = &dep["Belege-Gruppe"][0];
    assert!(
        group["Signaturzertifikat"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{dep}"
    );
    let code = fiscal::rksv::qr_text(group["Belege-kompakt"][0].as_str().unwrap()).unwrap();
    assert!(
        code.starts_with("_R1-AT1_KASSE-7_") && code.contains("_abcdef1_"),
        "{code}"
    );
}
