//! `GET /reports`: daily sales over a range of business days, per store and in total per
//! currency, with a chart of each day's gross drawn on the server as SVG (no script, the table
//! beside it says the same in words) and the CSV export of the same days; then the same range
//! by hour of the day (a chart and a table), per tender, tax rate and cashier, the shifts whose
//! count was off, and the gift card and store credit liability.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{Frame, Lang, Params, entered, failed, page, visible_stores, zone_of};
use crate::api::Hq;
use crate::breakdown::{CASHIER, HOUR, TENDER};
use crate::extract::Query;
use crate::identity::{Role, Scope};
use crate::reports::{
    BreakdownRow, Range, SalesDay, ShiftRow, breakdown, range_of, sales_days, shifts,
};
use crate::stored_value::money;

/// The longest range the page shows (the API and its CSV take any).
const MAX_DAYS: i32 = 366;

/// The most shifts with a difference the page lists (the CSV export has every shift).
const MAX_SHIFTS: usize = 100;

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
    /// `chart` (by day) or `hour-chart`: the figure's `data-test` and its title's id prefix.
    kind: &'static str,
    currency: String,
    caption: String,
    bars: Vec<Bar>,
    max: String,
    first: String,
    last: String,
}

/// A breakdown of the range as a table: a heading, column heads, rows of cells (the first is
/// the row's heading), and where its CSV is.
struct Table {
    test: &'static str,
    title: String,
    heads: Vec<String>,
    rows: Vec<Vec<String>>,
    csv: Option<String>,
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
    /// Gross by hour of the day, per currency.
    hours: Vec<Chart>,
    tables: Vec<Table>,
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
        hours: Vec::new(),
        tables: Vec::new(),
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
    let caption = |currency: &str| t.get("rep.chart").replace("{c}", currency);
    template.charts = daily
        .iter()
        .map(|(currency, by_day)| chart(t, "chart", currency, caption(currency), &calendar, by_day))
        .collect();
    let zones: BTreeMap<&str, &str> = stores
        .iter()
        .map(|s| (s.id.as_str(), s.timezone.as_str()))
        .collect();
    match breakdowns(&hq, t, &range, &names, &zones, &days, manager).await {
        Ok((hours, tables)) => {
            template.hours = hours;
            template.tables = tables;
        }
        Err(e) => return failed(e),
    }
    page(&template, StatusCode::OK, lang)
}

/// Per currency, `rows` summed by key (count, amount), of the stores in `names` only.
fn by_key<'a>(
    rows: &'a [BreakdownRow],
    names: &BTreeMap<&str, &str>,
) -> BTreeMap<&'a str, BTreeMap<&'a str, (i64, i64)>> {
    let mut sums: BTreeMap<&str, BTreeMap<&str, (i64, i64)>> = BTreeMap::new();
    for r in rows.iter().filter(|r| names.contains_key(r.store.as_str())) {
        let entry = sums
            .entry(r.currency.as_str())
            .or_default()
            .entry(r.key.as_str())
            .or_default();
        entry.0 += r.count;
        entry.1 += r.amount_minor;
    }
    sums
}

/// The chart by hour and the tables under the daily figures, of the stores in `names`.
async fn breakdowns(
    hq: &Hq,
    t: Lang,
    range: &Range,
    names: &BTreeMap<&str, &str>,
    zones: &BTreeMap<&str, &str>,
    days: &[&SalesDay],
    manager: bool,
) -> Result<(Vec<Chart>, Vec<Table>), sqlx::Error> {
    let query = format!("store={}&from={}&to={}", range.store, range.from, range.to);
    let breakdown_csv = |dimension: &str| {
        Some(format!(
            "/v1/reports/breakdown?dimension={dimension}&format=csv&{query}"
        ))
    };
    let m = |minor: i64, currency: &str| t.money(&money(minor, currency), currency);
    let counted_heads = || {
        vec![
            String::new(),
            t.get("rep.currency").to_owned(),
            t.get("rep.sales").to_owned(),
            t.get("rep.gross").to_owned(),
        ]
    };
    let mut tables = Vec::new();

    let hour_rows = breakdown(&hq.db, HOUR, range).await?;
    let hour_sums = by_key(&hour_rows, names);
    let clock: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
    let hours = hour_sums
        .iter()
        .map(|(currency, by_hour)| {
            let gross: BTreeMap<&str, i64> = by_hour.iter().map(|(h, (_, a))| (*h, *a)).collect();
            let caption = t.get("rep.by_hour_chart").replace("{c}", currency);
            chart(t, "hour-chart", currency, caption, &clock, &gross)
        })
        .collect();
    let mut heads = counted_heads();
    heads[0] = t.get("rep.hour").to_owned();
    tables.push(Table {
        test: "by-hour",
        title: t.get("rep.by_hour").to_owned(),
        heads,
        rows: hour_sums
            .iter()
            .flat_map(|(currency, by_hour)| {
                by_hour.iter().map(move |(hour, (count, amount))| {
                    vec![
                        format!("{hour}:00"),
                        (*currency).to_owned(),
                        count.to_string(),
                        m(*amount, currency),
                    ]
                })
            })
            .collect(),
        csv: breakdown_csv(HOUR),
    });

    let tender_rows = breakdown(&hq.db, TENDER, range).await?;
    tables.push(Table {
        test: "by-tender",
        title: t.get("rep.by_tender").to_owned(),
        heads: vec![
            t.get("rep.tender").to_owned(),
            t.get("rep.currency").to_owned(),
            t.get("rep.sales").to_owned(),
            t.get("rep.taken").to_owned(),
        ],
        rows: by_key(&tender_rows, names)
            .iter()
            .flat_map(|(currency, by_tender)| {
                by_tender.iter().map(move |(tender, (count, amount))| {
                    vec![
                        t.get(&format!("tender.{tender}")).to_owned(),
                        (*currency).to_owned(),
                        count.to_string(),
                        m(*amount, currency),
                    ]
                })
            })
            .collect(),
        csv: breakdown_csv(TENDER),
    });

    let mut taxes: BTreeMap<(&str, &str, &str), (i64, i64)> = BTreeMap::new();
    for day in days {
        for line in &day.taxes {
            let entry = taxes
                .entry((
                    day.currency.as_str(),
                    line.code.as_str(),
                    line.rate.as_str(),
                ))
                .or_default();
            entry.0 += line.base_minor;
            entry.1 += line.tax_minor;
        }
    }
    tables.push(Table {
        test: "by-tax",
        title: t.get("rep.by_tax").to_owned(),
        heads: vec![
            t.get("rep.tax_rate").to_owned(),
            t.get("rep.currency").to_owned(),
            t.get("rep.base").to_owned(),
            t.get("rep.tax").to_owned(),
        ],
        rows: taxes
            .iter()
            .map(|((currency, code, rate), (base, tax))| {
                vec![
                    format!("{code} {rate} %"),
                    (*currency).to_owned(),
                    m(*base, currency),
                    m(*tax, currency),
                ]
            })
            .collect(),
        csv: None,
    });

    let staff = crate::staff::names(&hq.db).await?;
    let who = |id: &str| {
        if id.is_empty() {
            t.get("rep.no_cashier").to_owned()
        } else {
            staff
                .get(id)
                .map_or_else(|| id.to_owned(), |name| format!("{name} ({id})"))
        }
    };
    let cashier_rows = breakdown(&hq.db, CASHIER, range).await?;
    let mut heads = counted_heads();
    heads[0] = t.get("rep.cashier").to_owned();
    tables.push(Table {
        test: "by-cashier",
        title: t.get("rep.by_cashier").to_owned(),
        heads,
        rows: by_key(&cashier_rows, names)
            .iter()
            .flat_map(|(currency, by_cashier)| {
                by_cashier.iter().map(|(cashier, (count, amount))| {
                    vec![
                        who(cashier),
                        (*currency).to_owned(),
                        count.to_string(),
                        m(*amount, currency),
                    ]
                })
            })
            .collect(),
        csv: breakdown_csv(CASHIER),
    });

    let mut off: Vec<ShiftRow> = shifts(&hq.db, range)
        .await?
        .into_iter()
        .filter(|s| names.contains_key(s.store.as_str()) && s.over_short_minor() != 0)
        .collect();
    off.sort_by_key(|s| std::cmp::Reverse(s.over_short_minor().abs()));
    tables.push(Table {
        test: "shifts",
        title: t.get("rep.shifts").replace("{n}", &MAX_SHIFTS.to_string()),
        heads: vec![
            t.get("rep.till").to_owned(),
            t.get("rep.closed").to_owned(),
            t.get("rep.closed_by").to_owned(),
            t.get("rep.expected").to_owned(),
            t.get("rep.counted").to_owned(),
            t.get("rep.over_short").to_owned(),
        ],
        rows: off
            .iter()
            .take(MAX_SHIFTS)
            .map(|s| {
                let zone = zones.get(s.store.as_str()).copied().unwrap_or("UTC");
                vec![
                    s.terminal.clone(),
                    super::local(s.closed_ms, zone),
                    who(&s.staff),
                    m(s.expected_minor, &s.currency),
                    m(s.counted_minor, &s.currency),
                    m(s.over_short_minor(), &s.currency),
                ]
            })
            .collect(),
        csv: Some(format!("/v1/reports/shifts?format=csv&{query}")),
    });

    // Gift cards and store credit are the chain's, not a store's: a store manager does not see it.
    if !manager {
        let liability = crate::stored_value::liability(&hq.db).await?;
        let text = |v: &serde_json::Value| {
            v.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string())
        };
        tables.push(Table {
            test: "liability",
            title: t.get("rep.liability").to_owned(),
            heads: vec![
                t.get("rep.kind").to_owned(),
                t.get("rep.currency").to_owned(),
                t.get("rep.accounts").to_owned(),
                t.get("rep.outstanding").to_owned(),
                t.get("rep.overdrawn").to_owned(),
            ],
            rows: liability["liability"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|line| {
                    let currency = text(&line["currency"]);
                    let amount = |field: &str| t.money(&text(&line[field]), &currency);
                    vec![
                        t.get(&format!("tender.{}", text(&line["kind"]))).to_owned(),
                        currency.clone(),
                        text(&line["accounts"]),
                        amount("outstanding"),
                        amount("overdrawn"),
                    ]
                })
                .collect(),
            csv: None,
        });
    }
    Ok((hours, tables))
}

/// Bars of the amount in `currency` at each of `calendar`'s keys (days or hours), a key without
/// an amount as no bar.
fn chart(
    t: Lang,
    kind: &'static str,
    currency: &str,
    caption: String,
    calendar: &[String],
    by_day: &BTreeMap<&str, i64>,
) -> Chart {
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
        kind,
        currency: currency.to_owned(),
        caption,
        bars,
        max: t.money(&money(max, currency), currency),
        first: calendar.first().cloned().unwrap_or_default(),
        last: calendar.last().cloned().unwrap_or_default(),
    }
}
