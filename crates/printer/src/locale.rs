//! Locale formatting shared by receipts and the till screen: money from integer minor units,
//! quantities, tax rates, dates and times. Pure functions over domain values; no floats.
//!
//! Only the conventions Kassa's stores use are known (`en`, `en-US`, `en-GB`, `de`, `de-DE`,
//! `de-AT`, `de-CH`); any other tag falls back to its language's default and then to `en`.

use std::fmt;

use domain::tax::TaxRate;
use domain::time::Timestamp;
use domain::{Currency, Money, Quantity};

/// A language that receipt labels are translated into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// English.
    En,
    /// German.
    De,
}

impl Language {
    /// The ISO 639-1 code.
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::De => "de",
        }
    }

    /// The language of a BCP 47 tag (`de-AT` → German); `None` when it is not translated.
    pub fn from_tag(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or("");
        match primary.to_ascii_lowercase().as_str() {
            "en" => Some(Language::En),
            "de" => Some(Language::De),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateOrder {
    /// `2026-11-23`.
    Iso,
    /// `23/11/2026`.
    DaySlash,
    /// `11/23/2026`.
    MonthSlash,
    /// `23.11.2026`.
    DayDot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SymbolPlace {
    /// `£1.00`, or `CHF 1.00` when the symbol is a letter code.
    Before,
    /// `1,00 €`.
    After,
}

/// A set of formatting conventions, chosen by a BCP 47 tag such as `de-AT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locale {
    tag: &'static str,
    language: Language,
    decimal: char,
    group: char,
    symbol: SymbolPlace,
    date: DateOrder,
    twelve_hour: bool,
    percent_space: bool,
}

const KNOWN: &[Locale] = &[
    Locale {
        tag: "en",
        language: Language::En,
        decimal: '.',
        group: ',',
        symbol: SymbolPlace::Before,
        date: DateOrder::Iso,
        twelve_hour: false,
        percent_space: false,
    },
    Locale {
        tag: "en-US",
        language: Language::En,
        decimal: '.',
        group: ',',
        symbol: SymbolPlace::Before,
        date: DateOrder::MonthSlash,
        twelve_hour: true,
        percent_space: false,
    },
    Locale {
        tag: "en-GB",
        language: Language::En,
        decimal: '.',
        group: ',',
        symbol: SymbolPlace::Before,
        date: DateOrder::DaySlash,
        twelve_hour: false,
        percent_space: false,
    },
    Locale {
        tag: "de-DE",
        language: Language::De,
        decimal: ',',
        group: '.',
        symbol: SymbolPlace::After,
        date: DateOrder::DayDot,
        twelve_hour: false,
        percent_space: true,
    },
    Locale {
        tag: "de-AT",
        language: Language::De,
        decimal: ',',
        group: '.',
        symbol: SymbolPlace::After,
        date: DateOrder::DayDot,
        twelve_hour: false,
        percent_space: true,
    },
    Locale {
        tag: "de-CH",
        language: Language::De,
        decimal: '.',
        group: '\'',
        symbol: SymbolPlace::Before,
        date: DateOrder::DayDot,
        twelve_hour: false,
        percent_space: false,
    },
    // Number and date conventions of the other preset countries; their receipts print English
    // labels until Kassa has their translations.
    Locale {
        tag: "sv-SE",
        language: Language::En,
        decimal: ',',
        group: ' ',
        symbol: SymbolPlace::After,
        date: DateOrder::Iso,
        twelve_hour: false,
        percent_space: true,
    },
    Locale {
        tag: "da-DK",
        language: Language::En,
        decimal: ',',
        group: '.',
        symbol: SymbolPlace::After,
        date: DateOrder::DayDot,
        twelve_hour: false,
        percent_space: true,
    },
    Locale {
        tag: "fr-FR",
        language: Language::En,
        decimal: ',',
        group: ' ',
        symbol: SymbolPlace::After,
        date: DateOrder::DaySlash,
        twelve_hour: false,
        percent_space: true,
    },
    Locale {
        tag: "fr-CA",
        language: Language::En,
        decimal: ',',
        group: ' ',
        symbol: SymbolPlace::After,
        date: DateOrder::Iso,
        twelve_hour: false,
        percent_space: true,
    },
    Locale {
        tag: "en-CA",
        language: Language::En,
        decimal: '.',
        group: ',',
        symbol: SymbolPlace::Before,
        date: DateOrder::Iso,
        twelve_hour: false,
        percent_space: false,
    },
    Locale {
        tag: "ja-JP",
        language: Language::En,
        decimal: '.',
        group: ',',
        symbol: SymbolPlace::Before,
        date: DateOrder::Iso,
        twelve_hour: false,
        percent_space: false,
    },
];

impl Locale {
    /// The conventions for `tag`: an exact match (case-insensitive, `_` or `-`), else the
    /// language's default (`de` → `de-DE`), else `en`.
    pub fn parse(tag: &str) -> Locale {
        let wanted = tag.trim().replace('_', "-");
        if let Some(found) = KNOWN.iter().find(|l| l.tag.eq_ignore_ascii_case(&wanted)) {
            return *found;
        }
        let fallback = match Language::from_tag(&wanted) {
            Some(Language::De) => "de-DE",
            Some(Language::En) | None => "en",
        };
        KNOWN
            .iter()
            .find(|l| l.tag == fallback)
            .copied()
            .unwrap_or(KNOWN[0])
    }

    /// The tag of the conventions actually used (after fallback).
    pub fn tag(&self) -> &'static str {
        self.tag
    }

    /// The language for labels.
    pub fn language(&self) -> Language {
        self.language
    }
}

impl Default for Locale {
    fn default() -> Self {
        Locale::parse("en")
    }
}

/// The symbol printed for a currency: `€`, `£`, `$`, `¥`, else its ISO code (`CHF`, `SEK`).
pub fn currency_symbol(currency: Currency) -> &'static str {
    match currency.code() {
        "EUR" => "€",
        "GBP" => "£",
        "USD" => "$",
        "JPY" => "¥",
        "CHF" => "CHF",
        "SEK" => "SEK",
        "DKK" => "DKK",
        "CAD" => "CAD",
        "KWD" => "KWD",
        _ => "",
    }
}

fn symbol_text(currency: Currency) -> String {
    match currency_symbol(currency) {
        "" => currency.code().to_owned(),
        known => known.to_owned(),
    }
}

fn group_digits(digits: &str, group: char) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(group);
        }
        out.push(c);
    }
    out
}

/// The amount without a currency symbol, grouped, with the locale's decimal separator and the
/// currency's number of decimals: `1.234,50` (de-DE), `1'234.50` (de-CH), `-0.05` (en).
pub fn format_amount(money: Money, locale: &Locale) -> String {
    let exponent = money.currency().exponent();
    let per_major = u64::pow(10, exponent);
    let abs = money.minor().unsigned_abs();
    let major = group_digits(&(abs / per_major).to_string(), locale.group);
    let sign = if money.minor() < 0 { "-" } else { "" };
    if exponent == 0 {
        return format!("{sign}{major}");
    }
    let minor = abs % per_major;
    format!(
        "{sign}{major}{}{minor:0width$}",
        locale.decimal,
        width = exponent as usize
    )
}

/// The amount with its currency, as the locale writes it: `1.234,50 €` (de-DE, de-AT),
/// `CHF 1'234.50` (de-CH), `£1,234.50` (en-GB), `$1,234.50` (en-US), `-£0.05`.
pub fn format_money(money: Money, locale: &Locale) -> String {
    let symbol = symbol_text(money.currency());
    let number = format_amount(money, locale);
    match locale.symbol {
        SymbolPlace::After => format!("{number} {symbol}"),
        SymbolPlace::Before => {
            let (sign, digits) = match number.strip_prefix('-') {
                Some(rest) => ("-", rest),
                None => ("", number.as_str()),
            };
            if symbol.chars().all(|c| c.is_ascii_alphabetic()) {
                format!("{symbol} {sign}{digits}")
            } else {
                format!("{sign}{symbol}{digits}")
            }
        }
    }
}

/// A quantity with the locale's decimal separator and no trailing zeros: `2`, `0,315`.
pub fn format_quantity(quantity: Quantity, locale: &Locale) -> String {
    format_milli(quantity.milli(), locale)
}

/// A signed count in thousandths (stock figures) like [`format_quantity`].
pub fn format_milli(milli: i64, locale: &Locale) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let abs = milli.unsigned_abs();
    let whole = abs / 1000;
    let fraction = abs % 1000;
    if fraction == 0 {
        return format!("{sign}{whole}");
    }
    let digits = format!("{fraction:03}");
    format!(
        "{sign}{whole}{}{}",
        locale.decimal,
        digits.trim_end_matches('0')
    )
}

/// A tax rate as a percentage: `8.1%` (en, de-CH), `8,1 %` (de-DE, de-AT).
pub fn format_rate(rate: TaxRate, locale: &Locale) -> String {
    let number = rate
        .percent()
        .to_string()
        .replace('.', &locale.decimal.to_string());
    if locale.percent_space {
        format!("{number} %")
    } else {
        format!("{number}%")
    }
}

/// A wall-clock reading in the store's time zone, to the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalDateTime {
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

impl LocalDateTime {
    /// A date and time; `None` when it is not a calendar date or a time of day.
    pub fn new(year: i32, month: u8, day: u8, hour: u8, minute: u8) -> Option<Self> {
        let valid = (1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && hour < 24
            && minute < 60;
        valid.then_some(LocalDateTime {
            year,
            month,
            day,
            hour,
            minute,
        })
    }

    /// The local reading of `instant` at a UTC offset of `offset_minutes` (the store node
    /// looks the offset up for its time zone, DST included, and passes it in).
    pub fn from_timestamp(instant: Timestamp, offset_minutes: i32) -> Self {
        let minutes = instant
            .millis()
            .div_euclid(60_000)
            .saturating_add(i64::from(offset_minutes));
        let days = minutes.div_euclid(1440);
        let of_day = minutes.rem_euclid(1440);
        let (year, month, day) = civil_from_days(days);
        LocalDateTime {
            year,
            month,
            day,
            hour: u8::try_from(of_day / 60).unwrap_or(0),
            minute: u8::try_from(of_day % 60).unwrap_or(0),
        }
    }

    /// The year.
    pub fn year(&self) -> i32 {
        self.year
    }
    /// The month, 1–12.
    pub fn month(&self) -> u8 {
        self.month
    }
    /// The day of the month.
    pub fn day(&self) -> u8 {
        self.day
    }
    /// The hour, 0–23.
    pub fn hour(&self) -> u8 {
        self.hour
    }
    /// The minute.
    pub fn minute(&self) -> u8 {
        self.minute
    }
}

impl fmt::Display for LocalDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute
        )
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01, narrowed to the fields of a
/// [`LocalDateTime`] (the domain's one calendar computation).
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let (year, month, day) = domain::time::civil_from_days(days);
    (
        i32::try_from(year).unwrap_or(i32::MAX),
        u8::try_from(month).unwrap_or(1),
        u8::try_from(day).unwrap_or(1),
    )
}

/// The date: `23.11.2026` (de), `23/11/2026` (en-GB), `11/23/2026` (en-US), `2026-11-23` (en).
pub fn format_date(when: &LocalDateTime, locale: &Locale) -> String {
    let (y, m, d) = (when.year, when.month, when.day);
    match locale.date {
        DateOrder::Iso => format!("{y:04}-{m:02}-{d:02}"),
        DateOrder::DaySlash => format!("{d:02}/{m:02}/{y:04}"),
        DateOrder::MonthSlash => format!("{m:02}/{d:02}/{y:04}"),
        DateOrder::DayDot => format!("{d:02}.{m:02}.{y:04}"),
    }
}

/// The time of day: `14:05`, or `2:05 PM` in en-US.
pub fn format_time(when: &LocalDateTime, locale: &Locale) -> String {
    if locale.twelve_hour {
        let suffix = if when.hour < 12 { "AM" } else { "PM" };
        let hour = match when.hour % 12 {
            0 => 12,
            h => h,
        };
        format!("{hour}:{:02} {suffix}", when.minute)
    } else {
        format!("{:02}:{:02}", when.hour, when.minute)
    }
}

/// Date and time: `23.11.2026 14:05` (de), `2026-11-23 14:05` (en).
pub fn format_date_time(when: &LocalDateTime, locale: &Locale) -> String {
    format!(
        "{} {}",
        format_date(when, locale),
        format_time(when, locale)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::EUR)
    }

    #[test]
    fn money_is_written_the_way_each_locale_writes_it() {
        let cases = [
            ("de-DE", eur(123_450), "1.234,50 €"),
            ("de-AT", eur(123_450), "1.234,50 €"),
            ("de-AT", eur(-5), "-0,05 €"),
            (
                "de-CH",
                Money::from_minor(123_450, Currency::CHF),
                "CHF 1'234.50",
            ),
            (
                "de-CH",
                Money::from_minor(-123_450, Currency::CHF),
                "CHF -1'234.50",
            ),
            (
                "en-GB",
                Money::from_minor(123_450, Currency::GBP),
                "£1,234.50",
            ),
            ("en-GB", Money::from_minor(-5, Currency::GBP), "-£0.05"),
            (
                "en-US",
                Money::from_minor(123_450, Currency::USD),
                "$1,234.50",
            ),
            (
                "en-US",
                Money::from_minor(100_000_000, Currency::USD),
                "$1,000,000.00",
            ),
            (
                "en-US",
                Money::from_minor(123_456, Currency::JPY),
                "¥123,456",
            ),
            (
                "en",
                Money::from_minor(1_234_567, Currency::KWD),
                "KWD 1,234.567",
            ),
            ("en", Money::from_minor(99, Currency::SEK), "SEK 0.99"),
            ("de-DE", Money::from_minor(99, Currency::SEK), "0,99 SEK"),
            (
                "en",
                Money::from_minor(i64::MIN, Currency::EUR),
                "-€92,233,720,368,547,758.08",
            ),
        ];
        for (tag, money, expected) in cases {
            assert_eq!(format_money(money, &Locale::parse(tag)), expected, "{tag}");
        }
    }

    #[test]
    fn amounts_without_symbol_keep_every_minor_digit() {
        let de = Locale::parse("de-DE");
        assert_eq!(format_amount(eur(0), &de), "0,00");
        assert_eq!(format_amount(eur(7), &de), "0,07");
        assert_eq!(format_amount(eur(100), &de), "1,00");
        assert_eq!(format_amount(eur(99_999), &de), "999,99");
        assert_eq!(format_amount(eur(100_000), &de), "1.000,00");
    }

    #[test]
    fn unknown_tags_fall_back_to_the_language_then_to_english() {
        assert_eq!(Locale::parse("de_at").tag(), "de-AT");
        assert_eq!(Locale::parse("DE-ch").tag(), "de-CH");
        assert_eq!(Locale::parse("de-LU").tag(), "de-DE");
        assert_eq!(Locale::parse("en-IE").tag(), "en");
        assert_eq!(Locale::parse("fr-BE").tag(), "en");
        // The preset countries' conventions, with English labels.
        let sek = Money::from_minor(123_450, Currency::SEK);
        let sv = Locale::parse("sv-SE");
        assert_eq!((sv.tag(), sv.language()), ("sv-SE", Language::En));
        assert_eq!(format_money(sek, &sv), "1 234,50 SEK");
        let dkk = Money::from_minor(4_950, Currency::DKK);
        assert_eq!(format_money(dkk, &Locale::parse("da-DK")), "49,50 DKK");
        let yen = Money::from_minor(1_500, Currency::JPY);
        assert_eq!(format_money(yen, &Locale::parse("ja-JP")), "¥1,500");
        assert_eq!(Locale::parse("").tag(), "en");
        assert_eq!(Locale::parse("de-AT").language(), Language::De);
    }

    #[test]
    fn quantities_and_rates_use_the_decimal_separator() {
        let de = Locale::parse("de-AT");
        let en = Locale::parse("en-GB");
        let q = Quantity::parse("0.315").unwrap();
        assert_eq!(format_quantity(q, &de), "0,315");
        assert_eq!(format_quantity(q, &en), "0.315");
        assert_eq!(format_quantity(Quantity::each(12).unwrap(), &de), "12");
        assert_eq!(format_milli(-1500, &de), "-1,5");
        let rate = TaxRate::parse_percent("8.1").unwrap();
        assert_eq!(format_rate(rate, &de), "8,1 %");
        assert_eq!(format_rate(rate, &en), "8.1%");
        assert_eq!(
            format_rate(TaxRate::parse_percent("20").unwrap(), &de),
            "20 %"
        );
    }

    #[test]
    fn dates_follow_the_locale() {
        let when = LocalDateTime::new(2026, 11, 23, 14, 5).unwrap();
        let cases = [
            ("de-DE", "23.11.2026 14:05"),
            ("de-CH", "23.11.2026 14:05"),
            ("en-GB", "23/11/2026 14:05"),
            ("en-US", "11/23/2026 2:05 PM"),
            ("en", "2026-11-23 14:05"),
        ];
        for (tag, expected) in cases {
            assert_eq!(
                format_date_time(&when, &Locale::parse(tag)),
                expected,
                "{tag}"
            );
        }
        let midnight = LocalDateTime::new(2026, 1, 2, 0, 7).unwrap();
        assert_eq!(format_time(&midnight, &Locale::parse("en-US")), "12:07 AM");
        let noon = LocalDateTime::new(2026, 1, 2, 12, 0).unwrap();
        assert_eq!(format_time(&noon, &Locale::parse("en-US")), "12:00 PM");
    }

    #[test]
    fn invalid_calendar_dates_are_refused() {
        assert!(LocalDateTime::new(2026, 2, 29, 0, 0).is_none());
        assert!(LocalDateTime::new(2028, 2, 29, 0, 0).is_some());
        assert!(LocalDateTime::new(1900, 2, 29, 0, 0).is_none());
        assert!(LocalDateTime::new(2000, 2, 29, 0, 0).is_some());
        assert!(LocalDateTime::new(2026, 13, 1, 0, 0).is_none());
        assert!(LocalDateTime::new(2026, 4, 31, 0, 0).is_none());
        assert!(LocalDateTime::new(2026, 4, 30, 24, 0).is_none());
        assert!(LocalDateTime::new(2026, 4, 30, 23, 60).is_none());
    }

    #[test]
    fn instants_become_local_readings_at_an_offset() {
        // 2026-11-23T13:05:00Z, checked with `date -u -d @1795439100`.
        let t = Timestamp::from_millis(1_795_439_100_000);
        assert_eq!(
            LocalDateTime::from_timestamp(t, 60).to_string(),
            "2026-11-23 14:05"
        );
        assert_eq!(
            LocalDateTime::from_timestamp(t, 0).to_string(),
            "2026-11-23 13:05"
        );
        // Across midnight and before the epoch.
        assert_eq!(
            LocalDateTime::from_timestamp(t, 11 * 60).to_string(),
            "2026-11-24 00:05"
        );
        assert_eq!(
            LocalDateTime::from_timestamp(Timestamp::from_millis(-1), 0).to_string(),
            "1969-12-31 23:59"
        );
        assert_eq!(
            LocalDateTime::from_timestamp(Timestamp::from_millis(951_782_400_000), 0).to_string(),
            "2000-02-29 00:00"
        );
    }
}
