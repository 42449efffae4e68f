//! The HTTP interface: actix-web routes for the portal API (`/api/v1/…`), the citizen's pages
//! (`/enroll…`, [`pages`]), operations (`/healthz`, `/readyz`, `/metrics`) and the public
//! endpoints (`/ca/…`, `/crl/…`, `/ocsp`).
//!
//! Owns: routing, TLS on the listener and the portal's client certificates ([`tls`]), the
//! per-address flood guard and connection cap ([`gate`]), request size and time limits (a
//! declared body the route will not take is refused before `100 Continue`), the one mapping
//! from errors to `application/problem+json` ([`problem`]), conditional GET of OCSP answers
//! and CRLs (`conditional`), per-route metrics, the access log (`access`: `info` for the
//! portal and operations routes, `debug` for the relying parties'), and the server's
//! lifecycle (graceful shutdown on SIGTERM/SIGINT). Must never: touch the database or keys
//! directly — it calls the store and the authorities through their APIs, on the
//! blocking thread pool.

mod access;
mod body;
mod cabinet;
mod conditional;
mod gate;
mod limits;
mod metrics;
pub(crate) mod ocsp;
mod openapi;
mod ops;
mod pages;

/// Whether this build carries the text of the user agreement `version` for the citizen's pages
/// (in every language). Without it the pages cannot show the agreement; the API is unaffected.
pub fn pages_have_agreement(version: &str) -> bool {
    crate::vocab::Language::ALL
        .iter()
        .all(|lang| pages::assets::agreement(version, *lang).is_some())
}
pub(crate) mod portal;
pub mod problem;
mod public;
mod resources;
mod routes;
pub mod tls;
pub mod types;
mod upkeep;

use std::sync::Arc;
use std::time::Duration;

use actix_http::body::BoxBody;
use actix_http::{HttpServiceBuilder, Request};
use actix_service::{fn_service, map_config, ServiceFactory};
use actix_web::dev::{AppConfig, Extensions};
use actix_web::{middleware, web, App, ResponseError};

pub use gate::Admission;
pub use metrics::Metrics;
pub use portal::revocation_json;
pub use public::CrlCache;
pub(crate) use upkeep::keep_roots_fresh;

use crate::ca::{Hierarchy, Issuer, Issuers};
use crate::clock::Clock;
use crate::config::ValidConfig;
use crate::crl::CrlPublisher;
use crate::digital_id::TrustedKeys;
use crate::ra::Registrar;
use crate::store::Store;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The CA hierarchy of `[ca]`'s issuer (the first of `issuers`).
    pub hierarchy: Arc<Hierarchy>,
    /// The checked configuration.
    pub config: Arc<ValidConfig>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// The trusted Digital ID keys.
    pub trusted_keys: Arc<TrustedKeys>,
    /// `[ca]`'s issuing CA (the first of `issuers`).
    pub issuer: Arc<Issuer>,
    /// Every issuing CA this instance operates (`[ca]` and `[[ca.issuers]]`).
    pub issuers: Arc<Issuers>,
    /// The registration authority.
    pub registrar: Registrar,
    /// The CRL publisher of every issuer, in the order of `issuers`.
    pub crls: Arc<Vec<CrlPublisher>>,
    /// The newest CRLs read from the database.
    pub crl_cache: Arc<CrlCache>,
    /// The OCSP responders of every issuer.
    pub ocsp: Arc<crate::ocsp::Responders>,
    /// The outbox's delivery.
    pub mailer: Arc<crate::notify::Mailer>,
    /// Client certificates and the flood guard (one per process, shared by every worker).
    pub admission: Arc<Admission>,
}

/// Run a request's database work on the blocking pool. If it has not finished within
/// `[database] request_timeout_ms` the request is answered `503 database_unavailable` at once;
/// the work itself runs on (a thread cannot be cancelled) and, being one transaction, either
/// commits whole or not at all.
pub(crate) async fn blocking<T, E>(
    state: &AppState,
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, problem::ApiError>
where
    T: Send + 'static,
    E: Into<problem::ApiError> + Send + 'static,
{
    let ms = state.config.get().database.request_timeout_ms;
    let deadline = Duration::from_millis(u64::from(ms));
    match actix_web::rt::time::timeout(deadline, web::block(work)).await {
        Err(_) => Err(problem::ApiError::DatabaseTimeout(ms)),
        Ok(Err(e)) => Err(problem::ApiError::Internal(format!("blocking pool: {e}"))),
        Ok(Ok(result)) => result.map_err(Into::into),
    }
}

/// Register every route on an actix `App` (also used by in-process tests).
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        let admission = Arc::clone(&state.admission);
        cfg.app_data(web::Data::new(state))
            .app_data(web::PayloadConfig::new(body::DEFAULT_BODY_LIMIT))
            .configure(routes::configure(admission));
    }
}

/// Headers of a request must arrive in full within this long (actix-http answers 408 and
/// closes the connection).
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// After a response that closes its connection, how long the client may still send.
const LINGER: Duration = Duration::from_secs(1);

/// The HTTP settings both listeners share: timeouts, draining idle connections at shutdown,
/// and the connection's admission (client certificate, connections per address).
fn http_builder<T, S>(
    local: std::net::SocketAddr,
    drain: actix_server::GracefulShutdownSignal,
    admission: Arc<Admission>,
) -> HttpServiceBuilder<T, S>
where
    T: 'static,
    S: ServiceFactory<Request, Config = ()>,
    S::Error: Into<actix_http::Response<BoxBody>> + 'static,
    S::InitError: std::fmt::Debug,
    <S::Service as actix_service::Service<Request>>::Future: 'static,
{
    HttpServiceBuilder::default()
        .client_request_timeout(HEAD_TIMEOUT)
        .client_disconnect_timeout(LINGER)
        .local_addr(local)
        .graceful_shutdown_signal(move || {
            let drain = drain.clone();
            async move { drain.notified().await }
        })
        .on_connect_ext(move |io: &T, extensions: &mut Extensions| {
            admission.connected(io, extensions)
        })
}

/// `Expect: 100-continue` answered by [`Admission::expect_continue`]: `100 Continue` only for
/// a body the route will take; otherwise the refusal, which keeps the unread body until it is
/// written so that the connection closes after it.
fn expectation(
    admission: Arc<Admission>,
) -> impl ServiceFactory<
    Request,
    Config = (),
    Response = Request,
    Error = actix_http::Response<BoxBody>,
    InitError = (),
> + Clone {
    fn_service(move |mut req: Request| {
        let checked = match admission.expect_continue(req.head()) {
            Ok(()) => Ok(req),
            Err(e) => {
                let payload = req.take_payload();
                let response: actix_http::Response<BoxBody> = e.error_response().into();
                Err(response.map_body(|_, body| BoxBody::new(body::KeepUnread::new(body, payload))))
            }
        };
        std::future::ready(checked)
    })
}

/// Serve HTTP (or HTTPS with `[server.tls]`) on the configured address until SIGTERM/SIGINT,
/// then finish in-flight requests (up to `[server] shutdown_timeout_secs`) and return.
///
/// The server is put together from actix-server and actix-http rather than actix-web's
/// `HttpServer`, which offers no way to answer `Expect: 100-continue` before `100 Continue`
/// is sent; the settings are `HttpServer`'s, with HTTP/1.1 only (as before).
pub async fn run(state: AppState) -> std::io::Result<()> {
    let config = Arc::clone(&state.config);
    let server_cfg = &config.get().server;
    let address = config.bind();
    // The error names the address: "Address already in use" alone does not say which.
    let listener = std::net::TcpListener::bind(address)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {address}: {e}")))?;
    let local = listener.local_addr()?;
    let mut builder =
        actix_server::Server::build().shutdown_timeout(u64::from(server_cfg.shutdown_timeout_secs));
    if server_cfg.workers > 0 {
        builder = builder.workers(server_cfg.workers as usize);
    }
    let drain = builder.graceful_shutdown_signal();
    let admission = Arc::clone(&state.admission);
    let state_for_tasks = state.clone();
    let app = move || {
        let metrics = Arc::clone(&state.metrics);
        let admission = Arc::clone(&state.admission);
        let app = App::new()
            .wrap(gate::flood(Arc::clone(&state.admission)))
            .wrap(middleware::from_fn(body::keep_unread))
            .wrap(middleware::from_fn(move |req, next| {
                metrics::observe(Arc::clone(&metrics), Arc::clone(&admission), req, next)
            }))
            .configure(configure(state.clone()));
        map_config(app, |()| AppConfig::default())
    };
    let scheme = if server_cfg.tls.enabled() {
        let files = tls::TlsFiles::load(&server_cfg.tls)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", e.key())))?;
        let acceptor = files
            .acceptor()
            .map_err(|e| std::io::Error::other(format!("{}: {e}", e.key())))
            .and_then(tls::http1_acceptor)?;
        builder = builder.listen("tamga-https", listener, move || {
            http_builder(local, drain.clone(), Arc::clone(&admission))
                .expect(expectation(Arc::clone(&admission)))
                .finish(app())
                .openssl(acceptor.clone())
        })?;
        if files.client_auth() {
            "https, client certificates for /api/v1"
        } else {
            "https"
        }
    } else {
        builder = builder.listen("tamga-http", listener, move || {
            http_builder(local, drain.clone(), Arc::clone(&admission))
                .expect(expectation(Arc::clone(&admission)))
                .finish(app())
                .tcp()
        })?;
        "http"
    };
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    upkeep::spawn_maintenance(state_for_tasks);
    tracing::info!(addr = %local, scheme, public_url = config.public_url(), "listening");
    builder.run().await?;
    tracing::info!("server stopped");
    Ok(())
}
