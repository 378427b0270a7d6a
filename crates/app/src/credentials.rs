//! Who a credential belongs to: an API token or a session id, as presented,
//! to the principal it makes, from a cache that the store's credentials epoch
//! keeps honest.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::secret::sha256_hex;
use model::{now_millis, Filter, Principal, ScopeSet, Targets};
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
/// session (a cookie): mutations must echo it.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
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

/// Recently seen tokens and sessions by hash, so that a request (every
/// proxied one included) costs no database lookup. An entry is used only
/// while the store's credentials epoch stands where it was when the entry was
/// read: a commit that revokes a credential, changes a user, a group or a
/// share, on this replica or (through the change feed) any other, moves it.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    cache: moka::sync::Cache<String, Arc<Cached>>,
    /// When each token's `last_used` was last written, to write it at most
    /// once a minute.
    touched: Arc<Mutex<HashMap<String, i64>>>,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials {
            cache: moka::sync::Cache::builder()
                .max_capacity(100_000)
                // The epoch keeps entries honest; this bounds what no feed
                // tells (another process's commit on SQLite, a notification
                // lost while PostgreSQL was out of reach).
                .time_to_live(Duration::from_secs(30))
                .build(),
            touched: Arc::default(),
        }
    }
}

impl Credentials {
    fn should_touch(&self, token_id: &str, now: i64) -> bool {
        let mut touched = self.touched.lock().unwrap();
        match touched.get(token_id) {
            Some(&last) if now - last < 60_000 => false,
            _ => {
                touched.insert(token_id.to_owned(), now);
                true
            }
        }
    }
}

impl App {
    /// The principal `presented` belongs to; [`AppError::Unauthenticated`] for
    /// an unknown, expired or revoked credential and for a disabled user.
    pub async fn authenticate(&self, presented: Presented<'_>) -> Result<Authenticated> {
        let now = now_millis();
        let (hash, is_token) = match presented {
            Presented::Token(t) => (sha256_hex(t), true),
            Presented::Session(s) => (sha256_hex(s), false),
        };
        let epoch = self.store.credentials_epoch();
        let credentials = &self.credentials;
        let cached = match credentials.cache.get(&hash).filter(|c| c.epoch == epoch) {
            Some(c) => c,
            None => {
                let c = match self.look_up(&hash, is_token, epoch).await {
                    Ok(c) => Arc::new(c),
                    Err(StoreError::NotFound { .. }) => return Err(AppError::Unauthenticated),
                    Err(e) => return Err(e.into()),
                };
                credentials.cache.insert(hash, c.clone());
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
            return Err(AppError::Unauthenticated);
        }
        let (scopes, token_id, csrf) = match credential {
            Credential::Token(tok) => {
                if tok.expires_at.is_some_and(|e| e <= now) {
                    return Err(AppError::Unauthenticated);
                }
                if credentials.should_touch(&tok.id, now) {
                    // Once a minute per token, as JupyterHub does before it
                    // answers: the token's `last_used` and its user's
                    // `last_activity` move.
                    if let Err(e) = self.store.touch_token(&tok.id, &user.id, now).await {
                        tracing::warn!(token.id = %tok.id, "record token use: {e}");
                    }
                }
                (tok.scopes.clone(), Some(tok.id.clone()), None)
            }
            Credential::Session(session) => {
                if session.expires_at <= now {
                    return Err(AppError::Unauthenticated);
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

    /// Looks a credential up by hash, resolving its filters and the user's shares.
    async fn look_up(&self, hash: &str, is_token: bool, epoch: u64) -> Result<Cached, StoreError> {
        let store = &self.store;
        let (credential, user) = if is_token {
            let (t, u) = store.token_by_hash(hash).await?;
            (Credential::Token(t), u)
        } else {
            let (s, u) = store.session_by_hash(hash).await?;
            (Credential::Session(s), u)
        };
        let mut targets = BTreeMap::new();
        if let Credential::Token(t) = &credential {
            for f in t.scopes.all_filters() {
                if !targets.contains_key(f) {
                    targets.insert(f.clone(), store.resolve_filter(f).await?);
                }
            }
        }
        let shared = store
            .shared_with(&user.id)
            .await?
            .into_iter()
            .map(|s| (s.owner_id.into_string(), s.owner, s.workspace.to_string()))
            .collect();
        Ok(Cached {
            epoch,
            credential,
            user,
            targets,
            shared,
        })
    }
}
