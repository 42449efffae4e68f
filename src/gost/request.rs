//! PKCS#10 certification requests for a GOST key, in NCA's form or the TC26 form, built as
//! DER here and signed through the engine.

use der::asn1::{BitString, Ia5String, OctetString};
use der::Encode;
use openssl::pkey::{PKey, Private};
use x509_cert::attr::{Attribute, Attributes};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq, Version};

use super::convert::{self, GostPublicKey};
use super::oid::Form;
use super::GostError;

/// A PKCS#10 request (DER) for the GOST private `key` with the `subject`, in `form`: the
/// key's SubjectPublicKeyInfo in that form ([`GostPublicKey::to_spki`]), no attributes, the
/// signature algorithm of the key's size as that form writes it
/// ([`convert::signature_algorithm_identifier`]: NCA's with NULL parameters) and the
/// signature over the CertificationRequestInfo from [`convert::sign`] (NCA's bytes reversed).
///
/// NCA's form of a request is inferred, not copied: no CSR made by NCA's software is at hand,
/// so it is written the way NCA signs its certificates, CRLs and OCSP responses (Kazakh OIDs,
/// NULL signature parameters, the signature bytes reversed), which this module's conversion
/// verifies on NCA's real artefacts. The TC26 form is what `openssl req` with the engine
/// writes, and the engine verifies it.
pub fn certification_request(
    subject: &Name,
    key: &PKey<Private>,
    form: Form,
) -> Result<Vec<u8>, GostError> {
    certification_request_with_email(subject, key, form, None)
}

/// [`certification_request`] with, when `email` is given, the one attribute the project's
/// RSA and EC requests may carry: an extensionRequest with a non-critical subjectAltName of
/// that rfc822Name (as `openssl req` writes it).
pub fn certification_request_with_email(
    subject: &Name,
    key: &PKey<Private>,
    form: Form,
    email: Option<&str>,
) -> Result<Vec<u8>, GostError> {
    let public = GostPublicKey::from_der(&key.public_key_to_der()?)?;
    let mut attributes = Attributes::new();
    if let Some(email) = email {
        let san = SubjectAltName(vec![GeneralName::Rfc822Name(Ia5String::new(email)?)]);
        let request = ExtensionReq(vec![Extension {
            extn_id: const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME,
            critical: false,
            extn_value: OctetString::new(san.to_der()?)?,
        }]);
        attributes.insert(Attribute::try_from(request)?)?;
    }
    let info = CertReqInfo {
        version: Version::V1,
        subject: subject.clone(),
        public_key: public.to_spki(form)?,
        attributes,
    };
    let tbs = info.to_der()?;
    let signature = convert::sign(key, &tbs, form)?;
    let request = CertReq {
        info,
        algorithm: convert::signature_algorithm_identifier(public.size(), form)?,
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(request.to_der()?)
}

#[cfg(test)]
mod tests;
