//! The pure checks of every value: nothing here opens a file, a key, a token or a
//! connection (those checks run next to the commands that need them, in `cli`).

use std::net::SocketAddr;

use crate::vocab::KeyType;

use super::*;

/// Every duration key with its value and the longest value it accepts. Every bound is far
/// inside what chrono and the ASN.1 time encoders take; each is what the key's purpose can
/// sensibly need (a CRL or an OCSP answer valid for years could never be withdrawn).
pub(super) fn spans(config: &Config) -> [(&'static str, Span, u64); 11] {
    const DAY: u64 = 86_400;
    [
        ("crl.full_interval", config.crl.full_interval, 366 * DAY),
        ("crl.delta_interval", config.crl.delta_interval, 31 * DAY),
        ("crl.validity", config.crl.validity, 366 * DAY),
        ("crl.delta_validity", config.crl.delta_validity, 31 * DAY),
        ("crl.root_validity", config.crl.root_validity, 366 * DAY),
        ("ocsp.validity", config.ocsp.validity, 31 * DAY),
        ("ocsp.unknown_validity", config.ocsp.unknown_validity, DAY),
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
pub(super) fn check_spans(config: &Config) -> Result<(), ConfigError> {
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

pub(super) fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// Check every value, without opening anything: the files, keys, tokens and mail settings the
/// values name are checked by the commands that use them (`tamga config check` and `serve`).
pub fn validate(mut config: Config, source: Source) -> Result<ValidConfig, ConfigError> {
    if config.ca.issuers.is_none() {
        config.ca.issuers = Some(CaConfig::default_issuers(config.mode));
    }
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
    check_key_config("ca.root_key", &config.ca.root_key)?;
    check_key_types(
        ("ca.issuing_key_type", config.ca.issuing_key_type),
        ("ca.ocsp_key_type", config.ca.ocsp_key_type),
        &config.ca.issuing_key,
        &config.ca.ocsp_key,
    )?;
    if !(1..=3650).contains(&config.ca.ocsp_validity_days) {
        return Err(invalid(
            "ca.ocsp_validity_days",
            "must be between 1 and 3650 days",
        ));
    }
    check_issuers(&config.ca, &config.ocsp)?;
    let cps_url = if config.ca.cps_url.is_empty() {
        format!("{public_url}/cps")
    } else {
        check_url("ca.cps_url", &config.ca.cps_url)?
    };
    if config.ra.agreement_version.trim().is_empty() || config.ra.agreement_version.len() > 64 {
        return Err(invalid("ra.agreement_version", "must be 1-64 characters"));
    }
    check_pages(&config.pages)?;
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
    if config.digital_id.issuer.trim().is_empty() {
        return Err(invalid("digital_id.issuer", "must not be empty"));
    }
    if config.digital_id.audience.trim().is_empty() {
        return Err(invalid("digital_id.audience", "must not be empty"));
    }
    check_tls(&config.server.tls)?;
    let trusted_proxies = check_limits(&config.limits)?;
    tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .map_err(|e| invalid("log.level", format!("`{}`: {e}", config.log.level)))?;
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

/// `[server.tls]`: both files or neither, and client certificates only over TLS (whether the
/// files can be read and match is checked where they are loaded).
pub(super) fn check_tls(tls: &TlsConfig) -> Result<(), ConfigError> {
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
    Ok(())
}

/// `[limits]`: a burst for a rate, and proxy addresses that parse.
pub(super) fn check_limits(limits: &LimitsConfig) -> Result<Vec<std::net::IpAddr>, ConfigError> {
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

/// The forgotten port: `public_url` names this machine (a loopback address or `localhost`) on
/// a port other than the one `server.bind` listens on — usually `server.bind` changed and
/// `public_url` kept the old port, so the URLs written into certificates reach nothing. A
/// `public_url` on another host is normal (a proxy or CDN in front) and gives no warning.
pub(super) fn forgotten_port(public_url: &str, bind: SocketAddr) -> Option<String> {
    let url = url::Url::parse(public_url).ok()?;
    let loopback = match url.host()? {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(name) => {
            let name = name.strip_suffix('.').unwrap_or(name);
            name.eq_ignore_ascii_case("localhost")
        }
    };
    let port = url.port_or_known_default()?;
    (loopback && bind.port() != 0 && port != bind.port()).then(|| {
        format!(
            "server.public_url {public_url} names this machine on port {port}, but server.bind \
             listens on port {}: the OCSP, CRL and CA URLs written into certificates will not \
             answer (set public_url to the port clients reach)",
            bind.port()
        )
    })
}

pub(super) fn check_public_url(raw: &str) -> Result<String, ConfigError> {
    check_url("server.public_url", raw)
}

/// Longest `server.public_url` or `ca.cps_url`: the URLs written into every certificate
/// (AIA, CRL distribution points, CPS) are this plus a short path, as IA5Strings.
pub(super) const URL_MAX_LEN: usize = 200;

/// Whether `raw` is made only of characters a URI may contain (RFC 3986: unreserved,
/// reserved and `%` followed by two hex digits): no space, quote, angle bracket, backslash
/// or control character, which the URL parser would silently drop or escape.
pub(super) fn uri_characters_only(raw: &str) -> bool {
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
/// `[pages]`: a usable agent port, and a "back to Digital ID" link that is an http(s) URL or
/// a path on this server (it is written into the pages' `href`).
fn check_pages(pages: &super::PagesConfig) -> Result<(), ConfigError> {
    if pages.agent_port < 1024 {
        return Err(invalid(
            "pages.agent_port",
            "must be between 1024 and 65535 (the agent runs as the citizen, not as root)",
        ));
    }
    let url = &pages.digital_id_url;
    if url.starts_with('/') && !url.starts_with("//") {
        if url.len() > URL_MAX_LEN || !uri_characters_only(url) {
            return Err(invalid(
                "pages.digital_id_url",
                "a path must be at most 200 characters a URL may hold",
            ));
        }
        return Ok(());
    }
    check_url("pages.digital_id_url", url).map(|_| ())
}

pub(super) fn check_url(key: &'static str, raw: &str) -> Result<String, ConfigError> {
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

/// The key types of one issuing CA and its OCSP responder: a GOST (`gost2015-512`) key lives
/// in a file (no PKCS#11 token here has GOST R 34.10-2012-512 mechanisms), and a GOST issuing
/// CA has a GOST responder, an RSA or EC one an RSA or EC responder (a responder's
/// certificate is built in its issuing CA's form).
pub(super) fn check_key_types(
    (issuing_name, issuing): (&'static str, KeyType),
    (ocsp_name, ocsp): (&'static str, KeyType),
    issuing_key: &KeyConfig,
    ocsp_key: &KeyConfig,
) -> Result<(), ConfigError> {
    for (name, key_type, config) in [
        (issuing_name, issuing, issuing_key),
        (ocsp_name, ocsp, ocsp_key),
    ] {
        if key_type.is_gost() && config.kind == KeyKind::Pkcs11 {
            return Err(invalid(
                name,
                format!(
                    "a {key_type} key lives in a file: PKCS#11 tokens (SoftHSM2 included) have \
                     no GOST R 34.10-2012-512 mechanisms"
                ),
            ));
        }
    }
    if issuing.is_gost() != ocsp.is_gost() {
        return Err(invalid(
            ocsp_name,
            format!(
                "a {issuing} issuing CA needs {} OCSP responder key (this one: {ocsp})",
                if issuing.is_gost() {
                    "a GOST (gost2015-512)"
                } else {
                    "an RSA or EC"
                }
            ),
        ));
    }
    Ok(())
}

pub(super) fn check_key_config(key: &'static str, k: &KeyConfig) -> Result<(), ConfigError> {
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

pub(super) fn check_issuer_id(id: &str) -> Result<(), ConfigError> {
    url_safe_id(id).map_err(|message| invalid("ca.issuer_id", message))?;
    if id == FIRST_ROOT_ID {
        return Err(invalid(
            "ca.issuer_id",
            format!("`{id}` is reserved (it would clash with /ca/root.crt)"),
        ));
    }
    Ok(())
}

/// An id that names files in `[ca] dir` and URLs (`/ca/<id>.crt`, `/crl/<id>.crl`): 1-64
/// characters of a-z, 0-9, `_` and `-`, not ending in `-delta` (a delta CRL's URL).
fn url_safe_id(id: &str) -> Result<(), String> {
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if id.is_empty() || id.len() > 64 || !ok_chars {
        return Err(format!(
            "`{id}` must be 1-64 characters of a-z, 0-9, `_` and `-`"
        ));
    }
    if id.ends_with("-delta") {
        return Err(format!(
            "`{id}` is reserved (it would clash with delta CRL URLs)"
        ));
    }
    Ok(())
}

/// The message of an `Invalid` error, without its key.
fn message_of(e: ConfigError) -> String {
    match e {
        ConfigError::Invalid { message, .. } => message,
        other => other.to_string(),
    }
}

/// `[[ca.issuers]]`: every id URL-safe and unique among the issuers and the roots (they share
/// `/ca/…` and `/crl/…`, and the files of `[ca] dir`); every root id URL-safe and never an
/// issuer's id; issuers under one root agree on where its key lives; each entry's keys and
/// responder validity checked as `[ca]`'s are.
pub(super) fn check_issuers(ca: &CaConfig, ocsp: &OcspConfig) -> Result<(), ConfigError> {
    let key = "ca.issuers";
    let mut issuer_ids = vec![ca.issuer_id.as_str()];
    let mut roots: Vec<(&str, &KeyConfig)> = vec![(FIRST_ROOT_ID, &ca.root_key)];
    for (n, entry) in ca.further_issuers().iter().enumerate() {
        let at = |message: String| {
            let name = if entry.id.is_empty() {
                format!("entry {}", n + 1)
            } else {
                format!("entry {} (`{}`)", n + 1, entry.id)
            };
            invalid(key, format!("{name}: {message}"))
        };
        if entry.id.is_empty() {
            return Err(at("`id` is missing".to_owned()));
        }
        url_safe_id(&entry.id).map_err(|m| at(format!("id {m}")))?;
        if entry.root_id.is_empty() {
            return Err(at(
                "`root_id` is missing (`root` for the root of [ca], or a root of its own)"
                    .to_owned(),
            ));
        }
        url_safe_id(&entry.root_id).map_err(|m| at(format!("root_id {m}")))?;
        if issuer_ids.contains(&entry.id.as_str()) {
            return Err(at(format!("the issuer id `{}` is used twice", entry.id)));
        }
        issuer_ids.push(&entry.id);
        check_key_config(key, &entry.issuing_key)
            .map_err(|e| at(format!("issuing_key: {}", message_of(e))))?;
        check_key_config(key, &entry.ocsp_key)
            .map_err(|e| at(format!("ocsp_key: {}", message_of(e))))?;
        check_key_config(key, &entry.root_key)
            .map_err(|e| at(format!("root_key: {}", message_of(e))))?;
        check_key_types(
            ("issuing_key_type", entry.issuing_key_type),
            ("ocsp_key_type", entry.ocsp_key_type),
            &entry.issuing_key,
            &entry.ocsp_key,
        )
        .map_err(|e| at(message_of(e)))?;
        match roots.iter().find(|(id, _)| *id == entry.root_id) {
            Some((_, k)) if **k != entry.root_key => {
                return Err(at(format!(
                    "root_key differs from the root_key of another issuer under the root `{}`",
                    entry.root_id
                )))
            }
            Some(_) => {}
            None => roots.push((&entry.root_id, &entry.root_key)),
        }
        if !(1..=3650).contains(&entry.ocsp_validity_days) {
            return Err(at(
                "ocsp_validity_days must be between 1 and 3650 days".to_owned()
            ));
        }
        if ocsp.renew_before.0.as_secs() >= u64::from(entry.ocsp_validity_days) * 86_400 {
            return Err(at(
                "ocsp.renew_before must be shorter than its ocsp_validity_days, or the responder is renewed forever"
                    .to_owned(),
            ));
        }
    }
    // The AUTH certificate is RSA or EC (NCA's AUTH keys are RSA): some issuer must be.
    if ca.issuing_key_type.is_gost()
        && ca
            .further_issuers()
            .iter()
            .all(|entry| entry.issuing_key_type.is_gost())
    {
        return Err(invalid(
            key,
            "every issuing CA is GOST: the AUTH certificate needs an RSA or EC one ([ca] or an \
             entry of [[ca.issuers]])"
                .to_owned(),
        ));
    }
    if let Some((root, _)) = roots.iter().find(|(r, _)| issuer_ids.contains(r)) {
        return Err(invalid(
            key,
            format!("`{root}` is both a root id and an issuer id: they share /ca/ and /crl/ URLs"),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod forgotten_port_tests {
    use super::forgotten_port;

    fn bind(s: &str) -> std::net::SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_loopback_public_url_on_another_port_is_warned() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3:8080",
            "http://localhost:8080",
            "http://LocalHost.:8080",
            "http://[::1]:8080",
            // No port: the scheme's.
            "http://localhost",
            "https://127.0.0.1",
        ] {
            let warning = forgotten_port(url, bind("0.0.0.0:9090"));
            let warning = warning.unwrap_or_else(|| panic!("no warning for {url}"));
            assert!(warning.contains("9090"), "{warning}");
        }
    }

    #[test]
    fn the_same_port_or_another_host_is_not_warned() {
        for (url, listen) in [
            ("http://127.0.0.1:9090", "127.0.0.1:9090"),
            ("http://localhost:9090", "0.0.0.0:9090"),
            ("http://[::1]:9090", "[::]:9090"),
            ("http://localhost", "127.0.0.1:80"),
            // A proxy or CDN in front: its port is its own.
            ("https://pki.example.kz", "127.0.0.1:9090"),
            ("http://pki.example.kz:8443", "0.0.0.0:9090"),
            ("http://10.0.0.5:8080", "0.0.0.0:9090"),
            ("http://localhost.example.kz:8080", "0.0.0.0:9090"),
        ] {
            assert_eq!(
                forgotten_port(url, bind(listen)),
                None,
                "{url} with {listen}"
            );
        }
    }
}
