//! Response hygiene: no secret, code or token in any log line at any level, `no-store` on
//! every response carrying one, security headers on every HTML page.

use crate::binary::{dev_login, refresh_at, start_binary};
use crate::helpers::write_tenants;

#[tokio::test]
async fn no_code_token_or_secret_reaches_the_log_at_any_level() {
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    write_tenants(tenants.path(), None);
    let mut shim = start_binary(data.path(), tenants.path(), &[("RUST_LOG", "trace")]);
    let mut handed = dev_login(&shim.base, "alpha", true).await;
    let (access, refresh) = refresh_at(&shim.base, "alpha", &handed, &handed.refresh_token)
        .await
        .unwrap();
    handed.values.extend([access, refresh.clone()]);
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/alpha/revoke", shim.base))
        .basic_auth(&handed.client_id, handed.client_secret.as_ref())
        .form(&[("token", refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Registration answers carrying a secret are not cacheable.
    let res = http
        .post(format!("{}/alpha/register", shim.base))
        .json(&serde_json::json!({"redirect_uris": ["https://a.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    let secret = res.json::<serde_json::Value>().await.unwrap()["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    handed.values.push(secret);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    shim.kill();
    let log = shim.log.lock().unwrap().join("\n");
    assert!(
        log.lines().count() > 50,
        "trace logs were captured ({} lines)",
        log.lines().count()
    );
    assert!(
        log.contains("login_completed") && log.contains("token_issued"),
        "the audit events are there"
    );
    for value in &handed.values {
        assert!(value.len() >= 20, "a real handed-out value: {value}");
        assert!(
            !log.contains(value.as_str()),
            "a handed-out value appears in the log: {}…",
            &value[..8]
        );
    }
    eprintln!(
        "log lines checked: {}, values: {}",
        log.lines().count(),
        handed.values.len()
    );
}

#[tokio::test]
async fn every_html_page_has_the_security_headers() {
    let app = crate::helpers::spawn_app().await;
    let urls = [
        format!("{}/alpha/authorize", app.base),
        format!("{}/alpha/authorize?client_id=nope", app.base),
        format!("{}/nope/authorize", app.base),
        format!("{}/alpha/callback?state=x&code=y", app.base),
        format!("{}/alpha/dev-idp/authorize", app.base),
        format!("{}/beta/dev-idp/authorize", app.base),
    ];
    for url in &urls {
        let res = app.http.get(url).send().await.unwrap();
        assert!(res.status().is_client_error(), "{url}: {}", res.status());
        let h = res.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with("text/html"),
            "{url}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{url}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{url}"
        );
        assert_eq!(h["cache-control"], "no-store", "{url}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{url}");
    }
    app.stop().await;
}
