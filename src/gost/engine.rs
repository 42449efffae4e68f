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
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Verifier;

/// The OpenSSL configuration Tamga ships (`config/openssl-gost.cnf`), on its own: it loads the
/// gost engine from OpenSSL's engines directory, and nothing else. The test processes cargo
/// starts read it as it is (`.cargo/config.toml`); the binaries add it to the system's own
/// configuration ([`shipped_configuration`]).
pub const OPENSSL_CONFIG: &str = include_str!("../../config/openssl-gost.cnf");

/// The engine's sections, named so that they do not meet a system configuration's own.
const ENGINES_SECTION: &str = "tamga_engines";
const GOST_SECTION: &str = "tamga_gost_engine";
const INIT_SECTION: &str = "tamga_openssl_init";

/// Which algorithms the engine is made the default for: its key methods (GOST keys are read,
/// made, sign and verify) and its digests (Streebog). Not its ciphers: nothing here encrypts
/// with GOST ciphers.
const DEFAULT_ALGORITHMS: &str = "PKEY, DIGESTS";

/// Which configuration OpenSSL was initialised with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Configuration {
    /// The shipped one: the system's configuration (the file named here, where OpenSSL's
    /// directory has one) with the engine added, or the engine alone; written to a file of our
    /// own for OpenSSL to read and removed again once read; `OPENSSL_CONF` is unset again after.
    Shipped {
        /// The system configuration included, if there is one.
        system: Option<PathBuf>,
    },
    /// The operator's: `OPENSSL_CONF` was set, and is used as it is. GOST works if it loads
    /// the gost engine.
    Operator(OsString),
    /// The shipped one could not be written (the reason); OpenSSL started with its default
    /// configuration, without the engine.
    NotWritten(String),
    /// [`init`] has not run: OpenSSL starts, or started, however the process starts it.
    NotInitialised,
}

impl fmt::Display for Configuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Configuration::Shipped { system: Some(path) } => write!(
                f,
                "the system's OpenSSL configuration {} with the gost engine added",
                path.display()
            ),
            Configuration::Shipped { system: None } => {
                f.write_str("the shipped OpenSSL configuration (the gost engine alone)")
            }
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
                f.write_str("whatever OpenSSL read without the GOST initialisation")
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
static NOT_INITIALISED: Configuration = Configuration::NotInitialised;

/// Initialises OpenSSL, once per process, with the gost engine loaded: with the operator's
/// configuration when `OPENSSL_CONF` is set, else with the system's configuration and the
/// engine added ([`shipped_configuration`]). Returns whether GOST works.
///
/// Only a binary's `main` calls it, as its first use of OpenSSL and while the process has one
/// thread: when `OPENSSL_CONF` is not set, it sets the variable for OpenSSL to read and
/// removes it again (tests get the variable from cargo instead, and ask [`support`]). A later
/// call does nothing more. Like `openssl::init`, which it calls, it leaves out OpenSSL's
/// exit-time clean-up. A missing engine is no error: OpenSSL starts without it (the shipped
/// configuration turns off `config_diagnostics`, which would make that fatal), RSA and EC
/// work, and the answer is [`GostSupport::Unavailable`].
pub fn init() -> &'static GostSupport {
    CONFIGURATION.get_or_init(|| {
        let configuration = match std::env::var_os("OPENSSL_CONF") {
            Some(path) => {
                openssl::init();
                Configuration::Operator(path)
            }
            None => {
                let system = system_configuration();
                let text = shipped_configuration(
                    system
                        .as_ref()
                        .map(|(path, text)| (path.as_path(), text.as_str())),
                );
                match ShippedFile::write(&text) {
                    Ok(file) => {
                        std::env::set_var("OPENSSL_CONF", &file.path);
                        openssl::init();
                        // Read: child processes must not inherit a path that is about to go.
                        std::env::remove_var("OPENSSL_CONF");
                        drop(file);
                        Configuration::Shipped {
                            system: system.map(|(path, _)| path),
                        }
                    }
                    Err(e) => {
                        openssl::init();
                        Configuration::NotWritten(e.to_string())
                    }
                }
            }
        };
        // A configuration that names an engine OpenSSL cannot load leaves its complaint on
        // this thread's error queue; it is reported through `support`, not by the next call.
        drop(openssl::error::ErrorStack::get());
        configuration
    });
    support()
}

/// Which configuration OpenSSL was initialised with ([`Configuration::NotInitialised`] until
/// [`init`] has run).
pub fn configuration() -> &'static Configuration {
    CONFIGURATION.get().unwrap_or(&NOT_INITIALISED)
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

/// The system's OpenSSL configuration, as OpenSSL would read it without `OPENSSL_CONF`:
/// `openssl.cnf` in OpenSSL's directory (`openssl version -d`), with its text. None where
/// there is none or it cannot be read. Calls no OpenSSL function that initialises it.
fn system_configuration() -> Option<(PathBuf, String)> {
    // "OPENSSLDIR: \"/usr/lib/ssl\"" — a constant of the library, read without initialising.
    let dir = openssl::version::dir();
    let dir = dir.strip_prefix("OPENSSLDIR: ")?.trim().trim_matches('"');
    let path = PathBuf::from(dir).join("openssl.cnf");
    let text = std::fs::read_to_string(&path).ok()?;
    Some((path, text))
}

/// The configuration the binaries start OpenSSL with.
///
/// Without a system configuration: [`OPENSSL_CONFIG`], the engine alone. With one (its path
/// and text): that file included as it is, then
/// - `config_diagnostics = 0`, so that an engine OpenSSL cannot find does not make its start
///   fail (GOST is then reported unavailable; a system file may have turned diagnostics on);
/// - the engine added to the initialisation section the system's `openssl_conf` names (to its
///   `engines` section when it has one), or, where it names none, an initialisation section of
///   our own with the engine alone;
/// - the engine's sections.
///
/// A section named again in a later part of OpenSSL's configuration is added to, not
/// replaced, and a later value of a name replaces the earlier one: so the system's settings
/// stay, and only those named here change.
pub fn shipped_configuration(system: Option<(&Path, &str)>) -> String {
    let Some((path, text)) = system else {
        return OPENSSL_CONFIG.to_owned();
    };
    let sections = top_level_values(text);
    let value = |section: &str, name: &str| {
        sections
            .iter()
            .find(|(s, n, _)| s == section && n == name)
            .map(|(_, _, v)| v.clone())
    };
    let mut out = format!(
        "# Written by tamga at start: the system's OpenSSL configuration with the gost engine\n\
         # added (config/openssl-gost.cnf explains it).\n\
         .include {}\n\
         [default]\n\
         config_diagnostics = 0\n",
        path.display()
    );
    match value("default", "openssl_conf") {
        None => out.push_str(&format!(
            "openssl_conf = {INIT_SECTION}\n[{INIT_SECTION}]\nengines = {ENGINES_SECTION}\n\
             [{ENGINES_SECTION}]\ngost = {GOST_SECTION}\n"
        )),
        Some(init) => match value(&init, "engines") {
            None => out.push_str(&format!(
                "[{init}]\nengines = {ENGINES_SECTION}\n[{ENGINES_SECTION}]\ngost = {GOST_SECTION}\n"
            )),
            Some(engines) => out.push_str(&format!("[{engines}]\ngost = {GOST_SECTION}\n")),
        },
    }
    out.push_str(&format!(
        "[{GOST_SECTION}]\ndefault_algorithms = {DEFAULT_ALGORITHMS}\n"
    ));
    out
}

/// The `name = value` lines of an OpenSSL configuration file's own text (not of the files it
/// includes), with their section (`default` before the first): enough to find which sections
/// its `openssl_conf` and `engines` name.
fn top_level_values(text: &str) -> Vec<(String, String, String)> {
    let mut section = "default".to_owned();
    let mut values = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_owned();
        } else if let Some((name, value)) = line.split_once('=') {
            let name = name.trim();
            if !name.starts_with('.') {
                values.push((section.clone(), name.to_owned(), value.trim().to_owned()));
            }
        }
    }
    values
}

/// The probe: the Streebog-512 digest, a GOST 2012-512 public key (TC26 paramSetA) and a
/// signature by its private key over [`PROBE_MESSAGE`], all made once with
/// `openssl genpkey -algorithm gost2012_512 -pkeyopt paramset:A` and
/// `openssl dgst -md_gost12_512 -sign`.
fn probe() -> GostSupport {
    if MessageDigest::from_name("md_gost12_512").is_none() {
        return GostSupport::Unavailable(format!(
            "OpenSSL has no Streebog-512 digest: the gost engine is not loaded ({})",
            configuration()
        ));
    }
    let outcome = probe_signature(PROBE_MESSAGE);
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

/// Whether the probe's signature verifies over `message` with the probe's key.
fn probe_signature(message: &[u8]) -> Result<bool, openssl::error::ErrorStack> {
    let digest =
        MessageDigest::from_name("md_gost12_512").ok_or_else(openssl::error::ErrorStack::get)?;
    let key = PKey::public_key_from_der(&hex_bytes(PROBE_SPKI))?;
    let mut verifier = Verifier::new(digest, &key)?;
    verifier.update(message)?;
    verifier.verify(&hex_bytes(PROBE_SIGNATURE))
}

/// The shipped configuration in a file of our own, removed when dropped.
struct ShippedFile {
    path: PathBuf,
}

impl ShippedFile {
    /// Writes `text` to a new file (mode 0600, a name no one else has) in the temporary
    /// directory. Nothing here may call OpenSSL: it runs before its initialisation.
    fn write(text: &str) -> std::io::Result<ShippedFile> {
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
        file.write_all(text.as_bytes())?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_probe_is_a_real_signature_that_fails_on_another_message() {
        // Its key is NCA's curve in the TC26 form, whatever the engine says.
        let key = super::super::GostPublicKey::from_der(&hex_bytes(PROBE_SPKI)).unwrap();
        assert_eq!(key.size(), super::super::KeySize::Bits512);
        assert_eq!(key.form(), super::super::Form::Tc26);
        if !super::super::engine_for_test(
            "the_probe_is_a_real_signature_that_fails_on_another_message",
        ) {
            return;
        }
        assert!(probe_signature(PROBE_MESSAGE).unwrap());
        assert!(!probe_signature(b"tamga: another message").unwrap_or(false));
    }

    #[test]
    fn without_a_system_file_the_shipped_configuration_is_the_engine_alone() {
        assert_eq!(shipped_configuration(None), OPENSSL_CONFIG);
        assert!(OPENSSL_CONFIG.contains(&format!("default_algorithms = {DEFAULT_ALGORITHMS}")));
        assert!(OPENSSL_CONFIG.contains(&format!("[{GOST_SECTION}]")));
    }

    #[test]
    fn the_engine_joins_the_section_the_system_names() {
        let path = Path::new("/etc/ssl/openssl.cnf");
        // Debian's shape: an init section without engines.
        let debian = "HOME = .\nopenssl_conf = openssl_init # comment\n[openssl_init]\n\
                      providers = provider_sect\n[provider_sect]\ndefault = default_sect\n";
        let text = shipped_configuration(Some((path, debian)));
        assert!(text.contains(".include /etc/ssl/openssl.cnf\n[default]\nconfig_diagnostics = 0\n"));
        assert!(text.contains("[openssl_init]\nengines = tamga_engines\n"));
        assert!(!text.contains("openssl_conf ="), "{text}");
        // An init section with engines of its own keeps them and gains gost.
        let engines =
            "openssl_conf = init\n[init]\nengines = my_engines\n[my_engines]\npkcs11 = p\n";
        let text = shipped_configuration(Some((path, engines)));
        assert!(
            text.contains("[my_engines]\ngost = tamga_gost_engine\n"),
            "{text}"
        );
        assert!(!text.contains("[init]"), "{text}");
        // No openssl_conf (a name in another section does not count): our own.
        let none = "[req]\nopenssl_conf = not_this_one\n";
        let text = shipped_configuration(Some((path, none)));
        assert!(
            text.contains("[default]\nconfig_diagnostics = 0\nopenssl_conf = tamga_openssl_init\n")
        );
        assert!(text.contains("[tamga_openssl_init]\nengines = tamga_engines\n"));
    }
}
