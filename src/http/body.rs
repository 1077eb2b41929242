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
