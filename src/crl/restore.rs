//! What a restored database owes relying parties: the CRLs already published (read from the
//! CDN or any instance) are verified against the CA certificates, every revocation they list
//! that the database lacks is applied again (audited, as a revocation), and the published CRLs
//! are stored so that the next CRL number is above every published one.
//!
//! Owns: reading and verifying published CRLs (`PublishedCrl`), the re-application of their
//! revocations and the `restore.*` audit entries. Must never: let a certificate a published CRL
//! lists as revoked answer `good` again, lower a CRL number, or accept a CRL that the issuing
//! CA (or, for the root's CRL, the root) did not sign.
//!
//! A certificate a published CRL lists but the database does not know (issued after the
//! backup) cannot be put back: its row, TBS and holder are lost. Its revocation is kept by
//! serial (`store::RevokedSerial`, audited as `restore.revoked_serial_recorded`): every CRL
//! lists it and OCSP answers `revoked` for it, as for any revoked certificate. The same holds
//! for a serial the database holds only reserved (never signed there): a published CRL proves
//! it was signed.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use der::Decode;
use x509_cert::crl::CertificateList;

use super::root::ROOT_ID;
use crate::ca::{Hierarchy, Serial};
use crate::store::{
    db_time, AuditEntry, BlockedKey, CertificateStatus, RevokedSerial, Store, StoreError, StoredCrl,
};
use crate::vocab::RevocationReason;

const OID_CRL_NUMBER: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.5.29.20");
const OID_DELTA_CRL_INDICATOR: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.5.29.27");
const OID_CRL_REASON: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.5.29.21");
const OID_INVALIDITY_DATE: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.5.29.24");
/// CRLReason removeFromCRL (a delta CRL's release of a hold).
const REMOVE_FROM_CRL: u8 = 8;

/// Why published CRLs were refused or could not be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// Not a CRL, or a CRL without what an issuer's CRL carries.
    #[error("{file}: not a usable CRL: {message}")]
    Malformed {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// Signed by neither the issuing CA nor the root of this hierarchy.
    #[error("{0}: not signed by this hierarchy's issuing CA or root")]
    NotOurs(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One revocation a published CRL lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedRevocation {
    /// Serial, normalised.
    pub serial: Serial,
    /// revocationDate.
    pub revoked_at: NaiveDateTime,
    /// The reason (`unspecified` when the entry carries none).
    pub reason: RevocationReason,
    /// invalidityDate, if the entry carries one.
    pub invalidity_date: Option<NaiveDateTime>,
}

/// A published CRL, verified against this hierarchy.
#[derive(Debug, Clone)]
pub struct PublishedCrl {
    /// The file it was read from (for messages).
    pub file: String,
    /// Whose CRL: the issuing CA's id, or `root`.
    pub issuer_id: String,
    /// CRL number.
    pub number: i64,
    /// A delta CRL?
    pub is_delta: bool,
    /// For a delta: its base CRL number.
    pub base_number: Option<i64>,
    /// thisUpdate.
    pub this_update: NaiveDateTime,
    /// nextUpdate.
    pub next_update: NaiveDateTime,
    /// The revocations it lists.
    pub revoked: Vec<PublishedRevocation>,
    /// Serials a delta lists as removed from the CRL (holds released).
    pub removed: Vec<Serial>,
    /// The DER.
    pub der: Vec<u8>,
}

/// What [`reapply`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Reapplied {
    /// Serials revoked again, as the published CRLs list them.
    pub revoked: Vec<String>,
    /// Serials the published CRLs list that the database does not know (or holds only
    /// reserved, never signed there), recorded (or a hold made final) by serial only.
    pub recorded_by_serial: Vec<String>,
    /// Serials revoked in the database already.
    pub already_revoked: usize,
    /// Published CRLs stored, as `issuer:number`.
    pub crls_stored: Vec<String>,
    /// Every issuer's highest published CRL number.
    pub published_numbers: BTreeMap<String, i64>,
}

fn time(t: &x509_cert::time::Time) -> NaiveDateTime {
    DateTime::<Utc>::from_timestamp(
        i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(0),
        0,
    )
    .unwrap_or_default()
    .naive_utc()
}

fn small_int(bytes: &[u8]) -> Option<i64> {
    let bytes = match bytes {
        [0, rest @ ..] => rest,
        all => all,
    };
    (bytes.len() <= 7).then(|| bytes.iter().fold(0i64, |acc, b| (acc << 8) | i64::from(*b)))
}

fn reason_of(code: u8) -> Option<RevocationReason> {
    Some(match code {
        0 => RevocationReason::Unspecified,
        1 => RevocationReason::KeyCompromise,
        3 => RevocationReason::AffiliationChanged,
        4 => RevocationReason::Superseded,
        5 => RevocationReason::CessationOfOperation,
        6 => RevocationReason::CertificateHold,
        9 => RevocationReason::PrivilegeWithdrawn,
        _ => return None,
    })
}

/// Read `bytes` (DER or PEM) from `file` and verify it: signed by the issuing CA of
/// `hierarchy` (under its name) or by the root.
pub fn verify(
    hierarchy: &Hierarchy,
    file: &str,
    bytes: &[u8],
) -> Result<PublishedCrl, RestoreError> {
    let malformed = |message: String| RestoreError::Malformed {
        file: file.to_owned(),
        message,
    };
    let crl = openssl::x509::X509Crl::from_der(bytes)
        .or_else(|_| openssl::x509::X509Crl::from_pem(bytes))
        .map_err(|_| malformed("neither DER nor PEM".to_owned()))?;
    let der = crl.to_der().map_err(|e| malformed(e.to_string()))?;
    let parsed = CertificateList::from_der(&der).map_err(|e| malformed(e.to_string()))?;
    let issuing = hierarchy.issuing();
    let candidates = [
        (issuing.id(), issuing.certificate()),
        (ROOT_ID, hierarchy.root()),
    ];
    let mut issuer_id = None;
    for (id, ca_cert) in candidates {
        let cert = x509_cert::Certificate::from_der(ca_cert.der())
            .map_err(|e| malformed(e.to_string()))?;
        if parsed.tbs_cert_list.issuer == cert.tbs_certificate.subject && ca_cert.signed_crl(&der) {
            issuer_id = Some(id.to_owned());
            break;
        }
    }
    let issuer_id = issuer_id.ok_or_else(|| RestoreError::NotOurs(file.to_owned()))?;
    let extensions = parsed.tbs_cert_list.crl_extensions.iter().flatten();
    let mut number = None;
    let mut base_number = None;
    for e in extensions {
        if e.extn_id == OID_CRL_NUMBER {
            number = x509_cert::ext::pkix::CrlNumber::from_der(e.extn_value.as_bytes())
                .ok()
                .and_then(|n| small_int(n.0.as_bytes()));
        } else if e.extn_id == OID_DELTA_CRL_INDICATOR {
            base_number = x509_cert::ext::pkix::BaseCrlNumber::from_der(e.extn_value.as_bytes())
                .ok()
                .and_then(|n| small_int(n.0.as_bytes()));
            if base_number.is_none() {
                return Err(malformed("unreadable deltaCRLIndicator".to_owned()));
            }
        }
    }
    let number = number.ok_or_else(|| malformed("no CRL number".to_owned()))?;
    let next_update = parsed
        .tbs_cert_list
        .next_update
        .as_ref()
        .map(time)
        .ok_or_else(|| malformed("no nextUpdate".to_owned()))?;
    let mut revoked = Vec::new();
    let mut removed = Vec::new();
    for entry in parsed.tbs_cert_list.revoked_certificates.iter().flatten() {
        let serial = Serial::parse(&hex::encode(entry.serial_number.as_bytes()))
            .map_err(|e| malformed(format!("entry serial: {e}")))?;
        let mut code = None;
        let mut invalidity_date = None;
        for e in entry.crl_entry_extensions.iter().flatten() {
            if e.extn_id == OID_CRL_REASON {
                // CRLReason ::= ENUMERATED: tag, length 1, the value.
                code = match e.extn_value.as_bytes() {
                    [0x0a, 1, value] => Some(*value),
                    _ => return Err(malformed(format!("{serial}: unreadable reasonCode"))),
                };
            } else if e.extn_id == OID_INVALIDITY_DATE {
                let t = der::asn1::GeneralizedTime::from_der(e.extn_value.as_bytes())
                    .map_err(|_| malformed(format!("{serial}: unreadable invalidityDate")))?;
                invalidity_date = Some(time(&x509_cert::time::Time::GeneralTime(t)));
            }
        }
        if code == Some(REMOVE_FROM_CRL) {
            removed.push(serial);
            continue;
        }
        let reason = reason_of(code.unwrap_or(0))
            .ok_or_else(|| malformed(format!("{serial}: reason code {code:?}")))?;
        revoked.push(PublishedRevocation {
            serial,
            revoked_at: time(&entry.revocation_date),
            reason,
            invalidity_date,
        });
    }
    Ok(PublishedCrl {
        file: file.to_owned(),
        issuer_id,
        number,
        is_delta: base_number.is_some(),
        base_number,
        this_update: time(&parsed.tbs_cert_list.this_update),
        next_update,
        revoked,
        removed,
        der,
    })
}

/// A revocation as the newest published CRL listing it gives it.
#[derive(Debug, Clone)]
struct Newest {
    /// The issuing CA whose CRL lists it.
    issuer_id: String,
    /// That CRL's number.
    crl_number: i64,
    /// The entry.
    revocation: PublishedRevocation,
}

/// The revocations of the issuing CA's published CRLs, newest state per serial: CRLs are read
/// in number order and a later entry (a hold made final, a release) replaces an earlier one.
fn newest_revocations(crls: &[PublishedCrl], root: &str) -> BTreeMap<String, Newest> {
    let mut ordered: Vec<&PublishedCrl> = crls.iter().filter(|c| c.issuer_id != root).collect();
    ordered.sort_by_key(|c| c.number);
    let mut state = BTreeMap::new();
    for crl in ordered {
        for r in &crl.revoked {
            state.insert(
                r.serial.as_str().to_owned(),
                Newest {
                    issuer_id: crl.issuer_id.clone(),
                    crl_number: crl.number,
                    revocation: r.clone(),
                },
            );
        }
        for s in &crl.removed {
            state.remove(s.as_str());
        }
    }
    state
}

/// Record the revocation `newest` of `serial`, whose certificate the database lacks, by serial
/// (a recorded hold made final by a newer CRL), audited by `actor`. Returns whether anything
/// changed.
fn record_by_serial(
    tx: &mut crate::store::Tx<'_>,
    serial: &str,
    newest: &Newest,
    actor: &str,
    at: NaiveDateTime,
) -> Result<bool, StoreError> {
    let r = &newest.revocation;
    let recorded = tx.revoked_serial(&newest.issuer_id, serial)?;
    let hold_made_final = match &recorded {
        None => false,
        Some(row)
            if row.reason == RevocationReason::CertificateHold.as_str()
                && r.reason != RevocationReason::CertificateHold =>
        {
            true
        }
        Some(_) => return Ok(false),
    };
    let row = RevokedSerial {
        issuer_id: newest.issuer_id.clone(),
        serial: serial.to_owned(),
        revoked_at: r.revoked_at,
        reason: r.reason.as_str().to_owned(),
        invalidity_date: r.invalidity_date.filter(|d| *d <= r.revoked_at),
        source: format!("published CRL {}", newest.crl_number),
        recorded_at: at,
        revocation_seq: tx.next_revocation_seq()?,
    };
    let changed = if hold_made_final {
        tx.finalise_serial_hold(&row)?
    } else {
        tx.record_revoked_serial(&row)?
    };
    if !changed {
        return Ok(false);
    }
    tx.append_audit(&AuditEntry {
        at,
        actor: actor.to_owned(),
        action: "restore.revoked_serial_recorded".to_owned(),
        subject: serial.to_owned(),
        details: serde_json::json!({
            "reason": row.reason,
            "revoked_at": row.revoked_at.and_utc().to_rfc3339(),
            "invalidity_date": row.invalidity_date.map(|d| d.and_utc().to_rfc3339()),
            "issuer": row.issuer_id,
            "revocation_seq": row.revocation_seq,
            "restored_from": row.source,
            "hold_made_final": hold_made_final,
            "note": "no certificate with this serial in the database (issued after the backup): \
                     its revocation is kept by serial",
        }),
    })?;
    Ok(true)
}

/// Apply every revocation that `crls` (verified by [`verify`]) list and `store` lacks, each in
/// its own transaction with a `certificate.revoked` audit entry by `actor` (or, for a serial
/// without a signed certificate in the database, recorded by serial with a
/// `restore.revoked_serial_recorded` entry); store the published CRLs the database does not
/// hold (so the next number is above them); and record `restore.crls_applied`.
///
/// A certificate on hold in the database takes the final reason a published CRL gives it (a
/// release and a revocation after the backup), and stays on hold when a published CRL no longer
/// lists it (a release after the backup): kept revoked is the side that cannot mislead a
/// relying party.
pub fn reapply(
    store: &Store,
    crls: &[PublishedCrl],
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Reapplied, RestoreError> {
    let at = db_time(now);
    let mut done = Reapplied::default();
    for crl in crls {
        let n = done
            .published_numbers
            .entry(crl.issuer_id.clone())
            .or_insert(crl.number);
        *n = (*n).max(crl.number);
    }
    for (serial, newest) in newest_revocations(crls, ROOT_ID) {
        let r = &newest.revocation;
        let outcome = store.write(|tx| -> Result<Option<bool>, StoreError> {
            let Some(cert) = tx.certificate(&serial)? else {
                return Ok(None);
            };
            let on_hold = cert.revocation_reason.as_deref()
                == Some(RevocationReason::CertificateHold.as_str());
            let hold_made_final = match cert.status {
                CertificateStatus::Issued => false,
                // Released and revoked for good after the backup.
                CertificateStatus::Revoked
                    if on_hold && r.reason != RevocationReason::CertificateHold =>
                {
                    true
                }
                CertificateStatus::Revoked => return Ok(Some(false)),
                // Reserved and never signed here, yet a published CRL lists it: signed after
                // the backup. Kept by serial, like a certificate the database lacks.
                CertificateStatus::Reserved => return Ok(None),
            };
            let seq = tx.next_revocation_seq()?;
            let invalidity = r.invalidity_date.filter(|d| *d <= r.revoked_at);
            let reason = r.reason.as_str();
            let changed = if hold_made_final {
                tx.finalise_hold(&serial, reason, r.revoked_at, invalidity, seq)?
            } else {
                tx.revoke_certificate(&serial, reason, r.revoked_at, invalidity, seq)?
            };
            if !changed {
                return Ok(Some(false));
            }
            if r.reason == RevocationReason::KeyCompromise {
                tx.block_key(&BlockedKey {
                    spki_sha256: cert.spki_sha256.clone(),
                    reason: r.reason.as_str().to_owned(),
                    serial: Some(serial.clone()),
                    created_at: at,
                })?;
            }
            tx.append_audit(&AuditEntry {
                at,
                actor: actor.to_owned(),
                action: "certificate.revoked".to_owned(),
                subject: serial.clone(),
                details: serde_json::json!({
                    "reason": r.reason.as_str(),
                    "revoked_at": r.revoked_at.and_utc().to_rfc3339(),
                    "invalidity_date": invalidity.map(|d| d.and_utc().to_rfc3339()),
                    "issuer": cert.issuer_id,
                    "revocation_seq": seq,
                    "restored_from": "published CRL",
                    "hold_made_final": hold_made_final,
                }),
            })?;
            Ok(Some(true))
        })?;
        match outcome {
            None => {
                let changed =
                    store.write(|tx| record_by_serial(tx, &serial, &newest, actor, at))?;
                if changed {
                    done.recorded_by_serial.push(serial);
                } else {
                    done.already_revoked += 1;
                }
            }
            Some(true) => done.revoked.push(serial),
            Some(false) => done.already_revoked += 1,
        }
    }
    store.write(|tx| -> Result<(), StoreError> {
        for crl in crls {
            tx.lock_crl_issuer(&crl.issuer_id)?;
            if tx.crl(&crl.issuer_id, crl.number)?.is_some() {
                continue;
            }
            // The published CRL, as relying parties hold it. It covers no revocation-counter
            // value of this database (0): the next CRL made here is due at once and lists
            // everything the database holds.
            tx.insert_crl(&StoredCrl {
                issuer_id: crl.issuer_id.clone(),
                crl_number: crl.number,
                is_delta: crl.is_delta,
                base_crl_number: crl.base_number,
                this_update: crl.this_update,
                next_update: crl.next_update,
                der: crl.der.clone(),
                created_at: at,
                covered_seq: 0,
            })?;
            done.crls_stored
                .push(format!("{}:{}", crl.issuer_id, crl.number));
        }
        tx.append_audit(&AuditEntry {
            at,
            actor: actor.to_owned(),
            action: "restore.crls_applied".to_owned(),
            subject: "published CRLs".to_owned(),
            details: serde_json::json!({
                "crls": crls.iter().map(|c| serde_json::json!({
                    "issuer": c.issuer_id,
                    "crl_number": c.number,
                    "delta": c.is_delta,
                    "this_update": c.this_update.and_utc().to_rfc3339(),
                })).collect::<Vec<_>>(),
                "revoked_again": done.revoked.len(),
                "already_revoked": done.already_revoked,
                "recorded_by_serial": done.recorded_by_serial.len(),
            }),
        })?;
        Ok(())
    })?;
    Ok(done)
}

/// One audit entry of the restore, in a transaction of its own.
fn record(
    store: &Store,
    actor: &str,
    now: DateTime<Utc>,
    action: &str,
    subject: &str,
    details: serde_json::Value,
) -> Result<(), RestoreError> {
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

/// Record that the operator `actor` restored without published CRLs, accepting that
/// revocations made after the backup are lost.
pub fn record_revocation_loss(
    store: &Store,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), RestoreError> {
    record(
        store,
        actor,
        now,
        "restore.revocation_loss_accepted",
        "published CRLs",
        serde_json::json!({
            "note": "restored without published CRLs: revocations made after the backup are not applied"
        }),
    )
}

/// Record that the backup described by `manifest` was restored into this database by `actor`.
pub fn record_restored(
    store: &Store,
    manifest: serde_json::Value,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), RestoreError> {
    record(
        store,
        actor,
        now,
        "restore.completed",
        "database",
        serde_json::json!({ "backup": manifest }),
    )
}

/// Serials that `crls` list as revoked and `store` does not hold as revoked (for `tamga backup
/// --verify`): known certificates still `issued`, and serials it neither knows nor holds a
/// revocation by serial for.
pub fn missing_revocations(
    store: &Store,
    crls: &[PublishedCrl],
) -> Result<Vec<String>, RestoreError> {
    let mut missing = Vec::new();
    for (serial, newest) in newest_revocations(crls, ROOT_ID) {
        let held = store.read(|tx| -> Result<bool, StoreError> {
            Ok(match tx.certificate(&serial)? {
                Some(c) if c.status == CertificateStatus::Revoked => true,
                Some(c) if c.status == CertificateStatus::Issued => false,
                _ => tx.revoked_serial(&newest.issuer_id, &serial)?.is_some(),
            })
        })?;
        if !held {
            missing.push(serial);
        }
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn revocation(serial: &str, reason: RevocationReason) -> PublishedRevocation {
        PublishedRevocation {
            serial: Serial::parse(serial).unwrap(),
            revoked_at: NaiveDateTime::default(),
            reason,
            invalidity_date: None,
        }
    }

    fn crl(number: i64, revoked: Vec<PublishedRevocation>, removed: &[&str]) -> PublishedCrl {
        PublishedCrl {
            file: format!("{number}.crl"),
            issuer_id: "nca_rsa_dev".to_owned(),
            number,
            is_delta: false,
            base_number: None,
            this_update: NaiveDateTime::default(),
            next_update: NaiveDateTime::default(),
            revoked,
            removed: removed.iter().map(|s| Serial::parse(s).unwrap()).collect(),
            der: Vec::new(),
        }
    }

    #[test]
    fn the_newest_crl_decides_each_serials_state_whatever_the_order_given() {
        let full = crl(
            4,
            vec![
                revocation("0A", RevocationReason::CertificateHold),
                revocation("0B", RevocationReason::KeyCompromise),
                revocation("0C", RevocationReason::CertificateHold),
            ],
            &[],
        );
        let delta = crl(
            5,
            vec![revocation("0A", RevocationReason::Superseded)],
            &["0C"],
        );
        let state = newest_revocations(&[delta, full], ROOT_ID);
        let reasons: Vec<(&str, &str)> = state
            .iter()
            .map(|(s, n)| (s.as_str(), n.revocation.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [("0A", "superseded"), ("0B", "keyCompromise")],
            "the hold made final, the other kept, the released one left out"
        );
    }
}
