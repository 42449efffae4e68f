//! The issuing CA certificate's certificate policies: its profile compared with NCA's own test
//! issuing CA field by field, the policies added to an older hierarchy by `tamga ca
//! reissue-issuing`, and certificates issued through a running server accepted where an
//! explicit policy is required — by `openssl verify -explicit_policy`, the JDK's PKIX validator
//! (`tests/tools/PkixValidate.java`) and NSS's `vfychain` — and refused under the other policy.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use der::{Decode, Encode, Tagged};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies,
    CrlDistributionPoints, KeyUsage, SubjectKeyIdentifier,
};
use x509_cert::Certificate;

use crate::enroll::{lint, Env};
use crate::support::{
    answers_version, openssl, run, softhsm_available, softhsm_hierarchy, tamga, text, tool_present,
    verify_chain, x509_text, DEV_ISSUING, DEV_OCSP, DEV_ROOT,
};

const POLICY_CA: &str = "1.2.398.3.3.1.1";
const POLICY_AUTH: &str = "1.2.398.3.3.2.4";
const POLICY_SIGN: &str = "1.2.398.3.3.2.3";

/// NCA's RSA test issuing CA `ҰКО 3.0 (RSA TEST)` (see `tests/data/nca-test-2020/README.md`).
fn nca_issuing_ca() -> String {
    format!(
        "{}/tests/data/nca-test-2020/nca_rsa_test_ca.crt",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The fields of the issuing CA profile in which ours differs from NCA's test issuing CA on
/// purpose: (field, NCA's value, ours, why). URLs are shown under `{public_url}` (NCA's
/// `http://test.pki.gov.kz` and `http://pki.gov.kz`, our `[server] public_url`). Every other
/// field must be equal, and every difference listed here must still be one.
const INTENDED_DIFFERENCES: &[(&str, &str, &str, &str)] = &[
    (
        "serialNumber",
        "20 octets",
        "16 octets",
        "126 random bits in 16 octets, as every certificate Tamga makes",
    ),
    (
        "issuer",
        "CN UTF8String, C PrintableString",
        "C PrintableString, CN UTF8String",
        "the development root's name, in the order of the issuing CA's (and NCA's issuing CA's) subject",
    ),
    (
        "validity",
        "1825 days",
        "3652 days",
        "ten years (ISSUING_VALIDITY_YEARS), so end-entity certificates of three years fit for seven years",
    ),
    (
        "subjectPublicKeyInfo",
        "rsaEncryption 4096 bits",
        "rsaEncryption 2048 bits",
        "[ca] issuing_key_type, rsa2048 by default",
    ),
    (
        "extensions",
        "subjectKeyIdentifier, authorityKeyIdentifier, basicConstraints, keyUsage, \
         authorityInfoAccess, certificatePolicies, cRLDistributionPoints",
        "basicConstraints, keyUsage, subjectKeyIdentifier, authorityKeyIdentifier, \
         cRLDistributionPoints, authorityInfoAccess, certificatePolicies",
        "the same extensions; their order carries no meaning",
    ),
    (
        "basicConstraints",
        "critical, cA",
        "critical, cA, pathLenConstraint 0",
        "the issuing CA signs end entities only: no CA below it",
    ),
    (
        "authorityKeyIdentifier",
        "keyIdentifier 20 octets, authorityCertIssuer, authorityCertSerialNumber",
        "keyIdentifier 20 octets",
        "the key identifier alone (RFC 5280 §4.2.1.1): a reissued root certificate still chains",
    ),
    (
        "authorityInfoAccess caIssuers",
        "{public_url}/cert/root_rsa_test.cer",
        "{public_url}/ca/root.crt",
        "the root certificate where our server publishes it",
    ),
    (
        "authorityInfoAccess ocsp",
        "absent",
        "{public_url}/ocsp",
        "OCSP for the issuing CA certificate, answered with responses the root signed offline, \
         so OCSP-only validators check the whole path",
    ),
    (
        "cRLDistributionPoints",
        "{public_url}/crl/root_rsa.crl",
        "{public_url}/crl/root.crl",
        "the root CRL where our server publishes it",
    ),
    (
        "certificatePolicies 1.2.398.3.3.2.4",
        "absent",
        "no qualifiers",
        "the AUTH policy the CA issues under, so explicit-policy validation of AUTH certificates succeeds",
    ),
    (
        "certificatePolicies 1.2.398.3.3.2.3",
        "absent",
        "no qualifiers",
        "the SIGN policy the CA issues under, so explicit-policy validation of SIGN certificates succeeds",
    ),
];

fn oid_name(oid: &der::asn1::ObjectIdentifier) -> String {
    const_oid::db::DB
        .by_oid(oid)
        .map(str::to_owned)
        .unwrap_or_else(|| oid.to_string())
}

fn tag_name(tag: der::Tag) -> String {
    match tag {
        der::Tag::Utf8String => "UTF8String".to_owned(),
        der::Tag::PrintableString => "PrintableString".to_owned(),
        der::Tag::Ia5String => "IA5String".to_owned(),
        other => format!("{other:?}"),
    }
}

fn name_shape(name: &x509_cert::name::Name) -> String {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .map(|atv| {
            let short = match atv.oid.to_string().as_str() {
                "2.5.4.6" => "C".to_owned(),
                "2.5.4.3" => "CN".to_owned(),
                _ => oid_name(&atv.oid),
            };
            format!("{short} {}", tag_name(atv.value.tag()))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn under_public_url(url: &str, public_urls: &[&str]) -> String {
    public_urls
        .iter()
        .find_map(|base| {
            url.strip_prefix(base)
                .map(|rest| format!("{{public_url}}{rest}"))
        })
        .unwrap_or_else(|| url.to_owned())
}

fn uri(name: &GeneralName, public_urls: &[&str]) -> String {
    match name {
        GeneralName::UniformResourceIdentifier(u) => under_public_url(u.as_str(), public_urls),
        other => format!("{other:?}"),
    }
}

/// The profile of the CA certificate in PEM file `file`, field by field; URLs starting with
/// one of `public_urls` are shown under `{public_url}`.
fn profile(file: &str, public_urls: &[&str]) -> BTreeMap<String, String> {
    let pem = std::fs::read(file).unwrap();
    let x509 = openssl::x509::X509::from_pem(&pem).unwrap();
    let cert = Certificate::from_der(&x509.to_der().unwrap()).unwrap();
    let tbs = &cert.tbs_certificate;
    let mut p = BTreeMap::new();
    let mut put = |field: &str, value: String| {
        assert!(p.insert(field.to_owned(), value).is_none(), "{field} twice");
    };
    put("version", format!("{:?}", tbs.version));
    put(
        "serialNumber",
        format!("{} octets", tbs.serial_number.as_bytes().len()),
    );
    put("signature", oid_name(&tbs.signature.oid));
    put("issuer", name_shape(&tbs.issuer));
    put("subject", name_shape(&tbs.subject));
    let time_kind = |t: &x509_cert::time::Time| match t {
        x509_cert::time::Time::UtcTime(_) => "UTCTime",
        x509_cert::time::Time::GeneralTime(_) => "GeneralizedTime",
    };
    put(
        "validity encoding",
        format!(
            "{}, {}",
            time_kind(&tbs.validity.not_before),
            time_kind(&tbs.validity.not_after)
        ),
    );
    let days = (tbs.validity.not_after.to_unix_duration()
        - tbs.validity.not_before.to_unix_duration())
    .as_secs()
        / 86_400;
    put("validity", format!("{days} days"));
    put(
        "subjectPublicKeyInfo",
        format!(
            "{} {} bits",
            oid_name(&tbs.subject_public_key_info.algorithm.oid),
            x509.public_key().unwrap().bits()
        ),
    );
    put(
        "issuerUniqueID, subjectUniqueID",
        format!(
            "{}, {}",
            tbs.issuer_unique_id.is_some(),
            tbs.subject_unique_id.is_some()
        ),
    );
    let extensions = tbs.extensions.clone().unwrap_or_default();
    put(
        "extensions",
        extensions
            .iter()
            .map(|e| {
                let name = oid_name(&e.extn_id);
                name.strip_prefix("id-ce-")
                    .or_else(|| name.strip_prefix("id-pe-"))
                    .map_or(name.clone(), str::to_owned)
            })
            .collect::<Vec<_>>()
            .join(", "),
    );
    for ext in &extensions {
        let value = ext.extn_value.as_bytes();
        let critical = if ext.critical { "critical, " } else { "" };
        match ext.extn_id.to_string().as_str() {
            "2.5.29.14" => {
                let ski = SubjectKeyIdentifier::from_der(value).unwrap();
                put(
                    "subjectKeyIdentifier",
                    format!("{critical}{} octets", ski.0.as_bytes().len()),
                );
            }
            "2.5.29.35" => {
                let aki = AuthorityKeyIdentifier::from_der(value).unwrap();
                let mut parts = Vec::new();
                if let Some(id) = &aki.key_identifier {
                    parts.push(format!("keyIdentifier {} octets", id.as_bytes().len()));
                }
                if aki.authority_cert_issuer.is_some() {
                    parts.push("authorityCertIssuer".to_owned());
                }
                if aki.authority_cert_serial_number.is_some() {
                    parts.push("authorityCertSerialNumber".to_owned());
                }
                put(
                    "authorityKeyIdentifier",
                    format!("{critical}{}", parts.join(", ")),
                );
            }
            "2.5.29.19" => {
                let bc = BasicConstraints::from_der(value).unwrap();
                let mut shown = format!("{critical}{}", if bc.ca { "cA" } else { "not cA" });
                if let Some(len) = bc.path_len_constraint {
                    shown.push_str(&format!(", pathLenConstraint {len}"));
                }
                put("basicConstraints", shown);
            }
            "2.5.29.15" => {
                let ku = KeyUsage::from_der(value).unwrap();
                put("keyUsage", format!("{critical}{:?}", ku.0));
            }
            "1.3.6.1.5.5.7.1.1" => {
                for ad in AuthorityInfoAccessSyntax::from_der(value).unwrap().0 {
                    let method = match ad.access_method.to_string().as_str() {
                        "1.3.6.1.5.5.7.48.2" => "caIssuers".to_owned(),
                        "1.3.6.1.5.5.7.48.1" => "ocsp".to_owned(),
                        _ => oid_name(&ad.access_method),
                    };
                    put(
                        &format!("authorityInfoAccess {method}"),
                        format!("{critical}{}", uri(&ad.access_location, public_urls)),
                    );
                }
            }
            "2.5.29.31" => {
                let dps = CrlDistributionPoints::from_der(value).unwrap();
                let shown: Vec<String> = dps
                    .0
                    .iter()
                    .map(|dp| match &dp.distribution_point {
                        Some(DistributionPointName::FullName(names)) => names
                            .iter()
                            .map(|n| uri(n, public_urls))
                            .collect::<Vec<_>>()
                            .join(" "),
                        other => format!("{other:?}"),
                    })
                    .collect();
                put(
                    "cRLDistributionPoints",
                    format!("{critical}{}", shown.join("; ")),
                );
            }
            "2.5.29.32" => {
                for policy in CertificatePolicies::from_der(value).unwrap().0 {
                    let qualifiers = match &policy.policy_qualifiers {
                        None => "no qualifiers".to_owned(),
                        Some(qs) => qs
                            .iter()
                            .map(|q| {
                                let id = oid_name(&q.policy_qualifier_id);
                                match &q.qualifier {
                                    Some(any) if any.tag() == der::Tag::Ia5String => {
                                        let s =
                                            der::asn1::Ia5String::from_der(&any.to_der().unwrap())
                                                .unwrap();
                                        format!(
                                            "{id} IA5String {}",
                                            under_public_url(s.as_str(), public_urls)
                                        )
                                    }
                                    Some(any) => format!("{id} {}", tag_name(any.tag())),
                                    None => id,
                                }
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                    };
                    put(
                        &format!("certificatePolicies {}", policy.policy_identifier),
                        format!("{critical}{qualifiers}"),
                    );
                }
            }
            other => put(&format!("extension {other}"), critical.to_owned()),
        }
    }
    p
}

/// Our issuing CA certificate (`ours`, under `public_url`) has NCA's test issuing CA's profile
/// except for exactly the listed intended differences.
fn assert_profile_as_nca(dir: &Path, ours: &str, public_url: &str) {
    let nca = profile(
        &nca_issuing_ca(),
        &["http://test.pki.gov.kz", "http://pki.gov.kz"],
    );
    let ours = profile(&dir.join(ours).display().to_string(), &[public_url]);
    let intended: BTreeMap<&str, (&str, &str)> = INTENDED_DIFFERENCES
        .iter()
        .map(|(field, theirs, ours, _why)| (*field, (*theirs, *ours)))
        .collect();
    let fields: std::collections::BTreeSet<&String> = nca.keys().chain(ours.keys()).collect();
    let mut unexplained = Vec::new();
    for field in fields {
        let theirs = nca.get(field).map_or("absent", String::as_str);
        let mine = ours.get(field).map_or("absent", String::as_str);
        match intended.get(field.as_str()) {
            None if theirs == mine => {}
            Some(&(t, m)) if (t, m) == (theirs, mine) => {}
            _ => unexplained.push(format!("{field}: NCA `{theirs}`, ours `{mine}`")),
        }
    }
    assert!(
        unexplained.is_empty(),
        "differences from NCA's test issuing CA that are not listed as intended (or listed ones \
         that changed):\n{}",
        unexplained.join("\n")
    );
    // The substance, said once more plainly: NCA's CA policy with its CPS in NCA's form.
    assert_eq!(
        ours.get(&format!("certificatePolicies {POLICY_CA}"))
            .map(String::as_str),
        Some("id-qt-cps IA5String {public_url}/cps")
    );
}

#[test]
fn issuing_ca_profile_is_ncas_test_issuing_ca_with_listed_differences() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(tamga(dir.path()).args(["ca", "init", "--dev"]));
    assert!(out.status.success(), "{}", text(&out));
    // The default `public_url`, and `[ca] cps_url` empty: `{public_url}/cps`.
    assert_profile_as_nca(dir.path(), DEV_ISSUING, "http://127.0.0.1:8080");
    // pkilint on every CA certificate of the hierarchy: the root, the issuing CA and its
    // delegated OCSP responder.
    for cert in [DEV_ROOT, DEV_ISSUING, DEV_OCSP] {
        lint(dir.path(), cert);
    }
}

#[test]
fn issuing_ca_in_softhsm_carries_the_policies() {
    let test = "issuing_ca_in_softhsm_carries_the_policies";
    if !softhsm_available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    softhsm_hierarchy(dir.path(), "");
    assert_profile_as_nca(dir.path(), DEV_ISSUING, "http://127.0.0.1:8080");
}

/// A development hierarchy whose issuing CA certificate was made before it carried
/// certificate policies (or a root CRL distribution point): the same key and name, signed by
/// the root with only basicConstraints, keyUsage, SKI and AKI.
fn make_issuing_ca_without_policies(dir: &Path) {
    let conf = "[ext]\nbasicConstraints = critical, CA:TRUE, pathlen:0\n\
                keyUsage = critical, keyCertSign, cRLSign\n\
                subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n";
    std::fs::write(dir.join("old-ext.cnf"), conf).unwrap();
    let key = "certs-dev/nca_rsa_dev.key.pem";
    openssl(
        dir,
        &[
            "x509",
            "-x509toreq",
            "-in",
            DEV_ISSUING,
            "-signkey",
            key,
            "-out",
            "old.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "old.csr",
            "-CA",
            DEV_ROOT,
            "-CAkey",
            "certs-dev/root.key.pem",
            "-set_serial",
            "0x4000000000000000000000000000beef",
            "-days",
            "3650",
            "-sha256",
            "-extfile",
            "old-ext.cnf",
            "-extensions",
            "ext",
            "-out",
            DEV_ISSUING,
        ],
    );
}

fn public_key_of(dir: &Path, file: &str) -> String {
    openssl(dir, &["x509", "-in", file, "-noout", "-pubkey"])
}

#[test]
fn reissue_issuing_adds_the_policies_to_an_older_hierarchy_with_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let out = run(tamga(dir).args(["ca", "init", "--dev"]));
    assert!(out.status.success(), "{}", text(&out));
    make_issuing_ca_without_policies(dir);
    let old = x509_text(dir, DEV_ISSUING);
    assert!(!old.contains("Certificate Policies"), "{old}");
    let key_before = public_key_of(dir, DEV_ISSUING);
    // The old hierarchy loads (the OCSP responder still chains to the same key).
    let shown = run(tamga(dir).args(["ca", "show"]));
    assert!(shown.status.success(), "{}", text(&shown));

    let out = run(tamga(dir).args(["ca", "reissue-issuing"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("same key"), "{}", text(&out));

    let new = x509_text(dir, DEV_ISSUING);
    assert!(new.contains("X509v3 Certificate Policies"), "{new}");
    for policy in [POLICY_CA, POLICY_AUTH, POLICY_SIGN] {
        assert!(new.contains(&format!("Policy: {policy}")), "{new}");
    }
    assert!(new.contains("CPS: http://127.0.0.1:8080/cps"), "{new}");
    assert_eq!(public_key_of(dir, DEV_ISSUING), key_before, "the same key");
    assert!(
        dir.join("certs-dev/nca_rsa_dev.pem.4000000000000000000000000000BEEF.old")
            .exists(),
        "the old certificate is kept"
    );
    let verified = verify_chain(
        dir,
        DEV_ISSUING,
        &[DEV_ISSUING, "certs-dev/ocsp_nca_rsa_dev.pem"],
    );
    assert!(verified.matches(": OK").count() == 2, "{verified}");
    assert_profile_as_nca(dir, DEV_ISSUING, "http://127.0.0.1:8080");
    lint(dir, DEV_ISSUING);
}

/// `openssl verify -explicit_policy -policy OID` of `cert` up to the development root; returns
/// whether it succeeded and what it printed.
fn openssl_explicit_policy(dir: &Path, cert: &str, policy: &str) -> (bool, String) {
    let out = crate::support::openssl_command()
        .current_dir(dir)
        .args(["verify", "-explicit_policy", "-policy", policy])
        .args(["-CAfile", DEV_ROOT, "-untrusted", DEV_ISSUING, cert])
        .output()
        .unwrap();
    (out.status.success(), text(&out))
}

/// The JDK's `CertPathValidator` with `policy` as the initial policy set and an explicit
/// policy required; returns the exit code and the line it printed.
fn jdk_explicit_policy(dir: &Path, cert: &str, policy: &str) -> (Option<i32>, String) {
    let tool = format!(
        "{}/tests/tools/PkixValidate.java",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = Command::new("java")
        .current_dir(dir)
        .arg(&tool)
        .args(["--anchor", DEV_ROOT, "--cert", cert, "--cert", DEV_ISSUING])
        .args(["--policy", policy, "--explicit-policy"])
        .output()
        .unwrap();
    (out.status.code(), text(&out))
}

/// NSS's `vfychain` through `CERT_PKIXVerifyCert` (`-pp`) with `policy` as the policy the path
/// must be valid under (`-o`; a path without it fails with -8032,
/// SEC_ERROR_POLICY_VALIDATION_FAILED) and `usage`; returns whether it succeeded and what it
/// printed.
fn nss_explicit_policy(dir: &Path, cert: &str, policy: &str, usage: &str) -> (bool, String) {
    let out = Command::new("vfychain")
        .current_dir(dir)
        .args([
            "-pp",
            "-u",
            usage,
            "-o",
            &format!("OID.{policy}"),
            "-a",
            cert,
        ])
        .args(["-a", DEV_ISSUING, "-t", "-a", DEV_ROOT])
        .output()
        .unwrap();
    (out.status.success(), text(&out))
}

#[test]
fn issued_certificates_pass_explicit_policy_validation_under_their_own_policy_only() {
    let test = "issued_certificates_pass_explicit_policy_validation_under_their_own_policy_only";
    let env = Env::sqlite();
    let dir = env.dir().to_path_buf();
    let (iin, auth, _) = crate::ocsp::enroll(&env);
    let sign = dir.join(format!("sign-{iin}.pem")).display().to_string();
    let issuing = x509_text(&dir, DEV_ISSUING);
    for policy in [POLICY_CA, POLICY_AUTH, POLICY_SIGN] {
        assert!(issuing.contains(&format!("Policy: {policy}")), "{issuing}");
    }
    lint(&dir, DEV_ISSUING);

    // (certificate, its policy, the other policy, NSS usage: SSL client / e-mail signer)
    let cases = [
        (auth.as_str(), POLICY_AUTH, POLICY_SIGN, "0"),
        (sign.as_str(), POLICY_SIGN, POLICY_AUTH, "4"),
    ];
    for (cert, own, other, _) in cases {
        let (ok, out) = openssl_explicit_policy(&dir, cert, own);
        assert!(ok && out.contains(": OK"), "{cert} under {own}: {out}");
        let (ok, out) = openssl_explicit_policy(&dir, cert, other);
        assert!(
            !ok && out.contains("no explicit policy"),
            "{cert} under {other}: {out}"
        );
    }

    let java = answers_version("java");
    if tool_present(
        java,
        "TAMGA_TEST_REQUIRE_JDK",
        test,
        "java is not installed (a JDK 17 or newer)",
    ) {
        for (cert, own, other, _) in cases {
            let (code, out) = jdk_explicit_policy(&dir, cert, own);
            assert_eq!(code, Some(0), "{cert} under {own}: {out}");
            assert!(
                out.starts_with("VALID") && out.contains(own),
                "{cert} under {own}: {out}"
            );
            let (code, out) = jdk_explicit_policy(&dir, cert, other);
            assert_eq!(code, Some(1), "{cert} under {other}: {out}");
            assert!(out.starts_with("INVALID"), "{cert} under {other}: {out}");
        }
    }

    let nss = Command::new("vfychain").output().is_ok();
    if tool_present(
        nss,
        "TAMGA_TEST_REQUIRE_NSS",
        test,
        "vfychain is not installed (apt-get install libnss3-tools)",
    ) {
        for (cert, own, other, usage) in cases {
            let (ok, out) = nss_explicit_policy(&dir, cert, own, usage);
            assert!(ok, "{cert} under {own}: {out}");
            let (ok, out) = nss_explicit_policy(&dir, cert, other, usage);
            assert!(!ok && out.contains("-8032"), "{cert} under {other}: {out}");
        }
    }
}
