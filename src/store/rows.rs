//! What every table's file shares: enums stored as text, decoding rows into domain types,
//! inserts whose unique key may be taken, the answer of a conditional update, advisory-lock
//! keys, the database's time precision, and the row counts of the main tables.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::*;
use super::{StoreError, Tx};

/// The domain value of the row a query found, if any.
pub(super) fn decode_one<R, T>(row: Option<R>) -> Result<Option<T>, StoreError>
where
    T: TryFrom<R, Error = StoreError>,
{
    row.map(T::try_from).transpose()
}

/// The domain values of the rows a query found.
pub(super) fn decode_all<R, T>(rows: Vec<R>) -> Result<Vec<T>, StoreError>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}

/// Runs `$body` with `$c` bound to the connection of the database's own backend, not
/// diesel's two-backend connection, whose dialect marks every derived insert unsafe to keep
/// prepared: on the native connection, a statement of the issuance path is parsed and
/// planned once per connection, not on every call (PostgreSQL).
macro_rules! native {
    ($conn:expr, |$c:ident| $body:expr) => {
        match &mut *$conn {
            super::DbConnection::Pg($c) => $body,
            super::DbConnection::Sqlite($c) => $body,
        }
    };
}

/// Declares, for a table whose rows decode into a domain type, the boxed query type and the
/// two private `Tx` methods every query of that table ends with: the first row decoded, and
/// every row decoded.
macro_rules! row_decoders {
    ($query:ident, $table:ident, $row:ident => $domain:ident, $first:ident, $load:ident) => {
        /// A query over the table, boxed so that one decoder serves every query.
        type $query<'a> = $table::BoxedQuery<'a, super::MultiBackend>;

        impl Tx<'_> {
            /// The first row `query` selects, decoded.
            pub(super) fn $first(
                &mut self,
                query: $query<'_>,
            ) -> Result<Option<$domain>, StoreError> {
                let row = query
                    .select($row::as_select())
                    .first(self.conn)
                    .optional()?;
                super::rows::decode_one(row)
            }

            /// Every row `query` selects, decoded.
            pub(super) fn $load(&mut self, query: $query<'_>) -> Result<Vec<$domain>, StoreError> {
                super::rows::decode_all(query.select($row::as_select()).load(self.conn)?)
            }
        }
    };
}

/// A value stored as text (a `text_enum!` or a value of the shared vocabulary), read back; a
/// text no `what` has is a corrupt row of `table`.
pub(super) fn decode_text<T>(
    table: &'static str,
    what: &str,
    text: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| StoreError::Corrupt {
        table,
        message: format!("unknown {what} `{text}`"),
    })
}

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
                super::rows::decode_text($table, stringify!($name), s, $name::parse)
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

impl Tx<'_> {
    /// An insert whose unique key may already exist: `true` if it inserted, `false` if the key
    /// was taken. It runs in a savepoint of its own: on PostgreSQL the violation aborts the
    /// savepoint it happens in, and the transaction (or the write's own savepoint, in a shared
    /// transaction) must stay usable.
    pub(super) fn insert_first(
        &mut self,
        insert: impl FnOnce(&mut super::DbConnection) -> diesel::QueryResult<usize>,
    ) -> Result<bool, StoreError> {
        match diesel::Connection::transaction(&mut *self.conn, insert).map_err(StoreError::from) {
            Ok(_) => Ok(true),
            Err(e) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The answer of a conditional update: `true` when it touched exactly one row, `false` when
/// no row was in the state the update requires (or none has the key).
pub(super) fn touched_one(result: diesel::QueryResult<usize>) -> Result<bool, StoreError> {
    Ok(result? == 1)
}

/// The answer of an update by key that must touch its row: `NotFound` when no row has the key.
pub(super) fn touched_the_row(result: diesel::QueryResult<usize>) -> Result<(), StoreError> {
    if touched_one(result)? {
        Ok(())
    } else {
        Err(StoreError::Query(diesel::result::Error::NotFound))
    }
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

/// A stable 63-bit advisory-lock key for a name.
fn lock_key(name: &str) -> i64 {
    let digest = openssl::sha::sha256(name.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    i64::from_be_bytes(bytes) & i64::MAX
}

impl Tx<'_> {
    /// Serialise on `name` across instances until the transaction ends (a PostgreSQL
    /// transaction-scoped advisory lock; on SQLite the write transaction already excludes
    /// every other writer).
    pub(super) fn lock_named(&mut self, name: &str) -> Result<(), StoreError> {
        if self.backend == super::Backend::Postgres {
            let key = lock_key(name);
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({key})")).execute(self.conn)?;
        }
        Ok(())
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
}
