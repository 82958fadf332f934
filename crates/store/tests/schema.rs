//! Schema versions: a node database written by an older Kassa migrates forward on open, a copy
//! of it as it was kept first; one written by a newer Kassa is refused with a message that says
//! so.
#![allow(clippy::unwrap_used)] // Test code: a panic is a test failure.

use std::path::Path;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

async fn raw_pool(path: &Path) -> sqlx::SqlitePool {
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn an_older_database_migrates_forward() {
    let dir = tempfile::tempdir().unwrap();
    // Build a database as the first release wrote it: only the first migration applied.
    let first = dir.path().join("first-migration");
    std::fs::create_dir_all(&first).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/0001_ledger.sql"),
        first.join("0001_ledger.sql"),
    )
    .unwrap();
    let data = dir.path().join("node");
    std::fs::create_dir_all(&data).unwrap();
    let pool = raw_pool(&store::db::db_path(&data)).await;
    Migrator::new(first.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO node (singleton, store_id) VALUES (1, 'vienna-01')")
        .execute(&pool)
        .await
        .unwrap();
    let missing: Option<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE name = 'idempotency'")
            .fetch_optional(&pool)
            .await
            .unwrap();
    assert!(missing.is_none());
    pool.close().await;

    let pools = store::db::open(&data).await.unwrap();
    let version: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&pools.reader)
        .await
        .unwrap();
    let newest = store::db::MIGRATOR.iter().map(|m| m.version).max().unwrap();
    assert_eq!(version, newest);
    // The data written before the upgrade is still there, and the new tables exist.
    let store: String = sqlx::query_scalar("SELECT store_id FROM node")
        .fetch_one(&pools.reader)
        .await
        .unwrap();
    assert_eq!(store, "vienna-01");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM idempotency")
        .fetch_one(&pools.reader)
        .await
        .unwrap();
    assert_eq!(rows, 0);

    // Before migrating, the ledger as the older release left it was copied aside: a failed
    // upgrade can go back to that release with it.
    let copies: Vec<_> = std::fs::read_dir(data.join(store::db::PRE_MIGRATION_DIR))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    let name = copies[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with("ledger-schema-1-"), "{name}");
    let copy = raw_pool(&copies[0]).await;
    let (version, store): (i64, String) = sqlx::query_as(
        "SELECT (SELECT MAX(version) FROM _sqlx_migrations), (SELECT store_id FROM node)",
    )
    .fetch_one(&copy)
    .await
    .unwrap();
    assert_eq!((version, store.as_str()), (1, "vienna-01"));
    copy.close().await;
    // Opening it again at the same schema copies nothing more.
    pools.writer.close().await;
    pools.reader.close().await;
    store::db::open(&data).await.unwrap();
    assert_eq!(
        std::fs::read_dir(data.join(store::db::PRE_MIGRATION_DIR))
            .unwrap()
            .count(),
        1
    );
}

#[tokio::test]
async fn a_newer_database_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let pools = store::db::open(dir.path()).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'from the future', TRUE, X'00', 0)",
    )
    .execute(&pools.writer)
    .await
    .unwrap();
    pools.writer.close().await;
    pools.reader.close().await;
    let err = store::db::open(dir.path()).await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, store::db::DbError::TooNew { found: 9999, .. }),
        "{message}"
    );
    assert!(
        message.contains("schema version 9999, newer than this kassa understands"),
        "{message}"
    );
}
