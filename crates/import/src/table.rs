//! Reading a CSV file whatever its encoding (UTF-8 with or without BOM, UTF-16 with BOM,
//! ISO-8859-1 or Windows-1252 when declared), matching its headers through alias tables, and
//! the helpers every reader shares to turn cells into normalised values while recording a
//! diagnostic for every bad cell.

use std::io::{BufRead, BufReader, Cursor, Read};
use std::sync::Arc;

use domain::Money;
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

/// An open CSV file: its headers and a cursor over its rows.
pub(crate) struct Table {
    headers: Vec<String>,
    keys: Vec<String>,
    reader: csv::Reader<Box<dyn Read>>,
    record: csv::ByteRecord,
    /// Rows read so far.
    pub rows: u64,
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
        Ok(Table {
            headers,
            keys,
            reader,
            record,
            rows: 0,
        })
    }

    /// The headers as written.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The first column whose header matches one of `aliases` (case and spacing ignored).
    pub fn find(&self, aliases: &[&str]) -> Option<usize> {
        aliases.iter().find_map(|a| {
            let key = header_key(a);
            self.keys.iter().position(|k| *k == key)
        })
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
                (!inner.is_empty()).then(|| (i, inner.to_owned()))
            })
            .collect()
    }

    /// The next row; a row that is not valid UTF-8 is read lossily with a diagnostic, and a
    /// row the CSV parser cannot read is skipped with one.
    pub fn next_row(&mut self, ctx: &mut Ctx<'_>) -> Option<Row> {
        loop {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {
                    self.rows += 1;
                    let line = self.record.position().map_or(0, csv::Position::line);
                    let record = match csv::StringRecord::from_byte_record(self.record.clone()) {
                        Ok(r) => r,
                        Err(e) => {
                            ctx.push(
                                line,
                                None,
                                Severity::Warning,
                                "encoding",
                                "row is not valid UTF-8; declare the file's encoding (for \
                                 example ISO-8859-1) in a mapping file"
                                    .to_owned(),
                            );
                            let bytes = e.into_byte_record();
                            bytes
                                .iter()
                                .map(|c| String::from_utf8_lossy(c).into_owned())
                                .collect()
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

    /// A normalised text cell, `None` when empty.
    pub fn text(&self, row: &Row, col: Option<usize>) -> Option<String> {
        let t = normalize::text(row.get(col));
        (!t.is_empty()).then_some(t)
    }

    /// A price or cost cell in the source's currency; a bad value is a diagnostic and `None`.
    pub fn money(&mut self, row: &Row, col: Option<usize>, what: &str) -> Option<Money> {
        let raw = row.get(col);
        if raw.is_empty() {
            return None;
        }
        match normalize::money(raw, self.opts.currency, self.opts.decimal) {
            Ok(amount) => {
                if amount.rounded {
                    self.push(
                        row.line,
                        col,
                        Severity::Warning,
                        "price-rounded",
                        format!(
                            "{what} `{raw}` has more decimals than {} allows; rounded half-up to {}",
                            self.opts.currency.code(),
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
