//! The key policy, in the manner of a `goodkey` check: the accepted key types and sizes of
//! SPEC §2, then the weak-key checks (an RSA exponent other than 65537, a prime modulus,
//! small prime factors, Fermat near-squares, the ROCA fingerprint; an EC point that is not a
//! valid public key on P-256 or P-384). Pure functions over a public key: no parsing of
//! requests (that is [`super`]), no I/O. Must never: pass a key because a check could not run
//! (an internal failure refuses).

use std::sync::OnceLock;

use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};

use super::CsrError;

/// Rounds of Fermat factorisation tried on every RSA modulus (CA/B Forum BR 6.1.1.3: at
/// least 100).
const FERMAT_ROUNDS: u32 = 100;

/// Every prime below this bound is ruled out as a factor of an RSA modulus, with one GCD.
const SMALL_FACTOR_BOUND: u32 = 1 << 20;

/// The accepted subject key types (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKeyType {
    /// RSA with a 2048-, 3072- or 4096-bit modulus and exponent 65537.
    Rsa(u32),
    /// ECDSA on P-256.
    EcP256,
    /// ECDSA on P-384.
    EcP384,
    /// GOST R 34.10-2015 of this size, parameter set A (SIGN requests only); the key is
    /// carried in NCA's form.
    Gost(crate::gost::KeySize),
}

impl SubjectKeyType {
    /// Whether the key is RSA (key usage keyEncipherment) or EC (keyAgreement).
    pub fn is_rsa(self) -> bool {
        matches!(self, SubjectKeyType::Rsa(_))
    }

    /// The size of a GOST key; `None` for RSA and EC.
    pub fn gost_size(self) -> Option<crate::gost::KeySize> {
        match self {
            SubjectKeyType::Gost(size) => Some(size),
            _ => None,
        }
    }
}

/// What [`check_key`] accepts, for refusals.
pub(super) const ACCEPTED_KEYS: &str =
    "only RSA (2048/3072/4096) and ECDSA (P-256/P-384) keys are accepted (and GOST R 34.10-2015 keys in SIGN requests)";

/// The key policy: types and sizes of SPEC §2, then weak-key checks.
pub fn check_key(key: &PKey<Public>) -> Result<SubjectKeyType, CsrError> {
    match key.id() {
        Id::RSA => {
            let rsa = key
                .rsa()
                .map_err(|_| CsrError::KeyWeak("unreadable RSA key".to_owned()))?;
            let bits = rsa.n().num_bits();
            if bits < 2048 {
                return Err(CsrError::KeyTooSmall(format!(
                    "RSA-{bits}; at least 2048 bits"
                )));
            }
            if ![2048, 3072, 4096].contains(&bits) {
                return Err(CsrError::KeyAlgorithmNotAllowed(format!(
                    "RSA-{bits}; RSA keys must be 2048, 3072 or 4096 bits"
                )));
            }
            check_rsa_modulus(rsa.n(), rsa.e())?;
            u32::try_from(bits)
                .map(SubjectKeyType::Rsa)
                .map_err(|_| CsrError::KeyTooSmall(String::new()))
        }
        Id::EC => {
            let ec = key
                .ec_key()
                .map_err(|_| CsrError::KeyWeak("unreadable EC key".to_owned()))?;
            let key_type = match ec.group().curve_name() {
                Some(Nid::X9_62_PRIME256V1) => SubjectKeyType::EcP256,
                Some(Nid::SECP384R1) => SubjectKeyType::EcP384,
                _ => {
                    return Err(CsrError::KeyAlgorithmNotAllowed(
                        "EC keys must be on P-256 or P-384".to_owned(),
                    ))
                }
            };
            // Both curves have cofactor 1: a point on the curve other than the point at
            // infinity has the group's prime order, so this is all EC_KEY_check_key proves
            // (without its scalar multiplication by the order, as costly as a signature
            // check). Decoding already refused coordinates outside the field.
            let invalid = || CsrError::KeyWeak("the EC point is not a valid public key".to_owned());
            let mut ctx = openssl::bn::BigNumContext::new().map_err(|_| invalid())?;
            let point = ec.public_key();
            if point.is_infinity(ec.group())
                || !point.is_on_curve(ec.group(), &mut ctx).unwrap_or(false)
            {
                return Err(invalid());
            }
            Ok(key_type)
        }
        _ => Err(CsrError::KeyAlgorithmNotAllowed(ACCEPTED_KEYS.to_owned())),
    }
}

/// Weak-RSA checks: exponent, a prime modulus, prime factors below 2^20, Fermat near-squares,
/// the ROCA fingerprint. Not caught (no CA checks these per request): a factor of more than 20
/// bits that is still small (say 64 bits), primes far apart but with a special form, the
/// Debian 2008 weak keys (no maintained list is packaged any more; see docs/architecture.md).
pub fn check_rsa_modulus(n: &BigNumRef, e: &BigNumRef) -> Result<(), CsrError> {
    let weak = |m: &str| Err(CsrError::KeyWeak(m.to_owned()));
    // An internal OpenSSL failure counts as a failed check: refuse rather than pass.
    let failed = |_| CsrError::KeyWeak("the modulus could not be checked".to_owned());
    if e.to_dec_str().map(|s| s.to_string()).ok().as_deref() != Some("65537") {
        return weak("the RSA public exponent must be 65537");
    }
    if has_small_factor(n).map_err(failed)? {
        return weak("the modulus has a prime factor below 2^20");
    }
    if probably_prime(n).map_err(failed)? {
        return weak("the modulus is prime (its private key is computable)");
    }
    if fermat_factors(n, FERMAT_ROUNDS).map_err(failed)? {
        return weak("the modulus factors by Fermat's method (its primes are too close)");
    }
    if roca_fingerprint(n) {
        return weak("the modulus has the ROCA fingerprint (CVE-2017-15361)");
    }
    Ok(())
}

/// The primes below `bound` (sieve of Eratosthenes over the odd numbers, one bit each).
///
/// Written for speed in unoptimised builds too: it runs once per process, before the first
/// RSA key is checked, and a slow first check would show in every restart.
fn primes_below(bound: u32) -> Vec<u32> {
    let odd_count = usize::try_from(bound / 2).unwrap_or(0);
    // Bit i stands for 2i + 1; a set bit is composite (1 counts as composite).
    let mut composite = vec![0u64; odd_count.div_ceil(64)];
    if let Some(first) = composite.first_mut() {
        *first |= 1;
    }
    let mut i = 1usize;
    while (2 * i + 1) * (2 * i + 1) < 2 * odd_count {
        let word = composite.get(i / 64).copied().unwrap_or(u64::MAX);
        if word & (1 << (i % 64)) == 0 {
            let p = 2 * i + 1;
            // Odd multiples from p², a step of 2p, which is p in bit positions.
            let mut m = (p * p) / 2;
            while let Some(w) = composite.get_mut(m / 64) {
                *w |= 1 << (m % 64);
                m += p;
            }
        }
        i += 1;
    }
    let mut primes = Vec::with_capacity(odd_count / 6);
    if bound > 2 {
        primes.push(2);
    }
    for (base, word) in (0u32..).step_by(64).zip(&composite) {
        let mut open = !*word;
        while open != 0 {
            let bit = open.trailing_zeros();
            open &= open - 1;
            let n = 2 * (base + bit) + 1;
            if n < bound {
                primes.push(n);
            }
        }
    }
    primes
}

/// Leaves (64-bit words of packed primes) per part of [`small_prime_products`]: parts of about
/// 64 Ki bits. One product of all the primes (1.5 M bits) costs the same to reduce modulo a
/// key, but a third of a second to build, in every process before its first RSA key; parts
/// this size build in milliseconds.
const LEAVES_PER_PART: usize = 1024;

/// The primes below [`SMALL_FACTOR_BOUND`] multiplied together, in parts of about 64 Ki bits
/// (about 1.5 million bits in all), made once per process, each part by a product tree.
fn small_prime_products() -> Result<&'static [BigNum], openssl::error::ErrorStack> {
    static PRODUCTS: OnceLock<Vec<BigNum>> = OnceLock::new();
    if let Some(p) = PRODUCTS.get() {
        return Ok(p);
    }
    let mut ctx = BigNumContext::new()?;
    // Leaves: primes packed into words.
    let mut leaves: Vec<BigNum> = Vec::new();
    let mut word: u64 = 1;
    for p in primes_below(SMALL_FACTOR_BOUND) {
        match word.checked_mul(u64::from(p)) {
            Some(w) => word = w,
            None => {
                leaves.push(BigNum::from_slice(&word.to_be_bytes())?);
                word = u64::from(p);
            }
        }
    }
    leaves.push(BigNum::from_slice(&word.to_be_bytes())?);
    let mut parts = Vec::new();
    let mut leaves = leaves.into_iter().peekable();
    while leaves.peek().is_some() {
        // Pairwise products level by level, so that the factors stay of equal size.
        let mut level: Vec<BigNum> = leaves.by_ref().take(LEAVES_PER_PART).collect();
        while level.len() > 1 {
            let mut next = Vec::with_capacity(level.len() / 2 + 1);
            let mut items = level.into_iter();
            while let Some(a) = items.next() {
                match items.next() {
                    Some(b) => {
                        let mut ab = BigNum::new()?;
                        ab.checked_mul(&a, &b, &mut ctx)?;
                        next.push(ab);
                    }
                    None => next.push(a),
                }
            }
            level = next;
        }
        parts.extend(level);
    }
    Ok(PRODUCTS.get_or_init(|| parts))
}

/// Whether `n` has a prime factor below [`SMALL_FACTOR_BOUND`]: each part of the cached
/// product reduced modulo `n`, the residues multiplied modulo `n` (gcd(Π Pᵢ mod n, n) =
/// gcd(Π Pᵢ, n)), then one GCD.
fn has_small_factor(n: &BigNumRef) -> Result<bool, openssl::error::ErrorStack> {
    let mut ctx = BigNumContext::new()?;
    let mut acc = BigNum::from_u32(1)?;
    let mut rem = BigNum::new()?;
    let mut next = BigNum::new()?;
    for part in small_prime_products()? {
        rem.nnmod(part, n, &mut ctx)?;
        next.mod_mul(&acc, &rem, n, &mut ctx)?;
        std::mem::swap(&mut acc, &mut next);
    }
    let mut gcd = BigNum::new()?;
    gcd.gcd(&acc, n, &mut ctx)?;
    Ok(gcd != BigNum::from_u32(1)?)
}

/// Fermat's test to base 2: `2^(n-1) ≡ 1 (mod n)` for every prime `n` (and for rare
/// pseudoprimes, which no RSA key generator makes either). One modular exponentiation with a
/// one-word base.
fn probably_prime(n: &BigNumRef) -> Result<bool, openssl::error::ErrorStack> {
    let mut ctx = BigNumContext::new()?;
    let mut exponent = n.to_owned()?;
    exponent.sub_word(1)?;
    let mut r = BigNum::new()?;
    r.mod_exp(&*BigNum::from_u32(2)?, &exponent, n, &mut ctx)?;
    Ok(r == BigNum::from_u32(1)?)
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

/// Moduli of the quick square test: 64·63·65·11. A square is a square modulo each of them;
/// about 1 in 140 non-squares passes all four, so few rounds need a square root.
const SQUARE_FILTER: u32 = 64 * 63 * 65 * 11;

/// Whether `r` (a residue modulo [`SQUARE_FILTER`]) is a square modulo 64, 63, 65 and 11.
fn may_be_square(r: u32) -> bool {
    [64u32, 63, 65, 11]
        .into_iter()
        .all(|m| (0..m).any(|x| x * x % m == r % m))
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
    // b² = a² - n, then b² grows by 2a + 1 as a grows by 1.
    let mut a2 = BigNum::new()?;
    a2.sqr(&a, &mut ctx)?;
    let mut b2 = BigNum::new()?;
    b2.checked_sub(&a2, n)?;
    for _ in 0..rounds {
        // A perfect square b² means n = (a-b)(a+b).
        let residue = u32::try_from(b2.mod_word(SQUARE_FILTER)?).unwrap_or(u32::MAX);
        if may_be_square(residue) {
            let b = isqrt(&b2, &mut ctx)?;
            let mut check = BigNum::new()?;
            check.sqr(&b, &mut ctx)?;
            if check == b2 {
                return Ok(true);
            }
        }
        let mut step = BigNum::new()?;
        step.lshift1(&a)?;
        step.add_word(1)?;
        let mut next = BigNum::new()?;
        next.checked_add(&b2, &step)?;
        b2 = next;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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
            Err(CsrError::KeyWeak(_))
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
            matches!(check_rsa_modulus(&n, &e), Err(CsrError::KeyWeak(m)) if m.contains("below 2^20"))
        );
        let three = BigNum::from_u32(3).unwrap();
        assert!(
            matches!(check_rsa_modulus(rsa.n(), &three), Err(CsrError::KeyWeak(m)) if m.contains("exponent"))
        );
    }

    /// A random prime of `bits` bits (top two bits set, so products have full length).
    fn prime(bits: i32) -> BigNum {
        let mut p = BigNum::new().unwrap();
        p.generate_prime(bits, false, None, None).unwrap();
        p
    }

    fn weak_reason(n: &BigNumRef) -> String {
        let e = BigNum::from_u32(65537).unwrap();
        match check_rsa_modulus(n, &e) {
            Err(CsrError::KeyWeak(m)) => m,
            other => panic!("not refused as weak: {other:?}"),
        }
    }

    #[test]
    fn a_prime_modulus_is_weak() {
        let p = prime(2048);
        assert!(weak_reason(&p).contains("prime"));
    }

    #[test]
    fn factors_up_to_two_to_the_twentieth_are_found() {
        let mut ctx = BigNumContext::new().unwrap();
        // Just above the old trial-division bound (1000), 65537, and the largest prime below
        // 2^20; then the smallest prime above 2^20, out of reach by design.
        for small in [1009u32, 65537, 1_048_573] {
            assert!(BigNum::from_u32(small)
                .unwrap()
                .is_prime(20, &mut ctx)
                .unwrap());
            let q = prime(2048 - 20);
            let mut n = BigNum::new().unwrap();
            n.checked_mul(&q, &BigNum::from_u32(small).unwrap(), &mut ctx)
                .unwrap();
            assert!(
                weak_reason(&n).contains("below 2^20"),
                "{small}: {}",
                weak_reason(&n)
            );
        }
        assert!(BigNum::from_u32(1_048_583)
            .unwrap()
            .is_prime(20, &mut ctx)
            .unwrap());
        let q = prime(2048 - 21);
        let mut n = BigNum::new().unwrap();
        n.checked_mul(&q, &BigNum::from_u32(1_048_583).unwrap(), &mut ctx)
            .unwrap();
        assert!(!has_small_factor(&n).unwrap(), "1048583 > 2^20");
    }

    #[test]
    fn the_small_prime_product_covers_exactly_the_primes_below_the_bound() {
        let primes = primes_below(SMALL_FACTOR_BOUND);
        assert_eq!(primes.len(), 82_025);
        assert_eq!(primes.first(), Some(&2));
        assert_eq!(primes.last(), Some(&1_048_573));
        let parts = small_prime_products().unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        let mut product = BigNum::from_u32(1).unwrap();
        for part in parts {
            let mut next = BigNum::new().unwrap();
            next.checked_mul(&product, part, &mut ctx).unwrap();
            product = next;
        }
        assert!(product.num_bits() > 1_400_000, "{}", product.num_bits());
        let mut r = BigNum::new().unwrap();
        for p in [2u32, 3, 997, 1009, 65537, 1_048_573] {
            r.nnmod(&product, &BigNum::from_u32(p).unwrap(), &mut ctx)
                .unwrap();
            assert_eq!(r, BigNum::from_u32(0).unwrap(), "{p}");
        }
        r.nnmod(&product, &BigNum::from_u32(1_048_583).unwrap(), &mut ctx)
            .unwrap();
        assert_ne!(r, BigNum::from_u32(0).unwrap());
    }

    #[test]
    fn good_keys_of_every_size_pass_the_modulus_checks() {
        for bits in [2048, 3072, 4096] {
            let rsa = Rsa::generate(bits).unwrap();
            check_rsa_modulus(rsa.n(), rsa.e()).unwrap();
            assert!(!probably_prime(rsa.n()).unwrap());
        }
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
