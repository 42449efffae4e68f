//! Times that certificates, CRLs and OCSP responses can carry.
//!
//! RFC 5280 encodes a time as UTCTime up to 2049 and as GeneralizedTime from 2050 on; the
//! DER encoder Tamga uses starts at the Unix epoch. [`X509Time`] is a time in that range, in
//! whole seconds: every date that can reach an encoder (a holder's or operator's invalidity
//! date, a validity period, a CRL's or an OCSP response's dates) is turned into one where it
//! enters, so that an encoder can never be handed a value it refuses — one such row once
//! stopped every CRL.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use der::asn1::{GeneralizedTime, UtcTime};
use x509_cert::time::Time;

/// A time outside what the encoders accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is outside the times a certificate or CRL can carry (1970-01-01 to 9999-12-31)")]
pub struct TimeOutOfRange(pub String);

/// A time, in whole seconds, from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct X509Time(DateTime<Utc>);

impl X509Time {
    /// The first time that can be encoded.
    pub fn earliest() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH
    }

    /// The last time that can be encoded.
    pub fn latest() -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(9999, 12, 31)
            .and_then(|d| d.and_hms_opt(23, 59, 59))
            .map_or(DateTime::<Utc>::MAX_UTC, |t| t.and_utc())
    }

    /// `t`, truncated to whole seconds, if the encoders can carry it.
    pub fn new(t: DateTime<Utc>) -> Result<Self, TimeOutOfRange> {
        let secs = DateTime::<Utc>::from_timestamp(t.timestamp(), 0).unwrap_or(t);
        if secs < Self::earliest() || secs > Self::latest() {
            return Err(TimeOutOfRange(t.to_rfc3339()));
        }
        Ok(X509Time(secs))
    }

    /// The same for a stored (UTC) time.
    pub fn from_naive(t: NaiveDateTime) -> Result<Self, TimeOutOfRange> {
        Self::new(t.and_utc())
    }

    /// The time.
    pub fn get(self) -> DateTime<Utc> {
        self.0
    }

    fn since_epoch(self) -> Duration {
        // The constructor keeps the time at or after the epoch.
        Duration::from_secs(u64::try_from(self.0.timestamp()).unwrap_or(0))
    }

    /// As RFC 5280 wants it in a certificate or CRL: UTCTime before 2050, GeneralizedTime from
    /// 2050 on.
    pub fn to_time(self) -> Result<Time, der::Error> {
        if self.0.year() < 2050 {
            Ok(Time::UtcTime(UtcTime::from_unix_duration(
                self.since_epoch(),
            )?))
        } else {
            Ok(Time::GeneralTime(self.to_generalized()?))
        }
    }

    /// As a GeneralizedTime (invalidityDate, OCSP).
    pub fn to_generalized(self) -> Result<GeneralizedTime, der::Error> {
        GeneralizedTime::from_unix_duration(self.since_epoch())
    }
}

/// A stored invalidity date as a CRL entry can carry it: encodable, and not after the
/// revocation (RFC 5280 §5.3.2: when the key was compromised or the certificate became
/// invalid, as known when it was revoked). `None` for a row that breaks either rule — one
/// written before dates were checked where they enter.
pub fn carried_invalidity_date(
    invalidity: NaiveDateTime,
    revoked_at: Option<NaiveDateTime>,
) -> Option<X509Time> {
    if revoked_at.is_some_and(|r| invalidity > r) {
        return None;
    }
    X509Time::from_naive(invalidity).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use der::Encode;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_range_is_what_the_encoders_take() {
        for bad in [
            "1969-12-31T23:59:59Z",
            "1900-01-01T00:00:00Z",
            "0001-01-01T00:00:00Z",
        ] {
            assert!(X509Time::new(at(bad)).is_err(), "{bad}");
        }
        assert!(X509Time::new(DateTime::<Utc>::MAX_UTC).is_err());
        assert!(X509Time::new(DateTime::<Utc>::MIN_UTC).is_err());
        for good in [
            "1970-01-01T00:00:00Z",
            "2026-11-29T12:00:00.5Z",
            "2049-12-31T23:59:59Z",
            "2050-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ] {
            let t = X509Time::new(at(good)).unwrap();
            // Every accepted time encodes both ways.
            assert!(t.to_time().unwrap().to_der().is_ok(), "{good}");
            assert!(t.to_generalized().unwrap().to_der().is_ok(), "{good}");
        }
    }

    #[test]
    fn utctime_until_2049_generalizedtime_after() {
        let before = X509Time::new(at("2049-12-31T23:59:59Z")).unwrap();
        assert!(matches!(before.to_time().unwrap(), Time::UtcTime(_)));
        let after = X509Time::new(at("2050-01-01T00:00:00Z")).unwrap();
        assert!(matches!(after.to_time().unwrap(), Time::GeneralTime(_)));
        assert_eq!(
            X509Time::new(at("2026-11-29T12:00:00.75Z")).unwrap().get(),
            at("2026-11-29T12:00:00Z")
        );
    }
}
