//! Data migrations: rewrites of stored values that SQL cannot compute, run by [`Store::open`]
//! after the schema migrations. Each runs once: its name is recorded in `data_migrations` in
//! the same transaction as its rewrite (on PostgreSQL under the migration lock, so instances
//! starting together do not race). Must never: decide policy; a rewrite only re-expresses
//! what is stored.
//!
//! `canonical-key-identity`: `certificates.spki_sha256` and `blocked_keys.spki_sha256` were
//! the SHA-256 of the SubjectPublicKeyInfo bytes as submitted; they become the
//! [`KeyIdentity`] of the key (the hash of its canonical encoding), recomputed from the
//! certificate's stored to-be-signed bytes. Keys that were submitted canonically keep their
//! value. A block without a certificate (`serial` empty) cannot be recomputed and stays as it
//! is. When two certificates certify one key in different encodings (what the old identity
//! let through), the first keeps the canonical identity and the other its old value (the
//! column is unique); either one makes `key_reused` refuse the key.

use der::{Decode, Encode};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::OptionalExtension;

use super::schema::{blocked_keys, certificates, data_migrations};
use super::{Backend, Store, StoreError, Tx, PG_MIGRATION_LOCK};
use crate::key_identity::KeyIdentity;

/// The name recorded for the key-identity rewrite.
pub const CANONICAL_KEY_IDENTITY: &str = "canonical-key-identity";

/// Certificates read per query while rewriting.
const PAGE: i64 = 500;

/// What the key-identity rewrite changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RekeyReport {
    /// Certificates whose identity changed.
    pub certificates: u64,
    /// Blocked keys whose identity changed.
    pub blocked_keys: u64,
    /// Certificates left with their old value because another one holds the identity.
    pub duplicates: u64,
    /// Certificates whose stored bytes hold no readable key (left as they are).
    pub unreadable: u64,
}

impl Store {
    /// Run the data migrations not yet recorded.
    pub(super) fn run_data_migrations(&self) -> Result<(), StoreError> {
        self.write(|tx| -> Result<(), StoreError> {
            if tx.backend == Backend::Postgres {
                tx.conn.batch_execute(&format!(
                    "SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})"
                ))?;
            }
            if tx.data_migration_done(CANONICAL_KEY_IDENTITY)? {
                return Ok(());
            }
            let report = tx.rekey_to_canonical_identity()?;
            tx.record_data_migration(CANONICAL_KEY_IDENTITY)?;
            tracing::info!(
                migration = CANONICAL_KEY_IDENTITY,
                certificates = report.certificates,
                blocked_keys = report.blocked_keys,
                duplicates = report.duplicates,
                unreadable = report.unreadable,
                "data migration applied"
            );
            Ok(())
        })
    }
}

/// The identity of the key in a stored to-be-signed certificate, if it holds a readable key.
fn identity_in_tbs(tbs_der: &[u8]) -> Option<KeyIdentity> {
    let tbs = x509_cert::TbsCertificate::from_der(tbs_der).ok()?;
    let spki = tbs.subject_public_key_info.to_der().ok()?;
    KeyIdentity::of_spki_der(&spki).ok()
}

impl Tx<'_> {
    /// Whether the data migration `name` is recorded.
    pub fn data_migration_done(&mut self, name: &str) -> Result<bool, StoreError> {
        Ok(data_migrations::table
            .find(name)
            .select(data_migrations::name)
            .first::<String>(self.conn)
            .optional()?
            .is_some())
    }

    fn record_data_migration(&mut self, name: &str) -> Result<(), StoreError> {
        diesel::insert_into(data_migrations::table)
            .values((
                data_migrations::name.eq(name),
                data_migrations::applied_at.eq(chrono::Utc::now().naive_utc()),
            ))
            .execute(self.conn)?;
        Ok(())
    }

    /// Rewrite every stored key hash to the canonical [`KeyIdentity`] (see the module docs).
    pub fn rekey_to_canonical_identity(&mut self) -> Result<RekeyReport, StoreError> {
        let mut report = RekeyReport::default();
        let mut after = String::new();
        loop {
            let page: Vec<(String, String, Vec<u8>)> = certificates::table
                .filter(certificates::serial.gt(&after))
                .order(certificates::serial.asc())
                .limit(PAGE)
                .select((
                    certificates::serial,
                    certificates::spki_sha256,
                    certificates::tbs_der,
                ))
                .load(self.conn)?;
            let Some((last, _, _)) = page.last() else {
                break;
            };
            after = last.clone();
            for (serial, old, tbs_der) in page {
                let Some(identity) = identity_in_tbs(&tbs_der) else {
                    report.unreadable += 1;
                    continue;
                };
                let new = identity.sha256_hex();
                if new == old {
                    continue;
                }
                let taken = certificates::table
                    .filter(certificates::spki_sha256.eq(new))
                    .select(certificates::serial)
                    .first::<String>(self.conn)
                    .optional()?
                    .is_some();
                if taken {
                    report.duplicates += 1;
                    tracing::warn!(
                        serial,
                        "certificate certifies a key another certificate already certifies"
                    );
                } else {
                    diesel::update(certificates::table.find(&serial))
                        .set(certificates::spki_sha256.eq(new))
                        .execute(self.conn)?;
                    report.certificates += 1;
                }
                // The block of this certificate's key names the canonical identity either way.
                let blocked = blocked_keys::table
                    .filter(blocked_keys::spki_sha256.eq(&old))
                    .filter(blocked_keys::serial.eq(&serial));
                let already = blocked_keys::table
                    .find(new)
                    .select(blocked_keys::spki_sha256)
                    .first::<String>(self.conn)
                    .optional()?
                    .is_some();
                let changed = if already {
                    diesel::delete(blocked).execute(self.conn)?
                } else {
                    diesel::update(blocked)
                        .set(blocked_keys::spki_sha256.eq(new))
                        .execute(self.conn)?
                };
                report.blocked_keys += u64::try_from(changed).unwrap_or(0);
            }
        }
        Ok(report)
    }
}
