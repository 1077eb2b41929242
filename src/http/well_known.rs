//! Authorization server metadata at the three URLs MCP clients try (RFC 8414 §3 path
//! insertion, OpenID Connect Discovery path insertion, and path appending).

use actix_web::{HttpResponse, web};

use super::error::not_found;
use crate::app::AppState;
use crate::oauth::metadata::authorization_server_metadata;

pub async fn metadata(state: web::Data<AppState>, tenant: web::Path<String>) -> HttpResponse {
    let Some(tenant) = state.tenant(&tenant) else {
        return not_found("no tenant by this name");
    };
    let offers_refresh = state.upstreams.status(&tenant.id).offers_refresh();
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(authorization_server_metadata(tenant, offers_refresh))
}
