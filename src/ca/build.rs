//! Building CA certificates with OpenSSL, for every hierarchy: fresh key pairs, the issuing
//! CA certificate under the root with its certificate policies (also for a renewal of the
//! issuing CA), the delegated OCSP responder certificate (renewed while serving), and the
//! pieces a certificate builder needs (names, serials, times). Production code: `Hierarchy`
//! and the development hierarchy (`crate::dev::hierarchy`) both use it. Must never: write
//! files, or import development code.

use chrono::{DateTime, Utc};
use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time, Asn1Type};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509Extension, X509Name, X509NameBuilder, X509Ref, X509};

use super::issue::{OID_POLICY_AUTH, OID_POLICY_SIGN};
use super::{CaError, SigningKey};
use crate::vocab::KeyType;

/// NCA's certificate policy of its certification authorities, which its issuing CA
/// certificates carry.
pub const OID_POLICY_CA: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.398.3.3.1.1");

/// OID of id-pkix-ocsp-nocheck.
const OID_OCSP_NOCHECK: &str = "1.3.6.1.5.5.7.48.1.5";

pub(crate) const ROOT_KEY_TYPE: KeyType = KeyType::Rsa4096;

/// Validity of an issuing CA certificate unless the root's operator chooses another.
pub const ISSUING_VALIDITY_YEARS: i64 = 10;

/// Validity of a root certificate unless its operator chooses another.
pub const ROOT_VALIDITY_YEARS: i64 = 20;

/// The root as the signer of a CA certificate: its certificate, its key (a file or a token
/// object) and the key's type.
pub struct RootSigner<'a> {
    /// The root certificate (issuer name, authority key identifier).
    pub cert: &'a X509Ref,
    /// The root's private key.
    pub key: &'a SigningKey,
    /// The type of the root's key.
    pub key_type: KeyType,
}

/// What the issuing CA certificate points relying parties at: `public_url` (the root CRL,
/// the OCSP responder, the root certificate) and the CPS URI of its policies.
pub struct IssuingUrls<'a> {
    /// Base of the URLs of the CRL distribution point and the AIA.
    pub public_url: &'a str,
    /// The id-qt-cps qualifier of NCA's CA policy.
    pub cps_url: &'a str,
    /// The id of the root that signs it: its CRL is `{public_url}/crl/{root_id}.crl`, its
    /// certificate `{public_url}/ca/{root_id}.crt`.
    pub root_id: &'a str,
}

/// Generate a fresh key pair of `key_type` (a GOST key through the engine).
pub fn generate_key(key_type: KeyType) -> Result<PKey<Private>, CaError> {
    let rsa =
        |bits| -> Result<PKey<Private>, CaError> { Ok(PKey::from_rsa(Rsa::generate(bits)?)?) };
    let ec = |nid| -> Result<PKey<Private>, CaError> {
        let group = EcGroup::from_curve_name(nid)?;
        Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
    };
    match key_type {
        KeyType::Rsa2048 => rsa(2048),
        KeyType::Rsa3072 => rsa(3072),
        KeyType::Rsa4096 => rsa(4096),
        KeyType::EcP256 => ec(Nid::X9_62_PRIME256V1),
        KeyType::EcP384 => ec(Nid::SECP384R1),
        // Through the engine: TC26's 512-bit parameter set A, NCA's curve.
        KeyType::Gost2015_512 => Ok(crate::gost::generate(crate::gost::KeySize::Bits512)?),
    }
}

/// `C=KZ, CN=<common_name>` with the country as PrintableString and the name as UTF8String.
pub(crate) fn utf8_name(common_name: &str) -> Result<X509Name, CaError> {
    let mut b = X509NameBuilder::new()?;
    b.append_entry_by_nid_with_type(Nid::COUNTRYNAME, "KZ", Asn1Type::PRINTABLESTRING)?;
    b.append_entry_by_nid_with_type(Nid::COMMONNAME, common_name, Asn1Type::UTF8STRING)?;
    Ok(b.build())
}

/// A random positive serial of 16 octets (126 random bits; the top bits are fixed so the
/// encoding is always 16 octets and positive).
pub fn random_serial() -> Result<Asn1Integer, CaError> {
    let mut bytes = [0u8; 16];
    openssl::rand::rand_bytes(&mut bytes)?;
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    Ok(BigNum::from_slice(&bytes)?.to_asn1_integer()?)
}

pub(crate) fn asn1_time(t: DateTime<Utc>) -> Result<Asn1Time, CaError> {
    // OpenSSL picks UTCTime for years before 2050 and GeneralizedTime after, as RFC 5280 asks.
    Ok(Asn1Time::from_unix(t.timestamp())?)
}

pub(crate) fn add_years(t: DateTime<Utc>, years: i64) -> DateTime<Utc> {
    t + chrono::Duration::days(365 * years + years / 4)
}

pub(crate) fn base_builder<K: HasPublic>(
    subject: &openssl::x509::X509NameRef,
    issuer: &openssl::x509::X509NameRef,
    key: &PKeyRef<K>,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<X509Builder, CaError> {
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let serial = random_serial()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(subject)?;
    b.set_issuer_name(issuer)?;
    b.set_pubkey(key)?;
    let (start, end) = (asn1_time(not_before)?, asn1_time(not_after)?);
    b.set_not_before(&start)?;
    b.set_not_after(&end)?;
    Ok(b)
}

/// keyUsage of a CA certificate: critical, keyCertSign and cRLSign.
pub(crate) fn ca_key_usage() -> Result<X509Extension, CaError> {
    Ok(KeyUsage::new()
        .critical()
        .key_cert_sign()
        .crl_sign()
        .build()?)
}

/// subjectKeyIdentifier of the certificate being built, and authorityKeyIdentifier (key id)
/// of `issuer`, which signs it.
fn append_key_identifiers(b: &mut X509Builder, issuer: &X509Ref) -> Result<(), CaError> {
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(issuer), None))?;
    b.append_extension(ski)?;
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&b.x509v3_context(Some(issuer), None))?;
    b.append_extension(aki)?;
    Ok(())
}

/// The issuing CA certificate for `key`, signed by the root, valid from `not_before` to
/// `not_after`: CA with pathlen 0, keyCertSign and cRLSign, SKI/AKI, the certificate policies
/// of [`issuing_ca_policies`] (so a relying party that requires an explicit policy accepts the
/// certificates it issues), and — so that strict relying parties find revocation data for it —
/// a CRL distribution point `{public_url}/crl/{root_id}.crl` and AIA OCSP `{public_url}/ocsp`
/// and caIssuers `{public_url}/ca/{root_id}.crt`.
///
/// The one issuing-CA profile: the development hierarchy, `ca reissue-issuing` and the
/// production ceremony (`root sign-issuing`) all build the certificate here; the key is
/// always made elsewhere (in a file or a token) and only its public half comes in.
pub fn build_issuing(
    name: &openssl::x509::X509NameRef,
    key: &PKeyRef<impl HasPublic>,
    root: &RootSigner<'_>,
    urls: &IssuingUrls<'_>,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<X509, CaError> {
    let mut b = base_builder(name, root.cert.subject_name(), key, not_before, not_after)?;
    b.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
    b.append_extension(ca_key_usage()?)?;
    append_key_identifiers(&mut b, root.cert)?;
    b.append_extension(root_crl_distribution_point(urls.public_url, urls.root_id)?)?;
    b.append_extension(root_ca_issuers(urls.public_url, urls.root_id)?)?;
    b.append_extension(issuing_ca_policies(urls.cps_url)?)?;
    root.key.sign_x509(b, root.key_type)
}

/// A self-signed root certificate for `key`, valid from `not_before` to `not_after`: CA
/// without a path length limit, keyCertSign and cRLSign, a subject key identifier. The
/// development root and the production root (`root init`) are both built here.
pub fn build_root(
    name: &openssl::x509::X509NameRef,
    key: &PKeyRef<impl HasPublic>,
    signer: &SigningKey,
    key_type: KeyType,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<X509, CaError> {
    let mut b = base_builder(name, name, key, not_before, not_after)?;
    b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    b.append_extension(ca_key_usage()?)?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    signer.sign_x509(b, key_type)
}

/// certificatePolicies of every issuing CA certificate, not critical: NCA's CA policy
/// [`OID_POLICY_CA`] with `cps_url` as an id-qt-cps qualifier (the form of NCA's own test
/// issuing CA), then the end-entity policies the CA issues under, [`OID_POLICY_AUTH`] and
/// [`OID_POLICY_SIGN`], without qualifiers (the end-entity certificates carry theirs). NCA's
/// issuing CA lists only its CA policy, so its chains fail where an explicit policy is
/// required (`openssl verify -explicit_policy`, the JDK's `setExplicitPolicyRequired`, NSS);
/// listing the end-entity policies makes them valid along the whole path.
pub fn issuing_ca_policies(cps_url: &str) -> Result<X509Extension, CaError> {
    use x509_cert::ext::pkix::certpolicy::{PolicyInformation, PolicyQualifierInfo};
    let cps = der::asn1::Ia5String::new(cps_url)?;
    let policies = x509_cert::ext::pkix::CertificatePolicies(vec![
        PolicyInformation {
            policy_identifier: OID_POLICY_CA,
            policy_qualifiers: Some(vec![PolicyQualifierInfo {
                policy_qualifier_id: const_oid::db::rfc5280::ID_QT_CPS,
                qualifier: Some(der::Any::from(&cps)),
            }]),
        },
        PolicyInformation {
            policy_identifier: OID_POLICY_AUTH,
            policy_qualifiers: None,
        },
        PolicyInformation {
            policy_identifier: OID_POLICY_SIGN,
            policy_qualifiers: None,
        },
    ]);
    from_der_extension("2.5.29.32", &policies)
}

fn uri(url: &str) -> Result<x509_cert::ext::pkix::name::GeneralName, CaError> {
    Ok(
        x509_cert::ext::pkix::name::GeneralName::UniformResourceIdentifier(
            der::asn1::Ia5String::new(url)?,
        ),
    )
}

fn from_der_extension(oid: &str, value: &impl der::Encode) -> Result<X509Extension, CaError> {
    let oid = Asn1Object::from_str(oid)?;
    let bytes = Asn1OctetString::new_from_bytes(&value.to_der()?)?;
    Ok(X509Extension::new_from_der(&oid, false, &bytes)?)
}

fn root_crl_distribution_point(public_url: &str, root_id: &str) -> Result<X509Extension, CaError> {
    use x509_cert::ext::pkix::crl::dp::DistributionPoint;
    use x509_cert::ext::pkix::name::DistributionPointName;
    let dp = x509_cert::ext::pkix::CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![uri(&format!(
            "{public_url}/crl/{root_id}.crl"
        ))?])),
        reasons: None,
        crl_issuer: None,
    }]);
    from_der_extension("2.5.29.31", &dp)
}

/// The issuing CA's AIA: OCSP `{public_url}/ocsp` (answered with responses the root signed
/// offline) and caIssuers `{public_url}/ca/root.crt`.
fn root_ca_issuers(public_url: &str, root_id: &str) -> Result<X509Extension, CaError> {
    let aia = x509_cert::ext::pkix::AuthorityInfoAccessSyntax(vec![
        x509_cert::ext::pkix::AccessDescription {
            access_method: const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1"),
            access_location: uri(&format!("{public_url}/ocsp"))?,
        },
        x509_cert::ext::pkix::AccessDescription {
            access_method: const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.2"),
            access_location: uri(&format!("{public_url}/ca/{root_id}.crt"))?,
        },
    ]);
    from_der_extension("1.3.6.1.5.5.7.1.1", &aia)
}

/// Issue a delegated OCSP responder certificate for `key`, signed by the issuing CA:
/// keyUsage digitalSignature, id-kp-OCSPSigning, id-pkix-ocsp-nocheck, valid for `validity`.
pub fn issue_ocsp_responder(
    key: &PKeyRef<impl HasPublic>,
    issuing_cert: &X509Ref,
    issuing_key: &SigningKey,
    issuing_key_type: KeyType,
    not_before: DateTime<Utc>,
    validity: chrono::Duration,
) -> Result<X509, CaError> {
    let issuer_cn = issuing_cert
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
        .unwrap_or_default();
    let name = utf8_name(&format!("OCSP {issuer_cn}"))?;
    let mut b = base_builder(
        &name,
        issuing_cert.subject_name(),
        key,
        not_before,
        not_before + validity,
    )?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
    b.append_extension(ExtendedKeyUsage::new().other("OCSPSigning").build()?)?;
    let nocheck_oid = Asn1Object::from_str(OID_OCSP_NOCHECK)?;
    // The extension's value is an ASN.1 NULL.
    let null = Asn1OctetString::new_from_bytes(&[0x05, 0x00])?;
    b.append_extension(X509Extension::new_from_der(&nocheck_oid, false, &null)?)?;
    append_key_identifiers(&mut b, issuing_cert)?;
    issuing_key.sign_x509(b, issuing_key_type)
}
