#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::str::FromStr;

use der::asn1::BitString;
use der::Decode;
use x509_cert::name::Name;
use x509_cert::request::CertReq;

use super::super::*;

fn subject() -> Name {
    Name::from_str("CN=tamga-enroll").unwrap()
}

/// Both forms of both sizes: the request names the key and the signature algorithm of its
/// form, carries no attribute, verifies with its own key, and fails with a byte of its
/// signature changed.
#[test]
fn requests_in_both_forms_verify_with_their_own_key() {
    if !engine_for_test("requests_in_both_forms_verify_with_their_own_key") {
        return;
    }
    for size in [KeySize::Bits512, KeySize::Bits256] {
        let key = generate(size).unwrap();
        for form in [Form::Nca, Form::Tc26] {
            let der = certification_request(&subject(), &key, form).unwrap();
            let request = CertReq::from_der(&der).unwrap();
            assert_eq!(request.info.subject, subject());
            assert_eq!(
                request.info.public_key.algorithm.oid,
                size.oids(form).key,
                "{size:?} {form:?}"
            );
            assert_eq!(
                request.algorithm,
                signature_algorithm_identifier(size, form).unwrap()
            );
            assert!(request.info.attributes.is_empty());
            let artefact = SignedArtefact::csr(&der).unwrap();
            assert_eq!(artefact.form_and_size().unwrap(), (form, size));
            artefact.verify_own().unwrap();
            // The key in the request is the private key's, in either form.
            let own = GostPublicKey::from_spki(&request.info.public_key).unwrap();
            let engine = GostPublicKey::from_der(&key.public_key_to_der().unwrap()).unwrap();
            assert_eq!(
                own.to_der(Form::Tc26).unwrap(),
                engine.to_der(Form::Tc26).unwrap()
            );
            let mut signature = artefact.signature().raw_bytes().to_vec();
            signature[0] ^= 1;
            let signature = BitString::from_bytes(&signature).unwrap();
            let key_der = der::Encode::to_der(&request.info.public_key).unwrap();
            assert!(matches!(
                verify(artefact.tbs(), artefact.algorithm(), &signature, &key_der),
                Err(GostError::BadSignature)
            ));
        }
    }
}

/// NCA's form differs from the TC26 form only as the conversion says: signed in NCA's form,
/// the engine's bytes reversed verify under the TC26 algorithm with the key in the TC26 form.
#[test]
fn an_nca_request_is_the_engine_signature_reversed() {
    if !engine_for_test("an_nca_request_is_the_engine_signature_reversed") {
        return;
    }
    let key = generate(KeySize::Bits512).unwrap();
    let der = certification_request(&subject(), &key, Form::Nca).unwrap();
    let artefact = SignedArtefact::csr(&der).unwrap();
    let engine_order = BitString::from_bytes(&artefact.engine_signature().unwrap()).unwrap();
    let tc26 = signature_algorithm_identifier(KeySize::Bits512, Form::Tc26).unwrap();
    let key_tc26 = key.public_key_to_der().unwrap();
    verify(artefact.tbs(), &tc26, &engine_order, &key_tc26).unwrap();
    // The bytes as carried are not the engine's order.
    assert!(matches!(
        verify(artefact.tbs(), &tc26, artefact.signature(), &key_tc26),
        Err(GostError::BadSignature)
    ));
}

/// With an e-mail, the request carries the one attribute the project's RSA and EC requests
/// may carry: an extensionRequest with the subjectAltName.
#[test]
fn a_request_with_an_email_carries_its_subject_alt_name() {
    if !engine_for_test("a_request_with_an_email_carries_its_subject_alt_name") {
        return;
    }
    let key = generate(KeySize::Bits512).unwrap();
    let der = certification_request_with_email(&subject(), &key, Form::Nca, Some("a@example.kz"))
        .unwrap();
    let request = CertReq::from_der(&der).unwrap();
    let [attribute] = request.info.attributes.as_slice() else {
        panic!("one attribute: {:?}", request.info.attributes);
    };
    assert_eq!(attribute.oid, const_oid::db::rfc5912::ID_EXTENSION_REQ);
    SignedArtefact::csr(&der).unwrap().verify_own().unwrap();
}

/// `openssl req -verify` with the engine reads the TC26 form and verifies its signature.
#[test]
fn openssl_req_verifies_the_tc26_form() {
    if !engine_for_test("openssl_req_verifies_the_tc26_form") {
        return;
    }
    let present = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var_os("TAMGA_TEST_REQUIRE_GOST").is_none(),
            "TAMGA_TEST_REQUIRE_GOST is set but the openssl command is missing"
        );
        eprintln!("SKIPPED openssl_req_verifies_the_tc26_form: the openssl command is missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/openssl-gost.cnf");
    for size in [KeySize::Bits512, KeySize::Bits256] {
        let key = generate(size).unwrap();
        let der = certification_request(&subject(), &key, Form::Tc26).unwrap();
        let path = dir.path().join("request.der");
        std::fs::write(&path, &der).unwrap();
        let out = std::process::Command::new("openssl")
            .env("OPENSSL_CONF", &conf)
            .env_remove("OPENSSL_ENGINES")
            .args(["req", "-inform", "DER", "-verify", "-noout", "-in"])
            .arg(&path)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{size:?}: {text}");
        assert!(text.contains("verify OK"), "{size:?}: {text}");
    }
}
