//! The `rate_limit_events` table: counted actions of the per-IIN rate limits and the lock
//! that serialises counting for one IIN. Must never: decide the limits (the RA does).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::OptionalExtension;

use super::schema::*;
use super::{StoreError, Tx};

impl Tx<'_> {
    /// Serialise rate-limit counting for one subject (an IIN) in one scope across instances
    /// until the transaction ends (PostgreSQL advisory lock; on SQLite the write transaction
    /// already excludes every other writer). Take it before any other lock but the audit
    /// chain's, which it takes first: a counted action is audited, and a shared transaction
    /// ([`super::Store::write`]) holds the audit lock before its members take their
    /// IINs' locks, so every transaction takes the two in the same order.
    pub fn lock_rate_subject(&mut self, scope: &str, subject: &str) -> Result<(), StoreError> {
        self.lock_audit_chain()?;
        self.lock_named(&format!("tamga-rate:{scope}:{subject}"))
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
}
