#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use der::asn1::{BitString, ObjectIdentifier, OctetString, SequenceOf};
use der::{Any, Decode, Encode};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::EcPoint;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::name::Name;
use x509_cert::request::CertReq;

use super::super::{validate, validate_sign, CsrError, ValidatedCsr};
use super::{check_point, group};
use crate::csr::SubjectKeyType;
use crate::gost::oid::*;
use crate::gost::{self, engine_for_test, Form, GostPublicKey, KeySize};

/// `openssl req` with the engine, TC26 form (tests/data/gost/README.md).
const OPENSSL_512: &str = include_str!("../../../tests/data/gost/openssl-req-gost2012-512.csr");
const OPENSSL_256: &str = include_str!("../../../tests/data/gost/openssl-req-gost2012-256.csr");
/// The engine's `paramset:A` for 256 bits: CryptoPro-A.
const OPENSSL_256_CRYPTOPRO_A: &str =
    include_str!("../../../tests/data/gost/openssl-req-gost2012-256-cryptopro-a.csr");

fn der_of(pem: &str) -> Vec<u8> {
    super::super::decode(pem).unwrap()
}

fn text(der: &[u8]) -> String {
    STANDARD.encode(der)
}

/// The request `pem` with `change` made to it (its signature left as it was).
fn changed(pem: &str, change: impl FnOnce(&mut CertReq)) -> String {
    let mut request = CertReq::from_der(&der_of(pem)).unwrap();
    change(&mut request);
    text(&request.to_der().unwrap())
}

/// A GOST SubjectPublicKeyInfo with the key algorithm `key`, the parameter OIDs and `point`.
fn spki(
    key: ObjectIdentifier,
    parameters: &[ObjectIdentifier],
    point: &[u8],
) -> SubjectPublicKeyInfoOwned {
    let mut sequence: SequenceOf<ObjectIdentifier, 3> = SequenceOf::new();
    for p in parameters {
        sequence.add(*p).unwrap();
    }
    SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: key,
            parameters: Some(Any::encode_from(&sequence).unwrap()),
        },
        subject_public_key: BitString::from_bytes(
            &OctetString::new(point.to_vec()).unwrap().to_der().unwrap(),
        )
        .unwrap(),
    }
}

/// The fixture's key point.
fn point_of(pem: &str) -> Vec<u8> {
    let request = CertReq::from_der(&der_of(pem)).unwrap();
    GostPublicKey::from_spki(&request.info.public_key)
        .unwrap()
        .point()
        .to_vec()
}

fn refused(outcome: Result<ValidatedCsr, CsrError>) -> CsrError {
    match outcome {
        Ok(v) => panic!("accepted: {:?}", v.key_type()),
        Err(e) => e,
    }
}

/// A request for `key` whose key is in `key_form` and whose signature is in `signature_form`.
fn request(
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
    key_form: Form,
    signature_form: Form,
) -> Vec<u8> {
    let public = GostPublicKey::from_der(&key.public_key_to_der().unwrap()).unwrap();
    let info = x509_cert::request::CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject: Name::from_str("CN=x").unwrap(),
        public_key: public.to_spki(key_form).unwrap(),
        attributes: Default::default(),
    };
    let signature = gost::sign(key, &info.to_der().unwrap(), signature_form).unwrap();
    CertReq {
        info,
        algorithm: gost::signature_algorithm_identifier(public.size(), signature_form).unwrap(),
        signature: BitString::from_bytes(&signature).unwrap(),
    }
    .to_der()
    .unwrap()
}

/// The curves' constants are the engine's: the generator is on its curve and of order q,
/// and the keys in `openssl req`'s requests lie in its subgroup. (No engine needed.)
#[test]
fn the_curves_of_parameter_set_a_hold_the_engines_keys() {
    let mut ctx = BigNumContext::new().unwrap();
    for size in [KeySize::Bits512, KeySize::Bits256] {
        let g = group(size).expect("the curve builds");
        let generator = g.group.generator_opt().unwrap();
        assert!(generator.is_on_curve(&g.group, &mut ctx).unwrap());
        let mut product = EcPoint::new(&g.group).unwrap();
        product.mul2(&g.group, generator, &g.q, &mut ctx).unwrap();
        assert!(product.is_infinity(&g.group), "{size:?}");
    }
    for pem in [OPENSSL_512, OPENSSL_256] {
        let request = CertReq::from_der(&der_of(pem)).unwrap();
        let key = GostPublicKey::from_spki(&request.info.public_key).unwrap();
        check_point(&key).unwrap();
    }
}

/// The requests `openssl req` wrote (TC26 form) are accepted as SIGN requests: the key goes
/// on in NCA's form, and its identity is that encoding's.
#[test]
fn the_requests_openssl_req_writes_are_accepted() {
    if !engine_for_test("the_requests_openssl_req_writes_are_accepted") {
        return;
    }
    for (pem, size) in [
        (OPENSSL_512, KeySize::Bits512),
        (OPENSSL_256, KeySize::Bits256),
    ] {
        let validated = validate_sign(pem).unwrap();
        assert_eq!(validated.key_type(), SubjectKeyType::Gost(size));
        assert_eq!(validated.key_type().gost_size(), Some(size));
        assert!(!validated.key_type().is_rsa());
        let request = CertReq::from_der(&der_of(pem)).unwrap();
        let submitted = request.info.public_key.to_der().unwrap();
        let nca = gost::spki_to_nca(&submitted).unwrap();
        assert_eq!(validated.spki_der(), nca.as_slice());
        assert_eq!(
            GostPublicKey::from_der(validated.spki_der())
                .unwrap()
                .form(),
            Form::Nca
        );
        assert_eq!(
            validated.identity().sha256_hex(),
            hex::encode(openssl::sha::sha256(&nca))
        );
        assert_eq!(validated.email(), None);
        assert_eq!(validated.der(), der_of(pem).as_slice());
    }
}

/// One key in NCA's form and in the TC26 form — and with the signature in the other form —
/// is accepted each time as the same key (the duplicate-key rule compares identities).
#[test]
fn a_key_in_either_form_is_one_key() {
    if !engine_for_test("a_key_in_either_form_is_one_key") {
        return;
    }
    for size in [KeySize::Bits512, KeySize::Bits256] {
        let key = gost::generate(size).unwrap();
        let subject = Name::from_str("CN=tamga-enroll").unwrap();
        let nca = validate_sign(&text(
            &gost::certification_request(&subject, &key, Form::Nca).unwrap(),
        ))
        .unwrap();
        let tc26 = validate_sign(&text(
            &gost::certification_request(&subject, &key, Form::Tc26).unwrap(),
        ))
        .unwrap();
        assert_eq!(nca.identity(), tc26.identity(), "{size:?}");
        assert_eq!(nca.spki_der(), tc26.spki_der());
        assert_eq!(nca.key_type(), SubjectKeyType::Gost(size));
        for (key_form, signature_form) in [(Form::Nca, Form::Tc26), (Form::Tc26, Form::Nca)] {
            let mixed = validate_sign(&text(&request(&key, key_form, signature_form))).unwrap();
            assert_eq!(mixed.identity(), nca.identity());
        }
        // Another key is another identity.
        let other = gost::generate(size).unwrap();
        let other = validate_sign(&text(
            &gost::certification_request(&subject, &other, Form::Nca).unwrap(),
        ))
        .unwrap();
        assert_ne!(other.identity(), nca.identity());
    }
}

/// An e-mail requested in a GOST request is read as in an RSA or EC one.
#[test]
fn the_email_of_a_gost_request_is_read() {
    if !engine_for_test("the_email_of_a_gost_request_is_read") {
        return;
    }
    let key = gost::generate(KeySize::Bits512).unwrap();
    let subject = Name::from_str("CN=tamga-enroll").unwrap();
    let der =
        gost::certification_request_with_email(&subject, &key, Form::Nca, Some("a@example.kz"))
            .unwrap();
    assert_eq!(
        validate_sign(&text(&der)).unwrap().email(),
        Some("a@example.kz")
    );
}

/// A GOST key anywhere but in the SIGN request is refused as such, in either form, before
/// anything else is looked at (no engine needed).
#[test]
fn a_gost_key_outside_the_sign_request_is_refused() {
    let nca = changed(OPENSSL_512, |r| {
        r.info.public_key = gost::GostPublicKey::from_spki(&r.info.public_key)
            .unwrap()
            .to_spki(Form::Nca)
            .unwrap();
    });
    for pem in [OPENSSL_512.to_owned(), OPENSSL_256.to_owned(), nca] {
        let e = refused(validate(&pem));
        assert!(matches!(e, CsrError::GostKeyNotForAuth), "{e:?}");
        assert_eq!(e.code().as_str(), "gost_key_not_for_auth");
        assert!(e.to_string().contains("AUTH keys are RSA"), "{e}");
    }
}

/// Curves other than parameter set A of the key's size, and parameters that name another
/// digest, are refused as unknown parameter sets; the engine's own 256-bit `paramset:A`
/// (CryptoPro-A) among them. Parameters that are not a parameter sequence are an encoding
/// refusal. (No engine needed.)
#[test]
fn unknown_parameter_sets_are_refused() {
    let e = refused(validate_sign(OPENSSL_256_CRYPTOPRO_A));
    assert!(
        matches!(&e, CsrError::GostParameterSetUnknown(m) if m.contains("1.2.643.2.2.35.1")),
        "{e:?}"
    );
    assert_eq!(e.code().as_str(), "gost_parameter_set_unknown");
    let point = point_of(OPENSSL_512);
    let set_b = ObjectIdentifier::new_unwrap("1.2.643.7.1.2.1.2.2");
    for parameters in [
        vec![set_b, TC26_DIGEST_512],
        vec![TC26_PARAM_SET_256_A, TC26_DIGEST_512],
        vec![TC26_PARAM_SET_512_A, TC26_DIGEST_256],
    ] {
        let pem = changed(OPENSSL_512, |r| {
            r.info.public_key = spki(TC26_KEY_512, &parameters, &point)
        });
        let e = refused(validate_sign(&pem));
        assert!(
            matches!(e, CsrError::GostParameterSetUnknown(_)),
            "{parameters:?}: {e:?}"
        );
    }
    let pem = changed(OPENSSL_512, |r| {
        r.info.public_key = spki(NCA_KEY_512, &[NCA_PARAM_SET_256_A, NCA_DIGEST_512], &point)
    });
    assert!(matches!(
        refused(validate_sign(&pem)),
        CsrError::GostParameterSetUnknown(_)
    ));
    for parameters in [None, Some(Any::encode_from(&7u8).unwrap())] {
        let pem = changed(OPENSSL_512, |r| {
            r.info.public_key.algorithm.parameters = parameters
        });
        let e = refused(validate_sign(&pem));
        assert!(matches!(e, CsrError::KeyEncodingInvalid(_)), "{e:?}");
    }
}

/// A point of another length, with a coordinate outside the field, off the curve, or on the
/// 256-bit curve but outside the generator's subgroup (of small order, or of order 4q) is
/// refused as an invalid point. (No engine needed: all of it comes before the signature.)
#[test]
fn bad_points_are_refused() {
    let point = point_of(OPENSSL_512);
    let mut off_curve = point.clone();
    off_curve[0] ^= 1;
    let mut outside = point.clone();
    outside[..64].fill(0xff);
    let short = &point[1..];
    for (what, bad) in [
        ("short", short.to_vec()),
        ("off the curve", off_curve),
        ("outside the field", outside),
    ] {
        let pem = changed(OPENSSL_512, |r| {
            r.info.public_key = spki(TC26_KEY_512, &[TC26_PARAM_SET_512_A, TC26_DIGEST_512], &bad)
        });
        let e = refused(validate_sign(&pem));
        assert!(matches!(e, CsrError::GostPointInvalid(_)), "{what}: {e:?}");
        assert_eq!(e.code().as_str(), "gost_point_invalid");
    }
    let (small_order, full_order) = points_outside_the_subgroup();
    for (what, bad) in [("small order", small_order), ("order 4q", full_order)] {
        let pem = changed(OPENSSL_256, |r| {
            r.info.public_key = spki(NCA_KEY_256, &[NCA_PARAM_SET_256_A, NCA_DIGEST_256], &bad)
        });
        let e = refused(validate_sign(&pem));
        assert!(
            matches!(&e, CsrError::GostPointInvalid(m) if m.contains("subgroup")),
            "{what}: {e:?}"
        );
    }
}

/// On the 256-bit curve (cofactor 4): a point R not in the generator's subgroup and q·R, a
/// point of order 2 or 4, both as the key's little-endian x then y.
fn points_outside_the_subgroup() -> (Vec<u8>, Vec<u8>) {
    let g = group(KeySize::Bits256).unwrap();
    let mut ctx = BigNumContext::new().unwrap();
    let (mut p, mut a, mut b) = (
        BigNum::new().unwrap(),
        BigNum::new().unwrap(),
        BigNum::new().unwrap(),
    );
    g.group
        .components_gfp(&mut p, &mut a, &mut b, &mut ctx)
        .unwrap();
    let encode = |point: &EcPoint, ctx: &mut BigNumContext| {
        let (mut x, mut y) = (BigNum::new().unwrap(), BigNum::new().unwrap());
        point
            .affine_coordinates_gfp(&g.group, &mut x, &mut y, ctx)
            .unwrap();
        let mut out = Vec::new();
        for c in [x, y] {
            let mut bytes = c.to_vec_padded(32).unwrap();
            bytes.reverse();
            out.extend(bytes);
        }
        out
    };
    for x0 in 1u32..1000 {
        let x = BigNum::from_u32(x0).unwrap();
        // x³ + ax + b
        let mut x3 = BigNum::new().unwrap();
        x3.mod_exp(&x, &BigNum::from_u32(3).unwrap(), &p, &mut ctx)
            .unwrap();
        let mut ax = BigNum::new().unwrap();
        ax.mod_mul(&a, &x, &p, &mut ctx).unwrap();
        let mut sum = BigNum::new().unwrap();
        sum.mod_add(&x3, &ax, &p, &mut ctx).unwrap();
        let mut rhs = BigNum::new().unwrap();
        rhs.mod_add(&sum, &b, &p, &mut ctx).unwrap();
        let mut y = BigNum::new().unwrap();
        if y.mod_sqrt(&rhs, &p, &mut ctx).is_err() {
            drop(openssl::error::ErrorStack::get());
            continue;
        }
        let mut r = EcPoint::new(&g.group).unwrap();
        if r.set_affine_coordinates_gfp(&g.group, &x, &y, &mut ctx)
            .is_err()
        {
            drop(openssl::error::ErrorStack::get());
            continue;
        }
        let mut t = EcPoint::new(&g.group).unwrap();
        t.mul2(&g.group, &r, &g.q, &mut ctx).unwrap();
        if t.is_infinity(&g.group) {
            continue;
        }
        return (encode(&t, &mut ctx), encode(&r, &mut ctx));
    }
    panic!("no point outside the subgroup found");
}

/// A signature algorithm that is not GOST, of another size than the key, or with parameters
/// other than NULL is refused as a signature algorithm; one of the wrong length, or that does
/// not verify, as an invalid signature.
#[test]
fn signatures_that_do_not_fit_or_do_not_verify_are_refused() {
    let with_algorithm = |oid, parameters: Option<Any>| {
        changed(OPENSSL_512, |r| {
            r.algorithm = AlgorithmIdentifierOwned { oid, parameters }
        })
    };
    for (what, pem) in [
        (
            "256-bit signature",
            with_algorithm(TC26_SIGNATURE_256, None),
        ),
        (
            "NCA's 256-bit signature",
            with_algorithm(NCA_SIGNATURE_256, None),
        ),
        (
            "RSA",
            with_algorithm(const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION, None),
        ),
        (
            "parameters",
            with_algorithm(
                NCA_SIGNATURE_512,
                Some(Any::encode_from(&NCA_DIGEST_512).unwrap()),
            ),
        ),
    ] {
        let e = refused(validate_sign(&pem));
        assert!(
            matches!(e, CsrError::SignatureAlgorithmNotAllowed(_)),
            "{what}: {e:?}"
        );
    }
    if !engine_for_test("signatures_that_do_not_fit_or_do_not_verify_are_refused") {
        return;
    }
    let short = changed(OPENSSL_512, |r| {
        r.signature = BitString::from_bytes(&r.signature.raw_bytes()[1..]).unwrap();
    });
    let flipped = changed(OPENSSL_512, |r| {
        let mut bytes = r.signature.raw_bytes().to_vec();
        bytes[10] ^= 1;
        r.signature = BitString::from_bytes(&bytes).unwrap();
    });
    // The key of one request with the signature of another.
    let other_key = changed(OPENSSL_512, |r| {
        let key = gost::generate(KeySize::Bits512).unwrap();
        r.info.public_key =
            SubjectPublicKeyInfoOwned::from_der(&key.public_key_to_der().unwrap()).unwrap();
    });
    // NCA's algorithm over the engine's byte order (not reversed).
    let unreversed = changed(OPENSSL_512, |r| {
        r.algorithm = gost::signature_algorithm_identifier(KeySize::Bits512, Form::Nca).unwrap();
    });
    for (what, pem) in [
        ("short", short),
        ("flipped", flipped),
        ("other key", other_key),
        ("not reversed", unreversed),
    ] {
        let e = refused(validate_sign(&pem));
        assert!(matches!(e, CsrError::SignatureInvalid), "{what}: {e:?}");
    }
    // And the unchanged request passes.
    validate_sign(OPENSSL_512).unwrap();
}
