//! Shifts at the node: the open shift of each terminal as projected from the ledger, the X and
//! Z figures folded from the shift's events (by sequence watermark, never by clock time), and
//! their JSON and printed forms.

use domain::ledger::Event;
use domain::sale::TenderKind;
use domain::shift::ShiftTally;
use domain::{Money, StaffId, TerminalId};
use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnection;
use sqlx::{Row, SqlitePool};

use crate::ledger::WriteError;

/// A terminal's open shift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenShift {
    /// The shift's id (a UUID).
    pub id: String,
    /// Who opened it.
    pub staff: StaffId,
    /// The counted float.
    pub float: Money,
    /// The sequence number of its `ShiftOpened` event.
    pub opened_seq: u64,
    /// When it opened, epoch milliseconds.
    pub opened_ms: i64,
}

fn stored(e: impl ToString) -> WriteError {
    WriteError::Db(format!("stored shift is unreadable: {}", e.to_string()))
}

fn shift_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<OpenShift, WriteError> {
    let currency = domain::Currency::parse(row.get::<&str, _>("currency")).map_err(stored)?;
    Ok(OpenShift {
        id: row.get("id"),
        staff: StaffId::parse(row.get::<&str, _>("staff")).map_err(stored)?,
        float: Money::from_minor(row.get("float_minor"), currency),
        opened_seq: u64::try_from(row.get::<i64, _>("opened_seq")).unwrap_or(0),
        opened_ms: row.get("opened_ms"),
    })
}

/// The open shift of `terminal`, if any.
pub async fn open_shift(
    pool: &SqlitePool,
    terminal: &TerminalId,
) -> Result<Option<OpenShift>, WriteError> {
    let row = sqlx::query(
        "SELECT id, staff, currency, float_minor, opened_seq, opened_ms FROM shifts WHERE terminal = $1 AND closed_seq IS NULL",
    )
    .bind(terminal.as_str())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(shift_from_row).transpose()
}

/// The last closed shift of `terminal` with its counted cash and close sequence, if any.
pub async fn last_closed(
    pool: &SqlitePool,
    terminal: &TerminalId,
) -> Result<Option<(OpenShift, u64, Money)>, WriteError> {
    let row = sqlx::query(
        "SELECT id, staff, currency, float_minor, opened_seq, opened_ms, closed_seq, counted_minor FROM shifts
         WHERE terminal = $1 AND closed_seq IS NOT NULL ORDER BY closed_seq DESC LIMIT 1",
    )
    .bind(terminal.as_str())
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let shift = shift_from_row(&row)?;
    let up_to = u64::try_from(row.get::<i64, _>("closed_seq")).unwrap_or(0);
    let counted = Money::from_minor(
        row.get::<Option<i64>, _>("counted_minor").unwrap_or(0),
        shift.float.currency(),
    );
    Ok(Some((shift, up_to, counted)))
}

/// Records a newly opened shift in the projection.
pub(crate) async fn record_open(
    conn: &mut SqliteConnection,
    terminal: &TerminalId,
    shift: &OpenShift,
) -> Result<(), WriteError> {
    sqlx::query(
        "INSERT INTO shifts (id, terminal, staff, currency, float_minor, opened_seq, opened_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&shift.id)
    .bind(terminal.as_str())
    .bind(shift.staff.as_str())
    .bind(shift.float.currency().code())
    .bind(shift.float.minor())
    .bind(i64::try_from(shift.opened_seq).unwrap_or(i64::MAX))
    .bind(shift.opened_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records a shift's close in the projection.
pub(crate) async fn record_close(
    conn: &mut SqliteConnection,
    shift: &OpenShift,
    up_to_seq: u64,
    expected: Money,
    counted: Money,
) -> Result<(), WriteError> {
    sqlx::query(
        "UPDATE shifts SET closed_seq = $1, expected_minor = $2, counted_minor = $3 WHERE id = $4",
    )
    .bind(i64::try_from(up_to_seq).unwrap_or(i64::MAX))
    .bind(expected.minor())
    .bind(counted.minor())
    .bind(&shift.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Folds the shift's events (after its opening, up to `up_to_seq`) into its figures.
pub async fn tally(
    conn: &mut SqliteConnection,
    terminal: &TerminalId,
    shift: &OpenShift,
    up_to_seq: u64,
) -> Result<ShiftTally, WriteError> {
    let rows = sqlx::query(
        "SELECT body FROM events WHERE terminal = $1 AND seq > $2 AND seq <= $3 ORDER BY seq",
    )
    .bind(terminal.as_str())
    .bind(i64::try_from(shift.opened_seq).unwrap_or(i64::MAX))
    .bind(i64::try_from(up_to_seq).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await?;
    let mut tally = ShiftTally::new(shift.float);
    for row in rows {
        let event: Event = protocol::event::decode(row.get::<&[u8], _>("body"))
            .map_err(|e| WriteError::Db(format!("stored event does not decode: {e}")))?;
        tally
            .add(&event)
            .map_err(|e| WriteError::Db(format!("shift figures overflow: {e}")))?;
    }
    Ok(tally)
}

/// A shift as the API shows it.
pub fn shift_view(terminal: &TerminalId, shift: &OpenShift) -> Value {
    json!({
        "id": shift.id,
        "terminal": terminal.to_string(),
        "cashier": shift.staff.to_string(),
        "float": shift.float.amount_string(),
        "currency": shift.float.currency().code(),
        "opened_seq": shift.opened_seq,
        "opened_ms": shift.opened_ms,
        "status": "open",
    })
}

fn amount(m: Money) -> String {
    m.amount_string()
}

/// An X report (`closed` is `None`) or a Z report (the count and the `ShiftClosed` event).
pub fn report_view(
    terminal: &TerminalId,
    shift: &OpenShift,
    tally: &ShiftTally,
    closed: Option<(Money, &Event)>,
) -> Value {
    let expected = tally.expected_cash().unwrap_or(tally.float);
    let tenders: Vec<Value> = tally
        .tenders
        .iter()
        .map(|(kind, (taken, back))| {
            json!({"kind": kind.as_str(), "taken": amount(*taken), "given_back": amount(*back)})
        })
        .collect();
    let taxes: Vec<Value> = tally
        .taxes
        .iter()
        .map(|((code, rate), (_, base, tax))| {
            json!({"code": code, "rate": rate, "base": amount(*base), "tax": amount(*tax)})
        })
        .collect();
    let mut view = json!({
        "kind": if closed.is_some() { "Z" } else { "X" },
        "shift": shift.id,
        "terminal": terminal.to_string(),
        "cashier": shift.staff.to_string(),
        "currency": tally.currency.code(),
        "opened_seq": shift.opened_seq,
        "up_to_seq": tally.last_seq.max(shift.opened_seq),
        "float": amount(tally.float),
        "sales": tally.sales,
        "sales_total": amount(tally.sales_total),
        "returns": tally.returns,
        "refunds_total": amount(tally.refunds_total),
        "voids": tally.voids,
        "voids_total": amount(tally.voids_total),
        "net_sales": amount(tally.net_sales().unwrap_or(tally.sales_total)),
        "goods_net": amount(tally.goods_net),
        "tax_total": amount(tally.tax_total),
        "rounding_total": amount(tally.rounding_total),
        "paid_in": amount(tally.paid_in),
        "paid_out": amount(tally.paid_out),
        "stored_value_sold": amount(tally.stored_value_sold),
        "cash_net": amount(tally.tender_net(TenderKind::Cash).unwrap_or(tally.float)),
        "tenders": tenders,
        "taxes": taxes,
    });
    if let (Some((counted, event)), Some(map)) = (closed, view.as_object_mut()) {
        let over_short = counted.checked_sub(expected).unwrap_or(counted);
        map.insert("expected".into(), json!(amount(expected)));
        map.insert("counted".into(), json!(amount(counted)));
        map.insert("over_short".into(), json!(amount(over_short)));
        map.insert(
            "up_to_seq".into(),
            json!(match &event.body {
                domain::ledger::EventBody::ShiftClosed { up_to_seq, .. } => *up_to_seq,
                _ => 0,
            }),
        );
        map.insert("seq".into(), json!(event.meta.seq));
        map.insert("event_id".into(), json!(event.meta.id.to_string()));
    }
    view
}

/// Opens a shift on `terminal` for `staff` with `float` through the ledger writer, unless one
/// is open already; for callers inside the node's process (the demo, benchmarks, tests).
pub async fn ensure_open(
    node: &crate::node::Node,
    terminal: &TerminalId,
    staff: &StaffId,
    float: Money,
) -> Result<(), WriteError> {
    if open_shift(&node.pools.reader, terminal).await?.is_some() {
        return Ok(());
    }
    node.ledger
        .write(
            None,
            crate::ledger::Op::OpenShift {
                terminal: terminal.clone(),
                staff: staff.clone(),
                float,
            },
        )
        .await
        .map(|_| ())
}

/// The store's UTC offset at `ms`, in minutes (daylight saving included).
pub(crate) fn utc_offset_minutes(ms: i64, timezone: &str) -> i32 {
    jiff::tz::TimeZone::get(timezone)
        .ok()
        .and_then(|tz| {
            jiff::Timestamp::from_millisecond(ms)
                .ok()
                .map(|t| tz.to_offset(t).seconds() / 60)
        })
        .unwrap_or(0)
}

/// Store-local time of `ms` as the printer lays it out.
fn local_time(ms: i64, timezone: &str) -> printer::LocalDateTime {
    printer::LocalDateTime::from_timestamp(
        domain::Timestamp::from_millis(ms),
        utc_offset_minutes(ms, timezone),
    )
}

/// The store's header on paper: name and address lines.
pub(crate) fn store_header(config: &protocol::seed::StoreConfig) -> printer::StoreHeader {
    printer::StoreHeader {
        name: config.name.clone(),
        address: config.address.split(", ").map(str::to_owned).collect(),
        tax_id: config.tax_id.clone(),
        tax_registrations: Vec::new(),
    }
}

/// The printed X report (`counted` is `None`) or Z report of a shift, as text for the screen
/// and the same document for the receipt printer.
pub fn report_document(
    (config, terminal, shift, opened_by): (
        &protocol::seed::StoreConfig,
        &TerminalId,
        &OpenShift,
        &str,
    ),
    tally: &ShiftTally,
    counted: Option<Money>,
    now_ms: i64,
    view: &ReportView,
) -> Result<printer::Document, domain::MoneyError> {
    let zero = Money::zero(tally.currency);
    let cash = tally
        .tenders
        .get(&TenderKind::Cash)
        .copied()
        .unwrap_or((zero, zero));
    let report = printer::ShiftReport {
        store: store_header(config),
        terminal: terminal.to_string(),
        shift: shift.id.clone(),
        opened_by: opened_by.to_owned(),
        opened_at: local_time(shift.opened_ms, &config.timezone),
        closed_at: counted.map(|_| local_time(now_ms, &config.timezone)),
        printed_at: local_time(now_ms, &config.timezone),
        float: tally.float,
        cash_sales: cash.0,
        cash_refunds: cash.1,
        paid_in: tally.paid_in,
        paid_out: tally.paid_out,
        expected_cash: tally.expected_cash()?,
        sales_count: tally.sales,
        returns_count: tally.returns,
        voids_count: tally.voids,
        sales_total: tally.sales_total,
        voids_total: tally.voids_total,
        returns_total: tally.refunds_total,
        goods_net: tally.goods_net,
        tax_total: tally.tax_total,
        rounding: tally.rounding_total,
        tenders: tally
            .tenders
            .iter()
            .map(|(kind, (taken, back))| printer::TenderTotal {
                kind: *kind,
                sales: *taken,
                refunds: *back,
            })
            .collect(),
        taxes: tally
            .taxes
            .iter()
            .map(|((code, _), (rate, base, tax))| printer::TaxTotal {
                code: code.clone(),
                rate: *rate,
                net: *base,
                tax: *tax,
            })
            .collect(),
    };
    let locale = printer::Locale::parse(&config.locale);
    let layout = printer::Layout::new(view.paper, locale);
    // Labels in the reader's language (the till's), numbers and dates as the store writes them.
    let labels = printer::Labels::for_tag(view.language.as_deref().unwrap_or(&config.locale));
    match counted {
        Some(total) => printer::z_report_document(
            &report,
            &printer::CashCount::total_only(total),
            &layout,
            labels,
        ),
        None if view.blind => printer::blind_x_report_document(&report, &layout, labels),
        None => printer::x_report_document(&report, &layout, labels),
    }
}

/// How a shift report is laid out for its reader.
#[derive(Debug, Clone)]
pub struct ReportView {
    /// Paper width (the screen shows the 80 mm layout).
    pub paper: printer::Paper,
    /// The language of the labels (`en`, `de`); none: the store's.
    pub language: Option<String>,
    /// Without the cash drawer: for a cashier before a blind close.
    pub blind: bool,
}
