//! The gateway, side by side in one run: a `tools/call` sent directly to a minimal Rust MCP
//! server (`examples/mcp_backend.rs`, so that the backend's own cost does not hide the
//! gateway's), through dcr-shim's gateway (a minted token checked against the store, an
//! identity JWT signed per call, the answer streamed back; and again with a DPoP-bound token and
//! a fresh proof per call, RFC 9449), and through FastMCP's proxy with
//! its JWT verifier in front of the same server. Reports the latency each adds (p50, p99 over
//! sequential calls on one keep-alive connection, the targets interleaved in rounds), CPU per
//! call of each process, the messages per second of a streaming tool, and the resident memory
//! of the shim holding thousands of idle event streams.
//!
//!   cargo build --release --bin dcr-shim --example mcp_backend
//!   cargo bench --bench gateway                 # 20,000 calls per target, 9,000 idle streams
//!   cargo bench --bench gateway -- --smoke      # a few of each (run by .ci/run through benches/run.sh)
//!   options: --calls N --streams N --shim BIN --backend BIN --fastmcp PYTHON (a python with
//!            fastmcp; default benches/compare/.venv/bin/python when it exists)

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "gateway/harness.rs"]
mod harness;

use harness::{Args, Procs, cpu_seconds, free_port, percentile, rss_mib, wait_for};

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(args));
}

async fn run(args: Args) {
    let mut procs = Procs::default();
    let backend_port = free_port();
    let backend = procs.spawn(Command::new(&args.backend).args([
        "--listen",
        &format!("127.0.0.1:{backend_port}"),
        "--workers",
        "2",
    ]));
    let direct = format!("http://127.0.0.1:{backend_port}/mcp");
    wait_for(&format!("127.0.0.1:{backend_port}")).await;
    let shim_port = free_port();
    let base = format!("http://127.0.0.1:{shim_port}");
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants");
    std::fs::create_dir_all(&tenants).unwrap();
    let resource = format!("{base}/mcp/bench");
    std::fs::write(
        tenants.join("bench.toml"),
        format!(
            "upstream = {{ kind = \"dev\" }}\n[[resources]]\nuri = \"{resource}\"\ndefault = true\ntoken = \"minted\"\ntoken_lifetime = \"1h\"\nscopes = [{{ name = \"bench\", upstream = \"bench\" }}]\n[resources.gateway]\nbackend = \"{direct}\"\n[[machine_clients]]\nclient_id = \"bench-agent\"\nsecret_sha256 = \"{MACHINE_SECRET_SHA256}\"\nresources = [\"{resource}\"]\n"
        ),
    )
    .unwrap();
    let shim = harness::spawn_shim(&mut procs, &args.shim, dir.path(), shim_port).await;
    let token = harness::dev_login(&base, "bench").await;
    let dpop = harness::DpopKey::generate();
    let dpop_token = bound_token(&base, &dpop).await;
    let fastmcp = match &args.fastmcp {
        Some(python) => Some(start_fastmcp(&mut procs, python, &direct, &base, &resource).await),
        None => None,
    };
    let targets = Targets {
        direct,
        gateway: resource.clone(),
        fastmcp,
        token,
        dpop_token,
        dpop,
    };
    println!("## The gateway (`cargo bench --bench gateway`)\n");
    latency_and_cpu(&args, &targets, backend, shim).await;
    streaming(&args, &targets, (backend, shim)).await;
    idle_streams(&args, &targets, shim, shim_port).await;
}

struct Targets {
    direct: String,
    gateway: String,
    fastmcp: Option<String>,
    token: String,
    /// A token bound to `dpop`'s key, presented with a fresh proof per call.
    dpop_token: String,
    dpop: harness::DpopKey,
}

/// The machine client's secret, whose SHA-256 the tenant file holds.
const MACHINE_SECRET: &str = "bench-gateway-agent-secret-0123456789";
const MACHINE_SECRET_SHA256: &str =
    "866de4596382adae8634a2b41c183c0b78f7fdfa745645a0dbf8108efc902dc6";

/// A token for the gateway resource bound to `key` (the machine client's, by the client
/// credentials grant with a DPoP proof).
async fn bound_token(base: &str, key: &harness::DpopKey) -> String {
    let token_url = format!("{base}/bench/token");
    let res = reqwest::Client::new()
        .post(&token_url)
        .basic_auth("bench-agent", Some(MACHINE_SECRET))
        .header("DPoP", key.proof("POST", &token_url, None))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// FastMCP's proxy with its JWT verifier (the shim's keys, issuer and the resource as the
/// audience) in front of the same MCP server: its URL.
async fn start_fastmcp(
    procs: &mut Procs,
    python: &str,
    backend: &str,
    base: &str,
    resource: &str,
) -> String {
    let port = free_port();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/gateway/fastmcp_proxy.py"
    );
    procs.spawn(Command::new(python).args([
        script,
        &port.to_string(),
        backend,
        &format!("{base}/bench/jwks"),
        &format!("{base}/bench"),
        resource,
    ]));
    wait_for(&format!("127.0.0.1:{port}")).await;
    format!("http://127.0.0.1:{port}/mcp")
}

fn call_body(i: usize) -> String {
    json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "echo", "arguments": {"i": i}}}).to_string()
}

/// How a call presents its token: none, as a bearer token, or DPoP-bound with its proof.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    Dpop(&'a str),
}

/// One `tools/call` to `url`; panics on anything but a 200. `proof`: the DPoP proof of a
/// DPoP-bound call, made before the clock started.
async fn call(http: &reqwest::Client, url: &str, auth: Auth<'_>, proof: Option<String>, i: usize) {
    let mut req = http
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .body(call_body(i));
    match auth {
        Auth::None => {}
        Auth::Bearer(t) => req = req.bearer_auth(t),
        Auth::Dpop(t) => {
            req = req
                .header("Authorization", format!("DPoP {t}"))
                .header("DPoP", proof.unwrap_or_default());
        }
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let body = res.bytes().await.unwrap();
    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
}

async fn latency_and_cpu(args: &Args, t: &Targets, backend_pid: u32, shim_pid: u32) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let mut names = vec![
        "direct",
        "dcr-shim gateway",
        "dcr-shim gateway, DPoP-bound token",
    ];
    let mut urls = vec![
        (t.direct.as_str(), Auth::None),
        (t.gateway.as_str(), Auth::Bearer(&t.token)),
        (t.gateway.as_str(), Auth::Dpop(&t.dpop_token)),
    ];
    if let Some(f) = &t.fastmcp {
        names.push("FastMCP proxy");
        urls.push((f.as_str(), Auth::Bearer(&t.token)));
    }
    // A fresh proof for a DPoP-bound call, signed before the clock starts.
    let proof = |url: &str, auth: Auth<'_>| match auth {
        Auth::Dpop(token) => Some(t.dpop.proof("POST", url, Some(token))),
        _ => None,
    };
    // Warm-up: connections, keys, caches.
    for (url, auth) in &urls {
        for i in 0..(args.calls / 20).max(3) {
            call(&http, url, *auth, proof(url, *auth), i).await;
        }
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); urls.len()];
    let mut cpu = vec![(0.0, 0.0); urls.len()];
    let rounds = 10;
    for round in 0..rounds {
        for (k, (url, auth)) in urls.iter().enumerate() {
            let before = (cpu_seconds(backend_pid), cpu_seconds(shim_pid));
            // FastMCP takes tens of milliseconds a call: a tenth of the calls give its figures.
            let calls = if k == 3 {
                args.calls / rounds / 10
            } else {
                args.calls / rounds
            };
            for i in 0..calls.max(1) {
                let proof = proof(url, *auth);
                let started = Instant::now();
                call(&http, url, *auth, proof, round * args.calls + i).await;
                samples[k].push(started.elapsed());
            }
            cpu[k].0 += cpu_seconds(backend_pid) - before.0;
            cpu[k].1 += cpu_seconds(shim_pid) - before.1;
        }
    }
    println!(
        "### Latency of a `tools/call` ({} sequential calls per target (a tenth of them for FastMCP), one keep-alive connection, interleaved in {rounds} rounds)\n",
        args.calls
    );
    println!(
        "| target | p50 ms | p99 ms | added p50 ms | added p99 ms | backend CPU µs/call | shim CPU µs/call |"
    );
    println!("|---|---|---|---|---|---|---|");
    let base = (
        percentile(&mut samples[0], 50.0),
        percentile(&mut samples[0], 99.0),
    );
    for (k, name) in names.iter().enumerate() {
        let (p50, p99) = (
            percentile(&mut samples[k], 50.0),
            percentile(&mut samples[k], 99.0),
        );
        let n = samples[k].len() as f64;
        println!(
            "| {name} | {:.3} | {:.3} | {:+.3} | {:+.3} | {:.0} | {:.0} |",
            p50 * 1e3,
            p99 * 1e3,
            (p50 - base.0) * 1e3,
            (p99 - base.1) * 1e3,
            cpu[k].0 / n * 1e6,
            cpu[k].1 / n * 1e6,
        );
    }
    println!(
        "\nFastMCP's CPU is in its own process (not measured here); its latency row says what it adds.\n"
    );
}

/// Messages per second of one `tools/call` whose answer is an event stream of `count` events.
async fn stream_rate(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    count: usize,
    size: usize,
) -> f64 {
    let mut req = http
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "stream", "arguments": {"count": count, "size": size}}}).to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let started = Instant::now();
    let body = req.send().await.unwrap().bytes().await.unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    let events = body.windows(7).filter(|w| w == b"event: ").count();
    assert_eq!(events, count + 1, "{url}");
    events as f64 / elapsed
}

async fn streaming(args: &Args, t: &Targets, pids: (u32, u32)) {
    let http = reqwest::Client::new();
    let count = if args.smoke { 100 } else { 100_000 };
    println!(
        "### A streaming tool ({count} progress notifications in one event stream, best of 3)\n"
    );
    println!(
        "| message text | direct messages/s | gateway messages/s | ratio | shim CPU µs/message |\n|---|---|---|---|---|"
    );
    for size in [0, 256, 1024] {
        let mut best = (0.0f64, 0.0f64);
        let shim_cpu = cpu_seconds(pids.1);
        for _ in 0..3 {
            best.0 = best
                .0
                .max(stream_rate(&http, &t.direct, None, count, size).await);
            best.1 = best
                .1
                .max(stream_rate(&http, &t.gateway, Some(&t.token), count, size).await);
        }
        let per_message = (cpu_seconds(pids.1) - shim_cpu) / (3 * count) as f64 * 1e6;
        println!(
            "| {size} bytes | {:.0} | {:.0} | {:.2} | {per_message:.2} |",
            best.0,
            best.1,
            best.1 / best.0
        );
    }
    println!();
}

/// Opens `n` idle event streams (`GET`) through the gateway and reports the shim's memory.
async fn idle_streams(args: &Args, t: &Targets, shim_pid: u32, shim_port: u16) {
    let path = t
        .gateway
        .split_once("/mcp")
        .map(|(_, p)| format!("/mcp{p}"))
        .unwrap();
    let before = rss_mib(shim_pid);
    let mut open = Vec::with_capacity(args.streams);
    let mut marks = Vec::new();
    for i in 0..args.streams {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", shim_port))
            .await
            .unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{shim_port}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\nMCP-Protocol-Version: 2025-11-25\r\n\r\n",
            t.token
        );
        s.write_all(request.as_bytes()).await.unwrap();
        let mut head = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut head))
            .await
            .unwrap()
            .unwrap();
        assert!(
            head[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&head[..n])
        );
        open.push(s);
        if (i + 1) % (args.streams / 4).max(1) == 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            marks.push((i + 1, rss_mib(shim_pid)));
        }
    }
    println!(
        "### Idle event streams held through the gateway (GET, each with a connection to the MCP server)\n"
    );
    println!("| streams open | shim resident MiB |\n|---|---|\n| 0 | {before:.1} |");
    for (n, rss) in &marks {
        println!("| {n} | {rss:.1} |");
    }
    if let (Some(first), Some(last)) = (marks.first(), marks.last()) {
        let per_stream = (last.1 - first.1) * 1024.0 / (last.0 - first.0).max(1) as f64;
        println!(
            "\n{per_stream:.1} KiB per stream between {} and {} streams; at that slope 10,000 streams hold {:.0} MiB.\n",
            first.0,
            last.0,
            last.1 + per_stream * (10_000.0 - last.0 as f64) / 1024.0
        );
    }
    drop(open);
}
