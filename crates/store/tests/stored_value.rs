//! Gift cards and store credit at the store node, in process over a real SQLite ledger: issue
//! and top-up paid in cash, redemption never above the balance, split tender, voids giving a
//! redemption back, refunds as store credit, and the offline liability cap while HQ cannot be
//! reached. (Balances held at HQ are tested with real processes in `crates/kassa/tests/sync.rs`.)
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use domain::stored_value::{AccountNumber, StoredValueKind};
use domain::{StoreId, TerminalId};
use serde_json::{Value, json};
use tempfile::TempDir;
mod common;

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/demo/seed.json");
const T1: &str = "vienna-01-t1";
const BREAD_GTIN: &str = "9003909062415";

struct Node {
    _dir: TempDir,
    _app: store::App,
    node: Arc<store::node::Node>,
    router: Router,
    session: String,
}

fn key() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("sv-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn gift_card(entropy: u64) -> String {
    AccountNumber::generate(StoredValueKind::GiftCard, entropy).to_string()
}

impl Node {
    /// A node of vienna-01 with one terminal and a manager's open shift; `hq` is HQ's URL, if
    /// the node syncs.
    async fn start(hq: Option<&str>) -> Node {
        let dir = tempfile::tempdir().unwrap();
        store::provision(
            dir.path(),
            &StoreId::parse("vienna-01").unwrap(),
            &[TerminalId::parse(T1).unwrap()],
        )
        .await
        .unwrap();
        let seed: protocol::seed::SeedDto =
            serde_json::from_str(&std::fs::read_to_string(SEED).unwrap()).unwrap();
        store::seed(dir.path(), &seed).await.unwrap();
        let app = store::App::build(
            &store::Settings {
                data_dir: dir.path().to_path_buf(),
                listen: "127.0.0.1:0".parse().unwrap(),
                sync: hq.map(|url| store::sync::SyncSettings {
                    hq_url: url.to_owned(),
                    token: "no-such-credential".into(),
                    pull_every: Duration::from_secs(3600),
                    hq_ca: None,
                    hq_client_cert: None,
                }),
            },
            Arc::new(store::clock::SystemClock),
        )
        .await
        .unwrap();
        let node = app.node();
        let router = store::api::router(node.clone());
        let mut this = Node {
            _dir: dir,
            _app: app,
            node,
            router,
            session: String::new(),
        };
        let (status, body) = this
            .post(
                "/v1/sign-in",
                &json!({"terminal": T1, "staff": "maria", "pin": "3333"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        this.session = body["session"].as_str().unwrap().to_owned();
        let (status, body) = this
            .post(
                "/v1/shifts/open",
                &json!({"terminal": T1, "float": "100.00"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        this
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        common::respond(&self.router, request).await
    }

    /// POSTs JSON as the signed-in manager with a fresh idempotency key.
    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let mut request = Request::post(path)
            .header("content-type", "application/json")
            .header("idempotency-key", key())
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap();
        if !self.session.is_empty() {
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {}", self.session).parse().unwrap(),
            );
        }
        self.send(request).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let mut request = Request::get(path).body(Body::empty()).unwrap();
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", self.session).parse().unwrap(),
        );
        self.send(request).await
    }

    async fn issue(&self, number: &str, amount: &str, cash: &str) -> (StatusCode, Value) {
        self.post(
            "/v1/gift-cards",
            &json!({"terminal": T1, "number": number, "amount": amount,
                    "tenders": [{"kind": "cash", "amount": cash}]}),
        )
        .await
    }

    async fn balance(&self, number: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/stored-value/{number}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Two loaves of bread (6.98) paid with `tenders`.
    async fn bread(&self, tenders: Value) -> (StatusCode, Value) {
        self.loaves("2", tenders).await
    }

    /// `quantity` loaves of bread (3.49 each) paid with `tenders`.
    async fn loaves(&self, quantity: &str, tenders: Value) -> (StatusCode, Value) {
        self.post(
            "/v1/sales",
            &json!({"terminal": T1, "lines": [{"code": BREAD_GTIN, "quantity": quantity}],
                    "tenders": tenders}),
        )
        .await
    }
}

#[track_caller]
fn assert_refused(response: &(StatusCode, Value), code: &str, field: &str) {
    let (status, body) = response;
    assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["field"], field, "{body}");
}

#[tokio::test]
async fn a_gift_card_sold_for_cash_pays_sales_up_to_its_balance() {
    let node = Node::start(None).await;
    let number = gift_card(1_001);
    let (status, issued) = node.issue(&number, "20.00", "50.00").await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert_eq!(issued["kind"], "StoredValueIssued");
    assert_eq!(issued["number"], number.as_str());
    assert_eq!(issued["change"], "30.00");
    let balance = node.balance(&number).await;
    assert_eq!(balance["balance"], "20.00");
    assert_eq!(balance["source"], "node");
    assert_eq!(balance["kind"], "gift-card");

    // Typed in lower case with spaces, the same card pays 6.98.
    let typed = format!("{} {}", number[..6].to_lowercase(), &number[6..]);
    let (status, sale) = node
        .bread(json!([{"kind": "gift-card", "amount": "6.98", "reference": typed}]))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    assert_eq!(node.balance(&number).await["balance"], "13.02");

    // Above the balance: refused, naming the tender's amount and the balance; nothing written.
    let refused = node
        .loaves(
            "4",
            json!([
                {"kind": "cash", "amount": "1.00"},
                {"kind": "gift-card", "amount": "13.03", "reference": number}
            ]),
        )
        .await;
    assert_refused(&refused, "insufficient_balance", "tenders[1].amount");
    assert!(
        refused.1["message"].as_str().unwrap().contains("13.02"),
        "{}",
        refused.1
    );
    // Split tender: what the card holds, the rest in cash with change.
    let (status, sale) = node
        .bread(json!([
            {"kind": "gift-card", "amount": "5.00", "reference": number},
            {"kind": "cash", "amount": "5.00"}
        ]))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    assert_eq!(sale["cart"]["change"], "3.02", "{sale}");
    assert_eq!(node.balance(&number).await["balance"], "8.02");
    // What a receipt on screen shows of the card: its last four only.
    assert_eq!(
        sale["tenders"][0]["masked_reference"],
        format!("**** {}", &number[number.len() - 4..]),
        "{sale}"
    );
    assert!(
        sale["tenders"][1].get("masked_reference").is_none(),
        "{sale}"
    );

    // Voiding that sale gives the redemption back.
    let (status, body) = node
        .post(
            "/v1/sales/void-last",
            &json!({"terminal": T1, "reason": "wrong card"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(node.balance(&number).await["balance"], "13.02");

    // A top-up adds to it; the cash of both loads is in the drawer.
    let (status, body) = node
        .post(
            &format!("/v1/gift-cards/{number}/top-up"),
            &json!({"terminal": T1, "amount": "10.00", "tenders": [{"kind": "cash", "amount": "10.00"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["kind"], "StoredValueToppedUp");
    assert_eq!(node.balance(&number).await["balance"], "23.02");
    let (status, report) = node.get(&format!("/v1/shifts/report?terminal={T1}")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["stored_value_sold"], "30.00");
    // Float 100 + 20 + 10 for the gift card; the voided sale's cash went back.
    assert_eq!(report["expected"], "130.00", "{report}");
    assert_eq!(report["sales"], 2);
}

#[tokio::test]
async fn bad_gift_card_requests_name_the_field_and_write_nothing() {
    let node = Node::start(None).await;
    let number = gift_card(2_002);
    assert_eq!(
        node.issue(&number, "10.00", "10.00").await.0,
        StatusCode::CREATED
    );
    let (status, body) = node.issue(&number, "10.00", "10.00").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "already_issued");
    // One character off: the check character catches it.
    let mut typo = number.clone().into_bytes();
    typo[5] = if typo[5] == b'7' { b'8' } else { b'7' };
    let typo = String::from_utf8(typo).unwrap();
    assert_refused(
        &node.issue(&typo, "10.00", "10.00").await,
        "invalid_number",
        "number",
    );
    let credit = AccountNumber::generate(StoredValueKind::StoreCredit, 5).to_string();
    assert_refused(
        &node.issue(&credit, "10.00", "10.00").await,
        "invalid_number",
        "number",
    );
    assert_refused(
        &node.issue(&gift_card(3), "10.00", "9.99").await,
        "tenders_short",
        "tenders",
    );
    assert_refused(
        &node
            .post(
                "/v1/gift-cards",
                &json!({"terminal": T1, "number": gift_card(4), "amount": "10.00",
                        "tenders": [{"kind": "gift-card", "amount": "10.00", "reference": number}]}),
            )
            .await,
        "invalid_field",
        "tenders[0].kind",
    );
    assert_refused(
        &node
            .bread(json!([{"kind": "gift-card", "amount": "6.98"}]))
            .await,
        "invalid_number",
        "tenders[0].reference",
    );
    assert_refused(
        &node
            .bread(json!([{"kind": "store-credit", "amount": "6.98", "reference": number}]))
            .await,
        "invalid_number",
        "tenders[0].reference",
    );
    // A card never issued holds nothing.
    assert_refused(
        &node
            .bread(json!([{"kind": "gift-card", "amount": "6.98", "reference": gift_card(5)}]))
            .await,
        "insufficient_balance",
        "tenders[0].amount",
    );
    let (status, body) = node
        .post(
            &format!("/v1/gift-cards/{}/top-up", gift_card(6)),
            &json!({"terminal": T1, "amount": "1.00", "tenders": [{"kind": "cash", "amount": "1.00"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "unknown_account");
    assert_eq!(node.balance(&number).await["balance"], "10.00");
    let (_, status) = node.get("/v1/status").await;
    assert_eq!(status["terminals"][0]["last_seq"], 2, "{status}");
}

#[tokio::test]
async fn a_refund_as_store_credit_opens_an_account_that_pays_later() {
    let node = Node::start(None).await;
    let (status, ret) = node
        .post(
            "/v1/returns",
            &json!({"terminal": T1, "lines": [{"code": BREAD_GTIN, "quantity": "2"}],
                    "reason": "gift, no receipt", "refund_tender": "store-credit"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ret}");
    let credit = ret["tenders"][0]["reference"].as_str().unwrap().to_owned();
    assert_eq!(
        AccountNumber::parse(&credit).unwrap().kind(),
        StoredValueKind::StoreCredit
    );
    assert_eq!(node.balance(&credit).await["balance"], "6.98");
    // A second refund onto the same account adds to it.
    let (status, ret) = node
        .post(
            "/v1/returns",
            &json!({"terminal": T1, "lines": [{"code": BREAD_GTIN, "quantity": "1"}],
                    "reason": "gift, no receipt", "refund_tender": "store-credit",
                    "refund_reference": credit}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ret}");
    assert_eq!(ret["tenders"][0]["reference"], credit.as_str());
    assert_eq!(node.balance(&credit).await["balance"], "10.47");
    let (status, sale) = node
        .bread(json!([{"kind": "store-credit", "amount": "6.98", "reference": credit}]))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    assert_eq!(node.balance(&credit).await["balance"], "3.49");
    // A refund onto a gift card needs the card's number.
    assert_refused(
        &node
            .post(
                "/v1/returns",
                &json!({"terminal": T1, "lines": [{"code": BREAD_GTIN, "quantity": "1"}],
                        "reason": "gift, no receipt", "refund_tender": "gift-card"}),
            )
            .await,
        "invalid_number",
        "refund_reference",
    );
}

#[tokio::test]
async fn with_hq_out_of_reach_redemptions_stay_within_the_offline_cap() {
    // Nothing listens on a privileged port: HQ is out of reach.
    let node = Node::start(Some("http://127.0.0.1:1")).await;
    let number = gift_card(7_007);
    // Issued offline: the node takes it on trust (HQ learns of it when sync catches up).
    let (status, body) = node.issue(&number, "50.00", "50.00").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // No cap configured: nothing may be redeemed offline.
    let refused = node
        .bread(json!([{"kind": "gift-card", "amount": "6.98", "reference": number}]))
        .await;
    assert_refused(&refused, "offline_cap_exceeded", "tenders[0].amount");

    store::stored_value::set_offline_cap(&node.node, "10.00")
        .await
        .unwrap();
    let (status, sale) = node
        .bread(json!([{"kind": "gift-card", "amount": "6.98", "reference": number}]))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    let balance = node.balance(&number).await;
    assert_eq!(balance["source"], "local");
    assert_eq!(balance["online"], false);
    assert_eq!(balance["balance"], "43.02");
    assert_eq!(balance["pending"], "43.02");
    assert_eq!(balance["offline_cap"], "10.00");
    assert_eq!(balance["offline_headroom"], "3.02");
    // 6.98 more would take the unconfirmed redemptions to 13.96, over the cap of 10.00.
    let refused = node
        .bread(json!([
            {"kind": "gift-card", "amount": "3.00", "reference": number},
            {"kind": "gift-card", "amount": "3.98", "reference": number}
        ]))
        .await;
    assert_refused(&refused, "offline_cap_exceeded", "tenders[0].amount");
    assert!(
        refused.1["message"].as_str().unwrap().contains("10.00"),
        "{}",
        refused.1
    );
    // Within the headroom, with the rest in cash.
    let (status, sale) = node
        .bread(json!([
            {"kind": "gift-card", "amount": "3.02", "reference": number},
            {"kind": "cash", "amount": "3.96"}
        ]))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    assert_eq!(node.balance(&number).await["offline_headroom"], "0.00");
}
