//! A device whose key a certification service provider certified (a smart card or an HSM of
//! `AT1`, `AT2`, …): receipts name it by the provider's id and the certificate's serial number,
//! and the DEP export carries the certificate. The certificate must be for the device's own
//! key, on P-256, and valid when the device is set up; anything else is refused.

use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{Signer, SignerError};

/// A signature device with its certificate.
#[derive(Debug)]
pub struct Certified {
    device: Box<dyn Signer>,
    provider: String,
    serial: String,
    der: Vec<u8>,
}

fn unsuitable(reason: impl Into<String>) -> SignerError {
    SignerError::Unsuitable(reason.into())
}

/// Whether `provider` names a certification service provider (`AT1`, `AT2`, … — `AT0` is a
/// closed system's, without a certificate).
fn is_provider(provider: &str) -> bool {
    provider.strip_prefix("AT").is_some_and(|n| {
        !n.is_empty() && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The DER of a certificate given as PEM or DER.
fn certificate_der(certificate: &[u8]) -> Result<Vec<u8>, SignerError> {
    if certificate.starts_with(b"-----BEGIN") {
        let (_, pem) = x509_parser::pem::parse_x509_pem(certificate)
            .map_err(|e| unsuitable(format!("the certificate is not PEM: {e}")))?;
        if pem.label != "CERTIFICATE" {
            return Err(unsuitable(format!(
                "the PEM file holds a {}, not a CERTIFICATE",
                pem.label
            )));
        }
        Ok(pem.contents)
    } else {
        Ok(certificate.to_vec())
    }
}

impl Certified {
    /// `device` with `certificate` (PEM or DER) of `provider` (`AT1`, …), valid at
    /// `at_unix_seconds`.
    pub fn new(
        device: Box<dyn Signer>,
        certificate: &[u8],
        provider: &str,
        at_unix_seconds: i64,
    ) -> Result<Self, SignerError> {
        if !is_provider(provider) {
            return Err(unsuitable(format!(
                "provider `{provider}`: a certification service provider's id is AT1, AT2, … (AT0 is a closed system without a certificate)"
            )));
        }
        let der = certificate_der(certificate)?;
        let (_, cert) = X509Certificate::from_der(&der)
            .map_err(|e| unsuitable(format!("the certificate is not an X.509 certificate: {e}")))?;
        let spki = cert.public_key();
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        if spki.algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY || curve != Some(OID_EC_P256) {
            return Err(unsuitable(
                "the certificate's key is not on P-256 (prime256v1): RKSV signs with ES256",
            ));
        }
        let serial = hex_serial(cert.raw_serial());
        if spki.subject_public_key.data.as_ref() != device.public_key_sec1().as_slice() {
            return Err(unsuitable(format!(
                "the certificate (serial {serial}) is for another key than the device's: use the certificate of the key the device signs with"
            )));
        }
        let validity = cert.validity();
        let (from, until) = (
            validity.not_before.timestamp(),
            validity.not_after.timestamp(),
        );
        if !(from..=until).contains(&at_unix_seconds) {
            return Err(unsuitable(format!(
                "the certificate (serial {serial}) is valid from {} to {}, not now",
                validity.not_before, validity.not_after
            )));
        }
        Ok(Self {
            device,
            provider: provider.to_owned(),
            serial,
            der,
        })
    }
}

/// A serial number as receipts write it: hexadecimal, lower case, without leading zeros.
fn hex_serial(raw: &[u8]) -> String {
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

impl Signer for Certified {
    fn key_id(&self) -> &str {
        &self.serial
    }

    fn provider(&self) -> &str {
        &self.provider
    }

    fn public_key_sec1(&self) -> Vec<u8> {
        self.device.public_key_sec1()
    }

    fn certificate_der(&self) -> Option<Vec<u8>> {
        Some(self.der.clone())
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignerError> {
        self.device.sign(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_and_serials_are_written_as_receipts_name_them() {
        assert!(is_provider("AT1") && is_provider("AT12"));
        assert!(!is_provider("AT0") && !is_provider("AT") && !is_provider("DE1"));
        assert!(!is_provider("AT01") && !is_provider("AT1x"));
        assert_eq!(hex_serial(&[0x00, 0x0a, 0xbc]), "abc");
        assert_eq!(hex_serial(&[0x00]), "0");
    }
}
