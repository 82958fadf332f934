//! Hot backup of a store node, and its restore onto a new PC.
//!
//! A backup is one file, `kassa-store-backup/1`: a zstd-compressed tar holding `manifest.json`
//! (the store, each terminal's last sequence and hash, and the SHA-256 of every other entry),
//! a consistent copy of the ledger made by SQLite's `VACUUM INTO` while the node sells (a read
//! transaction: the writer never waits for it), and the data directory's other files — the
//! terminals' signing keys, the PIN pepper, the HQ link, fiscal keys kept there. It is written
//! beside the target and renamed, so a backup killed half-way leaves no file that looks whole.
//!
//! A restore unpacks into a directory beside the target, checks every entry against the
//! manifest, SQLite's integrity and every terminal's chain and signatures, asks HQ (when the
//! backup holds the node's link to it) how far it holds each terminal — a backup older than
//! that would continue a chain HQ already has further, a fork, and is refused — and only then
//! renames the directory into place. A restore killed half-way leaves no data directory.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;

/// The format a backup file says it is.
pub const FORMAT: &str = "kassa-store-backup/1";
const MANIFEST: &str = "manifest.json";
const LEDGER: &str = "ledger.sqlite";

/// What a backup holds, as its manifest says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The store.
    pub store: String,
    /// When the copy was taken (milliseconds since the epoch).
    pub created_ms: i64,
    /// Each terminal's last sequence in the copy.
    pub terminals: BTreeMap<String, u64>,
    /// Entry name → SHA-256 (hex) of its bytes, the ledger's included.
    pub files: BTreeMap<String, String>,
}

/// Why a backup or a restore did not happen; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The node's data directory cannot be read.
    #[error("{0}")]
    Node(String),
    /// Writing or reading a file failed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The backup file is not one, or is damaged.
    #[error(
        "{path} is not a whole Kassa store backup ({reason}): take another copy of it, or another backup"
    )]
    Damaged {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The target directory holds something.
    #[error(
        "{0} is not empty: restore onto a new, empty data directory (move the old one aside first)"
    )]
    NotEmpty(String),
    /// HQ holds a terminal further than the backup.
    #[error(
        "HQ already holds till {terminal} up to sequence {at_hq}, and this backup ends at {in_backup}: restored, the till would write sequences HQ has from another history (a fork). Restore a newer backup (one taken after HQ's: HQ may keep one, see the fleet page); without one, set the PC up afresh with new till ids (`kassa hq store enrol --id STORE`, then `kassa store enrol CODE --terminal NEW-ID`): what the old tills sold is safe at HQ. Nothing was restored"
    )]
    OlderThanHq {
        /// The terminal.
        terminal: String,
        /// What HQ holds.
        at_hq: u64,
        /// What the backup holds.
        in_backup: u64,
    },
    /// HQ could not be asked.
    #[error(
        "cannot ask HQ how far it holds this store's tills ({0}): restore where HQ can be reached, or pass --without-hq if HQ cannot hold more than this backup (a store that never synced since)"
    )]
    HqUnreachable(String),
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> BackupError {
    BackupError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether a path in the data directory is part of the live database (copied through SQLite,
/// never as a file), a copy of it kept before a migration, a backup's or a restore's scratch,
/// or a backup file written there.
fn skipped(name: &str) -> bool {
    name.starts_with("ledger.sqlite")
        || name.starts_with(crate::db::PRE_MIGRATION_DIR)
        || name.starts_with(".kassa-backup-")
        || name.starts_with(".kassa-restore-")
        || name.ends_with(".partial")
        || name.ends_with(".new")
        || name.ends_with(".kassa-backup")
}

/// The data directory's files other than the database, relative to it, in a stable order.
fn other_files(data_dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), BackupError> {
        let entries = std::fs::read_dir(dir).map_err(|e| file_error(dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| file_error(dir, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| file_error(&path, e))?;
            if kind.is_dir() {
                walk(root, &path, out)?;
            } else if kind.is_file() {
                let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                if !skipped(&relative.to_string_lossy()) {
                    out.push(relative);
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(data_dir, data_dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// Takes a backup of the node in `data_dir` (which may be selling) into the file `out`.
pub async fn backup(data_dir: &Path, out: &Path) -> Result<Manifest, BackupError> {
    let live = crate::db::db_path(data_dir);
    if !live.is_file() {
        return Err(BackupError::Node(format!(
            "{} holds no store ledger: is it the node's data directory?",
            data_dir.display()
        )));
    }
    let scratch = tempfile::Builder::new()
        .prefix(".kassa-backup-")
        .tempdir_in(
            out.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
        )
        .map_err(|e| file_error(out, e))?;
    let copy = scratch.path().join(LEDGER);
    {
        // Not opened read-only: a read-only connection cannot open a WAL database whose
        // shared-memory file is gone (a node that is not running), and SQLite counts `VACUUM
        // INTO` as a write on a `query_only` one. It reads the source and writes only the copy.
        let source = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&live)
            .busy_timeout(Duration::from_secs(30));
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(source)
            .await
            .map_err(|e| file_error(&live, e))?;
        sqlx::query("VACUUM INTO $1")
            .bind(copy.display().to_string())
            .execute(&pool)
            .await
            .map_err(|e| file_error(&live, e))?;
        pool.close().await;
    }
    let (store, terminals) = read_copy(&copy).await?;
    let mut files = BTreeMap::new();
    let ledger = std::fs::read(&copy).map_err(|e| file_error(&copy, e))?;
    files.insert(LEDGER.to_owned(), sha256_hex(&ledger));
    let others = other_files(data_dir)?;
    let mut contents = Vec::new();
    for relative in &others {
        let path = data_dir.join(relative);
        let bytes = std::fs::read(&path).map_err(|e| file_error(&path, e))?;
        let name = relative.to_string_lossy().into_owned();
        files.insert(name.clone(), sha256_hex(&bytes));
        contents.push((name, bytes));
    }
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        store,
        created_ms: jiff::Timestamp::now().as_millisecond(),
        terminals,
        files,
    };
    let partial = out.with_extension("partial");
    let written = (|| -> std::io::Result<()> {
        let file = std::fs::File::create(&partial)?;
        let encoder = zstd::Encoder::new(file, 3)?;
        let mut tar = tar::Builder::new(encoder);
        let mut add = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o600);
            header.set_cksum();
            tar.append_data(&mut header, name, bytes)
        };
        add(
            MANIFEST,
            &serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?,
        )?;
        add(LEDGER, &ledger)?;
        for (name, bytes) in &contents {
            add(name, bytes)?;
        }
        let file = tar.into_inner()?.finish()?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(file_error(out, e));
    }
    std::fs::rename(&partial, out).map_err(|e| file_error(out, e))?;
    Ok(manifest)
}

/// The store and each terminal's last sequence in a copy of the ledger.
async fn read_copy(copy: &Path) -> Result<(String, BTreeMap<String, u64>), BackupError> {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(copy)
                .read_only(true),
        )
        .await
        .map_err(|e| file_error(copy, e))?;
    let store: String = sqlx::query_scalar("SELECT store_id FROM node")
        .fetch_one(&pool)
        .await
        .map_err(|e| BackupError::Node(format!("the ledger names no store: {e}")))?;
    let rows = sqlx::query(
        "SELECT t.id, COALESCE(MAX(e.seq), 0) AS last FROM terminals t LEFT JOIN events e ON e.terminal = t.id GROUP BY t.id",
    )
    .fetch_all(&pool)
    .await
    .map_err(|e| file_error(copy, e))?;
    let terminals = rows
        .iter()
        .map(|r| {
            (
                r.get::<String, _>("id"),
                u64::try_from(r.get::<i64, _>("last")).unwrap_or(0),
            )
        })
        .collect();
    pool.close().await;
    Ok((store, terminals))
}

/// How far HQ holds each terminal of the store (`None`: the node was not enrolled).
pub type HqWatermarks = Option<BTreeMap<String, u64>>;

/// A backup's entries but the manifest: name and bytes.
type Entries = Vec<(String, Vec<u8>)>;

/// Reads a backup file whole: its manifest and entries, every entry checked against it.
fn unpack(file: &Path) -> Result<(Manifest, Entries), BackupError> {
    let damaged = |reason: String| BackupError::Damaged {
        path: file.display().to_string(),
        reason,
    };
    let opened = std::fs::File::open(file).map_err(|e| file_error(file, e))?;
    let decoder = zstd::Decoder::new(opened).map_err(|e| damaged(e.to_string()))?;
    let mut archive = tar::Archive::new(decoder);
    let mut manifest: Option<Manifest> = None;
    let mut entries = Vec::new();
    for entry in archive.entries().map_err(|e| damaged(e.to_string()))? {
        let mut entry = entry.map_err(|e| damaged(e.to_string()))?;
        let name = entry
            .path()
            .map_err(|e| damaged(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        if name.starts_with('/') || name.split('/').any(|part| part == "..") {
            return Err(damaged(format!(
                "entry `{name}` points outside the directory"
            )));
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| damaged(e.to_string()))?;
        if name == MANIFEST {
            manifest = Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| damaged(format!("its manifest: {e}")))?,
            );
        } else {
            entries.push((name, bytes));
        }
    }
    let manifest = manifest.ok_or_else(|| damaged("it holds no manifest".into()))?;
    if manifest.format != FORMAT {
        return Err(damaged(format!(
            "its format is `{}`, not {FORMAT}",
            manifest.format
        )));
    }
    for (name, bytes) in &entries {
        match manifest.files.get(name) {
            Some(sum) if *sum == sha256_hex(bytes) => {}
            Some(_) => return Err(damaged(format!("`{name}` does not match its checksum"))),
            None => return Err(damaged(format!("`{name}` is not in its manifest"))),
        }
    }
    if let Some(missing) = manifest
        .files
        .keys()
        .find(|name| !entries.iter().any(|(n, _)| n == *name))
    {
        return Err(damaged(format!("`{missing}` is missing (cut short?)")));
    }
    Ok((manifest, entries))
}

/// Restores the backup `file` into `data_dir`, which must not exist or be empty. With `ask_hq`,
/// HQ is asked how far it holds each of the store's terminals first ([`hq_watermarks`]). A
/// backup HQ kept is encrypted (`crate::offsite`): it is decrypted with the chain's recovery
/// key `identity` into scratch beside `data_dir` first.
pub async fn restore(
    file: &Path,
    data_dir: &Path,
    ask_hq: bool,
    identity: Option<&Path>,
) -> Result<Manifest, BackupError> {
    if !crate::offsite::is_encrypted(file) {
        return restore_plain(file, data_dir, ask_hq).await;
    }
    refuse_unless_empty(data_dir)?;
    let Some(identity) = identity else {
        return Err(BackupError::Node(format!(
            "{} is encrypted to the chain's recovery key (a backup HQ kept): pass --identity with the recovery key's file",
            file.display()
        )));
    };
    let identity = crate::offsite::read_identity(identity)?;
    let parent = scratch_parent(data_dir);
    std::fs::create_dir_all(parent).map_err(|e| file_error(parent, e))?;
    let scratch = tempfile::Builder::new()
        .prefix(".kassa-restore-")
        .tempdir_in(parent)
        .map_err(|e| file_error(parent, e))?;
    let plain = scratch.path().join("backup.kassa-backup");
    let (from, to) = (file.to_path_buf(), plain.clone());
    tokio::task::spawn_blocking(move || crate::offsite::decrypt(&from, &identity, &to))
        .await
        .map_err(|e| BackupError::Node(format!("decrypting: {e}")))??;
    restore_plain(&plain, data_dir, ask_hq)
        .await
        .map_err(|e| match e {
            // The decrypted copy is scratch: name the file the operator gave.
            BackupError::Damaged { reason, .. } => BackupError::Damaged {
                path: file.display().to_string(),
                reason,
            },
            other => other,
        })
}

/// The directory beside `data_dir`, where a restore's scratch goes.
fn scratch_parent(data_dir: &Path) -> &Path {
    data_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Refuses a data directory that holds something: a restore goes onto a new or empty one.
fn refuse_unless_empty(data_dir: &Path) -> Result<(), BackupError> {
    if data_dir.exists()
        && std::fs::read_dir(data_dir)
            .map_err(|e| file_error(data_dir, e))?
            .next()
            .is_some()
    {
        return Err(BackupError::NotEmpty(data_dir.display().to_string()));
    }
    Ok(())
}

async fn restore_plain(
    file: &Path,
    data_dir: &Path,
    ask_hq: bool,
) -> Result<Manifest, BackupError> {
    refuse_unless_empty(data_dir)?;
    let (manifest, entries) = unpack(file)?;
    let parent = scratch_parent(data_dir);
    std::fs::create_dir_all(parent).map_err(|e| file_error(parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".kassa-restore-")
        .tempdir_in(parent)
        .map_err(|e| file_error(parent, e))?;
    for (name, bytes) in &entries {
        let path = staging.path().join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
        }
        let mut out = std::fs::File::create(&path).map_err(|e| file_error(&path, e))?;
        out.write_all(bytes).map_err(|e| file_error(&path, e))?;
        out.sync_all().map_err(|e| file_error(&path, e))?;
        if name.starts_with("keys/") {
            tls::restrict_to_owner(&path).map_err(|e| file_error(&path, e))?;
        }
    }
    check_ledger(staging.path(), &manifest, file).await?;
    let at_hq = if ask_hq {
        hq_watermarks(staging.path()).await?
    } else {
        None
    };
    if let Some(at_hq) = at_hq {
        for (terminal, held) in &at_hq {
            let in_backup = manifest.terminals.get(terminal).copied().unwrap_or(0);
            if *held > in_backup {
                return Err(BackupError::OlderThanHq {
                    terminal: terminal.clone(),
                    at_hq: *held,
                    in_backup,
                });
            }
        }
    }
    if data_dir.exists() {
        std::fs::remove_dir(data_dir).map_err(|e| file_error(data_dir, e))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, data_dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staged);
        file_error(data_dir, e)
    })?;
    Ok(manifest)
}

/// SQLite's integrity check and every terminal's chain and signatures, on the restored copy;
/// and the copy is the manifest's store, up to the manifest's sequences.
async fn check_ledger(dir: &Path, manifest: &Manifest, file: &Path) -> Result<(), BackupError> {
    let damaged = |reason: String| BackupError::Damaged {
        path: file.display().to_string(),
        reason,
    };
    let copy = dir.join(LEDGER);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&copy)
                .read_only(true),
        )
        .await
        .map_err(|e| damaged(format!("its ledger: {e}")))?;
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .map_err(|e| damaged(format!("its ledger: {e}")))?;
    if integrity != "ok" {
        return Err(damaged(format!(
            "its ledger fails SQLite's check: {integrity}"
        )));
    }
    let reports = crate::verify::verify(&pool)
        .await
        .map_err(|e| damaged(format!("its ledger: {e}")))?;
    if let Some(broken) = reports.iter().find_map(|r| r.broken.as_ref()) {
        return Err(damaged(format!("its ledger's chain breaks at {broken}")));
    }
    pool.close().await;
    let (store, terminals) = read_copy(&copy).await?;
    if store != manifest.store || terminals != manifest.terminals {
        return Err(damaged(
            "its ledger is not the one its manifest describes".into(),
        ));
    }
    Ok(())
}

/// How far HQ holds each terminal of the store whose restored data directory is `dir`, asked
/// with the HQ link enrolment left there; `None` when the node was not enrolled (the operator
/// checks HQ then).
pub async fn hq_watermarks(dir: &Path) -> Result<HqWatermarks, BackupError> {
    let settings = crate::enrol::link(dir, Duration::from_secs(5))
        .map_err(|e| BackupError::Node(e.to_string()))?;
    let Some(settings) = settings else {
        return Ok(None);
    };
    let http = settings
        .client(Duration::from_secs(15), Duration::from_secs(5))
        .map_err(BackupError::HqUnreachable)?;
    let response = http
        .get(format!("{}/v1/sync/stock", settings.hq_url))
        .bearer_auth(settings.token.get())
        .send()
        .await
        .map_err(|e| BackupError::HqUnreachable(crate::sync::error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(BackupError::HqUnreachable(format!(
            "HQ answered {}",
            response.status()
        )));
    }
    let snapshot: protocol::sync::StockSnapshot = response
        .json()
        .await
        .map_err(|e| BackupError::HqUnreachable(e.to_string()))?;
    Ok(Some(snapshot.watermarks))
}

/// Backups the node takes of itself while it runs (`kassa store run --backup-dir DIR`).
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Where the files go: not inside the data directory.
    pub dir: PathBuf,
    /// How often.
    pub every: Duration,
    /// How many of the newest files are kept; older ones are removed.
    pub keep: usize,
    /// Each backup also sent to HQ, encrypted, when set.
    pub to_hq: Option<crate::offsite::ToHq>,
}

/// What the scheduled backups did, for `/v1/status` and `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScheduleState {
    /// The directory.
    pub dir: String,
    /// Seconds between backups.
    pub every_s: u64,
    /// When the schedule started (ms).
    pub started_ms: i64,
    /// Backups taken since.
    pub taken: u64,
    /// When the last one was written whole (ms).
    pub last_ok_ms: Option<i64>,
    /// Its file.
    pub last_file: Option<String>,
    /// Why the last attempt failed, when it did (cleared by the next success).
    pub last_error: Option<String>,
    /// The backups sent to HQ, when the node sends them (`--backup-to-hq`).
    pub to_hq: Option<crate::offsite::ToHqState>,
}

/// Leftovers of a backup killed half-way (its scratch directory, its `.partial` file) older
/// than this are removed from the backup directory.
const LEFTOVER_AGE: Duration = Duration::from_secs(3600);

/// Starts the node's scheduled backups of `data_dir` into `schedule.dir`: the first after a
/// minute (or `every`, when shorter), then every `every`; the newest `keep` files are kept.
/// Refused when the directory cannot be made or lies inside the data directory.
pub fn schedule(
    node: std::sync::Arc<crate::node::Node>,
    data_dir: PathBuf,
    schedule: Schedule,
) -> Result<(), BackupError> {
    std::fs::create_dir_all(&schedule.dir).map_err(|e| file_error(&schedule.dir, e))?;
    let dir = schedule
        .dir
        .canonicalize()
        .map_err(|e| file_error(&schedule.dir, e))?;
    let data = data_dir
        .canonicalize()
        .map_err(|e| file_error(&data_dir, e))?;
    if dir.starts_with(&data) {
        return Err(BackupError::Node(format!(
            "the backup directory {} is inside the data directory {}: each backup would hold the ones before it, and a dead disk would take both; choose a directory on another disk",
            dir.display(),
            data.display()
        )));
    }
    if schedule.keep == 0 || schedule.every.is_zero() {
        return Err(BackupError::Node(
            "scheduled backups need an interval and keep at least one file".into(),
        ));
    }
    node.set_backups(ScheduleState {
        dir: dir.display().to_string(),
        every_s: schedule.every.as_secs(),
        started_ms: jiff::Timestamp::now().as_millisecond(),
        ..ScheduleState::default()
    });
    let to_hq = schedule
        .to_hq
        .clone()
        .map(|to_hq| crate::offsite::start(node.clone(), &dir, to_hq))
        .transpose()?;
    tokio::spawn(async move {
        tokio::time::sleep(schedule.every.min(Duration::from_secs(60))).await;
        loop {
            let name = format!(
                "{}-{}.kassa-backup",
                node.store,
                jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ")
            );
            let file = dir.join(&name);
            // The copy reads and compresses the whole ledger with blocking file I/O: on a
            // blocking thread of its own, so the runtime's workers go on answering the tills.
            let runtime = tokio::runtime::Handle::current();
            let (from, to) = (data_dir.clone(), file.clone());
            let taken = tokio::task::spawn_blocking(move || runtime.block_on(backup(&from, &to)))
                .await
                .unwrap_or_else(|e| Err(BackupError::Node(format!("the backup task: {e}"))));
            match taken {
                Ok(_) => {
                    let removed = prune(&dir, node.store.as_str(), schedule.keep);
                    tracing::info!(file = %file.display(), removed, "scheduled backup written");
                    node.update_backups(|s| {
                        s.taken += 1;
                        s.last_ok_ms = Some(jiff::Timestamp::now().as_millisecond());
                        s.last_file = Some(file.display().to_string());
                        s.last_error = None;
                    });
                    if let Some(to_hq) = &to_hq {
                        to_hq.offer(file.clone());
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "scheduled backup failed");
                    node.update_backups(|s| s.last_error = Some(e.to_string()));
                }
            }
            tokio::time::sleep(schedule.every).await;
        }
    });
    Ok(())
}

/// Removes all but the newest `keep` backups of `store` in `dir` (their names sort by time),
/// and leftovers of backups killed half-way; how many files it removed.
fn prune(dir: &Path, store: &str, keep: usize) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let prefix = format!("{store}-");
    let mut backups = Vec::new();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > LEFTOVER_AGE);
        if name.starts_with(&prefix) && name.ends_with(".kassa-backup") {
            backups.push(name);
        } else if old && name.starts_with(&prefix) && name.ends_with(".partial") {
            removed += usize::from(std::fs::remove_file(entry.path()).is_ok());
        } else if old && name.starts_with(".kassa-backup-") {
            removed += usize::from(std::fs::remove_dir_all(entry.path()).is_ok());
        }
    }
    backups.sort();
    let surplus = backups.len().saturating_sub(keep);
    for name in &backups[..surplus] {
        removed += usize::from(std::fs::remove_file(dir.join(name)).is_ok());
    }
    removed
}
