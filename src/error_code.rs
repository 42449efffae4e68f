//! The one table of error codes: every refusal the product gives, on the wire, in the CLI's
//! messages and in the README, is one of these.
//!
//! Owns: [`ErrorCode`], its stable `snake_case` text and nothing else. Every module's error type
//! has a `code()` that returns one of these; `api::problem` maps each to an HTTP status (one
//! exhaustive match, so a new code cannot go without one). Must never: import another module of
//! the crate, or change the text of a code that has shipped (clients match on it).

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Writes the enum, its text and the list of every code from one table, so the three cannot
/// drift apart.
macro_rules! error_codes {
    ($($variant:ident = $text:tt,)*) => {
        /// Every error code the product answers with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[allow(missing_docs)]
        pub enum ErrorCode {
            $(#[serde(rename = $text)] $variant,)*
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable wire text, e.g. `key_weak`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                }
            }
        }
    };
}

error_codes! {
    ConsentTokenMissing = "consent_token_missing",
    ConsentTokenMalformed = "consent_token_malformed",
    ConsentTokenSignatureInvalid = "consent_token_signature_invalid",
    ConsentTokenUntrustedKey = "consent_token_untrusted_key",
    ConsentTokenAlgorithmNotAllowed = "consent_token_algorithm_not_allowed",
    ConsentTokenExpired = "consent_token_expired",
    ConsentTokenNotYetValid = "consent_token_not_yet_valid",
    ConsentTokenLifetimeTooLong = "consent_token_lifetime_too_long",
    ConsentTokenLifetimeInvalid = "consent_token_lifetime_invalid",
    ConsentTokenWrongAudience = "consent_token_wrong_audience",
    ConsentTokenWrongIssuer = "consent_token_wrong_issuer",
    ConsentTokenReplayed = "consent_token_replayed",
    ConsentTokenWrongPurpose = "consent_token_wrong_purpose",
    IinInvalid = "iin_invalid",
    NameInvalid = "name_invalid",
    AgreementNotAccepted = "agreement_not_accepted",
    AgreementVersionMismatch = "agreement_version_mismatch",
    EmailInvalid = "email_invalid",
    LanguageInvalid = "language_invalid",
    StorageTypeInvalid = "storage_type_invalid",
    CsrMalformed = "csr_malformed",
    CsrSignatureInvalid = "csr_signature_invalid",
    CsrEmailMismatch = "csr_email_mismatch",
    KeyAlgorithmNotAllowed = "key_algorithm_not_allowed",
    KeyTooSmall = "key_too_small",
    KeyWeak = "key_weak",
    KeyEncodingInvalid = "key_encoding_invalid",
    GostKeyNotForAuth = "gost_key_not_for_auth",
    GostParameterSetUnknown = "gost_parameter_set_unknown",
    GostPointInvalid = "gost_point_invalid",
    GostUnavailable = "gost_unavailable",
    CsrSignatureAlgorithmNotAllowed = "csr_signature_algorithm_not_allowed",
    KeyReused = "key_reused",
    KeyBlocked = "key_blocked",
    SameKeyForAuthAndSign = "same_key_for_auth_and_sign",
    BodyTooLarge = "body_too_large",
    RequestMalformed = "request_malformed",
    CmsMalformed = "cms_malformed",
    CmsAlgorithmNotAllowed = "cms_algorithm_not_allowed",
    CmsSignatureInvalid = "cms_signature_invalid",
    ApplicationNotFound = "application_not_found",
    AccessTokenInvalid = "access_token_invalid",
    SerialInvalid = "serial_invalid",
    RevocationReasonInvalid = "revocation_reason_invalid",
    InvalidityDateInvalid = "invalidity_date_invalid",
    CertificateNotFound = "certificate_not_found",
    NotCertificateHolder = "not_certificate_holder",
    AlreadyRevoked = "already_revoked",
    NotOnHold = "not_on_hold",
    NotRevoked = "not_revoked",
    SessionInvalid = "session_invalid",
    ChallengeInvalid = "challenge_invalid",
    CmsSignerUnknown = "cms_signer_unknown",
    CmsSignerWrongKind = "cms_signer_wrong_kind",
    CmsSignerNotHolder = "cms_signer_not_holder",
    CertificateRevoked = "certificate_revoked",
    CertificateOnHold = "certificate_on_hold",
    CertificateExpired = "certificate_expired",
    ConfirmationMissing = "confirmation_missing",
    AlreadyReissued = "already_reissued",
    ConsentTokenWrongHolder = "consent_token_wrong_holder",
    CrlNotFound = "crl_not_found",
    ApplicationNotPending = "application_not_pending",
    ReasonRequired = "reason_required",
    CaCertificateNotFound = "ca_certificate_not_found",
    NotFound = "not_found",
    ClientCertificateRequired = "client_certificate_required",
    ClientCertificateUntrusted = "client_certificate_untrusted",
    CsrfInvalid = "csrf_invalid",
    RateLimitedIin = "rate_limited_iin",
    RateLimitedClient = "rate_limited_client",
    RateLimitedConnections = "rate_limited_connections",
    BodyTimeout = "body_timeout",
    MethodNotAllowed = "method_not_allowed",
    ServiceUnavailable = "service_unavailable",
    DatabaseUnavailable = "database_unavailable",
    DatabaseError = "database_error",
    SigningKeyUnavailable = "signing_key_unavailable",
    InternalError = "internal_error",
}

impl ErrorCode {
    /// Look a wire code up; `None` for a code this build does not know.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::ErrorCode;

    /// The serde text (what the wire and the OpenAPI schema carry) is the table's text, and
    /// every code reads back as itself.
    #[test]
    fn the_text_of_every_code_reads_back() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(code.as_str().to_owned())
            );
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
            assert!(seen.insert(code.as_str()), "{code} twice");
        }
        assert_eq!(ErrorCode::parse("no_such_code"), None);
    }
}
