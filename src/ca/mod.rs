//! The certification authority: the CA hierarchy this instance operates, its keys, and the
//! signing of certificates the RA approved ([`Issuer`]).
//!
//! Owns: loading and checking the root certificate, the issuing CA certificate and key, the
//! delegated OCSP responder certificate and key, and the development Digital ID key pair;
//! the one signing abstraction [`SigningKey`] (a key file, or a PKCS#11 token object through
//! [`pkcs11`]) that certificates, CRLs and OCSP responses all go through; the building of CA
//! certificates (`build`: keys, the issuing CA under the root, the OCSP responder; `gost_ca`:
//! the same for GOST CAs in NCA's form, built as DER and signed by `gost::sign`, and a whole
//! development GOST hierarchy, [`init_gost_hierarchy`]); the steps
//! of the production key ceremony (`ceremony`) and the development root's marker; what it
//! signs and returns ([`ApprovedRequest`], [`PreparedCertificate`], [`ToBeSigned`]), its own
//! types, not the RA's or the store's rows. Must never: sign anything that did not come
//! through an [`ApprovedRequest`], import the RA or development code (`crate::dev`), write a
//! private key with permissions wider than 0600, read a token key's value, or overwrite an
//! existing hierarchy unless explicitly told to.

mod approved;
pub(crate) mod build;
pub mod ceremony;
mod files;
pub mod gost_ca;
mod issue;
pub mod issuers;
pub mod pkcs11;
mod revocation;
mod time;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openssl::pkey::{PKey, Private, Public};
use openssl::sign::{Signer, Verifier};
use openssl::x509::X509;

use crate::vocab::KeyType;
pub(crate) use approved::VerifiedSubject;
pub use approved::{ApprovedRequest, PreparedCertificate, ToBeSigned};
pub use build::OID_POLICY_CA;
pub use files::HierarchyFiles;
pub(crate) use files::{read_cert, read_private_key, write_new};
pub use gost_ca::{init_gost_hierarchy, GostUrls};
pub use issue::{
    Issuer, OID_NCA_INDIVIDUAL, OID_NCA_KEY_STORE, OID_NCA_KEY_STORE_PKCS12,
    OID_NCA_REMOTE_DIGITAL_ID, OID_POLICY_AUTH, OID_POLICY_GOST, OID_POLICY_SIGN,
};
pub use issuers::Issuers;
pub use revocation::{Serial, SerialError};
pub use time::{carried_invalidity_date, TimeOutOfRange, X509Time};

use crate::config::{CaConfig, KeyConfig, KeyKind, Mode};

/// OID of id-kp-OCSPSigning.
const OID_KP_OCSP_SIGNING: &str = "1.3.6.1.5.5.7.3.9";

/// What went wrong with the CA hierarchy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// A hierarchy file is missing or unreadable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds something that is not the expected key or certificate.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The hierarchy exists and `--force` was not given.
    #[error(
        "a CA hierarchy already exists in {0}; pass --force to replace it (its keys are lost)"
    )]
    AlreadyExists(PathBuf),
    /// Some hierarchy files exist and others do not.
    #[error("incomplete CA hierarchy in {dir}: missing {missing}")]
    Incomplete {
        /// The directory.
        dir: PathBuf,
        /// Comma-separated missing file names.
        missing: String,
    },
    /// An OpenSSL operation failed.
    #[error("cryptographic operation failed: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    /// An ASN.1 encoding failed.
    #[error("DER encoding failed: {0}")]
    Der(#[from] der::Error),
    /// A time could not be encoded.
    #[error("time out of the encodable range")]
    Time,
    /// The issuing certificate has no subject key identifier (needed for AKI).
    #[error("the issuing CA certificate has no subject key identifier")]
    MissingSubjectKeyId,
    /// The holder's name does not fit in a certificate's CN (64 characters).
    #[error("the holder's name is longer than the 64 characters a common name allows")]
    NameTooLong,
    /// Resuming issuance found a row that is not reserved.
    #[error("certificate {0} is not reserved")]
    NotReserved(String),
    /// The signed certificate does not carry the stored TBS, or the TBS is not ours.
    #[error("certificate {0}: the signed TBS differs from the stored TBS")]
    TbsMismatch(String),
    /// The signature made does not verify with the issuing certificate.
    #[error("certificate {0}: the new signature does not verify")]
    SignatureCheck(String),
    /// The key's token (HSM) cannot be reached now; signing may work again later.
    #[error("signing key unavailable: {0}")]
    KeyUnavailable(String),
    /// A PKCS#11 operation was refused (wrong PIN, ambiguous label, generation failed).
    #[error("PKCS#11: {0}")]
    Pkcs11(String),
    /// A GOST key, certificate or signature was refused, or GOST work was asked of a path
    /// that cannot do it (what and why).
    #[error("GOST: {0}")]
    Gost(String),
}

impl From<crate::gost::GostError> for CaError {
    fn from(e: crate::gost::GostError) -> Self {
        use crate::gost::GostError;
        match e {
            // Like a token that went away: the key cannot sign in this process now.
            GostError::EngineUnavailable(why) => {
                CaError::KeyUnavailable(format!("GOST is unavailable: {why}"))
            }
            GostError::OpenSsl(e) => CaError::Crypto(e),
            GostError::Der(e) => CaError::Der(e),
            e => CaError::Gost(e.to_string()),
        }
    }
}

/// A CA certificate, parsed and in its DER encoding.
#[derive(Clone)]
pub struct CaCertificate {
    cert: X509,
    der: Vec<u8>,
}

impl CaCertificate {
    fn new(cert: X509) -> Result<CaCertificate, CaError> {
        let der = cert.to_der()?;
        Ok(CaCertificate { cert, der })
    }
    /// The parsed certificate.
    pub fn x509(&self) -> &X509 {
        &self.cert
    }
    /// The DER encoding, as served at `/ca/…`.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Whether the CRL `crl_der` (DER) is signed by this certificate's key: OpenSSL for RSA
    /// and EC, `gost` for a GOST key (which OpenSSL cannot read in NCA's form). Any failure
    /// (a CRL that does not parse, a key of another algorithm) is a no.
    pub fn signed_crl(&self, crl_der: &[u8]) -> bool {
        match gost_certificate_key(self) {
            Ok(Some(spki)) => crate::gost::SignedArtefact::crl(crl_der)
                .and_then(|crl| crl.verify(&spki))
                .is_ok(),
            Ok(None) => {
                let verified = openssl::x509::X509Crl::from_der(crl_der)
                    .and_then(|crl| {
                        let key = self.cert.public_key()?;
                        crl.verify(&key)
                    })
                    .unwrap_or(false);
                drop(openssl::error::ErrorStack::get());
                verified
            }
            Err(_) => false,
        }
    }

    /// Whether `signature` over `data` verifies with this certificate's key, as
    /// [`signature_algorithm`] of its type makes them (GOST: NCA's form, through `gost`).
    /// Any failure (a key of no type Tamga signs with, an unreadable signature) is a no.
    pub fn verifies_signature(&self, data: &[u8], signature: &[u8]) -> bool {
        let Some(key_type) = self.key_type() else {
            return false;
        };
        let verified = match key_type.digest() {
            Some(digest) => self
                .cert
                .public_key()
                .and_then(|public| {
                    let mut verifier = Verifier::new(digest, &public)?;
                    verifier.update(data)?;
                    verifier.verify(signature)
                })
                .unwrap_or(false),
            None => crate::gost::subject_public_key_info(&self.der)
                .and_then(|spki| {
                    let bits = der::asn1::BitString::from_bytes(signature)?;
                    crate::gost::verify(data, &signature_algorithm(key_type), &bits, &spki)
                })
                .is_ok(),
        };
        drop(openssl::error::ErrorStack::get());
        verified
    }

    /// The type of this certificate's key, if it is one Tamga signs with (GOST: in NCA's
    /// form only).
    pub fn key_type(&self) -> Option<KeyType> {
        match gost_certificate_key(self) {
            Ok(Some(_)) => Some(KeyType::Gost2015_512),
            Ok(None) => self
                .cert
                .public_key()
                .ok()
                .and_then(|k| KeyType::of(&k))
                .filter(|t| !t.is_gost()),
            Err(_) => None,
        }
    }
}

impl fmt::Debug for CaCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaCertificate")
            .field("subject", &self.cert.subject_name())
            .finish()
    }
}

/// A CA private key: a PEM file read into memory (development), or an object in a PKCS#11
/// token that signs without letting the key out. Certificates, CRLs and OCSP responses are
/// all signed through [`SigningKey::sign`].
#[derive(Clone)]
pub enum SigningKey {
    /// A key read from a PEM file.
    File {
        /// The key.
        key: PKey<Private>,
        /// Its file.
        path: PathBuf,
    },
    /// A key in a PKCS#11 token.
    Pkcs11(Arc<pkcs11::Pkcs11Key>),
}

impl SigningKey {
    /// Sign `data` with the digest `key_type` calls for; DER ECDSA signatures for EC keys;
    /// for GOST keys NCA's form (`gost::sign` with `Form::Nca`: Streebog-512, the engine's
    /// signature bytes reversed), what X.509 carries under [`signature_algorithm`].
    pub fn sign(&self, key_type: KeyType, data: &[u8]) -> Result<Vec<u8>, CaError> {
        match self {
            SigningKey::File { key, .. } => match key_type.digest() {
                Some(digest) => {
                    let mut signer = Signer::new(digest, key)?;
                    signer.update(data)?;
                    Ok(signer.sign_to_vec()?)
                }
                None => Ok(crate::gost::sign(key, data, crate::gost::Form::Nca)?),
            },
            SigningKey::Pkcs11(key) => key.sign(data),
        }
    }

    /// Whether the key can sign now: always for a file; for a token key, a logged-in session
    /// is pooled or can be opened.
    pub fn ready(&self) -> Result<(), CaError> {
        match self {
            SigningKey::File { .. } => Ok(()),
            SigningKey::Pkcs11(key) => key.ready(),
        }
    }

    /// Where the key lives, for operators (`tamga ca show`, logs). Never the key itself.
    pub fn location(&self) -> String {
        match self {
            SigningKey::File { path, .. } => format!("file {}", path.display()),
            SigningKey::Pkcs11(key) => key.location().describe(),
        }
    }

    /// Sign a certificate built by OpenSSL: directly with a file key; for a token key, the
    /// builder signs with a throw-away key of the same algorithm and the TBS is then signed
    /// again through the token (the signature AlgorithmIdentifier is the same for both).
    pub(crate) fn sign_x509(
        &self,
        mut builder: openssl::x509::X509Builder,
        key_type: KeyType,
    ) -> Result<X509, CaError> {
        use der::{Decode, Encode};
        let Some(digest) = key_type.digest() else {
            return Err(CaError::Gost(
                "OpenSSL's certificate builder cannot write NCA's GOST form: a GOST CA \
                 certificate is built as DER (ca::gost_ca)"
                    .to_owned(),
            ));
        };
        match self {
            SigningKey::File { key, .. } => {
                builder.sign(key, digest)?;
                Ok(builder.build())
            }
            SigningKey::Pkcs11(_) => {
                let placeholder = build::generate_key(if key_type.is_rsa() {
                    KeyType::Rsa2048
                } else {
                    key_type
                })?;
                builder.sign(&placeholder, digest)?;
                let mut cert = x509_cert::Certificate::from_der(&builder.build().to_der()?)?;
                let tbs = cert.tbs_certificate.to_der()?;
                let signature = self.sign(key_type, &tbs)?;
                cert.signature = der::asn1::BitString::from_bytes(&signature)?;
                Ok(X509::from_der(&cert.to_der()?)?)
            }
        }
    }
}

/// A private key the CA signs with, together with its certificate. The key is never printed.
#[derive(Clone)]
pub struct IssuerKey {
    id: String,
    cert: CaCertificate,
    cert_path: PathBuf,
    key: SigningKey,
    key_type: KeyType,
}

impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerKey")
            .field("id", &self.id)
            .field("key_type", &self.key_type)
            .field("key", &self.key.location())
            .finish_non_exhaustive()
    }
}

impl IssuerKey {
    /// Short id used in URLs.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The certificate of this key.
    pub fn certificate(&self) -> &CaCertificate {
        &self.cert
    }
    /// The algorithm of this key.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }
    /// Where the key lives.
    pub fn key_location(&self) -> String {
        self.key.location()
    }
    /// The private key (file or token).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The AlgorithmIdentifier of this key's signatures (sha256WithRSAEncryption,
    /// ecdsa-with-SHA256, ecdsa-with-SHA384, or NCA's GOST 2015-512 with NULL parameters).
    pub fn signature_algorithm(&self) -> spki::AlgorithmIdentifierOwned {
        signature_algorithm(self.key_type)
    }

    /// SHA-1 of the certificate's subjectPublicKey (the OCSP ResponderID byKey and the
    /// issuerKeyHash of CertIDs use this; other digests via [`IssuerKey::public_key_bits`]).
    pub fn public_key_bits(&self) -> Result<Vec<u8>, CaError> {
        use der::Decode;
        let cert = x509_cert::Certificate::from_der(self.cert.der())?;
        Ok(cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
            .to_vec())
    }

    /// A new certificate for this (OCSP responder) key, signed by `issuing`, valid from `now`
    /// for `validity`; written over the certificate file, atomically. Returns the renewed key.
    pub fn renew_ocsp_responder(
        &self,
        issuing: &IssuerKey,
        validity: chrono::Duration,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<IssuerKey, CaError> {
        let cert_path = &self.cert_path;
        let not_before = now - chrono::Duration::minutes(5);
        let cert = match (&issuing.key, issuing.key_type) {
            (SigningKey::File { key, .. }, KeyType::Gost2015_512) => {
                let der = gost_ca::issue_ocsp_responder(
                    &crate::gost::subject_public_key_info(self.cert.der())?,
                    &gost_ca::GostSigner {
                        cert_der: issuing.cert.der(),
                        key,
                    },
                    not_before,
                    validity,
                )?;
                X509::from_der(&der)?
            }
            _ => {
                let public = self.cert.cert.public_key()?;
                build::issue_ocsp_responder(
                    &public,
                    issuing.cert.x509(),
                    &issuing.key,
                    issuing.key_type,
                    not_before,
                    validity,
                )?
            }
        };
        let tmp = cert_path.with_extension("pem.tmp");
        let _ = std::fs::remove_file(&tmp);
        files::write_new(&tmp, &cert.to_pem()?, 0o644)?;
        std::fs::rename(&tmp, cert_path).map_err(|source| CaError::Write {
            path: cert_path.clone(),
            source,
        })?;
        Ok(IssuerKey {
            id: self.id.clone(),
            cert: CaCertificate::new(cert)?,
            cert_path: cert_path.clone(),
            key: self.key.clone(),
            key_type: self.key_type,
        })
    }

    /// Sign `data` with this key, with the digest its type calls for (GOST: NCA's form).
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, CaError> {
        self.key.sign(self.key_type, data)
    }

    /// Whether `signature` (as [`IssuerKey::sign`] makes it) over `data` verifies with the
    /// key of this certificate: OpenSSL for RSA and EC, `gost::verify` for GOST (the
    /// certificate's key in NCA's form, OpenSSL cannot read it).
    pub fn verifies(&self, data: &[u8], signature: &[u8]) -> Result<bool, CaError> {
        match self.key_type.digest() {
            Some(digest) => {
                let public = self.cert.cert.public_key()?;
                let mut verifier = Verifier::new(digest, &public)?;
                verifier.update(data)?;
                Ok(verifier.verify(signature)?)
            }
            None => {
                let spki = crate::gost::subject_public_key_info(self.cert.der())?;
                match crate::gost::verify(
                    data,
                    &self.signature_algorithm(),
                    &der::asn1::BitString::from_bytes(signature)?,
                    &spki,
                ) {
                    Ok(()) => Ok(true),
                    Err(crate::gost::GostError::BadSignature) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Prove the key works: sign a fresh random challenge and verify the signature against
    /// the public key in the certificate. Used by `/readyz`.
    pub fn self_test(&self) -> Result<(), CaError> {
        let mut challenge = [0u8; 32];
        openssl::rand::rand_bytes(&mut challenge)?;
        let signature = self.sign(&challenge)?;
        if self.verifies(&challenge, &signature)? {
            Ok(())
        } else {
            Err(CaError::Invalid {
                path: self.cert_path.clone(),
                message: format!(
                    "the key ({}) makes signatures that do not verify with this certificate",
                    self.key.location()
                ),
            })
        }
    }
}

/// The AlgorithmIdentifier of signatures made by a key of `key_type`: for GOST NCA's
/// (`1.2.398.3.10.1.1.2.3.2`, Streebog-512 with GOST R 34.10-2015 512-bit, NULL parameters, as
/// in NCA's certificates, CRLs and OCSP responses).
pub fn signature_algorithm(key_type: KeyType) -> spki::AlgorithmIdentifierOwned {
    let (oid, parameters) = match key_type {
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            ("1.2.840.113549.1.1.11", Some(der::asn1::Any::null()))
        }
        KeyType::EcP256 => ("1.2.840.10045.4.3.2", None),
        KeyType::EcP384 => ("1.2.840.10045.4.3.3", None),
        KeyType::Gost2015_512 => {
            return spki::AlgorithmIdentifierOwned {
                oid: crate::gost::oid::NCA_SIGNATURE_512,
                parameters: Some(der::asn1::Any::null()),
            }
        }
    };
    spki::AlgorithmIdentifierOwned {
        oid: const_oid::ObjectIdentifier::new_unwrap(oid),
        parameters,
    }
}

/// The loaded CA hierarchy of this instance.
#[derive(Debug)]
pub struct Hierarchy {
    root_id: String,
    root: CaCertificate,
    root_key: Option<IssuerKey>,
    issuing: IssuerKey,
    ocsp: IssuerKey,
    digital_id_dev: Option<PKey<Public>>,
}

impl Hierarchy {
    /// Load and cross-check every file of the hierarchy in `ca.dir`.
    ///
    /// Checks that the issuing certificate is signed by the root, the OCSP responder
    /// certificate by the issuing CA and carries id-kp-OCSPSigning, and that each private key
    /// matches its certificate. In dev mode the development Digital ID key is loaded too.
    pub fn load(ca: &CaConfig, mode: Mode) -> Result<Hierarchy, CaError> {
        let files = HierarchyFiles::for_config(ca);
        let root = CaCertificate::new(files::read_cert(&files.root_cert)?)?;
        let issuing = load_key_pair(
            &ca.issuer_id,
            &files.issuing_cert,
            &files.issuing_key,
            &ca.issuing_key,
        )?;
        let ocsp = load_key_pair(
            &format!("ocsp_{}", ca.issuer_id),
            &files.ocsp_cert,
            &files.ocsp_key,
            &ca.ocsp_key,
        )?;
        signed_by(&issuing.cert, &root, &files.issuing_cert)?;
        signed_by(&ocsp.cert, &issuing.cert, &files.ocsp_cert)?;
        if !has_ocsp_signing_eku(ocsp.cert.x509()) {
            return Err(CaError::Invalid {
                path: files.ocsp_cert.clone(),
                message: "the OCSP responder certificate lacks id-kp-OCSPSigning".to_owned(),
            });
        }
        // The root key is here only in development and on the offline root machine (in a
        // file, or in the token `[ca.root_key]` names); the online server has none.
        let root_key = if ca.root_key.kind == KeyKind::Pkcs11 || files.root_key.exists() {
            Some(load_key_pair(
                &ca.root_id,
                &files.root_cert,
                &files.root_key,
                &ca.root_key,
            )?)
        } else {
            None
        };
        let digital_id_dev = match mode {
            Mode::Dev => Some(files::read_public_key(&files.digital_id_pub)?),
            Mode::Production => None,
        };
        Ok(Hierarchy {
            root_id: ca.root_id.clone(),
            root,
            root_key,
            issuing,
            ocsp,
            digital_id_dev,
        })
    }

    /// The id of the root (`root` for `[ca]`'s issuer): its files, `/ca/<id>.crt` and
    /// `/crl/<id>.crl`.
    pub fn root_id(&self) -> &str {
        &self.root_id
    }
    /// The root CA certificate.
    pub fn root(&self) -> &CaCertificate {
        &self.root
    }
    /// The root key, where this machine holds it (development, or the offline root machine).
    pub fn root_key(&self) -> Option<&IssuerKey> {
        self.root_key.as_ref()
    }

    /// A new issuing CA certificate for the same key, built as `ca init` builds one (the root
    /// CRL distribution point and caIssuers of `public_url`, the certificate policies with
    /// `cps_url`), signed by the root key; the old certificate is kept as
    /// `<issuer_id>.pem.<serial>.old`. Certificates already issued still chain: the name and
    /// key identifier do not change.
    pub fn reissue_issuing(
        &self,
        ca: &CaConfig,
        public_url: &str,
        cps_url: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<X509, CaError> {
        let files = HierarchyFiles::for_config(ca);
        let root = self.root_key.as_ref().ok_or_else(|| CaError::Invalid {
            path: files.root_key.clone(),
            message: "the root key is needed to reissue the issuing CA certificate".to_owned(),
        })?;
        let old = self.issuing.cert.x509();
        let not_before = now - chrono::Duration::hours(1);
        let not_after = build::add_years(not_before, build::ISSUING_VALIDITY_YEARS);
        let cert = match (&root.key, root.key_type) {
            (SigningKey::File { key, .. }, KeyType::Gost2015_512) => {
                use der::Decode;
                let old_der = x509_cert::Certificate::from_der(self.issuing.cert.der())?;
                let root_id = self.root_id.clone();
                let der = gost_ca::build_issuing(
                    old_der.tbs_certificate.subject,
                    &crate::gost::subject_public_key_info(self.issuing.cert.der())?,
                    &gost_ca::GostSigner {
                        cert_der: root.cert.der(),
                        key,
                    },
                    &gost_ca::GostUrls {
                        public_url,
                        cps_url,
                        root_id: &root_id,
                    },
                    not_before,
                    not_after,
                )?;
                X509::from_der(&der)?
            }
            _ => build::build_issuing(
                old.subject_name(),
                &*old.public_key()?,
                &build::RootSigner {
                    cert: root.cert.x509(),
                    key: &root.key,
                    key_type: root.key_type,
                },
                &build::IssuingUrls {
                    public_url,
                    cps_url,
                    root_id: &self.root_id,
                },
                not_before,
                not_after,
            )?,
        };
        let serial = old
            .serial_number()
            .to_bn()
            .and_then(|b| b.to_hex_str().map(|s| s.to_string()))?;
        let backup = files
            .issuing_cert
            .with_extension(format!("pem.{serial}.old"));
        std::fs::copy(&files.issuing_cert, &backup).map_err(|source| CaError::Write {
            path: backup.clone(),
            source,
        })?;
        let tmp = files.issuing_cert.with_extension("pem.tmp");
        let _ = std::fs::remove_file(&tmp);
        files::write_new(&tmp, &cert.to_pem()?, 0o644)?;
        std::fs::rename(&tmp, &files.issuing_cert).map_err(|source| CaError::Write {
            path: files.issuing_cert.clone(),
            source,
        })?;
        Ok(cert)
    }

    /// The issuing CA.
    pub fn issuing(&self) -> &IssuerKey {
        &self.issuing
    }
    /// The delegated OCSP responder.
    pub fn ocsp_responder(&self) -> &IssuerKey {
        &self.ocsp
    }
    /// The development Digital ID public key (dev mode only).
    pub fn digital_id_dev_key(&self) -> Option<&PKey<Public>> {
        self.digital_id_dev.as_ref()
    }
}

fn load_key_pair(
    id: &str,
    cert_path: &Path,
    key_path: &Path,
    key_config: &KeyConfig,
) -> Result<IssuerKey, CaError> {
    let cert = CaCertificate::new(files::read_cert(cert_path)?)?;
    let invalid = |message: String| CaError::Invalid {
        path: cert_path.to_path_buf(),
        message,
    };
    // A GOST certificate carries its key in NCA's form, which OpenSSL cannot read.
    let gost_spki = gost_certificate_key(&cert).map_err(invalid)?;
    let public = match gost_spki {
        Some(_) => None,
        None => Some(cert.cert.public_key()?),
    };
    let key_type = match &public {
        Some(public) => KeyType::of(public)
            .filter(|t| !t.is_gost())
            .ok_or_else(|| {
                invalid(
                    "unsupported key type (RSA 2048/3072/4096, EC P-256/P-384 or GOST \
                     2015-512 in NCA's form expected)"
                        .to_owned(),
                )
            })?,
        None => KeyType::Gost2015_512,
    };
    let key = match pkcs11::Pkcs11Location::from_config(id, key_config)? {
        Some(location) => {
            SigningKey::Pkcs11(Arc::new(pkcs11::Pkcs11Key::open(location, key_type)?))
        }
        None => {
            if let (Some(_), crate::gost::GostSupport::Unavailable(why)) =
                (&gost_spki, crate::gost::support())
            {
                // The engine reads the key file: without it, say why rather than "not a key".
                return Err(crate::gost::GostError::EngineUnavailable(why.clone()).into());
            }
            let key = files::read_private_key(key_path)?;
            let belongs = match (&public, &gost_spki) {
                (Some(public), _) => public.public_eq(&key),
                // The file key (TC26 form, as the engine writes it) in NCA's form is the
                // certificate's key exactly.
                (None, Some(spki)) => key
                    .public_key_to_der()
                    .ok()
                    .and_then(|der| crate::gost::spki_to_nca(&der).ok())
                    .is_some_and(|nca| nca == *spki),
                (None, None) => false,
            };
            if !belongs {
                return Err(CaError::Invalid {
                    path: key_path.to_path_buf(),
                    message: format!(
                        "this key does not belong to the certificate {}",
                        cert_path.display()
                    ),
                });
            }
            SigningKey::File {
                key,
                path: key_path.to_path_buf(),
            }
        }
    };
    let pair = IssuerKey {
        id: id.to_owned(),
        cert,
        cert_path: cert_path.to_path_buf(),
        key,
        key_type,
    };
    if let SigningKey::Pkcs11(_) = pair.key {
        // A token key cannot be compared with its certificate: prove it signs for it.
        pair.self_test()?;
    }
    Ok(pair)
}

/// The SubjectPublicKeyInfo (DER, as carried) of a certificate whose key is GOST, checked: NCA's
/// form, 512 bits, parameter set A; `None` for a key of another algorithm. What is wrong, as
/// text, for a GOST key of another form or size.
fn gost_certificate_key(cert: &CaCertificate) -> Result<Option<Vec<u8>>, String> {
    use der::{Decode, Encode};
    let parsed = x509_cert::Certificate::from_der(cert.der()).map_err(|e| e.to_string())?;
    let spki = parsed.tbs_certificate.subject_public_key_info;
    if crate::gost::oid::key_algorithm(&spki.algorithm.oid).is_none() {
        return Ok(None);
    }
    let key = crate::gost::GostPublicKey::from_spki(&spki).map_err(|e| e.to_string())?;
    if (key.form(), key.size()) != (crate::gost::Form::Nca, crate::gost::KeySize::Bits512) {
        return Err(format!(
            "a GOST CA certificate carries a GOST 2015-512 key in NCA's form (this one: {:?}, \
             {:?})",
            key.form(),
            key.size()
        ));
    }
    spki.to_der().map(Some).map_err(|e| e.to_string())
}

/// Whether a certificate's signature is GOST (NCA's or TC26's algorithm).
fn gost_signed(cert: &CaCertificate) -> Result<bool, CaError> {
    use der::Decode;
    let parsed = x509_cert::Certificate::from_der(cert.der())?;
    Ok(crate::gost::oid::signature_algorithm(&parsed.signature_algorithm.oid).is_some())
}

fn signed_by(child: &CaCertificate, parent: &CaCertificate, path: &Path) -> Result<(), CaError> {
    let verified = if gost_signed(child)? {
        let artefact = crate::gost::SignedArtefact::certificate(child.der())?;
        match artefact.verify_by(parent.der()) {
            Ok(()) => true,
            Err(e @ crate::gost::GostError::EngineUnavailable(_)) => return Err(e.into()),
            Err(_) => false,
        }
    } else {
        let parent_key = parent.cert.public_key()?;
        child.cert.verify(&parent_key)?
    };
    if verified {
        Ok(())
    } else {
        Err(CaError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "not signed by its issuer {}",
                display_name(parent.cert.subject_name())
            ),
        })
    }
}

fn has_ocsp_signing_eku(cert: &X509) -> bool {
    // The openssl crate has no typed EKU reader: look for the OID's DER in the extension
    // list through the x509-cert parser instead.
    use der::Decode;
    use x509_cert::ext::pkix::ExtendedKeyUsage;
    let Ok(der) = cert.to_der() else {
        return false;
    };
    let Ok(parsed) = x509_cert::Certificate::from_der(&der) else {
        return false;
    };
    let Ok(ocsp_oid) = const_oid::ObjectIdentifier::new(OID_KP_OCSP_SIGNING) else {
        return false;
    };
    parsed
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|ext| ext.extn_id == const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE)
        .filter_map(|ext| ExtendedKeyUsage::from_der(ext.extn_value.as_bytes()).ok())
        .any(|eku| eku.0.contains(&ocsp_oid))
}

/// Why the configured hierarchy cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HierarchyProblem {
    /// Files are missing, unreadable or do not fit together: the configuration must change.
    #[error("{0}")]
    Files(String),
    /// Everything is configured, but a key cannot be reached now (a PKCS#11 token away).
    #[error("{0}")]
    KeyUnavailable(String),
    /// Production mode with a development root (its marker is beside the root key).
    #[error(
        "the root certificate {root} is a development root (made by `tamga ca init`, marked \
         by {marker}); production needs a root made in the key ceremony (`tamga root init` \
         on the offline root machine, see docs/operations.md, section 2)"
    )]
    DevelopmentRoot {
        /// The root certificate.
        root: PathBuf,
        /// The marker file.
        marker: PathBuf,
    },
}

/// Which hierarchy files are present, as `tamga config check` and start-up see them.
///
/// Dev mode: all present (checked by loading them) or none (generated at start).
/// Production: the root certificate, the issuing and OCSP certificates and keys must exist.
pub fn check_hierarchy_files(ca: &CaConfig, mode: Mode) -> Result<(), HierarchyProblem> {
    let files = HierarchyFiles::for_config(ca);
    if mode == Mode::Production && files.dev_root_marker.exists() {
        return Err(HierarchyProblem::DevelopmentRoot {
            root: files.root_cert.clone(),
            marker: files.dev_root_marker.clone(),
        });
    }
    let required = files.required(mode);
    let missing: Vec<&Path> = required.iter().copied().filter(|p| !p.exists()).collect();
    if mode == Mode::Dev && missing.len() == required.len() {
        return Ok(()); // generated on first start
    }
    if !missing.is_empty() {
        let (keys, certs): (Vec<&Path>, Vec<&Path>) =
            missing.iter().copied().partition(|p| files.is_key(p));
        let list = |paths: &[&Path]| {
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        if !keys.is_empty() {
            parts.push(format!("missing key file {}", list(&keys)));
        }
        if !certs.is_empty() {
            parts.push(format!("missing certificate file {}", list(&certs)));
        }
        let hint = match mode {
            Mode::Dev => {
                "; run `tamga ca init --dev --force` to regenerate the development hierarchy"
            }
            Mode::Production => "",
        };
        return Err(HierarchyProblem::Files(format!(
            "{}{hint}",
            parts.join("; ")
        )));
    }
    Hierarchy::load(ca, mode).map(|_| ()).map_err(|e| match e {
        CaError::KeyUnavailable(_) => HierarchyProblem::KeyUnavailable(e.to_string()),
        e => HierarchyProblem::Files(e.to_string()),
    })
}

/// The type of a CA certificate's key, if Tamga signs with keys of that type (a GOST key in
/// NCA's form included, which OpenSSL cannot read).
pub fn certificate_key_type(cert: &openssl::x509::X509Ref) -> Option<KeyType> {
    CaCertificate::new(cert.to_owned()).ok()?.key_type()
}

/// An X.509 name as `CN=…, C=…` in UTF-8, in the order the certificate lists it.
pub fn display_name(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .map(|entry| {
            let field = entry.object().nid().short_name().unwrap_or("?");
            let value = entry
                .data()
                .to_string()
                .unwrap_or_else(|_| "<unprintable>".to_owned());
            format!("{field}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}
