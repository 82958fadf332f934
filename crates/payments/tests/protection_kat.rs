//! Known-answer test for Adyen's local message protection: a response published with Adyen's
//! Node library tests (passphrase `p@ssw0rd123456`, key `CryptoKeyIdentifier12345` version 1).
#![allow(clippy::unwrap_used)]

use payments::crypto::SecurityKey;

fn fixture() -> serde_json::Value {
    let blob = include_str!("fixtures/adyen_local_enc_res.blob");
    serde_json::json!({
        "SaleToPOIResponse": {
            "MessageHeader": {
                "MessageCategory": "Payment",
                "MessageClass": "Service",
                "MessageType": "Response",
                "POIID": "P400Plus-275039202",
                "ProtocolVersion": "3.0",
                "SaleID": "325488592",
                "ServiceID": "325488592"
            },
            "NexoBlob": blob,
            "SecurityTrailer": {
                "AdyenCryptoVersion": 1,
                "Hmac": "l+5/pYiAbC0V9Xx78ELNDcLMaqTlqx2OyGha37i/g5g=",
                "KeyIdentifier": "CryptoKeyIdentifier12345",
                "KeyVersion": 1,
                "Nonce": "9iiJMpzKfYs3106ozIKNFQ=="
            }
        }
    })
}

#[test]
fn published_adyen_response_decrypts_and_its_hmac_verifies() {
    let key = SecurityKey::new("CryptoKeyIdentifier12345", 1, "p@ssw0rd123456");
    let opened = key.open(&fixture()).unwrap();
    let payment = &opened.message["SaleToPOIResponse"]["PaymentResponse"];
    assert_eq!(
        payment["POIData"]["POITransactionID"]["TransactionID"],
        "4r7i001557325515012.8815573255107661"
    );
    assert_eq!(payment["Response"]["Result"], "Success");
    assert_eq!(opened.header["ServiceID"], "325488592");
}

#[test]
fn published_response_with_one_flipped_hmac_bit_is_refused() {
    let key = SecurityKey::new("CryptoKeyIdentifier12345", 1, "p@ssw0rd123456");
    let mut f = fixture();
    f["SaleToPOIResponse"]["SecurityTrailer"]["Hmac"] =
        "m+5/pYiAbC0V9Xx78ELNDcLMaqTlqx2OyGha37i/g5g=".into();
    assert!(key.open(&f).is_err());
    let wrong = SecurityKey::new("CryptoKeyIdentifier12345", 1, "p@ssw0rd123457");
    assert!(wrong.open(&fixture()).is_err());
}
