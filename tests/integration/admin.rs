//! The operators' command line: moderation, listings with `--json`, and `audit verify`
//! against a log altered behind its back.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::enroll::{assert_reference_extensions, body, claims, csr, fresh_iin, lint, Env};
use crate::support::{run, tamga, text, verify_chain, x509_text_utf8};

/// The text `field` of each row of the JSON array `rows`.
fn texts_of<'a>(rows: &'a Value, field: &str) -> Vec<&'a str> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r[field].as_str().unwrap())
        .collect()
}

fn cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = run(tamga(dir).args(args));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let (code, out, err) = cli(dir, args);
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
}

/// A pending application (Digital ID did not confirm liveness).
fn pending(env: &Env, email: Option<&str>) -> (String, Value) {
    let iin = fresh_iin();
    let mut c = claims(&iin);
    c.verification.liveness = false;
    let (a, _) = csr(env.dir(), "rsa:2048", &[]);
    let (s, _) = csr(env.dir(), "ec", &[]);
    let (status, created) = env.post(Some(&env.minted(&c)), &body(&a, &s, email));
    assert_eq!(
        (status, created["status"].as_str()),
        (201, Some("pending_review")),
        "{created}"
    );
    (iin, created)
}

/// Stop the server and close the store, keeping the directory.
fn stop(env: Env) -> tempfile::TempDir {
    let (server, store, dir, db) = env.into_parts();
    drop((server, store, db));
    dir
}

/// Run one SQL statement on the SQLite file behind the server's back (Python's sqlite3, an
/// independent client); returns the first column of the first row, if any.
fn python_sqlite(db: &Path, sql: &str) -> String {
    let script = format!(
        "import sqlite3; c = sqlite3.connect({:?}); r = c.execute({:?}).fetchone(); c.commit(); print(r[0] if r else '')",
        db.display().to_string(),
        sql
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn moderation_listings_and_audit_verification() {
    let env = Env::sqlite();
    let dir = env.dir().to_path_buf();

    // Approve: the certificates pass the same checks as automatic issuance.
    let (iin, created) = pending(&env, Some("reviewed@example.kz"));
    let id = created["id"].as_str().unwrap();
    let listed = json(
        &dir,
        &[
            "applications",
            "list",
            "--status",
            "pending_review",
            "--json",
        ],
    );
    assert!(
        listed.as_array().unwrap().iter().any(|a| a["id"] == id),
        "{listed}"
    );
    let approved = json(
        &dir,
        &[
            "applications",
            "approve",
            id,
            "--operator",
            "aliya",
            "--json",
        ],
    );
    assert_eq!(approved["status"], "issued");
    assert_eq!(approved["decided_by"], "aliya");
    let (status, read) = env.get(id, created["access_token"].as_str().unwrap());
    assert_eq!((status, read["status"].as_str()), (200, Some("issued")));
    std::fs::write(dir.join("chain.pem"), read["chain_pem"].as_str().unwrap()).unwrap();
    for cert in read["certificates"].as_array().unwrap() {
        let kind = cert["kind"].as_str().unwrap();
        let file = format!("approved-{kind}.pem");
        std::fs::write(dir.join(&file), cert["pem"].as_str().unwrap()).unwrap();
        let verified = verify_chain(&dir, "chain.pem", &[&file]);
        assert!(verified.contains(": OK"), "{verified}");
        let shown = x509_text_utf8(&dir, &file);
        assert!(shown.contains(&format!("serialNumber=IIN{iin}")), "{shown}");
        assert_reference_extensions(&dir, &shown, kind);
        lint(&dir, &file);
    }
    // Twice: refused.
    let (code, _, err) = cli(&dir, &["applications", "approve", id]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("not pending_review"), "{err}");

    // Reject: the holder reads the reason.
    let (_, other) = pending(&env, None);
    let other_id = other["id"].as_str().unwrap();
    let (code, _, err) = cli(&dir, &["applications", "reject", other_id, "--reason", " "]);
    assert_eq!(code, 5, "{err}");
    let (code, out, err) = cli(
        &dir,
        &[
            "applications",
            "reject",
            other_id,
            "--reason",
            "Құжат фотосы анық емес",
            "--operator",
            "aliya",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (_, read) = env.get(other_id, other["access_token"].as_str().unwrap());
    assert_eq!(read["status"], "rejected");
    assert_eq!(read["reason"], "Құжат фотосы анық емес");
    let (code, _, _) = cli(&dir, &["applications", "approve", other_id]);
    assert_eq!(code, 5);
    let (code, _, _) = cli(
        &dir,
        &["applications", "reject", other_id, "--reason", "again"],
    );
    assert_eq!(code, 5);
    let (code, _, _) = cli(&dir, &["applications", "show", "no-such-id"]);
    assert_eq!(code, 4);

    // Every listing and show parses as JSON.
    let serial = approved["certificates"][0]["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        json(&dir, &["applications", "show", id, "--json"])["certificates"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let shown = json(&dir, &["certs", "show", &serial.to_lowercase(), "--json"]);
    assert!(shown["pem"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    let valid = json(
        &dir,
        &[
            "certs", "list", "--iin", &iin, "--status", "valid", "--json",
        ],
    );
    assert_eq!(valid.as_array().unwrap().len(), 2, "{valid}");
    json(
        &dir,
        &[
            "certs",
            "revoke",
            &serial,
            "--reason",
            "superseded",
            "--json",
        ],
    );
    let revoked = json(&dir, &["certs", "list", "--status", "revoked", "--json"]);
    assert_eq!(revoked.as_array().unwrap().len(), 1, "{revoked}");
    assert_eq!(
        json(&dir, &["certs", "list", "--status", "expired", "--json"]),
        serde_json::json!([])
    );
    let outbox = json(&dir, &["outbox", "list", "--json"]);
    let events = texts_of(&outbox, "event");
    for event in [
        "application_received",
        "certificates_issued",
        "certificate_revoked",
    ] {
        assert!(events.contains(&event), "{event} not queued: {events:?}");
    }
    json(&dir, &["outbox", "list", "--status", "pending", "--json"]);
    let (code, _, _) = cli(
        &dir,
        &["outbox", "retry", outbox[0]["id"].as_str().unwrap()],
    );
    assert_eq!(code, 5, "a pending row is not dead");
    json(&dir, &["crl", "publish", "--json"]);
    let tail = json(&dir, &["audit", "tail", "-n", "50", "--json"]);
    let actions = texts_of(&tail, "action");
    for action in [
        "application.submitted",
        "application.approved",
        "application.issued",
        "application.rejected",
        "certificate.revoked",
        "crl.published",
    ] {
        assert!(
            actions.contains(&action),
            "{action} not audited: {actions:?}"
        );
    }
    assert!(tail
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["actor"] == "operator:aliya"));
    // Human-readable tables too.
    let (code, table, _) = cli(&dir, &["applications", "list"]);
    assert_eq!(code, 0);
    assert!(table.starts_with("ID") && table.contains(id), "{table}");

    // The audit chain: intact, then altered, then with a row deleted.
    let verified = json(&dir, &["audit", "verify", "--json"]);
    assert_eq!(verified["ok"], true);
    let entries = verified["entries"].as_i64().unwrap();
    assert!(entries >= 8, "{verified}");
    let _keep = stop(env);
    let db = dir.join("data/tamga.db");
    let original = python_sqlite(&db, "SELECT actor FROM audit_log WHERE seq = 3");
    python_sqlite(
        &db,
        "UPDATE audit_log SET actor = 'operator:someone-else' WHERE seq = 3",
    );
    let (code, _, err) = cli(&dir, &["audit", "verify"]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("entry 3"), "{err}");
    // Swapping two entries' places (reordering) is caught too.
    python_sqlite(
        &db,
        &format!("UPDATE audit_log SET actor = '{original}' WHERE seq = 3"),
    );
    let (code, out, err) = cli(&dir, &["audit", "verify"]);
    assert_eq!(code, 0, "restored: {out}{err}");
    python_sqlite(&db, "UPDATE audit_log SET seq = -1 WHERE seq = 4");
    python_sqlite(&db, "UPDATE audit_log SET seq = 4 WHERE seq = 5");
    python_sqlite(&db, "UPDATE audit_log SET seq = 5 WHERE seq = -1");
    let (code, _, err) = cli(&dir, &["audit", "verify"]);
    assert_eq!(code, 6, "reordered: {err}");
    assert!(err.contains("entry 4"), "{err}");
}

#[test]
fn audit_verify_names_a_deleted_entry() {
    let env = Env::sqlite();
    let dir = env.dir().to_path_buf();
    pending(&env, None);
    pending(&env, None);
    let _keep = stop(env);
    let (code, out, err) = cli(&dir, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    let head = json(&dir, &["audit", "verify", "--json"])["head"]
        .as_str()
        .unwrap()
        .to_owned();
    let db = dir.join("data/tamga.db");
    // Cutting the tail leaves a valid chain; only a head recorded elsewhere reveals it.
    let last = head.split(':').next().unwrap().to_owned();
    python_sqlite(&db, &format!("DELETE FROM audit_log WHERE seq = {last}"));
    let (code, _, _) = cli(&dir, &["audit", "verify"]);
    assert_eq!(code, 0, "a truncated chain is still a chain");
    let (code, _, err) = cli(&dir, &["audit", "verify", "--expect", &head]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("truncated or rewritten"), "{err}");
    python_sqlite(&db, "DELETE FROM audit_log WHERE seq = 2");
    let (code, _, err) = cli(&dir, &["audit", "verify"]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("entry 2 is missing"), "{err}");
}
