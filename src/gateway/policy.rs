//! Which scopes a call needs (`[[resources.gateway.rules]]`): the scopes of every rule that
//! covers its method and the name it acts on. A caller without them is refused with 403
//! `insufficient_scope` naming what to ask for, so that MCP clients step up (the MCP
//! specification's scope challenge) instead of failing.

use wildmatch::WildMatch;

use super::message::Message;
use crate::config::gateway::{GatewayConfig, GatewayRule};

/// The scopes `message` needs that `granted` (space-separated) lacks, if any.
pub(crate) fn missing_scopes(
    gateway: &GatewayConfig,
    message: &Message,
    granted: &str,
) -> Vec<String> {
    let granted: Vec<&str> = granted.split(' ').collect();
    let mut missing: Vec<String> = gateway
        .rules
        .iter()
        .filter(|rule| covers(rule, message))
        .flat_map(|rule| &rule.scopes)
        .filter(|s| !granted.contains(&s.as_str()))
        .cloned()
        .collect();
    missing.sort();
    missing.dedup();
    missing
}

/// Whether `rule` covers `message`.
fn covers(rule: &GatewayRule, message: &Message) -> bool {
    let matches = |globs: &[String], value: Option<&str>| {
        globs.is_empty()
            || value.is_some_and(|v| globs.iter().any(|g| WildMatch::new(g).matches(v)))
    };
    matches(&rule.methods, message.method.as_deref())
        && matches(&rule.names, message.name.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(rules: &str) -> GatewayConfig {
        toml::from_str(&format!("backend = \"http://mcp.internal/mcp\"\n{rules}")).unwrap()
    }

    fn call(method: &str, name: Option<&str>) -> Message {
        Message {
            method: Some(method.into()),
            name: name.map(str::to_owned),
            id: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_call_needs_the_scopes_of_every_rule_that_covers_it() {
        let g = gateway(
            r#"
            [[rules]]
            methods = ["tools/call"]
            names = ["delete_*", "move"]
            scopes = ["files.write"]
            [[rules]]
            names = ["delete_all"]
            scopes = ["files.admin"]
            "#,
        );
        let delete_all = call("tools/call", Some("delete_all"));
        assert_eq!(
            missing_scopes(&g, &delete_all, "files.read"),
            ["files.admin", "files.write"]
        );
        assert_eq!(
            missing_scopes(&g, &delete_all, "files.read files.write"),
            ["files.admin"]
        );
        assert!(missing_scopes(&g, &delete_all, "files.admin files.write").is_empty());
        assert_eq!(
            missing_scopes(&g, &call("tools/call", Some("move")), ""),
            ["files.write"]
        );
        assert!(missing_scopes(&g, &call("tools/call", Some("read")), "").is_empty());
        assert!(
            missing_scopes(&g, &call("tools/list", None), "").is_empty(),
            "a rule with names covers only calls that name something"
        );
        assert!(
            missing_scopes(&g, &call("prompts/get", Some("delete_x")), "").is_empty(),
            "the first rule covers tools/call only"
        );
    }

    #[test]
    fn a_rule_without_methods_or_names_covers_every_message() {
        let g = gateway("[[rules]]\nscopes = [\"files.read\"]");
        assert_eq!(
            missing_scopes(&g, &call("initialize", None), "other"),
            ["files.read"]
        );
        assert!(missing_scopes(&g, &call("ping", None), "files.read").is_empty());
    }
}
