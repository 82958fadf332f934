//! The sales report: the daily figures ingest keeps per store, business day and currency
//! (`sales_daily`, `sales_daily_taxes`), read once for the JSON API, its CSV export and the back
//! office's report page, so that the three cannot disagree.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::api::{ApiError, ApiResult, Hq, authorize_reader, business_day};
use crate::db::Db;
use crate::extract::Query;
use crate::identity::Scope;
use crate::stored_value::money;

/// One tax rate's part of a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxLine {
    pub code: String,
    pub rate: String,
    pub base_minor: i64,
    pub tax_minor: i64,
}

/// One store's business day, amounts in minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesDay {
    pub store: String,
    pub day: String,
    pub currency: String,
    pub sales: i64,
    pub voids: i64,
    pub returns: i64,
    pub gross_minor: i64,
    pub voided_minor: i64,
    pub refunds_minor: i64,
    pub goods_net_minor: i64,
    pub tax_minor: i64,
    pub rounding_minor: i64,
    pub cash_minor: i64,
    pub shifts_closed: i64,
    pub cash_expected_minor: i64,
    pub cash_counted_minor: i64,
    pub taxes: Vec<TaxLine>,
}

impl SalesDay {
    /// Gross sales less refunds.
    pub fn net_minor(&self) -> i64 {
        self.gross_minor - self.refunds_minor
    }

    /// Counted less expected cash at the shift closes of the day.
    pub fn cash_over_short_minor(&self) -> i64 {
        self.cash_counted_minor - self.cash_expected_minor
    }
}

/// Which days: a store (empty: every store) and an inclusive range of business days
/// (`YYYY-MM-DD`; empty: open).
#[derive(Debug, Clone, Default)]
pub struct Range {
    pub store: String,
    pub from: String,
    pub to: String,
}

/// The days in `range`, ordered by store and day, each with its tax lines.
pub async fn sales_days(db: &Db, range: &Range) -> Result<Vec<SalesDay>, sqlx::Error> {
    let tax_rows = sqlx::query(
        "SELECT store, day, code, rate, base_minor, tax_minor FROM sales_daily_taxes
         WHERE ($1 = '' OR store = $1) AND ($2 = '' OR day >= $2) AND ($3 = '' OR day <= $3) ORDER BY store, day, code, rate",
    )
    .bind(&range.store)
    .bind(&range.from)
    .bind(&range.to)
    .fetch_all(&db.pool)
    .await?;
    let mut taxes: BTreeMap<(String, String), Vec<TaxLine>> = BTreeMap::new();
    for t in tax_rows {
        taxes
            .entry((t.get("store"), t.get("day")))
            .or_default()
            .push(TaxLine {
                code: t.get("code"),
                rate: t.get("rate"),
                base_minor: t.get("base_minor"),
                tax_minor: t.get("tax_minor"),
            });
    }
    let rows = sqlx::query(
        "SELECT store, day, currency, sales, voids, returns, gross_minor, tax_minor, refunds_minor, cash_minor, shifts_closed, cash_expected_minor, cash_counted_minor, voided_minor, goods_net_minor, rounding_minor FROM sales_daily
         WHERE ($1 = '' OR store = $1) AND ($2 = '' OR day >= $2) AND ($3 = '' OR day <= $3) ORDER BY store, day",
    )
    .bind(&range.store)
    .bind(&range.from)
    .bind(&range.to)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let (store, day): (String, String) = (r.get("store"), r.get("day"));
            SalesDay {
                taxes: taxes
                    .remove(&(store.clone(), day.clone()))
                    .unwrap_or_default(),
                store,
                day,
                currency: r.get("currency"),
                sales: r.get("sales"),
                voids: r.get("voids"),
                returns: r.get("returns"),
                gross_minor: r.get("gross_minor"),
                voided_minor: r.get("voided_minor"),
                refunds_minor: r.get("refunds_minor"),
                goods_net_minor: r.get("goods_net_minor"),
                tax_minor: r.get("tax_minor"),
                rounding_minor: r.get("rounding_minor"),
                cash_minor: r.get("cash_minor"),
                shifts_closed: r.get("shifts_closed"),
                cash_expected_minor: r.get("cash_expected_minor"),
                cash_counted_minor: r.get("cash_counted_minor"),
            }
        })
        .collect())
}

/// The columns of the CSV export, in order: the JSON report's fields of a day but its tax lines
/// (amounts are decimal strings in the row's currency).
const CSV_COLUMNS: [&str; 18] = [
    "store",
    "day",
    "currency",
    "sales",
    "voids",
    "returns",
    "gross",
    "voided",
    "refunds",
    "net",
    "goods_net",
    "tax",
    "rounding",
    "cash",
    "shifts_closed",
    "cash_expected",
    "cash_counted",
    "cash_over_short",
];

impl SalesDay {
    fn json(&self) -> Value {
        let m = |minor| money(minor, &self.currency);
        json!({
            "store": self.store,
            "day": self.day,
            "currency": self.currency,
            "sales": self.sales,
            "voids": self.voids,
            "returns": self.returns,
            "gross": m(self.gross_minor),
            "voided": m(self.voided_minor),
            "refunds": m(self.refunds_minor),
            "net": m(self.net_minor()),
            "goods_net": m(self.goods_net_minor),
            "tax": m(self.tax_minor),
            "rounding": m(self.rounding_minor),
            "taxes": self.taxes.iter().map(|t| json!({
                "code": t.code,
                "rate": t.rate,
                "base": m(t.base_minor),
                "tax": m(t.tax_minor),
            })).collect::<Vec<_>>(),
            "cash": m(self.cash_minor),
            "shifts_closed": self.shifts_closed,
            "cash_expected": m(self.cash_expected_minor),
            "cash_counted": m(self.cash_counted_minor),
            "cash_over_short": m(self.cash_over_short_minor()),
        })
    }
}

/// The days as CSV, a header line first.
pub fn csv(days: &[SalesDay]) -> Result<Vec<u8>, csv::Error> {
    let rows: Vec<Value> = days.iter().map(SalesDay::json).collect();
    csv_of(&CSV_COLUMNS, &rows)
}

/// `rows` (JSON objects) as CSV with `columns` in order, a header line first; a string field is
/// written as it is, any other as its JSON text.
fn csv_of(columns: &[&str], rows: &[Value]) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(columns)?;
    for fields in rows {
        out.write_record(columns.iter().map(|column| match &fields[*column] {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        }))?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

/// `rows` as a CSV download named after the report and its range.
fn csv_download(
    report: &str,
    columns: &[&str],
    rows: &[Value],
    range: &Range,
) -> ApiResult<Response> {
    let body = csv_of(columns, rows).map_err(|e| {
        tracing::error!(error = %e, report, "a report did not write as CSV");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "export_failed",
            "the report could not be written as CSV",
        )
    })?;
    let name = format!(
        "{report}{}{}{}.csv",
        dash(&range.store),
        dash(&range.from),
        dash(&range.to)
    );
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// `-part` when there is a part (store ids and dates are plain ASCII).
fn dash(part: &str) -> String {
    if part.is_empty() {
        String::new()
    } else {
        format!("-{part}")
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReportQuery {
    store: Option<String>,
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
}

/// The range a query names, each date checked, `to` not before `from`.
pub(crate) fn range_of(
    store: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> ApiResult<Range> {
    let from = business_day("from", from)?;
    let to = business_day("to", to)?;
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_range",
                format!("`to` ({to}) is before `from` ({from})"),
            )
            .at("to"));
        }
    }
    Ok(Range {
        store: store.unwrap_or_default().to_owned(),
        from: from.map(|d| d.to_string()).unwrap_or_default(),
        to: to.map(|d| d.to_string()).unwrap_or_default(),
    })
}

/// Whether `format` asks for CSV (`json`, the default, or `csv`).
fn wants_csv(format: Option<&str>) -> ApiResult<bool> {
    match format.unwrap_or("json") {
        "json" => Ok(false),
        "csv" => Ok(true),
        other => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_format",
            format!(
                "`{}` is not a format of the report: `json` or `csv`",
                other.chars().take(40).collect::<String>()
            ),
        )
        .at("format")),
    }
}

/// The caller checked for `reports:read` on the store asked for, the range and the format.
async fn report_request(
    hq: &Hq,
    headers: &HeaderMap,
    q: &ReportQuery,
) -> ApiResult<(Range, bool, String)> {
    let store = q.store.as_deref().filter(|s| !s.is_empty());
    let reader = authorize_reader(hq, headers, Scope::ReportsRead, store).await?;
    let csv = wants_csv(q.format.as_deref())?;
    Ok((
        range_of(store, q.from.as_deref(), q.to.as_deref())?,
        csv,
        reader,
    ))
}

/// A report exported as CSV is a privileged read: recorded with its range.
async fn record_export(hq: &Hq, reader: &str, report: &str, range: &Range) -> ApiResult<()> {
    let asked = json!({"store": range.store, "from": range.from, "to": range.to});
    crate::identity::record_read(
        &hq.db,
        reader,
        "report.export",
        &format!("report:{report}"),
        &asked,
    )
    .await?;
    Ok(())
}

/// `GET /v1/reports/sales[?format=csv]`.
pub(crate) async fn sales_report(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> ApiResult<Response> {
    let (range, csv, reader) = report_request(&hq, &headers, &q).await?;
    let days: Vec<Value> = sales_days(&hq.db, &range)
        .await?
        .iter()
        .map(SalesDay::json)
        .collect();
    if csv {
        record_export(&hq, &reader, "sales", &range).await?;
        return csv_download("sales", &CSV_COLUMNS, &days, &range);
    }
    Ok(Json(json!({"days": days})).into_response())
}

/// One row of a breakdown: a store's business day, one key of the dimension.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BreakdownRow {
    pub store: String,
    pub day: String,
    pub key: String,
    pub currency: String,
    /// Sales (less voided ones) in it; for a tender, sales paid with it.
    pub count: i64,
    /// Gross (hour, cashier) or money taken (tender), in minor units.
    pub amount_minor: i64,
}

/// The rows of `dimension` (`breakdown::HOUR`, `TENDER` or `CASHIER`) in `range`, ordered by
/// store, day and key.
pub async fn breakdown(
    db: &Db,
    dimension: &str,
    range: &Range,
) -> Result<Vec<BreakdownRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT store, day, key, currency, count, amount_minor FROM sales_breakdown
         WHERE dimension = $1 AND ($2 = '' OR store = $2) AND ($3 = '' OR day >= $3) AND ($4 = '' OR day <= $4)
         ORDER BY store, day, key",
    )
    .bind(dimension)
    .bind(&range.store)
    .bind(&range.from)
    .bind(&range.to)
    .fetch_all(&db.pool)
    .await
}

/// A shift closed in the range, with its count.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ShiftRow {
    pub store: String,
    pub day: String,
    pub terminal: String,
    pub shift: String,
    pub closed_ms: i64,
    pub staff: String,
    pub currency: String,
    pub expected_minor: i64,
    pub counted_minor: i64,
}

impl ShiftRow {
    /// Counted less expected cash.
    pub fn over_short_minor(&self) -> i64 {
        self.counted_minor - self.expected_minor
    }
}

/// The shifts closed on the business days of `range`, ordered by store, close and terminal.
pub async fn shifts(db: &Db, range: &Range) -> Result<Vec<ShiftRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT store, day, terminal, shift, closed_ms, staff, currency, expected_minor, counted_minor FROM shift_closes
         WHERE ($1 = '' OR store = $1) AND ($2 = '' OR day >= $2) AND ($3 = '' OR day <= $3)
         ORDER BY store, closed_ms, terminal",
    )
    .bind(&range.store)
    .bind(&range.from)
    .bind(&range.to)
    .fetch_all(&db.pool)
    .await
}

const BREAKDOWN_COLUMNS: [&str; 6] = ["store", "day", "key", "currency", "count", "amount"];

const SHIFT_COLUMNS: [&str; 10] = [
    "store",
    "day",
    "terminal",
    "shift",
    "closed_at",
    "staff",
    "currency",
    "expected",
    "counted",
    "over_short",
];

#[derive(Debug, Deserialize)]
pub(crate) struct BreakdownQuery {
    dimension: Option<String>,
    #[serde(flatten)]
    report: ReportQuery,
}

/// `GET /v1/reports/breakdown?dimension=hour|tender|cashier[&format=csv]`.
pub(crate) async fn breakdown_report(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(q): Query<BreakdownQuery>,
) -> ApiResult<Response> {
    let (range, csv, reader) = report_request(&hq, &headers, &q.report).await?;
    let dimension = match q.dimension.as_deref() {
        Some(
            d @ (crate::breakdown::HOUR | crate::breakdown::TENDER | crate::breakdown::CASHIER),
        ) => d,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_dimension",
                "`dimension` is one of `hour`, `tender` and `cashier`",
            )
            .at("dimension"));
        }
    };
    let rows: Vec<Value> = breakdown(&hq.db, dimension, &range)
        .await?
        .iter()
        .map(|r| {
            json!({
                "store": r.store,
                "day": r.day,
                "key": r.key,
                "currency": r.currency,
                "count": r.count,
                "amount": money(r.amount_minor, &r.currency),
            })
        })
        .collect();
    if csv {
        record_export(&hq, &reader, dimension, &range).await?;
        return csv_download(dimension, &BREAKDOWN_COLUMNS, &rows, &range);
    }
    Ok(Json(json!({"dimension": dimension, "rows": rows})).into_response())
}

/// `GET /v1/reports/shifts[?format=csv]`: each shift closed in the range with its cash count.
pub(crate) async fn shifts_report(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> ApiResult<Response> {
    let (range, csv, reader) = report_request(&hq, &headers, &q).await?;
    let rows: Vec<Value> = shifts(&hq.db, &range)
        .await?
        .iter()
        .map(|s| {
            let m = |minor| money(minor, &s.currency);
            json!({
                "store": s.store,
                "day": s.day,
                "terminal": s.terminal,
                "shift": s.shift,
                "closed_at": jiff::Timestamp::from_millisecond(s.closed_ms).map(|t| t.to_string()).unwrap_or_default(),
                "staff": s.staff,
                "currency": s.currency,
                "expected": m(s.expected_minor),
                "counted": m(s.counted_minor),
                "over_short": m(s.over_short_minor()),
            })
        })
        .collect();
    if csv {
        record_export(&hq, &reader, "shifts", &range).await?;
        return csv_download("shifts", &SHIFT_COLUMNS, &rows, &range);
    }
    Ok(Json(json!({"shifts": rows})).into_response())
}
