//! Revocation by the holder (with a verified `eds_revocation` consent) or by an operator,
//! and the release of a certificate on hold: one transaction each, which changes the
//! certificate, takes the next revocation-counter value, blocks a compromised key, appends
//! the audit entry and queues the holder's e-mail (a hold is told as a suspension, not a
//! revocation; a release as the certificate valid again). Must never: change anything on a
//! refusal.

use chrono::{DateTime, Utc};

use super::limits::Limited;
use super::{queue_email, InvalidityDate, RaError, Registrar};
use crate::ca::Serial;
use crate::digital_id::VerifiedConsent;
use crate::notify::EmailEvent;
use crate::store::{db_time, AuditEntry, BlockedKey, Certificate, CertificateStatus};
use crate::vocab::RevocationReason;

/// Who asks for a revocation.
#[derive(Debug, Clone, Copy)]
pub enum Revoker<'a> {
    /// The certificate's holder, with a verified `eds_revocation` consent.
    Holder(&'a VerifiedConsent),
    /// The certificate's holder, logged in to the cabinet with the pair's AUTH key.
    Cabinet(&'a super::CabinetHolder),
    /// An operator, by name.
    Operator(&'a str),
}

impl Registrar {
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
            Revoker::Cabinet(h) => format!("holder:{}", h.iin()),
            Revoker::Operator(name) => format!("operator:{name}"),
        };
        let revoked = self.store.write(|tx| -> Result<Certificate, RaError> {
            let holder_iin = match by {
                Revoker::Holder(consent) => Some(consent.iin().as_str()),
                Revoker::Cabinet(holder) => Some(holder.iin()),
                Revoker::Operator(_) => None,
            };
            if let Some(iin) = holder_iin {
                self.check_iin_limit(tx, Limited::Revocation, iin, now, true)?;
            }
            let cert = tx
                .certificate(serial.as_str())?
                .filter(|c| c.status != CertificateStatus::Reserved)
                .ok_or_else(|| RaError::CertificateNotFound(serial.to_string()))?;
            if holder_iin.is_some_and(|iin| cert.holder_iin != iin) {
                return Err(RaError::NotCertificateHolder(serial.to_string()));
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
                // A hold is a suspension, told as one; any other reason is the revocation.
                let (event, payload) = if reason == RevocationReason::CertificateHold {
                    (
                        EmailEvent::CertificateHeld,
                        serde_json::json!({
                            "serial": cert.serial,
                            "kind": cert.kind.as_str(),
                            "held_at": at.and_utc().to_rfc3339(),
                        }),
                    )
                } else {
                    (
                        EmailEvent::CertificateRevoked,
                        serde_json::json!({
                            "serial": cert.serial,
                            "kind": cert.kind.as_str(),
                            "reason": reason.as_str(),
                            "revoked_at": at.and_utc().to_rfc3339(),
                        }),
                    )
                };
                queue_email(tx, &app, event, payload, at)?;
            }
            tx.certificate(&cert.serial)?
                .ok_or_else(|| RaError::CertificateNotFound(serial.to_string()))
        })?;
        tracing::info!(
            application = revoked.application_id.as_deref(),
            serial = %revoked.serial,
            kind = revoked.kind.as_str(),
            reason = reason.as_str(),
            by = super::issuance::actor_kind(&actor),
            "certificate revoked"
        );
        Ok(revoked)
    }

    /// Lift a `certificateHold` (operators only). One transaction releases the certificate
    /// with the next revocation-counter value, appends the audit entry and queues the
    /// holder's e-mail saying it is valid again.
    pub fn release(&self, serial: &Serial, operator: &str) -> Result<Certificate, RaError> {
        let at = db_time(self.clock.now());
        let released = self.store.write(|tx| -> Result<Certificate, RaError> {
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
            let application = match &cert.application_id {
                Some(id) => tx.application(id)?,
                None => None,
            };
            if let Some(app) = application {
                queue_email(
                    tx,
                    &app,
                    EmailEvent::CertificateReleased,
                    serde_json::json!({
                        "serial": cert.serial,
                        "kind": cert.kind.as_str(),
                        "released_at": at.and_utc().to_rfc3339(),
                    }),
                    at,
                )?;
            }
            tx.certificate(&cert.serial)?
                .ok_or_else(|| RaError::CertificateNotFound(serial.to_string()))
        })?;
        tracing::info!(
            application = released.application_id.as_deref(),
            serial = %released.serial,
            kind = released.kind.as_str(),
            operator,
            "certificate hold released"
        );
        Ok(released)
    }
}
