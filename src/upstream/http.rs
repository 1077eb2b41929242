//! The HTTP client for calls to IdPs (discovery, token endpoints) and the size cap on what
//! they answer.

use std::time::Duration;

use crate::net::CappedReadError;
use crate::net::fetch::error_chain;

/// An HTTP client for calls to IdPs: no redirects (a 307 would re-post the app's secret),
/// timeouts. `HTTPS_PROXY` from the environment is honoured, as corporate networks often need
/// it to reach the IdP (the CIMD fetcher, which strangers steer, never uses a proxy).
pub fn upstream_http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("dcr-shim/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client for IdP calls: {e}"))
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
