//! `dcr-shim check` and `serve` on broken tenant files.

use std::process::Command;

fn run(args: &[&str], tenants: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dcr-shim"))
        .args(args)
        .arg("--tenants")
        .arg(tenants)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_names_the_file_and_field_of_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.toml"),
        r#"
upstream = { kind = "oidc", issuer = "https://idp.example.com" }
[[apps]]
name = "a"
client_id = ""
credential = { kind = "client_secret", secret_env = "DCR_SHIM_TEST_UNSET_VARIABLE" }
[[resources]]
uri = "https://mcp.example.com/files"
scopes = []
[[mapping]]
app = "missing"
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("typo.toml"),
        "upstream = { kind = \"dev\" }\n[[resources]]\nurl = \"x\"\n",
    )
    .unwrap();
    let (code, out) = run(&["check"], dir.path());
    assert_eq!(code, 1, "{out}");
    for expected in [
        "broken.toml: apps[0].client_id:",
        "broken.toml: apps[0].credential.secret_env: the environment variable DCR_SHIM_TEST_UNSET_VARIABLE is not set",
        "broken.toml: resources[0].scopes: at least one scope",
        "broken.toml: mapping[0].app: 'missing' is not the name of an app",
        "typo.toml: resources[0].url: unknown field `url`",
    ] {
        assert!(out.contains(expected), "missing '{expected}' in:\n{out}");
    }
    // serve refuses with the same report.
    let data = tempfile::tempdir().unwrap();
    let (code, serve_out) = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.path().to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 1);
    assert!(
        serve_out.contains("broken.toml: mapping[0].app"),
        "{serve_out}"
    );
}

#[test]
fn check_accepts_the_shipped_tenants() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants");
    let (code, out) = run(&["check"], &shipped);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("tenant 'demo'"));
    assert!(
        out.contains("tenant 'ema-demo'"),
        "the zero-touch demo tenant: {out}"
    );
    // Regression (issue 22, item 9): settings that widen access are said, defaults included.
    assert!(
        out.contains(
            "registration: open (dcr = true): any client on the network may register itself"
        ),
        "{out}"
    );
    assert!(
        out.contains("client metadata documents: from any host"),
        "{out}"
    );
    assert!(out.contains("logins without a browser (ID-JAG)"), "{out}");
    assert!(
        out.contains("approval: off: new clients are usable at once"),
        "{out}"
    );
}

/// Issue 24: the approval settings are checked (a webhook is always signed, with a long
/// enough private key, over https or loopback) and said, each exception included.
#[test]
fn check_explains_and_checks_the_approval_settings() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("webhook.key");
    crate::helpers::write_private(&key, &"k".repeat(40));
    let short = dir.path().join("short.key");
    crate::helpers::write_private(&short, "too short");
    let base = format!(
        "{}[[apps]]\nname = \"a\"\nclient_id = \"a\"\ncredential = {{ kind = \"none\" }}\n[[apps]]\nname = \"b\"\nclient_id = \"b\"\ncredential = {{ kind = \"none\" }}\n",
        crate::helpers::DEV_TENANT
    );
    std::fs::write(
        dir.path().join("gate.toml"),
        format!(
            r#"{base}[[mapping]]
app = "b"
software_ids = ["ops"]
approval = "none"
[registration]
approval = "admin"
cimd_approval = [{{ hosts = ["claude.ai", "*.vscode.dev"], approval = "none" }}]
[approval]
max_pending = 50
pending_lifetime = "7d"
webhook_url = "https://hooks.example.com/approvals"
webhook_secret_file = {key:?}
"#
        ),
    )
    .unwrap();
    let (code, out) = run(&["check"], dir.path());
    assert_eq!(code, 0, "{out}");
    for line in [
        "approval: new clients wait for an administrator (approval = \"admin\"); at most 50 requests wait, each for 7days",
        "approval: the clients of claude.ai, *.vscode.dev are usable at once (cimd_approval)",
        "approval: the clients mapping[0] maps onto b are usable at once",
        "approval: each new request is announced to hooks.example.com (signed webhook)",
    ] {
        assert!(out.contains(line), "missing '{line}' in:\n{out}");
    }

    let bad = tempfile::tempdir().unwrap();
    for (name, table) in [
        (
            "unsigned",
            "webhook_url = \"https://hooks.example.com/a\"".to_owned(),
        ),
        (
            "plain",
            format!("webhook_url = \"http://hooks.example.com/a\"\nwebhook_secret_file = {key:?}"),
        ),
        (
            "weak",
            format!(
                "webhook_url = \"https://hooks.example.com/a\"\nwebhook_secret_file = {short:?}"
            ),
        ),
        (
            "empty",
            "max_pending = 0\npending_lifetime = \"5m\"".to_owned(),
        ),
    ] {
        std::fs::write(
            bad.path().join(format!("{name}.toml")),
            format!("{base}[approval]\n{table}\n"),
        )
        .unwrap();
    }
    std::fs::write(
        bad.path().join("nodocs.toml"),
        format!("{base}[registration]\ncimd = false\ncimd_approval = [{{ hosts = [], approval = \"admin\" }}]\n"),
    )
    .unwrap();
    let (code, out) = run(&["check"], bad.path());
    assert_eq!(code, 1, "{out}");
    for expected in [
        "unsigned.toml: approval.webhook_secret_file: is required with webhook_url",
        "plain.toml: approval.webhook_url: 'http://hooks.example.com/a' must use https",
        "weak.toml: approval.webhook_secret_file:",
        "fewer than 32 characters",
        "empty.toml: approval.pending_lifetime: must be at least 1h",
        "empty.toml: approval.max_pending: must be between 1 and 100000",
        "nodocs.toml: registration.cimd_approval[0].hosts: is empty",
        "nodocs.toml: registration.cimd_approval: applies to client metadata documents, which are off",
    ] {
        assert!(out.contains(expected), "missing '{expected}' in:\n{out}");
    }
}

#[tokio::test]
async fn the_dev_idp_refuses_to_listen_beyond_loopback() {
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    crate::helpers::write_tenants(tenants.path(), None);
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let settings =
        crate::helpers::test_settings(addr, "http://127.0.0.1:8080", data.path(), tenants.path());
    let err = dcr_shim::app::start_on(settings, listener)
        .await
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("logs anyone in"), "{err}");
}

#[test]
fn check_refuses_two_resources_that_name_the_same_uri() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("twins.toml"),
        r#"
upstream = { kind = "dev" }
[[resources]]
uri = "https://mcp.example.com"
default = true
scopes = [{ name = "a", upstream = "api://x/a" }]
[[resources]]
uri = "HTTPS://MCP.example.com:443/"
scopes = [{ name = "b", upstream = "api://x/b" }]
"#,
    )
    .unwrap();
    let (code, out) = run(&["check"], dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("twins.toml: resources[1].uri: another resource has the same uri"),
        "{out}"
    );
}

#[test]
fn dot_segments_never_reach_another_resource() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("two.toml");
    std::fs::write(
        &file,
        r#"
upstream = { kind = "dev" }
[[resources]]
uri = "https://mcp.example.com/files"
default = true
scopes = [{ name = "files.read", upstream = "api://x/files.read" }]
[[resources]]
uri = "https://mcp.example.com/admin"
scopes = [{ name = "admin", upstream = "api://x/admin" }]
[[resources]]
uri = "https://tools.example.com"
scopes = [{ name = "tools", upstream = "api://x/tools" }]
"#,
    )
    .unwrap();
    let public = url::Url::parse("http://127.0.0.1:8080").unwrap();
    let tenant = dcr_shim::config::load_tenant(&file, &public).unwrap();
    let named = |uri: &str| tenant.resource(uri).map(|r| r.uri.to_string());
    assert_eq!(
        named("HTTPS://MCP.example.com:443/admin").as_deref(),
        Some("https://mcp.example.com/admin")
    );
    // The TypeScript and Python SDKs send a path-less resource with the slash their URL parser
    // adds (`new URL("https://tools.example.com").href`).
    assert_eq!(
        named("https://tools.example.com/").as_deref(),
        Some("https://tools.example.com")
    );
    for sneaky in [
        "https://mcp.example.com/files/../admin",
        "https://mcp.example.com/files/%2e%2e/admin",
        "https://mcp.example.com/files/.%2E/admin",
        r"https://mcp.example.com/files\..\admin",
        "https://user@mcp.example.com/admin",
        "https://mcp.example.com/admin#x",
    ] {
        assert_eq!(named(sneaky), None, "{sneaky}");
    }
}

#[test]
fn check_refuses_entra_setups_that_leak_tokens_or_never_grant() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leaky.toml"),
        r#"
[upstream]
kind = "entra"
directory_id = "00000000-0000-0000-0000-000000000000"
[[apps]]
name = "a"
client_id = "aaaaaaaa-0000-0000-0000-00000000000a"
scopes = ["api://mcp-files/files.read", "api://mcp-files/files.delete"]
credential = { kind = "none" }
[[resources]]
uri = "https://mcp.example.com/files"
default = true
scopes = [{ name = "files.read", upstream = "api://mcp-files/files.read" }]
[[resources]]
uri = "https://mcp.example.com/admin"
scopes = [{ name = "admin", upstream = "API://MCP-FILES/admin" }]
[[resources]]
uri = "https://mcp.example.com/mail"
scopes = [{ name = "mail", upstream = "https://graph.microsoft.com/Mail.Read" }]
"#,
    )
    .unwrap();
    let (code, out) = run(&["check"], dir.path());
    assert_eq!(code, 1, "{out}");
    for expected in [
        "leaky.toml: resources[1].scopes: the Entra API 'API://MCP-FILES' is also resources[0]'s",
        "leaky.toml: resources[2].scopes[0].upstream: 'https://graph.microsoft.com/Mail.Read' is a Microsoft Graph scope",
        "leaky.toml: apps[0].scopes[1]: 'api://mcp-files/files.delete' is not the upstream string of any resource's scope",
    ] {
        assert!(out.contains(expected), "missing '{expected}' in:\n{out}");
    }
}

#[test]
fn check_refuses_a_managed_identity_for_an_idp_that_is_not_entra() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("corp.toml"),
        r#"
upstream = { kind = "oidc", issuer = "https://idp.example.com" }
[[apps]]
name = "a"
client_id = "a"
credential = { kind = "managed_identity" }
[[resources]]
uri = "https://mcp.example.com/files"
scopes = [{ name = "files.read", upstream = "files.read" }]
"#,
    )
    .unwrap();
    let (code, out) = run(&["check"], dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("apps[0].credential.kind") && out.contains("entra"),
        "{out}"
    );
}

/// `--version` names the release and the commit (12 hex digits, or `unknown` outside git), and
/// `serve` logs both before anything else, so that a report of a start names its build.
#[test]
fn the_version_names_the_release_and_the_commit() {
    let out = Command::new(env!("CARGO_BIN_EXE_dcr-shim"))
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let rest = text
        .trim()
        .strip_prefix(concat!("dcr-shim ", env!("CARGO_PKG_VERSION"), " (commit "))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unexpected --version: {text}"));
    assert!(
        rest == "unknown" || (rest.len() == 12 && rest.chars().all(|c| c.is_ascii_hexdigit())),
        "{text}"
    );

    let data = tempfile::tempdir().unwrap();
    let tenants = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants");
    let shim = crate::binary::start_binary(data.path(), &tenants, &[]);
    let first: serde_json::Value = serde_json::from_str(&shim.log.lock().unwrap()[0]).unwrap();
    assert_eq!(first["message"], "dcr-shim starting");
    assert_eq!(first["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(first["commit"].as_str(), Some(rest));
}

/// A certificate for the fixture app key valid until `not_after`, in `dir` (`name`).
fn app_certificate(
    dir: &std::path::Path,
    name: &str,
    not_after: std::time::SystemTime,
) -> std::path::PathBuf {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let key_pem = std::fs::read_to_string(fixtures.join("app-key.pem")).unwrap();
    let key = rcgen::KeyPair::from_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["agents.example".into()]).unwrap();
    params.not_before =
        (std::time::SystemTime::now() - std::time::Duration::from_secs(86_400)).into();
    params.not_after = not_after.into();
    let cert = params.self_signed(&key).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, cert.pem()).unwrap();
    path
}

/// Issue 23, item 6: `check` as an Entra preflight. Ids that are not GUIDs, a key that is not
/// its certificate's, an expired certificate and one about to expire are each reported (all of
/// them, with file and field, never a Rust type name), and the portal checklist names the
/// redirect URI, the API to expose and the permissions of each app.
#[test]
fn check_is_an_entra_preflight() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let key = secrets.path().join("app-key.pem");
    crate::helpers::write_private(
        &key,
        &std::fs::read_to_string(fixtures.join("app-key.pem")).unwrap(),
    );
    let day = std::time::Duration::from_secs(86_400);
    let now = std::time::SystemTime::now();
    let expired = app_certificate(secrets.path(), "expired.pem", now - day);
    let soon = app_certificate(secrets.path(), "soon.pem", now + 10 * day);
    let fine = app_certificate(secrets.path(), "fine.pem", now + 400 * day);
    // Another key's certificate: the fixture key does not belong to it.
    let other = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["other.example".into()]).unwrap();
    params.not_after = (now + 400 * day).into();
    let foreign = secrets.path().join("foreign.pem");
    std::fs::write(&foreign, params.self_signed(&other).unwrap().pem()).unwrap();
    let jwt = |name: &str, id: &str, cert: &std::path::Path| {
        format!(
            "[[apps]]\nname = \"{name}\"\nclient_id = \"{id}\"\ncredential = {{ kind = \"private_key_jwt\", certificate_file = {cert:?}, key_file = {key:?} }}\n"
        )
    };
    let good_id = "aaaaaaaa-0000-0000-0000-000000000001";
    let tenant = |directory: &str, apps: &str| {
        format!(
            "[upstream]\nkind = \"entra\"\ndirectory_id = \"{directory}\"\nauthority = \"http://127.0.0.1:9\"\n{apps}[[resources]]\nuri = \"https://mcp.example.com/files\"\nscopes = [{{ name = \"files.read\", upstream = \"api://mcp-files/files.read\" }}]\n"
        )
    };
    // Secret files as an operator gets them wrong: empty, a directory, readable by anyone.
    let empty = secrets.path().join("empty.secret");
    crate::helpers::write_private(&empty, "\n");
    let open = secrets.path().join("open.secret");
    std::fs::write(&open, "s3cret-value").unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let secret = |name: &str, file: &std::path::Path| {
        format!(
            "[[apps]]\nname = \"{name}\"\nclient_id = \"{good_id}\"\ncredential = {{ kind = \"client_secret\", secret_file = {file:?} }}\n"
        )
    };
    std::fs::write(
        dir.path().join("ids.toml"),
        tenant(
            "contoso.onmicrosoft.com",
            &(jwt("named", "agents-app", &fine)
                + &jwt("mismatched", good_id, &foreign)
                + &secret("empty", &empty)
                + &secret("directory", secrets.path())
                + &secret("open", &open)),
        ),
    )
    .unwrap();
    let (code, out) = run(&["check"], dir.path());
    assert_eq!(code, 1, "{out}");
    for expected in [
        "ids.toml: upstream.directory_id: 'contoso.onmicrosoft.com' is not a GUID",
        "ids.toml: apps[0].client_id: 'agents-app' is not a GUID",
        "does not belong to the certificate",
        "apps[2].credential.secret_file: the client secret file",
        "is empty",
        "apps[3].credential.secret_file: the client secret file",
        "is a directory",
        "apps[4].credential.secret_file: the client secret file",
        "others may read it",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(
        !out.contains("Error {") && !out.contains("Os {"),
        "a Rust type name: {out}"
    );

    std::fs::remove_file(dir.path().join("ids.toml")).unwrap();
    std::fs::write(
        dir.path().join("contoso.toml"),
        tenant(
            "11111111-2222-3333-4444-555555555555",
            &(jwt("expired", good_id, &expired)
                + &jwt("soon", "aaaaaaaa-0000-0000-0000-000000000002", &soon)
                + &jwt("fine", "aaaaaaaa-0000-0000-0000-000000000003", &fine)),
        ),
    )
    .unwrap();
    let (code, out) = run(
        &["check", "--public-url", "https://auth.contoso.com"],
        dir.path(),
    );
    assert_eq!(code, 1, "an expired certificate fails the check:\n{out}");
    for expected in [
        "error: app 'expired': its certificate expired at",
        "warning: app 'soon': its certificate expires at",
        "app 'fine': certificate valid until",
        "redirect URI https://auth.contoso.com/contoso/callback (Web",
        "Application ID URI api://mcp-files, scopes files.read",
        "\"requestedAccessTokenVersion\": 2",
        "API permissions → delegated api://mcp-files/files.read",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

/// A tenant on Entra with every kind of credential, for `entra plan`'s golden files. Its
/// credential files need not exist: the plan is written before they do.
const PLANNED_TENANT: &str = r#"display_name = "Contoso"
[upstream]
kind = "entra"
directory_id = "72f988bf-86f1-41af-91ab-2d7cd011db47"

[[apps]]
name = "cert-agents"
client_id = "11111111-1111-1111-1111-111111111111"
credential = { kind = "private_key_jwt", certificate_file = "/etc/dcr-shim/apps/cert-agents.crt", key_file = "/etc/dcr-shim/apps/cert-agents.key" }
[[apps]]
name = "cluster-agents"
client_id = "22222222-2222-2222-2222-222222222222"
scopes = ["api://mcp-files/files.read"]
credential = { kind = "federated", assertion_file = "/var/run/secrets/azure/tokens/azure-identity-token" }
[[apps]]
name = "vm-agents"
client_id = "33333333-3333-3333-3333-333333333333"
credential = { kind = "managed_identity" }
[[apps]]
name = "secret-agents"
client_id = "44444444-4444-4444-4444-444444444444"
credential = { kind = "client_secret", secret_env = "CONTOSO_AGENTS_SECRET" }

[[resources]]
uri = "https://mcp.contoso.com/files"
default = true
scopes = [
  { name = "files.read", upstream = "api://mcp-files/files.read", description = "Read your files" },
  { name = "files.write", upstream = "api://mcp-files/files.write", description = "Change your files" },
]
[[resources]]
uri = "https://mcp.contoso.com/mail"
scopes = [{ name = "mail.read", upstream = "https://contoso.com/mcp-mail/Mail.Read" }]

[[mapping]]
app = "cluster-agents"
software_ids = ["cluster-agent"]
"#;

/// Issue 23, item 6: `dcr-shim entra plan` writes what the Entra admin must create (an Azure
/// CLI script, or Terraform for the azuread provider), the same for the same file: compared
/// with tests/golden/ (`DCR_SHIM_BLESS=1` rewrites them after a deliberate change; CI runs
/// shellcheck on the script).
#[test]
fn entra_plan_matches_its_golden_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("contoso.toml"), PLANNED_TENANT).unwrap();
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for (format, file) in [("az", "entra-plan.sh"), ("terraform", "entra-plan.tf")] {
        let out = Command::new(env!("CARGO_BIN_EXE_dcr-shim"))
            .args([
                "entra",
                "plan",
                "--format",
                format,
                "--public-url",
                "https://auth.contoso.com",
                "--tenants",
            ])
            .arg(dir.path())
            .env_remove("CONTOSO_AGENTS_SECRET")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{format}: {stderr}");
        let plan = String::from_utf8(out.stdout).unwrap();
        if std::env::var_os("DCR_SHIM_BLESS").is_some() {
            std::fs::write(golden.join(file), &plan).unwrap();
        }
        let expected = std::fs::read_to_string(golden.join(file)).unwrap();
        assert_eq!(plan, expected, "{format} differs from tests/golden/{file}");
    }
    // Two apps that would share a name in the plan: refused, not half-granted.
    let twins = PLANNED_TENANT.replace("name = \"vm-agents\"", "name = \"cert.agents\"");
    std::fs::write(dir.path().join("contoso.toml"), twins).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dcr-shim"))
        .args(["entra", "plan", "--tenants"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("would both be named app_cert_agents"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Not on Entra: nothing to plan, and said so.
    let dev = tempfile::tempdir().unwrap();
    std::fs::write(dev.path().join("demo.toml"), crate::helpers::DEV_TENANT).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dcr-shim"))
        .args(["entra", "plan", "--tenant", "demo", "--tenants"])
        .arg(dev.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not on Entra"));
}

/// `check --live` on an IdP it cannot reach has tried no credential: that is not a pass.
/// Without `--live` an unreachable IdP stays a warning (serve keeps retrying).
#[test]
fn check_live_fails_when_the_idp_cannot_be_reached() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("away.toml"),
        r#"[upstream]
kind = "oidc"
issuer = "http://127.0.0.1:9/unreachable"
[[apps]]
name = "a"
client_id = "a"
credential = { kind = "none" }
[[resources]]
uri = "https://mcp.example.com/files"
scopes = [{ name = "files.read", upstream = "files.read" }]
"#,
    )
    .unwrap();
    let (code, out) = run(&["check"], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warning: upstream not reachable now"), "{out}");
    let (code, out) = run(&["check", "--live"], dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("--live could not try the apps' credentials"),
        "{out}"
    );
}
