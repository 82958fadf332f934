//! HQ's storage connection: one code path over sqlx's `Any` driver for both backends, with
//! per-backend migrations and the few dialect differences named in [`Backend`].

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

const SQLITE_ROWS: usize = 200;
const POSTGRES_ROWS: usize = 500;

/// Which database HQ runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, the embedded default.
    Sqlite,
    /// PostgreSQL, the production store; several HQ processes may share it.
    Postgres,
}

impl Backend {
    /// Rows per multi-row statement. Measured with `kassa bench sync`: fewer round trips help
    /// both backends once SQLite binds by position ([`Marks`]); with numbered markers SQLite
    /// had slowed down with every row added (1,000 rows ran at a fifth of the speed of 50).
    /// Both stay far under their parameter limits (32,766 on SQLite, 65,535 on PostgreSQL).
    pub fn rows_per_statement(self) -> usize {
        match self {
            Backend::Sqlite => SQLITE_ROWS,
            Backend::Postgres => POSTGRES_ROWS,
        }
    }

    /// A cursor over bind markers for dynamic SQL, handed out in the order values are bound.
    pub(crate) fn marks(self) -> Marks {
        Marks {
            backend: self,
            bound: 0,
        }
    }

    /// `FOR UPDATE` where the backend has row locks (PostgreSQL); SQLite serialises writers.
    pub fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }
}

/// Errors from opening HQ's database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database failed.
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names a database HQ does not support.
    #[error("database url `{0}` is neither sqlite: nor postgres:")]
    Unsupported(String),
    /// The data directory could not be created.
    #[error("data directory {0}: {1}")]
    Dir(String, std::io::Error),
    /// A command that reads HQ was pointed at a directory holding no HQ database.
    #[error(
        "--data {0}: no HQ database there (hq.sqlite); is the directory mistyped? Only `kassa hq` set-up commands (`publish`, `store add`, `run`) create one"
    )]
    Missing(String),
}

/// An open HQ database.
#[derive(Debug, Clone)]
pub struct Db {
    /// The pool.
    pub pool: AnyPool,
    /// The backend.
    pub backend: Backend,
    writes: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Db {
    /// Serialises write transactions on SQLite, which has one writer and would otherwise answer
    /// "database is locked" when two deferred transactions both try to write; PostgreSQL's row
    /// locks need no such guard.
    pub async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writes.lock().await),
            Backend::Postgres => None,
        }
    }

    /// A write transaction with the write guard held. On SQLite it begins `IMMEDIATE`: the
    /// database's write lock is taken at once (waiting out another process's writer), so a
    /// transaction that reads before it writes can never fail as "database is locked" when a
    /// `kassa hq …` command writes beside a serving HQ. On PostgreSQL a plain transaction.
    pub async fn begin_write(
        &self,
    ) -> Result<
        (
            Option<tokio::sync::MutexGuard<'_, ()>>,
            sqlx::Transaction<'static, sqlx::Any>,
        ),
        sqlx::Error,
    > {
        let guard = self.write_guard().await;
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok((guard, tx))
    }
}

/// The SQLite URL for a data directory.
pub fn sqlite_url(data_dir: &Path) -> Result<String, DbError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| DbError::Dir(data_dir.display().to_string(), e))?;
    Ok(format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("hq.sqlite").display()
    ))
}

/// The SQLite URL for the data directory of an HQ that exists: a missing directory, or one
/// without HQ's database, is refused instead of being created empty (a mistyped path would
/// otherwise read as an HQ that holds nothing).
pub fn existing_sqlite_url(data_dir: &Path) -> Result<String, DbError> {
    let file = data_dir.join("hq.sqlite");
    if !file.is_file() {
        return Err(DbError::Missing(data_dir.display().to_string()));
    }
    Ok(format!("sqlite://{}?mode=rw", file.display()))
}

/// Opens and migrates the database at `url` (`sqlite://…` or `postgres://…`).
pub async fn open(url: &str) -> Result<Db, DbError> {
    install_default_drivers();
    let backend = if url.starts_with("sqlite:") {
        Backend::Sqlite
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Backend::Postgres
    } else {
        return Err(DbError::Unsupported(url.to_owned()));
    };
    let options = AnyPoolOptions::new()
        .max_connections(match backend {
            // SQLite has one writer; a small pool avoids lock contention among writers.
            Backend::Sqlite => 4,
            Backend::Postgres => 16,
        })
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 10000;",
                    )
                    .await?;
                }
                Ok(())
            })
        });
    let pool = options.connect(url).await?;
    let migrator = match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    };
    before_migrating(&pool, backend, url, migrator).await?;
    migrator.run(&pool).await?;
    let db = Db {
        pool,
        backend,
        writes: std::sync::Arc::default(),
    };
    crate::breakdown::backfill(&db).await?;
    crate::returns::backfill(&db).await?;
    Ok(db)
}

/// Before this build migrates an HQ database written by an older release: on SQLite a copy of
/// it as it was, `pre-migration/hq-schema-V-….sqlite` beside the database (the newest three
/// kept), so that a failed upgrade can go back; on PostgreSQL, which HQ cannot copy itself, a
/// warning to take a `pg_dump` first next time.
async fn before_migrating(
    pool: &sqlx::AnyPool,
    backend: Backend,
    url: &str,
    migrator: &Migrator,
) -> Result<(), DbError> {
    let latest = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: std::collections::BTreeSet<i64> =
        match sqlx::query_scalar::<_, i64>("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
        {
            Ok(applied) => applied.into_iter().collect(),
            // A new database: nothing to keep.
            Err(_) => return Ok(()),
        };
    // Any migration of this build the database lacks changes it: keep it as it was first.
    let Some(&found) = applied.last() else {
        return Ok(());
    };
    if migrator.iter().all(|m| applied.contains(&m.version)) {
        return Ok(());
    }
    let file = url
        .strip_prefix("sqlite://")
        .map(|rest| Path::new(rest.split('?').next().unwrap_or(rest)));
    match (backend, file.and_then(Path::parent)) {
        (Backend::Sqlite, Some(dir)) => {
            let dir = dir.join("pre-migration");
            std::fs::create_dir_all(&dir)
                .map_err(|e| DbError::Dir(dir.display().to_string(), e))?;
            let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ");
            let copy = dir.join(format!("hq-schema-{found}-{stamp}.sqlite"));
            sqlx::query("VACUUM INTO $1")
                .bind(copy.display().to_string())
                .execute(pool)
                .await?;
            tracing::warn!(from = found, to = latest, copy = %copy.display(), "migrating HQ's database to this release's schema; a copy of it as it was is kept");
            let mut copies: Vec<_> = std::fs::read_dir(&dir)
                .map(|e| e.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            copies.sort();
            for old in &copies[..copies.len().saturating_sub(3)] {
                let _ = std::fs::remove_file(old);
            }
        }
        _ => tracing::warn!(
            from = found,
            to = latest,
            "migrating HQ's PostgreSQL database to this release's schema: take a pg_dump before each upgrade"
        ),
    }
    Ok(())
}

/// Bind markers for dynamic SQL: `$1, $2, …` on PostgreSQL, anonymous `?` on SQLite.
///
/// SQLite looks a numbered or named marker up by a linear scan of the statement's list of
/// names each time a value is bound, so a statement with hundreds of `$n` spends its time
/// there (measured: a tenth of ingest's CPU); anonymous markers bind by position and have no
/// names to scan. Both bind in textual order, which is why markers are taken in that order.
#[derive(Debug)]
pub(crate) struct Marks {
    backend: Backend,
    bound: usize,
}

impl Marks {
    /// The next marker.
    pub(crate) fn next(&mut self) -> String {
        self.bound += 1;
        match self.backend {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${}", self.bound),
        }
    }

    /// `SELECT m AS a, m AS b, …`: one row of values named `columns`.
    pub(crate) fn select(&mut self, columns: &[&str]) -> String {
        let named: Vec<String> = columns
            .iter()
            .map(|c| format!("{} AS {c}", self.next()))
            .collect();
        format!("SELECT {}", named.join(", "))
    }

    /// `(m, m, …)` of `n` markers.
    pub(crate) fn tuple(&mut self, n: usize) -> String {
        let marks: Vec<String> = (0..n).map(|_| self.next()).collect();
        format!("({})", marks.join(", "))
    }
}

/// A value bound into a multi-row statement.
pub(crate) enum Arg {
    /// Text.
    Text(String),
    /// An integer.
    Int(i64),
    /// Bytes.
    Bytes(Vec<u8>),
    /// Text or NULL.
    OptText(Option<String>),
}

/// Runs `head VALUES (…), (…) tail` for `rows` in statements of
/// [`Backend::rows_per_statement`] rows; returns the number of rows affected. One round trip per
/// statement instead of one per row is what lets ingest keep up with the raw insert rate.
pub(crate) async fn insert_many(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    head: &str,
    tail: &str,
    rows: Vec<Vec<Arg>>,
) -> Result<u64, sqlx::Error> {
    let mut affected = 0;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Arg>> = rows.by_ref().take(backend.rows_per_statement()).collect();
        let mut marks = backend.marks();
        let values: Vec<String> = chunk.iter().map(|row| marks.tuple(row.len())).collect();
        let sql = format!("{head} {} {tail}", values.join(", "));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for arg in chunk.into_iter().flatten() {
            query = match arg {
                Arg::Text(t) => query.bind(t),
                Arg::Int(i) => query.bind(i),
                Arg::Bytes(b) => query.bind(b),
                Arg::OptText(t) => query.bind(t),
            };
        }
        affected += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(affected)
}
