//! The README's commands, run as written (with `cargo run -q --bin X --` standing for the
//! binaries this test run built), against a server started as the README says, on its
//! embedded defaults in a fresh directory. If the README drifts from the code, this fails.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{client, tamga_bin, text};

/// The ```sh blocks of the README's sections "Run the server" and "Try it".
fn walkthrough() -> Vec<String> {
    let readme =
        std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut blocks = Vec::new();
    let mut section = String::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            section = title.to_owned();
            continue;
        }
        if !(section == "Run the server" || section == "Try it") {
            continue;
        }
        match (&mut current, line.trim()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn the_readme_walkthrough_works_as_written() {
    let blocks = walkthrough();
    assert!(blocks.len() >= 5, "{blocks:?}");
    assert_eq!(
        blocks[0].trim(),
        "cargo run -- serve",
        "the first command starts the server"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::copy(
        format!("{}/config/tamga.toml", env!("CARGO_MANIFEST_DIR")),
        dir.path().join("config/tamga.toml"),
    )
    .unwrap();
    if std::net::TcpListener::bind("127.0.0.1:8080").is_err() {
        panic!("port 8080, which the README uses, is taken on this machine");
    }
    let mut server = Command::new(tamga_bin());
    server
        .current_dir(dir.path())
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("TAMGA_") {
            server.env_remove(key);
        }
    }
    let mut server = server.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while client()
        .get("http://127.0.0.1:8080/readyz")
        .send()
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(
            Instant::now() < deadline,
            "the README's server did not become ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let enroll = tamga_bin().with_file_name("tamga-enroll");
    let script = blocks[1..]
        .join("\n")
        .replace(
            "cargo run -q --bin tamga-enroll --",
            &enroll.display().to_string(),
        )
        .replace(
            "cargo run -q --bin tamga --",
            &tamga_bin().display().to_string(),
        );
    assert!(
        !script.contains("cargo "),
        "every command is runnable here: {script}"
    );
    let mut bash = Command::new("bash");
    bash.current_dir(dir.path())
        .args(["-euo", "pipefail", "-c", &script]);
    for (key, _) in std::env::vars() {
        if key.starts_with("TAMGA_") {
            bash.env_remove(key);
        }
    }
    let out = bash.output().unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let shown = text(&out);
    assert!(out.status.success(), "the walkthrough failed:\n{shown}");
    for expected in [
        "\"status\":\"ready\"",
        ": OK",
        "ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (RSA) DEV",
        "AUTH_RSA256_",
        "auth.pem: good",
        "Response verify OK",
        "crlNumber=",
        "\"status\":\"revoked\"",
        "auth.pem: revoked",
        "Delta CRL Indicator",
    ] {
        assert!(
            shown.contains(expected),
            "{expected:?} missing from:\n{shown}"
        );
    }
}
