#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::X509ReqBuilder;

use super::*;
use crate::ca::{HierarchyFiles, PreparedCertificate};
use crate::clock::{FixedClock, SystemClock};
use crate::dev::test_ca::{self, TestCa};
use crate::digital_id::{self, Purpose, TrustedKeys, VerifiedConsent};
use crate::store::{ApplicationStatus, CertificateStatus};
use crate::vocab::CertificateKind;

struct Fixture {
    ca: TestCa,
    store: Store,
    issuer: Arc<Issuer>,
    keys: TrustedKeys,
    signing_key: PKey<openssl::pkey::Private>,
}

fn fixture() -> Fixture {
    let ca = test_ca::dev_ca();
    let keys = TrustedKeys::load(
        &[],
        &[ca.hierarchy.digital_id_dev_key().unwrap().clone()],
        "iss",
        "aud",
    )
    .unwrap();
    let files = HierarchyFiles::new(&ca.ca.dir, &ca.ca.issuer_id);
    let signing_key = digital_id::read_signing_key(&files.digital_id_key).unwrap();
    Fixture {
        store: ca.store(),
        issuer: ca.issuer(),
        ca,
        keys,
        signing_key,
    }
}

impl Fixture {
    /// A registrar over the fixture's store and issuer, reading the system clock.
    fn registrar(&self) -> Registrar {
        Registrar::new(
            self.store.clone(),
            Arc::clone(&self.issuer),
            Arc::new(SystemClock),
            "2026-1",
        )
    }

    /// The same registrar with its clock stopped at `at`.
    fn registrar_at(&self, at: chrono::DateTime<chrono::Utc>) -> Registrar {
        Registrar::new(
            self.store.clone(),
            Arc::clone(&self.issuer),
            Arc::new(FixedClock(at)),
            "2026-1",
        )
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
    consent_for(f, "90010130000")
}

/// A verified consent token of the holder whose IIN starts with the 11 digits `prefix`.
fn consent_for(f: &Fixture, prefix: &str) -> VerifiedConsent {
    let now = chrono::Utc::now().timestamp();
    let iin = format!("{prefix}{}", digital_id::iin_check_digit(prefix).unwrap());
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

/// Only the durable half of an issuance, as a process that dies before signing leaves it:
/// `request` accepted, its application approved and its serials reserved.
fn accepted_unsigned(
    registrar: &Registrar,
    consent: &VerifiedConsent,
    request: ApplicationForm,
) -> (Application, String, Vec<PreparedCertificate>) {
    let checked = request.check("2026-1").unwrap();
    registrar.accept(consent, &checked, false).unwrap()
}

#[test]
fn an_issuance_interrupted_after_reservation_is_completed_from_the_stored_tbs() {
    let f = fixture();
    let registrar = f.registrar();
    // The process "dies" after the durable half: application approved, serials reserved.
    let (app, access_token, prepared) = accepted_unsigned(&registrar, &consent(&f), form());
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
    let restarted = f.registrar();
    assert_eq!(restarted.resume_approved().unwrap(), 1);
    assert_eq!(
        restarted.resume_approved().unwrap(),
        0,
        "never issued twice"
    );
    let view = restarted.view(&app.id, &access_token).unwrap();
    assert_eq!(view.application.status, ApplicationStatus::Issued);
    assert_eq!(view.certificates.len(), 2);
    let issuing_key =
        f.ca.hierarchy
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
fn a_batch_with_a_replayed_token_a_reused_key_and_an_iin_over_its_limit_commits_the_rest() {
    let f = fixture();
    let registrar = f.registrar().with_iin_limits(IinLimits {
        applications_per_day: 1,
        revocations_per_day: 0,
    });
    let first = form();
    let token = consent_for(&f, "90010130001");
    // In arrival order: each refusal depends on a member before it in the same transaction,
    // none of which is committed when the refused one is checked before the transaction.
    let members: Vec<(&str, VerifiedConsent, ApplicationForm)> = vec![
        ("issued", token.clone(), first.clone()),
        // The same request again (its answer lost): once the first is committed, it is
        // answered as a repeat, with the first's application.
        ("repeated", token.clone(), first.clone()),
        (
            "consent_token_replayed",
            token,
            ApplicationForm {
                language: "kk".into(),
                ..form()
            },
        ),
        (
            "key_reused",
            consent_for(&f, "90010130002"),
            ApplicationForm {
                auth_csr: first.auth_csr.clone(),
                ..form()
            },
        ),
        ("rate_limited_iin", consent_for(&f, "90010130001"), form()),
        ("issued", consent_for(&f, "90010130003"), form()),
    ];
    let before = f.store.group_commit_stats();
    let hold = f.store.hold_writes();
    let mut handles = Vec::new();
    for (i, (expected, consent, request)) in members.into_iter().enumerate() {
        let registrar = registrar.clone();
        handles.push((
            expected,
            std::thread::spawn(move || registrar.submit(&consent, request)),
        ));
        // The next one starts only once this one waits for the transaction: a known order.
        while f.store.queued_writes() < i + 1 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    drop(hold);
    let mut issued = Vec::new();
    let mut repeated = Vec::new();
    for (expected, handle) in handles {
        match handle.join().unwrap() {
            Ok(submitted) if expected == "repeated" => {
                assert!(!submitted.created);
                repeated.push(submitted.application.id);
            }
            Ok(submitted) => {
                assert_eq!(expected, "issued");
                assert!(submitted.created);
                assert_eq!(submitted.application.status, ApplicationStatus::Issued);
                assert_eq!(submitted.certificates.len(), 2);
                issued.push(submitted.application.id);
            }
            Err(e) => assert_eq!(e.code().as_str(), expected, "{e:?}"),
        }
    }
    assert_eq!(issued.len(), 2);
    assert_eq!(repeated, issued[..1]);
    let after = f.store.group_commit_stats();
    // Written: the two accepted submissions (sharing one transaction with the refused ones),
    // then, in whatever transactions, their two completions and the repeat's two writes (its
    // new access token; its completion, found done). Six writes alone would take six commits.
    assert_eq!(after.writes - before.writes, 6, "{before:?} → {after:?}");
    assert!(
        after.commits - before.commits <= 5,
        "{before:?} → {after:?}"
    );
    let counts = f.store.read(|tx| tx.table_counts()).unwrap();
    assert_eq!(counts.applications, 2);
    assert_eq!(counts.certificates, 4);
    assert_eq!(counts.used_consent_tokens, 2);
    assert_eq!(counts.rate_limit_events, 2);
    for id in &issued {
        let certs = f
            .store
            .read(|tx| tx.certificates_of_application(id))
            .unwrap();
        assert!(certs.iter().all(|c| c.status == CertificateStatus::Issued));
    }
    assert!(crate::audit::verify(&f.store).is_ok());
}

#[test]
fn used_token_ids_are_pruned_only_after_they_can_no_longer_be_accepted() {
    let f = fixture();
    let consent = consent(&f);
    let registrar = f.registrar();
    registrar.submit(&consent, form()).unwrap();
    assert_eq!(registrar.prune_used_tokens().unwrap(), 0);
    // Just past expiry, the token is still within the skew: kept.
    let at_expiry = f.registrar_at(consent.expires_at() + chrono::Duration::seconds(30));
    assert_eq!(at_expiry.prune_used_tokens().unwrap(), 0);
    let later = f.registrar_at(consent.expires_at() + chrono::Duration::seconds(121));
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
    let at = |offset: chrono::Duration| f.registrar_at(t0 + offset).with_iin_limits(limits);
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
    assert_eq!(refused.code().as_str(), "rate_limited_iin");
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
    let unlimited = f.registrar_at(t0 + next_day);
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

fn audit_actions(store: &Store) -> Vec<String> {
    store
        .read(|tx| tx.audit_tail(1000))
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect()
}

#[test]
fn the_same_request_again_gets_its_application_under_a_new_access_token() {
    let f = fixture();
    let registrar = f.registrar();
    let consent = consent(&f);
    let request = form();
    let first = registrar.submit(&consent, request.clone()).unwrap();
    assert!(first.created);
    assert_eq!(first.application.status, ApplicationStatus::Issued);
    let counts = f.store.read(|tx| tx.table_counts()).unwrap();

    // The answer was lost; the portal sends the very same request again.
    let again = registrar.submit(&consent, request.clone()).unwrap();
    assert!(!again.created);
    assert_eq!(again.application.id, first.application.id);
    assert_ne!(again.access_token, first.access_token);
    let der = |s: &Submitted| -> Vec<Vec<u8>> {
        s.certificates
            .iter()
            .map(|c| c.der.clone().unwrap())
            .collect()
    };
    assert_eq!(der(&again), der(&first), "the same two certificates");
    let after = f.store.read(|tx| tx.table_counts()).unwrap();
    assert_eq!(
        (after.applications, after.certificates, after.outbox),
        (counts.applications, counts.certificates, counts.outbox),
        "nothing new is created"
    );
    assert_eq!(
        audit_actions(&f.store).last().map(String::as_str),
        Some("application.repeated")
    );
    assert!(matches!(
        registrar.view(&first.application.id, &first.access_token),
        Err(RaError::AccessTokenInvalid)
    ));
    assert!(registrar
        .view(&first.application.id, &again.access_token)
        .is_ok());

    // The same token with anything else is a replay.
    let mut other = request.clone();
    other.sign_csr = csr_pem();
    assert!(matches!(
        registrar.submit(&consent, other),
        Err(RaError::ConsentReplayed)
    ));
    let mut other = request;
    other.language = "kk".into();
    assert!(matches!(
        registrar.submit(&consent, other),
        Err(RaError::ConsentReplayed)
    ));
    assert!(crate::audit::verify(&f.store).is_ok());
}

#[test]
fn a_repeated_request_completes_an_interrupted_issuance_once() {
    let f = fixture();
    let registrar = f.registrar();
    let consent = consent(&f);
    let request = form();
    let (app, _, prepared) = accepted_unsigned(&registrar, &consent, request.clone());
    assert_eq!(app.status, ApplicationStatus::Approved);

    let again = registrar.submit(&consent, request).unwrap();
    assert!(!again.created);
    assert_eq!(again.application.status, ApplicationStatus::Issued);
    assert_eq!(again.certificates.len(), 2);

    // A second process that signed the same reserved certificates meanwhile finds them
    // issued: it records nothing and returns what is stored.
    let (late, certs) = registrar
        .complete_issuance(&app.id, None, &prepared, "system:late")
        .unwrap();
    assert_eq!(late.status, ApplicationStatus::Issued);
    assert_eq!(
        certs.iter().map(|c| c.der.clone()).collect::<Vec<_>>(),
        again
            .certificates
            .iter()
            .map(|c| c.der.clone())
            .collect::<Vec<_>>()
    );
    let issued = audit_actions(&f.store)
        .iter()
        .filter(|a| *a == "application.issued")
        .count();
    assert_eq!(issued, 1, "issued once");
    assert_eq!(registrar.resume_approved().unwrap(), 0);
    assert!(crate::audit::verify(&f.store).is_ok());
}

#[test]
fn stalled_issuance_is_completed_only_after_it_has_been_idle() {
    let f = fixture();
    let registrar = f.registrar();
    let (app, access_token, _) = accepted_unsigned(&registrar, &consent(&f), form());
    let idle = chrono::Duration::seconds(30);
    assert_eq!(
        registrar.resume_approved_since(Some(idle)).unwrap(),
        0,
        "in progress"
    );
    let later = f.registrar_at(chrono::Utc::now() + chrono::Duration::seconds(31));
    assert_eq!(later.resume_approved_since(Some(idle)).unwrap(), 1);
    let view = registrar.view(&app.id, &access_token).unwrap();
    assert_eq!(view.application.status, ApplicationStatus::Issued);
    assert_eq!(view.certificates.len(), 2);
}

/// A re-issue of `old` as a process that dies before signing leaves it: approved, serials
/// reserved, `replaces_application_id` set.
fn reissue_reserved(f: &Fixture, registrar: &Registrar, old: &Application) -> Application {
    let now = chrono::Utc::now();
    let checked = form().check("2026-1").unwrap();
    let app = Application {
        id: uuid::Uuid::new_v4().to_string(),
        status: ApplicationStatus::Approved,
        consent_jti: format!("reissue:{}", uuid::Uuid::new_v4()),
        auth_csr: checked.auth.der().to_vec(),
        sign_csr: checked.sign.der().to_vec(),
        replaces_application_id: Some(old.id.clone()),
        through_pages: false,
        ..old.clone()
    };
    let prepared = vec![
        f.issuer
            .prepare(
                &issuance::approved_request(
                    &app,
                    CertificateKind::Auth,
                    &checked.auth,
                    checked.storage,
                )
                .unwrap(),
                now,
            )
            .unwrap(),
        f.issuer
            .prepare(
                &issuance::approved_request(
                    &app,
                    CertificateKind::Sign,
                    &checked.sign,
                    checked.storage,
                )
                .unwrap(),
                now,
            )
            .unwrap(),
    ];
    registrar
        .store
        .write(|tx| -> Result<(), RaError> {
            tx.insert_application(&app)?;
            issuance::reserve(tx, &prepared)
        })
        .unwrap();
    app
}

fn serial_of(store: &Store, application: &str, kind: CertificateKind) -> crate::ca::Serial {
    let certs = store
        .read(|tx| tx.certificates_of_application(application))
        .unwrap();
    let cert = certs.iter().find(|c| c.kind == kind).unwrap();
    crate::ca::Serial::parse(&cert.serial).unwrap()
}

#[test]
fn a_reissue_whose_old_pair_was_revoked_meanwhile_is_void_and_a_held_one_is_superseded() {
    use crate::vocab::RevocationReason;
    let f = fixture();
    let registrar = f.registrar();

    // The old AUTH revoked for key compromise while the re-issue waits to be signed: the
    // re-issue is void, nothing more is signed, and the old SIGN stays as it was.
    let old = registrar.submit(&consent(&f), form()).unwrap().application;
    let pending = reissue_reserved(&f, &registrar, &old);
    let auth = serial_of(&f.store, &old.id, CertificateKind::Auth);
    registrar
        .revoke(
            Revoker::Operator("t"),
            &auth,
            RevocationReason::KeyCompromise,
            None,
        )
        .unwrap();
    let err = registrar.resume(&pending.id, "system:test").unwrap_err();
    assert!(matches!(err, RaError::CertificateRevoked { .. }), "{err:?}");
    let (app, certs) = f
        .store
        .read(|tx| -> Result<_, RaError> {
            Ok((
                tx.application(&pending.id)?.unwrap(),
                tx.certificates_of_application(&pending.id)?,
            ))
        })
        .unwrap();
    assert_eq!(app.status, ApplicationStatus::Rejected);
    assert!(certs
        .iter()
        .all(|c| c.status == CertificateStatus::Reserved && c.der.is_none()));
    let sign = serial_of(&f.store, &old.id, CertificateKind::Sign);
    let sign_now = f
        .store
        .read(|tx| tx.certificate(sign.as_str()))
        .unwrap()
        .unwrap();
    assert_eq!(sign_now.status, CertificateStatus::Issued);

    // Revoked in the very transaction that records the signed pair (after the check before
    // signing): the signed certificates are recorded and revoked with the old reason, their
    // keys blocked, the application rejected.
    let old = registrar.submit(&consent(&f), form()).unwrap().application;
    let pending = reissue_reserved(&f, &registrar, &old);
    let at = crate::store::db_time(chrono::Utc::now());
    let auth = serial_of(&f.store, &old.id, CertificateKind::Auth);
    registrar
        .revoke(
            Revoker::Operator("t"),
            &auth,
            RevocationReason::KeyCompromise,
            None,
        )
        .unwrap();
    f.store
        .write(|tx| -> Result<(), RaError> {
            for c in tx.certificates_of_application(&pending.id)? {
                assert!(tx.mark_certificate_issued(&c.serial, b"signed", at)?);
            }
            let replaced = lineage::supersede(tx, &old.id, &pending.id, at)?;
            let lineage::Replaced::Void { serial, reason } = replaced else {
                // Not void: the test fails at the unwrap below.
                return Err(RaError::ApplicationNotFound);
            };
            assert_eq!(serial, auth.as_str());
            assert_eq!(reason, "keyCompromise");
            lineage::void_reissue(tx, &pending.id, &serial, &reason, at)
        })
        .unwrap();
    for c in f
        .store
        .read(|tx| tx.certificates_of_application(&pending.id))
        .unwrap()
    {
        assert_eq!(c.status, CertificateStatus::Revoked);
        assert_eq!(c.revocation_reason.as_deref(), Some("keyCompromise"));
        assert!(f
            .store
            .read(|tx| tx.blocked_key(&c.spki_sha256))
            .unwrap()
            .is_some());
    }

    // A hold of the old pair does not stop the re-issue: the hold becomes final as
    // `superseded`, so no release can bring the old certificate back beside the new pair.
    let old = registrar.submit(&consent(&f), form()).unwrap().application;
    let pending = reissue_reserved(&f, &registrar, &old);
    let auth = serial_of(&f.store, &old.id, CertificateKind::Auth);
    registrar
        .revoke(
            Revoker::Operator("t"),
            &auth,
            RevocationReason::CertificateHold,
            None,
        )
        .unwrap();
    let (app, _) = registrar.resume(&pending.id, "system:test").unwrap();
    assert_eq!(app.status, ApplicationStatus::Issued);
    for c in f
        .store
        .read(|tx| tx.certificates_of_application(&old.id))
        .unwrap()
    {
        assert_eq!(c.status, CertificateStatus::Revoked);
        assert_eq!(c.revocation_reason.as_deref(), Some("superseded"));
    }
    assert!(matches!(
        registrar.release(&auth, "t"),
        Err(RaError::NotOnHold(_))
    ));
    assert!(crate::audit::verify(&f.store).is_ok());
}

/// An EC key and a PKCS#10 request for it.
fn keyed_csr() -> (PKey<openssl::pkey::Private>, String) {
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut b = X509ReqBuilder::new().unwrap();
    b.set_pubkey(&key).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    (key, String::from_utf8(b.build().to_pem().unwrap()).unwrap())
}

#[test]
fn challenges_and_sessions_end_on_time_and_a_challenge_is_used_once() {
    use crate::cms::{sign_attached, SignedMessage};
    let f = fixture();
    let start = chrono::Utc::now();
    let (auth_key, auth_csr) = keyed_csr();
    let submitted = f
        .registrar()
        .submit(&consent(&f), ApplicationForm { auth_csr, ..form() })
        .unwrap();
    let auth = submitted
        .certificates
        .iter()
        .find(|c| c.kind == CertificateKind::Auth)
        .unwrap();
    let auth_der = auth.der.clone().unwrap();
    let login = |registrar: &Registrar, challenge: &[u8]| {
        let cms = sign_attached(&auth_key, &auth_der, challenge).unwrap();
        registrar.login(&SignedMessage::from_der(&cms).unwrap())
    };

    // Signed within its five minutes: a session; the same challenge again: refused.
    let challenge = f.registrar_at(start).new_challenge().unwrap();
    let at_4m59 = f.registrar_at(start + chrono::Duration::seconds(299));
    let session = login(&at_4m59, &challenge.bytes).unwrap();
    assert!(matches!(
        login(&at_4m59, &challenge.bytes),
        Err(RaError::ChallengeInvalid)
    ));
    // Bytes this CA never gave out.
    assert!(matches!(
        login(&at_4m59, &[7u8; 32]),
        Err(RaError::ChallengeInvalid)
    ));
    // Signed too late: refused.
    let late = f.registrar_at(start).new_challenge().unwrap();
    let at_5m01 = f.registrar_at(start + chrono::Duration::seconds(301));
    assert!(matches!(
        login(&at_5m01, &late.bytes),
        Err(RaError::ChallengeInvalid)
    ));

    // The session lives fifteen minutes from the login, not a second more.
    let opened = start + chrono::Duration::seconds(299);
    let registrar = f.registrar_at(opened + chrono::Duration::seconds(899));
    assert_eq!(
        registrar
            .cabinet_session(&session.token)
            .unwrap()
            .application_id(),
        submitted.application.id
    );
    let registrar = f.registrar_at(opened + chrono::Duration::seconds(901));
    assert!(matches!(
        registrar.cabinet_session(&session.token),
        Err(RaError::SessionInvalid)
    ));
    assert!(matches!(
        f.registrar().cabinet_session("not a token"),
        Err(RaError::SessionInvalid)
    ));

    // Pruning forgets them once ended, not before.
    assert_eq!(f.registrar_at(start).prune_cabinet().unwrap(), 0);
    let much_later = f.registrar_at(start + chrono::Duration::hours(2));
    assert_eq!(
        much_later.prune_cabinet().unwrap(),
        3,
        "two challenges and one session"
    );
}

/// A consent token for the fixture's keys, issued `ago` seconds before now with a lifetime of
/// `ttl` seconds.
fn handed_over_token(f: &Fixture, ttl: i64, ago: i64) -> String {
    let iin = format!(
        "90010130000{}",
        digital_id::iin_check_digit("90010130000").unwrap()
    );
    let consent = digital_id::DevelopmentConsent {
        iin: digital_id::Iin::parse(&iin, chrono::Utc::now()).unwrap(),
        surname: "ТЕСТОВ".into(),
        name: "ТЕСТ".into(),
        patronymic: None,
        birth_date: None,
        purpose: Purpose::EdsIssuance,
        liveness: true,
        register_match: true,
        ttl_secs: ttl,
        issued_ago_secs: ago,
    };
    let claims = consent.claims("iss", "aud", chrono::Utc::now());
    digital_id::mint_es256(&f.signing_key, &claims).unwrap()
}

#[test]
fn an_enrollment_session_opens_without_using_the_token_and_submits_it_once() {
    let f = fixture();
    let registrar = f.registrar();
    let token = handed_over_token(&f, 300, 0);
    let opened = registrar.open_enrollment(&f.keys, &token).unwrap();
    assert_eq!(opened.cookie.len(), 43);
    assert!(registrar.enrollment(&f.keys, &opened.cookie).is_ok());
    let jti = f
        .keys
        .verify(&token, Purpose::EdsIssuance, chrono::Utc::now())
        .unwrap();
    let used = |jti: &str| f.store.read(|tx| tx.consent_jti_used(jti)).unwrap();
    assert!(!used(jti.jti()), "opening a session does not use the token");
    // The same token handed over again (a reload of Digital ID's last page) opens a session
    // in place of the first: one row per token, however often it is posted.
    let first = registrar.open_enrollment(&f.keys, &token).unwrap();
    let opened = registrar.open_enrollment(&f.keys, &token).unwrap();
    assert_ne!(first.cookie, opened.cookie);
    assert!(matches!(
        registrar.enrollment(&f.keys, &first.cookie),
        Err(RaError::EnrollmentSessionInvalid)
    ));

    let view = registrar.enrollment(&f.keys, &opened.cookie).unwrap();
    let live = registrar
        .live_enrollment_of(&f.keys, &opened.cookie)
        .unwrap();
    assert_eq!(view.identity.surname, "ТЕСТОВ");
    assert_eq!(view.application_id, None);
    assert_eq!(view.expires_at.timestamp(), opened.expires_at.timestamp());
    assert_eq!(live.csrf_token(), view.csrf_token);
    assert!(matches!(
        registrar.enrollment(&f.keys, "not-a-cookie"),
        Err(RaError::EnrollmentSessionInvalid)
    ));

    // The agent keeps keys in files: a hardware storage type (the shared form's) is refused before anything is
    // written, and the token stays unused.
    assert!(matches!(
        registrar.submit_enrollment(&live, form()),
        Err(RaError::StorageTypeInvalid)
    ));
    assert!(!used(jti.jti()));

    let pages_form = || ApplicationForm {
        storage: "pkcs12".into(),
        ..form()
    };
    let request = pages_form();
    let submitted = registrar.submit_enrollment(&live, request.clone()).unwrap();
    assert!(submitted.created);
    assert!(submitted.application.through_pages);
    assert!(used(jti.jti()), "the submission used the token");
    // The session finds the application by its token, with no second write.
    assert_eq!(
        registrar
            .enrollment(&f.keys, &opened.cookie)
            .unwrap()
            .application_id
            .as_deref(),
        Some(submitted.application.id.as_str())
    );
    // The same request again through the same session: the repeat, nothing new.
    let repeated = registrar.submit_enrollment(&live, request).unwrap();
    assert!(!repeated.created);
    assert_eq!(repeated.application.id, submitted.application.id);
    // Another request under the used token: refused.
    assert!(matches!(
        registrar.submit_enrollment(&live, pages_form()),
        Err(RaError::ConsentReplayed)
    ));
    // And a used token opens no new session.
    assert!(matches!(
        registrar.open_enrollment(&f.keys, &token),
        Err(RaError::ConsentReplayed)
    ));
    let applications = f.store.read(|tx| tx.table_counts()).unwrap().applications;
    assert_eq!(applications, 1);
}

#[test]
fn an_enrollment_session_ends_with_its_token_and_is_pruned() {
    let f = fixture();
    let token = handed_over_token(&f, 300, 0);
    let opened = f.registrar().open_enrollment(&f.keys, &token).unwrap();
    // An expired token opens nothing (the API's own refusal).
    let expired = handed_over_token(&f, 300, 400);
    assert!(matches!(
        f.registrar().open_enrollment(&f.keys, &expired),
        Err(RaError::Consent(digital_id::ConsentError::Expired(_)))
    ));
    // Once the token's exp passed, the session says so, and nothing can be submitted.
    let later = f.registrar_at(opened.expires_at + chrono::Duration::seconds(1));
    let err = later.enrollment(&f.keys, &opened.cookie).unwrap_err();
    assert_eq!(
        err.code(),
        crate::error_code::ErrorCode::ConsentTokenExpired
    );
    assert!(matches!(
        later.live_enrollment_of(&f.keys, &opened.cookie),
        Err(RaError::Consent(digital_id::ConsentError::Expired(_)))
    ));
    assert_eq!(
        f.store.read(|tx| tx.table_counts()).unwrap().applications,
        0
    );
    // Kept through the clock allowance, then pruned.
    assert_eq!(later.prune_enrollments().unwrap(), 0);
    let much_later = f.registrar_at(opened.expires_at + chrono::Duration::minutes(5));
    assert_eq!(much_later.prune_enrollments().unwrap(), 1);
    assert!(matches!(
        much_later.enrollment(&f.keys, &opened.cookie),
        Err(RaError::EnrollmentSessionInvalid)
    ));
}
