//! The registration authority: applications for the citizen's pair of certificates.
//!
//! Owns: the application form's rules, CSR policy ([`csr`]), the single use of consent tokens
//! (recorded in the transaction that creates the application), the per-IIN limits on
//! applications and holder revocations (counted in the transaction they limit, so every
//! instance on one database enforces the same bound), routing to automatic issuance or
//! operator review (with the reasons the operator sees: Digital ID's checks, names mixing
//! scripts), and the construction of [`ApprovedRequest`] — the only thing the CA
//! will sign. Must never: sign anything itself, trust a CSR's subject or requested extensions
//! (only an e-mail SAN equal to the form's e-mail), or leave half an application behind.

pub mod csr;
pub mod email;
mod invalidity;

use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

pub use csr::{SubjectKeyType, ValidatedCsr};
pub use email::{EmailAddress, EmailError};
pub use invalidity::{InvalidityDate, RevocationDefect};

use chrono::{DateTime, Utc};

use crate::ca::{CaError, Issuer, PreparedCertificate, Serial};
use crate::clock::Clock;
use crate::digital_id::VerifiedConsent;
use crate::error_code::ErrorCode;
use crate::key_identity::KeyIdentity;
use crate::notify::EmailEvent;
use crate::store::{
    db_time, Application, ApplicationStatus, AuditEntry, BlockedKey, Certificate, CertificateKind,
    CertificateStatus, OutboxMessage, Store, StoreError, Tx,
};
use crate::vocab::{Language, RevocationReason, Storage};

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
    /// The CSR cannot be decoded or parsed.
    #[error("the certificate request is malformed: {0}")]
    CsrMalformed(String),
    /// The CSR's signature does not verify with its own key (no proof of possession).
    #[error("the certificate request's signature does not verify with its own key")]
    CsrSignatureInvalid,
    /// The CSR asks for an e-mail that differs from the form's.
    #[error("the certificate request's e-mail address differs from the form's")]
    CsrEmailMismatch,
    /// Key type or size not accepted.
    #[error("key algorithm not allowed: {0}")]
    KeyAlgorithmNotAllowed(String),
    /// The key is too small.
    #[error("key too small: {0}")]
    KeyTooSmall(String),
    /// The key is weak.
    #[error("weak key: {0}")]
    KeyWeak(String),
    /// The key is not in the canonical encoding of RFC 3279 / RFC 5480 (explicit curve
    /// parameters, a compressed or hybrid point, RSA without NULL parameters).
    #[error("the public key's encoding is not accepted: {0}")]
    KeyEncodingInvalid(String),
    /// The CSR is signed with a hash weaker than SHA-256 (or an unknown algorithm).
    #[error("the certificate request's signature algorithm is not accepted: {0}")]
    CsrSignatureAlgorithmNotAllowed(String),
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
            RaError::CsrMalformed(_) => ErrorCode::CsrMalformed,
            RaError::CsrSignatureInvalid => ErrorCode::CsrSignatureInvalid,
            RaError::CsrEmailMismatch => ErrorCode::CsrEmailMismatch,
            RaError::KeyAlgorithmNotAllowed(_) => ErrorCode::KeyAlgorithmNotAllowed,
            RaError::KeyTooSmall(_) => ErrorCode::KeyTooSmall,
            RaError::KeyWeak(_) => ErrorCode::KeyWeak,
            RaError::KeyEncodingInvalid(_) => ErrorCode::KeyEncodingInvalid,
            RaError::CsrSignatureAlgorithmNotAllowed(_) => {
                ErrorCode::CsrSignatureAlgorithmNotAllowed
            }
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
            RaError::Ca(CaError::KeyUnavailable(_)) => ErrorCode::SigningKeyUnavailable,
            RaError::Ca(_) => ErrorCode::InternalError,
            RaError::Store(e) => e.code(),
        }
    }
}

/// The application form as submitted (already parsed from JSON, not yet checked).
#[derive(Debug, Clone)]
pub struct ApplicationForm {
    /// Version of the user agreement shown.
    pub agreement_version: String,
    /// Whether the citizen accepted it.
    pub agreement_accepted: bool,
    /// Optional e-mail.
    pub email: Option<String>,
    /// `kk`, `ru` or `en`.
    pub language: String,
    /// Storage type.
    pub storage: String,
    /// AUTH CSR (PEM or base64 DER).
    pub auth_csr: String,
    /// SIGN CSR.
    pub sign_csr: String,
}

/// A form that passed every check.
pub(crate) struct CheckedForm {
    agreement_version: String,
    email: Option<EmailAddress>,
    language: Language,
    storage: Storage,
    auth: ValidatedCsr,
    sign: ValidatedCsr,
}

impl ApplicationForm {
    /// Every rule of the form and both CSRs, in the order the RA applies them.
    pub(crate) fn check(self, current_agreement: &str) -> Result<CheckedForm, RaError> {
        if !self.agreement_accepted {
            return Err(RaError::AgreementNotAccepted);
        }
        if self.agreement_version != current_agreement {
            return Err(RaError::AgreementVersionMismatch {
                current: current_agreement.to_owned(),
                found: self.agreement_version.chars().take(64).collect(),
            });
        }
        let email = self.email.as_deref().map(EmailAddress::parse).transpose()?;
        let language = Language::parse(&self.language).ok_or(RaError::LanguageInvalid)?;
        let storage = Storage::parse(&self.storage).ok_or(RaError::StorageTypeInvalid)?;
        let auth = csr::validate(&self.auth_csr)?;
        let sign = csr::validate(&self.sign_csr)?;
        for req in [&auth, &sign] {
            if let Some(requested) = req.email() {
                // Both normalised: an A-label in the CSR matches the form's U-label domain.
                let requested = EmailAddress::parse(requested).ok();
                let same = email
                    .as_ref()
                    .zip(requested.as_ref())
                    .is_some_and(|(e, r)| e.same_mailbox(r));
                if !same {
                    return Err(RaError::CsrEmailMismatch);
                }
            }
        }
        if auth.identity() == sign.identity() {
            return Err(RaError::SameKeyForAuthAndSign);
        }
        Ok(CheckedForm {
            agreement_version: self.agreement_version,
            email,
            language,
            storage,
            auth,
            sign,
        })
    }
}

/// A certificate request the RA approved: the identity from a verified consent token, a key
/// from a validated CSR, and the profile choices. Only the RA constructs one; the CA signs
/// nothing else.
#[derive(Debug, Clone)]
pub struct ApprovedRequest {
    application_id: String,
    kind: CertificateKind,
    iin: String,
    surname: String,
    given_name: String,
    patronymic: Option<String>,
    email: Option<EmailAddress>,
    key: KeyIdentity,
    key_type: SubjectKeyType,
    validity_years: u32,
}

impl ApprovedRequest {
    /// The request for `app`'s certificate of `kind`; its e-mail is checked again (an
    /// application stored by an older version may hold one that is no longer accepted).
    fn new(
        app: &Application,
        kind: CertificateKind,
        csr: &ValidatedCsr,
        storage: Storage,
    ) -> Result<Self, RaError> {
        let email = app.email.as_deref().map(EmailAddress::parse).transpose()?;
        Ok(ApprovedRequest {
            application_id: app.id.clone(),
            kind,
            iin: app.holder_iin.clone(),
            surname: app.surname.clone(),
            given_name: app.given_name.clone(),
            patronymic: app.patronymic.clone(),
            email,
            key: csr.identity().clone(),
            key_type: csr.key_type(),
            validity_years: storage.validity_years(),
        })
    }
    /// The application.
    pub fn application_id(&self) -> &str {
        &self.application_id
    }
    /// AUTH or SIGN.
    pub fn kind(&self) -> CertificateKind {
        self.kind
    }
    /// Holder's IIN.
    pub fn iin(&self) -> &str {
        &self.iin
    }
    /// Surname.
    pub fn surname(&self) -> &str {
        &self.surname
    }
    /// Given name.
    pub fn given_name(&self) -> &str {
        &self.given_name
    }
    /// Patronymic.
    pub fn patronymic(&self) -> Option<&str> {
        self.patronymic.as_deref()
    }
    /// E-mail for the SAN: checked, ASCII, the domain in A-labels.
    pub fn email(&self) -> Option<&str> {
        self.email.as_ref().map(EmailAddress::as_str)
    }
    /// SubjectPublicKeyInfo, DER: always the canonical encoding.
    pub fn spki_der(&self) -> &[u8] {
        self.key.canonical_der()
    }
    /// The key's identity.
    pub fn key_identity(&self) -> &KeyIdentity {
        &self.key
    }
    /// Key type (decides key usage).
    pub fn key_type(&self) -> SubjectKeyType {
        self.key_type
    }
    /// Validity in years.
    pub fn validity_years(&self) -> u32 {
        self.validity_years
    }
}

/// Who asks for a revocation.
#[derive(Debug, Clone, Copy)]
pub enum Revoker<'a> {
    /// The certificate's holder, with a verified `eds_revocation` consent.
    Holder(&'a VerifiedConsent),
    /// An operator, by name.
    Operator(&'a str),
}

/// What a submission produced.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The application (status `issued` or `pending_review`).
    pub application: Application,
    /// The access token, shown once; only its hash is stored.
    pub access_token: String,
    /// The issued certificates (empty while pending review).
    pub certificates: Vec<Certificate>,
    /// Whether this request created the application; `false` when it was the same request
    /// again after its answer was lost ([`Registrar::submit`]).
    pub created: bool,
}

/// An application as its holder may see it.
#[derive(Debug, Clone)]
pub struct ApplicationView {
    /// The application.
    pub application: Application,
    /// Its certificates that are issued (AUTH first).
    pub certificates: Vec<Certificate>,
}

/// Per-IIN limits over any 24 hours, counted in the database so that every instance on it
/// enforces the same bound. 0 means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IinLimits {
    /// Applications stored per IIN.
    pub applications_per_day: u32,
    /// Revocations by the holder per IIN (operators' revocations are not counted).
    pub revocations_per_day: u32,
}

/// The window of the per-IIN limits.
const RATE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// What a per-IIN limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limited {
    Application,
    Revocation,
}

impl Limited {
    fn scope(self) -> &'static str {
        match self {
            Limited::Application => "application",
            Limited::Revocation => "revocation",
        }
    }
    fn plural(self) -> &'static str {
        match self {
            Limited::Application => "applications",
            Limited::Revocation => "revocations",
        }
    }
}

/// The RA service.
#[derive(Debug, Clone)]
pub struct Registrar {
    store: Store,
    issuer: Arc<Issuer>,
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
    /// The RA over `store`, issuing through `issuer`.
    pub fn new(
        store: Store,
        issuer: Arc<Issuer>,
        clock: Arc<dyn Clock>,
        agreement_version: &str,
    ) -> Self {
        Registrar {
            store,
            issuer,
            clock,
            agreement_version: agreement_version.to_owned(),
            limits: IinLimits::default(),
        }
    }

    /// The same RA with per-IIN limits.
    pub fn with_iin_limits(mut self, limits: IinLimits) -> Self {
        self.limits = limits;
        self
    }

    fn limit(&self, what: Limited) -> u32 {
        match what {
            Limited::Application => self.limits.applications_per_day,
            Limited::Revocation => self.limits.revocations_per_day,
        }
    }

    /// Refuse when `iin` already has its limit of `what` in the 24 hours before `now`. With
    /// `count`, inside a write transaction: first lock the IIN's counting (so instances
    /// sharing the database cannot both take the last slot), then count this action too —
    /// it is only kept if the transaction commits.
    fn check_iin_limit(
        &self,
        tx: &mut Tx<'_>,
        what: Limited,
        iin: &str,
        now: DateTime<Utc>,
        count: bool,
    ) -> Result<(), RaError> {
        let limit = self.limit(what);
        if limit == 0 {
            return Ok(());
        }
        if count {
            tx.lock_rate_subject(what.scope(), iin)?;
        }
        let since = db_time(now - RATE_WINDOW);
        let used = tx.rate_events_since(what.scope(), iin, since)?;
        if used >= i64::from(limit) {
            // A slot frees when the oldest action beyond the last `limit - 1` leaves the window.
            let freeing = tx.rate_event_time(what.scope(), iin, since, used - i64::from(limit))?;
            // Whole seconds, rounded up: a client that waits this long gets through.
            let retry_after_secs = freeing
                .map(|t| {
                    let wait = t.and_utc() + RATE_WINDOW - now;
                    wait.num_seconds() + i64::from(wait.subsec_nanos() > 0)
                })
                .unwrap_or(1)
                .max(1)
                .unsigned_abs();
            return Err(RaError::IinRateLimited {
                what: what.plural(),
                limit,
                retry_after_secs,
            });
        }
        if count {
            tx.record_rate_event(what.scope(), iin, db_time(now))?;
        }
        Ok(())
    }

    /// Forget counted actions that left the per-IIN window. Returns how many.
    pub fn prune_rate_events(&self) -> Result<usize, RaError> {
        let before = db_time(self.clock.now() - RATE_WINDOW);
        Ok(self.store.write(|tx| tx.prune_rate_events(before))?)
    }

    /// Submit an application under a verified consent token.
    ///
    /// Every check runs before anything is written; then one transaction records the token's
    /// `jti`, the application, the reserved certificates with their exact TBS, and the audit
    /// entry. With Digital ID's liveness and register match the certificates are then signed
    /// and marked issued; otherwise the application waits for an operator.
    ///
    /// A used token is refused (`ConsentReplayed`) — unless the request is the very one that
    /// created an application (same token, same form, same CSRs): a portal whose answer was
    /// lost (a dropped connection, a restarted server) repeats it, and gets the application as
    /// it stands, with its issuance completed if it was interrupted, under a new access token
    /// (only the hash of the first was kept, and that answer may never have arrived). Nothing
    /// new is created.
    pub fn submit(
        &self,
        consent: &VerifiedConsent,
        form: ApplicationForm,
    ) -> Result<Submitted, RaError> {
        // An HSM that cannot sign now refuses the application before anything is written.
        self.issuer.key_ready()?;
        let used = self.store.read(|tx| -> Result<bool, RaError> {
            // A used token makes no new application (it is a repeat or a replay): the
            // per-IIN limit is not for it.
            if tx.consent_jti_used(consent.jti())? {
                return Ok(true);
            }
            // Over the limit already: refuse before the CSR work. Checked again, counting, in
            // the transaction.
            let iin = consent.iin().as_str();
            self.check_iin_limit(tx, Limited::Application, iin, self.clock.now(), false)?;
            Ok(false)
        })?;
        let form = form.check(&self.agreement_version)?;
        if used {
            return self
                .repeated(consent, &form)?
                .ok_or(RaError::ConsentReplayed);
        }
        let (application, access_token, prepared) = match self.accept(consent, &form) {
            Ok(accepted) => accepted,
            Err(RaError::ConsentReplayed) => {
                return self
                    .repeated(consent, &form)?
                    .ok_or(RaError::ConsentReplayed)
            }
            Err(e) => return Err(e),
        };
        let (application, certificates) = if prepared.is_empty() {
            (application, Vec::new())
        } else {
            match self.complete_issuance(&application.id, &prepared, "system") {
                Ok(done) => done,
                // The token went away between the check and the signature: the application
                // is accepted and stays `approved`; the holder polls with the access token and
                // the server finishes it when the key is back (`resume_approved`).
                Err(RaError::Ca(e @ CaError::KeyUnavailable(_))) => {
                    tracing::warn!(application = %application.id, error = %e,
                        "signing postponed: the issuing key is unavailable");
                    (application, Vec::new())
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Submitted {
            application,
            access_token,
            certificates,
            created: true,
        })
    }

    /// The application that `consent` created, if `form` is the request that created it: a
    /// new access token replaces the old one (audited), and an interrupted issuance is
    /// completed. `None` if there is no such application or the request differs.
    fn repeated(
        &self,
        consent: &VerifiedConsent,
        form: &CheckedForm,
    ) -> Result<Option<Submitted>, RaError> {
        let Some(app) = self
            .store
            .read(|tx| tx.application_by_consent_jti(consent.jti()))?
        else {
            return Ok(None);
        };
        let same = app.holder_iin == consent.iin().as_str()
            && app.auth_csr == form.auth.der()
            && app.sign_csr == form.sign.der()
            && app.storage == form.storage.as_str()
            && app.language == form.language.as_str()
            && app.email.as_deref() == form.email.as_ref().map(EmailAddress::as_str)
            && app.agreement_version == form.agreement_version;
        if !same {
            return Ok(None);
        }
        let access_token = new_access_token()?;
        let at = db_time(self.clock.now());
        self.store.write(|tx| -> Result<(), RaError> {
            tx.set_access_token_hash(&app.id, &hash_token(&access_token))?;
            tx.append_audit(&AuditEntry {
                at,
                actor: format!("holder:{}", app.holder_iin),
                action: "application.repeated".to_owned(),
                subject: app.id.clone(),
                details: serde_json::json!({ "status": app.status.as_str() }),
            })?;
            Ok(())
        })?;
        let (application, certificates) = if app.status == ApplicationStatus::Approved {
            match self.resume(&app.id, "system:repeated") {
                Ok(done) => done,
                // As for a new application: it stays `approved` until the key is back.
                Err(RaError::Ca(CaError::KeyUnavailable(_))) => self.current(&app.id)?,
                Err(e) => return Err(e),
            }
        } else {
            self.current(&app.id)?
        };
        Ok(Some(Submitted {
            application,
            access_token,
            certificates,
            created: false,
        }))
    }

    /// The first, durable half of a submission: check everything, then in one transaction
    /// record the token, the application, the reserved certificates and the audit entry.
    #[allow(clippy::type_complexity)]
    fn accept(
        &self,
        consent: &VerifiedConsent,
        form: &CheckedForm,
    ) -> Result<(Application, String, Vec<PreparedCertificate>), RaError> {
        let iin = consent.iin().as_str();
        let keys = [
            form.auth.identity().sha256_hex().to_owned(),
            form.sign.identity().sha256_hex().to_owned(),
        ];
        // Cheap refusals first, without a write lock; they are checked again in the transaction.
        self.store.read(|tx| -> Result<(), RaError> {
            if tx.consent_jti_used(consent.jti())? {
                return Err(RaError::ConsentReplayed);
            }
            check_keys_unused(tx, &keys)
        })?;

        let now = self.clock.now();
        let at = db_time(now);
        let access_token = new_access_token()?;
        let review_reasons = consent.review_reasons();
        let auto = review_reasons.is_empty();
        let identity = consent.identity();
        let application = Application {
            id: uuid::Uuid::new_v4().to_string(),
            status: if auto {
                ApplicationStatus::Approved
            } else {
                ApplicationStatus::PendingReview
            },
            holder_iin: consent.iin().as_str().to_owned(),
            surname: identity.surname.clone(),
            given_name: identity.name.clone(),
            patronymic: identity.patronymic.clone(),
            birth_date: identity.birth_date,
            email: form.email.as_ref().map(|e| e.as_str().to_owned()),
            language: form.language.as_str().to_owned(),
            storage: form.storage.as_str().to_owned(),
            agreement_version: form.agreement_version.clone(),
            access_token_hash: hash_token(&access_token),
            consent_jti: consent.jti().to_owned(),
            register_match: consent.verification().register_match,
            liveness: consent.verification().liveness,
            auth_csr: form.auth.der().to_vec(),
            sign_csr: form.sign.der().to_vec(),
            reason: None,
            decided_by: None,
            created_at: at,
            updated_at: at,
            review_reasons,
        };
        let prepared = if auto {
            vec![
                self.issuer.prepare(
                    &ApprovedRequest::new(
                        &application,
                        CertificateKind::Auth,
                        &form.auth,
                        form.storage,
                    )?,
                    now,
                )?,
                self.issuer.prepare(
                    &ApprovedRequest::new(
                        &application,
                        CertificateKind::Sign,
                        &form.sign,
                        form.storage,
                    )?,
                    now,
                )?,
            ]
        } else {
            Vec::new()
        };
        let actor = format!("holder:{}", application.holder_iin);
        self.store.write(|tx| -> Result<(), RaError> {
            self.check_iin_limit(tx, Limited::Application, iin, now, true)?;
            if !tx.record_consent_jti(consent.jti(), db_time(consent.expires_at()), at)? {
                return Err(RaError::ConsentReplayed);
            }
            check_keys_unused(tx, &keys)?;
            tx.insert_application(&application)?;
            reserve(tx, &prepared)?;
            tx.append_audit(&AuditEntry {
                at,
                actor: actor.clone(),
                action: "application.submitted".to_owned(),
                subject: application.id.clone(),
                details: serde_json::json!({
                    "status": application.status.as_str(),
                    "storage": application.storage,
                    "register_match": application.register_match,
                    "liveness": application.liveness,
                    "review_reasons": application.review_reasons,
                    "reserved_serials": prepared.iter().map(|p| p.serial()).collect::<Vec<_>>(),
                }),
            })?;
            if !auto {
                queue_email(
                    tx,
                    &application,
                    EmailEvent::ApplicationReceived,
                    serde_json::json!({ "application_id": application.id }),
                    at,
                )?;
            }
            Ok(())
        })?;

        Ok((application, access_token, prepared))
    }

    /// Sign reserved certificates and mark them and their application issued. Used right after
    /// submission or approval, and for applications whose issuance was interrupted (a crash,
    /// a database outage between the two transactions). Two processes may complete the same
    /// application at once (a restarted instance and a repeated request, say): each
    /// certificate is marked issued only while still reserved, so one of them records the
    /// issuance and the other returns what it recorded.
    fn complete_issuance(
        &self,
        application_id: &str,
        prepared: &[PreparedCertificate],
        actor: &str,
    ) -> Result<(Application, Vec<Certificate>), RaError> {
        let mut signed = Vec::with_capacity(prepared.len());
        for p in prepared {
            signed.push((p.serial().to_owned(), self.issuer.sign(p)?));
        }
        let at = db_time(self.clock.now());
        let completed = self.store.write(
            |tx| -> Result<Option<(Application, Vec<Certificate>)>, RaError> {
                let mut marked = 0;
                for (serial, der) in &signed {
                    if tx.mark_certificate_issued(serial, der, at)? {
                        marked += 1;
                    }
                }
                if marked == 0 {
                    // Completed meanwhile by another process: nothing to record.
                    return Ok(None);
                }
                if marked != signed.len() {
                    return Err(RaError::Store(StoreError::Corrupt {
                        table: "certificates",
                        message: format!(
                            "application {application_id}: {marked} of {} reserved certificates were still reserved",
                            signed.len()
                        ),
                    }));
                }
                tx.set_application_status(application_id, ApplicationStatus::Issued, at)?;
                tx.append_audit(&AuditEntry {
                    at,
                    actor: actor.to_owned(),
                    action: "application.issued".to_owned(),
                    subject: application_id.to_owned(),
                    details: serde_json::json!({
                        "serials": signed.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
                        "issuer": self.issuer.id(),
                    }),
                })?;
                let app = tx
                    .application(application_id)?
                    .ok_or(RaError::ApplicationNotFound)?;
                let certs = tx.certificates_of_application(application_id)?;
                let issued: Vec<serde_json::Value> = certs
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "kind": c.kind.as_str(),
                            "serial": c.serial,
                            "not_before": c.not_before.and_utc().to_rfc3339(),
                            "not_after": c.not_after.and_utc().to_rfc3339(),
                        })
                    })
                    .collect();
                queue_email(
                    tx,
                    &app,
                    EmailEvent::CertificatesIssued,
                    serde_json::json!({ "application_id": app.id, "certificates": issued }),
                    at,
                )?;
                Ok(Some((app, certs)))
            },
        )?;
        match completed {
            Some(done) => Ok(done),
            None => self.current(application_id),
        }
    }

    /// An application and its signed certificates, as stored now.
    fn current(&self, application_id: &str) -> Result<(Application, Vec<Certificate>), RaError> {
        self.store.read(|tx| -> Result<_, RaError> {
            let app = tx
                .application(application_id)?
                .ok_or(RaError::ApplicationNotFound)?;
            let certs = tx
                .certificates_of_application(application_id)?
                .into_iter()
                .filter(|c| c.der.is_some() && c.status != CertificateStatus::Reserved)
                .collect();
            Ok((app, certs))
        })
    }

    /// Complete the issuance of an approved application from its reserved rows (serial and
    /// stored TBS).
    fn resume(
        &self,
        application_id: &str,
        actor: &str,
    ) -> Result<(Application, Vec<Certificate>), RaError> {
        let certs = self
            .store
            .read(|tx| tx.certificates_of_application(application_id))?;
        let prepared: Vec<PreparedCertificate> = certs
            .iter()
            .filter(|c| c.status == CertificateStatus::Reserved)
            .map(PreparedCertificate::from_reserved)
            .collect::<Result<_, _>>()?;
        self.complete_issuance(application_id, &prepared, actor)
    }

    /// Finish every application that was approved but not completely issued (a crash between
    /// reserving and marking issued); `tamga serve` runs it before it starts listening.
    /// Returns how many were completed.
    pub fn resume_approved(&self) -> Result<usize, RaError> {
        self.resume_approved_since(None)
    }

    /// [`Registrar::resume_approved`] for applications unchanged for at least `age` (`None`:
    /// all). The server runs this periodically, so that nothing waits for a restart: issuance
    /// postponed by an unavailable key finishes when the key is back, and issuance
    /// interrupted while this instance kept running (a database outage between the two
    /// transactions, another instance or an operator's command that died) is completed. The
    /// age keeps it off issuances still in flight.
    pub fn resume_approved_since(&self, age: Option<chrono::Duration>) -> Result<usize, RaError> {
        let cutoff = age.map(|age| db_time(self.clock.now() - age));
        let pending = self
            .store
            .read(|tx| tx.applications_with_status(ApplicationStatus::Approved))?;
        let mut done = 0;
        for app in pending
            .into_iter()
            .filter(|a| cutoff.is_none_or(|c| a.updated_at <= c))
        {
            match self.resume(&app.id, "system:recovery") {
                Ok((after, _)) if after.status == ApplicationStatus::Issued => {
                    tracing::warn!(application = %app.id, "completed an interrupted issuance");
                    done += 1;
                }
                Ok((after, _)) => tracing::error!(
                    application = %app.id,
                    status = after.status.as_str(),
                    "an approved application has no reserved certificates left to sign"
                ),
                // No point trying the others now (database or key unavailable); the next
                // round will.
                Err(RaError::Store(e)) if e.is_unavailable() => return Err(RaError::Store(e)),
                Err(RaError::Ca(e @ CaError::KeyUnavailable(_))) => return Err(RaError::Ca(e)),
                // One application that cannot be completed must not hold up the others (or
                // keep the server from starting): it is logged, and tried again next time.
                Err(e) => tracing::error!(
                    application = %app.id,
                    error = %e,
                    "cannot complete an interrupted issuance"
                ),
            }
        }
        Ok(done)
    }

    /// The application `id`, if `access_token` opens it (compared in constant time).
    pub fn view(&self, id: &str, access_token: &str) -> Result<ApplicationView, RaError> {
        let (application, certificates) = self.store.read(|tx| -> Result<_, RaError> {
            let app = tx.application(id)?.ok_or(RaError::ApplicationNotFound)?;
            let certs = tx.certificates_of_application(id)?;
            Ok((app, certs))
        })?;
        let presented = hash_token(access_token);
        if presented.len() != application.access_token_hash.len()
            || !openssl::memcmp::eq(&presented, &application.access_token_hash)
        {
            return Err(RaError::AccessTokenInvalid);
        }
        let certificates = certificates
            .into_iter()
            .filter(|c| c.der.is_some() && c.status != CertificateStatus::Reserved)
            .collect();
        Ok(ApplicationView {
            application,
            certificates,
        })
    }

    /// Revoke a certificate, by its holder (with a verified `eds_revocation` consent, whose
    /// token becomes used) or by an operator.
    ///
    /// One transaction changes the certificate, takes the next revocation-counter value (so
    /// CRLs and OCSP see it), blocks the key for ever on `keyCompromise`, appends the audit
    /// entry and queues the holder's e-mail. Refusals change nothing.
    pub fn revoke(
        &self,
        by: Revoker<'_>,
        serial: &Serial,
        reason: RevocationReason,
        invalidity_date: Option<DateTime<Utc>>,
    ) -> Result<Certificate, RaError> {
        let now = self.clock.now();
        let at = db_time(now);
        let actor = match by {
            Revoker::Holder(c) => format!("holder:{}", c.iin()),
            Revoker::Operator(name) => format!("operator:{name}"),
        };
        self.store.write(|tx| -> Result<Certificate, RaError> {
            if let Revoker::Holder(consent) = by {
                self.check_iin_limit(tx, Limited::Revocation, consent.iin().as_str(), now, true)?;
            }
            let cert = tx
                .certificate(serial.as_str())?
                .filter(|c| c.status != CertificateStatus::Reserved)
                .ok_or_else(|| RaError::CertificateNotFound(serial.to_string()))?;
            if let Revoker::Holder(consent) = by {
                if cert.holder_iin != consent.iin().as_str() {
                    return Err(RaError::NotCertificateHolder(serial.to_string()));
                }
            }
            if cert.status == CertificateStatus::Revoked {
                return Err(RaError::AlreadyRevoked {
                    serial: serial.to_string(),
                    reason: cert.revocation_reason.clone().unwrap_or_default(),
                });
            }
            if let Revoker::Holder(consent) = by {
                if !tx.record_consent_jti(consent.jti(), db_time(consent.expires_at()), at)? {
                    return Err(RaError::ConsentReplayed);
                }
            }
            let invalidity = invalidity_date
                .map(|d| InvalidityDate::check(d, &cert, now))
                .transpose()?
                .map(|d| db_time(d.get()));
            let seq = tx.next_revocation_seq()?;
            if !tx.revoke_certificate(&cert.serial, reason.as_str(), at, invalidity, seq)? {
                return Err(RaError::AlreadyRevoked {
                    serial: serial.to_string(),
                    reason: String::new(),
                });
            }
            if reason == RevocationReason::KeyCompromise {
                tx.block_key(&BlockedKey {
                    spki_sha256: cert.spki_sha256.clone(),
                    reason: reason.as_str().to_owned(),
                    serial: Some(cert.serial.clone()),
                    created_at: at,
                })?;
            }
            tx.append_audit(&AuditEntry {
                at,
                actor: actor.clone(),
                action: "certificate.revoked".to_owned(),
                subject: cert.serial.clone(),
                details: serde_json::json!({
                    "reason": reason.as_str(),
                    "invalidity_date": invalidity.map(|d| d.and_utc().to_rfc3339()),
                    "issuer": cert.issuer_id,
                    "revocation_seq": seq,
                }),
            })?;
            let application = match &cert.application_id {
                Some(id) => tx.application(id)?,
                None => None,
            };
            if let Some(app) = application {
                queue_email(
                    tx,
                    &app,
                    EmailEvent::CertificateRevoked,
                    serde_json::json!({
                        "serial": cert.serial,
                        "kind": cert.kind.as_str(),
                        "reason": reason.as_str(),
                        "revoked_at": at.and_utc().to_rfc3339(),
                    }),
                    at,
                )?;
            }
            tx.certificate(&cert.serial)?
                .ok_or_else(|| RaError::CertificateNotFound(serial.to_string()))
        })
    }

    /// Lift a `certificateHold` (operators only).
    pub fn release(&self, serial: &Serial, operator: &str) -> Result<Certificate, RaError> {
        let at = db_time(self.clock.now());
        self.store.write(|tx| -> Result<Certificate, RaError> {
            let cert = tx
                .certificate(serial.as_str())?
                .filter(|c| c.status != CertificateStatus::Reserved)
                .ok_or_else(|| RaError::CertificateNotFound(serial.to_string()))?;
            let on_hold = cert.status == CertificateStatus::Revoked
                && cert.revocation_reason.as_deref()
                    == Some(RevocationReason::CertificateHold.as_str());
            if !on_hold {
                return Err(RaError::NotOnHold(serial.to_string()));
            }
            let seq = tx.next_revocation_seq()?;
            if !tx.release_certificate(&cert.serial, seq)? {
                return Err(RaError::NotOnHold(serial.to_string()));
            }
            tx.append_audit(&AuditEntry {
                at,
                actor: format!("operator:{operator}"),
                action: "certificate.released".to_owned(),
                subject: cert.serial.clone(),
                details: serde_json::json!({ "issuer": cert.issuer_id, "revocation_seq": seq }),
            })?;
            tx.certificate(&cert.serial)?
                .ok_or_else(|| RaError::CertificateNotFound(serial.to_string()))
        })
    }

    /// Approve an application waiting for review: re-check its requests against today's
    /// policy, then issue exactly as automatic issuance does (reserve and store the TBS, sign,
    /// compare, mark issued), with the operator in the audit log.
    pub fn approve(
        &self,
        id: &str,
        operator: &str,
    ) -> Result<(Application, Vec<Certificate>), RaError> {
        let app = self
            .store
            .read(|tx| tx.application(id))?
            .ok_or(RaError::ApplicationNotFound)?;
        if app.status != ApplicationStatus::PendingReview {
            return Err(RaError::NotPendingReview {
                id: id.to_owned(),
                status: app.status.as_str().to_owned(),
            });
        }
        let auth = csr::validate(&STANDARD.encode(&app.auth_csr))?;
        let sign = csr::validate(&STANDARD.encode(&app.sign_csr))?;
        let storage = Storage::parse(&app.storage).ok_or(RaError::StorageTypeInvalid)?;
        let now = self.clock.now();
        let at = db_time(now);
        let prepared = vec![
            self.issuer.prepare(
                &ApprovedRequest::new(&app, CertificateKind::Auth, &auth, storage)?,
                now,
            )?,
            self.issuer.prepare(
                &ApprovedRequest::new(&app, CertificateKind::Sign, &sign, storage)?,
                now,
            )?,
        ];
        let keys = [
            auth.identity().sha256_hex().to_owned(),
            sign.identity().sha256_hex().to_owned(),
        ];
        let actor = format!("operator:{operator}");
        self.store.write(|tx| -> Result<(), RaError> {
            let moved = tx.decide_application(
                id,
                ApplicationStatus::PendingReview,
                ApplicationStatus::Approved,
                None,
                operator,
                at,
            )?;
            if !moved {
                let status = tx
                    .application(id)?
                    .map(|a| a.status.as_str().to_owned())
                    .unwrap_or_default();
                return Err(RaError::NotPendingReview {
                    id: id.to_owned(),
                    status,
                });
            }
            check_keys_unused(tx, &keys)?;
            reserve(tx, &prepared)?;
            tx.append_audit(&AuditEntry {
                at,
                actor: actor.clone(),
                action: "application.approved".to_owned(),
                subject: id.to_owned(),
                details: serde_json::json!({
                    "reserved_serials": prepared.iter().map(|p| p.serial()).collect::<Vec<_>>(),
                }),
            })?;
            Ok(())
        })?;
        self.complete_issuance(id, &prepared, &actor)
    }

    /// Reject an application waiting for review, with the reason the holder will read.
    pub fn reject(&self, id: &str, reason: &str, operator: &str) -> Result<Application, RaError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 1000 {
            return Err(RaError::ReasonRequired);
        }
        let at = db_time(self.clock.now());
        self.store.write(|tx| -> Result<Application, RaError> {
            let app = tx.application(id)?.ok_or(RaError::ApplicationNotFound)?;
            let moved = tx.decide_application(
                id,
                ApplicationStatus::PendingReview,
                ApplicationStatus::Rejected,
                Some(reason),
                operator,
                at,
            )?;
            if !moved {
                return Err(RaError::NotPendingReview {
                    id: id.to_owned(),
                    status: app.status.as_str().to_owned(),
                });
            }
            tx.append_audit(&AuditEntry {
                at,
                actor: format!("operator:{operator}"),
                action: "application.rejected".to_owned(),
                subject: id.to_owned(),
                details: serde_json::json!({ "reason": reason }),
            })?;
            queue_email(
                tx,
                &app,
                EmailEvent::ApplicationRejected,
                serde_json::json!({ "application_id": id, "reason": reason }),
                at,
            )?;
            tx.application(id)?.ok_or(RaError::ApplicationNotFound)
        })
    }

    /// Forget used consent-token ids whose tokens can no longer be accepted (expired longer
    /// ago than the allowed clock skew). Returns how many were pruned.
    pub fn prune_used_tokens(&self) -> Result<usize, RaError> {
        let horizon =
            self.clock.now() - chrono::Duration::seconds(2 * crate::digital_id::CLOCK_SKEW_SECS);
        Ok(self
            .store
            .write(|tx| tx.prune_consent_jtis(db_time(horizon)))?)
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

/// Insert the reserved rows (serial and exact TBS) of prepared certificates; a key certified
/// meanwhile by a racing request hits the unique SPKI index and is refused as reused.
fn reserve(tx: &mut crate::store::Tx<'_>, prepared: &[PreparedCertificate]) -> Result<(), RaError> {
    for p in prepared {
        tx.insert_certificate(p.reserved_row()).map_err(|e| {
            if e.is_unique_violation() {
                RaError::KeyReused
            } else {
                e.into()
            }
        })?;
    }
    Ok(())
}

fn check_keys_unused(tx: &mut crate::store::Tx<'_>, keys: &[String]) -> Result<(), RaError> {
    for key in keys {
        if tx.blocked_key(key)?.is_some() {
            return Err(RaError::KeyBlocked);
        }
        if tx.certificate_by_key(key)?.is_some() {
            return Err(RaError::KeyReused);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
