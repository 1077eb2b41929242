//! The browser's part of a login: the authorization request (`authorize.rs`), the consent
//! page's ticket and this browser's approvals (`consent.rs`), and the IdP's answer
//! (`callback.rs`), which ends in the shim's own code for the token endpoint.

pub(crate) mod authorize;
pub(crate) mod callback;
pub mod consent;

use std::sync::Arc;

use crate::crypto::{Sealer, Signer};
use crate::oauth::registration::ClientRegistry;
use crate::oauth::upstreams::Upstreams;
use crate::store::Records;

/// The login flow with what it needs: the store (transactions, codes), the clients, the IdPs,
/// the sealer (what a code carries) and the signer (consent tickets, approval cookies).
pub struct Logins {
    records: Records,
    registry: ClientRegistry,
    upstreams: Arc<Upstreams>,
    sealer: Arc<Sealer>,
    signer: Signer,
}

impl Logins {
    pub(crate) fn new(
        records: Records,
        registry: ClientRegistry,
        upstreams: Arc<Upstreams>,
        sealer: Arc<Sealer>,
        signer: Signer,
    ) -> Self {
        Self {
            records,
            registry,
            upstreams,
            sealer,
            signer,
        }
    }
}
