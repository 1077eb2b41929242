//! Authorization server metadata (RFC 8414 §2), served for each tenant at the three discovery
//! URLs MCP clients try.

use serde_json::{Value, json};

use super::client_assertion::ALGORITHM_NAMES;
use crate::config::Tenant;

/// The metadata document of `tenant`. `offers_refresh` says whether the upstream issues
/// refresh tokens, which decides whether `offline_access` is offered.
pub(crate) fn authorization_server_metadata(tenant: &Tenant, offers_refresh: bool) -> Value {
    let issuer = &tenant.issuer;
    let policy = tenant.registration();
    let mut scopes: Vec<&str> = tenant
        .resources()
        .iter()
        .flat_map(|r| r.scopes.iter().map(|s| s.name.as_str()))
        .collect();
    let mut grants = vec!["authorization_code"];
    if offers_refresh {
        scopes.push("offline_access");
        grants.push("refresh_token");
    }
    if tenant.trusts_issuers() || tenant.trusts_workloads() {
        // ID-JAGs (`id_jag.rs`) and workloads' tokens (`workload.rs`).
        grants.push(super::token::grant_names::JWT_BEARER_GRANT);
    }
    if tenant.offers_token_exchange() {
        // For the tenant's resource servers (`exchange.rs`), never for registered clients.
        grants.push(super::token::grant_names::TOKEN_EXCHANGE);
    }
    if tenant.offers_client_credentials() {
        // For the machine clients the tenant file names (`client_credentials.rs`).
        grants.push(super::token::grant_names::CLIENT_CREDENTIALS);
    }
    let mut auth_methods = vec!["none", "client_secret_basic", "client_secret_post"];
    if policy.cimd {
        // Document clients that publish keys (`client_auth.rs`).
        auth_methods.push("private_key_jwt");
    }
    // The token endpoint also takes machine clients' assertions (`client_credentials.rs`);
    // revocation is for registered and document clients only.
    let mut token_auth_methods = auth_methods.clone();
    if tenant.offers_client_credentials() && !policy.cimd {
        token_auth_methods.push("private_key_jwt");
    }
    let mut doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grants,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": token_auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "scopes_supported": scopes,
        "authorization_response_iss_parameter_supported": true,
    });
    if tenant.signs_tokens() {
        doc["jwks_uri"] = json!(format!("{issuer}/jwks"));
    }
    if tenant.trusts_issuers() {
        // Enterprise-Managed Authorization: which issuers are trusted is not said.
        doc["authorization_grant_profiles_supported"] =
            json!([super::token::grant_names::ID_JAG_PROFILE]);
    }
    if tenant.has_resource_servers() {
        doc["introspection_endpoint"] = json!(format!("{issuer}/introspect"));
        doc["introspection_endpoint_auth_methods_supported"] = json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ]);
    }
    if policy.dcr {
        doc["registration_endpoint"] = json!(format!("{issuer}/register"));
    }
    if policy.cimd {
        doc["client_id_metadata_document_supported"] = json!(true);
    }
    if policy.cimd || tenant.offers_client_credentials() {
        doc["token_endpoint_auth_signing_alg_values_supported"] = json!(ALGORITHM_NAMES);
    }
    if policy.cimd {
        doc["revocation_endpoint_auth_signing_alg_values_supported"] = json!(ALGORITHM_NAMES);
    }
    if tenant.resources().iter().any(|r| r.is_minted()) {
        // Minted tokens are bound to the key of a token request's DPoP proof (RFC 9449 §5.1).
        doc["dpop_signing_alg_values_supported"] = json!(super::dpop::ALGORITHMS);
    }
    doc
}
