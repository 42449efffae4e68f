//! The lineage of a pair: what a re-issue does to the pair it replaces, in the transaction
//! that records the new pair as issued ([`super::issuance`]). The old pair is revoked
//! `superseded` (a hold made final), or, if it was revoked for another reason meanwhile, the
//! re-issue is void. Must never: leave one lineage two valid pairs, or let a signed
//! certificate go unrecorded.

use chrono::NaiveDateTime;

use super::RaError;
use crate::store::{ApplicationStatus, AuditEntry, CertificateStatus, Tx};
use crate::vocab::RevocationReason;

/// What became of the pair a re-issue replaces, in the transaction that records the new one.
#[derive(Debug)]
pub(super) enum Replaced {
    /// The old pair is revoked `superseded` now (these serials changed here).
    Superseded(Vec<String>),
    /// A certificate of the old pair was revoked for another reason before the new pair was
    /// recorded: the re-issue is void.
    Void {
        /// The certificate.
        serial: String,
        /// Its reason.
        reason: String,
    },
}

/// Whether a revoked certificate's reason voids a re-issue of its pair: anything but a hold
/// (made final as `superseded`) and `superseded` itself.
pub(super) fn voids(reason: &str) -> bool {
    reason != RevocationReason::CertificateHold.as_str()
        && reason != RevocationReason::Superseded.as_str()
}

/// Revoke the pair `new_id` replaces, with reason `superseded`, in the transaction that records
/// `new_id` as issued: a valid certificate is revoked, a held one's hold is made final (so no
/// release can bring it back beside the new pair). The revocation counter is taken before each
/// certificate is read again, so this serialises with every other revocation, on one instance
/// or several: a revocation for another reason committed first makes the re-issue void.
pub(super) fn supersede(
    tx: &mut Tx<'_>,
    old_id: &str,
    new_id: &str,
    at: NaiveDateTime,
) -> Result<Replaced, RaError> {
    let mut revoked = Vec::new();
    for cert in tx.certificates_of_application(old_id)? {
        let reason = cert.revocation_reason.clone().unwrap_or_default();
        match cert.status {
            CertificateStatus::Reserved => continue,
            CertificateStatus::Revoked if voids(&reason) => {
                return Ok(Replaced::Void {
                    serial: cert.serial,
                    reason,
                })
            }
            CertificateStatus::Revoked if reason == RevocationReason::Superseded.as_str() => {
                continue
            }
            _ => {}
        }
        let seq = tx.next_revocation_seq()?;
        let Some(now) = tx.certificate(&cert.serial)? else {
            continue;
        };
        let reason = now.revocation_reason.clone().unwrap_or_default();
        let changed = match now.status {
            CertificateStatus::Issued => tx.revoke_certificate(
                &now.serial,
                RevocationReason::Superseded.as_str(),
                at,
                None,
                seq,
            )?,
            CertificateStatus::Revoked if voids(&reason) => {
                return Ok(Replaced::Void {
                    serial: now.serial,
                    reason,
                })
            }
            CertificateStatus::Revoked if reason == RevocationReason::CertificateHold.as_str() => {
                tx.finalise_hold(
                    &now.serial,
                    RevocationReason::Superseded.as_str(),
                    at,
                    None,
                    seq,
                )?
            }
            _ => false,
        };
        if !changed {
            continue;
        }
        tx.append_audit(&AuditEntry {
            at,
            actor: "system:reissue".to_owned(),
            action: "certificate.revoked".to_owned(),
            subject: now.serial.clone(),
            details: serde_json::json!({
                "reason": RevocationReason::Superseded.as_str(),
                "was": now.status.as_str(),
                "replaced_by": new_id,
                "issuer": now.issuer_id,
                "revocation_seq": seq,
            }),
        })?;
        revoked.push(now.serial);
    }
    Ok(Replaced::Superseded(revoked))
}

/// Void a re-issue whose replaced pair was revoked (for another reason than a hold or
/// `superseded`) before the new pair was recorded: the application is rejected with the
/// reason, and any of its certificates already signed is recorded and revoked with the old
/// pair's reason (a key compromise blocks their keys too), so what was signed stays findable
/// and never valid.
pub(super) fn void_reissue(
    tx: &mut Tx<'_>,
    application_id: &str,
    old_serial: &str,
    old_reason: &str,
    at: NaiveDateTime,
) -> Result<(), RaError> {
    let reason = format!(
        "the pair it replaces was revoked ({old_reason}, certificate {old_serial}) before the re-issue completed"
    );
    tx.decide_application(
        application_id,
        ApplicationStatus::Approved,
        ApplicationStatus::Rejected,
        Some(&reason),
        "system:reissue",
        at,
    )?;
    let revoke_as = RevocationReason::parse(old_reason).unwrap_or(RevocationReason::Unspecified);
    let mut revoked = Vec::new();
    for cert in tx.certificates_of_application(application_id)? {
        if cert.status != CertificateStatus::Issued {
            continue;
        }
        let seq = tx.next_revocation_seq()?;
        if tx.revoke_certificate(&cert.serial, revoke_as.as_str(), at, None, seq)? {
            if revoke_as == RevocationReason::KeyCompromise {
                tx.block_key(&crate::store::BlockedKey {
                    spki_sha256: cert.spki_sha256.clone(),
                    reason: revoke_as.as_str().to_owned(),
                    serial: Some(cert.serial.clone()),
                    created_at: at,
                })?;
            }
            revoked.push(cert.serial);
        }
    }
    tx.append_audit(&AuditEntry {
        at,
        actor: "system:reissue".to_owned(),
        action: "application.reissue_voided".to_owned(),
        subject: application_id.to_owned(),
        details: serde_json::json!({
            "replaced_serial": old_serial,
            "replaced_reason": old_reason,
            "revoked": revoked,
        }),
    })?;
    Ok(())
}
