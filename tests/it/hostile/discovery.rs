//! Hostile input at Discovery documents, routing and tenant names.

use super::harness::*;
use crate::helpers::spawn_app;

#[tokio::test]
async fn hostile_discovery_routing_and_tenant_names() {
    let app = spawn_app().await;
    let ctx = ctx_for(&app, "alpha");
    let before = snapshot(&app).await;
    let long = "a".repeat(64);
    let very_long = "a".repeat(4000);
    let nf = Expect::Json(404, "not_found");
    let mut cases = vec![
        case(
            "well-known: unknown tenant",
            get("/.well-known/oauth-authorization-server/nope"),
            nf.clone(),
        ),
        case(
            "well-known: uppercase tenant",
            get("/.well-known/oauth-authorization-server/ALPHA"),
            nf.clone(),
        ),
        case(
            "well-known: tenant with a dot",
            get("/.well-known/oauth-authorization-server/alpha.evil"),
            nf.clone(),
        ),
        case(
            "well-known: encoded dot-dot tenant",
            get("/.well-known/oauth-authorization-server/%2e%2e"),
            nf.clone(),
        ),
        case(
            "well-known: encoded slash in tenant",
            get("/.well-known/oauth-authorization-server/..%2Falpha"),
            nf.clone(),
        ),
        case(
            "well-known: NUL in tenant",
            get("/.well-known/oauth-authorization-server/alpha%00"),
            nf.clone(),
        ),
        case(
            "well-known: 64-character tenant",
            get(format!("/.well-known/oauth-authorization-server/{long}")),
            nf.clone(),
        ),
        case(
            "well-known: 4000-character tenant",
            get(format!(
                "/.well-known/oauth-authorization-server/{very_long}"
            )),
            nf.clone(),
        ),
        case(
            "well-known: no tenant",
            get("/.well-known/oauth-authorization-server"),
            nf.clone(),
        ),
        case(
            "well-known: trailing path",
            get("/.well-known/oauth-authorization-server/alpha/extra"),
            nf.clone(),
        ),
        case(
            "well-known: oidc unknown tenant",
            get("/.well-known/openid-configuration/nope"),
            nf.clone(),
        ),
        case(
            "well-known: appended unknown tenant",
            get("/nope/.well-known/openid-configuration"),
            nf.clone(),
        ),
        case(
            "well-known: appended uppercase tenant",
            get("/Alpha/.well-known/openid-configuration"),
            nf.clone(),
        ),
        case(
            "well-known: POST",
            post(
                "/.well-known/oauth-authorization-server/alpha",
                Some("application/json"),
                "{}",
            ),
            nf.clone(),
        ),
        case(
            "well-known: query string ignored safely",
            get("/.well-known/oauth-authorization-server/alpha?x=%FF%00"),
            Expect::Status(200),
        ),
        case(
            "well-known: non-UTF-8 percent bytes in tenant",
            get("/.well-known/oauth-authorization-server/%FF%FE"),
            nf.clone(),
        ),
        case(
            "routing: dot-dot segment before register",
            post("/alpha/../alpha/register", Some("application/json"), "{}"),
            nf.clone(),
        ),
        case(
            "routing: encoded dot-dot tenant at token",
            form("/%2e%2e/token", "grant_type=x"),
            nf.clone(),
        ),
        case(
            "routing: encoded dot-dot tenant at register",
            post("/%2E%2E/register", Some("application/json"), "{}"),
            nf.clone(),
        ),
        case(
            "routing: encoded slash collapsing tenant and endpoint",
            form("/alpha%2Ftoken", "grant_type=x"),
            nf.clone(),
        ),
        case(
            "routing: uppercase tenant at token",
            form("/ALPHA/token", "grant_type=x"),
            nf.clone(),
        ),
        case(
            "routing: tenant with dots at revoke",
            form("/alpha.example/revoke", "token=x"),
            nf.clone(),
        ),
        case(
            "routing: very long tenant at register",
            post(
                format!("/{very_long}/register"),
                Some("application/json"),
                "{}",
            ),
            nf.clone(),
        ),
        case(
            "routing: unknown tenant at register",
            post("/nope/register", Some("application/json"), "{}"),
            nf.clone(),
        ),
        case(
            "routing: unknown tenant at revoke",
            form("/nope/revoke", "token=x"),
            nf.clone(),
        ),
        case(
            "routing: GET on token",
            get("/alpha/token"),
            Expect::Json(405, "invalid_request"),
        ),
        case(
            "routing: PUT on register",
            post("/alpha/register", Some("application/json"), "{}").with_method("PUT"),
            Expect::Json(405, "invalid_request"),
        ),
        case(
            "routing: DELETE on revoke",
            get("/alpha/revoke").with_method("DELETE"),
            Expect::Json(405, "invalid_request"),
        ),
        case(
            "routing: GET on token of unknown tenant",
            get("/nope/token"),
            nf.clone(),
        ),
        case("routing: unknown path", get("/alpha/admin"), nf.clone()),
        case(
            "routing: unknown tenant at authorize",
            get("/nope/authorize?client_id=x"),
            Expect::Page(404),
        ),
        case(
            "routing: uppercase tenant at authorize",
            get("/ALPHA/authorize?client_id=x"),
            Expect::Page(404),
        ),
        case(
            "routing: encoded dot-dot tenant at authorize",
            get("/%2e%2e/authorize?client_id=x"),
            Expect::Page(404),
        ),
        case(
            "routing: very long tenant at callback",
            get(format!("/{very_long}/callback?state=x")),
            Expect::Page(404),
        ),
        case(
            "routing: tenant with dots at consent",
            form("/alpha.x/consent", "ticket=x"),
            Expect::Page(404),
        ),
        case(
            "routing: raw non-ASCII byte in path",
            get(b"/alpha/\xff\xfe/token"),
            Expect::Bare(400),
        ),
    ];
    for c in &mut cases {
        if c.name.contains("query string ignored") {
            c.forbid = Some("\u{0}".into());
        }
    }
    let n = run(&app, &ctx, &cases).await;
    assert_eq!(snapshot(&app).await, before, "nothing stored or changed");
    report(
        "discovery/routing",
        &[
            ("well-known", count_prefix(&cases, "well-known")),
            ("routing", count_prefix(&cases, "routing")),
        ],
    );
    assert_eq!(n, cases.len());
    app.stop().await;
}
