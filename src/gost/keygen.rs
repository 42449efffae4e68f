//! New GOST private keys, made without the engine's key-generation control.
//!
//! The `openssl` crate cannot pass the engine its `paramset` option, and the engine will not
//! generate a key without one. A GOST R 34.10 private key is only a number `d` with
//! `0 < d < q` (the order of the parameter set's base point), and the engine computes the
//! public key `d·P` itself when it reads a private key. So the key is made here: `d` from
//! OpenSSL's CSPRNG, reduced modulo `q`, written as the PKCS#8 the engine writes (TC26 key
//! algorithm with parameter set A; the private key as the `d` bytes little-endian, not wrapped
//! in an INTEGER) and read back by OpenSSL.

use der::asn1::OctetString;
use der::{Decode, Encode, Sequence};
use openssl::bn::{BigNum, BigNumContext};
use openssl::pkey::{PKey, Private};
use spki::AlgorithmIdentifierOwned;

use super::convert::{engine_ready, key_algorithm_identifier, GostPublicKey};
use super::oid::{Form, KeySize};
use super::GostError;

/// The order `q` of the base point of TC26 512-bit parameter set A
/// (`id-tc26-gost-3410-12-512-paramSetA`, RFC 7836 appendix A.2), big-endian hex.
const ORDER_512_A: &str = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\
                           27E69532F48D89116FF22B8D4E0560609B4B38ABFAD2B85DCACDB1411F10B275";

/// The order `q` of the base point of TC26 256-bit parameter set A
/// (`id-tc26-gost-3410-12-256-paramSetA`, RFC 7836 appendix A.2), big-endian hex.
const ORDER_256_A: &str = "400000000000000000000000000000000FD8CDDFC87B6635C115AF556C360C67";

/// PKCS#8 `PrivateKeyInfo` (RFC 5208), as the engine writes a GOST key: no attributes.
#[derive(Sequence)]
struct PrivateKeyInfo {
    version: u8,
    algorithm: AlgorithmIdentifierOwned,
    private_key: OctetString,
}

/// The order of `size`'s parameter set A.
fn order(size: KeySize) -> Result<BigNum, GostError> {
    Ok(BigNum::from_hex_str(match size {
        KeySize::Bits512 => ORDER_512_A,
        KeySize::Bits256 => ORDER_256_A,
    })?)
}

/// A new GOST R 34.10-2012/2015 private key of `size` on parameter set A (the only set NCA
/// uses), read by OpenSSL through the engine; fails with [`GostError::EngineUnavailable`]
/// where the engine is not loaded.
pub fn generate(size: KeySize) -> Result<PKey<Private>, GostError> {
    engine_ready()?;
    let q = order(size)?;
    let mut ctx = BigNumContext::new()?;
    loop {
        // 64 bits more than q has, so that the reduction modulo q is uniform to within 2^-64.
        let mut wide = BigNum::new()?;
        wide.rand(
            i32::try_from(8 * size.coordinate_len() + 64).unwrap_or(i32::MAX),
            openssl::bn::MsbOption::MAYBE_ZERO,
            false,
        )?;
        let mut d = BigNum::new()?;
        d.nnmod(&wide, &q, &mut ctx)?;
        if d.num_bits() == 0 {
            continue;
        }
        return from_scalar(size, &d);
    }
}

/// The private key whose scalar is `d` (`0 < d < q`), through the engine.
fn from_scalar(size: KeySize, d: &BigNum) -> Result<PKey<Private>, GostError> {
    let len = i32::try_from(size.coordinate_len()).unwrap_or(i32::MAX);
    let mut little_endian = d.to_vec_padded(len)?;
    little_endian.reverse();
    let info = PrivateKeyInfo {
        version: 0,
        algorithm: key_algorithm_identifier(size, Form::Tc26)?,
        private_key: OctetString::new(little_endian)?,
    };
    let key = PKey::private_key_from_pkcs8(&info.to_der()?)
        .map_err(|e| GostError::KeyRejected(e.to_string()))?;
    // The engine computed the public key: it must be a GOST key of the size asked for.
    let public = GostPublicKey::from_der(&key.public_key_to_der()?)?;
    if public.size() != size {
        return Err(GostError::KeyParameters(
            "the engine read the new key as another size",
        ));
    }
    Ok(key)
}

/// The scalar `d` of a GOST private key OpenSSL holds, read from its PKCS#8 (TC26 form, as
/// the engine writes it): for the containers that carry the key in NCA's own encoding.
pub fn private_scalar(key: &PKey<Private>) -> Result<(KeySize, Vec<u8>), GostError> {
    let der = key.private_key_to_pkcs8()?;
    let info = PrivateKeyInfo::from_der(&der)?;
    let public = GostPublicKey::from_der(&key.public_key_to_der()?)?;
    let size = public.size();
    let raw = info.private_key.as_bytes();
    // The engine writes the little-endian bytes bare; older versions wrapped them in an
    // OCTET STRING of their own.
    let bytes = if raw.len() == size.coordinate_len() {
        raw.to_vec()
    } else {
        OctetString::from_der(raw)?.into_bytes()
    };
    if bytes.len() != size.coordinate_len() {
        return Err(GostError::KeyParameters(
            "the private key is not one coordinate long",
        ));
    }
    Ok((size, bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_orders_are_the_base_points_orders() {
        // If q is the order of P, d and d + q name the same public point.
        if !super::super::engine_for_test("the_orders_are_the_base_points_orders") {
            return;
        }
        for size in [KeySize::Bits512, KeySize::Bits256] {
            let q = order(size).unwrap();
            let d = BigNum::from_u32(0x1234_5679).unwrap();
            let mut d_plus_q = BigNum::new().unwrap();
            d_plus_q.checked_add(&d, &q).unwrap();
            let a = from_scalar(size, &d).unwrap();
            // d + q still fits one coordinate: q is below 2^(8·len) − 2^32.
            let b = from_scalar(size, &d_plus_q).unwrap();
            assert_eq!(
                a.public_key_to_der().unwrap(),
                b.public_key_to_der().unwrap(),
                "{size:?}"
            );
            let mut d_plus_1 = BigNum::new().unwrap();
            d_plus_1
                .checked_add(&d, &BigNum::from_u32(1).unwrap())
                .unwrap();
            let c = from_scalar(size, &d_plus_1).unwrap();
            assert_ne!(
                a.public_key_to_der().unwrap(),
                c.public_key_to_der().unwrap()
            );
        }
    }

    #[test]
    fn a_new_key_signs_and_its_signature_verifies_in_both_forms() {
        if !super::super::engine_for_test(
            "a_new_key_signs_and_its_signature_verifies_in_both_forms",
        ) {
            return;
        }
        for size in [KeySize::Bits512, KeySize::Bits256] {
            let key = generate(size).unwrap();
            let other = generate(size).unwrap();
            assert_ne!(
                key.public_key_to_der().unwrap(),
                other.public_key_to_der().unwrap()
            );
            let spki = key.public_key_to_der().unwrap();
            for form in [Form::Nca, Form::Tc26] {
                let signature = super::super::sign(&key, b"tbs", form).unwrap();
                let algorithm = super::super::signature_algorithm_identifier(size, form).unwrap();
                let bits = der::asn1::BitString::from_bytes(&signature).unwrap();
                super::super::verify(b"tbs", &algorithm, &bits, &spki).unwrap();
                assert!(super::super::verify(b"tbS", &algorithm, &bits, &spki).is_err());
            }
            let (read_size, scalar) = private_scalar(&key).unwrap();
            assert_eq!(read_size, size);
            let mut big_endian = scalar.clone();
            big_endian.reverse();
            let again = from_scalar(size, &BigNum::from_slice(&big_endian).unwrap()).unwrap();
            assert_eq!(
                again.public_key_to_der().unwrap(),
                key.public_key_to_der().unwrap()
            );
        }
    }
}
