//! What the tax office reads: a register's receipts as the DEP export of the RKSV
//! (`Belege-Gruppe`, a group per signing certificate, each receipt as its compact JWS), and the
//! cryptographic material container a verifier reads beside it (the register's AES key and each
//! device's certificate or public key, by the id the receipts name it with).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::signer::{Signer, SignerError};

/// The DEP export (DEP7 format) of one register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dep {
    /// Groups of receipts, one per run of receipts signed under one certificate.
    #[serde(rename = "Belege-Gruppe")]
    pub groups: Vec<Group>,
}

/// Receipts signed under one certificate (or, in a closed system, one public key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The signing certificate, base64 DER; empty for a closed system's key.
    #[serde(rename = "Signaturzertifikat")]
    pub certificate: String,
    /// The certificate's chain up to the certification authority, base64 DER each.
    #[serde(rename = "Zertifizierungsstellen")]
    pub chain: Vec<String>,
    /// The receipts, each its compact JWS, in order.
    #[serde(rename = "Belege-kompakt")]
    pub receipts: Vec<String>,
}

impl Dep {
    /// The export of `receipts` — each its compact JWS and the signing certificate (DER) of
    /// the device that made it, `None` for a key without one — in the register's order.
    pub fn of<'a>(receipts: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>) -> Self {
        let mut groups: Vec<Group> = Vec::new();
        for (jws, certificate) in receipts {
            let certificate = certificate.map(|c| STANDARD.encode(c)).unwrap_or_default();
            match groups.last_mut() {
                Some(group) if group.certificate == certificate => {
                    group.receipts.push(jws.to_owned());
                }
                _ => groups.push(Group {
                    certificate,
                    chain: Vec::new(),
                    receipts: vec![jws.to_owned()],
                }),
            }
        }
        Self { groups }
    }

    /// Every receipt, in order.
    pub fn receipts(&self) -> impl Iterator<Item = &str> {
        self.groups
            .iter()
            .flat_map(|g| g.receipts.iter().map(String::as_str))
    }
}

/// How a device is known to a verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceType {
    /// By its certificate.
    #[serde(rename = "CERTIFICATE")]
    Certificate,
    /// By its public key (a closed system).
    #[serde(rename = "PUBLIC_KEY")]
    PublicKey,
}

/// One device in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The id the receipts name it with.
    pub id: String,
    /// Certificate or public key.
    #[serde(rename = "signatureDeviceType")]
    pub kind: DeviceType,
    /// The certificate (DER) or the public key (DER SubjectPublicKeyInfo), base64.
    #[serde(rename = "signatureCertificateOrPublicKey")]
    pub material: String,
}

/// The cryptographic material container of one register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptographicMaterial {
    /// The register's AES-256 key, base64.
    #[serde(rename = "base64AESKey")]
    pub aes_key: String,
    /// The devices by the id the receipts name them with.
    #[serde(rename = "certificateOrPublicKeyMap")]
    pub devices: BTreeMap<String, Device>,
}

impl CryptographicMaterial {
    /// The container of a register with AES key `aes_key` (base64) whose receipts `devices`
    /// signed: a device with a certificate by its certificate, one without by its public key.
    pub fn of(aes_key: &str, devices: &[&dyn Signer]) -> Result<Self, SignerError> {
        let mut map = BTreeMap::new();
        for device in devices {
            let (kind, material) = match device.certificate_der() {
                Some(der) => (DeviceType::Certificate, der),
                None => (DeviceType::PublicKey, device.public_key_der()?),
            };
            map.insert(
                device.key_id().to_owned(),
                Device {
                    id: device.key_id().to_owned(),
                    kind,
                    material: STANDARD.encode(material),
                },
            );
        }
        Ok(Self {
            aes_key: aes_key.to_owned(),
            devices: map,
        })
    }
}
