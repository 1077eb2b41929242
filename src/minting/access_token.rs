//! Minted access tokens: JWTs in the RFC 9068 profile, signed with the tenant's active key
//! (`keys.rs`), and their verification for the shim's own endpoints (introspection, token
//! exchange). A resource server verifies them the same way with the tenant's JWKS.

use jsonwebtoken::{Header, Validation};
use serde_json::{Map, Value, json};

use super::keys::{ActiveKey, KeyError, SigningKeys};
use crate::crypto::random_token;
use crate::domain::TenantId;

/// RFC 9068 §2.1: the `typ` of a JWT access token (`application/at+jwt` is the same type).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// What a minted token says, besides the times and its id.
pub(crate) struct Grant<'a> {
    pub(crate) issuer: &'a str,
    /// The resource URI in the tenant's configured form.
    pub(crate) audience: &'a str,
    /// The user's stable id at the IdP, or a machine client's id (`client_id` then says the
    /// same: no user).
    pub(crate) subject: &'a str,
    pub(crate) client_id: &'a str,
    /// MCP-facing scope names, space-separated.
    pub(crate) scope: &'a str,
    /// When the user signed in; none for a machine client.
    pub(crate) auth_time: Option<u64>,
    /// The refresh family (the login) the token belongs to, so that revoking it makes the
    /// token inactive at introspection; none for a machine client, which has no login.
    pub(crate) session: Option<&'a str>,
    /// Claims copied from the IdP's ID token, under the names the resource gives them.
    pub(crate) copied: &'a Map<String, Value>,
    pub(crate) lifetime: u64,
    /// The thumbprint of the DPoP key the token is bound to (RFC 9449 §6.1: `cnf.jkt`).
    pub(crate) confirmation: Option<&'a str>,
}

/// A signed token and the seconds it lives.
pub(crate) struct Minted {
    pub(crate) token: String,
    pub(crate) expires_in: u64,
}

/// Signs `grant` with `key`. A key about to leave the JWKS shortens the token's life to
/// match, so that no token outlives the key that verifies it.
pub(crate) fn mint(key: &ActiveKey, grant: &Grant<'_>, now: u64) -> Result<Minted, KeyError> {
    let mut exp = now.saturating_add(grant.lifetime);
    if let Some(until) = key.publish_until {
        exp = exp.min(until.saturating_sub(60)).max(now);
    }
    let mut claims = grant.copied.clone();
    for (name, value) in [
        ("iss", json!(grant.issuer)),
        ("sub", json!(grant.subject)),
        ("aud", json!(grant.audience)),
        ("client_id", json!(grant.client_id)),
        ("scope", json!(grant.scope)),
        ("iat", json!(now)),
        ("exp", json!(exp)),
        ("jti", json!(random_token())),
    ] {
        claims.insert(name.to_owned(), value);
    }
    if let Some(auth_time) = grant.auth_time {
        claims.insert("auth_time".to_owned(), json!(auth_time));
    }
    if let Some(session) = grant.session {
        claims.insert("sid".to_owned(), json!(session));
    }
    if let Some(jkt) = grant.confirmation {
        claims.insert("cnf".to_owned(), json!({ "jkt": jkt }));
    }
    let header = Header {
        typ: Some(ACCESS_TOKEN_TYPE.to_owned()),
        kid: Some(key.kid.clone()),
        ..Header::new(key.alg)
    };
    let token = jsonwebtoken::encode(&header, &claims, &key.encoding)
        .map_err(|e| KeyError::Generate(format!("signing failed: {e}")))?;
    Ok(Minted {
        token,
        expires_in: exp - now,
    })
}

/// Why a presented token is not a valid minted token of the tenant.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Invalid {
    #[error("not a JWT the shim signed: {0}")]
    Malformed(String),
    #[error("typ is not at+jwt")]
    NotAnAccessToken,
    #[error("signed with a key this tenant does not publish")]
    UnknownKey,
    #[error("{0}")]
    Claims(String),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

/// The claims of `token` if it is an access token the tenant signed, with a key it publishes,
/// and not expired. The algorithm is the key's (ES256 or RS256), never the token's: no
/// `none`, no HMAC under a public key.
pub(crate) async fn verify(
    keys: &SigningKeys,
    tenant: &TenantId,
    issuer: &str,
    token: &str,
    now: u64,
) -> Result<Map<String, Value>, Invalid> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| Invalid::Malformed(e.to_string()))?;
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE) || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok {
        return Err(Invalid::NotAnAccessToken);
    }
    let kid = header.kid.ok_or(Invalid::UnknownKey)?;
    let key = keys
        .verifying(tenant, &kid, now)
        .await?
        .ok_or(Invalid::UnknownKey)?;
    if header.alg != key.alg {
        return Err(Invalid::Malformed(format!(
            "alg {:?} is not its key's {:?}",
            header.alg, key.alg
        )));
    }
    let mut validation = Validation::new(key.alg);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)
        .map_err(|e| Invalid::Claims(e.to_string()))?;
    // Expiry against the caller's clock, which tests can move.
    let exp = data.claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
    if exp <= now {
        return Err(Invalid::Claims("the token has expired".into()));
    }
    Ok(data.claims)
}
