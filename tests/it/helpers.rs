//! `spawn_app`: the real shim on a loopback port, with tenants written for the test.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Once;

use dcr_shim::app::{Running, start_on};
use dcr_shim::config::Settings;
use dcr_shim::config::server::parse_public_url;
use serde_json::Value;

static LOGGING: Once = Once::new();

fn init_logging() {
    LOGGING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("debug,sled=info,h2=info,hyper=info,rustls=info")
                .with_test_writer()
                .try_init();
        }
    });
}

/// Tenant files every test app gets. `alpha` uses the dev IdP and may fetch CIMD documents
/// from loopback with the test CA; `beta` has an unreachable upstream and the strict fetcher;
/// `limited` allows two registrations a minute.
pub fn write_tenants(dir: &Path, ca_file: Option<&Path>) {
    let ca_line = ca_file
        .map(|p| format!("cimd_extra_ca_file = {:?}", p.display().to_string()))
        .unwrap_or_default();
    let resources = r#"
[[resources]]
uri = "https://mcp.example.com/files"
default = true
scopes = [
  { name = "files.read", upstream = "api://mcp-files/files.read" },
  { name = "files.write", upstream = "api://mcp-files/files.write" },
]
"#;
    std::fs::write(
        dir.join("alpha.toml"),
        format!(
            r#"upstream = {{ kind = "dev" }}
{resources}
[registration]
registrations_per_minute = 1000
unused_client_lifetime = "2h"
# The fetch-bounds tests storm from one address; the per-address limit has its own test.
cimd_fetches_per_minute = 100000
[dev]
cimd_allow_loopback = true
{ca_line}
"#
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("beta.toml"),
        format!(
            r#"[upstream]
kind = "oidc"
issuer = "http://127.0.0.1:9/unreachable"
[[apps]]
name = "beta-app"
client_id = "beta"
credential = {{ kind = "none" }}
{resources}
[registration]
registrations_per_minute = 1000
{}
"#,
            ca_file
                .map(|p| format!("[dev]\ncimd_extra_ca_file = {:?}", p.display().to_string()))
                .unwrap_or_default()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("limited.toml"),
        format!("upstream = {{ kind = \"dev\" }}\n{resources}\n[registration]\nregistrations_per_minute = 2\ncimd = false\n"),
    )
    .unwrap();
}

/// The admin API token every test app accepts (label `tester`).
/// Asserts that the OAuth error `body` says `needle` in its `error_description`.
#[track_caller]
pub fn assert_described(body: &serde_json::Value, needle: &str) {
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains(needle), "{needle:?} not in {body}");
}

/// The smallest tenant file: the built-in dev IdP and one resource.
pub const DEV_TENANT: &str = "upstream = { kind = \"dev\" }\n[[resources]]\nuri = \"https://mcp.example.com/files\"\nscopes = [{ name = \"files.read\", upstream = \"files.read\" }]\n";

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef0123456789";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub data_dir: PathBuf,
    pub tenants_dir: PathBuf,
    /// The admin token file (empty for a shim running elsewhere).
    admin_token_file: PathBuf,
    /// A PostgreSQL database of its own, when `DCR_SHIM_IT_STORE=postgres` picks that backend
    /// (with `DCR_SHIM_TEST_POSTGRES` naming the server); else the sled store in `data_dir`.
    pub store: Option<String>,
    running: Option<Running>,
    _dirs: Vec<tempfile::TempDir>,
}

impl TestApp {
    /// A shim running elsewhere (the binary as a child process) at `base`.
    pub fn at(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            data_dir: PathBuf::new(),
            tenants_dir: PathBuf::new(),
            admin_token_file: PathBuf::new(),
            store: None,
            running: None,
            _dirs: Vec::new(),
        }
    }

    /// The tenant files a shim running elsewhere serves (for `wait_ready`).
    pub fn with_tenants(mut self, dir: &Path) -> Self {
        self.tenants_dir = dir.to_owned();
        self
    }

    pub fn state(&self) -> &dcr_shim::app::AppState {
        &self.running.as_ref().expect("app is running").state
    }

    /// Waits until every upstream has been discovered: each tenant's public `/readyz/<tenant>`
    /// answers 200.
    pub async fn wait_ready(&self) {
        // A shim running elsewhere: the tenant files it was started with.
        let tenants: Vec<String> = match &self.running {
            Some(r) => r.state.tenants().iter().map(|t| t.id.to_string()).collect(),
            None => std::fs::read_dir(&self.tenants_dir)
                .map(|d| {
                    d.filter_map(|e| {
                        let name = e.ok()?.file_name().into_string().ok()?;
                        name.strip_suffix(".toml").map(str::to_owned)
                    })
                    .collect()
                })
                .unwrap_or_default(),
        };
        for _ in 0..100 {
            let mut ready = true;
            for t in &tenants {
                ready &= self.get(&format!("/readyz/{t}")).await.status() == 200;
            }
            if ready {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the shim did not become ready");
    }

    /// The issuer of one of the test tenants (`{base}/{tenant}`).
    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/{tenant}", self.base)
    }

    pub fn tenant(&self, id: &str) -> std::sync::Arc<dcr_shim::config::Tenant> {
        self.state().tenant(id).expect("tenant exists").clone()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// POSTs JSON metadata to `/{tenant}/register`; returns status and body.
    pub async fn register(&self, tenant: &str, body: &Value) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}/{tenant}/register", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Stops the app and starts it again on the same data directory (on a new port: the old
    /// socket may linger while actix winds down).
    pub async fn restart(&mut self) {
        self.pause().await;
        self.resume().await;
    }

    /// Stops the app, keeping its directories (`resume` starts it again).
    pub async fn pause(&mut self) {
        let running = self.running.take().expect("app is running");
        running.stop().await;
    }

    /// Starts a paused app again on the same directories, on a new port.
    pub async fn resume(&mut self) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        self.base = format!("http://{addr}");
        self.running = Some(start_on(self.settings(addr), listener).await.unwrap());
    }

    fn settings(&self, addr: std::net::SocketAddr) -> Settings {
        let mut settings = test_settings(addr, &self.base, &self.data_dir, &self.tenants_dir);
        settings.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        settings.admin_token_file = Some(self.admin_token_file.clone());
        if let Some(url) = &self.store {
            // Replicas share their secret by file; the test's stays beside its data.
            let secret = self.data_dir.join("shared-secret");
            if !secret.exists() {
                write_private(&secret, &"5a".repeat(32));
            }
            settings.store = Some(dcr_shim::config::server::StoreSpec::new(url.clone()));
            settings.secret = Some(dcr_shim::config::server::SecretSource::File(secret));
        }
        settings
    }

    /// A request to the admin API at `path` (under `/admin/v1`), with the test token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let addr = self
            .running
            .as_ref()
            .and_then(|r| r.admin_addr)
            .expect("the admin API runs");
        self.http
            .request(method, format!("http://{addr}/admin/v1{path}"))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// An admin API request with `body` (JSON) if given: its status and JSON answer.
    pub async fn admin_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.admin(method, path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// The admin API's base URL.
    pub fn admin_base(&self) -> String {
        let addr = self.running.as_ref().and_then(|r| r.admin_addr).unwrap();
        format!("http://{addr}/admin/v1")
    }

    /// Reads the tenant files again, as SIGHUP does.
    pub async fn reload(
        &self,
    ) -> Result<dcr_shim::reload::Reloaded, dcr_shim::reload::TenantSetError> {
        self.running
            .as_ref()
            .expect("app is running")
            .reloader
            .reload()
            .await
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

/// Writes a file that only its owner may read, as the shim wants its secrets.
/// The context of a call into the protocol code that no client makes: at `now`, charged to
/// no address (as the admin API's calls are).
pub fn operator(now: u64) -> dcr_shim::oauth::context::RequestCtx {
    dcr_shim::oauth::context::RequestCtx::operator(now)
}

pub fn write_private(path: &Path, content: &str) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}

/// Server settings for a test: listen on `listen`, serve `public_url`, 2 workers.
pub fn test_settings(
    listen: std::net::SocketAddr,
    public_url: &str,
    data: &Path,
    tenants: &Path,
) -> Settings {
    let mut settings = Settings::new(
        listen,
        parse_public_url(public_url).unwrap(),
        data.to_owned(),
        tenants.to_owned(),
    );
    settings.workers = Some(2);
    // The test IdPs are local: a short timeout keeps the fault tests quick.
    settings.upstream_timeout = std::time::Duration::from_secs(2);
    settings
}

/// The store the integration tests run on: a new PostgreSQL database when
/// `DCR_SHIM_IT_STORE=postgres`, else none (sled in the test's data directory).
pub async fn it_store() -> Option<String> {
    match std::env::var("DCR_SHIM_IT_STORE").as_deref() {
        Ok("postgres") => Some(
            crate::store_suite::fresh_postgres_database()
                .await
                .expect("DCR_SHIM_IT_STORE=postgres needs DCR_SHIM_TEST_POSTGRES"),
        ),
        _ => None,
    }
}

/// Starts the shim with the standard test tenants.
pub async fn spawn_app() -> TestApp {
    spawn_app_with_ca(None).await
}

/// Starts the shim; `ca_file` is the CA the dev tenants trust for CIMD fetches.
pub async fn spawn_app_with_ca(ca_file: Option<&Path>) -> TestApp {
    spawn_app_with_tenants(|dir| write_tenants(dir, ca_file)).await
}

/// Starts the shim with tenant files written by `write` into its tenants directory.
pub async fn spawn_app_with_tenants(write: impl FnOnce(&Path)) -> TestApp {
    spawn_app_with_tenants_on(it_store().await, write).await
}

/// `spawn_app_with_tenants` on the PostgreSQL database `store` names (a replica of another
/// app on it), or on sled in its own data directory.
pub async fn spawn_app_with_tenants_on(
    store: Option<String>,
    write: impl FnOnce(&Path),
) -> TestApp {
    init_logging();
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    write(tenants.path());
    let admin_token_file = secrets.path().join("admin-tokens");
    write_private(&admin_token_file, &format!("tester {ADMIN_TOKEN}\n"));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut app = TestApp {
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        data_dir: data.path().to_owned(),
        tenants_dir: tenants.path().to_owned(),
        admin_token_file,
        store,
        running: None,
        _dirs: vec![data, tenants, secrets],
    };
    app.running = Some(start_on(app.settings(addr), listener).await.unwrap());
    app
}
