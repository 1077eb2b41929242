//! The identity JWT the gateway hands an MCP server with each call (`gateway/identity.rs`):
//! who calls, for whom, with what scopes, signed with the tenant's active key (verified with
//! the tenant's JWKS like a minted token), for the MCP server's own audience and with a `typ`
//! of its own, so that it can never pass as an access token: not at the shim, which checks
//! `typ`, nor at the resource, whose URI is not its audience.

use jsonwebtoken::Header;
use serde_json::{Map, Value, json};

use super::keys::{ActiveKey, KeyError};
use crate::crypto::random_token;

/// The `typ` of an identity JWT (RFC 8725 §3.11: explicit typing).
pub const IDENTITY_TYPE: &str = "dcr-shim-identity+jwt";

/// How long an identity JWT is valid: one call, with room for clock skew.
pub const IDENTITY_LIFETIME: u64 = 60;

/// Signs `claims` (who calls) for `audience` with `key`, valid from `now` for a minute.
pub(crate) fn mint_identity(
    key: &ActiveKey,
    issuer: &str,
    audience: &str,
    mut claims: Map<String, Value>,
    now: u64,
) -> Result<String, KeyError> {
    for (name, value) in [
        ("iss", json!(issuer)),
        ("aud", json!(audience)),
        ("iat", json!(now)),
        ("exp", json!(now + IDENTITY_LIFETIME)),
        ("jti", json!(random_token())),
    ] {
        claims.insert(name.to_owned(), value);
    }
    let header = Header {
        typ: Some(IDENTITY_TYPE.to_owned()),
        kid: Some(key.kid.clone()),
        ..Header::new(key.alg)
    };
    jsonwebtoken::encode(&header, &claims, &key.encoding)
        .map_err(|e| KeyError::Generate(format!("signing an identity JWT failed: {e}")))
}
