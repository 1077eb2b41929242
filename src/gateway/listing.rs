//! Lists as the caller may use them: when rules name callers (`policy.rs`), the answer to
//! `tools/list`, `prompts/list` or `resources/list` is read whole (up to a bound), and what the
//! caller could not call is left out, in a JSON answer or in an event stream's response. A list
//! answer longer than the bound, or that breaks off, is refused (502) rather than passed
//! unfiltered; an answer that is not a list response (an error) passes as it is.

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde_json::Value;

/// The largest list answer read for filtering; a longer one is refused.
pub(crate) const MAX_LIST_BYTES: usize = 8 * 1024 * 1024;

/// A list method, the method whose rules decide its entries and the entries' field that names
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Listing {
    /// The result's array (`tools`, `prompts`, `resources`).
    pub(crate) key: &'static str,
    /// The method that calls an entry.
    pub(crate) call: &'static str,
    /// The entry's field that a call names.
    pub(crate) name_field: &'static str,
}

/// The listing a method asks for, if it is one.
pub(crate) fn listing(method: &str) -> Option<Listing> {
    let (key, call, name_field) = match method {
        "tools/list" => ("tools", "tools/call", "name"),
        "prompts/list" => ("prompts", "prompts/get", "name"),
        "resources/list" => ("resources", "resources/read", "uri"),
        _ => return None,
    };
    Some(Listing {
        key,
        call,
        name_field,
    })
}

/// Reads `body` whole, or `None` if it is longer than `cap` or breaks off.
pub(crate) async fn read_whole(
    mut body: BoxStream<'static, Result<Bytes, reqwest::Error>>,
    cap: usize,
) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.ok()?;
        if out.len() + chunk.len() > cap {
            return None;
        }
        out.extend_from_slice(&chunk);
    }
    Some(out)
}

/// `message` (one JSON-RPC response) with the entries `keep` refuses left out; `None` when it
/// is not a list response.
fn filter_message(message: &mut Value, listing: Listing, keep: &dyn Fn(&str) -> bool) -> bool {
    let Some(entries) = message
        .get_mut("result")
        .and_then(|r| r.get_mut(listing.key))
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    entries.retain(|e| {
        e.get(listing.name_field)
            .and_then(Value::as_str)
            .is_some_and(keep)
    });
    true
}

/// A JSON answer with the entries `keep` refuses left out, or `None` if it is not a list.
pub(crate) fn filter_json(
    body: &[u8],
    listing: Listing,
    keep: &dyn Fn(&str) -> bool,
) -> Option<Vec<u8>> {
    let mut message: Value = serde_json::from_slice(body).ok()?;
    filter_message(&mut message, listing, keep).then(|| message.to_string().into_bytes())
}

/// An event stream whose list response has the entries `keep` refuses left out; other events
/// pass as they are. `None` if no event held a list response.
pub(crate) fn filter_event_stream(
    body: &[u8],
    listing: Listing,
    keep: &dyn Fn(&str) -> bool,
) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?.replace("\r\n", "\n");
    let mut out = String::with_capacity(text.len());
    let mut filtered = false;
    for event in text.split_inclusive("\n\n") {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        let mut parsed = (!data.is_empty())
            .then(|| serde_json::from_str::<Value>(&data.join("\n")).ok())
            .flatten();
        let is_list = parsed
            .as_mut()
            .is_some_and(|m| filter_message(m, listing, keep));
        match parsed {
            Some(message) if is_list => {
                filtered = true;
                // Without its id: a client cannot ask for it again, unfiltered, by resuming.
                let kept =
                    |l: &&str| !l.is_empty() && !l.starts_with("data:") && !l.starts_with("id:");
                for line in event.lines().filter(kept) {
                    out.push_str(line);
                    out.push('\n');
                }
                out.push_str("data: ");
                out.push_str(&message.to_string());
                out.push_str("\n\n");
            }
            _ => out.push_str(event),
        }
    }
    filtered.then(|| out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tools() -> Listing {
        listing("tools/list").unwrap()
    }

    fn not_purge(name: &str) -> bool {
        name != "purge"
    }

    #[test]
    fn a_json_list_leaves_out_what_the_caller_may_not_call() {
        let body = json!({"jsonrpc": "2.0", "id": 3, "result": {"tools": [
            {"name": "read", "inputSchema": {}}, {"name": "purge", "inputSchema": {}}, {"inputSchema": {}}
        ], "nextCursor": "c"}});
        let out = filter_json(body.to_string().as_bytes(), tools(), &not_purge).unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            out["result"]["tools"],
            json!([{"name": "read", "inputSchema": {}}])
        );
        assert_eq!(out["result"]["nextCursor"], "c");
        assert_eq!(out["id"], 3);
        let error = json!({"jsonrpc": "2.0", "id": 3, "error": {"code": -1, "message": "x"}});
        assert_eq!(
            filter_json(error.to_string().as_bytes(), tools(), &not_purge),
            None
        );
    }

    #[test]
    fn an_event_streams_list_response_is_filtered_and_its_other_events_kept() {
        let list = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "purge"}, {"name": "read"}]}});
        let stream = format!(
            ": keep-alive\n\nevent: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{{}}}}\n\nid: 7\r\nevent: message\r\ndata: {list}\r\n\r\n"
        );
        let out = filter_event_stream(stream.as_bytes(), tools(), &not_purge).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with(": keep-alive\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\""), "{out}");
        assert!(out.contains("\n\nevent: message\ndata: {\"id\":1"), "{out}");
        assert!(
            !out.contains("id: 7"),
            "the list's event id is left out: {out}"
        );
        assert!(!out.contains("purge"), "{out}");
        assert!(out.contains("\"read\""), "{out}");
        assert!(out.ends_with("\n\n"));
        assert_eq!(
            filter_event_stream(b"event: message\ndata: {}\n\n", tools(), &not_purge),
            None
        );
    }

    #[test]
    fn only_list_methods_are_listings() {
        assert_eq!(listing("prompts/list").unwrap().call, "prompts/get");
        assert_eq!(listing("resources/list").unwrap().name_field, "uri");
        assert_eq!(listing("tools/call"), None);
    }
}
