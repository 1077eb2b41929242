//! Token introspection (RFC 7662) at `/{tenant}/introspect`, for the resource servers the
//! tenant file names (`[[resource_servers]]`), authenticated with their secret or a
//! `private_key_jwt` assertion.
//!
//! A token is active when it is a minted access token of this tenant (signature with a key
//! the tenant publishes, issuer, expiry: `minting::access_token::verify`), for a resource the
//! caller serves, of a login (`sid`, the refresh family) that is not revoked, for a client
//! that still exists. Anything else is `{"active": false}` with no reason given (RFC 7662
//! §2.2); the reason goes to the log.

use serde_json::{Map, Value, json};

use super::Tokens;
use super::client_auth::{ClientCredentials, Presented, invalid_client, presented};
use crate::config::Tenant;
use crate::config::resource_server::ResourceServerConfig;
use crate::crypto::Handle;
use crate::domain::{ApprovalStatus, ClientId};
use crate::minting::access_token::Invalid;
use crate::oauth::client_assertion::verify as verify_assertion;
use crate::oauth::context::{Caller, RequestCtx};
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::oauth::records::{Family, FamilyId};

/// A client named in the tenant file (a resource server or a machine client), as
/// `check_configured` checks what it presents.
pub(super) struct Configured<'a> {
    pub(super) id: &'a str,
    pub(super) secret_sha256: Option<&'a crate::crypto::HandleKey>,
    pub(super) jwks: Option<&'a jsonwebtoken::jwk::JwkSet>,
    /// Where its keys are published instead (a machine client's `jwks_uri`).
    pub(super) jwks_uri: Option<&'a str>,
}

impl Tokens {
    /// `POST /{tenant}/introspect`.
    pub async fn introspect(
        &self,
        tenant: &Tenant,
        form: &Params,
        creds: &ClientCredentials,
        ctx: &RequestCtx,
    ) -> Result<Value, OAuthError> {
        let now = ctx.now;
        form.refuse_repeated()?;
        let caller = self
            .authenticate_resource_server(tenant, form, creds, now)
            .await?;
        let token = form
            .get("token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("token is required (RFC 7662 §2.1)"))?;
        match self.active_claims(tenant, caller, token, now).await? {
            Ok(mut claims) => {
                claims.insert("active".into(), json!(true));
                // A token bound to a DPoP key (`cnf`, which the claims carry) is presented with
                // a proof of it (RFC 9449 §6.2).
                let token_type = if claims.contains_key("cnf") {
                    "DPoP"
                } else {
                    "Bearer"
                };
                claims.insert("token_type".into(), json!(token_type));
                Ok(Value::Object(claims))
            }
            Err(why) => {
                tracing::info!(tenant = %tenant.id, resource_server = %caller.client_id, reason = %why, "introspected token is inactive");
                Ok(json!({ "active": false }))
            }
        }
    }

    /// The claims of `token` if it is active for `caller`, else why not.
    async fn active_claims(
        &self,
        tenant: &Tenant,
        caller: &ResourceServerConfig,
        token: &str,
        now: u64,
    ) -> Result<Result<Map<String, Value>, String>, OAuthError> {
        self.live_claims(tenant, token, |aud| caller.serves(aud), now)
            .await
    }

    /// The claims of `token` if it is a minted access token of this tenant, valid now, for an
    /// audience `serves` accepts, of a login that is not revoked and a client in good
    /// standing; else why not. Read from the store on every call, so a revocation counts at
    /// once on every replica that shares it.
    pub(crate) async fn live_claims(
        &self,
        tenant: &Tenant,
        token: &str,
        serves: impl Fn(&str) -> bool,
        now: u64,
    ) -> Result<Result<Map<String, Value>, String>, OAuthError> {
        let claims = match self.minter.verify(tenant, token, now).await {
            Ok(c) => c,
            Err(Invalid::Keys(e)) => return Err(e.into()),
            Err(e) => return Ok(Err(e.to_string())),
        };
        let text = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
        if !serves(text("aud")) {
            return Ok(Err(format!(
                "the token is for {}, which is not served here",
                text("aud")
            )));
        }
        if !claims.contains_key("sid") {
            // A machine client's token (the client credentials grant) has no login: it counts
            // while the tenant file names the client and lets it reach the audience.
            let client_id = text("client_id");
            return Ok(match tenant.machine_client(client_id) {
                Some(m) if text("sub") == client_id && m.reaches(text("aud")) => Ok(claims),
                _ => Err(format!(
                    "the token's machine client {client_id} may no longer reach {}",
                    text("aud")
                )),
            });
        }
        let family = FamilyId::from_admin(text("sid"));
        let (family, client) = tokio::join!(
            self.records.get::<Family>(&tenant.id, &family, now),
            self.client_standing(tenant, text("client_id"), now),
        );
        if family?.is_none_or(|f| f.value.revoked) {
            return Ok(Err("the token's login was revoked".into()));
        }
        if let Some(why) = client? {
            return Ok(Err(format!("the token's client {why}")));
        }
        Ok(Ok(claims))
    }

    /// The claims of `token` if it is the IdP's own access token for the passthrough resource
    /// `resource`'s API (`Upstreams::idp_token_claims`). A revocation at the shim does not reach
    /// such a token: it lives as long as the IdP made it.
    pub(crate) async fn idp_token_claims(
        &self,
        tenant: &Tenant,
        resource: &crate::config::resource::ResourceConfig,
        token: &str,
        now: u64,
    ) -> Result<Result<Map<String, Value>, String>, OAuthError> {
        self.upstreams
            .idp_token_claims(tenant, resource, token, now)
            .await
    }

    /// The client id and credential a request presents (`client_auth.rs::presented`).
    pub(super) fn presented_client<'a>(
        form: &'a Params,
        creds: &'a ClientCredentials,
    ) -> Result<(Presented<'a>, String), OAuthError> {
        let presented = presented(form, creds)?;
        let id = match &presented {
            Presented::Secret { id, .. } => (*id).to_owned(),
            Presented::Assertion { id, .. } => id.clone(),
        };
        Ok((presented, id))
    }

    /// Why the tokens of a client no longer count, if they do not: a registered client that
    /// was deleted, or a client an administrator denied (`approval::standing`).
    pub(crate) async fn client_standing(
        &self,
        tenant: &Tenant,
        client_id: &str,
        now: u64,
    ) -> Result<Option<&'static str>, OAuthError> {
        use crate::oauth::approval::Standing;
        Ok(
            match crate::oauth::approval::standing(&self.records, tenant, client_id, now).await? {
                Standing::Fine => None,
                Standing::Gone => Some("was deleted"),
                Standing::NotApproved(ApprovalStatus::Denied) => {
                    Some("was denied by an administrator")
                }
                Standing::NotApproved(_) => Some("waits for an administrator's approval"),
            },
        )
    }

    /// The resource server a request comes from: its secret (compared by hash in constant
    /// time) or a client assertion signed with a key of its JWK Set, whose `jti` is spent.
    pub(crate) async fn authenticate_resource_server<'t>(
        &self,
        tenant: &'t Tenant,
        form: &Params,
        creds: &ClientCredentials,
        now: u64,
    ) -> Result<&'t ResourceServerConfig, OAuthError> {
        let (presented, id) = Self::presented_client(form, creds)?;
        let server = tenant.resource_server(&id).ok_or_else(|| {
            invalid_client("client authentication failed: not a resource server of this tenant")
        })?;
        let credential = Configured {
            id: &id,
            secret_sha256: server.secret_sha256.as_ref(),
            jwks: server.jwks.as_ref(),
            jwks_uri: None,
        };
        self.check_configured(tenant, presented, credential, Caller::Unknown, now)
            .await?;
        Ok(server)
    }

    /// Checks what a client named in the tenant file presented (a resource server's or a
    /// machine client's): its secret, compared by hash in constant time, or a client
    /// assertion signed with a key of its JWK Set for this server (the issuer with or without
    /// a trailing slash, or its token or introspection endpoint), whose `jti` is spent.
    pub(super) async fn check_configured(
        &self,
        tenant: &Tenant,
        presented: Presented<'_>,
        client: Configured<'_>,
        caller: Caller,
        now: u64,
    ) -> Result<(), OAuthError> {
        let fetched;
        let keys = match (client.jwks, client.jwks_uri, &presented) {
            (Some(keys), _, _) => Some(keys),
            (None, Some(uri), Presented::Assertion { assertion, .. }) => {
                fetched = self.published_keys(tenant, uri, assertion, caller).await?;
                Some(&*fetched)
            }
            _ => None,
        };
        match (presented, client.secret_sha256, keys) {
            (
                Presented::Secret {
                    secret: Some(s), ..
                },
                Some(hash),
                _,
            ) if hash.matches(&Handle::presented(s)) => Ok(()),
            (Presented::Secret { .. }, Some(_), _) => Err(invalid_client(
                "client authentication failed: wrong or missing client secret",
            )),
            (Presented::Assertion { assertion, .. }, _, Some(keys)) => {
                let issuer = tenant.issuer.as_str();
                let audiences = [
                    &format!("{issuer}/introspect")[..],
                    issuer,
                    &format!("{issuer}/")[..],
                    &format!("{issuer}/token")[..],
                ];
                let verified = verify_assertion(assertion, client.id, keys, &audiences, now)
                    .map_err(|e| invalid_client(format!("client authentication failed: {e}")))?;
                self.spend_assertion(tenant, &ClientId::new(client.id), &verified, now)
                    .await
            }
            (_, None, None) if client.jwks_uri.is_some() => Err(invalid_client(
                "client authentication failed: this client authenticates with private_key_jwt; send client_assertion and client_assertion_type",
            )),
            (_, None, None) => Err(invalid_client(
                "client authentication failed: this machine client has no credential of its own; it gets tokens only as a workload, presenting its platform's token ([[trusted_workloads]])",
            )),
            (_, _, Some(_)) => Err(invalid_client(
                "client authentication failed: this client authenticates with private_key_jwt; send client_assertion and client_assertion_type",
            )),
            (_, _, None) => Err(invalid_client(
                "client authentication failed: this client authenticates with its client secret",
            )),
        }
    }

    /// The keys at a client's `jwks_uri`, fetched again once when the assertion names a key
    /// the cached set lacks (the client rotated its keys).
    async fn published_keys(
        &self,
        tenant: &Tenant,
        uri: &str,
        assertion: &str,
        caller: Caller,
    ) -> Result<std::sync::Arc<jsonwebtoken::jwk::JwkSet>, OAuthError> {
        let keys = self
            .registry
            .keys_at_uri(tenant, uri, false, caller)
            .await?;
        let kid = jsonwebtoken::decode_header(assertion)
            .ok()
            .and_then(|h| h.kid);
        match kid {
            Some(k) if keys.find(&k).is_none() => {
                self.registry.keys_at_uri(tenant, uri, true, caller).await
            }
            _ => Ok(keys),
        }
    }
}
