//! The production key ceremony: `tamga root init` and `root sign-issuing` on a root machine
//! (its own directory, configuration and database), `ca request-issuing`, `ca
//! install-issuing` and `ca init-ocsp` on the server, then the server in production mode
//! issuing a citizen's pair that `openssl` verifies up to the new root, with OCSP answered by
//! the new responder. The root machine's periodic duty, holding only the root: `root crl` and
//! `root ocsp` there, imported on the server, verified by `openssl`; `root revoke-issuing`
//! and the next CRL and batch saying so. Also: what `install-issuing` and `sign-issuing`
//! refuse, production refusing a development root, and the older names `ca root-crl` / `ca
//! root-ocsp`.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::enroll::{body, csr, fresh_iin};
use crate::support::{
    client, openssl, run, softhsm_available, softhsm_token, tamga, text, verify_chain_to, Server,
    SOFTHSM_MODULE,
};

/// A `[ca.<which>]` section naming the key `label` in the token `token`.
pub(super) fn token_key(which: &str, token: &str, label: &str) -> String {
    format!(
        "[ca.{which}]\nkind = \"pkcs11\"\nmodule = \"{SOFTHSM_MODULE}\"\ntoken_label = \
         \"{token}\"\nkey_label = \"{label}\"\npin_file = \"hsm.pin\"\n"
    )
}

pub(super) fn write_config(dir: &Path, toml: &str) {
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("config/tamga.toml"), toml).unwrap();
}

pub(super) fn tamga_ok(dir: &Path, args: &[&str]) -> String {
    let out = run(tamga(dir).args(args));
    assert!(
        out.status.success(),
        "tamga {}: {}",
        args.join(" "),
        text(&out)
    );
    text(&out)
}

fn refused(out: &Output, words: &[&str]) {
    let said = text(out);
    assert_eq!(out.status.code(), Some(5), "{said}");
    for w in words {
        assert!(said.contains(w), "{w:?} not in: {said}");
    }
}

/// The value printed after `field` on a line of a command's output.
pub(super) fn field(output: &str, field: &str) -> String {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix(field).map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("no {field} in: {output}"))
}

/// The audit log's entries (oldest first) as JSON objects.
pub(super) fn audit_entries(dir: &Path) -> Vec<Value> {
    let out = tamga_ok(dir, &["audit", "tail", "-n", "50", "--json"]);
    let start = out.find('[').unwrap_or(0);
    let end = out.rfind(']').map_or(out.len(), |e| e + 1);
    let entries: Value = serde_json::from_str(&out[start..end]).unwrap();
    entries.as_array().unwrap().clone()
}

/// The actions of the audit log's entries, oldest first.
pub(super) fn audit_actions(dir: &Path) -> Vec<String> {
    audit_entries(dir)
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A development directory whose Digital ID key signs the consent tokens the production
/// server is told to trust (production has no development key of its own).
fn consent_issuer() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    tamga_ok(dir.path(), &["ca", "init", "--dev"]);
    dir
}

fn consent_token(issuer: &Path, iin: &str) -> String {
    let out = tamga_ok(
        issuer,
        &[
            "dev",
            "consent-token",
            "--iin",
            iin,
            "--surname",
            "ӘБІЛҚАСЫМОВА",
            "--name",
            "АЙГҮЛ",
        ],
    );
    out.lines().next().unwrap().trim().to_owned()
}

#[test]
fn the_key_ceremony_end_to_end_with_softhsm() {
    if !softhsm_available("the_key_ceremony_end_to_end_with_softhsm") {
        return;
    }
    // The root machine: the root key in its own token, its own database; the URLs it writes
    // into the issuing CA certificate are the server's.
    let root_machine = tempfile::tempdir().unwrap();
    let root = root_machine.path();
    softhsm_token(root, "tamga-root");
    write_config(
        root,
        &format!(
            "[server]\npublic_url = \"https://ca.example.kz\"\n[ca]\ndir = \"root-ca\"\n{}",
            token_key("root_key", "tamga-root", "root")
        ),
    );
    let made = tamga_ok(root, &["root", "init", "--operator", "root-officer"]);
    let root_fingerprint = field(&made, "sha256_fingerprint");
    assert!(!root.join("root-ca/root.key.pem").exists(), "{made}");
    assert!(
        made.contains(r#"pkcs11 token "tamga-root" key "root""#),
        "{made}"
    );

    // The server: production, the issuing CA and responder keys in its token.
    let server_machine = tempfile::tempdir().unwrap();
    let server = server_machine.path();
    softhsm_token(server, "tamga-ca");
    let issuer = consent_issuer();
    std::fs::copy(
        issuer.path().join("certs-dev/digital_id_dev.pub.pem"),
        server.join("digital-id.pub.pem"),
    )
    .unwrap();
    write_config(
        server,
        &format!(
            "mode = \"production\"\n[digital_id]\nkeys = [\"digital-id.pub.pem\"]\n[ca]\n\
             dir = \"pki\"\nissuer_id = \"nca_rsa\"\n{}{}",
            token_key("issuing_key", "tamga-ca", "issuing"),
            token_key("ocsp_key", "tamga-ca", "ocsp")
        ),
    );
    let requested = tamga_ok(
        server,
        &[
            "ca",
            "request-issuing",
            "--out",
            "issuing.csr",
            "--operator",
            "ca-officer",
        ],
    );
    let requested_key = field(&requested, "public_key_sha256");
    assert!(!server.join("pki/nca_rsa.key.pem").exists(), "{requested}");
    // A second request would replace the key: refused unless told.
    let again = run(tamga(server).args(["ca", "request-issuing", "--out", "other.csr"]));
    assert_eq!(again.status.code(), Some(5), "{}", text(&again));

    // The request goes to the root machine; the certificate and root.pem come back.
    std::fs::copy(server.join("issuing.csr"), root.join("issuing.csr")).unwrap();
    let signed = tamga_ok(
        root,
        &[
            "root",
            "sign-issuing",
            "--csr",
            "issuing.csr",
            "--out",
            "issuing.pem",
        ],
    );
    assert_eq!(
        field(&signed, "public_key_sha256"),
        requested_key,
        "{signed}"
    );
    std::fs::copy(root.join("issuing.pem"), server.join("issuing.pem")).unwrap();
    std::fs::copy(root.join("root-ca/root.pem"), server.join("pki/root.pem")).unwrap();
    let fingerprint = openssl(
        server,
        &[
            "x509",
            "-in",
            "pki/root.pem",
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
    );
    assert_eq!(
        fingerprint
            .trim()
            .rsplit('=')
            .next()
            .unwrap()
            .replace(':', ""),
        root_fingerprint
    );
    let installed = tamga_ok(server, &["ca", "install-issuing", "--cert", "issuing.pem"]);
    assert!(installed.contains("pki/nca_rsa.pem"), "{installed}");
    let first = tamga_ok(server, &["ca", "init-ocsp"]);
    assert!(
        first.contains(r#"pkcs11 token "tamga-ca" key "ocsp""#),
        "{first}"
    );
    // A second responder replaces the first (and its token key) only when told.
    let again = run(tamga(server).args(["ca", "init-ocsp"]));
    assert_eq!(again.status.code(), Some(5), "{}", text(&again));
    let responder = tamga_ok(server, &["ca", "init-ocsp", "--force"]);
    assert_ne!(field(&responder, "serial"), field(&first, "serial"));
    // The issuing-CA profile: the policies and the root's revocation URLs of the server.
    let issuing_text = openssl(
        server,
        &["x509", "-in", "pki/nca_rsa.pem", "-noout", "-text"],
    );
    for expected in [
        "CA:TRUE, pathlen:0",
        "1.2.398.3.3.1.1",
        "https://ca.example.kz/crl/root.crl",
        "https://ca.example.kz/ca/root.crt",
    ] {
        assert!(
            issuing_text.contains(expected),
            "{expected}: {issuing_text}"
        );
    }
    let shown = tamga_ok(server, &["config", "check"]);
    assert!(shown.contains("production"), "{shown}");

    // Each step is in its machine's audit log, and both chains verify.
    let root_actions = audit_actions(root);
    assert_eq!(root_actions, ["root.generated", "root.issuing_signed"]);
    let server_actions = audit_actions(server);
    assert_eq!(
        server_actions,
        [
            "ca.issuing_requested",
            "ca.issuing_installed",
            "ca.ocsp_responder_generated",
            "ca.ocsp_responder_generated"
        ]
    );
    for dir in [root, server] {
        tamga_ok(dir, &["audit", "verify"]);
    }
    // The root's first CRL and OCSP batch, signed by the root key in its token on a machine
    // that holds only the root, imported on the server.
    let made = tamga_ok(root, &["root", "crl", "--out", "root.crl"]);
    assert!(made.contains("root CRL number 1"), "{made}");
    let made = tamga_ok(root, &["root", "ocsp", "--out", "batch.pem"]);
    assert!(made.contains(" good"), "{made}");
    for file in ["root.crl", "batch.pem"] {
        std::fs::copy(root.join(file), server.join(file)).unwrap();
    }
    tamga_ok(server, &["crl", "import", "root.crl"]);
    tamga_ok(server, &["ocsp", "import", "batch.pem"]);

    // Production serving under the new hierarchy: a citizen's pair.
    let srv = Server::start(server, &[]);
    let created = enroll_pair(&srv, server, issuer.path());
    std::fs::write(
        server.join("chain.pem"),
        created["chain_pem"].as_str().unwrap(),
    )
    .unwrap();
    let certificates = created["certificates"].as_array().unwrap();
    assert_eq!(certificates.len(), 2, "{created}");
    for (n, cert) in certificates.iter().enumerate() {
        let leaf = format!("leaf{n}.pem");
        std::fs::write(server.join(&leaf), cert["pem"].as_str().unwrap()).unwrap();
        let verified = verify_chain_to(server, "pki/root.pem", "chain.pem", &[&leaf]);
        assert!(verified.contains(&format!("{leaf}: OK")), "{verified}");
        let out = crate::support::openssl_command()
            .current_dir(server)
            .args(["ocsp", "-issuer", "pki/nca_rsa.pem", "-cert", &leaf])
            .args(["-url", &format!("{}/ocsp", srv.base)])
            .args(["-CAfile", "pki/root.pem", "-VAfile", "pki/ocsp_nca_rsa.pem"])
            .output()
            .unwrap();
        let said = text(&out);
        assert!(said.contains("Response verify OK"), "{said}");
        assert!(said.contains(&format!("{leaf}: good")), "{said}");
    }
}

#[test]
fn install_issuing_refuses_another_key_and_another_root() {
    let root_a = tempfile::tempdir().unwrap();
    let root_b = tempfile::tempdir().unwrap();
    for dir in [root_a.path(), root_b.path()] {
        write_config(dir, "[ca]\ndir = \"root-ca\"\n");
        tamga_ok(dir, &["root", "init"]);
    }
    let server_machine = tempfile::tempdir().unwrap();
    let server = server_machine.path();
    write_config(
        server,
        "mode = \"production\"\n[ca]\ndir = \"pki\"\nissuer_id = \"nca_rsa\"\n",
    );
    tamga_ok(server, &["ca", "request-issuing", "--out", "issuing.csr"]);
    let key_file = std::fs::metadata(server.join("pki/nca_rsa.key.pem")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key_file.permissions()) & 0o777,
        0o600
    );
    std::fs::copy(
        root_a.path().join("root-ca/root.pem"),
        server.join("pki/root.pem"),
    )
    .unwrap();
    let sign = |root: &Path, csr: &Path, out: &str| {
        run(tamga(root)
            .args(["root", "sign-issuing", "--csr"])
            .arg(csr)
            .args(["--out", out]))
    };

    // The root refuses a weak key, and a request whose key is not an issuing CA's.
    let (weak, _) = csr(server, "rsa:1024", &[]);
    std::fs::write(server.join("weak.csr"), weak).unwrap();
    refused(
        &sign(root_a.path(), &server.join("weak.csr"), "weak.pem"),
        &["key too small"],
    );
    let (ed25519, _) = csr(server, "ed25519", &[]);
    std::fs::write(server.join("ed25519.csr"), ed25519).unwrap();
    refused(
        &sign(root_a.path(), &server.join("ed25519.csr"), "ed.pem"),
        &["key algorithm not allowed"],
    );
    assert!(!root_a.path().join("weak.pem").exists());

    // A certificate for another key, signed by the right root.
    let (other, _) = csr(server, "rsa:2048", &[]);
    std::fs::write(server.join("other.csr"), other).unwrap();
    let out = sign(root_a.path(), &server.join("other.csr"), "other.pem");
    assert!(out.status.success(), "{}", text(&out));
    std::fs::copy(root_a.path().join("other.pem"), server.join("other.pem")).unwrap();
    refused(
        &run(tamga(server).args(["ca", "install-issuing", "--cert", "other.pem"])),
        &["not for the issuing key"],
    );
    // The right key, signed by another root.
    let out = sign(root_b.path(), &server.join("issuing.csr"), "foreign.pem");
    assert!(out.status.success(), "{}", text(&out));
    std::fs::copy(
        root_b.path().join("foreign.pem"),
        server.join("foreign.pem"),
    )
    .unwrap();
    refused(
        &run(tamga(server).args(["ca", "install-issuing", "--cert", "foreign.pem"])),
        &["not signed by the configured root"],
    );
    // A certificate that is not a CA's: the root CA certificate itself is refused by profile
    // (it is self-signed by the root, so only the profile check stops it).
    refused(
        &run(tamga(server).args(["ca", "install-issuing", "--cert", "pki/root.pem"])),
        &["path length of 0"],
    );
    assert!(!server.join("pki/nca_rsa.pem").exists());
    let leftovers: Vec<_> = std::fs::read_dir(server.join("pki"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The right certificate installs, once.
    let out = sign(root_a.path(), &server.join("issuing.csr"), "issuing.pem");
    assert!(out.status.success(), "{}", text(&out));
    std::fs::copy(
        root_a.path().join("issuing.pem"),
        server.join("issuing.pem"),
    )
    .unwrap();
    tamga_ok(server, &["ca", "install-issuing", "--cert", "issuing.pem"]);
    refused(
        &run(tamga(server).args(["ca", "install-issuing", "--cert", "issuing.pem"])),
        &["--force"],
    );
    let verified = verify_chain_to(server, "pki/root.pem", "pki/root.pem", &["pki/nca_rsa.pem"]);
    assert!(verified.contains("pki/nca_rsa.pem: OK"), "{verified}");
}

#[test]
fn production_refuses_a_development_root() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    tamga_ok(dir, &["ca", "init", "--dev"]);
    let marker = std::fs::read_to_string(dir.join("certs-dev/root.development")).unwrap();
    let fingerprint = openssl(
        dir,
        &[
            "x509",
            "-in",
            "certs-dev/root.pem",
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
    );
    assert!(
        marker.contains(
            &fingerprint
                .trim()
                .rsplit('=')
                .next()
                .unwrap()
                .replace(':', "")
        ),
        "{marker}"
    );
    assert!(audit_actions(dir).contains(&"ca.development_root".to_owned()));
    let production = [
        ("TAMGA_MODE", "production"),
        (
            "TAMGA_DIGITAL_ID__KEYS",
            "[\"certs-dev/digital_id_dev.pub.pem\"]",
        ),
    ];
    for command in [&["config", "check"][..], &["serve"][..]] {
        let out = run(tamga(dir).args(command).envs(production));
        let said = text(&out);
        assert_eq!(out.status.code(), Some(3), "{said}");
        assert!(said.contains("development root"), "{said}");
        assert!(said.contains("root.development"), "{said}");
    }
    // In dev mode the same hierarchy is fine.
    tamga_ok(dir, &["config", "check"]);
}

#[test]
fn the_root_commands_and_their_older_names() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    tamga_ok(dir, &["ca", "init", "--dev"]);
    for (n, args) in [
        ["ca", "root-crl", "--out", "a.crl", "--number", "1"],
        ["root", "crl", "--out", "b.crl", "--number", "2"],
    ]
    .iter()
    .enumerate()
    {
        tamga_ok(dir, args);
        let file = args[3];
        let crl = openssl(
            dir,
            &["crl", "-inform", "DER", "-in", file, "-noout", "-crlnumber"],
        );
        assert!(crl.contains(&format!("crlNumber=0x{:02X}", n + 1)), "{crl}");
    }
    for args in [
        ["ca", "root-ocsp", "--out", "a.pem"],
        ["root", "ocsp", "--out", "b.pem"],
    ] {
        let said = tamga_ok(dir, &args);
        assert!(said.contains("root-signed OCSP responses"), "{said}");
        let batch = std::fs::read_to_string(dir.join(args[3])).unwrap();
        assert!(batch.contains("BEGIN OCSP RESPONSE"), "{batch}");
    }
    let help = tamga_ok(dir, &["root", "--help"]);
    for command in ["init", "sign-issuing", "crl", "ocsp"] {
        assert!(help.contains(command), "{help}");
    }
}

/// `url` (a CRL, DER) saved as PEM in `dir/file`.
/// A citizen's pair (AUTH RSA-2048, SIGN EC P-256, keys made in `dir`) issued by `srv` on a
/// consent token signed by the development Digital ID key in `issuer`: the 201 answer.
fn enroll_pair(srv: &Server, dir: &Path, issuer: &Path) -> Value {
    let token = consent_token(issuer, &fresh_iin());
    let (auth, _) = csr(dir, "rsa:2048", &[]);
    let (sign, _) = csr(dir, "ec", &[]);
    let resp = client()
        .post(format!("{}/api/v1/applications", srv.base))
        .bearer_auth(&token)
        .json(&body(&auth, &sign, None))
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let created: Value = resp.json().unwrap();
    assert_eq!(status, 201, "{created}");
    created
}

fn fetch_crl(dir: &Path, url: &str, file: &str) {
    let resp = client().get(url).send().unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    let der = format!("{file}.der");
    std::fs::write(dir.join(&der), resp.bytes().unwrap()).unwrap();
    openssl(dir, &["crl", "-inform", "DER", "-in", &der, "-out", file]);
}

/// `openssl ocsp` about the issuing CA certificate, answered by the root's responses that
/// the server holds.
fn ask_root_ocsp(dir: &Path, base: &str) -> String {
    let out = crate::support::openssl_command()
        .current_dir(dir)
        .args([
            "ocsp",
            "-issuer",
            "pki/root.pem",
            "-cert",
            "pki/nca_rsa.pem",
        ])
        .args(["-url", &format!("{base}/ocsp"), "-CAfile", "pki/root.pem"])
        .output()
        .unwrap();
    text(&out)
}

/// The CRL number `openssl` reads in the DER CRL `file`.
fn crl_number(dir: &Path, file: &str) -> String {
    openssl(
        dir,
        &["crl", "-inform", "DER", "-in", file, "-noout", "-crlnumber"],
    )
    .trim()
    .to_owned()
}

#[test]
fn the_root_machine_holding_only_the_root_signs_its_crl_and_ocsp() {
    // The root machine: root.pem and its key (a file), its own configuration and database,
    // nothing of the issuing CA.
    let root_machine = tempfile::tempdir().unwrap();
    let root = root_machine.path();
    write_config(
        root,
        "[server]\npublic_url = \"https://ca.example.kz\"\n[ca]\ndir = \"root-ca\"\n",
    );
    tamga_ok(root, &["root", "init", "--operator", "root-officer"]);

    // The server: production, its keys in files.
    let server_machine = tempfile::tempdir().unwrap();
    let server = server_machine.path();
    let issuer = consent_issuer();
    std::fs::copy(
        issuer.path().join("certs-dev/digital_id_dev.pub.pem"),
        server.join("digital-id.pub.pem"),
    )
    .unwrap();
    write_config(
        server,
        "mode = \"production\"\n[digital_id]\nkeys = [\"digital-id.pub.pem\"]\n[ca]\n\
         dir = \"pki\"\nissuer_id = \"nca_rsa\"\n",
    );
    tamga_ok(server, &["ca", "request-issuing", "--out", "issuing.csr"]);
    std::fs::copy(server.join("issuing.csr"), root.join("issuing.csr")).unwrap();
    let signed = tamga_ok(
        root,
        &[
            "root",
            "sign-issuing",
            "--csr",
            "issuing.csr",
            "--out",
            "issuing.pem",
            "--operator",
            "root-officer",
        ],
    );
    let serial = field(&signed, "serial");
    // The register keeps a copy of what the root signed, readable by all.
    let kept = root.join(format!("root-ca/issued/{serial}.pem"));
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        std::fs::read(root.join("issuing.pem")).unwrap()
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&kept).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644, "{signed}");
    std::fs::copy(root.join("issuing.pem"), server.join("issuing.pem")).unwrap();
    std::fs::copy(root.join("root-ca/root.pem"), server.join("pki/root.pem")).unwrap();
    tamga_ok(server, &["ca", "install-issuing", "--cert", "issuing.pem"]);
    tamga_ok(server, &["ca", "init-ocsp"]);
    // What the root machine holds: the root, its key, its register; nothing else.
    let mut held: Vec<String> = std::fs::read_dir(root.join("root-ca"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    held.sort();
    assert_eq!(held, ["issued", "root.key.pem", "root.pem"]);

    // The first root CRL and OCSP batch of the new CA, made on the root machine.
    let made = tamga_ok(root, &["root", "crl", "--out", "root-1.crl"]);
    assert!(made.contains("root CRL number 1"), "{made}");
    assert_eq!(crl_number(root, "root-1.crl"), "crlNumber=0x01");
    let made = tamga_ok(root, &["root", "ocsp", "--out", "batch-1.pem"]);
    assert!(made.contains(&format!("{serial} good")), "{made}");
    // Numbers only go up: a number below the last one signed is refused.
    let lower = run(tamga(root).args(["root", "crl", "--out", "x.crl", "--number", "0"]));
    refused(&lower, &["below root CRL number 1"]);
    assert!(!root.join("x.crl").exists());

    for file in ["root-1.crl", "batch-1.pem"] {
        std::fs::copy(root.join(file), server.join(file)).unwrap();
    }
    let imported = tamga_ok(server, &["crl", "import", "root-1.crl"]);
    assert!(imported.contains("number 1"), "{imported}");
    let imported = tamga_ok(server, &["ocsp", "import", "batch-1.pem"]);
    assert!(imported.contains(&format!("{serial} good")), "{imported}");

    // A citizen's certificate verifies with the CRLs of the whole path, from the server.
    let srv = Server::start(server, &[]);
    let created = enroll_pair(&srv, server, issuer.path());
    let leaf = created["certificates"][0]["pem"].as_str().unwrap();
    std::fs::write(server.join("leaf.pem"), leaf).unwrap();
    let verify_path = || {
        fetch_crl(
            server,
            &format!("{}/crl/root.crl", srv.base),
            "root.crl.pem",
        );
        fetch_crl(
            server,
            &format!("{}/crl/nca_rsa.crl", srv.base),
            "issuing.crl.pem",
        );
        let out = crate::support::openssl_command()
            .current_dir(server)
            .args(["verify", "-crl_check_all", "-CAfile", "pki/root.pem"])
            .args(["-untrusted", "pki/nca_rsa.pem"])
            .args(["-CRLfile", "root.crl.pem", "-CRLfile", "issuing.crl.pem"])
            .arg("leaf.pem")
            .output()
            .unwrap();
        text(&out)
    };
    let verified = verify_path();
    assert!(verified.contains("leaf.pem: OK"), "{verified}");
    let said = ask_root_ocsp(server, &srv.base);
    assert!(said.contains("Response verify OK"), "{said}");
    assert!(said.contains("pki/nca_rsa.pem: good"), "{said}");

    // The issuing CA revoked on the root machine: refused for a serial the root did not sign,
    // and the second time.
    let unknown = run(tamga(root).args([
        "root",
        "revoke-issuing",
        "--serial",
        "0123456789ABCDEF",
        "--reason",
        "keyCompromise",
    ]));
    assert_eq!(unknown.status.code(), Some(4), "{}", text(&unknown));
    let revoke = [
        "root",
        "revoke-issuing",
        "--serial",
        &serial,
        "--reason",
        "keyCompromise",
        "--operator",
        "root-officer",
    ];
    tamga_ok(root, &revoke);
    refused(&run(tamga(root).args(revoke)), &["already revoked"]);
    // The next CRL (number 2) lists it; the next batch says `revoked` (a second later, so
    // that the server takes it as newer).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let made = tamga_ok(root, &["root", "crl", "--out", "root-2.crl"]);
    assert!(made.contains("root CRL number 2"), "{made}");
    assert_eq!(crl_number(root, "root-2.crl"), "crlNumber=0x02");
    let made = tamga_ok(root, &["root", "ocsp", "--out", "batch-2.pem"]);
    assert!(made.contains(&format!("{serial} revoked")), "{made}");
    for file in ["root-2.crl", "batch-2.pem"] {
        std::fs::copy(root.join(file), server.join(file)).unwrap();
    }
    tamga_ok(server, &["crl", "import", "root-2.crl"]);
    tamga_ok(server, &["ocsp", "import", "batch-2.pem"]);
    let listed = openssl(
        server,
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "root-2.crl",
            "-noout",
            "-text",
        ],
    );
    assert!(
        listed.contains(&format!("Serial Number: {serial}")),
        "{listed}"
    );
    let verified = verify_path();
    assert!(
        verified.contains("certificate revoked") && verified.contains("at 1 depth"),
        "{verified}"
    );
    let said = ask_root_ocsp(server, &srv.base);
    assert!(said.contains("Response verify OK"), "{said}");
    assert!(said.contains("pki/nca_rsa.pem: revoked"), "{said}");
    assert!(said.contains("Reason: keyCompromise"), "{said}");

    // Each step in the root machine's audit log, and the chain intact.
    assert_eq!(
        audit_actions(root),
        [
            "root.generated",
            "root.issuing_signed",
            "root.crl_signed",
            "root.ocsp_signed",
            "root.issuing_revoked",
            "root.crl_signed",
            "root.ocsp_signed",
        ]
    );
    tamga_ok(root, &["audit", "verify"]);
}
