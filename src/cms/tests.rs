#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::process::Command;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::extension::SubjectKeyIdentifier;
use openssl::x509::{X509Name, X509};

use super::*;

const CHALLENGE: &[u8] = b"\x00\x01challenge bytes: 32 of them, raw";

fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

/// A self-signed certificate for `key` with subject CN=`cn`, the serial given (hex), and a
/// subject key identifier.
fn certificate(key: &PKey<Private>, cn: &str, serial_hex: &str) -> Vec<u8> {
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_hex_str(serial_hex).unwrap();
    b.set_serial_number(&Asn1Integer::from_bn(&serial).unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
        .unwrap();
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(ski).unwrap();
    b.sign(key, MessageDigest::sha256()).unwrap();
    b.build().to_der().unwrap()
}

struct Holder {
    key: PKey<Private>,
    cert: Vec<u8>,
}

fn rsa_holder() -> Holder {
    let key = rsa_key();
    let cert = certificate(&key, "SURNAME NAME", "0A1B2C3D4E5F60718293");
    Holder { key, cert }
}

fn ec_holder() -> Holder {
    let key = ec_key();
    let cert = certificate(&key, "SURNAME NAME", "7F00000000000000000001");
    Holder { key, cert }
}

fn expected_signer(cert_der: &[u8]) -> SignerId {
    let cert = X509::from_der(cert_der).unwrap();
    SignerId::IssuerSerial {
        issuer_der: cert.issuer_name().to_der().unwrap(),
        serial_hex: cert
            .serial_number()
            .to_bn()
            .unwrap()
            .to_hex_str()
            .unwrap()
            .to_string(),
    }
}

fn ski(cert_der: &[u8]) -> Vec<u8> {
    X509::from_der(cert_der)
        .unwrap()
        .subject_key_id()
        .unwrap()
        .as_slice()
        .to_vec()
}

/// The digest algorithm OID the message's SignerInfo names.
fn signer_digest(der: &[u8]) -> ObjectIdentifier {
    let normalised = CmsContentInfo::from_der(der).unwrap().to_der().unwrap();
    let ci = AnyRef::from_der(&normalised).unwrap();
    let content = ci
        .sequence(|r| {
            let _: ObjectIdentifier = r.decode()?;
            required(r, EXPLICIT_0)
        })
        .unwrap();
    let sd = AnyRef::from_der(content.value()).unwrap();
    let infos = sd
        .sequence(|r| {
            let mut last = None;
            while !r.is_finished() {
                last = Some(r.decode::<AnyRef>()?);
            }
            Ok(last.unwrap())
        })
        .unwrap();
    let info = elements(infos.value()).unwrap()[0];
    info.sequence(|r| {
        let _: AnyRef = r.decode()?;
        let _: AnyRef = r.decode()?;
        let digest: AlgorithmIdentifierRef = r.decode()?;
        while !r.is_finished() {
            let _: AnyRef = r.decode()?;
        }
        Ok(digest.oid)
    })
    .unwrap()
}

#[test]
fn attached_round_trip_with_rsa_and_ec_keys() {
    for holder in [rsa_holder(), ec_holder()] {
        let der = sign_attached(&holder.key, &holder.cert, CHALLENGE).unwrap();
        assert_eq!(signer_digest(&der), ID_SHA256);
        let message = SignedMessage::from_der(&der).unwrap();
        assert_eq!(message.signer(), &expected_signer(&holder.cert));
        assert_eq!(message.content(), Some(CHALLENGE));
        assert_eq!(
            message.embedded_certificates(),
            std::slice::from_ref(&holder.cert)
        );
        assert_eq!(message.verify_attached(&holder.cert).unwrap(), CHALLENGE);
    }
}

#[test]
fn detached_round_trip_with_rsa_and_ec_keys() {
    let body = br#"{"language":"kk","storage":"pc","csrs":{"auth":"...","sign":"..."}}"#;
    for holder in [rsa_holder(), ec_holder()] {
        let der = sign_detached(&holder.key, &holder.cert, body).unwrap();
        assert_eq!(signer_digest(&der), ID_SHA256);
        let message = SignedMessage::from_der(&der).unwrap();
        assert_eq!(message.signer(), &expected_signer(&holder.cert));
        assert_eq!(message.content(), None);
        assert_eq!(
            message.embedded_certificates(),
            std::slice::from_ref(&holder.cert)
        );
        message.verify_detached(&holder.cert, body).unwrap();
    }
}

#[test]
fn text_is_base64_with_whitespace_or_pem() {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    let holder = ec_holder();
    let der = sign_attached(&holder.key, &holder.cert, CHALLENGE).unwrap();
    let b64 = STANDARD.encode(&der);
    let wrapped: String = b64
        .as_bytes()
        .chunks(64)
        .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
        .collect();
    for text in [
        b64.clone(),
        STANDARD_NO_PAD.encode(&der),
        format!("  {wrapped}\n"),
        format!("-----BEGIN CMS-----\n{wrapped}-----END CMS-----\n"),
        format!("-----BEGIN PKCS7-----\n{wrapped}-----END PKCS7-----"),
    ] {
        let message = SignedMessage::from_text(&text).unwrap();
        assert_eq!(message.verify_attached(&holder.cert).unwrap(), CHALLENGE);
    }
    for text in [
        "",
        "not base64!",
        &format!("-----BEGIN CMS-----\n{wrapped}-----END PKCS7-----\n"),
        &format!("-----BEGIN CERTIFICATE-----\n{wrapped}-----END CERTIFICATE-----\n"),
        &format!("-----BEGIN CMS-----\n{wrapped}-----END CMS-----\ntrailing"),
        &format!("-----BEGIN CMS-----\n{wrapped}"),
    ] {
        let err = SignedMessage::from_text(text).unwrap_err();
        assert!(matches!(err, CmsError::Malformed(_)), "{text:?}: {err:?}");
        assert_eq!(err.code(), ErrorCode::CmsMalformed);
    }
}

#[test]
fn subject_key_identifier_signer_is_read_and_verified() {
    let holder = rsa_holder();
    let der = CmsContentInfo::sign(
        Some(&X509::from_der(&holder.cert).unwrap()),
        Some(&holder.key),
        None,
        Some(CHALLENGE),
        CMSOptions::BINARY | CMSOptions::USE_KEYID,
    )
    .unwrap()
    .to_der()
    .unwrap();
    let message = SignedMessage::from_der(&der).unwrap();
    assert_eq!(message.signer(), &SignerId::SubjectKeyId(ski(&holder.cert)));
    assert_eq!(message.verify_attached(&holder.cert).unwrap(), CHALLENGE);
    // Another certificate (another key, so another identifier) is not the signer's.
    let other = rsa_holder();
    assert_eq!(
        message.verify_attached(&other.cert),
        Err(CmsError::SignatureInvalid)
    );
}

#[test]
fn without_signed_attributes_the_signature_is_over_the_content() {
    for holder in [rsa_holder(), ec_holder()] {
        let der = CmsContentInfo::sign(
            Some(&X509::from_der(&holder.cert).unwrap()),
            Some(&holder.key),
            None,
            Some(CHALLENGE),
            CMSOptions::BINARY | CMSOptions::NOATTR,
        )
        .unwrap()
        .to_der()
        .unwrap();
        let message = SignedMessage::from_der(&der).unwrap();
        assert_eq!(message.verify_attached(&holder.cert).unwrap(), CHALLENGE);
        let mut tampered = der.clone();
        let at = find(&tampered, b"challenge bytes");
        tampered[at] ^= 0x01;
        assert_eq!(
            SignedMessage::from_der(&tampered)
                .unwrap()
                .verify_attached(&holder.cert),
            Err(CmsError::SignatureInvalid)
        );
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the bytes are in the message")
}

#[test]
fn another_certificate_with_the_same_subject_is_refused() {
    let holder = rsa_holder();
    let der = sign_attached(&holder.key, &holder.cert, CHALLENGE).unwrap();
    let message = SignedMessage::from_der(&der).unwrap();
    // Same subject, issuer and serial, another key: named by the identifier, wrong signature.
    let impostor = certificate(&rsa_key(), "SURNAME NAME", "0A1B2C3D4E5F60718293");
    assert_eq!(message.signer(), &expected_signer(&impostor));
    assert_eq!(
        message.verify_attached(&impostor),
        Err(CmsError::SignatureInvalid)
    );
    // Same subject, another serial and key: not the certificate the identifier names.
    let other = certificate(&ec_key(), "SURNAME NAME", "01");
    assert_eq!(
        message.verify_attached(&other),
        Err(CmsError::SignatureInvalid)
    );
    // Not a certificate at all.
    assert_eq!(
        message.verify_attached(b"\x30\x03\x02\x01\x01"),
        Err(CmsError::SignatureInvalid)
    );
}

/// OpenSSL itself refuses the only certificate it is given when the signer identifier does not
/// name it — even one with the signer's own key, whose signature would verify.
#[test]
fn openssl_refuses_a_certificate_the_signer_identifier_does_not_name() {
    let holder = ec_holder();
    let der = sign_attached(&holder.key, &holder.cert, CHALLENGE).unwrap();
    let same_key_other_serial = certificate(&holder.key, "SURNAME NAME", "02");
    assert_eq!(
        openssl_verify(&der, X509::from_der(&same_key_other_serial).unwrap(), None),
        Err(CmsError::SignatureInvalid)
    );
    assert_eq!(
        openssl_verify(&der, X509::from_der(&holder.cert).unwrap(), None).unwrap(),
        CHALLENGE
    );
}

#[test]
fn tampered_content_or_signature_is_refused() {
    for holder in [rsa_holder(), ec_holder()] {
        // Detached: other content.
        let der = sign_detached(&holder.key, &holder.cert, b"the body").unwrap();
        let message = SignedMessage::from_der(&der).unwrap();
        assert_eq!(
            message.verify_detached(&holder.cert, b"the bodY"),
            Err(CmsError::SignatureInvalid)
        );
        assert_eq!(
            message.verify_detached(&holder.cert, b""),
            Err(CmsError::SignatureInvalid)
        );
        // Attached: a byte of the content (its message digest no longer matches).
        let der = sign_attached(&holder.key, &holder.cert, CHALLENGE).unwrap();
        let mut tampered = der.clone();
        tampered[find(&der, b"challenge bytes")] ^= 0x01;
        let message = SignedMessage::from_der(&tampered).unwrap();
        assert_ne!(message.content(), Some(CHALLENGE));
        assert_eq!(
            message.verify_attached(&holder.cert),
            Err(CmsError::SignatureInvalid)
        );
        // The signature's last byte (SignerInfo ends with it: no unsigned attributes).
        let mut tampered = der.clone();
        *tampered.last_mut().unwrap() ^= 0x01;
        let message = SignedMessage::from_der(&tampered).unwrap();
        assert_eq!(
            message.verify_attached(&holder.cert),
            Err(CmsError::SignatureInvalid)
        );
        assert_eq!(
            CmsError::SignatureInvalid.code(),
            ErrorCode::CmsSignatureInvalid
        );
    }
}

#[test]
fn attached_and_detached_are_not_interchangeable() {
    let holder = ec_holder();
    let attached =
        SignedMessage::from_der(&sign_attached(&holder.key, &holder.cert, CHALLENGE).unwrap())
            .unwrap();
    assert!(matches!(
        attached.verify_detached(&holder.cert, CHALLENGE),
        Err(CmsError::Malformed(_))
    ));
    let detached =
        SignedMessage::from_der(&sign_detached(&holder.key, &holder.cert, CHALLENGE).unwrap())
            .unwrap();
    assert!(matches!(
        detached.verify_attached(&holder.cert),
        Err(CmsError::Malformed(_))
    ));
}

#[test]
fn a_digest_other_than_sha2_256_384_512_is_not_allowed() {
    // SHA-224 written into the SignerInfo's digest algorithm (same length as SHA-256's OID):
    // refused before any signature is looked at.
    let holder = rsa_holder();
    let der = sign_attached(&holder.key, &holder.cert, CHALLENGE).unwrap();
    let sha256 = [
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
    ];
    let mut sha224 = der.clone();
    let mut at = 0;
    while let Some(found) = sha224[at..].windows(sha256.len()).position(|w| w == sha256) {
        sha224[at + found + sha256.len() - 1] = 0x04;
        at += found + sha256.len();
    }
    let err = SignedMessage::from_der(&sha224).unwrap_err();
    assert!(matches!(err, CmsError::AlgorithmNotAllowed(_)), "{err:?}");
    assert_eq!(err.code(), ErrorCode::CmsAlgorithmNotAllowed);
}

#[test]
fn what_is_not_one_signed_data_is_malformed() {
    let holder = rsa_holder();
    // EnvelopedData.
    let mut recipients = Stack::new().unwrap();
    recipients
        .push(X509::from_der(&holder.cert).unwrap())
        .unwrap();
    let enveloped = CmsContentInfo::encrypt(
        &recipients,
        CHALLENGE,
        Cipher::aes_256_cbc(),
        CMSOptions::BINARY,
    )
    .unwrap()
    .to_der()
    .unwrap();
    let valid = sign_attached(&holder.key, &holder.cert, CHALLENGE).unwrap();
    let mut trailing = valid.clone();
    trailing.push(0);
    for input in [
        enveloped,
        holder.cert.clone(),
        Vec::new(),
        vec![0x30, 0x00],
        vec![0xff; 100],
        valid[..valid.len() - 1].to_vec(),
        valid[..valid.len() / 2].to_vec(),
        trailing,
    ] {
        let err = SignedMessage::from_der(&input).unwrap_err();
        assert!(matches!(err, CmsError::Malformed(_)), "{err:?}");
        assert_eq!(err.code(), ErrorCode::CmsMalformed);
    }
}

#[test]
fn more_than_max_cms_is_too_large() {
    let holder = ec_holder();
    let big = vec![b'a'; MAX_CMS];
    assert_eq!(
        sign_attached(&holder.key, &holder.cert, &big),
        Err(CmsError::TooLarge)
    );
    assert_eq!(
        SignedMessage::from_der(&vec![0x30; MAX_CMS + 1]).unwrap_err(),
        CmsError::TooLarge
    );
    assert_eq!(
        SignedMessage::from_text(&"A".repeat(MAX_CMS_TEXT + 1)).unwrap_err(),
        CmsError::TooLarge
    );
    // Text within its limit whose DER is not.
    use base64::engine::general_purpose::STANDARD;
    assert_eq!(
        SignedMessage::from_text(&STANDARD.encode(vec![0x30; MAX_CMS + 1])).unwrap_err(),
        CmsError::TooLarge
    );
    assert_eq!(CmsError::TooLarge.code(), ErrorCode::CmsMalformed);
}

#[test]
fn serials_are_written_as_ca_serial_writes_them() {
    assert_eq!(serial_hex_of(&[0x00, 0x9a, 0xd0]), "9AD0");
    assert_eq!(serial_hex_of(&[0x0a, 0xbc]), "0ABC");
    assert_eq!(serial_hex_of(&[0x00]), "00");
    assert_eq!(serial_hex_of(&[]), "00");
    assert_eq!(serial_hex_of(&[0x00, 0x00, 0x01]), "01");
}

/// Every truncation and every single-byte change of valid messages (attached and detached,
/// with and without signed attributes, RSA and EC): no panic, and whatever still verifies
/// verifies the original content.
#[test]
fn truncations_and_byte_flips_never_panic() {
    let rsa = rsa_holder();
    let ec = ec_holder();
    let no_attr = CmsContentInfo::sign(
        Some(&X509::from_der(&ec.cert).unwrap()),
        Some(&ec.key),
        None,
        Some(CHALLENGE),
        CMSOptions::BINARY | CMSOptions::NOATTR,
    )
    .unwrap()
    .to_der()
    .unwrap();
    let cases = [
        (&rsa, sign_attached(&rsa.key, &rsa.cert, CHALLENGE).unwrap()),
        (&ec, sign_detached(&ec.key, &ec.cert, CHALLENGE).unwrap()),
        (&ec, no_attr),
    ];
    for (holder, der) in &cases {
        let check = |input: &[u8]| {
            if let Ok(message) = SignedMessage::from_der(input) {
                let _ = message.signer();
                let _ = message.embedded_certificates();
                match message.content() {
                    Some(_) => {
                        if let Ok(content) = message.verify_attached(&holder.cert) {
                            assert_eq!(content, CHALLENGE);
                        }
                    }
                    None => {
                        let _ = message.verify_detached(&holder.cert, CHALLENGE);
                        assert!(message.verify_detached(&holder.cert, b"other").is_err());
                    }
                }
            }
        };
        for len in 0..der.len() {
            check(&der[..len]);
        }
        for at in 0..der.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut changed = der.clone();
                changed[at] ^= flip;
                check(&changed);
            }
        }
    }
}

#[test]
fn ber_lengths_are_followed() {
    assert_eq!(ber_element_len(&[0x30, 0x00], 0), Some(2));
    assert_eq!(
        ber_element_len(&[0x30, 0x80, 0x04, 0x00, 0x00, 0x00], 0),
        Some(6)
    );
    assert_eq!(ber_element_len(&[0x04, 0x80, 0x00, 0x00], 0), None);
    assert_eq!(ber_element_len(&[0x30, 0x81, 0x01, 0x05], 0), Some(4));
    assert_eq!(ber_element_len(&[0x30, 0x02, 0x05], 0), None);
    assert_eq!(ber_element_len(&[0x30, 0x85, 1, 1, 1, 1, 1], 0), None);
    assert_eq!(ber_element_len(&[0x1f, 0x81, 0x01, 0x00], 0), Some(4));
    let deep: Vec<u8> = std::iter::repeat_n([0x30, 0x80], 100).flatten().collect();
    assert_eq!(ber_element_len(&deep, 0), None);
}

// --- Messages made by the `openssl cms` command ----------------------------------------------

/// Whether the `openssl` command runs; when it does not, the test says it is skipped, or fails
/// where `TAMGA_TEST_REQUIRE_OPENSSL` is set.
fn openssl_cli(test: &str) -> bool {
    let present = Command::new("openssl")
        .env_remove("OPENSSL_CONF")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var_os("TAMGA_TEST_REQUIRE_OPENSSL").is_none(),
            "TAMGA_TEST_REQUIRE_OPENSSL is set but openssl is not installed"
        );
        eprintln!("SKIPPED {test}: openssl is not installed");
    }
    present
}

/// The holder's key and certificate as PEM files in `dir`, named `name.key`, `name.pem`.
fn write_pem(dir: &Path, name: &str, holder: &Holder) {
    std::fs::write(
        dir.join(format!("{name}.key")),
        holder.key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{name}.pem")),
        X509::from_der(&holder.cert).unwrap().to_pem().unwrap(),
    )
    .unwrap();
}

/// `openssl cms -sign -binary -in content.bin -outform DER` with `args`, in `dir`.
fn cli_sign(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .env_remove("OPENSSL_CONF")
        .current_dir(dir)
        .args([
            "cms",
            "-sign",
            "-binary",
            "-in",
            "content.bin",
            "-outform",
            "DER",
            "-out",
            "out.cms",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl cms {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.join("out.cms")).unwrap()
}

#[test]
fn messages_of_the_openssl_command_are_read_and_verified() {
    if !openssl_cli("messages_of_the_openssl_command_are_read_and_verified") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("content.bin"), CHALLENGE).unwrap();
    for (name, holder) in [("rsa", rsa_holder()), ("ec", ec_holder())] {
        write_pem(dir.path(), name, &holder);
        let signer = [
            "-signer".to_owned(),
            format!("{name}.pem"),
            "-inkey".to_owned(),
            format!("{name}.key"),
        ];
        let signer: Vec<&str> = signer.iter().map(String::as_str).collect();
        for attributes in [&[][..], &["-noattr"][..]] {
            for md in ["sha256", "sha384", "sha512"] {
                let args = [&signer[..], attributes, &["-md", md]].concat();
                // Attached (the login).
                let der = cli_sign(dir.path(), &[&args[..], &["-nodetach"]].concat());
                let message = SignedMessage::from_der(&der).unwrap();
                assert_eq!(message.signer(), &expected_signer(&holder.cert));
                assert_eq!(message.content(), Some(CHALLENGE));
                assert_eq!(message.verify_attached(&holder.cert).unwrap(), CHALLENGE);
                // Detached (the confirmation): openssl's default.
                let der = cli_sign(dir.path(), &args);
                let message = SignedMessage::from_der(&der).unwrap();
                assert_eq!(message.content(), None);
                message.verify_detached(&holder.cert, CHALLENGE).unwrap();
                assert_eq!(
                    message.verify_detached(&holder.cert, b"another body"),
                    Err(CmsError::SignatureInvalid)
                );
            }
        }
        // BER with indefinite lengths (streamed), as some signing software writes.
        let der = cli_sign(
            dir.path(),
            &[&signer[..], &["-nodetach", "-stream"]].concat(),
        );
        assert!(
            der.windows(2).any(|w| w == [0x30, 0x80]),
            "indefinite lengths"
        );
        let message = SignedMessage::from_text(&format!(
            "-----BEGIN CMS-----\n{}\n-----END CMS-----\n",
            base64::engine::general_purpose::STANDARD.encode(&der)
        ))
        .unwrap();
        assert_eq!(message.verify_attached(&holder.cert).unwrap(), CHALLENGE);
        // The subject key identifier as signer identifier.
        let der = cli_sign(
            dir.path(),
            &[&signer[..], &["-nodetach", "-keyid"]].concat(),
        );
        let message = SignedMessage::from_der(&der).unwrap();
        assert_eq!(message.signer(), &SignerId::SubjectKeyId(ski(&holder.cert)));
        assert_eq!(message.verify_attached(&holder.cert).unwrap(), CHALLENGE);
        // SHA-1, and MD5 (which OpenSSL signs with RSA only).
        let refused: &[&str] = if name == "rsa" {
            &["sha1", "md5"]
        } else {
            &["sha1"]
        };
        for md in refused {
            let der = cli_sign(
                dir.path(),
                &[&signer[..], &["-nodetach", "-md", *md]].concat(),
            );
            let err = SignedMessage::from_der(&der).unwrap_err();
            assert!(
                matches!(err, CmsError::AlgorithmNotAllowed(_)),
                "{md}: {err:?}"
            );
        }
    }
    // RSA-PSS.
    let der = cli_sign(
        dir.path(),
        &[
            "-signer",
            "rsa.pem",
            "-inkey",
            "rsa.key",
            "-nodetach",
            "-keyopt",
            "rsa_padding_mode:pss",
        ],
    );
    let rsa_cert = X509::from_pem(&std::fs::read(dir.path().join("rsa.pem")).unwrap())
        .unwrap()
        .to_der()
        .unwrap();
    let message = SignedMessage::from_der(&der).unwrap();
    assert_eq!(message.verify_attached(&rsa_cert).unwrap(), CHALLENGE);
    // Two signers.
    let der = cli_sign(
        dir.path(),
        &[
            "-signer",
            "rsa.pem",
            "-inkey",
            "rsa.key",
            "-signer",
            "ec.pem",
            "-inkey",
            "ec.key",
            "-nodetach",
        ],
    );
    let err = SignedMessage::from_der(&der).unwrap_err();
    assert!(matches!(err, CmsError::Malformed(_)), "{err:?}");
}

#[test]
fn an_openssl_message_verified_with_another_certificate_of_the_same_subject_is_refused() {
    if !openssl_cli(
        "an_openssl_message_verified_with_another_certificate_of_the_same_subject_is_refused",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("content.bin"), CHALLENGE).unwrap();
    let holder = rsa_holder();
    write_pem(dir.path(), "auth", &holder);
    let der = cli_sign(
        dir.path(),
        &["-signer", "auth.pem", "-inkey", "auth.key", "-nodetach"],
    );
    let message = SignedMessage::from_der(&der).unwrap();
    let impostor = certificate(&rsa_key(), "SURNAME NAME", "0A1B2C3D4E5F60718293");
    assert_eq!(
        message.verify_attached(&impostor),
        Err(CmsError::SignatureInvalid)
    );
    // The certificate inside the message is never used: verifying needs the caller's.
    assert_eq!(
        message.embedded_certificates(),
        std::slice::from_ref(&holder.cert)
    );
}

/// `der` (RSA, attached, signed attributes) with its signed attributes changed by `edit` and
/// signed again with `key`, so that only what `edit` changed is wrong.
fn with_signed_attributes_edited(
    der: &[u8],
    key: &PKey<Private>,
    edit: impl Fn(&mut [u8]),
) -> Vec<u8> {
    let sha256 = [
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
    ];
    // The SignerInfo's digest algorithm is the second SHA-256 (the first is in digestAlgorithms).
    let first = find(der, &sha256);
    let second = first + sha256.len() + find(&der[first + sha256.len()..], &sha256);
    let mut at = second + sha256.len();
    if der[at..].starts_with(&[0x05, 0x00]) {
        at += 2;
    }
    assert_eq!(
        der[at], 0xa0,
        "signed attributes follow the digest algorithm"
    );
    let (header, len) = match der[at + 1] {
        n if n < 0x80 => (2, usize::from(n)),
        0x81 => (3, usize::from(der[at + 2])),
        _ => (4, usize::from(der[at + 2]) << 8 | usize::from(der[at + 3])),
    };
    let mut out = der.to_vec();
    edit(&mut out[at + header..at + header + len]);
    // What is signed is the attributes as a SET.
    let mut signed = out[at..at + header + len].to_vec();
    signed[0] = 0x31;
    let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), key).unwrap();
    signer.update(&signed).unwrap();
    let signature = signer.sign_to_vec().unwrap();
    // RSA: a signature of the same length, the last bytes of the message.
    let start = out.len() - signature.len();
    out[start..].copy_from_slice(&signature);
    out
}

/// The content-type attribute's value is checked by this module (OpenSSL 3.0's verification
/// accepts another one); the message digest's value by OpenSSL.
#[test]
fn signed_attributes_must_name_id_data_and_the_content_digest() {
    let holder = rsa_holder();
    let der = sign_attached(&holder.key, &holder.cert, CHALLENGE).unwrap();
    // Nothing edited: still valid (the re-signing is right).
    let same = with_signed_attributes_edited(&der, &holder.key, |_| {});
    assert_eq!(
        SignedMessage::from_der(&same)
            .unwrap()
            .verify_attached(&holder.cert)
            .unwrap(),
        CHALLENGE
    );
    // The content-type attribute names id-signedData instead of id-data.
    let content_type = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03, 0x31, 0x0b, 0x06, 0x09,
        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
    ];
    let other_type = with_signed_attributes_edited(&der, &holder.key, |attrs| {
        let at = find(attrs, &content_type);
        attrs[at + content_type.len() - 1] = 0x02;
    });
    let err = SignedMessage::from_der(&other_type).unwrap_err();
    assert!(matches!(err, CmsError::Malformed(_)), "{err:?}");
    // The message-digest attribute is not the content's digest: OpenSSL refuses it.
    let digest_attr = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04, 0x31, 0x22, 0x04, 0x20,
    ];
    let other_digest = with_signed_attributes_edited(&der, &holder.key, |attrs| {
        let at = find(attrs, &digest_attr);
        attrs[at + digest_attr.len()] ^= 0x01;
    });
    assert_eq!(
        SignedMessage::from_der(&other_digest)
            .unwrap()
            .verify_attached(&holder.cert),
        Err(CmsError::SignatureInvalid)
    );
    // The message-digest attribute renamed (to signingTime's OID): none left.
    let no_digest = with_signed_attributes_edited(&der, &holder.key, |attrs| {
        let at = find(attrs, &digest_attr);
        attrs[at + 10] = 0x05;
    });
    let err = SignedMessage::from_der(&no_digest).unwrap_err();
    assert!(matches!(err, CmsError::Malformed(_)), "{err:?}");
}
