//! `AuthServer`: the login flow's dependencies in one place, shared by the flow modules
//! (`authorize`, `consent`, `callback`, `token`).

use std::sync::Arc;

use super::family::Families;
use super::minted::Minter;
use super::registration::ClientRegistry;
use super::upstreams::Upstreams;
use crate::config::Tenant;
use crate::crypto::{Sealer, Signer};
use crate::minting::SigningKeys;
use crate::store::Records;
use crate::upstream::UpstreamDirectory;
use crate::upstream::tokens::UpstreamClient;

pub struct AuthServer {
    pub(super) records: Records,
    pub(super) registry: ClientRegistry,
    /// The tenants' IdPs: endpoints and the caller with the apps' credentials.
    pub(super) upstreams: Upstreams,
    pub(super) sealer: Arc<Sealer>,
    pub(super) signer: Signer,
    /// Minted access tokens: signing, checking, the claims sealed with refresh tokens.
    pub(super) minter: Minter,
    /// Revocation and locks of the refresh families (`family.rs`).
    pub(super) families: Families,
}

impl AuthServer {
    pub(crate) fn new(
        records: Records,
        registry: ClientRegistry,
        upstreams: UpstreamDirectory,
        upstream: UpstreamClient,
        (sealer, signer): (Sealer, Signer),
        signing_keys: Arc<SigningKeys>,
    ) -> Self {
        let sealer = Arc::new(sealer);
        Self {
            families: Families::new(records.clone()),
            minter: Minter::new(signing_keys, sealer.clone()),
            records,
            registry,
            upstreams: Upstreams::new(upstreams, upstream),
            sealer,
            signer,
        }
    }

    /// Calls the IdPs with `upstream` from now on; calls under way finish with the old one.
    pub(crate) fn install_upstream(&self, upstream: UpstreamClient) {
        self.upstreams.install(upstream);
    }

    /// The tenant's JWKS: the keys its minted tokens are signed with (`Minter::jwks`).
    pub async fn jwks(
        &self,
        tenant: &Tenant,
        now: u64,
    ) -> Result<serde_json::Value, super::OAuthError> {
        self.minter.jwks(tenant, now).await
    }

    /// The tenants' signing keys (for the admin API).
    pub fn signing_keys(&self) -> &SigningKeys {
        self.minter.keys()
    }
}
