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
use crate::vocab::KeyType;

/// Extended key usage: individual (natural person).
pub const OID_NCA_INDIVIDUAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.3.4.1.1");
/// Extended key usage: identified remotely through Digital ID.
pub const OID_NCA_REMOTE_DIGITAL_ID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.398.3.3.4.3.2.1");
/// Certificate policy of signing certificates.
pub const OID_POLICY_SIGN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.3.2.3");
/// Certificate policy of authentication certificates.
pub const OID_POLICY_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.3.2.4");

const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_SURNAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.4");
const OID_SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");
const OID_COUNTRY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
const OID_GIVEN_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.42");
const OID_SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_QT_CPS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.2.1");
const OID_KP_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
const OID_KP_EMAIL_PROTECTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.4");
const OID_AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
const OID_AD_CA_ISSUERS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.2");

/// End-entity certificates start this much before the moment of issuance, so a relying party
/// whose clock is a little behind accepts them.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// The issuing CA, ready to build and sign end-entity certificates.
pub struct Issuer {
    hierarchy: Arc<Hierarchy>,
    /// The issuing CA's public key, decoded once: every new signature is verified with it.
    issuer_public_key: openssl::pkey::PKey<openssl::pkey::Public>,
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
        let signature_algorithm = match issuing.key_type() {
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => AlgorithmIdentifierOwned {
                oid: OID_SHA256_WITH_RSA,
                parameters: Some(Any::null()),
            },
            KeyType::EcP256 => AlgorithmIdentifierOwned {
                oid: OID_ECDSA_SHA256,
                parameters: None,
            },
            KeyType::EcP384 => AlgorithmIdentifierOwned {
                oid: OID_ECDSA_SHA384,
                parameters: None,
            },
        };
        let id = issuing.id().to_owned();
        let issuer_public_key = issuing.certificate().x509().public_key()?;
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
        let (serial, serial_hex) = random_serial()?;
        let not_before =
            DateTime::<Utc>::from_timestamp(now.timestamp(), 0).ok_or(CaError::Time)? - BACKDATE;
        let years = i64::from(req.validity_years());
        let not_after = not_before + chrono::Duration::days(365 * years + years / 4);
        let spki = SubjectPublicKeyInfoOwned::from_der(req.spki_der())?;
        let ski = openssl::sha::sha1(spki.subject_public_key.raw_bytes()).to_vec();

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
            extensions: Some(self.extensions(req, ski)?),
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
        let mut verifier = openssl::sign::Verifier::new(
            self.hierarchy.issuing().key_type().digest(),
            &self.issuer_public_key,
        )?;
        verifier.update(tbs_der)?;
        if !verifier.verify(&signature)? {
            return Err(CaError::SignatureCheck(prepared.serial().to_owned()));
        }
        Ok(der)
    }
}
