//! Store backups HQ keeps for the stores (`kassa hq run --store-backups DIR`): each node sends
//! its scheduled backups, encrypted at the store to the chain's recovery key, piece by piece
//! (`PUT /v1/sync/backups/{name}`, its store credential, `protocol::backup`); HQ keeps the
//! newest `--store-backups-keep` whole files per store in `DIR/<store>/` and hands them to
//! support staff (`GET /v1/stores/{id}/backups`, `…/{name}`, scope `support:write`, each
//! download in the audit log). HQ cannot read them: restoring one needs the recovery key, which
//! neither HQ nor the stores hold.

use std::io::{Seek as _, Write as _};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::backup::{MAX_PIECE_BYTES, Piece, Received};
use serde_json::{Value, json};
use sqlx::Row as _;

use crate::api::{Access, ApiError, ApiResult, Hq, authenticate_store, authorize};
use crate::extract::{Path, Query, read_body};
use crate::identity::{Audit, Scope};

/// Where HQ keeps store backups and how many per store.
#[derive(Debug, Clone)]
pub struct StoreBackups {
    /// The directory (one folder per store inside).
    pub dir: PathBuf,
    /// How many of each store's newest whole backups are kept.
    pub keep: usize,
    /// The bytes the directory's disk keeps free: a backup or a piece that would leave less is
    /// refused (`507`), so that backups never fill a disk HQ's database may share.
    pub min_free: u64,
}

/// The bytes the disk of the store backups directory has free beyond its floor; `None` when
/// its free space cannot be read (then nothing is refused, and it is logged).
fn room(kept: &StoreBackups) -> Option<u64> {
    match rustix::fs::statvfs(&kept.dir) {
        Ok(fs) => Some(
            fs.f_bavail
                .saturating_mul(fs.f_frsize)
                .saturating_sub(kept.min_free),
        ),
        Err(e) => {
            tracing::warn!(dir = %kept.dir.display(), error = %e, "store backups: the disk's free space cannot be read");
            None
        }
    }
}

/// A new backup of `size` bytes that does not fit above the floor: not this one (`413`; the
/// node drops its copy and sends its next backup).
fn fits(kept: &StoreBackups, size: u64) -> ApiResult<()> {
    match room(kept) {
        Some(room) if room < size => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "backup_too_large",
            format!(
                "HQ's store backups disk has room for {} MiB above the {} MiB it keeps free; this backup has {} MiB: HQ's operator makes room (or lowers --store-backups-min-free-mib)",
                room >> 20,
                kept.min_free >> 20,
                size >> 20
            ),
        )
        .at("size")),
        _ => Ok(()),
    }
}

/// A piece that no longer fits (the disk filled up meanwhile): not now (`507`; the node keeps
/// its copy and tries again later).
fn room_for_piece(kept: &StoreBackups, bytes: u64) -> ApiResult<()> {
    match room(kept) {
        Some(room) if room < bytes => Err(ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient_storage",
            format!(
                "HQ's store backups disk is down to the {} MiB it keeps free: the node tries again later, HQ's operator makes room",
                kept.min_free >> 20
            ),
        )),
        _ => Ok(()),
    }
}

fn off() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "store_backups_off",
        "HQ keeps no store backups: its operator starts it with --store-backups DIR",
    )
}

fn io_error(e: std::io::Error) -> ApiError {
    tracing::error!(error = %e, "store backups: file error");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "storage_failed",
        "HQ could not write the backup to its store backups directory: try again later",
    )
}

fn store_dir(kept: &StoreBackups, store: &str) -> PathBuf {
    kept.dir.join(store)
}

fn partial(kept: &StoreBackups, store: &str, name: &str) -> PathBuf {
    store_dir(kept, store).join(format!("{name}.partial"))
}

/// Appends `bytes` at `at` to the partial file, cut back to `at` first (a piece written before
/// a crash, but never recorded, is written again), and makes it durable.
fn append(file: &FsPath, at: u64, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(file)?;
    out.set_len(at)?;
    out.seek(std::io::SeekFrom::Start(at))?;
    out.write_all(bytes)?;
    out.sync_data()
}

/// `PUT /v1/sync/backups/{name}` (store credential): a piece of one of the store's encrypted
/// backups, or with an empty body, where HQ's copy of it ends. A new backup drops the store's
/// incomplete one; the last piece makes it whole (checked against its SHA-256) and removes the
/// store's backups beyond the newest `keep`. Audited when whole (`store.backup_received`).
pub(crate) async fn put_piece(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(piece): Query<Piece>,
    body: Body,
) -> ApiResult<Json<Received>> {
    let store = authenticate_store(&hq, &headers).await?;
    let kept = hq.store_backups.clone().ok_or_else(off)?;
    // The store's folder is named by its id: `.` and `..` are ids, but not folders of its own.
    if store.starts_with('.') {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "store_id_unfit",
            format!(
                "store `{store}` has an id that starts with a dot, which cannot name its backups folder: HQ keeps no backups for it"
            ),
        ));
    }
    protocol::backup::check(&name, &piece).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", e.reason).at(e.field)
    })?;
    let bytes = read_body(&headers, body, MAX_PIECE_BYTES).await?;
    if piece.offset + bytes.len() as u64 > piece.size {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            format!("the piece ends past the file's {} bytes", piece.size),
        )
        .at("offset"));
    }
    let now = crate::now_ms();
    let (guard, mut tx) = hq.db.begin_write().await?;
    let held = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT size, sha256, received, completed_ms FROM store_backups WHERE store = $1 AND name = $2{}",
        hq.db.backend.for_update()
    )))
    .bind(&store)
    .bind(&name)
    .fetch_optional(&mut *tx)
    .await?;
    let mut dropped = Vec::new();
    let received = match held {
        Some(row) => {
            let (size, sha256): (i64, String) = (row.get("size"), row.get("sha256"));
            if u64::try_from(size).ok() != Some(piece.size) || sha256 != piece.sha256 {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "backup_differs",
                    format!(
                        "HQ holds another file named `{name}` for store `{store}`: name this backup anew"
                    ),
                ));
            }
            if row.get::<Option<i64>, _>("completed_ms").is_some() {
                return Ok(Json(Received {
                    received: piece.size,
                    complete: true,
                }));
            }
            u64::try_from(row.get::<i64, _>("received")).unwrap_or(0)
        }
        None => {
            fits(&kept, piece.size)?;
            // One upload per store at a time: a new one replaces what was left incomplete.
            let stale: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM store_backups WHERE store = $1 AND completed_ms IS NULL",
            )
            .bind(&store)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM store_backups WHERE store = $1 AND completed_ms IS NULL")
                .bind(&store)
                .execute(&mut *tx)
                .await?;
            dropped.extend(stale.iter().map(|n| partial(&kept, &store, n)));
            sqlx::query(
                "INSERT INTO store_backups (store, name, size, sha256, received, started_ms) VALUES ($1, $2, $3, $4, 0, $5)",
            )
            .bind(&store)
            .bind(&name)
            .bind(i64::try_from(piece.size).unwrap_or(i64::MAX))
            .bind(&piece.sha256)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            0
        }
    };
    if !bytes.is_empty() && piece.offset != received {
        return Err(mismatch(&name, received));
    }
    // The row's place is committed before the bytes are written, and the write lock released:
    // the other stores' pushes never wait behind a piece's write to disk.
    tx.commit().await?;
    drop(guard);
    remove_files(&dropped);
    if bytes.is_empty() {
        // Every byte arrived but HQ stopped before it checked them: it checks them now.
        if received == piece.size {
            return finish(&hq, &kept, &store, &name, &piece).await;
        }
        return Ok(Json(Received {
            received,
            complete: false,
        }));
    }
    room_for_piece(&kept, bytes.len() as u64)?;
    let (at, written, length) = (received, partial(&kept, &store, &name), bytes.len() as u64);
    tokio::task::spawn_blocking(move || append(&written, at, &bytes))
        .await
        .map_err(|e| io_error(std::io::Error::other(e)))?
        .map_err(io_error)?;
    hq.metrics
        .backup_bytes
        .fetch_add(length, std::sync::atomic::Ordering::Relaxed);
    let before = received;
    let received = received + length;
    // Recorded only where the copy still ended where this piece began: a second request with
    // the same piece (a retry whose first try arrived) wrote the same bytes and records nothing.
    let lock = hq.db.write_guard().await;
    let moved = sqlx::query(
        "UPDATE store_backups SET received = $1
         WHERE store = $2 AND name = $3 AND received = $4 AND completed_ms IS NULL",
    )
    .bind(i64::try_from(received).unwrap_or(i64::MAX))
    .bind(&store)
    .bind(&name)
    .bind(i64::try_from(before).unwrap_or(i64::MAX))
    .execute(&hq.db.pool)
    .await?
    .rows_affected();
    drop(lock);
    if moved == 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "offset_mismatch",
            format!("another piece of `{name}` arrived first: ask where HQ's copy ends"),
        )
        .at("offset"));
    }
    if received < piece.size {
        return Ok(Json(Received {
            received,
            complete: false,
        }));
    }
    finish(&hq, &kept, &store, &name, &piece).await
}

fn mismatch(name: &str, received: u64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "offset_mismatch",
        format!(
            "HQ holds the first {received} bytes of `{name}`: send the piece that starts there"
        ),
    )
    .at("offset")
}

/// Makes a backup whose last byte arrived whole: its SHA-256 checked (read outside the write
/// lock: a large file takes a while), the file renamed into place, the store's backups beyond
/// the newest `keep` removed. A file that does not match is dropped.
async fn finish(
    hq: &Hq,
    kept: &StoreBackups,
    store: &str,
    name: &str,
    piece: &Piece,
) -> ApiResult<Json<Received>> {
    let dir = store_dir(kept, store);
    // An attempt that renamed the file and then failed to record it leaves it whole, not partial.
    let file = Some(partial(kept, store, name))
        .filter(|p| p.exists())
        .unwrap_or_else(|| dir.join(name));
    let summed = file.clone();
    let (sum, _) = tokio::task::spawn_blocking(move || protocol::backup::sha256_of(&summed))
        .await
        .map_err(|e| io_error(std::io::Error::other(e)))?
        .map_err(io_error)?;
    let now = crate::now_ms();
    let (guard, mut tx) = hq.db.begin_write().await?;
    let held: Option<(i64, Option<i64>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT received, completed_ms FROM store_backups WHERE store = $1 AND name = $2{}",
        hq.db.backend.for_update()
    )))
    .bind(store)
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?;
    match held {
        Some((_, None)) => {}
        // Finished meanwhile by a request of its own, or replaced by a newer upload.
        Some((received, Some(_))) => {
            return Ok(Json(Received {
                received: u64::try_from(received).unwrap_or(0),
                complete: true,
            }));
        }
        None => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "offset_mismatch",
                format!("HQ no longer holds `{name}`: send it again from the start"),
            )
            .at("offset"));
        }
    }
    if sum != piece.sha256 {
        sqlx::query("DELETE FROM store_backups WHERE store = $1 AND name = $2")
            .bind(store)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        drop(guard);
        remove_files(&[file]);
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "backup_checksum_mismatch",
            format!(
                "the {} bytes received for `{name}` do not match its SHA-256: HQ dropped them; send the backup again",
                piece.size
            ),
        )
        .at("sha256"));
    }
    if file != dir.join(name) {
        std::fs::rename(&file, dir.join(name)).map_err(io_error)?;
        if let Ok(dir) = std::fs::File::open(&dir) {
            let _ = dir.sync_all();
        }
    }
    sqlx::query("UPDATE store_backups SET completed_ms = $1 WHERE store = $2 AND name = $3")
        .bind(now)
        .bind(store)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    let whole_ones: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM store_backups WHERE store = $1 AND completed_ms IS NOT NULL
         ORDER BY completed_ms DESC, name DESC",
    )
    .bind(store)
    .fetch_all(&mut *tx)
    .await?;
    let mut dropped = Vec::new();
    for old in whole_ones.iter().skip(kept.keep) {
        sqlx::query("DELETE FROM store_backups WHERE store = $1 AND name = $2")
            .bind(store)
            .bind(old)
            .execute(&mut *tx)
            .await?;
        dropped.push(dir.join(old));
    }
    Audit {
        at_ms: now,
        actor: &format!("store:{store}"),
        source: None,
        action: "store.backup_received",
        target: Some(&format!("store:{store}")),
        before: None,
        after: Some(
            &json!({"name": name, "bytes": piece.size, "sha256": piece.sha256}).to_string(),
        ),
    }
    .append(&mut tx)
    .await?;
    tx.commit().await?;
    drop(guard);
    remove_files(&dropped);
    Ok(Json(Received {
        received: piece.size,
        complete: true,
    }))
}

fn remove_files(files: &[PathBuf]) {
    for file in files {
        if let Err(e) = std::fs::remove_file(file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %file.display(), error = %e, "store backups: a file HQ no longer keeps could not be removed");
        }
    }
}

/// Lets a person with the support role or an API key with `support:write` through, naming
/// them; not the read-API token (a store's backups are a support matter, not a report).
async fn support(hq: &Hq, headers: &HeaderMap, store: &str) -> ApiResult<String> {
    let actor = authorize(hq, headers, Scope::SupportWrite, Some(store), Access::Read).await?;
    if actor == "token" {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "missing_scope",
            "a store's backups are for a person with the support role or an API key with `support:write`, not the read-API token",
        ));
    }
    Ok(actor)
}

/// `GET /v1/stores/{id}/backups` (`support:write`): the store's whole backups, newest first,
/// and the one on its way.
pub(crate) async fn list(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    support(&hq, &headers, &id).await?;
    crate::support::known_store(&hq, &id).await?;
    let kept = hq.store_backups.clone().ok_or_else(off)?;
    Ok(Json(listing(&hq, &id, kept.keep).await?))
}

/// The store's backups as [`list`] answers them.
pub(crate) async fn listing(hq: &Hq, store: &str, keep: usize) -> ApiResult<Value> {
    let rows = sqlx::query(
        "SELECT name, size, sha256, received, started_ms, completed_ms FROM store_backups
         WHERE store = $1 ORDER BY completed_ms IS NULL, completed_ms DESC, name DESC",
    )
    .bind(store)
    .fetch_all(&hq.db.pool)
    .await?;
    let (whole, sending): (Vec<_>, Vec<_>) = rows
        .iter()
        .partition(|r| r.get::<Option<i64>, _>("completed_ms").is_some());
    let item = |r: &&sqlx::any::AnyRow| {
        json!({
            "name": r.get::<String, _>("name"),
            "bytes": r.get::<i64, _>("size"),
            "sha256": r.get::<String, _>("sha256"),
            "received": r.get::<i64, _>("received"),
            "started_ms": r.get::<i64, _>("started_ms"),
            "completed_ms": r.get::<Option<i64>, _>("completed_ms"),
        })
    };
    Ok(json!({
        "store": store,
        "keep": keep,
        "backups": whole.iter().map(item).collect::<Vec<_>>(),
        "incoming": sending.first().map(item),
    }))
}

/// `GET /v1/stores/{id}/backups/{name}` (`support:write`; a person or an API key, not the
/// read-API token): one whole backup, as HQ received it. Audited (`store.backup_downloaded`).
pub(crate) async fn download(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let actor = support(&hq, &headers, &id).await?;
    let kept = hq.store_backups.clone().ok_or_else(off)?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "HQ holds no whole backup `{}` of store `{}`",
                crate::api::echo(&name),
                crate::api::echo(&id)
            ),
        )
    };
    let size: Option<i64> = sqlx::query_scalar(
        "SELECT size FROM store_backups WHERE store = $1 AND name = $2 AND completed_ms IS NOT NULL",
    )
    .bind(&id)
    .bind(&name)
    .fetch_optional(&hq.db.pool)
    .await?;
    let size = size.ok_or_else(not_found)?;
    let file = tokio::fs::File::open(store_dir(&kept, &id).join(&name))
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => not_found(),
            _ => io_error(e),
        })?;
    let (_guard, mut tx) = hq.db.begin_write().await?;
    Audit {
        at_ms: crate::now_ms(),
        actor: &actor,
        source: None,
        action: "store.backup_downloaded",
        target: Some(&format!("store:{id}")),
        before: None,
        after: Some(&json!({"name": name, "bytes": size}).to_string()),
    }
    .append(&mut tx)
    .await?;
    tx.commit().await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(tokio_util::io::ReaderStream::new(file)),
    )
        .into_response())
}
