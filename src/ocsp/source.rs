//! Where OCSP learns what it answers: a certificate's typed status (a revocation known only by
//! serial, recorded by a restore, answers `revoked` too) and the changes since the cache last
//! looked, through the one narrow [`StatusSource`] trait (the store implements it;
//! a cache or a replica could stand behind it). Must never: decide what a status means for a
//! response (the responder does), or write anything.

use chrono::NaiveDateTime;

use crate::store::{CertificateStatus, HeldRootResponse, Store, StoreError};
use crate::vocab::RevocationReason;

/// The state of one certificate, as the status source knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertState {
    /// Issued by this issuer, committed, not revoked.
    Good,
    /// Revoked.
    Revoked {
        /// When it was revoked.
        at: NaiveDateTime,
        /// Why, if a reason was given.
        reason: Option<RevocationReason>,
        /// When the key is known or suspected to have been compromised, if given.
        invalidity: Option<NaiveDateTime>,
    },
    /// Never issued by this issuer (or not yet committed).
    Unknown,
}

/// All OCSP reads: one certificate's state, and the revocation counter by which the response
/// cache learns what changed (see [`super::Responder::invalidate_changed`]).
pub trait StatusSource: Send + Sync {
    /// The state of `serial` (normalised upper-case hex) issued by `issuer_id`.
    fn status(&self, issuer_id: &str, serial: &str) -> Result<CertState, StoreError>;

    /// The revocation counter's committed value: every revocation state change up to it is
    /// visible.
    fn revocation_mark(&self) -> Result<i64, StoreError>;

    /// Serials whose revocation state changed at counter values in `(after, upto]`.
    fn changed_between(&self, after: i64, upto: i64) -> Result<Vec<String>, StoreError>;

    /// The root-signed response held for the CA certificate `serial` and CertID hash
    /// algorithm `hash_alg` (dotted OID), and whether the authority revoked that certificate.
    /// A source that holds none answers with neither.
    fn root_response(&self, serial: &str, hash_alg: &str) -> Result<HeldRootResponse, StoreError> {
        let _ = (serial, hash_alg);
        Ok(HeldRootResponse {
            response: None,
            revoked: false,
        })
    }
}

impl StatusSource for Store {
    /// A serial the certificates lack (or hold only reserved, never signed) is looked up among
    /// the revocations known only by serial, in the same read: a primary-key lookup, and only
    /// for answers that are never cached anyway (`unknown`); what it finds is `revoked`, which
    /// the responder caches like any other revocation.
    fn status(&self, issuer_id: &str, serial: &str) -> Result<CertState, StoreError> {
        self.read(|tx| {
            let state = tx.certificate_state(serial)?;
            Ok(match state {
                Some(s) if s.issuer_id != issuer_id => CertState::Unknown,
                Some(s) if s.status == CertificateStatus::Issued => CertState::Good,
                Some(s) if s.status == CertificateStatus::Revoked => CertState::Revoked {
                    at: s.revoked_at.unwrap_or_default(),
                    reason: s
                        .revocation_reason
                        .as_deref()
                        .and_then(RevocationReason::parse),
                    invalidity: s.invalidity_date,
                },
                _ => match tx.revoked_serial(issuer_id, serial)? {
                    Some(r) => CertState::Revoked {
                        at: r.revoked_at,
                        reason: RevocationReason::parse(&r.reason),
                        invalidity: r.invalidity_date,
                    },
                    None => CertState::Unknown,
                },
            })
        })
    }

    fn revocation_mark(&self) -> Result<i64, StoreError> {
        self.read(|tx| tx.current_revocation_seq())
    }

    fn changed_between(&self, after: i64, upto: i64) -> Result<Vec<String>, StoreError> {
        self.read(|tx| tx.serials_changed(after, upto))
    }

    fn root_response(&self, serial: &str, hash_alg: &str) -> Result<HeldRootResponse, StoreError> {
        self.read(|tx| tx.held_root_response(serial, hash_alg))
    }
}
