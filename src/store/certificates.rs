//! The `certificates`, `blocked_keys` and `expiry_notices` tables: reserved, issued and
//! revoked certificates, keys that may never be certified again, and the expiry reminders
//! already queued. Must never: sign or decide (the CA does); revocation state changes are in
//! `revocations`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::OptionalExtension;

use super::rows::touched_one;
use super::schema::*;
use super::{DbConnection, StoreError, Tx};

pub use crate::vocab::CertificateKind;

text_enum!(
    /// Life of a certificate row.
    CertificateStatus, "certificates" {
        /// Serial reserved and TBS stored; not yet signed.
        Reserved = "reserved",
        /// Signed and valid (unless expired).
        Issued = "issued",
        /// Revoked (possibly on hold).
        Revoked = "revoked",
    }
);

/// A certificate the CA reserved, issued or revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// Serial number, upper-case hex without separators.
    pub serial: String,
    /// Issuing CA id.
    pub issuer_id: String,
    /// Application it was issued for.
    pub application_id: Option<String>,
    /// AUTH or SIGN.
    pub kind: CertificateKind,
    /// Holder's IIN.
    pub holder_iin: String,
    /// Start of validity (UTC).
    pub not_before: NaiveDateTime,
    /// End of validity (UTC).
    pub not_after: NaiveDateTime,
    /// The exact to-be-signed bytes, stored before signing.
    pub tbs_der: Vec<u8>,
    /// The signed certificate, once issued.
    pub der: Option<Vec<u8>>,
    /// SHA-256 of the SubjectPublicKeyInfo, hex: one holder per key.
    pub spki_sha256: String,
    /// Reserved, issued or revoked.
    pub status: CertificateStatus,
    /// When it was revoked.
    pub revoked_at: Option<NaiveDateTime>,
    /// RFC 5280 reason name.
    pub revocation_reason: Option<String>,
    /// Invalidity date given with the revocation.
    pub invalidity_date: Option<NaiveDateTime>,
    /// Row created (serial reserved).
    pub created_at: NaiveDateTime,
    /// Signed.
    pub issued_at: Option<NaiveDateTime>,
    /// Revocation-counter value of the last revocation or release (see `counters`).
    pub revocation_seq: Option<i64>,
}

// `None` is written as NULL, not DEFAULT (no nullable column has another default): the
// insert is then the same statement every time, and prepared once.
#[derive(Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = certificates, treat_none_as_default_value = false)]
struct CertificateRow {
    serial: String,
    issuer_id: String,
    application_id: Option<String>,
    kind: String,
    holder_iin: String,
    not_before: NaiveDateTime,
    not_after: NaiveDateTime,
    tbs_der: Vec<u8>,
    der: Option<Vec<u8>>,
    spki_sha256: String,
    status: String,
    revoked_at: Option<NaiveDateTime>,
    revocation_reason: Option<String>,
    invalidity_date: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    issued_at: Option<NaiveDateTime>,
    revocation_seq: Option<i64>,
}

impl From<&Certificate> for CertificateRow {
    fn from(c: &Certificate) -> Self {
        CertificateRow {
            serial: c.serial.clone(),
            issuer_id: c.issuer_id.clone(),
            application_id: c.application_id.clone(),
            kind: c.kind.as_str().to_owned(),
            holder_iin: c.holder_iin.clone(),
            not_before: c.not_before,
            not_after: c.not_after,
            tbs_der: c.tbs_der.clone(),
            der: c.der.clone(),
            spki_sha256: c.spki_sha256.clone(),
            status: c.status.as_str().to_owned(),
            revoked_at: c.revoked_at,
            revocation_reason: c.revocation_reason.clone(),
            invalidity_date: c.invalidity_date,
            created_at: c.created_at,
            issued_at: c.issued_at,
            revocation_seq: c.revocation_seq,
        }
    }
}

impl TryFrom<CertificateRow> for Certificate {
    type Error = StoreError;
    fn try_from(r: CertificateRow) -> Result<Self, StoreError> {
        Ok(Certificate {
            kind: super::rows::decode_text(
                "certificates",
                "CertificateKind",
                &r.kind,
                CertificateKind::parse,
            )?,
            status: CertificateStatus::decode(&r.status)?,
            serial: r.serial,
            issuer_id: r.issuer_id,
            application_id: r.application_id,
            holder_iin: r.holder_iin,
            not_before: r.not_before,
            not_after: r.not_after,
            tbs_der: r.tbs_der,
            der: r.der,
            spki_sha256: r.spki_sha256,
            revoked_at: r.revoked_at,
            revocation_reason: r.revocation_reason,
            invalidity_date: r.invalidity_date,
            created_at: r.created_at,
            issued_at: r.issued_at,
            revocation_seq: r.revocation_seq,
        })
    }
}

/// One certificate's revocation state, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateState {
    /// Issuing CA id.
    pub issuer_id: String,
    /// Reserved, issued or revoked.
    pub status: CertificateStatus,
    /// When it was revoked.
    pub revoked_at: Option<NaiveDateTime>,
    /// RFC 5280 reason name.
    pub revocation_reason: Option<String>,
    /// Invalidity date given with the revocation.
    pub invalidity_date: Option<NaiveDateTime>,
}

/// [`CertificateState`] as stored.
#[derive(Queryable)]
struct StateRow {
    issuer_id: String,
    status: String,
    revoked_at: Option<NaiveDateTime>,
    revocation_reason: Option<String>,
    invalidity_date: Option<NaiveDateTime>,
}

/// A public key that may never be certified again.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = blocked_keys)]
pub struct BlockedKey {
    /// SHA-256 of the SubjectPublicKeyInfo, hex.
    pub spki_sha256: String,
    /// Why (e.g. `keyCompromise`).
    pub reason: String,
    /// The certificate whose revocation blocked it.
    pub serial: Option<String>,
    /// When.
    pub created_at: NaiveDateTime,
}

/// The certificate with `serial`, only while it is in `status`: the target of every update
/// that moves a certificate from one state to the next.
#[diesel::dsl::auto_type(no_type_alias)]
pub(super) fn certificate_in<'a>(serial: &'a str, status: CertificateStatus) -> _ {
    let status: &'static str = status.as_str();
    certificates::table
        .find(serial)
        .filter(certificates::status.eq(status))
}

row_decoders!(CertificateQuery, certificates, CertificateRow => Certificate, first_certificate, load_certificates);

/// What [`Tx::keys_standing`] found about a set of keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeysStanding {
    /// One of them is blocked.
    pub blocked: bool,
    /// One of them is certified (a certificate of any status, reserved included).
    pub certified: bool,
}

impl Tx<'_> {
    /// Reserve or record a certificate row.
    pub fn insert_certificate(&mut self, cert: &Certificate) -> Result<(), StoreError> {
        let insert = diesel::insert_into(certificates::table).values(CertificateRow::from(cert));
        native!(self.conn, |c| insert.execute(c))?;
        Ok(())
    }

    /// Reserve or record several certificate rows (an application's pair): on PostgreSQL in
    /// one statement, one round trip.
    pub fn insert_certificates(&mut self, certs: &[Certificate]) -> Result<(), StoreError> {
        match (&mut *self.conn, certs) {
            // A pair, the usual case, as a fixed-size array: the same statement every time,
            // prepared once.
            (DbConnection::Pg(c), [auth, sign]) => {
                let rows = [CertificateRow::from(auth), CertificateRow::from(sign)];
                diesel::insert_into(certificates::table)
                    .values(rows)
                    .execute(c)?;
            }
            (DbConnection::Pg(c), _) => {
                let rows: Vec<CertificateRow> = certs.iter().map(CertificateRow::from).collect();
                diesel::insert_into(certificates::table)
                    .values(rows)
                    .execute(c)?;
            }
            (DbConnection::Sqlite(_), _) => {
                for cert in certs {
                    self.insert_certificate(cert)?;
                }
            }
        }
        Ok(())
    }

    /// The certificate with `serial` (upper-case hex), if any.
    pub fn certificate(&mut self, serial: &str) -> Result<Option<Certificate>, StoreError> {
        self.first_certificate(certificates::table.find(serial).into_boxed())
    }

    /// The certificate (of any status) that certifies the key with this SPKI hash.
    pub fn certificate_by_key(
        &mut self,
        spki_sha256: &str,
    ) -> Result<Option<Certificate>, StoreError> {
        self.first_certificate(
            certificates::table
                .filter(certificates::spki_sha256.eq(spki_sha256))
                .into_boxed(),
        )
    }

    /// The certificates issued for an application, AUTH first.
    pub fn certificates_of_application(
        &mut self,
        application_id: &str,
    ) -> Result<Vec<Certificate>, StoreError> {
        self.load_certificates(
            certificates::table
                .filter(certificates::application_id.eq(application_id))
                .order(certificates::kind.asc())
                .into_boxed(),
        )
    }

    /// Signed certificates (issued or revoked), newest first, optionally of one holder.
    pub fn list_certificates(
        &mut self,
        iin: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Certificate>, StoreError> {
        let mut query = certificates::table
            .filter(certificates::status.ne(CertificateStatus::Reserved.as_str()))
            .into_boxed();
        if let Some(iin) = iin {
            query = query.filter(certificates::holder_iin.eq(iin.to_owned()));
        }
        self.load_certificates(query.order(certificates::created_at.desc()).limit(limit))
    }

    /// Record the signed certificate for a reserved serial. Returns `false` (and changes
    /// nothing) unless the row is still `reserved`, so a certificate is never marked issued
    /// twice: of two processes completing the same issuance, one wins.
    pub fn mark_certificate_issued(
        &mut self,
        serial: &str,
        der: &[u8],
        at: NaiveDateTime,
    ) -> Result<bool, StoreError> {
        let updated = diesel::update(certificate_in(serial, CertificateStatus::Reserved))
            .set((
                certificates::der.eq(Some(der)),
                certificates::status.eq(CertificateStatus::Issued.as_str()),
                certificates::issued_at.eq(Some(at)),
            ))
            .execute(self.conn);
        touched_one(updated)
    }

    /// [`Tx::mark_certificate_issued`] for each `(serial, der)`; returns the certificates that
    /// were still reserved and are now issued, by kind (AUTH first). On PostgreSQL one
    /// statement marks and returns them all (one round trip, in a shared transaction's serial
    /// run).
    pub fn mark_certificates_issued(
        &mut self,
        signed: &[(String, Vec<u8>)],
        at: NaiveDateTime,
    ) -> Result<Vec<Certificate>, StoreError> {
        let rows: Vec<CertificateRow> = match &mut *self.conn {
            DbConnection::Pg(c) => {
                let (serials, ders) = signed
                    .iter()
                    .map(|(serial, der)| (serial.as_str(), der.as_slice()))
                    .unzip();
                MarkIssuedPg { at, serials, ders }.load(c)?
            }
            DbConnection::Sqlite(_) => {
                let mut marked = Vec::with_capacity(signed.len());
                for (serial, der) in signed {
                    if self.mark_certificate_issued(serial, der, at)? {
                        marked.push(serial.as_str());
                    }
                }
                certificates::table
                    .filter(certificates::serial.eq_any(marked))
                    .select(CertificateRow::as_select())
                    .load(self.conn)?
            }
        };
        let mut certs = rows
            .into_iter()
            .map(Certificate::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        // As `certificates_of_application` orders them.
        certs.sort_by(|a, b| a.kind.as_str().cmp(b.kind.as_str()));
        Ok(certs)
    }

    /// The revocation state of one certificate, read cheaply (OCSP's status source).
    pub fn certificate_state(
        &mut self,
        serial: &str,
    ) -> Result<Option<CertificateState>, StoreError> {
        let row: Option<StateRow> = certificates::table
            .find(serial)
            .select((
                certificates::issuer_id,
                certificates::status,
                certificates::revoked_at,
                certificates::revocation_reason,
                certificates::invalidity_date,
            ))
            .first(self.conn)
            .optional()?;
        row.map(|r| {
            Ok(CertificateState {
                status: CertificateStatus::decode(&r.status)?,
                issuer_id: r.issuer_id,
                revoked_at: r.revoked_at,
                revocation_reason: r.revocation_reason,
                invalidity_date: r.invalidity_date,
            })
        })
        .transpose()
    }

    /// Block a key for ever; blocking an already blocked key keeps the first record.
    pub fn block_key(&mut self, key: &BlockedKey) -> Result<(), StoreError> {
        if self.blocked_key(&key.spki_sha256)?.is_none() {
            diesel::insert_into(blocked_keys::table)
                .values(key)
                .execute(self.conn)?;
        }
        Ok(())
    }

    /// Whether any of `keys` (SPKI hashes) is blocked, and whether any is certified by a
    /// certificate of any status: one query, for the checks before a pair is reserved.
    pub fn keys_standing(&mut self, keys: &[String]) -> Result<KeysStanding, StoreError> {
        let (blocked, certified) = diesel::select((
            diesel::dsl::exists(blocked_keys::table.filter(blocked_keys::spki_sha256.eq_any(keys))),
            diesel::dsl::exists(certificates::table.filter(certificates::spki_sha256.eq_any(keys))),
        ))
        .get_result::<(bool, bool)>(self.conn)?;
        Ok(KeysStanding { blocked, certified })
    }

    /// The block record of a key, if blocked.
    pub fn blocked_key(&mut self, spki_sha256: &str) -> Result<Option<BlockedKey>, StoreError> {
        Ok(blocked_keys::table
            .find(spki_sha256)
            .select(BlockedKey::as_select())
            .first(self.conn)
            .optional()?)
    }

    /// Issued, unrevoked certificates whose notAfter falls in `(after, until]`.
    pub fn expiring_certificates(
        &mut self,
        after: NaiveDateTime,
        until: NaiveDateTime,
        limit: i64,
    ) -> Result<Vec<Certificate>, StoreError> {
        self.load_certificates(
            certificates::table
                .filter(certificates::status.eq(CertificateStatus::Issued.as_str()))
                .filter(certificates::not_after.gt(after))
                .filter(certificates::not_after.le(until))
                .order(certificates::not_after.asc())
                .limit(limit)
                .into_boxed(),
        )
    }

    /// The expiry thresholds already queued for a certificate.
    pub fn expiry_notices(&mut self, serial: &str) -> Result<Vec<i32>, StoreError> {
        Ok(expiry_notices::table
            .filter(expiry_notices::serial.eq(serial))
            .select(expiry_notices::threshold_days)
            .load(self.conn)?)
    }

    /// Record that the reminder for `threshold_days` was queued. Returns `false` if it was
    /// already (another instance got there first).
    pub fn record_expiry_notice(
        &mut self,
        serial: &str,
        threshold_days: i32,
        at: NaiveDateTime,
    ) -> Result<bool, StoreError> {
        self.insert_first(|conn| {
            diesel::insert_into(expiry_notices::table)
                .values((
                    expiry_notices::serial.eq(serial),
                    expiry_notices::threshold_days.eq(threshold_days),
                    expiry_notices::queued_at.eq(at),
                ))
                .execute(conn)
        })
    }
}

/// `UPDATE certificates … FROM unnest(serials, ders) … RETURNING c.*`: marks the reserved
/// certificates among `serials` issued with their DER. Written as a query of its own, as
/// diesel has no `UPDATE … FROM`; unlike `sql_query` and diesel's updates it is kept
/// prepared on each connection, so PostgreSQL parses and plans it once.
struct MarkIssuedPg<'a> {
    at: NaiveDateTime,
    serials: Vec<&'a str>,
    ders: Vec<&'a [u8]>,
}

/// The statement cache's key for [`MarkIssuedPg`] (one SQL text whatever the values).
struct MarkIssuedPgId;

impl diesel::query_builder::QueryId for MarkIssuedPg<'_> {
    type QueryId = MarkIssuedPgId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for MarkIssuedPg<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<Conn> RunQueryDsl<Conn> for MarkIssuedPg<'_> {}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for MarkIssuedPg<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Array, Binary, Text, Timestamp};
        out.push_sql("UPDATE certificates AS c SET der = v.der, status = ");
        out.push_bind_param::<Text, str>(CertificateStatus::Issued.as_str())?;
        out.push_sql(", issued_at = ");
        out.push_bind_param::<Timestamp, _>(&self.at)?;
        out.push_sql(" FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(&self.serials)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Binary>, _>(&self.ders)?;
        out.push_sql(") AS v (serial, der) WHERE c.serial = v.serial AND c.status = ");
        out.push_bind_param::<Text, str>(CertificateStatus::Reserved.as_str())?;
        out.push_sql(" RETURNING c.*");
        Ok(())
    }
}
