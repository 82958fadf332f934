//! Backups sent to HQ (`kassa store run --backup-to-hq --backup-recipient age1…`): each
//! scheduled backup is encrypted at the store to the chain's recovery key and sent to HQ in
//! pieces (`protocol::backup`) that resume where HQ's copy ends — over a thin link, across a
//! node's restart, after HQ was out of reach.
//!
//! A backup holds the tills' signing keys and the store's credential, so HQ must not be able to
//! read it: the file is an age file (age-encryption.org/v1, X25519) whose only recipient is the
//! chain's recovery key. That key is made once (`kassa store recovery-key --out FILE`) and kept
//! off every store PC and off HQ — in the IT department's safe; the nodes hold only its public
//! half. `kassa store restore FILE --identity KEY` restores such a file (so does `age -d -i KEY`,
//! the standard tool, into a plain backup).
//!
//! The encrypted copy is written once into `.to-hq/` in the backup directory and removed when
//! HQ holds it whole; a copy left there (the node restarted, HQ out of reach) is sent before a
//! newer backup.

use std::io::{Read as _, Seek as _};
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use age::secrecy::ExposeSecret as _;
use protocol::backup::{PIECE_BYTES, Piece, Received, SUFFIX};

use crate::backup::BackupError;
use crate::node::Node;
use crate::sync::SyncSettings;

/// The folder of the backup directory where the copy on its way to HQ waits.
const STAGING: &str = ".to-hq";
/// How the first bytes of an age file read.
const AGE_MAGIC: &[u8] = b"age-encryption.org/";
/// The waits between attempts while HQ cannot be reached: doubling from the first to the last.
const RETRY: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(600));
/// How long one piece may take: a 1 MiB piece over a 32 kbit/s link.
const PIECE_TIMEOUT: Duration = Duration::from_secs(300);

/// The chain's recovery key: the identity file's text (age's own format, which the `age` tool
/// reads too) and the public recipient the nodes encrypt to.
pub fn new_recovery_key(now: jiff::Timestamp) -> (String, String) {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let file = format!(
        "# Kassa recovery key: decrypts the store backups sent to HQ. Keep it off the store PCs and off HQ.\n# created: {now}\n# public key: {recipient}\n{}\n",
        identity.to_string().expose_secret()
    );
    (file, recipient)
}

/// Reads a recipient (`age1…`), naming what is wrong.
pub fn parse_recipient(text: &str) -> Result<age::x25519::Recipient, String> {
    age::x25519::Recipient::from_str(text.trim()).map_err(|e| {
        format!("`{}` is not an age X25519 recipient (age1…, the public key `kassa store recovery-key` printed): {e}", text.trim())
    })
}

/// Reads the recovery key from its file (the line `AGE-SECRET-KEY-1…`; `#` lines are comments).
pub fn read_identity(path: &Path) -> Result<age::x25519::Identity, BackupError> {
    let text = std::fs::read_to_string(path).map_err(|e| BackupError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let key = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| BackupError::Node(format!("{} holds no recovery key", path.display())))?;
    age::x25519::Identity::from_str(key).map_err(|e| {
        BackupError::Node(format!(
            "{} is not a recovery key (AGE-SECRET-KEY-1…): {e}",
            path.display()
        ))
    })
}

/// Whether the file is an age file (an encrypted backup).
pub fn is_encrypted(file: &Path) -> bool {
    let mut start = [0u8; AGE_MAGIC.len()];
    std::fs::File::open(file)
        .and_then(|mut f| f.read_exact(&mut start))
        .is_ok_and(|()| start == AGE_MAGIC)
}

/// Encrypts the backup `plain` to `recipient` into `out` (written beside and renamed).
pub fn encrypt(
    plain: &Path,
    recipient: &age::x25519::Recipient,
    out: &Path,
) -> std::io::Result<()> {
    let partial = out.with_extension("partial");
    let written = (|| {
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
                .map_err(std::io::Error::other)?;
        let file = std::fs::File::create(&partial)?;
        let mut writer = encryptor.wrap_output(std::io::BufWriter::new(file))?;
        std::io::copy(&mut std::fs::File::open(plain)?, &mut writer)?;
        let file = writer.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, out)
}

/// Decrypts the encrypted backup `file` with the recovery key into `out`.
pub fn decrypt(
    file: &Path,
    identity: &age::x25519::Identity,
    out: &Path,
) -> Result<(), BackupError> {
    let damaged = |reason: String| BackupError::Damaged {
        path: file.display().to_string(),
        reason,
    };
    let input = std::fs::File::open(file).map_err(|e| BackupError::File {
        path: file.display().to_string(),
        reason: e.to_string(),
    })?;
    let decryptor = age::Decryptor::new_buffered(std::io::BufReader::new(input))
        .map_err(|e| damaged(format!("its encryption header: {e}")))?;
    let mut reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => BackupError::Node(format!(
                "{} is encrypted to another key than this recovery key: use the chain's recovery key whose public key the store node was given (--backup-recipient)",
                file.display()
            )),
            other => damaged(other.to_string()),
        })?;
    let mut output = std::fs::File::create(out).map_err(|e| BackupError::File {
        path: out.display().to_string(),
        reason: e.to_string(),
    })?;
    tls::restrict_to_owner(out).map_err(|e| BackupError::File {
        path: out.display().to_string(),
        reason: e.to_string(),
    })?;
    std::io::copy(&mut reader, &mut output).map_err(|e| damaged(format!("decrypting it: {e}")))?;
    Ok(())
}

/// Where the node sends its backups: HQ's link, and the recovery key's public half.
#[derive(Debug, Clone)]
pub struct ToHq {
    /// The link to HQ (the node's own).
    pub link: SyncSettings,
    /// The chain's recovery key, public half.
    pub recipient: age::x25519::Recipient,
}

/// What the sending of backups to HQ did, for `/v1/status` (`backups.to_hq`) and `/metrics`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ToHqState {
    /// Backups HQ holds whole since the node started.
    pub sent: u64,
    /// When HQ last said it holds one whole (ms).
    pub last_ok_ms: Option<i64>,
    /// Its name at HQ.
    pub last_file: Option<String>,
    /// The one on its way, with the bytes HQ holds of it.
    pub sending: Option<String>,
    /// Bytes of it HQ holds.
    pub sending_received: u64,
    /// Its size.
    pub sending_bytes: u64,
    /// Why the last attempt failed, when it did (cleared by the next success).
    pub last_error: Option<String>,
}

/// The sender: takes the newest backup offered and sends it to HQ.
#[derive(Debug, Default)]
pub struct Sender {
    newest: std::sync::Mutex<Option<PathBuf>>,
    wake: tokio::sync::Notify,
}

impl Sender {
    /// Offers a backup just written whole (it replaces one offered before and not yet taken).
    pub fn offer(&self, file: PathBuf) {
        *self.newest.lock().unwrap_or_else(|p| p.into_inner()) = Some(file);
        self.wake.notify_one();
    }

    fn take(&self) -> Option<PathBuf> {
        self.newest.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Starts sending the backups offered to the returned [`Sender`] to HQ, through `dir/.to-hq`.
pub fn start(node: Arc<Node>, dir: &Path, to_hq: ToHq) -> Result<Arc<Sender>, BackupError> {
    let staging = dir.join(STAGING);
    std::fs::create_dir_all(&staging).map_err(|e| BackupError::File {
        path: staging.display().to_string(),
        reason: e.to_string(),
    })?;
    let http = to_hq
        .link
        .client(PIECE_TIMEOUT, crate::sync::CONNECT_TIMEOUT)
        .map_err(|e| BackupError::Node(format!("the link to HQ: {e}")))?;
    let sender = Arc::new(Sender::default());
    node.update_backups(|s| s.to_hq = Some(ToHqState::default()));
    tokio::spawn(run(node, sender.clone(), staging, to_hq, http));
    Ok(sender)
}

/// Why a send stopped.
enum Failed {
    /// HQ could not be reached, or failed: the copy is kept and sent again.
    Unreachable(String),
    /// HQ refused it (it keeps no store backups, the credential): the copy is dropped.
    Refused(String),
}

fn record(node: &Node, change: impl FnOnce(&mut ToHqState)) {
    node.update_backups(|s| {
        if let Some(to_hq) = s.to_hq.as_mut() {
            change(to_hq);
        }
    });
}

/// The copy waiting in the staging folder (the newest when several); older ones, and what an
/// encryption cut short left, removed.
fn staged(staging: &Path) -> Option<PathBuf> {
    let (mut found, leftovers): (Vec<PathBuf>, Vec<PathBuf>) = std::fs::read_dir(staging)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .partition(|p| p.to_string_lossy().ends_with(SUFFIX));
    for leftover in leftovers {
        let _ = std::fs::remove_file(leftover);
    }
    found.sort();
    let newest = found.pop();
    for old in found {
        let _ = std::fs::remove_file(old);
    }
    newest
}

async fn run(
    node: Arc<Node>,
    sender: Arc<Sender>,
    staging: PathBuf,
    to_hq: ToHq,
    http: reqwest::Client,
) {
    let mut wait = RETRY.0;
    loop {
        // A newer backup replaces a copy that could not be sent (HQ held it when a restore
        // would need it only if it were the newest); a send under way is finished first.
        let next = match (sender.take(), staged(&staging)) {
            (None, Some(file)) => file,
            (offered, waiting) => match offered {
                Some(plain) => {
                    if let Some(old) = waiting {
                        let _ = std::fs::remove_file(old);
                    }
                    let name = format!(
                        "{}.age",
                        plain.file_name().unwrap_or_default().to_string_lossy()
                    );
                    let out = staging.join(&name);
                    let recipient = to_hq.recipient.clone();
                    let made = tokio::task::spawn_blocking({
                        let out = out.clone();
                        move || encrypt(&plain, &recipient, &out)
                    })
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
                    if let Err(e) = made {
                        tracing::error!(error = %e, "a backup could not be encrypted for HQ");
                        record(&node, |s| {
                            s.last_error = Some(format!("encrypting {name}: {e}"))
                        });
                        continue;
                    }
                    out
                }
                None => {
                    sender.wake.notified().await;
                    continue;
                }
            },
        };
        let name = next
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        match send(&node, &http, &to_hq.link, &next, &name).await {
            Ok(()) => {
                let _ = std::fs::remove_file(&next);
                tracing::info!(file = %name, "backup held whole by HQ");
                record(&node, |s| {
                    s.sent += 1;
                    s.last_ok_ms = Some(jiff::Timestamp::now().as_millisecond());
                    s.last_file = Some(name);
                    s.sending = None;
                    s.last_error = None;
                });
                wait = RETRY.0;
            }
            Err(Failed::Refused(why)) => {
                let _ = std::fs::remove_file(&next);
                tracing::error!(file = %name, error = %why, "HQ refused the backup");
                record(&node, |s| {
                    s.sending = None;
                    s.last_error = Some(why);
                });
            }
            Err(Failed::Unreachable(why)) => {
                tracing::warn!(file = %name, error = %why, retry_s = wait.as_secs(), "the backup could not reach HQ; sending it again later");
                record(&node, |s| s.last_error = Some(why));
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY.1);
            }
        }
    }
}

fn read_piece(file: &Path, at: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(file)?;
    f.seek(std::io::SeekFrom::Start(at))?;
    let mut piece = Vec::with_capacity(PIECE_BYTES);
    f.take(PIECE_BYTES as u64).read_to_end(&mut piece)?;
    Ok(piece)
}

/// One `PUT` of a piece (`bytes`, empty to ask where HQ's copy ends): what HQ holds after it.
async fn put(
    http: &reqwest::Client,
    link: &SyncSettings,
    name: &str,
    piece: &Piece,
    bytes: Vec<u8>,
) -> Result<Result<Received, (u16, String)>, Failed> {
    let query = piece_query(piece);
    let answer = http
        .put(format!("{}/v1/sync/backups/{name}?{query}", link.hq_url))
        .bearer_auth(link.token.get())
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .map_err(|e| Failed::Unreachable(crate::sync::error_chain(&e)))?;
    let status = answer.status();
    if status.is_success() {
        return answer
            .json::<Received>()
            .await
            .map(Ok)
            .map_err(|e| Failed::Unreachable(format!("HQ's answer: {e}")));
    }
    if status.as_u16() == 401 && link.token.reload() {
        return Err(Failed::Unreachable(
            "HQ refused the credential; the node read a newer one and tries again".into(),
        ));
    }
    let text = answer.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or(text);
    Ok(Err((status.as_u16(), message)))
}

fn piece_query(piece: &Piece) -> String {
    format!(
        "offset={}&size={}&sha256={}",
        piece.offset, piece.size, piece.sha256
    )
}

/// Sends the encrypted backup `file` as `name` from where HQ's copy ends, to its end.
async fn send(
    node: &Node,
    http: &reqwest::Client,
    link: &SyncSettings,
    file: &Path,
    name: &str,
) -> Result<(), Failed> {
    let summed = file.to_path_buf();
    let (sha256, size) = tokio::task::spawn_blocking(move || protocol::backup::sha256_of(&summed))
        .await
        .map_err(|e| Failed::Unreachable(e.to_string()))?
        .map_err(|e| Failed::Refused(format!("reading {}: {e}", file.display())))?;
    let mut piece = Piece {
        offset: 0,
        size,
        sha256,
    };
    record(node, |s| {
        s.sending = Some(name.to_owned());
        s.sending_bytes = size;
        s.sending_received = 0;
    });
    let refused = |status: u16, message: String| {
        let why = format!("HQ refused backup {name} ({status}): {message}");
        if status >= 500 || status == 429 {
            Failed::Unreachable(why)
        } else {
            Failed::Refused(why)
        }
    };
    // Where HQ's copy ends.
    let mut held = match put(http, link, name, &piece, Vec::new()).await? {
        Ok(held) => held,
        Err((status, message)) => return Err(refused(status, message)),
    };
    let (mut conflicts, mut restarted) = (0, false);
    while !held.complete {
        record(node, |s| s.sending_received = held.received);
        piece.offset = held.received;
        let at = held.received;
        let path = file.to_path_buf();
        let bytes = tokio::task::spawn_blocking(move || read_piece(&path, at))
            .await
            .map_err(|e| Failed::Unreachable(e.to_string()))?
            .map_err(|e| Failed::Refused(format!("reading {}: {e}", file.display())))?;
        if bytes.is_empty() {
            return Err(Failed::Refused(format!(
                "{} is shorter than HQ's copy of it",
                file.display()
            )));
        }
        held = match put(http, link, name, &piece, bytes).await? {
            Ok(held) => held,
            // Another piece arrived first (a request that timed out here but reached HQ): ask
            // again where HQ's copy ends.
            Err((409, _)) if conflicts < 3 => {
                conflicts += 1;
                piece.offset = 0;
                match put(http, link, name, &piece, Vec::new()).await? {
                    Ok(held) => held,
                    Err((status, message)) => return Err(refused(status, message)),
                }
            }
            // HQ's copy did not match the file's SHA-256 and HQ dropped it: this file was
            // summed just now, so it is sent once more from the start.
            Err((422, _)) if !restarted => {
                restarted = true;
                piece.offset = 0;
                match put(http, link, name, &piece, Vec::new()).await? {
                    Ok(held) => held,
                    Err((status, message)) => return Err(refused(status, message)),
                }
            }
            Err((status, message)) => return Err(refused(status, message)),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_encrypted_to_the_recovery_key_opens_with_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let (key_file, recipient) = new_recovery_key(jiff::Timestamp::UNIX_EPOCH);
        assert!(key_file.contains(&format!("# public key: {recipient}")));
        std::fs::write(path("recovery.key"), &key_file).unwrap();
        let (other_file, _) = new_recovery_key(jiff::Timestamp::UNIX_EPOCH);
        std::fs::write(path("other.key"), &other_file).unwrap();

        let plain: Vec<u8> = (0..200_000u32).map(|n| (n * 7 % 251) as u8).collect();
        std::fs::write(path("plain"), &plain).unwrap();
        encrypt(
            &path("plain"),
            &parse_recipient(&recipient).unwrap(),
            &path("sealed"),
        )
        .unwrap();
        assert!(is_encrypted(&path("sealed")));
        assert!(!is_encrypted(&path("plain")));
        let sealed = std::fs::read(path("sealed")).unwrap();
        assert!(!sealed.windows(64).any(|w| w == &plain[..64]));

        decrypt(
            &path("sealed"),
            &read_identity(&path("recovery.key")).unwrap(),
            &path("opened"),
        )
        .unwrap();
        assert_eq!(std::fs::read(path("opened")).unwrap(), plain);
        let refused = decrypt(
            &path("sealed"),
            &read_identity(&path("other.key")).unwrap(),
            &path("not-opened"),
        )
        .unwrap_err();
        assert!(refused.to_string().contains("another key"), "{refused}");

        // Cut short: refused as damaged, not taken for a backup.
        std::fs::write(path("cut"), &sealed[..sealed.len() / 2]).unwrap();
        let cut = decrypt(
            &path("cut"),
            &read_identity(&path("recovery.key")).unwrap(),
            &path("cut-opened"),
        )
        .unwrap_err();
        assert!(matches!(cut, BackupError::Damaged { .. }), "{cut}");

        assert!(
            parse_recipient("age1nope")
                .unwrap_err()
                .contains("age1nope")
        );
        std::fs::write(path("empty.key"), "# nothing here\n").unwrap();
        assert!(read_identity(&path("empty.key")).is_err());
        std::fs::write(path("bad.key"), "AGE-SECRET-KEY-1NOPE\n").unwrap();
        assert!(read_identity(&path("bad.key")).is_err());
    }
}
