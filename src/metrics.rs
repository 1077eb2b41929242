//! Prometheus metrics, served at `/metrics` on the admin listener. One process-wide set
//! (`metrics()`), counted where things happen; every label has a bounded set of values: tenant
//! ids, route patterns, status codes, OAuth error codes, AADSTS codes, fixed outcome names.

use std::sync::OnceLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub(crate) struct Metrics {
    registry: Registry,
    /// HTTP requests by tenant, route and status.
    pub(crate) requests: IntCounterVec,
    /// HTTP request latency by tenant and route.
    pub(crate) request_seconds: HistogramVec,
    /// Clients registered, by tenant.
    pub(crate) registrations: IntCounterVec,
    /// Requests refused by a rate limit, by tenant and limit (`address`, `tenant`,
    /// `cimd_address`).
    pub(crate) rate_limited: IntCounterVec,
    /// Logins by tenant and outcome (`started`, `completed`, or the OAuth error of a failure).
    pub(crate) logins: IntCounterVec,
    /// Refresh grants by tenant and outcome (`ok`, or the OAuth error).
    pub(crate) refreshes: IntCounterVec,
    /// Refresh tokens or codes used twice, by tenant.
    pub(crate) reuse_detected: IntCounterVec,
    /// Refresh families revoked, by tenant.
    pub(crate) family_revocations: IntCounterVec,
    /// Calls to the IdP's token endpoint by tenant and call (`code`, `refresh`).
    pub(crate) upstream_seconds: HistogramVec,
    /// The IdP's refusals by tenant, call and code (the AADSTS code for Entra, else the OAuth
    /// error; `unreachable` when it did not answer).
    pub(crate) upstream_errors: IntCounterVec,
    /// Client metadata document resolutions by tenant and outcome (`fetched`, `cache_hit`,
    /// `refused`, `remembered`, `busy`, `rate_limited`).
    pub(crate) cimd: IntCounterVec,
    /// 1 while a tenant's IdP is discovered (or built in), else 0.
    pub(crate) upstream_up: IntGaugeVec,
    /// Reloads of the tenant files by outcome (`applied`, `refused`).
    pub(crate) tenant_reloads: IntCounterVec,
    /// How long each flush of the store to disk took (one flush covers many writes).
    pub(crate) store_flush_seconds: Histogram,
    /// The store's size on disk, read when `/metrics` is scraped.
    pub(crate) store_bytes: IntGauge,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    registry
        .register(Box::new(c.clone()))
        .unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    c
}

/// Seconds, from a millisecond to ten seconds.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )
    .unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    registry
        .register(Box::new(h.clone()))
        .unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    h
}

impl Metrics {
    fn new() -> Self {
        let r = Registry::new();
        let upstream_up = IntGaugeVec::new(
            Opts::new(
                "dcr_shim_upstream_up",
                "1 while the tenant's IdP is discovered or built in, else 0",
            ),
            &["tenant"],
        )
        .unwrap_or_else(|e| unreachable!("metric: {e}"));
        r.register(Box::new(upstream_up.clone()))
            .unwrap_or_else(|e| unreachable!("metric: {e}"));
        let store_bytes = IntGauge::new("dcr_shim_store_size_bytes", "the store's size on disk")
            .unwrap_or_else(|e| unreachable!("metric: {e}"));
        r.register(Box::new(store_bytes.clone()))
            .unwrap_or_else(|e| unreachable!("metric: {e}"));
        let store_flush_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "dcr_shim_store_flush_duration_seconds",
                "flushes of the store to disk (each covers every write made before it)",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .unwrap_or_else(|e| unreachable!("metric: {e}"));
        r.register(Box::new(store_flush_seconds.clone()))
            .unwrap_or_else(|e| unreachable!("metric: {e}"));
        Self {
            requests: counter(
                &r,
                "dcr_shim_http_requests_total",
                "HTTP requests",
                &["tenant", "route", "status"],
            ),
            request_seconds: histogram(
                &r,
                "dcr_shim_http_request_duration_seconds",
                "HTTP request latency",
                &["tenant", "route"],
            ),
            registrations: counter(
                &r,
                "dcr_shim_registrations_total",
                "clients registered",
                &["tenant"],
            ),
            rate_limited: counter(
                &r,
                "dcr_shim_rate_limited_total",
                "requests refused by a rate limit",
                &["tenant", "limit"],
            ),
            logins: counter(
                &r,
                "dcr_shim_logins_total",
                "logins started, completed and failed (by OAuth error)",
                &["tenant", "outcome"],
            ),
            refreshes: counter(
                &r,
                "dcr_shim_refreshes_total",
                "refresh grants by outcome",
                &["tenant", "outcome"],
            ),
            reuse_detected: counter(
                &r,
                "dcr_shim_reuse_detected_total",
                "refresh tokens or codes used twice",
                &["tenant"],
            ),
            family_revocations: counter(
                &r,
                "dcr_shim_family_revocations_total",
                "refresh families revoked",
                &["tenant"],
            ),
            upstream_seconds: histogram(
                &r,
                "dcr_shim_upstream_call_duration_seconds",
                "calls to the IdP's token endpoint",
                &["tenant", "call"],
            ),
            upstream_errors: counter(
                &r,
                "dcr_shim_upstream_errors_total",
                "the IdP's refusals by code",
                &["tenant", "call", "code"],
            ),
            cimd: counter(
                &r,
                "dcr_shim_cimd_resolutions_total",
                "client metadata document resolutions by outcome",
                &["tenant", "outcome"],
            ),
            tenant_reloads: counter(
                &r,
                "dcr_shim_tenant_reloads_total",
                "reloads of the tenant files (refused: a file was invalid and the old set stayed)",
                &["outcome"],
            ),
            store_flush_seconds,
            store_bytes,
            upstream_up,
            registry: r,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The request counter and latency histogram of one tenant, route and status.
type RequestSeries = (prometheus::IntCounter, prometheus::Histogram);

thread_local! {
    /// Each worker thread's handles of the request metrics, by tenant, route and status: the
    /// labelled series are looked up once per thread instead of hashing three strings per
    /// request.
    static REQUEST_SERIES: std::cell::RefCell<std::collections::HashMap<(usize, usize, u16), RequestSeries>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Counts one HTTP request and its latency. `tenant` is a known tenant (they live as long as
/// the process, so the pointer names it) and `route` one of the fixed route labels.
pub(crate) fn observe_request(
    tenant: Option<&std::sync::Arc<crate::config::Tenant>>,
    route: &'static str,
    status: u16,
    seconds: f64,
) {
    let key = (
        tenant.map_or(0, |t| std::sync::Arc::as_ptr(t) as usize),
        route.as_ptr() as usize,
        status,
    );
    REQUEST_SERIES.with(|cache| {
        let mut cache = cache.borrow_mut();
        let (count, latency) = cache.entry(key).or_insert_with(|| {
            let m = metrics();
            let tenant = tenant.map_or("-", |t| t.id.as_str());
            let status = status.to_string();
            (
                m.requests.with_label_values(&[tenant, route, &status]),
                m.request_seconds.with_label_values(&[tenant, route]),
            )
        });
        count.inc();
        latency.observe(seconds);
    });
}

/// The process's metrics.
pub(crate) fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}
