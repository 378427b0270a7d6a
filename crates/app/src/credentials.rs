//! Who a credential belongs to: an API token or a session id, as presented,
//! to the principal it makes, from a cache that the store's credentials epoch
//! keeps honest.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::secret::sha256_hex;
use model::{now_millis, Principal, ScopeSet, TokenId};
use store::StoreError;

use crate::{App, AppError, Result};

/// A credential as a request presented it.
#[derive(Debug, Clone, Copy)]
pub enum Presented<'a> {
    /// An API token (a bearer or JupyterHub `token` header).
    Token(&'a str),
    /// A session id (the session cookie).
    Session(&'a str),
}

/// Who a credential belongs to, with the session's CSRF token when it was a
/// session (a cookie): mutations must echo it. The principal is the cache's,
/// shared by every request that presents the same credential.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Arc<Principal>,
    pub csrf: Option<String>,
}

/// A cache key: a credential's hash as of one credentials epoch. A lookup
/// begun at an older epoch may have read what a later commit revoked, so a
/// request at a newer epoch neither uses its entry nor waits for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    epoch: u64,
    hash: String,
}

/// A credential as the store last described it, with the principal it makes
/// built once: a cache hit costs no scope arithmetic.
#[derive(Debug)]
struct Cached {
    principal: Arc<Principal>,
    /// A session's CSRF token.
    csrf: Option<String>,
    /// When the token or session stops being accepted.
    expires_at: Option<i64>,
    disabled: bool,
    /// When this entry last saw the token's `last_used` written (or checked
    /// whether it was due), so that most hits skip [`Credentials::should_touch`].
    touched: AtomicI64,
}

/// Recently seen tokens and sessions by hash, so that a request (every
/// proxied one included) costs no database lookup. An entry is used only
/// while the store's credentials epoch stands where it was when the entry was
/// read: a commit that revokes a credential, changes a user, a group or a
/// share, on this replica or (through the change feed) any other, moves it.
/// Concurrent first requests with one credential make one lookup.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    cache: moka::future::Cache<Key, Arc<Cached>>,
    /// When each token's `last_used` was last written, to write it at most
    /// once a minute.
    touched: Arc<Mutex<HashMap<TokenId, i64>>>,
    /// How many times the store was asked: what the tests of single flight count.
    lookups: Arc<AtomicU64>,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials {
            cache: moka::future::Cache::builder()
                .max_capacity(100_000)
                // The epoch keeps entries honest; this bounds what no feed
                // tells (another process's commit on SQLite, a notification
                // lost while PostgreSQL was out of reach), and how long the
                // entries of a past epoch stay.
                .time_to_live(Duration::from_secs(30))
                .build(),
            touched: Arc::default(),
            lookups: Arc::default(),
        }
    }
}

impl Credentials {
    fn should_touch(&self, token_id: &TokenId, now: i64) -> bool {
        let mut touched = self.touched.lock().unwrap();
        match touched.get(token_id) {
            Some(&last) if now - last < 60_000 => false,
            _ => {
                touched.insert(token_id.clone(), now);
                true
            }
        }
    }
}

impl App {
    /// The principal `presented` belongs to; [`AppError::Unauthenticated`] for
    /// an unknown, expired or revoked credential and for a disabled user.
    pub async fn authenticate(&self, presented: Presented<'_>) -> Result<Authenticated> {
        let (hash, is_token) = match presented {
            Presented::Token(t) => (sha256_hex(t), true),
            Presented::Session(s) => (sha256_hex(s), false),
        };
        // Read before the lookup: a commit after this moves it, and its
        // entry is then another's.
        let epoch = self.store.credentials_epoch();
        let credentials = &self.credentials;
        let key = Key { epoch, hash };
        let cached = match credentials.cache.get(&key).await {
            Some(c) => c,
            // One lookup for all who ask at once; a failed one is not kept.
            None => credentials
                .cache
                .try_get_with(key.clone(), async {
                    credentials.lookups.fetch_add(1, Ordering::Relaxed);
                    self.look_up(&key.hash, is_token).await
                })
                .await
                .map_err(|e| match &*e {
                    StoreError::NotFound { .. } => AppError::Unauthenticated,
                    // Shared by every request that waited on the lookup.
                    e => AppError::Internal(format!(
                        "look up a credential: {}",
                        model::error_chain(e)
                    )),
                })?,
        };
        let now = now_millis();
        if cached.disabled || cached.expires_at.is_some_and(|e| e <= now) {
            return Err(AppError::Unauthenticated);
        }
        if let Some(token_id) = &cached.principal.token_id {
            if now - cached.touched.load(Ordering::Relaxed) >= 60_000 {
                cached.touched.store(now, Ordering::Relaxed);
                if credentials.should_touch(token_id, now) {
                    // Once a minute per token, as JupyterHub does before it
                    // answers: the token's `last_used` and its user's
                    // `last_activity` move.
                    let user_id = &cached.principal.user_id;
                    if let Err(e) = self.store.touch_token(token_id, user_id, now).await {
                        tracing::warn!(token.id = %token_id, "record token use: {e}");
                    }
                }
            }
        }
        Ok(Authenticated {
            principal: cached.principal.clone(),
            csrf: cached.csrf.clone(),
        })
    }

    /// Looks a credential up by hash, resolving its filters and the user's
    /// shares, and builds the principal it makes.
    async fn look_up(&self, hash: &str, is_token: bool) -> Result<Arc<Cached>, StoreError> {
        let store = &self.store;
        let (user, scopes, token_id, expires_at, csrf) = if is_token {
            let (t, u) = store.token_by_hash(hash).await?;
            (u, t.scopes, Some(t.id), t.expires_at, None)
        } else {
            let (s, u) = store.session_by_hash(hash).await?;
            let role = ScopeSet::for_role(u.is_admin);
            (u, role, None, Some(s.expires_at), Some(s.csrf))
        };
        let mut targets = BTreeMap::new();
        for f in scopes.all_filters() {
            if !targets.contains_key(f) {
                targets.insert(f.clone(), store.resolve_filter(f).await?);
            }
        }
        let shared = store
            .shared_with(&user.id)
            .await?
            .into_iter()
            .map(|s| (s.owner_id.into_string(), s.owner, s.workspace.to_string()));
        let principal = Principal::new(
            user.id.clone(),
            user.name.clone(),
            user.is_admin,
            &scopes,
            token_id,
            |f| targets.get(f).cloned().unwrap_or_default(),
        )
        .with_shared(shared);
        let principal = if user.is_service {
            principal.service()
        } else {
            principal
        };
        Ok(Arc::new(Cached {
            principal: Arc::new(principal),
            csrf,
            expires_at,
            disabled: user.disabled,
            touched: AtomicI64::new(0),
        }))
    }

    /// How many times authentication has asked the store about a credential.
    #[doc(hidden)]
    pub fn credential_lookups(&self) -> u64 {
        self.credentials.lookups.load(Ordering::Relaxed)
    }
}
