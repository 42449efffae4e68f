//! E-mail notifications against a real SMTP server (Python's aiosmtpd writing a Maildir),
//! read back with Python's `email` parser: contents per event and language, an SMTP outage,
//! a server killed before sending, and .eml files without SMTP (among them a hold, its
//! release and a later revocation, each with its own message).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::enroll::{body, claims, csr, fresh_iin, Env};
use crate::support::{free_port, run, tamga, text, tool_present, Server};

/// Where the SMTP peer keeps what it received: `maildir` in a temporary directory of its
/// own (aiosmtpd creates the Maildir itself; an existing empty directory is not one).
struct MailDir {
    _root: tempfile::TempDir,
    path: PathBuf,
}

impl MailDir {
    fn new() -> MailDir {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("maildir");
        MailDir { _root: root, path }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// A free port for an SMTP peer and an empty Maildir for it; `None` (the test reported
/// skipped) when aiosmtpd is not installed.
fn smtp_port_and_maildir() -> Option<(u16, MailDir)> {
    if !aiosmtpd_available() {
        SmtpPeer::start(0, Path::new("."));
        return None;
    }
    Some((free_port(), MailDir::new()))
}

/// An aiosmtpd process writing every message it accepts into a Maildir.
struct SmtpPeer {
    child: Child,
}

impl SmtpPeer {
    /// Start on `port`; `None` (test skipped) when aiosmtpd is not installed.
    fn start(port: u16, maildir: &Path) -> Option<SmtpPeer> {
        let available = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        let missing = "aiosmtpd is not installed (pip install aiosmtpd)";
        if !tool_present(available, "TAMGA_TEST_REQUIRE_SMTP", "SMTP test", missing) {
            return None;
        }
        let child = Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(SmtpPeer { child })
    }
}

impl Drop for SmtpPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn aiosmtpd_available() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success())
}

const PARSE: &str = r#"
import email, glob, json, os, sys
from email import policy
out = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], '**', '*'), recursive=True)):
    if not os.path.isfile(f) or os.path.basename(f).startswith('.'):
        continue
    m = email.message_from_binary_file(open(f, 'rb'), policy=policy.default)
    out.append({
        'to': str(m['To']), 'from': str(m['From']), 'subject': str(m['Subject']),
        'message_id': str(m['Message-ID']),
        'text': m.get_body(preferencelist=('plain',)).get_content(),
        'html': m.get_body(preferencelist=('html',)).get_content(),
    })
print(json.dumps(out))
"#;

/// Every message in a Maildir or .eml directory, parsed by Python's `email` package.
fn messages(dir: &Path) -> Vec<Value> {
    if !dir.exists() {
        return Vec::new();
    }
    let out = Command::new("python3")
        .args(["-c", PARSE])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

fn wait_for_messages(dir: &Path, n: usize, limit: Duration) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let found = messages(dir);
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} messages arrived: {found:?}",
            found.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn smtp_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("TAMGA_NOTIFY__SMTP_URL", format!("smtp://127.0.0.1:{port}")),
        ("TAMGA_NOTIFY__RETRY_BASE", "1s".to_owned()),
        ("TAMGA_NOTIFY__RETRY_MAX", "2s".to_owned()),
        ("TAMGA_NOTIFY__REMINDER_INTERVAL", "1s".to_owned()),
    ]
}

fn start_env(env: &[(&'static str, String)]) -> Env {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Env::sqlite_with(&pairs)
}

/// An application issued at once (or pending, without liveness), with an e-mail.
fn apply(env: &Env, email: Option<&str>, language: &str, liveness: bool) -> (String, Value) {
    let iin = fresh_iin();
    let mut c = claims(&iin);
    c.verification.liveness = liveness;
    let (a, _) = csr(env.dir(), "ec", &[]);
    let (s, _) = csr(env.dir(), "ec", &[]);
    let mut b = body(&a, &s, email);
    b["language"] = json!(language);
    let (status, created) = env.post(Some(&env.minted(&c)), &b);
    assert_eq!(status, 201, "{created}");
    (iin, created)
}

fn find<'a>(msgs: &'a [Value], to: &str) -> Vec<&'a Value> {
    msgs.iter()
        .filter(|m| m["to"].as_str().is_some_and(|t| t.contains(to)))
        .collect()
}

#[test]
fn each_event_reaches_a_real_smtp_server_in_the_holders_language() {
    let Some((port, maildir)) = smtp_port_and_maildir() else {
        return;
    };
    let _peer = SmtpPeer::start(port, maildir.path()).unwrap();
    let env = start_env(&smtp_env(port));
    let dir = env.dir().to_path_buf();

    let (_, issued) = apply(&env, Some("ru.holder@example.kz"), "ru", true);
    let (_, pending) = apply(&env, Some("kk.holder@example.kz"), "kk", false);
    let (en_iin, en) = apply(&env, Some("en.holder@example.kz"), "en", true);
    apply(&env, None, "en", true);
    let out = run(tamga(&dir).args([
        "applications",
        "reject",
        pending["id"].as_str().unwrap(),
        "--reason",
        "Жеке куәлік фотосы анық емес",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let serial = en["certificates"][1]["serial"].as_str().unwrap();
    let resp = env.revoke_as_holder(&en_iin, serial, "keyCompromise");
    assert_eq!(resp.status(), 200);

    // A certificate 10 days from expiry (moved in the database, as time would move it): the
    // 14-day reminder, in the holder's language.
    let auth_serial = issued["certificates"][0]["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    let soon = chrono::Utc::now().naive_utc() + chrono::Duration::days(10);
    let db = dir.join("data/tamga.db");
    let script = format!(
        "import sqlite3; c = sqlite3.connect({:?}); c.execute(\"UPDATE certificates SET not_after = '{}' WHERE serial = '{}'\"); c.commit()",
        db.display().to_string(),
        soon.format("%Y-%m-%d %H:%M:%S%.6f"),
        auth_serial
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let msgs = wait_for_messages(maildir.path(), 6, Duration::from_secs(20));
    assert_eq!(
        msgs.len(),
        6,
        "issued(ru), expiring(ru), received(kk), rejected(kk), issued(en), revoked(en): {msgs:#?}"
    );
    let ru = find(&msgs, "ru.holder@example.kz");
    assert_eq!(ru.len(), 2);
    let expiring = ru
        .iter()
        .find(|m| m["subject"].as_str().unwrap().contains("истекает"))
        .unwrap();
    assert_eq!(
        expiring["subject"],
        "Срок действия сертификата истекает через 14 дн."
    );
    assert!(expiring["text"].as_str().unwrap().contains(&auth_serial));
    let ru: Vec<&&Value> = ru
        .iter()
        .filter(|m| m["subject"] == "Ваши сертификаты выпущены")
        .collect();
    assert_eq!(ru.len(), 1);
    for cert in issued["certificates"].as_array().unwrap() {
        assert!(
            ru[0]["text"]
                .as_str()
                .unwrap()
                .contains(cert["serial"].as_str().unwrap()),
            "{}",
            ru[0]["text"]
        );
    }
    assert!(ru[0]["html"].as_str().unwrap().contains("lang=\"ru\""));
    assert!(ru[0]["from"]
        .as_str()
        .unwrap()
        .contains("noreply@tamga.local"));
    let kk = find(&msgs, "kk.holder@example.kz");
    let subjects: Vec<&str> = kk.iter().map(|m| m["subject"].as_str().unwrap()).collect();
    assert!(
        subjects.contains(&"Өтінішіңіз алынды") && subjects.contains(&"Өтінішіңіз қабылданбады"),
        "{subjects:?}"
    );
    let rejected = kk
        .iter()
        .find(|m| m["subject"] == "Өтінішіңіз қабылданбады")
        .unwrap();
    assert!(rejected["text"]
        .as_str()
        .unwrap()
        .contains("Жеке куәлік фотосы анық емес"));
    let en_msgs = find(&msgs, "en.holder@example.kz");
    let revoked = en_msgs
        .iter()
        .find(|m| m["subject"] == "Your certificate was revoked")
        .unwrap();
    let body = revoked["text"].as_str().unwrap();
    assert!(
        body.contains(serial) && body.contains("key compromise"),
        "{body}"
    );
    // Each message's Message-ID is its outbox row's, stable across retries.
    let out = run(tamga(&dir).args(["outbox", "list", "--json"]));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 6);
    for row in &rows {
        assert_eq!(row["status"], "sent", "{row}");
        let id = format!("<{}@outbox.tamga>", row["id"].as_str().unwrap());
        assert_eq!(
            msgs.iter()
                .filter(|m| m["message_id"] == id.as_str())
                .count(),
            1,
            "{id}"
        );
    }
    // The metrics follow the delivery round that sent the last message.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = env.server.get("/metrics").text().unwrap();
        if metrics.contains(r#"tamga_outbox_send_attempts_total{result="sent"} 6"#)
            && metrics.contains(r#"tamga_outbox_messages{status="sent"} 6"#)
        {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn messages_queued_during_an_smtp_outage_arrive_exactly_once() {
    let Some((port, maildir)) = smtp_port_and_maildir() else {
        return;
    };
    let env = start_env(&smtp_env(port));
    for i in 0..3 {
        apply(&env, Some(&format!("outage{i}@example.kz")), "en", true);
    }
    // Attempts fail while nothing listens.
    let dir = env.dir().to_path_buf();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = run(tamga(&dir).args(["outbox", "list", "--json"]));
        let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        if rows.len() == 3
            && rows
                .iter()
                .all(|r| r["attempts"].as_i64().unwrap() >= 2 && r["status"] == "pending")
        {
            assert!(rows.iter().all(|r| !r["last_error"].is_null()));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no failed attempts recorded: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let _peer = SmtpPeer::start(port, maildir.path()).unwrap();
    wait_for_messages(maildir.path(), 3, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(4));
    let msgs = messages(maildir.path());
    assert_eq!(msgs.len(), 3, "exactly once each: {msgs:#?}");
    for i in 0..3 {
        assert_eq!(find(&msgs, &format!("outage{i}@example.kz")).len(), 1);
    }
}

#[test]
fn a_message_committed_before_a_crash_is_delivered_after_restart() {
    let Some((port, maildir)) = smtp_port_and_maildir() else {
        return;
    };
    let env_vars = smtp_env(port);
    let env = start_env(&env_vars);
    apply(&env, Some("crash@example.kz"), "kk", true);
    // Killed (SIGKILL) with the message committed but not sent.
    let (server, store, _dir_guard, db) = env.into_parts();
    let dir: PathBuf = server.dir.clone();
    drop(server);
    drop((store, db));
    let _peer = SmtpPeer::start(port, maildir.path()).unwrap();
    let pairs: Vec<(&str, &str)> = env_vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _restarted = Server::start(&dir, &pairs);
    let msgs = wait_for_messages(maildir.path(), 1, Duration::from_secs(30));
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["subject"], "Сертификаттарыңыз берілді");
    drop(_dir_guard);
}

#[test]
fn without_smtp_the_issued_message_is_an_eml_file() {
    let env = Env::sqlite();
    let (_, created) = apply(&env, Some("file.holder@example.kz"), "en", true);
    let mail = env.dir().join("data/mail");
    let msgs = wait_for_messages(&mail, 1, Duration::from_secs(15));
    assert_eq!(msgs[0]["subject"], "Your certificates were issued");
    assert!(msgs[0]["to"]
        .as_str()
        .unwrap()
        .contains("file.holder@example.kz"));
    let serial = created["certificates"][0]["serial"].as_str().unwrap();
    assert!(msgs[0]["text"].as_str().unwrap().contains(serial));
    // Issued at once: the signing program already holds it; no page to go back to.
    assert!(!msgs[0]["text"].as_str().unwrap().contains("/enroll/resume"));
    let files: Vec<_> = std::fs::read_dir(&mail)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        files.iter().all(|f| f.to_string_lossy().ends_with(".eml")),
        "{files:?}"
    );
}

/// An application an operator approved is finished on the citizen's pages: its e-mail links
/// to `/enroll/resume?application=<id>`, by the id only, never the access token.
#[test]
fn the_message_of_an_approved_application_links_to_the_page_that_finishes_it() {
    let env = Env::sqlite();
    let (_, created) = apply(&env, Some("approved.holder@example.kz"), "ru", false);
    let id = created["id"].as_str().unwrap();
    let access_token = created["access_token"].as_str().unwrap();
    // The command reads the same configuration as the server (here: its public URL).
    let out = run(tamga(env.dir())
        .args(["applications", "approve", id])
        .env("TAMGA_SERVER__PUBLIC_URL", &env.server.base));
    assert!(out.status.success(), "{}", text(&out));
    let mail = env.dir().join("data/mail");
    let msgs = wait_for_messages(&mail, 2, Duration::from_secs(15));
    let issued: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["subject"] == "Ваши сертификаты выпущены")
        .collect();
    assert_eq!(issued.len(), 1, "{msgs:?}");
    let link = format!("{}/enroll/resume?application={id}", env.server.base);
    for part in ["text", "html"] {
        let body = issued[0][part].as_str().unwrap();
        assert!(body.contains(&link), "{part}: {body}");
        assert!(!body.contains(access_token), "{part}: {body}");
    }
    // The link opens the page shell in resume mode for that application.
    let page = env.server.get(&format!("/enroll/resume?application={id}"));
    assert_eq!(page.status(), 200);
    let page = page.text().unwrap();
    assert!(page.contains("data-mode=\"resume\""), "{page}");
    assert!(
        page.contains(&format!("data-application=\"{id}\"")),
        "{page}"
    );
}

/// The outbox rows of `recipient`, oldest first, as (event, payload).
fn queued_for(env: &Env, recipient: &str) -> Vec<(String, Value)> {
    let mut rows = env
        .store
        .read(|tx| tx.list_messages(None, 1000))
        .unwrap()
        .into_iter()
        .filter(|m| m.recipient == recipient)
        .collect::<Vec<_>>();
    rows.sort_by_key(|m| m.created_at);
    rows.into_iter()
        .map(|m| (m.event, serde_json::from_str(&m.payload).unwrap()))
        .collect()
}

/// A hold is told as a suspension, not as a revocation, and its release as the certificate
/// valid again: each queued in the transaction of the change (the row is there when the
/// request or command returns) and delivered (.eml files); a revocation after the release is
/// the ordinary revoked message.
#[test]
fn a_hold_and_its_release_each_send_their_own_email() {
    let env = Env::sqlite();
    let dir = env.dir().to_path_buf();
    let to = "hold.holder@example.kz";
    let (iin, created) = apply(&env, Some(to), "ru", true);
    let serial = created["certificates"][1]["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    let events =
        |env: &Env| -> Vec<String> { queued_for(env, to).into_iter().map(|(e, _)| e).collect() };
    assert_eq!(events(&env), ["certificates_issued"]);

    // The holder puts the SIGN certificate on hold.
    let resp = env.revoke_as_holder(&iin, &serial, "certificateHold");
    assert_eq!(resp.status(), 200);
    let queued = queued_for(&env, to);
    assert_eq!(events(&env), ["certificates_issued", "certificate_held"]);
    assert_eq!(queued[1].1["serial"], serial.as_str());
    assert_eq!(queued[1].1["kind"], "sign");

    // An operator releases it.
    let out = run(tamga(&dir).args(["certs", "release", &serial, "--operator", "aliya"]));
    assert!(out.status.success(), "{}", text(&out));
    let queued = queued_for(&env, to);
    assert_eq!(
        events(&env),
        [
            "certificates_issued",
            "certificate_held",
            "certificate_released"
        ]
    );
    assert_eq!(queued[2].1["serial"], serial.as_str());

    // A release of a certificate that is not on hold is refused and tells no one.
    let out = run(tamga(&dir).args(["certs", "release", &serial, "--operator", "aliya"]));
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert_eq!(queued_for(&env, to).len(), 3);

    // Revoked for good afterwards: the ordinary revocation message.
    let out = run(tamga(&dir).args([
        "certs",
        "revoke",
        &serial,
        "--reason",
        "superseded",
        "--operator",
        "aliya",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        events(&env),
        [
            "certificates_issued",
            "certificate_held",
            "certificate_released",
            "certificate_revoked"
        ]
    );

    let mail = dir.join("data/mail");
    let msgs = wait_for_messages(&mail, 4, Duration::from_secs(20));
    assert_eq!(msgs.len(), 4, "{msgs:#?}");
    let by_subject = |subject: &str| -> String {
        let found: Vec<&Value> = msgs.iter().filter(|m| m["subject"] == subject).collect();
        assert_eq!(found.len(), 1, "{subject}: {msgs:#?}");
        assert!(found[0]["to"].as_str().unwrap().contains(to));
        found[0]["text"].as_str().unwrap().to_owned()
    };
    let held = by_subject("Действие вашего сертификата приостановлено");
    assert!(
        held.contains(&serial) && held.contains("возобновить"),
        "{held}"
    );
    assert!(!held.to_lowercase().contains("отозван"), "{held}");
    let released = by_subject("Действие вашего сертификата возобновлено");
    assert!(
        released.contains(&serial) && released.contains("снова его принимают"),
        "{released}"
    );
    let revoked = by_subject("Ваш сертификат отозван");
    assert!(
        revoked.contains(&serial) && revoked.contains("«замена новым сертификатом» (superseded)"),
        "{revoked}"
    );
    by_subject("Ваши сертификаты выпущены");
}
