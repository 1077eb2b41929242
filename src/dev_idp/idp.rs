//! The built-in development IdP, for `upstream.kind = "dev"` tenants only: a login form that
//! asks only for a user name, the tenant's apps as static clients, PKCE S256, ES256-signed JWT
//! access tokens (audience: the requested `resource`, else the app) with a JWKS, ID tokens
//! when `openid` is asked for with a nonce, and signed refresh tokens. It exists so that the shipped configuration runs a full login with no
//! outside service; it logs anyone in, which is why it refuses non-loopback public URLs.
//!
//! Endpoints (HTTP side in `routes.rs`): `{issuer}/dev-idp/authorize` (form),
//! `{issuer}/dev-idp/jwks`, `{issuer}/dev-idp/.well-known/openid-configuration`; the token
//! endpoint is called in process by the shim.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::Tenant;
use crate::crypto::{pkce, random_token, sha256_hex};
use crate::upstream::error::IdpError;
use crate::upstream::tokens::{InProcessIdp, UpstreamTokens};

/// Access token lifetime of the dev IdP.
pub(crate) const ACCESS_TOKEN_SECONDS: u64 = 3600;
/// Refresh token lifetime of the dev IdP.
pub(crate) const REFRESH_TOKEN_SECONDS: u64 = 30 * 24 * 3600;
const CODE_SECONDS: u64 = 120;

/// The dev IdP's signing key (P-256), kept in the data directory so restarts keep tokens valid.
pub(crate) struct DevKey {
    pkcs8: Vec<u8>,
    x: String,
    y: String,
    kid: String,
}

impl DevKey {
    pub(crate) fn load_or_create(data_dir: &Path) -> Result<Self, String> {
        let path = data_dir.join("dev-idp-key.p8");
        let pkcs8 = match std::fs::read(&path) {
            Ok(b) => b,
            Err(_) => {
                let doc = EcdsaKeyPair::generate_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &SystemRandom::new(),
                )
                .map_err(|_| "cannot generate the dev IdP key".to_owned())?;
                crate::crypto::keys::write_secret_file(&path, doc.as_ref())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                doc.as_ref().to_vec()
            }
        };
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|_| format!("{} is not a P-256 key", path.display()))?;
        let public = pair.public_key().as_ref();
        let (x, y) = (
            URL_SAFE_NO_PAD.encode(&public[1..33]),
            URL_SAFE_NO_PAD.encode(&public[33..65]),
        );
        let kid = sha256_hex(&format!("{x}.{y}"))[..16].to_owned();
        Ok(Self { pkcs8, x, y, kid })
    }
}

/// A validated authorization request at the dev IdP.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DevAuthorization {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) state: String,
    pub(crate) code_challenge: String,
    pub(crate) scope: String,
    pub(crate) resource: Option<String>,
    pub(crate) nonce: Option<String>,
}

struct DevCode {
    request: DevAuthorization,
    user: String,
    expires_at: u64,
}

#[derive(Serialize, Deserialize)]
struct DevRefreshClaims {
    iss: String,
    sub: String,
    client_id: String,
    scope: String,
    resource: Option<String>,
    typ: String,
    exp: u64,
    jti: String,
}

/// The dev IdP of one tenant.
pub(crate) struct DevIdp {
    pub(crate) issuer: String,
    callback: String,
    client_ids: Vec<String>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    x: String,
    y: String,
    kid: String,
    /// Shared with the dev IdP this one replaced at a reload (`with_codes_of`).
    codes: Arc<Mutex<HashMap<String, DevCode>>>,
}

impl DevIdp {
    /// The issuer of `tenant`'s dev IdP.
    pub(crate) fn issuer_of(tenant: &Tenant) -> String {
        format!("{}/dev-idp", tenant.issuer)
    }

    pub(crate) fn new(tenant: &Tenant, key: &DevKey) -> Result<Self, String> {
        Ok(Self {
            issuer: Self::issuer_of(tenant),
            callback: format!("{}/callback", tenant.issuer),
            client_ids: tenant.apps().iter().map(|a| a.client_id.clone()).collect(),
            encoding: EncodingKey::from_ec_der(&key.pkcs8),
            decoding: DecodingKey::from_ec_components(&key.x, &key.y).map_err(|e| e.to_string())?,
            x: key.x.clone(),
            y: key.y.clone(),
            kid: key.kid.clone(),
            codes: Arc::default(),
        })
    }

    /// This IdP sharing the codes of `previous`, which it replaces at a reload: a code issued
    /// by either is redeemed once, by either, and a login at the dev IdP goes on.
    pub(crate) fn with_codes_of(self, previous: &DevIdp) -> Self {
        Self {
            codes: previous.codes.clone(),
            ..self
        }
    }

    /// Checks an authorization request; the error is shown on the page (never redirected).
    pub(crate) fn check_authorization(
        &self,
        p: &HashMap<String, String>,
    ) -> Result<DevAuthorization, String> {
        let get = |k: &str| p.get(k).cloned().filter(|v| !v.is_empty());
        let client_id = get("client_id").ok_or("client_id is missing")?;
        if !self.client_ids.contains(&client_id) {
            return Err(format!(
                "client_id '{client_id}' is not an app of this tenant"
            ));
        }
        let redirect_uri = get("redirect_uri").ok_or("redirect_uri is missing")?;
        if redirect_uri != self.callback {
            return Err("redirect_uri is not this tenant's callback".into());
        }
        if get("response_type").as_deref() != Some("code") {
            return Err("response_type must be code".into());
        }
        let code_challenge = get("code_challenge")
            .filter(|c| pkce::is_valid_challenge(c))
            .ok_or("an S256 code_challenge is required")?;
        if get("code_challenge_method").as_deref() != Some("S256") {
            return Err("code_challenge_method must be S256".into());
        }
        Ok(DevAuthorization {
            client_id,
            redirect_uri,
            state: get("state").ok_or("state is missing")?,
            code_challenge,
            scope: get("scope").unwrap_or_default(),
            resource: get("resource"),
            nonce: get("nonce"),
        })
    }

    /// Logs `user` in and returns where to send the browser.
    pub(crate) fn approve(&self, request: DevAuthorization, user: &str, now: u64) -> String {
        let code = random_token();
        let location = crate::net::append_query(
            &request.redirect_uri,
            &[
                ("code", &code),
                ("state", &request.state),
                ("iss", &self.issuer),
            ],
        );
        if let Ok(mut codes) = self.codes.lock() {
            codes.retain(|_, c| c.expires_at > now);
            codes.insert(
                code,
                DevCode {
                    request,
                    user: user.to_owned(),
                    expires_at: now + CODE_SECONDS,
                },
            );
        }
        location
    }

    /// The token endpoint, in process.
    pub(crate) fn token(
        &self,
        p: &HashMap<String, String>,
        now: u64,
    ) -> Result<UpstreamTokens, IdpError> {
        let get = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
        match get("grant_type") {
            "authorization_code" => {
                let code = self
                    .codes
                    .lock()
                    .ok()
                    .and_then(|mut c| c.remove(get("code")))
                    .filter(|c| c.expires_at > now)
                    .ok_or_else(|| {
                        IdpError::new("invalid_grant", "the code is unknown, used or expired")
                    })?;
                if get("client_id") != code.request.client_id
                    || get("redirect_uri") != code.request.redirect_uri
                {
                    return Err(IdpError::new(
                        "invalid_grant",
                        "client_id or redirect_uri does not match the authorization request",
                    ));
                }
                if !pkce::verify(get("code_verifier"), &code.request.code_challenge) {
                    return Err(IdpError::new("invalid_grant", "PKCE verification failed"));
                }
                let r = &code.request;
                let mut tokens = self.issue(
                    &code.user,
                    &r.client_id,
                    &r.scope,
                    r.resource.as_deref(),
                    now,
                )?;
                if let Some(nonce) = r.nonce.as_deref().filter(|_| has_scope(&r.scope, "openid")) {
                    tokens.id_token =
                        Some(self.id_token(&code.user, &r.client_id, Some(nonce), now)?);
                }
                Ok(tokens)
            }
            "refresh_token" => {
                let mut validation = Validation::new(Algorithm::ES256);
                validation.set_issuer(&[&self.issuer]);
                validation.validate_aud = false;
                let claims = jsonwebtoken::decode::<DevRefreshClaims>(
                    get("refresh_token"),
                    &self.decoding,
                    &validation,
                )
                .map_err(|_| {
                    IdpError::new("invalid_grant", "the refresh token is invalid or expired")
                })?
                .claims;
                if claims.typ != "refresh" || claims.client_id != get("client_id") {
                    return Err(IdpError::new(
                        "invalid_grant",
                        "the refresh token was not issued to this client",
                    ));
                }
                // Like Entra's, its refresh tokens are good for any API: a refresh that names
                // a resource or scopes gets a token for them (the dev IdP grants anything).
                let scope = p.get("scope").unwrap_or(&claims.scope);
                let resource = p.get("resource").cloned().or(claims.resource);
                self.issue(
                    &claims.sub,
                    &claims.client_id,
                    scope,
                    resource.as_deref(),
                    now,
                )
            }
            other => Err(IdpError::new(
                "unsupported_grant_type",
                &format!("grant_type '{other}' is not supported"),
            )),
        }
    }

    fn issue(
        &self,
        user: &str,
        client_id: &str,
        scope: &str,
        resource: Option<&str>,
        now: u64,
    ) -> Result<UpstreamTokens, IdpError> {
        let granted: Vec<&str> = scope
            .split(' ')
            .filter(|s| !s.is_empty() && *s != "openid" && *s != "offline_access")
            .collect();
        let access = json!({
            "iss": self.issuer,
            "sub": user,
            "aud": resource.unwrap_or(client_id),
            "client_id": client_id,
            "scope": granted.join(" "),
            "iat": now,
            "exp": now + ACCESS_TOKEN_SECONDS,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        let access_token = self.sign(Some("at+jwt"), &access)?;
        let refresh_token = if has_scope(scope, "offline_access") {
            let claims = DevRefreshClaims {
                iss: self.issuer.clone(),
                sub: user.into(),
                client_id: client_id.into(),
                scope: scope.into(),
                resource: resource.map(str::to_owned),
                typ: "refresh".into(),
                exp: now + REFRESH_TOKEN_SECONDS,
                jti: uuid::Uuid::new_v4().to_string(),
            };
            Some(self.sign(None, &claims)?)
        } else {
            None
        };
        Ok(UpstreamTokens {
            access_token,
            token_type: "Bearer".into(),
            expires_in: Some(ACCESS_TOKEN_SECONDS),
            refresh_token,
            scope: Some(granted.join(" ")),
            id_token: None,
        })
    }

    /// An ID token (OpenID Connect Core §2) for the login of `user`, at `now`.
    pub(super) fn id_token(
        &self,
        user: &str,
        client_id: &str,
        nonce: Option<&str>,
        now: u64,
    ) -> Result<String, IdpError> {
        let mut claims = json!({
            "iss": self.issuer,
            "sub": user,
            "aud": client_id,
            "iat": now,
            "auth_time": now,
            "exp": now + ACCESS_TOKEN_SECONDS,
            "preferred_username": user,
        });
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        self.sign(None, &claims)
    }

    /// `claims` signed with the dev IdP's key, with `typ` when given.
    pub(super) fn sign(
        &self,
        typ: Option<&str>,
        claims: &impl serde::Serialize,
    ) -> Result<String, IdpError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = typ.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| IdpError::new("server_error", &e.to_string()))
    }

    /// The claims of an ID token this IdP signed, if it is one and has not expired.
    pub(super) fn verified_id_token(&self, token: &str, now: u64) -> Option<Value> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false;
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<Value>(token, &self.decoding, &validation)
            .ok()?
            .claims;
        let live = claims
            .get("exp")
            .and_then(Value::as_u64)
            .is_some_and(|e| e > now);
        (live && claims.get("sub").and_then(Value::as_str).is_some()).then_some(claims)
    }

    /// The public key set (RFC 7517).
    pub(crate) fn jwks(&self) -> Value {
        json!({"keys": [{"kty": "EC", "crv": "P-256", "x": self.x, "y": self.y, "kid": self.kid, "alg": "ES256", "use": "sig"}]})
    }

    /// Enough discovery for a resource server to find the keys.
    pub(crate) fn metadata(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "authorization_endpoint": format!("{}/authorize", self.issuer),
            "jwks_uri": format!("{}/jwks", self.issuer),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "token_endpoint": format!("{}/token", self.issuer),
            "grant_types_supported": ["authorization_code", "refresh_token", "password",
                "urn:ietf:params:oauth:grant-type:token-exchange"],
        })
    }
}

pub(super) fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split(' ').any(|s| s == wanted)
}

impl InProcessIdp for DevIdp {
    fn token(
        &self,
        params: &HashMap<String, String>,
        now: u64,
    ) -> Result<UpstreamTokens, IdpError> {
        DevIdp::token(self, params, now)
    }

    fn jwks(&self) -> serde_json::Value {
        DevIdp::jwks(self)
    }
}
