//! nexo Sale-to-POI messages (protocol 3.0) as Adyen's Terminal API uses them: only the fields
//! Kassa sends or reads. Amounts are exact decimals on the wire and integers here, never floats.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// The protocol version Kassa speaks.
pub const PROTOCOL_VERSION: &str = "3.0";

/// An amount as nexo writes it (a JSON number such as `10.99`), held as an integer count of
/// `10^-scale` units so no float ever touches it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    units: i64,
    scale: u32,
}

impl Amount {
    /// `minor` units of a currency with `exponent` decimals.
    pub fn from_minor(minor: i64, exponent: u32) -> Self {
        Self {
            units: minor,
            scale: exponent,
        }
    }

    /// The amount in minor units of a currency with `exponent` decimals; `None` when it has more
    /// decimals than that or overflows.
    pub fn to_minor(self, exponent: u32) -> Option<i64> {
        if self.scale <= exponent {
            self.units
                .checked_mul(10i64.checked_pow(exponent - self.scale)?)
        } else {
            let div = 10i64.checked_pow(self.scale - exponent)?;
            (self.units % div == 0).then_some(self.units / div)
        }
    }

    /// Reads the decimal text of a JSON number.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        let (neg, t) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        if int.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || frac.len() > 6
        {
            return None;
        }
        let mut units: i64 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            units = units.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
        }
        let scale = u32::try_from(frac.len()).ok()?;
        Some(Self {
            units: if neg { -units } else { units },
            scale,
        })
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.units);
        }
        let div = 10i64.pow(self.scale);
        let sign = if self.units < 0 { "-" } else { "" };
        let abs = self.units.unsigned_abs();
        let div = div.unsigned_abs();
        write!(
            f,
            "{sign}{}.{:0width$}",
            abs / div,
            abs % div,
            width = self.scale as usize
        )
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({self})")
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Amount::parse(raw.get().trim_matches('"'))
            .ok_or_else(|| serde::de::Error::custom("amount is not an exact decimal"))
    }
}

/// `MessageHeader`, sent in clear beside the encrypted blob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageHeader {
    /// `3.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// `Service` for transactions.
    pub message_class: String,
    /// `Payment`, `Reversal`, `Abort`, `TransactionStatus`, `Reconciliation`, `GetTotals`.
    pub message_category: String,
    /// `Request` or `Response`.
    pub message_type: String,
    /// Unique per request on this sale system (at most 10 characters).
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    /// The sale system (the till).
    #[serde(rename = "SaleID")]
    pub sale_id: String,
    /// The terminal.
    #[serde(rename = "POIID")]
    pub poi_id: String,
}

impl MessageHeader {
    /// A request header.
    pub fn request(category: &str, service_id: &str, sale_id: &str, poi_id: &str) -> Self {
        Self {
            protocol_version: Some(PROTOCOL_VERSION.to_owned()),
            message_class: "Service".to_owned(),
            message_category: category.to_owned(),
            message_type: "Request".to_owned(),
            service_id: service_id.to_owned(),
            sale_id: sale_id.to_owned(),
            poi_id: poi_id.to_owned(),
        }
    }

    /// The header of the response to this request.
    pub fn response(&self) -> Self {
        Self {
            message_type: "Response".to_owned(),
            ..self.clone()
        }
    }
}

/// `{"SaleToPOIRequest": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestEnvelope {
    /// The request.
    #[serde(rename = "SaleToPOIRequest")]
    pub request: SaleToPoiRequest,
}

/// `{"SaleToPOIResponse": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResponseEnvelope {
    /// The response.
    #[serde(rename = "SaleToPOIResponse")]
    pub response: SaleToPoiResponse,
}

/// A request: the header and exactly one body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SaleToPoiRequest {
    /// Header.
    pub message_header: MessageHeader,
    /// Payment (or unreferenced refund).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_request: Option<PaymentRequest>,
    /// Reversal or referenced refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversal_request: Option<ReversalRequest>,
    /// Abort of a transaction in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_request: Option<AbortRequest>,
    /// Outcome of an earlier request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_status_request: Option<TransactionStatusRequest>,
    /// End-of-day totals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciliation_request: Option<ReconciliationRequest>,
    /// Totals without closing the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get_totals_request: Option<GetTotalsRequest>,
}

/// A response: the header and one body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SaleToPoiResponse {
    /// Header.
    pub message_header: MessageHeader,
    /// Payment outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_response: Option<PaymentResponse>,
    /// Reversal or refund outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversal_response: Option<ReversalResponse>,
    /// Status of an earlier request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_status_response: Option<TransactionStatusResponse>,
    /// Totals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciliation_response: Option<ReconciliationResponse>,
    /// Totals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get_totals_response: Option<ReconciliationResponse>,
}

/// `SaleTransactionID`, `POITransactionID`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactionIdentification {
    /// The id.
    #[serde(rename = "TransactionID")]
    pub transaction_id: String,
    /// RFC 3339.
    pub time_stamp: String,
}

/// `SaleData`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SaleData {
    /// The sale system's id for this transaction.
    #[serde(rename = "SaleTransactionID")]
    pub sale_transaction_id: TransactionIdentification,
}

/// `PaymentRequest`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentRequest {
    /// Sale data.
    pub sale_data: SaleData,
    /// Amounts.
    pub payment_transaction: PaymentTransaction,
    /// `PaymentType` (`Normal`, `Refund`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_data: Option<PaymentData>,
}

/// `PaymentTransaction`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentTransaction {
    /// Requested amount.
    pub amounts_req: AmountsReq,
}

/// `AmountsReq`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AmountsReq {
    /// ISO 4217 code.
    pub currency: String,
    /// The amount.
    pub requested_amount: Amount,
}

/// `PaymentData`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentData {
    /// `Normal` or `Refund`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_type: Option<String>,
}

/// `ReversalRequest`: a full reversal, or with `ReversedAmount` a referenced (partial) refund.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReversalRequest {
    /// The transaction to reverse or refund.
    #[serde(rename = "OriginalPOITransaction")]
    pub original_poi_transaction: OriginalPoiTransaction,
    /// `MerchantCancel`, `CustCancel`.
    pub reversal_reason: String,
    /// For a partial refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversed_amount: Option<Amount>,
    /// Sale data of the refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_data: Option<SaleData>,
}

/// `OriginalPOITransaction`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OriginalPoiTransaction {
    /// The terminal's id of the original transaction.
    #[serde(rename = "POITransactionID")]
    pub poi_transaction_id: TransactionIdentification,
}

/// `AbortRequest`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AbortRequest {
    /// Why.
    pub abort_reason: String,
    /// The request to abort.
    pub message_reference: MessageReference,
}

/// `MessageReference`: names an earlier request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageReference {
    /// Category of the earlier request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_category: Option<String>,
    /// Its ServiceID.
    #[serde(rename = "ServiceID", default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    /// Its SaleID.
    #[serde(rename = "SaleID", default, skip_serializing_if = "Option::is_none")]
    pub sale_id: Option<String>,
    /// Its POIID.
    #[serde(rename = "POIID", default, skip_serializing_if = "Option::is_none")]
    pub poi_id: Option<String>,
}

/// `TransactionStatusRequest`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactionStatusRequest {
    /// The request asked about; absent means the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_reference: Option<MessageReference>,
    /// Ask for the receipt too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_reprint_flag: Option<bool>,
}

/// `ReconciliationRequest`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReconciliationRequest {
    /// `SaleReconciliation` closes the period; `AcquirerReconciliation` too;
    /// `PreviousReconciliation` reports a closed one.
    pub reconciliation_type: String,
    /// For `PreviousReconciliation`: the period asked for (absent: the last one closed).
    #[serde(
        rename = "POIReconciliationID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub poi_reconciliation_id: Option<String>,
}

/// `GetTotalsRequest`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetTotalsRequest {
    /// Grouping asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_details: Option<Vec<String>>,
}

/// `Response`: the result of any request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Response {
    /// `Success`, `Failure`, `Partial`.
    pub result: String,
    /// Why it failed (`Refusal`, `Busy`, `Cancel`, `Aborted`, `NotFound`, `InProgress`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_condition: Option<String>,
    /// Raw URL-encoded extras; passes the whitelist before Kassa keeps any of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_response: Option<String>,
}

/// `POIData`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PoiData {
    /// The terminal's id for the transaction (`tenderReference.pspReference` at Adyen).
    #[serde(rename = "POITransactionID")]
    pub poi_transaction_id: TransactionIdentification,
    /// The reconciliation period it falls in.
    #[serde(
        rename = "POIReconciliationID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub poi_reconciliation_id: Option<String>,
}

/// `PaymentResponse`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentResponse {
    /// Result.
    pub response: Response,
    /// Echo of the sale data.
    pub sale_data: SaleData,
    /// Terminal's transaction id.
    #[serde(rename = "POIData")]
    pub poi_data: PoiData,
    /// Card and authorisation details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_result: Option<PaymentResult>,
}

/// `PaymentResult`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentResult {
    /// Instrument.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_instrument_data: Option<PaymentInstrumentData>,
    /// Amount authorised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amounts_resp: Option<AmountsResp>,
    /// `false` when the terminal approved offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_flag: Option<bool>,
    /// Acquirer data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_acquirer_data: Option<PaymentAcquirerData>,
}

/// `PaymentInstrumentData`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentInstrumentData {
    /// `Card`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_instrument_type: Option<String>,
    /// Card data (masked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_data: Option<CardData>,
}

/// `CardData`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CardData {
    /// Brand (`mc`, `visa`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_brand: Option<String>,
    /// Masked PAN as the terminal prints it. Adyen's Terminal API reference and its official
    /// libraries spell the field `MaskedPan` (nexo's own dictionary says `MaskedPAN`); Kassa
    /// writes Adyen's spelling, which is what its terminals send, and reads both.
    #[serde(
        rename = "MaskedPan",
        alias = "MaskedPAN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub masked_pan: Option<String>,
    /// `Contactless`, `ICC`, `MagStripe`, `Keyed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_mode: Vec<String>,
    /// Token (alias).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_token: Option<PaymentToken>,
}

/// `PaymentToken`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentToken {
    /// `Customer` or `Transaction`.
    pub token_requested_type: String,
    /// The token.
    pub token_value: String,
}

/// `AmountsResp`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AmountsResp {
    /// ISO 4217 code.
    pub currency: String,
    /// Authorised amount (less than asked on a partial approval).
    pub authorized_amount: Amount,
}

/// `PaymentAcquirerData`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentAcquirerData {
    /// Authorisation code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_code: Option<String>,
}

/// `ReversalResponse`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReversalResponse {
    /// Result.
    pub response: Response,
    /// The reversal's own transaction id.
    #[serde(rename = "POIData", default, skip_serializing_if = "Option::is_none")]
    pub poi_data: Option<PoiData>,
    /// Amount reversed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversed_amount: Option<Amount>,
}

/// `TransactionStatusResponse`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactionStatusResponse {
    /// `Success` when the outcome is known; `Failure` with `InProgress` or `NotFound` else.
    pub response: Response,
    /// The repeated response of the transaction asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeated_message_response: Option<RepeatedMessageResponse>,
}

/// `RepeatedMessageResponse`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RepeatedMessageResponse {
    /// Header of the original response.
    pub message_header: MessageHeader,
    /// The original response.
    pub repeated_response_message_body: RepeatedResponseMessageBody,
}

/// `RepeatedResponseMessageBody`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RepeatedResponseMessageBody {
    /// Payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_response: Option<PaymentResponse>,
    /// Reversal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversal_response: Option<ReversalResponse>,
}

/// `ReconciliationResponse` (also the body of `GetTotalsResponse`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReconciliationResponse {
    /// Result.
    pub response: Response,
    /// Echo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciliation_type: Option<String>,
    /// The period closed.
    #[serde(
        rename = "POIReconciliationID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub poi_reconciliation_id: Option<String>,
    /// Totals per instrument and currency.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transaction_totals: Vec<TransactionTotals>,
}

/// `TransactionTotals`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactionTotals {
    /// `Card`.
    pub payment_instrument_type: String,
    /// Currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_currency: Option<String>,
    /// Debits and credits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payment_totals: Vec<PaymentTotals>,
}

/// `PaymentTotals`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentTotals {
    /// `Debit` (payments) or `Credit` (refunds, reversals).
    pub transaction_type: String,
    /// Count.
    pub transaction_count: u64,
    /// Sum.
    pub transaction_amount: Amount,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn amounts_are_exact_decimals_on_the_wire() {
        let a: AmountsReq =
            serde_json::from_str(r#"{"Currency":"EUR","RequestedAmount":10.99}"#).unwrap();
        assert_eq!(a.requested_amount.to_minor(2), Some(1099));
        assert_eq!(a.requested_amount.to_minor(0), None);
        let json = serde_json::to_string(&AmountsReq {
            currency: "EUR".into(),
            requested_amount: Amount::from_minor(105, 2),
        })
        .unwrap();
        assert_eq!(json, r#"{"Currency":"EUR","RequestedAmount":1.05}"#);
        assert_eq!(Amount::parse("1").unwrap().to_minor(2), Some(100));
        assert!(Amount::parse("1e3").is_none());
    }
}
