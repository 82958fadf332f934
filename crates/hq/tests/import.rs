//! Catalog import batches at HQ on both backends: a batch is published through the
//! reference-data change log so stores receive it, committing the same entities again changes
//! nothing, and a rollback undoes exactly that batch as a new version (refused when an entity
//! changed since).
#![allow(clippy::unwrap_used)]

mod backends;

use hq::db::Db;
use hq::import::{
    EntityWrite, ImportError, batches, commit, commit_chunks, entities, plan, rollback,
};
use serde_json::json;

use backends::{on_postgres, on_sqlite};

fn variant(sku: &str, name: &str, gtin: &str) -> EntityWrite {
    EntityWrite {
        kind: "variant".into(),
        key: sku.into(),
        payload: Some(
            json!({
                "product_id": format!("p-{sku}"),
                "product_name": name,
                "variant": {
                    "sku": sku, "name": name, "identifiers": [{"gtin": gtin}],
                    "tax": "standard", "unit": "each", "channels": "all"
                }
            })
            .to_string(),
        ),
        provenance: Some(format!(
            "[{{\"field\":\"title\",\"line\":2,\"sku\":\"{sku}\"}}]"
        )),
    }
}

fn price(sku: &str, amount: &str) -> EntityWrite {
    EntityWrite {
        kind: "prices".into(),
        key: format!("catalog|{sku}"),
        payload: Some(json!({
            "book": "catalog", "version": 1, "scope": "chain", "currency": "EUR", "sku": sku,
            "entries": [{"sku": sku, "price": amount, "from": "2026-12-01T00:00:00Z", "to": null}]
        }).to_string()),
        provenance: None,
    }
}

fn parsed(w: &EntityWrite) -> serde_json::Value {
    serde_json::from_str(w.payload.as_deref().unwrap()).unwrap()
}

async fn import_commit_reimport_and_rollback(db: &Db) {
    // Reference data published before the import: one variant the import will update.
    // and the store whose currency decides which chain prices it pulls.
    let before = variant("A-1", "Old name", "4006381333931");
    let store = EntityWrite {
        kind: "store".into(),
        key: "vienna-01".into(),
        payload: Some(json!({"id": "vienna-01", "currency": "EUR"}).to_string()),
        provenance: None,
    };
    let seeded = commit(db, "seed", 1, &[before.clone(), store], &[])
        .await
        .unwrap();
    assert_eq!(seeded.version, 1);

    let writes = vec![
        variant("A-1", "Espresso Machine", "4006381333931"),
        price("A-1", "4250.00"),
        variant("B-2", "Coffee Beans", "036000291452"),
    ];
    let dry = plan(db, &writes, &[]).await.unwrap();
    assert_eq!(dry.created.len(), 2);
    assert_eq!(dry.updated, [("variant".to_owned(), "A-1".to_owned())]);
    // A dry run writes nothing.
    assert_eq!(
        entities(db, "variant").await.unwrap()["A-1"],
        parsed(&before)
    );

    let batch = commit(db, "square+lightspeed", 2, &writes, &[])
        .await
        .unwrap();
    assert_eq!(batch.batch.as_deref(), Some("import-2"));
    assert_eq!(batch.version, 2);
    // Stores pulling since version 1 receive exactly the batch.
    let update = hq::refdata::changes_since(db, "vienna-01", 1)
        .await
        .unwrap();
    assert_eq!(update.to_version, 2);
    let mut keys: Vec<(String, String)> = update
        .entities
        .iter()
        .map(|e| (e.kind.clone(), e.key.clone()))
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            ("prices".to_owned(), "catalog|A-1".to_owned()),
            ("variant".to_owned(), "A-1".to_owned()),
            ("variant".to_owned(), "B-2".to_owned())
        ]
    );
    let provenance: Option<String> = sqlx::query_scalar(
        "SELECT provenance FROM import_batch_entities WHERE batch = 'import-2' AND key = 'B-2'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(provenance.unwrap().contains("\"line\":2"));

    // The same import again changes nothing: no batch, no version.
    let again = commit(db, "square+lightspeed", 3, &writes, &[])
        .await
        .unwrap();
    assert_eq!(again.batch, None);
    assert_eq!(again.version, 2);
    assert_eq!(again.plan.unchanged, 3);
    assert_eq!(
        hq::refdata::changes_since(db, "vienna-01", 2)
            .await
            .unwrap()
            .entities
            .len(),
        0
    );

    // Rollback: A-1 goes back to the seeded payload, B-2 and the price are removed, as a new
    // version that stores pull like any other.
    let undone = rollback(db, "import-2").await.unwrap();
    assert_eq!((undone.version, undone.restored, undone.removed), (3, 1, 2));
    let now = entities(db, "variant").await.unwrap();
    assert_eq!(now["A-1"], parsed(&before));
    assert!(!now.contains_key("B-2"));
    assert!(entities(db, "prices").await.unwrap().is_empty());
    let update = hq::refdata::changes_since(db, "vienna-01", 2)
        .await
        .unwrap();
    assert_eq!(update.entities.len(), 3);
    assert_eq!(
        update
            .entities
            .iter()
            .filter(|e| e.payload.is_none())
            .count(),
        2
    );
    assert!(matches!(
        rollback(db, "import-2").await.unwrap_err(),
        ImportError::AlreadyRolledBack { version: 3, .. }
    ));
    assert!(matches!(
        rollback(db, "import-99").await.unwrap_err(),
        ImportError::UnknownBatch(_)
    ));
    let listed = hq::import::batches(db).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, "import-2");
    assert_eq!(listed[0].rolled_back_version, Some(3));
    assert_eq!(listed[0].entities, 3);
}

async fn a_rollback_is_refused_when_a_later_batch_changed_its_entities(db: &Db) {
    let first = commit(
        db,
        "first",
        1,
        &[variant("A-1", "One", "4006381333931")],
        &[],
    )
    .await
    .unwrap();
    let second = commit(
        db,
        "second",
        2,
        &[variant("A-1", "Two", "4006381333931")],
        &[],
    )
    .await
    .unwrap();
    let err = rollback(db, first.batch.as_deref().unwrap())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("1 of its entities changed since (first: variant/A-1)"),
        "{err}"
    );
    // Nothing was written by the refused rollback.
    assert_eq!(
        entities(db, "variant").await.unwrap()["A-1"]["product_name"],
        "Two"
    );
    // Undoing the later batch first, then the earlier one, works.
    rollback(db, second.batch.as_deref().unwrap())
        .await
        .unwrap();
    rollback(db, first.batch.as_deref().unwrap()).await.unwrap();
    assert!(entities(db, "variant").await.unwrap().is_empty());
}

/// The stock rows of HQ, as (location, sku, on-hand).
async fn stock_rows(db: &Db) -> Vec<(String, String, i64)> {
    sqlx::query_as("SELECT location, sku, on_hand FROM stock_levels ORDER BY location, sku")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

async fn a_rollback_leaves_no_stock_row_behind(db: &Db) {
    let count = |sku: &str, milli: i64| hq::import::CountWrite {
        location: "vienna-01".into(),
        sku: sku.into(),
        counted_milli: milli,
        provenance: None,
    };
    let first = commit(
        db,
        "first",
        1,
        &[
            variant("A-1", "One", "4006381333931"),
            variant("B-2", "Two", "036000291452"),
        ],
        &[count("A-1", 4_000), count("B-2", 6_000)],
    )
    .await
    .unwrap();
    assert_eq!(
        hq::import::levels(db, &["B-2".to_owned()]).await.unwrap(),
        [("vienna-01".to_owned(), "B-2".to_owned(), 6_000)]
    );
    // A later batch moves B-2's stock to A-1 (as a merge does): B-2 counted at zero.
    let second = commit(
        db,
        "merge",
        2,
        &[],
        &[count("A-1", 10_000), count("B-2", 0)],
    )
    .await
    .unwrap();
    rollback(db, second.batch.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(
        stock_rows(db).await,
        [
            ("vienna-01".to_owned(), "A-1".to_owned(), 4_000),
            ("vienna-01".to_owned(), "B-2".to_owned(), 6_000)
        ]
    );
    rollback(db, first.batch.as_deref().unwrap()).await.unwrap();
    assert_eq!(stock_rows(db).await, []);
}

/// Chunks given beforehand, each asking for the entities it writes; records what HQ held of
/// each when it was made.
struct Scripted {
    chunks: std::collections::VecDeque<Result<Vec<EntityWrite>, ImportError>>,
    next: Option<Result<Vec<EntityWrite>, ImportError>>,
    held: Vec<hq::import::Held>,
}

impl hq::import::ChunkSource for Scripted {
    fn next_keys(&mut self) -> Option<Vec<(String, String)>> {
        let next = self.chunks.pop_front()?;
        let keys = match &next {
            Ok(writes) => writes
                .iter()
                .map(|w| (w.kind.clone(), w.key.clone()))
                .collect(),
            Err(_) => Vec::new(),
        };
        self.next = Some(next);
        Some(keys)
    }

    fn writes(&mut self, held: &hq::import::Held) -> Result<Vec<EntityWrite>, ImportError> {
        self.held.push(held.clone());
        self.next.take().unwrap_or(Ok(Vec::new()))
    }
}

/// A commit made a chunk at a time that fails part-way (a chunk that cannot be made: the
/// catalog would not build) keeps nothing: no entity of the chunks before, no batch, no version.
async fn a_commit_that_fails_part_way_keeps_nothing(db: &Db) {
    let seeded = commit(
        db,
        "seed",
        1,
        &[variant("A-1", "Old", "4006381333931")],
        &[],
    )
    .await
    .unwrap();
    let mut chunks = Scripted {
        chunks: vec![
            Ok(vec![
                variant("A-1", "Espresso Machine", "4006381333931"),
                variant("B-2", "Coffee Beans", "036000291452"),
            ]),
            Err(ImportError::Entities(
                "the catalog after this import would not build".into(),
            )),
            Ok(vec![variant("C-3", "Tea", "5000112637922")]),
        ]
        .into(),
        next: None,
        held: Vec::new(),
    };
    let e = commit_chunks(db, "broken", 2, &mut chunks, &[])
        .await
        .unwrap_err();
    // The first chunk was made from what HQ held of it: A-1 as seeded, no B-2.
    let first = &chunks.held[0];
    let a1 = first[&("variant".to_owned(), "A-1".to_owned())].as_deref();
    assert!(a1.is_some_and(|p| p.contains("Old")), "{first:?}");
    assert!(!first.contains_key(&("variant".to_owned(), "B-2".to_owned())));
    assert_eq!(
        chunks.held.len(),
        2,
        "no chunk is made after the one that failed"
    );
    assert!(e.to_string().contains("would not build"), "{e}");
    let now = entities(db, "variant").await.unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!(now["A-1"]["product_name"], "Old");
    let listed = batches(db).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].version, seeded.version);
    // And the next commit takes the next version as if nothing had been tried.
    let next = commit(
        db,
        "next",
        3,
        &[variant("B-2", "Coffee Beans", "036000291452")],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(next.version, seeded.version + 1);
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_that_fails_part_way_keeps_nothing() {
        crate::on_sqlite(|db| async move {
            crate::a_commit_that_fails_part_way_keeps_nothing(&db).await
        })
        .await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rollback_leaves_no_stock_row_behind() {
        crate::on_sqlite(
            |db| async move { crate::a_rollback_leaves_no_stock_row_behind(&db).await },
        )
        .await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn import_commit_reimport_and_rollback() {
        crate::on_sqlite(|db| async move { crate::import_commit_reimport_and_rollback(&db).await })
            .await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rollback_is_refused_when_a_later_batch_changed_its_entities() {
        crate::on_sqlite(|db| async move {
            crate::a_rollback_is_refused_when_a_later_batch_changed_its_entities(&db).await
        })
        .await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_that_fails_part_way_keeps_nothing() {
        crate::on_postgres(|db| async move {
            crate::a_commit_that_fails_part_way_keeps_nothing(&db).await
        })
        .await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rollback_leaves_no_stock_row_behind() {
        crate::on_postgres(
            |db| async move { crate::a_rollback_leaves_no_stock_row_behind(&db).await },
        )
        .await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn import_commit_reimport_and_rollback() {
        crate::on_postgres(
            |db| async move { crate::import_commit_reimport_and_rollback(&db).await },
        )
        .await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rollback_is_refused_when_a_later_batch_changed_its_entities() {
        crate::on_postgres(|db| async move {
            crate::a_rollback_is_refused_when_a_later_batch_changed_its_entities(&db).await
        })
        .await;
    }
}
