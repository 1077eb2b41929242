//! Two servers on one PostgreSQL database, as two replicas behind a load balancer: what one
//! acknowledges, the other serves. Runs when `DCR_SHIM_TEST_POSTGRES` names a server
//! (`.ci/run` starts one); skipped otherwise.

use serde_json::{Value, json};

use crate::binary::{dev_login, refresh_at, start_replica};
use crate::browser::{Browser, Client, login, redeem, refresh};
use crate::helpers::write_tenants;
use crate::store_suite::fresh_postgres_database;

#[tokio::test]
async fn a_login_on_one_replica_refreshes_on_the_other() {
    let Some(url) = fresh_postgres_database().await else {
        eprintln!("skipped: DCR_SHIM_TEST_POSTGRES is not set");
        return;
    };
    // One data directory for both (the dev IdP's key; the records are in the database), one
    // secret file, one public URL, as replicas behind one name.
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    write_tenants(tenants.path(), None);
    let secret = data.path().join("secret");
    crate::helpers::write_private(&secret, &"ab".repeat(32));
    let port = crate::binary::free_port();
    let public = format!("http://127.0.0.1:{port}");
    let args = ["--store", &url, "--secret-file", secret.to_str().unwrap()];
    let a = crate::binary::start_binary_on_with_args(port, data.path(), tenants.path(), &args);
    let b = start_replica(&public, data.path(), tenants.path(), &args);

    let handed = dev_login(&a.base, "alpha", true).await;
    // The other replica refreshes it. The same token again, on the first replica within the
    // retry grace, gets the same successor: one family, rotated once, seen by both.
    let (_, next) = refresh_at(&b.base, "alpha", &handed, &handed.refresh_token)
        .await
        .expect("the other replica knows the grant");
    let (_, again) = refresh_at(&a.base, "alpha", &handed, &handed.refresh_token)
        .await
        .expect("a retry within the grace");
    assert_eq!(again, next, "one successor, whichever replica is asked");
    let (_, third) = refresh_at(&a.base, "alpha", &handed, &next).await.unwrap();
    assert_ne!(third, next);

    // A client registered on one is the other's too.
    let http = reqwest::Client::new();
    let reg: Value = http
        .post(format!("{}/alpha/register", b.base))
        .json(&json!({"client_name": "Replicated", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let read = http
        .get(format!(
            "{}/alpha/register/{}",
            a.base,
            reg["client_id"].as_str().unwrap()
        ))
        .bearer_auth(reg["registration_access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
}

/// Without a shared secret a PostgreSQL store is refused: replicas would not open each other's
/// refresh tokens.
#[tokio::test]
async fn a_postgres_store_needs_a_secret_file() {
    let Some(url) = fresh_postgres_database().await else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    write_tenants(tenants.path(), None);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcr-shim"))
        .args(["serve", "--listen", "127.0.0.1:0", "--store", &url])
        .arg("--data-dir")
        .arg(data.path())
        .arg("--tenants")
        .arg(tenants.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs --secret-file"), "{err}");
    assert!(
        !err.contains("dcr@"),
        "the store URL stays out of messages: {err}"
    );
}

/// A TCP relay to the database that the test can cut (every connection dropped, new ones
/// closed at once) and restore.
struct Relay {
    port: u16,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    live: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let live = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (o, l) = (open.clone(), live.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !o.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let target = target.clone();
                l.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Self { port, open, live }
    }

    fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        for t in self.live.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The database going away: requests are refused at once with `temporarily_unavailable`
/// (503), `/readyz` fails, nothing half-written; it coming back: service resumes without a
/// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_and_coming_back() {
    let Some(url) = fresh_postgres_database().await else {
        return;
    };
    let mut via = url::Url::parse(&url).unwrap();
    let target = format!("{}:{}", via.host_str().unwrap(), via.port().unwrap_or(5432));
    let relay = Relay::start(target).await;
    via.set_port(Some(relay.port)).unwrap();
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    write_tenants(tenants.path(), None);
    let secret = data.path().join("secret");
    crate::helpers::write_private(&secret, &"cd".repeat(32));
    let shim = crate::binary::start_binary_with_args(
        data.path(),
        tenants.path(),
        &[
            "--store",
            via.as_str(),
            "--secret-file",
            secret.to_str().unwrap(),
        ],
    );
    let http = reqwest::Client::new();
    let register = || {
        http.post(format!("{}/alpha/register", shim.base))
            .json(&json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
            .send()
    };
    assert_eq!(register().await.unwrap().status(), 201);

    relay.cut();
    let started = std::time::Instant::now();
    let res = register().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "refused quickly, not after a hang: {:?}",
        started.elapsed()
    );
    let ready = http
        .get(format!("{}/readyz", shim.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "not ready without its store");

    relay.restore();
    let mut back = false;
    for _ in 0..50 {
        if register().await.unwrap().status() == 201 {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(back, "service resumes without a restart");
    let ready = http
        .get(format!("{}/readyz", shim.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

/// Two replicas of a tenant on the fake Entra, both ready, with a client that signed in on the
/// first: its refresh token.
struct EntraReplicas {
    idp: crate::fake_entra::FakeEntra,
    a: std::sync::Arc<crate::helpers::TestApp>,
    b: std::sync::Arc<crate::helpers::TestApp>,
    client: std::sync::Arc<Client>,
    refresh_token: String,
    // Kept for their drop: the servers, then the files they use.
    _servers: (crate::binary::Shim, crate::binary::Shim),
    _docs: crate::tls_server::DocServer,
    _dir: tempfile::TempDir,
}

async fn entra_replicas(url: &str) -> EntraReplicas {
    let dir = tempfile::tempdir().unwrap();
    crate::helpers::write_private(&dir.path().join("secret"), crate::fake_entra::APP_SECRET);
    let idp = crate::fake_entra::start(dir.path().join("federated-token")).await;
    let docs = crate::tls_server::DocServer::start(dir.path()).await;
    let tenants = dir.path().join("tenants");
    std::fs::create_dir(&tenants).unwrap();
    std::fs::write(
        tenants.join("contoso.toml"),
        crate::login::entra_tenant(&idp.authority, dir.path(), &docs.ca_file, false),
    )
    .unwrap();
    let secret = dir.path().join("server-secret");
    crate::helpers::write_private(&secret, &"ef".repeat(32));
    let data = dir.path().join("data");
    let port = crate::binary::free_port();
    let args = ["--store", url, "--secret-file", secret.to_str().unwrap()];
    let a = crate::binary::start_binary_on_with_args(port, &data, &tenants, &args);
    let b = start_replica(&a.base, &data, &tenants, &args);
    let (app_a, app_b) = (
        crate::helpers::TestApp::at(&a.base).with_tenants(&tenants),
        crate::helpers::TestApp::at(&b.base).with_tenants(&tenants),
    );
    app_a.wait_ready().await;
    app_b.wait_ready().await;

    let client = Client::register(&app_a, "contoso", json!({})).await;
    let (code, attempt) = login(&app_a, &Browser::new(), "contoso", &client, "mia").await;
    let (status, tokens) = redeem(&app_a, "contoso", &client, &code, &attempt).await;
    assert_eq!(status, 200, "{tokens}");
    EntraReplicas {
        idp,
        a: std::sync::Arc::new(app_a),
        b: std::sync::Arc::new(app_b),
        client: std::sync::Arc::new(client),
        refresh_token: tokens["refresh_token"].as_str().unwrap().to_owned(),
        _servers: (a, b),
        _docs: docs,
        _dir: dir,
    }
}

/// Fifty parallel refreshes of one grant, spread over two replicas: the IdP is called once
/// and every request gets the same successor (the token is leased in the database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_refreshes_on_two_replicas_reach_the_idp_once() {
    let Some(url) = fresh_postgres_database().await else {
        return;
    };
    let r = entra_replicas(&url).await;
    let calls_before = r.idp.state.lock().unwrap().token_auth.len();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let app = if i % 2 == 0 { r.a.clone() } else { r.b.clone() };
            let (client, rt) = (r.client.clone(), r.refresh_token.clone());
            tokio::spawn(async move { refresh(&app, "contoso", &client, &rt).await })
        })
        .collect();
    let mut successors = std::collections::HashSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
        successors.insert(body["refresh_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(successors.len(), 1, "one successor: {successors:?}");
    assert_eq!(
        r.idp.state.lock().unwrap().token_auth.len() - calls_before,
        1,
        "the IdP refreshed once"
    );
    r.idp.stop().await;
}

/// A refresh the IdP refuses for now (Conditional Access asks for MFA) hands the token back:
/// the other replica refreshes it at once when the IdP lets it, without waiting for the lease
/// to run out, and the first replica's retry then takes the grace path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_the_idp_refuses_releases_the_token_at_once() {
    let Some(url) = fresh_postgres_database().await else {
        return;
    };
    let r = entra_replicas(&url).await;
    r.idp.require_claims("c1");
    let (status, body) = refresh(&r.a, "contoso", &r.client, &r.refresh_token).await;
    // At the token endpoint that is `invalid_grant` (sign in again), and the grant stays.
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    r.idp.state.lock().unwrap().required_acrs = None;
    // A lease left behind would keep this waiting 20 s, then answer 503.
    let (status, next) = refresh(&r.b, "contoso", &r.client, &r.refresh_token).await;
    assert_eq!(status, 200, "{next}");
    let (status, again) = refresh(&r.a, "contoso", &r.client, &r.refresh_token).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["refresh_token"], next["refresh_token"]);
    r.idp.stop().await;
}

/// Regression (issue 22, item 12): a replica started with another server secret on a shared
/// store refuses to start and says why, instead of telling a share of the users to sign in
/// again; one given the old secret as previous starts a rotation, which the old replicas
/// survive.
#[tokio::test]
async fn a_replica_with_another_secret_refuses_to_start() {
    let Some(url) = fresh_postgres_database().await else {
        eprintln!("skipped: DCR_SHIM_TEST_POSTGRES is not set");
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    write_tenants(tenants.path(), None);
    let (old, new) = (data.path().join("old"), data.path().join("new"));
    crate::helpers::write_private(&old, &"ab".repeat(32));
    crate::helpers::write_private(&new, &"cd".repeat(32));
    let port = crate::binary::free_port();
    let public = format!("http://127.0.0.1:{port}");
    let with = |secret: &std::path::Path| {
        [
            "--store".to_owned(),
            url.clone(),
            "--secret-file".to_owned(),
            secret.display().to_string(),
        ]
    };
    let a_args = with(&old);
    let a_args: Vec<&str> = a_args.iter().map(String::as_str).collect();
    let _a = crate::binary::start_binary_on_with_args(port, data.path(), tenants.path(), &a_args);

    let b_args = with(&new);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcr-shim"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", crate::binary::free_port()),
        ])
        .arg("--data-dir")
        .arg(data.path())
        .arg("--tenants")
        .arg(tenants.path())
        .args(&b_args)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a replica with another secret started"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not the one this store was written with"),
        "{stderr}"
    );

    let mut rotating: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let old_path = old.display().to_string();
    rotating.extend(["--previous-secret-file", &old_path]);
    let b = start_replica(&public, data.path(), tenants.path(), &rotating);
    let c = start_replica(&public, data.path(), tenants.path(), &a_args);
    // What the old secret sealed, the rotating replica opens.
    let handed = dev_login(&c.base, "alpha", true).await;
    assert!(
        refresh_at(&b.base, "alpha", &handed, &handed.refresh_token)
            .await
            .is_ok()
    );
}

/// Regression (issue 22, item 18): the NOTICE a second start gets from the idempotent schema
/// statements (`relation … already exists, skipping`) is logged at debug, not at info with the
/// source paths of the machine that built the binary.
#[tokio::test]
async fn postgres_notices_stay_at_debug() {
    let Some(url) = fresh_postgres_database().await else {
        eprintln!("skipped: DCR_SHIM_TEST_POSTGRES is not set");
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    write_tenants(tenants.path(), None);
    let secret = data.path().join("secret");
    crate::helpers::write_private(&secret, &"ab".repeat(32));
    let args = ["--store", &url, "--secret-file", secret.to_str().unwrap()];
    drop(crate::binary::start_binary_with_args(
        data.path(),
        tenants.path(),
        &args,
    ));
    let again = crate::binary::start_binary_with_args(data.path(), tenants.path(), &args);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = again.log.lock().unwrap().join("\n");
    for never in ["NOTICE", "already exists", ".cargo/registry", "log.file"] {
        assert!(!log.contains(never), "{never} in the log at info:\n{log}");
    }
}
