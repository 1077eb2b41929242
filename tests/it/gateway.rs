//! The gateway (`[resources.gateway]`): the shim serves an MCP server's endpoint and metadata,
//! admits calls with a live minted token for the resource only, and passes them to the MCP
//! server with the caller's identity instead of the client's token. The MCP server here is a
//! recording one, so each test sees exactly what reached it.

use std::sync::Mutex;
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use futures_util::StreamExt;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::browser::{Client, dev_login};
use crate::helpers::{TestApp, spawn_app_with_tenants};

/// The gateway resource's own host (host routing), resolved to the test app.
const HOST: &str = "files.gateway.test";
/// The resource as clients name it (a TLS proxy in front of the shim in production) and the
/// URLs the test calls on the shim itself.
const RESOURCE: &str = "https://files.gateway.test/mcp";
const CALL_URL: &str = "http://files.gateway.test/mcp";
const OTHER: &str = "https://other.gateway.test/mcp";
const OTHER_CALL_URL: &str = "http://other.gateway.test/mcp";
const BROWSER_ORIGIN: &str = "http://localhost:6274";

/// What the MCP server saw of one request.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    method: String,
    headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Seen {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
pub(crate) struct Backend {
    pub(crate) seen: Mutex<Vec<Seen>>,
    /// Released by the test: the streaming tool's second event waits for it.
    release: tokio::sync::Notify,
    /// Set when the `hold` tool's stream is dropped: its client went away.
    hold_dropped: std::sync::atomic::AtomicBool,
}

/// Sets the backend's `hold_dropped` when the stream that owns it is dropped.
struct DropFlag(web::Data<Backend>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0
            .hold_dropped
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The recording MCP server: `tools/call` of `stream` answers an event stream whose second
/// event waits for the test, `slow` never answers in time, `html` answers a page, `quiet`
/// opens a stream and goes silent; anything else is echoed as JSON with a session id.
async fn mcp(req: HttpRequest, body: web::Bytes, backend: web::Data<Backend>) -> HttpResponse {
    let seen = Seen {
        method: req.method().to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").to_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    backend.seen.lock().unwrap().push(seen);
    let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = message["id"].clone();
    if message["method"] == "tools/list" {
        let list = json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [
            {"name": "echo"}, {"name": "audit"}, {"name": "delete_file"}
        ]}});
        return if message["params"]["cursor"] == "sse" {
            HttpResponse::Ok()
                .content_type("text/event-stream")
                .body(format!(
                    ": hello\n\nid: 1\nevent: message\ndata: {list}\n\n"
                ))
        } else {
            HttpResponse::Ok().json(list)
        };
    }
    match message["params"]["name"].as_str() {
        Some("stream") => {
            let backend = backend.clone();
            let events = futures_util::stream::unfold(0, move |n| {
                let backend = backend.clone();
                async move {
                    match n {
                        0 => Some((b"event: message\ndata: {\"progress\":1}\n\n".to_vec(), 1)),
                        1 => {
                            backend.release.notified().await;
                            Some((b"event: message\ndata: {\"progress\":2}\n\n".to_vec(), 2))
                        }
                        _ => None,
                    }
                }
            })
            .map(|chunk| Ok::<_, actix_web::Error>(web::Bytes::from(chunk)));
            HttpResponse::Ok()
                .content_type("text/event-stream")
                .streaming(events)
        }
        Some("slow") => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            HttpResponse::Ok().json(json!({}))
        }
        Some("hold") => {
            let flag = DropFlag(backend.clone());
            let events = futures_util::stream::once(async {
                Ok::<_, actix_web::Error>(web::Bytes::from_static(b"event: message\ndata: {}\n\n"))
            })
            .chain(futures_util::stream::unfold(flag, |flag| async move {
                // Keep-alives until the stream is dropped.
                tokio::time::sleep(Duration::from_millis(100)).await;
                Some((Ok(web::Bytes::from_static(b": ping\n\n")), flag))
            }));
            HttpResponse::Ok()
                .content_type("text/event-stream")
                .streaming(events)
        }
        Some("html") => HttpResponse::Ok()
            .content_type("text/html")
            .body("<script>alert(1)</script>"),
        Some("quiet") => HttpResponse::Ok()
            .content_type("text/event-stream")
            .streaming(
                futures_util::stream::once(async {
                    Ok::<_, actix_web::Error>(web::Bytes::from_static(b": open\n\n"))
                })
                .chain(futures_util::stream::pending()),
            ),
        _ => HttpResponse::Ok()
            .insert_header(("Mcp-Session-Id", "session-1"))
            .insert_header(("Set-Cookie", "backend=1"))
            .json(json!({"jsonrpc": "2.0", "id": id, "result": {"ok": true}})),
    }
}

/// Starts the recording MCP server: its endpoint URL and what it saw.
pub(crate) async fn start_backend() -> (String, web::Data<Backend>) {
    let backend = web::Data::new(Backend::default());
    let data = backend.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/mcp", web::to(mcp))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (format!("http://{addr}/mcp"), backend)
}

fn tenant_file(backend: &str) -> String {
    format!(
        r#"upstream = {{ kind = "dev" }}

[[resources]]
uri = "{RESOURCE}"
name = "Files"
default = true
token = "minted"
scopes = [
  {{ name = "files.read", upstream = "api://files/files.read" }},
  {{ name = "files.write", upstream = "api://files/files.write" }},
]

[resources.gateway]
backend = "{backend}"
rules = [
  {{ methods = ["tools/call"], names = ["delete*"], scopes = ["files.write"] }},
  {{ names = ["audit"], users = ["ada"] }},
  {{ methods = ["resources/read"], names = ["file:///secret/*"], users = ["nobody"] }},
]
answer_timeout = "1s"
idle_timeout = "1s"
max_body_bytes = 4096
allowed_origins = ["{BROWSER_ORIGIN}"]

[[resources]]
uri = "{OTHER}"
token = "minted"
scopes = [{{ name = "other.read", upstream = "api://other/other.read" }}]

[resources.gateway]
backend = "{backend}"
identity = "headers"
"#
    )
}

struct World {
    app: TestApp,
    backend: web::Data<Backend>,
    /// The MCP server's endpoint.
    backend_url: String,
    /// A client whose requests for the gateway's hosts reach the app.
    http: reqwest::Client,
}

async fn world() -> World {
    let (backend_url, backend) = start_backend().await;
    let app = spawn_app_with_tenants(|dir| {
        std::fs::write(dir.join("gw.toml"), tenant_file(&backend_url)).unwrap();
    })
    .await;
    app.wait_ready().await;
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let http = reqwest::Client::builder()
        .resolve(HOST, addr)
        .resolve("other.gateway.test", addr)
        .resolve("dead.gateway.test", addr)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    World {
        app,
        backend,
        backend_url,
        http,
    }
}

impl World {
    /// A minted token for the files resource, from a login through the dev IdP.
    async fn token(&self) -> (String, Client, Value) {
        let client = Client::register(&self.app, "gw", json!({})).await;
        let tokens = dev_login(&self.app, "gw", &client, "files.read offline_access", "ada").await;
        (
            tokens["access_token"].as_str().unwrap().to_owned(),
            client,
            tokens,
        )
    }

    fn call(&self, token: Option<&str>, body: &Value) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .post(CALL_URL)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req
    }

    /// POSTs `body` with `token` and waits for the answer.
    async fn send(&self, token: Option<&str>, body: &Value) -> reqwest::Response {
        self.call(token, body).send().await.unwrap()
    }

    fn last_seen(&self) -> Seen {
        self.backend
            .seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a call reached the MCP server")
    }

    fn calls_seen(&self) -> usize {
        self.backend.seen.lock().unwrap().len()
    }
}

pub(crate) fn tool_call(name: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": {}}})
}

#[tokio::test]
async fn the_gateway_serves_the_resources_metadata_and_challenges_a_call_without_a_token() {
    let w = world().await;
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let res = w
            .http
            .get(format!("http://{HOST}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let doc: Value = res.json().await.unwrap();
        assert_eq!(doc["resource"], RESOURCE);
        assert_eq!(doc["authorization_servers"], json!([w.app.issuer("gw")]));
        assert_eq!(
            doc["scopes_supported"],
            json!(["files.read", "files.write"])
        );
        assert_eq!(doc["resource_name"], "Files");
    }
    let res = w.send(None, &tool_call("echo")).await;
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    assert!(
        challenge.contains(r#"scope="files.read files.write""#),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!(
            r#"resource_metadata="https://{HOST}/.well-known/oauth-protected-resource/mcp""#
        )),
        "{challenge}"
    );
    let other_path = w
        .http
        .get(format!("http://{HOST}/admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other_path.status(),
        404,
        "only the resource's path is served on its host"
    );
    assert_eq!(w.calls_seen(), 0, "nothing reached the MCP server");
}

#[tokio::test]
async fn an_admitted_call_reaches_the_mcp_server_with_an_identity_and_never_the_clients_token() {
    let w = world().await;
    let (token, client, _) = w.token().await;
    // The MCP server makes a session ("session-1"); the client receives it bound to itself.
    let first = w.send(Some(&token), &tool_call("echo")).await;
    let sealed = first.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(sealed, "session-1", "the session id is bound to its caller");
    let res = w
        .call(Some(&token), &tool_call("echo"))
        .header("Cookie", "shim_session=secret")
        .header("Origin", BROWSER_ORIGIN)
        .header("X-Forwarded-For", "203.0.113.9")
        .header("X-Dcr-Shim-Identity", "forged")
        .header("X-Dcr-Shim-User", "mallory")
        .header("Mcp-Session-Id", &sealed)
        .header("Mcp-Protocol-Version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["mcp-session-id"], sealed.as_str());
    assert_eq!(res.headers()["access-control-allow-origin"], BROWSER_ORIGIN);
    assert!(
        res.headers().get("set-cookie").is_none(),
        "the MCP server sets no cookie on the shim's origin"
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["result"]["ok"], true);

    let seen = w.last_seen();
    assert_eq!(
        seen.body,
        tool_call("echo").to_string(),
        "the body passes unchanged"
    );
    for absent in [
        "authorization",
        "cookie",
        "origin",
        "x-forwarded-for",
        "x-dcr-shim-user",
    ] {
        assert_eq!(seen.header(absent), None, "{absent} reached the MCP server");
    }
    assert_eq!(
        seen.header("mcp-session-id"),
        Some("session-1"),
        "the MCP server gets its own id back"
    );
    assert_eq!(seen.header("mcp-protocol-version"), Some("2025-11-25"));
    let backend_host = w
        .backend_url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp");
    assert_eq!(
        seen.header("host"),
        Some(backend_host),
        "Host is the MCP server's own"
    );

    // The identity JWT: the tenant's key, its own type, the MCP server's audience.
    let identity = seen.header("x-dcr-shim-identity").unwrap();
    assert_ne!(identity, "forged");
    let header = jsonwebtoken::decode_header(identity).unwrap();
    assert_eq!(header.typ.as_deref(), Some("dcr-shim-identity+jwt"));
    let jwks: JwkSet = w.app.get("/gw/jwks").await.json().await.unwrap();
    let key = DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[&w.backend_url]);
    validation.set_issuer(&[w.app.issuer("gw")]);
    let claims = jsonwebtoken::decode::<Value>(identity, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["client_id"], client.id);
    assert_eq!(claims["scope"], "files.read");
    assert_eq!(claims["resource"], RESOURCE);
    assert!(claims["sub"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(claims["exp"].as_u64().unwrap() <= claims["iat"].as_u64().unwrap() + 60);
    assert!(claims.get("sid").is_none());

    // It never passes as an access token: not at the gateway.
    let replayed = w.send(Some(identity), &tool_call("echo")).await;
    assert_eq!(replayed.status(), 401);
    // Calls are counted under their own route and tenant.
    let metrics = crate::metrics::scrape(&w.app).await;
    assert!(
        metrics
            .keys()
            .any(|k| k.starts_with("dcr_shim_http_requests_total{")
                && k.contains("route=gateway")
                && k.contains("tenant=gw")),
        "{metrics:?}"
    );
}

#[tokio::test]
async fn tokens_that_are_not_live_minted_tokens_for_the_resource_are_refused() {
    let w = world().await;
    let (token, client, tokens) = w.token().await;
    let call = |t: &str| w.call(Some(t), &tool_call("echo")).send();

    // alg none, a changed payload, garbage.
    let parts: Vec<&str> = token.split('.').collect();
    let none_header = base64_url(br#"{"alg":"none","typ":"at+jwt"}"#);
    let unsigned = format!("{none_header}.{}.", parts[1]);
    let mut payload: Value = serde_json::from_slice(&base64_decode(parts[1])).unwrap();
    payload["scope"] = json!("files.read files.write");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        base64_url(payload.to_string().as_bytes()),
        parts[2]
    );
    for bad in [unsigned.as_str(), tampered.as_str(), "not-a-jwt"] {
        assert_eq!(call(bad).await.unwrap().status(), 401, "{bad}");
    }

    // A token for the other gateway resource of the same tenant.
    let other = w
        .http
        .post(OTHER_CALL_URL)
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(tool_call("echo").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 401, "a token's audience is one resource");

    // The login revoked: refused at once.
    assert_eq!(call(&token).await.unwrap().status(), 200);
    let revoked = w
        .app
        .http
        .post(format!("{}/gw/revoke", w.app.base))
        .form(&[
            ("token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", client.id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        call(&token).await.unwrap().status(),
        401,
        "a revoked login's token"
    );
    assert_eq!(
        w.calls_seen(),
        1,
        "only the valid call reached the MCP server"
    );
}

/// A token that was valid: redeemed an hour ago (by the protocol code, told the time), it
/// expired 50 minutes ago. Refused, and the MCP server never sees the call.
#[tokio::test]
async fn an_expired_token_is_refused_at_the_gateway() {
    let w = world().await;
    let client = Client::register(&w.app, "gw", json!({})).await;
    let (code, attempt) =
        crate::browser::dev_code(&w.app, "gw", &client, "files.read", "ada").await;
    let form = dcr_shim::oauth::params::Params::parse(&format!(
        "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={}&client_id={}",
        url::form_urlencoded::byte_serialize(client.redirect_uri.as_bytes()).collect::<String>(),
        attempt.verifier,
        client.id
    ));
    let creds = dcr_shim::oauth::client_auth::ClientCredentials {
        basic: None,
        dpop: None,
    };
    let an_hour_ago = dcr_shim::app::unix_now() - 3600;
    let answer = w
        .app
        .state()
        .auth()
        .tokens()
        .token(
            &w.app.tenant("gw"),
            &form,
            &creds,
            &crate::helpers::operator(an_hour_ago),
        )
        .await
        .unwrap();
    let answer = serde_json::to_value(&answer).unwrap();
    let expired = answer["access_token"].as_str().unwrap();
    let exp = serde_json::from_slice::<Value>(&base64_decode(expired.split('.').nth(1).unwrap()))
        .unwrap()["exp"]
        .as_u64()
        .unwrap();
    assert!(exp < dcr_shim::app::unix_now(), "the token has expired");
    let res = w.send(Some(expired), &tool_call("echo")).await;
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    assert_eq!(w.calls_seen(), 0, "nothing reached the MCP server");
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

#[tokio::test]
async fn what_is_not_one_honest_message_never_reaches_the_mcp_server() {
    let w = world().await;
    let (token, _, _) = w.token().await;
    let batch = json!([tool_call("echo"), tool_call("delete")]);
    let res = w.send(Some(&token), &batch).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("batches"),
        "{body}"
    );

    let res = w
        .call(Some(&token), &tool_call("delete"))
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", "read")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "a header that says another tool");

    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"x": "a".repeat(5000)}}});
    let res = w.send(Some(&token), &big).await;
    assert_eq!(res.status(), 413, "larger than max_body_bytes");

    let res = w
        .call(Some(&token), &tool_call("echo"))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        403,
        "a page of an origin the resource does not list"
    );
    assert!(res.headers().get("access-control-allow-origin").is_none());
    assert_eq!(w.calls_seen(), 0);

    let ok = w
        .call(Some(&token), &tool_call("echo"))
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", "echo")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "headers that agree with the body");
}

#[tokio::test]
async fn smuggled_requests_are_refused_before_the_gateway() {
    let w = world().await;
    let (token, _, _) = w.token().await;
    let body = tool_call("echo").to_string();
    let addr = w.app.base.trim_start_matches("http://").to_owned();
    for framing in [
        format!("Content-Length: {}\r\nContent-Length: 3\r\n", body.len()),
        format!(
            "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
            body.len()
        ),
        "Transfer-Encoding: chunked, identity\r\n".to_owned(),
    ] {
        let request = format!(
            "POST /mcp HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{framing}Connection: close\r\n\r\n{body}"
        );
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 400"), "{framing:?}: {answer}");
    }
    assert_eq!(w.calls_seen(), 0, "nothing reached the MCP server");
}

#[tokio::test]
async fn an_event_stream_is_passed_as_it_comes_and_failures_are_said() {
    let w = world().await;
    let (token, _, _) = w.token().await;
    let res = w.send(Some(&token), &tool_call("stream")).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = res.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(
        String::from_utf8_lossy(&first).contains("\"progress\":1"),
        "the first event arrives while the MCP server still holds the second"
    );
    w.backend.release.notify_one();
    let mut rest = Vec::new();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert!(String::from_utf8_lossy(&rest).contains("\"progress\":2"));

    let slow = w.send(Some(&token), &tool_call("slow")).await;
    assert_eq!(slow.status(), 504, "no answer within answer_timeout");
    let html = w.send(Some(&token), &tool_call("html")).await;
    assert_eq!(
        html.status(),
        502,
        "a page is never served on the shim's origin"
    );
    let body = html.text().await.unwrap();
    assert!(!body.contains("<script>"), "{body}");

    let quiet = w.send(Some(&token), &tool_call("quiet")).await;
    assert_eq!(quiet.status(), 200);
    let ended = tokio::time::timeout(Duration::from_secs(20), quiet.bytes()).await;
    assert!(ended.is_ok(), "a silent stream is ended after idle_timeout");
}

#[tokio::test]
async fn a_browser_client_of_an_allowed_origin_gets_cors() {
    let w = world().await;
    let preflight = |origin: &'static str| {
        w.http
            .request(reqwest::Method::OPTIONS, CALL_URL)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type, mcp-protocol-version",
            )
            .send()
    };
    let ok = preflight(BROWSER_ORIGIN).await.unwrap();
    assert_eq!(ok.status(), 204);
    assert_eq!(ok.headers()["access-control-allow-origin"], BROWSER_ORIGIN);
    let allowed = ok.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "mcp-session-id",
        "mcp-protocol-version",
        "last-event-id",
    ] {
        assert!(allowed.contains(h), "{h}");
    }
    let refused = preflight("http://evil.example").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let challenge = w
        .call(None, &tool_call("echo"))
        .header("Origin", BROWSER_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(challenge.status(), 401);
    let exposed = challenge.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(
        exposed.contains("WWW-Authenticate"),
        "a page reads the challenge"
    );
}

#[tokio::test]
async fn identity_headers_for_a_trusted_network_and_path_routing_on_the_servers_own_host() {
    let w = world().await;
    // A second tenant whose gateway resource is a path on the shim's own host.
    let path_resource = format!("{}/mcp/files", w.app.base);
    std::fs::write(
        w.app.tenants_dir.join("gwpath.toml"),
        format!(
            "upstream = {{ kind = \"dev\" }}\n[[resources]]\nuri = \"{path_resource}\"\ndefault = true\ntoken = \"minted\"\nscopes = [{{ name = \"files.read\", upstream = \"api://files/files.read\" }}]\n[resources.gateway]\nbackend = \"{}\"\nidentity = \"headers\"\n",
            w.backend_url
        ),
    )
    .unwrap();
    w.app.reload().await.unwrap();
    let doc: Value = w
        .app
        .get("/.well-known/oauth-protected-resource/mcp/files")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(doc["resource"], path_resource);
    assert_eq!(
        doc["authorization_servers"],
        json!([w.app.issuer("gwpath")])
    );
    // A client that adds a slash reaches the same resource, as on a host of its own.
    let slashed = w
        .app
        .get("/.well-known/oauth-protected-resource/mcp/files/")
        .await;
    assert_eq!(slashed.status(), 200);

    let client = Client::register(&w.app, "gwpath", json!({})).await;
    let tokens = dev_login(&w.app, "gwpath", &client, "files.read", "bob").await;
    let token = tokens["access_token"].as_str().unwrap();
    let slashed = w
        .app
        .http
        .post(format!("{path_resource}/"))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(tool_call("echo").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(slashed.status(), 200, "the endpoint with a trailing slash");
    let res = w
        .app
        .http
        .post(&path_resource)
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .header("X-Dcr-Shim-User", "mallory")
        .body(tool_call("echo").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen = w.last_seen();
    assert_eq!(seen.header("x-dcr-shim-client"), Some(client.id.as_str()));
    assert_eq!(seen.header("x-dcr-shim-scope"), Some("files.read"));
    assert_ne!(seen.header("x-dcr-shim-user"), Some("mallory"));
    assert!(
        seen.header("x-dcr-shim-user")
            .is_some_and(|u| !u.is_empty())
    );
    assert_eq!(seen.header("x-dcr-shim-identity"), None);
    assert_eq!(seen.method, "POST");
}

#[tokio::test]
async fn a_call_a_rule_covers_needs_its_scope_and_the_client_steps_up() {
    let w = world().await;
    let (read_only, client, _) = w.token().await;
    let res = w.send(Some(&read_only), &tool_call("delete_file")).await;
    assert_eq!(res.status(), 403);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(
        challenge.contains(r#"scope="files.read files.write""#),
        "the scopes held and the one missing: {challenge}"
    );
    assert_eq!(w.calls_seen(), 0);
    let ok = w.send(Some(&read_only), &tool_call("read_file")).await;
    assert_eq!(ok.status(), 200, "a call no rule covers");

    let tokens = dev_login(&w.app, "gw", &client, "files.read files.write", "ada").await;
    let stepped_up = tokens["access_token"].as_str().unwrap();
    let res = w.send(Some(stepped_up), &tool_call("delete_file")).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_rule_that_names_users_refuses_the_others_and_their_lists_leave_the_tool_out() {
    let w = world().await;
    let (ada, _, _) = w.token().await;
    let client = Client::register(&w.app, "gw", json!({})).await;
    let tokens = dev_login(&w.app, "gw", &client, "files.read", "bob").await;
    let bob = tokens["access_token"].as_str().unwrap();

    let res = w.send(Some(bob), &tool_call("audit")).await;
    assert_eq!(res.status(), 403);
    assert!(
        res.headers().get("www-authenticate").is_none(),
        "no scope would help: no challenge"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], 1, "the answer is to the request");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("user"),
        "{body}"
    );
    assert_eq!(w.calls_seen(), 0);
    let ok = w.send(Some(&ada), &tool_call("audit")).await;
    assert_eq!(ok.status(), 200);

    let list = |cursor: &str| json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": {"cursor": cursor}});
    let names = |v: &Value| -> Vec<String> {
        v["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let bobs: Value = w.send(Some(bob), &list("json")).await.json().await.unwrap();
    assert_eq!(
        names(&bobs),
        ["echo", "delete_file"],
        "delete_file stays: a scope would let bob call it"
    );
    let adas: Value = w
        .send(Some(&ada), &list("json"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(&adas), ["echo", "audit", "delete_file"]);

    let res = w.send(Some(bob), &list("sse")).await;
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.starts_with(": hello\n\nevent: message\ndata: "),
        "{text}"
    );
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    assert_eq!(
        names(&serde_json::from_str(data).unwrap()),
        ["echo", "delete_file"]
    );
}

#[tokio::test]
async fn a_client_that_goes_away_closes_the_mcp_servers_stream_and_a_dead_one_is_a_502() {
    let w = world().await;
    let (token, _, _) = w.token().await;
    let res = w.send(Some(&token), &tool_call("hold")).await;
    let mut body = res.bytes_stream();
    assert!(body.next().await.is_some());
    drop(body);
    let mut dropped = false;
    for _ in 0..100 {
        if w.backend
            .hold_dropped
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        dropped,
        "the MCP server's stream ended when the client went away"
    );

    // A resource whose MCP server is not listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/mcp", closed.local_addr().unwrap());
    drop(closed);
    std::fs::write(
        w.app.tenants_dir.join("gwdead.toml"),
        format!(
            "upstream = {{ kind = \"dev\" }}\n[[resources]]\nuri = \"https://dead.gateway.test/mcp\"\ndefault = true\ntoken = \"minted\"\nscopes = [{{ name = \"dead.read\", upstream = \"api://dead/read\" }}]\n[resources.gateway]\nbackend = \"{dead}\"\n"
        ),
    )
    .unwrap();
    w.app.reload().await.unwrap();
    let client = Client::register(&w.app, "gwdead", json!({})).await;
    let tokens = dev_login(&w.app, "gwdead", &client, "dead.read", "ada").await;
    let res = w
        .http
        .post("http://dead.gateway.test/mcp")
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .header("Content-Type", "application/json")
        .body(tool_call("echo").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    let body: Value = res.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("could not be reached"), "{body}");
    assert!(
        !message.contains("127.0.0.1"),
        "the backend's address stays in the log: {body}"
    );
}

#[tokio::test]
async fn each_tool_call_is_audited_and_a_users_calls_are_limited() {
    let (backend_url, _backend) = start_backend().await;
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    std::fs::write(
        tenants.path().join("gw.toml"),
        tenant_file(&backend_url).replace(
            "max_body_bytes = 4096",
            "max_body_bytes = 4096\ncalls_per_minute_per_user = 3",
        ),
    )
    .unwrap();
    let audit = data.path().join("audit.jsonl");
    let shim = crate::binary::start_binary_with_args(
        data.path(),
        tenants.path(),
        &["--audit-log", audit.to_str().unwrap()],
    );
    let handed = crate::binary::dev_login(&shim.base, "gw", false).await;
    let token = &handed.values[4];
    let addr: std::net::SocketAddr = shim.base.trim_start_matches("http://").parse().unwrap();
    let http = reqwest::Client::builder()
        .resolve(HOST, addr)
        .build()
        .unwrap();
    let call = |name: &str| {
        http.post(CALL_URL)
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .body(tool_call(name).to_string())
            .send()
    };
    assert_eq!(call("echo").await.unwrap().status(), 200);
    assert_eq!(call("delete_file").await.unwrap().status(), 403);
    assert_eq!(call("echo").await.unwrap().status(), 200);
    assert_eq!(call("echo").await.unwrap().status(), 200);
    let limited = call("echo").await.unwrap();
    assert_eq!(
        limited.status(),
        429,
        "the user's fourth call in a minute that would reach the MCP server"
    );
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = std::fs::read_to_string(&audit).unwrap();
    let calls: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "gateway_call")
        .collect();
    let decisions: Vec<(&str, &str, u64)> = calls
        .iter()
        .map(|e| {
            (
                e["tool"].as_str().unwrap(),
                e["decision"].as_str().unwrap(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [
            ("echo", "passed", 200),
            ("delete_file", "refused_scope", 403),
            ("echo", "passed", 200),
            ("echo", "passed", 200),
            ("echo", "rate_limited", 429),
        ]
    );
    for e in &calls {
        assert_eq!(e["tenant"], "gw");
        assert_eq!(e["resource"], RESOURCE);
        assert_eq!(e["client_id"], handed.client_id.as_str());
        assert!(e["user"].as_str().is_some_and(|u| !u.is_empty()), "{e}");
        assert!(e["ms"].as_u64().is_some(), "{e}");
    }
    for value in &handed.values {
        assert!(
            !text.contains(value.as_str()),
            "the audit log holds no token or code"
        );
    }
}

#[tokio::test]
async fn a_login_revoked_on_one_replica_is_refused_by_the_others_gateway_at_once() {
    let Some(url) = crate::store_suite::fresh_postgres_database().await else {
        eprintln!("skipped: DCR_SHIM_TEST_POSTGRES is not set");
        return;
    };
    let (backend_url, backend) = start_backend().await;
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    std::fs::write(tenants.path().join("gw.toml"), tenant_file(&backend_url)).unwrap();
    let secret = data.path().join("secret");
    crate::helpers::write_private(&secret, &"cd".repeat(32));
    let port = crate::binary::free_port();
    let public = format!("http://127.0.0.1:{port}");
    let args = ["--store", &url, "--secret-file", secret.to_str().unwrap()];
    let a = crate::binary::start_binary_on_with_args(port, data.path(), tenants.path(), &args);
    let b = crate::binary::start_replica(&public, data.path(), tenants.path(), &args);

    let handed = crate::binary::dev_login(&a.base, "gw", false).await;
    let token = &handed.values[4];
    let through_b = {
        let addr: std::net::SocketAddr = b.base.trim_start_matches("http://").parse().unwrap();
        reqwest::Client::builder()
            .resolve(HOST, addr)
            .build()
            .unwrap()
    };
    let call = || {
        through_b
            .post(CALL_URL)
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .body(tool_call("echo").to_string())
            .send()
    };
    assert_eq!(
        call().await.unwrap().status(),
        200,
        "replica b admits a's login"
    );
    let revoked = reqwest::Client::new()
        .post(format!("{}/gw/revoke", a.base))
        .form(&[
            ("token", handed.refresh_token.as_str()),
            ("client_id", handed.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    // No wait: the gateway reads the login from the store on every call.
    assert_eq!(
        call().await.unwrap().status(),
        401,
        "revoked on a, refused by b"
    );
    assert_eq!(backend.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn other_methods_bodies_without_a_check_repeated_headers_and_other_spellings_are_refused() {
    let w = world().await;
    let (token, _, _) = w.token().await;
    for method in [reqwest::Method::PUT, reqwest::Method::PATCH] {
        let res = w
            .http
            .request(method.clone(), CALL_URL)
            .bearer_auth(&token)
            .body(tool_call("echo").to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{method}");
        assert_eq!(res.headers()["allow"], "GET, POST, DELETE");
    }
    let get_with_body = w
        .http
        .get(CALL_URL)
        .bearer_auth(&token)
        .body(tool_call("delete_file").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(get_with_body.status(), 400, "a body the rules never read");
    let repeated = w
        .call(Some(&token), &tool_call("echo"))
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Method", "tools/list")
        .send()
        .await
        .unwrap();
    assert_eq!(
        repeated.status(),
        400,
        "a second Mcp-Method would pass unchecked"
    );
    let read = |uri: &str| json!({"jsonrpc": "2.0", "id": 9, "method": "resources/read", "params": {"uri": uri}});
    for uri in [
        "file:///secret/x",
        "FILE:///secret/x",
        "file:///pub/../secret/x",
    ] {
        let res = w.send(Some(&token), &read(uri)).await;
        assert_eq!(
            res.status(),
            403,
            "{uri}: another spelling of a guarded URI"
        );
    }
    assert_eq!(w.calls_seen(), 0, "nothing reached the MCP server");
    let open = w.send(Some(&token), &read("file:///pub/x")).await;
    assert_eq!(open.status(), 200);
}

#[tokio::test]
async fn a_session_id_reaches_its_session_only_from_the_caller_it_was_made_for() {
    let w = world().await;
    let (ada, _, _) = w.token().await;
    let sealed = w.send(Some(&ada), &tool_call("echo")).await.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let client = Client::register(&w.app, "gw", json!({})).await;
    let tokens = dev_login(&w.app, "gw", &client, "files.read", "bob").await;
    let bob = tokens["access_token"].as_str().unwrap();
    let seen_before = w.calls_seen();
    for (token, session) in [(bob, sealed.as_str()), (ada.as_str(), "session-1")] {
        let res = w
            .call(Some(token), &tool_call("echo"))
            .header("Mcp-Session-Id", session)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            404,
            "{session}: another user's, or the raw id"
        );
        let body: Value = res.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Session not found")
        );
    }
    assert_eq!(
        w.calls_seen(),
        seen_before,
        "nothing reached the MCP server"
    );
    let own = w
        .call(Some(&ada), &tool_call("echo"))
        .header("Mcp-Session-Id", &sealed)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
}
