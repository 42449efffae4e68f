//! Configuration: one documented struct per component, loaded from a TOML file, overridden by
//! `TAMGA_*` environment variables, and checked before anything starts.
//!
//! Owns: the shape of `config/tamga.toml` (`sections`), the embedded development defaults,
//! reading the file and the environment override rules (`load`), and the pure checks of every
//! value (`checks`). It is a leaf: it imports no other authority, and its checks open nothing
//! but the configuration file itself — whether the files, keys, tokens and mail settings the
//! values name can be used is checked by the commands that use them (`tamga config check` and
//! `tamga serve` check all of them, see `cli::preflight`). Must never: read secrets (keys,
//! passwords) into the config itself, or silently ignore a key it does not know.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod checks;
mod load;
mod sections;
#[cfg(test)]
mod tests;

pub use checks::validate;
pub use load::{environment, load, parse_with_env};
pub use sections::*;

/// The development defaults written into the binary. `config/tamga.toml` repeats them with
/// comments; a missing default config file falls back to these.
pub const DEFAULT_CONFIG_PATH: &str = "config/tamga.toml";

/// Environment variable naming the configuration file (same as `--config`).
pub const CONFIG_PATH_ENV: &str = "TAMGA_CONFIG";

/// Whether this instance may use development shortcuts (generated CA hierarchy, minted
/// consent tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Development: the CA hierarchy and the Digital ID key are generated on first start.
    Dev,
    /// Production: every key and certificate must already exist; nothing is generated.
    Production,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Dev => "dev",
            Mode::Production => "production",
        })
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `dev` or `production`.
    pub mode: Mode,
    /// HTTP listener.
    pub server: ServerConfig,
    /// Database.
    pub database: DatabaseConfig,
    /// CA hierarchy.
    pub ca: CaConfig,
    /// Trusted Digital ID consent-token issuer.
    pub digital_id: DigitalIdConfig,
    /// Registration authority.
    pub ra: RaConfig,
    /// The citizen's pages.
    pub pages: PagesConfig,
    /// Certificate revocation lists.
    pub crl: CrlConfig,
    /// OCSP responder.
    pub ocsp: OcspConfig,
    /// E-mail notifications.
    pub notify: NotifyConfig,
    /// Request rate limits.
    pub limits: LimitsConfig,
    /// Logging.
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Dev,
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            ca: CaConfig::default(),
            digital_id: DigitalIdConfig::default(),
            ra: RaConfig::default(),
            pages: PagesConfig::default(),
            crl: CrlConfig::default(),
            ocsp: OcspConfig::default(),
            notify: NotifyConfig::default(),
            limits: LimitsConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// Why a configuration was refused. Every message names the key or file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has an unknown key or a value of the wrong type.
    #[error("invalid config {origin}: {message}")]
    Parse {
        /// File name or `environment`.
        origin: String,
        /// What the parser said, including the offending key.
        message: String,
    },
    /// An environment override names a key that does not exist.
    #[error("unknown key `{key}` set by environment variable {var}")]
    UnknownEnvKey {
        /// The variable.
        var: String,
        /// The key it maps to.
        key: String,
    },
    /// A value is present but wrong.
    #[error("{key}: {message}")]
    Invalid {
        /// Dotted key, e.g. `server.public_url`.
        key: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A `TAMGA_*` environment variable whose name or value is not UTF-8. The value is never
    /// shown: it may be a secret.
    #[error("environment variable {var}: the value is not UTF-8")]
    EnvNotUnicode {
        /// The variable's name (lossily decoded if the name itself is not UTF-8).
        var: String,
    },
    /// A file the configuration depends on is missing or unreadable.
    #[error("{key}: {message}")]
    MissingFile {
        /// Dotted key that names the file or directory.
        key: &'static str,
        /// Which file and why.
        message: String,
    },
}

/// Where the configuration came from, for messages.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file on disk.
    File(PathBuf),
    /// No file: the embedded defaults (the default path did not exist).
    EmbeddedDefaults,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::EmbeddedDefaults => f.write_str("embedded defaults"),
        }
    }
}

/// A configuration that has been parsed and checked. Only [`load`] makes one.
#[derive(Debug, Clone)]
pub struct ValidConfig {
    config: Config,
    source: Source,
    database: DatabaseUrl,
    bind: SocketAddr,
    public_url: String,
    cps_url: String,
    trusted_proxies: Vec<std::net::IpAddr>,
}

impl ValidConfig {
    /// The checked values.
    pub fn get(&self) -> &Config {
        &self.config
    }
    /// Where they came from.
    pub fn source(&self) -> &Source {
        &self.source
    }
    /// The parsed database URL.
    pub fn database(&self) -> &DatabaseUrl {
        &self.database
    }
    /// The parsed listen address.
    pub fn bind(&self) -> SocketAddr {
        self.bind
    }
    /// `[server] public_url` without a trailing slash.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }
    /// The CPS URI for certificate policies (`[ca] cps_url`, or `{public_url}/cps`).
    pub fn cps_url(&self) -> &str {
        &self.cps_url
    }
    /// `[limits] trusted_proxies`, parsed.
    pub fn trusted_proxies(&self) -> &[std::net::IpAddr] {
        &self.trusted_proxies
    }
    /// The warnings about the configuration that do not stop the server: a `public_url`
    /// (written into certificates) on this machine's loopback address whose port is not
    /// `bind`'s (see `checks::forgotten_port`), and TLS on the listener while `public_url`
    /// names the same port over plain HTTP, where relying parties would find nothing; and, in
    /// production, a "back to Digital ID" link of the pages that points at the development
    /// stand-in, which answers 404 there.
    pub fn warnings(&self) -> Vec<String> {
        [
            checks::forgotten_port(&self.public_url, self.bind),
            self.plain_http_on_tls_port(),
            self.stand_in_digital_id_in_production(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn stand_in_digital_id_in_production(&self) -> Option<String> {
        let url = &self.config.pages.digital_id_url;
        (self.config.mode == Mode::Production && url.starts_with("/dev/")).then(|| {
            format!(
                "pages.digital_id_url {url} is the development stand-in, which production does \
                 not serve: the citizen's pages send people back to Digital ID there; set it to \
                 Digital ID's own address"
            )
        })
    }

    fn plain_http_on_tls_port(&self) -> Option<String> {
        let tls = &self.config.server.tls;
        let url = url::Url::parse(&self.public_url).ok()?;
        let same_port = url.port_or_known_default() == Some(self.bind.port());
        (tls.enabled() && url.scheme() == "http" && same_port).then(|| {
            format!(
                "server.public_url {} is plain HTTP on the port where [server.tls] serves \
                 HTTPS: OCSP and CRL URLs in issued certificates will not answer unless a \
                 proxy or CDN serves them over HTTP there",
                self.public_url
            )
        })
    }
}

/// The database a URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL, as given.
    Postgres(String),
}

impl DatabaseUrl {
    /// Parse `sqlite://PATH` or `postgres://…` / `postgresql://…`.
    pub fn parse(url: &str) -> Result<DatabaseUrl, String> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(format!("`{url}` names no file (expected sqlite://PATH)"));
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            url::Url::parse(url).map_err(|e| format!("invalid PostgreSQL URL: {e}"))?;
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        Err(format!(
            "unsupported database URL `{}`: expected sqlite://PATH or postgres://…",
            redact_url(url)
        ))
    }

    /// A printable form with any password removed.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DatabaseUrl::Postgres(u) => redact_url(u),
        }
    }
}

fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            // set_password only fails for URLs that cannot have credentials, which this has.
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable>".to_owned(),
    }
}
