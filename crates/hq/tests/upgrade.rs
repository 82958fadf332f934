//! An HQ database written by an older release is copied aside before this build migrates it,
//! so that a failed upgrade can go back to the previous release with its data.
#![allow(clippy::unwrap_used)] // Test code: a panic is a test failure.

#[tokio::test]
async fn an_older_sqlite_database_is_copied_before_it_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let url = hq::db::sqlite_url(dir.path()).unwrap();
    let db = hq::db::open(&url).await.unwrap();
    let applied = || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        n
    };
    let all = applied().await;
    hq::add_store(&db, &domain::StoreId::parse("vienna-01").unwrap(), "Wien")
        .await
        .unwrap();
    assert!(
        !dir.path().join("pre-migration").exists(),
        "a new database was copied"
    );
    // As a release that lacked one migration (0063, the support requests) left it.
    sqlx::query("DROP TABLE support_requests")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 63")
        .execute(&db.pool)
        .await
        .unwrap();
    db.pool.close().await;

    let db = hq::db::open(&url).await.unwrap();
    let now: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(now, all);
    let copies: Vec<_> = std::fs::read_dir(dir.path().join("pre-migration"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    let copy = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", copies[0].display()))
        .await
        .unwrap();
    let (migrations, stores): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM _sqlx_migrations), (SELECT COUNT(*) FROM stores)",
    )
    .fetch_one(&copy)
    .await
    .unwrap();
    assert_eq!((migrations, stores), (all - 1, 1));
}
