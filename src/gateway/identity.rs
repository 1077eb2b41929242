//! How the MCP server behind the gateway learns who calls (`IdentityForm`): a signed identity
//! JWT, plain headers, or nothing. The names are the gateway's own: the client's copies of
//! them are never passed (`forward.rs` passes only Streamable HTTP's headers).

use serde_json::{Map, Value};

use super::admission::Caller;
use crate::config::Tenant;
use crate::config::gateway::{GatewayConfig, IdentityForm};
use crate::config::resource::ResourceConfig;
use crate::oauth::AuthServer;
use crate::oauth::error::OAuthError;

/// The identity JWT's header.
pub(crate) const IDENTITY_HEADER: &str = "x-dcr-shim-identity";
/// Plain headers: the user (`sub`), the client and the granted scopes.
pub(crate) const USER_HEADER: &str = "x-dcr-shim-user";
pub(crate) const CLIENT_HEADER: &str = "x-dcr-shim-client";
pub(crate) const SCOPE_HEADER: &str = "x-dcr-shim-scope";

/// Claims of the access token that say nothing to the MCP server, or that the identity JWT
/// sets itself.
const NOT_COPIED: [&str; 7] = ["iss", "aud", "iat", "exp", "jti", "sid", "nbf"];

/// The headers that carry the caller's identity to the MCP server of `resource`.
pub(crate) async fn identity_headers(
    auth: &AuthServer,
    tenant: &Tenant,
    resource: &ResourceConfig,
    gateway: &GatewayConfig,
    caller: &Caller,
    now: u64,
) -> Result<Vec<(&'static str, String)>, OAuthError> {
    Ok(match gateway.identity {
        IdentityForm::None => Vec::new(),
        IdentityForm::Headers => vec![
            (USER_HEADER, header_safe(caller.text("sub"))),
            (CLIENT_HEADER, header_safe(caller.text("client_id"))),
            (SCOPE_HEADER, header_safe(caller.text("scope"))),
        ],
        IdentityForm::Jwt => {
            let audience = gateway
                .identity_audience
                .clone()
                .unwrap_or_else(|| gateway.backend.to_string());
            let jwt = auth
                .identity_jwt(tenant, &audience, identity_claims(resource, caller), now)
                .await?;
            vec![(IDENTITY_HEADER, jwt)]
        }
    })
}

/// `value` as a header value: printable ASCII and spaces as they are, anything else (and `%`)
/// percent-encoded as UTF-8 (RFC 3986 §2.1), so that a user name in any script reaches the MCP
/// server intact instead of failing the call.
fn header_safe(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if (c.is_ascii_graphic() || c == ' ') && c != '%' {
            out.push(c);
        } else {
            let mut bytes = [0; 4];
            for b in c.encode_utf8(&mut bytes).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// What the identity JWT says besides its own times, issuer and audience: the caller's
/// claims (user, client, scopes, claims copied from the ID token) and the resource called.
fn identity_claims(resource: &ResourceConfig, caller: &Caller) -> Map<String, Value> {
    let mut claims: Map<String, Value> = caller
        .claims
        .iter()
        .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    claims.insert("resource".into(), Value::from(resource.uri.as_str()));
    claims
}

#[cfg(test)]
mod tests {
    use super::header_safe;

    #[test]
    fn identity_headers_carry_any_name_as_a_valid_header_value() {
        assert_eq!(header_safe("ada files.read"), "ada files.read");
        assert_eq!(header_safe("zoë\n100%"), "zo%C3%AB%0A100%25");
        assert!(actix_web::http::header::HeaderValue::from_str(&header_safe("名前\r\n")).is_ok());
    }
}
