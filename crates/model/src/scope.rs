//! Scopes: what a token or session may do, in JupyterHub's vocabulary where it fits.
//!
//! A scope held by a non-admin reaches only that user's own resources (JupyterHub's
//! `!user=self` filter); a scope held by an admin reaches everyone's. A token's
//! scopes are intersected with its owner's role at every request, so demoting an
//! admin takes the power of their tokens away at once.

use std::collections::BTreeSet;
use std::fmt;

macro_rules! scopes {
    ($($variant:ident => $text:literal, admin_only: $admin:literal, implies: [$($implied:ident),*];)*) => {
        /// One permission.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Scope { $($variant),* }

        impl Scope {
            /// Every scope, in a stable order.
            pub const ALL: &'static [Scope] = &[$(Scope::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Scope::$variant => $text),* }
            }

            /// Whether only admins may hold it.
            pub fn admin_only(self) -> bool {
                match self { $(Scope::$variant => $admin),* }
            }

            /// The scopes this one includes directly.
            fn implies(self) -> &'static [Scope] {
                match self { $(Scope::$variant => &[$(Scope::$implied),*]),* }
            }
        }

        impl std::str::FromStr for Scope {
            type Err = UnknownScope;
            fn from_str(s: &str) -> Result<Self, UnknownScope> {
                match s {
                    $($text => Ok(Scope::$variant),)*
                    _ => Err(UnknownScope(s.to_owned())),
                }
            }
        }
    };
}

scopes! {
    ReadUsers => "read:users", admin_only: false, implies: [];
    UsersActivity => "users:activity", admin_only: false, implies: [];
    AdminUsers => "admin:users", admin_only: true, implies: [ReadUsers, UsersActivity];
    ReadServers => "read:servers", admin_only: false, implies: [];
    Servers => "servers", admin_only: false, implies: [ReadServers];
    AdminServers => "admin:servers", admin_only: true, implies: [Servers];
    AccessServers => "access:servers", admin_only: false, implies: [];
    ReadTokens => "read:tokens", admin_only: false, implies: [];
    Tokens => "tokens", admin_only: false, implies: [ReadTokens];
    ReadGroups => "read:groups", admin_only: false, implies: [];
    AdminGroups => "admin:groups", admin_only: true, implies: [ReadGroups];
    ReadProfiles => "read:profiles", admin_only: false, implies: [];
    AdminProfiles => "admin:profiles", admin_only: true, implies: [ReadProfiles];
    ReadAudit => "read:audit", admin_only: true, implies: [];
}

/// A scope name that berth does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}")]
pub struct UnknownScope(pub String);

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes, always closed under implication.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// The set holding `scopes` and everything they imply.
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Self {
        let mut set = BTreeSet::new();
        let mut todo: Vec<Scope> = scopes.into_iter().collect();
        while let Some(s) = todo.pop() {
            if set.insert(s) {
                todo.extend_from_slice(s.implies());
            }
        }
        ScopeSet(set)
    }

    /// Everything a user of that role may hold (JupyterHub's `user` and `admin` roles).
    pub fn for_role(is_admin: bool) -> Self {
        ScopeSet::new(
            Scope::ALL
                .iter()
                .copied()
                .filter(|s| is_admin || !s.admin_only()),
        )
    }

    /// Parses a space- or comma-separated list.
    pub fn parse(s: &str) -> Result<Self, UnknownScope> {
        s.split([' ', ','])
            .filter(|p| !p.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Scope>, _>>()
            .map(ScopeSet::new)
    }

    pub fn contains(&self, s: Scope) -> bool {
        self.0.contains(&s)
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.intersection(&other.0).copied().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(s.as_str())?;
        }
        Ok(())
    }
}

/// Who is making a request, and with which effective scopes.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub name: crate::Name,
    pub is_admin: bool,
    /// Already intersected with the role's scopes.
    pub scopes: ScopeSet,
    /// The token used, if any (for `last_used` and audit), else a session.
    pub token_id: Option<String>,
}

impl Principal {
    /// Builds a principal whose scopes never exceed the user's role.
    pub fn new(
        user_id: String,
        name: crate::Name,
        is_admin: bool,
        requested: &ScopeSet,
        token_id: Option<String>,
    ) -> Self {
        let scopes = requested.intersection(&ScopeSet::for_role(is_admin));
        Principal {
            user_id,
            name,
            is_admin,
            scopes,
            token_id,
        }
    }

    /// Whether the principal holds `scope` at all.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(scope)
    }

    /// Whether the principal holds `scope` for a resource owned by `owner_id`.
    pub fn may(&self, scope: Scope, owner_id: &str) -> bool {
        self.has(scope) && (self.is_admin || self.user_id == owner_id)
    }

    /// Whether the principal may see resources of other users (an admin's reach).
    pub fn reaches_everyone(&self, scope: Scope) -> bool {
        self.has(scope) && self.is_admin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implication_closes_the_set() {
        let s = ScopeSet::parse("admin:servers").unwrap();
        assert!(s.contains(Scope::Servers) && s.contains(Scope::ReadServers));
        assert_eq!(s.to_string(), "read:servers servers admin:servers");
    }

    #[test]
    fn round_trip_and_unknown() {
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>().unwrap(), *s);
        }
        assert_eq!(
            ScopeSet::parse("servers, root").unwrap_err(),
            UnknownScope("root".into())
        );
    }

    #[test]
    fn non_admin_reach_is_self_only() {
        let name = crate::Name::parse("alice").unwrap();
        let all = ScopeSet::for_role(true);
        let p = Principal::new("u1".into(), name.clone(), false, &all, None);
        assert!(!p.has(Scope::AdminUsers), "role caps the token");
        assert!(p.may(Scope::Servers, "u1"));
        assert!(!p.may(Scope::Servers, "u2"));
        assert!(!p.may(Scope::ReadServers, "u2"));
        let admin = Principal::new("u1".into(), name, true, &all, None);
        assert!(admin.may(Scope::Servers, "u2"));
        let narrow = ScopeSet::parse("read:servers").unwrap();
        let ro = Principal::new("u1".into(), admin.name.clone(), true, &narrow, None);
        assert!(ro.may(Scope::ReadServers, "u2") && !ro.may(Scope::Servers, "u2"));
    }
}
