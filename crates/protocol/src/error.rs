//! The one error every conversion from outside data returns: which field, and why.

/// A value that could not become a domain type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field's path, such as `lines[2].quantity`.
    pub field: String,
    /// Why it was rejected.
    pub reason: String,
}

impl FieldError {
    /// An error for `field` with `reason`.
    pub fn new(field: impl Into<String>, reason: impl ToString) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.to_string(),
        }
    }
}

/// Adds a field name to a domain error.
pub(crate) trait AtField<T> {
    fn at(self, field: impl Fn() -> String) -> Result<T, FieldError>;
}

impl<T, E: std::fmt::Display> AtField<T> for Result<T, E> {
    fn at(self, field: impl Fn() -> String) -> Result<T, FieldError> {
        self.map_err(|e| FieldError::new(field(), e))
    }
}
