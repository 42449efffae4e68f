//! GOST CA certificates in NCA's form: a GOST root, a GOST issuing CA under it and the issuing
//! CA's delegated OCSP responder, built as DER with x509-cert (OpenSSL cannot read a public key
//! under NCA's OIDs, and its certificate builder cannot write NCA's signature), every subject
//! key in NCA's form (`gost::spki_to_nca`), signed by `gost::sign` in NCA's form; and a whole
//! development GOST hierarchy written into a [`HierarchyFiles`] layout
//! ([`init_gost_hierarchy`]).
//!
//! The profiles follow NCA's test GOST issuing CA certificate
//! (`tests/data/nca-gost-2015/nca_gost2022_test_ca.cer`, `ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (GOST) TEST
//! 2022`, issued by `НЕГІЗГІ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (GOST) TEST 2022`) and its OCSP responder (the
//! certificate inside NCA's OCSP responses), with the extensions our RSA issuing CA gets from
//! [`super::build::build_issuing`]; the differences are listed on [`build_issuing`] and
//! [`issue_ocsp_responder`].
//!
//! GOST CA keys live in files only: no PKCS#11 token here has GOST R 34.10-2012-512
//! mechanisms (SoftHSM2 has none). Must never: write a key with a mode wider than 0600, leave a
//! half-made hierarchy in place, or sign with anything but `gost::sign` in NCA's form.

use chrono::{DateTime, Utc};
use der::asn1::{
    Any, BitString, Ia5String, Null, OctetString, PrintableStringRef, SetOfVec, Utf8StringRef,
};
use der::{Decode, Encode};
use openssl::pkey::{PKey, Private};
use spki::{ObjectIdentifier, SubjectPublicKeyInfoOwned};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::certpolicy::{PolicyInformation, PolicyQualifierInfo};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CertificatePolicies, CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;
use x509_cert::{Certificate, TbsCertificate, Version};

use super::build::OID_POLICY_CA;
use super::issue::OID_POLICY_GOST;
use super::{files, CaError, HierarchyFiles};
use crate::gost::{self, Form, KeySize};
use crate::vocab::KeyType;

/// The development GOST root's id: its files are `root_gost.pem` and `root_gost.key.pem`,
/// its URLs `/ca/root_gost.crt` and `/crl/root_gost.crl`.
pub const GOST_ROOT_DEV_ID: &str = "root_gost";
/// The development GOST issuing CA's id.
pub const GOST_ISSUING_DEV_ID: &str = "nca_gost_dev";
/// The development GOST root's common name, named as NCA names its GOST root (`НЕГІЗГІ
/// КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (GOST) TEST 2022`, the issuer of its test GOST CA).
pub const GOST_ROOT_DEV_NAME: &str = "НЕГІЗГІ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (GOST) DEV";
/// The development GOST issuing CA's common name (NCA's: `ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (GOST)`).
pub const GOST_ISSUING_DEV_NAME: &str = "ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (GOST) DEV";

/// id-kp-OCSPSigning.
const OID_KP_OCSP_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");
/// id-pkix-ocsp-nocheck.
const OID_OCSP_NOCHECK: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.5");
/// id-ad-caIssuers.
const OID_AD_CA_ISSUERS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.2");
const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_COUNTRY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");

/// A GOST CA that signs a certificate: its certificate (DER: the issuer name and the
/// authority key identifier come from it) and its private key (read through the engine).
pub struct GostSigner<'a> {
    /// The signer's certificate, DER.
    pub cert_der: &'a [u8],
    /// The signer's private key.
    pub key: &'a PKey<Private>,
}

/// Where a GOST issuing CA certificate points relying parties: the root's CRL
/// `{public_url}/crl/{root_id}.crl` and certificate `{public_url}/ca/{root_id}.crt`, and the
/// CPS of its policies.
pub struct GostUrls<'a> {
    /// Base of the URLs (`[server] public_url`).
    pub public_url: &'a str,
    /// The id-qt-cps qualifier of the CA policy.
    pub cps_url: &'a str,
    /// The root's id (`root_gost`), which names its URLs.
    pub root_id: &'a str,
}

/// A fresh GOST R 34.10-2015 512-bit key (TC26 parameter set A) through the engine.
pub fn generate_key() -> Result<PKey<Private>, CaError> {
    super::build::generate_key(KeyType::Gost2015_512)
}

/// `CN=<common_name>, C=KZ` in NCA's order (NCA's GOST CA certificates name the common name
/// first), the name as UTF8String, the country as PrintableString.
pub fn gost_name(common_name: &str) -> Result<Name, CaError> {
    let rdn = |oid, value: Any| -> Result<RelativeDistinguishedName, CaError> {
        Ok(RelativeDistinguishedName(SetOfVec::try_from(vec![
            AttributeTypeAndValue { oid, value },
        ])?))
    };
    Ok(RdnSequence(vec![
        rdn(OID_CN, Any::from(Utf8StringRef::new(common_name)?))?,
        rdn(OID_COUNTRY, Any::from(PrintableStringRef::new("KZ")?))?,
    ]))
}

/// A random positive serial of 20 octets (the length of NCA's serials, which are their
/// certificate's SKI with the top bit cleared): 159 random bits, the top bit cleared and the
/// first octet never zero, so the encoding is always 20 octets.
pub(crate) fn random_serial_20() -> Result<(SerialNumber, String), CaError> {
    let mut bytes = [0u8; 20];
    loop {
        openssl::rand::rand_bytes(&mut bytes)?;
        bytes[0] &= 0x7f;
        if bytes[0] != 0 {
            break;
        }
    }
    Ok((SerialNumber::new(&bytes)?, hex::encode_upper(bytes)))
}

/// The subject key identifier of a key: the SHA-1 of its subjectPublicKey BIT STRING's
/// contents (RFC 5280 §4.2.1.2, method 1), as NCA computes it for its GOST certificates.
pub(crate) fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    openssl::sha::sha1(spki.subject_public_key.raw_bytes()).to_vec()
}

fn extension<T: Encode>(
    oid: ObjectIdentifier,
    critical: bool,
    value: &T,
) -> Result<Extension, CaError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

fn uri(url: &str) -> Result<GeneralName, CaError> {
    Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(url)?))
}

fn time(t: DateTime<Utc>) -> Result<x509_cert::time::Time, CaError> {
    Ok(super::X509Time::new(t)
        .map_err(|_| CaError::Time)?
        .to_time()?)
}

/// A subject key in NCA's form (the engine's TC26 form or NCA's in, NCA's out), checked: GOST
/// 2015-512 on parameter set A.
pub fn nca_subject_key(spki_der: &[u8]) -> Result<SubjectPublicKeyInfoOwned, CaError> {
    let key = gost::GostPublicKey::from_der(spki_der)?;
    if key.size() != KeySize::Bits512 {
        return Err(CaError::Gost(
            "a GOST CA key is GOST R 34.10-2015 512-bit (gost2015-512)".to_owned(),
        ));
    }
    Ok(key.to_spki(Form::Nca)?)
}

/// The subject name and subject key identifier of a certificate (DER).
fn subject_and_key_id(cert_der: &[u8]) -> Result<(Name, Vec<u8>), CaError> {
    let cert = Certificate::from_der(cert_der)?;
    let tbs = cert.tbs_certificate;
    let key_id = tbs
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER)
        .map(|e| SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()))
        .transpose()?
        .map(|ski| ski.0.as_bytes().to_vec())
        .ok_or(CaError::MissingSubjectKeyId)?;
    Ok((tbs.subject, key_id))
}

/// Signs `tbs` (whose signature algorithm must be NCA's) with `key` in NCA's form; the
/// certificate, DER. The signature is checked with the signer's key before it is returned.
fn sign(tbs: TbsCertificate, key: &PKey<Private>) -> Result<Vec<u8>, CaError> {
    let tbs_der = tbs.to_der()?;
    let signature = gost::sign(key, &tbs_der, Form::Nca)?;
    let signature = BitString::from_bytes(&signature)?;
    gost::verify(
        &tbs_der,
        &tbs.signature,
        &signature,
        &key.public_key_to_der()?,
    )?;
    let cert = Certificate {
        signature_algorithm: tbs.signature.clone(),
        tbs_certificate: tbs,
        signature,
    };
    Ok(cert.to_der()?)
}

fn tbs(
    serial: SerialNumber,
    issuer: Name,
    subject: Name,
    spki: SubjectPublicKeyInfoOwned,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    extensions: Vec<Extension>,
) -> Result<TbsCertificate, CaError> {
    Ok(TbsCertificate {
        version: Version::V3,
        serial_number: serial,
        signature: super::signature_algorithm(KeyType::Gost2015_512),
        issuer,
        validity: Validity {
            not_before: time(not_before)?,
            not_after: time(not_after)?,
        },
        subject,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    })
}

/// keyUsage of a CA: critical, keyCertSign and cRLSign (NCA's: `03 02 01 06`).
fn ca_key_usage() -> Result<Extension, CaError> {
    extension(
        const_oid::db::rfc5280::ID_CE_KEY_USAGE,
        true,
        &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
    )
}

/// A self-signed GOST root certificate for `key`, named `CN=<common_name>, C=KZ`, valid from
/// `not_before` to `not_after`: basicConstraints critical CA without a path length limit,
/// keyUsage critical keyCertSign and cRLSign, a subject key identifier (the profile of
/// [`super::build::build_root`]). NCA's GOST root certificate is not at hand: only its name
/// and key identifier, from its test issuing CA's issuer and AKI.
pub fn build_root(
    common_name: &str,
    key: &PKey<Private>,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<Vec<u8>, CaError> {
    let name = gost_name(common_name)?;
    let spki = nca_subject_key(&key.public_key_to_der()?)?;
    let ski = key_identifier(&spki);
    let extensions = vec![
        extension(
            const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca: true,
                path_len_constraint: None,
            },
        )?,
        ca_key_usage()?,
        extension(
            const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
            false,
            &SubjectKeyIdentifier(OctetString::new(ski)?),
        )?,
    ];
    let (serial, _) = random_serial_20()?;
    let tbs = tbs(
        serial,
        name.clone(),
        name,
        spki,
        not_before,
        not_after,
        extensions,
    )?;
    sign(tbs, key)
}

/// certificatePolicies of a GOST issuing CA, not critical: NCA's CA policy [`OID_POLICY_CA`]
/// with `cps_url` as an id-qt-cps qualifier (as the RSA issuing CA's,
/// [`super::build::issuing_ca_policies`]), then the policy its GOST SIGN certificates carry,
/// [`OID_POLICY_GOST`], so that a relying party that requires an explicit policy accepts
/// them along the whole path (NCA's GOST CA lists `1.2.398.3.3.2` alone).
pub fn gost_issuing_ca_policies(cps_url: &str) -> Result<CertificatePolicies, CaError> {
    Ok(CertificatePolicies(vec![
        PolicyInformation {
            policy_identifier: OID_POLICY_CA,
            policy_qualifiers: Some(vec![PolicyQualifierInfo {
                policy_qualifier_id: const_oid::db::rfc5280::ID_QT_CPS,
                qualifier: Some(Any::from(&Ia5String::new(cps_url)?)),
            }]),
        },
        PolicyInformation {
            policy_identifier: OID_POLICY_GOST,
            policy_qualifiers: None,
        },
    ]))
}

/// The GOST issuing CA certificate for the key `subject_key` (a SubjectPublicKeyInfo, DER,
/// either form: written in NCA's), named `name`, signed by the GOST `root`, valid from
/// `not_before` to `not_after`.
///
/// Its extensions, in the order of NCA's test GOST CA certificate: basicConstraints
/// (critical), keyUsage (critical, keyCertSign and cRLSign), CRL distribution point
/// `{public_url}/crl/{root_id}.crl`, subject key identifier (SHA-1 of the subjectPublicKey
/// bits, as NCA's), authority key identifier, AIA caIssuers `{public_url}/ca/{root_id}.crt`,
/// certificatePolicies ([`gost_issuing_ca_policies`]). The signature algorithm
/// (`1.2.398.3.10.1.1.2.3.2`, NULL parameters), the key's algorithm and parameters
/// (`1.2.398.3.10.1.1.2.2` with `{…2.2.1, 1.2.398.3.10.1.3.3}`), the name's form (CN first,
/// UTF8String, then C as PrintableString), UTCTime validity and a 20-octet serial are NCA's.
///
/// Intended differences from NCA's test GOST CA certificate:
/// - basicConstraints has pathLenConstraint 0 (NCA's has none), as our RSA issuing CA: the
///   issuing CA certifies end entities only;
/// - the serial is 20 random octets (top bit cleared), not the SKI with its top bit cleared:
///   a reissued certificate for the same key must not repeat a serial;
/// - the authority key identifier is the key identifier alone (NCA's adds the root's name
///   and serial), as in every certificate we issue: the name and serial would tie the
///   certificate to one root certificate of that key;
/// - certificatePolicies: NCA's CA policy `1.2.398.3.3.1.1` with the CPS (as NCA's RSA test
///   CA and our RSA issuing CA), then `1.2.398.3.3.2`; NCA's GOST CA has `1.2.398.3.3.2` with
///   the CPS ` http://pki.gov.kz/cps` (with a leading blank) alone;
/// - the URLs are ours (`/crl/<root_id>.crl`, `/ca/<root_id>.crt`); like NCA's, the AIA has
///   caIssuers only (our RSA issuing CA also names OCSP, answered by root-signed responses,
///   which no GOST root here signs yet).
pub fn build_issuing(
    name: Name,
    subject_key: &[u8],
    root: &GostSigner<'_>,
    urls: &GostUrls<'_>,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<Vec<u8>, CaError> {
    let spki = nca_subject_key(subject_key)?;
    let ski = key_identifier(&spki);
    let (root_name, root_key_id) = subject_and_key_id(root.cert_der)?;
    let GostUrls {
        public_url,
        cps_url,
        root_id,
    } = urls;
    let extensions = vec![
        extension(
            const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca: true,
                path_len_constraint: Some(0),
            },
        )?,
        ca_key_usage()?,
        extension(
            const_oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS,
            false,
            &CrlDistributionPoints(vec![DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri(&format!(
                    "{public_url}/crl/{root_id}.crl"
                ))?])),
                reasons: None,
                crl_issuer: None,
            }]),
        )?,
        extension(
            const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
            false,
            &SubjectKeyIdentifier(OctetString::new(ski)?),
        )?,
        extension(
            const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(root_key_id)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?,
        extension(
            const_oid::db::rfc5280::ID_PE_AUTHORITY_INFO_ACCESS,
            false,
            &AuthorityInfoAccessSyntax(vec![AccessDescription {
                access_method: OID_AD_CA_ISSUERS,
                access_location: uri(&format!("{public_url}/ca/{root_id}.crt"))?,
            }]),
        )?,
        extension(
            const_oid::db::rfc5280::ID_CE_CERTIFICATE_POLICIES,
            false,
            &gost_issuing_ca_policies(cps_url)?,
        )?,
    ];
    let (serial, _) = random_serial_20()?;
    let tbs = tbs(
        serial, root_name, name, spki, not_before, not_after, extensions,
    )?;
    sign(tbs, root.key)
}

/// The GOST issuing CA's delegated OCSP responder certificate for `subject_key` (either form;
/// written in NCA's), signed by the issuing CA, valid for `validity` from `not_before`:
/// `CN=OCSP <issuing CA's common name>, C=KZ`; basicConstraints critical (not a CA), keyUsage
/// critical digitalSignature, extendedKeyUsage id-kp-OCSPSigning, id-pkix-ocsp-nocheck, subject
/// and authority key identifiers (the profile of [`super::build::issue_ocsp_responder`]).
///
/// Intended differences from NCA's GOST responder certificate (the one inside NCA's OCSP
/// responses): its subject is `CN=OCSP RESPONDER, C=KZ, O=<CA name>`, it has no
/// basicConstraints, its keyUsage is not critical, it carries NCA's private extension
/// `1.2.398.3.3.5`, and its serial is its SKI with the top bit cleared; ours names its CA in
/// the CN as our RSA responder does, marks keyUsage critical (RFC 5280 §4.2.1.3 says it
/// should be), and has a random 20-octet serial.
pub fn issue_ocsp_responder(
    subject_key: &[u8],
    issuing: &GostSigner<'_>,
    not_before: DateTime<Utc>,
    validity: chrono::Duration,
) -> Result<Vec<u8>, CaError> {
    let spki = nca_subject_key(subject_key)?;
    let ski = key_identifier(&spki);
    let (issuer_name, issuer_key_id) = subject_and_key_id(issuing.cert_der)?;
    let issuer_cn = issuer_name
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == OID_CN)
        .and_then(|atv| atv.value.decode_as::<der::asn1::Utf8StringRef<'_>>().ok())
        .map(|cn| cn.as_str().to_owned())
        .unwrap_or_default();
    let extensions = vec![
        extension(
            const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
        )?,
        extension(
            const_oid::db::rfc5280::ID_CE_KEY_USAGE,
            true,
            &KeyUsage(KeyUsages::DigitalSignature.into()),
        )?,
        extension(
            const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE,
            false,
            &ExtendedKeyUsage(vec![OID_KP_OCSP_SIGNING]),
        )?,
        extension(OID_OCSP_NOCHECK, false, &Null)?,
        extension(
            const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
            false,
            &SubjectKeyIdentifier(OctetString::new(ski)?),
        )?,
        extension(
            const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(issuer_key_id)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?,
    ];
    let (serial, _) = random_serial_20()?;
    let tbs = tbs(
        serial,
        issuer_name,
        gost_name(&format!("OCSP {issuer_cn}"))?,
        spki,
        not_before,
        not_before + validity,
        extensions,
    )?;
    sign(tbs, issuing.key)
}

/// Writes a whole development GOST hierarchy into the layout `files` (made with
/// [`HierarchyFiles::with_root`], e.g. root `root_gost`, issuer `nca_gost_dev`): a GOST root
/// named [`GOST_ROOT_DEV_NAME`], the issuing CA named `issuing_name` under it, its delegated
/// OCSP responder valid for `ocsp_validity`, and the root's development marker. Keys are
/// GOST R 34.10-2015 512-bit on TC26's parameter set A, written as the engine writes them
/// (PKCS#8 PEM in the TC26 form, mode 0600); certificates as PEM in NCA's form (0644).
///
/// Every file is made new (an existing one is an error, [`CaError::Write`]): the caller
/// decides what to replace, stages and renames (as `dev::hierarchy::init` does for the RSA
/// hierarchy). A failure leaves the files written so far; the caller's staging directory
/// takes them away. The Digital ID development key is not part of it (the RSA hierarchy's).
pub fn init_gost_hierarchy(
    files: &HierarchyFiles,
    issuing_name: &str,
    urls: &GostUrls<'_>,
    ocsp_validity: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<(), CaError> {
    let not_before = now - chrono::Duration::hours(1);
    let root_key = generate_key()?;
    let root_cert = build_root(
        GOST_ROOT_DEV_NAME,
        &root_key,
        not_before,
        super::build::add_years(not_before, super::build::ROOT_VALIDITY_YEARS),
    )?;
    let issuing_key = generate_key()?;
    let issuing_cert = build_issuing(
        gost_name(issuing_name)?,
        &issuing_key.public_key_to_der()?,
        &GostSigner {
            cert_der: &root_cert,
            key: &root_key,
        },
        urls,
        not_before,
        super::build::add_years(not_before, super::build::ISSUING_VALIDITY_YEARS),
    )?;
    let ocsp_key = generate_key()?;
    let ocsp_cert = issue_ocsp_responder(
        &ocsp_key.public_key_to_der()?,
        &GostSigner {
            cert_der: &issuing_cert,
            key: &issuing_key,
        },
        not_before,
        ocsp_validity,
    )?;
    let pem = |der: &[u8]| crate::pem::encode("CERTIFICATE", der);
    let key_pem = |key: &PKey<Private>| key.private_key_to_pem_pkcs8();
    files::write_new(
        &files.dev_root_marker,
        super::ceremony::dev_root_marker_text(&openssl::x509::X509::from_der(&root_cert)?)?
            .as_bytes(),
        0o644,
    )?;
    files::write_new(&files.root_key, &key_pem(&root_key)?, 0o600)?;
    files::write_new(&files.root_cert, pem(&root_cert).as_bytes(), 0o644)?;
    files::write_new(&files.issuing_key, &key_pem(&issuing_key)?, 0o600)?;
    files::write_new(&files.issuing_cert, pem(&issuing_cert).as_bytes(), 0o644)?;
    files::write_new(&files.ocsp_key, &key_pem(&ocsp_key)?, 0o600)?;
    files::write_new(&files.ocsp_cert, pem(&ocsp_cert).as_bytes(), 0o644)?;
    Ok(())
}

/// A GOST development hierarchy written by [`init_gost_hierarchy`] into a fresh temporary
/// directory in the single-issuer layout (`root.pem`, issuer `nca_gost_dev`, URLs under
/// `http://ca.test`) and loaded with a `[ca]` whose `issuer_id` is `nca_gost_dev`, as in
/// production (no Digital ID key); `None`, the test reported skipped, where the gost engine is
/// unavailable (a failure where `TAMGA_TEST_REQUIRE_GOST` is set).
#[cfg(test)]
pub(crate) fn test_hierarchy(
    test: &str,
) -> Option<(tempfile::TempDir, crate::config::CaConfig, super::Hierarchy)> {
    #![allow(clippy::unwrap_used)]
    if !gost::engine_for_test(test) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = crate::config::CaConfig {
        dir: dir.path().join("ca"),
        issuer_id: GOST_ISSUING_DEV_ID.to_owned(),
        issuing_key_type: KeyType::Gost2015_512,
        ocsp_key_type: KeyType::Gost2015_512,
        ..crate::config::CaConfig::default()
    };
    std::fs::create_dir_all(&ca.dir).unwrap();
    init_gost_hierarchy(
        &HierarchyFiles::for_config(&ca),
        GOST_ISSUING_DEV_NAME,
        &GostUrls {
            public_url: "http://ca.test",
            cps_url: "http://ca.test/cps",
            root_id: "root",
        },
        chrono::Duration::days(30),
        Utc::now(),
    )
    .unwrap();
    let hierarchy = super::Hierarchy::load(&ca, crate::config::Mode::Production).unwrap();
    Some((dir, ca, hierarchy))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::config::Mode;
    use crate::gost::SignedArtefact;

    /// NCA's test GOST issuing CA certificate: the profile ours is compared with.
    const NCA_CA: &[u8] = include_bytes!("../../tests/data/nca-gost-2015/nca_gost2022_test_ca.cer");

    /// A GOST hierarchy written in the single-issuer layout (`root.pem`) loads with a `[ca]`
    /// whose issuer is `nca_gost_dev`: GOST key types, every key a file of mode 0600 in the
    /// engine's TC26 form, every certificate in NCA's form, the chain and the responder's
    /// EKU checked by `Hierarchy::load`, and each key signs for its certificate.
    #[test]
    fn a_gost_hierarchy_in_the_single_issuer_layout_loads() {
        let Some((_dir, ca, hierarchy)) =
            test_hierarchy("a_gost_hierarchy_in_the_single_issuer_layout_loads")
        else {
            return;
        };
        let files = HierarchyFiles::for_config(&ca);
        assert_eq!(files.root_cert, ca.dir.join("root.pem"));
        assert_eq!(hierarchy.issuing().id(), GOST_ISSUING_DEV_ID);
        for key in [hierarchy.issuing(), hierarchy.ocsp_responder()] {
            assert_eq!(key.key_type(), KeyType::Gost2015_512);
            key.self_test().unwrap();
        }
        let root = hierarchy.root_key().unwrap();
        assert_eq!(root.key_type(), KeyType::Gost2015_512);
        root.self_test().unwrap();
        for path in [&files.root_key, &files.issuing_key, &files.ocsp_key] {
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
            let key = PKey::private_key_from_pem(&std::fs::read(path).unwrap()).unwrap();
            let public = gost::GostPublicKey::from_der(&key.public_key_to_der().unwrap()).unwrap();
            assert_eq!(
                (public.form(), public.size()),
                (Form::Tc26, KeySize::Bits512)
            );
        }
        for cert in [
            hierarchy.root(),
            hierarchy.issuing().certificate(),
            hierarchy.ocsp_responder().certificate(),
        ] {
            let key = gost::certificate_key(cert.der()).unwrap();
            assert_eq!((key.form(), key.size()), (Form::Nca, KeySize::Bits512));
            assert_eq!(cert.key_type(), Some(KeyType::Gost2015_512));
        }
        // The root is self-signed; what OpenSSL reads of the names is ours.
        SignedArtefact::certificate(hierarchy.root().der())
            .unwrap()
            .verify_by(hierarchy.root().der())
            .unwrap();
        assert_eq!(
            super::super::display_name(hierarchy.issuing().certificate().x509().subject_name()),
            format!("CN={GOST_ISSUING_DEV_NAME}, C=KZ")
        );
        assert_eq!(
            super::super::display_name(hierarchy.root().x509().subject_name()),
            format!("CN={GOST_ROOT_DEV_NAME}, C=KZ")
        );
        assert_eq!(files.dev_root_marker, ca.dir.join("root.development"));
        assert!(files.dev_root_marker.exists());
        // Loaded twice, the same.
        let again = super::super::Hierarchy::load(&ca, Mode::Production).unwrap();
        assert_eq!(
            again.issuing().certificate().der(),
            hierarchy.issuing().certificate().der()
        );
    }

    /// `Hierarchy::load` refuses a GOST key file that is not the certificate's key, and a
    /// certificate whose signature does not verify with its issuer.
    #[test]
    fn a_gost_hierarchy_with_a_wrong_key_or_a_broken_signature_is_refused() {
        let test = "a_gost_hierarchy_with_a_wrong_key_or_a_broken_signature_is_refused";
        let Some((_dir, ca, _)) = test_hierarchy(test) else {
            return;
        };
        let files = HierarchyFiles::for_config(&ca);
        let issuing_key = std::fs::read(&files.issuing_key).unwrap();
        let ocsp_key = std::fs::read(&files.ocsp_key).unwrap();
        std::fs::write(&files.issuing_key, &ocsp_key).unwrap();
        let err = super::super::Hierarchy::load(&ca, Mode::Production).unwrap_err();
        assert!(
            err.to_string()
                .contains("does not belong to the certificate"),
            "{err}"
        );
        std::fs::write(&files.issuing_key, &issuing_key).unwrap();
        super::super::Hierarchy::load(&ca, Mode::Production).unwrap();

        // The issuing CA certificate with a byte of its signature flipped.
        let pem = std::fs::read(&files.issuing_cert).unwrap();
        let mut der = openssl::x509::X509::from_pem(&pem)
            .unwrap()
            .to_der()
            .unwrap();
        let last = der.len() - 1;
        der[last] ^= 1;
        std::fs::write(&files.issuing_cert, crate::pem::encode("CERTIFICATE", &der)).unwrap();
        let err = super::super::Hierarchy::load(&ca, Mode::Production).unwrap_err();
        assert!(
            err.to_string().contains("not signed by its issuer"),
            "{err}"
        );
    }

    /// Our GOST issuing CA certificate against NCA's test GOST CA certificate, field by
    /// field: the same signature algorithm (NULL parameters), key algorithm and parameter
    /// encoding, name form, validity encoding, serial length, critical basicConstraints and
    /// keyUsage with NCA's bits, SKI computed as NCA's, the same extensions in the same order
    /// and criticality; the intended differences (`build_issuing`) are checked as such.
    #[test]
    fn the_gost_issuing_ca_follows_ncas_test_ca_with_the_listed_differences() {
        let test = "the_gost_issuing_ca_follows_ncas_test_ca_with_the_listed_differences";
        let Some((_dir, _, hierarchy)) = test_hierarchy(test) else {
            return;
        };
        let ours = Certificate::from_der(hierarchy.issuing().certificate().der()).unwrap();
        let theirs = Certificate::from_der(NCA_CA).unwrap();
        let (o, t) = (&ours.tbs_certificate, &theirs.tbs_certificate);
        assert_eq!(o.signature.to_der().unwrap(), t.signature.to_der().unwrap());
        assert_eq!(
            ours.signature_algorithm.to_der().unwrap(),
            theirs.signature_algorithm.to_der().unwrap()
        );
        assert_eq!(
            o.subject_public_key_info.algorithm.to_der().unwrap(),
            t.subject_public_key_info.algorithm.to_der().unwrap()
        );
        assert_eq!(o.version, t.version);
        assert_eq!(
            o.serial_number.as_bytes().len(),
            t.serial_number.as_bytes().len()
        );
        assert!(o.serial_number.as_bytes()[0] < 0x80);
        assert!(matches!(
            o.validity.not_before,
            x509_cert::time::Time::UtcTime(_)
        ));
        let shape = |name: &Name| -> Vec<(ObjectIdentifier, der::Tag)> {
            name.0
                .iter()
                .flat_map(|rdn| rdn.0.iter())
                .map(|atv| (atv.oid, der::Tagged::tag(&atv.value)))
                .collect()
        };
        assert_eq!(shape(&o.subject), shape(&t.subject));
        assert_eq!(shape(&o.issuer), shape(&t.issuer));
        let listed = |tbs: &TbsCertificate| -> Vec<(ObjectIdentifier, bool)> {
            tbs.extensions
                .iter()
                .flatten()
                .map(|e| (e.extn_id, e.critical))
                .collect()
        };
        assert_eq!(listed(o), listed(t));
        let value = |c: &Certificate, oid| -> Vec<u8> {
            c.tbs_certificate
                .extensions
                .iter()
                .flatten()
                .find(|e| e.extn_id == oid)
                .unwrap()
                .extn_value
                .as_bytes()
                .to_vec()
        };
        use const_oid::db::rfc5280 as ids;
        assert_eq!(
            value(&ours, ids::ID_CE_KEY_USAGE),
            value(&theirs, ids::ID_CE_KEY_USAGE)
        );
        // basicConstraints: CA both; pathLenConstraint 0 ours (a difference).
        let bc = |c: &Certificate| {
            BasicConstraints::from_der(&value(c, ids::ID_CE_BASIC_CONSTRAINTS)).unwrap()
        };
        assert!(bc(&ours).ca && bc(&theirs).ca);
        assert_eq!(
            (
                bc(&ours).path_len_constraint,
                bc(&theirs).path_len_constraint
            ),
            (Some(0), None)
        );
        // SKI: the SHA-1 of the subjectPublicKey bits, as NCA's.
        for c in [&ours, &theirs] {
            let ski = SubjectKeyIdentifier::from_der(&value(c, ids::ID_CE_SUBJECT_KEY_IDENTIFIER))
                .unwrap();
            assert_eq!(
                ski.0.as_bytes(),
                key_identifier(&c.tbs_certificate.subject_public_key_info).as_slice()
            );
        }
        // AKI: the key id (NCA's adds the issuer's name and serial: a difference).
        let aki = |c: &Certificate| {
            AuthorityKeyIdentifier::from_der(&value(c, ids::ID_CE_AUTHORITY_KEY_IDENTIFIER))
                .unwrap()
        };
        assert!(aki(&ours).key_identifier.is_some() && aki(&ours).authority_cert_issuer.is_none());
        assert!(aki(&theirs).authority_cert_issuer.is_some());
        // AIA: caIssuers only, as NCA's.
        let methods = |c: &Certificate| -> Vec<ObjectIdentifier> {
            AuthorityInfoAccessSyntax::from_der(&value(c, ids::ID_PE_AUTHORITY_INFO_ACCESS))
                .unwrap()
                .0
                .iter()
                .map(|a| a.access_method)
                .collect()
        };
        assert_eq!(methods(&ours), methods(&theirs));
        // Policies: ours the CA policy with the CPS, then NCA's GOST policy (NCA's: that alone).
        let policies = |c: &Certificate| -> Vec<ObjectIdentifier> {
            CertificatePolicies::from_der(&value(c, ids::ID_CE_CERTIFICATE_POLICIES))
                .unwrap()
                .0
                .iter()
                .map(|p| p.policy_identifier)
                .collect()
        };
        assert_eq!(policies(&theirs), [OID_POLICY_GOST]);
        assert_eq!(policies(&ours), [OID_POLICY_CA, OID_POLICY_GOST]);
        // The root's URLs.
        let dp =
            String::from_utf8_lossy(&value(&ours, ids::ID_CE_CRL_DISTRIBUTION_POINTS)).into_owned();
        assert!(dp.contains("http://ca.test/crl/root.crl"), "{dp}");
    }
}
