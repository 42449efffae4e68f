//! `tamga root …`: what the offline root does, on the root machine — generating the root key
//! and certificate, certifying an issuing CA from its request, and (shared with their older
//! names `ca root-crl` and `ca root-ocsp`, in `cli::ca`) the root CRL and the root-signed OCSP
//! responses. Each step is audited in the root machine's own database.

use super::*;
use crate::ca::build::IssuingUrls;
use crate::ca::ceremony::{self, CeremonyError};

/// A ceremony step's failure as an exit code: a refusal (an existing key, a request or a
/// certificate that fails a check, a token that refuses) is 5, a token away is 3.
pub(super) fn ceremony_failure(e: CeremonyError) -> Failure {
    use crate::ca::CaError;
    match e {
        CeremonyError::Refused(m) => Failure::Refused(m),
        CeremonyError::Ca(e @ CaError::KeyUnavailable(_)) => Failure::Unreachable(e.to_string()),
        CeremonyError::Ca(e @ (CaError::Pkcs11(_) | CaError::Invalid { .. })) => {
            Failure::Refused(e.to_string())
        }
        CeremonyError::Ca(e) => Failure::Internal(e.into()),
    }
}

/// One field of a described certificate (`cli::ca::describe`), `null` when absent.
pub(super) fn field(described: &serde_json::Value, name: &str) -> serde_json::Value {
    described
        .get(name)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

/// Append the audit entry of a ceremony step that has been done.
pub(super) fn audit_step(
    store: &Store,
    action: &str,
    subject: &str,
    details: serde_json::Value,
    actor: &str,
) -> Result<(), Failure> {
    crate::crl::issuer::record_ceremony(store, action, subject, details, actor, SystemClock.now())
        .map_err(|e| {
            Failure::Internal(anyhow::anyhow!(
                "{action} was done, but writing its audit record failed: {e}"
            ))
        })
}

pub(super) fn root_init(
    config: &ValidConfig,
    name: &str,
    validity_years: i64,
    force: bool,
    operator: Option<String>,
) -> Result<(), Failure> {
    let cfg = config.get();
    // The database first: a step that cannot be audited is not done.
    let store = open_store(config)?;
    let actor = operator_actor(operator);
    let root = ceremony::generate_root(&cfg.ca, name, validity_years, force, SystemClock.now())
        .map_err(ceremony_failure)?;
    let fingerprint = ceremony::cert_sha256(&root.cert).map_err(anyhow::Error::from)?;
    let subject = crate::ca::display_name(root.cert.subject_name());
    audit_step(
        &store,
        "root.generated",
        &subject,
        serde_json::json!({
            "sha256_fingerprint": fingerprint,
            "not_after": root.cert.not_after().to_string(),
            "key": root.key_location,
        }),
        &actor,
    )?;
    out!("root certificate written to {}", root.cert_path.display())?;
    out!("  subject             {subject}")?;
    out!("  not_after           {}", root.cert.not_after())?;
    out!("  key                 {}", root.key_location)?;
    out!("  sha256_fingerprint  {fingerprint}")?;
    out!("Copy root.pem to the server's [ca] dir; compare the fingerprint there.")?;
    Ok(())
}

pub(super) fn root_sign_issuing(
    config: &ValidConfig,
    csr: &Path,
    out: &Path,
    name: Option<&str>,
    validity_years: i64,
    operator: Option<String>,
) -> Result<(), Failure> {
    let cfg = config.get();
    if out.exists() {
        return Err(Failure::Refused(format!(
            "{} exists: choose another --out",
            out.display()
        )));
    }
    let bytes = crate::input::read_bounded(csr, crate::input::PEM_LIMIT)
        .map_err(|e| Failure::Usage(format!("--csr {}: {e}", csr.display())))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Failure::Refused(format!("{}: not a PEM request", csr.display())))?;
    let store = open_store(config)?;
    let actor = operator_actor(operator);
    let root = ceremony::load_root(&cfg.ca).map_err(|e| ceremony_failure(CeremonyError::Ca(e)))?;
    let urls = IssuingUrls {
        public_url: config.public_url(),
        cps_url: config.cps_url(),
    };
    let signed =
        ceremony::sign_issuing(&root, &text, name, validity_years, &urls, SystemClock.now())
            .map_err(ceremony_failure)?;
    let pem = signed.cert.to_pem().map_err(anyhow::Error::from)?;
    ceremony::write_replacing(out, &pem, 0o644).map_err(anyhow::Error::from)?;
    let described = describe(&signed.cert, "on the server (certified from its request)");
    let serial = described
        .get("serial")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    audit_step(
        &store,
        "root.issuing_signed",
        &serial,
        serde_json::json!({
            "subject": field(&described, "subject"),
            "not_after": field(&described, "not_after"),
            "key_type": signed.key_type.to_string(),
            "public_key_sha256": signed.spki_sha256,
            "sha256_fingerprint": field(&described, "sha256_fingerprint"),
        }),
        &actor,
    )?;
    out!("issuing CA certificate written to {}", out.display())?;
    print_described(&[("issuing", described)])?;
    out!("  public_key_sha256   {}", signed.spki_sha256)?;
    out!(
        "Check that public_key_sha256 is the one `tamga ca request-issuing` printed on the server."
    )?;
    Ok(())
}
