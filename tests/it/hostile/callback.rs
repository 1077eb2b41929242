//! Hostile input at `GET /{tenant}/callback`.

use dcr_shim::oauth::records::AuthCode;
use url::Url;

use super::harness::*;
use crate::browser::param;
use crate::helpers::spawn_app;

#[tokio::test]
async fn hostile_callback() {
    let app = spawn_app().await;
    let mut ctx = ctx_for(&app, "alpha");
    let client = public_client(&app, "alpha").await;
    let p = pending_callback(&app, &client).await;
    let state = Url::parse(&format!("{}{}", app.base, p.callback))
        .map(|u| param(&u, "state").unwrap())
        .unwrap();
    let cookie = format!("{}={}", p.txn_cookie.0, p.txn_cookie.1);
    let before = snapshot(&app).await;
    let code_param = Url::parse(&format!("{}{}", app.base, p.callback))
        .map(|u| param(&u, "code").unwrap())
        .unwrap();
    let c = |name: &str, req: Req, status: u16| {
        case(format!("callback: {name}"), req, Expect::Page(status))
    };
    let cases = vec![
        c(
            "no state",
            get(format!("/alpha/callback?code={code_param}")).cookie(&cookie),
            400,
        ),
        c(
            "empty state",
            get(format!("/alpha/callback?code={code_param}&state=")).cookie(&cookie),
            400,
        ),
        c(
            "unknown state",
            get(format!("/alpha/callback?code={code_param}&state=nope")).cookie(&cookie),
            400,
        ),
        c(
            "non-UTF-8 state",
            get(format!("/alpha/callback?code={code_param}&state=%FF%FE")).cookie(&cookie),
            400,
        ),
        c(
            "huge state",
            get(format!(
                "/alpha/callback?code={code_param}&state={}",
                "s".repeat(16_000)
            ))
            .cookie(&cookie),
            400,
        ),
        c(
            "state with path traversal",
            get(format!(
                "/alpha/callback?code={code_param}&state=..%2F..%2Fetc%2Fpasswd"
            ))
            .cookie(&cookie),
            400,
        ),
        c(
            "valid state without the browser cookie",
            get(&p.callback),
            400,
        ),
        c(
            "valid state with a wrong cookie value",
            get(&p.callback).cookie(&format!("{}=forged", p.txn_cookie.0)),
            400,
        ),
        c(
            "valid state with an empty cookie value",
            get(&p.callback).cookie(&format!("{}=", p.txn_cookie.0)),
            400,
        ),
        c(
            "valid state at another tenant",
            get(p.callback.replacen("/alpha/", "/limited/", 1)).cookie(&cookie),
            400,
        ),
        c(
            "unknown tenant",
            get(p.callback.replacen("/alpha/", "/nope/", 1)).cookie(&cookie),
            404,
        ),
        c(
            "uppercase tenant",
            get(p.callback.replacen("/alpha/", "/ALPHA/", 1)).cookie(&cookie),
            404,
        ),
        case(
            "callback: raw non-ASCII bytes in query",
            get([b"/alpha/callback?state=".as_slice(), b"\xff\xfe"].concat()),
            Expect::Bare(400),
        ),
    ];
    let mut total = run(&app, &ctx, &cases).await;
    assert_eq!(
        snapshot(&app).await,
        before,
        "the transaction is neither consumed nor changed"
    );
    let _ = state;

    // The rightful browser completes; the same callback again is a page.
    let res = send(&app, &get(&p.callback).cookie(&cookie)).await;
    assert_eq!(res.status, 302, "{}", res.text());
    assert!(
        res.location()
            .unwrap()
            .starts_with(&format!("{LOOPBACK}?code="))
    );
    let replays = vec![
        c(
            "replayed with the cookie",
            get(&p.callback).cookie(&cookie),
            400,
        ),
        c("replayed without the cookie", get(&p.callback), 400),
    ];
    total += run(&app, &ctx, &replays).await;

    // Hostile answers "from the IdP" for a live transaction: back to the client, consumed.
    let upstream_cases: Vec<(&str, &str, &'static str)> = vec![
        (
            "IdP error access_denied",
            "error=access_denied&error_description=no",
            "access_denied",
        ),
        (
            "IdP error with markup",
            "error=%3Cscript%3E&error_description=%3Cb%3Ex",
            "server_error",
        ),
        ("neither code nor error", "", "server_error"),
        // The IdP's token-endpoint invalid_grant is not an authorization-response code
        // (RFC 6749 §4.1.2.1): the client gets server_error with the IdP's reason.
        ("forged upstream code", "code=forged", "server_error"),
    ];
    ctx.safe.push(format!("{LOOPBACK}?"));
    for (name, extra, expected) in upstream_cases {
        let p = pending_callback(&app, &client).await;
        let url = Url::parse(&format!("{}{}", app.base, p.callback)).unwrap();
        let st = param(&url, "state").unwrap();
        let target = format!(
            "/alpha/callback?state={}{}{extra}",
            enc(&st),
            if extra.is_empty() { "" } else { "&" }
        );
        let cookie = format!("{}={}", p.txn_cookie.0, p.txn_cookie.1);
        let cs = vec![
            case(
                format!("callback: {name}"),
                get(&target).cookie(&cookie),
                Expect::Redirect(expected),
            ),
            case(
                format!("callback: {name}, then replayed"),
                get(&target).cookie(&cookie),
                Expect::Page(400),
            ),
        ];
        total += run(&app, &ctx, &cs).await;
        // No code was issued for it.
        let _ = p.verifier;
    }
    assert_eq!(
        kind::<AuthCode>(&app, &app.tenant("alpha").id).await.len(),
        1,
        "only the rightful callback issued a code"
    );
    report("callback", &[("callback", total)]);
    app.stop().await;
}
