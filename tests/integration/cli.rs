//! `tamga config check`, `tamga ca init|show` and `tamga serve`'s start-up refusals as an operator meets them.

use std::path::Path;

use crate::support::{run, tamga, text, verify_chain};

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).unwrap();
}

/// `tamga config check` refuses the configuration `body`, written to `name`, with exit 3,
/// saying each of `needles`.
fn assert_config_refused(dir: &Path, name: &str, body: &str, needles: &[&str]) {
    write(dir, name, body);
    let (code, out) = check(dir, name);
    assert_eq!(code, 3, "{out}");
    for needle in needles {
        assert!(out.contains(needle), "{out}");
    }
}

fn check(dir: &Path, config: &str) -> (i32, String) {
    let out = run(tamga(dir).args(["config", "check", "--config", config]));
    (out.status.code().unwrap_or(-1), text(&out))
}

/// `tamga config check` of the default configuration with `key=value` in the environment.
fn check_with_env(dir: &Path, key: &str, value: &str) -> std::process::Output {
    run(tamga(dir).args(["config", "check"]).env(key, value))
}

#[test]
fn config_check_accepts_the_committed_development_config() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let committed = repo.join("config/tamga.toml");
    // --config given before the subcommand, run where no hierarchy exists yet.
    let out = run(tamga(dir.path())
        .arg("--config")
        .arg(&committed)
        .args(["config", "check"]));
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("configuration OK"), "{shown}");
    assert!(
        shown.contains("will generate a development hierarchy"),
        "{shown}"
    );
}

#[test]
fn config_check_rejects_an_unknown_key_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    assert_config_refused(
        dir.path(),
        "t.toml",
        "mode = \"dev\"\n[server]\nbind = \"127.0.0.1:8080\"\nlisten_backlog = 5\n",
        &["listen_backlog", "t.toml"],
    );

    assert_config_refused(dir.path(), "top.toml", "mod = \"dev\"\n", &["`mod`"]);
}

#[test]
fn config_check_rejects_a_bad_url_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    assert_config_refused(
        dir.path(),
        "t.toml",
        "[server]\npublic_url = \"htp//pki.example.kz\"\n",
        &["server.public_url", "htp//pki.example.kz"],
    );

    assert_config_refused(
        dir.path(),
        "db.toml",
        "[database]\nurl = \"mysql://localhost/tamga\"\n",
        &["database.url"],
    );
}

#[test]
fn config_check_rejects_a_missing_key_file_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    assert_config_refused(
        dir.path(),
        "trust.toml",
        "[digital_id]\nkeys = [\"keys/digital-id-2026.pem\"]\n",
        &["digital_id.keys", "keys/digital-id-2026.pem"],
    );

    // Production never generates keys: an empty CA directory is a missing key file.
    assert_config_refused(
        dir.path(),
        "prod.toml",
        "mode = \"production\"\n[ca]\ndir = \"pki\"\n",
        &["missing key file", "pki/nca_rsa_dev.key.pem"],
    );
}

#[test]
fn config_check_rejects_a_key_file_that_is_not_a_key() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "junk.pem", "hello");
    let config = "[digital_id]\nkeys = [\"junk.pem\"]\n";
    assert_config_refused(
        dir.path(),
        "t.toml",
        config,
        &["junk.pem", "PEM public key"],
    );
}

#[test]
fn explicit_config_path_must_exist_and_environment_overrides_apply() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = check(dir.path(), "absent.toml");
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("absent.toml"), "{out}");

    // No file at the default path: the embedded defaults, overridden from the environment.
    let out = check_with_env(dir.path(), "TAMGA_SERVER__BIND", "127.0.0.1:9443");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("127.0.0.1:9443"), "{}", text(&out));
    assert!(text(&out).contains("embedded defaults"), "{}", text(&out));

    let out = check_with_env(dir.path(), "TAMGA_SERVER__BINDADDR", "x");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("TAMGA_SERVER__BINDADDR"),
        "{}",
        text(&out)
    );

    let out = check_with_env(dir.path(), "TAMGA_MODE", "staging");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("staging"), "{}", text(&out));
}

#[test]
fn ca_init_never_overwrites_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(tamga(dir.path()).args(["ca", "init", "--dev"]));
    assert!(out.status.success(), "{}", text(&out));
    let root = std::fs::read(dir.path().join("certs-dev/root.pem")).unwrap();

    let out = run(tamga(dir.path()).args(["ca", "init", "--dev"]));
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("--force"), "{}", text(&out));
    assert_eq!(
        std::fs::read(dir.path().join("certs-dev/root.pem")).unwrap(),
        root
    );

    let out = run(tamga(dir.path()).args(["ca", "init", "--dev", "--force"]));
    assert!(out.status.success(), "{}", text(&out));
    assert_ne!(
        std::fs::read(dir.path().join("certs-dev/root.pem")).unwrap(),
        root
    );

    let out = run(tamga(dir.path()).args(["ca", "show", "--json"]));
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["issuing"]["key_type"], "rsa2048");
    assert_eq!(doc["ocsp_responder"]["key_type"], "ec-p256");
    assert!(doc["issuing"]["subject"]
        .as_str()
        .unwrap()
        .contains("ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (RSA) DEV"));

    // Without --dev nothing is generated.
    let out = run(tamga(dir.path()).args(["ca", "init"]));
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
}

#[test]
fn ca_init_generates_the_selected_key_types() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(tamga(dir.path())
        .args(["ca", "init", "--dev"])
        .env("TAMGA_CA__ISSUING_KEY_TYPE", "ec-p384")
        .env("TAMGA_CA__ISSUER_ID", "nca_ec_dev"));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(tamga(dir.path())
        .args(["ca", "show", "--json"])
        .env("TAMGA_CA__ISSUER_ID", "nca_ec_dev"));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["issuing"]["key_type"], "ec-p384", "{doc}");
    assert!(doc["issuing"]["subject"]
        .as_str()
        .unwrap()
        .contains("(ECDSA) DEV"));
    verify_chain(
        dir.path(),
        "certs-dev/nca_ec_dev.pem",
        &["certs-dev/nca_ec_dev.pem", "certs-dev/ocsp_nca_ec_dev.pem"],
    );
}

#[test]
fn serve_names_the_address_it_cannot_listen_on() {
    let dir = tempfile::tempdir().unwrap();
    // The port is held by another listener for the whole run.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = run(&mut crate::support::serve_command(dir.path(), port, "http"));
    let shown = text(&out);
    assert!(!out.status.success(), "{shown}");
    assert!(
        shown.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{shown}"
    );
    drop(taken);
}
