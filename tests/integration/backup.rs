//! Backup and restore: `tamga backup` while enrollments run, revocations after the backup
//! (one of a certificate issued after it, which the restore keeps by serial), the restore into
//! a fresh directory with the newest published CRLs (OCSP and CRLs checked with `openssl`), the restore's refusals (no CRLs, a tampered backup) writing nothing, and
//! `tamga backup --verify` of a PostgreSQL database copied with pg_dump/pg_restore.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tamga::config::{DatabaseConfig, DatabaseUrl};
use tamga::store::Store;

use crate::enroll::{body, claims, csr, fresh_iin, Env};
use crate::support::{
    answers_version, openssl, run, tamga, text, tool_present, PgDatabase, Server,
};

const ISSUER: &str = "nca_rsa_dev";
/// Applications each of the four load clients sends.
const LOAD_PER_CLIENT: usize = 8;

/// The serials of an application's certificates.
fn serials(created: &Value) -> Vec<String> {
    created["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["serial"].as_str().unwrap().to_owned())
        .collect()
}

/// `openssl ocsp` status of `serial` as `base`'s responder answers it: good, revoked or unknown.
fn ocsp_status(dir: &Path, base: &str, serial: &str) -> String {
    let url = format!("{base}/ocsp");
    let out = crate::support::openssl_command()
        .current_dir(dir)
        .args(["ocsp", "-issuer", "certs-dev/nca_rsa_dev.pem"])
        .args(["-VAfile", "certs-dev/ocsp_nca_rsa_dev.pem", "-url", &url])
        .args(["-serial", &format!("0x{serial}")])
        .output()
        .unwrap();
    let shown = text(&out);
    assert!(shown.contains("Response verify OK"), "{shown}");
    for status in ["good", "revoked", "unknown"] {
        if shown.contains(&format!(": {status}")) {
            return status.to_owned();
        }
    }
    panic!("no status in {shown}");
}

/// `openssl ocsp` text of `base`'s answer for `serial` (status, reason and revocation time).
fn ocsp_text(dir: &Path, base: &str, serial: &str) -> String {
    let url = format!("{base}/ocsp");
    let out = crate::support::openssl_command()
        .current_dir(dir)
        .args(["ocsp", "-issuer", "certs-dev/nca_rsa_dev.pem"])
        .args(["-VAfile", "certs-dev/ocsp_nca_rsa_dev.pem", "-url", &url])
        .args(["-serial", &format!("0x{serial}")])
        .output()
        .unwrap();
    text(&out)
}

/// The lines `openssl crl -text` prints for `serial`'s entry (empty if it is not listed).
fn crl_entry(listing: &str, serial: &str) -> String {
    let Some(at) = listing.find(&format!("Serial Number: {serial}")) else {
        return String::new();
    };
    let rest = &listing[at..];
    let end = rest[1..]
        .find("Serial Number:")
        .or_else(|| rest.find("Signature Algorithm"))
        .map_or(rest.len(), |e| e + 1);
    rest[..end].to_owned()
}

/// The base CRL number `openssl crl -text` shows in a delta CRL's Delta CRL Indicator.
fn delta_base(listing: &str) -> i64 {
    let mut lines = listing.lines();
    lines
        .by_ref()
        .find(|l| l.contains("Delta CRL Indicator"))
        .expect("a delta CRL");
    let value = lines.next().unwrap().trim();
    match value.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).unwrap(),
        None => value.parse().unwrap(),
    }
}

/// The `Revocation Date:` line of an entry.
fn revocation_date(entry: &str) -> &str {
    entry
        .lines()
        .find(|l| l.trim_start().starts_with("Revocation Date:"))
        .unwrap_or("")
        .trim()
}

/// GET `path` from `server` into `dir/file`.
fn fetch(server: &Server, path: &str, dir: &Path, file: &str) {
    let resp = server.get(path);
    assert_eq!(resp.status(), 200, "{path}");
    std::fs::write(dir.join(file), resp.bytes().unwrap()).unwrap();
}

fn crl_number(dir: &Path, file: &str) -> i64 {
    let out = openssl(
        dir,
        &["crl", "-inform", "DER", "-in", file, "-noout", "-crlnumber"],
    );
    i64::from_str_radix(out.trim().trim_start_matches("crlNumber=0x"), 16).unwrap()
}

fn crl_text(dir: &Path, file: &str) -> String {
    openssl(
        dir,
        &["crl", "-inform", "DER", "-in", file, "-noout", "-text"],
    )
}

/// Wait until `server`'s delta CRL lists every one of `serials`.
fn wait_for_delta(server: &Server, dir: &Path, serials: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        fetch(
            server,
            &format!("/crl/{ISSUER}-delta.crl"),
            dir,
            "probe.crl",
        );
        let shown = crl_text(dir, "probe.crl");
        if serials.iter().all(|s| shown.contains(s.as_str())) {
            return;
        }
        assert!(Instant::now() < deadline, "delta never listed {serials:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Run `tamga` in `dir` with `env`; (exit code, stdout + stderr).
fn cli(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let mut cmd = tamga(dir);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(&mut cmd);
    (out.status.code().unwrap_or(-1), text(&out))
}

/// Run SQL on a SQLite file with Python's sqlite3 module (an independent client).
fn python_sqlite(db: &Path, sql: &str) {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()",
        ])
        .arg(db)
        .arg(sql)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Everything in `dir` (names), sorted, or nothing if it does not exist.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn backup_under_issuance_load_then_restore_with_the_published_crls() {
    // A full CRL only when asked for, so that the revocations show in the delta first.
    let env = Env::sqlite_with(&[
        ("TAMGA_CRL__FULL_INTERVAL", "30d"),
        ("TAMGA_CRL__VALIDITY", "31d"),
    ]);
    let dir = env.dir().to_path_buf();

    // Certificates issued before the backup: some revoked before it, some after.
    let before: Vec<(String, Vec<String>)> = (0..4)
        .map(|_| {
            let (iin, created) = env.enroll_holder(None);
            (iin, serials(&created))
        })
        .collect();
    let revoked_before = before[0].1[0].clone();
    let resp = env.revoke_as_holder(&before[0].0, &revoked_before, "superseded");
    assert_eq!(resp.status(), 200);
    // On hold at the backup; released and revoked for good after it.
    let held = before[3].1[1].clone();
    let operator = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--operator", "test"]);
        let (code, shown) = cli(&dir, &[], &all);
        assert_eq!(code, 0, "{shown}");
    };
    operator(&["certs", "revoke", &held, "--reason", "certificateHold"]);

    // The backup, taken while four clients keep applying.
    let done = AtomicUsize::new(0);
    let backup_dir = dir.join("backups/first");
    let (load_serials, backup_out) = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let env = &env;
                let done = &done;
                scope.spawn(move || {
                    let mut issued = Vec::new();
                    for _ in 0..LOAD_PER_CLIENT {
                        let (a, _) = csr(env.dir(), "ec", &[]);
                        let (s, _) = csr(env.dir(), "ec", &[]);
                        let token = env.minted(&claims(&fresh_iin()));
                        let (status, created) = env.post(Some(&token), &body(&a, &s, None));
                        assert_eq!(status, 201, "{created}");
                        issued.extend(serials(&created));
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    issued
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(120);
        while done.load(Ordering::SeqCst) < 2 {
            assert!(Instant::now() < deadline, "the load never got going");
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = cli(
            &dir,
            &[],
            &["backup", "--out", backup_dir.to_str().unwrap(), "--json"],
        );
        let during = done.load(Ordering::SeqCst);
        let serials: Vec<String> = clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        assert!(
            during < 4 * LOAD_PER_CLIENT,
            "the backup ran after the load had ended"
        );
        (serials, out)
    });
    assert_eq!(backup_out.0, 0, "{}", backup_out.1);
    assert_eq!(
        listing(&backup_dir),
        ["manifest.json", "tamga.db"],
        "a backup is its database and its manifest"
    );
    assert!(
        listing(&dir.join("backups")).len() == 1,
        "no temporary directory left: {:?}",
        listing(&dir.join("backups"))
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup_dir.join("manifest.json")).unwrap()).unwrap();
    let backed_up_number = manifest["crl_numbers"][ISSUER].as_i64().unwrap();
    assert!(
        manifest["audit_head"]["seq"].as_i64().unwrap() > 0,
        "{manifest}"
    );
    assert_eq!(manifest["tamga_version"], env!("CARGO_PKG_VERSION"));
    // A second backup to the same place is refused.
    let (code, shown) = cli(
        &dir,
        &[],
        &["backup", "--out", backup_dir.to_str().unwrap()],
    );
    assert_eq!(code, 5, "{shown}");

    // Issued after the backup, then revoked: the backup never saw this certificate.
    let (_, created) = env.enroll_holder(None);
    let unseen = serials(&created)[1].clone();
    operator(&["certs", "revoke", &unseen, "--reason", "affiliationChanged"]);

    // After the backup: revocations, and the CRLs relying parties fetch.
    let revoked_after = vec![before[1].1[0].clone(), before[2].1[1].clone()];
    let resp = env.revoke_as_holder(&before[1].0, &revoked_after[0], "keyCompromise");
    assert_eq!(resp.status(), 200);
    let (code, shown) = cli(
        &dir,
        &[],
        &[
            "certs",
            "revoke",
            &revoked_after[1],
            "--reason",
            "cessationOfOperation",
            "--operator",
            "test",
        ],
    );
    assert_eq!(code, 0, "{shown}");
    operator(&["certs", "release", &held]);
    operator(&["certs", "revoke", &held, "--reason", "keyCompromise"]);
    wait_for_delta(
        &env.server,
        &dir,
        &[revoked_after.clone(), vec![unseen.clone()]].concat(),
    );
    let (code, shown) = cli(&dir, &[], &["crl", "publish"]);
    assert_eq!(code, 0, "{shown}");
    let published = dir.join("published");
    std::fs::create_dir_all(&published).unwrap();
    fetch(
        &env.server,
        &format!("/crl/{ISSUER}.crl"),
        &published,
        "full.crl",
    );
    fetch(
        &env.server,
        &format!("/crl/{ISSUER}-delta.crl"),
        &published,
        "delta.crl",
    );
    let listed = crl_text(&published, "full.crl");
    for serial in revoked_after.iter().chain([&unseen]) {
        assert!(listed.contains(serial.as_str()), "{serial} not in {listed}");
    }
    let published_entry = crl_entry(&listed, &unseen);
    assert!(
        published_entry.contains("Affiliation Changed"),
        "{published_entry}"
    );
    let published_max = crl_number(&published, "full.crl").max(crl_number(&published, "delta.crl"));
    assert!(published_max > backed_up_number);
    let (stopped, log) = env.server.terminate();
    assert!(stopped, "{log}");

    // The day of the restore: a fresh directory with the CA's certificates and keys.
    let fresh = tempfile::tempdir().unwrap();
    let new = fresh.path();
    copy_dir(&dir.join("certs-dev"), &new.join("certs-dev"));
    let from = backup_dir.to_str().unwrap();
    let full = published.join("full.crl");
    let delta = published.join("delta.crl");
    let (full, delta) = (full.to_str().unwrap(), delta.to_str().unwrap());

    // Without the published CRLs: refused, nothing written.
    let (code, shown) = cli(new, &[], &["restore", "--from", from]);
    assert_eq!(code, 5, "{shown}");
    assert!(
        shown.contains("--published-crl") && shown.contains("--accept-revocation-loss"),
        "{shown}"
    );
    assert!(listing(&new.join("data")).is_empty());

    // A backup whose database was changed: the manifest does not match it.
    let tampered = new.join("tampered");
    copy_dir(&backup_dir, &tampered);
    python_sqlite(
        &tampered.join("tamga.db"),
        "UPDATE audit_log SET actor = 'operator:nobody' WHERE seq = 2;",
    );
    let tampered_s = tampered.to_str().unwrap();
    let args = [
        "restore",
        "--from",
        tampered_s,
        "--published-crl",
        full,
        delta,
    ];
    let (code, shown) = cli(new, &[], &args);
    assert_eq!(code, 6, "{shown}");
    assert!(shown.contains("manifest mismatch"), "{shown}");
    assert!(
        listing(&new.join("data")).is_empty(),
        "{:?}",
        listing(&new.join("data"))
    );
    // … and with the manifest's digest made to match: the audit chain gives it away.
    let (sha, bytes) = {
        use sha2::Digest;
        let db = std::fs::read(tampered.join("tamga.db")).unwrap();
        (hex::encode(sha2::Sha256::digest(&db)), db.len())
    };
    let mut forged = manifest.clone();
    forged["database"]["sha256"] = json!(sha);
    forged["database"]["bytes"] = json!(bytes);
    std::fs::write(tampered.join("manifest.json"), forged.to_string()).unwrap();
    let (code, shown) = cli(new, &[], &args);
    assert_eq!(code, 6, "{shown}");
    assert!(shown.contains("audit chain"), "{shown}");
    assert!(
        listing(&new.join("data")).is_empty(),
        "{:?}",
        listing(&new.join("data"))
    );

    // With the loss accepted, it goes ahead: audited, and the revocations after the backup
    // are not there (what the operator accepted).
    let lossy = tempfile::tempdir().unwrap();
    copy_dir(&dir.join("certs-dev"), &lossy.path().join("certs-dev"));
    let (code, shown) = cli(
        lossy.path(),
        &[],
        &[
            "restore",
            "--from",
            from,
            "--accept-revocation-loss",
            "--operator",
            "test",
        ],
    );
    assert_eq!(code, 0, "{shown}");
    let store = Store::open(
        &DatabaseUrl::Sqlite(lossy.path().join("data/tamga.db")),
        &DatabaseConfig::default(),
    )
    .unwrap();
    let tail = store.read(|tx| tx.audit_tail(20)).unwrap();
    assert!(
        tail.iter()
            .any(|r| r.action == "restore.revocation_loss_accepted" && r.actor == "operator:test"),
        "{tail:?}"
    );
    let lost = store
        .read(|tx| tx.certificate(&revoked_after[0]))
        .unwrap()
        .unwrap();
    assert_eq!(lost.status.as_str(), "issued");
    drop(store);

    // The restore with the newest published CRLs.
    let (code, shown) = cli(
        new,
        &[],
        &[
            "restore",
            "--from",
            from,
            "--published-crl",
            full,
            delta,
            "--operator",
            "test",
        ],
    );
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains(&unseen) && shown.contains("kept by serial"),
        "{shown}"
    );
    assert_eq!(listing(&new.join("data")), ["tamga.db"]);
    let (code, shown) = cli(new, &[], &["audit", "verify"]);
    assert_eq!(code, 0, "{shown}");
    let (code, shown) = cli(
        new,
        &[],
        &["backup", "--verify", "--published-crl", full, delta],
    );
    assert_eq!(code, 0, "{shown}");
    // A second restore over it is refused.
    let (code, shown) = cli(
        new,
        &[],
        &["restore", "--from", from, "--published-crl", full, delta],
    );
    assert_eq!(code, 5, "{shown}");

    let store = Store::open(
        &DatabaseUrl::Sqlite(new.join("data/tamga.db")),
        &DatabaseConfig::default(),
    )
    .unwrap();
    let tail = store.read(|tx| tx.audit_tail(100)).unwrap();
    let actions: Vec<&str> = tail.iter().map(|r| r.action.as_str()).collect();
    assert!(actions.contains(&"restore.completed"), "{actions:?}");
    assert!(actions.contains(&"restore.crls_applied"), "{actions:?}");
    let reapplied = tail
        .iter()
        .filter(|r| {
            r.action == "certificate.revoked"
                && r.actor == "operator:test"
                && r.details.contains("restored_from")
        })
        .map(|r| r.subject.clone())
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(
        reapplied,
        revoked_after.iter().chain([&held]).cloned().collect(),
        "each revocation after the backup applied again, audited"
    );
    // The certificate issued after the backup: no row, its revocation kept by serial, audited.
    assert!(store.read(|tx| tx.certificate(&unseen)).unwrap().is_none());
    let kept = store
        .read(|tx| tx.revoked_serial(ISSUER, &unseen))
        .unwrap()
        .expect("the revocation kept by serial");
    assert_eq!(kept.reason, "affiliationChanged");
    assert!(
        tail.iter()
            .any(|r| r.action == "restore.revoked_serial_recorded"
                && r.subject == unseen
                && r.actor == "operator:test"),
        "{actions:?}"
    );
    let final_reason = store.read(|tx| tx.certificate(&held)).unwrap().unwrap();
    assert_eq!(
        final_reason.revocation_reason.as_deref(),
        Some("keyCompromise"),
        "the hold made final as published"
    );
    let in_backup: Vec<bool> = load_serials
        .iter()
        .map(|s| store.read(|tx| tx.certificate(s)).unwrap().is_some())
        .collect();
    drop(store);

    let server = Server::start(new, &[]);
    for serial in &revoked_after {
        assert_eq!(
            ocsp_status(new, &server.base, serial),
            "revoked",
            "{serial}"
        );
    }
    assert_eq!(ocsp_status(new, &server.base, &revoked_before), "revoked");
    // Issued after the backup and revoked: revoked, with the published time and reason.
    assert_eq!(ocsp_status(new, &server.base, &unseen), "revoked");
    let answer = ocsp_text(new, &server.base, &unseen);
    assert!(answer.contains("Reason: affiliationChanged"), "{answer}");
    let published_at = revocation_date(&published_entry)
        .trim_start_matches("Revocation Date:")
        .trim()
        .to_owned();
    assert!(
        answer.contains(&format!("Revocation Time: {published_at}")),
        "{published_at} not in {answer}"
    );
    assert_eq!(ocsp_status(new, &server.base, &held), "revoked");
    for serial in before.iter().flat_map(|(_, s)| s) {
        if *serial != revoked_before && *serial != held && !revoked_after.contains(serial) {
            assert_eq!(ocsp_status(new, &server.base, serial), "good", "{serial}");
        }
    }
    // Issued during the load: good if the backup caught it, unknown if it came after.
    for (serial, known) in load_serials.iter().zip(&in_backup) {
        let want = if *known { "good" } else { "unknown" };
        assert_eq!(ocsp_status(new, &server.base, serial), want, "{serial}");
    }
    fetch(&server, &format!("/crl/{ISSUER}.crl"), new, "full.crl");
    fetch(
        &server,
        &format!("/crl/{ISSUER}-delta.crl"),
        new,
        "delta.crl",
    );
    assert!(crl_number(new, "full.crl") > published_max);
    assert!(crl_number(new, "delta.crl") > published_max);
    let listed = crl_text(new, "full.crl");
    for serial in revoked_after.iter().chain([&revoked_before, &unseen]) {
        assert!(listed.contains(serial.as_str()), "{serial} not in {listed}");
    }
    // Listed as published: the same reason and revocation date.
    let entry = crl_entry(&listed, &unseen);
    assert!(entry.contains("Affiliation Changed"), "{entry}");
    assert_eq!(revocation_date(&entry), revocation_date(&published_entry));
    // The restored server's delta CRL: on the restore's full CRL, which lists the serial; a
    // delta on the full CRL relying parties held before (which lists it too) is the published
    // one. Either way the pair a relying party combines lists it.
    let delta_listing = crl_text(new, "delta.crl");
    let base = crl_number(new, "full.crl");
    assert_eq!(delta_base(&delta_listing), base, "{delta_listing}");

    // --force replaces the database and keeps the old one beside it.
    let (stopped, log) = server.terminate();
    assert!(stopped, "{log}");
    let (code, shown) = cli(
        new,
        &[],
        &[
            "restore",
            "--from",
            from,
            "--published-crl",
            full,
            delta,
            "--force",
        ],
    );
    assert_eq!(code, 0, "{shown}");
    let files = listing(&new.join("data"));
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[1].starts_with("tamga.db.replaced-"), "{files:?}");
    let (code, shown) = cli(new, &[], &["audit", "verify"]);
    assert_eq!(code, 0, "{shown}");
}

#[test]
fn backup_verify_checks_a_postgres_copy_made_with_pg_dump() {
    let test = "backup_verify_checks_a_postgres_copy_made_with_pg_dump";
    let tools = answers_version("pg_dump") && answers_version("pg_restore");
    if !tool_present(
        tools,
        "TAMGA_TEST_REQUIRE_PG_DUMP",
        test,
        "pg_dump and pg_restore are not installed (apt-get install postgresql-client)",
    ) {
        return;
    }
    let Some(env) = Env::postgres_for(test) else {
        return;
    };
    let dir = env.dir().to_path_buf();
    let source = env.db.as_ref().unwrap().url.clone();
    let (iin, created) = env.enroll_holder(None);
    let ours = serials(&created);
    let resp = env.revoke_as_holder(&iin, &ours[0], "superseded");
    assert_eq!(resp.status(), 200);
    wait_for_delta(&env.server, &dir, &ours[..1]);
    fetch(&env.server, &format!("/crl/{ISSUER}.crl"), &dir, "full.crl");
    fetch(
        &env.server,
        &format!("/crl/{ISSUER}-delta.crl"),
        &dir,
        "delta.crl",
    );

    // `tamga backup --out` leaves PostgreSQL to pg_dump.
    let pg = [("TAMGA_DATABASE__URL", source.as_str())];
    let (code, shown) = cli(&dir, &pg, &["backup", "--out", "b"]);
    assert_eq!(code, 5, "{shown}");
    assert!(shown.contains("pg_dump"), "{shown}");

    let dump = dir.join("tamga.dump");
    let out = Command::new("pg_dump")
        .args(["-Fc", "-f"])
        .arg(&dump)
        .args(["-d", &source])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let copy = PgDatabase::create(&std::env::var(crate::support::POSTGRES_ENV).unwrap());
    let out = Command::new("pg_restore")
        .args(["--no-owner", "-d", &copy.url])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let restored = [("TAMGA_DATABASE__URL", copy.url.as_str())];
    let (code, shown) = cli(
        &dir,
        &restored,
        &[
            "backup",
            "--verify",
            "--published-crl",
            "full.crl",
            "delta.crl",
        ],
    );
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("postgres database") && shown.contains("database verified"),
        "{shown}"
    );

    // A revocation after the dump, and a certificate issued after it and revoked: the copy is
    // behind what relying parties hold …
    let resp = env.revoke_as_holder(&iin, &ours[1], "keyCompromise");
    assert_eq!(resp.status(), 200);
    let (unseen_iin, created) = env.enroll_holder(None);
    let unseen = serials(&created)[0].clone();
    let resp = env.revoke_as_holder(&unseen_iin, &unseen, "superseded");
    assert_eq!(resp.status(), 200);
    wait_for_delta(
        &env.server,
        &dir,
        &[ours.clone(), vec![unseen.clone()]].concat(),
    );
    fetch(
        &env.server,
        &format!("/crl/{ISSUER}-delta.crl"),
        &dir,
        "delta2.crl",
    );
    let newer = [
        "backup",
        "--verify",
        "--published-crl",
        "full.crl",
        "delta2.crl",
    ];
    let (code, shown) = cli(&dir, &restored, &newer);
    assert_eq!(code, 6, "{shown}");
    assert!(
        shown.contains(&ours[1]) && shown.contains(&unseen),
        "{shown}"
    );
    // … until the restore applies the published CRLs to it in place.
    let (code, shown) = cli(
        &dir,
        &restored,
        &[
            "restore",
            "--published-crl",
            "full.crl",
            "delta2.crl",
            "--operator",
            "test",
        ],
    );
    assert_eq!(code, 0, "{shown}");
    let (code, shown) = cli(&dir, &restored, &newer);
    assert_eq!(code, 0, "{shown}");
    let store = Store::open(
        &DatabaseUrl::Postgres(copy.url.clone()),
        &DatabaseConfig::default(),
    )
    .unwrap();
    assert!(store.read(|tx| tx.certificate(&unseen)).unwrap().is_none());
    let kept = store
        .read(|tx| tx.revoked_serial(ISSUER, &unseen))
        .unwrap()
        .expect("kept by serial");
    assert_eq!(kept.reason, "superseded");
    drop(store);
    // A server on the copy: OCSP answers revoked, and its next delta and full CRLs list it.
    let server = Server::start(&dir, &restored);
    assert_eq!(ocsp_status(&dir, &server.base, &unseen), "revoked");
    fetch(
        &server,
        &format!("/crl/{ISSUER}.crl"),
        &dir,
        "copy-full.crl",
    );
    let entry = crl_entry(&crl_text(&dir, "copy-full.crl"), &unseen);
    assert!(entry.contains("Superseded"), "{entry}");
    let (stopped, log) = server.terminate();
    assert!(stopped, "{log}");
    let (code, shown) = cli(
        &dir,
        &restored,
        &["restore", "--from", "backups/x", "--accept-revocation-loss"],
    );
    assert_eq!(code, 5, "{shown}");
    assert!(shown.contains("pg_restore"), "{shown}");
}
