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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{DatabaseConfig, DatabaseUrl};
    use crate::store::{OutboxMessage, OutboxStatus};

    fn row(id: &str, status: OutboxStatus, now: DateTime<Utc>) -> OutboxMessage {
        crate::notify::tests::message(id, status, 2, now)
    }

    #[test]
    fn only_a_dead_message_is_queued_again_and_each_retry_is_audited() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &DatabaseUrl::Sqlite(dir.path().join("t.db")),
            &DatabaseConfig::default(),
        )
        .unwrap();
        let now = Utc::now();
        store
            .write(|tx| {
                tx.enqueue_message(&row("pending", OutboxStatus::Pending, now))?;
                tx.enqueue_message(&row("dead", OutboxStatus::Dead, now))
            })
            .unwrap();
        let audited = || {
            store
                .read(|tx| tx.audit_tail(10))
                .unwrap()
                .iter()
                .filter(|r| r.action == "outbox.retried")
                .count()
        };
        assert_eq!(
            retry_dead(&store, "missing", "aliya", now).unwrap(),
            RetryOutcome::NotFound
        );
        assert_eq!(
            retry_dead(&store, "pending", "aliya", now).unwrap(),
            RetryOutcome::NotDead
        );
        assert_eq!(audited(), 0, "nothing changed, nothing recorded");
        assert_eq!(
            retry_dead(&store, "dead", "aliya", now).unwrap(),
            RetryOutcome::Queued
        );
        let again = store.read(|tx| tx.message("dead")).unwrap().unwrap();
        assert_eq!(again.status, OutboxStatus::Pending);
        assert_eq!(audited(), 1);
        assert_eq!(
            retry_dead(&store, "dead", "aliya", now).unwrap(),
            RetryOutcome::NotDead,
            "a second retry finds it pending"
        );
    }
}
