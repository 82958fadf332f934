//! HQ's request extractors: axum's `Query` and `Path` with their rejections answered as HQ's
//! JSON error `{code, message, field}` instead of axum's plain text, and the bounded read of a
//! request body.

use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::api::ApiError;

/// The first name in backticks in a message, which is how serde names the field at fault
/// (``duplicate field `from` ``).
pub(crate) fn backticked(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once('`')?;
    let (name, _) = rest.split_once('`')?;
    (!name.is_empty()).then_some(name)
}

/// The parameter a query rejection starts with, as serde names a value that did not parse
/// (`Failed to deserialize query string: from_ms: invalid digit found in string`).
fn prefixed(message: &str) -> Option<&str> {
    let rest = message.split_once("query string: ")?.1;
    let (name, _) = rest.split_once(": ")?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then_some(name)
}

/// A query string, deserialized into `T`; a query that does not deserialize is a `400
/// invalid_query` naming the parameter where serde names one.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => {
                let message = rejection.body_text();
                let field = backticked(&message)
                    .or_else(|| prefixed(&message))
                    .map(str::to_owned);
                let error = ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", &message);
                Err(match field {
                    Some(field) => error.at(field),
                    None => error,
                })
            }
        }
    }
}

/// Path parameters, deserialized into `T`; a parameter that does not decode (say, percent
/// escapes that are not UTF-8) is a `400 invalid_path` naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let field = match e.kind() {
                    ErrorKind::InvalidUtf8InPathParam { key }
                    | ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::DeserializeError { key, .. } => Some(key.clone()),
                    _ => None,
                };
                let error = ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text());
                Err(match field {
                    Some(field) => error.at(field),
                    None => error,
                })
            }
            // Only a router without the parameter in its path gets here: a bug, not bad input.
            Err(rejection) => Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "path_unavailable",
                rejection.body_text(),
            )),
        }
    }
}

/// The `413 body_too_large` answer for a body over `limit` bytes.
pub(crate) fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the body is larger than {limit} bytes"),
    )
    .at("body")
}

/// Refuses a request whose `Content-Type` is not `expected` (parameters such as `charset`
/// aside), with `415 unsupported_media_type`.
pub(crate) fn require_content_type(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim());
    match given {
        Some(media) if media.eq_ignore_ascii_case(expected) => Ok(()),
        Some(media) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("the body must be `{expected}`, not `{media}`"),
        )
        .at("content-type")),
        None => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("the body must be `{expected}`; the Content-Type header is missing"),
        )
        .at("content-type")),
    }
}

/// Reads a body of at most `limit` bytes. A `Content-Length` over the limit is refused before
/// a byte of the body is read, and a body without one stops being read at the limit, so a
/// client cannot make HQ hold more than `limit` bytes of it.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    axum::body::to_bytes(body, limit_usize).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(cause) = source {
            if cause.is::<http_body_util::LengthLimitError>() {
                return too_large(limit);
            }
            source = cause.source();
        }
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "body_unreadable",
            format!("the body could not be read: {e}"),
        )
        .at("body")
    })
}

#[cfg(test)]
mod tests {
    use super::backticked;

    #[test]
    fn serde_field_names_are_read_from_backticks() {
        assert_eq!(backticked("duplicate field `from`"), Some("from"));
        assert_eq!(backticked("invalid digit found in string"), None);
        assert_eq!(backticked("empty `` name"), None);
    }
}
