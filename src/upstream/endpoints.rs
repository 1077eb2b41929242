//! `UpstreamEndpoints`: what the login needs of a tenant's IdP, whether discovered
//! (`discovery.rs`) or built in (`provider.rs`).

/// Where to send users and token requests for one tenant.
#[derive(Clone, Debug)]
pub(crate) struct UpstreamEndpoints {
    pub(crate) issuer: String,
    pub(crate) authorization_endpoint: String,
    pub(crate) token_endpoint: String,
    /// Whether `offline_access` is asked for upstream.
    pub(crate) offers_refresh: bool,
    /// Where the IdP publishes the keys its tokens are signed with (a passthrough gateway
    /// resource checks the IdP's access tokens with them).
    pub(crate) jwks_uri: String,
}
