//! TLS on the listener and client certificates for the portal API, against real clients:
//! `curl` (with and without a client certificate, and with one from a foreign CA), `openssl
//! ocsp` (a request made with `-reqout`, posted over HTTPS, the answer checked with `-respin`),
//! and `tamga-enroll` with `--ca-cert/--client-cert/--client-key`. The test PKI is made with
//! the `openssl` CLI in a temporary directory; `tamga config check` names each faulty file.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tamga::digital_id;

use crate::enroll::{body, claims, csr, fresh_iin};
use crate::support::{answers_version, openssl, run, tamga, text, tool_present, Server};

/// Set in CI: the tests fail instead of skipping when `curl` is missing.
const REQUIRE_CURL: &str = "TAMGA_TEST_REQUIRE_CURL";

/// Whether `curl` can run here; otherwise report the test skipped (or fail in CI).
fn have_curl(test: &str) -> bool {
    tool_present(
        answers_version("curl"),
        REQUIRE_CURL,
        test,
        "curl is not installed",
    )
}

/// A throw-away PKI: a CA for the server's certificate, the portal's client CA, and a
/// foreign CA, each with one end-entity certificate.
pub struct TestPki {
    pub dir: PathBuf,
}

impl TestPki {
    pub fn generate(dir: &Path) -> TestPki {
        std::fs::create_dir_all(dir).unwrap();
        // `openssl req` with a new unencrypted P-256 key in `{name}.key`, writing
        // `{name}.{ext}`.
        let req = |new: &str, name: &str, ext: &str, rest: &[&str]| {
            let (key, out) = (format!("{name}.key"), format!("{name}.{ext}"));
            let mut args = vec!["req", new, "-newkey", "ec"];
            args.extend(["-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]);
            args.extend(["-keyout", &key, "-out", &out]);
            args.extend_from_slice(rest);
            openssl(dir, &args);
        };
        let ca = |name: &str, cn: &str| {
            let subject = format!("/CN={cn}");
            let mut rest = vec!["-days", "30", "-subj", &subject];
            rest.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
            rest.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
            req("-x509", name, "pem", &rest);
        };
        let leaf = |name: &str, ca: &str, cn: &str, ext: &str| {
            std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
            req("-new", name, "csr", &["-subj", &format!("/CN={cn}")]);
            let (csr, ca_cert, ca_key) = (
                format!("{name}.csr"),
                format!("{ca}.pem"),
                format!("{ca}.key"),
            );
            let (extfile, cert) = (format!("{name}.ext"), format!("{name}.pem"));
            let mut args = vec!["x509", "-req", "-in", &csr, "-CA", &ca_cert];
            args.extend(["-CAkey", &ca_key, "-CAcreateserial", "-days", "10"]);
            args.extend(["-extfile", &extfile, "-out", &cert]);
            openssl(dir, &args);
        };
        ca("server-ca", "Test Server CA");
        ca("portal-ca", "Test Portal Client CA");
        ca("other-ca", "Some Other CA");
        leaf(
            "server",
            "server-ca",
            "localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        leaf(
            "portal",
            "portal-ca",
            "Onboarding Portal",
            "extendedKeyUsage=clientAuth\n",
        );
        leaf(
            "stranger",
            "other-ca",
            "Onboarding Portal",
            "extendedKeyUsage=clientAuth\n",
        );
        TestPki {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// `curl` arguments presenting the client certificate `name` (`portal`, `stranger`).
    pub fn client_cert_args(&self, name: &str) -> [String; 4] {
        [
            "--cert".to_owned(),
            self.path(&format!("{name}.pem")),
            "--key".to_owned(),
            self.path(&format!("{name}.key")),
        ]
    }

    /// The `[server.tls]` environment; with the portal's client CA when `mtls`.
    pub fn env(&self, mtls: bool) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("TAMGA_SERVER__TLS__CERT", self.path("server.pem")),
            ("TAMGA_SERVER__TLS__KEY", self.path("server.key")),
        ];
        if mtls {
            env.push(("TAMGA_SERVER__TLS__CLIENT_CA", self.path("portal-ca.pem")));
        }
        env
    }

    /// Start `tamga serve` in `dir` with TLS from this PKI (checked through a client that
    /// trusts the server's CA).
    pub fn server(&self, dir: &Path, mtls: bool, extra: &[(&str, &str)]) -> Server {
        let env = self.env(mtls);
        let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(extra);
        let ca = std::fs::read(self.dir.join("server-ca.pem")).unwrap();
        Server::start_with(dir, &all, "https", move || {
            reqwest::blocking::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
                .build()
                .unwrap()
        })
    }
}

/// A fresh `TestPki` and an empty Tamga working directory beside it, both in the returned
/// temporary directory.
pub fn pki_and_workdir() -> (tempfile::TempDir, TestPki, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(&tmp.path().join("pki"));
    let work = tmp.path().join("tamga");
    std::fs::create_dir_all(&work).unwrap();
    (tmp, pki, work)
}

/// For a test that talks to the server with `curl`: a TLS server from a fresh `TestPki` (with
/// the portal's client CA when `mtls`), or `None` when curl is missing and `test` was reported
/// skipped.
fn curl_and_tls_server(
    test: &str,
    mtls: bool,
) -> Option<(tempfile::TempDir, TestPki, PathBuf, Server)> {
    if !have_curl(test) {
        return None;
    }
    let (tmp, pki, work) = pki_and_workdir();
    let server = pki.server(&work, mtls, &[]);
    Some((tmp, pki, work, server))
}

/// What `curl` got: status, headers (lower-case names), body.
pub struct Answer {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

static CURL_SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// `curl` in `dir` trusting the server CA of `pki`, with `args` (the URL among them).
pub fn curl(pki: &TestPki, dir: &Path, args: &[&str]) -> Answer {
    let n = CURL_SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let (body, headers) = (format!("curl-{n}.body"), format!("curl-{n}.headers"));
    let out = Command::new("curl")
        .current_dir(dir)
        .args(["-sS", "--cacert", &pki.path("server-ca.pem"), "-o", &body])
        .args(["-D", &headers, "-w", "%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {args:?}: {}", text(&out));
    Answer {
        status: String::from_utf8_lossy(&out.stdout).trim().parse().unwrap(),
        headers: std::fs::read_to_string(dir.join(headers)).unwrap(),
        body: std::fs::read(dir.join(body)).unwrap_or_default(),
    }
}

fn minted(dir: &Path, claims: &digital_id::Claims) -> String {
    let key = digital_id::read_signing_key(&dir.join("certs-dev/digital_id_dev.key.pem")).unwrap();
    digital_id::mint_es256(&key, claims).unwrap()
}

fn assert_refused(answer: &Answer, status: u16, code: &str) {
    assert_eq!(
        answer.status,
        status,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(answer.json()["code"], code);
}

/// What `openssl s_client` prints about a handshake with `base`.
fn s_client(pki: &TestPki, dir: &Path, base: &str) -> String {
    let out = run(crate::support::openssl_command()
        .current_dir(dir)
        .args(["s_client", "-connect", base.trim_start_matches("https://")])
        .args(["-CAfile", &pki.path("server-ca.pem")])
        .stdin(std::process::Stdio::null()));
    text(&out)
}

#[test]
fn mtls_admits_only_the_portal_to_the_api_and_everyone_to_public_routes() {
    let test = "mtls_admits_only_the_portal_to_the_api_and_everyone_to_public_routes";
    let Some((_tmp, pki, work, server)) = curl_and_tls_server(test, true) else {
        return;
    };
    let base = server.base.clone();
    let dir = work.as_path();
    let portal = pki.client_cert_args("portal");
    let stranger = pki.client_cert_args("stranger");
    let with = |cert: &[String], rest: &[&str]| -> Answer {
        let mut args: Vec<&str> = cert.iter().map(String::as_str).collect();
        args.extend_from_slice(rest);
        curl(&pki, dir, &args)
    };

    // A real application, with its consent token and two CSRs.
    let iin = fresh_iin();
    let (a, _) = csr(dir, "ec", &[]);
    let (s, _) = csr(dir, "ec", &[]);
    std::fs::write(dir.join("application.json"), body(&a, &s, None).to_string()).unwrap();
    let token = minted(dir, &claims(&iin));
    let bearer = format!("Authorization: Bearer {token}");
    let post = |cert: &[String]| {
        with(
            cert,
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "-H",
                &bearer,
                "--data-binary",
                "@application.json",
                &format!("{base}/api/v1/applications"),
            ],
        )
    };

    // The handshake asks for a certificate from the portal's CA (and goes on without one).
    let shown = s_client(&pki, dir, &base);
    assert!(shown.contains("Verification: OK"), "{shown}");
    assert!(
        shown.contains("Acceptable client certificate CA names\nCN = Test Portal Client CA"),
        "{shown}"
    );

    // No client certificate, or one from another CA: refused before the handler, nothing used.
    assert_refused(&post(&[]), 403, "client_certificate_required");
    let foreign = post(&stranger);
    assert_refused(&foreign, 403, "client_certificate_untrusted");
    assert!(
        foreign.json()["detail"]
            .as_str()
            .unwrap()
            .contains("verify"),
        "{}",
        foreign.json()
    );
    for path in ["/api/v1/openapi.json", "/api/v1/applications/x"] {
        assert_refused(
            &with(&[], &[&format!("{base}{path}")]),
            403,
            "client_certificate_required",
        );
    }
    // A percent-encoded spelling of the path is routed to the same scope, and checked.
    assert_refused(
        &with(&[], &[&format!("{base}/%61pi/v1/openapi.json")]),
        403,
        "client_certificate_required",
    );

    // The portal's certificate: the handler answers, first with its own validation, then 201.
    let unauthenticated = with(
        &portal,
        &["-X", "POST", &format!("{base}/api/v1/applications")],
    );
    assert_refused(&unauthenticated, 401, "consent_token_missing");
    let created = post(&portal);
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let created = created.json();
    assert_eq!(created["status"], "issued");
    let id = created["id"].as_str().unwrap();
    let access = format!(
        "Authorization: Bearer {}",
        created["access_token"].as_str().unwrap()
    );
    let shown = with(
        &portal,
        &["-H", &access, &format!("{base}/api/v1/applications/{id}")],
    );
    assert_eq!(shown.status, 200);
    assert_eq!(shown.json()["certificates"].as_array().unwrap().len(), 2);
    let doc = with(&portal, &[&format!("{base}/api/v1/openapi.json")]);
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap();
    for code in [
        "client_certificate_required",
        "client_certificate_untrusted",
        "rate_limited_iin",
        "rate_limited_client",
    ] {
        assert!(codes.contains(&Value::from(code)), "{code} not documented");
    }
    for (path, method) in [
        ("/api/v1/applications", "post"),
        ("/api/v1/applications/{id}", "get"),
        ("/api/v1/revocations", "post"),
    ] {
        let responses = &doc["paths"][path][method]["responses"];
        assert!(
            responses["403"]["description"]
                .as_str()
                .unwrap()
                .contains("client_certificate_required"),
            "{path}"
        );
        assert!(
            responses["429"]["headers"]["Retry-After"].is_object(),
            "{path}: {}",
            responses["429"]
        );
    }
    let auth_pem = created["certificates"][0]["pem"].as_str().unwrap();
    std::fs::write(dir.join("auth.pem"), auth_pem).unwrap();

    // OCSP over HTTPS without a client certificate (and with a foreign one): a request made
    // by `openssl ocsp -reqout`, posted by curl, the answer verified by `openssl ocsp -respin`.
    openssl(
        dir,
        &[
            "ocsp",
            "-issuer",
            "certs-dev/nca_rsa_dev.pem",
            "-cert",
            "auth.pem",
            "-no_nonce",
            "-reqout",
            "ocsp-request.der",
        ],
    );
    for cert in [&[][..], &stranger[..]] {
        let answer = with(
            cert,
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/ocsp-request",
                "--data-binary",
                "@ocsp-request.der",
                &format!("{base}/ocsp"),
            ],
        );
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some("application/ocsp-response")
        );
        std::fs::write(dir.join("ocsp-response.der"), &answer.body).unwrap();
        let out = run(crate::support::openssl_command().current_dir(dir).args([
            "ocsp",
            "-respin",
            "ocsp-response.der",
            "-issuer",
            "certs-dev/nca_rsa_dev.pem",
            "-VAfile",
            "certs-dev/ocsp_nca_rsa_dev.pem",
            "-cert",
            "auth.pem",
            "-no_nonce",
        ]));
        let shown = text(&out);
        assert!(out.status.success(), "{shown}");
        assert!(shown.contains("Response verify OK"), "{shown}");
        assert!(shown.contains("auth.pem: good"), "{shown}");
    }

    // The other public and operations routes need no client certificate.
    for path in [
        "/ca/root.crt",
        "/ca/nca_rsa_dev.crt",
        "/crl/nca_rsa_dev.crl",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        let answer = with(&[], &[&format!("{base}{path}")]);
        assert_eq!(answer.status, 200, "{path}");
    }
    let metrics = String::from_utf8(with(&[], &[&format!("{base}/metrics")]).body).unwrap();
    for code in [
        "client_certificate_required",
        "client_certificate_untrusted",
    ] {
        assert!(
            metrics.contains(&format!(r#"tamga_api_rejections_total{{code="{code}"}}"#)),
            "{code} not counted"
        );
    }
    // Plain HTTP to the TLS port gets no answer.
    let plain = Command::new("curl")
        .args(["-sS", "--max-time", "5", &base.replace("https:", "http:")])
        .arg("/healthz")
        .output()
        .unwrap();
    assert!(!plain.status.success(), "{}", text(&plain));

    // tamga-enroll as the portal: --ca-cert for the server, --client-cert/--client-key.
    std::fs::write(dir.join("password.txt"), "Secret2026\n").unwrap();
    std::fs::write(dir.join("token.txt"), minted(dir, &claims(&fresh_iin()))).unwrap();
    let enroll = |extra: &[&str], out: &str| {
        run(crate::support::tamga_enroll()
            .current_dir(dir)
            .args(["--server", &base, "--ca-cert", &pki.path("server-ca.pem")])
            .args([
                "--token-file",
                "token.txt",
                "--password-file",
                "password.txt",
            ])
            .args(["--key-type", "ec-p256", "--out", out])
            .args(extra))
    };
    let refused = enroll(&[], "refused");
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    assert!(
        text(&refused).contains("client_certificate_required (403)"),
        "{}",
        text(&refused)
    );
    let out = enroll(
        &[
            "--client-cert",
            &pki.path("portal.pem"),
            "--client-key",
            &pki.path("portal.key"),
        ],
        "keys",
    );
    assert!(out.status.success(), "{}", text(&out));
    let files: Vec<_> = std::fs::read_dir(dir.join("keys"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".p12"))
        .collect();
    assert_eq!(files.len(), 2);
    // Without trusting the server's CA, the client refuses the server.
    let untrusted = run(crate::support::tamga_enroll()
        .current_dir(dir)
        .args(["--server", &base, "--token-file", "token.txt"])
        .args(["--password-file", "password.txt", "--out", "never"]));
    assert_eq!(untrusted.status.code(), Some(1), "{}", text(&untrusted));
    assert!(
        text(&untrusted).contains("cannot reach"),
        "{}",
        text(&untrusted)
    );
}

#[test]
fn tls_without_client_ca_leaves_the_api_to_consent_tokens() {
    let test = "tls_without_client_ca_leaves_the_api_to_consent_tokens";
    let Some((_tmp, pki, work, server)) = curl_and_tls_server(test, false) else {
        return;
    };
    let base = &server.base;
    // The handler answers a request without a client certificate, and one with any.
    let applications = format!("{base}/api/v1/applications");
    let no_cert = ["-X", "POST", applications.as_str()];
    assert_refused(&curl(&pki, &work, &no_cert), 401, "consent_token_missing");
    let stranger = pki.client_cert_args("stranger");
    let mut args: Vec<&str> = stranger.iter().map(String::as_str).collect();
    args.extend(["-X", "POST", &applications]);
    assert_refused(&curl(&pki, &work, &args), 401, "consent_token_missing");
    // The server asks for no client certificate at all.
    let shown = s_client(&pki, &work, base);
    assert!(shown.contains("Verification: OK"), "{shown}");
    assert!(!shown.contains("Requested Signature Algorithms"), "{shown}");
    assert!(
        shown.contains("No client certificate CA names sent"),
        "{shown}"
    );
    assert!(server.get("/healthz").status().is_success());
}

#[test]
fn config_check_names_the_faulty_tls_file() {
    let (_tmp, pki, work) = pki_and_workdir();
    // An encrypted copy of the server key, and a file that is not PEM.
    openssl(
        &pki.dir,
        &[
            "pkey",
            "-in",
            "server.key",
            "-aes256",
            "-passout",
            "pass:Secret2026",
            "-out",
            "encrypted.key",
        ],
    );
    std::fs::write(pki.dir.join("junk.pem"), "not a certificate\n").unwrap();
    let check = |env: &[(&str, String)]| {
        let mut cmd = tamga(&work);
        cmd.args(["config", "check"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(&mut cmd)
    };
    let good = pki.env(true);
    // `config check` accepts `env` and says `said`.
    let passes_saying = |env: &[(&str, String)], said: &str| {
        let out = check(env);
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains(said), "{}", text(&out));
    };
    passes_saying(&good, "/api/v1 needs a client certificate from");
    let with = |key: &str, value: String| -> Vec<(&'static str, String)> {
        good.iter()
            .map(|(k, v)| (*k, if *k == key { value.clone() } else { v.clone() }))
            .collect()
    };
    // (variable, file in the PKI directory, what `config check` must say)
    let cases = [
        (
            "TAMGA_SERVER__TLS__CERT",
            "missing.pem",
            "server.tls.cert: cannot read",
        ),
        ("TAMGA_SERVER__TLS__CERT", "junk.pem", "server.tls.cert: "),
        (
            "TAMGA_SERVER__TLS__KEY",
            "portal.key",
            "does not match the certificate",
        ),
        (
            "TAMGA_SERVER__TLS__KEY",
            "encrypted.key",
            "is an encrypted private key",
        ),
        (
            "TAMGA_SERVER__TLS__KEY",
            "server.pem",
            "holds no unencrypted PEM private key",
        ),
        (
            "TAMGA_SERVER__TLS__CLIENT_CA",
            "junk.pem",
            "server.tls.client_ca: ",
        ),
        (
            "TAMGA_SERVER__TLS__CLIENT_CA",
            "portal.pem",
            "is not a CA certificate",
        ),
        (
            "TAMGA_SERVER__TLS__CLIENT_CA",
            "missing-ca.pem",
            "server.tls.client_ca: cannot read",
        ),
    ];
    for (key, file, expected) in cases {
        let out = check(&with(key, pki.path(file)));
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(3), "{expected}: {shown}");
        assert!(shown.contains(expected), "{expected}: {shown}");
        // The key file is named; its content never appears.
        let key = std::fs::read_to_string(pki.dir.join("server.key")).unwrap();
        let body_line = key.lines().nth(1).unwrap();
        assert!(!shown.contains(body_line), "{shown}");
    }
    // A plain-HTTP public_url on the HTTPS port is worth a warning, not a refusal.
    let mut env = good.clone();
    env.push(("TAMGA_SERVER__BIND", "127.0.0.1:8443".to_owned()));
    env.push((
        "TAMGA_SERVER__PUBLIC_URL",
        "http://127.0.0.1:8443".to_owned(),
    ));
    passes_saying(&env, "warning: server.public_url");
}
