//! The answers the gateway gives itself: refusals in the shapes MCP clients act on (the 401
//! challenge, 403 `insufficient_scope`, JSON-RPC errors), CORS preflights, the head of an MCP
//! server's answer as passed back, and a gateway resource's protected-resource metadata.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::json;

use crate::config::Tenant;
use crate::config::resource::ResourceConfig;
use crate::gateway::admission::Refused;
use crate::gateway::forward::Answer;
use crate::oauth::dpop::ResourceRefusal;
use crate::oauth::resource_metadata::{
    Refusal, challenge, dpop_challenge, metadata_url, sign_in_challenge,
};

/// Headers a browser-based client may send (CORS preflight).
const CORS_ALLOWED_HEADERS: &str = "Authorization, Content-Type, Accept, Last-Event-ID, Mcp-Session-Id, MCP-Protocol-Version, Mcp-Method, Mcp-Name, DPoP";
/// Headers a browser-based client may read.
pub(super) const CORS_EXPOSED_HEADERS: &str = "Mcp-Session-Id, WWW-Authenticate, DPoP-Nonce";

/// 405 for a method Streamable HTTP does not have.
pub(super) fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header(("Allow", "GET, POST, DELETE"))
        .json(json!({"error": "an MCP endpoint takes GET, POST and DELETE"}))
}

/// The answer to a CORS preflight: allowed only for an origin the resource allows.
pub(super) fn preflight(allowed: bool) -> HttpResponse {
    if !allowed {
        return HttpResponse::Forbidden()
            .json(json!({"error": "this origin may not call this resource"}));
    }
    HttpResponse::NoContent()
        .insert_header(("Access-Control-Allow-Methods", "GET, POST, DELETE"))
        .insert_header(("Access-Control-Allow-Headers", CORS_ALLOWED_HEADERS))
        .insert_header(("Access-Control-Max-Age", "86400"))
        .finish()
}

/// The status and headers of the MCP server's answer, as passed back.
pub(super) fn answer_head(answer: &Answer) -> actix_web::HttpResponseBuilder {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = HttpResponse::build(status);
    for (name, value) in &answer.headers {
        out.append_header((name.as_str(), value.as_str()));
    }
    out.insert_header((
        "Content-Security-Policy",
        "default-src 'none'; frame-ancestors 'none'; sandbox",
    ));
    out
}

/// A refused call: 401 with the challenge MCP clients follow to log in, or 403 for a page of
/// another origin.
pub(super) fn refusal(resource: &ResourceConfig, refused: &Refused) -> HttpResponse {
    match refused {
        Refused::Origin(why) => HttpResponse::Forbidden()
            .json(json!({"error": "forbidden_origin", "error_description": why})),
        // The gateway answers a nonce refusal with `dpop_refusal` itself, with its nonce.
        Refused::Dpop(d) => dpop_refusal(resource, d, String::new),
        Refused::Token(why) => {
            // What a login asks for first: the resource's default scopes (the rules' scope
            // challenges widen it when a call needs more), else all of its scopes.
            let scopes: Vec<&str> = if resource.default_scopes.is_empty() {
                resource.scopes.iter().map(|s| s.name.as_str()).collect()
            } else {
                resource.default_scopes.iter().map(String::as_str).collect()
            };
            let public_why =
                "the access token is missing, expired, revoked or not for this resource";
            tracing::info!(resource = %resource.uri, reason = %why, "a gateway call was refused");
            HttpResponse::Unauthorized()
                .insert_header((
                    "WWW-Authenticate",
                    challenge(
                        Refusal::InvalidToken,
                        public_why,
                        &scopes,
                        &metadata_url(resource.uri.as_str()),
                    ),
                ))
                .json(json!({"error": "invalid_token", "error_description": public_why}))
        }
    }
}

/// 401 for a DPoP call refused (RFC 9449 §7.1): its challenge, and for `use_dpop_nonce` the
/// nonce to use (`DPoP-Nonce`).
pub(super) fn dpop_refusal(
    resource: &ResourceConfig,
    refused: &ResourceRefusal,
    nonce: impl FnOnce() -> String,
) -> HttpResponse {
    let (error, why) = match refused {
        ResourceRefusal::Proof(why) => ("invalid_dpop_proof", why.as_str()),
        ResourceRefusal::Scheme(why) => ("invalid_token", why.as_str()),
        ResourceRefusal::Nonce => (
            "use_dpop_nonce",
            "the DPoP proof must carry this server's nonce (DPoP-Nonce)",
        ),
        ResourceRefusal::Busy => {
            return HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "60"))
                .json(json!({"error": "temporarily_unavailable",
                    "error_description": "this server checks no more DPoP proofs right now; try again in a minute"}));
        }
    };
    tracing::info!(resource = %resource.uri, error, reason = %why, "a gateway call's DPoP proof was refused");
    let mut res = HttpResponse::Unauthorized();
    res.insert_header((
        "WWW-Authenticate",
        dpop_challenge(error, why, &metadata_url(resource.uri.as_str())),
    ));
    if *refused == ResourceRefusal::Nonce {
        res.insert_header(("DPoP-Nonce", nonce()));
    }
    res.json(json!({"error": error, "error_description": why}))
}

/// 403 `insufficient_scope`: the challenge names the scopes held and those missing, so that a
/// client asking again for what it names keeps what it had (RFC 6750 §3.1; the MCP
/// specification's scope challenge).
pub(super) fn insufficient_scope(
    resource: &ResourceConfig,
    granted: &[&str],
    missing: &[String],
) -> HttpResponse {
    let why = format!("this call needs the scope {}", missing.join(" "));
    let mut scopes: Vec<&str> = granted.to_vec();
    scopes.extend(missing.iter().map(String::as_str));
    tracing::info!(resource = %resource.uri, missing = %missing.join(" "), "a gateway call lacked a scope");
    HttpResponse::Forbidden()
        .insert_header((
            "WWW-Authenticate",
            challenge(
                Refusal::InsufficientScope,
                &why,
                &scopes,
                &metadata_url(resource.uri.as_str()),
            ),
        ))
        .json(json!({"error": "insufficient_scope", "error_description": why}))
}

/// 401 `insufficient_user_authentication` (RFC 9470): the call needs a stronger sign-in, one
/// of `acr_values`; the client signs in again asking for it (`acr_values` at `/authorize`, or
/// the scope that stands for it).
pub(super) fn insufficient_sign_in(
    resource: &ResourceConfig,
    granted: &[&str],
    acr_values: &[String],
) -> HttpResponse {
    let why = format!(
        "this call needs a stronger sign-in ({})",
        acr_values.join(" or ")
    );
    tracing::info!(resource = %resource.uri, acr_values = %acr_values.join(" "), "a gateway call needed a stronger sign-in");
    HttpResponse::Unauthorized()
        .insert_header((
            "WWW-Authenticate",
            sign_in_challenge(
                &why,
                acr_values,
                granted,
                &metadata_url(resource.uri.as_str()),
            ),
        ))
        .json(json!({"error": "insufficient_user_authentication", "error_description": why}))
}

/// A JSON-RPC error answer (with no request id: the gateway answers before or instead of the
/// MCP server).
pub(super) fn jsonrpc_error(status: StatusCode, code: i64, message: &str) -> HttpResponse {
    jsonrpc_error_for(status, &serde_json::Value::Null, code, message)
}

/// A JSON-RPC error answer to the request `id`.
pub(super) fn jsonrpc_error_for(
    status: StatusCode,
    id: &serde_json::Value,
    code: i64,
    message: &str,
) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message},
    }))
}

/// The protected-resource metadata of the gateway resource `index` of `tenant`, for any
/// origin (MCP clients in browsers read it).
pub(crate) fn metadata(tenant: &Tenant, index: usize) -> HttpResponse {
    let doc = crate::oauth::resource_metadata::protected_resource_metadata(
        tenant,
        &tenant.resources()[index],
    );
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .json(doc)
}
