//! GOST SIGN requests at the portal API: a GOST key in the AUTH request, the engine's
//! CryptoPro-A 256-bit curve and a point off its curve are refused with their codes and
//! nothing written (none of it needs the engine); and a server whose OpenSSL has no gost
//! engine answers a GOST SIGN request with 503 `gost_unavailable`, nothing written, while an
//! RSA and EC application is issued.
//!
//! Applications whose SIGN request is GOST and that are accepted are issued by the GOST CA:
//! their tests are with it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use der::{Decode, Encode};
use serde_json::Value;

use crate::enroll::{body, claims, csr, fresh_iin, Env};

/// `openssl req` with the engine, TC26 form (tests/data/gost/README.md).
const OPENSSL_512: &str = include_str!("../data/gost/openssl-req-gost2012-512.csr");
const OPENSSL_256_CRYPTOPRO_A: &str =
    include_str!("../data/gost/openssl-req-gost2012-256-cryptopro-a.csr");

/// Posts an application with `auth` and `sign`, and checks that it is answered with
/// `status` and `code` and that nothing was written.
fn refused(env: &Env, auth: &str, sign: &str, status: u16, code: &str) -> Value {
    let before = env.counts();
    let token = env.minted(&claims(&fresh_iin()));
    let (got, problem) = env.post(Some(&token), &body(auth, sign, None));
    assert_eq!(
        (got, problem["code"].as_str()),
        (status, Some(code)),
        "{problem}"
    );
    let after = env.counts();
    assert_eq!(
        (
            after.applications,
            after.certificates,
            after.used_consent_tokens,
            after.rate_limit_events
        ),
        (
            before.applications,
            before.certificates,
            before.used_consent_tokens,
            before.rate_limit_events
        ),
        "{code} must leave nothing written"
    );
    problem
}

/// The 512-bit request with one byte of its key's point changed (off the curve), as base64
/// DER.
fn off_curve() -> String {
    let body: String = OPENSSL_512
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(body).unwrap();
    let mut request = x509_cert::request::CertReq::from_der(&der).unwrap();
    let mut bits = request
        .info
        .public_key
        .subject_public_key
        .raw_bytes()
        .to_vec();
    let last = bits.len() - 1;
    bits[last] ^= 1;
    request.info.public_key.subject_public_key = der::asn1::BitString::from_bytes(&bits).unwrap();
    STANDARD.encode(request.to_der().unwrap())
}

#[test]
fn gost_csr_refusals_at_the_portal_name_their_code() {
    let env = Env::sqlite();
    let dir = env.dir();
    let (auth, _) = csr(dir, "rsa:2048", &[]);
    let (sign, _) = csr(dir, "ec", &[]);
    let problem = refused(&env, OPENSSL_512, &sign, 422, "gost_key_not_for_auth");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("AUTH keys are RSA"),
        "{problem}"
    );
    let problem = refused(
        &env,
        &auth,
        OPENSSL_256_CRYPTOPRO_A,
        422,
        "gost_parameter_set_unknown",
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("1.2.643.2.2.35.1"),
        "{problem}"
    );
    refused(&env, &auth, &off_curve(), 422, "gost_point_invalid");
}

/// A server without the engine (OpenSSL's engines directory pointed elsewhere) refuses a
/// GOST SIGN request with 503 and issues an RSA and EC pair.
#[test]
fn gost_csr_without_the_engine_is_gost_unavailable_rsa_and_ec_are_issued_and_readiness_is_degraded()
{
    let nowhere = tempfile::tempdir().unwrap();
    let engines = nowhere.path().join("no-engines-here");
    let env = Env::sqlite_with(&[("OPENSSL_ENGINES", engines.to_str().unwrap())]);
    let dir = env.dir();
    let (auth, _) = csr(dir, "rsa:2048", &[]);
    let (sign, _) = csr(dir, "ec", &[]);
    let problem = refused(&env, &auth, OPENSSL_512, 503, "gost_unavailable");
    assert!(
        problem["detail"].as_str().unwrap().contains("RSA and EC"),
        "{problem}"
    );
    // Refusals that need no engine come first.
    refused(&env, OPENSSL_512, &sign, 422, "gost_key_not_for_auth");
    refused(&env, &auth, &off_curve(), 422, "gost_point_invalid");
    let (status, created) = env.post(
        Some(&env.minted(&claims(&fresh_iin()))),
        &body(&auth, &sign, None),
    );
    assert_eq!(status, 201, "{created}");
    // The server is ready for RSA and EC, and says its GOST issuer is not loaded: a degraded
    // check, still 200.
    let ready = env.server.get("/readyz");
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().unwrap();
    assert_eq!(ready["checks"]["issuers"]["nca_rsa_dev"], "ok", "{ready}");
    assert_eq!(
        ready["checks"]["issuers"]["nca_gost_dev"], "degraded",
        "{ready}"
    );
}
