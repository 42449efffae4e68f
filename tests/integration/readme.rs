//! The README's commands, run as written (with `cargo run -q --bin X --` standing for the
//! binaries this test run built), against a server started as the README says, on its
//! embedded defaults in a fresh directory, twice in a row in the same directory: the
//! walkthrough can be repeated, and each run's e-mails arrive; the re-issue leaves the old
//! pair superseded and the new one good. If the README drifts from the code, this fails.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{client, tamga_bin, text};

/// The README's tests use the ports it names (8080, the agent's 13580): one at a time.
static README_PORTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn readme() -> String {
    std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The ```sh blocks of the README's sections "Run the server", "Try it" and "Re-issue".
fn walkthrough() -> Vec<String> {
    sh_blocks(&["Run the server", "Try it", "Re-issue"])
}

/// The ```sh blocks of the README's `sections`, in order.
fn sh_blocks(sections: &[&str]) -> Vec<String> {
    let readme = readme();
    let mut blocks = Vec::new();
    let mut section = String::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            section = title.to_owned();
            continue;
        }
        if !sections.contains(&section.as_str()) {
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
    let _ports = README_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let blocks = walkthrough();
    assert!(blocks.len() >= 5, "{blocks:?}");
    assert_eq!(
        blocks[0].trim(),
        "cargo run -- serve",
        "the first command starts the server"
    );
    let dir = tempfile::tempdir().unwrap();
    let server = readme_server(dir.path());
    let script = runnable(&blocks[1..]);
    // The address the walkthrough gives `tamga-enroll --email`.
    let email = script
        .split("--email ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the walkthrough gives no --email: {script}"))
        .to_owned();
    let mut runs = Vec::new();
    for run in 1..=2 {
        let out = run_script(dir.path(), &script);
        let shown = text(&out);
        // Each run leaves one AUTH and one SIGN container, its own.
        let containers = p12s(&dir.path().join("keys"));
        // This run's e-mail, and every earlier run's: one "issued" message each.
        let mail = dir.path().join("data/mail");
        let issued = wait_for_mail(&mail, &email, "Your certificates were issued", run);
        let revoked = wait_for_mail(&mail, &email, "Your certificate was revoked", run);
        runs.push((out.status.success(), shown, containers, (issued, revoked)));
    }
    drop(server);
    for (run, (success, shown, containers, mails)) in runs.iter().enumerate() {
        let run = run + 1;
        assert!(success, "run {run}: the walkthrough failed:\n{shown}");
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
            "Subject: Your certificates were issued",
            "Subject: Your certificate was revoked",
            // The re-issue: the old AUTH certificate superseded, the new one good, the old
            // containers kept.
            "old.pem: revoked",
            "Reason: superseded",
            "new.pem: good",
            ".p12.superseded",
        ] {
            assert!(
                shown.contains(expected),
                "run {run}: {expected:?} missing from:\n{shown}"
            );
        }
        assert_eq!(containers.len(), 2, "run {run}: {containers:?}");
        assert_eq!(
            *mails,
            (run, run),
            "run {run}: the (issued, revoked) e-mails to {email} in data/mail"
        );
    }
    assert_ne!(
        runs[0].2, runs[1].2,
        "the second run wrote its own containers, not the first run's"
    );
    // Everything the server and the walkthrough wrote is kept out of git by the repository's
    // .gitignore (`certs-dev/` ignores its own contents; `config/` is the test's copy).
    let ignore =
        std::fs::read_to_string(format!("{}/.gitignore", env!("CARGO_MANIFEST_DIR"))).unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "config" || name == "certs-dev" {
            continue;
        }
        let is_dir = entry.path().is_dir();
        assert!(
            ignored(&ignore, &name, is_dir),
            "the walkthrough writes {name}{}, which .gitignore does not cover",
            if is_dir { "/" } else { "" }
        );
    }
}

/// The README's `blocks` as one script, with `cargo run -q --bin X --` replaced by the
/// binaries this test run built; every command in it runnable here.
fn runnable(blocks: &[String]) -> String {
    let script = blocks
        .join("\n")
        .replace(
            "cargo run -q --bin tamga-enroll --",
            &tamga_bin()
                .with_file_name("tamga-enroll")
                .display()
                .to_string(),
        )
        .replace(
            "cargo run -q --bin tamga --",
            &tamga_bin().display().to_string(),
        );
    assert!(
        !script.contains("cargo "),
        "every command is runnable here: {script}"
    );
    script
}

/// `script` run by bash in `dir` as a reader runs it: without the caller's `TAMGA_*`
/// variables, and with OpenSSL configured by the binaries themselves.
fn run_script(dir: &Path, script: &str) -> std::process::Output {
    let mut bash = Command::new("bash");
    bash.current_dir(dir)
        .args(["-euo", "pipefail", "-c", script])
        .env_remove("OPENSSL_CONF");
    for (key, _) in std::env::vars() {
        if key.starts_with("TAMGA_") {
            bash.env_remove(key);
        }
    }
    bash.output().unwrap()
}

/// `tamga serve` as the README starts it: in `dir` holding a copy of the repository's
/// `config/tamga.toml`, on its embedded defaults (port 8080, dev mode); waits until ready.
/// Killed when dropped, also when the test fails.
fn readme_server(dir: &Path) -> ReadmeServer {
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::copy(
        format!("{}/config/tamga.toml", env!("CARGO_MANIFEST_DIR")),
        dir.join("config/tamga.toml"),
    )
    .unwrap();
    if std::net::TcpListener::bind("127.0.0.1:8080").is_err() {
        panic!("port 8080, which the README uses, is taken on this machine");
    }
    let mut server = Command::new(tamga_bin());
    server
        .current_dir(dir)
        .env_remove("OPENSSL_CONF")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("TAMGA_") {
            server.env_remove(key);
        }
    }
    let server = ReadmeServer(server.spawn().unwrap());
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
    server
}

/// The README's `tamga serve`.
struct ReadmeServer(std::process::Child);

impl Drop for ReadmeServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether a top-level `name` matches one of the anchored patterns of `gitignore` (`/name`,
/// `/name/` for a directory, `/*.ext`), the only forms the repository's file uses.
fn ignored(gitignore: &str, name: &str, is_dir: bool) -> bool {
    gitignore.lines().map(str::trim).any(|pattern| {
        let Some(pattern) = pattern.strip_prefix('/') else {
            return false;
        };
        let (pattern, dir_only) = match pattern.strip_suffix('/') {
            Some(p) => (p, true),
            None => (pattern, false),
        };
        if dir_only && !is_dir {
            return false;
        }
        match pattern.strip_prefix('*') {
            Some(suffix) => !pattern.contains('/') && name.ends_with(suffix),
            None => pattern == name,
        }
    })
}

/// The `.p12` files in `dir`, sorted.
fn p12s(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".p12"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// How many e-mails to `email` with `subject` are in `mail_dir`, waiting (a little) until
/// there are `expected`: the outbox delivers them a moment after the event.
fn wait_for_mail(mail_dir: &Path, email: &str, subject: &str, expected: usize) -> usize {
    let subject = format!("Subject: {subject}");
    let count = || {
        std::fs::read_dir(mail_dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .filter(|m| {
                        m.lines().any(|l| l.starts_with("To:") && l.contains(email))
                            && m.lines().any(|l| l == subject)
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while count() < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    count()
}

/// The README's "Try it in a browser" as written: the server and the agent started by its
/// commands (with `HOME` a fresh directory, so `~/Documents` is the test's), the page it
/// names opened in Chromium, and the journey walked to the two containers.
#[test]
fn the_readme_browser_walkthrough_works_as_written() {
    let test = "browser_readme";
    if !crate::browser::webdriver::browser_available(test) {
        return;
    }
    let _ports = README_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let blocks = sh_blocks(&["Try it in a browser"]);
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    assert_eq!(
        blocks[0].trim(),
        "cargo run -- serve",
        "the server, as above"
    );
    let readme = readme();
    let section = readme
        .split("\n## Try it in a browser\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap();
    let url = section
        .split('<')
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .unwrap_or_else(|| panic!("the page to open, as <URL>: {section}"));
    let base = "http://127.0.0.1:8080";
    assert_eq!(url, format!("{base}/dev/digital-id"));
    if std::net::TcpListener::bind("127.0.0.1:13580").is_err() {
        panic!("port 13580, where the pages look for the agent, is taken on this machine");
    }

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let server = readme_server(dir.path());
    let script = blocks[1].replace(
        "cargo run -q --bin tamga-enroll --",
        &tamga_bin()
            .with_file_name("tamga-enroll")
            .display()
            .to_string(),
    );
    assert!(!script.contains("cargo "), "runnable here: {script}");
    let agent = BackgroundScript::start(dir.path(), &home, &script);
    agent.wait_for_agent(base);

    let mut desk = crate::browser::Desk::new(
        test,
        base,
        dir.path(),
        13580,
        crate::browser::webdriver::Options::default(),
    );
    desk.documents = home.join("Documents").canonicalize().unwrap();
    let iin = crate::browser::fresh_iin();
    desk.digital_id(&iin, true);
    assert!(desk.browser.url().starts_with(base));
    desk.language("kk");
    let (folder, result) = desk.walk("kk", None, "rsa2048", "keys");
    assert!(folder.starts_with(&desk.documents));
    let files = crate::browser::check_containers(
        desk.scratch.path(),
        &folder,
        &iin,
        "rsa2048",
        dir.path(),
        base,
        true,
    );
    for file in &files {
        assert!(result.contains(file.as_str()), "{file} in {result}");
    }
    drop(desk);
    drop(agent);
    drop(server);
}

/// A README block run by `bash` in the background, in a process group of its own that is
/// ended (by that group's id) when dropped.
struct BackgroundScript {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl BackgroundScript {
    fn start(dir: &Path, home: &Path, script: &str) -> BackgroundScript {
        use std::os::unix::process::CommandExt;
        let log = dir.join("agent.log");
        let mut bash = Command::new("bash");
        bash.current_dir(dir)
            .args(["-euo", "pipefail", "-c", script])
            .env("HOME", home)
            .env_remove("XDG_STATE_HOME")
            .env_remove("OPENSSL_CONF")
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
            ))
            .process_group(0);
        for (key, _) in std::env::vars() {
            if key.starts_with("TAMGA_") {
                bash.env_remove(key);
            }
        }
        BackgroundScript {
            child: bash.spawn().unwrap(),
            log,
        }
    }

    /// Wait until the agent answers the pages of `origin` on its default port.
    fn wait_for_agent(&self, origin: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answered = client()
                .get("http://127.0.0.1:13580/agent/v1/version")
                .header("Origin", origin)
                .send()
                .is_ok_and(|r| r.status() == 200);
            if answered {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the README's agent did not answer: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for BackgroundScript {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// The README's GOST walkthrough ("Try it with a GOST signing key"), run as written against a
/// server started as the README says: the client writes an RSA AUTH container and a
/// `GOST512_` SIGN container, `openssl` with the engine opens the GOST one with the password,
/// and the GOST CA's responder answers `good`, then `revoked`. The response the walkthrough
/// keeps is checked here, through the converter, against its responder certificate, which
/// is checked against the GOST issuing CA, which certified the SIGN certificate.
#[test]
fn the_readme_gost_walkthrough_works_as_written() {
    if !crate::gost::gost_ready("the_readme_gost_walkthrough_works_as_written") {
        return;
    }
    let _ports = README_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let blocks = sh_blocks(&["Try it with a GOST signing key"]);
    assert!(blocks.len() >= 3, "{blocks:?}");
    let dir = tempfile::tempdir().unwrap();
    // The walkthrough runs in the repository, where config/openssl-gost.cnf is.
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::copy(
        format!("{}/config/openssl-gost.cnf", env!("CARGO_MANIFEST_DIR")),
        dir.path().join("config/openssl-gost.cnf"),
    )
    .unwrap();
    let server = readme_server(dir.path());
    let out = run_script(dir.path(), &runnable(&blocks));
    drop(server);
    let shown = text(&out);
    assert!(out.status.success(), "the walkthrough failed:\n{shown}");
    for expected in [
        "AUTH_RSA256_",
        "GOST512_",
        "ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (GOST) DEV",
        "sign.pem: good",
        "\"status\":\"revoked\"",
        "sign.pem: revoked",
    ] {
        assert!(
            shown.contains(expected),
            "{expected:?} missing from:\n{shown}"
        );
    }
    let containers = p12s(&dir.path().join("gost-keys"));
    assert_eq!(containers.len(), 2, "{containers:?}");
    // The AUTH container carries the RSA CA's chain alone, not the GOST CA's.
    let auth = containers
        .iter()
        .find(|c| c.starts_with("AUTH_"))
        .expect("an AUTH container");
    let chain = crate::support::openssl(
        &dir.path().join("gost-keys"),
        &[
            "pkcs12",
            "-in",
            auth,
            "-passin",
            "file:../password.txt",
            "-nokeys",
            "-cacerts",
        ],
    );
    assert!(chain.contains("(RSA) DEV"), "{chain}");
    assert!(!chain.contains("(GOST)"), "{chain}");
    // The `good` answer, checked as NCA's software would check it.
    use tamga::gost::SignedArtefact;
    let pem_der = |path: &Path| {
        let pem = std::fs::read(path).unwrap();
        openssl::x509::X509::from_pem(&pem)
            .unwrap()
            .to_der()
            .unwrap()
    };
    let ca = pem_der(&dir.path().join("certs-dev/nca_gost_dev.pem"));
    let sign = pem_der(&dir.path().join("sign.pem"));
    SignedArtefact::certificate(&sign)
        .unwrap()
        .verify_by(&ca)
        .unwrap();
    let response = std::fs::read(dir.path().join("gost-ocsp.der")).unwrap();
    let response = SignedArtefact::ocsp_response(&response).unwrap();
    let responder = response
        .certificates()
        .first()
        .expect("the GOST responder's certificate is in its answer")
        .clone();
    response.verify_by(&responder).unwrap();
    SignedArtefact::certificate(&responder)
        .unwrap()
        .verify_by(&ca)
        .unwrap();
}
