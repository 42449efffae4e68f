//! The common set-up of the unit tests that need a CA and a database: a development hierarchy
//! in a fresh temporary directory, with an empty SQLite store and an issuer beside it.
//!
//! Owns only test set-up. Must never: be compiled outside `cfg(test)`, or hold assertions of
//! its own (each test says what it checks).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use crate::ca::{Hierarchy, Issuer};
use crate::config::{CaConfig, DatabaseConfig, DatabaseUrl, Mode};
use crate::dev::hierarchy as dev;
use crate::store::Store;

/// A development CA in a temporary directory, removed when this is dropped.
pub(crate) struct TestCa {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) ca: CaConfig,
    pub(crate) hierarchy: Arc<Hierarchy>,
}

/// A fresh development hierarchy (issuer `nca_rsa_dev`, URLs under `http://ca.test`).
pub(crate) fn dev_ca() -> TestCa {
    let dir = tempfile::tempdir().unwrap();
    let ca = CaConfig {
        dir: dir.path().join("ca"),
        ..CaConfig::default()
    };
    dev::init(
        &ca,
        "http://ca.test",
        "http://ca.test/cps",
        false,
        chrono::Utc::now(),
    )
    .unwrap();
    let hierarchy = Arc::new(Hierarchy::load(&ca, Mode::Dev).unwrap());
    TestCa { dir, ca, hierarchy }
}

impl TestCa {
    /// The SQLite store of this CA's directory (created empty on first open).
    pub(crate) fn store(&self) -> Store {
        Store::open(
            &DatabaseUrl::Sqlite(self.dir.path().join("t.db")),
            &DatabaseConfig::default(),
        )
        .unwrap()
    }

    /// An issuer over this hierarchy.
    pub(crate) fn issuer(&self) -> Arc<Issuer> {
        Arc::new(
            Issuer::new(
                Arc::clone(&self.hierarchy),
                "http://ca.test",
                "http://ca.test/cps",
            )
            .unwrap(),
        )
    }
}

/// A GOST development hierarchy in a fresh temporary directory (`crate::ca::gost_ca`'s test
/// hierarchy: the single-issuer layout, issuer `nca_gost_dev`, loaded as in production); `None`,
/// the test reported skipped, where the gost engine is unavailable (and a failure where
/// `TAMGA_TEST_REQUIRE_GOST` is set).
pub(crate) fn gost_ca(test: &str) -> Option<TestCa> {
    let (dir, ca, hierarchy) = crate::ca::gost_ca::test_hierarchy(test)?;
    Some(TestCa {
        dir,
        ca,
        hierarchy: Arc::new(hierarchy),
    })
}

/// Whether the `openssl` command with the gost engine (the shipped configuration, written to a
/// file of the test's own) verifies `signature` (the engine's byte order) over `tbs` with
/// `key` (a SubjectPublicKeyInfo, DER, TC26 form). Its words are checked too: `openssl dgst`
/// prints `Verified OK` or `Verification failure`.
fn openssl_dgst_verifies(tbs: &[u8], signature: &[u8], key: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("openssl-gost.cnf");
    std::fs::write(&conf, crate::gost::OPENSSL_CONFIG).unwrap();
    std::fs::write(dir.path().join("tbs.der"), tbs).unwrap();
    std::fs::write(dir.path().join("signature.bin"), signature).unwrap();
    std::fs::write(dir.path().join("key.der"), key).unwrap();
    let out = std::process::Command::new("openssl")
        .current_dir(dir.path())
        .env("OPENSSL_CONF", &conf)
        .env_remove("OPENSSL_ENGINES")
        .args([
            "dgst",
            "-md_gost12_512",
            "-verify",
            "key.der",
            "-keyform",
            "DER",
            "-signature",
            "signature.bin",
            "tbs.der",
        ])
        .output()
        .expect("the openssl command");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        assert!(said.contains("Verified OK"), "{said}");
    } else {
        assert!(said.contains("Verification failure"), "{said}");
    }
    out.status.success()
}

/// A GOST artefact of ours (NCA's form), signed by the holder of `signer` (a
/// SubjectPublicKeyInfo, DER, either form), verifies independently: the `openssl` command with
/// the engine accepts its TBS bytes with the signer's key mapped to the TC26 form and the
/// signature in the engine's order, both by the `gost` conversion module; and refuses it with
/// a byte of the TBS or of the signature flipped, or without the byte reversal.
pub(crate) fn assert_openssl_verifies_gost(artefact: &crate::gost::SignedArtefact, signer: &[u8]) {
    use crate::gost;
    artefact.verify(signer).unwrap();
    assert_eq!(
        artefact.form_and_size().unwrap(),
        (gost::Form::Nca, gost::KeySize::Bits512)
    );
    let key = gost::spki_to_tc26(signer).unwrap();
    let signature = artefact.engine_signature().unwrap();
    assert!(openssl_dgst_verifies(artefact.tbs(), &signature, &key));
    let mut tbs = artefact.tbs().to_vec();
    let middle = tbs.len() / 2;
    tbs[middle] ^= 1;
    assert!(!openssl_dgst_verifies(&tbs, &signature, &key));
    let mut flipped = signature.clone();
    flipped[0] ^= 1;
    assert!(!openssl_dgst_verifies(artefact.tbs(), &flipped, &key));
    assert!(!openssl_dgst_verifies(
        artefact.tbs(),
        artefact.signature().raw_bytes(),
        &key
    ));
    // Our own verification refuses the same tampering.
    let bits = der::asn1::BitString::from_bytes(&gost::reverse_signature(&flipped)).unwrap();
    assert!(gost::verify(artefact.tbs(), artefact.algorithm(), &bits, signer).is_err());
    assert!(gost::verify(&tbs, artefact.algorithm(), artefact.signature(), signer).is_err());
}

/// Whether GnuTLS's `certtool` is here; otherwise the test says it is skipped (or fails, where
/// `TAMGA_TEST_REQUIRE_GNUTLS` is set, as in CI).
pub(crate) fn certtool_present(test: &str) -> bool {
    let present = std::process::Command::new("certtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var_os("TAMGA_TEST_REQUIRE_GNUTLS").is_none(),
            "TAMGA_TEST_REQUIRE_GNUTLS is set but certtool is not installed"
        );
        eprintln!("SKIPPED {test}: certtool is not installed (apt-get install gnutls-bin)");
    }
    present
}

/// The private key of a file-held CA key of `hierarchy` (tests sign TC26 forms with it).
pub(crate) fn file_key(key: &crate::ca::IssuerKey) -> openssl::pkey::PKey<openssl::pkey::Private> {
    match key.signing_key() {
        crate::ca::SigningKey::File { key, .. } => key.clone(),
        crate::ca::SigningKey::Pkcs11(_) => panic!("a file key is expected"),
    }
}

/// A GOST certificate or CRL of ours (NCA's form, DER) in the TC26 form, PEM: the signature
/// algorithm (both places) and, for a certificate, the subject key mapped by the `gost`
/// module, the TBS signed again by `signer` in the engine's form (the TBS names the algorithm:
/// only the key's holder can make this form).
pub(crate) fn in_tc26_form(
    der: &[u8],
    signer: &openssl::pkey::PKey<openssl::pkey::Private>,
) -> String {
    use crate::gost::{self, Form, KeySize};
    use der::{Decode, Encode};
    let algorithm = gost::signature_algorithm_identifier(KeySize::Bits512, Form::Tc26).unwrap();
    if let Ok(mut crl) = x509_cert::crl::CertificateList::from_der(der) {
        crl.tbs_cert_list.signature = algorithm.clone();
        let signature = gost::sign(signer, &crl.tbs_cert_list.to_der().unwrap(), Form::Tc26);
        crl.signature_algorithm = algorithm;
        crl.signature = der::asn1::BitString::from_bytes(&signature.unwrap()).unwrap();
        return crate::pem::encode("X509 CRL", &crl.to_der().unwrap());
    }
    let mut cert = x509_cert::Certificate::from_der(der).unwrap();
    let tbs = &mut cert.tbs_certificate;
    tbs.signature = algorithm.clone();
    let key = gost::spki_to_tc26(&tbs.subject_public_key_info.to_der().unwrap()).unwrap();
    tbs.subject_public_key_info = spki::SubjectPublicKeyInfoOwned::from_der(&key).unwrap();
    let signature = gost::sign(signer, &tbs.to_der().unwrap(), Form::Tc26).unwrap();
    cert.signature_algorithm = algorithm;
    cert.signature = der::asn1::BitString::from_bytes(&signature).unwrap();
    crate::pem::encode("CERTIFICATE", &cert.to_der().unwrap())
}

/// `certtool` (GnuTLS) with `args`, given the files `files` (name, content) in a directory of
/// its own: whether it succeeded and said `verified` (its words for a good result), and what it
/// said.
pub(crate) fn certtool(args: &[&str], files: &[(&str, &str)], verified: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let out = std::process::Command::new("certtool")
        .current_dir(dir.path())
        .args(args)
        .output()
        .expect("certtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let good = out.status.success() && said.contains(verified) && !said.contains("Not verified");
    (good, said)
}
