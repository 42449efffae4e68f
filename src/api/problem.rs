//! The one place where errors become HTTP responses: RFC 9457 `application/problem+json`
//! documents with a stable `code`. Internal detail is logged, never sent.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// Media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error an API route answers with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No such route or resource.
    #[error("not found")]
    NotFound {
        /// Stable code, e.g. `not_found`.
        code: &'static str,
        /// What was not found.
        detail: String,
    },
    /// The service cannot answer now (database or key unavailable).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure. Logged in full; the client sees only the code.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The body of a problem document.
#[derive(Debug, Serialize)]
pub struct Problem<'a> {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short human-readable summary.
    pub title: &'a str,
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: &'a str,
    /// Explanation of this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound { code, .. } => code,
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (title, detail) = match self {
            ApiError::NotFound { detail, .. } => ("Not found", Some(detail.as_str())),
            ApiError::Unavailable(reason) => {
                tracing::warn!(%reason, "service unavailable");
                ("Service unavailable", Some("try again later"))
            }
            ApiError::Internal(reason) => {
                tracing::error!(%reason, "internal error");
                ("Internal error", None)
            }
        };
        let code = self.code();
        let body = Problem {
            kind: format!("urn:tamga:problem:{code}"),
            title,
            status: status.as_u16(),
            code,
            detail,
        };
        let mut response = HttpResponse::build(status);
        response.content_type(PROBLEM_JSON);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(("Retry-After", "5"));
        }
        response.json(body)
    }
}
