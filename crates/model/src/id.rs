//! Ids of the things the store keeps, one type each, so that a user's id is
//! never passed where a workspace's is wanted. An id is opaque text (the
//! store makes them); it reads as a `&str` wherever one is expected.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default,
            serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }
    )*};
}

ids! {
    /// A workspace's id: also its directory's name under the data dir and
    /// the suffix of its OAuth client id.
    WorkspaceId,
    /// A user's (or a service's) id.
    UserId,
    /// An API token's id (not the token, which is never kept).
    TokenId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_reads_and_serializes_as_its_text() {
        let id = WorkspaceId::new("w1");
        assert_eq!(id, "w1");
        assert_eq!(&*id, "w1");
        assert_eq!(id.to_string(), "w1");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"w1\"");
        let set: std::collections::HashSet<WorkspaceId> = [id.clone()].into();
        assert!(set.contains("w1"));
    }
}
