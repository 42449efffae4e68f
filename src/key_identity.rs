//! The identity of a subject public key: one value per key, whatever bytes it arrived in.
//!
//! Owns: [`KeyIdentity`], made only from a decoded key: the canonical SubjectPublicKeyInfo
//! (RSA: `rsaEncryption` with NULL parameters and the modulus and exponent, RFC 3279 §2.3.1;
//! EC: `id-ecPublicKey` with the named curve and the uncompressed point, RFC 5480 §2) and its
//! SHA-256. Every place that stores, blocks or compares a key (`certificates.spki_sha256`,
//! `blocked_keys`, `key_reused`, `key_blocked`, `same_key_for_auth_and_sign`) uses this value,
//! so that a compressed point, explicit curve parameters or a missing NULL name the same key
//! as its canonical encoding. Also [`non_canonical`]: why submitted bytes differ from the
//! canonical encoding. Must never: decide whether a key is acceptable (sizes, curves, weak
//! keys belong to `csr::key`), or touch the database.

use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use openssl::pkey::{Id, PKey, Public};

/// Why a key has no identity.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyIdentityError {
    /// The bytes are not a public key OpenSSL can decode.
    #[error("not a decodable public key")]
    Undecodable,
    /// An EC key whose curve has no name (explicit parameters of an unknown curve).
    #[error("the EC key's curve is not a named curve")]
    UnnamedCurve,
    /// A key type other than RSA and EC.
    #[error("only RSA and EC keys have an identity here")]
    UnsupportedType,
    /// OpenSSL failed while re-encoding the key.
    #[error("cannot re-encode the key: {0}")]
    Encoding(#[from] openssl::error::ErrorStack),
    /// The canonical encoding could not be written (a value DER cannot carry).
    #[error("cannot encode the key: {0}")]
    Der(#[from] der::Error),
}

/// The OID of the curves Tamga certifies, by OpenSSL's name for them.
fn named_curve_oid(nid: openssl::nid::Nid) -> Option<const_oid::ObjectIdentifier> {
    use const_oid::db::rfc5912;
    match nid {
        openssl::nid::Nid::X9_62_PRIME256V1 => Some(rfc5912::SECP_256_R_1),
        openssl::nid::Nid::SECP384R1 => Some(rfc5912::SECP_384_R_1),
        openssl::nid::Nid::SECP521R1 => Some(rfc5912::SECP_521_R_1),
        _ => None,
    }
}

/// The canonical SubjectPublicKeyInfo of an RSA key from its modulus and exponent (unsigned,
/// big-endian), as OpenSSL writes it, without OpenSSL's encoder (whose set-up per call costs
/// more than the rest of a key's checks).
fn canonical_rsa(n: &[u8], e: &[u8]) -> Result<Vec<u8>, KeyIdentityError> {
    use der::Encode;
    let rsa_public_key = RsaPublicKey {
        n: der::asn1::UintRef::new(n)?,
        e: der::asn1::UintRef::new(e)?,
    }
    .to_der()?;
    Ok(spki::SubjectPublicKeyInfoOwned {
        algorithm: spki::AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::RSA_ENCRYPTION,
            parameters: Some(der::asn1::Null.into()),
        },
        subject_public_key: der::asn1::BitString::from_bytes(&rsa_public_key)?,
    }
    .to_der()?)
}

/// The canonical SubjectPublicKeyInfo of an EC key on the named `curve`, from its
/// uncompressed point.
fn canonical_ec(
    curve: const_oid::ObjectIdentifier,
    point: &[u8],
) -> Result<Vec<u8>, KeyIdentityError> {
    use der::Encode;
    Ok(spki::SubjectPublicKeyInfoOwned {
        algorithm: spki::AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
            parameters: Some(der::asn1::Any::from(&curve)),
        },
        subject_public_key: der::asn1::BitString::from_bytes(point)?,
    }
    .to_der()?)
}

/// RSAPublicKey (RFC 8017 §A.1.1).
#[derive(der::Sequence)]
struct RsaPublicKey<'a> {
    n: der::asn1::UintRef<'a>,
    e: der::asn1::UintRef<'a>,
}

/// A public key's identity: its canonical SubjectPublicKeyInfo and the SHA-256 of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIdentity {
    canonical_der: Vec<u8>,
    sha256_hex: String,
}

impl KeyIdentity {
    /// The identity of a decoded RSA or EC key.
    pub fn of_key(key: &PKey<Public>) -> Result<KeyIdentity, KeyIdentityError> {
        let canonical_der = match key.id() {
            Id::RSA => {
                let rsa = key.rsa()?;
                canonical_rsa(&rsa.n().to_vec(), &rsa.e().to_vec())?
            }
            Id::EC => {
                let ec = key.ec_key()?;
                let nid = ec
                    .group()
                    .curve_name()
                    .ok_or(KeyIdentityError::UnnamedCurve)?;
                let mut ctx = BigNumContext::new()?;
                let point = ec.public_key().to_bytes(
                    ec.group(),
                    PointConversionForm::UNCOMPRESSED,
                    &mut ctx,
                )?;
                match named_curve_oid(nid) {
                    Some(curve) => canonical_ec(curve, &point)?,
                    // Another named curve (refused later by `csr::key`, but still one key):
                    // a fresh group from the name is encoded as a named curve, and a fresh
                    // key writes its point uncompressed.
                    None => {
                        let group = EcGroup::from_curve_name(nid)?;
                        let point = EcPoint::from_bytes(&group, &point, &mut ctx)?;
                        EcKey::from_public_key(&group, &point)?.public_key_to_der()?
                    }
                }
            }
            _ => return Err(KeyIdentityError::UnsupportedType),
        };
        let sha256_hex = hex::encode(openssl::sha::sha256(&canonical_der));
        Ok(KeyIdentity {
            canonical_der,
            sha256_hex,
        })
    }

    /// The identity of the key in a DER SubjectPublicKeyInfo, canonical or not.
    pub fn of_spki_der(der: &[u8]) -> Result<KeyIdentity, KeyIdentityError> {
        let key = PKey::public_key_from_der(der).map_err(|_| KeyIdentityError::Undecodable)?;
        Self::of_key(&key)
    }

    /// The canonical SubjectPublicKeyInfo, DER: what a certificate carries.
    pub fn canonical_der(&self) -> &[u8] {
        &self.canonical_der
    }

    /// SHA-256 of the canonical SubjectPublicKeyInfo, lower-case hex: the stored identity.
    pub fn sha256_hex(&self) -> &str {
        &self.sha256_hex
    }
}

/// Why `submitted` (a DER SubjectPublicKeyInfo) is not the canonical encoding of `identity`'s
/// key, or `None` when it is exactly the canonical encoding.
pub fn non_canonical(submitted: &[u8], identity: &KeyIdentity) -> Option<String> {
    use der::{Decode, Tagged};
    if submitted == identity.canonical_der() {
        return None;
    }
    let Ok(spki) = spki::SubjectPublicKeyInfoRef::from_der(submitted) else {
        return Some("the SubjectPublicKeyInfo is not DER".to_owned());
    };
    let params = spki.algorithm.parameters;
    let reason = if spki.algorithm.oid == const_oid::db::rfc5912::RSA_ENCRYPTION {
        match params {
            None => "RSA key without the NULL parameters (RFC 3279 §2.3.1 requires NULL)",
            Some(p) if p.tag() != der::Tag::Null => {
                "RSA key with parameters other than NULL (RFC 3279 §2.3.1)"
            }
            Some(_) => "RSA key not in the DER encoding of RFC 3279 §2.3.1",
        }
    } else if spki.algorithm.oid == const_oid::db::rfc5912::ID_EC_PUBLIC_KEY {
        match (
            params.map(|p| p.tag()),
            spki.subject_public_key.raw_bytes().first(),
        ) {
            (Some(t), _) if t != der::Tag::ObjectIdentifier => {
                "explicit EC parameters (RFC 5480 §2.1.1 allows only a named curve)"
            }
            (_, Some(0x02 | 0x03)) => {
                "compressed EC point (RFC 5480 §2.2: the point must be uncompressed)"
            }
            (_, Some(0x06 | 0x07)) => {
                "hybrid EC point (RFC 5480 §2.2: the point must be uncompressed)"
            }
            _ => "EC key not in the DER encoding of RFC 5480 §2",
        }
    } else {
        "not the canonical SubjectPublicKeyInfo"
    };
    Some(reason.to_owned())
}

/// A test's key identity for a SubjectPublicKeyInfo taken as canonical as it is (a GOST key the
/// CA certifies, before the RA's parsing gives such keys an identity of their own).
#[cfg(test)]
impl KeyIdentity {
    pub(crate) fn for_test(canonical_der: &[u8]) -> KeyIdentity {
        KeyIdentity {
            canonical_der: canonical_der.to_vec(),
            sha256_hex: hex::encode(openssl::sha::sha256(canonical_der)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;
    use openssl::ec::Asn1Flag;
    use openssl::nid::Nid;
    use openssl::rsa::Rsa;

    fn ec_encodings(nid: Nid) -> (Vec<u8>, Vec<Vec<u8>>) {
        let group = EcGroup::from_curve_name(nid).unwrap();
        let key = EcKey::generate(&group).unwrap();
        let canonical = key.public_key_to_der().unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        let mut others = Vec::new();
        for form in [PointConversionForm::COMPRESSED, PointConversionForm::HYBRID] {
            let bytes = key.public_key().to_bytes(&group, form, &mut ctx).unwrap();
            let parsed: spki::SubjectPublicKeyInfoRef<'_> =
                der::Decode::from_der(&canonical).unwrap();
            let other = der::Encode::to_der(&spki::SubjectPublicKeyInfoRef {
                algorithm: parsed.algorithm,
                subject_public_key: der::asn1::BitStringRef::from_bytes(&bytes).unwrap(),
            })
            .unwrap();
            others.push(other);
        }
        let mut explicit_group = EcGroup::from_curve_name(nid).unwrap();
        explicit_group.set_asn1_flag(Asn1Flag::EXPLICIT_CURVE);
        let explicit = EcKey::from_public_key(&explicit_group, key.public_key()).unwrap();
        others.push(explicit.public_key_to_der().unwrap());
        (canonical, others)
    }

    #[test]
    fn the_canonical_encoding_is_the_one_openssl_writes() {
        let ec = |nid| {
            PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap())
                .unwrap()
        };
        let keys = [
            ("P-256", ec(Nid::X9_62_PRIME256V1)),
            ("P-384", ec(Nid::SECP384R1)),
            ("P-521", ec(Nid::SECP521R1)),
            ("secp256k1", ec(Nid::SECP256K1)),
            (
                "RSA-2048",
                PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
            ),
            (
                "RSA-3072",
                PKey::from_rsa(Rsa::generate(3072).unwrap()).unwrap(),
            ),
        ];
        for (name, key) in keys {
            let openssl = key.public_key_to_der().unwrap();
            let public = PKey::public_key_from_der(&openssl).unwrap();
            assert_eq!(
                KeyIdentity::of_key(&public).unwrap().canonical_der(),
                openssl,
                "{name}"
            );
        }
    }

    #[test]
    fn every_ec_encoding_of_one_key_has_one_identity() {
        for nid in [Nid::X9_62_PRIME256V1, Nid::SECP384R1] {
            let (canonical, others) = ec_encodings(nid);
            let id = KeyIdentity::of_spki_der(&canonical).unwrap();
            assert_eq!(id.canonical_der(), canonical.as_slice());
            assert_eq!(
                id.sha256_hex(),
                hex::encode(openssl::sha::sha256(&canonical))
            );
            assert_eq!(non_canonical(&canonical, &id), None);
            let reasons: Vec<String> = others
                .iter()
                .map(|other| {
                    assert_ne!(other, &canonical);
                    let other_id = KeyIdentity::of_spki_der(other).unwrap();
                    assert_eq!(other_id, id);
                    non_canonical(other, &id).unwrap()
                })
                .collect();
            assert!(reasons[0].starts_with("compressed"), "{reasons:?}");
            assert!(reasons[1].starts_with("hybrid"), "{reasons:?}");
            assert!(reasons[2].starts_with("explicit"), "{reasons:?}");
        }
    }

    #[test]
    fn rsa_without_null_parameters_is_the_same_key() {
        let rsa = Rsa::generate(2048).unwrap();
        let canonical = rsa.public_key_to_der().unwrap();
        let parsed: spki::SubjectPublicKeyInfoRef<'_> = der::Decode::from_der(&canonical).unwrap();
        let without_null = spki::SubjectPublicKeyInfoRef {
            algorithm: spki::AlgorithmIdentifierRef {
                oid: parsed.algorithm.oid,
                parameters: None,
            },
            subject_public_key: parsed.subject_public_key,
        };
        let other = der::Encode::to_der(&without_null).unwrap();
        assert_ne!(other, canonical);
        let id = KeyIdentity::of_spki_der(&canonical).unwrap();
        assert_eq!(KeyIdentity::of_spki_der(&other).unwrap(), id);
        assert!(non_canonical(&other, &id).unwrap().contains("NULL"));
    }

    #[test]
    fn other_key_types_have_no_identity() {
        let ed = PKey::generate_ed25519().unwrap();
        let der = ed.public_key_to_der().unwrap();
        assert!(matches!(
            KeyIdentity::of_spki_der(&der),
            Err(KeyIdentityError::UnsupportedType)
        ));
        assert!(matches!(
            KeyIdentity::of_spki_der(b"junk"),
            Err(KeyIdentityError::Undecodable)
        ));
    }
}
