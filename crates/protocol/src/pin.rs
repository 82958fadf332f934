//! PIN hashing shared by HQ and the store node: argon2id with a random salt per hash and a
//! chain-wide secret pepper, so a stolen database alone does not let anyone test PINs offline.
//! A 4–8 digit PIN is still guessable online; the lockout in `domain::staff` guards that.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Why a PIN could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The pepper or parameters were refused.
    #[error("PIN hashing: {0}")]
    Hash(String),
    /// No randomness for the salt.
    #[error("PIN hashing: no random salt: {0}")]
    Random(String),
}

fn hasher(pepper: &[u8]) -> Result<Argon2<'_>, PinError> {
    Argon2::new_with_secret(
        pepper,
        Algorithm::Argon2id,
        Version::V0x13,
        Params::default(),
    )
    .map_err(|e| PinError::Hash(e.to_string()))
}

/// Hashes `pin` under `pepper` with a fresh random salt; the result is a PHC string.
pub fn hash(pepper: &[u8], pin: &str) -> Result<String, PinError> {
    let mut salt = [0_u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PinError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PinError::Hash(e.to_string()))?;
    hasher(pepper)?
        .hash_password(pin.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PinError::Hash(e.to_string()))
}

/// Whether `pin` matches the PHC string `stored` under `pepper`. A malformed hash matches
/// nothing.
pub fn verify(pepper: &[u8], pin: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    hasher(pepper).is_ok_and(|h| h.verify_password(pin.as_bytes(), &parsed).is_ok())
}

/// A public identity of `pepper`: the first 16 bytes of SHA-256 over a domain label and the
/// pepper, in hex. HQ publishes it with the staff so a store can see that its own pepper is not
/// the one the PIN hashes need, without the pepper itself ever leaving HQ.
pub fn pepper_id(pepper: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    digest.update(b"kassa-pin-pepper-id/1\0");
    digest.update(pepper);
    hex::encode(&digest.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_verifies_only_with_its_pepper_and_salts_differ() {
        let a = hash(b"pepper-one", "1234").unwrap_or_default();
        let b = hash(b"pepper-one", "1234").unwrap_or_default();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify(b"pepper-one", "1234", &a));
        assert!(!verify(b"pepper-one", "1235", &a));
        assert!(!verify(b"pepper-two", "1234", &a));
        assert!(!verify(b"pepper-one", "1234", "not a hash"));
    }
}
