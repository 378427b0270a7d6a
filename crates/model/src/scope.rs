//! Scopes: what a token or session may do, in JupyterHub's vocabulary where it fits.
//!
//! A scope held by a non-admin reaches only that user's own resources (JupyterHub's
//! `!user=self` filter); a scope held by an admin reaches everyone's. A token's
//! scopes are intersected with its owner's role at every request, so demoting an
//! admin takes the power of their tokens away at once.
//!
//! A scope may carry JupyterHub's filters, which narrow it to some resources:
//! `access:servers!server=alice/notebook`, `read:users!user=alice`,
//! `read:users!group=physics`. The default (unnamed) server is `alice/`. Filters
//! name users; the server resolves them to ids when it authenticates a request
//! ([`Principal::new`] takes the resolved [`Targets`]). `inherit`, in a list of
//! scopes, stands for everything the owner may do (JupyterHub's default for
//! tokens).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

macro_rules! scopes {
    ($($variant:ident => $text:literal, admin_only: $admin:literal,
       implies: [$($implied:ident),*];)*) => {
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
    // JupyterHub 6.1.1's scopes (`jupyterhub/scopes.py`), with the same
    // implications; not admin-only are those of its `user` role (`self`).
    AdminUi => "admin-ui", admin_only: true, implies: [];
    AdminUsers => "admin:users", admin_only: true,
        implies: [AdminAuthState, Users, ReadRolesUsers, DeleteUsers];
    AdminAuthState => "admin:auth_state", admin_only: true, implies: [];
    Users => "users", admin_only: true, implies: [ReadUsers, ListUsers, UsersActivity];
    DeleteUsers => "delete:users", admin_only: true, implies: [];
    ListUsers => "list:users", admin_only: true, implies: [ReadUsersName];
    ReadUsers => "read:users", admin_only: false,
        implies: [ReadUsersName, ReadUsersGroups, ReadUsersActivity];
    ReadUsersName => "read:users:name", admin_only: false, implies: [];
    ReadUsersGroups => "read:users:groups", admin_only: false, implies: [];
    ReadUsersActivity => "read:users:activity", admin_only: false, implies: [];
    ReadRoles => "read:roles", admin_only: true,
        implies: [ReadRolesUsers, ReadRolesServices, ReadRolesGroups];
    ReadRolesUsers => "read:roles:users", admin_only: true, implies: [];
    ReadRolesServices => "read:roles:services", admin_only: true, implies: [];
    ReadRolesGroups => "read:roles:groups", admin_only: true, implies: [];
    UsersActivity => "users:activity", admin_only: false, implies: [ReadUsersActivity];
    AdminServers => "admin:servers", admin_only: true, implies: [AdminServerState, Servers];
    AdminServerState => "admin:server_state", admin_only: true, implies: [];
    Servers => "servers", admin_only: false, implies: [ReadServers, StartServers, DeleteServers];
    ReadServers => "read:servers", admin_only: false, implies: [ReadUsersName];
    StartServers => "start:servers", admin_only: false, implies: [];
    DeleteServers => "delete:servers", admin_only: false, implies: [];
    Tokens => "tokens", admin_only: false, implies: [ReadTokens];
    ReadTokens => "read:tokens", admin_only: false, implies: [];
    AdminGroups => "admin:groups", admin_only: true,
        implies: [Groups, ReadRolesGroups, DeleteGroups];
    Groups => "groups", admin_only: true, implies: [ReadGroups, ListGroups];
    ListGroups => "list:groups", admin_only: true, implies: [ReadGroupsName];
    ReadGroups => "read:groups", admin_only: true, implies: [ReadGroupsName];
    ReadGroupsName => "read:groups:name", admin_only: true, implies: [];
    DeleteGroups => "delete:groups", admin_only: true, implies: [];
    AdminServices => "admin:services", admin_only: true,
        implies: [ListServices, ReadServices, ReadRolesServices];
    ListServices => "list:services", admin_only: true, implies: [ReadServicesName];
    ReadServices => "read:services", admin_only: true, implies: [ReadServicesName];
    ReadServicesName => "read:services:name", admin_only: true, implies: [];
    ReadHub => "read:hub", admin_only: true, implies: [];
    AccessServers => "access:servers", admin_only: false, implies: [];
    AccessServices => "access:services", admin_only: true, implies: [];
    UsersShares => "users:shares", admin_only: false, implies: [ReadUsersShares];
    ReadUsersShares => "read:users:shares", admin_only: false, implies: [];
    // berth lets users share their own workspaces (JupyterHub's `user` role
    // lacks `shares`): the README's table says so.
    GroupsShares => "groups:shares", admin_only: false, implies: [ReadGroupsShares];
    ReadGroupsShares => "read:groups:shares", admin_only: false, implies: [];
    ReadShares => "read:shares", admin_only: false, implies: [];
    Shares => "shares", admin_only: false,
        implies: [AccessServers, ReadShares, UsersShares, GroupsShares];
    Proxy => "proxy", admin_only: true, implies: [];
    Shutdown => "shutdown", admin_only: true, implies: [];
    ReadMetrics => "read:metrics", admin_only: true, implies: [];
    // berth's own.
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

/// What a filtered scope is narrowed to (JupyterHub's `!user=`, `!server=`, `!group=`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Filter {
    User(crate::Name),
    /// A user's server: `""` is the default one.
    Server(crate::Name, String),
    Group(crate::Name),
}

impl Filter {
    fn parse(s: &str) -> Result<Filter, UnknownScope> {
        let bad = || UnknownScope(s.to_owned());
        let (kind, value) = s.split_once('=').ok_or_else(bad)?;
        let name = |v: &str| crate::Name::parse(v).map_err(|_| bad());
        match kind {
            "user" => Ok(Filter::User(name(value)?)),
            "group" => Ok(Filter::Group(name(value)?)),
            "server" => {
                let (user, server) = value.split_once('/').ok_or_else(bad)?;
                if !server.is_empty() {
                    name(server)?;
                }
                Ok(Filter::Server(name(user)?, server.to_owned()))
            }
            _ => Err(bad()),
        }
    }

    /// Whether it names only `user`'s own resources (all a non-admin's role reaches).
    pub fn within_user(&self, user: &crate::Name) -> bool {
        matches!(self, Filter::User(u) | Filter::Server(u, _) if u == user)
    }

    /// Whether everything `other` reaches, this reaches too (a user's filter
    /// covers that user's servers).
    fn covers(&self, other: &Filter) -> bool {
        self == other || matches!((self, other), (Filter::User(u), Filter::Server(o, _)) if u == o)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::User(u) => write!(f, "user={u}"),
            Filter::Server(u, s) => write!(f, "server={u}/{s}"),
            Filter::Group(g) => write!(f, "group={g}"),
        }
    }
}

/// How far a held scope reaches: everywhere its holder's role allows, or only
/// the resources its filters name.
type Reach = Option<BTreeSet<Filter>>;

/// A set of scopes with their filters, always closed under implication (an
/// implied scope inherits the filters of the scope implying it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(BTreeMap<Scope, Reach>);

impl ScopeSet {
    /// The set holding `scopes`, unfiltered, and everything they imply.
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Self {
        let mut set = ScopeSet::default();
        for s in scopes {
            set.add(s, None);
        }
        set
    }

    /// Adds `scope` with `reach` and everything it implies.
    fn add(&mut self, scope: Scope, reach: Reach) {
        let mut todo = vec![scope];
        while let Some(s) = todo.pop() {
            let merged = match (self.0.get(&s), &reach) {
                (None, r) => r.clone(),
                (Some(None), _) | (_, None) => None,
                (Some(Some(have)), Some(new)) => Some(have.union(new).cloned().collect()),
            };
            if self.0.get(&s) != Some(&merged) {
                self.0.insert(s, merged);
                todo.extend_from_slice(s.implies());
            }
        }
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

    /// Parses a space- or comma-separated list of `scope` or `scope!filter=value`.
    pub fn parse(s: &str) -> Result<Self, UnknownScope> {
        let mut set = ScopeSet::default();
        for item in s.split([' ', ',']).filter(|p| !p.is_empty()) {
            if item == "inherit" {
                for s in Scope::ALL {
                    set.add(*s, None);
                }
                continue;
            }
            let (scope, filter) = match item.split_once('!') {
                Some((scope, filter)) => (
                    scope,
                    Some(Filter::parse(filter).map_err(|_| UnknownScope(item.to_owned()))?),
                ),
                None => (item, None),
            };
            let scope: Scope = scope.parse().map_err(|_| UnknownScope(item.to_owned()))?;
            set.add(scope, filter.map(|f| BTreeSet::from([f])));
        }
        Ok(set)
    }

    /// Whether `s` is held at all, with or without filters.
    pub fn contains(&self, s: Scope) -> bool {
        self.0.contains_key(&s)
    }

    /// The filters `s` is held with: `None` if unfiltered or not held.
    pub fn filters(&self, s: Scope) -> Option<&BTreeSet<Filter>> {
        self.0.get(&s)?.as_ref()
    }

    /// Whether everything this set grants, `other` grants too.
    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0
            .iter()
            .all(|(s, reach)| match (reach, other.0.get(s)) {
                (_, None) => false,
                (_, Some(None)) => true,
                (None, Some(Some(_))) => false,
                (Some(mine), Some(Some(theirs))) => {
                    mine.iter().all(|f| theirs.iter().any(|t| t.covers(f)))
                }
            })
    }

    /// What both sets grant (filters resolved as far as names allow: a user's
    /// filter and that user's server meet at the server; groups meet only groups).
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        let mut out = BTreeMap::new();
        for (s, a) in &self.0 {
            let Some(b) = other.0.get(s) else { continue };
            let reach = match (a, b) {
                (None, r) | (r, None) => r.clone(),
                (Some(a), Some(b)) => {
                    let meet: BTreeSet<Filter> = a
                        .iter()
                        .filter(|f| b.iter().any(|g| g.covers(f)))
                        .chain(b.iter().filter(|g| a.iter().any(|f| f.covers(g))))
                        .cloned()
                        .collect();
                    if meet.is_empty() {
                        continue;
                    }
                    Some(meet)
                }
            };
            out.insert(*s, reach);
        }
        ScopeSet(out)
    }

    /// The scopes held, with or without filters.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.keys().copied()
    }

    /// The same set with filters naming user `old` (and their servers) naming
    /// `new` instead: what a rename does to the tokens that name them.
    pub fn renamed_user(&self, old: &crate::Name, new: &crate::Name) -> ScopeSet {
        let rename = |f: &Filter| match f {
            Filter::User(u) if u == old => Filter::User(new.clone()),
            Filter::Server(u, s) if u == old => Filter::Server(new.clone(), s.clone()),
            other => other.clone(),
        };
        ScopeSet(
            self.0
                .iter()
                .map(|(s, reach)| (*s, reach.as_ref().map(|fs| fs.iter().map(rename).collect())))
                .collect(),
        )
    }

    /// Every filter named anywhere in the set.
    pub fn all_filters(&self) -> impl Iterator<Item = &Filter> + '_ {
        self.0.values().flatten().flatten()
    }

    /// JupyterHub's expanded form for a token or session of `owner`, as its
    /// models report it: what the owner's role allows, a non-admin's
    /// unfiltered scopes filtered to themselves, sorted.
    pub fn as_jupyterhub(&self, owner: &crate::Name, is_admin: bool) -> Vec<String> {
        let mut out = Vec::new();
        for (s, reach) in &self.intersection(&ScopeSet::for_role(is_admin)).0 {
            match reach {
                None if is_admin => out.push(s.to_string()),
                None => out.push(format!("{s}!user={owner}")),
                Some(filters) => out.extend(filters.iter().map(|f| format!("{s}!{f}"))),
            }
        }
        out.sort();
        out
    }

    /// JupyterHub's expanded form: one entry per scope and filter.
    pub fn to_strings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (s, reach) in &self.0 {
            match reach {
                None => out.push(s.to_string()),
                Some(filters) => out.extend(filters.iter().map(|f| format!("{s}!{f}"))),
            }
        }
        out
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_strings().join(" "))
    }
}

/// What a filter reaches, resolved to ids by the server at authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    /// Users whose resources are reached (from `user=` and `group=` filters).
    pub users: BTreeSet<String>,
    /// Servers reached, as (owner id, workspace name).
    pub servers: BTreeSet<(String, String)>,
}

/// Who is making a request, and with which effective scopes.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: crate::UserId,
    pub name: crate::Name,
    pub is_admin: bool,
    /// A JupyterHub service, not a person: no role of its own beyond admin's.
    pub is_service: bool,
    /// Already intersected with the role's scopes.
    pub scopes: ScopeSet,
    /// The token used, if any (for `last_used` and audit), else a session.
    pub token_id: Option<crate::TokenId>,
    /// For each filtered scope, what its filters reach.
    targets: BTreeMap<Scope, Targets>,
    /// Workspaces shared with this user, as (owner id, workspace name) → the
    /// owner's name: their `access:servers` reaches these beyond their role.
    shared: BTreeMap<(String, String), crate::Name>,
}

impl Principal {
    /// Builds a principal whose scopes never exceed the user's role;
    /// `resolve` says what each filter of `requested` reaches.
    pub fn new(
        user_id: crate::UserId,
        name: crate::Name,
        is_admin: bool,
        requested: &ScopeSet,
        token_id: Option<crate::TokenId>,
        resolve: impl Fn(&Filter) -> Targets,
    ) -> Self {
        let scopes = requested.intersection(&ScopeSet::for_role(is_admin));
        let mut targets = BTreeMap::new();
        for (s, reach) in &scopes.0 {
            let Some(filters) = reach else { continue };
            let t: &mut Targets = targets.entry(*s).or_default();
            for f in filters {
                let r = resolve(f);
                t.users.extend(r.users);
                t.servers.extend(r.servers);
            }
        }
        Principal {
            user_id,
            name,
            is_admin,
            is_service: false,
            scopes,
            token_id,
            targets,
            shared: BTreeMap::new(),
        }
    }

    /// The principal of a service: as JupyterHub's, its only role is admin's
    /// when it is an admin; else it holds nothing (it can still identify
    /// itself at `/hub/api/user`).
    pub fn service(mut self) -> Self {
        self.is_service = true;
        if !self.is_admin {
            self.scopes = ScopeSet::default();
            self.targets.clear();
        }
        self
    }

    /// The workspaces shared with the user, as (owner id, owner name,
    /// workspace name).
    pub fn with_shared(
        mut self,
        shared: impl IntoIterator<Item = (String, crate::Name, String)>,
    ) -> Self {
        self.shared = shared
            .into_iter()
            .map(|(id, owner, ws)| ((id, ws), owner))
            .collect();
        self
    }

    /// Whether the principal holds `scope` at all, with or without filters.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(scope)
    }

    /// Whether the principal holds `scope` for all resources owned by `owner_id`.
    pub fn may(&self, scope: Scope, owner_id: &str) -> bool {
        let role_reaches = self.is_admin || self.user_id == owner_id;
        match self.scopes.0.get(&scope) {
            None => false,
            Some(None) => role_reaches,
            Some(Some(_)) => {
                role_reaches
                    && self
                        .targets
                        .get(&scope)
                        .is_some_and(|t| t.users.contains(owner_id))
            }
        }
    }

    /// Whether the principal holds `scope` for the workspace `workspace` of
    /// `owner_id`: within its role's reach (or, for `access:servers`, a share),
    /// and within its filters.
    pub fn may_server(&self, scope: Scope, owner_id: &str, workspace: &str) -> bool {
        // Made only to look up a share or a filter (the proxy asks this for
        // every request).
        let server = || (owner_id.to_owned(), workspace.to_owned());
        let reach = self.is_admin
            || self.user_id == owner_id
            || (scope == Scope::AccessServers
                && !self.shared.is_empty()
                && self.shared.contains_key(&server()));
        reach
            && match self.scopes.0.get(&scope) {
                None => false,
                Some(None) => true,
                Some(Some(_)) => self
                    .targets
                    .get(&scope)
                    .is_some_and(|t| t.users.contains(owner_id) || t.servers.contains(&server())),
            }
    }

    /// The scopes as JupyterHub reports them (`GET /hub/api/user`).
    /// A share adds `access:servers!server=owner/name` to an unfiltered
    /// `access:servers`, as JupyterHub 5 adds a share's scopes, so that
    /// `jupyterhub-singleuser` lets the recipient's own tokens in.
    pub fn expanded_scopes(&self) -> Vec<String> {
        let mut out = self.scopes.as_jupyterhub(&self.name, self.is_admin);
        if !self.is_admin && matches!(self.scopes.0.get(&Scope::AccessServers), Some(None)) {
            for ((_, ws), owner) in &self.shared {
                let server = if ws == crate::DEFAULT_WORKSPACE {
                    ""
                } else {
                    ws
                };
                out.push(format!("access:servers!server={owner}/{server}"));
            }
            out.sort();
        }
        out
    }

    /// Whether the principal may see resources of other users (an admin's reach).
    pub fn reaches_everyone(&self, scope: Scope) -> bool {
        self.is_admin && matches!(self.scopes.0.get(&scope), Some(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implication_closes_the_set() {
        let s = ScopeSet::parse("admin:servers").unwrap();
        assert!(s.contains(Scope::Servers) && s.contains(Scope::ReadServers));
        assert_eq!(
            s.to_string(),
            "read:users:name admin:servers admin:server_state servers read:servers \
             start:servers delete:servers"
        );
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
        let p = Principal::new("u1".into(), name.clone(), false, &all, None, none);
        assert!(!p.has(Scope::AdminUsers), "role caps the token");
        assert!(p.may(Scope::Servers, "u1"));
        assert!(!p.may(Scope::Servers, "u2"));
        assert!(!p.may(Scope::ReadServers, "u2"));
        let admin = Principal::new("u1".into(), name, true, &all, None, none);
        assert!(admin.may(Scope::Servers, "u2"));
        let narrow = ScopeSet::parse("read:servers").unwrap();
        let ro = Principal::new("u1".into(), admin.name.clone(), true, &narrow, None, none);
        assert!(ro.may(Scope::ReadServers, "u2") && !ro.may(Scope::Servers, "u2"));
    }

    fn none(_: &Filter) -> Targets {
        Targets::default()
    }

    fn name(s: &str) -> crate::Name {
        crate::Name::parse(s).unwrap()
    }

    #[test]
    fn a_share_extends_access_and_nothing_else() {
        let role = ScopeSet::for_role(false);
        let bob = Principal::new("u2".into(), name("bob"), false, &role, None, none)
            .with_shared([("u1".to_owned(), name("alice"), "nb".to_owned())]);
        assert!(bob.may_server(Scope::AccessServers, "u1", "nb"));
        assert!(!bob.may_server(Scope::AccessServers, "u1", "other"));
        assert!(!bob.may_server(Scope::Servers, "u1", "nb"), "access only");
        assert!(!bob.may_server(Scope::ReadServers, "u1", "nb"));
        // As JupyterHub reports it, so that jupyterhub-singleuser lets him in.
        let scopes = bob.expanded_scopes();
        assert!(
            scopes.contains(&"access:servers!server=alice/nb".to_owned()),
            "{scopes:?}"
        );
        // A token without access:servers gets nothing from the share.
        let narrow = ScopeSet::parse("read:servers").unwrap();
        let ro = Principal::new("u2".into(), name("bob"), false, &narrow, None, none)
            .with_shared([("u1".to_owned(), name("alice"), "nb".to_owned())]);
        assert!(!ro.may_server(Scope::AccessServers, "u1", "nb"));
    }

    #[test]
    fn filters_parse_print_and_imply() {
        let s = ScopeSet::parse("servers!server=alice/ read:users!user=bob inherit").unwrap();
        assert!(
            s.filters(Scope::Servers).is_none(),
            "inherit holds all unfiltered"
        );
        let s = ScopeSet::parse("servers!server=alice/ read:users!group=physics").unwrap();
        assert_eq!(
            s.to_strings(),
            [
                "read:users!group=physics",
                "read:users:name!server=alice/",
                "read:users:name!group=physics",
                "read:users:groups!group=physics",
                "read:users:activity!group=physics",
                "servers!server=alice/",
                "read:servers!server=alice/",
                "start:servers!server=alice/",
                "delete:servers!server=alice/",
            ]
        );
        assert_eq!(ScopeSet::parse(&s.to_string()).unwrap(), s, "round trip");
        for bad in [
            "servers!server=alice",
            "servers!user=Alice",
            "servers!host=x",
            "servers!",
            "servers!server=alice/../bob",
            "nope!user=alice",
        ] {
            assert_eq!(
                ScopeSet::parse(bad).unwrap_err(),
                UnknownScope(bad.into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn filters_intersect_through_the_user_server_hierarchy() {
        let user = ScopeSet::parse("access:servers!user=alice").unwrap();
        let server = ScopeSet::parse("access:servers!server=alice/nb").unwrap();
        let other = ScopeSet::parse("access:servers!server=bob/nb").unwrap();
        let all = ScopeSet::parse("access:servers").unwrap();
        assert_eq!(user.intersection(&server), server);
        assert_eq!(server.intersection(&user), server);
        assert_eq!(all.intersection(&server), server);
        assert_eq!(user.intersection(&other), ScopeSet::default());
        assert!(server.is_subset(&user) && server.is_subset(&all));
        assert!(!user.is_subset(&server) && !other.is_subset(&user));
        assert!(!all.is_subset(&user));
    }

    #[test]
    fn filtered_scopes_reach_only_their_targets() {
        let scopes =
            ScopeSet::parse("access:servers!server=alice/nb read:servers!user=alice").unwrap();
        let resolve = |f: &Filter| match f {
            Filter::Server(u, s) if u.as_str() == "alice" => Targets {
                servers: [("u1".to_owned(), s.clone())].into(),
                ..Targets::default()
            },
            Filter::User(u) if u.as_str() == "alice" => Targets {
                users: ["u1".to_owned()].into(),
                ..Targets::default()
            },
            _ => Targets::default(),
        };
        let alice = Principal::new("u1".into(), name("alice"), false, &scopes, None, resolve);
        assert!(alice.may_server(Scope::AccessServers, "u1", "nb"));
        assert!(!alice.may_server(Scope::AccessServers, "u1", "other"));
        assert!(
            !alice.may(Scope::AccessServers, "u1"),
            "one server is not all"
        );
        assert!(alice.may(Scope::ReadServers, "u1"));
        assert!(!alice.reaches_everyone(Scope::ReadServers));
        // A non-admin's filters never reach past their own role: bob holding
        // a filter for alice's server gets nothing from it.
        let bob = Principal::new("u2".into(), name("bob"), false, &scopes, None, resolve);
        assert!(!bob.may_server(Scope::AccessServers, "u1", "nb"));
        assert!(!bob.may(Scope::ReadServers, "u1"));
        // An admin's filtered token reaches just what it names.
        let admin = Principal::new("u9".into(), name("root"), true, &scopes, None, resolve);
        assert!(admin.may_server(Scope::AccessServers, "u1", "nb"));
        assert!(!admin.may_server(Scope::AccessServers, "u3", "nb"));
        assert!(!admin.reaches_everyone(Scope::ReadServers));
    }
}
