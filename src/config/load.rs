//! Reading the configuration: the file (bounded), then the `TAMGA_*` environment overrides.

use std::collections::BTreeMap;
use std::path::Path;

use super::{validate, Config, ConfigError, Source, ValidConfig, CONFIG_PATH_ENV};

/// The `TAMGA_*` environment variables, for [`load`]. Variables of other programs are not
/// looked at, whatever their bytes; a `TAMGA_*` variable that is not UTF-8 is an error naming
/// it (never showing its value).
pub fn environment() -> Result<Vec<(String, String)>, ConfigError> {
    tamga_variables(std::env::vars_os())
}

pub(super) fn tamga_variables(
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
pub(super) fn apply_env(
    tree: &mut toml::Value,
    var: &str,
    value: &str,
) -> Result<bool, ConfigError> {
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
pub(super) fn typed_env_value(current: &toml::Value, raw: &str) -> Result<toml::Value, String> {
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
