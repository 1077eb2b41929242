//! `grant_type=client_credentials` (RFC 6749 §4.4; the MCP extension
//! `io.modelcontextprotocol/oauth-client-credentials`): a machine client named in the tenant
//! file (`config/machine_client.rs`) authenticates with its key (`private_key_jwt`) or secret
//! and gets a minted token for itself: `sub` is its client id, as `client_id` is, and the
//! token names no login and no sign-in. No refresh token (RFC 6749 §4.4.3): it asks again.
//! Such a token counts while the tenant file names the client (`Tokens::live_claims`).

use super::Tokens;
use super::client_auth::{ClientCredentials, invalid_client};
use super::dpop_binding::bound_for;
use super::introspection::Configured;
use super::response::TokenResponse;
use crate::config::Tenant;
use crate::config::machine_client::MachineClientConfig;
use crate::config::resource::{MintedResource, ResourceConfig};
use crate::domain::ScopeSet;
use crate::oauth::context::RequestCtx;
use crate::oauth::dpop::Proof;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::params::Params;
use crate::upstream::tokens::UpstreamTokens;

impl Tokens {
    /// `grant_type=client_credentials`, with `resource` (RFC 8707) and `scope`.
    pub(crate) async fn client_credentials(
        &self,
        tenant: &Tenant,
        form: &Params,
        creds: &ClientCredentials,
        proof: Option<&Proof>,
        ctx: &RequestCtx,
    ) -> Result<TokenResponse, OAuthError> {
        let answer = self.machine_token(tenant, form, creds, proof, ctx).await;
        super::count_outcome(
            &crate::metrics::metrics().client_credentials,
            tenant,
            &answer,
        );
        answer
    }

    async fn machine_token(
        &self,
        tenant: &Tenant,
        form: &Params,
        creds: &ClientCredentials,
        proof: Option<&Proof>,
        ctx: &RequestCtx,
    ) -> Result<TokenResponse, OAuthError> {
        let (now, caller) = (ctx.now, ctx.caller);
        let (presented, id) = Self::presented_client(form, creds)?;
        let machine = tenant.machine_client(&id).ok_or_else(|| {
            invalid_client("client authentication failed: not a machine client of this tenant")
        })?;
        let credential = Configured {
            id: &id,
            secret_sha256: machine.secret_sha256.as_ref(),
            jwks: machine.jwks.as_ref(),
            jwks_uri: machine.jwks_uri.as_deref(),
        };
        self.check_configured(tenant, presented, credential, caller, now)
            .await?;
        if machine.disabled {
            return Err(invalid_client(
                "this machine client is disabled by the operator",
            ));
        }
        let (resource, scopes) = machine_request(tenant, machine, form, proof)?;
        let response = self
            .machine_response(tenant, resource, machine, &scopes, proof, now)
            .await?;
        tracing::info!(target: "audit", event = "client_credentials_granted", tenant = %tenant.id,
            client_id = %machine.client_id, name = machine.name.as_deref().unwrap_or(""),
            resource = %resource.uri, scope = %scopes);
        Ok(response)
    }

    /// The answer to a machine client's grant (of a `machine_request`): the DPoP proof spent,
    /// a minted token for `resource` naming the client as its subject (bound to the proof's
    /// key, if any), and no refresh token.
    pub(super) async fn machine_response(
        &self,
        tenant: &Tenant,
        resource: MintedResource<'_>,
        machine: &MachineClientConfig,
        scopes: &ScopeSet,
        proof: Option<&Proof>,
        now: u64,
    ) -> Result<TokenResponse, OAuthError> {
        let binding = self.spend_dpop(tenant, proof, now).await?;
        let binding = binding.as_deref();
        let minted = self
            .minter
            .mint_for_machine(tenant, resource, &machine.client_id, scopes, binding, now)
            .await?;
        let tokens = UpstreamTokens {
            access_token: minted.token,
            token_type: "Bearer".into(),
            expires_in: Some(minted.expires_in),
            refresh_token: None,
            scope: None,
            id_token: None,
        };
        Ok(TokenResponse::bearer(&tokens, scopes).bound_to(binding))
    }
}

/// What a machine client's grant (client credentials, or a workload's) asks for, checked
/// before anything is spent: the resource, the scopes granted, and a proof where the
/// resource's tokens must be bound.
pub(super) fn machine_request<'t>(
    tenant: &'t Tenant,
    machine: &MachineClientConfig,
    form: &Params,
    proof: Option<&Proof>,
) -> Result<(MintedResource<'t>, ScopeSet), OAuthError> {
    let resource = target(tenant, machine, form.get("resource"))?;
    let scopes = granted(resource, machine, form.get("scope"))?;
    bound_for(resource, proof.map(|p| p.jkt.as_str()))?;
    Ok((resource, scopes))
}

/// The resource the token is for: the one `resource` names, else the client's only one.
fn target<'t>(
    tenant: &'t Tenant,
    machine: &MachineClientConfig,
    resource: Option<&str>,
) -> Result<MintedResource<'t>, OAuthError> {
    let invalid_target = |why: String| OAuthError::new(ErrorCode::InvalidTarget, why);
    let found: Option<&ResourceConfig> = match resource {
        Some(uri) => tenant.resource(uri),
        None => match machine.resources.as_slice() {
            [only] => tenant.resource(only),
            _ => {
                return Err(invalid_target(
                    "this client may reach several resources: name one with resource (RFC 8707)"
                        .into(),
                ));
            }
        },
    };
    found
        .filter(|r| machine.reaches(r.uri.as_str()))
        .and_then(ResourceConfig::minted)
        .ok_or_else(|| {
            invalid_target(format!(
                "this client may not get tokens for {}",
                resource.unwrap_or("that resource")
            ))
        })
}

/// The scopes granted: of those asked for, the resource's that the client may have (the others
/// are dropped, as for any client: RFC 6749 §3.3 lets the server grant less; the answer's
/// `scope` says what was granted), `invalid_scope` when that leaves none; when none are asked
/// for, the resource's default scopes the client may have.
fn granted(
    resource: MintedResource<'_>,
    machine: &MachineClientConfig,
    scope: Option<&str>,
) -> Result<ScopeSet, OAuthError> {
    let known = |name: &str| resource.scopes.iter().any(|s| s.name == name);
    let asked: Vec<&str> = scope
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    if asked.is_empty() {
        let defaults: Vec<&str> = if resource.default_scopes.is_empty() {
            resource.scopes.iter().map(|s| s.name.as_str()).collect()
        } else {
            resource.default_scopes.iter().map(String::as_str).collect()
        };
        let granted: ScopeSet = defaults
            .into_iter()
            .filter(|s| machine.may_have(s))
            .collect();
        if granted.is_empty() {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "this client may have none of the resource's default scopes; name one with scope",
            ));
        }
        return Ok(granted);
    }
    let granted: ScopeSet = asked
        .iter()
        .copied()
        .filter(|s| known(s) && machine.may_have(s))
        .collect();
    if granted.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!(
                "this client may be granted none of the scopes '{}'",
                asked.join(" ")
            ),
        ));
    }
    Ok(granted)
}
