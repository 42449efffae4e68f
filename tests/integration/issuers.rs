//! Several issuing CAs at once (`[[ca.issuers]]`): a server with `[ca]`'s RSA issuer under
//! `root` and a second RSA issuer under a root of its own serves each one's CA certificate,
//! root certificate, full, delta and root CRL under its own id, and its OCSP responder answers
//! for each issuer with that issuer's delegated responder (checked with the `openssl` CLI).

use std::path::Path;

use crate::enroll::Env;
use crate::support::{openssl, openssl_command, run, tamga, text};

/// The second issuer and its root.
const SECOND: &str = "nca_rsa2_dev";
const SECOND_ROOT: &str = "root_two";

/// A test directory whose `config/tamga.toml` adds the second issuer under its own root.
fn two_issuers() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config/tamga.toml"),
        format!(
            "[[ca.issuers]]\nid = \"{SECOND}\"\nroot_id = \"{SECOND_ROOT}\"\n\
             issuing_key_type = \"rsa2048\"\nocsp_key_type = \"ec-p256\"\n"
        ),
    )
    .unwrap();
    dir
}

/// GET `path`, asserting 200; the body.
fn fetch(env: &Env, path: &str) -> Vec<u8> {
    let resp = env.server.get(path);
    assert_eq!(resp.status(), 200, "GET {path}");
    resp.bytes().unwrap().to_vec()
}

/// Write `der` into the test directory as `name`.
fn save(dir: &Path, name: &str, der: &[u8]) -> String {
    std::fs::write(dir.join(name), der).unwrap();
    name.to_owned()
}

/// `openssl ocsp` against the server, asking `issuer`'s responder, whose answer must verify
/// with `va` alone; returns what it printed.
fn ocsp(dir: &Path, base: &str, issuer: &str, va: &str, args: &[&str]) -> String {
    let url = format!("{base}/ocsp");
    let mut all = vec!["ocsp", "-issuer", issuer, "-VAfile", va, "-url", &url];
    all.extend_from_slice(args);
    let out = openssl_command()
        .current_dir(dir)
        .args(&all)
        .output()
        .unwrap();
    text(&out)
}

#[test]
fn two_issuers_under_two_roots_serve_their_certificates_crls_and_ocsp() {
    let env = Env::sqlite_in(two_issuers(), &[]);
    let dir = env.dir().to_path_buf();
    let certs = dir.join("certs-dev");
    for file in [
        "root.pem",
        "nca_rsa_dev.pem",
        "ocsp_nca_rsa_dev.pem",
        "root_two.pem",
        "root_two.key.pem",
        "root_two.development",
        "nca_rsa2_dev.pem",
        "nca_rsa2_dev.key.pem",
        "ocsp_nca_rsa2_dev.pem",
        "ocsp_nca_rsa2_dev.key.pem",
    ] {
        assert!(certs.join(file).is_file(), "{file} was not generated");
    }

    // Each CA certificate under its id, DER, the same as its file.
    for (path, file) in [
        ("/ca/root.crt", "root.pem"),
        ("/ca/nca_rsa_dev.crt", "nca_rsa_dev.pem"),
        ("/ca/root_two.crt", "root_two.pem"),
        ("/ca/nca_rsa2_dev.crt", "nca_rsa2_dev.pem"),
    ] {
        let served = fetch(&env, path);
        let pem = std::fs::read(certs.join(file)).unwrap();
        let on_disk = openssl::x509::X509::from_pem(&pem)
            .unwrap()
            .to_der()
            .unwrap();
        assert_eq!(served, on_disk, "{path} is not {file}");
    }
    assert_eq!(env.server.get("/ca/root_three.crt").status(), 404);

    // The second issuing CA chains to its own root, not to `[ca]`'s, and names its root's
    // URLs; each root is a different key.
    let chained = openssl(
        &dir,
        &[
            "verify",
            "-CAfile",
            "certs-dev/root_two.pem",
            "certs-dev/nca_rsa2_dev.pem",
        ],
    );
    assert!(chained.contains(": OK"), "{chained}");
    let wrong = openssl_command()
        .current_dir(&dir)
        .args([
            "verify",
            "-CAfile",
            "certs-dev/root.pem",
            "certs-dev/nca_rsa2_dev.pem",
        ])
        .output()
        .unwrap();
    assert!(!wrong.status.success(), "{}", text(&wrong));
    let second_text = openssl(
        &dir,
        &[
            "x509",
            "-in",
            "certs-dev/nca_rsa2_dev.pem",
            "-noout",
            "-text",
        ],
    );
    assert!(
        second_text.contains(&format!("/crl/{SECOND_ROOT}.crl")),
        "{second_text}"
    );
    assert!(
        second_text.contains(&format!("/ca/{SECOND_ROOT}.crt")),
        "{second_text}"
    );

    // Full, delta and root CRLs of each, each signed by its own CA.
    let pairs = [
        ("nca_rsa_dev.crl", "certs-dev/nca_rsa_dev.pem"),
        ("nca_rsa_dev-delta.crl", "certs-dev/nca_rsa_dev.pem"),
        ("root.crl", "certs-dev/root.pem"),
        ("nca_rsa2_dev.crl", "certs-dev/nca_rsa2_dev.pem"),
        ("nca_rsa2_dev-delta.crl", "certs-dev/nca_rsa2_dev.pem"),
        ("root_two.crl", "certs-dev/root_two.pem"),
    ];
    for (name, signer) in pairs {
        let der = fetch(&env, &format!("/crl/{name}"));
        let file = save(&dir, name, &der);
        let out = openssl_command()
            .current_dir(&dir)
            .args([
                "crl", "-inform", "DER", "-in", &file, "-noout", "-CAfile", signer,
            ])
            .output()
            .unwrap();
        assert!(
            text(&out).contains("verify OK"),
            "{name} against {signer}: {}",
            text(&out)
        );
    }
    // A CRL is never served under another issuer's id, and a root has no delta CRL.
    for missing in ["/crl/root_two-delta.crl", "/crl/root_three.crl"] {
        assert_eq!(env.server.get(missing).status(), 404, "{missing}");
    }

    // An RSA holder's pair comes from `[ca]`'s issuer; its OCSP answer is signed by that
    // issuer's responder.
    let (iin, created) = env.enroll_holder(None);
    let auth = created["certificates"][0]["pem"].as_str().unwrap();
    std::fs::write(dir.join("auth.pem"), auth).unwrap();
    let chain = created["chain_pem"].as_str().unwrap();
    assert_eq!(
        chain.matches("BEGIN CERTIFICATE").count(),
        2,
        "{iin}: {chain}"
    );
    let base = env.server.base.clone();
    let first = ocsp(
        &dir,
        &base,
        "certs-dev/nca_rsa_dev.pem",
        "certs-dev/ocsp_nca_rsa_dev.pem",
        &["-cert", "auth.pem"],
    );
    assert!(first.contains("Response verify OK"), "{first}");
    assert!(first.contains("auth.pem: good"), "{first}");

    // The second issuer's responder answers for it: a serial it never issued is `unknown`,
    // signed by its own delegated responder (which the first responder's certificate does not
    // verify), not `unauthorized`.
    let second = ocsp(
        &dir,
        &base,
        "certs-dev/nca_rsa2_dev.pem",
        "certs-dev/ocsp_nca_rsa2_dev.pem",
        &["-serial", "0x0123456789ABCDEF0123456789ABCDEF"],
    );
    assert!(second.contains("Response verify OK"), "{second}");
    assert!(second.contains(": unknown"), "{second}");
    let crossed = ocsp(
        &dir,
        &base,
        "certs-dev/nca_rsa2_dev.pem",
        "certs-dev/ocsp_nca_rsa_dev.pem",
        &["-serial", "0x0123456789ABCDEF0123456789ABCDEF"],
    );
    assert!(!crossed.contains("Response verify OK"), "{crossed}");

    // The first issuer's certificate asked of the second issuer is not one of its own:
    // `unknown`, never `good`.
    let foreign = ocsp(
        &dir,
        &base,
        "certs-dev/nca_rsa2_dev.pem",
        "certs-dev/ocsp_nca_rsa2_dev.pem",
        &["-cert", "auth.pem"],
    );
    assert!(!foreign.contains(": good"), "{foreign}");

    // Each issuing CA's own certificate is answered with its root's signed responses.
    let issuing = ocsp(
        &dir,
        &base,
        "certs-dev/root_two.pem",
        "certs-dev/root_two.pem",
        &["-cert", "certs-dev/nca_rsa2_dev.pem"],
    );
    assert!(issuing.contains("Response verify OK"), "{issuing}");
    assert!(issuing.contains("nca_rsa2_dev.pem: good"), "{issuing}");

    // `/readyz` checks both issuers' keys.
    let ready: serde_json::Value = env.server.get("/readyz").json().unwrap();
    assert_eq!(ready["checks"]["issuers"]["nca_rsa_dev"], "ok", "{ready}");
    assert_eq!(ready["checks"]["issuers"][SECOND], "ok", "{ready}");

    // `tamga config check` lists the second issuer, present.
    let check = run(tamga(&dir).args(["config", "check"]));
    assert!(check.status.success(), "{}", text(&check));
    let said = text(&check);
    assert!(
        said.contains(&format!(
            "issuer        {SECOND} (root {SECOND_ROOT}, rsa2048): present"
        )),
        "{said}"
    );
}

#[test]
fn an_issuer_entry_with_a_clashing_id_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    for (toml, expected) in [
        (
            "[[ca.issuers]]\nid = \"nca_rsa_dev\"\nroot_id = \"root_two\"\n",
            "the issuer id `nca_rsa_dev` is used twice",
        ),
        ("[[ca.issuers]]\nid = \"second\"\n", "`root_id` is missing"),
        (
            "[[ca.issuers]]\nid = \"root_two\"\nroot_id = \"root\"\n\
             [[ca.issuers]]\nid = \"third\"\nroot_id = \"root_two\"\n",
            "`root_two` is both a root id and an issuer id",
        ),
        (
            "[[ca.issuers]]\nid = \"Second\"\nroot_id = \"root\"\n",
            "must be 1-64 characters of a-z, 0-9",
        ),
    ] {
        std::fs::write(dir.path().join("config/tamga.toml"), toml).unwrap();
        let out = run(tamga(dir.path()).args(["config", "check"]));
        assert!(!out.status.success(), "{toml}: {}", text(&out));
        let said = text(&out);
        assert!(said.contains("ca.issuers"), "{toml}: {said}");
        assert!(said.contains(expected), "{toml}: {said}");
    }
}

#[test]
fn the_development_defaults_serve_a_gost_issuer_beside_the_rsa_one() {
    if !crate::gost::gost_ready("the_development_defaults_serve_a_gost_issuer_beside_the_rsa_one") {
        return;
    }
    use der::Decode;
    let env = Env::sqlite();
    let certs = env.dir().join("certs-dev");
    for file in [
        "root_gost.pem",
        "root_gost.key.pem",
        "root_gost.development",
        "nca_gost_dev.pem",
        "ocsp_nca_gost_dev.pem",
    ] {
        assert!(certs.join(file).is_file(), "{file} was not generated");
    }
    let issuing = fetch(&env, "/ca/nca_gost_dev.crt");
    let root = fetch(&env, "/ca/root_gost.crt");
    let issuing = x509_cert::Certificate::from_der(&issuing).unwrap();
    let root = x509_cert::Certificate::from_der(&root).unwrap();
    assert_eq!(
        issuing.tbs_certificate.issuer, root.tbs_certificate.subject,
        "the GOST issuing CA is under the GOST root"
    );
    // Its CRLs, named for it and issued under its name; the GOST root's CRL under the root's.
    for (name, signer) in [
        ("nca_gost_dev.crl", &issuing),
        ("nca_gost_dev-delta.crl", &issuing),
        ("root_gost.crl", &root),
    ] {
        let der = fetch(&env, &format!("/crl/{name}"));
        let crl = x509_cert::crl::CertificateList::from_der(&der).unwrap();
        assert_eq!(
            crl.tbs_cert_list.issuer, signer.tbs_certificate.subject,
            "{name}"
        );
        // Signed in NCA's GOST form by that CA's key.
        use der::Encode;
        tamga::gost::SignedArtefact::crl(&der)
            .unwrap()
            .verify_by(&signer.to_der().unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let ready: serde_json::Value = env.server.get("/readyz").json().unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["checks"]["issuers"]["nca_gost_dev"], "ok", "{ready}");
    assert_eq!(ready["checks"]["issuers"]["nca_rsa_dev"], "ok", "{ready}");
    // An RSA holder's pair still comes from the RSA issuer alone.
    let (_, created) = env.enroll_holder(None);
    let chain = created["chain_pem"].as_str().unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "{chain}");
}
