//! The checks that open what the configuration names: the mail settings (and the SMTP
//! password they point to), the trusted Digital ID keys, the TLS files, and the CA hierarchy
//! with its keys — in a PKCS#11 token, the token itself; in production, that the root is not a
//! development root (its marker, `root.development`, written by `tamga ca init`).
//!
//! `config` only checks the values (it opens nothing); `tamga config check` and `tamga serve`
//! run these as well, so a configuration `config check` accepts is one `serve` starts with.
//! Commands that sign nothing (`audit`, `outbox`, `dev consent-token`, …) never run them: they
//! keep working while a token is away. Must never: print a secret it reads.

use super::*;
use crate::ca::HierarchyProblem;
use crate::config::{ConfigError, TlsConfig};

/// Every check, in the order `serve` needs them; the first failure is a configuration error
/// (exit 3) naming the key at fault.
pub(super) fn check_all(config: &ValidConfig) -> Result<(), Failure> {
    let cfg = config.get();
    crate::notify::check_config(&cfg.notify).map_err(|message| invalid("notify", message))?;
    // The same loading and acceptance check as `serve`: a key config check passes, serve takes.
    TrustedKeys::load(
        &cfg.digital_id.keys,
        &[],
        &cfg.digital_id.issuer,
        &cfg.digital_id.audience,
    )
    .map_err(|e| invalid("digital_id.keys", e.to_string()))?;
    check_tls_files(&cfg.server.tls).map_err(Failure::Config)?;
    hierarchy(config)
}

/// The CA hierarchy's files, loaded with their keys (a token is opened and logged in to).
/// A token that is configured right but cannot be reached now is said to be unreachable, not
/// a configuration error (the exit code is the same, 3: nothing can start without it).
///
/// Every issuer's hierarchy (`[ca]`'s and each `[[ca.issuers]]` entry's): a GOST issuer while
/// the gost engine is not loaded is left out (it is not loaded; `config check` and `/readyz`
/// say so), and in dev mode a further issuer none of whose own files are there yet is
/// generated at start, as `[ca]`'s is.
pub(super) fn hierarchy(config: &ValidConfig) -> Result<(), Failure> {
    let cfg = config.get();
    for (n, view) in cfg.ca.per_issuer().iter().enumerate() {
        if n > 0 {
            if crate::ca::issuers::skipped(view, false) {
                continue;
            }
            let files = HierarchyFiles::for_config(view);
            let own = [&files.issuing_cert, &files.ocsp_cert];
            if cfg.mode == Mode::Dev && own.iter().all(|p| !p.exists()) {
                continue;
            }
        }
        issuer_hierarchy(view, cfg.mode)?;
    }
    Ok(())
}

/// One issuer's hierarchy, as [`hierarchy`] checks it.
fn issuer_hierarchy(ca: &crate::config::CaConfig, mode: Mode) -> Result<(), Failure> {
    crate::ca::check_hierarchy_files(ca, mode).map_err(|problem| match problem {
        HierarchyProblem::Files(message) => Failure::Config(ConfigError::MissingFile {
            key: "ca.dir",
            message,
        }),
        problem @ HierarchyProblem::DevelopmentRoot { .. } => {
            Failure::Config(ConfigError::Invalid {
                key: "mode",
                message: format!("mode = \"production\" refuses a development root: {problem}"),
            })
        }
        HierarchyProblem::KeyUnavailable(message) => Failure::Unreachable(format!(
            "the CA's signing key cannot be reached (the configuration itself is valid): \
             {message}"
        )),
    })
}

fn invalid(key: &'static str, message: impl Into<String>) -> Failure {
    Failure::Config(ConfigError::Invalid {
        key,
        message: message.into(),
    })
}

/// `[server.tls]`: the files readable, the key matching the certificate, the client CA bundle
/// parsing. (That both files are set, or neither, `config` has checked.)
fn check_tls_files(tls: &TlsConfig) -> Result<(), ConfigError> {
    if !tls.enabled() {
        return Ok(());
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
        ConfigError::Invalid {
            key,
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_tls_files_are_named() {
        let message = |toml: &str| {
            crate::config::parse_with_env(toml, "test", Vec::new())
                .map(|c| c.server.tls)
                .map_err(|e| e.to_string())
                .and_then(|tls| check_tls_files(&tls).map_err(|e| e.to_string()))
                .err()
                .unwrap_or_default()
        };
        let m = message("[server.tls]\ncert = \"/nonexistent/c.pem\"\nkey = \"k.pem\"\n");
        assert!(
            m.starts_with("server.tls.cert: cannot read /nonexistent/c.pem"),
            "{m}"
        );
    }
}
