//! A real `tamga serve` on the embedded defaults: readiness, the CA certificates checked with
//! the `openssl` CLI, metrics, problem documents, key file modes and graceful shutdown.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::{
    client, openssl, postgres_url, verify_chain_to, x509_text_utf8, PgDatabase, Server, DEV_OCSP,
};

const ISSUING_CN: &str = "ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (RSA) DEV";

fn fetch_der(server: &Server, path: &str, out: &Path) {
    let response = server.get(path);
    assert_eq!(response.status(), 200, "{path}");
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/pkix-cert"
    );
    std::fs::write(out, response.bytes().unwrap()).unwrap();
}

/// What the Foundation issue asks of a running server, on whichever database `env` selects.
fn check_running_server(server: &Server) {
    let dir = &server.dir;
    assert_eq!(server.get("/healthz").status(), 200);
    let ready: serde_json::Value = server.get("/readyz").json().unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");

    fetch_der(server, "/ca/root.crt", &dir.join("root.der"));
    fetch_der(server, "/ca/nca_rsa_dev.crt", &dir.join("issuing.der"));
    openssl(
        dir,
        &[
            "x509", "-inform", "DER", "-in", "root.der", "-out", "root.pem",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            "issuing.der",
            "-out",
            "issuing.pem",
        ],
    );
    // The served certificates are the ones on disk.
    assert_eq!(
        std::fs::read(dir.join("root.pem")).unwrap(),
        std::fs::read(dir.join("certs-dev/root.pem")).unwrap()
    );
    let verified = verify_chain_to(dir, "root.pem", "issuing.pem", &["issuing.pem", DEV_OCSP]);
    assert_eq!(verified.matches(": OK").count(), 2, "{verified}");

    let issuing = x509_text_utf8(dir, "issuing.pem");
    assert!(
        issuing.contains(&format!("Subject: C=KZ, CN={ISSUING_CN}")),
        "{issuing}"
    );
    assert!(issuing.contains("CA:TRUE, pathlen:0"), "{issuing}");
    assert!(issuing.contains("Certificate Sign, CRL Sign"), "{issuing}");
    assert!(issuing.contains("Public-Key: (2048 bit)"), "{issuing}");
    let root = x509_text_utf8(dir, "root.pem");
    assert!(
        root.contains("ТҮБІРЛІК КУӘЛАНДЫРУШЫ ОРТАЛЫҒЫ (RSA) DEV"),
        "{root}"
    );
    assert!(root.contains("Public-Key: (4096 bit)"), "{root}");
    let responder = x509_text_utf8(dir, DEV_OCSP);
    assert!(responder.contains("OCSP Signing"), "{responder}");
    assert!(responder.contains("OCSP No Check"), "{responder}");
    assert!(responder.contains("NIST CURVE: P-256"), "{responder}");
    assert!(
        responder.contains(&format!("Issuer: C=KZ, CN={ISSUING_CN}")),
        "{responder}"
    );
    // Names are UTF8String in the DER, not T61 or BMP.
    let asn1 = openssl(dir, &["asn1parse", "-in", "issuing.pem"]);
    assert!(asn1.contains("UTF8STRING"), "{asn1}");

    for key in [
        "root.key.pem",
        "nca_rsa_dev.key.pem",
        "ocsp_nca_rsa_dev.key.pem",
        "digital_id_dev.key.pem",
    ] {
        let mode = std::fs::metadata(dir.join("certs-dev").join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key} has mode {mode:o}");
    }

    let missing = server.get("/ca/other.crt");
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let problem: serde_json::Value = missing.json().unwrap();
    assert_eq!(problem["code"], "ca_certificate_not_found", "{problem}");
    let nowhere: serde_json::Value = server.get("/no/such/route").json().unwrap();
    assert_eq!(nowhere["code"], "not_found", "{nowhere}");

    // A route asked with a method it does not take: 405 naming the methods it does.
    for (method, path, allow) in [
        ("TRACE", "/healthz", "GET, HEAD"),
        ("POST", "/ca/root.crt", "GET, HEAD"),
        ("DELETE", "/ocsp/MAA=", "GET, HEAD"),
        ("GET", "/api/v1/applications", "POST"),
        ("PUT", "/api/v1/revocations", "POST"),
    ] {
        let resp = client()
            .request(method.parse().unwrap(), format!("{}{path}", server.base))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 405, "{method} {path}");
        assert_eq!(resp.headers()["allow"].to_str().unwrap(), allow);
        let problem: serde_json::Value = resp.json().unwrap();
        assert_eq!(problem["code"], "method_not_allowed", "{problem}");
    }
    // HEAD is GET without the body.
    let head = client()
        .head(format!("{}/ca/root.crt", server.base))
        .send()
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-type"].to_str().unwrap(),
        "application/pkix-cert"
    );
    assert!(head.bytes().unwrap().is_empty());

    let metrics = server.get("/metrics").text().unwrap();
    assert!(
        metrics.contains(r#"tamga_http_requests_total{method="GET",route="/readyz",status="200"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"tamga_http_request_duration_seconds_bucket{method="GET",route="/ca/{file}""#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"route="unmatched",status="404""#),
        "{metrics}"
    );
}

#[test]
fn server_on_embedded_defaults_with_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    assert!(
        dir.path().join("data/tamga.db").exists(),
        "SQLite under data/"
    );
    check_running_server(&server);
    let fingerprint = std::fs::read(dir.path().join("certs-dev/nca_rsa_dev.pem")).unwrap();
    let (clean, log) = server.terminate();
    assert!(clean, "SIGTERM must stop the server cleanly: {log}");

    // A restart keeps the hierarchy it generated.
    let server = Server::start(dir.path(), &[]);
    assert_eq!(
        std::fs::read(dir.path().join("certs-dev/nca_rsa_dev.pem")).unwrap(),
        fingerprint
    );
    assert_eq!(server.get("/readyz").status(), 200);
}

#[test]
fn server_with_postgres() {
    let Some(admin) = postgres_url("server_with_postgres") else {
        return;
    };
    let db = PgDatabase::create(&admin);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("TAMGA_DATABASE__URL", &db.url)]);
    assert!(
        !dir.path().join("data").exists(),
        "no SQLite file when PostgreSQL is configured"
    );
    check_running_server(&server);
    let (clean, log) = server.terminate();
    assert!(clean, "{log}");
}

#[test]
fn server_refuses_to_start_on_an_incomplete_hierarchy() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("certs-dev")).unwrap();
    std::fs::write(dir.path().join("certs-dev/root.pem"), "x").unwrap();
    let out = crate::support::run(crate::support::tamga(dir.path()).arg("serve"));
    assert_eq!(out.status.code(), Some(3), "{}", crate::support::text(&out));
    let text = crate::support::text(&out);
    assert!(
        text.contains("missing key file") && text.contains("--force"),
        "{text}"
    );
}
