//! `tamga-enroll --sign-key-type gost2015-512`'s container, `GOST512_<ski>.p12`, against NCA's
//! own (`tests/data/nca-gost-2015/individual_gost2015.p12`): the key encoding read back from
//! NCA's and written again byte for byte; ours and NCA's decoded by the same code and
//! compared field by field; the `openssl` command with the engine reading ours as far as it
//! reads NCA's; the key in ours signing for the certificate's key; and the client refusing
//! the option at once where the engine is missing.
//!
//! Our container holds a GOST certificate made here, in NCA's form, signed by a throw-away
//! GOST key: the client's flow against a running server needs the GOST issuing CA.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::asn1::{BitString, OctetString, UtcTime};
use der::{Decode, Encode, Sequence};
use openssl::pkey::{PKey, Private};
use spki::AlgorithmIdentifierOwned;
use tamga::enroll::{gost_container, ContainerError};
use tamga::gost::{self, Form, GostPublicKey, KeySize};
use tamga::pkcs12::{self, AttributeValue, BagKind, Decoded, Digest, Encryption, Pkcs12Scheme};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

use crate::gost::{gost_ready, openssl_gost, openssl_verifies};
use crate::support::{tamga_enroll, text};

const NCA_CONTAINER: &[u8] = include_bytes!("../data/nca-gost-2015/individual_gost2015.p12");
/// NCA's container's password (its README).
const NCA_PASSWORD: &str = "Aa123456";
/// The name NCA's SDK ships that container under.
const NCA_FILE: &str = "GOST512_8ff06211dc82beb00253ffa000f1de84abef454f.p12";
/// Our containers' password.
const PASSWORD: &str = "Secret2026";

/// PKCS#8 `PrivateKeyInfo`, as both forms write it.
#[derive(Sequence)]
struct PrivateKeyInfo {
    version: u8,
    algorithm: AlgorithmIdentifierOwned,
    private_key: OctetString,
}

/// The one private key of a decoded container, as PKCS#8 DER.
fn the_key(decoded: &Decoded) -> &[u8] {
    let [key] = decoded.private_keys()[..] else {
        panic!("one private key");
    };
    key
}

/// The one certificate of a decoded container, DER.
fn the_certificate(decoded: &Decoded) -> &[u8] {
    let [certificate] = decoded.certificates()[..] else {
        panic!("one certificate");
    };
    certificate
}

/// A GOST 2015-512 certificate in NCA's form for `holder`, signed in NCA's form by a
/// throw-away GOST key, with what names a key in a container: a 20-byte SKI (and the serial
/// NCA derives from it, the SKI with its top bit cleared). Returns it (DER) and the
/// throw-away issuer's key (SubjectPublicKeyInfo DER, NCA's form).
fn certificate(holder: &PKey<Private>) -> (Vec<u8>, Vec<u8>) {
    let issuer = gost::generate(KeySize::Bits512).unwrap();
    let key = GostPublicKey::from_der(&holder.public_key_to_der().unwrap()).unwrap();
    let mut ski = [0u8; 20];
    openssl::rand::rand_bytes(&mut ski).unwrap();
    let mut serial = ski;
    serial[0] &= 0x7f;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let time =
        |secs: u64| Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(secs)).unwrap());
    let algorithm = gost::signature_algorithm_identifier(KeySize::Bits512, Form::Nca).unwrap();
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&serial).unwrap(),
        signature: algorithm.clone(),
        issuer: Name::from_str("CN=Throw-away GOST CA,C=KZ").unwrap(),
        validity: Validity {
            not_before: time(now),
            not_after: time(now + 365 * 86_400),
        },
        subject: Name::from_str("CN=GOST holder,C=KZ").unwrap(),
        subject_public_key_info: key.to_spki(Form::Nca).unwrap(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(vec![Extension {
            extn_id: const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
            critical: false,
            extn_value: OctetString::new(OctetString::new(ski).unwrap().to_der().unwrap()).unwrap(),
        }]),
    };
    let signature = gost::sign(&issuer, &tbs.to_der().unwrap(), Form::Nca).unwrap();
    let certificate = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(&signature).unwrap(),
    }
    .to_der()
    .unwrap();
    let issuer_key = gost::spki_to_nca(&issuer.public_key_to_der().unwrap()).unwrap();
    (certificate, issuer_key)
}

/// A new GOST key, its certificate, and the client's container of them.
struct Ours {
    key: PKey<Private>,
    certificate: Vec<u8>,
    issuer_key: Vec<u8>,
    file: String,
    bytes: Vec<u8>,
}

fn ours() -> Ours {
    let key = gost::generate(KeySize::Bits512).unwrap();
    let (certificate, issuer_key) = certificate(&key);
    let container = gost_container("sign", PASSWORD, &certificate, &key).unwrap();
    Ours {
        key,
        certificate,
        issuer_key,
        file: container.file,
        bytes: container.bytes,
    }
}

/// NCA's private key, decoded: the PKCS#8 of NCA's form — NCA's key OIDs (the certificate's
/// own AlgorithmIdentifier), the scalar as 64 little-endian bytes in an inner OCTET STRING —
/// which `gost::private_key_from_info` reads as the certificate's key and
/// `gost::private_key_info` writes again byte for byte; the same bytes reversed are another
/// key.
#[test]
fn gost_enroll_ncas_container_key_reads_and_writes_back_byte_for_byte() {
    if !gost_ready("gost_enroll_ncas_container_key_reads_and_writes_back_byte_for_byte") {
        return;
    }
    let nca = pkcs12::decode(NCA_CONTAINER, NCA_PASSWORD).unwrap();
    let pkcs8 = the_key(&nca);
    let certificate = the_certificate(&nca);
    let info = PrivateKeyInfo::from_der(pkcs8).unwrap();
    assert_eq!(info.version, 0);
    let spki = x509_cert::Certificate::from_der(certificate)
        .unwrap()
        .tbs_certificate
        .subject_public_key_info;
    assert_eq!(info.algorithm, spki.algorithm, "the certificate's key OIDs");
    assert_eq!(info.algorithm.oid, gost::oid::NCA_KEY_512);
    let scalar = OctetString::from_der(info.private_key.as_bytes()).unwrap();
    assert_eq!(
        scalar.as_bytes().len(),
        64,
        "an inner OCTET STRING of 64 bytes"
    );

    let key = gost::private_key_from_info(pkcs8).unwrap();
    let certified = gost::certificate_key(certificate).unwrap();
    let held = GostPublicKey::from_der(&key.public_key_to_der().unwrap()).unwrap();
    assert!(held.same_key(&certified), "the key is the certificate's");
    assert_eq!(gost::private_key_info(&key, Form::Nca).unwrap(), pkcs8);

    // Big-endian would be the other reading: it is another key.
    let mut reversed = scalar.as_bytes().to_vec();
    reversed.reverse();
    let other = PrivateKeyInfo {
        version: 0,
        algorithm: info.algorithm.clone(),
        private_key: OctetString::new(OctetString::new(reversed).unwrap().to_der().unwrap())
            .unwrap(),
    };
    let other = gost::private_key_from_info(&other.to_der().unwrap()).unwrap();
    let other = GostPublicKey::from_der(&other.public_key_to_der().unwrap()).unwrap();
    assert!(!other.same_key(&certified));

    // And NCA's key signs as the certificate says.
    let signature = gost::sign(&key, b"signed by NCA's key", Form::Nca).unwrap();
    gost::verify(
        b"signed by NCA's key",
        &gost::signature_algorithm_identifier(KeySize::Bits512, Form::Nca).unwrap(),
        &BitString::from_bytes(&signature).unwrap(),
        &gost::subject_public_key_info(certificate).unwrap(),
    )
    .unwrap();
}

/// Our `GOST512_<ski>.p12` and NCA's, decoded by the same code: the same structure field by
/// field — PFX version, MAC (digest, NULL parameters, iterations, salt and MAC lengths), the
/// safes in order with their PBEs and iterations, the bags with their attributes in order and
/// the lengths of their values — and the same PKCS#8 form of the key (version, the whole
/// AlgorithmIdentifier, an inner OCTET STRING of 64 bytes); only the salts, the key, the
/// certificate and the SKI that names them differ.
#[test]
fn gost_enroll_our_container_is_ncas_field_by_field() {
    if !gost_ready("gost_enroll_our_container_is_ncas_field_by_field") {
        return;
    }
    let ours_made = ours();
    let ours = pkcs12::decode(&ours_made.bytes, PASSWORD).unwrap();
    let nca = pkcs12::decode(NCA_CONTAINER, NCA_PASSWORD).unwrap();

    // Named as NCA names it: GOST512_ then the SKI in lower-case hex, the friendlyName.
    let ski = pkcs12::subject_key_id(&ours_made.certificate).unwrap();
    assert_eq!(ours_made.file, format!("GOST512_{}.p12", hex::encode(&ski)));
    let nca_ski = pkcs12::subject_key_id(the_certificate(&nca)).unwrap();
    assert_eq!(NCA_FILE, format!("GOST512_{}.p12", hex::encode(&nca_ski)));
    for (decoded, ski) in [(&ours, &ski), (&nca, &nca_ski)] {
        for bag in decoded.bags() {
            assert_eq!(bag.local_key_id(), Some(ski.as_slice()));
            assert_eq!(bag.friendly_name(), Some(hex::encode(ski).as_str()));
        }
    }
    assert_eq!(the_certificate(&ours), ours_made.certificate.as_slice());

    let (a, b) = (ours.structure(), nca.structure());
    assert_eq!(a.version, b.version);
    assert_eq!(a.mac, b.mac);
    let mac = a.mac.as_ref().unwrap();
    assert_eq!(
        (
            mac.digest,
            mac.null_parameters,
            mac.iterations,
            mac.salt.len(),
            mac.length
        ),
        (Digest::Sha1, true, 1024, 20, 20)
    );
    assert_eq!(a.safes.len(), 2);
    assert_eq!(a.safes.len(), b.safes.len());
    for (x, y) in a.safes.iter().zip(&b.safes) {
        assert_eq!(x.encryption, y.encryption);
        assert_eq!(x.encrypted_data_version, y.encrypted_data_version);
        assert_eq!(x.bags.len(), y.bags.len());
        for (p, q) in x.bags.iter().zip(&y.bags) {
            assert_eq!(p.kind, q.kind);
            assert_eq!(p.attributes, q.attributes);
        }
    }
    let pbe = |scheme| Encryption::Pkcs12 {
        scheme,
        iterations: 1024,
        salt: vec![0; 20],
    };
    assert_eq!(a.safes[0].encryption, None);
    assert_eq!(
        a.safes[0].bags[0].kind,
        BagKind::ShroudedKey(pbe(Pkcs12Scheme::Sha1TripleDesCbc))
    );
    assert_eq!(
        a.safes[1].encryption,
        Some(pbe(Pkcs12Scheme::Sha1Rc2_40Cbc))
    );
    assert_eq!(a.safes[1].bags[0].kind, BagKind::Certificate);
    assert!(matches!(
        a.safes[0].bags[0].attributes[1].values[..],
        [AttributeValue::BmpString(ref name)] if name.len() == 40
    ));
    assert_eq!(a, b, "nothing else differs");

    let (ours_key, nca_key) = (
        PrivateKeyInfo::from_der(the_key(&ours)).unwrap(),
        PrivateKeyInfo::from_der(the_key(&nca)).unwrap(),
    );
    assert_eq!(ours_key.version, nca_key.version);
    assert_eq!(
        ours_key.algorithm.to_der().unwrap(),
        nca_key.algorithm.to_der().unwrap()
    );
    for info in [&ours_key, &nca_key] {
        let inner = OctetString::from_der(info.private_key.as_bytes()).unwrap();
        assert_eq!(inner.as_bytes().len(), 64);
    }
    assert_eq!(the_key(&ours).len(), the_key(&nca).len());

    // The wrong password opens neither.
    for (bytes, password) in [
        (&ours_made.bytes[..], "Secret2027"),
        (NCA_CONTAINER, "Aa123457"),
    ] {
        assert!(matches!(
            pkcs12::decode(bytes, password),
            Err(pkcs12::Pkcs12Error::WrongPassword)
        ));
    }
}

/// What `openssl pkcs12` with the engine says of the container `file` in `dir`.
fn openssl_pkcs12(dir: &Path, file: &str, password: &str, args: &[&str]) -> (bool, String) {
    let passin = format!("pass:{password}");
    let mut all = vec!["pkcs12", "-legacy", "-in", file, "-passin", &passin];
    all.extend_from_slice(args);
    let out = openssl_gost(dir, &all);
    (out.status.success(), text(&out))
}

/// The `openssl` command with the engine reads ours exactly as far as NCA's: `-info` the same
/// MAC, PBEs and bags; `-nokeys` the certificate (ours is the one we put in) with the bag
/// attributes; neither key (`unsupported private key algorithm`, NCA's key OID: the engine
/// knows only the TC26 OIDs); a wrong password fails the MAC of both.
#[test]
fn gost_enroll_openssl_reads_ours_as_far_as_ncas() {
    if !gost_ready("gost_enroll_openssl_reads_ours_as_far_as_ncas") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ours = ours();
    std::fs::write(dir.path().join(&ours.file), &ours.bytes).unwrap();
    std::fs::write(dir.path().join(NCA_FILE), NCA_CONTAINER).unwrap();
    let both = [(ours.file.as_str(), PASSWORD), (NCA_FILE, NCA_PASSWORD)];

    let [(ours_ok, ours_info), (nca_ok, nca_info)] = both
        .map(|(file, password)| openssl_pkcs12(dir.path(), file, password, &["-info", "-noout"]));
    assert!(ours_ok && nca_ok, "{ours_info}\n{nca_info}");
    assert_eq!(ours_info, nca_info);
    for line in [
        "MAC: sha1, Iteration 1024",
        "MAC length: 20, salt length: 20",
        "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 1024",
        "PKCS7 Encrypted data: pbeWithSHA1And40BitRC2-CBC, Iteration 1024",
        "Certificate bag",
    ] {
        assert!(ours_info.contains(line), "{line}: {ours_info}");
    }

    for (file, password) in both {
        let (ok, shown) = openssl_pkcs12(
            dir.path(),
            file,
            password,
            &["-info", "-nokeys", "-out", "certificate.pem"],
        );
        assert!(ok, "{file}: {shown}");
        let ski = file.trim_end_matches(".p12").trim_start_matches("GOST512_");
        // The bag attributes go before the certificate, into the file.
        let pem = std::fs::read(dir.path().join("certificate.pem")).unwrap();
        let written = String::from_utf8_lossy(&pem);
        assert!(
            written.contains(&format!("friendlyName: {ski}")),
            "{written}"
        );
        let read = openssl::x509::X509::from_pem(&pem)
            .unwrap()
            .to_der()
            .unwrap();
        if file == ours.file {
            assert_eq!(read, ours.certificate);
        }
        std::fs::remove_file(dir.path().join("certificate.pem")).unwrap();

        let (ok, shown) = openssl_pkcs12(dir.path(), file, password, &["-nocerts", "-nodes"]);
        assert!(!ok, "{file}: {shown}");
        assert!(
            shown.contains("unsupported private key algorithm")
                && shown.contains("1.2.398.3.10.1.1.2.2"),
            "{file}: {shown}"
        );

        let (ok, shown) = openssl_pkcs12(dir.path(), file, "Wrong2026", &["-info", "-noout"]);
        assert!(!ok && shown.contains("Mac verify error"), "{file}: {shown}");
    }
}

/// The key in our container, opened with the password and read from NCA's form, is the
/// certificate's: it signs, and the signature verifies with the certificate's key — with our
/// code, and with the `openssl` command given the key in the TC26 form and the signature in
/// the engine's order. The certificate verifies against its throw-away issuer.
#[test]
fn gost_enroll_the_key_in_our_container_signs_for_its_certificate() {
    if !gost_ready("gost_enroll_the_key_in_our_container_signs_for_its_certificate") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ours = ours();
    let decoded = pkcs12::decode(&ours.bytes, PASSWORD).unwrap();
    let key = gost::private_key_from_info(the_key(&decoded)).unwrap();
    assert!(key.public_eq(&ours.key));
    let certificate = the_certificate(&decoded);
    gost::SignedArtefact::certificate(certificate)
        .unwrap()
        .verify(&ours.issuer_key)
        .unwrap();

    let message = b"a document the holder signs";
    let signature = gost::sign(&key, message, Form::Nca).unwrap();
    let spki = gost::subject_public_key_info(certificate).unwrap();
    let algorithm = gost::signature_algorithm_identifier(KeySize::Bits512, Form::Nca).unwrap();
    gost::verify(
        message,
        &algorithm,
        &BitString::from_bytes(&signature).unwrap(),
        &spki,
    )
    .unwrap();
    let tc26 = gost::spki_to_tc26(&spki).unwrap();
    let engine_order = gost::reverse_signature(&signature);
    assert!(openssl_verifies(
        dir.path(),
        KeySize::Bits512,
        message,
        &engine_order,
        &tc26
    ));
    assert!(!openssl_verifies(
        dir.path(),
        KeySize::Bits512,
        b"another document",
        &engine_order,
        &tc26
    ));

    // A certificate of another key is refused, and no container is made.
    let other = gost::generate(KeySize::Bits512).unwrap();
    assert!(matches!(
        gost_container("sign", PASSWORD, &ours.certificate, &other),
        Err(ContainerError::KeyMismatch(kind)) if kind == "sign"
    ));
}

/// Where the engine is missing, `--sign-key-type gost2015-512` stops the client at once —
/// before it asks for a password, calls the server or makes `--out` — naming the option and
/// the package; with the engine it gets past that check (here to the server it cannot reach).
#[test]
fn gost_enroll_without_the_engine_the_client_refuses_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = |engines: Option<&Path>| {
        let mut command = tamga_enroll();
        command
            .current_dir(dir.path())
            .env_remove("OPENSSL_ENGINES")
            .args(["--server", "http://127.0.0.1:9", "--token", "t"])
            .args(["--sign-key-type", "gost2015-512", "--out", "keys"])
            .args(["--password-file", "missing-password.txt"]);
        if let Some(engines) = engines {
            command.env("OPENSSL_ENGINES", engines);
        }
        command.output().unwrap()
    };
    let out = run(Some(&dir.path().join("no-engines-here")));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("--sign-key-type gost2015-512") && said.contains("libengine-gost-openssl"),
        "{said}"
    );
    assert!(
        !said.contains("password"),
        "asked before the password: {said}"
    );
    assert!(!dir.path().join("keys").exists());

    if !gost_ready("gost_enroll_without_the_engine_the_client_refuses_at_once (with the engine)") {
        return;
    }
    let out = run(None);
    let said = text(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "the password file is next: {said}"
    );
    assert!(said.contains("--password-file"), "{said}");
    assert!(!dir.path().join("keys").exists());
}
