//! Outbound HTTP that hostile input can steer (address policy, capped, redirect-free fetches),
//! building URLs to send a browser to, and how a client's address is named in logs.

pub(crate) mod bounds;
pub(crate) mod capped;
pub(crate) mod client_address;
pub(crate) mod fetch;
pub(crate) mod special_use;

pub use capped::{CappedReadError, read_capped};
pub use fetch::{FetchError, FetchPolicy, Fetched, SafeFetcher};

/// `uri` with `params` appended to its query (a redirect to an IdP's authorization endpoint).
pub fn append_query(uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            url.into()
        }
        Err(_) => uri.to_owned(),
    }
}
