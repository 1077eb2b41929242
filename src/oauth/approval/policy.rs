//! Whether a client needs an administrator's approval: the mapping rules that choose its apps
//! say first (any `approval = "admin"` among them wins; `"none"` only when the rule of every
//! resource says so, since a client exempt for one resource would be exempt for all), then the
//! first `cimd_approval` entry matching its CIMD host, then the tenant's
//! `[registration] approval`.

use crate::config::Tenant;
use crate::config::approval::Approval;
use crate::oauth::mapping::{ClientFacts, choosing_rule};

pub(crate) fn approval_required(tenant: &Tenant, facts: &ClientFacts<'_>) -> bool {
    let mut every_resource_exempt = !tenant.resources().is_empty();
    for resource in tenant.resources() {
        match choosing_rule(tenant, facts, &resource.uri).and_then(|rule| rule.approval) {
            Some(Approval::Admin) => return true,
            Some(Approval::None) => {}
            None => every_resource_exempt = false,
        }
    }
    if every_resource_exempt {
        return false;
    }
    if let Some(host) = facts.cimd_host
        && let Some(entry) = tenant
            .registration()
            .cimd_approval
            .iter()
            .find(|e| e.hosts.iter().any(|p| p.matches(host)))
    {
        return entry.approval == Approval::Admin;
    }
    tenant.registration().approval == Approval::Admin
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RedirectKind;

    fn config(extra: &str) -> Tenant {
        Tenant::of_config(
            toml::from_str(&format!(
                r#"
            upstream = {{ kind = "dev" }}
            [[apps]]
            name = "a"
            client_id = "a"
            credential = {{ kind = "none" }}
            [[apps]]
            name = "b"
            client_id = "b"
            credential = {{ kind = "none" }}
            [[resources]]
            uri = "https://mcp.example/files"
            default = true
            scopes = [{{ name = "files.read", upstream = "files.read" }}]
            {extra}
            "#
            ))
            .unwrap(),
        )
    }

    fn facts(host: Option<&str>) -> ClientFacts<'_> {
        ClientFacts {
            cimd_host: host,
            redirect_kinds: vec![RedirectKind::Loopback],
            software_id: None,
        }
    }

    #[test]
    fn off_by_default() {
        assert!(!approval_required(&config(""), &facts(None)));
        assert!(!approval_required(&config(""), &facts(Some("claude.ai"))));
    }

    #[test]
    fn host_entries_override_the_tenant() {
        let c = config(
            r#"
            [registration]
            approval = "admin"
            cimd_approval = [{ hosts = ["claude.ai"], approval = "none" }]
            "#,
        );
        assert!(approval_required(&c, &facts(None)));
        assert!(approval_required(&c, &facts(Some("evil.example"))));
        assert!(!approval_required(&c, &facts(Some("claude.ai"))));
    }

    #[test]
    fn a_mapping_rule_overrides_hosts_and_tenant() {
        let c = config(
            r#"
            [registration]
            cimd_approval = [{ hosts = ["*"], approval = "none" }]
            [[mapping]]
            app = "b"
            redirect_kinds = ["loopback"]
            approval = "admin"
            "#,
        );
        assert!(approval_required(&c, &facts(Some("claude.ai"))));
        let c = config(
            r#"
            [registration]
            approval = "admin"
            [[mapping]]
            app = "b"
            cimd_hosts = ["vscode.dev"]
            approval = "none"
            "#,
        );
        assert!(!approval_required(&c, &facts(Some("vscode.dev"))));
        assert!(approval_required(&c, &facts(Some("other.example"))));
    }

    #[test]
    fn a_rule_exempts_only_when_it_covers_every_resource() {
        let c = Tenant::of_config(
            toml::from_str::<crate::config::tenant::TenantConfig>(
                r#"
            upstream = { kind = "dev" }
            [[apps]]
            name = "a"
            client_id = "a"
            credential = { kind = "none" }
            [[resources]]
            uri = "https://mcp.example/public"
            default = true
            scopes = [{ name = "r", upstream = "r" }]
            [[resources]]
            uri = "https://mcp.example/files"
            scopes = [{ name = "f", upstream = "f" }]
            [registration]
            approval = "admin"
            [[mapping]]
            app = "a"
            resources = ["https://mcp.example/public"]
            approval = "none"
            "#,
            )
            .unwrap(),
        );
        assert!(
            approval_required(&c, &facts(None)),
            "the files resource falls to the tenant's setting"
        );
    }
}
