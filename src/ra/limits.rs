//! The per-IIN limits on applications and holder revocations: counted in the transaction
//! they limit, so every instance on one database enforces the same bound. Must never: count
//! an action whose transaction does not commit, or limit operators.

use chrono::{DateTime, Utc};

use super::{RaError, Registrar};
use crate::store::{db_time, Tx};

/// Per-IIN limits over any 24 hours, counted in the database so that every instance on it
/// enforces the same bound. 0 means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IinLimits {
    /// Applications stored per IIN.
    pub applications_per_day: u32,
    /// Revocations by the holder per IIN (operators' revocations are not counted).
    pub revocations_per_day: u32,
}

/// The window of the per-IIN limits.
const RATE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// What a per-IIN limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Limited {
    Application,
    Revocation,
}

impl Limited {
    fn scope(self) -> &'static str {
        match self {
            Limited::Application => "application",
            Limited::Revocation => "revocation",
        }
    }
    fn plural(self) -> &'static str {
        match self {
            Limited::Application => "applications",
            Limited::Revocation => "revocations",
        }
    }
}

impl Registrar {
    fn limit(&self, what: Limited) -> u32 {
        match what {
            Limited::Application => self.limits.applications_per_day,
            Limited::Revocation => self.limits.revocations_per_day,
        }
    }

    /// Refuse when `iin` already has its limit of `what` in the 24 hours before `now`. With
    /// `count`, inside a write transaction: first lock the IIN's counting (so instances
    /// sharing the database cannot both take the last slot), then count this action too, in
    /// the statement that checks the limit — it is only kept if the transaction commits.
    pub(super) fn check_iin_limit(
        &self,
        tx: &mut Tx<'_>,
        what: Limited,
        iin: &str,
        now: DateTime<Utc>,
        count: bool,
    ) -> Result<(), RaError> {
        let limit = self.limit(what);
        if limit == 0 {
            return Ok(());
        }
        let since = db_time(now - RATE_WINDOW);
        if count {
            tx.lock_rate_subject(what.scope(), iin)?;
            // Counted in the same statement that checks the limit; the refusal below then
            // reads what it needs for its Retry-After.
            if tx.record_rate_event_within(
                what.scope(),
                iin,
                since,
                i64::from(limit),
                db_time(now),
            )? {
                return Ok(());
            }
        }
        let used = tx.rate_events_since(what.scope(), iin, since)?;
        if used >= i64::from(limit) {
            // A slot frees when the oldest action beyond the last `limit - 1` leaves the window.
            let freeing = tx.rate_event_time(what.scope(), iin, since, used - i64::from(limit))?;
            // Whole seconds, rounded up: a client that waits this long gets through.
            let retry_after_secs = freeing
                .map(|t| {
                    let wait = t.and_utc() + RATE_WINDOW - now;
                    wait.num_seconds() + i64::from(wait.subsec_nanos() > 0)
                })
                .unwrap_or(1)
                .max(1)
                .unsigned_abs();
            return Err(RaError::IinRateLimited {
                what: what.plural(),
                limit,
                retry_after_secs,
            });
        }
        if count {
            // Not reached: the statement above counted the action unless the limit was
            // reached, and under the lock the count cannot have changed since. Kept so that
            // an action that passes the check is never left uncounted.
            tx.record_rate_event(what.scope(), iin, db_time(now))?;
        }
        Ok(())
    }

    /// Forget counted actions that left the per-IIN window. Returns how many.
    pub fn prune_rate_events(&self) -> Result<usize, RaError> {
        let before = db_time(self.clock.now() - RATE_WINDOW);
        Ok(self.store.write(|tx| tx.prune_rate_events(before))?)
    }
}
