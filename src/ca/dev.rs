//! Generation of a development CA hierarchy: root, issuing CA, delegated OCSP responder and the
//! Digital ID development key pair. Used by `tamga ca init --dev` and by `tamga serve` in dev
//! mode when `[ca] dir` holds no hierarchy yet.
//!
//! Everything is written first into a staging directory inside `[ca] dir` and then renamed
//! into place, so an interrupted run leaves either nothing or a complete hierarchy (and a
//! stale staging directory that the next run removes).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time, Asn1Type};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private, Public};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509Extension, X509Name, X509NameBuilder, X509Ref, X509};

use super::files::{write_new, HierarchyFiles};
use super::pkcs11::{self, Pkcs11Key, Pkcs11Location};
use super::{CaError, SigningKey};
use crate::config::{CaConfig, KeyConfig};
use crate::vocab::KeyType;

/// OID of id-pkix-ocsp-nocheck.
const OID_OCSP_NOCHECK: &str = "1.3.6.1.5.5.7.48.1.5";

const ROOT_KEY_TYPE: KeyType = KeyType::Rsa4096;
const ROOT_VALIDITY_YEARS: i64 = 20;
const ISSUING_VALIDITY_YEARS: i64 = 10;
/// Certificates are backdated by this much so a relying party with a slow clock accepts them.
const BACKDATE: Duration = Duration::from_secs(3600);

/// What `init` did.
#[derive(Debug)]
pub struct InitOutcome {
    /// The files of the new hierarchy.
    pub files: HierarchyFiles,
    /// Whether an existing hierarchy was replaced.
    pub replaced: bool,
}

/// Generate a development hierarchy in `ca.dir`.
///
/// Refuses (with [`CaError::AlreadyExists`]) when any hierarchy file is already there, unless
/// `force` is set, in which case the old files are replaced.
pub fn init(
    ca: &CaConfig,
    public_url: &str,
    force: bool,
    now: DateTime<Utc>,
) -> Result<InitOutcome, CaError> {
    let files = HierarchyFiles::for_config(ca);
    std::fs::create_dir_all(&ca.dir).map_err(|source| CaError::Write {
        path: ca.dir.clone(),
        source,
    })?;
    let replaced = files.all().iter().any(|p| p.exists());
    if replaced && !force {
        return Err(CaError::AlreadyExists(ca.dir.clone()));
    }
    remove_stale_staging(&ca.dir);

    let staging = ca
        .dir
        .join(format!(".init-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir(&staging).map_err(|source| CaError::Write {
        path: staging.clone(),
        source,
    })?;
    let staged = files.in_dir(&staging);
    let result = generate_into(&staged, ca, public_url, now).and_then(|()| {
        for (from, to) in staged.all().into_iter().zip(files.all()) {
            std::fs::rename(from, to).map_err(|source| CaError::Write {
                path: to.to_path_buf(),
                source,
            })?;
        }
        Ok(())
    });
    // Best effort: the directory is empty after a successful rename.
    let _ = std::fs::remove_dir_all(&staging);
    result?;
    Ok(InitOutcome { files, replaced })
}

fn remove_stale_staging(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(".init-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn generate_into(
    files: &HierarchyFiles,
    ca: &CaConfig,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<(), CaError> {
    let not_before = now - BACKDATE;

    let root_key = generate_key(ROOT_KEY_TYPE)?;
    let root_name = utf8_name("ҚР ТҮБІРЛІК КУӘЛАНДЫРУШЫ ОРТАЛЫҒЫ (RSA) DEV")?;
    let root_cert = build_root(&root_name, &root_key, not_before)?;
    let root_signer = SigningKey::File {
        key: root_key.clone(),
        path: files.root_key.clone(),
    };

    let issuing = NewKey::generate(&ca.issuing_key, "issuing", ca.issuing_key_type)?;
    let algorithm = if ca.issuing_key_type.is_rsa() {
        "RSA"
    } else {
        "ECDSA"
    };
    let issuing_name = utf8_name(&format!("ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ ({algorithm}) DEV"))?;
    let issuing_cert = build_issuing(
        &issuing_name,
        &issuing.public,
        &root_cert,
        &root_signer,
        public_url,
        not_before,
    )?;

    let ocsp = NewKey::generate(&ca.ocsp_key, "OCSP responder", ca.ocsp_key_type)?;
    let ocsp_cert = issue_ocsp_responder(
        &ocsp.public,
        &issuing_cert,
        &issuing.signer,
        ca.issuing_key_type,
        not_before,
        chrono::Duration::days(i64::from(ca.ocsp_validity_days)),
    )?;

    let digital_id_key = generate_key(KeyType::EcP256)?;

    write_key(&files.root_key, &root_key)?;
    write_cert(&files.root_cert, &root_cert)?;
    issuing.write(&files.issuing_key)?;
    write_cert(&files.issuing_cert, &issuing_cert)?;
    ocsp.write(&files.ocsp_key)?;
    write_cert(&files.ocsp_cert, &ocsp_cert)?;
    write_key(&files.digital_id_key, &digital_id_key)?;
    write_new(
        &files.digital_id_pub,
        &digital_id_key.public_key_to_pem()?,
        0o644,
    )?;
    Ok(())
}

/// A CA key made by `init`: in memory until written, or already inside its token.
struct NewKey {
    signer: SigningKey,
    public: PKey<Public>,
}

impl NewKey {
    /// Generate a key of `key_type` where `config` says keys live: in memory (written by
    /// [`NewKey::write`]) or inside the PKCS#11 token.
    fn generate(config: &KeyConfig, what: &str, key_type: KeyType) -> Result<NewKey, CaError> {
        match Pkcs11Location::from_config(what, config)? {
            Some(location) => {
                let public = pkcs11::generate(&location, key_type)?;
                let key = Pkcs11Key::open(location, key_type)?;
                Ok(NewKey {
                    signer: SigningKey::Pkcs11(Arc::new(key)),
                    public,
                })
            }
            None => {
                let key = generate_key(key_type)?;
                let public = PKey::public_key_from_der(&key.public_key_to_der()?)?;
                Ok(NewKey {
                    signer: SigningKey::File {
                        key,
                        path: std::path::PathBuf::new(),
                    },
                    public,
                })
            }
        }
    }

    /// Write a file key to `path`; a token key stays where it is.
    fn write(&self, path: &Path) -> Result<(), CaError> {
        match &self.signer {
            SigningKey::File { key, .. } => write_key(path, key),
            SigningKey::Pkcs11(_) => Ok(()),
        }
    }
}

/// Generate a fresh key pair of `key_type`.
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
    }
}

fn write_key(path: &Path, key: &PKey<Private>) -> Result<(), CaError> {
    write_new(path, &key.private_key_to_pem_pkcs8()?, 0o600)
}

fn write_cert(path: &Path, cert: &X509) -> Result<(), CaError> {
    write_new(path, &cert.to_pem()?, 0o644)
}

/// `C=KZ, CN=<common_name>` with the country as PrintableString and the name as UTF8String.
fn utf8_name(common_name: &str) -> Result<X509Name, CaError> {
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

fn asn1_time(t: DateTime<Utc>) -> Result<Asn1Time, CaError> {
    // OpenSSL picks UTCTime for years before 2050 and GeneralizedTime after, as RFC 5280 asks.
    Ok(Asn1Time::from_unix(t.timestamp())?)
}

fn add_years(t: DateTime<Utc>, years: i64) -> DateTime<Utc> {
    t + chrono::Duration::days(365 * years + years / 4)
}

fn base_builder<K: HasPublic>(
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

fn build_root(
    name: &X509Name,
    key: &PKey<Private>,
    not_before: DateTime<Utc>,
) -> Result<X509, CaError> {
    let not_after = add_years(not_before, ROOT_VALIDITY_YEARS);
    let mut b = base_builder(name, name, key, not_before, not_after)?;
    b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    b.sign(key, ROOT_KEY_TYPE.digest())?;
    Ok(b.build())
}

/// The issuing CA certificate for `key`, signed by the root: CA with pathlen 0, keyCertSign
/// and cRLSign, SKI/AKI, and — so that strict relying parties find revocation data for it —
/// a CRL distribution point `{public_url}/crl/root.crl` and AIA caIssuers
/// `{public_url}/ca/root.crt`.
pub fn build_issuing(
    name: &openssl::x509::X509NameRef,
    key: &PKeyRef<impl HasPublic>,
    root: &X509Ref,
    root_key: &SigningKey,
    public_url: &str,
    not_before: DateTime<Utc>,
) -> Result<X509, CaError> {
    let not_after = add_years(not_before, ISSUING_VALIDITY_YEARS);
    let mut b = base_builder(name, root.subject_name(), key, not_before, not_after)?;
    b.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(root), None))?;
    b.append_extension(ski)?;
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&b.x509v3_context(Some(root), None))?;
    b.append_extension(aki)?;
    b.append_extension(root_crl_distribution_point(public_url)?)?;
    b.append_extension(root_ca_issuers(public_url)?)?;
    root_key.sign_x509(b, ROOT_KEY_TYPE)
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

fn root_crl_distribution_point(public_url: &str) -> Result<X509Extension, CaError> {
    use x509_cert::ext::pkix::crl::dp::DistributionPoint;
    use x509_cert::ext::pkix::name::DistributionPointName;
    let dp = x509_cert::ext::pkix::CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![uri(&format!(
            "{public_url}/crl/root.crl"
        ))?])),
        reasons: None,
        crl_issuer: None,
    }]);
    from_der_extension("2.5.29.31", &dp)
}

fn root_ca_issuers(public_url: &str) -> Result<X509Extension, CaError> {
    let aia = x509_cert::ext::pkix::AuthorityInfoAccessSyntax(vec![
        x509_cert::ext::pkix::AccessDescription {
            access_method: const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.2"),
            access_location: uri(&format!("{public_url}/ca/root.crt"))?,
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
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(issuing_cert), None))?;
    b.append_extension(ski)?;
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&b.x509v3_context(Some(issuing_cert), None))?;
    b.append_extension(aki)?;
    issuing_key.sign_x509(b, issuing_key_type)
}
