//! What an operator reads: the access log and the events at `info` (never a token or an
//! IIN), the shell completions, the warning about a `public_url` that forgot `bind`'s port,
//! and the operator recorded when no login name is known.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use tamga::config::{DatabaseConfig, DatabaseUrl};
use tamga::store::Store;

use crate::enroll::{body, claims, csr, fresh_iin, Env};
use crate::support::{
    client, free_port, openssl, post_json, run, tamga, text, tool_present, Server,
};

/// A server on SQLite logging at `info` into `dir/serve.log`.
fn logged_env(dir: tempfile::TempDir, extra: &[(&str, &str)]) -> Env {
    let log = dir.path().join("serve.log");
    let mut env = vec![("RUST_LOG", "info")];
    env.extend_from_slice(extra);
    let mut server = Server::spawn_logged(dir.path(), free_port(), &env, &log);
    server.wait_ready();
    let url = DatabaseUrl::Sqlite(dir.path().join("data/tamga.db"));
    let store = Store::open(&url, &DatabaseConfig::default()).unwrap();
    Env {
        server,
        store,
        _dir_guard: dir,
        db: None,
    }
}

fn server_log(env: &Env) -> String {
    std::fs::read_to_string(env.dir().join("serve.log")).unwrap()
}

/// The access lines (target `tamga::access`) of a log.
fn access_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("tamga::access"))
        .collect()
}

/// Wait until the log holds a line with every one of `parts` (the access line is written
/// once the response is sent, a moment after the client has it).
fn wait_for_line(env: &Env, parts: &[&str]) -> String {
    for _ in 0..50 {
        let log = server_log(env);
        if log.lines().any(|l| parts.iter().all(|p| l.contains(p))) {
            return log;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no line with {parts:?} in the log:\n{}", server_log(env));
}

#[test]
fn access_log_and_events_name_requests_never_tokens() {
    let env = logged_env(tempfile::tempdir().unwrap(), &[]);
    let dir = env.dir().to_path_buf();
    let base = env.server.base.clone();

    // An application with a Bearer consent token, issued at once.
    let iin = fresh_iin();
    let consent = env.minted(&claims(&iin));
    let (a, _) = csr(&dir, "rsa:2048", &[]);
    let (s, _) = csr(&dir, "ec", &[]);
    let (status, created) = env.post(Some(&consent), &body(&a, &s, None));
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let access_token = created["access_token"].as_str().unwrap().to_owned();
    let serials: Vec<String> = created["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["serial"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(serials.len(), 2, "{created}");

    // Its status, with the access token, asked with a query string that carries it too.
    let resp = client()
        .get(format!(
            "{base}/api/v1/applications/{id}?token={access_token}"
        ))
        .bearer_auth(&access_token)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);

    // The holder revokes the SIGN certificate.
    let revocation_token = env.revocation_token(&iin);
    let resp = post_json(
        &format!("{base}/api/v1/revocations"),
        &revocation_token,
        &json!({"serial": serials[1], "reason": "superseded"}),
    );
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());

    // A relying party asks OCSP about the AUTH certificate, and fetches the issuing CA.
    openssl(
        &dir,
        &[
            "ocsp",
            "-issuer",
            "certs-dev/nca_rsa_dev.pem",
            "-serial",
            &format!("0x{}", serials[0]),
            "-no_nonce",
            "-reqout",
            "ocsp-req.der",
        ],
    );
    let resp = client()
        .post(format!("{base}/ocsp"))
        .header("content-type", "application/ocsp-request")
        .body(std::fs::read(dir.join("ocsp-req.der")).unwrap())
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(env.server.get("/ca/nca_rsa_dev.crt").status().is_success());
    // A path no route matches, with a query string.
    assert_eq!(env.server.get("/no/such/page?secret=s3cr3t").status(), 404);
    // A mistyped portal path holding an IIN: the client chose the path, the IIN stays out.
    assert_eq!(
        env.server.get("/api/v1/holders/900101300007/x").status(),
        404
    );

    let log = wait_for_line(&env, &["tamga::access", "/no/such/page"]);
    let access = access_lines(&log);
    let has = |parts: &[&str]| access.iter().any(|l| parts.iter().all(|p| l.contains(p)));
    assert!(
        has(&[
            "INFO",
            r#"method="POST""#,
            r#"route="/api/v1/applications""#,
            "status=201",
            "micros=",
            "client=127.0.0.1"
        ]),
        "{log}"
    );
    assert!(
        has(&[
            "INFO",
            r#"method="GET""#,
            r#"route="/api/v1/applications/{id}""#,
            "status=200"
        ]),
        "{log}"
    );
    assert!(
        has(&[
            "INFO",
            r#"method="POST""#,
            r#"route="/api/v1/revocations""#,
            "status=200"
        ]),
        "{log}"
    );
    assert!(
        has(&[
            "INFO",
            r#"route="unmatched""#,
            r#"path="/no/such/page""#,
            "status=404"
        ]),
        "{log}"
    );
    assert!(
        has(&[r#"route="unmatched""#, r#"path="/api/v1/holders/*/x""#]),
        "{log}"
    );
    assert!(!log.contains("900101300007"), "{log}");
    // The readiness checks of the test harness are operations routes: at info.
    assert!(has(&["INFO", r#"route="/readyz""#]), "{log}");
    // OCSP and the CA certificate: debug only, so nothing at info.
    assert!(
        !access
            .iter()
            .any(|l| l.contains("route=\"/ocsp") || l.contains("route=\"/ca/")),
        "{log}"
    );

    // The events: two certificates issued, one revoked, each naming the application.
    for serial in &serials {
        assert!(
            log.lines().any(|l| l.contains("INFO")
                && l.contains("certificate issued")
                && l.contains(&id)
                && l.contains(serial.as_str())),
            "{log}"
        );
    }
    assert!(
        log.lines().any(|l| l.contains("INFO")
            && l.contains("certificate revoked")
            && l.contains(serials[1].as_str())
            && l.contains(r#"kind="sign""#)
            && l.contains(r#"reason="superseded""#)
            && l.contains(r#"by="holder""#)),
        "{log}"
    );

    // Nothing secret or personal: no token, no query string, no IIN.
    for (what, secret) in [
        ("consent token", consent.as_str()),
        ("access token", access_token.as_str()),
        ("revocation token", revocation_token.as_str()),
        ("query string", "s3cr3t"),
        ("IIN", iin.as_str()),
    ] {
        assert!(!log.contains(secret), "the {what} is in the log:\n{log}");
    }
    assert!(!log.contains("token="), "{log}");
    assert!(!log.contains("Bearer"), "{log}");
}

/// A pending application (Digital ID did not confirm liveness); returns its id.
fn pending(env: &Env) -> String {
    let mut c = claims(&fresh_iin());
    c.verification.liveness = false;
    let (a, _) = csr(env.dir(), "rsa:2048", &[]);
    let (s, _) = csr(env.dir(), "ec", &[]);
    let (status, created) = env.post(Some(&env.minted(&c)), &body(&a, &s, None));
    assert_eq!(
        (status, created["status"].as_str()),
        (201, Some("pending_review")),
        "{created}"
    );
    created["id"].as_str().unwrap().to_owned()
}

/// `tamga ARGS` at `info`; returns (exit code, stdout, stderr).
fn tamga_info(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = run(tamga(dir).env("RUST_LOG", "info").args(args));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn moderation_logs_one_event_per_decision() {
    let env = logged_env(tempfile::tempdir().unwrap(), &[]);
    let approved = pending(&env);
    let log = wait_for_line(&env, &["application accepted", &approved]);
    assert!(
        log.lines().any(|l| l.contains("INFO")
            && l.contains("application accepted")
            && l.contains(&approved)
            && l.contains(r#"status="pending_review""#)),
        "{log}"
    );
    let (code, out, err) = tamga_info(
        env.dir(),
        &["applications", "approve", &approved, "--operator", "ops1"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.lines().any(|l| l.contains("INFO")
            && l.contains("application approved")
            && l.contains(&approved)
            && l.contains(r#"operator="ops1""#)),
        "{err}"
    );
    let issued: Vec<&str> = err
        .lines()
        .filter(|l| {
            l.contains("INFO")
                && l.contains("certificate issued")
                && l.contains(&approved)
                && l.contains(r#"by="operator:ops1""#)
        })
        .collect();
    assert_eq!(issued.len(), 2, "{err}");

    let rejected = pending(&env);
    let (code, out, err) = tamga_info(
        env.dir(),
        &[
            "applications",
            "reject",
            &rejected,
            "--reason",
            "the photo does not match",
            "--operator",
            "ops2",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("application rejected"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    let line = lines[0];
    assert!(line.contains("INFO") && line.contains(&rejected), "{line}");
    assert!(line.contains(r#"operator="ops2""#), "{line}");
    // The reason is free text for the holder: in the audit log, not in the log.
    assert!(!line.contains("photo"), "{line}");
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    // No configuration is read: a missing one named explicitly does not matter.
    let script = |args: &[&str]| {
        let out = run(tamga(dir.path())
            .env("TAMGA_CONFIG", dir.path().join("missing.toml"))
            .arg("completions")
            .args(args));
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let bash = script(&["bash"]);
    for word in [
        "serve",
        "ca",
        "certs",
        "revoke",
        "--operator",
        "completions",
    ] {
        assert!(bash.contains(word), "bash script without {word}");
    }
    let zsh = script(&["zsh"]);
    assert!(zsh.starts_with("#compdef tamga"), "{zsh}");
    assert!(zsh.contains("serve"));
    let fish = script(&["fish"]);
    assert!(fish.contains("complete -c tamga"), "{fish}");
    assert!(fish.contains("serve"));
    let enroll = script(&["bash", "--enroll"]);
    assert!(enroll.contains("tamga-enroll") && enroll.contains("resume"));
    assert!(!enroll.contains("revoke-issuer"));

    // An unknown shell is a usage error.
    let out = run(tamga(dir.path()).args(["completions", "tcsh"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let bash_present = Command::new("bash")
        .args(["-c", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if tool_present(
        bash_present,
        "TAMGA_TEST_REQUIRE_BASH",
        "completions_for_bash_zsh_and_fish (bash -n)",
        "bash is not installed",
    ) {
        for (name, text) in [("tamga.bash", &bash), ("tamga-enroll.bash", &enroll)] {
            let file = dir.path().join(name);
            std::fs::write(&file, text).unwrap();
            let out = run(Command::new("bash").arg("-n").arg(&file));
            assert!(
                out.status.success(),
                "bash -n {name}: {}",
                crate::support::text(&out)
            );
        }
    }
}

#[test]
fn a_public_url_on_this_machine_with_another_port_is_warned() {
    let dir = tempfile::tempdir().unwrap();
    let check = |public_url: &str| {
        let out = run(tamga(dir.path())
            .env("TAMGA_SERVER__BIND", "127.0.0.1:9443")
            .env("TAMGA_SERVER__PUBLIC_URL", public_url)
            .args(["config", "check"]));
        assert!(out.status.success(), "{public_url}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    for forgotten in [
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "http://[::1]",
    ] {
        let out = check(forgotten);
        let warning = out
            .lines()
            .find(|l| l.starts_with("warning: server.public_url"))
            .unwrap_or_else(|| panic!("no warning for {forgotten}:\n{out}"));
        assert!(warning.contains("9443"), "{warning}");
    }
    for fine in [
        "http://127.0.0.1:9443",
        "http://localhost:9443",
        "https://pki.example.kz",
        "http://pki.example.kz:8080",
    ] {
        let out = check(fine);
        assert!(!out.contains("warning:"), "{fine}:\n{out}");
    }

    // At start: the server runs, and says so in its log.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("serve.log");
    let forgotten = format!("http://localhost:{}", free_port());
    let mut server = Server::spawn_logged(
        dir.path(),
        port,
        &[("TAMGA_SERVER__PUBLIC_URL", forgotten.as_str())],
        &log,
    );
    server.wait_ready();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().any(|l| l.contains("WARN")
            && l.contains(&format!("server.public_url {forgotten}"))
            && l.contains(&format!("port {port}"))),
        "{text}"
    );
    drop(server);

    // A proxy in front (another host): no warning at start either.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let mut server = Server::spawn_logged(
        dir.path(),
        free_port(),
        &[("TAMGA_SERVER__PUBLIC_URL", "https://pki.example.kz")],
        &log,
    );
    server.wait_ready();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("server.public_url"), "{text}");
}

#[test]
fn without_a_login_name_the_operator_is_unknown_and_said_so() {
    let env = Env::sqlite();
    let (_, created) = env.enroll_holder(None);
    let serials: Vec<&str> = created["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["serial"].as_str().unwrap())
        .collect();
    let revoke = |serial: &str, operator: Option<&str>| {
        let mut cmd = tamga(env.dir());
        cmd.env_remove("USER").env_remove("LOGNAME").args([
            "certs",
            "revoke",
            serial,
            "--reason",
            "superseded",
        ]);
        if let Some(name) = operator {
            cmd.args(["--operator", name]);
        }
        run(&mut cmd)
    };
    let out = revoke(serials[0], None);
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: no operator name") && err.contains("operator:unknown"),
        "{err}"
    );
    let out = revoke(serials[1], Some("ops1"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "{}",
        text(&out)
    );

    let out = run(tamga(env.dir()).args(["audit", "tail", "-n", "2", "--json"]));
    assert!(out.status.success(), "{}", text(&out));
    let tail: Value = serde_json::from_slice(&out.stdout).unwrap();
    let actors: Vec<(&str, &str)> = tail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["subject"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert!(
        actors.contains(&(serials[0], "operator:unknown")),
        "{actors:?}"
    );
    assert!(
        actors.contains(&(serials[1], "operator:ops1")),
        "{actors:?}"
    );
}
