//! Property tests (proptest stands in for cargo-fuzz, which needs a nightly toolchain this
//! project cannot fetch): the parsers that take hostile input never panic, and what they accept
//! keeps its invariants. Failing inputs are saved under `proptest-regressions/` (the corpus).

use dcr_shim::domain::{RedirectKind, RedirectUri};
use dcr_shim::oauth::client_metadata::{MetadataOrigin, validate_client_metadata};
use dcr_shim::oauth::params::Params;
use proptest::prelude::*;
use serde_json::{Map, Value};

const CASES: u32 = 2000;

/// URI-ish strings: mostly plausible, sometimes anything.
fn uri_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "(https?|com\\.example\\.app|javascript|data|ms-msdt|HTTP)://[a-zA-Z0-9.\\-\\[\\]:@%]{0,30}(:[0-9]{1,6})?(/[a-zA-Z0-9._%~\\-]{0,12}){0,4}(\\?[a-z=&%]{0,10})?(#[a-z]{0,5})?",
        "http://(127\\.0\\.0\\.1|localhost|\\[::1\\])(:[0-9]{1,5})?/[a-z./%]{0,12}",
        ".{0,60}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        uri_like().prop_map(Value::String),
        "[a-z_ ]{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,12}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

const FIELDS: &[&str] = &[
    "redirect_uris",
    "token_endpoint_auth_method",
    "grant_types",
    "response_types",
    "application_type",
    "client_name",
    "client_uri",
    "logo_uri",
    "scope",
    "contacts",
    "software_id",
    "client_id",
    "client_secret",
];

/// Registration metadata with the real field names and hostile values.
fn metadata() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((prop::sample::select(FIELDS), json_value()), 0..8)
        .prop_map(|kv| kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn redirect_uri_parsing_never_panics_and_keeps_its_promises(raw in uri_like(), port in 1u16..) {
        if let Ok(uri) = RedirectUri::parse(&raw) {
            prop_assert!(uri.matches(&raw));
            prop_assert!(!raw.contains('#'));
            prop_assert!(!raw.chars().any(|c| c.is_whitespace() || c.is_control()));
            if uri.kind() == RedirectKind::Loopback {
                let mut url = url::Url::parse(&raw).unwrap();
                if url.as_str() == raw && url.set_port(Some(port)).is_ok() {
                    prop_assert!(uri.matches(url.as_str()), "loopback port may vary");
                }
            } else {
                let longer = format!("{}x", raw);
                prop_assert!(!uri.matches(&longer));
            }
        }
    }

    #[test]
    fn registration_metadata_validation_never_panics(raw in metadata()) {
        for origin in [MetadataOrigin::Registration, MetadataOrigin::Document] {
            if let Ok(m) = validate_client_metadata(&raw, origin) {
                prop_assert!(!m.redirect_uris.is_empty());
                if origin == MetadataOrigin::Document {
                    prop_assert!(!m.token_endpoint_auth_method.is_confidential());
                }
            }
        }
    }

    #[test]
    fn client_metadata_documents_never_panic(body in prop_oneof![json_value().prop_map(|v| v.to_string().into_bytes()), prop::collection::vec(any::<u8>(), 0..200)]) {
        let _ = dcr_shim::oauth::cimd::validate_document("https://app.example/client.json", &body);
    }

    #[test]
    fn form_parsing_never_panics(raw in prop_oneof![".{0,200}", "([a-z_]{1,8}=[a-zA-Z0-9%+&=]{0,10}&?){0,8}"]) {
        let p = Params::parse(&raw);
        for name in ["grant_type", "code", "client_id"] {
            let _ = p.get(name);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn tenant_files_never_panic(text in prop_oneof![
        ".{0,300}",
        "(upstream = \\{ kind = \"(dev|oidc|entra)\" \\}\n)?(\\[\\[resources\\]\\]\nuri = \"[a-z:/.]{0,20}\"\nscopes = \\[\\{ name = \"[a-z.]{0,6}\", upstream = \"[a-z:/.]{0,12}\" \\}\\]\n)?(\\[registration\\]\n(dcr|cimd) = (true|false)\n)?",
    ]) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fuzz.toml");
        std::fs::write(&file, &text).unwrap();
        let public = url::Url::parse("http://127.0.0.1:8080").unwrap();
        let _ = dcr_shim::config::load_tenant(&file, &public);
    }
}

/// The token endpoint with arbitrary forms: never a server error.
#[test]
fn token_requests_never_produce_a_server_error() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(crate::helpers::spawn_app());
    let tenant = app.tenant("alpha");
    let body = serde_json::json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"]});
    let (_, registered) = runtime.block_on(app.register("alpha", &body));
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 500,
        ..ProptestConfig::default()
    });
    let fields = prop::collection::vec(
        (
            prop::sample::select(
                &[
                    "grant_type",
                    "code",
                    "client_id",
                    "client_secret",
                    "redirect_uri",
                    "code_verifier",
                    "refresh_token",
                    "scope",
                    "resource",
                ][..],
            ),
            prop_oneof![
                Just("authorization_code".to_owned()),
                Just("refresh_token".to_owned()),
                Just(client_id.clone()),
                Just("http://127.0.0.1/cb".to_owned()),
                ".{0,80}".prop_map(|s| s.to_owned())
            ],
        ),
        0..7,
    );
    let result = runner.run(&fields, |form| {
        let raw = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let params = Params::parse(&raw);
        let creds = dcr_shim::oauth::client_auth::ClientCredentials {
            basic: None,
            dpop: None,
        };
        let outcome = runtime.block_on(app.state().auth().tokens().token(
            &tenant,
            &params,
            &creds,
            &crate::helpers::operator(dcr_shim::app::unix_now()),
        ));
        if let Err(e) = outcome {
            prop_assert_ne!(e.code, dcr_shim::oauth::ErrorCode::ServerError, "{}", raw);
        }
        Ok(())
    });
    runtime.block_on(app.stop());
    result.unwrap();
}

/// Replays the corpus in `tests/corpus/` (hand-picked hostile inputs; add failing inputs here)
/// through the same parsers.
#[test]
fn corpus_inputs_never_panic() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut n = 0;
    for line in std::fs::read_to_string(corpus.join("redirect_uris.txt"))
        .unwrap()
        .lines()
    {
        if let Ok(uri) = RedirectUri::parse(line) {
            assert!(uri.matches(line), "{line}");
            assert!(
                !line.to_ascii_lowercase().starts_with("javascript:"),
                "{line}"
            );
        }
        n += 1;
    }
    for line in std::fs::read_to_string(corpus.join("forms.txt"))
        .unwrap()
        .lines()
    {
        let _ = Params::parse(line).get("grant_type");
        n += 1;
    }
    for entry in std::fs::read_dir(corpus.join("registration")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&bytes) {
            let _ = validate_client_metadata(&map, MetadataOrigin::Registration);
        }
        let _ = dcr_shim::oauth::cimd::validate_document("https://evil.example/c.json", &bytes);
        n += 1;
    }
    let public = url::Url::parse("http://127.0.0.1:8080").unwrap();
    for entry in std::fs::read_dir(corpus.join("tenants")).unwrap() {
        let path = entry.unwrap().path();
        assert!(
            dcr_shim::config::load_tenant(&path, &public).is_err(),
            "{} must be refused",
            path.display()
        );
        n += 1;
    }
    eprintln!("corpus inputs: {n}");
}
