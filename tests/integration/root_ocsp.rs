//! OCSP for the issuing CA certificate itself, answered with responses the root signed ahead
//! of time: the JDK's PKIX validator checking the whole path by OCSP only, `openssl ocsp` for
//! the issuing CA certificate, the offline ceremony (`ca root-ocsp`, `ocsp import`) on a server
//! without the root key, import refusals, `/readyz`, and the issuing CA's revocation.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::enroll::{lint_with, Env};
use crate::ocsp::enroll;
use crate::support::{
    answers_version, client, free_port, run, tamga, text, tool_present, Server, DEV_ISSUING,
    DEV_ROOT,
};

/// `openssl ocsp` asking `base` about the issuing CA certificate (issuer: the root), the
/// answer verified against the root certificate alone; everything it printed.
fn ask_about_issuing(dir: &Path, base: &str, extra: &[&str]) -> String {
    let url = format!("{base}/ocsp");
    // Options first: a CertID digest must come before -cert.
    let mut args = vec!["ocsp"];
    args.extend_from_slice(extra);
    args.extend([
        "-issuer",
        DEV_ROOT,
        "-cert",
        DEV_ISSUING,
        "-CAfile",
        DEV_ROOT,
        "-url",
        &url,
        "-no_nonce",
    ]);
    let out = crate::support::openssl_command()
        .current_dir(dir)
        .args(&args)
        .output()
        .unwrap();
    text(&out)
}

fn readiness(base: &str) -> serde_json::Value {
    let resp = client().get(format!("{base}/readyz")).send().unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().unwrap()
}

/// Wait (up to 20 s) until `check` holds for what `probe` returns; the last value otherwise.
fn wait_for<T: std::fmt::Debug>(probe: impl Fn() -> T, check: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let value = probe();
        if check(&value) || Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `java tests/tools/PkixValidate.java` with OCSP only over the whole path; (exit code, line).
fn pkix_ocsp(dir: &Path, leaf: &str) -> (i32, String) {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/PkixValidate.java");
    let out = Command::new("java")
        .current_dir(dir)
        .arg(&tool)
        .args(["--anchor", DEV_ROOT, "--cert", leaf, "--cert", DEV_ISSUING])
        .args(["--revocation", "ocsp"])
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), text(&out))
}

#[test]
fn the_jdk_checks_the_whole_path_by_ocsp_only() {
    let env = Env::sqlite();
    let dir = env.dir().to_path_buf();
    let base = env.server.base.clone();
    // The development server holds the root key and keeps the root's responses fresh itself.
    let ready = wait_for(|| readiness(&base), |r| r["checks"]["root_ocsp"] == "ok");
    assert_eq!(ready["checks"]["root_ocsp"], "ok", "{ready}");
    let issuing_text = crate::support::x509_text(&dir, DEV_ISSUING);
    assert!(
        issuing_text.contains(&format!("OCSP - URI:{base}/ocsp")),
        "{issuing_text}"
    );

    // openssl: the issuing CA certificate is good, signed by the root.
    let shown = ask_about_issuing(&dir, &base, &["-respout", "root-resp.der"]);
    assert!(shown.contains("Response verify OK"), "{shown}");
    assert!(shown.contains(&format!("{DEV_ISSUING}: good")), "{shown}");
    lint_with(
        &dir,
        "lint_ocsp_response",
        &["lint", "-s", "WARNING", "root-resp.der"],
    );

    let (iin, auth, sign_serial) = enroll(&env);
    let sign = dir.join(format!("sign-{iin}.pem")).display().to_string();
    let java = answers_version("java");
    if tool_present(
        java,
        "TAMGA_TEST_REQUIRE_JDK",
        "the_jdk_checks_the_whole_path_by_ocsp_only (JDK part)",
        "java is not installed",
    ) {
        for leaf in [&auth, &sign] {
            let (code, line) = pkix_ocsp(&dir, leaf);
            assert_eq!(code, 0, "{leaf}: {line}");
            assert!(line.starts_with("VALID"), "{line}");
        }
        let out =
            run(tamga(&dir).args(["certs", "revoke", &sign_serial, "--reason", "keyCompromise"]));
        assert!(out.status.success(), "{}", text(&out));
        let (code, line) = wait_for(|| pkix_ocsp(&dir, &sign), |(code, _)| *code == 2);
        assert_eq!(code, 2, "{line}");
        assert!(line.contains("REVOKED index=0"), "{line}");
        let (code, line) = pkix_ocsp(&dir, &auth);
        assert_eq!(code, 0, "{line}");
    }

    // The issuing CA revoked: the development server signs `revoked` within seconds, and
    // from then on the whole path fails.
    let out = run(tamga(&dir).args(["ca", "revoke-issuer", "--reason", "keyCompromise"]));
    assert!(out.status.success(), "{}", text(&out));
    let shown = wait_for(
        || ask_about_issuing(&dir, &base, &[]),
        |s| s.contains(": revoked"),
    );
    assert!(
        shown.contains(&format!("{DEV_ISSUING}: revoked")),
        "{shown}"
    );
    assert!(shown.contains("Reason: keyCompromise"), "{shown}");
    assert!(shown.contains("Response verify OK"), "{shown}");
    if java {
        let (code, line) = pkix_ocsp(&dir, &auth);
        assert_eq!(code, 2, "{line}");
        assert!(line.contains("REVOKED index=1"), "{line}");
    }
}

/// A response signed by the root for a serial the root never issued a CA certificate under,
/// made with `openssl ocsp` as the responder (the root as its own signer).
fn foreign_serial_response(root_dir: &Path, out: &Path) {
    let index = root_dir.join("index.txt");
    std::fs::write(
        &index,
        "V\t491231235959Z\t\t1234\tunknown\t/CN=Not a CA of ours\n",
    )
    .unwrap();
    let run_openssl = |args: &[&str]| {
        let out = crate::support::openssl_command()
            .current_dir(root_dir)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    };
    run_openssl(&[
        "ocsp",
        "-issuer",
        DEV_ROOT,
        "-serial",
        "0x1234",
        "-no_nonce",
        "-reqout",
        "req.der",
    ]);
    let out = out.display().to_string();
    run_openssl(&[
        "ocsp",
        "-index",
        "index.txt",
        "-rsigner",
        DEV_ROOT,
        "-rkey",
        "certs-dev/root.key.pem",
        "-CA",
        DEV_ROOT,
        "-reqin",
        "req.der",
        "-ndays",
        "30",
        "-respout",
        &out,
    ]);
}

#[test]
fn the_root_ocsp_ceremony_on_a_server_without_the_root_key() {
    // The root machine: the whole hierarchy, root key included, its URLs the server's.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let root_machine = tempfile::tempdir().unwrap();
    let root_dir = root_machine.path();
    let out = run(tamga(root_dir)
        .args(["ca", "init", "--dev"])
        .env("TAMGA_SERVER__PUBLIC_URL", &base));
    assert!(out.status.success(), "{}", text(&out));

    // The online server: the same certificates and its own keys, no root key.
    let server_machine = tempfile::tempdir().unwrap();
    let dir = server_machine.path();
    crate::support::production_hierarchy(root_dir, dir);
    let production = crate::support::PRODUCTION;
    let on_server = |args: &[&str]| {
        let mut cmd = tamga(dir);
        cmd.args(args).envs(production);
        run(&mut cmd)
    };
    // What the root machine signs with: its own hierarchy, the server's revocation records.
    let root_ca_dir = root_dir.join("certs-dev").display().to_string();
    let on_root_machine = |args: &[&str]| {
        let mut cmd = tamga(dir);
        cmd.args(args).env("TAMGA_CA__DIR", &root_ca_dir);
        run(&mut cmd)
    };
    let log = dir.join("server.log");
    let mut server = Server::spawn_logged(dir, port, &production, &log);
    server.wait_ready();
    let ready = readiness(&base);
    assert_eq!(ready["checks"]["root_ocsp"], "missing", "{ready}");
    // Nothing imported yet: come back later.
    let shown = ask_about_issuing(dir, &base, &[]);
    assert!(shown.contains("trylater"), "{shown}");
    // The server cannot sign a batch itself.
    let out = on_server(&["ca", "root-ocsp", "--out", "batch.pem"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("root key"), "{}", text(&out));

    // The ceremony: a root CRL and a batch of OCSP responses signed where the root key is,
    // imported on the server.
    let out = on_root_machine(&["ca", "root-crl", "--out", "root.crl"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = on_root_machine(&["ca", "root-ocsp", "--out", "batch.pem"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("4 root-signed OCSP responses"),
        "{}",
        text(&out)
    );
    let out = on_server(&["crl", "import", "root.crl"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = on_server(&["ocsp", "import", "batch.pem", "--operator", "root-ceremony"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("imported 4"), "{}", text(&out));
    let shown = ask_about_issuing(dir, &base, &["-respout", "root-resp.der"]);
    assert!(shown.contains("Response verify OK"), "{shown}");
    assert!(shown.contains(&format!("{DEV_ISSUING}: good")), "{shown}");
    lint_with(
        dir,
        "lint_ocsp_response",
        &["lint", "-s", "WARNING", "root-resp.der"],
    );
    // A SHA-256 CertID is answered too.
    let shown = ask_about_issuing(dir, &base, &["-sha256"]);
    assert!(shown.contains(&format!("{DEV_ISSUING}: good")), "{shown}");
    let ready = readiness(&base);
    assert_eq!(ready["checks"]["root_ocsp"], "ok", "{ready}");
    let out = on_server(&["audit", "tail", "-n", "5", "--json"]);
    assert!(
        text(&out).contains("ocsp.root_responses_imported") && text(&out).contains("root-ceremony"),
        "{}",
        text(&out)
    );

    // Refusals, each with exit 5 and nothing imported.
    let out = on_server(&["ocsp", "import", "batch.pem"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("not after the held one"),
        "{}",
        text(&out)
    );
    let other = tempfile::tempdir().unwrap();
    let out = run(tamga(other.path()).args(["ca", "init", "--dev"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(tamga(other.path()).args(["ca", "root-ocsp", "--out", "foreign.pem"]));
    assert!(out.status.success(), "{}", text(&out));
    std::fs::copy(other.path().join("foreign.pem"), dir.join("foreign.pem")).unwrap();
    let out = on_server(&["ocsp", "import", "foreign.pem"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("not signed by the root"),
        "{}",
        text(&out)
    );
    foreign_serial_response(root_dir, &dir.join("stranger.der"));
    let out = on_server(&["ocsp", "import", "stranger.der"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("serial 1234, not a CA certificate the root issued"),
        "{}",
        text(&out)
    );
    std::fs::write(dir.join("junk.pem"), "not a batch").unwrap();
    let out = on_server(&["ocsp", "import", "junk.pem"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let out = on_root_machine(&[
        "ca",
        "root-ocsp",
        "--out",
        "long.pem",
        "--validity-days",
        "400",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = run(tamga(dir)
        .args(["ca", "root-ocsp", "--out", "short.pem"])
        .env("TAMGA_CA__DIR", &root_ca_dir)
        .env("TAMGA_CRL__ROOT_VALIDITY", "1s"));
    assert!(out.status.success(), "{}", text(&out));
    std::thread::sleep(Duration::from_millis(2100));
    let out = on_server(&["ocsp", "import", "short.pem"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("expired"), "{}", text(&out));

    // A batch that runs out within 30 days: /readyz says so, still with 200.
    let out = on_root_machine(&[
        "ca",
        "root-ocsp",
        "--out",
        "soon.pem",
        "--validity-days",
        "20",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = on_server(&["ocsp", "import", "soon.pem"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("expire at"), "{}", text(&out));
    let ready = readiness(&base);
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["checks"]["root_ocsp"], "expiring", "{ready}");

    // The issuing CA revoked: the held `good` is not served any more, at once.
    let out = on_server(&["ca", "revoke-issuer", "--reason", "keyCompromise"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = ask_about_issuing(dir, &base, &[]);
    assert!(shown.contains("trylater"), "{shown}");
    assert!(!shown.contains(": good"), "{shown}");
    // The next ceremony signs `revoked`, with the reason and time of the revocation.
    std::thread::sleep(Duration::from_millis(1100));
    let out = on_root_machine(&["ca", "root-ocsp", "--out", "revoked.pem"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("revoked"), "{}", text(&out));
    let out = on_server(&["ocsp", "import", "revoked.pem"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = ask_about_issuing(dir, &base, &[]);
    assert!(
        shown.contains(&format!("{DEV_ISSUING}: revoked")),
        "{shown}"
    );
    assert!(shown.contains("Reason: keyCompromise"), "{shown}");
    assert!(shown.contains("Response verify OK"), "{shown}");
    server.kill();
}
