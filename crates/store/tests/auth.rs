//! Every write of the store node's API tried as an attacker on the LAN would: with no session,
//! with an expired one, with another till's session, in another member's name, and with a
//! device credential that was revoked. Nothing of it may reach the ledger. The table of routes
//! is checked against the OpenAPI document, so a new write route cannot slip past it.
#![allow(clippy::unwrap_used)] // Test code: a panic is a test failure.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use domain::stored_value::{AccountNumber, StoredValueKind};
use domain::{StoreId, TerminalId, Timestamp};
use serde_json::{Value, json};
use store::clock::Clock;

const T1: &str = "vienna-01-t1";
const T2: &str = "vienna-01-t2";
const BREAD_GTIN: &str = "9003909062415";
const BREAD: &str = "GRO-BRD-0012";

/// The wall clock plus an offset the test moves forward.
#[derive(Debug, Default)]
struct MovableClock(AtomicI64);

impl Clock for MovableClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(
            store::clock::SystemClock.now().millis() + self.0.load(Ordering::SeqCst),
        )
    }
}

struct Node {
    dir: tempfile::TempDir,
    router: Router,
    clock: Arc<MovableClock>,
    _app: store::App,
}

fn key() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("auth-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

async fn start() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let terminals = [
        TerminalId::parse(T1).unwrap(),
        TerminalId::parse(T2).unwrap(),
    ];
    store::provision(
        dir.path(),
        &StoreId::parse("vienna-01").unwrap(),
        &terminals,
    )
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
    store::seed(dir.path(), &seed).await.unwrap();
    let clock = Arc::new(MovableClock::default());
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
    Node {
        dir,
        router,
        clock,
        _app: app,
    }
}

impl Node {
    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        common::respond(&self.router, request).await
    }

    /// POSTs `body` with a fresh idempotency key, as the holder of `token` if any.
    async fn post(&self, token: Option<&str>, path: &str, body: &Value) -> (StatusCode, Value) {
        let mut request = Request::post(path)
            .header("content-type", "application/json")
            .header("idempotency-key", key());
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        self.send(request.body(Body::from(body.to_string())).unwrap())
            .await
    }

    async fn get(&self, token: Option<&str>, path: &str) -> (StatusCode, Value) {
        let mut request = Request::get(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    /// Events in the ledger, every terminal together.
    async fn events(&self) -> i64 {
        let pools = store::db::open(self.dir.path()).await.unwrap();
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&pools.reader)
            .await
            .unwrap();
        pools.reader.close().await;
        pools.writer.close().await;
        n
    }
}

/// Each write route of the node with a body for T1 that would get past parsing.
fn write_routes(receipt: &str, gift_card: &str) -> Vec<(String, Value)> {
    let cash = json!([{"kind": "cash", "amount": "10.00"}]);
    [
        (
            "/v1/sales",
            json!({"terminal": T1, "lines": [{"code": BREAD_GTIN}], "tenders": cash}),
        ),
        ("/v1/sales/void-last", json!({"terminal": T1, "reason": "wrong item"})),
        (
            "/v1/returns",
            json!({"terminal": T1, "lines": [{"code": BREAD_GTIN, "quantity": "1"}], "reason": "no receipt"}),
        ),
        (
            "/v1/stock/adjustments",
            json!({"terminal": T1, "sku": BREAD, "delta": "-5", "reason": "shrink"}),
        ),
        ("/v1/stock/counts", json!({"terminal": T1, "sku": BREAD, "counted": "0"})),
        ("/v1/shifts/open", json!({"terminal": T1, "float": "100.00"})),
        (
            "/v1/shifts/cash",
            json!({"terminal": T1, "kind": "paid-out", "amount": "5.00", "reason": "taxi"}),
        ),
        ("/v1/shifts/no-sale", json!({"terminal": T1})),
        ("/v1/shifts/close", json!({"terminal": T1, "counted": []})),
        ("/v1/shifts/report/print?terminal=vienna-01-t1", json!({})),
        (
            "/v1/gift-cards",
            json!({"terminal": T1, "number": gift_card, "amount": "10.00", "tenders": cash}),
        ),
        (
            &format!("/v1/gift-cards/{gift_card}/top-up"),
            json!({"terminal": T1, "amount": "10.00", "tenders": cash}),
        ),
        (
            "/v1/card-payments",
            json!({"terminal": T1, "sale": "s-1", "amount": "1.00"}),
        ),
        ("/v1/card-payments/refund", json!({"terminal": T1, "return": receipt})),
        (
            "/v1/card-payments/refund-return",
            json!({"terminal": T1, "return": receipt}),
        ),
        (
            "/v1/card-payments/refund-in-cash",
            json!({"terminal": T1, "return": receipt}),
        ),
        ("/v1/card-payments/poi-1/reverse", json!({"terminal": T1})),
        (
            "/v1/card-payments/poi-1/refund",
            json!({"terminal": T1, "amount": "1.00", "return": receipt}),
        ),
        ("/v1/card-payments/reconcile-offline", json!({"terminal": T1})),
        (&format!("/v1/receipts/{receipt}/print"), json!({})),
        ("/v1/display/vienna-01-t1", json!({"state": "idle"})),
        (
            "/v1/web-orders/W-000001/steps",
            json!({"terminal": T1, "step": "ready"}),
        ),
        (
            "/v1/holds",
            json!({"terminal": T1, "customer": "Eva", "lines": [{"code": "GRO-BRD-0012", "quantity": "1"}]}),
        ),
        ("/v1/holds/h-1/release", json!({"terminal": T1})),
        ("/v1/web-returns/R-000001/receive", json!({"terminal": T1})),
        ("/v1/fiscal/null-receipt", json!({"terminal": T1})),
        ("/v1/fiscal/close", json!({"terminal": T1})),
        (
            "/v1/fiscal/training-receipt",
            json!({"terminal": T1, "lines": [{"code": BREAD_GTIN}]}),
        ),
    ]
    .into_iter()
    .map(|(path, body)| (path.to_owned(), body))
    .collect()
}

/// POST routes that write nothing and need no one signed in: signing in and out, and pricing
/// a cart for the screen.
const OPEN_POSTS: [&str; 4] = [
    "/v1/sign-in",
    "/v1/sign-out",
    "/v1/carts/price",
    "/v1/till/settle",
];

/// `/v1/gift-cards/{number}/top-up` for `/v1/gift-cards/GC…/top-up`: the OpenAPI path a
/// concrete path stands for.
fn template_of(path: &str, receipt: &str, gift_card: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    path.replace(gift_card, "{number}")
        .replace(receipt, "{number}")
        .replace("poi-1", "{poi}")
        .replace("W-000001", "{number}")
        .replace("R-000001", "{number}")
        .replace("/h-1/", "/{id}/")
        .replace(T1, "{terminal}")
}

#[tokio::test]
async fn every_write_is_refused_without_a_session_with_an_expired_one_and_with_another_tills() {
    let node = start().await;
    // A sale on T1 by a manager, so that receipt routes have a receipt to name.
    let maria = common::sign_in(&node.router, T1, "maria", "3333").await;
    let (status, body) = node
        .post(
            Some(&maria),
            "/v1/shifts/open",
            &json!({"terminal": T1, "float": "100.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, sale) = node
        .post(Some(&maria), "/v1/sales", &write_routes("", "")[0].1)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    let receipt = sale["receipt"].as_str().unwrap().to_owned();
    let gift_card = AccountNumber::generate(StoredValueKind::GiftCard, 77).to_string();
    let routes = write_routes(&receipt, &gift_card);

    // The table names every write route the node documents.
    let openapi: Value = serde_json::from_str(store::api::OPENAPI).unwrap();
    let documented: std::collections::BTreeSet<String> = openapi["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, ops)| ops.get("post").is_some() && !OPEN_POSTS.contains(&path.as_str()))
        .map(|(path, _)| path.clone())
        .collect();
    let tried: std::collections::BTreeSet<String> = routes
        .iter()
        .map(|(path, _)| template_of(path, &receipt, &gift_card))
        .collect();
    assert_eq!(tried, documented, "every write route is in the table");

    let before = node.events().await;
    let anna_t2 = common::sign_in(&node.router, T2, "anna", "1111").await;
    for (path, body) in &routes {
        // No session at all, whoever the body names.
        let mut named = body.clone();
        named["cashier"] = json!("admin");
        for body in [body, &named] {
            let (status, answer) = node.post(None, path, body).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {answer}");
            assert_eq!(answer["code"], "sign_in_required", "{path}: {answer}");
            assert_eq!(answer["field"], "Authorization", "{path}: {answer}");
        }
        // A token that is no session.
        let (status, answer) = node.post(Some("not-a-session"), path, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {answer}");
        assert_eq!(answer["code"], "invalid_session", "{path}: {answer}");
        // Another till's session.
        let (status, answer) = node.post(Some(&anna_t2), path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
        assert_eq!(answer["code"], "wrong_terminal", "{path}: {answer}");
    }
    assert_eq!(node.events().await, before, "nothing was written");

    // A session left unused for longer than the idle limit has ended.
    let anna = common::sign_in(&node.router, T1, "anna", "1111").await;
    node.clock
        .0
        .store(store::staff::SESSION_IDLE_MS + 60_000, Ordering::SeqCst);
    for (path, body) in &routes {
        let (status, answer) = node.post(Some(&anna), path, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {answer}");
        assert_eq!(answer["code"], "invalid_session", "{path}: {answer}");
    }
    assert_eq!(node.events().await, before, "nothing was written");
}

#[tokio::test]
async fn a_cashier_cannot_write_in_another_members_name_and_a_large_discount_still_needs_a_pin() {
    let node = start().await;
    let anna = common::sign_in(&node.router, T1, "anna", "1111").await;
    let (status, body) = node
        .post(
            Some(&anna),
            "/v1/shifts/open",
            &json!({"terminal": T1, "float": "100.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let before = node.events().await;
    // Half off, in the admin's or the manager's name: the name is no proof.
    for name in ["admin", "maria"] {
        let sale = json!({"terminal": T1, "cashier": name,
            "lines": [{"code": BREAD_GTIN, "discount": {"percent": "50"}}],
            "tenders": [{"kind": "cash", "amount": "10.00"}]});
        let (status, answer) = node.post(Some(&anna), "/v1/sales", &sale).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        assert_eq!(answer["code"], "cashier_not_signed_in", "{answer}");
        assert_eq!(answer["field"], "cashier", "{answer}");
        let gift = json!({"terminal": T1, "cashier": name,
            "number": AccountNumber::generate(StoredValueKind::GiftCard, 5).to_string(),
            "amount": "10.00", "tenders": [{"kind": "cash", "amount": "10.00"}]});
        let (status, answer) = node.post(Some(&anna), "/v1/gift-cards", &gift).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        assert_eq!(answer["code"], "cashier_not_signed_in", "{answer}");
    }
    // In her own name the discount still needs a supervisor's PIN.
    let sale = json!({"terminal": T1, "cashier": "anna",
        "lines": [{"code": BREAD_GTIN, "discount": {"percent": "50"}}],
        "tenders": [{"kind": "cash", "amount": "10.00"}]});
    let (status, answer) = node.post(Some(&anna), "/v1/sales", &sale).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["code"], "approval_required", "{answer}");
    assert_eq!(node.events().await, before, "nothing was written");
    let mut approved = sale.clone();
    approved["approval"] = json!({"staff": "sven", "pin": "2222"});
    let (status, answer) = node.post(Some(&anna), "/v1/sales", &approved).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["cashier"], "anna", "{answer}");
}

#[tokio::test]
async fn the_journal_receipts_and_reports_are_read_only_by_those_signed_in_with_the_role() {
    let node = start().await;
    let anna = common::sign_in(&node.router, T1, "anna", "1111").await;
    let maria = common::sign_in(&node.router, T2, "maria", "3333").await;
    let (status, body) = node
        .post(
            Some(&anna),
            "/v1/shifts/open",
            &json!({"terminal": T1, "float": "100.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, sale) = node
        .post(
            Some(&anna),
            "/v1/sales",
            &json!({"terminal": T1, "lines": [{"code": BREAD_GTIN}],
                    "tenders": [{"kind": "cash", "amount": "10.00"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    let receipt = sale["receipt"].as_str().unwrap();
    let journal = format!("/v1/journal?terminal={T1}");
    let reads = [
        journal.clone(),
        format!("/v1/receipts/{receipt}"),
        format!("/v1/receipts/{receipt}/preview"),
        format!("/v1/shifts/report?terminal={T1}"),
        format!("/v1/shifts/current?terminal={T1}"),
        format!("/v1/sales/last?terminal={T1}"),
        format!("/v1/card-payments/totals?terminal={T1}"),
        "/v1/card-payments/pending".to_owned(),
        format!(
            "/v1/stored-value/{}",
            AccountNumber::generate(StoredValueKind::GiftCard, 9)
        ),
    ];
    for path in &reads {
        let (status, answer) = node.get(None, path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {answer}");
        assert_eq!(answer["code"], "sign_in_required", "{path}: {answer}");
    }
    // A cashier reads receipts, not the journal or the card totals.
    let (status, _) = node
        .get(Some(&anna), &format!("/v1/receipts/{receipt}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        journal.clone(),
        format!("/v1/card-payments/totals?terminal={T1}"),
    ] {
        let (status, answer) = node.get(Some(&anna), &path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
        assert_eq!(answer["code"], "role_required", "{path}: {answer}");
    }
    // The sale a void would void is named only to that till.
    let (status, answer) = node
        .get(Some(&anna), &format!("/v1/sales/last?terminal={T1}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["receipt"], receipt);
    let (status, answer) = node
        .get(Some(&maria), &format!("/v1/sales/last?terminal={T1}"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["code"], "wrong_terminal", "{answer}");
    // A manager signed in at another till of the node reads the journal.
    let (status, answer) = node.get(Some(&maria), &journal).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(!answer["events"].as_array().unwrap().is_empty());
    // The sign-in screen's staff list shows names to anyone, roles only to members.
    let (_, list) = node.get(None, "/v1/staff").await;
    assert!(
        list["staff"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m.get("role").is_none()),
        "{list}"
    );
    let (_, list) = node.get(Some(&anna), "/v1/staff").await;
    assert!(
        list["staff"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["role"].is_string()),
        "{list}"
    );
}

#[tokio::test]
async fn an_unattended_device_writes_at_its_own_till_until_it_is_revoked() {
    let node = start().await;
    let pools = store::db::open(node.dir.path()).await.unwrap();
    let now = store::clock::SystemClock.now().millis();
    // An id already taken by a member of staff, and an unknown till, are refused.
    assert!(
        store::auth::add_device(&pools, "anna", T1, now)
            .await
            .is_err()
    );
    assert!(
        store::auth::add_device(&pools, "scale-1", "vienna-01-t9", now)
            .await
            .is_err()
    );
    let token = store::auth::add_device(&pools, "sco-1", T1, now)
        .await
        .unwrap();
    let (status, body) = node
        .post(
            Some(&token),
            "/v1/shifts/open",
            &json!({"terminal": T1, "float": "0.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let sale = json!({"terminal": T1, "lines": [{"code": BREAD_GTIN}],
                      "tenders": [{"kind": "card", "amount": "3.49"}]});
    let (status, answer) = node.post(Some(&token), "/v1/sales", &sale).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(
        answer["cashier"], "sco-1",
        "the device is recorded as the cashier"
    );
    // Not at another till, and not the journal.
    let mut elsewhere = sale.clone();
    elsewhere["terminal"] = json!(T2);
    let (status, answer) = node.post(Some(&token), "/v1/sales", &elsewhere).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, _) = node
        .get(Some(&token), &format!("/v1/journal?terminal={T1}"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    store::auth::revoke_device(&pools, "sco-1", now)
        .await
        .unwrap();
    let (status, answer) = node.post(Some(&token), "/v1/sales", &sale).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["code"], "invalid_device", "{answer}");
    pools.reader.close().await;
    pools.writer.close().await;
}
