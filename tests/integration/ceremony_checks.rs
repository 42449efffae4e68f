//! What the key ceremony's steps check before they change anything, and what they leave
//! behind when they refuse or fail: a failed `root init` or `ca request-issuing` leaves no key
//! (file or token object), the root key file is written with mode 0600, `root sign-issuing`
//! refuses a validity past the root's, `ca install-issuing` refuses a certificate that is not
//! valid now and warns about URLs the server's configuration would not write,
//! `ca request-issuing --force` moves the installed certificate aside (the server refuses to
//! start naming it, then starts once the new certificate and responder are in place), `ca
//! init` records one actor, and the ceremony commands' `--operator` help says what happens
//! without a login name.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use super::ceremony::{audit_actions, audit_entries, field, tamga_ok, token_key, write_config};
use crate::support::{openssl, run, softhsm_available, softhsm_token, tamga, text, Server};

/// `out` exited with `code` and said every one of `words`.
fn exited(out: &Output, code: i32, words: &[&str]) {
    let said = text(out);
    assert_eq!(out.status.code(), Some(code), "{said}");
    for w in words {
        assert!(said.contains(w), "{w:?} not in: {said}");
    }
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn root_machine(dir: &Path, extra: &str, init: &[&str]) {
    write_config(dir, &format!("{extra}[ca]\ndir = \"root-ca\"\n"));
    let mut args = vec!["root", "init"];
    args.extend_from_slice(init);
    tamga_ok(dir, &args);
}

/// A production server in `dir` with file keys in `pki`, trusting a Digital ID key made with
/// openssl (production has no development key).
fn server_machine(dir: &Path) {
    let key = dir.join("digital-id.key.pem");
    let out = crate::support::openssl_command()
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .arg("-out")
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    openssl(
        dir,
        &[
            "pkey",
            "-in",
            "digital-id.key.pem",
            "-pubout",
            "-out",
            "digital-id.pub.pem",
        ],
    );
    write_config(
        dir,
        "mode = \"production\"\n[digital_id]\nkeys = [\"digital-id.pub.pem\"]\n[ca]\n\
         dir = \"pki\"\nissuer_id = \"nca_rsa\"\n",
    );
}

/// `root sign-issuing` on `root` of the request `csr` (a path in `server`), the certificate
/// copied back to `server/<out>`.
fn sign(root: &Path, server: &Path, csr: &str, out: &str, extra: &[&str]) -> Output {
    std::fs::copy(server.join(csr), root.join(csr)).unwrap();
    let result = run(tamga(root)
        .args(["root", "sign-issuing", "--csr", csr, "--out", out])
        .args(extra));
    if result.status.success() {
        std::fs::copy(root.join(out), server.join(out)).unwrap();
    }
    result
}

#[test]
fn root_init_writes_its_key_file_with_mode_0600_and_a_bad_name_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_config(dir, "[ca]\ndir = \"root-ca\"\n");
    let too_long = "Ә".repeat(65);
    for name in ["", " ROOT", too_long.as_str()] {
        let out = run(tamga(dir).args(["root", "init", "--name", name]));
        exited(&out, 5, &["--name", "1 to 64 characters"]);
        assert!(
            names(&dir.join("root-ca")).is_empty(),
            "{:?}",
            names(&dir.join("root-ca"))
        );
    }
    // Nothing was done, so nothing was audited.
    assert!(audit_actions(dir).is_empty());
    let made = tamga_ok(dir, &["root", "init", "--name", &"Ә".repeat(64)]);
    let key = std::fs::metadata(dir.join("root-ca/root.key.pem")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600, "{made}");
    assert_eq!(names(&dir.join("root-ca")), ["root.key.pem", "root.pem"]);
    assert_eq!(audit_actions(dir), ["root.generated"]);
}

#[test]
fn failed_steps_leave_no_key_in_the_token() {
    if !softhsm_available("failed_steps_leave_no_key_in_the_token") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    softhsm_token(dir, "ceremony");
    let key = |which: &str, label: &str| token_key(which, "ceremony", label);
    write_config(
        dir,
        &format!(
            "mode = \"production\"\n[ca]\ndir = \"pki\"\nissuer_id = \"nca_rsa\"\n{}{}",
            key("root_key", "root"),
            key("issuing_key", "issuing")
        ),
    );
    // A bad name, a missing directory, an existing --out: refused before the token is
    // touched. Had a key been left under the label, the step without --force that follows
    // would be refused (the token already holds objects with this label).
    exited(
        &run(tamga(dir).args(["root", "init", "--name", ""])),
        5,
        &["--name"],
    );
    tamga_ok(dir, &["root", "init"]);
    std::fs::write(dir.join("taken.csr"), "not mine").unwrap();
    for (args, code) in [
        (&["--name", ""][..], 5),
        (&["--out", "no-such-dir/issuing.csr"][..], 2),
        (&["--out", "taken.csr"][..], 5),
    ] {
        let mut all = vec!["ca", "request-issuing"];
        if !args.contains(&"--out") {
            all.extend(["--out", "issuing.csr"]);
        }
        all.extend_from_slice(args);
        exited(&run(tamga(dir).args(&all)), code, &[]);
        assert!(!dir.join("issuing.csr").exists());
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("taken.csr")).unwrap(),
        "not mine"
    );
    let made = tamga_ok(dir, &["ca", "request-issuing", "--out", "issuing.csr"]);
    assert!(made.contains(r#"key "issuing""#), "{made}");
    assert_eq!(
        audit_actions(dir),
        ["root.generated", "ca.issuing_requested"]
    );
}

#[test]
fn request_issuing_checks_its_inputs_before_making_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_config(
        dir,
        "mode = \"production\"\n[ca]\ndir = \"pki\"\nissuer_id = \"nca_rsa\"\n",
    );
    std::fs::write(dir.join("taken.csr"), "not mine").unwrap();
    std::fs::create_dir(dir.join("a-directory")).unwrap();
    for (args, code, said) in [
        (
            &["--out", "no-such-dir/issuing.csr"][..],
            2,
            "does not exist",
        ),
        (&["--out", "taken.csr"][..], 5, "--force"),
        (&["--out", "a-directory"][..], 5, "is a directory"),
        (&["--out", "issuing.csr", "--name", ""][..], 5, "--name"),
    ] {
        let mut all = vec!["ca", "request-issuing"];
        all.extend_from_slice(args);
        exited(&run(tamga(dir).args(&all)), code, &[said]);
        assert!(!dir.join("pki/nca_rsa.key.pem").exists(), "{args:?}");
        assert!(!dir.join("issuing.csr").exists(), "{args:?}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("taken.csr")).unwrap(),
        "not mine"
    );
    assert!(audit_actions(dir).is_empty());
}

#[test]
fn sign_issuing_refuses_a_validity_past_the_root_and_writes_nothing() {
    let root_dir = tempfile::tempdir().unwrap();
    let root = root_dir.path();
    root_machine(root, "", &["--validity-years", "2"]);
    let server_dir = tempfile::tempdir().unwrap();
    let server = server_dir.path();
    server_machine(server);
    tamga_ok(server, &["ca", "request-issuing", "--out", "issuing.csr"]);
    let before = names(root);
    let out = sign(
        root,
        server,
        "issuing.csr",
        "issuing.pem",
        &["--validity-years", "5"],
    );
    exited(&out, 5, &["outlive the root", "--validity-years"]);
    assert!(!root.join("issuing.pem").exists());
    let mut expected = before.clone();
    expected.push("issuing.csr".to_owned());
    expected.sort();
    assert_eq!(names(root), expected);
    assert_eq!(names(&root.join("root-ca")), ["root.key.pem", "root.pem"]);
    assert_eq!(audit_actions(root), ["root.generated"]);
    // One year fits inside the root's two.
    let out = sign(
        root,
        server,
        "issuing.csr",
        "issuing.pem",
        &["--validity-years", "1"],
    );
    assert!(out.status.success(), "{}", text(&out));
}

/// Sign the request `csr` in `server` with the root of `root` by `openssl ca`, with the
/// issuing-CA profile and the validity `start`..`end` (`YYYYMMDDHHMMSSZ`), into `server/out`.
fn openssl_issuing(root: &Path, server: &Path, csr: &str, out: &str, start: &str, end: &str) {
    let work = root.join(format!("openssl-{out}"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("index.txt"), "").unwrap();
    std::fs::write(work.join("serial"), "7A3B\n").unwrap();
    std::fs::write(
        work.join("ca.cnf"),
        "[ca]\ndefault_ca = root\n[root]\ndatabase = index.txt\nnew_certs_dir = .\n\
         serial = serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\n\
         email_in_dn = no\n[any]\ncommonName = supplied\ncountryName = optional\n\
         [issuing]\nbasicConstraints = critical,CA:TRUE,pathlen:0\n\
         keyUsage = critical,keyCertSign,cRLSign\n\
         certificatePolicies = 1.2.398.3.3.1.1\n\
         crlDistributionPoints = URI:http://127.0.0.1:8080/crl/root.crl\n\
         subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
    )
    .unwrap();
    let result = crate::support::openssl_command()
        .current_dir(&work)
        .args([
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-extensions",
            "issuing",
        ])
        .args([
            "-preserveDN",
            "-notext",
            "-startdate",
            start,
            "-enddate",
            end,
        ])
        .arg("-cert")
        .arg(root.join("root-ca/root.pem"))
        .arg("-keyfile")
        .arg(root.join("root-ca/root.key.pem"))
        .arg("-in")
        .arg(server.join(csr))
        .arg("-out")
        .arg(server.join(out))
        .output()
        .unwrap();
    assert!(result.status.success(), "openssl ca: {}", text(&result));
}

#[test]
fn install_issuing_refuses_a_certificate_not_valid_now_and_warns_about_other_urls() {
    let root_dir = tempfile::tempdir().unwrap();
    let root = root_dir.path();
    // The root machine's public URL is not the server's (the server keeps the default).
    root_machine(
        root,
        "[server]\npublic_url = \"https://ca.example.kz\"\n",
        &[],
    );
    let server_dir = tempfile::tempdir().unwrap();
    let server = server_dir.path();
    server_machine(server);
    tamga_ok(server, &["ca", "request-issuing", "--out", "issuing.csr"]);
    std::fs::copy(root.join("root-ca/root.pem"), server.join("pki/root.pem")).unwrap();
    // A certificate that cannot be read is a usage error.
    exited(
        &run(tamga(server).args(["ca", "install-issuing", "--cert", "nothing-here.pem"])),
        2,
        &["--cert"],
    );
    // Signed by the root, of the profile, for the key: but not valid now.
    for (out, start, end) in [
        ("future.pem", "20400101000000Z", "20450101000000Z"),
        ("past.pem", "20200101000000Z", "20210101000000Z"),
    ] {
        openssl_issuing(root, server, "issuing.csr", out, start, end);
        let refused = run(tamga(server).args(["ca", "install-issuing", "--cert", out]));
        exited(&refused, 5, &["not valid now"]);
        assert_eq!(names(&server.join("pki")), ["nca_rsa.key.pem", "root.pem"]);
    }
    assert_eq!(audit_actions(server), ["ca.issuing_requested"]);
    // The root's certificate installs, but its URLs are the root machine's: said, and audited.
    let signed = sign(root, server, "issuing.csr", "issuing.pem", &[]);
    assert!(signed.status.success(), "{}", text(&signed));
    let installed = run(tamga(server).args(["ca", "install-issuing", "--cert", "issuing.pem"]));
    exited(
        &installed,
        0,
        &[
            "warning",
            "https://ca.example.kz/crl/root.crl",
            "http://127.0.0.1:8080/crl/root.crl",
            "[server] public_url",
            "https://ca.example.kz/cps",
            "[ca] cps_url",
        ],
    );
    let entry = audit_entries(server)
        .into_iter()
        .find(|e| e["action"] == "ca.issuing_installed")
        .unwrap();
    let details = entry["details"].to_string();
    assert!(details.contains("https://ca.example.kz/ocsp"), "{entry}");
}

#[test]
fn request_issuing_force_moves_the_certificate_aside_and_the_server_starts_again() {
    let root_dir = tempfile::tempdir().unwrap();
    let root = root_dir.path();
    root_machine(root, "", &[]);
    let server_dir = tempfile::tempdir().unwrap();
    let server = server_dir.path();
    server_machine(server);
    let first = tamga_ok(server, &["ca", "request-issuing", "--out", "issuing.csr"]);
    let signed = sign(root, server, "issuing.csr", "issuing.pem", &[]);
    assert!(signed.status.success(), "{}", text(&signed));
    std::fs::copy(root.join("root-ca/root.pem"), server.join("pki/root.pem")).unwrap();
    let installed = tamga_ok(server, &["ca", "install-issuing", "--cert", "issuing.pem"]);
    // The root machine and the server share their URLs: nothing to warn about.
    assert!(!installed.contains("the certificate's"), "{installed}");
    tamga_ok(server, &["ca", "init-ocsp"]);
    tamga_ok(server, &["config", "check"]);
    let serial = field(&installed, "serial");

    // Without --force the live key stays; with it, the certificate goes aside with its key.
    exited(
        &run(tamga(server).args(["ca", "request-issuing", "--out", "again.csr"])),
        5,
        &["--force"],
    );
    let second = tamga_ok(
        server,
        &["ca", "request-issuing", "--out", "again.csr", "--force"],
    );
    assert_ne!(
        field(&second, "public_key_sha256"),
        field(&first, "public_key_sha256")
    );
    let aside = format!("nca_rsa.pem.{serial}.old");
    assert!(second.contains(&aside), "{second}");
    let pki = names(&server.join("pki"));
    assert!(pki.contains(&aside), "{pki:?}");
    assert!(!pki.contains(&"nca_rsa.pem".to_owned()), "{pki:?}");
    assert!(!pki.iter().any(|n| n.starts_with('.')), "{pki:?}");
    // The server refuses to start, naming the missing certificate (not a key mismatch).
    let check = run(tamga(server).args(["config", "check"]));
    exited(&check, 3, &["nca_rsa.pem"]);
    assert!(!text(&check).contains("do not match"), "{}", text(&check));

    // The new certificate, a new responder, and the server starts.
    let signed = sign(root, server, "again.csr", "again.pem", &[]);
    assert!(signed.status.success(), "{}", text(&signed));
    tamga_ok(server, &["ca", "install-issuing", "--cert", "again.pem"]);
    tamga_ok(server, &["ca", "init-ocsp", "--force"]);
    tamga_ok(server, &["config", "check"]);
    let srv = Server::start(server, &[]);
    assert_eq!(srv.get("/readyz").status(), 200);
    let moved = audit_entries(server)
        .into_iter()
        .filter(|e| e["action"] == "ca.issuing_requested")
        .map(|e| e["details"]["certificate_moved_aside"].clone())
        .collect::<Vec<_>>();
    assert_eq!(moved.len(), 2, "{moved:?}");
    assert!(moved[0].is_null(), "{moved:?}");
    assert!(
        moved[1].as_str().is_some_and(|p| p.ends_with(&aside)),
        "{moved:?}"
    );
}

#[test]
fn ca_init_records_one_actor_and_warns_once_without_a_login_name() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let out = run(tamga(dir)
        .args(["ca", "init", "--dev"])
        .env_remove("USER")
        .env_remove("LOGNAME"));
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("no operator name").count(), 1, "{stderr}");
    let actors: Vec<(String, String)> = audit_entries(dir)
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["actor"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        actors.get(..2),
        Some(
            &[
                (
                    "ca.hierarchy_generated".to_owned(),
                    "operator:unknown".to_owned()
                ),
                (
                    "ca.development_root".to_owned(),
                    "operator:unknown".to_owned()
                ),
            ][..]
        )
    );
    // And the development GOST issuer's hierarchy where the engine is there, by the same actor.
    let further: Vec<&(String, String)> = actors.get(2..).unwrap_or_default().iter().collect();
    let expected = usize::from(tamga::gost::available());
    assert_eq!(further.len(), expected, "{actors:?}");
    assert!(
        further.iter().all(
            |(action, actor)| action == "ca.hierarchy_generated" && actor == "operator:unknown"
        ),
        "{actors:?}"
    );
    let named = tempfile::tempdir().unwrap();
    let out = run(tamga(named.path())
        .args(["ca", "init", "--dev", "--operator", "aigul"])
        .env_remove("USER")
        .env_remove("LOGNAME"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("no operator name"), "{}", text(&out));
    for entry in audit_entries(named.path()) {
        assert_eq!(entry["actor"], "operator:aigul", "{entry}");
    }
}

#[test]
fn the_ceremony_commands_say_who_is_recorded_without_operator() {
    let dir = tempfile::tempdir().unwrap();
    for command in [
        &["ca", "init"][..],
        &["ca", "request-issuing"],
        &["ca", "install-issuing"],
        &["ca", "init-ocsp"],
        &["ca", "revoke-issuer"],
        &["root", "init"],
        &["root", "sign-issuing"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let help = tamga_ok(dir.path(), &args);
        let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains("$USER, else $LOGNAME, else `unknown` with a warning"),
            "{command:?}: {help}"
        );
        assert!(!flat.contains("the OS user"), "{command:?}: {help}");
    }
    let help = tamga_ok(dir.path(), &["ca", "request-issuing", "--help"]);
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("moved aside"), "{help}");
}
