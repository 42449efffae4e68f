//! Configuration: one documented struct per component, loaded from a TOML file, overridden by
//! `TAMGA_*` environment variables, and validated before anything starts.
//!
//! Owns: the shape of `config/tamga.toml`, the embedded development defaults, the environment
//! override rules and every start-up check of the values (`tamga config check` runs the same
//! checks as `tamga serve`). Must never: read secrets (keys, passwords) into the config itself,
//! or silently ignore a key it does not know.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::vocab::KeyType;

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
            crl: CrlConfig::default(),
            ocsp: OcspConfig::default(),
            notify: NotifyConfig::default(),
            limits: LimitsConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// `[server]`: the HTTP listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub bind: String,
    /// Base of every URL written into certificates (CRL distribution points, AIA).
    pub public_url: String,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: u32,
    /// Seconds to let in-flight requests finish after SIGTERM/SIGINT.
    pub shutdown_timeout_secs: u32,
    /// Milliseconds a request body may take to arrive in full, counted from when the route
    /// starts reading it; a slower body is answered 408 `body_timeout` and its connection
    /// closed.
    pub body_timeout_ms: u32,
    /// TLS on the listener (`[server.tls]`); plain HTTP while `cert` is empty.
    pub tls: TlsConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".to_owned(),
            public_url: "http://127.0.0.1:8080".to_owned(),
            workers: 0,
            shutdown_timeout_secs: 30,
            body_timeout_ms: 10_000,
            tls: TlsConfig::default(),
        }
    }
}

/// `[server.tls]`: HTTPS on the listener, and optionally client certificates for the portal
/// API. Empty paths mean "not set"; with no `cert` the listener speaks plain HTTP.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The server certificate, PEM, followed by any intermediate CA certificates.
    pub cert: PathBuf,
    /// The server certificate's private key, PEM, unencrypted (the file, never its content,
    /// is named in messages).
    pub key: PathBuf,
    /// CA certificates (PEM bundle) that sign the onboarding portal's client certificates.
    /// When set, `/api/v1/…` answers only requests over a connection whose client
    /// certificate chains to one of them; every other route stays open to anyone.
    pub client_ca: PathBuf,
}

impl TlsConfig {
    /// Whether TLS is configured.
    pub fn enabled(&self) -> bool {
        !self.cert.as_os_str().is_empty()
    }
    /// Whether client certificates are checked for the portal API.
    pub fn client_auth(&self) -> bool {
        !self.client_ca.as_os_str().is_empty()
    }
}

/// `[limits]`: request rate limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Applications stored per IIN in any 24 hours, across all instances (0: no limit).
    pub applications_per_iin_per_day: u32,
    /// Holder revocations per IIN in any 24 hours, across all instances (0: no limit).
    pub revocations_per_iin_per_day: u32,
    /// Sustained requests per second from one client address, per instance (0: no limit).
    pub client_requests_per_second: u32,
    /// Requests one client address may send at once above the sustained rate.
    pub client_burst: u32,
    /// Whether the per-address limit also applies to `/ocsp` and `/crl/…` (relying parties,
    /// often many behind one address; off by default).
    pub client_limit_ocsp_crl: bool,
    /// Addresses of reverse proxies whose `X-Forwarded-For` names the client; requests from
    /// any other peer are keyed by the peer address.
    pub trusted_proxies: Vec<String>,
    /// Open connections one client address may hold at once, per instance (IPv6 per /64;
    /// 0: no cap). A connection over the cap has its first request answered 429
    /// `rate_limited_connections` and is closed. Trusted proxies and the portal's connections
    /// with a verified client certificate are not counted.
    pub connections_per_address: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            applications_per_iin_per_day: 5,
            revocations_per_iin_per_day: 10,
            client_requests_per_second: 50,
            client_burst: 100,
            client_limit_ocsp_crl: false,
            trusted_proxies: Vec::new(),
            connections_per_address: 100,
        }
    }
}

/// `[database]`: where state lives.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (relative to the working directory) or `postgres://…`.
    pub url: String,
    /// Connections in the pool.
    pub pool_size: u32,
    /// SQLite only: how long a writer waits for the lock, in milliseconds.
    pub busy_timeout_ms: u32,
    /// How long a request waits for a pooled connection (the database is down, or every
    /// connection is busy) before it is answered `503 database_unavailable`, in milliseconds.
    pub pool_timeout_ms: u32,
    /// PostgreSQL only: how long one connection attempt may take (libpq `connect_timeout`,
    /// unless the URL sets it), in seconds.
    pub connect_timeout_secs: u32,
    /// Longest an HTTP request waits for its database work before it is answered
    /// `503 database_unavailable`, whatever the database does (a frozen server keeps its TCP
    /// connections open), in milliseconds.
    pub request_timeout_ms: u32,
    /// SQLite only: `full` (every commit is on disk before it returns) or `normal` (commits
    /// survive a crash of Tamga but the last ones may be lost when the machine loses power).
    pub sqlite_synchronous: SqliteSynchronous,
}

/// SQLite's `PRAGMA synchronous` in WAL mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    /// fsync at every commit.
    #[default]
    Full,
    /// fsync at checkpoints only.
    Normal,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/tamga.db".to_owned(),
            pool_size: 8,
            busy_timeout_ms: 5000,
            pool_timeout_ms: 5000,
            connect_timeout_secs: 5,
            request_timeout_ms: 15000,
            sqlite_synchronous: SqliteSynchronous::Full,
        }
    }
}

/// `[ca]`: the CA hierarchy this instance operates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaConfig {
    /// Directory of the hierarchy's keys and certificates.
    pub dir: PathBuf,
    /// Short id of the issuing CA, used in every URL that names it.
    pub issuer_id: String,
    /// Key type of a newly generated issuing CA.
    pub issuing_key_type: KeyType,
    /// Key type of a newly generated OCSP responder.
    pub ocsp_key_type: KeyType,
    /// Validity of the delegated OCSP responder certificate, in days.
    pub ocsp_validity_days: u32,
    /// CPS URI written into certificate policies; empty means `{public_url}/cps`.
    pub cps_url: String,
    /// Where the issuing CA's private key lives.
    pub issuing_key: KeyConfig,
    /// Where the OCSP responder's private key lives.
    pub ocsp_key: KeyConfig,
}

/// Where a CA private key lives: a PEM file in `[ca] dir` (development), or an object in a
/// PKCS#11 token (an HSM) that signs without ever letting the key out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// A PEM file in `[ca] dir`.
    #[default]
    File,
    /// A private key object in a PKCS#11 token.
    Pkcs11,
}

/// `[ca.issuing_key]`, `[ca.ocsp_key]`: where a CA key lives. The PIN is read from the
/// environment variable `pin_env` or the file `pin_file`, never from this file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyConfig {
    /// `file` or `pkcs11`.
    pub kind: KeyKind,
    /// Path of the PKCS#11 library (pkcs11 only).
    pub module: PathBuf,
    /// Label of the token holding the key (pkcs11 only).
    pub token_label: String,
    /// CKA_LABEL of the private key object (pkcs11 only).
    pub key_label: String,
    /// Name of the environment variable holding the user PIN (pkcs11 only).
    pub pin_env: String,
    /// File holding the user PIN (pkcs11 only; trailing newline ignored).
    pub pin_file: PathBuf,
}

impl Default for CaConfig {
    fn default() -> Self {
        CaConfig {
            dir: PathBuf::from("certs-dev"),
            issuer_id: "nca_rsa_dev".to_owned(),
            issuing_key_type: KeyType::Rsa2048,
            ocsp_key_type: KeyType::EcP256,
            ocsp_validity_days: 30,
            cps_url: String::new(),
            issuing_key: KeyConfig::default(),
            ocsp_key: KeyConfig::default(),
        }
    }
}

/// `[digital_id]`: the consent-token issuer Tamga trusts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DigitalIdConfig {
    /// Expected `iss` claim.
    pub issuer: String,
    /// Expected `aud` claim.
    pub audience: String,
    /// Trusted public keys: PEM files (SubjectPublicKeyInfo) or one JWKS file. In dev mode the
    /// generated development key in `[ca] dir` is trusted in addition.
    pub keys: Vec<PathBuf>,
}

impl Default for DigitalIdConfig {
    fn default() -> Self {
        DigitalIdConfig {
            issuer: "https://digitalid.dev.tamga.local".to_owned(),
            audience: "tamga".to_owned(),
            keys: Vec::new(),
        }
    }
}

/// `[ra]`: the registration authority's rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaConfig {
    /// Version of the user agreement citizens must accept; applications naming another
    /// version are refused (`agreement_version_mismatch`).
    pub agreement_version: String,
}

impl Default for RaConfig {
    fn default() -> Self {
        RaConfig {
            agreement_version: "2026-1".to_owned(),
        }
    }
}

/// A duration written as a number and a unit: `90s`, `15m`, `24h`, `7d`.
///
/// Parsing checks the syntax and computes the seconds with checked arithmetic: a number too
/// large for 64-bit seconds becomes [`Span::OVERFLOW`], never a wrapped small value, so that
/// [`validate`] refuses it against the key's own maximum and names the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub std::time::Duration);

impl Span {
    /// What a duration too large for 64-bit seconds parses to: longer than any key allows.
    pub const OVERFLOW: Span = Span(std::time::Duration::from_secs(u64::MAX));

    /// Parse `<n>s`, `<n>m`, `<n>h` or `<n>d` (n ≥ 1).
    pub fn parse(raw: &str) -> Result<Span, String> {
        let raw = raw.trim();
        let split = raw.len().saturating_sub(1);
        let (number, unit) = (
            raw.get(..split).unwrap_or(""),
            raw.get(split..).unwrap_or(""),
        );
        let all_digits = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
        let n: u64 = match number.parse() {
            Ok(n) => n,
            // More digits than 64 bits hold: longer than any key allows.
            Err(_) if all_digits => u64::MAX,
            Err(_) => {
                return Err(format!(
                    "`{raw}` is not a duration such as 90s, 15m, 24h or 7d"
                ))
            }
        };
        let unit_secs: u64 = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => {
                return Err(format!(
                    "`{raw}` is not a duration such as 90s, 15m, 24h or 7d"
                ))
            }
        };
        if n == 0 {
            return Err(format!("`{raw}` must be at least 1 second"));
        }
        Ok(n.checked_mul(unit_secs)
            .filter(|_| n != u64::MAX)
            .map_or(Span::OVERFLOW, |secs| {
                Span(std::time::Duration::from_secs(secs))
            }))
    }

    /// As a chrono duration (saturating: a validated span is at most ten years).
    pub fn chrono(self) -> chrono::Duration {
        i64::try_from(self.0.as_secs())
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .unwrap_or(chrono::Duration::MAX)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        match s {
            _ if s.is_multiple_of(86_400) => write!(f, "{}d", s / 86_400),
            _ if s.is_multiple_of(3600) => write!(f, "{}h", s / 3600),
            _ if s.is_multiple_of(60) => write!(f, "{}m", s / 60),
            _ => write!(f, "{s}s"),
        }
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Span::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Every duration key with its value and the longest value it accepts. Every bound is far
/// inside what chrono and the ASN.1 time encoders take; each is what the key's purpose can
/// sensibly need (a CRL or an OCSP answer valid for years could never be withdrawn).
fn spans(config: &Config) -> [(&'static str, Span, u64); 10] {
    const DAY: u64 = 86_400;
    [
        ("crl.full_interval", config.crl.full_interval, 366 * DAY),
        ("crl.delta_interval", config.crl.delta_interval, 31 * DAY),
        ("crl.validity", config.crl.validity, 366 * DAY),
        ("crl.delta_validity", config.crl.delta_validity, 31 * DAY),
        ("crl.root_validity", config.crl.root_validity, 366 * DAY),
        ("ocsp.validity", config.ocsp.validity, 31 * DAY),
        ("ocsp.renew_before", config.ocsp.renew_before, 3650 * DAY),
        ("notify.retry_base", config.notify.retry_base, DAY),
        ("notify.retry_max", config.notify.retry_max, 31 * DAY),
        (
            "notify.reminder_interval",
            config.notify.reminder_interval,
            7 * DAY,
        ),
    ]
}

/// Every duration key within its maximum.
fn check_spans(config: &Config) -> Result<(), ConfigError> {
    for (key, span, max) in spans(config) {
        if span.0.as_secs() > max {
            let max = Span(std::time::Duration::from_secs(max));
            let got = if span == Span::OVERFLOW {
                "a number of seconds that does not fit in 64 bits".to_owned()
            } else {
                span.to_string()
            };
            return Err(invalid(key, format!("must be at most {max}, got {got}")));
        }
    }
    Ok(())
}

/// `[crl]`: how often CRLs are made and how long they are valid.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrlConfig {
    /// A new full CRL at least this often.
    pub full_interval: Span,
    /// A new delta CRL at least this often (and within seconds of a revocation).
    pub delta_interval: Span,
    /// nextUpdate of a full CRL = thisUpdate + validity.
    pub validity: Span,
    /// nextUpdate of a delta CRL = thisUpdate + delta_validity.
    pub delta_validity: Span,
    /// nextUpdate of the root's CRL = thisUpdate + root_validity.
    pub root_validity: Span,
}

impl Default for CrlConfig {
    fn default() -> Self {
        CrlConfig {
            full_interval: Span(std::time::Duration::from_secs(24 * 3600)),
            delta_interval: Span(std::time::Duration::from_secs(3600)),
            validity: Span(std::time::Duration::from_secs(48 * 3600)),
            delta_validity: Span(std::time::Duration::from_secs(2 * 3600)),
            root_validity: Span(std::time::Duration::from_secs(90 * 86_400)),
        }
    }
}

/// `[ocsp]`: the OCSP responder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OcspConfig {
    /// nextUpdate - thisUpdate of responses; pre-signed responses are re-signed after half.
    pub validity: Span,
    /// Most pre-signed responses kept per instance (the cache is emptied when it is full).
    pub cache_capacity: u32,
    /// Most responses signed on demand at once (nonce or several CertIDs); above it the
    /// answer is `tryLater`.
    pub max_inflight_signing: u32,
    /// Renew the responder certificate when less than this much validity is left.
    pub renew_before: Span,
}

impl Default for OcspConfig {
    fn default() -> Self {
        OcspConfig {
            validity: Span(std::time::Duration::from_secs(24 * 3600)),
            cache_capacity: 1_000_000,
            max_inflight_signing: 64,
            renew_before: Span(std::time::Duration::from_secs(10 * 86_400)),
        }
    }
}

/// `[notify]`: e-mail delivery from the outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// `smtp://host:port` (plain), `smtp://host:port?tls=starttls`, `smtps://host:port`
    /// (implicit TLS); empty: messages are written as .eml files into `mail_dir`.
    pub smtp_url: String,
    /// SMTP user name (optional).
    pub username: String,
    /// Name of an environment variable holding the SMTP password.
    pub password_env: String,
    /// A file holding the SMTP password (first line).
    pub password_file: String,
    /// The From address.
    pub from: String,
    /// Where .eml files go when `smtp_url` is empty.
    pub mail_dir: PathBuf,
    /// Attempts before a message is `dead`.
    pub max_attempts: u32,
    /// First retry delay (doubled per attempt, with jitter).
    pub retry_base: Span,
    /// Longest retry delay.
    pub retry_max: Span,
    /// How often certificates near expiry are looked for (30/14/7-day reminders).
    pub reminder_interval: Span,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            smtp_url: String::new(),
            username: String::new(),
            password_env: String::new(),
            password_file: String::new(),
            from: "Tamga DEV <noreply@tamga.local>".to_owned(),
            mail_dir: PathBuf::from("data/mail"),
            max_attempts: 10,
            retry_base: Span(std::time::Duration::from_secs(30)),
            retry_max: Span(std::time::Duration::from_secs(3600)),
            reminder_interval: Span(std::time::Duration::from_secs(3600)),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`: structured logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// Filter directive (`info`, `tamga=debug,actix_web=info`, …); `RUST_LOG` wins if set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_owned(),
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
    /// A warning about the configuration that does not stop the server, if any: TLS on the
    /// listener while `public_url` (written into certificates) names the same port over
    /// plain HTTP, where relying parties would find nothing.
    pub fn warning(&self) -> Option<String> {
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

/// The `TAMGA_*` environment variables, for [`load`]. Variables of other programs are not
/// looked at, whatever their bytes; a `TAMGA_*` variable that is not UTF-8 is an error naming
/// it (never showing its value).
pub fn environment() -> Result<Vec<(String, String)>, ConfigError> {
    tamga_variables(std::env::vars_os())
}

fn tamga_variables(
    vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Result<Vec<(String, String)>, ConfigError> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    for (name, value) in vars {
        // TAMGA_CONFIG is a path (clap reads it as bytes), not an override.
        if !name.as_bytes().starts_with(b"TAMGA_") || name == CONFIG_PATH_ENV {
            continue;
        }
        let not_unicode = || ConfigError::EnvNotUnicode {
            var: name.to_string_lossy().into_owned(),
        };
        let name_str = name.to_str().ok_or_else(not_unicode)?;
        let value = value.into_string().map_err(|_| not_unicode())?;
        out.push((name_str.to_owned(), value));
    }
    Ok(out)
}

/// Read the configuration from `path` (or the default path, falling back to the embedded
/// defaults when it does not exist), apply `env` overrides, and check every value.
///
/// `explicit` says whether the path was given by the user; an explicit path must exist.
pub fn load(
    path: &Path,
    explicit: bool,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<ValidConfig, ConfigError> {
    let (text, source) = match crate::input::read_bounded_text(path, crate::input::CONFIG_LIMIT) {
        Ok(t) => (t, Source::File(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            (String::new(), Source::EmbeddedDefaults)
        }
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let config = parse_with_env(&text, &source.to_string(), env)?;
    validate(config, source)
}

/// Parse TOML text and apply environment overrides, without the checks of [`load`].
pub fn parse_with_env(
    text: &str,
    origin: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    // Refuse unknown keys in the file itself first, so the message names the file.
    let from_file: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
        origin: origin.to_owned(),
        message: e.to_string(),
    })?;
    let mut tree = toml::Value::try_from(&from_file).map_err(|e| ConfigError::Parse {
        origin: origin.to_owned(),
        message: e.to_string(),
    })?;
    let mut overridden = false;
    for (var, value) in env {
        if apply_env(&mut tree, &var, &value)? {
            overridden = true;
        }
    }
    if !overridden {
        return Ok(from_file);
    }
    tree.try_into()
        .map_err(|e: toml::de::Error| ConfigError::Parse {
            origin: "environment".to_owned(),
            message: e.to_string(),
        })
}

/// Apply one `TAMGA_*` variable. Returns whether it was an override.
///
/// `TAMGA_<SECTION>__<KEY>` must name an existing key (an error otherwise);
/// `TAMGA_<KEY>` applies to a top-level key and is ignored when no such key exists, so that
/// other `TAMGA_*` variables (such as `TAMGA_CONFIG`) can live beside the overrides.
fn apply_env(tree: &mut toml::Value, var: &str, value: &str) -> Result<bool, ConfigError> {
    let Some(rest) = var.strip_prefix("TAMGA_") else {
        return Ok(false);
    };
    let Some(root) = tree.as_table_mut() else {
        return Ok(false);
    };
    let lower = rest.to_ascii_lowercase();
    let unknown = || ConfigError::UnknownEnvKey {
        var: var.to_owned(),
        key: lower.replace("__", "."),
    };
    let slot = match lower.split_once("__") {
        Some((section, rest)) => {
            // `TAMGA_CA__ISSUING_KEY__KIND` names `[ca.issuing_key] kind`.
            let mut table = root
                .get_mut(section)
                .and_then(toml::Value::as_table_mut)
                .ok_or_else(unknown)?;
            let mut path = rest.split("__").peekable();
            loop {
                let key = path.next().ok_or_else(unknown)?;
                let value = table.get_mut(key).ok_or_else(unknown)?;
                if path.peek().is_none() {
                    if value.is_table() {
                        return Err(unknown());
                    }
                    break value;
                }
                table = value.as_table_mut().ok_or_else(unknown)?;
            }
        }
        None => match root.get_mut(&lower) {
            Some(v) if !v.is_table() => v,
            _ => return Ok(false),
        },
    };
    *slot = typed_env_value(slot, value).map_err(|message| ConfigError::Parse {
        origin: format!("environment variable {var}"),
        message,
    })?;
    Ok(true)
}

/// Convert an environment string to the TOML type of the key it replaces.
fn typed_env_value(current: &toml::Value, raw: &str) -> Result<toml::Value, String> {
    match current {
        toml::Value::Integer(_) => raw
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("expected an integer, got `{raw}`")),
        toml::Value::Boolean(_) => match raw.trim() {
            "true" | "1" => Ok(toml::Value::Boolean(true)),
            "false" | "0" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("expected true or false, got `{raw}`")),
        },
        toml::Value::Array(_) => {
            // Either TOML array syntax, or a comma-separated list of strings.
            let trimmed = raw.trim();
            if trimmed.starts_with('[') {
                let doc: BTreeMap<String, toml::Value> = toml::from_str(&format!("v = {trimmed}"))
                    .map_err(|e| format!("expected a TOML array: {e}"))?;
                doc.get("v")
                    .cloned()
                    .ok_or_else(|| "expected a TOML array".to_owned())
            } else {
                Ok(toml::Value::Array(
                    trimmed
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.to_owned()))
                        .collect(),
                ))
            }
        }
        _ => Ok(toml::Value::String(raw.to_owned())),
    }
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// Check every value; in production also that the CA files exist.
pub fn validate(config: Config, source: Source) -> Result<ValidConfig, ConfigError> {
    let bind: SocketAddr = config.server.bind.parse().map_err(|_| {
        invalid(
            "server.bind",
            format!(
                "`{}` is not an address:port such as 127.0.0.1:8080",
                config.server.bind
            ),
        )
    })?;
    let public_url = check_public_url(&config.server.public_url)?;
    let database = DatabaseUrl::parse(&config.database.url)
        .map_err(|message| invalid("database.url", message))?;
    if !(1..=512).contains(&config.database.pool_size) {
        return Err(invalid(
            "database.pool_size",
            format!(
                "must be between 1 and 512, got {}",
                config.database.pool_size
            ),
        ));
    }
    if !(100..=600_000).contains(&config.database.pool_timeout_ms) {
        return Err(invalid(
            "database.pool_timeout_ms",
            "must be between 100 and 600000 milliseconds",
        ));
    }
    if !(2..=600).contains(&config.database.connect_timeout_secs) {
        return Err(invalid(
            "database.connect_timeout_secs",
            "must be between 2 and 600 seconds (libpq waits at least 2)",
        ));
    }
    if config.database.request_timeout_ms < config.database.pool_timeout_ms
        || config.database.request_timeout_ms > 3_600_000
    {
        return Err(invalid(
            "database.request_timeout_ms",
            "must be at least database.pool_timeout_ms and at most 3600000",
        ));
    }
    if config.server.workers > 1024 {
        return Err(invalid("server.workers", "must be at most 1024"));
    }
    if !(100..=600_000).contains(&config.server.body_timeout_ms) {
        return Err(invalid(
            "server.body_timeout_ms",
            "must be between 100 and 600000 milliseconds",
        ));
    }
    check_issuer_id(&config.ca.issuer_id)?;
    check_key_config("ca.issuing_key", &config.ca.issuing_key)?;
    check_key_config("ca.ocsp_key", &config.ca.ocsp_key)?;
    if !(1..=3650).contains(&config.ca.ocsp_validity_days) {
        return Err(invalid(
            "ca.ocsp_validity_days",
            "must be between 1 and 3650 days",
        ));
    }
    let cps_url = if config.ca.cps_url.is_empty() {
        format!("{public_url}/cps")
    } else {
        check_url("ca.cps_url", &config.ca.cps_url)?
    };
    if config.ra.agreement_version.trim().is_empty() || config.ra.agreement_version.len() > 64 {
        return Err(invalid("ra.agreement_version", "must be 1-64 characters"));
    }
    check_spans(&config)?;
    if config.crl.validity.0 < config.crl.full_interval.0 {
        return Err(invalid(
            "crl.validity",
            "must be at least crl.full_interval, or relying parties hold an expired CRL",
        ));
    }
    if config.crl.delta_validity.0 < config.crl.delta_interval.0 {
        return Err(invalid(
            "crl.delta_validity",
            "must be at least crl.delta_interval",
        ));
    }
    if config.ocsp.max_inflight_signing == 0 || config.ocsp.cache_capacity == 0 {
        return Err(invalid(
            "ocsp",
            "max_inflight_signing and cache_capacity must be at least 1",
        ));
    }
    if config.ocsp.renew_before.0.as_secs() >= u64::from(config.ca.ocsp_validity_days) * 86_400 {
        return Err(invalid(
            "ocsp.renew_before",
            "must be shorter than ca.ocsp_validity_days, or the responder is renewed forever",
        ));
    }
    crate::notify::check_config(&config.notify).map_err(|message| invalid("notify", message))?;
    if config.digital_id.issuer.trim().is_empty() {
        return Err(invalid("digital_id.issuer", "must not be empty"));
    }
    if config.digital_id.audience.trim().is_empty() {
        return Err(invalid("digital_id.audience", "must not be empty"));
    }
    // The same loading and acceptance check as `serve`: a key config check passes, serve takes.
    crate::digital_id::TrustedKeys::load(
        &config.digital_id.keys,
        &[],
        &config.digital_id.issuer,
        &config.digital_id.audience,
    )
    .map_err(|e| invalid("digital_id.keys", e.to_string()))?;
    check_tls(&config.server.tls)?;
    let trusted_proxies = check_limits(&config.limits)?;
    tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .map_err(|e| invalid("log.level", format!("`{}`: {e}", config.log.level)))?;
    crate::ca::check_hierarchy_files(&config.ca, config.mode).map_err(|message| {
        ConfigError::MissingFile {
            key: "ca.dir",
            message,
        }
    })?;
    Ok(ValidConfig {
        config,
        source,
        database,
        bind,
        public_url,
        cps_url,
        trusted_proxies,
    })
}

/// `[server.tls]`: both files or neither; the files readable, the key matching the
/// certificate, the client CA bundle parsing.
fn check_tls(tls: &TlsConfig) -> Result<(), ConfigError> {
    let key_set = !tls.key.as_os_str().is_empty();
    if !tls.enabled() {
        if key_set {
            return Err(invalid(
                "server.tls.cert",
                "is empty but server.tls.key is set",
            ));
        }
        if tls.client_auth() {
            return Err(invalid(
                "server.tls.client_ca",
                "needs server.tls.cert and server.tls.key: client certificates exist only over TLS",
            ));
        }
        return Ok(());
    }
    if !key_set {
        return Err(invalid(
            "server.tls.key",
            "is empty but server.tls.cert is set",
        ));
    }
    crate::api::tls::TlsFiles::load(tls)
        .map(|_| ())
        .map_err(|e| match e.key() {
            "server.tls.cert" => tls_invalid("server.tls.cert", e),
            "server.tls.key" => tls_invalid("server.tls.key", e),
            _ => tls_invalid("server.tls.client_ca", e),
        })
}

fn tls_invalid(key: &'static str, e: crate::api::tls::TlsError) -> ConfigError {
    if e.is_unreadable() {
        ConfigError::MissingFile {
            key,
            message: e.to_string(),
        }
    } else {
        invalid(key, e.to_string())
    }
}

/// `[limits]`: a burst for a rate, and proxy addresses that parse.
fn check_limits(limits: &LimitsConfig) -> Result<Vec<std::net::IpAddr>, ConfigError> {
    if limits.client_requests_per_second > 0 && limits.client_burst == 0 {
        return Err(invalid(
            "limits.client_burst",
            "must be at least 1 while limits.client_requests_per_second is set",
        ));
    }
    limits
        .trusted_proxies
        .iter()
        .map(|raw| {
            raw.trim().parse().map_err(|_| {
                invalid(
                    "limits.trusted_proxies",
                    format!("`{raw}` is not an IP address"),
                )
            })
        })
        .collect()
}

fn check_public_url(raw: &str) -> Result<String, ConfigError> {
    check_url("server.public_url", raw)
}

/// Longest `server.public_url` or `ca.cps_url`: the URLs written into every certificate
/// (AIA, CRL distribution points, CPS) are this plus a short path, as IA5Strings.
const URL_MAX_LEN: usize = 200;

/// Whether `raw` is made only of characters a URI may contain (RFC 3986: unreserved,
/// reserved and `%` followed by two hex digits): no space, quote, angle bracket, backslash
/// or control character, which the URL parser would silently drop or escape.
fn uri_characters_only(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| match b {
        b'%' => {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            hex(i + 1) && hex(i + 2)
        }
        _ => b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&b),
    })
}

/// An absolute http(s) URL with a host, without credentials, query or fragment, of at most
/// [`URL_MAX_LEN`] bytes of URI characters; returned without a trailing slash.
fn check_url(key: &'static str, raw: &str) -> Result<String, ConfigError> {
    if raw.len() > URL_MAX_LEN {
        return Err(invalid(
            key,
            format!(
                "is {} bytes long; at most {URL_MAX_LEN} are accepted",
                raw.len()
            ),
        ));
    }
    if !uri_characters_only(raw) {
        return Err(invalid(
            key,
            format!(
                "{:?} contains a character a URL may not hold (space, quote, control \
                 character, non-ASCII or a `%` not followed by two hex digits)",
                raw
            ),
        ));
    }
    let url =
        url::Url::parse(raw).map_err(|e| invalid(key, format!("invalid URL `{raw}`: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid(
            key,
            format!("`{raw}` must use http or https, not {}", url.scheme()),
        ));
    }
    if url.host().is_none() {
        return Err(invalid(key, format!("`{raw}` has no host")));
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(invalid(
            key,
            format!("`{raw}` must not carry credentials, a query or a fragment"),
        ));
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

fn check_key_config(key: &'static str, k: &KeyConfig) -> Result<(), ConfigError> {
    match k.kind {
        KeyKind::File => {
            if *k != (KeyConfig::default()) {
                return Err(invalid(
                    key,
                    "module, token_label, key_label, pin_env and pin_file apply only to kind = \"pkcs11\"",
                ));
            }
        }
        KeyKind::Pkcs11 => {
            if k.module.as_os_str().is_empty() {
                return Err(invalid(
                    key,
                    "kind = \"pkcs11\" needs `module`, the path of the PKCS#11 library",
                ));
            }
            if !k.module.is_file() {
                return Err(invalid(
                    key,
                    format!("PKCS#11 module {} does not exist", k.module.display()),
                ));
            }
            if k.token_label.is_empty() || k.token_label.len() > 32 {
                return Err(invalid(key, "token_label must be 1-32 characters"));
            }
            if k.key_label.is_empty() {
                return Err(invalid(key, "key_label must not be empty"));
            }
            match (k.pin_env.is_empty(), k.pin_file.as_os_str().is_empty()) {
                (false, true) | (true, false) => {}
                _ => {
                    return Err(invalid(
                        key,
                        "set exactly one of pin_env (an environment variable) and pin_file",
                    ))
                }
            }
        }
    }
    Ok(())
}

fn check_issuer_id(id: &str) -> Result<(), ConfigError> {
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if id.is_empty() || id.len() > 64 || !ok_chars {
        return Err(invalid(
            "ca.issuer_id",
            format!("`{id}` must be 1-64 characters of a-z, 0-9, `_` and `-`"),
        ));
    }
    if id == "root" || id.ends_with("-delta") {
        return Err(invalid(
            "ca.issuer_id",
            format!("`{id}` is reserved (it would clash with /ca/root.crt or delta CRL URLs)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn empty_file_gives_the_embedded_defaults() -> Result<(), ConfigError> {
        let c = parse_with_env("", "test", env(&[]))?;
        assert_eq!(c.mode, Mode::Dev);
        assert_eq!(c.server.bind, "127.0.0.1:8080");
        assert_eq!(c.database.url, "sqlite://data/tamga.db");
        assert_eq!(c.ca.issuer_id, "nca_rsa_dev");
        Ok(())
    }

    #[test]
    fn committed_config_file_equals_the_embedded_defaults() -> Result<(), ConfigError> {
        let text = include_str!("../config/tamga.toml");
        let from_file = parse_with_env(text, "config/tamga.toml", env(&[]))?;
        let defaults = Config::default();
        assert_eq!(
            toml::to_string(&from_file).ok(),
            toml::to_string(&defaults).ok()
        );
        Ok(())
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse_with_env("[server]\nbnd = \"x\"\n", "f.toml", env(&[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("bnd"), "{err}");
        assert!(err.contains("f.toml"), "{err}");
        let err = parse_with_env("colour = 1\n", "f.toml", env(&[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn environment_overrides_sections_and_top_level() -> Result<(), ConfigError> {
        let c = parse_with_env(
            "",
            "test",
            env(&[
                ("TAMGA_SERVER__BIND", "0.0.0.0:9000"),
                ("TAMGA_DATABASE__POOL_SIZE", "3"),
                ("TAMGA_MODE", "production"),
                ("TAMGA_DIGITAL_ID__KEYS", "a.pem, b.pem"),
                ("TAMGA_CONFIG", "ignored.toml"),
                ("HOME", "/root"),
            ]),
        )?;
        assert_eq!(c.server.bind, "0.0.0.0:9000");
        assert_eq!(c.database.pool_size, 3);
        assert_eq!(c.mode, Mode::Production);
        assert_eq!(
            c.digital_id.keys,
            vec![PathBuf::from("a.pem"), PathBuf::from("b.pem")]
        );
        Ok(())
    }

    #[test]
    fn environment_override_of_unknown_key_is_an_error() {
        let r = parse_with_env("", "test", env(&[("TAMGA_SERVER__BINDD", "x")]));
        assert!(
            matches!(r, Err(ConfigError::UnknownEnvKey { ref key, .. }) if key == "server.bindd")
        );
        let r = parse_with_env("", "test", env(&[("TAMGA_NOSUCH__KEY", "x")]));
        assert!(matches!(r, Err(ConfigError::UnknownEnvKey { .. })));
        let r = parse_with_env("", "test", env(&[("TAMGA_DATABASE__POOL_SIZE", "many")]));
        assert!(matches!(r, Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn environment_reaches_nested_tables() -> Result<(), ConfigError> {
        let c = parse_with_env(
            "",
            "test",
            env(&[
                ("TAMGA_SERVER__TLS__CERT", "/etc/tamga/server.pem"),
                ("TAMGA_LIMITS__TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2"),
            ]),
        )?;
        assert_eq!(c.server.tls.cert, PathBuf::from("/etc/tamga/server.pem"));
        assert!(c.server.tls.enabled() && !c.server.tls.client_auth());
        assert_eq!(c.limits.trusted_proxies, vec!["10.0.0.1", "10.0.0.2"]);
        for bad in [
            "TAMGA_SERVER__TLS",
            "TAMGA_SERVER__TLS__CERTS",
            "TAMGA_SERVER__TLS__CERT__X",
        ] {
            assert!(
                matches!(
                    parse_with_env("", "test", env(&[(bad, "x")])),
                    Err(ConfigError::UnknownEnvKey { .. })
                ),
                "{bad}"
            );
        }
        Ok(())
    }

    fn validated(toml: &str) -> Result<ValidConfig, ConfigError> {
        let mut c = parse_with_env(toml, "test", env(&[]))?;
        c.ca.dir = PathBuf::from("/nonexistent/tamga-test-ca");
        validate(c, Source::EmbeddedDefaults)
    }

    #[test]
    fn tls_and_limits_are_checked() {
        let message = |toml: &str| {
            validated(toml)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let m = message("[server.tls]\nkey = \"k.pem\"\n");
        assert!(m.starts_with("server.tls.cert: is empty"), "{m}");
        let m = message("[server.tls]\ncert = \"c.pem\"\n");
        assert!(m.starts_with("server.tls.key: is empty"), "{m}");
        let m = message("[server.tls]\nclient_ca = \"ca.pem\"\n");
        assert!(m.starts_with("server.tls.client_ca: needs"), "{m}");
        let m = message("[server.tls]\ncert = \"/nonexistent/c.pem\"\nkey = \"k.pem\"\n");
        assert!(
            m.starts_with("server.tls.cert: cannot read /nonexistent/c.pem"),
            "{m}"
        );
        let m = message("[limits]\nclient_burst = 0\n");
        assert!(m.starts_with("limits.client_burst"), "{m}");
        let m = message("[limits]\ntrusted_proxies = [\"proxy.local\"]\n");
        assert!(m.contains("`proxy.local` is not an IP address"), "{m}");
        assert!(validated("[limits]\nclient_requests_per_second = 0\nclient_burst = 0\n").is_ok());
        let ok = validated("[limits]\ntrusted_proxies = [\"10.0.0.1\", \"::1\"]\n");
        assert_eq!(ok.map(|c| c.trusted_proxies().len()).ok(), Some(2));
        for bad in [0, 99, 600_001] {
            let m = message(&format!("[server]\nbody_timeout_ms = {bad}\n"));
            assert!(m.starts_with("server.body_timeout_ms"), "{bad}: {m}");
        }
        assert!(validated("[server]\nbody_timeout_ms = 100\n").is_ok());
        assert!(validated("[limits]\nconnections_per_address = 0\n").is_ok());
    }

    #[test]
    fn database_urls() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/x.db"),
            Ok(DatabaseUrl::Sqlite(PathBuf::from("data/x.db")))
        );
        assert!(matches!(
            DatabaseUrl::parse("postgres://u:p@localhost/db"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
        let shown = DatabaseUrl::Postgres("postgres://u:secret@h/db".into()).redacted();
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn public_url_checks() {
        assert_eq!(
            check_public_url("https://pki.example.kz/").ok().as_deref(),
            Some("https://pki.example.kz")
        );
        assert!(check_public_url("htp:/x").is_err());
        assert!(check_public_url("not a url").is_err());
        assert!(check_public_url("ftp://x.kz").is_err());
        assert!(check_public_url("http://x.kz/?a=b").is_err());
    }

    #[test]
    fn public_url_holds_only_uri_characters_within_a_bound() {
        for bad in [
            "https://pki.example.kz/\"",
            "https://pki.example.kz/\n",
            "https://pki.example.kz\t",
            "https://pki.example.kz/a b",
            "https://pki.example.kz/<x>",
            "https://pki.example.kz/%4",
            "https://pki.example.kz/\u{202e}",
            "https://:secret@pki.example.kz",
        ] {
            assert!(check_public_url(bad).is_err(), "{bad:?}");
        }
        let long = format!("https://pki.example.kz/{}", "a".repeat(URL_MAX_LEN));
        let m = check_public_url(&long)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(m.contains("at most 200") && m.len() < 200, "{m}");
        assert!(check_public_url("https://pki.example.kz/a%20b/~x").is_ok());
    }

    #[test]
    fn durations_never_wrap() {
        // 144115188075855874 d × 86400 s wraps to 2 days in 64-bit arithmetic.
        assert_eq!(Span::parse("144115188075855874d"), Ok(Span::OVERFLOW));
        assert_eq!(Span::parse("99999999999999999999999s"), Ok(Span::OVERFLOW));
        assert_eq!(Span::OVERFLOW.chrono(), chrono::Duration::MAX);
        assert!(Span::parse("0s").is_err() && Span::parse("5w").is_err());
        assert!(Span::parse("-1d").is_err() && Span::parse("d").is_err());
        let m = validated("[ocsp]\nvalidity = \"144115188075855874d\"\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(m.starts_with("ocsp.validity: must be at most 31d"), "{m}");
        let m = validated("[crl]\nroot_validity = \"367d\"\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(m, "crl.root_validity: must be at most 366d, got 367d");
    }

    #[test]
    fn only_tamga_variables_are_read_and_must_be_utf8() {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt;
        let bytes = |b: &[u8]| OsString::from_vec(b.to_vec());
        let vars = vec![
            (bytes(b"OTHER"), bytes(b"\xff")),
            (bytes(b"\xffNAME"), bytes(b"x")),
            (bytes(b"TAMGA_CONFIG"), bytes(b"conf-\xff.toml")),
            (bytes(b"TAMGA_MODE"), bytes(b"dev")),
        ];
        assert_eq!(
            tamga_variables(vars).ok(),
            Some(vec![("TAMGA_MODE".to_owned(), "dev".to_owned())])
        );
        let vars = vec![(
            bytes(b"TAMGA_DATABASE__URL"),
            bytes(b"postgres://u:p\xff@h/db"),
        )];
        let m = tamga_variables(vars)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            m,
            "environment variable TAMGA_DATABASE__URL: the value is not UTF-8"
        );
    }

    #[test]
    fn issuer_id_checks() {
        assert!(check_issuer_id("nca_rsa_dev").is_ok());
        assert!(check_issuer_id("root").is_err());
        assert!(check_issuer_id("NCA").is_err());
        assert!(check_issuer_id("a/b").is_err());
        assert!(check_issuer_id("").is_err());
    }
}
