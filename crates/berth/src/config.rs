//! `berth serve`'s configuration: one tree, layered defaults < `berth.toml` <
//! `BERTH_*` environment < command-line flags, validated before anything binds.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use model::Secret;
use serde::{Deserialize, Serialize};

/// The commented example printed by `berth config default`; a test parses it.
pub const EXAMPLE: &str = r#"# berth.toml: configuration of `berth serve`.
# Every key is optional; shown are the defaults. Each key can also be set as an
# environment variable: BERTH_BIND, BERTH_DATA_DIR, BERTH_LOG__LEVEL, and so on
# (two underscores between a section and its key). Flags win over both.

# Address of the one listener (API, portal, proxy).
bind = "127.0.0.1:8000"

# Where berth keeps its SQLite database (db/) and workspaces (workspaces/).
# Default: /var/lib/berth as root, else $XDG_DATA_HOME/berth. With the process
# runtime, workspace users must be able to traverse it and its parents (o+x).
# data_dir = "/var/lib/berth"

# What runs workspaces: "process" (bubblewrap sandboxes on this machine, in their
# own cgroups and network namespaces; needs root), "kubernetes" (a Workspace
# object each, run by berth's operator as a Pod; see [kubernetes]) or "none"
# (record desired state only, for control planes whose workspaces run
# elsewhere, and for tests).
runtime = "process"

# The managed Python environment JupyterLab workspaces run from (made by
# scripts/install-deps; mounted read-only into each sandbox).
jupyter_env = "/opt/berth/jupyter"

# With the process runtime, the port at which workspaces reach berth's API on
# the workspace gateway address (10.213.255.253); default: bind's port. Replicas on
# one machine give the same one: they share it, so that a workspace's API URL
# outlives the replica that started it.
# gateway_port = 8000

# PostgreSQL instead of the embedded SQLite, e.g. "postgres://berth@db/berth".
# database_url = ""

# The URL users reach berth at; an https:// URL marks cookies Secure.
# public_url = "https://berth.example.com"

# What profiles' costs are in, shown with every amount: an ISO 4217 code
# ("EUR": "12.50 EUR") or a symbol ("€": "€12.50").
currency = "USD"

# The first admin's password, used only on the first start with an empty
# database. Without it, a random one-time password is printed once.
# admin_password = ""

[log]
# error, warn, info, debug or trace; RUST_LOG overrides it.
level = "info"
# "text" or "json".
format = "text"

[auth]
# How long a login session lasts.
session_ttl_secs = 1209600
# Failed logins for one user name before attempts are refused for a while.
login_max_failures = 5
# First refusal period; it doubles with each further failure (up to 15 minutes).
login_lockout_secs = 30

[quota]
# What each user may hold at most. CPU and memory count the workspaces that are
# not stopped; a create or start beyond them is refused with quota_exceeded.
max_workspaces = 10
max_cpu = 16.0
max_memory_bytes = 68719476736 # 64 GiB

[controller]
# Several `berth serve` on one PostgreSQL database share the work: each serves
# the API, the portal and the proxy, and one (the holder of a lease in the
# database) runs the controller. When it dies, another takes over once its
# lease has gone this long without renewal; at once when it stops cleanly, or
# when it was a process of the same machine.
lease_secs = 15
# How often the controller looks at every workspace even when nothing changed
# (a change through any replica wakes it at once).
resync_secs = 30

[kubernetes]
# With runtime = "kubernetes": the cluster comes from `kubeconfig`, else from
# where berth runs (its Pod's service account), else $KUBECONFIG or
# ~/.kube/config.
# kubeconfig = "/etc/berth/kubeconfig"
# The namespace of the Workspace objects, and so of their Pods.
namespace = "default"
# berth's URL as workspace Pods reach it, for JUPYTERHUB_API_URL and the like
# (JupyterHub's single-user server needs it), e.g. "http://berth.berth.svc:8000".
# hub_url = ""
# The image of JupyterLab workspaces.
image = "quay.io/jupyter/base-notebook:latest"
# The homes' storage class; the cluster's default when unset.
# storage_class = ""
# Run the operator in this process: one replica at a time, under a Lease.
operator = true
lease_name = "berth-operator"
# The Lease's namespace; default: `namespace`.
# lease_namespace = ""
# How long a Lease stands still before another replica takes the operator over.
lease_secs = 15
# The workspaces' NetworkPolicy lets in only berth's Pods (these labels, in
# this namespace) and lets them out only to berth's API and DNS and, where
# their profile allows, anywhere outside these ranges (the cluster's own).
berth_namespace = "berth"
berth_pod_labels = { "app.kubernetes.io/name" = "berth" }
cluster_cidrs = ["10.0.0.0/8"]
# Most Workspaces the operator reconciles at once.
operator_concurrency = 32

# Where workspaces of a profile run, by its name: GPUs, image, node pool.
# [kubernetes.profiles.gpu]
# gpus = 1
# image = "quay.io/jupyter/pytorch-notebook:cuda12-latest"
# node_selector = { "nvidia.com/gpu.present" = "true" }
# tolerations = [{ key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }]

# Profiles created, or changed to what is written here, at each start; the
# fields of the API's profiles (berth profiles create --help), over the
# Standard profile's values. Profiles not named here are left alone.
# [profiles.standard]
# display_name = "Standard (2 CPU, 8 GiB)"
# cpu = 2.0
# memory_bytes = 8589934592

[proxy]
# How the proxy talks to workspaces' apps: how long a connection may take to
# open; how long an app may take to begin its answer (0: no limit; a body then
# streams as long as it takes; WebSockets are not limited); how long an idle
# connection is kept; how many idle connections are kept per app.
connect_timeout_secs = 5
response_timeout_secs = 0
pool_idle_secs = 60
pool_max_idle = 1024
"#;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub bind: SocketAddr,
    /// Where `bind` came from, for its errors: `--bind`, `BERTH_BIND`, the
    /// file, or the default.
    #[serde(skip)]
    pub bind_from: String,
    pub data_dir: PathBuf,
    pub runtime: RuntimeKind,
    pub jupyter_env: PathBuf,
    pub gateway_port: Option<u16>,
    pub database_url: Option<Secret>,
    pub public_url: Option<String>,
    pub currency: String,
    pub admin_password: Option<Secret>,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub quota: QuotaConfig,
    pub controller: ControllerConfig,
    pub kubernetes: KubernetesConfig,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, api_types::ProfileUpdate>,
    pub proxy: ProxyConfig,
}

/// `[kubernetes]`: where the Kubernetes runtime and operator work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub_url: Option<String>,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    pub operator: bool,
    pub lease_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_namespace: Option<String>,
    pub lease_secs: u64,
    pub berth_namespace: String,
    pub berth_pod_labels: BTreeMap<String, String>,
    pub cluster_cidrs: Vec<String>,
    pub operator_concurrency: u16,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, runtime_kube::Placement>,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            kubeconfig: None,
            namespace: "default".into(),
            hub_url: None,
            image: "quay.io/jupyter/base-notebook:latest".into(),
            storage_class: None,
            operator: true,
            lease_name: "berth-operator".into(),
            lease_namespace: None,
            lease_secs: 15,
            berth_namespace: "berth".into(),
            berth_pod_labels: BTreeMap::from([("app.kubernetes.io/name".into(), "berth".into())]),
            cluster_cidrs: vec!["10.0.0.0/8".into()],
            operator_concurrency: 32,
            profiles: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    pub connect_timeout_secs: u64,
    /// 0: no limit.
    pub response_timeout_secs: u64,
    pub pool_idle_secs: u64,
    pub pool_max_idle: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    pub lease_secs: u64,
    pub resync_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    pub max_workspaces: u64,
    /// CPUs (fractions allowed).
    pub max_cpu: f64,
    pub max_memory_bytes: u64,
}

/// Which runtime runs workspaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    Process,
    Kubernetes,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub session_ttl_secs: u64,
    pub login_max_failures: u32,
    pub login_lockout_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            bind_from: String::new(),
            data_dir: default_data_dir(),
            runtime: RuntimeKind::Process,
            jupyter_env: PathBuf::from("/opt/berth/jupyter"),
            gateway_port: None,
            database_url: None,
            public_url: None,
            currency: "USD".into(),
            admin_password: None,
            log: LogConfig {
                level: "info".into(),
                format: LogFormat::Text,
            },
            auth: AuthConfig {
                session_ttl_secs: 14 * 24 * 3600,
                login_max_failures: 5,
                login_lockout_secs: 30,
            },
            quota: QuotaConfig {
                max_workspaces: 10,
                max_cpu: 16.0,
                max_memory_bytes: 64 << 30,
            },
            controller: ControllerConfig {
                lease_secs: 15,
                resync_secs: 30,
            },
            kubernetes: KubernetesConfig::default(),
            profiles: BTreeMap::new(),
            proxy: ProxyConfig {
                connect_timeout_secs: 5,
                response_timeout_secs: 0,
                pool_idle_secs: 60,
                pool_max_idle: 1024,
            },
        }
    }
}

/// `/var/lib/berth` for root (whose home workspace users cannot traverse), else
/// the user's data directory.
fn default_data_dir() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    match dirs::data_dir() {
        Some(d) if !root => d.join("berth"),
        _ => PathBuf::from("/var/lib/berth"),
    }
}

impl KubernetesConfig {
    fn validate(&self) -> anyhow::Result<()> {
        let label = |key: &str, v: &str| -> anyhow::Result<()> {
            let ok = !v.is_empty()
                && v.len() <= 63
                && v.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !v.starts_with('-')
                && !v.ends_with('-');
            if !ok {
                bail!("kubernetes.{key} must be a Kubernetes name: up to 63 lowercase letters, digits and '-'");
            }
            Ok(())
        };
        label("namespace", &self.namespace)?;
        label("berth_namespace", &self.berth_namespace)?;
        if let Some(ns) = &self.lease_namespace {
            label("lease_namespace", ns)?;
        }
        if self.lease_name.is_empty() || self.lease_name.len() > 253 {
            bail!("kubernetes.lease_name must be 1 to 253 characters");
        }
        if !(3..=600).contains(&self.lease_secs) {
            bail!("kubernetes.lease_secs must be between 3 and 600");
        }
        if !(1..=1000).contains(&self.operator_concurrency) {
            bail!("kubernetes.operator_concurrency must be between 1 and 1000");
        }
        if let Some(url) = &self.hub_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("kubernetes.hub_url must start with http:// or https://");
            }
        }
        if self.image.trim().is_empty() {
            bail!("kubernetes.image must name an image");
        }
        for cidr in &self.cluster_cidrs {
            let ok = cidr.split_once('/').is_some_and(|(ip, bits)| {
                ip.parse::<std::net::IpAddr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= 128)
            });
            if !ok {
                bail!("kubernetes.cluster_cidrs: {cidr:?} is no CIDR such as 10.0.0.0/8");
            }
        }
        Ok(())
    }

    /// The Lease's namespace.
    pub fn lease_namespace(&self) -> &str {
        self.lease_namespace.as_deref().unwrap_or(&self.namespace)
    }
}

/// Values given as command-line flags; they win over every other layer.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

/// The environment variables that are config keys; others (`BERTH_URL`,
/// `BERTH_TOKEN` for the client verbs) are not this tree's business.
const ENV_KEYS: &[&str] = &[
    "bind",
    "data_dir",
    "runtime",
    "jupyter_env",
    "gateway_port",
    "database_url",
    "public_url",
    "currency",
    "admin_password",
    "log",
    "auth",
    "quota",
    "controller",
    "kubernetes",
    "profiles",
    "proxy",
];

impl Config {
    /// Loads the layers. `file` is the config file; a missing file is an error only
    /// when it was named explicitly.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        let (path, explicit) = match file {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("berth.toml"), false),
        };
        if explicit && !path.exists() {
            bail!("config file {} does not exist", path.display());
        }
        let env = Env::prefixed("BERTH_").split("__").filter(|k| {
            let key = k.as_str().to_ascii_lowercase();
            ENV_KEYS.contains(&key.split('.').next().unwrap_or_default())
        });
        let figment = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(&path))
            .merge(env)
            .merge(Serialized::defaults(overrides));
        let bind_from = if overrides.bind.is_some() {
            "--bind".to_owned()
        } else if std::env::var_os("BERTH_BIND").is_some() {
            "BERTH_BIND".to_owned()
        } else if figment
            .find_metadata("bind")
            .is_some_and(|m| m.name.contains("TOML"))
        {
            format!("bind in {}", path.display())
        } else {
            "the default".to_owned()
        };
        let mut config: Config = figment
            .extract()
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| match path.exists() {
                true => format!(
                    "invalid configuration (file {}, BERTH_* or flags)",
                    path.display()
                ),
                false => "invalid configuration (BERTH_* or flags)".to_owned(),
            })?;
        config.bind_from = bind_from;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: ranges, URL schemes, the log level.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.database_url {
            let u = url.expose();
            if !(u.starts_with("postgres://")
                || u.starts_with("postgresql://")
                || u.starts_with("sqlite:"))
            {
                bail!("database_url must start with postgres://, postgresql:// or sqlite:");
            }
        }
        if let Some(p) = &self.public_url {
            if !(p.starts_with("http://") || p.starts_with("https://")) {
                bail!("public_url must start with http:// or https://");
            }
        }
        let c = self.currency.trim();
        if c.is_empty() || c.chars().count() > 8 || c.chars().any(|ch| ch.is_control()) {
            bail!("currency must be 1 to 8 printable characters, such as USD, EUR or €");
        }
        self.log
            .level
            .parse::<tracing_subscriber::filter::LevelFilter>()
            .map_err(|_| {
                anyhow::anyhow!("log.level must be one of error, warn, info, debug, trace, off")
            })?;
        let a = &self.auth;
        if !(60..=366 * 24 * 3600).contains(&a.session_ttl_secs) {
            bail!("auth.session_ttl_secs must be between 60 and 31622400");
        }
        if !(1..=1000).contains(&a.login_max_failures) {
            bail!("auth.login_max_failures must be between 1 and 1000");
        }
        if !(1..=3600).contains(&a.login_lockout_secs) {
            bail!("auth.login_lockout_secs must be between 1 and 3600");
        }
        if !(2..=600).contains(&self.controller.lease_secs) {
            bail!("controller.lease_secs must be between 2 and 600");
        }
        if !(1..=86_400).contains(&self.controller.resync_secs) {
            bail!("controller.resync_secs must be between 1 and 86400");
        }
        let p = &self.proxy;
        if !(1..=300).contains(&p.connect_timeout_secs) {
            bail!("proxy.connect_timeout_secs must be between 1 and 300");
        }
        if p.response_timeout_secs > 86_400 {
            bail!("proxy.response_timeout_secs must be at most 86400 (0: no limit)");
        }
        if !(1..=3600).contains(&p.pool_idle_secs) {
            bail!("proxy.pool_idle_secs must be between 1 and 3600");
        }
        if p.pool_max_idle > 100_000 {
            bail!("proxy.pool_max_idle must be at most 100000");
        }
        let q = &self.quota;
        if !(q.max_cpu.is_finite() && (0.0..=1e6).contains(&q.max_cpu)) {
            bail!("quota.max_cpu must be between 0 and 1000000");
        }
        self.kubernetes.validate()?;
        for name in self.profiles.keys() {
            if model::Name::check(name).is_err() {
                bail!("profiles.{name}: a profile name is lowercase letters, digits and '-', starting with a letter");
            }
        }
        Ok(())
    }

    /// The Kubernetes runtime's settings.
    pub fn kube_runtime(&self) -> runtime_kube::KubeRuntimeConfig {
        let k = &self.kubernetes;
        runtime_kube::KubeRuntimeConfig {
            namespace: k.namespace.clone(),
            image: k.image.clone(),
            hub_url: k.hub_url.clone(),
            storage_class: k.storage_class.clone(),
            placement: k.profiles.clone(),
            ..runtime_kube::KubeRuntimeConfig::default()
        }
    }

    /// The operator's settings.
    pub fn operator(&self) -> runtime_kube::operator::OperatorConfig {
        let k = &self.kubernetes;
        runtime_kube::operator::OperatorConfig {
            berth_namespace: k.berth_namespace.clone(),
            berth_pod_labels: k.berth_pod_labels.clone(),
            berth_api_port: self.bind.port(),
            cluster_cidrs: k.cluster_cidrs.clone(),
            concurrency: k.operator_concurrency,
        }
    }

    /// The proxy's settings as the server applies them.
    pub fn proxy(&self) -> proxy::Settings {
        let p = &self.proxy;
        proxy::Settings {
            connect_timeout: Duration::from_secs(p.connect_timeout_secs),
            response_timeout: (p.response_timeout_secs > 0)
                .then(|| Duration::from_secs(p.response_timeout_secs)),
            pool_idle_timeout: Duration::from_secs(p.pool_idle_secs),
            pool_max_idle_per_upstream: p.pool_max_idle,
        }
    }

    /// The quota as the server applies it.
    pub fn quota(&self) -> server::Quota {
        server::Quota {
            max_workspaces: self.quota.max_workspaces,
            max_cpu_millis: (self.quota.max_cpu * 1000.0).round() as u64,
            max_memory_bytes: self.quota.max_memory_bytes,
        }
    }

    /// The database URL: the configured one, or SQLite under the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.expose().to_owned(),
            None => format!(
                "sqlite://{}",
                self.data_dir.join("db").join("berth.db").display()
            ),
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;

    #[test]
    fn the_example_parses_to_the_defaults() {
        let mut parsed: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(EXAMPLE))
            .extract()
            .unwrap();
        parsed.data_dir = Config::default().data_dir;
        assert_eq!(parsed, Config::default());
        parsed.validate().unwrap();
    }

    #[test]
    fn layers_win_in_order_and_unknown_keys_fail() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "b.toml",
                "bind = \"127.0.0.1:9000\"\n[auth]\nlogin_max_failures = 9\n",
            )?;
            jail.set_env("BERTH_AUTH__LOGIN_MAX_FAILURES", "7");
            jail.set_env("BERTH_URL", "http://ignored-by-serve");
            let c = Config::load(Some(Path::new("b.toml")), &Overrides::default()).unwrap();
            assert_eq!((c.bind.port(), c.auth.login_max_failures), (9000, 7));
            let o = Overrides {
                bind: Some("127.0.0.1:0".into()),
                ..Default::default()
            };
            assert_eq!(
                Config::load(Some(Path::new("b.toml")), &o)
                    .unwrap()
                    .bind
                    .port(),
                0
            );

            jail.create_file("bad.toml", "bnd = \"x\"\n")?;
            let err = Config::load(Some(Path::new("bad.toml")), &Overrides::default()).unwrap_err();
            assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
            jail.create_file("bad3.toml", "[quota]\nmax_cpu = -1.0\n")?;
            let err =
                Config::load(Some(Path::new("bad3.toml")), &Overrides::default()).unwrap_err();
            assert!(format!("{err:#}").contains("quota.max_cpu"), "{err:#}");
            jail.create_file("bad4.toml", "currency = \"   \"\n")?;
            let err =
                Config::load(Some(Path::new("bad4.toml")), &Overrides::default()).unwrap_err();
            assert!(format!("{err:#}").contains("currency must be"), "{err:#}");
            jail.create_file("bad2.toml", "[auth]\nlogin_lockout_secs = 0\n")?;
            let err =
                Config::load(Some(Path::new("bad2.toml")), &Overrides::default()).unwrap_err();
            assert!(format!("{err:#}").contains("login_lockout_secs"), "{err:#}");
            jail.create_file("bind.toml", "bind = \"127.0.0.1:9\"\n")?;
            let from = |o: &Overrides| {
                Config::load(Some(Path::new("bind.toml")), o)
                    .unwrap()
                    .bind_from
            };
            assert_eq!(from(&Overrides::default()), "bind in bind.toml");
            let flag = Overrides {
                bind: Some("127.0.0.1:0".into()),
                ..Default::default()
            };
            assert_eq!(from(&flag), "--bind");
            jail.set_env("BERTH_BIND", "127.0.0.1:10");
            assert_eq!(from(&Overrides::default()), "BERTH_BIND");
            let err =
                Config::load(Some(Path::new("missing.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("does not exist"));
            Ok(())
        });
    }

    #[test]
    fn every_config_key_can_come_from_the_environment() {
        let full = Config {
            database_url: Some(Secret::new("sqlite://x")),
            public_url: Some("https://x".into()),
            admin_password: Some(Secret::new("x")),
            gateway_port: Some(8001),
            profiles: BTreeMap::from([("small".into(), Default::default())]),
            ..Config::default()
        };
        let table = toml::Table::try_from(&full).unwrap();
        let keys: Vec<&str> = table.keys().map(String::as_str).collect();
        let mut sorted = ENV_KEYS.to_vec();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
        figment::Jail::expect_with(|jail| {
            jail.set_env("BERTH_QUOTA__MAX_WORKSPACES", "77");
            jail.set_env("BERTH_RUNTIME", "kubernetes");
            jail.set_env("BERTH_KUBERNETES__NAMESPACE", "workspaces");
            jail.set_env("BERTH_PROFILES__SMALL__CPU", "0.5");
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(
                (c.quota.max_workspaces, c.runtime),
                (77, RuntimeKind::Kubernetes)
            );
            assert_eq!(c.kubernetes.namespace, "workspaces");
            assert_eq!(c.profiles["small"].cpu, Some(0.5));
            Ok(())
        });
    }

    #[test]
    fn bad_kubernetes_settings_and_profile_names_fail_with_the_key() {
        figment::Jail::expect_with(|jail| {
            for (toml, key) in [
                (
                    "[kubernetes]\nnamespace = \"Not_A_Name\"\n",
                    "kubernetes.namespace",
                ),
                ("[kubernetes]\nlease_secs = 1\n", "kubernetes.lease_secs"),
                (
                    "[kubernetes]\nhub_url = \"berth:8000\"\n",
                    "kubernetes.hub_url",
                ),
                (
                    "[kubernetes]\ncluster_cidrs = [\"10.0.0.0\"]\n",
                    "kubernetes.cluster_cidrs",
                ),
                ("[kubernetes]\nnope = 1\n", "nope"),
                ("[kubernetes.profiles.gpu]\ngpu = 1\n", "gpu"),
                ("[profiles.Big]\ncpu = 2.0\n", "profiles.Big"),
                ("[profiles.big]\ncpus = 2.0\n", "cpus"),
            ] {
                jail.create_file("bad.toml", toml)?;
                let err =
                    Config::load(Some(Path::new("bad.toml")), &Overrides::default()).unwrap_err();
                assert!(format!("{err:#}").contains(key), "{toml}: {err:#}");
            }
            Ok(())
        });
    }

    #[test]
    fn secrets_are_redacted_when_printed() {
        let c = Config {
            database_url: Some(Secret::new("postgres://u:pw@h/db")),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("pw@"));
        assert!(!toml::to_string(&c).unwrap().contains("pw@"));
    }
}
