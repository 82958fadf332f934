//! Running one HQ storage scenario on each backend: SQLite in a fresh directory, PostgreSQL in
//! a fresh database on `KASSA_TEST_POSTGRES`, else the local server at 127.0.0.1:5432; without
//! either the test fails unless the run allows skipping (`test_support::skip`).
#![allow(clippy::unwrap_used, dead_code)]

use std::future::Future;

use hq::db::Db;

/// Runs a scenario on SQLite in a fresh data directory.
pub async fn on_sqlite<F, Fut>(scenario: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let db = hq::db::open(&hq::db::sqlite_url(dir.path()).unwrap())
        .await
        .unwrap();
    assert_eq!(db.backend, hq::db::Backend::Sqlite);
    let pool = db.pool.clone();
    let outcome = tokio::spawn(scenario(db)).await;
    pool.close().await;
    drop(dir);
    finish(outcome);
}

/// Runs a scenario on PostgreSQL in a fresh database, dropped afterwards (best effort).
pub async fn on_postgres<F, Fut>(scenario: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = test_support::skip::postgres_url("HQ's PostgreSQL storage suite").await else {
        return;
    };
    sqlx::any::install_default_drivers();
    let admin = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {url}: {e}"));
    let mut random = [0_u8; 8];
    getrandom::fill(&mut random).unwrap();
    let name = format!("kassa_t_{}", hex::encode(random));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    let db = hq::db::open(&database_url(&url, &name)).await.unwrap();
    assert_eq!(db.backend, hq::db::Backend::Postgres);
    let pool = db.pool.clone();
    let outcome = tokio::spawn(scenario(db)).await;
    pool.close().await;
    if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    {
        eprintln!("could not drop test database {name}: {e}");
    }
    admin.close().await;
    finish(outcome);
}

/// `url` with its database replaced by `name`.
pub fn database_url(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let mut out = match base[authority..].find('/') {
        Some(slash) => format!("{}/{name}", &base[..authority + slash]),
        None => format!("{base}/{name}"),
    };
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn finish(outcome: Result<(), tokio::task::JoinError>) {
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("scenario did not finish: {e}"),
        }
    }
}
