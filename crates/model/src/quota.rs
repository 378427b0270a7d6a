//! How much one user may hold, and a user's own limits in place of the default.

/// The limits of one user: workspaces held, and the CPU and memory of those
/// asked to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Quota {
    pub max_workspaces: u64,
    pub max_cpu_millis: u64,
    pub max_memory_bytes: u64,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            max_workspaces: 10,
            max_cpu_millis: 16_000,
            max_memory_bytes: 64 << 30,
        }
    }
}

/// The most any limit may be set to: far beyond one machine or cluster, small
/// enough that sums of them cannot overflow.
pub const QUOTA_CEILING: QuotaOverride = QuotaOverride {
    max_workspaces: Some(100_000),
    max_cpu_millis: Some(1_000_000_000),
    max_memory_bytes: Some(1 << 60),
};

/// An administrator's limits for one user; each one left `None` is the
/// default's. Zero is a limit too: a user with `max_workspaces` 0 may hold none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QuotaOverride {
    pub max_workspaces: Option<u64>,
    pub max_cpu_millis: Option<u64>,
    pub max_memory_bytes: Option<u64>,
}

impl QuotaOverride {
    /// Whether it sets no limit at all (the user has the default quota).
    pub fn is_empty(&self) -> bool {
        *self == QuotaOverride::default()
    }

    /// The limits above [`QUOTA_CEILING`], by field name, with the ceiling.
    pub fn over_ceiling(&self) -> Vec<(&'static str, u64)> {
        let c = QUOTA_CEILING;
        [
            ("max_workspaces", self.max_workspaces, c.max_workspaces),
            ("max_cpu_millis", self.max_cpu_millis, c.max_cpu_millis),
            (
                "max_memory_bytes",
                self.max_memory_bytes,
                c.max_memory_bytes,
            ),
        ]
        .into_iter()
        .filter_map(|(field, v, max)| match (v, max) {
            (Some(v), Some(max)) if v > max => Some((field, max)),
            _ => None,
        })
        .collect()
    }
}

impl Quota {
    /// This quota with `o`'s limits in place of its own.
    pub fn with(self, o: Option<&QuotaOverride>) -> Quota {
        let Some(o) = o else { return self };
        Quota {
            max_workspaces: o.max_workspaces.unwrap_or(self.max_workspaces),
            max_cpu_millis: o.max_cpu_millis.unwrap_or(self.max_cpu_millis),
            max_memory_bytes: o.max_memory_bytes.unwrap_or(self.max_memory_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_replaces_only_the_limits_it_sets() {
        let d = Quota::default();
        assert_eq!(d.with(None), d);
        assert_eq!(d.with(Some(&QuotaOverride::default())), d);
        let o = QuotaOverride {
            max_workspaces: Some(0),
            max_memory_bytes: Some(1 << 30),
            ..Default::default()
        };
        let q = d.with(Some(&o));
        assert_eq!(q.max_workspaces, 0);
        assert_eq!(q.max_cpu_millis, d.max_cpu_millis);
        assert_eq!(q.max_memory_bytes, 1 << 30);
    }

    #[test]
    fn limits_above_the_ceiling_are_named() {
        assert!(QUOTA_CEILING.over_ceiling().is_empty());
        let o = QuotaOverride {
            max_cpu_millis: Some(1_000_000_001),
            ..Default::default()
        };
        assert_eq!(o.over_ceiling(), [("max_cpu_millis", 1_000_000_000)]);
        assert!(!o.is_empty());
    }
}
