//! berth on Kubernetes: the [`crd::Workspace`] custom resource, the operator
//! that reconciles it ([`operator`]), and the runtime through which berth's
//! controller writes Workspaces and reads their status ([`KubeRuntime`]).

pub mod crd;
#[cfg(feature = "envtest")]
pub mod envtest;
pub mod lease;
pub mod operator;
pub mod runtime;

pub use runtime::{KubeRuntime, KubeRuntimeConfig, Placement};
