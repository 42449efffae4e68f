#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::X509ReqBuilder;

use super::*;
use crate::ca::{dev, Hierarchy, HierarchyFiles};
use crate::clock::{FixedClock, SystemClock};
use crate::config::{CaConfig, DatabaseConfig, DatabaseUrl, Mode};
use crate::digital_id::{self, Purpose, TrustedKeys};

struct Fixture {
    _dir: tempfile::TempDir,
    hierarchy: Arc<Hierarchy>,
    store: Store,
    issuer: Arc<Issuer>,
    keys: TrustedKeys,
    signing_key: PKey<openssl::pkey::Private>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ca = CaConfig {
        dir: dir.path().join("ca"),
        ..CaConfig::default()
    };
    dev::init(&ca, "http://ca.test", false, chrono::Utc::now()).unwrap();
    let hierarchy = Arc::new(Hierarchy::load(&ca, Mode::Dev).unwrap());
    let store = Store::open(
        &DatabaseUrl::Sqlite(dir.path().join("t.db")),
        &DatabaseConfig::default(),
    )
    .unwrap();
    let issuer = Arc::new(
        Issuer::new(
            Arc::clone(&hierarchy),
            "http://ca.test",
            "http://ca.test/cps",
        )
        .unwrap(),
    );
    let keys = TrustedKeys::load(
        &[],
        &[hierarchy.digital_id_dev_key().unwrap().clone()],
        "iss",
        "aud",
    )
    .unwrap();
    let files = HierarchyFiles::new(&ca.dir, &ca.issuer_id);
    let signing_key = digital_id::read_signing_key(&files.digital_id_key).unwrap();
    Fixture {
        _dir: dir,
        hierarchy,
        store,
        issuer,
        keys,
        signing_key,
    }
}

fn csr_pem() -> String {
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut b = X509ReqBuilder::new().unwrap();
    b.set_pubkey(&key).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    String::from_utf8(b.build().to_pem().unwrap()).unwrap()
}

fn consent(f: &Fixture) -> VerifiedConsent {
    let now = chrono::Utc::now().timestamp();
    let iin = format!(
        "90010130000{}",
        digital_id::iin_check_digit("90010130000").unwrap()
    );
    let claims = digital_id::Claims {
        iss: "iss".into(),
        aud: digital_id::Audience::One("aud".into()),
        sub: iin,
        jti: uuid::Uuid::new_v4().to_string(),
        iat: now,
        nbf: None,
        exp: now + 300,
        purpose: "eds_issuance".into(),
        identity: digital_id::Identity {
            surname: "ТЕСТОВ".into(),
            name: "ТЕСТ".into(),
            patronymic: None,
            birth_date: chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
            sex: "M".into(),
            document: digital_id::Document {
                kind: "id_card".into(),
                number: "1".into(),
                expires: chrono::NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
            },
        },
        verification: digital_id::Verification {
            method: digital_id::VerificationMethod::DigitalIdBiometric,
            liveness: true,
            register_match: true,
        },
    };
    let token = digital_id::mint_es256(&f.signing_key, &claims).unwrap();
    f.keys
        .verify(&token, Purpose::EdsIssuance, chrono::Utc::now())
        .unwrap()
}

fn form() -> ApplicationForm {
    ApplicationForm {
        agreement_version: "2026-1".into(),
        agreement_accepted: true,
        email: None,
        language: "en".into(),
        storage: "kaztoken".into(),
        auth_csr: csr_pem(),
        sign_csr: csr_pem(),
    }
}

#[test]
fn an_issuance_interrupted_after_reservation_is_completed_from_the_stored_tbs() {
    let f = fixture();
    let registrar = Registrar::new(
        f.store.clone(),
        Arc::clone(&f.issuer),
        Arc::new(SystemClock),
        "2026-1",
    );
    // The process "dies" after the durable half: application approved, serials reserved.
    let (app, access_token, prepared) = registrar.accept(&consent(&f), form()).unwrap();
    assert_eq!(app.status, ApplicationStatus::Approved);
    assert_eq!(prepared.len(), 2);
    let view = registrar.view(&app.id, &access_token).unwrap();
    assert_eq!(view.application.status, ApplicationStatus::Approved);
    assert!(
        view.certificates.is_empty(),
        "nothing is shown before it is signed"
    );
    let reserved = f
        .store
        .read(|tx| tx.certificates_of_application(&app.id))
        .unwrap();
    assert!(reserved
        .iter()
        .all(|c| c.status == CertificateStatus::Reserved && c.der.is_none()));

    // A new process resumes it.
    let restarted = Registrar::new(
        f.store.clone(),
        Arc::clone(&f.issuer),
        Arc::new(SystemClock),
        "2026-1",
    );
    assert_eq!(restarted.resume_approved().unwrap(), 1);
    assert_eq!(
        restarted.resume_approved().unwrap(),
        0,
        "never issued twice"
    );
    let view = restarted.view(&app.id, &access_token).unwrap();
    assert_eq!(view.application.status, ApplicationStatus::Issued);
    assert_eq!(view.certificates.len(), 2);
    let issuing_key = f
        .hierarchy
        .issuing()
        .certificate()
        .x509()
        .public_key()
        .unwrap();
    for cert in &view.certificates {
        let before = reserved.iter().find(|r| r.serial == cert.serial).unwrap();
        let der = cert.der.as_deref().unwrap();
        let parsed = <x509_cert::Certificate as der::Decode>::from_der(der).unwrap();
        assert_eq!(
            der::Encode::to_der(&parsed.tbs_certificate).unwrap(),
            before.tbs_der
        );
        assert!(openssl::x509::X509::from_der(der)
            .unwrap()
            .verify(&issuing_key)
            .unwrap());
        // Hardware storage: three years.
        assert!((cert.not_after - cert.not_before).num_days() >= 3 * 365);
    }
    assert!(crate::audit::verify(&f.store).is_ok());
}

#[test]
fn used_token_ids_are_pruned_only_after_they_can_no_longer_be_accepted() {
    let f = fixture();
    let consent = consent(&f);
    let registrar = Registrar::new(
        f.store.clone(),
        Arc::clone(&f.issuer),
        Arc::new(SystemClock),
        "2026-1",
    );
    registrar.submit(&consent, form()).unwrap();
    assert_eq!(registrar.prune_used_tokens().unwrap(), 0);
    // Just past expiry, the token is still within the skew: kept.
    let at_expiry = Registrar::new(
        f.store.clone(),
        Arc::clone(&f.issuer),
        Arc::new(FixedClock(
            consent.expires_at() + chrono::Duration::seconds(30),
        )),
        "2026-1",
    );
    assert_eq!(at_expiry.prune_used_tokens().unwrap(), 0);
    let later = Registrar::new(
        f.store.clone(),
        Arc::clone(&f.issuer),
        Arc::new(FixedClock(
            consent.expires_at() + chrono::Duration::seconds(121),
        )),
        "2026-1",
    );
    assert_eq!(later.prune_used_tokens().unwrap(), 1);
    assert!(!f
        .store
        .read(|tx| tx.consent_jti_used(consent.jti()))
        .unwrap());
}

#[test]
fn the_per_iin_limit_counts_over_a_sliding_day_and_frees_slots_as_they_age() {
    let f = fixture();
    let t0 = chrono::Utc::now();
    let limits = IinLimits {
        applications_per_day: 2,
        revocations_per_day: 0,
    };
    let at = |offset: chrono::Duration| {
        Registrar::new(
            f.store.clone(),
            Arc::clone(&f.issuer),
            Arc::new(FixedClock(t0 + offset)),
            "2026-1",
        )
        .with_iin_limits(limits)
    };
    let hours = chrono::Duration::hours;
    at(hours(0)).submit(&consent(&f), form()).unwrap();
    at(hours(1)).submit(&consent(&f), form()).unwrap();
    let counts = f.store.read(|tx| tx.table_counts()).unwrap();
    let refused = at(hours(2)).submit(&consent(&f), form()).unwrap_err();
    assert!(
        matches!(
            refused,
            RaError::IinRateLimited {
                what: "applications",
                limit: 2,
                retry_after_secs: 79_200
            }
        ),
        "{refused:?}"
    );
    assert_eq!(refused.code(), "rate_limited_iin");
    assert_eq!(f.store.read(|tx| tx.table_counts()).unwrap(), counts);
    // The first application leaves the window after 24 hours: one slot, then the second's wait.
    let next_day = hours(24) + chrono::Duration::seconds(1);
    at(next_day).submit(&consent(&f), form()).unwrap();
    let refused = at(next_day).submit(&consent(&f), form()).unwrap_err();
    assert!(
        matches!(
            refused,
            RaError::IinRateLimited {
                retry_after_secs: 3_599,
                ..
            }
        ),
        "{refused:?}"
    );
    // Without limits (operators' tools, tests) nothing is counted against anyone.
    let unlimited = Registrar::new(
        f.store.clone(),
        Arc::clone(&f.issuer),
        Arc::new(FixedClock(t0 + next_day)),
        "2026-1",
    );
    unlimited.submit(&consent(&f), form()).unwrap();
    // Pruning forgets what left the window and nothing else.
    assert_eq!(at(next_day).prune_rate_events().unwrap(), 1);
    assert_eq!(
        f.store
            .read(|tx| tx.table_counts())
            .unwrap()
            .rate_limit_events,
        2
    );
}
