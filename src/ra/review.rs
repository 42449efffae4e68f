//! Operator review: approval of an application waiting for review (its requests checked
//! again against today's policy, then issued exactly as automatic issuance does) and
//! rejection with the reason the holder reads. Must never: decide an application that is not
//! `pending_review`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::issuance::{approved_request, check_keys_unused, reserve};
use super::{queue_email, RaError, Registrar};
use crate::csr;
use crate::store::{
    db_time, Application, ApplicationStatus, AuditEntry, Certificate, CertificateKind,
};
use crate::vocab::Storage;

impl Registrar {
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
        let sign = csr::validate_sign(&STANDARD.encode(&app.sign_csr))?;
        let storage = Storage::parse(&app.storage).ok_or(RaError::StorageTypeInvalid)?;
        let now = self.clock.now();
        let at = db_time(now);
        let prepared = vec![
            self.issuer_for(&auth)?.prepare(
                &approved_request(&app, CertificateKind::Auth, &auth, storage)?,
                now,
            )?,
            self.issuer_for(&sign)?.prepare(
                &approved_request(&app, CertificateKind::Sign, &sign, storage)?,
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
        tracing::info!(application = id, operator, "application approved");
        self.complete_issuance(id, None, &prepared, &actor)
    }

    /// Reject an application waiting for review, with the reason the holder will read.
    pub fn reject(&self, id: &str, reason: &str, operator: &str) -> Result<Application, RaError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 1000 {
            return Err(RaError::ReasonRequired);
        }
        let at = db_time(self.clock.now());
        let rejected = self.store.write(|tx| -> Result<Application, RaError> {
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
                crate::notify::EmailEvent::ApplicationRejected,
                serde_json::json!({ "application_id": id, "reason": reason }),
                at,
            )?;
            tx.application(id)?.ok_or(RaError::ApplicationNotFound)
        })?;
        // The reason stays in the audit log and the holder's answer: it is free text.
        tracing::info!(application = id, operator, "application rejected");
        Ok(rejected)
    }
}
