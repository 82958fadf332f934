//! The adapter against answers shaped exactly like Adyen's: every field name, nesting and value
//! format in `fixtures/adyen/` follows the PaymentResponse and ReversalResponse of Adyen's
//! Terminal API reference and the typings of its official libraries (`CardData.MaskedPan`,
//! `POITransactionID` as `tenderReference.pspReference`, a URL-encoded `AdditionalResponse`),
//! with Kassa's own values. The simulator shares Kassa's types, so only answers written
//! independently of them catch a field Kassa spells differently from Adyen.
#![allow(clippy::unwrap_used)]

use payments::nexo::{CardData, ResponseEnvelope};
use payments::pan::luhn_valid;
use payments::service::{InFlight, OpKind, Outcome, outcome_of};

fn answer(name: &str) -> ResponseEnvelope {
    let path = format!("{}/tests/fixtures/adyen/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn op(kind: OpKind, amount_minor: i64, original: Option<&str>) -> InFlight {
    InFlight {
        service_id: "2912071530".into(),
        kind,
        sale_transaction_id: "sale-42".into(),
        amount_minor,
        currency: "EUR".into(),
        exponent: 2,
        original_poi_transaction_id: original.map(str::to_owned),
        shift_id: None,
        started_at: "2026-12-04T09:12:39Z".into(),
    }
}

/// The PSP reference in the fixtures: 16 digits that pass Luhn, as one numeric reference in ten
/// does.
const PSP: &str = "8817055293814125";
const POI_TXN: &str = "9kq2001764839561000.8817055293814125";

#[test]
fn an_adyen_payment_answer_keeps_its_masked_pan_and_its_references() {
    assert!(luhn_valid(PSP.as_bytes()));
    let env = answer("payment_response.json");
    let outcome = outcome_of(&op(OpKind::Payment, 2_495, None), &env.response).unwrap();
    let Outcome::Approved { payment, .. } = outcome else {
        panic!("expected an approval, got {outcome:?}");
    };
    assert_eq!(
        payment.masked_pan.map(|m| m.to_string()).as_deref(),
        Some("541333 **** 0010")
    );
    assert_eq!(payment.brand.as_deref(), Some("mc"));
    assert_eq!(payment.entry_mode.as_deref(), Some("Contactless"));
    assert_eq!(payment.auth_code.as_deref(), Some("084113"));
    assert_eq!(payment.token.as_deref(), Some("M469509594859802"));
    assert_eq!(payment.authorised_minor, 2_495);
    assert!(!payment.offline);
    // Identifiers are kept exactly, though their digits pass Luhn: a refund by reference names
    // the POI transaction id again, and a masked one is unknown to the terminal.
    assert_eq!(payment.poi_transaction_id, POI_TXN);
    assert_eq!(payment.psp_reference.as_deref(), Some(PSP));
}

#[test]
fn an_adyen_reversal_answer_keeps_its_transaction_id() {
    let env = answer("reversal_response.json");
    let outcome = outcome_of(&op(OpKind::Refund, 1_000, Some(POI_TXN)), &env.response).unwrap();
    assert_eq!(
        outcome,
        Outcome::Refunded {
            poi_transaction_id: "9kq2001764839782000.8817055293817334".into(),
            amount_minor: 1_000,
        }
    );
}

#[test]
fn card_data_is_written_with_adyens_spelling_and_read_in_both() {
    let card = CardData {
        masked_pan: Some("411111 **** 1111".into()),
        ..CardData::default()
    };
    let json = serde_json::to_value(&card).unwrap();
    assert_eq!(json["MaskedPan"], "411111 **** 1111", "{json}");
    assert!(json.get("MaskedPAN").is_none(), "{json}");
    // nexo's own dictionary spells it `MaskedPAN`; a terminal that does is read too.
    let nexo: CardData = serde_json::from_str(r#"{"MaskedPAN":"411111 **** 1111"}"#).unwrap();
    assert_eq!(nexo.masked_pan.as_deref(), Some("411111 **** 1111"));
}
