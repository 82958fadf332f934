//! The store node's HTTP API in process: a real SQLite ledger in a temporary directory seeded
//! with the demo reference data, driven through the router with `tower::ServiceExt::oneshot`.
#![allow(clippy::unwrap_used)] // Test code: a panic is a test failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use domain::{StoreId, TerminalId};
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/demo/seed.json");
const T1: &str = "vienna-01-t1";
const T2: &str = "vienna-01-t2";
const BREAD_GTIN: &str = "9003909062415";
const BREAD: &str = "GRO-BRD-0012";
const BANANA_LABEL: &str = "2104011012507";
const CHEESE_PRICE_LABEL: &str = "2311101008993";
const TEE: &str = "CLO-TEE-0001-XS-WEI";
/// `HOU-GEN-0005`, sold online only.
const ONLINE_ONLY_GTIN: &str = "9053652083649";

/// Keys unique across the whole test binary.
fn fresh_key() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("key-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// One node: its data directory, the built app (kept alive) and its router.
struct TestNode {
    dir: TempDir,
    router: Router,
    terminals: Vec<String>,
    /// The session of the member who opened each terminal's shift, sent with every request
    /// that does not bring its own.
    sessions: std::sync::Mutex<std::collections::HashMap<String, (String, String)>>,
    _app: store::App,
}

impl TestNode {
    async fn vienna() -> TestNode {
        TestNode::start("vienna-01").await
    }

    async fn start(store_id: &str) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let terminals = vec![format!("{store_id}-t1"), format!("{store_id}-t2")];
        let ids: Vec<TerminalId> = terminals
            .iter()
            .map(|t| TerminalId::parse(t).unwrap())
            .collect();
        store::provision(dir.path(), &StoreId::parse(store_id).unwrap(), &ids)
            .await
            .unwrap();
        let seed: protocol::seed::SeedDto =
            serde_json::from_str(&std::fs::read_to_string(SEED).unwrap()).unwrap();
        store::seed(dir.path(), &seed).await.unwrap();
        let app = store::App::build(
            &store::Settings {
                data_dir: dir.path().to_path_buf(),
                listen: "127.0.0.1:0".parse().unwrap(),
                sync: None,
            },
            Arc::new(store::clock::SystemClock),
        )
        .await
        .unwrap();
        let router = store::api::router(app.node());
        let node = TestNode {
            dir,
            router,
            terminals,
            sessions: std::sync::Mutex::default(),
            _app: app,
        };
        // A manager's shift: the tests of pricing and the ledger need no approvals; the
        // permission tests open their own shifts as a cashier.
        for terminal in node.terminals.clone() {
            node.open_shift(&terminal, "maria", "3333").await;
        }
        node
    }

    /// Signs `staff` in at `terminal`; answers the session token.
    async fn sign_in(&self, terminal: &str, staff: &str, pin: &str) -> String {
        let (status, body) = self
            .post(
                "/v1/sign-in",
                None,
                &json!({"terminal": terminal, "staff": staff, "pin": pin}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let session = body["session"].as_str().unwrap().to_owned();
        // Signing in again ends the member's earlier session at that till.
        if let Some((member, kept)) = self.sessions.lock().unwrap().get_mut(terminal) {
            if member == staff {
                kept.clone_from(&session);
            }
        }
        session
    }

    /// Signs `staff` in and opens a shift with a float of 100.00.
    async fn open_shift(&self, terminal: &str, staff: &str, pin: &str) -> String {
        let session = self.sign_in(terminal, staff, pin).await;
        let (status, body) = self
            .as_staff(
                &session,
                "/v1/shifts/open",
                &json!({"terminal": terminal, "float": "100.00"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.sessions
            .lock()
            .unwrap()
            .insert(terminal.to_owned(), (staff.to_owned(), session.clone()));
        session
    }

    /// The session of the member who opened `terminal`'s shift (or of any till's, when the
    /// request names none).
    fn session_of(&self, terminal: Option<&str>) -> Option<String> {
        let sessions = self.sessions.lock().unwrap();
        // A terminal this node does not host gets any session, so that the refusal tested is
        // the unknown terminal and not the missing sign-in.
        terminal
            .and_then(|t| sessions.get(t))
            .or_else(|| self.terminals.iter().find_map(|t| sessions.get(t)))
            .map(|(_, session)| session.clone())
    }

    /// `request` with the session of the terminal it names, unless it brings its own.
    fn signed(&self, mut request: Request<Body>, terminal: Option<&str>) -> Request<Body> {
        if !request.headers().contains_key("authorization") {
            if let Some(session) = self.session_of(terminal) {
                request.headers_mut().insert(
                    "authorization",
                    format!("Bearer {session}").parse().unwrap(),
                );
            }
        }
        request
    }

    /// POSTs JSON with a fresh idempotency key as the signed-in member of `session`.
    async fn as_staff(&self, session: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        let mut request = post_request(path, Some(&fresh_key()), serde_json::to_vec(body).unwrap());
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {session}").parse().unwrap(),
        );
        self.send(request).await
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        send(self.router.clone(), request).await
    }

    /// GETs `path` as the member who opened the first terminal's shift (a manager).
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let request = self.signed(Request::get(path).body(Body::empty()).unwrap(), None);
        self.send(request).await
    }

    /// POSTs raw bytes with an optional idempotency key, as the member who opened the shift of
    /// the terminal the body names.
    async fn post_raw(&self, path: &str, key: Option<&str>, body: Vec<u8>) -> (StatusCode, Value) {
        let terminal = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|b| b["terminal"].as_str().map(str::to_owned));
        let request = self.signed(post_request(path, key, body), terminal.as_deref());
        self.send(request).await
    }

    /// POSTs JSON with an optional idempotency key.
    async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> (StatusCode, Value) {
        self.post_raw(path, key, serde_json::to_vec(body).unwrap())
            .await
    }

    /// POSTs JSON with a fresh idempotency key.
    async fn write(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.post(path, Some(&fresh_key()), body).await
    }

    async fn sale(&self, body: &Value) -> (StatusCode, Value) {
        self.write("/v1/sales", body).await
    }

    /// `last_seq` of every terminal, from `/v1/status`.
    async fn heads(&self) -> Vec<(String, u64)> {
        let (status, body) = self.get("/v1/status").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["terminals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["id"].as_str().unwrap().to_owned(),
                    t["last_seq"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// Events of `terminal` after its shift opened (its `ShiftOpened` is sequence 1).
    async fn last_seq(&self, terminal: &str) -> u64 {
        self.heads()
            .await
            .into_iter()
            .find(|(t, _)| t == terminal)
            .unwrap()
            .1
            - 1
    }

    /// Events written since the shifts were opened.
    async fn total_events(&self) -> u64 {
        self.all_events().await - self.terminals.len() as u64
    }

    async fn all_events(&self) -> u64 {
        self.heads().await.iter().map(|(_, s)| s).sum()
    }

    /// The terminal's events after its shift opened.
    async fn journal(&self, terminal: &str) -> Vec<Value> {
        let (status, body) = self
            .get(&format!("/v1/journal?terminal={terminal}&from=2"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["events"].as_array().unwrap().clone()
    }

    async fn on_hand(&self, sku: &str) -> String {
        let (status, body) = self.get(&format!("/v1/stock/{sku}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["sku"], sku);
        body["on_hand"].as_str().unwrap().to_owned()
    }

    /// Every terminal's chain verifies from genesis; returns the number of events checked.
    async fn assert_chain_intact(&self) -> u64 {
        let pools = store::db::open(self.dir.path()).await.unwrap();
        let reports = store::verify::verify(&pools.reader).await.unwrap();
        assert_eq!(reports.len(), self.terminals.len());
        let mut events = 0;
        for report in &reports {
            assert!(
                report.broken.is_none(),
                "broken link: {}",
                report.broken.as_ref().unwrap()
            );
            events += report.events;
        }
        assert_eq!(events, self.all_events().await);
        pools.reader.close().await;
        pools.writer.close().await;
        events
    }
}

fn post_request(path: &str, key: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut builder = Request::post(path).header("content-type", "application/json");
    if let Some(key) = key {
        builder = builder.header("idempotency-key", key);
    }
    builder.body(Body::from(body)).unwrap()
}

async fn send(router: Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {bytes:?}"))
    };
    (status, body)
}

/// Asserts the API's error shape: status, code, a message and the field at fault (or none).
#[track_caller]
fn assert_error(
    response: &(StatusCode, Value),
    status: StatusCode,
    code: &str,
    field: Option<&str>,
) {
    let (got, body) = response;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    match field {
        Some(field) => assert_eq!(body["field"], field, "{body}"),
        None => assert!(body.get("field").is_none(), "{body}"),
    }
}

fn cash(amount: &str) -> Value {
    json!([{"kind": "cash", "amount": amount}])
}

fn card(amount: &str) -> Value {
    json!([{"kind": "card", "amount": amount}])
}

/// Two loaves of bread and one T-shirt, 16.97 EUR, paid by card.
fn bread_and_tee(terminal: &str) -> Value {
    json!({
        "terminal": terminal,
        "lines": [
            {"code": BREAD_GTIN, "quantity": "2"},
            {"code": TEE},
        ],
        "tenders": card("16.97"),
    })
}

/// A sale with a single line, paid 100 EUR cash.
fn one_line_sale(line: Value) -> Value {
    json!({"terminal": T1, "lines": [line], "tenders": cash("100.00")})
}

/// The lines of the mixed cart: barcode ×2, weight label, price label, SKU with 10 % off.
fn mixed_lines() -> Value {
    json!([
        {"code": BREAD_GTIN, "quantity": "2"},
        {"code": BANANA_LABEL},
        {"code": CHEESE_PRICE_LABEL},
        {"code": TEE, "discount": {"percent": "10"}},
    ])
}

/// Asserts a priced line: sku, quantity, unit price, extended, discount, net, taxes, gross.
#[track_caller]
#[allow(clippy::too_many_arguments)]
fn assert_line(
    line: &Value,
    sku: &str,
    quantity: &str,
    unit_price: &str,
    extended: &str,
    discount: &str,
    net: &str,
    tax: (&str, &str),
    gross: &str,
) {
    assert_eq!(line["sku"], sku, "{line}");
    assert_eq!(line["quantity"], quantity, "{line}");
    assert_eq!(line["unit_price"], unit_price, "{line}");
    assert_eq!(line["extended"], extended, "{line}");
    assert_eq!(line["discount"], discount, "{line}");
    assert_eq!(line["net"], net, "{line}");
    assert_eq!(
        line["taxes"],
        json!([{"code": "VAT", "rate": tax.0, "amount": tax.1}]),
        "{line}"
    );
    assert_eq!(line["gross"], gross, "{line}");
}

/// Asserts the totals of the mixed cart, worked out by hand.
///
/// AT prices include VAT; tax is taken per rate on the document total, rounded half up, and
/// given back to the lines by largest remainder.
///
/// - bread 2 × 3.49 = 6.98 (10 %)
/// - bananas 1.250 kg × 1.99 = 2.4875 → 2.49 (10 %)
/// - cheese price label 8.99 (10 %); 8.99 / 24.90 per kg = 0.36104 → 0.361 kg
/// - T-shirt 9.99 − 10 % (0.999 → 1.00) = 8.99 (20 %)
///
/// 10 %: 18.46 × 10/110 = 1.678… → 1.68; per line 0.634 / 0.226 / 0.817 (exact), floors
/// 63 + 22 + 81 = 166, the two cents left go to the largest fractions (cheese .727, bananas
/// .636): 0.63 / 0.23 / 0.82. 20 %: 8.99 × 20/120 = 1.498… → 1.50.
#[track_caller]
fn assert_mixed_cart(cart: &Value) {
    assert_eq!(cart["currency"], "EUR");
    let lines = cart["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 4, "{cart}");
    assert_line(
        &lines[0],
        BREAD,
        "2",
        "3.49",
        "6.98",
        "0.00",
        "6.35",
        ("10", "0.63"),
        "6.98",
    );
    assert_eq!(lines[0]["name"], "Bauernbrot 750 g");
    assert_eq!(lines[0]["unit"], "each");
    assert_line(
        &lines[1],
        "GRO-FRU-0001",
        "1.25",
        "1.99",
        "2.49",
        "0.00",
        "2.26",
        ("10", "0.23"),
        "2.49",
    );
    assert_eq!(lines[1]["unit"], "kg");
    assert_line(
        &lines[2],
        "GRO-DEL-0001",
        "0.361",
        "24.90",
        "8.99",
        "0.00",
        "8.17",
        ("10", "0.82"),
        "8.99",
    );
    assert_line(
        &lines[3],
        TEE,
        "1",
        "9.99",
        "9.99",
        "1.00",
        "7.49",
        ("20", "1.50"),
        "8.99",
    );
    assert_eq!(
        cart["taxes"],
        json!([
            {"code": "VAT", "rate": "10", "base": "16.78", "amount": "1.68"},
            {"code": "VAT", "rate": "20", "base": "7.49", "amount": "1.50"},
        ])
    );
    assert_eq!(cart["subtotal"], "28.45");
    assert_eq!(cart["discount_total"], "1.00");
    assert_eq!(cart["net_total"], "24.27");
    assert_eq!(cart["tax_total"], "3.18");
    assert_eq!(cart["total"], "27.45");
}

// --- Sales -------------------------------------------------------------------------------------

#[tokio::test]
async fn sale_with_barcode_scale_labels_sku_and_line_discount_is_priced_by_the_server() {
    let node = TestNode::vienna().await;
    let (status, body) = node
        .sale(&json!({
            "terminal": T1,
            "cashier": "maria",
            "lines": mixed_lines(),
            "tenders": cash("30.00"),
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["kind"], "SaleCompleted");
    assert_eq!(body["terminal"], T1);
    assert_eq!(body["seq"], 2);
    assert_eq!(body["receipt"], "vienna-01-t1-000001");
    assert_eq!(body["cashier"], "maria");
    let cart = &body["cart"];
    assert_mixed_cart(cart);
    assert_eq!(cart["cash_rounding"], "0.00");
    assert_eq!(cart["due"], "27.45");
    assert_eq!(cart["tendered"], "30.00");
    assert_eq!(cart["change"], "2.55");
    assert_eq!(
        body["tenders"],
        json!([{"kind": "cash", "amount": "30.00", "reference": null}])
    );
    assert_eq!(node.last_seq(T1).await, 1);
    assert_eq!(node.last_seq(T2).await, 0);

    // Receipt numbers run per terminal.
    let (status, second) = node.sale(&bread_and_tee(T1)).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["receipt"], "vienna-01-t1-000002");
    assert_eq!(second["cart"]["total"], "16.97");
    assert_eq!(second["cart"]["change"], "0.00");
    let (status, other) = node.sale(&bread_and_tee(T2)).await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    assert_eq!(other["receipt"], "vienna-01-t2-000001");
    assert_eq!(other["seq"], 2);
    assert_eq!(node.assert_chain_intact().await, 5);
}

#[tokio::test]
async fn sale_request_carrying_its_own_totals_is_refused() {
    // The server computes every amount; a till cannot smuggle in a total.
    let node = TestNode::vienna().await;
    let mut body = bread_and_tee(T1);
    body["total"] = json!("0.01");
    let response = node.sale(&body).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "malformed_json", None);
    assert!(response.1["message"].as_str().unwrap().contains("total"));
    assert_eq!(node.total_events().await, 0);
}

#[tokio::test]
async fn receipt_numbers_continue_after_a_restart() {
    let node = TestNode::vienna().await;
    let (status, _) = node.sale(&bread_and_tee(T1)).await;
    assert_eq!(status, StatusCode::CREATED);
    let app = store::App::build(
        &store::Settings {
            data_dir: node.dir.path().to_path_buf(),
            listen: "127.0.0.1:0".parse().unwrap(),
            sync: None,
        },
        Arc::new(store::clock::SystemClock),
    )
    .await
    .unwrap();
    let router = store::api::router(app.node());
    let body = serde_json::to_vec(&bread_and_tee(T1)).unwrap();
    // A restarted node has signed everyone out.
    let response = send(
        router.clone(),
        node.signed(
            post_request("/v1/sales", Some("after"), body.clone()),
            Some(T1),
        ),
    )
    .await;
    assert_error(
        &response,
        StatusCode::UNAUTHORIZED,
        "invalid_session",
        Some("Authorization"),
    );
    let signed_in = serde_json::to_vec(&json!({"terminal": T1, "staff": "maria", "pin": "3333"}));
    let (status, session) = send(
        router.clone(),
        post_request("/v1/sign-in", None, signed_in.unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let mut request = post_request("/v1/sales", Some("after"), body);
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", session["session"].as_str().unwrap())
            .parse()
            .unwrap(),
    );
    let (status, second) = send(router, request).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["receipt"], "vienna-01-t1-000002");
    assert_eq!(second["seq"], 3);
    assert_eq!(node.assert_chain_intact().await, 4);
}

// --- Stock -------------------------------------------------------------------------------------

#[tokio::test]
async fn stock_goes_negative_after_a_sale_then_follows_adjustments_and_counts() {
    let node = TestNode::vienna().await;
    assert_eq!(node.on_hand(BREAD).await, "0");
    let (status, body) = node
        .sale(&one_line_sale(json!({"code": BREAD_GTIN, "quantity": "3"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(node.on_hand(BREAD).await, "-3");

    let (status, body) = node
        .write(
            "/v1/stock/adjustments",
            &json!({"terminal": T1, "sku": BREAD, "delta": "12", "reason": "received", "note": "delivery"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["kind"], "StockAdjusted");
    assert_eq!(body["delta"], "12");
    assert_eq!(body["reason"], "received");
    assert_eq!(node.on_hand(BREAD).await, "9");

    let (status, body) = node
        .write(
            "/v1/stock/counts",
            &json!({"terminal": T1, "sku": BREAD, "counted": "5"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["kind"], "StockCounted");
    assert_eq!(body["counted"], "5");
    assert_eq!(node.on_hand(BREAD).await, "5");

    // The item view shows the same figure.
    let (status, item) = node.get(&format!("/v1/items/{BREAD_GTIN}")).await;
    assert_eq!(status, StatusCode::OK, "{item}");
    assert_eq!(item["on_hand"], "5");
    assert_eq!(node.last_seq(T1).await, 3);

    // Weighed goods move by their weight.
    let (status, body) = node
        .sale(&one_line_sale(json!({"code": BANANA_LABEL})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(node.on_hand("GRO-FRU-0001").await, "-1.25");
    // Four events and each terminal's ShiftOpened.
    assert_eq!(node.assert_chain_intact().await, 6);
}

#[tokio::test]
async fn adjustment_with_the_wrong_sign_for_its_reason_is_refused() {
    let node = TestNode::vienna().await;
    for (delta, reason) in [
        ("-12", "received"),
        ("0", "received"),
        ("2", "damaged"),
        ("1", "shrink"),
        ("0", "correction"),
    ] {
        let response = node
            .write(
                "/v1/stock/adjustments",
                &json!({"terminal": T1, "sku": BREAD, "delta": delta, "reason": reason}),
            )
            .await;
        assert_error(
            &response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("delta"),
        );
    }
    let response = node
        .write(
            "/v1/stock/adjustments",
            &json!({"terminal": T1, "sku": BREAD, "delta": "1", "reason": "gift"}),
        )
        .await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("reason"),
    );
    let response = node
        .write(
            "/v1/stock/adjustments",
            &json!({"terminal": T1, "sku": "NO-SUCH-SKU", "delta": "1", "reason": "received"}),
        )
        .await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_item",
        Some("sku"),
    );
    let response = node
        .write(
            "/v1/stock/counts",
            &json!({"terminal": T1, "sku": BREAD, "counted": "-1"}),
        )
        .await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("counted"),
    );
    assert_eq!(node.total_events().await, 0);
    assert_eq!(node.on_hand(BREAD).await, "0");
}

// --- Idempotency -------------------------------------------------------------------------------

#[tokio::test]
async fn same_key_and_body_twice_answers_identically_and_writes_once() {
    let node = TestNode::vienna().await;
    let body = bread_and_tee(T1);
    let first = node.post("/v1/sales", Some("till-1-sale-1"), &body).await;
    let second = node.post("/v1/sales", Some("till-1-sale-1"), &body).await;
    assert_eq!(first.0, StatusCode::CREATED, "{}", first.1);
    assert_eq!(first, second);
    assert_eq!(node.last_seq(T1).await, 1);
    assert_eq!(node.journal(T1).await.len(), 1);
    assert_eq!(node.on_hand(BREAD).await, "-2");

    // Other writes replay the same way.
    let adjust = json!({"terminal": T1, "sku": BREAD, "delta": "12", "reason": "received"});
    let a = node
        .post("/v1/stock/adjustments", Some("adj-1"), &adjust)
        .await;
    let b = node
        .post("/v1/stock/adjustments", Some("adj-1"), &adjust)
        .await;
    assert_eq!(a.0, StatusCode::CREATED, "{}", a.1);
    assert_eq!(a, b);
    assert_eq!(node.on_hand(BREAD).await, "10");
    let void = json!({"terminal": T2, "reason": "wrong item"});
    let (status, _) = node.sale(&bread_and_tee(T2)).await;
    assert_eq!(status, StatusCode::CREATED);
    let a = node
        .post("/v1/sales/void-last", Some("void-1"), &void)
        .await;
    let b = node
        .post("/v1/sales/void-last", Some("void-1"), &void)
        .await;
    assert_eq!(a.0, StatusCode::CREATED, "{}", a.1);
    assert_eq!(a, b);
    assert_eq!(node.last_seq(T1).await, 2);
    assert_eq!(node.last_seq(T2).await, 2);
    node.assert_chain_intact().await;
}

#[tokio::test]
async fn same_key_with_another_body_is_a_conflict() {
    let node = TestNode::vienna().await;
    let (status, _) = node
        .post("/v1/sales", Some("reused"), &bread_and_tee(T1))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut other = bread_and_tee(T1);
    other["lines"][0]["quantity"] = json!("1");
    other["tenders"] = cash("20.00");
    let response = node.post("/v1/sales", Some("reused"), &other).await;
    assert_error(
        &response,
        StatusCode::CONFLICT,
        "idempotency_key_reused",
        Some("Idempotency-Key"),
    );
    // The same key on another endpoint is another request too.
    let response = node
        .post(
            "/v1/stock/counts",
            Some("reused"),
            &json!({"terminal": T1, "sku": BREAD, "counted": "5"}),
        )
        .await;
    assert_error(
        &response,
        StatusCode::CONFLICT,
        "idempotency_key_reused",
        Some("Idempotency-Key"),
    );
    assert_eq!(node.last_seq(T1).await, 1);
    assert_eq!(node.on_hand(BREAD).await, "-2");
    node.assert_chain_intact().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_requests_with_one_key_write_one_event() {
    let node = TestNode::vienna().await;
    let body = serde_json::to_vec(&bread_and_tee(T1)).unwrap();
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let router = node.router.clone();
            let request = node.signed(
                post_request("/v1/sales", Some("burst"), body.clone()),
                Some(T1),
            );
            tokio::spawn(async move { send(router, request).await })
        })
        .collect();
    let mut responses = Vec::new();
    for handle in handles {
        responses.push(handle.await.unwrap());
    }
    assert_eq!(responses.len(), 20);
    assert_eq!(responses[0].0, StatusCode::CREATED, "{}", responses[0].1);
    assert_eq!(responses[0].1["receipt"], "vienna-01-t1-000001");
    for response in &responses {
        assert_eq!(response, &responses[0]);
    }
    assert_eq!(node.last_seq(T1).await, 1);
    assert_eq!(node.journal(T1).await.len(), 1);
    assert_eq!(node.on_hand(BREAD).await, "-2");
    node.assert_chain_intact().await;
}

#[tokio::test]
async fn write_without_idempotency_key_is_refused() {
    let node = TestNode::vienna().await;
    let writes = [
        ("/v1/sales", bread_and_tee(T1)),
        (
            "/v1/returns",
            json!({"terminal": T1, "lines": [{"code": BREAD, "quantity": "1"}], "reason": "x"}),
        ),
        (
            "/v1/sales/void-last",
            json!({"terminal": T1, "reason": "x"}),
        ),
        (
            "/v1/stock/adjustments",
            json!({"terminal": T1, "sku": BREAD, "delta": "1", "reason": "received"}),
        ),
        (
            "/v1/stock/counts",
            json!({"terminal": T1, "sku": BREAD, "counted": "1"}),
        ),
    ];
    for (path, body) in &writes {
        let response = node.post(path, None, body).await;
        assert_error(
            &response,
            StatusCode::BAD_REQUEST,
            "idempotency_key_required",
            Some("Idempotency-Key"),
        );
    }
    // An empty key or one with spaces or over 128 characters is no key either.
    for key in ["", "has space", &"k".repeat(129)] {
        let response = node.post("/v1/sales", Some(key), &bread_and_tee(T1)).await;
        assert_error(
            &response,
            StatusCode::BAD_REQUEST,
            "idempotency_key_required",
            Some("Idempotency-Key"),
        );
    }
    assert_eq!(node.total_events().await, 0);
    assert_eq!(node.on_hand(BREAD).await, "0");
}

// --- Returns -----------------------------------------------------------------------------------

/// A web return HQ routed to this node, written into its tables the way a reference update
/// keeps it (HQ's side and the real update are `hq/tests/api.rs` and `kassa/tests/web_shop.rs`).
async fn route_web_return(
    node: &TestNode,
    number: &str,
    receipt: &str,
    receive_at: &str,
    milli: i64,
) {
    use sqlx::Connection;
    let entity = protocol::sync::WebReturnEntity {
        id: format!("id-{number}"),
        number: number.into(),
        sale_receipt: receipt.into(),
        sale_store: "vienna-01".into(),
        receive_at: receive_at.into(),
        status: "open".into(),
        currency: "EUR".into(),
        refund_minor: 349,
        lines: vec![protocol::sync::WebReturnLine {
            line: 0,
            sku: BREAD.into(),
            name: "Bauernbrot".into(),
            quantity: milli,
        }],
        created_ms: 1,
    };
    let url = format!("sqlite://{}", store::db::db_path(node.dir.path()).display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO web_returns (id, number, sale_receipt, receive_at, status, payload) VALUES ($1, $2, $3, $4, 'open', $5)")
        .bind(&entity.id)
        .bind(number)
        .bind(receipt)
        .bind(receive_at)
        .bind(serde_json::to_string(&entity).unwrap())
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO web_return_lines (web_return, sale_receipt, line, milli) VALUES ($1, $2, 0, $3)")
        .bind(&entity.id)
        .bind(receipt)
        .bind(milli)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// A loaf of a sale sent back through the web shop is returned: the till may take back only
/// the other, refunded at its share; the sale can no longer be voided; the parcel is received
/// once, only at the store it was sent to.
#[tokio::test]
async fn a_sale_returned_through_the_web_shop_leaves_the_till_only_what_is_left() {
    let node = TestNode::vienna().await;
    let (status, sale) = node.sale(&bread_and_tee(T1)).await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    let receipt = sale["receipt"].as_str().unwrap().to_owned();
    route_web_return(&node, "R-000001", &receipt, "vienna-01", 1000).await;
    route_web_return(&node, "R-000002", "elsewhere-t1-000001", "graz-01", 1000).await;

    let (status, body) = node
        .post(
            "/v1/sales/void-last",
            Some("void-after-web"),
            &json!({"terminal": T1, "reason": "x"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("sale_partly_returned")
        ),
        "{body}"
    );
    let before = node.total_events().await;
    let (status, body) = node
        .write(
            "/v1/returns",
            &json!({"terminal": T1, "receipt": receipt, "lines": [{"line": 0, "quantity": "2"}]}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_returned")),
        "{body}"
    );
    assert_eq!(node.total_events().await, before);
    let (status, body) = node
        .write(
            "/v1/returns",
            &json!({"terminal": T1, "receipt": receipt, "lines": [{"line": 0, "quantity": "1"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["refund"], "3.49");

    // The parcel: listed, received once into stock; another store's is not this one's.
    let (status, listed) = node.get("/v1/web-returns").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let numbers: Vec<&str> = listed["returns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["R-000001"]);
    let stock = node.on_hand(BREAD).await;
    assert_eq!(stock, "-1");
    let (status, body) = node
        .write("/v1/web-returns/R-000001/receive", &json!({"terminal": T1}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (&body["kind"], &body["sale"]),
        (&json!("ReturnReceived"), &json!(receipt))
    );
    assert_eq!(node.on_hand(BREAD).await, "0");
    for (path, code, want) in [
        (
            "/v1/web-returns/R-000001/receive",
            "already_received",
            StatusCode::CONFLICT,
        ),
        (
            "/v1/web-returns/R-000002/receive",
            "wrong_store",
            StatusCode::CONFLICT,
        ),
        (
            "/v1/web-returns/R-999999/receive",
            "return_not_found",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (status, body) = node.write(path, &json!({"terminal": T1})).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (want, Some(code)),
            "{path}: {body}"
        );
    }
    let (status, body) = node.get("/v1/web-returns?show=everything").await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("show")),
        "{body}"
    );
    let (_, all) = node.get("/v1/web-returns?show=all").await;
    assert_eq!(all["returns"].as_array().unwrap().len(), 2, "{all}");
    node.assert_chain_intact().await;
}

#[tokio::test]
async fn returns_with_receipt_never_exceed_what_was_sold_and_refund_what_was_paid() {
    let node = TestNode::vienna().await;
    let (status, sale) = node.sale(&bread_and_tee(T1)).await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    let receipt = sale["receipt"].as_str().unwrap().to_owned();
    let paid = sale["cart"]["due"].as_str().unwrap().to_owned();
    assert_eq!(paid, "16.97");
    assert_eq!(node.on_hand(BREAD).await, "-2");

    // One of the two loaves.
    let (status, first) = node
        .write(
            "/v1/returns",
            &json!({"terminal": T1, "receipt": receipt, "lines": [{"line": 0, "quantity": "1"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["kind"], "ReturnCompleted");
    assert_eq!(first["receipt"], "vienna-01-t1-000002");
    assert_eq!(first["original_receipt"], receipt);
    assert_eq!(first["refund"], "3.49");
    assert_eq!(first["total"], "3.49");
    assert_eq!(first["lines"][0]["sale_line"], 0);
    assert_eq!(first["lines"][0]["quantity"], "1");
    assert_eq!(
        first["tenders"],
        json!([{"kind": "cash", "amount": "3.49", "reference": null}])
    );
    assert_eq!(node.on_hand(BREAD).await, "-1");

    // The rest: the other loaf and the T-shirt, refunded to the card.
    let (status, second) = node
        .write(
            "/v1/returns",
            &json!({
                "terminal": T2,
                "receipt": receipt,
                "lines": [{"line": 0, "quantity": "1"}, {"line": 1, "quantity": "1"}],
                "refund_tender": "card",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["receipt"], "vienna-01-t2-000001");
    assert_eq!(second["refund"], "13.48");
    assert_eq!(second["tenders"][0]["kind"], "card");
    assert_eq!(node.on_hand(BREAD).await, "0");
    assert_eq!(node.on_hand(TEE).await, "0");

    let refunded: i64 = [&first, &second]
        .iter()
        .map(|r| minor(r["refund"].as_str().unwrap()))
        .sum();
    assert_eq!(refunded, minor(&paid));

    // Nothing is left, not even one more loaf.
    let before = node.total_events().await;
    let response = node
        .write(
            "/v1/returns",
            &json!({"terminal": T1, "receipt": receipt, "lines": [{"line": 0, "quantity": "1"}]}),
        )
        .await;
    assert_eq!(response.0, StatusCode::CONFLICT, "{}", response.1);
    assert_eq!(response.1["code"], "already_returned");
    // A line the sale does not have.
    let response = node
        .write(
            "/v1/returns",
            &json!({"terminal": T1, "receipt": receipt, "lines": [{"line": 2, "quantity": "1"}]}),
        )
        .await;
    assert_eq!(
        response.0,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.1
    );
    assert_eq!(node.total_events().await, before);
    assert_eq!(node.on_hand(BREAD).await, "0");
    node.assert_chain_intact().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_sent_twice_at_once_is_recorded_and_paid_once() {
    let node = TestNode::vienna().await;
    let mut sale = bread_and_tee(T1);
    sale["tenders"] = cash("20.00");
    let (status, sale) = node.sale(&sale).await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    let whole = json!({"terminal": T1, "receipt": sale["receipt"],
                       "lines": [{"line": 0, "quantity": "2"}, {"line": 1, "quantity": "1"}]});
    let before = node.last_seq(T1).await;
    // A double click that sends the same return twice, each with its own key, both in flight
    // at once: exactly one is recorded and paid, the other is a conflict with a stable code.
    let (a, b) = tokio::join!(
        node.write("/v1/returns", &whole),
        node.write("/v1/returns", &whole)
    );
    let mut answers = [a, b];
    answers.sort_by_key(|(status, _)| *status);
    let [(created, ret), (conflict, e)] = answers;
    assert_eq!(created, StatusCode::CREATED, "{ret}");
    assert_eq!(ret["refund"], "16.97");
    assert_eq!(conflict, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["code"], "already_returned");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    assert_eq!(node.last_seq(T1).await, before + 1);
    let returns = node
        .journal(T1)
        .await
        .iter()
        .filter(|e| e["event"]["body"].get("ReturnCompleted").is_some())
        .count();
    assert_eq!(returns, 1);
    // The drawer gave the refund back once.
    let (_, x) = node.get(&format!("/v1/shifts/report?terminal={T1}")).await;
    assert_eq!(x["returns"], 1);
    assert_eq!(x["refunds_total"], "16.97");

    // The same request with the same key, twice at once (a retry in flight): one answer, one
    // return.
    let (status, again) = node.sale(&bread_and_tee(T1)).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    let body = json!({"terminal": T1, "receipt": again["receipt"], "lines": [{"line": 1, "quantity": "1"}]});
    let (a, b) = tokio::join!(
        node.post("/v1/returns", Some("one-key"), &body),
        node.post("/v1/returns", Some("one-key"), &body)
    );
    assert_eq!(a.0, StatusCode::CREATED, "{}", a.1);
    assert_eq!(a, b);
    node.assert_chain_intact().await;
}

#[tokio::test]
async fn one_return_of_more_than_sold_is_refused_even_when_split_over_lines() {
    let node = TestNode::vienna().await;
    let (_, sale) = node.sale(&bread_and_tee(T1)).await;
    let receipt = sale["receipt"].as_str().unwrap();
    let response = node
        .write(
            "/v1/returns",
            &json!({"terminal": T1, "receipt": receipt,
                    "lines": [{"line": 0, "quantity": "2"}, {"line": 0, "quantity": "1"}]}),
        )
        .await;
    assert_eq!(
        response.0,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.1
    );
    assert_eq!(response.1["code"], "return_exceeds_sale");
    assert_eq!(node.last_seq(T1).await, 1);
    assert_eq!(node.on_hand(BREAD).await, "-2");
}

/// Minor units of a decimal string with two decimals (`"16.97"`, `"-3.49"`).
fn minor(amount: &str) -> i64 {
    let (sign, digits) = amount
        .strip_prefix('-')
        .map_or((1, amount), |rest| (-1, rest));
    let (units, cents) = digits.split_once('.').unwrap();
    sign * (units.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap())
}

#[tokio::test]
async fn returns_in_steps_refund_exactly_what_was_paid_including_cash_rounding() {
    // Zürich rounds cash to 0.05: 3 × 3.65 + 1.250 kg × 2.10 (2.625 → 2.63) = 13.58, due 13.60.
    let node = TestNode::start("zurich-01").await;
    let t1 = "zurich-01-t1";
    let (status, sale) = node
        .sale(&json!({
            "terminal": t1,
            "lines": [{"code": BREAD_GTIN, "quantity": "3"}, {"code": BANANA_LABEL}],
            "tenders": cash("20.00"),
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    assert_eq!(sale["cart"]["currency"], "CHF");
    assert_eq!(sale["cart"]["total"], "13.58");
    assert_eq!(sale["cart"]["cash_rounding"], "0.02");
    assert_eq!(sale["cart"]["due"], "13.60");
    assert_eq!(sale["cart"]["change"], "6.40");
    let receipt = sale["receipt"].as_str().unwrap();

    // 3.65 plus its share of the rounding: 0.02 × 3.65 / 13.58 = 0.0054 → 0.01, so 3.66 is
    // owed; coins make 3.65, and the 0.01 held back goes with the next refund.
    let (status, first) = node
        .write(
            "/v1/returns",
            &json!({"terminal": t1, "receipt": receipt, "lines": [{"line": 0, "quantity": "1"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["total"], "3.65");
    assert_eq!(first["cash_rounding"], "0.00");
    assert_eq!(first["refund"], "3.65");
    let (status, second) = node
        .write(
            "/v1/returns",
            &json!({"terminal": t1, "receipt": receipt,
                    "lines": [{"line": 0, "quantity": "2"}, {"line": 1, "quantity": "1.25"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    // 9.93 plus 0.01 of the sale's rounding plus the 0.01 held back: 9.95, which coins make.
    assert_eq!(second["total"], "9.93");
    assert_eq!(second["cash_rounding"], "0.02");
    assert_eq!(second["refund"], "9.95");
    assert_eq!(second["tenders"][0]["amount"], "9.95");
    assert_eq!(
        minor(first["refund"].as_str().unwrap()) + minor(second["refund"].as_str().unwrap()),
        minor("13.60")
    );
    assert_eq!(node.on_hand("GRO-FRU-0001").await, "0");
    node.assert_chain_intact().await;
}

#[tokio::test]
async fn return_without_receipt_needs_a_reason() {
    let node = TestNode::vienna().await;
    for reason in [None, Some(""), Some("   ")] {
        let mut body = json!({"terminal": T1, "lines": [{"code": BREAD_GTIN, "quantity": "1"}]});
        if let Some(reason) = reason {
            body["reason"] = json!(reason);
        }
        let response = node.write("/v1/returns", &body).await;
        assert_error(
            &response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason_required",
            Some("reason"),
        );
    }
    assert_eq!(node.total_events().await, 0);
    assert_eq!(node.on_hand(BREAD).await, "0");

    let (status, body) = node
        .write(
            "/v1/returns",
            &json!({"terminal": T1, "lines": [{"code": BREAD_GTIN, "quantity": "1"}],
                    "reason": "gift, no receipt", "refund_tender": "store-credit"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["kind"], "ReturnCompleted");
    assert_eq!(body["receipt"], "vienna-01-t1-000001");
    assert_eq!(body["original_receipt"], Value::Null);
    assert_eq!(body["reason"], "gift, no receipt");
    assert_eq!(body["refund"], "3.49");
    assert_eq!(body["tenders"][0]["kind"], "store-credit");
    assert_eq!(node.on_hand(BREAD).await, "1");
    assert_eq!(node.last_seq(T1).await, 1);
    node.assert_chain_intact().await;
}

#[tokio::test]
async fn a_cash_refund_without_a_receipt_is_paid_in_coins_never_above_the_price() {
    // Zürich: 1.250 kg of bananas at 2.10 is 2.63; no coin makes it, and 2.65 would be more than
    // the goods cost, so 2.60 in cash, with the 0.03 as the return's cash rounding line.
    let node = TestNode::start("zurich-01").await;
    let t1 = "zurich-01-t1";
    let (status, body) = node
        .write(
            "/v1/returns",
            &json!({"terminal": t1, "lines": [{"code": BANANA_LABEL, "quantity": "1"}],
                    "reason": "no receipt"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["total"], "2.63");
    assert_eq!(body["cash_rounding"], "-0.03");
    assert_eq!(body["refund"], "2.60");
    assert_eq!(body["tenders"][0]["kind"], "cash");
    assert_eq!(body["tenders"][0]["amount"], "2.60");
    // To store credit the same return is exact.
    let (status, body) = node
        .write(
            "/v1/returns",
            &json!({"terminal": t1, "lines": [{"code": BANANA_LABEL, "quantity": "1"}],
                    "reason": "no receipt", "refund_tender": "store-credit"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (&body["cash_rounding"], &body["refund"]),
        (&json!("0.00"), &json!("2.63"))
    );
    node.assert_chain_intact().await;
}

#[tokio::test]
async fn return_of_an_unknown_receipt_is_not_found() {
    let node = TestNode::vienna().await;
    let response = node
        .write(
            "/v1/returns",
            &json!({"terminal": T1, "receipt": "vienna-01-t1-000042",
                    "lines": [{"line": 0, "quantity": "1"}]}),
        )
        .await;
    assert_error(&response, StatusCode::NOT_FOUND, "unknown_receipt", None);
    assert_eq!(node.total_events().await, 0);
}

// --- Void --------------------------------------------------------------------------------------

#[tokio::test]
async fn void_last_voids_the_last_sale_once() {
    let node = TestNode::vienna().await;
    let (status, sale) = node.sale(&bread_and_tee(T1)).await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    let receipt = sale["receipt"].as_str().unwrap();
    assert_eq!(node.on_hand(BREAD).await, "-2");

    let response = node
        .write(
            "/v1/sales/void-last",
            &json!({"terminal": T1, "reason": "  "}),
        )
        .await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reason_required",
        Some("reason"),
    );
    assert_eq!(node.last_seq(T1).await, 1);

    let (status, void) = node
        .write(
            "/v1/sales/void-last",
            &json!({"terminal": T1, "reason": "customer changed mind"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{void}");
    assert_eq!(void["kind"], "SaleVoided");
    assert_eq!(void["voided_receipt"], receipt);
    assert_eq!(void["refund"], "16.97");
    assert_eq!(void["seq"], 3);
    assert_eq!(node.on_hand(BREAD).await, "0");
    assert_eq!(node.on_hand(TEE).await, "0");

    let response = node
        .write(
            "/v1/sales/void-last",
            &json!({"terminal": T1, "reason": "again"}),
        )
        .await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "nothing_to_void",
        Some("terminal"),
    );
    let response = node
        .write(
            "/v1/returns",
            &json!({"terminal": T1, "receipt": receipt, "lines": [{"line": 0, "quantity": "1"}]}),
        )
        .await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "sale_voided",
        Some("receipt"),
    );
    // A terminal without sales has nothing to void.
    let response = node
        .write(
            "/v1/sales/void-last",
            &json!({"terminal": T2, "reason": "oops"}),
        )
        .await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "nothing_to_void",
        Some("terminal"),
    );
    assert_eq!(node.last_seq(T1).await, 2);
    assert_eq!(node.last_seq(T2).await, 0);
    assert_eq!(node.on_hand(BREAD).await, "0");
    node.assert_chain_intact().await;
}

/// Minor units of an amount the API shows as a JSON string.
fn minor_of(amount: &Value) -> i64 {
    minor(amount.as_str().unwrap())
}

#[tokio::test]
async fn the_x_report_of_a_shift_with_a_void_and_a_return_adds_up() {
    let node = TestNode::vienna().await;
    let (status, kept) = node.sale(&bread_and_tee(T1)).await;
    assert_eq!(status, StatusCode::CREATED, "{kept}");
    let (status, ret) = node
        .write(
            "/v1/returns",
            &json!({"terminal": T1, "receipt": kept["receipt"], "lines": [{"line": 1, "quantity": "1"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ret}");
    let mut voided = bread_and_tee(T1);
    voided["lines"] = json!([{"code": BREAD_GTIN, "quantity": "3"}]);
    voided["tenders"] = cash("20.00");
    let (status, voided) = node.sale(&voided).await;
    assert_eq!(status, StatusCode::CREATED, "{voided}");
    let (status, void) = node
        .write(
            "/v1/sales/void-last",
            &json!({"terminal": T1, "reason": "wrong customer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{void}");

    let (status, x) = node.get(&format!("/v1/shifts/report?terminal={T1}")).await;
    assert_eq!(status, StatusCode::OK, "{x}");
    assert_eq!(x["sales"], 2);
    assert_eq!(x["voids"], 1);
    assert_eq!(x["returns"], 1);
    assert_eq!(
        minor_of(&x["sales_total"]),
        minor_of(&kept["cart"]["due"]) + minor_of(&voided["cart"]["due"])
    );
    assert_eq!(x["voids_total"], voided["cart"]["due"]);
    assert_eq!(x["refunds_total"], ret["refund"]);
    // Net sales are gross less voids less returns, and split into goods, tax and rounding.
    let net = minor_of(&x["net_sales"]);
    assert_eq!(
        net,
        minor_of(&x["sales_total"]) - minor_of(&x["voids_total"]) - minor_of(&x["refunds_total"])
    );
    assert_eq!(
        net,
        minor_of(&x["goods_net"]) + minor_of(&x["tax_total"]) + minor_of(&x["rounding_total"])
    );
    // The tax total is the sum of the table, and the voided sale left no trace in either: what
    // is left is the kept sale's tax less the returned T-shirt's.
    let table: i64 = x["taxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| minor_of(&t["tax"]))
        .sum();
    assert_eq!(minor_of(&x["tax_total"]), table, "{x}");
    let returned_tax = minor_of(&ret["lines"][0]["tax"]);
    assert!(returned_tax > 0, "{ret}");
    assert_eq!(
        minor_of(&x["tax_total"]),
        minor_of(&kept["cart"]["tax_total"]) - returned_tax,
        "{x}"
    );
    // The tenders given back match what was paid: the voided sale's cash, the return's cash.
    let cash_row = x["tenders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "cash")
        .unwrap();
    assert_eq!(
        minor_of(&cash_row["given_back"]),
        minor_of(&voided["cart"]["due"]) + minor_of(&ret["refund"])
    );
    // The printed report (manager, de-AT) shows the same net.
    let text = x["text"].as_str().unwrap();
    let net_text = format!("{},{:02}", net / 100, net % 100);
    assert!(
        text.contains("UMSATZ") && text.contains(&net_text),
        "{text}"
    );
}

#[tokio::test]
async fn void_last_refuses_a_sale_that_was_partly_returned_at_another_terminal() {
    // Sale on t1, one loaf returned at t2: t1's last event is still the sale. Voiding it now
    // would refund the whole 16.97 and put both loaves back although one was already refunded
    // and restocked.
    let node = TestNode::vienna().await;
    let (_, sale) = node.sale(&bread_and_tee(T1)).await;
    let receipt = sale["receipt"].as_str().unwrap();
    let (status, ret) = node
        .write(
            "/v1/returns",
            &json!({"terminal": T2, "receipt": receipt, "lines": [{"line": 0, "quantity": "1"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ret}");
    assert_eq!(node.on_hand(BREAD).await, "-1");

    let response = node
        .write(
            "/v1/sales/void-last",
            &json!({"terminal": T1, "reason": "wrong customer"}),
        )
        .await;
    assert_eq!(
        response.0,
        StatusCode::UNPROCESSABLE_ENTITY,
        "voiding a partly returned sale must be refused, got {}",
        response.1
    );
    assert!(response.1["field"].is_string(), "{}", response.1);
    assert_eq!(node.last_seq(T1).await, 1);
    assert_eq!(node.on_hand(BREAD).await, "-1");
}

// --- Bad input: 4xx naming the field, nothing written ------------------------------------------

/// Posts a sale that must be refused and checks that nothing was written.
async fn refused_sale(body: &Value) -> (StatusCode, Value) {
    let node = TestNode::vienna().await;
    let response = node.sale(body).await;
    assert!(
        response.0.is_client_error(),
        "{} {}",
        response.0,
        response.1
    );
    assert_eq!(node.total_events().await, 0, "{}", response.1);
    assert!(node.journal(T1).await.is_empty());
    assert_eq!(node.on_hand(BREAD).await, "0");
    node.assert_chain_intact().await;
    response
}

#[tokio::test]
async fn unknown_sku_is_refused_naming_the_line() {
    let response = refused_sale(&one_line_sale(json!({"code": "GRO-XXX-9999"}))).await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_item",
        Some("lines[0].code"),
    );
    assert!(
        response.1["message"]
            .as_str()
            .unwrap()
            .contains("GRO-XXX-9999")
    );
    let response = refused_sale(&json!({
        "terminal": T1,
        "lines": [{"code": BREAD_GTIN}, {"code": "GRO-XXX-9999"}],
        "tenders": cash("100.00"),
    }))
    .await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_item",
        Some("lines[1].code"),
    );
}

#[tokio::test]
async fn gtin_with_a_bad_check_digit_is_refused() {
    let response = refused_sale(&one_line_sale(json!({"code": "9003909062416"}))).await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_code",
        Some("lines[0].code"),
    );
    assert!(
        response.1["message"]
            .as_str()
            .unwrap()
            .contains("check digit"),
        "{}",
        response.1
    );
    // A stable reason and the digits, for the till to say it in its own language.
    assert_eq!(response.1["reason"], "check_digit", "{}", response.1);
    assert_eq!(response.1["expected"], 5, "{}", response.1);
    assert_eq!(response.1["found"], 6, "{}", response.1);
}

#[tokio::test]
async fn spreadsheet_scientific_notation_barcode_is_refused() {
    let response = refused_sale(&one_line_sale(json!({"code": "9.00391E+12"}))).await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_code",
        Some("lines[0].code"),
    );
    assert!(
        response.1["message"]
            .as_str()
            .unwrap()
            .contains("scientific notation"),
        "{}",
        response.1
    );
}

async fn refused_quantity(quantity: &str) {
    let response = refused_sale(&one_line_sale(
        json!({"code": BREAD_GTIN, "quantity": quantity}),
    ))
    .await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("lines[0].quantity"),
    );
}

#[tokio::test]
async fn quantity_zero_is_refused() {
    refused_quantity("0").await;
}

#[tokio::test]
async fn quantity_negative_is_refused() {
    refused_quantity("-1").await;
}

#[tokio::test]
async fn fractional_quantity_of_an_item_sold_each_is_refused() {
    refused_quantity("1.5").await;
}

#[tokio::test]
async fn tenders_short_of_the_total_are_refused() {
    let mut body = bread_and_tee(T1);
    body["tenders"] = json!([
        {"kind": "cash", "amount": "10.00"},
        {"kind": "card", "amount": "6.96"},
    ]);
    let response = refused_sale(&body).await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "tenders_short",
        Some("tenders"),
    );
    body["tenders"] = json!([]);
    let response = refused_sale(&body).await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "tenders_short",
        Some("tenders"),
    );
}

#[tokio::test]
async fn card_over_tender_is_refused() {
    let mut body = bread_and_tee(T1);
    body["tenders"] = card("20.00");
    let response = refused_sale(&body).await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "non_cash_over_tender",
        Some("tenders"),
    );
}

#[tokio::test]
async fn tender_amount_with_three_decimals_is_refused() {
    let mut body = bread_and_tee(T1);
    // A tenth of a cent cannot be handed over. (`16.970` is accepted: it is exactly 16.97.)
    body["tenders"] = cash("16.975");
    let response = refused_sale(&body).await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("tenders[0].amount"),
    );
}

#[tokio::test]
async fn tender_amount_zero_is_refused() {
    let mut body = bread_and_tee(T1);
    body["tenders"] = json!([
        {"kind": "cash", "amount": "20.00"},
        {"kind": "card", "amount": "0.00"},
    ]);
    let response = refused_sale(&body).await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_sale",
        Some("tenders[1].amount"),
    );
}

#[tokio::test]
async fn unknown_tender_kind_is_refused() {
    let mut body = bread_and_tee(T1);
    body["tenders"] = json!([{"kind": "cheque", "amount": "16.97"}]);
    let response = refused_sale(&body).await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("tenders[0].kind"),
    );
}

#[tokio::test]
async fn online_only_item_is_not_sold_in_store() {
    let response = refused_sale(&one_line_sale(json!({"code": ONLINE_ONLY_GTIN}))).await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not_sold_in_store",
        Some("lines[0].code"),
    );
    assert!(
        response.1["message"]
            .as_str()
            .unwrap()
            .contains("HOU-GEN-0005")
    );
}

#[tokio::test]
async fn line_discount_larger_than_the_line_is_refused() {
    let response = refused_sale(&one_line_sale(
        json!({"code": TEE, "discount": {"amount": "10.00"}}),
    ))
    .await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_sale",
        Some("lines[0].discount"),
    );
}

#[tokio::test]
async fn sale_without_lines_is_refused() {
    let response =
        refused_sale(&json!({"terminal": T1, "lines": [], "tenders": cash("1.00")})).await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_sale",
        Some("lines"),
    );
}

#[tokio::test]
async fn unknown_terminal_is_refused() {
    let response = refused_sale(&bread_and_tee("vienna-01-t9")).await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_terminal",
        Some("terminal"),
    );
    // Another store's terminal is not hosted here either.
    let response = refused_sale(&bread_and_tee("graz-01-t1")).await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_terminal",
        Some("terminal"),
    );
}

#[tokio::test]
async fn malformed_json_is_refused() {
    let node = TestNode::vienna().await;
    let response = node
        .post_raw(
            "/v1/sales",
            Some("bad-json"),
            br#"{"terminal": "vienna-01-t1", "lines": ["#.to_vec(),
        )
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "malformed_json", None);
    // Amounts are strings, never JSON numbers.
    let mut body = bread_and_tee(T1);
    body["tenders"] = json!([{"kind": "cash", "amount": 16.97}]);
    let response = node.write("/v1/sales", &body).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "malformed_json", None);
    // The same key can be used again once the body is fixed: nothing was recorded for it.
    let (status, sale) = node
        .post("/v1/sales", Some("bad-json"), &bread_and_tee(T1))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    assert_eq!(node.last_seq(T1).await, 1);
}

#[tokio::test]
async fn unknown_json_field_is_refused() {
    let mut body = bread_and_tee(T1);
    body["lines"][0]["colour"] = json!("blue");
    let response = refused_sale(&body).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "malformed_json", None);
    assert!(
        response.1["message"].as_str().unwrap().contains("colour"),
        "{}",
        response.1
    );
}

#[tokio::test]
async fn body_over_256_kib_is_refused() {
    let node = TestNode::vienna().await;
    let mut body = bread_and_tee(T1);
    body["cashier"] = json!("x".repeat(256 * 1024));
    let response = node.write("/v1/sales", &body).await;
    assert_error(
        &response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        None,
    );
    let response = node
        .post_raw("/v1/carts/price", None, vec![b' '; 256 * 1024 + 1])
        .await;
    assert_error(
        &response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        None,
    );
    assert_eq!(node.total_events().await, 0);
    node.assert_chain_intact().await;
}

// --- Reads -------------------------------------------------------------------------------------

#[tokio::test]
async fn pricing_a_cart_writes_nothing_and_matches_the_sale() {
    let node = TestNode::vienna().await;
    let (status, priced) = node
        .post("/v1/carts/price", None, &json!({"lines": mixed_lines()}))
        .await;
    assert_eq!(status, StatusCode::OK, "{priced}");
    assert_mixed_cart(&priced);
    for settled in ["cash_rounding", "due", "tendered", "change"] {
        assert!(priced.get(settled).is_none(), "{priced}");
    }
    assert_eq!(node.total_events().await, 0);
    assert_eq!(node.on_hand(BREAD).await, "0");

    let (status, sale) = node
        .sale(&json!({"terminal": T1, "lines": mixed_lines(), "tenders": cash("27.45")}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    let mut cart = sale["cart"].clone();
    for settled in ["cash_rounding", "due", "tendered", "change"] {
        cart.as_object_mut().unwrap().remove(settled);
    }
    assert_eq!(cart, priced);

    // Pricing refuses what a sale would refuse, with the same field.
    let response = node
        .post(
            "/v1/carts/price",
            None,
            &json!({"lines": [{"code": BREAD_GTIN, "quantity": "1.5"}]}),
        )
        .await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("lines[0].quantity"),
    );
    assert_eq!(node.total_events().await, 1);
}

#[tokio::test]
async fn receipt_lookup_returns_the_sale() {
    let node = TestNode::vienna().await;
    let (status, sale) = node
        .sale(&json!({"terminal": T1, "lines": mixed_lines(), "tenders": cash("30.00")}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    let (status, found) = node.get("/v1/receipts/vienna-01-t1-000001").await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found, sale);
    assert_mixed_cart(&found["cart"]);
    let response = node.get("/v1/receipts/vienna-01-t1-000002").await;
    assert_error(&response, StatusCode::NOT_FOUND, "unknown_receipt", None);
}

#[tokio::test]
async fn journal_lists_events_with_seq_hash_and_signature() {
    let node = TestNode::vienna().await;
    let (_, sale) = node.sale(&bread_and_tee(T1)).await;
    node.write(
        "/v1/stock/adjustments",
        &json!({"terminal": T1, "sku": BREAD, "delta": "12", "reason": "received"}),
    )
    .await;
    node.write(
        "/v1/stock/counts",
        &json!({"terminal": T1, "sku": BREAD, "counted": "5"}),
    )
    .await;
    let events = node.journal(T1).await;
    assert_eq!(events.len(), 3);
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["SaleCompleted", "StockAdjusted", "StockCounted"]);
    let mut hashes = std::collections::BTreeSet::new();
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["seq"], i + 2);
        let hash = event["hash"].as_str().unwrap();
        assert_eq!(hash.len(), 64, "{event}");
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        let signature = event["signature"].as_str().unwrap();
        assert_eq!(signature.len(), 128, "{event}");
        assert!(signature.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(event["id"].is_string());
        assert!(event["event"].is_object(), "{event}");
        hashes.insert(hash.to_owned());
    }
    assert_eq!(hashes.len(), 3);
    assert_eq!(events[0]["id"], sale["event_id"]);

    let (status, page) = node.get(&format!("/v1/journal?terminal={T1}&from=3")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!(page["events"][0]["seq"], 3);
    let (status, page) = node
        .get(&format!("/v1/journal?terminal={T1}&from=1&limit=1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert!(node.journal(T2).await.is_empty());

    let response = node.get("/v1/journal?terminal=vienna-01-t9").await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_terminal",
        Some("terminal"),
    );
    let response = node.get("/v1/journal").await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_query", None);
    node.assert_chain_intact().await;
}

#[tokio::test]
async fn item_lookup_shows_the_embedded_weight_and_the_price_per_kg() {
    let node = TestNode::vienna().await;
    let (status, item) = node.get(&format!("/v1/items/{BANANA_LABEL}")).await;
    assert_eq!(status, StatusCode::OK, "{item}");
    assert_eq!(item["sku"], "GRO-FRU-0001");
    assert_eq!(item["name"], "Bananen lose");
    assert_eq!(item["unit"], "kg");
    assert_eq!(item["price"], "1.99");
    assert_eq!(item["currency"], "EUR");
    assert_eq!(item["tax_category"], "reduced");
    assert_eq!(item["embedded"], json!({"weight_kg": "1.25"}));
    assert_eq!(item["sold_in_store"], true);

    let (status, item) = node.get(&format!("/v1/items/{CHEESE_PRICE_LABEL}")).await;
    assert_eq!(status, StatusCode::OK, "{item}");
    assert_eq!(item["sku"], "GRO-DEL-0001");
    assert_eq!(item["price"], "24.90");
    assert_eq!(item["embedded"], json!({"price": "8.99"}));

    // The same item by PLU, by GTIN and by SKU.
    let (status, item) = node.get("/v1/items/4011").await;
    assert_eq!(status, StatusCode::OK, "{item}");
    assert_eq!(item["sku"], "GRO-FRU-0001");
    assert_eq!(item["embedded"], Value::Null);
    let (_, by_gtin) = node.get(&format!("/v1/items/{BREAD_GTIN}")).await;
    let (_, by_sku) = node.get(&format!("/v1/items/{BREAD}")).await;
    assert_eq!(by_gtin, by_sku);
    assert_eq!(by_gtin["price"], "3.49");

    let (status, item) = node.get(&format!("/v1/items/{ONLINE_ONLY_GTIN}")).await;
    assert_eq!(status, StatusCode::OK, "{item}");
    assert_eq!(item["sold_in_store"], false);

    let response = node.get("/v1/items/GRO-XXX-9999").await;
    assert_error(
        &response,
        StatusCode::NOT_FOUND,
        "unknown_item",
        Some("code"),
    );
    let response = node.get("/v1/items/9003909062416").await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_code",
        Some("code"),
    );
}

#[tokio::test]
async fn status_names_the_store_and_its_terminals() {
    let node = TestNode::vienna().await;
    let (status, body) = node.get("/v1/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["store"], "vienna-01");
    assert_eq!(body["currency"], "EUR");
    assert_eq!(body["reference_version"], 1);
    assert_eq!(
        body["terminals"],
        json!([{"id": T1, "last_seq": 1}, {"id": T2, "last_seq": 1}])
    );
    let response = node.get("/v1/nowhere").await;
    assert_error(&response, StatusCode::NOT_FOUND, "not_found", None);
}

// --- The whole day verifies --------------------------------------------------------------------

#[tokio::test]
async fn ledger_verifies_after_a_busy_day() {
    let node = TestNode::vienna().await;
    let mut expected = 0;
    for terminal in [T1, T2] {
        let (status, sale) = node
            .sale(&json!({"terminal": terminal, "lines": mixed_lines(), "tenders": cash("50.00")}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{sale}");
        let receipt = sale["receipt"].as_str().unwrap().to_owned();
        let (status, ret) = node
            .write(
                "/v1/returns",
                &json!({"terminal": terminal, "receipt": receipt,
                        "lines": [{"line": 1, "quantity": "1.25"}, {"line": 0, "quantity": "1"}]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{ret}");
        let (status, _) = node.sale(&bread_and_tee(terminal)).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = node
            .write(
                "/v1/sales/void-last",
                &json!({"terminal": terminal, "reason": "test"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = node
            .write(
                "/v1/stock/adjustments",
                &json!({"terminal": terminal, "sku": TEE, "delta": "-1", "reason": "damaged"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = node
            .write(
                "/v1/stock/counts",
                &json!({"terminal": terminal, "sku": TEE, "counted": "7"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        // Refused requests in between leave no trace in the chain.
        let response = node
            .sale(&one_line_sale(json!({"code": "9003909062416"})))
            .await;
        assert_eq!(response.0, StatusCode::UNPROCESSABLE_ENTITY);
        expected += 6;
    }
    // And each terminal's ShiftOpened.
    expected += 2;
    assert_eq!(node.on_hand(TEE).await, "7");
    // Each terminal: sold 2 loaves, returned 1; sold 2 more and voided them.
    assert_eq!(node.on_hand(BREAD).await, "-2");
    assert_eq!(node.assert_chain_intact().await, expected);
    assert_eq!(node.last_seq(T1).await, 6);
    assert_eq!(node.last_seq(T2).await, 6);
}

// ---------------------------------------------------------------------------------------------
// Staff, approvals and shifts

async fn try_sign_in(
    node: &TestNode,
    terminal: &str,
    staff: &str,
    pin: &str,
) -> (StatusCode, Value) {
    node.post(
        "/v1/sign-in",
        None,
        &json!({"terminal": terminal, "staff": staff, "pin": pin}),
    )
    .await
}

#[tokio::test]
async fn five_wrong_pins_lock_the_member_out_of_that_till_for_five_minutes() {
    let node = TestNode::vienna().await;
    let (status, staff) = node.get("/v1/staff").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        staff["staff"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "anna" && s["role"] == "cashier" && s.get("pin_hash").is_none()),
        "{staff}"
    );
    let response = try_sign_in(&node, T1, "nobody", "1111").await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_staff",
        Some("staff"),
    );
    for left in [4, 3, 2, 1] {
        let response = try_sign_in(&node, T1, "anna", "0000").await;
        assert_error(
            &response,
            StatusCode::UNAUTHORIZED,
            "wrong_pin",
            Some("pin"),
        );
        let message = response.1["message"].as_str().unwrap();
        assert!(message.contains(&format!("{left} tries left")), "{message}");
        // The till translates by code, with the number as a field.
        assert_eq!(response.1["attempts_left"], left, "{}", response.1);
    }
    let before = node.last_seq(T1).await;
    let response = try_sign_in(&node, T1, "anna", "0000").await;
    assert_error(&response, StatusCode::LOCKED, "locked", Some("staff"));
    let wait = response.1["retry_after_seconds"].as_i64().unwrap();
    assert!((1..=300).contains(&wait), "{}", response.1);
    // Even the right PIN is refused while the lockout lasts.
    let response = try_sign_in(&node, T1, "anna", "1111").await;
    assert_error(&response, StatusCode::LOCKED, "locked", Some("staff"));
    // The lockout is a ledger event, written once.
    assert_eq!(node.last_seq(T1).await, before + 1);
    let events = node.journal(T1).await;
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "StaffLockedOut");
    assert_eq!(last["event"]["body"]["StaffLockedOut"]["staff"], "anna");
    // Another till is not locked, and a right PIN there resets nothing here.
    node.sign_in(T2, "anna", "1111").await;
    let response = try_sign_in(&node, T1, "anna", "1111").await;
    assert_eq!(response.0, StatusCode::LOCKED);
}

#[tokio::test]
async fn a_cashier_needs_a_supervisor_for_what_the_permission_table_reserves() {
    let node = TestNode::vienna().await;
    let anna = node.sign_in(T1, "anna", "1111").await;
    let discounted = |percent: &str, approval: Option<Value>| {
        let mut sale = json!({
            "terminal": T1,
            "lines": [{"code": TEE, "discount": {"percent": percent}}],
            "tenders": cash("20.00"),
        });
        if let Some(a) = approval {
            sale["approval"] = a;
        }
        sale
    };
    // Up to 10 % a cashier gives alone.
    let (status, body) = node
        .as_staff(&anna, "/v1/sales", &discounted("10", None))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["cashier"], "anna");
    assert_eq!(body["approvals"], json!([]));
    let written = node.last_seq(T1).await;
    // Above it, a supervisor approves on the spot, or nothing is written.
    let response = node
        .as_staff(&anna, "/v1/sales", &discounted("20", None))
        .await;
    assert_error(
        &response,
        StatusCode::FORBIDDEN,
        "approval_required",
        Some("approval"),
    );
    assert_eq!(response.1["permission"], "large-discount");
    let own = json!({"staff": "anna", "pin": "1111"});
    let response = node
        .as_staff(&anna, "/v1/sales", &discounted("20", Some(own)))
        .await;
    assert_error(
        &response,
        StatusCode::FORBIDDEN,
        "approver_not_allowed",
        Some("approval.staff"),
    );
    assert_eq!(response.1["permission"], "large-discount");
    assert_eq!(response.1["minimum_role"], "supervisor");
    let wrong = json!({"staff": "sven", "pin": "2223"});
    let response = node
        .as_staff(&anna, "/v1/sales", &discounted("20", Some(wrong)))
        .await;
    assert_error(
        &response,
        StatusCode::UNAUTHORIZED,
        "wrong_pin",
        Some("approval.pin"),
    );
    assert_eq!(
        node.last_seq(T1).await,
        written,
        "a refused sale wrote something"
    );
    let sven = json!({"staff": "sven", "pin": "2222"});
    let (status, body) = node
        .as_staff(&anna, "/v1/sales", &discounted("20", Some(sven.clone())))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["cashier"], "anna");
    assert_eq!(
        body["approvals"],
        json!([{"permission": "large-discount", "by": "sven"}])
    );

    // A void.
    let void = json!({"terminal": T1, "reason": "customer changed mind"});
    let response = node.as_staff(&anna, "/v1/sales/void-last", &void).await;
    assert_error(
        &response,
        StatusCode::FORBIDDEN,
        "approval_required",
        Some("approval"),
    );
    assert_eq!(response.1["permission"], "void");
    let mut approved = void.clone();
    approved["approval"] = sven.clone();
    let (status, body) = node.as_staff(&anna, "/v1/sales/void-last", &approved).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["approvals"],
        json!([{"permission": "void", "by": "sven"}])
    );

    // A return without a receipt.
    let unreceipted = json!({
        "terminal": T1,
        "lines": [{"code": BREAD_GTIN, "quantity": "1"}],
        "reason": "no receipt",
    });
    let response = node.as_staff(&anna, "/v1/returns", &unreceipted).await;
    assert_error(
        &response,
        StatusCode::FORBIDDEN,
        "approval_required",
        Some("approval"),
    );
    assert_eq!(response.1["permission"], "return-without-receipt");

    // Cash in and out of the drawer: a paid-in alone, a paid-out approved.
    let paid =
        |kind: &str| json!({"terminal": T1, "kind": kind, "amount": "5.00", "reason": "change"});
    let (status, body) = node
        .as_staff(&anna, "/v1/shifts/cash", &paid("paid-in"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["movement"], "paid-in");
    let response = node
        .as_staff(&anna, "/v1/shifts/cash", &paid("paid-out"))
        .await;
    assert_error(
        &response,
        StatusCode::FORBIDDEN,
        "approval_required",
        Some("approval"),
    );
    let mut approved = paid("paid-out");
    approved["approval"] = sven;
    let (status, body) = node.as_staff(&anna, "/v1/shifts/cash", &approved).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["approvals"],
        json!([{"permission": "paid-out", "by": "sven"}])
    );
    // A supervisor signed in needs nobody.
    let sven_session = node.sign_in(T1, "sven", "2222").await;
    let (status, body) = node
        .as_staff(&sven_session, "/v1/shifts/cash", &paid("paid-out"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["approvals"], json!([]));
    // A session belongs to its till.
    let response = node
        .as_staff(
            &anna,
            "/v1/sales",
            &one_line_sale(json!({"code": BREAD_GTIN})),
        )
        .await;
    assert_eq!(response.0, StatusCode::CREATED);
    let mut elsewhere = one_line_sale(json!({"code": BREAD_GTIN}));
    elsewhere["terminal"] = json!(T2);
    let response = node.as_staff(&anna, "/v1/sales", &elsewhere).await;
    assert_error(
        &response,
        StatusCode::FORBIDDEN,
        "wrong_terminal",
        Some("terminal"),
    );
    node.assert_chain_intact().await;
}

#[tokio::test]
async fn a_shift_closes_on_a_blind_count_by_sequence_and_a_closed_till_sells_nothing() {
    let node = TestNode::vienna().await;
    let maria = node.sign_in(T1, "maria", "3333").await;
    let anna = node.sign_in(T1, "anna", "1111").await;
    let open = json!({"terminal": T1, "float": "100.00"});
    let response = node.as_staff(&anna, "/v1/shifts/open", &open).await;
    assert_error(&response, StatusCode::CONFLICT, "shift_already_open", None);
    let body = serde_json::to_vec(&json!({"terminal": T1, "counted": []})).unwrap();
    let response = node
        .send(post_request("/v1/shifts/close", Some(&fresh_key()), body))
        .await;
    assert_error(
        &response,
        StatusCode::UNAUTHORIZED,
        "sign_in_required",
        Some("Authorization"),
    );

    // 16.97 paid with 20.00 cash, 10.00 paid in, 5.00 paid out: the drawer should hold
    // 100.00 + 16.97 + 10.00 - 5.00 = 121.97.
    let mut sale = bread_and_tee(T1);
    sale["tenders"] = cash("20.00");
    let (status, body) = node.as_staff(&anna, "/v1/sales", &sale).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["cart"]["change"], "3.03");
    let cash_move = |kind: &str, amount: &str| {
        json!({"terminal": T1, "kind": kind, "amount": amount, "reason": "float top-up",
               "approval": {"staff": "sven", "pin": "2222"}})
    };
    let (status, _) = node
        .as_staff(&anna, "/v1/shifts/cash", &cash_move("paid-in", "10.00"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, last) = node
        .as_staff(&anna, "/v1/shifts/cash", &cash_move("paid-out", "5.00"))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // The X report: the cashier does not see what the drawer should hold; a manager does.
    let x_as = |session: &str, lang: &str| {
        let mut request = Request::get(format!("/v1/shifts/report?terminal={T1}{lang}"))
            .body(Body::empty())
            .unwrap();
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {session}").parse().unwrap(),
        );
        node.send(request)
    };
    let x = |session: &str| x_as(session, "");
    let (status, report) = x(&anna).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["kind"], "X");
    assert_eq!(report["sales"], 1);
    assert_eq!(report["sales_total"], "16.97");
    assert_eq!(report["paid_in"], "10.00");
    assert_eq!(report["paid_out"], "5.00");
    assert!(report.get("expected").is_none(), "{report}");
    // The cashier reads the formatted report too, without the drawer.
    let text = report["text"].as_str().unwrap();
    assert!(
        text.contains("X-BERICHT") && !text.contains("Soll-Bestand") && !text.contains("121,97"),
        "{text}"
    );
    let (_, report) = x(&maria).await;
    assert_eq!(report["expected"], "121.97");
    // The printed X report, in the store's locale (de-AT).
    let text = report["text"].as_str().unwrap();
    assert!(text.contains("121,97"), "{text}");
    // In the till's language when it asks: English labels, the store's number format.
    let (_, report) = x_as(&maria, "&lang=en").await;
    let text = report["text"].as_str().unwrap();
    assert!(
        text.contains("X REPORT") && text.contains("Expected cash") && text.contains("121,97"),
        "{text}"
    );

    // The blind count: 2 × 50, 1 × 20, 1 × 1 = 121.00, 0.97 short.
    let count = json!({"terminal": T1, "counted": [
        {"denomination": "50.00", "count": 2},
        {"denomination": "20.00", "count": 1},
        {"denomination": "1.00", "count": 1},
    ]});
    let (status, z) = node.as_staff(&anna, "/v1/shifts/close", &count).await;
    assert_eq!(status, StatusCode::CREATED, "{z}");
    assert_eq!(z["kind"], "Z");
    assert_eq!(z["expected"], "121.97");
    assert_eq!(z["counted"], "121.00");
    assert_eq!(z["over_short"], "-0.97");
    let text = z["text"].as_str().unwrap();
    assert!(
        text.contains("121,97") && text.contains("121,00") && text.contains("0,97"),
        "{text}"
    );
    assert_eq!(z["sales"], 1);
    // Closed by sequence: everything up to the paid-out belongs to the shift.
    assert_eq!(z["up_to_seq"], last["seq"]);
    assert_eq!(z["seq"], last["seq"].as_u64().unwrap() + 1);
    let events = node.journal(T1).await;
    let closed = &events.last().unwrap()["event"]["body"]["ShiftClosed"];
    assert_eq!(closed["expected"], 12_197);
    assert_eq!(closed["counted"], 12_100);

    // No sale outside an open shift, and no second close.
    let response = node.as_staff(&anna, "/v1/sales", &bread_and_tee(T1)).await;
    assert_error(&response, StatusCode::CONFLICT, "no_open_shift", None);
    let response = node.as_staff(&anna, "/v1/shifts/close", &count).await;
    assert_error(&response, StatusCode::CONFLICT, "no_open_shift", None);
    let response = node.get(&format!("/v1/shifts/current?terminal={T1}")).await;
    assert_error(&response, StatusCode::NOT_FOUND, "no_open_shift", None);
    // A bad float changes nothing.
    let response = node
        .as_staff(
            &anna,
            "/v1/shifts/open",
            &json!({"terminal": T1, "float": "-5"}),
        )
        .await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("float"),
    );
    let (status, shift) = node.as_staff(&anna, "/v1/shifts/open", &open).await;
    assert_eq!(status, StatusCode::CREATED, "{shift}");
    assert_eq!(shift["cashier"], "anna");
    let (_, current) = node.get(&format!("/v1/shifts/current?terminal={T1}")).await;
    assert_eq!(current["id"], shift["id"]);
    let (status, _) = node.as_staff(&anna, "/v1/sales", &bread_and_tee(T1)).await;
    assert_eq!(status, StatusCode::CREATED);
    node.assert_chain_intact().await;
}

/// A receipt printer on 127.0.0.1: accepts print jobs and hands over the bytes of each.
fn fake_printer() -> (String, std::sync::mpsc::Receiver<Vec<u8>>) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut bytes = Vec::new();
            if stream.unwrap().read_to_end(&mut bytes).is_ok() && tx.send(bytes).is_err() {
                break;
            }
        }
    });
    (addr, rx)
}

fn printed_lines(bytes: &[u8]) -> Vec<printer::escpos::Decoded> {
    printer::escpos::decode(bytes).unwrap()
}

fn printed_text(decoded: &[printer::escpos::Decoded]) -> String {
    decoded
        .iter()
        .filter_map(|d| match d {
            printer::escpos::Decoded::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn receipts_and_the_z_report_print_on_the_tills_printer() {
    let node = TestNode::vienna().await;
    let (addr, jobs) = fake_printer();
    let pools = store::db::open(node.dir.path()).await.unwrap();
    let t1 = TerminalId::parse(T1).unwrap();
    assert!(
        store::printing::set_printer(&pools.writer, &t1, "printer.local", 80)
            .await
            .is_err()
    );
    store::printing::set_printer(&pools.writer, &t1, &format!("tcp:{addr}"), 58)
        .await
        .unwrap();
    let (status, sale) = node.sale(&bread_and_tee(T1)).await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    let number = sale["receipt"].as_str().unwrap();

    // The on-screen preview is the printed document.
    let (status, preview) = node.get(&format!("/v1/receipts/{number}/preview")).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    let text = preview["text"].as_str().unwrap();
    assert!(text.contains(number) && text.contains("16,97"), "{text}");
    assert!(
        text.lines().all(|l| l.chars().count() <= 32),
        "wider than 58 mm:\n{text}"
    );
    // What a simplified invoice carries: the seller's name, address and VAT number, the
    // cashier by name, each line's rate letter and the tax per rate, in the receipt's language.
    for wanted in [
        "Mariahilf\n",
        "Mariahilfer Straße 77",
        "UID-Nr. ATU13572463",
        "Kassierer",
        "Maria Gruber",
        "A 10 %",
        "B 20 %",
    ] {
        assert!(text.contains(wanted), "{wanted} missing:\n{text}");
    }
    assert!(!text.contains("maria\n") && !text.contains("VAT"), "{text}");
    assert!(
        preview["html"].as_str().unwrap().contains("<svg"),
        "no QR code in the preview"
    );

    // The body names no more than the till whose session prints (a receipt prints only on its
    // own till).
    let print_at = async |n: &str, terminal: &str| {
        node.post(
            &format!("/v1/receipts/{n}/print"),
            None,
            &json!({"terminal": terminal}),
        )
        .await
    };
    let print = async |n: &str| print_at(n, T1).await;
    let (status, body) = print(number).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["copy"], false);
    let job = printed_lines(
        &jobs
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap(),
    );
    let paper = printed_text(&job);
    assert!(paper.contains(number) && paper.contains("16,97"), "{paper}");
    assert!(
        job.iter()
            .any(|d| matches!(d, printer::escpos::Decoded::Qr { data } if data == number))
    );
    assert!(
        matches!(job.last(), Some(printer::escpos::Decoded::Cut)),
        "{job:?}"
    );
    // A reprint says it is a copy.
    let (_, body) = print(number).await;
    assert_eq!(body["copy"], true);
    let copy = printed_text(&printed_lines(
        &jobs
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap(),
    ));
    assert!(copy.contains("KOPIE"), "{copy}");
    // A till without a printer says so.
    let mut other = bread_and_tee(T2);
    other["tenders"] = cash("20.00");
    let (_, sale2) = node.sale(&other).await;
    let response = print_at(sale2["receipt"].as_str().unwrap(), T2).await;
    assert_error(&response, StatusCode::CONFLICT, "no_printer", None);

    // The X report prints for a manager, not for a cashier (it shows the expected cash).
    let maria = node.sign_in(T1, "maria", "3333").await;
    let anna = node.sign_in(T1, "anna", "1111").await;
    let x_print = format!("/v1/shifts/report/print?terminal={T1}");
    let response = node.as_staff(&anna, &x_print, &json!({})).await;
    assert_error(
        &response,
        StatusCode::FORBIDDEN,
        "approval_required",
        Some("approval"),
    );
    let (status, body) = node.as_staff(&maria, &x_print, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let paper = printed_text(&printed_lines(
        &jobs
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap(),
    ));
    assert!(paper.contains("16,97"), "{paper}");

    // The Z report prints when the shift closes.
    let count = json!({"terminal": T1, "counted": [{"denomination": "100.00", "count": 1}]});
    let (status, z) = node.as_staff(&maria, "/v1/shifts/close", &count).await;
    assert_eq!(status, StatusCode::CREATED, "{z}");
    assert_eq!(z["printed"], true);
    let paper = printed_text(&printed_lines(
        &jobs
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap(),
    ));
    assert!(paper.contains("100,00"), "{paper}");
}

#[tokio::test]
async fn every_refusal_has_the_documented_shape_even_where_axum_refuses_on_its_own() {
    let node = TestNode::vienna().await;
    // A query string without its required parameter, and a path that is not UTF-8.
    let response = node.get("/v1/shifts/current").await;
    assert_error(
        &response,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("terminal"),
    );
    let response = node.get("/v1/items/%FF%FE").await;
    assert_eq!(response.0, StatusCode::BAD_REQUEST, "{}", response.1);
    assert_eq!(response.1["code"], "invalid_request", "{}", response.1);
    // A method a route does not take.
    let response = node
        .send(Request::delete("/v1/sales").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.0, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.1["code"], "method_not_allowed", "{}", response.1);
    // JSON sent as plain text is refused, not guessed at.
    let mut request = node.signed(
        post_request(
            "/v1/sales",
            Some(&fresh_key()),
            serde_json::to_vec(&bread_and_tee(T1)).unwrap(),
        ),
        Some(T1),
    );
    request
        .headers_mut()
        .insert("content-type", "text/plain".parse().unwrap());
    let response = node.send(request).await;
    assert_error(
        &response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        Some("Content-Type"),
    );
    // A quantity with a space before it, and a tender far out of range.
    let mut spaced = bread_and_tee(T1);
    spaced["lines"][0]["quantity"] = json!(" 1");
    let response = node.sale(&spaced).await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("lines[0].quantity"),
    );
    assert!(
        response.1["message"].as_str().unwrap().contains("spaces"),
        "{}",
        response.1
    );
    let mut huge = bread_and_tee(T1);
    huge["tenders"] = cash("1e30");
    let response = node.sale(&huge).await;
    assert_eq!(
        response.0,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.1
    );
    assert_eq!(response.1["field"], "tenders[0].amount", "{}", response.1);
    assert!(
        response.1["message"]
            .as_str()
            .unwrap()
            .contains("out of range"),
        "{}",
        response.1
    );
    assert_eq!(node.total_events().await, 0, "nothing was written");
}

#[tokio::test]
async fn a_discount_above_the_cashiers_limit_is_approved_when_priced_not_first_at_payment() {
    let node = TestNode::vienna().await;
    let anna = node.sign_in(T1, "anna", "1111").await;
    let written = node.last_seq(T1).await;
    let cart = |approval: Option<Value>| {
        let mut cart = json!({"lines": [{"code": TEE, "discount": {"percent": "20"}}]});
        if let Some(a) = approval {
            cart["approval"] = a;
        }
        cart
    };
    // Priced with the cashier's session, the cart asks for the supervisor there and then.
    let response = node.as_staff(&anna, "/v1/carts/price", &cart(None)).await;
    assert_error(
        &response,
        StatusCode::FORBIDDEN,
        "approval_required",
        Some("approval"),
    );
    assert_eq!(response.1["permission"], "large-discount");
    let wrong = json!({"staff": "sven", "pin": "2223"});
    let response = node
        .as_staff(&anna, "/v1/carts/price", &cart(Some(wrong)))
        .await;
    assert_error(
        &response,
        StatusCode::UNAUTHORIZED,
        "wrong_pin",
        Some("approval.pin"),
    );
    let sven = json!({"staff": "sven", "pin": "2222"});
    let (status, body) = node
        .as_staff(&anna, "/v1/carts/price", &cart(Some(sven)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Within the limit, or without a session (a price lookup), nothing is asked.
    let (status, body) = node
        .as_staff(
            &anna,
            "/v1/carts/price",
            &json!({"lines": [{"code": TEE, "discount": {"percent": "10"}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = node.post("/v1/carts/price", None, &cart(None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Pricing wrote nothing.
    assert_eq!(node.last_seq(T1).await, written);
}

#[tokio::test]
async fn the_void_names_the_sale_it_voids_and_refuses_another() {
    let node = TestNode::vienna().await;
    let (status, body) = node.get(&format!("/v1/sales/last?terminal={T1}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "nothing_to_void");
    let (status, first) = node.sale(&bread_and_tee(T1)).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, last) = node.get(&format!("/v1/sales/last?terminal={T1}")).await;
    assert_eq!(status, StatusCode::OK, "{last}");
    assert_eq!(last["receipt"], first["receipt"]);
    assert_eq!(last["total"], first["cart"]["total"]);
    // Another sale since the cashier looked: the void of the one they saw is refused.
    let (status, second) = node.sale(&bread_and_tee(T1)).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let seen = json!({"terminal": T1, "reason": "wrong item", "receipt": first["receipt"]});
    let response = node
        .post("/v1/sales/void-last", Some("void-seen"), &seen)
        .await;
    assert_error(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not_last_sale",
        Some("receipt"),
    );
    let written = node.last_seq(T1).await;
    let current = json!({"terminal": T1, "reason": "wrong item", "receipt": second["receipt"]});
    let (status, voided) = node
        .post("/v1/sales/void-last", Some("void-current"), &current)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{voided}");
    assert_eq!(voided["voided_receipt"], second["receipt"]);
    assert_eq!(node.last_seq(T1).await, written + 1);
    let (status, body) = node.get(&format!("/v1/sales/last?terminal={T1}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn a_no_sale_says_whether_the_drawer_opened() {
    let node = TestNode::vienna().await;
    let (status, body) = node
        .post(
            "/v1/shifts/no-sale",
            Some("no-sale-1"),
            &json!({"terminal": T1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["kind"], "NoSale");
    // This till has no printer, so no drawer opened: the answer says so.
    assert_eq!(body["drawer"], "no_printer");
}

#[tokio::test]
async fn an_open_price_item_takes_the_price_the_cashier_types_and_nothing_else_does() {
    let node = TestNode::vienna().await;
    let dept = "MIS-DEP-0001-STD";
    let (status, item) = node.get(&format!("/v1/items/{dept}")).await;
    assert_eq!(status, StatusCode::OK, "{item}");
    assert_eq!(item["open_price"], true);
    assert_eq!(item["price"], Value::Null);
    let price = |line: Value| json!({"lines": [line]});
    let (status, cart) = node
        .post(
            "/v1/carts/price",
            None,
            &price(json!({"code": dept, "quantity": "2", "price": "12.50"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    assert_eq!(cart["lines"][0]["unit_price"], "12.50");
    assert_eq!(cart["total"], "25.00");
    for (line, code) in [
        (json!({"code": dept}), "price_required"),
        (json!({"code": dept, "price": "0"}), "invalid_price"),
        (json!({"code": dept, "price": "-3.00"}), "invalid_price"),
        (json!({"code": dept, "price": "10000.00"}), "invalid_price"),
        (json!({"code": dept, "price": "12,50"}), "invalid_price"),
        (json!({"code": TEE, "price": "1.00"}), "price_not_open"),
    ] {
        let response = node.post("/v1/carts/price", None, &price(line)).await;
        assert_error(
            &response,
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
            Some("lines[0].price"),
        );
    }
    // A sale records the typed price as the line's unit price.
    let (status, sale) = node
        .sale(&json!({
            "terminal": T1,
            "lines": [{"code": dept, "price": "7.90"}],
            "tenders": cash("10.00"),
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    assert_eq!(sale["cart"]["lines"][0]["unit_price"], "7.90");
    assert_eq!(sale["cart"]["total"], "7.90");
}
