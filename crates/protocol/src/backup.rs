//! Store backups sent to HQ: the node's scheduled backups, encrypted at the store to the chain's
//! recovery key (HQ keeps bytes it cannot read: a backup holds the tills' signing keys), sent in
//! pieces that resume where HQ's copy ends.
//!
//! `PUT /v1/sync/backups/{name}?offset=O&size=S&sha256=H` with the store's credential and a
//! piece of at most [`MAX_PIECE_BYTES`] as the body: HQ appends it when `O` is where its copy
//! ends and answers [`Received`]; a piece from elsewhere is refused (`409 offset_mismatch`), and
//! an empty body only asks where HQ's copy ends (the node's first request, and after a refusal).
//! When the last piece arrives HQ checks the whole file against `H` and keeps it.

use serde::{Deserialize, Serialize};

/// How a backup file sent to HQ ends: an age file (age-encryption.org/v1) of a
/// `kassa-store-backup/1` file.
pub const SUFFIX: &str = ".kassa-backup.age";
/// The pieces a node sends.
pub const PIECE_BYTES: usize = 1024 * 1024;
/// The largest piece HQ takes.
pub const MAX_PIECE_BYTES: u64 = 4 * 1024 * 1024;
/// The largest backup HQ takes.
pub const MAX_BACKUP_BYTES: u64 = 64 * 1024 * 1024 * 1024;
/// The longest name.
const MAX_NAME: usize = 160;

/// A piece's place in its backup (the query of the `PUT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Piece {
    /// Where the piece starts in the file.
    pub offset: u64,
    /// The whole file's size.
    pub size: u64,
    /// The whole file's SHA-256 (64 lowercase hex digits).
    pub sha256: String,
}

/// How much of a backup HQ holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    /// Bytes held from the start.
    pub received: u64,
    /// Whether the file is whole and kept.
    pub complete: bool,
}

/// Why a backup's name or piece is refused: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The field at fault.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

/// Checks a backup's name (a file name ending in [`SUFFIX`], of letters, digits, `.`, `-`,
/// `_`, not starting with a dot) and its piece.
pub fn check(name: &str, piece: &Piece) -> Result<(), Refused> {
    let refused = |field, reason: String| Err(Refused { field, reason });
    if name.len() > MAX_NAME
        || name.starts_with('.')
        || !name.ends_with(SUFFIX)
        || name.len() == SUFFIX.len()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return refused(
            "name",
            format!(
                "a backup's name is a file name of letters, digits, `.`, `-` and `_` (at most {MAX_NAME}) ending in `{SUFFIX}`"
            ),
        );
    }
    if piece.size == 0 || piece.size > MAX_BACKUP_BYTES {
        return refused(
            "size",
            format!("a backup has 1 to {MAX_BACKUP_BYTES} bytes"),
        );
    }
    if piece.sha256.len() != 64
        || !piece
            .sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return refused(
            "sha256",
            "the file's SHA-256 is 64 lowercase hex digits".into(),
        );
    }
    if piece.offset > piece.size {
        return refused(
            "offset",
            format!("the piece starts past the file's {} bytes", piece.size),
        );
    }
    Ok(())
}

/// A file's SHA-256 (lowercase hex) and size, read in pieces.
pub fn sha256_of(file: &std::path::Path) -> std::io::Result<(String, u64)> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let mut input = std::fs::File::open(file)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = input.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(offset: u64, size: u64, sha256: &str) -> Piece {
        Piece {
            offset,
            size,
            sha256: sha256.into(),
        }
    }

    #[test]
    fn names_and_pieces_are_checked_field_by_field() {
        let sum = "ab".repeat(32);
        let ok = piece(0, 10, &sum);
        assert_eq!(
            check("vienna-01-20261206T010203.004Z.kassa-backup.age", &ok),
            Ok(())
        );
        for name in [
            "../x.kassa-backup.age",
            ".hidden.kassa-backup.age",
            "a/b.kassa-backup.age",
            "plain.kassa-backup",
            ".kassa-backup.age",
            "",
        ] {
            assert_eq!(check(name, &ok).unwrap_err().field, "name", "{name}");
        }
        let name = "s.kassa-backup.age";
        assert_eq!(check(name, &piece(0, 0, &sum)).unwrap_err().field, "size");
        assert_eq!(
            check(name, &piece(0, MAX_BACKUP_BYTES + 1, &sum))
                .unwrap_err()
                .field,
            "size"
        );
        assert_eq!(
            check(name, &piece(0, 10, &"AB".repeat(32)))
                .unwrap_err()
                .field,
            "sha256"
        );
        assert_eq!(
            check(name, &piece(0, 10, "ab")).unwrap_err().field,
            "sha256"
        );
        assert_eq!(
            check(name, &piece(11, 10, &sum)).unwrap_err().field,
            "offset"
        );
        assert_eq!(check(name, &piece(10, 10, &sum)), Ok(()));
    }
}
