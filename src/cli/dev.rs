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
        } => {
            let report =
                crate::dev::bench::load_issuance(config, &url, applications, concurrency, first)
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
    let now = SystemClock.now().timestamp();
    let mut document_number = [0u8; 4];
    openssl::rand::rand_bytes(&mut document_number).map_err(anyhow::Error::from)?;
    let claims = digital_id::Claims {
        iss: cfg.digital_id.issuer.clone(),
        aud: digital_id::Audience::One(cfg.digital_id.audience.clone()),
        sub: iin.as_str().to_owned(),
        jti: uuid::Uuid::new_v4().to_string(),
        iat: now,
        nbf: Some(now),
        exp: now + i64::from(args.ttl),
        purpose: match args.purpose {
            PurposeArg::EdsIssuance => digital_id::Purpose::EdsIssuance,
            PurposeArg::EdsRevocation => digital_id::Purpose::EdsRevocation,
            PurposeArg::EdsReissue => digital_id::Purpose::EdsReissue,
        }
        .as_str()
        .to_owned(),
        identity: digital_id::Identity {
            surname: args.surname.clone(),
            name: args.name.clone(),
            patronymic: args.patronymic.clone(),
            birth_date: iin.birth_date(),
            sex: iin.sex().to_owned(),
            document: digital_id::Document {
                kind: "id_card".to_owned(),
                number: format!("{:09}", u32::from_be_bytes(document_number) % 1_000_000_000),
                expires: iin.birth_date().max(chrono::Utc::now().date_naive())
                    + chrono::Duration::days(5 * 365),
            },
        },
        verification: digital_id::Verification {
            method: digital_id::VerificationMethod::DigitalIdBiometric,
            liveness: args.liveness,
            register_match: args.register_match,
        },
    };
    let token = digital_id::mint_es256(&key, &claims)
        .map_err(|e| Failure::Internal(anyhow::anyhow!("signing the token: {e}")))?;
    out!("{token}")?;
    Ok(())
}
