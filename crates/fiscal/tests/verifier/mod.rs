//! An RKSV verifier written from the public description of the formats (the RKSV's
//! Detailspezifikation and the BMF's notes), sharing nothing with `fiscal::rksv` but the
//! formats: ECDSA comes from the pure-Rust `p256` (the devices sign with `ring` or a token),
//! SHA-256 from `ring` (`fiscal` hashes with `sha2`), base64 from `data-encoding`, the counter
//! mode is done here over a bare AES block, and the export is read as plain JSON. It reads a DEP
//! export and its cryptographic material container and names the first receipt that is wrong.

use std::collections::BTreeMap;

use aes::cipher::{BlockCipherEncrypt, KeyInit};
use data_encoding::{BASE64, BASE64URL_NOPAD};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::Value;

/// What a verified export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Receipts read.
    pub receipts: usize,
    /// Receipts whose device had failed.
    pub unsigned: usize,
    /// The turnover counter after the last receipt, in cents.
    pub turnover: i64,
    /// The sum of the amounts of every standard and storno receipt, in cents.
    pub sum: i64,
}

/// The first thing found wrong: which receipt (its position from 1, and its number when it
/// could be read) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Position in the export, from 1.
    pub position: usize,
    /// The receipt's number, when its code could be read.
    pub number: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "receipt {} ({}): {}",
            self.position,
            self.number.as_deref().unwrap_or("unreadable"),
            self.reason
        )
    }
}

const HEADER: &str = "eyJhbGciOiJFUzI1NiJ9";
const FAILED: &[u8] = b"Sicherheitseinrichtung ausgefallen";
/// A P-256 SubjectPublicKeyInfo is this prefix and the 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// `12,34` or `-0,50` in cents.
fn cents(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = digits.split_once(',')?;
    if whole.is_empty()
        || frac.len() != 2
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let value = whole.parse::<i64>().ok()?.checked_mul(100)? + frac.parse::<i64>().ok()?;
    Some(if negative { -value } else { value })
}

/// The turnover counter decrypted: AES-256 of the IV (SHA-256 of register id and receipt
/// number, first 16 bytes) is the key stream of the first block; the counter is big-endian
/// two's complement of the ciphertext's length.
fn decrypt_counter(key: &[u8], register: &str, number: &str, field: &str) -> Option<i64> {
    let cipher = aes::Aes256::new_from_slice(key).ok()?;
    let bytes = BASE64.decode(field.as_bytes()).ok()?;
    if !(5..=8).contains(&bytes.len()) {
        return None;
    }
    let iv = sha256(format!("{register}{number}").as_bytes());
    let mut block = aes::Block::try_from(&iv[..16]).ok()?;
    cipher.encrypt_block(&mut block);
    let plain: Vec<u8> = bytes.iter().zip(block.iter()).map(|(c, k)| c ^ k).collect();
    let fill = if plain[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut full = [fill; 8];
    full[8 - plain.len()..].copy_from_slice(&plain);
    Some(i64::from_be_bytes(full))
}

fn public_keys(material: &Value) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let map = material["certificateOrPublicKeyMap"]
        .as_object()
        .ok_or("the container has no certificateOrPublicKeyMap")?;
    let mut keys = BTreeMap::new();
    for (id, device) in map {
        let der = device["signatureCertificateOrPublicKey"]
            .as_str()
            .and_then(|s| BASE64.decode(s.as_bytes()).ok())
            .ok_or(format!("device {id}: its key is not base64"))?;
        let spki = match device["signatureDeviceType"].as_str() {
            Some("PUBLIC_KEY") => der.as_slice(),
            // A certificate holds its key as the same SubjectPublicKeyInfo: found by its
            // P-256 prefix (a certificate for another curve has none).
            Some("CERTIFICATE") => der
                .windows(P256_SPKI_PREFIX.len())
                .position(|w| w == P256_SPKI_PREFIX)
                .and_then(|at| der.get(at..at + 91))
                .ok_or(format!("device {id}: its certificate holds no P-256 key"))?,
            other => return Err(format!("device {id}: unknown device type {other:?}")),
        };
        if spki.len() != 91 || spki[..26] != P256_SPKI_PREFIX {
            return Err(format!("device {id}: not a P-256 public key"));
        }
        keys.insert(id.clone(), spki[26..].to_vec());
    }
    Ok(keys)
}

/// Checks a register's DEP export (`dep`, JSON text) against its container (`material`, JSON
/// text): every receipt's code, the chain from the register's id on, each signature, the
/// turnover counter, the order of time, the start receipt, and a null receipt after every
/// outage.
pub fn verify(dep: &str, material: &str) -> Result<Report, Finding> {
    let whole = |reason: String| Finding {
        position: 0,
        number: None,
        reason,
    };
    let dep: Value = serde_json::from_str(dep).map_err(|e| whole(format!("the export: {e}")))?;
    let material: Value =
        serde_json::from_str(material).map_err(|e| whole(format!("the container: {e}")))?;
    let key = material["base64AESKey"]
        .as_str()
        .and_then(|k| BASE64.decode(k.as_bytes()).ok())
        .filter(|k| k.len() == 32)
        .ok_or_else(|| whole("the container's AES key is not 32 bytes of base64".into()))?;
    let keys = public_keys(&material).map_err(whole)?;
    let groups = dep["Belege-Gruppe"]
        .as_array()
        .ok_or_else(|| whole("the export has no Belege-Gruppe".into()))?;
    let mut receipts: Vec<&str> = Vec::new();
    for group in groups {
        let list = group["Belege-kompakt"]
            .as_array()
            .ok_or_else(|| whole("a group has no Belege-kompakt".into()))?;
        for r in list {
            receipts.push(
                r.as_str()
                    .ok_or_else(|| whole("a receipt is not a string".into()))?,
            );
        }
    }
    let mut report = Report {
        receipts: 0,
        unsigned: 0,
        turnover: 0,
        sum: 0,
    };
    let mut register: Option<String> = None;
    let mut previous: Option<&str> = None;
    let mut last_time = String::new();
    let mut outage = false;
    for (i, jws) in receipts.iter().enumerate() {
        let position = i + 1;
        let mut number = None;
        let fail = |number: &Option<String>, reason: String| Finding {
            position,
            number: number.clone(),
            reason,
        };
        let parts: Vec<&str> = jws.split('.').collect();
        let [header, payload, signature] = parts[..] else {
            return Err(fail(&number, "not a compact JWS".into()));
        };
        if header != HEADER {
            return Err(fail(&number, format!("header `{header}` is not ES256")));
        }
        let code = BASE64URL_NOPAD
            .decode(payload.as_bytes())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| fail(&number, "the payload is not base64url text".into()))?;
        let fields: Vec<&str> = code.split('_').collect();
        if fields.len() != 13 || !fields[0].is_empty() {
            return Err(fail(
                &number,
                "the code is not `_` and its 12 fields".into(),
            ));
        }
        number = Some(fields[3].to_owned());
        let suite = fields[1];
        if !suite.starts_with("R1-AT") || suite[5..].parse::<u8>().is_err() {
            return Err(fail(&number, format!("suite `{suite}` is not R1-AT<n>")));
        }
        let id = fields[2];
        match &register {
            None => register = Some(id.to_owned()),
            Some(r) if r != id => {
                return Err(fail(
                    &number,
                    format!("register `{id}` in an export of `{r}`"),
                ));
            }
            Some(_) => {}
        }
        let time = fields[4];
        if jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M:%S", time).is_err() {
            return Err(fail(&number, format!("time `{time}` is not a local time")));
        }
        if time < last_time.as_str() {
            return Err(fail(
                &number,
                format!("time {time} is before the previous receipt's {last_time}"),
            ));
        }
        last_time = time.to_owned();
        let mut amounts = [0_i64; 5];
        for (slot, text) in amounts.iter_mut().zip(&fields[5..10]) {
            *slot =
                cents(text).ok_or_else(|| fail(&number, format!("amount `{text}` is not 0,00")))?;
        }
        let sum: i64 = amounts.iter().sum();
        let chain_input = previous.unwrap_or(id);
        let chain = BASE64.encode(&sha256(chain_input.as_bytes())[..8]);
        if fields[12] != chain {
            return Err(fail(
                &number,
                "Sig-Voriger-Beleg does not chain to the receipt before".into(),
            ));
        }
        let signature = BASE64URL_NOPAD
            .decode(signature.as_bytes())
            .map_err(|_| fail(&number, "the signature is not base64url".into()))?;
        let failed = signature == FAILED;
        if failed {
            report.unsigned += 1;
        } else {
            let key = keys.get(fields[11]).ok_or_else(|| {
                fail(&number, format!("no key `{}` in the container", fields[11]))
            })?;
            let verifies = VerifyingKey::from_sec1_bytes(key)
                .ok()
                .zip(Signature::from_slice(&signature).ok())
                .is_some_and(|(key, signature)| {
                    key.verify(format!("{header}.{payload}").as_bytes(), &signature)
                        .is_ok()
                });
            if !verifies {
                return Err(fail(&number, "the signature does not verify".into()));
            }
        }
        let zero = amounts.iter().all(|a| *a == 0);
        if position == 1 && (!zero || failed || previous.is_some()) {
            return Err(fail(
                &number,
                "the first receipt must be a signed start receipt of no amounts".into(),
            ));
        }
        if outage && !failed && !zero {
            return Err(fail(
                &number,
                "the first signed receipt after an outage must be a null receipt".into(),
            ));
        }
        outage = failed;
        match fields[10] {
            // Storno: counts, the counter is not shown.
            "U1RP" => {
                report.turnover += sum;
                report.sum += sum;
            }
            // Training: counts nothing.
            "VFJB" => {}
            field => {
                report.turnover += sum;
                report.sum += sum;
                let shown = decrypt_counter(&key, id, fields[3], field)
                    .ok_or_else(|| fail(&number, "the turnover counter does not decrypt".into()))?;
                if shown != report.turnover {
                    return Err(fail(
                        &number,
                        format!(
                            "the turnover counter says {shown}, the receipts add up to {}",
                            report.turnover
                        ),
                    ));
                }
            }
        }
        report.receipts += 1;
        previous = Some(jws);
    }
    if report.receipts == 0 {
        return Err(whole("the export holds no receipt".into()));
    }
    Ok(report)
}

/// The receipts of a DEP export, each its compact JWS, in order (none when it cannot be read).
#[allow(dead_code)] // Not every test crate that includes the verifier lists receipts.
pub fn receipts(dep: &str) -> Vec<String> {
    let dep: Value = serde_json::from_str(dep).unwrap_or(Value::Null);
    dep["Belege-Gruppe"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["Belege-kompakt"].as_array())
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect()
}
