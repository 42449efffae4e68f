//! The individual identification number (IIN): 12 digits, YYMMDD, a century/sex digit, four
//! serial digits and a check digit.
//!
//! Owns: the reading of an IIN into its birth date and sex. The 7th digit gives both: 1 and 2
//! mean born in the 19th century (1800–1899), 3 and 4 in the 20th (1900–1999), 5 and 6 in the
//! 21st (2000–2099); odd is male, even female. The birth date must be a real date, not before
//! 1900-01-01 — so 1 and 2 are refused: nobody born before 1900 applies for a certificate,
//! and such an IIN is a typing error or a forgery — and not in the future. Must never: read the
//! system clock (the caller passes the time), or accept an IIN whose check digit does not
//! match.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

/// The earliest birth date an IIN may encode.
pub const EARLIEST_BIRTH_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

/// The time zone furthest ahead of UTC (UTC+14): a birth date is in the future only when it is
/// after today there.
const EARLIEST_ZONE_OFFSET_HOURS: i64 = 14;

/// A checked IIN: 12 digits, a valid check digit, a real birth date between 1900-01-01 and
/// today.
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
    /// The 7th digit is 1 or 2: born in the 1800s, before 1900-01-01.
    #[error("the century digit (7th) {0} means a birth date in the 1800s, before 1900-01-01")]
    BornBefore1900(u32),
    /// YYMMDD with the century is not a real date.
    #[error("the birth date YYMMDD is not a real date")]
    BirthDate,
    /// The birth date is after today.
    #[error("the birth date {0} is in the future")]
    BirthDateInFuture(NaiveDate),
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
    /// Parse and check an IIN at time `now` (the birth date may not be after it).
    pub fn parse(s: &str, now: DateTime<Utc>) -> Result<Iin, IinError> {
        if s.len() != 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IinError::Format);
        }
        let d: Vec<u32> = s.bytes().map(|b| u32::from(b - b'0')).collect();
        let digit = |i: usize| d.get(i).copied().unwrap_or(0);
        let century = match digit(6) {
            d @ (1 | 2) => return Err(IinError::BornBefore1900(d)),
            3 | 4 => 1900,
            5 | 6 => 2000,
            _ => return Err(IinError::Century),
        };
        let year = century + (digit(0) * 10 + digit(1)) as i32;
        let month = digit(2) * 10 + digit(3);
        let day = digit(4) * 10 + digit(5);
        let birth_date = NaiveDate::from_ymd_opt(year, month, day).ok_or(IinError::BirthDate)?;
        if birth_date < EARLIEST_BIRTH_DATE {
            return Err(IinError::BirthDate);
        }
        let today = (now + chrono::Duration::hours(EARLIEST_ZONE_OFFSET_HOURS)).date_naive();
        if birth_date > today {
            return Err(IinError::BirthDateInFuture(birth_date));
        }
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

    fn now() -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(2026, 11, 25)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .unwrap_or_default()
            .and_utc()
    }

    /// An IIN with a valid check digit for `yymmdd` and century digit `c`, whatever the serial
    /// it takes to have one.
    fn with_check_digit(yymmdd: &str, c: u8) -> String {
        (0..10_000u32)
            .map(|n| format!("{yymmdd}{c}{n:04}"))
            .find_map(|p| check_digit(&p).map(|d| format!("{p}{d}")))
            .unwrap_or_default()
    }

    fn parse(s: &str) -> Result<Iin, IinError> {
        Iin::parse(s, now())
    }

    #[test]
    fn valid_iins_parse() {
        let iin = make("90010130000");
        let parsed = parse(&iin);
        assert!(parsed.is_ok(), "{iin}: {parsed:?}");
        let parsed = parsed.unwrap_or_else(|_| unreachable!());
        assert_eq!(
            parsed.birth_date(),
            NaiveDate::from_ymd_opt(1990, 1, 1).unwrap_or_default()
        );
        assert_eq!(parsed.sex(), "M");
        let girl = parse(&make("05022860123")).map(|i| (i.birth_date(), i.sex()));
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
        assert_eq!(parse(&bad_check), Err(IinError::CheckDigit));
        assert_eq!(parse("90010130000"), Err(IinError::Format));
        assert_eq!(parse("9001013000a1"), Err(IinError::Format));
        assert_eq!(parse(&make("90010170000")), Err(IinError::Century));
        assert_eq!(parse(&make("90010100000")), Err(IinError::Century));
        assert_eq!(parse(&make("90023030000")), Err(IinError::BirthDate));
        assert_eq!(parse(&make("90130130000")), Err(IinError::BirthDate));
    }

    #[test]
    fn impossible_birth_dates_are_refused_with_the_reason() {
        // 2099-12-31 and 2030-01-01: check digits valid, dates real, but not born yet.
        let future = with_check_digit("991231", 5);
        assert_eq!(
            parse(&future),
            Err(IinError::BirthDateInFuture(
                NaiveDate::from_ymd_opt(2099, 12, 31).unwrap_or_default()
            ))
        );
        let soon = with_check_digit("300101", 6);
        assert_eq!(
            parse(&soon),
            Err(IinError::BirthDateInFuture(
                NaiveDate::from_ymd_opt(2030, 1, 1).unwrap_or_default()
            ))
        );
        // 1800-01-01 (digit 1) and 1899-12-31 (digit 2): the 19th century.
        assert_eq!(
            parse(&with_check_digit("000101", 1)),
            Err(IinError::BornBefore1900(1))
        );
        assert_eq!(
            parse(&with_check_digit("991231", 2)),
            Err(IinError::BornBefore1900(2))
        );
        // 29 February only in leap years (1900 was not one, 2000 was).
        assert_eq!(
            parse(&with_check_digit("000229", 3)),
            Err(IinError::BirthDate)
        );
        assert!(parse(&with_check_digit("000229", 5)).is_ok());
        // The earliest and the latest accepted: 1900-01-01, and today where it is already
        // tomorrow in UTC+14 (2026-11-26 02:00 there).
        assert!(parse(&with_check_digit("000101", 3)).is_ok());
        assert!(parse(&with_check_digit("261126", 6)).is_ok());
        assert_eq!(
            parse(&with_check_digit("261127", 5)),
            Err(IinError::BirthDateInFuture(
                NaiveDate::from_ymd_opt(2026, 11, 27).unwrap_or_default()
            ))
        );
    }

    #[test]
    fn the_century_digit_gives_the_sex() {
        for (c, sex) in [(3, "M"), (4, "F"), (5, "M"), (6, "F")] {
            let iin = parse(&with_check_digit("000101", c)).map(|i| i.sex());
            assert_eq!(iin, Ok(sex), "digit {c}");
        }
    }
}
