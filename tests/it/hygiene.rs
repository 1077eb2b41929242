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

/// Regression (issue 22, item 18): the data directory and the store are the owner's alone
/// (0700) and the server secret 0600, whatever the umask the server starts under.
#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_is_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let tenants = tempfile::tempdir().unwrap();
    write_tenants(tenants.path(), None);
    let port = crate::binary::free_port();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 000; exec \"$0\" serve --listen 127.0.0.1:{port} --data-dir \"$1\" --tenants \"$2\""
        ))
        .arg(env!("CARGO_BIN_EXE_dcr-shim"))
        .arg(&data)
        .arg(tenants.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "the server started");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_eq!(mode(&data.join("store")), 0o700, "the store");
    assert_eq!(
        mode(&data.join("server-secret")),
        0o600,
        "the server secret"
    );
}
