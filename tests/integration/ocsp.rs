//! The OCSP responder against the `openssl ocsp` client, pkilint's `lint_ocsp_response`,
//! a thousand hostile requests, and two instances on one PostgreSQL.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use der::Decode;
use serde_json::json;
use x509_ocsp::{OcspResponse, OcspResponseStatus};

use crate::enroll::{lint_with, Env};
use crate::support::{client, post_json, text};

/// Run `openssl ocsp` against `base` with the dev hierarchy; returns everything it printed.
pub fn ocsp(dir: &Path, base: &str, args: &[&str]) -> String {
    let url = format!("{base}/ocsp");
    let mut all = vec![
        "ocsp",
        "-issuer",
        "certs-dev/nca_rsa_dev.pem",
        "-VAfile",
        "certs-dev/ocsp_nca_rsa_dev.pem",
        "-url",
        &url,
    ];
    all.extend_from_slice(args);
    let out = crate::support::openssl_command()
        .current_dir(dir)
        .args(&all)
        .output()
        .unwrap();
    text(&out)
}

pub fn enroll(env: &Env) -> (String, String, String) {
    let dir = env.dir();
    let (iin, created) = env.enroll_holder(None);
    for c in created["certificates"].as_array().unwrap() {
        let kind = c["kind"].as_str().unwrap();
        std::fs::write(
            dir.join(format!("{kind}-{iin}.pem")),
            c["pem"].as_str().unwrap(),
        )
        .unwrap();
    }
    let sign_serial = created["certificates"][1]["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    let auth = dir.join(format!("auth-{iin}.pem")).display().to_string();
    (iin, auth, sign_serial)
}

fn revoke(base: &str, env: &Env, iin: &str, serial: &str, reason: &str) {
    let resp = post_json(
        &format!("{base}/api/v1/revocations"),
        &env.revocation_token(iin),
        &json!({"serial": serial, "reason": reason}),
    );
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());
}

fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

#[test]
fn ocsp_answers_good_revoked_unknown_to_openssl() {
    ocsp_answers(Env::sqlite());
}

#[test]
fn ocsp_answers_with_keys_in_softhsm() {
    let test = "ocsp_answers_with_keys_in_softhsm";
    if let Some(env) = Env::sqlite_softhsm(test, "", &[]) {
        ocsp_answers(env);
    }
}

/// Good, revoked and unknown answers to `openssl ocsp` (nonce or not, SHA-1 and SHA-256
/// CertIDs, POST and GET), verified by openssl and linted by pkilint.
fn ocsp_answers(env: Env) {
    let dir = env.dir().to_path_buf();
    let base = env.server.base.clone();
    let (iin, _, sign_serial) = enroll(&env);
    let auth = format!("auth-{iin}.pem");
    let sign = format!("sign-{iin}.pem");

    // With a nonce (signed on demand), without (pre-signed), SHA-1 and SHA-256 CertIDs.
    for extra in [
        vec![],
        vec!["-no_nonce"],
        vec!["-sha256"],
        vec!["-sha256", "-no_nonce"],
    ] {
        // openssl wants the digest before -cert.
        let mut args = extra.clone();
        args.extend(["-cert", auth.as_str()]);
        let out = ocsp(&dir, &base, &args);
        assert!(out.contains("Response verify OK"), "{extra:?}: {out}");
        assert!(out.contains(&format!("{auth}: good")), "{extra:?}: {out}");
        assert!(!out.contains("WARNING"), "{extra:?}: {out}");
    }
    // Several CertIDs in one request.
    let out = ocsp(
        &dir,
        &base,
        &["-cert", &auth, "-cert", &sign, "-serial", "0x0BADC0DE"],
    );
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(
        out.contains(&format!("{auth}: good")) && out.contains(&format!("{sign}: good")),
        "{out}"
    );
    assert!(out.contains("0x0BADC0DE: unknown"), "{out}");
    // Warm the pre-signed cache for SIGN, then revoke it: it must turn within 2 seconds.
    let out = ocsp(&dir, &base, &["-cert", &sign, "-no_nonce"]);
    assert!(out.contains(&format!("{sign}: good")), "{out}");
    revoke(&base, &env, &iin, &sign_serial, "keyCompromise");
    let took = wait_until("revoked on OCSP", Duration::from_secs(2), || {
        ocsp(&dir, &base, &["-cert", &sign, "-no_nonce"]).contains(&format!("{sign}: revoked"))
    });
    eprintln!("revocation visible on OCSP after {took:?}");
    for extra in [vec!["-no_nonce"], vec![]] {
        let mut args = vec!["-cert", sign.as_str()];
        args.extend(extra.iter().copied());
        let out = ocsp(&dir, &base, &args);
        assert!(out.contains("Response verify OK"), "{out}");
        assert!(
            out.contains(&format!("{sign}: revoked")) && out.contains("Reason: keyCompromise"),
            "{out}"
        );
        assert!(out.contains("Revocation Time:"), "{out}");
    }
    let out = ocsp(&dir, &base, &["-serial", "0x1234", "-no_nonce"]);
    assert!(
        out.contains("0x1234: unknown") && out.contains("Response verify OK"),
        "{out}"
    );
    // An issuer we do not operate (the responder certificate is no CA; the root is answered
    // for, with its own responses: see root_ocsp.rs).
    let out = crate::support::openssl_command()
        .current_dir(&dir)
        .args([
            "ocsp",
            "-issuer",
            "certs-dev/ocsp_nca_rsa_dev.pem",
            "-serial",
            "0x77",
            "-url",
            &format!("{base}/ocsp"),
            "-no_nonce",
        ])
        .output()
        .unwrap();
    assert!(text(&out).contains("unauthorized"), "{}", text(&out));

    // pkilint on good, revoked and unknown responses; GET with and without percent-encoding.
    for (name, args) in [
        ("good", vec!["-cert", auth.as_str()]),
        ("revoked", vec!["-cert", sign.as_str()]),
        ("unknown", vec!["-serial", "0x77"]),
    ] {
        let mut all = args.clone();
        all.extend(["-no_nonce", "-reqout", "req.der", "-respout", "resp.der"]);
        ocsp(&dir, &base, &all);
        lint_with(
            &dir,
            "lint_ocsp_response",
            &["lint", "-s", "WARNING", "resp.der"],
        );
        let req = std::fs::read(dir.join("req.der")).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&req);
        let encoded = b64
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        for path in [encoded, b64] {
            let resp = env.server.get(&format!("/ocsp/{path}"));
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["content-type"], "application/ocsp-response");
            let cc = resp.headers()["cache-control"].to_str().unwrap().to_owned();
            assert!(
                cc.contains("public")
                    && cc.contains("no-transform")
                    && cc.contains("must-revalidate")
                    && cc.contains("max-age="),
                "{cc}"
            );
            for h in ["etag", "last-modified", "expires"] {
                assert!(resp.headers().contains_key(h), "{name}: no {h}");
            }
            std::fs::write(dir.join("get.der"), resp.bytes().unwrap()).unwrap();
            let verified = crate::support::openssl_command()
                .current_dir(&dir)
                .args([
                    "ocsp",
                    "-respin",
                    "get.der",
                    "-reqin",
                    "req.der",
                    "-issuer",
                    "certs-dev/nca_rsa_dev.pem",
                    "-VAfile",
                    "certs-dev/ocsp_nca_rsa_dev.pem",
                    "-resp_text",
                ])
                .output()
                .unwrap();
            let shown = text(&verified);
            assert!(shown.contains("Response verify OK"), "{name}: {shown}");
            assert!(
                shown.contains(&format!("Cert Status: {name}")),
                "{name}: {shown}"
            );
        }
    }
    let metrics = env.server.get("/metrics").text().unwrap();
    for needle in [
        r#"tamga_ocsp_responses_total{status="good"}"#,
        r#"tamga_ocsp_responses_total{status="revoked"}"#,
        r#"tamga_ocsp_responses_total{status="unknown"}"#,
        r#"tamga_ocsp_responses_total{status="unauthorized"}"#,
        r#"tamga_ocsp_cache_total{result="hit"}"#,
        r#"tamga_ocsp_cache_total{result="miss"}"#,
        "tamga_ocsp_signing_seconds_count",
    ] {
        assert!(metrics.contains(needle), "{needle}: {metrics}");
    }
}

/// Every answer to junk is a well-formed OCSP response (or a 4xx), never a 500, and the
/// server keeps serving.
#[test]
fn a_thousand_hostile_requests_get_well_formed_answers() {
    let env = Env::sqlite();
    let dir = env.dir().to_path_buf();
    let base = env.server.base.clone();
    let (iin, _, _) = enroll(&env);
    let auth = format!("auth-{iin}.pem");
    ocsp(&dir, &base, &["-cert", &auth, "-reqout", "valid.der"]);
    let valid = std::fs::read(dir.join("valid.der")).unwrap();

    let mut cases: Vec<(Vec<u8>, &str)> = Vec::new();
    for len in 0..valid.len() {
        cases.push((valid[..len].to_vec(), "application/ocsp-request"));
    }
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    while cases.len() < 900 {
        let mut m = valid.clone();
        for _ in 0..(1 + next() % 3) {
            let i = (next() as usize) % m.len();
            m[i] ^= 1 << (next() % 8);
        }
        cases.push((m, "application/ocsp-request"));
    }
    for _ in 0..50 {
        let len = (next() % 300) as usize;
        cases.push((
            (0..len).map(|_| next() as u8).collect(),
            "application/ocsp-request",
        ));
    }
    cases.push((vec![0x30; 5000], "application/ocsp-request"));
    let mut huge = vec![0x30, 0x82, 0x13, 0x88];
    huge.extend(vec![0; 5000]);
    cases.push((huge, "application/ocsp-request"));
    for _ in 0..20 {
        cases.push((valid.clone(), "application/json"));
        cases.push((valid.clone(), "text/plain"));
    }
    let client = client();
    let mut answers = 0;
    let check = |status: u16, bytes: &[u8], what: &str| {
        assert!(status < 500, "{what}: HTTP {status}");
        if status == 200 {
            let parsed = OcspResponse::from_der(bytes)
                .unwrap_or_else(|e| panic!("{what}: not an OCSPResponse: {e}"));
            assert!(
                matches!(
                    parsed.response_status,
                    OcspResponseStatus::MalformedRequest
                        | OcspResponseStatus::Unauthorized
                        | OcspResponseStatus::Successful
                ),
                "{what}: {:?}",
                parsed.response_status
            );
        }
    };
    for (i, (bytes, content_type)) in cases.iter().enumerate() {
        let resp = client
            .post(format!("{base}/ocsp"))
            .header("Content-Type", *content_type)
            .body(bytes.clone())
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        check(status, &resp.bytes().unwrap(), &format!("case {i}"));
        answers += 1;
    }
    // Bad base64, bad percent-encoding, truncated base64 on GET.
    let good_b64 = base64::engine::general_purpose::STANDARD.encode(&valid);
    let mut gets: Vec<String> = vec![
        "!!!".into(),
        "%ZZ".into(),
        "%".into(),
        "====".into(),
        "A".into(),
        String::new(),
    ];
    for len in (0..good_b64.len()).step_by(3) {
        gets.push(good_b64[..len].to_owned());
    }
    gets.push("A".repeat(20_000));
    for path in &gets {
        let resp = client.get(format!("{base}/ocsp/{path}")).send().unwrap();
        let status = resp.status().as_u16();
        check(status, &resp.bytes().unwrap(), &format!("GET {path:.40}"));
        answers += 1;
    }
    assert!(answers >= 1000, "{answers}");
    let out = ocsp(&dir, &base, &["-cert", &auth]);
    assert!(
        out.contains(&format!("{auth}: good")),
        "still serving: {out}"
    );
    assert_eq!(env.server.get("/healthz").status(), 200);
}

#[test]
fn ocsp_revocation_through_one_instance_reaches_the_other_on_postgres() {
    let Some(admin) = crate::support::postgres_url(
        "ocsp_revocation_through_one_instance_reaches_the_other_on_postgres",
    ) else {
        return;
    };
    let a = Env::postgres(&admin);
    let (dir_b, b) = a.second_instance(&[]);
    let (iin, _, sign_serial) = enroll(&a);
    let sign = a.dir().join(format!("sign-{iin}.pem"));
    std::fs::copy(&sign, dir_b.path().join("sign.pem")).unwrap();
    // B has a pre-signed `good` answer cached.
    for _ in 0..2 {
        let out = ocsp(dir_b.path(), &b.base, &["-cert", "sign.pem", "-no_nonce"]);
        assert!(out.contains("sign.pem: good"), "{out}");
    }
    revoke(
        &a.server.base,
        &a,
        &iin,
        &sign_serial,
        "cessationOfOperation",
    );
    let took = wait_until(
        "revoked on the other instance",
        Duration::from_secs(2),
        || {
            ocsp(dir_b.path(), &b.base, &["-cert", "sign.pem", "-no_nonce"])
                .contains("sign.pem: revoked")
        },
    );
    eprintln!("revocation visible on the other instance after {took:?}");
}
