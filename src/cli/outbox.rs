//! `tamga outbox …`: the e-mail outbox, listed, and a dead message queued again.

use super::*;
use crate::notify::outbox::RetryOutcome;

pub(super) fn outbox(config: &ValidConfig, command: OutboxCommand) -> Result<(), Failure> {
    let store = open_store(config)?;
    let internal = |e: crate::store::StoreError| Failure::Internal(e.into());
    match command {
        OutboxCommand::List {
            status,
            limit,
            json,
        } => {
            let status = status_arg(
                status.as_deref(),
                crate::store::OutboxStatus::parse,
                "pending, sent or dead",
            )?;
            let rows = store
                .read(|tx| tx.list_messages(status, limit.clamp(1, 100_000)))
                .map_err(internal)?;
            let rows: Vec<serde_json::Value> = rows
                .iter()
                .map(|m| {
                    serde_json::json!({
                        "id": m.id,
                        "event": m.event,
                        "recipient": m.recipient,
                        "language": m.language,
                        "status": m.status.as_str(),
                        "attempts": m.attempts,
                        "next_attempt_at": m.next_attempt_at.and_utc().to_rfc3339(),
                        "last_error": m.last_error,
                        "created_at": m.created_at.and_utc().to_rfc3339(),
                        "sent_at": m.sent_at.map(|t| t.and_utc().to_rfc3339()),
                    })
                })
                .collect();
            print_rows(
                &rows,
                json,
                &[
                    "id",
                    "event",
                    "recipient",
                    "status",
                    "attempts",
                    "created_at",
                ],
            )
        }
        OutboxCommand::Retry { id, operator } => {
            let operator = operator.unwrap_or_else(operator_name);
            match crate::notify::outbox::retry_dead(&store, &id, &operator, SystemClock.now())
                .map_err(internal)?
            {
                RetryOutcome::Queued => {
                    out!("e-mail {id} queued again")?;
                    Ok(())
                }
                RetryOutcome::NotFound => Err(Failure::NotFound(format!("no outbox row {id}"))),
                RetryOutcome::NotDead => {
                    Err(Failure::Refused(format!("outbox row {id} is not dead")))
                }
            }
        }
    }
}
