//! The issuing CA's own certificate, as the operator changes it: revoked (for the next root CRL
//! to list) or reissued with the same key, each with its audit entry.
//!
//! Owns: the authority revocation of the issuing CA certificate and its `ca.issuer_revoked`
//! audit entry (one transaction) on a server that holds the root key, the same on the offline
//! root machine for any CA certificate the root signed (`root.issuing_revoked`, [`revoke_ca`]),
//! the `ca.issuing_reissued` audit entry, the
//! `ca.hierarchy_generated` entry of a newly generated hierarchy, and the entries of the key
//! ceremony's steps ([`record_ceremony`]). Must never:
//! revoke the certificate twice, or report success when the audit entry was not written.

use chrono::{DateTime, Utc};

use crate::ca::{display_name, Hierarchy, Serial};
use crate::store::{db_time, AuditEntry, Store, StoreError};
use crate::vocab::RevocationReason;

/// Why the issuing CA certificate was not revoked, or its reissue not recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// The certificate is already listed as revoked.
    #[error("the issuing CA certificate {0} is already revoked")]
    AlreadyRevoked(Serial),
    /// The certificate's serial number could not be read.
    #[error("the issuing CA certificate's serial number: {0}")]
    Serial(String),
    /// The database refused the write.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Revoke the issuing CA certificate of `hierarchy` for `reason`, recorded as done by `actor`.
/// Returns its serial number.
pub fn revoke_issuer(
    store: &Store,
    hierarchy: &Hierarchy,
    reason: RevocationReason,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Serial, IssuerError> {
    let cert = hierarchy.issuing().certificate().x509();
    let serial = cert
        .serial_number()
        .to_bn()
        .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
        .map_err(|e| IssuerError::Serial(e.to_string()))?;
    let serial = Serial::parse(&serial).map_err(|e| IssuerError::Serial(e.to_string()))?;
    let subject = display_name(cert.subject_name());
    record_revocation(
        store,
        &serial,
        &subject,
        reason,
        ("ca.issuer_revoked", actor),
        now,
    )?;
    Ok(serial)
}

/// On the root machine: revoke the CA certificate `serial` (named `subject`) that the root
/// signed, for `reason`, recorded as done by `actor` (`root.issuing_revoked`). The caller
/// checks that the root signed it.
pub fn revoke_ca(
    store: &Store,
    serial: &Serial,
    subject: &str,
    reason: RevocationReason,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), IssuerError> {
    record_revocation(
        store,
        serial,
        subject,
        reason,
        ("root.issuing_revoked", actor),
        now,
    )
}

/// The authority revocation and its audit entry `(action, actor)`, in one transaction.
fn record_revocation(
    store: &Store,
    serial: &Serial,
    subject: &str,
    reason: RevocationReason,
    (action, actor): (&str, &str),
    now: DateTime<Utc>,
) -> Result<(), IssuerError> {
    let at = db_time(now);
    let revoked = store.write(|tx| -> Result<bool, StoreError> {
        if !tx.revoke_authority(serial.as_str(), subject, reason.as_str(), at)? {
            return Ok(false);
        }
        tx.append_audit(&AuditEntry {
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: serial.to_string(),
            details: serde_json::json!({ "reason": reason.as_str(), "subject": subject }),
        })?;
        Ok(true)
    })?;
    if revoked {
        Ok(())
    } else {
        Err(IssuerError::AlreadyRevoked(serial.clone()))
    }
}

/// Record that the issuing CA certificate `issuer_id` was reissued (same key), valid until
/// `not_after`, by `actor`.
pub fn record_reissue(
    store: &Store,
    issuer_id: &str,
    not_after: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), IssuerError> {
    let entry = AuditEntry {
        at: db_time(now),
        actor: actor.to_owned(),
        action: "ca.issuing_reissued".to_owned(),
        subject: issuer_id.to_owned(),
        details: serde_json::json!({ "not_after": not_after }),
    };
    store.write(|tx| tx.append_audit(&entry))?;
    Ok(())
}

/// Record that `hierarchy` was generated (root, issuing CA and OCSP responder), by `actor`.
pub fn record_generated(
    store: &Store,
    hierarchy: &Hierarchy,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), IssuerError> {
    let issuing = hierarchy.issuing();
    let entry = AuditEntry {
        at: db_time(now),
        actor: actor.to_owned(),
        action: "ca.hierarchy_generated".to_owned(),
        subject: issuing.id().to_owned(),
        details: serde_json::json!({
            "root": display_name(hierarchy.root().x509().subject_name()),
            "issuing": display_name(issuing.certificate().x509().subject_name()),
            "issuing_key_type": issuing.key_type().to_string(),
            "ocsp_key_type": hierarchy.ocsp_responder().key_type().to_string(),
        }),
    };
    store.write(|tx| tx.append_audit(&entry))?;
    Ok(())
}

/// One step of the key ceremony (`root.generated`, `root.issuing_signed`,
/// `ca.issuing_requested`, `ca.issuing_installed`, `ca.ocsp_responder_generated`,
/// `ca.development_root`), recorded as done by `actor` with what the operators compare
/// (names, fingerprints, where the key lives; never a key or a PIN).
pub fn record_ceremony(
    store: &Store,
    action: &str,
    subject: &str,
    details: serde_json::Value,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), IssuerError> {
    let entry = AuditEntry {
        at: db_time(now),
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject: subject.to_owned(),
        details,
    };
    store.write(|tx| tx.append_audit(&entry))?;
    Ok(())
}
