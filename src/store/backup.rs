//! Backups of the database: a consistent copy of a live SQLite database (`VACUUM INTO`, which
//! reads one snapshot while the server keeps writing), the facts a backup's manifest records
//! (schema version, the audit chain's head, every issuer's highest CRL number), read from the
//! copy itself, and the schema version a binary knows. Must never: write to the live database,
//! or leave a copy that is not complete (the caller writes it under a temporary name and
//! renames it once synced).
//!
//! PostgreSQL is backed up with `pg_dump` (see `docs/operations.md`): the store reads the same
//! facts from any database, so a restored one can be checked alike.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel_migrations::MigrationHarness;

use super::schema::*;
use super::{
    AuditRecord, Backend, DbConnection, Store, StoreError, Tx, POSTGRES_MIGRATIONS,
    SQLITE_MIGRATIONS,
};

/// What a backup's manifest records about the database, read from one consistent state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseFacts {
    /// The newest migration applied (diesel's version, e.g. `20261206000002`).
    pub schema_version: String,
    /// The audit chain's newest entry, if any.
    pub audit_head: Option<AuditRecord>,
    /// Every issuer's highest CRL number (full and delta share it), by issuer id.
    pub crl_numbers: Vec<(String, i64)>,
}

/// The newest migration this binary carries for `backend`.
pub fn known_schema_version(backend: Backend) -> Result<String, StoreError> {
    let names: Vec<String> = match backend {
        Backend::Sqlite => MigrationSource::<Sqlite>::migrations(&SQLITE_MIGRATIONS)
            .map_err(|e| StoreError::Migration(e.to_string()))?
            .iter()
            .map(|m| m.name().version().to_string())
            .collect(),
        Backend::Postgres => MigrationSource::<diesel::pg::Pg>::migrations(&POSTGRES_MIGRATIONS)
            .map_err(|e| StoreError::Migration(e.to_string()))?
            .iter()
            .map(|m| m.name().version().to_string())
            .collect(),
    };
    names
        .into_iter()
        .max()
        .ok_or_else(|| StoreError::Migration("no embedded migrations".to_owned()))
}

impl Store {
    /// Write a consistent copy of this SQLite database to `to` (which must not exist), while
    /// other connections keep reading and writing: `VACUUM INTO` copies one read snapshot.
    /// PostgreSQL is refused (`pg_dump` is its tool).
    pub fn backup_sqlite_into(&self, to: &Path) -> Result<(), StoreError> {
        let target = to
            .to_str()
            .ok_or_else(|| StoreError::Connect(format!("{} is not valid UTF-8", to.display())))?;
        let mut conn = self.connection()?;
        match &mut *conn {
            DbConnection::Sqlite(c) => {
                diesel::sql_query("VACUUM INTO ?")
                    .bind::<diesel::sql_types::Text, _>(target)
                    .execute(c)?;
                Ok(())
            }
            DbConnection::Pg(_) => Err(StoreError::Connect(
                "a PostgreSQL database is backed up with pg_dump".to_owned(),
            )),
        }
    }

    /// SQLite: move what the write-ahead log holds into the database file and empty the log,
    /// so that the file alone is the whole database (before it is renamed into place).
    /// PostgreSQL: nothing to do.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            let mut conn = self.connection()?;
            conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);")?;
        }
        Ok(())
    }

    /// The facts of this database as it stands (one read transaction on PostgreSQL, so the
    /// three agree).
    pub fn facts(&self) -> Result<DatabaseFacts, StoreError> {
        let mut conn = self.connection()?;
        let conn: &mut DbConnection = &mut conn;
        conn.batch_execute("BEGIN")?;
        let facts = Tx {
            conn: &mut *conn,
            backend: self.backend,
            audit_locked: false,
            chain_head: None,
            pending_audit: None,
        }
        .facts();
        let _ = conn.batch_execute("ROLLBACK");
        facts
    }
}

/// A SQLite database file read on its own (a backup), without migrating or changing it.
pub struct SqliteFile {
    conn: DbConnection,
}

impl std::fmt::Debug for SqliteFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteFile").finish_non_exhaustive()
    }
}

impl SqliteFile {
    /// Open the file at `path` for reading only (it must exist).
    pub fn open(path: &Path) -> Result<SqliteFile, StoreError> {
        let shown = path.display().to_string();
        let path = path
            .to_str()
            .ok_or_else(|| StoreError::Connect(format!("{shown} is not valid UTF-8")))?;
        if !Path::new(path).is_file() {
            return Err(StoreError::Connect(format!("{shown}: no such file")));
        }
        let conn = SqliteConnection::establish(path)
            .map_err(|e| StoreError::Connect(format!("sqlite://{shown}: {e}")))?;
        let mut conn = DbConnection::Sqlite(conn);
        conn.batch_execute("PRAGMA query_only = ON;")?;
        Ok(SqliteFile { conn })
    }

    /// Run read-only queries on the file.
    pub fn read<T, E>(&mut self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut tx = Tx {
            conn: &mut self.conn,
            backend: Backend::Sqlite,
            audit_locked: false,
            chain_head: None,
            pending_audit: None,
        };
        f(&mut tx)
    }

    /// The file's facts, read in one transaction.
    pub fn facts(&mut self) -> Result<DatabaseFacts, StoreError> {
        self.conn.batch_execute("BEGIN")?;
        let facts = self.read(|tx| tx.facts());
        let _ = self.conn.batch_execute("ROLLBACK");
        facts
    }
}

impl Tx<'_> {
    /// Schema version, audit head and CRL numbers of the database this transaction reads.
    fn facts(&mut self) -> Result<DatabaseFacts, StoreError> {
        Ok(DatabaseFacts {
            schema_version: self.schema_version()?,
            audit_head: self.audit_tail(1)?.pop(),
            crl_numbers: self.crl_numbers()?,
        })
    }

    /// The newest migration applied to this database.
    pub fn schema_version(&mut self) -> Result<String, StoreError> {
        let applied = match &mut *self.conn {
            DbConnection::Sqlite(c) => c.applied_migrations(),
            DbConnection::Pg(c) => c.applied_migrations(),
        }
        .map_err(|e| StoreError::Migration(e.to_string()))?;
        applied
            .iter()
            .map(ToString::to_string)
            .max()
            .ok_or_else(|| StoreError::Migration("no migration was ever applied".to_owned()))
    }

    /// Every issuer's highest CRL number, in issuer order.
    pub fn crl_numbers(&mut self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows: Vec<(String, Option<i64>)> = crls::table
            .group_by(crls::issuer_id)
            .select((crls::issuer_id, diesel::dsl::max(crls::crl_number)))
            .order(crls::issuer_id.asc())
            .load(self.conn)?;
        Ok(rows
            .into_iter()
            .filter_map(|(issuer, n)| n.map(|n| (issuer, n)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::{DatabaseConfig, DatabaseUrl};

    /// The newest migration folder of `backend`, as diesel writes its version (digits only).
    fn newest_folder(backend: &str) -> String {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                let stamp = name.split('_').next().unwrap().to_owned();
                stamp
                    .chars()
                    .filter(char::is_ascii_digit)
                    .collect::<String>()
            })
            .max()
            .unwrap()
    }

    #[test]
    fn the_known_schema_version_is_the_newest_migration_of_each_backend() {
        assert_eq!(
            known_schema_version(Backend::Sqlite).unwrap(),
            newest_folder("sqlite")
        );
        assert_eq!(
            known_schema_version(Backend::Postgres).unwrap(),
            newest_folder("postgres")
        );
    }

    #[test]
    fn a_copy_holds_the_facts_of_the_database_it_was_made_from() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("live.db"));
        let store = Store::open(&url, &DatabaseConfig::default()).unwrap();
        let copy = dir.path().join("copy.db");
        store.backup_sqlite_into(&copy).unwrap();
        let live = store.facts().unwrap();
        assert_eq!(
            live.schema_version,
            known_schema_version(Backend::Sqlite).unwrap()
        );
        assert_eq!(SqliteFile::open(&copy).unwrap().facts().unwrap(), live);
        // A copy is never written over.
        assert!(store.backup_sqlite_into(&copy).is_err());
        assert!(SqliteFile::open(&dir.path().join("absent.db")).is_err());
    }
}
