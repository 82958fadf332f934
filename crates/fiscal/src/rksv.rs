//! Austria's Registrierkassensicherheitsverordnung (RKSV): every receipt of a register carries a
//! machine-readable code, signed by a registered signature device and chained to the receipt
//! before it, with the register's turnover counter encrypted under the register's AES key.
//!
//! One [`Register`] is one till (one Kassen-ID). [`Register::sign`] takes the receipt's number,
//! its local date and time, its kind and its gross amounts per RKSV tax column, and answers the
//! receipt as a compact JWS (what the DEP export holds) and as the QR code's text; the register's
//! state (turnover counter, the last receipt, whether the device failed) moves on only when it
//! answers. The formats follow the Detailspezifikation of the RKSV and the BMF's sample code: the
//! suite `R1` (ES256, SHA-256, eight bytes of the previous receipt's hash, an eight-byte
//! counter).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ctr::cipher::{KeyIvInit, StreamCipher};
use sha2::{Digest, Sha256};

use crate::signer::{Signer, SignerError};

pub mod columns;
pub mod dep;

pub use columns::{Column, ColumnTable};

/// The RKSV suite: signature ES256, chain hash SHA-256 cut to 8 bytes.
pub const SUITE: &str = "R1";
/// The JWS protected header of suite R1, base64url: `{"alg":"ES256"}`.
pub const JWS_HEADER: &str = "eyJhbGciOiJFUzI1NiJ9";
/// What stands in place of a signature when the device failed.
pub const DEVICE_FAILED: &str = "Sicherheitseinrichtung ausgefallen";
/// The bytes of the previous receipt's hash kept in the chain.
const CHAIN_BYTES: usize = 8;

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// The kinds of receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The first receipt of a register (Startbeleg): no amounts, signed.
    Start,
    /// A sale or a return (amounts negative).
    Standard,
    /// A cancellation of an earlier receipt (Stornobeleg): its amounts count, the counter field
    /// says `STO`.
    Storno,
    /// A training receipt: nothing counts, the counter field says `TRA`.
    Training,
    /// A receipt of no amounts: on demand, the month's and the year's receipt, the one after a
    /// device outage (Sammelbeleg) and the last one (Schlussbeleg).
    Null,
}

/// Gross amounts per RKSV column, in cents, in the code's order: Normal, Ermäßigt-1,
/// Ermäßigt-2, Null, Besonders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Amounts(pub [i64; 5]);

impl Amounts {
    /// The sum of the five columns (what the turnover counter adds).
    pub fn total(&self) -> Result<i64, RksvError> {
        self.0
            .iter()
            .try_fold(0_i64, |sum, a| sum.checked_add(*a))
            .ok_or(RksvError::Overflow)
    }

    fn is_zero(&self) -> bool {
        self.0.iter().all(|a| *a == 0)
    }
}

/// Why a receipt was not made; nothing changed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RksvError {
    /// A field of the receipt or the register is unusable.
    #[error("{field}: {reason}")]
    Invalid {
        /// Which.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The register's first receipt must be its start receipt, and only the first.
    #[error("{0}")]
    OutOfTurn(String),
    /// The receipt's time is before the last receipt's.
    #[error("the clock ran backwards: {at} is before the last receipt's {last}")]
    ClockBackwards {
        /// This receipt's time.
        at: String,
        /// The last receipt's time.
        last: String,
    },
    /// The turnover counter would not fit its bytes.
    #[error("the turnover counter overflows")]
    Overflow,
    /// The device works again after an outage: the first signed receipt must be a null
    /// receipt (Sammelbeleg) before anything else is signed.
    #[error("the signature device works again: a null receipt (Sammelbeleg) comes first")]
    SammelbelegDue,
    /// The device refused the key or certificate (not an outage).
    #[error("signature device: {0}")]
    Device(String),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> RksvError {
    RksvError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A receipt to sign.
#[derive(Debug, Clone)]
pub struct Receipt<'a> {
    /// Its number (Belegnummer), unique within the register.
    pub number: &'a str,
    /// When, in the register's time zone: the code writes the local date and time; the
    /// instant orders receipts (the hour a daylight-saving change repeats does not run back).
    pub at: jiff::Zoned,
    /// What kind.
    pub kind: Kind,
    /// Gross amounts per column, in cents.
    pub amounts: Amounts,
}

/// A signed (or, during an outage, marked) receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The machine-readable code without the signature: the JWS payload.
    pub machine_code: String,
    /// The compact JWS: what the DEP export holds and the next receipt chains to.
    pub jws: String,
    /// The QR code's text: the machine-readable code, `_`, and the signature in base64.
    pub qr: String,
    /// Whether the device failed: the receipt carries [`DEVICE_FAILED`] in place of a signature.
    pub device_failed: bool,
}

/// What a register keeps between receipts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterState {
    /// The turnover counter, in cents.
    pub turnover: i64,
    /// The last receipt's compact JWS (none before the start receipt).
    pub last_jws: Option<String>,
    /// When the last receipt was made.
    pub last_at: Option<jiff::Zoned>,
}

/// One register (Kassen-ID) with its AES key and its state.
#[derive(Clone)]
pub struct Register {
    id: String,
    key: [u8; 32],
    counter_bytes: usize,
    state: RegisterState,
}

impl std::fmt::Debug for Register {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Register")
            .field("id", &self.id)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A field of the code may not hold the separator, and must say something.
fn check_text(field: &'static str, value: &str) -> Result<(), RksvError> {
    if value.is_empty() {
        return Err(invalid(field, "required"));
    }
    if value.contains('_') || value.chars().any(char::is_control) {
        return Err(invalid(field, "no `_` and no control characters"));
    }
    Ok(())
}

impl Register {
    /// A register `id` with the AES key given in base64, before its start receipt.
    pub fn new(id: &str, aes_key_base64: &str) -> Result<Self, RksvError> {
        Self::resume(
            id,
            aes_key_base64,
            RegisterState {
                turnover: 0,
                last_jws: None,
                last_at: None,
            },
        )
    }

    /// A register `id` going on from `state` (as kept after its last receipt).
    pub fn resume(id: &str, aes_key_base64: &str, state: RegisterState) -> Result<Self, RksvError> {
        check_text("register", id)?;
        let key = STANDARD
            .decode(aes_key_base64)
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| invalid("aes_key", "32 bytes (AES-256) in base64"))?;
        Ok(Self {
            id: id.to_owned(),
            key,
            counter_bytes: 8,
            state,
        })
    }

    /// The register's id (Kassen-ID).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The register's AES key, base64 (what the cryptographic material container holds).
    pub fn aes_key_base64(&self) -> String {
        STANDARD.encode(self.key)
    }

    /// The state after the last receipt.
    pub fn state(&self) -> &RegisterState {
        &self.state
    }

    /// Whether the last receipt was made while the device had failed: the next signed receipt
    /// must be a Sammelbeleg (a null receipt).
    pub fn in_outage(&self) -> bool {
        self.state.last_jws.as_deref().is_some_and(device_failed)
    }

    /// Signs `receipt` with `device`; a device that fails ([`SignerError::Failed`]) marks the
    /// receipt instead — a sale is never refused for it. The start receipt must be signed.
    pub fn sign(
        &mut self,
        receipt: &Receipt<'_>,
        device: &dyn Signer,
    ) -> Result<Signed, RksvError> {
        check_text("number", receipt.number)?;
        check_text("key_id", device.key_id())?;
        check_text("provider", device.provider())?;
        match (receipt.kind, &self.state.last_jws) {
            (Kind::Start, Some(_)) => {
                return Err(RksvError::OutOfTurn(format!(
                    "register {} has its start receipt already",
                    self.id
                )));
            }
            (kind, None) if kind != Kind::Start => {
                return Err(RksvError::OutOfTurn(format!(
                    "register {} has no start receipt yet: it comes first",
                    self.id
                )));
            }
            _ => {}
        }
        if matches!(receipt.kind, Kind::Start | Kind::Null) && !receipt.amounts.is_zero() {
            return Err(invalid("amounts", "a start or null receipt has no amounts"));
        }
        if let Some(last) = &self.state.last_at {
            if receipt.at.timestamp() < last.timestamp() {
                return Err(RksvError::ClockBackwards {
                    at: receipt.at.to_string(),
                    last: last.to_string(),
                });
            }
        }
        let turnover = match receipt.kind {
            Kind::Training => self.state.turnover,
            _ => self
                .state
                .turnover
                .checked_add(receipt.amounts.total()?)
                .ok_or(RksvError::Overflow)?,
        };
        let counter = match receipt.kind {
            Kind::Storno => STANDARD.encode("STO"),
            Kind::Training => STANDARD.encode("TRA"),
            _ => encrypt_counter(
                &self.key,
                &self.id,
                receipt.number,
                turnover,
                self.counter_bytes,
            )?,
        };
        let chain = chain_value(self.state.last_jws.as_deref(), &self.id);
        let machine_code = format!(
            "_{SUITE}-{}_{}_{}_{}_{}_{counter}_{}_{chain}",
            device.provider(),
            self.id,
            receipt.number,
            time_text(receipt.at.datetime()),
            receipt
                .amounts
                .0
                .iter()
                .map(|a| amount_text(*a))
                .collect::<Vec<_>>()
                .join("_"),
            device.key_id(),
        );
        let signing_input = format!("{JWS_HEADER}.{}", URL_SAFE_NO_PAD.encode(&machine_code));
        let (signature, failed) = match device.sign(signing_input.as_bytes()) {
            Ok(signature) => (signature.to_vec(), false),
            Err(SignerError::Failed(_)) if receipt.kind != Kind::Start => {
                (DEVICE_FAILED.as_bytes().to_vec(), true)
            }
            Err(e) => return Err(RksvError::Device(e.to_string())),
        };
        if !failed && self.in_outage() && receipt.kind != Kind::Null {
            return Err(RksvError::SammelbelegDue);
        }
        let jws = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(&signature));
        let qr = format!("{machine_code}_{}", STANDARD.encode(&signature));
        self.state = RegisterState {
            turnover,
            last_jws: Some(jws.clone()),
            last_at: Some(receipt.at.clone()),
        };
        Ok(Signed {
            machine_code,
            jws,
            qr,
            device_failed: failed,
        })
    }
}

/// A new random AES-256 key for a register, in base64.
pub fn new_aes_key() -> Result<String, RksvError> {
    let mut key = [0_u8; 32];
    getrandom::fill(&mut key).map_err(|e| RksvError::Device(e.to_string()))?;
    Ok(STANDARD.encode(key))
}

/// The QR code's text of a receipt's compact JWS: the code, `_`, the signature (or the
/// device-failed marker) in base64.
pub fn qr_text(jws: &str) -> Option<String> {
    let mut parts = jws.split('.');
    let (_, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    let code = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    Some(format!("{code}_{}", STANDARD.encode(signature)))
}

/// Whether a compact JWS carries the device-failed marker in place of a signature.
pub fn device_failed(jws: &str) -> bool {
    jws.rsplit('.')
        .next()
        .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
        .is_some_and(|s| s == DEVICE_FAILED.as_bytes())
}

/// `Sig-Voriger-Beleg`: the first eight bytes of SHA-256 over the previous receipt's compact
/// JWS (over the register's id for the start receipt), in base64.
pub fn chain_value(previous_jws: Option<&str>, register: &str) -> String {
    let digest = Sha256::digest(previous_jws.unwrap_or(register).as_bytes());
    STANDARD.encode(&digest[..CHAIN_BYTES])
}

/// The turnover counter encrypted with AES-256 in ICM (counter) mode: the IV is the first 16
/// bytes of SHA-256 over the register's id and the receipt's number, the counter is `bytes`
/// long, big-endian two's complement; answered in base64.
pub fn encrypt_counter(
    key: &[u8; 32],
    register: &str,
    number: &str,
    turnover: i64,
    bytes: usize,
) -> Result<String, RksvError> {
    if !(5..=8).contains(&bytes) {
        return Err(RksvError::Overflow);
    }
    let full = turnover.to_be_bytes();
    let cut = full.len() - bytes;
    // Read back as a reader does (sign-extended from the bytes kept), it must be the same.
    let mut back = [if full[cut] & 0x80 != 0 { 0xff } else { 0 }; 8];
    back[cut..].copy_from_slice(&full[cut..]);
    if i64::from_be_bytes(back) != turnover {
        return Err(RksvError::Overflow);
    }
    let mut block = full[cut..].to_vec();
    let digest = Sha256::digest(format!("{register}{number}").as_bytes());
    let mut iv = [0_u8; 16];
    iv.copy_from_slice(&digest[..16]);
    let mut cipher = Aes256Ctr::new(key.into(), &iv.into());
    cipher.apply_keystream(&mut block);
    Ok(STANDARD.encode(block))
}

/// A local time as the code writes it: `2016-03-11T03:57:08`.
pub fn time_text(at: jiff::civil::DateTime) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Cents as the code writes them: `12,34`, `-0,50`, `0,00`.
pub fn amount_text(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{},{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_written_with_a_comma_and_two_decimals() {
        assert_eq!(amount_text(0), "0,00");
        assert_eq!(amount_text(5), "0,05");
        assert_eq!(amount_text(123_456), "1234,56");
        assert_eq!(amount_text(-50), "-0,50");
        assert_eq!(amount_text(i64::MIN), "-92233720368547758,08");
    }

    #[test]
    fn a_counter_that_does_not_fit_its_bytes_is_refused() {
        let key = [7_u8; 32];
        assert!(encrypt_counter(&key, "K", "1", (1 << 39) - 1, 5).is_ok());
        assert_eq!(
            encrypt_counter(&key, "K", "1", 1 << 39, 5),
            Err(RksvError::Overflow)
        );
        assert!(encrypt_counter(&key, "K", "1", -(1 << 39), 5).is_ok());
        assert_eq!(
            encrypt_counter(&key, "K", "1", 0, 4),
            Err(RksvError::Overflow)
        );
    }
}
