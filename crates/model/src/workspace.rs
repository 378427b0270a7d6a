//! Workspaces: desired spec (written by the API) and observed status (written by
//! the controller), and the state machine that relates them.

use serde::{Deserialize, Serialize};

use crate::{Millis, Name, WorkspaceId};

/// What the user wants the workspace to be doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    Running,
    Paused,
    Stopped,
}

impl DesiredState {
    pub const ALL: &'static [DesiredState] = &[
        DesiredState::Running,
        DesiredState::Paused,
        DesiredState::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DesiredState::Running => "running",
            DesiredState::Paused => "paused",
            DesiredState::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            DesiredState::Running,
            DesiredState::Paused,
            DesiredState::Stopped,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// The desired state of a workspace; every change bumps `generation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceSpec {
    pub profile: Name,
    pub desired: DesiredState,
}

/// Where a workspace is in its life, as last observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceState {
    Pending,
    Starting,
    Running,
    Paused,
    Stopping,
    Stopped,
    Failed,
    Deleting,
}

impl WorkspaceState {
    pub const ALL: &'static [WorkspaceState] = &[
        WorkspaceState::Pending,
        WorkspaceState::Starting,
        WorkspaceState::Running,
        WorkspaceState::Paused,
        WorkspaceState::Stopping,
        WorkspaceState::Stopped,
        WorkspaceState::Failed,
        WorkspaceState::Deleting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkspaceState::Pending => "pending",
            WorkspaceState::Starting => "starting",
            WorkspaceState::Running => "running",
            WorkspaceState::Paused => "paused",
            WorkspaceState::Stopping => "stopping",
            WorkspaceState::Stopped => "stopped",
            WorkspaceState::Failed => "failed",
            WorkspaceState::Deleting => "deleting",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|st| st.as_str() == s)
    }

    /// Whether the state machine allows going from `self` to `next`.
    pub fn can_go_to(self, next: WorkspaceState) -> bool {
        use WorkspaceState::*;
        if next == Deleting || next == Failed {
            return self != Deleting;
        }
        matches!(
            (self, next),
            (Pending, Starting)
                | (Pending, Stopped)
                | (Starting, Running)
                | (Starting, Stopping)
                | (Running, Paused)
                | (Running, Stopping)
                | (Paused, Running)
                | (Paused, Stopping)
                | (Stopping, Stopped)
                | (Stopped, Starting)
                | (Failed, Starting)
                | (Failed, Stopping)
                | (Failed, Stopped)
        )
    }

    /// Whether a workspace in this state holds runtime resources (CPU, memory).
    pub fn is_active(self) -> bool {
        use WorkspaceState::*;
        matches!(self, Starting | Running | Paused | Stopping)
    }
}

/// The next step a controller takes to bring `state` toward the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing to do: the workspace is where it should be.
    Settled,
    Start,
    Stop,
    Pause,
    Resume,
    /// Tear everything down and remove the record.
    Delete,
    /// A step is in flight (starting/stopping); observe again later.
    Wait,
}

impl Transition {
    /// The pure decision at the heart of reconcile: from what is observed and what is
    /// wanted, the one next step.
    pub fn plan(state: WorkspaceState, desired: DesiredState, deleting: bool) -> Transition {
        use WorkspaceState as S;
        if deleting {
            return Transition::Delete;
        }
        match (state, desired) {
            (S::Starting | S::Stopping, _) => Transition::Wait,
            (S::Running, DesiredState::Running)
            | (S::Paused, DesiredState::Paused)
            | (S::Stopped | S::Pending, DesiredState::Stopped) => Transition::Settled,
            (S::Pending | S::Stopped | S::Failed, DesiredState::Running | DesiredState::Paused) => {
                Transition::Start
            }
            (S::Running, DesiredState::Paused) => Transition::Pause,
            (S::Paused, DesiredState::Running) => Transition::Resume,
            (S::Running | S::Paused | S::Failed, DesiredState::Stopped) => Transition::Stop,
            (S::Deleting, _) => Transition::Delete,
        }
    }
}

/// What a condition on a workspace's status is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConditionKind {
    /// The app runs and answers.
    Ready,
    /// The last reconcile went through (or why not).
    Reconciled,
    /// The app exited by itself, or was killed (out of memory, say).
    AppExited,
    /// A start failed, for good or after too many tries in a row.
    StartFailed,
    /// The app did not answer within the profile's start timeout.
    StartTimeout,
    /// The next start waits out a back-off.
    BackOff,
    /// The home is at its disk limit.
    DiskFull,
}

impl ConditionKind {
    pub const ALL: &'static [ConditionKind] = &[
        ConditionKind::Ready,
        ConditionKind::Reconciled,
        ConditionKind::AppExited,
        ConditionKind::StartFailed,
        ConditionKind::StartTimeout,
        ConditionKind::BackOff,
        ConditionKind::DiskFull,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConditionKind::Ready => "Ready",
            ConditionKind::Reconciled => "Reconciled",
            ConditionKind::AppExited => "AppExited",
            ConditionKind::StartFailed => "StartFailed",
            ConditionKind::StartTimeout => "StartTimeout",
            ConditionKind::BackOff => "BackOff",
            ConditionKind::DiskFull => "DiskFull",
        }
    }
}

impl PartialEq<&str> for ConditionKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A named observation about the workspace, like a Kubernetes condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub kind: ConditionKind,
    pub status: bool,
    pub reason: String,
    pub message: String,
    pub at: Millis,
}

/// What the controller last observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceStatus {
    pub state: WorkspaceState,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// When the workspace last became running.
    #[serde(default)]
    pub started_at: Option<Millis>,
    /// When `state` last changed (start timeouts are measured from it).
    #[serde(default)]
    pub since: Option<Millis>,
    /// Starts in a row that ended with the app exiting (or timing out) before
    /// it had run for a while; reset by a start someone asks for.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_starts: u32,
    /// When a failed start is tried again (the crash-loop back-off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<Millis>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl WorkspaceStatus {
    pub fn pending() -> Self {
        WorkspaceStatus {
            state: WorkspaceState::Pending,
            message: None,
            conditions: Vec::new(),
            started_at: None,
            since: None,
            failed_starts: 0,
            retry_at: None,
        }
    }

    /// Whether a failed start is to be tried again (after the back-off).
    pub fn retrying(&self) -> bool {
        self.state == WorkspaceState::Failed && self.retry_at.is_some()
    }

    /// Whether the controller gave up starting it (too many failed starts in a
    /// row, or a start that cannot succeed): it stays failed until someone
    /// starts it again.
    pub fn gave_up(&self) -> bool {
        self.state == WorkspaceState::Failed
            && self
                .conditions
                .iter()
                .any(|c| c.kind == "StartFailed" && c.status)
    }
}

/// A stored workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub owner_id: crate::UserId,
    pub owner: Name,
    pub name: Name,
    pub spec: WorkspaceSpec,
    pub generation: i64,
    pub status: WorkspaceStatus,
    pub observed_generation: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub last_activity: Option<Millis>,
    /// Set when deletion was asked for; the controller finishes it.
    pub deletion_requested_at: Option<Millis>,
    /// Whether deleting it keeps its files (set with the deletion request).
    pub keep_files: bool,
    /// Where the proxy sends its traffic while it runs and answers, as the
    /// controller saw it last (an address inside berth's own network, never
    /// shown to users).
    pub upstream: Option<crate::route::Upstream>,
}

/// One change of a workspace's observed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// When the change was recorded.
    pub at: Millis,
    /// The state the workspace went to.
    pub state: WorkspaceState,
    /// The status message written with it; empty when there was none.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use DesiredState as D;
    use WorkspaceState as S;

    #[test]
    fn plan_table() {
        let cases = [
            (S::Pending, D::Running, false, Transition::Start),
            (S::Pending, D::Stopped, false, Transition::Settled),
            (S::Starting, D::Stopped, false, Transition::Wait),
            (S::Running, D::Running, false, Transition::Settled),
            (S::Running, D::Paused, false, Transition::Pause),
            (S::Paused, D::Running, false, Transition::Resume),
            (S::Running, D::Stopped, false, Transition::Stop),
            (S::Failed, D::Running, false, Transition::Start),
            (S::Failed, D::Stopped, false, Transition::Stop),
            (S::Stopped, D::Running, false, Transition::Start),
            (S::Running, D::Running, true, Transition::Delete),
        ];
        for (state, desired, deleting, want) in cases {
            assert_eq!(
                Transition::plan(state, desired, deleting),
                want,
                "{state:?} {desired:?} {deleting}"
            );
        }
    }

    #[test]
    fn every_planned_step_is_an_allowed_transition() {
        // What each step leads to first; the state machine must allow it.
        for &state in S::ALL {
            for desired in [D::Running, D::Paused, D::Stopped] {
                let next = match Transition::plan(state, desired, false) {
                    Transition::Start => S::Starting,
                    Transition::Stop => S::Stopping,
                    Transition::Pause => S::Paused,
                    Transition::Resume => S::Running,
                    Transition::Delete => S::Deleting,
                    Transition::Settled | Transition::Wait => continue,
                };
                // Staying put (a deletion already under way) is continuing, not a transition.
                assert!(
                    state == next || state.can_go_to(next),
                    "{state:?} -> {next:?}"
                );
            }
        }
    }

    #[test]
    fn deleting_is_terminal() {
        for &s in S::ALL {
            assert!(!S::Deleting.can_go_to(s));
        }
        assert_eq!(S::parse("running"), Some(S::Running));
        assert_eq!(S::parse("Running"), None);
    }
}
