//! HQ's shared storage suite: ingest, projections, reference data and snapshots, each scenario
//! run against both backends (SQLite in a fresh directory, PostgreSQL in a fresh database named
//! by `KASSA_TEST_POSTGRES`, else the local server at 127.0.0.1:5432), so the one code path over sqlx's `Any` driver behaves the same.
#![allow(clippy::unwrap_used)]

mod backends;

use std::collections::BTreeMap;

use domain::catalog::{Sku, TaxCategory};
use domain::ids::{EventId, StaffId};
use domain::ledger::{AdjustmentReason, Event, EventBody, EventMeta, SaleCompleted};
use domain::sale::{LineInput, Tender, TenderKind, price_cart, settle};
use domain::stock::StockBook;
use domain::stored_value::{AccountNumber, StoredValueKind, StoredValueLoad};
use domain::{Currency, Hlc, Money, Quantity, StoreId, TerminalId, Timestamp, UnitOfSale};
use ed25519_dalek::SigningKey;
use hq::db::Db;
use hq::ingest::{IngestError, ingest};
use protocol::chain::{self, GENESIS, Hash};
use protocol::seed::SeedDto;
use protocol::sync::{
    BATCH_FORMAT, Batch, BatchHeader, PushAck, VerifiedEvent, decode_batch, encode_batch,
    verify_batch,
};
use sqlx::Row;

/// The PIN pepper of the test chain.
const PEPPER: &[u8] = b"kassa test pepper";

// ---------------------------------------------------------------------------------------------
// Backends

use backends::{on_postgres, on_sqlite};

/// Generates `sqlite::<scenario>` and `postgres::<scenario>` tests, plus PostgreSQL-only ones.
macro_rules! scenarios {
    (both: [$($name:ident),* $(,)?], postgres_only: [$($pg:ident),* $(,)?] $(,)?) => {
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
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $pg() {
                    crate::on_postgres(|db| async move { crate::$pg(&db).await }).await;
                }
            )*
        }
    };
}

scenarios! {
    both: [
        duplicate_batches_are_acknowledged_once,
        out_of_order_batches_wait_for_the_gap,
        conflicting_events_are_refused_and_change_nothing,
        batches_must_link_to_the_held_chain,
        counts_set_stock_as_of_their_clock_in_any_arrival_order,
        sales_are_summed_per_store_and_business_day,
        reference_data_is_published_as_versioned_changes,
        stock_snapshots_carry_the_acknowledged_sequences,
        a_sale_of_one_sku_on_two_lines_moves_both_in_any_order,
        opening_counts_of_an_import_set_stock_and_a_rollback_keeps_later_sales,
        stored_value_balances_follow_loads_redemptions_voids_and_refunds,
        card_events_project_pending_approvals_and_later_declines,
        a_store_is_added_once_and_its_credential_replaced_on_purpose,
        a_licence_admits_through_its_grace_period_then_no_new_store_or_till,
        a_day_with_a_gap_a_cash_shortfall_and_a_card_difference_has_those_findings,
    ],
    postgres_only: [
        concurrent_pushes_of_one_batch_apply_it_once,
        concurrent_counts_and_movements_agree_with_the_fold,
    ],
}

// ---------------------------------------------------------------------------------------------
// Events, chains and batches

/// 2026-11-23 23:30 UTC, already the 24th in Vienna.
const WALL: i64 = 1_795_476_600_000;
const NOW_MS: i64 = 1_800_000_000_000;

/// A till: store, terminal id and signing key.
#[derive(Debug)]
struct Till {
    store: StoreId,
    id: TerminalId,
    key: SigningKey,
    index: u16,
}

/// An event with its canonical bytes and chain links.
#[derive(Debug, Clone)]
struct Linked {
    event: Event,
    bytes: Vec<u8>,
    prev: Hash,
    hash: Hash,
}

impl Till {
    /// A till; `index` makes its key and event ids distinct from other tills'.
    fn new(store: &str, terminal: &str, index: u16) -> Till {
        let byte = u8::try_from(index)
            .unwrap()
            .wrapping_mul(13)
            .wrapping_add(7);
        Till {
            store: StoreId::parse(store).unwrap(),
            id: TerminalId::parse(terminal).unwrap(),
            key: SigningKey::from_bytes(&[byte; 32]),
            index,
        }
    }

    async fn register(&self, db: &Db) {
        // Two tills of one store register it once between them.
        match hq::add_store(db, &self.store, "test store").await {
            Ok(_) | Err(hq::HqError::StoreExists(_)) => {}
            Err(e) => panic!("cannot add store {}: {e}", self.store),
        }
        hq::add_terminal(
            db,
            &self.store,
            &self.id,
            &hex::encode(self.key.verifying_key().to_bytes()),
        )
        .await
        .unwrap();
    }

    /// The event at `seq` of this till, at `wall` ms.
    fn event(&self, seq: u64, wall: i64, body: EventBody) -> Event {
        Event {
            meta: EventMeta {
                id: event_id(self.index, seq),
                store: self.store.clone(),
                terminal: self.id.clone(),
                seq,
                hlc: Hlc::new(wall, 0),
            },
            body,
        }
    }

    /// A chain of events numbered from 1, linked from genesis.
    fn chain(&self, bodies: Vec<(i64, EventBody)>) -> Vec<Linked> {
        let events = bodies
            .into_iter()
            .zip(1..)
            .map(|((wall, body), seq)| self.event(seq, wall, body))
            .collect();
        link_from(GENESIS, events)
    }

    /// Signs `events` (consecutive) as a batch, sends it through the wire format and verifies
    /// it as HQ does.
    fn batch(&self, events: &[Linked]) -> Vec<VerifiedEvent> {
        let (first, last) = (events.first().unwrap(), events.last().unwrap());
        let batch = Batch {
            header: BatchHeader {
                format: BATCH_FORMAT.into(),
                store: self.store.to_string(),
                terminal: self.id.to_string(),
                from_seq: first.event.meta.seq,
                count: u32::try_from(events.len()).unwrap(),
                prev_hash: hex::encode(first.prev),
                head_signature: hex::encode(chain::sign(&self.key, &last.hash)),
            },
            events: events.iter().map(|e| e.bytes.clone()).collect(),
        };
        let batch = decode_batch(&encode_batch(&batch, 3)).unwrap();
        let verified =
            verify_batch(&batch, self.store.as_str(), &self.key.verifying_key()).unwrap();
        for (v, e) in verified.iter().zip(events) {
            assert_eq!(v.event, e.event);
            assert_eq!((v.prev_hash, v.hash), (e.prev, e.hash));
        }
        verified
    }

    /// Ingests `events` (a slice of a chain) as one batch.
    async fn push(&self, db: &Db, events: &[Linked]) -> Result<PushAck, IngestError> {
        ingest(db, self.id.as_str(), &self.batch(events), NOW_MS).await
    }
}

fn event_id(till: u16, seq: u64) -> EventId {
    EventId::parse(&format!("01935f4e-8a2b-7c3d-8{till:03x}-{seq:012x}")).unwrap()
}

/// Encodes and links `events` after `prev`.
fn link_from(mut prev: Hash, events: Vec<Event>) -> Vec<Linked> {
    events
        .into_iter()
        .map(|event| {
            let bytes = protocol::event::encode(&event);
            assert_eq!(protocol::event::decode(&bytes).unwrap(), event);
            let hash = chain::link(&prev, &bytes);
            let linked = Linked {
                event,
                bytes,
                prev,
                hash,
            };
            prev = hash;
            linked
        })
        .collect()
}

fn sku(value: &str) -> Sku {
    Sku::parse(value).unwrap()
}

fn adjusted(sku_code: &str, delta_milli: i64) -> EventBody {
    EventBody::StockAdjusted {
        sku: sku(sku_code),
        delta_milli,
        reason: if delta_milli >= 0 {
            AdjustmentReason::Received
        } else {
            AdjustmentReason::Damaged
        },
        note: None,
    }
}

fn counted(sku_code: &str, counted_milli: i64) -> EventBody {
    EventBody::StockCounted {
        sku: sku(sku_code),
        counted_milli,
    }
}

/// A one-line sale priced and settled under the Austrian preset.
fn sale(
    receipt: &str,
    sku_code: &str,
    unit_minor: i64,
    quantity: i64,
    category: &str,
    tender: TenderKind,
    tendered_minor: Option<i64>,
) -> EventBody {
    let at = domain::presets::jurisdiction("AT").unwrap();
    let cart = price_cart(
        &at,
        &[LineInput {
            sku: sku(sku_code),
            name: format!("item {sku_code}"),
            unit_price: Money::from_minor(unit_minor, Currency::EUR),
            quantity: Quantity::each(quantity).unwrap(),
            unit: UnitOfSale::Each,
            tax_category: TaxCategory::parse(category).unwrap(),
            discount: None,
            fixed_amount: None,
        }],
        None,
        Timestamp::from_millis(WALL),
    )
    .unwrap();
    let tenders = vec![Tender {
        kind: tender,
        amount: Money::from_minor(tendered_minor.unwrap_or(cart.total.minor()), Currency::EUR),
        reference: None,
    }];
    let settlement = settle(&cart, &tenders, at.cash_rounding()).unwrap();
    EventBody::SaleCompleted(SaleCompleted {
        receipt: receipt.into(),
        cashier: Some(StaffId::parse("anna").unwrap()),
        cart,
        tenders,
        settlement,
        approvals: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------------------
// Reading what HQ holds

async fn on_hand(db: &Db, location: &str, sku: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT on_hand FROM stock_levels WHERE location = $1 AND sku = $2")
        .bind(location)
        .bind(sku)
        .fetch_optional(&db.pool)
        .await
        .unwrap()
}

async fn count(db: &Db, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

async fn acked_seq(db: &Db, terminal: &TerminalId) -> i64 {
    sqlx::query_scalar("SELECT acked_seq FROM terminals WHERE id = $1")
        .bind(terminal.as_str())
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

/// (store, day, currency, sales, voids, returns, gross, tax, refunds, cash) per row.
type SalesRow = (String, String, String, i64, i64, i64, i64, i64, i64, i64);

async fn sales_daily(db: &Db) -> Vec<SalesRow> {
    sqlx::query("SELECT store, day, currency, sales, voids, returns, gross_minor, tax_minor, refunds_minor, cash_minor FROM sales_daily ORDER BY store, day")
        .fetch_all(&db.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get("store"),
                r.get("day"),
                r.get("currency"),
                r.get("sales"),
                r.get("voids"),
                r.get("returns"),
                r.get("gross_minor"),
                r.get("tax_minor"),
                r.get("refunds_minor"),
                r.get("cash_minor"),
            )
        })
        .collect()
}

/// Everything ingest writes, as text, to show that a refused batch changed nothing.
async fn state(db: &Db) -> Vec<String> {
    let mut out = Vec::new();
    for r in sqlx::query("SELECT terminal, seq, id, hash, prev_hash, applied, received_ms FROM inbox ORDER BY terminal, seq")
        .fetch_all(&db.pool)
        .await
        .unwrap()
    {
        out.push(format!(
            "inbox {} {} {} {} {} {} {}",
            r.get::<String, _>("terminal"),
            r.get::<i64, _>("seq"),
            r.get::<String, _>("id"),
            hex::encode(r.get::<Vec<u8>, _>("hash")),
            hex::encode(r.get::<Vec<u8>, _>("prev_hash")),
            r.get::<i64, _>("applied"),
            r.get::<i64, _>("received_ms"),
        ));
    }
    for r in
        sqlx::query("SELECT id, acked_seq, acked_hash, last_contact_ms FROM terminals ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap()
    {
        out.push(format!(
            "terminal {} {} {} {:?}",
            r.get::<String, _>("id"),
            r.get::<i64, _>("acked_seq"),
            hex::encode(r.get::<Vec<u8>, _>("acked_hash")),
            r.get::<Option<i64>, _>("last_contact_ms"),
        ));
    }
    for r in sqlx::query(
        "SELECT location, sku, on_hand, count_event FROM stock_levels ORDER BY location, sku",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
    {
        out.push(format!(
            "level {} {} {} {:?}",
            r.get::<String, _>("location"),
            r.get::<String, _>("sku"),
            r.get::<i64, _>("on_hand"),
            r.get::<Option<String>, _>("count_event"),
        ));
    }
    for r in sqlx::query(
        "SELECT location, sku, event_id, delta FROM stock_moves ORDER BY location, sku, event_id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
    {
        out.push(format!(
            "move {} {} {} {}",
            r.get::<String, _>("location"),
            r.get::<String, _>("sku"),
            r.get::<String, _>("event_id"),
            r.get::<i64, _>("delta"),
        ));
    }
    for row in sales_daily(db).await {
        out.push(format!("sales {row:?}"));
    }
    out
}

fn ack(acked_seq: u64, accepted: u32, duplicates: u32, gaps: Vec<(u64, u64)>) -> PushAck {
    PushAck {
        acked_seq,
        accepted,
        duplicates,
        gaps,
    }
}

fn conflict(result: Result<PushAck, IngestError>, what: &str) -> String {
    match result {
        Err(IngestError::Conflict(reason)) => reason,
        other => panic!("{what}: expected a conflict, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// 1. The same batch twice: acknowledged, counted as duplicates, applied once.
async fn duplicate_batches_are_acknowledged_once(db: &Db) {
    let till = Till::new("vienna-01", "vienna-01-t1", 1);
    till.register(db).await;
    let events = till.chain(vec![
        (WALL + 1, adjusted("GRO-BRD-0012", 10_000)),
        (
            WALL + 2,
            sale(
                "r1",
                "GRO-BRD-0012",
                349,
                2,
                "reduced",
                TenderKind::Cash,
                Some(1000),
            ),
        ),
        (WALL + 3, adjusted("GRO-DAI-0001", 5_000)),
        (
            WALL + 4,
            sale(
                "r2",
                "GRO-DAI-0001",
                599,
                1,
                "standard",
                TenderKind::Card,
                None,
            ),
        ),
        (WALL + 5, adjusted("GRO-BRD-0012", -1_000)),
    ]);
    assert_eq!(till.push(db, &events).await.unwrap(), ack(5, 5, 0, vec![]));
    let once = state(db).await;
    assert_eq!(on_hand(db, "vienna-01", "GRO-BRD-0012").await, Some(7_000));
    assert_eq!(on_hand(db, "vienna-01", "GRO-DAI-0001").await, Some(4_000));
    // No reference data published: the business day is UTC's.
    let expected_sales: Vec<SalesRow> = vec![(
        "vienna-01".into(),
        "2026-11-23".into(),
        "EUR".into(),
        2,
        0,
        0,
        1297,
        163,
        0,
        698,
    )];
    assert_eq!(sales_daily(db).await, expected_sales);

    assert_eq!(till.push(db, &events).await.unwrap(), ack(5, 0, 5, vec![]));
    assert_eq!(
        till.push(db, &events[1..4]).await.unwrap(),
        ack(5, 0, 3, vec![])
    );
    assert_eq!(on_hand(db, "vienna-01", "GRO-BRD-0012").await, Some(7_000));
    assert_eq!(on_hand(db, "vienna-01", "GRO-DAI-0001").await, Some(4_000));
    assert_eq!(sales_daily(db).await, expected_sales);
    assert_eq!(count(db, "inbox").await, 5);
    assert_eq!(count(db, "stock_moves").await, 5);
    let twice = state(db).await;
    assert_eq!(once, twice);
}

/// 2. Events beyond a gap are held, not applied, until the gap is filled.
async fn out_of_order_batches_wait_for_the_gap(db: &Db) {
    let till = Till::new("vienna-01", "vienna-01-t1", 1);
    till.register(db).await;
    let deltas = [1_000, 2_000, -500, 4_000, 8_000, -16_000];
    let events = till.chain(
        deltas
            .iter()
            .zip(1..)
            .map(|(d, i)| (WALL + i, adjusted("A", *d)))
            .collect(),
    );
    assert_eq!(
        till.push(db, &events[3..6]).await.unwrap(),
        ack(0, 3, 0, vec![(1, 3)])
    );
    assert_eq!(acked_seq(db, &till.id).await, 0);
    assert_eq!(on_hand(db, "vienna-01", "A").await, None);
    assert_eq!(count(db, "stock_moves").await, 0);
    let held: Vec<(i64, i64)> =
        sqlx::query_as("SELECT seq, applied FROM inbox WHERE terminal = $1 ORDER BY seq")
            .bind(till.id.as_str())
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(held, vec![(4, 0), (5, 0), (6, 0)]);

    // The middle of the gap: still not contiguous with the head.
    assert_eq!(
        till.push(db, &events[1..2]).await.unwrap(),
        ack(0, 1, 0, vec![(1, 1), (3, 3)])
    );
    assert_eq!(on_hand(db, "vienna-01", "A").await, None);

    assert_eq!(
        till.push(db, &events[0..3]).await.unwrap(),
        ack(6, 2, 1, vec![])
    );
    assert_eq!(acked_seq(db, &till.id).await, 6);
    assert_eq!(
        on_hand(db, "vienna-01", "A").await,
        Some(deltas.iter().sum::<i64>())
    );
    assert_eq!(on_hand(db, "vienna-01", "A").await, Some(-1_500));
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT applied FROM inbox WHERE terminal = $1 ORDER BY seq")
            .bind(till.id.as_str())
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(applied, vec![1; 6]);
}

/// 3. Other contents under a held position, or a held id under another position: refused.
async fn conflicting_events_are_refused_and_change_nothing(db: &Db) {
    let till = Till::new("vienna-01", "vienna-01-t1", 1);
    let other = Till::new("vienna-01", "vienna-01-t2", 2);
    till.register(db).await;
    other.register(db).await;
    let bodies: Vec<(i64, EventBody)> = (1..=5).map(|i| (WALL + i, adjusted("A", 1_000))).collect();
    let events = till.chain(bodies.clone());
    assert_eq!(
        till.push(db, &events[..3]).await.unwrap(),
        ack(3, 3, 0, vec![])
    );
    let before = state(db).await;

    // Event 3 with another body (same id): alone, it links to event 2 but 3 is held otherwise.
    let mut forked = bodies.clone();
    forked[2].1 = adjusted("A", 9_000);
    let forked = till.chain(forked);
    assert_eq!(forked[2].event.meta.id, events[2].event.meta.id);
    let reason = conflict(till.push(db, &forked[2..3]).await, "other body at seq 3");
    assert!(reason.contains("already held"), "{reason}");
    assert_eq!(state(db).await, before);
    // The same, within a batch whose first events are duplicates and whose last is new.
    conflict(till.push(db, &forked[..4]).await, "forked batch 1..4");
    assert_eq!(state(db).await, before);

    // Another id and body at a held position.
    let mut renamed: Vec<Event> = events.iter().map(|e| e.event.clone()).collect();
    renamed[2].meta.id = event_id(9, 3);
    renamed[2].body = adjusted("B", 1);
    let renamed = link_from(GENESIS, renamed);
    conflict(till.push(db, &renamed[2..3]).await, "other id at seq 3");
    assert_eq!(state(db).await, before);

    // An id HQ holds (event 2) reused at sequence 4 of the same terminal.
    let mut reused: Vec<Event> = events.iter().map(|e| e.event.clone()).collect();
    reused[3].meta.id = events[1].event.meta.id;
    let reused = link_from(GENESIS, reused);
    let reason = conflict(till.push(db, &reused[3..4]).await, "id reused at seq 4");
    assert!(reason.contains("already held"), "{reason}");
    assert_eq!(state(db).await, before);

    // An id HQ holds reused by another terminal.
    let mut stolen = vec![other.event(1, WALL + 1, adjusted("A", 1_000))];
    stolen[0].meta.id = events[0].event.meta.id;
    let stolen = link_from(GENESIS, stolen);
    conflict(other.push(db, &stolen).await, "id of another terminal");
    assert_eq!(state(db).await, before);

    // The genuine continuation is still taken.
    assert_eq!(
        till.push(db, &events[2..5]).await.unwrap(),
        ack(5, 2, 1, vec![])
    );
    assert_eq!(on_hand(db, "vienna-01", "A").await, Some(5_000));
}

/// 4. A batch must link to the events HQ holds on either side, and a first event to genesis.
async fn batches_must_link_to_the_held_chain(db: &Db) {
    let till = Till::new("vienna-01", "vienna-01-t1", 1);
    till.register(db).await;
    let bodies: Vec<(i64, EventBody)> = (1..=6).map(|i| (WALL + i, adjusted("A", 1_000))).collect();
    let events = till.chain(bodies.clone());
    // A fork at 3: its 4 and 5 are the same events, but link to another 3.
    let mut forked = bodies.clone();
    forked[2].1 = adjusted("A", 7_000);
    let forked = till.chain(forked);
    assert_eq!(forked[3].event, events[3].event);
    assert_ne!(forked[3].prev, events[3].prev);

    assert_eq!(
        till.push(db, &events[..3]).await.unwrap(),
        ack(3, 3, 0, vec![])
    );
    let before = state(db).await;
    let reason = conflict(till.push(db, &forked[3..5]).await, "4..5 after a fork");
    assert!(reason.contains("does not link"), "{reason}");
    assert_eq!(state(db).await, before);

    // A first event that does not follow genesis.
    let other = Till::new("vienna-01", "vienna-01-t2", 2);
    other.register(db).await;
    let unrooted = link_from(
        chain::link(&GENESIS, b"elsewhere"),
        vec![other.event(1, WALL, adjusted("A", 1))],
    );
    let before = state(db).await;
    let reason = conflict(other.push(db, &unrooted).await, "seq 1 off genesis");
    assert!(reason.contains("genesis"), "{reason}");
    assert_eq!(state(db).await, before);

    // Held beyond a gap, a forked 5..6 takes the place of HQ's; the genuine 4 then does not
    // link to the 5 HQ holds.
    let mut forked_later = bodies;
    forked_later[3].1 = adjusted("A", 3_000);
    let forked_later = till.chain(forked_later);
    assert_eq!(
        till.push(db, &forked_later[4..6]).await.unwrap(),
        ack(3, 2, 0, vec![(4, 4)])
    );
    let before = state(db).await;
    conflict(
        till.push(db, &events[3..4]).await,
        "genuine 4 before forked 5",
    );
    assert_eq!(state(db).await, before);
    assert_eq!(on_hand(db, "vienna-01", "A").await, Some(3_000));
}

/// 5. Counts set on-hand as of their clock reading; movements before the latest count are in it.
async fn counts_set_stock_as_of_their_clock_in_any_arrival_order(db: &Db) {
    // Per till: (wall, body). The count at 3500 is earlier than the movement at 4000.
    let t1_bodies = |s: &str| {
        vec![
            (1_000, adjusted(s, 10_000)),
            (1_500, adjusted(s, -500)),
            (3_000, adjusted(s, -2_000)),
            (3_500, counted(s, 7_000)),
        ]
    };
    let t2_bodies = |s: &str| {
        vec![
            (2_000, counted(s, 5_000)),
            (2_500, adjusted(s, -300)),
            (4_000, adjusted(s, 1_000)),
        ]
    };
    // Arrival orders: (till 1 or 2, first seq, last seq).
    let orders: [&[(u8, usize, usize)]; 4] = [
        &[(1, 1, 4), (2, 1, 3)],
        &[(2, 1, 3), (1, 1, 4)],
        &[(1, 1, 2), (2, 1, 3), (1, 3, 4)],
        &[(2, 2, 3), (1, 1, 1), (1, 4, 4), (1, 2, 3), (2, 1, 1)],
    ];
    for (n, order) in orders.iter().enumerate() {
        let store = format!("order-{n}");
        let index = u16::try_from(n).unwrap() * 2 + 10;
        let t1 = Till::new(&store, &format!("{store}-t1"), index);
        let t2 = Till::new(&store, &format!("{store}-t2"), index + 1);
        t1.register(db).await;
        t2.register(db).await;
        let c1 = t1.chain(
            t1_bodies("S")
                .into_iter()
                .map(|(w, b)| (WALL + w, b))
                .collect(),
        );
        let c2 = t2.chain(
            t2_bodies("S")
                .into_iter()
                .map(|(w, b)| (WALL + w, b))
                .collect(),
        );
        let mut book = StockBook::default();
        for (till, from, to) in order.iter() {
            let (t, c) = if *till == 1 { (&t1, &c1) } else { (&t2, &c2) };
            let before = acked_seq(db, &t.id).await;
            let a = t.push(db, &c[from - 1..*to]).await.unwrap();
            for e in &c[usize::try_from(before).unwrap()..usize::try_from(a.acked_seq).unwrap()] {
                book.apply(&e.event);
            }
            assert_eq!(
                on_hand(db, &store, "S").await.unwrap_or(0),
                book.on_hand(&t.store, &sku("S")),
                "order {n} after till {till} {from}..{to}"
            );
        }
        // The count at 3500 and the one movement after it.
        assert_eq!(on_hand(db, &store, "S").await, Some(8_000), "order {n}");
    }

    // Only the count from one till, the movements from another, the count last: movements
    // before the count are absorbed by it, the one after it is added.
    let t1 = Till::new("absorb", "absorb-t1", 30);
    let t2 = Till::new("absorb", "absorb-t2", 31);
    t1.register(db).await;
    t2.register(db).await;
    let moves = t1.chain(vec![
        (WALL + 100, adjusted("S", 4_000)),
        (WALL + 300, adjusted("S", -1_000)),
    ]);
    let count = t2.chain(vec![(WALL + 200, counted("S", 2_500))]);
    t1.push(db, &moves[..1]).await.unwrap();
    assert_eq!(on_hand(db, "absorb", "S").await, Some(4_000));
    t1.push(db, &moves[1..]).await.unwrap();
    assert_eq!(on_hand(db, "absorb", "S").await, Some(3_000));
    t2.push(db, &count).await.unwrap();
    assert_eq!(on_hand(db, "absorb", "S").await, Some(1_500));
    // A movement arriving after the count with an earlier clock reading is absorbed.
    let late = t1.chain(vec![
        (WALL + 100, adjusted("S", 4_000)),
        (WALL + 300, adjusted("S", -1_000)),
        (WALL + 400, adjusted("T", 1_000)),
    ]);
    t1.push(db, &late[2..]).await.unwrap();
    let t3 = Till::new("absorb", "absorb-t3", 32);
    t3.register(db).await;
    let early = t3.chain(vec![(WALL + 150, adjusted("S", 9_000))]);
    assert_eq!(t3.push(db, &early).await.unwrap(), ack(1, 1, 0, vec![]));
    assert_eq!(on_hand(db, "absorb", "S").await, Some(1_500));
    // Equal clock readings are ordered by event id: till 30's ids sort before till 31's.
    let tie = t1.chain(vec![
        (WALL + 100, adjusted("S", 4_000)),
        (WALL + 300, adjusted("S", -1_000)),
        (WALL + 400, adjusted("T", 1_000)),
        (WALL + 200, adjusted("S", 50)),
    ]);
    t1.push(db, &tie[3..]).await.unwrap();
    assert!(tie[3].event.meta.id < count[0].event.meta.id);
    assert_eq!(on_hand(db, "absorb", "S").await, Some(1_500));
    let after = t2.chain(vec![
        (WALL + 200, counted("S", 2_500)),
        (WALL + 200, adjusted("S", 70)),
    ]);
    // Same wall and counter as the count, a larger id: after it.
    assert!(after[1].event.meta.id > count[0].event.meta.id);
    t2.push(db, &after[1..]).await.unwrap();
    assert_eq!(on_hand(db, "absorb", "S").await, Some(1_570));

    // Negative stock is allowed and reported: a sale of something never received.
    let seller = Till::new("negative", "negative-t1", 40);
    seller.register(db).await;
    let sold = seller.chain(vec![(
        WALL,
        sale(
            "r1",
            "NEVER-RECEIVED",
            250,
            3,
            "standard",
            TenderKind::Card,
            None,
        ),
    )]);
    assert_eq!(seller.push(db, &sold).await.unwrap(), ack(1, 1, 0, vec![]));
    let negative: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT location, sku, on_hand FROM stock_levels WHERE on_hand < 0 ORDER BY location, sku",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        negative,
        vec![("negative".into(), "NEVER-RECEIVED".into(), -3_000)]
    );
}

/// 6. Sales per store and business day, in the store's time zone, in minor units.
async fn sales_are_summed_per_store_and_business_day(db: &Db) {
    // With the demo data published, vienna-01's business day is Vienna's.
    assert_eq!(
        hq::refdata::publish(db, &demo_seed(), PEPPER)
            .await
            .unwrap(),
        1
    );
    let till = Till::new("vienna-01", "vienna-01-t1", 1);
    till.register(db).await;
    let first = sale(
        "r1",
        "GRO-BRD-0012",
        349,
        2,
        "reduced",
        TenderKind::Cash,
        Some(1000),
    );
    let second = sale(
        "r2",
        "GRO-DAI-0001",
        599,
        1,
        "standard",
        TenderKind::Card,
        None,
    );
    // 6.98 at 10 % inclusive: 0.63 tax; 5.99 at 20 %: 1.00 (0.998… rounded half up).
    let (EventBody::SaleCompleted(a), EventBody::SaleCompleted(b)) = (&first, &second) else {
        unreachable!()
    };
    assert_eq!(
        (a.settlement.due.minor(), a.cart.tax_total.minor()),
        (698, 63)
    );
    assert_eq!(
        (b.settlement.due.minor(), b.cart.tax_total.minor()),
        (599, 100)
    );
    assert_eq!(a.settlement.change.minor(), 302);
    // The shift's close books the cash its drawer should hold and what the blind count found.
    let close = EventBody::ShiftClosed {
        shift: "s1".into(),
        staff: StaffId::parse("anna").unwrap(),
        up_to_seq: 2,
        expected: Money::from_minor(10_698, Currency::EUR),
        counted: Money::from_minor(10_650, Currency::EUR),
    };
    let events = till.chain(vec![
        (WALL, first),
        (WALL + 60_000, second),
        (WALL + 120_000, close),
    ]);
    assert_eq!(till.push(db, &events).await.unwrap(), ack(3, 3, 0, vec![]));
    let (shifts, expected, counted): (i64, i64, i64) = sqlx::query_as(
        "SELECT shifts_closed, cash_expected_minor, cash_counted_minor FROM sales_daily",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((shifts, expected, counted), (1, 10_698, 10_650));
    assert_eq!(
        sales_daily(db).await,
        vec![(
            "vienna-01".into(),
            "2026-11-24".into(),
            "EUR".into(),
            2,
            0,
            0,
            1297,
            163,
            0,
            698
        )]
    );
}

fn demo_seed() -> SeedDto {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/demo/seed.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// 7. Reference data: versions only when something changed; deltas and snapshots per store.
async fn reference_data_is_published_as_versioned_changes(db: &Db) {
    let mut seed = demo_seed();
    assert_eq!(hq::refdata::publish(db, &seed, PEPPER).await.unwrap(), 1);
    assert_eq!(hq::refdata::publish(db, &seed, PEPPER).await.unwrap(), 1);
    let unchanged = hq::refdata::changes_since(db, "vienna-01", 1)
        .await
        .unwrap();
    assert_eq!((unchanged.from_version, unchanged.to_version), (1, 1));
    assert!(unchanged.entities.is_empty());

    // One chain-EUR price changes, one product (two variants) goes.
    let book = seed
        .pricebooks
        .iter_mut()
        .find(|b| b.id == "chain-eur")
        .unwrap();
    let entry = book
        .entries
        .iter_mut()
        .find(|e| e.sku == "GRO-BRD-0001")
        .unwrap();
    assert_eq!(entry.price, "0.45");
    entry.price = "0.55".into();
    let removed = seed
        .products
        .iter()
        .position(|p| p.id == "gro-drk-0001")
        .unwrap();
    let product = seed.products.remove(removed);
    let gone: Vec<String> = product.variants.iter().map(|v| v.sku.clone()).collect();
    assert_eq!(gone, ["GRO-DRK-0001", "GRO-DRK-0001-6ER"]);
    // A quick key naming a variant that is gone is refused, naming the key…
    let refused = hq::refdata::publish(db, &seed, PEPPER).await.unwrap_err();
    assert!(refused.to_string().contains("quick_keys"), "{refused}");
    // …so the stores' drinks pages lose that key, which is a change of each store.
    for store in &mut seed.stores {
        for page in &mut store.quick_keys {
            page.keys.retain(|k| !gone.contains(&k.sku));
        }
    }
    assert_eq!(hq::refdata::publish(db, &seed, PEPPER).await.unwrap(), 2);
    assert_eq!(hq::refdata::publish(db, &seed, PEPPER).await.unwrap(), 2);

    let delta = hq::refdata::changes_since(db, "vienna-01", 1)
        .await
        .unwrap();
    assert_eq!((delta.from_version, delta.to_version), (1, 2));
    let listed: Vec<(&str, &str, bool)> = delta
        .entities
        .iter()
        .map(|e| (e.kind.as_str(), e.key.as_str(), e.payload.is_some()))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("prices", "chain-eur|GRO-BRD-0001", true),
            ("store", "vienna-01", true),
            ("variant", "GRO-DRK-0001", false),
            ("variant", "GRO-DRK-0001-6ER", false),
        ]
    );
    let price = delta.entities[0].payload.as_ref().unwrap();
    assert_eq!(price["currency"], "EUR");
    assert_eq!(price["entries"][0]["price"], "0.55");

    // zurich-01 trades in CHF: its snapshot has no EUR prices, no removals, one store.
    let snapshot = hq::refdata::changes_since(db, "zurich-01", 0)
        .await
        .unwrap();
    assert_eq!((snapshot.from_version, snapshot.to_version), (0, 2));
    assert!(snapshot.entities.iter().all(|e| e.payload.is_some()));
    let mut kinds: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in &snapshot.entities {
        kinds.entry(e.kind.as_str()).or_default().push(&e.key);
    }
    assert_eq!(kinds["store"], ["zurich-01"]);
    assert_eq!(kinds["jurisdiction"], ["AT", "CH"]);
    let chf_skus = seed
        .pricebooks
        .iter()
        .find(|b| b.id == "chain-chf")
        .unwrap()
        .entries
        .iter()
        .map(|e| e.sku.as_str())
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(kinds["prices"].len(), chf_skus.len());
    for e in snapshot.entities.iter().filter(|e| e.kind == "prices") {
        let payload = e.payload.as_ref().unwrap();
        assert_eq!(payload["currency"], "CHF", "{}", e.key);
        assert!(e.key.starts_with("chain-chf|"), "{}", e.key);
    }
    let variants = seed
        .products
        .iter()
        .map(|p| p.variants.len())
        .sum::<usize>();
    assert_eq!(kinds["variant"].len(), variants);
    assert!(!kinds["variant"].contains(&"GRO-DRK-0001"));
}

/// 8. A store's stock snapshot: levels and, per terminal of the store, the sequence included.
async fn stock_snapshots_carry_the_acknowledged_sequences(db: &Db) {
    let t1 = Till::new("vienna-01", "vienna-01-t1", 1);
    let t2 = Till::new("vienna-01", "vienna-01-t2", 2);
    let graz = Till::new("graz-01", "graz-01-t1", 3);
    for t in [&t1, &t2, &graz] {
        t.register(db).await;
    }
    let c1 = t1.chain(vec![
        (WALL + 1, adjusted("A", 5_000)),
        (WALL + 2, adjusted("B", 2_000)),
        (WALL + 3, adjusted("A", -1_000)),
    ]);
    let c2 = t2.chain(vec![
        (WALL + 4, adjusted("A", 100)),
        (WALL + 5, counted("B", 10_000)),
        (WALL + 6, adjusted("C", 30)),
    ]);
    let cg = graz.chain(vec![(WALL + 7, adjusted("A", 999_000))]);
    let a1 = t1.push(db, &c1).await.unwrap();
    let a2 = t2.push(db, &c2[1..]).await.unwrap();
    let ag = graz.push(db, &cg).await.unwrap();
    assert_eq!((a1.acked_seq, a2.acked_seq, ag.acked_seq), (3, 0, 1));

    let snap = hq::api::stock_snapshot(db, "vienna-01").await.unwrap();
    assert_eq!(snap.location, "vienna-01");
    assert_eq!(
        snap.watermarks,
        BTreeMap::from([
            ("vienna-01-t1".to_owned(), a1.acked_seq),
            ("vienna-01-t2".to_owned(), a2.acked_seq),
        ])
    );
    assert_eq!(
        snap.levels,
        BTreeMap::from([("A".to_owned(), 4_000), ("B".to_owned(), 2_000)])
    );

    let a2 = t2.push(db, &c2[..1]).await.unwrap();
    assert_eq!(a2, ack(3, 1, 0, vec![]));
    let snap = hq::api::stock_snapshot(db, "vienna-01").await.unwrap();
    assert_eq!(
        snap.watermarks,
        BTreeMap::from([
            ("vienna-01-t1".to_owned(), 3),
            ("vienna-01-t2".to_owned(), 3),
        ])
    );
    assert_eq!(
        snap.levels,
        BTreeMap::from([
            ("A".to_owned(), 4_100),
            ("B".to_owned(), 10_000),
            ("C".to_owned(), 30),
        ])
    );
    let graz_snap = hq::api::stock_snapshot(db, "graz-01").await.unwrap();
    assert_eq!(
        graz_snap.watermarks,
        BTreeMap::from([("graz-01-t1".to_owned(), 1)])
    );
    assert_eq!(
        graz_snap.levels,
        BTreeMap::from([("A".to_owned(), 999_000)])
    );
}

/// 9. Two HQ requests pushing the same batch at once: both answer, the events apply once.
async fn concurrent_pushes_of_one_batch_apply_it_once(db: &Db) {
    for round in 0..8_u16 {
        let store = format!("race-{round}");
        let till = Till::new(&store, &format!("{store}-t1"), 50 + round);
        till.register(db).await;
        let events = till.chain(
            (1..=5)
                .map(|i| (WALL + i, adjusted("A", 1_000 * i)))
                .collect(),
        );
        let batch = till.batch(&events);
        let (a, b) = tokio::join!(
            ingest(db, till.id.as_str(), &batch, NOW_MS),
            ingest(db, till.id.as_str(), &batch, NOW_MS),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!((a.acked_seq, b.acked_seq), (5, 5), "round {round}");
        assert_eq!(a.accepted + b.accepted, 5, "round {round}: {a:?} {b:?}");
        assert_eq!(a.duplicates + b.duplicates, 5, "round {round}: {a:?} {b:?}");
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE terminal = $1")
            .bind(till.id.as_str())
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(held, 5);
        let moves: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM stock_moves WHERE location = $1")
            .bind(&store)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(moves, 5);
        assert_eq!(
            on_hand(db, &store, "A").await,
            Some(15_000),
            "round {round}"
        );
        assert_eq!(acked_seq(db, &till.id).await, 5);
    }
}

/// 5b. A sale with two lines of one SKU (two scale labels of one weighed item): both lines leave
/// stock, whether the earlier count arrives before or after the sale.
async fn a_sale_of_one_sku_on_two_lines_moves_both_in_any_order(db: &Db) {
    let at = domain::presets::jurisdiction("AT").unwrap();
    let line = LineInput {
        sku: sku("APPLES"),
        name: "Äpfel lose".into(),
        unit_price: Money::from_minor(299, Currency::EUR),
        quantity: Quantity::from_milli(1_000).unwrap(),
        unit: UnitOfSale::Each,
        tax_category: TaxCategory::parse("reduced").unwrap(),
        discount: None,
        fixed_amount: None,
    };
    let cart = price_cart(
        &at,
        &[line.clone(), line],
        None,
        Timestamp::from_millis(WALL),
    )
    .unwrap();
    let tenders = vec![Tender {
        kind: TenderKind::Card,
        amount: cart.total,
        reference: None,
    }];
    let settlement = settle(&cart, &tenders, None).unwrap();
    let body = EventBody::SaleCompleted(SaleCompleted {
        receipt: "r1".into(),
        cashier: None,
        cart,
        tenders,
        settlement,
        approvals: Vec::new(),
    });
    for (n, count_first) in [(0_u16, true), (1, false)] {
        let store = format!("lines-{n}");
        let seller = Till::new(&store, &format!("{store}-t1"), 60 + 2 * n);
        let counter = Till::new(&store, &format!("{store}-t2"), 61 + 2 * n);
        seller.register(db).await;
        counter.register(db).await;
        let sold = seller.chain(vec![(WALL + 2_000, body.clone())]);
        let count = counter.chain(vec![(WALL + 1_000, counted("APPLES", 10_000))]);
        if count_first {
            counter.push(db, &count).await.unwrap();
            seller.push(db, &sold).await.unwrap();
        } else {
            seller.push(db, &sold).await.unwrap();
            assert_eq!(
                on_hand(db, &store, "APPLES").await,
                Some(-2_000),
                "sale alone"
            );
            counter.push(db, &count).await.unwrap();
        }
        // Counted 10, then two lines of 1 sold after the count.
        assert_eq!(
            on_hand(db, &store, "APPLES").await,
            Some(8_000),
            "count {} the sale",
            if count_first { "before" } else { "after" }
        );
    }
}

/// 9b. Two terminals of one store pushing at once, one a count, the other movements around it:
/// the level ends as the order-free fold says.
async fn concurrent_counts_and_movements_agree_with_the_fold(db: &Db) {
    for round in 0..8_u16 {
        let store = format!("race-count-{round}");
        let mover = Till::new(&store, &format!("{store}-t1"), 80 + 2 * round);
        let counter = Till::new(&store, &format!("{store}-t2"), 81 + 2 * round);
        mover.register(db).await;
        counter.register(db).await;
        let moves = mover.chain(
            (1..=6)
                .map(|i| (WALL + 100 * i, adjusted("S", 1_000 * i)))
                .collect(),
        );
        let count = counter.chain(vec![(WALL + 350, counted("S", 500))]);
        let (a, b) = tokio::join!(mover.push(db, &moves), counter.push(db, &count));
        assert_eq!((a.unwrap().acked_seq, b.unwrap().acked_seq), (6, 1));
        // Counted 0.5 at 350; the movements at 400, 500 and 600 come after it.
        assert_eq!(
            on_hand(db, &store, "S").await,
            Some(500 + 4_000 + 5_000 + 6_000),
            "round {round}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Opening counts of catalog imports

fn opening(location: &str, sku_code: &str, counted_milli: i64) -> hq::import::CountWrite {
    hq::import::CountWrite {
        location: location.into(),
        sku: sku_code.into(),
        counted_milli,
        provenance: Some(format!(
            "{{\"file\":\"legacy.csv\",\"sku\":\"{sku_code}\"}}"
        )),
    }
}

async fn levels(db: &Db, location: &str) -> BTreeMap<String, i64> {
    hq::api::stock_snapshot(db, location).await.unwrap().levels
}

/// Scenario 10: an import's opening counts set stock like a till's count at the instant of the commit:
/// movements after it apply on top, movements and counts made before it (even if they arrive
/// later) are absorbed. The same counts again change nothing. A rollback withdraws a count
/// still in effect (back to the latest earlier count plus the movements after it, or the sum
/// of movements) and leaves a level a till counted since alone; sales are never lost.
async fn opening_counts_of_an_import_set_stock_and_a_rollback_keeps_later_sales(db: &Db) {
    let t1 = Till::new("vienna-01", "vienna-01-t1", 60);
    let t2 = Till::new("vienna-01", "vienna-01-t2", 61);
    t1.register(db).await;
    t2.register(db).await;
    let c1 = t1.chain(vec![
        (WALL + 1, adjusted("A", 5_000)),
        (
            WALL + 2,
            sale("r1", "A", 250, 1, "standard", TenderKind::Cash, None),
        ),
        (WALL + 3, counted("B", 7_000)),
        // After the first import.
        (
            WALL + 20,
            sale("r2", "A", 250, 2, "standard", TenderKind::Cash, None),
        ),
        // After the second import: a till count replaces its count of A.
        (WALL + 40, counted("A", 24_000)),
    ]);
    // Till 2 was offline during the first import: a sale and a count made before it arrive
    // after it.
    let c2 = t2.chain(vec![
        (
            WALL + 6,
            sale("r3", "A", 250, 1, "standard", TenderKind::Cash, None),
        ),
        (WALL + 7, counted("B", 3_000)),
    ]);
    t1.push(db, &c1[..3]).await.unwrap();
    assert_eq!(
        levels(db, "vienna-01").await,
        BTreeMap::from([("A".to_owned(), 4_000), ("B".to_owned(), 7_000)])
    );

    let counts = vec![
        opening("vienna-01", "A", 20_000),
        opening("vienna-01", "B", 30_000),
        opening("vienna-01", "C", 1_000),
    ];
    let dry = hq::import::plan(db, &[], &counts).await.unwrap();
    assert_eq!(dry.counts.len(), 3);
    assert_eq!(
        on_hand(db, "vienna-01", "C").await,
        None,
        "a plan writes nothing"
    );
    let first = hq::import::commit(db, "legacy", WALL + 10, &[], &counts)
        .await
        .unwrap();
    let first_batch = first.batch.clone().unwrap();
    assert_eq!(first.counts_superseded, 0);
    let snapshot = hq::api::stock_snapshot(db, "vienna-01").await.unwrap();
    assert_eq!(
        snapshot.levels,
        BTreeMap::from([
            ("A".to_owned(), 20_000),
            ("B".to_owned(), 30_000),
            ("C".to_owned(), 1_000)
        ])
    );
    // The counts come from no terminal: the watermarks are the tills' own.
    assert_eq!(
        snapshot.watermarks,
        BTreeMap::from([
            ("vienna-01-t1".to_owned(), 3),
            ("vienna-01-t2".to_owned(), 0)
        ])
    );
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM import_batch_counts")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 3);

    // The same import again changes nothing, not even after sales.
    t1.push(db, &c1[3..4]).await.unwrap();
    t2.push(db, &c2).await.unwrap();
    let again = hq::import::commit(db, "legacy", WALL + 11, &[], &counts)
        .await
        .unwrap();
    assert_eq!((again.batch, again.plan.counts_unchanged), (None, 3));
    // The sale after the import counts; till 2's sale and count from before it are absorbed.
    assert_eq!(
        levels(db, "vienna-01").await,
        BTreeMap::from([
            ("A".to_owned(), 18_000),
            ("B".to_owned(), 30_000),
            ("C".to_owned(), 1_000)
        ])
    );
    assert_eq!(
        hq::api::stock_snapshot(db, "vienna-01")
            .await
            .unwrap()
            .watermarks,
        BTreeMap::from([
            ("vienna-01-t1".to_owned(), 4),
            ("vienna-01-t2".to_owned(), 2)
        ])
    );

    // Rolling back withdraws the counts and keeps every movement: A is the sum of its
    // movements (+5, -1, -1, -2), B is till 2's count (the latest before the import, though
    // it arrived after), and C, which only the import counted and nothing moved, leaves no
    // row behind.
    let undone = hq::import::rollback(db, &first_batch).await.unwrap();
    assert_eq!((undone.counts_withdrawn, undone.counts_superseded), (3, 0));
    assert_eq!(
        levels(db, "vienna-01").await,
        BTreeMap::from([("A".to_owned(), 1_000), ("B".to_owned(), 3_000)])
    );
    // A later movement still applies to the restored count.
    let t3 = Till::new("vienna-01", "vienna-01-t3", 62);
    t3.register(db).await;
    let c3 = t3.chain(vec![(WALL + 8, adjusted("B", 500))]);
    t3.push(db, &c3).await.unwrap();
    assert_eq!(on_hand(db, "vienna-01", "B").await, Some(3_500));

    // Imported again after the rollback, the counts are set again; then a second import with
    // other figures, a till's count of A after it, and a third import changing only B.
    let second = hq::import::commit(
        db,
        "legacy",
        WALL + 30,
        &[],
        &[
            opening("vienna-01", "A", 25_000),
            opening("vienna-01", "B", 35_000),
        ],
    )
    .await
    .unwrap();
    assert_eq!(second.plan.counts.len(), 2);
    t1.push(db, &c1[4..]).await.unwrap();
    assert_eq!(on_hand(db, "vienna-01", "A").await, Some(24_000));
    let third = hq::import::commit(
        db,
        "legacy",
        WALL + 50,
        &[],
        &[
            opening("vienna-01", "A", 25_000),
            opening("vienna-01", "B", 40_000),
        ],
    )
    .await
    .unwrap();
    // A's figure is the one its last import counted: unchanged, the till's count stays.
    assert_eq!(
        (third.plan.counts.len(), third.plan.counts_unchanged),
        (1, 1)
    );
    assert_eq!(on_hand(db, "vienna-01", "A").await, Some(24_000));
    assert_eq!(on_hand(db, "vienna-01", "B").await, Some(40_000));
    // Undoing the third import brings B back to the second's count.
    let undone = hq::import::rollback(db, third.batch.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!((undone.counts_withdrawn, undone.counts_superseded), (1, 0));
    assert_eq!(on_hand(db, "vienna-01", "B").await, Some(35_000));
    // Undoing the second: A was counted by a till since and stays; B goes back to till 2's
    // count and the movement after it.
    let undone = hq::import::rollback(db, second.batch.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!((undone.counts_withdrawn, undone.counts_superseded), (1, 1));
    assert_eq!(on_hand(db, "vienna-01", "A").await, Some(24_000));
    assert_eq!(on_hand(db, "vienna-01", "B").await, Some(3_500));
    // Every sale is still at HQ.
    let sales: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(sales), 0) AS BIGINT) FROM sales_daily")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(sales, 3);
    let listed = hq::import::batches(db).await.unwrap();
    assert_eq!(
        listed.iter().map(|b| b.counts).collect::<Vec<_>>(),
        [1, 2, 3]
    );
}

// ---------------------------------------------------------------------------------------------
// Gift cards and store credit

/// `body` (a sale or return) paid entirely with the stored-value `tenders` given.
fn paid_with(body: EventBody, tenders: Vec<(TenderKind, i64, &str)>) -> EventBody {
    let tenders = tenders
        .into_iter()
        .map(|(kind, minor, number)| Tender {
            kind,
            amount: Money::from_minor(minor, Currency::EUR),
            reference: Some(number.to_owned()),
        })
        .collect();
    match body {
        EventBody::SaleCompleted(mut s) => {
            s.tenders = tenders;
            EventBody::SaleCompleted(s)
        }
        EventBody::ReturnCompleted(mut r) => {
            r.tenders = tenders;
            EventBody::ReturnCompleted(r)
        }
        other => other,
    }
}

fn loaded(number: &AccountNumber, minor: i64) -> StoredValueLoad {
    StoredValueLoad {
        account: number.clone(),
        cashier: None,
        amount: Money::from_minor(minor, Currency::EUR),
        tenders: vec![Tender {
            kind: TenderKind::Cash,
            amount: Money::from_minor(minor, Currency::EUR),
            reference: None,
        }],
        change: Money::from_minor(0, Currency::EUR),
    }
}

async fn stored_value_balances_follow_loads_redemptions_voids_and_refunds(db: &Db) {
    let vienna = Till::new("vienna-01", "vienna-01-t1", 40);
    let graz = Till::new("graz-01", "graz-01-t1", 41);
    vienna.register(db).await;
    graz.register(db).await;
    let card = AccountNumber::generate(StoredValueKind::GiftCard, 4242);
    let credit = AccountNumber::generate(StoredValueKind::StoreCredit, 4343);
    let gc = card.as_str();
    let issued = vienna.chain(vec![
        (WALL, EventBody::StoredValueIssued(loaded(&card, 5000))),
        (
            WALL + 1,
            EventBody::StoredValueToppedUp(loaded(&card, 1000)),
        ),
    ]);
    vienna.push(db, &issued).await.unwrap();
    let balance = hq::stored_value::balance_for_store(db, "graz-01", &card)
        .await
        .unwrap();
    assert_eq!(
        (balance.status.as_str(), balance.balance_minor),
        ("active", 6000)
    );
    assert_eq!(balance.currency.as_deref(), Some("EUR"));
    assert_eq!(balance.watermarks.get("graz-01-t1"), Some(&0));

    // Graz redeems 20.00 and then, offline, 45.00: 5.00 more than the card held.
    let bread = |receipt: &str, quantity| {
        sale(
            receipt,
            "GRO-BRD-0012",
            1000,
            quantity,
            "reduced",
            TenderKind::Cash,
            None,
        )
    };
    let redeemed = graz.chain(vec![
        (
            WALL + 10,
            paid_with(bread("g1", 2), vec![(TenderKind::GiftCard, 2000, gc)]),
        ),
        (
            WALL + 20,
            paid_with(
                bread("g2", 5),
                vec![
                    (TenderKind::GiftCard, 4000, gc),
                    (TenderKind::GiftCard, 500, gc),
                ],
            ),
        ),
        // The last sale voided: its 45.00 goes back onto the card.
        (
            WALL + 30,
            EventBody::SaleVoided(domain::ledger::SaleVoided {
                sale: event_id(41, 2),
                receipt: "g2".into(),
                reason: "wrong card".into(),
                lines: Vec::new(),
                refund: Money::from_minor(4500, Currency::EUR),
                approvals: Vec::new(),
            }),
        ),
        (
            WALL + 40,
            paid_with(bread("g3", 5), vec![(TenderKind::GiftCard, 4500, gc)]),
        ),
        // A refund as store credit opens an account.
        (
            WALL + 50,
            EventBody::ReturnCompleted(domain::ledger::ReturnCompleted {
                receipt: "g4".into(),
                original_receipt: None,
                reason: Some("no receipt".into()),
                refund: domain::sale::PricedReturn {
                    lines: Vec::new(),
                    total: Money::from_minor(349, Currency::EUR),
                    cash_rounding: Money::from_minor(0, Currency::EUR),
                    refund: Money::from_minor(349, Currency::EUR),
                },
                tenders: vec![Tender {
                    kind: TenderKind::StoreCredit,
                    amount: Money::from_minor(349, Currency::EUR),
                    reference: Some(credit.to_string()),
                }],
                approvals: Vec::new(),
            }),
        ),
    ]);
    // The void arrives in a later batch than the sale it voids.
    graz.push(db, &redeemed[..2]).await.unwrap();
    graz.push(db, &redeemed[2..]).await.unwrap();
    // A repeated push changes nothing.
    let again = graz.push(db, &redeemed).await.unwrap();
    assert_eq!(again.duplicates, 5);

    let balance = hq::stored_value::balance_for_store(db, "graz-01", &card)
        .await
        .unwrap();
    assert_eq!(balance.balance_minor, -500);
    assert_eq!(balance.watermarks.get("graz-01-t1"), Some(&5));
    let account = hq::stored_value::account_view(db, &card)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account["balance"], "-5.00");
    assert_eq!(account["status"], "overdrawn");
    let kinds: Vec<&str> = account["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "issue",
            "top-up",
            "redemption",
            "redemption",
            "void",
            "redemption"
        ]
    );
    assert_eq!(account["movements"][3]["amount"], "-45.00");
    assert_eq!(account["movements"][3]["balance_after"], "-5.00");
    assert!(
        hq::stored_value::account_view(db, &AccountNumber::generate(StoredValueKind::GiftCard, 1))
            .await
            .unwrap()
            .is_none()
    );

    let exceptions = hq::stored_value::exceptions(db).await.unwrap();
    let listed = exceptions["stored_value"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{exceptions}");
    assert_eq!(listed[0]["number"], gc);
    let redemptions = listed[0]["redemptions"].as_array().unwrap();
    assert_eq!(redemptions.len(), 2, "{exceptions}");
    assert_eq!(redemptions[0]["store"], "graz-01");
    assert_eq!(redemptions[0]["seq"], 2);
    assert_eq!(redemptions[1]["seq"], 4);

    let liability = hq::stored_value::liability(db).await.unwrap();
    assert_eq!(
        liability["liability"],
        serde_json::json!([
            {"kind": "gift-card", "currency": "EUR", "accounts": 1, "outstanding": "0.00", "overdrawn": "-5.00"},
            {"kind": "store-credit", "currency": "EUR", "accounts": 1, "outstanding": "3.49", "overdrawn": "0.00"},
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// Card payments

/// A card payment's request and approval (`offline`: store-and-forward), as the store's ledger
/// records them.
fn card_payment(service: &str, minor: i64, offline: bool) -> [EventBody; 2] {
    use domain::card::{
        CardApproval, CardEvent, CardOutcome, CardRequestKind, CardRequestStarted, MaskedPan,
    };
    let amount = Money::from_minor(minor, Currency::EUR);
    [
        EventBody::Card(CardEvent::RequestStarted(CardRequestStarted {
            service_id: service.into(),
            kind: CardRequestKind::Payment,
            sale: format!("sale-{service}"),
            amount,
            original: None,
            shift: Some("s1".into()),
        })),
        EventBody::Card(CardEvent::RequestEnded {
            service_id: service.into(),
            outcome: CardOutcome::Approved(CardApproval {
                poi_transaction_id: format!("poi-{service}"),
                psp_reference: None,
                auth_code: Some("A00001".into()),
                brand: Some("visa".into()),
                masked_pan: MaskedPan::parse("411111 **** 1111"),
                token: None,
                entry_mode: Some("Contactless".into()),
                offline,
                authorised: amount,
            }),
        }),
    ]
}

async fn read_api(db: &Db, path: &str) -> serde_json::Value {
    use tower::ServiceExt as _;
    let router = hq::api::router(std::sync::Arc::new(hq::api::Hq::new(
        db.clone(),
        Some("read-token".into()),
    )));
    let response = router
        .oneshot(
            axum::http::Request::get(path)
                .header("authorization", "Bearer read-token")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), axum::http::StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn card_events_project_pending_approvals_and_later_declines(db: &Db) {
    use domain::card::CardEvent;
    let till = Till::new("vienna-01", "vienna-01-t1", 4);
    till.register(db).await;
    let bodies: Vec<(i64, EventBody)> = card_payment("a", 2_000, true)
        .into_iter()
        .chain(card_payment("b", 1_013, true))
        .chain(card_payment("c", 500, false))
        .chain([
            EventBody::Card(CardEvent::OfflineSettled {
                service_id: "a".into(),
                poi_transaction_id: "poi-a".into(),
            }),
            EventBody::Card(CardEvent::OfflineDeclined {
                service_id: "b".into(),
                poi_transaction_id: "poi-b".into(),
                receipt: Some("vienna-01-t1-000002".into()),
                cashier: Some(StaffId::parse("anna").unwrap()),
                amount: Money::from_minor(1_013, Currency::EUR),
            }),
        ])
        .chain(refund_to_presented_card("r", 349))
        .enumerate()
        .map(|(i, b)| (WALL + i64::try_from(i).unwrap() * 1_000, b))
        .collect();
    let events = till.chain(bodies);
    assert_eq!(
        till.push(db, &events[..6]).await.unwrap(),
        ack(6, 6, 0, vec![])
    );
    // Two offline approvals pending; the online one is not.
    let pending = read_api(db, "/v1/cards/pending").await;
    assert_eq!(pending["pending"].as_array().unwrap().len(), 2, "{pending}");
    assert_eq!(pending["pending"][0]["amount"], "20.00");
    assert_eq!(pending["pending"][1]["sale"], "sale-b");
    assert_eq!(pending["stores"][0]["store"], "vienna-01");
    assert_eq!(pending["stores"][0]["count"], 2);
    assert_eq!(
        read_api(db, "/v1/exceptions/card-declines").await["card_declines"],
        serde_json::json!([])
    );
    // One settles, the other is declined when forwarded: an exception with sale, cashier, amount.
    assert_eq!(
        till.push(db, &events[6..]).await.unwrap(),
        ack(10, 4, 0, vec![])
    );
    let pending = read_api(db, "/v1/cards/pending").await;
    assert_eq!(pending["pending"], serde_json::json!([]), "{pending}");
    let declines = read_api(db, "/v1/exceptions/card-declines").await;
    let list = declines["card_declines"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{declines}");
    assert_eq!(list[0]["store"], "vienna-01");
    assert_eq!(list[0]["receipt"], "vienna-01-t1-000002");
    assert_eq!(list[0]["cashier"], "anna");
    assert_eq!(list[0]["amount"], "10.13");
    assert_eq!(list[0]["poi_transaction_id"], "poi-b");
    // A refund to a presented card is money given back: no approval waiting to settle, no
    // exception, its outcome a refund with the refund's own transaction id.
    let refund: (String, Option<String>, Option<i64>, Option<String>, String) = sqlx::query_as(
        "SELECT outcome, poi, authorised_minor, settlement, sale FROM card_payments WHERE service_id = 'r'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        refund,
        (
            "refunded".to_owned(),
            Some("poi-r".to_owned()),
            Some(349),
            None,
            "vienna-01-t1-000004".to_owned()
        )
    );
}

/// A return's refund to the card the customer presented, as the store's ledger records it.
fn refund_to_presented_card(service: &str, minor: i64) -> [EventBody; 2] {
    use domain::card::{CardEvent, CardOutcome, CardRequestKind, CardRequestStarted};
    let amount = Money::from_minor(minor, Currency::EUR);
    [
        EventBody::Card(CardEvent::RequestStarted(CardRequestStarted {
            service_id: service.into(),
            kind: CardRequestKind::UnreferencedRefund,
            sale: "vienna-01-t1-000004".into(),
            amount,
            original: None,
            shift: Some("s1".into()),
        })),
        EventBody::Card(CardEvent::RequestEnded {
            service_id: service.into(),
            outcome: CardOutcome::Refunded {
                poi_transaction_id: format!("poi-{service}"),
                amount,
            },
        }),
    ]
}

/// Issue 16, item 3: adding a registered store again used to issue it a new credential and lock
/// the running store out. It is refused and changes nothing; `rotate_credential` replaces one on
/// purpose. The reference log's id, which stores keep with their version, is made once.
async fn a_licence_admits_through_its_grace_period_then_no_new_store_or_till(db: &Db) {
    use protocol::licence::{Standing, Terms};
    let vendor = SigningKey::from_bytes(&[7; 32]);
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let terms = Terms {
        licence: "L-1".into(),
        customer: "acme".into(),
        customer_name: "Acme".into(),
        stores: 1,
        terminals: 1,
        issued: today.to_string(),
        expires: (today + jiff::Span::new().days(100)).to_string(),
        grace_days: 10,
        features: vec![],
    };
    let file = terms.sign(&vendor).unwrap().to_text();
    let now = || jiff::Timestamp::now().as_millisecond();
    assert!(
        hq::licence::report(db, now())
            .await
            .unwrap()
            .standing
            .is_none()
    );
    hq::licence::install(db, &file, &[vendor.verifying_key()], "test")
        .await
        .unwrap();
    let key = |seed: u8| {
        hex::encode(
            SigningKey::from_bytes(&[seed; 32])
                .verifying_key()
                .to_bytes(),
        )
    };
    let vienna = StoreId::parse("vienna-01").unwrap();
    hq::add_store(db, &vienna, "Wien").await.unwrap();
    hq::add_terminal(
        db,
        &vienna,
        &TerminalId::parse("vienna-01-t1").unwrap(),
        &key(1),
    )
    .await
    .unwrap();
    let report = hq::licence::report(db, now()).await.unwrap();
    assert_eq!(report.standing, Some(Standing::Valid));
    // One over: admitted, the grace period started now.
    hq::add_terminal(
        db,
        &vienna,
        &TerminalId::parse("vienna-01-t2").unwrap(),
        &key(2),
    )
    .await
    .unwrap();
    let report = hq::licence::report(db, now()).await.unwrap();
    assert!(
        matches!(&report.standing, Some(Standing::Grace { until_ms, .. }) if *until_ms > now() + 9 * 86_400_000),
        "{report:?}"
    );
    // The same till again is no new till.
    hq::add_terminal(
        db,
        &vienna,
        &TerminalId::parse("vienna-01-t2").unwrap(),
        &key(2),
    )
    .await
    .unwrap();
    // Past the grace period: refused, nothing added.
    sqlx::query("UPDATE licence SET over_since_ms = over_since_ms - 11 * 86400000")
        .execute(&db.pool)
        .await
        .unwrap();
    let refused = hq::add_terminal(
        db,
        &vienna,
        &TerminalId::parse("vienna-01-t3").unwrap(),
        &key(3),
    )
    .await;
    assert!(
        matches!(&refused, Err(hq::HqError::Licence(m)) if m.contains("grace period ended")),
        "{refused:?}"
    );
    let refused = hq::add_store(db, &StoreId::parse("graz-01").unwrap(), "Graz").await;
    assert!(
        matches!(&refused, Err(hq::HqError::Licence(_))),
        "{refused:?}"
    );
    let report = hq::licence::report(db, now()).await.unwrap();
    assert_eq!(report.usage.stores, 1);
    assert_eq!(report.usage.terminals, 2);
    assert!(matches!(report.standing, Some(Standing::Lapsed { .. })));
    // A renewed licence for more.
    let renewed = Terms {
        licence: "L-2".into(),
        stores: 5,
        terminals: 5,
        ..terms
    };
    hq::licence::install(
        db,
        &renewed.sign(&vendor).unwrap().to_text(),
        &[vendor.verifying_key()],
        "test",
    )
    .await
    .unwrap();
    hq::add_store(db, &StoreId::parse("graz-01").unwrap(), "Graz")
        .await
        .unwrap();
    assert_eq!(
        hq::licence::report(db, now()).await.unwrap().standing,
        Some(Standing::Valid)
    );
}

async fn a_store_is_added_once_and_its_credential_replaced_on_purpose(db: &Db) {
    let store = StoreId::parse("vienna-01").unwrap();
    let first = hq::add_store(db, &store, "Wien").await.unwrap();
    let hash = || async {
        sqlx::query_scalar::<_, Vec<u8>>("SELECT token_hash FROM stores WHERE id = $1")
            .bind("vienna-01")
            .fetch_one(&db.pool)
            .await
            .unwrap()
    };
    assert_eq!(hash().await, hq::token_hash(&first));
    let again = hq::add_store(db, &store, "Wien again").await;
    assert!(
        matches!(&again, Err(hq::HqError::StoreExists(s)) if s == "vienna-01"),
        "{again:?}"
    );
    assert_eq!(
        hash().await,
        hq::token_hash(&first),
        "the refusal changed nothing"
    );

    let second = hq::rotate_credential(db, &store).await.unwrap();
    assert_ne!(second, first);
    assert_eq!(hash().await, hq::token_hash(&second));
    let unknown = hq::rotate_credential(db, &StoreId::parse("graz-01").unwrap()).await;
    assert!(
        matches!(unknown, Err(hq::HqError::UnknownStore(_))),
        "{unknown:?}"
    );

    let log = hq::refdata::log_id(db).await.unwrap();
    assert_eq!(log.len(), 32);
    assert_eq!(hq::refdata::log_id(db).await.unwrap(), log, "made once");
}

/// A shift's opening, and its close with what the till expected and counted.
fn shift_opened(float_minor: i64) -> EventBody {
    EventBody::ShiftOpened {
        shift: "s1".into(),
        staff: StaffId::parse("anna").unwrap(),
        float: Money::from_minor(float_minor, Currency::EUR),
    }
}

fn shift_closed(up_to_seq: u64, expected_minor: i64, counted_minor: i64) -> EventBody {
    EventBody::ShiftClosed {
        shift: "s1".into(),
        staff: StaffId::parse("anna").unwrap(),
        up_to_seq,
        expected: Money::from_minor(expected_minor, Currency::EUR),
        counted: Money::from_minor(counted_minor, Currency::EUR),
    }
}

/// One business day of two stores: graz-01's till lacks two events at HQ, vienna-01's shift
/// counted 2.00 short and its card terminal approved 5.00 no sale took. Reconciliation names
/// exactly those three; when graz-01's events arrive its day reconciles, and vienna-01's keeps
/// its two differences. Before the day (and its grace) ends, the day is open.
async fn a_day_with_a_gap_a_cash_shortfall_and_a_card_difference_has_those_findings(db: &Db) {
    hq::refdata::publish(db, &demo_seed(), PEPPER)
        .await
        .unwrap();
    let graz = Till::new("graz-01", "graz-01-t1", 50);
    let vienna = Till::new("vienna-01", "vienna-01-t1", 51);
    graz.register(db).await;
    vienna.register(db).await;
    let cash_sale = |receipt: &str| {
        sale(
            receipt,
            "GRO-BRD-0001",
            1000,
            1,
            "reduced",
            TenderKind::Cash,
            None,
        )
    };
    let total = |body: &EventBody| match body {
        EventBody::SaleCompleted(s) => s.settlement.due.minor(),
        _ => 0,
    };
    let first = cash_sale("R-1");
    let second = cash_sale("R-2");
    let cash = total(&first) + total(&second);
    let graz_chain = graz.chain(vec![
        (WALL, shift_opened(10_000)),
        (WALL + 1, first.clone()),
        (WALL + 2, second.clone()),
        (WALL + 3, cash_sale("R-3")),
        (
            WALL + 4,
            shift_closed(
                4,
                10_000 + cash + total(&cash_sale("R-3")),
                10_000 + cash + total(&cash_sale("R-3")),
            ),
        ),
    ]);
    // Everything but sequences 2 and 3 reaches HQ.
    graz.push(db, &graz_chain[..1]).await.unwrap();
    graz.push(db, &graz_chain[3..]).await.unwrap();

    let card_sale = sale(
        "R-10",
        "GRO-BRD-0002",
        2500,
        1,
        "reduced",
        TenderKind::Card,
        None,
    );
    let card_total = total(&card_sale);
    let [asked, approved] = card_payment("c1", card_total, false);
    let [stray_asked, stray_approved] = card_payment("c2", 500, false);
    let till_cash = total(&cash_sale("R-11"));
    let vienna_chain = vienna.chain(vec![
        (WALL, shift_opened(10_000)),
        (WALL + 1, asked),
        (WALL + 2, approved),
        (WALL + 3, card_sale),
        (WALL + 4, cash_sale("R-11")),
        (WALL + 5, stray_asked),
        (WALL + 6, stray_approved),
        (
            WALL + 7,
            shift_closed(7, 10_000 + till_cash, 10_000 + till_cash - 200),
        ),
    ]);
    vienna.push(db, &vienna_chain).await.unwrap();

    let day = jiff::civil::Date::constant(2026, 11, 24);
    let late = NOW_MS;
    let graz_day = hq::reconcile::reconcile(db, "graz-01", day, 0, late)
        .await
        .unwrap();
    assert_eq!(graz_day.status, "incomplete");
    assert_eq!(
        graz_day.missing,
        [hq::reconcile::Missing {
            terminal: "graz-01-t1".into(),
            from_seq: 2,
            to_seq: 3
        }]
    );
    assert!(graz_day.findings.is_empty(), "{:?}", graz_day.findings);
    let vienna_day = hq::reconcile::reconcile(db, "vienna-01", day, 0, late)
        .await
        .unwrap();
    assert_eq!(vienna_day.status, "with_differences");
    let found: Vec<(&str, &str, &str)> = vienna_day
        .findings
        .iter()
        .map(|f| (f.kind, f.expected.as_str(), f.difference.as_str()))
        .collect();
    let card = Money::from_minor(card_total, Currency::EUR).amount_string();
    assert_eq!(
        found,
        [
            (
                "cash_over_short",
                Money::from_minor(10_000 + till_cash, Currency::EUR)
                    .amount_string()
                    .as_str(),
                "-2.00"
            ),
            ("card_difference", card.as_str(), "5.00"),
        ]
    );
    assert!(vienna_day.missing.is_empty());

    // A tolerance of 2.00 lets the shortfall through; the day before the grace ends is open.
    let tolerant = hq::reconcile::reconcile(db, "vienna-01", day, 200, late)
        .await
        .unwrap();
    assert_eq!(tolerant.findings.len(), 1);
    let during = hq::reconcile::reconcile(db, "vienna-01", day, 0, WALL + 60_000)
        .await
        .unwrap();
    assert_eq!(during.status, "open");

    // The sweep keeps the differences of each day ingest marked due once its grace has ended:
    // vienna-01's card difference is in the exceptions inbox (its 2.00 short is within the
    // inbox's tolerance for a day's cash), graz-01's incomplete day has none.
    let kept = || async {
        hq::exceptions::exceptions(db, None)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| ["z_mismatch", "card_difference"].contains(&e.kind))
            .map(|e| (e.kind, e.key, e.store))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        hq::reconcile::sweep(db, WALL + 60_000, 100).await.unwrap(),
        0
    );
    assert!(kept().await.is_empty());
    assert_eq!(hq::reconcile::sweep(db, late, 100).await.unwrap(), 2);
    assert_eq!(
        kept().await,
        [(
            "card_difference",
            "vienna-01-t1|s1".to_owned(),
            "vienna-01".to_owned()
        )]
    );
    assert_eq!(
        hq::reconcile::sweep(db, late, 100).await.unwrap(),
        0,
        "nothing left due"
    );

    // The missing events arrive: graz-01's day reconciles.
    graz.push(db, &graz_chain[1..3]).await.unwrap();
    let graz_day = hq::reconcile::reconcile(db, "graz-01", day, 0, late)
        .await
        .unwrap();
    assert_eq!(graz_day.status, "reconciled", "{graz_day:?}");
    assert!(graz_day.findings.is_empty() && graz_day.missing.is_empty());
    assert_eq!(graz_day.shifts.len(), 1);
    assert!(graz_day.shifts[0].complete);

    // A shift still open leaves the day incomplete until it closes (here: the next day, whose
    // reconciliation it then belongs to).
    let graz_tail = link_from(
        graz_chain.last().unwrap().hash,
        vec![
            graz.event(6, WALL + 100, shift_opened(10_000)),
            graz.event(7, WALL + 101, cash_sale("R-4")),
        ],
    );
    graz.push(db, &graz_tail).await.unwrap();
    let graz_day = hq::reconcile::reconcile(db, "graz-01", day, 0, late)
        .await
        .unwrap();
    assert_eq!(graz_day.status, "incomplete");
    assert_eq!(graz_day.open_shifts, ["graz-01-t1"]);
    let expected = 10_000 + total(&cash_sale("R-4"));
    let closing = link_from(
        graz_tail.last().unwrap().hash,
        vec![graz.event(8, WALL + 86_400_000, shift_closed(7, expected, expected))],
    );
    graz.push(db, &closing).await.unwrap();
    let graz_day = hq::reconcile::reconcile(db, "graz-01", day, 0, late)
        .await
        .unwrap();
    assert_eq!(graz_day.status, "reconciled", "{graz_day:?}");
    let next_day = hq::reconcile::reconcile(db, "graz-01", day.tomorrow().unwrap(), 0, late)
        .await
        .unwrap();
    assert_eq!(next_day.status, "reconciled", "{next_day:?}");
    // Late events marked graz-01's days due again; vienna-01's difference stays.
    assert_eq!(hq::reconcile::sweep(db, late, 100).await.unwrap(), 2);
    assert_eq!(kept().await.len(), 1);
    assert_eq!(next_day.shifts.len(), 1);
    assert_eq!(
        (next_day.shifts[0].from_seq, next_day.shifts[0].to_seq),
        (6, 7)
    );

    // Over the API, as the back office reads it, and recorded as a privileged read.
    let api = read_api(db, "/v1/reconciliation?store=vienna-01&day=2026-11-24").await;
    assert_eq!(api["status"], "with_differences");
    assert_eq!(api["findings"].as_array().unwrap().len(), 2);
    let read: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'reconciliation.read'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(read, 1);
}
