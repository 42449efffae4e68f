//! The common set-up of the unit tests that need a CA and a database: a development hierarchy
//! in a fresh temporary directory, with an empty SQLite store and an issuer beside it.
//!
//! Owns only test set-up. Must never: be compiled outside `cfg(test)`, or hold assertions of
//! its own (each test says what it checks).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

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
