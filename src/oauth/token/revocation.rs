//! Revocation (RFC 7009): a client ends a login it holds a token of.

use super::Tokens;
use super::client_auth::ClientCredentials;
use crate::config::Tenant;
use crate::crypto::Handle;
use crate::oauth::context::RequestCtx;
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::oauth::records::RefreshRecord;

impl Tokens {
    /// `POST /{tenant}/revoke` (RFC 7009 §2): revokes the family of a refresh token, or of a
    /// minted access token (its `sid`), issued to the requesting client; unknown tokens and the
    /// IdP's access tokens (which the shim cannot revoke) are answered with success.
    pub(crate) async fn revoke(
        &self,
        tenant: &Tenant,
        form: &Params,
        creds: &ClientCredentials,
        ctx: &RequestCtx,
    ) -> Result<(), OAuthError> {
        let now = ctx.now;
        form.refuse_repeated()?;
        let token = form
            .get("token")
            .map(Handle::presented)
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let client = self.authenticate_client(tenant, form, creds, ctx).await?;
        if let Some(rec) = self
            .records
            .get::<RefreshRecord>(&tenant.id, &token.key(), now)
            .await?
            && rec.value.client_id == client.client_id
        {
            self.families
                .revoke(&tenant.id, &rec.value.family_id, "client_revoked", now)
                .await?;
        } else if let Some(family) = self
            .minter
            .login_of(tenant, token.expose(), &client.client_id, now)
            .await?
        {
            self.families
                .revoke(&tenant.id, &family, "client_revoked", now)
                .await?;
        }
        Ok(())
    }
}
