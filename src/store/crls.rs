//! The `crls` table and the pages of revoked certificates a CRL lists (with the revocations
//! known only by serial, from `revoked_serials`): stored CRLs, their numbers, and the
//! per-issuer lock that keeps CRL numbers in order across instances. Must
//! never: build or sign a CRL (the `crl` module does).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::OptionalExtension;

use super::schema::*;
use super::{CertificateStatus, StoreError, Tx};

/// A published CRL (full or delta).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = crls)]
pub struct StoredCrl {
    /// Issuing CA id.
    pub issuer_id: String,
    /// CRL number (shared sequence for full and delta CRLs).
    pub crl_number: i64,
    /// Delta CRL?
    pub is_delta: bool,
    /// For a delta: the number of its base CRL.
    pub base_crl_number: Option<i64>,
    /// thisUpdate.
    pub this_update: NaiveDateTime,
    /// nextUpdate.
    pub next_update: NaiveDateTime,
    /// The signed CRL.
    pub der: Vec<u8>,
    /// Stored at.
    pub created_at: NaiveDateTime,
    /// Highest revocation-counter value this CRL reflects.
    pub covered_seq: i64,
}

/// A CRL without its bytes: enough to decide what to publish or serve.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct CrlInfo {
    /// CRL number.
    pub crl_number: i64,
    /// thisUpdate.
    pub this_update: NaiveDateTime,
    /// nextUpdate.
    pub next_update: NaiveDateTime,
    /// Highest revocation-counter value it reflects.
    pub covered_seq: i64,
}

/// A certificate's revocation state as a CRL lists it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct RevocationEntry {
    /// Serial, upper-case hex.
    pub serial: String,
    /// `revoked`, or `issued` for a certificate released from hold.
    pub status: String,
    /// When it was revoked.
    pub revoked_at: Option<NaiveDateTime>,
    /// RFC 5280 reason name.
    pub reason: Option<String>,
    /// Invalidity date.
    pub invalidity_date: Option<NaiveDateTime>,
    /// For a certificate released from hold: when the hold began (its revocation date then),
    /// which its `removeFromCRL` entry carries.
    pub held_at: Option<NaiveDateTime>,
}

#[allow(clippy::type_complexity)]
fn revocation_columns() -> (
    certificates::serial,
    certificates::status,
    certificates::revoked_at,
    certificates::revocation_reason,
    certificates::invalidity_date,
    certificates::held_at,
) {
    (
        certificates::serial,
        certificates::status,
        certificates::revoked_at,
        certificates::revocation_reason,
        certificates::invalidity_date,
        certificates::held_at,
    )
}

/// The frame of every CRL page: certificates of `issuer_id` still valid at `valid_at`, with
/// serial after `after`, in serial order, at most `limit`.
fn crl_page<'a>(
    issuer_id: &'a str,
    after: &'a str,
    valid_at: NaiveDateTime,
    limit: i64,
) -> certificates::BoxedQuery<'a, super::MultiBackend> {
    certificates::table
        .filter(certificates::issuer_id.eq(issuer_id))
        .filter(certificates::serial.gt(after))
        .filter(certificates::not_after.ge(valid_at))
        .order(certificates::serial.asc())
        .limit(limit)
        .into_boxed()
}

/// One CRL page from two pages in serial order (certificates, and revocations known only by
/// serial): the first `limit` entries of both. Every entry up to the last one kept is in one of
/// the two pages, so the next page starts after it. A serial in both (never expected: a
/// revocation is recorded by serial only when no certificate has it) is listed once, as the
/// certificate's.
fn merged(
    certificates: Vec<RevocationEntry>,
    by_serial: Vec<RevocationEntry>,
    limit: i64,
) -> Vec<RevocationEntry> {
    if by_serial.is_empty() {
        return certificates;
    }
    let mut all = certificates;
    all.extend(by_serial);
    // Stable: of two entries for one serial, the certificate's comes first and stays.
    all.sort_by(|a, b| a.serial.cmp(&b.serial));
    all.dedup_by(|later, earlier| later.serial == earlier.serial);
    all.truncate(usize::try_from(limit).unwrap_or(0));
    all
}

/// An issuer's full (or delta) CRLs, newest first.
fn newest_first(issuer_id: &str, delta: bool) -> crls::BoxedQuery<'_, super::MultiBackend> {
    crls::table
        .filter(crls::issuer_id.eq(issuer_id))
        .filter(crls::is_delta.eq(delta))
        .order(crls::crl_number.desc())
        .into_boxed()
}

impl Tx<'_> {
    /// Store a signed CRL.
    pub fn insert_crl(&mut self, crl: &StoredCrl) -> Result<(), StoreError> {
        diesel::insert_into(crls::table)
            .values(crl)
            .execute(self.conn)?;
        Ok(())
    }

    /// The newest full (or delta) CRL of an issuer.
    pub fn latest_crl(
        &mut self,
        issuer_id: &str,
        delta: bool,
    ) -> Result<Option<StoredCrl>, StoreError> {
        Ok(newest_first(issuer_id, delta)
            .select(StoredCrl::as_select())
            .first(self.conn)
            .optional()?)
    }

    /// The newest full (or delta) CRL's numbers and times, without its bytes.
    pub fn latest_crl_info(
        &mut self,
        issuer_id: &str,
        delta: bool,
    ) -> Result<Option<CrlInfo>, StoreError> {
        Ok(newest_first(issuer_id, delta)
            .select((
                crls::crl_number,
                crls::this_update,
                crls::next_update,
                crls::covered_seq,
            ))
            .first(self.conn)
            .optional()?)
    }

    /// Serialise CRL production for one issuer across instances (PostgreSQL advisory lock;
    /// on SQLite the write transaction already excludes every other writer).
    pub fn lock_crl_issuer(&mut self, issuer_id: &str) -> Result<(), StoreError> {
        self.lock_named(&format!("tamga-crl:{issuer_id}"))
    }

    /// The stored CRL `number` of an issuer (full or delta), if any.
    pub fn crl(&mut self, issuer_id: &str, number: i64) -> Result<Option<StoredCrl>, StoreError> {
        Ok(crls::table
            .find((issuer_id, number))
            .select(StoredCrl::as_select())
            .first(self.conn)
            .optional()?)
    }

    /// The highest CRL number used for an issuer (full and delta share the sequence).
    pub fn last_crl_number(&mut self, issuer_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(crls::table
            .filter(crls::issuer_id.eq(issuer_id))
            .select(diesel::dsl::max(crls::crl_number))
            .first(self.conn)?)
    }

    /// Every CRL of an issuer in the order they were stored: (number, is_delta).
    pub fn crl_history(
        &mut self,
        issuer_id: &str,
    ) -> Result<Vec<(i64, bool, NaiveDateTime)>, StoreError> {
        Ok(crls::table
            .filter(crls::issuer_id.eq(issuer_id))
            .order(crls::created_at.asc())
            .then_order_by(crls::crl_number.asc())
            .select((crls::crl_number, crls::is_delta, crls::created_at))
            .load(self.conn)?)
    }

    /// One page of a full CRL: revoked certificates of `issuer_id` with serial after `after`,
    /// revoked at counter values up to `max_seq`, still valid at `valid_at`, in serial order,
    /// and among them the revocations known only by serial (whatever `valid_at`: their
    /// certificate's expiry is unknown).
    pub fn revoked_page(
        &mut self,
        issuer_id: &str,
        after: &str,
        max_seq: i64,
        valid_at: NaiveDateTime,
        limit: i64,
    ) -> Result<Vec<RevocationEntry>, StoreError> {
        let page = crl_page(issuer_id, after, valid_at, limit)
            .filter(certificates::status.eq(CertificateStatus::Revoked.as_str()))
            .filter(certificates::revocation_seq.le(max_seq));
        let certificates = page.select(revocation_columns()).load(self.conn)?;
        let by_serial = self.revoked_serials_page(issuer_id, after, i64::MIN, max_seq, limit)?;
        Ok(merged(certificates, by_serial, limit))
    }

    /// One page of a delta CRL: certificates whose revocation state changed at counter values
    /// in `(after_seq, max_seq]`, still valid at `valid_at`, and revocations known only by
    /// serial recorded at such values, in serial order after `after`.
    pub fn changed_page(
        &mut self,
        issuer_id: &str,
        after: &str,
        after_seq: i64,
        max_seq: i64,
        valid_at: NaiveDateTime,
        limit: i64,
    ) -> Result<Vec<RevocationEntry>, StoreError> {
        let page = crl_page(issuer_id, after, valid_at, limit)
            .filter(certificates::revocation_seq.gt(after_seq))
            .filter(certificates::revocation_seq.le(max_seq));
        let certificates = page.select(revocation_columns()).load(self.conn)?;
        let by_serial = self.revoked_serials_page(issuer_id, after, after_seq, max_seq, limit)?;
        Ok(merged(certificates, by_serial, limit))
    }
}
