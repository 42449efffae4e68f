//! Prometheus metrics: request counts and latency histograms per route, and the domain
//! counters (applications, certificates, refusals, revocations, OCSP, outbox).
//!
//! Owns: the registry and every label value in it. Must never: take a label value from the
//! request — each label comes from a closed set fixed in this binary (route patterns of the
//! route table, the standard HTTP methods or `other`, the numeric status, error codes and
//! enum names as `&'static str`), so no request, however invented, adds a series; a refused
//! request costs a counter increment and nothing else.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The process's metrics registry and the HTTP metrics in it.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    applications: IntCounterVec,
    certificates: IntCounterVec,
    rejections: IntCounterVec,
    revocations: IntCounterVec,
    ocsp_responses: IntCounterVec,
    ocsp_cache: IntCounterVec,
    ocsp_signing: prometheus::Histogram,
    outbox_depth: prometheus::IntGaugeVec,
    outbox_attempts: IntCounterVec,
    root_crl_expiry: prometheus::IntGauge,
    crl: CrlGauges,
    group_commits: prometheus::IntCounter,
    grouped_writes: prometheus::IntCounter,
    /// Two scrapes at once must not both add the same difference.
    groups_synced: std::sync::Mutex<()>,
}

/// The issuing CA's CRL publication, as this instance sees it.
#[derive(Debug)]
struct CrlGauges {
    failing: prometheus::IntGauge,
    failures: prometheus::IntCounter,
    omitted_invalidity_dates: prometheus::IntGauge,
    expires_in: prometheus::IntGauge,
}

impl CrlGauges {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let failing = prometheus::IntGauge::new(
            "crl_publication_failing",
            "1 while this instance's attempts to publish the issuing CA's CRLs fail",
        )?;
        let failures = prometheus::IntCounter::new(
            "crl_publication_failures_total",
            "Failed attempts to publish the issuing CA's CRLs",
        )?;
        let omitted_invalidity_dates = prometheus::IntGauge::new(
            "crl_entries_without_invalidity_date",
            "Entries of the newest CRL listed without a stored invalidity date no CRL can carry (tamga crl check --repair)",
        )?;
        let expires_in = prometheus::IntGauge::new(
            "crl_expires_in_seconds",
            "Seconds until the newest full CRL's nextUpdate (negative: expired)",
        )?;
        registry.register(Box::new(failing.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(omitted_invalidity_dates.clone()))?;
        registry.register(Box::new(expires_in.clone()))?;
        Ok(CrlGauges {
            failing,
            failures,
            omitted_invalidity_dates,
            expires_in,
        })
    }
}

/// Label used for requests that matched no route, so unknown paths cannot blow up the
/// number of series.
pub(super) const UNMATCHED: &str = "unmatched";

/// The route patterns of the route table: the only values of the `route` label besides
/// [`UNMATCHED`].
const ROUTES: [&str; 17] = [
    "/api/v1/applications",
    "/api/v1/applications/{id}",
    "/api/v1/revocations",
    "/api/v1/openapi.json",
    "/cabinet/api/challenge",
    "/cabinet/api/login",
    "/cabinet/api/certificates",
    "/cabinet/api/revocations",
    "/cabinet/api/reissues",
    "/crl/{file}",
    "/ocsp",
    "/ocsp/",
    "/ocsp/{request:.*}",
    "/healthz",
    "/readyz",
    "/metrics",
    "/ca/{file}",
];

/// The `route` label of a matched pattern: one of [`ROUTES`], else `unmatched`.
fn route_label(pattern: Option<&str>) -> &'static str {
    pattern
        .and_then(|p| ROUTES.iter().find(|r| **r == p).copied())
        .unwrap_or(UNMATCHED)
}

/// The `method` label: a standard method's name, `other` for any extension method.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

impl Metrics {
    /// Create the registry with the HTTP metrics registered.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("tamga".to_owned()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route and method",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route", "method"],
        )?;
        let applications = IntCounterVec::new(
            Opts::new("applications_total", "Applications accepted, by outcome"),
            &["outcome"],
        )?;
        let certificates = IntCounterVec::new(
            Opts::new("certificates_issued_total", "Certificates issued, by kind"),
            &["kind"],
        )?;
        let rejections = IntCounterVec::new(
            Opts::new(
                "api_rejections_total",
                "API requests refused, by error code",
            ),
            &["code"],
        )?;
        let revocations = IntCounterVec::new(
            Opts::new(
                "revocations_total",
                "Revocations through the API, by reason",
            ),
            &["reason"],
        )?;
        let ocsp_responses = IntCounterVec::new(
            Opts::new(
                "ocsp_responses_total",
                "OCSP answers: per CertID status (good, revoked, unknown) or error status",
            ),
            &["status"],
        )?;
        let ocsp_cache = IntCounterVec::new(
            Opts::new(
                "ocsp_cache_total",
                "OCSP pre-signed response cache: hit, miss, degraded (served past its refresh point while the database is out of reach)",
            ),
            &["result"],
        )?;
        let ocsp_signing = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "ocsp_signing_seconds",
                "Time to build and sign one OCSP response",
            )
            .buckets(vec![
                0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05,
            ]),
        )?;
        registry.register(Box::new(ocsp_signing.clone()))?;
        let outbox_depth = prometheus::IntGaugeVec::new(
            Opts::new("outbox_messages", "Outbox rows by status"),
            &["status"],
        )?;
        registry.register(Box::new(outbox_depth.clone()))?;
        let outbox_attempts = IntCounterVec::new(
            Opts::new(
                "outbox_send_attempts_total",
                "E-mail send attempts by result (sent, failed, dead)",
            ),
            &["result"],
        )?;
        registry.register(Box::new(outbox_attempts.clone()))?;
        let root_crl_expiry = prometheus::IntGauge::new(
            "root_crl_expires_in_seconds",
            "Seconds until the published root CRL's nextUpdate (negative: expired)",
        )?;
        registry.register(Box::new(root_crl_expiry.clone()))?;
        let crl = CrlGauges::new(&registry)?;
        let group_commits = prometheus::IntCounter::new(
            "store_group_commits_total",
            "Shared write transactions committed (group commit: each holds the writes that arrived while the previous commit was in flight)",
        )?;
        registry.register(Box::new(group_commits.clone()))?;
        let grouped_writes = prometheus::IntCounter::new(
            "store_grouped_writes_total",
            "Writes committed in shared transactions; divided by store_group_commits_total, the writes per transaction",
        )?;
        registry.register(Box::new(grouped_writes.clone()))?;
        for metric in [
            &requests,
            &applications,
            &certificates,
            &rejections,
            &revocations,
            &ocsp_responses,
            &ocsp_cache,
        ] {
            registry.register(Box::new(metric.clone()))?;
        }
        registry.register(Box::new(latency.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            applications,
            certificates,
            rejections,
            revocations,
            ocsp_responses,
            ocsp_cache,
            ocsp_signing,
            outbox_depth,
            outbox_attempts,
            root_crl_expiry,
            crl,
            group_commits,
            grouped_writes,
            groups_synced: std::sync::Mutex::new(()),
        })
    }

    /// Bring the group-commit counters up to the store's own (read when metrics are rendered).
    pub fn store_groups(&self, stats: crate::store::GroupCommitStats) {
        let _synced = self
            .groups_synced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (counter, total) in [
            (&self.group_commits, stats.commits),
            (&self.grouped_writes, stats.writes),
        ] {
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    /// The registry, for other modules to add their metrics to.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Record one finished request. Every label is from a closed set: the route pattern
    /// (or `unmatched`), the method (or `other`), the status code (100–999, without an
    /// allocation).
    fn record(&self, route: &'static str, method: &'static str, status: StatusCode, seconds: f64) {
        self.requests
            .with_label_values(&[route, method, status.as_str()])
            .inc();
        self.latency
            .with_label_values(&[route, method])
            .observe(seconds);
    }

    /// Count an accepted application by its outcome (`issued`, `pending_review`).
    pub fn application(&self, outcome: &'static str) {
        self.applications.with_label_values(&[outcome]).inc();
    }

    /// Count an issued certificate by kind.
    pub fn certificate_issued(&self, kind: &'static str) {
        self.certificates.with_label_values(&[kind]).inc();
    }

    /// Count a refused request by its error code.
    pub fn rejection(&self, code: crate::error_code::ErrorCode) {
        self.rejections.with_label_values(&[code.as_str()]).inc();
    }

    /// Count a revocation by reason.
    pub fn revocation(&self, reason: &'static str) {
        self.revocations.with_label_values(&[reason]).inc();
    }

    /// Count an OCSP answer by status.
    pub fn ocsp_response(&self, status: &'static str) {
        self.ocsp_responses.with_label_values(&[status]).inc();
    }

    /// Count an OCSP cache `hit`, `miss`, or `degraded` (a valid answer past its refresh
    /// point, served while the database is out of reach).
    pub fn ocsp_cache(&self, result: &'static str) {
        self.ocsp_cache.with_label_values(&[result]).inc();
    }

    /// Observe the time one OCSP response took to sign.
    pub fn ocsp_signing(&self, seconds: f64) {
        self.ocsp_signing.observe(seconds);
    }

    /// Count one delivery round's outcomes.
    pub fn outbox_round(&self, sent: usize, failed: usize, dead: usize) {
        for (result, n) in [("sent", sent), ("failed", failed), ("dead", dead)] {
            if n > 0 {
                self.outbox_attempts
                    .with_label_values(&[result])
                    .inc_by(n as u64);
            }
        }
    }

    /// Set the outbox depth per status.
    pub fn outbox_depth(&self, depth: &[(String, i64)]) {
        for status in ["pending", "sent", "dead"] {
            let n = depth
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n);
            self.outbox_depth.with_label_values(&[status]).set(n);
        }
    }

    /// Seconds until the root CRL expires.
    pub fn root_crl_expires_in(&self, seconds: i64) {
        self.root_crl_expiry.set(seconds);
    }

    /// The issuing CA's CRL publication after an attempt (`failed`: this one failed).
    pub fn crl_publication(&self, health: &crate::crl::CrlHealth, failed: bool) {
        if failed {
            self.crl.failures.inc();
        }
        self.crl
            .failing
            .set(i64::from(health.failing_since.is_some()));
        self.crl
            .omitted_invalidity_dates
            .set(i64::try_from(health.omitted_invalidity_dates()).unwrap_or(i64::MAX));
    }

    /// Seconds until the newest full CRL expires.
    pub fn crl_expires_in(&self, seconds: i64) {
        self.crl.expires_in.set(seconds);
    }

    /// Everything in Prometheus text exposition format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// Middleware: time the request, count it under its route pattern and write its access line
/// (see [`super::access`]).
pub async fn observe(
    metrics: Arc<Metrics>,
    admission: Arc<super::Admission>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let route = route_label(req.match_pattern().as_deref());
    let method = method_label(req.method());
    let response = next.call(req).await;
    let elapsed = started.elapsed();
    let (status, request) = match &response {
        Ok(r) => (r.status(), Some(r.request())),
        Err(e) => (e.as_response_error().status_code(), None),
    };
    metrics.record(route, method, status, elapsed.as_secs_f64());
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    super::access::log(&admission, request, route, method, status, micros);
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_closed_sets() {
        assert_eq!(route_label(Some("/healthz")), "/healthz");
        assert_eq!(
            route_label(Some("/api/v1/applications/{id}")),
            "/api/v1/applications/{id}"
        );
        assert_eq!(route_label(Some("/healthz/x")), UNMATCHED);
        assert_eq!(route_label(None), UNMATCHED);
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for invented in ["Q0000000", "get", "BREW", "PROPFIND"] {
            let method = Method::from_bytes(invented.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other", "{invented}");
        }
    }

    #[test]
    fn invented_methods_add_no_series() {
        let metrics = Metrics::new().unwrap();
        for i in 0..1000 {
            let method = Method::from_bytes(format!("Q{i:07}").as_bytes()).unwrap();
            metrics.record(
                route_label(Some("/healthz")),
                method_label(&method),
                StatusCode::METHOD_NOT_ALLOWED,
                0.001,
            );
            metrics.record(
                route_label(Some(&format!("/x{i}"))),
                method_label(&method),
                StatusCode::NOT_FOUND,
                0.001,
            );
        }
        let text = metrics.render().unwrap();
        let series = text
            .lines()
            .filter(|l| l.starts_with("tamga_http_requests_total{"))
            .count();
        assert_eq!(series, 2, "{text}");
        assert!(text.contains(
            r#"tamga_http_requests_total{method="other",route="/healthz",status="405"} 1000"#
        ));
        assert!(text.contains(
            r#"tamga_http_requests_total{method="other",route="unmatched",status="404"} 1000"#
        ));
    }
}
