//! The `rate_limit_events` table: counted actions of the per-IIN rate limits and the lock
//! that serialises counting for one IIN. Must never: decide the limits (the RA does).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::OptionalExtension;

use super::schema::*;
use super::{StoreError, Tx};

impl Tx<'_> {
    /// Serialise rate-limit counting for one subject (an IIN) in one scope across instances
    /// until the transaction ends. The audit chain's lock does it: every write transaction
    /// takes that lock when it begins (PostgreSQL; see `store::begin`) or holds the
    /// database's write lock (SQLite), so no two count at once, on any instance, and a lock
    /// per subject would only cost a round trip. Taken here too, for a transaction that
    /// does not hold it yet.
    pub fn lock_rate_subject(&mut self, _scope: &str, _subject: &str) -> Result<(), StoreError> {
        self.lock_audit_chain()
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

    /// Count one action of `scope` for `subject` at `at` if fewer than `limit` were counted
    /// at or after `since`; returns whether it was counted. One statement (`INSERT … SELECT
    /// … WHERE (SELECT COUNT(*) …) < limit`, prepared once per connection): the count and the
    /// insert are one round trip. Call it under [`Tx::lock_rate_subject`].
    pub fn record_rate_event_within(
        &mut self,
        scope: &str,
        subject: &str,
        since: NaiveDateTime,
        limit: i64,
        at: NaiveDateTime,
    ) -> Result<bool, StoreError> {
        use diesel::sql_types::{Text, Timestamp};
        let counted = rate_limit_events::table
            .filter(rate_limit_events::scope.eq(scope))
            .filter(rate_limit_events::subject.eq(subject))
            .filter(rate_limit_events::at.ge(since))
            .count()
            .single_value();
        let row = diesel::select((
            uuid::Uuid::new_v4().to_string().into_sql::<Text>(),
            scope.into_sql::<Text>(),
            subject.into_sql::<Text>(),
            at.into_sql::<Timestamp>(),
        ))
        .filter(counted.lt(limit));
        let inserted = diesel::insert_into(rate_limit_events::table)
            .values(row)
            .into_columns((
                rate_limit_events::id,
                rate_limit_events::scope,
                rate_limit_events::subject,
                rate_limit_events::at,
            ))
            .execute(self.conn)?;
        Ok(inserted == 1)
    }

    /// Forget counted actions older than `before`. Returns how many.
    pub fn prune_rate_events(&mut self, before: NaiveDateTime) -> Result<usize, StoreError> {
        Ok(
            diesel::delete(rate_limit_events::table.filter(rate_limit_events::at.lt(before)))
                .execute(self.conn)?,
        )
    }
}
