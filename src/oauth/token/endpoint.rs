//! `POST /{tenant}/token`: the grant type, then who authenticates for that grant while the
//! record the grant names is read, then the grant's own module.

use super::Tokens;
use super::client_auth::ClientCredentials;
use super::request::{self, OfferedGrants, Parsed, TokenRequest};
use super::response::TokenResponse;
use crate::config::Tenant;
use crate::oauth::context::RequestCtx;
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::oauth::records::{AuthCode, RefreshRecord};

impl Tokens {
    /// `POST /{tenant}/token`: the grant type, then who authenticates for that grant, then the
    /// grant's own module (`redeem_code` here, `refresh.rs`, `id_jag.rs`, `exchange.rs`).
    pub async fn token(
        &self,
        tenant: &Tenant,
        form: &Params,
        creds: &ClientCredentials,
        ctx: &RequestCtx,
    ) -> Result<TokenResponse, OAuthError> {
        let now = ctx.now;
        let offered = OfferedGrants {
            jwt_bearer: tenant.trusts_issuers(),
            token_exchange: tenant.offers_token_exchange(),
            client_credentials: tenant.offers_client_credentials(),
            workloads: tenant.trusts_workloads(),
        };
        let parsed = request::parse(form, offered)?;
        if let Parsed::TokenExchange = parsed {
            // A downstream API's token is the IdP's: no DPoP proof binds it.
            return self.exchange(tenant, form, creds, now).await;
        }
        // The proof is checked first, so that a `use_dpop_nonce` answer costs nothing else;
        // it is spent once the client is authenticated.
        let proof = self.dpop_proof(tenant, creds.dpop.as_deref(), now)?;
        let request = match parsed {
            Parsed::TokenExchange => unreachable!("answered above"),
            Parsed::ClientCredentials => {
                return self
                    .client_credentials(tenant, form, creds, proof.as_ref(), ctx)
                    .await;
            }
            Parsed::Workload => {
                return self
                    .workload_grant(tenant, form, creds, proof.as_ref(), ctx)
                    .await;
            }
            Parsed::Client(request) => request,
        };
        // The record the grant names is read while the client is authenticated, two reads at
        // once; it is used only once authentication succeeded, and a client error comes first.
        let (client, request) = tokio::join!(
            self.authenticate_client(tenant, form, creds, ctx),
            self.prepare(tenant, request, now),
        );
        let client = client?;
        // A client an administrator has not approved (or denied) gets nothing, whatever it
        // holds: a code or refresh token from before a denial is worth nothing either.
        crate::oauth::approval::usable(&client)?;
        let request = request?;
        let binding = self.spend_dpop(tenant, proof.as_ref(), now).await?;
        let response = match request.bound_to(binding) {
            TokenRequest::AuthorizationCode(r) => self.redeem_code(tenant, &client, r, now).await?,
            TokenRequest::RefreshToken(r) => self.refresh(tenant, &client, r, now).await?,
            TokenRequest::JwtBearer(r) => return self.id_jag_grant(tenant, &client, r, ctx).await,
        };
        // The tokens are already stored: a failed touch must not turn them into an error (the
        // client would retry the code, a replay that revokes them). The client's life is
        // extended at a later request.
        self.registry.record_use(tenant, &client, now).await;
        Ok(response)
    }

    /// The request with the record it names, if any (its code or its refresh token, as
    /// stored now); a request that did not parse is answered with its error, after the
    /// client's.
    async fn prepare<'f>(
        &self,
        tenant: &Tenant,
        request: Result<TokenRequest<'f>, OAuthError>,
        now: u64,
    ) -> Result<TokenRequest<'f>, OAuthError> {
        Ok(match request? {
            TokenRequest::AuthorizationCode(mut r) => {
                r.stored = self
                    .records
                    .get::<AuthCode>(&tenant.id, &r.code.key(), now)
                    .await?
                    .map(Box::new);
                TokenRequest::AuthorizationCode(r)
            }
            TokenRequest::RefreshToken(mut r) => {
                r.stored = self
                    .records
                    .get::<RefreshRecord>(&tenant.id, &r.refresh_token.key(), now)
                    .await?
                    .map(Box::new);
                TokenRequest::RefreshToken(r)
            }
            other => other,
        })
    }
}
