//! Storage: the only module that talks to the database (and the only one that imports diesel).
//!
//! Owns: the connection pool over SQLite or PostgreSQL (one `DbConnection` type for both),
//! its bounded waits (pool, connect and TCP timeouts) and the classification of failures as
//! the database being unavailable ([`StoreError::is_unavailable`], [`Store::unreachable`]),
//! the embedded migrations applied at start (then the data migrations SQL cannot express),
//! write transactions that serialise correctly on both backends, and typed rows for every
//! table. Must never: decide policy (what may be issued, revoked or sent) — it stores what the
//! authorities decided, atomically.
//!
//! Every write goes through [`Store::write`] (or [`Store::write_alone`] for a long one): a
//! closure whose work is committed only if it returns `Ok`, so a failed request leaves no
//! half-written rows, and whose answer is returned only once committed. Writes that arrive
//! while a commit is in flight share the next transaction (group commit, `group`), each in a
//! savepoint of its own, so one fsync serves many, and this instance's writers hold one
//! connection between them. On SQLite the transaction is `BEGIN IMMEDIATE` (other processes
//! meet the busy timeout). On
//! PostgreSQL it is a read-committed transaction that takes the audit chain's advisory lock
//! first, then whatever else must be serialised (an issuer's CRL numbers, one IIN's rate-limit
//! count), so the write transactions of all instances follow one another without deadlock.
//!
//! This file keeps the connection and transaction machinery; each table (or aggregate) has a
//! file of its own with its rows and the [`Tx`] methods that touch it: `applications`,
//! `certificates` (with blocked keys and expiry notices), `backup` (a consistent copy of a
//! live SQLite database and the facts a backup's manifest records), `revocations` (the revocation
//! counter, revoked CA certificates), `revoked_serials` (revocations a restore learnt from
//! published CRLs whose certificates the database lacks), `crls`, `root_ocsp` (root-signed OCSP responses for CA
//! certificates), `outbox`, `audit_log`, `consent_tokens`, `rate_limits`; `rows` holds what
//! they share. The store imports no authority: the audit chain's hash comes from `audit`
//! through [`AuditChain`].

#[macro_use]
mod rows;

mod applications;
mod audit_log;
mod backup;
mod cabinet;
mod certificates;
mod consent_tokens;
mod crls;
mod data_migrations;
mod enrollment;
mod group;
mod outbox;
mod rate_limits;
mod revocations;
mod revoked_serials;
mod root_ocsp;
mod schema;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use applications::{Application, ApplicationStatus};
pub use audit_log::{AuditChain, AuditEntry, AuditRecord};
pub use backup::{known_schema_version, DatabaseFacts, SqliteFile};
pub use cabinet::CabinetSession;
pub use certificates::{
    BlockedKey, Certificate, CertificateKind, CertificateState, CertificateStatus, KeysStanding,
};
pub use crls::{CrlInfo, RevocationEntry, StoredCrl};
pub use data_migrations::{RekeyReport, CANONICAL_KEY_IDENTITY};
pub use enrollment::EnrollmentSession;
pub use group::GroupCommitStats;
pub use outbox::{OutboxMessage, OutboxStatus};
pub use revoked_serials::RevokedSerial;
pub use root_ocsp::{HeldRootResponse, RootOcspResponse};
pub use rows::{db_time, TableCounts};

use crate::config::{DatabaseConfig, DatabaseUrl};
use crate::error_code::ErrorCode;

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
    /// The transaction this write shared with others ([`Store::write`]) failed to commit, or
    /// was lost; every write in it failed with this error.
    #[error("the shared transaction failed: {0}")]
    Batch(Arc<StoreError>),
    /// The transaction this write shared with others was rolled back before its commit
    /// (another write in it left it unusable); nothing of it was written.
    #[error("the shared transaction was rolled back: another write in it failed")]
    BatchLost,
}

impl StoreError {
    /// Whether the database could not be reached or used at all: no connection within the
    /// pool timeout, a connection lost in the middle of a query (PostgreSQL stopped or
    /// restarted, network gone), or SQLite's lock not granted within the busy timeout. Such a
    /// failure is temporary by nature and changed nothing (the transaction did not commit).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Connect(_) | StoreError::Pool(_) | StoreError::BatchLost => true,
            StoreError::Query(e) => query_unavailable(e),
            StoreError::Batch(e) => e.is_unavailable(),
            StoreError::Migration(_) | StoreError::Corrupt { .. } => false,
        }
    }

    /// The stable code a caller answers with: `database_unavailable` (temporary, see
    /// [`StoreError::is_unavailable`]), `database_error` (the database answered with an
    /// error), or `internal_error` (a row that cannot be decoded, a failed migration).
    pub fn code(&self) -> ErrorCode {
        match self {
            _ if self.is_unavailable() => ErrorCode::DatabaseUnavailable,
            StoreError::Batch(e) => e.code(),
            StoreError::BatchLost => ErrorCode::DatabaseUnavailable,
            StoreError::Query(_) => ErrorCode::DatabaseError,
            StoreError::Connect(_)
            | StoreError::Pool(_)
            | StoreError::Migration(_)
            | StoreError::Corrupt { .. } => ErrorCode::InternalError,
        }
    }

    /// Whether the failure is a unique-constraint violation (a duplicate key).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => true,
            StoreError::Batch(e) => e.is_unique_violation(),
            _ => false,
        }
    }
}

#[cfg(test)]
impl StoreError {
    /// A query failure that is not a lost database (`database_error`), for other modules' tests.
    pub(crate) fn sample_query_failure() -> StoreError {
        StoreError::Query(diesel::result::Error::NotFound)
    }

    /// A query failure from a broken transaction manager, for other modules' tests.
    pub(crate) fn sample_broken_transaction() -> StoreError {
        StoreError::Query(diesel::result::Error::BrokenTransactionManager)
    }
}

fn query_unavailable(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
        | Error::DatabaseError(DatabaseErrorKind::UnableToSendCommand, _)
        | Error::BrokenTransactionManager => true,
        // SQLITE_BUSY / SQLITE_LOCKED after the busy timeout.
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            message.contains("database is locked") || message.contains("database table is locked")
        }
        Error::RollbackErrorOnCommit { commit_error, .. } => query_unavailable(commit_error),
        _ => false,
    }
}

/// libpq parameters added to a PostgreSQL URL unless it sets them: bounded connection
/// attempts, and TCP keepalives plus `tcp_user_timeout` so that a connection to a host that
/// vanished (no RST, packets dropped) fails within about 30 s instead of the kernel's
/// retransmission limit of many minutes; and no GSSAPI encryption (`gssencmode=disable`):
/// Tamga authenticates by password or TLS, libpq's default first tries Kerberos on every
/// connection, and Kerberos torn down at process exit under a closing connection aborted
/// short commands. A URL that wants GSSAPI says `gssencmode=prefer` or `require`.
fn pg_url_with_timeouts(raw: &str, connect_timeout_secs: u32) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return raw.to_owned();
    };
    let present: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let connect = connect_timeout_secs.to_string();
    let defaults = [
        ("connect_timeout", connect.as_str()),
        ("keepalives", "1"),
        ("keepalives_idle", "10"),
        ("keepalives_interval", "5"),
        ("keepalives_count", "3"),
        ("tcp_user_timeout", "30000"),
        ("gssencmode", "disable"),
    ];
    let missing: Vec<(&str, &str)> = defaults
        .into_iter()
        .filter(|(k, _)| !present.iter().any(|p| p == k))
        .collect();
    if !missing.is_empty() {
        url.query_pairs_mut().extend_pairs(missing);
    }
    url.to_string()
}

/// Opens connections for the pool, choosing the backend from the URL scheme (the derived
/// `establish` would try each backend in turn and hide the real error).
#[derive(Debug)]
struct Manager {
    url: DatabaseUrl,
    busy_timeout_ms: u32,
    synchronous: &'static str,
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
            "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = {};",
            self.busy_timeout_ms, self.synchronous
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

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        // A transaction manager left broken (a rollback that failed because the connection
        // died) is never handed out again.
        diesel::r2d2::R2D2Connection::is_broken(conn)
    }
}

/// r2d2 reports every failed connection attempt (several a second while the database is
/// down); the store logs the outage once ([`Store::unreachable`]), so the attempts go to debug.
#[derive(Debug)]
struct ConnectAttempts;

impl r2d2::HandleError<ConnectError> for ConnectAttempts {
    fn handle_error(&self, error: ConnectError) {
        tracing::debug!(%error, "a database connection attempt failed");
    }
}

/// The database, through a pool of connections.
#[derive(Clone)]
pub struct Store {
    pool: r2d2::Pool<Manager>,
    backend: Backend,
    /// Whether the last attempt to take a connection failed (see [`Store::unreachable`]).
    unreachable: Arc<AtomicBool>,
    /// The writers of this instance, queued for shared transactions ([`Store::write`]: on
    /// SQLite they queue here in order instead of polling `BEGIN IMMEDIATE` through SQLite's
    /// busy handler, which sleeps up to 100 ms between attempts; other processes still meet
    /// the busy timeout; on PostgreSQL one connection waits for the audit chain's lock, not
    /// one per writer).
    group: Arc<group::Group>,
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
    /// Connect, apply pending migrations (schema, then data: see `data_migrations`), and build
    /// the pool.
    pub fn open(url: &DatabaseUrl, config: &DatabaseConfig) -> Result<Store, StoreError> {
        let url = match url {
            DatabaseUrl::Postgres(raw) => {
                DatabaseUrl::Postgres(pg_url_with_timeouts(raw, config.connect_timeout_secs))
            }
            sqlite => sqlite.clone(),
        };
        let manager = Manager {
            url: url.clone(),
            busy_timeout_ms: config.busy_timeout_ms,
            synchronous: match config.sqlite_synchronous {
                crate::config::SqliteSynchronous::Full => "FULL",
                crate::config::SqliteSynchronous::Normal => "NORMAL",
            },
        };
        let backend = match &url {
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
            .connection_timeout(Duration::from_millis(u64::from(config.pool_timeout_ms)))
            .error_handler(Box::new(ConnectAttempts))
            .build(manager)?;
        let store = Store {
            pool,
            backend,
            unreachable: Arc::new(AtomicBool::new(false)),
            group: Arc::default(),
        };
        store.run_data_migrations()?;
        Ok(store)
    }

    /// A pooled connection (checked with `SELECT 1` on the way out of the pool), waiting at
    /// most `[database] pool_timeout_ms`.
    fn connection(&self) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
        match self.pool.get() {
            Ok(conn) => {
                if self.unreachable.load(Ordering::Relaxed)
                    && self.unreachable.swap(false, Ordering::Relaxed)
                {
                    tracing::info!("the database is reachable again");
                }
                Ok(conn)
            }
            Err(e) => {
                if !self.unreachable.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "the database cannot be reached");
                }
                Err(StoreError::Pool(e))
            }
        }
    }

    /// Whether the most recent attempt to take a connection failed: the database is probably
    /// down. Callers that hold a still-valid copy of what they would read (OCSP responses,
    /// CRLs) may serve it instead of waiting for the pool timeout; whoever takes the next
    /// connection successfully clears it.
    pub fn unreachable(&self) -> bool {
        self.unreachable.load(Ordering::Relaxed)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Check that a connection can be had and answers.
    pub fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.connection()?;
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }

    /// Run `f` as one write: its work is committed only if it returns `Ok`, and its answer
    /// (`Ok` or `Err`) is returned once the transaction that held it is committed. The write
    /// may share its transaction, and its commit, with the writes of this instance that
    /// arrive while another commit is in flight (group commit: see `group`); `f` runs in a
    /// savepoint of its own, so its `Err` undoes its own work only. `f` sees what earlier
    /// writes of the same transaction wrote, as it would after their commit. On PostgreSQL a
    /// database error aborts the savepoint, so `f` must not swallow one and return `Ok` (the
    /// whole batch would be lost); an insert whose key may be taken goes through
    /// `Tx::insert_first`, in a savepoint of its own. On PostgreSQL the
    /// transaction takes the audit chain's lock first (see `begin`), so the write transactions
    /// of several instances follow one another.
    pub fn write<T, E>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let baton = self.group.baton();
        let batch = match baton.take_open() {
            Some(batch) => batch,
            None => {
                // A failure here drops the baton, which goes to the next writer.
                let mut conn = self.connection()?;
                begin(&mut conn)?;
                group::Baton::opened(conn, false)
            }
        };
        baton.run(batch, self.backend, f)
    }

    /// [`Store::write`] for a long write (a CRL of a million entries, say): it waits for its
    /// turn like any write, but first commits the open transaction, so that the writes before
    /// it are answered without waiting for it, and then runs in a transaction of its own.
    pub fn write_alone<T, E>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let baton = self.group.baton();
        baton.close_open();
        let mut conn = self.connection()?;
        begin(&mut conn)?;
        baton.run(group::Baton::opened(conn, true), self.backend, f)
    }

    /// Counters of the shared transactions since the store was opened.
    pub fn group_commit_stats(&self) -> GroupCommitStats {
        self.group.stats()
    }

    /// Hold the writers' baton: writes queue until the hold is dropped, then run in as few
    /// transactions as they fit in (tests make a batch this way).
    #[cfg(test)]
    pub(crate) fn hold_writes(&self) -> impl Drop + '_ {
        self.group.baton()
    }

    /// Writers queued for the baton.
    #[cfg(test)]
    pub(crate) fn queued_writes(&self) -> usize {
        self.group.waiting()
    }

    /// Run read-only queries on one connection (no transaction).
    pub fn read<T, E>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut conn = self.connection()?;
        let mut tx = Tx {
            conn: &mut conn,
            backend: self.backend,
            audit_locked: false,
            chain_head: None,
            pending_audit: None,
        };
        f(&mut tx)
    }
}

/// Begin a write transaction on `conn`: `BEGIN IMMEDIATE` on SQLite (the write lock at once,
/// not at the first write); on PostgreSQL `BEGIN` and then the audit chain's lock, which every
/// write transaction takes first. Nearly every write appends to the chain, and one that
/// locked a row before the chain (an application's access token, say) would deadlock with a
/// shared transaction of another instance that holds the chain and comes to the same row; with
/// the chain's lock first, the write transactions of all instances follow one another and no
/// two can wait on each other.
fn begin(conn: &mut DbConnection) -> Result<(), StoreError> {
    match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
        }
        DbConnection::Pg(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN")?;
            if let Err(e) =
                c.batch_execute(&format!("SELECT pg_advisory_xact_lock({PG_AUDIT_LOCK})"))
            {
                let _ =
                    <DbConnection as Connection>::TransactionManager::rollback_transaction(conn);
                return Err(e.into());
            }
        }
    }
    Ok(())
}

/// A connection inside [`Store::write`] or [`Store::read`]. Its methods are the store's API.
pub struct Tx<'c> {
    conn: &'c mut DbConnection,
    backend: Backend,
    /// The transaction holds the audit chain's lock (PostgreSQL: every write transaction
    /// takes it when it begins).
    audit_locked: bool,
    /// The chain's head (`seq`, `hash`) as this transaction last wrote it, so that the next
    /// append in the same transaction (the next member of a shared one) need not read it
    /// back: under the chain's lock nobody else moves it. `None`: read it.
    chain_head: Option<(i64, String)>,
    /// In a shared transaction, the audit entries this member appended, not yet inserted:
    /// the batch inserts every kept member's entries in one statement before it commits
    /// (`None`: each is inserted at once).
    pending_audit: Option<Vec<AuditRecord>>,
}

impl Tx<'_> {
    /// Take the audit chain's lock for the rest of the transaction (PostgreSQL; on SQLite the
    /// write transaction already holds the database's write lock). It is the first lock a
    /// transaction that appends to the chain takes (see [`Tx::lock_rate_subject`]).
    fn lock_audit_chain(&mut self) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres && !self.audit_locked {
            self.conn
                .batch_execute(&format!("SELECT pg_advisory_xact_lock({PG_AUDIT_LOCK})"))?;
            self.audit_locked = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn postgres_urls_get_bounded_timeouts_unless_they_set_their_own() {
        let url = pg_url_with_timeouts("postgres://u:p@db:5432/tamga", 7);
        let parsed = url::Url::parse(&url).unwrap();
        let pairs: std::collections::HashMap<String, String> =
            parsed.query_pairs().into_owned().collect();
        assert_eq!(pairs["connect_timeout"], "7");
        assert_eq!(pairs["keepalives"], "1");
        assert_eq!(pairs["tcp_user_timeout"], "30000");
        assert_eq!(pairs["gssencmode"], "disable");
        assert_eq!(parsed.password(), Some("p"));
        assert_eq!(parsed.path(), "/tamga");

        let own = pg_url_with_timeouts(
            "postgres://u@db/tamga?connect_timeout=60&sslmode=require&tcp_user_timeout=0",
            7,
        );
        let parsed = url::Url::parse(&own).unwrap();
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        let get = |k: &str| {
            pairs
                .iter()
                .filter(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("connect_timeout"), ["60"], "the URL's own value wins");
        assert_eq!(get("tcp_user_timeout"), ["0"]);
        assert_eq!(get("sslmode"), ["require"]);
        assert_eq!(get("keepalives_idle"), ["10"]);
    }

    #[test]
    fn lost_connections_and_locks_are_unavailability_other_failures_are_not() {
        use diesel::result::{DatabaseErrorKind, Error};
        let db = |kind, message: &str| {
            StoreError::Query(Error::DatabaseError(kind, Box::new(message.to_owned())))
        };
        for unavailable in [
            db(
                DatabaseErrorKind::ClosedConnection,
                "server closed the connection",
            ),
            db(
                DatabaseErrorKind::UnableToSendCommand,
                "no connection to the server",
            ),
            db(DatabaseErrorKind::Unknown, "database is locked"),
            StoreError::Connect("connection refused".to_owned()),
            StoreError::Query(Error::BrokenTransactionManager),
        ] {
            assert!(unavailable.is_unavailable(), "{unavailable}");
            assert_eq!(unavailable.code().as_str(), "database_unavailable");
        }
        for other in [
            db(DatabaseErrorKind::Unknown, "syntax error"),
            db(DatabaseErrorKind::UniqueViolation, "duplicate key"),
            StoreError::Query(Error::NotFound),
        ] {
            assert!(!other.is_unavailable(), "{other}");
            assert_eq!(other.code().as_str(), "database_error");
        }
        let corrupt = StoreError::Corrupt {
            table: "certificates",
            message: "bad".to_owned(),
        };
        assert_eq!(corrupt.code().as_str(), "internal_error");
    }
}
