//! What every admin handler starts with: who calls (the admin token's label) and for which
//! tenant, and the problem it answers when it refuses (status, error, what to do).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::tokens::AdminTokens;
use crate::config::Tenant;
use crate::http::state::AppState;
use crate::oauth::grants::AdminError;

/// An admin request refused: its status, error code and what to do.
#[derive(Debug)]
pub(crate) struct Problem {
    status: actix_web::http::StatusCode,
    error: &'static str,
    description: String,
}

pub(super) fn problem(status: u16, error: &'static str, description: &str) -> Problem {
    Problem {
        status: actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
        error,
        description: description.to_owned(),
    }
}

impl Problem {
    pub(super) fn into_response(self) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

impl actix_web::ResponseError for Problem {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.insert_header(("Cache-Control", "no-store"));
        if self.status == actix_web::http::StatusCode::UNAUTHORIZED {
            res.insert_header(("WWW-Authenticate", "Bearer realm=\"dcr-shim admin\""));
        }
        res.json(json!({"error": self.error, "error_description": self.description}))
    }
}

/// The caller's token label, or the 401 to answer.
pub(super) fn operator(req: &HttpRequest) -> Result<String, Problem> {
    let tokens = req
        .app_data::<web::Data<AdminTokens>>()
        .ok_or_else(|| problem(500, "server_error", "admin tokens not loaded"))?;
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    match tokens.check(header) {
        Some(label) => Ok(label),
        None => {
            let peer = req
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            tracing::warn!(target: "audit", event = "admin_refused", presented = header.is_some(), source = %peer);
            Err(problem(
                401,
                "invalid_token",
                "send an admin token from --admin-token-file as Authorization: Bearer <token>",
            ))
        }
    }
}

/// The operator and the tenant named in the path.
pub(super) fn authorized(
    req: &HttpRequest,
    state: &AppState,
    tenant: &str,
) -> Result<(String, std::sync::Arc<Tenant>), Problem> {
    let label = operator(req)?;
    let tenant = state
        .tenant(tenant)
        .ok_or_else(|| problem(404, "not_found", "no such tenant"))?;
    Ok((label, tenant))
}

pub(super) fn admin_error(e: AdminError) -> Problem {
    match e {
        AdminError::UnknownClient | AdminError::UnknownGrant => {
            problem(404, "not_found", &e.to_string())
        }
        AdminError::UnknownApp(_) | AdminError::UnknownResource(_) | AdminError::Refused(_) => {
            problem(400, "invalid_request", &e.to_string())
        }
        AdminError::Conflict => problem(409, "conflict", &e.to_string()),
        AdminError::Store(e) => {
            tracing::error!(error = %e, "store failure in an admin request");
            problem(
                503,
                "temporarily_unavailable",
                "the store failed; see the log",
            )
        }
    }
}
