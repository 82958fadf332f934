//! HQ's HTTP API as an attacker or a careless integrator meets it, in-process over the router
//! on both backends: a push without a valid credential is refused before its body is read, an
//! oversized or mistyped push is refused as JSON, every extractor rejection answers HQ's JSON
//! error, the sales report refuses dates that are not dates, repeated refusals are parked once
//! and parked records are capped per terminal and store, and mutated, truncated, recompressed,
//! re-signed and misaddressed batches (a small fuzzer) are never applied.
#![allow(clippy::unwrap_used)]

mod backends;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use domain::catalog::Sku;
use domain::ids::EventId;
use domain::ledger::{AdjustmentReason, Event, EventBody, EventMeta};
use domain::{Hlc, StoreId, TerminalId};
use ed25519_dalek::SigningKey;
use hq::db::Db;
use protocol::chain::{self, GENESIS, Hash};
use protocol::sync::{BATCH_FORMAT, BATCH_MEDIA_TYPE, Batch, BatchHeader, MAX_PUSH_BYTES};
use serde_json::Value;
use tower::ServiceExt as _;

use backends::{on_postgres, on_sqlite};

/// Generates `sqlite::<scenario>` and `postgres::<scenario>` tests.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::on_sqlite(|db| async move { crate::$name(&db).await }).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::on_postgres(|db| async move { crate::$name(&db).await }).await;
                }
            )*
        }
    };
}

scenarios! {
    a_variant_is_created_and_edited_with_if_match_and_a_stale_edit_is_told_what_changed,
    price_changes_are_previewed_scheduled_and_cancelled_and_reach_the_stores_reference,
    writes_need_a_caller_with_the_scope_and_a_retried_write_is_answered_not_repeated,
    a_waiting_reference_pull_is_answered_when_a_change_is_committed,
    the_catalog_is_searched_by_name_sku_and_barcode_a_page_at_a_time,
    a_price_list_is_previewed_committed_as_one_batch_and_undone,
    sign_ins_are_throttled_per_address_and_metrics_can_be_closed,
    exceptions_are_listed_by_store_acknowledged_and_resolved_with_a_note,
    the_audit_log_is_read_filtered_and_exported_and_each_read_is_recorded,
    api_keys_read_what_their_scopes_allow_and_a_revoked_key_is_refused_at_once,
    people_sign_in_read_what_their_role_and_stores_allow_and_sign_out_with_the_csrf_token,
    an_unauthenticated_push_is_refused_before_its_body_is_read,
    an_oversized_push_is_refused_with_a_json_413_unread,
    a_push_that_is_not_a_batch_media_type_is_refused_with_a_json_415,
    a_node_speaking_a_sync_protocol_hq_does_not_accept_is_told_to_upgrade_and_nothing_is_taken,
    extractor_rejections_answer_the_json_error,
    the_sales_report_refuses_dates_that_are_not_dates,
    repeated_refusals_are_parked_once_and_parked_records_are_capped,
    fuzzed_batches_are_never_applied,
    users_and_keys_are_managed_by_a_signed_in_admin_and_never_by_a_key,
    a_store_is_configured_with_if_match_and_bad_fields_are_refused_by_name,
    staff_are_added_and_changed_and_a_pin_is_only_ever_kept_hashed,
    a_revoked_till_keeps_what_hq_held_and_its_later_batches_are_parked,
    a_tills_new_key_is_taken_from_the_batch_its_old_key_signed_and_the_old_key_signs_no_more,
    a_till_that_comes_back_with_less_than_it_said_has_the_sequences_between_named_lost,
    categories_form_a_tree_products_name_one_and_a_variant_shows_its_imports,
    reservations_never_take_available_below_zero_and_end_as_asked,
    a_store_holds_stock_for_its_customers_with_its_own_credential_and_nothing_more,
    webhooks_deliver_every_event_once_accepted_in_order_through_failures_and_an_outage,
    an_order_holds_its_stock_reaches_its_store_and_moves_on_with_the_store_ledger,
    a_thousand_concurrent_reservations_for_ten_units_leave_exactly_ten,
    a_shop_reads_the_whole_catalog_a_page_at_a_time_and_then_what_changed,
    a_jurisdiction_is_changed_and_what_depends_on_it_is_kept,
    a_store_node_reports_its_version_backlog_and_clock_on_each_pull,
    a_sale_returned_through_the_web_shop_is_checked_priced_routed_and_received,
    a_tills_fiscal_receipts_are_kept_exported_and_a_long_device_outage_is_an_exception,
    store_backups_arrive_in_pieces_resume_are_checked_kept_to_the_newest_and_fetched_by_support_alone,
}

// ---------------------------------------------------------------------------------------------
// Requests

/// The read-API token of the routers these tests build.
const READ_TOKEN: &str = "read-token";

fn router(db: &Db) -> axum::Router {
    hq::api::router(Arc::new(hq::api::Hq::new(
        db.clone(),
        Some(READ_TOKEN.into()),
    )))
}

/// Sends `request` and returns the status, the content type and the body as JSON (`Null` when
/// it is not JSON).
async fn send(router: &axum::Router, request: Request<Body>) -> (StatusCode, String, Value) {
    exchange(router, request, "content-type").await
}

/// Sends `request` and returns the status, the value of the answer's `header` (empty without
/// one) and the body as JSON (`Null` when it is not JSON).
async fn exchange(
    router: &axum::Router,
    request: Request<Body>,
    header: &str,
) -> (StatusCode, String, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let value = response
        .headers()
        .get(header)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        value,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn get(router: &axum::Router, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let (status, _, body) = send(router, request.body(Body::empty()).unwrap()).await;
    (status, body)
}

fn push_request(token: &str, body: Vec<u8>) -> Request<Body> {
    Request::post("/v1/sync/push")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", BATCH_MEDIA_TYPE)
        .body(Body::from(body))
        .unwrap()
}

async fn push(router: &axum::Router, token: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let (status, _, body) = send(router, push_request(token, body)).await;
    (status, body)
}

/// Asserts an answer is HQ's JSON error with `code` (and `field`, when given).
fn assert_error(
    answer: &(StatusCode, String, Value),
    status: StatusCode,
    code: &str,
    field: Option<&str>,
) {
    let (got, content_type, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}: {body}"
    );
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{body}");
    }
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert!(
        keys.iter()
            .all(|k| ["code", "message", "field"].contains(&k.as_str())),
        "not the error shape: {body}"
    );
}

/// A body of `chunks` × 1 MiB, made as it is read, counting the bytes read from it.
fn counted_body(chunks: usize, read: Arc<AtomicU64>) -> Body {
    let chunk = Bytes::from(vec![0x28_u8; 1024 * 1024]);
    Body::from_stream(futures_util::stream::iter((0..chunks).map(move |_| {
        read.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        Ok::<_, std::io::Error>(chunk.clone())
    })))
}

// ---------------------------------------------------------------------------------------------
// Tills, events and batches

/// A till: store, terminal and signing key.
struct Till {
    store: StoreId,
    id: TerminalId,
    key: SigningKey,
    index: u16,
}

/// An event's canonical bytes and the link after it.
#[derive(Clone)]
struct Linked {
    bytes: Vec<u8>,
    prev: Hash,
    hash: Hash,
    seq: u64,
}

impl Till {
    fn new(store: &str, terminal: &str, index: u16) -> Till {
        let byte = u8::try_from(index)
            .unwrap()
            .wrapping_mul(29)
            .wrapping_add(3);
        Till {
            store: StoreId::parse(store).unwrap(),
            id: TerminalId::parse(terminal).unwrap(),
            key: SigningKey::from_bytes(&[byte; 32]),
            index,
        }
    }

    /// Registers the till's store (returning its credential) and the till.
    async fn register(&self, db: &Db) -> String {
        let token = hq::add_store(db, &self.store, "test store").await.unwrap();
        self.register_terminal(db).await;
        token
    }

    async fn register_terminal(&self, db: &Db) {
        hq::add_terminal(
            db,
            &self.store,
            &self.id,
            &hex::encode(self.key.verifying_key().to_bytes()),
        )
        .await
        .unwrap();
    }

    /// `n` stock adjustments of this till, from seq 1, linked from genesis; `delta` varies
    /// the bodies so two chains of one till can differ.
    fn chain(&self, n: u64, delta: i64) -> Vec<Linked> {
        self.linked(
            (1..=n)
                .map(|seq| EventBody::StockAdjusted {
                    sku: Sku::parse("GRO-BRD-0012").unwrap(),
                    delta_milli: delta * i64::try_from(seq).unwrap(),
                    reason: AdjustmentReason::Received,
                    note: None,
                })
                .collect(),
        )
    }

    /// `bodies` as this till's events from seq 1, linked from genesis.
    fn linked(&self, bodies: Vec<EventBody>) -> Vec<Linked> {
        let mut prev = GENESIS;
        bodies
            .into_iter()
            .zip(1_u64..)
            .map(|(body, seq)| {
                let event = Event {
                    meta: EventMeta {
                        id: EventId::parse(&format!(
                            "01935f4e-8a2b-7c3d-8{:03x}-{seq:012x}",
                            self.index
                        ))
                        .unwrap(),
                        store: self.store.clone(),
                        terminal: self.id.clone(),
                        seq,
                        hlc: Hlc::new(1_795_476_600_000 + i64::try_from(seq).unwrap(), 0),
                    },
                    body,
                };
                let bytes = protocol::event::encode(&event);
                let hash = chain::link(&prev, &bytes);
                let linked = Linked {
                    bytes,
                    prev,
                    hash,
                    seq,
                };
                prev = hash;
                linked
            })
            .collect()
    }
}

/// The batch of `events` as `terminal` sends it, signed with `key`.
fn batch(store: &StoreId, terminal: &str, key: &SigningKey, events: &[Linked]) -> Batch {
    let (first, last) = (events.first().unwrap(), events.last().unwrap());
    Batch {
        header: BatchHeader {
            format: BATCH_FORMAT.into(),
            store: store.to_string(),
            terminal: terminal.into(),
            from_seq: first.seq,
            count: u32::try_from(events.len()).unwrap(),
            prev_hash: hex::encode(first.prev),
            head_signature: hex::encode(chain::sign(key, &last.hash)),
        },
        events: events.iter().map(|e| e.bytes.clone()).collect(),
    }
}

fn wire(batch: &Batch) -> Vec<u8> {
    protocol::sync::encode_batch(batch, 3)
}

/// What ingest changed: inbox, terminals' acknowledged links, projections.
async fn state(db: &Db) -> Vec<String> {
    let mut out = Vec::new();
    for (table, sql) in [
        (
            "inbox",
            "SELECT terminal, seq, applied FROM inbox ORDER BY terminal, seq",
        ),
        (
            "terminals",
            "SELECT id, acked_seq FROM terminals ORDER BY id",
        ),
        (
            "stock",
            "SELECT location, sku, on_hand FROM stock_levels ORDER BY location, sku",
        ),
    ] {
        let rows = sqlx::query(sql).fetch_all(&db.pool).await.unwrap();
        for row in rows {
            use sqlx::Row as _;
            let cells: Vec<String> = (0..row.len())
                .map(|i| {
                    row.try_get::<String, _>(i)
                        .or_else(|_| row.try_get::<i64, _>(i).map(|n| n.to_string()))
                        .unwrap_or_else(|_| "?".into())
                })
                .collect();
            out.push(format!("{table}: {}", cells.join(", ")));
        }
    }
    out
}

async fn parked_rows(db: &Db) -> Vec<(String, String, i64)> {
    sqlx::query_as("SELECT terminal, code, repeats FROM parked ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

/// A counter from HQ's `/metrics`.
async fn metric(router: &axum::Router, name: &str) -> u64 {
    let response = router
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(text.to_vec()).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .parse()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Item: a push is authenticated from its headers before its body is read.

async fn an_unauthenticated_push_is_refused_before_its_body_is_read(db: &Db) {
    let till = Till::new("vienna-01", "vienna-01-t1", 1);
    till.register(db).await;
    let router = router(db);
    for authorization in [None, Some("Bearer kassa_vienna-01_not-the-credential")] {
        let read = Arc::new(AtomicU64::new(0));
        let mut request = Request::post("/v1/sync/push").header("content-type", BATCH_MEDIA_TYPE);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let request = request.body(counted_body(30, read.clone())).unwrap();
        let answer = send(&router, request).await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized", None);
        assert_eq!(
            read.load(Ordering::SeqCst),
            0,
            "HQ read the body of a push without a valid credential ({authorization:?})"
        );
    }
    assert!(parked_rows(db).await.is_empty());
}

async fn an_oversized_push_is_refused_with_a_json_413_unread(db: &Db) {
    let till = Till::new("vienna-01", "vienna-01-t1", 1);
    let token = till.register(db).await;
    let router = router(db);
    let chunks = usize::try_from(MAX_PUSH_BYTES / (1024 * 1024)).unwrap() + 1;
    // Declared too large: refused before a byte is read.
    let read = Arc::new(AtomicU64::new(0));
    let request = Request::post("/v1/sync/push")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", BATCH_MEDIA_TYPE)
        .header("content-length", (chunks * 1024 * 1024).to_string())
        .body(counted_body(chunks, read.clone()))
        .unwrap();
    let answer = send(&router, request).await;
    assert_error(
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        Some("body"),
    );
    assert_eq!(read.load(Ordering::SeqCst), 0);
    // Not declared (chunked): read up to the limit and no further.
    let read = Arc::new(AtomicU64::new(0));
    let request = Request::post("/v1/sync/push")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", BATCH_MEDIA_TYPE)
        .body(counted_body(chunks + 8, read.clone()))
        .unwrap();
    let answer = send(&router, request).await;
    assert_error(
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        Some("body"),
    );
    assert!(read.load(Ordering::SeqCst) <= MAX_PUSH_BYTES + 1024 * 1024);
    assert!(parked_rows(db).await.is_empty());
    assert!(state(db).await.iter().all(|row| !row.starts_with("inbox")));
}

async fn a_push_that_is_not_a_batch_media_type_is_refused_with_a_json_415(db: &Db) {
    let till = Till::new("vienna-01", "vienna-01-t1", 1);
    let token = till.register(db).await;
    let router = router(db);
    let body = wire(&batch(
        &till.store,
        till.id.as_str(),
        &till.key,
        &till.chain(2, 1000),
    ));
    for content_type in [Some("text/plain"), Some("application/json"), None] {
        let mut request =
            Request::post("/v1/sync/push").header("authorization", format!("Bearer {token}"));
        if let Some(value) = content_type {
            request = request.header("content-type", value);
        }
        let answer = send(&router, request.body(Body::from(body.clone())).unwrap()).await;
        assert_error(
            &answer,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            Some("content-type"),
        );
    }
    assert!(state(db).await.iter().all(|row| !row.starts_with("inbox")));
    // The same body with its media type is taken.
    let (status, ack) = push(&router, &token, body).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["acked_seq"], 2);
}

async fn a_node_speaking_a_sync_protocol_hq_does_not_accept_is_told_to_upgrade_and_nothing_is_taken(
    db: &Db,
) {
    let till = Till::new("vienna-01", "vienna-01-t1", 1);
    let token = till.register(db).await;
    let router = router(db);
    let body = wire(&batch(
        &till.store,
        till.id.as_str(),
        &till.key,
        &till.chain(2, 1000),
    ));
    let speaking = |protocol: &str| {
        Request::post("/v1/sync/push")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", BATCH_MEDIA_TYPE)
            .header(protocol::sync::NODE_PROTOCOL_HEADER, protocol)
            .header(protocol::sync::NODE_VERSION_HEADER, "9.0.0")
            .body(Body::from(body.clone()))
            .unwrap()
    };
    for (spoken, says) in [
        ("99", "upgrade HQ first"),
        ("0", "upgrade the node"),
        ("one", "names no protocol"),
    ] {
        let answer = send(&router, speaking(spoken)).await;
        assert_error(
            &answer,
            StatusCode::UPGRADE_REQUIRED,
            "node_protocol_unsupported",
            None,
        );
        let message = answer.2["message"].as_str().unwrap();
        assert!(
            message.contains(says) && message.contains("kassa 9.0.0"),
            "{message}"
        );
    }
    assert!(state(db).await.iter().all(|row| !row.starts_with("inbox")));
    // HQ states what it accepts on every answer; the protocol it speaks, or none named (the
    // first releases name none), is taken.
    let (status, accepted, ack) = exchange(
        &router,
        speaking(&protocol::sync::SYNC_PROTOCOL.to_string()),
        protocol::sync::ACCEPTED_PROTOCOLS_HEADER,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(
        accepted,
        format!(
            "{}-{}",
            hq::api::OLDEST_NODE_PROTOCOL,
            protocol::sync::SYNC_PROTOCOL
        )
    );
    assert_eq!(ack["acked_seq"], 2);
}

async fn extractor_rejections_answer_the_json_error(db: &Db) {
    let till = Till::new("vienna-01", "vienna-01-t1", 1);
    let token = till.register(db).await;
    let router = router(db);
    /// Path, credential, status, code, field.
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        StatusCode,
        &'a str,
        Option<&'a str>,
    );
    let cases: [Case<'_>; 7] = [
        (
            "/v1/sync/reference?since=abc",
            Some(&token),
            StatusCode::BAD_REQUEST,
            "invalid_query",
            Some("since"),
        ),
        (
            "/v1/reports/sales?store=a&store=b",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_query",
            Some("store"),
        ),
        (
            "/v1/stock?sku=a&sku=b",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_query",
            Some("sku"),
        ),
        (
            "/v1/stored-value/%FF%FE",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_path",
            Some("number"),
        ),
        (
            "/v1/sync/stored-value/%FF%FE",
            Some(&token),
            StatusCode::BAD_REQUEST,
            "invalid_path",
            Some("number"),
        ),
        (
            "/v1/no-such-thing",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            "/v1/stored-value/not-a-number",
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_number",
            Some("number"),
        ),
    ];
    for (path, token, status, code, field) in cases {
        let request = Request::get(path).header(
            "authorization",
            format!("Bearer {}", token.unwrap_or(READ_TOKEN)),
        );
        let answer = send(&router, request.body(Body::empty()).unwrap()).await;
        assert_error(&answer, status, code, field);
    }
    let request = Request::delete("/v1/terminals")
        .body(Body::empty())
        .unwrap();
    let answer = send(&router, request).await;
    assert_error(
        &answer,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        None,
    );
    // A negative `since` still asks for a snapshot, as documented.
    let response = router
        .clone()
        .oneshot(
            Request::get("/v1/sync/reference?since=-5")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn the_sales_report_refuses_dates_that_are_not_dates(db: &Db) {
    let router = router(db);
    for (query, field, code) in [
        ("from=2026-13-01", "from", "invalid_date"),
        ("from=2026-02-30", "from", "invalid_date"),
        ("to=yesterday", "to", "invalid_date"),
        ("to=2026-1-1", "to", "invalid_date"),
        ("from=20260101", "from", "invalid_date"),
        ("from=2026-01-01T00:00:00", "from", "invalid_date"),
        ("from=2026-03-01&to=2026-02-28", "to", "invalid_range"),
        ("format=xml", "format", "invalid_format"),
        (
            "breakdown?from=2026-02-30&dimension=hour",
            "from",
            "invalid_date",
        ),
        (
            "breakdown?dimension=weekday",
            "dimension",
            "invalid_dimension",
        ),
        ("breakdown?", "dimension", "invalid_dimension"),
        (
            "breakdown?dimension=tender&format=pdf",
            "format",
            "invalid_format",
        ),
        (
            "shifts?from=2026-03-01&to=2026-02-28",
            "to",
            "invalid_range",
        ),
    ] {
        // `breakdown?…` and `shifts?…` are the other reports; a bare query is the sales report's.
        let path = if query.contains('?') {
            query.to_owned()
        } else {
            format!("sales?{query}")
        };
        let answer = send(
            &router,
            Request::get(format!("/v1/reports/{path}"))
                .header("authorization", format!("Bearer {READ_TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_error(&answer, StatusCode::BAD_REQUEST, code, Some(field));
    }
    for query in [
        "",
        "from=2026-02-28&to=2026-02-28",
        "from=&to=",
        "store=vienna-01&from=2024-02-29",
    ] {
        let (status, body) = get(
            &router,
            &format!("/v1/reports/sales?{query}"),
            Some(READ_TOKEN),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert!(body["days"].is_array());
    }
    // An export is a privileged read; the JSON report is not recorded.
    let exports = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT target FROM audit_log WHERE action = 'report.export' ORDER BY id",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap()
    };
    assert!(exports().await.is_empty());
    for path in [
        "sales?format=csv&from=2026-02-01",
        "breakdown?dimension=tender&format=csv",
        "shifts?format=csv",
    ] {
        let answer = send(
            &router,
            Request::get(format!("/v1/reports/{path}"))
                .header("authorization", format!("Bearer {READ_TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(answer.0, StatusCode::OK, "{path}");
    }
    assert_eq!(
        exports().await,
        ["report:sales", "report:tender", "report:shifts"]
    );
    for (path, field) in [
        ("breakdown?dimension=hour&store=vienna-01", "rows"),
        ("breakdown?dimension=cashier&from=2026-02-28", "rows"),
        ("shifts?to=2026-02-28", "shifts"),
    ] {
        let (status, body) = get(&router, &format!("/v1/reports/{path}"), Some(READ_TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(body[field].is_array(), "{path}: {body}");
    }
}

// ---------------------------------------------------------------------------------------------
// Item: an authenticated store cannot grow the parked list without bound.

async fn repeated_refusals_are_parked_once_and_parked_records_are_capped(db: &Db) {
    let till = Till::new("vienna-01", "vienna-01-t1", 1);
    let token = till.register(db).await;
    // Registered with another till's key: every batch of t2 fails verification.
    let liar = Till::new("vienna-01", "vienna-01-t2", 2);
    let other = Till::new("vienna-01", "vienna-01-t2", 3);
    other.register_terminal(db).await;
    let router = router(db);
    let before = state(db).await;

    // The same refused batch sent 50 times is one record seen 50 times.
    let body = wire(&batch(
        &liar.store,
        liar.id.as_str(),
        &liar.key,
        &liar.chain(3, 1000),
    ));
    let mut ids = Vec::new();
    for _ in 0..50 {
        let (status, answer) = push(&router, &token, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["code"], "batch_rejected");
        ids.push(answer["parked"].as_i64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one record for one repeated refusal: {ids:?}");
    assert_eq!(
        parked_rows(db).await,
        [("vienna-01-t2".to_owned(), "batch_rejected".to_owned(), 50)]
    );
    let (_, listed) = get(&router, "/v1/parked", Some(READ_TOKEN)).await;
    assert_eq!(listed["parked"][0]["repeats"], 50, "{listed}");
    assert!(
        listed["parked"][0]["last_ms"].as_i64().unwrap()
            >= listed["parked"][0]["received_ms"].as_i64().unwrap()
    );

    // Growing batches of the same terminal with the same reason are the same refusal too.
    for n in 4..=10 {
        let body = wire(&batch(
            &liar.store,
            liar.id.as_str(),
            &liar.key,
            &liar.chain(n, 1000),
        ));
        assert_eq!(
            push(&router, &token, body).await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    assert_eq!(parked_rows(db).await.len(), 1);

    // 100 different bodies that are not zstd: one refusal (same reason), one record.
    let unrecorded = metric(&router, "kassa_hq_parked_unrecorded_total").await;
    let mut rng = Rng(0x5EED_0001);
    for i in 0..100_u64 {
        let mut garbage = vec![0_u8; 64];
        garbage.iter_mut().for_each(|b| *b = rng.byte());
        garbage[..8].copy_from_slice(&i.to_le_bytes());
        let (status, answer) = push(&router, &token, garbage).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    }
    let rows = parked_rows(db).await;
    assert_eq!(
        rows[1],
        ("?".to_owned(), "batch_unreadable".to_owned(), 100)
    );
    // 100 unreadable batches with 100 different reasons: at most PARKED_PER_TERMINAL records
    // under `?`, the rest counted.
    for i in 0..100 {
        let mut odd = batch(
            &liar.store,
            liar.id.as_str(),
            &liar.key,
            &liar.chain(1, 1000),
        );
        odd.header.format = format!("kassa-batch/{}", i + 2);
        let (status, answer) = push(&router, &token, wire(&odd)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    }
    let cap = usize::try_from(hq::api::PARKED_PER_TERMINAL).unwrap();
    let rows = parked_rows(db).await;
    let unreadable = rows.iter().filter(|(t, _, _)| t == "?").count();
    assert_eq!(unreadable, cap, "{rows:?}");
    assert_eq!(
        metric(&router, "kassa_hq_parked_unrecorded_total").await - unrecorded,
        u64::try_from(100 - (cap - 1)).unwrap()
    );

    // Batches naming 400 made-up terminals: the store's records stop at PARKED_PER_STORE.
    for i in 0..400 {
        let name = format!("vienna-01-x{i}");
        let body = wire(&batch(&liar.store, &name, &liar.key, &liar.chain(1, 1000)));
        let (status, answer) = push(&router, &token, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        assert_eq!(answer["code"], "terminal_not_registered");
    }
    let rows = parked_rows(db).await;
    assert_eq!(
        rows.len(),
        usize::try_from(hq::api::PARKED_PER_STORE).unwrap(),
        "parked records of one store"
    );
    // A refusal beyond the cap says so: no record id.
    let body = wire(&batch(
        &liar.store,
        "vienna-01-x999",
        &liar.key,
        &liar.chain(1, 1000),
    ));
    let (status, answer) = push(&router, &token, body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(answer["parked"].is_null(), "{answer}");
    // Recorded: t2's one record, `?`'s capped records, then made-up terminals up to the
    // store's cap; everything else was counted instead.
    let recorded_made_up = hq::api::PARKED_PER_STORE - 1 - hq::api::PARKED_PER_TERMINAL;
    let expected = (100 - (hq::api::PARKED_PER_TERMINAL - 1)) + (401 - recorded_made_up);
    assert_eq!(
        metric(&router, "kassa_hq_parked_unrecorded_total").await - unrecorded,
        u64::try_from(expected).unwrap()
    );
    assert_eq!(
        state(db).await,
        before,
        "a refused batch changed what HQ holds"
    );

    // The store's good terminal still pushes.
    let body = wire(&batch(
        &till.store,
        till.id.as_str(),
        &till.key,
        &till.chain(3, 1000),
    ));
    let (status, ack) = push(&router, &token, body).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["acked_seq"], 3);
}

// ---------------------------------------------------------------------------------------------
// Item: a small fuzzer for sync batches.

/// The xorshift of `test_support::Rng` (which `hq` may not depend on): replayable by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap()).unwrap()
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

/// Mutated batches per run.
const FUZZ_CASES: usize = 300;

/// `KASSA_TEST_SEED` replays a run; the default seed is fixed so CI is reproducible.
fn fuzz_seed() -> u64 {
    std::env::var("KASSA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x4B41_5353_4131_3300)
}

async fn fuzzed_batches_are_never_applied(db: &Db) {
    let till = Till::new("vienna-01", "vienna-01-t1", 1);
    let token = till.register(db).await;
    // Another till of the same store, and one of another store.
    let sibling = Till::new("vienna-01", "vienna-01-t2", 2);
    sibling.register_terminal(db).await;
    let foreign = Till::new("graz-01", "graz-01-t1", 3);
    foreign.register(db).await;
    let router = router(db);

    // HQ holds events 1–3; the fuzzer works on the batch of 4–6 and on rewrites of 1–3.
    let events = till.chain(6, 1000);
    let (status, ack) = push(
        &router,
        &token,
        wire(&batch(
            &till.store,
            till.id.as_str(),
            &till.key,
            &events[..3],
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    let next = batch(&till.store, till.id.as_str(), &till.key, &events[3..]);
    let next_wire = wire(&next);
    let next_text = zstd::decode_all(next_wire.as_slice()).unwrap();
    let before = state(db).await;

    let seed = fuzz_seed();
    let mut rng = Rng(seed);
    let mut seen = std::collections::BTreeMap::<u16, usize>::new();
    for case in 0..FUZZ_CASES {
        let kind = case % 7;
        let body = match kind {
            // Flipped bytes of the compressed batch.
            0 => {
                let mut body = next_wire.clone();
                for _ in 0..=rng.below(8) {
                    let at = rng.below(body.len());
                    body[at] ^= rng.byte() | 1;
                }
                body
            }
            // Truncated.
            1 => next_wire[..rng.below(next_wire.len())].to_vec(),
            // Content altered, then compressed again (at another level).
            2 => {
                let mut text = next_text.clone();
                for _ in 0..=rng.below(4) {
                    let at = rng.below(text.len());
                    text[at] = match rng.below(3) {
                        0 => rng.byte(),
                        1 => b"0123456789abcdef\"{}:,\n"[rng.below(22)],
                        _ => text[at].wrapping_add(1),
                    };
                }
                if text == next_text {
                    text.push(b'x');
                }
                // A change the verifier cannot see (say, a hex digit's case) leaves the same
                // events under the same signature: not a forgery, so not a case.
                let same =
                    protocol::sync::decode_batch(&zstd::encode_all(text.as_slice(), 1).unwrap())
                        .ok()
                        .is_some_and(|b| b.events == next.events);
                if same {
                    continue;
                }
                zstd::encode_all(text.as_slice(), i32::try_from(1 + rng.below(19)).unwrap())
                    .unwrap()
            }
            // Signed with the sibling's key, or the foreign till's.
            3 => {
                let key = if rng.below(2) == 0 {
                    &sibling.key
                } else {
                    &foreign.key
                };
                wire(&batch(&till.store, till.id.as_str(), key, &events[3..]))
            }
            // The right events under another terminal's name (of this store, of another store,
            // or no terminal at all), signed with that terminal's key.
            4 => {
                let (name, key) = match rng.below(3) {
                    0 => (sibling.id.as_str(), &sibling.key),
                    1 => (foreign.id.as_str(), &foreign.key),
                    _ => ("", &till.key),
                };
                wire(&batch(&till.store, name, key, &events[3..]))
            }
            // The header's store or sequence rewritten, signature intact.
            5 => {
                let mut altered = next.clone();
                match rng.below(3) {
                    0 => altered.header.store = "graz-01".into(),
                    1 => altered.header.from_seq = u64::try_from(rng.below(10)).unwrap() + 7,
                    _ => altered.header.prev_hash = hex::encode([rng.byte(); 32]),
                }
                wire(&altered)
            }
            // Events 1–3 rewritten and re-signed with the till's own key: a conflict with what
            // HQ holds, never a merge.
            _ => {
                let rewritten = till.chain(3, 1000 + i64::try_from(rng.below(50)).unwrap() + 1);
                wire(&batch(&till.store, till.id.as_str(), &till.key, &rewritten))
            }
        };
        let (status, answer) = push(&router, &token, body).await;
        assert!(
            status.is_client_error()
                && [403, 409, 422].contains(&status.as_u16())
                && answer["code"].is_string(),
            "seed {seed}, case {case} (kind {kind}): {status} {answer}"
        );
        *seen.entry(status.as_u16()).or_default() += 1;
        assert_eq!(
            state(db).await,
            before,
            "seed {seed}, case {case} (kind {kind}) changed HQ"
        );
    }
    assert!(seen.len() == 3, "every refusal was exercised: {seen:?}");
    // The refusals were parked, but no terminal holds more records than HQ keeps.
    let parked = parked_rows(db).await;
    let mut per_terminal = std::collections::BTreeMap::<&str, i64>::new();
    for (terminal, _, _) in &parked {
        *per_terminal.entry(terminal).or_default() += 1;
    }
    assert!(
        !parked.is_empty()
            && per_terminal
                .values()
                .all(|n| *n <= hq::api::PARKED_PER_TERMINAL),
        "parked records per terminal: {per_terminal:?}"
    );
    // HQ still takes the real batch.
    let (status, ack) = push(&router, &token, next_wire).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["acked_seq"], 6);
    assert_eq!(ack["accepted"], 3);
}

/// `GET path` with a bearer token, the whole answer.
async fn get_with(router: &axum::Router, path: &str, token: &str) -> (StatusCode, String, Value) {
    let request = Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    send(router, request).await
}

/// A key reads what its scopes allow and nothing else, whether or not HQ has a read-API token;
/// a key nobody made, and one revoked on another HQ process, are refused at once.
async fn api_keys_read_what_their_scopes_allow_and_a_revoked_key_is_refused_at_once(db: &Db) {
    use hq::identity::{Actor, Scope, create_api_key, revoke_api_key};
    let now = jiff::Timestamp::now().as_millisecond();
    let open = router(db);
    let closed = hq::api::router(Arc::new(hq::api::Hq::new(
        db.clone(),
        Some("operator-token".into()),
    )));
    let key = create_api_key(db, &Actor::Cli, "stock feed", &[Scope::StockRead], now)
        .await
        .unwrap();
    for r in [&open, &closed] {
        let (status, _, body) = get_with(r, "/v1/stock", &key.secret).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _, body) = get_with(r, "/v1/exceptions/negative-stock", &key.secret).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for path in [
            "/v1/reports/sales?store=vienna-01",
            "/v1/terminals",
            "/v1/cards/pending",
        ] {
            let answer = get_with(r, path, &key.secret).await;
            assert_error(&answer, StatusCode::FORBIDDEN, "missing_scope", None);
        }
        let made_up = format!(
            "{}key-000000000000_{}",
            hq::identity::KEY_PREFIX,
            "0".repeat(64)
        );
        let answer = get_with(r, "/v1/stock", &made_up).await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized", None);
    }
    let (status, _) = get(&closed, "/v1/stock", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Revoked through the database (as by `kassa hq api-key revoke` or another HQ process):
    // both routers refuse it on the next request.
    revoke_api_key(db, &Actor::Cli, &key.key.id, now)
        .await
        .unwrap();
    for r in [&open, &closed] {
        let answer = get_with(r, "/v1/stock", &key.secret).await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized", None);
    }
}

/// A request with a session cookie (and a CSRF token, when given).
fn with_session(method: &str, path: &str, cookie: &str, csrf: Option<&str>) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(path).header(
        "cookie",
        format!("theme=dark; {}={cookie}", hq::sessions::COOKIE),
    );
    if let Some(csrf) = csrf {
        request = request.header(hq::sessions::CSRF_HEADER, csrf);
    }
    request.body(Body::empty()).unwrap()
}

/// Signs `name` in; the session cookie's value and the answer.
async fn sign_in(router: &axum::Router, name: &str, password: &str) -> (StatusCode, String, Value) {
    let request = Request::post("/v1/session")
        .header("content-type", "application/json")
        .body(Body::from(
            serde_json::json!({"name": name, "password": password}).to_string(),
        ))
        .unwrap();
    exchange(router, request, "set-cookie").await
}

/// The value of a `Set-Cookie` header.
fn cookie_value(set_cookie: &str) -> String {
    let (name_value, _) = set_cookie.split_once(';').unwrap();
    name_value.split_once('=').unwrap().1.to_owned()
}

/// People sign in with a cookie HQ keeps only the hash of; each reads what their role allows
/// (a store manager only the stores they run); a sign-out needs the session's CSRF token, ends
/// the session at once, and sign-out everywhere ends the user's other sessions too. A wrong
/// password and a malformed body are refused by name.
async fn people_sign_in_read_what_their_role_and_stores_allow_and_sign_out_with_the_csrf_token(
    db: &Db,
) {
    use hq::identity::{Actor, NewUser, Role, add_user};
    let now = jiff::Timestamp::now().as_millisecond();
    for store in ["vienna-01", "graz-01"] {
        hq::add_store(db, &StoreId::parse(store).unwrap(), store)
            .await
            .unwrap();
    }
    for (name, role, stores) in [
        ("anna", Role::Merchandiser, vec![]),
        ("maria", Role::StoreManager, vec!["vienna-01".to_owned()]),
        ("fritz", Role::Finance, vec![]),
    ] {
        let user = NewUser {
            name: name.into(),
            display_name: name.into(),
            role,
            stores,
            password: "correct horse battery".into(),
        };
        add_user(db, &user, &Actor::Cli, now).await.unwrap();
    }
    let r = router(db);

    let (status, cookie, body) = sign_in(&r, "anna", "wrong horse battery").await;
    assert_eq!(
        (status, cookie.as_str()),
        (StatusCode::UNAUTHORIZED, ""),
        "{body}"
    );
    assert_eq!(body["code"], "wrong_password");
    let bad = Request::post("/v1/session")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"name": "anna"}"#))
        .unwrap();
    assert_error(
        &send(&r, bad).await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
        Some("password"),
    );

    let (status, set_cookie, anna) = sign_in(&r, "anna", "correct horse battery").await;
    assert_eq!(status, StatusCode::OK, "{anna}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    // Reached over HTTPS (a TLS proxy in front), the cookie is never sent over plain HTTP.
    let behind_tls = hq::api::router(Arc::new(
        hq::api::Hq::new(db.clone(), Some(READ_TOKEN.into())).with_secure_cookies(true),
    ));
    let (_, secure_cookie, secure) = sign_in(&behind_tls, "anna", "correct horse battery").await;
    assert!(secure_cookie.ends_with("; Secure"), "{secure_cookie}");
    let (status, ended, _) = exchange(
        &behind_tls,
        with_session(
            "DELETE",
            "/v1/session",
            &cookie_value(&secure_cookie),
            secure["csrf"].as_str(),
        ),
        "set-cookie",
    )
    .await;
    assert!(status.is_success(), "{status}");
    assert!(
        ended.ends_with("; Secure"),
        "the cookie cleared as it was set: {ended}"
    );
    assert_eq!(anna["role"], "merchandiser");
    let token = cookie_value(&set_cookie);
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM sessions")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert!(
        !stored.contains(&token),
        "HQ keeps only the hash of the cookie"
    );
    let (status, _, me) = send(&r, with_session("GET", "/v1/session", &token, None)).await;
    assert_eq!(
        (status, &me["name"]),
        (StatusCode::OK, &Value::from("anna"))
    );
    let (status, _, _) = send(&r, with_session("GET", "/v1/stock", &token, None)).await;
    assert_eq!(status, StatusCode::OK);
    let answer = send(&r, with_session("GET", "/v1/reports/sales", &token, None)).await;
    assert_error(&answer, StatusCode::FORBIDDEN, "missing_scope", None);

    // A store manager reads their store, never another or all of them.
    let (_, maria_cookie, _) = sign_in(&r, "maria", "correct horse battery").await;
    let maria = cookie_value(&maria_cookie);
    let (status, _, _) = send(
        &r,
        with_session("GET", "/v1/reports/sales?store=vienna-01", &maria, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/v1/reports/sales?store=graz-01",
        "/v1/reports/sales",
        "/v1/reports/breakdown?dimension=tender&store=graz-01",
        "/v1/reports/breakdown?dimension=hour",
        "/v1/reports/shifts?store=graz-01&format=csv",
        "/v1/stock?location=graz-01",
        "/v1/stock",
        "/v1/reports/stored-value",
    ] {
        let answer = send(&r, with_session("GET", path, &maria, None)).await;
        assert_error(&answer, StatusCode::FORBIDDEN, "store_not_yours", None);
    }

    // Signing out needs the CSRF token; without it (or with another session's) nothing ends.
    let answer = send(&r, with_session("DELETE", "/v1/session", &token, None)).await;
    assert_error(&answer, StatusCode::FORBIDDEN, "csrf", None);
    let csrf = anna["csrf"].as_str().unwrap();
    let (_, second_cookie, second) = sign_in(&r, "anna", "correct horse battery").await;
    let second_token = cookie_value(&second_cookie);
    let foreign = second["csrf"].as_str().unwrap();
    let answer = send(
        &r,
        with_session("DELETE", "/v1/session", &token, Some(foreign)),
    )
    .await;
    assert_error(&answer, StatusCode::FORBIDDEN, "csrf", None);
    let (status, _, _) = send(&r, with_session("GET", "/v1/stock", &token, None)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = send(
        &r,
        with_session("DELETE", "/v1/session", &token, Some(csrf)),
    )
    .await;
    assert_eq!(
        (status, &body["sessions_ended"]),
        (StatusCode::OK, &Value::from(1))
    );
    let answer = send(&r, with_session("GET", "/v1/stock", &token, None)).await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized", None);
    let (status, _, _) = send(&r, with_session("GET", "/v1/stock", &second_token, None)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another session of the same person goes on"
    );

    // Everywhere: every session of the user ends.
    let (_, third_cookie, _) = sign_in(&r, "anna", "correct horse battery").await;
    let third = cookie_value(&third_cookie);
    let (status, _, body) = send(
        &r,
        with_session(
            "POST",
            "/v1/session/sign-out-everywhere",
            &second_token,
            Some(foreign),
        ),
    )
    .await;
    assert_eq!(
        (status, &body["sessions_ended"]),
        (StatusCode::OK, &Value::from(2))
    );
    for gone in [&second_token, &third] {
        let answer = send(&r, with_session("GET", "/v1/stock", gone, None)).await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized", None);
    }
    let log = hq::identity::audit_log(db, Some("user:anna"), None, 50)
        .await
        .unwrap();
    let actions: Vec<&str> = log.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "sign-in.refused",
            "sign-in",
            // Signed in and out again behind TLS.
            "sign-in",
            "sign-out",
            // A read of another store, refused.
            "access.refused",
            "sign-in",
            "sign-out",
            "sign-in",
            "sign-out.everywhere"
        ]
    );
}

/// The audit log over HTTP: an auditor pages and filters it and exports it as CSV, a key with
/// `audit:read` reads it, a merchandiser may not; bad parameters are refused by name; every read
/// that answers is itself a line of the log.
async fn the_audit_log_is_read_filtered_and_exported_and_each_read_is_recorded(db: &Db) {
    use hq::identity::{Actor, NewUser, Role, Scope, add_user, create_api_key};
    let now = jiff::Timestamp::now().as_millisecond();
    for (name, role) in [("olga", Role::Auditor), ("anna", Role::Merchandiser)] {
        let user = NewUser {
            name: name.into(),
            display_name: name.into(),
            role,
            stores: vec![],
            password: "correct horse battery".into(),
        };
        add_user(db, &user, &Actor::Cli, now).await.unwrap();
    }
    let r = router(db);
    let (_, anna_cookie, _) = sign_in(&r, "anna", "correct horse battery").await;
    let (_, olga_cookie, _) = sign_in(&r, "olga", "correct horse battery").await;
    let (anna, olga) = (cookie_value(&anna_cookie), cookie_value(&olga_cookie));

    let answer = send(&r, with_session("GET", "/v1/audit-log", &anna, None)).await;
    assert_error(&answer, StatusCode::FORBIDDEN, "missing_scope", None);
    let (status, _, all) = send(&r, with_session("GET", "/v1/audit-log", &olga, None)).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let actions: Vec<&str> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "access.refused",
            "sign-in",
            "sign-in",
            "user.add",
            "user.add"
        ],
        "newest first (anna's refused read first)"
    );
    let (_, _, page) = send(
        &r,
        with_session(
            "GET",
            "/v1/audit-log?action=sign-in&actor=user:anna",
            &olga,
            None,
        ),
    )
    .await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{page}");
    assert_eq!(entries[0]["target"], "user:anna");
    let (_, _, first) = send(
        &r,
        with_session("GET", "/v1/audit-log?limit=2", &olga, None),
    )
    .await;
    let before = first["before_next"].as_i64().unwrap();
    let (_, _, rest) = send(
        &r,
        with_session(
            "GET",
            &format!("/v1/audit-log?limit=2&before={before}"),
            &olga,
            None,
        ),
    )
    .await;
    assert!(
        rest["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["id"].as_i64().unwrap() < before),
        "{rest}"
    );
    for (path, field) in [
        ("/v1/audit-log?limit=0", "limit"),
        ("/v1/audit-log?limit=5000", "limit"),
        ("/v1/audit-log?format=xml", "format"),
        ("/v1/audit-log?from_ms=yesterday", "from_ms"),
    ] {
        let answer = send(&r, with_session("GET", path, &olga, None)).await;
        assert_error(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_query",
            Some(field),
        );
    }

    let response = r
        .clone()
        .oneshot(with_session(
            "GET",
            "/v1/audit-log?format=csv&actor=user:anna",
            &olga,
            None,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("id,at,at_ms,actor,source,action,target,before,after"),
        "{text}"
    );
    assert_eq!(
        lines.len(),
        1 + 2,
        "anna's sign-in and her refused read (which read nothing): {text}"
    );

    let key = create_api_key(db, &Actor::Cli, "SIEM", &[Scope::AuditRead], now)
        .await
        .unwrap();
    let (status, _, _) = get_with(&r, "/v1/audit-log", &key.secret).await;
    assert_eq!(status, StatusCode::OK);
    let reads = hq::identity::audit_log(db, None, None, 100).await.unwrap();
    let by = |actor: &str, action: &str| {
        reads
            .iter()
            .filter(|e| e.actor == actor && e.action == action)
            .count()
    };
    assert_eq!(by("user:olga", "audit.read"), 4, "every read that answered");
    assert_eq!(by("user:olga", "audit.export"), 1);
    assert_eq!(by(&format!("key:{}", key.key.id), "audit.read"), 1);
}

// ---------------------------------------------------------------------------------------------
// The write API

const PEPPER: &[u8] = b"kassa test pepper";

/// The demo chain published, and an API key that may write the catalog.
async fn catalog_writer(db: &Db) -> String {
    use hq::identity::{Actor, Scope, create_api_key};
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/demo/seed.json");
    let seed = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    hq::refdata::publish(db, &seed, PEPPER).await.unwrap();
    let now = jiff::Timestamp::now().as_millisecond();
    create_api_key(
        db,
        &Actor::Cli,
        "merchandising system",
        &[Scope::CatalogRead, Scope::CatalogWrite],
        now,
    )
    .await
    .unwrap()
    .secret
}

/// A JSON request with `headers`.
fn json_request(method: &str, path: &str, headers: &[(&str, &str)], body: &Value) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::from(body.to_string())).unwrap()
}

/// Sends `request`: status, `ETag`, body.
async fn call(router: &axum::Router, request: Request<Body>) -> (StatusCode, String, Value) {
    exchange(router, request, "etag").await
}

async fn reference_version(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT version FROM ref_meta WHERE singleton = 1")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

async fn audit_actions(db: &Db) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

/// A variant is created, read with its version as the ETag, and edited with `If-Match`; an
/// edit without it is `428`, one based on an older version is `409` naming what changed since
/// and writes nothing; bad fields are refused by name; each change is a new reference version
/// and a line of the audit log.
async fn a_variant_is_created_and_edited_with_if_match_and_a_stale_edit_is_told_what_changed(
    db: &Db,
) {
    let key = catalog_writer(db).await;
    let r = router(db);
    let auth = format!("Bearer {key}");
    let auth = [("authorization", auth.as_str())];
    let variant = serde_json::json!({
        "product_id": "P-TEA",
        "product_name": "Green tea",
        "variant": {
            "sku": "GRO-TEA-0001",
            "name": "Green tea 20 bags",
            "identifiers": [{"gtin": "4006381333931"}],
            "tax": "reduced",
            "unit": "each",
            "channels": "all"
        }
    });
    let start = reference_version(db).await;
    let (status, etag, body) = call(
        &r,
        json_request("PUT", "/v1/variants/GRO-TEA-0001", &auth, &variant),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], start + 1);
    assert_eq!(etag, format!("\"{}\"", start + 1));
    let (status, read_etag, read) = call(
        &r,
        json_request("GET", "/v1/variants/GRO-TEA-0001", &auth, &Value::Null),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read_etag, etag);
    assert_eq!(read["variant"], variant);

    // Bad fields, each refused by its name, nothing written.
    let mut bad_gtin = variant.clone();
    bad_gtin["variant"]["identifiers"][0]["gtin"] = "4006381333932".into();
    let mut bad_tax = variant.clone();
    bad_tax["variant"]["tax"] = "luxury".into();
    let mut taken = variant.clone();
    taken["variant"]["identifiers"] = serde_json::json!([{"plu": "10001"}]);
    let mut other_sku = variant.clone();
    other_sku["variant"]["sku"] = "GRO-TEA-0002".into();
    let mut unknown = variant.clone();
    unknown["variant"]["colour"] = "green".into();
    let if_match = [auth[0], ("if-match", etag.as_str())];
    for (body, status, code, field) in [
        (
            &bad_gtin,
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "variant.identifiers[0]",
        ),
        (
            &bad_tax,
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "variant.tax",
        ),
        (
            &taken,
            StatusCode::CONFLICT,
            "identifier_taken",
            "variant.identifiers[0]",
        ),
        (
            &other_sku,
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "variant.sku",
        ),
        (&unknown, StatusCode::BAD_REQUEST, "invalid_body", "variant"),
    ] {
        let answer = send(
            &r,
            json_request("PUT", "/v1/variants/GRO-TEA-0001", &if_match, body),
        )
        .await;
        assert_error(&answer, status, code, None);
        assert!(
            answer.2["field"].as_str().unwrap().starts_with(field),
            "{}",
            answer.2
        );
    }
    assert_eq!(
        reference_version(db).await,
        start + 1,
        "a refusal writes nothing"
    );

    // An edit needs the version it was read at.
    let mut renamed = variant.clone();
    renamed["variant"]["name"] = "Green tea, 20 bags".into();
    let answer = send(
        &r,
        json_request("PUT", "/v1/variants/GRO-TEA-0001", &auth, &renamed),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::PRECONDITION_REQUIRED,
        "if_match_required",
        Some("if-match"),
    );
    let (status, second_etag, body) = call(
        &r,
        json_request("PUT", "/v1/variants/GRO-TEA-0001", &if_match, &renamed),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(second_etag, etag);

    // Someone who read the first version and changes the product name is told what changed.
    let mut other_edit = variant.clone();
    other_edit["product_name"] = "Tea".into();
    let (status, _, stale) = call(
        &r,
        json_request("PUT", "/v1/variants/GRO-TEA-0001", &if_match, &other_edit),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{stale}");
    assert_eq!(stale["code"], "stale");
    assert_eq!(stale["field"], "if-match");
    assert_eq!(stale["changed"], serde_json::json!(["variant.name"]));
    assert_eq!(stale["current"], renamed);
    assert_eq!(stale["version"], start + 2);
    let (_, _, read) = call(
        &r,
        json_request("GET", "/v1/variants/GRO-TEA-0001", &auth, &Value::Null),
    )
    .await;
    assert_eq!(read["variant"], renamed, "the stale write changed nothing");

    // The same body again changes nothing and makes no version.
    let again = [auth[0], ("if-match", second_etag.as_str())];
    let (status, _, _) = call(
        &r,
        json_request("PUT", "/v1/variants/GRO-TEA-0001", &again, &renamed),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reference_version(db).await, start + 2);

    // A store pulls the variant as any other reference change.
    let update = hq::refdata::changes_since(db, "vienna-01", start)
        .await
        .unwrap();
    assert!(update.entities.iter().any(|e| e.kind == "variant"
        && e.key == "GRO-TEA-0001"
        && e.payload.as_ref() == Some(&renamed)));
    let actions = audit_actions(db).await;
    let writes: Vec<&String> = actions
        .iter()
        .filter(|a| a.starts_with("variant."))
        .collect();
    assert_eq!(writes, ["variant.create", "variant.update"]);
}

/// A chain-wide price change given in the stores' local time is previewed per store (a store
/// with its own price keeps it), scheduled as a price entry from that instant that stores pull,
/// refused at an instant already taken or in the past, and cancelled, which gives back the
/// entries it cut; a change already in effect is not cancelled. A store's own change goes to
/// its store book.
async fn price_changes_are_previewed_scheduled_and_cancelled_and_reach_the_stores_reference(
    db: &Db,
) {
    let key = catalog_writer(db).await;
    let r = router(db);
    let auth = format!("Bearer {key}");
    let auth = [("authorization", auth.as_str())];
    let entries = |db: &Db, key: &'static str| {
        let db = db.clone();
        async move {
            let payload: String = sqlx::query_scalar(
                "SELECT payload FROM ref_entities WHERE kind = 'prices' AND key = $1",
            )
            .bind(key)
            .fetch_one(&db.pool)
            .await
            .unwrap();
            serde_json::from_str::<Value>(&payload).unwrap()["entries"].clone()
        }
    };
    let original = entries(db, "chain-eur|GRO-DAI-0030").await;
    let ask = serde_json::json!({
        "sku": "GRO-DAI-0030",
        "price": "0.59",
        "effective": "2031-03-01T06:00",
        "currency": "EUR"
    });
    let start = reference_version(db).await;
    let (status, _, preview) = call(
        &r,
        json_request("POST", "/v1/price-changes?dry_run=true", &auth, &ask),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(
        reference_version(db).await,
        start,
        "a preview writes nothing"
    );
    let change = &preview["change"];
    // 06:00 in Vienna on 1 March is 05:00 UTC.
    assert_eq!(change["effective"], "2031-03-01T05:00:00Z");
    assert_eq!(change["time_zone"], "Europe/Vienna");
    let stores: Vec<(String, Value, Value)> = change["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["store"].as_str().unwrap().to_owned(),
                s["price_before"].clone(),
                s["price_after"].clone(),
            )
        })
        .collect();
    assert_eq!(
        stores,
        [
            (
                "graz-01".to_owned(),
                Value::from("0.69"),
                Value::from("0.69")
            ),
            (
                "vienna-01".to_owned(),
                original[0]["price"].clone(),
                Value::from("0.59")
            ),
        ],
        "graz-01 keeps its own price; zurich-01 trades in CHF"
    );

    let (status, _, scheduled) =
        call(&r, json_request("POST", "/v1/price-changes", &auth, &ask)).await;
    assert_eq!(status, StatusCode::CREATED, "{scheduled}");
    assert_eq!(scheduled["status"], "scheduled");
    assert_eq!(scheduled["version"], start + 1);
    let id = scheduled["id"].as_str().unwrap().to_owned();
    let after = entries(db, "chain-eur|GRO-DAI-0030").await;
    assert_eq!(after.as_array().unwrap().len(), 2, "{after}");
    assert_eq!(after[0]["to"], "2031-03-01T05:00:00Z");
    assert_eq!(
        after[1],
        serde_json::json!({"sku": "GRO-DAI-0030", "price": "0.59", "from": "2031-03-01T05:00:00Z", "to": null})
    );
    let update = hq::refdata::changes_since(db, "vienna-01", start)
        .await
        .unwrap();
    assert_eq!(update.entities.len(), 1);
    assert_eq!(update.entities[0].key, "chain-eur|GRO-DAI-0030");
    let update = hq::refdata::changes_since(db, "zurich-01", start)
        .await
        .unwrap();
    assert!(
        update.entities.is_empty(),
        "a CHF store does not get a EUR price"
    );

    // The same instant again, or one in the past, is refused and writes nothing.
    let answer = send(&r, json_request("POST", "/v1/price-changes", &auth, &ask)).await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "change_at_that_instant",
        Some("effective"),
    );
    let mut past = ask.clone();
    past["effective"] = "2020-01-01T00:00:00Z".into();
    assert_error(
        &send(&r, json_request("POST", "/v1/price-changes", &auth, &past)).await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
        Some("effective"),
    );
    for (field, value) in [
        ("price", "0,59"),
        ("sku", "NOPE-0001"),
        ("currency", "USD"),
        ("effective", "tomorrow"),
    ] {
        let mut bad = ask.clone();
        bad[field] = value.into();
        assert_error(
            &send(&r, json_request("POST", "/v1/price-changes", &auth, &bad)).await,
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some(field),
        );
    }
    let mut two_zones = ask.clone();
    two_zones.as_object_mut().unwrap().remove("currency");
    two_zones["sku"] = "GRO-BRD-0001".into();
    assert_error(
        &send(
            &r,
            json_request("POST", "/v1/price-changes", &auth, &two_zones),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
        Some("currency"),
    );
    assert_eq!(reference_version(db).await, start + 1);

    // The change and the variant's history list it; the store has not been sent it yet.
    let (_, _, read) = call(
        &r,
        json_request(
            "GET",
            &format!("/v1/price-changes/{id}"),
            &auth,
            &Value::Null,
        ),
    )
    .await;
    assert_eq!(read["status"], "scheduled");
    assert_eq!(read["stores"][1]["sent"], false);
    let (_, _, variant) = call(
        &r,
        json_request("GET", "/v1/variants/GRO-DAI-0030", &auth, &Value::Null),
    )
    .await;
    assert_eq!(variant["price_changes"][0]["id"], id.as_str());
    assert_eq!(variant["prices"].as_array().unwrap().len(), 3, "{variant}");

    // A store's own change goes to its book; a later chain change is cut by nothing it holds.
    let own = serde_json::json!({"sku": "GRO-BRD-0001", "price": "0.40", "effective": "2031-03-02T00:00:00+01:00", "store": "vienna-01"});
    let (status, _, mine) = call(&r, json_request("POST", "/v1/price-changes", &auth, &own)).await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    assert_eq!(mine["book"], "store-vienna-01");
    assert_eq!(mine["stores"].as_array().unwrap().len(), 1);
    assert_eq!(mine["stores"][0]["price_after"], "0.40");
    let update = hq::refdata::changes_since(db, "graz-01", start + 1)
        .await
        .unwrap();
    assert!(
        update.entities.is_empty(),
        "another store's book is not sent to graz-01"
    );

    // Cancelling gives back exactly the entries the change cut.
    let (status, _, cancelled) = call(
        &r,
        json_request(
            "DELETE",
            &format!("/v1/price-changes/{id}"),
            &auth,
            &Value::Null,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(entries(db, "chain-eur|GRO-DAI-0030").await, original);
    let answer = send(
        &r,
        json_request(
            "DELETE",
            &format!("/v1/price-changes/{id}"),
            &auth,
            &Value::Null,
        ),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "already_cancelled",
        Some("id"),
    );

    // A change that takes effect now cannot be cancelled.
    let now_change = serde_json::json!({"sku": "GRO-DAI-0030", "price": "0.65", "currency": "EUR"});
    let (status, _, now_change) = call(
        &r,
        json_request("POST", "/v1/price-changes", &auth, &now_change),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{now_change}");
    let answer = send(
        &r,
        json_request(
            "DELETE",
            &format!("/v1/price-changes/{}", now_change["id"].as_str().unwrap()),
            &auth,
            &Value::Null,
        ),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "already_effective",
        Some("id"),
    );

    // A publish that rewrites the prices replaces the changes pending on them.
    let later = serde_json::json!({"sku": "GRO-DAI-0030", "price": "0.55", "effective": "2032-01-01T00:00:00Z", "currency": "EUR"});
    let (_, _, later) = call(&r, json_request("POST", "/v1/price-changes", &auth, &later)).await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/demo/seed.json");
    let mut seed: protocol::seed::SeedDto =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    seed.pricebooks[0].version += 1;
    hq::refdata::publish(db, &seed, PEPPER).await.unwrap();
    let answer = send(
        &r,
        json_request(
            "DELETE",
            &format!("/v1/price-changes/{}", later["id"].as_str().unwrap()),
            &auth,
            &Value::Null,
        ),
    )
    .await;
    assert_error(&answer, StatusCode::CONFLICT, "replaced", Some("id"));

    let actions = audit_actions(db).await;
    let prices: Vec<&String> = actions.iter().filter(|a| a.starts_with("price.")).collect();
    assert_eq!(
        prices,
        [
            "price.schedule",
            "price.schedule",
            "price.cancel",
            "price.schedule",
            "price.schedule"
        ]
    );
}

/// Writes are refused without a caller, with the read token, with a key or role lacking the
/// scope, and with a session that does not send its CSRF token; a write sent again with its
/// `Idempotency-Key` is answered as the first time and applied once, and the key with
/// another body is refused.
async fn writes_need_a_caller_with_the_scope_and_a_retried_write_is_answered_not_repeated(db: &Db) {
    use hq::identity::{Actor, NewUser, Role, Scope, add_user, create_api_key};
    let key = catalog_writer(db).await;
    let now = jiff::Timestamp::now().as_millisecond();
    let reader = create_api_key(db, &Actor::Cli, "reader", &[Scope::CatalogRead], now)
        .await
        .unwrap()
        .secret;
    for (name, role) in [("anna", Role::Merchandiser), ("fritz", Role::Finance)] {
        let user = NewUser {
            name: name.into(),
            display_name: name.into(),
            role,
            stores: vec![],
            password: "correct horse battery".into(),
        };
        add_user(db, &user, &Actor::Cli, now).await.unwrap();
    }
    let r = router(db);
    let ask = serde_json::json!({"sku": "GRO-BRD-0001", "price": "0.49", "effective": "2031-01-01T00:00:00Z", "currency": "EUR"});
    let start = reference_version(db).await;
    let bearer = |t: &str| format!("Bearer {t}");
    let (read_token, reader_key) = (bearer(READ_TOKEN), bearer(&reader));
    for (headers, status, code) in [
        (vec![], StatusCode::UNAUTHORIZED, "unauthorized"),
        (
            vec![("authorization", read_token.as_str())],
            StatusCode::FORBIDDEN,
            "missing_scope",
        ),
        (
            vec![("authorization", reader_key.as_str())],
            StatusCode::FORBIDDEN,
            "missing_scope",
        ),
        (
            vec![("authorization", "Bearer kassa_key_nobody_0000")],
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
    ] {
        let answer = send(
            &r,
            json_request("POST", "/v1/price-changes", &headers, &ask),
        )
        .await;
        assert_error(&answer, status, code, None);
    }
    let (_, anna_cookie, anna) = sign_in(&r, "anna", "correct horse battery").await;
    let anna_cookie = format!("{}={}", hq::sessions::COOKIE, cookie_value(&anna_cookie));
    let (_, fritz_cookie, fritz) = sign_in(&r, "fritz", "correct horse battery").await;
    let fritz_cookie = format!("{}={}", hq::sessions::COOKIE, cookie_value(&fritz_cookie));
    let answer = send(
        &r,
        json_request(
            "POST",
            "/v1/price-changes",
            &[("cookie", anna_cookie.as_str())],
            &ask,
        ),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::FORBIDDEN,
        "csrf",
        Some(hq::sessions::CSRF_HEADER),
    );
    let answer = send(
        &r,
        json_request(
            "POST",
            "/v1/price-changes",
            &[
                ("cookie", anna_cookie.as_str()),
                (hq::sessions::CSRF_HEADER, fritz["csrf"].as_str().unwrap()),
            ],
            &ask,
        ),
    )
    .await;
    assert_error(&answer, StatusCode::FORBIDDEN, "csrf", None);
    let answer = send(
        &r,
        json_request(
            "POST",
            "/v1/price-changes",
            &[
                ("cookie", fritz_cookie.as_str()),
                (hq::sessions::CSRF_HEADER, fritz["csrf"].as_str().unwrap()),
            ],
            &ask,
        ),
    )
    .await;
    assert_error(&answer, StatusCode::FORBIDDEN, "missing_scope", None);
    assert_eq!(reference_version(db).await, start, "no refused write wrote");

    // Anna, signed in with her CSRF token, schedules it with an idempotency key.
    let anna_headers = [
        ("cookie", anna_cookie.as_str()),
        (hq::sessions::CSRF_HEADER, anna["csrf"].as_str().unwrap()),
        ("idempotency-key", "order-42"),
    ];
    let (status, _, first) = call(
        &r,
        json_request("POST", "/v1/price-changes", &anna_headers, &ask),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["created_by"], "user:anna");
    let (status, _, again) = call(
        &r,
        json_request("POST", "/v1/price-changes", &anna_headers, &ask),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again, first, "the retry is answered with the first answer");
    assert_eq!(reference_version(db).await, start + 1, "and applied once");
    let mut other = ask.clone();
    other["price"] = "0.48".into();
    let answer = send(
        &r,
        json_request("POST", "/v1/price-changes", &anna_headers, &other),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "idempotency_key_reused",
        Some("idempotency-key"),
    );
    // The same key from another caller is another key.
    let key_headers = [
        ("authorization", bearer(&key)),
        ("idempotency-key", "order-42".to_owned()),
    ];
    let key_headers: Vec<(&str, &str)> =
        key_headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let (status, _, body) = call(
        &r,
        json_request("POST", "/v1/price-changes", &key_headers, &other),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "change_at_that_instant", "{body}");
    assert_eq!(reference_version(db).await, start + 1);
}

/// A store's pull at HQ's version with `wait` is held until a change is committed (then
/// answered with it at once) or the wait passes (then answered with nothing); a store behind
/// is answered at once.
async fn a_waiting_reference_pull_is_answered_when_a_change_is_committed(db: &Db) {
    let key = catalog_writer(db).await;
    let store = hq::add_store(db, &StoreId::parse("vienna-01").unwrap(), "Wien")
        .await
        .unwrap();
    let r = router(db);
    let version = reference_version(db).await;
    let pull = |since: i64, wait: u64| {
        let r = r.clone();
        let store = store.clone();
        async move {
            let started = std::time::Instant::now();
            let request = Request::get(format!("/v1/sync/reference?since={since}&wait={wait}"))
                .header("authorization", format!("Bearer {store}"))
                .body(Body::empty())
                .unwrap();
            let response = r.oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            let update = protocol::sync::decode_reference(&bytes).unwrap();
            (started.elapsed(), update)
        }
    };
    let (took, update) = pull(version - 1, 5).await;
    assert!(
        took < std::time::Duration::from_secs(1),
        "a store behind waits for nothing: {took:?}"
    );
    assert_eq!(update.to_version, version);
    let (took, update) = pull(version, 1).await;
    assert!(took >= std::time::Duration::from_millis(900), "{took:?}");
    assert!(update.entities.is_empty());

    let waiting = tokio::spawn(pull(version, 20));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let auth = format!("Bearer {key}");
    let ask = serde_json::json!({"sku": "GRO-BRD-0001", "price": "0.49", "currency": "EUR"});
    let committed = std::time::Instant::now();
    let (status, _, body) = call(
        &r,
        json_request(
            "POST",
            "/v1/price-changes",
            &[("authorization", auth.as_str())],
            &ask,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (took, update) = waiting.await.unwrap();
    assert!(
        committed.elapsed() < std::time::Duration::from_secs(2),
        "answered {:?} after the commit",
        committed.elapsed()
    );
    assert!(took >= std::time::Duration::from_millis(300), "{took:?}");
    assert_eq!(update.to_version, version + 1);
    assert_eq!(update.entities[0].key, "chain-eur|GRO-BRD-0001");

    // A change committed by another process (here: straight into the database) is seen by
    // the version watch.
    let waiting = tokio::spawn(pull(version + 1, 20));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/demo/seed.json");
    let mut seed: protocol::seed::SeedDto =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    seed.stores[0].name = "Kassa Wien Mitte".into();
    hq::refdata::publish(db, &seed, PEPPER).await.unwrap();
    let published = std::time::Instant::now();
    let (_, update) = waiting.await.unwrap();
    assert!(
        published.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        published.elapsed()
    );
    assert_eq!(update.to_version, version + 2);
}

/// The catalog is searched by a part of a name (any case, umlauts included), of a SKU, by a
/// barcode (as GTIN-13 or GTIN-14) and a PLU, a page at a time; a variant written through the
/// API is found at once; bad paging is refused by name.
async fn the_catalog_is_searched_by_name_sku_and_barcode_a_page_at_a_time(db: &Db) {
    let key = catalog_writer(db).await;
    let r = router(db);
    let auth = format!("Bearer {key}");
    let auth = [("authorization", auth.as_str())];
    let skus = |body: &Value| -> Vec<String> {
        body["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["sku"].as_str().unwrap().to_owned())
            .collect()
    };
    let find = |q: &str| {
        let r = r.clone();
        let path = format!("/v1/variants?q={q}");
        async move {
            let (status, _, body) = call(&r, json_request("GET", &path, &auth, &Value::Null)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };
    assert_eq!(skus(&find("k%C3%BCrbiskernbrot").await), ["GRO-BRD-0013"]);
    assert_eq!(skus(&find("K%C3%9CRBISKERNBROT").await), ["GRO-BRD-0013"]);
    assert_eq!(skus(&find("gro-brd-001").await).len(), 10);
    assert_eq!(skus(&find("9003909062415").await), ["GRO-BRD-0012"]);
    assert_eq!(
        skus(&find("09003909062415").await),
        ["GRO-BRD-0012"],
        "as GTIN-14"
    );
    assert!(skus(&find("10012").await).contains(&"GRO-BRD-0012".to_owned()));
    assert!(skus(&find("nothing-like-this").await).is_empty());
    // `%` and `_` are searched for, not wildcards.
    let percent = find("%25").await;
    let names: Vec<&str> = percent["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Vollmilch 3,5 % 1 l"), "{names:?}");
    assert!(names.iter().all(|n| n.contains('%')), "{names:?}");
    assert!(skus(&find("_").await).is_empty());

    // Pages: every variant once, in SKU order.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let path = format!("/v1/variants?limit=37&after={after}");
        let (status, _, body) = call(&r, json_request("GET", &path, &auth, &Value::Null)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        seen.extend(skus(&body));
        match body["after_next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    let held: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM ref_entities WHERE kind = 'variant' AND payload IS NOT NULL",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(seen.len() as i64, held);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen);

    let variant = serde_json::json!({
        "product_id": "P-TEA",
        "product_name": "Grüner Tee",
        "variant": {"sku": "GRO-TEA-0001", "name": "Grüner Tee 20 Beutel", "identifiers": [{"gtin": "4006381333931"}], "tax": "reduced", "unit": "each", "channels": "all"}
    });
    let (status, _, body) = call(
        &r,
        json_request("PUT", "/v1/variants/GRO-TEA-0001", &auth, &variant),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        skus(&find("gr%C3%BCner%20tee%2020").await),
        ["GRO-TEA-0001"]
    );
    assert_eq!(
        find("4006381333931").await["variants"][0]["identifiers"],
        serde_json::json!(["gtin:04006381333931"])
    );
    // Its barcode is taken now, however it is written.
    let mut other = variant.clone();
    other["variant"]["sku"] = "GRO-TEA-0002".into();
    other["variant"]["identifiers"] = serde_json::json!([{"gtin": "04006381333931"}]);
    let answer = send(
        &r,
        json_request("PUT", "/v1/variants/GRO-TEA-0002", &auth, &other),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "identifier_taken",
        Some("variant.identifiers[0]"),
    );

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=x", "limit"),
        ("page=2", "page"),
    ] {
        let answer = send(
            &r,
            json_request("GET", &format!("/v1/variants?{query}"), &auth, &Value::Null),
        )
        .await;
        assert_error(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_query",
            Some(field),
        );
    }
}

fn csv_request(path: &str, key: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "text/csv")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// A price list (CSV) is previewed row by row, committed as one batch at one new version, and
/// undone exactly; a bad row is refused by its line and column and writes nothing; a list
/// whose prices changed since is not undone.
async fn a_price_list_is_previewed_committed_as_one_batch_and_undone(db: &Db) {
    let key = catalog_writer(db).await;
    let r = router(db);
    let prices = |key: &'static str| {
        let db = db.clone();
        async move {
            let payload: Option<String> = sqlx::query_scalar(
                "SELECT payload FROM ref_entities WHERE kind = 'prices' AND key = $1",
            )
            .bind(key)
            .fetch_optional(&db.pool)
            .await
            .unwrap()
            .flatten();
            payload.map(|p| serde_json::from_str::<Value>(&p).unwrap()["entries"].clone())
        }
    };
    let before = (
        prices("chain-eur|GRO-BRD-0001").await,
        prices("chain-chf|GRO-BRD-0001").await,
    );
    let list = "SKU,Price,Currency,Store,Effective\n\
                GRO-BRD-0001,0.39,EUR,,\n\
                GRO-BRD-0001,0.52,CHF,,2031-06-01T00:00\n\
                GRO-BRD-0002,0.69,,vienna-01,2031-06-01T06:00:00+02:00\n";
    let start = reference_version(db).await;
    let (status, _, preview) =
        send(&r, csv_request("/v1/price-lists?dry_run=true", &key, list)).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(
        reference_version(db).await,
        start,
        "a preview writes nothing"
    );
    let rows = preview["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1]["line"], 3);
    assert_eq!(rows[1]["book"], "chain-chf");
    // Midnight in Zürich on 1 June is 22:00 UTC the day before.
    assert_eq!(rows[1]["effective"], "2031-05-31T22:00:00Z");
    assert_eq!(rows[1]["price_after"], "0.52");
    assert_eq!(rows[2]["book"], "store-vienna-01");
    assert_eq!(rows[2]["price_before"], Value::Null);
    assert_eq!(preview["books_created"], 1);
    assert_eq!(preview["books_updated"], 2);

    for (list, field) in [
        ("sku,price,colour\nGRO-BRD-0001,1.00,red\n", "line 1"),
        ("sku\nGRO-BRD-0001\n", "line 1"),
        (
            "sku,price,currency\nGRO-BRD-0001,1.00,EUR\nNOPE-0001,1.00,EUR\n",
            "line 3: sku",
        ),
        ("sku,price,currency\nGRO-BRD-0001,1,0,EUR\n", "line 2"),
        (
            "sku,price,currency\nGRO-BRD-0001,abc,EUR\n",
            "line 2: price",
        ),
        (
            "sku,price,currency,effective\nGRO-BRD-0001,1.00,EUR,2020-01-01T00:00:00Z\n",
            "line 2: effective",
        ),
        (
            "sku,price,currency,effective\nGRO-BRD-0001,1.00,EUR,2031-01-01T00:00:00Z\nGRO-BRD-0001,1.10,EUR,2031-01-01T00:00:00Z\n",
            "line 3: effective",
        ),
        ("sku,price\n", "body"),
    ] {
        let answer = send(&r, csv_request("/v1/price-lists", &key, list)).await;
        assert_error(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some(field),
        );
    }
    assert_eq!(
        reference_version(db).await,
        start,
        "a refused list writes nothing"
    );

    // A change scheduled through the API on one of those prices is replaced by the list.
    let auth = format!("Bearer {key}");
    let ask = serde_json::json!({"sku": "GRO-BRD-0001", "price": "0.41", "currency": "EUR", "effective": "2032-01-01T00:00:00Z"});
    let (_, _, pending) = call(
        &r,
        json_request(
            "POST",
            "/v1/price-changes",
            &[("authorization", auth.as_str())],
            &ask,
        ),
    )
    .await;
    let with_pending = prices("chain-eur|GRO-BRD-0001").await;
    let (status, _, committed) = send(&r, csv_request("/v1/price-lists", &key, list)).await;
    assert_eq!(status, StatusCode::CREATED, "{committed}");
    let batch = committed["batch"].as_str().unwrap().to_owned();
    assert_eq!(
        committed["version"],
        start + 2,
        "one version for the whole list"
    );
    let eur = prices("chain-eur|GRO-BRD-0001").await.unwrap();
    let last = eur
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["to"].is_null())
        .unwrap()
        .clone();
    assert_eq!(
        last["price"], "0.41",
        "the pending change still takes effect after the list's price"
    );
    let (_, _, read) = call(
        &r,
        json_request(
            "GET",
            &format!("/v1/price-changes/{}", pending["id"].as_str().unwrap()),
            &[("authorization", auth.as_str())],
            &Value::Null,
        ),
    )
    .await;
    assert_eq!(read["status"], "replaced", "{read}");
    assert!(prices("store-vienna-01|GRO-BRD-0002").await.is_some());

    // Undone: every price as it was before the list.
    let (status, _, undone) = send(
        &r,
        Request::delete(format!("/v1/price-lists/{batch}"))
            .header("authorization", auth.as_str())
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{undone}");
    assert_eq!(prices("chain-eur|GRO-BRD-0001").await, with_pending);
    assert_eq!(prices("chain-chf|GRO-BRD-0001").await, before.1);
    assert_eq!(prices("store-vienna-01|GRO-BRD-0002").await, None);
    let answer = send(
        &r,
        Request::delete(format!("/v1/price-lists/{batch}"))
            .header("authorization", auth.as_str())
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "already_undone",
        Some("batch"),
    );
    let answer = send(
        &r,
        Request::delete("/v1/price-lists/import-1")
            .header("authorization", auth.as_str())
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_error(&answer, StatusCode::NOT_FOUND, "not_found", Some("batch"));

    // A list whose price changed since is not undone.
    let (_, _, again) = send(
        &r,
        csv_request(
            "/v1/price-lists",
            &key,
            "sku,price,currency\nGRO-BRD-0003,0.99,EUR\n",
        ),
    )
    .await;
    let ask = serde_json::json!({"sku": "GRO-BRD-0003", "price": "0.95", "currency": "EUR"});
    call(
        &r,
        json_request(
            "POST",
            "/v1/price-changes",
            &[("authorization", auth.as_str())],
            &ask,
        ),
    )
    .await;
    let (status, _, refused) = send(
        &r,
        Request::delete(format!(
            "/v1/price-lists/{}",
            again["batch"].as_str().unwrap()
        ))
        .header("authorization", auth.as_str())
        .body(Body::empty())
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["code"], "changed_since");
    assert_eq!(
        refused["changed"],
        serde_json::json!(["prices/chain-eur|GRO-BRD-0003"])
    );
    let actions = audit_actions(db).await;
    let lists: Vec<&String> = actions
        .iter()
        .filter(|a| a.starts_with("price-list."))
        .collect();
    assert_eq!(
        lists,
        ["price-list.commit", "price-list.undo", "price-list.commit"]
    );
}

/// A sign-in request as it arrives from `address`.
fn sign_in_from(address: &str, name: &str, password: &str) -> Request<Body> {
    let mut request = Request::post("/v1/session")
        .header("content-type", "application/json")
        .body(Body::from(
            serde_json::json!({"name": name, "password": password}).to_string(),
        ))
        .unwrap();
    let peer: std::net::SocketAddr = format!("{address}:40000").parse().unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(hq::https::Peer::from(peer)));
    request
}

/// Twenty failed sign-ins from one address, over many names, stop that address (even with the
/// right password) but no other; each attempt is in the audit log with its address. `/metrics`
/// is open by default and, closed, answers only a reader with `fleet:read`.
async fn sign_ins_are_throttled_per_address_and_metrics_can_be_closed(db: &Db) {
    use hq::identity::{Actor, NewUser, Role, Scope, add_user, create_api_key};
    let now = jiff::Timestamp::now().as_millisecond();
    let user = NewUser {
        name: "ana".into(),
        display_name: "Ana".into(),
        role: Role::Admin,
        stores: vec![],
        password: "correct horse battery".into(),
    };
    add_user(db, &user, &Actor::Cli, now).await.unwrap();
    let r = router(db);
    for i in 0..hq::sessions::FAILURES_PER_ADDRESS {
        let (status, _, body) = send(
            &r,
            sign_in_from("10.0.0.7", &format!("guess{i}"), "wrong password"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let answer = send(&r, sign_in_from("10.0.0.7", "ana", "correct horse battery")).await;
    assert_error(&answer, StatusCode::TOO_MANY_REQUESTS, "throttled", None);
    let (status, _, body) =
        send(&r, sign_in_from("10.0.0.8", "ana", "correct horse battery")).await;
    assert_eq!(status, StatusCode::OK, "another address signs in: {body}");
    let sources: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT source FROM audit_log WHERE action LIKE 'sign-in%' AND target = 'user:ana' ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(sources, [Some("10.0.0.8".to_owned())]);

    let (status, _) = get(&r, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK, "open by default");
    let closed = hq::api::router(Arc::new(
        hq::api::Hq::new(db.clone(), Some(READ_TOKEN.into())).with_metrics_closed(true),
    ));
    let (status, _) = get(&closed, "/metrics", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let stock_key = create_api_key(db, &Actor::Cli, "stock", &[Scope::StockRead], now)
        .await
        .unwrap()
        .secret;
    let fleet_key = create_api_key(db, &Actor::Cli, "scraper", &[Scope::FleetRead], now)
        .await
        .unwrap()
        .secret;
    let (status, _) = get(&closed, "/metrics", Some(&stock_key)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = get(&closed, "/metrics", Some(&fleet_key)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get(&closed, "/metrics", Some(READ_TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
}

/// The exceptions HQ finds (here: stock gone negative at two stores and a parked batch) are
/// listed per store; finance acknowledges one and resolves another with a note, each a line of
/// the audit log; a resolved one leaves the inbox; a store manager sees and answers only their
/// store's; a bad state or an empty note changes nothing.
async fn exceptions_are_listed_by_store_acknowledged_and_resolved_with_a_note(db: &Db) {
    use hq::identity::{Actor, NewUser, Role, add_user};
    let now = jiff::Timestamp::now().as_millisecond();
    for (location, sku, on_hand) in [
        ("vienna-01", "GRO-BRD-0001", -2000_i64),
        ("graz-01", "GRO-BRD-0002", -1000),
    ] {
        sqlx::query("INSERT INTO stock_levels (location, sku, on_hand) VALUES ($1, $2, $3)")
            .bind(location)
            .bind(sku)
            .bind(on_hand)
            .execute(&db.pool)
            .await
            .unwrap();
    }
    // Counted cash off by 8.00 yesterday (an exception), by 3.00 the day before (within the
    // tolerance), by 50.00 long ago (beyond the 90 days looked at).
    let today = jiff::Zoned::now().date();
    let cash_day = today.yesterday().unwrap().to_string();
    for (days_ago, counted) in [(1, 9_200_i64), (2, 9_700), (400, 5_000)] {
        let day = today
            .checked_sub(jiff::Span::new().days(days_ago))
            .unwrap()
            .to_string();
        sqlx::query(
            "INSERT INTO sales_daily (store, day, currency, sales, voids, returns, gross_minor, tax_minor, refunds_minor, cash_minor, shifts_closed, cash_expected_minor, cash_counted_minor, voided_minor, goods_net_minor, rounding_minor)
             VALUES ('vienna-01', $1, 'EUR', 1, 0, 0, 100, 10, 0, 100, 1, 10000, $2, 0, 90, 0)",
        )
        .bind(day)
        .bind(counted)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    sqlx::query("INSERT INTO parked (store, terminal, from_seq, count, code, reason, received_ms) VALUES ('vienna-01', 'vienna-01-t1', 5, 2, 'batch_conflict', 'sequence 5 is held with other bytes', $1)")
        .bind(now)
        .execute(&db.pool)
        .await
        .unwrap();
    for store in ["vienna-01", "graz-01"] {
        hq::add_store(db, &StoreId::parse(store).unwrap(), store)
            .await
            .unwrap();
    }
    for (name, role, stores) in [
        ("fritz", Role::Finance, vec![]),
        ("maria", Role::StoreManager, vec!["graz-01".to_owned()]),
    ] {
        let user = NewUser {
            name: name.into(),
            display_name: name.into(),
            role,
            stores,
            password: "correct horse battery".into(),
        };
        add_user(db, &user, &Actor::Cli, now).await.unwrap();
    }
    let r = router(db);
    let session = |name: &'static str| {
        let r = r.clone();
        async move {
            let (_, cookie, body) = sign_in(&r, name, "correct horse battery").await;
            (
                format!("{}={}", hq::sessions::COOKIE, cookie_value(&cookie)),
                body["csrf"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (fritz, fritz_csrf) = session("fritz").await;
    let (maria, maria_csrf) = session("maria").await;
    let list = |cookie: String, query: &'static str| {
        let r = r.clone();
        async move {
            let (status, _, body) = call(
                &r,
                json_request(
                    "GET",
                    &format!("/v1/exceptions{query}"),
                    &[("cookie", cookie.as_str())],
                    &Value::Null,
                ),
            )
            .await;
            (status, body)
        }
    };
    let (status, all) = list(fritz.clone(), "").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let kinds: Vec<(String, String)> = all["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(kinds.len(), 4, "{all}");
    assert!(
        kinds.contains(&(
            "cash_over_short".to_owned(),
            format!("vienna-01|{cash_day}")
        )),
        "{all}"
    );
    let parked_key = kinds
        .iter()
        .find(|(k, _)| k == "parked_batch")
        .unwrap()
        .1
        .clone();
    let (status, graz) = list(maria.clone(), "?store=graz-01").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(graz["exceptions"].as_array().unwrap().len(), 1);
    let (status, _) = list(maria.clone(), "?store=vienna-01").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let say = |cookie: String, csrf: String, path: String, body: Value| {
        let r = r.clone();
        async move {
            send(
                &r,
                json_request(
                    "PUT",
                    &path,
                    &[
                        ("cookie", cookie.as_str()),
                        (hq::sessions::CSRF_HEADER, csrf.as_str()),
                    ],
                    &body,
                ),
            )
            .await
        }
    };
    let negative = "/v1/exceptions/negative_stock/vienna-01%7CGRO-BRD-0001".to_owned();
    let answer = say(
        fritz.clone(),
        fritz_csrf.clone(),
        negative.clone(),
        serde_json::json!({"state": "closed", "note": "x"}),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_field",
        Some("state"),
    );
    let answer = say(
        fritz.clone(),
        fritz_csrf.clone(),
        negative.clone(),
        serde_json::json!({"state": "resolved", "note": "  "}),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_field",
        Some("note"),
    );
    let answer = say(
        maria.clone(),
        maria_csrf.clone(),
        negative.clone(),
        serde_json::json!({"state": "resolved", "note": "not mine"}),
    )
    .await;
    assert_error(&answer, StatusCode::FORBIDDEN, "store_not_yours", None);
    let answer = say(
        fritz.clone(),
        fritz_csrf.clone(),
        "/v1/exceptions/parked_batch/999999".into(),
        serde_json::json!({"state": "resolved", "note": "x"}),
    )
    .await;
    assert_error(&answer, StatusCode::NOT_FOUND, "not_found", Some("key"));
    let (status, _, body) = say(
        fritz.clone(),
        fritz_csrf.clone(),
        negative.clone(),
        serde_json::json!({"state": "resolved", "note": "counted again: 2 found in the back room"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["by"], "user:fritz");
    let (status, _, body) = say(
        fritz.clone(),
        fritz_csrf.clone(),
        format!("/v1/exceptions/parked_batch/{parked_key}"),
        serde_json::json!({"state": "acknowledged", "note": "support is on it"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (_, open) = list(fritz.clone(), "").await;
    let states: Vec<(&str, &str)> = open["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("negative_stock", "open"),
            ("parked_batch", "acknowledged"),
            ("cash_over_short", "open")
        ],
        "the resolved one left: {open}"
    );
    let (_, everything) = list(fritz.clone(), "?state=all").await;
    assert_eq!(everything["exceptions"].as_array().unwrap().len(), 4);
    let actions = audit_actions(db).await;
    let said: Vec<&String> = actions
        .iter()
        .filter(|a| a.starts_with("exception."))
        .collect();
    assert_eq!(said, ["exception.resolve", "exception.acknowledge"]);
}

// ---------------------------------------------------------------------------------------------
// Users and API keys over HTTP.

/// Only a signed-in admin changes users and keys (with the CSRF token), an auditor reads them,
/// an API key does neither; bad input is refused at its field and writes nothing; a key made
/// here works at once and stops at once when revoked; a disabled person's session ends.
async fn users_and_keys_are_managed_by_a_signed_in_admin_and_never_by_a_key(db: &Db) {
    use hq::identity::{Actor, NewUser, Role, Scope, add_user, create_api_key, users};
    use serde_json::json;
    let now = jiff::Timestamp::now().as_millisecond();
    for (name, role) in [
        ("ada", Role::Admin),
        ("anna", Role::Merchandiser),
        ("olga", Role::Auditor),
    ] {
        let user = NewUser {
            name: name.into(),
            display_name: name.into(),
            role,
            stores: vec![],
            password: "correct horse battery".into(),
        };
        add_user(db, &user, &Actor::Cli, now).await.unwrap();
    }
    let strong = create_api_key(db, &Actor::Cli, "everything", &Scope::ALL, now)
        .await
        .unwrap()
        .secret;
    let r = router(db);
    let session = |name: &'static str| {
        let r = r.clone();
        async move {
            let (_, cookie, answer) = sign_in(&r, name, "correct horse battery").await;
            (
                format!("{}={}", hq::sessions::COOKIE, cookie_value(&cookie)),
                answer["csrf"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (ada, ada_csrf) = session("ada").await;
    let (anna, _) = session("anna").await;
    let (olga, olga_csrf) = session("olga").await;
    let key = format!("Bearer {strong}");
    let new_user =
        json!({"name": "lena", "role": "merchandiser", "password": "a long enough passphrase"});
    // Who may not.
    for (headers, status, code) in [
        (vec![], StatusCode::UNAUTHORIZED, "unauthorized"),
        (
            vec![("authorization", key.as_str())],
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            vec![("cookie", anna.as_str())],
            StatusCode::FORBIDDEN,
            "missing_role",
        ),
        (
            vec![
                ("cookie", olga.as_str()),
                (hq::sessions::CSRF_HEADER, olga_csrf.as_str()),
            ],
            StatusCode::FORBIDDEN,
            "missing_role",
        ),
        (
            vec![("cookie", ada.as_str())],
            StatusCode::FORBIDDEN,
            "csrf",
        ),
    ] {
        let answer = send(&r, json_request("POST", "/v1/users", &headers, &new_user)).await;
        assert_error(&answer, status, code, None);
    }
    for (headers, status) in [
        (
            vec![("authorization", key.as_str())],
            StatusCode::UNAUTHORIZED,
        ),
        (vec![("cookie", anna.as_str())], StatusCode::FORBIDDEN),
        (vec![("cookie", olga.as_str())], StatusCode::OK),
    ] {
        for path in ["/v1/users", "/v1/api-keys"] {
            let mut request = Request::get(path);
            for (name, value) in &headers {
                request = request.header(*name, *value);
            }
            let (got, _, body) = send(&r, request.body(Body::empty()).unwrap()).await;
            assert_eq!(got, status, "{path}: {body}");
        }
    }
    // Who may act is a privileged read: the auditor's two reads are recorded, the refused
    // ones as refusals.
    let reads: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action IN ('users.read', 'keys.read') AND actor = 'user:olga' ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(reads, ["users.read", "keys.read"]);
    let admin = [
        ("cookie", ada.as_str()),
        (hq::sessions::CSRF_HEADER, ada_csrf.as_str()),
    ];
    // Bad input, at its field, nothing written.
    let before = users(db).await.unwrap().len();
    for (body, code, field) in [
        (
            json!({"name": "lena", "role": "cashier", "password": "a long enough passphrase"}),
            "invalid_field",
            "role",
        ),
        (
            json!({"name": "lena", "role": "merchandiser", "password": "short"}),
            "invalid_field",
            "password",
        ),
        (
            json!({"name": "Lena Huber!", "role": "merchandiser", "password": "a long enough passphrase"}),
            "invalid_field",
            "name",
        ),
        (
            json!({"name": "lena", "role": "store-manager", "password": "a long enough passphrase"}),
            "invalid_field",
            "stores",
        ),
        (
            json!({"name": "lena", "role": "merchandiser", "password": "a long enough passphrase", "admin": true}),
            "invalid_body",
            "admin",
        ),
        (
            json!({"name": "anna", "role": "merchandiser", "password": "a long enough passphrase"}),
            "user_exists",
            "name",
        ),
    ] {
        let answer = send(&r, json_request("POST", "/v1/users", &admin, &body)).await;
        let status = if code == "user_exists" {
            StatusCode::CONFLICT
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_error(&answer, status, code, Some(field));
    }
    assert_eq!(users(db).await.unwrap().len(), before);
    let (status, _, added) = send(&r, json_request("POST", "/v1/users", &admin, &new_user)).await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["role"], "merchandiser");
    let (_, _, lena) = sign_in(&r, "lena", "a long enough passphrase").await;
    assert_eq!(lena["name"], "lena");
    // Keys: a bad scope is named by its place; a key made works at once.
    let answer = send(
        &r,
        json_request(
            "POST",
            "/v1/api-keys",
            &admin,
            &json!({"name": "shop", "scopes": ["catalog:read", "everything"]}),
        ),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_field",
        Some("scopes[1]"),
    );
    let (status, _, made) = send(
        &r,
        json_request(
            "POST",
            "/v1/api-keys",
            &admin,
            &json!({"name": "shop", "scopes": ["catalog:read"]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    let secret = made["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        get_with(&r, "/v1/variants?q=brot", &secret).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get_with(&r, "/v1/stock", &secret).await.0,
        StatusCode::FORBIDDEN
    );
    let (_, _, listed) = send(
        &r,
        with_session("GET", "/v1/api-keys", &cookie_value_of(&olga), None),
    )
    .await;
    assert!(
        listed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("secret").is_none()),
        "a list never holds a secret: {listed}"
    );
    // Rotated: the overlap is bounded; the new key works.
    let answer = send(
        &r,
        json_request(
            "POST",
            &format!("/v1/api-keys/{id}/rotate"),
            &admin,
            &json!({"overlap_hours": 1000}),
        ),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_field",
        Some("overlap_hours"),
    );
    let (status, _, rotated) = send(
        &r,
        json_request(
            "POST",
            &format!("/v1/api-keys/{id}/rotate"),
            &admin,
            &json!({"overlap_hours": 24}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let new_id = rotated["id"].as_str().unwrap().to_owned();
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    for s in [&secret, &new_secret] {
        assert_eq!(
            get_with(&r, "/v1/variants?q=brot", s).await.0,
            StatusCode::OK,
            "within the overlap both work"
        );
    }
    // Revoked: refused at once; revoking again is a conflict.
    let revoke = |id: String| {
        let mut request = Request::delete(format!("/v1/api-keys/{id}"));
        for (name, value) in admin {
            request = request.header(name, value);
        }
        request.body(Body::empty()).unwrap()
    };
    let (status, _, _) = send(&r, revoke(new_id.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        get_with(&r, "/v1/variants?q=brot", &new_secret).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_error(
        &send(&r, revoke(new_id)).await,
        StatusCode::CONFLICT,
        "key_not_live",
        None,
    );
    assert_error(
        &send(&r, revoke("key-nobody".into())).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    // Disabled: the session ends at once; nobody disables themselves.
    let (status, _, _) = send(
        &r,
        json_request(
            "PUT",
            "/v1/users/anna/disabled",
            &admin,
            &json!({"disabled": true}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(
        &r,
        with_session("GET", "/v1/variants?q=brot", &cookie_value_of(&anna), None),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let answer = send(
        &r,
        json_request(
            "PUT",
            "/v1/users/ada/disabled",
            &admin,
            &json!({"disabled": true}),
        ),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_field",
        Some("disabled"),
    );
    // A signed-in person's refused attempt is a line of the audit log too, naming them.
    let refusals = hq::identity::audit_entries(
        db,
        &hq::identity::AuditFilter {
            action: Some("access.refused".into()),
            actor: Some("user:anna".into()),
            ..Default::default()
        },
        10,
    )
    .await
    .unwrap();
    assert!(
        refusals
            .iter()
            .any(|e| e.target.as_deref() == Some("users")),
        "{refusals:?}"
    );
    // Each change is the admin's in the audit log.
    for action in [
        "user.add",
        "key.create",
        "key.rotate",
        "key.revoke",
        "user.disable",
    ] {
        let entries = hq::identity::audit_entries(
            db,
            &hq::identity::AuditFilter {
                action: Some(action.into()),
                ..Default::default()
            },
            1,
        )
        .await
        .unwrap();
        assert_eq!(
            entries.first().map(|e| e.actor.as_str()),
            Some("user:ada"),
            "{action}"
        );
    }
}

/// The cookie value of `name=value`.
fn cookie_value_of(cookie: &str) -> String {
    cookie.split_once('=').unwrap().1.to_owned()
}

// ---------------------------------------------------------------------------------------------
// Stores through the write API.

/// A store's configuration is read with its version as the ETag and changed with `If-Match`;
/// bad fields are refused by name and write nothing; a stale change is told what changed; the
/// change is a new reference version, audited; only `stores:write` changes it.
async fn a_store_is_configured_with_if_match_and_bad_fields_are_refused_by_name(db: &Db) {
    use hq::identity::{Actor, Scope, create_api_key};
    use serde_json::json;
    let catalog_key = catalog_writer(db).await;
    let now = jiff::Timestamp::now().as_millisecond();
    let key = create_api_key(
        db,
        &Actor::Cli,
        "store setup",
        &[Scope::FleetRead, Scope::StoresWrite],
        now,
    )
    .await
    .unwrap()
    .secret;
    let r = router(db);
    let bearer = format!("Bearer {key}");
    let (status, etag, read) = call(
        &r,
        Request::get("/v1/stores/vienna-01")
            .header("authorization", &bearer)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    let store = read["store"].clone();
    let mut renamed = store.clone();
    renamed["name"] = json!("Kassa Wien Neubau");
    let start = reference_version(db).await;
    // Without If-Match, or with the catalog's key: refused, nothing written.
    let answer = send(
        &r,
        json_request(
            "PUT",
            "/v1/stores/vienna-01",
            &[("authorization", &bearer)],
            &renamed,
        ),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::PRECONDITION_REQUIRED,
        "if_match_required",
        None,
    );
    let catalog = format!("Bearer {catalog_key}");
    let answer = send(
        &r,
        json_request(
            "PUT",
            "/v1/stores/vienna-01",
            &[("authorization", &catalog), ("if-match", &etag)],
            &renamed,
        ),
    )
    .await;
    assert_error(&answer, StatusCode::FORBIDDEN, "missing_scope", None);
    // Bad fields, by name.
    let headers = [
        ("authorization", bearer.as_str()),
        ("if-match", etag.as_str()),
    ];
    for (field, value, at) in [
        ("timezone", json!("Europe/Wien"), "timezone"),
        ("jurisdiction", json!("XX"), "jurisdiction"),
        ("currency", json!("CHF"), "currency"),
        ("name", json!(" "), "name"),
        ("tax_id", json!("ATU 1234 <b>"), "tax_id"),
        (
            "quick_keys",
            json!([{"label": "Brot", "keys": [{"sku": "NOPE-0001"}]}]),
            "quick_keys[0].keys[0].sku",
        ),
        ("id", json!("graz-01"), "id"),
    ] {
        let mut bad = store.clone();
        bad[field] = value;
        let answer = send(
            &r,
            json_request("PUT", "/v1/stores/vienna-01", &headers, &bad),
        )
        .await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_field", Some(at));
    }
    assert_eq!(
        reference_version(db).await,
        start,
        "a refusal writes nothing"
    );
    // Changed with If-Match: a new version, audited, listed.
    let (status, new_etag, written) = call(
        &r,
        json_request("PUT", "/v1/stores/vienna-01", &headers, &renamed),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{written}");
    assert_eq!(written["version"], reference_version(db).await);
    assert_ne!(new_etag, etag);
    assert!(audit_actions(db).await.contains(&"store.update".to_owned()));
    let (_, listed) = get(&r, "/v1/stores", Some(&key)).await;
    let names: Vec<&str> = listed["stores"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["id"] == "vienna-01")
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["Kassa Wien Neubau"]);
    // A till registered through the API: bad fields by name, again unchanged, taken elsewhere.
    hq::add_store(db, &StoreId::parse("vienna-01").unwrap(), "Wien")
        .await
        .unwrap();
    let public_key = hex::encode(SigningKey::from_bytes(&[9; 32]).verifying_key().as_bytes());
    let auth = [("authorization", bearer.as_str())];
    for (body, field) in [
        (
            json!({"store": "vienna-01", "id": "vienna-01-t7", "public_key": "abc"}),
            "public_key",
        ),
        (
            json!({"store": "linz-01", "id": "linz-01-t1", "public_key": public_key}),
            "store",
        ),
        (
            json!({"store": "vienna-01", "id": "no spaces", "public_key": public_key}),
            "id",
        ),
    ] {
        let answer = send(&r, json_request("POST", "/v1/terminals", &auth, &body)).await;
        assert_error(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some(field),
        );
    }
    let till = json!({"store": "vienna-01", "id": "vienna-01-t7", "public_key": public_key});
    for expected in [StatusCode::CREATED, StatusCode::OK] {
        let (status, _, body) = send(&r, json_request("POST", "/v1/terminals", &auth, &till)).await;
        assert_eq!(status, expected, "{body}");
    }
    let other_key = hex::encode(SigningKey::from_bytes(&[8; 32]).verifying_key().as_bytes());
    let answer = send(
        &r,
        json_request(
            "POST",
            "/v1/terminals",
            &auth,
            &json!({"store": "vienna-01", "id": "vienna-01-t7", "public_key": other_key}),
        ),
    )
    .await;
    assert_error(&answer, StatusCode::CONFLICT, "terminal_taken", Some("id"));
    let registered = audit_actions(db).await;
    assert_eq!(
        registered
            .iter()
            .filter(|a| *a == "terminal.register")
            .count(),
        1,
        "registered once, audited once"
    );
    // A change based on the old version is stale and says what changed.
    let mut other = store.clone();
    other["address"] = json!("Neubaugasse 1, 1070 Wien");
    let answer = send(
        &r,
        json_request("PUT", "/v1/stores/vienna-01", &headers, &other),
    )
    .await;
    assert_eq!(answer.0, StatusCode::CONFLICT, "{}", answer.2);
    assert_eq!(answer.2["code"], "stale");
    assert_eq!(answer.2["changed"], json!(["name"]), "{}", answer.2);
}

/// A till revoked at HQ (stolen): only a caller with `stores:write` revokes it, with a reason,
/// once; HQ keeps what it holds and takes what the till signed up to the revocation point, and
/// parks every batch beyond it (`403 terminal_revoked`); the till's other store-mates go on.
async fn a_revoked_till_keeps_what_hq_held_and_its_later_batches_are_parked(db: &Db) {
    use hq::identity::{Actor, Scope, create_api_key};
    use serde_json::json;
    let till = Till::new("vienna-01", "vienna-01-t1", 1);
    let token = till.register(db).await;
    let mate = Till::new("vienna-01", "vienna-01-t2", 2);
    mate.register_terminal(db).await;
    let r = router(db);
    let events = till.chain(6, 1000);
    let pushed = |events: &[Linked]| wire(&batch(&till.store, till.id.as_str(), &till.key, events));
    let (status, ack) = push(&r, &token, pushed(&events[..2])).await;
    assert_eq!(
        (status, &ack["acked_seq"]),
        (StatusCode::OK, &json!(2)),
        "{ack}"
    );
    // The fleet's figures of the till: bytes of today's pushes and how late its last event came.
    let body_bytes = pushed(&events[..2]).len();
    let (_, listed) = get(&r, "/v1/terminals", Some(READ_TOKEN)).await;
    let t1 = &listed["terminals"][0];
    assert_eq!(t1["bytes_today"], json!(body_bytes), "{t1}");
    assert!(t1["push_lag_ms"].as_i64().unwrap() > 0, "{t1}");

    let now = jiff::Timestamp::now().as_millisecond();
    let reader = create_api_key(db, &Actor::Cli, "reader", &[Scope::FleetRead], now)
        .await
        .unwrap()
        .secret;
    let writer = create_api_key(db, &Actor::Cli, "it", &[Scope::StoresWrite], now)
        .await
        .unwrap()
        .secret;
    let (reader, writer) = (format!("Bearer {reader}"), format!("Bearer {writer}"));
    let revoke = |auth: &str, body: &serde_json::Value| {
        json_request(
            "POST",
            "/v1/terminals/vienna-01-t1/revoke",
            &[("authorization", auth)],
            body,
        )
    };
    let stolen = json!({"reason": "stolen from the counter", "after_seq": 3});
    let answer = send(
        &r,
        Request::post("/v1/terminals/vienna-01-t1/revoke")
            .header("content-type", "application/json")
            .body(Body::from(stolen.to_string()))
            .unwrap(),
    )
    .await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized", None);
    let answer = send(&r, revoke(&reader, &stolen)).await;
    assert_error(&answer, StatusCode::FORBIDDEN, "missing_scope", None);
    for (body, field) in [
        (json!({"reason": "  "}), "reason"),
        (json!({"reason": "x".repeat(501)}), "reason"),
        (json!({"reason": "stolen", "after_seq": 1}), "after_seq"),
    ] {
        let answer = send(&r, revoke(&writer, &body)).await;
        assert_error(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some(field),
        );
    }
    let answer = send(
        &r,
        json_request(
            "POST",
            "/v1/terminals/vienna-01-t9/revoke",
            &[("authorization", &writer)],
            &stolen,
        ),
    )
    .await;
    assert_error(&answer, StatusCode::NOT_FOUND, "not_found", None);
    assert!(
        !audit_actions(db)
            .await
            .contains(&"terminal.revoke".to_owned())
    );

    // Revoked after sequence 3: the till's batch of 3 to 6 gives HQ 3, the rest is parked.
    let (status, _, revoked) = send(&r, revoke(&writer, &stolen)).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["revoked_after_seq"], 3);
    let answer = send(&r, revoke(&writer, &stolen)).await;
    assert_error(&answer, StatusCode::CONFLICT, "already_revoked", None);
    let (status, refused) = push(&r, &token, pushed(&events[2..])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["code"], "terminal_revoked");
    let (_, listed) = get(&r, "/v1/terminals", Some(READ_TOKEN)).await;
    let t1 = listed["terminals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "vienna-01-t1")
        .unwrap()
        .clone();
    assert_eq!(t1["acked_seq"], 3, "{t1}");
    assert_eq!(t1["revoked"]["after_seq"], 3, "{t1}");
    assert_eq!(t1["revoked"]["reason"], "stolen from the counter");
    assert!(
        t1["revoked"]["by"].as_str().unwrap().starts_with("key:"),
        "{t1}"
    );
    let (_, parked) = get(&r, "/v1/parked", Some(READ_TOKEN)).await;
    assert_eq!(parked["parked"][0]["code"], "terminal_revoked", "{parked}");
    assert_eq!(parked["parked"][0]["from_seq"], 4, "{parked}");
    assert_eq!(parked["parked"][0]["count"], 3, "{parked}");
    // Pushed again, the same: nothing more taken, the refusal counted on its record.
    let (status, _) = push(&r, &token, pushed(&events[3..])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, listed) = get(&r, "/v1/terminals", Some(READ_TOKEN)).await;
    assert!(
        listed["terminals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == "vienna-01-t1" && t["acked_seq"] == 3)
    );
    // The store's other till is not touched.
    let (status, ack) = push(
        &r,
        &token,
        wire(&batch(
            &mate.store,
            mate.id.as_str(),
            &mate.key,
            &mate.chain(2, 7),
        )),
    )
    .await;
    assert_eq!(
        (status, &ack["acked_seq"]),
        (StatusCode::OK, &json!(2)),
        "{ack}"
    );
    let audit: Vec<String> = audit_actions(db).await;
    assert_eq!(audit.iter().filter(|a| *a == "terminal.revoke").count(), 1);
}

/// Issue 21, item 3: a till's key rotates. The `KeyRotated` event ends a batch signed by the
/// old key; HQ takes the new key for the events after it, while the old key still verifies a
/// batch of before (pushed again). A batch after the rotation signed by the old key (a thief's),
/// and a rotation inside a batch (the new key vouching for itself), are refused.
async fn a_tills_new_key_is_taken_from_the_batch_its_old_key_signed_and_the_old_key_signs_no_more(
    db: &Db,
) {
    use serde_json::json;
    let till = Till::new("vienna-01", "vienna-01-t1", 1);
    let token = till.register(db).await;
    let r = router(db);
    let new = SigningKey::from_bytes(&[0x5a; 32]);
    let adjusted = |delta: i64| EventBody::StockAdjusted {
        sku: Sku::parse("GRO-BRD-0012").unwrap(),
        delta_milli: delta,
        reason: AdjustmentReason::Received,
        note: None,
    };
    let rotation = EventBody::KeyRotated {
        public_key: new.verifying_key().to_bytes(),
    };
    let events = till.linked(vec![
        adjusted(1000),
        adjusted(2000),
        rotation.clone(),
        adjusted(3000),
        adjusted(4000),
    ]);
    let pushed = |events: &[Linked], key: &SigningKey| {
        wire(&batch(&till.store, till.id.as_str(), key, events))
    };

    // A rotation inside a batch: the head is signed by the key the batch itself announces.
    let (status, refused) = push(&r, &token, pushed(&events, &new)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("must end its batch"),
        "{refused}"
    );
    // The rotation ends a batch signed by the old key: taken, and the new key with it.
    let (status, ack) = push(&r, &token, pushed(&events[..3], &till.key)).await;
    assert_eq!(
        (status, &ack["acked_seq"]),
        (StatusCode::OK, &json!(3)),
        "{ack}"
    );
    // After it, the old key signs no more; the new key does.
    let (status, refused) = push(&r, &token, pushed(&events[3..], &till.key)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["code"], "batch_rejected", "{refused}");
    let (status, ack) = push(&r, &token, pushed(&events[3..], &new)).await;
    assert_eq!(
        (status, &ack["acked_seq"]),
        (StatusCode::OK, &json!(5)),
        "{ack}"
    );
    // A batch of before the rotation, pushed again, still verifies with the key of its time.
    let (status, ack) = push(&r, &token, pushed(&events[1..3], &till.key)).await;
    assert_eq!(
        (status, &ack["duplicates"]),
        (StatusCode::OK, &json!(2)),
        "{ack}"
    );

    let keys: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT from_seq, public_key FROM terminal_keys WHERE terminal_id = 'vienna-01-t1' ORDER BY from_seq",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        keys,
        vec![
            (1, till.key.verifying_key().to_bytes().to_vec()),
            (4, new.verifying_key().to_bytes().to_vec()),
        ]
    );
    let (_, listed) = get(&r, "/v1/terminals", Some(READ_TOKEN)).await;
    assert_eq!(listed["terminals"][0]["key_since_seq"], 4, "{listed}");
    let current: Vec<u8> =
        sqlx::query_scalar("SELECT public_key FROM terminals WHERE id = 'vienna-01-t1'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(current, new.verifying_key().to_bytes().to_vec());
    // Registering the till again names its current key; its first key is another till's now.
    hq::add_terminal(
        db,
        &till.store,
        &till.id,
        &hex::encode(new.verifying_key().to_bytes()),
    )
    .await
    .unwrap();
    assert!(
        hq::add_terminal(
            db,
            &till.store,
            &till.id,
            &hex::encode(till.key.verifying_key().to_bytes()),
        )
        .await
        .is_err()
    );
    let audit: Vec<String> = audit_actions(db).await;
    assert_eq!(
        audit
            .iter()
            .filter(|a| *a == "terminal.key_rotated")
            .count(),
        1,
        "{audit:?}"
    );
}

/// Issue 21, item 4: a store node says on each reference pull where each till's ledger ends.
/// When a till comes back with less (its PC replaced, restored from an older backup), HQ names
/// the sequences between that it does not hold as lost — an exception and an audit line — since
/// the till's new events take those numbers again. Nothing is named while the ledger only
/// grows; another store's till and a malformed header change nothing.
async fn a_till_that_comes_back_with_less_than_it_said_has_the_sequences_between_named_lost(
    db: &Db,
) {
    let till = Till::new("vienna-01", "vienna-01-t1", 1);
    let token = till.register(db).await;
    let other = Till::new("graz-01", "graz-01-t1", 2);
    other.register(db).await;
    let r = router(db);
    let (status, ack) = push(
        &r,
        &token,
        wire(&batch(
            &till.store,
            till.id.as_str(),
            &till.key,
            &till.chain(4, 5),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    let pull = |heads: &str| {
        Request::get("/v1/sync/reference")
            .header("authorization", format!("Bearer {token}"))
            .header(protocol::sync::NODE_HEADS_HEADER, heads)
            .body(Body::empty())
            .unwrap()
    };
    let lost = || async {
        hq::exceptions::exceptions(db, None)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "sequences_lost")
            .map(|e| (e.store, e.summary))
            .collect::<Vec<_>>()
    };
    // The ledger grows: 6, then 10 (events 5 to 10 not pushed yet); another store's till and
    // nonsense are ignored.
    for heads in [
        "vienna-01-t1=6",
        "vienna-01-t1=10,graz-01-t1=1",
        "vienna-01-t1=x",
        "",
    ] {
        let (status, _, body) = send(&r, pull(heads)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert!(lost().await.is_empty());
    // The PC dies; a backup ending at 6 is restored: 7 to 10 were never at HQ and are lost.
    let (status, _, body) = send(&r, pull("vienna-01-t1=6")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let named = lost().await;
    assert_eq!(named.len(), 1, "{named:?}");
    assert_eq!(named[0].0, "vienna-01");
    assert!(named[0].1.contains("sequences 7 to 10"), "{named:?}");
    // Said again, or grown again, nothing more is named.
    for heads in ["vienna-01-t1=6", "vienna-01-t1=8"] {
        send(&r, pull(heads)).await;
    }
    assert_eq!(lost().await.len(), 1);
    let reported: Option<i64> =
        sqlx::query_scalar("SELECT reported_seq FROM terminals WHERE id = 'graz-01-t1'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        reported, None,
        "another store's credential spoke for graz-01-t1"
    );
    // Below what HQ holds (a backup older than HQ, restored without asking it): only what HQ
    // does not hold is lost.
    send(&r, pull("vienna-01-t1=2")).await;
    let named = lost().await;
    assert_eq!(named.len(), 2, "{named:?}");
    assert!(named[1].1.contains("sequences 5 to 8"), "{named:?}");
    let (_, listed) = get(&r, "/v1/terminals", Some(READ_TOKEN)).await;
    let t1 = listed["terminals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "vienna-01-t1")
        .unwrap()
        .clone();
    assert_eq!(t1["lost"], serde_json::json!([[7, 10], [5, 8]]), "{t1}");
    assert_eq!(t1["reported_seq"], 2, "{t1}");
    let audit: Vec<String> = audit_actions(db).await;
    assert_eq!(
        audit
            .iter()
            .filter(|a| *a == "terminal.sequences_lost")
            .count(),
        2
    );
}

/// Categories: added at the top and under another, listed with their paths; an unknown parent,
/// a category under itself (however far down) and a bad id are refused at their field and
/// write nothing; a variant names a category HQ holds, or is refused at `category`. A variant
/// written by an import batch shows the batch and where its fields came from.
async fn categories_form_a_tree_products_name_one_and_a_variant_shows_its_imports(db: &Db) {
    use serde_json::json;
    let key = catalog_writer(db).await;
    let bearer = format!("Bearer {key}");
    let r = router(db);
    let auth = [("authorization", bearer.as_str())];
    let put =
        |id: &str, body: &Value| json_request("PUT", &format!("/v1/categories/{id}"), &auth, body);
    for (id, body) in [
        ("food", json!({"id": "food", "name": "Lebensmittel"})),
        (
            "bakery",
            json!({"id": "bakery", "name": "Brot & Gebäck", "parent": "food"}),
        ),
        (
            "rye",
            json!({"id": "rye", "name": "Roggen", "parent": "bakery"}),
        ),
    ] {
        let (status, _, answer) = send(&r, put(id, &body)).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    let start = reference_version(db).await;
    for (id, body, field) in [
        (
            "dairy",
            json!({"id": "dairy", "name": "Milch", "parent": "drinks"}),
            "parent",
        ),
        ("Dairy", json!({"id": "Dairy", "name": "Milch"}), "id"),
        ("dairy", json!({"id": "dairy", "name": "  "}), "name"),
        ("dairy", json!({"id": "milk", "name": "Milch"}), "id"),
    ] {
        let answer = send(&r, put(id, &body)).await;
        assert_error(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some(field),
        );
    }
    // Food moved under rye (which is under bakery, under food), or under itself: refused.
    let any_version = [("authorization", bearer.as_str()), ("if-match", "*")];
    for parent in ["rye", "food"] {
        let moved = json!({"id": "food", "name": "Lebensmittel", "parent": parent});
        let answer = send(
            &r,
            json_request("PUT", "/v1/categories/food", &any_version, &moved),
        )
        .await;
        assert_error(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some("parent"),
        );
    }
    assert_eq!(
        reference_version(db).await,
        start,
        "a refusal writes nothing"
    );
    let (status, listed) = get(&r, "/v1/categories", Some(&key)).await;
    assert_eq!(status, StatusCode::OK);
    let paths: Vec<(&str, &str)> = listed["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["path"].as_str().unwrap()))
        .filter(|(id, _)| ["food", "bakery", "rye"].contains(id))
        .collect();
    assert_eq!(
        paths,
        [
            ("bakery", "Lebensmittel › Brot & Gebäck"),
            ("food", "Lebensmittel"),
            ("rye", "Lebensmittel › Brot & Gebäck › Roggen")
        ]
    );

    // A variant in a category: one HQ holds, or refused at the field.
    let (_, etag, read) = call(
        &r,
        Request::get("/v1/variants/GRO-BRD-0012")
            .header("authorization", &bearer)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let mut entity = read["variant"].clone();
    entity["category"] = json!("pastry");
    let with_etag = [
        ("authorization", bearer.as_str()),
        ("if-match", etag.as_str()),
    ];
    let answer = send(
        &r,
        json_request("PUT", "/v1/variants/GRO-BRD-0012", &with_etag, &entity),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_field",
        Some("category"),
    );
    entity["category"] = json!("rye");
    let (status, _, written) = send(
        &r,
        json_request("PUT", "/v1/variants/GRO-BRD-0012", &with_etag, &entity),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{written}");
    assert_eq!(written["variant"]["category"], "rye");
    assert!(read["imports"].as_array().unwrap().is_empty(), "{read}");

    // An import batch writes the variant: the variant says which batch and from where.
    let provenance = json!([{"source": "sku", "system": "square", "file": "items.csv", "line": 7, "legacy_id": "SQ-1", "fields": ["name", "gtin"]}]);
    let mut imported: protocol::sync::VariantEntity =
        serde_json::from_value(entity.clone()).unwrap();
    imported.variant.name = "Bauernbrot 1 kg".into();
    hq::import::commit(
        db,
        "square catalog",
        jiff::Timestamp::now().as_millisecond(),
        &[hq::import::EntityWrite {
            kind: "variant".into(),
            key: "GRO-BRD-0012".into(),
            payload: Some(serde_json::to_string(&imported).unwrap()),
            provenance: Some(provenance.to_string()),
        }],
        &[],
    )
    .await
    .unwrap();
    let (_, read) = get(&r, "/v1/variants/GRO-BRD-0012", Some(&key)).await;
    let imports = read["imports"].as_array().unwrap();
    assert_eq!(imports.len(), 1, "{read}");
    assert_eq!(imports[0]["label"], "square catalog");
    assert_eq!(imports[0]["undone"], false);
    assert_eq!(imports[0]["provenance"], provenance);
    assert_eq!(read["variant"]["category"], "rye", "{read}");
}

/// Availability and reservations: available = on hand − reserved − safety stock; a reservation
/// the store cannot promise is refused at its line; of eight requests for the last unit at once
/// exactly one holds it; an expired reservation holds nothing; extend, release and convert end
/// it as asked (the same action again changes nothing, another is `409 not_active`); a retried
/// request is answered, not repeated; every change is on the feed; bad input by field.
async fn a_store_holds_stock_for_its_customers_with_its_own_credential_and_nothing_more(db: &Db) {
    use serde_json::json;
    catalog_writer(db).await;
    let vienna = hq::add_store(db, &StoreId::parse("vienna-01").unwrap(), "Wien")
        .await
        .unwrap();
    sqlx::query("INSERT INTO stock_levels (location, sku, on_hand) VALUES ('vienna-01', 'GRO-BRD-0012', 3000)")
        .execute(&db.pool)
        .await
        .unwrap();
    let bearer = format!("Bearer {vienna}");
    let auth = [("authorization", bearer.as_str())];
    let r = router(db);
    let hold = |location: &str, channel: &str, quantity: &str| {
        json!({"location": location, "channel": channel, "ttl_seconds": 86_400,
               "reference": "Frau Berger", "lines": [{"sku": "GRO-BRD-0012", "quantity": quantity}]})
    };
    // Another store's stock, a cart for the web, more than the store can promise: refused.
    let answer = send(
        &r,
        json_request(
            "POST",
            "/v1/reservations",
            &auth,
            &hold("graz-01", "store", "1"),
        ),
    )
    .await;
    assert_error(&answer, StatusCode::FORBIDDEN, "store_not_yours", None);
    let answer = send(
        &r,
        json_request(
            "POST",
            "/v1/reservations",
            &auth,
            &hold("vienna-01", "online", "1"),
        ),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::FORBIDDEN,
        "missing_scope",
        Some("channel"),
    );
    let answer = send(
        &r,
        json_request(
            "POST",
            "/v1/reservations",
            &auth,
            &hold("vienna-01", "store", "4"),
        ),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "insufficient_stock",
        Some("lines[0].quantity"),
    );
    // Its own customers' hold: taken, by the store, and released by it.
    let (status, _, held) = send(
        &r,
        json_request(
            "POST",
            "/v1/reservations",
            &auth,
            &hold("vienna-01", "store", "2"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    let actor: String = sqlx::query_scalar("SELECT actor FROM reservations WHERE id = $1")
        .bind(held["id"].as_str().unwrap())
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(actor, "store:vienna-01");
    let snapshot = hq::api::stock_snapshot(db, "vienna-01").await.unwrap();
    assert_eq!(
        snapshot.reserved.get("GRO-BRD-0012"),
        Some(&2000),
        "{snapshot:?}"
    );
    let release = format!("/v1/reservations/{}/actions", held["id"].as_str().unwrap());
    let (status, _, released) = send(
        &r,
        json_request("POST", &release, &auth, &json!({"action": "release"})),
    )
    .await;
    assert_eq!(
        (status, &released["state"]),
        (StatusCode::OK, &json!("released")),
        "{released}"
    );
    assert!(
        hq::api::stock_snapshot(db, "vienna-01")
            .await
            .unwrap()
            .reserved
            .is_empty()
    );
    // The credential opens nothing else of the API.
    let (status, _) = get(&r, "/v1/availability?skus=GRO-BRD-0012", Some(&vienna)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn reservations_never_take_available_below_zero_and_end_as_asked(db: &Db) {
    use hq::identity::{Actor, Scope, create_api_key};
    use serde_json::json;
    catalog_writer(db).await;
    let now = jiff::Timestamp::now().as_millisecond();
    let shop = create_api_key(
        db,
        &Actor::Cli,
        "web shop",
        &[
            Scope::StockRead,
            Scope::ReservationsWrite,
            Scope::StoresWrite,
        ],
        now,
    )
    .await
    .unwrap()
    .secret;
    let reader = create_api_key(db, &Actor::Cli, "reader", &[Scope::StockRead], now)
        .await
        .unwrap()
        .secret;
    let bearer = format!("Bearer {shop}");
    let auth = [("authorization", bearer.as_str())];
    let r = router(db);
    let set_on_hand = |milli: i64| async move {
        sqlx::query(
            "DELETE FROM stock_levels WHERE location = 'vienna-01' AND sku = 'GRO-BRD-0012'",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO stock_levels (location, sku, on_hand) VALUES ('vienna-01', 'GRO-BRD-0012', $1)")
            .bind(milli)
            .execute(&db.pool)
            .await
            .unwrap();
    };
    set_on_hand(3000).await;
    let available = || async {
        let (status, body) = get(
            &r,
            "/v1/availability?skus=GRO-BRD-0012,NOPE-1&location=vienna-01",
            Some(&shop),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["variants"][1]["known"], false, "{body}");
        body["variants"][0]["locations"][0].clone()
    };
    let figures = available().await;
    assert_eq!(
        (
            &figures["on_hand"],
            &figures["reserved"],
            &figures["available"]
        ),
        (&json!("3"), &json!("0"), &json!("3"))
    );
    // One kept back.
    let (status, _, body) = send(
        &r,
        json_request(
            "PUT",
            "/v1/safety-stock/vienna-01/GRO-BRD-0012",
            &auth,
            &json!({"quantity": "1"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(available().await["available"], "2");

    let reserve = |quantity: &str, ttl: Option<i64>| {
        let mut body = json!({"location": "vienna-01", "lines": [{"sku": "GRO-BRD-0012", "quantity": quantity}], "reference": "cart-1"});
        if let Some(ttl) = ttl {
            body["ttl_seconds"] = json!(ttl);
        }
        json_request("POST", "/v1/reservations", &auth, &body)
    };
    // Bad input by field, nothing held.
    for (body, field) in [
        (
            json!({"location": "vienna-01", "lines": [{"sku": "GRO-BRD-0012", "quantity": "0"}]}),
            "lines[0].quantity",
        ),
        (
            json!({"location": "vienna-01", "lines": [{"sku": "NOPE-1", "quantity": "1"}]}),
            "lines[0].sku",
        ),
        (json!({"location": "vienna-01", "lines": []}), "lines"),
        (
            json!({"location": "vienna-01", "lines": [{"sku": "GRO-BRD-0012", "quantity": "1"}], "ttl_seconds": 5}),
            "ttl_seconds",
        ),
        (
            json!({"location": "linz-01", "lines": [{"sku": "GRO-BRD-0012", "quantity": "1"}]}),
            "location",
        ),
    ] {
        let answer = send(&r, json_request("POST", "/v1/reservations", &auth, &body)).await;
        assert_error(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some(field),
        );
    }
    let answer = send(
        &r,
        json_request(
            "POST",
            "/v1/reservations",
            &auth,
            &json!({"location": "vienna-01", "lines": [{"sku": "GRO-BRD-0001", "quantity": "1"}]}),
        ),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "not_sold_online",
        Some("lines[0].sku"),
    );
    let reader_bearer = format!("Bearer {reader}");
    let answer = send(
        &r,
        json_request(
            "POST",
            "/v1/reservations",
            &[("authorization", &reader_bearer)],
            &json!({"location": "vienna-01", "lines": [{"sku": "GRO-BRD-0012", "quantity": "1"}]}),
        ),
    )
    .await;
    assert_error(&answer, StatusCode::FORBIDDEN, "missing_scope", None);
    // No credential at all; a store manager of graz-01 holding stock at vienna-01; the same
    // manager without the CSRF token.
    let hold =
        json!({"location": "vienna-01", "lines": [{"sku": "GRO-BRD-0012", "quantity": "1"}]});
    let answer = send(&r, json_request("POST", "/v1/reservations", &[], &hold)).await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized", None);
    hq::add_store(db, &StoreId::parse("graz-01").unwrap(), "Graz")
        .await
        .unwrap();
    let manager = hq::identity::NewUser {
        name: "maria".into(),
        display_name: "Maria".into(),
        role: hq::identity::Role::StoreManager,
        stores: vec!["graz-01".to_owned()],
        password: "correct horse battery".into(),
    };
    hq::identity::add_user(db, &manager, &Actor::Cli, now)
        .await
        .unwrap();
    let (_, cookie, signed_in) = sign_in(&r, "maria", "correct horse battery").await;
    let cookie = format!("{}={}", hq::sessions::COOKIE, cookie_value(&cookie));
    let csrf = signed_in["csrf"].as_str().unwrap();
    let answer = send(
        &r,
        json_request(
            "POST",
            "/v1/reservations",
            &[
                ("cookie", cookie.as_str()),
                (hq::sessions::CSRF_HEADER, csrf),
            ],
            &hold,
        ),
    )
    .await;
    assert_error(&answer, StatusCode::FORBIDDEN, "store_not_yours", None);
    let answer = send(
        &r,
        json_request(
            "POST",
            "/v1/reservations",
            &[("cookie", cookie.as_str())],
            &hold,
        ),
    )
    .await;
    assert_error(&answer, StatusCode::FORBIDDEN, "csrf", None);
    assert_eq!(available().await["reserved"], "0");

    // Two of the two available held; a third refused with what is available.
    let (status, _, held) = send(&r, reserve("2", None)).await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    assert_eq!(held["state"], "active");
    let id = held["id"].as_str().unwrap().to_owned();
    assert_eq!(available().await["available"], "0");
    let answer = send(&r, reserve("1", None)).await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "insufficient_stock",
        Some("lines[0].quantity"),
    );
    assert!(
        answer.2["message"]
            .as_str()
            .unwrap()
            .contains("can promise 0"),
        "{}",
        answer.2
    );
    let act = |id: &str, body: serde_json::Value| {
        json_request(
            "POST",
            &format!("/v1/reservations/{id}/actions"),
            &auth,
            &body,
        )
    };
    // Released: available again; released twice is the same; extended after is not.
    for _ in 0..2 {
        let (status, _, released) = send(&r, act(&id, json!({"action": "release"}))).await;
        assert_eq!(
            (status, &released["state"]),
            (StatusCode::OK, &json!("released"))
        );
    }
    let answer = send(
        &r,
        act(&id, json!({"action": "extend", "ttl_seconds": 600})),
    )
    .await;
    assert_error(&answer, StatusCode::CONFLICT, "not_active", None);
    assert_eq!(available().await["available"], "2");

    // The last unit, asked for eight times at once: exactly one holds it (three rounds).
    set_on_hand(1000).await;
    sqlx::query("DELETE FROM safety_stock")
        .execute(&db.pool)
        .await
        .unwrap();
    for round in 0..3 {
        sqlx::query("UPDATE reservations SET state = 'released' WHERE state = 'active'")
            .execute(&db.pool)
            .await
            .unwrap();
        sqlx::query("UPDATE reservation_lines SET live_until_ms = 0")
            .execute(&db.pool)
            .await
            .unwrap();
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let r = r.clone();
                let request = reserve("1", None);
                tokio::spawn(async move { send(&r, request).await.0 })
            })
            .collect();
        let mut outcomes = Vec::new();
        for racer in racers {
            outcomes.push(racer.await.unwrap());
        }
        assert_eq!(
            outcomes
                .iter()
                .filter(|s| **s == StatusCode::CREATED)
                .count(),
            1,
            "round {round}: {outcomes:?}"
        );
        assert!(
            outcomes
                .iter()
                .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
            "{outcomes:?}"
        );
        assert_eq!(available().await["available"], "0");
    }

    // Expired: holds nothing, reads expired, cannot be extended; the sweep records it.
    let winner: String = sqlx::query_scalar("SELECT id FROM reservations WHERE state = 'active'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE reservations SET expires_ms = $1 WHERE id = $2")
        .bind(now - 1)
        .bind(&winner)
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE reservation_lines SET live_until_ms = $1 WHERE reservation = $2")
        .bind(now - 1)
        .bind(&winner)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(available().await["available"], "1");
    let (_, read) = get(&r, &format!("/v1/reservations/{winner}"), Some(&reader)).await;
    assert_eq!(read["state"], "expired", "{read}");
    let answer = send(&r, act(&winner, json!({"action": "convert"}))).await;
    assert_error(&answer, StatusCode::CONFLICT, "not_active", None);
    assert_eq!(
        hq::availability::expire(db, jiff::Timestamp::now().as_millisecond())
            .await
            .unwrap(),
        1
    );

    // Extended, then converted; a retried request with its key is answered, not repeated.
    let keyed = |key: &str| {
        let mut request = reserve("1", Some(60));
        request
            .headers_mut()
            .insert("idempotency-key", key.parse().unwrap());
        request
    };
    let (status, _, first) = send(&r, keyed("cart-1-hold")).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, _, again) = send(&r, keyed("cart-1-hold")).await;
    assert_eq!((status, &again["id"]), (StatusCode::CREATED, &first["id"]));
    let id = first["id"].as_str().unwrap().to_owned();
    let (status, _, extended) = send(
        &r,
        act(&id, json!({"action": "extend", "ttl_seconds": 3600})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{extended}");
    assert!(
        extended["expires_ms"].as_i64().unwrap()
            > first["expires_ms"].as_i64().unwrap() + 3_000_000
    );
    let (status, _, converted) = send(&r, act(&id, json!({"action": "convert"}))).await;
    assert_eq!(
        (status, &converted["state"]),
        (StatusCode::OK, &json!("converted"))
    );
    assert_eq!(
        available().await["available"],
        "1",
        "a converted hold no longer holds stock"
    );
    let answer = send(&r, act(&id, json!({"action": "dance"}))).await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_field",
        Some("action"),
    );

    // Every change of the figure is on the feed; read to its end, it is empty.
    let (_, feed) = get(
        &r,
        "/v1/availability/changes?after=0&limit=1000",
        Some(&reader),
    )
    .await;
    let changes = feed["changes"].as_array().unwrap();
    assert!(changes.len() >= 6, "{feed}");
    assert!(
        changes
            .iter()
            .all(|c| c["location"] == "vienna-01" && c["sku"] == "GRO-BRD-0012"),
        "{feed}"
    );
    let (_, rest) = get(
        &r,
        &format!("/v1/availability/changes?after={}", feed["next"]),
        Some(&reader),
    )
    .await;
    assert_eq!(rest["changes"], json!([]), "{rest}");
    // The feed keeps a week: pruned eight days on, nothing is left.
    assert_eq!(
        hq::availability::prune(db, now + 7 * 24 * 3_600_000 - 60_000)
            .await
            .unwrap(),
        0
    );
    assert!(
        hq::availability::prune(db, now + 8 * 24 * 3_600_000)
            .await
            .unwrap()
            >= 6
    );
    let (_, pruned) = get(&r, "/v1/availability/changes?after=0", Some(&reader)).await;
    assert_eq!(pruned["changes"], json!([]), "{pruned}");
}

/// The chain's PIN pepper of the staff write API's HQ.
const STAFF_PEPPER: [u8; 32] = [7; 32];

/// Staff through the write API: a new member needs a PIN, which is hashed under the chain's
/// pepper and never answered; a change without a PIN keeps theirs; `If-Match` as for every
/// entity; HQ without the pepper refuses a PIN and writes nothing.
async fn staff_are_added_and_changed_and_a_pin_is_only_ever_kept_hashed(db: &Db) {
    use hq::identity::{Actor, Scope, create_api_key};
    use serde_json::json;
    catalog_writer(db).await;
    let now = jiff::Timestamp::now().as_millisecond();
    let key = create_api_key(
        db,
        &Actor::Cli,
        "hr",
        &[Scope::FleetRead, Scope::StoresWrite],
        now,
    )
    .await
    .unwrap()
    .secret;
    let bearer = format!("Bearer {key}");
    let without_pepper = router(db);
    let r = hq::api::router(Arc::new(
        hq::api::Hq::new(db.clone(), Some(READ_TOKEN.into())).with_pin_pepper(Some(STAFF_PEPPER)),
    ));
    let headers = [("authorization", bearer.as_str())];
    let start = reference_version(db).await;
    for (body, code, field) in [
        (
            json!({"id": "s-900", "name": "Eva", "role": "cashier"}),
            "invalid_field",
            "pin",
        ),
        (
            json!({"id": "s-900", "name": "Eva", "role": "cashier", "pin": "12a4"}),
            "invalid_field",
            "pin",
        ),
        (
            json!({"id": "s-900", "name": "Eva", "role": "owner", "pin": "1234"}),
            "invalid_field",
            "role",
        ),
        (
            json!({"id": "s-900", "name": " ", "role": "cashier", "pin": "1234"}),
            "invalid_field",
            "name",
        ),
        (
            json!({"id": "s-901", "name": "Eva", "role": "cashier", "pin": "1234"}),
            "invalid_field",
            "id",
        ),
    ] {
        let answer = send(&r, json_request("PUT", "/v1/staff/s-900", &headers, &body)).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, code, Some(field));
    }
    let eva = json!({"id": "s-900", "name": "Eva", "role": "cashier", "pin": "4711"});
    let answer = send(
        &without_pepper,
        json_request("PUT", "/v1/staff/s-900", &headers, &eva),
    )
    .await;
    assert_error(&answer, StatusCode::CONFLICT, "no_pin_pepper", Some("pin"));
    assert_eq!(
        reference_version(db).await,
        start,
        "a refusal writes nothing"
    );
    let (status, etag, added) =
        call(&r, json_request("PUT", "/v1/staff/s-900", &headers, &eva)).await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(
        added["staff"],
        json!({"id": "s-900", "name": "Eva", "role": "cashier"})
    );
    let held = || async {
        let payload: String = sqlx::query_scalar(
            "SELECT payload FROM ref_entities WHERE kind = 'staff' AND key = 's-900'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        serde_json::from_str::<protocol::seed::StaffDto>(&payload).unwrap()
    };
    let first = held().await;
    assert!(first.pin.is_none());
    let hash = first.pin_hash.clone().unwrap();
    assert!(protocol::pin::verify(&STAFF_PEPPER, "4711", &hash));
    // Promoted without a PIN: the PIN stays; with If-Match only.
    let promoted = json!({"id": "s-900", "name": "Eva Berger", "role": "supervisor"});
    let answer = send(
        &r,
        json_request("PUT", "/v1/staff/s-900", &headers, &promoted),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::PRECONDITION_REQUIRED,
        "if_match_required",
        None,
    );
    let with_tag = [
        ("authorization", bearer.as_str()),
        ("if-match", etag.as_str()),
    ];
    let (status, _, changed) = call(
        &r,
        json_request("PUT", "/v1/staff/s-900", &with_tag, &promoted),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let second = held().await;
    assert_eq!(
        (second.role.as_str(), second.pin_hash),
        ("supervisor", Some(hash))
    );
    let (_, listed) = get(&r, "/v1/staff", Some(&key)).await;
    assert!(
        !listed.to_string().contains("argon2"),
        "a list never shows a PIN's hash: {listed}"
    );
    assert!(audit_actions(db).await.contains(&"staff.update".to_owned()));
}

/// A tax jurisdiction is changed with `If-Match`; a change that would strand a store's currency
/// or a variant's tax category is refused by name and writes nothing.
async fn a_jurisdiction_is_changed_and_what_depends_on_it_is_kept(db: &Db) {
    use hq::identity::{Actor, Scope, create_api_key};
    use serde_json::json;
    let catalog_key = catalog_writer(db).await;
    let now = jiff::Timestamp::now().as_millisecond();
    let key = create_api_key(
        db,
        &Actor::Cli,
        "tax",
        &[Scope::FleetRead, Scope::StoresWrite],
        now,
    )
    .await
    .unwrap()
    .secret;
    let r = router(db);
    let (status, list) = get(&r, "/v1/jurisdictions", Some(&key)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let at = list["jurisdictions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["jurisdiction"]["code"] == "AT")
        .unwrap()
        .clone();
    let etag = format!("\"{}\"", at["version"]);
    let bearer = format!("Bearer {key}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("if-match", etag.as_str()),
    ];
    let start = reference_version(db).await;
    let mut chf = at["jurisdiction"].clone();
    chf["currency"] = json!("CHF");
    let answer = send(
        &r,
        json_request("PUT", "/v1/jurisdictions/AT", &headers, &chf),
    )
    .await;
    assert_error(&answer, StatusCode::CONFLICT, "in_use", Some("currency"));
    let mut bad = at["jurisdiction"].clone();
    bad["pricing"] = json!("sometimes");
    let answer = send(
        &r,
        json_request("PUT", "/v1/jurisdictions/AT", &headers, &bad),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_field",
        Some("pricing"),
    );
    assert_eq!(
        reference_version(db).await,
        start,
        "a refusal writes nothing"
    );
    // A rule added: a new version, audited.
    let mut more = at["jurisdiction"].clone();
    let mut rule = more["rules"][0].clone();
    rule["category"] = json!("books");
    more["rules"].as_array_mut().unwrap().push(rule);
    let (status, books_etag, written) = call(
        &r,
        json_request("PUT", "/v1/jurisdictions/AT", &headers, &more),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{written}");
    assert!(reference_version(db).await > start);
    assert!(
        audit_actions(db)
            .await
            .contains(&"jurisdiction.update".to_owned())
    );
    // A variant taxed as books: the rule can no longer go.
    let catalog = format!("Bearer {catalog_key}");
    let book = json!({"product_id": "book-1", "product_name": "Kochbuch", "variant": {
        "sku": "BOOK-0001", "name": "Kochbuch", "identifiers": [], "tax": "books",
        "unit": "each", "channels": "all", "open_price": false}});
    let (status, _, made) = call(
        &r,
        json_request(
            "PUT",
            "/v1/variants/BOOK-0001",
            &[("authorization", catalog.as_str())],
            &book,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let with_books = [
        ("authorization", bearer.as_str()),
        ("if-match", books_etag.as_str()),
    ];
    let before = reference_version(db).await;
    let answer = send(
        &r,
        json_request(
            "PUT",
            "/v1/jurisdictions/AT",
            &with_books,
            &at["jurisdiction"],
        ),
    )
    .await;
    assert_error(&answer, StatusCode::CONFLICT, "in_use", Some("rules"));
    assert_eq!(
        reference_version(db).await,
        before,
        "a refusal writes nothing"
    );
}

/// What a store node says of itself on a reference pull (version, unsynced events, clock) is
/// kept for the fleet page; headers that are absent or garbage are kept as unknown and the
/// pull is answered all the same.
async fn a_store_node_reports_its_version_backlog_and_clock_on_each_pull(db: &Db) {
    catalog_writer(db).await;
    let store = hq::add_store(db, &StoreId::parse("vienna-01").unwrap(), "Wien")
        .await
        .unwrap();
    let r = router(db);
    let pull = |headers: Vec<(&'static str, String)>| {
        let (r, store) = (r.clone(), store.clone());
        async move {
            let mut request = Request::get("/v1/sync/reference?since=0")
                .header("authorization", format!("Bearer {store}"));
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let response = r
                .oneshot(request.body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    };
    let status = || async {
        sqlx::query_as::<_, (Option<String>, Option<i64>, Option<i64>, Option<i64>)>(
            "SELECT node_version, node_unsynced, node_clock_offset_ms, node_status_ms FROM stores WHERE id = 'vienna-01'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap()
    };
    let ahead = jiff::Timestamp::now().as_millisecond() + 90_000;
    pull(vec![
        (protocol::sync::NODE_VERSION_HEADER, "0.9.1".into()),
        (protocol::sync::NODE_UNSYNCED_HEADER, "37".into()),
        (protocol::sync::NODE_CLOCK_HEADER, ahead.to_string()),
    ])
    .await;
    let (version, unsynced, offset, at) = status().await;
    assert_eq!((version.as_deref(), unsynced), (Some("0.9.1"), Some(37)));
    let offset = offset.unwrap();
    assert!((85_000..=90_000).contains(&offset), "{offset}");
    assert!(at.is_some());
    pull(vec![
        (protocol::sync::NODE_VERSION_HEADER, "<script>".into()),
        (protocol::sync::NODE_UNSYNCED_HEADER, "-4".into()),
        (protocol::sync::NODE_CLOCK_HEADER, "soon".into()),
    ])
    .await;
    assert_eq!(status().await.0, None);
    assert_eq!((status().await.1, status().await.2), (None, None));
    // The oldest unsynced event's clock, when the node names one; garbage is unknown.
    let oldest = || async {
        sqlx::query_scalar::<_, Option<i64>>(
            "SELECT node_oldest_unsynced_ms FROM stores WHERE id = 'vienna-01'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap()
    };
    pull(vec![
        (protocol::sync::NODE_UNSYNCED_HEADER, "2".into()),
        (
            protocol::sync::NODE_OLDEST_UNSYNCED_HEADER,
            "1795476600000".into(),
        ),
    ])
    .await;
    assert_eq!(oldest().await, Some(1_795_476_600_000));
    pull(vec![(
        protocol::sync::NODE_OLDEST_UNSYNCED_HEADER,
        "yesterday".into(),
    )])
    .await;
    assert_eq!(oldest().await, None);
}

/// A webhook receiver on 127.0.0.1 that refuses every other request with a 500 and records
/// each request: (event id, type, resource, sequence, accepted, signature header, body).
#[derive(Default)]
struct Receiver {
    seen: std::sync::Mutex<Vec<Received>>,
    count: AtomicU64,
}

/// One request a receiver got.
#[derive(Clone)]
struct Received {
    id: String,
    kind: String,
    resource: String,
    sequence: i64,
    accepted: bool,
    signature: String,
    body: Vec<u8>,
}

async fn receive(
    axum::extract::State(receiver): axum::extract::State<Arc<Receiver>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> StatusCode {
    let accept = receiver.count.fetch_add(1, Ordering::SeqCst) % 2 == 1;
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("kassa-webhook-id"), event["id"].as_str().unwrap());
    receiver.seen.lock().unwrap().push(Received {
        id: event["id"].as_str().unwrap_or_default().to_owned(),
        kind: event["type"].as_str().unwrap_or_default().to_owned(),
        resource: event["resource"].as_str().unwrap_or_default().to_owned(),
        sequence: event["sequence"].as_i64().unwrap_or_default(),
        accepted: accept,
        signature: header("kassa-webhook-signature"),
        body: body.to_vec(),
    });
    if accept {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// What a receiver computes, written from the documented scheme (not HQ's code): HMAC-SHA256
/// under the secret of `<t>.<body>`, in hex, one `v1=` per secret that signs.
fn signatures_of(header: &str, secret: &str, body: &[u8]) -> (i64, bool) {
    use hmac::{KeyInit, Mac};
    let t: i64 = header
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .unwrap()
        .parse()
        .unwrap();
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    (
        t,
        header
            .split(',')
            .any(|p| p.strip_prefix("v1=") == Some(expected.as_str())),
    )
}

/// A shop subscribes to reservations and availability; its receiver is down at first and then
/// refuses every other request. Every event is accepted exactly once by id (a retry repeats the
/// id), each resource's events are accepted in sequence order, every request is signed under
/// the secret (and the previous one while a rotation overlaps), the delivery log shows the
/// refusals, a delivery is sent again by hand, another key sees none of it, and bad
/// subscriptions are refused by field.
async fn webhooks_deliver_every_event_once_accepted_in_order_through_failures_and_an_outage(
    db: &Db,
) {
    use hq::identity::{Actor, Scope, create_api_key};
    use serde_json::json;
    catalog_writer(db).await;
    let now = jiff::Timestamp::now().as_millisecond();
    let shop = create_api_key(
        db,
        &Actor::Cli,
        "web shop",
        &[
            Scope::StockRead,
            Scope::ReservationsWrite,
            Scope::WebhooksWrite,
        ],
        now,
    )
    .await
    .unwrap();
    let other = create_api_key(db, &Actor::Cli, "erp", &[Scope::WebhooksWrite], now)
        .await
        .unwrap();
    let bearer = format!("Bearer {}", shop.secret);
    let auth = [("authorization", bearer.as_str())];
    let other_bearer = format!("Bearer {}", other.secret);
    let other_auth = [("authorization", other_bearer.as_str())];
    let r = router(db);
    sqlx::query("INSERT INTO stock_levels (location, sku, on_hand) VALUES ('vienna-01', 'GRO-BRD-0012', 100000)")
        .execute(&db.pool)
        .await
        .unwrap();

    // Bad subscriptions, by field; nothing kept.
    for (body, field) in [
        (json!({"url": "ftp://127.0.0.1/x", "events": ["*"]}), "url"),
        (json!({"url": "not a url", "events": ["*"]}), "url"),
        (
            json!({"url": "http://u:p@127.0.0.1/x", "events": ["*"]}),
            "url",
        ),
        (
            json!({"url": "http://127.0.0.1/x", "events": ["order.nope"]}),
            "events[0]",
        ),
        (json!({"url": "http://127.0.0.1/x", "events": []}), "events"),
        (
            json!({"url": "http://127.0.0.1/x", "events": ["*"], "api_key": other.key.id}),
            "api_key",
        ),
    ] {
        let answer = send(&r, json_request("POST", "/v1/webhooks", &auth, &body)).await;
        assert_error(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some(field),
        );
    }

    // The receiver's port, not listening yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let (status, _, subscription) = send(
        &r,
        json_request(
            "POST",
            "/v1/webhooks",
            &auth,
            &json!({"url": url, "events": ["reservation.*", "availability.changed"]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{subscription}");
    let id = subscription["id"].as_str().unwrap().to_owned();
    let secret = subscription["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let (status, listed) = get(&r, "/v1/webhooks", Some(&other.secret)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["subscriptions"], json!([]), "another key sees none");
    let (status, _) = get(
        &r,
        &format!("/v1/webhooks/{id}/deliveries"),
        Some(&other.secret),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let answer = send(
        &r,
        Request::delete(format!("/v1/webhooks/{id}"))
            .header("authorization", &other_bearer)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.0, StatusCode::NOT_FOUND);
    let _ = other_auth;

    // Ten reservations, five released: 15 reservation events, 15 of availability (one resource).
    let mut reservations = Vec::new();
    for i in 0..10 {
        let (status, _, body) = send(
            &r,
            json_request(
                "POST",
                "/v1/reservations",
                &auth,
                &json!({"location": "vienna-01", "lines": [{"sku": "GRO-BRD-0012", "quantity": "1"}], "reference": format!("cart-{i}")}),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        reservations.push(body["id"].as_str().unwrap().to_owned());
    }
    for id in &reservations[..5] {
        let (status, _, body) = send(
            &r,
            json_request(
                "POST",
                &format!("/v1/reservations/{id}/actions"),
                &auth,
                &json!({"action": "release"}),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let events: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT id, resource, seq FROM webhook_events ORDER BY created_ms, seq")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(events.len(), 30);

    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    let backoff = hq::webhooks::Backoff {
        base_ms: 20,
        cap_ms: 200,
    };
    // Down: attempts fail and are logged; nothing is lost.
    for _ in 0..5 {
        hq::webhooks::deliver_due(
            db,
            &client,
            backoff,
            jiff::Timestamp::now().as_millisecond(),
        )
        .await
        .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    }
    let (status, log) = get(
        &r,
        &format!("/v1/webhooks/{id}/deliveries?state=pending"),
        Some(&shop.secret),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log["deliveries"].as_array().unwrap().len(), 30, "{log}");
    let tried: Vec<&Value> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["attempts"].as_i64().unwrap() > 0)
        .collect();
    assert!(!tried.is_empty());
    assert!(
        tried
            .iter()
            .all(|d| d["last_status"].is_null() && d["last_error"].is_string())
    );

    // Up, refusing every other request.
    let receiver = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        hq::webhooks::deliver_due(
            db,
            &client,
            backoff,
            jiff::Timestamp::now().as_millisecond(),
        )
        .await
        .unwrap();
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending'")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        if pending == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{pending} still pending"
        );
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    let seen = receiver.seen.lock().unwrap().clone();
    let accepted: Vec<_> = seen.iter().filter(|s| s.accepted).collect();
    let ids: std::collections::BTreeSet<&String> = events.iter().map(|e| &e.0).collect();
    let accepted_ids: std::collections::BTreeSet<&String> =
        accepted.iter().map(|s| &s.id).collect();
    assert_eq!(accepted.len(), 30, "each accepted once");
    assert_eq!(accepted_ids, ids, "every event accepted");
    assert!(
        seen.len() >= 60,
        "every other request was refused: {}",
        seen.len()
    );
    assert!(
        seen.iter().all(|s| ids.contains(&s.id)),
        "a repeat carries an event's id"
    );
    let now_s = jiff::Timestamp::now().as_second();
    for s in &seen {
        let (t, valid) = signatures_of(&s.signature, &secret, &s.body);
        assert!(valid, "signed: {}", s.signature);
        assert!((now_s - t).abs() < 120);
    }
    let mut last: std::collections::BTreeMap<&String, i64> = std::collections::BTreeMap::new();
    for s in &accepted {
        let before = last.insert(&s.resource, s.sequence).unwrap_or(0);
        assert_eq!(
            s.sequence,
            before + 1,
            "{} accepted in sequence",
            s.resource
        );
    }
    assert_eq!(last[&"availability:vienna-01|GRO-BRD-0012".to_owned()], 15);
    let released = format!("reservation:{}", reservations[0]);
    assert_eq!(last[&released], 2);
    let data: Value = serde_json::from_slice(
        &accepted
            .iter()
            .rfind(|s| s.kind == "availability.changed")
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(data["data"]["reserved"], "5", "{data}");
    assert_eq!(data["data"]["available"], "95", "{data}");

    // The log: delivered, with the refused attempt before.
    let (_, log) = get(
        &r,
        &format!("/v1/webhooks/{id}/deliveries?state=delivered&limit=1000"),
        Some(&shop.secret),
    )
    .await;
    let delivered = log["deliveries"].as_array().unwrap();
    assert_eq!(delivered.len(), 30);
    let refused_first = delivered
        .iter()
        .find(|d| d["attempts"].as_i64().unwrap() > 1)
        .unwrap();
    let (status, one) = get(
        &r,
        &format!("/v1/webhook-deliveries/{}", refused_first["id"]),
        Some(&shop.secret),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    let attempts = one["attempts"].as_array().unwrap();
    assert!(attempts.iter().any(|a| a["status"] == 500), "{one}");
    assert_eq!(attempts.last().unwrap()["status"], 204, "{one}");

    // Rotation: while the overlap lasts both secrets sign.
    let (status, _, rotated) = send(
        &r,
        json_request(
            "POST",
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &auth,
            &json!({"overlap_seconds": 3600}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    // Sent again by hand: the same event, id and body.
    let (status, _, again) = send(
        &r,
        json_request(
            "POST",
            &format!("/v1/webhook-deliveries/{}/redeliver", refused_first["id"]),
            &auth,
            &json!({}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["state"], "pending");
    let before = receiver.seen.lock().unwrap().len();
    for _ in 0..50 {
        hq::webhooks::deliver_due(
            db,
            &client,
            backoff,
            jiff::Timestamp::now().as_millisecond(),
        )
        .await
        .unwrap();
        if receiver
            .seen
            .lock()
            .unwrap()
            .iter()
            .skip(before)
            .any(|s| s.accepted)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    let seen = receiver.seen.lock().unwrap().clone();
    let resent = &seen[before..];
    assert!(!resent.is_empty());
    for s in resent {
        assert_eq!(s.id, refused_first["event"].as_str().unwrap());
        assert!(
            signatures_of(&s.signature, &new_secret, &s.body).1,
            "new secret signs"
        );
        assert!(
            signatures_of(&s.signature, &secret, &s.body).1,
            "previous secret signs in the overlap"
        );
    }
    let actions = audit_actions(db).await;
    for action in [
        "webhook.subscribe",
        "webhook.rotate-secret",
        "webhook.redeliver",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }

    // Removed: later changes are not told.
    let answer = send(
        &r,
        Request::delete(format!("/v1/webhooks/{id}"))
            .header("authorization", &bearer)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.0, StatusCode::NO_CONTENT);
    let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let (status, _, _) = send(
        &r,
        json_request(
            "POST",
            &format!("/v1/reservations/{}/actions", reservations[9]),
            &auth,
            &json!({"action": "release"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(after, held);
    server.abort();
}

/// A shop's order: bad input refused by field with nothing written, a cart hold converted, the
/// same request twice answered once, routed to its store's reference pull (and no other),
/// cancelled with its stock available again; a till selling what it holds puts it in
/// `stock_conflict` (exception and webhook) until stock comes back; the store's ledger picks
/// it short, readies it and hands it over, which ends its hold and takes the stock out once.
async fn an_order_holds_its_stock_reaches_its_store_and_moves_on_with_the_store_ledger(db: &Db) {
    use domain::ledger::{OrderStep, OrderStepKind};
    use domain::quantity::Quantity;
    use hq::identity::{Actor, NewUser, Role, Scope, add_user, create_api_key};
    use serde_json::json;
    catalog_writer(db).await;
    let till = Till::new("vienna-01", "vienna-01-t1", 7);
    let token = till.register(db).await;
    let now = jiff::Timestamp::now().as_millisecond();
    let shop = create_api_key(
        db,
        &Actor::Cli,
        "web shop",
        &[
            Scope::StockRead,
            Scope::ReservationsWrite,
            Scope::OrdersRead,
            Scope::OrdersWrite,
            Scope::WebhooksWrite,
        ],
        now,
    )
    .await
    .unwrap()
    .secret;
    let bearer = format!("Bearer {shop}");
    let auth = [("authorization", bearer.as_str())];
    let r = router(db);
    let (status, _, _) = send(
        &r,
        json_request(
            "POST",
            "/v1/webhooks",
            &auth,
            &json!({"url": "http://127.0.0.1:9/hook", "events": ["order.*"]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    sqlx::query("INSERT INTO stock_levels (location, sku, on_hand) VALUES ('vienna-01', 'GRO-BRD-0012', 5000)")
        .execute(&db.pool)
        .await
        .unwrap();
    let figures = || async {
        let (status, body) = get(
            &r,
            "/v1/availability?skus=GRO-BRD-0012&location=vienna-01",
            Some(&shop),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let f = &body["variants"][0]["locations"][0];
        (
            f["on_hand"].as_str().unwrap().to_owned(),
            f["reserved"].as_str().unwrap().to_owned(),
            f["available"].as_str().unwrap().to_owned(),
        )
    };
    let order = |lines: Value| {
        json!({
            "store": "vienna-01",
            "fulfilment": "pickup",
            "payment": {"state": "paid", "psp_reference": "psp-1"},
            "customer": {"name": "Eva Huber", "email": "eva@example.at"},
            "lines": lines,
            "reference": "shop-1001",
        })
    };
    let bread = |q: &str| json!([{"sku": "GRO-BRD-0012", "quantity": q, "unit_price": "4.20"}]);

    // Bad input, by field; nothing written.
    let mut cases = vec![
        (
            order(json!([{"sku": "NOPE-1", "quantity": "1", "unit_price": "1"}])),
            "lines[0].sku",
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            order(bread("-1")),
            "lines[0].quantity",
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            order(bread("1.5")),
            "lines[0].quantity",
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            order(json!([{"sku": "GRO-BRD-0012", "quantity": "1", "unit_price": "-1"}])),
            "lines[0].unit_price",
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            order(json!([{"sku": "GRO-BRD-0001", "quantity": "1", "unit_price": "0.45"}])),
            "lines[0].sku",
            StatusCode::CONFLICT,
            "not_sold_online",
        ),
        (
            order(bread("6")),
            "lines[0].quantity",
            StatusCode::CONFLICT,
            "insufficient_stock",
        ),
        (
            order(json!([])),
            "lines",
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
    ];
    let mut unpaid = order(bread("1"));
    unpaid["payment"] = json!({"state": "paid"});
    cases.push((
        unpaid,
        "payment.psp_reference",
        StatusCode::BAD_REQUEST,
        "invalid_field",
    ));
    let mut shipped_unpaid = order(bread("1"));
    shipped_unpaid["fulfilment"] = json!("ship-from-store");
    shipped_unpaid["payment"] = json!({"state": "at-pickup"});
    shipped_unpaid["shipping_address"] = json!("Hauptstraße 1, 1010 Wien");
    cases.push((
        shipped_unpaid,
        "payment.state",
        StatusCode::BAD_REQUEST,
        "invalid_field",
    ));
    let mut no_address = order(bread("1"));
    no_address["fulfilment"] = json!("ship-from-store");
    cases.push((
        no_address,
        "shipping_address",
        StatusCode::BAD_REQUEST,
        "invalid_field",
    ));
    let mut elsewhere = order(bread("1"));
    elsewhere["fulfilment"] = json!("elsewhere");
    cases.push((
        elsewhere,
        "fulfilment",
        StatusCode::BAD_REQUEST,
        "invalid_field",
    ));
    let mut nameless = order(bread("1"));
    nameless["customer"] = json!({"name": " "});
    cases.push((
        nameless,
        "customer.name",
        StatusCode::BAD_REQUEST,
        "invalid_field",
    ));
    let mut other_store = order(bread("1"));
    other_store["store"] = json!("linz-01");
    cases.push((
        other_store,
        "store",
        StatusCode::BAD_REQUEST,
        "invalid_field",
    ));
    for (body, field, status, code) in cases {
        let answer = send(&r, json_request("POST", "/v1/orders", &auth, &body)).await;
        assert_error(&answer, status, code, Some(field));
    }
    let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(held, 0);
    assert_eq!(figures().await, ("5".into(), "0".into(), "5".into()));

    // A cart hold of 2 converted into an order of 3, sent twice under one key.
    let (status, _, cart) = send(
        &r,
        json_request(
            "POST",
            "/v1/reservations",
            &auth,
            &json!({"location": "vienna-01", "lines": [{"sku": "GRO-BRD-0012", "quantity": "2"}]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{cart}");
    let mut first = order(bread("3"));
    first["reservation"] = cart["id"].clone();
    let keyed = [
        ("authorization", bearer.as_str()),
        ("idempotency-key", "order-1"),
    ];
    let (status, _, placed) = send(&r, json_request("POST", "/v1/orders", &keyed, &first)).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let (status, _, again) = send(&r, json_request("POST", "/v1/orders", &keyed, &first)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["id"], placed["id"]);
    assert_eq!(placed["status"], "placed");
    assert_eq!(placed["number"], "W-000001");
    assert_eq!(placed["lines"][0]["unit_price"], "4.20");
    assert_eq!(figures().await, ("5".into(), "3".into(), "2".into()));
    let (_, cart_now) = get(
        &r,
        &format!("/v1/reservations/{}", cart["id"].as_str().unwrap()),
        Some(&shop),
    )
    .await;
    assert_eq!(cart_now["state"], "converted");
    let order_id = placed["id"].as_str().unwrap().to_owned();

    // Routed to its store's pull, not another's.
    let pulled = hq::refdata::changes_since(db, "vienna-01", 0)
        .await
        .unwrap();
    let routed: Vec<_> = pulled
        .entities
        .iter()
        .filter(|e| e.kind == "order")
        .collect();
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0].payload.as_ref().unwrap()["number"], "W-000001");
    let elsewhere = hq::refdata::changes_since(db, "graz-01", 0).await.unwrap();
    assert!(elsewhere.entities.iter().all(|e| e.kind != "order"));

    // A second order takes the rest; a third finds nothing; cancelling gives it back.
    let (status, _, second) = send(
        &r,
        json_request("POST", "/v1/orders", &auth, &order(bread("2"))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let answer = send(
        &r,
        json_request("POST", "/v1/orders", &auth, &order(bread("1"))),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "insufficient_stock",
        Some("lines[0].quantity"),
    );
    let cancel = format!("/v1/orders/{}/actions", second["number"].as_str().unwrap());
    for _ in 0..2 {
        let (status, _, cancelled) = send(
            &r,
            json_request(
                "POST",
                &cancel,
                &auth,
                &json!({"action": "cancel", "reason": "customer asked"}),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{cancelled}");
        assert_eq!(cancelled["status"], "cancelled");
    }
    assert_eq!(figures().await, ("5".into(), "3".into(), "2".into()));
    let answer = send(
        &r,
        json_request("POST", &cancel, &auth, &json!({"action": "ship"})),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_field",
        Some("action"),
    );

    // Another store's manager reads none of it.
    hq::add_store(db, &StoreId::parse("graz-01").unwrap(), "Graz")
        .await
        .unwrap();
    add_user(
        db,
        &NewUser {
            name: "gus".into(),
            display_name: "Gus".into(),
            role: Role::StoreManager,
            stores: vec!["graz-01".into()],
            password: "correct horse battery".into(),
        },
        &Actor::Cli,
        now,
    )
    .await
    .unwrap();
    let (_, set_cookie, _) = sign_in(&r, "gus", "correct horse battery").await;
    let cookie = format!("{}={}", hq::sessions::COOKIE, cookie_value(&set_cookie));
    let (status, _, _) = send(
        &r,
        Request::get(format!("/v1/orders/{order_id}"))
            .header("cookie", &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The till sells four (offline, it never asks): the order cannot be covered.
    let staff = domain::StaffId::parse("anna").unwrap();
    let step = |step: OrderStepKind, q: i64| {
        EventBody::OrderStep(OrderStep {
            order: order_id.clone(),
            number: "W-000001".into(),
            step,
            lines: vec![(
                Sku::parse("GRO-BRD-0012").unwrap(),
                Quantity::from_milli(q).unwrap(),
            )],
            sale_receipt: None,
            store_credit: None,
            staff: staff.clone(),
        })
    };
    let events = till.linked(vec![
        EventBody::StockAdjusted {
            sku: Sku::parse("GRO-BRD-0012").unwrap(),
            delta_milli: -4000,
            reason: AdjustmentReason::Damaged,
            note: None,
        },
        EventBody::StockCounted {
            sku: Sku::parse("GRO-BRD-0012").unwrap(),
            counted_milli: 10_000,
        },
        step(OrderStepKind::Picked, 2000),
        step(OrderStepKind::Ready, 2000),
        step(OrderStepKind::HandedOver, 2000),
    ]);
    let push = |range: std::ops::Range<usize>| {
        let events = events[range].to_vec();
        let token = token.clone();
        let r = r.clone();
        let till_store = till.store.clone();
        let till_key = till.key.clone();
        let till_id = till.id.to_string();
        async move {
            let b = batch(&till_store, &till_id, &till_key, &events);
            let (status, _, body) = send(&r, push_request(&token, wire(&b))).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };
    push(0..1).await;
    assert_eq!(figures().await, ("1".into(), "3".into(), "0".into()));
    let (_, conflicted) = get(&r, &format!("/v1/orders/{order_id}"), Some(&shop)).await;
    assert_eq!(conflicted["exception"], "stock_conflict", "{conflicted}");
    let inbox = hq::exceptions::exceptions(db, None).await.unwrap();
    assert!(
        inbox
            .iter()
            .any(|e| e.kind == "stock_conflict" && e.key == "W-000001"),
        "{inbox:?}"
    );
    let told: Vec<String> = sqlx::query_scalar(
        "SELECT type FROM webhook_events WHERE resource = 'order:W-000001' ORDER BY seq",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(told, ["order.created", "order.stock_conflict"]);

    // Counted back to 10: covered again.
    push(1..2).await;
    let (_, covered) = get(&r, &format!("/v1/orders/{order_id}"), Some(&shop)).await;
    assert_eq!(covered["exception"], Value::Null, "{covered}");
    assert_eq!(figures().await, ("10".into(), "3".into(), "7".into()));

    // Picked short (2 of 3), ready, handed over: the hold ends, the stock leaves once.
    push(2..3).await;
    let (_, picked) = get(&r, &format!("/v1/orders/{order_id}"), Some(&shop)).await;
    assert_eq!(
        (&picked["status"], &picked["short"]),
        (&json!("picked"), &json!(true)),
        "{picked}"
    );
    assert_eq!(picked["lines"][0]["picked"], "2");
    assert_eq!(figures().await, ("10".into(), "2".into(), "8".into()));
    push(3..5).await;
    let (_, collected) = get(&r, &format!("/v1/orders/{order_id}"), Some(&shop)).await;
    assert_eq!(collected["status"], "collected", "{collected}");
    assert_eq!(figures().await, ("8".into(), "0".into(), "8".into()));
    let history: Vec<&str> = collected["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["placed", "picked", "ready", "collected"]);
    let told: Vec<String> = sqlx::query_scalar(
        "SELECT type FROM webhook_events WHERE resource = 'order:W-000001' ORDER BY seq",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        told,
        [
            "order.created",
            "order.stock_conflict",
            "order.picked",
            "order.ready",
            "order.collected"
        ]
    );
    // An ended order leaves a store's snapshot; its last state is in the change log.
    let pulled = hq::refdata::changes_since(db, "vienna-01", 0)
        .await
        .unwrap();
    assert!(
        pulled
            .entities
            .iter()
            .all(|e| e.kind != "order" || e.key != order_id)
    );
    let (status, open) = get(&r, "/v1/orders?store=vienna-01&status=open", Some(&shop)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(open["orders"], json!([]));
    let (_, cancelled) = get(&r, "/v1/orders?status=cancelled", Some(&shop)).await;
    assert_eq!(cancelled["orders"].as_array().unwrap().len(), 1);

    // The back office: an admin sees both orders and the delivery log; Graz's manager neither.
    add_user(
        db,
        &NewUser {
            name: "ada".into(),
            display_name: "Ada".into(),
            role: Role::Admin,
            stores: vec![],
            password: "correct horse battery".into(),
        },
        &Actor::Cli,
        now,
    )
    .await
    .unwrap();
    let (_, set_cookie, _) = sign_in(&r, "ada", "correct horse battery").await;
    let admin = format!("{}={}", hq::sessions::COOKIE, cookie_value(&set_cookie));
    let html = |path: &str, cookie: &str| {
        let request = Request::get(path)
            .header("cookie", cookie)
            .body(Body::empty())
            .unwrap();
        let r = r.clone();
        async move {
            let response = r.oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, String::from_utf8(bytes.to_vec()).unwrap())
        }
    };
    let (status, page) = html("/orders", &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"data-order="W-000001""#) && page.contains(r#"data-order="W-000002""#),
        "{page}"
    );
    let (_, page) = html("/orders?status=open", &admin).await;
    assert!(page.contains(r#"data-test="no-orders""#));
    let (_, page) = html("/orders", &cookie).await;
    assert!(
        page.contains(r#"data-test="no-orders""#),
        "another store's manager sees none"
    );
    let (status, page) = html("/webhooks", &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("order.collected") && page.contains("127.0.0.1:9/hook"),
        "{page}"
    );
    let (status, _) = html("/webhooks", &cookie).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// 1,000 reservations of one unit each sent at once for 10 units on hand: exactly 10 are held,
/// every other answer is `409 insufficient_stock`, and the figures add up.
async fn a_thousand_concurrent_reservations_for_ten_units_leave_exactly_ten(db: &Db) {
    use hq::identity::{Actor, Scope, create_api_key};
    use serde_json::json;
    catalog_writer(db).await;
    let now = jiff::Timestamp::now().as_millisecond();
    let shop = create_api_key(
        db,
        &Actor::Cli,
        "web shop",
        &[Scope::StockRead, Scope::ReservationsWrite],
        now,
    )
    .await
    .unwrap()
    .secret;
    sqlx::query("INSERT INTO stock_levels (location, sku, on_hand) VALUES ('vienna-01', 'GRO-BRD-0012', 10000)")
        .execute(&db.pool)
        .await
        .unwrap();
    let r = router(db);
    let bearer = format!("Bearer {shop}");
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let r = r.clone();
            let bearer = bearer.clone();
            tokio::spawn(async move {
                let request = json_request(
                    "POST",
                    "/v1/reservations",
                    &[("authorization", bearer.as_str())],
                    &json!({"location": "vienna-01", "lines": [{"sku": "GRO-BRD-0012", "quantity": "1"}], "reference": format!("cart-{i}")}),
                );
                let (status, _, body) = send(&r, request).await;
                (status, body)
            })
        })
        .collect();
    let mut held = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::CREATED => held += 1,
            StatusCode::CONFLICT => assert_eq!(body["code"], "insufficient_stock", "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(held, 10);
    let (_, figures) = get(
        &r,
        "/v1/availability?skus=GRO-BRD-0012&location=vienna-01",
        Some(&shop),
    )
    .await;
    let f = &figures["variants"][0]["locations"][0];
    assert_eq!(
        (&f["on_hand"], &f["reserved"], &f["available"]),
        (&json!("10"), &json!("10"), &json!("0")),
        "{figures}"
    );
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reservations WHERE state = 'active'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 10);
}

/// A shop reads every variant, price row and category a page at a time, then only what changed
/// after its cursor; a bad cursor is refused by name.
async fn a_shop_reads_the_whole_catalog_a_page_at_a_time_and_then_what_changed(db: &Db) {
    use hq::identity::{Actor, Scope, create_api_key};
    catalog_writer(db).await;
    let now = jiff::Timestamp::now().as_millisecond();
    let shop = create_api_key(db, &Actor::Cli, "web shop", &[Scope::CatalogRead], now)
        .await
        .unwrap()
        .secret;
    let r = router(db);
    let read_all = |after: String| {
        let r = r.clone();
        let shop = shop.clone();
        async move {
            let mut after = after;
            let mut seen = Vec::new();
            loop {
                let (status, page) = get(
                    &r,
                    &format!("/v1/catalog/changes?limit=37&after={}", urlencode(&after)),
                    Some(&shop),
                )
                .await;
                assert_eq!(status, StatusCode::OK, "{page}");
                for c in page["changes"].as_array().unwrap() {
                    seen.push((
                        c["kind"].as_str().unwrap().to_owned(),
                        c["key"].as_str().unwrap().to_owned(),
                        c["payload"].clone(),
                    ));
                }
                after = page["next"].as_str().unwrap().to_owned();
                if !page["more"].as_bool().unwrap() {
                    return (seen, after);
                }
            }
        }
    };
    let (all, cursor) = read_all(String::new()).await;
    let held: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, key FROM ref_entities WHERE kind IN ('category', 'prices', 'variant') AND payload IS NOT NULL ORDER BY kind, key",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let mut read: Vec<(String, String)> = all
        .iter()
        .map(|(k, key, _)| (k.clone(), key.clone()))
        .collect();
    read.sort();
    assert_eq!(read, held, "every catalog entity once, nothing else");
    assert!(held.len() > 100);
    // Nothing new: an empty page at the same cursor.
    let (none, same) = read_all(cursor.clone()).await;
    assert!(none.is_empty());
    assert_eq!(same, cursor);
    // One variant renamed: only it.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/demo/seed.json");
    let mut seed: protocol::seed::SeedDto =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let variant = seed.products[0].variants[0].sku.clone();
    seed.products[0].variants[0].name = "Renamed for the shop".into();
    hq::refdata::publish(db, &seed, PEPPER).await.unwrap();
    let (changed, _) = read_all(cursor).await;
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(
        (changed[0].0.as_str(), changed[0].1.as_str()),
        ("variant", variant.as_str())
    );
    assert_eq!(changed[0].2["variant"]["name"], "Renamed for the shop");
    let (status, body) = get(&r, "/v1/catalog/changes?after=x", Some(&shop)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "after", "{body}");
}

/// `value` for a query string.
fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An in-store sale returned through the web shop: bad input is refused by field with nothing
/// written; the return is priced like a till's (the refund is the lines' share of the sale),
/// answered once under one key, routed to the selling store only, never takes more than the
/// sale sold less what tills and the web took back, and is received by the store's ledger
/// (stock back, `return.received`). A till that returned the same goods offline is not refused
/// by HQ: the receipt shows up as returned twice.
async fn a_sale_returned_through_the_web_shop_is_checked_priced_routed_and_received(db: &Db) {
    use domain::catalog::TaxCategory;
    use domain::ledger::{ReturnCompleted, ReturnReceived, SaleCompleted};
    use domain::quantity::{Quantity, UnitOfSale};
    use domain::sale::{LineInput, Tender, TenderKind, price_cart, price_return, settle};
    use domain::{Currency, Money, Timestamp};
    use hq::identity::{Actor, Scope, create_api_key};
    use serde_json::json;
    catalog_writer(db).await;
    let till = Till::new("vienna-01", "vienna-01-t1", 8);
    let token = till.register(db).await;
    hq::add_store(db, &StoreId::parse("graz-01").unwrap(), "Graz")
        .await
        .unwrap();
    let now = jiff::Timestamp::now().as_millisecond();
    let shop = create_api_key(
        db,
        &Actor::Cli,
        "web shop",
        &[Scope::OrdersRead, Scope::OrdersWrite, Scope::WebhooksWrite],
        now,
    )
    .await
    .unwrap()
    .secret;
    let bearer = format!("Bearer {shop}");
    let auth = [("authorization", bearer.as_str())];
    let r = router(db);
    let (status, _, _) = send(
        &r,
        json_request(
            "POST",
            "/v1/webhooks",
            &auth,
            &json!({"url": "http://127.0.0.1:9/hook", "events": ["return.*"]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // Three loaves and a tea on one receipt, paid in cash (Austria rounds nothing).
    let at = domain::presets::jurisdiction("AT").unwrap();
    let line = |sku: &str, minor: i64, quantity: i64| LineInput {
        sku: Sku::parse(sku).unwrap(),
        name: format!("item {sku}"),
        unit_price: Money::from_minor(minor, Currency::EUR),
        quantity: Quantity::each(quantity).unwrap(),
        unit: UnitOfSale::Each,
        tax_category: TaxCategory::parse("reduced").unwrap(),
        discount: None,
        fixed_amount: None,
    };
    let cart = price_cart(
        &at,
        &[line("GRO-BRD-0012", 333, 3), line("GRO-TEA-0001", 299, 1)],
        None,
        Timestamp::from_millis(1_795_476_600_000),
    )
    .unwrap();
    let tenders = vec![Tender {
        kind: TenderKind::Cash,
        amount: cart.total,
        reference: None,
    }];
    let settlement = settle(&cart, &tenders, at.cash_rounding()).unwrap();
    let receipt = "vienna-01-t1-000001";
    let sale = EventBody::SaleCompleted(SaleCompleted {
        receipt: receipt.into(),
        cashier: Some(domain::StaffId::parse("anna").unwrap()),
        cart: cart.clone(),
        tenders,
        settlement: settlement.clone(),
        approvals: Vec::new(),
    });
    let push = |events: Vec<Linked>| {
        let token = token.clone();
        let r = r.clone();
        let b = batch(&till.store, till.id.as_str(), &till.key, &events);
        async move {
            let (status, _, body) = send(&r, push_request(&token, wire(&b))).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };
    let ask = |lines: Value| json!({"receipt": receipt, "lines": lines, "reason": "too big", "reference": "rma-7"});
    let bread = |q: &str| json!([{"sku": "GRO-BRD-0012", "quantity": q}]);

    // Before the sale reached HQ: the receipt is not known (the store has not synced).
    let answer = send(
        &r,
        json_request("POST", "/v1/returns", &auth, &ask(bread("1"))),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_field",
        Some("receipt"),
    );
    push(till.linked(vec![sale.clone()])).await;

    // Bad input, by field; nothing written.
    let mut elsewhere = ask(bread("1"));
    elsewhere["receive_at"] = json!("nowhere-01");
    let cases = [
        (
            ask(json!([{"sku": "GRO-BRD-0001", "quantity": "1"}])),
            "lines[0].sku",
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            ask(bread("-1")),
            "lines[0].quantity",
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            ask(bread("0")),
            "lines[0].quantity",
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            ask(bread("1.5")),
            "lines[0].quantity",
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            ask(bread("4")),
            "lines[0].quantity",
            StatusCode::CONFLICT,
            "more_than_sold",
        ),
        (
            ask(json!([])),
            "lines",
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            elsewhere,
            "receive_at",
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
    ];
    for (body, field, status, code) in cases {
        let answer = send(&r, json_request("POST", "/v1/returns", &auth, &body)).await;
        assert_error(&answer, status, code, Some(field));
    }
    let (status, listed) = get(&r, &format!("/v1/returns?receipt={receipt}"), Some(&shop)).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["returns"], json!([]));

    // Two loaves, sent twice under one key: one return, priced like the till would.
    let keyed = [
        ("authorization", bearer.as_str()),
        ("idempotency-key", "rma-7"),
    ];
    let body = ask(bread("2"));
    let (status, _, made) = send(&r, json_request("POST", "/v1/returns", &keyed, &body)).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let (status, _, again) = send(&r, json_request("POST", "/v1/returns", &keyed, &body)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["id"], made["id"]);
    let expected = price_return(
        &cart,
        &settlement,
        &[0, 0],
        &[(0, Quantity::each(2).unwrap())],
    )
    .unwrap();
    assert_eq!(
        made["refund_due"],
        expected.refund.amount_string(),
        "{made}"
    );
    assert_eq!(made["refund_due"], "6.66");
    assert_eq!(
        (&made["number"], &made["status"]),
        (&json!("R-000001"), &json!("open"))
    );
    assert_eq!(
        (&made["sale_store"], &made["receive_at"]),
        (&json!("vienna-01"), &json!("vienna-01"))
    );
    assert_eq!(
        made["lines"],
        json!([{"line": 0, "sku": "GRO-BRD-0012", "name": "item GRO-BRD-0012", "quantity": "2"}])
    );
    let id = made["id"].as_str().unwrap().to_owned();

    // One loaf is left: two more is too many, by the line.
    let answer = send(
        &r,
        json_request("POST", "/v1/returns", &auth, &ask(bread("2"))),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "more_than_sold",
        Some("lines[0].quantity"),
    );
    assert!(
        answer.2["message"]
            .as_str()
            .unwrap()
            .contains("at most 1 more"),
        "{}",
        answer.2
    );

    // Routed to the selling store, not to another.
    let pulled = hq::refdata::changes_since(db, "vienna-01", 0)
        .await
        .unwrap();
    let routed: Vec<_> = pulled
        .entities
        .iter()
        .filter(|e| e.kind == "web-return")
        .collect();
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0].payload.as_ref().unwrap()["sale_receipt"], receipt);
    let other = hq::refdata::changes_since(db, "graz-01", 0).await.unwrap();
    assert!(other.entities.iter().all(|e| e.kind != "web-return"));

    // The parcel arrives at the store: two loaves back into stock, the shop is told.
    let on_hand = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT on_hand FROM stock_levels WHERE location = 'vienna-01' AND sku = 'GRO-BRD-0012'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap()
    };
    assert_eq!(on_hand().await, -3000);
    let received = EventBody::ReturnReceived(ReturnReceived {
        web_return: id.clone(),
        number: "R-000001".into(),
        sale_receipt: receipt.into(),
        lines: vec![(
            Sku::parse("GRO-BRD-0012").unwrap(),
            Quantity::each(2).unwrap(),
        )],
        staff: domain::StaffId::parse("anna").unwrap(),
    });
    // Offline, the till also took back two loaves of the sale: HQ keeps the store's fact.
    let till_return = EventBody::ReturnCompleted(ReturnCompleted {
        receipt: "vienna-01-t1-000002".into(),
        original_receipt: Some(receipt.into()),
        reason: None,
        refund: price_return(
            &cart,
            &settlement,
            &[0, 0],
            &[(0, Quantity::each(2).unwrap())],
        )
        .unwrap(),
        tenders: vec![Tender {
            kind: TenderKind::Cash,
            amount: expected.refund,
            reference: None,
        }],
        approvals: Vec::new(),
    });
    let events = till.linked(vec![sale, received, till_return]);
    push(events[1..2].to_vec()).await;
    assert_eq!(on_hand().await, -1000);
    let (_, now_received) = get(&r, "/v1/returns/R-000001", Some(&shop)).await;
    assert_eq!(now_received["status"], "received", "{now_received}");
    assert!(now_received["received_ms"].is_i64());
    let told: Vec<String> = sqlx::query_scalar(
        "SELECT type FROM webhook_events WHERE resource = 'return:R-000001' ORDER BY seq",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(told, ["return.created", "return.received"]);
    let inbox = hq::exceptions::exceptions(db, None).await.unwrap();
    assert!(
        inbox.iter().all(|e| e.kind != "returned_twice"),
        "{inbox:?}"
    );
    push(events[2..3].to_vec()).await;
    let inbox = hq::exceptions::exceptions(db, None).await.unwrap();
    let twice: Vec<_> = inbox
        .iter()
        .filter(|e| e.kind == "returned_twice")
        .collect();
    assert_eq!(twice.len(), 1, "{inbox:?}");
    assert_eq!(twice[0].key, format!("{receipt}|GRO-BRD-0012"));
    assert_eq!(twice[0].store, "vienna-01");
    // Nothing is left to return through the web; the tea still is.
    let answer = send(
        &r,
        json_request("POST", "/v1/returns", &auth, &ask(bread("1"))),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "more_than_sold",
        Some("lines[0].quantity"),
    );
    let (status, _, tea) = send(
        &r,
        json_request(
            "POST",
            "/v1/returns",
            &auth,
            &json!({"receipt": receipt, "lines": [{"sku": "GRO-TEA-0001", "quantity": "1"}], "receive_at": "graz-01"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{tea}");
    assert_eq!(tea["refund_due"], "2.99");
    // Sent back to Graz: both stores hear of it.
    let graz = hq::refdata::changes_since(db, "graz-01", 0).await.unwrap();
    assert_eq!(
        graz.entities
            .iter()
            .filter(|e| e.kind == "web-return")
            .count(),
        1
    );
    let (_, listed) = get(&r, &format!("/v1/returns?receipt={receipt}"), Some(&shop)).await;
    assert_eq!(listed["returns"].as_array().unwrap().len(), 2);
}

/// HQ keeps a till's fiscal documents as its events carried them, exports them per till of a
/// store, and a signature device out for more than 48 hours (here since the events' day, long
/// before now) is an exception until a signed receipt follows.
async fn a_tills_fiscal_receipts_are_kept_exported_and_a_long_device_outage_is_an_exception(
    db: &Db,
) {
    use domain::ledger::FiscalReceipt;
    let till = Till::new("vienna-01", "vienna-01-t1", 9);
    let token = till.register(db).await;
    let r = router(db);
    let fiscal = |receipt: &str, kind: &str, failed: bool| {
        EventBody::FiscalReceipt(FiscalReceipt {
            regime: "AT-RKSV".into(),
            receipt: receipt.into(),
            kind: kind.into(),
            document: format!("header.payload-{receipt}.signature"),
            device_failed: failed,
            material: (kind == "start").then(|| r#"{"base64AESKey":"k"}"#.to_owned()),
        })
    };
    let events = till.linked(vec![
        fiscal("vienna-01-t1-000001", "start", false),
        fiscal("vienna-01-t1-000002", "standard", true),
        fiscal("vienna-01-t1-000003", "standard", true),
        fiscal("vienna-01-t1-000004", "null", false),
    ]);
    let push = |range: std::ops::Range<usize>| {
        let b = batch(&till.store, till.id.as_str(), &till.key, &events[range]);
        let (r, token) = (r.clone(), token.clone());
        async move {
            let (status, _, body) = send(&r, push_request(&token, wire(&b))).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };
    let out = || async {
        hq::exceptions::exceptions(db, None)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "fiscal_device_out")
            .collect::<Vec<_>>()
    };
    push(0..3).await;
    let found = out().await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].key.as_str(), found[0].store.as_str()),
        ("vienna-01-t1", "vienna-01")
    );
    assert!(
        found[0].summary.contains("report the outage"),
        "{}",
        found[0].summary
    );
    // The Sammelbeleg, signed: the device is back, the exception goes.
    push(3..4).await;
    assert!(out().await.is_empty());
    let exports = hq::fiscal::export_store(db, "vienna-01").await.unwrap();
    let export = &exports["vienna-01-t1"];
    assert_eq!(export.material.as_deref(), Some(r#"{"base64AESKey":"k"}"#));
    // The journal: every event HQ holds of the till, in order.
    let journal: Vec<Value> = String::from_utf8(export.journal.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        journal.iter().map(|e| e["seq"].clone()).collect::<Vec<_>>(),
        [1, 2, 3, 4].map(|n| serde_json::json!(n))
    );
    assert!(
        journal
            .iter()
            .all(|e| e["kind"] == "FiscalReceipt" && e["hash"].is_string())
    );
    let dep: Value = serde_json::from_str(&export.dep).unwrap();
    let receipts = dep["Belege-Gruppe"][0]["Belege-kompakt"]
        .as_array()
        .unwrap();
    assert_eq!(receipts.len(), 4);
    assert_eq!(receipts[1], "header.payload-vienna-01-t1-000002.signature");
    assert!(
        hq::fiscal::export_store(db, "graz-01")
            .await
            .unwrap()
            .is_empty()
    );
}

/// A `PUT` of a piece of a store backup with the store credential `token` (`None`: without).
fn backup_piece(
    token: Option<&str>,
    name: &str,
    offset: u64,
    whole: &[u8],
    bytes: Vec<u8>,
) -> Request<Body> {
    use sha2::Digest as _;
    let sum = hex::encode(sha2::Sha256::digest(whole));
    let mut request = Request::put(format!(
        "/v1/sync/backups/{name}?offset={offset}&size={}&sha256={sum}",
        whole.len()
    ))
    .header("content-type", "application/octet-stream");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(Body::from(bytes)).unwrap()
}

/// Bytes that do not repeat (a backup is compressed, then encrypted).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Issue 21, item 4: store backups sent to HQ. A node's backup arrives piece by piece with its
/// store credential and resumes where HQ's copy ends; a piece from elsewhere, a name that is not
/// a file name, a piece too large, bytes that do not match the file's SHA-256 are refused and
/// keep nothing; a second store's upload of the same name is its own. HQ keeps each store's
/// newest backups (a new upload drops an incomplete one) and hands them to a person with the
/// support role alone — not the read-API token, not another role, not the store — each
/// download and each backup received in the audit log. Without `--store-backups` HQ takes none.
async fn store_backups_arrive_in_pieces_resume_are_checked_kept_to_the_newest_and_fetched_by_support_alone(
    db: &Db,
) {
    use hq::identity::{Actor, NewUser, Role, add_user};
    const MIB: usize = 1024 * 1024;
    let vienna = hq::add_store(db, &StoreId::parse("vienna-01").unwrap(), "Wien")
        .await
        .unwrap();
    let graz = hq::add_store(db, &StoreId::parse("graz-01").unwrap(), "Graz")
        .await
        .unwrap();
    let now = jiff::Timestamp::now().as_millisecond();
    for (name, role) in [("sam", Role::Support), ("anna", Role::Merchandiser)] {
        let user = NewUser {
            name: name.into(),
            display_name: name.into(),
            role,
            stores: vec![],
            password: "correct horse battery".into(),
        };
        add_user(db, &user, &Actor::Cli, now).await.unwrap();
    }
    let whole = noise(2 * MIB + 12_345, 1);
    let name = "vienna-01-20261206T010203.004Z.kassa-backup.age";

    // HQ started without a store backups directory takes none.
    let answer = send(
        &router(db),
        backup_piece(Some(&vienna), name, 0, &whole, vec![]),
    )
    .await;
    assert_error(&answer, StatusCode::NOT_FOUND, "store_backups_off", None);

    let kept = tempfile::tempdir().unwrap();
    // A disk that would keep less free than HQ is told to keep: refused, nothing recorded.
    let full = hq::api::router(Arc::new(
        hq::api::Hq::new(db.clone(), Some(READ_TOKEN.into())).with_store_backups(Some(
            hq::store_backups::StoreBackups {
                dir: kept.path().to_path_buf(),
                keep: 2,
                min_free: u64::MAX / 2,
            },
        )),
    ));
    let answer = send(&full, backup_piece(Some(&vienna), name, 0, &whole, vec![])).await;
    assert_error(
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "backup_too_large",
        Some("size"),
    );
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM store_backups")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    let r = hq::api::router(Arc::new(
        hq::api::Hq::new(db.clone(), Some(READ_TOKEN.into())).with_store_backups(Some(
            hq::store_backups::StoreBackups {
                dir: kept.path().to_path_buf(),
                keep: 2,
                min_free: 0,
            },
        )),
    ));
    let held = |answer: &(StatusCode, String, Value)| {
        assert_eq!(answer.0, StatusCode::OK, "{}", answer.2);
        (
            answer.2["received"].as_u64().unwrap(),
            answer.2["complete"].as_bool().unwrap(),
        )
    };
    // Begun while there was room, a piece that finds the disk at its floor: not now (the node
    // keeps its copy and tries again), nothing written.
    let early = "vienna-01-20261206T000000.000Z.kassa-backup.age";
    let answer = send(&r, backup_piece(Some(&vienna), early, 0, &whole, vec![])).await;
    assert_eq!(held(&answer), (0, false));
    let answer = send(
        &full,
        backup_piece(Some(&vienna), early, 0, &whole, whole[..1000].to_vec()),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::INSUFFICIENT_STORAGE,
        "insufficient_storage",
        None,
    );
    let answer = send(&r, backup_piece(Some(&vienna), early, 0, &whole, vec![])).await;
    assert_eq!(held(&answer), (0, false));

    // Without the store's credential, with a name that is not a file name, a piece too large,
    // a checksum that is not one: refused, nothing kept.
    let answer = send(&r, backup_piece(None, name, 0, &whole, vec![1])).await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized", None);
    for bad in [
        "..%2F..%2Fetc.kassa-backup.age",
        ".hidden.kassa-backup.age",
        "notes.txt",
    ] {
        let answer = send(&r, backup_piece(Some(&vienna), bad, 0, &whole, vec![1])).await;
        assert_error(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some("name"),
        );
    }
    let answer = send(
        &r,
        Request::put(format!(
            "/v1/sync/backups/{name}?offset=0&size=10&sha256=not-hex"
        ))
        .header("authorization", format!("Bearer {vienna}"))
        .body(Body::from(vec![1u8]))
        .unwrap(),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_field",
        Some("sha256"),
    );
    let answer = send(
        &r,
        backup_piece(Some(&vienna), name, 0, &whole, whole.clone()),
    )
    .await;
    assert_eq!(
        answer.0,
        StatusCode::OK,
        "a piece within the limit: {}",
        answer.2
    );
    let big = noise(4 * MIB + 1, 9);
    let answer = send(
        &r,
        backup_piece(
            Some(&vienna),
            "big.kassa-backup.age",
            0,
            &noise(5 * MIB, 9),
            big,
        ),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        None,
    );
    assert!(
        std::fs::read_dir(kept.path().join("vienna-01"))
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with("big")),
        "a refused piece left a file"
    );
    // That one was taken whole at once: a fresh name for the piece-by-piece upload.
    let name = "vienna-01-20261206T020000.000Z.kassa-backup.age";
    let answer = send(&r, backup_piece(Some(&vienna), name, 0, &whole, vec![])).await;
    assert_eq!(held(&answer), (0, false));
    let answer = send(
        &r,
        backup_piece(Some(&vienna), name, 0, &whole, whole[..MIB].to_vec()),
    )
    .await;
    assert_eq!(held(&answer), (MIB as u64, false));
    // The same piece again (its answer lost on the way): refused, HQ says where it stands.
    let answer = send(
        &r,
        backup_piece(Some(&vienna), name, 0, &whole, whole[..MIB].to_vec()),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "offset_mismatch",
        Some("offset"),
    );
    let answer = send(&r, backup_piece(Some(&vienna), name, 0, &whole, vec![])).await;
    assert_eq!(
        held(&answer),
        (MIB as u64, false),
        "resumed where HQ's copy ends"
    );
    // Another store's upload of the same name is its own, and graz's half-sent one stays apart.
    let answer = send(
        &r,
        backup_piece(Some(&graz), name, 0, &whole, whole[..10].to_vec()),
    )
    .await;
    assert_eq!(held(&answer), (10, false));
    let mut at = MIB;
    while at < whole.len() {
        let end = (at + MIB).min(whole.len());
        let answer = send(
            &r,
            backup_piece(
                Some(&vienna),
                name,
                at as u64,
                &whole,
                whole[at..end].to_vec(),
            ),
        )
        .await;
        assert_eq!(held(&answer), (end as u64, end == whole.len()));
        at = end;
    }
    assert_eq!(
        std::fs::read(kept.path().join("vienna-01").join(name)).unwrap(),
        whole
    );
    assert!(
        !kept
            .path()
            .join("vienna-01")
            .join(format!("{name}.partial"))
            .exists()
    );
    // Sent again after it is whole: answered whole. Another file under the same name: refused.
    let answer = send(&r, backup_piece(Some(&vienna), name, 0, &whole, vec![])).await;
    assert_eq!(held(&answer), (whole.len() as u64, true));
    let answer = send(
        &r,
        backup_piece(Some(&vienna), name, 0, &noise(100, 2), vec![]),
    )
    .await;
    assert_error(&answer, StatusCode::CONFLICT, "backup_differs", None);
    // HQ stopped after it renamed the file whole but before it recorded it: the node's next
    // probe finds every byte, and HQ checks the file and records it then.
    sqlx::query("UPDATE store_backups SET completed_ms = NULL WHERE name = $1")
        .bind(name)
        .execute(&db.pool)
        .await
        .unwrap();
    let answer = send(&r, backup_piece(Some(&vienna), name, 0, &whole, vec![])).await;
    assert_eq!(held(&answer), (whole.len() as u64, true));

    // Bytes that do not match the SHA-256 the node named: dropped whole.
    let liar = "vienna-01-20261206T030000.000Z.kassa-backup.age";
    let claimed = noise(1000, 3);
    let answer = send(
        &r,
        backup_piece(Some(&vienna), liar, 0, &claimed, noise(1000, 4)),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "backup_checksum_mismatch",
        Some("sha256"),
    );
    assert!(
        !kept
            .path()
            .join("vienna-01")
            .join(format!("{liar}.partial"))
            .exists()
    );

    // A new upload drops the store's incomplete one; the newest two whole ones are kept.
    let half = "vienna-01-20261206T040000.000Z.kassa-backup.age";
    let answer = send(
        &r,
        backup_piece(
            Some(&vienna),
            half,
            0,
            &noise(2000, 5),
            noise(2000, 5)[..700].to_vec(),
        ),
    )
    .await;
    assert_eq!(held(&answer), (700, false));
    for (n, stamp) in ["050000", "060000"].iter().enumerate() {
        let small = noise(3000, 10 + n as u64);
        let answer = send(
            &r,
            backup_piece(
                Some(&vienna),
                &format!("vienna-01-20261206T{stamp}.000Z.kassa-backup.age"),
                0,
                &small,
                small.clone(),
            ),
        )
        .await;
        assert_eq!(held(&answer), (3000, true));
    }
    let mut files: Vec<String> = std::fs::read_dir(kept.path().join("vienna-01"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "vienna-01-20261206T050000.000Z.kassa-backup.age",
            "vienna-01-20261206T060000.000Z.kassa-backup.age"
        ],
        "the newest two whole backups, nothing else"
    );

    // Read by support alone.
    let (_, sam, _) = sign_in(&r, "sam", "correct horse battery").await;
    let (_, anna, _) = sign_in(&r, "anna", "correct horse battery").await;
    let (sam, anna) = (cookie_value(&sam), cookie_value(&anna));
    let listed = send(
        &r,
        with_session("GET", "/v1/stores/vienna-01/backups", &sam, None),
    )
    .await;
    assert_eq!(listed.0, StatusCode::OK, "{}", listed.2);
    let names: Vec<&str> = listed.2["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "vienna-01-20261206T060000.000Z.kassa-backup.age",
            "vienna-01-20261206T050000.000Z.kassa-backup.age"
        ]
    );
    assert_eq!(listed.2["keep"], 2);
    assert!(listed.2["incoming"].is_null(), "{}", listed.2);
    let graz_listed = send(
        &r,
        with_session("GET", "/v1/stores/graz-01/backups", &sam, None),
    )
    .await;
    assert_eq!(graz_listed.2["backups"], serde_json::json!([]));
    assert_eq!(graz_listed.2["incoming"]["received"], 10);
    let newest = "/v1/stores/vienna-01/backups/vienna-01-20261206T060000.000Z.kassa-backup.age";
    let answer = send(&r, with_session("GET", newest, &anna, None)).await;
    assert_error(&answer, StatusCode::FORBIDDEN, "missing_scope", None);
    let answer = send(
        &r,
        with_session("GET", "/v1/stores/vienna-01/backups", &anna, None),
    )
    .await;
    assert_error(&answer, StatusCode::FORBIDDEN, "missing_scope", None);
    let (status, _) = get(&r, newest, Some(READ_TOKEN)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the read-API token fetches no backup"
    );
    let (status, _) = get(&r, "/v1/stores/vienna-01/backups", Some(READ_TOKEN)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "nor lists them");
    let (status, _) = get(&r, newest, Some(&vienna)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "nor does a store's credential"
    );
    let (status, _) = get(&r, newest, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let answer = send(
        &r,
        with_session(
            "GET",
            "/v1/stores/vienna-01/backups/vienna-01-20261206T040000.000Z.kassa-backup.age",
            &sam,
            None,
        ),
    )
    .await;
    assert_error(&answer, StatusCode::NOT_FOUND, "not_found", None);
    let response = r
        .clone()
        .oneshot(with_session("GET", newest, &sam, None))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("vienna-01-20261206T060000.000Z.kassa-backup.age")
    );
    let fetched = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(fetched.as_ref(), noise(3000, 11).as_slice());
    let audit: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, action FROM audit_log WHERE action LIKE 'store.backup_%' ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let received = audit
        .iter()
        .filter(|(actor, action)| actor == "store:vienna-01" && action == "store.backup_received")
        .count();
    assert_eq!(received, 5, "{audit:?}");
    assert_eq!(
        audit.last().unwrap(),
        &("user:sam".to_owned(), "store.backup_downloaded".to_owned())
    );
}
