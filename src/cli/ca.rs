//! `tamga ca …`: the hierarchy (init, show), the key ceremony's steps on the server (the
//! issuing CA's key and request, installing its certificate, the OCSP responder), and the
//! issuing CA's reissue and revocation where the server holds the root key (development; the
//! offline root revokes with `tamga root revoke-issuing`). `ca root-crl` and `ca root-ocsp`
//! are the older names of `tamga root crl|ocsp` (`cli::root`).

use super::root::{audit_step, ceremony_failure, field};
use super::*;
use crate::ca::ceremony;

pub(super) fn ca_init(config: &ValidConfig, args: &CaInit) -> Result<(), Failure> {
    let cfg = config.get();
    if !args.dev && !args.pkcs11 {
        return Err(Failure::Refused(
            "pass --dev (every key in a file) or --pkcs11 (the keys configured with \
             kind = \"pkcs11\" generated inside their token)"
                .to_owned(),
        ));
    }
    if cfg.mode != Mode::Dev {
        return Err(Failure::Refused(
            "`ca init` generates a development root and runs only with mode = \"dev\"".to_owned(),
        ));
    }
    let in_token = keys_in_token(&cfg.ca);
    if args.pkcs11 && in_token.is_empty() {
        return Err(Failure::Refused(
            "--pkcs11: neither [ca.issuing_key] nor [ca.ocsp_key] has kind = \"pkcs11\"".to_owned(),
        ));
    }
    if !args.pkcs11 && !in_token.is_empty() {
        return Err(Failure::Refused(format!(
            "{} kind = \"pkcs11\": pass --pkcs11 to generate {} inside the token",
            in_token.join(" and "),
            if in_token.len() == 1 {
                "that key"
            } else {
                "those keys"
            }
        )));
    }
    let clock = SystemClock;
    let outcomes = match crate::dev::hierarchy::init_all(
        &cfg.ca,
        config.public_url(),
        config.cps_url(),
        args.force,
        clock.now(),
    ) {
        Ok(o) => o,
        Err(e @ crate::ca::CaError::AlreadyExists(_)) => {
            return Err(Failure::Refused(e.to_string()))
        }
        Err(e) => return Err(Failure::Internal(e.into())),
    };
    let hierarchy = load_hierarchy(config)?;
    // The further issuers (`[[ca.issuers]]`), loaded as `serve` loads them.
    let further: Vec<Hierarchy> = further_hierarchies(config)?
        .into_iter()
        .map(|(_, h)| h)
        .collect();
    match Store::open(config.database(), &cfg.database) {
        Ok(store) => {
            // One actor for every entry (and at most one warning without $USER/$LOGNAME).
            let actor = operator_actor(args.operator.clone());
            record_hierarchy_generated(&store, &hierarchy, &clock, &actor)?;
            record_development_root(&store, &hierarchy, &cfg.ca, &actor)?;
            for h in &further {
                record_hierarchy_generated(&store, h, &clock, &actor)?;
            }
        }
        Err(e) => tracing::warn!(error = %e, "the database is unavailable: generation not audited"),
    }
    let mut described = outcomes
        .made
        .iter()
        .zip(std::iter::once(&hierarchy).chain(&further));
    if let Some((outcome, h)) = described.next() {
        out!(
            "{} development CA hierarchy in {}",
            if outcome.replaced {
                "Replaced the"
            } else {
                "Generated a"
            },
            outcome.files.dir.display()
        )?;
        print_described(&describe_hierarchy(h, &outcome.files, cfg.mode))?;
    }
    for (outcome, h) in described {
        out!(
            "{} development issuing CA {} under the root {}",
            if outcome.replaced {
                "Replaced the"
            } else {
                "Generated the"
            },
            h.issuing().id(),
            h.root_id()
        )?;
        print_described(&describe_hierarchy(h, &outcome.files, cfg.mode))?;
    }
    for (id, why) in &outcomes.skipped {
        out!("Skipped the issuing CA {id}: {why}")?;
    }
    Ok(())
}

/// The `ca.development_root` audit entry of a hierarchy `ca init` or a first `serve` in dev
/// mode just made: its root is a development root, marked beside its key.
pub(super) fn record_development_root(
    store: &Store,
    hierarchy: &Hierarchy,
    ca: &crate::config::CaConfig,
    actor: &str,
) -> Result<(), Failure> {
    let root = hierarchy.root().x509();
    audit_step(
        store,
        "ca.development_root",
        &crate::ca::display_name(root.subject_name()),
        serde_json::json!({
            "sha256_fingerprint": ceremony::cert_sha256(root).map_err(anyhow::Error::from)?,
            "marker": HierarchyFiles::for_config(ca).dev_root_marker.display().to_string(),
        }),
        actor,
    )
}

pub(super) fn ca_request_issuing(
    config: &ValidConfig,
    out: &Path,
    name: Option<String>,
    force: bool,
    operator: Option<String>,
) -> Result<(), Failure> {
    let cfg = config.get();
    // Every input before anything is generated; request_issuing checks them again.
    ceremony::check_output(out, "--out", force).map_err(|e| match e {
        ceremony::OutputError::Unwritable(m) => Failure::Usage(m),
        other => Failure::Refused(other.to_string()),
    })?;
    let name = name.unwrap_or_else(|| {
        let algorithm = if cfg.ca.issuing_key_type.is_rsa() {
            "RSA"
        } else if cfg.ca.issuing_key_type.is_gost() {
            "GOST"
        } else {
            "ECDSA"
        };
        format!("ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ ({algorithm})")
    });
    let store = open_store(config)?;
    let actor = operator_actor(operator);
    let request =
        ceremony::request_issuing(&cfg.ca, &name, out, force).map_err(ceremony_failure)?;
    let moved_aside = request
        .moved_aside
        .as_ref()
        .map(|p| p.display().to_string());
    audit_step(
        &store,
        "ca.issuing_requested",
        &cfg.ca.issuer_id,
        serde_json::json!({
            "name": name,
            "key_type": request.key_type.to_string(),
            "key": request.key_location,
            "public_key_sha256": request.spki_sha256,
            "certificate_moved_aside": moved_aside,
        }),
        &actor,
    )?;
    out!("issuing CA key generated: {}", request.key_location)?;
    out!("  key_type            {}", request.key_type)?;
    out!("  public_key_sha256   {}", request.spki_sha256)?;
    out!(
        "request written to {}: take it to the root machine (`tamga root sign-issuing`)",
        out.display()
    )?;
    if let Some(path) = moved_aside {
        out!(
            "the installed issuing CA certificate (for the replaced key) was moved aside to \
             {path}: the server does not start until `tamga ca install-issuing` installs the \
             new one and `tamga ca init-ocsp --force` certifies a new OCSP responder"
        )?;
    }
    Ok(())
}

pub(super) fn ca_install_issuing(
    config: &ValidConfig,
    cert: &Path,
    force: bool,
    operator: Option<String>,
) -> Result<(), Failure> {
    let cfg = config.get();
    let bytes = crate::input::read_bounded(cert, crate::input::PEM_LIMIT)
        .map_err(|e| Failure::Usage(format!("--cert {}: {e}", cert.display())))?;
    let store = open_store(config)?;
    let actor = operator_actor(operator);
    let urls = crate::ca::build::IssuingUrls {
        public_url: config.public_url(),
        cps_url: config.cps_url(),
        root_id: crate::config::FIRST_ROOT_ID,
    };
    let installed = ceremony::install_issuing(&cfg.ca, &bytes, force, &urls, SystemClock.now())
        .map_err(ceremony_failure)?;
    for mismatch in &installed.url_mismatches {
        eprintln!("tamga: warning: {mismatch}");
    }
    let described = describe(&installed.cert, "as [ca.issuing_key] says (checked)");
    audit_step(
        &store,
        "ca.issuing_installed",
        &cfg.ca.issuer_id,
        serde_json::json!({
            "serial": field(&described, "serial"),
            "subject": field(&described, "subject"),
            "issuer": field(&described, "issuer"),
            "not_after": field(&described, "not_after"),
            "sha256_fingerprint": field(&described, "sha256_fingerprint"),
            "replaced": installed.replaced.as_ref().map(|p| p.display().to_string()),
            "url_mismatches": installed.url_mismatches,
        }),
        &actor,
    )?;
    out!(
        "issuing CA certificate installed as {}{}",
        installed.path.display(),
        installed
            .replaced
            .as_ref()
            .map(|p| format!(" (the previous one kept as {})", p.display()))
            .unwrap_or_default()
    )?;
    print_described(&[("issuing", described)])?;
    Ok(())
}

pub(super) fn ca_init_ocsp(
    config: &ValidConfig,
    force: bool,
    operator: Option<String>,
) -> Result<(), Failure> {
    let cfg = config.get();
    let store = open_store(config)?;
    let actor = operator_actor(operator);
    let responder =
        ceremony::init_ocsp(&cfg.ca, force, SystemClock.now()).map_err(ceremony_failure)?;
    let described = describe(&responder.cert, &responder.key_location);
    audit_step(
        &store,
        "ca.ocsp_responder_generated",
        &cfg.ca.issuer_id,
        serde_json::json!({
            "serial": field(&described, "serial"),
            "subject": field(&described, "subject"),
            "not_after": field(&described, "not_after"),
            "key": responder.key_location,
            "sha256_fingerprint": field(&described, "sha256_fingerprint"),
        }),
        &actor,
    )?;
    out!(
        "OCSP responder certificate written to {}",
        responder.cert_path.display()
    )?;
    print_described(&[("ocsp_responder", described)])?;
    Ok(())
}

pub(super) fn ca_reissue_issuing(config: &ValidConfig) -> Result<(), Failure> {
    let cfg = config.get();
    let hierarchy = load_hierarchy(config)?;
    let cert = hierarchy
        .reissue_issuing(
            &cfg.ca,
            config.public_url(),
            config.cps_url(),
            SystemClock.now(),
        )
        .map_err(|e| Failure::Refused(e.to_string()))?;
    match Store::open(config.database(), &cfg.database) {
        Ok(store) => crate::crl::issuer::record_reissue(
            &store,
            &cfg.ca.issuer_id,
            &cert.not_after().to_string(),
            &operator_actor(None),
            SystemClock.now(),
        )
        .map_err(|e| {
            Failure::Internal(anyhow::anyhow!(
                "reissued the issuing CA certificate (valid until {}), but writing its audit \
                 record failed: {e}",
                cert.not_after()
            ))
        })?,
        Err(e) => tracing::warn!(error = %e, "the database is unavailable: reissue not audited"),
    }
    out!(
        "reissued the issuing CA certificate (same key), valid until {}; restart the servers",
        cert.not_after()
    )?;
    Ok(())
}

pub(super) fn ca_revoke_issuer(
    config: &ValidConfig,
    reason: &str,
    operator: Option<String>,
) -> Result<(), Failure> {
    let reason = RevocationReason::parse(reason)
        .ok_or_else(|| Failure::Usage(format!("--reason {reason}: not an accepted reason")))?;
    let hierarchy = load_hierarchy(config)?;
    let store = open_store(config)?;
    let actor = operator_actor(operator);
    let serial =
        crate::crl::issuer::revoke_issuer(&store, &hierarchy, reason, &actor, SystemClock.now())
            .map_err(|e| match e {
                crate::crl::issuer::IssuerError::AlreadyRevoked(_) => {
                    Failure::Refused(e.to_string())
                }
                other => Failure::Internal(other.into()),
            })?;
    out!(
        "issuing CA certificate {serial} revoked ({reason}); OCSP stops answering `good` for \
         it and, where this machine holds the root key (development), the next root CRL lists \
         it within seconds. With an offline root, revoke it on the root machine as well \
         (`tamga root revoke-issuing --serial {serial}`), sign `tamga root crl` and `tamga \
         root ocsp` there, and `tamga crl import` / `tamga ocsp import` them here"
    )?;
    Ok(())
}

pub(super) fn ca_show(config: &ValidConfig, json: bool) -> Result<(), Failure> {
    let cfg = config.get();
    let files = HierarchyFiles::for_config(&cfg.ca);
    if !files.all().iter().any(|p| p.exists()) && cfg.mode == Mode::Dev {
        return Err(Failure::Refused(format!(
            "no CA hierarchy in {} yet (run `tamga ca init --dev` or `tamga serve`)",
            cfg.ca.dir.display()
        )));
    }
    let hierarchy = load_hierarchy(config)?;
    if let Ok(store) = Store::open(config.database(), &cfg.database) {
        warn_root_crl_expiry(&store);
    }
    let described = describe_hierarchy(&hierarchy, &files, cfg.mode);
    // The further issuers (`[[ca.issuers]]`) that are loaded here, each with its root.
    let mut further = Vec::new();
    for (view, h) in further_hierarchies(config)? {
        let described = describe_hierarchy(&h, &HierarchyFiles::for_config(&view), cfg.mode);
        further.push((view.issuer_id, view.root_id, described));
    }
    if json {
        let mut doc: serde_json::Map<String, serde_json::Value> = described
            .into_iter()
            .map(|(role, d)| (role.to_owned(), d))
            .collect();
        if !further.is_empty() {
            let issuers: serde_json::Map<String, serde_json::Value> = further
                .into_iter()
                .map(|(id, root_id, described)| {
                    let mut one: serde_json::Map<String, serde_json::Value> = described
                        .into_iter()
                        .map(|(role, d)| (role.to_owned(), d))
                        .collect();
                    one.insert("root_id".to_owned(), serde_json::Value::String(root_id));
                    (id, serde_json::Value::Object(one))
                })
                .collect();
            doc.insert("issuers".to_owned(), serde_json::Value::Object(issuers));
        }
        out!("{:#}", serde_json::Value::Object(doc))?;
    } else {
        print_described(&described)?;
        for (id, root_id, described) in &further {
            out!("issuer {id} (root {root_id}):")?;
            print_described(described)?;
        }
    }
    Ok(())
}

/// Each certificate of the hierarchy with its role, and where its key lives.
pub(super) fn describe_hierarchy(
    h: &Hierarchy,
    files: &HierarchyFiles,
    mode: Mode,
) -> Vec<(&'static str, serde_json::Value)> {
    let root_key = match mode {
        Mode::Dev => format!("file {} (development only)", files.root_key.display()),
        Mode::Production => "offline (not held by this server)".to_owned(),
    };
    vec![
        ("root", describe(h.root().x509(), &root_key)),
        (
            "issuing",
            describe(
                h.issuing().certificate().x509(),
                &h.issuing().key_location(),
            ),
        ),
        (
            "ocsp_responder",
            describe(
                h.ocsp_responder().certificate().x509(),
                &h.ocsp_responder().key_location(),
            ),
        ),
    ]
}

pub(super) fn describe(cert: &openssl::x509::X509Ref, key_location: &str) -> serde_json::Value {
    let serial = cert
        .serial_number()
        .to_bn()
        .and_then(|bn| bn.to_hex_str().map(|s| s.to_string()))
        .unwrap_or_default();
    let fingerprint = cert
        .digest(openssl::hash::MessageDigest::sha256())
        .map(hex::encode_upper)
        .unwrap_or_default();
    let key_type = crate::ca::certificate_key_type(cert)
        .map(|t| t.to_string())
        .unwrap_or_else(|| "unsupported".to_owned());
    serde_json::json!({
        "subject": crate::ca::display_name(cert.subject_name()),
        "issuer": crate::ca::display_name(cert.issuer_name()),
        "serial": serial,
        "not_before": cert.not_before().to_string(),
        "not_after": cert.not_after().to_string(),
        "key_type": key_type,
        "key": key_location,
        "sha256_fingerprint": fingerprint,
    })
}

pub(super) fn print_described(
    described: &[(&'static str, serde_json::Value)],
) -> Result<(), Failure> {
    const FIELDS: [&str; 8] = [
        "subject",
        "issuer",
        "serial",
        "not_before",
        "not_after",
        "key_type",
        "key",
        "sha256_fingerprint",
    ];
    for (role, d) in described {
        out!("{role}:")?;
        for field in FIELDS {
            let value = d.get(field).and_then(|v| v.as_str()).unwrap_or("");
            out!("  {field:<19} {value}")?;
        }
    }
    Ok(())
}

/// The further issuers (`[[ca.issuers]]`) this machine can load, each with its view of
/// `[ca]`, loaded as `serve` loads them: a GOST one is left out without the engine.
fn further_hierarchies(
    config: &ValidConfig,
) -> Result<Vec<(crate::config::CaConfig, Hierarchy)>, Failure> {
    let cfg = config.get();
    let mut loaded = Vec::new();
    for view in cfg.ca.per_issuer().into_iter().skip(1) {
        if crate::ca::issuers::skipped(&view, false) {
            continue;
        }
        let h = Hierarchy::load(&view, cfg.mode).map_err(|e| {
            Failure::Internal(anyhow::anyhow!(
                "loading the hierarchy of {}: {e}",
                view.issuer_id
            ))
        })?;
        loaded.push((view, h));
    }
    Ok(loaded)
}
