//! What each gateway call leaves behind: its metrics (per resource, method and outcome, and per
//! tool for `tools/call`), and for each `tools/call` one audit event naming the tenant, the
//! resource, the user, the client, the tool, the decision, the status and the time it took.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use super::admission::Caller;
use super::message::Message;

/// How many tool names per resource become metric labels; the rest count as `other`.
pub(crate) const MAX_TOOL_LABELS: usize = 200;

/// The methods counted under their own name; any other is `other`.
const METHODS: [&str; 16] = [
    "initialize",
    "server/discover",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/result",
];

/// One call as it goes through the gateway.
pub(crate) struct CallRecord<'a> {
    tenant: &'a str,
    resource: &'a str,
    started: Instant,
    method: Option<String>,
    tool: Option<String>,
    user: String,
    client: String,
    /// What became of the call (the `outcome` label and the audit event's `decision`).
    pub(crate) outcome: &'static str,
    answered_after: Option<f64>,
}

impl<'a> CallRecord<'a> {
    pub(crate) fn new(tenant: &'a str, resource: &'a str, http_method: &str) -> Self {
        Self {
            tenant,
            resource,
            started: Instant::now(),
            // A GET (the event stream) or DELETE (the end of a session) until a body says more.
            method: Some(http_method.to_owned()),
            tool: None,
            user: String::new(),
            client: String::new(),
            outcome: "passed",
            answered_after: None,
        }
    }

    pub(crate) fn caller(&mut self, caller: &Caller) {
        self.user = caller.text("sub").to_owned();
        self.client = caller.text("client_id").to_owned();
    }

    pub(crate) fn message(&mut self, message: &Message) {
        self.method.clone_from(&message.method);
        if message.method.as_deref() == Some("tools/call") {
            self.tool.clone_from(&message.name);
        }
    }

    /// The MCP server's answer started now.
    pub(crate) fn answered(&mut self) {
        self.answered_after = Some(self.started.elapsed().as_secs_f64());
    }

    /// Counts the call and, for a `tools/call`, writes its audit event.
    pub(crate) fn finish(self, status: u16) {
        let metrics = &crate::metrics::metrics().gateway;
        let method = method_label(self.method.as_deref());
        metrics
            .calls
            .with_label_values(&[self.tenant, self.resource, method, self.outcome])
            .inc();
        if let Some(seconds) = self.answered_after {
            metrics
                .answer_seconds
                .with_label_values(&[self.tenant, self.resource, method])
                .observe(seconds);
        }
        if method != "tools/call" {
            return;
        }
        let tool = self.tool.as_deref().unwrap_or_default();
        metrics
            .tool_calls
            .with_label_values(&[
                self.tenant,
                self.resource,
                tool_label(self.resource, tool),
                self.outcome,
            ])
            .inc();
        let ms = (self.started.elapsed().as_secs_f64() * 1000.0).round() as u64;
        tracing::info!(target: "audit", event = "gateway_call", tenant = self.tenant,
            resource = self.resource, user = %self.user, client_id = %self.client,
            method = "tools/call", tool, decision = self.outcome, status, ms);
    }
}

/// The `method` label of a JSON-RPC method.
fn method_label(method: Option<&str>) -> &'static str {
    match method {
        Some(m) if m.starts_with("notifications/") => "notification",
        Some("GET") => "GET",
        Some("DELETE") => "DELETE",
        Some(m) => METHODS
            .iter()
            .find(|known| **known == m)
            .copied()
            .unwrap_or("other"),
        None => "response",
    }
}

/// The `tool` label of `tool` at `resource`: the name itself for the first
/// `MAX_TOOL_LABELS` names seen per resource (that look like tool names), else `other`. The
/// first name turned away at a resource is said in the log.
fn tool_label<'t>(resource: &str, tool: &'t str) -> &'t str {
    static SEEN: OnceLock<Mutex<HashMap<String, HashSet<String>>>> = OnceLock::new();
    let plausible = !tool.is_empty()
        && tool.len() <= 128
        && tool
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b));
    if !plausible {
        return "other";
    }
    let mut seen = SEEN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    // A name seen before costs a lookup, no allocation.
    if seen.get(resource).is_some_and(|names| names.contains(tool)) {
        return tool;
    }
    let names = seen.entry(resource.to_owned()).or_default();
    if names.len() < MAX_TOOL_LABELS {
        names.insert(tool.to_owned());
        return tool;
    }
    if names.len() == MAX_TOOL_LABELS {
        // One marker past the limit, so that this is said once per resource.
        names.insert(String::new());
        tracing::warn!(
            resource,
            limit = MAX_TOOL_LABELS,
            "the gateway's tool metrics of this resource reached their limit of names; calls of further tools count under tool=\"other\""
        );
    }
    "other"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A log writer into a shared buffer.
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn labels_are_bounded() {
        assert_eq!(method_label(Some("tools/call")), "tools/call");
        assert_eq!(
            method_label(Some("notifications/initialized")),
            "notification"
        );
        assert_eq!(method_label(Some("x/anything")), "other");
        assert_eq!(method_label(None), "response");
        let resource = "https://bounded.example.com/mcp";
        assert_eq!(tool_label(resource, "delete_file"), "delete_file");
        assert_eq!(tool_label(resource, "<script>"), "other");
        // delete_file and these fill the resource's names.
        for i in 1..MAX_TOOL_LABELS {
            tool_label(resource, &format!("t{i}"));
        }
        let logged = Arc::new(Mutex::new(Vec::new()));
        let writer = logged.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Captured(writer.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            assert_eq!(tool_label(resource, "one_more"), "other");
            assert_eq!(tool_label(resource, "another"), "other");
        });
        let logged = String::from_utf8(logged.lock().unwrap().clone()).unwrap();
        assert_eq!(
            logged.matches("reached their limit").count(),
            1,
            "said once: {logged}"
        );
        assert_eq!(
            tool_label(resource, "delete_file"),
            "delete_file",
            "one seen before keeps its label"
        );
    }
}
