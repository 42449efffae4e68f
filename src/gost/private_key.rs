//! GOST private keys as PKCS#8 `PrivateKeyInfo` in NCA's form and in the engine's.
//!
//! Both carry the scalar `d` little-endian and unmasked; they differ in the key algorithm's
//! OIDs (NCA's Kazakh arc, or TC26's) and in how the scalar sits in the `privateKey` OCTET
//! STRING: NCA's containers wrap it in an OCTET STRING of its own (`04 40 …` inside), the
//! engine (3.0.1) writes it bare (and reads both). NCA's real container
//! (`tests/data/nca-gost-2015/individual_gost2015.p12`) holds its key so; its README says how
//! that was found.

use der::asn1::OctetString;
use der::{Decode, Encode, Sequence};
use openssl::bn::BigNum;
use openssl::pkey::{PKey, Private};
use spki::AlgorithmIdentifierOwned;

use super::convert::{engine_ready, key_algorithm, key_algorithm_identifier, GostPublicKey};
use super::keygen::{order, private_scalar};
use super::oid::{Form, KeySize};
use super::GostError;

/// PKCS#8 `PrivateKeyInfo` (RFC 5208) without attributes, as both forms write it.
#[derive(Sequence)]
struct PrivateKeyInfo {
    version: u8,
    algorithm: AlgorithmIdentifierOwned,
    private_key: OctetString,
}

/// The GOST private key `key` (read by OpenSSL through the engine) as PKCS#8 DER in `form`:
/// NCA's (its key OIDs, the scalar in an inner OCTET STRING — what NCA's `GOST512_<ski>.p12`
/// holds) or TC26's (the bytes the engine writes itself).
pub fn private_key_info(key: &PKey<Private>, form: Form) -> Result<Vec<u8>, GostError> {
    let (size, scalar) = private_scalar(key)?;
    let private_key = match form {
        Form::Nca => OctetString::new(OctetString::new(scalar)?.to_der()?)?,
        Form::Tc26 => OctetString::new(scalar)?,
    };
    Ok(PrivateKeyInfo {
        version: 0,
        algorithm: key_algorithm_identifier(size, form)?,
        private_key,
    }
    .to_der()?)
}

/// A GOST private key from PKCS#8 DER in NCA's or the TC26 form (the scalar bare or in an
/// inner OCTET STRING), checked — the key algorithm of either form with parameter set A, a
/// scalar one coordinate long with `0 < d < q` — and read by OpenSSL through the engine.
pub fn private_key_from_info(der: &[u8]) -> Result<PKey<Private>, GostError> {
    engine_ready()?;
    let info = PrivateKeyInfo::from_der(der)?;
    if info.version != 0 {
        return Err(GostError::KeyParameters("a PKCS#8 version other than 0"));
    }
    let (_, size) = key_algorithm(&info.algorithm)?;
    let raw = info.private_key.as_bytes();
    let scalar = if raw.len() == size.coordinate_len() {
        raw.to_vec()
    } else {
        OctetString::from_der(raw)?.into_bytes()
    };
    if scalar.len() != size.coordinate_len() {
        return Err(GostError::KeyParameters(
            "the private key is not one coordinate long",
        ));
    }
    let mut big_endian = scalar.clone();
    big_endian.reverse();
    let d = BigNum::from_slice(&big_endian)?;
    if d.num_bits() == 0 || d >= order(size)? {
        return Err(GostError::KeyParameters(
            "the private key is not between 0 and the order of the curve's base point",
        ));
    }
    let engine_form = PrivateKeyInfo {
        version: 0,
        algorithm: key_algorithm_identifier(size, Form::Tc26)?,
        private_key: OctetString::new(scalar)?,
    };
    let key = PKey::private_key_from_der(&engine_form.to_der()?)
        .map_err(|e| GostError::KeyRejected(e.to_string()))?;
    let public = GostPublicKey::from_der(&key.public_key_to_der()?)?;
    if public.size() != size {
        return Err(GostError::KeyParameters(
            "the engine read the key as another size",
        ));
    }
    Ok(key)
}

/// Whether `key` (OpenSSL's) is a GOST R 34.10-2015 key of parameter set A, and of which
/// size.
pub fn private_key_size(key: &PKey<Private>) -> Option<KeySize> {
    let spki = key.public_key_to_der().ok()?;
    GostPublicKey::from_der(&spki).ok().map(|k| k.size())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use der::asn1::ObjectIdentifier;
    use der::Any;

    use super::super::engine_for_test;
    use super::*;

    /// A PKCS#8 of `size` in `form` with the private key bytes `private_key` as they are.
    fn info(size: KeySize, form: Form, private_key: Vec<u8>) -> Vec<u8> {
        PrivateKeyInfo {
            version: 0,
            algorithm: key_algorithm_identifier(size, form).unwrap(),
            private_key: OctetString::new(private_key).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    /// The TC26 form is what the engine writes itself; NCA's has NCA's key AlgorithmIdentifier
    /// and the same scalar in an inner OCTET STRING; each reads back as the same key, and a key
    /// read from one form writes the other.
    #[test]
    fn a_key_in_both_forms() {
        if !engine_for_test("a_key_in_both_forms") {
            return;
        }
        for size in [KeySize::Bits512, KeySize::Bits256] {
            let key = super::super::generate(size).unwrap();
            let tc26 = private_key_info(&key, Form::Tc26).unwrap();
            assert_eq!(tc26, key.private_key_to_pkcs8().unwrap(), "{size:?}");
            let nca = private_key_info(&key, Form::Nca).unwrap();
            let (tc26_info, nca_info) = (
                PrivateKeyInfo::from_der(&tc26).unwrap(),
                PrivateKeyInfo::from_der(&nca).unwrap(),
            );
            assert_eq!(
                nca_info.algorithm,
                key_algorithm_identifier(size, Form::Nca).unwrap()
            );
            let inner = OctetString::from_der(nca_info.private_key.as_bytes()).unwrap();
            assert_eq!(inner.as_bytes(), tc26_info.private_key.as_bytes());
            assert_eq!(inner.as_bytes().len(), size.coordinate_len());
            for der in [&tc26, &nca] {
                let read = private_key_from_info(der).unwrap();
                assert!(read.public_eq(&key), "{size:?}");
                assert_eq!(private_key_size(&read), Some(size));
            }
            let from_nca = private_key_from_info(&nca).unwrap();
            assert_eq!(private_key_info(&from_nca, Form::Tc26).unwrap(), tc26);
            // The engine's older form (the scalar wrapped) under TC26's OIDs reads too.
            let wrapped = info(size, Form::Tc26, inner.to_der().unwrap());
            assert!(private_key_from_info(&wrapped).unwrap().public_eq(&key));
        }
        let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        assert_eq!(private_key_size(&rsa), None);
    }

    /// A scalar of 0, of q or above, of the wrong length; another algorithm or parameter set,
    /// another PKCS#8 version, and bytes that are not PKCS#8 are refused, each with its reason.
    #[test]
    fn bad_private_keys_are_refused() {
        if !engine_for_test("bad_private_keys_are_refused") {
            return;
        }
        let size = KeySize::Bits512;
        let mut q = order(size).unwrap().to_vec();
        q.reverse();
        for (what, scalar) in [
            ("zero", vec![0u8; 64]),
            ("q", q),
            ("all ones", vec![0xff; 64]),
        ] {
            let outcome = private_key_from_info(&info(size, Form::Nca, scalar));
            assert!(
                matches!(outcome, Err(GostError::KeyParameters(_))),
                "{what}: {outcome:?}"
            );
        }
        for scalar in [vec![1u8; 63], vec![1u8; 32]] {
            let wrapped = OctetString::new(scalar.clone()).unwrap().to_der().unwrap();
            for bytes in [scalar, wrapped] {
                let outcome = private_key_from_info(&info(size, Form::Nca, bytes));
                assert!(outcome.is_err(), "{outcome:?}");
            }
        }
        let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        assert!(matches!(
            private_key_from_info(&rsa.private_key_to_pkcs8().unwrap()),
            Err(GostError::NotGost(_))
        ));
        let other_set = ObjectIdentifier::new_unwrap("1.2.643.7.1.2.1.2.2");
        let mut algorithm = key_algorithm_identifier(size, Form::Tc26).unwrap();
        let parameters: der::asn1::SequenceOf<ObjectIdentifier, 2> = {
            let mut s = der::asn1::SequenceOf::new();
            s.add(other_set).unwrap();
            s
        };
        algorithm.parameters = Some(Any::encode_from(&parameters).unwrap());
        let unknown = PrivateKeyInfo {
            version: 0,
            algorithm,
            private_key: OctetString::new(vec![1u8; 64]).unwrap(),
        };
        assert!(matches!(
            private_key_from_info(&unknown.to_der().unwrap()),
            Err(GostError::UnknownParameterSet(set)) if set == other_set
        ));
        let mut version_1 = info(size, Form::Nca, vec![1u8; 64]);
        // 30 LL 02 01 00: the version's value.
        assert_eq!(version_1[2..5], [0x02, 0x01, 0x00]);
        version_1[4] = 1;
        assert!(matches!(
            private_key_from_info(&version_1),
            Err(GostError::KeyParameters(_))
        ));
        assert!(matches!(
            private_key_from_info(b"not PKCS#8"),
            Err(GostError::Der(_))
        ));
    }
}
