//! The protected-resource metadata (RFC 9728) the shim serves for a gateway resource, in the
//! shape the MCP SDKs read: the resource URI exactly as clients use it, the tenant's issuer as
//! its one authorization server (the SDKs compare it byte for byte with the issuer's own
//! metadata), the scopes clients may ask for, tokens in the `Authorization` header only, and
//! for a minted resource the DPoP algorithms (RFC 9449) and whether its tokens must be bound.

use serde_json::{Value, json};

use crate::config::Tenant;
use crate::config::resource::ResourceConfig;

pub(crate) fn protected_resource_metadata(tenant: &Tenant, resource: &ResourceConfig) -> Value {
    let scopes: Vec<&str> = resource.scopes.iter().map(|s| s.name.as_str()).collect();
    let mut doc = json!({
        "resource": resource.uri.as_str(),
        "authorization_servers": [tenant.issuer],
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
    });
    if let Some(name) = &resource.name {
        doc["resource_name"] = json!(name);
    }
    if let Some(minted) = resource.minted() {
        // RFC 9728 §2: its tokens may be DPoP-bound (RFC 9449), and must be when it says so.
        doc["dpop_signing_alg_values_supported"] = json!(crate::oauth::dpop::ALGORITHMS);
        if minted.requires_dpop() {
            doc["dpop_bound_access_tokens_required"] = json!(true);
        }
    }
    doc
}

/// The protected-resource metadata's URL of `resource` (RFC 9728 §3.1: the well-known path
/// inserted between the origin and the resource's path).
pub(crate) fn metadata_url(resource: &str) -> String {
    match url::Url::parse(resource) {
        Ok(u) => format!(
            "{}/.well-known/oauth-protected-resource{}",
            u.origin().ascii_serialization(),
            u.path().trim_end_matches('/')
        ),
        Err(_) => String::new(),
    }
}

/// Why a call to a gateway resource is refused before it reaches the MCP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No token, or one that is not valid here: 401 `invalid_token` (RFC 6750 §3.1).
    InvalidToken,
    /// A valid token without a scope the call needs: 403 `insufficient_scope`, naming every
    /// scope needed so that clients step up with the union (the MCP SDKs' v2 clients do).
    InsufficientScope,
}

/// The `WWW-Authenticate` value of a refusal, in the shape the MCP SDKs parse: `Bearer` first,
/// every value quoted, the metadata's absolute URL and the scopes always given.
pub(crate) fn challenge(
    refusal: Refusal,
    description: &str,
    scopes: &[&str],
    metadata_url: &str,
) -> String {
    let error = match refusal {
        Refusal::InvalidToken => "invalid_token",
        Refusal::InsufficientScope => "insufficient_scope",
    };
    // Quoted strings carry no quote or backslash (RFC 9110 §5.6.4): said otherwise here.
    format!(
        "Bearer error=\"{error}\", error_description=\"{}\", scope=\"{}\", resource_metadata=\"{}\"",
        quoted(description),
        quoted(&scopes.join(" ")),
        quoted(metadata_url)
    )
}

/// The challenge of a call that needs a stronger sign-in (RFC 9470 §3): `challenge` with the
/// `acr_values` any one of which will do.
pub(crate) fn sign_in_challenge(
    description: &str,
    acr_values: &[String],
    scopes: &[&str],
    metadata_url: &str,
) -> String {
    format!(
        "Bearer error=\"insufficient_user_authentication\", error_description=\"{}\", acr_values=\"{}\", scope=\"{}\", resource_metadata=\"{}\"",
        quoted(description),
        quoted(&acr_values.join(" ")),
        quoted(&scopes.join(" ")),
        quoted(metadata_url)
    )
}

/// The challenge of a refused DPoP call (RFC 9449 §7.1): the `DPoP` scheme with its error
/// (`invalid_dpop_proof`, `use_dpop_nonce` or `invalid_token`), the algorithms proofs may use,
/// and the metadata, as the MCP SDKs read it.
pub(crate) fn dpop_challenge(error: &str, description: &str, metadata_url: &str) -> String {
    format!(
        "DPoP error=\"{error}\", error_description=\"{}\", algs=\"{}\", resource_metadata=\"{}\"",
        quoted(description),
        crate::oauth::dpop::ALGORITHMS.join(" "),
        quoted(metadata_url)
    )
}

/// A value for a quoted string of a challenge: no quote or backslash (RFC 9110 §5.6.4), said
/// otherwise, and visible ASCII only, at most 300 characters (a description may quote what a
/// client sent, which must never break the header).
fn quoted(value: &str) -> String {
    value
        .chars()
        .take(300)
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_names_the_resource_its_issuer_and_its_scopes() {
        let tenant = Tenant::of_config(
            toml::from_str(
                r#"
                upstream = { kind = "dev" }
                [[resources]]
                uri = "https://files.example.com/mcp"
                name = "Files"
                token = "minted"
                scopes = [{ name = "files.read", upstream = "files.read" }, { name = "files.write", upstream = "files.write" }]
                gateway = { backend = "http://files.internal:3000/mcp" }
                "#,
            )
            .unwrap(),
        );
        let doc = protected_resource_metadata(&tenant, &tenant.resources()[0]);
        assert_eq!(doc["resource"], "https://files.example.com/mcp");
        assert_eq!(doc["authorization_servers"], json!([tenant.issuer]));
        assert_eq!(
            doc["scopes_supported"],
            json!(["files.read", "files.write"])
        );
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        assert_eq!(doc["resource_name"], "Files");
    }

    #[test]
    fn a_refusal_names_its_error_the_scopes_and_the_metadata() {
        let h = challenge(
            Refusal::InsufficientScope,
            "the \"delete\" tool needs files.write",
            &["files.read", "files.write"],
            "https://files.example.com/.well-known/oauth-protected-resource/mcp",
        );
        assert_eq!(
            h,
            "Bearer error=\"insufficient_scope\", error_description=\"the 'delete' tool needs files.write\", scope=\"files.read files.write\", resource_metadata=\"https://files.example.com/.well-known/oauth-protected-resource/mcp\""
        );
        assert!(
            challenge(Refusal::InvalidToken, "no token", &[], "u")
                .starts_with("Bearer error=\"invalid_token\"")
        );
    }
}
