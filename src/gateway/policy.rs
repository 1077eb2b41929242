//! What the rules (`[[resources.gateway.rules]]`) say of a call: a rule covers it by its
//! method and the name it acts on (globs); a covered call needs the rule's scopes, and, when
//! the rule names roles, groups, clients or users, a caller among them. A caller the rules do
//! not name is refused outright (asking again cannot help); one that lacks only scopes is
//! refused with 403 `insufficient_scope` naming what to ask for, so that MCP clients step up
//! (the MCP specification's scope challenge). A covered call may also need a sign-in strength
//! (the rule's `acr_values`, or those of a scope it needs): a caller without it is asked to sign
//! in again with it (RFC 9470 `insufficient_user_authentication`). Lists of tools, prompts and
//! resources leave out what the caller may not call (`listing.rs`).

use serde_json::{Map, Value};

use super::message::Message;
use crate::config::gateway::{GatewayConfig, GatewayRule, Glob};
use crate::config::resource::ScopeConfig;

/// Who calls, as the rules read it from the access token's claims.
#[derive(Debug, Default)]
pub(crate) struct Who<'a> {
    scopes: Vec<&'a str>,
    roles: Vec<&'a str>,
    groups: Vec<&'a str>,
    client: &'a str,
    user: &'a str,
    /// How the user signed in: the token's `acr`, and Entra's authentication contexts.
    acr: &'a str,
    acrs: Vec<&'a str>,
}

impl<'a> Who<'a> {
    pub(crate) fn of(claims: &'a Map<String, Value>) -> Self {
        let text = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
        // A claim that holds one value or an array of them (Entra's `roles` and `groups` are
        // arrays; a single value copied as a string counts too).
        let list = |k: &str| -> Vec<&'a str> {
            match claims.get(k) {
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
                Some(Value::String(s)) => vec![s.as_str()],
                _ => Vec::new(),
            }
        };
        Self {
            scopes: text("scope").split(' ').filter(|s| !s.is_empty()).collect(),
            roles: list("roles"),
            groups: list("groups"),
            client: text("client_id"),
            user: text("sub"),
            acr: text("acr"),
            acrs: list("acrs"),
        }
    }

    /// Whether the caller signed in with one of `values` (none: any sign-in will do).
    fn signed_in_with(&self, values: &[String]) -> bool {
        values.is_empty()
            || values
                .iter()
                .any(|v| (!self.acr.is_empty() && v == self.acr) || self.acrs.contains(&v.as_str()))
    }

    /// The scopes the caller holds.
    pub(crate) fn scopes(&self) -> &[&'a str] {
        &self.scopes
    }
}

/// What the rules decide of a call.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Allow,
    /// The caller lacks these scopes (sorted, once each).
    NeedsScopes(Vec<String>),
    /// The caller is not among those a rule names; why, for the answer and the log.
    Forbidden(String),
    /// The caller must sign in again with one of these (`acr_values`, sorted, once each).
    NeedsSignIn(Vec<String>),
}

/// The rules' decision on `message` from `who`; `scopes` are the resource's, some of which
/// stand for a sign-in strength.
pub(crate) fn decide(
    gateway: &GatewayConfig,
    scopes: &[ScopeConfig],
    message: &Message,
    who: &Who<'_>,
) -> Decision {
    let covering: Vec<&GatewayRule> = gateway
        .rules
        .iter()
        .filter(|r| covers(r, message))
        .collect();
    if let Some(why) = covering.iter().find_map(|r| not_among(r, who)) {
        return Decision::Forbidden(why);
    }
    let mut missing: Vec<String> = covering
        .iter()
        .flat_map(|r| &r.scopes)
        .filter(|s| !who.scopes.contains(&s.as_str()))
        .cloned()
        .collect();
    missing.sort();
    missing.dedup();
    if !missing.is_empty() {
        return Decision::NeedsScopes(missing);
    }
    let scope_strength = |name: &String| {
        scopes
            .iter()
            .find(|s| &s.name == name)
            .map(|s| s.acr_values.as_slice())
            .unwrap_or_default()
    };
    let mut sign_in: Vec<String> = covering
        .iter()
        .flat_map(|r| {
            std::iter::once(r.acr_values.as_slice()).chain(r.scopes.iter().map(scope_strength))
        })
        .filter(|values| !who.signed_in_with(values))
        .flatten()
        .cloned()
        .collect();
    sign_in.sort();
    sign_in.dedup();
    if sign_in.is_empty() {
        Decision::Allow
    } else {
        Decision::NeedsSignIn(sign_in)
    }
}

/// Why `who` is not among the callers `rule` names, if it is not.
fn not_among(rule: &GatewayRule, who: &Who<'_>) -> Option<String> {
    let one_of = |allowed: &[String], held: &[&str]| {
        allowed.is_empty() || allowed.iter().any(|a| held.contains(&a.as_str()))
    };
    if !one_of(&rule.roles, &who.roles) {
        return Some(format!(
            "the call needs one of the app roles {}",
            rule.roles.join(", ")
        ));
    }
    if !one_of(&rule.groups, &who.groups) {
        return Some("the call needs membership of a group the operator named".into());
    }
    if !one_of(&rule.clients, &[who.client]) {
        return Some("this client may not make the call".into());
    }
    if !one_of(&rule.users, &[who.user]) {
        return Some("this user may not make the call".into());
    }
    None
}

/// Whether `rule` covers `message`.
fn covers(rule: &GatewayRule, message: &Message) -> bool {
    let matches = |globs: &[Glob], value: Option<&str>| {
        globs.is_empty() || value.is_some_and(|v| globs.iter().any(|g| g.matches(v)))
    };
    matches(&rule.methods, message.method.as_deref())
        && (matches(&rule.names, message.name.as_deref())
            || (message.normal_name.is_some()
                && matches(&rule.names, message.normal_name.as_deref())))
}

/// Whether any rule names callers (so that lists may need filtering).
pub(crate) fn names_callers(gateway: &GatewayConfig) -> bool {
    gateway.rules.iter().any(GatewayRule::names_callers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gateway(rules: &str) -> GatewayConfig {
        toml::from_str(&format!("backend = \"http://mcp.internal/mcp\"\n{rules}")).unwrap()
    }

    fn call(method: &str, name: Option<&str>) -> Message {
        Message {
            method: Some(method.into()),
            name: name.map(str::to_owned),
            normal_name: None,
            id: Value::Null,
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn needs(scopes: &[&str]) -> Decision {
        Decision::NeedsScopes(scopes.iter().map(|s| (*s).to_owned()).collect())
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
        let with = |scope: &str| claims(json!({"scope": scope}));
        let decide_for = |m: &Message, scope: &str| decide(&g, &[], m, &Who::of(&with(scope)));
        let delete_all = call("tools/call", Some("delete_all"));
        assert_eq!(
            decide_for(&delete_all, "files.read"),
            needs(&["files.admin", "files.write"])
        );
        assert_eq!(
            decide_for(&delete_all, "files.read files.write"),
            needs(&["files.admin"])
        );
        assert_eq!(
            decide_for(&delete_all, "files.admin files.write"),
            Decision::Allow
        );
        assert_eq!(
            decide_for(&call("tools/call", Some("move")), ""),
            needs(&["files.write"])
        );
        assert_eq!(
            decide_for(&call("tools/call", Some("read")), ""),
            Decision::Allow
        );
        assert_eq!(
            decide_for(&call("tools/list", None), ""),
            Decision::Allow,
            "a rule with names covers only calls that name something"
        );
        assert_eq!(
            decide_for(&call("prompts/get", Some("delete_x")), ""),
            Decision::Allow,
            "the first rule covers tools/call only"
        );
    }

    #[test]
    fn a_rule_without_methods_or_names_covers_every_message() {
        let g = gateway("[[rules]]\nscopes = [\"files.read\"]");
        let other = claims(json!({"scope": "other"}));
        assert_eq!(
            decide(&g, &[], &call("initialize", None), &Who::of(&other)),
            needs(&["files.read"])
        );
        let read = claims(json!({"scope": "files.read"}));
        assert_eq!(
            decide(&g, &[], &call("ping", None), &Who::of(&read)),
            Decision::Allow
        );
    }

    #[test]
    fn a_rule_that_names_callers_refuses_the_others_whatever_their_scopes() {
        let g = gateway(
            r#"
            [[rules]]
            names = ["purge"]
            roles = ["Files.Admin", "Files.Owner"]
            scopes = ["files.write"]
            [[rules]]
            names = ["audit"]
            clients = ["ops-agent"]
            users = ["ada", "bob"]
            [[rules]]
            names = ["hr_*"]
            groups = ["g-hr"]
            "#,
        );
        let purge = call("tools/call", Some("purge"));
        let admin = claims(json!({"scope": "files.read", "roles": ["Files.Admin"]}));
        assert_eq!(
            decide(&g, &[], &purge, &Who::of(&admin)),
            needs(&["files.write"]),
            "a role, then scopes"
        );
        let reader = claims(json!({"scope": "files.write", "roles": ["Files.Reader"]}));
        assert!(matches!(
            decide(&g, &[], &purge, &Who::of(&reader)),
            Decision::Forbidden(_)
        ));
        let single = claims(json!({"scope": "files.write", "roles": "Files.Owner"}));
        assert_eq!(
            decide(&g, &[], &purge, &Who::of(&single)),
            Decision::Allow,
            "a role as a string"
        );

        let audit = call("tools/call", Some("audit"));
        let ops_ada = claims(json!({"client_id": "ops-agent", "sub": "ada"}));
        assert_eq!(decide(&g, &[], &audit, &Who::of(&ops_ada)), Decision::Allow);
        let other_client = claims(json!({"client_id": "chat", "sub": "ada"}));
        assert!(matches!(
            decide(&g, &[], &audit, &Who::of(&other_client)),
            Decision::Forbidden(_)
        ));
        let other_user = claims(json!({"client_id": "ops-agent", "sub": "eve"}));
        assert!(matches!(
            decide(&g, &[], &audit, &Who::of(&other_user)),
            Decision::Forbidden(_)
        ));

        let hr = call("tools/call", Some("hr_salaries"));
        let member = claims(json!({"groups": ["g-eng", "g-hr"]}));
        assert_eq!(decide(&g, &[], &hr, &Who::of(&member)), Decision::Allow);
        assert!(matches!(
            decide(&g, &[], &hr, &Who::of(&claims(json!({})))),
            Decision::Forbidden(_)
        ));
        assert!(names_callers(&g));
    }

    #[test]
    fn a_call_may_need_a_sign_in_strength_of_its_rule_or_of_a_scope_it_needs() {
        let g = gateway(
            r#"
            [[rules]]
            names = ["wipe"]
            acr_values = ["c2"]
            [[rules]]
            names = ["delete_*"]
            scopes = ["files.delete"]
            "#,
        );
        let scopes: Vec<ScopeConfig> = toml::from_str::<toml::Table>(
            r#"s = [
              { name = "files.read", upstream = "api://f/Files.Read" },
              { name = "files.delete", upstream = "api://f/Files.Delete", acr_values = ["c1", "urn:mfa"] },
            ]"#,
        )
        .unwrap()["s"]
            .clone()
            .try_into()
            .unwrap();
        let decide_for = |name: &str, who: Value| {
            decide(
                &g,
                &scopes,
                &call("tools/call", Some(name)),
                &Who::of(&claims(who)),
            )
        };
        let sign_in =
            |v: &[&str]| Decision::NeedsSignIn(v.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(decide_for("wipe", json!({})), sign_in(&["c2"]));
        assert_eq!(
            decide_for("wipe", json!({"acrs": ["c1", "c2"]})),
            Decision::Allow
        );
        assert_eq!(decide_for("wipe", json!({"acr": "c2"})), Decision::Allow);
        assert_eq!(
            decide_for("delete_x", json!({"scope": "files.read"})),
            needs(&["files.delete"]),
            "the scope first: asking for it asks for the strength too"
        );
        assert_eq!(
            decide_for("delete_x", json!({"scope": "files.delete"})),
            sign_in(&["c1", "urn:mfa"])
        );
        assert_eq!(
            decide_for(
                "delete_x",
                json!({"scope": "files.delete", "acr": "urn:mfa"})
            ),
            Decision::Allow
        );
        assert_eq!(
            decide_for("delete_x", json!({"scope": "files.delete", "acrs": "c1"})),
            Decision::Allow,
            "acrs as a string"
        );
        assert_eq!(decide_for("read", json!({})), Decision::Allow);
    }
}
