//! The access log: one line per request, written by the metrics middleware once the response
//! is known.
//!
//! The portal API (`/api/v1/…`), the operations routes (`/healthz`, `/readyz`, `/metrics`)
//! and requests that match no route are logged at `info`; the relying parties' routes (OCSP,
//! CRLs, the CA certificates under `/ca/…`) at `debug` only, since the metrics already count
//! them. A line holds the method, the route pattern (for an unmatched request: its path,
//! without the query string, escaped and cut to [`PATH_MAX`] bytes), the status, the duration
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

/// The first `PATH_MAX` bytes of `path`, cut at a character boundary.
fn bounded(path: &str) -> &str {
    if path.len() <= PATH_MAX {
        return path;
    }
    let mut end = PATH_MAX;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    path.get(..end).unwrap_or_default()
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
            path = request.map(|r| tracing::field::debug(bounded(r.path()))),
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
    fn an_unmatched_path_is_cut_at_a_character_boundary() {
        let long = "é".repeat(PATH_MAX);
        let cut = bounded(&long);
        assert!(cut.len() <= PATH_MAX && cut.len() >= PATH_MAX - 1);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(bounded("/x"), "/x");
    }
}
