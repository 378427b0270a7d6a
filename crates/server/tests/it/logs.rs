//! `GET /api/v1/workspaces/{id}/logs`: the app's log for its owner and admins,
//! its last lines, and following it as it grows.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{req, TestApp};

#[tokio::test]
async fn the_owner_reads_and_follows_the_log_others_do_not() {
    let rt = Arc::new(runtime::FakeRuntime::new());
    let app = TestApp::with_runtime(rt.clone()).await;
    let ada = app.user("ada", None).await;
    let bob = app.user("bob", None).await;
    let ws = app.workspace(&ada, json!({"name": "lab"})).await;
    let id = ws["id"].as_str().unwrap().to_owned();
    let logs = format!("/api/v1/workspaces/{id}/logs");
    rt.log(&id, "berth: starting\nhello\nworld\n");

    let r = app.call(&ada, "GET", &logs, Value::Null).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.body, "berth: starting\nhello\nworld\n");
    let r = app
        .call(&ada, "GET", &format!("{logs}?tail=1"), Value::Null)
        .await;
    assert_eq!(r.body, "world\n");
    let r = app.call(&app.admin, "GET", &logs, Value::Null).await;
    assert_eq!(r.status, 200, "admins read every log");

    for bad in [
        "tail=0",
        "tail=10001",
        "tail=many",
        "follow=maybe",
        "lines=3",
    ] {
        app.call(&ada, "GET", &format!("{logs}?{bad}"), Value::Null)
            .await
            .expect_error(400, "invalid_query");
    }
    app.call(&bob, "GET", &logs, Value::Null)
        .await
        .expect_error(404, "not_found");
    let reader = app.token_for("ada", Some(&["read:servers"])).await;
    app.call(&reader, "GET", &logs, Value::Null)
        .await
        .expect_error(403, "forbidden");

    // Followed: the log so far, then each addition as it comes, until the
    // workspace is deleted.
    let request = req("GET", &format!("{logs}?follow=true&tail=1"))
        .token(&ada)
        .builder
        .body(Body::empty())
        .unwrap();
    let res = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.into_body();
    assert_eq!(next(&mut body).await.as_deref(), Some("world\n"));
    rt.log(&id, "more\n");
    assert_eq!(next(&mut body).await.as_deref(), Some("more\n"));
    app.call(
        &ada,
        "DELETE",
        &format!("/api/v1/workspaces/{id}"),
        Value::Null,
    )
    .await
    .expect(202);
    assert_eq!(
        next(&mut body).await,
        None,
        "the stream ends with the workspace"
    );
}

#[tokio::test]
async fn without_a_runtime_the_log_is_empty() {
    let app = TestApp::sqlite().await;
    let ws = app.workspace(&app.admin, json!({"name": "lab"})).await;
    let uri = format!("/api/v1/workspaces/{}/logs", ws["id"].as_str().unwrap());
    let r = app.call(&app.admin, "GET", &uri, Value::Null).await;
    assert_eq!((r.status.as_u16(), &r.body), (200, &Value::Null));
}

/// The next chunk of a streamed body (`None` at its end), within 10 s.
async fn next(body: &mut Body) -> Option<String> {
    let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("a chunk within 10 s")?;
    let data = frame.unwrap().into_data().unwrap();
    Some(String::from_utf8(data.to_vec()).unwrap())
}
