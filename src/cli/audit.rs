//! `tamga audit …`: verify the hash chain, show its tail.

use super::*;

pub(super) fn audit(config: &ValidConfig, command: AuditCommand) -> Result<(), Failure> {
    let store = open_store(config)?;
    match command {
        AuditCommand::Verify { expect, json } => match crate::audit::verify(&store) {
            Ok(v) => {
                if let Some(expect) = expect {
                    let (seq, hash) = expect
                        .split_once(':')
                        .and_then(|(s, h)| s.parse::<i64>().ok().map(|s| (s, h.to_owned())))
                        .ok_or_else(|| {
                            Failure::Usage(format!("--expect {expect}: expected SEQ:HASH"))
                        })?;
                    let found = store
                        .read(|tx| tx.audit_records(seq - 1, 1))
                        .map_err(|e| Failure::Internal(e.into()))?;
                    let matches = found
                        .first()
                        .is_some_and(|r| r.seq == seq && r.hash == hash);
                    if !matches {
                        let message = format!(
                            "the recorded head {seq}:{hash} is not in the log (it has {} entries): the log was truncated or rewritten",
                            v.entries
                        );
                        let verdict = Err(Failure::Verification(message.clone()));
                        if json {
                            let shown = serde_json::json!({"ok": false, "error": message});
                            return report(&shown.to_string(), verdict);
                        }
                        return verdict;
                    }
                }
                if json {
                    out!(
                        "{}",
                        serde_json::json!({"ok": true, "entries": v.entries, "head": format!("{}:{}", v.entries, v.head)})
                    )?;
                } else {
                    out!(
                        "audit log intact: {} entries, head {}:{}",
                        v.entries,
                        v.entries,
                        v.head
                    )?;
                }
                Ok(())
            }
            Err(crate::audit::AuditError::Store(e)) => Err(Failure::Internal(e.into())),
            Err(e) => {
                let verdict = Err(Failure::Verification(e.to_string()));
                if json {
                    let shown = serde_json::json!({"ok": false, "error": e.to_string()});
                    return report(&shown.to_string(), verdict);
                }
                verdict
            }
        },
        AuditCommand::Tail { n, json } => {
            let rows = store
                .read(|tx| tx.audit_tail(n.clamp(1, 100_000)))
                .map_err(|e| Failure::Internal(e.into()))?;
            let rows: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "seq": r.seq,
                        "at": r.at.and_utc().to_rfc3339(),
                        "actor": r.actor,
                        "action": r.action,
                        "subject": r.subject,
                        "details": serde_json::from_str::<serde_json::Value>(&r.details).unwrap_or(serde_json::Value::Null),
                        "hash": r.hash,
                    })
                })
                .collect();
            print_rows(&rows, json, &["seq", "at", "actor", "action", "subject"])
        }
    }
}
