//! `AuthServer`: the authorization server as the HTTP layer and the admin API see it, a thin
//! facade over its services, each with only what it needs: the tokens (`token/`), the login
//! flow (`login/`), the grants as an operator sees them (`grants.rs`), client configuration
//! (`client_configuration.rs`), the minter (`minted.rs`) and the IdPs (`upstreams.rs`). The
//! store, the client registry and the refresh families are shared among them.

use std::sync::Arc;

use super::client_configuration::ClientConfiguration;
use super::error::OAuthError;
use super::family::Families;
use super::grants::Grants;
use super::login::Logins;
use super::minted::Minter;
use super::registration::ClientRegistry;
use super::serving::Serving;
use super::token::Tokens;
use super::upstreams::Upstreams;
use crate::config::Tenant;
use crate::crypto::{Sealer, Signer};
use crate::minting::SigningKeys;
use crate::oauth::dpop::Proofs;
use crate::store::Records;
use crate::upstream::UpstreamDirectory;

pub struct AuthServer {
    /// The token endpoint, introspection and revocation (`token/`).
    tokens: Tokens,
    /// The browser's part of a login (`login/`).
    logins: Logins,
    /// Grants listed, counted and revoked by an operator (`grants.rs`).
    grants: Arc<Grants>,
    /// RFC 7592 (`client_configuration.rs`).
    client_configuration: ClientConfiguration,
    /// Minted access tokens: signing, checking, the claims sealed with refresh tokens.
    minter: Arc<Minter>,
}

impl AuthServer {
    pub(crate) fn new(
        records: Records,
        registry: ClientRegistry,
        upstreams: UpstreamDirectory,
        serving: Arc<Serving>,
        sealer: Sealer,
        signer: Signer,
        signing_keys: Arc<SigningKeys>,
    ) -> Self {
        let sealer = Arc::new(sealer);
        let families = Arc::new(Families::new(records.clone()));
        let minter = Arc::new(Minter::new(signing_keys, sealer.clone()));
        let upstreams = Arc::new(Upstreams::new(upstreams, serving));
        let grants = Arc::new(Grants::new(
            records.clone(),
            registry.clone(),
            families.clone(),
        ));
        Self {
            tokens: Tokens::new(
                records.clone(),
                registry.clone(),
                families.clone(),
                minter.clone(),
                upstreams.clone(),
                sealer.clone(),
                Arc::new(Proofs::new(signer.clone())),
            ),
            logins: Logins::new(records.clone(), registry.clone(), upstreams, sealer, signer),
            client_configuration: ClientConfiguration::new(
                records.clone(),
                registry.clone(),
                grants.clone(),
            ),
            grants,
            minter,
        }
    }

    /// The tenant's JWKS: the keys its minted tokens are signed with (`Minter::jwks`).
    pub async fn jwks(&self, tenant: &Tenant, now: u64) -> Result<serde_json::Value, OAuthError> {
        self.minter.jwks(tenant, now).await
    }

    /// The tokens handed out: the token endpoint, introspection, revocation (`token/`).
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// Grants as an operator sees them (the admin API).
    pub(crate) fn grants(&self) -> &Grants {
        &self.grants
    }

    /// A registered client's own registration (RFC 7592).
    pub(crate) fn client_configuration(&self) -> &ClientConfiguration {
        &self.client_configuration
    }

    /// The login flow: authorize, consent, callback (`login/`).
    pub fn logins(&self) -> &Logins {
        &self.logins
    }

    /// An identity JWT for an MCP server behind the gateway (`Minter::identity_jwt`).
    pub(crate) async fn identity_jwt(
        &self,
        tenant: &Tenant,
        audience: &str,
        claims: serde_json::Map<String, serde_json::Value>,
        now: u64,
    ) -> Result<String, OAuthError> {
        self.minter
            .identity_jwt(tenant, audience, claims, now)
            .await
    }

    /// The tenants' signing keys (for the admin API).
    pub fn signing_keys(&self) -> &SigningKeys {
        self.minter.keys()
    }
}
