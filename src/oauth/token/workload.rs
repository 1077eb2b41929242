//! Workload identity federation at `/{tenant}/token` (RFC 7523 §2.1; MCP's
//! `io.modelcontextprotocol/auth/wif`): a workload presents the token its platform gave it
//! (Kubernetes, GitHub Actions, Azure) as a JWT-bearer grant, with no client authentication,
//! and gets a minted token as the machine client its `[[trusted_workloads]]` rule names
//! (`config/trusted_workload.rs`), for that client's resources and scopes.
//!
//! The same grant type carries ID-JAGs (`id_jag.rs`); the header's `typ` picks the rules
//! (`request.rs`), and no issuer may be trusted for both (`check`), so that an ID-JAG never
//! passes as a workload's token, nor the reverse. Every rule of the assertion is checked
//! with its own description (`invalid_grant`): `typ`, algorithm, issuer, key, signature,
//! `aud`, times, lifetime, the rule's subject and claims, and the `jti`, spent once where the
//! token has one. A `client_id` the request names that no rule makes is `unauthorized_client`;
//! scopes the machine client may not have, `invalid_scope`.

use serde_json::Value;

use super::Tokens;
use super::assertion_grant::{JsonObject, check_times, split, typ};
use super::client_auth::ClientCredentials;
use super::client_credentials::machine_request;
use super::id_jag::is_id_jag_type;
use super::response::TokenResponse;
use crate::config::Tenant;
use crate::config::trusted_workload::TrustedWorkload;
use crate::domain::ClientId;
use crate::oauth::context::RequestCtx;
use crate::oauth::dpop::Proof;
use crate::oauth::error::{ErrorCode, OAuthError, invalid_grant};
use crate::oauth::params::Params;

/// What a verified workload token says.
struct Workload<'t> {
    rule: &'t TrustedWorkload,
    subject: String,
    /// Its `jti` (Entra's tokens: `uti`), if it has one, and its `exp`.
    jti: Option<String>,
    exp: u64,
}

impl Tokens {
    /// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` with a workload's token.
    pub(crate) async fn workload_grant(
        &self,
        tenant: &Tenant,
        form: &Params,
        creds: &ClientCredentials,
        proof: Option<&Proof>,
        ctx: &RequestCtx,
    ) -> Result<TokenResponse, OAuthError> {
        let answer = self.workload_token(tenant, form, creds, proof, ctx).await;
        super::count_outcome(&crate::metrics::metrics().workload_grants, tenant, &answer);
        answer
    }

    async fn workload_token(
        &self,
        tenant: &Tenant,
        form: &Params,
        creds: &ClientCredentials,
        proof: Option<&Proof>,
        ctx: &RequestCtx,
    ) -> Result<TokenResponse, OAuthError> {
        if creds.basic.is_some()
            || form.get("client_assertion").is_some()
            || form.get("client_secret").is_some()
        {
            return Err(OAuthError::invalid_request(
                "a workload's token is its only credential: send no client authentication with it (an ID-JAG, which a client presents with its own credentials, has typ oauth-id-jag+jwt)",
            ));
        }
        let client_id = form.get("client_id").filter(|c| !c.is_empty());
        if let Some(id) = client_id
            && !tenant
                .trusted_workloads()
                .iter()
                .any(|w| w.machine_client == id)
        {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                format!(
                    "client '{id}' may not use the JWT-bearer grant as a workload: no [[trusted_workloads]] rule of this tenant makes it"
                ),
            ));
        }
        let assertion = form
            .get("assertion")
            .filter(|a| !a.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("assertion is required"))?;
        let workload = self
            .verify_workload(tenant, assertion, client_id, ctx)
            .await?;
        let rule = workload.rule;
        let machine = tenant.machine_client(&rule.machine_client).ok_or_else(|| {
            tracing::error!(tenant = %tenant.id, machine_client = %rule.machine_client, "a trusted workload names a machine client the file lacks");
            OAuthError::server_error()
        })?;
        if machine.disabled {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                format!(
                    "machine client '{}' is disabled by the operator",
                    machine.client_id
                ),
            ));
        }
        let (resource, scopes) = machine_request(tenant, machine, form, proof)?;
        self.spend_workload_jti(tenant, &workload, ctx.now).await?;
        let response = self
            .machine_response(tenant, resource, machine, &scopes, proof, ctx.now)
            .await?;
        tracing::info!(target: "audit", event = "workload_token_granted", tenant = %tenant.id,
            issuer = %rule.issuer, subject = %workload.subject, client_id = %machine.client_id,
            resource = %resource.uri, scope = %scopes);
        Ok(response)
    }

    /// Checks every rule of the assertion but its `jti`'s freshness; the rule it matches.
    async fn verify_workload<'t>(
        &self,
        tenant: &'t Tenant,
        assertion: &str,
        client_id: Option<&str>,
        ctx: &RequestCtx,
    ) -> Result<Workload<'t>, OAuthError> {
        let (header, claims) = split(assertion)?;
        let typ = typ(&header);
        if is_id_jag_type(typ) {
            return Err(invalid_grant(
                "the assertion is an ID-JAG, not a workload's token, and this tenant trusts no ID-JAG issuer",
            ));
        }
        if !(typ.is_empty() || typ.eq_ignore_ascii_case("JWT")) {
            return Err(invalid_grant(format!(
                "typ is '{typ}'; a workload's token has typ JWT or none"
            )));
        }
        let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
        let of_issuer = || {
            tenant
                .trusted_workloads()
                .iter()
                .filter(move |w| !iss.is_empty() && w.issuer == iss)
        };
        let first = of_issuer().next().ok_or_else(|| {
            invalid_grant(format!(
                "the issuer '{iss}' is not trusted for workloads by this tenant"
            ))
        })?;
        // The rule is chosen on the claims as sent, and its keys then verify them: a rule
        // that matches forged claims never passes the signature of its own keys.
        let rule = of_issuer()
            .find(|w| client_id.is_none_or(|c| w.machine_client == c) && w.matches(&claims));
        self.verify_signature(
            tenant,
            rule.unwrap_or(first),
            assertion,
            &header,
            ctx.caller,
        )
        .await?;
        let rule = rule.ok_or_else(|| no_rule(iss, &claims, client_id))?;
        if !rule.accepts_audience(claims.get("aud"), &tenant.issuer) {
            return Err(invalid_grant(format!(
                "aud must be {}",
                rule.audience.as_deref().unwrap_or(&tenant.issuer)
            )));
        }
        let (exp, _) = check_times(&claims, iss, rule.max_lifetime().as_secs(), ctx.now)?;
        let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
        let subject = crate::domain::text::recordable_claim(sub)
            .map_err(|why| invalid_grant(format!("the workload's sub {why}")))?;
        let jti = ["jti", "uti"]
            .iter()
            .find_map(|k| claims.get(*k).and_then(Value::as_str))
            .map(str::to_owned);
        Ok(Workload {
            rule,
            subject: subject.to_owned(),
            jti,
            exp,
        })
    }

    /// Spends the token's `jti` (Entra's tokens: `uti`), where it has one and its rule takes
    /// tokens once, until it expires (with its issuer): a replay fails on every server sharing
    /// the store. A token without one (Kubernetes before 1.29), or of a rule with
    /// `single_use = false` (a projected token the kubelet renews), may be presented again while
    /// it lives, as its platform allows anywhere.
    async fn spend_workload_jti(
        &self,
        tenant: &Tenant,
        workload: &Workload<'_>,
        now: u64,
    ) -> Result<(), OAuthError> {
        let rule = workload.rule;
        let (true, Some(jti)) = (rule.single_use, workload.jti.as_deref()) else {
            return Ok(());
        };
        let exp = workload.exp;
        let scope = format!("workload\n{}", rule.issuer);
        let client = ClientId::new(rule.machine_client.as_str());
        if !self
            .spend_jti(tenant, &scope, jti, &client, exp, now)
            .await?
        {
            return Err(invalid_grant(
                "this token's jti was already used; ask the platform for a new token",
            ));
        }
        Ok(())
    }
}

/// The answer when an issuer's valid token matches none of its rules.
fn no_rule(iss: &str, claims: &JsonObject, client_id: Option<&str>) -> OAuthError {
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
    let sub: String = sub.chars().take(200).collect();
    invalid_grant(match client_id {
        Some(c) => format!(
            "no [[trusted_workloads]] rule of {iss} for client '{c}' matches this token (sub '{sub}' and the rule's claims)"
        ),
        None => format!(
            "no [[trusted_workloads]] rule of {iss} matches this token (sub '{sub}' and the rule's claims)"
        ),
    })
}
