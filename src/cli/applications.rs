//! `tamga applications …`: the RA's applications, listed and shown.

use super::*;

pub(super) fn application_json(a: &crate::store::Application) -> serde_json::Value {
    serde_json::json!({
        "id": a.id,
        "status": a.status.as_str(),
        "holder_iin": a.holder_iin,
        "surname": a.surname,
        "given_name": a.given_name,
        "patronymic": a.patronymic,
        "email": a.email,
        "language": a.language,
        "storage": a.storage,
        "register_match": a.register_match,
        "liveness": a.liveness,
        "review_reasons": a.review_reasons,
        "reason": a.reason,
        "decided_by": a.decided_by,
        "created_at": a.created_at.and_utc().to_rfc3339(),
        "updated_at": a.updated_at.and_utc().to_rfc3339(),
    })
}

pub(super) fn applications(
    config: &ValidConfig,
    command: ApplicationsCommand,
) -> Result<(), Failure> {
    let services = Services::open(config, Arc::new(SystemClock))?;
    let internal = |e: crate::store::StoreError| Failure::Internal(e.into());
    match command {
        ApplicationsCommand::List {
            status,
            iin,
            limit,
            json,
        } => {
            let status = status_arg(
                status.as_deref(),
                crate::store::ApplicationStatus::parse,
                "pending_review, approved, issued or rejected",
            )?;
            let apps = services
                .store
                .read(|tx| tx.list_applications(status, iin.as_deref(), limit.clamp(1, 100_000)))
                .map_err(internal)?;
            let rows: Vec<serde_json::Value> = apps.iter().map(application_json).collect();
            print_rows(
                &rows,
                json,
                &[
                    "id",
                    "status",
                    "holder_iin",
                    "surname",
                    "given_name",
                    "created_at",
                    "review_reasons",
                ],
            )
        }
        ApplicationsCommand::Show { id, json } => {
            let (app, certs) = services
                .store
                .read(|tx| -> Result<_, crate::store::StoreError> {
                    Ok((tx.application(&id)?, tx.certificates_of_application(&id)?))
                })
                .map_err(internal)?;
            let app = app.ok_or_else(|| Failure::NotFound(format!("no application {id}")))?;
            let now = services.clock.now().naive_utc();
            let mut v = application_json(&app);
            if let Some(obj) = v.as_object_mut() {
                let certs: Vec<serde_json::Value> = certs
                    .iter()
                    .filter(|c| c.der.is_some())
                    .map(|c| certificate_json(c, now, false))
                    .collect();
                obj.insert("certificates".to_owned(), serde_json::Value::Array(certs));
            }
            print_one(&v, json)
        }
        ApplicationsCommand::Approve { id, operator, json } => {
            let operator = operator.unwrap_or_else(operator_name);
            let (app, certs) = services
                .registrar
                .approve(&id, &operator)
                .map_err(ra_failure)?;
            let now = services.clock.now().naive_utc();
            let mut v = application_json(&app);
            if let Some(obj) = v.as_object_mut() {
                let certs: Vec<serde_json::Value> = certs
                    .iter()
                    .map(|c| certificate_json(c, now, false))
                    .collect();
                obj.insert("certificates".to_owned(), serde_json::Value::Array(certs));
            }
            if json {
                print_one(&v, true)
            } else {
                out!(
                    "application {} approved by {operator}: certificates issued",
                    app.id
                )?;
                for c in v
                    .get("certificates")
                    .and_then(|c| c.as_array())
                    .into_iter()
                    .flatten()
                {
                    out!(
                        "  {} {}",
                        c["kind"].as_str().unwrap_or(""),
                        c["serial"].as_str().unwrap_or("")
                    )?;
                }
                Ok(())
            }
        }
        ApplicationsCommand::Reject {
            id,
            reason,
            operator,
            json,
        } => {
            let operator = operator.unwrap_or_else(operator_name);
            let app = services
                .registrar
                .reject(&id, &reason, &operator)
                .map_err(ra_failure)?;
            if json {
                print_one(&application_json(&app), true)
            } else {
                out!("application {} rejected by {operator}", app.id)?;
                Ok(())
            }
        }
    }
}
