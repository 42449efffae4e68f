//! The error table: every variant of every error type that has a `code()` answers with a code
//! of [`ErrorCode`], and every code has a status, a row in the README's error table (with the
//! same status) and a place in the OpenAPI document.
//!
//! Each `next_*` function is an exhaustive `match` over its error type that names the variant
//! after the one given, in a cycle: a new variant does not compile until it has an arm here,
//! and the walk checks that the cycle passes through every arm it was given.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, HashSet};
use std::mem::discriminant;
use std::path::PathBuf;

use actix_web::ResponseError;

use super::{status_of, ApiError};
use crate::ca::{CaError, SerialError};
use crate::cms::CmsError;
use crate::csr::CsrError;
use crate::digital_id::ConsentError;
use crate::email::EmailError;
use crate::error_code::ErrorCode;
use crate::ra::RaError;
use crate::store::StoreError;

/// Follow a cycle from `first` until it comes back to `first`'s variant; every variant is met
/// once.
fn walk<E>(first: E, next: fn(&E) -> E) -> Vec<E> {
    let start = discriminant(&first);
    let mut seen = HashSet::new();
    let mut all = Vec::new();
    let mut at = first;
    loop {
        assert!(seen.insert(discriminant(&at)), "a variant is met twice");
        let following = next(&at);
        all.push(at);
        if discriminant(&following) == start {
            return all;
        }
        at = following;
    }
}

fn io() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotFound, "gone")
}

fn next_ca(e: &CaError) -> CaError {
    match e {
        CaError::Read { .. } => CaError::Write {
            path: PathBuf::from("x"),
            source: io(),
        },
        CaError::Write { .. } => CaError::Invalid {
            path: PathBuf::from("x"),
            message: "not a key".to_owned(),
        },
        CaError::Invalid { .. } => CaError::AlreadyExists(PathBuf::from("x")),
        CaError::AlreadyExists(_) => CaError::Incomplete {
            dir: PathBuf::from("x"),
            missing: "root.pem".to_owned(),
        },
        CaError::Incomplete { .. } => CaError::Crypto(openssl::error::ErrorStack::get()),
        CaError::Crypto(_) => CaError::Der(der::Error::from(der::ErrorKind::Failed)),
        CaError::Der(_) => CaError::Time,
        CaError::Time => CaError::MissingSubjectKeyId,
        CaError::MissingSubjectKeyId => CaError::NameTooLong,
        CaError::NameTooLong => CaError::NotReserved("01".to_owned()),
        CaError::NotReserved(_) => CaError::TbsMismatch("01".to_owned()),
        CaError::TbsMismatch(_) => CaError::SignatureCheck("01".to_owned()),
        CaError::SignatureCheck(_) => CaError::KeyUnavailable("token gone".to_owned()),
        CaError::KeyUnavailable(_) => CaError::Pkcs11("wrong PIN".to_owned()),
        CaError::Pkcs11(_) => CaError::Gost("not a GOST SIGN key".to_owned()),
        CaError::Gost(_) => first_ca(),
    }
}

fn first_ca() -> CaError {
    CaError::Read {
        path: PathBuf::from("x"),
        source: io(),
    }
}

fn next_store(e: &StoreError) -> StoreError {
    match e {
        StoreError::Connect(_) => StoreError::Pool(r2d2_error()),
        StoreError::Pool(_) => StoreError::Migration("failed".to_owned()),
        StoreError::Migration(_) => StoreError::sample_query_failure(),
        StoreError::Query(_) => StoreError::Corrupt {
            table: "certificates",
            message: "bad".to_owned(),
        },
        StoreError::Corrupt { .. } => StoreError::BatchLost,
        StoreError::BatchLost => {
            StoreError::Batch(std::sync::Arc::new(StoreError::sample_query_failure()))
        }
        StoreError::Batch(_) => StoreError::Connect("refused".to_owned()),
    }
}

/// An r2d2 timeout, as a pool that stays empty gives it.
fn r2d2_error() -> r2d2::Error {
    #[derive(Debug)]
    struct Never;
    impl r2d2::ManageConnection for Never {
        type Connection = ();
        type Error = std::io::Error;
        fn connect(&self) -> Result<(), std::io::Error> {
            Err(io())
        }
        fn is_valid(&self, _: &mut ()) -> Result<(), std::io::Error> {
            Ok(())
        }
        fn has_broken(&self, _: &mut ()) -> bool {
            false
        }
    }
    let pool = r2d2::Pool::builder()
        .connection_timeout(std::time::Duration::from_millis(1))
        .build_unchecked(Never);
    pool.get().err().unwrap()
}

/// Every store failure, with the query failures whose code differs (a lost connection is
/// `database_unavailable`, another query error `database_error`).
fn every_store_error() -> Vec<StoreError> {
    let mut all = walk(StoreError::Connect("refused".to_owned()), next_store);
    all.push(StoreError::sample_broken_transaction());
    all
}

fn next_consent(e: &ConsentError) -> ConsentError {
    let now = chrono::DateTime::UNIX_EPOCH;
    match e {
        ConsentError::Missing => ConsentError::Malformed("x".to_owned()),
        ConsentError::Malformed(_) => ConsentError::AlgorithmNotAllowed("HS256".to_owned()),
        ConsentError::AlgorithmNotAllowed(_) => ConsentError::UntrustedKey(None),
        ConsentError::UntrustedKey(_) => ConsentError::SignatureInvalid,
        ConsentError::SignatureInvalid => ConsentError::WrongIssuer("x".to_owned()),
        ConsentError::WrongIssuer(_) => ConsentError::WrongAudience,
        ConsentError::WrongAudience => ConsentError::Expired(now),
        ConsentError::Expired(_) => ConsentError::NotYetValid(now),
        ConsentError::NotYetValid(_) => ConsentError::LifetimeTooLong(901),
        ConsentError::LifetimeTooLong(_) => ConsentError::LifetimeInvalid("exp before iat"),
        ConsentError::LifetimeInvalid(_) => ConsentError::WrongPurpose {
            expected: "eds_issuance",
            found: "x".to_owned(),
        },
        ConsentError::WrongPurpose { .. } => ConsentError::NameInvalid {
            claim: "name",
            code_point: 0x200B,
            what: "an invisible character",
        },
        ConsentError::NameInvalid { .. } => ConsentError::IinInvalid("x".to_owned()),
        ConsentError::IinInvalid(_) => ConsentError::Missing,
    }
}

fn first_csr() -> CsrError {
    CsrError::Malformed("x".to_owned())
}

fn next_csr(e: &CsrError) -> CsrError {
    match e {
        CsrError::Malformed(_) => CsrError::SignatureInvalid,
        CsrError::SignatureInvalid => CsrError::SignatureAlgorithmNotAllowed("x".to_owned()),
        CsrError::SignatureAlgorithmNotAllowed(_) => {
            CsrError::KeyAlgorithmNotAllowed("x".to_owned())
        }
        CsrError::KeyAlgorithmNotAllowed(_) => CsrError::KeyTooSmall("x".to_owned()),
        CsrError::KeyTooSmall(_) => CsrError::KeyWeak("x".to_owned()),
        CsrError::KeyWeak(_) => CsrError::KeyEncodingInvalid("x".to_owned()),
        CsrError::KeyEncodingInvalid(_) => first_csr(),
    }
}

fn next_ra(e: &RaError) -> RaError {
    match e {
        RaError::AgreementNotAccepted => RaError::AgreementVersionMismatch {
            current: "2".to_owned(),
            found: "1".to_owned(),
        },
        RaError::AgreementVersionMismatch { .. } => RaError::EmailInvalid(EmailError::MissingAt),
        RaError::EmailInvalid(_) => RaError::LanguageInvalid,
        RaError::LanguageInvalid => RaError::StorageTypeInvalid,
        RaError::StorageTypeInvalid => RaError::Csr(first_csr()),
        RaError::Csr(_) => RaError::CsrEmailMismatch,
        RaError::CsrEmailMismatch => RaError::KeyReused,
        RaError::KeyReused => RaError::KeyBlocked,
        RaError::KeyBlocked => RaError::SameKeyForAuthAndSign,
        RaError::SameKeyForAuthAndSign => RaError::ConsentReplayed,
        RaError::ConsentReplayed => RaError::ApplicationNotFound,
        RaError::ApplicationNotFound => RaError::AccessTokenInvalid,
        RaError::AccessTokenInvalid => RaError::SerialInvalid(SerialError("x".to_owned())),
        RaError::SerialInvalid(_) => RaError::RevocationReasonInvalid,
        RaError::RevocationReasonInvalid => RaError::InvalidityDateInvalid("x".to_owned()),
        RaError::InvalidityDateInvalid(_) => RaError::CertificateNotFound("01".to_owned()),
        RaError::CertificateNotFound(_) => RaError::NotCertificateHolder("01".to_owned()),
        RaError::NotCertificateHolder(_) => RaError::AlreadyRevoked {
            serial: "01".to_owned(),
            reason: "keyCompromise".to_owned(),
        },
        RaError::AlreadyRevoked { .. } => RaError::NotPendingReview {
            id: "A".to_owned(),
            status: "issued".to_owned(),
        },
        RaError::NotPendingReview { .. } => RaError::ReasonRequired,
        RaError::ReasonRequired => RaError::NotOnHold("01".to_owned()),
        RaError::NotOnHold(_) => RaError::NotRevoked("01".to_owned()),
        RaError::NotRevoked(_) => RaError::IinRateLimited {
            what: "applications",
            limit: 3,
            retry_after_secs: 60,
        },
        RaError::IinRateLimited { .. } => RaError::SessionInvalid,
        RaError::SessionInvalid => RaError::EnrollmentSessionInvalid,
        RaError::EnrollmentSessionInvalid => RaError::ChallengeInvalid,
        RaError::ChallengeInvalid => RaError::Cms(first_cms()),
        RaError::Cms(_) => RaError::CmsSignerUnknown,
        RaError::CmsSignerUnknown => RaError::CmsSignerWrongKind {
            expected: "AUTH",
            found: "SIGN",
        },
        RaError::CmsSignerWrongKind { .. } => RaError::CmsSignerNotHolder,
        RaError::CmsSignerNotHolder => RaError::CertificateRevoked {
            serial: "01".to_owned(),
            reason: "superseded".to_owned(),
        },
        RaError::CertificateRevoked { .. } => RaError::CertificateOnHold("01".to_owned()),
        RaError::CertificateOnHold(_) => RaError::CertificateExpired("01".to_owned()),
        RaError::CertificateExpired(_) => RaError::AlreadyReissued("A".to_owned()),
        RaError::AlreadyReissued(_) => RaError::ConsentWrongHolder,
        RaError::ConsentWrongHolder => RaError::Consent(ConsentError::Missing),
        RaError::Consent(_) => RaError::Ca(first_ca()),
        RaError::Ca(_) => RaError::Store(StoreError::Connect("refused".to_owned())),
        RaError::Store(_) => RaError::AgreementNotAccepted,
    }
}

fn first_cms() -> CmsError {
    CmsError::Malformed("x".to_owned())
}

fn next_cms(e: &CmsError) -> CmsError {
    match e {
        CmsError::Malformed(_) => CmsError::TooLarge,
        CmsError::TooLarge => CmsError::AlgorithmNotAllowed("sha1".to_owned()),
        CmsError::AlgorithmNotAllowed(_) => CmsError::SignatureInvalid,
        CmsError::SignatureInvalid => first_cms(),
    }
}

/// Every RA error: each variant once, then every CSR, CMS, CA and store failure inside it.
fn every_ra_error() -> Vec<RaError> {
    let mut all = walk(RaError::AgreementNotAccepted, next_ra);
    all.extend(walk(first_csr(), next_csr).into_iter().map(RaError::Csr));
    all.extend(walk(first_cms(), next_cms).into_iter().map(RaError::Cms));
    all.extend(walk(first_ca(), next_ca).into_iter().map(RaError::Ca));
    all.extend(every_store_error().into_iter().map(RaError::Store));
    all
}

fn next_api(e: &ApiError) -> ApiError {
    match e {
        ApiError::Consent(_) => ApiError::Ra(RaError::Csr(first_csr())),
        ApiError::Ra(_) => ApiError::BodyTooLarge(65536),
        ApiError::BodyTooLarge(_) => ApiError::BodyTimeout(10_000),
        ApiError::BodyTimeout(_) => ApiError::RateLimitedConnections { limit: 64 },
        ApiError::RateLimitedConnections { .. } => ApiError::RequestMalformed("x".to_owned()),
        ApiError::RequestMalformed(_) => ApiError::NotFound {
            code: ErrorCode::NotFound,
            detail: "x".to_owned(),
        },
        ApiError::NotFound { .. } => ApiError::ClientCertificateRequired,
        ApiError::ClientCertificateRequired => ApiError::ClientCertificateUntrusted("x".to_owned()),
        ApiError::ClientCertificateUntrusted(_) => ApiError::RateLimitedClient {
            retry_after_secs: 1,
        },
        ApiError::RateLimitedClient { .. } => {
            ApiError::Store(StoreError::Connect("refused".to_owned()))
        }
        ApiError::Store(_) => ApiError::DatabaseTimeout(5000),
        ApiError::DatabaseTimeout(_) => ApiError::MethodNotAllowed { allow: "GET, HEAD" },
        ApiError::MethodNotAllowed { .. } => ApiError::Unavailable("x".to_owned()),
        ApiError::Unavailable(_) => ApiError::ConfirmationMissing,
        ApiError::ConfirmationMissing => ApiError::CsrfInvalid("x"),
        ApiError::CsrfInvalid(_) => ApiError::Internal("x".to_owned()),
        ApiError::Internal(_) => ApiError::Consent(ConsentError::Missing),
    }
}

/// Every API error: each variant once, every refusal of the modules inside, and the
/// not-found codes the routes give.
fn every_api_error() -> Vec<ApiError> {
    let mut all = walk(ApiError::Consent(ConsentError::Missing), next_api);
    all.extend(
        walk(ConsentError::Missing, next_consent)
            .into_iter()
            .map(ApiError::Consent),
    );
    all.extend(every_ra_error().into_iter().map(ApiError::Ra));
    all.extend(every_store_error().into_iter().map(ApiError::Store));
    for code in [ErrorCode::CrlNotFound, ErrorCode::CaCertificateNotFound] {
        all.push(ApiError::NotFound {
            code,
            detail: "x".to_owned(),
        });
    }
    all
}

/// The README's error table: code → status.
fn readme_table() -> BTreeMap<String, u16> {
    let readme = include_str!("../../../README.md");
    let (_, table) = readme
        .split_once("| Code | Status | When |\n")
        .expect("the README's error table");
    table
        .lines()
        .take_while(|line| line.starts_with('|'))
        .filter_map(|line| {
            let mut cells = line.strip_prefix("| `")?.splitn(2, "` | ");
            let code = cells.next()?;
            let status = cells.next()?.split(' ').next()?.parse().ok()?;
            Some((code.to_owned(), status))
        })
        .collect()
}

/// Every code the OpenAPI document names in a response's description, with that response's
/// status; and the text of the document's other descriptions.
fn openapi_mentions() -> (Vec<(ErrorCode, u16)>, String, Vec<String>) {
    let doc =
        serde_json::to_value(<crate::api::openapi::ApiDoc as utoipa::OpenApi>::openapi()).unwrap();
    let schema: Vec<String> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let mut by_status = Vec::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            let Some(responses) = operation["responses"].as_object() else {
                continue;
            };
            for (status, response) in responses {
                let text = response["description"].as_str().unwrap_or_default();
                for (i, quoted) in text.split('`').enumerate() {
                    if let (1, Some(code)) = (i % 2, ErrorCode::parse(quoted)) {
                        by_status.push((code, status.parse().unwrap()));
                    }
                }
            }
        }
    }
    let info = doc["info"]["description"].as_str().unwrap().to_owned();
    (by_status, info, schema)
}

#[test]
fn every_error_has_a_code_in_the_table_the_readme_and_the_openapi_document() {
    let readme = readme_table();
    let (answered, info, schema) = openapi_mentions();
    let mut codes_met = HashSet::new();
    for e in every_api_error() {
        let code = e.code();
        codes_met.insert(code);
        // The response carries the code's status.
        assert_eq!(e.status_code(), status_of(code), "{e:?}");
        assert_eq!(ErrorCode::parse(code.as_str()), Some(code), "{e:?}");
    }
    for code in ErrorCode::ALL {
        let text = code.as_str();
        assert!(
            codes_met.contains(code),
            "{text} is in the table but no error answers with it"
        );
        let status = status_of(*code).as_u16();
        assert_eq!(
            readme.get(text),
            Some(&status),
            "README's error table: `{text}` with {status}"
        );
        assert!(
            schema.iter().any(|s| s == text),
            "{text} not in the OpenAPI ErrorCode schema"
        );
        assert!(
            answered.iter().any(|(c, _)| c == code) || info.contains(&format!("`{text}`")),
            "{text} is named by no response of the OpenAPI document"
        );
    }
    // Where a response names a code, it is under that code's status.
    for (code, status) in answered {
        assert_eq!(
            status,
            status_of(code).as_u16(),
            "OpenAPI names {code} under {status}"
        );
    }
    // Nothing in the README's table that the code does not know.
    for text in readme.keys() {
        assert!(
            ErrorCode::parse(text).is_some(),
            "README lists unknown `{text}`"
        );
    }
}
