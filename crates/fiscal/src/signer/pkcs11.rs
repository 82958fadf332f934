//! A signature device reached through PKCS#11, the interface of smart cards and hardware
//! security modules: the key never leaves the token, which is handed the SHA-256 digest and
//! answers ECDSA's r ‖ s. A token is found by its label and opened with the user PIN; each key
//! by the label of its key pair. A key that is not P-256 is refused when it is opened; a token
//! that stops answering is an outage ([`SignerError::Failed`]), never a refused sale.

use std::path::Path;
use std::sync::{Arc, Mutex};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use sha2::{Digest, Sha256};

use super::{Signer, SignerError};

/// The DER encoding of the named curve P-256 (prime256v1), as `CKA_EC_PARAMS` holds it.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn unsuitable(what: impl std::fmt::Display) -> SignerError {
    SignerError::Unsuitable(what.to_string())
}

/// An open, logged-in session with one token.
pub struct Token {
    session: Arc<Mutex<Session>>,
    label: String,
    // Keeps the module loaded for as long as the session lives.
    _context: Pkcs11,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Loads the PKCS#11 `module` (a `.so`), finds the token labelled `label` and logs in
    /// with the user `pin`.
    pub fn open(module: &Path, label: &str, pin: &str) -> Result<Self, SignerError> {
        let context = Pkcs11::new(module)
            .map_err(|e| unsuitable(format!("PKCS#11 module {}: {e}", module.display())))?;
        context
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| unsuitable(format!("PKCS#11 module {}: {e}", module.display())))?;
        let mut found = None;
        for slot in context.get_slots_with_token().map_err(unsuitable)? {
            let info = context.get_token_info(slot).map_err(unsuitable)?;
            if info.label().trim_end() == label {
                found = Some(slot);
                break;
            }
        }
        let slot = found.ok_or_else(|| unsuitable(format!("no token labelled `{label}`")))?;
        let session = context.open_ro_session(slot).map_err(unsuitable)?;
        session
            .login(UserType::User, Some(&AuthPin::new(pin.into())))
            .map_err(|e| unsuitable(format!("token `{label}`: the PIN was refused: {e}")))?;
        Ok(Self {
            session: Arc::new(Mutex::new(session)),
            label: label.to_owned(),
            _context: context,
        })
    }

    /// The device of the key pair labelled `key_label`, named `key_id` on receipts (`AT0`, a
    /// closed system's key). A key that is not P-256, or a pair that is not whole, is refused.
    pub fn device(&self, key_label: &str, key_id: &str) -> Result<Pkcs11Device, SignerError> {
        let session = self
            .session
            .lock()
            .map_err(|_| SignerError::Failed("the token's session was poisoned".into()))?;
        let find = |class: ObjectClass| -> Result<ObjectHandle, SignerError> {
            let found = session
                .find_objects(&[
                    Attribute::Class(class),
                    Attribute::KeyType(KeyType::EC),
                    Attribute::Label(key_label.as_bytes().to_vec()),
                ])
                .map_err(unsuitable)?;
            match found[..] {
                [one] => Ok(one),
                [] => Err(unsuitable(format!(
                    "token `{}` has no EC key `{key_label}`",
                    self.label
                ))),
                _ => Err(unsuitable(format!(
                    "token `{}` has several keys `{key_label}`",
                    self.label
                ))),
            }
        };
        let private = find(ObjectClass::PRIVATE_KEY)?;
        let public = find(ObjectClass::PUBLIC_KEY)?;
        let attributes = session
            .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
            .map_err(unsuitable)?;
        let mut params = None;
        let mut point = None;
        for attribute in attributes {
            match attribute {
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        if params.as_deref() != Some(&P256_PARAMS[..]) {
            return Err(unsuitable(format!(
                "key `{key_label}` is not on the curve P-256 (prime256v1), which the RKSV's ES256 needs"
            )));
        }
        // CKA_EC_POINT is the point wrapped in a DER OCTET STRING (04 41 …).
        let point = point.unwrap_or_default();
        let sec1 = match point.as_slice() {
            [0x04, 0x41, rest @ ..] if rest.len() == 65 => rest.to_vec(),
            raw if raw.len() == 65 => raw.to_vec(),
            _ => {
                return Err(unsuitable(format!(
                    "key `{key_label}`: its public point is unreadable"
                )));
            }
        };
        p256::PublicKey::from_sec1_bytes(&sec1)
            .map_err(|e| unsuitable(format!("key `{key_label}`: {e}")))?;
        Ok(Pkcs11Device {
            session: Arc::clone(&self.session),
            key: private,
            public: sec1,
            key_id: key_id.to_owned(),
        })
    }
}

/// One key pair on a token, as a signature device.
pub struct Pkcs11Device {
    session: Arc<Mutex<Session>>,
    key: ObjectHandle,
    public: Vec<u8>,
    key_id: String,
}

impl std::fmt::Debug for Pkcs11Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Device")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Signer for Pkcs11Device {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn provider(&self) -> &str {
        "AT0"
    }

    fn public_key_sec1(&self) -> Vec<u8> {
        self.public.clone()
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignerError> {
        let digest = Sha256::digest(message);
        let session = self
            .session
            .lock()
            .map_err(|_| SignerError::Failed("the token's session was poisoned".into()))?;
        let signature = session
            .sign(&Mechanism::Ecdsa, self.key, &digest)
            .map_err(|e| SignerError::Failed(e.to_string()))?;
        <[u8; 64]>::try_from(signature.as_slice()).map_err(|_| {
            SignerError::Failed(format!(
                "the token answered {} bytes, not r ‖ s",
                signature.len()
            ))
        })
    }
}
