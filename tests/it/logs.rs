//! What an operator reads: refusal lines that name the client and the value at fault, the
//! request id on error pages (the id the log carries), durations rounded, each span field
//! once, and `/favicon.ico` answered without a log line at info.

use serde_json::Value;

use crate::binary::start_binary;

fn lines(log: &[String]) -> Vec<Value> {
    log.iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test]
async fn refusals_name_the_client_and_pages_the_request_id() {
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    crate::helpers::write_tenants(tenants.path(), None);
    let shim = start_binary(data.path(), tenants.path(), &[]);
    let http = reqwest::Client::new();
    let b = &shim.base;

    // A refused authorization request on a page: the page quotes the request id, which is the
    // X-Request-Id header and the log line's span id.
    let res = http
        .get(format!(
            "{b}/alpha/authorize?client_id=no-such%0Aclient&redirect_uri=http://127.0.0.1:9/cb&response_type=code"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let page = res.text().await.unwrap();
    assert!(
        page.contains(&format!("quote request <code>{id}</code>")),
        "{page}"
    );

    // A refused token request and a refused registration.
    let res = http
        .post(format!("{b}/alpha/token"))
        .form(&[("grant_type", "password"), ("client_id", "cli-123")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = http
        .post(format!("{b}/alpha/register"))
        .json(&serde_json::json!({"client_name": "Bad \"Agent\"", "redirect_uris": ["http://evil.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains("http://evil.example/cb") && description.is_ascii(),
        "printable ASCII only: {description}"
    );

    // The favicon: answered, not logged at info.
    let res = http.get(format!("{b}/favicon.ico")).send().await.unwrap();
    assert_eq!(res.status(), 204);

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = lines(&shim.log.lock().unwrap());
    let refused = log
        .iter()
        .find(|l| l["message"] == "authorization request refused on a page")
        .expect("the refusal is logged");
    assert_eq!(refused["client_id"], "no-such\nclient");
    assert_eq!(refused["redirect_uri"], "http://127.0.0.1:9/cb");
    assert_eq!(refused["span"]["id"], id.as_str());
    let token = log
        .iter()
        .find(|l| l["message"] == "token request refused")
        .expect("the token refusal is logged");
    assert_eq!(token["client_id"], "cli-123");
    assert_eq!(token["grant_type"], "password");
    let registration = log
        .iter()
        .find(|l| l["message"] == "registration refused")
        .expect("the registration refusal is logged");
    assert_eq!(registration["client_name"], "Bad \"Agent\"");
    assert!(
        registration["error"]
            .as_str()
            .unwrap()
            .contains("evil.example")
    );

    for l in &log {
        assert!(l.get("spans").is_none(), "span fields once: {l}");
        if let Some(ms) = l.get("ms").and_then(Value::as_f64) {
            assert_eq!((ms * 10.0).round() / 10.0, ms, "rounded to 0.1 ms: {l}");
        }
        assert!(
            l["span"]["path"] != "/favicon.ico",
            "/favicon.ico logged at info: {l}"
        );
    }
}
