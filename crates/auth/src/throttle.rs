//! Login throttling, in memory (each replica throttles what it sees).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
}
