//! Terminal signing keys (one Ed25519 key pair per terminal, created at provisioning) and the
//! chain's PIN pepper, each kept as a file that only the node's user can read.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use domain::TerminalId;
use ed25519_dalek::{SigningKey, VerifyingKey};

/// Errors from reading or writing key files.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file does not hold a key.
    #[error("key file {path} does not hold a 32-byte Ed25519 key in hex")]
    Malformed {
        /// The file.
        path: String,
    },
    /// The key file is readable by others.
    #[error("key file {path} is readable by other users (mode {mode:o}); run chmod 600 on it")]
    Exposed {
        /// The file.
        path: String,
        /// Its mode.
        mode: u32,
    },
    /// A key rotation is already waiting for the node to carry it out.
    #[error("a key rotation is already waiting ({path}); start the node to carry it out")]
    Pending {
        /// The waiting key's file.
        path: String,
    },
    /// No randomness was available.
    #[error("no randomness available to create a key: {0}")]
    Random(String),
}

/// Where a terminal's key lives.
pub fn key_path(data_dir: &Path, terminal: &TerminalId) -> PathBuf {
    data_dir.join("keys").join(format!("{terminal}.ed25519"))
}

/// Creates a new key for `terminal`, or loads the existing one (provisioning is repeatable).
pub fn create_or_load(data_dir: &Path, terminal: &TerminalId) -> Result<SigningKey, KeyError> {
    create_or_load_secret(data_dir, &key_path(data_dir, terminal), None)
        .map(|seed| SigningKey::from_bytes(&seed))
}

/// Loads `terminal`'s key, refusing a file that other users can read.
pub fn load(data_dir: &Path, terminal: &TerminalId) -> Result<SigningKey, KeyError> {
    load_secret(&key_path(data_dir, terminal)).map(|seed| SigningKey::from_bytes(&seed))
}

/// Where a terminal's next key waits until the node rotates to it (see [`prepare_rotation`]).
pub fn next_key_path(data_dir: &Path, terminal: &TerminalId) -> PathBuf {
    data_dir
        .join("keys")
        .join(format!("{terminal}.ed25519.next"))
}

/// Makes `terminal`'s next key and keeps it beside the current one; the node announces it in
/// its ledger (signed by the current key) and switches to it when it next starts. A rotation
/// already waiting is kept, not replaced: its key may already be announced.
pub fn prepare_rotation(data_dir: &Path, terminal: &TerminalId) -> Result<SigningKey, KeyError> {
    let path = next_key_path(data_dir, terminal);
    if path.exists() {
        return Err(KeyError::Pending {
            path: path.display().to_string(),
        });
    }
    create_or_load_secret(data_dir, &path, None).map(|seed| SigningKey::from_bytes(&seed))
}

/// `terminal`'s next key, when a rotation is waiting.
pub fn next_key(data_dir: &Path, terminal: &TerminalId) -> Result<Option<SigningKey>, KeyError> {
    let path = next_key_path(data_dir, terminal);
    if !path.exists() {
        return Ok(None);
    }
    load_secret(&path).map(|seed| Some(SigningKey::from_bytes(&seed)))
}

/// Makes the waiting next key `terminal`'s key: renamed over the old one (which is gone from
/// then on), the directory synced so the rename survives a power cut.
pub fn promote_next(data_dir: &Path, terminal: &TerminalId) -> Result<(), KeyError> {
    let path = key_path(data_dir, terminal);
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    fs::rename(next_key_path(data_dir, terminal), &path).map_err(io)?;
    fs::File::open(data_dir.join("keys"))
        .and_then(|dir| dir.sync_all())
        .map_err(io)
}

/// Where the chain's PIN pepper lives: the secret every PIN hash is keyed with. HQ and all
/// stores of a chain share it.
pub fn pepper_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("pin.pepper")
}

/// The PIN pepper: `given` (hex, the chain's) written on first use, else the one on file, else
/// a new random one for a node that stands alone.
pub fn pepper(data_dir: &Path, given: Option<&str>) -> Result<[u8; 32], KeyError> {
    let path = pepper_path(data_dir);
    let given = given
        .map(|hex_text| {
            hex::decode(hex_text.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| KeyError::Malformed {
                    path: "the given PIN pepper".into(),
                })
        })
        .transpose()?;
    let pepper = create_or_load_secret(data_dir, &path, given)?;
    if given.is_some_and(|g| g != pepper) {
        return Err(KeyError::Malformed {
            path: format!(
                "{} (it holds another pepper than the one given)",
                path.display()
            ),
        });
    }
    Ok(pepper)
}

fn create_or_load_secret(
    data_dir: &Path,
    path: &Path,
    given: Option<[u8; 32]>,
) -> Result<[u8; 32], KeyError> {
    if path.exists() {
        return load_secret(path);
    }
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let dir = data_dir.join("keys");
    fs::create_dir_all(&dir).map_err(io)?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
    let seed = match given {
        Some(seed) => seed,
        None => {
            let mut seed = [0_u8; 32];
            getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
            seed
        }
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(hex::encode(seed).as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(seed)
}

fn load_secret(path: &Path) -> Result<[u8; 32], KeyError> {
    let shown = path.display().to_string();
    let meta = fs::metadata(path).map_err(|source| KeyError::Io {
        path: shown.clone(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Exposed { path: shown, mode });
    }
    let text = fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: shown.clone(),
        source,
    })?;
    let bytes = hex::decode(text.trim()).map_err(|_| KeyError::Malformed {
        path: shown.clone(),
    })?;
    bytes
        .try_into()
        .map_err(|_| KeyError::Malformed { path: shown })
}

/// A public key as stored in the database.
pub fn public_bytes(key: &SigningKey) -> [u8; 32] {
    key.verifying_key().to_bytes()
}

/// Reads a stored public key.
pub fn verifying_key(bytes: &[u8]) -> Option<VerifyingKey> {
    let array: [u8; 32] = bytes.try_into().ok()?;
    VerifyingKey::from_bytes(&array).ok()
}
