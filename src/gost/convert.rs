//! The conversion between NCA's form and the TC26 form — public keys and signature values —
//! and verifying and signing through the engine with it.

use der::asn1::{BitString, Null, ObjectIdentifier, OctetString};
use der::{Any, Decode, Encode, Sequence};
use openssl::hash::MessageDigest;
use openssl::pkey::{HasPrivate, PKey, PKeyRef};
use openssl::sign::{Signer, Verifier};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::oid::{self, Form, KeySize};
use super::{engine, GostError};

/// The parameters of a GOST public key (RFC 9215 `GostR3410-2012-PublicKeyParameters`; NCA's
/// have the same shape).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
struct KeyParameters {
    param_set: ObjectIdentifier,
    digest: Option<ObjectIdentifier>,
}

/// A GOST public key (SubjectPublicKeyInfo) in either form, checked: a key algorithm of one
/// of the two forms, parameter set A of its size, the digest (when named) of its size, and a
/// point of the size's length. Whether the point is on the curve is OpenSSL's to say when it
/// reads the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GostPublicKey {
    form: Form,
    size: KeySize,
    /// The point as the OCTET STRING inside the BIT STRING carries it (x then y, each
    /// little-endian): the same in both forms.
    point: Vec<u8>,
}

impl GostPublicKey {
    /// Reads and checks a SubjectPublicKeyInfo (DER) in NCA's or the TC26 form.
    pub fn from_der(spki: &[u8]) -> Result<GostPublicKey, GostError> {
        let info = SubjectPublicKeyInfoOwned::from_der(spki)?;
        Self::from_spki(&info)
    }

    /// Checks a decoded SubjectPublicKeyInfo in NCA's or the TC26 form.
    pub fn from_spki(info: &SubjectPublicKeyInfoOwned) -> Result<GostPublicKey, GostError> {
        let algorithm = &info.algorithm;
        let (form, size) =
            oid::key_algorithm(&algorithm.oid).ok_or(GostError::NotGost(algorithm.oid))?;
        let oids = size.oids(form);
        let parameters = algorithm
            .parameters
            .as_ref()
            .ok_or(GostError::KeyParameters(
                "the key algorithm has no parameters",
            ))?;
        let parameters: KeyParameters = parameters.decode_as()?;
        if parameters.param_set != oids.param_set {
            return Err(GostError::UnknownParameterSet(parameters.param_set));
        }
        if let Some(digest) = parameters.digest {
            if digest != oids.digest {
                return Err(GostError::DigestMismatch(digest));
            }
        }
        let bits = info
            .subject_public_key
            .as_bytes()
            .ok_or(GostError::KeyParameters("the public key has unused bits"))?;
        let point = OctetString::from_der(bits)?.into_bytes();
        let expected = 2 * size.coordinate_len();
        if point.len() != expected {
            return Err(GostError::PointLength {
                expected,
                found: point.len(),
            });
        }
        Ok(GostPublicKey { form, size, point })
    }

    /// The form it was read in.
    pub fn form(&self) -> Form {
        self.form
    }

    /// Its size.
    pub fn size(&self) -> KeySize {
        self.size
    }

    /// The key as a SubjectPublicKeyInfo in `form`: the algorithm and parameter OIDs of that
    /// form, the key's bits unchanged.
    pub fn to_spki(&self, form: Form) -> Result<SubjectPublicKeyInfoOwned, GostError> {
        let point = OctetString::new(self.point.clone())?.to_der()?;
        Ok(SubjectPublicKeyInfoOwned {
            algorithm: key_algorithm_identifier(self.size, form)?,
            subject_public_key: BitString::from_bytes(&point)?,
        })
    }

    /// [`GostPublicKey::to_spki`] as DER.
    pub fn to_der(&self, form: Form) -> Result<Vec<u8>, GostError> {
        Ok(self.to_spki(form)?.to_der()?)
    }

    /// The key as OpenSSL reads it (through the engine, from the TC26 form).
    pub fn to_openssl(&self) -> Result<PKey<openssl::pkey::Public>, GostError> {
        engine_ready()?;
        PKey::public_key_from_der(&self.to_der(Form::Tc26)?)
            .map_err(|e| GostError::KeyRejected(e.to_string()))
    }
}

/// The key AlgorithmIdentifier of `size` in `form`: the key OID with its parameter set A and,
/// where that form names it, the digest (public keys and PKCS#8 private keys alike).
pub fn key_algorithm_identifier(
    size: KeySize,
    form: Form,
) -> Result<AlgorithmIdentifierOwned, GostError> {
    let oids = size.oids(form);
    let parameters = KeyParameters {
        param_set: oids.param_set,
        digest: oids.digest_in_key_parameters.then_some(oids.digest),
    };
    Ok(AlgorithmIdentifierOwned {
        oid: oids.key,
        parameters: Some(Any::encode_from(&parameters)?),
    })
}

/// A SubjectPublicKeyInfo (DER) of either form, in the TC26 form.
pub fn spki_to_tc26(spki: &[u8]) -> Result<Vec<u8>, GostError> {
    GostPublicKey::from_der(spki)?.to_der(Form::Tc26)
}

/// A SubjectPublicKeyInfo (DER) of either form, in NCA's form.
pub fn spki_to_nca(spki: &[u8]) -> Result<Vec<u8>, GostError> {
    GostPublicKey::from_der(spki)?.to_der(Form::Nca)
}

/// A signature value in the engine's byte order (the TC26 form) from NCA's, or the other way:
/// NCA writes the engine's bytes in reverse, so the conversion is its own inverse.
pub fn reverse_signature(signature: &[u8]) -> Vec<u8> {
    signature.iter().rev().copied().collect()
}

/// The form and size of a GOST signature algorithm, checked: NCA's parameters are NULL (or
/// absent), TC26's absent (or NULL).
pub fn signature_algorithm(
    algorithm: &AlgorithmIdentifierOwned,
) -> Result<(Form, KeySize), GostError> {
    let (form, size) =
        oid::signature_algorithm(&algorithm.oid).ok_or(GostError::NotGost(algorithm.oid))?;
    match &algorithm.parameters {
        None => {}
        Some(p) if p.decode_as::<Null>().is_ok() => {}
        Some(_) => return Err(GostError::SignatureParameters(algorithm.oid)),
    }
    Ok((form, size))
}

/// The signature AlgorithmIdentifier of `size` in `form`, as that form writes it: NCA's with
/// NULL parameters (as in its certificates, CRLs and OCSP responses), TC26's without.
pub fn signature_algorithm_identifier(
    size: KeySize,
    form: Form,
) -> Result<AlgorithmIdentifierOwned, GostError> {
    let parameters = match form {
        Form::Nca => Some(Any::encode_from(&Null)?),
        Form::Tc26 => None,
    };
    Ok(AlgorithmIdentifierOwned {
        oid: size.oids(form).signature,
        parameters,
    })
}

/// A signature value (the BIT STRING's bytes) in the engine's byte order, checked against the
/// algorithm: the length of `size` and no unused bits; NCA's reversed.
pub fn engine_signature(
    algorithm: &AlgorithmIdentifierOwned,
    signature: &BitString,
) -> Result<(KeySize, Vec<u8>), GostError> {
    let (form, size) = signature_algorithm(algorithm)?;
    let bytes = signature.as_bytes().ok_or(GostError::SignatureLength {
        expected: size.signature_len(),
        found: signature.raw_bytes().len(),
    })?;
    if bytes.len() != size.signature_len() {
        return Err(GostError::SignatureLength {
            expected: size.signature_len(),
            found: bytes.len(),
        });
    }
    let bytes = match form {
        Form::Nca => reverse_signature(bytes),
        Form::Tc26 => bytes.to_vec(),
    };
    Ok((size, bytes))
}

/// Verifies a GOST signature over `tbs` (the to-be-signed bytes exactly as signed): the
/// signature `algorithm` and value as the structure carries them (NCA's or TC26's), and the
/// signer's SubjectPublicKeyInfo (DER, NCA's or TC26's form). The key is mapped to the TC26
/// form, NCA's signature reversed, and OpenSSL (the gost engine) checks it.
pub fn verify(
    tbs: &[u8],
    algorithm: &AlgorithmIdentifierOwned,
    signature: &BitString,
    signer_spki: &[u8],
) -> Result<(), GostError> {
    let key = GostPublicKey::from_der(signer_spki)?;
    let (size, signature) = engine_signature(algorithm, signature)?;
    if key.size() != size {
        return Err(GostError::KeySizeMismatch {
            key: key.size(),
            signature: size,
        });
    }
    let key = key.to_openssl()?;
    let digest = digest(size)?;
    let valid = (|| {
        let mut verifier = Verifier::new(digest, &key)?;
        verifier.update(tbs)?;
        verifier.verify(&signature)
    })();
    // A signature OpenSSL cannot read is as wrong as one that does not match.
    drop(openssl::error::ErrorStack::get());
    match valid {
        Ok(true) => Ok(()),
        Ok(false) | Err(_) => Err(GostError::BadSignature),
    }
}

/// Signs `tbs` with a GOST private key (read by OpenSSL through the engine) and returns the
/// signature value in `form`: the engine's bytes for TC26, reversed for NCA. The digest
/// follows from the key's size; the key must be parameter set A of its size.
pub fn sign<T: HasPrivate>(key: &PKeyRef<T>, tbs: &[u8], form: Form) -> Result<Vec<u8>, GostError> {
    engine_ready()?;
    let public = GostPublicKey::from_der(&key.public_key_to_der()?)?;
    let size = public.size();
    let mut signer = Signer::new(digest(size)?, key)?;
    signer.update(tbs)?;
    let signature = signer.sign_to_vec()?;
    if signature.len() != size.signature_len() {
        return Err(GostError::SignatureLength {
            expected: size.signature_len(),
            found: signature.len(),
        });
    }
    Ok(match form {
        Form::Nca => reverse_signature(&signature),
        Form::Tc26 => signature,
    })
}

/// The engine's Streebog of `size`.
fn digest(size: KeySize) -> Result<MessageDigest, GostError> {
    MessageDigest::from_name(size.digest_name()).ok_or_else(|| {
        GostError::EngineUnavailable(format!("OpenSSL has no {}", size.digest_name()))
    })
}

/// Whether the engine works here, as an error when it does not.
pub(super) fn engine_ready() -> Result<(), GostError> {
    match engine::support() {
        engine::GostSupport::Available => Ok(()),
        engine::GostSupport::Unavailable(why) => Err(GostError::EngineUnavailable(why.clone())),
    }
}
