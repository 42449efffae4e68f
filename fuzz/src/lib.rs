//! What the fuzz targets share: a fixed development hierarchy (the issuing CA the OCSP
//! responder answers for, and the development Digital ID key), the trusted keys and the
//! responder built from it the way `tamga serve` builds them, and the small encodings the
//! targets' inputs use.
//!
//! The hierarchy lives in `fuzz/ca/` (or `$TAMGA_FUZZ_CA`); `fuzz/seed` makes it together with
//! the seed corpora that refer to it. A target run without it makes a new one.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use tamga::ca::{Hierarchy, HierarchyFiles};
use tamga::vocab::RevocationReason;
use tamga::clock::FixedClock;
use tamga::config::{CaConfig, DigitalIdConfig, Mode, OcspConfig};
use tamga::digital_id::TrustedKeys;
use tamga::ocsp::{CertState, Responder, StatusSource};
use tamga::store::StoreError;

/// Earliest "now" a consent-token input can choose (2000-01-01).
const EARLIEST: i64 = 946_684_800;
/// Span of "now" values (to 2100-01-01): the server's clock is never outside it.
const SPAN: i64 = 4_102_444_800 - EARLIEST;

/// The fixed hierarchy and what is built from it.
pub struct Fixture {
    /// The development hierarchy.
    pub hierarchy: Hierarchy,
    /// The development Digital ID signing key (mints tokens for the signed mode).
    pub digital_id_key: PKey<Private>,
    /// Its RFC 7638 thumbprint, the `kid` the server knows it by.
    pub digital_id_kid: String,
    /// The trusted keys, as `tamga serve` loads them in dev mode.
    pub trusted: TrustedKeys,
    /// The OCSP responder of the issuing CA, over [`Table`].
    pub responder: Responder,
}

fn ca_dir() -> PathBuf {
    std::env::var_os("TAMGA_FUZZ_CA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/ca")))
}

/// The fixture, made once per process. A broken fixture stops the run: it is not a finding.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| match load() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fuzz fixture in {}: {e}", ca_dir().display());
            std::process::exit(2);
        }
    })
}

fn load() -> Result<Fixture, String> {
    let ca = CaConfig {
        dir: ca_dir(),
        ..CaConfig::default()
    };
    let files = HierarchyFiles::new(&ca.dir, &ca.issuer_id);
    if !files.issuing_cert.exists() {
        tamga::dev::hierarchy::init(
            &ca,
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/cps",
            false,
            Utc::now(),
        )
        .map_err(|e| e.to_string())?;
    }
    let hierarchy = Hierarchy::load(&ca, Mode::Dev).map_err(|e| e.to_string())?;
    let digital_id_key = tamga::digital_id::read_signing_key(&files.digital_id_key)?;
    let public = hierarchy
        .digital_id_dev_key()
        .ok_or("no development Digital ID key")?
        .clone();
    let ids = DigitalIdConfig::default();
    let trusted =
        TrustedKeys::load(&[], &[public], &ids.issuer, &ids.audience).map_err(|e| e.to_string())?;
    let digital_id_kid = thumbprint(&digital_id_key).map_err(|e| e.to_string())?;
    let config = OcspConfig {
        // Bounded, so that a long run does not grow without end.
        cache_capacity: 512,
        ..OcspConfig::default()
    };
    let clock = Arc::new(FixedClock(Utc::now()));
    let responder =
        Responder::new(&hierarchy, Arc::new(Table), config, clock).map_err(|e| e.to_string())?;
    Ok(Fixture {
        hierarchy,
        digital_id_key,
        digital_id_kid,
        trusted,
        responder,
    })
}

/// A status source without a database: the last hex digit of the serial decides (0-4 good,
/// 5-9 revoked with a reason, A-F unknown), so every answer kind is reachable.
pub struct Table;

impl StatusSource for Table {
    fn status(&self, _issuer_id: &str, serial: &str) -> Result<CertState, StoreError> {
        let digit = serial
            .chars()
            .last()
            .and_then(|c| c.to_digit(16))
            .unwrap_or(15);
        Ok(match digit {
            0..=4 => CertState::Good,
            5..=9 => CertState::Revoked {
                at: DateTime::<Utc>::from_timestamp(1_700_000_000, 0)
                    .map(|t| t.naive_utc())
                    .unwrap_or(NaiveDateTime::MIN),
                reason: RevocationReason::ALL.get(digit as usize - 5).copied(),
                invalidity: None,
            },
            _ => CertState::Unknown,
        })
    }

    fn revocation_mark(&self) -> Result<i64, StoreError> {
        Ok(0)
    }

    fn changed_between(&self, _after: i64, _upto: i64) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
}

/// "Now" from 8 input bytes (little-endian), folded into 2000-2100.
pub fn now_from(bytes: [u8; 8]) -> DateTime<Utc> {
    let secs = EARLIEST + i64::from_le_bytes(bytes).rem_euclid(SPAN);
    DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default()
}

/// RFC 7638 thumbprint of an EC P-256 key.
fn thumbprint(key: &PKey<Private>) -> Result<String, openssl::error::ErrorStack> {
    let ec = key.ec_key()?;
    let mut ctx = BigNumContext::new()?;
    let (mut x, mut y) = (BigNum::new()?, BigNum::new()?);
    ec.public_key()
        .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)?;
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(x.to_vec_padded(32)?),
        URL_SAFE_NO_PAD.encode(y.to_vec_padded(32)?)
    );
    Ok(URL_SAFE_NO_PAD.encode(openssl::sha::sha256(canonical.as_bytes())))
}

/// A compact JWS over `payload` (any bytes), signed ES256 with the development Digital ID key:
/// a token whose signature verifies, so that the claims checks behind it are reached.
pub fn sign_es256(fixture: &Fixture, payload: &[u8]) -> String {
    let header = format!(
        r#"{{"alg":"ES256","kid":"{}","typ":"JWT"}}"#,
        fixture.digital_id_kid
    );
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sign = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut signer = Signer::new(MessageDigest::sha256(), &fixture.digital_id_key)?;
        signer.update(input.as_bytes())?;
        let sig = EcdsaSig::from_der(&signer.sign_to_vec()?)?;
        let mut raw = sig.r().to_vec_padded(32)?;
        raw.extend(sig.s().to_vec_padded(32)?);
        Ok(raw)
    };
    match sign() {
        Ok(signature) => format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)),
        Err(e) => {
            eprintln!("signing a fuzz token: {e}");
            std::process::exit(2);
        }
    }
}

/// Ask the responder as the OCSP handlers do (the cache first, then `respond`) and check that
/// every answer is a DER OCSPResponse whose status fits how it was produced.
pub fn answer(request: &[u8]) {
    use openssl::ocsp::{OcspResponse, OcspResponseStatus};
    use tamga::ocsp::Outcome;
    let responder = &fixture().responder;
    if let Some(hit) = responder.cached(request) {
        assert_eq!(hit.outcome, Outcome::CacheHit);
        assert_eq!(hit.statuses.len(), 1);
    }
    let answer = responder.respond(request);
    let response = match OcspResponse::from_der(&answer.der) {
        Ok(r) => r,
        Err(e) => panic!("the answer is not a DER OCSPResponse: {e}"),
    };
    let successful = response.status() == OcspResponseStatus::SUCCESSFUL;
    match answer.outcome {
        Outcome::Error(_) => assert!(!successful && answer.statuses.is_empty()),
        Outcome::CacheHit | Outcome::Degraded | Outcome::Signed { .. } => {
            assert!(successful && !answer.statuses.is_empty());
            assert!(answer.statuses.len() <= tamga::ocsp::MAX_CERT_IDS);
        }
    }
}
