//! Adyen's local message protection for the Terminal API: keys derived from a shared passphrase,
//! AES-256-CBC over the whole Sale-to-POI message and an HMAC-SHA256 over the plaintext.

use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit, block_padding::Pkcs7};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};
use serde_json::{Map, Value};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;
type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// The salt Adyen fixes for key derivation (`AdyenNexoV1Salt`).
const SALT: &[u8] = b"AdyenNexoV1Salt";
/// PBKDF2 rounds fixed by Adyen.
const ROUNDS: u32 = 4_000;
/// The only crypto version there is.
pub const ADYEN_CRYPTO_VERSION: u32 = 1;

/// Why a protected message was refused.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The envelope is not the JSON shape Adyen defines.
    #[error("protected message is malformed: {0}")]
    Malformed(&'static str),
    /// The message names another key than ours.
    #[error("message is protected with key `{identifier}` version {version}, expected ours")]
    WrongKey {
        /// Key identifier in the trailer.
        identifier: String,
        /// Key version in the trailer.
        version: u64,
    },
    /// Base64 could not be read.
    #[error("`{field}` is not base64")]
    Base64 {
        /// Which field.
        field: &'static str,
    },
    /// The ciphertext did not decrypt (wrong key or corrupted).
    #[error("message does not decrypt: bad padding or key")]
    Decrypt,
    /// The HMAC over the plaintext does not match: tampered, or another key.
    #[error("message HMAC does not verify")]
    Hmac,
    /// The decrypted body is not JSON.
    #[error("decrypted message is not JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The key material both sides derive from the passphrase.
#[derive(Clone)]
pub struct DerivedKey {
    hmac_key: [u8; 32],
    cipher_key: [u8; 32],
    iv: [u8; 16],
}

impl std::fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DerivedKey(..)")
    }
}

impl DerivedKey {
    /// PBKDF2-HMAC-SHA1 over the passphrase, salt `AdyenNexoV1Salt`, 4,000 rounds, 80 bytes split
    /// into HMAC key (32), AES key (32) and IV (16).
    pub fn derive(passphrase: &str) -> Self {
        let mut out = [0u8; 80];
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(passphrase.as_bytes(), SALT, ROUNDS, &mut out);
        let mut hmac_key = [0u8; 32];
        let mut cipher_key = [0u8; 32];
        let mut iv = [0u8; 16];
        hmac_key.copy_from_slice(&out[..32]);
        cipher_key.copy_from_slice(&out[32..64]);
        iv.copy_from_slice(&out[64..80]);
        Self {
            hmac_key,
            cipher_key,
            iv,
        }
    }

    fn iv_for(&self, nonce: &[u8; 16]) -> [u8; 16] {
        let mut iv = self.iv;
        for (b, n) in iv.iter_mut().zip(nonce) {
            *b ^= n;
        }
        iv
    }

    /// AES-256-CBC with PKCS#7 under IV ⊕ nonce.
    pub fn encrypt(&self, nonce: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
        Aes256CbcEnc::new(&self.cipher_key.into(), &self.iv_for(nonce).into())
            .encrypt_padded_vec::<Pkcs7>(plaintext)
    }

    /// The inverse of [`DerivedKey::encrypt`].
    pub fn decrypt(&self, nonce: &[u8; 16], ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Aes256CbcDec::new(&self.cipher_key.into(), &self.iv_for(nonce).into())
            .decrypt_padded_vec::<Pkcs7>(ciphertext)
            .map_err(|_| CryptoError::Decrypt)
    }

    /// HMAC-SHA256 over the plaintext.
    pub fn hmac(&self, plaintext: &[u8]) -> [u8; 32] {
        let mut mac = hmac_instance(&self.hmac_key);
        mac.update(plaintext);
        mac.finalize().into_bytes().into()
    }

    /// Checks an HMAC in constant time.
    pub fn verify_hmac(&self, plaintext: &[u8], tag: &[u8]) -> Result<(), CryptoError> {
        let mut mac = hmac_instance(&self.hmac_key);
        mac.update(plaintext);
        mac.verify_slice(tag).map_err(|_| CryptoError::Hmac)
    }
}

fn hmac_instance(key: &[u8; 32]) -> HmacSha256 {
    // HMAC takes keys of any length, so this never fails.
    #[allow(clippy::expect_used)]
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length")
}

/// The shared secret configured on the terminal (Customer Area → Terminal settings → Integrations).
#[derive(Clone)]
pub struct SecurityKey {
    /// `KeyIdentifier` in the trailer.
    pub identifier: String,
    /// `KeyVersion` in the trailer.
    pub version: u64,
    derived: DerivedKey,
}

impl std::fmt::Debug for SecurityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityKey")
            .field("identifier", &self.identifier)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A decrypted message with the header it travelled under.
#[derive(Debug, Clone)]
pub struct Opened {
    /// `SaleToPOIRequest` or `SaleToPOIResponse`.
    pub root: String,
    /// The clear message header of the envelope.
    pub header: Value,
    /// The decrypted message, `{"SaleToPOIRequest": {...}}` or the response.
    pub message: Value,
}

impl SecurityKey {
    /// Derives the key material once; derivation costs 4,000 PBKDF2 rounds.
    pub fn new(identifier: impl Into<String>, version: u64, passphrase: &str) -> Self {
        Self {
            identifier: identifier.into(),
            version,
            derived: DerivedKey::derive(passphrase),
        }
    }

    /// The derived key material.
    pub fn derived(&self) -> &DerivedKey {
        &self.derived
    }

    /// Protects a whole message (`{"SaleToPOIRequest": {...}}` or a response) with a fresh random
    /// nonce: the header stays in clear, the message travels as `NexoBlob`.
    pub fn seal(&self, message: &Value) -> Result<Value, CryptoError> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|_| CryptoError::Malformed("no randomness"))?;
        self.seal_with_nonce(message, &nonce)
    }

    /// [`SecurityKey::seal`] with a given nonce (tests and fault injection).
    pub fn seal_with_nonce(&self, message: &Value, nonce: &[u8; 16]) -> Result<Value, CryptoError> {
        let (root, body) = single_root(message)?;
        let header = body
            .get("MessageHeader")
            .cloned()
            .ok_or(CryptoError::Malformed("no MessageHeader"))?;
        let plaintext = serde_json::to_vec(message)?;
        Ok(self.seal_plaintext(root, header, &plaintext, nonce))
    }

    /// Protects an already serialised message (exact decimal amounts survive only this way) under
    /// `root` (`SaleToPOIRequest` or `SaleToPOIResponse`) with a fresh nonce.
    pub fn seal_bytes(
        &self,
        root: &str,
        header: Value,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|_| CryptoError::Malformed("no randomness"))?;
        Ok(serde_json::to_vec(
            &self.seal_plaintext(root, header, plaintext, &nonce),
        )?)
    }

    /// Opens an envelope given as bytes, returning the plaintext bytes for a typed parse.
    pub fn open_bytes(&self, envelope: &[u8]) -> Result<(Value, Vec<u8>), CryptoError> {
        let v: Value = serde_json::from_slice(envelope)?;
        let (_, body) = single_root(&v)?;
        let header = body.get("MessageHeader").cloned().unwrap_or(Value::Null);
        let plaintext = self.decrypt_body(body)?;
        Ok((header, plaintext))
    }

    fn seal_plaintext(
        &self,
        root: &str,
        header: Value,
        plaintext: &[u8],
        nonce: &[u8; 16],
    ) -> Value {
        let blob = self.derived.encrypt(nonce, plaintext);
        let tag = self.derived.hmac(plaintext);
        let trailer = serde_json::json!({
            "AdyenCryptoVersion": ADYEN_CRYPTO_VERSION,
            "KeyIdentifier": self.identifier,
            "KeyVersion": self.version,
            "Nonce": B64.encode(nonce),
            "Hmac": B64.encode(tag),
        });
        let mut inner = Map::new();
        inner.insert("MessageHeader".into(), header);
        inner.insert("NexoBlob".into(), Value::String(B64.encode(blob)));
        inner.insert("SecurityTrailer".into(), trailer);
        let mut outer = Map::new();
        outer.insert(root.to_owned(), Value::Object(inner));
        Value::Object(outer)
    }

    /// Checks the trailer names this key, decrypts the blob and verifies the HMAC over the
    /// plaintext before anything reads it.
    pub fn open(&self, envelope: &Value) -> Result<Opened, CryptoError> {
        let (root, body) = single_root(envelope)?;
        let plaintext = self.decrypt_body(body)?;
        let message: Value = serde_json::from_slice(&plaintext)?;
        Ok(Opened {
            root: root.to_owned(),
            header: body.get("MessageHeader").cloned().unwrap_or(Value::Null),
            message,
        })
    }

    fn decrypt_body(&self, body: &Map<String, Value>) -> Result<Vec<u8>, CryptoError> {
        let trailer = body
            .get("SecurityTrailer")
            .ok_or(CryptoError::Malformed("no SecurityTrailer"))?;
        let identifier = trailer
            .get("KeyIdentifier")
            .and_then(Value::as_str)
            .ok_or(CryptoError::Malformed("no KeyIdentifier"))?;
        let version = trailer
            .get("KeyVersion")
            .and_then(Value::as_u64)
            .ok_or(CryptoError::Malformed("no KeyVersion"))?;
        if identifier != self.identifier || version != self.version {
            return Err(CryptoError::WrongKey {
                identifier: identifier.to_owned(),
                version,
            });
        }
        let nonce = decode_field(trailer, "Nonce")?;
        let nonce: [u8; 16] = nonce
            .try_into()
            .map_err(|_| CryptoError::Malformed("Nonce is not 16 bytes"))?;
        let tag = decode_field(trailer, "Hmac")?;
        let blob = decode_field(body, "NexoBlob")?;
        let plaintext = self.derived.decrypt(&nonce, &blob)?;
        self.derived.verify_hmac(&plaintext, &tag)?;
        Ok(plaintext)
    }
}

fn single_root(v: &Value) -> Result<(&str, &Map<String, Value>), CryptoError> {
    let obj = v
        .as_object()
        .ok_or(CryptoError::Malformed("not an object"))?;
    let mut it = obj.iter();
    match (it.next(), it.next()) {
        (Some((k, Value::Object(body))), None)
            if k == "SaleToPOIRequest" || k == "SaleToPOIResponse" =>
        {
            Ok((k.as_str(), body))
        }
        _ => Err(CryptoError::Malformed(
            "expected exactly one of SaleToPOIRequest or SaleToPOIResponse",
        )),
    }
}

fn decode_field(obj: &impl FieldSource, field: &'static str) -> Result<Vec<u8>, CryptoError> {
    let text = obj
        .field(field)
        .ok_or(CryptoError::Malformed("missing base64 field"))?;
    // Published messages wrap long blobs over several lines; whitespace is not part of base64.
    let clean: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    B64.decode(clean.as_bytes())
        .map_err(|_| CryptoError::Base64 { field })
}

trait FieldSource {
    fn field(&self, name: &str) -> Option<&str>;
}

impl FieldSource for Value {
    fn field(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }
}

impl FieldSource for Map<String, Value> {
    fn field(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_tampering_is_refused() {
        let key = SecurityKey::new("K", 1, "secret passphrase");
        let msg =
            serde_json::json!({"SaleToPOIRequest": {"MessageHeader": {"ServiceID": "1"}, "X": 1}});
        let sealed = key.seal(&msg).unwrap();
        let opened = key.open(&sealed).unwrap();
        assert_eq!(opened.message, msg);
        assert_eq!(opened.root, "SaleToPOIRequest");

        let mut bad = sealed.clone();
        bad["SaleToPOIRequest"]["SecurityTrailer"]["Hmac"] = Value::String(B64.encode([0u8; 32]));
        assert!(matches!(key.open(&bad), Err(CryptoError::Hmac)));

        let other = SecurityKey::new("K", 1, "another passphrase");
        assert!(other.open(&sealed).is_err());
        let wrong_id = SecurityKey::new("L", 1, "secret passphrase");
        assert!(matches!(
            wrong_id.open(&sealed),
            Err(CryptoError::WrongKey { .. })
        ));
    }
}
