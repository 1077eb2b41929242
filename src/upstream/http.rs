//! The HTTP clients for calls to IdPs (discovery, token endpoints), which certificates they
//! trust, and the size cap on what IdPs answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Tenant;
use crate::config::tenant::{TrustRoots, UpstreamTls, read_ca_file};
use crate::domain::TenantId;
use crate::net::CappedReadError;
use crate::net::fetch::error_chain;

/// An HTTP client for calls to IdPs: no redirects (a 307 would re-post the app's secret),
/// timeouts, Mozilla's bundled roots. `HTTPS_PROXY` from the environment is honoured, as
/// corporate networks often need it to reach the IdP (the CIMD fetcher, which strangers steer,
/// never uses a proxy).
pub fn upstream_http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    builder(timeout, TrustRoots::Bundled)
        .build()
        .map_err(|e| format!("cannot build the HTTP client for IdP calls: {e}"))
}

/// The client for one tenant's IdP: `upstream_http_client` with the tenant's trust settings.
pub fn tenant_http_client(tenant: &Tenant, timeout: Duration) -> Result<reqwest::Client, String> {
    let tls = tenant.upstream().tls().unwrap_or(UpstreamTls {
        ca_file: None,
        roots: TrustRoots::Bundled,
    });
    let mut b = builder(timeout, tls.roots);
    if let Some(ca) = tls.ca_file {
        for cert in read_ca_file(ca)? {
            b = b.add_root_certificate(cert);
        }
    }
    b.build().map_err(|e| {
        format!(
            "{}: cannot build the HTTP client for the IdP: {e}",
            tenant.file.display()
        )
    })
}

fn builder(timeout: Duration, roots: TrustRoots) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("dcr-shim/", env!("CARGO_PKG_VERSION")))
        .tls_built_in_webpki_certs(roots == TrustRoots::Bundled)
        .tls_built_in_native_certs(roots == TrustRoots::System)
}

/// One HTTP client per tenant; tenants that trust only the bundled roots share one.
#[derive(Clone)]
pub(crate) struct UpstreamHttp {
    shared: reqwest::Client,
    own: Arc<HashMap<TenantId, reqwest::Client>>,
}

impl UpstreamHttp {
    pub(crate) fn new(tenants: &[Arc<Tenant>], timeout: Duration) -> Result<Self, String> {
        let mut own = HashMap::new();
        for t in tenants {
            let tls = t.upstream().tls();
            if tls.is_some_and(|tls| tls.ca_file.is_some() || tls.roots != TrustRoots::Bundled) {
                own.insert(t.id.clone(), tenant_http_client(t, timeout)?);
            }
        }
        Ok(Self {
            shared: upstream_http_client(timeout)?,
            own: Arc::new(own),
        })
    }

    pub(crate) fn for_tenant(&self, tenant: &TenantId) -> &reqwest::Client {
        self.own.get(tenant).unwrap_or(&self.shared)
    }
}

/// Whether a failed call failed because the IdP's certificate is not trusted (or not valid for
/// its name): a setting to change, not an outage to wait out.
pub fn is_certificate_error(e: &reqwest::Error) -> bool {
    error_chain(e).to_ascii_lowercase().contains("certificate")
}

/// Largest IdP response read (discovery documents, token responses).
pub(crate) const MAX_IDP_RESPONSE: usize = 1024 * 1024;

/// Reads a response body of at most `MAX_IDP_RESPONSE` bytes.
pub(crate) async fn read_capped_body(response: reqwest::Response) -> Result<Vec<u8>, String> {
    crate::net::read_capped(response, MAX_IDP_RESPONSE)
        .await
        .map_err(|e| match e {
            CappedReadError::TooLarge(max) => format!("the response is larger than {max} bytes"),
            CappedReadError::Transport(e) => error_chain(&e),
        })
}
