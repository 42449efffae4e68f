//! Admission before the handlers: the client certificate on the portal API (`/api/v1/…`) when
//! `[server.tls] client_ca` is set, the per-address flood guard of `[limits]`, and the cap on
//! open connections per address (`[limits] connections_per_address`, counted when a
//! connection opens and given back when it closes).
//!
//! Owns: which routes and connections each check covers and the refusals it answers (problem
//! documents with codes `client_certificate_required`, `client_certificate_untrusted`,
//! `rate_limited_client`, `rate_limited_connections`, and `body_too_large` for a declared
//! body the route will not take — also before `100 Continue`). Must never: slow the relying
//! parties' hot path — `/ocsp` and `/crl/…` pass with a look at the connection's data, the
//! declared body length and a comparison of the path, and nothing else unless
//! `[limits] client_limit_ocsp_crl` asks for the flood guard there too.

use std::any::Any;
use std::future::{ready, Ready};
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::RequestHead;
use actix_web::dev::{
    forward_ready, Extensions, Service, ServiceRequest, ServiceResponse, Transform,
};
use actix_web::ResponseError;
use futures_util::future::{Either, FutureExt, Map};

use super::body;
use super::limits::{client_address, limit_key, ClientLimiter, ConnectionCounter};
use super::metrics::Metrics;
use super::problem::ApiError;
use super::tls::{self, ClientCertificate};
use crate::config::ValidConfig;

/// The path prefix of the portal API.
pub const PORTAL_PREFIX: &str = "/api/v1";

/// Whether a (routed, percent-decoded) path belongs to the portal API.
fn is_portal(path: &str) -> bool {
    path.strip_prefix(PORTAL_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether a path is one relying parties use: OCSP and CRLs.
fn is_relying_party(path: &str) -> bool {
    path == "/ocsp" || path.starts_with("/ocsp/") || path.starts_with("/crl/")
}

/// The rules both checks apply, shared by every worker of the process.
#[derive(Debug)]
pub struct Admission {
    client_auth: bool,
    limiter: Option<ClientLimiter>,
    limit_ocsp_crl: bool,
    trusted_proxies: Vec<IpAddr>,
    connections: Option<Arc<ConnectionCounter>>,
    metrics: Arc<Metrics>,
}

/// Marks a connection opened while its address held `[limits] connections_per_address`
/// connections: its first request is refused and the connection closed.
#[derive(Debug, Clone, Copy)]
struct OverConnectionCap(u32);

impl Admission {
    /// The rules of a checked configuration.
    pub fn new(config: &ValidConfig, metrics: Arc<Metrics>) -> Admission {
        let cfg = config.get();
        Admission {
            client_auth: cfg.server.tls.enabled() && cfg.server.tls.client_auth(),
            limiter: ClientLimiter::new(
                cfg.limits.client_requests_per_second,
                cfg.limits.client_burst,
            ),
            limit_ocsp_crl: cfg.limits.client_limit_ocsp_crl,
            trusted_proxies: super::limits::canonical_proxies(config.trusted_proxies()),
            connections: ConnectionCounter::new(cfg.limits.connections_per_address),
            metrics,
        }
    }

    /// `HttpServer::on_connect`: record the TLS client certificate, then take a place in the
    /// peer address's count of open connections (held until the connection closes), or mark
    /// the connection as over the cap. Trusted proxies and connections whose client
    /// certificate verified (the portal) are not counted: each speaks for many clients.
    pub fn connected(&self, connection: &dyn Any, extensions: &mut Extensions) {
        tls::on_connect(connection, extensions);
        let Some(counter) = &self.connections else {
            return;
        };
        let Some(peer) = tls::peer_addr(connection).map(|a| a.ip().to_canonical()) else {
            return;
        };
        if self.trusted_proxies.contains(&peer)
            || matches!(
                extensions.get::<ClientCertificate>(),
                Some(ClientCertificate::Verified { .. })
            )
        {
            return;
        }
        match counter.open(peer) {
            Some(slot) => {
                extensions.insert(slot);
            }
            None => {
                extensions.insert(OverConnectionCap(counter.cap()));
            }
        }
    }

    /// `Expect: 100-continue`: the body is invited only when the route takes a body of the
    /// declared size; otherwise the answer is 413 `body_too_large` at once, without
    /// `100 Continue` (and the connection closes: the body is never read).
    pub fn expect_continue(&self, head: &RequestHead) -> Result<(), ApiError> {
        body::refused(head).map_or(Ok(()), |e| {
            self.refused(&e);
            Err(e)
        })
    }

    /// The same for every request: a declared body its route will not take is refused before
    /// any handler runs.
    pub fn body(&self, req: &ServiceRequest) -> Result<(), ApiError> {
        body::refused(req.head()).map_or(Ok(()), Err)
    }

    /// The connection cap's check: a connection opened over its address's cap is refused.
    pub fn connection(&self, req: &ServiceRequest) -> Result<(), ApiError> {
        match req.conn_data::<OverConnectionCap>() {
            Some(OverConnectionCap(limit)) => {
                Err(ApiError::RateLimitedConnections { limit: *limit })
            }
            None => Ok(()),
        }
    }

    /// The portal API's check: a client certificate that chains to `[server.tls] client_ca`.
    pub fn portal(&self, req: &ServiceRequest) -> Result<(), ApiError> {
        if !self.client_auth {
            return Ok(());
        }
        match req.conn_data::<ClientCertificate>() {
            Some(ClientCertificate::Verified { subject }) => {
                tracing::debug!(client = %subject, "portal client certificate verified");
                Ok(())
            }
            Some(ClientCertificate::Untrusted { reason }) => {
                Err(ApiError::ClientCertificateUntrusted(reason.clone()))
            }
            Some(ClientCertificate::Absent) | None => Err(ApiError::ClientCertificateRequired),
        }
    }

    /// The flood guard: every route but OCSP and CRLs (unless configured), and not for the
    /// portal once its certificate verified (the portal speaks for every citizen; the
    /// per-IIN limits bound each of them).
    pub fn flood(&self, req: &ServiceRequest) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        // The path the router matches (percent-decoded), not the raw one.
        let path = req.match_info().as_str();
        if !self.limit_ocsp_crl && is_relying_party(path) {
            return Ok(());
        }
        if self.client_auth
            && is_portal(path)
            && matches!(
                req.conn_data::<ClientCertificate>(),
                Some(ClientCertificate::Verified { .. })
            )
        {
            return Ok(());
        }
        let Some(client) = self.client(req.peer_addr(), req.headers()) else {
            return Ok(());
        };
        limiter
            .check(limit_key(client), Instant::now())
            .map_err(|retry_after_secs| ApiError::RateLimitedClient { retry_after_secs })
    }

    /// The client's address of a request from `peer` with `headers`: the peer's, or the one a
    /// trusted proxy forwarded (see [`client_address`]).
    pub fn client(
        &self,
        peer: Option<std::net::SocketAddr>,
        headers: &actix_web::http::header::HeaderMap,
    ) -> Option<IpAddr> {
        let forwarded = if self.trusted_proxies.is_empty() {
            None
        } else {
            headers.get("x-forwarded-for").and_then(|v| v.to_str().ok())
        };
        client_address(peer.map(|a| a.ip()), forwarded, &self.trusted_proxies)
    }

    fn refused(&self, e: &ApiError) {
        self.metrics.rejection(e.code());
    }
}

/// A middleware that runs one of the [`Admission`] checks before the wrapped service.
pub struct Gate<F> {
    check: Rc<F>,
}

impl<F> Gate<F>
where
    F: Fn(&ServiceRequest) -> Result<(), ApiError>,
{
    /// Refuse every request for which `check` fails, with its problem document.
    pub fn new(check: F) -> Gate<F> {
        Gate {
            check: Rc::new(check),
        }
    }
}

/// The admission check over an `Admission`.
pub fn portal(admission: Arc<Admission>) -> Gate<impl Fn(&ServiceRequest) -> Result<(), ApiError>> {
    Gate::new(move |req: &ServiceRequest| {
        admission.portal(req).inspect_err(|e| admission.refused(e))
    })
}

/// The connection cap, declared bodies, then the flood guard, over an `Admission`.
pub fn flood(admission: Arc<Admission>) -> Gate<impl Fn(&ServiceRequest) -> Result<(), ApiError>> {
    Gate::new(move |req: &ServiceRequest| {
        admission
            .connection(req)
            .and_then(|()| admission.body(req))
            .and_then(|()| admission.flood(req))
            .inspect_err(|e| admission.refused(e))
    })
}

impl<S, B, F> Transform<S, ServiceRequest> for Gate<F>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
    F: Fn(&ServiceRequest) -> Result<(), ApiError> + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = GateService<S, F>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(GateService {
            service,
            check: Rc::clone(&self.check),
        }))
    }
}

/// The service [`Gate`] wraps around the routes.
pub struct GateService<S, F> {
    service: S,
    check: Rc<F>,
}

type Passed<B> = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>;

fn passed<B>(response: Result<ServiceResponse<B>, actix_web::Error>) -> Passed<B> {
    response.map(ServiceResponse::map_into_left_body)
}

impl<S, B, F> Service<ServiceRequest> for GateService<S, F>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
    F: Fn(&ServiceRequest) -> Result<(), ApiError>,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    // No allocation on either path: the admitted request's future is mapped in place.
    #[allow(clippy::type_complexity)]
    type Future = Either<
        Ready<Passed<B>>,
        Map<S::Future, fn(Result<ServiceResponse<B>, actix_web::Error>) -> Passed<B>>,
    >;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        match (self.check)(&req) {
            Ok(()) => Either::Right(self.service.call(req).map(passed::<B> as fn(_) -> _)),
            Err(e) => {
                let response = req.into_response(e.error_response());
                Either::Left(ready(Ok(response.map_into_right_body())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_classes() {
        assert!(is_portal("/api/v1"));
        assert!(is_portal("/api/v1/applications"));
        assert!(!is_portal("/api/v10/x"));
        assert!(!is_portal("/ocsp"));
        assert!(is_relying_party("/ocsp"));
        assert!(is_relying_party("/ocsp/MEMwQT"));
        assert!(is_relying_party("/crl/nca_rsa_dev.crl"));
        assert!(!is_relying_party("/ocspx"));
        assert!(!is_relying_party("/ca/root.crt"));
    }
}
