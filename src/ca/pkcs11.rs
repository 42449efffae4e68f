//! CA private keys inside a PKCS#11 token (an HSM; SoftHSM2 in tests), used through the
//! `cryptoki` crate.
//!
//! Owns: loading a PKCS#11 library once per process, finding a token by label and a private
//! key object by label, a pool of logged-in sessions so that concurrent signatures do not
//! queue on one session, turning the token's raw signatures into what X.509 carries
//! (PKCS#1 v1.5 over a DigestInfo that we build, ECDSA `r‖s` → DER `ECDSA-Sig-Value`), and
//! generating a key pair inside the token (sensitive, never extractable). Must never: read a
//! private key's value, log the PIN, or keep a session the token has declared broken.
//!
//! A token that disappears makes signing fail with [`CaError::KeyUnavailable`]; the pool is
//! emptied and every later signature first opens a new session (find the token, log in, find
//! the key), so signing recovers by itself when the token is back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeType, KeyType as P11KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::pkey::{PKey, Public};

use super::CaError;
use crate::config::{KeyConfig, KeyKind};
use crate::vocab::KeyType;

/// DER prefix of a DigestInfo for SHA-256 (RFC 8017 §9.2, note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
/// DER of the OID prime256v1.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the OID secp384r1.
const P384_PARAMS: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// Sessions kept open when idle; more are opened under load and closed afterwards.
const MAX_IDLE_SESSIONS: usize = 16;

/// Where a PKCS#11 key is and how to log in to its token. The PIN is never printed.
#[derive(Clone)]
pub struct Pkcs11Location {
    module: PathBuf,
    token_label: String,
    key_label: String,
    pin: AuthPin,
}

impl std::fmt::Debug for Pkcs11Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Pkcs11Location {
    /// The location `[ca.*_key]` describes, with the PIN read from its environment variable
    /// or file. `None` for `kind = "file"`.
    pub fn from_config(what: &str, k: &KeyConfig) -> Result<Option<Pkcs11Location>, CaError> {
        if k.kind != KeyKind::Pkcs11 {
            return Ok(None);
        }
        let pin = if k.pin_env.is_empty() {
            crate::input::read_secret_line(&k.pin_file).map_err(|source| CaError::Read {
                path: k.pin_file.clone(),
                source,
            })?
        } else {
            std::env::var(&k.pin_env).map_err(|e| {
                let why = match e {
                    std::env::VarError::NotPresent => "is not set",
                    std::env::VarError::NotUnicode(_) => "is not UTF-8",
                };
                CaError::Pkcs11(format!("{what}: the PIN variable {} {why}", k.pin_env))
            })?
        };
        Ok(Some(Pkcs11Location {
            module: k.module.clone(),
            token_label: k.token_label.clone(),
            key_label: k.key_label.clone(),
            pin: AuthPin::from(pin),
        }))
    }

    /// `pkcs11 token "…" key "…" (module …)`, for `tamga ca show` and logs.
    pub fn describe(&self) -> String {
        format!(
            "pkcs11 token \"{}\" key \"{}\" (module {})",
            self.token_label,
            self.key_label,
            self.module.display()
        )
    }

    /// The label of the key object.
    pub fn key_label(&self) -> &str {
        &self.key_label
    }
}

/// A loaded PKCS#11 library, shared by every key that uses it: `C_Initialize` runs once per
/// library and process, and again when a token has to be rediscovered.
struct Module {
    path: PathBuf,
    ctx: Pkcs11,
    /// Bumped by every re-initialisation; sessions of an older generation are dead.
    generation: AtomicU64,
    /// When the library was last re-initialised (re-initialisation is rate-limited).
    last_reinit: Mutex<Option<Instant>>,
}

/// Re-initialise a library at most this often while its token stays away.
const REINIT_EVERY: Duration = Duration::from_secs(2);

impl Module {
    /// The process-wide module for the library at `path`.
    fn get(path: &Path) -> Result<Arc<Module>, CaError> {
        static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();
        let modules = MODULES.get_or_init(|| Mutex::new(HashMap::new()));
        let mut modules = modules
            .lock()
            .map_err(|_| CaError::Pkcs11("PKCS#11 module registry poisoned".to_owned()))?;
        if let Some(m) = modules.get(path) {
            return Ok(Arc::clone(m));
        }
        let ctx = Pkcs11::new(path).map_err(|e| {
            CaError::Pkcs11(format!(
                "cannot load PKCS#11 module {}: {e}",
                path.display()
            ))
        })?;
        let module = Arc::new(Module {
            path: path.to_path_buf(),
            ctx,
            generation: AtomicU64::new(0),
            last_reinit: Mutex::new(None),
        });
        module.initialize()?;
        modules.insert(path.to_path_buf(), Arc::clone(&module));
        Ok(module)
    }

    fn initialize(&self) -> Result<(), CaError> {
        match self
            .ctx
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        {
            Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
            Err(e) => Err(CaError::Pkcs11(format!(
                "cannot initialise PKCS#11 module {}: {e}",
                self.path.display()
            ))),
        }
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// `C_Finalize` + `C_Initialize`, so that the library looks for its tokens again (many
    /// libraries, SoftHSM2 among them, list tokens only at initialisation). Every session of
    /// every key on this library dies with it. Returns whether it ran.
    fn reinitialize(&self) -> bool {
        let Ok(mut last) = self.last_reinit.lock() else {
            return false;
        };
        if last.is_some_and(|t| t.elapsed() < REINIT_EVERY) {
            return false;
        }
        *last = Some(Instant::now());
        self.generation.fetch_add(1, Ordering::AcqRel);
        let _ = self.ctx.clone().finalize();
        match self.initialize() {
            Ok(()) => {
                tracing::warn!(module = %self.path.display(), "re-initialised the PKCS#11 library to find its token again");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "re-initialising the PKCS#11 library failed");
                false
            }
        }
    }
}

/// Whether `e` means the token, the device or the session is gone (rather than a refusal of
/// this one operation): the pool is then emptied and the key reported unavailable.
fn is_token_failure(e: &P11Error) -> bool {
    matches!(
        e,
        P11Error::Pkcs11(
            RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::DeviceMemory
                | RvError::SessionClosed
                | RvError::SessionHandleInvalid
                | RvError::SlotIdInvalid
                | RvError::UserNotLoggedIn
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid
                | RvError::CryptokiNotInitialized
                | RvError::GeneralError
                | RvError::FunctionFailed,
            _
        )
    )
}

fn unavailable(location: &Pkcs11Location, what: &str, e: impl std::fmt::Display) -> CaError {
    CaError::KeyUnavailable(format!("{}: {what}: {e}", location.describe()))
}

/// The slot whose token carries `label`.
fn find_slot(ctx: &Pkcs11, location: &Pkcs11Location) -> Result<Slot, CaError> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| unavailable(location, "listing slots", e))?;
    for slot in slots {
        if let Ok(info) = ctx.get_token_info(slot) {
            if info.label().trim_end() == location.token_label {
                return Ok(slot);
            }
        }
    }
    Err(CaError::KeyUnavailable(format!(
        "{}: no token with this label is present",
        location.describe()
    )))
}

fn login(session: &Session, location: &Pkcs11Location) -> Result<(), CaError> {
    match session.login(UserType::User, Some(&location.pin)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(e @ P11Error::Pkcs11(RvError::PinIncorrect | RvError::PinLocked, _)) => Err(
            CaError::Pkcs11(format!("{}: login refused: {e}", location.describe())),
        ),
        Err(e) => Err(unavailable(location, "login", e)),
    }
}

/// The objects of `class` labelled with the key label.
fn find_labelled(
    session: &Session,
    location: &Pkcs11Location,
    class: ObjectClass,
) -> Result<Vec<ObjectHandle>, CaError> {
    session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(location.key_label.as_bytes().to_vec()),
        ])
        .map_err(|e| unavailable(location, "finding the key", e))
}

struct Pooled {
    session: Session,
    key: ObjectHandle,
    generation: u64,
}

/// A private key in a PKCS#11 token, with a pool of logged-in sessions.
pub struct Pkcs11Key {
    location: Pkcs11Location,
    key_type: KeyType,
    module: Arc<Module>,
    idle: Mutex<Vec<Pooled>>,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("location", &self.location)
            .field("key_type", &self.key_type)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Key {
    /// Open the key at `location`, of `key_type` (taken from its certificate). Opens one
    /// session to prove the token, the PIN and the key are there.
    pub fn open(location: Pkcs11Location, key_type: KeyType) -> Result<Pkcs11Key, CaError> {
        refuse_gost(&location, key_type)?;
        let module = Module::get(&location.module)?;
        let key = Pkcs11Key {
            location,
            key_type,
            module,
            idle: Mutex::new(Vec::new()),
        };
        let first = key.open_session()?;
        key.give_back(first);
        Ok(key)
    }

    /// Where the key lives.
    pub fn location(&self) -> &Pkcs11Location {
        &self.location
    }

    fn open_session(&self) -> Result<Pooled, CaError> {
        let generation = self.module.generation();
        let slot = match find_slot(&self.module.ctx, &self.location) {
            Ok(slot) => slot,
            Err(CaError::KeyUnavailable(_)) if self.module.reinitialize() => {
                find_slot(&self.module.ctx, &self.location)?
            }
            Err(e) => return Err(e),
        };
        let generation = generation.max(self.module.generation());
        let session = self
            .module
            .ctx
            .open_ro_session(slot)
            .map_err(|e| unavailable(&self.location, "opening a session", e))?;
        login(&session, &self.location)?;
        let found = find_labelled(&session, &self.location, ObjectClass::PRIVATE_KEY)?;
        let key = match found.as_slice() {
            [one] => *one,
            [] => {
                return Err(CaError::KeyUnavailable(format!(
                    "{}: the token has no private key with this label",
                    self.location.describe()
                )))
            }
            _ => {
                return Err(CaError::Pkcs11(format!(
                    "{}: {} private keys carry this label; it must name exactly one",
                    self.location.describe(),
                    found.len()
                )))
            }
        };
        Ok(Pooled {
            session,
            key,
            generation,
        })
    }

    fn give_back(&self, pooled: Pooled) {
        if pooled.generation != self.module.generation() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE_SESSIONS {
                idle.push(pooled);
            }
        }
    }

    fn take(&self) -> Result<Pooled, CaError> {
        let current = self.module.generation();
        let pooled = self.idle.lock().ok().and_then(|mut idle| {
            idle.retain(|p| p.generation == current);
            idle.pop()
        });
        match pooled {
            Some(p) => Ok(p),
            None => self.open_session(),
        }
    }

    /// Whether a logged-in session is pooled or can be opened now.
    pub fn ready(&self) -> Result<(), CaError> {
        let pooled = self.take()?;
        self.give_back(pooled);
        Ok(())
    }

    /// Sign `data`: SHA-256 (RSA, EC P-256) or SHA-384 (EC P-384) here, the private-key
    /// operation in the token. Returns what X.509 carries: the PKCS#1 v1.5 signature, or a
    /// DER ECDSA-Sig-Value.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, CaError> {
        refuse_gost(&self.location, self.key_type)?;
        let Some(digest) = self.key_type.digest() else {
            return Err(CaError::Pkcs11(format!(
                "{}: no digest",
                self.location.describe()
            )));
        };
        let digest = openssl::hash::hash(digest, data)?;
        let (mechanism, input) = if self.key_type.is_rsa() {
            let mut input = SHA256_DIGEST_INFO.to_vec();
            input.extend_from_slice(&digest);
            (Mechanism::RsaPkcs, input)
        } else {
            (Mechanism::Ecdsa, digest.to_vec())
        };
        let pooled = self.take()?;
        match pooled.session.sign(&mechanism, pooled.key, &input) {
            Ok(signature) => {
                self.give_back(pooled);
                if self.key_type.is_rsa() {
                    Ok(signature)
                } else {
                    ecdsa_der(&signature)
                }
            }
            Err(e) => {
                if is_token_failure(&e) {
                    // Every idle session is as suspect as this one.
                    if let Ok(mut idle) = self.idle.lock() {
                        idle.clear();
                    }
                    Err(unavailable(&self.location, "signing", e))
                } else {
                    self.give_back(pooled);
                    Err(CaError::Pkcs11(format!(
                        "{}: signing: {e}",
                        self.location.describe()
                    )))
                }
            }
        }
    }
}

/// `r‖s` (each half the length) → DER `ECDSA-Sig-Value`.
fn ecdsa_der(raw: &[u8]) -> Result<Vec<u8>, CaError> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(CaError::Pkcs11(format!(
            "the token returned an ECDSA signature of odd length {}",
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let sig = EcdsaSig::from_private_components(BigNum::from_slice(r)?, BigNum::from_slice(s)?)?;
    Ok(sig.to_der()?)
}

/// A logged-in read-write session on the token at `location`, and the objects it holds with
/// `location`'s key label.
fn labelled(location: &Pkcs11Location) -> Result<(Session, Vec<ObjectHandle>), CaError> {
    let module = Module::get(&location.module)?;
    let slot = find_slot(&module.ctx, location)?;
    let session = module
        .ctx
        .open_rw_session(slot)
        .map_err(|e| unavailable(location, "opening a read-write session", e))?;
    login(&session, location)?;
    let existing = session
        .find_objects(&[Attribute::Label(location.key_label.as_bytes().to_vec())])
        .map_err(|e| unavailable(location, "finding objects", e))?;
    Ok((session, existing))
}

/// Generate a key pair of `key_type` inside the token at `location`: the private key is a
/// token object, private, sensitive, never extractable, usable only for signing. Refuses
/// when an object with the label exists. Returns the public key.
pub fn generate(location: &Pkcs11Location, key_type: KeyType) -> Result<PKey<Public>, CaError> {
    refuse_gost(location, key_type)?;
    let (session, existing) = labelled(location)?;
    if !existing.is_empty() {
        return Err(CaError::Pkcs11(format!(
            "{}: the token already holds {} object(s) with this label; choose another \
             key_label or remove them with the token's own tools",
            location.describe(),
            existing.len()
        )));
    }
    let mut id = [0u8; 16];
    openssl::rand::rand_bytes(&mut id)?;
    let label = location.key_label.as_bytes().to_vec();
    let mut public = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Label(label.clone()),
        Attribute::Id(id.to_vec()),
    ];
    let private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Label(label),
        Attribute::Id(id.to_vec()),
    ];
    let mechanism = match key_type {
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            let bits: u64 = match key_type {
                KeyType::Rsa3072 => 3072,
                KeyType::Rsa4096 => 4096,
                _ => 2048,
            };
            public.push(Attribute::ModulusBits(bits.into()));
            public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
            Mechanism::RsaPkcsKeyPairGen
        }
        KeyType::Gost2015_512 => {
            // `refuse_gost` above: never reached.
            return Err(gost_refused(location));
        }
        KeyType::EcP256 | KeyType::EcP384 => {
            let params = if key_type == KeyType::EcP256 {
                P256_PARAMS.to_vec()
            } else {
                P384_PARAMS.to_vec()
            };
            public.push(Attribute::EcParams(params));
            Mechanism::EccKeyPairGen
        }
    };
    let (public_handle, _) = session
        .generate_key_pair(&mechanism, &public, &private)
        .map_err(|e| CaError::Pkcs11(format!("{}: key generation: {e}", location.describe())))?;
    public_key(&session, location, public_handle, key_type)
}

/// Why a GOST key is never a token key here.
fn gost_refused(location: &Pkcs11Location) -> CaError {
    CaError::Pkcs11(format!(
        "{}: a GOST R 34.10-2015 (gost2015-512) CA key cannot live in a PKCS#11 token: SoftHSM2 \
         and the tokens Tamga supports have no GOST R 34.10-2012-512 mechanisms; keep it in a \
         file (`kind = \"file\"`)",
        location.describe()
    ))
}

/// Refuses a GOST key type for a token key ([`gost_refused`]).
fn refuse_gost(location: &Pkcs11Location, key_type: KeyType) -> Result<(), CaError> {
    if key_type.is_gost() {
        return Err(gost_refused(location));
    }
    Ok(())
}

/// Destroy every object of the token at `location` labelled with its key label (a key being
/// replaced on the operator's explicit order: `--force`). Returns how many there were.
pub fn destroy_labelled(location: &Pkcs11Location) -> Result<usize, CaError> {
    let (session, existing) = labelled(location)?;
    for handle in &existing {
        session.destroy_object(*handle).map_err(|e| {
            CaError::Pkcs11(format!(
                "{}: removing the old key: {e}",
                location.describe()
            ))
        })?;
    }
    Ok(existing.len())
}

/// Read the public key object `handle` into an OpenSSL public key.
fn public_key(
    session: &Session,
    location: &Pkcs11Location,
    handle: ObjectHandle,
    key_type: KeyType,
) -> Result<PKey<Public>, CaError> {
    let attrs = session
        .get_attributes(
            handle,
            &[
                AttributeType::KeyType,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
                AttributeType::EcPoint,
            ],
        )
        .map_err(|e| unavailable(location, "reading the public key", e))?;
    let bad = |what: &str| CaError::Pkcs11(format!("{}: {what}", location.describe()));
    let mut modulus = None;
    let mut exponent = None;
    let mut point = None;
    let mut kind = None;
    for a in attrs {
        match a {
            Attribute::KeyType(k) => kind = Some(k),
            Attribute::Modulus(m) => modulus = Some(m),
            Attribute::PublicExponent(e) => exponent = Some(e),
            Attribute::EcPoint(p) => point = Some(p),
            _ => {}
        }
    }
    if key_type.is_rsa() {
        if kind != Some(P11KeyType::RSA) {
            return Err(bad("the generated public key is not RSA"));
        }
        let (Some(n), Some(e)) = (modulus, exponent) else {
            return Err(bad("the RSA public key lacks its modulus or exponent"));
        };
        let rsa = openssl::rsa::Rsa::from_public_components(
            BigNum::from_slice(&n)?,
            BigNum::from_slice(&e)?,
        )?;
        Ok(PKey::from_rsa(rsa)?)
    } else {
        if kind != Some(P11KeyType::EC) {
            return Err(bad("the generated public key is not EC"));
        }
        let point = point.ok_or_else(|| bad("the EC public key lacks CKA_EC_POINT"))?;
        let nid = if key_type == KeyType::EcP256 {
            openssl::nid::Nid::X9_62_PRIME256V1
        } else {
            openssl::nid::Nid::SECP384R1
        };
        let group = openssl::ec::EcGroup::from_curve_name(nid)?;
        let mut bn = openssl::bn::BigNumContext::new()?;
        // PKCS#11 says CKA_EC_POINT is a DER OCTET STRING; some tokens return the bare point.
        let bare = match point.as_slice() {
            [0x04, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
            [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
            other => other,
        };
        let ec_point = openssl::ec::EcPoint::from_bytes(&group, bare, &mut bn)?;
        let ec = openssl::ec::EcKey::from_public_key(&group, &ec_point)?;
        Ok(PKey::from_ec_key(ec)?)
    }
}
