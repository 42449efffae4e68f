//! Revocation state: the revocation counter (`counters`), revoking, correcting and releasing
//! a certificate (a release keeps the hold's date in `held_at` for the delta CRL), what changed since a counter value, and the revoked CA certificates
//! (`authority_revocations`). Must never: decide whether a revocation is allowed (the RA and
//! the CLI's issuer revocation do).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::certificates::certificate_in;
use super::rows::touched_one;
use super::schema::*;
use super::{Certificate, CertificateStatus, RevocationEntry, StoreError, Tx};

impl Tx<'_> {
    /// Take the next value of the revocation counter. The counter row stays locked until the
    /// transaction ends, so values are taken in commit order.
    pub fn next_revocation_seq(&mut self) -> Result<i64, StoreError> {
        diesel::update(counters::table.find("revocation"))
            .set(counters::value.eq(counters::value + 1))
            .execute(self.conn)?;
        self.current_revocation_seq()
    }

    /// The revocation counter's committed value (every change up to it is committed).
    pub fn current_revocation_seq(&mut self) -> Result<i64, StoreError> {
        Ok(counters::table
            .find("revocation")
            .select(counters::value)
            .first(self.conn)?)
    }

    /// Mark an issued certificate revoked. Returns `false` when it was not in `issued` state.
    pub fn revoke_certificate(
        &mut self,
        serial: &str,
        reason: &str,
        revoked_at: NaiveDateTime,
        invalidity_date: Option<NaiveDateTime>,
        seq: i64,
    ) -> Result<bool, StoreError> {
        let updated = diesel::update(certificate_in(serial, CertificateStatus::Issued))
            .set((
                certificates::status.eq(CertificateStatus::Revoked.as_str()),
                certificates::revoked_at.eq(Some(revoked_at)),
                certificates::revocation_reason.eq(Some(reason)),
                certificates::invalidity_date.eq(invalidity_date),
                certificates::revocation_seq.eq(Some(seq)),
            ))
            .execute(self.conn);
        touched_one(updated)
    }

    /// Make a `certificateHold` final: the certificate keeps `revoked`, with `reason`, the
    /// revocation date and invalidity date a published CRL gives, and a new counter value.
    /// Returns `false` when the certificate is not on hold.
    pub fn finalise_hold(
        &mut self,
        serial: &str,
        reason: &str,
        revoked_at: NaiveDateTime,
        invalidity_date: Option<NaiveDateTime>,
        seq: i64,
    ) -> Result<bool, StoreError> {
        let updated = diesel::update(
            certificate_in(serial, CertificateStatus::Revoked)
                .filter(certificates::revocation_reason.eq("certificateHold")),
        )
        .set((
            certificates::revoked_at.eq(Some(revoked_at)),
            certificates::revocation_reason.eq(Some(reason)),
            certificates::invalidity_date.eq(invalidity_date),
            certificates::revocation_seq.eq(Some(seq)),
        ))
        .execute(self.conn);
        touched_one(updated)
    }

    /// Correct a revoked certificate's invalidity date, with a new revocation-counter value so
    /// that the next delta CRL and every OCSP cache take the change. Returns `false` when the
    /// certificate is not revoked.
    pub fn set_invalidity_date(
        &mut self,
        serial: &str,
        invalidity_date: Option<NaiveDateTime>,
        seq: i64,
    ) -> Result<bool, StoreError> {
        let updated = diesel::update(certificate_in(serial, CertificateStatus::Revoked))
            .set((
                certificates::invalidity_date.eq(invalidity_date),
                certificates::revocation_seq.eq(Some(seq)),
            ))
            .execute(self.conn);
        touched_one(updated)
    }

    /// Lift a `certificateHold`. Returns `false` when the certificate is not on hold.
    ///
    /// The hold's revocation date moves to `held_at` (SQL reads the row as it was before the
    /// update): the delta CRL's `removeFromCRL` entry carries it.
    pub fn release_certificate(&mut self, serial: &str, seq: i64) -> Result<bool, StoreError> {
        let updated = diesel::update(
            certificate_in(serial, CertificateStatus::Revoked)
                .filter(certificates::revocation_reason.eq("certificateHold")),
        )
        .set((
            certificates::status.eq(CertificateStatus::Issued.as_str()),
            certificates::held_at.eq(certificates::revoked_at),
            certificates::revoked_at.eq(None::<NaiveDateTime>),
            certificates::revocation_reason.eq(None::<String>),
            certificates::invalidity_date.eq(None::<NaiveDateTime>),
            certificates::revocation_seq.eq(Some(seq)),
        ))
        .execute(self.conn);
        touched_one(updated)
    }

    /// Revoked certificates of every issuer, expired ones included, in serial order after
    /// `after`: what `tamga crl check` reads.
    pub fn revoked_certificates_page(
        &mut self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<Certificate>, StoreError> {
        self.load_certificates(
            certificates::table
                .filter(certificates::status.eq(CertificateStatus::Revoked.as_str()))
                .filter(certificates::serial.gt(after))
                .order(certificates::serial.asc())
                .limit(limit)
                .into_boxed(),
        )
    }

    /// Serials whose revocation state changed at counter values in `(after, upto]`.
    /// Revocations known only by serial are among them.
    pub fn serials_changed(&mut self, after: i64, upto: i64) -> Result<Vec<String>, StoreError> {
        let mut serials: Vec<String> = certificates::table
            .filter(certificates::revocation_seq.gt(after))
            .filter(certificates::revocation_seq.le(upto))
            .select(certificates::serial)
            .load(self.conn)?;
        serials.extend(self.revoked_serials_changed(after, upto)?);
        Ok(serials)
    }

    /// Record the revocation of a CA certificate (for the root's CRL). Returns `false` if it
    /// was already revoked.
    pub fn revoke_authority(
        &mut self,
        serial: &str,
        subject: &str,
        reason: &str,
        at: NaiveDateTime,
    ) -> Result<bool, StoreError> {
        let exists: i64 = authority_revocations::table
            .filter(authority_revocations::serial.eq(serial))
            .count()
            .get_result(self.conn)?;
        if exists > 0 {
            return Ok(false);
        }
        diesel::insert_into(authority_revocations::table)
            .values((
                authority_revocations::serial.eq(serial),
                authority_revocations::subject.eq(subject),
                authority_revocations::revoked_at.eq(at),
                authority_revocations::reason.eq(reason),
            ))
            .execute(self.conn)?;
        Ok(true)
    }

    /// The revoked CA certificates, in serial order, as root-CRL entries.
    pub fn authority_revocations(&mut self) -> Result<Vec<RevocationEntry>, StoreError> {
        let rows: Vec<(String, NaiveDateTime, String)> = authority_revocations::table
            .order(authority_revocations::serial.asc())
            .select((
                authority_revocations::serial,
                authority_revocations::revoked_at,
                authority_revocations::reason,
            ))
            .load(self.conn)?;
        Ok(rows
            .into_iter()
            .map(|(serial, at, reason)| RevocationEntry {
                serial,
                status: "revoked".to_owned(),
                revoked_at: Some(at),
                reason: Some(reason),
                invalidity_date: None,
                held_at: None,
            })
            .collect())
    }
}
