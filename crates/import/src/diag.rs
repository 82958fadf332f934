//! Per-row diagnostics: every problem found in an input file, named by file, line, column and
//! reason. A reader never aborts on bad input; it records a diagnostic and goes on.

use std::fmt;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The row (or the field) was left out of the catalog.
    Error,
    /// The row was imported, but something in it needs a person's eye.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem in one row of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as the user named it.
    pub file: String,
    /// The line the row starts on (1-based, the header is line 1).
    pub line: u64,
    /// The column header, when the problem is in one field.
    pub column: Option<String>,
    /// How bad it is.
    pub severity: Severity,
    /// A short stable code for counting (`barcode-scientific`, `price-invalid`…).
    pub code: &'static str,
    /// What is wrong, in words.
    pub reason: String,
}

impl Diagnostic {
    /// Whether the problem concerns a whole file rather than one row: the file (or the rest of
    /// it) could not be read, it is not in the encoding it claims, a quote never closes, a
    /// column the rows cannot do without is missing, or it holds no item at all. A run goes on,
    /// but committing it would silently leave out (or damage) what the file holds.
    pub fn is_file_level(&self) -> bool {
        matches!(
            self.code,
            "unreadable"
                | "mapping-missing"
                | "header-missing"
                | "encoding"
                | "csv-quote"
                | "file-empty"
                | "file-no-rows"
                | "file-all-rows-failed"
        )
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(column) = &self.column {
            write!(f, "column `{column}`: ")?;
        }
        write!(f, "{}: {}", self.severity.as_str(), self.reason)
    }
}
