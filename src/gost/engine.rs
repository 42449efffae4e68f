//! Loading OpenSSL's gost engine, and whether it works.
//!
//! OpenSSL reads its configuration once, at its first initialisation in the process, from the
//! file `OPENSSL_CONF` names (or its built-in default). [`init`] is that first initialisation:
//! the binaries call it before anything else, and so do the tests that need GOST (the test
//! binaries also get `OPENSSL_CONF` from cargo's configuration, because their tests run in any
//! order and any of them may touch OpenSSL first).

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Verifier;

/// The OpenSSL configuration Tamga ships (`config/openssl-gost.cnf`): it loads the gost engine
/// from OpenSSL's engines directory with `default_algorithms = ALL`, and nothing else.
pub const OPENSSL_CONFIG: &str = include_str!("../../config/openssl-gost.cnf");

/// Which configuration OpenSSL was initialised with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Configuration {
    /// The shipped one ([`OPENSSL_CONFIG`]), written to a file of our own for OpenSSL to read
    /// and removed again once read; `OPENSSL_CONF` is unset again after.
    Shipped,
    /// The operator's: `OPENSSL_CONF` was set, and is used as it is. GOST works if it loads
    /// the gost engine.
    Operator(OsString),
    /// The shipped one could not be written (the reason); OpenSSL started with its default
    /// configuration, without the engine.
    NotWritten(String),
    /// [`init`] was not called first: OpenSSL started however the process started it.
    NotInitialised,
}

impl fmt::Display for Configuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Configuration::Shipped => f.write_str("the shipped OpenSSL configuration"),
            Configuration::Operator(path) => {
                write!(f, "OPENSSL_CONF={}", PathBuf::from(path).display())
            }
            Configuration::NotWritten(why) => {
                write!(
                    f,
                    "OpenSSL's default (the shipped configuration could not be written: {why})"
                )
            }
            Configuration::NotInitialised => {
                f.write_str("whatever OpenSSL read before the GOST initialisation ran")
            }
        }
    }
}

/// Whether GOST R 34.10-2012/2015 512-bit signatures work in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GostSupport {
    /// The engine reads a GOST public key and verifies a known signature over Streebog-512.
    Available,
    /// They do not work, and why (the engine is not installed or not loaded).
    Unavailable(String),
}

impl GostSupport {
    /// Whether GOST works.
    pub fn is_available(&self) -> bool {
        matches!(self, GostSupport::Available)
    }
}

static CONFIGURATION: OnceLock<Configuration> = OnceLock::new();
static SUPPORT: OnceLock<GostSupport> = OnceLock::new();

/// Initialises OpenSSL, once per process, with the gost engine loaded: with the operator's
/// configuration when `OPENSSL_CONF` is set, else with the shipped one. Returns whether GOST
/// works.
///
/// It must be the process's first use of OpenSSL (and, when `OPENSSL_CONF` is not set, run
/// while the process has one thread: it sets and unsets the variable); a later call does
/// nothing more. Like `openssl::init`, which it calls, it leaves out OpenSSL's exit-time
/// clean-up. A missing engine is no error: OpenSSL starts without it, RSA and EC work, and the
/// answer is [`GostSupport::Unavailable`].
pub fn init() -> &'static GostSupport {
    CONFIGURATION.get_or_init(|| {
        let configuration = match std::env::var_os("OPENSSL_CONF") {
            Some(path) => {
                openssl::init();
                Configuration::Operator(path)
            }
            None => match ShippedFile::write() {
                Ok(file) => {
                    std::env::set_var("OPENSSL_CONF", &file.path);
                    openssl::init();
                    // Read: child processes must not inherit a path that is about to go.
                    std::env::remove_var("OPENSSL_CONF");
                    drop(file);
                    Configuration::Shipped
                }
                Err(e) => {
                    openssl::init();
                    Configuration::NotWritten(e.to_string())
                }
            },
        };
        // A configuration that names an engine OpenSSL cannot load leaves its complaint on
        // this thread's error queue; it is reported through `support`, not by the next call.
        drop(openssl::error::ErrorStack::get());
        configuration
    });
    support()
}

/// Which configuration OpenSSL was initialised with.
pub fn configuration() -> &'static Configuration {
    CONFIGURATION.get_or_init(|| Configuration::NotInitialised)
}

/// Whether GOST works in this process (probed once, at the first call). Without [`init`]
/// first it answers for whatever configuration OpenSSL was started with.
pub fn support() -> &'static GostSupport {
    SUPPORT.get_or_init(probe)
}

/// Whether GOST works in this process: [`support`] as a yes or no.
pub fn available() -> bool {
    support().is_available()
}

/// The probe: the Streebog-512 digest, a GOST 2012-512 public key (TC26 paramSetA) and a
/// signature by its private key over [`PROBE_MESSAGE`], all made once with
/// `openssl genpkey -algorithm gost2012_512 -pkeyopt paramset:A` and
/// `openssl dgst -md_gost12_512 -sign`.
fn probe() -> GostSupport {
    let Some(digest) = MessageDigest::from_name("md_gost12_512") else {
        return GostSupport::Unavailable(format!(
            "OpenSSL has no Streebog-512 digest: the gost engine is not loaded ({})",
            configuration()
        ));
    };
    let outcome = (|| -> Result<bool, openssl::error::ErrorStack> {
        let key = PKey::public_key_from_der(&hex_bytes(PROBE_SPKI))?;
        let mut verifier = Verifier::new(digest, &key)?;
        verifier.update(PROBE_MESSAGE)?;
        verifier.verify(&hex_bytes(PROBE_SIGNATURE))
    })();
    drop(openssl::error::ErrorStack::get());
    match outcome {
        Ok(true) => GostSupport::Available,
        Ok(false) => GostSupport::Unavailable(
            "a known GOST R 34.10-2012 512-bit signature does not verify".into(),
        ),
        Err(e) => GostSupport::Unavailable(format!(
            "OpenSSL cannot check a GOST R 34.10-2012 512-bit signature ({}): {e}",
            configuration()
        )),
    }
}

/// The shipped configuration in a file of our own, removed when dropped.
struct ShippedFile {
    path: PathBuf,
}

impl ShippedFile {
    /// Writes [`OPENSSL_CONFIG`] to a new file (mode 0600, a name no one else has) in the
    /// temporary directory. Nothing here may call OpenSSL: it runs before its initialisation.
    fn write() -> std::io::Result<ShippedFile> {
        let name = format!(
            "tamga-openssl-{}-{:016x}.cnf",
            std::process::id(),
            rand::random::<u64>()
        );
        let path = std::env::temp_dir().join(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path)?;
        let file_guard = ShippedFile { path };
        file.write_all(OPENSSL_CONFIG.as_bytes())?;
        Ok(file_guard)
    }
}

impl Drop for ShippedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the probe's signature signs.
const PROBE_MESSAGE: &[u8] = b"tamga: GOST R 34.10-2012 512-bit probe";

/// The probe's public key (TC26 form, paramSetA), DER.
const PROBE_SPKI: &str =
    "3081aa302106082a85030701010102301506092a850307010201020106082a8503070101020303818400048180\
     e11056d27d9aeaf6dd2dc9bf011f51639280f900fea139a1f0b665341526f63e80dd81c87a9b3969401a7eb02a\
     854879102030e28041cc3d582daf8024a7b29a3a09c6023ffa7ed0f9becdf2003694996369a5740a492612de3b\
     ea97a64a72b745bca1fe31ca7c834e5c50eaed924ec08988e24bc18a127c2a814085e1c88e4d";

/// The probe's signature, in the engine's byte order.
const PROBE_SIGNATURE: &str =
    "444c8e2947e19abdefb527a507c87552a82f84dab91adb9206c6c4d7845513839dc3a3bf01b343975b35f0fdd8\
     948e1a8f5943b9e8f51aa073450ea89372a64b35194a3dabaff56ae599a48e0909c14470ee56f68c0d2bb5fc5f\
     ae29d22bf44a174d0ceb958dc305dc1fa61970eb0aa813f1ebb5d630617e494547e5348c8893";

/// The bytes of a hex constant of this file (a bad one gives no bytes, and the probe fails).
fn hex_bytes(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap_or_default()
}
