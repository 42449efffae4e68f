//! Faults: the database going away under a running server (a PostgreSQL instance of the
//! test's own, stopped with `pg_ctl stop -m immediate` and started again; a SQLite write lock
//! held by another process), and `tamga serve` killed with SIGKILL again and again while
//! clients apply for certificates and re-issue them from the holder's cabinet, on SQLite and
//! PostgreSQL.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use openssl::cms::{CMSOptions, CmsContentInfo};
use rand::Rng;
use serde_json::Value;
use tamga::api::types::CONFIRMATION_HEADER;
use tamga::config::{DatabaseConfig, DatabaseUrl};
use tamga::digital_id;
use tamga::store::{
    Application, ApplicationStatus, Certificate, CertificateKind, CertificateStatus, Store,
};

use crate::enroll::{body, claims, csr, fresh_iin, Env};
use crate::ocsp::{enroll, ocsp};
use crate::support::{
    client, csr_in_process, free_port, postgres_url, run, tamga, text, GroupCommits, OwnPostgres,
    PgDatabase, Server,
};

/// Run `f` and say how long it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let value = f();
    (value, started.elapsed())
}

/// A request answered `503` with `Retry-After` and the problem code `database_unavailable`,
/// within `bound`.
fn assert_database_unavailable(
    what: &str,
    resp: reqwest::blocking::Response,
    took: Duration,
    bound: Duration,
) {
    assert_eq!(resp.status(), 503, "{what}");
    assert!(
        took < bound,
        "{what}: answered after {took:?}, more than {bound:?}"
    );
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(
        retry
            .as_deref()
            .is_some_and(|r| r.parse::<u32>().is_ok_and(|n| n > 0)),
        "{what}: Retry-After {retry:?}"
    );
    assert_eq!(
        resp.headers()["content-type"],
        "application/problem+json",
        "{what}"
    );
    let problem: Value = resp.json().unwrap();
    assert_eq!(problem["code"], "database_unavailable", "{what}: {problem}");
    assert_eq!(problem["status"], 503, "{what}: {problem}");
    assert!(
        problem.get("detail").is_none(),
        "{what}: no internal detail: {problem}"
    );
}

/// Sleep until `at`.
fn sleep_until(at: Instant) {
    if let Some(left) = at.checked_duration_since(Instant::now()) {
        std::thread::sleep(left);
    }
}

/// Poll `check` every 100 ms until it holds; panics after `limit`.
fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what} not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

#[test]
fn a_postgres_outage_gives_503_keeps_presigned_ocsp_and_recovers_without_restart() {
    let test = "a_postgres_outage_gives_503_keeps_presigned_ocsp_and_recovers_without_restart";
    let Some(pg) = OwnPostgres::start(test) else {
        return;
    };
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_path_buf();
    let port = free_port();
    let log = dir_path.join("serve.log");
    // OCSP answers valid for 30 s (re-signed after 15 s) so that the test sees both the
    // refresh point and nextUpdate pass during the outage; a short pool timeout keeps it fast.
    let vars = [
        ("TAMGA_DATABASE__URL", url.as_str()),
        ("TAMGA_DATABASE__POOL_TIMEOUT_MS", "1000"),
        ("TAMGA_OCSP__VALIDITY", "30s"),
    ];
    let mut server = Server::spawn_logged(&dir_path, port, &vars, &log);
    server.wait_ready();
    let store = Store::open(
        &DatabaseUrl::Postgres(url.clone()),
        &DatabaseConfig::default(),
    )
    .unwrap();
    let env = Env {
        server,
        store,
        _dir_guard: dir,
        db: None,
    };
    let base = env.server.base.clone();
    let (_, auth, _) = enroll(&env);

    // An application to look at during the outage, a CRL and a warm OCSP cache.
    let iin = fresh_iin();
    let (a, _) = csr(&dir_path, "ec", &[]);
    let (s, _) = csr(&dir_path, "ec", &[]);
    let (status, existing) = env.post(Some(&env.minted(&claims(&iin))), &body(&a, &s, None));
    assert_eq!(status, 201, "{existing}");
    let crl_before = env.server.get("/crl/nca_rsa_dev.crl").bytes().unwrap();
    let warm = ocsp(
        &dir_path,
        &base,
        &["-cert", &auth, "-no_nonce", "-respout", "warm.der"],
    );
    assert!(warm.contains(&format!("{auth}: good")), "{warm}");
    let warmed = Instant::now();
    let hit = ocsp(
        &dir_path,
        &base,
        &["-cert", &auth, "-no_nonce", "-respout", "hit.der"],
    );
    assert!(hit.contains(&format!("{auth}: good")), "{hit}");
    assert_eq!(
        std::fs::read(dir_path.join("hit.der")).unwrap(),
        std::fs::read(dir_path.join("warm.der")).unwrap(),
        "the second answer is the pre-signed one"
    );
    // Prepared before the outage: a request that will be refused, then repeated.
    let iin2 = fresh_iin();
    let token2 = env.minted(&claims(&iin2));
    let (a2, _) = csr(&dir_path, "ec", &[]);
    let (s2, _) = csr(&dir_path, "rsa:2048", &[]);
    let body2 = body(&a2, &s2, None);

    pg.stop_immediate();

    // OCSP: the warmed certificate still gets its pre-signed, verifiable `good`.
    let verify_good = |file: &str| {
        let out = ocsp(
            &dir_path,
            &base,
            &["-cert", &auth, "-no_nonce", "-respout", file],
        );
        assert!(out.contains("Response verify OK"), "{out}");
        assert!(out.contains(&format!("{auth}: good")), "{out}");
        assert!(!out.contains("WARNING"), "{out}");
        let again = crate::support::openssl_command()
            .current_dir(&dir_path)
            .args([
                "ocsp",
                "-respin",
                file,
                "-no_nonce",
                "-issuer",
                "certs-dev/nca_rsa_dev.pem",
            ])
            .args(["-VAfile", "certs-dev/ocsp_nca_rsa_dev.pem", "-cert", &auth])
            .output()
            .unwrap();
        let shown = text(&again);
        assert!(shown.contains("Response verify OK"), "{shown}");
        assert!(shown.contains(&format!("{auth}: good")), "{shown}");
        assert!(!shown.contains("WARNING"), "{shown}");
        assert_eq!(
            std::fs::read(dir_path.join(file)).unwrap(),
            std::fs::read(dir_path.join("warm.der")).unwrap(),
            "the pre-signed answer, not a new one"
        );
    };
    verify_good("outage.der");
    // What needs the database (a nonce: signed on demand) gets tryLater, not a hang.
    let (with_nonce, took) = timed(|| ocsp(&dir_path, &base, &["-cert", &auth]));
    assert!(with_nonce.contains("trylater"), "{with_nonce}");
    assert!(took < Duration::from_secs(5), "tryLater after {took:?}");

    // The portal API: 503, Retry-After, database_unavailable, within the pool timeout.
    let bound = Duration::from_secs(5);
    let http = client();
    let (resp, took) = timed(|| {
        http.post(format!("{base}/api/v1/applications"))
            .bearer_auth(&token2)
            .json(&body2)
            .send()
            .unwrap()
    });
    eprintln!("POST /api/v1/applications during the outage: 503 after {took:?}");
    assert_database_unavailable("POST /api/v1/applications", resp, took, bound);
    let id = existing["id"].as_str().unwrap();
    let (resp, took) = timed(|| {
        http.get(format!("{base}/api/v1/applications/{id}"))
            .bearer_auth(existing["access_token"].as_str().unwrap())
            .send()
            .unwrap()
    });
    assert_database_unavailable("GET /api/v1/applications/{id}", resp, took, bound);
    let mut revocation = claims(&iin);
    revocation.purpose = "eds_revocation".into();
    let serial = existing["certificates"][0]["serial"].as_str().unwrap();
    let (resp, took) = timed(|| {
        http.post(format!("{base}/api/v1/revocations"))
            .bearer_auth(env.minted(&revocation))
            .json(&serde_json::json!({"serial": serial, "reason": "superseded"}))
            .send()
            .unwrap()
    });
    assert_database_unavailable("POST /api/v1/revocations", resp, took, bound);
    let (resp, took) = timed(|| http.get(format!("{base}/readyz")).send().unwrap());
    assert_eq!(resp.status(), 503);
    eprintln!("/readyz during the outage: 503 after {took:?}");
    assert!(took < bound, "/readyz after {took:?}");
    assert!(resp.headers().contains_key("retry-after"));
    let ready: Value = resp.json().unwrap();
    assert_eq!(ready["checks"]["database"], "failed", "{ready}");
    assert_eq!(env.server.get("/healthz").status(), 200);
    // Relying parties keep the CRL this instance last read.
    let crl = env.server.get("/crl/nca_rsa_dev.crl");
    assert_eq!(crl.status(), 200);
    assert_eq!(crl.bytes().unwrap(), crl_before);

    // Past the refresh point (half of 30 s) the pre-signed answer would be re-signed; without
    // the database it is served as it is, up to its nextUpdate.
    assert!(
        warmed.elapsed() < Duration::from_secs(14),
        "the checks above took too long for the timing below: {:?}",
        warmed.elapsed()
    );
    sleep_until(warmed + Duration::from_secs(16));
    verify_good("degraded.der");
    let metrics = env.server.get("/metrics").text().unwrap();
    assert!(
        metrics.contains(r#"tamga_ocsp_cache_total{result="degraded"}"#),
        "{metrics}"
    );
    // Never past its nextUpdate.
    sleep_until(warmed + Duration::from_secs(31));
    let expired = ocsp(&dir_path, &base, &["-cert", &auth, "-no_nonce"]);
    assert!(expired.contains("trylater"), "{expired}");

    // The database comes back: everything recovers without restarting tamga.
    pg.pg_ctl_start();
    let took = eventually("/readyz 200 again", Duration::from_secs(30), || {
        http.get(format!("{base}/readyz"))
            .send()
            .is_ok_and(|r| r.status() == 200)
    });
    eprintln!("ready again {took:?} after PostgreSQL started");
    // Nothing of the refused application was stored: the same request now creates it.
    let resp = http
        .post(format!("{base}/api/v1/applications"))
        .bearer_auth(&token2)
        .json(&body2)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().unwrap();
    assert_eq!(created["status"], "issued", "{created}");
    let (status, view) = env.get(id, existing["access_token"].as_str().unwrap());
    assert_eq!((status, view["status"].as_str()), (200, Some("issued")));
    eventually("OCSP signing again", Duration::from_secs(10), || {
        let out = ocsp(&dir_path, &base, &["-cert", &auth]);
        out.contains("Response verify OK") && out.contains(&format!("{auth}: good"))
    });
    let (ok, _) = env.server.terminate();
    assert!(ok, "clean shutdown");
    drop(env.store);
    drop(pg);
}

#[test]
fn a_sqlite_write_lock_gives_503_and_a_late_commit_is_found_by_repeating_the_request() {
    // Writers wait up to 10 s for the lock, requests at most 1.5 s for their database work.
    let env = Env::sqlite_with(&[
        ("TAMGA_DATABASE__BUSY_TIMEOUT_MS", "10000"),
        ("TAMGA_DATABASE__POOL_TIMEOUT_MS", "1000"),
        ("TAMGA_DATABASE__REQUEST_TIMEOUT_MS", "1500"),
    ]);
    let dir = env.dir().to_path_buf();
    let iin = fresh_iin();
    let (a, _) = csr(&dir, "ec", &[]);
    let (s, _) = csr(&dir, "ec", &[]);
    let (status, existing) = env.post(Some(&env.minted(&claims(&iin))), &body(&a, &s, None));
    assert_eq!(status, 201);
    let before = env.counts();

    // Another process holds SQLite's write lock for 4 s.
    let holder = env.store.clone();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let lock = std::thread::spawn(move || {
        holder
            .write(|_| {
                locked_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_secs(4));
                Ok::<_, tamga::store::StoreError>(())
            })
            .unwrap();
    });
    locked_rx.recv().unwrap();
    let iin2 = fresh_iin();
    let token = env.minted(&claims(&iin2));
    let (a2, _) = csr(&dir, "ec", &[]);
    let (s2, _) = csr(&dir, "ec", &[]);
    let request = body(&a2, &s2, None);
    let send = || {
        client()
            .post(format!("{}/api/v1/applications", env.server.base))
            .bearer_auth(&token)
            .json(&request)
            .send()
            .unwrap()
    };
    let (resp, took) = timed(send);
    assert_database_unavailable(
        "POST while the database is locked",
        resp,
        took,
        Duration::from_secs(4),
    );
    assert!(took >= Duration::from_millis(1400), "{took:?}");
    // Reads go on meanwhile (WAL).
    let (status, view) = env.get(
        existing["id"].as_str().unwrap(),
        existing["access_token"].as_str().unwrap(),
    );
    assert_eq!((status, view["status"].as_str()), (200, Some("issued")));
    lock.join().unwrap();

    // The refused request's transaction got the lock after the answer and committed: the
    // portal repeats the request and gets the application (200), not a second one.
    let counted = eventually("the late commit", Duration::from_secs(15), || {
        env.counts().applications == before.applications + 1
    });
    eprintln!("committed {counted:?} after the lock was released");
    let resp = send();
    assert_eq!(resp.status(), 200);
    let repeated: Value = resp.json().unwrap();
    assert_eq!(repeated["status"], "issued", "{repeated}");
    assert_eq!(repeated["certificates"].as_array().unwrap().len(), 2);
    let after = env.counts();
    assert_eq!(after.applications, before.applications + 1);
    assert_eq!(after.certificates, before.certificates + 2);
    let (status, view) = env.get(
        repeated["id"].as_str().unwrap(),
        repeated["access_token"].as_str().unwrap(),
    );
    assert_eq!((status, view["status"].as_str()), (200, Some("issued")));
}

/// What a client holds at the end of one application: a first issuance or a re-issue.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    access_token: String,
    iin: String,
    /// (kind, serial as the API gave it, PEM).
    certificates: Vec<(String, String, String)>,
    /// For a re-issue: the application whose pair it replaced, as the API named it.
    replaces: Option<String>,
    /// The private keys (PEM files) of the AUTH and the SIGN certificate.
    keys: [PathBuf; 2],
}

impl Received {
    /// What the client keeps of an answer with the application issued.
    fn from_answer(v: &Value, iin: String, keys: [PathBuf; 2]) -> Received {
        assert_eq!(v["status"], "issued", "{v}");
        let certificates = v["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["kind"].as_str().unwrap().to_owned(),
                    c["serial"].as_str().unwrap().to_owned(),
                    c["pem"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        Received {
            id: v["id"].as_str().unwrap().to_owned(),
            access_token: v["access_token"].as_str().unwrap().to_owned(),
            iin,
            certificates,
            replaces: v["replaces"].as_str().map(str::to_owned),
            keys,
        }
    }

    /// The PEM of its certificate of `kind`.
    fn pem(&self, kind: &str) -> &str {
        let (_, _, pem) = self
            .certificates
            .iter()
            .find(|c| c.0 == kind)
            .unwrap_or_else(|| panic!("{} has no {kind} certificate", self.id));
        pem
    }
}

/// How the clients fared, for the report a failing assertion prints.
#[derive(Debug, Default)]
struct Tally {
    created: AtomicU32,
    resubmitted: AtomicU32,
    logins: AtomicU32,
    reissued: AtomicU32,
    reissue_repeated: AtomicU32,
    unavailable: AtomicU32,
    connection_failures: AtomicU32,
}

impl Tally {
    fn summary(&self) -> String {
        format!(
            "201 created: {}, 200 resubmitted: {}, cabinet logins: {}, 201 re-issued: {}, 200 re-issue repeated: {}, 503: {}, connection failures: {}",
            self.created.load(Ordering::SeqCst),
            self.resubmitted.load(Ordering::SeqCst),
            self.logins.load(Ordering::SeqCst),
            self.reissued.load(Ordering::SeqCst),
            self.reissue_repeated.load(Ordering::SeqCst),
            self.unavailable.load(Ordering::SeqCst),
            self.connection_failures.load(Ordering::SeqCst)
        )
    }

    /// The status and JSON body of an answer; `None` (and counted) for a connection failure or
    /// a 503, after which the client tries again.
    fn answer(&self, sent: reqwest::Result<reqwest::blocking::Response>) -> Option<(u16, Value)> {
        let answer = sent.and_then(|r| {
            let status = r.status().as_u16();
            r.json::<Value>().map(|v| (status, v))
        });
        match answer {
            Ok((503, v)) => {
                self.unavailable.fetch_add(1, Ordering::SeqCst);
                assert!(v["code"].as_str().is_some(), "{v}");
                None
            }
            Ok(answer) => Some(answer),
            Err(_) => {
                self.connection_failures.fetch_add(1, Ordering::SeqCst);
                None
            }
        }
    }
}

/// One application as the portal holds it before sending: a holder, a consent token, and the
/// body with two CSRs (and the private keys behind them).
struct Prepared {
    iin: String,
    token: String,
    request: Value,
    keys: [PathBuf; 2],
}

fn prepare(dir: &Path, key: &openssl::pkey::PKey<openssl::pkey::Private>) -> Prepared {
    let iin = fresh_iin();
    let token = digital_id::mint_es256(key, &claims(&iin)).unwrap();
    // EC keys both: RSA requests are covered elsewhere; here the server's time should go to
    // issuance and its transactions (the weak-RSA checks of a debug build take tens of
    // milliseconds a key), and preparing the applications should take seconds.
    let [(auth, auth_key), (sign, sign_key)] = ["ec", "ec"].map(|kind| {
        let (csr, key) = csr_in_process(kind);
        let path = dir.join(format!("{}.key.pem", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, key).unwrap();
        (csr, path)
    });
    Prepared {
        iin,
        token,
        request: body(&auth, &sign, None),
        keys: [auth_key, sign_key],
    }
}

/// A client of the kill loop: answers time out well before the loop's end.
fn loop_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Fails the test once a client has waited too long for one answer.
fn assert_before(deadline: Instant, what: &str, tally: &Tally) {
    assert!(
        Instant::now() < deadline,
        "{what} not answered within 240 s ({})",
        tally.summary()
    );
}

/// The pause between two tries of a client.
fn pause() {
    std::thread::sleep(Duration::from_millis(rand::thread_rng().gen_range(30..150)));
}

/// Submit one application until the server answers it, retrying the very same request after
/// every connection failure or 503, as a portal would.
fn apply_until_answered(base: &str, prepared: Prepared, tally: &Tally) -> Received {
    let Prepared {
        iin,
        token,
        request,
        keys,
    } = prepared;
    let http = loop_client();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        assert_before(deadline, &format!("application of {iin}"), tally);
        let sent = http
            .post(format!("{base}/api/v1/applications"))
            .bearer_auth(&token)
            .json(&request)
            .send();
        match tally.answer(sent) {
            Some((status @ (200 | 201), v)) => {
                let counter = if status == 201 {
                    &tally.created
                } else {
                    &tally.resubmitted
                };
                counter.fetch_add(1, Ordering::SeqCst);
                assert_eq!(v["replaces"], Value::Null, "{v}");
                return Received::from_answer(&v, iin, keys);
            }
            Some((status, v)) => panic!(
                "application of {iin}: unexpected {status} {v} ({})",
                tally.summary()
            ),
            None => {}
        }
        pause();
    }
}

/// A CMS SignedData (RFC 5652) over `content`, signed with `key` and `cert_pem` (the signer's
/// certificate included, the signer named by issuer and serial), DER in standard base64:
/// attached for the cabinet's login, detached for a re-issue's confirmation.
fn cms_signed(cert_pem: &str, key: &Path, content: &[u8], detached: bool) -> String {
    let cert = openssl::x509::X509::from_pem(cert_pem.as_bytes()).unwrap();
    let key = openssl::pkey::PKey::private_key_from_pem(&std::fs::read(key).unwrap()).unwrap();
    let mut flags = CMSOptions::BINARY;
    if detached {
        flags |= CMSOptions::DETACHED;
    }
    let cms = CmsContentInfo::sign(Some(&cert), Some(&key), None, Some(content), flags).unwrap();
    STANDARD.encode(cms.to_der().unwrap())
}

/// Log in to the cabinet with `held`'s AUTH key: a new challenge, signed into an attached CMS.
/// `None` when an answer is lost (the server killed, or 503): the caller starts again with a
/// new challenge, since the one sent may have been used.
fn cabinet_login(
    http: &reqwest::blocking::Client,
    base: &str,
    held: &Received,
    tally: &Tally,
) -> Option<String> {
    let sent = http.post(format!("{base}/cabinet/api/challenge")).send();
    let challenge = match tally.answer(sent)? {
        (200, v) => STANDARD
            .decode(v["challenge"].as_str().unwrap_or_else(|| panic!("{v}")))
            .unwrap(),
        (status, v) => panic!("challenge: unexpected {status} {v} ({})", tally.summary()),
    };
    assert_eq!(challenge.len(), 32);
    let cms = cms_signed(held.pem("auth"), &held.keys[0], &challenge, false);
    let sent = http
        .post(format!("{base}/cabinet/api/login"))
        .json(&serde_json::json!({ "cms": cms }))
        .send();
    match tally.answer(sent)? {
        (200, v) => {
            tally.logins.fetch_add(1, Ordering::SeqCst);
            assert_eq!(v["application_id"], held.id.as_str(), "{v}");
            Some(v["session_token"].as_str().unwrap().to_owned())
        }
        (status, v) => panic!(
            "login of {} with {}: unexpected {status} {v} ({})",
            held.iin,
            held.id,
            tally.summary()
        ),
    }
}

/// Re-issue `held`'s pair from the cabinet until the server answers, as the holder's signing
/// program does: log in with the AUTH key, make new keys and CSRs, confirm the body with the
/// SIGN key. After a lost answer the very same body and confirmation go again under the same
/// session: the re-issue may have committed, and the old pair, revoked then, could not log in
/// again.
fn reissue_until_answered(base: &str, dir: &Path, held: &Received, tally: &Tally) -> Received {
    let (auth, auth_key) = csr(dir, "ec", &[]);
    let (sign, sign_key) = csr(dir, "ec", &[]);
    let request = serde_json::to_vec(&serde_json::json!({
        "email": format!("holder-{}@example.kz", held.iin),
        "language": "ru",
        "storage": "pkcs12",
        "csrs": {"auth": auth, "sign": sign},
    }))
    .unwrap();
    let confirmation = cms_signed(held.pem("sign"), &held.keys[1], &request, true);
    let http = loop_client();
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut session: Option<String> = None;
    loop {
        assert_before(deadline, &format!("re-issue of {}", held.id), tally);
        if session.is_none() {
            session = cabinet_login(&http, base, held, tally);
        }
        if let Some(token) = &session {
            let sent = http
                .post(format!("{base}/cabinet/api/reissues"))
                .bearer_auth(token)
                .header(CONFIRMATION_HEADER, &confirmation)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(request.clone())
                .send();
            match tally.answer(sent) {
                Some((status @ (200 | 201), v)) => {
                    let counter = if status == 201 {
                        &tally.reissued
                    } else {
                        &tally.reissue_repeated
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(v["replaces"], held.id.as_str(), "{v}");
                    return Received::from_answer(&v, held.iin.clone(), [auth_key, sign_key]);
                }
                Some((status, v)) => panic!(
                    "re-issue of {}: unexpected {status} {v} ({})",
                    held.id,
                    tally.summary()
                ),
                None => {}
            }
        }
        pause();
    }
}

/// Upper-case hex of a certificate's serial, as parsed from its PEM.
fn parsed_serial(pem: &str) -> (String, Vec<u8>) {
    let x = openssl::x509::X509::from_pem(pem.as_bytes()).unwrap();
    let serial = x.serial_number().to_bn().unwrap().to_hex_str().unwrap();
    (serial.to_uppercase(), x.to_der().unwrap())
}

/// The subject of a certificate, DER.
fn subject_der(pem: &str) -> Vec<u8> {
    let x = openssl::x509::X509::from_pem(pem.as_bytes()).unwrap();
    x.subject_name().to_der().unwrap()
}

/// Whether a stored certificate is as a pair replaced by a re-issue must be: revoked with the
/// reason `superseded`.
fn is_superseded(c: &Certificate) -> bool {
    c.status == CertificateStatus::Revoked && c.revocation_reason.as_deref() == Some("superseded")
}

/// The kill loop: `kills` times SIGKILL of `tamga serve` while `clients` threads apply, some
/// holders then re-issuing their pair from the cabinet (a few twice), a restart after each
/// kill; then every certificate a client received must be in the database, exactly as
/// received, issued or (its pair re-issued since) revoked `superseded`; every application must
/// have exactly its one pair; and each holder's applications must form one lineage (its first
/// application and the re-issues, each replacing the one before) with one valid pair, the last.
fn kill_loop(db: (&str, &str), store_url: DatabaseUrl, kills: u32, clients: usize) {
    // The clients stand for the portal, whose requests (over its client certificate) the
    // per-address flood guard does not count.
    let db_env = &[db, ("TAMGA_LIMITS__CLIENT_REQUESTS_PER_SECOND", "0")];
    let dir = tempfile::tempdir().unwrap();
    let dir_path: PathBuf = dir.path().to_path_buf();
    let port = free_port();
    let log = dir_path.join("serve.log");
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Server::spawn_logged(&dir_path, port, db_env, &log);
    server.wait_ready();
    let key = Arc::new(
        digital_id::read_signing_key(&dir_path.join("certs-dev/digital_id_dev.key.pem")).unwrap(),
    );

    // Consent tokens and CSRs are made beforehand (by a few threads: the RSA keys take most
    // of the time), so that the clients keep the server busy.
    let (queue, prepared_in) = timed(|| {
        std::thread::scope(|scope| {
            let makers: Vec<_> = (0..4)
                .map(|_| {
                    let (dir, key) = (&dir_path, &key);
                    scope.spawn(move || {
                        (0..clients * 3)
                            .map(|_| prepare(dir, key))
                            .collect::<Vec<Prepared>>()
                    })
                })
                .collect();
            makers
                .into_iter()
                .flat_map(|m| m.join().unwrap())
                .collect::<Vec<Prepared>>()
        })
    });
    let loop_started = Instant::now();
    let queue = Arc::new(Mutex::new(queue));
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let received = Arc::new(Mutex::new(Vec::<Received>::new()));
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, tally, received, key, queue) = (
                Arc::clone(&stop),
                Arc::clone(&tally),
                Arc::clone(&received),
                Arc::clone(&key),
                Arc::clone(&queue),
            );
            let (base, dir) = (base.clone(), dir_path.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let next = queue.lock().unwrap().pop();
                    let prepared = next.unwrap_or_else(|| prepare(&dir, &key));
                    let mut held = apply_until_answered(&base, prepared, &tally);
                    received.lock().unwrap().push(held.clone());
                    // Two holders in five come back to the cabinet and re-issue their pair,
                    // and two in five of those re-issue the new one again.
                    for _ in 0..2 {
                        if stop.load(Ordering::SeqCst) || !rand::thread_rng().gen_ratio(2, 5) {
                            break;
                        }
                        held = reissue_until_answered(&base, &dir, &held, &tally);
                        received.lock().unwrap().push(held.clone());
                    }
                }
            })
        })
        .collect();

    let mut rng = rand::thread_rng();
    let mut answered_at_kill = Vec::new();
    // The group-commit counters, summed over the server's incarnations.
    let (mut groups, mut scraped) = (GroupCommits::default(), 0);
    for round in 0..kills {
        // Most kills land 50-400 ms after the restarted server is ready, with requests in
        // flight (timed from readiness, not from the spawn: on a loaded machine start-up alone
        // can take longer than that); every fourth within the first 40 ms after the spawn,
        // wherever start-up has got to (completing interrupted issuance, publishing CRLs, …).
        let after = if round % 4 == 3 {
            rng.gen_range(0..40)
        } else {
            server.wait_ready();
            rng.gen_range(50..400)
        };
        std::thread::sleep(Duration::from_millis(after));
        // What this incarnation committed, as late as it can be asked (one that is not
        // answering yet has committed little, and counts nothing).
        if let Some(counted) = GroupCommits::scrape(&base) {
            groups = groups + counted;
            scraped += 1;
        }
        server.kill();
        answered_at_kill.push(received.lock().unwrap().len());
        server = Server::spawn_logged(&dir_path, port, db_env, &log);
    }
    server.wait_ready();
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    groups = groups + GroupCommits::scrape(&base).expect("metrics of the last incarnation");
    scraped += 1;
    let loop_took = loop_started.elapsed();
    let checks_started = Instant::now();
    let received = received.lock().unwrap().clone();
    // The applications whose pair a client re-issued, and the re-issue that replaced each.
    let mut replaced_by: HashMap<&str, &Received> = HashMap::new();
    for r in &received {
        if let Some(old) = r.replaces.as_deref() {
            assert!(
                replaced_by.insert(old, r).is_none(),
                "{old} re-issued twice"
            );
        }
    }
    let by_id: HashMap<&str, &Received> = received.iter().map(|r| (r.id.as_str(), r)).collect();
    // The portal's way back to an application: its id and the (last) access token.
    for r in &received {
        let resp = client()
            .get(format!("{base}/api/v1/applications/{}", r.id))
            .bearer_auth(&r.access_token)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", r.id);
        let v: Value = resp.json().unwrap();
        assert_eq!(v["status"], "issued");
        assert_eq!(v["replaces"].as_str(), r.replaces.as_deref(), "{v}");
        let serials: Vec<&str> = v["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["serial"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = r.certificates.iter().map(|c| c.1.as_str()).collect();
        assert_eq!(serials, expected);
    }
    let (exited_ok, _) = server.terminate();
    assert!(exited_ok);
    let summary = tally.summary();
    let resumed = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .matches("completed an interrupted issuance")
        .count();
    eprintln!(
        "kill loop: {kills} kills, {clients} clients, {} applications answered, {} of them re-issues ({summary}), {resumed} interrupted issuances completed; answered before each kill: {answered_at_kill:?}; group commit over {scraped} incarnations: {} writes in {} transactions, {:.2} per transaction",
        received.len(),
        replaced_by.len(),
        groups.writes,
        groups.commits,
        groups.per_commit()
    );
    // Concurrent applications shared transactions: more than two writes per commit.
    assert!(
        groups.commits > 0 && groups.per_commit() > 2.0,
        "writes must be committed in batches during the loop: {groups:?} over {scraped} incarnations ({summary})"
    );
    assert!(
        answered_at_kill.windows(2).filter(|w| w[1] > w[0]).count() >= (kills / 4) as usize,
        "issuance must be going on while the server is killed: {answered_at_kill:?}"
    );
    assert!(
        replaced_by.len() >= 3,
        "re-issues must be going on while the server is killed ({summary})"
    );

    // The command line's view of the certificates.
    let out = run(tamga(&dir_path)
        .envs(db_env.iter().copied())
        .args(["certs", "list", "--json", "--limit", "100000"]));
    assert!(out.status.success(), "{}", text(&out));
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let listed: HashMap<String, Value> = listed
        .into_iter()
        .map(|c| (c["serial"].as_str().unwrap().to_owned(), c))
        .collect();

    let store = Store::open(&store_url, &DatabaseConfig::default()).unwrap();
    let mut seen_serials = HashSet::new();
    for r in &received {
        let kinds: Vec<&str> = r.certificates.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(kinds, ["auth", "sign"], "{}", r.id);
        // A pair a client re-issued since is revoked as superseded; any other is valid.
        let superseded = replaced_by.contains_key(r.id.as_str());
        let (status, reason) = if superseded {
            ("revoked", Value::from("superseded"))
        } else {
            ("valid", Value::Null)
        };
        for (kind, serial, pem) in &r.certificates {
            let (parsed, der) = parsed_serial(pem);
            assert_eq!(
                &parsed, serial,
                "the serial the API names is the certificate's"
            );
            assert!(
                seen_serials.insert(parsed.clone()),
                "{parsed} received twice"
            );
            let row = listed
                .get(&parsed)
                .unwrap_or_else(|| panic!("received {kind} {parsed} is not in `tamga certs list`"));
            assert_eq!(row["status"], status, "{row}");
            assert_eq!(row["revocation_reason"], reason, "{row}");
            assert_eq!(row["application_id"], r.id.as_str(), "{row}");
            assert_eq!(row["holder_iin"], r.iin.as_str(), "{row}");
            let stored = store
                .read(|tx| tx.certificate(&parsed))
                .unwrap()
                .unwrap_or_else(|| panic!("{parsed} not stored"));
            assert!(stored.issued_at.is_some(), "{parsed} recorded as issued");
            if superseded {
                assert!(is_superseded(&stored), "{parsed}: {:?}", stored.status);
            } else {
                assert_eq!(stored.status, CertificateStatus::Issued);
            }
            assert_eq!(
                stored.der.as_deref(),
                Some(der.as_slice()),
                "the received certificate is byte for byte the stored one"
            );
            // A re-issue certifies the identity of the pair it replaces.
            if let Some(old) = r.replaces.as_deref() {
                let before = by_id
                    .get(old)
                    .unwrap_or_else(|| panic!("{} replaces {old}, which no client holds", r.id));
                assert_eq!(before.iin, r.iin);
                assert_eq!(
                    subject_der(pem),
                    subject_der(before.pem(kind)),
                    "{} keeps the subject of {old}",
                    r.id
                );
            }
        }
    }

    let apps = store
        .read(|tx| tx.list_applications(None, None, 100_000))
        .unwrap();
    let apps_by_id: HashMap<&str, &Application> = apps.iter().map(|a| (a.id.as_str(), a)).collect();
    // The lineages as the database records them: each application and the one replacing it.
    let mut successor: HashMap<&str, &str> = HashMap::new();
    for app in &apps {
        if let Some(old) = app.replaces_application_id.as_deref() {
            assert!(
                successor.insert(old, app.id.as_str()).is_none(),
                "{old} replaced twice"
            );
            let before = apps_by_id
                .get(old)
                .unwrap_or_else(|| panic!("{} replaces {old}, which is not stored", app.id));
            assert_eq!(before.holder_iin, app.holder_iin, "{}", app.id);
        }
        if let Some(r) = by_id.get(app.id.as_str()) {
            assert_eq!(
                app.replaces_application_id.as_deref(),
                r.replaces.as_deref(),
                "{}",
                app.id
            );
        }
    }
    let mut per_holder: BTreeMap<&str, u32> = BTreeMap::new();
    let mut valid_pair: HashMap<&str, bool> = HashMap::new();
    let mut rows = 0;
    for app in &apps {
        if app.replaces_application_id.is_none() {
            *per_holder.entry(app.holder_iin.as_str()).or_default() += 1;
        }
        let certs = store
            .read(|tx| tx.certificates_of_application(&app.id))
            .unwrap();
        rows += certs.len();
        assert_eq!(app.status, ApplicationStatus::Issued, "{}", app.id);
        let kinds: Vec<CertificateKind> = certs.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [CertificateKind::Auth, CertificateKind::Sign],
            "exactly one pair for {}",
            app.id
        );
        // The replaced pair is revoked `superseded` as a whole, in the re-issue's transaction.
        if successor.contains_key(app.id.as_str()) {
            assert!(certs.iter().all(is_superseded), "{}: {certs:?}", app.id);
        } else {
            assert!(certs.iter().all(|c| c.status == CertificateStatus::Issued));
        }
        valid_pair.insert(
            app.id.as_str(),
            certs.iter().any(|c| c.status == CertificateStatus::Issued),
        );
    }
    assert!(
        per_holder.values().all(|n| *n == 1),
        "one first application per consent token: {per_holder:?}"
    );
    // Every lineage, from the application a consent token made along `replaces`: its
    // applications are all its holder's, and only its last pair is valid.
    let mut in_lineages = 0;
    for first in apps.iter().filter(|a| a.replaces_application_id.is_none()) {
        let mut lineage = vec![first.id.as_str()];
        while let Some(next) = lineage.last().and_then(|id| successor.get(id)) {
            assert!(lineage.len() <= apps.len(), "a cycle through {next}");
            lineage.push(next);
        }
        in_lineages += lineage.len();
        let valid: Vec<&str> = lineage
            .iter()
            .copied()
            .filter(|id| valid_pair[id])
            .collect();
        assert_eq!(
            valid,
            lineage.last().copied().into_iter().collect::<Vec<_>>(),
            "one valid pair in the lineage {lineage:?}"
        );
    }
    assert_eq!(in_lineages, apps.len(), "every application is in a lineage");
    let counts = store.read(|tx| tx.table_counts()).unwrap();
    assert_eq!(
        counts.certificates, rows as i64,
        "no certificate row without its application"
    );
    assert_eq!(
        apps.len(),
        received.len(),
        "every application reached its client, and only once ({summary})"
    );

    // Each re-issue's e-mail was queued with it, once: the new pair and the replaced one.
    let messages = store.read(|tx| tx.list_messages(None, 100_000)).unwrap();
    let payloads: Vec<(&str, Value)> = messages
        .iter()
        .map(|m| (m.event.as_str(), serde_json::from_str(&m.payload).unwrap()))
        .collect();
    for (old, r) in &replaced_by {
        let queued: Vec<&(&str, Value)> = payloads
            .iter()
            .filter(|(_, p)| p["application_id"] == r.id.as_str())
            .collect();
        assert_eq!(queued.len(), 1, "{}: {queued:?}", r.id);
        let (event, payload) = queued[0];
        assert_eq!(*event, "certificates_reissued", "{payload}");
        assert_eq!(payload["replaces"], *old, "{payload}");
        let mut superseded: Vec<&str> = payload["superseded"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        superseded.sort_unstable();
        let mut expected: Vec<&str> = by_id[old]
            .certificates
            .iter()
            .map(|c| c.1.as_str())
            .collect();
        expected.sort_unstable();
        assert_eq!(superseded, expected, "{payload}");
    }
    let out = run(tamga(&dir_path)
        .envs(db_env.iter().copied())
        .args(["audit", "verify"]));
    assert!(out.status.success(), "{}", text(&out));
    eprintln!(
        "kill loop: prepared in {prepared_in:?}, loop {loop_took:?}, checks {:?}",
        checks_started.elapsed()
    );
    drop(dir);
}

#[test]
fn sigkill_during_concurrent_issuance_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tamga.db");
    let url = format!("sqlite://{}", db.display());
    kill_loop(
        ("TAMGA_DATABASE__URL", url.as_str()),
        DatabaseUrl::Sqlite(db.clone()),
        24,
        // 32 clients: with 16, a debug build on two cores had about two writes waiting per
        // commit (1.99 to 2.28 per transaction), too close to the bound the loop asserts.
        32,
    );
    drop(dir);
}

#[test]
fn sigkill_during_concurrent_issuance_on_postgres() {
    let Some(admin) = postgres_url("sigkill_during_concurrent_issuance_on_postgres") else {
        return;
    };
    let db = PgDatabase::create(&admin);
    kill_loop(
        ("TAMGA_DATABASE__URL", db.url.as_str()),
        DatabaseUrl::Postgres(db.url.clone()),
        20,
        32,
    );
}
