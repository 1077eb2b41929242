//! Reloading the tenant files while serving: a valid change is swapped in whole, an invalid
//! one leaves the running set as it was, and neither disturbs a login under way or the data
//! of a tenant that goes away.

use std::time::Duration;

use serde_json::{Value, json};

use crate::binary::start_binary_with_args;
use crate::browser::{Browser, Client, Landing, authorize_url, param, redeem};
use crate::login::world;

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(app: &crate::helpers::TestApp) -> String {
    let url = format!("{}/metrics", app.admin_base().trim_end_matches("/admin/v1"));
    app.http
        .get(url)
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_valid_and_an_invalid_reload_during_a_login_leave_it_working() {
    let w = world().await;
    let tenants = w.app.tenants_dir.clone();
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let browser = Browser::new();
    let attempt = authorize_url(
        &w.app,
        "contoso",
        &client,
        "files.read offline_access",
        "alice@contoso.example",
    );
    let Landing::Consent(page) = browser.go(&attempt.url, client.prefix()).await else {
        panic!("consent page expected");
    };
    // The browser is now on its way to the IdP: the transaction is stored, the callback not
    // yet reached.
    let at_idp = browser
        .consent_location(&w.app.issuer("contoso"), &page, "approve")
        .await;

    // A valid change: a new tenant, another one renamed on its pages, and contoso's own file
    // touched (a comment).
    let contoso = std::fs::read_to_string(tenants.join("contoso.toml")).unwrap();
    std::fs::write(tenants.join("northwind.toml"), &contoso).unwrap();
    std::fs::write(
        tenants.join("contoso.toml"),
        format!("# reviewed\n{contoso}"),
    )
    .unwrap();
    let fabrikam = std::fs::read_to_string(tenants.join("fabrikam.toml")).unwrap();
    std::fs::write(
        tenants.join("fabrikam.toml"),
        fabrikam.replace("display_name = \"Contoso\"", "display_name = \"Fabrikam\""),
    )
    .unwrap();
    let reloaded = w.app.reload().await.expect("a valid set is applied");
    assert_eq!(reloaded.added, ["northwind"]);
    assert_eq!(reloaded.changed, ["fabrikam"], "a comment is no change");
    assert!(reloaded.removed.is_empty());
    assert_eq!(
        w.app
            .get("/.well-known/oauth-authorization-server/northwind")
            .await
            .status(),
        200
    );

    // An invalid change: one broken file, and northwind removed in the same edit. The whole
    // set is refused, so northwind stays and the broken tenant never appears.
    std::fs::write(
        tenants.join("broken.toml"),
        "upstream = { kind = \"nonsense\" }\n",
    )
    .unwrap();
    std::fs::remove_file(tenants.join("northwind.toml")).unwrap();
    let refused = w.app.reload().await.expect_err("an invalid set is refused");
    assert!(refused.to_string().contains("broken.toml"), "{refused}");
    assert_eq!(
        w.app
            .get("/.well-known/oauth-authorization-server/broken")
            .await
            .status(),
        404
    );
    assert_eq!(
        w.app
            .get("/.well-known/oauth-authorization-server/northwind")
            .await
            .status(),
        200,
        "the running set stays whole"
    );
    // Counted (metrics are process-wide and tests run in parallel: at least this one).
    let refusals = metric(
        &scrape(&w.app).await,
        "dcr_shim_tenant_reloads_total{outcome=\"refused\"}",
    );
    assert!(refusals >= 1.0, "refusals counted: {refusals}");

    // The login started before both reloads finishes: IdP → callback → code → tokens.
    let Landing::Client(url) = browser.go(&at_idp, client.prefix()).await else {
        panic!("the login should end at the client");
    };
    let code = param(&url, "code").expect("a code");
    let (status, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["refresh_token"].is_string());
    w.stop().await;
}

#[tokio::test]
async fn a_removed_tenant_answers_404_and_its_clients_come_back_with_its_file() {
    let w = world().await;
    let tenants = w.app.tenants_dir.clone();
    let (status, registered) = w
        .app
        .register(
            "fabrikam",
            &json!({"redirect_uris": ["http://127.0.0.1:7777/cb"], "client_name": "Kept"}),
        )
        .await;
    assert_eq!(status, 201, "{registered}");
    let read = |app: &crate::helpers::TestApp, r: &Value| {
        app.http
            .get(r["registration_client_uri"].as_str().unwrap())
            .bearer_auth(r["registration_access_token"].as_str().unwrap())
            .send()
    };
    let file = tenants.join("fabrikam.toml");
    let kept = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let reloaded = w.app.reload().await.unwrap();
    assert_eq!(reloaded.removed, ["fabrikam"]);
    assert_eq!(
        w.app
            .get("/.well-known/oauth-authorization-server/fabrikam")
            .await
            .status(),
        404
    );
    assert_eq!(read(&w.app, &registered).await.unwrap().status(), 404);
    assert_eq!(
        w.app
            .get("/.well-known/oauth-authorization-server/contoso")
            .await
            .status(),
        200
    );

    std::fs::write(&file, kept).unwrap();
    assert_eq!(w.app.reload().await.unwrap().added, ["fabrikam"]);
    w.app.wait_ready().await;
    let res = read(&w.app, &registered).await.unwrap();
    assert_eq!(
        res.status(),
        200,
        "the client registered before the removal is still there"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["client_name"], "Kept");
    w.stop().await;
}

/// The binary reloads on SIGHUP and, with `--watch-tenants`, when a file changes; refusals
/// and reloads are counted in `/metrics`.
#[tokio::test]
async fn the_binary_reloads_on_sighup_and_on_change() {
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    let dev = crate::helpers::DEV_TENANT;
    std::fs::write(tenants.path().join("alpha.toml"), dev).unwrap();
    let shim = start_binary_with_args(data.path(), tenants.path(), &["--watch-tenants"]);
    let http = reqwest::Client::new();
    let status = |tenant: &'static str| {
        let url = format!(
            "{}/.well-known/oauth-authorization-server/{tenant}",
            shim.base
        );
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    let eventually = |tenant: &'static str, want: u16| async move {
        for _ in 0..100 {
            if status(tenant).await == want {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert_eq!(status("gamma").await, 404);

    // Watched: a new file is served within a few seconds, with no signal.
    std::fs::write(tenants.path().join("gamma.toml"), dev).unwrap();
    assert!(
        eventually("gamma", 200).await,
        "--watch-tenants picks up a new file: {:#?}",
        shim.log.lock().unwrap()
    );

    // An invalid file is refused whole and logged with the file and what to fix.
    std::fs::write(tenants.path().join("delta.toml"), "upstream = 3\n").unwrap();
    let refused = || {
        shim.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("tenant files not reloaded") && l.contains("delta.toml"))
    };
    for _ in 0..100 {
        if refused() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused(), "the refusal names the file");
    assert_eq!(status("delta").await, 404);
    assert_eq!(status("gamma").await, 200);

    // Fixed, then signalled: SIGHUP reloads at once.
    std::fs::write(tenants.path().join("delta.toml"), dev).unwrap();
    let kill = std::process::Command::new("kill")
        .args(["-HUP", &shim.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(eventually("delta", 200).await, "SIGHUP reloads");
    let mut shim = shim;
    assert!(
        shim.child.try_wait().is_ok_and(|s| s.is_none()),
        "SIGHUP does not end the process"
    );
}

/// Regression (issue 22, item 8): SIGHUP reads `--admin-token-file` again, so a leaked admin
/// token is withdrawn without a restart; a file that does not parse keeps the tokens in force.
#[tokio::test]
async fn sighup_reloads_the_admin_tokens() {
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    let dev = crate::helpers::DEV_TENANT;
    std::fs::write(tenants.path().join("alpha.toml"), dev).unwrap();
    let token_file = data.path().join("admin-tokens");
    let (leaked, fresh) = ("l".repeat(40), "f".repeat(40));
    crate::helpers::write_private(&token_file, &format!("alice {leaked}\n"));
    let admin_port = crate::binary::free_port();
    let admin_listen = format!("127.0.0.1:{admin_port}");
    let shim = start_binary_with_args(
        data.path(),
        tenants.path(),
        &[
            "--admin-listen",
            &admin_listen,
            "--admin-token-file",
            token_file.to_str().unwrap(),
        ],
    );
    let http = reqwest::Client::new();
    let status = |token: &str| {
        let req = http
            .get(format!("http://{admin_listen}/admin/v1/tenants"))
            .bearer_auth(token);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let hangup = || {
        let kill = std::process::Command::new("kill")
            .args(["-HUP", &shim.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
    };
    let eventually = |token: String, want: u16| {
        let status = &status;
        async move {
            for _ in 0..50 {
                if status(&token).await == want {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        }
    };
    assert_eq!(status(&leaked).await, 200);
    assert_eq!(status(&fresh).await, 401);

    crate::helpers::write_private(&token_file, &format!("bob {fresh}\n"));
    hangup();
    assert!(
        eventually(leaked.clone(), 401).await,
        "the withdrawn token is refused"
    );
    assert_eq!(status(&fresh).await, 200, "the new token is served");

    // A file with a bad line adds nothing and keeps what it still lists on a good line: the
    // token whose line went away is withdrawn even though another line is broken.
    let other = "o".repeat(40);
    crate::helpers::write_private(&token_file, &format!("bob {fresh}\ncarol {other}\n"));
    hangup();
    assert!(eventually(other.clone(), 200).await);
    crate::helpers::write_private(&token_file, &format!("bob {fresh}\ncarol short\n"));
    hangup();
    let logged = || {
        shim.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("admin tokens not reloaded"))
    };
    for _ in 0..50 {
        if logged() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(logged(), "{:#?}", shim.log.lock().unwrap());
    assert_eq!(
        status(&fresh).await,
        200,
        "a token in force and still listed stays"
    );
    assert_eq!(
        status(&other).await,
        401,
        "one whose line is broken does not"
    );
    assert_eq!(status(&leaked).await, 401);
}

/// Regression (issue 22, item 9): `--watch-tenants` loaded a file seen half-written, and what
/// its missing tail held (here `dcr = false`) took its permissive default. A file is loaded
/// once it stays the same for two polls.
#[tokio::test]
async fn a_half_written_tenant_file_is_never_served() {
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    let dev = crate::helpers::DEV_TENANT;
    std::fs::write(tenants.path().join("alpha.toml"), dev).unwrap();
    let shim = start_binary_with_args(data.path(), tenants.path(), &["--watch-tenants"]);
    let http = reqwest::Client::new();
    let whole = format!("{dev}[registration]\ndcr = false\n");
    let register = || {
        let req = http
            .post(format!("{}/closed/register", shim.base))
            .json(&json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    // The file arrives in two writes 1.5 s apart, as a slow copy would: the first holds
    // everything but the restriction. Polls see it until the file is whole and settled.
    let path = tenants.path().join("closed.toml");
    std::fs::write(&path, dev).unwrap();
    let started = std::time::Instant::now();
    let mut wrote_tail = false;
    let mut served = false;
    while started.elapsed() < Duration::from_secs(8) {
        if !wrote_tail && started.elapsed() > Duration::from_millis(1500) {
            std::fs::write(&path, &whole).unwrap();
            wrote_tail = true;
        }
        match register().await {
            201 => panic!("the half-written file was served: registration was open"),
            404 => {}
            other => panic!("unexpected {other}"),
        }
        served |= http
            .get(format!(
                "{}/.well-known/oauth-authorization-server/closed",
                shim.base
            ))
            .send()
            .await
            .unwrap()
            .status()
            == 200;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the whole file is served once it settled");
}

/// A Kubernetes ConfigMap volume as the kubelet writes it: each key a symlink `<key> ->
/// ..data/<key>`, `..data` a symlink to a timestamped directory, and an update a new directory
/// swapped in by renaming a fresh `..data_tmp` link over `..data` (one atomic step), the old
/// directory removed after. `--watch-tenants` sees the swap: a changed tenant and a new one are
/// served, a key dropped from the ConfigMap is no longer.
#[cfg(unix)]
#[tokio::test]
async fn a_configmap_update_by_symlink_swap_is_reloaded() {
    use std::os::unix::fs::symlink;
    let data = tempfile::tempdir().unwrap();
    let volume = tempfile::tempdir().unwrap();
    let dev = crate::helpers::DEV_TENANT;
    let closed = format!("{dev}[registration]\ndcr = false\n");
    let write_version = |name: &str, files: &[(&str, &str)]| {
        let dir = volume.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        for (key, text) in files {
            std::fs::write(dir.join(key), text).unwrap();
        }
    };
    write_version(
        "..2026_12_07_09_00_00.1",
        &[("alpha.toml", dev), ("gone.toml", dev)],
    );
    symlink("..2026_12_07_09_00_00.1", volume.path().join("..data")).unwrap();
    for key in ["alpha.toml", "gone.toml"] {
        symlink(format!("..data/{key}"), volume.path().join(key)).unwrap();
    }
    let shim = start_binary_with_args(data.path(), volume.path(), &["--watch-tenants"]);
    let http = reqwest::Client::new();
    // What a tenant's metadata says: 404 when unknown, else whether it offers registration.
    let offers = |tenant: &'static str| {
        let req = http.get(format!(
            "{}/.well-known/oauth-authorization-server/{tenant}",
            shim.base
        ));
        async move {
            let res = req.send().await.unwrap();
            match res.status().as_u16() {
                200 => {
                    Some(res.json::<Value>().await.unwrap()["registration_endpoint"].is_string())
                }
                _ => None,
            }
        }
    };
    assert_eq!(
        offers("alpha").await,
        Some(true),
        "served through the links"
    );
    assert_eq!(offers("gone").await, Some(true));
    assert_eq!(offers("beta").await, None);

    // The update: alpha closes registration, beta arrives, gone leaves.
    write_version(
        "..2026_12_07_09_05_00.2",
        &[("alpha.toml", &closed), ("beta.toml", dev)],
    );
    symlink("..2026_12_07_09_05_00.2", volume.path().join("..data_tmp")).unwrap();
    std::fs::rename(
        volume.path().join("..data_tmp"),
        volume.path().join("..data"),
    )
    .unwrap();
    symlink("..data/beta.toml", volume.path().join("beta.toml")).unwrap();
    std::fs::remove_file(volume.path().join("gone.toml")).unwrap();
    std::fs::remove_dir_all(volume.path().join("..2026_12_07_09_00_00.1")).unwrap();

    let want = (Some(false), Some(true), None);
    let mut seen = (None, None, None);
    for _ in 0..100 {
        seen = (
            offers("alpha").await,
            offers("beta").await,
            offers("gone").await,
        );
        if seen == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen,
        want,
        "the swapped ConfigMap is served: {:#?}",
        shim.log.lock().unwrap()
    );
}
