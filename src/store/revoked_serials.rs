//! The `revoked_serials` table: revocations known only by serial — a published CRL lists the
//! serial as revoked, but the database holds no certificate for it (issued after the backup a
//! restore came from). Each takes a revocation-counter value like any revocation, so delta
//! CRLs and OCSP caches learn of it; CRL pages list these entries beside the revoked
//! certificates (see `crls`). Must never: decide that a serial is revoked (the `crl::restore`
//! authority does, from verified CRLs), or drop an entry: the certificate's expiry is unknown.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::OptionalExtension;

use super::rows::touched_one;
use super::schema::*;
use super::{RevocationEntry, StoreError, Tx};

/// A revocation known only by its serial.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = revoked_serials)]
pub struct RevokedSerial {
    /// The issuing CA that signed the certificate (and the CRL listing it).
    pub issuer_id: String,
    /// Serial, upper-case hex.
    pub serial: String,
    /// revocationDate, as published.
    pub revoked_at: NaiveDateTime,
    /// RFC 5280 reason name.
    pub reason: String,
    /// invalidityDate, as published, if any.
    pub invalidity_date: Option<NaiveDateTime>,
    /// Where the revocation was learnt (e.g. `published CRL 12`).
    pub source: String,
    /// When it was recorded here.
    pub recorded_at: NaiveDateTime,
    /// Its revocation-counter value.
    pub revocation_seq: i64,
}

impl RevokedSerial {
    fn entry(self) -> RevocationEntry {
        RevocationEntry {
            serial: self.serial,
            status: "revoked".to_owned(),
            revoked_at: Some(self.revoked_at),
            reason: Some(self.reason),
            invalidity_date: self.invalidity_date,
            held_at: None,
        }
    }
}

fn of_issuer<'a>(
    issuer_id: &'a str,
    after: &'a str,
    limit: i64,
) -> revoked_serials::BoxedQuery<'a, super::MultiBackend> {
    revoked_serials::table
        .filter(revoked_serials::issuer_id.eq(issuer_id))
        .filter(revoked_serials::serial.gt(after))
        .order(revoked_serials::serial.asc())
        .limit(limit)
        .into_boxed()
}

impl Tx<'_> {
    /// Record a revocation known only by serial. Returns `false` (and changes nothing) when
    /// the serial is recorded already.
    pub fn record_revoked_serial(&mut self, row: &RevokedSerial) -> Result<bool, StoreError> {
        if self.revoked_serial(&row.issuer_id, &row.serial)?.is_some() {
            return Ok(false);
        }
        diesel::insert_into(revoked_serials::table)
            .values(row)
            .execute(self.conn)?;
        Ok(true)
    }

    /// The revocation of `serial` by `issuer_id`, if it is known only by serial.
    pub fn revoked_serial(
        &mut self,
        issuer_id: &str,
        serial: &str,
    ) -> Result<Option<RevokedSerial>, StoreError> {
        Ok(revoked_serials::table
            .find((issuer_id, serial))
            .select(RevokedSerial::as_select())
            .first(self.conn)
            .optional()?)
    }

    /// Make a `certificateHold` known only by serial final, as a newer published CRL gives it,
    /// with a new counter value. Returns `false` when the serial is not recorded on hold.
    pub fn finalise_serial_hold(&mut self, row: &RevokedSerial) -> Result<bool, StoreError> {
        let updated = diesel::update(
            revoked_serials::table
                .find((&row.issuer_id, &row.serial))
                .filter(revoked_serials::reason.eq("certificateHold")),
        )
        .set((
            revoked_serials::revoked_at.eq(row.revoked_at),
            revoked_serials::reason.eq(&row.reason),
            revoked_serials::invalidity_date.eq(row.invalidity_date),
            revoked_serials::source.eq(&row.source),
            revoked_serials::recorded_at.eq(row.recorded_at),
            revoked_serials::revocation_seq.eq(row.revocation_seq),
        ))
        .execute(self.conn);
        touched_one(updated)
    }

    /// Revocations of `issuer_id` known only by serial, at counter values in
    /// `(after_seq, max_seq]`, serial after `after`, in serial order, at most `limit`, as CRL
    /// entries.
    pub fn revoked_serials_page(
        &mut self,
        issuer_id: &str,
        after: &str,
        after_seq: i64,
        max_seq: i64,
        limit: i64,
    ) -> Result<Vec<RevocationEntry>, StoreError> {
        let rows: Vec<RevokedSerial> = of_issuer(issuer_id, after, limit)
            .filter(revoked_serials::revocation_seq.gt(after_seq))
            .filter(revoked_serials::revocation_seq.le(max_seq))
            .select(RevokedSerial::as_select())
            .load(self.conn)?;
        Ok(rows.into_iter().map(RevokedSerial::entry).collect())
    }

    /// Serials known only by revocation, recorded at counter values in `(after, upto]`.
    pub fn revoked_serials_changed(
        &mut self,
        after: i64,
        upto: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(revoked_serials::table
            .filter(revoked_serials::revocation_seq.gt(after))
            .filter(revoked_serials::revocation_seq.le(upto))
            .select(revoked_serials::serial)
            .load(self.conn)?)
    }
}
