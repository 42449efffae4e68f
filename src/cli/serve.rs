//! `tamga serve`: the server wiring (the authorities over one database and hierarchy, the
//! start-up work, then the HTTP server), and [`Services`], which the operator commands open.

use super::*;

/// The authorities over one database and hierarchy, as `serve` and the operator commands use
/// them.
pub(super) struct Services {
    pub(super) store: Store,
    /// `[ca]`'s hierarchy.
    pub(super) hierarchy: Arc<Hierarchy>,
    /// `[ca]`'s issuing CA.
    pub(super) issuer: Arc<Issuer>,
    /// Every issuing CA (`[ca]`'s first).
    pub(super) issuers: Arc<Issuers>,
    pub(super) registrar: Registrar,
    /// Every issuing CA's CRL publisher, in the order of `issuers`.
    pub(super) crls: Vec<CrlPublisher>,
    pub(super) clock: Arc<dyn Clock>,
}

impl Services {
    pub(super) fn open(config: &ValidConfig, clock: Arc<dyn Clock>) -> Result<Services, Failure> {
        let cfg = config.get();
        let issuers = Issuers::load(&cfg.ca, cfg.mode, config.public_url(), config.cps_url())
            .map_err(|e| Failure::Internal(anyhow::anyhow!("loading the CA hierarchy: {e}")))?;
        for (id, why) in issuers.unavailable() {
            tracing::warn!(issuer = %id, "{why}");
        }
        let store = Store::open(config.database(), &cfg.database).map_err(|e| {
            Failure::Internal(anyhow::anyhow!(
                "opening {}: {e}",
                config.database().redacted()
            ))
        })?;
        let issuers = Arc::new(issuers);
        let issuer = Arc::clone(issuers.first());
        let hierarchy = Arc::clone(issuer.hierarchy());
        let registrar = Registrar::new(
            store.clone(),
            Arc::clone(&issuer),
            Arc::clone(&clock),
            &cfg.ra.agreement_version,
        )
        .with_issuers(Arc::clone(&issuers))
        .with_iin_limits(crate::ra::IinLimits {
            applications_per_day: cfg.limits.applications_per_iin_per_day,
            revocations_per_day: cfg.limits.revocations_per_iin_per_day,
        });
        let crls: Vec<CrlPublisher> = issuers
            .iter()
            .map(|i| {
                CrlPublisher::new(
                    store.clone(),
                    Arc::clone(i),
                    Arc::clone(&clock),
                    cfg.crl.clone(),
                )
            })
            .collect();
        Ok(Services {
            store,
            hierarchy,
            issuer,
            issuers,
            registrar,
            crls,
            clock,
        })
    }
}

pub(super) fn serve(config: ValidConfig) -> Result<(), Failure> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let cfg = config.get();
    let (generated, further_generated) = ensure_dev_hierarchy(&config, clock.as_ref())?;
    let services = Services::open(&config, clock)?;
    tracing::info!(
        mode = %cfg.mode,
        database = %config.database().redacted(),
        backend = %services.store.backend(),
        issuer = services.issuer.id(),
        "starting"
    );
    match crate::gost::support() {
        crate::gost::GostSupport::Available => tracing::info!(
            openssl = %crate::gost::configuration(),
            "GOST R 34.10-2015 available (OpenSSL's gost engine)"
        ),
        crate::gost::GostSupport::Unavailable(why) => tracing::warn!(
            openssl = %crate::gost::configuration(),
            "GOST R 34.10-2015 unavailable, RSA and EC only: {why} \
             (apt-get install libengine-gost-openssl)"
        ),
    }
    if generated {
        record_hierarchy_generated(
            &services.store,
            &services.hierarchy,
            services.clock.as_ref(),
            "system",
        )?;
        record_development_root(&services.store, &services.hierarchy, &cfg.ca, "system")?;
    }
    for id in &further_generated {
        if let Some(issuer) = services.issuers.get(id) {
            record_hierarchy_generated(
                &services.store,
                issuer.hierarchy(),
                services.clock.as_ref(),
                "system",
            )?;
        }
    }
    let metrics = Metrics::new().map_err(|e| Failure::Internal(anyhow::anyhow!("metrics: {e}")))?;
    let trusted_keys = trusted_keys(&config, &services.hierarchy)?;
    if trusted_keys.is_empty() {
        tracing::warn!("no Digital ID key is trusted: every application will be refused");
    }
    if !crate::api::pages_have_agreement(&cfg.ra.agreement_version) {
        tracing::warn!(
            version = %cfg.ra.agreement_version,
            "no agreement text of this version in this build: the citizen's pages cannot show it"
        );
    }
    let resumed = services
        .registrar
        .resume_approved()
        .map_err(|e| Failure::Internal(anyhow::anyhow!("completing interrupted issuance: {e}")))?;
    if resumed > 0 {
        tracing::warn!(applications = resumed, "completed interrupted issuance");
    }
    // Relying parties should find CRLs from the first request on; but a CRL that cannot be
    // made must not keep the server (and its OCSP responder) down: the failure is logged,
    // reported on /readyz and in the metrics, and retried by the publication task.
    for publisher in &services.crls {
        if let Err(e) = publisher.publish_due() {
            tracing::error!(
                error = %e,
                issuer = publisher.issuer_id(),
                "publishing CRLs failed at start-up; serving anyway (see /readyz; tamga crl check)"
            );
        }
    }
    let mut responders = Vec::new();
    for view in cfg.ca.per_issuer() {
        let Some(issuer) = services.issuers.get(&view.issuer_id) else {
            continue; // not loaded (reported above)
        };
        let responder = crate::ocsp::Responder::new(
            issuer.hierarchy(),
            Arc::new(services.store.clone()),
            cfg.ocsp.clone(),
            Arc::clone(&services.clock),
        )
        .map_err(|e| {
            Failure::Internal(anyhow::anyhow!("OCSP responder of {}: {e}", view.issuer_id))
        })?;
        responder
            .prime()
            .map_err(|e| Failure::Internal(anyhow::anyhow!("OCSP responder: {e}")))?;
        let validity = chrono::Duration::days(i64::from(view.ocsp_validity_days));
        responders.push((Arc::clone(issuer.hierarchy()), validity, responder));
    }
    let responders = crate::ocsp::Responders::new(responders)
        .ok_or_else(|| Failure::Internal(anyhow::anyhow!("no OCSP responder")))?;
    for id in responders
        .renew_if_due()
        .map_err(|e| Failure::Internal(anyhow::anyhow!("renewing the OCSP responder: {e}")))?
    {
        tracing::info!(issuer = %id, "the OCSP responder certificate was renewed at start-up");
    }
    let mailer = crate::notify::Mailer::new(
        services.store.clone(),
        &cfg.notify,
        Arc::clone(&services.clock),
    )
    .map_err(|e| Failure::Internal(anyhow::anyhow!("{e}")))?;
    let metrics = Arc::new(metrics);
    let admission = Arc::new(api::Admission::new(&config, Arc::clone(&metrics)));
    let state = AppState {
        admission,
        mailer: Arc::new(mailer),
        ocsp: Arc::new(responders),
        store: services.store,
        hierarchy: services.hierarchy,
        config: Arc::new(config),
        metrics,
        clock: services.clock,
        trusted_keys: Arc::new(trusted_keys),
        issuer: services.issuer,
        issuers: services.issuers,
        registrar: services.registrar,
        crls: Arc::new(services.crls),
        crl_cache: Arc::new(CrlCache::default()),
    };
    // Every root's CRL and the root-signed OCSP responses for every issuing CA, before the
    // first request (where the root key is here: development), as the publication task keeps
    // them; a failure is logged and reported on /readyz, and retried by that task.
    for (what, e) in api::keep_roots_fresh(&state) {
        tracing::error!(error = %e, "publishing {what} failed at start-up; serving anyway (see /readyz)");
    }
    if state.hierarchy.root_key().is_none() {
        warn_root_crl_expiry(&state.store);
    }
    actix_web::rt::System::new()
        .block_on(api::run(state))
        .map_err(|e| Failure::Internal(anyhow::anyhow!("HTTP server: {e}")))
}

/// The Digital ID keys from `[digital_id] keys`, plus the development key in dev mode.
pub(super) fn trusted_keys(
    config: &ValidConfig,
    hierarchy: &Hierarchy,
) -> Result<TrustedKeys, Failure> {
    let cfg = config.get();
    let extra: Vec<_> = hierarchy
        .digital_id_dev_key()
        .into_iter()
        .cloned()
        .collect();
    TrustedKeys::load(
        &cfg.digital_id.keys,
        &extra,
        &cfg.digital_id.issuer,
        &cfg.digital_id.audience,
    )
    .map_err(|e| {
        Failure::Config(config::ConfigError::Invalid {
            key: "digital_id.keys",
            message: e.to_string(),
        })
    })
}

/// In dev mode, generate the hierarchy when `[ca] dir` has none, and the hierarchy of each
/// `[[ca.issuers]]` entry none of whose own files are there. Returns whether it generated
/// `[ca]`'s and the ids of the further issuers it generated.
pub(super) fn ensure_dev_hierarchy(
    config: &ValidConfig,
    clock: &dyn Clock,
) -> Result<(bool, Vec<String>), Failure> {
    let cfg = config.get();
    if cfg.mode != Mode::Dev {
        return Ok((false, Vec::new()));
    }
    let generated = ensure_first_dev_hierarchy(config, clock)?;
    let mut further = Vec::new();
    for view in cfg.ca.per_issuer().iter().skip(1) {
        let files = HierarchyFiles::for_config(view);
        let own = [&files.issuing_cert, &files.ocsp_cert];
        if own.iter().any(|p| p.exists()) {
            continue;
        }
        if crate::ca::issuers::skipped(view, false) {
            tracing::warn!(
                issuer = %view.issuer_id,
                "not generating the development hierarchy of a GOST issuer: {}",
                crate::ca::issuers::not_loaded_reason()
            );
            continue;
        }
        tracing::info!(issuer = %view.issuer_id, root = %view.root_id,
            "generating the development hierarchy of a further issuer");
        crate::dev::hierarchy::init_further(
            view,
            config.public_url(),
            config.cps_url(),
            false,
            false,
            clock.now(),
        )
        .map_err(|e| {
            Failure::Internal(anyhow::anyhow!(
                "generating the CA hierarchy of {}: {e}",
                view.issuer_id
            ))
        })?;
        further.push(view.issuer_id.clone());
    }
    Ok((generated, further))
}

/// `[ca]`'s part of [`ensure_dev_hierarchy`]. Returns whether it generated it.
fn ensure_first_dev_hierarchy(config: &ValidConfig, clock: &dyn Clock) -> Result<bool, Failure> {
    let cfg = config.get();
    let files = HierarchyFiles::for_config(&cfg.ca);
    if files.all().iter().any(|p| p.exists()) {
        return Ok(false);
    }
    let in_token = keys_in_token(&cfg.ca);
    if !in_token.is_empty() {
        return Err(Failure::Refused(format!(
            "no CA hierarchy in {} and {} kind = \"pkcs11\": keys are not generated in a \
             token on start; run `tamga ca init --pkcs11` first",
            cfg.ca.dir.display(),
            in_token.join(" and ")
        )));
    }
    tracing::info!(dir = %cfg.ca.dir.display(), "generating the development CA hierarchy");
    crate::dev::hierarchy::init(
        &cfg.ca,
        config.public_url(),
        config.cps_url(),
        false,
        clock.now(),
    )
    .map_err(|e| Failure::Internal(anyhow::anyhow!("generating the CA hierarchy: {e}")))?;
    Ok(true)
}

/// The `[ca.*_key]` sections whose key lives in a PKCS#11 token.
pub(super) fn keys_in_token(ca: &crate::config::CaConfig) -> Vec<&'static str> {
    [
        ("[ca.issuing_key]", &ca.issuing_key),
        ("[ca.ocsp_key]", &ca.ocsp_key),
    ]
    .into_iter()
    .filter(|(_, k)| k.kind == crate::config::KeyKind::Pkcs11)
    .map(|(name, _)| name)
    .collect()
}

/// Audit a newly generated hierarchy (the entry is the CA's; the CLI only reports a failure).
pub(super) fn record_hierarchy_generated(
    store: &Store,
    hierarchy: &Hierarchy,
    clock: &dyn Clock,
    actor: &str,
) -> Result<(), Failure> {
    crate::crl::issuer::record_generated(store, hierarchy, actor, clock.now())
        .map_err(|e| Failure::Internal(anyhow::anyhow!("writing the audit record: {e}")))
}
