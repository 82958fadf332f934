//! The till screen's server side in process: the embedded assets, search and quick keys over the
//! demo catalog, settling a cart without writing (change, cash rounding, split tenders) and the
//! customer display relay (a posted cart arrives as a Server-Sent Event).
#![allow(clippy::unwrap_used)] // Test code: a panic is a test failure.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use domain::{StoreId, TerminalId};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/demo/seed.json");
const BREAD_GTIN: &str = "9003909062415";

struct TestNode {
    _dir: TempDir,
    router: Router,
    _app: store::App,
}

async fn node(store_id: &str) -> TestNode {
    node_with(store_id, |_| {}).await
}

/// A node of `store_id` seeded with the demo data as `edit` changes it.
async fn node_with(store_id: &str, edit: impl FnOnce(&mut protocol::seed::SeedDto)) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let terminals = [format!("{store_id}-t1"), format!("{store_id}-t2")];
    let ids: Vec<TerminalId> = terminals
        .iter()
        .map(|t| TerminalId::parse(t).unwrap())
        .collect();
    store::provision(dir.path(), &StoreId::parse(store_id).unwrap(), &ids)
        .await
        .unwrap();
    let mut seed: protocol::seed::SeedDto =
        serde_json::from_str(&std::fs::read_to_string(SEED).unwrap()).unwrap();
    edit(&mut seed);
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
    TestNode {
        _dir: dir,
        router,
        _app: app,
    }
}

impl TestNode {
    async fn raw(&self, request: Request<Body>) -> (StatusCode, String, String) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let mime = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, mime, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (status, _, body) = self
            .raw(Request::get(path).body(Body::empty()).unwrap())
            .await;
        (status, serde_json::from_str(&body).unwrap())
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.post_as(None, path, body).await
    }

    /// POSTs JSON as the member of `session`, if any.
    async fn post_as(
        &self,
        session: Option<&str>,
        path: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        let mut request = Request::post(path).header("content-type", "application/json");
        if let Some(session) = session {
            request = request.header("authorization", format!("Bearer {session}"));
        }
        let (status, _, body) = self
            .raw(request.body(Body::from(body.to_string())).unwrap())
            .await;
        (status, serde_json::from_str(&body).unwrap())
    }
}

#[tokio::test]
async fn till_and_display_pages_and_their_assets_are_served_from_the_binary() {
    let node = node("vienna-01").await;
    for (path, mime, needle) in [
        (
            "/till?terminal=vienna-01-t1",
            "text/html",
            "data-test=\"screen-sell\"",
        ),
        (
            "/display?terminal=vienna-01-t1",
            "text/html",
            "data-test=\"display-total\"",
        ),
        ("/till/assets/till.js", "text/javascript", "/v1/carts/price"),
        ("/till/assets/display.js", "text/javascript", "EventSource"),
        (
            "/till/assets/common.js",
            "text/javascript",
            "Intl.NumberFormat",
        ),
        ("/till/assets/i18n.js", "text/javascript", "Schicht öffnen"),
        ("/till/assets/till.css", "text/css", ".keypad"),
    ] {
        let (status, content_type, body) = node
            .raw(Request::get(path).body(Body::empty()).unwrap())
            .await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(content_type.starts_with(mime), "{path}: {content_type}");
        assert!(body.contains(needle), "{path} lacks {needle}");
    }
    let (status, body) = node.get("/till/assets/secret.txt").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn every_string_key_exists_in_english_and_german() {
    let text = include_str!("../till/i18n.js");
    let section = |lang: &str| -> Vec<String> {
        let start = text.find(&format!("\n  {lang}: {{")).unwrap();
        let end = start + text[start..].find("\n  },").unwrap();
        text[start..end]
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"'))
            .filter_map(|l| l.split('"').next())
            .map(str::to_owned)
            .collect()
    };
    let (en, de) = (section("en"), section("de"));
    assert!(en.len() > 100, "{}", en.len());
    assert_eq!(
        en, de,
        "the dictionaries list the same keys in the same order"
    );
    // Every key the scripts and pages ask for is in the dictionary.
    let sources = [
        include_str!("../till/till.js"),
        include_str!("../till/display.js"),
        include_str!("../till/till.html"),
        include_str!("../till/display.html"),
    ];
    for source in sources {
        for quote in ["t(\"", "data-i18n=\"", "data-i18n-placeholder=\""] {
            for (at, _) in source.match_indices(quote) {
                // `t(` on its own, not the end of a longer name such as `Event(`.
                if at > 0 && source.as_bytes()[at - 1].is_ascii_alphanumeric() {
                    continue;
                }
                let key = source[at + quote.len()..].split('"').next().unwrap();
                if key.ends_with('.') {
                    continue; // a prefix completed at run time, such as "tender." + kind
                }
                assert!(en.iter().any(|k| k == key), "missing key {key}");
            }
        }
    }
}

#[tokio::test]
async fn store_settings_search_and_quick_keys_come_from_the_reference_data() {
    let node = node("vienna-01").await;
    let (status, config) = node.get("/v1/till/config").await;
    assert_eq!(status, StatusCode::OK, "{config}");
    assert_eq!(config["currency"], "EUR");
    assert_eq!(config["locale"], "de-AT");
    assert_eq!(config["timezone"], "Europe/Vienna");
    assert_eq!(config["terminals"], json!(["vienna-01-t1", "vienna-01-t2"]));

    let (status, found) = node.get("/v1/till/search?q=bauernbrot").await;
    assert_eq!(status, StatusCode::OK);
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{found}");
    assert_eq!(items[0]["sku"], "GRO-BRD-0012");
    assert_eq!(items[0]["code"], "GRO-BRD-0012");
    let (_, found) = node.get("/v1/till/search?q=gro-brd-001").await;
    let skus: Vec<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["sku"].as_str().unwrap())
        .collect();
    assert!(
        skus.len() >= 3 && skus.windows(2).all(|w| w[0] < w[1]),
        "{skus:?}"
    );
    assert!(
        skus.iter().all(|s| s.starts_with("GRO-BRD-001")),
        "{skus:?}"
    );
    let (_, found) = node.get("/v1/till/search?q=").await;
    assert_eq!(found["items"], json!([]));
    // Online-only items are not offered at the till.
    let (_, found) = node.get("/v1/till/search?q=HOU-GEN-0005").await;
    assert_eq!(found["items"], json!([]));

    // Quick keys come in the pages the store's reference data lays out, with their colours.
    let (status, quick) = node.get("/v1/till/quick-keys").await;
    assert_eq!(status, StatusCode::OK);
    let pages = quick["pages"].as_array().unwrap();
    let labels: Vec<&str> = pages.iter().map(|p| p["label"].as_str().unwrap()).collect();
    assert_eq!(
        labels,
        [
            "Gebäck",
            "Diverses",
            "Obst & Gemüse",
            "Feinkost",
            "Getränke"
        ]
    );
    let keys = pages[0]["keys"].as_array().unwrap();
    assert_eq!(keys[0]["sku"], "GRO-BRD-0001");
    assert_eq!(keys[0]["price"], "0.45");
    assert_eq!(keys[0]["colour"], "#f6d7a7");
    assert_eq!(keys[0]["position"], 1);
    assert_eq!(keys[0]["label"], keys[0]["name"]);
    let positions: Vec<u64> = keys
        .iter()
        .map(|k| k["position"].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    // A quick key's code scans as its item.
    let (status, item) = node
        .get(&format!("/v1/items/{}", keys[0]["code"].as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(item["sku"], keys[0]["sku"]);
}

#[tokio::test]
async fn quick_keys_keep_their_places_and_a_store_without_pages_offers_its_plu_items() {
    // Keys placed by the file keep their place; the others fill the free places in file order;
    // an item not sold in stores is left out.
    let node = node_with("vienna-01", |seed| {
        let vienna = seed
            .stores
            .iter_mut()
            .find(|s| s.id == "vienna-01")
            .unwrap();
        vienna.quick_keys = serde_json::from_value(json!([{"label": "Mix", "keys": [
            {"sku": "GRO-BRD-0002"},
            {"sku": "GRO-BRD-0001", "position": 1, "label": "Semmel", "colour": "#1e88e5"},
            {"sku": "HOU-GEN-0005"},
            {"sku": "GRO-BRD-0003"},
        ]}]))
        .unwrap();
    })
    .await;
    let (_, quick) = node.get("/v1/till/quick-keys").await;
    let keys = quick["pages"][0]["keys"].as_array().unwrap();
    let placed: Vec<(&str, u64)> = keys
        .iter()
        .map(|k| (k["sku"].as_str().unwrap(), k["position"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        placed,
        [
            ("GRO-BRD-0001", 1),
            ("GRO-BRD-0002", 2),
            ("GRO-BRD-0003", 4)
        ]
    );
    assert_eq!(keys[0]["label"], "Semmel");

    let node = node_with("vienna-01", |seed| {
        for store in &mut seed.stores {
            store.quick_keys.clear();
        }
    })
    .await;
    let (_, quick) = node.get("/v1/till/quick-keys").await;
    let pages = quick["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0]["label"], Value::Null);
    let keys = pages[0]["keys"].as_array().unwrap();
    assert!(!keys.is_empty() && keys.len() <= 24);
    assert_eq!(keys[0]["sku"], "GRO-BRD-0001");
    assert_eq!(keys[0]["code"], "10001");
}

#[tokio::test]
async fn settling_shows_due_remaining_and_change_and_writes_nothing() {
    let node = node("vienna-01").await;
    let lines = json!([{"code": BREAD_GTIN, "quantity": "2"}]);
    let (_, priced) = node.post("/v1/carts/price", &json!({"lines": lines})).await;
    let total = priced["total"].as_str().unwrap().to_owned();

    let (status, open) = node
        .post("/v1/till/settle", &json!({"lines": lines, "tenders": []}))
        .await;
    assert_eq!(status, StatusCode::OK, "{open}");
    assert_eq!(open["cash_due"], total.as_str());
    assert_eq!(open["complete"], false);

    let (_, split) = node
        .post(
            "/v1/till/settle",
            &json!({"lines": lines, "tenders": [{"kind": "card", "amount": "1.00"}]}),
        )
        .await;
    assert_eq!(split["tendered"], "1.00");
    assert_eq!(split["complete"], false);
    let remaining = split["remaining"].as_str().unwrap().to_owned();

    let (_, paid) = node
        .post(
            "/v1/till/settle",
            &json!({"lines": lines, "tenders": [{"kind": "card", "amount": "1.00"}, {"kind": "cash", "amount": "50.00"}]}),
        )
        .await;
    assert_eq!(paid["complete"], true, "{paid}");
    assert_eq!(paid["remaining"], "0.00");
    assert_ne!(remaining, "0.00");

    // Card beyond what is due is refused with the reason, never completed.
    let (_, over) = node
        .post(
            "/v1/till/settle",
            &json!({"lines": lines, "tenders": [{"kind": "card", "amount": "500.00"}]}),
        )
        .await;
    assert_eq!(over["complete"], false);
    assert!(over["error"].as_str().is_some(), "{over}");

    let (_, status) = node.get("/v1/status").await;
    assert_eq!(
        status["terminals"][0]["last_seq"], 0,
        "settling wrote nothing"
    );
}

#[tokio::test]
async fn cash_only_settlement_applies_the_swiss_cash_rounding() {
    let node = node("zurich-01").await;
    let (_, config) = node.get("/v1/till/config").await;
    assert_eq!(config["cash_rounding"], "0.05");
    // Find an item whose price is not a multiple of 0.05 so the rounding shows.
    let (_, found) = node.get("/v1/till/search?q=gro-").await;
    let item = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| {
            let p = i["price"].as_str().unwrap_or("0.00");
            i["unit"] == "each" && !p.ends_with('0') && !p.ends_with('5')
        })
        .cloned()
        .expect("an item priced off the 0.05 grid");
    let lines = json!([{"code": item["sku"]}]);
    let (_, open) = node.post("/v1/till/settle", &json!({"lines": lines})).await;
    let total = open["cart"]["total"].as_str().unwrap();
    let cash_due = open["cash_due"].as_str().unwrap();
    assert_ne!(total, cash_due, "{open}");
    assert!(
        cash_due.ends_with('0') || cash_due.ends_with('5'),
        "{cash_due}"
    );
    let (_, card) = node
        .post(
            "/v1/till/settle",
            &json!({"lines": lines, "tenders": [{"kind": "card", "amount": total}]}),
        )
        .await;
    assert_eq!(card["due"], total, "no rounding when paid by card");
    assert_eq!(card["complete"], true);
}

#[tokio::test]
async fn a_split_payment_rounds_only_the_cash_part() {
    // Zürich, 1.250 kg of bananas at 2.10: 2.63. A card pays 1.00 of it; the 1.63 left in cash
    // is 1.65 in coins, so 2.65 is due and 2.00 in cash gives 0.35 back.
    let node = node("zurich-01").await;
    let lines = json!([{"code": "2104011012507"}]);
    let (_, open) = node
        .post(
            "/v1/till/settle",
            &json!({"lines": lines, "tenders": [{"kind": "card", "amount": "1.00"}]}),
        )
        .await;
    assert_eq!(open["cart"]["total"], "2.63", "{open}");
    assert_eq!(open["due"], "2.65", "{open}");
    assert_eq!(open["remaining"], "1.65", "{open}");
    let (_, paid) = node
        .post(
            "/v1/till/settle",
            &json!({"lines": lines, "tenders": [{"kind": "card", "amount": "1.00"},
                                                {"kind": "cash", "amount": "2.00"}]}),
        )
        .await;
    assert_eq!(
        (&paid["due"], &paid["change"]),
        (&json!("2.65"), &json!("0.35")),
        "{paid}"
    );
    assert_eq!(paid["complete"], true);
    // Cash that no coins make is shown as an error, not taken.
    let (_, odd) = node
        .post(
            "/v1/till/settle",
            &json!({"lines": lines, "tenders": [{"kind": "card", "amount": "1.00"},
                                                {"kind": "cash", "amount": "1.63"}]}),
        )
        .await;
    assert_eq!(odd["complete"], false, "{odd}");
    assert!(odd["error"].as_str().unwrap().contains("coins"), "{odd}");
}

#[tokio::test]
async fn a_cart_posted_for_a_terminal_reaches_its_display_as_an_event() {
    let node = node("vienna-01").await;
    let response = node
        .router
        .clone()
        .oneshot(
            Request::get("/v1/display/vienna-01-t1/events")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut events = response.into_body().into_data_stream();

    let message = json!({"state": "cart", "cart": {"total": "3.98", "lines": []}});
    // Only the till's own session puts something in front of its customer.
    let (status, answer) = node.post("/v1/display/vienna-01-t1", &message).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let t1 = common::sign_in(&node.router, "vienna-01-t1", "anna", "1111").await;
    let t2 = common::sign_in(&node.router, "vienna-01-t2", "anna", "1111").await;
    let (status, answer) = node
        .post_as(Some(&t2), "/v1/display/vienna-01-t1", &message)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["code"], "wrong_terminal");
    let (status, answer) = node
        .post_as(Some(&t1), "/v1/display/vienna-01-t1", &message)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["listeners"], 1);
    let mut seen = String::new();
    while !seen.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let data = seen.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    assert_eq!(serde_json::from_str::<Value>(data).unwrap(), message);

    // A display that connects later gets the last cart at once.
    let late = node
        .router
        .clone()
        .oneshot(
            Request::get("/v1/display/vienna-01-t1/events")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let chunk = tokio::time::timeout(
        Duration::from_secs(5),
        late.into_body().into_data_stream().next(),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert!(std::str::from_utf8(&chunk).unwrap().contains("3.98"));

    // Other terminals' displays and unknown terminals are kept apart.
    let (status, _) = node
        .post_as(Some(&t1), "/v1/display/vienna-01-t9", &message)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = node
        .post_as(Some(&t2), "/v1/display/vienna-01-t2", &json!([1, 2]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
