//! Reading a CSV file whatever its encoding (UTF-8 with or without BOM, UTF-16 with BOM,
//! ISO-8859-1 or Windows-1252 when declared), matching its headers through alias tables, and
//! the helpers every reader shares to turn cells into normalised values while recording a
//! diagnostic for every bad cell.

use std::cell::Cell;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::rc::Rc;
use std::sync::Arc;

use domain::{Currency, Money};
use rust_decimal::Decimal;

use crate::diag::{Diagnostic, Severity};
use crate::model::{SourceItem, SourceOptions};
use crate::normalize::{self, BarcodeCheck};

/// A text encoding a source file may be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// UTF-8 (a BOM is skipped; a UTF-16 BOM switches to UTF-16).
    #[default]
    Utf8,
    /// ISO-8859-1, read as its superset Windows-1252 as browsers and spreadsheets do.
    Latin1,
    /// UTF-16, little-endian unless a BOM says otherwise.
    Utf16,
}

impl Encoding {
    /// Parses `UTF-8`, `ISO-8859-1` (`latin1`, `windows-1252`, `cp1252`) or `UTF-16`.
    pub fn parse(name: &str) -> Option<Encoding> {
        match name.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            "iso-8859-1" | "latin1" | "latin-1" | "windows-1252" | "cp1252" | "iso-8859-15" => {
                Some(Encoding::Latin1)
            }
            "utf-16" | "utf16" | "utf-16le" | "utf-16be" => Some(Encoding::Utf16),
            _ => None,
        }
    }
}

/// The longest text Kassa keeps in one field (titles, names, option values, SKUs, categories),
/// in characters. A longer value is refused with a diagnostic: it is a broken export (a quote
/// that swallowed the rest of the file, a description in the title column), not a name.
pub const MAX_TEXT_CHARS: usize = 255;

/// An open CSV file: its headers and a cursor over its rows.
pub(crate) struct Table {
    headers: Vec<String>,
    keys: Vec<String>,
    reader: csv::Reader<Box<dyn Read>>,
    record: csv::ByteRecord,
    /// Rows read so far.
    pub rows: u64,
    /// Which columns a reader looked up.
    used: Vec<Cell<bool>>,
    /// Columns no reader looked up, with the number of rows that have a value there; settled
    /// at the first row.
    unused: Option<Vec<(usize, u64)>>,
    /// Where a quoted field opened that has not closed yet.
    quotes: Rc<QuoteState>,
}

/// What the quote tracker knows: the line of the quote that is open (0 when none).
#[derive(Default)]
struct QuoteState {
    open_line: Cell<u64>,
}

/// Follows the CSV quoting of the bytes the parser reads, so that a quote that never closes (the
/// parser then reads the rest of the file as one field) is reported with the line it opened on.
struct QuoteTracker {
    inner: Box<dyn Read>,
    delimiter: u8,
    state: Rc<QuoteState>,
    line: u64,
    in_quote: bool,
    /// A quote inside a quoted field: it closes the field unless another quote follows.
    pending_quote: bool,
    field_start: bool,
}

impl Read for QuoteTracker {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in buf.get(..n).unwrap_or(&[]) {
            if self.in_quote {
                if self.pending_quote {
                    self.pending_quote = false;
                    if b == b'"' {
                        // A doubled quote is a quote character inside the field.
                        continue;
                    }
                    self.in_quote = false;
                } else {
                    if b == b'"' {
                        self.pending_quote = true;
                    }
                    if b == b'\n' {
                        self.line += 1;
                    }
                    continue;
                }
            }
            if b == b'"' && self.field_start {
                self.in_quote = true;
                self.state.open_line.set(self.line);
                self.field_start = false;
            } else {
                self.field_start = b == self.delimiter || b == b'\n';
            }
            if b == b'\n' {
                self.line += 1;
            }
        }
        if n == 0 {
            let open = self.in_quote && !self.pending_quote;
            if !open {
                self.state.open_line.set(0);
            }
        } else if !self.in_quote || self.pending_quote {
            self.state.open_line.set(0);
        }
        Ok(n)
    }
}

/// One data row.
pub(crate) struct Row {
    /// The line the row starts on.
    pub line: u64,
    record: csv::StringRecord,
}

impl Row {
    /// The trimmed cell at `col`, or `""` when the column is absent or the row is short.
    pub fn get(&self, col: Option<usize>) -> &str {
        col.and_then(|c| self.record.get(c)).map_or("", str::trim)
    }

    /// The trimmed cell at a known index.
    pub fn at(&self, col: usize) -> &str {
        self.record.get(col).map_or("", str::trim)
    }

    /// Whether every cell is empty.
    pub fn is_blank(&self) -> bool {
        self.record.iter().all(|c| c.trim().is_empty())
    }
}

/// A header normalised for matching: lower case, single spaces.
pub(crate) fn header_key(h: &str) -> String {
    h.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl Table {
    /// Opens `input`, decoding it to UTF-8, and reads the header row.
    pub fn open(
        input: impl Read + 'static,
        delimiter: u8,
        encoding: Encoding,
    ) -> std::io::Result<Table> {
        let mut buffered = BufReader::with_capacity(1 << 16, input);
        let head = buffered.fill_buf()?;
        let utf16 = match head {
            [0xFF, 0xFE, ..] => Some(encoding_rs::UTF_16LE),
            [0xFE, 0xFF, ..] => Some(encoding_rs::UTF_16BE),
            _ if encoding == Encoding::Utf16 => Some(encoding_rs::UTF_16LE),
            _ => None,
        };
        let utf8_bom = head.starts_with(&[0xEF, 0xBB, 0xBF]);
        if utf16.is_none() && encoding == Encoding::Utf8 {
            check_utf8(head)?;
        }
        let source: Box<dyn Read> = if let Some(enc) = utf16 {
            let mut bytes = Vec::new();
            buffered.read_to_end(&mut bytes)?;
            let (text, _, _) = enc.decode(&bytes);
            Box::new(Cursor::new(text.into_owned().into_bytes()))
        } else if encoding == Encoding::Latin1 && !utf8_bom {
            let mut bytes = Vec::new();
            buffered.read_to_end(&mut bytes)?;
            let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(&bytes);
            Box::new(Cursor::new(text.into_owned().into_bytes()))
        } else {
            if utf8_bom {
                buffered.consume(3);
            }
            Box::new(buffered)
        };
        let source: Box<dyn Read> = Box::new(CrLf {
            inner: source,
            pending_cr: false,
        });
        let quotes = Rc::new(QuoteState::default());
        let source: Box<dyn Read> = Box::new(QuoteTracker {
            inner: source,
            delimiter,
            state: quotes.clone(),
            line: 1,
            in_quote: false,
            pending_quote: false,
            field_start: true,
        });
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(source);
        let mut record = csv::ByteRecord::new();
        let headers: Vec<String> = if reader.read_byte_record(&mut record).map_err(csv_io)? {
            record
                .iter()
                .map(|h| String::from_utf8_lossy(h).trim().to_owned())
                .collect()
        } else {
            Vec::new()
        };
        let keys = headers.iter().map(|h| header_key(h)).collect();
        let used = headers.iter().map(|_| Cell::new(false)).collect();
        Ok(Table {
            headers,
            keys,
            reader,
            record,
            rows: 0,
            used,
            unused: None,
            quotes,
        })
    }

    /// The headers as written.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The first column whose header matches one of `aliases` (case and spacing ignored).
    pub fn find(&self, aliases: &[&str]) -> Option<usize> {
        let found = aliases.iter().find_map(|a| {
            let key = header_key(a);
            self.keys.iter().position(|k| *k == key)
        });
        if let Some(used) = found.and_then(|c| self.used.get(c)) {
            used.set(true);
        }
        found
    }

    /// Like [`Table::find_pattern`], with the names shared.
    pub fn find_shared(&self, prefix: &str, suffix: &str) -> Vec<(usize, Arc<str>)> {
        self.find_pattern(prefix, suffix)
            .into_iter()
            .map(|(c, n)| (c, Arc::from(n)))
            .collect()
    }

    /// Columns whose header starts with `prefix` and ends with `suffix` (case ignored), with
    /// the text between, trimmed: `Current Quantity <Loc>`, `Price [<Store>]`.
    pub fn find_pattern(&self, prefix: &str, suffix: &str) -> Vec<(usize, String)> {
        let (p, s) = (prefix.to_lowercase(), suffix.to_lowercase());
        self.headers
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let lower = h.to_lowercase();
                if lower.len() <= p.len() + s.len()
                    || !lower.starts_with(&p)
                    || !lower.ends_with(&s)
                {
                    return None;
                }
                let inner = h.get(prefix.len()..h.len().checked_sub(suffix.len())?)?;
                let inner = inner.trim();
                if !inner.is_empty() {
                    if let Some(used) = self.used.get(i) {
                        used.set(true);
                    }
                }
                (!inner.is_empty()).then(|| (i, inner.to_owned()))
            })
            .collect()
    }

    /// The next row. A row that is not valid UTF-8 is left out with an error that stops a
    /// commit (its text would be damaged); a row the CSV parser cannot read is skipped with
    /// one; at the end, a quote that never closed and columns no reader used are reported.
    pub fn next_row(&mut self, ctx: &mut Ctx<'_>) -> Option<Row> {
        loop {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => {
                    self.finish(ctx);
                    return None;
                }
                Ok(true) => {
                    self.rows += 1;
                    let line = self.record.position().map_or(0, csv::Position::line);
                    self.count_unused();
                    let record = match csv::StringRecord::from_byte_record(self.record.clone()) {
                        Ok(r) => r,
                        Err(e) => {
                            let u = e.utf8_error();
                            let byte = self
                                .record
                                .get(u.field())
                                .and_then(|f| f.get(u.valid_up_to()))
                                .map_or_else(String::new, |b| format!(" (byte 0x{b:02X})"));
                            ctx.push(
                                line,
                                None,
                                Severity::Error,
                                "encoding",
                                format!(
                                    "the row is not valid UTF-8{byte}; it is left out rather \
                                     than imported with damaged text. The file is probably \
                                     Windows-1252 or ISO-8859-1: declare it with `encoding = \
                                     \"windows-1252\"` in the source's [[source]] entry of the \
                                     plan (or in its mapping file)"
                                ),
                            );
                            continue;
                        }
                    };
                    return Some(Row { line, record });
                }
                Err(e) => {
                    let line = e.position().map_or(0, csv::Position::line);
                    if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        ctx.push(
                            line,
                            None,
                            Severity::Error,
                            "unreadable",
                            format!("cannot read the rest of the file: {e}"),
                        );
                        return None;
                    }
                    ctx.push(
                        line,
                        None,
                        Severity::Error,
                        "csv",
                        format!("unreadable row: {e}"),
                    );
                }
            }
        }
    }

    fn count_unused(&mut self) {
        let used = &self.used;
        let unused = self.unused.get_or_insert_with(|| {
            used.iter()
                .enumerate()
                .filter(|(_, u)| !u.get())
                .map(|(c, _)| (c, 0))
                .collect()
        });
        for (col, filled) in unused.iter_mut() {
            if self
                .record
                .get(*col)
                .is_some_and(|v| !v.trim_ascii().is_empty())
            {
                *filled += 1;
            }
        }
    }

    /// The end of the file: an unterminated quote, and what was not imported.
    fn finish(&mut self, ctx: &mut Ctx<'_>) {
        let open = self.quotes.open_line.get();
        if open > 0 {
            ctx.push(
                open,
                None,
                Severity::Error,
                "csv-quote",
                format!(
                    "a quote opened on line {open} is never closed, so everything after it was \
                     read as one field and the rows after it are lost; nothing from this file \
                     is committed: close the quote (a quote inside a quoted field is written \
                     twice) and run again"
                ),
            );
        }
        for (col, filled) in self.unused.take().unwrap_or_default() {
            if filled == 0 {
                continue;
            }
            let header = self.headers.get(col).cloned().unwrap_or_default();
            let key = header_key(&header);
            let why = if key.contains("description") || key.contains("body") {
                "descriptions are not imported: Kassa's catalog has no description field"
            } else if key.contains("image") {
                "images are not imported: Kassa's catalog has no images"
            } else if key.contains("composite") {
                "composite (bundle) parts are not imported: Kassa's catalog has no bundles; \
                 each composite is imported as a plain item"
            } else {
                "Kassa's catalog has no field it maps to"
            };
            ctx.push(
                1,
                Some(col),
                Severity::Warning,
                "not-imported",
                format!("{filled} rows have a value in this column; it is not imported: {why}"),
            );
        }
    }
}

/// Refuses input that claims no encoding but is not UTF-8, before a row is read: read as UTF-8
/// it would become text with replacement characters.
fn check_utf8(head: &[u8]) -> std::io::Result<()> {
    let Err(e) = std::str::from_utf8(head) else {
        return Ok(());
    };
    // A character cut off at the end of the buffer is not an error.
    if e.error_len().is_none() {
        return Ok(());
    }
    let at = e.valid_up_to();
    let line = head
        .get(..at)
        .map_or(0, |h| h.iter().filter(|&&b| b == b'\n').count())
        + 1;
    let byte = head.get(at).copied().unwrap_or(0);
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "the file is not UTF-8 (line {line} has byte 0x{byte:02X}); it is probably \
             Windows-1252 or ISO-8859-1: declare it with `encoding = \"windows-1252\"` (or \
             \"ISO-8859-1\", \"UTF-16\") in the source's [[source]] entry of the plan or in \
             its mapping file"
        ),
    ))
}

/// Turns CRLF line ends into LF while streaming. The CSV parser accepts both, but it reports a
/// record after a CRLF as starting on the previous line; with LF only, line numbers in
/// diagnostics are the ones an editor shows.
struct CrLf {
    inner: Box<dyn Read>,
    pending_cr: bool,
}

impl Read for CrLf {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            // Leave room for a carried-over CR.
            let room = buf.len().saturating_sub(1);
            if room == 0 {
                return self.inner.read(buf);
            }
            let start = usize::from(self.pending_cr);
            let n = self.inner.read(&mut buf[start..start + room])?;
            if n == 0 {
                if self.pending_cr {
                    self.pending_cr = false;
                    buf[0] = b'\r';
                    return Ok(1);
                }
                return Ok(0);
            }
            if self.pending_cr {
                buf[0] = b'\r';
                self.pending_cr = false;
            }
            let end = start + n;
            let mut out = 0;
            let mut i = 0;
            while i < end {
                let b = buf[i];
                if b == b'\r' {
                    if i + 1 == end {
                        // A CR at the end of the chunk: decide when the next byte is known.
                        self.pending_cr = true;
                        i += 1;
                        continue;
                    }
                    if buf[i + 1] == b'\n' {
                        i += 1;
                        continue;
                    }
                }
                buf[out] = b;
                out += 1;
                i += 1;
            }
            if out > 0 {
                return Ok(out);
            }
        }
    }
}

fn csv_io(e: csv::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// What every reader carries while reading one file.
pub(crate) struct Ctx<'a> {
    /// How to read the source.
    pub opts: &'a SourceOptions,
    /// The headers, for naming columns in diagnostics.
    pub headers: Vec<String>,
    /// The headers again, shared by every item that names its column.
    pub columns: Vec<Arc<str>>,
    /// The location of a source that has only one.
    pub default_location: Arc<str>,
    /// Problems so far.
    pub diags: Vec<Diagnostic>,
    /// The currency prices are read in: the declared one, or the one the first currency sign
    /// decided.
    pub currency: Currency,
    /// How an undeclared currency was decided (sign, column, line), once it was.
    pub currency_decided: Option<String>,
}

impl Ctx<'_> {
    /// Records a problem.
    pub fn push(
        &mut self,
        line: u64,
        col: Option<usize>,
        severity: Severity,
        code: &'static str,
        reason: String,
    ) {
        self.diags.push(Diagnostic {
            file: self.opts.file.clone(),
            line,
            column: col.and_then(|c| self.headers.get(c).cloned()),
            severity,
            code,
            reason,
        });
    }

    /// The handle that groups a row with its product's other rows; an empty one is reported as
    /// an error (`row-unassigned`, with `reason`) and the row is to be skipped.
    pub fn handle(&mut self, row: &Row, col: Option<usize>, reason: &str) -> Option<String> {
        let key = row.get(col);
        if key.is_empty() {
            self.push(
                row.line,
                col,
                Severity::Error,
                "row-unassigned",
                reason.to_owned(),
            );
            return None;
        }
        Some(key.to_owned())
    }

    /// A normalised text cell, `None` when empty. A value longer than [`MAX_TEXT_CHARS`], or
    /// holding the replacement character U+FFFD (text an earlier conversion already damaged),
    /// is refused with an error and gives `None`.
    pub fn text(&mut self, row: &Row, col: Option<usize>) -> Option<String> {
        let t = normalize::text(row.get(col));
        if t.is_empty() {
            return None;
        }
        if t.len() > MAX_TEXT_CHARS {
            let chars = t.chars().count();
            if chars > MAX_TEXT_CHARS {
                let start: String = t.chars().take(40).collect();
                self.push(
                    row.line,
                    col,
                    Severity::Error,
                    "text-too-long",
                    format!(
                        "`{start}…` is {chars} characters long; Kassa keeps at most \
                         {MAX_TEXT_CHARS} in a title, name, option, SKU or category: not imported"
                    ),
                );
                return None;
            }
        }
        if !t.is_ascii() && t.contains('\u{FFFD}') {
            self.push(
                row.line,
                col,
                Severity::Error,
                "text-replacement",
                format!(
                    "`{t}` holds the replacement character U+FFFD: an earlier conversion lost \
                     its real characters; not imported (export the file again in its original \
                     encoding)"
                ),
            );
            return None;
        }
        Some(t)
    }

    /// A price or cost cell in the source's currency; a bad value is a diagnostic and `None`.
    pub fn money(&mut self, row: &Row, col: Option<usize>, what: &str) -> Option<Money> {
        let raw = row.get(col);
        if raw.is_empty() {
            return None;
        }
        if let Some(mark) = normalize::currency_mark(raw) {
            if !self.currency_agrees(row.line, col, what, raw, &mark) {
                return None;
            }
        }
        match normalize::money(raw, self.currency, self.opts.decimal) {
            Ok(amount) => {
                if amount.rounded {
                    self.push(
                        row.line,
                        col,
                        Severity::Warning,
                        "price-rounded",
                        format!(
                            "{what} `{raw}` has more decimals than {} allows; rounded half-up to {}",
                            self.currency.code(),
                            amount.money.amount_string()
                        ),
                    );
                }
                Some(amount.money)
            }
            Err(reason) => {
                self.push(
                    row.line,
                    col,
                    Severity::Error,
                    "price-invalid",
                    format!("{what} {reason}"),
                );
                None
            }
        }
    }

    /// Whether the currency sign or code `mark` in a price agrees with the source's currency.
    /// With no declared currency the first sign decides it (and every later price must agree);
    /// a sign for another currency is an error and the price is not imported.
    fn currency_agrees(
        &mut self,
        line: u64,
        col: Option<usize>,
        what: &str,
        raw: &str,
        mark: &str,
    ) -> bool {
        let codes = normalize::mark_currencies(mark);
        let Some(first) = codes.first() else {
            self.push(
                line,
                col,
                Severity::Error,
                "price-invalid",
                format!("{what} `{raw}`: `{mark}` is no currency sign or code Kassa knows"),
            );
            return false;
        };
        if !self.opts.currency_declared && self.currency_decided.is_none() {
            if let Ok(c) = Currency::parse(first) {
                self.currency = c;
                let column = col
                    .and_then(|c| self.headers.get(c))
                    .map_or_else(String::new, |h| format!(" in column `{h}`"));
                let decided = format!(
                    "{} decided by `{mark}`{column} on line {line} (no currency declared)",
                    c.code()
                );
                self.push(
                    line,
                    col,
                    Severity::Warning,
                    "currency-decided",
                    format!(
                        "the source declares no currency; its prices are taken as {}: declare \
                         `currency` for the source if that is wrong",
                        decided
                    ),
                );
                self.currency_decided = Some(decided);
                return true;
            }
        }
        if codes.iter().any(|c| c == self.currency.code()) {
            return true;
        }
        let how = match &self.currency_decided {
            Some(d) => format!("its currency is {d}"),
            None => format!("the source's declared currency is {}", self.currency.code()),
        };
        self.push(
            line,
            col,
            Severity::Error,
            "price-currency",
            format!(
                "{what} `{raw}` is in {} (`{mark}`) but {how}; not imported",
                codes.join("/")
            ),
        );
        false
    }

    /// A plain decimal cell (quantities, weights, rates).
    pub fn decimal(&mut self, row: &Row, col: Option<usize>, what: &str) -> Option<Decimal> {
        let raw = row.get(col);
        if raw.is_empty() {
            return None;
        }
        match normalize::decimal(raw, self.opts.decimal) {
            Ok(d) => Some(d),
            Err(reason) => {
                self.push(
                    row.line,
                    col,
                    Severity::Error,
                    "number-invalid",
                    format!("{what} {reason}"),
                );
                None
            }
        }
    }

    /// A yes/no cell.
    pub fn boolean(&mut self, row: &Row, col: Option<usize>) -> Option<bool> {
        match normalize::boolean(row.get(col)) {
            Ok(b) => b,
            Err(reason) => {
                self.push(row.line, col, Severity::Warning, "boolean-invalid", reason);
                None
            }
        }
    }

    /// Classifies a barcode cell into `item`, with a diagnostic when it is not a usable GTIN
    /// or was changed to become one.
    pub fn barcode(&mut self, row: &Row, col: Option<usize>, item: &mut SourceItem) {
        let raw = row.get(col);
        let Some(check) = normalize::barcode(raw) else {
            return;
        };
        match &check {
            BarcodeCheck::Valid {
                note: Some(note), ..
            } => {
                let note = format!("barcode `{raw}`: {note}");
                self.push(row.line, col, Severity::Warning, "barcode-repaired", note);
            }
            BarcodeCheck::Valid { .. } => {}
            other => {
                let reason = other.reason().unwrap_or_default();
                self.push(row.line, col, Severity::Warning, other.code(), reason);
            }
        }
        let column = col
            .and_then(|c| self.columns.get(c).cloned())
            .unwrap_or_else(|| Arc::from(""));
        item.barcodes.push((column, check));
    }

    /// A weight cell converted to grams with `grams_per_unit`.
    pub fn weight(
        &mut self,
        row: &Row,
        col: Option<usize>,
        grams_per_unit: Decimal,
    ) -> Option<Decimal> {
        self.decimal(row, col, "weight")
            .and_then(|w| w.checked_mul(grams_per_unit))
            .map(|g| g.normalize())
    }

    /// Stock cells per location.
    pub fn stock(&mut self, row: &Row, cols: &[(usize, Arc<str>)], item: &mut SourceItem) {
        for (col, location) in cols {
            if let Some(quantity) = self.decimal(row, Some(*col), "stock quantity") {
                item.stock.push(crate::model::LocationStock {
                    location: location.clone(),
                    quantity,
                });
            }
        }
    }
}
