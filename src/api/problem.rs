//! The one place where errors become HTTP responses: RFC 9457 `application/problem+json`
//! documents with a stable `code`, and the one table from [`ErrorCode`] to HTTP status
//! ([`status_of`], an exhaustive match: a new code does not compile until it has a status).
//! Internal detail is logged, never sent.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::digital_id::ConsentError;
use crate::error_code::ErrorCode;
use crate::ra::RaError;
use crate::store::StoreError;

/// Media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error an API route answers with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The consent token was refused.
    #[error(transparent)]
    Consent(#[from] ConsentError),
    /// The RA refused or failed.
    #[error(transparent)]
    Ra(#[from] RaError),
    /// The body exceeds the route's limit.
    #[error("the request body exceeds {0} bytes")]
    BodyTooLarge(usize),
    /// The body did not arrive in full within `[server] body_timeout_ms` (milliseconds).
    #[error("the request body did not arrive within {0} ms")]
    BodyTimeout(u32),
    /// The client address already holds `[limits] connections_per_address` open connections.
    #[error("this address already holds {limit} open connections")]
    RateLimitedConnections {
        /// The cap.
        limit: u32,
    },
    /// The body is not the JSON the route expects.
    #[error("the request body is malformed: {0}")]
    RequestMalformed(String),
    /// No such route or resource.
    #[error("not found")]
    NotFound {
        /// Stable code, e.g. `not_found`.
        code: ErrorCode,
        /// What was not found.
        detail: String,
    },
    /// The portal API was called without a client certificate (`[server.tls] client_ca`).
    #[error("the portal API needs a TLS client certificate issued under the configured client CA")]
    ClientCertificateRequired,
    /// The connection's client certificate does not chain to the configured client CA.
    #[error("the TLS client certificate was not accepted: {0}")]
    ClientCertificateUntrusted(String),
    /// Too many requests from this client address.
    #[error("too many requests from this address; retry in {retry_after_secs} s")]
    RateLimitedClient {
        /// When to try again.
        retry_after_secs: u64,
    },
    /// The database failed or cannot be reached.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database work of the request did not finish within `[database]
    /// request_timeout_ms` (it may still finish later).
    #[error("no answer from the database within {0} ms")]
    DatabaseTimeout(u32),
    /// The route exists, but not for this method.
    #[error("this resource answers only {allow}")]
    MethodNotAllowed {
        /// The method it answers (the `Allow` header).
        allow: &'static str,
    },
    /// The service cannot answer now (nothing published yet, an expired CRL).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A re-issue without its `Tamga-Confirmation` header.
    #[error("no confirmation: send the detached CMS signature of the body, made with the SIGN key, in the Tamga-Confirmation header")]
    ConfirmationMissing,
    /// A page API write without the session's `X-CSRF-Token`, or from another origin.
    #[error("the request is not from this site's pages: {0}")]
    CsrfInvalid(&'static str),
    /// A bug or an unexpected failure. Logged in full; the client sees only the code.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The body of a problem document.
#[derive(Debug, Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    code: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

impl ApiError {
    /// The stable code sent to the client.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Consent(e) => e.code(),
            ApiError::Ra(e) => e.code(),
            ApiError::BodyTooLarge(_) => ErrorCode::BodyTooLarge,
            ApiError::BodyTimeout(_) => ErrorCode::BodyTimeout,
            ApiError::RateLimitedConnections { .. } => ErrorCode::RateLimitedConnections,
            ApiError::RequestMalformed(_) => ErrorCode::RequestMalformed,
            ApiError::NotFound { code, .. } => *code,
            ApiError::ClientCertificateRequired => ErrorCode::ClientCertificateRequired,
            ApiError::ClientCertificateUntrusted(_) => ErrorCode::ClientCertificateUntrusted,
            ApiError::RateLimitedClient { .. } => ErrorCode::RateLimitedClient,
            ApiError::Store(e) => e.code(),
            ApiError::DatabaseTimeout(_) => ErrorCode::DatabaseUnavailable,
            ApiError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            ApiError::Unavailable(_) => ErrorCode::ServiceUnavailable,
            ApiError::ConfirmationMissing => ErrorCode::ConfirmationMissing,
            ApiError::CsrfInvalid(_) => ErrorCode::CsrfInvalid,
            ApiError::Internal(_) => ErrorCode::InternalError,
        }
    }

    fn title(&self) -> &'static str {
        match self.status_code() {
            StatusCode::BAD_REQUEST => "Bad request",
            StatusCode::UNAUTHORIZED => "Unauthorized",
            StatusCode::FORBIDDEN => "Forbidden",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
            StatusCode::REQUEST_TIMEOUT => "Request timeout",
            StatusCode::CONFLICT => "Conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "Payload too large",
            StatusCode::UNPROCESSABLE_ENTITY => "Unprocessable request",
            StatusCode::TOO_MANY_REQUESTS => "Too many requests",
            StatusCode::SERVICE_UNAVAILABLE => "Service unavailable",
            _ => "Internal error",
        }
    }

    /// What the client may read: the error's own message for refusals, nothing for failures.
    fn public_detail(&self) -> Option<String> {
        match self {
            ApiError::Ra(RaError::Store(_) | RaError::Ca(_))
            | ApiError::Store(_)
            | ApiError::DatabaseTimeout(_)
            | ApiError::Unavailable(_)
            | ApiError::Internal(_) => None,
            ApiError::NotFound { detail, .. } => Some(detail.clone()),
            other => Some(other.to_string()),
        }
    }

    /// Seconds for `Retry-After`, for refusals that end by themselves.
    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimitedClient { retry_after_secs }
            | ApiError::Ra(RaError::IinRateLimited {
                retry_after_secs, ..
            }) => Some(*retry_after_secs),
            // A place frees up when one of the address's connections ends.
            ApiError::RateLimitedConnections { .. } => Some(1),
            _ => None,
        }
    }
}

/// The HTTP status of each code. A database that failed or cannot be reached is a temporary
/// condition (503 with Retry-After, never a 500); only a row that cannot be decoded or a failed
/// migration (a bug or corruption, `internal_error`) is a 500. TLS client authentication has no
/// HTTP challenge to send with a 401: the request is understood and refused (403).
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::CsrMalformed
        | ErrorCode::SerialInvalid
        | ErrorCode::RequestMalformed
        | ErrorCode::CmsMalformed => StatusCode::BAD_REQUEST,
        ErrorCode::ConsentTokenMissing
        | ErrorCode::ConsentTokenMalformed
        | ErrorCode::ConsentTokenSignatureInvalid
        | ErrorCode::ConsentTokenUntrustedKey
        | ErrorCode::ConsentTokenAlgorithmNotAllowed
        | ErrorCode::ConsentTokenExpired
        | ErrorCode::ConsentTokenNotYetValid
        | ErrorCode::ConsentTokenLifetimeTooLong
        | ErrorCode::ConsentTokenLifetimeInvalid
        | ErrorCode::ConsentTokenWrongAudience
        | ErrorCode::ConsentTokenWrongIssuer
        | ErrorCode::AccessTokenInvalid
        | ErrorCode::CmsSignatureInvalid
        | ErrorCode::SessionInvalid
        | ErrorCode::ChallengeInvalid
        | ErrorCode::CmsSignerUnknown
        | ErrorCode::ConfirmationMissing => StatusCode::UNAUTHORIZED,
        ErrorCode::ConsentTokenWrongPurpose
        | ErrorCode::NotCertificateHolder
        | ErrorCode::CmsSignerWrongKind
        | ErrorCode::CmsSignerNotHolder
        | ErrorCode::CertificateRevoked
        | ErrorCode::CertificateOnHold
        | ErrorCode::CertificateExpired
        | ErrorCode::ConsentTokenWrongHolder
        | ErrorCode::ClientCertificateRequired
        | ErrorCode::ClientCertificateUntrusted
        | ErrorCode::CsrfInvalid => StatusCode::FORBIDDEN,
        ErrorCode::ApplicationNotFound
        | ErrorCode::CertificateNotFound
        | ErrorCode::CrlNotFound
        | ErrorCode::CaCertificateNotFound
        | ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorCode::ConsentTokenReplayed
        | ErrorCode::KeyReused
        | ErrorCode::KeyBlocked
        | ErrorCode::AlreadyRevoked
        | ErrorCode::NotOnHold
        | ErrorCode::NotRevoked
        | ErrorCode::AlreadyReissued
        | ErrorCode::ApplicationNotPending => StatusCode::CONFLICT,
        ErrorCode::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::IinInvalid
        | ErrorCode::NameInvalid
        | ErrorCode::AgreementNotAccepted
        | ErrorCode::AgreementVersionMismatch
        | ErrorCode::EmailInvalid
        | ErrorCode::LanguageInvalid
        | ErrorCode::StorageTypeInvalid
        | ErrorCode::CsrSignatureInvalid
        | ErrorCode::CsrEmailMismatch
        | ErrorCode::KeyAlgorithmNotAllowed
        | ErrorCode::KeyTooSmall
        | ErrorCode::KeyWeak
        | ErrorCode::KeyEncodingInvalid
        | ErrorCode::GostKeyNotForAuth
        | ErrorCode::GostParameterSetUnknown
        | ErrorCode::GostPointInvalid
        | ErrorCode::CsrSignatureAlgorithmNotAllowed
        | ErrorCode::SameKeyForAuthAndSign
        | ErrorCode::RevocationReasonInvalid
        | ErrorCode::InvalidityDateInvalid
        | ErrorCode::ReasonRequired
        | ErrorCode::CmsAlgorithmNotAllowed => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::RateLimitedIin
        | ErrorCode::RateLimitedClient
        | ErrorCode::RateLimitedConnections => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::ServiceUnavailable
        | ErrorCode::DatabaseUnavailable
        | ErrorCode::DatabaseError
        | ErrorCode::SigningKeyUnavailable
        | ErrorCode::GostUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(self.code())
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Temporary (the database is down): the store logs the outage itself.
            tracing::warn!(code = self.code().as_str(), error = %self, "request failed");
        } else if status.is_server_error() {
            // Full detail stays in the log; the client sees only the code.
            tracing::error!(code = self.code().as_str(), error = %self, "request failed");
        } else {
            tracing::debug!(code = self.code().as_str(), "request refused");
        }
        let code = self.code();
        let body = Problem {
            kind: format!("urn:tamga:problem:{code}"),
            title: self.title(),
            status: status.as_u16(),
            code,
            detail: self.public_detail(),
        };
        let mut response = HttpResponse::build(status);
        response.content_type(PROBLEM_JSON);
        if let Some(secs) = self.retry_after() {
            response.insert_header(("Retry-After", secs.max(1).to_string()));
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(("Retry-After", "5"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let ApiError::MethodNotAllowed { allow } = self {
            response.insert_header((actix_web::http::header::ALLOW, *allow));
        }
        // The connection is given up: its body is not wanted or never came, or it is over its
        // address's cap.
        if matches!(
            self,
            ApiError::BodyTooLarge(_)
                | ApiError::BodyTimeout(_)
                | ApiError::RateLimitedConnections { .. }
        ) {
            response.force_close();
        }
        response.json(body)
    }
}

#[cfg(test)]
mod tests;
