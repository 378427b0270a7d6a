//! The network of one workspace: a namespace `berth-<id>` (made with `ip netns
//! add`, joined by the sandbox through `nsenter --net`), a veth pair whose host
//! side `bw<slot>` holds `10.213.s.1/30` and whose namespace side `eth0` holds
//! `10.213.s.2/30`, and its elements in berth's nftables table, which
//! confines it. A start runs `ip` four times (the namespace, the pair, then
//! each side's addresses in one `-batch`) and `nft` once.
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
//! **Firewall**: one nftables table, `inet berth`, for every workspace of the
//! machine ([`host_ruleset`], made once by each runtime at its first start),
//! whose rules match workspace interfaces by their `bw` prefix; what differs
//! between workspaces are elements of two sets, keyed by interface, which a
//! start adds and a stop removes in one `nft` transaction ([`firewall`]):
//! - `gateway` (`iifname . tcp dport`): the ports of the gateway a workspace
//!   may open, berth's API;
//! - `egress` (`iifname . ip saddr`): workspaces that may reach beyond the
//!   host, each from its own address only.
//!
//! One shared table rather than one per workspace: `nft` reads the whole
//! ruleset each time it runs, so with a table per workspace each start and
//! stop cost time in the number of workspaces (75 % of the CPU of 200 starts
//! at once went to `nft`); adding an element to a set does not read the
//! others. The rules:
//! - input: packets arriving from a workspace are rejected unless they answer a
//!   connection the host opened, or go to the gateway on one of its `gateway`
//!   ports (berth's API). Every other host address and port, the host's LAN
//!   address included, is out of reach; the host's loopback is anyway (`127.0.0.1`
//!   inside the namespace is the namespace's own).
//! - forward: nothing is forwarded to a workspace but answers; from one, only
//!   from an `egress` interface and address, and never to berth's range (other
//!   workspaces) or to link-local addresses (cloud metadata services).
//! - output: only root on the host (berth's proxy and readiness probe) may open
//!   connections to a workspace; other local users are rejected, so berth's
//!   proxy is the only door into the app.
//!
//! Workspaces started by a berth before the shared table have a table of their
//! own, `berth_<id>`; [`migrate_legacy`] moves a running one's rules into the
//! sets when the shared table is made (its own table would let nothing pass
//! that the shared one rejects), and a tear-down removes such a table too.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use std::path::Path;

use crate::exec::{run, run_with_stdin, ExecError};

/// The number of /30 slots in `10.213.0.0/16`.
pub const SLOTS: u32 = 1 << 14;
/// Slots workspaces may take: all but the last, which holds the gateway.
const WORKSPACE_SLOTS: u32 = SLOTS - 1;
/// Where workspaces reach berth's API (an address of the host's loopback).
pub const GATEWAY_IP: Ipv4Addr = Ipv4Addr::new(10, 213, 255, 253);
const GATEWAY_LABEL: &str = "lo:berth";
/// berth's whole range: other workspaces, as seen from one.
const BERTH_NET: &str = "10.213.0.0/16";
/// The shared firewall table (`inet berth`).
pub const TABLE: &str = "berth";
/// Workspace interfaces, as nftables matches them: `bw<slot>`.
const IFACES: &str = "bw*";
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

/// The table of its own that a workspace had before the shared table.
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

/// What a workspace may reach; kept in its state file, so that a stop
/// removes exactly the firewall elements its start added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// TCP ports open on the gateway (berth's API).
    pub gateway_ports: Vec<u16>,
    /// Whether it may reach addresses beyond the host.
    pub egress: bool,
}

/// What a workspace's network was made of, as its state file says: what a
/// tear-down removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    pub slot: Slot,
    /// The firewall elements it was given (`None`: none yet).
    pub policy: Option<Policy>,
    /// Made by a berth before the shared table: a table of its own.
    pub own_table: bool,
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

/// Makes the shared firewall table ([`host_ruleset`]), keeping its sets'
/// elements; idempotent, and safe to race with another runtime. It stays.
pub async fn ensure_table() -> Result<(), ExecError> {
    run_with_stdin("nft", &["-f", "-"], &host_ruleset()).await?;
    Ok(())
}

/// The shared table: declared (which keeps its sets and their elements), its
/// chains emptied and filled again, in one transaction.
pub fn host_ruleset() -> String {
    format!(
        r#"table inet {TABLE} {{
  set gateway {{ typeof iifname . tcp dport; }}
  set egress {{ typeof iifname . ip saddr; }}
  chain input {{ type filter hook input priority filter; policy accept; }}
  chain forward {{ type filter hook forward priority filter; policy accept; }}
  chain output {{ type filter hook output priority filter; policy accept; }}
  chain postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
}}
flush chain inet {TABLE} input
flush chain inet {TABLE} forward
flush chain inet {TABLE} output
flush chain inet {TABLE} postrouting
table inet {TABLE} {{
  chain input {{
    iifname "{IFACES}" ct state established,related accept
    ip daddr {GATEWAY_IP} iifname . tcp dport @gateway accept
    # Reject rather than drop: clients in the workspace fail at once.
    iifname "{IFACES}" reject
  }}
  chain forward {{
    oifname "{IFACES}" ct state established,related accept
    # Before the drop: a workspace that tries another fails at once.
    iifname "{IFACES}" ip daddr {{ {BERTH_NET}, 169.254.0.0/16 }} reject
    oifname "{IFACES}" drop
    iifname . ip saddr @egress accept
    iifname "{IFACES}" reject
  }}
  chain output {{
    oifname "{IFACES}" ct state new meta skuid != 0 reject
  }}
  chain postrouting {{
    oifname != "{IFACES}" iifname . ip saddr @egress masquerade
  }}
}}
"#
    )
}

/// The set elements `policy` gives the workspace on `slot`: `(set, key)`.
fn elements(slot: Slot, policy: &Policy) -> Vec<(&'static str, String)> {
    let ifname = slot.host_ifname();
    let mut out: Vec<_> = policy
        .gateway_ports
        .iter()
        .map(|port| ("gateway", format!("\"{ifname}\" . {port}")))
        .collect();
    if policy.egress {
        out.push(("egress", format!("\"{ifname}\" . {}", slot.workspace_ip())));
    }
    out
}

/// One transaction that takes `old`'s elements away (those present; adding
/// first makes deleting one that is not there succeed) and gives `new`'s.
pub fn firewall(slot: Slot, old: Option<&Policy>, new: Option<&Policy>) -> String {
    let mut s = String::new();
    for (set, key) in old.map(|p| elements(slot, p)).unwrap_or_default() {
        s.push_str(&format!("add element inet {TABLE} {set} {{ {key} }}\n"));
        s.push_str(&format!("delete element inet {TABLE} {set} {{ {key} }}\n"));
    }
    for (set, key) in new.map(|p| elements(slot, p)).unwrap_or_default() {
        s.push_str(&format!("add element inet {TABLE} {set} {{ {key} }}\n"));
    }
    s
}

/// Applies `policy` to a set-up namespace: its routes, its firewall elements
/// (`old`'s taken away), and forwarding on the host when it has egress.
/// Idempotent; a start applies it again, so a changed profile takes effect.
pub async fn configure(
    id: &str,
    slot: Slot,
    old: Option<&Policy>,
    policy: &Policy,
) -> Result<(), ExecError> {
    let ns = netns_name(id);
    let via = slot.host_ip();
    let mut routes = format!("route replace {GATEWAY_IP}/32 via {via}\n");
    if policy.egress {
        routes.push_str(&format!("route replace default via {via}\n"));
        // Global, as for every container runtime; the forward chain decides
        // what actually passes.
        let knob = "/proc/sys/net/ipv4/ip_forward";
        if std::fs::read_to_string(knob)
            .map_err(ExecError::Forwarding)?
            .trim()
            != "1"
        {
            std::fs::write(knob, "1").map_err(ExecError::Forwarding)?;
        }
    } else if old.is_some_and(|old| old.egress) {
        // Only an earlier policy with egress gave it a default route.
        routes.push_str("route delete default\n");
    }
    run_with_stdin("ip", &["-n", &ns, "-batch", "-"], &routes).await?;
    run_with_stdin("nft", &["-f", "-"], &firewall(slot, old, Some(policy))).await?;
    Ok(())
}

/// Creates the namespace and the veth pair (with their addresses, up); returns
/// the slot. The caller tears down what an earlier attempt left first, and
/// gives it its firewall with [`configure`].
pub async fn set_up(id: &str) -> Result<Slot, ExecError> {
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
    let (host_ip, ws_ip) = (slot.host_ip(), slot.workspace_ip());
    run_with_stdin(
        "ip",
        &["-batch", "-"],
        &format!("addr add {host_ip}/30 dev {host}\nlink set {host} up\n"),
    )
    .await?;
    run_with_stdin(
        "ip",
        &["-n", &ns, "-batch", "-"],
        &format!("addr add {ws_ip}/30 dev eth0\nlink set eth0 up\nlink set lo up\n"),
    )
    .await?;
    Ok(slot)
}

/// Removes the namespace (which takes the veth pair with it), the host-side
/// interface if it survived, and the workspace's firewall elements (or its
/// own table). Missing pieces are fine.
pub async fn tear_down(id: &str, made: Option<&Made>) -> Result<(), ExecError> {
    let ns = netns_name(id);
    if Path::new("/run/netns").join(&ns).exists() {
        if let Err(e) = run("ip", &["netns", "delete", &ns]).await {
            if !e.stderr_contains("No such file") {
                return Err(e);
            }
        }
    }
    let Some(made) = made else {
        return Ok(());
    };
    let host = made.slot.host_ifname();
    // Gone with the namespace, unless something still held that.
    let survived = Path::new("/sys/class/net").join(&host).exists();
    if let Err(e) = match survived {
        true => run("ip", &["link", "delete", &host]).await,
        false => Ok(String::new()),
    } {
        // The kernel removes the pair once the namespace is gone, which may
        // happen between `ip` finding the device and deleting it.
        let gone = ["Cannot find device", "does not exist", "No such device"];
        if !gone.iter().any(|m| e.stderr_contains(m)) {
            return Err(e);
        }
    }
    let mut batch = firewall(made.slot, made.policy.as_ref(), None);
    if made.own_table {
        // Declaring first makes deleting one that is gone succeed.
        let table = table_name(id);
        batch.push_str(&format!("table inet {table}\ndelete table inet {table}\n"));
    }
    if !batch.is_empty() {
        run_with_stdin("nft", &["-f", "-"], &batch).await?;
    }
    Ok(())
}

/// Running workspaces that a berth before the shared table started, each
/// with a table of its own: their rules become elements of the shared sets
/// (the gateway's `ports`, egress if their table masqueraded) and their table
/// goes, in one transaction each. Returns the policy each was given.
pub async fn migrate_legacy(
    ids: &[(String, Slot)],
    ports: &[u16],
) -> Result<Vec<(String, Policy)>, ExecError> {
    let mut migrated = Vec::new();
    for (id, slot) in ids {
        let table = table_name(id);
        let egress = match run("nft", &["list", "table", "inet", &table]).await {
            Ok(rules) => rules.contains("masquerade"),
            // Gone already (a migration that stopped halfway): no egress,
            // the least it may have had.
            Err(e) if e.stderr_contains("No such file") => false,
            Err(e) => return Err(e),
        };
        let policy = Policy {
            gateway_ports: ports.to_vec(),
            egress,
        };
        let mut batch = firewall(*slot, None, Some(&policy));
        batch.push_str(&format!("table inet {table}\ndelete table inet {table}\n"));
        run_with_stdin("nft", &["-f", "-"], &batch).await?;
        migrated.push((id.clone(), policy));
    }
    Ok(migrated)
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
    fn a_workspace_is_elements_of_the_shared_sets() {
        let closed = Policy {
            gateway_ports: vec![8081],
            egress: false,
        };
        assert_eq!(
            firewall(Slot(2), None, Some(&closed)),
            "add element inet berth gateway { \"bw2\" . 8081 }\n"
        );
        let open = Policy {
            gateway_ports: vec![8081, 9000],
            egress: true,
        };
        assert_eq!(
            firewall(Slot(2), Some(&closed), Some(&open)),
            "add element inet berth gateway { \"bw2\" . 8081 }\n\
             delete element inet berth gateway { \"bw2\" . 8081 }\n\
             add element inet berth gateway { \"bw2\" . 8081 }\n\
             add element inet berth gateway { \"bw2\" . 9000 }\n\
             add element inet berth egress { \"bw2\" . 10.213.0.10 }\n"
        );
        assert_eq!(firewall(Slot(2), None, None), "");
        let none = Policy {
            gateway_ports: vec![],
            egress: false,
        };
        assert_eq!(firewall(Slot(2), Some(&none), Some(&none)), "");
    }

    #[test]
    fn the_shared_table_keeps_its_sets_and_confines_every_workspace() {
        let rules = host_ruleset();
        // Declared, never deleted: the elements of running workspaces stay.
        assert!(!rules.contains("delete"));
        assert!(rules.contains("flush chain inet berth input"));
        assert!(rules.contains("ip daddr 10.213.255.253 iifname . tcp dport @gateway accept"));
        assert!(rules.contains("iifname \"bw*\" reject"));
        assert!(rules.contains("oifname \"bw*\" drop"));
        assert!(rules.contains("oifname \"bw*\" ct state new meta skuid != 0 reject"));
        assert!(rules.contains("oifname != \"bw*\" iifname . ip saddr @egress masquerade"));
        let reject_berth = rules
            .find("daddr { 10.213.0.0/16, 169.254.0.0/16 } reject")
            .unwrap();
        let drop = rules.find("oifname \"bw*\" drop").unwrap();
        let accept = rules.find("iifname . ip saddr @egress accept").unwrap();
        assert!(reject_berth < drop && drop < accept);
    }
}
