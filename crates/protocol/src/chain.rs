//! The per-terminal hash chain and its signatures, defined once for the node that writes it and
//! HQ and auditors who check it: hash(n) = SHA-256(hash(n−1) ‖ canonical bytes of event n), with
//! 32 zero bytes before the first event, and an Ed25519 signature by the terminal over hash(n).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// A link hash.
pub type Hash = [u8; 32];

/// The hash before a terminal's first event.
pub const GENESIS: Hash = [0; 32];

/// The hash of an event given the previous link and the event's canonical bytes.
pub fn link(previous: &Hash, canonical: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(canonical);
    hasher.finalize().into()
}

/// The terminal's signature over a link hash.
pub fn sign(key: &SigningKey, hash: &Hash) -> [u8; 64] {
    key.sign(hash).to_bytes()
}

/// Checks a signature over a link hash (strict verification: no malleable signatures).
pub fn verify(key: &VerifyingKey, hash: &Hash, signature: &[u8]) -> bool {
    let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    key.verify_strict(hash, &Signature::from_bytes(&bytes))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_pinned() {
        // SHA-256 of 32 zero bytes followed by "a", computed independently, so the definition
        // cannot drift without this test noticing.
        let hex: String = link(&GENESIS, b"a")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "41a0370c3d9f42773a59e8e01651911cf43b1e3f66944cbb690029debc4eb647"
        );
    }

    #[test]
    fn signatures_verify_only_for_their_hash_and_key() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let hash = link(&GENESIS, b"event");
        let signature = sign(&key, &hash);
        assert!(verify(&key.verifying_key(), &hash, &signature));
        assert!(!verify(&other.verifying_key(), &hash, &signature));
        assert!(!verify(
            &key.verifying_key(),
            &link(&hash, b"x"),
            &signature
        ));
        assert!(!verify(&key.verifying_key(), &hash, &signature[..63]));
    }
}
