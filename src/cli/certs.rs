//! `tamga certs …`: list, show, revoke, correct a revocation, release from hold.

use super::*;

/// `--invalidity-date`, read as the portal reads it (its rules are the RA's, at revocation).
pub(super) fn invalidity_arg(
    text: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, Failure> {
    text.map(crate::ra::InvalidityDate::parse)
        .transpose()
        .map_err(ra_failure)
}

pub(super) fn certs(config: &ValidConfig, command: CertsCommand) -> Result<(), Failure> {
    let services = Services::open(config, Arc::new(SystemClock))?;
    let (cert, json) = match command {
        CertsCommand::List {
            iin,
            status,
            limit,
            json,
        } => {
            let now = services.clock.now().naive_utc();
            let certs = services
                .store
                .read(|tx| tx.list_certificates(iin.as_deref(), limit.clamp(1, 100_000)))
                .map_err(|e| Failure::Internal(e.into()))?;
            let shown: Vec<serde_json::Value> = certs
                .iter()
                .filter(|c| match status {
                    None => true,
                    Some(CertFilter::Revoked) => {
                        c.status == crate::store::CertificateStatus::Revoked
                    }
                    Some(CertFilter::Expired) => {
                        c.status == crate::store::CertificateStatus::Issued && c.not_after < now
                    }
                    Some(CertFilter::Valid) => {
                        c.status == crate::store::CertificateStatus::Issued && c.not_after >= now
                    }
                })
                .map(|c| certificate_json(c, now, false))
                .collect();
            return print_rows(
                &shown,
                json,
                &[
                    "serial",
                    "kind",
                    "holder_iin",
                    "status",
                    "not_after",
                    "application_id",
                ],
            );
        }
        CertsCommand::Show { serial, json } => {
            let serial = serial_arg(&serial)?;
            let cert = services
                .store
                .read(|tx| tx.certificate(serial.as_str()))
                .map_err(|e| Failure::Internal(e.into()))?
                .filter(|c| c.der.is_some())
                .ok_or_else(|| Failure::NotFound(format!("no certificate with serial {serial}")))?;
            let shown = certificate_json(&cert, services.clock.now().naive_utc(), true);
            return print_one(&shown, json);
        }
        CertsCommand::Revoke {
            serial,
            reason,
            invalidity_date,
            operator,
            json,
        } => {
            let serial = serial_arg(&serial)?;
            let reason = RevocationReason::parse(&reason)
                .ok_or_else(|| ra_failure(crate::ra::RaError::RevocationReasonInvalid))?;
            let invalidity = invalidity_arg(invalidity_date.as_deref())?;
            let operator = operator.unwrap_or_else(operator_name);
            let cert = services
                .registrar
                .revoke(
                    crate::ra::Revoker::Operator(&operator),
                    &serial,
                    reason,
                    invalidity,
                )
                .map_err(ra_failure)?;
            (cert, json)
        }
        CertsCommand::CorrectRevocation {
            serial,
            invalidity_date,
            no_invalidity_date: _,
            operator,
            json,
        } => {
            let serial = serial_arg(&serial)?;
            let date = invalidity_arg(invalidity_date.as_deref())?;
            let operator = operator.unwrap_or_else(operator_name);
            let cert = services
                .registrar
                .correct_invalidity_date(&serial, date, &operator)
                .map_err(ra_failure)?;
            (cert, json)
        }
        CertsCommand::Release {
            serial,
            operator,
            json,
        } => {
            let serial = serial_arg(&serial)?;
            let operator = operator.unwrap_or_else(operator_name);
            let cert = services
                .registrar
                .release(&serial, &operator)
                .map_err(ra_failure)?;
            (cert, json)
        }
    };
    let shown = api::revocation_json(&cert);
    if json {
        print_json(&shown)?;
    } else if cert.status == crate::store::CertificateStatus::Revoked {
        out!(
            "certificate {} revoked ({}) at {}",
            shown.serial,
            shown.reason,
            shown.revoked_at
        )?;
    } else {
        out!(
            "certificate {} released from hold; it is valid again",
            shown.serial
        )?;
    }
    Ok(())
}

pub(super) fn certificate_json(
    c: &crate::store::Certificate,
    now: chrono::NaiveDateTime,
    with_pem: bool,
) -> serde_json::Value {
    let status = match c.status {
        crate::store::CertificateStatus::Issued if c.not_after < now => "expired",
        crate::store::CertificateStatus::Issued => "valid",
        other => other.as_str(),
    };
    let mut v = serde_json::json!({
        "serial": c.serial,
        "issuer_id": c.issuer_id,
        "kind": c.kind.as_str(),
        "holder_iin": c.holder_iin,
        "status": status,
        "not_before": c.not_before.and_utc().to_rfc3339(),
        "not_after": c.not_after.and_utc().to_rfc3339(),
        "application_id": c.application_id,
        "revoked_at": c.revoked_at.map(|t| t.and_utc().to_rfc3339()),
        "revocation_reason": c.revocation_reason,
        "invalidity_date": c.invalidity_date.map(|t| t.and_utc().to_rfc3339()),
    });
    if with_pem {
        let pem = c
            .der
            .as_deref()
            .and_then(|d| openssl::x509::X509::from_der(d).ok())
            .and_then(|x| x.to_pem().ok())
            .map(|p| String::from_utf8_lossy(&p).into_owned());
        if let Some(obj) = v.as_object_mut() {
            obj.insert("pem".to_owned(), serde_json::json!(pem));
        }
    }
    v
}

/// A `SERIAL` argument, parsed; a malformed one is a usage error.
fn serial_arg(raw: &str) -> Result<crate::ca::Serial, Failure> {
    crate::ca::Serial::parse(raw).map_err(|e| Failure::Usage(e.to_string()))
}
