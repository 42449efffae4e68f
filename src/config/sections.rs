//! The component sections of the configuration (`[server]`, `[database]`, `[ca]`, …) with
//! their documented defaults, and [`Span`], the duration syntax they share.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::vocab::KeyType;

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
    /// Where the root's private key lives, on the offline root machine only (`tamga root
    /// …`): `root.key.pem` in `dir`, or a token object. The online server has no root key.
    pub root_key: KeyConfig,
    /// `[[ca.issuers]]`: further issuing CAs this instance operates beside the one the fields
    /// above describe (which is always the first, under the root `root`). Which of them
    /// certifies a key follows from the key's type (see `ca::Issuers::for_subject_key`).
    /// Absent from the file: the mode's default, filled in by `config::validate`
    /// ([`CaConfig::default_issuers`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuers: Option<Vec<IssuerConfig>>,
    /// The id of the root this `[ca]` chains to: `root` for `[ca]` itself; another root's id
    /// in the view [`CaConfig::per_issuer`] gives of an entry of `issuers`. Not a key of the
    /// file.
    #[serde(skip)]
    pub root_id: String,
}

/// The root id of `[ca]`'s own issuer: its files are `root.pem`/`root.key.pem`, its
/// certificate `/ca/root.crt` and its CRL `/crl/root.crl`.
pub const FIRST_ROOT_ID: &str = "root";

/// `[[ca.issuers]]`: one further issuing CA, with the same settings `[ca]` has for its own
/// (`dir` and `cps_url` are shared). Its files in `[ca] dir` are `<root_id>.pem` (and
/// `<root_id>.key.pem` where the root key is here), `<id>.pem`, `<id>.key.pem`,
/// `ocsp_<id>.pem` and `ocsp_<id>.key.pem`; its URLs `/ca/<id>.crt`, `/crl/<id>.crl`,
/// `/crl/<id>-delta.crl`, and for its root `/ca/<root_id>.crt` and `/crl/<root_id>.crl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IssuerConfig {
    /// Short id of the issuing CA, used in every URL that names it (unique among issuers and
    /// roots).
    pub id: String,
    /// Id of the root it chains to: `root` (the root of `[ca]`) or a root of its own.
    pub root_id: String,
    /// Key type of a newly generated issuing CA.
    pub issuing_key_type: KeyType,
    /// Key type of a newly generated OCSP responder.
    pub ocsp_key_type: KeyType,
    /// Validity of the delegated OCSP responder certificate, in days.
    pub ocsp_validity_days: u32,
    /// Where the issuing CA's private key lives.
    pub issuing_key: KeyConfig,
    /// Where the OCSP responder's private key lives.
    pub ocsp_key: KeyConfig,
    /// Where the root's private key lives (development and the offline root machine only).
    pub root_key: KeyConfig,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        IssuerConfig {
            id: String::new(),
            root_id: String::new(),
            issuing_key_type: KeyType::Rsa2048,
            ocsp_key_type: KeyType::EcP256,
            ocsp_validity_days: 30,
            issuing_key: KeyConfig::default(),
            ocsp_key: KeyConfig::default(),
            root_key: KeyConfig::default(),
        }
    }
}

impl CaConfig {
    /// Every issuing CA of this instance, each described as a `[ca]` of its own: the first is
    /// `[ca]` itself (root `root`), then each `[[ca.issuers]]` entry in order, with `[ca]`'s
    /// `dir` and `cps_url`. A view has no `issuers` of its own.
    pub fn per_issuer(&self) -> Vec<CaConfig> {
        let first = CaConfig {
            issuers: Some(Vec::new()),
            ..self.clone()
        };
        std::iter::once(first)
            .chain(self.further_issuers().iter().map(|i| CaConfig {
                dir: self.dir.clone(),
                issuer_id: i.id.clone(),
                issuing_key_type: i.issuing_key_type,
                ocsp_key_type: i.ocsp_key_type,
                ocsp_validity_days: i.ocsp_validity_days,
                cps_url: self.cps_url.clone(),
                issuing_key: i.issuing_key.clone(),
                ocsp_key: i.ocsp_key.clone(),
                root_key: i.root_key.clone(),
                issuers: Some(Vec::new()),
                root_id: i.root_id.clone(),
            }))
            .collect()
    }

    /// The `[[ca.issuers]]` entries (none while unset).
    pub fn further_issuers(&self) -> &[IssuerConfig] {
        self.issuers.as_deref().unwrap_or(&[])
    }

    /// The further issuers of a configuration whose file does not list any: in dev mode the
    /// development GOST issuing CA `nca_gost_dev` under the GOST root `root_gost` (GOST
    /// 2015-512 keys, in files), as NCA runs a GOST CA beside its RSA one; none in production.
    pub fn default_issuers(mode: super::Mode) -> Vec<IssuerConfig> {
        match mode {
            super::Mode::Dev => vec![IssuerConfig {
                id: "nca_gost_dev".to_owned(),
                root_id: "root_gost".to_owned(),
                issuing_key_type: KeyType::Gost2015_512,
                ocsp_key_type: KeyType::Gost2015_512,
                ..IssuerConfig::default()
            }],
            super::Mode::Production => Vec::new(),
        }
    }
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
            root_key: KeyConfig::default(),
            issuers: None,
            root_id: FIRST_ROOT_ID.to_owned(),
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
    /// Whether a re-issue from the cabinet also needs a Digital ID consent token with
    /// `purpose = eds_reissue` for the same IIN (header `Tamga-Consent`), besides the holder's
    /// signatures.
    pub reissue_requires_consent: bool,
}

impl Default for RaConfig {
    fn default() -> Self {
        RaConfig {
            agreement_version: "2026-1".to_owned(),
            reissue_requires_consent: false,
        }
    }
}

/// `[pages]`: the citizen's pages (`/enroll`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagesConfig {
    /// The loopback port where the pages look for the local signing agent
    /// (`tamga-enroll agent --port`).
    pub agent_port: u16,
    /// Where "back to Digital ID" goes: an absolute http(s) URL, or a path on this server.
    pub digital_id_url: String,
}

impl Default for PagesConfig {
    fn default() -> Self {
        PagesConfig {
            agent_port: 13580,
            digital_id_url: "/dev/digital-id".to_owned(),
        }
    }
}

/// A duration written as a number and a unit: `90s`, `15m`, `24h`, `7d`.
///
/// Parsing checks the syntax and computes the seconds with checked arithmetic: a number too
/// large for 64-bit seconds becomes [`Span::OVERFLOW`], never a wrapped small value, so that
/// [`super::validate`] refuses it against the key's own maximum and names the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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
    /// nextUpdate - thisUpdate of `good` and `revoked` responses; pre-signed responses are
    /// re-signed after half.
    pub validity: Span,
    /// nextUpdate - thisUpdate of `unknown` responses: short, since the serial may be issued
    /// a moment later (such answers are never kept in the response cache).
    pub unknown_validity: Span,
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
            unknown_validity: Span(std::time::Duration::from_secs(5 * 60)),
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
