//! The runtime conformance story: one sequence of [`runtime::Runtime`] calls and
//! the facts each must establish, run against every runtime — the fake here in
//! this crate's tests, the process runtime in `runtime-process`'s (and later
//! Docker and Kubernetes). A runtime's test supplies a [`Subject`]: the runtime
//! plus the few things the trait does not cover (reaching the app, the files
//! in a workspace's home, what a deleted workspace might leave behind).
//!
//! The story: create → start → app reachable → write a file → pause (app does
//! not answer) → resume → stop → start → file still there → delete → nothing
//! left. Every mutating call is made twice, since the controller may repeat
//! any of them.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use model::{Upstream, WorkspaceId};
use runtime::{Observed, Runtime, RuntimeError, WorkspaceRef};

/// What the story needs of a runtime under test.
#[async_trait]
pub trait Subject: Send + Sync {
    fn runtime(&self) -> &dyn Runtime;
    /// A fresh workspace, unknown to the runtime, whose app serves HTTP at its
    /// base URL and lets [`Subject::write_file`] write into its home.
    fn workspace(&self) -> WorkspaceRef;
    /// Whether the app answers an HTTP request at `upstream` within a couple
    /// of seconds.
    async fn app_answers(&self, ws: &WorkspaceRef, upstream: &Upstream) -> bool;
    /// Has the running app write `content` to `name` in its home.
    async fn write_file(&self, ws: &WorkspaceRef, upstream: &Upstream, name: &str, content: &str);
    /// A file of the workspace's home, as stored by the runtime; `None` if absent.
    async fn read_file(&self, ws: &WorkspaceRef, name: &str) -> Option<String>;
    /// What is left of a deleted workspace: processes, cgroups, interfaces,
    /// rules, ports, files, each named. Empty when nothing is.
    async fn leftovers(&self, ws: &WorkspaceRef, upstream: &Upstream) -> Vec<String>;
    /// How long the app may take to become ready.
    fn start_timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
}

/// Pause (twice), start while paused, resume (twice): the app stops
/// answering and answers again at the same upstream.
async fn pause_and_resume(s: &dyn Subject, ws: &WorkspaceRef, upstream: &Upstream) {
    let (rt, id) = (s.runtime(), &ws.id);
    let observe = |what: &'static str| async move {
        rt.observe(id)
            .await
            .unwrap_or_else(|e| panic!("observe {what}: {e}"))
    };
    for _ in 0..2 {
        rt.pause(id).await.expect("pause");
    }
    assert_eq!(observe("paused").await, Observed::Paused);
    assert!(
        !s.app_answers(ws, upstream).await,
        "a paused app must not answer"
    );
    rt.start(ws).await.expect("start while paused");
    assert_eq!(
        observe("after start while paused").await,
        Observed::Paused,
        "starting a paused workspace leaves it paused"
    );
    for _ in 0..2 {
        rt.resume(id).await.expect("resume");
    }
    assert_eq!(
        wait_running(s, id).await,
        *upstream,
        "resume keeps the upstream"
    );
    assert!(s.app_answers(ws, upstream).await, "a resumed app answers");
}

/// Runs the story; panics with what went wrong.
pub async fn story(s: &dyn Subject) {
    let rt = s.runtime();
    let ws = s.workspace();
    let id = &ws.id;
    let observe = |what: &'static str| async move {
        rt.observe(id)
            .await
            .unwrap_or_else(|e| panic!("observe {what}: {e}"))
    };
    assert_eq!(observe("before").await, Observed::Absent);

    for _ in 0..2 {
        rt.start(&ws).await.expect("start");
    }
    let upstream = wait_running(s, id).await;
    assert!(rt.list().await.expect("list").iter().any(|i| i == id));
    assert!(s.app_answers(&ws, &upstream).await, "a running app answers");
    s.write_file(&ws, &upstream, "marker.txt", "first").await;
    assert_eq!(
        s.read_file(&ws, "marker.txt").await.as_deref(),
        Some("first")
    );

    if rt.capabilities().pause {
        pause_and_resume(s, &ws, &upstream).await;
    } else {
        assert!(
            matches!(rt.pause(id).await, Err(RuntimeError::Unsupported { .. })),
            "a runtime that cannot pause says so"
        );
        assert!(
            s.app_answers(&ws, &upstream).await,
            "and its app still answers"
        );
    }

    for _ in 0..2 {
        rt.stop(id).await.expect("stop");
    }
    assert_eq!(observe("stopped").await, Observed::Stopped);
    assert!(
        !s.app_answers(&ws, &upstream).await,
        "a stopped app is gone"
    );
    assert!(
        rt.pause(id).await.is_err(),
        "a stopped workspace cannot pause"
    );

    rt.start(&ws).await.expect("start again");
    let upstream = wait_running(s, id).await;
    assert_eq!(
        s.read_file(&ws, "marker.txt").await.as_deref(),
        Some("first"),
        "files survive stop and start"
    );

    for _ in 0..2 {
        rt.delete(id, false).await.expect("delete");
    }
    assert_eq!(observe("deleted").await, Observed::Absent);
    assert!(!rt.list().await.expect("list").iter().any(|i| i == id));
    assert_eq!(s.read_file(&ws, "marker.txt").await, None, "home deleted");
    assert_eq!(s.leftovers(&ws, &upstream).await, Vec::<String>::new());
}

/// Polls `observe` until the workspace runs; returns its upstream.
pub async fn wait_running(s: &dyn Subject, id: &WorkspaceId) -> Upstream {
    let rt = s.runtime();
    let deadline = Instant::now() + s.start_timeout();
    loop {
        let observed = rt.observe(id).await.expect("observe");
        match observed {
            Observed::Running { upstream } => return upstream,
            Observed::Failed { reason, message } => {
                panic!("workspace {id} failed: {reason}: {message}")
            }
            other => {
                if Instant::now() > deadline {
                    let log = rt.log_tail(id, 4096).await.unwrap_or_default();
                    panic!(
                        "workspace {id} still {other:?} after {:?}; log:\n{log}",
                        s.start_timeout()
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
