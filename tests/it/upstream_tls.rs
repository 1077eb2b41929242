//! An IdP behind a private CA: `check` calls an untrusted certificate an error, and
//! `upstream.ca_file` makes `check` and `serve` trust it.

use serde_json::json;

use crate::helpers::spawn_app_with_tenants;
use crate::tls_server::{Canned, DocServer};

/// An OpenID provider's discovery document at `{docs}/idp`, served with a certificate from the
/// test's own CA.
fn serve_discovery(docs: &DocServer) -> String {
    let issuer = docs.url("/idp");
    docs.set(
        "/idp/.well-known/openid-configuration",
        Canned::json(&json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })),
    );
    issuer
}

fn tenant_file(issuer: &str, ca_file: Option<&std::path::Path>) -> String {
    let ca = ca_file
        .map(|p| format!(", ca_file = {:?}", p.display().to_string()))
        .unwrap_or_default();
    format!(
        r#"upstream = {{ kind = "oidc", issuer = "{issuer}"{ca} }}
[[apps]]
name = "agents"
client_id = "agents"
credential = {{ kind = "none" }}
[[resources]]
uri = "https://mcp.example.com/files"
scopes = [{{ name = "files.read", upstream = "files.read" }}]
"#
    )
}

fn check(tenants: &std::path::Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcr-shim"))
        .arg("check")
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

#[tokio::test(flavor = "multi_thread")]
async fn check_calls_an_untrusted_idp_certificate_an_error_and_ca_file_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let docs = DocServer::start(dir.path()).await;
    let issuer = serve_discovery(&docs);
    let tenants = dir.path().join("tenants");
    std::fs::create_dir(&tenants).unwrap();

    std::fs::write(tenants.join("corp.toml"), tenant_file(&issuer, None)).unwrap();
    let t = tenants.clone();
    let (code, out) = tokio::task::spawn_blocking(move || check(&t))
        .await
        .unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("error: the IdP's TLS certificate is not trusted")
            && out.contains("upstream.ca_file"),
        "{out}"
    );

    std::fs::write(
        tenants.join("corp.toml"),
        tenant_file(&issuer, Some(&docs.ca_file)),
    )
    .unwrap();
    let t = tenants.clone();
    let (code, out) = tokio::task::spawn_blocking(move || check(&t))
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("upstream reachable: issuer {issuer}")),
        "{out}"
    );

    // A file that is not a certificate is a problem in the file, named by its field.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    std::fs::write(tenants.join("corp.toml"), tenant_file(&issuer, Some(&junk))).unwrap();
    let (code, out) = tokio::task::spawn_blocking(move || check(&tenants))
        .await
        .unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("upstream.ca_file") && out.contains("no PEM certificate"),
        "{out}"
    );
}

#[tokio::test]
async fn serve_discovers_an_idp_behind_a_private_ca_with_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let docs = DocServer::start(dir.path()).await;
    let issuer = serve_discovery(&docs);
    let ca = docs.ca_file.clone();
    let app = spawn_app_with_tenants(move |t| {
        std::fs::write(t.join("corp.toml"), tenant_file(&issuer, Some(&ca))).unwrap();
    })
    .await;
    app.wait_ready().await;
    app.stop().await;
}
