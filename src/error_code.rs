//! The one table of error codes: every refusal the product gives, on the wire, in the CLI's
//! messages and in the README, is one of these.
//!
//! Owns: [`ErrorCode`], its stable `snake_case` text and nothing else. Every module's error type
//! has a `code()` that returns one of these; `api::problem` maps each to an HTTP status.
//! Must never: import another module of the crate.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error code the API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ErrorCode {
    ConsentTokenMissing,
    ConsentTokenMalformed,
    ConsentTokenSignatureInvalid,
    ConsentTokenUntrustedKey,
    ConsentTokenAlgorithmNotAllowed,
    ConsentTokenExpired,
    ConsentTokenNotYetValid,
    ConsentTokenLifetimeTooLong,
    ConsentTokenLifetimeInvalid,
    ConsentTokenWrongAudience,
    ConsentTokenWrongIssuer,
    ConsentTokenReplayed,
    ConsentTokenWrongPurpose,
    IinInvalid,
    NameInvalid,
    AgreementNotAccepted,
    AgreementVersionMismatch,
    EmailInvalid,
    LanguageInvalid,
    StorageTypeInvalid,
    CsrMalformed,
    CsrSignatureInvalid,
    CsrEmailMismatch,
    KeyAlgorithmNotAllowed,
    KeyTooSmall,
    KeyWeak,
    KeyEncodingInvalid,
    CsrSignatureAlgorithmNotAllowed,
    KeyReused,
    KeyBlocked,
    SameKeyForAuthAndSign,
    BodyTooLarge,
    RequestMalformed,
    ApplicationNotFound,
    AccessTokenInvalid,
    SerialInvalid,
    RevocationReasonInvalid,
    InvalidityDateInvalid,
    CertificateNotFound,
    NotCertificateHolder,
    AlreadyRevoked,
    NotOnHold,
    NotRevoked,
    CrlNotFound,
    ApplicationNotPending,
    ReasonRequired,
    CaCertificateNotFound,
    NotFound,
    ClientCertificateRequired,
    ClientCertificateUntrusted,
    RateLimitedIin,
    RateLimitedClient,
    RateLimitedConnections,
    BodyTimeout,
    MethodNotAllowed,
    ServiceUnavailable,
    DatabaseUnavailable,
    DatabaseError,
    InternalError,
}

impl ErrorCode {
    /// Look a wire code up.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        serde_json::from_value(serde_json::Value::String(code.to_owned())).ok()
    }
}
