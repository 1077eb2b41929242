//! CORS (the Fetch standard's CORS protocol) for what a browser-based client (MCP Inspector, a
//! web agent) calls from its own origin: the metadata documents (a gateway resource's
//! protected-resource metadata among them), registration, the token and
//! revocation endpoints, and the dev IdP's JWKS and metadata. `Access-Control-Allow-Origin: *`
//! and never credentials: none of these relies on cookies. The browser endpoints (authorize,
//! consent, callback) never answer with CORS headers, so no other origin can read them.

use actix_web::HttpResponse;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use futures_util::future::{Either, ready};

/// Request headers a client may send cross-origin (RFC 9728 and MCP clients send
/// `MCP-Protocol-Version` with their metadata requests).
const ALLOWED_HEADERS: &str = "Authorization, Content-Type, MCP-Protocol-Version";
/// Response headers a client may read besides the CORS-safelisted ones.
const EXPOSED_HEADERS: &str = "WWW-Authenticate, Retry-After";
/// How long a browser may cache a preflight answer.
const MAX_AGE_SECONDS: &str = "86400";

/// The middleware: answers a preflight to a CORS endpoint itself, and lets any origin read that
/// endpoint's other responses. It sits inside the request log, so preflights are logged too.
pub(crate) fn middleware<S>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse, actix_web::Error>> + use<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse, Error = actix_web::Error>,
{
    let prefix = req
        .app_data::<actix_web::web::Data<super::state::AppState>>()
        .map_or("", |s| s.path_prefix());
    let cors = allowed_methods(&super::request_info::local_path(req.path(), prefix));
    let fut = match cors {
        Some(methods) if req.method() == Method::OPTIONS => {
            Either::Left(ready(Ok(req.into_response(preflight(methods)))))
        }
        _ => Either::Right(srv.call(req)),
    };
    async move {
        let mut res = fut.await?;
        if cors.is_some() {
            allow_any_origin(res.headers_mut());
        }
        Ok(res)
    }
}

/// The methods an endpoint offers cross-origin, or `None` where CORS is not offered.
pub(crate) fn allowed_methods(path: &str) -> Option<&'static str> {
    // A gateway resource's protected-resource metadata, at any depth (RFC 9728 §3.1): browser
    // clients send MCP-Protocol-Version with it, so the browser asks first.
    if path == "/.well-known/oauth-protected-resource"
        || path.starts_with("/.well-known/oauth-protected-resource/")
    {
        return Some("GET");
    }
    // Every request passes here: the segments go on the stack, not in a Vec.
    let mut segments = [""; 4];
    let mut count = 0;
    for segment in path.trim_start_matches('/').split('/') {
        *segments.get_mut(count)? = segment;
        count += 1;
    }
    match &segments[..count] {
        [
            ".well-known",
            "oauth-authorization-server" | "openid-configuration",
            _tenant,
        ] => Some("GET"),
        [_tenant, ".well-known", "openid-configuration"] => Some("GET"),
        [_tenant, "register" | "token" | "revoke"] => Some("POST"),
        [_tenant, "dev-idp", "jwks"] => Some("GET"),
        [_tenant, "dev-idp", ".well-known", "openid-configuration"] => Some("GET"),
        _ => None,
    }
}

/// The answer to a preflight (`OPTIONS`) request.
pub(crate) fn preflight(methods: &'static str) -> HttpResponse {
    let mut res = HttpResponse::NoContent().finish();
    let headers = res.headers_mut();
    allow_any_origin(headers);
    let mut set = |name: &'static str, value: &'static str| {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    };
    set("access-control-allow-methods", methods);
    set("access-control-allow-headers", ALLOWED_HEADERS);
    set("access-control-max-age", MAX_AGE_SECONDS);
    res
}

/// Lets any origin read the response.
pub(crate) fn allow_any_origin(headers: &mut HeaderMap) {
    headers.insert(
        HeaderName::from_static("access-control-allow-origin"),
        HeaderValue::from_static("*"),
    );
    headers.insert(
        HeaderName::from_static("access-control-expose-headers"),
        HeaderValue::from_static(EXPOSED_HEADERS),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_endpoints_clients_call_from_a_page() {
        let offered = [
            ("/.well-known/oauth-authorization-server/alpha", "GET"),
            ("/.well-known/openid-configuration/alpha", "GET"),
            ("/alpha/.well-known/openid-configuration", "GET"),
            ("/alpha/register", "POST"),
            ("/alpha/token", "POST"),
            ("/alpha/revoke", "POST"),
            ("/alpha/dev-idp/jwks", "GET"),
            ("/.well-known/oauth-protected-resource", "GET"),
            (
                "/.well-known/oauth-protected-resource/mcp/files/deeper",
                "GET",
            ),
        ];
        for (path, methods) in offered {
            assert_eq!(allowed_methods(path), Some(methods), "{path}");
        }
        for path in [
            "/alpha/authorize",
            "/alpha/consent",
            "/alpha/callback",
            "/alpha/dev-idp/authorize",
            "/healthz",
            "/alpha/token/x",
            "/",
        ] {
            assert_eq!(allowed_methods(path), None, "{path}");
        }
    }
}
