//! The access log: one line per request, written by the metrics middleware once the response
//! is known.
//!
//! The portal API (`/api/v1/…`), the operations routes (`/healthz`, `/readyz`, `/metrics`)
//! and requests that match no route are logged at `info`; the relying parties' routes (OCSP,
//! CRLs, the CA certificates under `/ca/…`) at `debug` only, since the metrics already count
//! them. A line holds the method, the route pattern (for an unmatched request: its path,
//! without the query string, each segment that could hold an identifier shown as `*`, cut to
//! [`PATH_MAX`] bytes), the status, the duration
//! in microseconds and the client's address (the peer's, or the one a trusted proxy
//! forwarded). Events go to the target [`TARGET`], so `RUST_LOG` can silence or raise them
//! alone.
//!
//! Owns: which requests are logged at which level and what a line holds. Must never: log a
//! header (the portal's Bearer token is one), a query string, a body or anything else a
//! request carries besides its method and path; format or allocate on the relying parties'
//! path while `debug` is off.

use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::HttpRequest;

use super::gate::Admission;

/// The target of access log events (`RUST_LOG=info,tamga::access=warn` turns them off).
pub const TARGET: &str = "tamga::access";

/// Longest part of an unmatched request's path written into the log.
const PATH_MAX: usize = 200;

/// Whether a route (a label of [`super::metrics`]) is one relying parties use, logged at
/// `debug` only.
fn relying_party(route: &str) -> bool {
    route.starts_with("/ocsp") || route.starts_with("/crl/") || route.starts_with("/ca/")
}

/// An unmatched path as the log may show it: the client chose it, so a segment that could carry
/// an identifier (an IIN, a serial, a token, an id: anything with more than two digits, longer
/// than 32 bytes, or with a character other than ASCII letters, digits, `-`, `_` and `.`) is
/// shown as `*`; at most `PATH_MAX` bytes. `/api/v1/holders/900101300007` → `/api/v1/holders/*`.
fn masked(path: &str) -> String {
    let mut shown = String::with_capacity(path.len().min(PATH_MAX));
    for segment in path.split('/').skip(1) {
        let plain = segment.len() <= 32
            && segment.bytes().filter(u8::is_ascii_digit).count() <= 2
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        let part = if plain { segment } else { "*" };
        if shown.len() + 1 + part.len() > PATH_MAX {
            shown.push_str("/…");
            break;
        }
        shown.push('/');
        shown.push_str(part);
    }
    if shown.is_empty() {
        shown.push('/');
    }
    shown
}

/// Write the access line of one finished request. `request` is `None` when the response
/// carried no request (an error from a middleware).
pub(super) fn log(
    admission: &Admission,
    request: Option<&HttpRequest>,
    route: &'static str,
    method: &'static str,
    status: StatusCode,
    micros: u64,
) {
    let client = |r: Option<&HttpRequest>| -> Option<IpAddr> {
        r.and_then(|r| admission.client(r.peer_addr(), r.headers()))
    };
    if relying_party(route) {
        // The fields are evaluated only when a subscriber wants debug events of this target.
        tracing::debug!(
            target: TARGET,
            method,
            route,
            status = status.as_u16(),
            micros,
            client = client(request).map(tracing::field::display),
            "request"
        );
    } else if route == super::metrics::UNMATCHED {
        tracing::info!(
            target: TARGET,
            method,
            route,
            path = request.map(|r| tracing::field::debug(masked(r.path()))),
            status = status.as_u16(),
            micros,
            client = client(request).map(tracing::field::display),
            "request"
        );
    } else {
        tracing::info!(
            target: TARGET,
            method,
            route,
            status = status.as_u16(),
            micros,
            client = client(request).map(tracing::field::display),
            "request"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relying_parties_routes_are_the_quiet_ones() {
        for route in [
            "/ocsp",
            "/ocsp/",
            "/ocsp/{request:.*}",
            "/crl/{file}",
            "/ca/{file}",
        ] {
            assert!(relying_party(route), "{route}");
        }
        for route in [
            "/api/v1/applications",
            "/api/v1/applications/{id}",
            "/api/v1/revocations",
            "/api/v1/openapi.json",
            "/healthz",
            "/readyz",
            "/metrics",
            super::super::metrics::UNMATCHED,
        ] {
            assert!(!relying_party(route), "{route}");
        }
    }

    #[test]
    fn an_unmatched_path_shows_no_identifier() {
        assert_eq!(masked("/api/v1/holders/900101300007"), "/api/v1/holders/*");
        assert_eq!(
            masked("/api/v1/applications/0f1e2d3c-aaaa-bbbb-cccc-111122223333/x"),
            "/api/v1/applications/*/x"
        );
        assert_eq!(
            masked("/eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiI5MDAxMDEzMDAwMDcifQ.c2ln"),
            "/*"
        );
        assert_eq!(masked("/a%20b/%0aINFO fake"), "/*/*");
        assert_eq!(masked("/favicon.ico"), "/favicon.ico");
        assert_eq!(masked("/"), "/");
        assert_eq!(masked(""), "/");
        let long = "/abc".repeat(PATH_MAX);
        let cut = masked(&long);
        assert!(cut.len() <= PATH_MAX + "/…".len(), "{}", cut.len());
        assert!(cut.ends_with("/…"));
    }
}
