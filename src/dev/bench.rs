//! Benchmark support (`tamga dev seed`): data made through the real issuance path, and the
//! inputs the load generator and the `openssl ocsp` baseline need for the same certificates.
//! Development mode only; never part of serving.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use der::{Decode, Encode};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::X509ReqBuilder;

use crate::ca::{Hierarchy, HierarchyFiles, Issuer, Serial};
use crate::clock::{Clock, SystemClock};
use crate::config::{Mode, ValidConfig};
use crate::digital_id::{self, Purpose, TrustedKeys};
use crate::ra::{ApplicationForm, Registrar, Revoker};
use crate::store::Store;
use crate::vocab::RevocationReason;

/// Consent-token claims for benchmark holder number `i` (IINs 8501013xxxxC, born 1985-01-01;
/// `None` where the check digit does not exist). Liveness and register match are set, so the
/// application is issued at once.
fn bench_claims(cfg: &crate::config::Config, i: u32) -> Option<digital_id::Claims> {
    let first11 = format!("8501013{:04}", i % 10_000);
    let check = digital_id::iin_check_digit(&first11)?;
    let iin = format!("{first11}{check}");
    let parsed = digital_id::Iin::parse(&iin, chrono::Utc::now()).ok()?;
    let now = chrono::Utc::now().timestamp();
    Some(digital_id::Claims {
        iss: cfg.digital_id.issuer.clone(),
        aud: digital_id::Audience::One(cfg.digital_id.audience.clone()),
        sub: iin,
        jti: uuid::Uuid::new_v4().to_string(),
        iat: now,
        nbf: Some(now),
        exp: now + 900,
        purpose: "eds_issuance".into(),
        identity: digital_id::Identity {
            surname: "ЖҮКТЕМЕ".into(),
            name: "СЫНАҚ".into(),
            patronymic: None,
            birth_date: parsed.birth_date(),
            sex: parsed.sex().into(),
            document: digital_id::Document {
                kind: "id_card".into(),
                number: format!("{i:09}"),
                expires: chrono::NaiveDate::from_ymd_opt(2031, 1, 1).unwrap_or_default(),
            },
        },
        verification: digital_id::Verification {
            method: digital_id::VerificationMethod::DigitalIdBiometric,
            liveness: true,
            register_match: true,
        },
    })
}

/// Join scoped workers that each return a list; the first error (or panic) wins.
fn join_workers<T>(
    handles: Vec<std::thread::ScopedJoinHandle<'_, Result<Vec<T>, String>>>,
    what: &str,
) -> Result<Vec<T>, String> {
    let mut all = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok(v)) => all.extend(v),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(format!("a {what} worker panicked")),
        }
    }
    Ok(all)
}

fn csr() -> Result<String, String> {
    CsrKey::EcP256.csr_pem()
}

/// A pair of CSRs (auth, sign), DER.
type DerPair = (Vec<u8>, Vec<u8>);

/// Key type of the CSRs `tamga dev load-issuance` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrKey {
    /// EC P-256 (cheap to make).
    EcP256,
    /// RSA-2048, what the default client (`tamga-enroll`) sends (tens of ms per key to make).
    Rsa2048,
    /// NCA's GOST individual: an EC P-256 AUTH CSR and a GOST R 34.10-2015 512-bit SIGN CSR
    /// in NCA's form (`tamga-enroll --sign-key-type gost2015-512`, with an EC AUTH key so that
    /// the row measures the GOST path, not RSA key checks).
    Gost2015_512,
}

impl CsrKey {
    /// The name of `--csr-key` and of a pool file's header.
    pub fn name(self) -> &'static str {
        match self {
            CsrKey::EcP256 => "ec-p256",
            CsrKey::Rsa2048 => "rsa2048",
            CsrKey::Gost2015_512 => "gost2015-512",
        }
    }

    /// A pair of CSRs (auth, sign) with fresh keys of this type, DER.
    fn pair_der(self) -> Result<DerPair, String> {
        match self {
            CsrKey::Gost2015_512 => Ok((CsrKey::EcP256.csr_der()?, gost_sign_csr_der()?)),
            _ => Ok((self.csr_der()?, self.csr_der()?)),
        }
    }

    /// A CSR with a fresh key of this type, DER.
    fn csr_der(self) -> Result<Vec<u8>, String> {
        let e = |err: openssl::error::ErrorStack| err.to_string();
        let key = match self {
            CsrKey::EcP256 => {
                let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(e)?;
                PKey::from_ec_key(EcKey::generate(&group).map_err(e)?).map_err(e)?
            }
            CsrKey::Rsa2048 => {
                PKey::from_rsa(openssl::rsa::Rsa::generate(2048).map_err(e)?).map_err(e)?
            }
            CsrKey::Gost2015_512 => return gost_sign_csr_der(),
        };
        let mut b = X509ReqBuilder::new().map_err(e)?;
        b.set_pubkey(&key).map_err(e)?;
        b.sign(&key, MessageDigest::sha256()).map_err(e)?;
        b.build().to_der().map_err(e)
    }

    /// A CSR with a fresh key of this type, PEM.
    fn csr_pem(self) -> Result<String, String> {
        Ok(csr_pem_of(&self.csr_der()?))
    }

    /// `count` pairs of CSRs (auth, sign), DER, made on every core.
    fn pairs(self, count: usize) -> Result<Vec<DerPair>, String> {
        let workers = std::thread::available_parallelism()
            .map(std::num::NonZeroUsize::get)
            .unwrap_or(1)
            .min(count.max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut made: Vec<(usize, DerPair)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    let next = &next;
                    scope.spawn(move || {
                        let mut out = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if i >= count {
                                break;
                            }
                            out.push((i, self.pair_der()?));
                        }
                        Ok(out)
                    })
                })
                .collect();
            join_workers(handles, "CSR")
        })?;
        made.sort_by_key(|(i, _)| *i);
        Ok(made.into_iter().map(|(_, pair)| pair).collect())
    }
}

/// A SIGN CSR with a fresh GOST R 34.10-2015 512-bit key, in NCA's form, DER.
fn gost_sign_csr_der() -> Result<Vec<u8>, String> {
    let key = crate::gost::generate(crate::gost::KeySize::Bits512).map_err(|e| e.to_string())?;
    let subject = x509_cert::name::Name::default();
    crate::gost::certification_request(&subject, &key, crate::gost::Form::Nca)
        .map_err(|e| e.to_string())
}

/// What `tamga dev bench-gost` measured.
#[derive(Debug, serde::Serialize)]
pub struct GostSigning {
    /// Threads that signed at once.
    pub threads: usize,
    /// Seconds they signed for.
    pub seconds: f64,
    /// Signatures made by all of them.
    pub signatures: u64,
    /// Signatures per second, all threads together.
    pub signatures_per_second: f64,
}

/// The GOST signing ceiling, the baseline of `bench/issuance`'s GOST row: raw GOST R
/// 34.10-2015 512-bit signatures (Streebog-512, through the engine, OpenSSL's `Signer` as the
/// CA's key signs) on `threads` threads at once for `seconds`, each thread with a key of its
/// own signing a 1 KiB message (about a certificate's TBS). `openssl speed` does not time
/// engine signatures.
pub fn gost_signing_ceiling(threads: usize, seconds: f64) -> Result<GostSigning, String> {
    if !crate::gost::available() {
        return Err(format!(
            "GOST is unavailable: {:?} (apt-get install libengine-gost-openssl)",
            crate::gost::support()
        ));
    }
    let digest = MessageDigest::from_name(crate::gost::KeySize::Bits512.digest_name())
        .ok_or("OpenSSL has no Streebog-512")?;
    let threads = threads.max(1);
    let duration = std::time::Duration::from_secs_f64(seconds.clamp(0.1, 600.0));
    let message = [0x5a_u8; 1024];
    let keys = (0..threads)
        .map(|_| crate::gost::generate(crate::gost::KeySize::Bits512).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let start = std::time::Instant::now();
    let counts = std::thread::scope(|scope| {
        let handles: Vec<_> = keys
            .iter()
            .map(|key| {
                scope.spawn(move || -> Result<Vec<u64>, String> {
                    let mut made = 0_u64;
                    while start.elapsed() < duration {
                        let mut signer =
                            openssl::sign::Signer::new(digest, key).map_err(|e| e.to_string())?;
                        signer.update(&message).map_err(|e| e.to_string())?;
                        signer.sign_to_vec().map_err(|e| e.to_string())?;
                        made += 1;
                    }
                    Ok(vec![made])
                })
            })
            .collect();
        join_workers(handles, "GOST signing")
    })?;
    let elapsed = start.elapsed().as_secs_f64();
    let signatures: u64 = counts.iter().sum();
    Ok(GostSigning {
        threads,
        seconds: elapsed,
        signatures,
        signatures_per_second: signatures as f64 / elapsed,
    })
}

/// PEM of a DER CSR.
fn csr_pem_of(der: &[u8]) -> String {
    crate::pem::encode("CERTIFICATE REQUEST", der)
}

/// CSR pairs kept in a file so that runs against fresh databases reuse them (an RSA key takes
/// tens of milliseconds to make). Pair n belongs to benchmark holder n. The file is a header
/// line `tamga-csr-pool 1 <key type>`, then one line per pair: the auth and the sign CSR, DER
/// in base64, separated by a space. A key is never sent twice to one database as long as the
/// runs against it use distinct holders (`--first`).
#[derive(Debug)]
pub struct CsrPool {
    pairs: Vec<(String, String)>,
}

const POOL_HEADER: &str = "tamga-csr-pool 1";

impl CsrPool {
    /// Read the pool at `path`; when it is missing or holds fewer than `wanted` pairs, make the
    /// missing ones and rewrite the file (a new file renamed over the old one). A file of
    /// another key type or format is refused, never overwritten.
    pub fn open(path: &Path, key: CsrKey, wanted: u32) -> Result<CsrPool, String> {
        let wanted = wanted as usize;
        let mut pairs: Vec<DerPair> = Vec::new();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut lines = text.lines();
                let header = format!("{POOL_HEADER} {}", key.name());
                if lines.next() != Some(header.as_str()) {
                    return Err(format!(
                        "{} is not a pool of {} CSR pairs (its first line is not `{header}`)",
                        path.display(),
                        key.name()
                    ));
                }
                for (n, line) in lines.enumerate() {
                    let bad = || format!("{}: pair {n} is malformed", path.display());
                    let (auth, sign) = line.split_once(' ').ok_or_else(bad)?;
                    pairs.push((
                        STANDARD.decode(auth).map_err(|_| bad())?,
                        STANDARD.decode(sign).map_err(|_| bad())?,
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        }
        if pairs.len() < wanted {
            let missing = wanted - pairs.len();
            eprintln!(
                "making {missing} pairs of {} CSRs for {}…",
                key.name(),
                path.display()
            );
            pairs.extend(key.pairs(missing)?);
            Self::write(path, key, &pairs)?;
        }
        Ok(CsrPool {
            pairs: pairs
                .iter()
                .map(|(a, s)| (csr_pem_of(a), csr_pem_of(s)))
                .collect(),
        })
    }

    fn write(path: &Path, key: CsrKey, pairs: &[DerPair]) -> Result<(), String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let mut partial = path.as_os_str().to_owned();
        partial.push(format!(".{}.partial", std::process::id()));
        let partial = std::path::PathBuf::from(partial);
        let written = (|| -> std::io::Result<()> {
            let mut f = std::io::BufWriter::new(std::fs::File::create(&partial)?);
            writeln!(f, "{POOL_HEADER} {}", key.name())?;
            for (auth, sign) in pairs {
                writeln!(f, "{} {}", STANDARD.encode(auth), STANDARD.encode(sign))?;
            }
            f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&partial, path)
        })();
        written.map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            format!("writing {}: {e}", path.display())
        })
    }

    /// Pairs held.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether the pool holds no pair.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Pair `n` (auth, sign), PEM.
    fn pair(&self, n: u32) -> Option<&(String, String)> {
        self.pairs.get(n as usize)
    }
}

/// A DER OCSP request (SHA-1 CertID) for `serial_hex` of the issuer, with an optional nonce.
fn ocsp_request(
    name_hash: &[u8],
    key_hash: &[u8],
    serial_hex: &str,
    nonce: Option<[u8; 16]>,
) -> Result<Vec<u8>, String> {
    let mut serial = hex::decode(serial_hex).map_err(|e| e.to_string())?;
    if serial.first().is_some_and(|b| b & 0x80 != 0) {
        serial.insert(0, 0);
    }
    let id = x509_ocsp::CertId {
        hash_algorithm: spki::AlgorithmIdentifierOwned {
            oid: const_oid::ObjectIdentifier::new_unwrap("1.3.14.3.2.26"),
            parameters: Some(der::asn1::Any::null()),
        },
        issuer_name_hash: der::asn1::OctetString::new(name_hash).map_err(|e| e.to_string())?,
        issuer_key_hash: der::asn1::OctetString::new(key_hash).map_err(|e| e.to_string())?,
        serial_number: x509_cert::serial_number::SerialNumber::new(&serial)
            .map_err(|e| e.to_string())?,
    };
    let extensions = match nonce {
        Some(n) => {
            let value = der::asn1::OctetString::new(n.to_vec()).map_err(|e| e.to_string())?;
            Some(vec![x509_cert::ext::Extension {
                extn_id: const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2"),
                critical: false,
                extn_value: der::asn1::OctetString::new(value.to_der().map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?,
            }])
        }
        None => None,
    };
    let request = x509_ocsp::OcspRequest {
        tbs_request: x509_ocsp::TbsRequest {
            version: x509_ocsp::Version::V1,
            requestor_name: None,
            request_list: vec![x509_ocsp::Request {
                req_cert: id,
                single_request_extensions: None,
            }],
            request_extensions: extensions,
        },
        optional_signature: None,
    };
    request.to_der().map_err(|e| e.to_string())
}

/// Seed `applications` issued applications and revoke `revoked_percent` % of their
/// certificates; write `ocsp-requests.txt` (hex DER and URL-encoded base64 per line, no
/// nonce), `ocsp-requests-nonce.txt` (with nonces) and an `openssl ocsp` `index.txt` (with
/// its `.attr`).
pub fn seed(
    config: &ValidConfig,
    applications: u32,
    revoked_percent: u32,
    out: &Path,
) -> Result<(), String> {
    let cfg = config.get();
    if cfg.mode != Mode::Dev {
        return Err("`dev seed` runs only with mode = \"dev\"".to_owned());
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let hierarchy = Arc::new(Hierarchy::load(&cfg.ca, cfg.mode).map_err(|e| e.to_string())?);
    let store = Store::open(config.database(), &cfg.database).map_err(|e| e.to_string())?;
    let issuer = Arc::new(
        Issuer::new(
            Arc::clone(&hierarchy),
            config.public_url(),
            config.cps_url(),
        )
        .map_err(|e| e.to_string())?,
    );
    let registrar = Registrar::new(
        store.clone(),
        Arc::clone(&issuer),
        Arc::clone(&clock),
        &cfg.ra.agreement_version,
    );
    let dev_key = hierarchy
        .digital_id_dev_key()
        .cloned()
        .ok_or("no development Digital ID key")?;
    let keys = TrustedKeys::load(
        &[],
        &[dev_key],
        &cfg.digital_id.issuer,
        &cfg.digital_id.audience,
    )
    .map_err(|e| e.to_string())?;
    let files = HierarchyFiles::new(&cfg.ca.dir, &cfg.ca.issuer_id);
    let signing = digital_id::read_signing_key(&files.digital_id_key)?;
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;

    let workers = 2u32;
    let per = applications.div_ceil(workers);
    let serials: Vec<(String, String, chrono::NaiveDateTime)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (registrar, keys, signing) = (&registrar, &keys, &signing);
                scope.spawn(
                    move || -> Result<Vec<(String, String, chrono::NaiveDateTime)>, String> {
                        let mut made = Vec::new();
                        for i in (w * per)..((w + 1) * per).min(applications) {
                            let Some(claims) = bench_claims(cfg, i) else {
                                continue;
                            };
                            let token = digital_id::mint_es256(signing, &claims)?;
                            let consent = keys
                                .verify(&token, Purpose::EdsIssuance, chrono::Utc::now())
                                .map_err(|e| e.to_string())?;
                            let form = ApplicationForm {
                                agreement_version: cfg.ra.agreement_version.clone(),
                                agreement_accepted: true,
                                email: None,
                                language: "kk".into(),
                                storage: "pkcs12".into(),
                                auth_csr: csr()?,
                                sign_csr: csr()?,
                            };
                            let submitted = registrar
                                .submit(&consent, form)
                                .map_err(|e| e.to_string())?;
                            for c in submitted.certificates {
                                made.push((c.serial, c.holder_iin, c.not_after));
                            }
                        }
                        Ok(made)
                    },
                )
            })
            .collect();
        join_workers(handles, "seeding")
    })?;

    // Revoke every n-th certificate.
    let step = if revoked_percent == 0 {
        usize::MAX
    } else {
        (100 / revoked_percent.min(100)) as usize
    };
    let mut revoked = std::collections::HashMap::new();
    for (i, (serial, _, _)) in serials.iter().enumerate() {
        if step != usize::MAX && i % step == 0 {
            let s = Serial::parse(serial).map_err(|e| e.to_string())?;
            let cert = registrar
                .revoke(
                    Revoker::Operator("bench"),
                    &s,
                    RevocationReason::Superseded,
                    None,
                )
                .map_err(|e| e.to_string())?;
            revoked.insert(serial.clone(), cert.revoked_at.unwrap_or_default());
        }
    }

    let issuing = x509_cert::Certificate::from_der(hierarchy.issuing().certificate().der())
        .map_err(|e| e.to_string())?;
    let name_hash = openssl::sha::sha1(
        &issuing
            .tbs_certificate
            .subject
            .to_der()
            .map_err(|e| e.to_string())?,
    );
    let key_hash = openssl::sha::sha1(
        &hierarchy
            .issuing()
            .public_key_bits()
            .map_err(|e| e.to_string())?,
    );
    let mut plain =
        std::fs::File::create(out.join("ocsp-requests.txt")).map_err(|e| e.to_string())?;
    let mut nonced =
        std::fs::File::create(out.join("ocsp-requests-nonce.txt")).map_err(|e| e.to_string())?;
    let mut index = std::fs::File::create(out.join("index.txt")).map_err(|e| e.to_string())?;
    // Each holder has two certificates with one subject.
    std::fs::write(out.join("index.txt.attr"), "unique_subject = no\n")
        .map_err(|e| e.to_string())?;
    for (serial, iin, not_after) in &serials {
        let der = ocsp_request(&name_hash, &key_hash, serial, None)?;
        let b64 = STANDARD
            .encode(&der)
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        writeln!(plain, "{} {}", hex::encode(&der), b64).map_err(|e| e.to_string())?;
        let mut n = [0u8; 16];
        openssl::rand::rand_bytes(&mut n).map_err(|e| e.to_string())?;
        let der = ocsp_request(&name_hash, &key_hash, serial, Some(n))?;
        writeln!(
            nonced,
            "{} {}",
            hex::encode(&der),
            URL_SAFE_NO_PAD.encode(&der)
        )
        .map_err(|e| e.to_string())?;
        let expiry = not_after.format("%y%m%d%H%M%SZ");
        let subject = format!("/C=KZ/serialNumber=IIN{iin}");
        match revoked.get(serial) {
            Some(at) => writeln!(
                index,
                "R\t{expiry}\t{},superseded\t{serial}\tunknown\t{subject}",
                at.format("%y%m%d%H%M%SZ")
            ),
            None => writeln!(index, "V\t{expiry}\t\t{serial}\tunknown\t{subject}"),
        }
        .map_err(|e| e.to_string())?;
    }
    println!(
        "seeded {} applications, {} certificates ({} revoked) into {}",
        serials.len() / 2,
        serials.len(),
        revoked.len(),
        out.display()
    );
    Ok(())
}

/// What `tamga dev load-issuance` measured.
#[derive(Debug, serde::Serialize)]
pub struct IssuanceLoad {
    /// Key type of the CSRs sent.
    pub csr_key: &'static str,
    /// Concurrent connections.
    pub concurrency: u32,
    /// Applications sent.
    pub applications: usize,
    /// Answered 201 with status `issued` and two certificates.
    pub issued: usize,
    /// Anything else (the first few are printed on stderr).
    pub failed: usize,
    /// Wall time from the first request to the last answer.
    pub seconds: f64,
    /// Issued applications per second.
    pub applications_per_second: f64,
    /// Latency percentiles of all requests, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

/// Send `applications` complete applications (consent token + two CSRs of `key`, all made or
/// read from `pool` before the clock starts) to `url` over `concurrency` keep-alive
/// connections, and measure issued applications per second and latency. Development mode
/// only (the tokens are signed with the development Digital ID key). `first` offsets the
/// holders' numbers (and their pairs in `pool`) so that consecutive runs use other holders
/// and other keys.
pub fn load_issuance(
    config: &ValidConfig,
    url: &str,
    applications: u32,
    concurrency: u32,
    first: u32,
    key: CsrKey,
    pool: Option<&CsrPool>,
) -> Result<IssuanceLoad, String> {
    let cfg = config.get();
    if cfg.mode != Mode::Dev {
        return Err("`dev load-issuance` runs only with mode = \"dev\"".to_owned());
    }
    let files = HierarchyFiles::for_config(&cfg.ca);
    let signing = digital_id::read_signing_key(&files.digital_id_key)?;
    let last = first.saturating_add(applications);
    let made = match pool {
        Some(_) => Vec::new(),
        None => key
            .pairs(applications as usize)?
            .into_iter()
            .map(|(a, s)| (csr_pem_of(&a), csr_pem_of(&s)))
            .collect(),
    };
    let mut requests = Vec::with_capacity(applications as usize);
    for i in first..last {
        let Some(claims) = bench_claims(cfg, i) else {
            continue;
        };
        let (auth, sign) = match pool {
            Some(pool) => pool.pair(i),
            None => made.get((i - first) as usize),
        }
        .ok_or_else(|| format!("no CSR pair for holder {i}"))?;
        let token = digital_id::mint_es256(&signing, &claims)?;
        let body = serde_json::json!({
            "agreement_version": cfg.ra.agreement_version,
            "agreement_accepted": true,
            "language": "kk",
            "storage": "pkcs12",
            "csrs": { "auth": auth, "sign": sign },
        });
        requests.push((token, serde_json::to_vec(&body).map_err(|e| e.to_string())?));
    }
    let target = super::http_load::Target::parse(url)?;
    let requests: Vec<Vec<u8>> = requests
        .iter()
        .map(|(token, body)| target.post_json("/api/v1/applications", token, body))
        .collect();
    /// What counts in an answer: its status and the number of certificates.
    #[derive(serde::Deserialize)]
    struct Answer<'a> {
        status: &'a str,
        certificates: Vec<serde::de::IgnoredAny>,
    }
    let judge = |a: &super::http_load::Answer| {
        a.status == 201
            && serde_json::from_slice::<Answer<'_>>(&a.body)
                .is_ok_and(|v| v.status == "issued" && v.certificates.len() == 2)
    };
    let started = std::time::Instant::now();
    let results = super::http_load::run(&target, &requests, concurrency, &judge)?;
    let seconds = started.elapsed().as_secs_f64();
    let issued = results.iter().filter(|(ok, _)| *ok).count();
    let mut latencies: Vec<f64> = results.iter().map(|(_, ms)| *ms).collect();
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| -> f64 {
        let last = latencies.len().saturating_sub(1);
        let at = ((last as f64) * p).round() as usize;
        latencies.get(at.min(last)).copied().unwrap_or_default()
    };
    Ok(IssuanceLoad {
        csr_key: key.name(),
        concurrency: concurrency.max(1),
        applications: results.len(),
        issued,
        failed: results.len() - issued,
        seconds,
        applications_per_second: issued as f64 / seconds.max(f64::EPSILON),
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
    })
}

/// Insert `count` revoked certificates of the issuing CA straight into the database (rows
/// only: a CRL needs serial, revocation date and reason, not the certificate), in batches of
/// one transaction each; and write an `openssl ca` index (`index.txt`, `index.txt.attr`) with
/// the same entries into `out`, for the `openssl ca -gencrl` baseline. Development mode only.
pub fn seed_revoked(config: &ValidConfig, count: u32, out: &Path) -> Result<(), String> {
    use crate::store::{Certificate, CertificateKind, CertificateStatus};
    let cfg = config.get();
    if cfg.mode != Mode::Dev {
        return Err("`dev seed-revoked` runs only with mode = \"dev\"".to_owned());
    }
    let store = Store::open(config.database(), &cfg.database).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let mut index = std::io::BufWriter::new(
        std::fs::File::create(out.join("index.txt")).map_err(|e| e.to_string())?,
    );
    std::fs::write(out.join("index.txt.attr"), "unique_subject = no\n")
        .map_err(|e| e.to_string())?;
    let now = chrono::Utc::now().naive_utc();
    let not_after = now + chrono::Duration::days(365);
    let revoked_at = now - chrono::Duration::hours(1);
    // 128-bit serials like real ones: a random first half with the top bit clear (a positive
    // INTEGER without padding), then the row number.
    let mut prefix = [0u8; 8];
    openssl::rand::rand_bytes(&mut prefix).map_err(|e| e.to_string())?;
    if let Some(first) = prefix.first_mut() {
        *first = (*first & 0x7f) | 0x10;
    }
    let prefix = hex::encode_upper(prefix);
    let serial_of = |i: u32| format!("{prefix}{i:016X}");
    const BATCH: u32 = 20_000;
    let mut done = 0u32;
    while done < count {
        let upto = done.saturating_add(BATCH).min(count);
        store
            .write_alone(|tx| -> Result<(), crate::store::StoreError> {
                let seq = tx.next_revocation_seq()?;
                let rows: Vec<Certificate> = (done..upto)
                    .map(|i| {
                        let serial = serial_of(i);
                        Certificate {
                            spki_sha256: hex::encode(openssl::sha::sha256(serial.as_bytes())),
                            serial,
                            issuer_id: cfg.ca.issuer_id.clone(),
                            application_id: None,
                            kind: CertificateKind::Sign,
                            holder_iin: "850101300001".to_owned(),
                            not_before: now,
                            not_after,
                            tbs_der: Vec::new(),
                            der: None,
                            status: CertificateStatus::Revoked,
                            revoked_at: Some(revoked_at),
                            revocation_reason: Some("keyCompromise".to_owned()),
                            invalidity_date: None,
                            created_at: now,
                            issued_at: Some(now),
                            revocation_seq: Some(seq),
                        }
                    })
                    .collect();
                for row in &rows {
                    tx.insert_certificate(row)?;
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        for i in done..upto {
            writeln!(
                index,
                "R\t{}\t{},keyCompromise\t{}\tunknown\t/C=KZ/CN=bench",
                not_after.format("%y%m%d%H%M%SZ"),
                revoked_at.format("%y%m%d%H%M%SZ"),
                serial_of(i)
            )
            .map_err(|e| e.to_string())?;
        }
        done = upto;
    }
    index.flush().map_err(|e| e.to_string())?;
    println!(
        "inserted {count} revoked certificates; openssl index in {}",
        out.display()
    );
    Ok(())
}

/// Time per key of the weak-RSA checks (`csr::check_rsa_modulus`) on fresh keys of each
/// accepted size, next to the time of one RSA public and one private operation of the same
/// size (OpenSSL, this process, this machine), as JSON. Keys are generated before timing.
pub fn key_checks(keys: u32) -> Result<serde_json::Value, String> {
    use std::time::Instant;
    let e = |err: openssl::error::ErrorStack| err.to_string();
    // The cached product of the small primes is built on first use: not per key.
    let warm = openssl::rsa::Rsa::generate(2048).map_err(e)?;
    let started = Instant::now();
    crate::csr::check_rsa_modulus(warm.n(), warm.e()).map_err(|err| err.to_string())?;
    let first_call_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut sizes = Vec::new();
    for bits in [2048u32, 3072, 4096] {
        let pairs = (0..keys.max(1))
            .map(|_| openssl::rsa::Rsa::generate(bits).map_err(e))
            .collect::<Result<Vec<_>, _>>()?;
        let started = Instant::now();
        for rsa in &pairs {
            crate::csr::check_rsa_modulus(rsa.n(), rsa.e()).map_err(|err| err.to_string())?;
        }
        let checks_ms = started.elapsed().as_secs_f64() * 1e3 / f64::from(keys.max(1));
        // Baselines: raw RSA operations with the same keys (no padding work to speak of).
        let mut buf = vec![0u8; usize::try_from(bits / 8).map_err(|err| err.to_string())?];
        let mut message = buf.clone();
        if let Some(last) = message.last_mut() {
            *last = 1;
        }
        let started = Instant::now();
        for rsa in &pairs {
            rsa.public_encrypt(&message, &mut buf, openssl::rsa::Padding::NONE)
                .map_err(e)?;
        }
        let public_ms = started.elapsed().as_secs_f64() * 1e3 / f64::from(keys.max(1));
        let started = Instant::now();
        for rsa in &pairs {
            rsa.private_encrypt(&message, &mut buf, openssl::rsa::Padding::NONE)
                .map_err(e)?;
        }
        let private_ms = started.elapsed().as_secs_f64() * 1e3 / f64::from(keys.max(1));
        sizes.push(serde_json::json!({
            "bits": bits,
            "keys": keys.max(1),
            "checks_ms_per_key": checks_ms,
            "rsa_public_op_ms": public_ms,
            "rsa_private_op_ms": private_ms,
            "checks_per_private_op": checks_ms / private_ms,
        }));
    }
    Ok(serde_json::json!({
        "first_call_ms": first_call_ms,
        "sizes": sizes,
    }))
}
