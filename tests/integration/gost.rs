//! GOST R 34.10-2015 with OpenSSL's gost engine: NCA's real container certificate verifies
//! with `tamga::gost`; the `openssl` command with the engine agrees with `tamga::gost` on NCA's
//! artefacts and on signatures we make (TBS bytes unchanged, the signer's key in the TC26
//! form, the signature in the engine's byte order); and the engine loading of the binaries,
//! tried in fresh processes: from the shipped configuration, with an operator's
//! `OPENSSL_CONF`, and without the engine (RSA and EC keep working).
//!
//! The engine comes with Debian's `libengine-gost-openssl`; without it these tests report
//! themselves skipped, or fail where `TAMGA_TEST_REQUIRE_GOST` is set (CI).

use std::path::Path;
use std::process::{Command, Output};

use der::asn1::BitString;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::{Signer, Verifier};
use tamga::gost::{self, Form, GostError, KeySize, SignedArtefact};

use crate::support::{self, text, tool_present};

const NCA_CA: &[u8] = include_bytes!("../data/nca-gost-2015/nca_gost2022_test_ca.cer");
const NCA_CRL: &[u8] = include_bytes!("../data/nca-gost-2015/nca_gost2022_test.crl");
const NCA_OCSP_GOOD: &[u8] =
    include_bytes!("../data/nca-gost-2015/ocsp_response_individual_good.der");
const NCA_OCSP_REVOKED: &[u8] = include_bytes!("../data/nca-gost-2015/ocsp_response_revoked.der");
const NCA_CONTAINER: &[u8] = include_bytes!("../data/nca-gost-2015/individual_gost2015.p12");
/// The container's password (its README).
const NCA_CONTAINER_PASSWORD: &str = "Aa123456";

/// What the child process checks (see `gost_child_process`).
const CHILD_ENV: &str = "TAMGA_TEST_GOST_CHILD";

/// Whether GOST works in this process (initialised as the binaries do it); otherwise the
/// test reports itself skipped, or fails where `TAMGA_TEST_REQUIRE_GOST` is set.
fn gost_ready(test: &str) -> bool {
    let support = gost::support();
    tool_present(
        support.is_available(),
        "TAMGA_TEST_REQUIRE_GOST",
        test,
        &format!("GOST is unavailable ({support:?}); apt-get install libengine-gost-openssl"),
    )
}

/// An `openssl` command run in `dir` with the shipped configuration (written there), so that
/// it loads the engine whatever the caller's environment says.
fn openssl_gost(dir: &Path, args: &[&str]) -> Output {
    let conf = dir.join("openssl-gost.cnf");
    std::fs::write(&conf, gost::OPENSSL_CONFIG).unwrap();
    Command::new("openssl")
        .current_dir(dir)
        .env("OPENSSL_CONF", conf)
        .env_remove("OPENSSL_ENGINES")
        .args(args)
        .output()
        .expect("openssl CLI")
}

/// Whether `openssl dgst` with the engine verifies `signature` (engine byte order) over
/// `tbs` with `key` (a SubjectPublicKeyInfo, DER, TC26 form); its output is checked too.
fn openssl_verifies(dir: &Path, size: KeySize, tbs: &[u8], signature: &[u8], key: &[u8]) -> bool {
    std::fs::write(dir.join("tbs.der"), tbs).unwrap();
    std::fs::write(dir.join("signature.bin"), signature).unwrap();
    std::fs::write(dir.join("key.der"), key).unwrap();
    let digest = format!("-{}", size.digest_name());
    let out = openssl_gost(
        dir,
        &[
            "dgst",
            &digest,
            "-verify",
            "key.der",
            "-keyform",
            "DER",
            "-signature",
            "signature.bin",
            "tbs.der",
        ],
    );
    let said = text(&out);
    if out.status.success() {
        assert!(said.contains("Verified OK"), "{said}");
    } else {
        assert!(said.contains("Verification failure"), "{said}");
    }
    out.status.success()
}

/// `artefact`, signed by the holder of `signer` (a SubjectPublicKeyInfo of either form),
/// verifies with the `openssl` command given its TBS, the key in the TC26 form and the
/// signature in the engine's order; and does not with one TBS byte flipped.
fn assert_openssl_agrees(dir: &Path, artefact: &SignedArtefact, signer: &[u8]) {
    artefact.verify(signer).unwrap();
    let (_, size) = artefact.form_and_size().unwrap();
    let key = gost::spki_to_tc26(signer).unwrap();
    let signature = artefact.engine_signature().unwrap();
    assert!(openssl_verifies(
        dir,
        size,
        artefact.tbs(),
        &signature,
        &key
    ));
    let mut tampered = artefact.tbs().to_vec();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    assert!(!openssl_verifies(dir, size, &tampered, &signature, &key));
    // Nor without the reversal: NCA's byte order is not the engine's.
    assert!(!openssl_verifies(
        dir,
        size,
        artefact.tbs(),
        artefact.signature().raw_bytes(),
        &key
    ));
}

/// The certificate in NCA's real container (opened by our PKCS#12 decoder) verifies against
/// NCA's CA certificate; a flipped byte in its TBS or its signature fails.
#[test]
fn gost_nca_container_certificate_verifies_against_the_nca_ca() {
    if !gost_ready("gost_nca_container_certificate_verifies_against_the_nca_ca") {
        return;
    }
    let decoded = tamga::pkcs12::decode(NCA_CONTAINER, NCA_CONTAINER_PASSWORD).unwrap();
    let [certificate] = decoded.certificates()[..] else {
        panic!("one certificate in NCA's container");
    };
    let holder = gost::certificate_key(certificate).unwrap();
    assert_eq!(
        (holder.form(), holder.size()),
        (Form::Nca, KeySize::Bits512)
    );
    let artefact = SignedArtefact::certificate(certificate).unwrap();
    artefact.verify_by(NCA_CA).unwrap();
    let ca = gost::subject_public_key_info(NCA_CA).unwrap();
    let tbs = artefact.tbs();
    for at in [0, tbs.len() / 2, tbs.len() - 1] {
        let mut tampered = tbs.to_vec();
        tampered[at] ^= 1;
        let outcome = gost::verify(&tampered, artefact.algorithm(), artefact.signature(), &ca);
        assert!(
            matches!(outcome, Err(GostError::BadSignature)),
            "{at}: {outcome:?}"
        );
    }
    let raw = artefact.signature().raw_bytes();
    for at in [0, raw.len() / 2, raw.len() - 1] {
        let mut tampered = raw.to_vec();
        tampered[at] ^= 1;
        let tampered = BitString::from_bytes(&tampered).unwrap();
        let outcome = gost::verify(tbs, artefact.algorithm(), &tampered, &ca);
        assert!(
            matches!(outcome, Err(GostError::BadSignature)),
            "{at}: {outcome:?}"
        );
    }
}

/// The `openssl` command with the engine verifies NCA's CRL, container certificate, both OCSP
/// responses and their responder's certificate as the conversion module hands them over —
/// and refuses them with a byte changed, or without the byte reversal: the converter agrees
/// with an independent checker about NCA's form.
#[test]
fn gost_openssl_verifies_nca_artefacts_as_the_converter_hands_them_over() {
    let test = "gost_openssl_verifies_nca_artefacts_as_the_converter_hands_them_over";
    if !gost_ready(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = gost::subject_public_key_info(NCA_CA).unwrap();
    assert_openssl_agrees(dir.path(), &SignedArtefact::crl(NCA_CRL).unwrap(), &ca);
    let decoded = tamga::pkcs12::decode(NCA_CONTAINER, NCA_CONTAINER_PASSWORD).unwrap();
    let certificate = SignedArtefact::certificate(decoded.certificates()[0]).unwrap();
    assert_openssl_agrees(dir.path(), &certificate, &ca);
    for der in [NCA_OCSP_GOOD, NCA_OCSP_REVOKED] {
        let response = SignedArtefact::ocsp_response(der).unwrap();
        let responder = &response.certificates()[0];
        let responder_key = gost::subject_public_key_info(responder).unwrap();
        assert_openssl_agrees(dir.path(), &response, &responder_key);
        let responder = SignedArtefact::certificate(responder).unwrap();
        assert_openssl_agrees(dir.path(), &responder, &ca);
    }
}

/// What we sign with a GOST key (made by `openssl genpkey` with the engine, read by the
/// `openssl` crate) verifies with our code in NCA's and the TC26 form, for 512 and 256 bits,
/// and the `openssl` command verifies the TC26 form of it.
#[test]
fn gost_signatures_we_make_verify_with_our_code_and_the_openssl_command() {
    let test = "gost_signatures_we_make_verify_with_our_code_and_the_openssl_command";
    if !gost_ready(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tbs = b"a to-be-signed structure, any bytes";
    for (algorithm, paramset, size) in [
        ("gost2012_512", "paramset:A", KeySize::Bits512),
        ("gost2012_256", "paramset:TCA", KeySize::Bits256),
    ] {
        let out = openssl_gost(
            dir.path(),
            &[
                "genpkey",
                "-algorithm",
                algorithm,
                "-pkeyopt",
                paramset,
                "-out",
                "gost.pem",
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        let key = PKey::private_key_from_pem(&std::fs::read(dir.path().join("gost.pem")).unwrap())
            .unwrap();
        let tc26_key = key.public_key_to_der().unwrap();
        let nca_key = gost::spki_to_nca(&tc26_key).unwrap();
        assert_eq!(
            gost::GostPublicKey::from_der(&nca_key).unwrap().size(),
            size
        );

        let nca = gost::sign(&key, tbs, Form::Nca).unwrap();
        let tc26 = gost::sign(&key, tbs, Form::Tc26).unwrap();
        assert_eq!(nca.len(), size.signature_len());
        let nca_algorithm = gost::signature_algorithm_identifier(size, Form::Nca).unwrap();
        let tc26_algorithm = gost::signature_algorithm_identifier(size, Form::Tc26).unwrap();
        let nca_bits = BitString::from_bytes(&nca).unwrap();
        let tc26_bits = BitString::from_bytes(&tc26).unwrap();
        // Either form of the signer's key checks either form of signature.
        for signer in [&nca_key, &tc26_key] {
            gost::verify(tbs, &nca_algorithm, &nca_bits, signer).unwrap();
            gost::verify(tbs, &tc26_algorithm, &tc26_bits, signer).unwrap();
        }
        // NCA's byte order read as the engine's (and the other way) does not verify.
        assert!(matches!(
            gost::verify(tbs, &tc26_algorithm, &nca_bits, &nca_key),
            Err(GostError::BadSignature)
        ));
        // The independent checker: the TC26 form, and NCA's reversed back.
        assert!(openssl_verifies(dir.path(), size, tbs, &tc26, &tc26_key));
        let reversed = gost::reverse_signature(&nca);
        assert!(openssl_verifies(
            dir.path(),
            size,
            tbs,
            &reversed,
            &tc26_key
        ));
        assert!(!openssl_verifies(
            dir.path(),
            size,
            b"other bytes",
            &tc26,
            &tc26_key
        ));
        // And what the openssl command signs verifies with our code.
        std::fs::write(dir.path().join("tbs.der"), tbs).unwrap();
        let digest = format!("-{}", size.digest_name());
        let out = openssl_gost(
            dir.path(),
            &[
                "dgst", &digest, "-sign", "gost.pem", "-out", "cli.sig", "tbs.der",
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        let cli =
            BitString::from_bytes(&std::fs::read(dir.path().join("cli.sig")).unwrap()).unwrap();
        gost::verify(tbs, &tc26_algorithm, &cli, &nca_key).unwrap();
    }
}

/// A CSR and a self-signed certificate that `openssl req` with the engine makes (the TC26
/// form) verify as `SignedArtefact`s — the CSR with its own key — and fail with a byte of
/// their TBS changed.
#[test]
fn gost_csrs_and_certificates_openssl_makes_verify_as_artefacts() {
    if !gost_ready("gost_csrs_and_certificates_openssl_makes_verify_as_artefacts") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = openssl_gost(
        dir.path(),
        &[
            "genpkey",
            "-algorithm",
            "gost2012_512",
            "-pkeyopt",
            "paramset:A",
            "-out",
            "gost.pem",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    for (name, extra) in [
        ("req.der", &[][..]),
        ("cert.der", &["-x509", "-days", "1"][..]),
    ] {
        let mut args = vec![
            "req",
            "-new",
            "-key",
            "gost.pem",
            "-subj",
            "/CN=GOST test",
            "-md_gost12_512",
            "-outform",
            "DER",
            "-out",
            name,
        ];
        args.extend_from_slice(extra);
        let out = openssl_gost(dir.path(), &args);
        assert!(out.status.success(), "{}", text(&out));
    }
    let csr = std::fs::read(dir.path().join("req.der")).unwrap();
    let csr = SignedArtefact::csr(&csr).unwrap();
    assert_eq!(csr.form_and_size().unwrap(), (Form::Tc26, KeySize::Bits512));
    csr.verify_own().unwrap();
    let certificate = std::fs::read(dir.path().join("cert.der")).unwrap();
    let artefact = SignedArtefact::certificate(&certificate).unwrap();
    artefact.verify_by(&certificate).unwrap();
    for artefact in [&csr, &artefact] {
        let mut tbs = artefact.tbs().to_vec();
        let last = tbs.len() - 1;
        tbs[last] ^= 1;
        let key = match artefact.kind() {
            gost::ArtefactKind::Csr => csr_key(&csr),
            _ => gost::subject_public_key_info(&certificate).unwrap(),
        };
        assert!(matches!(
            gost::verify(&tbs, artefact.algorithm(), artefact.signature(), &key),
            Err(GostError::BadSignature)
        ));
    }
}

/// A CSR's key: the certificate request's SubjectPublicKeyInfo (DER).
fn csr_key(csr: &SignedArtefact) -> Vec<u8> {
    use der::{Decode, Encode};
    x509_cert::request::CertReqInfo::from_der(csr.tbs())
        .unwrap()
        .public_key
        .to_der()
        .unwrap()
}

/// Runs `gost_child_process` alone in a fresh copy of this test binary, with `case` and the
/// environment `setup` makes (OPENSSL_CONF removed first; TMPDIR is `dir`).
fn child(dir: &Path, case: &str, setup: impl FnOnce(&mut Command)) -> Output {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "gost::gost_child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_remove("OPENSSL_CONF")
        .env_remove("OPENSSL_ENGINES")
        .env("TMPDIR", dir)
        .env(CHILD_ENV, case);
    setup(&mut command);
    let out = command.output().unwrap();
    assert!(out.status.success(), "child {case}: {}", text(&out));
    assert!(
        text(&out).contains("1 passed"),
        "child {case}: {}",
        text(&out)
    );
    out
}

/// The files named like the shipped configuration's copies in `dir`.
fn shipped_copies(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("tamga-openssl-"))
        .collect()
}

/// A process that starts the way the binaries do, without OPENSSL_CONF, loads the engine from
/// the shipped configuration; the file it wrote is gone and the variable unset again.
#[test]
fn gost_a_fresh_process_loads_the_engine_from_the_shipped_configuration() {
    if !gost_ready("gost_a_fresh_process_loads_the_engine_from_the_shipped_configuration") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    child(dir.path(), "shipped", |_| {});
    assert_eq!(shipped_copies(dir.path()), Vec::<String>::new());
}

/// Without the engine (OpenSSL's engines directory pointed elsewhere) a fresh process starts,
/// reports GOST unavailable, refuses GOST work with that reason, and RSA and EC work.
#[test]
fn gost_without_the_engine_is_reported_unavailable_and_rsa_and_ec_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let engines = dir.path().join("no-engines-here");
    child(dir.path(), "no-engine", |c| {
        c.env("OPENSSL_ENGINES", &engines);
    });
    assert_eq!(shipped_copies(dir.path()), Vec::<String>::new());
}

/// An operator's OPENSSL_CONF is used as it is (here one without the engine: GOST is then
/// unavailable) and left set.
#[test]
fn gost_an_operators_openssl_conf_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("operator.cnf");
    std::fs::write(&conf, "# the operator's own configuration\n").unwrap();
    child(dir.path(), "operator", |c| {
        c.env("OPENSSL_CONF", &conf);
    });
    assert_eq!(shipped_copies(dir.path()), Vec::<String>::new());
}

/// The child of the three tests above: `gost::init` is its first use of OpenSSL, as in the
/// binaries. Run alone, by them (it does nothing without their variable).
#[test]
#[ignore = "run alone in a fresh process by the gost_* process tests"]
fn gost_child_process() {
    let Some(case) = std::env::var_os(CHILD_ENV) else {
        support::skipped("gost_child_process", "run by the gost_* process tests");
        return;
    };
    let operator = std::env::var_os("OPENSSL_CONF");
    let support = gost::init();
    match case.to_str().unwrap() {
        "shipped" => {
            assert_eq!(support, &gost::GostSupport::Available);
            // The system's configuration is kept, with the engine added to it.
            assert!(
                matches!(
                    gost::configuration(),
                    gost::Configuration::Shipped { system: Some(_) }
                ),
                "{:?}",
                gost::configuration()
            );
            assert_eq!(std::env::var_os("OPENSSL_CONF"), None);
            tls_starts();
            let ca = gost::subject_public_key_info(NCA_CA).unwrap();
            SignedArtefact::crl(NCA_CRL).unwrap().verify(&ca).unwrap();
        }
        "operator" => {
            let operator = operator.unwrap();
            assert_eq!(
                gost::configuration(),
                &gost::Configuration::Operator(operator.clone())
            );
            assert_eq!(std::env::var_os("OPENSSL_CONF"), Some(operator));
            assert!(!support.is_available(), "{support:?}");
        }
        "no-engine" => {
            assert!(
                matches!(gost::configuration(), gost::Configuration::Shipped { .. }),
                "{:?}",
                gost::configuration()
            );
            // The engine OpenSSL could not load must not have failed its start: a TLS context
            // (which asks OpenSSL to have read its configuration) still builds.
            tls_starts();
            assert!(!gost::available(), "{support:?}");
            let ca = gost::subject_public_key_info(NCA_CA).unwrap();
            let crl = SignedArtefact::crl(NCA_CRL).unwrap();
            assert!(matches!(
                crl.verify(&ca),
                Err(GostError::EngineUnavailable(_))
            ));
            rsa_and_ec_sign_and_verify();
        }
        other => panic!("unknown case {other}"),
    }
}

/// A TLS client and server context build: OpenSSL's start, configuration included, succeeded.
fn tls_starts() {
    use openssl::ssl::{SslAcceptor, SslConnector, SslMethod};
    SslConnector::builder(SslMethod::tls_client())
        .unwrap()
        .build();
    SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .unwrap()
        .build();
}

/// An RSA and an EC key are made, sign and verify.
fn rsa_and_ec_sign_and_verify() {
    let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let ec = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
    for key in [rsa, ec] {
        let mut signer = Signer::new(MessageDigest::sha256(), &key).unwrap();
        signer.update(b"data").unwrap();
        let signature = signer.sign_to_vec().unwrap();
        let mut verifier = Verifier::new(MessageDigest::sha256(), &key).unwrap();
        verifier.update(b"data").unwrap();
        assert!(verifier.verify(&signature).unwrap());
    }
}

/// The configuration the binaries start OpenSSL with, written over a system file of its own
/// (which names its own initialisation section, defines an OID name there and turns
/// `config_diagnostics` on), read by the `openssl` command: the system file's settings stay
/// (the OID name is known), the engine is added (Streebog is listed), and with the engine
/// missing OpenSSL still starts, where the system file alone with the engine would be fatal.
#[test]
fn gost_the_shipped_configuration_keeps_the_systems_and_adds_the_engine() {
    if !gost_ready("gost_the_shipped_configuration_keeps_the_systems_and_adds_the_engine") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let system = dir.path().join("system.cnf");
    let system_text = "openssl_conf = system_init\nconfig_diagnostics = 1\n\
                       [system_init]\noid_section = system_oids\n\
                       [system_oids]\ntamgaProbe = 1.2.398.99.1\n";
    std::fs::write(&system, system_text).unwrap();
    let shipped = dir.path().join("shipped.cnf");
    std::fs::write(
        &shipped,
        gost::shipped_configuration(Some((&system, system_text))),
    )
    .unwrap();
    let empty = dir.path().join("no-engines-here");
    let run = |conf: &Path, engines: Option<&Path>, args: &[&str]| {
        let mut cmd = Command::new("openssl");
        cmd.current_dir(dir.path())
            .env("OPENSSL_CONF", conf)
            .env_remove("OPENSSL_ENGINES")
            .args(args);
        if let Some(engines) = engines {
            cmd.env("OPENSSL_ENGINES", engines);
        }
        cmd.output().unwrap()
    };
    let oid = ["asn1parse", "-genstr", "OID:tamgaProbe"];
    let out = run(&shipped, None, &oid);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(":tamgaProbe"), "{}", text(&out));
    let out = run(&shipped, None, &["list", "-digest-algorithms"]);
    assert!(
        text(&out).to_lowercase().contains("streebog"),
        "{}",
        text(&out)
    );
    // Without the engine: the system's settings still apply, and OpenSSL starts.
    let out = run(&shipped, Some(&empty), &oid);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(":tamgaProbe"), "{}", text(&out));
    // The same sections with the system's diagnostics left on fail to start: the line that
    // turns them off is what keeps a missing engine harmless.
    let strict = dir.path().join("strict.cnf");
    std::fs::write(
        &strict,
        std::fs::read_to_string(&shipped)
            .unwrap()
            .replace("config_diagnostics = 0", "config_diagnostics = 1"),
    )
    .unwrap();
    assert!(!run(&strict, Some(&empty), &oid).status.success());
}
