//! CMS SignedData (RFC 5652): the holder's signatures the cabinet accepts — an attached
//! message over a login challenge, a detached one over a re-issue request's body — read,
//! checked and verified; and the signing side for clients and tests.
//!
//! Owns: [`SignedMessage`], which reads a message (DER, BER, standard base64 or PEM `CMS` /
//! `PKCS7`, at most [`MAX_CMS`] bytes of DER) and checks its shape: the outer ContentInfo is
//! id-signedData, there is exactly one SignerInfo, the encapsulated content type is id-data,
//! the digest is SHA-256/384/512 and the signature RSA PKCS#1 v1.5, RSA-PSS (SHA-2 hash and
//! MGF1) or ECDSA; when signed attributes are present, one content-type attribute naming
//! id-data and one message-digest attribute. It says who signed ([`SignerId`]: issuer and
//! serial, or subject key identifier), what was signed and which certificates came along.
//! [`SignedMessage::verify_attached`] and [`SignedMessage::verify_detached`] verify with
//! OpenSSL's CMS code against the one certificate the caller gives: never a certificate carried
//! in the message, no chain building (the caller found the certificate in its own records), and
//! a certificate that is not the one the signer identifier names fails. [`sign_attached`] and
//! [`sign_detached`] make such messages (SHA-256, the signer's certificate included).
//!
//! What OpenSSL parsed is what is read: the message is parsed by OpenSSL (which also takes the
//! BER with indefinite lengths some signing software writes), re-encoded as DER by it, and the
//! fields are read from that DER — so the signer, content and algorithms named here are the
//! ones OpenSSL verifies.
//!
//! Must never: import another module of the crate but `error_code` (it stands on the ground
//! floor); trust a certificate the message carries; read more than [`MAX_CMS`] bytes; panic on
//! any input.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use der::asn1::{ObjectIdentifier, OctetStringRef};
use der::{AnyRef, Decode, Reader, SliceReader, Tag, TagNumber, Tagged};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::{PKeyRef, Private};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use spki::AlgorithmIdentifierRef;

use crate::error_code::ErrorCode;

#[cfg(test)]
mod tests;

/// The largest message read, in DER bytes; a larger one is [`CmsError::TooLarge`].
pub const MAX_CMS: usize = 32 * 1024;

/// The largest text [`SignedMessage::from_text`] reads: base64 of [`MAX_CMS`] bytes with room
/// for line breaks and PEM armour.
pub const MAX_CMS_TEXT: usize = 2 * MAX_CMS;

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmsError {
    /// Not a CMS SignedData this module reads (what was wrong is named): not DER/BER, not
    /// SignedData, not exactly one signer, attached where detached is needed or the reverse,
    /// signed attributes without a right content-type or message-digest attribute. Also a
    /// message that cannot be made ([`sign_attached`], [`sign_detached`]).
    #[error("malformed CMS message: {0}")]
    Malformed(String),
    /// More than [`MAX_CMS`] bytes (or [`MAX_CMS_TEXT`] characters of text).
    #[error("the CMS message is larger than {MAX_CMS} bytes")]
    TooLarge,
    /// A digest other than SHA-256/384/512, or a signature algorithm other than RSA PKCS#1
    /// v1.5, RSA-PSS or ECDSA with one of them.
    #[error("algorithm not allowed in a CMS signature: {0}")]
    AlgorithmNotAllowed(String),
    /// The signature does not verify with the certificate given, or that certificate is not the
    /// one the signer identifier names.
    #[error("the CMS signature does not verify with the signer's certificate")]
    SignatureInvalid,
}

impl CmsError {
    /// The stable error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            CmsError::Malformed(_) | CmsError::TooLarge => ErrorCode::CmsMalformed,
            CmsError::AlgorithmNotAllowed(_) => ErrorCode::CmsAlgorithmNotAllowed,
            CmsError::SignatureInvalid => ErrorCode::CmsSignatureInvalid,
        }
    }
}

/// Who signed: the SignerInfo's `sid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerId {
    /// issuerAndSerialNumber: the issuer Name's DER, and the serial as upper-case hex of the
    /// INTEGER's magnitude without leading zero octets (odd digit count gets one leading 0) —
    /// exactly how `ca::Serial` writes serials.
    IssuerSerial {
        /// The issuer Name, DER (as the message carries it).
        issuer_der: Vec<u8>,
        /// The serial number, normalised hex.
        serial_hex: String,
    },
    /// subjectKeyIdentifier.
    SubjectKeyId(Vec<u8>),
}

/// A CMS SignedData whose shape has been checked (see the module comment); its signature is
/// checked only by [`SignedMessage::verify_attached`] or [`SignedMessage::verify_detached`].
#[derive(Debug, Clone)]
pub struct SignedMessage {
    /// The message as given (DER or BER), what OpenSSL verifies.
    der: Vec<u8>,
    signer: SignerId,
    content: Option<Vec<u8>>,
    certificates: Vec<Vec<u8>>,
}

impl SignedMessage {
    /// Read a message from DER (or BER).
    pub fn from_der(der: &[u8]) -> Result<Self, CmsError> {
        if der.len() > MAX_CMS {
            return Err(CmsError::TooLarge);
        }
        if ber_element_len(der, 0) != Some(der.len()) {
            return Err(malformed("not one complete ASN.1 element"));
        }
        let parsed = CmsContentInfo::from_der(der)
            .map_err(|_| malformed("not a CMS ContentInfo OpenSSL can read"))?;
        let normalised = parsed
            .to_der()
            .map_err(|_| malformed("OpenSSL cannot re-encode the message"))?;
        let read = read_signed_data(&normalised)?;
        Ok(SignedMessage {
            der: der.to_vec(),
            signer: read.signer,
            content: read.content,
            certificates: read.certificates,
        })
    }

    /// Standard base64 of DER (whitespace allowed), or PEM `-----BEGIN CMS-----` /
    /// `-----BEGIN PKCS7-----`.
    pub fn from_text(text: &str) -> Result<Self, CmsError> {
        if text.len() > MAX_CMS_TEXT {
            return Err(CmsError::TooLarge);
        }
        let trimmed = text.trim();
        let body = if trimmed.starts_with("-----BEGIN ") {
            pem_body(trimmed)?
        } else {
            trimmed
        };
        let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = BASE64
            .decode(compact.as_bytes())
            .map_err(|_| malformed("not base64"))?;
        Self::from_der(&der)
    }

    /// Who signed.
    pub fn signer(&self) -> &SignerId {
        &self.signer
    }

    /// The encapsulated content when attached; None when detached.
    pub fn content(&self) -> Option<&[u8]> {
        self.content.as_deref()
    }

    /// Certificates carried in the message (DER): untrusted, a lookup hint at most.
    pub fn embedded_certificates(&self) -> &[Vec<u8>] {
        &self.certificates
    }

    /// Verify an ATTACHED message with the signer certificate the CALLER supplies (never one
    /// from the message); returns the content. Detached → Malformed.
    pub fn verify_attached(&self, signer_cert_der: &[u8]) -> Result<Vec<u8>, CmsError> {
        if self.content.is_none() {
            return Err(malformed(
                "a detached signature where the content must be attached",
            ));
        }
        let cert = self.signer_certificate(signer_cert_der)?;
        openssl_verify(&self.der, cert, None)
    }

    /// Verify a DETACHED message over `content`. Attached → Malformed.
    pub fn verify_detached(&self, signer_cert_der: &[u8], content: &[u8]) -> Result<(), CmsError> {
        if self.content.is_some() {
            return Err(malformed(
                "an attached signature where a detached one is needed",
            ));
        }
        let cert = self.signer_certificate(signer_cert_der)?;
        openssl_verify(&self.der, cert, Some(content)).map(|_| ())
    }

    /// The caller's certificate, if it is the one the signer identifier names.
    fn signer_certificate(&self, signer_cert_der: &[u8]) -> Result<X509, CmsError> {
        let cert = X509::from_der(signer_cert_der).map_err(|_| CmsError::SignatureInvalid)?;
        let names_it = match &self.signer {
            SignerId::IssuerSerial {
                issuer_der,
                serial_hex,
            } => {
                let issuer = cert.issuer_name().to_der().ok();
                let serial = cert
                    .serial_number()
                    .to_bn()
                    .ok()
                    .map(|bn| serial_hex_of(&bn.to_vec()));
                issuer.as_deref() == Some(issuer_der.as_slice())
                    && serial.as_deref() == Some(serial_hex.as_str())
            }
            SignerId::SubjectKeyId(ski) => {
                cert.subject_key_id().map(|id| id.as_slice()) == Some(ski.as_slice())
            }
        };
        if names_it {
            Ok(cert)
        } else {
            Err(CmsError::SignatureInvalid)
        }
    }
}

/// Sign `content` into an attached SignedData (DER): SHA-256, the signer's certificate
/// included, binary content. A key that is not the certificate's, or a certificate that is not
/// DER, is [`CmsError::Malformed`].
pub fn sign_attached(
    key: &PKeyRef<Private>,
    cert_der: &[u8],
    content: &[u8],
) -> Result<Vec<u8>, CmsError> {
    sign(key, cert_der, content, CMSOptions::empty())
}

/// Sign `content` into a detached SignedData (DER), as [`sign_attached`] otherwise.
pub fn sign_detached(
    key: &PKeyRef<Private>,
    cert_der: &[u8],
    content: &[u8],
) -> Result<Vec<u8>, CmsError> {
    sign(key, cert_der, content, CMSOptions::DETACHED)
}

fn sign(
    key: &PKeyRef<Private>,
    cert_der: &[u8],
    content: &[u8],
    flags: CMSOptions,
) -> Result<Vec<u8>, CmsError> {
    let cert = X509::from_der(cert_der)
        .map_err(|e| CmsError::Malformed(format!("the signer certificate: {e}")))?;
    let flags = flags | CMSOptions::BINARY | CMSOptions::NOSMIMECAP;
    // OpenSSL's default digest for RSA and EC keys is SHA-256 (checked by the tests).
    let signed = CmsContentInfo::sign(Some(&cert), Some(key), None, Some(content), flags)
        .and_then(|cms| cms.to_der())
        .map_err(|e| CmsError::Malformed(format!("cannot sign: {e}")))?;
    if signed.len() > MAX_CMS {
        return Err(CmsError::TooLarge);
    }
    Ok(signed)
}

/// OpenSSL's verification of `der` with `cert` as the only certificate it may use, no chain
/// check; `detached` is the content of a detached message. Returns the content verified.
fn openssl_verify(der: &[u8], cert: X509, detached: Option<&[u8]>) -> Result<Vec<u8>, CmsError> {
    let invalid = |_| CmsError::SignatureInvalid;
    let mut cms = CmsContentInfo::from_der(der)
        .map_err(|_| malformed("not a CMS ContentInfo OpenSSL can read"))?;
    let mut certs = Stack::new().map_err(invalid)?;
    certs.push(cert).map_err(invalid)?;
    let store = X509StoreBuilder::new().map_err(invalid)?.build();
    let flags = CMSOptions::NOINTERN | CMSOptions::NO_SIGNER_CERT_VERIFY | CMSOptions::BINARY;
    let mut out = Vec::new();
    cms.verify(Some(&certs), Some(&store), detached, Some(&mut out), flags)
        .map_err(invalid)?;
    Ok(out)
}

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
/// Standard base64, padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);

/// The base64 between `-----BEGIN CMS-----` (or `PKCS7`) and its matching END line; nothing
/// may follow the END line.
fn pem_body(text: &str) -> Result<&str, CmsError> {
    for label in ["CMS", "PKCS7"] {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        if let Some(rest) = text.strip_prefix(begin.as_str()) {
            return rest
                .strip_suffix(end.as_str())
                .filter(|body| !body.contains("-----"))
                .ok_or_else(|| malformed("PEM without its END line"));
        }
    }
    Err(malformed("PEM, but not CMS or PKCS7"))
}

fn malformed(why: &str) -> CmsError {
    CmsError::Malformed(why.to_owned())
}

/// The length of the BER element at the start of `input` (tag, length, contents; indefinite
/// lengths followed to their end-of-contents), or None when it is not one.
fn ber_element_len(input: &[u8], depth: usize) -> Option<usize> {
    const MAX_DEPTH: usize = 64;
    if depth > MAX_DEPTH {
        return None;
    }
    let first = *input.first()?;
    let constructed = first & 0x20 != 0;
    let mut at = 1;
    if first & 0x1f == 0x1f {
        // High tag number: base-128 digits, the last without its top bit.
        loop {
            let b = *input.get(at)?;
            at += 1;
            if at > 5 {
                return None;
            }
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let len_byte = *input.get(at)?;
    at += 1;
    if len_byte == 0x80 {
        if !constructed {
            return None;
        }
        loop {
            let rest = input.get(at..)?;
            if rest.starts_with(&[0, 0]) {
                return at.checked_add(2);
            }
            at = at.checked_add(ber_element_len(rest, depth + 1)?)?;
        }
    }
    let len = if len_byte < 0x80 {
        usize::from(len_byte)
    } else {
        let count = usize::from(len_byte & 0x7f);
        if count > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..count {
            len = (len << 8) | usize::from(*input.get(at + i)?);
        }
        at += count;
        len
    };
    let end = at.checked_add(len)?;
    (end <= input.len()).then_some(end)
}

/// What [`read_signed_data`] finds.
struct Read {
    signer: SignerId,
    content: Option<Vec<u8>>,
    certificates: Vec<Vec<u8>>,
}

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ID_MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
const ID_RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_WITH_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");

const EXPLICIT_0: Tag = Tag::ContextSpecific {
    constructed: true,
    number: TagNumber::N0,
};
const IMPLICIT_SET_0: Tag = EXPLICIT_0;
const IMPLICIT_SET_1: Tag = Tag::ContextSpecific {
    constructed: true,
    number: TagNumber::N1,
};
const IMPLICIT_OCTETS_0: Tag = Tag::ContextSpecific {
    constructed: false,
    number: TagNumber::N0,
};

fn der_error(e: der::Error) -> CmsError {
    CmsError::Malformed(format!("{e}"))
}

/// The next element if it carries `tag`.
fn optional<'a>(r: &mut SliceReader<'a>, tag: Tag) -> der::Result<Option<AnyRef<'a>>> {
    if !r.is_finished() && r.peek_tag()? == tag {
        r.decode().map(Some)
    } else {
        Ok(None)
    }
}

/// The next element, which must carry `tag`.
fn required<'a>(r: &mut SliceReader<'a>, tag: Tag) -> der::Result<AnyRef<'a>> {
    let any: AnyRef<'a> = r.decode()?;
    any.tag().assert_eq(tag)?;
    Ok(any)
}

/// The elements of a SET OF (or SEQUENCE OF) value, each as it is.
fn elements(value: &[u8]) -> der::Result<Vec<AnyRef<'_>>> {
    let mut r = SliceReader::new(value)?;
    let mut out = Vec::new();
    while !r.is_finished() {
        out.push(r.decode()?);
    }
    Ok(out)
}

/// The fields of a DER ContentInfo holding SignedData, with the checks of the module comment.
fn read_signed_data(der: &[u8]) -> Result<Read, CmsError> {
    let content_info = AnyRef::from_der(der).map_err(der_error)?;
    let (content_type, content) = content_info
        .sequence(|r| {
            let oid: ObjectIdentifier = r.decode()?;
            let content = required(r, EXPLICIT_0)?;
            Ok((oid, content))
        })
        .map_err(der_error)?;
    if content_type != ID_SIGNED_DATA {
        return Err(CmsError::Malformed(format!(
            "content type {content_type}, not id-signedData"
        )));
    }
    let signed_data = AnyRef::from_der(content.value()).map_err(der_error)?;
    let (encap, certificates, signer_infos) = signed_data
        .sequence(|r| {
            required(r, Tag::Integer)?; // version
            required(r, Tag::Set)?; // digestAlgorithms: the SignerInfo's own is what counts
            let encap = required(r, Tag::Sequence)?;
            let certificates = optional(r, IMPLICIT_SET_0)?;
            optional(r, IMPLICIT_SET_1)?; // crls: not read
            let signer_infos = required(r, Tag::Set)?;
            Ok((encap, certificates, signer_infos))
        })
        .map_err(der_error)?;

    let (econtent_type, econtent) = encap
        .sequence(|r| {
            let oid: ObjectIdentifier = r.decode()?;
            let econtent = match optional(r, EXPLICIT_0)? {
                Some(explicit) => Some(OctetStringRef::from_der(explicit.value())?),
                None => None,
            };
            Ok((oid, econtent))
        })
        .map_err(der_error)?;
    if econtent_type != ID_DATA {
        return Err(CmsError::Malformed(format!(
            "encapsulated content type {econtent_type}, not id-data"
        )));
    }

    let certificates = match certificates {
        Some(set) => elements(set.value())
            .map_err(der_error)?
            .into_iter()
            // Only plain certificates; the other CertificateChoices are not looked at.
            .filter(|c| c.tag() == Tag::Sequence)
            .map(|c| der::Encode::to_der(&c))
            .collect::<der::Result<Vec<_>>>()
            .map_err(der_error)?,
        None => Vec::new(),
    };

    let signer_infos = elements(signer_infos.value()).map_err(der_error)?;
    let signer_info = match signer_infos.as_slice() {
        [one] => *one,
        other => {
            return Err(CmsError::Malformed(format!(
                "{} signers, not one",
                other.len()
            )))
        }
    };
    let signer = read_signer_info(signer_info)?;

    Ok(Read {
        signer,
        content: econtent.map(|c| c.as_bytes().to_vec()),
        certificates,
    })
}

/// A SignerInfo: its identifier, with its algorithms and signed attributes checked.
fn read_signer_info(signer_info: AnyRef<'_>) -> Result<SignerId, CmsError> {
    let (sid, digest, signed_attrs, signature) = signer_info
        .sequence(|r| {
            required(r, Tag::Integer)?; // version
            let sid: AnyRef = r.decode()?;
            let digest: AlgorithmIdentifierRef = r.decode()?;
            let signed_attrs = optional(r, IMPLICIT_SET_0)?;
            let signature: AlgorithmIdentifierRef = r.decode()?;
            OctetStringRef::decode(r)?; // the signature value: OpenSSL's
            optional(r, IMPLICIT_SET_1)?; // unsignedAttrs: not read
            Ok((sid, digest, signed_attrs, signature))
        })
        .map_err(der_error)?;

    let signer = match sid.tag() {
        Tag::Sequence => sid
            .sequence(|r| {
                let issuer = r.peek_tag()?;
                issuer.assert_eq(Tag::Sequence)?;
                let issuer_der = r.tlv_bytes()?.to_vec();
                let serial = required(r, Tag::Integer)?;
                Ok(SignerId::IssuerSerial {
                    issuer_der,
                    serial_hex: serial_hex_of(serial.value()),
                })
            })
            .map_err(der_error)?,
        IMPLICIT_OCTETS_0 => SignerId::SubjectKeyId(sid.value().to_vec()),
        other => {
            return Err(CmsError::Malformed(format!(
                "signer identifier with tag {other}"
            )))
        }
    };

    let digest_name = allowed_digest(&digest.oid)
        .ok_or_else(|| CmsError::AlgorithmNotAllowed(format!("digest {}", digest.oid)))?;
    check_signature_algorithm(&signature, digest_name)?;
    if let Some(attrs) = signed_attrs {
        check_signed_attributes(attrs.value())?;
    }
    Ok(signer)
}

/// The name of an allowed digest.
fn allowed_digest(oid: &ObjectIdentifier) -> Option<&'static str> {
    match *oid {
        ID_SHA256 => Some("SHA-256"),
        ID_SHA384 => Some("SHA-384"),
        ID_SHA512 => Some("SHA-512"),
        _ => None,
    }
}

/// RSA PKCS#1 v1.5, RSA-PSS or ECDSA; where the algorithm names a digest, the SignerInfo's.
fn check_signature_algorithm(
    signature: &AlgorithmIdentifierRef<'_>,
    digest: &'static str,
) -> Result<(), CmsError> {
    let with = match signature.oid {
        RSA_ENCRYPTION | ID_EC_PUBLIC_KEY => None,
        SHA256_WITH_RSA | ECDSA_WITH_SHA256 => Some("SHA-256"),
        SHA384_WITH_RSA | ECDSA_WITH_SHA384 => Some("SHA-384"),
        SHA512_WITH_RSA | ECDSA_WITH_SHA512 => Some("SHA-512"),
        ID_RSASSA_PSS => Some(pss_digest(signature.parameters)?),
        other => {
            return Err(CmsError::AlgorithmNotAllowed(format!(
                "signature algorithm {other}"
            )))
        }
    };
    match with {
        Some(named) if named != digest => Err(CmsError::AlgorithmNotAllowed(format!(
            "a signature with {named} over a {digest} digest"
        ))),
        _ => Ok(()),
    }
}

/// RSASSA-PSS-params: the hash and MGF1's hash must be stated, the same, and allowed (the
/// defaults are SHA-1).
fn pss_digest(parameters: Option<AnyRef<'_>>) -> Result<&'static str, CmsError> {
    let not_allowed = || CmsError::AlgorithmNotAllowed("RSA-PSS without SHA-2 parameters".into());
    let parameters = parameters.ok_or_else(not_allowed)?;
    let (hash, mgf) = parameters
        .sequence(|r| {
            let hash = match optional(r, EXPLICIT_0)? {
                Some(h) => Some(AlgorithmIdentifierRef::from_der(h.value())?.oid),
                None => None,
            };
            let mgf = match optional(
                r,
                Tag::ContextSpecific {
                    constructed: true,
                    number: TagNumber::N1,
                },
            )? {
                Some(m) => {
                    let mgf = AlgorithmIdentifierRef::from_der(m.value())?;
                    let inner = match mgf.parameters {
                        Some(p) => Some(p.decode_as::<AlgorithmIdentifierRef>()?.oid),
                        None => None,
                    };
                    Some((mgf.oid, inner))
                }
                None => None,
            };
            // saltLength and trailerField: OpenSSL's to check.
            while !r.is_finished() {
                let _: AnyRef = r.decode()?;
            }
            Ok((hash, mgf))
        })
        .map_err(der_error)?;
    let hash = hash.ok_or_else(not_allowed)?;
    let name = allowed_digest(&hash).ok_or_else(not_allowed)?;
    match mgf {
        Some((ID_MGF1, Some(mgf_hash))) if mgf_hash == hash => Ok(name),
        _ => Err(not_allowed()),
    }
}

/// One content-type attribute with one value, id-data; one message-digest attribute with one
/// OCTET STRING value (OpenSSL compares it with the content's digest). The content-type's value
/// is checked only here: OpenSSL 3.0's verification accepts a signed content-type attribute
/// that names another type than the encapsulated content's.
fn check_signed_attributes(attrs: &[u8]) -> Result<(), CmsError> {
    let mut content_types = 0;
    let mut digests = 0;
    for attr in elements(attrs).map_err(der_error)? {
        let (oid, values) = attr
            .sequence(|r| {
                let oid: ObjectIdentifier = r.decode()?;
                let values = required(r, Tag::Set)?;
                Ok((oid, elements(values.value())?))
            })
            .map_err(der_error)?;
        match oid {
            ID_CONTENT_TYPE => {
                content_types += 1;
                let [value] = values.as_slice() else {
                    return Err(malformed("a content-type attribute without one value"));
                };
                let named: ObjectIdentifier = value.decode_as().map_err(der_error)?;
                if named != ID_DATA {
                    return Err(CmsError::Malformed(format!(
                        "the content-type attribute names {named}, not id-data"
                    )));
                }
            }
            ID_MESSAGE_DIGEST => {
                digests += 1;
                let [value] = values.as_slice() else {
                    return Err(malformed("a message-digest attribute without one value"));
                };
                value.decode_as::<OctetStringRef>().map_err(der_error)?;
            }
            _ => {}
        }
    }
    if content_types != 1 || digests != 1 {
        return Err(malformed(
            "signed attributes without exactly one content-type and one message-digest attribute",
        ));
    }
    Ok(())
}

/// Upper-case hex of an INTEGER's octets without leading zero octets ("00" for zero).
fn serial_hex_of(octets: &[u8]) -> String {
    let start = octets.iter().position(|b| *b != 0).unwrap_or(octets.len());
    let significant = octets.get(start..).unwrap_or_default();
    if significant.is_empty() {
        return "00".to_owned();
    }
    significant.iter().map(|b| format!("{b:02X}")).collect()
}
