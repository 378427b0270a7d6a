//! The network of one workspace: a namespace `berth-<id>` (made with `ip netns
//! add`, joined by the sandbox through `ip netns exec`), a veth pair whose host
//! side `bw<slot>` holds `10.213.s.1/30` and whose namespace side `eth0` holds
//! `10.213.s.2/30`, and an nftables table `berth_<id>` that confines it.
//!
//! Addresses: berth owns `10.213.0.0/16`, cut into 16384 /30 slots. A workspace
//! starts looking at the slot its id hashes to and takes the first free one;
//! creating the interface `bw<slot>` is the atomic claim (the kernel refuses a
//! second interface of that name), so concurrent runtimes on one machine need no
//! lock. The slot is recorded in the state file and checked on reuse.
//!
//! The namespace has no default route: with no egress yet, anything off the /30
//! fails at once with "network unreachable" (a DNS lookup, which
//! `http.server` does on start, would otherwise hang until its timeout).
//!
//! Firewall: per workspace, so that tear-down is one `delete table`. Packets
//! arriving from `bw<slot>` are rejected unless they answer a connection the host
//! opened, or go to the host-side address on one of the configured host ports
//! (berth's API). Nothing is forwarded to or from a workspace: workspaces cannot
//! reach each other nor the outside world (egress is a later milestone). The
//! host's loopback is out of reach anyway: `127.0.0.1` inside the namespace is the
//! namespace's own loopback.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::exec::{run, ExecError};

/// The number of /30 slots in `10.213.0.0/16`.
pub const SLOTS: u32 = 1 << 14;
/// The port the app listens on inside its namespace.
pub const APP_PORT: u16 = 8888;

/// The addresses of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(pub u32);

impl Slot {
    /// The host side of the veth pair, where berth's API is reachable.
    pub fn host_ip(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 213, 0, 0)) + self.0 * 4 + 1)
    }

    /// The workspace side, where the app listens.
    pub fn workspace_ip(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.host_ip()) + 1)
    }

    pub fn host_ifname(self) -> String {
        format!("bw{}", self.0)
    }
}

/// Where slot search starts for `id`: FNV-1a of the id.
pub fn preferred_slot(id: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % SLOTS
}

pub fn netns_name(id: &str) -> String {
    format!("berth-{id}")
}

pub fn table_name(id: &str) -> String {
    format!("berth_{}", id.replace('-', "_"))
}

/// Whether the namespace of `id` exists with `slot`'s address on its `eth0`.
pub async fn is_set_up(id: &str, slot: Slot) -> bool {
    let ns = netns_name(id);
    match run(
        "ip",
        &["-n", &ns, "-4", "-o", "addr", "show", "dev", "eth0"],
    )
    .await
    {
        Ok(out) => {
            out.contains(&format!("{}/30", slot.workspace_ip()))
                && run("ip", &["-o", "link", "show", "dev", &slot.host_ifname()])
                    .await
                    .is_ok()
        }
        Err(_) => false,
    }
}

/// Creates the namespace, the veth pair and the firewall; returns the slot.
/// Anything left half-made by an earlier attempt is removed first.
pub async fn set_up(id: &str, host_ports: &[u16]) -> Result<Slot, ExecError> {
    tear_down(id, None).await?;
    let ns = netns_name(id);
    run("ip", &["netns", "add", &ns]).await?;
    let start = preferred_slot(id);
    let mut claimed = None;
    for i in 0..SLOTS {
        let slot = Slot((start + i) % SLOTS);
        let host = slot.host_ifname();
        match run(
            "ip",
            &[
                "link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ],
        )
        .await
        {
            Ok(_) => {
                claimed = Some(slot);
                break;
            }
            Err(e) if e.stderr_contains("exists") => continue,
            Err(e) => return Err(e),
        }
    }
    let Some(slot) = claimed else {
        return Err(ExecError::Exhausted);
    };
    let host = slot.host_ifname();
    let host_cidr = format!("{}/30", slot.host_ip());
    let ws_cidr = format!("{}/30", slot.workspace_ip());
    run("ip", &["addr", "add", &host_cidr, "dev", &host]).await?;
    run("ip", &["link", "set", &host, "up"]).await?;
    run("ip", &["-n", &ns, "addr", "add", &ws_cidr, "dev", "eth0"]).await?;
    run("ip", &["-n", &ns, "link", "set", "eth0", "up"]).await?;
    run("ip", &["-n", &ns, "link", "set", "lo", "up"]).await?;
    let rules = ruleset(id, slot, host_ports);
    crate::exec::run_with_stdin("nft", &["-f", "-"], &rules).await?;
    Ok(slot)
}

/// The nftables table of one workspace, replacing any earlier one atomically.
pub fn ruleset(id: &str, slot: Slot, host_ports: &[u16]) -> String {
    let table = table_name(id);
    let ifname = slot.host_ifname();
    let mut s = String::new();
    // Declaring then deleting makes the replacement idempotent in one transaction.
    let _ = writeln!(s, "table inet {table}");
    let _ = writeln!(s, "delete table inet {table}");
    let _ = writeln!(s, "table inet {table} {{");
    let _ = writeln!(s, "  chain input {{");
    let _ = writeln!(
        s,
        "    type filter hook input priority filter; policy accept;"
    );
    let _ = writeln!(
        s,
        "    iifname \"{ifname}\" ct state established,related accept"
    );
    if !host_ports.is_empty() {
        let ports: Vec<String> = host_ports.iter().map(u16::to_string).collect();
        let _ = writeln!(
            s,
            "    iifname \"{ifname}\" ip daddr {} tcp dport {{ {} }} accept",
            slot.host_ip(),
            ports.join(", ")
        );
    }
    // Reject rather than drop: clients in the workspace fail at once.
    let _ = writeln!(s, "    iifname \"{ifname}\" reject");
    let _ = writeln!(s, "  }}");
    let _ = writeln!(s, "  chain forward {{");
    let _ = writeln!(
        s,
        "    type filter hook forward priority filter; policy accept;"
    );
    let _ = writeln!(s, "    iifname \"{ifname}\" drop");
    let _ = writeln!(s, "    oifname \"{ifname}\" drop");
    let _ = writeln!(s, "  }}");
    let _ = writeln!(s, "}}");
    s
}

/// Removes the namespace (which takes the veth pair with it), the host-side
/// interface if it survived, and the firewall table. Missing pieces are fine.
pub async fn tear_down(id: &str, slot: Option<Slot>) -> Result<(), ExecError> {
    let ns = netns_name(id);
    if let Err(e) = run("ip", &["netns", "delete", &ns]).await {
        if !e.stderr_contains("No such file") {
            return Err(e);
        }
    }
    if let Some(slot) = slot {
        if let Err(e) = run("ip", &["link", "delete", &slot.host_ifname()]).await {
            if !e.stderr_contains("Cannot find device") && !e.stderr_contains("does not exist") {
                return Err(e);
            }
        }
    }
    if let Err(e) = run("nft", &["delete", "table", "inet", &table_name(id)]).await {
        if !e.stderr_contains("No such file") {
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_disjoint_slash_30s_in_berths_range() {
        assert_eq!(Slot(0).host_ip(), Ipv4Addr::new(10, 213, 0, 1));
        assert_eq!(Slot(0).workspace_ip(), Ipv4Addr::new(10, 213, 0, 2));
        assert_eq!(Slot(1).host_ip(), Ipv4Addr::new(10, 213, 0, 5));
        assert_eq!(
            Slot(SLOTS - 1).workspace_ip(),
            Ipv4Addr::new(10, 213, 255, 254)
        );
        assert_eq!(Slot(16383).host_ifname(), "bw16383");
        assert!(Slot(16383).host_ifname().len() <= 15);
    }

    #[test]
    fn preferred_slot_is_deterministic_and_in_range() {
        assert_eq!(preferred_slot("abc"), preferred_slot("abc"));
        assert_ne!(preferred_slot("abc"), preferred_slot("abd"));
        assert!(preferred_slot("0190a1b2-0000-7000-8000-000000000000") < SLOTS);
    }

    #[test]
    fn ruleset_confines_the_workspace_interface() {
        let rules = ruleset("w-1", Slot(2), &[8081]);
        assert!(rules.starts_with("table inet berth_w_1\ndelete table inet berth_w_1\n"));
        assert!(rules.contains("iifname \"bw2\" ip daddr 10.213.0.9 tcp dport { 8081 } accept"));
        assert!(rules.contains("iifname \"bw2\" reject"));
        assert!(rules.contains("oifname \"bw2\" drop"));
        assert!(!ruleset("w-1", Slot(2), &[]).contains("dport"));
    }
}
