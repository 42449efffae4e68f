//! Serial numbers as users write them.

use std::fmt;

/// A certificate serial number, normalised to upper-case hex without separators or leading
/// zero octets (an odd number of digits gets one leading zero).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Serial(String);

/// Why a serial number could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a serial number (hex digits, optionally with colons, spaces or 0x)")]
pub struct SerialError(pub String);

impl Serial {
    /// Accept upper or lower case, `0x`, colons and spaces (`9a:d0:…`, `0x9AD0…`, `9AD0…`).
    pub fn parse(raw: &str) -> Result<Serial, SerialError> {
        let shown = || SerialError(raw.chars().take(80).collect());
        let trimmed = raw.trim();
        let body = trimmed
            .strip_prefix("0x")
            .or_else(|| trimmed.strip_prefix("0X"))
            .unwrap_or(trimmed);
        let digits: String = body
            .chars()
            .filter(|c| *c != ':' && *c != ' ')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if digits.is_empty() || digits.len() > 64 || !digits.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Err(shown());
        }
        let significant = digits.trim_start_matches('0');
        let significant = if significant.is_empty() {
            "0"
        } else {
            significant
        };
        let normalised = if significant.len() % 2 == 1 {
            format!("0{significant}")
        } else {
            significant.to_owned()
        };
        Ok(Serial(normalised))
    }

    /// The normalised hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_in_every_common_form() {
        let want = Ok(Serial("9AD05F36".to_owned()));
        for raw in [
            "9AD05F36",
            "9ad05f36",
            "9a:d0:5f:36",
            "0x9ad05f36",
            "00:9A:D0:5F:36",
            " 9AD0 5F36 ",
        ] {
            assert_eq!(Serial::parse(raw), want, "{raw}");
        }
        assert_eq!(Serial::parse("0A1B").map(|s| s.0), Ok("0A1B".to_owned()));
        assert_eq!(Serial::parse("a1b").map(|s| s.0), Ok("0A1B".to_owned()));
        for bad in ["", "0x", "xyz", "12-34", &"A".repeat(65)] {
            assert!(Serial::parse(bad).is_err(), "{bad}");
        }
    }
}
