//! OpenTelemetry traces: a span per request (route, tenant, client, status) with child spans
//! for each IdP call, client metadata document fetch and store operation, exported over OTLP
//! (HTTP, protobuf) when the standard `OTEL_*` environment variables ask for it, and off
//! otherwise (nothing is built, and the spans below cost what a disabled `tracing` span costs).
//!
//! Turned on by `OTEL_EXPORTER_OTLP_ENDPOINT` (the collector's base URL, `/v1/traces` appended)
//! or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL); turned off again by
//! `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. Headers, timeout, sampler, batch
//! sizes and resource attributes follow the other `OTEL_*` variables as the SDK reads them.
//!
//! A request's span continues the caller's trace only when a trusted proxy
//! (`--trusted-proxies`) forwarded its W3C `traceparent`: anyone else could otherwise attach
//! the shim's spans to a trace of their choosing. Calls to the IdP carry the span's
//! `traceparent`; fetches of strangers' documents do not.

use std::sync::OnceLock;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::DynFilterFn;
use tracing_subscriber::registry::LookupSpan;

/// The most of a collector's answer that is read.
const MAX_COLLECTOR_ANSWER: usize = 64 * 1024;

/// The provider while exporting: flushed and shut down by `shutdown`.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans are exported (decides whether request spans carry the OpenTelemetry fields).
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// What the environment asks for: `Ok(None)` when tracing is off.
fn wanted() -> Result<Option<()>, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    match var("OTEL_TRACES_EXPORTER").as_deref() {
        None | Some("otlp") => {}
        Some("none") => return Ok(None),
        Some(other) => {
            return Err(format!(
                "OTEL_TRACES_EXPORTER={other}: dcr-shim exports traces over OTLP only (otlp, or none to turn them off)"
            ));
        }
    }
    if var("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
        && var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
    {
        return Ok(None);
    }
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Some(protocol) = var(name) {
            if protocol != "http/protobuf" {
                return Err(format!(
                    "{name}={protocol}: dcr-shim exports OTLP over HTTP with protobuf only; set it to http/protobuf and point the endpoint at the collector's HTTP port (4318 by default)"
                ));
            }
            break;
        }
    }
    Ok(Some(()))
}

/// The layer that exports spans, when the environment turns tracing on; an error names the
/// variable to fix. Must be called inside the Tokio runtime that will carry the exports.
pub fn layer<S>() -> Result<Option<impl Layer<S>>, String>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    if wanted()?.is_none() {
        return Ok(None);
    }
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_http_client(ExportClient::new()?)
        .build()
        .map_err(|e| format!("OpenTelemetry exporter: {e}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder().with_attribute(
        opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
    );
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("dcr-shim");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("dcr-shim");
    let _ = PROVIDER.set(provider);
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    // The shim's own spans: requests and IdP calls at info, and store operations (debug) only
    // inside another exported span, so the sweeper's background work makes no traces. Events at
    // warn and above become span events; nothing from the exporter itself is fed back.
    let filter = DynFilterFn::new(|meta, cx| {
        if meta.target().starts_with("opentelemetry") {
            return false;
        }
        if meta.is_span() {
            return meta.target().starts_with("dcr_shim")
                && (*meta.level() <= tracing::Level::INFO
                    || (meta.target().starts_with("dcr_shim::store")
                        && cx.lookup_current().is_some()));
        }
        // Only the shim's own warnings: another crate's may carry what only the log should.
        meta.target().starts_with("dcr_shim") && *meta.level() <= tracing::Level::WARN
    });
    Ok(Some(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(filter),
    ))
}

/// Sends the spans still buffered and stops exporting (at the end of `serve`).
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.shutdown()
    {
        tracing::warn!(error = %e, "OpenTelemetry: the last spans could not be exported");
    }
}

/// Continues the trace a trusted proxy names in `headers` (W3C `traceparent`, `tracestate`)
/// in `span`, which must not have started a child yet.
pub(crate) fn continue_trace(span: &tracing::Span, headers: &actix_web::http::header::HeaderMap) {
    struct Headers<'a>(&'a actix_web::http::header::HeaderMap);
    impl Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(|k| k.as_str()).collect()
        }
    }
    let cx = TraceContextPropagator::new().extract(&Headers(headers));
    let _ = span.set_parent(cx);
}

/// A span for one outbound call (`name`, e.g. "idp token"), when spans are exported; else a
/// disabled span, so that log lines keep their shape.
pub(crate) fn client_span(name: &'static str, method: &'static str, url: &str) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    // The URL without its query: none of these carry secrets there today, and none may.
    let url = url.split('?').next().unwrap_or_default();
    tracing::info_span!("outbound", otel.name = name, otel.kind = "client", http.request.method = method,
        url.full = url, error.type = tracing::field::Empty, otel.status_code = tracing::field::Empty)
}

/// Marks `span` failed with `error` (the metric's code: an AADSTS number, `unreachable`…).
pub(crate) fn record_outcome(span: &tracing::Span, error: Option<&str>) {
    if let Some(code) = error {
        span.record("error.type", code);
        span.record("otel.status_code", "ERROR");
    }
}

/// Names the OAuth client on the current request's span.
pub(crate) fn record_client(client_id: Option<&str>) {
    if let Some(id) = client_id.filter(|_| enabled()) {
        tracing::Span::current().record("client_id", id);
    }
}

/// `request` with the current span's `traceparent` (and `tracestate`), for a call to the IdP.
pub(crate) fn propagate(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    if !enabled() {
        return request;
    }
    struct Headers(Vec<(String, String)>);
    impl Injector for Headers {
        fn set(&mut self, key: &str, value: String) {
            self.0.push((key.to_owned(), value));
        }
    }
    let mut headers = Headers(Vec::new());
    TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut headers);
    headers
        .0
        .into_iter()
        .fold(request, |r, (k, v)| r.header(k, v))
}

/// The exporter's HTTP client: the shim's own reqwest (one HTTP stack in the binary, not a
/// second reqwest major version that the exporter's built-in client would bring). The batch
/// processor exports from a thread of its own, so each request runs on the Tokio runtime that
/// built the layer.
#[derive(Debug)]
struct ExportClient {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl ExportClient {
    fn new() -> Result<Self, String> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "OpenTelemetry: no Tokio runtime to export from".to_owned())?;
        // The OTLP timeout (milliseconds), as the exporter specification defines it.
        // A value that is not a number stops the start (the log is not set up yet to say it).
        let mut timeout_ms = 10_000;
        for name in [
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ] {
            let Ok(raw) = std::env::var(name) else {
                continue;
            };
            timeout_ms = raw.trim().parse::<u64>().map_err(|_| {
                format!("{name}={raw}: give the export timeout in milliseconds, e.g. 10000")
            })?;
            break;
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("OpenTelemetry exporter's HTTP client: {e}"))?;
        Ok(Self { http, runtime })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for ExportClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let http = self.http.clone();
        let call = async move {
            let response = http.execute(request).await?;
            let mut answer = http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = response.headers().clone();
            }
            // A collector answers a status and a few bytes; no more is read.
            let body = crate::net::read_capped(response, MAX_COLLECTOR_ANSWER)
                .await
                .map_err(|e| match e {
                    crate::net::CappedReadError::TooLarge(max) => {
                        format!("the collector's answer is larger than {max} bytes").into()
                    }
                    crate::net::CappedReadError::Transport(e) => {
                        opentelemetry_http::HttpError::from(e)
                    }
                })?;
            Ok::<_, opentelemetry_http::HttpError>(answer.body(body.into())?)
        };
        self.runtime.spawn(call).await?
    }
}
