//! Opening the node's SQLite database: WAL, `synchronous=FULL`, forward migrations, and a
//! clear refusal to open a database written by a newer Kassa.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// The node's embedded schema migrations.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Errors from opening the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database was written by a newer version of Kassa.
    #[error(
        "database {path} has schema version {found}, newer than this kassa understands ({known}); upgrade kassa before opening it"
    )]
    TooNew {
        /// The file.
        path: String,
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// SQLite failed.
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The data directory, or the ledger in it, does not exist.
    #[error(
        "data directory {path} {what}; is it mistyped? Only `kassa store provision` creates a store's data directory"
    )]
    Missing {
        /// The directory.
        path: String,
        /// What is missing.
        what: &'static str,
    },
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// The database file inside a data directory.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("ledger.sqlite")
}

fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::from_str("sqlite://")
        .unwrap_or_default()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // Every acknowledged write must survive power loss, not only a process crash.
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
}

/// The two pools a node uses: one writer connection (the ledger has a single writer) and
/// several readers, which WAL lets run beside it.
#[derive(Debug, Clone)]
pub struct Pools {
    /// The single writer.
    pub writer: SqlitePool,
    /// Readers.
    pub reader: SqlitePool,
}

/// Opens and migrates the node database of a provisioned `data_dir`; a missing directory or
/// one without a ledger is refused, never created (a mistyped path would otherwise pass for an
/// empty store, and `verify` would report it sound).
pub async fn open_existing(data_dir: &Path) -> Result<Pools, DbError> {
    let what = if !data_dir.is_dir() {
        Some("does not exist")
    } else if !db_path(data_dir).is_file() {
        Some("holds no store ledger (ledger.sqlite)")
    } else {
        None
    };
    if let Some(what) = what {
        return Err(DbError::Missing {
            path: data_dir.display().to_string(),
            what,
        });
    }
    open(data_dir).await
}

/// Opens (creating if needed) and migrates the node database in `data_dir`: for provisioning.
pub async fn open(data_dir: &Path) -> Result<Pools, DbError> {
    std::fs::create_dir_all(data_dir).map_err(|source| DbError::Dir {
        path: data_dir.display().to_string(),
        source,
    })?;
    let path = db_path(data_dir);
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .connect_with(options(&path))
        .await?;
    let found = check_not_newer(&writer, &path).await?;
    if found.is_some_and(|v| v < latest()) {
        copy_before_migrating(&writer, data_dir, found.unwrap_or(0)).await?;
    }
    MIGRATOR.run(&writer).await?;
    let reader = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options(&path).read_only(true))
        .await?;
    Ok(Pools { writer, reader })
}

/// The newest schema version this build knows.
fn latest() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Where copies of the ledger taken before a migration are kept (inside the data directory,
/// left out of backups).
pub const PRE_MIGRATION_DIR: &str = "pre-migration";
/// How many such copies are kept.
const PRE_MIGRATION_KEEP: usize = 3;

/// A copy of the ledger as it is, before this build migrates it from schema `version`: an
/// upgrade that goes wrong can go back to the previous release with it. The oldest copies
/// beyond the newest three are removed.
async fn copy_before_migrating(
    pool: &SqlitePool,
    data_dir: &Path,
    version: i64,
) -> Result<(), DbError> {
    let dir = data_dir.join(PRE_MIGRATION_DIR);
    std::fs::create_dir_all(&dir).map_err(|source| DbError::Dir {
        path: dir.display().to_string(),
        source,
    })?;
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ");
    let copy = dir.join(format!("ledger-schema-{version}-{stamp}.sqlite"));
    sqlx::query("VACUUM INTO $1")
        .bind(copy.display().to_string())
        .execute(pool)
        .await?;
    tracing::warn!(
        from = version,
        to = latest(),
        copy = %copy.display(),
        "migrating the ledger to this release's schema; a copy of it as it was is kept"
    );
    let mut copies: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "sqlite"))
                .collect()
        })
        .unwrap_or_default();
    copies.sort();
    let surplus = copies.len().saturating_sub(PRE_MIGRATION_KEEP);
    for old in &copies[..surplus] {
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}

/// The database's schema version (`None`: a new file), refused when newer than this build's.
async fn check_not_newer(pool: &SqlitePool, path: &Path) -> Result<Option<i64>, DbError> {
    let has_table: Option<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(pool)
    .await?;
    if has_table.is_none() {
        return Ok(None);
    }
    let (found,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await?;
    let known = latest();
    match found {
        Some(found) if found > known => Err(DbError::TooNew {
            path: path.display().to_string(),
            found,
            known,
        }),
        found => Ok(found),
    }
}
