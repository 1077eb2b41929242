//! `--audit-log`: the audit events of a full login as JSON lines with real fields, in a file
//! of their own that SIGHUP reopens after a rotation.

use serde_json::Value;

use crate::binary::{dev_login, refresh_at, start_binary_with_args};
use crate::helpers::write_tenants;

fn events(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

#[tokio::test]
async fn a_full_login_is_audited_as_json_lines_and_sighup_reopens_the_file() {
    let data = tempfile::tempdir().unwrap();
    let tenants = tempfile::tempdir().unwrap();
    write_tenants(tenants.path(), None);
    let audit = data.path().join("audit.jsonl");
    let shim = start_binary_with_args(
        data.path(),
        tenants.path(),
        &["--audit-log", audit.to_str().unwrap()],
    );
    let handed = dev_login(&shim.base, "alpha", true).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let logged = events(&audit);
    let kinds: Vec<&str> = logged.iter().filter_map(|e| e["event"].as_str()).collect();
    for wanted in [
        "client_registered",
        "consent_approved",
        "login_completed",
        "token_issued",
    ] {
        assert!(kinds.contains(&wanted), "{wanted} in {kinds:?}");
    }
    for e in &logged {
        assert_eq!(e["target"], "audit", "only audit events: {e}");
        assert_eq!(e["tenant"], "alpha", "{e}");
        for (k, v) in e.as_object().unwrap() {
            let nested_json = v
                .as_str()
                .is_some_and(|s| s.starts_with('{') || s.starts_with('['));
            assert!(!nested_json, "{k} holds JSON inside a string: {e}");
        }
    }
    let registered = logged
        .iter()
        .find(|e| e["event"] == "client_registered")
        .unwrap();
    assert_eq!(
        registered["auth_method"], "client_secret_basic",
        "wire names: {registered}"
    );
    let login = logged
        .iter()
        .find(|e| e["event"] == "login_completed")
        .unwrap();
    assert_eq!(login["client_id"], handed.client_id.as_str());
    // The dev IdP sends no ID token, so its logins name no subject (Entra's do: the `oid`).
    assert!(
        login.get("subject").is_some() && login.get("upn").is_some(),
        "{login}"
    );
    let text = std::fs::read_to_string(&audit).unwrap();
    for secret in &handed.values {
        assert!(
            !text.contains(secret.as_str()),
            "no handed-out value in the audit log"
        );
    }

    // Rotation: the file is moved away, SIGHUP, and the next events go to a new file.
    let rotated = data.path().join("audit.jsonl.1");
    std::fs::rename(&audit, &rotated).unwrap();
    let pid = shim.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, next) = refresh_at(&shim.base, "alpha", &handed, &handed.refresh_token)
        .await
        .unwrap();

    // The client revokes its grant (RFC 7009), and a client metadata document is refused.
    let http = reqwest::Client::new();
    let revoked = http
        .post(format!("{}/alpha/revoke", shim.base))
        .basic_auth(&handed.client_id, handed.client_secret.as_deref())
        .form(&[("token", next.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let document = "https://127.0.0.1:1/agent.json";
    let refused = http
        .get(format!("{}/alpha/authorize", shim.base))
        .query(&[
            ("client_id", document),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("response_type", "code"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);

    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let fresh = events(&audit);
    assert!(
        fresh
            .iter()
            .any(|e| e["event"] == "token_issued" && e["grant"] == "refresh_token"),
        "{fresh:?}"
    );
    let revocation = fresh
        .iter()
        .find(|e| e["event"] == "refresh_family_revoked")
        .expect("the revocation is audited");
    assert_eq!(
        revocation["cause"], "client_revoked",
        "by whom: {revocation}"
    );
    assert_eq!(revocation["client_id"], handed.client_id.as_str());
    let document_refused = fresh
        .iter()
        .find(|e| e["event"] == "client_document_refused")
        .expect("the refused document is audited");
    assert_eq!(document_refused["client_id"], document);
    assert!(
        document_refused["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    assert!(
        !events(&rotated)
            .iter()
            .any(|e| e["grant"] == "refresh_token")
    );
}
