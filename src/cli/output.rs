//! How the commands print: aligned columns or JSON, one row or many.

use super::*;

/// A list of strings on one line, separated by "; " (the review reasons).
pub(super) fn joined(values: &[serde_json::Value]) -> String {
    values
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Print a value as pretty JSON.
pub(super) fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<(), Failure> {
    out!(
        "{}",
        serde_json::to_string_pretty(value).map_err(anyhow::Error::from)?
    )
}

/// Print rows as a table of `columns`, or all of them as a JSON array.
pub(super) fn print_rows(
    rows: &[serde_json::Value],
    json: bool,
    columns: &[&str],
) -> Result<(), Failure> {
    if json {
        return print_json(rows);
    }
    let cell = |row: &serde_json::Value, col: &str| match row.get(col) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => "-".to_owned(),
        Some(serde_json::Value::Array(a)) if a.is_empty() => "-".to_owned(),
        Some(serde_json::Value::Array(a)) => joined(a),
        Some(other) => other.to_string(),
    };
    let widths: Vec<usize> = columns
        .iter()
        .map(|c| {
            rows.iter()
                .map(|r| cell(r, c).chars().count())
                .chain(std::iter::once(c.len()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<String>| {
        values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    out!(
        "{}",
        line(columns.iter().map(|c| c.to_uppercase()).collect())
    )?;
    for row in rows {
        out!("{}", line(columns.iter().map(|c| cell(row, c)).collect()))?;
    }
    if rows.is_empty() {
        out!("(none)")?;
    }
    Ok(())
}

/// Print one object as `key: value` lines, or as JSON.
pub(super) fn print_one(value: &serde_json::Value, json: bool) -> Result<(), Failure> {
    if json {
        return print_json(value);
    }
    if let Some(obj) = value.as_object() {
        for (k, v) in obj {
            match v {
                serde_json::Value::String(s) if s.contains('\n') => out!("{k}:\n{s}")?,
                serde_json::Value::String(s) => out!("{k:<18} {s}")?,
                serde_json::Value::Null => out!("{k:<18} -")?,
                serde_json::Value::Array(a) if a.iter().all(|v| v.is_string()) => {
                    out!(
                        "{k:<18} {}",
                        if a.is_empty() {
                            "-".to_owned()
                        } else {
                            joined(a)
                        }
                    )?;
                }
                other => out!("{k:<18} {other}")?,
            }
        }
    }
    Ok(())
}

/// `--status S` read with `parse`; otherwise a usage error saying which values are `expected`.
pub(super) fn status_arg<T>(
    raw: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
    expected: &str,
) -> Result<Option<T>, Failure> {
    raw.map(|s| {
        parse(s).ok_or_else(|| Failure::Usage(format!("--status {s}: expected {expected}")))
    })
    .transpose()
}
