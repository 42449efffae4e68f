//! The individual identification number (IIN): 12 digits, YYMMDD, a century/sex digit, four
//! serial digits and a check digit.

use std::fmt;

use chrono::NaiveDate;

/// A checked IIN: 12 digits, a valid check digit, a real birth date.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Iin {
    digits: String,
    birth_date: NaiveDate,
}

/// Why a string is not an IIN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IinError {
    /// Not exactly 12 ASCII digits.
    #[error("an IIN is exactly 12 digits")]
    Format,
    /// The 7th digit is not 1–6.
    #[error("the century digit (7th) must be 1-6")]
    Century,
    /// YYMMDD with the century is not a real date.
    #[error("the birth date YYMMDD is not a real date")]
    BirthDate,
    /// The check digit does not match.
    #[error("the check digit does not match")]
    CheckDigit,
}

const WEIGHTS_1: [u32; 11] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const WEIGHTS_2: [u32; 11] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2];

/// The check digit for the first 11 digits, or `None` when the IIN cannot have one (both
/// weightings give 10) or the input is not 11 digits.
pub fn check_digit(first11: &str) -> Option<u8> {
    let digits: Vec<u32> = first11
        .chars()
        .map(|c| c.to_digit(10))
        .collect::<Option<_>>()?;
    if digits.len() != 11 {
        return None;
    }
    let sum = |w: &[u32; 11]| digits.iter().zip(w).map(|(d, w)| d * w).sum::<u32>() % 11;
    let mut s = sum(&WEIGHTS_1);
    if s == 10 {
        s = sum(&WEIGHTS_2);
    }
    if s == 10 {
        None
    } else {
        u8::try_from(s).ok()
    }
}

impl Iin {
    /// Parse and check an IIN.
    pub fn parse(s: &str) -> Result<Iin, IinError> {
        if s.len() != 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IinError::Format);
        }
        let d: Vec<u32> = s.bytes().map(|b| u32::from(b - b'0')).collect();
        let digit = |i: usize| d.get(i).copied().unwrap_or(0);
        let century = match digit(6) {
            1 | 2 => 1800,
            3 | 4 => 1900,
            5 | 6 => 2000,
            _ => return Err(IinError::Century),
        };
        let year = century + (digit(0) * 10 + digit(1)) as i32;
        let month = digit(2) * 10 + digit(3);
        let day = digit(4) * 10 + digit(5);
        let birth_date = NaiveDate::from_ymd_opt(year, month, day).ok_or(IinError::BirthDate)?;
        let expected =
            check_digit(s.get(..11).ok_or(IinError::Format)?).ok_or(IinError::CheckDigit)?;
        if u32::from(expected) != digit(11) {
            return Err(IinError::CheckDigit);
        }
        Ok(Iin {
            digits: s.to_owned(),
            birth_date,
        })
    }

    /// The 12 digits.
    pub fn as_str(&self) -> &str {
        &self.digits
    }

    /// The birth date the IIN encodes.
    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }

    /// `M` or `F`, from the parity of the century digit.
    pub fn sex(&self) -> &'static str {
        match self.digits.as_bytes().get(6) {
            Some(b'1' | b'3' | b'5') => "M",
            _ => "F",
        }
    }
}

impl fmt::Display for Iin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.digits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(first11: &str) -> String {
        format!("{first11}{}", check_digit(first11).unwrap_or(0))
    }

    #[test]
    fn valid_iins_parse() {
        let iin = make("90010130000");
        let parsed = Iin::parse(&iin);
        assert!(parsed.is_ok(), "{iin}: {parsed:?}");
        let parsed = parsed.unwrap_or_else(|_| unreachable!());
        assert_eq!(
            parsed.birth_date(),
            NaiveDate::from_ymd_opt(1990, 1, 1).unwrap_or_default()
        );
        assert_eq!(parsed.sex(), "M");
        let girl = Iin::parse(&make("05022860123")).map(|i| (i.birth_date(), i.sex()));
        assert_eq!(
            girl,
            Ok((
                NaiveDate::from_ymd_opt(2005, 2, 28).unwrap_or_default(),
                "F"
            ))
        );
    }

    #[test]
    fn the_second_weighting_is_used_when_the_first_gives_ten() {
        // 1·1+2·0+…: find an 11-digit prefix whose first sum is 10 and check the result.
        let prefix = (0..100_000u32)
            .map(|n| format!("900101300{:02}", n % 100))
            .find(|p| {
                let d: Vec<u32> = p.chars().filter_map(|c| c.to_digit(10)).collect();
                d.iter().zip(WEIGHTS_1).map(|(d, w)| d * w).sum::<u32>() % 11 == 10
            });
        let Some(prefix) = prefix else { return };
        let d: Vec<u32> = prefix.chars().filter_map(|c| c.to_digit(10)).collect();
        let second = d.iter().zip(WEIGHTS_2).map(|(d, w)| d * w).sum::<u32>() % 11;
        let expected = if second == 10 {
            None
        } else {
            u8::try_from(second).ok()
        };
        assert_eq!(check_digit(&prefix), expected);
    }

    #[test]
    fn invalid_iins_are_refused_with_the_reason() {
        let good = make("90010130000");
        let mut bad_check = good.clone();
        let last = good
            .chars()
            .last()
            .and_then(|c| c.to_digit(10))
            .unwrap_or(0);
        bad_check.pop();
        bad_check.push(char::from_digit((last + 1) % 10, 10).unwrap_or('0'));
        assert_eq!(Iin::parse(&bad_check), Err(IinError::CheckDigit));
        assert_eq!(Iin::parse("90010130000"), Err(IinError::Format));
        assert_eq!(Iin::parse("9001013000a1"), Err(IinError::Format));
        assert_eq!(Iin::parse(&make("90010170000")), Err(IinError::Century));
        assert_eq!(Iin::parse(&make("90023030000")), Err(IinError::BirthDate));
        assert_eq!(Iin::parse(&make("90130130000")), Err(IinError::BirthDate));
    }
}
