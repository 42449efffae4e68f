use super::checks::*;
use super::load::*;
use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The embedded defaults under the environment `pairs`, with no file.
fn defaults_with_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    parse_with_env("", "test", env(pairs))
}

#[test]
fn empty_file_gives_the_embedded_defaults() -> Result<(), ConfigError> {
    let c = defaults_with_env(&[])?;
    assert_eq!(c.mode, Mode::Dev);
    assert_eq!(c.server.bind, "127.0.0.1:8080");
    assert_eq!(c.database.url, "sqlite://data/tamga.db");
    assert_eq!(c.ca.issuer_id, "nca_rsa_dev");
    Ok(())
}

#[test]
fn committed_config_file_equals_the_embedded_defaults() -> Result<(), ConfigError> {
    let text = include_str!("../../config/tamga.toml");
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
    let c = defaults_with_env(&[
        ("TAMGA_SERVER__BIND", "0.0.0.0:9000"),
        ("TAMGA_DATABASE__POOL_SIZE", "3"),
        ("TAMGA_MODE", "production"),
        ("TAMGA_DIGITAL_ID__KEYS", "a.pem, b.pem"),
        ("TAMGA_CONFIG", "ignored.toml"),
        ("HOME", "/root"),
    ])?;
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
    let r = defaults_with_env(&[("TAMGA_SERVER__BINDD", "x")]);
    assert!(matches!(r, Err(ConfigError::UnknownEnvKey { ref key, .. }) if key == "server.bindd"));
    let r = defaults_with_env(&[("TAMGA_NOSUCH__KEY", "x")]);
    assert!(matches!(r, Err(ConfigError::UnknownEnvKey { .. })));
    let r = defaults_with_env(&[("TAMGA_DATABASE__POOL_SIZE", "many")]);
    assert!(matches!(r, Err(ConfigError::Parse { .. })));
}

#[test]
fn environment_reaches_nested_tables() -> Result<(), ConfigError> {
    let c = defaults_with_env(&[
        ("TAMGA_SERVER__TLS__CERT", "/etc/tamga/server.pem"),
        ("TAMGA_LIMITS__TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2"),
    ])?;
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
                defaults_with_env(&[(bad, "x")]),
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
    // (Whether the files can be read is checked where they are opened: cli::preflight.)
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
fn pages_are_checked() {
    let message = |toml: &str| {
        validated(toml)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let defaults = validated("").ok().map(|c| {
        (
            c.get().pages.agent_port,
            c.get().pages.digital_id_url.clone(),
        )
    });
    assert_eq!(defaults, Some((13580, "/dev/digital-id".to_owned())));
    let m = message("[pages]\nagent_port = 80\n");
    assert!(m.starts_with("pages.agent_port"), "{m}");
    for bad in [
        "javascript:alert(1)",
        "//evil.example/x",
        "ftp://x",
        "/a b",
        "idp.example",
    ] {
        let m = message(&format!("[pages]\ndigital_id_url = \"{bad}\"\n"));
        assert!(m.starts_with("pages.digital_id_url"), "{bad}: {m}");
    }
    for good in ["/dev/digital-id", "https://idp.example/consent"] {
        assert!(
            validated(&format!("[pages]\ndigital_id_url = \"{good}\"\n")).is_ok(),
            "{good}"
        );
    }
    // In production the development stand-in is not served: its link is a warning there.
    let warned = |toml: &str| {
        validated(toml)
            .map(|c| {
                c.warnings()
                    .iter()
                    .any(|w| w.starts_with("pages.digital_id_url"))
            })
            .map_err(|e| e.to_string())
    };
    assert_eq!(warned(""), Ok(false));
    assert_eq!(warned("mode = \"production\"\n"), Ok(true));
    assert_eq!(
        warned(
            "mode = \"production\"\n[pages]\ndigital_id_url = \"https://idp.example/consent\"\n"
        ),
        Ok(false)
    );
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
fn unknown_answers_are_short_lived() {
    assert_eq!(
        validated("").ok().map(|c| c.get().ocsp.unknown_validity),
        Some(Span(std::time::Duration::from_secs(300)))
    );
    let m = validated("[ocsp]\nunknown_validity = \"2d\"\n")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(m, "ocsp.unknown_validity: must be at most 1d, got 2d");
    // A validity set shorter than the default unknown_validity is no contradiction: unknown
    // answers then get `validity` (ocsp::Responder::next_update takes the shorter).
    assert!(validated("[ocsp]\nvalidity = \"3s\"\n").is_ok());
    assert!(validated("[ocsp]\nunknown_validity = \"30s\"\n").is_ok());
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

#[test]
fn gost_ca_keys_live_in_files_and_come_with_a_gost_responder() {
    let message = |toml: &str| {
        validated(toml)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    // `[ca]` GOST, with an RSA issuer beside it for the AUTH certificates.
    let gost = "[ca]\nissuing_key_type = \"gost2015-512\"\nocsp_key_type = \"gost2015-512\"\n\
                [[ca.issuers]]\nid = \"rsa\"\nroot_id = \"root_rsa\"\n";
    assert!(validated(gost).is_ok(), "{}", message(gost));
    let m = message("[ca]\nissuing_key_type = \"gost2015-512\"\n");
    assert!(m.starts_with("ca.ocsp_key_type"), "{m}");
    assert!(m.contains("GOST"), "{m}");
    let m = message("[ca]\nocsp_key_type = \"gost2015-512\"\n");
    assert!(m.starts_with("ca.ocsp_key_type"), "{m}");
    // A token key (the module must be a file for the token settings to pass).
    let token = format!(
        "{gost}[ca.issuing_key]\nkind = \"pkcs11\"\nmodule = \"{}\"\ntoken_label = \"t\"\n\
         key_label = \"k\"\npin_env = \"PIN\"\n",
        std::env::current_exe().unwrap_or_default().display()
    );
    let m = message(&token);
    assert!(m.starts_with("ca.issuing_key_type"), "{m}");
    assert!(m.contains("PKCS#11"), "{m}");
}

#[test]
fn further_issuers_load_as_views_of_ca_and_are_checked() -> Result<(), ConfigError> {
    use crate::vocab::KeyType;
    let c = validated(
        "[ca]\nissuer_id = \"nca_rsa_dev\"\n\
         [[ca.issuers]]\nid = \"second\"\nroot_id = \"root_two\"\nissuing_key_type = \"ec-p384\"\n\
         [[ca.issuers]]\nid = \"third\"\nroot_id = \"root\"\nocsp_validity_days = 20\n",
    )?;
    let views = c.get().ca.per_issuer();
    let ids: Vec<(&str, &str)> = views
        .iter()
        .map(|v| (v.issuer_id.as_str(), v.root_id.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("nca_rsa_dev", "root"),
            ("second", "root_two"),
            ("third", "root")
        ]
    );
    assert!(views.iter().all(|v| v.further_issuers().is_empty()));
    assert!(views.iter().all(|v| v.dir == c.get().ca.dir));
    assert_eq!(
        views.get(1).map(|v| v.issuing_key_type),
        Some(KeyType::EcP384)
    );
    assert_eq!(views.get(2).map(|v| v.ocsp_validity_days), Some(20));

    // Today's files in production: one issuer, under `root`.
    let one = validated("mode = \"production\"\n")?;
    let views = one.get().ca.per_issuer();
    assert_eq!(views.len(), 1);
    assert_eq!(
        views.first().map(|v| v.root_id.as_str()),
        Some(FIRST_ROOT_ID)
    );
    // In dev mode, without [[ca.issuers]]: the development GOST issuer beside it.
    let dev = validated("")?;
    let views = dev.get().ca.per_issuer();
    let ids: Vec<(&str, &str, KeyType)> = views
        .iter()
        .map(|v| (v.issuer_id.as_str(), v.root_id.as_str(), v.issuing_key_type))
        .collect();
    assert_eq!(
        ids,
        [
            ("nca_rsa_dev", "root", KeyType::Rsa2048),
            ("nca_gost_dev", "root_gost", KeyType::Gost2015_512)
        ]
    );
    // An empty list says: no further issuer.
    let none = validated("[ca]\nissuers = []\n")?;
    assert_eq!(none.get().ca.per_issuer().len(), 1);

    let message = |toml: &str| {
        validated(toml)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    for (toml, expected) in [
        ("[[ca.issuers]]\nroot_id = \"r\"\n", "entry 1: `id` is missing"),
        ("[[ca.issuers]]\nid = \"x\"\n", "entry 1 (`x`): `root_id` is missing"),
        (
            "[[ca.issuers]]\nid = \"nca_rsa_dev\"\nroot_id = \"r\"\n",
            "the issuer id `nca_rsa_dev` is used twice",
        ),
        (
            "[[ca.issuers]]\nid = \"x\"\nroot_id = \"r\"\n[[ca.issuers]]\nid = \"x\"\nroot_id = \"r\"\n",
            "entry 2 (`x`): the issuer id `x` is used twice",
        ),
        ("[[ca.issuers]]\nid = \"x/y\"\nroot_id = \"r\"\n", "id `x/y` must be 1-64"),
        ("[[ca.issuers]]\nid = \"x-delta\"\nroot_id = \"r\"\n", "is reserved"),
        ("[[ca.issuers]]\nid = \"x\"\nroot_id = \"R\"\n", "root_id `R` must be 1-64"),
        (
            "[[ca.issuers]]\nid = \"x\"\nroot_id = \"nca_rsa_dev\"\n",
            "`nca_rsa_dev` is both a root id and an issuer id",
        ),
        (
            "[[ca.issuers]]\nid = \"x\"\nroot_id = \"root\"\n[ca.issuers.root_key]\nkind = \"pkcs11\"\n",
            "root_key",
        ),
        (
            "[[ca.issuers]]\nid = \"x\"\nroot_id = \"r\"\nocsp_validity_days = 0\n",
            "ocsp_validity_days must be between 1 and 3650 days",
        ),
        (
            "[[ca.issuers]]\nid = \"x\"\nroot_id = \"r\"\nocsp_validity_days = 5\n",
            "ocsp.renew_before must be shorter than its ocsp_validity_days",
        ),
        (
            "[[ca.issuers]]\nid = \"x\"\nroot_id = \"r\"\n[ca.issuers.issuing_key]\nmodule = \"/m.so\"\n",
            "issuing_key: module, token_label",
        ),
    ] {
        let m = message(toml);
        assert!(m.starts_with("ca.issuers: "), "{toml}: {m}");
        assert!(m.contains(expected), "{toml}: {m}");
    }
    Ok(())
}

#[test]
fn a_further_gost_issuer_keeps_its_keys_in_files_and_has_a_gost_responder() {
    let refused = |toml: &str| match validated(toml) {
        Err(ConfigError::Invalid { key, message }) => format!("{key}: {message}"),
        other => format!("accepted or refused otherwise: {other:?}"),
    };
    let token = refused(
        "[[ca.issuers]]\nid = \"g\"\nroot_id = \"root_g\"\nissuing_key_type = \"gost2015-512\"\n\
         ocsp_key_type = \"gost2015-512\"\n[ca.issuers.issuing_key]\nkind = \"pkcs11\"\n\
         module = \"/usr/lib/softhsm/libsofthsm2.so\"\ntoken_label = \"t\"\nkey_label = \"k\"\n\
         pin_env = \"PIN\"\n",
    );
    assert!(
        token.contains("entry 1 (`g`)") && token.contains("GOST R 34.10-2012-512"),
        "{token}"
    );
    let responder = refused(
        "[[ca.issuers]]\nid = \"g\"\nroot_id = \"root_g\"\nissuing_key_type = \"gost2015-512\"\n\
         ocsp_key_type = \"ec-p256\"\n",
    );
    assert!(
        responder.contains("entry 1 (`g`)") && responder.contains("GOST (gost2015-512)"),
        "{responder}"
    );
    assert!(validated(
        "[[ca.issuers]]\nid = \"g\"\nroot_id = \"root_g\"\nissuing_key_type = \"gost2015-512\"\n\
         ocsp_key_type = \"gost2015-512\"\n"
    )
    .is_ok());
}

#[test]
fn some_issuing_ca_certifies_rsa_and_ec_keys() {
    let only_gost = "[ca]\nissuing_key_type = \"gost2015-512\"\nocsp_key_type = \"gost2015-512\"\n\
                     issuers = []\n";
    let refused = validated(only_gost)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        refused.contains("ca.issuers") && refused.contains("every issuing CA is GOST"),
        "{refused}"
    );
    let with_rsa = "[ca]\nissuing_key_type = \"gost2015-512\"\nocsp_key_type = \"gost2015-512\"\n\
                    [[ca.issuers]]\nid = \"rsa\"\nroot_id = \"root_rsa\"\n";
    assert!(validated(with_rsa).is_ok());
}
