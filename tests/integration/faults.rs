//! Faults: the database going away under a running server (a PostgreSQL instance of the
//! test's own, stopped with `pg_ctl stop -m immediate` and started again; a SQLite write lock
//! held by another process), and `tamga serve` killed with SIGKILL again and again while
//! clients apply for certificates, on SQLite and PostgreSQL.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::Value;
use tamga::config::{DatabaseConfig, DatabaseUrl};
use tamga::digital_id;
use tamga::store::{ApplicationStatus, CertificateKind, CertificateStatus, Store};

use crate::enroll::{body, claims, csr, fresh_iin, Env};
use crate::ocsp::{enroll, ocsp};
use crate::support::{
    client, free_port, postgres_url, run, tamga, text, OwnPostgres, PgDatabase, Server,
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
        let again = Command::new("openssl")
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

/// What a client holds at the end of one application.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    access_token: String,
    iin: String,
    /// (kind, serial as the API gave it, PEM).
    certificates: Vec<(String, String, String)>,
}

/// How the clients fared, for the report a failing assertion prints.
#[derive(Debug, Default)]
struct Tally {
    created: AtomicU32,
    resubmitted: AtomicU32,
    unavailable: AtomicU32,
    connection_failures: AtomicU32,
}

impl Tally {
    fn summary(&self) -> String {
        format!(
            "201 created: {}, 200 resubmitted: {}, 503: {}, connection failures: {}",
            self.created.load(Ordering::SeqCst),
            self.resubmitted.load(Ordering::SeqCst),
            self.unavailable.load(Ordering::SeqCst),
            self.connection_failures.load(Ordering::SeqCst)
        )
    }
}

/// One application as the portal holds it before sending: a holder, a consent token, and the
/// body with two CSRs.
struct Prepared {
    iin: String,
    token: String,
    request: Value,
}

fn prepare(dir: &Path, key: &openssl::pkey::PKey<openssl::pkey::Private>) -> Prepared {
    let iin = fresh_iin();
    let token = digital_id::mint_es256(key, &claims(&iin)).unwrap();
    let (auth, _) = csr(dir, "ec", &[]);
    let (sign, _) = csr(dir, "rsa:2048", &[]);
    Prepared {
        iin,
        token,
        request: body(&auth, &sign, None),
    }
}

/// Submit one application until the server answers it, retrying the very same request after
/// every connection failure or 503, as a portal would.
fn apply_until_answered(base: &str, prepared: Prepared, tally: &Tally) -> Received {
    let Prepared {
        iin,
        token,
        request,
    } = prepared;
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        assert!(
            Instant::now() < deadline,
            "application of {iin} not answered within 240 s ({})",
            tally.summary()
        );
        let answer = http
            .post(format!("{base}/api/v1/applications"))
            .bearer_auth(&token)
            .json(&request)
            .send()
            .and_then(|r| {
                let status = r.status().as_u16();
                r.json::<Value>().map(|v| (status, v))
            });
        match answer {
            Ok((status @ (200 | 201), v)) => {
                let counter = if status == 201 {
                    &tally.created
                } else {
                    &tally.resubmitted
                };
                counter.fetch_add(1, Ordering::SeqCst);
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
                return Received {
                    id: v["id"].as_str().unwrap().to_owned(),
                    access_token: v["access_token"].as_str().unwrap().to_owned(),
                    iin,
                    certificates,
                };
            }
            Ok((503, v)) => {
                tally.unavailable.fetch_add(1, Ordering::SeqCst);
                assert!(v["code"].as_str().is_some(), "{v}");
            }
            Ok((status, v)) => panic!(
                "application of {iin}: unexpected {status} {v} ({})",
                tally.summary()
            ),
            Err(_) => {
                tally.connection_failures.fetch_add(1, Ordering::SeqCst);
            }
        }
        std::thread::sleep(Duration::from_millis(rand::thread_rng().gen_range(30..150)));
    }
}

/// Upper-case hex of a certificate's serial, as parsed from its PEM.
fn parsed_serial(pem: &str) -> (String, Vec<u8>) {
    let x = openssl::x509::X509::from_pem(pem.as_bytes()).unwrap();
    let serial = x.serial_number().to_bn().unwrap().to_hex_str().unwrap();
    (serial.to_uppercase(), x.to_der().unwrap())
}

/// The kill loop: `kills` times SIGKILL of `tamga serve` while `clients` threads apply, a
/// restart after each; then every certificate a client received must be in the database,
/// issued, exactly as received, and every application must have exactly its one pair.
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

    // Consent tokens and CSRs are made beforehand, so that the clients keep the server busy.
    let queue: Vec<Prepared> = (0..clients * 12)
        .map(|_| prepare(&dir_path, &key))
        .collect();
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
                    let got = apply_until_answered(&base, prepared, &tally);
                    received.lock().unwrap().push(got);
                }
            })
        })
        .collect();

    let mut rng = rand::thread_rng();
    let mut answered_at_kill = Vec::new();
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
        server.kill();
        answered_at_kill.push(received.lock().unwrap().len());
        server = Server::spawn_logged(&dir_path, port, db_env, &log);
    }
    server.wait_ready();
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let received = received.lock().unwrap().clone();
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
        "kill loop: {kills} kills, {} applications answered ({summary}), {resumed} interrupted issuances completed; answered before each kill: {answered_at_kill:?}",
        received.len()
    );
    assert!(
        answered_at_kill.windows(2).filter(|w| w[1] > w[0]).count() >= (kills / 4) as usize,
        "issuance must be going on while the server is killed: {answered_at_kill:?}"
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
            assert_eq!(row["status"], "valid", "{row}");
            assert_eq!(row["application_id"], r.id.as_str(), "{row}");
            assert_eq!(row["holder_iin"], r.iin.as_str(), "{row}");
            let stored = store
                .read(|tx| tx.certificate(&parsed))
                .unwrap()
                .unwrap_or_else(|| panic!("{parsed} not stored"));
            assert_eq!(stored.status, CertificateStatus::Issued);
            assert_eq!(
                stored.der.as_deref(),
                Some(der.as_slice()),
                "the received certificate is byte for byte the stored one"
            );
        }
    }

    let apps = store
        .read(|tx| tx.list_applications(None, None, 100_000))
        .unwrap();
    let mut per_holder: BTreeMap<&str, u32> = BTreeMap::new();
    let mut rows = 0;
    for app in &apps {
        *per_holder.entry(app.holder_iin.as_str()).or_default() += 1;
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
        assert!(certs.iter().all(|c| c.status == CertificateStatus::Issued));
    }
    assert!(
        per_holder.values().all(|n| *n == 1),
        "one application per consent token: {per_holder:?}"
    );
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
    let out = run(tamga(&dir_path)
        .envs(db_env.iter().copied())
        .args(["audit", "verify"]));
    assert!(out.status.success(), "{}", text(&out));
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
        4,
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
        4,
    );
}
