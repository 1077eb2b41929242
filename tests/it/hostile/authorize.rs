//! Hostile input at `GET /{tenant}/authorize`.

use super::harness::*;
use crate::helpers::spawn_app;

/// Query pairs of a good authorization request for `client_id` and `redirect_uri`.
fn good_authz(client_id: &str, redirect_uri: &str) -> Vec<(String, String)> {
    [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", "st-123"),
        ("scope", "files.read"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// `good` with `name` set to `value` (or removed), and `extra` appended.
fn authz_target(
    tenant: &str,
    good: &[(String, String)],
    changes: &[(&str, Option<&str>)],
    extra: &[(&str, &str)],
) -> String {
    let mut pairs: Vec<(String, String)> = good.to_vec();
    for (name, value) in changes {
        match value {
            Some(v) => {
                if let Some(p) = pairs.iter_mut().find(|(k, _)| k == name) {
                    p.1 = (*v).to_owned();
                } else {
                    pairs.push(((*name).to_owned(), (*v).to_owned()));
                }
            }
            None => pairs.retain(|(k, _)| k != name),
        }
    }
    for (k, v) in extra {
        pairs.push(((*k).to_owned(), (*v).to_owned()));
    }
    format!(
        "/{tenant}/authorize?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish()
    )
}

#[tokio::test]
async fn hostile_authorize() {
    let app = spawn_app().await;
    let ctx = ctx_for(&app, "alpha");
    let native = public_client(&app, "alpha").await;
    let web = web_client(&app).await;
    let beta_client = public_client(&app, "beta").await;
    let before = snapshot(&app).await;

    let ng = good_authz(&native.id, LOOPBACK);
    let wg = good_authz(&web.id, WEB_CB);
    let n =
        |name: &str, changes: &[(&str, Option<&str>)], extra: &[(&str, &str)], expect: Expect| {
            case(
                format!("authorize: {name}"),
                get(authz_target("alpha", &ng, changes, extra)),
                expect,
            )
        };
    let w =
        |name: &str, changes: &[(&str, Option<&str>)], extra: &[(&str, &str)], expect: Expect| {
            case(
                format!("authorize: web client, {name}"),
                get(authz_target("alpha", &wg, changes, extra)),
                expect,
            )
        };
    let web_mismatch = |name: &str, uri: &str| {
        w(
            &format!("redirect_uri mismatch ({name})"),
            &[("redirect_uri", Some(uri))],
            &[],
            Expect::Page(400),
        )
    };
    let loop_mismatch = |name: &str, uri: &str| {
        n(
            &format!("loopback redirect_uri mismatch ({name})"),
            &[("redirect_uri", Some(uri))],
            &[],
            Expect::Page(400),
        )
    };
    let page = Expect::Page(400);
    let ir = Expect::Redirect("invalid_request");
    let huge = "x".repeat(1025);
    let mut cases = vec![
        // Before the redirect URI is trusted: pages, never redirects.
        n("no client_id", &[("client_id", None)], &[], page.clone()),
        n(
            "empty client_id",
            &[("client_id", Some(""))],
            &[],
            page.clone(),
        ),
        n(
            "unknown client_id",
            &[("client_id", Some("00000000-0000-0000-0000-000000000000"))],
            &[],
            page.clone(),
        ),
        n(
            "client_id of another tenant",
            &[("client_id", Some(&beta_client.id))],
            &[],
            page.clone(),
        ),
        n(
            "client_id repeated",
            &[],
            &[("client_id", &native.id)],
            page.clone(),
        ),
        n(
            "client_id repeated with another id",
            &[],
            &[("client_id", &web.id)],
            page.clone(),
        ),
        n(
            "redirect_uri repeated",
            &[],
            &[("redirect_uri", LOOPBACK)],
            page.clone(),
        ),
        n(
            "redirect_uri repeated with an evil one",
            &[],
            &[("redirect_uri", "https://evil.example/cb")],
            page.clone(),
        ),
        n(
            "huge client_id",
            &[("client_id", Some(&"c".repeat(8000)))],
            &[],
            page.clone(),
        ),
        n(
            "client_id with path traversal",
            &[("client_id", Some("../../../etc/passwd"))],
            &[],
            page.clone(),
        ),
        n(
            "no redirect_uri for a loopback client",
            &[("redirect_uri", None)],
            &[],
            page.clone(),
        ),
        loop_mismatch("localhost for 127.0.0.1", "http://localhost:49152/cb"),
        loop_mismatch("https for http", "https://127.0.0.1:49152/cb"),
        loop_mismatch("path one character longer", "http://127.0.0.1:49152/cbx"),
        loop_mismatch("trailing slash", "http://127.0.0.1:49152/cb/"),
        loop_mismatch("uppercase path", "http://127.0.0.1:49152/CB"),
        loop_mismatch("dot segments", "http://127.0.0.1:49152/x/../cb"),
        loop_mismatch("encoded dot segments", "http://127.0.0.1:49152/x/%2e%2e/cb"),
        loop_mismatch("percent-encoded path letter", "http://127.0.0.1:49152/%63b"),
        loop_mismatch("IPv6 loopback for IPv4", "http://[::1]:49152/cb"),
        loop_mismatch("127.0.0.2", "http://127.0.0.2:49152/cb"),
        loop_mismatch("hex IPv4 loopback", "http://0x7f.0.0.1:49152/cb"),
        loop_mismatch("integer IPv4 loopback", "http://2130706433:49152/cb"),
        loop_mismatch("added query", "http://127.0.0.1:49152/cb?x=1"),
        loop_mismatch(
            "loopback-prefixed public host",
            "http://127.0.0.1.evil.example:49152/cb",
        ),
        loop_mismatch(
            "userinfo pointing elsewhere",
            "http://127.0.0.1:49152@evil.example/cb",
        ),
        loop_mismatch("port out of range", "http://127.0.0.1:99999/cb"),
        loop_mismatch("fragment", "http://127.0.0.1:49152/cb#x"),
        loop_mismatch("encoded NUL", "http://127.0.0.1:49152/cb%00"),
        web_mismatch("scheme http", "http://app.example.com/cb"),
        web_mismatch("host one character shorter", "https://app.example.co/cb"),
        web_mismatch("uppercase host", "https://APP.example.com/cb"),
        web_mismatch("trailing dot host", "https://app.example.com./cb"),
        web_mismatch(
            "IDN homograph (Cyrillic a)",
            "https://\u{430}pp.example.com/cb",
        ),
        web_mismatch("punycode host", "https://xn--pp-7kc.example.com/cb"),
        web_mismatch("explicit default port", "https://app.example.com:443/cb"),
        web_mismatch("other port", "https://app.example.com:8443/cb"),
        web_mismatch("path one character longer", "https://app.example.com/cbx"),
        web_mismatch("path one character shorter", "https://app.example.com/c"),
        web_mismatch("trailing slash", "https://app.example.com/cb/"),
        web_mismatch("percent-encoded letter", "https://app.example.com/%63b"),
        web_mismatch("encoded slash", "https://app.example.com/cb%2F"),
        web_mismatch("encoded NUL", "https://app.example.com/cb%00"),
        web_mismatch("dot segments", "https://app.example.com/x/../cb"),
        web_mismatch("encoded dot segments", "https://app.example.com/%2e%2e/cb"),
        web_mismatch("double slash", "https://app.example.com//cb"),
        web_mismatch("empty query", "https://app.example.com/cb?"),
        web_mismatch(
            "query value one character off",
            "https://app.example.com/q?x=2",
        ),
        web_mismatch("extra query parameter", "https://app.example.com/q?x=1&y=2"),
        web_mismatch("missing query", "https://app.example.com/q"),
        web_mismatch("fragment", "https://app.example.com/cb#x"),
        web_mismatch("userinfo", "https://evil@app.example.com/cb"),
        web_mismatch(
            "host as userinfo",
            "https://app.example.com@evil.example/cb",
        ),
        web_mismatch(
            "javascript scheme",
            "javascript:alert(1)//https://app.example.com/cb",
        ),
        web_mismatch("data scheme", "data:text/html,<script>alert(1)</script>"),
        web_mismatch("vbscript scheme", "vbscript:msgbox(1)"),
        web_mismatch("file scheme", "file:///etc/passwd"),
        web_mismatch("non-loopback http", "http://evil.example/cb"),
        web_mismatch("trailing space", "https://app.example.com/cb "),
        web_mismatch("trailing tab", "https://app.example.com/cb\t"),
        w(
            "no redirect_uri with two registered",
            &[("redirect_uri", None)],
            &[],
            page.clone(),
        ),
        // After the redirect URI is validated: loopback clients get the error at their URI.
        n(
            "no response_type",
            &[("response_type", None)],
            &[],
            ir.clone(),
        ),
        n(
            "response_type token",
            &[("response_type", Some("token"))],
            &[],
            Expect::Redirect("unsupported_response_type"),
        ),
        n(
            "response_type code id_token",
            &[("response_type", Some("code id_token"))],
            &[],
            Expect::Redirect("unsupported_response_type"),
        ),
        n(
            "response_type repeated",
            &[],
            &[("response_type", "code")],
            ir.clone(),
        ),
        n("state repeated", &[], &[("state", "other")], ir.clone()),
        n(
            "scope repeated",
            &[],
            &[("scope", "files.write")],
            ir.clone(),
        ),
        n(
            "code_challenge repeated",
            &[],
            &[("code_challenge", CHALLENGE)],
            ir.clone(),
        ),
        n(
            "code_challenge_method repeated",
            &[],
            &[("code_challenge_method", "S256")],
            ir.clone(),
        ),
        n(
            "login_hint repeated",
            &[("login_hint", Some("a"))],
            &[("login_hint", "b")],
            ir.clone(),
        ),
        n(
            "no code_challenge",
            &[("code_challenge", None)],
            &[],
            ir.clone(),
        ),
        n(
            "empty code_challenge",
            &[("code_challenge", Some(""))],
            &[],
            ir.clone(),
        ),
        n(
            "code_challenge_method plain",
            &[("code_challenge_method", Some("plain"))],
            &[],
            ir.clone(),
        ),
        n(
            "no code_challenge_method",
            &[("code_challenge_method", None)],
            &[],
            ir.clone(),
        ),
        n(
            "lowercase s256",
            &[("code_challenge_method", Some("s256"))],
            &[],
            ir.clone(),
        ),
        n(
            "code_challenge_method S512",
            &[("code_challenge_method", Some("S512"))],
            &[],
            ir.clone(),
        ),
        n(
            "code_challenge too short",
            &[("code_challenge", Some(&CHALLENGE[..42]))],
            &[],
            ir.clone(),
        ),
        n(
            "code_challenge too long",
            &[("code_challenge", Some(&format!("{CHALLENGE}A")))],
            &[],
            ir.clone(),
        ),
        n(
            "code_challenge invalid charset",
            &[("code_challenge", Some(&format!("{}+/", &CHALLENGE[..41])))],
            &[],
            ir.clone(),
        ),
        n(
            "code_challenge with padding",
            &[("code_challenge", Some(&format!("{}=", &CHALLENGE[..42])))],
            &[],
            ir.clone(),
        ),
        n(
            "huge code_challenge",
            &[("code_challenge", Some(&"A".repeat(5000)))],
            &[],
            ir.clone(),
        ),
        n(
            "unknown resource",
            &[("resource", Some("https://evil.example/api"))],
            &[],
            Expect::Redirect("invalid_target"),
        ),
        n(
            "resource repeated",
            &[("resource", Some("https://mcp.example.com/files"))],
            &[("resource", "https://mcp.example.com/files")],
            Expect::Redirect("invalid_target"),
        ),
        // A resource is compared in normalized form (RFC 3986 §6.2.2): the same resource in
        // another case, with the default port or an escaped letter gets the consent page.
        n(
            "resource in another case with the default port",
            &[("resource", Some("HTTPS://MCP.Example.COM:443/files"))],
            &[],
            Expect::Status(200),
        ),
        n(
            "resource with an escaped unreserved letter",
            &[("resource", Some("https://mcp.example.com/%66iles"))],
            &[],
            Expect::Status(200),
        ),
        n(
            "resource with a trailing slash is another path",
            &[("resource", Some("https://mcp.example.com/files/"))],
            &[],
            Expect::Redirect("invalid_target"),
        ),
        n(
            "resource with path traversal",
            &[("resource", Some("https://mcp.example.com/files/../admin"))],
            &[],
            Expect::Redirect("invalid_target"),
        ),
        // Scopes are granted, not refused (RFC 6749 §3.3): what is not the resource's is
        // dropped and the consent page shows what will be granted.
        n(
            "unknown scope",
            &[("scope", Some("files.admin"))],
            &[],
            Expect::Status(200),
        ),
        n(
            "claude.ai's scope and extra spaces",
            &[("scope", Some("claudeai  files.read"))],
            &[],
            Expect::Status(200),
        ),
        n(
            "a malformed scope token",
            &[("scope", Some("files.read \"x\""))],
            &[],
            Expect::Status(200),
        ),
        n("state too long", &[("state", Some(&huge))], &[], ir.clone()),
        n(
            "max_age not a number",
            &[("max_age", Some("soon"))],
            &[],
            ir.clone(),
        ),
        n(
            "claims not a JSON object",
            &[("claims", Some("[1]"))],
            &[],
            ir.clone(),
        ),
        n(
            "login_hint too long",
            &[("login_hint", Some(&huge))],
            &[],
            ir.clone(),
        ),
        n(
            "domain_hint too long",
            &[("domain_hint", Some(&huge))],
            &[],
            ir.clone(),
        ),
        n(
            "prompt too long",
            &[("prompt", Some(&huge))],
            &[],
            ir.clone(),
        ),
        // A web client this browser never approved: the same errors on a page.
        w(
            "code_challenge_method plain",
            &[("code_challenge_method", Some("plain"))],
            &[],
            page.clone(),
        ),
        w("state repeated", &[], &[("state", "x")], page.clone()),
        w(
            "unknown scope",
            &[("scope", Some("files.admin"))],
            &[],
            Expect::Status(200),
        ),
        w(
            "response_type token",
            &[("response_type", Some("token"))],
            &[],
            page.clone(),
        ),
        // Raw encodings.
        case(
            "authorize: non-UTF-8 percent bytes in client_id",
            get(format!(
                "/alpha/authorize?client_id=%FF%FE&redirect_uri={}",
                enc(LOOPBACK)
            )),
            page.clone(),
        ),
        case(
            "authorize: raw non-ASCII bytes in query",
            get(b"/alpha/authorize?client_id=\xff\xfe"),
            Expect::Bare(400),
        ),
        case(
            "authorize: truncated percent escape",
            get(format!(
                "/alpha/authorize?client_id=%E&redirect_uri={}",
                enc(LOOPBACK)
            )),
            page.clone(),
        ),
        case(
            "authorize: 64 KiB query",
            get(format!("/alpha/authorize?x={}", "a".repeat(64 * 1024))),
            Expect::Bare(400),
        ),
    ];
    // Hostile text that reaches the consent page is escaped.
    let mut xss = n(
        "markup in state and login_hint is escaped on the consent page",
        &[
            ("state", Some("\"><script>alert(1)</script>")),
            ("login_hint", Some("<img src=x onerror=alert(1)>")),
        ],
        &[],
        Expect::Status(200),
    );
    xss.forbid = Some("<script>alert(1)".into());
    cases.push(xss);
    let total = run(&app, &ctx, &cases).await;
    assert_eq!(
        snapshot(&app).await,
        before,
        "no transaction, code or client stored or changed"
    );
    report("authorize", &[("authorize", total)]);
    app.stop().await;
}
