//! `tamga-enroll reissue` and `tamga-enroll cabinet list|revoke` against a live server: a pair
//! issued by `tamga-enroll`, re-issued with its containers (new keys, the same identity even
//! when the request asks another e-mail, the old pair `superseded` on OCSP, the old containers
//! kept as `*.superseded`); the new keys written, encrypted, before the request is sent (a
//! server that stops answering after the login leaves them, and nothing issued); the same
//! request sent again after a lost answer (through a proxy that drops it), which finishes with
//! the kept keys; the consent token a CA with `reissue_requires_consent` asks for; the
//! cabinet's list and revocation, and its refusals as sentences.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::enroll::{fresh_iin, Env};
use crate::enroll_client::client;
use crate::support::{openssl, text, DEV_ISSUING, DEV_OCSP};

/// `tamga-enroll` against `base` (the server or a proxy in front of it), in `env`'s directory.
fn client_at(env: &Env, base: &str, args: &[&str]) -> Output {
    std::process::Command::new(crate::support::tamga_bin().with_file_name("tamga-enroll"))
        .current_dir(env.dir())
        .args(["--server", base])
        .args(args)
        .output()
        .unwrap()
}

/// A new holder's pair, written by `tamga-enroll` into `dir/keys` (password `Secret2026` in
/// `password.txt`); the holder's IIN.
fn issue_pair(env: &Env) -> String {
    let dir = env.dir();
    let iin = fresh_iin();
    std::fs::write(dir.join("password.txt"), "Secret2026\n").unwrap();
    std::fs::write(dir.join("token.txt"), env.cli_token(&iin, &[])).unwrap();
    let out = client(
        env,
        &[
            "--token-file",
            "token.txt",
            "--out",
            "keys",
            "--password-file",
            "password.txt",
            "--email",
            "old@example.kz",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    iin
}

/// The names in `dir/keys`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("keys"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The one name in `dir/keys` that starts with `prefix` and ends with `suffix`.
fn one(dir: &Path, prefix: &str, suffix: &str) -> String {
    let found: Vec<String> = files(dir)
        .into_iter()
        .filter(|n| n.starts_with(prefix) && n.ends_with(suffix))
        .collect();
    assert_eq!(found.len(), 1, "{prefix}*{suffix}: {:?}", files(dir));
    found.into_iter().next().unwrap()
}

/// The holder's certificate out of the container `keys/file`, written to `pem`.
fn certificate(dir: &Path, file: &str, pem: &str) {
    openssl(
        dir,
        &[
            "pkcs12",
            "-in",
            &format!("keys/{file}"),
            "-passin",
            "file:password.txt",
            "-clcerts",
            "-nokeys",
            "-out",
            pem,
        ],
    );
}

fn x509(dir: &Path, pem: &str, what: &str) -> String {
    openssl(
        dir,
        &["x509", "-in", pem, "-noout", what, "-nameopt", "utf8"],
    )
}

fn serial(dir: &Path, pem: &str) -> String {
    x509(dir, pem, "-serial")
        .trim()
        .trim_start_matches("serial=")
        .to_owned()
}

/// What `openssl ocsp` says of the certificate in `pem`.
fn ocsp(env: &Env, pem: &str) -> String {
    openssl(
        env.dir(),
        &[
            "ocsp",
            "-issuer",
            DEV_ISSUING,
            "-VAfile",
            DEV_OCSP,
            "-cert",
            pem,
            "-url",
            &format!("{}/ocsp", env.server.base),
        ],
    )
}

/// `tamga-enroll cabinet list --json`: the holder's certificates by serial: (status, reason).
fn cabinet(env: &Env) -> Vec<(String, String, String)> {
    let out = client(
        env,
        &[
            "cabinet",
            "list",
            "--keys",
            "keys",
            "--password-file",
            "password.txt",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["serial"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
                c["revocation_reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The certificate `serial` (hex, any leading zeros) in a cabinet list.
fn listed<'a>(
    list: &'a [(String, String, String)],
    serial: &str,
) -> Option<&'a (String, String, String)> {
    let bare = |s: &str| s.trim_start_matches('0').to_ascii_uppercase();
    list.iter().find(|(s, _, _)| bare(s) == bare(serial))
}

#[test]
fn tamga_enroll_reissues_a_pair_and_the_old_one_is_superseded() {
    let env = Env::sqlite();
    let dir = env.dir().to_path_buf();
    let _ = issue_pair(&env);
    let (old_auth, old_sign) = (one(&dir, "AUTH_", ".p12"), one(&dir, "RSA256_", ".p12"));
    certificate(&dir, &old_auth, "old-auth.pem");
    certificate(&dir, &old_sign, "old-sign.pem");

    // Another e-mail and language in the re-issue's form: the identity stays the old one's.
    let out = client(
        &env,
        &[
            "reissue",
            "--keys",
            "keys",
            "--password-file",
            "password.txt",
            "--email",
            "new@example.kz",
            "--language",
            "en",
            "--key-type",
            "ec-p256",
        ],
    );
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("Superseded"), "{shown}");
    // The old containers kept, renamed; the new ones beside them; no pending file left.
    let names = files(&dir);
    assert_eq!(names.len(), 4, "{names:?}");
    for old in [&old_auth, &old_sign] {
        assert!(names.contains(&format!("{old}.superseded")), "{names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with('.')), "{names:?}");
    let (new_auth, new_sign) = (
        one(&dir, "AUTH_ECDSA256_", ".p12"),
        one(&dir, "ECDSA256_", ".p12"),
    );
    certificate(&dir, &new_auth, "new-auth.pem");
    certificate(&dir, &new_sign, "new-sign.pem");
    assert!(
        shown.contains(&format!("keys/{new_auth}")) && shown.contains(&format!("keys/{new_sign}")),
        "{shown}"
    );

    for (old, new) in [
        ("old-auth.pem", "new-auth.pem"),
        ("old-sign.pem", "new-sign.pem"),
    ] {
        assert_eq!(
            x509(&dir, old, "-subject"),
            x509(&dir, new, "-subject"),
            "the identity is the old pair's"
        );
        assert_ne!(x509(&dir, old, "-pubkey"), x509(&dir, new, "-pubkey"));
        assert_ne!(serial(&dir, old), serial(&dir, new));
        let said = ocsp(&env, old);
        assert!(
            said.contains(&format!("{old}: revoked")) && said.contains("superseded"),
            "{said}"
        );
        let said = ocsp(&env, new);
        assert!(said.contains(&format!("{new}: good")), "{said}");
        // The old serials are named as superseded in what the client printed.
        assert!(shown.contains(&serial(&dir, old)), "{shown}");
    }

    // The cabinet, logged in with the new AUTH container.
    let list = cabinet(&env);
    assert_eq!(list.len(), 4, "{list:?}");
    for pem in ["old-auth.pem", "old-sign.pem"] {
        let (_, status, reason) = listed(&list, &serial(&dir, pem)).unwrap();
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("revoked", "superseded")
        );
    }
    for pem in ["new-auth.pem", "new-sign.pem"] {
        let (_, status, _) = listed(&list, &serial(&dir, pem)).unwrap();
        assert_eq!(status, "issued");
    }
    let table = client(
        &env,
        &[
            "cabinet",
            "list",
            "--keys",
            "keys",
            "--password-file",
            "password.txt",
        ],
    );
    assert!(table.status.success(), "{}", text(&table));
    assert_eq!(
        String::from_utf8_lossy(&table.stdout).lines().count(),
        5,
        "a heading and four certificates: {}",
        text(&table)
    );

    // Another holder's certificate is not this holder's to revoke.
    let (_, other) = env.enroll_holder(None);
    let other_serial = other["certificates"][0]["serial"].as_str().unwrap();
    let out = client(
        &env,
        &[
            "cabinet",
            "revoke",
            "--keys",
            "keys",
            "--password-file",
            "password.txt",
            "--serial",
            other_serial,
            "--reason",
            "unspecified",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("not_certificate_holder (403): that certificate is not one of yours"),
        "{}",
        text(&out)
    );

    // The holder revokes the new SIGN certificate; the pair can no longer be re-issued, and
    // the refused run leaves nothing behind.
    let new_sign_serial = serial(&dir, "new-sign.pem");
    let out = client(
        &env,
        &[
            "cabinet",
            "revoke",
            "--keys",
            "keys",
            "--password-file",
            "password.txt",
            "--serial",
            &new_sign_serial,
            "--reason",
            "keyCompromise",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = ocsp(&env, "new-sign.pem");
    assert!(said.contains("new-sign.pem: revoked"), "{said}");
    let (_, status, reason) = listed(&cabinet(&env), &new_sign_serial).cloned().unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("revoked", "keyCompromise")
    );
    let before = files(&dir);
    let out = client(
        &env,
        &[
            "reissue",
            "--keys",
            "keys",
            "--password-file",
            "password.txt",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("certificate_revoked (403): the current pair is revoked"),
        "{}",
        text(&out)
    );
    assert_eq!(files(&dir), before, "nothing written, nothing renamed");
}

/// What the proxy does to `POST /cabinet/api/reissues`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Passes it.
    Pass,
    /// Closes the connection instead of passing it: the server is gone after the login.
    Refuse,
    /// Passes it, then closes the connection instead of passing the answer (once).
    DropAnswer,
}

/// A TCP proxy in front of the server that can cut the re-issue.
struct Proxy {
    base: String,
    cut: Arc<Mutex<Cut>>,
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let cut = Arc::new(Mutex::new(Cut::Pass));
        let shared = Arc::clone(&cut);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(from) = conn else { continue };
                let Ok(to) = TcpStream::connect(&upstream) else {
                    continue;
                };
                connect(from, to, Arc::clone(&shared));
            }
        });
        Proxy { base, cut }
    }

    fn set(&self, cut: Cut) {
        *self.cut.lock().unwrap() = cut;
    }
}

/// Pipe one connection both ways, cutting the re-issue as `cut` says.
fn connect(from: TcpStream, to: TcpStream, cut: Arc<Mutex<Cut>>) {
    let drop_answer = Arc::new(AtomicBool::new(false));
    let (mut from_r, mut to_w) = (from.try_clone().unwrap(), to.try_clone().unwrap());
    let dropping = Arc::clone(&drop_answer);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from_r.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = to_w.shutdown(Shutdown::Write);
                    return;
                }
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            let needle = b"POST /cabinet/api/reissues";
            if chunk.windows(needle.len()).any(|w| w == needle) {
                let mut cut = cut.lock().unwrap();
                match *cut {
                    Cut::Pass => {}
                    Cut::Refuse => {
                        let _ = from_r.shutdown(Shutdown::Both);
                        let _ = to_w.shutdown(Shutdown::Both);
                        return;
                    }
                    Cut::DropAnswer => {
                        *cut = Cut::Pass;
                        dropping.store(true, Ordering::SeqCst);
                    }
                }
            }
            if to_w.write_all(chunk).is_err() {
                return;
            }
        }
    });
    let (mut to_r, mut from_w) = (to, from);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match to_r.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = from_w.shutdown(Shutdown::Write);
                    return;
                }
                Ok(n) => n,
            };
            if drop_answer.load(Ordering::SeqCst) {
                let _ = from_w.shutdown(Shutdown::Both);
                let _ = to_r.shutdown(Shutdown::Both);
                return;
            }
            if from_w.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    });
}

#[test]
fn tamga_enroll_reissue_keeps_the_new_keys_and_repeats_a_lost_answer() {
    let env = Env::sqlite();
    let dir = env.dir().to_path_buf();
    let _ = issue_pair(&env);
    let (old_auth, old_sign) = (one(&dir, "AUTH_", ".p12"), one(&dir, "RSA256_", ".p12"));
    certificate(&dir, &old_auth, "old-auth.pem");
    let old_serial = serial(&dir, "old-auth.pem");
    let proxy = Proxy::start(&env.server.base);
    let reissue = || {
        client_at(
            &env,
            &proxy.base,
            &[
                "reissue",
                "--keys",
                "keys",
                "--password-file",
                "password.txt",
                "--retries",
                "2",
            ],
        )
    };

    // The server is gone after the login: the run fails, the new keys are on disk, encrypted
    // with the containers' password, with the request as sent; nothing was issued.
    let before = env.counts();
    proxy.set(Cut::Refuse);
    let out = reissue();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("sending the same request again"),
        "{}",
        text(&out)
    );
    let kept = [
        format!(".reissue-{old_serial}-auth.key.pem"),
        format!(".reissue-{old_serial}-sign.key.pem"),
    ];
    let names = files(&dir);
    for name in kept
        .iter()
        .chain([&format!(".reissue-{old_serial}.request.json")])
    {
        assert!(names.contains(name), "{name}: {names:?}");
    }
    assert!(
        names.contains(&old_auth) && names.contains(&old_sign),
        "{names:?}"
    );
    let mut kept_public = Vec::new();
    for name in &kept {
        let pem = std::fs::read_to_string(dir.join("keys").join(name)).unwrap();
        assert!(pem.contains("BEGIN ENCRYPTED PRIVATE KEY"), "{pem}");
        kept_public.push(openssl(
            &dir,
            &[
                "pkey",
                "-in",
                &format!("keys/{name}"),
                "-passin",
                "file:password.txt",
                "-pubout",
            ],
        ));
    }
    let after = env.counts();
    assert_eq!(
        (after.applications, after.certificates),
        (before.applications, before.certificates),
        "nothing issued"
    );

    // Run again; the server acts on the request but its answer is lost: the same request is
    // sent again, answered with the same application, and the kept keys are certified.
    proxy.set(Cut::DropAnswer);
    let out = reissue();
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("Resuming the re-issue"), "{shown}");
    assert!(shown.contains("sending the same request again"), "{shown}");
    assert_eq!(
        *proxy.cut.lock().unwrap(),
        Cut::Pass,
        "the answer was dropped"
    );
    let (new_auth, new_sign) = (one(&dir, "AUTH_", ".p12"), one(&dir, "RSA256_", ".p12"));
    certificate(&dir, &new_auth, "new-auth.pem");
    certificate(&dir, &new_sign, "new-sign.pem");
    assert_eq!(x509(&dir, "new-auth.pem", "-pubkey"), kept_public[0]);
    assert_eq!(x509(&dir, "new-sign.pem", "-pubkey"), kept_public[1]);
    assert!(
        !files(&dir).iter().any(|n| n.starts_with('.')),
        "{:?}",
        files(&dir)
    );
    let after = env.counts();
    assert_eq!(
        (after.applications, after.certificates),
        (before.applications + 1, before.certificates + 2),
        "one re-issue, whose answer was sent twice"
    );
    let said = ocsp(&env, "old-auth.pem");
    assert!(said.contains("old-auth.pem: revoked"), "{said}");
    let said = ocsp(&env, "new-auth.pem");
    assert!(said.contains("new-auth.pem: good"), "{said}");
}

/// With `[ra] reissue_requires_consent`, the re-issue also needs a Digital ID consent token
/// (`--consent-token-file`, purpose `eds_reissue`, the holder's own): without one, or with
/// another person's, it is refused with a sentence saying so, and nothing is left behind.
#[test]
fn tamga_enroll_reissue_sends_the_consent_token_a_ca_asks_for() {
    let env = Env::sqlite_with(&[("TAMGA_RA__REISSUE_REQUIRES_CONSENT", "true")]);
    let dir = env.dir().to_path_buf();
    let iin = issue_pair(&env);
    let before = files(&dir);
    let reissue = |extra: &[&str]| {
        let mut args = vec![
            "reissue",
            "--keys",
            "keys",
            "--password-file",
            "password.txt",
        ];
        args.extend_from_slice(extra);
        client(&env, &args)
    };

    let out = reissue(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out)
            .contains("consent_token_missing (401): this CA also asks a Digital ID consent token"),
        "{}",
        text(&out)
    );
    assert_eq!(files(&dir), before, "nothing written, nothing renamed");

    let other = env.cli_token(&fresh_iin(), &["--purpose", "eds_reissue"]);
    std::fs::write(dir.join("other.txt"), other).unwrap();
    let out = reissue(&["--consent-token-file", "other.txt"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("consent_token_wrong_holder (403): the consent token (--consent-token-file) is another person's"),
        "{}",
        text(&out)
    );
    assert_eq!(files(&dir), before, "nothing written, nothing renamed");

    let own = env.cli_token(&iin, &["--purpose", "eds_reissue"]);
    std::fs::write(dir.join("consent.txt"), own).unwrap();
    let out = reissue(&["--consent-token-file", "consent.txt"]);
    assert!(out.status.success(), "{}", text(&out));
    let names = files(&dir);
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(
        names
            .iter()
            .filter(|n| n.ends_with(".p12.superseded"))
            .count(),
        2,
        "{names:?}"
    );
}
