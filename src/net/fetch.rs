//! `SafeFetcher`: GETs a JSON document from a URL chosen by a stranger (a CIMD `client_id`).
//!
//! - https only (unless the tenant's dev switch allows http);
//! - every resolved address is checked against `special_use` inside the DNS resolver that the
//!   connection uses, so the checked address is the connected address (no DNS rebinding gap);
//!   literal IP hosts, which skip the resolver, are checked before the request;
//! - no redirects, no proxies, a short total timeout (connect, headers and body), a size cap
//!   enforced while streaming, and only `200` with a JSON content type counts;
//! - a bounded number of fetches in flight per host and in total (`bounds.rs`); beyond them a
//!   fetch is refused at once.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::capped::{CappedReadError, read_capped};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::bounds::{Exceeded, FetchBounds};
use super::special_use::is_special_use;

/// What a fetcher may do.
#[derive(Clone, Debug)]
pub struct FetchPolicy {
    /// Allow http URLs and special-use addresses: tests and local development only.
    pub allow_http_and_private: bool,
    /// An extra trusted CA certificate (PEM).
    pub extra_ca_pem: Option<Vec<u8>>,
    pub max_bytes: usize,
    pub timeout: Duration,
    /// Fixed answers for host names, instead of DNS (tests of the address policy). The
    /// answers go through the same checks as DNS answers.
    pub static_hosts: Option<Arc<std::collections::HashMap<String, Vec<IpAddr>>>>,
    /// Most fetches in flight to one host.
    pub max_per_host: usize,
    /// Most fetches in flight in total.
    pub max_in_flight: usize,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            allow_http_and_private: false,
            extra_ca_pem: None,
            max_bytes: 5 * 1024,
            timeout: Duration::from_secs(5),
            static_hosts: None,
            max_per_host: 4,
            max_in_flight: 64,
        }
    }
}

/// A fetched document.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub(crate) body: Vec<u8>,
    pub(crate) cache_control: Option<String>,
}

/// Why a fetch failed; `Display` is safe to show the client.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("only https URLs are fetched")]
    NotHttps,
    /// The address stays out of `Display` (which clients see): it would tell a stranger what
    /// internal names resolve to. `Debug`, for the log, has it.
    #[error(
        "the host resolves to a loopback, private, link-local or otherwise special-use address, which is never fetched"
    )]
    ForbiddenAddress(IpAddr),
    #[error("the host name could not be resolved")]
    Dns,
    #[error("the server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the server answered with a redirect (HTTP {0}); redirects are not followed")]
    Redirect(u16),
    #[error("the server answered HTTP {0}; only 200 is accepted")]
    Status(u16),
    #[error("the document is not served as JSON (Content-Type: {0})")]
    NotJson(String),
    #[error("the document is larger than {0} bytes")]
    TooLarge(usize),
    /// The cause stays out of `Display` (which clients see); `Debug`, for the log, has it.
    #[error("the connection failed")]
    Connect(String),
    #[error("the fetcher could not be set up: {0}")]
    Setup(String),
    #[error(
        "too many documents are being fetched from this host right now; try again in a few seconds"
    )]
    BusyHost,
    #[error("too many documents are being fetched right now; try again in a few seconds")]
    Busy,
}

impl FetchError {
    /// A refusal of this server's own making (a bound was full), not the document's fault.
    pub(crate) fn is_busy(&self) -> bool {
        matches!(self, Self::BusyHost | Self::Busy)
    }
}

/// The resolver every connection of a guarded client goes through.
struct GuardedResolver {
    allow_private: bool,
    static_hosts: Option<Arc<std::collections::HashMap<String, Vec<IpAddr>>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("refused address {0}")]
struct Refused(IpAddr);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let fixed = self
            .static_hosts
            .as_ref()
            .map(|hosts| hosts.get(name.as_str()).cloned().unwrap_or_default());
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = match fixed {
                Some(ips) => ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect(),
                None => tokio::net::lookup_host((name.as_str(), 0)).await?.collect(),
            };
            if addrs.is_empty() {
                return Err("the host name has no addresses".into());
            }
            if !allow_private && let Some(bad) = addrs.iter().find(|a| is_special_use(a.ip())) {
                return Err(Box::new(Refused(bad.ip())) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A reusable fetcher for one policy; clones share its bounds.
#[derive(Clone)]
pub struct SafeFetcher {
    client: reqwest::Client,
    policy: FetchPolicy,
    bounds: Arc<FetchBounds>,
}

impl SafeFetcher {
    pub fn new(policy: FetchPolicy) -> Result<Self, FetchError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            // Mozilla's bundled roots only: what a stranger's document server must present
            // does not depend on this machine's trust store.
            .tls_built_in_native_certs(false)
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .pool_max_idle_per_host(2)
            .user_agent(concat!("dcr-shim/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: policy.allow_http_and_private,
                static_hosts: policy.static_hosts.clone(),
            }));
        if !policy.allow_http_and_private {
            builder = builder.https_only(true);
        }
        if let Some(pem) = &policy.extra_ca_pem {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| FetchError::Setup(e.to_string()))?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder
            .build()
            .map_err(|e| FetchError::Setup(e.to_string()))?;
        let bounds = Arc::new(FetchBounds::new(policy.max_in_flight, policy.max_per_host));
        Ok(Self {
            client,
            policy,
            bounds,
        })
    }

    pub(crate) fn policy(&self) -> &FetchPolicy {
        &self.policy
    }

    /// GETs `url` and returns its JSON body, or why not.
    pub async fn get_json(&self, url: &Url) -> Result<Fetched, FetchError> {
        self.get_json_up_to(url, self.policy.max_bytes).await
    }

    /// `get_json` with a body of up to `max_bytes` instead of the policy's (an IdP's discovery
    /// document or key set, longer than a client's documents).
    pub(crate) async fn get_json_up_to(
        &self,
        url: &Url,
        max_bytes: usize,
    ) -> Result<Fetched, FetchError> {
        let allow = self.policy.allow_http_and_private;
        if url.scheme() != "https" && !(allow && url.scheme() == "http") {
            return Err(FetchError::NotHttps);
        }
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal.filter(|ip| !allow && is_special_use(*ip)) {
            return Err(FetchError::ForbiddenAddress(ip));
        }
        let _in_flight = self
            .bounds
            .try_acquire(url.host_str().unwrap_or_default())
            .map_err(|e| match e {
                Exceeded::Host => FetchError::BusyHost,
                Exceeded::Total => FetchError::Busy,
            })?;
        let response = self
            .client
            .get(url.as_str())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| self.classify(e))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError::Redirect(status.as_u16()));
        }
        if status != reqwest::StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(FetchError::NotJson(content_type));
        }
        let cache_control = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_capped(response, max_bytes)
            .await
            .map_err(|e| match e {
                CappedReadError::TooLarge(max) => FetchError::TooLarge(max),
                CappedReadError::Transport(e) => self.classify(e),
            })?;
        Ok(Fetched {
            body,
            cache_control,
        })
    }

    fn classify(&self, e: reqwest::Error) -> FetchError {
        if e.is_timeout() {
            return FetchError::Timeout(self.policy.timeout);
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if let Some(Refused(ip)) = err.downcast_ref::<Refused>() {
                return FetchError::ForbiddenAddress(*ip);
            }
            if let Some(io) = err.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::Other
                && io.to_string().contains("failed to lookup")
            {
                return FetchError::Dns;
            }
            source = err.source();
        }
        if e.is_builder() && !self.policy.allow_http_and_private {
            return FetchError::NotHttps;
        }
        FetchError::Connect(error_chain(&e))
    }
}

/// An error and its causes on one line, for logs and descriptions.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        source = s.source();
    }
    out
}
