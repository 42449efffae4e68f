//! The registration authority: applications for the citizen's pair of certificates.
//!
//! Owns: the application form's rules ([`form`]: both CSRs valid by [`crate::csr`], different
//! keys, an e-mail SAN only if equal to the form's), the single use of consent tokens
//! (recorded in the transaction that creates the application, [`intake`]), the per-IIN limits
//! on applications and holder revocations ([`limits`]), routing to automatic issuance or
//! operator review ([`review`], with the reasons the operator sees: Digital ID's checks, names
//! mixing scripts), issuance and its recovery ([`issuance`]: it builds the
//! [`crate::ca::ApprovedRequest`] the CA signs and stores what the CA returns), revocation
//! ([`revoke`]), the holder's cabinet and re-issue ([`cabinet`]), what a re-issue does to
//! the pair it replaces ([`lineage`]), and the sessions of the citizen's pages, which hold a
//! consent token from Digital ID's hand-over until the application is submitted
//! ([`enrollment`]). [`RaError`] is the one error of the RA. Must never:
//! sign anything itself, trust a CSR's subject or requested extensions (only an e-mail SAN
//! equal to the form's e-mail), leave half an application behind, or leave one lineage two
//! valid pairs.

mod cabinet;
mod enrollment;
mod form;
mod intake;
mod invalidity;
mod issuance;
mod limits;
mod lineage;
mod review;
mod revoke;

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::email::{EmailAddress, EmailError};
pub use cabinet::{CabinetHolder, Challenge, HolderCertificate, Reissue, Session};
pub use enrollment::{EnrollmentView, LiveEnrollment, OpenedEnrollment};
pub use form::ApplicationForm;
pub use intake::{ApplicationView, Submitted};
pub use invalidity::{InvalidityDate, RevocationDefect};
pub use limits::IinLimits;
pub use revoke::Revoker;

use crate::ca::{CaError, Issuer, Issuers};
use crate::clock::Clock;
use crate::csr::CsrError;
use crate::error_code::ErrorCode;
use crate::notify::EmailEvent;
use crate::store::{Application, OutboxMessage, Store, StoreError};

/// Why the RA refused or failed a request. Each refusal has a stable wire code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RaError {
    /// `agreement_accepted` is not true.
    #[error("the user agreement was not accepted")]
    AgreementNotAccepted,
    /// The accepted agreement is not the current one.
    #[error("agreement version {found:?} is not the current version {current:?}")]
    AgreementVersionMismatch {
        /// Current version.
        current: String,
        /// Submitted version.
        found: String,
    },
    /// The e-mail address is not acceptable ([`email`]).
    #[error("the e-mail address is invalid: {0}")]
    EmailInvalid(#[from] EmailError),
    /// The language is not kk, ru or en.
    #[error("language must be kk, ru or en")]
    LanguageInvalid,
    /// Unknown key storage type.
    #[error("storage must be one of pkcs12, id_card, kaztoken, etoken, jacarta, akey")]
    StorageTypeInvalid,
    /// A CSR or its key is refused ([`crate::csr`]).
    #[error(transparent)]
    Csr(#[from] CsrError),
    /// The CSR asks for an e-mail that differs from the form's.
    #[error("the certificate request's e-mail address differs from the form's")]
    CsrEmailMismatch,
    /// The key is already certified.
    #[error("this public key is already certified; generate a new key pair")]
    KeyReused,
    /// The key was revoked for compromise.
    #[error("this public key is blocked (revoked for key compromise)")]
    KeyBlocked,
    /// AUTH and SIGN requests carry the same key.
    #[error("the AUTH and SIGN requests must carry different keys")]
    SameKeyForAuthAndSign,
    /// The consent token was used before.
    #[error("this consent token was already used")]
    ConsentReplayed,
    /// No such application.
    #[error("application not found")]
    ApplicationNotFound,
    /// The access token does not open this application.
    #[error("the access token is not valid for this application")]
    AccessTokenInvalid,
    /// The serial number cannot be read.
    #[error(transparent)]
    SerialInvalid(#[from] crate::ca::SerialError),
    /// The revocation reason is not one Tamga accepts.
    #[error("reason must be one of unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn")]
    RevocationReasonInvalid,
    /// The invalidity date is unreadable, in the future, before the certificate's notBefore,
    /// or outside what a CRL can carry; the text says which.
    #[error("invalidity_date: {0}")]
    InvalidityDateInvalid(String),
    /// No issued certificate has this serial.
    #[error("no certificate with serial {0}")]
    CertificateNotFound(String),
    /// The consent token's holder does not hold this certificate.
    #[error("certificate {0} does not belong to the consent token's holder")]
    NotCertificateHolder(String),
    /// The certificate is already revoked.
    #[error("certificate {serial} is already revoked ({reason})")]
    AlreadyRevoked {
        /// The certificate.
        serial: String,
        /// Its reason.
        reason: String,
    },
    /// Approve or reject an application that is not waiting for review.
    #[error("application {id} is {status}, not pending_review")]
    NotPendingReview {
        /// The application.
        id: String,
        /// Its status.
        status: String,
    },
    /// A rejection needs a reason.
    #[error("a rejection needs a reason of 1-1000 characters")]
    ReasonRequired,
    /// Release of a certificate that is not on hold.
    #[error("certificate {0} is not on hold (certificateHold)")]
    NotOnHold(String),
    /// A revocation to correct, of a certificate that is not revoked.
    #[error("certificate {0} is not revoked")]
    NotRevoked(String),
    /// The holder's IIN reached a per-day limit (`[limits]`).
    #[error("this IIN has reached its limit of {limit} {what} in 24 hours; retry in {retry_after_secs} s")]
    IinRateLimited {
        /// `applications` or `revocations`.
        what: &'static str,
        /// The limit.
        limit: u32,
        /// Seconds until the oldest counted one leaves the 24-hour window.
        retry_after_secs: u64,
    },
    /// No live cabinet session for the bearer token (none given, unknown, or ended).
    #[error("no cabinet session: log in again (sign a new challenge with the AUTH key)")]
    SessionInvalid,
    /// No enrollment session for the cookie of the citizen's pages (none, unknown, or pruned).
    #[error("no enrollment session: start again from Digital ID")]
    EnrollmentSessionInvalid,
    /// The signed challenge is not one this CA gave out, has expired, or was used.
    #[error("the challenge is unknown, expired or already used: ask for a new one")]
    ChallengeInvalid,
    /// A CMS signature is malformed, uses a refused algorithm, or does not verify.
    #[error(transparent)]
    Cms(#[from] crate::cms::CmsError),
    /// The CMS signer is no certificate this CA issued.
    #[error("the signer's certificate was not issued by this CA")]
    CmsSignerUnknown,
    /// The CMS was signed with the other key of the pair.
    #[error("this must be signed with the {expected} key, not the {found} key")]
    CmsSignerWrongKind {
        /// The key the operation needs (`AUTH` or `SIGN`).
        expected: &'static str,
        /// The key that signed.
        found: &'static str,
    },
    /// The confirmation was signed by a SIGN key of another pair than the one that logged in.
    #[error(
        "the confirmation is signed by a certificate of another pair than the one that logged in"
    )]
    CmsSignerNotHolder,
    /// The certificate is revoked.
    #[error("certificate {serial} is revoked ({reason})")]
    CertificateRevoked {
        /// The certificate.
        serial: String,
        /// Its reason.
        reason: String,
    },
    /// The certificate is on hold.
    #[error("certificate {0} is on hold (certificateHold)")]
    CertificateOnHold(String),
    /// The certificate is not valid now.
    #[error("certificate {0} is not valid now (expired or not yet valid); new keys need the full Digital ID journey")]
    CertificateExpired(String),
    /// The pair was already replaced by another re-issue.
    #[error("this pair was already re-issued ({0})")]
    AlreadyReissued(String),
    /// The re-issue's consent token was refused.
    #[error(transparent)]
    Consent(#[from] crate::digital_id::ConsentError),
    /// The re-issue's consent token is for another IIN than the pair's holder.
    #[error("the consent token is for another person than the holder of the pair")]
    ConsentWrongHolder,
    /// The CA failed to build or sign.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RaError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            RaError::AgreementNotAccepted => ErrorCode::AgreementNotAccepted,
            RaError::AgreementVersionMismatch { .. } => ErrorCode::AgreementVersionMismatch,
            RaError::EmailInvalid(_) => ErrorCode::EmailInvalid,
            RaError::LanguageInvalid => ErrorCode::LanguageInvalid,
            RaError::StorageTypeInvalid => ErrorCode::StorageTypeInvalid,
            RaError::Csr(e) => e.code(),
            RaError::CsrEmailMismatch => ErrorCode::CsrEmailMismatch,
            RaError::KeyReused => ErrorCode::KeyReused,
            RaError::KeyBlocked => ErrorCode::KeyBlocked,
            RaError::SameKeyForAuthAndSign => ErrorCode::SameKeyForAuthAndSign,
            RaError::ConsentReplayed => ErrorCode::ConsentTokenReplayed,
            RaError::ApplicationNotFound => ErrorCode::ApplicationNotFound,
            RaError::AccessTokenInvalid => ErrorCode::AccessTokenInvalid,
            RaError::SerialInvalid(_) => ErrorCode::SerialInvalid,
            RaError::RevocationReasonInvalid => ErrorCode::RevocationReasonInvalid,
            RaError::InvalidityDateInvalid(_) => ErrorCode::InvalidityDateInvalid,
            RaError::CertificateNotFound(_) => ErrorCode::CertificateNotFound,
            RaError::NotCertificateHolder(_) => ErrorCode::NotCertificateHolder,
            RaError::AlreadyRevoked { .. } => ErrorCode::AlreadyRevoked,
            RaError::NotOnHold(_) => ErrorCode::NotOnHold,
            RaError::NotRevoked(_) => ErrorCode::NotRevoked,
            RaError::NotPendingReview { .. } => ErrorCode::ApplicationNotPending,
            RaError::ReasonRequired => ErrorCode::ReasonRequired,
            RaError::IinRateLimited { .. } => ErrorCode::RateLimitedIin,
            RaError::SessionInvalid | RaError::EnrollmentSessionInvalid => {
                ErrorCode::SessionInvalid
            }
            RaError::ChallengeInvalid => ErrorCode::ChallengeInvalid,
            RaError::Cms(e) => e.code(),
            RaError::CmsSignerUnknown => ErrorCode::CmsSignerUnknown,
            RaError::CmsSignerWrongKind { .. } => ErrorCode::CmsSignerWrongKind,
            RaError::CmsSignerNotHolder => ErrorCode::CmsSignerNotHolder,
            RaError::CertificateRevoked { .. } => ErrorCode::CertificateRevoked,
            RaError::CertificateOnHold(_) => ErrorCode::CertificateOnHold,
            RaError::CertificateExpired(_) => ErrorCode::CertificateExpired,
            RaError::AlreadyReissued(_) => ErrorCode::AlreadyReissued,
            RaError::ConsentWrongHolder => ErrorCode::ConsentTokenWrongHolder,
            RaError::Consent(e) => e.code(),
            RaError::Ca(CaError::KeyUnavailable(_)) => ErrorCode::SigningKeyUnavailable,
            RaError::Ca(_) => ErrorCode::InternalError,
            RaError::Store(e) => e.code(),
        }
    }
}

/// The RA service.
#[derive(Debug, Clone)]
pub struct Registrar {
    store: Store,
    /// Every issuing CA; which one certifies a key follows from its type
    /// ([`Issuers::for_subject_key`]).
    issuers: Arc<Issuers>,
    clock: Arc<dyn Clock>,
    agreement_version: String,
    limits: IinLimits,
}

fn hash_token(token: &str) -> Vec<u8> {
    openssl::sha::sha256(token.as_bytes()).to_vec()
}

fn new_access_token() -> Result<String, RaError> {
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes).map_err(CaError::from)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

impl Registrar {
    /// The RA over `store`, issuing through `issuer` alone (see [`Registrar::with_issuers`]).
    pub fn new(
        store: Store,
        issuer: Arc<Issuer>,
        clock: Arc<dyn Clock>,
        agreement_version: &str,
    ) -> Self {
        Registrar {
            store,
            issuers: Arc::new(Issuers::single(issuer)),
            clock,
            agreement_version: agreement_version.to_owned(),
            limits: IinLimits::default(),
        }
    }

    /// The same RA issuing through every issuer of `issuers`, each certificate by the one its
    /// key calls for.
    pub fn with_issuers(mut self, issuers: Arc<Issuers>) -> Self {
        self.issuers = issuers;
        self
    }

    /// `[ca]`'s issuing CA: its key is checked before an application is taken, and the links
    /// of messages start at its `public_url`.
    fn first_issuer(&self) -> &Arc<Issuer> {
        self.issuers.first()
    }

    /// The issuing CA that certifies the key of `csr`. A GOST key without a GOST issuer
    /// loaded here is refused `gost_unavailable` (no GOST issuer configured, or not loaded
    /// without the engine); an RSA or EC key without an RSA or EC issuer (a configuration
    /// `config check` refuses: every issuing CA GOST) is an internal error.
    fn issuer_for(&self, csr: &crate::csr::ValidatedCsr) -> Result<&Arc<Issuer>, RaError> {
        let key = csr.key_type();
        self.issuers.for_subject_key(key).ok_or_else(|| {
            if key.gost_size().is_some() {
                RaError::Csr(CsrError::GostUnavailable)
            } else {
                RaError::Ca(CaError::Invalid {
                    path: std::path::PathBuf::from("[ca]"),
                    message: "no issuing CA for RSA or EC keys is loaded".to_owned(),
                })
            }
        })
    }

    /// Both requests of a checked form have an issuer here whose key can sign now (checked
    /// before anything is written: a token that is away refuses the application,
    /// `signing_key_unavailable`, rather than leave it approved and unsigned).
    fn issuers_for(&self, form: &form::CheckedForm) -> Result<(), RaError> {
        for csr in [&form.auth, &form.sign] {
            self.issuer_for(csr)?.key_ready()?;
        }
        Ok(())
    }

    /// The same RA with per-IIN limits.
    pub fn with_iin_limits(mut self, limits: IinLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// Queue an e-mail about `app` in the current transaction (only if it gave an address).
fn queue_email(
    tx: &mut crate::store::Tx<'_>,
    app: &Application,
    event: EmailEvent,
    payload: serde_json::Value,
    at: chrono::NaiveDateTime,
) -> Result<(), StoreError> {
    let Some(email) = &app.email else {
        return Ok(());
    };
    tx.enqueue_message(&OutboxMessage::pending(
        event.as_str(),
        email,
        &app.language,
        payload.to_string(),
        at,
    ))
}

#[cfg(test)]
mod tests;
