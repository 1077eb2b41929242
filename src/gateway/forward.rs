//! The call to the MCP server behind the gateway, and its answer. Only Streamable HTTP's
//! headers go out (`Content-Type`, `Accept`, `Last-Event-ID` and the `Mcp-*` family), with the
//! caller's identity in the gateway's own form; never the client's `Authorization`, cookies,
//! `Origin` or forwarding headers, and `Host` is the MCP server's (the SDK servers refuse a
//! foreign one). The answer passes only as JSON or an event stream, streamed as it comes
//! (`relay.rs`), and ends when the MCP server is silent for longer than the resource's idle
//! timeout.

use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};

use super::relay::Relay;
use crate::config::gateway::GatewayConfig;

/// Headers of the client's request passed to the MCP server, besides `mcp-*`.
const PASSED_REQUEST_HEADERS: [&str; 3] = ["content-type", "accept", "last-event-id"];

/// Headers of the MCP server's answer passed back, besides `mcp-*`.
const PASSED_ANSWER_HEADERS: [&str; 1] = ["cache-control"];

/// A call for the MCP server.
pub(crate) struct Outgoing<'a> {
    pub(crate) method: reqwest::Method,
    /// The client's request headers, by name (lower case) and value.
    pub(crate) headers: Vec<(&'a str, &'a str)>,
    /// The caller's identity (`identity.rs`).
    pub(crate) identity: Vec<(&'static str, String)>,
    /// How long the caller's token is still valid: the answer ends then.
    pub(crate) lifetime: Duration,
    pub(crate) body: Bytes,
}

/// The MCP server's answer, ready to pass back.
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// Headers passed back, with the content type first when there is a body.
    pub(crate) headers: Vec<(String, String)>,
    /// The body as it comes; empty for an answer without one.
    pub(crate) body: BoxStream<'static, Result<Bytes, reqwest::Error>>,
}

/// Why a call got no answer to pass back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// Why, for the log: the client is told only that it could not be reached (the detail
    /// names the backend's address).
    #[error("the MCP server could not be reached")]
    Unreachable(String),
    #[error("the MCP server did not answer within {0:?}")]
    Timeout(Duration),
    #[error(
        "the MCP server answered with '{0}', which the gateway passes on only as JSON or an event stream"
    )]
    WrongType(String),
    #[error("the MCP server answered with status {0}, which the gateway does not pass on")]
    WrongStatus(u16),
}

/// Whether a client's request header is passed to the MCP server.
pub(crate) fn is_passed_request_header(name: &str) -> bool {
    PASSED_REQUEST_HEADERS.contains(&name) || name.starts_with("mcp-")
}

fn is_passed_answer_header(name: &str) -> bool {
    PASSED_ANSWER_HEADERS.contains(&name) || name.starts_with("mcp-")
}

/// Sends `call` to the MCP server of `gateway` and reads the start of its answer.
pub(crate) async fn forward(
    client: &reqwest::Client,
    gateway: &GatewayConfig,
    call: Outgoing<'_>,
) -> Result<Answer, Failure> {
    let call_lifetime = call.lifetime;
    let with_body = call.method == reqwest::Method::POST;
    let mut request = client.request(call.method, gateway.backend.clone());
    if with_body {
        request = request.body(call.body);
    }
    for (name, value) in call.headers {
        if is_passed_request_header(name) && (with_body || name != "content-type") {
            request = request.header(name, value);
        }
    }
    for (name, value) in call.identity {
        request = request.header(name, value);
    }
    let answer = match tokio::time::timeout(gateway.answer_timeout, request.send()).await {
        Err(_) => return Err(Failure::Timeout(gateway.answer_timeout)),
        Ok(Err(e)) => {
            return Err(Failure::Unreachable(crate::net::fetch::error_chain(&e)));
        }
        Ok(Ok(answer)) => answer,
    };
    let status = answer.status().as_u16();
    if !(200..600).contains(&status) {
        return Err(Failure::WrongStatus(status));
    }
    let content_type = answer
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut headers: Vec<(String, String)> = answer
        .headers()
        .iter()
        .filter(|(name, _)| is_passed_answer_header(name.as_str()))
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
        .collect();
    match content_type {
        Some(ct) if is_passed_type(&ct) => {
            headers.insert(0, ("content-type".into(), ct));
            Ok(Answer {
                status,
                headers,
                body: Relay::new(
                    answer.bytes_stream().boxed(),
                    gateway.idle_timeout,
                    call_lifetime,
                )
                .boxed(),
            })
        }
        // An answer without a type passes only when it has no body (an accepted
        // notification, an ended session), which is read to know.
        None => {
            let mut body = answer.bytes_stream();
            let first_byte = async {
                loop {
                    match body.next().await {
                        Some(Ok(chunk)) if chunk.is_empty() => continue,
                        other => return other,
                    }
                }
            };
            match tokio::time::timeout(gateway.idle_timeout, first_byte).await {
                Ok(None) => Ok(Answer {
                    status,
                    headers,
                    body: futures_util::stream::empty().boxed(),
                }),
                Ok(Some(Ok(_))) => Err(Failure::WrongType("a body without a content type".into())),
                Ok(Some(Err(e))) => Err(Failure::Unreachable(crate::net::fetch::error_chain(&e))),
                Err(_) => Err(Failure::Timeout(gateway.idle_timeout)),
            }
        }
        Some(other) => Err(Failure::WrongType(other)),
    }
}

/// JSON or an event stream, whatever its parameters.
fn is_passed_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.eq_ignore_ascii_case("text/event-stream")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_streamable_http_headers_pass() {
        for name in [
            "content-type",
            "accept",
            "last-event-id",
            "mcp-session-id",
            "mcp-protocol-version",
            "mcp-method",
            "mcp-name",
            "mcp-param-region",
        ] {
            assert!(is_passed_request_header(name), "{name}");
        }
        for name in [
            "authorization",
            "cookie",
            "origin",
            "host",
            "x-forwarded-for",
            "forwarded",
            "x-dcr-shim-identity",
            "x-dcr-shim-user",
            "content-length",
            "transfer-encoding",
            "connection",
            "te",
        ] {
            assert!(!is_passed_request_header(name), "{name}");
        }
    }

    #[test]
    fn only_json_and_event_streams_pass_back() {
        assert!(is_passed_type("application/json"));
        assert!(is_passed_type("text/event-stream; charset=utf-8"));
        assert!(is_passed_type("Application/JSON"));
        assert!(!is_passed_type("text/html"));
        assert!(!is_passed_type("application/json-seq"));
        assert!(!is_passed_type(""));
    }
}
