//! Integration tests of the process runtime against the real kernel: bwrap,
//! cgroups, network namespaces, veth pairs and nftables. They need root and the
//! tools `scripts/install-deps` installs; a missing one fails the test with a
//! message saying what to install. Each test has its own data dir, cgroup parent
//! and workspace ids, and a guard that deletes everything it made.

mod adoption;
mod disk;
mod isolation;
mod lifecycle;
mod limits;
mod support;
mod usage;
