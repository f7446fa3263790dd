//! The one error shape of every HTTP API: `{"error": "…", "code": "…"}`
//! with the status that goes with the code.
//!
//! `error` is for people and may change; `code` is for programs and does
//! not (scripts branch on it, the UI words its messages by it). Every API
//! answers its errors through [`ApiError`], and the extractors here
//! ([`Json`], [`Query`], [`Path`]) turn axum's rejections of a bad body,
//! query string or path into the same shape, so no request gets a
//! plain-text error. Internal errors are logged with their detail and
//! answered without it.

use std::fmt;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What went wrong, for programs. Serialized in snake case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A parameter, body or statement is wrong (400).
    InvalidArgument,
    /// No valid credentials (401).
    Unauthenticated,
    /// Valid credentials without the permission (403).
    PermissionDenied,
    /// The request may not be made from where it comes (403): a foreign
    /// `Host` or a cross-origin browser request.
    Forbidden,
    /// The thing named does not exist (404).
    NotFound,
    /// The request contradicts what exists (409), e.g. an id taken.
    Conflict,
    /// The body is too large (413).
    TooLarge,
    /// The body's media type is not one the endpoint reads (415).
    UnsupportedMediaType,
    /// The request ran out of time (408).
    Timeout,
    /// The caller is over a limit of its own (429), e.g. its tenant's
    /// concurrent queries; retry later.
    ResourceExhausted,
    /// The server cannot do it now; retry later (503).
    Unavailable,
    /// A bug or an unexpected failure (500); the detail is in the log.
    Internal,
}

impl ErrorCode {
    /// The HTTP status of the code.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidArgument => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied | Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict => StatusCode::CONFLICT,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code as it appears in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::TooLarge => "too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Timeout => "timeout",
            Self::ResourceExhausted => "resource_exhausted",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// The code of an error status (400 for statuses without one).
    pub fn of_status(status: StatusCode) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => Self::Unauthenticated,
            StatusCode::FORBIDDEN => Self::Forbidden,
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::CONFLICT => Self::Conflict,
            StatusCode::PAYLOAD_TOO_LARGE => Self::TooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::REQUEST_TIMEOUT => Self::Timeout,
            StatusCode::TOO_MANY_REQUESTS => Self::ResourceExhausted,
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable,
            s if s.is_server_error() => Self::Internal,
            _ => Self::InvalidArgument,
        }
    }
}

/// The message answered for internal errors, whose detail stays in the log.
pub const INTERNAL_MESSAGE: &str = "internal error; see the server log";

/// An error answer of any API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    code: ErrorCode,
    /// The code's status, or a more precise one of the same class (axum's
    /// 422 for a body of the wrong shape).
    status: StatusCode,
    message: String,
    /// Extra members of the answer (e.g. `problems`), beside `error` and
    /// `code`.
    details: Option<(&'static str, serde_json::Value)>,
}

impl ApiError {
    /// An error with `code` and a message for people.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            status: code.status(),
            message: message.into(),
            details: None,
        }
    }

    /// 400: a parameter, body or statement is wrong; say which.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// 500: logs `error` with what failed and answers without the detail.
    pub fn internal(what: &str, error: impl fmt::Display) -> Self {
        tracing::error!(%error, "{what} failed.");
        Self::new(ErrorCode::Internal, INTERNAL_MESSAGE)
    }

    /// Adds a member to the answer, e.g. the list of problems.
    pub fn with_detail(mut self, name: &'static str, value: serde_json::Value) -> Self {
        self.details = Some((name, value));
        self
    }

    /// Answers with `status` instead of the code's own (same class).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code.as_str())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({
            "error": self.message,
            "code": self.code.as_str(),
        });
        if let (Some((name, value)), Some(map)) = (self.details, body.as_object_mut()) {
            map.insert(name.to_string(), value);
        }
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        Self::new(ErrorCode::of_status(r.status()), r.body_text()).with_status(r.status())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::new(ErrorCode::of_status(r.status()), r.body_text()).with_status(r.status())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::new(ErrorCode::of_status(r.status()), r.body_text()).with_status(r.status())
    }
}

/// Checks that a request body is of one of the media types an endpoint
/// declares (parameters such as `charset` aside): a mutation reads only what
/// it declares, so a browser's cross-site "simple" request (`text/plain`, a
/// form) is refused before it is read (415).
pub fn require_media_type(headers: &HeaderMap, accepted: &[&str]) -> Result<(), ApiError> {
    let given = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    if given.as_deref().is_some_and(|t| accepted.contains(&t)) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::UnsupportedMediaType,
        format!(
            "send the body with Content-Type: {}{}",
            accepted.join(" or "),
            given.map(|t| format!(" (not {t})")).unwrap_or_default()
        ),
    ))
}

/// What a handler adds to its change's entry in the audit log (the id of
/// what it made), put in its response's extensions; the binary's audit
/// middleware appends it to the entry's action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDetail(pub String);

/// `axum::Json` whose rejection is an [`ApiError`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// `axum::extract::Query` whose rejection is an [`ApiError`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// `axum::extract::Path` whose rejection is an [`ApiError`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_keeps_its_name_and_status() {
        for (code, name, status) in [
            (ErrorCode::InvalidArgument, "invalid_argument", 400),
            (ErrorCode::NotFound, "not_found", 404),
            (ErrorCode::Conflict, "conflict", 409),
            (ErrorCode::TooLarge, "too_large", 413),
            (
                ErrorCode::UnsupportedMediaType,
                "unsupported_media_type",
                415,
            ),
            (ErrorCode::Timeout, "timeout", 408),
            (ErrorCode::Unavailable, "unavailable", 503),
            (ErrorCode::Internal, "internal", 500),
        ] {
            assert_eq!(code.as_str(), name);
            assert_eq!(serde_json::to_value(code).unwrap(), name);
            assert_eq!(code.status().as_u16(), status);
        }
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let e = ApiError::internal("Reading the store", "disk on fire at /secret/path");
        assert_eq!(e.code(), ErrorCode::Internal);
        assert!(!e.message().contains("secret"));
    }
}
