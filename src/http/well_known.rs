//! Authorization server metadata at the three URLs MCP clients try (RFC 8414 §3 path
//! insertion, OpenID Connect Discovery path insertion, and path appending).

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};

use super::error::{error_response, not_found};
use super::extract::ApiTenant;
use super::state::{AppState, unix_now};

pub(crate) async fn metadata(
    state: web::Data<AppState>,
    ApiTenant(tenant): ApiTenant,
) -> HttpResponse {
    let Some(document) = state.metadata_document(&tenant) else {
        return not_found("no tenant by this name");
    };
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .content_type(ContentType::json())
        .body(document)
}

/// `GET /.well-known/oauth-protected-resource/{path}` (RFC 9728 §3.1): the metadata of the
/// gateway resource served at `/{path}` on this host, for any origin (MCP clients in browsers
/// read it).
pub(crate) async fn resource_metadata(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    match state.serving().gateway_at_path(&format!("/{path}")) {
        Some((tenant, i)) => super::gateway::metadata(&tenant, i),
        None => not_found("no resource is served at this path"),
    }
}

/// `GET /{tenant}/jwks`: the keys of the tenant's minted tokens (RFC 7517 §5). Cached briefly,
/// well under a rotation's propagation delay (`docs/tokens.md`).
pub(crate) async fn jwks(state: web::Data<AppState>, ApiTenant(tenant): ApiTenant) -> HttpResponse {
    match state.auth().jwks(&tenant, unix_now()).await {
        Ok(set) => HttpResponse::Ok()
            .insert_header((
                "Cache-Control",
                format!("public, max-age={}", crate::minting::keys::JWKS_MAX_AGE),
            ))
            .content_type("application/jwk-set+json")
            .json(set),
        Err(e) => error_response(&e),
    }
}
