//! Storage: the only module that talks to the database (and the only one that imports diesel).
//!
//! Owns: the connection pool over SQLite or PostgreSQL (one `DbConnection` type for both),
//! the embedded migrations applied at start, write transactions that serialise correctly on
//! both backends, and typed rows for every table. Must never: decide policy (what may be
//! issued, revoked or sent) — it stores what the authorities decided, atomically.
//!
//! Every write goes through [`Store::write`]: one database transaction, committed only if the
//! closure returns `Ok`, so a failed request leaves no half-written rows. On SQLite it is a
//! `BEGIN IMMEDIATE` transaction (writers queue on the busy timeout instead of failing on a
//! lock upgrade); on PostgreSQL a read-committed transaction in which the rows that need
//! serialising (the audit chain, an issuer's CRL numbers, one IIN's rate-limit count) take a
//! transaction-scoped advisory lock.

mod models;
mod schema;

use std::fmt;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use models::*;

use crate::config::{DatabaseConfig, DatabaseUrl};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Advisory-lock key that serialises migrations between instances starting together.
const PG_MIGRATION_LOCK: i64 = 0x7461_6d67_6100_0001;
/// Advisory-lock key that serialises appends to the audit chain.
const PG_AUDIT_LOCK: i64 = 0x7461_6d67_6100_0002;

/// One connection to either database.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// PostgreSQL.
    Pg(PgConnection),
    /// SQLite.
    Sqlite(SqliteConnection),
}

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (single instance, pilot).
    Sqlite,
    /// PostgreSQL (several instances).
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Could not connect to the database.
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    /// No pooled connection became free in time (database down or overloaded).
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::Error),
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// A stored value could not be decoded into its domain type.
    #[error("corrupt row in {table}: {message}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl StoreError {
    /// Whether the failure is a unique-constraint violation (a duplicate key).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

/// Opens connections for the pool, choosing the backend from the URL scheme (the derived
/// `establish` would try each backend in turn and hide the real error).
#[derive(Debug)]
struct Manager {
    url: DatabaseUrl,
    busy_timeout_ms: u32,
}

/// The error a pooled connection attempt reports.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectError(String);

impl Manager {
    fn connect_sqlite(&self, path: &std::path::Path) -> Result<SqliteConnection, ConnectError> {
        let path = path
            .to_str()
            .ok_or_else(|| ConnectError(format!("{} is not valid UTF-8", path.display())))?;
        let mut conn = SqliteConnection::establish(path)
            .map_err(|e| ConnectError(format!("sqlite://{path}: {e}")))?;
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON;",
            self.busy_timeout_ms
        ))
        .map_err(|e| ConnectError(format!("sqlite://{path}: {e}")))?;
        Ok(conn)
    }

    fn connect_pg(url: &str) -> Result<PgConnection, ConnectError> {
        PgConnection::establish(url).map_err(|e| ConnectError(e.to_string()))
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = ConnectError;

    fn connect(&self) -> Result<DbConnection, ConnectError> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => self.connect_sqlite(path).map(DbConnection::Sqlite),
            DatabaseUrl::Postgres(url) => Self::connect_pg(url).map(DbConnection::Pg),
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectError> {
        conn.batch_execute("SELECT 1")
            .map_err(|e| ConnectError(e.to_string()))
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// The database, through a pool of connections.
#[derive(Clone)]
pub struct Store {
    pool: r2d2::Pool<Manager>,
    backend: Backend,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("state", &self.pool.state())
            .finish()
    }
}

impl Store {
    /// Connect, apply pending migrations, and build the pool.
    pub fn open(url: &DatabaseUrl, config: &DatabaseConfig) -> Result<Store, StoreError> {
        let manager = Manager {
            url: url.clone(),
            busy_timeout_ms: config.busy_timeout_ms,
        };
        let backend = match url {
            DatabaseUrl::Sqlite(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        StoreError::Connect(format!("cannot create {}: {e}", parent.display()))
                    })?;
                }
                let mut conn = manager
                    .connect_sqlite(path)
                    .map_err(|e| StoreError::Connect(e.0))?;
                // WAL is a property of the file: set once, before the pool opens.
                conn.batch_execute("PRAGMA journal_mode = WAL;")?;
                conn.run_pending_migrations(SQLITE_MIGRATIONS)
                    .map_err(|e| StoreError::Migration(e.to_string()))?;
                Backend::Sqlite
            }
            DatabaseUrl::Postgres(raw) => {
                let mut conn = Manager::connect_pg(raw).map_err(|e| StoreError::Connect(e.0))?;
                conn.batch_execute(&format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))?;
                let migrated = conn
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|_| ())
                    .map_err(|e| StoreError::Migration(e.to_string()));
                conn.batch_execute(&format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))?;
                migrated?;
                Backend::Postgres
            }
        };
        let pool = r2d2::Pool::builder()
            .max_size(config.pool_size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            .build(manager)?;
        Ok(Store { pool, backend })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Check that a connection can be had and answers.
    pub fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }

    /// Run `f` in one write transaction; commit if it returns `Ok`, roll back otherwise.
    pub fn write<T, E>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut conn = self.pool.get().map_err(StoreError::from)?;
        let conn: &mut DbConnection = &mut conn;
        let begun = match conn {
            DbConnection::Sqlite(c) => {
                AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
            }
            DbConnection::Pg(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN"),
        };
        begun.map_err(StoreError::from)?;
        let mut tx = Tx {
            conn: &mut *conn,
            backend: self.backend,
        };
        match f(&mut tx) {
            Ok(value) => {
                <DbConnection as Connection>::TransactionManager::commit_transaction(conn)
                    .map_err(StoreError::from)?;
                Ok(value)
            }
            Err(e) => {
                // A failed rollback leaves the connection broken; r2d2 then discards it.
                let _ =
                    <DbConnection as Connection>::TransactionManager::rollback_transaction(conn);
                Err(e)
            }
        }
    }

    /// Run read-only queries on one connection (no transaction).
    pub fn read<T, E>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut conn = self.pool.get().map_err(StoreError::from)?;
        let mut tx = Tx {
            conn: &mut conn,
            backend: self.backend,
        };
        f(&mut tx)
    }
}

/// A connection inside [`Store::write`] or [`Store::read`]. Its methods are the store's API.
pub struct Tx<'c> {
    conn: &'c mut DbConnection,
    backend: Backend,
}

impl Tx<'_> {
    fn lock_audit_chain(&mut self) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            self.conn
                .batch_execute(&format!("SELECT pg_advisory_xact_lock({PG_AUDIT_LOCK})"))?;
        }
        // SQLite: the write transaction already holds the database's write lock.
        Ok(())
    }
}
