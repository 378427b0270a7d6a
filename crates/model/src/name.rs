//! Safe names for users, groups, profiles and workspaces.
//!
//! One pattern for all of them: it must be usable as a URL path segment
//! (`/user/{user}/{workspace}/`), a DNS label and hostname, and a Unix user name,
//! without escaping. Lowercase ASCII letters, digits and inner hyphens, starting
//! with a letter, at most 32 characters: `^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$`.

use std::fmt;

/// The documented pattern that every [`Name`] matches.
pub const NAME_PATTERN: &str = "^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$";

const MAX_LEN: usize = 32;

/// A validated name; constructing one is the only way to get one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(String);

/// Why a string is not a valid [`Name`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is longer than {MAX_LEN} characters")]
    TooLong,
    #[error("name must start with a lowercase letter")]
    BadStart,
    #[error("name must not end with a hyphen")]
    BadEnd,
    #[error("name may contain only lowercase letters, digits and hyphens (found {0:?})")]
    BadChar(char),
}

impl Name {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        Name::check(s)?;
        Ok(Name(s.to_owned()))
    }

    /// Whether `s` is a valid name, without making one (the proxy checks the
    /// names in every request's path).
    pub fn check(s: &str) -> Result<(), NameError> {
        let first = s.chars().next().ok_or(NameError::Empty)?;
        if s.len() > MAX_LEN {
            return Err(NameError::TooLong);
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(NameError::BadChar(c));
        }
        if !first.is_ascii_lowercase() {
            return Err(NameError::BadStart);
        }
        if s.ends_with('-') {
            return Err(NameError::BadEnd);
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Name {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Name::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        let good = ["a", "alice", "a1", "data-science", "x-2", &"a".repeat(32)];
        for g in good {
            assert!(Name::parse(g).is_ok(), "{g:?} should be valid");
        }
        let bad: &[(&str, NameError)] = &[
            ("", NameError::Empty),
            (&"a".repeat(33), NameError::TooLong),
            ("1abc", NameError::BadStart),
            ("-abc", NameError::BadStart),
            ("abc-", NameError::BadEnd),
            ("Alice", NameError::BadChar('A')),
            ("a/b", NameError::BadChar('/')),
            ("..", NameError::BadChar('.')),
            ("a%2fb", NameError::BadChar('%')),
            ("a b", NameError::BadChar(' ')),
            ("a\0", NameError::BadChar('\0')),
            ("ä", NameError::BadChar('ä')),
        ];
        for (b, e) in bad {
            assert_eq!(Name::parse(b).as_ref(), Err(e), "{b:?}");
        }
    }

    proptest! {
        #[test]
        fn valid_names_match_the_documented_pattern(s in "\\PC{0,40}") {
            let re_ok = {
                let b = s.as_bytes();
                !b.is_empty() && b.len() <= 32 && b[0].is_ascii_lowercase()
                    && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                    && *b.last().unwrap() != b'-'
            };
            prop_assert_eq!(Name::parse(&s).is_ok(), re_ok);
        }

        #[test]
        fn accepted_names_are_path_and_host_safe(s in "[a-z][a-z0-9-]{0,40}") {
            if let Ok(n) = Name::parse(&s) {
                prop_assert!(!n.as_str().contains(['/', '.', '%', '\\']));
                prop_assert!(n.as_str().len() <= 32);
            }
        }
    }
}
