//! `tamga crl …`: publication, import of the offline root CRL, and the check (and repair) of
//! stored revocations a CRL must carry; `tamga ocsp import`, the root-signed OCSP responses
//! made in the same ceremony as the root CRL.

use super::*;

pub(super) fn root_crl_failure(e: crate::crl::root::RootCrlError) -> Failure {
    use crate::crl::root::RootCrlError;
    match e {
        RootCrlError::Store(_) | RootCrlError::Crl(_) => Failure::Internal(anyhow::Error::new(e)),
        other => Failure::Refused(other.to_string()),
    }
}

/// Warn on stderr when the published root CRL expires within two weeks.
pub(super) fn warn_root_crl_expiry(store: &Store) {
    if let Ok(Some(info)) = store.read(|tx| tx.latest_crl_info(crate::crl::root::ROOT_ID, false)) {
        let left = info.next_update - chrono::Utc::now().naive_utc();
        if left < chrono::Duration::days(14) {
            eprintln!(
                "tamga: warning: the root CRL (number {}) expires at {}: sign the next one on the root machine and import it (`tamga root crl`, `tamga crl import`)",
                info.crl_number, info.next_update
            );
        }
    }
}

/// A file to import (a root CRL, a batch of root-signed OCSP responses), at most 16 MiB: one
/// that is not a regular file or is too large is refused (exit 5), one that cannot be read is
/// a usage error (exit 2).
fn read_import_file(file: &Path) -> Result<Vec<u8>, Failure> {
    crate::input::read_bounded(file, crate::input::CRL_LIMIT).map_err(|e| {
        let message = format!("{}: {e}", file.display());
        match e.kind() {
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::FileTooLarge => {
                Failure::Refused(message)
            }
            _ => Failure::Usage(message),
        }
    })
}

pub(super) fn crl_import(
    config: &ValidConfig,
    file: &Path,
    operator: Option<String>,
) -> Result<(), Failure> {
    let hierarchy = load_hierarchy(config)?;
    let store = open_store(config)?;
    let bytes = read_import_file(file)?;
    let crl = crate::crl::root::verify(hierarchy.root(), &bytes).map_err(root_crl_failure)?;
    let actor = operator_actor(operator);
    crate::crl::root::import(&store, &crl, SystemClock.now(), &actor).map_err(root_crl_failure)?;
    out!(
        "published root CRL number {} (valid until {})",
        crl.number,
        crl.next_update.and_utc().to_rfc3339()
    )?;
    warn_root_crl_expiry(&store);
    Ok(())
}

pub(super) fn root_ocsp_failure(e: crate::ocsp::root::RootOcspError) -> Failure {
    use crate::ocsp::root::RootOcspError;
    match e {
        RootOcspError::Store(_) | RootOcspError::Ca(_) => Failure::Internal(anyhow::Error::new(e)),
        RootOcspError::Validity(_) => Failure::Usage(e.to_string()),
        other => Failure::Refused(other.to_string()),
    }
}

/// Warn on stderr when the issuing CA certificate's root-signed OCSP responses expire within
/// thirty days, or none is held.
pub(super) fn warn_root_ocsp_expiry(store: &Store, hierarchy: &Hierarchy) {
    match crate::ocsp::root::issuing_expiry(store, hierarchy) {
        Ok(Some(next)) if next - chrono::Utc::now().naive_utc() < chrono::Duration::days(30) => {
            eprintln!(
                "tamga: warning: the root-signed OCSP responses for the issuing CA expire at {next}: sign the next batch on the root machine and import it (`tamga root ocsp`, `tamga ocsp import`)"
            );
        }
        Ok(None) => eprintln!(
            "tamga: warning: no root-signed OCSP response for the issuing CA is held (`tamga root ocsp` on the root machine, `tamga ocsp import`)"
        ),
        _ => {}
    }
}

pub(super) fn ocsp_import(
    config: &ValidConfig,
    file: &Path,
    operator: Option<String>,
) -> Result<(), Failure> {
    use crate::ocsp::root;
    let hierarchy = load_hierarchy(config)?;
    let store = open_store(config)?;
    let bytes = read_import_file(file)?;
    let now = SystemClock.now();
    let batch = root::from_file(&bytes).map_err(root_ocsp_failure)?;
    let files = HierarchyFiles::for_config(&config.get().ca);
    let known = root::known_serials(&store, &hierarchy, &files.issuing_cert, now)
        .map_err(root_ocsp_failure)?;
    let verified =
        root::verify(hierarchy.root(), &batch, &known, now).map_err(root_ocsp_failure)?;
    let actor = operator_actor(operator);
    root::import(&store, &verified, now, &actor).map_err(root_ocsp_failure)?;
    let mut serials: Vec<String> = verified
        .iter()
        .map(|r| format!("{} {}", r.serial, r.status))
        .collect();
    serials.dedup();
    out!(
        "imported {} root-signed OCSP responses ({}), valid until {}",
        verified.len(),
        serials.join(", "),
        root::valid_until(&verified)
    )?;
    warn_root_ocsp_expiry(&store, &hierarchy);
    Ok(())
}

pub(super) fn crl_check(
    config: &ValidConfig,
    repair: bool,
    operator: Option<String>,
    json: bool,
) -> Result<(), Failure> {
    let services = Services::open(config, Arc::new(SystemClock))?;
    let found = services
        .registrar
        .revocation_defects()
        .map_err(|e| Failure::Internal(e.into()))?;
    let repaired: Vec<&crate::ra::RevocationDefect> = if repair {
        let operator = operator.unwrap_or_else(operator_name);
        let mut repaired = Vec::new();
        for defect in found.iter().filter(|d| d.repairable) {
            let serial = crate::ca::Serial::parse(&defect.serial)
                .map_err(|e| Failure::Internal(anyhow::anyhow!("stored serial: {e}")))?;
            services
                .registrar
                .correct_invalidity_date(&serial, None, &operator)
                .map_err(ra_failure)?;
            repaired.push(defect);
        }
        repaired
    } else {
        Vec::new()
    };
    // Each certificate has at most one repairable defect: what was not repaired is left.
    let left = found.len() - repaired.len();
    if !repaired.is_empty() {
        // New CRLs of every issuer whose revocations were repaired.
        for publisher in services
            .crls
            .iter()
            .filter(|p| repaired.iter().any(|d| d.issuer_id == p.issuer_id()))
        {
            for kind in [CrlKind::Full, CrlKind::Delta] {
                publisher
                    .publish(kind, true)
                    .map_err(|e| Failure::Internal(anyhow::anyhow!("publishing the CRL: {e}")))?;
            }
        }
    }
    let verdict = if left == 0 {
        Ok(())
    } else {
        Err(Failure::Verification(format!(
            "{left} stored revocation(s) cannot be carried by a CRL as they are"
        )))
    };
    let text = if json {
        let serials: Vec<&str> = repaired.iter().map(|d| d.serial.as_str()).collect();
        serde_json::json!({ "defects": found, "repaired": serials, "remaining": left }).to_string()
    } else {
        let mut lines: Vec<String> = found
            .iter()
            .map(|d| {
                let state = if repaired.contains(&d) {
                    "repaired (invalidity date removed)"
                } else if d.repairable {
                    "repair with --repair, or tamga certs correct-revocation"
                } else {
                    "cannot be repaired here"
                };
                format!(
                    "{} {} {} {}: {state}",
                    d.issuer_id, d.serial, d.problem, d.value
                )
            })
            .collect();
        if found.is_empty() {
            lines.push("every stored revocation can be carried by a CRL".to_owned());
        } else if !repaired.is_empty() {
            lines.push(format!(
                "repaired {} revocation(s) and published new CRLs",
                repaired.len()
            ));
        }
        lines.join("\n")
    };
    report(&text, verdict)
}

pub(super) fn crl_publish(config: &ValidConfig, json: bool) -> Result<(), Failure> {
    let services = Services::open(config, Arc::new(SystemClock))?;
    let mut published = Vec::new();
    // Every issuing CA's full and delta CRL (`[ca]`'s first).
    for (publisher, kind) in services
        .crls
        .iter()
        .flat_map(|p| [(p, CrlKind::Full), (p, CrlKind::Delta)])
    {
        let info = publisher
            .publish(kind, true)
            .map_err(|e| Failure::Internal(anyhow::anyhow!("publishing the CRL: {e}")))?;
        if let Some(info) = info {
            published.push(serde_json::json!({
                "issuer": publisher.issuer_id(),
                "kind": if kind == CrlKind::Full { "full" } else { "delta" },
                "crl_number": info.crl_number,
                "this_update": info.this_update.and_utc().to_rfc3339(),
                "next_update": info.next_update.and_utc().to_rfc3339(),
            }));
        }
    }
    if json {
        out!("{}", serde_json::Value::Array(published))?;
    } else {
        for p in &published {
            out!(
                "published {} CRL number {} for {} (next update {})",
                p["kind"].as_str().unwrap_or(""),
                p["crl_number"],
                p["issuer"].as_str().unwrap_or(""),
                p["next_update"].as_str().unwrap_or("")
            )?;
        }
    }
    Ok(())
}
