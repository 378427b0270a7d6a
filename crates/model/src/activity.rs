//! Activity seen by the proxy, kept in memory and taken in batches by the
//! controller's flush, which writes it to the store (the request path never
//! does).

use std::collections::HashMap;
use std::sync::Mutex;

/// The latest activity per workspace id, in milliseconds since the epoch.
#[derive(Debug, Default)]
pub struct Activity {
    seen: Mutex<HashMap<String, i64>>,
}

impl Activity {
    /// Records activity on `workspace_id` at `now`.
    pub fn touch(&self, workspace_id: &str, now: i64) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get_mut(workspace_id) {
            Some(t) => *t = (*t).max(now),
            None => {
                seen.insert(workspace_id.to_owned(), now);
            }
        }
    }

    /// Everything recorded since the last call.
    pub fn take(&self) -> Vec<(String, i64)> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *seen).into_iter().collect()
    }

    /// Puts back a batch that could not be written, keeping newer entries.
    pub fn restore(&self, batch: Vec<(String, i64)>) {
        for (id, t) in batch {
            self.touch(&id, t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_and_drains() {
        let a = Activity::default();
        a.touch("w1", 10);
        a.touch("w1", 5);
        a.touch("w2", 7);
        let mut batch = a.take();
        batch.sort();
        assert_eq!(batch, vec![("w1".into(), 10), ("w2".into(), 7)]);
        assert!(a.take().is_empty());
        a.touch("w1", 20);
        a.restore(vec![("w1".into(), 10)]);
        assert_eq!(a.take(), vec![("w1".into(), 20)]);
    }
}
