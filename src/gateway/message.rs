//! The JSON-RPC message of a POST to a gateway resource, read before anything reaches the MCP
//! server: one message (a batch is refused, so that a check of its first element cannot pass
//! the rest), its method and the name it acts on, and the 2026-07-28 revision's `Mcp-Method` and
//! `Mcp-Name` headers, which must say the same as the body (a load balancer or a policy may
//! decide on the headers alone).

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

/// One JSON-RPC message as the gateway sees it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Message {
    /// The request's or notification's method (none in a response).
    pub(crate) method: Option<String>,
    /// What a `tools/call` or `prompts/get` names, a `resources/read`'s (or subscription's)
    /// URI, or what a `completion/complete` completes.
    pub(crate) name: Option<String>,
    /// The name's normal form (RFC 3986 §6) where it is a URI written otherwise, which the
    /// rules match too: `FILE:///a/../b` reaches what `file:///b` names.
    pub(crate) normal_name: Option<String>,
    /// The request's id, for an error answer in JSON-RPC's terms.
    pub(crate) id: Value,
}

/// Why a POST body is refused (400, as a JSON-RPC error).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum Malformed {
    #[error("the body is not a JSON-RPC message: {0}")]
    NotJson(String),
    #[error("JSON-RPC batches are not accepted; send one message per request")]
    Batch,
    #[error("the {0} header is sent more than once")]
    RepeatedHeader(&'static str),
    #[error("the {header} header says '{header_value}' but the body says '{body}'")]
    HeaderMismatch {
        header: &'static str,
        header_value: String,
        body: String,
    },
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    id: Value,
    #[serde(default)]
    params: Option<Params>,
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    name: Option<Value>,
    #[serde(default)]
    uri: Option<Value>,
    /// `completion/complete`'s prompt or resource (`name` or `uri`).
    #[serde(default, rename = "ref")]
    reference: Option<Box<Params>>,
}

/// Reads the message of a POST body.
pub(crate) fn read(body: &[u8]) -> Result<Message, Malformed> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return Err(Malformed::Batch);
    }
    let wire: Wire = serde_json::from_slice(body).map_err(|e| Malformed::NotJson(e.to_string()))?;
    let params = wire.params.as_ref();
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let uri = |p: Option<&Params>| text(p.and_then(|p| p.uri.as_ref()));
    let name = match wire.method.as_deref() {
        Some("tools/call" | "prompts/get") => text(params.and_then(|p| p.name.as_ref())),
        Some("resources/read" | "resources/subscribe" | "resources/unsubscribe") => uri(params),
        Some("completion/complete") => {
            let reference = params.and_then(|p| p.reference.as_deref());
            text(reference.and_then(|r| r.name.as_ref())).or_else(|| uri(reference))
        }
        _ => None,
    };
    let normal_name = name
        .as_deref()
        .filter(|n| n.contains(':'))
        .and_then(|n| url::Url::parse(n).ok())
        .map(String::from)
        .filter(|normal| Some(normal) != name.as_ref());
    Ok(Message {
        method: wire.method,
        name,
        normal_name,
        id: wire.id,
    })
}

/// Whether the `Mcp-Method` and `Mcp-Name` headers (when sent) say what `message` says.
pub(crate) fn check_headers(
    message: &Message,
    mcp_method: Option<&str>,
    mcp_name: Option<&str>,
) -> Result<(), Malformed> {
    let pairs = [
        ("Mcp-Method", mcp_method.map(str::to_owned), &message.method),
        ("Mcp-Name", mcp_name.map(decode_header_value), &message.name),
    ];
    for (header, sent, body) in pairs {
        let Some(sent) = sent else { continue };
        if Some(&sent) != body.as_ref() {
            return Err(Malformed::HeaderMismatch {
                header,
                header_value: sent,
                body: body.clone().unwrap_or_default(),
            });
        }
    }
    Ok(())
}

/// A header value as SEP-2243 encodes a name that is not plain printable ASCII:
/// `=?base64?<base64 of the UTF-8>?=`; any other value is itself.
fn decode_header_value(value: &str) -> String {
    value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_call_names_its_tool_and_a_read_its_uri() {
        let call = read(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"delete","arguments":{}}}"#).unwrap();
        assert_eq!(call.method.as_deref(), Some("tools/call"));
        assert_eq!(call.name.as_deref(), Some("delete"));
        assert_eq!(call.id, serde_json::json!(7));
        let read_ = read(
            br#"{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"file:///x"}}"#,
        )
        .unwrap();
        assert_eq!(read_.name.as_deref(), Some("file:///x"));
        let list = read(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"name":"x"}}"#)
            .unwrap();
        assert_eq!(
            list.name, None,
            "only calls, reads and prompts name something"
        );
        let response = read(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#).unwrap();
        assert_eq!(response.method, None);
    }

    #[test]
    fn batches_and_what_is_not_json_are_refused() {
        assert_eq!(
            read(br#"  [{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#),
            Err(Malformed::Batch)
        );
        assert!(matches!(read(b"{"), Err(Malformed::NotJson(_))));
        assert!(matches!(read(b"7"), Err(Malformed::NotJson(_))));
    }

    #[test]
    fn the_headers_must_say_what_the_body_says() {
        let call = read(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"caf\u00e9"}}"#,
        )
        .unwrap();
        assert_eq!(check_headers(&call, None, None), Ok(()));
        assert_eq!(
            check_headers(&call, Some("tools/call"), Some("=?base64?Y2Fmw6k=?=")),
            Ok(())
        );
        assert!(matches!(
            check_headers(&call, Some("tools/list"), None),
            Err(Malformed::HeaderMismatch {
                header: "Mcp-Method",
                ..
            })
        ));
        assert!(matches!(
            check_headers(&call, Some("tools/call"), Some("read")),
            Err(Malformed::HeaderMismatch {
                header: "Mcp-Name",
                ..
            })
        ));
    }
}
