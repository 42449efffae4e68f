//! `tamga root …`: what the offline root does, on the root machine — generating the root key
//! and certificate, certifying an issuing CA from its request (keeping a copy in the root's
//! register, `[ca] dir/issued/`), revoking a CA certificate it signed, and (also under their
//! older names `ca root-crl` and `ca root-ocsp`) the root CRL and the root-signed OCSP
//! responses. These need the root alone (root.pem and its key): they never load the issuing
//! CA or the OCSP responder, nor open their keys or token. Each step is audited in the root
//! machine's own database, which also holds the root CRL numbers signed and the revoked CA
//! certificates.

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
        root_id: crate::config::FIRST_ROOT_ID,
    };
    let signed =
        ceremony::sign_issuing(&root, &text, name, validity_years, &urls, SystemClock.now())
            .map_err(ceremony_failure)?;
    let pem = signed.cert.to_pem().map_err(anyhow::Error::from)?;
    // The register first: a certificate handed out is one the root machine knows it signed.
    let kept = ceremony::register_issued(&cfg.ca, &signed.cert).map_err(anyhow::Error::from)?;
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
            "register": kept.display().to_string(),
        }),
        &actor,
    )?;
    out!(
        "issuing CA certificate written to {} (a copy kept in the register: {})",
        out.display(),
        kept.display()
    )?;
    print_described(&[("issuing", described)])?;
    out!("  public_key_sha256   {}", signed.spki_sha256)?;
    out!(
        "Check that public_key_sha256 is the one `tamga ca request-issuing` printed on the server."
    )?;
    Ok(())
}

/// The root of `[ca] dir` with its key (a file or the token `[ca.root_key]` names) and
/// nothing else: the root machine holds no issuing CA or OCSP responder, and no other key or
/// token is opened. No root certificate is a configuration error (3), no root key here a
/// refusal (5).
pub(super) fn load_root(config: &ValidConfig) -> Result<crate::ca::IssuerKey, Failure> {
    let ca = &config.get().ca;
    let files = HierarchyFiles::for_config(ca);
    if !files.root_cert.exists() {
        return Err(Failure::Config(config::ConfigError::MissingFile {
            key: "ca.dir",
            message: format!("no root certificate {}", files.root_cert.display()),
        }));
    }
    if ca.root_key.kind == crate::config::KeyKind::File && !files.root_key.exists() {
        return Err(Failure::Refused(format!(
            "the root key is not on this machine ({} in [ca] dir): sign on the root machine",
            files.root_key.display()
        )));
    }
    ceremony::load_root(ca).map_err(|e| ceremony_failure(CeremonyError::Ca(e)))
}

/// The root machine's database: it holds the root CRL numbers signed and the revoked CA
/// certificates, without which a CRL or an OCSP batch could say too little.
fn open_root_store(config: &ValidConfig, what: &str) -> Result<Store, Failure> {
    Store::open(config.database(), &config.get().database).map_err(|e| {
        Failure::Usage(format!(
            "no database to read {what} from ({e}): `tamga root` keeps its record in the \
             database of [database] url"
        ))
    })
}

/// The CA certificates the root signed that this machine knows of (its register, and the
/// issuing CA certificates of `[ca] dir` where it has them), verified against `root`.
fn signed_by_root(
    config: &ValidConfig,
    root: &openssl::x509::X509,
) -> Result<Vec<openssl::x509::X509>, Failure> {
    ceremony::signed_by_root(&config.get().ca, root).map_err(|e| Failure::Internal(e.into()))
}

fn serial_text(cert: &openssl::x509::X509Ref) -> String {
    field(&describe(cert, ""), "serial")
        .as_str()
        .and_then(|s| crate::ca::Serial::parse(s).ok())
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default()
}

/// `tamga root crl` (and `ca root-crl`): the next root CRL, signed with the root alone,
/// numbered from this machine's record and listing the CA certificates revoked in its
/// database; recorded (`root.crl_signed`) before the file is written.
pub(super) fn root_crl(
    config: &ValidConfig,
    out: &Path,
    number: Option<i64>,
    operator: Option<String>,
) -> Result<(), Failure> {
    use crate::crl::root;
    let cfg = config.get();
    let key = load_root(config)?;
    let store = open_root_store(
        config,
        "the last root CRL number and the revoked CA certificates",
    )?;
    let actor = operator_actor(operator);
    let now = SystemClock.now();
    let der = root::sign_next(
        &store,
        &key,
        config.public_url(),
        number,
        now,
        cfg.crl.root_validity.chrono(),
    )
    .map_err(root_crl_failure)?;
    let crl = root::verify(key.certificate(), &der).map_err(root_crl_failure)?;
    root::record_signed(&store, &crl, now, &actor).map_err(root_crl_failure)?;
    ceremony::write_replacing(out, &der, 0o644).map_err(anyhow::Error::from)?;
    out!(
        "root CRL number {} written to {} ({} revoked CA certificate(s), valid until {})",
        crl.number,
        out.display(),
        crl.entries,
        crl.next_update.and_utc().to_rfc3339()
    )?;
    Ok(())
}

/// `tamga root ocsp` (and `ca root-ocsp`): a batch signed with the root alone, answering for
/// every CA certificate the root signed that is still valid (its register; the issuing CA
/// certificates of `[ca] dir` where this machine has them) and for every CA certificate
/// revoked in this machine's database; audited as `root.ocsp_signed`.
pub(super) fn root_ocsp(
    config: &ValidConfig,
    out: &Path,
    validity_days: Option<i64>,
    operator: Option<String>,
) -> Result<(), Failure> {
    use crate::ocsp::root::{self, MAX_VALIDITY_DAYS};
    let cfg = config.get();
    let validity = match validity_days {
        Some(d) if (1..=MAX_VALIDITY_DAYS).contains(&d) => chrono::Duration::days(d),
        Some(d) => {
            return Err(Failure::Usage(format!(
                "--validity-days {d}: must be 1 to {MAX_VALIDITY_DAYS}"
            )))
        }
        None => cfg
            .crl
            .root_validity
            .chrono()
            .min(chrono::Duration::days(MAX_VALIDITY_DAYS)),
    };
    let key = load_root(config)?;
    // The authority's revocations decide between `good` and `revoked`: without the database
    // a batch could say `good` for a revoked CA certificate.
    let store = open_root_store(config, "the revoked CA certificates")?;
    let actor = operator_actor(operator);
    let now = SystemClock.now();
    let revoked = store
        .read(|tx| tx.authority_revocations())
        .map_err(|e| Failure::Internal(e.into()))?;
    let at = openssl::asn1::Asn1Time::from_unix(now.timestamp()).map_err(anyhow::Error::from)?;
    let valid: Vec<openssl::x509::X509> = signed_by_root(config, key.certificate().x509())?
        .into_iter()
        .filter(|c| c.not_after() > at)
        .collect();
    let subjects = root::subjects(&valid, &revoked).map_err(|e| Failure::Internal(e.into()))?;
    if subjects.is_empty() {
        return Err(Failure::Refused(format!(
            "the root signed no CA certificate this machine knows of: its register {} is \
             empty (`tamga root sign-issuing` keeps a copy of each certificate it signs)",
            ceremony::register_dir(&cfg.ca).display()
        )));
    }
    let batch = root::sign(&key, &subjects, now, validity).map_err(root_ocsp_failure)?;
    let known: Vec<String> = subjects.iter().map(|(s, _)| s.clone()).collect();
    let verified =
        root::verify(key.certificate(), &batch, &known, now).map_err(root_ocsp_failure)?;
    let described: Vec<(String, &str)> = subjects
        .iter()
        .map(|(serial, state)| {
            let status = match state {
                crate::ocsp::CertState::Revoked { .. } => "revoked",
                _ => "good",
            };
            (serial.clone(), status)
        })
        .collect();
    let until = root::valid_until(&verified);
    audit_step(
        &store,
        "root.ocsp_signed",
        crate::crl::root::ROOT_ID,
        serde_json::json!({
            "responses": verified.len(),
            "certificates": described
                .iter()
                .map(|(serial, status)| serde_json::json!({ "serial": serial, "status": status }))
                .collect::<Vec<_>>(),
            "next_update": until,
        }),
        &actor,
    )?;
    ceremony::write_replacing(out, root::to_pem(&batch).as_bytes(), 0o644)
        .map_err(anyhow::Error::from)?;
    let listed: Vec<String> = described
        .iter()
        .map(|(serial, status)| format!("{serial} {status}"))
        .collect();
    out!(
        "{} root-signed OCSP responses written to {} ({}), valid until {until}",
        verified.len(),
        out.display(),
        listed.join(", "),
    )?;
    Ok(())
}

/// `tamga root revoke-issuing`: on the root machine, the authority revocation of a CA
/// certificate the root signed, with its audit entry (`root.issuing_revoked`), for the next
/// root CRL and OCSP batch. Reads the root certificate only: no key is opened.
pub(super) fn root_revoke_issuing(
    config: &ValidConfig,
    serial: &str,
    reason: &str,
    operator: Option<String>,
) -> Result<(), Failure> {
    let cfg = config.get();
    let reason = RevocationReason::parse(reason)
        .ok_or_else(|| Failure::Usage(format!("--reason {reason}: not an accepted reason")))?;
    let serial = crate::ca::Serial::parse(serial)
        .map_err(|e| Failure::Usage(format!("--serial {serial}: {e}")))?;
    let root_cert = ceremony::read_root_cert(&cfg.ca).map_err(|e| {
        Failure::Config(config::ConfigError::MissingFile {
            key: "ca.dir",
            message: e.to_string(),
        })
    })?;
    let cert = signed_by_root(config, &root_cert)?
        .into_iter()
        .find(|c| serial_text(c) == serial.as_str())
        .ok_or_else(|| {
            Failure::NotFound(format!(
                "no CA certificate with serial {serial} signed by this root (register {})",
                ceremony::register_dir(&cfg.ca).display()
            ))
        })?;
    let subject = crate::ca::display_name(cert.subject_name());
    let store = open_store(config)?;
    let actor = operator_actor(operator);
    crate::crl::issuer::revoke_ca(&store, &serial, &subject, reason, &actor, SystemClock.now())
        .map_err(|e| match e {
            crate::crl::issuer::IssuerError::AlreadyRevoked(_) => Failure::Refused(e.to_string()),
            other => Failure::Internal(other.into()),
        })?;
    out!(
        "CA certificate {serial} ({subject}) revoked ({reason}); sign the next root CRL and \
         OCSP batch (`tamga root crl`, `tamga root ocsp`) and import them on the server \
         (`tamga crl import`, `tamga ocsp import`)"
    )?;
    Ok(())
}
