//! Registration throughput (every 201 durable) and CIMD resolution latency, cold and cached.
//!
//!   cargo bench --bench registration            # full run
//!   cargo bench --bench registration -- --smoke # a few iterations, to keep it from rotting
//!
//! The shim runs in this process (2 HTTP workers) with a fresh data directory; the load comes
//! from this process too, over loopback, 32 connections. Figures are printed as Markdown.

#[path = "../tests/it/tls_server.rs"]
#[allow(dead_code)]
mod tls_server;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dcr_shim::config::Settings;
use dcr_shim::config::server::parse_public_url;
use serde_json::json;
use tls_server::{Canned, DocServer};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let (registrations, concurrency, cimd_cold, cimd_cached) = if smoke {
        (64, 8, 4, 50)
    } else {
        (20_000, 32, 200, 20_000)
    };

    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    let docs_dir = tempfile::tempdir().unwrap();
    let docs = DocServer::start(docs_dir.path()).await;
    std::fs::write(
        tenants.path().join("bench.toml"),
        format!(
            r#"upstream = {{ kind = "dev" }}
[[resources]]
uri = "https://mcp.example.com/mcp"
scopes = [{{ name = "mcp", upstream = "mcp" }}]
[registration]
registrations_per_minute = 1000000
[dev]
cimd_allow_loopback = true
cimd_extra_ca_file = {:?}
"#,
            docs.ca_file.display().to_string()
        ),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut settings = Settings::new(
        addr,
        parse_public_url(&format!("http://{addr}")).unwrap(),
        data.path().to_owned(),
        tenants.path().to_owned(),
    );
    settings.workers = Some(2);
    let running = dcr_shim::app::start_on(settings, listener).await.unwrap();

    // Registration throughput.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let url = Arc::new(format!("http://{addr}/bench/register"));
    let per_task = registrations / concurrency;
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let t = Instant::now();
                    let res = http
                        .post(url.as_str())
                        .json(&json!({"client_name": "bench", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 201);
                    let _ = res.bytes().await;
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let total = latencies.len();

    // CIMD: cold (a new document each time: fetch over TLS + validate) and cached.
    let tenant = running.state.tenant("bench").unwrap().clone();
    let registry = &running.state.registry();
    let now = dcr_shim::app::unix_now();
    let mut cold = Vec::new();
    for i in 0..cimd_cold {
        let path = format!("/agent-{i}.json");
        let client_id = docs.url(&path);
        docs.set(
            &path,
            Canned::json(&json!({"client_id": client_id, "client_name": "Agent", "redirect_uris": ["http://localhost/callback"]})),
        );
        let t = Instant::now();
        registry
            .find(&tenant, &client_id, now)
            .await
            .unwrap()
            .unwrap();
        cold.push(t.elapsed());
    }
    let cached_id = docs.url("/agent-0.json");
    let mut cached = Vec::new();
    for _ in 0..cimd_cached {
        let t = Instant::now();
        registry
            .find(&tenant, &cached_id, now)
            .await
            .unwrap()
            .unwrap();
        cached.push(t.elapsed());
    }
    cold.sort();
    cached.sort();
    running.stop().await;

    println!("| measurement | value |");
    println!("|---|---|");
    println!(
        "| registrations (durable 201s), {concurrency} connections | {total} in {:.2} s = **{:.0}/s** |",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "| registration latency p50 / p99 | {} / {} |",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99))
    );
    println!(
        "| CIMD resolution, cold (TLS fetch + validate), p50 / p99 of {} | {} / {} |",
        cold.len(),
        ms(percentile(&cold, 0.5)),
        ms(percentile(&cold, 0.99))
    );
    println!(
        "| CIMD resolution, cached, p50 / p99 of {} | {} / {} |",
        cached.len(),
        ms(percentile(&cached, 0.5)),
        ms(percentile(&cached, 0.99))
    );
}
