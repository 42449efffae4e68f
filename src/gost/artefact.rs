//! The signed parts of whole artefacts — certificates, CRLs, OCSP responses, CSRs — for
//! verifying them, and for handing them to an independent checker in the TC26 form.

use der::asn1::{AnyRef, BitString, BitStringRef};
use der::{Decode, Encode, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::crl::CertificateList;
use x509_cert::request::CertReq;
use x509_cert::Certificate;
use x509_ocsp::{BasicOcspResponse, OcspResponse, OcspResponseStatus};

use super::convert::{self, GostPublicKey};
use super::oid::{Form, KeySize};
use super::GostError;

/// `id-pkix-ocsp-basic`.
const OCSP_BASIC: der::asn1::ObjectIdentifier = const_oid::db::rfc6960::ID_PKIX_OCSP_BASIC;

/// Every signed structure of X.509 (certificate, CRL, PKCS#10, BasicOCSPResponse) as raw
/// parts: the TBS exactly as it was encoded, then the algorithm and the signature; a
/// BasicOCSPResponse's certificates after them.
#[derive(Sequence)]
struct SignedRef<'a> {
    tbs: AnyRef<'a>,
    algorithm: AlgorithmIdentifierOwned,
    signature: BitStringRef<'a>,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    certificates: Option<Vec<AnyRef<'a>>>,
}

/// Which artefact a [`SignedArtefact`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtefactKind {
    /// An X.509 certificate.
    Certificate,
    /// A CRL.
    Crl,
    /// The BasicOCSPResponse inside a successful OCSPResponse.
    OcspResponse,
    /// A PKCS#10 certification request.
    Csr,
}

/// A GOST-signed artefact taken apart: its TBS bytes as signed, the signature algorithm and
/// value, and what it carries for checking it (an OCSP response's certificates, a CSR's own
/// key).
///
/// Why not a whole artefact in the TC26 form: a certificate's and a CRL's TBS names the
/// signature algorithm too (`tbsCertificate.signature`, `tbsCertList.signature`), so
/// rewriting NCA's OIDs into TC26's changes the signed bytes, and the rewritten artefact no
/// longer verifies without being signed again — which only the holder of the key can do. What
/// an independent checker is given instead is what OpenSSL verifies: the TBS bytes unchanged,
/// the signer's key in the TC26 form ([`GostPublicKey::to_der`]) and the signature in the
/// engine's byte order ([`SignedArtefact::engine_signature`]), e.g. to
/// `openssl dgst -md_gost12_512 -verify key.pem -signature sig tbs.der` with the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedArtefact {
    kind: ArtefactKind,
    tbs: Vec<u8>,
    algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
    certificates: Vec<Vec<u8>>,
    own_key: Option<Vec<u8>>,
}

impl SignedArtefact {
    /// A certificate (DER). Its outer signature algorithm must be the one its TBS names.
    pub fn certificate(der: &[u8]) -> Result<SignedArtefact, GostError> {
        let certificate = Certificate::from_der(der)?;
        if certificate.tbs_certificate.signature != certificate.signature_algorithm {
            return Err(GostError::Malformed(
                "the certificate's two signature algorithms differ",
            ));
        }
        Self::parts(ArtefactKind::Certificate, der)
    }

    /// A CRL (DER). Its outer signature algorithm must be the one its TBS names.
    pub fn crl(der: &[u8]) -> Result<SignedArtefact, GostError> {
        let crl = CertificateList::from_der(der)?;
        if crl.tbs_cert_list.signature != crl.signature_algorithm {
            return Err(GostError::Malformed(
                "the CRL's two signature algorithms differ",
            ));
        }
        Self::parts(ArtefactKind::Crl, der)
    }

    /// The BasicOCSPResponse of an OCSPResponse (DER), which must be successful.
    pub fn ocsp_response(der: &[u8]) -> Result<SignedArtefact, GostError> {
        let response = OcspResponse::from_der(der)?;
        if response.response_status != OcspResponseStatus::Successful {
            return Err(GostError::Malformed("the OCSP response is not successful"));
        }
        let bytes = response.response_bytes.ok_or(GostError::Malformed(
            "the OCSP response has no response bytes",
        ))?;
        if bytes.response_type != OCSP_BASIC {
            return Err(GostError::Malformed("the OCSP response is not a basic one"));
        }
        let basic = bytes.response.as_bytes();
        BasicOcspResponse::from_der(basic)?;
        Self::parts(ArtefactKind::OcspResponse, basic)
    }

    /// A PKCS#10 request (DER); it is verified with its own key.
    pub fn csr(der: &[u8]) -> Result<SignedArtefact, GostError> {
        let request = CertReq::from_der(der)?;
        let mut artefact = Self::parts(ArtefactKind::Csr, der)?;
        artefact.own_key = Some(request.info.public_key.to_der()?);
        Ok(artefact)
    }

    fn parts(kind: ArtefactKind, der: &[u8]) -> Result<SignedArtefact, GostError> {
        let parts = SignedRef::from_der(der)?;
        let certificates = parts
            .certificates
            .unwrap_or_default()
            .iter()
            .map(|c| c.to_der())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SignedArtefact {
            kind,
            tbs: parts.tbs.to_der()?,
            algorithm: parts.algorithm,
            signature: BitString::new(parts.signature.unused_bits(), parts.signature.raw_bytes())?,
            certificates,
            own_key: None,
        })
    }

    /// What it was read as.
    pub fn kind(&self) -> ArtefactKind {
        self.kind
    }

    /// The TBS bytes exactly as they were signed.
    pub fn tbs(&self) -> &[u8] {
        &self.tbs
    }

    /// The signature algorithm.
    pub fn algorithm(&self) -> &AlgorithmIdentifierOwned {
        &self.algorithm
    }

    /// The signature value as carried.
    pub fn signature(&self) -> &BitString {
        &self.signature
    }

    /// The form and size of its GOST signature.
    pub fn form_and_size(&self) -> Result<(Form, KeySize), GostError> {
        convert::signature_algorithm(&self.algorithm)
    }

    /// The signature value in the engine's byte order (what `openssl` verifies), checked
    /// against the algorithm.
    pub fn engine_signature(&self) -> Result<Vec<u8>, GostError> {
        Ok(convert::engine_signature(&self.algorithm, &self.signature)?.1)
    }

    /// An OCSP response's certificates (DER, as carried); empty for the others.
    pub fn certificates(&self) -> &[Vec<u8>] {
        &self.certificates
    }

    /// Verifies the signature with the signer's SubjectPublicKeyInfo (DER, either form).
    pub fn verify(&self, signer_spki: &[u8]) -> Result<(), GostError> {
        convert::verify(&self.tbs, &self.algorithm, &self.signature, signer_spki)
    }

    /// Verifies the signature with the key of the signer's certificate (DER).
    pub fn verify_by(&self, signer_certificate: &[u8]) -> Result<(), GostError> {
        self.verify(&subject_public_key_info(signer_certificate)?)
    }

    /// Verifies a CSR's signature with the key it carries.
    pub fn verify_own(&self) -> Result<(), GostError> {
        let key = self
            .own_key
            .as_ref()
            .ok_or(GostError::Malformed("only a CSR carries its own key"))?;
        self.verify(key)
    }
}

/// A certificate's SubjectPublicKeyInfo (DER), as carried.
pub fn subject_public_key_info(certificate: &[u8]) -> Result<Vec<u8>, GostError> {
    Ok(Certificate::from_der(certificate)?
        .tbs_certificate
        .subject_public_key_info
        .to_der()?)
}

/// A certificate's GOST key, checked.
pub fn certificate_key(certificate: &[u8]) -> Result<GostPublicKey, GostError> {
    GostPublicKey::from_der(&subject_public_key_info(certificate)?)
}
