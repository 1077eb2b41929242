//! The one place where an `OAuthError` becomes an HTTP response (RFC 6749 §5.2 JSON body).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::json;

use crate::oauth::{ErrorCode, OAuthError};

/// The status for an error code.
pub(crate) fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// `{error, error_description}` with the code's status; never cached.
pub(crate) fn error_response(err: &OAuthError) -> HttpResponse {
    error_response_with_status(status_of(err.code), err)
}

pub(crate) fn error_response_with_status(status: StatusCode, err: &OAuthError) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "error": err.code.as_str(),
            "error_description": err.description,
        }))
}

/// 404 for a path or tenant that does not exist.
pub(crate) fn not_found(what: impl Into<String>) -> HttpResponse {
    error_response(&OAuthError::new(ErrorCode::NotFound, what))
}
