//! Typed rows and the queries over them. Domain values (statuses, kinds) travel as enums; the
//! database holds their stable text names.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::OptionalExtension;

use super::schema::{
    applications, audit_log, authority_revocations, blocked_keys, certificates, counters, crls,
    expiry_notices, outbox, rate_limit_events, used_consent_tokens,
};
use super::{StoreError, Tx};

/// Declares an enum stored as text, with `as_str` and a checked parse.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $table:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }
        impl $name {
            /// The stable name stored in the database and shown in the API.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            /// Parse a stored name.
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
            fn decode(s: &str) -> Result<$name, StoreError> {
                $name::parse(s).ok_or_else(|| StoreError::Corrupt {
                    table: $table,
                    message: format!("unknown {} `{}`", stringify!($name), s),
                })
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// Where an application stands.
    ApplicationStatus, "applications" {
        /// Waiting for an operator's decision.
        PendingReview = "pending_review",
        /// Approved; its certificates are reserved and being signed.
        Approved = "approved",
        /// Both certificates were issued.
        Issued = "issued",
        /// An operator refused it.
        Rejected = "rejected",
    }
);

text_enum!(
    /// Which of the citizen's two certificates.
    CertificateKind, "certificates" {
        /// Authentication certificate.
        Auth = "auth",
        /// Signing certificate.
        Sign = "sign",
    }
);

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

text_enum!(
    /// Delivery state of an outbox row.
    OutboxStatus, "outbox" {
        /// Waiting to be sent (or retried).
        Pending = "pending",
        /// Delivered to the SMTP server.
        Sent = "sent",
        /// Gave up after the maximum number of attempts.
        Dead = "dead",
    }
);

/// An application for the pair of certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// Unguessable id (UUID v4).
    pub id: String,
    /// Where it stands.
    pub status: ApplicationStatus,
    /// Holder's IIN from the consent token.
    pub holder_iin: String,
    /// Holder's surname.
    pub surname: String,
    /// Holder's given name.
    pub given_name: String,
    /// Holder's patronymic, if any.
    pub patronymic: Option<String>,
    /// Holder's birth date.
    pub birth_date: NaiveDate,
    /// E-mail for notifications and the SAN.
    pub email: Option<String>,
    /// `kk`, `ru` or `en`.
    pub language: String,
    /// Key storage type.
    pub storage: String,
    /// Agreement version the citizen accepted.
    pub agreement_version: String,
    /// SHA-256 of the application's access token.
    pub access_token_hash: Vec<u8>,
    /// `jti` of the consent token that created it.
    pub consent_jti: String,
    /// Digital ID's register match.
    pub register_match: bool,
    /// Digital ID's liveness result.
    pub liveness: bool,
    /// AUTH CSR (DER), kept for review.
    pub auth_csr: Vec<u8>,
    /// SIGN CSR (DER), kept for review.
    pub sign_csr: Vec<u8>,
    /// Operator's reason for a rejection.
    pub reason: Option<String>,
    /// Operator who decided.
    pub decided_by: Option<String>,
    /// Created (UTC).
    pub created_at: NaiveDateTime,
    /// Last changed (UTC).
    pub updated_at: NaiveDateTime,
    /// Why it went to operator review (empty when issued automatically, and for applications
    /// stored before the reasons were recorded).
    pub review_reasons: Vec<String>,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = applications)]
struct ApplicationRow {
    id: String,
    status: String,
    holder_iin: String,
    surname: String,
    given_name: String,
    patronymic: Option<String>,
    birth_date: NaiveDate,
    email: Option<String>,
    language: String,
    storage: String,
    agreement_version: String,
    access_token_hash: Vec<u8>,
    consent_jti: String,
    register_match: bool,
    liveness: bool,
    auth_csr: Vec<u8>,
    sign_csr: Vec<u8>,
    reason: Option<String>,
    decided_by: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    review_reasons: Option<String>,
}

impl From<&Application> for ApplicationRow {
    fn from(a: &Application) -> Self {
        ApplicationRow {
            id: a.id.clone(),
            status: a.status.as_str().to_owned(),
            holder_iin: a.holder_iin.clone(),
            surname: a.surname.clone(),
            given_name: a.given_name.clone(),
            patronymic: a.patronymic.clone(),
            birth_date: a.birth_date,
            email: a.email.clone(),
            language: a.language.clone(),
            storage: a.storage.clone(),
            agreement_version: a.agreement_version.clone(),
            access_token_hash: a.access_token_hash.clone(),
            consent_jti: a.consent_jti.clone(),
            register_match: a.register_match,
            liveness: a.liveness,
            auth_csr: a.auth_csr.clone(),
            sign_csr: a.sign_csr.clone(),
            reason: a.reason.clone(),
            decided_by: a.decided_by.clone(),
            created_at: a.created_at,
            updated_at: a.updated_at,
            review_reasons: if a.review_reasons.is_empty() {
                None
            } else {
                serde_json::to_string(&a.review_reasons).ok()
            },
        }
    }
}

impl TryFrom<ApplicationRow> for Application {
    type Error = StoreError;
    fn try_from(r: ApplicationRow) -> Result<Self, StoreError> {
        let review_reasons = match r.review_reasons.as_deref() {
            None => Vec::new(),
            Some(json) => serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
                table: "applications",
                message: format!("application {}: review_reasons: {e}", r.id),
            })?,
        };
        Ok(Application {
            status: ApplicationStatus::decode(&r.status)?,
            id: r.id,
            holder_iin: r.holder_iin,
            surname: r.surname,
            given_name: r.given_name,
            patronymic: r.patronymic,
            birth_date: r.birth_date,
            email: r.email,
            language: r.language,
            storage: r.storage,
            agreement_version: r.agreement_version,
            access_token_hash: r.access_token_hash,
            consent_jti: r.consent_jti,
            register_match: r.register_match,
            liveness: r.liveness,
            auth_csr: r.auth_csr,
            sign_csr: r.sign_csr,
            reason: r.reason,
            decided_by: r.decided_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            review_reasons,
        })
    }
}

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

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = certificates)]
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
            kind: CertificateKind::decode(&r.kind)?,
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
}

/// An e-mail waiting to be (or already) delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Row id (UUID), also the base of the Message-ID.
    pub id: String,
    /// Event name (e.g. `application_received`).
    pub event: String,
    /// Recipient address.
    pub recipient: String,
    /// `kk`, `ru` or `en`.
    pub language: String,
    /// Template parameters, JSON.
    pub payload: String,
    /// Delivery state.
    pub status: OutboxStatus,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// Not before this time.
    pub next_attempt_at: NaiveDateTime,
    /// Worker currently holding the lease.
    pub lease_owner: Option<String>,
    /// Lease expiry.
    pub lease_until: Option<NaiveDateTime>,
    /// Last delivery error.
    pub last_error: Option<String>,
    /// Enqueued at.
    pub created_at: NaiveDateTime,
    /// Delivered at.
    pub sent_at: Option<NaiveDateTime>,
}

impl OutboxMessage {
    /// A new message, due at `at`, with a fresh id (the base of its Message-ID).
    pub fn pending(
        event: &str,
        recipient: &str,
        language: &str,
        payload: String,
        at: NaiveDateTime,
    ) -> Self {
        OutboxMessage {
            id: uuid::Uuid::new_v4().to_string(),
            event: event.to_owned(),
            recipient: recipient.to_owned(),
            language: language.to_owned(),
            payload,
            status: OutboxStatus::Pending,
            attempts: 0,
            next_attempt_at: at,
            lease_owner: None,
            lease_until: None,
            last_error: None,
            created_at: at,
            sent_at: None,
        }
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = outbox)]
struct OutboxRow {
    id: String,
    event: String,
    recipient: String,
    language: String,
    payload: String,
    status: String,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    lease_owner: Option<String>,
    lease_until: Option<NaiveDateTime>,
    last_error: Option<String>,
    created_at: NaiveDateTime,
    sent_at: Option<NaiveDateTime>,
}

impl From<&OutboxMessage> for OutboxRow {
    fn from(m: &OutboxMessage) -> Self {
        OutboxRow {
            id: m.id.clone(),
            event: m.event.clone(),
            recipient: m.recipient.clone(),
            language: m.language.clone(),
            payload: m.payload.clone(),
            status: m.status.as_str().to_owned(),
            attempts: m.attempts,
            next_attempt_at: m.next_attempt_at,
            lease_owner: m.lease_owner.clone(),
            lease_until: m.lease_until,
            last_error: m.last_error.clone(),
            created_at: m.created_at,
            sent_at: m.sent_at,
        }
    }
}

impl TryFrom<OutboxRow> for OutboxMessage {
    type Error = StoreError;
    fn try_from(r: OutboxRow) -> Result<Self, StoreError> {
        Ok(OutboxMessage {
            status: OutboxStatus::decode(&r.status)?,
            id: r.id,
            event: r.event,
            recipient: r.recipient,
            language: r.language,
            payload: r.payload,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            lease_owner: r.lease_owner,
            lease_until: r.lease_until,
            last_error: r.last_error,
            created_at: r.created_at,
            sent_at: r.sent_at,
        })
    }
}

/// One entry of the hash-chained audit log.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (UTC, microseconds).
    pub at: NaiveDateTime,
    /// Who: an operator's name, `system`, or `holder:<IIN>`.
    pub actor: String,
    /// What, e.g. `ca.hierarchy_generated`.
    pub action: String,
    /// On what, e.g. an application id or a serial.
    pub subject: String,
    /// Details, JSON.
    pub details: String,
    /// Hash of the previous entry (64 zeros for the first).
    pub prev_hash: String,
    /// Hash of this entry, chained over `prev_hash`.
    pub hash: String,
}

/// An audit entry before it has a place in the chain.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// When (UTC).
    pub at: NaiveDateTime,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub subject: String,
    /// Details, JSON.
    pub details: serde_json::Value,
}

/// An insert whose unique key may already exist: `true` if it inserted, `false` if the key
/// was taken. On PostgreSQL the violation aborts the transaction, so a caller that gets
/// `false` must end it rather than write on.
fn first_insert(result: diesel::QueryResult<usize>) -> Result<bool, StoreError> {
    match result.map_err(StoreError::from) {
        Ok(_) => Ok(true),
        Err(e) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e),
    }
}

/// How many rows the main tables hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableCounts {
    /// Applications.
    pub applications: i64,
    /// Certificates (any status).
    pub certificates: i64,
    /// Recorded consent-token ids.
    pub used_consent_tokens: i64,
    /// Audit entries.
    pub audit_log: i64,
    /// Outbox rows.
    pub outbox: i64,
    /// Counted actions of the per-IIN rate limits.
    pub rate_limit_events: i64,
}

#[allow(clippy::type_complexity)]
fn revocation_columns() -> (
    certificates::serial,
    certificates::status,
    certificates::revoked_at,
    certificates::revocation_reason,
    certificates::invalidity_date,
) {
    (
        certificates::serial,
        certificates::status,
        certificates::revoked_at,
        certificates::revocation_reason,
        certificates::invalidity_date,
    )
}

/// A stable 63-bit advisory-lock key for an issuer's CRL sequence.
fn issuer_lock_key(issuer_id: &str) -> i64 {
    lock_key(&format!("tamga-crl:{issuer_id}"))
}

/// A stable 63-bit advisory-lock key for a name.
fn lock_key(name: &str) -> i64 {
    let digest = openssl::sha::sha256(name.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    i64::from_be_bytes(bytes) & i64::MAX
}

/// Truncate a timestamp to the microsecond, the precision both databases keep, so what is
/// read back (and hashed) equals what was written.
pub fn db_time(t: chrono::DateTime<chrono::Utc>) -> NaiveDateTime {
    let naive = t.naive_utc();
    let micros = naive.and_utc().timestamp_micros();
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|d| d.naive_utc())
        .unwrap_or(naive)
}

impl Tx<'_> {
    /// Insert a new application.
    pub fn insert_application(&mut self, app: &Application) -> Result<(), StoreError> {
        diesel::insert_into(applications::table)
            .values(ApplicationRow::from(app))
            .execute(self.conn)?;
        Ok(())
    }

    /// The application with `id`, if any.
    pub fn application(&mut self, id: &str) -> Result<Option<Application>, StoreError> {
        applications::table
            .find(id)
            .select(ApplicationRow::as_select())
            .first(self.conn)
            .optional()?
            .map(Application::try_from)
            .transpose()
    }

    /// Applications in `status`, oldest first.
    pub fn applications_with_status(
        &mut self,
        status: ApplicationStatus,
    ) -> Result<Vec<Application>, StoreError> {
        applications::table
            .filter(applications::status.eq(status.as_str()))
            .order(applications::created_at.asc())
            .select(ApplicationRow::as_select())
            .load(self.conn)?
            .into_iter()
            .map(Application::try_from)
            .collect()
    }

    /// Move an application from `from` to `to`, recording the reason and who decided.
    /// Returns `false` (and changes nothing) when it is not in `from` — so two operators
    /// deciding at once cannot both succeed.
    pub fn decide_application(
        &mut self,
        id: &str,
        from: ApplicationStatus,
        to: ApplicationStatus,
        reason: Option<&str>,
        decided_by: &str,
        at: NaiveDateTime,
    ) -> Result<bool, StoreError> {
        let n = diesel::update(
            applications::table
                .find(id)
                .filter(applications::status.eq(from.as_str())),
        )
        .set((
            applications::status.eq(to.as_str()),
            applications::reason.eq(reason),
            applications::decided_by.eq(Some(decided_by)),
            applications::updated_at.eq(at),
        ))
        .execute(self.conn)?;
        Ok(n == 1)
    }

    /// Applications, newest first, optionally filtered by status and holder.
    pub fn list_applications(
        &mut self,
        status: Option<ApplicationStatus>,
        iin: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Application>, StoreError> {
        let mut query = applications::table.into_boxed();
        if let Some(status) = status {
            query = query.filter(applications::status.eq(status.as_str()));
        }
        if let Some(iin) = iin {
            query = query.filter(applications::holder_iin.eq(iin.to_owned()));
        }
        query
            .order(applications::created_at.desc())
            .limit(limit)
            .select(ApplicationRow::as_select())
            .load(self.conn)?
            .into_iter()
            .map(Application::try_from)
            .collect()
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
        query
            .order(certificates::created_at.desc())
            .limit(limit)
            .select(CertificateRow::as_select())
            .load(self.conn)?
            .into_iter()
            .map(Certificate::try_from)
            .collect()
    }

    /// Outbox rows, newest first, optionally in one status.
    pub fn list_messages(
        &mut self,
        status: Option<OutboxStatus>,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let mut query = outbox::table.into_boxed();
        if let Some(status) = status {
            query = query.filter(outbox::status.eq(status.as_str()));
        }
        query
            .order(outbox::created_at.desc())
            .limit(limit)
            .select(OutboxRow::as_select())
            .load(self.conn)?
            .into_iter()
            .map(OutboxMessage::try_from)
            .collect()
    }

    /// Lease up to `limit` due pending rows to `owner` until `lease_until`. A row whose lease
    /// expired (its worker died) is due again. Each row is claimed by one worker only: the
    /// claim is a conditional update.
    pub fn claim_due_messages(
        &mut self,
        owner: &str,
        now: NaiveDateTime,
        lease_until: NaiveDateTime,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let free = outbox::lease_until
            .is_null()
            .or(outbox::lease_until.lt(now));
        let candidates: Vec<String> = outbox::table
            .filter(outbox::status.eq(OutboxStatus::Pending.as_str()))
            .filter(outbox::next_attempt_at.le(now))
            .filter(free)
            .order(outbox::next_attempt_at.asc())
            .limit(limit)
            .select(outbox::id)
            .load(self.conn)?;
        let mut claimed = Vec::with_capacity(candidates.len());
        for id in candidates {
            let n = diesel::update(
                outbox::table
                    .find(&id)
                    .filter(outbox::status.eq(OutboxStatus::Pending.as_str()))
                    .filter(
                        outbox::lease_until
                            .is_null()
                            .or(outbox::lease_until.lt(now)),
                    ),
            )
            .set((
                outbox::lease_owner.eq(Some(owner)),
                outbox::lease_until.eq(Some(lease_until)),
            ))
            .execute(self.conn)?;
            if n == 1 {
                if let Some(m) = self.message(&id)? {
                    claimed.push(m);
                }
            }
        }
        Ok(claimed)
    }

    /// Record a delivery by the lease holder. Returns `false` if the lease was lost.
    pub fn mark_message_sent(
        &mut self,
        id: &str,
        owner: &str,
        at: NaiveDateTime,
    ) -> Result<bool, StoreError> {
        let n = diesel::update(outbox::table.find(id).filter(outbox::lease_owner.eq(owner)))
            .set((
                outbox::status.eq(OutboxStatus::Sent.as_str()),
                outbox::sent_at.eq(Some(at)),
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::lease_owner.eq(None::<String>),
                outbox::lease_until.eq(None::<NaiveDateTime>),
                outbox::last_error.eq(None::<String>),
            ))
            .execute(self.conn)?;
        Ok(n == 1)
    }

    /// Record a failed attempt by the lease holder: retry at `next_attempt_at`, or `dead`.
    pub fn mark_message_failed(
        &mut self,
        id: &str,
        owner: &str,
        error: &str,
        next_attempt_at: NaiveDateTime,
        dead: bool,
    ) -> Result<bool, StoreError> {
        let status = if dead {
            OutboxStatus::Dead
        } else {
            OutboxStatus::Pending
        };
        let n = diesel::update(outbox::table.find(id).filter(outbox::lease_owner.eq(owner)))
            .set((
                outbox::status.eq(status.as_str()),
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::next_attempt_at.eq(next_attempt_at),
                outbox::last_error.eq(Some(error)),
                outbox::lease_owner.eq(None::<String>),
                outbox::lease_until.eq(None::<NaiveDateTime>),
            ))
            .execute(self.conn)?;
        Ok(n == 1)
    }

    /// Outbox rows per status.
    pub fn outbox_depth(&mut self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(outbox::table
            .group_by(outbox::status)
            .select((outbox::status, diesel::dsl::count_star()))
            .load(self.conn)?)
    }

    /// Issued, unrevoked certificates whose notAfter falls in `(after, until]`.
    pub fn expiring_certificates(
        &mut self,
        after: NaiveDateTime,
        until: NaiveDateTime,
        limit: i64,
    ) -> Result<Vec<Certificate>, StoreError> {
        certificates::table
            .filter(certificates::status.eq(CertificateStatus::Issued.as_str()))
            .filter(certificates::not_after.gt(after))
            .filter(certificates::not_after.le(until))
            .order(certificates::not_after.asc())
            .limit(limit)
            .select(CertificateRow::as_select())
            .load(self.conn)?
            .into_iter()
            .map(Certificate::try_from)
            .collect()
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
        let inserted = diesel::insert_into(expiry_notices::table)
            .values((
                expiry_notices::serial.eq(serial),
                expiry_notices::threshold_days.eq(threshold_days),
                expiry_notices::queued_at.eq(at),
            ))
            .execute(self.conn);
        first_insert(inserted)
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
            })
            .collect())
    }

    /// Put a `dead` outbox row back in the queue, due now. Returns `false` if it is not dead.
    pub fn retry_message(&mut self, id: &str, at: NaiveDateTime) -> Result<bool, StoreError> {
        let n = diesel::update(
            outbox::table
                .find(id)
                .filter(outbox::status.eq(OutboxStatus::Dead.as_str())),
        )
        .set((
            outbox::status.eq(OutboxStatus::Pending.as_str()),
            outbox::attempts.eq(0),
            outbox::next_attempt_at.eq(at),
            outbox::lease_owner.eq(None::<String>),
            outbox::lease_until.eq(None::<NaiveDateTime>),
        ))
        .execute(self.conn)?;
        Ok(n == 1)
    }

    /// Move an application to `status`.
    pub fn set_application_status(
        &mut self,
        id: &str,
        status: ApplicationStatus,
        at: NaiveDateTime,
    ) -> Result<(), StoreError> {
        let n = diesel::update(applications::table.find(id))
            .set((
                applications::status.eq(status.as_str()),
                applications::updated_at.eq(at),
            ))
            .execute(self.conn)?;
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::Query(diesel::result::Error::NotFound))
        }
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
        let n = diesel::update(
            certificates::table
                .find(serial)
                .filter(certificates::status.eq(CertificateStatus::Reserved.as_str())),
        )
        .set((
            certificates::der.eq(Some(der)),
            certificates::status.eq(CertificateStatus::Issued.as_str()),
            certificates::issued_at.eq(Some(at)),
        ))
        .execute(self.conn)?;
        Ok(n == 1)
    }

    /// The application created with the consent token `jti`, if any.
    pub fn application_by_consent_jti(
        &mut self,
        jti: &str,
    ) -> Result<Option<Application>, StoreError> {
        applications::table
            .filter(applications::consent_jti.eq(jti))
            .select(ApplicationRow::as_select())
            .first(self.conn)
            .optional()?
            .map(Application::try_from)
            .transpose()
    }

    /// Replace an application's access token (only its hash is stored).
    pub fn set_access_token_hash(&mut self, id: &str, hash: &[u8]) -> Result<(), StoreError> {
        let n = diesel::update(applications::table.find(id))
            .set(applications::access_token_hash.eq(hash))
            .execute(self.conn)?;
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::Query(diesel::result::Error::NotFound))
        }
    }

    /// Row counts of the main tables (tests, operations).
    pub fn table_counts(&mut self) -> Result<TableCounts, StoreError> {
        Ok(TableCounts {
            applications: applications::table.count().get_result(self.conn)?,
            certificates: certificates::table.count().get_result(self.conn)?,
            used_consent_tokens: used_consent_tokens::table.count().get_result(self.conn)?,
            audit_log: audit_log::table.count().get_result(self.conn)?,
            outbox: outbox::table.count().get_result(self.conn)?,
            rate_limit_events: rate_limit_events::table.count().get_result(self.conn)?,
        })
    }

    /// Reserve or record a certificate row.
    pub fn insert_certificate(&mut self, cert: &Certificate) -> Result<(), StoreError> {
        diesel::insert_into(certificates::table)
            .values(CertificateRow::from(cert))
            .execute(self.conn)?;
        Ok(())
    }

    /// The certificate with `serial` (upper-case hex), if any.
    pub fn certificate(&mut self, serial: &str) -> Result<Option<Certificate>, StoreError> {
        certificates::table
            .find(serial)
            .select(CertificateRow::as_select())
            .first(self.conn)
            .optional()?
            .map(Certificate::try_from)
            .transpose()
    }

    /// The certificate (of any status) that certifies the key with this SPKI hash.
    pub fn certificate_by_key(
        &mut self,
        spki_sha256: &str,
    ) -> Result<Option<Certificate>, StoreError> {
        certificates::table
            .filter(certificates::spki_sha256.eq(spki_sha256))
            .select(CertificateRow::as_select())
            .first(self.conn)
            .optional()?
            .map(Certificate::try_from)
            .transpose()
    }

    /// The certificates issued for an application, AUTH first.
    pub fn certificates_of_application(
        &mut self,
        application_id: &str,
    ) -> Result<Vec<Certificate>, StoreError> {
        certificates::table
            .filter(certificates::application_id.eq(application_id))
            .order(certificates::kind.asc())
            .select(CertificateRow::as_select())
            .load(self.conn)?
            .into_iter()
            .map(Certificate::try_from)
            .collect()
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

    /// The block record of a key, if blocked.
    pub fn blocked_key(&mut self, spki_sha256: &str) -> Result<Option<BlockedKey>, StoreError> {
        Ok(blocked_keys::table
            .find(spki_sha256)
            .select(BlockedKey::as_select())
            .first(self.conn)
            .optional()?)
    }

    /// Record a consent token id as used. Returns `false` if it was already used (a replay);
    /// the unique key makes this hold when two transactions race.
    pub fn record_consent_jti(
        &mut self,
        jti: &str,
        expires_at: NaiveDateTime,
        used_at: NaiveDateTime,
    ) -> Result<bool, StoreError> {
        let inserted = diesel::insert_into(used_consent_tokens::table)
            .values((
                used_consent_tokens::jti.eq(jti),
                used_consent_tokens::expires_at.eq(expires_at),
                used_consent_tokens::used_at.eq(used_at),
            ))
            .execute(self.conn);
        first_insert(inserted)
    }

    /// Whether a consent token id has been used.
    pub fn consent_jti_used(&mut self, jti: &str) -> Result<bool, StoreError> {
        let n: i64 = used_consent_tokens::table
            .filter(used_consent_tokens::jti.eq(jti))
            .count()
            .get_result(self.conn)?;
        Ok(n > 0)
    }

    /// Forget used token ids that expired before `before`. Returns how many.
    pub fn prune_consent_jtis(&mut self, before: NaiveDateTime) -> Result<usize, StoreError> {
        Ok(diesel::delete(
            used_consent_tokens::table.filter(used_consent_tokens::expires_at.lt(before)),
        )
        .execute(self.conn)?)
    }

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
        Ok(crls::table
            .filter(crls::issuer_id.eq(issuer_id))
            .filter(crls::is_delta.eq(delta))
            .order(crls::crl_number.desc())
            .select(StoredCrl::as_select())
            .first(self.conn)
            .optional()?)
    }

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
        let n = diesel::update(
            certificates::table
                .find(serial)
                .filter(certificates::status.eq(CertificateStatus::Issued.as_str())),
        )
        .set((
            certificates::status.eq(CertificateStatus::Revoked.as_str()),
            certificates::revoked_at.eq(Some(revoked_at)),
            certificates::revocation_reason.eq(Some(reason)),
            certificates::invalidity_date.eq(invalidity_date),
            certificates::revocation_seq.eq(Some(seq)),
        ))
        .execute(self.conn)?;
        Ok(n == 1)
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
        let n = diesel::update(
            certificates::table
                .find(serial)
                .filter(certificates::status.eq(CertificateStatus::Revoked.as_str())),
        )
        .set((
            certificates::invalidity_date.eq(invalidity_date),
            certificates::revocation_seq.eq(Some(seq)),
        ))
        .execute(self.conn)?;
        Ok(n == 1)
    }

    /// Revoked certificates of every issuer, expired ones included, in serial order after
    /// `after`: what `tamga crl check` reads.
    pub fn revoked_certificates_page(
        &mut self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<Certificate>, StoreError> {
        certificates::table
            .filter(certificates::status.eq(CertificateStatus::Revoked.as_str()))
            .filter(certificates::serial.gt(after))
            .order(certificates::serial.asc())
            .limit(limit)
            .select(CertificateRow::as_select())
            .load(self.conn)?
            .into_iter()
            .map(Certificate::try_from)
            .collect()
    }

    /// Lift a `certificateHold`. Returns `false` when the certificate is not on hold.
    pub fn release_certificate(&mut self, serial: &str, seq: i64) -> Result<bool, StoreError> {
        let n = diesel::update(
            certificates::table
                .find(serial)
                .filter(certificates::status.eq(CertificateStatus::Revoked.as_str()))
                .filter(certificates::revocation_reason.eq("certificateHold")),
        )
        .set((
            certificates::status.eq(CertificateStatus::Issued.as_str()),
            certificates::revoked_at.eq(None::<NaiveDateTime>),
            certificates::revocation_reason.eq(None::<String>),
            certificates::invalidity_date.eq(None::<NaiveDateTime>),
            certificates::revocation_seq.eq(Some(seq)),
        ))
        .execute(self.conn)?;
        Ok(n == 1)
    }

    /// Serialise rate-limit counting for one subject (an IIN) in one scope across instances
    /// until the transaction ends (PostgreSQL advisory lock; on SQLite the write transaction
    /// already excludes every other writer). Take it before any other lock.
    pub fn lock_rate_subject(&mut self, scope: &str, subject: &str) -> Result<(), StoreError> {
        if self.backend == super::Backend::Postgres {
            let key = lock_key(&format!("tamga-rate:{scope}:{subject}"));
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({key})")).execute(self.conn)?;
        }
        Ok(())
    }

    /// How many actions of `scope` were counted for `subject` at or after `since`.
    pub fn rate_events_since(
        &mut self,
        scope: &str,
        subject: &str,
        since: NaiveDateTime,
    ) -> Result<i64, StoreError> {
        Ok(rate_limit_events::table
            .filter(rate_limit_events::scope.eq(scope))
            .filter(rate_limit_events::subject.eq(subject))
            .filter(rate_limit_events::at.ge(since))
            .count()
            .get_result(self.conn)?)
    }

    /// The time of the `skip`-th oldest action (from 0) counted since `since`.
    pub fn rate_event_time(
        &mut self,
        scope: &str,
        subject: &str,
        since: NaiveDateTime,
        skip: i64,
    ) -> Result<Option<NaiveDateTime>, StoreError> {
        Ok(rate_limit_events::table
            .filter(rate_limit_events::scope.eq(scope))
            .filter(rate_limit_events::subject.eq(subject))
            .filter(rate_limit_events::at.ge(since))
            .order(rate_limit_events::at.asc())
            .offset(skip)
            .select(rate_limit_events::at)
            .first(self.conn)
            .optional()?)
    }

    /// Count one action of `scope` for `subject`.
    pub fn record_rate_event(
        &mut self,
        scope: &str,
        subject: &str,
        at: NaiveDateTime,
    ) -> Result<(), StoreError> {
        diesel::insert_into(rate_limit_events::table)
            .values((
                rate_limit_events::id.eq(uuid::Uuid::new_v4().to_string()),
                rate_limit_events::scope.eq(scope),
                rate_limit_events::subject.eq(subject),
                rate_limit_events::at.eq(at),
            ))
            .execute(self.conn)?;
        Ok(())
    }

    /// Forget counted actions older than `before`. Returns how many.
    pub fn prune_rate_events(&mut self, before: NaiveDateTime) -> Result<usize, StoreError> {
        Ok(
            diesel::delete(rate_limit_events::table.filter(rate_limit_events::at.lt(before)))
                .execute(self.conn)?,
        )
    }

    /// Serialise CRL production for one issuer across instances (PostgreSQL advisory lock;
    /// on SQLite the write transaction already excludes every other writer).
    pub fn lock_crl_issuer(&mut self, issuer_id: &str) -> Result<(), StoreError> {
        if self.backend == super::Backend::Postgres {
            let key = issuer_lock_key(issuer_id);
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({key})")).execute(self.conn)?;
        }
        Ok(())
    }

    /// The highest CRL number used for an issuer (full and delta share the sequence).
    pub fn last_crl_number(&mut self, issuer_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(crls::table
            .filter(crls::issuer_id.eq(issuer_id))
            .select(diesel::dsl::max(crls::crl_number))
            .first(self.conn)?)
    }

    /// The revocation state of one certificate, read cheaply (OCSP's status source): issuer,
    /// status, revocation time and reason.
    #[allow(clippy::type_complexity)]
    pub fn certificate_state(
        &mut self,
        serial: &str,
    ) -> Result<Option<(String, String, Option<NaiveDateTime>, Option<String>)>, StoreError> {
        Ok(certificates::table
            .find(serial)
            .select((
                certificates::issuer_id,
                certificates::status,
                certificates::revoked_at,
                certificates::revocation_reason,
            ))
            .first(self.conn)
            .optional()?)
    }

    /// Serials whose revocation state changed at counter values in `(after, upto]`.
    pub fn serials_changed(&mut self, after: i64, upto: i64) -> Result<Vec<String>, StoreError> {
        Ok(certificates::table
            .filter(certificates::revocation_seq.gt(after))
            .filter(certificates::revocation_seq.le(upto))
            .select(certificates::serial)
            .load(self.conn)?)
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

    /// The newest full (or delta) CRL's numbers and times, without its bytes.
    pub fn latest_crl_info(
        &mut self,
        issuer_id: &str,
        delta: bool,
    ) -> Result<Option<CrlInfo>, StoreError> {
        Ok(crls::table
            .filter(crls::issuer_id.eq(issuer_id))
            .filter(crls::is_delta.eq(delta))
            .order(crls::crl_number.desc())
            .select((
                crls::crl_number,
                crls::this_update,
                crls::next_update,
                crls::covered_seq,
            ))
            .first(self.conn)
            .optional()?)
    }

    /// One page of a full CRL: revoked certificates of `issuer_id` with serial after `after`,
    /// revoked at counter values up to `max_seq`, still valid at `valid_at`, in serial order.
    pub fn revoked_page(
        &mut self,
        issuer_id: &str,
        after: &str,
        max_seq: i64,
        valid_at: NaiveDateTime,
        limit: i64,
    ) -> Result<Vec<RevocationEntry>, StoreError> {
        Ok(certificates::table
            .filter(certificates::issuer_id.eq(issuer_id))
            .filter(certificates::status.eq(CertificateStatus::Revoked.as_str()))
            .filter(certificates::serial.gt(after))
            .filter(certificates::revocation_seq.le(max_seq))
            .filter(certificates::not_after.ge(valid_at))
            .order(certificates::serial.asc())
            .limit(limit)
            .select(revocation_columns())
            .load(self.conn)?)
    }

    /// One page of a delta CRL: certificates whose revocation state changed at counter values
    /// in `(after_seq, max_seq]`, still valid at `valid_at`, in serial order after `after`.
    pub fn changed_page(
        &mut self,
        issuer_id: &str,
        after: &str,
        after_seq: i64,
        max_seq: i64,
        valid_at: NaiveDateTime,
        limit: i64,
    ) -> Result<Vec<RevocationEntry>, StoreError> {
        Ok(certificates::table
            .filter(certificates::issuer_id.eq(issuer_id))
            .filter(certificates::serial.gt(after))
            .filter(certificates::revocation_seq.gt(after_seq))
            .filter(certificates::revocation_seq.le(max_seq))
            .filter(certificates::not_after.ge(valid_at))
            .order(certificates::serial.asc())
            .limit(limit)
            .select(revocation_columns())
            .load(self.conn)?)
    }

    /// Queue an e-mail.
    pub fn enqueue_message(&mut self, message: &OutboxMessage) -> Result<(), StoreError> {
        diesel::insert_into(outbox::table)
            .values(OutboxRow::from(message))
            .execute(self.conn)?;
        Ok(())
    }

    /// The outbox row with `id`, if any.
    pub fn message(&mut self, id: &str) -> Result<Option<OutboxMessage>, StoreError> {
        outbox::table
            .find(id)
            .select(OutboxRow::as_select())
            .first(self.conn)
            .optional()?
            .map(OutboxMessage::try_from)
            .transpose()
    }

    /// Append an entry to the audit chain; returns the stored record with its hash.
    ///
    /// Serialised against concurrent appends (advisory lock on PostgreSQL, the write lock on
    /// SQLite), so the chain never forks. Call it inside [`super::Store::write`] together with
    /// the state change it records.
    pub fn append_audit(&mut self, entry: &AuditEntry) -> Result<AuditRecord, StoreError> {
        self.lock_audit_chain()?;
        let last: Option<(i64, String)> = audit_log::table
            .order(audit_log::seq.desc())
            .select((audit_log::seq, audit_log::hash))
            .first(self.conn)
            .optional()?;
        let (seq, prev_hash) = match last {
            Some((seq, hash)) => (seq + 1, hash),
            None => (1, crate::audit::GENESIS_HASH.to_owned()),
        };
        let details = entry.details.to_string();
        let at = db_time(entry.at.and_utc());
        let hash = crate::audit::chain_hash(
            &prev_hash,
            seq,
            at,
            &entry.actor,
            &entry.action,
            &entry.subject,
            &details,
        );
        let record = AuditRecord {
            seq,
            at,
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            subject: entry.subject.clone(),
            details,
            prev_hash,
            hash,
        };
        diesel::insert_into(audit_log::table)
            .values(&record)
            .execute(self.conn)?;
        Ok(record)
    }

    /// The last `n` audit records, oldest first.
    pub fn audit_tail(&mut self, n: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let mut rows: Vec<AuditRecord> = audit_log::table
            .order(audit_log::seq.desc())
            .limit(n)
            .select(AuditRecord::as_select())
            .load(self.conn)?;
        rows.reverse();
        Ok(rows)
    }

    /// Audit records with `seq > after`, in order, at most `limit`.
    pub fn audit_records(
        &mut self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(audit_log::table
            .filter(audit_log::seq.gt(after))
            .order(audit_log::seq.asc())
            .limit(limit)
            .select(AuditRecord::as_select())
            .load(self.conn)?)
    }
}
