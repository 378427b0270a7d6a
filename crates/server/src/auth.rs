//! Who is asking: sessions, API tokens, passwords, CSRF and login throttling.
//!
//! A request is authenticated by `Authorization: Bearer <token>` (or JupyterHub's
//! `Authorization: token <token>`), else by the `berth_session` cookie. Tokens and
//! session ids are random 256-bit values stored only as SHA-256 hashes; passwords
//! are argon2id hashes. A cookie-authenticated request that is not a read must
//! carry the session's CSRF token in `x-csrf-token`.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum_extra::extract::cookie::CookieJar;

use model::{now_millis, Filter, Principal, ScopeSet, Targets};
use store::{NewAudit, StoreError};

use crate::error::{ApiError, Code};
use crate::observe::RequestId;
use crate::AppState;

pub const SESSION_COOKIE: &str = "berth_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub use model::secret::{random_secret, sha256_hex, TOKEN_PREFIX};

/// Hashes a password with argon2id off the async threads.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)?
}

/// Checks a password against a stored hash; with no hash it still spends the same
/// time, so that response times do not tell which user names exist.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1l2mvJ2XrXDJkVHnm2ncRzHpnS9IZw1bOfx9mOaV1fs";
    tokio::task::spawn_blocking(move || {
        let stored = hash.as_deref().unwrap_or(DUMMY);
        let ok = PasswordHash::new(stored)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        ok && hash.is_some()
    })
    .await
    .unwrap_or(false)
}

/// Rules for a new password.
pub fn check_password(p: &str) -> Result<(), ApiError> {
    if p.chars().count() < 8 || p.len() > 1024 {
        return Err(ApiError::new(
            Code::InvalidValue,
            "password: must be 8 to 1024 characters",
        ));
    }
    Ok(())
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The context of an authenticated request: who, from where, which request.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub principal: Principal,
    pub request_id: String,
    pub source: Option<String>,
    /// The session's CSRF token when authenticated by cookie.
    pub csrf: Option<String>,
}

impl Ctx {
    /// The caller of an operation of [`app::App`].
    pub fn caller(&self) -> app::Caller<'_> {
        app::Caller {
            principal: &self.principal,
            request_id: &self.request_id,
            source: self.source.as_deref(),
        }
    }

    /// An audit record of a successful action by this principal.
    pub fn audit(
        &self,
        action: model::AuditAction,
        target_type: &'static str,
        target: &str,
    ) -> NewAudit {
        self.caller().audit(action, target_type, target)
    }

    /// An audit record of an action on a workspace (target `owner/name`).
    pub fn audit_workspace(
        &self,
        action: model::AuditAction,
        ws: &model::Workspace,
        detail: String,
    ) -> NewAudit {
        self.caller().audit_workspace(action, ws, detail)
    }

    /// Fails with 403 unless the principal holds `scope` for `owner_id`'s resources.
    pub fn require(&self, scope: model::Scope, owner_id: &str) -> Result<(), ApiError> {
        Ok(self.caller().require(scope, owner_id)?)
    }

    /// Fails with 403 unless the principal holds `scope` for `owner_id`'s
    /// workspace `workspace` (the owner's reach, or a filter naming the server).
    pub fn require_server(
        &self,
        scope: model::Scope,
        owner_id: &str,
        workspace: &str,
    ) -> Result<(), ApiError> {
        Ok(self.caller().require_server(scope, owner_id, workspace)?)
    }

    /// Fails with 403 unless the principal holds `scope` at all.
    pub fn require_any(&self, scope: model::Scope) -> Result<(), ApiError> {
        Ok(self.caller().require_any(scope)?)
    }
}

/// Where a request came from: the peer address.
pub fn source_of(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

pub fn request_id_of(parts: &Parts) -> String {
    parts
        .extensions
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}

fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then(|| token.trim())
}

/// Who a request's credentials belong to, with the session's CSRF token when it
/// came with the session cookie. Used by [`Ctx`] and by the proxy.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    /// Set for a cookie session: mutations must echo it in `x-csrf-token`.
    pub csrf: Option<String>,
}

/// A credential as the store last described it, with what it reached then.
#[derive(Debug)]
struct Cached {
    /// The store's credentials epoch when this was read: stale once it moves.
    epoch: u64,
    credential: Credential,
    user: model::User,
    /// What each of a token's scope filters reached.
    targets: BTreeMap<Filter, Targets>,
    /// The workspaces shared with the user, as (owner id, owner name,
    /// workspace name).
    shared: Vec<(String, model::Name, String)>,
}

#[derive(Debug)]
enum Credential {
    Token(model::Token),
    Session(store::SessionRow),
}

/// Looks a credential up by hash, resolving its filters and the user's shares.
async fn look_up(
    state: &AppState,
    hash: &str,
    is_token: bool,
    epoch: u64,
) -> Result<Cached, StoreError> {
    let (credential, user) = if is_token {
        let (t, u) = state.store.token_by_hash(hash).await?;
        (Credential::Token(t), u)
    } else {
        let (s, u) = state.store.session_by_hash(hash).await?;
        (Credential::Session(s), u)
    };
    let mut targets = BTreeMap::new();
    if let Credential::Token(t) = &credential {
        for f in t.scopes.all_filters() {
            if !targets.contains_key(f) {
                targets.insert(f.clone(), state.store.resolve_filter(f).await?);
            }
        }
    }
    let shared = state
        .store
        .shared_with(&user.id)
        .await?
        .into_iter()
        .map(|s| (s.owner_id, s.owner, s.workspace.to_string()))
        .collect();
    Ok(Cached {
        epoch,
        credential,
        user,
        targets,
        shared,
    })
}

/// Recently seen tokens and sessions by hash, so that a request (every proxied
/// one included) costs no database lookup. Changes made through this process
/// (revoking a token, logging out, changing or deleting a user) clear it at
/// once; other replicas' changes are seen within [`AuthCache::TTL`].
#[derive(Debug, Clone)]
pub struct AuthCache(moka::sync::Cache<String, Arc<Cached>>);

impl Default for AuthCache {
    fn default() -> Self {
        AuthCache(
            moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Self::TTL)
                .build(),
        )
    }
}

impl AuthCache {
    /// How long an entry lives at most, whatever the store says: changes this
    /// process does not commit (another replica's) are seen after this long.
    pub const TTL: Duration = Duration::from_secs(30);
}

/// Authenticates a request from its headers: a bearer token, else the session
/// cookie. No CSRF check here (the proxy forwards apps' own requests).
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Authenticated, ApiError> {
    let now = now_millis();
    let unauthenticated = || ApiError::new(Code::Unauthenticated, "log in or send an API token");
    let (hash, is_token) = if parts.headers.contains_key(header::AUTHORIZATION) {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::new(
                Code::Unauthenticated,
                "the authorization header must be `Bearer <token>` or `token <token>`",
            )
        })?;
        (sha256_hex(token), true)
    } else {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(cookie) = jar.get(SESSION_COOKIE) else {
            return Err(unauthenticated());
        };
        (sha256_hex(cookie.value()), false)
    };
    // Any committed change to credentials, users, groups or shares (the
    // controller's included) moves the epoch, and every entry read before is
    // stale: a revoked token or a disabled user is refused on its next request.
    let epoch = state.store.credentials_epoch();
    let cached = match state.auth_cache.0.get(&hash).filter(|c| c.epoch == epoch) {
        Some(c) => c,
        None => {
            let found = look_up(state, &hash, is_token, epoch).await;
            let c = match found {
                Ok(c) => Arc::new(c),
                Err(StoreError::NotFound { .. }) => return Err(unauthenticated()),
                Err(e) => return Err(e.into()),
            };
            state.auth_cache.0.insert(hash, c.clone());
            c
        }
    };
    let Cached {
        epoch: _,
        credential,
        user,
        targets,
        shared,
    } = &*cached;
    if user.disabled {
        return Err(unauthenticated());
    }
    let (scopes, token_id, csrf) = match credential {
        Credential::Token(tok) => {
            if tok.expires_at.is_some_and(|e| e <= now) {
                return Err(unauthenticated());
            }
            if state.should_touch(&tok.id, now) {
                // Once a minute per token, as JupyterHub does before it answers:
                // the token's `last_used` and its user's `last_activity` move.
                if let Err(e) = state.store.touch_token(&tok.id, &user.id, now).await {
                    tracing::warn!(token.id = %tok.id, "record token use: {e}");
                }
            }
            (tok.scopes.clone(), Some(tok.id.clone()), None)
        }
        Credential::Session(session) => {
            if session.expires_at <= now {
                return Err(unauthenticated());
            }
            let role = ScopeSet::for_role(user.is_admin);
            (role, None, Some(session.csrf.clone()))
        }
    };
    let principal = Principal::new(
        user.id.clone(),
        user.name.clone(),
        user.is_admin,
        &scopes,
        token_id,
        |f| targets.get(f).cloned().unwrap_or_default(),
    )
    .with_shared(shared.iter().cloned());
    let principal = if user.is_service {
        principal.service()
    } else {
        principal
    };
    Ok(Authenticated { principal, csrf })
}

impl Ctx {
    /// The context of a request whose credentials `who` are.
    pub(crate) fn of(who: Authenticated, parts: &Parts) -> Ctx {
        Ctx {
            principal: who.principal,
            request_id: request_id_of(parts),
            source: source_of(parts),
            csrf: who.csrf,
        }
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let who = authenticate(parts, state).await?;
        if let Some(expected) = &who.csrf {
            if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
                let sent = parts
                    .headers
                    .get(CSRF_HEADER)
                    .map(|v| v.as_bytes())
                    .unwrap_or_default();
                if !constant_time_eq(sent, expected.as_bytes()) {
                    return Err(ApiError::new(
                        Code::CsrfFailed,
                        "missing or wrong x-csrf-token header",
                    ));
                }
            }
        }
        Ok(Ctx::of(who, parts))
    }
}

/// Slows down password guessing: after `max_failures` failed logins for a user
/// name (or four times that from one address) within the window, further attempts
/// are refused for a lockout that doubles with each further failure.
#[derive(Debug)]
pub struct Throttle {
    max_failures: u32,
    base_lockout: Duration,
    entries: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);

impl Throttle {
    pub fn new(max_failures: u32, base_lockout: Duration) -> Self {
        Throttle {
            max_failures: max_failures.max(1),
            base_lockout,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn keys(user: &str, ip: Option<IpAddr>) -> [(String, u32); 2] {
        [
            (format!("u:{user}"), 1),
            (
                format!("ip:{}", ip.map(|i| i.to_string()).unwrap_or_default()),
                4,
            ),
        ]
    }

    fn lockout(&self, f: &Failures, factor: u32) -> Option<Duration> {
        let allowed = self.max_failures * factor;
        if f.count < allowed {
            return None;
        }
        let doublings = (f.count - allowed).min(16);
        let lock = (self.base_lockout * 2u32.pow(doublings)).min(MAX_LOCKOUT);
        let until = f.last + lock;
        until.checked_duration_since(Instant::now())
    }

    /// Seconds to wait before another attempt is allowed, if any.
    pub fn check(&self, user: &str, ip: Option<IpAddr>) -> Option<u64> {
        let entries = self.entries.lock().unwrap();
        Self::keys(user, ip)
            .iter()
            .filter_map(|(k, factor)| entries.get(k).and_then(|f| self.lockout(f, *factor)))
            .max()
            .map(|d| d.as_secs().max(1))
    }

    pub fn failed(&self, user: &str, ip: Option<IpAddr>) {
        let mut entries = self.entries.lock().unwrap();
        if entries.len() > 100_000 {
            entries.retain(|_, f| f.last.elapsed() < MAX_LOCKOUT);
        }
        for (k, _) in Self::keys(user, ip) {
            let e = entries.entry(k).or_insert(Failures {
                count: 0,
                last: Instant::now(),
            });
            if e.last.elapsed() > MAX_LOCKOUT {
                e.count = 0;
            }
            e.count += 1;
            e.last = Instant::now();
        }
    }

    pub fn succeeded(&self, user: &str) {
        self.entries.lock().unwrap().remove(&format!("u:{user}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_locks_after_max_failures_and_doubles() {
        let t = Throttle::new(3, Duration::from_secs(10));
        let ip = Some("127.0.0.1".parse().unwrap());
        for _ in 0..2 {
            t.failed("alice", ip);
            assert_eq!(t.check("alice", ip), None);
        }
        t.failed("alice", ip);
        let first = t.check("alice", ip).unwrap();
        assert!((9..=10).contains(&first), "{first}");
        t.failed("alice", ip);
        let second = t.check("alice", ip).unwrap();
        assert!((19..=20).contains(&second), "{second}");
        assert_eq!(t.check("bob", Some("10.0.0.1".parse().unwrap())), None);
        t.succeeded("alice");
        assert_eq!(t.check("alice", Some("10.0.0.2".parse().unwrap())), None);
    }

    #[test]
    fn many_names_from_one_address_are_throttled() {
        let t = Throttle::new(2, Duration::from_secs(10));
        let ip = Some("192.0.2.7".parse().unwrap());
        for i in 0..8 {
            t.failed(&format!("user{i}"), ip);
        }
        assert!(t.check("fresh", ip).is_some());
    }

    #[tokio::test]
    async fn passwords_verify_and_unknown_users_fail() {
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), Some(h.clone())).await);
        assert!(!verify_password("wrong".into(), Some(h)).await);
        assert!(!verify_password("anything".into(), None).await);
    }

    #[test]
    fn secrets_are_long_and_distinct() {
        let a = random_secret();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_secret());
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
    }
}
