//! Issuance of approved applications, in the crash-safe order: the approved requests the CA
//! signs (built here from a validated CSR and the verified subject), the reserved rows
//! (serial and exact TBS) stored before anything is signed, the signature, and the
//! transaction that marks the certificates and the application issued; recovery completes
//! what a crash or an outage interrupted. Must never: sign anything itself (the CA does), or
//! mark a certificate issued that is not the signature of its stored TBS.

use super::form::CheckedForm;
use super::{queue_email, EmailAddress, RaError, Registrar};
use crate::ca::{ApprovedRequest, CaError, PreparedCertificate, ToBeSigned, VerifiedSubject};
use crate::csr::ValidatedCsr;
use crate::store::{
    db_time, Application, ApplicationStatus, AuditEntry, Certificate, CertificateKind,
    CertificateStatus, StoreError,
};
use crate::vocab::Storage;

/// The approved request for `app`'s certificate of `kind`; its e-mail is checked again (an
/// application stored by an older version may hold one that is no longer accepted).
pub(super) fn approved_request(
    app: &Application,
    kind: CertificateKind,
    csr: &ValidatedCsr,
    storage: Storage,
) -> Result<ApprovedRequest, RaError> {
    let email = app.email.as_deref().map(EmailAddress::parse).transpose()?;
    let subject = VerifiedSubject::new(
        &app.holder_iin,
        &app.surname,
        &app.given_name,
        app.patronymic.as_deref(),
        email,
    );
    Ok(ApprovedRequest::new(
        &app.id,
        kind,
        subject,
        csr,
        storage.validity_years(),
    ))
}

/// The row that reserves a prepared certificate: status `reserved`, its TBS stored, nothing
/// signed yet.
fn reserved_row(p: &PreparedCertificate) -> Certificate {
    Certificate {
        serial: p.serial().to_owned(),
        issuer_id: p.issuer_id().to_owned(),
        application_id: Some(p.application_id().to_owned()),
        kind: p.kind(),
        holder_iin: p.holder_iin().to_owned(),
        not_before: p.not_before().naive_utc(),
        not_after: p.not_after().naive_utc(),
        tbs_der: p.tbs().der().to_vec(),
        der: None,
        spki_sha256: p.spki_sha256().to_owned(),
        status: CertificateStatus::Reserved,
        revoked_at: None,
        revocation_reason: None,
        invalidity_date: None,
        created_at: db_time(p.prepared_at()),
        issued_at: None,
        revocation_seq: None,
    }
}

/// The bytes to sign of a row reserved earlier (crash recovery). Only rows in `reserved`
/// status.
fn reserved_tbs(row: &Certificate) -> Result<ToBeSigned, CaError> {
    if row.status != CertificateStatus::Reserved {
        return Err(CaError::NotReserved(row.serial.clone()));
    }
    Ok(ToBeSigned::reserved(
        &row.issuer_id,
        &row.serial,
        &row.tbs_der,
    ))
}

impl Registrar {
    /// The AUTH and SIGN certificates of an application from its checked form, prepared by the
    /// CA (serial and exact TBS fixed), not yet stored or signed.
    pub(super) fn prepare_pair(
        &self,
        app: &Application,
        form: &CheckedForm,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<PreparedCertificate>, RaError> {
        [
            (CertificateKind::Auth, &form.auth),
            (CertificateKind::Sign, &form.sign),
        ]
        .into_iter()
        .map(|(kind, csr)| {
            let request = approved_request(app, kind, csr, form.storage)?;
            Ok(self.issuer_for(csr)?.prepare(&request, now)?)
        })
        .collect()
    }

    /// Sign a just-accepted application's certificates and record them. If the issuing key's
    /// token went away between the check and the signature, the application is accepted and
    /// stays `approved`: the holder polls with the access token and the server finishes it
    /// when the key is back (`resume_approved`).
    pub(super) fn sign_or_postpone(
        &self,
        application: Application,
        prepared: &[PreparedCertificate],
    ) -> Result<(Application, Vec<Certificate>), RaError> {
        match self.complete_issuance(&application.id, Some(&application), prepared, "system") {
            Ok(done) => Ok(done),
            Err(RaError::Ca(e @ CaError::KeyUnavailable(_))) => {
                tracing::warn!(application = %application.id, error = %e,
                    "signing postponed: the issuing key is unavailable");
                Ok((application, Vec::new()))
            }
            Err(e) => Err(e),
        }
    }

    /// Sign reserved certificates and mark them and their application issued. Used right after
    /// submission or approval, and for applications whose issuance was interrupted (a crash,
    /// a database outage between the two transactions). Two processes may complete the same
    /// application at once (a restarted instance and a repeated request, say): each
    /// certificate is marked issued only while still reserved, so one of them records the
    /// issuance and the other returns what it recorded.
    ///
    /// `known` is the application as the caller just read or made it, if it did: its lineage
    /// never changes, so an application that replaces nothing needs no second look before
    /// signing.
    pub(super) fn complete_issuance(
        &self,
        application_id: &str,
        known: Option<&Application>,
        prepared: &[impl AsRef<ToBeSigned>],
        actor: &str,
    ) -> Result<(Application, Vec<Certificate>), RaError> {
        // A re-issue whose replaced pair was revoked meanwhile (key compromise, say) is void:
        // nothing more is signed for it.
        if known.is_none_or(|app| app.replaces_application_id.is_some()) {
            self.void_if_replaced_pair_revoked(application_id)?;
        }
        let mut signed = Vec::with_capacity(prepared.len());
        let mut issuer_ids: Vec<&str> = Vec::new();
        for p in prepared.iter().map(AsRef::as_ref) {
            // Each certificate by the issuer its TBS was prepared for; one not loaded here
            // (a GOST issuer without the engine) cannot sign now: the application waits.
            let issuer = self.issuers.get(p.issuer_id()).ok_or_else(|| {
                CaError::KeyUnavailable(format!("the issuing CA {} is not loaded", p.issuer_id()))
            })?;
            signed.push((p.serial().to_owned(), issuer.sign(p)?));
            if !issuer_ids.contains(&issuer.id()) {
                issuer_ids.push(issuer.id());
            }
        }
        let at = db_time(self.clock.now());
        let completed = self.store.write(
            |tx| -> Result<Completion, RaError> {
                let marked_certs = tx.mark_certificates_issued(&signed, at)?;
                let marked = marked_certs.len();
                if marked == 0 {
                    // Completed meanwhile by another process: nothing to record.
                    return Ok(Completion::Already);
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
                // An application known to replace nothing (its lineage never changes) is
                // marked issued and read back in one statement.
                let (app, superseded) = if known.is_some_and(|k| k.replaces_application_id.is_none())
                {
                    let app = tx
                        .set_application_status_returning(
                            application_id,
                            ApplicationStatus::Issued,
                            at,
                        )?
                        .ok_or(RaError::ApplicationNotFound)?;
                    (app, None)
                } else {
                    // A re-issue: the pair it replaces stops being valid in this very
                    // transaction, so there is never a moment with no valid pair, nor with
                    // two; or, revoked meanwhile for another reason, it voids the re-issue.
                    let mut app = tx
                        .application(application_id)?
                        .ok_or(RaError::ApplicationNotFound)?;
                    let superseded = match &app.replaces_application_id {
                        Some(old) => match super::lineage::supersede(tx, old, application_id, at)?
                        {
                            super::lineage::Replaced::Superseded(serials) => Some(serials),
                            super::lineage::Replaced::Void { serial, reason } => {
                                super::lineage::void_reissue(
                                    tx,
                                    application_id,
                                    &serial,
                                    &reason,
                                    at,
                                )?;
                                return Ok(Completion::Void { serial, reason });
                            }
                        },
                        None => None,
                    };
                    tx.set_application_status(application_id, ApplicationStatus::Issued, at)?;
                    app.status = ApplicationStatus::Issued;
                    app.updated_at = at;
                    (app, superseded)
                };
                tx.append_audit(&AuditEntry {
                    at,
                    actor: actor.to_owned(),
                    action: "application.issued".to_owned(),
                    subject: application_id.to_owned(),
                    details: serde_json::json!({
                        "serials": signed.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
                        "issuer": issuer_ids.first().copied().unwrap_or_default(),
                        "issuers": issuer_ids,
                    }),
                })?;
                // The application's pair is the rows it reserved, all marked just now.
                let certs = marked_certs;
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
                let (event, payload) = match (&app.replaces_application_id, superseded) {
                    (Some(old), Some(serials)) => (
                        crate::notify::EmailEvent::CertificatesReissued,
                        serde_json::json!({
                            "application_id": app.id,
                            "replaces": old,
                            "certificates": issued,
                            "superseded": serials,
                        }),
                    ),
                    // An application of the citizen's pages that an operator approved is
                    // finished there, with the keys the local agent holds: the message links
                    // there, by the application's id only (never its access token). One that
                    // came through the API is finished by the portal's own client.
                    _ if app.decided_by.is_some() && app.through_pages => (
                        crate::notify::EmailEvent::CertificatesIssued,
                        serde_json::json!({
                            "application_id": app.id,
                            "certificates": issued,
                            "resume_url": format!(
                                "{}/enroll/resume?application={}",
                                self.first_issuer().public_url(),
                                app.id
                            ),
                        }),
                    ),
                    _ => (
                        crate::notify::EmailEvent::CertificatesIssued,
                        serde_json::json!({ "application_id": app.id, "certificates": issued }),
                    ),
                };
                queue_email(tx, &app, event, payload, at)?;
                Ok(Completion::Done(Box::new((app, certs))))
            },
        )?;
        match completed {
            Completion::Void { serial, reason } => {
                tracing::warn!(application = application_id, replaced = %serial, reason = %reason,
                    "re-issue void: the pair it replaces was revoked before it completed");
                Err(RaError::CertificateRevoked { serial, reason })
            }
            Completion::Done(done) => {
                let done = *done;
                // One line per certificate: the event operators follow at `info` (the holder
                // is named by the application id alone, never by IIN).
                for cert in done
                    .1
                    .iter()
                    .filter(|c| signed.iter().any(|(s, _)| *s == c.serial))
                {
                    tracing::info!(
                        application = application_id,
                        serial = %cert.serial,
                        kind = cert.kind.as_str(),
                        by = actor_kind(actor),
                        "certificate issued"
                    );
                }
                Ok(done)
            }
            Completion::Already => self.current(application_id),
        }
    }

    /// Before signing for a re-issue: if its replaced pair was revoked for another reason than
    /// a hold or `superseded`, void it (rejected, nothing signed) and refuse.
    fn void_if_replaced_pair_revoked(&self, application_id: &str) -> Result<(), RaError> {
        let void = self
            .store
            .read(|tx| -> Result<Option<(String, String)>, RaError> {
                let Some(app) = tx.application(application_id)? else {
                    return Ok(None);
                };
                let Some(old) = app.replaces_application_id else {
                    return Ok(None);
                };
                Ok(tx
                    .certificates_of_application(&old)?
                    .into_iter()
                    .filter(|c| c.status == CertificateStatus::Revoked)
                    .map(|c| (c.serial, c.revocation_reason.unwrap_or_default()))
                    .find(|(_, reason)| super::lineage::voids(reason)))
            })?;
        let Some((serial, reason)) = void else {
            return Ok(());
        };
        let at = db_time(self.clock.now());
        self.store
            .write(|tx| super::lineage::void_reissue(tx, application_id, &serial, &reason, at))?;
        tracing::warn!(application = application_id, replaced = %serial, reason = %reason,
            "re-issue void: the pair it replaces was revoked before it was signed");
        Err(RaError::CertificateRevoked { serial, reason })
    }

    /// An application and its signed certificates, as stored now.
    pub(super) fn current(
        &self,
        application_id: &str,
    ) -> Result<(Application, Vec<Certificate>), RaError> {
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
    pub(super) fn resume(
        &self,
        application_id: &str,
        actor: &str,
    ) -> Result<(Application, Vec<Certificate>), RaError> {
        let certs = self
            .store
            .read(|tx| tx.certificates_of_application(application_id))?;
        let prepared: Vec<ToBeSigned> = certs
            .iter()
            .filter(|c| c.status == CertificateStatus::Reserved)
            .map(reserved_tbs)
            .collect::<Result<_, _>>()?;
        self.complete_issuance(application_id, None, &prepared, actor)
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
}

/// What the transaction that records an issuance found.
enum Completion {
    /// Recorded now: the application and its certificates.
    Done(Box<(Application, Vec<Certificate>)>),
    /// Recorded meanwhile by another process.
    Already,
    /// A re-issue whose replaced pair was revoked meanwhile: recorded as void.
    Void {
        /// The revoked certificate of the replaced pair.
        serial: String,
        /// Its reason.
        reason: String,
    },
}

/// The kind of an audit actor for a log line: `operator:NAME` and `system…` as they are, a
/// holder (`holder:IIN`) as `holder` alone, so that no IIN reaches the log.
pub(super) fn actor_kind(actor: &str) -> &str {
    if actor.starts_with("holder:") {
        "holder"
    } else {
        actor
    }
}

/// Insert the reserved rows (serial and exact TBS) of prepared certificates; a key certified
/// meanwhile by a racing request hits the unique SPKI index and is refused as reused.
pub(super) fn reserve(
    tx: &mut crate::store::Tx<'_>,
    prepared: &[PreparedCertificate],
) -> Result<(), RaError> {
    let rows: Vec<_> = prepared.iter().map(reserved_row).collect();
    tx.insert_certificates(&rows).map_err(|e| {
        if e.is_unique_violation() {
            RaError::KeyReused
        } else {
            e.into()
        }
    })
}

pub(super) fn check_keys_unused(
    tx: &mut crate::store::Tx<'_>,
    keys: &[String],
) -> Result<(), RaError> {
    // A blocked key is named as such even when the other one is merely reused.
    let standing = tx.keys_standing(keys)?;
    if standing.blocked {
        return Err(RaError::KeyBlocked);
    }
    if standing.certified {
        return Err(RaError::KeyReused);
    }
    Ok(())
}
