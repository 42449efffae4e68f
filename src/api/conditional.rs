//! Conditional GET for what relying parties and their caches fetch again and again (OCSP
//! answers over GET, CRLs): `If-None-Match` and `If-Modified-Since` (RFC 9110 §13.1.2,
//! §13.1.3, and their precedence in §13.2.2), and the HTTP dates of `Last-Modified` and
//! `Expires`.
//!
//! Owns: reading the two preconditions and deciding whether the current representation is
//! the one the client holds. Must never: answer "not modified" for a representation whose
//! entity tag differs from every tag the client sent, let `If-Modified-Since` speak when
//! `If-None-Match` is present, or trust a date it cannot parse (an invalid precondition is
//! ignored, and the full answer is sent).
//!
//! `Last-Modified` has one-second resolution: a representation replaced within the second the
//! client's copy was made is told apart by its entity tag only (clients that send both headers,
//! as CDNs and browsers do, are never misled).

use actix_web::http::header::{self, HeaderMap};
use chrono::NaiveDateTime;

/// `t` as an HTTP date (IMF-fixdate), for `Last-Modified` and `Expires`.
pub fn http_date(t: NaiveDateTime) -> String {
    t.and_utc().format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Whether a GET or HEAD with `headers` may be answered `304 Not Modified` for the current
/// representation, whose strong entity tag is `etag` (quoted) and which was last modified at
/// `last_modified`; `now` is the server's clock.
///
/// `If-None-Match` (a list of entity tags, compared weakly, or `*`) decides when present;
/// a value that is not text or not a list of entity tags matches nothing. Otherwise a single
/// valid `If-Modified-Since` date, not later than `now`, decides at second precision
/// (`Last-Modified ≤ date`); several, or an invalid one, are ignored.
pub fn not_modified(
    headers: &HeaderMap,
    etag: &str,
    last_modified: NaiveDateTime,
    now: NaiveDateTime,
) -> bool {
    let mut conditions = headers.get_all(header::IF_NONE_MATCH).peekable();
    if conditions.peek().is_some() {
        let ours = opaque_tag(etag);
        return conditions.any(|v| v.to_str().is_ok_and(|list| matches_any(list, ours)));
    }
    let mut since = headers.get_all(header::IF_MODIFIED_SINCE);
    let (Some(value), None) = (since.next(), since.next()) else {
        return false;
    };
    let Some(date) = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<header::HttpDate>().ok())
    else {
        return false;
    };
    let Ok(date) = std::time::SystemTime::from(date).duration_since(std::time::UNIX_EPOCH) else {
        return false;
    };
    let Ok(date) = i64::try_from(date.as_secs()) else {
        return false;
    };
    // A date later than the server's clock is invalid (it says nothing about what the client
    // holds, and would hold off every later change).
    date <= now.and_utc().timestamp() && last_modified.and_utc().timestamp() <= date
}

/// The opaque part of an entity tag (`"x"` or `W/"x"` → `x`).
fn opaque_tag(tag: &str) -> &str {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    tag.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(tag)
}

/// Whether an `If-None-Match` field value (`*`, or entity tags separated by commas) names
/// `ours` under the weak comparison. Anything that is not such a list matches nothing after
/// the point where it stops being one.
fn matches_any(list: &str, ours: &str) -> bool {
    if list.trim() == "*" {
        return true;
    }
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        let tag = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(quoted) = tag.strip_prefix('"') else {
            return false;
        };
        let Some((opaque, after)) = quoted.split_once('"') else {
            return false;
        };
        if opaque == ours {
            return true;
        }
        if !(after.is_empty() || after.starts_with([' ', '\t', ','])) {
            return false;
        }
        rest = after;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn headers(pairs: &[(HeaderName, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    const TAG: &str = "\"nca_rsa_dev-7\"";

    #[test]
    fn entity_tags_are_compared_weakly_in_lists_and_star_matches() {
        let modified = at("2026-12-06 10:00:00");
        let now = at("2026-12-06 10:05:00");
        let inm = header::IF_NONE_MATCH;
        for (value, want) in [
            (&b"\"nca_rsa_dev-7\""[..], true),
            (b"W/\"nca_rsa_dev-7\"", true),
            (b"\"a\", W/\"nca_rsa_dev-7\"", true),
            (b"\"a\",\"nca_rsa_dev-7\"", true),
            (b"*", true),
            (b" * ", true),
            (b"\"nca_rsa_dev-6\"", false),
            (b"nca_rsa_dev-7", false),
            (b"\"nca_rsa_dev-7", false),
            (b"\"a\"x, \"nca_rsa_dev-7\"", false),
            (b"\"a,b\", \"nca_rsa_dev-7\"", true),
            (b"", false),
            (b"\xff\"nca_rsa_dev-7\"", false),
        ] {
            let got = not_modified(&headers(&[(inm.clone(), value)]), TAG, modified, now);
            assert_eq!(got, want, "{}", String::from_utf8_lossy(value));
        }
        // Two header lines form one list.
        let two = headers(&[(inm.clone(), b"\"a\""), (inm.clone(), b"\"nca_rsa_dev-7\"")]);
        assert!(not_modified(&two, TAG, modified, now));
    }

    #[test]
    fn if_modified_since_compares_seconds_and_yields_to_if_none_match() {
        let modified = at("2026-12-06 10:00:00");
        let now = at("2026-12-06 10:05:00");
        let ims = header::IF_MODIFIED_SINCE;
        for (value, want) in [
            ("Sun, 06 Dec 2026 10:00:00 GMT", true),
            ("Sun, 06 Dec 2026 10:01:00 GMT", true),
            ("Sun, 06 Dec 2026 09:59:59 GMT", false),
            // The two obsolete formats RFC 9110 still asks recipients to read.
            ("Sunday, 06-Dec-26 10:00:00 GMT", true),
            ("Sun Dec  6 10:00:00 2026", true),
            // Later than the server's clock: invalid, ignored.
            ("Sun, 06 Dec 2026 10:05:01 GMT", false),
            ("yesterday", false),
            ("", false),
        ] {
            let got = not_modified(
                &headers(&[(ims.clone(), value.as_bytes())]),
                TAG,
                modified,
                now,
            );
            assert_eq!(got, want, "{value}");
        }
        // Sub-second parts of Last-Modified do not count.
        let fraction = modified + chrono::Duration::milliseconds(700);
        let same_second = headers(&[(ims.clone(), b"Sun, 06 Dec 2026 10:00:00 GMT")]);
        assert!(not_modified(&same_second, TAG, fraction, now));
        // Two dates: invalid, ignored.
        let two = headers(&[
            (ims.clone(), b"Sun, 06 Dec 2026 10:01:00 GMT"),
            (ims.clone(), b"Sun, 06 Dec 2026 10:02:00 GMT"),
        ]);
        assert!(!not_modified(&two, TAG, modified, now));
        // If-None-Match present and not matching: the date is not looked at.
        let both = headers(&[
            (header::IF_NONE_MATCH, b"\"other\""),
            (ims.clone(), b"Sun, 06 Dec 2026 10:01:00 GMT"),
        ]);
        assert!(!not_modified(&both, TAG, modified, now));
        assert!(!not_modified(&HeaderMap::new(), TAG, modified, now));
    }

    #[test]
    fn http_dates_are_imf_fixdate() {
        assert_eq!(
            http_date(at("2026-12-06 10:00:00")),
            "Sun, 06 Dec 2026 10:00:00 GMT"
        );
    }
}
