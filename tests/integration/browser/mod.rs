//! The citizen's journey in a real browser: Debian's Chromium driven through `chromedriver`
//! (W3C WebDriver, `webdriver`) against `tamga serve` and `tamga-enroll agent`, using only the
//! routes and element ids of `docs/citizen-pages.md`. Every step leaves a screenshot under
//! `target/browser-screenshots/<test>/`. Without Chromium or chromedriver the tests report
//! themselves skipped, except where `TAMGA_TEST_REQUIRE_BROWSER` is set (CI).
//!
//! `journey`: the whole journey in Kazakh (RSA) and in Russian (EC, e-mail), the pending
//! path resumed after an operator's approval, the hand-over POSTed from another site.
//! `refusals`: expired and replayed tokens, a password breaking the policy, the agent not
//! running, a foreign page calling the agent. `deployments`: HTTPS with `Secure` cookies, and
//! two instances on one PostgreSQL.

mod client_check;
mod deployments;
mod journey;
mod refusals;
pub mod site;
pub mod webdriver;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::enroll::Env;
use crate::support::{free_port, openssl, run, tamga, tamga_bin, text};
use webdriver::{browser_available, Browser, Options, WAIT};

/// A container password that meets the policy.
pub const PASSWORD: &str = "Secret2026";

/// The page translations, as the server embeds them.
fn translations(lang: &str) -> &'static str {
    match lang {
        "ru" => include_str!("../../../src/api/pages/assets/i18n/ru.json"),
        "en" => include_str!("../../../src/api/pages/assets/i18n/en.json"),
        _ => include_str!("../../../src/api/pages/assets/i18n/kk.json"),
    }
}

/// The text of `key` in `lang` (`kk`, `ru`, `en`), from the pages' own translation files.
pub fn tr(lang: &str, key: &str) -> String {
    let all: Value = serde_json::from_str(translations(lang)).expect("translation JSON");
    all[key]
        .as_str()
        .unwrap_or_else(|| panic!("no translation {key} in {lang}"))
        .to_owned()
}

/// The path of `tamga-enroll`, built with the tests.
pub fn enroll_bin() -> PathBuf {
    tamga_bin().with_file_name("tamga-enroll")
}

/// A running `tamga-enroll agent`, killed when dropped.
pub struct Agent {
    child: Option<Child>,
    pub port: u16,
    /// The first allowed origin (used for its readiness check).
    pub origin: String,
    /// Its stderr.
    pub log: PathBuf,
}

impl Agent {
    /// `tamga-enroll agent` on `port`, answering `origins`, writing under `allow_dir`, its
    /// state in `state_dir`; waits until it answers `version`.
    pub fn start(port: u16, origins: &[&str], allow_dir: &Path, state_dir: &Path) -> Agent {
        let log = state_dir.with_extension("log");
        let mut cmd = Command::new(enroll_bin());
        cmd.arg("agent");
        for origin in origins {
            cmd.args(["--origin", origin]);
        }
        cmd.arg("--allow-dir")
            .arg(allow_dir)
            .args(["--port", &port.to_string()])
            .arg("--state-dir")
            .arg(state_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
        let child = cmd.spawn().expect("start tamga-enroll agent");
        let mut agent = Agent {
            child: Some(child),
            port,
            origin: origins[0].to_owned(),
            log,
        };
        agent.wait_ready();
        agent
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "tamga-enroll agent exited ({status}): {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            let answered = crate::support::client()
                .get(self.url("/agent/v1/version"))
                .header("Origin", &self.origin)
                .send()
                .is_ok_and(|r| r.status() == 200);
            if answered {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not answer within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a test walks the journey against: a server, an agent answering its pages, the
/// citizen's allowed directory, and a browser.
pub struct Desk {
    pub browser: Browser,
    pub agent: Option<Agent>,
    /// The server's base URL (`http://127.0.0.1:PORT`).
    pub base: String,
    /// The server's working directory (its CLI runs there).
    pub server_dir: PathBuf,
    /// Environment the server's CLI needs beside its directory (the database URL).
    pub cli_env: Vec<(String, String)>,
    /// The directory the citizen allowed the agent to write under.
    pub documents: PathBuf,
    /// The agent's state directory.
    pub state: PathBuf,
    pub agent_port: u16,
    /// Temporary directory of the documents, the state and the checks' files.
    pub scratch: tempfile::TempDir,
}

impl Desk {
    /// The scratch directories and a browser for `test`; the agent is started by
    /// `start_agent`.
    pub fn new(
        test: &str,
        base: &str,
        server_dir: &Path,
        agent_port: u16,
        options: webdriver::Options,
    ) -> Desk {
        let scratch = tempfile::tempdir().unwrap();
        let documents = scratch.path().join("Documents");
        std::fs::create_dir_all(&documents).unwrap();
        let documents = documents.canonicalize().unwrap();
        Desk {
            browser: Browser::start(test, options),
            agent: None,
            base: base.to_owned(),
            server_dir: server_dir.to_path_buf(),
            cli_env: Vec::new(),
            documents,
            state: scratch.path().join("agent-state"),
            agent_port,
            scratch,
        }
    }

    /// Start the agent for `origins` (the server's own when empty).
    pub fn start_agent(&mut self, origins: &[&str]) {
        let own = [self.base.as_str()];
        let origins = if origins.is_empty() {
            &own[..]
        } else {
            origins
        };
        self.agent = Some(Agent::start(
            self.agent_port,
            origins,
            &self.documents,
            &self.state,
        ));
    }

    /// A `tamga` command in the server's directory, with its database.
    pub fn cli(&self) -> Command {
        let mut cmd = tamga(&self.server_dir);
        for (k, v) in &self.cli_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// `tamga applications list --json`.
    pub fn applications(&self) -> Vec<Value> {
        let out = run(self
            .cli()
            .args(["applications", "list", "--limit", "1000", "--json"]));
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// A consent token from `tamga dev consent-token` for `iin`, plus `extra` arguments.
    pub fn consent_token(&self, iin: &str, extra: &[&str]) -> String {
        let out = run(self
            .cli()
            .args(["dev", "consent-token", "--iin", iin])
            .args(["--surname", "ӘБІЛҚАСЫМОВА", "--name", "АЙГҮЛ"])
            .args(extra));
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// The Digital ID stand-in (`/dev/digital-id`): the citizen `iin`, with `liveness`; waits
    /// until the enrollment page has loaded after the hand-over.
    pub fn digital_id(&mut self, iin: &str, liveness: bool) {
        let b = &mut self.browser;
        b.goto(&format!("{}/dev/digital-id", self.base));
        b.visible("continue");
        b.screenshot("digital-id");
        b.fill("iin", iin);
        b.fill("surname", "ӘБІЛҚАСЫМОВА");
        b.fill("name", "АЙГҮЛ");
        b.fill("patronymic", "НҰРЛАНҚЫЗЫ");
        set_checkbox(b, "liveness", liveness);
        set_checkbox(b, "register_match", true);
        b.click_id("continue");
        self.wait_enroll_page();
    }

    /// Wait until the browser is on `/enroll` with the page's script running (a section
    /// shown).
    pub fn wait_enroll_page(&mut self) {
        self.browser.wait_until("the enrollment page", WAIT, |b| {
            b.url().contains("/enroll") && shown_section(b).is_some()
        });
    }

    /// Choose `lang` with the switcher and check the page took it: the `tamga_lang` cookie,
    /// and the visible texts are the translations of `lang`.
    pub fn language(&mut self, lang: &str) {
        let b = &mut self.browser;
        b.click_id(&format!("lang-{lang}"));
        b.wait_until(&format!("the page in {lang}"), WAIT, |b| {
            page_in(b, lang).is_ok()
        });
        let cookie = b.execute("return document.cookie", &[]);
        assert!(
            cookie
                .as_str()
                .is_some_and(|c| c.split("; ").any(|c| c == format!("tamga_lang={lang}"))),
            "the choice is kept in tamga_lang: {cookie}"
        );
    }

    /// The agreement step: its text shown, accepted.
    pub fn agreement(&mut self, lang: &str) {
        let b = &mut self.browser;
        b.visible("step-agreement");
        b.wait_until("the agreement's text", WAIT, |b| {
            b.text_of("agreement-text").chars().count() > 200
        });
        let shown = b.text_of("agreement-text");
        let expected = agreement_text(lang);
        let first_line = expected.lines().find(|l| !l.trim().is_empty()).unwrap();
        assert!(
            shown.contains(first_line.trim()),
            "the {lang} agreement is shown: {shown}"
        );
        b.screenshot("agreement");
        b.click_id("agree");
        b.click_id("confirm-agreement");
    }

    /// The form: `email`, storage `pkcs12`, `key_type`, and a new folder `folder` made in the
    /// allowed directory through the agent; returns the folder's path.
    pub fn form(&mut self, email: Option<&str>, key_type: &str, folder: &str) -> PathBuf {
        let documents = self.documents.clone();
        let b = &mut self.browser;
        b.visible("step-form");
        // The hardware storage types are listed, and cannot be chosen.
        for hardware in ["id_card", "kaztoken", "etoken", "jacarta", "akey"] {
            let option = b.css(&format!("[id=\"storage\"] option[value=\"{hardware}\"]"));
            assert_eq!(
                b.property(&option, "disabled"),
                "true",
                "{hardware} is disabled"
            );
        }
        assert!(!b.text_of("storage-note").is_empty(), "the storage note");
        if let Some(email) = email {
            b.fill("email", email);
        }
        b.select("storage", "pkcs12");
        b.select("key-type", key_type);
        b.click_id("choose-folder");
        b.visible("folder-chooser");
        let root = format!("button.folder[data-path=\"{}\"]", documents.display());
        let root = b.css(&root);
        b.click(&root);
        b.screenshot("folder-chooser");
        b.fill("new-folder-name", folder);
        b.click_id("make-folder");
        let made = documents.join(folder);
        b.wait_until("the new folder made by the agent", WAIT, |_| made.is_dir());
        let wanted = made.display().to_string();
        b.wait_until("the new folder chosen", WAIT, |b| {
            if b.text_of("folder").contains(&wanted) {
                return true;
            }
            // A chooser that lists the new folder without choosing it: choose it.
            if let Some(button) = b.try_css(&format!("button.folder[data-path=\"{wanted}\"]")) {
                if b.displayed(&button) {
                    b.click(&button);
                }
            } else if b.is_visible("choose-folder") && !b.is_visible("folder-chooser") {
                b.click(&b.try_css("[id=\"choose-folder\"]").unwrap());
            }
            false
        });
        b.screenshot("form");
        made
    }

    /// "Submit application"; waits for the status step and returns the status word shown.
    pub fn submit(&mut self) -> String {
        let b = &mut self.browser;
        b.click_id("submit-application");
        b.visible("step-status");
        let status = b.wait_for("the application's status", WAIT, |b| {
            b.attribute_of("status", "data-status")
                .filter(|s| !s.is_empty())
        });
        b.screenshot(&format!("status-{status}"));
        // Once the agent holds the keys for the application, the tab's address is the resume
        // page: a reload after the consent token expired finishes with the agent.
        let resume = b.wait_for("the resume address", WAIT, |b| {
            let url = b.url();
            url.contains("/enroll/resume?application=").then_some(url)
        });
        let id = b.execute(
            "return new URL(arguments[0]).searchParams.get('application');",
            &[Value::String(resume)],
        );
        assert!(
            self.applications().iter().any(|a| a["id"] == id),
            "the resume address names the application: {id}"
        );
        status
    }

    /// Reload the page (it is at the resume address by now): it finds the application again
    /// through the agent, at `status`.
    pub fn reload(&mut self, status: &str) {
        let b = &mut self.browser;
        let url = b.url();
        b.goto(&url);
        b.visible("step-status");
        b.wait_until(&format!("status {status} after a reload"), WAIT, |b| {
            b.attribute_of("status", "data-status").as_deref() == Some(status)
        });
        b.screenshot(&format!("reloaded-{status}"));
    }

    /// Press "Refresh" until the status is `wanted` (the page may also move on by itself).
    pub fn refresh_until(&mut self, wanted: &str) {
        let b = &mut self.browser;
        let mut last_click: Option<Instant> = None;
        b.wait_until(&format!("status {wanted}"), WAIT, |b| {
            if b.attribute_of("status", "data-status").as_deref() == Some(wanted) {
                return true;
            }
            let due = last_click.is_none_or(|t| t.elapsed() > Duration::from_secs(1));
            if due && b.is_visible("refresh") {
                b.click(&b.try_css("[id=\"refresh\"]").unwrap());
                last_click = Some(Instant::now());
            }
            false
        });
    }

    /// From the status `issued` to the password step.
    pub fn open_password_step(&mut self) {
        let b = &mut self.browser;
        if !b.is_visible("step-password") && b.is_visible("refresh") {
            b.click_id("refresh");
        }
        b.visible("step-password");
    }

    /// Type `password` and its repetition `repeat`.
    pub fn passwords(&mut self, password: &str, repeat: &str) {
        let b = &mut self.browser;
        b.visible("step-password");
        b.fill("password", password);
        b.fill("password-repeat", repeat);
    }

    /// The rule items of the password step that are met (`ok`).
    pub fn rules_met(&self) -> Vec<String> {
        ["length", "upper", "lower", "digit", "same"]
            .into_iter()
            .filter(|rule| {
                self.browser
                    .attribute_of(&format!("rule-{rule}"), "class")
                    .is_some_and(|c| c.split_whitespace().any(|c| c == "ok"))
            })
            .map(str::to_owned)
            .collect()
    }

    /// A good password, "Download certificates", the final page; returns its text.
    pub fn download(&mut self) -> String {
        self.passwords(PASSWORD, PASSWORD);
        let all = ["length", "upper", "lower", "digit", "same"];
        let b = &mut self.browser;
        b.wait_until("every password rule met", WAIT, |b| {
            all.iter().all(|rule| {
                b.attribute_of(&format!("rule-{rule}"), "class")
                    .is_some_and(|c| c.split_whitespace().any(|c| c == "ok"))
            })
        });
        b.screenshot("password");
        b.click_id("download");
        let result = b.visible("result");
        b.wait_until("the final message", WAIT, |b| !b.text(&result).is_empty());
        b.screenshot("done");
        b.text(&result)
    }

    /// The whole journey after the hand-over, in `lang`, on a page already loaded: agreement,
    /// form, submit, `issued`, password, download. Returns the folder and the final text.
    pub fn walk(
        &mut self,
        lang: &str,
        email: Option<&str>,
        key_type: &str,
        folder: &str,
    ) -> (PathBuf, String) {
        self.agreement(lang);
        let folder = self.form(email, key_type, folder);
        let status = self.submit();
        if status != "issued" {
            self.refresh_until("issued");
        }
        self.reload("issued");
        assert!(
            self.browser
                .text_of("status")
                .contains(&tr(lang, "status.issued")),
            "the status in {lang}: {}",
            self.browser.text_of("status")
        );
        page_in(&self.browser, lang).unwrap_or_else(|e| panic!("the status page: {e}"));
        self.open_password_step();
        let result = self.download();
        page_in(&self.browser, lang).unwrap_or_else(|e| panic!("the final page: {e}"));
        (folder, result)
    }
}

/// Whether the visible translated texts of the page (`data-i18n`) are those of `lang`;
/// `Err` names the first that is not.
pub fn page_in(b: &Browser, lang: &str) -> Result<(), String> {
    let mut checked = 0;
    for element in b.all_css("[data-i18n]") {
        if !b.displayed(&element) {
            continue;
        }
        let Some(key) = b.attribute(&element, "data-i18n") else {
            continue;
        };
        let shown = b.text(&element);
        let expected = tr(lang, &key);
        if shown.trim() != expected.trim() {
            return Err(format!("{key}: {shown:?} is not the {lang} {expected:?}"));
        }
        checked += 1;
    }
    if checked == 0 {
        return Err("no translated text shown".to_owned());
    }
    Ok(())
}

/// Check or uncheck the checkbox `id`.
pub fn set_checkbox(b: &mut Browser, id: &str, checked: bool) {
    let element = b.visible(id);
    if (b.property(&element, "checked") == "true") != checked {
        b.click(&element);
    }
    assert_eq!(b.property(&element, "checked") == "true", checked, "#{id}");
}

/// The id of the section shown, if any.
pub fn shown_section(b: &Browser) -> Option<String> {
    b.all_css("section[id^=\"step-\"]")
        .iter()
        .find(|s| b.displayed(s))
        .and_then(|s| b.attribute(s, "id"))
}

/// The agreement's text in `lang`, as the repository keeps it.
pub fn agreement_text(lang: &str) -> &'static str {
    match lang {
        "ru" => include_str!("../../../src/api/pages/assets/agreement/2026-1/ru.txt"),
        "en" => include_str!("../../../src/api/pages/assets/agreement/2026-1/en.txt"),
        _ => include_str!("../../../src/api/pages/assets/agreement/2026-1/kk.txt"),
    }
}

/// The two containers in `folder` for the citizen `iin`, checked with the `openssl` CLI: the
/// expected names for `key_type`, mode 0600, open with `PASSWORD` (`openssl pkcs12 -info`),
/// an AUTH and a SIGN certificate of that IIN, each `good` by OCSP from `base` (when
/// `ocsp`). Returns the file names, AUTH first.
pub fn check_containers(
    scratch: &Path,
    folder: &Path,
    iin: &str,
    key_type: &str,
    server_dir: &Path,
    base: &str,
    ocsp: bool,
) -> Vec<String> {
    let (auth_prefix, sign_prefix) = match key_type {
        "ec-p256" => ("AUTH_ECDSA256_", "ECDSA256_"),
        _ => ("AUTH_RSA256_", "RSA256_"),
    };
    let mut files: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        2,
        "two containers in {}: {files:?}",
        folder.display()
    );
    let auth = files
        .iter()
        .find(|f| f.starts_with(auth_prefix))
        .unwrap_or_else(|| panic!("an {auth_prefix}… file: {files:?}"))
        .clone();
    let sign = files
        .iter()
        .find(|f| f.starts_with(sign_prefix) && f.ends_with(".p12"))
        .unwrap_or_else(|| panic!("a {sign_prefix}… file: {files:?}"))
        .clone();
    for (kind, file) in [("auth", &auth), ("sign", &sign)] {
        assert!(file.ends_with(".p12"), "{file}");
        let path = folder.join(file);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file} has mode {mode:o}");
        let path = path.display().to_string();
        let pass = format!("pass:{PASSWORD}");
        let info = openssl(
            scratch,
            &["pkcs12", "-in", &path, "-info", "-nodes", "-passin", &pass],
        );
        assert!(info.contains("PRIVATE KEY-----"), "{file}: the key");
        assert!(info.contains("BEGIN CERTIFICATE"), "{file}: certificates");
        let cert = format!("{kind}-{}.pem", &file[..file.len() - 4]);
        openssl(
            scratch,
            &[
                "pkcs12", "-in", &path, "-passin", &pass, "-clcerts", "-nokeys", "-out", &cert,
            ],
        );
        let subject = openssl(
            scratch,
            &[
                "x509", "-in", &cert, "-noout", "-subject", "-nameopt", "utf8",
            ],
        );
        assert!(
            subject.contains(&format!("serialNumber=IIN{iin}")),
            "{file}: the citizen's IIN in {subject}"
        );
        let cert_text = crate::support::x509_text(scratch, &cert);
        let usage = if kind == "auth" {
            "TLS Web Client Authentication"
        } else {
            "Non Repudiation"
        };
        assert!(
            cert_text.contains(usage),
            "{file} is the {kind} certificate"
        );
        if ocsp {
            let cert_path = scratch.join(&cert).display().to_string();
            let answer = crate::ocsp::ocsp(server_dir, base, &["-cert", &cert_path]);
            assert!(
                answer.contains(&format!("{cert_path}: good")),
                "{file}: OCSP {answer}"
            );
        }
    }
    vec![auth, sign]
}

/// A fresh citizen's IIN.
pub fn fresh_iin() -> String {
    crate::enroll::fresh_iin()
}

/// A free port for an agent, below the kernel's range of ephemeral ports: the agent starts
/// some seconds after its port is chosen (the server must know it first), and in between an
/// outgoing connection of this test run (to PostgreSQL, say) or another test's `free_port`
/// could take a port of that range.
/// For `test`: a development server on SQLite whose pages look for the agent at a port of
/// its own, and a desk on it, with the agent started when `agent` says so; `None` when the
/// browser is missing (the test reports itself skipped).
pub fn desk_on_sqlite(test: &str, agent: bool) -> Option<(Env, Desk)> {
    if !browser_available(test) {
        return None;
    }
    let port = agent_port();
    let env = Env::sqlite_with(&[("TAMGA_PAGES__AGENT_PORT", &port.to_string())]);
    let mut desk = Desk::new(test, &env.server.base, env.dir(), port, Options::default());
    if agent {
        desk.start_agent(&[]);
    }
    Some((env, desk))
}

pub fn agent_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let first_ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| {
            r.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u32>().ok())
        })
        .unwrap_or(32768);
    let low = 20_000;
    if first_ephemeral <= low + 1000 {
        return free_port();
    }
    let span = first_ephemeral - low;
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = u16::try_from(low + (start + n * 131) % span).unwrap_or(0);
        if port != 0 && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    free_port()
}
