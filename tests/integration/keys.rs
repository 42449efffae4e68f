//! One key, one identity: the same public key in another encoding (compressed or hybrid
//! point, explicit curve parameters, RSA without NULL parameters) is refused with
//! `key_encoding_invalid`, also after the key was revoked for compromise; weak RSA moduli
//! (prime, a factor below 2^20) and CSR signatures weaker than SHA-256 are refused; and a
//! database written with the old identity (the hash of the submitted bytes) is rewritten once
//! at start-up, on SQLite and PostgreSQL.

use std::path::Path;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use der::{Decode, Encode};
use diesel::connection::SimpleConnection;
use diesel::Connection;
use openssl::bn::{BigNum, BigNumContext};
use serde_json::Value;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use tamga::config::{DatabaseConfig, DatabaseUrl};
use tamga::key_identity::KeyIdentity;
use tamga::store::{
    BlockedKey, Certificate, CertificateKind, CertificateStatus, Store, CANONICAL_KEY_IDENTITY,
};

use crate::enroll::{body, claims, csr, csr_for_key, fresh_iin, Env};
use crate::support::{openssl, postgres_url, PgDatabase};

/// A PEM CSR for `spki_der`, signed by `sign` over the request info with `algorithm`.
fn raw_csr(
    spki_der: &[u8],
    algorithm: AlgorithmIdentifierOwned,
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> String {
    let info = x509_cert::request::CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject: x509_cert::name::Name::from_str("CN=x").unwrap(),
        public_key: SubjectPublicKeyInfoOwned::from_der(spki_der).unwrap(),
        attributes: Default::default(),
    };
    let signature = sign(&info.to_der().unwrap());
    let req = x509_cert::request::CertReq {
        info,
        algorithm,
        signature: der::asn1::BitString::from_bytes(&signature).unwrap(),
    };
    let b64 = STANDARD.encode(req.to_der().unwrap());
    format!("-----BEGIN CERTIFICATE REQUEST-----\n{b64}\n-----END CERTIFICATE REQUEST-----\n")
}

fn sha256_with_rsa() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
        parameters: Some(der::asn1::Any::from(der::asn1::Null)),
    }
}

/// An RSA "key" (n, d) signs PKCS#1 v1.5 with SHA-256 by hand: OpenSSL will not sign with a
/// prime modulus, but the signature verifies all the same.
fn raw_rsa_sign(n: &BigNum, d: &BigNum, message: &[u8]) -> Vec<u8> {
    let mut em = vec![0x00, 0x01];
    // DigestInfo prefix of SHA-256 (RFC 8017 §9.2, note 1).
    let prefix: [u8; 19] = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let k = usize::try_from(n.num_bytes()).unwrap();
    em.resize(k - prefix.len() - 32 - 1, 0xff);
    em.push(0x00);
    em.extend_from_slice(&prefix);
    em.extend_from_slice(&openssl::sha::sha256(message));
    let mut ctx = BigNumContext::new().unwrap();
    let mut s = BigNum::new().unwrap();
    s.mod_exp(&BigNum::from_slice(&em).unwrap(), d, n, &mut ctx)
        .unwrap();
    s.to_vec_padded(i32::try_from(k).unwrap()).unwrap()
}

/// A CSR whose 2048-bit modulus is a prime (`small` = None) or `small` times a fresh prime,
/// correctly signed with the matching private exponent.
fn weak_rsa_csr(small: Option<u32>) -> String {
    let mut ctx = BigNumContext::new().unwrap();
    let e = BigNum::from_u32(65537).unwrap();
    let mut attempt = 0;
    loop {
        let (n, phi) = match small {
            None => {
                let mut p = BigNum::new().unwrap();
                p.generate_prime(2048, false, None, None).unwrap();
                let mut phi = p.to_owned().unwrap();
                phi.sub_word(1).unwrap();
                (p, phi)
            }
            Some(r) => {
                let mut q = BigNum::new().unwrap();
                // n has bits(q) + bits(r) or one bit fewer: try both lengths of q.
                let r_bits = i32::try_from(32 - r.leading_zeros()).unwrap();
                attempt += 1;
                q.generate_prime(2048 - r_bits + attempt % 2, false, None, None)
                    .unwrap();
                let mut n = BigNum::new().unwrap();
                n.checked_mul(&q, &BigNum::from_u32(r).unwrap(), &mut ctx)
                    .unwrap();
                q.sub_word(1).unwrap();
                let mut phi = BigNum::new().unwrap();
                phi.checked_mul(&q, &BigNum::from_u32(r - 1).unwrap(), &mut ctx)
                    .unwrap();
                (n, phi)
            }
        };
        if n.num_bits() != 2048 {
            continue;
        }
        let mut d = BigNum::new().unwrap();
        if d.mod_inverse(&e, &phi, &mut ctx).is_err() {
            continue;
        }
        let public =
            openssl::rsa::Rsa::from_public_components(n.to_owned().unwrap(), e.to_owned().unwrap())
                .unwrap();
        let spki = public.public_key_to_der().unwrap();
        return raw_csr(&spki, sha256_with_rsa(), |m| raw_rsa_sign(&n, &d, m));
    }
}

/// A CSR for the RSA key in `key_pem` whose SubjectPublicKeyInfo has no NULL parameters.
fn rsa_csr_without_null(key_pem: &Path) -> String {
    let key = openssl::pkey::PKey::private_key_from_pem(&std::fs::read(key_pem).unwrap()).unwrap();
    let canonical = key.public_key_to_der().unwrap();
    let mut spki = SubjectPublicKeyInfoOwned::from_der(&canonical).unwrap();
    spki.algorithm.parameters = None;
    raw_csr(&spki.to_der().unwrap(), sha256_with_rsa(), |m| {
        let mut signer =
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
        signer.sign_oneshot_to_vec(m).unwrap()
    })
}

/// The key in `key` rewritten by `openssl ec` with extra options (another encoding).
fn ec_reencoded(dir: &Path, key: &Path, name: &str, options: &[&str]) -> std::path::PathBuf {
    let out = dir.join(name);
    let mut args = vec![
        "ec",
        "-in",
        key.to_str().unwrap(),
        "-out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(options);
    openssl(dir, &args);
    out
}

fn refused(env: &Env, auth: &str, sign: &str, status: u16, code: &str) -> Value {
    let before = env.counts();
    let token = env.minted(&claims(&fresh_iin()));
    let (got, problem) = env.post(Some(&token), &body(auth, sign, None));
    assert_eq!(
        (got, problem["code"].as_str()),
        (status, Some(code)),
        "{problem}"
    );
    // What a submission writes (the audit log also grows by background CRL publication).
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

#[test]
fn one_key_has_one_identity_and_weak_requests_are_refused() {
    let env = Env::sqlite();
    let dir = env.dir();
    let (auth, auth_key) = csr(dir, "rsa:2048", &[]);
    let (sign, sign_key) = csr(dir, "ec", &[]);
    let iin = fresh_iin();
    let (status, created) = env.post(Some(&env.minted(&claims(&iin))), &body(&auth, &sign, None));
    assert_eq!(status, 201, "{created}");
    let certs = created["certificates"].as_array().unwrap();
    let sign_serial = certs[1]["serial"].as_str().unwrap().to_owned();

    // The holder reports the SIGN key compromised.
    let resp = env.revoke_as_holder(&iin, &sign_serial, "keyCompromise");
    assert_eq!(resp.status(), 200);

    // The same key, canonical: blocked. In any other encoding: refused before it is looked up.
    let (fresh_auth, _) = csr(dir, "rsa:2048", &[]);
    refused(&env, &fresh_auth, &sign, 409, "key_blocked");
    for (name, options, reason) in [
        (
            "compressed.pem",
            &["-conv_form", "compressed"][..],
            "compressed",
        ),
        ("hybrid.pem", &["-conv_form", "hybrid"][..], "hybrid"),
        ("explicit.pem", &["-param_enc", "explicit"][..], "explicit"),
    ] {
        let other = csr_for_key(dir, &ec_reencoded(dir, &sign_key, name, options));
        let problem = refused(&env, &fresh_auth, &other, 422, "key_encoding_invalid");
        assert!(
            problem["detail"].as_str().unwrap().contains(reason),
            "{problem}"
        );
    }
    // The AUTH key (certified, not blocked): reused when canonical, refused without NULL.
    let (fresh_sign, _) = csr(dir, "ec", &[]);
    refused(&env, &auth, &fresh_sign, 409, "key_reused");
    let problem = refused(
        &env,
        &rsa_csr_without_null(&auth_key),
        &fresh_sign,
        422,
        "key_encoding_invalid",
    );
    assert!(problem["detail"].as_str().unwrap().contains("NULL"));
    // A fresh EC key in compressed form is refused too (not only known keys).
    let (_, new_key) = csr(dir, "ec", &[]);
    let compressed = csr_for_key(
        dir,
        &ec_reencoded(
            dir,
            &new_key,
            "new-compressed.pem",
            &["-conv_form", "compressed"],
        ),
    );
    refused(&env, &fresh_auth, &compressed, 422, "key_encoding_invalid");

    // Weak RSA moduli with a valid proof of possession.
    let problem = refused(&env, &weak_rsa_csr(None), &fresh_sign, 422, "key_weak");
    assert!(problem["detail"].as_str().unwrap().contains("prime"));
    for small in [1009, 65537, 1_048_573] {
        let problem = refused(
            &env,
            &weak_rsa_csr(Some(small)),
            &fresh_sign,
            422,
            "key_weak",
        );
        assert!(
            problem["detail"].as_str().unwrap().contains("below 2^20"),
            "{problem}"
        );
    }

    // Proof of possession only with SHA-2: MD5 and SHA-1, also inside RSASSA-PSS, are refused.
    let weak_sigs: [(&str, &[&str]); 4] = [
        ("rsa:2048", &["-md5"]),
        ("rsa:2048", &["-sha1"]),
        ("rsa:2048", &["-sha1", "-sigopt", "rsa_padding_mode:pss"]),
        ("ec", &["-sha1"]),
    ];
    for (newkey, options) in weak_sigs {
        let (weak, _) = csr(dir, newkey, options);
        refused(
            &env,
            &weak,
            &fresh_sign,
            422,
            "csr_signature_algorithm_not_allowed",
        );
    }
    // RSASSA-PSS with SHA-256 and ECDSA with SHA-384 are accepted, and every certificate
    // carries the canonical encoding of its key.
    let (pss, _) = csr(
        dir,
        "rsa:2048",
        &["-sha256", "-sigopt", "rsa_padding_mode:pss"],
    );
    let (ec384, _) = csr(dir, "ec", &["-sha384"]);
    let (status, created) = env.post(
        Some(&env.minted(&claims(&fresh_iin()))),
        &body(&pss, &ec384, None),
    );
    assert_eq!(status, 201, "{created}");
    for c in created["certificates"].as_array().unwrap() {
        let cert = openssl::x509::X509::from_pem(c["pem"].as_str().unwrap().as_bytes()).unwrap();
        let spki = cert.public_key().unwrap().public_key_to_der().unwrap();
        let identity = KeyIdentity::of_spki_der(&spki).unwrap();
        assert_eq!(identity.canonical_der(), spki.as_slice());
        let stored = env
            .store
            .read(|tx| tx.certificate(c["serial"].as_str().unwrap()))
            .unwrap()
            .unwrap();
        assert_eq!(stored.spki_sha256, identity.sha256_hex());
    }
}

/// A to-be-signed certificate carrying `spki_der` (only the key matters to the rewrite).
fn tbs_with(spki_der: &[u8]) -> Vec<u8> {
    use x509_cert::time::{Time, Validity};
    let time = Time::UtcTime(
        der::asn1::UtcTime::from_unix_duration(std::time::Duration::from_secs(1_800_000_000))
            .unwrap(),
    );
    x509_cert::TbsCertificate {
        version: x509_cert::Version::V3,
        serial_number: x509_cert::serial_number::SerialNumber::new(&[1]).unwrap(),
        signature: sha256_with_rsa(),
        issuer: x509_cert::name::Name::default(),
        validity: Validity {
            not_before: time,
            not_after: time,
        },
        subject: x509_cert::name::Name::default(),
        subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(spki_der).unwrap(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: None,
    }
    .to_der()
    .unwrap()
}

fn old_style_row(serial: &str, spki_der: &[u8]) -> Certificate {
    let now = chrono::Utc::now().naive_utc();
    Certificate {
        serial: serial.to_owned(),
        issuer_id: "nca_rsa_dev".to_owned(),
        application_id: None,
        kind: CertificateKind::Sign,
        holder_iin: "900101300001".to_owned(),
        not_before: now,
        not_after: now,
        tbs_der: if spki_der.is_empty() {
            Vec::new()
        } else {
            tbs_with(spki_der)
        },
        der: None,
        // The old identity: the hash of the bytes as submitted.
        spki_sha256: hex::encode(openssl::sha::sha256(spki_der)),
        status: CertificateStatus::Issued,
        revoked_at: None,
        revocation_reason: None,
        invalidity_date: None,
        created_at: now,
        issued_at: Some(now),
        revocation_seq: None,
    }
}

fn ec_key_encodings() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    use openssl::ec::{EcGroup, EcKey, PointConversionForm};
    let group = EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let key = EcKey::generate(&group).unwrap();
    let canonical = key.public_key_to_der().unwrap();
    let mut ctx = BigNumContext::new().unwrap();
    let spki = SubjectPublicKeyInfoOwned::from_der(&canonical).unwrap();
    let mut with_point = |form| {
        let point = key.public_key().to_bytes(&group, form, &mut ctx).unwrap();
        SubjectPublicKeyInfoOwned {
            algorithm: spki.algorithm.clone(),
            subject_public_key: der::asn1::BitString::from_bytes(&point).unwrap(),
        }
        .to_der()
        .unwrap()
    };
    let compressed = with_point(PointConversionForm::COMPRESSED);
    let hybrid = with_point(PointConversionForm::HYBRID);
    (canonical, compressed, hybrid)
}

/// Write rows as the old code did, forget the rewrite, open again: the hashes become the
/// canonical identity once, blocks follow their certificates, and a second start changes
/// nothing.
fn rewrite_old_identities(url: &DatabaseUrl, forget: impl Fn()) {
    let store = Store::open(url, &DatabaseConfig::default()).unwrap();
    let (a_canonical, a_compressed, _) = ec_key_encodings();
    let (b_canonical, _, b_hybrid) = ec_key_encodings();
    let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
    let rsa_canonical = rsa.public_key_to_der().unwrap();
    let mut rsa_spki = SubjectPublicKeyInfoOwned::from_der(&rsa_canonical).unwrap();
    rsa_spki.algorithm.parameters = None;
    let rsa_without_null = rsa_spki.to_der().unwrap();
    let rows = [
        old_style_row("0A", &a_compressed), // compressed, revoked for compromise
        old_style_row("0B", &b_hybrid),     // hybrid; its key also certified canonically
        old_style_row("0C", &rsa_without_null), // RSA without NULL
        old_style_row("0D", &[]),           // no readable key (as `dev seed-revoked` makes)
        old_style_row("0E", &b_canonical),  // canonical: unchanged
    ];
    store
        .write(|tx| -> Result<(), tamga::store::StoreError> {
            for row in &rows {
                tx.insert_certificate(row)?;
            }
            tx.block_key(&BlockedKey {
                spki_sha256: rows[0].spki_sha256.clone(),
                reason: "keyCompromise".into(),
                serial: Some("0A".into()),
                created_at: chrono::Utc::now().naive_utc(),
            })
        })
        .unwrap();
    drop(store);
    forget();

    let store = Store::open(url, &DatabaseConfig::default()).unwrap();
    let id = |der: &[u8]| {
        KeyIdentity::of_spki_der(der)
            .unwrap()
            .sha256_hex()
            .to_owned()
    };
    let stored = |serial: &str| {
        store
            .read(|tx| tx.certificate(serial))
            .unwrap()
            .unwrap()
            .spki_sha256
    };
    assert_eq!(id(&a_compressed), id(&a_canonical));
    assert_eq!(stored("0A"), id(&a_canonical));
    assert_eq!(stored("0C"), id(&rsa_canonical));
    assert_eq!(stored("0E"), id(&b_canonical));
    // 0B's key is 0E's: the unique identity stays with 0E, and 0B keeps its old value.
    assert_eq!(stored("0B"), rows[1].spki_sha256);
    assert_eq!(stored("0D"), rows[3].spki_sha256);
    let blocked = store.read(|tx| tx.blocked_key(&id(&a_canonical))).unwrap();
    assert_eq!(blocked.unwrap().serial.as_deref(), Some("0A"));
    assert!(store
        .read(|tx| tx.blocked_key(&rows[0].spki_sha256))
        .unwrap()
        .is_none());
    for (der, serial) in [
        (&a_canonical, "0A"),
        (&b_hybrid, "0E"),
        (&rsa_canonical, "0C"),
    ] {
        let found = store.read(|tx| tx.certificate_by_key(&id(der))).unwrap();
        assert_eq!(found.unwrap().serial, serial);
    }
    assert!(store
        .read(|tx| tx.data_migration_done(CANONICAL_KEY_IDENTITY))
        .unwrap());
    drop(store);
    // Recorded: another start leaves everything as it is.
    let store = Store::open(url, &DatabaseConfig::default()).unwrap();
    assert_eq!(
        store
            .read(|tx| tx.certificate("0A"))
            .unwrap()
            .unwrap()
            .spki_sha256,
        id(&a_canonical)
    );
}

#[test]
fn old_key_hashes_are_rewritten_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tamga.db");
    let url = DatabaseUrl::Sqlite(path.clone());
    rewrite_old_identities(&url, || {
        let mut conn = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        conn.batch_execute("DELETE FROM data_migrations").unwrap();
    });
}

#[test]
fn old_key_hashes_are_rewritten_once_on_postgres() {
    let Some(admin) = postgres_url("old_key_hashes_are_rewritten_once_on_postgres") else {
        return;
    };
    let db = PgDatabase::create(&admin);
    let url = DatabaseUrl::Postgres(db.url.clone());
    rewrite_old_identities(&url, || {
        let mut conn = diesel::PgConnection::establish(&db.url).unwrap();
        conn.batch_execute("DELETE FROM data_migrations").unwrap();
    });
}
