//! The node's clock readings never go backwards, even when the wall clock does.
#![allow(clippy::unwrap_used)] // Test code: a panic is a test failure.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::body::Body;
use axum::http::Request;
use domain::{StoreId, TerminalId, Timestamp};
use store::clock::Clock;
use tower::ServiceExt;

/// A wall clock that jumps back a second every time it is read.
#[derive(Debug)]
struct FallingClock(AtomicI64);

impl Clock for FallingClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.fetch_sub(1000, Ordering::SeqCst))
    }
}

#[tokio::test]
async fn clock_readings_increase_while_the_wall_clock_falls() {
    let dir = tempfile::tempdir().unwrap();
    let t1 = TerminalId::parse("vienna-01-t1").unwrap();
    store::provision(dir.path(), &StoreId::parse("vienna-01").unwrap(), &[t1])
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
    let settings = store::Settings {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        sync: None,
    };
    let clock = Arc::new(FallingClock(AtomicI64::new(1_790_000_000_000)));
    let app = store::App::build(&settings, clock).await.unwrap();
    let router = store::api::router(app.node());
    let eur = domain::Currency::parse("EUR").unwrap();
    app.node()
        .ledger
        .write(
            None,
            store::ledger::Op::OpenShift {
                terminal: TerminalId::parse("vienna-01-t1").unwrap(),
                staff: domain::StaffId::parse("anna").unwrap(),
                float: domain::Money::from_minor(10_000, eur),
            },
        )
        .await
        .unwrap();
    let anna = common::sign_in(&router, "vienna-01-t1", "anna", "1111").await;
    let router = common::signed(
        router,
        std::collections::HashMap::from([("vienna-01-t1".to_owned(), anna)]),
    );
    for k in 0..5 {
        let body = serde_json::json!({
            "terminal": "vienna-01-t1",
            "lines": [{"code": "9003909062415"}],
            "tenders": [{"kind": "card", "amount": "3.49"}],
        });
        let response = router
            .clone()
            .oneshot(
                Request::post("/v1/sales")
                    .header("content-type", "application/json")
                    .header("Idempotency-Key", format!("k{k}"))
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let pools = store::db::open(dir.path()).await.unwrap();
    let readings: Vec<(i64, i64)> =
        sqlx::query_as("SELECT hlc_wall, hlc_counter FROM events ORDER BY seq")
            .fetch_all(&pools.reader)
            .await
            .unwrap();
    assert_eq!(readings.len(), 6);
    for pair in readings.windows(2) {
        assert!(pair[1] > pair[0], "clock went back: {pair:?}");
    }
}
