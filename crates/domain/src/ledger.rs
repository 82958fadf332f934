//! Ledger events: the past-tense facts a terminal appends, each with its identity, and the
//! fold that turns them into stock movements.

use crate::catalog::Sku;
use crate::ids::{EventId, StaffId, StoreId, TerminalId};
use crate::money::Money;
use crate::quantity::Quantity;
use crate::sale::{PricedCart, PricedReturn, Settlement, Tender};
use crate::staff::Permission;
use crate::stored_value::StoredValueLoad;
use crate::time::Hlc;

/// Who and when: the identity every event is born with at the till.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    /// UUIDv7, unique chain-wide.
    pub id: EventId,
    /// The store the terminal belongs to.
    pub store: StoreId,
    /// The terminal that appended it.
    pub terminal: TerminalId,
    /// The terminal's gap-free sequence number, from 1.
    pub seq: u64,
    /// The hybrid-logical-clock reading when it was appended.
    pub hlc: Hlc,
}

/// A ledger event: identity plus fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Identity.
    pub meta: EventMeta,
    /// The fact.
    pub body: EventBody,
}

/// Why stock was adjusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdjustmentReason {
    /// Goods received from a supplier.
    Received,
    /// Damaged and written off.
    Damaged,
    /// Lost or stolen (shrink).
    Shrink,
    /// Any other correction.
    Correction,
}

impl AdjustmentReason {
    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AdjustmentReason::Received => "received",
            AdjustmentReason::Damaged => "damaged",
            AdjustmentReason::Shrink => "shrink",
            AdjustmentReason::Correction => "correction",
        }
    }

    /// Parses the wire name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "received" => Some(AdjustmentReason::Received),
            "damaged" => Some(AdjustmentReason::Damaged),
            "shrink" => Some(AdjustmentReason::Shrink),
            "correction" => Some(AdjustmentReason::Correction),
            _ => None,
        }
    }
}

/// Which leg of a transfer between stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferLeg {
    /// Left the sending store.
    Shipped,
    /// Arrived at the receiving store.
    Received,
}

/// Paid into or out of the drawer outside a sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CashMovementKind {
    /// Cash put into the drawer (change top-up).
    PaidIn,
    /// Cash taken out (a delivery paid, a bank drop).
    PaidOut,
}

/// A supervisor's approval of something the acting cashier may not do alone, given on the spot
/// with the supervisor's PIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// What was approved.
    pub permission: Permission,
    /// Who approved it.
    pub by: StaffId,
}

/// A completed sale, with everything a receipt reprint or an audit needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleCompleted {
    /// Receipt number, unique per terminal.
    pub receipt: String,
    /// The cashier, when signed in.
    pub cashier: Option<StaffId>,
    /// The priced lines and taxes.
    pub cart: PricedCart,
    /// Tenders as given.
    pub tenders: Vec<Tender>,
    /// Totals, rounding, change.
    pub settlement: Settlement,
    /// Approvals given for this sale (large discounts, price overrides).
    pub approvals: Vec<Approval>,
}

/// A sale voided right after it completed (the last sale of the terminal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleVoided {
    /// The voided sale's event.
    pub sale: EventId,
    /// Its receipt number.
    pub receipt: String,
    /// Why.
    pub reason: String,
    /// The lines whose stock goes back.
    pub lines: Vec<(Sku, Quantity)>,
    /// What goes back to the customer.
    pub refund: Money,
    /// The approval of the void, when the cashier needed one.
    pub approvals: Vec<Approval>,
}

/// Goods returned by a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnCompleted {
    /// Return receipt number, unique per terminal.
    pub receipt: String,
    /// The original sale's receipt number, when returned with a receipt.
    pub original_receipt: Option<String>,
    /// The reason (required without a receipt).
    pub reason: Option<String>,
    /// What was returned and refunded.
    pub refund: PricedReturn,
    /// How the refund was paid out.
    pub tenders: Vec<Tender>,
    /// Approvals given for this return.
    pub approvals: Vec<Approval>,
}

/// The facts a terminal records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventBody {
    /// A sale was completed and paid.
    SaleCompleted(SaleCompleted),
    /// The last sale was voided.
    SaleVoided(SaleVoided),
    /// Goods were returned.
    ReturnCompleted(ReturnCompleted),
    /// Stock was adjusted by a signed quantity in thousandths.
    StockAdjusted {
        /// The variant.
        sku: Sku,
        /// Signed change in thousandths of a unit.
        delta_milli: i64,
        /// Why.
        reason: AdjustmentReason,
        /// A free-text note.
        note: Option<String>,
    },
    /// A physical count set on-hand as of this event's clock reading.
    StockCounted {
        /// The variant.
        sku: Sku,
        /// What was counted, in thousandths (may be zero).
        counted_milli: i64,
    },
    /// One leg of a transfer between stores.
    StockTransferred {
        /// The transfer's id, shared by both legs.
        transfer: String,
        /// The variant.
        sku: Sku,
        /// How much.
        quantity: Quantity,
        /// Sending store.
        from: StoreId,
        /// Receiving store.
        to: StoreId,
        /// Which leg this event records.
        leg: TransferLeg,
    },
    /// A cashier opened a shift with a counted float.
    ShiftOpened {
        /// The shift's id.
        shift: String,
        /// Who.
        staff: StaffId,
        /// The counted float.
        float: Money,
    },
    /// A shift was closed with a blind count; everything up to `up_to_seq` belongs to it.
    ShiftClosed {
        /// The shift's id.
        shift: String,
        /// Who closed it.
        staff: StaffId,
        /// The last sequence number of the terminal that belongs to the shift.
        up_to_seq: u64,
        /// Cash the ledger expects in the drawer.
        expected: Money,
        /// Cash counted.
        counted: Money,
    },
    /// Cash paid in or out of the drawer.
    CashMovement {
        /// The shift's id.
        shift: String,
        /// In or out.
        kind: CashMovementKind,
        /// How much.
        amount: Money,
        /// Why.
        reason: String,
        /// The approval, when the cashier needed one.
        approvals: Vec<Approval>,
    },
    /// Part of a return's card refund that no terminal gave back was paid from the drawer in
    /// cash instead: the return's card tender is less by `amount`, its cash tender more.
    CardRefundPaidInCash {
        /// The return's receipt number.
        return_receipt: String,
        /// How much, in the return's currency.
        amount: Money,
    },
    /// The cash drawer was opened without a sale.
    NoSale {
        /// The shift's id.
        shift: String,
        /// Who opened it.
        staff: StaffId,
        /// The approval, when the cashier needed one.
        approvals: Vec<Approval>,
    },
    /// Too many wrong PINs: a member of staff is locked out of this terminal for a while.
    StaffLockedOut {
        /// Who.
        staff: StaffId,
        /// Until when, epoch milliseconds.
        until_ms: i64,
    },
    /// A gift card (or store credit account) was issued with an opening amount.
    StoredValueIssued(StoredValueLoad),
    /// Money was added to a gift card or store credit account.
    StoredValueToppedUp(StoredValueLoad),
    /// A card request to the payment terminal, its outcome, or an offline approval settling.
    Card(crate::card::CardEvent),
    /// A step of an order from the web at this store: picked, ready for pickup, shipped or
    /// handed over.
    OrderStep(OrderStep),
    /// Goods of an in-store sale that the customer returned through the web shop (HQ's returns
    /// API, with the sale's receipt number) arrived at this store and went back into its stock.
    /// The money was refunded by the web shop, never through this store's drawer.
    ReturnReceived(ReturnReceived),
    /// What the law of the till's country adds to one of its receipts (Austria: the signed
    /// RKSV code), made in the transaction of the receipt it belongs to and chained right
    /// after it; or a receipt of the fiscal regime's own (a start, null or month receipt).
    FiscalReceipt(FiscalReceipt),
    /// The terminal's signing key was replaced: this event is the last one signed by the old
    /// key, every later one is signed by `public_key` (an Ed25519 public key). The chain goes
    /// on unbroken; a verifier takes the new key from here.
    KeyRotated {
        /// The new public key.
        public_key: [u8; 32],
    },
}

/// A fiscal receipt: the regime's document for one receipt of the till.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiscalReceipt {
    /// The regime (`AT-RKSV`).
    pub regime: String,
    /// The receipt it belongs to (a sale's, a return's, or its own number).
    pub receipt: String,
    /// What kind, in the regime's words (RKSV: `start`, `standard`, `storno`, `training`,
    /// `null`).
    pub kind: String,
    /// The regime's document (RKSV: the compact JWS).
    pub document: String,
    /// The signature device had failed: the document is marked, not signed.
    pub device_failed: bool,
    /// With the register's first receipt: what a verifier needs beside its documents (RKSV:
    /// the cryptographic material container — the register's AES key and the device's
    /// certificate or public key — as JSON), so HQ can export what the till can.
    pub material: Option<String>,
}

/// A return through the web shop received at a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnReceived {
    /// HQ's id of the return.
    pub web_return: String,
    /// Its number, as the customer knows it (`R-000123`).
    pub number: String,
    /// The receipt of the sale the goods came from.
    pub sale_receipt: String,
    /// What arrived.
    pub lines: Vec<(Sku, Quantity)>,
    /// Who received it.
    pub staff: StaffId,
}

/// What a store did with an order from the web. Stock leaves the store when the order is
/// shipped or handed over, not when it was ordered or picked; a handover paid at the till names
/// the sale that took the money (and moved the stock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderStep {
    /// HQ's id of the order.
    pub order: String,
    /// Its number, as the customer knows it.
    pub number: String,
    /// What was done.
    pub step: OrderStepKind,
    /// The quantities the step concerns: what was picked, shipped or handed over.
    pub lines: Vec<(Sku, Quantity)>,
    /// The sale that took payment at pickup, by receipt number.
    pub sale_receipt: Option<String>,
    /// A return the customer took as store credit at the till instead of a refund from the web
    /// shop: the account credited and how much (the returned lines at the order's prices).
    pub store_credit: Option<(crate::stored_value::AccountNumber, crate::Money)>,
    /// Who did it.
    pub staff: StaffId,
}

/// The steps of an order at a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderStepKind {
    /// Taken from the shelf: the quantities found (fewer than ordered is a short pick).
    Picked,
    /// Waiting at the counter for the customer (a pickup order).
    Ready,
    /// Given to a carrier.
    Shipped {
        /// The carrier.
        carrier: String,
        /// Its tracking number.
        tracking: String,
    },
    /// Given to the customer at the till.
    HandedOver,
    /// Brought back to this store by the customer after it was handed over or shipped: the
    /// goods go back into this store's stock, and the money is refunded by the web shop, which
    /// took it (a till cannot refund a card it never saw).
    Returned,
}

impl OrderStepKind {
    /// Its name on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            OrderStepKind::Picked => "picked",
            OrderStepKind::Ready => "ready",
            OrderStepKind::Shipped { .. } => "shipped",
            OrderStepKind::HandedOver => "handed-over",
            OrderStepKind::Returned => "returned",
        }
    }
}

/// The type name of [`EventBody::KeyRotated`]: a sync batch ends at such an event.
pub const KEY_ROTATED: &str = "KeyRotated";

impl EventBody {
    /// The event's type name, as on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::SaleCompleted(_) => "SaleCompleted",
            EventBody::SaleVoided(_) => "SaleVoided",
            EventBody::ReturnCompleted(_) => "ReturnCompleted",
            EventBody::StockAdjusted { .. } => "StockAdjusted",
            EventBody::StockCounted { .. } => "StockCounted",
            EventBody::StockTransferred { .. } => "StockTransferred",
            EventBody::ShiftOpened { .. } => "ShiftOpened",
            EventBody::ShiftClosed { .. } => "ShiftClosed",
            EventBody::CashMovement { .. } => "CashMovement",
            EventBody::CardRefundPaidInCash { .. } => "CardRefundPaidInCash",
            EventBody::NoSale { .. } => "NoSale",
            EventBody::StaffLockedOut { .. } => "StaffLockedOut",
            EventBody::StoredValueIssued(_) => "StoredValueIssued",
            EventBody::StoredValueToppedUp(_) => "StoredValueToppedUp",
            EventBody::Card(card) => card.kind(),
            EventBody::OrderStep(_) => "OrderStep",
            EventBody::ReturnReceived(_) => "ReturnReceived",
            EventBody::FiscalReceipt(_) => "FiscalReceipt",
            EventBody::KeyRotated { .. } => KEY_ROTATED,
        }
    }
}

/// What an event does to one location's stock of one SKU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StockEffect {
    /// Add a signed quantity (thousandths).
    Move(i64),
    /// Set on-hand to this quantity as of the event's clock reading.
    Count(i64),
}

/// One stock consequence of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockMovement {
    /// Where.
    pub location: StoreId,
    /// What.
    pub sku: Sku,
    /// How.
    pub effect: StockEffect,
}

/// The stock movements an event implies. Sales take stock out, returns and voids put it back,
/// a transfer leaves the sender when shipped and reaches the receiver when received.
pub fn stock_movements(event: &Event) -> Vec<StockMovement> {
    let here = &event.meta.store;
    let moved = |location: &StoreId, sku: &Sku, delta: i64| StockMovement {
        location: location.clone(),
        sku: sku.clone(),
        effect: StockEffect::Move(delta),
    };
    match &event.body {
        EventBody::SaleCompleted(sale) => sale
            .cart
            .lines
            .iter()
            .map(|l| moved(here, &l.sku, -l.quantity.milli()))
            .collect(),
        EventBody::SaleVoided(void) => void
            .lines
            .iter()
            .map(|(sku, q)| moved(here, sku, q.milli()))
            .collect(),
        EventBody::ReturnCompleted(ret) => ret
            .refund
            .lines
            .iter()
            .map(|l| moved(here, &l.sku, l.quantity.milli()))
            .collect(),
        EventBody::StockAdjusted {
            sku, delta_milli, ..
        } => vec![moved(here, sku, *delta_milli)],
        EventBody::StockCounted { sku, counted_milli } => vec![StockMovement {
            location: here.clone(),
            sku: sku.clone(),
            effect: StockEffect::Count(*counted_milli),
        }],
        EventBody::StockTransferred {
            sku,
            quantity,
            from,
            to,
            leg,
            ..
        } => match leg {
            TransferLeg::Shipped => vec![moved(from, sku, -quantity.milli())],
            TransferLeg::Received => vec![moved(to, sku, quantity.milli())],
        },
        EventBody::ShiftOpened { .. }
        | EventBody::ShiftClosed { .. }
        | EventBody::CashMovement { .. }
        | EventBody::CardRefundPaidInCash { .. }
        | EventBody::NoSale { .. }
        | EventBody::StaffLockedOut { .. }
        | EventBody::StoredValueIssued(_)
        | EventBody::StoredValueToppedUp(_) => Vec::new(),
        EventBody::Card(_) => Vec::new(),
        // An order leaves the store when it is shipped or handed over; a handover paid at the
        // till was taken out by its sale.
        EventBody::OrderStep(step) => match (&step.step, &step.sale_receipt) {
            (OrderStepKind::Shipped { .. }, _) | (OrderStepKind::HandedOver, None) => step
                .lines
                .iter()
                .map(|(sku, q)| moved(here, sku, -q.milli()))
                .collect(),
            (OrderStepKind::Returned, _) => step
                .lines
                .iter()
                .map(|(sku, q)| moved(here, sku, q.milli()))
                .collect(),
            _ => Vec::new(),
        },
        EventBody::ReturnReceived(r) => r
            .lines
            .iter()
            .map(|(sku, q)| moved(here, sku, q.milli()))
            .collect(),
        EventBody::FiscalReceipt(_) | EventBody::KeyRotated { .. } => Vec::new(),
    }
}
