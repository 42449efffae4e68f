//! Revocation data for every certificate of the path: `openssl verify -crl_check_all` with
//! the root's CRL and the issuing CA's CRL, both fetched from the URLs inside the
//! certificates; and the offline-root workflow (`ca root-crl`, `crl import`).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::enroll::{body, claims, csr, fresh_iin, lint_with, Env};
use crate::support::{client, openssl, run, tamga, text, x509_text, DEV_ISSUING};

/// The first `URI:` after `heading` in `openssl x509 -text`.
fn uri_after(cert_text: &str, heading: &str) -> String {
    let start = cert_text
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading}: {cert_text}"));
    let rest = &cert_text[start..];
    let uri = rest.split("URI:").nth(1).unwrap();
    uri.split_whitespace().next().unwrap().to_owned()
}

fn download_crl(dir: &Path, url: &str, file: &str) {
    let resp = client().get(url).send().unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    std::fs::write(dir.join(format!("{file}.der")), resp.bytes().unwrap()).unwrap();
    openssl(
        dir,
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            &format!("{file}.der"),
            "-out",
            file,
        ],
    );
}

/// pkilint finds nothing at WARNING or above in the downloaded root CRL (`root.crl.der`), an
/// ARL checked under PKIX.
fn lint_root_crl(dir: &Path) {
    let args = [
        "lint",
        "-t",
        "ARL",
        "-p",
        "PKIX",
        "-s",
        "WARNING",
        "root.crl.der",
    ];
    lint_with(dir, "lint_crl", &args);
}

fn verify_all(dir: &Path, leaf: &str) -> String {
    let out = crate::support::openssl_command()
        .current_dir(dir)
        .args([
            "verify",
            "-crl_check_all",
            "-CAfile",
            "certs-dev/root.pem",
            "-untrusted",
            "certs-dev/nca_rsa_dev.pem",
            "-CRLfile",
            "root.crl",
            "-CRLfile",
            "issuing.crl",
            leaf,
        ])
        .output()
        .unwrap();
    text(&out)
}

#[test]
fn strict_relying_parties_find_revocation_data_for_the_whole_path() {
    let env = Env::sqlite();
    let dir = env.dir().to_path_buf();
    let iin = fresh_iin();
    let (a, _) = csr(&dir, "rsa:2048", &[]);
    let (s, _) = csr(&dir, "ec", &[]);
    let (status, created) = env.post(Some(&env.minted(&claims(&iin))), &body(&a, &s, None));
    assert_eq!(status, 201, "{created}");
    for c in created["certificates"].as_array().unwrap() {
        std::fs::write(
            dir.join(format!("{}.pem", c["kind"].as_str().unwrap())),
            c["pem"].as_str().unwrap(),
        )
        .unwrap();
    }
    let leaf_text = x509_text(&dir, "sign.pem");
    let issuing_text = x509_text(&dir, DEV_ISSUING);
    let issuing_crl_url = uri_after(&leaf_text, "CRL Distribution Points");
    let root_crl_url = uri_after(&issuing_text, "CRL Distribution Points");
    assert_eq!(root_crl_url, format!("{}/crl/root.crl", env.server.base));
    assert!(uri_after(&issuing_text, "CA Issuers").ends_with("/ca/root.crt"));
    download_crl(&dir, &root_crl_url, "root.crl");
    download_crl(&dir, &issuing_crl_url, "issuing.crl");
    lint_root_crl(&dir);
    for leaf in ["auth.pem", "sign.pem"] {
        let shown = verify_all(&dir, leaf);
        assert!(shown.contains(&format!("{leaf}: OK")), "{shown}");
    }

    // A revoked citizen's certificate, in the next full CRL.
    let serial = created["certificates"][1]["serial"].as_str().unwrap();
    let out = run(tamga(&dir).args(["certs", "revoke", serial, "--reason", "keyCompromise"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(tamga(&dir).args(["crl", "publish"]));
    assert!(out.status.success(), "{}", text(&out));
    download_crl(&dir, &issuing_crl_url, "issuing.crl");
    let shown = verify_all(&dir, "sign.pem");
    assert!(shown.contains("certificate revoked"), "{shown}");
    assert!(verify_all(&dir, "auth.pem").contains("auth.pem: OK"));

    // The day the issuing CA's key is compromised: its certificate goes on the root CRL, and
    // every certificate it issued stops verifying.
    let out = run(tamga(&dir).args([
        "ca",
        "revoke-issuer",
        "--reason",
        "keyCompromise",
        "--operator",
        "ciso",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let issuing_serial = openssl(
        &dir,
        &[
            "x509",
            "-in",
            "certs-dev/nca_rsa_dev.pem",
            "-noout",
            "-serial",
        ],
    );
    let issuing_serial = issuing_serial
        .trim()
        .trim_start_matches("serial=")
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        download_crl(&dir, &root_crl_url, "root.crl");
        let listed = openssl(&dir, &["crl", "-in", "root.crl", "-noout", "-text"]);
        if listed.contains(&issuing_serial) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the root CRL never listed the issuing CA: {listed}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    lint_root_crl(&dir);
    let shown = verify_all(&dir, "auth.pem");
    assert!(
        shown.contains("certificate revoked") && shown.contains("at 1 depth"),
        "{shown}"
    );
    let out = run(tamga(&dir).args(["ca", "revoke-issuer", "--reason", "keyCompromise"]));
    assert_eq!(out.status.code(), Some(5), "twice: {}", text(&out));
}

#[test]
fn root_crls_signed_offline_are_verified_before_they_are_published() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let out = run(tamga(dir).args(["ca", "init", "--dev"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(tamga(dir).args(["ca", "root-crl", "--out", "next.crl"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(tamga(dir).args(["crl", "import", "next.crl"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("number 1"), "{}", text(&out));
    // The same file again: not newer.
    let out = run(tamga(dir).args(["crl", "import", "next.crl"]));
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("not newer"), "{}", text(&out));
    // An older number, signed by the right key: refused too.
    let out = run(tamga(dir).args(["ca", "root-crl", "--out", "two.crl"]));
    assert!(out.status.success());
    let out = run(tamga(dir).args(["crl", "import", "two.crl"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(tamga(dir).args(["ca", "root-crl", "--out", "old.crl", "--number", "2"]));
    assert!(out.status.success());
    let out = run(tamga(dir).args(["crl", "import", "old.crl"]));
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    // Signed by another root.
    let other = tempfile::tempdir().unwrap();
    let out = run(tamga(other.path()).args(["ca", "init", "--dev"]));
    assert!(out.status.success());
    let out =
        run(tamga(other.path()).args(["ca", "root-crl", "--out", "foreign.crl", "--number", "99"]));
    assert!(out.status.success(), "{}", text(&out));
    std::fs::copy(other.path().join("foreign.crl"), dir.join("foreign.crl")).unwrap();
    let out = run(tamga(dir).args(["crl", "import", "foreign.crl"]));
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("not signed by the root"),
        "{}",
        text(&out)
    );
    // Expired.
    let out = run(tamga(dir)
        .args(["ca", "root-crl", "--out", "short.crl", "--number", "50"])
        .env("TAMGA_CRL__ROOT_VALIDITY", "1s"));
    assert!(out.status.success(), "{}", text(&out));
    std::thread::sleep(Duration::from_millis(2100));
    let out = run(tamga(dir).args(["crl", "import", "short.crl"]));
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("expired"), "{}", text(&out));
    // A garbage file.
    std::fs::write(dir.join("junk.crl"), "not a crl").unwrap();
    let out = run(tamga(dir).args(["crl", "import", "junk.crl"]));
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
}
