#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Barrier};

use openssl::hash::MessageDigest;
use openssl::ocsp::{OcspCertId, OcspRequest as OpensslRequest};

use super::*;
use crate::clock::SystemClock;
use crate::config::{CaConfig, Mode, OcspConfig};
use crate::dev::test_ca;

/// A status source that answers `good` slowly and counts calls.
struct Slow {
    calls: AtomicUsize,
    gate: Option<Arc<Barrier>>,
}

impl StatusSource for Slow {
    fn status(&self, _issuer: &str, _serial: &str) -> Result<CertState, StoreError> {
        let earlier = self.calls.fetch_add(1, Ordering::SeqCst);
        if let (Some(gate), 0) = (&self.gate, earlier) {
            gate.wait();
            std::thread::sleep(Duration::from_millis(300));
        }
        Ok(CertState::Good)
    }

    fn revocation_mark(&self) -> Result<i64, StoreError> {
        Ok(0)
    }

    fn changed_between(&self, _after: i64, _upto: i64) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
}

impl Slow {
    /// A counter at zero; with a `gate`, the first lookup waits there and then lingers.
    fn new(gate: Option<Arc<Barrier>>) -> Arc<Slow> {
        Arc::new(Slow {
            calls: AtomicUsize::new(0),
            gate,
        })
    }
}

fn hierarchy() -> (tempfile::TempDir, Arc<Hierarchy>) {
    let ca = test_ca::dev_ca();
    (ca.dir, ca.hierarchy)
}

/// A responder with the default configuration on the system clock.
fn default_responder(h: &Hierarchy, source: Arc<dyn StatusSource>) -> Responder {
    Responder::new(h, source, OcspConfig::default(), Arc::new(SystemClock)).unwrap()
}

/// A request for the OCSP responder certificate's own serial (any certificate of the issuing
/// CA will do), `ids` times.
fn request(h: &Hierarchy, ids: usize) -> Vec<u8> {
    let mut req = OpensslRequest::new().unwrap();
    for _ in 0..ids {
        let id = OcspCertId::from_cert(
            MessageDigest::sha1(),
            h.ocsp_responder().certificate().x509(),
            h.issuing().certificate().x509(),
        )
        .unwrap();
        req.add_id(id).unwrap();
    }
    req.to_der().unwrap()
}

#[test]
fn presigned_answers_are_cached_and_on_demand_signing_is_bounded() {
    let (_dir, h) = hierarchy();
    let source = Slow::new(None);
    let responder = default_responder(&h, source.clone());
    let single = request(&h, 1);
    let first = responder.respond(&single);
    assert!(
        matches!(first.outcome, Outcome::Signed { cached: true, .. }),
        "{:?}",
        first.outcome
    );
    let second = responder.respond(&single);
    assert_eq!(second.outcome, Outcome::CacheHit);
    assert_eq!(second.der, first.der);
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    // An invalidation drops it.
    responder.cache().invalidate(&[serial_hex_of(&h)], 1);
    assert!(matches!(
        responder.respond(&single).outcome,
        Outcome::Signed { .. }
    ));

    // Two on-demand requests at once with room for one: the second gets tryLater.
    let gate = Arc::new(Barrier::new(2));
    let slow = Slow::new(Some(Arc::clone(&gate)));
    let config = OcspConfig {
        max_inflight_signing: 1,
        ..OcspConfig::default()
    };
    let responder = Arc::new(Responder::new(&h, slow, config, Arc::new(SystemClock)).unwrap());
    let double = request(&h, 2);
    let busy = {
        let (responder, double) = (Arc::clone(&responder), double.clone());
        std::thread::spawn(move || responder.respond(&double))
    };
    gate.wait(); // the first request is inside the status lookup now
    let refused = responder.respond(&double);
    assert_eq!(refused.outcome, Outcome::Error("try_later"));
    assert_eq!(*refused.der, vec![0x30, 0x03, 0x0A, 0x01, 0x03]);
    let done = busy.join().unwrap();
    assert_eq!(done.statuses, vec!["good", "good"]);
}

fn serial_hex_of(h: &Hierarchy) -> String {
    let bn = h
        .ocsp_responder()
        .certificate()
        .x509()
        .serial_number()
        .to_bn()
        .unwrap();
    let hex = bn.to_hex_str().unwrap().to_string();
    if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex
    }
}

#[test]
fn an_answer_signed_across_an_invalidation_is_not_cached() {
    let (_dir, h) = hierarchy();
    let source = Slow::new(None);
    let responder = default_responder(&h, source);
    let mark = responder.cache().mark();
    responder.cache().invalidate(&[], 7);
    let kept = responder.cache().insert(
        0,
        "01",
        cache::Cached {
            der: Arc::new(vec![1]),
            status: "good",
            this_update: chrono::Utc::now().naive_utc(),
            next_update: chrono::Utc::now().naive_utc() + chrono::Duration::hours(1),
            digest: Arc::from("00"),
        },
        mark,
    );
    assert!(
        !kept,
        "a status read before a revocation was processed must not be cached"
    );
    assert_eq!(responder.cache().seen_seq(), 7);
}

#[test]
fn junk_and_foreign_issuers_get_error_statuses() {
    let (_dir, h) = hierarchy();
    let source = Slow::new(None);
    let responder = default_responder(&h, source);
    for junk in [
        &b""[..],
        &[0x30, 0x00],
        &[0xff; 10],
        &vec![0x30; MAX_REQUEST_LEN + 1],
    ] {
        assert_eq!(
            responder.respond(junk).outcome,
            Outcome::Error("malformed_request")
        );
    }
    let ask = |cert: &openssl::x509::X509Ref, issuer: &openssl::x509::X509Ref| {
        let mut req = OpensslRequest::new().unwrap();
        let id = OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer).unwrap();
        req.add_id(id).unwrap();
        responder.respond(&req.to_der().unwrap()).outcome
    };
    // An issuer we do not operate.
    assert_eq!(
        ask(
            h.issuing().certificate().x509(),
            h.ocsp_responder().certificate().x509()
        ),
        Outcome::Error("unauthorized")
    );
    // The issuing CA certificate itself, with no root-signed response held: later.
    assert_eq!(
        ask(h.issuing().certificate().x509(), h.root().x509()),
        Outcome::Error("try_later")
    );
    assert_eq!(
        responder.respond(&request(&h, MAX_CERT_IDS + 1)).outcome,
        Outcome::Error("malformed_request")
    );
}

#[test]
fn the_responder_certificate_is_renewed_with_the_same_key_before_it_expires() {
    let (dir, h) = hierarchy();
    let source = Slow::new(None);
    let not_due = default_responder(&h, source.clone());
    assert!(
        !not_due
            .renew_if_due(&h, chrono::Duration::days(30))
            .unwrap(),
        "30 days left, renewal at 10"
    );
    let config = OcspConfig {
        renew_before: crate::config::Span(Duration::from_secs(40 * 86_400)),
        ..OcspConfig::default()
    };
    let responder = Responder::new(&h, source, config, Arc::new(SystemClock)).unwrap();
    let before = responder.responder_expires();
    let old_file = std::fs::read(dir.path().join("ca/ocsp_nca_rsa_dev.pem")).unwrap();
    assert!(responder
        .renew_if_due(&h, chrono::Duration::days(90))
        .unwrap());
    assert!(responder.responder_expires() > before + chrono::Duration::days(50));
    let new_file = std::fs::read(dir.path().join("ca/ocsp_nca_rsa_dev.pem")).unwrap();
    assert_ne!(
        old_file, new_file,
        "the renewed certificate is written for the next start"
    );
    let renewed = openssl::x509::X509::from_pem(&new_file).unwrap();
    let issuing_key = h.issuing().certificate().x509().public_key().unwrap();
    assert!(renewed.verify(&issuing_key).unwrap());
    let old = openssl::x509::X509::from_pem(&old_file).unwrap();
    assert!(
        renewed
            .public_key()
            .unwrap()
            .public_eq(&old.public_key().unwrap()),
        "same key"
    );
    // Responses are signed under the renewed certificate.
    let answer = responder.respond(&request(&h, 1));
    let parsed = x509_ocsp::OcspResponse::from_der(&answer.der).unwrap();
    let basic =
        x509_ocsp::BasicOcspResponse::from_der(parsed.response_bytes.unwrap().response.as_bytes())
            .unwrap();
    let included = basic.certs.unwrap()[0].to_der().unwrap();
    assert_eq!(included, renewed.to_der().unwrap());
    // And the directory still loads as a hierarchy.
    let ca = CaConfig {
        dir: dir.path().join("ca"),
        ..CaConfig::default()
    };
    assert!(Hierarchy::load(&ca, Mode::Dev).is_ok());
}

/// A clock the test moves forward.
#[derive(Debug)]
struct Movable(std::sync::Mutex<DateTime<Utc>>);

impl Clock for Movable {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// A status source whose database can be switched off.
struct Switchable {
    up: AtomicBool,
    calls: AtomicUsize,
}

impl StatusSource for Switchable {
    fn status(&self, _issuer: &str, _serial: &str) -> Result<CertState, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.up.load(Ordering::SeqCst) {
            Ok(CertState::Good)
        } else {
            Err(StoreError::Connect("connection refused".to_owned()))
        }
    }

    fn revocation_mark(&self) -> Result<i64, StoreError> {
        Ok(0)
    }

    fn changed_between(&self, _after: i64, _upto: i64) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
}

#[test]
fn without_the_database_presigned_answers_are_kept_until_next_update_and_never_after() {
    let (_dir, h) = hierarchy();
    let clock = Arc::new(Movable(std::sync::Mutex::new(Utc::now())));
    let advance = |secs: i64| *clock.0.lock().unwrap() += chrono::Duration::seconds(secs);
    let source = Arc::new(Switchable {
        up: AtomicBool::new(true),
        calls: AtomicUsize::new(0),
    });
    let config = OcspConfig {
        validity: crate::config::Span(Duration::from_secs(3600)),
        ..OcspConfig::default()
    };
    let responder = Responder::new(&h, source.clone(), config, clock.clone()).unwrap();
    let single = request(&h, 1);
    let signed = responder.respond(&single);
    assert!(matches!(
        signed.outcome,
        Outcome::Signed { cached: true, .. }
    ));

    // The database goes away. Past the refresh point (half the validity), before the poll
    // has noticed: the lookup fails, and the still-valid answer is served as it is.
    source.up.store(false, Ordering::SeqCst);
    advance(1900);
    assert!(responder.cached(&single).is_none(), "not fresh any more");
    let kept = responder.respond(&single);
    assert_eq!(kept.outcome, Outcome::Degraded);
    assert_eq!(kept.der, signed.der);
    assert_eq!(kept.statuses, vec!["good"]);

    // The poll fails: degraded. Cached answers come straight from the cache; what needs a
    // lookup gets tryLater at once, without asking the database.
    responder.set_degraded(true);
    let calls = source.calls.load(Ordering::SeqCst);
    let hit = responder.cached(&single).unwrap();
    assert_eq!(
        (hit.outcome, hit.der),
        (Outcome::Degraded, signed.der.clone())
    );
    assert_eq!(
        responder.respond(&request(&h, 2)).outcome,
        Outcome::Error("try_later")
    );
    assert_eq!(source.calls.load(Ordering::SeqCst), calls, "no lookups");

    // Never past nextUpdate.
    advance(1700);
    assert!(responder.cached(&single).is_none());
    let late = responder.respond(&single);
    assert_eq!(late.outcome, Outcome::Error("try_later"));
    assert_eq!(*late.der, vec![0x30, 0x03, 0x0A, 0x01, 0x03]);

    // The database is back and a poll succeeds: answers are signed again.
    source.up.store(true, Ordering::SeqCst);
    responder.set_degraded(false);
    let fresh = responder.respond(&single);
    assert!(matches!(
        fresh.outcome,
        Outcome::Signed { cached: true, .. }
    ));
    assert_ne!(fresh.der, signed.der);
}

/// A status source for one serial that is not issued until the test says so.
struct Issuance {
    issued: AtomicBool,
}

impl StatusSource for Issuance {
    fn status(&self, _issuer: &str, _serial: &str) -> Result<CertState, StoreError> {
        Ok(if self.issued.load(Ordering::SeqCst) {
            CertState::Good
        } else {
            CertState::Unknown
        })
    }

    fn revocation_mark(&self) -> Result<i64, StoreError> {
        Ok(0)
    }

    fn changed_between(&self, _after: i64, _upto: i64) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
}

/// thisUpdate and nextUpdate of each SingleResponse of a successful DER OCSPResponse.
fn single_validities(der: &[u8]) -> Vec<(u64, u64)> {
    let response = OcspResponse::from_der(der).unwrap();
    let bytes = response.response_bytes.unwrap();
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
    basic
        .tbs_response_data
        .responses
        .iter()
        .map(|r| {
            let next = r.next_update.unwrap();
            (
                r.this_update.0.to_unix_duration().as_secs(),
                next.0.to_unix_duration().as_secs(),
            )
        })
        .collect()
}

#[test]
fn unknown_answers_have_the_short_next_update_and_turn_good_once_issued() {
    let (_dir, h) = hierarchy();
    let source = Arc::new(Issuance {
        issued: AtomicBool::new(false),
    });
    let config = OcspConfig {
        unknown_validity: crate::config::Span(Duration::from_secs(120)),
        ..OcspConfig::default()
    };
    let responder = Responder::new(&h, source.clone(), config, Arc::new(SystemClock)).unwrap();
    let single = request(&h, 1);

    let unknown = responder.respond(&single);
    assert_eq!(unknown.statuses, vec!["unknown"]);
    assert!(matches!(
        unknown.outcome,
        Outcome::Signed { cached: false, .. }
    ));
    let (this_update, next_update) = unknown.validity.unwrap();
    assert_eq!((next_update - this_update).num_seconds(), 120);
    assert_eq!(
        single_validities(&unknown.der),
        vec![(
            this_update.and_utc().timestamp() as u64,
            next_update.and_utc().timestamp() as u64
        )],
        "the signed nextUpdate is the short one"
    );
    assert!(
        responder.cached(&single).is_none(),
        "unknown is never cached"
    );

    // The serial is issued: the very next answer is good, with the full validity.
    source.issued.store(true, Ordering::SeqCst);
    let good = responder.respond(&single);
    assert_eq!(good.statuses, vec!["good"]);
    let (this_update, next_update) = good.validity.unwrap();
    assert_eq!((next_update - this_update).num_seconds(), 24 * 3600);
    assert_eq!(
        single_validities(&good.der),
        vec![(
            this_update.and_utc().timestamp() as u64,
            next_update.and_utc().timestamp() as u64
        )]
    );

    // An answer for several CertIDs, one of them unknown: each SingleResponse has its own
    // nextUpdate, and the answer as a whole (HTTP caching) is bounded by the earliest.
    source.issued.store(false, Ordering::SeqCst);
    let both = responder.respond(&request(&h, 2));
    let (this_update, next_update) = both.validity.unwrap();
    assert_eq!((next_update - this_update).num_seconds(), 120);
}

#[test]
fn the_cache_refuses_unknown_answers() {
    let cache = ResponseCache::new(8);
    let now = chrono::Utc::now().naive_utc();
    let kept = cache.insert(
        0,
        "01",
        cache::Cached {
            der: Arc::new(vec![1]),
            status: "unknown",
            this_update: now,
            next_update: now + chrono::Duration::minutes(5),
            digest: Arc::from("00"),
        },
        cache.mark(),
    );
    assert!(!kept && cache.is_empty());
}

/// A revocation known only by serial (recorded by a restore from published CRLs) answers
/// `revoked` with its date and reason from the store's status source; the same serial of
/// another issuer, and a serial recorded nowhere, stay `unknown`.
#[test]
fn a_revocation_known_only_by_serial_answers_revoked() {
    let ca = crate::dev::test_ca::dev_ca();
    let store = ca.store();
    let at = chrono::Utc::now().naive_utc() - chrono::Duration::hours(1);
    let at = at - chrono::Duration::nanoseconds(i64::from(at.and_utc().timestamp_subsec_nanos()));
    store
        .write(|tx| -> Result<(), StoreError> {
            let seq = tx.next_revocation_seq()?;
            tx.record_revoked_serial(&crate::store::RevokedSerial {
                issuer_id: "nca_rsa_dev".into(),
                serial: "7A01".repeat(8),
                revoked_at: at,
                reason: "keyCompromise".into(),
                invalidity_date: None,
                source: "published CRL 3".into(),
                recorded_at: at,
                revocation_seq: seq,
            })?;
            Ok(())
        })
        .unwrap();
    let source: &dyn StatusSource = &store;
    assert_eq!(
        source.status("nca_rsa_dev", &"7A01".repeat(8)).unwrap(),
        CertState::Revoked {
            at,
            reason: Some(RevocationReason::KeyCompromise),
            invalidity: None,
        }
    );
    assert_eq!(
        source.status("other_ca", &"7A01".repeat(8)).unwrap(),
        CertState::Unknown
    );
    assert_eq!(
        source.status("nca_rsa_dev", &"7A02".repeat(8)).unwrap(),
        CertState::Unknown
    );
    assert_eq!(
        source
            .changed_between(0, source.revocation_mark().unwrap())
            .unwrap(),
        ["7A01".repeat(8)],
        "the response caches learn of it by the revocation counter"
    );
}

/// A source that answers one state for every serial.
struct Fixed(CertState);

impl StatusSource for Fixed {
    fn status(&self, _issuer: &str, _serial: &str) -> Result<CertState, StoreError> {
        Ok(self.0.clone())
    }

    fn revocation_mark(&self) -> Result<i64, StoreError> {
        Ok(0)
    }

    fn changed_between(&self, _after: i64, _upto: i64) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
}

/// A request (x509-ocsp types) for the serial `serial` of `h`'s issuing CA, its CertID hashed
/// with SHA-256, with the nonce `nonce` if any.
fn gost_request(h: &Hierarchy, serial: &[u8], nonce: Option<&[u8]>) -> Vec<u8> {
    use x509_ocsp::{Request, TbsRequest};
    let issuing = x509_cert::Certificate::from_der(h.issuing().certificate().der()).unwrap();
    let tbs = &issuing.tbs_certificate;
    let id = CertId {
        hash_algorithm: spki::AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ID_SHA_256,
            parameters: Some(der::Any::null()),
        },
        issuer_name_hash: OctetString::new(openssl::sha::sha256(&tbs.subject.to_der().unwrap()))
            .unwrap(),
        issuer_key_hash: OctetString::new(openssl::sha::sha256(
            tbs.subject_public_key_info.subject_public_key.raw_bytes(),
        ))
        .unwrap(),
        serial_number: x509_cert::serial_number::SerialNumber::new(serial).unwrap(),
    };
    let request_extensions = nonce.map(|n| {
        vec![Extension {
            extn_id: OID_NONCE,
            critical: false,
            extn_value: OctetString::new(OctetString::new(n).unwrap().to_der().unwrap()).unwrap(),
        }]
    });
    OcspRequest {
        tbs_request: TbsRequest {
            version: x509_ocsp::Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: id,
                single_request_extensions: None,
            }],
            request_extensions,
        },
        optional_signature: None,
    }
    .to_der()
    .unwrap()
}

/// NCA's OCSP response (good, with a nonce): the structure ours are compared with.
const NCA_GOST_OCSP: &[u8] =
    include_bytes!("../../tests/data/nca-gost-2015/ocsp_response_individual_good.der");

/// A GOST SIGN certificate of the GOST issuing CA, the CA and its responder certificates verify
/// with the `openssl` command and the engine; the CA's delegated responder signs in NCA's form
/// through its key: a `good`
/// answer, a `revoked` one and one with a nonce each verify with our code and with the
/// `openssl` command and the engine against the responder certificate they carry (which
/// verifies so against the GOST issuing CA, which verifies so against the GOST root), fail
/// with a byte flipped, and carry the structural fields of NCA's response (its signature
/// algorithm with NULL parameters, one responder certificate with NCA's key encoding, the
/// nonce echoed). Intended differences from NCA's responses: our ResponderID is by key (NCA's
/// by name), and ours carry no private response extension (NCA's have one it names `valid`).
#[test]
fn gost_ocsp_responses_verify_independently_with_ncas_structure() {
    let Some(ca) = test_ca::gost_ca("gost_ocsp_responses_verify_independently_with_ncas_structure")
    else {
        return;
    };
    let h = &ca.hierarchy;
    let responder_cert = h.ocsp_responder().certificate().der();
    let issuing_cert = h.issuing().certificate().der();
    let issuing_key = crate::gost::subject_public_key_info(issuing_cert).unwrap();
    let root_key = crate::gost::subject_public_key_info(h.root().der()).unwrap();
    let responder_key = crate::gost::subject_public_key_info(responder_cert).unwrap();
    test_ca::assert_openssl_verifies_gost(
        &crate::gost::SignedArtefact::certificate(responder_cert).unwrap(),
        &issuing_key,
    );
    test_ca::assert_openssl_verifies_gost(
        &crate::gost::SignedArtefact::certificate(issuing_cert).unwrap(),
        &root_key,
    );
    // A citizen's GOST SIGN certificate from this CA.
    let holder = crate::gost::generate(crate::gost::KeySize::Bits512).unwrap();
    let request = crate::ca::ApprovedRequest::for_test(
        "application-1",
        crate::vocab::CertificateKind::Sign,
        crate::ca::VerifiedSubject::new("900101300007", "ТЕСТОВ", "ТЕСТ", None, None),
        crate::key_identity::KeyIdentity::for_test(&holder.public_key_to_der().unwrap()),
        crate::csr::SubjectKeyType::Rsa(2048),
        1,
    );
    let issuer = ca.issuer();
    let prepared = issuer.prepare(&request, chrono::Utc::now()).unwrap();
    let sign_cert = issuer.sign(prepared.tbs()).unwrap();
    test_ca::assert_openssl_verifies_gost(
        &crate::gost::SignedArtefact::certificate(&sign_cert).unwrap(),
        &issuing_key,
    );
    // GnuTLS verifies the TC26 form (signed again with the same keys) of the chain: the
    // SIGN certificate, the issuing CA, the root.
    if test_ca::certtool_present("gost_ocsp_responses_verify_independently_with_ncas_structure") {
        let root_file_key = test_ca::file_key(h.root_key().unwrap());
        let issuing_file_key = test_ca::file_key(h.issuing());
        let root_pem = test_ca::in_tc26_form(h.root().der(), &root_file_key);
        let issuing_pem = test_ca::in_tc26_form(issuing_cert, &root_file_key);
        let sign_pem = test_ca::in_tc26_form(&sign_cert, &issuing_file_key);
        let chain = format!("{sign_pem}{issuing_pem}");
        let (good, said) = test_ca::certtool(
            &[
                "--verify",
                "--load-ca-certificate",
                "root.pem",
                "--infile",
                "chain.pem",
            ],
            &[("root.pem", &root_pem), ("chain.pem", &chain)],
            "Verified. The certificate is trusted",
        );
        assert!(good, "{said}");
    }
    let nca = crate::gost::SignedArtefact::ocsp_response(NCA_GOST_OCSP).unwrap();
    let nca_responder = x509_cert::Certificate::from_der(&nca.certificates()[0]).unwrap();
    let revoked = CertState::Revoked {
        at: chrono::Utc::now().naive_utc() - chrono::Duration::hours(1),
        reason: Some(RevocationReason::KeyCompromise),
        invalidity: None,
    };
    let serial = [0x7f, 0x01, 0x02, 0x03];
    let nonce = [0x5a; 16];
    for (state, nonce, status) in [
        (CertState::Good, None, "good"),
        (revoked, None, "revoked"),
        (CertState::Good, Some(&nonce[..]), "good"),
    ] {
        let responder = default_responder(h, Arc::new(Fixed(state)));
        let answer = responder.respond(&gost_request(h, &serial, nonce));
        assert_eq!(answer.statuses, vec![status], "{:?}", answer.outcome);
        let artefact = crate::gost::SignedArtefact::ocsp_response(&answer.der).unwrap();
        assert_eq!(artefact.certificates(), [responder_cert.to_vec()]);
        test_ca::assert_openssl_verifies_gost(&artefact, &responder_key);
        // NCA's structure: the algorithm (NULL parameters), the responder's key encoding.
        assert_eq!(
            artefact.algorithm().to_der().unwrap(),
            nca.algorithm().to_der().unwrap()
        );
        let ours_responder = x509_cert::Certificate::from_der(&artefact.certificates()[0]).unwrap();
        assert_eq!(
            ours_responder
                .tbs_certificate
                .subject_public_key_info
                .algorithm
                .to_der()
                .unwrap(),
            nca_responder
                .tbs_certificate
                .subject_public_key_info
                .algorithm
                .to_der()
                .unwrap()
        );
        let basic = BasicOcspResponse::from_der(
            OcspResponse::from_der(&answer.der)
                .unwrap()
                .response_bytes
                .unwrap()
                .response
                .as_bytes(),
        )
        .unwrap();
        let echoed = basic
            .tbs_response_data
            .response_extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == OID_NONCE)
            .map(|e| {
                OctetString::from_der(e.extn_value.as_bytes())
                    .unwrap()
                    .into_bytes()
            });
        assert_eq!(echoed.as_deref(), nonce);
    }
}

/// The responder key hash (ResponderID byKey) of a successful answer; empty for a responder
/// named by name (never ours).
fn responder_key_hash(der: &[u8]) -> Vec<u8> {
    let response = OcspResponse::from_der(der).unwrap();
    assert_eq!(response.response_status, OcspResponseStatus::Successful);
    let basic =
        BasicOcspResponse::from_der(response.response_bytes.unwrap().response.as_bytes()).unwrap();
    match basic.tbs_response_data.responder_id {
        ResponderId::ByKey(hash) => hash.as_bytes().to_vec(),
        ResponderId::ByName(_) => Vec::new(),
    }
}

#[test]
fn several_issuers_are_answered_each_by_its_own_responder() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CaConfig {
        dir: dir.path().join("ca"),
        issuers: Some(vec![crate::config::IssuerConfig {
            id: "second".to_owned(),
            root_id: "root_two".to_owned(),
            ..crate::config::IssuerConfig::default()
        }]),
        ..CaConfig::default()
    };
    crate::dev::hierarchy::init_all(
        &ca,
        "http://ca.test",
        "http://ca.test/cps",
        false,
        chrono::Utc::now(),
    )
    .unwrap();
    let hierarchies: Vec<Arc<Hierarchy>> = ca
        .per_issuer()
        .iter()
        .map(|view| Arc::new(Hierarchy::load(view, Mode::Dev).unwrap()))
        .collect();
    assert_eq!(hierarchies[1].root_id(), "root_two");
    assert_ne!(
        hierarchies[0].root().der(),
        hierarchies[1].root().der(),
        "the second issuer has a root of its own"
    );
    let responders = Responders::new(
        hierarchies
            .iter()
            .map(|h| {
                (
                    Arc::clone(h),
                    chrono::Duration::days(30),
                    default_responder(h, Slow::new(None)),
                )
            })
            .collect(),
    )
    .unwrap();
    for h in &hierarchies {
        let answer = responders.respond(&request(h, 1));
        assert_eq!(answer.statuses, ["good"], "{}", h.issuing().id());
        let own = openssl::sha::sha1(&h.ocsp_responder().public_key_bits().unwrap()).to_vec();
        assert_eq!(responder_key_hash(&answer.der), own, "{}", h.issuing().id());
        // The pre-signed answer is found the same way.
        let cached = responders.cached(&request(h, 1)).unwrap();
        assert_eq!(cached.der, answer.der);
    }
    // A CertID naming one issuer with the other's key is no issuer of ours.
    let mut req = OpensslRequest::new().unwrap();
    let id = OcspCertId::from_cert(
        MessageDigest::sha1(),
        hierarchies[0].ocsp_responder().certificate().x509(),
        hierarchies[1].ocsp_responder().certificate().x509(),
    )
    .unwrap();
    req.add_id(id).unwrap();
    let foreign = responders.respond(&req.to_der().unwrap());
    assert_eq!(foreign.outcome, Outcome::Error("unauthorized"));
    // Junk is malformed, whichever responder reads it.
    assert_eq!(
        responders.respond(b"junk").outcome,
        Outcome::Error("malformed_request")
    );
    assert_eq!(
        responders.get("second").map(Responder::issuer_id),
        Some("second")
    );
}
