#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::TimeZone;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer};

use super::*;

const ISS: &str = "https://digitalid.test";
const AUD: &str = "tamga";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

fn iin() -> String {
    format!("90010130000{}", iin_check_digit("90010130000").unwrap())
}

fn claims() -> Claims {
    let t = now().timestamp();
    Claims {
        iss: ISS.into(),
        aud: Audience::One(AUD.into()),
        sub: iin(),
        jti: "a4b1".into(),
        iat: t,
        nbf: Some(t),
        exp: t + 300,
        purpose: "eds_issuance".into(),
        identity: Identity {
            surname: "ТЕСТОВ".into(),
            name: "ТЕСТ".into(),
            patronymic: Some("ТЕСТОВИЧ".into()),
            birth_date: NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
            sex: "M".into(),
            document: Document {
                kind: "id_card".into(),
                number: "012345678".into(),
                expires: NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
            },
        },
        verification: Verification {
            method: VerificationMethod::DigitalIdBiometric,
            liveness: true,
            register_match: true,
        },
    }
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn public(key: &PKey<Private>) -> PKey<Public> {
    PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap()
}

fn trust(keys: &[&PKey<Private>]) -> TrustedKeys {
    let publics: Vec<_> = keys.iter().map(|k| public(k)).collect();
    TrustedKeys::load(&[], &publics, ISS, AUD).unwrap()
}

/// Sign with any header and algorithm, to build hostile tokens.
fn sign_raw(header: &serde_json::Value, payload: &[u8], key: &PKey<Private>, pss: bool) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap()),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut signer = Signer::new(MessageDigest::sha256(), key).unwrap();
    if pss {
        signer.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        signer
            .set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
            .unwrap();
    }
    signer.update(input.as_bytes()).unwrap();
    let sig = signer.sign_to_vec().unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn code(r: Result<VerifiedConsent, ConsentError>) -> &'static str {
    r.map(|_| "ok").unwrap_or_else(|e| e.code().as_str())
}

/// The code of the verification of `token` for issuance, at [`now`]: `ok` or the refusal's.
fn verdict(keys: &TrustedKeys, token: &str) -> &'static str {
    code(keys.verify(token, Purpose::EdsIssuance, now()))
}

/// The verification, at [`now`], of claims signed with a fresh key that is trusted.
fn fresh_key_verifier() -> impl Fn(&Claims) -> Result<VerifiedConsent, ConsentError> {
    let key = ec_key();
    let keys = trust(&[&key]);
    move |c| keys.verify(&mint_es256(&key, c).unwrap(), Purpose::EdsIssuance, now())
}

/// The code of that verification: `ok` or the refusal's.
fn fresh_key_codes() -> impl Fn(&Claims) -> &'static str {
    let verify = fresh_key_verifier();
    move |c| code(verify(c))
}

#[test]
fn a_minted_es256_token_verifies() {
    let key = ec_key();
    let token = mint_es256(&key, &claims()).unwrap();
    let v = trust(&[&key])
        .verify(&token, Purpose::EdsIssuance, now())
        .unwrap();
    assert_eq!(v.iin().as_str(), iin());
    assert_eq!(v.jti(), "a4b1");
    assert!(v.allows_automatic_issuance());
    assert_eq!(v.identity().surname, "ТЕСТОВ");
}

#[test]
fn rs256_and_ps256_verify_with_a_trusted_rsa_key() {
    let rsa = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let keys = trust(&[&rsa]);
    let kid = jws::VerifyingKey::from_pkey(public(&rsa))
        .unwrap()
        .thumbprint();
    let payload = serde_json::to_vec(&claims()).unwrap();
    for (alg, pss) in [("RS256", false), ("PS256", true)] {
        let token = sign_raw(
            &serde_json::json!({"alg": alg, "kid": kid}),
            &payload,
            &rsa,
            pss,
        );
        assert_eq!(verdict(&keys, &token), "ok", "{alg}");
    }
    // PKCS#1 v1.5 signature presented as PS256 does not verify.
    let token = sign_raw(
        &serde_json::json!({"alg": "PS256", "kid": kid}),
        &payload,
        &rsa,
        false,
    );
    assert_eq!(verdict(&keys, &token), "consent_token_signature_invalid");
}

#[test]
fn every_refusal_has_its_code() {
    let verify = fresh_key_codes();

    let mut c = claims();
    c.iss = "https://evil".into();
    assert_eq!(verify(&c), "consent_token_wrong_issuer");
    let mut c = claims();
    c.aud = Audience::Many(vec!["other".into()]);
    assert_eq!(verify(&c), "consent_token_wrong_audience");
    c.aud = Audience::Many(vec!["other".into(), AUD.into()]);
    assert_eq!(verify(&c), "ok");
    let t = now().timestamp();
    let mut c = claims();
    (c.iat, c.nbf, c.exp) = (t - 400, Some(t - 400), t - 61);
    assert_eq!(verify(&c), "consent_token_expired");
    (c.iat, c.nbf, c.exp) = (t - 400, Some(t - 400), t - 59);
    assert_eq!(verify(&c), "ok", "within the skew");
    (c.iat, c.nbf, c.exp) = (t + 61, Some(t + 61), t + 300);
    assert_eq!(verify(&c), "consent_token_not_yet_valid");
    (c.iat, c.nbf, c.exp) = (t, Some(t), t + 901);
    assert_eq!(verify(&c), "consent_token_lifetime_too_long");
    (c.iat, c.nbf, c.exp) = (t, Some(t), t + 900);
    assert_eq!(verify(&c), "ok");
    let mut c = claims();
    c.purpose = "eds_revocation".into();
    assert_eq!(verify(&c), "consent_token_wrong_purpose");
    let mut c = claims();
    c.sub = "900101300001".into();
    if Iin::parse(&c.sub, now()).is_ok() {
        c.sub = "900101300002".into();
    }
    assert_eq!(verify(&c), "iin_invalid");
    let mut c = claims();
    c.identity.birth_date = NaiveDate::from_ymd_opt(1991, 1, 1).unwrap();
    assert_eq!(verify(&c), "iin_invalid");
    let mut c = claims();
    c.identity.sex = "F".into();
    assert_eq!(
        verify(&c),
        "iin_invalid",
        "a man's IIN (digit 3) with sex F"
    );
    let mut c = claims();
    c.identity.surname = String::new();
    assert_eq!(verify(&c), "consent_token_malformed");
}

#[test]
fn hostile_headers_and_shapes_are_refused() {
    let key = ec_key();
    let keys = trust(&[&key]);
    let payload = serde_json::to_vec(&claims()).unwrap();
    let kid = jws::VerifyingKey::from_pkey(public(&key))
        .unwrap()
        .thumbprint();
    let v = |t: &str| verdict(&keys, t);
    // The claims signed (PKCS#1 v1.5 or ECDSA) under the JOSE `header`.
    let under = |header: serde_json::Value| sign_raw(&header, &payload, &key, false);

    assert_eq!(v(""), "consent_token_malformed");
    assert_eq!(v("a.b"), "consent_token_malformed");
    assert_eq!(v("a.b.c.d"), "consent_token_malformed");
    assert_eq!(v("!!.b.c"), "consent_token_malformed");
    assert_eq!(v(&"A".repeat(MAX_TOKEN_LEN + 1)), "consent_token_malformed");
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(&payload)
    );
    assert_eq!(v(&none), "consent_token_algorithm_not_allowed");
    let hs = under(serde_json::json!({"alg": "HS256", "kid": kid}));
    assert_eq!(v(&hs), "consent_token_algorithm_not_allowed");
    // An EC key presented as RS256 (algorithm confusion).
    let rs = under(serde_json::json!({"alg": "RS256", "kid": kid}));
    assert_eq!(v(&rs), "consent_token_algorithm_not_allowed");
    let nokid = mint_es256(&key, &claims()).unwrap();
    let other = ec_key();
    let foreign = mint_es256(&other, &claims()).unwrap();
    assert_eq!(v(&foreign), "consent_token_untrusted_key");
    let unkid = under(serde_json::json!({"alg": "ES256"}));
    assert_eq!(v(&unkid), "consent_token_untrusted_key");
    // Tamper with the payload: same kid, signature no longer matches.
    let mut parts: Vec<&str> = nokid.split('.').collect();
    let mut c = claims();
    c.identity.surname = "БАСҚА".into();
    let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
    parts[1] = &forged;
    assert_eq!(v(&parts.join(".")), "consent_token_signature_invalid");
    let crit = under(serde_json::json!({"alg": "ES256", "kid": kid, "crit": ["exp"]}));
    assert_eq!(v(&crit), "consent_token_malformed");
}

#[test]
fn jwks_files_are_trusted_by_their_kid() {
    let key = ec_key();
    let ec = key.ec_key().unwrap();
    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
    let (mut x, mut y) = (
        openssl::bn::BigNum::new().unwrap(),
        openssl::bn::BigNum::new().unwrap(),
    );
    ec.public_key()
        .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
        .unwrap();
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "did-2026",
        "x": URL_SAFE_NO_PAD.encode(x.to_vec_padded(32).unwrap()),
        "y": URL_SAFE_NO_PAD.encode(y.to_vec_padded(32).unwrap()),
    }]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks.to_string()).unwrap();
    let keys = TrustedKeys::load(&[path], &[], ISS, AUD).unwrap();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","kid":"did-2026"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap());
    let input = format!("{header}.{body}");
    let mut signer = Signer::new(MessageDigest::sha256(), &key).unwrap();
    signer.update(input.as_bytes()).unwrap();
    let sig = openssl::ecdsa::EcdsaSig::from_der(&signer.sign_to_vec().unwrap()).unwrap();
    let mut raw = sig.r().to_vec_padded(32).unwrap();
    raw.extend(sig.s().to_vec_padded(32).unwrap());
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&raw));
    assert_eq!(verdict(&keys, &token), "ok");
    // The same signature under a kid nobody published.
    let other = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","kid":"did-2027"}"#);
    let unknown = format!("{other}.{body}.{}", URL_SAFE_NO_PAD.encode(&raw));
    assert_eq!(verdict(&keys, &unknown), "consent_token_untrusted_key");
}

#[test]
fn a_token_whose_times_contradict_each_other_is_refused_within_the_skew() {
    let verify = fresh_key_codes();
    let t = now().timestamp();
    let mut c = claims();
    // exp 30 s before iat: both within the 60 s allowance of now.
    (c.iat, c.nbf, c.exp) = (t + 20, None, t - 10);
    assert_eq!(verify(&c), "consent_token_lifetime_invalid");
    (c.iat, c.nbf, c.exp) = (t, Some(t), t);
    assert_eq!(verify(&c), "consent_token_lifetime_invalid", "exp == iat");
    (c.iat, c.nbf, c.exp) = (t - 10, Some(t + 50), t + 40);
    assert_eq!(
        verify(&c),
        "consent_token_lifetime_invalid",
        "nbf after exp"
    );
    (c.iat, c.nbf, c.exp) = (t - 10, Some(t + 40), t + 40);
    assert_eq!(verify(&c), "ok", "nbf == exp is a (useless) valid window");
    (c.iat, c.nbf, c.exp) = (t - 10, None, t + 1);
    assert_eq!(verify(&c), "ok");
}

#[test]
fn a_name_with_a_refused_character_is_refused_with_the_code_point() {
    let verify = fresh_key_verifier();
    let mut c = claims();
    c.identity.patronymic = Some("ТЕСТ\u{202E}ОВИЧ".into());
    let e = verify(&c).unwrap_err();
    assert_eq!(e.code().as_str(), "name_invalid");
    assert!(
        e.to_string().contains("identity.patronymic") && e.to_string().contains("U+202E"),
        "{e}"
    );
    // A control character, refused before today as consent_token_malformed, is now named too.
    let mut c = claims();
    c.identity.surname = "ТЕС\u{7}ТОВ".into();
    assert_eq!(code(verify(&c)), "name_invalid");
    // A word mixing scripts is accepted here and sent to review by the RA.
    let mut c = claims();
    c.identity.surname = "ТЕСTОВ".into();
    let v = verify(&c).unwrap();
    assert!(!v.allows_automatic_issuance());
    assert_eq!(v.review_reasons().len(), 1, "{:?}", v.review_reasons());
    assert!(v.review_reasons()[0].contains("U+0054"));
}
