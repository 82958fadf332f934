//! `GET /reports`: daily sales over a range of business days, per store and in total per
//! currency, with a chart of each day's gross drawn on the server as SVG (no script, the table
//! beside it says the same in words) and the CSV export of the same days.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{Frame, Lang, Params, entered, failed, page, visible_stores, zone_of};
use crate::api::Hq;
use crate::extract::Query;
use crate::identity::{Role, Scope};
use crate::reports::{SalesDay, range_of, sales_days};
use crate::stored_value::money;

/// The longest range the page shows (the API and its CSV take any).
const MAX_DAYS: i32 = 366;

/// The chart's drawing area, in SVG units.
const CHART_WIDTH: f64 = 720.0;
const CHART_HEIGHT: f64 = 180.0;

/// A store's (or a currency's) totals over the range.
struct TotalRow {
    label: String,
    store: String,
    days: usize,
    sales: i64,
    returns: i64,
    gross: String,
    refunds: String,
    net: String,
    tax: String,
    over_short: String,
}

struct Bar {
    x: String,
    y: String,
    w: String,
    h: String,
    title: String,
}

/// One currency's daily gross as bars.
struct Chart {
    currency: String,
    caption: String,
    bars: Vec<Bar>,
    max: String,
    first: String,
    last: String,
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportPage {
    f: Frame,
    from: String,
    to: String,
    store: String,
    stores: Vec<(String, String)>,
    /// Whether "all stores" may be chosen.
    all_stores: bool,
    /// The field at fault and what is wrong with it.
    error: Option<(String, String)>,
    charts: Vec<Chart>,
    rows: Vec<TotalRow>,
    totals: Vec<TotalRow>,
    csv: String,
}

#[derive(Default)]
struct Sum {
    days: usize,
    sales: i64,
    returns: i64,
    gross: i64,
    refunds: i64,
    tax: i64,
    over_short: i64,
}

impl Sum {
    fn add(&mut self, day: &SalesDay) {
        self.days += 1;
        self.sales += day.sales;
        self.returns += day.returns;
        self.gross += day.gross_minor;
        self.refunds += day.refunds_minor;
        self.tax += day.tax_minor;
        self.over_short += day.cash_over_short_minor();
    }

    fn row(&self, t: Lang, label: String, store: String, currency: &str) -> TotalRow {
        let m = |minor| t.money(&money(minor, currency), currency);
        TotalRow {
            label,
            store,
            days: self.days,
            sales: self.sales,
            returns: self.returns,
            gross: m(self.gross),
            refunds: m(self.refunds),
            net: m(self.gross - self.refunds),
            tax: m(self.tax),
            over_short: m(self.over_short),
        }
    }
}

/// `GET /reports?from=…&to=…&store=…`: by default the last 30 days up to today (in the first
/// visible store's time zone) over every store the person sees.
pub(super) async fn reports(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    uri: OriginalUri,
    Query(params): Query<Params>,
) -> Response {
    let (session, frame, lang) = entered!(
        &hq,
        &headers,
        &uri,
        &params,
        "/reports",
        Some(Scope::ReportsRead)
    );
    let t = lang.0;
    let stores = match visible_stores(&hq, &session).await {
        Ok(stores) => stores,
        Err(e) => return failed(e),
    };
    let today = jiff::Timestamp::now()
        .to_zoned(zone_of(stores.first().map_or("UTC", |s| &s.timezone)))
        .date();
    let param = |name: &str| params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let to = param("to").map_or_else(|| today.to_string(), str::to_owned);
    let from = param("from").map_or_else(
        || {
            today
                .checked_sub(jiff::Span::new().days(29))
                .unwrap_or(today)
                .to_string()
        },
        str::to_owned,
    );
    // A store manager's report is of one of their stores, as the API's is (and its CSV link).
    let manager = session.user.role == Role::StoreManager;
    let store = param("store")
        .filter(|id| stores.iter().any(|s| s.id == *id))
        .or_else(|| {
            manager
                .then(|| stores.first().map(|s| s.id.as_str()))
                .flatten()
        })
        .unwrap_or_default()
        .to_owned();
    let mut template = ReportPage {
        f: frame,
        all_stores: !manager,
        stores: stores
            .iter()
            .map(|s| (s.id.clone(), s.name.clone()))
            .collect(),
        csv: format!("/v1/reports/sales?format=csv&from={from}&to={to}&store={store}"),
        from,
        to,
        store,
        error: None,
        charts: Vec::new(),
        rows: Vec::new(),
        totals: Vec::new(),
    };
    let range = match range_of(
        Some(&template.store),
        Some(&template.from),
        Some(&template.to),
    ) {
        Ok(range) => range,
        Err(e) => {
            template.error = Some((
                e.field().unwrap_or("from").to_owned(),
                e.message().to_owned(),
            ));
            return page(&template, StatusCode::BAD_REQUEST, lang);
        }
    };
    let (Ok(first), Ok(last)) = (
        range.from.parse::<jiff::civil::Date>(),
        range.to.parse::<jiff::civil::Date>(),
    ) else {
        return failed("a checked range did not parse");
    };
    let length = first.until(last).map_or(i32::MAX, |span| span.get_days()) + 1;
    if length > MAX_DAYS {
        template.error = Some((
            "from".into(),
            t.get("rep.too_long").replace("{n}", &MAX_DAYS.to_string()),
        ));
        return page(&template, StatusCode::BAD_REQUEST, lang);
    }
    let days = match sales_days(&hq.db, &range).await {
        Ok(days) => days,
        Err(e) => return failed(e),
    };
    let names: BTreeMap<&str, &str> = stores
        .iter()
        .map(|s| (s.id.as_str(), s.name.as_str()))
        .collect();
    // A store manager's report holds their stores and nothing else, in every row and total.
    let days: Vec<&SalesDay> = days
        .iter()
        .filter(|d| names.contains_key(d.store.as_str()))
        .collect();
    let mut per_store: BTreeMap<(&str, &str), Sum> = BTreeMap::new();
    let mut per_currency: BTreeMap<&str, Sum> = BTreeMap::new();
    let mut daily: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    for day in &days {
        per_store
            .entry((day.store.as_str(), day.currency.as_str()))
            .or_default()
            .add(day);
        per_currency
            .entry(day.currency.as_str())
            .or_default()
            .add(day);
        *daily
            .entry(day.currency.as_str())
            .or_default()
            .entry(day.day.as_str())
            .or_default() += day.gross_minor;
    }
    template.rows = per_store
        .iter()
        .map(|((store, currency), sum)| {
            let name = names.get(store).copied().unwrap_or(store);
            sum.row(t, name.to_owned(), (*store).to_owned(), currency)
        })
        .collect();
    template.totals = per_currency
        .iter()
        .map(|(currency, sum)| {
            sum.row(
                t,
                format!("{} ({currency})", t.get("rep.total")),
                String::new(),
                currency,
            )
        })
        .collect();
    let calendar: Vec<String> = first
        .series(jiff::Span::new().days(1))
        .take(length.max(0) as usize)
        .map(|d| d.to_string())
        .collect();
    template.charts = daily
        .iter()
        .map(|(currency, by_day)| chart(t, currency, &calendar, by_day))
        .collect();
    page(&template, StatusCode::OK, lang)
}

/// Bars of each day's gross in `currency`, a day without sales as no bar.
fn chart(t: Lang, currency: &str, calendar: &[String], by_day: &BTreeMap<&str, i64>) -> Chart {
    let max = by_day.values().copied().max().unwrap_or(0).max(1);
    let slot = CHART_WIDTH / calendar.len().max(1) as f64;
    let bars = calendar
        .iter()
        .enumerate()
        .filter_map(|(i, day)| {
            let gross = *by_day.get(day.as_str())?;
            let h = (gross.max(0) as f64 / max as f64 * CHART_HEIGHT).max(1.0);
            Some(Bar {
                x: format!("{:.1}", i as f64 * slot + slot * 0.1),
                y: format!("{:.1}", CHART_HEIGHT - h),
                w: format!("{:.1}", (slot * 0.8).max(0.5)),
                h: format!("{h:.1}"),
                title: format!("{day}: {}", t.money(&money(gross, currency), currency)),
            })
        })
        .collect();
    Chart {
        currency: currency.to_owned(),
        caption: t.get("rep.chart").replace("{c}", currency),
        bars,
        max: t.money(&money(max, currency), currency),
        first: calendar.first().cloned().unwrap_or_default(),
        last: calendar.last().cloned().unwrap_or_default(),
    }
}
