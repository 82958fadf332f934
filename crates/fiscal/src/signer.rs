//! Signature devices: what signs a fiscal receipt. A device signs the bytes it is given with
//! ECDSA on P-256 and SHA-256 (the JWS algorithm ES256) and names itself the way a receipt
//! must name it: a certificate's serial number, or the key id of a closed system.

use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};

/// Why a device did not sign.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The device is out of order (unplugged, broken, unreachable): receipts go on unsigned,
    /// marked as such, until it is back.
    #[error("the signature device failed: {0}")]
    Failed(String),
    /// The key or certificate is not one a receipt may be signed with.
    #[error("{0}")]
    Unsuitable(String),
}

/// A signature device.
pub trait Signer: Send + Sync + std::fmt::Debug {
    /// What names the device on a receipt: the signing certificate's serial number, or the key
    /// id under which a closed system registered the public key.
    fn key_id(&self) -> &str;

    /// The id of the certification service provider (`AT1`, …), or `AT0` for a closed system's
    /// key registered without a certificate.
    fn provider(&self) -> &str;

    /// The public key, uncompressed SEC1 (65 bytes): what a verifier checks against.
    fn public_key_sec1(&self) -> Vec<u8>;

    /// The public key as DER SubjectPublicKeyInfo (what a verifier is given for a closed
    /// system's key).
    fn public_key_der(&self) -> Result<Vec<u8>, SignerError> {
        p256::PublicKey::from_sec1_bytes(&self.public_key_sec1())
            .map_err(|e| SignerError::Unsuitable(format!("not a P-256 public key: {e}")))?
            .to_public_key_der()
            .map(|der| der.as_bytes().to_vec())
            .map_err(|e| SignerError::Unsuitable(e.to_string()))
    }

    /// The signing certificate (DER), when the device has one.
    fn certificate_der(&self) -> Option<Vec<u8>> {
        None
    }

    /// Signs `message`: ECDSA P-256 over its SHA-256, as 64 bytes r ‖ s.
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignerError>;
}

/// A P-256 key held in a file. **Not a legal signature device**: the RKSV asks for a
/// registered device (a smart card, an HSM, a cloud seal) whose key never leaves it. This one
/// exists for the demo chain and the tests, and its name says so on every receipt it signs.
/// (It signs with `ring`, whose P-256 is an order of magnitude faster here than the pure-Rust
/// one that reads and writes its file.)
pub struct SoftwareKeyNotALegalDevice {
    key: SigningKey,
    signer: ring::signature::EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
    key_id: String,
}

impl std::fmt::Debug for SoftwareKeyNotALegalDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareKeyNotALegalDevice")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SoftwareKeyNotALegalDevice {
    fn of(key: SigningKey, key_id: &str) -> Result<Self, SignerError> {
        let rng = ring::rand::SystemRandom::new();
        let public = key.verifying_key().to_sec1_point(false);
        let signer = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.to_bytes(),
            public.as_bytes(),
            &rng,
        )
        .map_err(|e| SignerError::Unsuitable(format!("the key: {e}")))?;
        Ok(Self {
            key,
            signer,
            rng,
            key_id: key_id.to_owned(),
        })
    }

    /// A new random key named `key_id`.
    pub fn generate(key_id: &str) -> Result<Self, SignerError> {
        let mut bytes = [0_u8; 32];
        loop {
            getrandom::fill(&mut bytes).map_err(|e| SignerError::Failed(e.to_string()))?;
            if let Ok(key) = SigningKey::from_slice(&bytes) {
                return Self::of(key, key_id);
            }
        }
    }

    /// The key in a PKCS#8 PEM file's text; anything but a P-256 key is refused.
    pub fn from_pkcs8_pem(pem: &str, key_id: &str) -> Result<Self, SignerError> {
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|e| {
            SignerError::Unsuitable(format!(
                "the key file does not hold a P-256 (prime256v1) private key in PKCS#8: {e}"
            ))
        })?;
        Self::of(key, key_id)
    }

    /// The key as a PKCS#8 PEM file's text (to keep it in a file).
    pub fn to_pkcs8_pem(&self) -> Result<String, SignerError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| SignerError::Failed(e.to_string()))
    }
}

impl Signer for SoftwareKeyNotALegalDevice {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn provider(&self) -> &str {
        "AT0"
    }

    fn public_key_sec1(&self) -> Vec<u8> {
        self.key
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec()
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignerError> {
        let signature = self
            .signer
            .sign(&self.rng, message)
            .map_err(|e| SignerError::Failed(e.to_string()))?;
        <[u8; 64]>::try_from(signature.as_ref())
            .map_err(|_| SignerError::Failed("not a 64-byte signature".into()))
    }
}

pub mod certified;
pub mod pkcs11;

pub use certified::Certified;
