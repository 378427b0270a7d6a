//! The conformance story against the in-memory fake, whose "app" answers while
//! it runs and writes into a simulated home.

use async_trait::async_trait;
use model::{Name, ProfileSpec};
use runtime::{FakeRuntime, Observed, Runtime, WorkspaceRef};
use runtime_conformance::Subject;

struct Fake(FakeRuntime);

#[async_trait]
impl Subject for Fake {
    fn runtime(&self) -> &dyn Runtime {
        &self.0
    }

    fn workspace(&self) -> WorkspaceRef {
        WorkspaceRef {
            id: "w1".into(),
            owner: Name::parse("alice").unwrap(),
            name: Name::parse("lab").unwrap(),
            uid: 100_000,
            base_url: "/user/alice/lab/".into(),
            profile_name: Name::parse("standard").unwrap(),
            profile: ProfileSpec::standard(),
            env: Vec::new(),
            secrets: Vec::new(),
            image: None,
        }
    }

    async fn app_answers(&self, ws: &WorkspaceRef, upstream: &model::Upstream) -> bool {
        matches!(self.0.observe(&ws.id).await, Ok(Observed::Running { upstream: u }) if &u == upstream)
    }

    async fn write_file(
        &self,
        ws: &WorkspaceRef,
        _upstream: &model::Upstream,
        name: &str,
        content: &str,
    ) {
        assert!(self.0.write_file(&ws.id, name, content), "not running");
    }

    async fn read_file(&self, ws: &WorkspaceRef, name: &str) -> Option<String> {
        self.0.read_file(&ws.id, name)
    }

    async fn leftovers(&self, ws: &WorkspaceRef, _upstream: &model::Upstream) -> Vec<String> {
        let mut left = Vec::new();
        if self.0.list().await.unwrap().contains(&ws.id) {
            left.push(format!("workspace {}", ws.id));
        }
        left
    }
}

#[tokio::test]
async fn the_fake_runtime_conforms() {
    runtime_conformance::story(&Fake(FakeRuntime::new())).await;
}
