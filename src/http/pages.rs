//! The few HTML pages a person may see: errors and consent (the dev IdP's login form is in
//! `crate::dev_idp`).
//! Every value is escaped; every page forbids framing and script.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}\
h1{font-size:1.4rem}.box{border:1px solid #ccc;border-radius:8px;padding:1rem 1.25rem}\
dt{font-weight:600;margin-top:.6rem}dd{margin:0}ul{padding-left:1.2rem}\
button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.5rem;border-radius:6px;border:1px solid #888;cursor:pointer}\
button.primary{background:#1a5fb4;color:#fff;border-color:#1a5fb4}input{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}\
.muted{color:#555;font-size:.9rem}";

/// An HTML response with the headers every page carries.
pub fn html(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Cache-Control", "no-store"))
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
            esc(title)
        ))
}

/// An error page: the request cannot be trusted enough to redirect anywhere.
pub fn error_page(status: u16, message: &str) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    html(
        status,
        "Sign-in cannot continue",
        &format!(
            "<h1>Sign-in cannot continue</h1><div class=\"box\"><p>{}</p></div><p class=\"muted\">You can close this window.</p>",
            esc(message)
        ),
    )
}

/// What the consent page shows.
pub struct ConsentView<'a> {
    pub action: &'a str,
    pub ticket: &'a str,
    pub tenant_name: &'a str,
    pub client_name: &'a str,
    /// For CIMD clients: the host that published the client's metadata document.
    pub client_host: Option<&'a str>,
    pub redirect_host: &'a str,
    pub resource_name: &'a str,
    pub resource_uri: &'a str,
    /// (name, description) of each scope.
    pub scopes: Vec<(String, String)>,
    pub offline_access: bool,
}

pub fn consent_page(v: &ConsentView<'_>) -> HttpResponse {
    let scopes: String = v
        .scopes
        .iter()
        .map(|(name, words)| {
            format!(
                "<li>{} <span class=\"muted\">({})</span></li>",
                esc(words),
                esc(name)
            )
        })
        .collect();
    let offline = if v.offline_access {
        "<li>Stay signed in (refresh tokens)</li>"
    } else {
        ""
    };
    let publisher = v
        .client_host
        .map(|h| format!("<dt>Published by</dt><dd>{}</dd>", esc(h)))
        .unwrap_or_default();
    html(
        StatusCode::OK,
        "Allow access?",
        &format!(
            "<h1>Allow {client} to access {resource}?</h1><div class=\"box\"><dl>\
             <dt>Application</dt><dd>{client}</dd>{publisher}\
             <dt>Will receive your sign-in at</dt><dd>{redirect}</dd>\
             <dt>Resource</dt><dd>{resource} <span class=\"muted\">{uri}</span></dd>\
             <dt>It will be able to</dt><dd><ul>{scopes}{offline}</ul></dd></dl></div>\
             <form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"ticket\" value=\"{ticket}\">\
             <p><button class=\"primary\" type=\"submit\" name=\"decision\" value=\"approve\">Allow</button>\
             <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></p></form>\
             <p class=\"muted\">You will then sign in to {tenant}. Only allow applications you started yourself.</p>",
            client = esc(v.client_name),
            redirect = esc(v.redirect_host),
            resource = esc(v.resource_name),
            uri = esc(v.resource_uri),
            action = esc(v.action),
            ticket = esc(v.ticket),
            tenant = esc(v.tenant_name),
        ),
    )
}
