//! `tamga-enroll` against a live server: PKCS#12 files that `openssl pkcs12` opens, keys that
//! match their certificates, the containers' structure (modern: PBES2 at the default
//! iteration count; `--legacy-p12`: NCA's own, compared with NCA's container), the password
//! policy (every broken rule at once), server refusals (no empty `--out` left behind), the
//! pending/resume path (the printed command run as printed), and what happens without a
//! terminal, without a server, and what `--help` says of `--language`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::enroll::{assert_reference_extensions, claims, fresh_iin, lint, Env};
use crate::support::{free_port, openssl, run, tamga, text, tool_present, verify_chain, x509_text};
use tamga::pkcs12::{self, Decoded};

pub(crate) fn client(env: &Env, args: &[&str]) -> Output {
    crate::support::tamga_enroll()
        .current_dir(env.dir())
        .args(["--server", &env.server.base])
        .args(args)
        .output()
        .unwrap()
}

/// `tamga-enroll` with the consent token in `token_file`, the containers' password in
/// `password_file`, writing to `out`, plus `extra` arguments.
fn enroll(env: &Env, token_file: &str, out: &str, password_file: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--token-file", token_file, "--out", out];
    args.extend(["--password-file", password_file]);
    args.extend_from_slice(extra);
    client(env, &args)
}

/// The containers a successful `tamga-enroll` run wrote into `dir/out`, copied into `dir`
/// (beside `password.txt`); their names, sorted.
fn containers_written(run: &Output, dir: &Path, out: &str) -> Vec<String> {
    assert!(run.status.success(), "{}", text(run));
    let files = p12s(&dir.join(out));
    for f in &files {
        std::fs::copy(dir.join(out).join(f), dir.join(f)).unwrap();
    }
    files
}

/// `openssl pkcs12` arguments opening the container `file` (password in `password.txt`),
/// with `-legacy` when `legacy`, then `rest`.
fn pkcs12_args<'a>(file: &'a str, legacy: bool, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["pkcs12"];
    if legacy {
        args.push("-legacy");
    }
    args.extend(["-in", file, "-passin", "file:password.txt"]);
    args.extend_from_slice(rest);
    args
}

/// What `openssl pkcs12 -info` says of how the container `file` is protected.
fn p12_encryption(dir: &Path, file: &str, legacy: bool) -> String {
    p12_info(dir, &pkcs12_args(file, legacy, &["-info", "-noout"]))
}

/// `openssl pkcs12 -info` prints what it found on stderr.
fn p12_info(dir: &Path, args: &[&str]) -> String {
    let out = crate::support::openssl_command()
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    text(&out)
}

fn p12s(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".p12"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Our own decoder's reading of the container `file` in `dir` (password `Secret2026`).
fn decoded(dir: &Path, file: &str) -> Decoded {
    pkcs12::decode(&std::fs::read(dir.join(file)).unwrap(), "Secret2026").unwrap()
}

/// NCA's own container (`tests/data/nca-test-2020`), decoded by the same code.
fn ncas_container() -> Decoded {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/nca-test-2020/RSA256_individual_sign.p12");
    pkcs12::decode(&std::fs::read(path).unwrap(), "Qwerty12").unwrap()
}

/// Whether the JDK's `keytool` runs; otherwise report `test` skipped (or fail, where
/// `TAMGA_TEST_REQUIRE_JDK` is set, as in CI).
fn keytool_present(test: &str) -> bool {
    let runs = Command::new("keytool")
        .arg("-help")
        .output()
        .is_ok_and(|o| o.status.success());
    tool_present(
        runs,
        "TAMGA_TEST_REQUIRE_JDK",
        test,
        "the JDK's keytool is not installed",
    )
}

/// Java's PKCS12 KeyStore (what NCA's own software is built on) opens the container `file`
/// with the password, and not without it: one private key entry whose alias is the SKI, the
/// chain it holds (a legacy container holds none).
fn java_reads(dir: &Path, file: &str, legacy: bool) {
    let ski = file.trim_end_matches(".p12").rsplit('_').next().unwrap();
    let list = |password: &str| {
        Command::new("keytool")
            .current_dir(dir)
            .args(["-list", "-v", "-storetype", "PKCS12", "-keystore", file])
            .args(["-storepass", password])
            .output()
            .unwrap()
    };
    let out = list("Secret2026");
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("Your keystore contains 1 entry"), "{shown}");
    assert!(shown.contains(&format!("Alias name: {ski}\n")), "{shown}");
    assert!(shown.contains("Entry type: PrivateKeyEntry"), "{shown}");
    let length: usize = shown
        .lines()
        .find_map(|l| l.strip_prefix("Certificate chain length: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if legacy {
        assert_eq!(length, 1, "{shown}");
    } else {
        assert!(length >= 2, "the chain: {shown}");
    }
    assert!(!list("Wrong2026").status.success());
}

/// Open a container with openssl and check key, certificate and chain. A legacy container
/// holds no chain (as NCA's): its certificate is verified with the chain in `chain.pem`.
fn check_container(dir: &Path, file: &str, legacy: bool) {
    let args = pkcs12_args(file, legacy, &["-info", "-nodes"]);
    let shown = p12_info(dir, &args);
    assert!(
        shown.contains("PRIVATE KEY") && shown.contains("BEGIN CERTIFICATE"),
        "{shown}"
    );
    for (what, extra) in [
        ("key.pem", vec!["-nocerts"]),
        ("cert.pem", vec!["-clcerts", "-nokeys"]),
        ("cas.pem", vec!["-cacerts", "-nokeys"]),
    ] {
        let rest = [&["-nodes", "-out", what][..], &extra].concat();
        openssl(dir, &pkcs12_args(file, legacy, &rest));
    }
    let from_key = openssl(dir, &["pkey", "-in", "key.pem", "-pubout"]);
    let from_cert = openssl(dir, &["x509", "-in", "cert.pem", "-pubkey", "-noout"]);
    assert_eq!(
        from_key, from_cert,
        "{file}: the key inside matches the certificate"
    );
    let cas = std::fs::read_to_string(dir.join("cas.pem")).unwrap();
    let chain = if legacy {
        assert!(!cas.contains("BEGIN CERTIFICATE"), "no chain: {cas}");
        "chain.pem"
    } else {
        assert!(cas.contains("BEGIN CERTIFICATE"), "the chain: {cas}");
        "cas.pem"
    };
    let verified = verify_chain(dir, chain, &["cert.pem"]);
    assert!(verified.contains("cert.pem: OK"), "{verified}");
    let text = x509_text(dir, "cert.pem");
    let kind = if file.starts_with("AUTH_") {
        "auth"
    } else {
        "sign"
    };
    assert_reference_extensions(dir, &text, kind);
    openssl(dir, &["x509", "-in", "cert.pem", "-out", "clean.pem"]);
    lint(dir, "clean.pem");
    let ski = file.trim_end_matches(".p12").rsplit('_').next().unwrap();
    assert!(
        shown.contains(&format!("friendlyName: {ski}")),
        "alias = SKI: {shown}"
    );
    // localKeyID is the SKI's octets (openssl shows them in upper-case hex, spaced).
    let octets: Vec<String> = ski
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
        .collect();
    assert!(
        shown.contains(&format!("localKeyID: {} ", octets.join(" "))),
        "localKeyID = SKI: {shown}"
    );
    // The wrong password opens nothing.
    let wrong = crate::support::openssl_command()
        .current_dir(dir)
        .args(pkcs12_args(file, legacy, &["-info", "-noout"]))
        .args(["-passin", "pass:Wrong2026"])
        .output()
        .unwrap();
    assert!(!wrong.status.success(), "{}", crate::support::text(&wrong));
    // Our decoder reads the same key and certificate as openssl.
    let ours = decoded(dir, file);
    let key =
        openssl::pkey::PKey::private_key_from_pem(&std::fs::read(dir.join("key.pem")).unwrap())
            .unwrap();
    assert_eq!(
        ours.private_keys(),
        [key.private_key_to_pkcs8().unwrap().as_slice()]
    );
    let cert =
        openssl::x509::X509::from_pem(&std::fs::read(dir.join("cert.pem")).unwrap()).unwrap();
    assert_eq!(ours.certificates()[0], cert.to_der().unwrap().as_slice());
    let mode = std::fs::metadata(dir.join(file))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "{file}");
}

#[test]
fn tamga_enroll_writes_two_containers_that_openssl_opens() {
    let java = keytool_present("tamga_enroll_writes_two_containers_that_openssl_opens");
    let env = Env::sqlite();
    let dir = env.dir().to_path_buf();
    std::fs::write(dir.join("password.txt"), "Secret2026\n").unwrap();

    // A weak password: refused before anything is generated or sent.
    std::fs::write(dir.join("weak.txt"), "secret\n").unwrap();
    std::fs::write(dir.join("token.txt"), env.cli_token(&fresh_iin(), &[])).unwrap();
    let before = env.counts();
    let out = enroll(&env, "token.txt", "weak-out", "weak.txt", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // Every rule it breaks, at once.
    for rule in ["upper-case letter", "digit"] {
        assert!(text(&out).contains(rule), "{rule}: {}", text(&out));
    }
    assert!(!text(&out).contains("lower-case"), "{}", text(&out));
    assert_eq!(env.counts(), before, "nothing was sent");
    assert!(!dir.join("weak-out").exists(), "no keys were generated");

    // RSA, modern PBES2/AES containers.
    let out = enroll(
        &env,
        "token.txt",
        "keys",
        "password.txt",
        &["--email", "holder@example.kz"],
    );
    let files = containers_written(&out, &dir, "keys");
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files[0].starts_with("AUTH_RSA256_") && files[1].starts_with("RSA256_"),
        "{files:?}"
    );
    for f in &files {
        let info = p12_encryption(&dir, f, false);
        assert!(
            info.contains("MAC: sha256, Iteration 600000")
                && info
                    .contains("PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256"),
            "{info}"
        );
        check_container(&dir, f, false);
        if java {
            java_reads(&dir, f, false);
        }
        // By default: OWASP's iteration count for PBKDF2-HMAC-SHA256, the MAC's as high.
        let d = decoded(&dir, f);
        assert_eq!(pkcs12::DEFAULT_ITERATIONS, 600_000);
        assert_eq!(
            d.mac.as_ref().unwrap().iterations,
            pkcs12::DEFAULT_ITERATIONS
        );
        for safe in &d.structure().safes {
            for bag in &safe.bags {
                if let pkcs12::BagKind::ShroudedKey(pkcs12::Encryption::Pbes2 {
                    iterations, ..
                }) = bag.kind
                {
                    assert_eq!(iterations, pkcs12::DEFAULT_ITERATIONS);
                }
            }
            if let Some(pkcs12::Encryption::Pbes2 { iterations, .. }) = safe.encryption {
                assert_eq!(iterations, pkcs12::DEFAULT_ITERATIONS);
            }
        }
        assert!(
            d.certificates().len() >= 2,
            "the chain follows the certificate"
        );
    }
    // The chain, for checking the legacy containers (which carry none).
    std::fs::copy(dir.join("cas.pem"), dir.join("chain.pem")).unwrap();
    // The same token again: the server's refusal is shown with its code, and the --out
    // directory the run created is gone again; one that was there stays, with its files.
    let out = enroll(&env, "token.txt", "again/keys", "password.txt", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("consent_token_replayed"),
        "{}",
        text(&out)
    );
    assert!(!dir.join("again").exists(), "no empty --out is left behind");
    std::fs::create_dir_all(dir.join("mine/empty")).unwrap();
    std::fs::write(dir.join("mine/notes.txt"), "mine").unwrap();
    for out in ["mine", "mine/empty"] {
        let run = enroll(&env, "token.txt", out, "password.txt", &[]);
        assert_eq!(run.status.code(), Some(3), "{}", text(&run));
    }
    assert!(dir.join("mine/empty").is_dir() && dir.join("mine/notes.txt").is_file());

    // EC keys, legacy 3DES/RC2 containers.
    std::fs::write(dir.join("token2.txt"), env.cli_token(&fresh_iin(), &[])).unwrap();
    let out = enroll(
        &env,
        "token2.txt",
        "legacy",
        "password.txt",
        &[
            "--key-type",
            "ec-p256",
            "--legacy-p12",
            "--email",
            "holder@example.kz",
        ],
    );
    let files = containers_written(&out, &dir, "legacy");
    assert!(
        files[0].starts_with("AUTH_ECDSA256_") && files[1].starts_with("ECDSA256_"),
        "{files:?}"
    );
    let theirs = ncas_container().structure();
    for f in &files {
        let info = p12_encryption(&dir, f, true);
        for line in [
            "MAC: sha1, Iteration 1024",
            "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 1024",
            "PKCS7 Encrypted data: pbeWithSHA1And40BitRC2-CBC, Iteration 1024",
        ] {
            assert!(info.contains(line), "{line}: {info}");
        }
        check_container(&dir, f, true);
        if java {
            java_reads(&dir, f, true);
        }
        // NCA's container, field by field (salts, key, certificate and SKI aside).
        assert_eq!(decoded(&dir, f).structure(), theirs, "{f}");
    }
}

#[test]
fn tamga_enroll_polls_a_pending_application_and_resumes_after_approval() {
    let env = Env::sqlite();
    let dir = env.dir().to_path_buf();
    std::fs::write(dir.join("password.txt"), "Secret2026\n").unwrap();
    let mut c = claims(&fresh_iin());
    c.verification.register_match = false;
    std::fs::write(dir.join("token.txt"), env.minted(&c)).unwrap();
    let out = enroll(
        &env,
        "token.txt",
        "keys",
        "password.txt",
        &[
            "--poll-timeout",
            "3",
            "--email",
            "p@example.kz",
            "--p12-iterations",
            "100000",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("pending_review"), "{shown}");
    // The command is the line after "run:".
    let resume_line = shown
        .lines()
        .skip_while(|l| !l.ends_with("When it is approved, run:"))
        .nth(1)
        .unwrap_or_else(|| panic!("no resume command in: {shown}"))
        .trim()
        .to_owned();
    assert!(resume_line.contains(" resume "), "{resume_line}");
    assert!(p12s(&dir.join("keys")).is_empty());
    // The keys wait encrypted, readable by nobody else.
    let pending: Vec<_> = std::fs::read_dir(dir.join("keys"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(pending.len(), 2);
    for p in &pending {
        let pem = std::fs::read_to_string(p.path()).unwrap();
        assert!(pem.contains("BEGIN ENCRYPTED PRIVATE KEY"), "{pem}");
        assert_eq!(p.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    }
    let id = resume_line
        .split("--application=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let out = run(tamga(&dir).args(["applications", "approve", id]));
    assert!(out.status.success(), "{}", text(&out));
    for needed in [
        "--password-file ",
        "--p12-iterations 100000",
        "--access-token=",
    ] {
        assert!(resume_line.contains(needed), "{needed}: {resume_line}");
    }
    // Run as printed, by a shell, from another directory, with nothing on stdin.
    std::fs::create_dir(dir.join("elsewhere")).unwrap();
    let out = Command::new("sh")
        .current_dir(dir.join("elsewhere"))
        .args(["-c", &resume_line])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{resume_line}: {}", text(&out));
    let files = p12s(&dir.join("keys"));
    assert_eq!(files.len(), 2, "{files:?}");
    let leftovers = std::fs::read_dir(dir.join("keys")).unwrap().count();
    assert_eq!(
        leftovers, 2,
        "the pending keys are gone once the containers exist"
    );
    for f in &files {
        std::fs::copy(dir.join("keys").join(f), dir.join(f)).unwrap();
        check_container(&dir, f, false);
        let d = decoded(&dir, f);
        assert_eq!(d.mac.unwrap().iterations, 100_000, "--p12-iterations");
    }
}

#[test]
fn tamga_enroll_help_names_the_client_not_the_server() {
    let out = run(crate::support::tamga_enroll().arg("--help"));
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    let headline = shown.lines().next().unwrap_or_default();
    assert!(
        headline.starts_with("The citizen's client of Tamga"),
        "{shown}"
    );
    assert!(!shown.contains("registration authority server"), "{shown}");
}

/// `--language` says what it sets: the language of the server's e-mails, not this client's.
#[test]
fn tamga_enroll_help_says_language_is_the_emails() {
    let out = run(crate::support::tamga_enroll().arg("--help"));
    let shown = text(&out);
    let language = shown
        .split("--language <LANGUAGE>")
        .nth(1)
        .unwrap_or_else(|| panic!("{shown}"));
    let described: String = language
        .split("--storage")
        .next()
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        described.starts_with("Language of the e-mails the server sends"),
        "{described}"
    );
    assert!(
        described.contains("own messages are in English"),
        "{described}"
    );
}

/// Without a terminal and without `--password-file` (a script, a service), the client says
/// what to give it, exit 2, before it contacts anything or creates anything; it never fails
/// with the terminal's "No such device or address".
#[test]
fn tamga_enroll_without_a_terminal_asks_for_a_password_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token.txt"), "a.b.c").unwrap();
    let closed = format!("http://127.0.0.1:{}", free_port());
    let out = crate::support::tamga_enroll()
        .current_dir(dir.path())
        .args([
            "--server",
            &closed,
            "--token-file",
            "token.txt",
            "--out",
            "keys",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("no terminal") && shown.contains("--password-file PATH"),
        "{shown}"
    );
    assert!(!shown.contains("os error"), "{shown}");
    assert!(
        !shown.contains("cannot reach"),
        "the password comes first: {shown}"
    );
    assert!(!dir.path().join("keys").exists());
}

/// A server that does not answer stops the run before any key is generated, naming the URL
/// it tried; the --out directory is not even created.
#[test]
fn tamga_enroll_checks_the_server_before_generating_keys() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token.txt"), "a.b.c").unwrap();
    std::fs::write(dir.path().join("password.txt"), "Secret2026\n").unwrap();
    let closed = format!("http://127.0.0.1:{}", free_port());
    let started = std::time::Instant::now();
    let out = crate::support::tamga_enroll()
        .current_dir(dir.path())
        .args(["--server", &closed, "--token-file", "token.txt"])
        .args(["--password-file", "password.txt", "--out", "keys"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(&format!("cannot reach {closed}/healthz")),
        "{shown}"
    );
    assert!(!shown.contains("Generating"), "{shown}");
    assert!(!dir.path().join("keys").exists());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "fails fast"
    );
    // A --server that is no URL is a usage error.
    let out = crate::support::tamga_enroll()
        .current_dir(dir.path())
        .args(["--server", "127.0.0.1:8080", "--token-file", "token.txt"])
        .args(["--password-file", "password.txt", "--out", "keys"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--server"), "{}", text(&out));
    assert!(!dir.path().join("keys").exists());
}
