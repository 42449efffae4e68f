//! The tamper-evident audit log: every state change is appended as an entry whose hash covers
//! the previous entry's hash, so rewriting or deleting history breaks the chain.
//!
//! Owns: the hash construction (the store's [`AuditChain`], through which [`Tx::append_audit`]
//! appends: the store reads the head, asks for the new entry's hash and inserts it under the
//! chain's lock) and the verification of a chain. Must never: update or delete an entry (the
//! store offers no such call), or record secrets (keys, tokens, passwords).
//!
//! Verification detects altered, deleted, inserted and reordered entries. Removing the newest
//! entries leaves a valid shorter chain: that is detected only against a head recorded
//! elsewhere (`tamga audit verify --expect SEQ:HASH`).

use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};

use crate::store::{AuditChain, AuditEntry, AuditRecord, Store, StoreError, Tx};

/// `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How many records verification reads per query.
const VERIFY_BATCH: i64 = 1000;

/// SHA-256 over the previous hash and every field of the entry, each length-prefixed so that
/// no two different entries hash the same input. Hex, lower case.
pub fn chain_hash(
    prev_hash: &str,
    seq: i64,
    at: NaiveDateTime,
    actor: &str,
    action: &str,
    subject: &str,
    details: &str,
) -> String {
    let at = at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let seq = seq.to_string();
    let mut h = Sha256::new();
    h.update(b"tamga-audit-v1");
    for field in [prev_hash, &seq, &at, actor, action, subject, details] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The hash of a record over its `prev_hash` and content ([`chain_hash`]); its `hash` is not
/// read.
fn record_hash(record: &AuditRecord) -> String {
    chain_hash(
        &record.prev_hash,
        record.seq,
        record.at,
        &record.actor,
        &record.action,
        &record.subject,
        &record.details,
    )
}

/// The chain as this module builds it, handed to the store's append.
struct Sha256Chain;

impl AuditChain for Sha256Chain {
    fn genesis(&self) -> &str {
        GENESIS_HASH
    }

    fn hash(&self, record: &AuditRecord) -> String {
        record_hash(record)
    }
}

impl Tx<'_> {
    /// Append an entry to the audit chain; returns the stored record with its hash.
    ///
    /// Serialised against concurrent appends (advisory lock on PostgreSQL, the write lock on
    /// SQLite), so the chain never forks. Call it inside [`Store::write`] together with the
    /// state change it records.
    pub fn append_audit(&mut self, entry: &AuditEntry) -> Result<AuditRecord, StoreError> {
        self.append_chained(entry, &Sha256Chain)
    }
}

/// Why a chain does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An entry is missing: sequence numbers jump.
    #[error("audit chain broken: entry {expected} is missing (found {found} next)")]
    Gap {
        /// The sequence number that should come next.
        expected: i64,
        /// The one found instead.
        found: i64,
    },
    /// An entry does not point at its predecessor's hash.
    #[error("audit chain broken at entry {seq}: prev_hash does not match entry {}", seq - 1)]
    Unlinked {
        /// The entry.
        seq: i64,
    },
    /// An entry's content does not match its hash (it was altered).
    #[error("audit chain broken at entry {seq}: its content does not match its hash")]
    Altered {
        /// The entry.
        seq: i64,
    },
}

/// Result of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entries checked.
    pub entries: i64,
    /// Hash of the last entry (the chain's head), to compare with a copy kept elsewhere.
    pub head: String,
}

/// Check one record against the hash of its predecessor.
pub fn check_record(
    record: &AuditRecord,
    expected_seq: i64,
    prev_hash: &str,
) -> Result<(), AuditError> {
    if record.seq != expected_seq {
        return Err(AuditError::Gap {
            expected: expected_seq,
            found: record.seq,
        });
    }
    if record.prev_hash != prev_hash {
        return Err(AuditError::Unlinked { seq: record.seq });
    }
    if record_hash(record) != record.hash {
        return Err(AuditError::Altered { seq: record.seq });
    }
    Ok(())
}

/// Walk the whole chain from the first entry and check every link.
pub fn verify(store: &Store) -> Result<Verified, AuditError> {
    verify_with(|after, limit| store.read(|tx| tx.audit_records(after, limit)))
}

/// [`verify`] over any reader of the records: `read(after, limit)` returns at most `limit`
/// records with `seq > after`, in order (a store, or a backup's database file).
pub fn verify_with(
    mut read: impl FnMut(i64, i64) -> Result<Vec<AuditRecord>, StoreError>,
) -> Result<Verified, AuditError> {
    let mut head = GENESIS_HASH.to_owned();
    let mut last = 0i64;
    loop {
        let batch = read(last, VERIFY_BATCH)?;
        if batch.is_empty() {
            return Ok(Verified {
                entries: last,
                head,
            });
        }
        for record in &batch {
            check_record(record, last + 1, &head)?;
            last = record.seq;
            head.clone_from(&record.hash);
        }
    }
}
