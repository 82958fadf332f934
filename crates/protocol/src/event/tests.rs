//! Golden and round-trip tests of the canonical event encoding.

use super::*;
use domain::ledger::Approval;
use domain::presets;
use domain::sale::{LineInput, price_cart, settle};
use domain::staff::Permission;
use domain::stored_value::{AccountNumber, StoredValueKind, StoredValueLoad};
use domain::{StoreId, Timestamp};

fn meta(seq: u64) -> EventMeta {
    EventMeta {
        id: EventId::parse("01935f4e-8a2b-7c3d-9e4f-0123456789ab").unwrap(),
        store: StoreId::parse("vienna-01").unwrap(),
        terminal: TerminalId::parse("vienna-01-t1").unwrap(),
        seq,
        hlc: Hlc::new(1_790_000_000_000, 3),
    }
}

fn sale() -> Event {
    let at = presets::jurisdiction("AT").unwrap();
    let cart = price_cart(
        &at,
        &[LineInput {
            sku: Sku::parse("GRO-BRD-0012").unwrap(),
            name: "Bauernbrot 750 g".into(),
            unit_price: Money::from_minor(349, Currency::EUR),
            quantity: Quantity::each(2).unwrap(),
            unit: UnitOfSale::Each,
            tax_category: TaxCategory::parse("reduced").unwrap(),
            discount: None,
            fixed_amount: None,
        }],
        None,
        Timestamp::from_millis(1_790_000_000_000),
    )
    .unwrap();
    let tenders = vec![Tender {
        kind: TenderKind::Cash,
        amount: Money::from_minor(1000, Currency::EUR),
        reference: None,
    }];
    let settlement = settle(&cart, &tenders, None).unwrap();
    Event {
        meta: meta(7),
        body: EventBody::SaleCompleted(SaleCompleted {
            receipt: "vienna-01-t1-000007".into(),
            cashier: Some(StaffId::parse("anna").unwrap()),
            cart,
            tenders,
            settlement,
            approvals: Vec::new(),
        }),
    }
}

#[test]
fn sale_encoding_is_pinned() {
    let bytes = encode(&sale());
    insta::assert_snapshot!(String::from_utf8(bytes).unwrap());
}

#[test]
fn stock_count_encoding_is_pinned() {
    let event = Event {
        meta: meta(1),
        body: EventBody::StockCounted {
            sku: Sku::parse("GRO-BRD-0012").unwrap(),
            counted_milli: 12_000,
        },
    };
    assert_eq!(
        String::from_utf8(encode(&event)).unwrap(),
        r#"{"v":1,"id":"01935f4e-8a2b-7c3d-9e4f-0123456789ab","store":"vienna-01","terminal":"vienna-01-t1","seq":1,"hlc":[1790000000000,3],"body":{"StockCounted":{"sku":"GRO-BRD-0012","counted":12000}}}"#
    );
}

#[test]
fn every_event_kind_round_trips() {
    let eur = |m| Money::from_minor(m, Currency::EUR);
    let sku = Sku::parse("X").unwrap();
    let staff = StaffId::parse("anna").unwrap();
    let bodies = vec![
        sale().body,
        EventBody::SaleVoided(SaleVoided {
            sale: meta(1).id,
            receipt: "r".into(),
            reason: "customer changed mind".into(),
            lines: vec![(sku.clone(), Quantity::each(2).unwrap())],
            refund: eur(698),
            approvals: vec![Approval {
                permission: Permission::Void,
                by: StaffId::parse("sven").unwrap(),
            }],
        }),
        EventBody::StockAdjusted {
            sku: sku.clone(),
            delta_milli: -1500,
            reason: AdjustmentReason::Damaged,
            note: Some("dropped".into()),
        },
        EventBody::StockTransferred {
            transfer: "tr-1".into(),
            sku: sku.clone(),
            quantity: Quantity::each(3).unwrap(),
            from: StoreId::parse("a").unwrap(),
            to: StoreId::parse("b").unwrap(),
            leg: TransferLeg::Received,
        },
        EventBody::ShiftOpened {
            shift: "s1".into(),
            staff: staff.clone(),
            float: eur(20000),
        },
        EventBody::ShiftClosed {
            shift: "s1".into(),
            staff: staff.clone(),
            up_to_seq: 41,
            expected: eur(35000),
            counted: eur(34990),
        },
        EventBody::CashMovement {
            shift: "s1".into(),
            kind: CashMovementKind::PaidOut,
            amount: eur(1250),
            reason: "window cleaner".into(),
            approvals: vec![Approval {
                permission: Permission::PaidOut,
                by: StaffId::parse("sven").unwrap(),
            }],
        },
        EventBody::CardRefundPaidInCash {
            return_receipt: "T1-000042".into(),
            amount: eur(1986),
        },
        EventBody::NoSale {
            shift: "s1".into(),
            staff: staff.clone(),
            approvals: Vec::new(),
        },
        EventBody::StaffLockedOut {
            staff: staff.clone(),
            until_ms: 1_790_000_300_000,
        },
        gift_card_issued().body,
        EventBody::StoredValueToppedUp(StoredValueLoad {
            account: AccountNumber::generate(StoredValueKind::StoreCredit, 99),
            cashier: None,
            amount: eur(1000),
            tenders: vec![Tender {
                kind: TenderKind::Card,
                amount: eur(1000),
                reference: Some("psp-881".into()),
            }],
            change: eur(0),
        }),
    ];
    let bodies = bodies.into_iter().chain(card_bodies());
    for body in bodies {
        let event = Event {
            meta: meta(2),
            body,
        };
        let bytes = encode(&event);
        assert_eq!(decode(&bytes).unwrap(), event);
    }
}

fn gift_card_issued() -> Event {
    let eur = |m| Money::from_minor(m, Currency::EUR);
    Event {
        meta: meta(9),
        body: EventBody::StoredValueIssued(StoredValueLoad {
            account: AccountNumber::generate(StoredValueKind::GiftCard, 1_234_567_890),
            cashier: Some(StaffId::parse("anna").unwrap()),
            amount: eur(5000),
            tenders: vec![Tender {
                kind: TenderKind::Cash,
                amount: eur(6000),
                reference: None,
            }],
            change: eur(1000),
        }),
    }
}

#[test]
fn gift_card_issue_encoding_is_pinned() {
    assert_eq!(
        String::from_utf8(encode(&gift_card_issued())).unwrap(),
        r#"{"v":1,"id":"01935f4e-8a2b-7c3d-9e4f-0123456789ab","store":"vienna-01","terminal":"vienna-01-t1","seq":9,"hlc":[1790000000000,3],"body":{"StoredValueIssued":{"account":"GCIO21FK00000K","cashier":"anna","cur":"EUR","amount":5000,"tenders":[{"kind":"cash","amt":6000,"ref":null}],"change":1000}}}"#
    );
}

#[test]
fn a_stored_value_event_with_a_bad_account_names_the_field() {
    let text = String::from_utf8(encode(&gift_card_issued()))
        .unwrap()
        .replace("GCIO21FK00000K", "GCIO21FK00000J");
    assert_eq!(decode(text.as_bytes()).unwrap_err().field, "body.account");
}

#[test]
fn non_canonical_bytes_are_rejected() {
    let bytes = encode(&sale());
    let mut spaced = String::from_utf8(bytes.clone()).unwrap();
    spaced.insert(1, ' ');
    assert_eq!(
        decode(spaced.as_bytes()).unwrap_err().to_string(),
        "event: bytes are not in canonical form"
    );
    let text = String::from_utf8(bytes)
        .unwrap()
        .replace("\"seq\":7", "\"seq\":0");
    assert_eq!(decode(text.as_bytes()).unwrap_err().field, "seq");
    assert!(decode(b"not json").is_err());
    let bad_sku = String::from_utf8(encode(&sale()))
        .unwrap()
        .replace("GRO-BRD-0012", "GRO BRD");
    assert_eq!(
        decode(bad_sku.as_bytes()).unwrap_err().field,
        "body.lines[0].sku"
    );
}

fn card_bodies() -> Vec<EventBody> {
    use domain::card::{
        CardApproval, CardEvent, CardOutcome, CardRequestKind, CardRequestStarted, MaskedPan,
    };
    let eur = |m| Money::from_minor(m, Currency::EUR);
    vec![
        EventBody::Card(CardEvent::RequestStarted(CardRequestStarted {
            service_id: "AbC123xyZ9".into(),
            kind: CardRequestKind::Refund,
            sale: "return-1".into(),
            amount: eur(500),
            original: Some("poi-1".into()),
            shift: Some("s1".into()),
        })),
        EventBody::Card(CardEvent::RequestEnded {
            service_id: "AbC123xyZ9".into(),
            outcome: CardOutcome::Approved(CardApproval {
                poi_transaction_id: "poi-1".into(),
                psp_reference: Some("psp".into()),
                auth_code: Some("123456".into()),
                brand: Some("visa".into()),
                masked_pan: MaskedPan::parse("411111 **** 1111"),
                token: Some("tok".into()),
                entry_mode: Some("Contactless".into()),
                offline: true,
                authorised: eur(1650),
            }),
        }),
        EventBody::Card(CardEvent::RequestEnded {
            service_id: "s2".into(),
            outcome: CardOutcome::Declined {
                condition: "Refusal".into(),
                reason: Some("Not enough balance".into()),
            },
        }),
        EventBody::Card(CardEvent::RequestEnded {
            service_id: "s3".into(),
            outcome: CardOutcome::NotProcessed,
        }),
        EventBody::Card(CardEvent::RequestEnded {
            service_id: "s4".into(),
            outcome: CardOutcome::Refunded {
                poi_transaction_id: "poi-9".into(),
                amount: eur(500),
            },
        }),
        EventBody::Card(CardEvent::RequestStarted(CardRequestStarted {
            service_id: "s7".into(),
            kind: CardRequestKind::UnreferencedRefund,
            sale: "vienna-01-t1-000004".into(),
            amount: eur(349),
            original: None,
            shift: Some("s1".into()),
        })),
        EventBody::Card(CardEvent::OfflineSettled {
            service_id: "s5".into(),
            poi_transaction_id: "poi-5".into(),
        }),
        EventBody::Card(CardEvent::OfflineDeclined {
            service_id: "s6".into(),
            poi_transaction_id: "poi-6".into(),
            receipt: Some("vienna-01-t1-000003".into()),
            cashier: Some(StaffId::parse("anna").unwrap()),
            amount: eur(1013),
        }),
    ]
}

#[test]
fn card_encoding_is_pinned_and_a_wide_pan_is_refused() {
    let event = Event {
        meta: meta(3),
        body: card_bodies().swap_remove(1),
    };
    let text = String::from_utf8(encode(&event)).unwrap();
    assert_eq!(
        text,
        r#"{"v":1,"id":"01935f4e-8a2b-7c3d-9e4f-0123456789ab","store":"vienna-01","terminal":"vienna-01-t1","seq":3,"hlc":[1790000000000,3],"body":{"Card":{"Ended":{"service":"AbC123xyZ9","outcome":{"Approved":{"poi":"poi-1","psp":"psp","auth":"123456","brand":"visa","pan":"411111 **** 1111","token":"tok","entry":"Contactless","offline":true,"cur":"EUR","amount":1650}}}}}}"#
    );
    let wide = text.replace("411111 **** 1111", "4111111111111111");
    assert_eq!(
        decode(wide.as_bytes()).unwrap_err().field,
        "body.outcome.pan"
    );
}

#[test]
fn a_refund_to_a_presented_card_has_its_own_pinned_kind_and_the_older_kinds_keep_theirs() {
    use domain::card::{CardEvent, CardRequestKind, CardRequestStarted};
    let started = |kind| Event {
        meta: meta(4),
        body: EventBody::Card(CardEvent::RequestStarted(CardRequestStarted {
            service_id: "Ur7Kq2ZxA1".into(),
            kind,
            sale: "vienna-01-t1-000004".into(),
            amount: Money::from_minor(349, Currency::EUR),
            original: None,
            shift: Some("s1".into()),
        })),
    };
    let golden = |kind: &str| {
        format!(
            r#"{{"v":1,"id":"01935f4e-8a2b-7c3d-9e4f-0123456789ab","store":"vienna-01","terminal":"vienna-01-t1","seq":4,"hlc":[1790000000000,3],"body":{{"Card":{{"Started":{{"service":"Ur7Kq2ZxA1","kind":"{kind}","sale":"vienna-01-t1-000004","cur":"EUR","amount":349,"original":null,"shift":"s1"}}}}}}}}"#
        )
    };
    for (kind, wire) in [
        (CardRequestKind::UnreferencedRefund, "unreferenced-refund"),
        (CardRequestKind::Payment, "payment"),
        (CardRequestKind::Refund, "refund"),
        (CardRequestKind::Reversal, "reversal"),
    ] {
        let event = started(kind);
        let bytes = encode(&event);
        assert_eq!(String::from_utf8(bytes.clone()).unwrap(), golden(wire));
        assert_eq!(decode(&bytes).unwrap(), event);
    }
    let unknown = golden("refund-to-card");
    assert_eq!(decode(unknown.as_bytes()).unwrap_err().field, "body.kind");
}

/// An online order brought back to a till and refunded as store credit: the credit travels with
/// the step, round-trips, and an order step without one encodes as it always did.
#[test]
fn an_order_return_taken_as_store_credit_round_trips_and_older_steps_keep_their_bytes() {
    let account = AccountNumber::generate(StoredValueKind::StoreCredit, 42);
    let step = |store_credit| Event {
        meta: meta(9),
        body: EventBody::OrderStep(OrderStep {
            order: "id-1".into(),
            number: "W-000001".into(),
            step: OrderStepKind::Returned,
            lines: vec![(
                Sku::parse("GRO-BRD-0012").unwrap(),
                Quantity::each(1).unwrap(),
            )],
            sale_receipt: None,
            store_credit,
            staff: domain::StaffId::parse("anna").unwrap(),
        }),
    };
    let credited = step(Some((
        account.clone(),
        Money::from_minor(420, Currency::EUR),
    )));
    let bytes = encode(&credited);
    assert_eq!(decode(&bytes).unwrap(), credited);
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.contains(&format!(r#""credit":["{account}",420,"EUR"]"#)),
        "{text}"
    );
    let plain = String::from_utf8(encode(&step(None))).unwrap();
    assert!(!plain.contains("credit"), "{plain}");
    // A credit on a step that is not a return, or of nothing, is refused by field.
    for (from, to) in [
        (r#""step":"returned""#, r#""step":"ready""#),
        (",420,", ",0,"),
    ] {
        let bad = text.replace(from, to);
        let dto: EventDto = serde_json::from_str(&bad).unwrap();
        assert_eq!(
            Event::try_from(&dto).unwrap_err().field,
            "body.credit",
            "{bad}"
        );
    }
}

/// Goods returned through the web shop and received at a store: the event round-trips, raises
/// the store's stock, and a line of nothing is refused by field.
#[test]
fn a_web_return_received_at_a_store_round_trips_and_puts_the_goods_back() {
    let sku = Sku::parse("GRO-BRD-0012").unwrap();
    let received = Event {
        meta: meta(10),
        body: EventBody::ReturnReceived(ReturnReceived {
            web_return: "id-7".into(),
            number: "R-000007".into(),
            sale_receipt: "T1-000042".into(),
            lines: vec![(sku.clone(), Quantity::each(2).unwrap())],
            staff: domain::StaffId::parse("anna").unwrap(),
        }),
    };
    let bytes = encode(&received);
    assert_eq!(decode(&bytes).unwrap(), received);
    let moves = domain::ledger::stock_movements(&received);
    assert_eq!(moves.len(), 1);
    assert_eq!(moves[0].sku, sku);
    assert_eq!(moves[0].effect, domain::ledger::StockEffect::Move(2000));
    let text = String::from_utf8(bytes).unwrap();
    let bad = text.replace(",2000]", ",0]");
    assert_ne!(bad, text);
    let dto: EventDto = serde_json::from_str(&bad).unwrap();
    assert_eq!(
        Event::try_from(&dto).unwrap_err().field,
        "body.lines[0].qty"
    );
}
