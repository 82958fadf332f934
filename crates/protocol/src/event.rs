//! The canonical encoding of ledger events: the exact bytes the hash chain covers and the sync
//! wire carries. Defined once, here; JSON with fields in a fixed order, amounts as integer minor
//! units, quantities as integer thousandths. Changing a byte of it breaks every stored chain, so
//! golden tests pin it and any change needs a new format version.

use domain::catalog::{Sku, TaxCategory};
use domain::ids::{EventId, StaffId};
use domain::ledger::{
    AdjustmentReason, Approval, CashMovementKind, Event, EventBody, EventMeta, FiscalReceipt,
    OrderStep, OrderStepKind, ReturnCompleted, ReturnReceived, SaleCompleted, SaleVoided,
    TransferLeg,
};
use domain::sale::{
    LineTax, PricedCart, PricedLine, PricedReturn, ReturnedLine, Settlement, TaxSummary, Tender,
    TenderKind,
};
use domain::staff::Permission;
use domain::tax::{PricingMode, TaxRate};
use domain::{Currency, Hlc, Money, Quantity, StoreId, TerminalId, UnitOfSale};
use serde::{Deserialize, Serialize};

use crate::FieldError;
use crate::error::AtField;

mod stored_value;
pub use stored_value::LoadDto;

/// The format version written into every event.
pub const FORMAT_VERSION: u8 = 1;

/// An event as encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventDto {
    /// Format version.
    pub v: u8,
    /// Event id (UUID).
    pub id: String,
    /// Store id.
    pub store: String,
    /// Terminal id.
    pub terminal: String,
    /// Sequence number.
    pub seq: u64,
    /// Clock reading: wall milliseconds and counter.
    pub hlc: (i64, u32),
    /// The fact.
    pub body: BodyDto,
}

/// The fact, tagged by event type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum BodyDto {
    SaleCompleted(SaleDto),
    SaleVoided(VoidDto),
    ReturnCompleted(ReturnDto),
    StockAdjusted {
        sku: String,
        delta: i64,
        reason: String,
        note: Option<String>,
    },
    StockCounted {
        sku: String,
        counted: i64,
    },
    StockTransferred {
        transfer: String,
        sku: String,
        qty: i64,
        from: String,
        to: String,
        leg: String,
    },
    ShiftOpened {
        shift: String,
        staff: String,
        cur: String,
        float: i64,
    },
    ShiftClosed {
        shift: String,
        staff: String,
        up_to_seq: u64,
        cur: String,
        expected: i64,
        counted: i64,
    },
    CashMovement {
        shift: String,
        kind: String,
        cur: String,
        amount: i64,
        reason: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        approvals: Vec<ApprovalDto>,
    },
    CardRefundPaidInCash {
        #[serde(rename = "return")]
        return_receipt: String,
        cur: String,
        amount: i64,
    },
    NoSale {
        shift: String,
        staff: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        approvals: Vec<ApprovalDto>,
    },
    StaffLockedOut {
        staff: String,
        until: i64,
    },
    StoredValueIssued(LoadDto),
    StoredValueToppedUp(LoadDto),
    Card(card::CardDto),
    OrderStep(OrderStepDto),
    ReturnReceived(ReturnReceivedDto),
    FiscalReceipt(FiscalReceiptDto),
    KeyRotated {
        /// The new Ed25519 public key, hex.
        key: String,
    },
}

/// A fiscal receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct FiscalReceiptDto {
    pub regime: String,
    pub receipt: String,
    pub kind: String,
    pub document: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub device_failed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub material: Option<String>,
}

/// A return through the web shop received at a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ReturnReceivedDto {
    pub web_return: String,
    pub number: String,
    pub sale: String,
    /// (SKU, thousandths).
    pub lines: Vec<(String, i64)>,
    pub staff: String,
}

/// A step of an order from the web at a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct OrderStepDto {
    pub order: String,
    pub number: String,
    /// `picked`, `ready`, `shipped` or `handed-over`.
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking: Option<String>,
    /// (SKU, thousandths).
    pub lines: Vec<(String, i64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale: Option<String>,
    /// A return refunded as store credit: the account, minor units, currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<(String, i64, String)>,
    pub staff: String,
}

/// An approval: which permission, given by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ApprovalDto {
    pub perm: String,
    pub by: String,
}

/// Tax on a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct LineTaxDto {
    pub code: String,
    pub rate: String,
    pub amt: i64,
}

/// A priced sale line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct SaleLineDto {
    pub sku: String,
    pub name: String,
    pub qty: i64,
    pub unit: String,
    pub tax_cat: String,
    pub price: i64,
    pub ext: i64,
    pub ldisc: i64,
    pub cdisc: i64,
    pub net: i64,
    pub taxes: Vec<LineTaxDto>,
    pub gross: i64,
}

/// A tax breakdown row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct TaxSummaryDto {
    pub code: String,
    pub rate: String,
    pub base: i64,
    pub amt: i64,
}

/// A tender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct TenderEventDto {
    pub kind: String,
    pub amt: i64,
    #[serde(rename = "ref")]
    pub reference: Option<String>,
}

/// A completed sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct SaleDto {
    pub receipt: String,
    pub cashier: Option<String>,
    pub cur: String,
    pub pricing: String,
    pub lines: Vec<SaleLineDto>,
    pub taxes: Vec<TaxSummaryDto>,
    pub subtotal: i64,
    pub disc: i64,
    pub net: i64,
    pub tax: i64,
    pub total: i64,
    pub tenders: Vec<TenderEventDto>,
    pub rounding: i64,
    pub due: i64,
    pub tendered: i64,
    pub change: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalDto>,
}

/// A voided sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct VoidDto {
    pub sale: String,
    pub receipt: String,
    pub reason: String,
    pub lines: Vec<(String, i64)>,
    pub cur: String,
    pub refund: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalDto>,
}

/// A returned line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ReturnLineDto {
    pub line: usize,
    pub sku: String,
    pub qty: i64,
    pub net: i64,
    pub taxes: Vec<LineTaxDto>,
    pub gross: i64,
}

/// A completed return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ReturnDto {
    pub receipt: String,
    pub original: Option<String>,
    pub reason: Option<String>,
    pub cur: String,
    pub lines: Vec<ReturnLineDto>,
    pub total: i64,
    pub rounding: i64,
    pub refund: i64,
    pub tenders: Vec<TenderEventDto>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalDto>,
}

fn pricing_str(p: PricingMode) -> &'static str {
    match p {
        PricingMode::Inclusive => "inclusive",
        PricingMode::Exclusive => "exclusive",
    }
}

fn line_taxes(taxes: &[LineTax]) -> Vec<LineTaxDto> {
    taxes
        .iter()
        .map(|t| LineTaxDto {
            code: t.code.clone(),
            rate: t.rate.percent().to_string(),
            amt: t.amount.minor(),
        })
        .collect()
}

fn tenders(tenders: &[Tender]) -> Vec<TenderEventDto> {
    tenders
        .iter()
        .map(|t| TenderEventDto {
            kind: t.kind.as_str().to_owned(),
            amt: t.amount.minor(),
            reference: t.reference.clone(),
        })
        .collect()
}

impl From<&Event> for EventDto {
    fn from(event: &Event) -> Self {
        let m = &event.meta;
        EventDto {
            v: FORMAT_VERSION,
            id: m.id.to_string(),
            store: m.store.to_string(),
            terminal: m.terminal.to_string(),
            seq: m.seq,
            hlc: (m.hlc.wall_ms(), m.hlc.counter()),
            body: BodyDto::from(&event.body),
        }
    }
}

impl From<&EventBody> for BodyDto {
    fn from(body: &EventBody) -> Self {
        match body {
            EventBody::SaleCompleted(s) => BodyDto::SaleCompleted(SaleDto {
                receipt: s.receipt.clone(),
                cashier: s.cashier.as_ref().map(ToString::to_string),
                cur: s.cart.currency.code().to_owned(),
                pricing: pricing_str(s.cart.pricing).to_owned(),
                lines: s
                    .cart
                    .lines
                    .iter()
                    .map(|l| SaleLineDto {
                        sku: l.sku.to_string(),
                        name: l.name.clone(),
                        qty: l.quantity.milli(),
                        unit: l.unit.as_str().to_owned(),
                        tax_cat: l.tax_category.to_string(),
                        price: l.unit_price.minor(),
                        ext: l.extended.minor(),
                        ldisc: l.line_discount.minor(),
                        cdisc: l.cart_discount.minor(),
                        net: l.net.minor(),
                        taxes: line_taxes(&l.taxes),
                        gross: l.gross.minor(),
                    })
                    .collect(),
                taxes: s
                    .cart
                    .taxes
                    .iter()
                    .map(|t| TaxSummaryDto {
                        code: t.code.clone(),
                        rate: t.rate.percent().to_string(),
                        base: t.base.minor(),
                        amt: t.amount.minor(),
                    })
                    .collect(),
                subtotal: s.cart.subtotal.minor(),
                disc: s.cart.discount_total.minor(),
                net: s.cart.net_total.minor(),
                tax: s.cart.tax_total.minor(),
                total: s.cart.total.minor(),
                tenders: tenders(&s.tenders),
                rounding: s.settlement.cash_rounding.minor(),
                due: s.settlement.due.minor(),
                tendered: s.settlement.tendered.minor(),
                change: s.settlement.change.minor(),
                approvals: approval_dtos(&s.approvals),
            }),
            EventBody::SaleVoided(v) => BodyDto::SaleVoided(VoidDto {
                sale: v.sale.to_string(),
                receipt: v.receipt.clone(),
                reason: v.reason.clone(),
                lines: v
                    .lines
                    .iter()
                    .map(|(s, q)| (s.to_string(), q.milli()))
                    .collect(),
                cur: v.refund.currency().code().to_owned(),
                refund: v.refund.minor(),
                approvals: approval_dtos(&v.approvals),
            }),
            EventBody::ReturnCompleted(r) => BodyDto::ReturnCompleted(ReturnDto {
                receipt: r.receipt.clone(),
                original: r.original_receipt.clone(),
                reason: r.reason.clone(),
                cur: r.refund.total.currency().code().to_owned(),
                lines: r
                    .refund
                    .lines
                    .iter()
                    .map(|l| ReturnLineDto {
                        line: l.sale_line,
                        sku: l.sku.to_string(),
                        qty: l.quantity.milli(),
                        net: l.net.minor(),
                        taxes: line_taxes(&l.taxes),
                        gross: l.gross.minor(),
                    })
                    .collect(),
                total: r.refund.total.minor(),
                rounding: r.refund.cash_rounding.minor(),
                refund: r.refund.refund.minor(),
                tenders: tenders(&r.tenders),
                approvals: approval_dtos(&r.approvals),
            }),
            EventBody::StockAdjusted {
                sku,
                delta_milli,
                reason,
                note,
            } => BodyDto::StockAdjusted {
                sku: sku.to_string(),
                delta: *delta_milli,
                reason: reason.as_str().to_owned(),
                note: note.clone(),
            },
            EventBody::StockCounted { sku, counted_milli } => BodyDto::StockCounted {
                sku: sku.to_string(),
                counted: *counted_milli,
            },
            EventBody::StockTransferred {
                transfer,
                sku,
                quantity,
                from,
                to,
                leg,
            } => BodyDto::StockTransferred {
                transfer: transfer.clone(),
                sku: sku.to_string(),
                qty: quantity.milli(),
                from: from.to_string(),
                to: to.to_string(),
                leg: match leg {
                    TransferLeg::Shipped => "shipped",
                    TransferLeg::Received => "received",
                }
                .to_owned(),
            },
            EventBody::ShiftOpened {
                shift,
                staff,
                float,
            } => BodyDto::ShiftOpened {
                shift: shift.clone(),
                staff: staff.to_string(),
                cur: float.currency().code().to_owned(),
                float: float.minor(),
            },
            EventBody::ShiftClosed {
                shift,
                staff,
                up_to_seq,
                expected,
                counted,
            } => BodyDto::ShiftClosed {
                shift: shift.clone(),
                staff: staff.to_string(),
                up_to_seq: *up_to_seq,
                cur: expected.currency().code().to_owned(),
                expected: expected.minor(),
                counted: counted.minor(),
            },
            EventBody::CashMovement {
                shift,
                kind,
                amount,
                reason,
                approvals,
            } => BodyDto::CashMovement {
                shift: shift.clone(),
                kind: match kind {
                    CashMovementKind::PaidIn => "paid-in",
                    CashMovementKind::PaidOut => "paid-out",
                }
                .to_owned(),
                cur: amount.currency().code().to_owned(),
                amount: amount.minor(),
                reason: reason.clone(),
                approvals: approval_dtos(approvals),
            },
            EventBody::CardRefundPaidInCash {
                return_receipt,
                amount,
            } => BodyDto::CardRefundPaidInCash {
                return_receipt: return_receipt.clone(),
                cur: amount.currency().code().to_owned(),
                amount: amount.minor(),
            },
            EventBody::NoSale {
                shift,
                staff,
                approvals,
            } => BodyDto::NoSale {
                shift: shift.clone(),
                staff: staff.to_string(),
                approvals: approval_dtos(approvals),
            },
            EventBody::StaffLockedOut { staff, until_ms } => BodyDto::StaffLockedOut {
                staff: staff.to_string(),
                until: *until_ms,
            },
            EventBody::StoredValueIssued(load) => BodyDto::StoredValueIssued(load.into()),
            EventBody::StoredValueToppedUp(load) => BodyDto::StoredValueToppedUp(load.into()),
            EventBody::Card(card) => BodyDto::Card(card::CardDto::from(card)),
            EventBody::OrderStep(o) => {
                let (carrier, tracking) = match &o.step {
                    OrderStepKind::Shipped { carrier, tracking } => {
                        (Some(carrier.clone()), Some(tracking.clone()))
                    }
                    _ => (None, None),
                };
                BodyDto::OrderStep(OrderStepDto {
                    order: o.order.clone(),
                    number: o.number.clone(),
                    step: o.step.as_str().to_owned(),
                    carrier,
                    tracking,
                    lines: o
                        .lines
                        .iter()
                        .map(|(sku, q)| (sku.to_string(), q.milli()))
                        .collect(),
                    sale: o.sale_receipt.clone(),
                    credit: o.store_credit.as_ref().map(|(account, amount)| {
                        (
                            account.to_string(),
                            amount.minor(),
                            amount.currency().code().to_owned(),
                        )
                    }),
                    staff: o.staff.to_string(),
                })
            }
            EventBody::FiscalReceipt(f) => BodyDto::FiscalReceipt(FiscalReceiptDto {
                regime: f.regime.clone(),
                receipt: f.receipt.clone(),
                kind: f.kind.clone(),
                document: f.document.clone(),
                device_failed: f.device_failed,
                material: f.material.clone(),
            }),
            EventBody::KeyRotated { public_key } => BodyDto::KeyRotated {
                key: hex::encode(public_key),
            },
            EventBody::ReturnReceived(r) => BodyDto::ReturnReceived(ReturnReceivedDto {
                web_return: r.web_return.clone(),
                number: r.number.clone(),
                sale: r.sale_receipt.clone(),
                lines: r
                    .lines
                    .iter()
                    .map(|(sku, q)| (sku.to_string(), q.milli()))
                    .collect(),
                staff: r.staff.to_string(),
            }),
        }
    }
}

fn approval_dtos(approvals: &[Approval]) -> Vec<ApprovalDto> {
    approvals
        .iter()
        .map(|a| ApprovalDto {
            perm: a.permission.as_str().to_owned(),
            by: a.by.to_string(),
        })
        .collect()
}

/// Reads domain values out of DTO fields, naming the field on failure.
struct Reader<'a> {
    path: &'a str,
}

impl Reader<'_> {
    fn field(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }
    fn currency(&self, name: &str, code: &str) -> Result<Currency, FieldError> {
        Currency::parse(code).at(|| self.field(name))
    }
    fn sku(&self, name: &str, value: &str) -> Result<Sku, FieldError> {
        Sku::parse(value).at(|| self.field(name))
    }
    fn qty(&self, name: &str, milli: i64) -> Result<Quantity, FieldError> {
        Quantity::from_milli(milli).at(|| self.field(name))
    }
    fn rate(&self, name: &str, value: &str) -> Result<TaxRate, FieldError> {
        TaxRate::parse_percent(value).at(|| self.field(name))
    }
    fn store(&self, name: &str, value: &str) -> Result<StoreId, FieldError> {
        StoreId::parse(value).at(|| self.field(name))
    }
    fn staff(&self, name: &str, value: &str) -> Result<StaffId, FieldError> {
        StaffId::parse(value).at(|| self.field(name))
    }
    fn approvals(&self, approvals: &[ApprovalDto]) -> Result<Vec<Approval>, FieldError> {
        approvals
            .iter()
            .enumerate()
            .map(|(i, a)| {
                Ok(Approval {
                    permission: Permission::parse(&a.perm).ok_or_else(|| {
                        FieldError::new(
                            self.field(&format!("approvals[{i}].perm")),
                            format!("`{}` is not a permission", a.perm),
                        )
                    })?,
                    by: self.staff(&format!("approvals[{i}].by"), &a.by)?,
                })
            })
            .collect()
    }
    fn line_taxes(&self, taxes: &[LineTaxDto], cur: Currency) -> Result<Vec<LineTax>, FieldError> {
        taxes
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Ok(LineTax {
                    code: t.code.clone(),
                    rate: self.rate(&format!("taxes[{i}].rate"), &t.rate)?,
                    amount: Money::from_minor(t.amt, cur),
                })
            })
            .collect()
    }
    fn tenders(
        &self,
        tenders: &[TenderEventDto],
        cur: Currency,
    ) -> Result<Vec<Tender>, FieldError> {
        tenders
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let kind = TenderKind::parse(&t.kind).ok_or_else(|| {
                    FieldError::new(
                        self.field(&format!("tenders[{i}].kind")),
                        "unknown tender kind",
                    )
                })?;
                Ok(Tender {
                    kind,
                    amount: Money::from_minor(t.amt, cur),
                    reference: t.reference.clone(),
                })
            })
            .collect()
    }
}

impl TryFrom<&EventDto> for Event {
    type Error = FieldError;

    fn try_from(dto: &EventDto) -> Result<Self, FieldError> {
        if dto.v != FORMAT_VERSION {
            return Err(FieldError::new(
                "v",
                format!(
                    "event format {} is not supported (this build reads {FORMAT_VERSION})",
                    dto.v
                ),
            ));
        }
        let r = Reader { path: "" };
        let meta = EventMeta {
            id: EventId::parse(&dto.id).at(|| "id".into())?,
            store: r.store("store", &dto.store)?,
            terminal: TerminalId::parse(&dto.terminal).at(|| "terminal".into())?,
            seq: dto.seq,
            hlc: Hlc::new(dto.hlc.0, dto.hlc.1),
        };
        if meta.seq == 0 {
            return Err(FieldError::new("seq", "sequence numbers start at 1"));
        }
        let body = body_from(&dto.body)?;
        Ok(Event { meta, body })
    }
}

fn body_from(dto: &BodyDto) -> Result<EventBody, FieldError> {
    Ok(match dto {
        BodyDto::SaleCompleted(s) => {
            let r = Reader { path: "body" };
            let cur = r.currency("cur", &s.cur)?;
            let money = |minor| Money::from_minor(minor, cur);
            let pricing = match s.pricing.as_str() {
                "inclusive" => PricingMode::Inclusive,
                "exclusive" => PricingMode::Exclusive,
                _ => {
                    return Err(FieldError::new(
                        "body.pricing",
                        "must be inclusive or exclusive",
                    ));
                }
            };
            let lines = s
                .lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let path = format!("body.lines[{i}]");
                    let r = Reader { path: &path };
                    Ok(PricedLine {
                        sku: r.sku("sku", &l.sku)?,
                        name: l.name.clone(),
                        quantity: r.qty("qty", l.qty)?,
                        unit: UnitOfSale::parse(&l.unit)
                            .ok_or_else(|| FieldError::new(r.field("unit"), "unknown unit"))?,
                        tax_category: TaxCategory::parse(&l.tax_cat).at(|| r.field("tax_cat"))?,
                        unit_price: money(l.price),
                        extended: money(l.ext),
                        line_discount: money(l.ldisc),
                        cart_discount: money(l.cdisc),
                        net: money(l.net),
                        taxes: r.line_taxes(&l.taxes, cur)?,
                        gross: money(l.gross),
                    })
                })
                .collect::<Result<Vec<_>, FieldError>>()?;
            let taxes = s
                .taxes
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    Ok(TaxSummary {
                        code: t.code.clone(),
                        rate: r.rate(&format!("taxes[{i}].rate"), &t.rate)?,
                        base: money(t.base),
                        amount: money(t.amt),
                    })
                })
                .collect::<Result<Vec<_>, FieldError>>()?;
            EventBody::SaleCompleted(SaleCompleted {
                receipt: s.receipt.clone(),
                cashier: s
                    .cashier
                    .as_deref()
                    .map(|c| r.staff("cashier", c))
                    .transpose()?,
                cart: PricedCart {
                    currency: cur,
                    pricing,
                    lines,
                    taxes,
                    subtotal: money(s.subtotal),
                    discount_total: money(s.disc),
                    net_total: money(s.net),
                    tax_total: money(s.tax),
                    total: money(s.total),
                },
                tenders: r.tenders(&s.tenders, cur)?,
                settlement: Settlement {
                    total: money(s.total),
                    cash_rounding: money(s.rounding),
                    due: money(s.due),
                    tendered: money(s.tendered),
                    change: money(s.change),
                },
                approvals: r.approvals(&s.approvals)?,
            })
        }
        BodyDto::SaleVoided(v) => {
            let r = Reader { path: "body" };
            let cur = r.currency("cur", &v.cur)?;
            EventBody::SaleVoided(SaleVoided {
                sale: EventId::parse(&v.sale).at(|| "body.sale".into())?,
                receipt: v.receipt.clone(),
                reason: v.reason.clone(),
                lines: v
                    .lines
                    .iter()
                    .enumerate()
                    .map(|(i, (sku, q))| {
                        Ok((
                            r.sku(&format!("lines[{i}].sku"), sku)?,
                            r.qty(&format!("lines[{i}].qty"), *q)?,
                        ))
                    })
                    .collect::<Result<_, FieldError>>()?,
                refund: Money::from_minor(v.refund, cur),
                approvals: r.approvals(&v.approvals)?,
            })
        }
        BodyDto::ReturnCompleted(ret) => {
            let r = Reader { path: "body" };
            let cur = r.currency("cur", &ret.cur)?;
            let lines = ret
                .lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let path = format!("body.lines[{i}]");
                    let r = Reader { path: &path };
                    Ok(ReturnedLine {
                        sale_line: l.line,
                        sku: r.sku("sku", &l.sku)?,
                        quantity: r.qty("qty", l.qty)?,
                        net: Money::from_minor(l.net, cur),
                        taxes: r.line_taxes(&l.taxes, cur)?,
                        gross: Money::from_minor(l.gross, cur),
                    })
                })
                .collect::<Result<Vec<_>, FieldError>>()?;
            EventBody::ReturnCompleted(ReturnCompleted {
                receipt: ret.receipt.clone(),
                original_receipt: ret.original.clone(),
                reason: ret.reason.clone(),
                refund: PricedReturn {
                    lines,
                    total: Money::from_minor(ret.total, cur),
                    cash_rounding: Money::from_minor(ret.rounding, cur),
                    refund: Money::from_minor(ret.refund, cur),
                },
                tenders: r.tenders(&ret.tenders, cur)?,
                approvals: r.approvals(&ret.approvals)?,
            })
        }
        BodyDto::StockAdjusted {
            sku,
            delta,
            reason,
            note,
        } => EventBody::StockAdjusted {
            sku: Reader { path: "body" }.sku("sku", sku)?,
            delta_milli: *delta,
            reason: AdjustmentReason::parse(reason)
                .ok_or_else(|| FieldError::new("body.reason", "unknown adjustment reason"))?,
            note: note.clone(),
        },
        BodyDto::StockCounted { sku, counted } => EventBody::StockCounted {
            sku: Reader { path: "body" }.sku("sku", sku)?,
            counted_milli: *counted,
        },
        BodyDto::StockTransferred {
            transfer,
            sku,
            qty,
            from,
            to,
            leg,
        } => {
            let r = Reader { path: "body" };
            EventBody::StockTransferred {
                transfer: transfer.clone(),
                sku: r.sku("sku", sku)?,
                quantity: r.qty("qty", *qty)?,
                from: r.store("from", from)?,
                to: r.store("to", to)?,
                leg: match leg.as_str() {
                    "shipped" => TransferLeg::Shipped,
                    "received" => TransferLeg::Received,
                    _ => return Err(FieldError::new("body.leg", "must be shipped or received")),
                },
            }
        }
        BodyDto::ShiftOpened {
            shift,
            staff,
            cur,
            float,
        } => {
            let r = Reader { path: "body" };
            EventBody::ShiftOpened {
                shift: shift.clone(),
                staff: r.staff("staff", staff)?,
                float: Money::from_minor(*float, r.currency("cur", cur)?),
            }
        }
        BodyDto::ShiftClosed {
            shift,
            staff,
            up_to_seq,
            cur,
            expected,
            counted,
        } => {
            let r = Reader { path: "body" };
            let cur = r.currency("cur", cur)?;
            EventBody::ShiftClosed {
                shift: shift.clone(),
                staff: r.staff("staff", staff)?,
                up_to_seq: *up_to_seq,
                expected: Money::from_minor(*expected, cur),
                counted: Money::from_minor(*counted, cur),
            }
        }
        BodyDto::CashMovement {
            shift,
            kind,
            cur,
            amount,
            reason,
            approvals,
        } => {
            let r = Reader { path: "body" };
            EventBody::CashMovement {
                shift: shift.clone(),
                kind: match kind.as_str() {
                    "paid-in" => CashMovementKind::PaidIn,
                    "paid-out" => CashMovementKind::PaidOut,
                    _ => return Err(FieldError::new("body.kind", "must be paid-in or paid-out")),
                },
                amount: Money::from_minor(*amount, r.currency("cur", cur)?),
                reason: reason.clone(),
                approvals: r.approvals(approvals)?,
            }
        }
        BodyDto::CardRefundPaidInCash {
            return_receipt,
            cur,
            amount,
        } => {
            let r = Reader { path: "body" };
            if return_receipt.trim().is_empty() {
                return Err(FieldError::new("body.return", "must not be empty"));
            }
            if *amount <= 0 {
                return Err(FieldError::new("body.amount", "must be more than zero"));
            }
            EventBody::CardRefundPaidInCash {
                return_receipt: return_receipt.clone(),
                amount: Money::from_minor(*amount, r.currency("cur", cur)?),
            }
        }
        BodyDto::NoSale {
            shift,
            staff,
            approvals,
        } => {
            let r = Reader { path: "body" };
            EventBody::NoSale {
                shift: shift.clone(),
                staff: r.staff("staff", staff)?,
                approvals: r.approvals(approvals)?,
            }
        }
        BodyDto::StaffLockedOut { staff, until } => {
            let r = Reader { path: "body" };
            EventBody::StaffLockedOut {
                staff: r.staff("staff", staff)?,
                until_ms: *until,
            }
        }
        BodyDto::StoredValueIssued(load) => stored_value::issued(load)?,
        BodyDto::StoredValueToppedUp(load) => stored_value::topped_up(load)?,
        BodyDto::Card(card) => EventBody::Card(card::card_from(card)?),
        BodyDto::OrderStep(o) => {
            let r = Reader { path: "body" };
            let step = match (o.step.as_str(), &o.carrier, &o.tracking) {
                ("picked", None, None) => OrderStepKind::Picked,
                ("ready", None, None) => OrderStepKind::Ready,
                ("shipped", Some(carrier), Some(tracking)) => OrderStepKind::Shipped {
                    carrier: carrier.clone(),
                    tracking: tracking.clone(),
                },
                ("handed-over", None, None) => OrderStepKind::HandedOver,
                ("returned", None, None) => OrderStepKind::Returned,
                _ => {
                    return Err(FieldError::new(
                        "body.step",
                        "picked, ready, handed-over, returned, or shipped with carrier and tracking",
                    ));
                }
            };
            let mut lines = Vec::with_capacity(o.lines.len());
            for (i, (sku, milli)) in o.lines.iter().enumerate() {
                lines.push((
                    r.sku(&format!("lines[{i}].sku"), sku)?,
                    r.qty(&format!("lines[{i}].qty"), *milli)?,
                ));
            }
            EventBody::OrderStep(OrderStep {
                order: o.order.clone(),
                number: o.number.clone(),
                step,
                lines,
                sale_receipt: o.sale.clone(),
                store_credit: match &o.credit {
                    None => None,
                    Some((account, minor, cur)) => {
                        if o.step != "returned" || *minor <= 0 {
                            return Err(FieldError::new(
                                "body.credit",
                                "store credit, more than zero, is given only for a return",
                            ));
                        }
                        let account = domain::stored_value::AccountNumber::parse_kind(
                            account,
                            domain::stored_value::StoredValueKind::StoreCredit,
                        )
                        .map_err(|e| FieldError::new("body.credit", e.to_string()))?;
                        Some((
                            account,
                            Money::from_minor(*minor, r.currency("credit", cur)?),
                        ))
                    }
                },
                staff: r.staff("staff", &o.staff)?,
            })
        }
        BodyDto::FiscalReceipt(d) => {
            for (field, value) in [
                ("body.regime", &d.regime),
                ("body.receipt", &d.receipt),
                ("body.kind", &d.kind),
                ("body.document", &d.document),
            ] {
                if value.is_empty() {
                    return Err(FieldError::new(field, "required"));
                }
            }
            EventBody::FiscalReceipt(FiscalReceipt {
                regime: d.regime.clone(),
                receipt: d.receipt.clone(),
                kind: d.kind.clone(),
                document: d.document.clone(),
                device_failed: d.device_failed,
                material: d.material.clone(),
            })
        }
        BodyDto::KeyRotated { key } => {
            let public_key = hex::decode(key)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .filter(|b| ed25519_dalek::VerifyingKey::from_bytes(b).is_ok())
                .ok_or_else(|| FieldError::new("body.key", "not a 32-byte Ed25519 key in hex"))?;
            EventBody::KeyRotated { public_key }
        }
        BodyDto::ReturnReceived(d) => {
            let r = Reader { path: "body" };
            if d.lines.is_empty() {
                return Err(FieldError::new("body.lines", "at least one line"));
            }
            let mut lines = Vec::with_capacity(d.lines.len());
            for (i, (sku, milli)) in d.lines.iter().enumerate() {
                let quantity = r.qty(&format!("lines[{i}].qty"), *milli)?;
                if quantity.milli() <= 0 {
                    return Err(FieldError::new(
                        format!("body.lines[{i}].qty"),
                        "more than zero",
                    ));
                }
                lines.push((r.sku(&format!("lines[{i}].sku"), sku)?, quantity));
            }
            EventBody::ReturnReceived(ReturnReceived {
                web_return: d.web_return.clone(),
                number: d.number.clone(),
                sale_receipt: d.sale.clone(),
                lines,
                staff: r.staff("staff", &d.staff)?,
            })
        }
    })
}

/// The canonical bytes of an event.
pub fn encode(event: &Event) -> Vec<u8> {
    // Serialising plain structs, strings and integers cannot fail.
    serde_json::to_vec(&EventDto::from(event)).unwrap_or_default()
}

/// Reads canonical bytes back into an event; rejects anything that is not exactly canonical,
/// so two encodings of one event can never both verify.
pub fn decode(bytes: &[u8]) -> Result<Event, FieldError> {
    let dto: EventDto = serde_json::from_slice(bytes)
        .map_err(|e| FieldError::new("event", format!("not a valid event: {e}")))?;
    let event = Event::try_from(&dto)?;
    if encode(&event) != bytes {
        return Err(FieldError::new("event", "bytes are not in canonical form"));
    }
    Ok(event)
}

pub mod card;
#[cfg(test)]
mod tests;
