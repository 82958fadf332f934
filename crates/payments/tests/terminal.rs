//! Card payments against the terminal simulator over real HTTPS on 127.0.0.1: every outcome,
//! lost answers recovered without double charges, refunds by reference and to a presented card,
//! offline approvals, totals.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{payments, sim};
use payments::service::{Journal as _, Outcome, PaymentError, Settlement};
use payments::sim::Faults;

const QUICK: Duration = Duration::from_secs(5);

fn approved(o: &Outcome) -> &payments::service::CardPayment {
    match o {
        Outcome::Approved { payment, .. } => payment,
        other => panic!("expected an approval, got {other:?}"),
    }
}

fn declined(o: &Outcome) -> (&str, Option<&str>) {
    match o {
        Outcome::Declined { condition, reason } => (condition.as_str(), reason.as_deref()),
        other => panic!("expected a decline, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_simulator_outcome_reaches_the_till() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    let pay = payments(&sim, &dir.path().join("journal.json"), QUICK);

    let ok = pay.pay("sale-1", 2_000, "EUR", 2, None).await.unwrap();
    let p = approved(&ok);
    assert_eq!(p.authorised_minor, 2_000);
    assert_eq!(
        p.masked_pan.as_ref().unwrap().to_string(),
        "411111 **** 1111"
    );
    assert_eq!(p.brand.as_deref(), Some("visa"));
    assert!(p.psp_reference.as_deref().unwrap().starts_with("SIMPSP"));
    assert!(p.auth_code.is_some() && p.token.is_some() && !p.offline);
    assert_eq!(p.entry_mode.as_deref(), Some("Contactless"));

    let partial = pay.pay("sale-2", 1_001, "EUR", 2, None).await.unwrap();
    assert_eq!(approved(&partial).authorised_minor, 500);

    let d = pay.pay("sale-3", 1_002, "EUR", 2, None).await.unwrap();
    assert_eq!(declined(&d), ("Refusal", Some("Not enough balance")));
    let e = pay.pay("sale-4", 1_003, "EUR", 2, None).await.unwrap();
    assert_eq!(declined(&e), ("Refusal", Some("Expired Card")));
    let r = pay.pay("sale-5", 1_004, "EUR", 2, None).await.unwrap();
    assert_eq!(declined(&r), ("Aborted", Some("Card removed")));
    let c = pay.pay("sale-6", 1_005, "EUR", 2, None).await.unwrap();
    assert_eq!(declined(&c), ("Cancel", Some("Cancelled by customer")));

    // Amounts in a currency without minor units travel exactly too.
    let yen = pay.pay("sale-7", 1_500, "JPY", 0, None).await.unwrap();
    assert_eq!(approved(&yen).authorised_minor, 1_500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_after_approval_is_recovered_as_one_capture() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    let pay = payments(
        &sim,
        &dir.path().join("journal.json"),
        Duration::from_millis(800),
    );
    let o = pay.pay("sale-1", 1_006, "EUR", 2, None).await.unwrap();
    assert_eq!(approved(&o).authorised_minor, 1_006);
    assert_eq!(sim.transactions().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_is_recovered_by_asking_for_the_status_not_by_charging_again() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    sim.set_faults(Faults {
        latency_ms: 1_500,
        ..Faults::default()
    });
    let pay = payments(
        &sim,
        &dir.path().join("journal.json"),
        Duration::from_millis(400),
    );
    let o = pay.pay("sale-1", 2_500, "EUR", 2, None).await.unwrap();
    assert_eq!(approved(&o).authorised_minor, 2_500);
    let txns = sim.transactions();
    assert_eq!(txns.len(), 1, "exactly one request reached the terminal");
    assert_eq!(txns[0].state, "Approved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_before_authorisation_is_safe_to_retry() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    let pay = payments(&sim, &dir.path().join("journal.json"), QUICK);
    sim.set_faults(Faults {
        drop_before_auth: true,
        ..Faults::default()
    });
    let first = pay.pay("sale-1", 2_000, "EUR", 2, None).await.unwrap();
    assert_eq!(first, Outcome::NotProcessed);
    sim.set_faults(Faults::default());
    let second = pay.pay("sale-1", 2_000, "EUR", 2, None).await.unwrap();
    approved(&second);
    assert_eq!(sim.transactions().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_after_authorisation_recovers_the_approval() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    let pay = payments(&sim, &dir.path().join("journal.json"), QUICK);
    sim.set_faults(Faults {
        drop_after_auth: true,
        ..Faults::default()
    });
    let o = pay.pay("sale-1", 2_000, "EUR", 2, None).await.unwrap();
    approved(&o);
    assert_eq!(sim.transactions().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_duplicate_answer_is_not_taken_for_this_payment() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    let pay = payments(&sim, &dir.path().join("journal.json"), QUICK);
    let first = pay.pay("sale-1", 2_000, "EUR", 2, None).await.unwrap();
    sim.set_faults(Faults {
        stale_response: true,
        ..Faults::default()
    });
    let second = pay.pay("sale-2", 1_002, "EUR", 2, None).await.unwrap();
    // The terminal repeated the approval of sale 1; the truth for sale 2 is a decline.
    assert_eq!(declined(&second).0, "Refusal");
    assert_ne!(first, second);
    assert_eq!(sim.transactions().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_hmac_leaves_the_payment_unresolved_and_blocks_a_second_charge() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    let pay = payments(&sim, &dir.path().join("journal.json"), QUICK)
        .with_recovery(3, Duration::from_millis(50));
    sim.set_faults(Faults {
        bad_hmac: true,
        ..Faults::default()
    });
    let err = pay.pay("sale-1", 2_000, "EUR", 2, None).await.unwrap_err();
    assert!(matches!(err, PaymentError::OutcomeUnknown { .. }), "{err}");
    let again = pay.pay("sale-1", 2_000, "EUR", 2, None).await.unwrap_err();
    assert!(matches!(again, PaymentError::Unresolved { .. }), "{again}");
    assert_eq!(sim.transactions().len(), 1, "no second request for money");

    sim.set_faults(Faults::default());
    let recovered = pay.recover_in_flight().await.unwrap();
    assert_eq!(recovered.len(), 1);
    approved(recovered[0].1.as_ref().unwrap());
    assert_eq!(sim.transactions().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_till_gets_busy_while_the_terminal_serves_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    sim.set_faults(Faults {
        latency_ms: 1_000,
        ..Faults::default()
    });
    let first = payments(&sim, &dir.path().join("j1.json"), QUICK);
    let second = payments::service::CardPayments::new(
        common::link(&sim, "till-2", QUICK),
        payments::service::FileJournal::open(dir.path().join("j2.json")).unwrap(),
        common::LIMITS,
    );
    let (a, b) = tokio::join!(first.pay("sale-1", 2_000, "EUR", 2, None), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        second.pay("sale-2", 3_000, "EUR", 2, None).await
    });
    approved(&a.unwrap());
    assert_eq!(declined(&b.unwrap()).0, "Busy");
    assert_eq!(sim.transactions().len(), 1);
}

/// What the crashing till asked the terminal for.
enum Request {
    /// `sale-1`, 42.00.
    Payment,
    /// `return-1`, 42.00 to a presented card.
    PresentedCardRefund,
}

/// The till dies while the customer is at the terminal (the request's future is dropped
/// mid-flight); the terminal finishes on its own and records it. Both stop.
async fn crash_while_the_customer_is_at_the_terminal(
    terminal: &std::path::Path,
    journal: &std::path::Path,
    request: Request,
) {
    let sim = sim(terminal).await;
    sim.set_faults(Faults {
        latency_ms: 800,
        ..Faults::default()
    });
    let pay = payments(&sim, journal, QUICK);
    let asked: std::pin::Pin<Box<dyn Future<Output = _> + Send + '_>> = match request {
        Request::Payment => Box::pin(pay.pay("sale-1", 4_200, "EUR", 2, None)),
        Request::PresentedCardRefund => {
            Box::pin(pay.refund_to_presented_card("return-1", 4_200, ("EUR", 2), None))
        }
    };
    let crashed = tokio::time::timeout(Duration::from_millis(300), asked).await;
    assert!(crashed.is_err());
    for _ in 0..100 {
        if !sim.transactions().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sim.transactions().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_payment_is_recovered_after_restart_with_exactly_one_capture() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.json");
    let terminal = dir.path().join("terminal");
    crash_while_the_customer_is_at_the_terminal(&terminal, &journal, Request::Payment).await;
    // Both restart: the terminal from its file, the till from its journal.
    let sim = sim(&terminal).await;
    let pay = payments(&sim, &journal, QUICK);
    let recovered = pay.recover_in_flight().await.unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].0.sale_transaction_id, "sale-1");
    assert_eq!(
        approved(recovered[0].1.as_ref().unwrap()).authorised_minor,
        4_200
    );
    assert_eq!(sim.transactions().len(), 1, "exactly one capture");
    assert!(pay.recover_in_flight().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_go_back_by_reference_and_never_exceed_the_capture() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    let pay = payments(&sim, &dir.path().join("journal.json"), QUICK);
    let o = pay.pay("sale-1", 5_000, "EUR", 2, None).await.unwrap();
    let id = approved(&o).poi_transaction_id.clone();

    for (n, amount) in [(1, 2_000), (2, 2_000)] {
        let r = pay
            .refund(&id, &format!("return-{n}"), amount)
            .await
            .unwrap();
        assert!(matches!(r, Outcome::Refunded { amount_minor, .. } if amount_minor == amount));
    }
    let too_much = pay.refund(&id, "return-3", 1_500).await.unwrap_err();
    assert!(
        matches!(too_much, PaymentError::RefundTooLarge { left: 1_000, .. }),
        "{too_much}"
    );
    pay.refund(&id, "return-4", 1_000).await.unwrap();
    let txns = sim.transactions();
    assert_eq!(txns[0].refunded_minor, 5_000);
    assert_eq!(txns.iter().filter(|t| t.kind == "Refund").count(), 3);
    assert!(
        txns.iter()
            .filter(|t| t.kind == "Refund")
            .all(|t| t.original.as_deref() == Some(id.as_str()))
    );

    // A reversal takes back what is left of a payment, and nothing can be refunded after it.
    let o = pay.pay("sale-2", 3_000, "EUR", 2, None).await.unwrap();
    let id2 = approved(&o).poi_transaction_id.clone();
    pay.refund(&id2, "return-5", 500).await.unwrap();
    let rev = pay.reverse(&id2, "void-1").await.unwrap();
    assert!(
        matches!(
            rev,
            Outcome::Refunded {
                amount_minor: 2_500,
                ..
            }
        ),
        "{rev:?}"
    );
    assert!(pay.refund(&id2, "return-6", 1).await.is_err());
    assert!(pay.refund("no-such-payment", "return-7", 1).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_approvals_wait_under_limits_then_settle_or_raise_an_exception() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    let pay = payments(&sim, &dir.path().join("journal.json"), QUICK);
    sim.set_faults(Faults {
        offline: true,
        ..Faults::default()
    });
    let a = pay
        .pay("sale-1", 2_000, "EUR", 2, Some("shift-1"))
        .await
        .unwrap();
    assert!(
        matches!(&a, Outcome::Approved { payment, settlement: Settlement::Pending } if payment.offline)
    );
    // The terminal is now known offline: limits apply before it is asked.
    let big = pay
        .pay("sale-2", 4_500, "EUR", 2, Some("shift-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            big,
            PaymentError::OfflineLimit {
                limit: "per-transaction"
            }
        ),
        "{big}"
    );
    let b = pay
        .pay("sale-3", 1_013, "EUR", 2, Some("shift-1"))
        .await
        .unwrap();
    approved(&b);
    let over = pay
        .pay("sale-4", 600, "EUR", 2, Some("shift-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            over,
            PaymentError::OfflineLimit {
                limit: "outstanding"
            }
        ),
        "{over}"
    );
    assert_eq!(sim.transactions().len(), 2, "refused locally, never sent");

    let pending = pay.pending_offline().await.unwrap();
    assert_eq!(pending.len(), 2);
    assert!(pending.iter().all(|p| p.age_secs >= 0));

    sim.set_faults(Faults::default());
    let exceptions = pay.reconcile_offline().await.unwrap();
    assert_eq!(exceptions.len(), 1);
    assert_eq!(exceptions[0].sale_transaction_id, "sale-3");
    assert!(pay.pending_offline().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_of_day_lists_differences_between_terminal_and_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    let pay = payments(&sim, &dir.path().join("journal.json"), QUICK);
    let o = pay.pay("sale-1", 2_000, "EUR", 2, None).await.unwrap();
    pay.pay("sale-2", 3_000, "EUR", 2, None).await.unwrap();
    pay.pay("sale-3", 1_002, "EUR", 2, None).await.unwrap();
    pay.refund(&approved(&o).poi_transaction_id, "return-1", 500)
        .await
        .unwrap();

    let ledger_debits = vec![("EUR".to_owned(), 2, 5_000)];
    let ledger_credits = vec![("EUR".to_owned(), 1, 500)];
    let totals = pay
        .reconcile(false, &ledger_debits, &ledger_credits)
        .await
        .unwrap();
    assert!(totals.differences.is_empty(), "{:?}", totals.differences);

    let short_ledger = vec![("EUR".to_owned(), 1, 2_000)];
    let closing = pay
        .reconcile(true, &short_ledger, &ledger_credits)
        .await
        .unwrap();
    assert_eq!(closing.differences.len(), 1, "{:?}", closing.differences);
    assert!(closing.differences[0].contains("terminal 2 for 5000"));
    // The period is closed: the next totals start from zero.
    let next = pay.reconcile(false, &[], &[]).await.unwrap();
    assert!(next.differences.is_empty());
    assert_ne!(next.poi_reconciliation_id, closing.poi_reconciliation_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cashier_aborts_a_payment_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    sim.set_faults(Faults {
        latency_ms: 5_000,
        ..Faults::default()
    });
    let pay = payments(
        &sim,
        &dir.path().join("journal.json"),
        Duration::from_secs(10),
    );
    let (o, abort) = tokio::join!(pay.pay("sale-1", 2_000, "EUR", 2, None), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        pay.abort_in_progress().await
    });
    abort.unwrap();
    assert_eq!(declined(&o.unwrap()).0, "Aborted");
    assert_eq!(sim.transactions()[0].state, "Aborted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_whose_certificate_names_another_poiid_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    let impostor = payments::link::TerminalLink::new(payments::link::LinkConfig {
        addr: sim.addr(),
        poi_id: "P400Plus-000000001".into(),
        sale_id: "till-1".into(),
        key: common::key(),
        ca_pem: sim.ca_pem().as_bytes().to_vec(),
        timeout: QUICK,
    })
    .unwrap();
    let pay = payments::service::CardPayments::new(
        impostor,
        payments::service::FileJournal::open(dir.path().join("journal.json")).unwrap(),
        common::LIMITS,
    );
    let err = pay.pay("sale-1", 2_000, "EUR", 2, None).await.unwrap_err();
    assert!(matches!(err, PaymentError::Unreachable(_)), "{err}");
    assert!(sim.transactions().is_empty());
    // Closed as not processed: nothing is left to recover.
    assert!(pay.recover_in_flight().await.unwrap().is_empty());
}

fn refunded(o: &Outcome) -> i64 {
    match o {
        Outcome::Refunded { amount_minor, .. } => *amount_minor,
        other => panic!("expected a refund, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_to_a_presented_card_is_approved_or_declined_and_counts_as_a_credit() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    let pay = payments(&sim, &dir.path().join("journal.json"), QUICK);
    pay.pay("sale-1", 3_000, "EUR", 2, Some("shift-1"))
        .await
        .unwrap();

    let ok = pay
        .refund_to_presented_card("return-1", 2_000, ("EUR", 2), Some("shift-1"))
        .await
        .unwrap();
    assert_eq!(refunded(&ok), 2_000);
    let txns = sim.transactions();
    let refund = txns.last().unwrap();
    assert_eq!(refund.kind, "UnreferencedRefund");
    assert_eq!(refund.state, "Approved");
    assert_eq!(refund.sale_transaction_id, "return-1");
    assert_eq!(refund.captured_minor, 2_000);
    assert_eq!(refund.original, None, "referenced to no payment");
    let Outcome::Refunded {
        poi_transaction_id, ..
    } = &ok
    else {
        unreachable!()
    };
    assert_eq!(poi_transaction_id, &refund.poi_transaction_id);
    // Whether a known refund answers the same return asked again is the store node's rule (it
    // knows what is left of the return); the service answers only a lost one it recovers.

    // 10.02 ends in 002: the terminal refuses, the reason reaches the cashier, the record keeps
    // the decline and the same return may be asked again.
    let e = pay
        .refund_to_presented_card("return-2", 1_002, ("EUR", 2), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PaymentError::Refused(why) if why == "Refusal (Refund declined)"),
        "{e}"
    );
    let records = pay.journal().records().await.unwrap();
    assert_eq!(
        declined(records.last().unwrap().outcome.as_ref().unwrap()),
        ("Refusal", Some("Refund declined"))
    );
    // The card removed from the terminal is refused too.
    let removed = pay
        .refund_to_presented_card("return-2", 1_004, ("EUR", 2), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&removed, PaymentError::Refused(why) if why.starts_with("Aborted")),
        "{removed}"
    );
    // A refund is never partial: an amount ending in 001 comes back whole.
    let whole = pay
        .refund_to_presented_card("return-2", 1_001, ("EUR", 2), None)
        .await
        .unwrap();
    assert_eq!(refunded(&whole), 1_001);
    assert!(matches!(
        pay.refund_to_presented_card("return-3", 0, ("EUR", 2), None)
            .await
            .unwrap_err(),
        PaymentError::InvalidAmount(0)
    ));
    // What a refund gave back can never pay a sale, nor be refunded by reference.
    let poi = poi_transaction_id.clone();
    assert!(matches!(
        pay.refund(&poi, "return-4", 100).await.unwrap_err(),
        PaymentError::UnknownPayment(_)
    ));

    // End of day: the refunds to presented cards are credits at the terminal.
    let totals = pay
        .reconcile(
            false,
            &[("EUR".to_owned(), 1, 3_000)],
            &[("EUR".to_owned(), 2, 3_001)],
        )
        .await
        .unwrap();
    assert_eq!(totals.terminal_credits, [("EUR".to_owned(), 2, 3_001)]);
    assert!(totals.differences.is_empty(), "{:?}", totals.differences);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_a_refund_to_a_presented_card_is_recovered_with_exactly_one_refund() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    let pay = payments(&sim, &dir.path().join("journal.json"), QUICK);
    // The terminal refunds, then the connection drops before its answer.
    sim.set_faults(Faults {
        drop_after_auth: true,
        ..Faults::default()
    });
    let o = pay
        .refund_to_presented_card("return-1", 2_500, ("EUR", 2), None)
        .await
        .unwrap();
    assert_eq!(refunded(&o), 2_500);
    sim.set_faults(Faults::default());
    // 10.06 ends in 006: refunded, and the answer never comes (the link times out).
    let slow = payments(
        &sim,
        &dir.path().join("journal-2.json"),
        Duration::from_millis(800),
    );
    let o = slow
        .refund_to_presented_card("return-2", 1_006, ("EUR", 2), None)
        .await
        .unwrap();
    assert_eq!(refunded(&o), 1_006);
    let refunds: Vec<_> = sim
        .transactions()
        .into_iter()
        .filter(|t| t.kind == "UnreferencedRefund")
        .collect();
    assert_eq!(refunds.len(), 2, "one refund per return at the terminal");
    assert_eq!(refunds[0].sale_transaction_id, "return-1");
    assert_eq!(refunds[1].sale_transaction_id, "return-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_refund_to_a_presented_card_is_recovered_before_anything_is_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.json");
    let terminal = dir.path().join("terminal");
    crash_while_the_customer_is_at_the_terminal(&terminal, &journal, Request::PresentedCardRefund)
        .await;
    // After the restart the same return is asked again: the terminal is asked about the lost
    // request first (as a payment-category message), and its refund is the answer.
    let sim = sim(&terminal).await;
    let pay = payments(&sim, &journal, QUICK);
    let o = pay
        .refund_to_presented_card("return-1", 4_200, ("EUR", 2), None)
        .await
        .unwrap();
    assert_eq!(refunded(&o), 4_200);
    assert_eq!(sim.transactions().len(), 1, "exactly one refund");
    let records = pay.journal().records().await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, Some(o));
}

/// Issue 16, item 5: a till configured with another key id than the terminal's got
/// "409 card_request_unresolved … HTTP 401" with nothing pointing at the key. The terminal could
/// not read the request, so nothing happened: the payment is refused with the reason, and
/// nothing is left in flight to block the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_terminal_does_not_share_is_named_and_leaves_nothing_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(&dir.path().join("terminal")).await;
    let wrong = payments::link::TerminalLink::new(payments::link::LinkConfig {
        addr: sim.addr(),
        poi_id: common::POI.into(),
        sale_id: "till-1".into(),
        key: payments::crypto::SecurityKey::new("KassaKey", 1, "kassa test passphrase"),
        ca_pem: sim.ca_pem().as_bytes().to_vec(),
        timeout: QUICK,
    })
    .unwrap();
    let journal = dir.path().join("journal.json");
    let pay = payments::service::CardPayments::new(
        wrong,
        payments::service::FileJournal::open(&journal).unwrap(),
        common::LIMITS,
    )
    .with_recovery(3, Duration::from_millis(50));
    let refused = pay.pay("sale-1", 2_000, "EUR", 2, None).await.unwrap_err();
    assert!(
        matches!(refused, PaymentError::Unreachable(_)),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains(
            "the terminal refused the message protection: check key id, version and passphrase"
        ),
        "{refused}"
    );
    // With the right key the next payment goes through at once: nothing waits to be resolved.
    let right = payments(&sim, &journal, QUICK);
    let ok = right.pay("sale-2", 2_000, "EUR", 2, None).await.unwrap();
    assert_eq!(approved(&ok).authorised_minor, 2_000);
}
