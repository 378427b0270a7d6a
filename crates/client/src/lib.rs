//! A typed HTTP client for berth's `/api/v1`, used by the CLI and the end-to-end
//! tests. It speaks only `api-types`; every non-2xx answer becomes
//! [`ClientError::Api`] with the server's stable error code.

use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

use api_types::*;

/// A request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{} ({}, HTTP {status})", body.message, body.code)]
    Api { status: u16, body: ErrorBody },
    #[error("the server answered HTTP {status} without an error body")]
    Status { status: u16 },
    #[error("invalid server URL {0:?}")]
    Url(String),
    #[error("request to {url} failed")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

impl ClientError {
    /// The server's error code, if the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { body, .. } => Some(&body.code),
            _ => None,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Filters for [`Client::workspaces`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkspaceQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// Filters for [`Client::audit`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// A berth API client, authenticated by token or by a logged-in session.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
    csrf: Option<String>,
}

impl Client {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8000`).
    pub fn new(base: &str, token: Option<String>) -> Result<Self> {
        let base = Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| ClientError::Url(base.to_owned()))?;
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .user_agent(concat!("berth-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Http {
                url: base.to_string(),
                source: e,
            })?;
        Ok(Client {
            http,
            base,
            token,
            csrf: None,
        })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// A path berth gave (a workspace's `url`) as an absolute URL.
    pub fn absolute(&self, path: &str) -> String {
        self.base
            .join(path)
            .map_or_else(|_| path.to_owned(), String::from)
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("http(s) URLs have paths")
            .pop_if_empty()
            .extend(segments);
        url
    }

    async fn send<B: Serialize, Q: Serialize>(
        &self,
        method: Method,
        segments: &[&str],
        query: Option<&Q>,
        body: Option<&B>,
    ) -> Result<reqwest::Response> {
        let url = self.url(segments);
        let mut req = self.http.request(method, url.clone());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(c) = &self.csrf {
            req = req.header("x-csrf-token", c);
        }
        if let Some(q) = query {
            req = req.query(q);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(|e| ClientError::Http {
            url: url.to_string(),
            source: e,
        })?;
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status().as_u16();
        match res.json::<ErrorBody>().await {
            Ok(body) => Err(ClientError::Api { status, body }),
            Err(_) => Err(ClientError::Status { status }),
        }
    }

    async fn call<T: DeserializeOwned, B: Serialize, Q: Serialize>(
        &self,
        method: Method,
        segments: &[&str],
        query: Option<&Q>,
        body: Option<&B>,
    ) -> Result<T> {
        let res = self.send(method, segments, query, body).await?;
        let url = res.url().to_string();
        res.json()
            .await
            .map_err(|e| ClientError::Http { url, source: e })
    }

    async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T> {
        self.call::<T, (), ()>(Method::GET, segments, None, None)
            .await
    }

    async fn post<T: DeserializeOwned, B: Serialize>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<T> {
        self.call::<T, B, ()>(Method::POST, segments, None, Some(body))
            .await
    }

    async fn patch<T: DeserializeOwned, B: Serialize>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<T> {
        self.call::<T, B, ()>(Method::PATCH, segments, None, Some(body))
            .await
    }

    async fn put<T: DeserializeOwned, B: Serialize>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<T> {
        self.call::<T, B, ()>(Method::PUT, segments, None, Some(body))
            .await
    }

    async fn delete(&self, segments: &[&str]) -> Result<()> {
        self.send::<(), ()>(Method::DELETE, segments, None, None)
            .await
            .map(drop)
    }

    // ---- session -----------------------------------------------------------

    /// Logs in with a password; later calls use the session cookie and CSRF token.
    pub async fn login(&mut self, username: &str, password: &str) -> Result<Me> {
        let body = LoginRequest {
            username: username.to_owned(),
            password: password.to_owned(),
        };
        let me: Me = self.post(&["api", "v1", "auth", "login"], &body).await?;
        self.csrf = me.csrf_token.clone();
        Ok(me)
    }

    pub async fn logout(&mut self) -> Result<()> {
        self.send::<(), ()>(Method::POST, &["api", "v1", "auth", "logout"], None, None)
            .await?;
        self.csrf = None;
        Ok(())
    }

    pub async fn me(&self) -> Result<Me> {
        self.get(&["api", "v1", "me"]).await
    }

    // ---- users -------------------------------------------------------------

    pub async fn users(&self, after: Option<&str>) -> Result<Page<User>> {
        let q = [("after", after)];
        self.call::<_, (), _>(Method::GET, &["api", "v1", "users"], Some(&q), None)
            .await
    }

    pub async fn create_user(&self, req: &UserCreate) -> Result<User> {
        self.post(&["api", "v1", "users"], req).await
    }

    pub async fn user(&self, name: &str) -> Result<User> {
        self.get(&["api", "v1", "users", name]).await
    }

    pub async fn update_user(&self, name: &str, req: &UserUpdate) -> Result<User> {
        self.patch(&["api", "v1", "users", name], req).await
    }

    /// Sets a password: one's own with the current one as `old_password`, or
    /// (admins) another user's.
    pub async fn set_password(&self, name: &str, req: &PasswordChange) -> Result<()> {
        self.send(
            Method::PUT,
            &["api", "v1", "users", name, "password"],
            None::<&()>,
            Some(req),
        )
        .await
        .map(drop)
    }

    pub async fn delete_user(&self, name: &str) -> Result<()> {
        self.delete(&["api", "v1", "users", name]).await
    }

    pub async fn user_quota(&self, name: &str) -> Result<UserQuota> {
        self.get(&["api", "v1", "users", name, "quota"]).await
    }

    /// Replaces the user's own limits (admins); `None` ones are the default's.
    pub async fn set_user_quota(&self, name: &str, req: &QuotaUpdate) -> Result<UserQuota> {
        self.put(&["api", "v1", "users", name, "quota"], req).await
    }

    pub async fn reset_user_quota(&self, name: &str) -> Result<()> {
        self.delete(&["api", "v1", "users", name, "quota"]).await
    }

    // ---- groups ------------------------------------------------------------

    pub async fn groups(&self) -> Result<Vec<Group>> {
        self.get(&["api", "v1", "groups"]).await
    }

    pub async fn create_group(&self, req: &GroupCreate) -> Result<Group> {
        self.post(&["api", "v1", "groups"], req).await
    }

    pub async fn add_group_members(&self, group: &str, users: Vec<String>) -> Result<Group> {
        self.post(
            &["api", "v1", "groups", group, "members"],
            &GroupMembers { users },
        )
        .await
    }

    pub async fn remove_group_member(&self, group: &str, user: &str) -> Result<()> {
        self.delete(&["api", "v1", "groups", group, "members", user])
            .await
    }

    pub async fn delete_group(&self, name: &str) -> Result<()> {
        self.delete(&["api", "v1", "groups", name]).await
    }

    // ---- tokens ------------------------------------------------------------

    pub async fn tokens(&self, user: &str) -> Result<Vec<Token>> {
        self.get(&["api", "v1", "users", user, "tokens"]).await
    }

    pub async fn create_token(&self, user: &str, req: &TokenCreate) -> Result<TokenCreated> {
        self.post(&["api", "v1", "users", user, "tokens"], req)
            .await
    }

    pub async fn delete_token(&self, user: &str, id: &str) -> Result<()> {
        self.delete(&["api", "v1", "users", user, "tokens", id])
            .await
    }

    // ---- profiles ----------------------------------------------------------

    pub async fn profiles(&self) -> Result<Vec<Profile>> {
        self.get(&["api", "v1", "profiles"]).await
    }

    pub async fn profile(&self, name: &str) -> Result<Profile> {
        self.get(&["api", "v1", "profiles", name]).await
    }

    pub async fn create_profile(&self, req: &ProfileCreate) -> Result<Profile> {
        self.post(&["api", "v1", "profiles"], req).await
    }

    pub async fn update_profile(&self, name: &str, req: &ProfileUpdate) -> Result<Profile> {
        self.patch(&["api", "v1", "profiles", name], req).await
    }

    pub async fn delete_profile(&self, name: &str) -> Result<()> {
        self.delete(&["api", "v1", "profiles", name]).await
    }

    // ---- workspaces --------------------------------------------------------

    pub async fn workspaces(&self, q: &WorkspaceQuery) -> Result<Page<Workspace>> {
        self.call::<_, (), _>(Method::GET, &["api", "v1", "workspaces"], Some(q), None)
            .await
    }

    pub async fn create_workspace(&self, req: &WorkspaceCreate) -> Result<Workspace> {
        self.post(&["api", "v1", "workspaces"], req).await
    }

    pub async fn workspace(&self, id: &str) -> Result<Workspace> {
        self.get(&["api", "v1", "workspaces", id]).await
    }

    pub async fn update_workspace(&self, id: &str, req: &WorkspaceUpdate) -> Result<Workspace> {
        self.patch(&["api", "v1", "workspaces", id], req).await
    }

    pub async fn start_workspace(&self, id: &str) -> Result<Workspace> {
        self.call::<_, (), ()>(
            Method::POST,
            &["api", "v1", "workspaces", id, "start"],
            None,
            None,
        )
        .await
    }

    /// Follows the start of `owner`'s workspace `name` (JupyterHub's progress
    /// events), calling `each` with every event's message (`log` tells the
    /// app's own output from berth's steps) until the start ends: `Ok(true)`
    /// once it is ready, `Ok(false)` if it failed or was cancelled.
    pub async fn follow_start(
        &self,
        owner: &str,
        name: &str,
        mut each: impl FnMut(&str, bool),
    ) -> Result<bool> {
        let mut segments = vec!["hub", "api", "users", owner];
        match name {
            "default" => segments.extend(["server", "progress"]),
            named => segments.extend(["servers", named, "progress"]),
        }
        let mut res = self
            .send::<(), ()>(Method::GET, &segments, None, None)
            .await?;
        let url = res.url().to_string();
        let mut pending = Vec::new();
        loop {
            let chunk = res.chunk().await.map_err(|e| ClientError::Http {
                url: url.clone(),
                source: e,
            })?;
            let Some(chunk) = chunk else {
                return Ok(false);
            };
            pending.extend_from_slice(&chunk);
            // One event per `data:` line (berth sends each on one line).
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                let Some(data) = line.trim_end().strip_prefix("data:") else {
                    continue;
                };
                let Ok(event) = serde_json::from_str::<serde_json::Value>(data.trim()) else {
                    continue;
                };
                let message = event["message"].as_str().unwrap_or_default();
                each(message, event["log"].as_bool().unwrap_or(false));
                if event["ready"].as_bool() == Some(true) {
                    return Ok(true);
                }
                if event["failed"].as_bool() == Some(true) {
                    return Ok(false);
                }
            }
        }
    }

    /// The workspace's log (its last `tail` lines, or its last MiB), handed to
    /// `each` as it arrives; with `follow`, then what the app writes next,
    /// until the workspace is deleted or `each` returns `false`.
    pub async fn logs(
        &self,
        id: &str,
        tail: Option<u32>,
        follow: bool,
        mut each: impl FnMut(&[u8]) -> bool,
    ) -> Result<()> {
        #[derive(Serialize)]
        struct Query {
            #[serde(skip_serializing_if = "Option::is_none")]
            tail: Option<u32>,
            follow: bool,
        }
        let q = Query { tail, follow };
        let mut res = self
            .send::<(), _>(
                Method::GET,
                &["api", "v1", "workspaces", id, "logs"],
                Some(&q),
                None,
            )
            .await?;
        let url = res.url().to_string();
        while let Some(chunk) = res.chunk().await.map_err(|e| ClientError::Http {
            url: url.clone(),
            source: e,
        })? {
            if !each(&chunk) {
                break;
            }
        }
        Ok(())
    }

    pub async fn stop_workspace(&self, id: &str) -> Result<Workspace> {
        self.call::<_, (), ()>(
            Method::POST,
            &["api", "v1", "workspaces", id, "stop"],
            None,
            None,
        )
        .await
    }

    /// Deletes a workspace; with `keep_files` its files are set aside, not deleted.
    pub async fn delete_workspace(&self, id: &str, keep_files: bool) -> Result<Workspace> {
        let query = [("keep_files", keep_files)];
        self.call::<_, (), _>(
            Method::DELETE,
            &["api", "v1", "workspaces", id],
            Some(&query),
            None,
        )
        .await
    }

    // ---- shares --------------------------------------------------------------

    pub async fn shares(&self, workspace_id: &str) -> Result<Vec<Share>> {
        self.get(&["api", "v1", "workspaces", workspace_id, "shares"])
            .await
    }

    pub async fn share(&self, workspace_id: &str, req: &ShareCreate) -> Result<Share> {
        self.post(&["api", "v1", "workspaces", workspace_id, "shares"], req)
            .await
    }

    /// Revokes the share with a user (`group` false) or a group.
    pub async fn unshare(&self, workspace_id: &str, group: bool, name: &str) -> Result<()> {
        let kind = if group { "groups" } else { "users" };
        self.delete(&[
            "api",
            "v1",
            "workspaces",
            workspace_id,
            "shares",
            kind,
            name,
        ])
        .await
    }

    pub async fn unshare_all(&self, workspace_id: &str) -> Result<()> {
        self.delete(&["api", "v1", "workspaces", workspace_id, "shares"])
            .await
    }

    /// What is shared with `user`, directly or through a group.
    pub async fn shared_with(&self, user: &str) -> Result<Vec<Share>> {
        self.get(&["api", "v1", "users", user, "shared"]).await
    }

    // ---- audit and documents -------------------------------------------------

    pub async fn audit(&self, q: &AuditQuery) -> Result<Page<AuditRecord>> {
        self.call::<_, (), _>(Method::GET, &["api", "v1", "audit"], Some(q), None)
            .await
    }

    // ---- services (JupyterHub's, under /hub/api) ------------------------------

    /// The services by name, in JupyterHub's model.
    pub async fn services(&self) -> Result<serde_json::Map<String, serde_json::Value>> {
        self.get(&["hub", "api", "services"]).await
    }

    /// Creates a service that authenticates with `api_token`.
    pub async fn create_service(
        &self,
        name: &str,
        admin: bool,
        api_token: &str,
    ) -> Result<serde_json::Value> {
        let body = serde_json::json!({"admin": admin, "api_token": api_token});
        self.post(&["hub", "api", "services", name], &body).await
    }

    pub async fn delete_service(&self, name: &str) -> Result<()> {
        self.delete(&["hub", "api", "services", name]).await
    }

    /// The server's OpenAPI document.
    pub async fn openapi(&self) -> Result<serde_json::Value> {
        self.get(&["api", "v1", "openapi.json"]).await
    }
}
