//! Card payments through the store node's API against the terminal simulator on a local port:
//! a card sale whose tender references the payment recorded in the ledger before and after the
//! terminal was asked, partial approvals, declines and reversals, refunds by reference capped at
//! what was captured, a return without receipt refunded to a card presented on the terminal,
//! offline limits and the offline queue, end-of-day totals against the ledger, and a PAN-leak
//! scan of every file the node wrote after a run against a misbehaving terminal that sends full
//! card numbers.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::StatusCode;
use payments::crypto::SecurityKey;
use payments::pan::find_pans;
use payments::service::OfflineLimits;
use payments::sim::{Faults, SimConfig, Simulator};
use serde_json::{Value, json};

const POI: &str = "V400m-324688179";
const TILL: &str = "vienna-01-t1";
/// A second till of the store, with a terminal of its own (the same simulator).
const TILL2: &str = "vienna-01-t2";

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

/// A node for `vienna-01` with one till whose payment terminal is the simulator, and an open
/// shift (by a manager: sales need neither a sign-in nor approvals).
struct Setup {
    _dir: tempfile::TempDir,
    node: PathBuf,
    terminal: PathBuf,
    sim: Simulator,
    app: store::App,
    router: axum::Router,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node");
    let terminal = dir.path().join("terminal");
    let secrets = dir.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let store_id = domain::StoreId::parse("vienna-01").unwrap();
    let till = domain::TerminalId::parse(TILL).unwrap();
    let till2 = domain::TerminalId::parse(TILL2).unwrap();
    store::provision(&node, &store_id, &[till.clone(), till2.clone()])
        .await
        .unwrap();
    store::seed(&node, &test_support_seed()).await.unwrap();
    let sim = sim(&terminal).await;
    std::fs::write(secrets.join("passphrase"), "store test passphrase\n").unwrap();
    std::fs::write(secrets.join("ca.pem"), sim.ca_pem()).unwrap();
    let pools = store::db::open(&node).await.unwrap();
    for till in [&till, &till2] {
        store::cards::set_terminal(
            &pools.writer,
            till,
            &store::cards::TerminalConfig {
                addr: sim.addr().to_string(),
                poi_id: POI.into(),
                key_id: "StoreTestKey".into(),
                key_version: 1,
                passphrase_file: secrets.join("passphrase").display().to_string(),
                ca_file: secrets.join("ca.pem").display().to_string(),
                limits: OfflineLimits {
                    per_transaction_minor: 3_000,
                    per_shift_minor: 5_000,
                    outstanding_minor: 5_000,
                },
            },
        )
        .await
        .unwrap();
    }
    pools.writer.close().await;
    let app = store::App::build(
        &store::Settings {
            data_dir: node.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            sync: None,
        },
        std::sync::Arc::new(store::clock::SystemClock),
    )
    .await
    .unwrap();
    for till in [&till, &till2] {
        store::shifts::ensure_open(
            &app.node(),
            till,
            &domain::StaffId::parse("maria").unwrap(),
            domain::Money::from_minor(10_000, domain::Currency::EUR),
        )
        .await
        .unwrap();
    }
    let router = store::api::router(app.node());
    let mut sessions = std::collections::HashMap::new();
    for till in [TILL, TILL2] {
        let session = common::sign_in(&router, till, "maria", "3333").await;
        sessions.insert(till.to_owned(), session);
    }
    let router = common::signed(router, sessions);
    Setup {
        _dir: dir,
        node,
        terminal,
        sim,
        app,
        router,
    }
}

fn test_support_seed() -> protocol::seed::SeedDto {
    serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data/demo/seed.json"
        ))
        .unwrap(),
    )
    .unwrap()
}

async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = axum::http::Request::builder().method(method).uri(path);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let request = match body {
        Some(b) => request
            .header("content-type", "application/json")
            .body(axum::body::Body::from(serde_json::to_vec(b).unwrap())),
        None => request.body(axum::body::Body::empty()),
    }
    .unwrap();
    common::respond(router, request).await
}

impl Setup {
    async fn pay(&self, key: &str, sale: &str, amount: &str) -> (StatusCode, Value) {
        call(
            &self.router,
            "POST",
            "/v1/card-payments",
            Some(key),
            Some(&json!({"terminal": TILL, "sale": sale, "amount": amount})),
        )
        .await
    }

    async fn sale(&self, key: &str, lines: Value, tenders: Value) -> (StatusCode, Value) {
        call(
            &self.router,
            "POST",
            "/v1/sales",
            Some(key),
            Some(&json!({"terminal": TILL, "lines": lines, "tenders": tenders})),
        )
        .await
    }

    /// A sale of two loaves (6.98) paid by card through the terminal: the payment's POI
    /// transaction id, the payment as the node answered it, and the sale.
    async fn two_loaves_paid_by_card(&self) -> (String, Value, Value) {
        let (status, body) = self.pay("pay-1", "sale-1", "6.98").await;
        let poi = approved(status, &body);
        let (status, sale) = self
            .sale(
                "sale-1",
                json!([{"code": "9003909062415", "quantity": "2"}]),
                json!([{"kind": "card", "amount": "6.98", "reference": poi}]),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{sale}");
        (poi, body, sale)
    }

    /// End-of-day totals of today's business day (the store's time zone) on the till.
    async fn totals_today(&self) -> (StatusCode, Value) {
        let day = jiff::Zoned::now()
            .with_time_zone(jiff::tz::TimeZone::get("Europe/Vienna").unwrap())
            .date()
            .to_string();
        call(
            &self.router,
            "GET",
            &format!("/v1/card-payments/totals?terminal={TILL}&day={day}"),
            None,
            None,
        )
        .await
    }

    /// Today's totals show no differences, and the ledger's `what` (`payments` or `refunds`)
    /// are `expected` at the terminal too.
    async fn totals_today_agree(&self, what: &str, expected: Value) {
        let (status, totals) = self.totals_today().await;
        assert_eq!(status, StatusCode::OK, "{totals}");
        assert_eq!(totals["differences"], json!([]), "{totals}");
        assert_eq!(totals["ledger_totals"][what], expected, "{totals}");
        assert_eq!(totals["terminal_totals"][what], expected, "{totals}");
    }

    async fn journal(&self) -> Vec<Value> {
        let (status, body) = call(
            &self.router,
            "GET",
            &format!("/v1/journal?terminal={TILL}&limit=1000"),
            None,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        body["events"].as_array().unwrap().clone()
    }
}

fn approved(status: StatusCode, body: &Value) -> String {
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "approved", "{body}");
    body["poi_transaction_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_sale_is_recorded_in_the_ledger_before_and_after_the_terminal_is_asked() {
    let s = setup().await;
    let bread2 = json!([{"code": "9003909062415", "quantity": "2"}]);
    let (status, body) = s.pay("pay-1", "sale-1", "6.98").await;
    let poi = approved(status, &body);
    assert_eq!(body["authorised"], "6.98");
    assert_eq!(body["partial"], false);
    assert_eq!(body["masked_pan"], "411111 **** 1111");
    assert_eq!(body["brand"], "visa");
    // A retry with the same key answers the same payment and charges nothing more.
    let (status, again) = s.pay("pay-1", "sale-1", "6.98").await;
    assert_eq!(approved(status, &again), poi);
    assert_eq!(s.sim.transactions().len(), 1);
    // The key names this request only.
    let (status, reused) = s.pay("pay-1", "sale-1", "7.00").await;
    assert_eq!(status, StatusCode::CONFLICT, "{reused}");
    assert_eq!(reused["code"], "idempotency_key_reused");

    // A card tender on this till must reference an approved payment, with its exact amount.
    let (status, e) = s
        .sale(
            "sale-x",
            bread2.clone(),
            json!([{"kind": "card", "amount": "6.98"}]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "card_payment_required");
    assert_eq!(e["field"], "tenders[0].reference");
    let (status, e) = s
        .sale(
            "sale-y",
            json!([{"code": "9003909062415", "quantity": "3"}]),
            json!([{"kind": "card", "amount": "7.00", "reference": poi}, {"kind": "cash", "amount": "5.00"}]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "card_amount_mismatch");
    assert_eq!(e["field"], "tenders[0].amount");
    let (status, e) = s
        .sale(
            "sale-z",
            bread2.clone(),
            json!([{"kind": "card", "amount": "6.98", "reference": "sim999999.NOPE"}]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "unknown_card_payment");

    let (status, sale) = s
        .sale(
            "sale-1",
            bread2.clone(),
            json!([{"kind": "card", "amount": "6.98", "reference": poi}]),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    // A payment pays one sale.
    let (status, e) = s
        .sale(
            "sale-2",
            bread2.clone(),
            json!([{"kind": "card", "amount": "6.98", "reference": poi}]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "card_payment_used");

    // The ledger: the request before it left, its outcome, then the sale referencing it.
    let events = s.journal().await;
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "ShiftOpened",
            "CardRequestStarted",
            "CardRequestEnded",
            "SaleCompleted"
        ]
    );
    let started = &events[1]["event"]["body"]["Card"]["Started"];
    assert_eq!(started["kind"], "payment");
    assert_eq!(started["sale"], "sale-1");
    assert_eq!(started["amount"], 698);
    assert_eq!(
        started["shift"],
        events[0]["event"]["body"]["ShiftOpened"]["shift"]
    );
    let ended = &events[2]["event"]["body"]["Card"]["Ended"];
    assert_eq!(ended["service"], started["service"]);
    assert_eq!(ended["outcome"]["Approved"]["poi"], poi.as_str());
    assert_eq!(ended["outcome"]["Approved"]["pan"], "411111 **** 1111");
    assert_eq!(ended["outcome"]["Approved"]["amount"], 698);
    let tender = &events[3]["event"]["body"]["SaleCompleted"]["tenders"][0];
    assert_eq!(tender["kind"], "card");
    assert_eq!(tender["ref"], poi.as_str());
    assert_eq!(
        sale["receipt"],
        events[3]["event"]["body"]["SaleCompleted"]["receipt"]
    );
    drop(s.app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_approvals_declines_and_reversals() {
    let s = setup().await;
    // 10.01 ends in 001: the terminal approves half.
    let (status, part) = s.pay("pay-p", "sale-p", "10.01").await;
    let poi = approved(status, &part);
    assert_eq!(part["partial"], true);
    let authorised = part["authorised"].as_str().unwrap().to_owned();
    assert_eq!(authorised, "5.00", "{part}");
    assert_eq!(part["requested"], "10.01");
    // The rest stays due: paid in cash here.
    let (status, sale) = s
        .sale(
            "sale-p",
            json!([{"code": "9003909062415", "quantity": "3"}]),
            json!([{"kind": "card", "amount": authorised, "reference": poi}, {"kind": "cash", "amount": "10.00"}]),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");

    // 10.02 ends in 002: declined with a reason for the cashier; nothing to reference.
    let (status, declined) = s.pay("pay-d", "sale-d", "10.02").await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{declined}");
    assert_eq!(declined["status"], "declined");
    assert_eq!(declined["reason"], "Not enough balance");

    // A sale abandoned after approval: until it is reversed, end of day lists it as owed back
    // to the customer (and lists nothing a sale took).
    let (status, body) = s.pay("pay-r", "sale-r", "3.49").await;
    let poi = approved(status, &body);
    let (status, totals) = s.totals_today().await;
    assert_eq!(status, StatusCode::OK, "{totals}");
    let unused = totals["unused_approvals"].as_array().unwrap();
    assert_eq!(unused.len(), 1, "{totals}");
    assert_eq!(unused[0]["poi_transaction_id"], poi.as_str());
    assert_eq!(unused[0]["amount"], "3.49");
    // Reversed, it can no longer pay a sale and is owed no more.
    let reverse = format!("/v1/card-payments/{poi}/reverse");
    let (status, reversed) = call(
        &s.router,
        "POST",
        &reverse,
        None,
        Some(&json!({"terminal": TILL})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{reversed}");
    assert_eq!(reversed["status"], "refunded");
    assert_eq!(reversed["amount"], "3.49");
    // Asked again, it answers the same reversal without asking the terminal.
    let before = s.sim.transactions().len();
    let (status, again) = call(
        &s.router,
        "POST",
        &reverse,
        None,
        Some(&json!({"terminal": TILL})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again, reversed);
    assert_eq!(s.sim.transactions().len(), before);
    let (status, e) = s
        .sale(
            "sale-r",
            json!([{"code": "9003909062415"}]),
            json!([{"kind": "card", "amount": "3.49", "reference": poi}]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "card_payment_reversed");
    let (status, totals) = s.totals_today().await;
    assert_eq!(status, StatusCode::OK, "{totals}");
    assert_eq!(totals["unused_approvals"], json!([]), "{totals}");
    drop(s.app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_go_back_to_the_card_by_reference_and_never_exceed_the_capture() {
    let s = setup().await;
    let (status, body) = s.pay("pay-1", "sale-1", "16.97").await;
    let poi = approved(status, &body);
    let (status, sale) = s
        .sale(
            "sale-1",
            json!([{"code": "9003909062415", "quantity": "2"}, {"code": "CLO-TEE-0001-XS-WEI"}]),
            json!([{"kind": "card", "amount": "16.97", "reference": poi}]),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    // The T-shirt comes back with the receipt; its refund goes to the same card.
    let (status, ret) = call(
        &s.router,
        "POST",
        "/v1/returns",
        Some("return-1"),
        Some(&json!({
            "terminal": TILL,
            "receipt": sale["receipt"],
            "lines": [{"line": 1, "quantity": "1"}],
            "refund_tender": "card",
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ret}");
    let refund_path = format!("/v1/card-payments/{poi}/refund");
    let refund_body = json!({"terminal": TILL, "amount": ret["refund"], "return": ret["receipt"]});
    let (status, refunded) = call(&s.router, "POST", &refund_path, None, Some(&refund_body)).await;
    assert_eq!(status, StatusCode::CREATED, "{refunded}");
    assert_eq!(refunded["amount"], ret["refund"]);
    // The same return asked again is the same refund, not a second one.
    let (status, again) = call(&s.router, "POST", &refund_path, None, Some(&refund_body)).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again, refunded);
    let refunds = |sim: &Simulator| {
        sim.transactions()
            .iter()
            .filter(|t| t.kind != "Payment")
            .count()
    };
    assert_eq!(refunds(&s.sim), 1);
    // Partial refunds together never exceed what the payment captured: a second T-shirt comes
    // back without a receipt, more than is left of the payment.
    let ret2 = s
        .return_without_receipt(
            "return-2",
            json!([{"code": "CLO-TEE-0001-XS-WEI", "quantity": "1"}]),
            "card",
        )
        .await;
    let (status, e) = call(
        &s.router,
        "POST",
        &refund_path,
        None,
        Some(&json!({"terminal": TILL, "amount": ret2["refund"], "return": ret2["receipt"]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "refund_exceeds_captured");
    assert_eq!(e["field"], "amount");
    // The till refunds what is left by reference and the rest to a presented card.
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("at most 6.98 is left to refund"),
        "{e}"
    );
    let (status, second) = call(
        &s.router,
        "POST",
        &refund_path,
        None,
        Some(&json!({"terminal": TILL, "amount": "1.00", "return": ret2["receipt"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(refunds(&s.sim), 2);
    drop(s.app);
}

impl Setup {
    /// A return without receipt of `lines`, refunded as `tender`.
    async fn return_without_receipt(&self, key: &str, lines: Value, tender: &str) -> Value {
        let (status, ret) = call(
            &self.router,
            "POST",
            "/v1/returns",
            Some(key),
            Some(&json!({
                "terminal": TILL,
                "lines": lines,
                "reason": "no receipt",
                "refund_tender": tender,
            })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{ret}");
        ret
    }

    async fn refund_to_presented_card(&self, body: &Value) -> (StatusCode, Value) {
        call(
            &self.router,
            "POST",
            "/v1/card-payments/refund",
            None,
            Some(body),
        )
        .await
    }

    /// The refunds to presented cards the terminal made.
    fn presented_card_refunds(&self) -> Vec<payments::sim::SimTxn> {
        self.sim
            .transactions()
            .into_iter()
            .filter(|t| t.kind == "UnreferencedRefund" && t.state == "Approved")
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_without_receipt_is_refunded_to_a_card_presented_on_the_terminal() {
    let s = setup().await;
    let (poi, _, sale) = s.two_loaves_paid_by_card().await;

    // A loaf comes back without a receipt; the customer wants the money on a card.
    let ret = s
        .return_without_receipt(
            "return-1",
            json!([{"code": "9003909062415", "quantity": "1"}]),
            "card",
        )
        .await;
    assert_eq!(ret["refund"], "3.49");
    assert_eq!(
        ret["tenders"],
        json!([{"kind": "card", "amount": "3.49", "reference": null}])
    );
    let number = ret["receipt"].as_str().unwrap().to_owned();
    // More than the return paid out to a card is refused before the terminal is asked.
    let (status, e) = s
        .refund_to_presented_card(&json!({"terminal": TILL, "return": number, "amount": "3.50"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "refund_exceeds_return");
    assert_eq!(e["field"], "amount");
    assert!(s.presented_card_refunds().is_empty());
    // Without an amount: all of the return's card tender, to the card the customer presents.
    let refund = json!({"terminal": TILL, "return": number});
    let (status, refunded) = s.refund_to_presented_card(&refund).await;
    assert_eq!(status, StatusCode::CREATED, "{refunded}");
    assert_eq!(refunded["status"], "refunded");
    assert_eq!(refunded["amount"], "3.49");
    let at_terminal = s.presented_card_refunds();
    assert_eq!(at_terminal.len(), 1);
    assert_eq!(at_terminal[0].captured_minor, 349);
    assert_eq!(at_terminal[0].sale_transaction_id, number);
    assert_eq!(
        refunded["poi_transaction_id"],
        at_terminal[0].poi_transaction_id.as_str()
    );
    // Asked again (a lost answer, a second press): the same refund, nothing more at the terminal.
    let (status, again) = s.refund_to_presented_card(&refund).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again, refunded);
    assert_eq!(s.presented_card_refunds().len(), 1);
    // Nor can the same return be given back again by reference to the sale's payment.
    let (status, e) = call(
        &s.router,
        "POST",
        &format!("/v1/card-payments/{poi}/refund"),
        None,
        Some(&json!({"terminal": TILL, "amount": "3.49", "return": number})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "refund_exceeds_return");
    assert_eq!(
        s.sim
            .transactions()
            .iter()
            .filter(|t| t.kind == "Refund")
            .count(),
        0
    );

    // The ledger: the request before it left, as a refund to a presented card, and its outcome.
    let events = s.journal().await;
    let started = events
        .iter()
        .map(|e| &e["event"]["body"]["Card"]["Started"])
        .find(|c| c["sale"] == number.as_str())
        .unwrap();
    assert_eq!(started["kind"], "unreferenced-refund");
    assert_eq!(started["amount"], 349);
    assert_eq!(started["original"], Value::Null);
    let ended = events
        .iter()
        .map(|e| &e["event"]["body"]["Card"]["Ended"])
        .find(|c| c["service"] == started["service"])
        .unwrap();
    assert_eq!(
        ended["outcome"]["Refunded"]["poi"],
        refunded["poi_transaction_id"]
    );

    // The terminal refuses (an amount ending in 002): asked again, the rest goes through.
    let ret2 = s
        .return_without_receipt(
            "return-2",
            json!([{"code": "CLO-TEE-0001-XS-WEI", "quantity": "1"}, {"code": "9003909062415", "quantity": "1"}]),
            "card",
        )
        .await;
    assert_eq!(ret2["refund"], "13.48");
    let refund2 = json!({"terminal": TILL, "return": ret2["receipt"], "amount": "10.02"});
    let (status, e) = s.refund_to_presented_card(&refund2).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{e}");
    assert_eq!(e["code"], "card_refund_refused");
    let (status, second) = s
        .refund_to_presented_card(&json!({"terminal": TILL, "return": ret2["receipt"]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["amount"], "13.48");
    assert_eq!(s.presented_card_refunds().len(), 2);

    // A return paid out in cash has nothing to give back to a card; nor has an unknown one.
    let cash = s
        .return_without_receipt(
            "return-3",
            json!([{"code": "9003909062415", "quantity": "1"}]),
            "cash",
        )
        .await;
    let (status, e) = s
        .refund_to_presented_card(&json!({"terminal": TILL, "return": cash["receipt"]}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "return_not_refunded_to_card");
    assert_eq!(e["field"], "return");
    let (status, e) = s
        .refund_to_presented_card(&json!({"terminal": TILL, "return": sale["receipt"]}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "unknown_return");
    assert_eq!(e["field"], "return");
    assert_eq!(s.presented_card_refunds().len(), 2);

    // End of day: the ledger's card refunds are the terminal's credits.
    s.totals_today_agree(
        "refunds",
        json!([{"currency": "EUR", "count": 2, "amount": "16.97"}]),
    )
    .await;
    drop(s.app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_of_day_lists_differences_between_terminal_and_ledger() {
    let s = setup().await;
    s.two_loaves_paid_by_card().await;
    let shift = s.journal().await[1]["event"]["body"]["Card"]["Started"]["shift"]
        .as_str()
        .unwrap()
        .to_owned();
    s.totals_today_agree(
        "payments",
        json!([{"currency": "EUR", "count": 1, "amount": "6.98"}]),
    )
    .await;
    // The terminal took a payment no sale recorded: a difference, per shift and per day.
    let (status, body) = s.pay("pay-2", "sale-2", "2.50").await;
    approved(status, &body);
    let (status, shift_totals) = call(
        &s.router,
        "GET",
        &format!("/v1/card-payments/totals?terminal={TILL}&shift={shift}&close=true"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{shift_totals}");
    let differences = shift_totals["differences"].as_array().unwrap();
    assert_eq!(differences.len(), 1, "{shift_totals}");
    assert_eq!(
        differences[0],
        "payments in EUR: terminal 2 for 948 minor, ledger 1 for 698 minor"
    );
    assert_eq!(shift_totals["closed"], true);
    let (status, e) = call(
        &s.router,
        "GET",
        &format!("/v1/card-payments/totals?terminal={TILL}&day=23.11.2026"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["field"], "day");
    drop(s.app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_approvals_wait_in_a_queue_under_limits_until_the_terminal_settles_them() {
    let s = setup().await;
    s.sim.set_faults(Faults {
        offline: true,
        ..Faults::default()
    });
    let (status, body) = s.pay("pay-1", "sale-1", "20.00").await;
    approved(status, &body);
    assert_eq!(body["offline"], true);
    // Known offline now: the node's limits apply before the terminal is asked.
    let (status, e) = s.pay("pay-2", "sale-2", "31.00").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "offline_limit_exceeded");
    assert_eq!(e["field"], "amount");
    assert!(
        e["message"].as_str().unwrap().contains("per-transaction"),
        "{e}"
    );
    let (status, e) = s.pay("pay-3", "sale-3", "30.01").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (status, body) = s.pay("pay-4", "sale-4", "10.13").await;
    approved(status, &body);
    let (status, e) = s.pay("pay-5", "sale-5", "25.00").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e["message"].as_str().unwrap().contains("per-shift"), "{e}");
    assert_eq!(
        s.sim.transactions().len(),
        2,
        "refused before the terminal was asked"
    );

    let (status, pending) = call(&s.router, "GET", "/v1/card-payments/pending", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pending["count"], 2, "{pending}");
    assert!(pending["oldest_age_secs"].as_i64().unwrap() >= 0);
    // Back online: the terminal forwards; 10.13 is declined by the acquirer.
    s.sim.set_faults(Faults::default());
    let (status, done) = call(
        &s.router,
        "POST",
        "/v1/card-payments/reconcile-offline",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["pending"], 0);
    assert_eq!(done["declined"].as_array().unwrap().len(), 1, "{done}");
    assert_eq!(done["declined"][0]["amount"], "10.13");
    let kinds: Vec<String> = s
        .journal()
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        kinds.contains(&"CardOfflineSettled".to_owned()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"CardOfflineDeclined".to_owned()),
        "{kinds:?}"
    );
    drop(s.app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_card_number_reaches_sqlite_logs_receipts_or_sync_batches_from_a_misbehaving_terminal() {
    // Everything logged, at every level, from every crate, goes to a file that is scanned.
    let logs = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(logs.path().join("kassa.log")).unwrap();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(std::sync::Mutex::new(log))
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let s = setup().await;
    s.sim.set_faults(Faults {
        leak_pan: true,
        ..Faults::default()
    });
    let (poi, payment, sale) = s.two_loaves_paid_by_card().await;
    assert_eq!(payment["masked_pan"], "411111 **** 1111");
    let (status, ret) = call(
        &s.router,
        "POST",
        "/v1/returns",
        Some("return-1"),
        Some(&json!({"terminal": TILL, "receipt": sale["receipt"], "lines": [{"line": 0, "quantity": "1"}], "refund_tender": "card"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ret}");
    let (status, _) = call(
        &s.router,
        "POST",
        &format!("/v1/card-payments/{poi}/refund"),
        None,
        Some(&json!({"terminal": TILL, "amount": ret["refund"], "return": ret["receipt"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // A return without receipt refunded to the card the customer presents: the terminal leaks
    // that card's number too.
    let (status, ret) = call(
        &s.router,
        "POST",
        "/v1/returns",
        Some("return-2"),
        Some(&json!({"terminal": TILL, "lines": [{"code": "9003909062415", "quantity": "1"}], "reason": "no receipt", "refund_tender": "card"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ret}");
    let (status, refunded) = call(
        &s.router,
        "POST",
        "/v1/card-payments/refund",
        None,
        Some(&json!({"terminal": TILL, "return": ret["receipt"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{refunded}");
    let (status, body) = s.pay("pay-2", "sale-2", "10.01").await;
    let partial = approved(status, &body);
    call(
        &s.router,
        "POST",
        &format!("/v1/card-payments/{partial}/reverse"),
        None,
        Some(&json!({"terminal": TILL})),
    )
    .await;
    let (status, _) = s.pay("pay-3", "sale-3", "10.02").await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    s.sim.set_faults(Faults {
        leak_pan: true,
        offline: true,
        ..Faults::default()
    });
    let (status, body) = s.pay("pay-4", "sale-4", "10.13").await;
    approved(status, &body);
    s.sim.set_faults(Faults {
        leak_pan: true,
        ..Faults::default()
    });
    call(
        &s.router,
        "POST",
        "/v1/card-payments/reconcile-offline",
        None,
        None,
    )
    .await;
    call(
        &s.router,
        "GET",
        &format!("/v1/card-payments/totals?terminal={TILL}&day=2026-11-23&close=true"),
        None,
        None,
    )
    .await;
    let receipt = sale["receipt"].as_str().unwrap();
    let (_, preview) = call(
        &s.router,
        "GET",
        &format!("/v1/receipts/{receipt}/preview"),
        None,
        None,
    )
    .await;
    // The receipt names the card as the customer knows it: brand, masked PAN, auth code.
    let text = preview["text"].as_str().unwrap();
    assert!(text.contains("visa 411111 **** 1111 A"), "{text}");
    std::fs::write(s.node.join("receipt.out"), preview.to_string()).unwrap();
    let pools = store::db::open(&s.node).await.unwrap();
    let batch = store::sync::build_batch(&pools.reader, "vienna-01", TILL, 0, 1_000)
        .await
        .unwrap()
        .unwrap();
    assert!(batch.events.len() > 10);
    // The batch as it crosses the wire is zstd; what it carries is scanned decompressed.
    let decoded = protocol::sync::decode_batch(&protocol::sync::encode_batch(&batch, 3)).unwrap();
    std::fs::write(s.node.join("batch.out"), decoded.events.concat()).unwrap();
    drop(s.app);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The terminal did send full card numbers: the scan finds them where they are.
    let at_terminal = scan(&s.terminal);
    assert!(
        at_terminal.iter().any(|(_, d)| d == "4111111111111111"),
        "the misbehaving terminal should have sent card numbers"
    );
    // Kassa kept none: not in SQLite (file and WAL), the receipt, the sync batch or the logs.
    let leaks: Vec<_> = scan(&s.node).into_iter().chain(scan(logs.path())).collect();
    assert!(leaks.is_empty(), "card numbers found: {leaks:?}");
    let batch = std::fs::read(s.node.join("batch.out")).unwrap();
    let needle = b"411111 **** 1111";
    assert!(
        batch.windows(needle.len()).any(|w| w == needle),
        "the masked PAN is what the ledger keeps"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gift_card_sold_by_card_needs_the_terminal_payment_and_counts_at_end_of_day() {
    let s = setup().await;
    let number = domain::stored_value::AccountNumber::generate(
        domain::stored_value::StoredValueKind::GiftCard,
        7,
    )
    .to_string();
    let issue = |key: &'static str, tender: Value| {
        let router = s.router.clone();
        let number = number.clone();
        async move {
            call(
                &router,
                "POST",
                "/v1/gift-cards",
                Some(key),
                Some(
                    &json!({"terminal": TILL, "number": number, "amount": "20.00",
                             "tenders": [tender]}),
                ),
            )
            .await
        }
    };
    // On a till with a terminal a card tender without the terminal's payment is refused.
    let (status, e) = issue("gc-1", json!({"kind": "card", "amount": "20.00"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "card_payment_required");
    assert_eq!(e["field"], "tenders[0].reference");

    let (status, body) = s.pay("pay-gc", "gc-sale", "20.00").await;
    let poi = approved(status, &body);
    let (status, issued) = issue(
        "gc-2",
        json!({"kind": "card", "amount": "20.00", "reference": poi}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    // The payment is used by the card it loaded: it pays nothing else.
    let (status, e) = s
        .sale(
            "sale-after",
            json!([{"code": "9003909062415", "quantity": "1"}]),
            json!([{"kind": "card", "amount": "20.00", "reference": poi}]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");

    // End of day: the terminal's capture and the ledger's card debit agree.
    s.totals_today_agree(
        "payments",
        json!([{"currency": "EUR", "count": 1, "amount": "20.00"}]),
    )
    .await;
    drop(s.app);
}

impl Setup {
    /// A return with the receipt of `sale` of `lines` on `till`, refunded to a card.
    async fn return_to_card(&self, key: &str, till: &str, sale: &Value, lines: Value) -> Value {
        let (status, ret) = call(
            &self.router,
            "POST",
            "/v1/returns",
            Some(key),
            Some(&json!({
                "terminal": till,
                "receipt": sale["receipt"],
                "lines": lines,
                "refund_tender": "card",
            })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{ret}");
        ret
    }

    /// The refunds the terminal gave back, by reference or to a presented card.
    fn refunds_at_terminal(&self) -> Vec<payments::sim::SimTxn> {
        self.sim
            .transactions()
            .into_iter()
            .filter(|t| t.kind != "Payment" && t.state == "Approved")
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_on_another_till_is_refunded_to_a_card_only_once() {
    let s = setup().await;
    let (poi, _, sale) = s.two_loaves_paid_by_card().await;
    // The loaves come back at the second till; the first till refunds the sale's payment.
    let ret = s
        .return_to_card(
            "return-1",
            TILL2,
            &sale,
            json!([{"line": 0, "quantity": "2"}]),
        )
        .await;
    let refund_path = format!("/v1/card-payments/{poi}/refund");
    // A return that does not exist caps nothing, so it refunds nothing.
    let (status, e) = call(
        &s.router,
        "POST",
        &refund_path,
        None,
        Some(&json!({"terminal": TILL, "amount": "6.98", "return": "return-2"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "unknown_return");
    assert_eq!(e["field"], "return");
    // The receipt number as typed, with spaces around it, is the same return.
    let padded = format!(" {} ", ret["receipt"].as_str().unwrap());
    let (status, refunded) = call(
        &s.router,
        "POST",
        &refund_path,
        None,
        Some(&json!({"terminal": TILL, "amount": "6.98", "return": padded})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{refunded}");
    // The second till sees that refund: nothing is left to give to a presented card.
    let (status, e) = s
        .refund_to_presented_card(&json!({"terminal": TILL2, "return": ret["receipt"]}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "refund_exceeds_return");
    assert_eq!(e["field"], "return");
    assert_eq!(s.refunds_at_terminal().len(), 1);
    drop(s.app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referenced_refund_asked_again_after_its_answer_was_lost_refunds_once() {
    let s = setup().await;
    let (poi, _, sale) = s.two_loaves_paid_by_card().await;
    let ret = s
        .return_to_card(
            "return-1",
            TILL,
            &sale,
            json!([{"line": 0, "quantity": "2"}]),
        )
        .await;
    // The terminal refunds part of the return, and neither its answer nor any status comes back.
    s.sim.set_faults(Faults {
        drop_after_auth: true,
        drop_status: true,
        ..Faults::default()
    });
    let refund_path = format!("/v1/card-payments/{poi}/refund");
    let body = json!({"terminal": TILL, "amount": "1.00", "return": ret["receipt"]});
    let (status, e) = call(&s.router, "POST", &refund_path, None, Some(&body)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["code"], "card_request_unresolved");
    // Asked again once the terminal answers: the lost refund is the answer.
    s.sim.set_faults(Faults::default());
    let (status, refunded) = call(&s.router, "POST", &refund_path, None, Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{refunded}");
    let at_terminal = s.refunds_at_terminal();
    assert_eq!(at_terminal.len(), 1, "exactly one refund");
    assert_eq!(refunded["amount"], "1.00");
    assert_eq!(
        refunded["poi_transaction_id"],
        at_terminal[0].poi_transaction_id.as_str()
    );
    drop(s.app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reversal_asked_again_after_its_answer_was_lost_reverses_once() {
    let s = setup().await;
    let (status, body) = s.pay("pay-1", "sale-1", "6.98").await;
    let poi = approved(status, &body);
    s.sim.set_faults(Faults {
        drop_after_auth: true,
        drop_status: true,
        ..Faults::default()
    });
    let path = format!("/v1/card-payments/{poi}/reverse");
    let body = json!({"terminal": TILL});
    let (status, e) = call(&s.router, "POST", &path, None, Some(&body)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["code"], "card_request_unresolved");
    s.sim.set_faults(Faults::default());
    let (status, reversed) = call(&s.router, "POST", &path, None, Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{reversed}");
    assert_eq!(reversed["amount"], "6.98");
    assert_eq!(s.refunds_at_terminal().len(), 1, "exactly one reversal");
    drop(s.app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_of_a_sale_paid_by_card_here_goes_back_by_reference_not_to_a_presented_card() {
    let s = setup().await;
    let (poi, _, sale) = s.two_loaves_paid_by_card().await;
    let ret = s
        .return_to_card(
            "return-1",
            TILL,
            &sale,
            json!([{"line": 0, "quantity": "1"}]),
        )
        .await;
    let (status, e) = s
        .refund_to_presented_card(&json!({"terminal": TILL, "return": ret["receipt"]}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "refund_by_reference");
    assert_eq!(e["field"], "return");
    assert!(e["message"].as_str().unwrap().contains(&poi), "{e}");
    assert!(s.refunds_at_terminal().is_empty());

    // A card payment approved offline and declined later collected nothing to give back.
    s.sim.set_faults(Faults {
        offline: true,
        ..Faults::default()
    });
    // Three loaves (10.47): 10.13 by card (declined when forwarded), the rest in cash.
    let (status, body) = s.pay("pay-2", "sale-2", "10.13").await;
    let offline = approved(status, &body);
    let (status, sale2) = s
        .sale(
            "sale-2",
            json!([{"code": "9003909062415", "quantity": "3"}]),
            json!([{"kind": "card", "amount": "10.13", "reference": offline}, {"kind": "cash", "amount": "0.34"}]),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale2}");
    s.sim.set_faults(Faults::default());
    let (status, done) = call(
        &s.router,
        "POST",
        "/v1/card-payments/reconcile-offline",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["declined"].as_array().unwrap().len(), 1, "{done}");
    let ret2 = s
        .return_to_card(
            "return-2",
            TILL,
            &sale2,
            json!([{"line": 0, "quantity": "1"}]),
        )
        .await;
    let (status, e) = s
        .refund_to_presented_card(&json!({"terminal": TILL, "return": ret2["receipt"]}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "card_payment_declined_later");
    assert_eq!(e["field"], "return");
    assert!(s.refunds_at_terminal().is_empty());
    drop(s.app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_left_of_a_return_after_a_smaller_refund_to_a_presented_card_is_refunded_when_asked_again()
 {
    let s = setup().await;
    let ret = s
        .return_without_receipt(
            "return-1",
            json!([{"code": "9003909062415", "quantity": "1"}]),
            "card",
        )
        .await;
    let number = ret["receipt"].as_str().unwrap();
    let (status, first) = s
        .refund_to_presented_card(&json!({"terminal": TILL, "return": number, "amount": "1.00"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // Something is left: asked again, the rest goes to the card.
    let all_left = json!({"terminal": TILL, "return": number});
    let (status, rest) = s.refund_to_presented_card(&all_left).await;
    assert_eq!(status, StatusCode::CREATED, "{rest}");
    assert_eq!(rest["amount"], "2.49");
    // Nothing is left: asked again, the last refund is the answer and nothing more is sent.
    let (status, again) = s.refund_to_presented_card(&all_left).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again, rest);
    assert_eq!(s.presented_card_refunds().len(), 2);
    drop(s.app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_of_a_sale_paid_with_two_card_payments_is_refunded_across_both_by_reference() {
    let s = setup().await;
    // Two loaves and a T-shirt (16.97): 5.04 on one card, 11.93 on another.
    let (status, body) = s.pay("pay-1", "sale-1", "5.04").await;
    let first = approved(status, &body);
    let (status, body) = s.pay("pay-2", "sale-1", "11.93").await;
    let second = approved(status, &body);
    let (status, sale) = s
        .sale(
            "sale-1",
            json!([{"code": "9003909062415", "quantity": "2"}, {"code": "CLO-TEE-0001-XS-WEI"}]),
            json!([
                {"kind": "card", "amount": "5.04", "reference": first},
                {"kind": "card", "amount": "11.93", "reference": second},
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    let ret = s
        .return_to_card(
            "return-1",
            TILL,
            &sale,
            json!([{"line": 0, "quantity": "2"}, {"line": 1, "quantity": "1"}]),
        )
        .await;
    assert_eq!(ret["refund"], "16.97");
    let body = json!({"terminal": TILL, "return": ret["receipt"]});
    let ask = || {
        call(
            &s.router,
            "POST",
            "/v1/card-payments/refund-return",
            None,
            Some(&body),
        )
    };

    // The terminal refunds the first payment but its answer, and any status, is lost: the
    // refund stops there with a code the till can act on, and nothing is counted as given back
    // that the node does not know of.
    s.sim.set_faults(Faults {
        drop_after_auth: true,
        drop_status: true,
        ..Faults::default()
    });
    let (status, e) = ask().await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["code"], "card_refund_incomplete");
    assert_eq!(e["status"], "incomplete");
    assert_eq!(e["parts"], json!([]));
    assert_eq!(e["refunded"], "0.00");
    assert_eq!(e["due"], "16.97");
    assert!(!e["message"].as_str().unwrap().contains("/v1/"), "{e}");
    assert_eq!(s.refunds_at_terminal().len(), 1);

    // Asked again once the terminal answers: the lost refund is learnt and counts as the first
    // part, the second payment is refunded by its own reference, and the answer carries both.
    s.sim.set_faults(Faults::default());
    let (status, done) = ask().await;
    assert_eq!(status, StatusCode::CREATED, "{done}");
    assert_eq!(done["status"], "refunded");
    assert_eq!(done["refunded"], "16.97");
    assert_eq!(done["due"], "0.00");
    let parts = done["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{done}");
    assert_eq!(parts[0]["card_payment"], first.as_str());
    assert_eq!(parts[0]["amount"], "5.04");
    assert_eq!(parts[1]["card_payment"], second.as_str());
    assert_eq!(parts[1]["amount"], "11.93");
    let at_terminal = s.refunds_at_terminal();
    assert_eq!(at_terminal.len(), 2);
    assert!(at_terminal.iter().all(|t| t.kind == "Refund"));
    assert_eq!(
        at_terminal.iter().map(|t| t.captured_minor).sum::<i64>(),
        1_697
    );

    // Asked once more (a double click): the same parts, nothing sent to the terminal.
    let (status, again) = ask().await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again, done);
    assert_eq!(s.refunds_at_terminal().len(), 2);
    // End of day: the terminal gave back what the ledger paid out to card. (The ledger holds
    // the return's card tender as one, so the counts differ: two refunds, one tender.)
    let (status, totals) = s.totals_today().await;
    assert_eq!(status, StatusCode::OK, "{totals}");
    assert_eq!(totals["terminal_totals"]["refunds"][0]["amount"], "16.97");
    assert_eq!(totals["ledger_totals"]["refunds"][0]["amount"], "16.97");
    drop(s.app);
}

impl Setup {
    async fn refund_in_cash(&self, key: &str, number: &Value) -> (StatusCode, Value) {
        call(
            &self.router,
            "POST",
            "/v1/card-payments/refund-in-cash",
            Some(key),
            Some(&json!({"terminal": TILL, "return": number})),
        )
        .await
    }

    /// The till's X report: the tenders as kind → (taken, given back), and the expected cash.
    async fn x_report(&self) -> (std::collections::BTreeMap<String, (String, String)>, Value) {
        let (status, x) = call(
            &self.router,
            "GET",
            &format!("/v1/shifts/report?terminal={TILL}"),
            None,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{x}");
        let tenders = x["tenders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["kind"].as_str().unwrap().to_owned(),
                    (
                        t["taken"].as_str().unwrap().to_owned(),
                        t["given_back"].as_str().unwrap().to_owned(),
                    ),
                )
            })
            .collect();
        (tenders, x)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_no_card_gave_back_is_paid_in_cash_and_never_recorded_as_refunded_to_a_card() {
    let s = setup().await;
    let ret = s
        .return_without_receipt(
            "return-1",
            json!([{"code": "9003909062415", "quantity": "1"}]),
            "card",
        )
        .await;
    let number = &ret["receipt"];
    // Nothing to pay in cash for a return that was not refunded to a card, or is unknown.
    let (status, e) = s.refund_in_cash("cash-0", &json!("R-NOPE")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "unknown_return");
    assert_eq!(e["field"], "return");

    // 1.00 goes back to the presented card; the card refuses the next part (0.02).
    let presented = |amount: Option<&str>| {
        let mut body = json!({"terminal": TILL, "return": number});
        if let Some(a) = amount {
            body["amount"] = json!(a);
        }
        body
    };
    let (status, first) = s.refund_to_presented_card(&presented(Some("1.00"))).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, refused) = s.refund_to_presented_card(&presented(Some("0.02"))).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{refused}");
    // End of day lists what the customer is still owed.
    let (status, totals) = s.totals_today().await;
    assert_eq!(status, StatusCode::OK, "{totals}");
    assert_eq!(
        totals["card_refunds_owed"],
        json!([{"return": number, "owed": "2.49"}])
    );

    // Only from the drawer of the till that took the return.
    let (status, e) = call(
        &s.router,
        "POST",
        "/v1/card-payments/refund-in-cash",
        Some("cash-other-till"),
        Some(&json!({"terminal": TILL2, "return": number})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "return_at_another_till");
    assert_eq!(e["field"], "return");
    // The drawer pays the rest of the loaf's 3.49, 2.49: recorded once, the retry answers the same event.
    let (status, paid) = s.refund_in_cash("cash-1", number).await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    assert_eq!(paid["kind"], "CardRefundPaidInCash");
    assert_eq!(paid["return"], *number);
    assert_eq!(paid["amount"], "2.49");
    let (status, again) = s.refund_in_cash("cash-1", number).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again, paid);
    let (status, e) = s.refund_in_cash("cash-2", number).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["code"], "nothing_due");
    // Nor does a card take it any more: asked, the node answers the last refund it made.
    let refunds = s.presented_card_refunds().len();
    let (status, last) = s.refund_to_presented_card(&presented(None)).await;
    assert_eq!(status, StatusCode::CREATED, "{last}");
    assert_eq!(last, first);
    assert_eq!(s.presented_card_refunds().len(), refunds);
    let in_cash = s
        .journal()
        .await
        .iter()
        .filter(|e| e["kind"] == "CardRefundPaidInCash")
        .count();
    assert_eq!(in_cash, 1);

    // The shift and the end of day hold what was given back: 1.00 to the card, 2.49 in cash.
    let (tenders, x) = s.x_report().await;
    assert_eq!(tenders["card"].1, "1.00", "{x}");
    assert_eq!(tenders["cash"].1, "2.49", "{x}");
    assert_eq!(x["refunds_total"], "3.49");
    let (_, totals) = s.totals_today().await;
    assert_eq!(totals["card_refunds_owed"], json!([]));
    s.totals_today_agree(
        "refunds",
        json!([{"currency": "EUR", "count": 1, "amount": "1.00"}]),
    )
    .await;
    drop(s.app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_refund_whose_answer_was_lost_is_learnt_before_anything_is_paid_in_cash() {
    let s = setup().await;
    let (_, _, sale) = s.two_loaves_paid_by_card().await;
    let ret = s
        .return_to_card(
            "return-1",
            TILL,
            &sale,
            json!([{"line": 0, "quantity": "2"}]),
        )
        .await;
    let number = &ret["receipt"];
    // The terminal refunds, but its answer is lost.
    s.sim.set_faults(Faults {
        drop_after_auth: true,
        drop_status: true,
        ..Faults::default()
    });
    let (status, e) = call(
        &s.router,
        "POST",
        "/v1/card-payments/refund-return",
        None,
        Some(&json!({"terminal": TILL, "return": number})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["code"], "card_refund_incomplete");
    assert_eq!(s.refunds_at_terminal().len(), 1);

    // While the terminal cannot say what became of it, nothing is paid in cash.
    s.sim.set_faults(Faults {
        offline: true,
        drop_before_auth: true,
        drop_status: true,
        ..Faults::default()
    });
    let (status, e) = s.refund_in_cash("cash-1", number).await;
    assert!(
        status.is_server_error() || status == StatusCode::CONFLICT,
        "{status} {e}"
    );
    assert!(
        !s.journal()
            .await
            .iter()
            .any(|e| e["kind"] == "CardRefundPaidInCash")
    );

    // Once it answers, the refund is learnt: the card got everything, the drawer pays nothing.
    s.sim.set_faults(Faults::default());
    let (status, e) = s.refund_in_cash("cash-2", number).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["code"], "nothing_due");
    let (tenders, x) = s.x_report().await;
    assert_eq!(tenders["card"].1, "6.98", "{x}");
    assert_eq!(
        tenders.get("cash").map_or("0.00", |t| t.1.as_str()),
        "0.00",
        "{x}"
    );
    drop(s.app);
}
