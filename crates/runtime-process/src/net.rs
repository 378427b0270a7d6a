//! The network of one workspace: a namespace `berth-<id>` (made with `ip netns
//! add`, joined by the sandbox through `nsenter --net`), a veth pair whose host
//! side `bw<slot>` holds `10.213.s.1/30` and whose namespace side `eth0` holds
//! `10.213.s.2/30`, and its elements in berth's nftables table, which
//! confines it. A start runs two programs, `ip netns add` and `nft`; the
//! pair, its addresses and the namespace's routes are made over netlink
//! (`rtnetlink`), in the namespace through a socket made there ([`Namespace`]).
//! `ip netns add` stays a program: making a namespace needs `unshare`, which
//! is `unsafe` in `rustix` (and done by `fork` in `rtnetlink`), and `ip` also
//! makes `/run/netns` a shared mount, so the name is seen in every mount
//! namespace.
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
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::sys::{protocols::NETLINK_ROUTE, AsyncSocket, TokioSocket};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};
use serde::{Deserialize, Serialize};

use crate::exec::{run, run_with_stdin, ExecError};

/// Where named network namespaces are (as `ip netns` keeps them).
const NETNS_DIR: &str = "/run/netns";

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

/// A netlink connection in the host's network namespace, for the host sides
/// of the veth pairs. [`Links::open`] within a tokio runtime, whose task
/// drives it: one per operation, never kept across runtimes.
#[derive(Debug, Clone)]
pub struct Links {
    host: Handle,
}

impl Links {
    pub fn open() -> Result<Links, ExecError> {
        let (conn, host, _) = rtnetlink::new_connection().map_err(ExecError::Namespace)?;
        tokio::spawn(conn);
        Ok(Links { host })
    }
}

/// A netlink connection inside the network namespace of one workspace.
#[derive(Debug)]
pub struct Namespace {
    handle: Handle,
}

impl Namespace {
    /// Connects to the namespace of `id`. A netlink socket belongs to the
    /// namespace of the thread that made it, so a thread of its own (never one
    /// of the runtime's, which would stay there) joins the namespace, makes
    /// the socket and ends.
    pub async fn open(id: &str) -> Result<Namespace, ExecError> {
        let path = Path::new(NETNS_DIR).join(netns_name(id));
        let runtime = tokio::runtime::Handle::current();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let made = std::fs::File::open(&path).and_then(|ns| {
                rustix::thread::move_into_link_name_space(
                    ns.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )?;
                // Registered with the runtime's reactor, usable from any thread.
                let _entered = runtime.enter();
                TokioSocket::new(NETLINK_ROUTE)
            });
            let _ = tx.send(made);
        });
        let socket = rx
            .await
            .map_err(|_| ExecError::Namespace(std::io::Error::other("the thread ended")))?
            .map_err(ExecError::Namespace)?;
        let (conn, handle, _) = rtnetlink::from_socket(socket);
        tokio::spawn(conn);
        Ok(Namespace { handle })
    }
}

/// The index of the interface `name` as `handle` sees it; `None` if there is none.
async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, ExecError> {
    let mut found = handle.link().get().match_name(name.to_owned()).execute();
    match found.try_next().await {
        Ok(link) => Ok(link.map(|l| l.header.index)),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(netlink("find interface", e)),
    }
}

/// The index of interface `name`, which must exist.
async fn existing(handle: &Handle, name: &str) -> Result<u32, ExecError> {
    link_index(handle, name).await?.ok_or_else(|| {
        let e = std::io::Error::new(std::io::ErrorKind::NotFound, format!("no interface {name}"));
        ExecError::Namespace(e)
    })
}

/// The error number of a netlink error answer.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

fn netlink(op: &'static str, source: rtnetlink::Error) -> ExecError {
    ExecError::Netlink { op, source }
}

/// Whether the namespace of `id` exists with `slot`'s address on its `eth0`,
/// and the host side of the pair too.
pub async fn is_set_up(id: &str, slot: Slot) -> Result<Option<Namespace>, ExecError> {
    let there = |p: PathBuf| p.exists();
    if !there(Path::new(NETNS_DIR).join(netns_name(id)))
        || !there(Path::new("/sys/class/net").join(slot.host_ifname()))
    {
        return Ok(None);
    }
    let ns = Namespace::open(id).await?;
    let Some(eth0) = link_index(&ns.handle, "eth0").await? else {
        return Ok(None);
    };
    let mut addrs = ns
        .handle
        .address()
        .get()
        .set_link_index_filter(eth0)
        .execute();
    let want = std::net::IpAddr::V4(slot.workspace_ip());
    while let Some(addr) = addrs
        .try_next()
        .await
        .map_err(|e| netlink("list addresses", e))?
    {
        if addr
            .attributes
            .iter()
            .any(|a| matches!(a, AddressAttribute::Address(ip) if *ip == want))
        {
            return Ok(Some(ns));
        }
    }
    Ok(None)
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

/// What to take away before `policy` is given: `old`, or, on a fresh network
/// (no `old`), whatever a run whose state file is gone may have left on its
/// slot (an egress element is keyed by the slot alone; a stale one would give
/// the next workspace there egress).
fn before(old: Option<&Policy>, policy: &Policy) -> Policy {
    old.cloned().unwrap_or_else(|| Policy {
        gateway_ports: policy.gateway_ports.clone(),
        egress: true,
    })
}

/// Applies `policy` to a set-up namespace: its routes, its firewall elements
/// (`old`'s taken away), and forwarding on the host when it has egress.
/// Idempotent; a start applies it again, so a changed profile takes effect.
pub async fn configure(
    ns: &Namespace,
    slot: Slot,
    old: Option<&Policy>,
    policy: &Policy,
) -> Result<(), ExecError> {
    let routes = ns.handle.route();
    let via = slot.host_ip();
    let to_gateway = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(GATEWAY_IP, 32)
        .gateway(via)
        .build();
    routes
        .add(to_gateway)
        .replace()
        .execute()
        .await
        .map_err(|e| netlink("route to the gateway", e))?;
    let default = RouteMessageBuilder::<Ipv4Addr>::new().gateway(via);
    if policy.egress {
        routes
            .add(default.build())
            .replace()
            .execute()
            .await
            .map_err(|e| netlink("default route", e))?;
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
        match routes.del(default.build()).execute().await {
            Err(e) if errno(&e) != Some(libc::ESRCH) => {
                return Err(netlink("remove the default route", e))
            }
            _ => {}
        }
    }
    run_with_stdin(
        "nft",
        &["-f", "-"],
        &firewall(slot, Some(&before(old, policy)), Some(policy)),
    )
    .await?;
    Ok(())
}

/// Creates the namespace and the veth pair (with their addresses, up);
/// returns the slot and a connection into the namespace. The caller tears
/// down what an earlier attempt left first, and gives it its firewall with
/// [`configure`].
pub async fn set_up(links: &Links, id: &str) -> Result<(Slot, Namespace), ExecError> {
    let name = netns_name(id);
    // Made by `ip`, which makes `/run/netns` a shared mount first, so the
    // namespace's name stays visible in every mount namespace.
    run("ip", &["netns", "add", &name]).await?;
    let ns_file =
        std::fs::File::open(Path::new(NETNS_DIR).join(&name)).map_err(ExecError::Namespace)?;
    let start = preferred_slot(id);
    let mut claimed = None;
    for i in 0..WORKSPACE_SLOTS {
        let slot = Slot((start + i) % WORKSPACE_SLOTS);
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name("eth0".to_owned())
            .setns_by_fd(ns_file.as_raw_fd())
            .build();
        let pair = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(slot.host_ifname())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        match links.host.link().add(pair).execute().await {
            Ok(()) => {
                claimed = Some(slot);
                break;
            }
            Err(e) if errno(&e) == Some(libc::EEXIST) => continue,
            Err(e) => return Err(netlink("add the veth pair", e)),
        }
    }
    let Some(slot) = claimed else {
        return Err(ExecError::Exhausted);
    };
    let host_index = existing(&links.host, &slot.host_ifname()).await?;
    set_address_up(&links.host, host_index, slot.host_ip()).await?;
    let ns = Namespace::open(id).await?;
    let eth0 = existing(&ns.handle, "eth0").await?;
    set_address_up(&ns.handle, eth0, slot.workspace_ip()).await?;
    let lo = existing(&ns.handle, "lo").await?;
    ns.handle
        .link()
        .set(LinkUnspec::new_with_index(lo).up().build())
        .execute()
        .await
        .map_err(|e| netlink("set lo up", e))?;
    Ok((slot, ns))
}

/// Gives interface `index` the /30 address `ip` and sets it up.
async fn set_address_up(handle: &Handle, index: u32, ip: Ipv4Addr) -> Result<(), ExecError> {
    handle
        .address()
        .add(index, ip.into(), 30)
        .execute()
        .await
        .map_err(|e| netlink("add an address", e))?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| netlink("set an interface up", e))
}

/// Removes the namespace (which takes the veth pair with it), the host-side
/// interface if it survived, and the workspace's firewall elements (or its
/// own table). Missing pieces are fine.
pub async fn tear_down(links: &Links, id: &str, made: Option<&Made>) -> Result<(), ExecError> {
    // What `ip netns delete` does: the name goes, and the namespace with its
    // last user.
    let path = Path::new(NETNS_DIR).join(netns_name(id));
    if path.exists() {
        match rustix::mount::unmount(&path, rustix::mount::UnmountFlags::DETACH) {
            Ok(()) | Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(ExecError::Namespace(e.into())),
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ExecError::Namespace(e)),
        }
    }
    let Some(made) = made else {
        return Ok(());
    };
    // Gone with the namespace, unless something still held that.
    if let Some(index) = link_index(&links.host, &made.slot.host_ifname()).await? {
        match links.host.link().del(index).execute().await {
            Err(e) if errno(&e) != Some(libc::ENODEV) => {
                return Err(netlink("remove the veth pair", e))
            }
            _ => {}
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
    fn a_fresh_network_takes_away_a_stale_egress_element_of_its_slot() {
        let closed = Policy {
            gateway_ports: vec![8081],
            egress: false,
        };
        let batch = firewall(Slot(2), Some(&before(None, &closed)), Some(&closed));
        assert!(batch.contains("delete element inet berth egress { \"bw2\" . 10.213.0.10 }"));
        assert!(!batch.contains(
            "add element inet berth egress { \"bw2\" . 10.213.0.10 }\n\
             add element"
        ));
        assert!(batch.ends_with("add element inet berth gateway { \"bw2\" . 8081 }\n"));
        // A network kept from the last start takes away what that gave it.
        assert_eq!(before(Some(&closed), &closed), closed);
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
