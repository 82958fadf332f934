//! The terminal simulator behaves like a terminal where it matters for security and for end of
//! day: a replayed encrypted request is refused, a request that does not parse gets a nexo
//! error answer, rejected messages are logged, the private key is the owner's alone, and
//! `PreviousReconciliation` reports the period asked for.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{key, link, payments, sim};
use payments::nexo::{ReconciliationRequest, ResponseEnvelope, SaleToPoiRequest};
use payments::service::Outcome;

const QUICK: Duration = Duration::from_secs(5);

/// Log lines the simulator wrote (tracing's global subscriber, set once for this test binary).
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_writer(move || Writer(writer.clone()))
            .with_ansi(false)
            .init();
        buffer
    })
    .clone()
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn payment_plaintext(service_id: &str, amount: &str) -> (serde_json::Value, Vec<u8>) {
    let header = serde_json::json!({
        "ProtocolVersion": "3.0", "MessageClass": "Service", "MessageCategory": "Payment",
        "MessageType": "Request", "ServiceID": service_id, "SaleID": "till-1",
        "POIID": common::POI,
    });
    // Written by hand so the amount is exactly the text given, as another client would send it.
    let text = format!(
        r#"{{"SaleToPOIRequest":{{"MessageHeader":{header},"PaymentRequest":{{"SaleData":{{"SaleTransactionID":{{"TransactionID":"sale-1","TimeStamp":"2026-12-04T10:00:00Z"}}}},"PaymentTransaction":{{"AmountsReq":{{"Currency":"EUR","RequestedAmount":{amount}}}}}}}}}}}"#
    );
    (header, text.into_bytes())
}

fn answer(body: &[u8]) -> ResponseEnvelope {
    let (_, plaintext) = key().open_bytes(body).unwrap();
    serde_json::from_slice(&plaintext).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_request_is_refused_and_charges_nothing_twice() {
    let logs = logs();
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    let link = link(&sim, "till-1", QUICK);
    let (header, plaintext) = payment_plaintext("REPLAY0001", "12.00");
    let sealed = key()
        .seal_bytes("SaleToPOIRequest", header, &plaintext)
        .unwrap();

    let (status, first) = link.post_sealed(sealed.clone()).await.unwrap();
    assert_eq!(status, 200);
    let first = answer(&first).response.payment_response.unwrap();
    assert_eq!(first.response.result, "Success");

    // The same bytes again, as an attacker on the LAN would resend them.
    let (status, second) = link.post_sealed(sealed).await.unwrap();
    assert_eq!(status, 200);
    let second = answer(&second).response.payment_response.unwrap();
    assert_eq!(second.response.result, "Failure");
    assert_eq!(
        second.response.error_condition.as_deref(),
        Some("NotAllowed")
    );
    assert_eq!(sim.transactions().len(), 1, "charged once");
    let logged = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("ServiceID already used"), "{logged}");
    assert!(logged.contains("REPLAY0001"), "{logged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amount_that_is_no_exact_decimal_gets_a_nexo_error_answer() {
    let logs = logs();
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    let link = link(&sim, "till-1", QUICK);
    let (header, plaintext) = payment_plaintext("FLOAT00001", "3.3000000000000003");
    let sealed = key()
        .seal_bytes("SaleToPOIRequest", header, &plaintext)
        .unwrap();
    let (status, body) = link.post_sealed(sealed).await.unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let env = answer(&body);
    assert_eq!(env.response.message_header.service_id, "FLOAT00001");
    assert_eq!(env.response.message_header.message_type, "Response");
    let payment = env.response.payment_response.unwrap();
    assert_eq!(payment.response.result, "Failure");
    assert_eq!(
        payment.response.error_condition.as_deref(),
        Some("MessageFormat")
    );
    assert_eq!(
        payment.sale_data.sale_transaction_id.transaction_id,
        "sale-1"
    );
    assert!(sim.transactions().is_empty());
    let logged = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("FLOAT00001"), "{logged}");

    // A message sealed with another key is refused and logged too.
    let other = payments::crypto::SecurityKey::new("KassaTestKey", 1, "not the passphrase");
    let (header, plaintext) = payment_plaintext("WRONGKEY01", "1.00");
    let sealed = other
        .seal_bytes("SaleToPOIRequest", header, &plaintext)
        .unwrap();
    let (status, _) = link.post_sealed(sealed).await.unwrap();
    assert_eq!(status, 401);
    let logged = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("message protection failed"), "{logged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_key_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("terminal");
    drop(sim(&state).await);
    let mode = |p| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(state.join("terminal.key")), 0o600);
    // A key an earlier version left world-readable is closed at the next start.
    std::fs::set_permissions(
        state.join("terminal.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    drop(sim(&state).await);
    assert_eq!(mode(state.join("terminal.key")), 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_reconciliation_reports_the_period_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    let pay = payments(&sim, &dir.path().join("journal.json"), QUICK);
    pay.pay("sale-1", 2_000, "EUR", 2, None).await.unwrap();
    let closed = pay.reconcile(true, &[], &[]).await.unwrap();
    let closed_id = closed.poi_reconciliation_id.clone().unwrap();
    pay.pay("sale-2", 3_000, "EUR", 2, None).await.unwrap();

    let link = link(&sim, "till-1", QUICK);
    let previous = |id: Option<&str>| {
        let service_id = payments::link::new_service_id();
        SaleToPoiRequest {
            reconciliation_request: Some(ReconciliationRequest {
                reconciliation_type: "PreviousReconciliation".into(),
                poi_reconciliation_id: id.map(str::to_owned),
            }),
            payment_request: None,
            reversal_request: None,
            abort_request: None,
            transaction_status_request: None,
            get_totals_request: None,
            message_header: link.header("Reconciliation", &service_id),
        }
    };
    for asked in [Some(closed_id.as_str()), None] {
        let r = link.send(previous(asked)).await.unwrap().unwrap();
        let body = r.reconciliation_response.unwrap();
        assert_eq!(body.response.result, "Success");
        assert_eq!(
            body.poi_reconciliation_id.as_deref(),
            Some(closed_id.as_str())
        );
        let debit = &body.transaction_totals[0].payment_totals[0];
        assert_eq!(
            (
                debit.transaction_count,
                debit.transaction_amount.to_minor(2)
            ),
            (1, Some(2_000)),
            "the closed period, not the open one"
        );
    }
    // The open period is not a previous one.
    let open_id = format!("{}", closed_id.parse::<u64>().unwrap() + 1);
    let r = link.send(previous(Some(&open_id))).await.unwrap().unwrap();
    let body = r.reconciliation_response.unwrap();
    assert_eq!(
        (
            body.response.result.as_str(),
            body.response.error_condition.as_deref()
        ),
        ("Failure", Some("NotFound"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_of_day_matches_a_reversal_of_an_unused_payment() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    let pay = payments(&sim, &dir.path().join("journal.json"), QUICK);
    // A payment the sale never used (the customer changed their mind), reversed at once; the
    // terminal counts a payment and a refund, the ledger neither.
    let unused = pay.pay("sale-1", 2_000, "EUR", 2, None).await.unwrap();
    let Outcome::Approved { payment, .. } = unused else {
        panic!("{unused:?}");
    };
    pay.reverse(&payment.poi_transaction_id, "reversal-1")
        .await
        .unwrap();
    pay.pay("sale-2", 3_000, "EUR", 2, None).await.unwrap();
    let ledger_debits = vec![("EUR".to_owned(), 1, 3_000)];
    let totals = pay.reconcile(false, &ledger_debits, &[]).await.unwrap();
    assert!(totals.differences.is_empty(), "{:?}", totals.differences);
    assert_eq!(totals.reversals_matched, [("EUR".to_owned(), 1, 2_000)]);
    // A real difference beside it is still listed: the ledger lacks the 30.00 sale.
    let totals = pay.reconcile(false, &[], &[]).await.unwrap();
    assert_eq!(totals.differences.len(), 1, "{:?}", totals.differences);
    assert!(
        totals.differences[0].starts_with("payments in EUR: terminal 1 for 3000"),
        "{:?}",
        totals.differences
    );
}
