//! PKCS#10 certification requests: size limit, PEM or base64 DER, parse, proof of possession
//! (a signature with SHA-256 or stronger), and the key policy of SPEC §2 ([`key`]: types and
//! sizes, the canonical encoding of RFC 3279 / RFC 5480, weak keys). A SIGN request
//! ([`validate_sign`]) may also carry a GOST R 34.10-2015 key in NCA's form or the TC26 form
//! (`gost_request`: checked through `gost`, handed on in NCA's form); every other request
//! ([`validate`]) is refused one (`gost_key_not_for_auth`). What survives is a
//! [`ValidatedCsr`]: the public key as its [`KeyIdentity`], its type and, at most, an e-mail
//! address.
//! Knows nothing of applications, the RA or the CA: it answers "is this request acceptable,
//! and what does it carry". Must never: accept an RSA or EC key in a non-canonical encoding
//! (the certificate would copy it, and its identity would depend on bytes; a GOST key is
//! re-encoded in NCA's form, in the certificate and in its identity alike), or a signature
//! whose hash is weaker than SHA-256 (a GOST key's: Streebog of its size).

mod direct;
mod gost_request;
pub mod key;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use der::{Decode, Encode};

use openssl::pkey::Id;
use openssl::x509::X509Req;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::request::CertReq;

pub use key::{check_key, check_rsa_modulus, roca_fingerprint, SubjectKeyType};

use crate::error_code::ErrorCode;
use crate::key_identity::{self, KeyIdentity, KeyIdentityError};
use key::ACCEPTED_KEYS;

/// Why a certificate request or its key is refused. Each refusal has a stable wire code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsrError {
    /// The CSR cannot be decoded or parsed.
    #[error("the certificate request is malformed: {0}")]
    Malformed(String),
    /// The CSR's signature does not verify with its own key (no proof of possession).
    #[error("the certificate request's signature does not verify with its own key")]
    SignatureInvalid,
    /// The CSR is signed with a hash weaker than SHA-256 (or an unknown algorithm).
    #[error("the certificate request's signature algorithm is not accepted: {0}")]
    SignatureAlgorithmNotAllowed(String),
    /// Key type or size not accepted.
    #[error("key algorithm not allowed: {0}")]
    KeyAlgorithmNotAllowed(String),
    /// The key is too small.
    #[error("key too small: {0}")]
    KeyTooSmall(String),
    /// The key is weak.
    #[error("weak key: {0}")]
    KeyWeak(String),
    /// The key is not in the canonical encoding of RFC 3279 / RFC 5480 (explicit curve
    /// parameters, a compressed or hybrid point, RSA without NULL parameters).
    #[error("the public key's encoding is not accepted: {0}")]
    KeyEncodingInvalid(String),
    /// A GOST key in a request other than SIGN: NCA certifies GOST keys for signing only (its
    /// AUTH keys are RSA).
    #[error("a GOST R 34.10-2015 key is certified only in the SIGN request: NCA's AUTH keys are RSA (here RSA or EC)")]
    GostKeyNotForAuth,
    /// A GOST key on a curve other than parameter set A of its size, or whose parameters name
    /// another digest than the Streebog of its size.
    #[error("unknown GOST parameter set: {0}")]
    GostParameterSetUnknown(String),
    /// A GOST public key point of the wrong length, outside the field, off its curve or of
    /// small order.
    #[error("the GOST public key point is not valid: {0}")]
    GostPointInvalid(String),
    /// OpenSSL's gost engine is not loaded in this server: GOST requests cannot be checked
    /// (the reason is logged, not sent).
    #[error("GOST keys cannot be checked by this server now (its OpenSSL has no gost engine); RSA and EC keys are accepted")]
    GostUnavailable,
}

impl CsrError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            CsrError::Malformed(_) => ErrorCode::CsrMalformed,
            CsrError::SignatureInvalid => ErrorCode::CsrSignatureInvalid,
            CsrError::SignatureAlgorithmNotAllowed(_) => ErrorCode::CsrSignatureAlgorithmNotAllowed,
            CsrError::KeyAlgorithmNotAllowed(_) => ErrorCode::KeyAlgorithmNotAllowed,
            CsrError::KeyTooSmall(_) => ErrorCode::KeyTooSmall,
            CsrError::KeyWeak(_) => ErrorCode::KeyWeak,
            CsrError::KeyEncodingInvalid(_) => ErrorCode::KeyEncodingInvalid,
            CsrError::GostKeyNotForAuth => ErrorCode::GostKeyNotForAuth,
            CsrError::GostParameterSetUnknown(_) => ErrorCode::GostParameterSetUnknown,
            CsrError::GostPointInvalid(_) => ErrorCode::GostPointInvalid,
            CsrError::GostUnavailable => ErrorCode::GostUnavailable,
        }
    }
}

/// Largest CSR accepted (as submitted text) before parsing.
pub const MAX_CSR_LEN: usize = 16 * 1024;

/// OID of the PKCS#9 extensionRequest attribute.
const OID_EXTENSION_REQUEST: const_oid::ObjectIdentifier = const_oid::db::rfc5912::ID_EXTENSION_REQ;

/// A request whose encoding, signature and key all passed. Only [`validate`] makes one.
#[derive(Debug, Clone)]
pub struct ValidatedCsr {
    der: Vec<u8>,
    identity: KeyIdentity,
    key_type: SubjectKeyType,
    email: Option<String>,
}

impl ValidatedCsr {
    /// The request, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// The SubjectPublicKeyInfo, DER, as the certificate carries it: the canonical encoding
    /// (an RSA or EC request carried exactly it); a GOST key in NCA's form, whichever form
    /// the request was in.
    pub fn spki_der(&self) -> &[u8] {
        self.identity.canonical_der()
    }
    /// The key's identity.
    pub fn identity(&self) -> &KeyIdentity {
        &self.identity
    }
    /// The key's type (for a GOST key, [`SubjectKeyType::Gost`] with its size).
    pub fn key_type(&self) -> SubjectKeyType {
        self.key_type
    }
    /// The rfc822Name of a requested subjectAltName, if any.
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
}

/// Decode PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`) or bare base64 DER.
fn decode(text: &str) -> Result<Vec<u8>, CsrError> {
    let malformed = |m: &str| CsrError::Malformed(m.to_owned());
    let trimmed = text.trim();
    // PEM is only armour around base64: take the body out here and leave every parse of the
    // request to `validate` (one OpenSSL parse per request, not two).
    let body = if trimmed.starts_with("-----BEGIN") {
        let label = ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"]
            .into_iter()
            .find(|l| trimmed.starts_with(&format!("-----BEGIN {l}-----")))
            .ok_or_else(|| malformed("not a PEM CERTIFICATE REQUEST"))?;
        trimmed
            .strip_prefix(&format!("-----BEGIN {label}-----"))
            .and_then(|rest| rest.strip_suffix(&format!("-----END {label}-----")))
            .ok_or_else(|| malformed("not a PEM CERTIFICATE REQUEST"))?
    } else {
        trimmed
    };
    let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(compact)
        .map_err(|_| malformed("neither PEM nor base64 DER"))
}

/// Check one CSR completely, for a key that is not a SIGN key (AUTH, a CA's): RSA or EC; a
/// GOST key is refused (`gost_key_not_for_auth`).
pub fn validate(text: &str) -> Result<ValidatedCsr, CsrError> {
    validate_for(text, false)
}

/// Check one SIGN CSR completely: RSA, EC, or a GOST R 34.10-2015 key (512 or 256 bits,
/// parameter set A) in NCA's form or the TC26 form.
pub fn validate_sign(text: &str) -> Result<ValidatedCsr, CsrError> {
    validate_for(text, true)
}

fn validate_for(text: &str, gost_allowed: bool) -> Result<ValidatedCsr, CsrError> {
    if text.len() > MAX_CSR_LEN {
        return Err(CsrError::Malformed(format!(
            "larger than {MAX_CSR_LEN} bytes"
        )));
    }
    let der = decode(text)?;
    let parsed = CertReq::from_der(&der)
        .map_err(|e| CsrError::Malformed(format!("not a DER PKCS#10 request: {e}")))?;
    let spki_der = parsed
        .info
        .public_key
        .to_der()
        .map_err(|e| CsrError::Malformed(e.to_string()))?;
    if crate::gost::oid::key_algorithm(&parsed.info.public_key.algorithm.oid).is_some() {
        // A key Tamga never certifies here is named as such first, as below.
        if !gost_allowed {
            return Err(CsrError::GostKeyNotForAuth);
        }
        let checked = gost_request::check(&der, &parsed)?;
        let email = requested_email(&parsed)?;
        return Ok(ValidatedCsr {
            der,
            identity: checked.identity,
            key_type: checked.key_type,
            email,
        });
    }
    // What every client sends (a canonical RSA or named-curve key, signed with PKCS#1 v1.5 or
    // ECDSA) is read by the strict DER parser above alone, and its signature checked over the
    // exact bytes it read: OpenSSL's request and key decoders cost more than the rest of the
    // checks together. Everything else goes through OpenSSL's parser too, which must agree.
    let (public, proven) = match direct::key(&parsed) {
        Some(key) => {
            let proven = direct::verify(&der, &parsed, &key);
            (key.pkey().clone(), proven)
        }
        None => {
            let req = X509Req::from_der(&der)
                .map_err(|_| CsrError::Malformed("not a DER PKCS#10 request".to_owned()))?;
            let is_ec =
                parsed.info.public_key.algorithm.oid == const_oid::db::rfc5912::ID_EC_PUBLIC_KEY;
            let public = match req.public_key() {
                Ok(k) => k,
                // OpenSSL refuses an EC point that is not on its curve at decoding.
                Err(_) if is_ec => {
                    return Err(CsrError::KeyWeak(
                        "the EC point is not on the curve".to_owned(),
                    ))
                }
                Err(_) => {
                    return Err(CsrError::KeyAlgorithmNotAllowed(
                        "unrecognised public key".to_owned(),
                    ))
                }
            };
            let proven = req.verify(&public).unwrap_or(false);
            (public, proven)
        }
    };
    // The key's type first: a key Tamga never certifies is named as such, whatever it signed
    // with (an Ed25519 request is `key_algorithm_not_allowed`, not a signature problem).
    if !matches!(public.id(), Id::RSA | Id::EC) {
        return Err(CsrError::KeyAlgorithmNotAllowed(ACCEPTED_KEYS.to_owned()));
    }
    check_signature_algorithm(&parsed.algorithm)?;
    if !proven {
        return Err(CsrError::SignatureInvalid);
    }
    // The encoding (a re-encode and a comparison) before the costly weak-key checks.
    let identity = KeyIdentity::of_key(&public).map_err(|e| match e {
        KeyIdentityError::Encoding(_)
        | KeyIdentityError::Der(_)
        | KeyIdentityError::Undecodable => CsrError::KeyEncodingInvalid(e.to_string()),
        KeyIdentityError::UnnamedCurve | KeyIdentityError::UnsupportedType => {
            CsrError::KeyAlgorithmNotAllowed(e.to_string())
        }
    })?;
    if let Some(reason) = key_identity::non_canonical(&spki_der, &identity) {
        return Err(CsrError::KeyEncodingInvalid(reason));
    }
    let key_type = check_key(&public)?;
    let email = requested_email(&parsed)?;
    Ok(ValidatedCsr {
        der,
        identity,
        key_type,
        email,
    })
}

/// RSASSA-PSS-params (RFC 4055 §3.1); absent fields take the SHA-1 defaults, which are refused.
#[derive(der::Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<spki::AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<spki::AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_length: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer_field: Option<u32>,
}

/// Proof of possession only with SHA-256 or stronger: sha256/384/512WithRSAEncryption,
/// ecdsa-with-SHA256/384/512, or RSASSA-PSS with SHA-256/384/512 and MGF1 over the same hash.
fn check_signature_algorithm(alg: &spki::AlgorithmIdentifierOwned) -> Result<(), CsrError> {
    use const_oid::db::rfc5912 as oids;
    let refuse = |m: String| Err(CsrError::SignatureAlgorithmNotAllowed(m));
    let strong_hash = |oid: &const_oid::ObjectIdentifier| {
        [oids::ID_SHA_256, oids::ID_SHA_384, oids::ID_SHA_512].contains(oid)
    };
    let name = |oid: &const_oid::ObjectIdentifier| {
        const_oid::db::DB
            .by_oid(oid)
            .map_or_else(|| oid.to_string(), str::to_owned)
    };
    if [
        oids::SHA_256_WITH_RSA_ENCRYPTION,
        oids::SHA_384_WITH_RSA_ENCRYPTION,
        oids::SHA_512_WITH_RSA_ENCRYPTION,
        oids::ECDSA_WITH_SHA_256,
        oids::ECDSA_WITH_SHA_384,
        oids::ECDSA_WITH_SHA_512,
    ]
    .contains(&alg.oid)
    {
        return Ok(());
    }
    if alg.oid != oids::ID_RSASSA_PSS {
        return refuse(format!(
            "{}; accepted: sha256/384/512WithRSAEncryption, RSASSA-PSS with SHA-256/384/512, ecdsa-with-SHA256/384/512",
            name(&alg.oid)
        ));
    }
    let params: PssParams = alg
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as().ok())
        .ok_or_else(|| {
            CsrError::SignatureAlgorithmNotAllowed(
                "RSASSA-PSS without readable parameters".to_owned(),
            )
        })?;
    let Some(hash) = params.hash.filter(|h| strong_hash(&h.oid)) else {
        return refuse("RSASSA-PSS with a hash weaker than SHA-256".to_owned());
    };
    let mgf_hash = params
        .mask_gen
        .filter(|m| m.oid == oids::ID_MGF_1)
        .and_then(|m| m.parameters)
        .and_then(|p| p.decode_as::<spki::AlgorithmIdentifierOwned>().ok());
    if mgf_hash.map(|h| h.oid) != Some(hash.oid) {
        return refuse(
            "RSASSA-PSS whose mask generation is not MGF1 with the same hash".to_owned(),
        );
    }
    if params.trailer_field.is_some_and(|t| t != 1) || params.salt_length.is_some_and(|s| s > 512) {
        return refuse("RSASSA-PSS with an unusual salt length or trailer field".to_owned());
    }
    Ok(())
}

/// The e-mail of an rfc822Name in a requested subjectAltName, if any. Every other requested
/// extension is ignored (the certificate profile decides them).
fn requested_email(req: &CertReq) -> Result<Option<String>, CsrError> {
    for attr in req.info.attributes.iter() {
        if attr.oid != OID_EXTENSION_REQUEST {
            continue;
        }
        for value in attr.values.iter() {
            let exts: x509_cert::ext::Extensions = value
                .decode_as()
                .map_err(|e| CsrError::Malformed(format!("extensionRequest: {e}")))?;
            for ext in exts {
                if ext.extn_id != const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME {
                    continue;
                }
                let san = SubjectAltName::from_der(ext.extn_value.as_bytes())
                    .map_err(|e| CsrError::Malformed(format!("subjectAltName: {e}")))?;
                for name in san.0 {
                    if let GeneralName::Rfc822Name(email) = name {
                        return Ok(Some(email.to_string()));
                    }
                }
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn only_sha2_signature_algorithms_prove_possession() {
        use const_oid::db::rfc5912 as oids;
        use der::asn1::Any;
        let alg = |oid, parameters: Option<Any>| spki::AlgorithmIdentifierOwned { oid, parameters };
        let null = || Some(Any::from(der::asn1::Null));
        for ok in [
            alg(oids::SHA_256_WITH_RSA_ENCRYPTION, null()),
            alg(oids::SHA_512_WITH_RSA_ENCRYPTION, None),
            alg(oids::ECDSA_WITH_SHA_256, None),
            alg(oids::ECDSA_WITH_SHA_384, None),
        ] {
            check_signature_algorithm(&ok).unwrap();
        }
        for weak in [
            alg(oids::MD_5_WITH_RSA_ENCRYPTION, null()),
            alg(oids::SHA_1_WITH_RSA_ENCRYPTION, null()),
            alg(oids::SHA_224_WITH_RSA_ENCRYPTION, null()),
            alg(oids::ECDSA_WITH_SHA_224, None),
            alg(oids::DSA_WITH_SHA_256, None),
            alg(oids::ID_RSASSA_PSS, None),
        ] {
            assert!(
                matches!(
                    check_signature_algorithm(&weak),
                    Err(CsrError::SignatureAlgorithmNotAllowed(_))
                ),
                "{}",
                weak.oid
            );
        }
        let pss = |hash, mgf_hash| {
            let params = PssParams {
                hash: Some(alg(hash, null())),
                mask_gen: Some(alg(
                    oids::ID_MGF_1,
                    Some(Any::encode_from(&alg(mgf_hash, null())).unwrap()),
                )),
                salt_length: Some(32),
                trailer_field: None,
            };
            alg(
                oids::ID_RSASSA_PSS,
                Some(Any::encode_from(&params).unwrap()),
            )
        };
        check_signature_algorithm(&pss(oids::ID_SHA_256, oids::ID_SHA_256)).unwrap();
        check_signature_algorithm(&pss(oids::ID_SHA_512, oids::ID_SHA_512)).unwrap();
        for (hash, mgf) in [
            (oids::ID_SHA_1, oids::ID_SHA_1),
            (oids::ID_SHA_256, oids::ID_SHA_1),
        ] {
            assert!(matches!(
                check_signature_algorithm(&pss(hash, mgf)),
                Err(CsrError::SignatureAlgorithmNotAllowed(_))
            ));
        }
    }
}
