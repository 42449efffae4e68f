//! CA keys in a SoftHSM2 token through PKCS#11: enrollment with RSA and ECDSA token keys,
//! the key objects' attributes read by OpenSC's `pkcs11-tool`, and a token that disappears
//! and comes back while the server runs. (Revocation/CRLs and OCSP with token keys run in
//! `revoke.rs` and `ocsp.rs`, through the same test bodies as with key files.)

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::enroll::{body, both_flows, csr, fresh_iin, Env};
use crate::support::{
    client, run, tamga, text, tool_present, verify_chain, x509_text, DEV_ISSUING, DEV_OCSP,
    SOFTHSM_MODULE, SOFTHSM_PIN,
};

#[test]
fn enrollment_with_keys_in_softhsm() {
    if let Some(env) = Env::sqlite_softhsm("enrollment_with_keys_in_softhsm", "", &[]) {
        let shown = run(tamga(env.dir()).args(["ca", "show"]));
        let shown = text(&shown);
        assert!(
            shown.contains(r#"key                 pkcs11 token "tamga-test" key "issuing""#),
            "{shown}"
        );
        assert!(
            shown.contains(r#"key                 pkcs11 token "tamga-test" key "ocsp""#),
            "{shown}"
        );
        assert!(!env.dir().join("certs-dev/nca_rsa_dev.key.pem").exists());
        assert!(!env
            .dir()
            .join("certs-dev/ocsp_nca_rsa_dev.key.pem")
            .exists());
        both_flows(&env);
    }
}

/// ECDSA P-384 issuing key (DER signatures made from the token's r‖s) and an RSA OCSP key.
#[test]
fn enrollment_with_ecdsa_issuing_key_in_softhsm() {
    let test = "enrollment_with_ecdsa_issuing_key_in_softhsm";
    let ca = "issuing_key_type = \"ec-p384\"\nocsp_key_type = \"rsa2048\"\n";
    let Some(env) = Env::sqlite_softhsm(test, ca, &[]) else {
        return;
    };
    let dir = env.dir();
    let issuing = x509_text(dir, DEV_ISSUING);
    assert!(issuing.contains("NIST CURVE: P-384"), "{issuing}");
    let ocsp = x509_text(dir, DEV_OCSP);
    assert!(ocsp.contains("ecdsa-with-SHA384"), "{ocsp}");
    assert!(ocsp.contains("Public-Key: (2048 bit)"), "{ocsp}");
    let verified = verify_chain(dir, DEV_ISSUING, &[DEV_OCSP]);
    assert!(verified.contains(": OK"), "{verified}");
    let iin = fresh_iin();
    let token = env.cli_token(&iin, &[]);
    let (auth, _) = csr(dir, "rsa:2048", &[]);
    let (sign, _) = csr(dir, "ec", &[]);
    let (status, created) = env.post(Some(&token), &body(&auth, &sign, None));
    assert_eq!(status, 201, "{created}");
    std::fs::write(
        dir.join("chain.pem"),
        created["chain_pem"].as_str().unwrap(),
    )
    .unwrap();
    for cert in created["certificates"].as_array().unwrap() {
        std::fs::write(dir.join("leaf.pem"), cert["pem"].as_str().unwrap()).unwrap();
        let shown = x509_text(dir, "leaf.pem");
        assert!(shown.contains("ecdsa-with-SHA384"), "{shown}");
        let verified = verify_chain(dir, "chain.pem", &["leaf.pem"]);
        assert!(verified.contains("leaf.pem: OK"), "{verified}");
        // The responder's RSA key in the token signs OCSP answers openssl accepts.
        let out = crate::support::openssl_command()
            .current_dir(dir)
            .args([
                "ocsp",
                "-issuer",
                "certs-dev/nca_rsa_dev.pem",
                "-cert",
                "leaf.pem",
            ])
            .args(["-url", &format!("{}/ocsp", env.server.base)])
            .args([
                "-CAfile",
                "certs-dev/root.pem",
                "-verify_other",
                "chain.pem",
            ])
            .output()
            .unwrap();
        let out = text(&out);
        assert!(out.contains("Response verify OK"), "{out}");
        assert!(out.contains("leaf.pem: good"), "{out}");
    }
}

/// What OpenSC's `pkcs11-tool` reports about the private key objects `ca init --pkcs11`
/// generated: sensitive, never extractable, signing only.
#[test]
fn token_keys_are_sensitive_and_not_extractable() {
    let test = "token_keys_are_sensitive_and_not_extractable";
    let pkcs11_tool = Command::new("pkcs11-tool").arg("--help").output().is_ok();
    let missing = "pkcs11-tool is not installed (apt-get install opensc)";
    if !tool_present(pkcs11_tool, "TAMGA_TEST_REQUIRE_SOFTHSM", test, missing) {
        return;
    }
    if !crate::support::softhsm_available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    crate::support::softhsm_hierarchy(dir.path(), "");
    let out = Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", dir.path().join("softhsm2.conf"))
        .args(["--module", SOFTHSM_MODULE, "--token-label", "tamga-test"])
        .args([
            "--login",
            "--pin",
            SOFTHSM_PIN,
            "--list-objects",
            "--type",
            "privkey",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let objects: Vec<&str> = listing
        .split("Private Key Object")
        .filter(|o| !o.trim().is_empty())
        .collect();
    assert_eq!(objects.len(), 2, "{listing}");
    for (label, kind) in [("issuing", "RSA"), ("ocsp", "EC")] {
        let object = objects
            .iter()
            .find(|o| o.contains(&format!("label:      {label}\n")))
            .unwrap_or_else(|| panic!("no private key labelled {label}: {listing}"));
        assert!(
            object.trim_start_matches(';').trim().starts_with(kind),
            "{listing}"
        );
        let access = object
            .lines()
            .find_map(|l| l.trim().strip_prefix("Access:"))
            .unwrap_or_default();
        let flags: Vec<&str> = access.split(',').map(str::trim).collect();
        for wanted in [
            "sensitive",
            "always sensitive",
            "never extractable",
            "local",
        ] {
            assert!(flags.contains(&wanted), "{label}: {access}");
        }
        assert!(!flags.contains(&"extractable"), "{label}: {access}");
        let usage = object
            .lines()
            .find_map(|l| l.trim().strip_prefix("Usage:"))
            .unwrap_or_default();
        assert_eq!(usage.trim(), "sign", "{label}: {listing}");
    }
    // A second init must not touch the keys already in the token.
    let again = run(tamga(dir.path()).args(["ca", "init", "--pkcs11", "--force"]));
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(
        text(&again).contains("already holds 1 object(s) with this label")
            || text(&again).contains("already holds 2 object(s) with this label"),
        "{}",
        text(&again)
    );
}

fn ready(base: &str) -> (u16, serde_json::Value) {
    let r = client().get(format!("{base}/readyz")).send().unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn move_tokens(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::rename(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// The token disappears while the server runs: /readyz says which key failed, applications
/// are refused with 503 `signing_key_unavailable` and nothing is written, pre-signed OCSP
/// answers keep coming; when the token is back everything works again without a restart.
#[test]
fn a_token_that_disappears_is_reported_and_signing_recovers() {
    let test = "a_token_that_disappears_is_reported_and_signing_recovers";
    let Some(env) = Env::sqlite_softhsm(test, "", &[]) else {
        return;
    };
    let dir = env.dir().to_path_buf();
    let base = env.server.base.clone();
    // One holder enrolled while the token is there; its OCSP answer is pre-signed.
    let iin = fresh_iin();
    let token = env.cli_token(&iin, &[]);
    let (auth, _) = csr(&dir, "rsa:2048", &[]);
    let (sign, _) = csr(&dir, "ec", &[]);
    let (status, created) = env.post(Some(&token), &body(&auth, &sign, None));
    assert_eq!(status, 201, "{created}");
    std::fs::write(
        dir.join("auth.pem"),
        created["certificates"][0]["pem"].as_str().unwrap(),
    )
    .unwrap();
    let ocsp = |extra: &[&str]| {
        let out = crate::support::openssl_command()
            .current_dir(&dir)
            .args([
                "ocsp",
                "-issuer",
                "certs-dev/nca_rsa_dev.pem",
                "-cert",
                "auth.pem",
            ])
            .args([
                "-url",
                &format!("{base}/ocsp"),
                "-CAfile",
                "certs-dev/root.pem",
            ])
            .args(["-verify_other", "certs-dev/nca_rsa_dev.pem"])
            .args(extra)
            .output()
            .unwrap();
        text(&out)
    };
    let first = ocsp(&["-no_nonce"]);
    assert!(first.contains("auth.pem: good"), "{first}");
    // (Minted before the outage; `dev consent-token` needs no token, see the test below.)
    let refused_token = env.cli_token(&fresh_iin(), &[]);

    // The token goes away.
    let tokens = dir.join("softhsm-tokens");
    let away = dir.join("tokens-away");
    std::fs::create_dir(&away).unwrap();
    move_tokens(&tokens, &away);
    wait_for("readyz reports the keys", Duration::from_secs(10), || {
        ready(&base).0 == 503
    });
    let (_, body_json) = ready(&base);
    assert_eq!(body_json["checks"]["issuing_key"], "failed", "{body_json}");
    assert_eq!(body_json["checks"]["ocsp_key"], "failed", "{body_json}");
    assert_eq!(body_json["checks"]["database"], "ok", "{body_json}");

    let before = env.counts();
    let (auth2, _) = csr(&dir, "rsa:2048", &[]);
    let (sign2, _) = csr(&dir, "ec", &[]);
    let resp = client()
        .post(format!("{base}/api/v1/applications"))
        .bearer_auth(&refused_token)
        .json(&body(&auth2, &sign2, None))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let problem: serde_json::Value = resp.json().unwrap();
    assert_eq!(problem["code"], "signing_key_unavailable", "{problem}");
    assert_eq!(
        env.counts(),
        before,
        "nothing written while the key is away"
    );
    // The pre-signed answer is still served (verified with the responder certificate).
    let cached = ocsp(&["-no_nonce"]);
    assert!(cached.contains("Response verify OK"), "{cached}");
    assert!(cached.contains("auth.pem: good"), "{cached}");
    // A nonce needs a new signature: tryLater, not a 500.
    let fresh = ocsp(&[]);
    assert!(fresh.contains("Responder Error: trylater"), "{fresh}");

    // The token comes back: the server finds it again by itself.
    move_tokens(&away, &tokens);
    wait_for("readyz recovers", Duration::from_secs(20), || {
        ready(&base).0 == 200
    });
    let (status, created) = env.post(Some(&refused_token), &body(&auth2, &sign2, None));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "issued", "{created}");
    let with_nonce = ocsp(&[]);
    assert!(with_nonce.contains("Response verify OK"), "{with_nonce}");
    assert!(with_nonce.contains("auth.pem: good"), "{with_nonce}");
}

/// While the token is away, `tamga-enroll` tells the citizen why: the server's
/// `signing_key_unavailable` (503, with its Retry-After), not "unexpected answer"; no key file
/// is written and the application can be made again once the token is back.
#[test]
fn tamga_enroll_shows_signing_key_unavailable_while_the_token_is_away() {
    let test = "tamga_enroll_shows_signing_key_unavailable_while_the_token_is_away";
    let Some(env) = Env::sqlite_softhsm(test, "", &[]) else {
        return;
    };
    let dir = env.dir().to_path_buf();
    std::fs::write(dir.join("password.txt"), "Secret2026\n").unwrap();
    std::fs::write(dir.join("token.txt"), env.cli_token(&fresh_iin(), &[])).unwrap();
    let tokens = dir.join("softhsm-tokens");
    let away = dir.join("tokens-away");
    std::fs::create_dir(&away).unwrap();
    move_tokens(&tokens, &away);
    wait_for("readyz reports the keys", Duration::from_secs(10), || {
        ready(&env.server.base).0 == 503
    });
    let before = env.counts();
    let args = "--token-file token.txt --out keys --password-file password.txt";
    let args: Vec<&str> = args.split(' ').collect();
    let out = crate::enroll_client::client(&env, &args);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(3), "{shown}");
    assert!(
        shown.contains("the server refused: signing_key_unavailable (503)"),
        "{shown}"
    );
    assert!(shown.contains("retry after"), "{shown}");
    assert!(!shown.contains("unexpected answer"), "{shown}");
    assert_eq!(
        env.counts(),
        before,
        "nothing written while the key is away"
    );
    let written = std::fs::read_dir(dir.join("keys"))
        .map(|d| d.flatten().count())
        .unwrap_or(0);
    assert_eq!(written, 0, "no container without certificates");
    move_tokens(&away, &tokens);
}

/// With the token away, the commands that sign nothing keep working (`audit verify`,
/// `dev consent-token`, `outbox list`); `config check` fails naming the unreachable token, and
/// `serve` refuses to start, naming it too. Once the token is back, `config check` passes.
#[test]
fn only_the_commands_that_sign_need_the_token() {
    let test = "only_the_commands_that_sign_need_the_token";
    if !crate::support::softhsm_available(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    crate::support::softhsm_hierarchy(dir, "");
    let checked = run(tamga(dir).args(["config", "check"]));
    assert!(checked.status.success(), "{}", text(&checked));

    let tokens = dir.join("softhsm-tokens");
    let away = dir.join("tokens-away");
    std::fs::create_dir(&away).unwrap();
    move_tokens(&tokens, &away);

    let verified = run(tamga(dir).args(["audit", "verify"]));
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        text(&verified).contains("audit log intact"),
        "{}",
        text(&verified)
    );
    let minted = run(tamga(dir)
        .args(["dev", "consent-token", "--iin", &fresh_iin()])
        .args(["--surname", "ӘБІЛҚАСЫМОВА", "--name", "АЙГҮЛ"]));
    assert!(minted.status.success(), "{}", text(&minted));
    let token = String::from_utf8(minted.stdout.clone()).unwrap();
    assert_eq!(token.lines().count(), 1, "{token}");
    assert_eq!(token.trim().split('.').count(), 3, "a compact JWS: {token}");
    let listed = run(tamga(dir).args(["outbox", "list"]));
    assert!(listed.status.success(), "{}", text(&listed));

    let quick = Duration::from_secs(30);
    let checked = crate::operator::run_within(tamga(dir).args(["config", "check"]), quick);
    assert_eq!(checked.status.code(), Some(3), "{}", text(&checked));
    assert!(
        text(&checked).contains(r#"token "tamga-test""#)
            && text(&checked).contains("no token with this label is present")
            && text(&checked)
                .contains("tamga: unreachable: the CA's signing key cannot be reached")
            && !text(&checked).contains("invalid configuration"),
        "{}",
        text(&checked)
    );
    let port = crate::support::free_port();
    let served = crate::operator::run_within(
        tamga(dir)
            .arg("serve")
            .env("TAMGA_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env(
                "TAMGA_SERVER__PUBLIC_URL",
                format!("http://127.0.0.1:{port}"),
            ),
        quick,
    );
    assert_eq!(served.status.code(), Some(3), "{}", text(&served));
    assert!(
        text(&served).contains(r#"token "tamga-test""#),
        "{}",
        text(&served)
    );

    move_tokens(&away, &tokens);
    let checked = run(tamga(dir).args(["config", "check"]));
    assert!(checked.status.success(), "{}", text(&checked));
}
