//! `tamga serve`: the server wiring (the authorities over one database and hierarchy, the
//! start-up work, then the HTTP server), and [`Services`], which the operator commands open.

use super::*;

/// The authorities over one database and hierarchy, as `serve` and the operator commands use
/// them.
pub(super) struct Services {
    pub(super) store: Store,
    pub(super) hierarchy: Arc<Hierarchy>,
    pub(super) issuer: Arc<Issuer>,
    pub(super) registrar: Registrar,
    pub(super) crl: CrlPublisher,
    pub(super) clock: Arc<dyn Clock>,
}

impl Services {
    pub(super) fn open(config: &ValidConfig, clock: Arc<dyn Clock>) -> Result<Services, Failure> {
        let cfg = config.get();
        let hierarchy = Hierarchy::load(&cfg.ca, cfg.mode)
            .map_err(|e| Failure::Internal(anyhow::anyhow!("loading the CA hierarchy: {e}")))?;
        let store = Store::open(config.database(), &cfg.database).map_err(|e| {
            Failure::Internal(anyhow::anyhow!(
                "opening {}: {e}",
                config.database().redacted()
            ))
        })?;
        let hierarchy = Arc::new(hierarchy);
        let issuer = Arc::new(
            Issuer::new(
                Arc::clone(&hierarchy),
                config.public_url(),
                config.cps_url(),
            )
            .map_err(|e| Failure::Internal(anyhow::anyhow!("issuing CA: {e}")))?,
        );
        let registrar = Registrar::new(
            store.clone(),
            Arc::clone(&issuer),
            Arc::clone(&clock),
            &cfg.ra.agreement_version,
        )
        .with_iin_limits(crate::ra::IinLimits {
            applications_per_day: cfg.limits.applications_per_iin_per_day,
            revocations_per_day: cfg.limits.revocations_per_iin_per_day,
        });
        let crl = CrlPublisher::new(
            store.clone(),
            Arc::clone(&issuer),
            Arc::clone(&clock),
            cfg.crl.clone(),
        );
        Ok(Services {
            store,
            hierarchy,
            issuer,
            registrar,
            crl,
            clock,
        })
    }
}

pub(super) fn serve(config: ValidConfig) -> Result<(), Failure> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let cfg = config.get();
    let generated = ensure_dev_hierarchy(&config, clock.as_ref())?;
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
    if let Err(e) = services.crl.publish_due() {
        tracing::error!(
            error = %e,
            "publishing CRLs failed at start-up; serving anyway (see /readyz; tamga crl check)"
        );
    }
    if let Err(e) = crate::crl::root::keep_fresh(
        &services.store,
        &services.hierarchy,
        config.public_url(),
        services.clock.now(),
        cfg.crl.root_validity.chrono(),
    ) {
        tracing::error!(error = %e, "publishing the root CRL failed at start-up; serving anyway (see /readyz)");
    }
    // Where the root key is (development), the root-signed OCSP responses for the issuing CA
    // are made before the first request too, as the root CRL is, rather than by the first
    // turn of the publication task while requests are already being answered.
    let issuing_cert = crate::ca::HierarchyFiles::for_config(&cfg.ca).issuing_cert;
    if let Err(e) = crate::ocsp::root::keep_fresh(
        &services.store,
        &services.hierarchy,
        &issuing_cert,
        services.clock.now(),
        cfg.crl.root_validity.chrono(),
    ) {
        tracing::error!(error = %e, "signing the root's OCSP responses failed at start-up; serving anyway (see /readyz)");
    }
    if services.hierarchy.root_key().is_none() {
        warn_root_crl_expiry(&services.store);
    }
    let responder = crate::ocsp::Responder::new(
        &services.hierarchy,
        Arc::new(services.store.clone()),
        cfg.ocsp.clone(),
        Arc::clone(&services.clock),
    )
    .map_err(|e| Failure::Internal(anyhow::anyhow!("OCSP responder: {e}")))?;
    responder
        .prime()
        .map_err(|e| Failure::Internal(anyhow::anyhow!("OCSP responder: {e}")))?;
    let validity = chrono::Duration::days(i64::from(cfg.ca.ocsp_validity_days));
    if responder
        .renew_if_due(&services.hierarchy, validity)
        .map_err(|e| Failure::Internal(anyhow::anyhow!("renewing the OCSP responder: {e}")))?
    {
        tracing::info!("the OCSP responder certificate was renewed at start-up");
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
        ocsp: Arc::new(responder),
        store: services.store,
        hierarchy: services.hierarchy,
        config: Arc::new(config),
        metrics,
        clock: services.clock,
        trusted_keys: Arc::new(trusted_keys),
        issuer: services.issuer,
        registrar: services.registrar,
        crl: services.crl,
        crl_cache: Arc::new(CrlCache::default()),
    };
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

/// In dev mode, generate the hierarchy when `[ca] dir` has none. Returns whether it did.
pub(super) fn ensure_dev_hierarchy(
    config: &ValidConfig,
    clock: &dyn Clock,
) -> Result<bool, Failure> {
    let cfg = config.get();
    if cfg.mode != Mode::Dev {
        return Ok(false);
    }
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
