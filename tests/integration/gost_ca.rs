//! A GOST CA hierarchy in NCA's form (`tamga::ca::init_gost_hierarchy`) in the layout of a
//! second issuer under its own root (`HierarchyFiles::with_root`): its certificates, mapped to
//! the TC26 form with the `gost` module and signed again in that form with the same keys (the
//! TBS names the signature algorithm, so only the key's holder can make the TC26 form), verify
//! with GnuTLS's `certtool`, an X.509 stack of its own, which reads the TC26 512-bit parameter
//! set A; one byte changed fails. NCA's form itself is checked by `openssl` with the engine in
//! the unit tests of `ca`, `crl` and `ocsp`.
//!
//! Needs the gost engine (`TAMGA_TEST_REQUIRE_GOST`) and `certtool` from `gnutls-bin`
//! (`TAMGA_TEST_REQUIRE_GNUTLS`); without them the test reports itself skipped.

use std::path::Path;
use std::process::Command;

use der::{Decode, Encode};
use openssl::pkey::{PKey, Private};
use spki::SubjectPublicKeyInfoOwned;
use tamga::ca::{self, GostUrls, HierarchyFiles};
use tamga::gost::{self, Form, KeySize};

use crate::support::{answers_version, text, tool_present};

/// A certificate of ours (NCA's form) in the TC26 form: its signature algorithm and its key
/// mapped by the `gost` module, the TBS signed again by `signer` (the issuer's key) in the
/// engine's form. Returns PEM.
fn in_tc26_form(nca: &[u8], signer: &PKey<Private>) -> String {
    let mut cert = x509_cert::Certificate::from_der(nca).unwrap();
    let algorithm = gost::signature_algorithm_identifier(KeySize::Bits512, Form::Tc26).unwrap();
    let tbs = &mut cert.tbs_certificate;
    tbs.signature = algorithm.clone();
    let key = gost::spki_to_tc26(&tbs.subject_public_key_info.to_der().unwrap()).unwrap();
    tbs.subject_public_key_info = SubjectPublicKeyInfoOwned::from_der(&key).unwrap();
    let signature = gost::sign(signer, &tbs.to_der().unwrap(), Form::Tc26).unwrap();
    cert.signature_algorithm = algorithm;
    cert.signature = der::asn1::BitString::from_bytes(&signature).unwrap();
    tamga::pem::encode("CERTIFICATE", &cert.to_der().unwrap())
}

fn read_pem_der(path: &Path) -> Vec<u8> {
    openssl::x509::X509::from_pem(&std::fs::read(path).unwrap())
        .unwrap()
        .to_der()
        .unwrap()
}

fn read_key(path: &Path) -> PKey<Private> {
    PKey::private_key_from_pem(&std::fs::read(path).unwrap()).unwrap()
}

/// `certtool --verify` of the chain in `chain` (leaf first) against the root in `root`.
fn certtool_verifies(dir: &Path, chain: &str, root: &str) -> (bool, String) {
    std::fs::write(dir.join("chain.pem"), chain).unwrap();
    std::fs::write(dir.join("root.pem"), root).unwrap();
    let out = Command::new("certtool")
        .current_dir(dir)
        .args([
            "--verify",
            "--load-ca-certificate",
            "root.pem",
            "--infile",
            "chain.pem",
        ])
        .output()
        .expect("certtool");
    let said = text(&out);
    let trusted = out.status.success() && said.contains("Verified. The certificate is trusted");
    (trusted, said)
}

/// The GOST root, issuing CA and OCSP responder, in the TC26 form, verify with `certtool`;
/// a flipped byte of the issuing CA's signature does not.
#[test]
fn gost_ca_chain_in_the_tc26_form_verifies_with_certtool() {
    let test = "gost_ca_chain_in_the_tc26_form_verifies_with_certtool";
    if !crate::gost::gost_ready(test)
        || !tool_present(
            answers_version("certtool"),
            "TAMGA_TEST_REQUIRE_GNUTLS",
            test,
            "certtool is not installed (apt-get install gnutls-bin)",
        )
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = HierarchyFiles::with_root(dir.path(), "root_gost", "nca_gost_dev");
    ca::init_gost_hierarchy(
        &files,
        ca::gost_ca::GOST_ISSUING_DEV_NAME,
        &GostUrls {
            public_url: "http://ca.test",
            cps_url: "http://ca.test/cps",
            root_id: "root_gost",
        },
        chrono::Duration::days(30),
        chrono::Utc::now(),
    )
    .unwrap();
    assert!(dir.path().join("root_gost.pem").exists());
    assert!(dir.path().join("root_gost.development").exists());
    let root_key = read_key(&files.root_key);
    let issuing_key = read_key(&files.issuing_key);
    let root = in_tc26_form(&read_pem_der(&files.root_cert), &root_key);
    let issuing_der = read_pem_der(&files.issuing_cert);
    let issuing = in_tc26_form(&issuing_der, &root_key);
    let responder = in_tc26_form(&read_pem_der(&files.ocsp_cert), &issuing_key);

    let (trusted, said) = certtool_verifies(dir.path(), &issuing, &root);
    assert!(trusted, "{said}");
    assert!(said.contains("GOSTR341012-512"), "{said}");
    let (trusted, said) = certtool_verifies(dir.path(), &format!("{responder}{issuing}"), &root);
    assert!(trusted, "{said}");

    // One byte of the issuing CA's (TC26) signature changed.
    let mut der = openssl::x509::X509::from_pem(issuing.as_bytes())
        .unwrap()
        .to_der()
        .unwrap();
    let last = der.len() - 1;
    der[last] ^= 1;
    let tampered = tamga::pem::encode("CERTIFICATE", &der);
    let (trusted, said) = certtool_verifies(dir.path(), &tampered, &root);
    assert!(!trusted, "{said}");
}
