//! Which of the five RKSV amount columns a tax rate goes into, read from a data file
//! (`data/rksv-columns-at.json`), not written into code: a rate the law adds (4.9 % from
//! 1 July 2026, into `Besonders` with 19 %) is a line of data with the day it starts.

use serde::Deserialize;

use super::{Amounts, RksvError, invalid};

/// The five columns, in the code's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Column {
    /// Satz-Normal.
    #[serde(rename = "normal")]
    Normal,
    /// Satz-Ermäßigt-1.
    #[serde(rename = "ermaessigt-1")]
    Reduced1,
    /// Satz-Ermäßigt-2.
    #[serde(rename = "ermaessigt-2")]
    Reduced2,
    /// Satz-Null.
    #[serde(rename = "null")]
    Null,
    /// Satz-Besonders.
    #[serde(rename = "besonders")]
    Besonders,
}

impl Column {
    fn index(self) -> usize {
        match self {
            Column::Normal => 0,
            Column::Reduced1 => 1,
            Column::Reduced2 => 2,
            Column::Null => 3,
            Column::Besonders => 4,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: String,
    country: String,
    #[serde(default, rename = "note")]
    _note: String,
    rates: Vec<Line>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    rate: String,
    column: Column,
    #[serde(default)]
    from: Option<jiff::civil::Date>,
    #[serde(default)]
    until: Option<jiff::civil::Date>,
}

/// One rate's column for a span of days.
#[derive(Debug)]
struct Span {
    /// The rate in thousandths of a percent.
    rate: i64,
    text: String,
    column: Column,
    from: Option<jiff::civil::Date>,
    until: Option<jiff::civil::Date>,
}

impl Span {
    fn holds(&self, day: jiff::civil::Date) -> bool {
        self.from.is_none_or(|f| f <= day) && self.until.is_none_or(|u| day < u)
    }

    fn overlaps(&self, other: &Span) -> bool {
        self.rate == other.rate
            && self.from.is_none_or(|f| other.until.is_none_or(|u| f < u))
            && other.from.is_none_or(|f| self.until.is_none_or(|u| f < u))
    }
}

/// A country's table of rates to columns.
#[derive(Debug)]
pub struct ColumnTable {
    spans: Vec<Span>,
}

/// A percentage (`20`, `4.9`, `0.0`) in thousandths of a percent.
fn percent_milli(text: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() || frac.len() > 3 || !digits(whole) || !digits(frac) {
        return None;
    }
    let frac: i64 = format!("{frac:0<3}").parse().ok()?;
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(1000)?
        .checked_add(frac)
}

impl ColumnTable {
    /// Austria's table, as shipped.
    pub fn austria() -> Result<Self, RksvError> {
        Self::parse(include_str!("../../data/rksv-columns-at.json"))
    }

    /// A table from its JSON text; a rate named twice for one day is refused.
    pub fn parse(text: &str) -> Result<Self, RksvError> {
        let file: File = serde_json::from_str(text)
            .map_err(|e| invalid("columns", format!("not a column table: {e}")))?;
        if file.format != "kassa-rksv-columns/1" || file.country.is_empty() {
            return Err(invalid(
                "columns",
                "format kassa-rksv-columns/1 with a country",
            ));
        }
        let mut spans: Vec<Span> = Vec::with_capacity(file.rates.len());
        for line in file.rates {
            let rate = percent_milli(&line.rate).ok_or_else(|| {
                invalid(
                    "columns",
                    format!("rate `{}` is not a percentage", line.rate),
                )
            })?;
            let span = Span {
                rate,
                text: line.rate,
                column: line.column,
                from: line.from,
                until: line.until,
            };
            if let Some(other) = spans.iter().find(|s| s.overlaps(&span)) {
                return Err(invalid(
                    "columns",
                    format!(
                        "rate {} % is named twice for one day (also as {} %)",
                        span.text, other.text
                    ),
                ));
            }
            spans.push(span);
        }
        Ok(Self { spans })
    }

    /// The column of `rate` (a percentage, `20`, `4.9`) on `day`.
    pub fn column(&self, rate: &str, day: jiff::civil::Date) -> Result<Column, RksvError> {
        let milli = percent_milli(rate)
            .ok_or_else(|| invalid("rate", format!("`{rate}` is not a percentage")))?;
        self.spans
            .iter()
            .find(|s| s.rate == milli && s.holds(day))
            .map(|s| s.column)
            .ok_or_else(|| {
                invalid(
                    "rate",
                    format!("no RKSV column for a rate of {rate} % on {day}"),
                )
            })
    }

    /// The receipt's amounts per column from its gross amounts per rate.
    pub fn amounts<'a>(
        &self,
        per_rate: impl IntoIterator<Item = (&'a str, i64)>,
        day: jiff::civil::Date,
    ) -> Result<Amounts, RksvError> {
        let mut out = Amounts::default();
        for (rate, cents) in per_rate {
            let slot = &mut out.0[self.column(rate, day)?.index()];
            *slot = slot.checked_add(cents).ok_or(RksvError::Overflow)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn austrian_rates_fill_their_columns_and_four_point_nine_joins_besonders_from_july_2026() {
        let table = ColumnTable::austria().unwrap();
        let day = date(2026, 7, 1);
        let amounts = table
            .amounts(
                [
                    ("20", 1200),
                    ("10", 450),
                    ("13", 300),
                    ("0", 100),
                    ("19", 50),
                    ("4.9", 25),
                    ("20.0", 1),
                ],
                day,
            )
            .unwrap();
        assert_eq!(amounts, Amounts([1201, 450, 300, 100, 75]));
        let before = table.column("4.9", date(2026, 6, 30)).unwrap_err();
        assert!(
            before
                .to_string()
                .contains("no RKSV column for a rate of 4.9 %"),
            "{before}"
        );
        assert!(table.column("7", day).is_err());
        assert!(table.column("abc", day).is_err());
    }

    #[test]
    fn a_rate_named_twice_for_one_day_is_refused() {
        let twice = r#"{"format": "kassa-rksv-columns/1", "country": "AT", "rates": [
            {"rate": "20", "column": "normal"},
            {"rate": "20.0", "column": "besonders", "from": "2027-01-01"}]}"#;
        assert!(ColumnTable::parse(twice).is_err());
        let handed_over = r#"{"format": "kassa-rksv-columns/1", "country": "AT", "rates": [
            {"rate": "20", "column": "normal", "until": "2027-01-01"},
            {"rate": "20", "column": "besonders", "from": "2027-01-01"}]}"#;
        let table = ColumnTable::parse(handed_over).unwrap();
        assert_eq!(
            table.column("20", date(2026, 12, 31)).unwrap(),
            Column::Normal
        );
        assert_eq!(
            table.column("20", date(2027, 1, 1)).unwrap(),
            Column::Besonders
        );
    }
}
