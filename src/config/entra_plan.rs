//! `dcr-shim entra plan`: what an Entra admin must create for a tenant file, as code to review
//! and run once instead of clicks in the portal: an Azure CLI script or Terraform (`azuread`
//! provider). For each API the resources name (its Application ID URI): an app registration
//! exposing the scopes, with v2 access tokens. For each app of the file (an existing
//! registration, found by its client id): the Web redirect URI, the delegated permissions with
//! admin consent, and the credential the file uses (certificate, federated credential for
//! Workload Identity or a managed identity; a client secret is left to the admin, since a
//! script that made one would print it).
//!
//! Scope ids are UUIDs derived from the API and scope name (version 5), so the script and the
//! Terraform agree, and running either again changes nothing.

use std::fmt::Write;

use super::entra_checklist::{delegated_permissions, exposed_apis, split_scope};
use super::tenant::{AppConfig, CredentialConfig, Tenant, UpstreamConfig};

/// The APIs the tenant's resources name, with their scopes (`exposed_apis`).
type Apis<'t> = std::collections::BTreeMap<&'t str, Vec<&'t str>>;

/// The namespace of the scope ids (a fixed UUID: the ids must not change between releases).
const SCOPE_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6c0b_5a4e_7d39_4f0e_9a61_2f5d_8e3b_1c47);

/// The id of `scope` exposed by `api`.
fn scope_id(api: &str, scope: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(&SCOPE_ID_NAMESPACE, format!("{api}/{scope}").as_bytes())
}

/// Which kind of code to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// A bash script of Azure CLI (`az`) commands.
    Az,
    /// Terraform for the `azuread` provider (2.51 or newer).
    Terraform,
}

/// The plan for `t`, or why there is none (not an Entra tenant).
pub fn entra_plan(t: &Tenant, format: PlanFormat) -> Result<String, String> {
    let UpstreamConfig::Entra { directory_id, .. } = &t.config.upstream else {
        return Err(format!(
            "tenant '{}' is not on Entra (upstream {}): there is nothing to create there",
            t.id,
            t.config.upstream.kind()
        ));
    };
    distinct_names(t)?;
    Ok(match format {
        PlanFormat::Az => az_script(t, directory_id),
        PlanFormat::Terraform => terraform(t, directory_id),
    })
}

/// Refuses a file whose APIs, apps or one API's scopes would share a variable or resource
/// name (`api://files` and `https://files`; `files.read` and `files_read`): the plan would
/// otherwise grant on the wrong API or not apply.
fn distinct_names(t: &Tenant) -> Result<(), String> {
    let mut seen: std::collections::HashMap<String, String> = Default::default();
    let mut claim = |name: String, what: String| match seen.insert(name.clone(), what.clone()) {
        Some(other) if other != what => Err(format!(
            "{other} and {what} would both be named {name} in the plan; rename one"
        )),
        _ => Ok(()),
    };
    for (api, scopes) in &exposed_apis(t) {
        claim(api_ident(api), format!("the API {api}"))?;
        for scope in scopes {
            claim(
                format!("{}_{}", api_ident(api), ident(scope)),
                format!("the scope {api}/{scope}"),
            )?;
        }
    }
    for app in &t.config.apps {
        if ident(&app.name).is_empty() {
            return Err(format!(
                "the app '{}' has no letter or digit to name it by in the plan; rename it",
                app.name
            ));
        }
        claim(
            format!("app_{}", ident(&app.name)),
            format!("the app '{}'", app.name),
        )?;
    }
    Ok(())
}

/// A name usable in bash variables and Terraform addresses: lower-case letters, digits and
/// single underscores.
fn ident(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_owned()
}

/// The name of an API's variable or resource: `api_` and its URI without the scheme.
fn api_ident(api: &str) -> String {
    format!("api_{}", ident(api.rsplit("://").next().unwrap_or(api)))
}

/// The tenant file's name, for the header.
fn file_name(t: &Tenant) -> String {
    t.file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A comment for a relative certificate path, which resolves against the directory the plan
/// is run from (the shim resolves it against its own working directory).
fn relative_note(path: &std::path::Path) -> &'static str {
    if path.is_relative() {
        "# The certificate's path is relative: run this from the directory the shim runs in.\n"
    } else {
        ""
    }
}

/// `s` as a single-quoted shell word.
fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r#"'"'"'"#))
}

/// `s` as a JSON string.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// `s` as a Terraform string: JSON's escapes, and its template sequences (`${`, `%{`) escaped,
/// so that a description in a tenant file cannot make `terraform apply` evaluate anything.
fn hcl_string(s: &str) -> String {
    quoted(s).replace("${", "$${").replace("%{", "%%{")
}

/// The description of a scope: what the resource says of it, else its name.
fn scope_description<'a>(t: &'a Tenant, api: &str, scope: &'a str) -> &'a str {
    t.config
        .resources
        .iter()
        .flat_map(|r| &r.scopes)
        .find(|s| split_scope(&s.upstream) == (api, scope))
        .and_then(|s| s.description.as_deref())
        .unwrap_or(scope)
}

fn az_script(t: &Tenant, directory_id: &str) -> String {
    let mut s = az_preamble(t, directory_id);
    let apis = exposed_apis(t);
    for (api, scopes) in &apis {
        s.push_str(&az_api(t, api, scopes));
    }
    for app in &t.config.apps {
        s.push_str(&az_app(t, &apis, app, directory_id));
    }
    s
}

/// The script's start: the directory check and the shell functions the steps use.
fn az_preamble(t: &Tenant, directory_id: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "#!/usr/bin/env bash
# What Entra needs for the dcr-shim tenant '{id}' ({file}), written by `dcr-shim entra plan`.
# Review it, then run it signed in to the directory as an admin who may create app
# registrations and grant admin consent (Azure CLI 2.50 or newer). Running it again changes
# nothing. The tenant's redirect URI is {issuer}/callback.
set -euo pipefail

directory={directory}
if [[ \"$(az account show --query tenantId -o tsv)\" != \"$directory\" ]]; then
  echo \"sign in to the directory $directory first: az login --tenant $directory --allow-no-subscriptions\" >&2
  exit 1
fi

# api_app URI NAME: the appId of the app registration whose Application ID URI is URI, made
# (named NAME) when there is none.
api_app() {{
  local id
  id=\"$(az ad app list --identifier-uri \"$1\" --query '[0].appId' -o tsv)\"
  if [[ -z \"$id\" ]]; then
    id=\"$(az ad app create --display-name \"$2\" --query appId -o tsv)\"
    az ad app update --id \"$id\" --identifier-uris \"$1\"
  fi
  az ad sp show --id \"$id\" >/dev/null 2>&1 || az ad sp create --id \"$id\" >/dev/null
  printf '%s\\n' \"$id\"
}}

# add_redirect_uri APP URI: adds URI to the app's Web redirect URIs, keeping the others.
add_redirect_uri() {{
  local -a uris
  mapfile -t uris < <(az ad app show --id \"$1\" --query 'web.redirectUris[]' -o tsv)
  local u
  for u in \"${{uris[@]}}\"; do [[ \"$u\" == \"$2\" ]] && return 0; done
  az ad app update --id \"$1\" --web-redirect-uris \"${{uris[@]}}\" \"$2\"
}}",
        id = t.id,
        file = file_name(t),
        issuer = t.issuer,
        directory = sh(directory_id),
    );
    s
}

/// An API the tenant's resources name: its app registration and its scopes.
fn az_api(t: &Tenant, api: &str, scopes: &[&str]) -> String {
    let mut s = String::new();
    let var = api_ident(api);
    let _ = writeln!(
        s,
        "\n# The API {api}: its scopes, and v2 access tokens (the issuer MCP servers check). The\n# PATCH sets the whole list of scopes: Graph refuses to drop a scope still enabled, so\n# an API that exposes others must keep them here or disable them first.\n{var}=\"$(api_app {} {})\"",
        sh(api),
        sh(&format!("MCP API {api}"))
    );
    let scope_json: Vec<String> = scopes
        .iter()
        .map(|scope| {
            let about = scope_description(t, api, scope);
            format!(
                "{{\"id\":{},\"value\":{},\"type\":\"User\",\"isEnabled\":true,\"adminConsentDisplayName\":{},\"adminConsentDescription\":{},\"userConsentDisplayName\":{},\"userConsentDescription\":{}}}",
                quoted(&scope_id(api, scope).to_string()),
                quoted(scope),
                quoted(about),
                quoted(about),
                quoted(about),
                quoted(about)
            )
        })
        .collect();
    let body = format!(
        "{{\"api\":{{\"requestedAccessTokenVersion\":2,\"oauth2PermissionScopes\":[{}]}}}}",
        scope_json.join(",")
    );
    let _ = writeln!(
        s,
        "az rest --method PATCH --uri \"https://graph.microsoft.com/v1.0/applications(appId='${var}')\" \\\n  --headers Content-Type=application/json --body {}",
        sh(&body)
    );
    s
}

/// One of the tenant's apps: its redirect URI, permissions, consent and credential.
fn az_app(t: &Tenant, apis: &Apis<'_>, app: &AppConfig, directory_id: &str) -> String {
    let mut s = String::new();
    let var = format!("app_{}", ident(&app.name));
    let _ = writeln!(
        s,
        "\n# The app '{}': where Entra sends the login back, what it may ask for, how it proves itself.\n{var}={}\naz ad sp show --id \"${var}\" >/dev/null 2>&1 || az ad sp create --id \"${var}\" >/dev/null\nadd_redirect_uri \"${var}\" {}",
        app.name,
        sh(&app.client_id),
        sh(&format!("{}/callback", t.issuer))
    );
    for permission in delegated_permissions(t, app) {
        let (api, scope) = split_scope(permission);
        if api.is_empty() || !apis.contains_key(api) {
            continue;
        }
        let _ = writeln!(
            s,
            "az ad app permission add --id \"${var}\" --api \"${}\" --api-permissions {}=Scope",
            api_ident(api),
            scope_id(api, scope)
        );
    }
    let _ = writeln!(s, "az ad app permission admin-consent --id \"${var}\"");
    s.push_str(&az_credential(
        &var,
        &app.name,
        &app.credential,
        directory_id,
    ));
    s
}

fn az_credential(var: &str, name: &str, c: &CredentialConfig, directory_id: &str) -> String {
    let federated = |issuer: &str, subject: &str| {
        format!(
            "az ad app federated-credential show --id \"${var}\" --federated-credential-id {fic} >/dev/null 2>&1 \\\n  || az ad app federated-credential create --id \"${var}\" --parameters \"{{\\\"name\\\":\\\"{fic}\\\",\\\"issuer\\\":\\\"{issuer}\\\",\\\"subject\\\":\\\"{subject}\\\",\\\"audiences\\\":[\\\"api://AzureADTokenExchange\\\"]}}\"\n",
            fic = format!("dcr-shim-{}", ident(name)).replace('_', "-"),
        )
    };
    match c {
        CredentialConfig::PrivateKeyJwt {
            certificate_file, ..
        } => format!(
            "{}az ad app credential reset --id \"${var}\" --append --cert @{}\n",
            relative_note(certificate_file),
            sh(&certificate_file.display().to_string())
        ),
        CredentialConfig::Federated { .. } => format!(
            "# Workload Identity: the cluster's OIDC issuer (az aks show --query oidcIssuerProfile.issuerUrl)\n# and the shim's service account.\n: \"${{AKS_OIDC_ISSUER:?set AKS_OIDC_ISSUER to the OIDC issuer URL of the cluster}}\"\n{}",
            federated(
                "$AKS_OIDC_ISSUER",
                "system:serviceaccount:${NAMESPACE:-dcr-shim}:${SERVICE_ACCOUNT:-dcr-shim}"
            )
        ),
        CredentialConfig::ManagedIdentity { .. } => format!(
            "# The managed identity the shim runs as, by its object (principal) id.\n: \"${{MANAGED_IDENTITY_OBJECT_ID:?set MANAGED_IDENTITY_OBJECT_ID to the object id of the identity}}\"\n{}",
            federated(
                &format!("https://login.microsoftonline.com/{directory_id}/v2.0"),
                "$MANAGED_IDENTITY_OBJECT_ID"
            )
        ),
        CredentialConfig::ClientSecret { .. } => format!(
            "# A client secret is made by hand, so that no script prints it; put it where the tenant\n# file reads it, and note its end date (Entra refuses it afterwards, AADSTS7000222):\n#   az ad app credential reset --id \"${var}\" --append --display-name dcr-shim --years 1\n"
        ),
        CredentialConfig::None => String::new(),
    }
}

fn terraform(t: &Tenant, directory_id: &str) -> String {
    let mut s = terraform_preamble(t, directory_id);
    let apis = exposed_apis(t);
    for (api, scopes) in &apis {
        s.push_str(&terraform_api(t, api, scopes));
    }
    for app in &t.config.apps {
        s.push_str(&terraform_app(t, &apis, app, directory_id));
    }
    s
}

/// The configuration's start: the provider, and the variables the apps' credentials need.
fn terraform_preamble(t: &Tenant, directory_id: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# What Entra needs for the dcr-shim tenant '{id}' ({file}), written by `dcr-shim entra plan`.
# Review it, then `terraform init && terraform apply` as an admin of directory {directory_id}.
# The apps of the tenant file exist already (found by client id); the APIs are created.
terraform {{
  required_providers {{
    azuread = {{
      source  = \"hashicorp/azuread\"
      version = \">= 2.51\"
    }}
  }}
}}

provider \"azuread\" {{
  tenant_id = {directory}
}}",
        id = t.id,
        file = file_name(t),
        directory = hcl_string(directory_id),
    );
    let any_federated = t
        .config
        .apps
        .iter()
        .any(|a| matches!(a.credential, CredentialConfig::Federated { .. }));
    let any_identity = t
        .config
        .apps
        .iter()
        .any(|a| matches!(a.credential, CredentialConfig::ManagedIdentity { .. }));
    if any_federated {
        s.push_str(
            "\nvariable \"aks_oidc_issuer\" {\n  description = \"The AKS cluster's OIDC issuer URL (az aks show --query oidcIssuerProfile.issuerUrl)\"\n  type        = string\n}\n\nvariable \"service_account_subject\" {\n  description = \"The shim's Kubernetes service account\"\n  type        = string\n  default     = \"system:serviceaccount:dcr-shim:dcr-shim\"\n}\n",
        );
    }
    if any_identity {
        s.push_str(
            "\nvariable \"managed_identity_object_id\" {\n  description = \"The object (principal) id of the managed identity the shim runs as\"\n  type        = string\n}\n",
        );
    }
    s
}

/// An API the tenant's resources name: its app registration, URI and scopes.
fn terraform_api(t: &Tenant, api: &str, scopes: &[&str]) -> String {
    let mut s = String::new();
    let r = api_ident(api);
    let _ = writeln!(
        s,
        "\n# The API {api}: its scopes, and v2 access tokens (the issuer MCP servers check).\nresource \"azuread_application_registration\" \"{r}\" {{\n  display_name                   = {}\n  requested_access_token_version = 2\n}}\n\nresource \"azuread_application_identifier_uri\" \"{r}\" {{\n  application_id = azuread_application_registration.{r}.id\n  identifier_uri = {}\n}}\n\nresource \"azuread_service_principal\" \"{r}\" {{\n  client_id = azuread_application_registration.{r}.client_id\n}}",
        hcl_string(&format!("MCP API {api}")),
        hcl_string(api)
    );
    for scope in scopes {
        let about = scope_description(t, api, scope);
        let _ = writeln!(
            s,
            "\nresource \"azuread_application_permission_scope\" \"{r}_{}\" {{\n  application_id             = azuread_application_registration.{r}.id\n  scope_id                   = {}\n  value                      = {}\n  type                       = \"User\"\n  admin_consent_display_name = {}\n  admin_consent_description  = {}\n  user_consent_display_name  = {}\n  user_consent_description   = {}\n}}",
            ident(scope),
            hcl_string(&scope_id(api, scope).to_string()),
            hcl_string(scope),
            hcl_string(about),
            hcl_string(about),
            hcl_string(about),
            hcl_string(about)
        );
    }
    s
}

/// One of the tenant's apps: its redirect URI, permissions, consent and credential.
fn terraform_app(t: &Tenant, apis: &Apis<'_>, app: &AppConfig, directory_id: &str) -> String {
    let mut s = String::new();
    let r = format!("app_{}", ident(&app.name));
    let _ = writeln!(
        s,
        "\n# The app '{}': where Entra sends the login back, what it may ask for, how it proves itself.\ndata \"azuread_application\" \"{r}\" {{\n  client_id = {}\n}}\n\n# This resource owns the app's whole list of Web redirect URIs: add any others it needs here.\nresource \"azuread_application_redirect_uris\" \"{r}\" {{\n  application_id = data.azuread_application.{r}.id\n  type           = \"Web\"\n  redirect_uris  = [{}]\n}}",
        app.name,
        hcl_string(&app.client_id),
        hcl_string(&format!("{}/callback", t.issuer))
    );
    let mut by_api: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for permission in delegated_permissions(t, app) {
        let (api, scope) = split_scope(permission);
        if apis.contains_key(api) {
            by_api.entry(api).or_default().push(scope);
        }
    }
    for (api, scopes) in &by_api {
        let a = api_ident(api);
        let list = |each: &dyn Fn(&str) -> String| {
            scopes
                .iter()
                .map(|s| each(s))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            s,
            "\nresource \"azuread_application_api_access\" \"{r}_{a}\" {{\n  application_id = data.azuread_application.{r}.id\n  api_client_id  = azuread_application_registration.{a}.client_id\n  scope_ids      = [{}]\n  depends_on     = [{depends}]\n}}\n\n# Admin consent for the directory's users.\nresource \"azuread_service_principal_delegated_permission_grant\" \"{r}_{a}\" {{\n  service_principal_object_id          = azuread_service_principal.{r}.object_id\n  resource_service_principal_object_id = azuread_service_principal.{a}.object_id\n  claim_values                         = [{}]\n  depends_on                           = [{depends}]\n}}",
            list(&|scope| hcl_string(&scope_id(api, scope).to_string())),
            list(&|scope| hcl_string(scope)),
            depends =
                list(&|scope| format!("azuread_application_permission_scope.{a}_{}", ident(scope))),
        );
    }
    let _ = writeln!(
        s,
        "\nresource \"azuread_service_principal\" \"{r}\" {{\n  client_id    = {}\n  use_existing = true\n}}",
        hcl_string(&app.client_id)
    );
    s.push_str(&terraform_credential(
        &r,
        &app.name,
        &app.credential,
        directory_id,
    ));
    s
}

fn terraform_credential(r: &str, name: &str, c: &CredentialConfig, directory_id: &str) -> String {
    let federated = |issuer: &str, subject: &str| {
        format!(
            "\nresource \"azuread_application_federated_identity_credential\" \"{r}\" {{\n  application_id = data.azuread_application.{r}.id\n  display_name   = {}\n  issuer         = {issuer}\n  subject        = {subject}\n  audiences      = [\"api://AzureADTokenExchange\"]\n}}\n",
            hcl_string(&format!("dcr-shim-{}", ident(name)).replace('_', "-"))
        )
    };
    match c {
        CredentialConfig::PrivateKeyJwt {
            certificate_file, ..
        } => format!(
            "\n{}resource \"azuread_application_certificate\" \"{r}\" {{\n  application_id = data.azuread_application.{r}.id\n  type           = \"AsymmetricX509Cert\"\n  value          = file({})\n}}\n",
            relative_note(certificate_file),
            hcl_string(&certificate_file.display().to_string())
        ),
        CredentialConfig::Federated { .. } => {
            federated("var.aks_oidc_issuer", "var.service_account_subject")
        }
        CredentialConfig::ManagedIdentity { .. } => federated(
            &hcl_string(&format!(
                "https://login.microsoftonline.com/{directory_id}/v2.0"
            )),
            "var.managed_identity_object_id",
        ),
        CredentialConfig::ClientSecret { .. } => "\n# A client secret is made by hand (azuread_application_password would keep it in the\n# Terraform state); put it where the tenant file reads it, and note its end date.\n".to_owned(),
        CredentialConfig::None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_ids_are_stable_and_distinct() {
        assert_eq!(
            scope_id("api://mcp-files", "files.read"),
            scope_id("api://mcp-files", "files.read")
        );
        assert_ne!(
            scope_id("api://mcp-files", "files.read"),
            scope_id("api://mcp-files", "files.write")
        );
        assert_eq!(sh("it's"), r#"'it'"'"'s'"#);
        assert_eq!(api_ident("api://mcp-files"), "api_mcp_files");
        // A description cannot make Terraform evaluate anything.
        assert_eq!(
            hcl_string("${file(\"~/.azure/x\")} %{if true}"),
            r#""$${file(\"~/.azure/x\")} %%{if true}""#
        );
        assert_eq!(ident("Trusted agents!"), "trusted_agents");
    }
}
