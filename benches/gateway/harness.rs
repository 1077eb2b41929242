//! What `benches/gateway.rs` needs around the measurements: its arguments, the processes it
//! starts (stopped when it ends), ports, a dev login for a minted token, and the CPU time and
//! resident memory of a process from /proc.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub struct Args {
    pub smoke: bool,
    pub calls: usize,
    pub streams: usize,
    pub shim: String,
    pub backend: String,
    pub fastmcp: Option<String>,
}

impl Args {
    pub fn parse() -> Self {
        let mut args: Vec<String> = std::env::args().skip(1).collect();
        args.retain(|a| a != "--bench");
        let value = |name: &str| {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1).cloned())
        };
        let smoke = args.iter().any(|a| a == "--smoke");
        let profile = if smoke { "debug" } else { "release" };
        let root = env!("CARGO_MANIFEST_DIR");
        let default_fastmcp = format!("{root}/benches/compare/.venv/bin/python");
        Self {
            smoke,
            calls: value("--calls").map_or(if smoke { 50 } else { 20_000 }, |v| v.parse().unwrap()),
            // Each stream holds two sockets in the shim (the client's and the MCP server's), and
            // the shim has its own files: 8,000 stay under a 20,000 open-file limit.
            streams: value("--streams")
                .map_or(if smoke { 20 } else { 8_000 }, |v| v.parse().unwrap()),
            shim: value("--shim").unwrap_or(format!("{root}/target/{profile}/dcr-shim")),
            backend: value("--backend")
                .unwrap_or(format!("{root}/target/{profile}/examples/mcp_backend")),
            fastmcp: value("--fastmcp").or_else(|| {
                std::path::Path::new(&default_fastmcp)
                    .exists()
                    .then_some(default_fastmcp)
            }),
        }
    }
}

/// Starts the shim `bin` on `port` (public URL `http://127.0.0.1:{port}`) with the tenant files
/// of `dir/tenants` and its data in `dir/data`, and waits until it listens; its process id.
pub async fn spawn_shim(procs: &mut Procs, bin: &str, dir: &std::path::Path, port: u16) -> u32 {
    let pid = procs.spawn(
        Command::new(bin)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--public-url",
                &format!("http://127.0.0.1:{port}"),
                "--data-dir",
                dir.join("data").to_str().unwrap(),
                "--tenants",
                dir.join("tenants").to_str().unwrap(),
            ])
            .env("RUST_LOG", "warn"),
    );
    wait_for(&format!("127.0.0.1:{port}")).await;
    pid
}

/// The processes started, killed when the benchmark ends (or fails).
#[derive(Default)]
pub struct Procs(Vec<Child>);

impl Procs {
    /// Starts `cmd`; its process id.
    pub fn spawn(&mut self, cmd: &mut Command) -> u32 {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let id = child.id();
        self.0.push(child);
        id
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in self.0.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens at `addr` (30 s at most).
pub async fn wait_for(addr: &str) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing listens at {addr}");
}

/// User and system CPU seconds of process `pid` so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<f64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    let ticks = fields.get(11).copied().unwrap_or(0.0) + fields.get(12).copied().unwrap_or(0.0);
    ticks / 100.0
}

/// Resident memory of process `pid`, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The `p`th percentile of `samples`, in seconds.
pub fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p / 100.0).round() as usize;
    samples[i].as_secs_f64()
}

/// A login at `tenant` through the dev IdP's sign-in form: a minted access token.
pub async fn dev_login(base: &str, tenant: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let reg: Value = http
        .post(format!("{base}/{tenant}/register"))
        .json(&serde_json::json!({"client_name": "bench", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
        .send().await.unwrap().json().await.unwrap();
    let client_id = reg["client_id"].as_str().unwrap().to_owned();
    let verifier = dcr_shim::crypto::random_token() + "-bench";
    let mut authorize = url::Url::parse(&format!("{base}/{tenant}/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", "http://127.0.0.1:9/cb")
        .append_pair("code_challenge", &dcr_shim::crypto::pkce::s256(&verifier))
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "bench");
    let consent = http
        .get(authorize.as_str())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ticket = field(&consent, "ticket");
    let idp = location(
        http.post(format!("{base}/{tenant}/consent"))
            .form(&[("ticket", ticket.as_str()), ("decision", "approve")])
            .send()
            .await
            .unwrap(),
    );
    let form = http.get(&idp).send().await.unwrap().text().await.unwrap();
    let mut fields = hidden_fields(&form);
    fields.push(("username".into(), "bench".into()));
    let callback = location(http.post(&idp).form(&fields).send().await.unwrap());
    let back = location(http.get(&callback).send().await.unwrap());
    let code = url::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens: Value = http
        .post(format!("{base}/{tenant}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("code_verifier", &verifier),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{tokens}"))
        .to_owned()
}

fn location(res: reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_owned()
}

/// The value of the form field `name` on `page`.
fn field(page: &str, name: &str) -> String {
    hidden_fields(page)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no field {name}"))
        .1
}

fn hidden_fields(page: &str) -> Vec<(String, String)> {
    page.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once('"')?;
            let value = rest.split_once("value=\"")?.1.split_once('"')?.0;
            Some((
                name.to_owned(),
                value.replace("&amp;", "&").replace("&quot;", "\""),
            ))
        })
        .collect()
}

/// A DPoP key (ES256) of a benchmark's client: makes a proof per request (RFC 9449 §4.2).
pub struct DpopKey {
    signing: jsonwebtoken::EncodingKey,
    jwk: jsonwebtoken::jwk::Jwk,
}

impl DpopKey {
    pub fn generate() -> Self {
        use base64::Engine;
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256",
            "x": b64(&point[1..33]), "y": b64(&point[33..65])});
        Self {
            signing: jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: serde_json::from_value(jwk).unwrap(),
        }
    }

    /// A proof for a `method` request to `url`, with the hash of `token` when one goes with it.
    pub fn proof(&self, method: &str, url: &str, token: Option<&str>) -> String {
        use base64::Engine;
        use sha2::Digest;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut claims =
            serde_json::json!({"jti": random_id(), "htm": method, "htu": url, "iat": now});
        if let Some(t) = token {
            claims["ath"] = serde_json::json!(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(sha2::Sha256::digest(t.as_bytes()))
            );
        }
        jsonwebtoken::encode(&header, &claims, &self.signing).unwrap()
    }
}

fn random_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
