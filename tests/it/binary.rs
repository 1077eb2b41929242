//! The real `dcr-shim` binary as a child process, and a browser login through its dev IdP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::browser::{Browser, Landing, hidden_fields, param};

pub struct Shim {
    pub child: Child,
    pub base: String,
    /// Every stderr line (JSON logs), collected by a thread.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Shim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Shim {
    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the binary on a free port with `env` added.
pub fn start_binary(
    data: &std::path::Path,
    tenants: &std::path::Path,
    env: &[(&str, &str)],
) -> Shim {
    start_binary_on(free_port(), data, tenants, env)
}

/// Starts the binary on a free port with `args` added to `serve`.
pub fn start_binary_with_args(
    data: &std::path::Path,
    tenants: &std::path::Path,
    args: &[&str],
) -> Shim {
    spawn_shim(free_port(), data, tenants, &[], args)
}

/// Starts the binary on `port` (the public URL names it, so a restart on the same port keeps
/// issuers stable) and waits for its "listening" log line.
pub fn start_binary_on(
    port: u16,
    data: &std::path::Path,
    tenants: &std::path::Path,
    env: &[(&str, &str)],
) -> Shim {
    spawn_shim(port, data, tenants, env, &[])
}

/// Starts the binary on `port` with `args` added to `serve`.
pub fn start_binary_on_with_args(
    port: u16,
    data: &std::path::Path,
    tenants: &std::path::Path,
    args: &[&str],
) -> Shim {
    spawn_shim(port, data, tenants, &[], args)
}

/// Starts the binary on a free port serving `public_url` (a replica of the server there, when
/// both share a store), with `args` added to `serve`; `base` is its own address.
pub fn start_replica(
    public_url: &str,
    data: &std::path::Path,
    tenants: &std::path::Path,
    args: &[&str],
) -> Shim {
    spawn_shim_serving(free_port(), public_url, data, tenants, &[], args)
}

/// Starts the binary on `port` serving `public_url` (which may carry a path), with `args`.
pub fn start_binary_serving(
    port: u16,
    public_url: &str,
    data: &std::path::Path,
    tenants: &std::path::Path,
    args: &[&str],
) -> Shim {
    spawn_shim_serving(port, public_url, data, tenants, &[], args)
}

fn spawn_shim(
    port: u16,
    data: &std::path::Path,
    tenants: &std::path::Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> Shim {
    spawn_shim_serving(
        port,
        &format!("http://127.0.0.1:{port}"),
        data,
        tenants,
        env,
        args,
    )
}

fn spawn_shim_serving(
    port: u16,
    public_url: &str,
    data: &std::path::Path,
    tenants: &std::path::Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> Shim {
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dcr-shim"))
        .args([
            "serve",
            "--log-format",
            "json",
            "--workers",
            "1",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--public-url",
            public_url,
        ])
        .arg("--data-dir")
        .arg(data)
        .arg("--tenants")
        .arg(tenants)
        .args(args)
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let log = Arc::new(Mutex::new(Vec::new()));
    loop {
        let line = lines
            .next()
            .expect("the shim exited before listening")
            .unwrap();
        let listening = serde_json::from_str::<Value>(&line)
            .is_ok_and(|v| v["message"] == "dcr-shim listening");
        log.lock().unwrap().push(line);
        if listening {
            break;
        }
    }
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    Shim { child, base, log }
}

/// What a login handed out.
#[derive(Debug, Default, Clone)]
pub struct Handed {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub values: Vec<String>,
    pub refresh_token: String,
}

/// Registers a client at `tenant` and logs in through the dev IdP with a real form post;
/// returns every secret-ish value that crossed the wire.
pub async fn dev_login(base: &str, tenant: &str, confidential: bool) -> Handed {
    let http = reqwest::Client::new();
    let mut reg = json!({"client_name": "Probe", "redirect_uris": ["http://127.0.0.1/cb"], "grant_types": ["authorization_code", "refresh_token"]});
    if !confidential {
        reg["token_endpoint_auth_method"] = json!("none");
    }
    let res: Value = http
        .post(format!("{base}/{tenant}/register"))
        .json(&reg)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = res["client_id"].as_str().unwrap().to_owned();
    let client_secret = res["client_secret"].as_str().map(str::to_owned);
    let verifier = dcr_shim::crypto::random_token();
    let state = dcr_shim::crypto::random_token();
    let mut url = url::Url::parse(&format!("{base}/{tenant}/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", "http://127.0.0.1:49152/cb")
        .append_pair("code_challenge", &dcr_shim::crypto::pkce::s256(&verifier))
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", &state)
        .append_pair("scope", "files.read offline_access");
    let browser = Browser::new();
    let prefix = "http://127.0.0.1:49152/";
    let Landing::Consent(page) = browser.go(url.as_str(), prefix).await else {
        panic!("consent page expected")
    };
    let upstream = browser
        .consent_location(&format!("{base}/{tenant}"), &page, "approve")
        .await;
    let txn = param(&url::Url::parse(&upstream).unwrap(), "state").unwrap();
    let Landing::Page(200, login_form) = browser.go(&upstream, prefix).await else {
        panic!("dev login form expected")
    };
    let fields = hidden_fields(&login_form);
    let mut form: Vec<(String, String)> = fields;
    form.push(("username".into(), "probe-user".into()));
    let location = browser.post_form_location(&upstream, &form).await;
    let upstream_code = param(&url::Url::parse(&location).unwrap(), "code").unwrap();
    let Landing::Client(back) = browser.go(&location, prefix).await else {
        panic!("callback should reach the client")
    };
    let code = param(&back, "code").unwrap();
    let mut req = http.post(format!("{base}/{tenant}/token"));
    let mut body = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.clone()),
        ("redirect_uri", "http://127.0.0.1:49152/cb".to_owned()),
        ("code_verifier", verifier.clone()),
    ];
    match &client_secret {
        Some(s) => req = req.basic_auth(&client_id, Some(s)),
        None => body.push(("client_id", client_id.clone())),
    }
    let tokens: Value = req.form(&body).send().await.unwrap().json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let mut values = vec![
        code,
        upstream_code,
        txn,
        verifier,
        access,
        refresh.clone(),
        crate::browser::ticket_of(&page),
    ];
    values.extend(client_secret.clone());
    Handed {
        client_id,
        client_secret,
        values,
        refresh_token: refresh,
    }
}

/// Refreshes through the shim; `Ok((access, refresh))` or the status.
pub async fn refresh_at(
    base: &str,
    tenant: &str,
    client: &Handed,
    refresh_token: &str,
) -> Result<(String, String), u16> {
    let http = reqwest::Client::new();
    let mut req = http.post(format!("{base}/{tenant}/token"));
    let mut body = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", refresh_token.to_owned()),
    ];
    match &client.client_secret {
        Some(s) => req = req.basic_auth(&client.client_id, Some(s)),
        None => body.push(("client_id", client.client_id.clone())),
    }
    let res = req.form(&body).send().await.map_err(|_| 0u16)?;
    if res.status() != 200 {
        let status = res.status().as_u16();
        eprintln!(
            "refresh refused: {status} {}",
            res.text().await.unwrap_or_default()
        );
        return Err(status);
    }
    let v: Value = res.json().await.map_err(|_| 0u16)?;
    Ok((
        v["access_token"].as_str().unwrap().to_owned(),
        v["refresh_token"].as_str().unwrap().to_owned(),
    ))
}
