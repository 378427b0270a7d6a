//! The network of one workspace: a namespace `berth-<id>` (made with `ip netns
//! add`, joined by the sandbox through `ip netns exec`), a veth pair whose host
//! side `bw<slot>` holds `10.213.s.1/30` and whose namespace side `eth0` holds
//! `10.213.s.2/30`, and an nftables table `berth_<id>` that confines it.
//!
//! Addresses: berth owns `10.213.0.0/16`, cut into 16384 /30 slots; the last one
//! is reserved for the gateway. A workspace starts looking at the slot its id
//! hashes to and takes the first free one; creating the interface `bw<slot>` is
//! the atomic claim (the kernel refuses a second interface of that name), so
//! concurrent runtimes on one machine need no lock. The slot is recorded in the
//! state file and checked on reuse.
//!
//! **The gateway** ([`GATEWAY_IP`], added to the host's `lo` once per machine by
//! [`ensure_gateway`]; `lo` rather than a dummy interface, which not every
//! kernel has) is where every workspace reaches berth's API: `berth serve` binds
//! a second listener there, and each namespace has a route to it through its
//! veth. One address for all workspaces means one listener, whatever the number
//! of workspaces; an address outside `127.0.0.0/8` means nothing bound to
//! `127.0.0.1` on the host is reachable.
//!
//! **Routes.** Without egress the namespace has only the route to the gateway:
//! anything else fails at once with "network unreachable" (a DNS lookup, which
//! `http.server` does on start, would otherwise hang until its timeout). With
//! egress it has a default route through the host side, and the host masquerades
//! its traffic.
//!
//! **Firewall**, per workspace, so that tear-down is one `delete table`:
//! - input: packets arriving from `bw<slot>` are rejected unless they answer a
//!   connection the host opened, or go to the gateway on one of the configured
//!   ports (berth's API). Every other host address and port, the host's LAN
//!   address included, is out of reach; the host's loopback is anyway (`127.0.0.1`
//!   inside the namespace is the namespace's own).
//! - forward: nothing is forwarded to a workspace but answers; from it, only
//!   with egress, and never to berth's range (other workspaces) or to link-local
//!   addresses (cloud metadata services).
//! - output: only root on the host (berth's proxy and readiness probe) may open
//!   connections to the workspace; other local users are rejected, so berth's
//!   proxy is the only door into the app.

use std::net::Ipv4Addr;

use crate::exec::{run, ExecError};

/// The number of /30 slots in `10.213.0.0/16`.
pub const SLOTS: u32 = 1 << 14;
/// Slots workspaces may take: all but the last, which holds the gateway.
const WORKSPACE_SLOTS: u32 = SLOTS - 1;
/// Where workspaces reach berth's API (an address of the host's loopback).
pub const GATEWAY_IP: Ipv4Addr = Ipv4Addr::new(10, 213, 255, 253);
const GATEWAY_LABEL: &str = "lo:berth";
/// berth's whole range: other workspaces, as seen from one.
const BERTH_NET: &str = "10.213.0.0/16";
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
    hash % WORKSPACE_SLOTS
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

/// What a workspace may reach.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// TCP ports open on the gateway (berth's API).
    pub gateway_ports: &'a [u16],
    /// Whether it may reach addresses beyond the host.
    pub egress: bool,
}

/// Puts [`GATEWAY_IP`] on the host's loopback interface, labelled `lo:berth`;
/// idempotent, and safe to race with another runtime. It stays: it costs
/// nothing and running workspaces route to it.
pub async fn ensure_gateway() -> Result<(), ExecError> {
    let cidr = format!("{GATEWAY_IP}/32");
    run(
        "ip",
        &[
            "addr",
            "replace",
            &cidr,
            "dev",
            "lo",
            "label",
            GATEWAY_LABEL,
        ],
    )
    .await?;
    Ok(())
}

/// Applies `policy` to a set-up namespace: its routes, its firewall table, and
/// forwarding on the host when it has egress. Idempotent; a start applies it
/// again, so a changed profile takes effect.
pub async fn configure(id: &str, slot: Slot, policy: Policy<'_>) -> Result<(), ExecError> {
    let ns = netns_name(id);
    let via = slot.host_ip().to_string();
    let gateway = format!("{GATEWAY_IP}/32");
    run(
        "ip",
        &["-n", &ns, "route", "replace", &gateway, "via", &via],
    )
    .await?;
    if policy.egress {
        run(
            "ip",
            &["-n", &ns, "route", "replace", "default", "via", &via],
        )
        .await?;
        // Global, as for every container runtime; the per-workspace forward
        // chains decide what actually passes.
        let knob = "/proc/sys/net/ipv4/ip_forward";
        if std::fs::read_to_string(knob)
            .map_err(ExecError::Forwarding)?
            .trim()
            != "1"
        {
            std::fs::write(knob, "1").map_err(ExecError::Forwarding)?;
        }
    } else if let Err(e) = run("ip", &["-n", &ns, "route", "delete", "default"]).await {
        if !e.stderr_contains("No such process") {
            return Err(e);
        }
    }
    let rules = ruleset(id, slot, policy);
    crate::exec::run_with_stdin("nft", &["-f", "-"], &rules).await?;
    Ok(())
}

/// Creates the namespace, the veth pair and the firewall; returns the slot.
/// Anything left half-made by an earlier attempt is removed first.
pub async fn set_up(id: &str, policy: Policy<'_>) -> Result<Slot, ExecError> {
    tear_down(id, None).await?;
    let ns = netns_name(id);
    run("ip", &["netns", "add", &ns]).await?;
    let start = preferred_slot(id);
    let mut claimed = None;
    for i in 0..WORKSPACE_SLOTS {
        let slot = Slot((start + i) % WORKSPACE_SLOTS);
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
    configure(id, slot, policy).await?;
    Ok(slot)
}

/// The nftables table of one workspace, replacing any earlier one atomically.
pub fn ruleset(id: &str, slot: Slot, policy: Policy<'_>) -> String {
    let table = table_name(id);
    let ifname = slot.host_ifname();
    let addr = slot.workspace_ip();
    let mut s = String::new();
    let mut line = |l: &str| {
        s.push_str(l);
        s.push('\n');
    };
    // Declaring then deleting makes the replacement idempotent in one transaction.
    line(&format!("table inet {table}"));
    line(&format!("delete table inet {table}"));
    line(&format!("table inet {table} {{"));
    line("  chain input {");
    line("    type filter hook input priority filter; policy accept;");
    line(&format!(
        "    iifname \"{ifname}\" ct state established,related accept"
    ));
    if !policy.gateway_ports.is_empty() {
        let ports: Vec<String> = policy.gateway_ports.iter().map(u16::to_string).collect();
        line(&format!(
            "    iifname \"{ifname}\" ip daddr {GATEWAY_IP} tcp dport {{ {} }} accept",
            ports.join(", ")
        ));
    }
    // Reject rather than drop: clients in the workspace fail at once.
    line(&format!("    iifname \"{ifname}\" reject"));
    line("  }");
    line("  chain forward {");
    line("    type filter hook forward priority filter; policy accept;");
    line(&format!(
        "    oifname \"{ifname}\" ct state established,related accept"
    ));
    line(&format!("    oifname \"{ifname}\" drop"));
    if policy.egress {
        line(&format!(
            "    iifname \"{ifname}\" ip daddr {{ {BERTH_NET}, 169.254.0.0/16 }} reject"
        ));
        line(&format!("    iifname \"{ifname}\" ip saddr {addr} accept"));
    }
    line(&format!("    iifname \"{ifname}\" reject"));
    line("  }");
    line("  chain output {");
    line("    type filter hook output priority filter; policy accept;");
    line(&format!(
        "    oifname \"{ifname}\" ct state new meta skuid != 0 reject"
    ));
    line("  }");
    if policy.egress {
        line("  chain postrouting {");
        line("    type nat hook postrouting priority srcnat; policy accept;");
        line(&format!(
            "    ip saddr {addr} oifname != \"{ifname}\" masquerade"
        ));
        line("  }");
    }
    line("}");
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
            // The kernel removes the pair once the namespace is gone, which may
            // happen between `ip` finding the device and deleting it.
            let gone = ["Cannot find device", "does not exist", "No such device"];
            if !gone.iter().any(|m| e.stderr_contains(m)) {
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
    fn the_gateway_slot_is_never_a_workspace_slot() {
        let last = Slot(SLOTS - 1);
        assert_eq!(last.host_ip(), GATEWAY_IP);
        assert!((0..1000).all(|i| preferred_slot(&format!("w{i}")) < SLOTS - 1));
    }

    #[test]
    fn ruleset_confines_the_workspace_interface() {
        let closed = Policy {
            gateway_ports: &[8081],
            egress: false,
        };
        let rules = ruleset("w-1", Slot(2), closed);
        assert!(rules.starts_with("table inet berth_w_1\ndelete table inet berth_w_1\n"));
        assert!(rules.contains("iifname \"bw2\" ip daddr 10.213.255.253 tcp dport { 8081 } accept"));
        assert!(rules.contains("iifname \"bw2\" reject"));
        assert!(rules.contains("oifname \"bw2\" drop"));
        assert!(rules.contains("oifname \"bw2\" ct state new meta skuid != 0 reject"));
        assert!(!rules.contains("masquerade"));
        assert!(!rules.contains("saddr 10.213.0.10 accept"));
        let none = Policy {
            gateway_ports: &[],
            egress: false,
        };
        assert!(!ruleset("w-1", Slot(2), none).contains("dport"));
        let open = Policy {
            gateway_ports: &[8081],
            egress: true,
        };
        let rules = ruleset("w-1", Slot(2), open);
        assert!(rules.contains("ip saddr 10.213.0.10 oifname != \"bw2\" masquerade"));
        let reject_berth = rules
            .find("daddr { 10.213.0.0/16, 169.254.0.0/16 } reject")
            .unwrap();
        let accept = rules
            .find("iifname \"bw2\" ip saddr 10.213.0.10 accept")
            .unwrap();
        assert!(reject_berth < accept);
    }
}
