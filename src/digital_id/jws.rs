//! Compact JWS over OpenSSL: parsing, signature verification for ES256/RS256/PS256, the JWK
//! forms of keys (JWKS files, RFC 7638 thumbprints) and ES256 signing for development tokens.
//!
//! Key acceptance has one gate, [`VerifyingKey::from_pkey`], for PEM files, JWKS entries and
//! the development key alike, so `tamga config check` and `tamga serve` accept the same keys:
//! RSA with a modulus of 2048 to 8192 bits that is odd and an odd exponent from 65537 to
//! 2^32 - 1; EC on P-256 (ES256 is the only EC algorithm) with a point on the curve and the
//! named curve (no explicit parameters); nothing else (no symmetric `oct` keys). A JWKS `kid`
//! is 1-128 printable ASCII characters, unique in the trusted set.

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};
use serde::{Deserialize, Serialize};

use super::{ConsentError, KeyLoadError};

/// The only algorithms consent tokens may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256, signature as r||s.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, salt of 32 bytes.
    Ps256,
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
            Algorithm::Ps256 => "PS256",
        })
    }
}

/// The protected header.
#[derive(Debug, Deserialize, Serialize)]
pub struct Header {
    /// Signature algorithm.
    pub alg: String,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Media type, `JWT` if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Critical extensions: none are understood, so any is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crit: Option<serde_json::Value>,
}

/// A parsed but unverified compact JWS.
pub struct Compact<'a> {
    /// The decoded header.
    pub header: Header,
    /// The decoded payload.
    pub payload: Vec<u8>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

fn b64(segment: &str, what: &str) -> Result<Vec<u8>, ConsentError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| ConsentError::Malformed(format!("{what} is not base64url")))
}

impl<'a> Compact<'a> {
    /// Split and decode `header.payload.signature`.
    pub fn parse(token: &'a str) -> Result<Compact<'a>, ConsentError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ConsentError::Malformed(
                "a compact JWS has exactly three dot-separated parts".to_owned(),
            ));
        };
        let header: Header = serde_json::from_slice(&b64(h, "the header")?)
            .map_err(|e| ConsentError::Malformed(format!("header: {e}")))?;
        if header.crit.is_some() {
            return Err(ConsentError::Malformed(
                "critical header extensions are not supported".to_owned(),
            ));
        }
        if header
            .typ
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("JWT"))
        {
            return Err(ConsentError::Malformed("typ must be JWT".to_owned()));
        }
        let payload = b64(p, "the payload")?;
        let signature = b64(s, "the signature")?;
        let signing_input = token
            .get(..h.len() + 1 + p.len())
            .ok_or_else(|| ConsentError::Malformed("truncated".to_owned()))?;
        Ok(Compact {
            header,
            payload,
            signing_input,
            signature,
        })
    }

    /// The header's algorithm, if allowed.
    pub fn algorithm(&self) -> Result<Algorithm, ConsentError> {
        match self.header.alg.as_str() {
            "ES256" => Ok(Algorithm::Es256),
            "RS256" => Ok(Algorithm::Rs256),
            "PS256" => Ok(Algorithm::Ps256),
            other => Err(ConsentError::AlgorithmNotAllowed(
                other.chars().take(16).collect(),
            )),
        }
    }

    /// Check the signature with `key` under `alg`.
    pub fn verify(&self, alg: Algorithm, key: &VerifyingKey) -> Result<(), ConsentError> {
        let fits = matches!(
            (alg, key.kind),
            (Algorithm::Es256, KeyKind::EcP256)
                | (Algorithm::Rs256 | Algorithm::Ps256, KeyKind::Rsa)
        );
        if !fits {
            return Err(ConsentError::AlgorithmNotAllowed(format!(
                "{alg} with this key"
            )));
        }
        let ok = verify_signature(
            alg,
            &key.pkey,
            self.signing_input.as_bytes(),
            &self.signature,
        )
        .unwrap_or(false);
        if ok {
            Ok(())
        } else {
            Err(ConsentError::SignatureInvalid)
        }
    }
}

fn verify_signature(
    alg: Algorithm,
    key: &PKey<Public>,
    input: &[u8],
    signature: &[u8],
) -> Result<bool, openssl::error::ErrorStack> {
    let der;
    let signature = match alg {
        Algorithm::Es256 => {
            if signature.len() != 64 {
                return Ok(false);
            }
            let (r, s) = signature.split_at(32);
            der =
                EcdsaSig::from_private_components(BigNum::from_slice(r)?, BigNum::from_slice(s)?)?
                    .to_der()?;
            der.as_slice()
        }
        Algorithm::Rs256 | Algorithm::Ps256 => signature,
    };
    let mut verifier = Verifier::new(MessageDigest::sha256(), key)?;
    if alg == Algorithm::Ps256 {
        verifier.set_rsa_padding(Padding::PKCS1_PSS)?;
        verifier.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
        verifier.set_rsa_mgf1_md(MessageDigest::sha256())?;
    }
    verifier.update(input)?;
    verifier.verify(signature)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    EcP256,
    Rsa,
}

/// A trusted public key and what it may verify.
#[derive(Clone)]
pub struct VerifyingKey {
    pkey: PKey<Public>,
    kind: KeyKind,
}

impl VerifyingKey {
    /// The one acceptance check of a trusted key (see the module documentation): an EC key
    /// on P-256 whose point is on the curve, or an RSA key of 2048-8192 bits with an odd
    /// modulus and an odd exponent from 65537 to 2^32 - 1.
    pub fn from_pkey(pkey: PKey<Public>) -> Result<VerifyingKey, String> {
        let kind = match pkey.id() {
            Id::EC => {
                let ec = pkey.ec_key().map_err(|e| e.to_string())?;
                if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
                    return Err(
                        "EC keys must be on the named curve P-256 (ES256 is the only EC algorithm)"
                            .to_owned(),
                    );
                }
                ec.check_key()
                    .map_err(|_| "the EC point is not on P-256".to_owned())?;
                KeyKind::EcP256
            }
            Id::RSA => {
                check_rsa(&pkey.rsa().map_err(|e| e.to_string())?)?;
                KeyKind::Rsa
            }
            _ => return Err("only EC P-256 and RSA keys are accepted".to_owned()),
        };
        Ok(VerifyingKey { pkey, kind })
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, base64url): the `kid` of a key given as PEM.
    pub fn thumbprint(&self) -> String {
        let canonical = match self.jwk_members() {
            Ok(members) => members,
            Err(_) => return String::new(),
        };
        let digest = openssl::sha::sha256(canonical.as_bytes());
        URL_SAFE_NO_PAD.encode(digest)
    }

    fn jwk_members(&self) -> Result<String, openssl::error::ErrorStack> {
        let enc = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        match self.kind {
            KeyKind::EcP256 => {
                let ec = self.pkey.ec_key()?;
                let mut ctx = BigNumContext::new()?;
                let (mut x, mut y) = (BigNum::new()?, BigNum::new()?);
                ec.public_key()
                    .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)?;
                Ok(format!(
                    r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                    enc(&x.to_vec_padded(32)?),
                    enc(&y.to_vec_padded(32)?)
                ))
            }
            KeyKind::Rsa => {
                let rsa = self.pkey.rsa()?;
                Ok(format!(
                    r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                    enc(&rsa.e().to_vec()),
                    enc(&rsa.n().to_vec())
                ))
            }
        }
    }
}

/// Smallest and largest RSA modulus of a trusted key, in bits.
const RSA_BITS: std::ops::RangeInclusive<i32> = 2048..=8192;

/// RSA: a modulus of [`RSA_BITS`], odd; an odd public exponent from 65537 (NIST SP 800-89,
/// CA/Browser Forum BR 6.1.6) to 2^32 - 1 (a larger one only makes verification slow).
fn check_rsa(rsa: &Rsa<Public>) -> Result<(), String> {
    let bits = rsa.n().num_bits();
    if !RSA_BITS.contains(&bits) {
        return Err(format!(
            "the RSA modulus has {bits} bits; {} to {} are accepted",
            RSA_BITS.start(),
            RSA_BITS.end()
        ));
    }
    if !rsa.n().is_bit_set(0) {
        return Err("the RSA modulus is even".to_owned());
    }
    let e = rsa.e();
    // At most 32 bits: the big-endian bytes fit in a u64.
    let e_value = if e.num_bits() <= 32 {
        e.to_vec()
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    } else {
        u64::MAX
    };
    if !e.is_bit_set(0) || !(65_537..=u64::from(u32::MAX)).contains(&e_value) {
        return Err(format!(
            "the RSA public exponent must be odd and from 65537 to 2^32 - 1 (it has {} bits)",
            e.num_bits()
        ));
    }
    Ok(())
}

/// Whether a JWKS `kid` is sane: 1-128 printable ASCII characters.
fn kid_ok(kid: &str) -> bool {
    (1..=128).contains(&kid.len()) && kid.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

/// One key of a JWKS document.
#[derive(Debug, Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
    #[serde(rename = "use")]
    key_use: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

fn jwk_to_pkey(jwk: &Jwk) -> Result<PKey<Public>, String> {
    let field = |v: &Option<String>, name: &str| -> Result<BigNum, String> {
        let s = v.as_deref().ok_or_else(|| format!("missing {name}"))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| format!("{name} is not base64url"))?;
        BigNum::from_slice(&bytes).map_err(|e| e.to_string())
    };
    match jwk.kty.as_str() {
        "EC" => {
            if jwk.crv.as_deref() != Some("P-256") {
                return Err("EC keys must have crv P-256".to_owned());
            }
            let group =
                EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(|e| e.to_string())?;
            let (x, y) = (field(&jwk.x, "x")?, field(&jwk.y, "y")?);
            let ec = EcKey::from_public_key_affine_coordinates(&group, &x, &y)
                .map_err(|_| "the point is not on P-256".to_owned())?;
            ec.check_key()
                .map_err(|_| "the point is not on P-256".to_owned())?;
            PKey::from_ec_key(ec).map_err(|e| e.to_string())
        }
        "RSA" => {
            let rsa = Rsa::from_public_components(field(&jwk.n, "n")?, field(&jwk.e, "e")?)
                .map_err(|e| e.to_string())?;
            PKey::from_rsa(rsa).map_err(|e| e.to_string())
        }
        "oct" => Err("symmetric (kty oct) keys are never trusted".to_owned()),
        other => Err(format!(
            "unsupported kty {}",
            other.chars().take(16).collect::<String>()
        )),
    }
}

/// Load one `[digital_id] keys` entry: a PEM public key (kid = thumbprint) or a JWKS file.
pub fn load_key_file(path: &Path) -> Result<Vec<(String, VerifyingKey)>, KeyLoadError> {
    let err = |message: String| KeyLoadError {
        path: path.display().to_string(),
        message,
    };
    let bytes = crate::input::read_bounded(path, crate::input::JWKS_LIMIT)
        .map_err(|e| err(e.to_string()))?;
    let is_json = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !is_json {
        let pkey = PKey::public_key_from_pem(&bytes)
            .map_err(|_| err("not a PEM public key".to_owned()))?;
        let key = VerifyingKey::from_pkey(pkey).map_err(err)?;
        return Ok(vec![(key.thumbprint(), key)]);
    }
    let jwks: Jwks =
        serde_json::from_slice(&bytes).map_err(|e| err(format!("not a JWKS document: {e}")))?;
    let mut out = Vec::new();
    for (i, jwk) in jwks.keys.iter().enumerate() {
        if jwk.key_use.as_deref().is_some_and(|u| u != "sig") {
            continue;
        }
        let name = match jwk.kid.as_deref() {
            Some(kid) if kid_ok(kid) => format!("key {i} (kid {kid})"),
            Some(_) => {
                return Err(err(format!(
                    "key {i}: the kid must be 1-128 printable ASCII characters"
                )))
            }
            None => format!("key {i}"),
        };
        let pkey = jwk_to_pkey(jwk).map_err(|m| err(format!("{name}: {m}")))?;
        let key = VerifyingKey::from_pkey(pkey).map_err(|m| err(format!("{name}: {m}")))?;
        let kid = jwk.kid.clone().unwrap_or_else(|| key.thumbprint());
        if out.iter().any(|(k, _)| *k == kid) {
            return Err(err(format!("{name}: the kid is used by an earlier key")));
        }
        out.push((kid, key));
    }
    Ok(out)
}

/// Sign `claims` with an EC P-256 key as a compact JWS (ES256, kid = the key's thumbprint).
pub fn sign_es256<T: Serialize>(key: &PKey<Private>, claims: &T) -> Result<String, String> {
    let public_der = key.public_key_to_der().map_err(|e| e.to_string())?;
    let public = PKey::public_key_from_der(&public_der).map_err(|e| e.to_string())?;
    let kid = VerifyingKey::from_pkey(public)?.thumbprint();
    let header = Header {
        alg: "ES256".to_owned(),
        kid: Some(kid),
        typ: Some("JWT".to_owned()),
        crit: None,
    };
    let enc = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
    let header_json = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    let claims_json = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
    let input = format!("{}.{}", enc(&header_json), enc(&claims_json));
    let sign = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut signer = Signer::new(MessageDigest::sha256(), key)?;
        signer.update(input.as_bytes())?;
        let der = signer.sign_to_vec()?;
        let sig = EcdsaSig::from_der(&der)?;
        let mut raw = sig.r().to_vec_padded(32)?;
        raw.extend(sig.s().to_vec_padded(32)?);
        Ok(raw)
    };
    let signature = sign().map_err(|e| e.to_string())?;
    Ok(format!("{input}.{}", enc(&signature)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rsa(n: &openssl::bn::BigNumRef, e: u32) -> Result<(), String> {
        let rsa = Rsa::from_public_components(n.to_owned().unwrap(), BigNum::from_u32(e).unwrap())
            .unwrap();
        check_rsa(&rsa)
    }

    #[test]
    fn rsa_keys_need_a_sane_size_and_exponent() {
        let key = Rsa::generate(2048).unwrap();
        assert_eq!(rsa(key.n(), 65_537), Ok(()));
        assert_eq!(rsa(key.n(), u32::MAX), Ok(()));
        for e in [3, 65_535, 65_538] {
            assert!(rsa(key.n(), e).is_err(), "e = {e}");
        }
        let even = BigNum::from_slice(&[0x80; 256]).unwrap();
        assert_eq!(
            rsa(&even, 65_537),
            Err("the RSA modulus is even".to_owned())
        );
        let small = BigNum::from_u32(0xc5).unwrap();
        assert!(rsa(&small, 65_537).unwrap_err().contains("has 8 bits"));
        let big = BigNum::from_slice(&[0xff; 1025]).unwrap();
        assert!(rsa(&big, 65_537).unwrap_err().contains("has 8200 bits"));
    }

    #[test]
    fn kids_are_short_printable_ascii() {
        assert!(kid_ok("did-2026") && kid_ok(&"k".repeat(128)));
        for bad in ["", "a\nb", "a\u{202e}b", &"k".repeat(129)] {
            assert!(!kid_ok(bad), "{bad:?}");
        }
    }
}
