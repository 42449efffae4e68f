//! The `audit_log` table: appending an entry at the chain's head under the chain's lock, and
//! reading records back. Must never: compute or judge an entry's hash (`audit` does), update
//! or delete an entry.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::OptionalExtension;

use super::rows::db_time;
use super::schema::*;
use super::{StoreError, Tx};

/// One entry of the hash-chained audit log.
// Every field written as it is (the derive's default wraps each in "value or DEFAULT"), so
// that the insert is the same statement every time, and prepared once.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log, treat_none_as_default_value = false)]
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

/// How entries are linked into the chain. The `audit` module owns the construction; the store
/// only asks it, under the chain's lock, for the hash of the entry it is about to append.
pub trait AuditChain {
    /// `prev_hash` of the first entry.
    fn genesis(&self) -> &str;
    /// The hash of `record` over every field but `hash` (which is not read).
    fn hash(&self, record: &AuditRecord) -> String;
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

impl Tx<'_> {
    /// Append an entry at the head of the audit chain; returns the stored record with its
    /// hash, which `chain` computes (the `audit` module's [`AuditChain`]; callers use its
    /// `Tx::append_audit`).
    ///
    /// Serialised against concurrent appends (advisory lock on PostgreSQL, the write lock on
    /// SQLite): the head is read, hashed over and extended under the lock, so the chain never
    /// forks. The head this transaction wrote last is kept in the [`Tx`] and not read again
    /// (a member of a shared transaction passes it to the next; one rolled back to its
    /// savepoint does not). In a shared transaction the entry is inserted with every kept
    /// member's, in one statement just before the commit (`insert_pending_audit`): nothing
    /// in the transaction reads the log but this head. Call it inside
    /// [`super::Store::write`] together with the state change it records.
    pub(crate) fn append_chained(
        &mut self,
        entry: &AuditEntry,
        chain: &dyn AuditChain,
    ) -> Result<AuditRecord, StoreError> {
        self.lock_audit_chain()?;
        let last: Option<(i64, String)> = match self.chain_head.take() {
            Some(head) => Some(head),
            None => audit_log::table
                .order(audit_log::seq.desc())
                .select((audit_log::seq, audit_log::hash))
                .first(self.conn)
                .optional()?,
        };
        let (seq, prev_hash) = match last {
            Some((seq, hash)) => (seq + 1, hash),
            None => (1, chain.genesis().to_owned()),
        };
        let mut record = AuditRecord {
            seq,
            at: db_time(entry.at.and_utc()),
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            subject: entry.subject.clone(),
            details: entry.details.to_string(),
            prev_hash,
            hash: String::new(),
        };
        record.hash = chain.hash(&record);
        match &mut self.pending_audit {
            Some(pending) => pending.push(record.clone()),
            None => {
                let insert = diesel::insert_into(audit_log::table).values(&record);
                native!(self.conn, |c| insert.execute(c))?;
            }
        }
        self.chain_head = Some((record.seq, record.hash.clone()));
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

/// Insert the audit entries a shared transaction's members appended (in chain order), in one
/// statement on PostgreSQL.
pub(super) fn insert_pending_audit(
    conn: &mut super::DbConnection,
    records: &[AuditRecord],
) -> diesel::QueryResult<()> {
    match conn {
        super::DbConnection::Pg(c) => {
            for chunk in records.chunks(PENDING_AUDIT_ROWS_PER_INSERT) {
                diesel::insert_into(audit_log::table)
                    .values(chunk)
                    .execute(c)?;
            }
        }
        super::DbConnection::Sqlite(c) => {
            for record in records {
                diesel::insert_into(audit_log::table)
                    .values(record)
                    .execute(c)?;
            }
        }
    }
    Ok(())
}

/// Rows per insert statement of pending entries: 8 columns each, well under PostgreSQL's
/// 65,535 bind parameters.
const PENDING_AUDIT_ROWS_PER_INSERT: usize = 1_000;
