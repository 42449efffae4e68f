//! Hostile operator-side input: environment variables that are not UTF-8, durations that
//! overflow, trusted Digital ID keys that must not be trusted, URLs that would corrupt every
//! certificate, files that never end, and a standard output that goes away.

use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::support::{free_port, run, serve_command, tamga, text};

/// Run `cmd`, killing it (and failing the test) if it has not finished within `limit`.
pub(crate) fn run_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("still running after {limit:?}: {}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run `cmd` (within `QUICK`): it must end without a panic and with exit `code`; returns
/// what it printed.
fn quick_exit(cmd: &mut Command, code: i32) -> String {
    let out = run_within(cmd, QUICK);
    no_panic(&out);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(code), "{shown}");
    shown
}

fn no_panic(out: &Output) {
    let shown = text(out);
    assert_ne!(out.status.code(), Some(101), "{shown}");
    assert!(!shown.contains("panicked"), "{shown}");
}

fn config_check(dir: &Path) -> Command {
    let mut cmd = tamga(dir);
    cmd.args(["config", "check"]);
    cmd
}

/// `tamga serve` on a free port, as a test would start it.
fn serve(dir: &Path) -> Command {
    let mut cmd = serve_command(dir, free_port(), "http");
    cmd.env("TAMGA_SERVER__WORKERS", "1");
    cmd
}

const QUICK: Duration = Duration::from_secs(20);

#[test]
fn environment_values_that_are_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let bad = std::ffi::OsStr::from_bytes(b"secret-\xff\xfe-value");
    // Another program's variable does not matter at all.
    let out = run_within(config_check(dir.path()).env("UNRELATED_BYTES", bad), QUICK);
    assert!(out.status.success(), "{}", text(&out));

    // A configuration override is named, its value never shown.
    let shown = quick_exit(config_check(dir.path()).env("TAMGA_DATABASE__URL", bad), 3);
    assert!(shown.contains("TAMGA_DATABASE__URL"), "{shown}");
    assert!(shown.contains("not UTF-8"), "{shown}");
    assert!(!shown.contains("secret"), "{shown}");

    // The same for serve, and for a variable name that is not UTF-8 either.
    let name = std::ffi::OsStr::from_bytes(b"TAMGA_\xffX");
    quick_exit(serve(dir.path()).env(name, "x"), 3);

    // --config from the environment as bytes: a path like any other (this one is absent).
    let path = std::ffi::OsStr::from_bytes(b"conf-\xff.toml");
    let shown = quick_exit(config_check(dir.path()).env("TAMGA_CONFIG", path), 3);
    assert!(shown.contains("cannot read config file"), "{shown}");
}

#[test]
fn durations_are_bounded_per_key_and_never_wrap() {
    let dir = tempfile::tempdir().unwrap();
    // 144115188075855874 days is 2 days modulo 2^64 seconds.
    std::fs::write(
        dir.path().join("wrap.toml"),
        "[ocsp]\nvalidity = \"144115188075855874d\"\n",
    )
    .unwrap();
    let shown = quick_exit(config_check(dir.path()).args(["--config", "wrap.toml"]), 3);
    assert!(
        shown.contains("ocsp.validity: must be at most 31d"),
        "{shown}"
    );

    for (var, value, shown) in [
        (
            "TAMGA_OCSP__VALIDITY",
            "32d",
            "ocsp.validity: must be at most 31d, got 32d",
        ),
        (
            "TAMGA_CRL__ROOT_VALIDITY",
            "18446744073709551615s",
            "crl.root_validity",
        ),
        (
            "TAMGA_NOTIFY__RETRY_BASE",
            "99999999999999999h",
            "notify.retry_base",
        ),
    ] {
        let out = run_within(config_check(dir.path()).env(var, value), QUICK);
        no_panic(&out);
        assert_eq!(out.status.code(), Some(3), "{var}: {}", text(&out));
        assert!(text(&out).contains(shown), "{var}: {}", text(&out));
    }
    let out = run_within(
        config_check(dir.path()).env("TAMGA_OCSP__VALIDITY", "31d"),
        QUICK,
    );
    assert!(out.status.success(), "{}", text(&out));
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn rsa_jwk(n: &[u8], e: &[u8]) -> serde_json::Value {
    serde_json::json!({"kty": "RSA", "kid": "k1", "use": "sig", "n": b64(n), "e": b64(e)})
}

/// Trusted-key files that Digital ID must never be trusted with, each with a word of the
/// expected refusal.
fn hostile_keys() -> Vec<(&'static str, String, &'static str)> {
    let good = openssl::rsa::Rsa::generate(2048).unwrap();
    let n2048 = good.n().to_vec();
    let aqab = [1u8, 0, 1];
    let jwks = |key: serde_json::Value| serde_json::json!({ "keys": [key] }).to_string();

    let mut huge_n = vec![0xffu8; 100 * 1024];
    if let Some(last) = huge_n.last_mut() {
        *last = 0xfb;
    }
    let mut huge_e = vec![0u8; 4096];
    huge_e[0] = 1;
    huge_e[4095] = 1;
    let weak = openssl::rsa::Rsa::generate(1024).unwrap();
    let weak_pem = openssl::pkey::PKey::from_rsa(weak)
        .unwrap()
        .public_key_to_pem()
        .unwrap();
    vec![
        ("rsa-8-bit.json", jwks(rsa_jwk(&[0xc5], &aqab)), "8 bits"),
        (
            "rsa-100kb.json",
            jwks(rsa_jwk(&huge_n, &aqab)),
            "819200 bits",
        ),
        (
            "rsa-huge-e.json",
            jwks(rsa_jwk(&n2048, &huge_e)),
            "exponent",
        ),
        ("rsa-e-3.json", jwks(rsa_jwk(&n2048, &[3])), "exponent"),
        (
            "ec-off-curve.json",
            jwks(serde_json::json!({
                "kty": "EC", "crv": "P-256", "kid": "e1",
                "x": b64(&[1u8; 32]), "y": b64(&[1u8; 32]),
            })),
            "not on P-256",
        ),
        (
            "oct.json",
            jwks(serde_json::json!({"kty": "oct", "kid": "s1", "k": b64(b"0123456789abcdef")})),
            "symmetric",
        ),
        (
            "bad-kid.json",
            jwks(serde_json::json!({
                "kty": "RSA", "kid": "a\nb", "n": b64(&n2048), "e": b64(&aqab),
            })),
            "kid",
        ),
        (
            "rsa-1024.pem",
            String::from_utf8(weak_pem).unwrap(),
            "1024 bits",
        ),
    ]
}

#[test]
fn config_check_and_serve_refuse_the_same_digital_id_keys() {
    let dir = tempfile::tempdir().unwrap();
    for (file, body, why) in hostile_keys() {
        std::fs::write(dir.path().join(file), body).unwrap();
        for (what, mut cmd) in [
            ("config check", config_check(dir.path())),
            ("serve", serve(dir.path())),
        ] {
            let out = run_within(cmd.env("TAMGA_DIGITAL_ID__KEYS", file), QUICK);
            no_panic(&out);
            let shown = text(&out);
            assert_eq!(out.status.code(), Some(3), "{what} {file}: {shown}");
            assert!(shown.contains("digital_id.keys"), "{what} {file}: {shown}");
            assert!(shown.contains(file), "{what} {file}: {shown}");
            assert!(shown.contains(why), "{what} {file}: {shown}");
        }
    }

    // Acceptable keys pass: RSA-2048 with e = 65537 and a P-256 point on the curve.
    let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
    let ec = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
    )
    .unwrap();
    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
    let (mut x, mut y) = (
        openssl::bn::BigNum::new().unwrap(),
        openssl::bn::BigNum::new().unwrap(),
    );
    ec.public_key()
        .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
        .unwrap();
    let good = serde_json::json!({"keys": [
        rsa_jwk(&rsa.n().to_vec(), &rsa.e().to_vec()),
        {"kty": "EC", "crv": "P-256", "kid": "e1",
         "x": b64(&x.to_vec_padded(32).unwrap()), "y": b64(&y.to_vec_padded(32).unwrap())},
    ]});
    std::fs::write(dir.path().join("good.json"), good.to_string()).unwrap();
    let out = run_within(
        config_check(dir.path()).env("TAMGA_DIGITAL_ID__KEYS", "good.json"),
        QUICK,
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn public_and_cps_urls_hold_only_uri_characters() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!("https://pki.example.kz/{}", "a".repeat(10 * 1024));
    for (var, value, shown) in [
        (
            "TAMGA_SERVER__PUBLIC_URL",
            "https://pki.example.kz/\"x",
            "may not hold",
        ),
        (
            "TAMGA_SERVER__PUBLIC_URL",
            "https://pki.example.kz/\nx",
            "may not hold",
        ),
        (
            "TAMGA_SERVER__PUBLIC_URL",
            "https://pki.example.kz\n",
            "may not hold",
        ),
        (
            "TAMGA_SERVER__PUBLIC_URL",
            "https://pki.example.kz/a b",
            "may not hold",
        ),
        (
            "TAMGA_SERVER__PUBLIC_URL",
            "https://pki.example.kz/%zz",
            "may not hold",
        ),
        (
            "TAMGA_SERVER__PUBLIC_URL",
            "https://pki.example.kz/қ",
            "may not hold",
        ),
        ("TAMGA_SERVER__PUBLIC_URL", long.as_str(), "at most 200"),
        (
            "TAMGA_SERVER__PUBLIC_URL",
            "https://:pw@pki.example.kz",
            "credentials",
        ),
        (
            "TAMGA_SERVER__PUBLIC_URL",
            "https://pki.example.kz/#x",
            "fragment",
        ),
        ("TAMGA_SERVER__PUBLIC_URL", "/relative/path", "invalid URL"),
        (
            "TAMGA_CA__CPS_URL",
            "https://pki.example.kz/cps\"",
            "may not hold",
        ),
        (
            "TAMGA_CA__CPS_URL",
            "https://u@pki.example.kz/cps",
            "credentials",
        ),
    ] {
        let out = run_within(config_check(dir.path()).env(var, value), QUICK);
        no_panic(&out);
        let shown_out = text(&out);
        assert_eq!(out.status.code(), Some(3), "{var}={value:?}: {shown_out}");
        let key = if var == "TAMGA_CA__CPS_URL" {
            "ca.cps_url"
        } else {
            "server.public_url"
        };
        assert!(shown_out.contains(key), "{var}={value:?}: {shown_out}");
        assert!(shown_out.contains(shown), "{var}={value:?}: {shown_out}");
        assert!(
            shown_out.len() < 2048,
            "the message echoes the long value: {shown_out}"
        );
    }
    let out = run_within(
        config_check(dir.path())
            .env(
                "TAMGA_SERVER__PUBLIC_URL",
                "https://pki.example.kz:8443/tamga/",
            )
            .env("TAMGA_CA__CPS_URL", "https://pki.example.kz/cps%20v2"),
        QUICK,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("https://pki.example.kz:8443/tamga\n"),
        "{}",
        text(&out)
    );
}

#[test]
fn files_that_never_end_are_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    // --config /dev/zero
    let shown = quick_exit(config_check(dir.path()).args(["--config", "/dev/zero"]), 3);
    assert!(shown.contains("not a regular file"), "{shown}");

    // A configuration file larger than 1 MiB.
    let big = format!("# {}\n", "x".repeat(1024 * 1024));
    std::fs::write(dir.path().join("big.toml"), big).unwrap();
    let out = run_within(
        config_check(dir.path()).args(["--config", "big.toml"]),
        QUICK,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("limit of 1048576 bytes"),
        "{}",
        text(&out)
    );

    // A trusted key file that is a FIFO: refused without opening it (open would block).
    let fifo = dir.path().join("fifo.pem");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let out = run_within(
        config_check(dir.path()).env("TAMGA_DIGITAL_ID__KEYS", "fifo.pem"),
        QUICK,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("not a regular file"), "{}", text(&out));

    // A development hierarchy whose issuing CA key file is linked to /dev/zero.
    let out = run(tamga(dir.path()).args(["ca", "init", "--dev"]));
    assert!(out.status.success(), "{}", text(&out));
    let key = dir.path().join("certs-dev/nca_rsa_dev.key.pem");
    let saved = dir.path().join("issuing.key.pem");
    std::fs::rename(&key, &saved).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &key).unwrap();
    for mut cmd in [config_check(dir.path()), serve(dir.path())] {
        let shown = quick_exit(&mut cmd, 3);
        assert!(
            shown.contains("nca_rsa_dev.key.pem") && shown.contains("not a regular file"),
            "{shown}"
        );
    }
    std::fs::remove_file(&key).unwrap();
    std::fs::rename(&saved, &key).unwrap();

    // crl import /dev/zero: refused (5), naming the file.
    let shown = quick_exit(tamga(dir.path()).args(["crl", "import", "/dev/zero"]), 5);
    assert!(shown.contains("/dev/zero: not a regular file"), "{shown}");
}

#[test]
fn a_closed_standard_output_ends_the_listing_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(tamga(dir.path()).args(["ca", "init", "--dev"]));
    assert!(out.status.success(), "{}", text(&out));
    // 3000 rows, several times what a pipe buffers.
    let out =
        run(tamga(dir.path()).args(["dev", "seed-revoked", "--count", "3000", "--out", "seed"]));
    assert!(out.status.success(), "{}", text(&out));
    let list = || {
        let mut cmd = tamga(dir.path());
        cmd.args(["certs", "list", "--limit", "3000"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let full = run(&mut list());
    assert!(full.status.success(), "{}", text(&full));
    assert!(
        full.stdout.len() > 128 * 1024,
        "{} bytes",
        full.stdout.len()
    );

    // The reader goes away before the first line: `tamga certs list | true`.
    let mut child = list().spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(out.stderr.is_empty(), "{}", text(&out));

    // The reader takes one line and goes away: `tamga certs list | head -1`.
    let mut child = list().spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    let out = child.wait_with_output().unwrap();
    no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(out.stderr.is_empty(), "{}", text(&out));
}
