//! Issuance of the citizen's AUTH and SIGN certificates (SPEC §2), in the crash-safe order:
//! [`Issuer::prepare`] builds the exact to-be-signed bytes (stored by the caller with the
//! reserved serial before anything is signed), [`Issuer::sign`] signs them and checks that the
//! signed certificate carries byte-identical TBS.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use der::asn1::{
    Any, BitString, Ia5String, OctetString, PrintableStringRef, SetOfVec, Utf8StringRef,
};
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::certpolicy::{PolicyInformation, PolicyQualifierInfo};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, CertificatePolicies,
    CrlDistributionPoints, ExtendedKeyUsage, FreshestCrl, KeyUsage, KeyUsages, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate as X509Certificate, TbsCertificate, Version};

use super::approved::{ApprovedRequest, PreparedCertificate, ToBeSigned};
use super::{CaError, Hierarchy};
use crate::vocab::CertificateKind;

/// Extended key usage: individual (natural person).
pub const OID_NCA_INDIVIDUAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.3.4.1.1");
/// Extended key usage: identified remotely through Digital ID.
pub const OID_NCA_REMOTE_DIGITAL_ID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.398.3.3.4.3.2.1");
/// Certificate policy of signing certificates.
pub const OID_POLICY_SIGN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.3.2.3");
/// Certificate policy of authentication certificates.
pub const OID_POLICY_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.3.2.4");
/// Certificate policy of NCA's GOST test hierarchy: its GOST issuing CA and an individual's
/// GOST SIGN certificate both carry it; our GOST SIGN certificates and GOST issuing CA too.
pub const OID_POLICY_GOST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.3.2");
/// NCA's private extension naming where the holder keeps the key (the key store type).
pub const OID_NCA_KEY_STORE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.3.5");
/// The key store type "PKCS#12 file", the value NCA's reference GOST SIGN certificate carries
/// in [`OID_NCA_KEY_STORE`].
pub const OID_NCA_KEY_STORE_PKCS12: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.398.3.3.5.1.1");

const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_SURNAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.4");
const OID_SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");
const OID_COUNTRY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
const OID_GIVEN_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.42");
const OID_QT_CPS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.2.1");
const OID_KP_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
const OID_KP_EMAIL_PROTECTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.4");
const OID_AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
const OID_AD_CA_ISSUERS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.2");

/// End-entity certificates start this much before the moment of issuance, so a relying party
/// whose clock is a little behind accepts them.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// The issuing CA's public key, decoded once: every new signature is verified with it.
enum IssuerPublicKey {
    /// An RSA or EC key, as OpenSSL reads it.
    OpenSsl(openssl::pkey::PKey<openssl::pkey::Public>),
    /// A GOST key: the certificate's SubjectPublicKeyInfo in NCA's form, DER (OpenSSL cannot
    /// read NCA's OIDs; `gost::verify` maps it).
    Gost(Vec<u8>),
}

/// The issuing CA, ready to build and sign end-entity certificates.
pub struct Issuer {
    hierarchy: Arc<Hierarchy>,
    /// The issuing CA's public key: every new signature is verified with it.
    issuer_public_key: IssuerPublicKey,
    issuer_name: Name,
    authority_key_id: Vec<u8>,
    signature_algorithm: AlgorithmIdentifierOwned,
    crl_url: String,
    delta_crl_url: String,
    ocsp_url: String,
    ca_issuers_url: String,
    cps_url: String,
    public_url: String,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("id", &self.id())
            .field("ocsp_url", &self.ocsp_url)
            .finish_non_exhaustive()
    }
}

fn ia5(s: &str) -> Result<Ia5String, CaError> {
    Ok(Ia5String::new(s)?)
}

fn uri(s: &str) -> Result<GeneralName, CaError> {
    Ok(GeneralName::UniformResourceIdentifier(ia5(s)?))
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

fn utc_time(t: DateTime<Utc>) -> Result<Time, CaError> {
    Ok(super::X509Time::new(t)
        .map_err(|_| CaError::Time)?
        .to_time()?)
}

fn rdn(oid: ObjectIdentifier, value: Any) -> Result<RelativeDistinguishedName, CaError> {
    Ok(RelativeDistinguishedName(SetOfVec::try_from(vec![
        AttributeTypeAndValue { oid, value },
    ])?))
}

fn utf8(s: &str) -> Result<Any, CaError> {
    Ok(Any::from(Utf8StringRef::new(s)?))
}

fn printable(s: &str) -> Result<Any, CaError> {
    Ok(Any::from(PrintableStringRef::new(s)?))
}

/// A 128-bit random positive serial: 16 random octets with a non-zero first octet (so the
/// value always has 16 significant octets), upper-case hex.
fn random_serial() -> Result<(SerialNumber, String), CaError> {
    let mut bytes = [0u8; 16];
    loop {
        openssl::rand::rand_bytes(&mut bytes)?;
        if bytes[0] != 0 {
            break;
        }
    }
    // SerialNumber::new wants the two's-complement encoding: prefix 0x00 when the top bit is set.
    let mut encoded = Vec::with_capacity(17);
    if bytes[0] & 0x80 != 0 {
        encoded.push(0);
    }
    encoded.extend_from_slice(&bytes);
    Ok((SerialNumber::new(&encoded)?, hex::encode_upper(bytes)))
}

impl Issuer {
    /// The issuing CA of `hierarchy`, writing `public_url`-based URLs into certificates.
    pub fn new(
        hierarchy: Arc<Hierarchy>,
        public_url: &str,
        cps_url: &str,
    ) -> Result<Issuer, CaError> {
        let issuing = hierarchy.issuing();
        let cert = X509Certificate::from_der(issuing.certificate().der())?;
        let issuer_name = cert.tbs_certificate.subject.clone();
        let authority_key_id = issuing
            .certificate()
            .x509()
            .subject_key_id()
            .map(|id| id.as_slice().to_vec())
            .ok_or(CaError::MissingSubjectKeyId)?;
        let signature_algorithm = super::signature_algorithm(issuing.key_type());
        let id = issuing.id().to_owned();
        let issuer_public_key = if issuing.key_type().is_gost() {
            IssuerPublicKey::Gost(cert.tbs_certificate.subject_public_key_info.to_der()?)
        } else {
            IssuerPublicKey::OpenSsl(issuing.certificate().x509().public_key()?)
        };
        Ok(Issuer {
            hierarchy,
            issuer_public_key,
            issuer_name,
            authority_key_id,
            signature_algorithm,
            crl_url: format!("{public_url}/crl/{id}.crl"),
            delta_crl_url: format!("{public_url}/crl/{id}-delta.crl"),
            ocsp_url: format!("{public_url}/ocsp"),
            ca_issuers_url: format!("{public_url}/ca/{id}.crt"),
            cps_url: cps_url.to_owned(),
            public_url: public_url.to_owned(),
        })
    }

    /// The hierarchy this issuing CA belongs to (its root and OCSP responder).
    pub fn hierarchy(&self) -> &Arc<Hierarchy> {
        &self.hierarchy
    }

    /// The issuing CA's id.
    pub fn id(&self) -> &str {
        self.hierarchy.issuing().id()
    }

    /// The base of the URLs it writes (`[server] public_url`), which messages link to as well.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The issuing CA's name, as its certificate encodes it.
    pub fn issuer_name(&self) -> &Name {
        &self.issuer_name
    }

    /// The issuing CA's subject key identifier (the AKI of what it signs).
    pub fn authority_key_id(&self) -> &[u8] {
        &self.authority_key_id
    }

    /// The signature algorithm of everything the issuing key signs.
    pub fn signature_algorithm(&self) -> &AlgorithmIdentifierOwned {
        &self.signature_algorithm
    }

    /// `{public_url}/crl/{id}-delta.crl`, the freshestCRL of full CRLs.
    pub fn delta_crl_url(&self) -> &str {
        &self.delta_crl_url
    }

    /// Sign a TBSCertList built by the `crl` module. (End-entity certificates go through
    /// [`Issuer::prepare`] and [`Issuer::sign`] only.)
    pub fn sign_crl(&self, tbs_cert_list: &[u8]) -> Result<Vec<u8>, CaError> {
        self.hierarchy.issuing().sign(tbs_cert_list)
    }

    /// The issuing CA certificate.
    pub fn certificate(&self) -> &super::CaCertificate {
        self.hierarchy.issuing().certificate()
    }

    /// The chain above an end-entity certificate: issuing CA then root, PEM.
    pub fn chain_pem(&self) -> Result<String, CaError> {
        let mut pem =
            String::from_utf8_lossy(&self.hierarchy.issuing().certificate().x509().to_pem()?)
                .into_owned();
        pem.push_str(&String::from_utf8_lossy(
            &self.hierarchy.root().x509().to_pem()?,
        ));
        Ok(pem)
    }

    /// Build the to-be-signed certificate for an approved request, with a fresh serial.
    pub fn prepare(
        &self,
        req: &ApprovedRequest,
        now: DateTime<Utc>,
    ) -> Result<PreparedCertificate, CaError> {
        let not_before =
            DateTime::<Utc>::from_timestamp(now.timestamp(), 0).ok_or(CaError::Time)? - BACKDATE;
        let years = i64::from(req.validity_years());
        let not_after = not_before + chrono::Duration::days(365 * years + years / 4);
        let spki = SubjectPublicKeyInfoOwned::from_der(req.spki_der())?;
        let issuer_is_gost = self.hierarchy.issuing().key_type().is_gost();
        let key_is_gost = crate::gost::oid::key_algorithm(&spki.algorithm.oid).is_some();
        let (serial, serial_hex, spki, extensions) = match (issuer_is_gost, key_is_gost) {
            (false, false) => {
                let (serial, serial_hex) = random_serial()?;
                let ski = openssl::sha::sha1(spki.subject_public_key.raw_bytes()).to_vec();
                let extensions = self.extensions(req, ski)?;
                (serial, serial_hex, spki, extensions)
            }
            (true, true) if req.kind() == CertificateKind::Sign => {
                // The key as NCA's certificates carry it, whichever form the request used.
                let spki = crate::gost::GostPublicKey::from_spki(&spki)?
                    .to_spki(crate::gost::Form::Nca)?;
                let (serial, serial_hex) = super::gost_ca::random_serial_20()?;
                let ski = super::gost_ca::key_identifier(&spki);
                let extensions = self.gost_sign_extensions(req, ski)?;
                (serial, serial_hex, spki, extensions)
            }
            (true, true) => {
                return Err(CaError::Gost(
                    "a GOST key is certified for signing only (NCA's AUTH key is RSA)".to_owned(),
                ))
            }
            (true, false) => {
                return Err(CaError::Gost(format!(
                    "the GOST issuing CA {} certifies GOST SIGN keys only",
                    self.id()
                )))
            }
            (false, true) => {
                return Err(CaError::Gost(format!(
                    "the issuing CA {} is not a GOST CA: a GOST key is certified by one",
                    self.id()
                )))
            }
        };

        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: serial,
            signature: self.signature_algorithm.clone(),
            issuer: self.issuer_name.clone(),
            validity: Validity {
                not_before: utc_time(not_before)?,
                not_after: utc_time(not_after)?,
            },
            subject: self.subject(req)?,
            subject_public_key_info: spki,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions),
        };
        let tbs_der = tbs.to_der()?;
        Ok(PreparedCertificate {
            tbs: ToBeSigned::reserved(self.id(), &serial_hex, &tbs_der),
            issuer_id: self.id().to_owned(),
            application_id: req.application_id().to_owned(),
            kind: req.kind(),
            holder_iin: req.iin().to_owned(),
            not_before,
            not_after,
            spki_sha256: req.key_identity().sha256_hex().to_owned(),
            prepared_at: now,
        })
    }

    /// `CN=<SURNAME> <NAME>, SURNAME, serialNumber=IIN…, C=KZ, GN=<patronymic>`.
    fn subject(&self, req: &ApprovedRequest) -> Result<Name, CaError> {
        let cn = format!("{} {}", req.surname(), req.given_name());
        if cn.chars().count() > 64 {
            return Err(CaError::NameTooLong);
        }
        let mut rdns = vec![
            rdn(OID_CN, utf8(&cn)?)?,
            rdn(OID_SURNAME, utf8(req.surname())?)?,
            rdn(OID_SERIAL_NUMBER, printable(&format!("IIN{}", req.iin()))?)?,
            rdn(OID_COUNTRY, printable("KZ")?)?,
        ];
        if let Some(patronymic) = req.patronymic() {
            rdns.push(rdn(OID_GIVEN_NAME, utf8(patronymic)?)?);
        }
        Ok(RdnSequence(rdns))
    }

    fn extensions(&self, req: &ApprovedRequest, ski: Vec<u8>) -> Result<Vec<Extension>, CaError> {
        use const_oid::AssociatedOid;
        let (usage, eku_first, policy) = match req.kind() {
            CertificateKind::Auth => {
                let usage = if req.key_type().is_rsa() {
                    KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment
                } else {
                    KeyUsages::DigitalSignature | KeyUsages::KeyAgreement
                };
                (usage, OID_KP_CLIENT_AUTH, OID_POLICY_AUTH)
            }
            CertificateKind::Sign => (
                KeyUsages::DigitalSignature | KeyUsages::NonRepudiation,
                OID_KP_EMAIL_PROTECTION,
                OID_POLICY_SIGN,
            ),
        };
        let distribution_point = |url: &str| -> Result<DistributionPoint, CaError> {
            Ok(DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
                reasons: None,
                crl_issuer: None,
            })
        };
        let mut exts = vec![
            extension(KeyUsage::OID, true, &KeyUsage(usage))?,
            extension(
                ExtendedKeyUsage::OID,
                false,
                &ExtendedKeyUsage(vec![
                    eku_first,
                    OID_NCA_INDIVIDUAL,
                    OID_NCA_REMOTE_DIGITAL_ID,
                ]),
            )?,
            extension(
                AuthorityKeyIdentifier::OID,
                false,
                &AuthorityKeyIdentifier {
                    key_identifier: Some(OctetString::new(self.authority_key_id.clone())?),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                },
            )?,
            extension(
                SubjectKeyIdentifier::OID,
                false,
                &SubjectKeyIdentifier(OctetString::new(ski)?),
            )?,
            extension(
                CertificatePolicies::OID,
                false,
                &CertificatePolicies(vec![PolicyInformation {
                    policy_identifier: policy,
                    policy_qualifiers: Some(vec![PolicyQualifierInfo {
                        policy_qualifier_id: OID_QT_CPS,
                        qualifier: Some(Any::from(&ia5(&self.cps_url)?)),
                    }]),
                }]),
            )?,
            extension(
                CrlDistributionPoints::OID,
                false,
                &CrlDistributionPoints(vec![distribution_point(&self.crl_url)?]),
            )?,
            extension(
                FreshestCrl::OID,
                false,
                &FreshestCrl(vec![distribution_point(&self.delta_crl_url)?]),
            )?,
            extension(
                AuthorityInfoAccessSyntax::OID,
                false,
                &AuthorityInfoAccessSyntax(vec![
                    AccessDescription {
                        access_method: OID_AD_CA_ISSUERS,
                        access_location: uri(&self.ca_issuers_url)?,
                    },
                    AccessDescription {
                        access_method: OID_AD_OCSP,
                        access_location: uri(&self.ocsp_url)?,
                    },
                ]),
            )?,
        ];
        if let Some(email) = req.email() {
            exts.push(extension(
                SubjectAltName::OID,
                false,
                &SubjectAltName(vec![GeneralName::Rfc822Name(ia5(email)?)]),
            )?);
        }
        Ok(exts)
    }

    /// The extensions of a GOST SIGN certificate, after NCA's reference certificate (the
    /// individual's GOST 2015-512 signing certificate in NCA's SDK test container
    /// `GOST512_8ff06211dc82beb00253ffa000f1de84abef454f.p12`, a copy in
    /// `tests/data/nca-gost-2015/individual_gost2015_sign.cer`), in its order: keyUsage
    /// (critical: digitalSignature, nonRepudiation, keyEncipherment), certificatePolicies
    /// ([`OID_POLICY_GOST`] with the CPS), AIA (OCSP, then caIssuers), CRL distribution point,
    /// freshestCRL, extendedKeyUsage (emailProtection, individual), subject key identifier
    /// (SHA-1 of the subjectPublicKey bits), authority key identifier (key id), and NCA's key
    /// store extension `1.2.398.3.3.5` = `SEQUENCE { 1.2.398.3.3.5.1.1 }` (a PKCS#12 file).
    /// With the subject (CN, SURNAME, SERIALNUMBER `IIN…`, C, GIVENNAME), the key in NCA's form
    /// (`1.2.398.3.10.1.1.2.2` with `{…2.2.1, 1.2.398.3.10.1.3.3}`), the signature algorithm
    /// `1.2.398.3.10.1.1.2.3.2` with NULL parameters and a 20-octet serial, as NCA's.
    ///
    /// Intended differences from NCA's certificate:
    /// - the extended key usage adds [`OID_NCA_REMOTE_DIGITAL_ID`] (the holder was identified
    ///   remotely through Digital ID), as our RSA certificates do;
    /// - a subjectAltName rfc822Name when the application gave an e-mail address (NCA's has
    ///   none), as our RSA certificates do;
    /// - the serial is 20 random octets with the top bit cleared, not the SKI with its top bit
    ///   cleared: the key is the applicant's choice, and a serial it chose would take away
    ///   the randomness that makes a collision on the to-be-signed bytes impractical;
    /// - the key store extension always says PKCS#12 file: the only GOST keys Tamga
    ///   certifies are made by `tamga-enroll` into a PKCS#12 container (NCA's value for a
    ///   token is not known here);
    /// - the URLs are ours (`/ocsp`, `/ca/<id>.crt`, `/crl/<id>.crl`, `/crl/<id>-delta.crl`).
    fn gost_sign_extensions(
        &self,
        req: &ApprovedRequest,
        ski: Vec<u8>,
    ) -> Result<Vec<Extension>, CaError> {
        use const_oid::AssociatedOid;
        let distribution_point = |url: &str| -> Result<DistributionPoint, CaError> {
            Ok(DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
                reasons: None,
                crl_issuer: None,
            })
        };
        // `SEQUENCE OF OBJECT IDENTIFIER`, as NCA's: `30 0a 06 08 2a 83 0e 03 03 05 01 01`.
        let key_store = vec![OID_NCA_KEY_STORE_PKCS12];
        let mut exts = vec![
            extension(
                KeyUsage::OID,
                true,
                &KeyUsage(
                    KeyUsages::DigitalSignature
                        | KeyUsages::NonRepudiation
                        | KeyUsages::KeyEncipherment,
                ),
            )?,
            extension(
                CertificatePolicies::OID,
                false,
                &CertificatePolicies(vec![PolicyInformation {
                    policy_identifier: OID_POLICY_GOST,
                    policy_qualifiers: Some(vec![PolicyQualifierInfo {
                        policy_qualifier_id: OID_QT_CPS,
                        qualifier: Some(Any::from(&ia5(&self.cps_url)?)),
                    }]),
                }]),
            )?,
            extension(
                AuthorityInfoAccessSyntax::OID,
                false,
                &AuthorityInfoAccessSyntax(vec![
                    AccessDescription {
                        access_method: OID_AD_OCSP,
                        access_location: uri(&self.ocsp_url)?,
                    },
                    AccessDescription {
                        access_method: OID_AD_CA_ISSUERS,
                        access_location: uri(&self.ca_issuers_url)?,
                    },
                ]),
            )?,
            extension(
                CrlDistributionPoints::OID,
                false,
                &CrlDistributionPoints(vec![distribution_point(&self.crl_url)?]),
            )?,
            extension(
                FreshestCrl::OID,
                false,
                &FreshestCrl(vec![distribution_point(&self.delta_crl_url)?]),
            )?,
            extension(
                ExtendedKeyUsage::OID,
                false,
                &ExtendedKeyUsage(vec![
                    OID_KP_EMAIL_PROTECTION,
                    OID_NCA_INDIVIDUAL,
                    OID_NCA_REMOTE_DIGITAL_ID,
                ]),
            )?,
            extension(
                SubjectKeyIdentifier::OID,
                false,
                &SubjectKeyIdentifier(OctetString::new(ski)?),
            )?,
            extension(
                AuthorityKeyIdentifier::OID,
                false,
                &AuthorityKeyIdentifier {
                    key_identifier: Some(OctetString::new(self.authority_key_id.clone())?),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                },
            )?,
            extension(OID_NCA_KEY_STORE, false, &key_store)?,
        ];
        if let Some(email) = req.email() {
            exts.push(extension(
                SubjectAltName::OID,
                false,
                &SubjectAltName(vec![GeneralName::Rfc822Name(ia5(email)?)]),
            )?);
        }
        Ok(exts)
    }

    /// Whether the issuing key can sign now (for a token key: a logged-in session is there
    /// or can be opened). Checked before an application is accepted, so that an HSM outage
    /// refuses applications instead of leaving them half-issued.
    pub fn key_ready(&self) -> Result<(), CaError> {
        self.hierarchy.issuing().signing_key().ready()
    }

    /// Sign a prepared certificate and check that what was signed is byte-for-byte the stored
    /// TBS. Returns the certificate, DER.
    pub fn sign(&self, prepared: &ToBeSigned) -> Result<Vec<u8>, CaError> {
        let tbs_der = prepared.der();
        let tbs = TbsCertificate::from_der(tbs_der)?;
        if tbs.signature != self.signature_algorithm || tbs.issuer != self.issuer_name {
            return Err(CaError::TbsMismatch(prepared.serial().to_owned()));
        }
        let signature = self.hierarchy.issuing().sign(tbs_der)?;
        let cert = X509Certificate {
            tbs_certificate: tbs,
            signature_algorithm: self.signature_algorithm.clone(),
            signature: BitString::from_bytes(&signature)?,
        };
        let der = cert.to_der()?;
        let reparsed = X509Certificate::from_der(&der)?;
        if reparsed.tbs_certificate.to_der()? != *tbs_der {
            return Err(CaError::TbsMismatch(prepared.serial().to_owned()));
        }
        // The signature must verify with the issuing certificate's key (OpenSSL, not the
        // signer: a token or key that signs wrongly is caught here).
        let verified = match (
            &self.issuer_public_key,
            self.hierarchy.issuing().key_type().digest(),
        ) {
            (IssuerPublicKey::OpenSsl(public), Some(digest)) => {
                let mut verifier = openssl::sign::Verifier::new(digest, public)?;
                verifier.update(tbs_der)?;
                verifier.verify(&signature)?
            }
            (IssuerPublicKey::Gost(spki), None) => {
                match crate::gost::verify(
                    tbs_der,
                    &self.signature_algorithm,
                    &BitString::from_bytes(&signature)?,
                    spki,
                ) {
                    Ok(()) => true,
                    Err(crate::gost::GostError::BadSignature) => false,
                    Err(e) => return Err(e.into()),
                }
            }
            _ => false,
        };
        if !verified {
            return Err(CaError::SignatureCheck(prepared.serial().to_owned()));
        }
        Ok(der)
    }
}

#[cfg(test)]
mod gost_tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;
    use crate::ca::VerifiedSubject;
    use crate::csr::SubjectKeyType;
    use crate::gost::{self, Form, KeySize, SignedArtefact};
    use crate::key_identity::KeyIdentity;

    /// NCA's reference GOST SIGN certificate (the one in NCA's SDK test container).
    const NCA_SIGN: &[u8] =
        include_bytes!("../../tests/data/nca-gost-2015/individual_gost2015_sign.cer");

    fn extension_of(cert: &X509Certificate, oid: ObjectIdentifier) -> &Extension {
        cert.tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == oid)
            .unwrap_or_else(|| panic!("no extension {oid}"))
    }

    fn decoded<'a, T: Decode<'a>>(cert: &'a X509Certificate, oid: ObjectIdentifier) -> T {
        T::from_der(extension_of(cert, oid).extn_value.as_bytes()).unwrap()
    }

    /// A GOST SIGN certificate issued through `prepare`/`sign` for a key given in the TC26
    /// form (as the engine and `openssl req` write it), and the issuing CA certificate.
    fn issue_gost_sign(test: &str) -> Option<(Vec<u8>, Vec<u8>, Vec<u8>)> {
        let (_dir, _, hierarchy) = crate::ca::gost_ca::test_hierarchy(test)?;
        let hierarchy = Arc::new(hierarchy);
        let issuer = Issuer::new(
            Arc::clone(&hierarchy),
            "http://ca.test",
            "http://ca.test/cps",
        )
        .unwrap();
        let key = gost::generate(KeySize::Bits512).unwrap();
        let tc26 = key.public_key_to_der().unwrap();
        let request = ApprovedRequest::for_test(
            "application-1",
            CertificateKind::Sign,
            VerifiedSubject::new("900101300007", "ТЕСТОВ", "ТЕСТ", Some("ТЕСТОВИЧ"), None),
            KeyIdentity::for_test(&tc26),
            SubjectKeyType::EcP256,
            1,
        );
        let prepared = issuer.prepare(&request, Utc::now()).unwrap();
        let der = issuer.sign(prepared.tbs()).unwrap();
        let nca_key = gost::spki_to_nca(&tc26).unwrap();
        Some((
            der,
            hierarchy.issuing().certificate().der().to_vec(),
            nca_key,
        ))
    }

    /// A GOST SIGN certificate has the profile of NCA's reference certificate: the same
    /// signature algorithm and key encoding (NCA's OIDs, NULL parameters), the same subject
    /// attributes, extensions in the same order with the same criticality and the same values
    /// but for the intended differences (`Issuer::gost_sign_extensions`); it verifies with the
    /// GOST issuing CA, and a flipped byte does not.
    #[test]
    fn a_gost_sign_certificate_follows_ncas_reference_certificate() {
        let Some((der, ca_der, nca_key)) =
            issue_gost_sign("a_gost_sign_certificate_follows_ncas_reference_certificate")
        else {
            return;
        };
        let ours = X509Certificate::from_der(&der).unwrap();
        let theirs = X509Certificate::from_der(NCA_SIGN).unwrap();
        let (o, t) = (&ours.tbs_certificate, &theirs.tbs_certificate);

        // Algorithms and encodings, byte for byte.
        assert_eq!(o.signature.to_der().unwrap(), t.signature.to_der().unwrap());
        assert_eq!(
            ours.signature_algorithm.to_der().unwrap(),
            theirs.signature_algorithm.to_der().unwrap()
        );
        assert_eq!(
            o.subject_public_key_info.algorithm.to_der().unwrap(),
            t.subject_public_key_info.algorithm.to_der().unwrap()
        );
        assert_eq!(o.subject_public_key_info.to_der().unwrap(), nca_key);
        assert_eq!(o.version, t.version);
        assert_eq!(ours.signature.raw_bytes().len(), 128);
        // The serial's form: 20 octets, positive (the top bit clear).
        assert_eq!(
            o.serial_number.as_bytes().len(),
            t.serial_number.as_bytes().len()
        );
        assert!(o.serial_number.as_bytes()[0] < 0x80);
        // UTCTime validity, as NCA's.
        assert!(matches!(o.validity.not_before, Time::UtcTime(_)));
        assert!(matches!(t.validity.not_before, Time::UtcTime(_)));
        // The subject's attribute types and value types in NCA's order.
        let shape = |name: &Name| -> Vec<(ObjectIdentifier, der::Tag)> {
            name.0
                .iter()
                .flat_map(|rdn| rdn.0.iter())
                .map(|atv| (atv.oid, der::Tagged::tag(&atv.value)))
                .collect()
        };
        assert_eq!(shape(&o.subject), shape(&t.subject));
        assert_eq!(
            o.issuer,
            X509Certificate::from_der(&ca_der)
                .unwrap()
                .tbs_certificate
                .subject
        );

        // Extensions: the same, in the same order, with the same criticality (no e-mail was
        // given, so no subjectAltName).
        let listed = |tbs: &TbsCertificate| -> Vec<(ObjectIdentifier, bool)> {
            tbs.extensions
                .iter()
                .flatten()
                .map(|e| (e.extn_id, e.critical))
                .collect()
        };
        assert_eq!(listed(o), listed(t));
        use const_oid::AssociatedOid;
        for same in [KeyUsage::OID, OID_NCA_KEY_STORE] {
            assert_eq!(
                extension_of(&ours, same).extn_value,
                extension_of(&theirs, same).extn_value,
                "{same}"
            );
        }
        let policies = |c: &X509Certificate| -> Vec<(ObjectIdentifier, Vec<ObjectIdentifier>)> {
            let p: CertificatePolicies = decoded(c, CertificatePolicies::OID);
            p.0.iter()
                .map(|i| {
                    let qualifiers = i.policy_qualifiers.iter().flatten();
                    (
                        i.policy_identifier,
                        qualifiers.map(|q| q.policy_qualifier_id).collect(),
                    )
                })
                .collect()
        };
        assert_eq!(policies(&ours), policies(&theirs));
        assert_eq!(policies(&ours)[0].0, OID_POLICY_GOST);
        let methods = |c: &X509Certificate| -> Vec<ObjectIdentifier> {
            let aia: AuthorityInfoAccessSyntax = decoded(c, AuthorityInfoAccessSyntax::OID);
            aia.0.iter().map(|a| a.access_method).collect()
        };
        assert_eq!(methods(&ours), methods(&theirs));
        // EKU: NCA's, and the Digital ID identification (an intended difference).
        let ours_eku: ExtendedKeyUsage = decoded(&ours, ExtendedKeyUsage::OID);
        let theirs_eku: ExtendedKeyUsage = decoded(&theirs, ExtendedKeyUsage::OID);
        let mut expected = theirs_eku.0.clone();
        expected.push(OID_NCA_REMOTE_DIGITAL_ID);
        assert_eq!(ours_eku.0, expected);
        // SKI: the SHA-1 of the subjectPublicKey bits for both; AKI: the key id alone, the
        // issuing CA's SKI.
        for c in [&ours, &theirs] {
            let ski: SubjectKeyIdentifier = decoded(c, SubjectKeyIdentifier::OID);
            let bits = c
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes();
            assert_eq!(ski.0.as_bytes(), openssl::sha::sha1(bits).as_slice());
            let aki: AuthorityKeyIdentifier = decoded(c, AuthorityKeyIdentifier::OID);
            assert!(
                aki.authority_cert_issuer.is_none() && aki.authority_cert_serial_number.is_none()
            );
        }
        let ca = X509Certificate::from_der(&ca_der).unwrap();
        let ca_ski: SubjectKeyIdentifier = decoded(&ca, SubjectKeyIdentifier::OID);
        let aki: AuthorityKeyIdentifier = decoded(&ours, AuthorityKeyIdentifier::OID);
        assert_eq!(aki.key_identifier, Some(ca_ski.0));

        // It verifies with the issuing CA (and NCA's with NCA's CA, by the same code in
        // `gost`'s tests); a flipped byte of its TBS or signature does not.
        let artefact = SignedArtefact::certificate(&der).unwrap();
        artefact.verify_by(&ca_der).unwrap();
        assert_eq!(
            artefact.form_and_size().unwrap(),
            (Form::Nca, KeySize::Bits512)
        );
        let ca_key = gost::subject_public_key_info(&ca_der).unwrap();
        let mut tbs = artefact.tbs().to_vec();
        let middle = tbs.len() / 2;
        tbs[middle] ^= 1;
        assert!(gost::verify(&tbs, artefact.algorithm(), artefact.signature(), &ca_key).is_err());
        let mut signature = artefact.signature().raw_bytes().to_vec();
        signature[0] ^= 1;
        let signature = BitString::from_bytes(&signature).unwrap();
        assert!(gost::verify(artefact.tbs(), artefact.algorithm(), &signature, &ca_key).is_err());
    }

    /// The GOST issuing CA refuses what is not a GOST SIGN key: a GOST key for AUTH (NCA's
    /// AUTH key is RSA), an RSA key.
    #[test]
    fn the_gost_issuer_certifies_gost_sign_keys_only() {
        let Some((_dir, _, hierarchy)) =
            crate::ca::gost_ca::test_hierarchy("the_gost_issuer_certifies_gost_sign_keys_only")
        else {
            return;
        };
        let issuer =
            Issuer::new(Arc::new(hierarchy), "http://ca.test", "http://ca.test/cps").unwrap();
        let key = gost::generate(KeySize::Bits512).unwrap();
        let gost_key = KeyIdentity::for_test(&key.public_key_to_der().unwrap());
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let rsa = openssl::pkey::PKey::from_rsa(rsa).unwrap();
        let rsa_key = KeyIdentity::for_test(&rsa.public_key_to_der().unwrap());
        let subject = || VerifiedSubject::new("900101300007", "ТЕСТОВ", "ТЕСТ", None, None);
        for (kind, key) in [
            (CertificateKind::Auth, &gost_key),
            (CertificateKind::Sign, &rsa_key),
        ] {
            let request = ApprovedRequest::for_test(
                "a",
                kind,
                subject(),
                key.clone(),
                SubjectKeyType::Rsa(2048),
                1,
            );
            let outcome = issuer.prepare(&request, Utc::now());
            assert!(
                matches!(outcome, Err(CaError::Gost(_))),
                "{kind:?}: {outcome:?}"
            );
        }
        // The one it takes.
        let request = ApprovedRequest::for_test(
            "a",
            CertificateKind::Sign,
            subject(),
            gost_key,
            SubjectKeyType::Rsa(2048),
            1,
        );
        assert!(issuer.prepare(&request, Utc::now()).is_ok());
    }
}
