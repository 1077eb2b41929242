//! Minted access tokens in the login flow: for a resource with `token = "minted"` the client
//! receives a JWT the shim signs for that resource alone (`crate::minting`) in place of the
//! IdP's access token, at the code exchange and at each refresh.
//!
//! What the token says about the user comes from the IdP's ID token at the login: its stable
//! subject and `auth_time` are kept on the refresh family, the claims the resource copies are
//! sealed with the code and then with each refresh token.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::OAuthError;
use super::records::{FamilyId, RefreshRecord};
use crate::config::Tenant;
use crate::config::resource::{MintedResource, ResourceConfig};
use crate::crypto::{Handle, Sealer};
use crate::domain::{ClientId, ClientRecord, ResourceUri, ScopeSet};
use crate::minting::access_token::{Grant, Invalid, Minted, mint, verify};
use crate::minting::{KeyError, SigningKeys};
use crate::upstream::id_token::IdTokenUser;
use crate::upstream::tokens::UpstreamTokens;

/// What is sealed behind a code: the IdP's tokens and, for a minted resource, what its
/// tokens say about the user. (Codes written before minting existed hold the tokens alone,
/// which this reads the same.)
#[derive(Serialize, Deserialize)]
pub(crate) struct SealedGrant {
    #[serde(flatten)]
    pub(crate) tokens: UpstreamTokens,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub(crate) claims: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) auth_time: Option<u64>,
}

/// The resource, if its tokens are minted, with its minted-token settings.
pub(crate) fn minted_resource<'t>(
    tenant: &'t Tenant,
    resource: &ResourceUri,
) -> Option<MintedResource<'t>> {
    tenant.resource(resource.as_str())?.minted()
}

/// The tenant's resource a grant for `resource` (issued with minted tokens or not:
/// `was_minted`) is still served by, or why it is not: the tenant no longer has the resource,
/// or its tokens went from minted to passthrough (a grant that was minted must not start
/// handing out the IdP's own tokens). The error is the revocation's cause and the client's
/// description. Passthrough to minted is a migration: the next refresh mints.
pub(crate) fn resource_of_grant<'t>(
    tenant: &'t Tenant,
    resource: &ResourceUri,
    was_minted: bool,
) -> Result<&'t ResourceConfig, (&'static str, String)> {
    match tenant.resource(resource.as_str()) {
        None => Err((
            "resource_removed",
            format!("the resource {resource} is no longer served by this tenant; sign in again"),
        )),
        Some(r) if was_minted && !r.is_minted() => Err((
            "token_mode_changed",
            format!(
                "the resource {resource} no longer has minted tokens, and this grant was for minted ones; sign in again"
            ),
        )),
        Some(r) => Ok(r),
    }
}

/// The ID token claims `resource` copies, under the names it gives them, and how the login was
/// made where the IdP says: its authentication methods (`amr`, RFC 8176), its class (`acr`)
/// and Entra's Conditional Access authentication contexts (`acrs`, from the ID token or else
/// from the IdP's access token `upstream_access_token`), so that the gateway's rules and a
/// resource server can ask for a sign-in strength (MFA, say) as they can with `auth_time`.
pub(crate) fn copied_claims(
    resource: MintedResource<'_>,
    user: &IdTokenUser,
    upstream_access_token: Option<&str>,
) -> Map<String, Value> {
    let mut claims: Map<String, Value> = resource
        .claims()
        .iter()
        .filter_map(|(from, to)| Some((to.clone(), user.claims.get(from)?.clone())))
        .collect();
    add_login_claims(&mut claims, user.claims.get("amr"), None);
    add_sign_in_strength(&mut claims, &user.claims, upstream_access_token);
    claims
}

/// Adds `acr` and `acrs` (short, printable) unless the resource copies something under those
/// names. `acrs` is read from the IdP's access token when the ID token lacks it (Entra adds it
/// to each kind of token the app opts in for): that token came from the IdP's token endpoint
/// over TLS, like the ID token, and is read, not verified (Graph's cannot be).
fn add_sign_in_strength(
    claims: &mut Map<String, Value>,
    id_token: &Map<String, Value>,
    upstream_access_token: Option<&str>,
) {
    let short = |v: &str| crate::domain::text::recordable_claim(v).is_ok() && v.len() <= 64;
    if let Some(acr) = id_token
        .get("acr")
        .and_then(Value::as_str)
        .filter(|a| short(a))
    {
        claims
            .entry("acr")
            .or_insert_with(|| Value::String(acr.to_owned()));
    }
    let from_access = || {
        upstream_access_token
            .and_then(|t| crate::crypto::jwt::unverified_claims::<Map<String, Value>>(t).ok())
            .and_then(|c| c.get("acrs").cloned())
    };
    let contexts: Option<Vec<Value>> = match id_token.get("acrs").cloned().or_else(from_access) {
        Some(Value::String(one)) => Some(vec![Value::String(one)]),
        Some(Value::Array(list)) => Some(list),
        _ => None,
    };
    if let Some(list) = contexts.filter(|l| {
        !l.is_empty() && l.len() <= 20 && l.iter().all(|v| v.as_str().is_some_and(short))
    }) {
        claims.entry("acrs").or_insert(Value::Array(list));
    }
}

/// Adds to a minted token's claims what says how its user logged in: `amr` (when it is a short
/// list of short method names, RFC 8176 §2) unless the resource copies something under that
/// name, and `idp`, the enterprise IdP of an ID-JAG login, which tells it from an interactive
/// one.
pub(crate) fn add_login_claims(
    claims: &mut Map<String, Value>,
    amr: Option<&Value>,
    idp: Option<&str>,
) {
    let methods = amr.and_then(Value::as_array).filter(|list| {
        list.len() <= 10
            && list.iter().all(|m| {
                m.as_str().is_some_and(|m| {
                    crate::domain::text::recordable_claim(m).is_ok() && m.len() <= 32
                })
            })
    });
    if let Some(methods) = methods {
        claims
            .entry("amr")
            .or_insert_with(|| Value::Array(methods.clone()));
    }
    if let Some(idp) = idp {
        claims.insert("idp".to_owned(), Value::String(idp.to_owned()));
    }
}

/// Who a minted token is for, and within which login.
pub(crate) struct TokenSubject<'a> {
    pub(crate) subject: &'a str,
    pub(crate) client_id: &'a ClientId,
    pub(crate) scopes: &'a ScopeSet,
    pub(crate) auth_time: u64,
    pub(crate) family: &'a FamilyId,
    pub(crate) claims: &'a Map<String, Value>,
    /// The DPoP key the token is bound to (its thumbprint), if the client proved one.
    pub(crate) confirmation: Option<&'a str>,
}

/// Minting and checking the access tokens of minted resources, with the tenants' signing
/// keys, and sealing what they copy from the ID token with each refresh token.
pub(crate) struct Minter {
    signing_keys: Arc<SigningKeys>,
    sealer: Arc<Sealer>,
}

impl Minter {
    pub(crate) fn new(signing_keys: Arc<SigningKeys>, sealer: Arc<Sealer>) -> Self {
        Self {
            signing_keys,
            sealer,
        }
    }

    /// The claims of `token` if it is an access token this tenant minted and it is valid now.
    pub(crate) async fn verify(
        &self,
        tenant: &Tenant,
        token: &str,
        now: u64,
    ) -> Result<Map<String, Value>, Invalid> {
        verify(&self.signing_keys, &tenant.id, &tenant.issuer, token, now).await
    }

    /// Replaces the IdP's access token in `tokens` with one the shim signs for `resource`.
    pub(crate) async fn mint_into(
        &self,
        tenant: &Tenant,
        resource: MintedResource<'_>,
        who: &TokenSubject<'_>,
        tokens: &mut UpstreamTokens,
        now: u64,
    ) -> Result<(), OAuthError> {
        let key = self
            .signing_keys
            .active(&tenant.id, tenant.token_signing_alg(), now)
            .await?;
        let scope = who.scopes.to_string();
        let session = who.family.to_string();
        let grant = Grant {
            issuer: &tenant.issuer,
            audience: resource.uri.as_str(),
            subject: who.subject,
            client_id: who.client_id.as_str(),
            scope: &scope,
            auth_time: Some(who.auth_time),
            session: Some(&session),
            copied: who.claims,
            lifetime: resource.lifetime().as_secs(),
            confirmation: who.confirmation,
        };
        let Minted { token, expires_in } = mint(&key, &grant, now)?;
        tokens.access_token = token;
        tokens.expires_in = Some(expires_in);
        Ok(())
    }

    /// A token for the machine client `client_id` itself (the client credentials grant): its
    /// `sub` is its client id, and it names no login and no sign-in.
    pub(crate) async fn mint_for_machine(
        &self,
        tenant: &Tenant,
        resource: MintedResource<'_>,
        client_id: &str,
        scopes: &ScopeSet,
        confirmation: Option<&str>,
        now: u64,
    ) -> Result<Minted, OAuthError> {
        let key = self
            .signing_keys
            .active(&tenant.id, tenant.token_signing_alg(), now)
            .await?;
        let scope = scopes.to_string();
        let grant = Grant {
            issuer: &tenant.issuer,
            audience: resource.uri.as_str(),
            subject: client_id,
            client_id,
            scope: &scope,
            auth_time: None,
            session: None,
            copied: &Map::new(),
            lifetime: resource.lifetime().as_secs(),
            confirmation,
        };
        Ok(mint(&key, &grant, now)?)
    }

    /// The copied claims of a minted resource's login, sealed with its refresh token `token`
    /// (opened again by `open_claims`).
    pub(crate) fn seal_claims(&self, token: &Handle, claims: &Map<String, Value>) -> String {
        self.sealer
            .seal(token, &serde_json::to_vec(claims).unwrap_or_default())
    }

    /// The copied claims sealed with a minted resource's refresh token (none in a token
    /// issued before the resource's tokens were minted).
    pub(crate) fn open_claims(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        token: &Handle,
        rec: &RefreshRecord,
    ) -> Result<Map<String, Value>, OAuthError> {
        let Some(sealed) = &rec.sealed_claims else {
            return Ok(Map::new());
        };
        self.sealer
            .unseal(token, sealed)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                tracing::error!(tenant = %tenant.id, client_id = %client.client_id,
                    "the claims sealed with a refresh token do not open (was the server secret replaced?)");
                OAuthError::server_error()
            })
    }

    /// The login (`sid`) of `token` if it is a live minted access token of this tenant issued
    /// to `client_id` (for revocation by the client).
    pub(crate) async fn login_of(
        &self,
        tenant: &Tenant,
        token: &str,
        client_id: &ClientId,
        now: u64,
    ) -> Result<Option<FamilyId>, OAuthError> {
        if !tenant.mints_tokens() {
            return Ok(None);
        }
        match self.verify(tenant, token, now).await {
            Ok(claims) => Ok(claims
                .get("client_id")
                .and_then(Value::as_str)
                .filter(|c| *c == client_id.as_str())
                .and(claims.get("sid").and_then(Value::as_str))
                .map(FamilyId::from_admin)),
            Err(Invalid::Keys(e)) => Err(e.into()),
            Err(_) => Ok(None),
        }
    }

    /// An identity JWT for an MCP server behind the gateway (`minting/identity.rs`).
    pub(crate) async fn identity_jwt(
        &self,
        tenant: &Tenant,
        audience: &str,
        claims: Map<String, Value>,
        now: u64,
    ) -> Result<String, OAuthError> {
        let key = self
            .signing_keys
            .active(&tenant.id, tenant.token_signing_alg(), now)
            .await?;
        Ok(crate::minting::identity::mint_identity(
            &key,
            &tenant.issuer,
            audience,
            claims,
            now,
        )?)
    }

    /// The tenant's JWKS: the keys its minted tokens are signed with. A tenant with a minted
    /// resource and no key yet gets its first here, so that resource servers can fetch the
    /// set before the first login.
    pub(crate) async fn jwks(&self, tenant: &Tenant, now: u64) -> Result<Value, OAuthError> {
        if tenant.signs_tokens() {
            self.signing_keys
                .active(&tenant.id, tenant.token_signing_alg(), now)
                .await?;
        }
        Ok(self.signing_keys.jwks(&tenant.id, now).await?)
    }

    /// The tenants' signing keys (for the admin API).
    pub(crate) fn keys(&self) -> &SigningKeys {
        &self.signing_keys
    }
}

impl From<KeyError> for OAuthError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(e) => e.into(),
            KeyError::Generate(why) => {
                tracing::error!(reason = %why, "could not sign an access token");
                OAuthError::server_error()
            }
        }
    }
}
