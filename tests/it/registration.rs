//! Dynamic Client Registration (RFC 7591): accepted shapes, refusals, limits, storage.

use dcr_shim::domain::ClientRecord;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn native_loopback_client_registers_as_public() {
    let app = spawn_app().await;
    let (status, body) = app
        .register(
            "alpha",
            &json!({
                "client_name": "Claude Code",
                "redirect_uris": ["http://localhost:33418/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
                "software_id": "claude-code",
                "scope": "files.read offline_access",
                "unknown_field": {"ignored": true},
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let client_id = body["client_id"].as_str().unwrap();
    assert!(!client_id.starts_with("https://"));
    assert!(body["client_id_issued_at"].as_u64().unwrap() > 1_700_000_000);
    assert!(
        body.get("client_secret").is_none(),
        "public clients get no secret"
    );
    assert_eq!(
        body["redirect_uris"],
        json!(["http://localhost:33418/callback"])
    );
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert_eq!(body["application_type"], "native");
    assert_eq!(
        body["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(body["client_name"], "Claude Code");
    assert!(body.get("unknown_field").is_none());

    let tenant = app.tenant("alpha");
    let stored = app
        .state()
        .registry()
        .find(
            &tenant,
            client_id,
            &crate::helpers::operator(dcr_shim::app::unix_now()),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.apps["https://mcp.example.com/files"], "dev",
        "the chosen app is recorded"
    );
    assert!(stored.secret_sha256.is_none());
    app.stop().await;
}

#[tokio::test]
async fn confidential_web_client_gets_a_secret_once_and_only_its_hash_is_stored() {
    let app = spawn_app().await;
    let (status, body) = app
        .register(
            "alpha",
            &json!({"client_name": "Web agent", "redirect_uris": ["https://agent.example.com/oauth/callback"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["token_endpoint_auth_method"], "client_secret_basic",
        "RFC 7591 default"
    );
    assert_eq!(body["application_type"], "web");
    let secret = body["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 43);
    assert_eq!(body["client_secret_expires_at"], 0);

    let tenant = app.tenant("alpha");
    let stored: ClientRecord = app
        .state()
        .registry()
        .find(
            &tenant,
            body["client_id"].as_str().unwrap(),
            &crate::helpers::operator(dcr_shim::app::unix_now()),
        )
        .await
        .unwrap()
        .unwrap();
    let hash = stored.secret_sha256.clone().unwrap();
    assert!(hash.matches(&dcr_shim::crypto::Handle::presented(secret)));
    assert!(!hash.matches(&dcr_shim::crypto::Handle::presented("wrong")));
    let raw = serde_json::to_string(&stored).unwrap();
    assert!(!raw.contains(secret), "the secret itself is never stored");

    let (status, body) = app
        .register(
            "alpha",
            &json!({"redirect_uris": ["https://agent.example.com/cb"], "token_endpoint_auth_method": "client_secret_post"}),
        )
        .await;
    assert_eq!(status, 201);
    assert!(body["client_secret"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn private_use_scheme_client_registers_as_native() {
    let app = spawn_app().await;
    let (status, body) = app
        .register(
            "alpha",
            &json!({
                "client_name": "Cursor",
                "redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback", "com.example.app:/oauth2redirect"],
                "token_endpoint_auth_method": "none",
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["application_type"], "native",
        "inferred from the redirect URIs"
    );
    app.stop().await;
}

#[tokio::test]
async fn invalid_registrations_get_the_rfc_error_naming_the_field() {
    let app = spawn_app().await;
    let ok_uri = json!(["https://a.example.com/cb"]);
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "no redirect_uris",
            json!({"client_name": "x"}),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (
            "empty redirect_uris",
            json!({"redirect_uris": []}),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (
            "redirect_uris not array",
            json!({"redirect_uris": "https://a.example.com/cb"}),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (
            "redirect uri not string",
            json!({"redirect_uris": [42]}),
            "invalid_redirect_uri",
            "redirect_uris[0]",
        ),
        (
            "fragment",
            json!({"redirect_uris": ["https://a.example.com/cb#x"]}),
            "invalid_redirect_uri",
            "fragment",
        ),
        (
            "http non-loopback",
            json!({"redirect_uris": ["http://a.example.com/cb"]}),
            "invalid_redirect_uri",
            "loopback",
        ),
        (
            "javascript scheme",
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
            "javascript",
        ),
        // Regression (issue 22, item 4): a browser's URL handler sends the code to the web
        // page it names, while the consent page spoke of an app on this device.
        (
            "edge handler",
            json!({"redirect_uris": ["microsoft-edge:https://evil.example/cb"]}),
            "invalid_redirect_uri",
            "browser's handler",
        ),
        (
            "chrome handler",
            json!({"redirect_uris": ["googlechrome://evil.example/cb"]}),
            "invalid_redirect_uri",
            "browser's handler",
        ),
        (
            "safari handler",
            json!({"redirect_uris": ["x-safari-https://evil.example/cb"]}),
            "invalid_redirect_uri",
            "browser's handler",
        ),
        (
            "firefox handler",
            json!({"redirect_uris": ["firefox://open-url?url=https://evil.example/cb"]}),
            "invalid_redirect_uri",
            "browser's handler",
        ),
        (
            "opera handler",
            json!({"redirect_uris": ["opera-https://evil.example/cb"]}),
            "invalid_redirect_uri",
            "browser's handler",
        ),
        // Regression (issue 22, item 5): bidirectional formatting characters in what the
        // consent page, the logs and the CLI show.
        (
            "right-to-left override in client_name",
            json!({"redirect_uris": ok_uri, "client_name": "Contoso \u{202E}lanretxe"}),
            "invalid_client_metadata",
            "bidirectional",
        ),
        (
            "isolate in software_id",
            json!({"redirect_uris": ok_uri, "software_id": "agent\u{2067}x"}),
            "invalid_client_metadata",
            "bidirectional",
        ),
        (
            "left-to-right mark in software_version",
            json!({"redirect_uris": ok_uri, "software_version": "1.0\u{200E}"}),
            "invalid_client_metadata",
            "bidirectional",
        ),
        (
            "arabic letter mark in contacts",
            json!({"redirect_uris": ok_uri, "contacts": ["a\u{061C}@example.com"]}),
            "invalid_client_metadata",
            "contacts",
        ),
        (
            "bidi in a redirect uri",
            json!({"redirect_uris": ["https://a.example.com/\u{202E}cb"]}),
            "invalid_redirect_uri",
            "bidirectional",
        ),
        (
            "data scheme",
            json!({"redirect_uris": ["data:text/html,hi"]}),
            "invalid_redirect_uri",
            "data",
        ),
        (
            "userinfo",
            json!({"redirect_uris": ["https://user:pw@a.example.com/cb"]}),
            "invalid_redirect_uri",
            "user information",
        ),
        (
            "relative",
            json!({"redirect_uris": ["/cb"]}),
            "invalid_redirect_uri",
            "absolute",
        ),
        (
            "second uri bad",
            json!({"redirect_uris": ["https://a.example.com/cb", "http://evil.example/cb"]}),
            "invalid_redirect_uri",
            "redirect_uris[1]",
        ),
        (
            "private-use for web",
            json!({"redirect_uris": ["com.example.app:/cb"], "application_type": "web"}),
            "invalid_redirect_uri",
            "native",
        ),
        (
            "too many uris",
            json!({"redirect_uris": (0..11).map(|i| format!("https://a.example.com/{i}")).collect::<Vec<_>>()}),
            "invalid_redirect_uri",
            "at most",
        ),
        (
            "unknown grant",
            json!({"redirect_uris": ok_uri, "grant_types": ["password"]}),
            "invalid_client_metadata",
            "grant_types",
        ),
        (
            "implicit grant",
            json!({"redirect_uris": ok_uri, "grant_types": ["implicit"], "response_types": ["token"]}),
            "invalid_client_metadata",
            "grant_types",
        ),
        (
            "refresh only",
            json!({"redirect_uris": ok_uri, "grant_types": ["refresh_token"]}),
            "invalid_client_metadata",
            "grant_types",
        ),
        (
            "response type token",
            json!({"redirect_uris": ok_uri, "response_types": ["token"]}),
            "invalid_client_metadata",
            "response_types",
        ),
        (
            "empty grant_types",
            json!({"redirect_uris": ok_uri, "grant_types": []}),
            "invalid_client_metadata",
            "grant_types",
        ),
        (
            "auth method private_key_jwt",
            json!({"redirect_uris": ok_uri, "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
            "token_endpoint_auth_method",
        ),
        (
            "auth method number",
            json!({"redirect_uris": ok_uri, "token_endpoint_auth_method": 1}),
            "invalid_client_metadata",
            "token_endpoint_auth_method",
        ),
        (
            "bad application_type",
            json!({"redirect_uris": ok_uri, "application_type": "desktop"}),
            "invalid_client_metadata",
            "application_type",
        ),
        (
            "client_name too long",
            json!({"redirect_uris": ok_uri, "client_name": "x".repeat(201)}),
            "invalid_client_metadata",
            "client_name",
        ),
        (
            "client_name control chars",
            json!({"redirect_uris": ok_uri, "client_name": "a\u{0007}b"}),
            "invalid_client_metadata",
            "client_name",
        ),
        (
            "client_uri http",
            json!({"redirect_uris": ok_uri, "client_uri": "http://a.example.com/"}),
            "invalid_client_metadata",
            "client_uri",
        ),
        (
            "logo_uri javascript",
            json!({"redirect_uris": ok_uri, "logo_uri": "javascript:alert(1)"}),
            "invalid_client_metadata",
            "logo_uri",
        ),
        (
            "bad scope",
            json!({"redirect_uris": ok_uri, "scope": "a  b"}),
            "invalid_client_metadata",
            "scope",
        ),
        (
            "software_statement",
            json!({"redirect_uris": ok_uri, "software_statement": "eyJ..."}),
            "unapproved_software_statement",
            "software_statement",
        ),
        (
            "not an object",
            json!(["redirect_uris"]),
            "invalid_client_metadata",
            "JSON object",
        ),
        (
            "contacts not strings",
            json!({"redirect_uris": ok_uri, "contacts": [1]}),
            "invalid_client_metadata",
            "contacts",
        ),
    ];
    let count = cases.len();
    for (name, body, code, mentions) in cases {
        let (status, err) = app.register("alpha", &body).await;
        assert_eq!(status, 400, "{name}: {err}");
        assert_eq!(err["error"], code, "{name}: {err}");
        let description = err["error_description"].as_str().unwrap_or_default();
        assert!(
            description.contains(mentions),
            "{name}: '{description}' should mention '{mentions}'"
        );
    }
    assert!(count >= 15);
    let tenant = app.tenant("alpha");
    let stored = app
        .state()
        .records()
        .list::<ClientRecord>(&tenant.id, dcr_shim::app::unix_now(), 100)
        .await
        .unwrap();
    assert!(stored.is_empty(), "no refused registration stored anything");
    app.stop().await;
}

#[tokio::test]
async fn malformed_bodies_content_types_and_sizes() {
    let app = spawn_app().await;
    let url = format!("{}/alpha/register", app.base);
    let res = app
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_client_metadata"
    );

    let res = app
        .http
        .post(&url)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );

    let huge =
        json!({"redirect_uris": ["https://a.example.com/cb"], "client_name": "x".repeat(20_000)});
    let res = app.http.post(&url).json(&huge).send().await.unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );

    let res = app.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 405);
    app.stop().await;
}

#[tokio::test]
async fn registrations_over_the_rate_limit_get_429() {
    let app = spawn_app().await;
    let body =
        json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"});
    assert_eq!(app.register("limited", &body).await.0, 201);
    assert_eq!(app.register("limited", &body).await.0, 201);
    let res = app
        .http
        .post(format!("{}/limited/register", app.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "60");
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );
    // Another tenant has its own budget.
    assert_eq!(app.register("alpha", &body).await.0, 201);
    app.stop().await;
}

#[tokio::test]
async fn clients_of_one_tenant_are_unknown_to_another() {
    let app = spawn_app().await;
    let (_, body) = app.register("alpha", &json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"})).await;
    let id = body["client_id"].as_str().unwrap();
    let now = dcr_shim::app::unix_now();
    assert!(
        app.state()
            .registry()
            .find(&app.tenant("alpha"), id, &crate::helpers::operator(now))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        app.state()
            .registry()
            .find(&app.tenant("beta"), id, &crate::helpers::operator(now))
            .await
            .unwrap()
            .is_none()
    );
    app.stop().await;
}

#[tokio::test]
async fn unused_clients_expire_and_used_clients_stay() {
    let app = spawn_app().await;
    let tenant = app.tenant("alpha");
    let lifetime = tenant.registration().unused_client_lifetime.as_secs();
    let body =
        json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"});
    let unused = app.register("alpha", &body).await.1["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let used = app.register("alpha", &body).await.1["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = dcr_shim::app::unix_now();
    let registry = &app.state().registry();
    let used_record = registry
        .find(&tenant, &used, &crate::helpers::operator(now))
        .await
        .unwrap()
        .unwrap();
    registry
        .touch(&tenant, &used_record, now + lifetime / 2)
        .await
        .unwrap();
    let swept = app
        .state()
        .records()
        .backend()
        .sweep_expired(now + lifetime + 1, 1000)
        .await
        .unwrap();
    assert!(swept.pass_complete);
    assert_eq!(swept.removed, 1);
    let later = now + lifetime + 1;
    assert!(
        registry
            .find(&tenant, &unused, &crate::helpers::operator(later))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        registry
            .find(&tenant, &used, &crate::helpers::operator(later))
            .await
            .unwrap()
            .is_some()
    );
    app.stop().await;
}

/// Behind a trusted proxy each user gets a rate-limit bucket of its own and the audit log
/// names the user's address; from an untrusted peer the forwarding headers are ignored; and a
/// tenant-wide ceiling holds whatever the sources.
#[tokio::test]
async fn trusted_proxies_name_the_client_and_a_tenant_ceiling_holds() {
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    crate::helpers::write_tenants(tenants.path(), None);
    std::fs::write(
        tenants.path().join("ceiling.toml"),
        format!("{}[registration]\nregistrations_per_minute = 100\ntenant_registrations_per_minute = 3\n", crate::helpers::DEV_TENANT),
    )
    .unwrap();
    let register = |base: String, tenant: &'static str, forwarded_for: &'static str| async move {
        reqwest::Client::new()
            .post(format!("{base}/{tenant}/register"))
            .header("X-Forwarded-For", forwarded_for)
            .json(&json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };

    // Untrusted peer (no --trusted-proxies): the header is ignored, one bucket for all.
    let shim = crate::binary::start_binary(data.path(), tenants.path(), &[]);
    let statuses = [
        register(shim.base.clone(), "limited", "203.0.113.1").await,
        register(shim.base.clone(), "limited", "203.0.113.2").await,
        register(shim.base.clone(), "limited", "203.0.113.3").await,
    ];
    assert_eq!(statuses, [201, 201, 429]);
    drop(shim);

    let data = tempfile::tempdir().unwrap();
    let shim = crate::binary::start_binary_with_args(
        data.path(),
        tenants.path(),
        &["--trusted-proxies", "10.0.0.0/8,127.0.0.1"],
    );
    let statuses = [
        register(shim.base.clone(), "limited", "203.0.113.1").await,
        register(shim.base.clone(), "limited", "203.0.113.1").await,
        register(shim.base.clone(), "limited", "203.0.113.1").await,
        register(
            shim.base.clone(),
            "limited",
            "6.6.6.6, 203.0.113.2, 10.0.0.7",
        )
        .await,
    ];
    assert_eq!(
        statuses,
        [201, 201, 429, 201],
        "one bucket per client behind the proxy"
    );
    let ceiling = [
        register(shim.base.clone(), "ceiling", "198.51.100.1").await,
        register(shim.base.clone(), "ceiling", "198.51.100.2").await,
        register(shim.base.clone(), "ceiling", "198.51.100.3").await,
        register(shim.base.clone(), "ceiling", "198.51.100.4").await,
    ];
    assert_eq!(ceiling, [201, 201, 201, 429], "the tenant-wide ceiling");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let log = shim.log.lock().unwrap().join("\n");
    assert!(
        log.contains(r#""source":"203.0.113.2""#),
        "audit names the client: {log}"
    );
    assert!(
        !log.contains(r#""source":"6.6.6.6""#),
        "not the part the client wrote"
    );
}

/// RFC 7592: a registered client reads, updates and deletes its own registration with the
/// registration access token it got at registration, and with no other.
#[tokio::test]
async fn a_client_manages_its_registration_with_its_access_token() {
    let app = crate::helpers::spawn_app().await;
    let body = json!({"client_name": "Mine", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"});
    let (status, mine) = app.register("alpha", &body).await;
    assert_eq!(status, 201);
    let (_, theirs) = app.register("alpha", &body).await;
    let uri = mine["registration_client_uri"].as_str().unwrap().to_owned();
    let token = mine["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        uri,
        format!(
            "{}/register/{}",
            app.issuer("alpha"),
            mine["client_id"].as_str().unwrap()
        )
    );

    let get = |bearer: Option<String>| {
        let (http, uri) = (app.http.clone(), uri.clone());
        async move {
            let mut req = http.get(&uri);
            if let Some(b) = bearer {
                req = req.bearer_auth(b);
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let challenge = res.headers().contains_key("www-authenticate");
            (
                status,
                challenge,
                res.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, challenge, body) = get(None).await;
    assert_eq!(
        (status, challenge, body["error"].as_str()),
        (401, true, Some("invalid_token"))
    );
    let other = theirs["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(get(Some(other)).await.0, 401, "another client's token");
    let (status, _, body) = get(Some(token.clone())).await;
    assert_eq!(status, 200);
    assert_eq!(body["client_name"], "Mine");
    assert!(body.get("registration_access_token").is_none() && body.get("client_secret").is_none());

    let put = |update: Value| {
        let (http, uri, token) = (app.http.clone(), uri.clone(), token.clone());
        async move {
            let res = http
                .put(&uri)
                .bearer_auth(token)
                .json(&update)
                .send()
                .await
                .unwrap();
            (
                res.status().as_u16(),
                res.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let id = mine["client_id"].as_str().unwrap();
    let (status, body) = put(json!({"client_id": id, "client_name": "Renamed", "redirect_uris": ["http://127.0.0.1/new"], "token_endpoint_auth_method": "none"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["redirect_uris"], json!(["http://127.0.0.1/new"]));
    assert_eq!(get(Some(token.clone())).await.2["client_name"], "Renamed");
    let (status, body) =
        put(json!({"client_name": "No id", "redirect_uris": ["http://127.0.0.1/cb"]})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, body) = put(json!({"client_id": id, "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "client_secret_basic"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client_metadata")),
        "{body}"
    );
    let (status, body) =
        put(json!({"client_id": id, "redirect_uris": ["javascript:alert(1)"]})).await;
    assert_eq!(status, 400, "validated like a registration: {body}");

    let delete = app
        .http
        .delete(&uri)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 401);
    let delete = app
        .http
        .delete(&uri)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 204);
    assert_eq!(get(Some(token.clone())).await.0, 401, "gone");
    app.stop().await;
}
