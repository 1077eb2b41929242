//! The client credentials grant (`[[machine_clients]]`): grants per second and the shim's CPU
//! per grant, with a secret (`client_secret_basic`), with a secret and a DPoP proof (RFC 9449:
//! the token bound to the proof's key, the proof's `jti` spent in the store) and with a key
//! (`private_key_jwt`, RS256, each assertion's `jti` spent in the store), side by side in one
//! run with the tenant's metadata document as the ceiling of a request the shim answers from
//! memory.
//!
//!   cargo build --release --bin dcr-shim
//!   cargo bench --bench machine                 # 20,000 requests per kind
//!   cargo bench --bench machine -- --smoke      # a few (run by .ci/run through benches/run.sh)
//!
//! The shim is the real binary (two workers, sled in a temp dir); the load comes from this
//! process over loopback, 16 requests at a time. Assertions are signed before the clock starts,
//! so the load generator's signing is not in the figures.

#[path = "gateway/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use harness::{Procs, cpu_seconds, free_port};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use sha2::{Digest, Sha256};

const SECRET: &str = "bench-machine-secret-0123456789abcdef";
const CONCURRENCY: usize = 16;

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(smoke));
}

/// One kind of request: a name, and the requests (prepared before the clock starts).
struct Kind {
    name: &'static str,
    requests: Vec<reqwest::RequestBuilder>,
}

async fn run(smoke: bool) {
    let n = if smoke { 50 } else { 20_000 };
    let root = env!("CARGO_MANIFEST_DIR");
    let profile = if smoke { "debug" } else { "release" };
    let mut procs = Procs::default();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants");
    std::fs::create_dir_all(&tenants).unwrap();
    let hash: String = Sha256::digest(SECRET.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(
        tenants.join("bench.toml"),
        format!(
            r#"upstream = {{ kind = "dev" }}
[[resources]]
uri = "{base}/mcp"
default = true
token = "minted"
scopes = [{{ name = "bench", upstream = "bench" }}]
[[machine_clients]]
client_id = "secret-agent"
secret_sha256 = "{hash}"
resources = ["{base}/mcp"]
[[machine_clients]]
client_id = "key-agent"
jwks_file = "{root}/tests/fixtures/app-jwks.json"
resources = ["{base}/mcp"]
"#
        ),
    )
    .unwrap();
    let bin = format!("{root}/target/{profile}/dcr-shim");
    let shim = harness::spawn_shim(&mut procs, &bin, dir.path(), port).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let kinds = prepare(&http, &base, n);
    println!("## Machine clients (`cargo bench --bench machine`)\n");
    println!(
        "{n} requests per kind, {CONCURRENCY} at a time, over loopback; the shim's CPU from /proc.\n"
    );
    println!("| request | per second | shim CPU µs per request |\n|---|---|---|");
    for kind in kinds {
        let (rate, cpu) = measure(kind.requests, shim).await;
        println!("| {} | {rate:.0} | {cpu:.0} |", kind.name);
    }
    println!();
}

/// The requests of each kind, ready to send.
fn prepare(http: &reqwest::Client, base: &str, n: usize) -> Vec<Kind> {
    let token_url = format!("{base}/bench/token");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("secret-agent:{SECRET}"));
    let key = EncodingKey::from_rsa_pem(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/app-key.pem"
        ))
        .unwrap(),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = Header {
        typ: Some("JWT".into()),
        ..Header::new(Algorithm::RS256)
    };
    let issuer = format!("{base}/bench");
    let metadata = (0..n)
        .map(|_| {
            http.get(format!(
                "{base}/.well-known/oauth-authorization-server/bench"
            ))
        })
        .collect();
    let secret = (0..n)
        .map(|_| {
            http.post(&token_url)
                .header("Authorization", format!("Basic {basic}"))
                .form(&[("grant_type", "client_credentials")])
        })
        .collect();
    // The same grant with a DPoP proof (checked, its jti spent in the store): a bound token.
    let dpop = harness::DpopKey::generate();
    let bound = (0..n)
        .map(|_| {
            http.post(&token_url)
                .header("Authorization", format!("Basic {basic}"))
                .header("DPoP", dpop.proof("POST", &token_url, None))
                .form(&[("grant_type", "client_credentials")])
        })
        .collect();
    let keyed = (0..n)
        .map(|i| {
            let claims = json!({"iss": "key-agent", "sub": "key-agent", "aud": issuer,
                "iat": now, "exp": now + 600, "jti": format!("bench-{now}-{i}")});
            let assertion = jsonwebtoken::encode(&header, &claims, &key).unwrap();
            http.post(&token_url).form(&[
                ("grant_type", "client_credentials".to_owned()),
                ("client_assertion", assertion),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ),
            ])
        })
        .collect();
    vec![
        Kind {
            name: "the metadata document (the ceiling)",
            requests: metadata,
        },
        Kind {
            name: "client credentials, client_secret_basic",
            requests: secret,
        },
        Kind {
            name: "client credentials, client_secret_basic, DPoP-bound (ES256 proof, jti spent)",
            requests: bound,
        },
        Kind {
            name: "client credentials, private_key_jwt (RS256, jti spent)",
            requests: keyed,
        },
    ]
}

/// Sends `requests`, `CONCURRENCY` at a time: requests per second and the shim's CPU µs each.
async fn measure(requests: Vec<reqwest::RequestBuilder>, shim: u32) -> (f64, f64) {
    let n = requests.len();
    let queue = Arc::new(std::sync::Mutex::new(requests));
    let cpu_before = cpu_seconds(shim);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(req) = queue.lock().unwrap().pop() else {
                    break;
                };
                let res = req.send().await.unwrap();
                assert!(res.status().is_success(), "{}", res.text().await.unwrap());
                res.bytes().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().max(Duration::from_micros(1));
    let cpu = cpu_seconds(shim) - cpu_before;
    (n as f64 / elapsed.as_secs_f64(), cpu * 1e6 / n as f64)
}
