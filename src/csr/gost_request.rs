//! SIGN requests for a GOST R 34.10-2015 key, in NCA's form (Kazakh OIDs, the signature bytes
//! reversed) or the TC26 form `openssl req` with the gost engine writes: the key read and
//! checked by `gost` (algorithm, parameter set A of its size, the point's length), the
//! signature algorithm of the key's size, the point checked here on its curve and in the
//! subgroup of the generator (the key policy's part for GOST), then the proof of possession
//! checked by `gost` (the request's signature with its own key, through the engine). The key
//! travels on in NCA's form, the one the certificate carries; its identity is that encoding's,
//! so the same key in the two forms is one key.
//!
//! Decided: the signature's form need not be the key's (an NCA key may sign in the TC26 form
//! and the other way round). The signature algorithm says how its bytes are ordered, and the
//! check proves possession either way; the sizes must agree. Every refusal that does not need
//! the engine comes before `gost_unavailable`, so a request that would be refused anyway is
//! not sent back to be tried again.
//!
//! Must never: accept a GOST key without its proof of possession checked by the engine, or
//! hand on the key in another form than NCA's.

use std::sync::OnceLock;

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcPoint};
use x509_cert::request::CertReq;

use super::key::SubjectKeyType;
use super::CsrError;
use crate::gost::{self, Form, GostError, GostPublicKey, GostSupport, KeySize, SignedArtefact};
use crate::key_identity::KeyIdentity;

/// A GOST key that passed: its size and its identity (NCA's form).
pub(super) struct CheckedGostKey {
    pub(super) key_type: SubjectKeyType,
    pub(super) identity: KeyIdentity,
}

/// Every check of a GOST request but the e-mail: `der` is the request and `parsed` its
/// decoding, whose key algorithm is a GOST one.
pub(super) fn check(der: &[u8], parsed: &CertReq) -> Result<CheckedGostKey, CsrError> {
    let key = GostPublicKey::from_spki(&parsed.info.public_key).map_err(|e| match e {
        // The parameters are not the DER of a parameter sequence.
        GostError::Der(e) => CsrError::KeyEncodingInvalid(format!("GOST key parameters: {e}")),
        other => refusal(other),
    })?;
    let (_, signature_size) =
        gost::signature_algorithm(&parsed.algorithm).map_err(|e| match e {
            GostError::NotGost(oid) => CsrError::SignatureAlgorithmNotAllowed(format!(
                "{oid} with a GOST key: a GOST key signs its request with GOST R 34.10-2015 of \
             its size (NCA's {} or TC26's {})",
                key.size().oids(Form::Nca).signature,
                key.size().oids(Form::Tc26).signature
            )),
            other => refusal(other),
        })?;
    if signature_size != key.size() {
        return Err(CsrError::SignatureAlgorithmNotAllowed(format!(
            "a {} signature with a {} GOST key",
            bits(signature_size),
            bits(key.size())
        )));
    }
    check_point(&key)?;
    if let GostSupport::Unavailable(why) = gost::support() {
        tracing::warn!(reason = %why, "a GOST request refused: GOST is unavailable");
        return Err(CsrError::GostUnavailable);
    }
    SignedArtefact::csr(der)
        .and_then(|request| request.verify_own())
        .map_err(refusal)?;
    let canonical = key
        .to_der(Form::Nca)
        .map_err(|e| CsrError::KeyEncodingInvalid(e.to_string()))?;
    Ok(CheckedGostKey {
        key_type: SubjectKeyType::Gost(key.size()),
        identity: KeyIdentity::of_gost(canonical),
    })
}

/// "512-bit" or "256-bit".
fn bits(size: KeySize) -> &'static str {
    match size {
        KeySize::Bits512 => "512-bit",
        KeySize::Bits256 => "256-bit",
    }
}

/// The refusal for what `gost` found wrong.
fn refusal(e: GostError) -> CsrError {
    match e {
        GostError::EngineUnavailable(why) => {
            tracing::warn!(reason = %why, "a GOST request refused: GOST is unavailable");
            CsrError::GostUnavailable
        }
        GostError::UnknownParameterSet(oid) => CsrError::GostParameterSetUnknown(format!(
            "{oid}: only parameter set A of the key's size (NCA's and TC26's) is certified"
        )),
        GostError::DigestMismatch(oid) => CsrError::GostParameterSetUnknown(format!(
            "the key's parameters name the digest {oid}, not the Streebog of the key's size"
        )),
        GostError::PointLength { expected, found } => CsrError::GostPointInvalid(format!(
            "a point of {found} bytes (the curve's are {expected})"
        )),
        GostError::KeyRejected(why) => {
            CsrError::GostPointInvalid(format!("OpenSSL refuses the point: {why}"))
        }
        GostError::KeyParameters(what) => CsrError::KeyEncodingInvalid(what.to_owned()),
        e @ (GostError::NotGost(_)
        | GostError::SignatureParameters(_)
        | GostError::KeySizeMismatch { .. }) => {
            CsrError::SignatureAlgorithmNotAllowed(e.to_string())
        }
        GostError::BadSignature | GostError::SignatureLength { .. } => CsrError::SignatureInvalid,
        other => CsrError::Malformed(other.to_string()),
    }
}

/// A curve of GOST R 34.10-2015 parameter set A (RFC 7836, Appendix A), as big-endian hex:
/// the field's prime, a, b, the generator's order q and coordinates, the cofactor.
struct Curve {
    p: &'static str,
    a: &'static str,
    b: &'static str,
    q: &'static str,
    x: &'static str,
    y: &'static str,
    cofactor: u32,
}

/// `id-tc26-gost-3410-12-512-paramSetA` (NCA's `1.2.398.3.10.1.1.2.2.1`).
const CURVE_512_A: Curve = Curve {
    p: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\
        FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFDC7",
    a: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\
        FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFDC4",
    b: "E8C2505DEDFC86DDC1BD0B2B6667F1DA34B82574761CB0E879BD081CFD0B6265\
        EE3CB090F30D27614CB4574010DA90DD862EF9D4EBEE4761503190785A71C760",
    q: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\
        27E69532F48D89116FF22B8D4E0560609B4B38ABFAD2B85DCACDB1411F10B275",
    x: "03",
    y: "7503CFE87A836AE3A61B8816E25450E6CE5E1C93ACF1ABC1778064FDCBEFA921\
        DF1626BE4FD036E93D75E6A50E3A41E98028FE5FC235F5B889A589CB5215F2A4",
    cofactor: 1,
};

/// `id-tc26-gost-3410-2012-256-paramSetA` (NCA's `1.2.398.3.10.1.1.2.1.1`): a twisted
/// Edwards curve in Weierstrass form, of cofactor 4.
const CURVE_256_A: Curve = Curve {
    p: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD97",
    a: "C2173F1513981673AF4892C23035A27CE25E2013BF95AA33B22C656F277E7335",
    b: "295F9BAE7428ED9CCC20E7C359A9D41A22FCCD9108E17BF7BA9337A6F8AE9513",
    q: "400000000000000000000000000000000FD8CDDFC87B6635C115AF556C360C67",
    x: "91E38443A5E82C0D880923425712B2BB658B9196932E02C78B2582FE742DAA28",
    y: "32879423AB1A0375895786C4BB46E9565FDE0B5344766740AF268ADB32322E5C",
    cofactor: 4,
};

/// A curve as OpenSSL's group (no engine needed), with its field's prime and q.
pub(super) struct Group {
    pub(super) group: EcGroup,
    pub(super) p: BigNum,
    pub(super) q: BigNum,
    pub(super) cofactor: u32,
}

fn build(curve: &Curve) -> Result<Group, openssl::error::ErrorStack> {
    let mut ctx = BigNumContext::new()?;
    let hex = BigNum::from_hex_str;
    let mut group =
        EcGroup::from_components(hex(curve.p)?, hex(curve.a)?, hex(curve.b)?, &mut ctx)?;
    let mut generator = EcPoint::new(&group)?;
    generator.set_affine_coordinates_gfp(&group, &*hex(curve.x)?, &*hex(curve.y)?, &mut ctx)?;
    group.set_generator(generator, hex(curve.q)?, BigNum::from_u32(curve.cofactor)?)?;
    Ok(Group {
        group,
        p: hex(curve.p)?,
        q: hex(curve.q)?,
        cofactor: curve.cofactor,
    })
}

/// The curve of parameter set A of `size`, built once per process.
pub(super) fn group(size: KeySize) -> Option<&'static Group> {
    static G512: OnceLock<Option<Group>> = OnceLock::new();
    static G256: OnceLock<Option<Group>> = OnceLock::new();
    let (cell, curve) = match size {
        KeySize::Bits512 => (&G512, &CURVE_512_A),
        KeySize::Bits256 => (&G256, &CURVE_256_A),
    };
    cell.get_or_init(|| build(curve).ok()).as_ref()
}

/// The key policy for a GOST point, by our own arithmetic (the engine reads a point without
/// asking whether it lies in the generator's subgroup): both coordinates in the field, the
/// point on the curve of its parameter set, and, where the cofactor is not 1 (256 bits),
/// q times the point is the point at infinity — a point of small order would make any
/// signature's check meaningless. An internal failure refuses.
pub(super) fn check_point(key: &GostPublicKey) -> Result<(), CsrError> {
    let invalid = |what: &str| CsrError::GostPointInvalid(what.to_owned());
    let failed = || invalid("the point could not be checked");
    let group = group(key.size()).ok_or_else(failed)?;
    let half = key.size().coordinate_len();
    let point = key.point();
    let (x, y) = (point.get(..half), point.get(half..));
    let (Some(x), Some(y)) = (x, y) else {
        return Err(invalid("the point has not two coordinates"));
    };
    // Little-endian on the wire.
    let coordinate = |bytes: &[u8]| {
        let big_endian: Vec<u8> = bytes.iter().rev().copied().collect();
        BigNum::from_slice(&big_endian)
    };
    let (x, y) = (
        coordinate(x).map_err(|_| failed())?,
        coordinate(y).map_err(|_| failed())?,
    );
    let mut ctx = BigNumContext::new().map_err(|_| failed())?;
    if x >= group.p || y >= group.p {
        return Err(invalid("a coordinate outside the curve's field"));
    }
    let mut q_point = EcPoint::new(&group.group).map_err(|_| failed())?;
    // OpenSSL refuses to set coordinates that are not on the curve.
    let on_curve = q_point
        .set_affine_coordinates_gfp(&group.group, &x, &y, &mut ctx)
        .is_ok()
        && q_point.is_on_curve(&group.group, &mut ctx).unwrap_or(false);
    drop(openssl::error::ErrorStack::get());
    if !on_curve {
        return Err(invalid(
            "the point is not on the curve of its parameter set",
        ));
    }
    if group.cofactor != 1 {
        let mut product = EcPoint::new(&group.group).map_err(|_| failed())?;
        product
            .mul2(&group.group, &q_point, &group.q, &mut ctx)
            .map_err(|_| failed())?;
        if !product.is_infinity(&group.group) {
            return Err(invalid(
                "the point is not in the subgroup of the generator (a point of small order)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
