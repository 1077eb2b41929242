//! The admin API: its token, tenants, clients (list, show, re-map, delete) and grants (list by
//! client and user, revoke one, all of a user), each effective at once.

use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{Browser, Client, login, redeem, refresh};
use crate::fake_entra::SECRET_APP;
use crate::helpers::{ADMIN_TOKEN, spawn_app};
use crate::login::world;

#[tokio::test]
async fn the_admin_api_wants_its_token_and_lists_tenants() {
    let app = spawn_app().await;
    let url = format!("{}/tenants", app.admin_base());
    let none = app.http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers().contains_key("www-authenticate"));
    let wrong = app
        .http
        .get(&url)
        .bearer_auth(format!("{ADMIN_TOKEN}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let res = app.admin(Method::GET, "/tenants").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let beta = body["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "beta")
        .unwrap();
    assert_eq!(beta["upstream"]["state"], "unreachable", "{body}");
    assert_eq!(beta["apps"][0]["name"], "beta-app");
    // The admin API is not on the public listener.
    let public = app.get("/admin/v1/tenants").await;
    assert_ne!(public.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn revoking_a_user_ends_their_grants_at_once_and_spares_everyone_else() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let mut refresh_tokens = Vec::new();
    for user in ["alice", "bob", "alice"] {
        let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &client, user).await;
        let (_, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
        refresh_tokens.push(tokens["refresh_token"].as_str().unwrap().to_owned());
    }
    let grants: Value = w
        .app
        .admin(Method::GET, "/tenants/contoso/grants?user=oid-alice")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(grants["grants"].as_array().unwrap().len(), 2, "{grants}");
    assert_eq!(grants["grants"][0]["client_id"], client.id.as_str());

    let res = w
        .app
        .admin(Method::POST, "/tenants/contoso/grants/revoke")
        .json(&json!({"user": "oid-alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["revoked"], 2);
    for (i, user) in [(0, "alice"), (2, "alice")] {
        let (status, body) = refresh(&w.app, "contoso", &client, &refresh_tokens[i]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{user}"
        );
    }
    let (status, body) = refresh(&w.app, "contoso", &client, &refresh_tokens[1]).await;
    assert_eq!(status, 200, "bob keeps working: {body}");

    // One grant by its id.
    let grants: Value = w
        .app
        .admin(Method::GET, "/tenants/contoso/grants?user=oid-bob")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = grants["grants"][0]["id"].as_str().unwrap();
    let res = w
        .app
        .admin(Method::DELETE, &format!("/tenants/contoso/grants/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, _) = refresh(
        &w.app,
        "contoso",
        &client,
        body["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 400, "bob's grant is revoked too now");
    let missing = w
        .app
        .admin(Method::DELETE, "/tenants/contoso/grants/no-such-grant")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    w.stop().await;
}

#[tokio::test]
async fn clients_are_listed_shown_remapped_and_deleted_with_their_grants() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let browser = Browser::new();
    let (code, attempt) = login(&w.app, &browser, "contoso", &client, "cy").await;
    let (_, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();

    let listed: Value = w
        .app
        .admin(Method::GET, "/tenants/contoso/clients?app=agents")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        listed["clients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == client.id.as_str()),
        "{listed}"
    );
    let shown: Value = w
        .app
        .admin(
            Method::GET,
            &format!("/tenants/contoso/clients/{}", client.id),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["grants"].as_array().unwrap().len(), 1, "{shown}");

    // Re-mapped onto the app that authenticates with HTTP Basic: the next login uses it.
    let res = w
        .app
        .admin(
            Method::PUT,
            &format!("/tenants/contoso/clients/{}/app", client.id),
        )
        .json(&json!({"app": "basic-agents"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (code, attempt) = login(&w.app, &browser, "contoso", &client, "cy").await;
    let (status, _) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    assert_eq!(status, 200);
    let auth = w
        .idp
        .state
        .lock()
        .unwrap()
        .token_auth
        .last()
        .cloned()
        .unwrap();
    assert_eq!(
        auth,
        (SECRET_APP.to_owned(), "client_secret_basic".to_owned())
    );
    let unknown_app = w
        .app
        .admin(
            Method::PUT,
            &format!("/tenants/contoso/clients/{}/app", client.id),
        )
        .json(&json!({"app": "no-such-app"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_app.status(), 400);

    // Deleted: its grants end and it is unknown from then on.
    let res = w
        .app
        .admin(
            Method::DELETE,
            &format!("/tenants/contoso/clients/{}", client.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["grants_revoked"], 2);
    let (status, body) = refresh(&w.app, "contoso", &client, &rt).await;
    assert_eq!(status, 401, "the client is gone: {body}");
    let again = w
        .app
        .admin(
            Method::GET,
            &format!("/tenants/contoso/clients/{}", client.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    w.stop().await;
}

#[tokio::test]
async fn the_admin_api_does_not_start_without_a_token_file() {
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    crate::helpers::write_tenants(tenants.path(), None);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut settings =
        crate::helpers::test_settings(addr, &format!("http://{addr}"), data.path(), tenants.path());
    settings.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    let err = dcr_shim::app::start_on(settings, listener)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("--admin-token-file"), "{err}");
}

/// The CLI over the admin API: table output for people, `--json` for scripts, the token from
/// the environment, and a failing exit code with the server's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_and_revokes_through_the_admin_api() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({"client_name": "CLI Agent"})).await;
    let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &client, "dee").await;
    let (_, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    let url = w.app.admin_base().trim_end_matches("/admin/v1").to_owned();
    let cli = |args: &[&str]| {
        let extra = ["--admin-url", url.as_str(), "--tenant", "contoso"];
        run_cli(args, &extra, Some(ADMIN_TOKEN))
    };
    let (ok, table, _) = cli(&["clients", "list"]).await;
    assert!(
        ok && table.contains("CLIENT_ID") && table.contains("CLI Agent"),
        "{table}"
    );
    let (ok, json_out, _) = cli(&["grants", "list", "--user", "oid-dee", "--json"]).await;
    assert!(ok);
    let listed: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(listed["grants"].as_array().unwrap().len(), 1, "{listed}");
    let (ok, said, _) = cli(&["grants", "revoke", "--user", "oid-dee"]).await;
    assert!(ok && said.contains("1 grant(s) revoked"), "{said}");
    let (status, _) = refresh(
        &w.app,
        "contoso",
        &client,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 400, "revoked through the CLI");
    // Regression (issue 22, item 18): revoking nothing is not success (a mistyped subject).
    let (ok, _, err) = cli(&["grants", "revoke", "--user", "oid-dee"]).await;
    assert!(
        !ok && err.contains("no live grant of user oid-dee"),
        "{err}"
    );
    let (ok, _, err) = cli(&["clients", "delete", "no-such-client"]).await;
    assert!(
        !ok && err.contains("404") && err.contains("no such client"),
        "{err}"
    );
    w.stop().await;
}

/// Issue 23, item 9: the CLI for people. Tables show dates, not Unix seconds; a listing cut by
/// `--limit` says how many more match; clients are found by name (any case); a user's grants
/// name their clients.
#[tokio::test]
async fn the_cli_tables_are_for_people() {
    let w = world().await;
    let agent = Client::register(&w.app, "contoso", json!({"client_name": "Claude Code"})).await;
    for name in ["Cursor", "claude.ai", "VS Code"] {
        Client::register(&w.app, "contoso", json!({"client_name": name})).await;
    }
    let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &agent, "ida").await;
    let (status, _) = redeem(&w.app, "contoso", &agent, &code, &attempt).await;
    assert_eq!(status, 200);
    let url = w.app.admin_base().trim_end_matches("/admin/v1").to_owned();
    let cli = |args: &[&str]| {
        let extra = ["--admin-url", url.as_str(), "--tenant", "contoso"];
        run_cli(args, &extra, Some(ADMIN_TOKEN))
    };
    let year = |s: &str| {
        s.contains(&format!(
            "{}-",
            1970 + dcr_shim::app::unix_now() / 31_556_952
        ))
    };

    let (ok, table, err) = cli(&["clients", "list", "--name", "CLAUDE"]).await;
    assert!(ok, "{err}");
    assert!(
        table.contains("Claude Code") && table.contains("claude.ai"),
        "{table}"
    );
    assert!(
        !table.contains("Cursor") && !table.contains("VS Code"),
        "{table}"
    );
    assert!(!table.contains("more (of"), "nothing more matches: {table}");

    let (ok, table, _) = cli(&["clients", "list", "--limit", "1"]).await;
    assert!(ok);
    assert_eq!(
        table.lines().count(),
        3,
        "a header, one client, the more line: {table}"
    );
    assert!(table.contains("… 3 more (of 4); raise --limit"), "{table}");

    let (ok, table, _) = cli(&["grants", "list", "--user", "oid-ida"]).await;
    assert!(ok);
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(
        row.contains(agent.id.as_str()) && row.contains("Claude Code"),
        "{table}"
    );
    assert!(
        year(row) && row.contains('T') && row.contains('Z'),
        "a date: {row}"
    );
    w.stop().await;
}

/// With no server running, the same commands work on the data directory: refused while a
/// server holds it, then effective for the next server, and audited on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_works_offline_on_a_data_directory_no_server_holds() {
    let mut w = world().await;
    if w.app.store.is_some() {
        // --data-dir is the sled store's; a PostgreSQL store is reached through a server.
        return;
    }
    let client = Client::register(&w.app, "contoso", json!({"client_name": "Offline Agent"})).await;
    let mut refresh_tokens = Vec::new();
    for user in ["alice", "bob"] {
        let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &client, user).await;
        let (_, tokens) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
        refresh_tokens.push(tokens["refresh_token"].as_str().unwrap().to_owned());
    }
    let (data, tenants, base) = (
        w.app.data_dir.clone(),
        w.app.tenants_dir.clone(),
        w.app.base.clone(),
    );
    let (data, tenants) = (data.display().to_string(), tenants.display().to_string());
    let cli = |args: &[&str]| {
        let extra = [
            "--data-dir",
            data.as_str(),
            "--tenants",
            tenants.as_str(),
            "--public-url",
            base.as_str(),
            "--tenant",
            "contoso",
        ];
        run_cli(args, &extra, None)
    };
    let (ok, _, err) = cli(&["clients", "list"]).await;
    assert!(!ok && err.contains("held by a running server"), "{err}");

    w.app.pause().await;
    let (ok, table, err) = cli(&["clients", "list"]).await;
    assert!(ok && table.contains("Offline Agent"), "{table}{err}");
    let (ok, listed, _) = cli(&["grants", "list", "--user", "oid-alice", "--json"]).await;
    assert!(ok);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["grants"].as_array().unwrap().len(), 1, "{listed}");
    let (ok, said, audit) = cli(&["grants", "revoke", "--user", "oid-alice"]).await;
    assert!(ok && said.contains("1 grant(s) revoked"), "{said}{audit}");
    let event: Value = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "admin_grants_revoked")
        .unwrap_or_else(|| panic!("the offline action is audited on stderr: {audit}"));
    assert_eq!(event["by"], "offline");

    // The next server sees it: alice is out, bob is not.
    w.app.resume().await;
    let (status, _) = refresh(&w.app, "contoso", &client, &refresh_tokens[0]).await;
    assert_eq!(status, 400, "revoked offline");
    let (status, body) = refresh(&w.app, "contoso", &client, &refresh_tokens[1]).await;
    assert_eq!(status, 200, "{body}");
    w.stop().await;
}

/// Runs the binary with `args` and then `extra` on a blocking thread, with the admin token in
/// the environment or none there: whether it succeeded, its stdout and its stderr.
pub(crate) fn run_cli(
    args: &[&str],
    extra: &[&str],
    admin_token: Option<&str>,
) -> impl std::future::Future<Output = (bool, String, String)> + use<> {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_dcr-shim"));
    command.args(args).args(extra);
    match admin_token {
        Some(token) => command.env("DCR_SHIM_ADMIN_TOKEN", token),
        None => command.env_remove("DCR_SHIM_ADMIN_TOKEN"),
    };
    async move {
        let out = tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// Regression (issue 22, item 11): a tenant that signs nothing has no keys to rotate.
#[tokio::test]
async fn keys_rotate_is_refused_for_a_tenant_that_mints_nothing() {
    let app = spawn_app().await;
    let (status, body) = app
        .admin_json(Method::POST, "/tenants/alpha/keys/rotate", Some(json!({})))
        .await;
    assert_eq!(status, 400);
    crate::helpers::assert_described(&body, "minted");
    let (_, keys) = app
        .admin_json(Method::GET, "/tenants/alpha/keys", None)
        .await;
    assert_eq!(keys["keys"], json!([]), "no key was made");
    app.stop().await;
}

/// Regression (issue 22, item 18): a tenant whose file was removed keeps its grants in the
/// store; an operator can still list and revoke them.
#[tokio::test]
async fn a_removed_tenants_grants_can_be_listed_and_revoked() {
    let w = world().await;
    let client = Client::register(&w.app, "contoso", json!({})).await;
    let (code, attempt) = login(&w.app, &Browser::new(), "contoso", &client, "zoe").await;
    let (status, _) = redeem(&w.app, "contoso", &client, &code, &attempt).await;
    assert_eq!(status, 200);
    let file = w.app.tenants_dir.join("contoso.toml");
    let kept = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    w.app.reload().await.unwrap();
    let (_, listed) = w
        .app
        .admin_json(Method::GET, "/tenants/contoso/grants?user=oid-zoe", None)
        .await;
    assert_eq!(listed["total"], 1, "{listed}");
    let (_, revoked) = w
        .app
        .admin_json(
            Method::POST,
            "/tenants/contoso/grants/revoke",
            Some(json!({"user": "oid-zoe"})),
        )
        .await;
    assert_eq!(revoked["revoked"], 1);
    let (status, _) = w
        .app
        .admin_json(Method::GET, "/tenants/never-was/grants", None)
        .await;
    assert_eq!(status, 404);
    std::fs::write(&file, kept).unwrap();
    w.stop().await;
}

/// Regression (issue 22, item 18): the admin listener answers only the host names in
/// `--admin-hosts` (default `localhost`) and IP literals, so that a page a DNS-rebinding attack
/// points at the admin port cannot read `/metrics` or use the API.
#[tokio::test]
async fn the_admin_listener_answers_only_its_hosts() {
    let app = spawn_app().await;
    let base = app.admin_base().replace("/admin/v1", "");
    let port = base.rsplit(':').next().unwrap().to_owned();
    let get = |host: String| {
        let req = app.http.get(format!("{base}/metrics")).header("Host", host);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(format!("127.0.0.1:{port}")).await, 200);
    assert_eq!(get(format!("localhost:{port}")).await, 200);
    assert_eq!(get(format!("[::1]:{port}")).await, 200);
    assert_eq!(get(format!("rebind.attacker.example:{port}")).await, 421);
    assert_eq!(get("rebind.attacker.example".to_owned()).await, 421);
    let api = app
        .http
        .get(format!("{base}/admin/v1/tenants"))
        .bearer_auth(ADMIN_TOKEN)
        .header("Host", "rebind.attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 421, "a valid token does not help");
    app.stop().await;
}
