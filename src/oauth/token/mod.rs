//! The tokens handed out: the token endpoint (OAuth 2.1 §3.2), one module per grant, and
//! introspection and revocation. `endpoint.rs::token` reads the grant type (`request.rs`: the
//! grants the tenant offers, and who authenticates for each), authenticates the client
//! (`client_auth.rs`) while the record the grant names is read (an authentication error is
//! answered first), and runs the grant: `code.rs` (authorization code), `refresh.rs` (refresh
//! token), `id_jag.rs` (JWT bearer with an ID-JAG), `exchange.rs` (token exchange, for resource
//! servers). Each answers a `response.rs::TokenResponse`. `introspection.rs` (RFC 7662) and
//! `revocation.rs` (RFC 7009) beside them.

mod assertion_grant;
pub mod client_auth;
pub(crate) mod client_credentials;
pub(crate) mod code;
pub(crate) mod dpop_binding;
mod endpoint;
pub(crate) mod exchange;
pub(crate) mod grant_names;
pub(crate) mod id_jag;
pub(crate) mod introspection;
pub mod refresh;
pub(crate) mod request;
pub mod response;
pub(crate) mod revocation;
pub(crate) mod workload;

use std::sync::Arc;

use crate::crypto::Sealer;
use crate::oauth::dpop::Proofs;
use crate::oauth::family::Families;
use crate::oauth::minted::Minter;
use crate::oauth::registration::ClientRegistry;
use crate::oauth::upstreams::Upstreams;
use crate::store::Records;

/// The token endpoint and what else concerns the tokens handed out (introspection,
/// revocation), with what they need: the store, the clients, the refresh families, the
/// minter, the IdPs and the sealer. Each grant is a module of `impl Tokens`.
pub struct Tokens {
    records: Records,
    registry: ClientRegistry,
    families: Arc<Families>,
    minter: Arc<Minter>,
    upstreams: Arc<Upstreams>,
    sealer: Arc<Sealer>,
    /// DPoP nonces, and the proofs seen at the gateway's resources.
    proofs: Arc<Proofs>,
}

impl Tokens {
    pub(crate) fn new(
        records: Records,
        registry: ClientRegistry,
        families: Arc<Families>,
        minter: Arc<Minter>,
        upstreams: Arc<Upstreams>,
        sealer: Arc<Sealer>,
        proofs: Arc<Proofs>,
    ) -> Self {
        Self {
            records,
            registry,
            families,
            minter,
            upstreams,
            sealer,
            proofs,
        }
    }
}

/// Counts a grant's answer in `counter` by tenant and outcome (`ok`, or the OAuth error code).
fn count_outcome<T>(
    counter: &prometheus::IntCounterVec,
    tenant: &crate::config::Tenant,
    answer: &Result<T, crate::oauth::error::OAuthError>,
) {
    let outcome = match answer {
        Ok(_) => "ok",
        Err(e) => e.code.as_str(),
    };
    counter
        .with_label_values(&[tenant.id.as_str(), outcome])
        .inc();
}
