#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use der::asn1::{BitString, ObjectIdentifier, OctetString, SequenceOf};
use der::{Any, Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::oid::*;
use super::*;

const NCA_CA: &[u8] = include_bytes!("../../tests/data/nca-gost-2015/nca_gost2022_test_ca.cer");
const NCA_CRL: &[u8] = include_bytes!("../../tests/data/nca-gost-2015/nca_gost2022_test.crl");
const NCA_OCSP_GOOD: &[u8] =
    include_bytes!("../../tests/data/nca-gost-2015/ocsp_response_individual_good.der");
const NCA_OCSP_REVOKED: &[u8] =
    include_bytes!("../../tests/data/nca-gost-2015/ocsp_response_revoked.der");

/// A SubjectPublicKeyInfo with the key algorithm `key`, the parameter OIDs `parameters` and
/// a point of `point_len` bytes.
fn spki(key: ObjectIdentifier, parameters: &[ObjectIdentifier], point_len: usize) -> Vec<u8> {
    let mut sequence: SequenceOf<ObjectIdentifier, 3> = SequenceOf::new();
    for p in parameters {
        sequence.add(*p).unwrap();
    }
    let point = OctetString::new(vec![7u8; point_len])
        .unwrap()
        .to_der()
        .unwrap();
    SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: key,
            parameters: Some(Any::encode_from(&sequence).unwrap()),
        },
        subject_public_key: BitString::from_bytes(&point).unwrap(),
    }
    .to_der()
    .unwrap()
}

/// `bytes` with the byte at `at` flipped.
fn flipped(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] ^= 0x01;
    out
}

/// The places a tampering test flips: the first, a middle and the last byte.
fn places(len: usize) -> [usize; 3] {
    [0, len / 2, len - 1]
}

/// Checks that `artefact` verifies with `signer`, and that one flipped byte of its TBS or of
/// its signature (first, middle, last) makes it fail as a bad signature.
fn assert_verifies_and_tampering_fails(artefact: &SignedArtefact, signer: &[u8]) {
    artefact.verify(signer).unwrap();
    for at in places(artefact.tbs().len()) {
        let tbs = flipped(artefact.tbs(), at);
        let outcome = verify(&tbs, artefact.algorithm(), artefact.signature(), signer);
        assert!(
            matches!(outcome, Err(GostError::BadSignature)),
            "TBS byte {at} flipped: {outcome:?}"
        );
    }
    let signature = artefact.signature().raw_bytes();
    for at in places(signature.len()) {
        let signature = BitString::from_bytes(&flipped(signature, at)).unwrap();
        let outcome = verify(artefact.tbs(), artefact.algorithm(), &signature, signer);
        assert!(
            matches!(outcome, Err(GostError::BadSignature)),
            "signature byte {at} flipped: {outcome:?}"
        );
    }
}

#[test]
fn the_oid_tables_pair_each_form_and_size() {
    for size in [KeySize::Bits512, KeySize::Bits256] {
        for form in [Form::Nca, Form::Tc26] {
            let oids = size.oids(form);
            assert_eq!(oid::key_algorithm(&oids.key), Some((form, size)));
            assert_eq!(
                oid::signature_algorithm(&oids.signature),
                Some((form, size))
            );
        }
        assert_eq!(size.signature_len(), 2 * size.coordinate_len());
    }
    // What NCA's reference README and RFC 9215 name.
    assert_eq!(NCA_512.key.to_string(), "1.2.398.3.10.1.1.2.2");
    assert_eq!(NCA_512.param_set.to_string(), "1.2.398.3.10.1.1.2.2.1");
    assert_eq!(NCA_512.digest.to_string(), "1.2.398.3.10.1.3.3");
    assert_eq!(NCA_512.signature.to_string(), "1.2.398.3.10.1.1.2.3.2");
    assert_eq!(TC26_512.key.to_string(), "1.2.643.7.1.1.1.2");
    assert_eq!(TC26_512.param_set.to_string(), "1.2.643.7.1.2.1.2.1");
    assert_eq!(TC26_512.digest.to_string(), "1.2.643.7.1.1.2.3");
}

/// NCA's CA key maps to the TC26 form with TC26's OIDs and the same key bits, and back to
/// exactly the bytes NCA wrote: our encoding of the parameters is NCA's.
#[test]
fn the_nca_ca_key_maps_to_tc26_and_back_byte_for_byte() {
    let nca = subject_public_key_info(NCA_CA).unwrap();
    let key = GostPublicKey::from_der(&nca).unwrap();
    assert_eq!((key.form(), key.size()), (Form::Nca, KeySize::Bits512));
    let tc26 = spki_to_tc26(&nca).unwrap();
    let decoded = SubjectPublicKeyInfoOwned::from_der(&tc26).unwrap();
    assert_eq!(decoded.algorithm.oid, TC26_KEY_512);
    let parameters: SequenceOf<ObjectIdentifier, 2> = decoded
        .algorithm
        .parameters
        .as_ref()
        .unwrap()
        .decode_as()
        .unwrap();
    let parameters: Vec<_> = parameters.iter().copied().collect();
    assert_eq!(parameters, [TC26_PARAM_SET_512_A, TC26_DIGEST_512]);
    let original = SubjectPublicKeyInfoOwned::from_der(&nca).unwrap();
    assert_eq!(decoded.subject_public_key, original.subject_public_key);
    assert_eq!(spki_to_nca(&tc26).unwrap(), nca);
    assert_eq!(spki_to_tc26(&tc26).unwrap(), tc26);
}

#[test]
fn reversing_a_signature_twice_gives_it_back() {
    let signature: Vec<u8> = (0..128u8).collect();
    let reversed = reverse_signature(&signature);
    assert_eq!(reversed.first(), Some(&127));
    assert_eq!(reverse_signature(&reversed), signature);
}

/// The signature algorithm identifiers we write are NCA's (NULL parameters) and TC26's (none),
/// and are read back as such.
#[test]
fn signature_algorithm_identifiers_are_written_as_each_form_writes_them() {
    let nca = signature_algorithm_identifier(KeySize::Bits512, Form::Nca).unwrap();
    let reference = SignedArtefact::certificate(NCA_CA).unwrap();
    assert_eq!(&nca, reference.algorithm());
    assert_eq!(
        super::signature_algorithm(&nca).unwrap(),
        (Form::Nca, KeySize::Bits512)
    );
    let tc26 = signature_algorithm_identifier(KeySize::Bits256, Form::Tc26).unwrap();
    assert_eq!(tc26.oid, TC26_SIGNATURE_256);
    assert!(tc26.parameters.is_none());
}

#[test]
fn nca_crl_verifies_against_the_nca_ca_and_tampering_fails() {
    if !super::engine_for_test("nca_crl_verifies_against_the_nca_ca_and_tampering_fails") {
        return;
    }
    let crl = SignedArtefact::crl(NCA_CRL).unwrap();
    assert_eq!(crl.form_and_size().unwrap(), (Form::Nca, KeySize::Bits512));
    let ca = subject_public_key_info(NCA_CA).unwrap();
    assert_verifies_and_tampering_fails(&crl, &ca);
    // The same check with the CA's key in the TC26 form.
    crl.verify(&spki_to_tc26(&ca).unwrap()).unwrap();
}

#[test]
fn nca_ocsp_responses_verify_against_their_responder_which_verifies_against_the_ca() {
    let test = "nca_ocsp_responses_verify_against_their_responder_which_verifies_against_the_ca";
    if !super::engine_for_test(test) {
        return;
    }
    for der in [NCA_OCSP_GOOD, NCA_OCSP_REVOKED] {
        let response = SignedArtefact::ocsp_response(der).unwrap();
        assert_eq!(response.kind(), ArtefactKind::OcspResponse);
        let [responder] = response.certificates() else {
            panic!(
                "one responder certificate: {}",
                response.certificates().len()
            );
        };
        assert_verifies_and_tampering_fails(
            &response,
            &subject_public_key_info(responder).unwrap(),
        );
        let responder = SignedArtefact::certificate(responder).unwrap();
        assert_verifies_and_tampering_fails(&responder, &subject_public_key_info(NCA_CA).unwrap());
        // A response is not signed by the CA itself.
        assert!(matches!(
            response.verify_by(NCA_CA),
            Err(GostError::BadSignature)
        ));
    }
}

/// A tampered artefact that still parses (a flipped byte in the CRL's TBS, in a revoked
/// number) is refused as a bad signature.
#[test]
fn a_tampered_nca_crl_that_still_parses_fails() {
    if !super::engine_for_test("a_tampered_nca_crl_that_still_parses_fails") {
        return;
    }
    let crl = SignedArtefact::crl(NCA_CRL).unwrap();
    // The last byte of the TBS is inside the CRL's extensions (its number).
    let start = NCA_CRL
        .windows(crl.tbs().len())
        .position(|w| w == crl.tbs())
        .unwrap();
    let tampered = flipped(NCA_CRL, start + crl.tbs().len() - 1);
    let tampered = SignedArtefact::crl(&tampered).unwrap();
    assert!(matches!(
        tampered.verify_by(NCA_CA),
        Err(GostError::BadSignature)
    ));
}

#[test]
fn wrong_lengths_parameter_sets_and_sizes_are_refused_precisely() {
    let crl = SignedArtefact::crl(NCA_CRL).unwrap();
    let ca = subject_public_key_info(NCA_CA).unwrap();
    // A signature one byte short.
    let raw = crl.signature().raw_bytes();
    let short = BitString::from_bytes(&raw[1..]).unwrap();
    assert!(matches!(
        verify(crl.tbs(), crl.algorithm(), &short, &ca),
        Err(GostError::SignatureLength {
            expected: 128,
            found: 127
        })
    ));
    // A point one byte short.
    let bad_point = spki(NCA_KEY_512, &[NCA_PARAM_SET_512_A, NCA_DIGEST_512], 127);
    assert!(matches!(
        GostPublicKey::from_der(&bad_point),
        Err(GostError::PointLength {
            expected: 128,
            found: 127
        })
    ));
    // A curve NCA does not use (TC26 512-bit paramSetB).
    let set_b = ObjectIdentifier::new_unwrap("1.2.643.7.1.2.1.2.2");
    let other_curve = spki(TC26_KEY_512, &[set_b], 128);
    assert!(matches!(
        GostPublicKey::from_der(&other_curve),
        Err(GostError::UnknownParameterSet(oid)) if oid == set_b
    ));
    // A 512-bit key whose parameters name Streebog-256.
    let wrong_digest = spki(NCA_KEY_512, &[NCA_PARAM_SET_512_A, NCA_DIGEST_256], 128);
    assert!(matches!(
        GostPublicKey::from_der(&wrong_digest),
        Err(GostError::DigestMismatch(_))
    ));
    // A 256-bit key cannot check a 512-bit signature.
    let small = spki(NCA_KEY_256, &[NCA_PARAM_SET_256_A, NCA_DIGEST_256], 64);
    assert!(matches!(
        verify(crl.tbs(), crl.algorithm(), crl.signature(), &small),
        Err(GostError::KeySizeMismatch {
            key: KeySize::Bits256,
            signature: KeySize::Bits512
        })
    ));
    // Signature parameters other than NULL.
    let mut algorithm = crl.algorithm().clone();
    algorithm.parameters = Some(Any::encode_from(&NCA_DIGEST_512).unwrap());
    assert!(matches!(
        verify(crl.tbs(), &algorithm, crl.signature(), &ca),
        Err(GostError::SignatureParameters(_))
    ));
    // Not GOST at all.
    let rsa = AlgorithmIdentifierOwned {
        oid: const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
        parameters: None,
    };
    assert!(matches!(
        verify(crl.tbs(), &rsa, crl.signature(), &ca),
        Err(GostError::NotGost(_))
    ));
}

/// A point of the right length that is not on the curve is refused by OpenSSL when the key
/// is read, before any signature is checked.
#[test]
fn a_point_off_the_curve_is_refused() {
    if !super::engine_for_test("a_point_off_the_curve_is_refused") {
        return;
    }
    let off_curve = spki(NCA_KEY_512, &[NCA_PARAM_SET_512_A, NCA_DIGEST_512], 128);
    let key = GostPublicKey::from_der(&off_curve).unwrap();
    assert!(matches!(key.to_openssl(), Err(GostError::KeyRejected(_))));
    let crl = SignedArtefact::crl(NCA_CRL).unwrap();
    assert!(matches!(
        crl.verify(&off_curve),
        Err(GostError::KeyRejected(_))
    ));
}
