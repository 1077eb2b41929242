//! Request bodies: content type checks and a size cap, with OAuth errors.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use super::error::{error_response, error_response_with_status};
use crate::oauth::OAuthError;

/// Whether the request's Content-Type essence is `expected`.
pub(crate) fn has_content_type(req: &HttpRequest, expected: &str) -> bool {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(expected))
}

/// Reads the body, refusing more than `cap` bytes with 413.
pub(crate) async fn read_capped(
    mut payload: web::Payload,
    cap: usize,
) -> Result<Vec<u8>, HttpResponse> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            error_response(&OAuthError::invalid_request(format!(
                "the request body could not be read: {e}"
            )))
        })?;
        if body.len() + chunk.len() > cap {
            return Err(error_response_with_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                &OAuthError::invalid_request(format!(
                    "the request body is larger than {cap} bytes"
                )),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads an `application/x-www-form-urlencoded` body of at most `cap` bytes.
pub(crate) async fn read_form(
    req: &HttpRequest,
    payload: web::Payload,
    cap: usize,
) -> Result<String, HttpResponse> {
    if !has_content_type(req, "application/x-www-form-urlencoded") {
        return Err(error_response_with_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &OAuthError::invalid_request(
                "the request must be sent as Content-Type: application/x-www-form-urlencoded",
            ),
        ));
    }
    let body = read_capped(payload, cap).await?;
    String::from_utf8(body).map_err(|_| {
        error_response(&OAuthError::invalid_request(
            "the request body is not UTF-8",
        ))
    })
}

/// The token of an `Authorization: Bearer` value (RFC 6750 §2.1; the scheme in either case).
pub(crate) fn parse_bearer(value: &str) -> Option<&str> {
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

/// The bearer token of a request's `Authorization` header.
pub(crate) fn bearer_token(req: &HttpRequest) -> Option<&str> {
    parse_bearer(
        req.headers()
            .get(actix_web::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?,
    )
}

/// A JSON body of client metadata: `application/json` (else 415, saying `what` must be), at
/// most `max` bytes, valid JSON (else `invalid_client_metadata`).
pub(crate) async fn read_json_metadata(
    req: &HttpRequest,
    payload: web::Payload,
    max: usize,
    what: &str,
) -> Result<serde_json::Value, HttpResponse> {
    if !has_content_type(req, "application/json") {
        return Err(error_response_with_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &OAuthError::invalid_request(format!(
                "{what} must be sent as Content-Type: application/json"
            )),
        ));
    }
    let body = read_capped(payload, max).await?;
    serde_json::from_slice(&body).map_err(|e| {
        error_response(&OAuthError::invalid_client_metadata(format!(
            "the request body is not valid JSON: {e}"
        )))
    })
}
