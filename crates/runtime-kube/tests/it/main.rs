//! The Kubernetes runtime and operator, tested three ways: against a real
//! kube-apiserver and etcd with the test playing the node (`envtest`),
//! against a scripted API that checks each call (`scripted`), and against
//! the cluster `KUBECONFIG` names, if any (`cluster`).

mod chart;
mod cluster;
mod crd;
mod envtest;
mod scripted;
mod support;
