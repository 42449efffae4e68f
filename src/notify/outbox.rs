//! Operator actions on the outbox: a dead message queued again, with its audit entry, in one
//! transaction.
//!
//! Owns: the rule that only a `dead` message is queued again, and the `outbox.retried` audit
//! entry. Must never: queue a message that is not dead, or queue one without its audit entry.

use chrono::{DateTime, Utc};

use crate::store::{db_time, AuditEntry, Store, StoreError};

/// What [`retry_dead`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOutcome {
    /// The message was dead and is pending again.
    Queued,
    /// No outbox row has this id.
    NotFound,
    /// The row exists but is not dead (pending or sent): nothing changed.
    NotDead,
}

/// Queue the dead message `id` again for delivery now, recording who asked.
pub fn retry_dead(
    store: &Store,
    id: &str,
    operator: &str,
    now: DateTime<Utc>,
) -> Result<RetryOutcome, StoreError> {
    let at = db_time(now);
    store.write(|tx| -> Result<RetryOutcome, StoreError> {
        if tx.message(id)?.is_none() {
            return Ok(RetryOutcome::NotFound);
        }
        if !tx.retry_message(id, at)? {
            return Ok(RetryOutcome::NotDead);
        }
        tx.append_audit(&AuditEntry {
            at,
            actor: format!("operator:{operator}"),
            action: "outbox.retried".to_owned(),
            subject: id.to_owned(),
            details: serde_json::json!({}),
        })?;
        Ok(RetryOutcome::Queued)
    })
}
