//! `tamga config check`: the configuration, checked as `serve` checks it, summarised.

use super::*;

pub(super) fn config_check(config: &ValidConfig) -> Result<(), Failure> {
    let cfg = config.get();
    let files = HierarchyFiles::new(&cfg.ca.dir, &cfg.ca.issuer_id);
    let hierarchy = if files.all().iter().any(|p| p.exists()) || cfg.mode == Mode::Production {
        format!("present in {}", cfg.ca.dir.display())
    } else {
        format!(
            "absent; `tamga serve` will generate a development hierarchy in {}",
            cfg.ca.dir.display()
        )
    };
    out!("configuration OK ({})", config.source())?;
    out!("  mode          {}", cfg.mode)?;
    out!("  bind          {}", config.bind())?;
    let tls = &cfg.server.tls;
    let listener = match (tls.enabled(), tls.client_auth()) {
        (false, _) => "plain HTTP (no [server.tls])".to_owned(),
        (true, false) => format!(
            "HTTPS: certificate {} (key {} matches)",
            tls.cert.display(),
            tls.key.display()
        ),
        (true, true) => format!(
            "HTTPS: certificate {} (key {} matches); /api/v1 needs a client certificate from {}",
            tls.cert.display(),
            tls.key.display(),
            tls.client_ca.display()
        ),
    };
    out!("  listener      {listener}")?;
    out!("  public_url    {}", config.public_url())?;
    let limits = &cfg.limits;
    let per = |n: u32| {
        if n == 0 {
            "no limit".to_owned()
        } else {
            n.to_string()
        }
    };
    out!(
        "  limits        per IIN in 24 h: {} applications, {} revocations; per address: {} req/s, burst {}{}",
        per(limits.applications_per_iin_per_day),
        per(limits.revocations_per_iin_per_day),
        per(limits.client_requests_per_second),
        limits.client_burst,
        if limits.client_limit_ocsp_crl { " (OCSP and CRLs included)" } else { "" }
    )?;
    out!("  database      {}", config.database().redacted())?;
    out!("  issuer_id     {}", cfg.ca.issuer_id)?;
    out!("  CA hierarchy  {hierarchy}")?;
    // The further issuers (`[[ca.issuers]]`): each by id and root, and whether it is loaded.
    for view in cfg.ca.per_issuer().iter().skip(1) {
        let state = if crate::ca::issuers::skipped(view, false) {
            format!("degraded: {}", crate::ca::issuers::not_loaded_reason())
        } else {
            let files = HierarchyFiles::for_config(view);
            if files.issuing_cert.exists() {
                "present".to_owned()
            } else {
                "absent; `tamga serve` will generate it (dev mode)".to_owned()
            }
        };
        out!(
            "  issuer        {} (root {}, {}): {state}",
            view.issuer_id,
            view.root_id,
            view.issuing_key_type
        )?;
    }
    for warning in config.warnings() {
        out!("warning: {warning}")?;
    }
    if !crate::api::pages_have_agreement(&cfg.ra.agreement_version) {
        out!(
            "warning: ra.agreement_version {:?} has no agreement text in this build: the citizen's pages cannot show it (the API is not affected)",
            cfg.ra.agreement_version
        )?;
    }
    Ok(())
}
