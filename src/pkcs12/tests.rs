#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use super::*;

const FIXTURE_KEY: &[u8] = include_bytes!("../../tests/data/pkcs12/key.der");
const FIXTURE_CERT: &[u8] = include_bytes!("../../tests/data/pkcs12/cert.der");
const OPENSSL_MODERN: &[u8] = include_bytes!("../../tests/data/pkcs12/openssl-modern.p12");
const OPENSSL_LEGACY: &[u8] = include_bytes!("../../tests/data/pkcs12/openssl-legacy.p12");
const NCA_RSA: &[u8] = include_bytes!("../../tests/data/nca-test-2020/RSA256_individual_sign.p12");
const NCA_GOST: &[u8] = include_bytes!("../../tests/data/nca-gost-2015/individual_gost2015.p12");

fn fixture() -> Contents<'static> {
    Contents {
        private_key: FIXTURE_KEY,
        certificate: FIXTURE_CERT,
        chain: &[],
    }
}

/// Every bag of a container written NCA's way is named by the holder's SKI: `localKeyID` its
/// octets, `friendlyName` its lower-case hex.
fn assert_named_by_ski(decoded: &Decoded) {
    let certs = decoded.certificates();
    let ski = subject_key_id(certs[0]).unwrap();
    let named: Vec<&Bag> = decoded
        .bags()
        .filter(|b| !b.attributes.is_empty())
        .collect();
    assert_eq!(named.len(), 2, "the key and the holder's certificate");
    for bag in named {
        assert_eq!(bag.local_key_id(), Some(ski.as_slice()));
        assert_eq!(bag.friendly_name(), Some(hex::encode(&ski).as_str()));
        let oids: Vec<_> = bag.attributes.iter().map(|a| a.oid).collect();
        assert_eq!(oids, [oid::LOCAL_KEY_ID, oid::FRIENDLY_NAME]);
    }
}

/// The KDF, 3DES, RC2-40, PBES2 and both MACs agree with OpenSSL's: containers that
/// `openssl pkcs12 -export` (with and without `-legacy`) made open to the key and certificate
/// that went in.
#[test]
fn opens_what_openssl_wrote() {
    for (p12, mac_digest) in [
        (OPENSSL_MODERN, Digest::Sha256),
        (OPENSSL_LEGACY, Digest::Sha1),
    ] {
        let d = decode(p12, "Fixture2026").unwrap();
        assert_eq!(d.mac.as_ref().unwrap().digest, mac_digest);
        assert_eq!(d.private_keys(), [FIXTURE_KEY]);
        assert_eq!(d.certificates(), [FIXTURE_CERT]);
        // OpenSSL writes the certificates' encrypted safe first, then the key's data safe.
        assert!(d.safes[0].encryption.is_some() && d.safes[1].encryption.is_none());
        assert_eq!(d.bags().next().unwrap().friendly_name(), Some("fixture"));
        assert!(matches!(
            decode(p12, "Fixture2027"),
            Err(Pkcs12Error::WrongPassword)
        ));
    }
    let legacy = decode(OPENSSL_LEGACY, "Fixture2026").unwrap();
    assert!(matches!(
        legacy.safes[0].encryption,
        Some(Encryption::Pkcs12 {
            scheme: Pkcs12Scheme::Sha1Rc2_40Cbc,
            ..
        })
    ));
}

#[test]
fn reads_ncas_containers() {
    let rsa = decode(NCA_RSA, "Qwerty12").unwrap();
    assert_named_by_ski(&rsa);
    assert_eq!(rsa.certificates().len(), 1, "no chain in NCA's container");
    let key = openssl::pkey::PKey::private_key_from_der(rsa.private_keys()[0]).unwrap();
    let cert = openssl::x509::X509::from_der(rsa.certificates()[0]).unwrap();
    assert!(cert.public_key().unwrap().public_eq(&key));
    assert!(matches!(
        decode(NCA_RSA, "Qwerty13"),
        Err(Pkcs12Error::WrongPassword)
    ));

    // The GOST container is of the same family: same structure, a key OpenSSL cannot read.
    let gost = decode(NCA_GOST, "Aa123456").unwrap();
    assert_named_by_ski(&gost);
    assert_eq!(gost.structure(), rsa.structure());
}

/// `--legacy-p12` is NCA's container: decoded by the same code, everything but the salts,
/// the key, the certificate and the values that name them is the same, field by field.
#[test]
fn the_legacy_container_is_ncas() {
    let ours = decode(
        &encode(&fixture(), "Qwerty12", Protection::Legacy).unwrap(),
        "Qwerty12",
    )
    .unwrap();
    let theirs = decode(NCA_RSA, "Qwerty12").unwrap();
    assert_named_by_ski(&ours);
    assert_eq!(ours.private_keys(), [FIXTURE_KEY]);
    assert_eq!(ours.certificates(), [FIXTURE_CERT]);
    let (ours, theirs) = (ours.structure(), theirs.structure());
    assert_eq!(ours.version, theirs.version);
    assert_eq!(ours.mac, theirs.mac);
    assert_eq!(ours.safes.len(), theirs.safes.len());
    for (a, b) in ours.safes.iter().zip(&theirs.safes) {
        assert_eq!(a.encryption, b.encryption);
        assert_eq!(a.encrypted_data_version, b.encrypted_data_version);
        assert_eq!(a.bags, b.bags);
    }
    assert_eq!(ours, theirs);
    // And what that structure is.
    let mac = ours.mac.unwrap();
    assert_eq!(
        (mac.digest, mac.iterations, mac.salt.len(), mac.length),
        (Digest::Sha1, 1024, 20, 20)
    );
    assert!(mac.null_parameters);
    let [key_safe, cert_safe] = &ours.safes[..] else {
        panic!("two safes")
    };
    assert_eq!(key_safe.encryption, None);
    assert_eq!(
        key_safe.bags[0].kind,
        BagKind::ShroudedKey(Encryption::Pkcs12 {
            scheme: Pkcs12Scheme::Sha1TripleDesCbc,
            iterations: 1024,
            salt: vec![0; 20]
        })
    );
    assert_eq!(
        cert_safe.encryption,
        Some(Encryption::Pkcs12 {
            scheme: Pkcs12Scheme::Sha1Rc2_40Cbc,
            iterations: 1024,
            salt: vec![0; 20]
        })
    );
    assert_eq!(cert_safe.bags.len(), 1);
    assert_eq!(cert_safe.bags[0].kind, BagKind::Certificate);
}

#[test]
fn modern_containers() {
    let chain = vec![FIXTURE_CERT.to_vec()];
    let contents = Contents {
        chain: &chain,
        ..fixture()
    };
    let p12 = encode(
        &contents,
        "Құпия2026сөз",
        Protection::Modern {
            iterations: MIN_ITERATIONS,
        },
    )
    .unwrap();
    let d = decode(&p12, "Құпия2026сөз").unwrap();
    assert_named_by_ski(&d);
    assert_eq!(d.private_keys(), [FIXTURE_KEY]);
    assert_eq!(
        d.certificates(),
        [FIXTURE_CERT, FIXTURE_CERT],
        "the chain follows"
    );
    assert!(d.safes[1].bags[1].attributes.is_empty());
    let mac = d.mac.as_ref().unwrap();
    assert_eq!(
        (mac.digest, mac.iterations, mac.length),
        (Digest::Sha256, MIN_ITERATIONS, 32)
    );
    let pbes2 = Encryption::Pbes2 {
        prf: Digest::Sha256,
        prf_null_parameters: true,
        iterations: MIN_ITERATIONS,
        salt: vec![0; 16],
        key_length: None,
        cipher: Pbes2Cipher::Aes256Cbc,
        iv: vec![0; 16],
    };
    let s = d.structure();
    assert_eq!(s.safes[0].bags[0].kind, BagKind::ShroudedKey(pbes2.clone()));
    assert_eq!(s.safes[1].encryption, Some(pbes2));
    assert!(matches!(
        decode(&p12, "Құпия2026сөЗ"),
        Err(Pkcs12Error::WrongPassword)
    ));
    for bad in [1, MIN_ITERATIONS - 1, MAX_ITERATIONS + 1] {
        assert!(matches!(
            encode(&contents, "Abcdef1", Protection::Modern { iterations: bad }),
            Err(Pkcs12Error::Iterations(n)) if n == bad
        ));
    }
    // A key that is not PKCS#8 (here SEC1's ECPrivateKey) is refused.
    let sec1 = openssl::pkey::PKey::private_key_from_der(FIXTURE_KEY)
        .unwrap()
        .ec_key()
        .unwrap()
        .private_key_to_der()
        .unwrap();
    let contents = Contents {
        private_key: &sec1,
        ..fixture()
    };
    assert!(matches!(
        encode(&contents, "Abcdef1", Protection::Legacy),
        Err(Pkcs12Error::PrivateKey)
    ));
    // A certificate without a SKI names no key.
    let mut no_ski = openssl::x509::X509::builder().unwrap();
    let key = openssl::pkey::PKey::private_key_from_der(FIXTURE_KEY).unwrap();
    no_ski.set_pubkey(&key).unwrap();
    no_ski
        .sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    let no_ski = no_ski.build().to_der().unwrap();
    let contents = Contents {
        certificate: &no_ski,
        ..fixture()
    };
    assert!(matches!(
        encode(&contents, "Abcdef1", Protection::Legacy),
        Err(Pkcs12Error::Certificate(_))
    ));
}

/// Damaged or hostile containers are refused with an error, never a panic, and never with
/// a key derivation the container may make arbitrarily long.
#[test]
fn refuses_damaged_and_hostile_containers() {
    let p12 = encode(&fixture(), "Qwerty12", Protection::Legacy).unwrap();
    for len in 0..p12.len() {
        assert!(
            decode(&p12[..len], "Qwerty12").is_err(),
            "truncated at {len}"
        );
    }
    for i in (0..p12.len()).step_by(7) {
        let mut bad = p12.clone();
        bad[i] ^= 0x01;
        let _ = decode(&bad, "Qwerty12");
    }
    // The MAC's iteration count (the last INTEGER, 1024 = 02 02 04 00) raised to 2^31 - 1.
    let tail = p12.len() - 4;
    assert_eq!(&p12[tail..], [0x02, 0x02, 0x04, 0x00]);
    let mut slow = p12[..tail].to_vec();
    slow.extend([0x02, 0x04, 0x7f, 0xff, 0xff, 0xff]);
    // Outer lengths: PFX (3 bytes of header: 30 82 LL LL) grows by 2.
    let outer = u16::from_be_bytes([slow[2], slow[3]]) + 2;
    slow[2..4].copy_from_slice(&outer.to_be_bytes());
    let mac_data = slow.len() - 2 - 0x3d - 2;
    assert_eq!(slow[mac_data], 0x30);
    slow[mac_data + 1] += 2;
    assert!(matches!(
        decode(&slow, "Qwerty12"),
        Err(Pkcs12Error::Iterations(0x7fff_ffff))
    ));
    assert!(matches!(
        decode(&vec![0x30; MAX_CONTAINER + 1], "x"),
        Err(Pkcs12Error::TooLarge)
    ));
}
