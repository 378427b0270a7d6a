//! The workspaces' states as they change, from the proxy's route table (which
//! the controller publishes on every state change): what the REST API's and
//! the portal's server-sent events are both made of.

use std::collections::HashMap;
use std::sync::Arc;

use futures::Stream;
use model::route::RouteTable;
use tokio::sync::watch;

/// What changed since the last look, by key: an entry that appeared or
/// changed (`Some`), or one that went (`None`).
pub type Changes<T> = Vec<(String, Option<T>)>;

/// Follows `routes` through `view` (what a caller may see of the table, by
/// key): after each change of the table that changes the view, the changes
/// against what the view was (`last` at first). Ends when the table's sender
/// goes.
pub fn changes<T, V>(
    routes: watch::Receiver<Arc<RouteTable>>,
    view: V,
    last: HashMap<String, T>,
) -> impl Stream<Item = Changes<T>>
where
    T: Clone + PartialEq,
    V: Fn(&RouteTable) -> HashMap<String, T>,
{
    futures::stream::unfold(
        (routes, view, last),
        |(mut routes, view, last)| async move {
            loop {
                routes.changed().await.ok()?;
                let now = view(&routes.borrow_and_update());
                let mut out: Changes<T> = now
                    .iter()
                    .filter(|(k, v)| last.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), Some(v.clone())))
                    .collect();
                out.extend(
                    last.keys()
                        .filter(|k| !now.contains_key(*k))
                        .map(|k| (k.clone(), None)),
                );
                if !out.is_empty() {
                    return Some((out, (routes, view, now)));
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use model::route::Route;
    use model::WorkspaceState;

    use super::*;

    fn route(state: WorkspaceState) -> Route {
        Route {
            workspace_id: "w1".into(),
            owner_id: "u1".into(),
            state,
            message: String::new(),
            upstream: None,
            retrying: false,
            strip_prefix: false,
        }
    }

    #[tokio::test]
    async fn changes_are_what_appeared_changed_or_went() {
        let (tx, rx) = watch::channel(Arc::new(RouteTable::new()));
        let view = |t: &RouteTable| {
            t.iter()
                .map(|(k, r)| (k.to_string(), r.state))
                .collect::<HashMap<_, _>>()
        };
        let mut changes = Box::pin(changes(rx, view, HashMap::new()));
        let set = |key: &str, r: Option<Route>| {
            tx.send_modify(|t| {
                let mut next = RouteTable::clone(t);
                match r {
                    Some(r) => next.insert(key.into(), Arc::new(r)),
                    None => next.remove(key),
                };
                *t = Arc::new(next);
            })
        };
        set("a/x", Some(route(WorkspaceState::Starting)));
        assert_eq!(
            changes.next().await.unwrap(),
            [("a/x".to_owned(), Some(WorkspaceState::Starting))]
        );
        // A change of the table that the view does not show is no change.
        set(
            "a/x",
            Some(Route {
                message: "still starting".into(),
                ..route(WorkspaceState::Starting)
            }),
        );
        set("a/x", Some(route(WorkspaceState::Running)));
        assert_eq!(
            changes.next().await.unwrap(),
            [("a/x".to_owned(), Some(WorkspaceState::Running))]
        );
        set("a/x", None);
        assert_eq!(changes.next().await.unwrap(), [("a/x".to_owned(), None)]);
        drop(tx);
        assert_eq!(changes.next().await, None, "ends with the table");
    }
}
