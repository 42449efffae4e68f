//! `tamga dev …`: development-only commands (consent tokens, seeding, load and key benchmarks).

use super::*;

/// Run one `tamga dev` command.
pub(super) fn dev(config: &ValidConfig, command: DevCommand) -> Result<(), Failure> {
    match command {
        DevCommand::ConsentToken(args) => dev_consent_token(config, &args),
        DevCommand::Seed {
            applications,
            revoked_percent,
            out,
        } => crate::dev::bench::seed(config, applications, revoked_percent, &out)
            .map_err(|e| Failure::Internal(anyhow::anyhow!("{e}"))),
        DevCommand::LoadIssuance {
            url,
            applications,
            concurrency,
            first,
            csr_key,
            csr_pool,
            pool_only,
        } => {
            let key = match csr_key {
                CsrKeyArg::EcP256 => crate::dev::bench::CsrKey::EcP256,
                CsrKeyArg::Rsa2048 => crate::dev::bench::CsrKey::Rsa2048,
                CsrKeyArg::Gost2015_512 => crate::dev::bench::CsrKey::Gost2015_512,
            };
            let wanted = first.saturating_add(applications);
            let pool = match &csr_pool {
                Some(path) => Some(
                    crate::dev::bench::CsrPool::open(path, key, wanted)
                        .map_err(|e| Failure::Internal(anyhow::anyhow!("{e}")))?,
                ),
                None => None,
            };
            let Some(url) = url.filter(|_| !pool_only) else {
                let held = pool.as_ref().map_or(0, crate::dev::bench::CsrPool::len);
                return out!(
                    "{}",
                    serde_json::json!({ "csr_pool_pairs": held, "csr_key": key.name() })
                );
            };
            let report = crate::dev::bench::load_issuance(
                config,
                &url,
                applications,
                concurrency,
                first,
                key,
                pool.as_ref(),
            )
            .map_err(|e| Failure::Internal(anyhow::anyhow!("{e}")))?;
            out!(
                "{}",
                serde_json::to_string(&report).map_err(|e| Failure::Internal(e.into()))?
            )?;
            Ok(())
        }
        DevCommand::SeedRevoked { count, out } => {
            crate::dev::bench::seed_revoked(config, count, &out)
                .map_err(|e| Failure::Internal(anyhow::anyhow!("{e}")))
        }
        DevCommand::BenchGost { threads, seconds } => {
            let report = crate::dev::bench::gost_signing_ceiling(threads, seconds)
                .map_err(|e| Failure::Refused(format!("dev bench-gost: {e}")))?;
            out!(
                "{}",
                serde_json::to_string(&report).map_err(|e| Failure::Internal(e.into()))?
            )
        }
        DevCommand::BenchKeys { keys } => {
            let report = crate::dev::bench::key_checks(keys)
                .map_err(|e| Failure::Internal(anyhow::anyhow!("{e}")))?;
            out!("{report}")
        }
    }
}

pub(super) fn dev_consent_token(
    config: &ValidConfig,
    args: &ConsentTokenArgs,
) -> Result<(), Failure> {
    let cfg = config.get();
    if cfg.mode != Mode::Dev {
        return Err(Failure::Refused(
            "`dev consent-token` runs only with mode = \"dev\"".to_owned(),
        ));
    }
    let iin = digital_id::Iin::parse(&args.iin, SystemClock.now())
        .map_err(|e| Failure::Usage(format!("--iin {}: {e}", args.iin)))?;
    let files = HierarchyFiles::new(&cfg.ca.dir, &cfg.ca.issuer_id);
    let key = digital_id::read_signing_key(&files.digital_id_key).map_err(|e| {
        Failure::Refused(format!(
            "no development Digital ID key ({e}); run `tamga serve` or `tamga ca init --dev` first"
        ))
    })?;
    let consent = digital_id::DevelopmentConsent {
        iin,
        surname: args.surname.clone(),
        name: args.name.clone(),
        patronymic: args.patronymic.clone(),
        birth_date: None,
        purpose: match args.purpose {
            PurposeArg::EdsIssuance => digital_id::Purpose::EdsIssuance,
            PurposeArg::EdsRevocation => digital_id::Purpose::EdsRevocation,
            PurposeArg::EdsReissue => digital_id::Purpose::EdsReissue,
        },
        liveness: args.liveness,
        register_match: args.register_match,
        ttl_secs: i64::from(args.ttl),
        issued_ago_secs: i64::from(args.issued_ago),
    };
    let claims = consent.claims(
        &cfg.digital_id.issuer,
        &cfg.digital_id.audience,
        SystemClock.now(),
    );
    let token = digital_id::mint_es256(&key, &claims)
        .map_err(|e| Failure::Internal(anyhow::anyhow!("signing the token: {e}")))?;
    out!("{token}")?;
    Ok(())
}
