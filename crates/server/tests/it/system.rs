//! Health, readiness, metrics and the served OpenAPI document.

use serde_json::{json, Value};

use crate::TestApp;

#[tokio::test]
async fn health_and_readiness_need_no_credentials() {
    let app = TestApp::sqlite().await;
    let r = app.call("", "GET", "/healthz", Value::Null).await;
    assert_eq!(r.expect(200), "ok");
    let r = app.call("", "GET", "/readyz", Value::Null).await;
    assert_eq!(r.expect(200), "ready");
    let other = app.call("", "GET", "/healthz", Value::Null).await;
    assert_ne!(
        other.header("x-request-id"),
        r.header("x-request-id"),
        "ids are unique"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = TestApp::sqlite().await;
    let ws = app.workspace(&app.admin, json!({"name": "nb"})).await;
    let id = ws["id"].as_str().unwrap();
    for _ in 0..3 {
        app.call(
            &app.admin,
            "GET",
            &format!("/api/v1/workspaces/{id}"),
            Value::Null,
        )
        .await
        .expect(200);
    }
    app.call("", "GET", "/api/v1/workspaces", Value::Null)
        .await
        .expect_error(401, "unauthenticated");
    app.call("", "GET", "/no/such/route", Value::Null)
        .await
        .expect_error(404, "not_found");
    let r = app.call("", "GET", "/metrics", Value::Null).await;
    r.expect(200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = r.body.as_str().expect("a text exposition");
    assert!(
        text.contains("# TYPE berth_http_requests counter"),
        "{text}"
    );
    assert!(text.contains("berth_http_requests_total"), "{text}");
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.starts_with("berth_http_requests_total") && l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle} in\n{text}"))
            .to_owned()
    };
    let get_ws = line("route=\"/api/v1/workspaces/{id}\"");
    assert!(
        get_ws.contains("method=\"GET\"") && get_ws.contains("status=\"200\""),
        "{get_ws}"
    );
    assert!(get_ws.ends_with(" 3"), "{get_ws}");
    assert!(
        line("status=\"401\"").contains("route=\"/api/v1/workspaces\""),
        "{text}"
    );
    // Unmatched paths share one label, so that scanners cannot blow up the series.
    assert!(!text.contains("/no/such/route"), "{text}");
    assert!(
        text.contains("berth_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains("berth_logins_total{outcome=\"success\"} 1"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}

#[tokio::test]
async fn the_openapi_document_is_served() {
    let app = TestApp::sqlite().await;
    let r = app
        .call("", "GET", "/api/v1/openapi.json", Value::Null)
        .await;
    let doc = r.expect(200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/workspaces/{id}",
        "/api/v1/workspaces",
        "/api/v1/auth/login",
        "/api/v1/audit",
        "/api/v1/users/{name}/tokens",
    ] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys());
    }
    assert!(doc["paths"]["/api/v1/workspaces/{id}"]["get"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    // What is served is what `server::openapi()` generates (and docs/openapi.json holds).
    let generated: Value =
        serde_json::from_str(&server::openapi().to_pretty_json().unwrap()).unwrap();
    assert_eq!(doc, &generated);
}
