//! PKCS#10 certification requests: size limit, PEM or base64 DER, parse, proof of possession,
//! and the key policy of SPEC §2 (types and sizes, weak keys). What survives is a
//! [`ValidatedCsr`]: the public key and, at most, an e-mail address.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use der::{Decode, Encode};
use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::x509::X509Req;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::request::CertReq;

use super::RaError;

/// Largest CSR accepted (as submitted text) before parsing.
pub const MAX_CSR_LEN: usize = 16 * 1024;

/// Rounds of Fermat factorisation tried on every RSA modulus.
const FERMAT_ROUNDS: u32 = 100;

/// OID of the PKCS#9 extensionRequest attribute.
const OID_EXTENSION_REQUEST: const_oid::ObjectIdentifier = const_oid::db::rfc5912::ID_EXTENSION_REQ;

/// The accepted subject key types (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKeyType {
    /// RSA with a 2048-, 3072- or 4096-bit modulus and exponent 65537.
    Rsa(u32),
    /// ECDSA on P-256.
    EcP256,
    /// ECDSA on P-384.
    EcP384,
}

impl SubjectKeyType {
    /// Whether the key is RSA (key usage keyEncipherment) or EC (keyAgreement).
    pub fn is_rsa(self) -> bool {
        matches!(self, SubjectKeyType::Rsa(_))
    }
}

/// A request whose encoding, signature and key all passed. Only [`validate`] makes one.
#[derive(Debug, Clone)]
pub struct ValidatedCsr {
    der: Vec<u8>,
    spki_der: Vec<u8>,
    spki_sha256: String,
    key_type: SubjectKeyType,
    email: Option<String>,
}

impl ValidatedCsr {
    /// The request, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// The SubjectPublicKeyInfo, DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }
    /// SHA-256 of the SubjectPublicKeyInfo, lower-case hex (the key's identity).
    pub fn spki_sha256(&self) -> &str {
        &self.spki_sha256
    }
    /// The key's type.
    pub fn key_type(&self) -> SubjectKeyType {
        self.key_type
    }
    /// The rfc822Name of a requested subjectAltName, if any.
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
}

/// Decode PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`) or bare base64 DER.
fn decode(text: &str) -> Result<Vec<u8>, RaError> {
    let malformed = |m: &str| RaError::CsrMalformed(m.to_owned());
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

/// Check one CSR completely.
pub fn validate(text: &str) -> Result<ValidatedCsr, RaError> {
    if text.len() > MAX_CSR_LEN {
        return Err(RaError::CsrMalformed(format!(
            "larger than {MAX_CSR_LEN} bytes"
        )));
    }
    let der = decode(text)?;
    // Two independent parsers must agree that this is one whole, well-formed request.
    let parsed = CertReq::from_der(&der)
        .map_err(|e| RaError::CsrMalformed(format!("not a DER PKCS#10 request: {e}")))?;
    let req = X509Req::from_der(&der)
        .map_err(|_| RaError::CsrMalformed("not a DER PKCS#10 request".to_owned()))?;
    let spki_der = parsed
        .info
        .public_key
        .to_der()
        .map_err(|e| RaError::CsrMalformed(e.to_string()))?;
    let is_ec = parsed.info.public_key.algorithm.oid == const_oid::db::rfc5912::ID_EC_PUBLIC_KEY;
    let public = match req.public_key() {
        Ok(k) => k,
        // OpenSSL refuses an EC point that is not on its curve at decoding.
        Err(_) if is_ec => {
            return Err(RaError::KeyWeak(
                "the EC point is not on the curve".to_owned(),
            ))
        }
        Err(_) => {
            return Err(RaError::KeyAlgorithmNotAllowed(
                "unrecognised public key".to_owned(),
            ))
        }
    };
    if !req.verify(&public).unwrap_or(false) {
        return Err(RaError::CsrSignatureInvalid);
    }
    let key_type = check_key(&public)?;
    let email = requested_email(&parsed)?;
    let spki_sha256 = hex::encode(openssl::sha::sha256(&spki_der));
    Ok(ValidatedCsr {
        der,
        spki_der,
        spki_sha256,
        key_type,
        email,
    })
}

/// The key policy: types and sizes of SPEC §2, then weak-key checks.
pub fn check_key(key: &PKey<Public>) -> Result<SubjectKeyType, RaError> {
    match key.id() {
        Id::RSA => {
            let rsa = key
                .rsa()
                .map_err(|_| RaError::KeyWeak("unreadable RSA key".to_owned()))?;
            let bits = rsa.n().num_bits();
            if bits < 2048 {
                return Err(RaError::KeyTooSmall(format!(
                    "RSA-{bits}; at least 2048 bits"
                )));
            }
            if ![2048, 3072, 4096].contains(&bits) {
                return Err(RaError::KeyAlgorithmNotAllowed(format!(
                    "RSA-{bits}; RSA keys must be 2048, 3072 or 4096 bits"
                )));
            }
            check_rsa_modulus(rsa.n(), rsa.e())?;
            u32::try_from(bits)
                .map(SubjectKeyType::Rsa)
                .map_err(|_| RaError::KeyTooSmall(String::new()))
        }
        Id::EC => {
            let ec = key
                .ec_key()
                .map_err(|_| RaError::KeyWeak("unreadable EC key".to_owned()))?;
            let key_type = match ec.group().curve_name() {
                Some(Nid::X9_62_PRIME256V1) => SubjectKeyType::EcP256,
                Some(Nid::SECP384R1) => SubjectKeyType::EcP384,
                _ => {
                    return Err(RaError::KeyAlgorithmNotAllowed(
                        "EC keys must be on P-256 or P-384".to_owned(),
                    ))
                }
            };
            ec.check_key().map_err(|_| {
                RaError::KeyWeak("the EC point is not a valid public key".to_owned())
            })?;
            Ok(key_type)
        }
        _ => Err(RaError::KeyAlgorithmNotAllowed(
            "only RSA (2048/3072/4096) and ECDSA (P-256/P-384) keys are accepted".to_owned(),
        )),
    }
}

/// Weak-RSA checks: exponent, small factors, Fermat near-squares, the ROCA fingerprint.
pub fn check_rsa_modulus(n: &BigNumRef, e: &BigNumRef) -> Result<(), RaError> {
    let weak = |m: &str| Err(RaError::KeyWeak(m.to_owned()));
    if e.to_dec_str().map(|s| s.to_string()).ok().as_deref() != Some("65537") {
        return weak("the RSA public exponent must be 65537");
    }
    for p in small_primes(1000) {
        if n.mod_word(p).unwrap_or(1) == 0 {
            return weak("the modulus has a small factor");
        }
    }
    if fermat_factors(n, FERMAT_ROUNDS).unwrap_or(false) {
        return weak("the modulus factors by Fermat's method (its primes are too close)");
    }
    if roca_fingerprint(n) {
        return weak("the modulus has the ROCA fingerprint (CVE-2017-15361)");
    }
    Ok(())
}

fn small_primes(below: u32) -> Vec<u32> {
    (2..below)
        .filter(|&c| (2..).take_while(|d| d * d <= c).all(|d| c % d != 0))
        .collect()
}

/// Integer square root by Newton's method: the largest x with x² ≤ n.
fn isqrt(n: &BigNumRef, ctx: &mut BigNumContext) -> Result<BigNum, openssl::error::ErrorStack> {
    if n.num_bits() <= 1 {
        return n.to_owned();
    }
    let mut x = BigNum::new()?;
    x.set_bit(n.num_bits() / 2 + 1)?;
    loop {
        // y = (x + n / x) / 2
        let mut q = BigNum::new()?;
        q.checked_div(n, &x, ctx)?;
        let mut sum = BigNum::new()?;
        sum.checked_add(&x, &q)?;
        let mut y = BigNum::new()?;
        y.rshift1(&sum)?;
        if y >= x {
            return Ok(x);
        }
        x = y;
    }
}

/// Whether `n = a² - b²` for some `a` within `rounds` steps of ⌈√n⌉ (primes too close).
fn fermat_factors(n: &BigNumRef, rounds: u32) -> Result<bool, openssl::error::ErrorStack> {
    let mut ctx = BigNumContext::new()?;
    let mut a = isqrt(n, &mut ctx)?;
    let mut sq = BigNum::new()?;
    sq.sqr(&a, &mut ctx)?;
    if &*sq < n {
        a.add_word(1)?;
    }
    for _ in 0..rounds {
        // b² = a² - n; a perfect square means n = (a-b)(a+b).
        let mut a2 = BigNum::new()?;
        a2.sqr(&a, &mut ctx)?;
        let mut b2 = BigNum::new()?;
        b2.checked_sub(&a2, n)?;
        let b = isqrt(&b2, &mut ctx)?;
        let mut check = BigNum::new()?;
        check.sqr(&b, &mut ctx)?;
        if check == b2 {
            return Ok(true);
        }
        a.add_word(1)?;
    }
    Ok(false)
}

/// The ROCA test (Nemec et al., 2017): moduli made by the vulnerable Infineon library are,
/// modulo each of these small primes, in the subgroup generated by 65537. A random modulus
/// passes all of them with probability about 2^-154.
const ROCA_PRIMES: [u32; 38] = [
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
];

/// Whether `n` carries the ROCA fingerprint.
pub fn roca_fingerprint(n: &BigNumRef) -> bool {
    ROCA_PRIMES.iter().all(|&p| {
        let Ok(residue) = n.mod_word(p) else {
            return false;
        };
        let g = 65537 % u64::from(p);
        let mut x = 1u64;
        // Walk the cyclic subgroup <g> mod p (its order divides p - 1).
        for _ in 0..p {
            if x == residue {
                return true;
            }
            x = x * g % u64::from(p);
            if x == 1 {
                break;
            }
        }
        false
    })
}

/// The e-mail of an rfc822Name in a requested subjectAltName, if any. Every other requested
/// extension is ignored (the certificate profile decides them).
fn requested_email(req: &CertReq) -> Result<Option<String>, RaError> {
    for attr in req.info.attributes.iter() {
        if attr.oid != OID_EXTENSION_REQUEST {
            continue;
        }
        for value in attr.values.iter() {
            let exts: x509_cert::ext::Extensions = value
                .decode_as()
                .map_err(|e| RaError::CsrMalformed(format!("extensionRequest: {e}")))?;
            for ext in exts {
                if ext.extn_id != const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME {
                    continue;
                }
                let san = SubjectAltName::from_der(ext.extn_value.as_bytes())
                    .map_err(|e| RaError::CsrMalformed(format!("subjectAltName: {e}")))?;
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
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use openssl::rsa::Rsa;

    #[test]
    fn generated_keys_pass() {
        let rsa = Rsa::generate(2048).unwrap();
        let key =
            PKey::public_key_from_der(&PKey::from_rsa(rsa).unwrap().public_key_to_der().unwrap())
                .unwrap();
        assert_eq!(check_key(&key).unwrap(), SubjectKeyType::Rsa(2048));
    }

    #[test]
    fn close_primes_are_found_by_fermat() {
        let mut ctx = BigNumContext::new().unwrap();
        let mut p = BigNum::new().unwrap();
        p.generate_prime(1024, true, None, None).unwrap();
        // The next prime after p + 2^20: |p - q| is tiny compared with √n.
        let mut q = p.to_owned().unwrap();
        q.add_word(1 << 20).unwrap();
        while !q.is_prime(20, &mut ctx).unwrap() {
            q.add_word(1).unwrap();
        }
        let mut n = BigNum::new().unwrap();
        n.checked_mul(&p, &q, &mut ctx).unwrap();
        assert!(fermat_factors(&n, 100).unwrap());
        let e = BigNum::from_u32(65537).unwrap();
        assert!(matches!(
            check_rsa_modulus(&n, &e),
            Err(RaError::KeyWeak(_))
        ));
        // A real key's primes are far apart.
        let rsa = Rsa::generate(2048).unwrap();
        assert!(!fermat_factors(rsa.n(), 100).unwrap());
    }

    #[test]
    fn small_factors_and_bad_exponents_are_weak() {
        let rsa = Rsa::generate(2048).unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        let mut n = BigNum::new().unwrap();
        n.checked_mul(rsa.n(), &BigNum::from_u32(997).unwrap(), &mut ctx)
            .unwrap();
        let e = BigNum::from_u32(65537).unwrap();
        assert!(
            matches!(check_rsa_modulus(&n, &e), Err(RaError::KeyWeak(m)) if m.contains("small factor"))
        );
        let three = BigNum::from_u32(3).unwrap();
        assert!(
            matches!(check_rsa_modulus(rsa.n(), &three), Err(RaError::KeyWeak(m)) if m.contains("exponent"))
        );
    }

    #[test]
    fn roca_fingerprint_is_recognised() {
        // Build a modulus whose residues are all in <65537>: n ≡ 65537 (mod p) for every p,
        // i.e. n = 65537 + k·M with M the product of the primes.
        let mut ctx = BigNumContext::new().unwrap();
        let mut m = BigNum::from_u32(1).unwrap();
        for p in ROCA_PRIMES {
            let mut next = BigNum::new().unwrap();
            next.checked_mul(&m, &BigNum::from_u32(p).unwrap(), &mut ctx)
                .unwrap();
            m = next;
        }
        let mut k = BigNum::new().unwrap();
        k.rand(1800, openssl::bn::MsbOption::ONE, false).unwrap();
        let mut n = BigNum::new().unwrap();
        n.checked_mul(&k, &m, &mut ctx).unwrap();
        n.add_word(65537).unwrap();
        assert!(roca_fingerprint(&n));
        // Ordinary keys do not carry it.
        for _ in 0..5 {
            assert!(!roca_fingerprint(Rsa::generate(2048).unwrap().n()));
        }
    }

    #[test]
    fn isqrt_is_exact() {
        let mut ctx = BigNumContext::new().unwrap();
        for v in [0u32, 1, 2, 3, 4, 15, 16, 17, 1 << 20, u32::MAX] {
            let n = BigNum::from_u32(v).unwrap();
            let r = isqrt(&n, &mut ctx).unwrap();
            let expected = f64::from(v).sqrt().floor() as u32;
            assert_eq!(r, BigNum::from_u32(expected).unwrap(), "isqrt({v})");
        }
    }
}
