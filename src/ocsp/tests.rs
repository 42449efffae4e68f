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
