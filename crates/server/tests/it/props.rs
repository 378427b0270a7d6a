//! Property tests: whatever is posted as a workspace, the server answers with less
//! than 500, and a created workspace's name matches the documented pattern.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};

use crate::{req, TestApp};

/// JSON values of any shape, with the keys a workspace body knows among others.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::String),
        "[a-z][a-z0-9-]{0,34}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let key = prop_oneof![
            Just("name".to_owned()),
            Just("profile".to_owned()),
            Just("owner".to_owned()),
            Just("start".to_owned()),
            any::<String>(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bodies for `POST /api/v1/workspaces`: mostly well-formed with an arbitrary name,
/// else any JSON value, else any bytes. The profile, when given, exists, so that a
/// valid name can only fail by being taken.
fn body() -> impl Strategy<Value = (Option<String>, Vec<u8>)> {
    let name = prop_oneof![any::<String>(), "[a-z][a-z0-9-]{0,34}", "\\PC{0,40}"];
    prop_oneof![
        3 => (name, prop::option::of(prop_oneof![Just("standard"), Just("high-memory")]), any::<bool>())
            .prop_map(|(n, p, start)| {
                let mut b = json!({"name": n, "start": start});
                if let Some(p) = p {
                    b["profile"] = json!(p);
                }
                (Some(n), b.to_string().into_bytes())
            }),
        1 => json_value().prop_map(|v| (None, v.to_string().into_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(|b| (None, b)),
    ]
}

#[test]
fn arbitrary_workspace_bodies_never_fail_the_server() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Quotas are not under test here: let every valid body be created.
    let quota = server::Quota {
        max_workspaces: u64::MAX,
        max_cpu_millis: u64::MAX,
        max_memory_bytes: u64::MAX,
    };
    let config = server::ServerConfig {
        quota,
        ..server::ServerConfig::default()
    };
    let app = rt.block_on(TestApp::start(test_support::Engine::Sqlite, config));
    let pattern = regex::Regex::new(model::NAME_PATTERN).unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let created = std::cell::Cell::new(0);
    runner
        .run(&body(), |(name, bytes)| {
            let r = rt.block_on(
                app.send(
                    req("POST", "/api/v1/workspaces")
                        .token(&app.admin)
                        .raw(Some("application/json"), bytes.clone()),
                ),
            );
            let shown = String::from_utf8_lossy(&bytes);
            prop_assert!(r.status.as_u16() < 500, "{shown}: {r:?}");
            if r.status.as_u16() == 201 {
                let got = r.body["name"].as_str().unwrap_or_default();
                prop_assert!(pattern.is_match(got), "{got:?} from {shown}");
                if let Some(n) = &name {
                    prop_assert_eq!(got, n.as_str());
                }
                created.set(created.get() + 1);
            } else if let Some(n) = &name {
                if pattern.is_match(n) {
                    // A valid name is refused only because it exists already.
                    prop_assert_eq!(r.code(), "already_exists", "{:?}: {:?}", n, r);
                }
            }
            Ok::<(), TestCaseError>(())
        })
        .unwrap();
    assert!(
        created.get() > 0,
        "no case created a workspace: the generator is too hostile"
    );
}
