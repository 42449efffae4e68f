//! Application intake: a submission under a verified consent token (every check before
//! anything is written, then one transaction for the token's single use, the application,
//! the reserved certificates and the audit entry), a repeated submission, the holder's view
//! of an application, and the pruning of used token ids. Must never: leave half an
//! application behind, or accept a consent token twice for different requests.

use super::form::CheckedForm;
use super::issuance::{check_keys_unused, reserve};
use super::limits::Limited;
use super::{
    hash_token, new_access_token, queue_email, ApplicationForm, EmailAddress, RaError, Registrar,
};
use crate::ca::{CaError, PreparedCertificate};
use crate::digital_id::VerifiedConsent;
use crate::store::{
    db_time, Application, ApplicationStatus, AuditEntry, Certificate, CertificateStatus,
};

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

impl Registrar {
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
        self.submit_from(consent, form, false)
    }

    /// [`Registrar::submit`], recording whether the application came through the citizen's
    /// pages (`through_pages`): those are finished there, with the local agent's keys.
    pub(super) fn submit_from(
        &self,
        consent: &VerifiedConsent,
        form: ApplicationForm,
        through_pages: bool,
    ) -> Result<Submitted, RaError> {
        // An HSM that cannot sign now refuses the application before anything is written.
        self.first_issuer().key_ready()?;
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
        self.issuers_for(&form)?;
        if used {
            return self
                .repeated(consent, &form)?
                .ok_or(RaError::ConsentReplayed);
        }
        let (application, access_token, prepared) = match self.accept(consent, &form, through_pages)
        {
            Ok(accepted) => accepted,
            Err(RaError::ConsentReplayed) => {
                return self
                    .repeated(consent, &form)?
                    .ok_or(RaError::ConsentReplayed)
            }
            Err(e) => return Err(e),
        };
        tracing::info!(
            application = %application.id,
            status = application.status.as_str(),
            "application accepted"
        );
        let (application, certificates) = if prepared.is_empty() {
            (application, Vec::new())
        } else {
            self.sign_or_postpone(application, &prepared)?
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
        self.answer_again(app).map(Some)
    }

    /// The answer to a request repeated after its answer was lost (a submission or a
    /// re-issue): a new access token replaces the old one (audited), and an interrupted
    /// issuance is completed.
    pub(super) fn answer_again(&self, app: Application) -> Result<Submitted, RaError> {
        let access_token = new_access_token()?;
        let at = db_time(self.clock.now());
        let details = match &app.replaces_application_id {
            Some(old) => serde_json::json!({ "status": app.status.as_str(), "replaces": old }),
            None => serde_json::json!({ "status": app.status.as_str() }),
        };
        self.store.write(|tx| -> Result<(), RaError> {
            tx.set_access_token_hash(&app.id, &hash_token(&access_token))?;
            tx.append_audit(&AuditEntry {
                at,
                actor: format!("holder:{}", app.holder_iin),
                action: "application.repeated".to_owned(),
                subject: app.id.clone(),
                details,
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
        Ok(Submitted {
            application,
            access_token,
            certificates,
            created: false,
        })
    }

    /// The first, durable half of a submission: check everything, then in one transaction
    /// record the token, the application, the reserved certificates and the audit entry.
    #[allow(clippy::type_complexity)]
    pub(super) fn accept(
        &self,
        consent: &VerifiedConsent,
        form: &CheckedForm,
        through_pages: bool,
    ) -> Result<(Application, String, Vec<PreparedCertificate>), RaError> {
        let iin = consent.iin().as_str();
        let keys = [
            form.auth.identity().sha256_hex().to_owned(),
            form.sign.identity().sha256_hex().to_owned(),
        ];
        // The token and the keys are checked in the transaction only: a refusal there undoes
        // its own savepoint and nothing else, and costs less than reading twice for every
        // application that passes.
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
            replaces_application_id: None,
            through_pages,
        };
        let prepared = if auto {
            self.prepare_pair(&application, form, now)?
        } else {
            Vec::new()
        };
        let actor = format!("holder:{}", application.holder_iin);
        // Shared with the submissions that arrive meanwhile (group commit): each runs in its
        // own savepoint, so a replayed token, a reused key or a limit fails only its own.
        self.store.write(|tx| -> Result<(), RaError> {
            // The token first: a replayed one is refused as such (and, as before the
            // transaction, the per-IIN limit is not for it), even when the application it
            // repeats is in the same shared transaction, not yet committed.
            if !tx.record_consent_jti(consent.jti(), db_time(consent.expires_at()), at)? {
                return Err(RaError::ConsentReplayed);
            }
            self.check_iin_limit(tx, Limited::Application, iin, now, true)?;
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
                    crate::notify::EmailEvent::ApplicationReceived,
                    serde_json::json!({ "application_id": application.id }),
                    at,
                )?;
            }
            Ok(())
        })?;

        Ok((application, access_token, prepared))
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
