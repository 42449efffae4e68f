//! Revocation and CRLs over HTTP and the CLI, checked with `openssl crl`, `openssl verify
//! -crl_check [-use_deltas]` and pkilint's `lint_crl`; two instances on one PostgreSQL.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::enroll::{claims, lint_with, Env};
use crate::support::{client, openssl, post_json, postgres_url, run, tamga, text, Server};

/// Settings for these tests: a full CRL only when asked for (`tamga crl publish`), so that a
/// revocation shows in the delta first.
const CRL_ENV: [(&str, &str); 2] = [
    ("TAMGA_CRL__FULL_INTERVAL", "30d"),
    ("TAMGA_CRL__VALIDITY", "31d"),
];

fn revoke(base: &str, token: &str, body: &Value) -> (u16, Value) {
    let resp = post_json(&format!("{base}/api/v1/revocations"), token, body);
    (resp.status().as_u16(), resp.json().unwrap())
}

/// The holder `iin` asks `env`'s server to revoke what `body` names.
fn holder_revokes(env: &Env, iin: &str, body: &Value) -> (u16, Value) {
    revoke(&env.server.base, &env.revocation_token(iin), body)
}

/// The holder of `iin` asks to revoke with `body` and gets the problem `code` with `want` as
/// its status.
fn assert_holder_refused(env: &Env, iin: &str, body: &Value, want: u16, code: &str) {
    let (status, problem) = holder_revokes(env, iin, body);
    assert_problem(status, &problem, want, code);
}

/// The answer was the problem `code` with `want` as its status.
fn assert_problem(status: u16, problem: &Value, want: u16, code: &str) {
    assert_eq!(
        (status, problem["code"].as_str()),
        (want, Some(code)),
        "{problem}"
    );
}

fn fetch(server: &Server, path: &str, file: &str) -> reqwest::blocking::Response {
    let resp = server.get(path);
    assert_eq!(resp.status(), 200, "{path}");
    assert_eq!(resp.headers()["content-type"], "application/pkix-crl");
    let headers = resp.headers().clone();
    let bytes = resp.bytes().unwrap();
    std::fs::write(server.dir.join(file), &bytes).unwrap();
    // A response object to read headers from again.
    let again = server.get(path);
    assert_eq!(again.headers()["etag"], headers["etag"]);
    again
}

fn crl_number(dir: &Path, file: &str) -> i64 {
    let out = openssl(
        dir,
        &["crl", "-inform", "DER", "-in", file, "-noout", "-crlnumber"],
    );
    i64::from_str_radix(
        out.trim()
            .trim_start_matches("crlNumber=0x")
            .trim_start_matches("crlNumber="),
        16,
    )
    .unwrap()
}

/// `openssl crl -text` of the DER CRL `file` in `dir`.
fn crl_text(dir: &Path, file: &str) -> String {
    openssl(
        dir,
        &["crl", "-inform", "DER", "-in", file, "-noout", "-text"],
    )
}

/// The DER CRL `file` in `dir` written again as PEM to `pem`.
fn crl_to_pem(dir: &Path, file: &str, pem: &str) {
    openssl(dir, &["crl", "-inform", "DER", "-in", file, "-out", pem]);
}

/// Wait until the delta CRL lists `serial` (a revocation reaches it within seconds).
fn wait_for_delta(server: &Server, issuer: &str, needle: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let bytes = server
            .get(&format!("/crl/{issuer}-delta.crl"))
            .bytes()
            .unwrap()
            .to_vec();
        std::fs::write(server.dir.join("probe.crl"), &bytes).unwrap();
        let shown = crl_text(&server.dir, "probe.crl");
        if shown.contains(needle) {
            return bytes;
        }
        assert!(
            Instant::now() < deadline,
            "the delta CRL never listed {needle}: {shown}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn verify(dir: &Path, extra: &[&str], cert: &str) -> String {
    let mut args = vec![
        "verify",
        "-CAfile",
        "certs-dev/root.pem",
        "-untrusted",
        "certs-dev/nca_rsa_dev.pem",
    ];
    args.extend_from_slice(extra);
    args.push(cert);
    let out = crate::support::openssl_command()
        .current_dir(dir)
        .args(&args)
        .output()
        .unwrap();
    text(&out)
}

#[test]
fn revocation_and_crls_on_sqlite() {
    revocation_and_crls(Env::sqlite_with(&CRL_ENV));
}

#[test]
fn revocation_and_crls_with_keys_in_softhsm() {
    let test = "revocation_and_crls_with_keys_in_softhsm";
    if let Some(env) = Env::sqlite_softhsm(test, "", &CRL_ENV) {
        revocation_and_crls(env);
    }
}

/// Revocation by holder and operator, full and delta CRLs checked with openssl and pkilint,
/// the CRL number across a restart. The server runs with `CRL_ENV`.
fn revocation_and_crls(env: Env) {
    let dir = env.dir().to_path_buf();
    let (iin, created) = env.enroll_holder(Some("holder@example.kz"));
    let certs = created["certificates"].as_array().unwrap();
    for c in certs {
        std::fs::write(
            dir.join(format!("{}.pem", c["kind"].as_str().unwrap())),
            c["pem"].as_str().unwrap(),
        )
        .unwrap();
    }
    let auth_serial = certs[0]["serial"].as_str().unwrap().to_owned();
    let sign_serial = certs[1]["serial"].as_str().unwrap().to_owned();
    // The serial as `openssl x509 -text` prints it: lower case with colons.
    let colon_form: String = sign_serial
        .to_lowercase()
        .as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect::<Vec<_>>()
        .join(":");

    // Another person's token: refused, nothing changes.
    let (stranger, _) = env.enroll_holder(None);
    let before = env.counts();
    assert_holder_refused(
        &env,
        &stranger,
        &json!({"serial": colon_form, "reason": "keyCompromise"}),
        403,
        "not_certificate_holder",
    );
    assert_eq!(env.counts(), before);
    // The issuance token may not revoke.
    let (status, problem) = revoke(
        &env.server.base,
        &env.minted(&claims(&iin)),
        &json!({"serial": sign_serial, "reason": "superseded"}),
    );
    assert_problem(status, &problem, 403, "consent_token_wrong_purpose");
    for (body, code) in [
        (
            json!({"serial": "zz", "reason": "superseded"}),
            "serial_invalid",
        ),
        (
            json!({"serial": sign_serial, "reason": "caCompromise"}),
            "revocation_reason_invalid",
        ),
        (
            json!({"serial": sign_serial, "reason": "superseded", "invalidity_date": "2999-01-01T00:00:00Z"}),
            "invalidity_date_invalid",
        ),
        // Before 1970 no CRL can carry it: once accepted, such a date stopped every CRL and
        // then the server's start.
        (
            json!({"serial": sign_serial, "reason": "keyCompromise", "invalidity_date": "1969-12-31T23:59:59Z"}),
            "invalidity_date_invalid",
        ),
        (
            json!({"serial": sign_serial, "reason": "keyCompromise", "invalidity_date": "1900-01-01T00:00:00Z"}),
            "invalidity_date_invalid",
        ),
        // Before the certificate was valid.
        (
            json!({"serial": sign_serial, "reason": "keyCompromise", "invalidity_date": "2020-01-02T03:04:05Z"}),
            "invalidity_date_invalid",
        ),
        (
            json!({"serial": sign_serial, "reason": "keyCompromise", "invalidity_date": "yesterday"}),
            "invalidity_date_invalid",
        ),
        (
            json!({"serial": "0x0102", "reason": "superseded"}),
            "certificate_not_found",
        ),
    ] {
        let (_, problem) = revoke(&env.server.base, &env.revocation_token(&iin), &body);
        assert_eq!(problem["code"], code, "{problem}");
        assert_eq!(env.counts(), before, "{code} changed something");
    }
    let sign_cert_before = env
        .store
        .read(|tx| tx.certificate(&sign_serial))
        .unwrap()
        .unwrap();
    assert_eq!(sign_cert_before.status.as_str(), "issued");

    // The holder revokes the SIGN certificate (serial given in colon form), compromised a
    // second after it became valid.
    let invalidity = (sign_cert_before.not_before + chrono::Duration::seconds(1))
        .and_utc()
        .to_rfc3339();
    let (status, revoked) = holder_revokes(
        &env,
        &iin,
        &json!({"serial": colon_form, "reason": "keyCompromise", "invalidity_date": invalidity}),
    );
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(
        (revoked["serial"].as_str(), revoked["status"].as_str()),
        (Some(sign_serial.as_str()), Some("revoked"))
    );
    let after = env.counts();
    assert_eq!(
        after.outbox,
        before.outbox + 1,
        "the holder's e-mail is queued with the revocation"
    );
    assert_eq!(after.audit_log, before.audit_log + 1);
    assert_eq!(after.used_consent_tokens, before.used_consent_tokens + 1);
    assert!(
        env.store
            .read(|tx| tx.blocked_key(&sign_cert_before.spki_sha256))
            .unwrap()
            .is_some(),
        "keyCompromise blocks the key"
    );
    // Again: already revoked, nothing changes.
    let before = env.counts();
    assert_holder_refused(
        &env,
        &iin,
        &json!({"serial": sign_serial, "reason": "superseded"}),
        409,
        "already_revoked",
    );
    // The delta CRL that the first revocation triggers may be published (and audited) in the
    // meantime: compare everything but the audit log.
    let no_audit = |c: tamga::store::TableCounts| tamga::store::TableCounts { audit_log: 0, ..c };
    assert_eq!(no_audit(env.counts()), no_audit(before));

    // Within seconds the delta CRL lists it; the full CRL (published at start) does not.
    wait_for_delta(&env.server, "nca_rsa_dev", &sign_serial);
    let full = fetch(&env.server, "/crl/nca_rsa_dev.crl", "full.crl");
    let etag = full.headers()["etag"].to_str().unwrap().to_owned();
    assert!(full.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("public"));
    assert!(full.headers().contains_key("last-modified") && full.headers().contains_key("expires"));
    let unchanged = client()
        .get(format!("{}/crl/nca_rsa_dev.crl", env.server.base))
        .header("If-None-Match", &etag)
        .send()
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    fetch(&env.server, "/crl/nca_rsa_dev-delta.crl", "delta.crl");
    std::fs::write(
        dir.join("chain.pem"),
        created["chain_pem"].as_str().unwrap(),
    )
    .unwrap();
    for file in ["full.crl", "delta.crl"] {
        let out = crate::support::openssl_command()
            .current_dir(&dir)
            .args([
                "crl",
                "-inform",
                "DER",
                "-in",
                file,
                "-CAfile",
                "chain.pem",
                "-noout",
            ])
            .output()
            .unwrap();
        assert!(text(&out).contains("verify OK"), "{file}: {}", text(&out));
        lint_with(
            &dir,
            "lint_crl",
            &["lint", "-t", "CRL", "-p", "PKIX", "-s", "WARNING", file],
        );
        crl_to_pem(&dir, file, &format!("{file}.pem"));
    }
    let delta_text = crl_text(&dir, "delta.crl");
    assert!(
        delta_text.contains("Delta CRL Indicator: critical"),
        "{delta_text}"
    );
    assert!(
        delta_text.contains("Key Compromise") && delta_text.contains("Invalidity Date"),
        "{delta_text}"
    );
    let full_text = crl_text(&dir, "full.crl");
    assert!(
        full_text.contains("Freshest CRL") && full_text.contains("nca_rsa_dev-delta.crl"),
        "{full_text}"
    );
    assert!(
        full_text.contains("Authority Key Identifier"),
        "{full_text}"
    );
    assert!(!full_text.contains(&sign_serial), "{full_text}");
    assert!(
        full_text.contains("ҰЛТТЫҚ") || full_text.contains("\\D2\\B0"),
        "{full_text}"
    );

    // The full CRL alone says OK; with the delta, openssl sees the revocation.
    let only_full = verify(
        &dir,
        &["-crl_check", "-CRLfile", "full.crl.pem"],
        "sign.pem",
    );
    assert!(only_full.contains("sign.pem: OK"), "{only_full}");
    let full_and_delta = [
        "-crl_check",
        "-use_deltas",
        "-CRLfile",
        "full.crl.pem",
        "-CRLfile",
        "delta.crl.pem",
    ];
    let with_delta = verify(&dir, &full_and_delta, "sign.pem");
    assert!(with_delta.contains("certificate revoked"), "{with_delta}");
    let good = verify(&dir, &full_and_delta, "auth.pem");
    assert!(good.contains("auth.pem: OK"), "{good}");

    // The operator publishes a new full CRL from the CLI: it lists the revocation.
    let full_number = crl_number(&dir, "full.crl");
    let out = run(tamga(&dir).args(["crl", "publish", "--json"]).envs(CRL_ENV));
    assert!(out.status.success(), "{}", text(&out));
    let published: Value = serde_json::from_slice(&out.stdout).unwrap();
    // A full and a delta CRL of every issuer: the RSA one's, and the development GOST
    // issuer's beside it.
    let of_rsa = published
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["issuer"] == "nca_rsa_dev")
        .count();
    assert_eq!(of_rsa, 2, "{published}");
    fetch(&env.server, "/crl/nca_rsa_dev.crl", "full2.crl");
    assert!(crl_number(&dir, "full2.crl") > full_number);
    crl_to_pem(&dir, "full2.crl", "full2.pem");
    let revoked_now = verify(&dir, &["-crl_check", "-CRLfile", "full2.pem"], "sign.pem");
    assert!(revoked_now.contains("certificate revoked"), "{revoked_now}");
    lint_with(
        &dir,
        "lint_crl",
        &[
            "lint",
            "-t",
            "CRL",
            "-p",
            "PKIX",
            "-s",
            "WARNING",
            "full2.crl",
        ],
    );

    // Operators: hold and release the AUTH certificate; the release reaches the delta as
    // removeFromCRL. Exit codes: 4 unknown, 5 refused.
    let out = run(tamga(&dir)
        .args([
            "certs",
            "revoke",
            &auth_serial.to_lowercase(),
            "--reason",
            "certificateHold",
            "--operator",
            "aliya",
        ])
        .envs(CRL_ENV));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(tamga(&dir)
        .args(["certs", "revoke", &auth_serial, "--reason", "superseded"])
        .envs(CRL_ENV));
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("already revoked"), "{}", text(&out));
    let out = run(tamga(&dir)
        .args(["certs", "revoke", "0xABCDEF", "--reason", "superseded"])
        .envs(CRL_ENV));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let out = run(tamga(&dir)
        .args(["certs", "release", &sign_serial])
        .envs(CRL_ENV));
    assert_eq!(
        out.status.code(),
        Some(5),
        "a keyCompromise is not a hold: {}",
        text(&out)
    );
    wait_for_delta(&env.server, "nca_rsa_dev", "Certificate Hold");
    let out = run(tamga(&dir)
        .args([
            "certs",
            "release",
            &auth_serial,
            "--json",
            "--operator",
            "aliya",
        ])
        .envs(CRL_ENV));
    assert!(out.status.success(), "{}", text(&out));
    wait_for_delta(&env.server, "nca_rsa_dev", "Remove From CRL");
    let audit = env.store.read(|tx| tx.audit_records(0, 1000)).unwrap();
    assert!(audit
        .iter()
        .any(|r| r.action == "certificate.released" && r.actor == "operator:aliya"));
    assert!(tamga::audit::verify(&env.store).is_ok());

    // A key revoked for compromise can never be certified again.
    let newest = env
        .store
        .read(|tx| tx.last_crl_number("nca_rsa_dev"))
        .unwrap()
        .unwrap();
    let metrics = env.server.get("/metrics").text().unwrap();
    assert!(
        metrics.contains(r#"tamga_revocations_total{reason="keyCompromise"}"#),
        "{metrics}"
    );

    // The CRL number survives a restart.
    let (server, store, _dir_guard, db) = env.into_parts();
    let (clean, log) = server.terminate();
    assert!(clean, "{log}");
    let server = Server::start(&dir, &CRL_ENV);
    let out = run(tamga(&dir).args(["crl", "publish"]).envs(CRL_ENV));
    assert!(out.status.success(), "{}", text(&out));
    let after_restart = store
        .read(|tx| tx.last_crl_number("nca_rsa_dev"))
        .unwrap()
        .unwrap();
    assert!(after_restart > newest, "{after_restart} after {newest}");
    fetch(&server, "/crl/nca_rsa_dev.crl", "full3.crl");
    assert!(crl_number(&dir, "full3.crl") > newest);
    drop((server, db));
}

#[test]
fn two_instances_on_postgres_share_one_crl_sequence() {
    let Some(admin) = postgres_url("two_instances_on_postgres_share_one_crl_sequence") else {
        return;
    };
    let a = Env::postgres_with(&admin, &CRL_ENV);
    let url = a.db.as_ref().unwrap().url.clone();
    // A second instance on the same database and the same CA hierarchy.
    let (_dir_b, b) = a.second_instance(&CRL_ENV);

    let (iin1, c1) = a.enroll_holder(None);
    let (iin2, c2) = a.enroll_holder(None);
    let s1 = c1["certificates"][1]["serial"].as_str().unwrap().to_owned();
    let s2 = c2["certificates"][0]["serial"].as_str().unwrap().to_owned();
    let (st, v) = holder_revokes(&a, &iin1, &json!({"serial": s1, "reason": "superseded"}));
    assert_eq!(st, 200, "{v}");
    let (st, v) = revoke(
        &b.base,
        &a.revocation_token(&iin2),
        &json!({"serial": s2, "reason": "cessationOfOperation"}),
    );
    assert_eq!(st, 200, "{v}");
    // Both instances race to publish the delta; each serves one that lists both revocations.
    wait_for_delta(&a.server, "nca_rsa_dev", &s1);
    wait_for_delta(&a.server, "nca_rsa_dev", &s2);
    wait_for_delta(&b, "nca_rsa_dev", &s1);
    wait_for_delta(&b, "nca_rsa_dev", &s2);
    // The operator forces a full CRL while both keep publishing.
    let out = run(tamga(a.dir())
        .args(["crl", "publish"])
        .env("TAMGA_DATABASE__URL", &url)
        .envs(CRL_ENV));
    assert!(out.status.success(), "{}", text(&out));

    let history = a.store.read(|tx| tx.crl_history("nca_rsa_dev")).unwrap();
    let numbers: Vec<i64> = history.iter().map(|(n, _, _)| *n).collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "numbers must increase in publication order: {history:?}"
    );
    assert_eq!(numbers.first(), Some(&1));
    // Both serve the same newest full and delta CRL.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let same = ["/crl/nca_rsa_dev.crl", "/crl/nca_rsa_dev-delta.crl"]
            .iter()
            .all(|p| a.server.get(p).bytes().unwrap() == b.get(p).bytes().unwrap());
        if same {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the instances serve different CRLs"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let full = b.get("/crl/nca_rsa_dev.crl").bytes().unwrap();
    std::fs::write(a.dir().join("f.crl"), &full).unwrap();
    let shown = crl_text(a.dir(), "f.crl");
    assert!(
        shown.contains(&s1) && shown.contains(&s2),
        "both revocations, made through different instances: {shown}"
    );
}

fn readiness(server: &Server) -> Value {
    let resp = server.get("/readyz");
    assert_eq!(
        resp.status(),
        200,
        "shared CRL trouble never makes an instance unready"
    );
    resp.json().unwrap()
}

/// Wait until `/readyz` reports `crl_publication: want`.
fn wait_for_publication(server: &Server, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = readiness(server);
        if ready["checks"]["crl_publication"] == want {
            return ready;
        }
        assert!(Instant::now() < deadline, "never {want}: {ready}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The critical defect of issue 16 as an old database holds it: an invalidity date of 1969
/// (accepted by earlier code) used to stop every CRL, then the server's start. Now the
/// revocation is still published (without that date), `/readyz` says `degraded`, `tamga crl
/// check` names the row and `--repair` corrects it, audited. A row whose revocation date no
/// CRL can encode fails publication, and the server still starts and says so.
#[test]
fn stored_revocations_no_crl_can_carry_are_reported_and_repaired() {
    use diesel::{Connection, RunQueryDsl};

    let env = Env::sqlite_with(&CRL_ENV);
    let (iin, created) = env.enroll_holder(None);
    let auth = created["certificates"][0]["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    let sign = created["certificates"][1]["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    for serial in [&auth, &sign] {
        let (status, body) = holder_revokes(
            &env,
            &iin,
            &json!({"serial": serial, "reason": "superseded"}),
        );
        assert_eq!(status, 200, "{body}");
    }
    wait_for_delta(&env.server, "nca_rsa_dev", &sign);
    assert_eq!(readiness(&env.server)["checks"]["crl_publication"], "ok");

    // What the old code stored for `"invalidity_date": "1969-12-31T23:59:59Z"`.
    let pre_epoch = chrono::DateTime::parse_from_rfc3339("1969-12-31T23:59:59Z")
        .unwrap()
        .naive_utc();
    env.store
        .write(|tx| -> Result<(), tamga::store::StoreError> {
            let seq = tx.next_revocation_seq()?;
            assert!(tx.set_invalidity_date(&auth, Some(pre_epoch), seq)?);
            Ok(())
        })
        .unwrap();
    // The next delta still comes, listing the entry without the date.
    let ready = wait_for_publication(&env.server, "degraded");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["crl"], "ok");
    let bytes = env
        .server
        .get("/crl/nca_rsa_dev-delta.crl")
        .bytes()
        .unwrap();
    std::fs::write(env.dir().join("delta.crl"), &bytes).unwrap();
    let shown = crl_text(env.dir(), "delta.crl");
    assert!(shown.contains(&auth), "{shown}");
    assert!(!shown.contains("Invalidity Date"), "{shown}");
    let metrics = env.server.get("/metrics").text().unwrap();
    assert!(
        metrics.contains("tamga_crl_entries_without_invalidity_date 1"),
        "{metrics}"
    );

    // The operator finds it and repairs it.
    let out = run(tamga(env.dir()).args(["crl", "check", "--json"]));
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["defects"][0]["serial"], auth.as_str(), "{report}");
    assert_eq!(
        report["defects"][0]["problem"],
        "invalidity_date_unencodable"
    );
    let out = run(tamga(env.dir()).args(["crl", "check", "--repair", "--operator", "ops1"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("repaired 1"), "{}", text(&out));
    let out = run(tamga(env.dir()).args(["crl", "check"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let tail = run(tamga(env.dir()).args(["audit", "tail", "-n", "5", "--json"]));
    let tail = text(&tail);
    assert!(
        tail.contains("certificate.revocation_corrected") && tail.contains("operator:ops1"),
        "{tail}"
    );
    assert!(run(tamga(env.dir()).args(["audit", "verify"]))
        .status
        .success());
    let ready = wait_for_publication(&env.server, "ok");
    assert_eq!(ready["status"], "ready");

    // An operator can also set a corrected date; the same rules apply.
    let out = run(tamga(env.dir()).args([
        "certs",
        "correct-revocation",
        &auth,
        "--invalidity-date",
        "1900-01-01T00:00:00Z",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("invalidity_date"), "{}", text(&out));
    let (_, other) = env.enroll_holder(None);
    let other = other["certificates"][0]["serial"].as_str().unwrap();
    let out = run(tamga(env.dir()).args([
        "certs",
        "revoke",
        other,
        "--reason",
        "keyCompromise",
        "--invalidity-date",
        "1900-01-01T00:00:00Z",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // A revocation date no CRL can encode (a row altered by hand): publication fails, loudly,
    // and a restarted server starts anyway and says so.
    let (server, store, dir, _db) = env.into_parts();
    let (clean, log) = server.terminate();
    assert!(clean, "{log}");
    let mut conn =
        diesel::SqliteConnection::establish(dir.path().join("data/tamga.db").to_str().unwrap())
            .unwrap();
    let seq = store
        .write(|tx| -> Result<i64, tamga::store::StoreError> { tx.next_revocation_seq() })
        .unwrap();
    diesel::sql_query(format!(
        "UPDATE certificates SET revoked_at = '1960-01-01 00:00:00', revocation_seq = {seq} \
         WHERE serial = '{sign}'"
    ))
    .execute(&mut conn)
    .unwrap();
    let server = Server::start(dir.path(), &CRL_ENV);
    let ready = readiness(&server);
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["checks"]["crl_publication"], "failing", "{ready}");
    // The CRLs published before are still served.
    assert_eq!(server.get("/crl/nca_rsa_dev.crl").status(), 200);
    let out = run(tamga(dir.path()).args(["crl", "check"]));
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(
        text(&out).contains("revocation_date_unencodable"),
        "{}",
        text(&out)
    );
}
