//! The few HTML pages a person may see: errors and consent (the dev IdP's login form is in
//! `crate::dev_idp`). Pages are maud templates, checked at compile time: every value is
//! escaped unless wrapped in `PreEscaped`, which only the constant style sheet is. Every page
//! forbids framing and script.

use crate::oauth::context::RequestCtx;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use maud::{DOCTYPE, Markup, PreEscaped, html};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}\
h1{font-size:1.4rem}.box{border:1px solid #ccc;border-radius:8px;padding:1rem 1.25rem}\
dt{font-weight:600;margin-top:.6rem}dd{margin:0}ul{padding-left:1.2rem}\
button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.5rem;border-radius:6px;border:1px solid #888;cursor:pointer}\
button.primary{background:#1a5fb4;color:#fff;border-color:#1a5fb4}input{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}\
.muted{color:#555;font-size:.9rem}";

/// An HTML response with the headers every page carries.
pub(crate) fn page(status: StatusCode, title: &str, body: Markup) -> HttpResponse {
    let document = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    };
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Cache-Control", "no-store"))
        .body(document.into_string())
}

/// An error page: the request cannot be trusted enough to redirect anywhere.
pub(crate) fn error_page(ctx: &RequestCtx, status: u16, message: &str) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    page(
        status,
        "Sign-in cannot continue",
        html! {
            h1 { "Sign-in cannot continue" }
            div class="box" { p { (message) } }
            p class="muted" { "You can close this window." }
            @if let Some(id) = &ctx.request_id {
                p class="muted" { "If you ask for help, quote request " code { (id) } "." }
            }
        },
    )
}

/// What the consent page shows.
pub(crate) struct ConsentView<'a> {
    pub(crate) action: String,
    pub(crate) ticket: &'a str,
    pub(crate) tenant_name: &'a str,
    pub(crate) client_name: &'a str,
    /// For CIMD clients: the host that published the client's metadata document.
    pub(crate) client_host: Option<&'a str>,
    pub(crate) redirect_host: String,
    /// The sign-in goes to a web site (an https redirect URI), not to an app on this device.
    pub(crate) to_web_site: bool,
    pub(crate) resource_name: &'a str,
    pub(crate) resource_uri: &'a str,
    /// (name, description) of each scope.
    pub(crate) scopes: Vec<(String, String)>,
    pub(crate) offline_access: bool,
    /// The application waits for an administrator: the user may sign in to ask for it.
    pub(crate) approval_needed: bool,
}

pub(crate) fn consent_page(v: &ConsentView<'_>) -> HttpResponse {
    page(
        StatusCode::OK,
        "Allow access?",
        // Against phishing, what the server knows comes first and the client's own claims are
        // marked as such: for a web client the host that will receive the sign-in is the
        // heading; the name is "calls itself"; a CIMD client's host is verified (its metadata
        // document was fetched from it). Every client-supplied string sits in its own `bdi`,
        // so that no character in it can reorder the text around it (right-to-left marks are
        // refused at registration as well).
        html! {
            @if v.approval_needed {
                h1 { "This application needs an administrator's approval" }
                div class="box" {
                    p {
                        "An administrator of " (v.tenant_name) " must approve this application before anyone can use it. "
                        "If you continue, you sign in, and your request goes to the administrators with your name; "
                        "the application gets no access until they approve it."
                    }
                }
            } @else if v.to_web_site {
                h1 { "Allow " strong { bdi { (&v.redirect_host) } } " to access " (v.resource_name) "?" }
            } @else {
                h1 { "Allow an application on this device to access " (v.resource_name) "?" }
            }
            div class="box" {
                dl {
                    dt { "Will receive your sign-in at" } dd { strong { bdi { (&v.redirect_host) } } }
                    dt { "Application" }
                    dd {
                        "calls itself “" bdi { (v.client_name) } "”"
                        @if v.client_host.is_none() {
                            " " span class="muted" { "(the application's own claim, not verified)" }
                        }
                    }
                    @if let Some(host) = v.client_host {
                        dt { "Published by" }
                        dd {
                            strong { bdi { (host) } } " "
                            span class="muted" { "(verified: its description was fetched from there)" }
                        }
                    }
                    dt { "Resource" }
                    dd { (v.resource_name) " " span class="muted" { (v.resource_uri) } }
                    dt { "It will be able to" }
                    dd {
                        ul {
                            @for (name, words) in &v.scopes {
                                li { (words) " " span class="muted" { "(" (name) ")" } }
                            }
                            @if v.offline_access {
                                li { "Stay signed in (refresh tokens)" }
                            }
                        }
                    }
                }
            }
            form method="post" action=(&v.action) {
                input type="hidden" name="ticket" value=(v.ticket);
                p {
                    @if v.approval_needed {
                        button class="primary" type="submit" name="decision" value="approve" { "Sign in and ask for approval" }
                        button type="submit" name="decision" value="deny" { "Cancel" }
                    } @else {
                        button class="primary" type="submit" name="decision" value="approve" { "Allow" }
                        button type="submit" name="decision" value="deny" { "Deny" }
                    }
                }
            }
            p class="muted" {
                "You will then sign in to " (v.tenant_name) ". Only allow applications you started yourself."
            }
        },
    )
}

/// The page of a sign-in held back by the approval queue (`oauth/approval/`): what happened,
/// the reference to quote, and a link that takes `access_denied` back to the application.
pub(crate) fn approval_page(
    tenant: &crate::config::Tenant,
    held: &crate::oauth::callback::Held,
) -> HttpResponse {
    use crate::oauth::callback::HeldWhy;
    let tenant_name = tenant.display_name();
    let client_name = held
        .client_name
        .as_deref()
        .unwrap_or("An unnamed application");
    let title = match held.why {
        HeldWhy::Denied => "An administrator denied this application",
        _ => "An administrator must approve this application",
    };
    page(
        StatusCode::FORBIDDEN,
        title,
        html! {
            h1 { (title) }
            div class="box" {
                p {
                    "The application that calls itself “" bdi { (client_name) } "” "
                    @match &held.why {
                        HeldWhy::Denied => {
                            "was denied by an administrator of " (tenant_name) ", so it cannot be used."
                        }
                        HeldWhy::Waiting(_) => {
                            "cannot be used until an administrator of " (tenant_name) " approves it. "
                            "Your request was sent to the administrators, with your name. Once they approve it, sign in again from the application."
                        }
                        HeldWhy::QueueFull => {
                            "cannot be used until an administrator of " (tenant_name) " approves it. "
                            "Too many requests are waiting for a decision right now, so yours could not be added; try again later."
                        }
                        HeldWhy::TooManyOfYours(n) => {
                            "cannot be used until an administrator of " (tenant_name) " approves it. "
                            "You have " (n) " other requests waiting for a decision, so this one could not be added; try again once they are decided."
                        }
                    }
                }
                @if let HeldWhy::Waiting(reference) = &held.why {
                    p { "If you contact your administrators, quote reference " strong { code { (reference) } } "." }
                }
            }
            p { a href=(&held.back) { "Return to the application" } }
            p class="muted" { "Or close this window." }
        },
    )
}
