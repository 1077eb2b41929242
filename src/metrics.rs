//! Prometheus metrics, served at `/metrics` on the admin listener. One process-wide set
//! (`metrics()`), counted where things happen; every label has a bounded set of values: tenant
//! ids, route patterns, status codes, OAuth error codes, AADSTS codes, fixed outcome names.
//!
//! Every tenant's counters that alerts watch are created at zero when the tenant is loaded
//! (`initialize_tenant`): a series that first appears at 1 is invisible to `increase()`, so the
//! first replay or the first IdP failure would otherwise raise no alert.

use std::sync::OnceLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub(crate) struct Metrics {
    registry: Registry,
    /// HTTP requests by tenant, route and status.
    pub(crate) requests: IntCounterVec,
    /// HTTP request latency by tenant, route and status.
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
    /// Client credentials grants by tenant and outcome (`ok`, or the OAuth error).
    pub(crate) client_credentials: IntCounterVec,
    /// Workload token (JWT-bearer) grants by tenant and outcome (`ok`, or the OAuth error).
    pub(crate) workload_grants: IntCounterVec,
    /// Refresh tokens or codes used twice, by tenant.
    pub(crate) reuse_detected: IntCounterVec,
    /// Refresh families revoked, by tenant.
    pub(crate) family_revocations: IntCounterVec,
    /// The IdP: its calls, its refusals, its state and its apps' credentials.
    pub(crate) upstream: UpstreamMetrics,
    /// Client metadata document resolutions by tenant and outcome (`fetched`, `cache_hit`,
    /// `refused`, `remembered`, `busy`, `rate_limited`).
    pub(crate) cimd: IntCounterVec,
    /// The store's failures, flushes and size.
    pub(crate) store: StoreMetrics,
    /// Reloads of the tenant files by outcome (`applied`, `refused`).
    pub(crate) tenant_reloads: IntCounterVec,
    /// The approval queue (`oauth/approval/`).
    pub(crate) approval: ApprovalMetrics,
    /// The gateway's calls (`gateway/`).
    pub(crate) gateway: GatewayMetrics,
    /// CPU, memory and file descriptors of this process, read when `/metrics` is scraped.
    process: ProcessGauges,
}

/// The IdP's side (`upstream/`).
pub(crate) struct UpstreamMetrics {
    /// Calls to the IdP's token endpoint by tenant and call (`code`, `refresh`).
    pub(crate) call_seconds: HistogramVec,
    /// The IdP's refusals by tenant, call and code (the AADSTS code for Entra, else the OAuth
    /// error; `unreachable` when it did not answer).
    pub(crate) errors: IntCounterVec,
    /// The IdP's refusals and failures by tenant and call, whatever the code: the series to
    /// alert on (created at zero), `errors` says which code.
    pub(crate) failures: IntCounterVec,
    /// 1 while a tenant's IdP is discovered (or built in), else 0.
    pub(crate) up: IntGaugeVec,
    /// When each app's certificate expires (Unix seconds), by tenant, app and kind.
    pub(crate) credential_expiry: IntGaugeVec,
}

impl UpstreamMetrics {
    fn register(r: &Registry) -> Self {
        Self {
            call_seconds: histogram(
                r,
                "dcr_shim_upstream_call_duration_seconds",
                "calls to the IdP's token endpoint",
                &["tenant", "call"],
            ),
            errors: counter(
                r,
                "dcr_shim_upstream_errors_total",
                "the IdP's refusals by code",
                &["tenant", "call", "code"],
            ),
            failures: counter(
                r,
                "dcr_shim_upstream_failures_total",
                "the IdP's refusals and failures, whatever the code",
                &["tenant", "call"],
            ),
            up: gauge(
                r,
                "dcr_shim_upstream_up",
                "1 while the tenant's IdP is discovered or built in, else 0",
                &["tenant"],
            ),
            credential_expiry: gauge(
                r,
                "dcr_shim_credential_expiry_timestamp_seconds",
                "when an app's credential stops being valid (Unix seconds); private_key_jwt certificates, set at every load of the tenant files",
                &["tenant", "app", "kind"],
            ),
        }
    }

    fn initialize_tenant(&self, tenant: &str) {
        for call in ["code", "refresh"] {
            self.failures.with_label_values(&[tenant, call]);
            self.errors
                .with_label_values(&[tenant, call, "unreachable"]);
        }
    }
}

/// The store (`store/`).
pub(crate) struct StoreMetrics {
    /// Store operations that failed, by kind of failure.
    pub(crate) errors: IntCounterVec,
    /// How long each flush of the store to disk took (one flush covers many writes).
    pub(crate) flush_seconds: Histogram,
    /// The store's size on disk, read when `/metrics` is scraped.
    pub(crate) bytes: IntGauge,
}

impl StoreMetrics {
    fn register(r: &Registry) -> Self {
        let errors = counter(
            r,
            "dcr_shim_store_errors_total",
            "store operations that failed: backend (I/O, database), unavailable (a timeout, no connection), corrupt (a record that cannot be read)",
            &["kind"],
        );
        for kind in STORE_ERROR_KINDS {
            errors.with_label_values(&[kind]);
        }
        let flush_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "dcr_shim_store_flush_duration_seconds",
                "flushes of the store to disk (each covers every write made before it)",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        );
        Self {
            errors,
            flush_seconds: registered(r, "dcr_shim_store_flush_duration_seconds", flush_seconds),
            bytes: registered(
                r,
                "dcr_shim_store_size_bytes",
                IntGauge::new("dcr_shim_store_size_bytes", "the store's size on disk"),
            ),
        }
    }
}

/// The approval queue (`oauth/approval/`).
pub(crate) struct ApprovalMetrics {
    /// Requests waiting for an administrator, by tenant.
    pub(crate) pending: IntGaugeVec,
    /// Sign-ins of clients that need an administrator, by tenant and outcome (`requested`: a
    /// new request queued, `repeated`: one already waiting, `queue_full`, `user_limit`: the
    /// user's own requests at their limit, `denied`: a denied client's authorization request).
    pub(crate) requests: IntCounterVec,
    /// Administrators' decisions by tenant and decision (`approved`, `denied`,
    /// `host_approved`, `host_denied`, `removed`: the request of a client deleted meanwhile).
    pub(crate) decisions: IntCounterVec,
    /// Registrations refused because the approval queue is full, by tenant.
    pub(crate) queue_full: IntCounterVec,
    /// Webhook notifications by tenant and outcome (`delivered`, `retried`, `failed`,
    /// `dropped`: more waiting than the sender keeps).
    pub(crate) webhooks: IntCounterVec,
}

/// The gateway's calls (`gateway/`, `http/gateway.rs`). The `tool` label is the name a
/// `tools/call` names, kept for the first `MAX_TOOL_LABELS` names per resource and `other`
/// after them, so that clients cannot grow the series without bound.
pub(crate) struct GatewayMetrics {
    /// Calls by tenant, resource, MCP method (a fixed set, else `other`) and outcome.
    pub(crate) calls: IntCounterVec,
    /// `tools/call` calls by tenant, resource, tool and outcome.
    pub(crate) tool_calls: IntCounterVec,
    /// Time until the MCP server's answer starts (its status and headers), by tenant,
    /// resource and method.
    pub(crate) answer_seconds: HistogramVec,
}

impl GatewayMetrics {
    fn register(r: &Registry) -> Self {
        Self {
            calls: counter(
                r,
                "dcr_shim_gateway_calls_total",
                "calls to gateway resources by MCP method and outcome (passed, refused_token, refused_origin, refused_scope, refused_rule, refused_session, malformed, rate_limited, unreachable, timeout, wrong_type, unavailable)",
                &["tenant", "resource", "method", "outcome"],
            ),
            tool_calls: counter(
                r,
                "dcr_shim_gateway_tool_calls_total",
                "tools/call calls to gateway resources by tool and outcome",
                &["tenant", "resource", "tool", "outcome"],
            ),
            answer_seconds: histogram(
                r,
                "dcr_shim_gateway_answer_duration_seconds",
                "time until an MCP server behind the gateway starts its answer",
                &["tenant", "resource", "method"],
            ),
        }
    }
}

/// The `outcome` label values of `ApprovalMetrics::requests`.
const APPROVAL_OUTCOMES: [&str; 5] = [
    "requested",
    "repeated",
    "queue_full",
    "user_limit",
    "denied",
];

/// The `decision` label values of `ApprovalMetrics::decisions`.
const APPROVAL_DECISIONS: [&str; 5] = [
    "approved",
    "denied",
    "host_approved",
    "host_denied",
    "removed",
];

/// The `outcome` label values of `ApprovalMetrics::webhooks`.
const WEBHOOK_OUTCOMES: [&str; 4] = ["delivered", "retried", "failed", "dropped"];

impl ApprovalMetrics {
    fn register(r: &Registry) -> Self {
        Self {
            pending: gauge(
                r,
                "dcr_shim_approval_pending",
                "requests waiting for an administrator's approval, counted at each change and each sweep",
                &["tenant"],
            ),
            requests: counter(
                r,
                "dcr_shim_approval_requests_total",
                "sign-ins of clients waiting for an administrator, by outcome (requested, repeated, queue_full, user_limit), and authorization requests of denied clients (denied)",
                &["tenant", "outcome"],
            ),
            decisions: counter(
                r,
                "dcr_shim_approval_decisions_total",
                "administrators' decisions (approved, denied, host_approved, host_denied; removed: the request of a client deleted meanwhile)",
                &["tenant", "decision"],
            ),
            queue_full: counter(
                r,
                "dcr_shim_approval_queue_full_total",
                "new clients refused because the approval queue is full",
                &["tenant"],
            ),
            webhooks: counter(
                r,
                "dcr_shim_approval_webhooks_total",
                "approval webhook notifications by outcome (delivered, retried, failed, dropped)",
                &["tenant", "outcome"],
            ),
        }
    }

    fn initialize_tenant(&self, tenant: &str) {
        self.queue_full.with_label_values(&[tenant]);
        for outcome in APPROVAL_OUTCOMES {
            self.requests.with_label_values(&[tenant, outcome]);
        }
        for decision in APPROVAL_DECISIONS {
            self.decisions.with_label_values(&[tenant, decision]);
        }
        for outcome in WEBHOOK_OUTCOMES {
            self.webhooks.with_label_values(&[tenant, outcome]);
        }
    }
}

/// The `process_*` series every Prometheus exporter has, read from `/proc/self` at each
/// scrape. Read by hand: the `prometheus` crate's collector brings `procfs`, and with it a
/// second version of `rustix` next to the one the rest of the tree uses.
struct ProcessGauges {
    cpu_seconds: prometheus::Gauge,
    resident_bytes: IntGauge,
    virtual_bytes: IntGauge,
    open_fds: IntGauge,
    max_fds: IntGauge,
}

impl ProcessGauges {
    fn register(r: &Registry) -> Self {
        let int = |name: &str, help: &str| registered(r, name, IntGauge::new(name, help));
        let cpu_seconds = registered(
            r,
            "process_cpu_seconds_total",
            prometheus::Gauge::new(
                "process_cpu_seconds_total",
                "user and system CPU time spent, in seconds",
            ),
        );
        Self {
            cpu_seconds,
            resident_bytes: int("process_resident_memory_bytes", "resident memory, in bytes"),
            virtual_bytes: int("process_virtual_memory_bytes", "virtual memory, in bytes"),
            open_fds: int("process_open_fds", "open file descriptors"),
            max_fds: int("process_max_fds", "the limit on open file descriptors"),
        }
    }

    /// Reads `/proc/self` (Linux); elsewhere the gauges stay at zero.
    fn refresh(&self) {
        // Clock ticks per second of /proc's CPU times: USER_HZ, 100 on every Linux ABI.
        const TICKS_PER_SECOND: f64 = 100.0;
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name (which may hold spaces), from field 3 on.
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let fields: Vec<&str> = after.split_whitespace().collect();
            let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
            if let (Some(utime), Some(stime)) = (field(14), field(15)) {
                self.cpu_seconds
                    .set((utime + stime) as f64 / TICKS_PER_SECOND);
            }
            if let Some(vsize) = field(23) {
                self.virtual_bytes.set(vsize as i64);
            }
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            let rss_kib = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok());
            if let Some(kib) = rss_kib {
                self.resident_bytes.set(kib * 1024);
            }
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(fds.count() as i64);
        }
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
            let soft = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<i64>().ok());
            if let Some(max) = soft {
                self.max_fds.set(max);
            }
        }
    }
}

/// `metric`, registered under `name`. The names and labels are this file's constants, so a
/// failure is a bug caught by the first test that starts the server.
fn registered<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    name: &str,
    metric: prometheus::Result<M>,
) -> M {
    let metric = metric.unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    registry
        .register(Box::new(metric.clone()))
        .unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    metric
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(
        registry,
        name,
        IntCounterVec::new(Opts::new(name, help), labels),
    )
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    registered(
        registry,
        name,
        IntGaugeVec::new(Opts::new(name, help), labels),
    )
}

/// The `limit` label values of `rate_limited`.
pub(crate) const RATE_LIMITS: [&str; 8] = [
    "address",
    "tenant",
    "cimd_address",
    "login_address",
    "login_network",
    "login_browser",
    "gateway_user",
    "gateway_client",
];

/// The kinds of store failure (`store/counted.rs`), counted from zero.
const STORE_ERROR_KINDS: [&str; 3] = ["backend", "unavailable", "corrupt"];

/// The `outcome` label values of `cimd`.
const CIMD_OUTCOMES: [&str; 6] = [
    "fetched",
    "cache_hit",
    "refused",
    "remembered",
    "busy",
    "rate_limited",
];

/// Seconds, from a millisecond to ten seconds.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    registered(registry, name, HistogramVec::new(opts, labels))
}

impl Metrics {
    fn new() -> Self {
        let r = Registry::new();
        gauge(
            &r,
            "dcr_shim_build_info",
            "1, labelled with the version and the commit this binary was built from",
            &["version", "commit"],
        )
        .with_label_values(&[env!("CARGO_PKG_VERSION"), env!("DCR_SHIM_COMMIT")])
        .set(1);
        let outcomes = |name: &str, help: &str| counter(&r, name, help, &["tenant", "outcome"]);
        Self {
            upstream: UpstreamMetrics::register(&r),
            store: StoreMetrics::register(&r),
            approval: ApprovalMetrics::register(&r),
            gateway: GatewayMetrics::register(&r),
            process: ProcessGauges::register(&r),
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
                &["tenant", "route", "status"],
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
            logins: outcomes(
                "dcr_shim_logins_total",
                "logins started, completed and failed (by OAuth error)",
            ),
            refreshes: outcomes("dcr_shim_refreshes_total", "refresh grants by outcome"),
            client_credentials: outcomes(
                "dcr_shim_client_credentials_total",
                "client credentials grants by outcome",
            ),
            workload_grants: outcomes(
                "dcr_shim_workload_grants_total",
                "workload identity (JWT-bearer) grants by outcome",
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
            cimd: outcomes(
                "dcr_shim_cimd_resolutions_total",
                "client metadata document resolutions by outcome",
            ),
            tenant_reloads: counter(
                &r,
                "dcr_shim_tenant_reloads_total",
                "reloads of the tenant files (refused: a file was invalid and the old set stayed)",
                &["outcome"],
            ),
            registry: r,
        }
    }

    /// Creates `tenant`'s series at zero (at start and on every reload), so that alerts on
    /// `increase()` see their first event. Counters whose label values are open (AADSTS codes,
    /// OAuth errors) get their fixed ones only.
    pub(crate) fn initialize_tenant(&self, tenant: &str) {
        for c in [
            &self.registrations,
            &self.reuse_detected,
            &self.family_revocations,
        ] {
            c.with_label_values(&[tenant]);
        }
        for limit in RATE_LIMITS {
            self.rate_limited.with_label_values(&[tenant, limit]);
        }
        for outcome in ["started", "completed"] {
            self.logins.with_label_values(&[tenant, outcome]);
        }
        self.refreshes.with_label_values(&[tenant, "ok"]);
        for outcome in CIMD_OUTCOMES {
            self.cimd.with_label_values(&[tenant, outcome]);
        }
        self.upstream.initialize_tenant(tenant);
        self.approval.initialize_tenant(tenant);
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        self.process.refresh();
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The request counter and latency histogram of one tenant, route and status, with the tenant
/// they were made for: held here, its address cannot be reused by a tenant a reload makes.
type RequestSeries = (
    prometheus::IntCounter,
    prometheus::Histogram,
    Option<std::sync::Arc<crate::config::Tenant>>,
);

thread_local! {
    /// Each worker thread's handles of the request metrics, by tenant, route and status: the
    /// labelled series are looked up once per thread instead of hashing three strings per
    /// request.
    static REQUEST_SERIES: std::cell::RefCell<std::collections::HashMap<(usize, usize, u16), RequestSeries>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Counts one HTTP request and its latency. `tenant` is a known tenant (the cache holds it, so
/// its pointer names it for as long as the entry lives) and `route` one of the fixed route
/// labels.
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
        if !cache.contains_key(&key) {
            // A tenant that only this cache still holds was replaced by a reload: its entries
            // go, so that the cache does not grow with every reload.
            cache.retain(|_, (_, _, t)| {
                t.as_ref()
                    .is_none_or(|t| std::sync::Arc::strong_count(t) > 1)
            });
        }
        let (count, latency, _) = cache.entry(key).or_insert_with(|| {
            let m = metrics();
            let id = tenant.map_or("-", |t| t.id.as_str());
            let status = status.to_string();
            (
                m.requests.with_label_values(&[id, route, &status]),
                m.request_seconds.with_label_values(&[id, route, &status]),
                tenant.cloned(),
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
