//! The Identity Assertion JWT Authorization Grant (ID-JAG; draft-ietf-oauth-identity-assertion-
//! authz-grant, MCP's Enterprise-Managed Authorization) at `/{tenant}/token`: a confidential
//! client presents, as an RFC 7523 JWT-bearer grant, an assertion that an enterprise IdP the
//! tenant trusts (`[[trusted_issuers]]`) issued for it after exchanging the user's ID token. No
//! browser, no consent screen: the company's IdP decided. The answer is a minted access token
//! for the resource the assertion names, and no refresh token (the client asks the IdP for a
//! fresh assertion, so revocation stays with the IdP).
//!
//! Only the clients the tenant file names get their assertions examined (`unauthorized_client`
//! otherwise). Every rule is checked with its own description (`invalid_grant`): `typ`,
//! algorithm, issuer, key, signature, `aud`, `iss`, `client_id`, `sub`, times, lifetime,
//! `resource`, and the `jti`, spent once in the store so that a replay fails on every server;
//! a scope the resource, the assertion and the client's app leave nothing of is
//! `invalid_scope`.

use serde_json::{Map, Value};

use crate::oauth::params::Params;

use super::Tokens;
use super::assertion_grant::{check_times, split, typ};
use super::dpop_binding::bound_for;
use super::response::TokenResponse;
use crate::config::Tenant;
use crate::config::resource::MintedResource;
use crate::config::tenant::{AppConfig, ResourceConfig};
use crate::config::trusted_issuer::TrustedIssuer;
use crate::domain::{ClientRecord, ScopeSet};
use crate::oauth::context::RequestCtx;
use crate::oauth::error::invalid_grant;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::minted::TokenSubject;
use crate::oauth::records::{Family, FamilyId};
use crate::oauth::scopes::app_may_have;
use crate::upstream::tokens::UpstreamTokens;

pub(super) const ID_JAG_TYPE: &str = "oauth-id-jag+jwt";

/// What a valid assertion says.
struct IdJag<'t> {
    /// The DPoP key the request proved, which the minted token is bound to: not the
    /// assertion's, which names no key (`cnf` is refused).
    binding: Option<String>,
    issuer: &'t TrustedIssuer,
    subject: String,
    jti: String,
    exp: u64,
    auth_time: u64,
    /// The user's authentication methods, as the enterprise IdP gave them.
    amr: Option<Value>,
    resource: Option<String>,
    scope: Option<String>,
}

/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`. The assertion's presence is
/// checked after the client's right to the grant, so that a client that may not use it learns
/// nothing more.
pub(crate) struct JwtBearerRequest<'f> {
    pub(crate) assertion: Option<&'f str>,
    pub(crate) resource: Option<&'f str>,
    pub(crate) scope: Option<&'f str>,
    /// The key the request's DPoP proof proved (`dpop_binding.rs`).
    pub(crate) dpop_jkt: Option<String>,
}

impl<'f> JwtBearerRequest<'f> {
    pub(crate) fn parse(form: &'f Params) -> Self {
        Self {
            assertion: form.get("assertion"),
            resource: form.get("resource"),
            scope: form.get("scope"),
            dpop_jkt: None,
        }
    }
}

/// Whether a JWT-bearer grant's assertion says it is an ID-JAG (its header's `typ`, read
/// unverified: it only picks whose rules check it, and each set checks it whole).
pub(crate) fn names_id_jag(assertion: Option<&str>) -> bool {
    assertion
        .and_then(|a| split(a).ok())
        .is_some_and(|(header, _)| is_id_jag_type(typ(&header)))
}

pub(super) fn is_id_jag_type(typ: &str) -> bool {
    typ.eq_ignore_ascii_case(ID_JAG_TYPE)
        || typ.eq_ignore_ascii_case("application/oauth-id-jag+jwt")
}

impl Tokens {
    /// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` with an ID-JAG.
    /// The client is authenticated and approved (`token/mod.rs`).
    pub(crate) async fn id_jag_grant(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        req: JwtBearerRequest<'_>,
        ctx: &RequestCtx,
    ) -> Result<TokenResponse, OAuthError> {
        let now = ctx.now;
        if !client.metadata.token_endpoint_auth_method.is_confidential() {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "the ID-JAG grant is for confidential clients (a client secret, or private_key_jwt); this client is public",
            ));
        }
        // Only the clients the tenant file names may have their assertions examined: anyone else
        // learns nothing about the trusted issuers and causes no key fetch.
        let named = tenant
            .trusted_issuers()
            .iter()
            .any(|t| t.allows_client(client.client_id.as_str(), client.cimd_host()));
        if !named {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "this client may not use the ID-JAG grant; the tenant file names the clients that may",
            ));
        }
        let assertion = req
            .assertion
            .filter(|a| !a.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("assertion is required"))?;
        let mut jag = self.verify_id_jag(tenant, client, assertion, ctx).await?;
        let resource = granted_resource(tenant, jag.resource.as_deref(), req.resource)?;
        bound_for(resource, req.dpop_jkt.as_deref())?;
        jag.binding = req.dpop_jkt;
        let app = crate::oauth::mapping::mapped_app(tenant, client, &resource)?;
        let scopes = granted_scopes(&resource, app, jag.scope.as_deref(), req.scope)?;
        self.spend_id_jag(tenant, client, &jag, now).await?;
        let response = self
            .issue_for_id_jag(tenant, client, &jag, resource, &scopes, now)
            .await?;
        self.registry.record_use(tenant, client, now).await;
        tracing::info!(target: "audit", event = "id_jag_grant", tenant = %tenant.id, issuer = %jag.issuer.issuer,
            subject = %jag.subject, client_id = %client.client_id, resource = %resource.uri, scope = %scopes);
        Ok(response)
    }

    /// Checks every rule of the assertion but the `jti`'s freshness.
    async fn verify_id_jag<'t>(
        &self,
        tenant: &'t Tenant,
        client: &ClientRecord,
        assertion: &str,
        ctx: &RequestCtx,
    ) -> Result<IdJag<'t>, OAuthError> {
        let now = ctx.now;
        // Neither is trusted before the signature verifies, and the payload is then the
        // claims: the signed bytes are the same.
        let (header, payload) = split(assertion)?;
        let typ = typ(&header);
        if !is_id_jag_type(typ) {
            return Err(invalid_grant(format!("typ is '{typ}', not {ID_JAG_TYPE}")));
        }
        let iss = payload.get("iss").and_then(Value::as_str).unwrap_or("");
        // An issuer not trusted, or not for this client, gets one answer, before any key is
        // fetched.
        let issuer = tenant
            .trusted_issuer(iss)
            .filter(|t| t.allows_client(client.client_id.as_str(), client.cimd_host()))
            .ok_or_else(|| {
                invalid_grant(format!(
                    "the issuer '{iss}' is not trusted by this tenant for this client"
                ))
            })?;
        self.verify_signature(tenant, issuer, assertion, &header, ctx.caller)
            .await?;
        check_claims(tenant, client, issuer, &payload, now)
    }

    /// Spends the assertion's `jti` (with its issuer) until it expires: a replay fails on every
    /// server sharing the store.
    async fn spend_id_jag(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        jag: &IdJag<'_>,
        now: u64,
    ) -> Result<(), OAuthError> {
        let scope = format!("id-jag\n{}", jag.issuer.issuer);
        let first = self
            .spend_jti(tenant, &scope, &jag.jti, &client.client_id, jag.exp, now)
            .await?;
        if !first {
            return Err(invalid_grant(
                "this assertion's jti was already used; ask the IdP for a new assertion",
            ));
        }
        Ok(())
    }

    /// The minted token of the grant, with a family of its own (the token's `sid`), so that
    /// the operator lists and revokes it by user like any login.
    async fn issue_for_id_jag(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        jag: &IdJag<'_>,
        resource: MintedResource<'_>,
        scopes: &ScopeSet,
        now: u64,
    ) -> Result<TokenResponse, OAuthError> {
        let family_id = FamilyId::generate();
        let family = Family {
            client_id: client.client_id.clone(),
            revoked: false,
            created_at: now,
            subject: Some(jag.subject.clone()),
            auth_time: Some(jag.auth_time),
            exchange: None,
            issuer: Some(jag.issuer.issuer.clone()),
        };
        let mut group = crate::store::WriteGroup::default();
        crate::oauth::family_index::insert_family(
            &mut group,
            &tenant.id,
            &family_id,
            &family,
            Some(now + resource.family_seconds_without_refresh()),
        )?;
        if !self.records.write_all(group, now).await? {
            tracing::error!(tenant = %tenant.id, "a new family id collided with a stored one");
            return Err(OAuthError::server_error());
        }
        let mut tokens = UpstreamTokens::none();
        let mut claims = Map::new();
        crate::oauth::minted::add_login_claims(
            &mut claims,
            jag.amr.as_ref(),
            Some(&jag.issuer.issuer),
        );
        let who = TokenSubject {
            subject: &jag.subject,
            client_id: &client.client_id,
            scopes,
            auth_time: jag.auth_time,
            family: &family_id,
            claims: &claims,
            confirmation: jag.binding.as_deref(),
        };
        self.minter
            .mint_into(tenant, resource, &who, &mut tokens, now)
            .await?;
        Ok(TokenResponse::bearer(&tokens, scopes).bound_to(jag.binding.as_deref()))
    }
}

/// The assertion's claims against the rules of the draft and the EMA extension.
fn check_claims<'t>(
    tenant: &Tenant,
    client: &ClientRecord,
    issuer: &'t TrustedIssuer,
    claims: &Map<String, Value>,
    now: u64,
) -> Result<IdJag<'t>, OAuthError> {
    check_audience(tenant, claims)?;
    let times = check_times(claims, &issuer.issuer, issuer.max_lifetime().as_secs(), now)?;
    check_identity(client, issuer, claims, times, now)
}

/// The assertion's audience: this tenant's issuer, alone.
fn check_audience(tenant: &Tenant, claims: &Map<String, Value>) -> Result<(), OAuthError> {
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => same_issuer(a, &tenant.issuer),
        Some(Value::Array(a)) => {
            a.len() == 1
                && a[0]
                    .as_str()
                    .is_some_and(|a| same_issuer(a, &tenant.issuer))
        }
        _ => false,
    };
    if !aud_ok {
        return Err(invalid_grant(format!(
            "aud must be this tenant's issuer, {}",
            tenant.issuer
        )));
    }
    Ok(())
}

/// The assertion's claims after its audience and lifetime: who it names, for which client.
fn check_identity<'t>(
    client: &ClientRecord,
    issuer: &'t TrustedIssuer,
    claims: &Map<String, Value>,
    (exp, iat): (u64, u64),
    now: u64,
) -> Result<IdJag<'t>, OAuthError> {
    let text = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let time = |k: &str| claims.get(k).and_then(Value::as_u64);
    if text("sub").is_none() {
        return Err(invalid_grant("sub is missing"));
    }
    let subject = text(&issuer.subject_claim).ok_or_else(|| {
        invalid_grant(format!(
            "the claim '{}' that names the user is missing",
            issuer.subject_claim
        ))
    })?;
    // The subject is recorded on the grant, logged and listed: bounded and printable.
    let subject = crate::domain::text::recordable_claim(subject).map_err(|why| {
        invalid_grant(format!(
            "the claim '{}' that names the user {why}",
            issuer.subject_claim
        ))
    })?;
    if text("client_id") != Some(client.client_id.as_str()) {
        return Err(invalid_grant(
            "the assertion's client_id is not the authenticated client",
        ));
    }
    let jti = text("jti").ok_or_else(|| invalid_grant("jti is missing"))?;
    if claims.contains_key("cnf") {
        return Err(invalid_grant(
            "the assertion is bound to a key (cnf), and DPoP is not supported here",
        ));
    }
    Ok(IdJag {
        binding: None,
        issuer,
        subject: subject.to_owned(),
        jti: jti.to_owned(),
        exp,
        auth_time: time("auth_time").unwrap_or(iat).min(now),
        amr: claims.get("amr").cloned(),
        resource: text("resource").map(str::to_owned),
        scope: text("scope").map(str::to_owned),
    })
}

/// Issuer identifiers compared as RFC 8414 says, allowing the trailing slash some IdPs add.
fn same_issuer(a: &str, issuer: &str) -> bool {
    a.trim_end_matches('/') == issuer.trim_end_matches('/')
}

/// The resource of the grant: the assertion's, the request's (which must agree), else the
/// tenant's default; it must be one of the tenant's, with minted tokens.
fn granted_resource<'t>(
    tenant: &'t Tenant,
    claimed: Option<&str>,
    requested: Option<&str>,
) -> Result<MintedResource<'t>, OAuthError> {
    let named = claimed.or(requested);
    let resource = match named {
        Some(uri) => tenant.resource(uri).ok_or_else(|| {
            invalid_grant(format!("resource '{uri}' is not one of this tenant's"))
        })?,
        None => tenant.default_resource(),
    };
    if let (Some(c), Some(r)) = (claimed, requested)
        && !resource.uri.matches(r)
    {
        return Err(invalid_grant(format!(
            "the request's resource '{r}' differs from the assertion's '{c}'"
        )));
    }
    resource.minted().ok_or_else(|| {
        invalid_grant(format!(
            "resource '{}' has passthrough tokens, and an ID-JAG grant answers with a minted token",
            resource.uri
        ))
    })
}

/// The scopes of the grant (MCP-facing names): those both the request and the assertion name
/// (each when given), else the resource's default, kept to what the resource offers.
fn granted_scopes(
    resource: &ResourceConfig,
    app: &AppConfig,
    claimed: Option<&str>,
    requested: Option<&str>,
) -> Result<ScopeSet, OAuthError> {
    let split = |s: &str| {
        s.split(' ')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // What the resource offers that the client's app may have, as at `/authorize`.
    let offered: Vec<&str> = resource
        .scopes
        .iter()
        .filter(|s| app_may_have(app, s))
        .map(|s| s.name.as_str())
        .collect();
    let asked: Vec<String> = match (claimed.map(split), requested.map(split)) {
        (Some(c), Some(r)) => r.into_iter().filter(|s| c.contains(s)).collect(),
        (Some(c), None) => c,
        (None, Some(r)) => r,
        (None, None) if resource.default_scopes.is_empty() => {
            offered.iter().map(|s| (*s).to_owned()).collect()
        }
        (None, None) => resource.default_scopes.clone(),
    };
    let granted: ScopeSet = asked
        .iter()
        .filter(|s| offered.contains(&s.as_str()))
        .cloned()
        .collect();
    if granted.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!(
                "none of '{}' is a scope of {} that the assertion and this client's app allow",
                asked.join(" "),
                resource.uri
            ),
        ));
    }
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Tenant {
        Tenant::new(
            crate::domain::TenantId::parse("t").unwrap(),
            "t.toml".into(),
            "https://as.example/t".into(),
            toml::from_str(
                r#"
                upstream = { kind = "dev" }
                [[resources]]
                uri = "https://mcp.example/files"
                token = "minted"
                scopes = [{ name = "files.read", upstream = "files.read" }]
                "#,
            )
            .unwrap(),
        )
    }

    fn issuer() -> TrustedIssuer {
        toml::from_str(r#"issuer = "https://idp.example""#).unwrap()
    }

    fn client() -> ClientRecord {
        serde_json::from_value(serde_json::json!({
            "client_id": "agent",
            "source": {"kind": "dcr"},
            "metadata": {
                "redirect_uris": ["https://agent.example/cb"],
                "token_endpoint_auth_method": "client_secret_basic",
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "application_type": "web",
            },
            "apps": {},
            "issued_at": 0,
            "last_used_at": 0,
        }))
        .unwrap()
    }

    const NOW: u64 = 1_800_000_000;

    fn claims(change: impl FnOnce(&mut Map<String, Value>)) -> Map<String, Value> {
        let mut c = serde_json::json!({
            "iss": "https://idp.example", "aud": "https://as.example/t", "sub": "u1",
            "client_id": "agent", "jti": "j1", "iat": NOW - 10, "exp": NOW + 290,
            "resource": "https://mcp.example/files", "scope": "files.read",
        })
        .as_object()
        .unwrap()
        .clone();
        change(&mut c);
        c
    }

    fn why(change: impl FnOnce(&mut Map<String, Value>)) -> String {
        let (t, i, c) = (tenant(), issuer(), client());
        match check_claims(&t, &c, &i, &claims(change), NOW) {
            Ok(_) => "accepted".into(),
            Err(e) => {
                assert_eq!(e.code, ErrorCode::InvalidGrant);
                e.description
            }
        }
    }

    /// Each claim set to a value (or removed, `None`) is refused with words that say why.
    fn refused(cases: Vec<(&'static str, Option<Value>, &str)>) {
        for (claim, value, expected) in cases {
            let said = why(|c| match value {
                Some(v) => {
                    c.insert(claim.into(), v);
                }
                None => {
                    c.remove(claim);
                }
            });
            assert!(
                said.contains(expected),
                "{claim}: {expected:?} not in {said:?}"
            );
        }
    }

    #[test]
    fn an_id_jag_names_its_user_and_the_authenticated_client() {
        let (t, i, c) = (tenant(), issuer(), client());
        let jag = check_claims(&t, &c, &i, &claims(|_| {}), NOW).unwrap();
        assert_eq!((jag.subject.as_str(), jag.jti.as_str()), ("u1", "j1"));
        assert_eq!(jag.resource.as_deref(), Some("https://mcp.example/files"));
        assert_eq!(jag.auth_time, NOW - 10, "iat when auth_time is absent");
        refused(vec![
            ("sub", None, "sub is missing"),
            (
                "sub",
                Some("a\u{202E}b".into()),
                "the claim 'sub' that names the user",
            ),
            (
                "client_id",
                Some("another".into()),
                "not the authenticated client",
            ),
            ("jti", None, "jti is missing"),
            (
                "cnf",
                Some(serde_json::json!({"jkt": "x"})),
                "bound to a key",
            ),
        ]);
    }

    #[test]
    fn an_id_jags_audience_is_the_tenants_issuer_alone() {
        // The issuer's trailing slash, and a one-element audience array, are accepted.
        assert_eq!(
            why(|c| {
                c.insert("aud".into(), "https://as.example/t/".into());
            }),
            "accepted"
        );
        assert_eq!(
            why(|c| {
                c.insert("aud".into(), serde_json::json!(["https://as.example/t"]));
            }),
            "accepted"
        );
        refused(vec![
            (
                "aud",
                Some("https://as.example/other".into()),
                "aud must be this tenant's issuer",
            ),
            (
                "aud",
                Some(serde_json::json!(["https://as.example/t", "x"])),
                "aud must be this tenant's issuer",
            ),
        ]);
    }

    #[test]
    fn an_id_jag_is_used_within_its_short_lifetime() {
        refused(vec![
            ("exp", None, "exp is missing"),
            ("exp", Some((NOW - 61).into()), "the assertion has expired"),
            ("iat", None, "iat is missing"),
            ("iat", Some((NOW + 61).into()), "not valid yet"),
            ("nbf", Some((NOW + 61).into()), "not valid yet"),
            ("exp", Some((NOW + 3600).into()), "longer than"),
        ]);
    }

    #[test]
    fn the_grants_resource_and_scopes_agree_with_the_assertion() {
        let t = tenant();
        assert!(granted_resource(&t, Some("https://mcp.example/files"), None).is_ok());
        assert!(
            granted_resource(&t, None, None).is_ok(),
            "the default resource"
        );
        let differs = granted_resource(
            &t,
            Some("https://mcp.example/files"),
            Some("https://mcp.example/mail"),
        )
        .unwrap_err();
        assert_eq!(differs.code, ErrorCode::InvalidGrant);
        let app: AppConfig =
            toml::from_str("name = \"a\"\nclient_id = \"a\"\ncredential = { kind = \"none\" }")
                .unwrap();
        let resource = &t.resources()[0];
        let granted = granted_scopes(
            resource,
            &app,
            Some("files.read files.write"),
            Some("files.read"),
        )
        .unwrap();
        assert_eq!(granted.to_string(), "files.read");
        let none = granted_scopes(resource, &app, Some("files.write"), None).unwrap_err();
        assert_eq!(none.code, ErrorCode::InvalidScope);
    }
}
