//! The Helm chart in `deploy/helm/berth`, checked offline: `helm lint
//! --strict`; `helm template` with the least values and with
//! `ci/full-values.yaml`; every rendered object and the CRD validated against
//! Kubernetes' own OpenAPI schemas by `kubernetes-validate --strict`; and what
//! the chart promises read back from what it renders: berth.toml, the
//! replicas, the Secrets, RBAC without a ClusterRole or a wildcard.
//!
//! helm comes from scripts/install-kube, kubernetes-validate from
//! scripts/install-deps (a Python environment at /opt/berth/kube-tools).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use runtime_kube::Placement;
use serde::Deserialize;
use serde_norway::Value;

/// The Kubernetes version the chart is rendered for and validated against.
const KUBE_VERSION: &str = "1.37.0";
/// A database URL for renders that need one.
const DATABASE_URL: &str = "postgres://berth:secret@postgres.db.svc:5432/berth";

fn chart_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/helm/berth");
    dir.canonicalize().unwrap_or(dir)
}

/// helm and kubernetes-validate, when both are here; in CI they must be.
fn tools() -> Option<(PathBuf, PathBuf)> {
    let helm = runtime_kube::envtest::bin_dir().join("helm");
    let validate = std::env::var_os("BERTH_KUBE_VALIDATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/opt/berth/kube-tools/bin/kubernetes-validate".into());
    let mut missing = Vec::new();
    if !helm.is_file() {
        missing.push(format!(
            "{} (scripts/install-kube builds it)",
            helm.display()
        ));
    }
    if !validate.is_file() {
        missing.push(format!(
            "{} (scripts/install-deps installs it; BERTH_KUBE_VALIDATE names another)",
            validate.display()
        ));
    }
    runtime_kube::envtest::present(&missing).then_some((helm, validate))
}

/// Runs `cmd` to its end; panics only when it cannot start.
fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs `cmd`, which must succeed; its stdout.
fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("output is UTF-8")
}

/// `helm template RELEASE` into `NAMESPACE`, for [`KUBE_VERSION`], with `args`.
fn template(helm: &Path, release: &str, namespace: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(helm);
    cmd.args(["template", release])
        .arg(chart_dir())
        .args(["--namespace", namespace, "--kube-version", KUBE_VERSION])
        .args(args);
    cmd
}

/// Validates `file` with kubernetes-validate: every object it has a schema
/// for must pass; of the others, only those of `unchecked_kinds` may be
/// there. Returns how many objects passed.
///
/// kubernetes-validate knows the OpenAPI schemas of Kubernetes itself, not
/// of CRDs: an object of a kind it has no schema for (here only the Gateway
/// API's HTTPRoute) gets a WARN line and exit status 0. So its output is read
/// line by line instead of trusting the exit status alone, and the HTTPRoute
/// is checked by [`check_http_route`] instead.
fn validate(tool: &Path, file: &Path, unchecked_kinds: &[&str]) -> usize {
    let out = run(Command::new(tool)
        .args(["--strict", "-k", KUBE_VERSION])
        .arg(file));
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "kubernetes-validate {} failed ({}):\n{stdout}{}",
        file.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut passed = 0;
    for line in stdout.lines() {
        if line.starts_with("INFO ") && line.contains(" passed for resource ") {
            passed += 1;
        } else if line.starts_with("WARN ") && line.contains("Couldn't find schema for kind") {
            assert!(
                unchecked_kinds
                    .iter()
                    .any(|k| line.contains(&format!("kind {k} with"))),
                "kubernetes-validate has no schema for an object the chart makes: {line}"
            );
        } else if !line.trim().is_empty() {
            panic!("kubernetes-validate {}: {line}", file.display());
        }
    }
    passed
}

/// The objects of a multi-document YAML stream, empty documents left out.
fn objects(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).expect("helm renders YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn kind(obj: &Value) -> &str {
    obj["kind"].as_str().unwrap_or_default()
}

/// The one object of `kind` (named `name`, if given).
fn one<'a>(objects: &'a [Value], kind_: &str, name: Option<&str>) -> &'a Value {
    let found: Vec<_> = objects
        .iter()
        .filter(|o| kind(o) == kind_)
        .filter(|o| name.is_none_or(|n| o["metadata"]["name"].as_str() == Some(n)))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {kind_} {name:?}, found {}",
        found.len()
    );
    found[0]
}

fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v:?}"))
}

/// The berth.toml in the ConfigMap.
fn berth_toml(objects: &[Value]) -> toml::Table {
    let text = str_of(
        &one(objects, "ConfigMap", None)["data"]["berth.toml"],
        "berth.toml",
    );
    text.parse()
        .unwrap_or_else(|e| panic!("berth.toml does not parse: {e}\n{text}"))
}

fn toml_at<'a>(table: &'a toml::Table, path: &str) -> &'a toml::Value {
    let mut keys = path.split('.');
    let first = keys.next().unwrap_or_default();
    let mut v = table
        .get(first)
        .unwrap_or_else(|| panic!("berth.toml has no {path}"));
    for key in keys {
        v = v
            .get(key)
            .unwrap_or_else(|| panic!("berth.toml has no {path}"));
    }
    v
}

/// The container's env var `name` as (Secret, key) it comes from.
fn secret_env<'a>(deployment: &'a Value, name: &str) -> Option<(&'a str, &'a str)> {
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence()?;
    let var = env.iter().find(|e| e["name"].as_str() == Some(name))?;
    let r = &var["valueFrom"]["secretKeyRef"];
    Some((
        str_of(&r["name"], "secretKeyRef.name"),
        str_of(&r["key"], "secretKeyRef.key"),
    ))
}

/// RBAC: no cluster-wide object, no wildcard anywhere, and the Lease verbs
/// other than `create` limited to the one Lease. Returns the Roles' rules as
/// (namespace, apiGroup, resource, verb) for the caller to compare.
fn check_rbac(objects: &[Value], lease: &str) -> BTreeSet<(String, String, String, String)> {
    for o in objects {
        assert!(
            !kind(o).starts_with("Cluster"),
            "the chart makes a {}: {}",
            kind(o),
            o["metadata"]["name"].as_str().unwrap_or_default()
        );
    }
    let mut grants = BTreeSet::new();
    for role in objects.iter().filter(|o| kind(o) == "Role") {
        let ns = str_of(&role["metadata"]["namespace"], "Role namespace");
        for rule in role["rules"].as_sequence().expect("a Role has rules") {
            let list = |key: &str| -> Vec<String> {
                rule[key]
                    .as_sequence()
                    .map(|s| s.iter().map(|v| str_of(v, key).to_owned()).collect())
                    .unwrap_or_default()
            };
            let (groups, resources, verbs, names) = (
                list("apiGroups"),
                list("resources"),
                list("verbs"),
                list("resourceNames"),
            );
            for word in groups.iter().chain(&resources).chain(&verbs) {
                assert!(!word.contains('*'), "a wildcard in a Role: {rule:?}");
            }
            if resources.iter().any(|r| r == "leases") {
                if verbs.iter().any(|v| v == "create") {
                    // The authorizer knows no name before the object exists.
                    assert!(names.is_empty(), "create limited by name: {rule:?}");
                } else {
                    assert_eq!(
                        names,
                        [lease],
                        "lease verbs not limited to {lease}: {rule:?}"
                    );
                }
            }
            for g in &groups {
                for r in &resources {
                    for v in &verbs {
                        grants.insert((ns.to_owned(), g.clone(), r.clone(), v.clone()));
                    }
                }
            }
        }
    }
    for binding in objects.iter().filter(|o| kind(o) == "RoleBinding") {
        let role = str_of(&binding["roleRef"]["name"], "roleRef.name");
        assert_eq!(binding["roleRef"]["kind"].as_str(), Some("Role"));
        assert!(
            objects.iter().any(|o| kind(o) == "Role"
                && o["metadata"]["name"].as_str() == Some(role)
                && o["metadata"]["namespace"] == binding["metadata"]["namespace"]),
            "RoleBinding to a Role the chart does not make: {role}"
        );
    }
    grants
}

fn grant(ns: &str, group: &str, resource: &str, verb: &str) -> (String, String, String, String) {
    (ns.into(), group.into(), resource.into(), verb.into())
}

/// What kubernetes-validate cannot check of the HTTPRoute: that it is one
/// (apiVersion, kind), attaches where asked, and routes every path to
/// berth's Service and port.
fn check_http_route(route: &Value, service: &str, port: u64) {
    assert_eq!(
        route["apiVersion"].as_str(),
        Some("gateway.networking.k8s.io/v1")
    );
    let spec = &route["spec"];
    let parent = &spec["parentRefs"][0];
    assert_eq!(parent["name"].as_str(), Some("public"));
    assert_eq!(parent["namespace"].as_str(), Some("gateway-system"));
    assert_eq!(parent["sectionName"].as_str(), Some("https"));
    assert_eq!(spec["hostnames"][0].as_str(), Some("berth.example.com"));
    let rules = spec["rules"].as_sequence().expect("HTTPRoute rules");
    assert_eq!(rules.len(), 1);
    let matched = &rules[0]["matches"][0]["path"];
    assert_eq!(matched["type"].as_str(), Some("PathPrefix"));
    assert_eq!(matched["value"].as_str(), Some("/"));
    let backend = &rules[0]["backendRefs"][0];
    assert_eq!(backend["name"].as_str(), Some(service));
    assert_eq!(backend["port"].as_u64(), Some(port));
    let known = ["apiVersion", "kind", "metadata", "spec"];
    for key in route.as_mapping().expect("an object").keys() {
        assert!(known.contains(&str_of(key, "key")), "HTTPRoute key {key:?}");
    }
    let known = ["parentRefs", "hostnames", "rules"];
    for key in spec.as_mapping().expect("a spec").keys() {
        assert!(
            known.contains(&str_of(key, "key")),
            "HTTPRoute spec key {key:?}"
        );
    }
}

#[test]
fn the_chart_lints_renders_and_validates() {
    let Some((helm, validator)) = tools() else {
        return;
    };
    let chart = chart_dir();
    let full_values = chart.join("ci/full-values.yaml");
    let database = format!("database.url={DATABASE_URL}");
    let dir = tempfile::tempdir().expect("a temporary directory");

    // Lint, strictly, with the least values and with every value.
    for values in [
        ["--set", database.as_str()],
        ["-f", full_values.to_str().unwrap()],
    ] {
        let out = run_ok(
            Command::new(&helm)
                .args(["lint", "--strict", "--kube-version", KUBE_VERSION])
                .arg(&chart)
                .args(values),
        );
        println!("{out}");
        assert!(out.contains("0 chart(s) failed"), "{out}");
    }

    // Without a database the chart does not render, and says why.
    let out = run(&mut template(&helm, "berth", "berth", &[]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "rendered without a database");
    assert!(
        stderr.contains("berth on Kubernetes needs PostgreSQL: set database.url"),
        "{stderr}"
    );
    // Nor with two, or with another database.
    let out = run(&mut template(
        &helm,
        "berth",
        "berth",
        &["--set", &database, "--set", "database.existingSecret=db"],
    ));
    assert!(!out.status.success(), "rendered with two databases");
    assert!(String::from_utf8_lossy(&out.stderr).contains("set only one of database.url"));
    let out = run(&mut template(
        &helm,
        "berth",
        "berth",
        &["--set", "database.url=mysql://berth@db/berth"],
    ));
    assert!(!out.status.success(), "rendered with a MySQL URL");
    // Secrets stay out of the ConfigMap.
    let out = run(&mut template(
        &helm,
        "berth",
        "berth",
        &["--set", &database, "--set", "config.admin_password=hunter2"],
    ));
    assert!(!out.status.success(), "rendered a password into berth.toml");
    assert!(String::from_utf8_lossy(&out.stderr).contains("secrets do not belong in berth.toml"));

    // The least values: release "berth" in namespace "berth".
    let minimal = run_ok(&mut template(
        &helm,
        "berth",
        "berth",
        &["--set", &database],
    ));
    let minimal_file = dir.path().join("minimal.yaml");
    std::fs::write(&minimal_file, &minimal).unwrap();
    let objs = objects(&minimal);
    assert_eq!(validate(&validator, &minimal_file, &[]), objs.len());
    let kinds: BTreeSet<&str> = objs.iter().map(kind).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ConfigMap",
            "Deployment",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Secret",
            "Service",
            "ServiceAccount"
        ])
    );

    let deployment = one(&objs, "Deployment", Some("berth"));
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"].as_u64(), Some(2));
    let pod = &spec["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"].as_str(),
        Some("ghcr.io/berth-dev/berth:0.1.0")
    );
    assert_eq!(
        container["args"],
        serde_norway::from_str::<Value>("[serve, --config, /etc/berth/berth.toml]").unwrap()
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(pod["serviceAccountName"].as_str(), Some("berth"));
    assert!(spec["template"]["metadata"]["annotations"]["checksum/config"].is_string());
    assert_eq!(
        secret_env(deployment, "BERTH_DATABASE_URL"),
        Some(("berth", "database-url"))
    );
    assert_eq!(secret_env(deployment, "BERTH_ADMIN_PASSWORD"), None);
    let secret = one(&objs, "Secret", Some("berth"));
    assert!(secret["data"]["database-url"].is_string());
    let selector = &spec["selector"]["matchLabels"];
    assert_eq!(
        selector,
        &serde_norway::from_str::<Value>(
            "{app.kubernetes.io/name: berth, app.kubernetes.io/instance: berth}"
        )
        .unwrap()
    );
    assert_eq!(&one(&objs, "Service", None)["spec"]["selector"], selector);
    assert_eq!(
        one(&objs, "PodDisruptionBudget", None)["spec"]["minAvailable"].as_u64(),
        Some(1)
    );

    let config = berth_toml(&objs);
    let s = |path: &str| toml_at(&config, path).as_str().map(str::to_owned);
    assert_eq!(s("runtime").as_deref(), Some("kubernetes"));
    assert_eq!(s("bind").as_deref(), Some("0.0.0.0:8000"));
    assert_eq!(s("data_dir").as_deref(), Some("/var/lib/berth"));
    assert!(config.get("public_url").is_none());
    assert!(config.get("database_url").is_none() && config.get("admin_password").is_none());
    assert_eq!(
        toml_at(&config, "controller.lease_secs").as_integer(),
        Some(15)
    );
    assert_eq!(s("kubernetes.namespace").as_deref(), Some("berth"));
    assert_eq!(
        s("kubernetes.hub_url").as_deref(),
        Some("http://berth.berth.svc:8000")
    );
    assert_eq!(
        s("kubernetes.image").as_deref(),
        Some("quay.io/jupyter/base-notebook:latest")
    );
    assert!(config["kubernetes"].get("storage_class").is_none());
    assert_eq!(
        toml_at(&config, "kubernetes.operator").as_bool(),
        Some(true)
    );
    assert_eq!(
        s("kubernetes.lease_name").as_deref(),
        Some("berth-operator")
    );
    assert_eq!(s("kubernetes.lease_namespace").as_deref(), Some("berth"));
    assert_eq!(
        toml_at(&config, "kubernetes.lease_secs").as_integer(),
        Some(15)
    );
    assert_eq!(s("kubernetes.berth_namespace").as_deref(), Some("berth"));
    // The workspaces' NetworkPolicies admit exactly berth's Pods.
    let pod_labels: Value =
        serde_norway::to_value(toml_at(&config, "kubernetes.berth_pod_labels")).unwrap();
    assert_eq!(&pod_labels, selector);
    assert_eq!(
        toml_at(&config, "kubernetes.cluster_cidrs"),
        &toml::Value::Array(vec!["10.0.0.0/8".into()])
    );
    assert!(config["kubernetes"].get("profiles").is_none());
    // Integers stay integers (Helm reads values as floats), CPUs are floats.
    assert_eq!(
        toml_at(&config, "profiles.standard.memory_bytes").as_integer(),
        Some(8 << 30)
    );
    assert_eq!(
        toml_at(&config, "profiles.standard.cpu").as_float(),
        Some(2.0)
    );
    assert_eq!(
        toml_at(&config, "profiles.high-memory.memory_bytes").as_integer(),
        Some(32 << 30)
    );
    assert_eq!(
        toml_at(&config, "profiles.standard.idle_timeout_secs").as_integer(),
        Some(3600)
    );
    assert_eq!(s("profiles.standard.idle_action").as_deref(), Some("stop"));
    assert_eq!(
        toml_at(&config, "profiles.standard.egress").as_bool(),
        Some(true)
    );

    let grants = check_rbac(&objs, "berth-operator");
    for verb in ["get", "list", "watch", "create", "patch", "delete"] {
        assert!(
            grants.contains(&grant("berth", "", "pods", verb)),
            "pods {verb}"
        );
    }
    for verb in ["get", "update", "patch", "create"] {
        assert!(grants.contains(&grant("berth", "coordination.k8s.io", "leases", verb)));
    }
    assert!(grants.contains(&grant("berth", "berth.dev", "workspaces/status", "patch")));
    assert!(grants.contains(&grant("berth", "", "pods/log", "get")));
    let kinds_granted: BTreeSet<&str> = grants.iter().map(|g| g.2.as_str()).collect();
    assert_eq!(
        kinds_granted,
        BTreeSet::from([
            "events",
            "leases",
            "networkpolicies",
            "persistentvolumeclaims",
            "pods",
            "pods/log",
            "secrets",
            "services",
            "workspaces",
            "workspaces/status"
        ])
    );

    // Every value: release "prod" in namespace "platform", workspaces apart.
    let full = run_ok(&mut template(
        &helm,
        "prod",
        "platform",
        &["-f", full_values.to_str().unwrap()],
    ));
    let full_file = dir.path().join("full.yaml");
    std::fs::write(&full_file, &full).unwrap();
    let objs = objects(&full);
    // All but the HTTPRoute, which kubernetes-validate has no schema for.
    assert_eq!(
        validate(&validator, &full_file, &["HTTPRoute"]),
        objs.len() - 1
    );
    check_http_route(one(&objs, "HTTPRoute", None), "prod-berth", 80);

    assert!(
        !objs.iter().any(|o| kind(o) == "Secret"),
        "a Secret beside existingSecret"
    );
    let deployment = one(&objs, "Deployment", Some("prod-berth"));
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(3));
    assert_eq!(
        secret_env(deployment, "BERTH_DATABASE_URL"),
        Some(("berth-postgres", "url"))
    );
    assert_eq!(
        secret_env(deployment, "BERTH_ADMIN_PASSWORD"),
        Some(("berth-admin", "password"))
    );
    let ingress = one(&objs, "Ingress", None);
    assert_eq!(
        ingress["spec"]["tls"][0]["secretName"].as_str(),
        Some("berth-example-com-tls")
    );
    assert_eq!(
        ingress["spec"]["rules"][0]["host"].as_str(),
        Some("berth.example.com")
    );
    let namespace = one(&objs, "Namespace", Some("berth-workspaces"));
    assert_eq!(
        namespace["metadata"]["annotations"]["helm.sh/resource-policy"].as_str(),
        Some("keep")
    );
    assert_eq!(
        one(&objs, "PodDisruptionBudget", None)["spec"]["minAvailable"].as_u64(),
        Some(2)
    );

    let config = berth_toml(&objs);
    let s = |path: &str| toml_at(&config, path).as_str().map(str::to_owned);
    assert_eq!(
        s("public_url").as_deref(),
        Some("https://berth.example.com")
    );
    assert_eq!(
        s("kubernetes.namespace").as_deref(),
        Some("berth-workspaces")
    );
    assert_eq!(s("kubernetes.berth_namespace").as_deref(), Some("platform"));
    assert_eq!(s("kubernetes.lease_namespace").as_deref(), Some("platform"));
    assert_eq!(
        s("kubernetes.lease_name").as_deref(),
        Some("berth-operator-prod")
    );
    assert_eq!(s("kubernetes.storage_class").as_deref(), Some("fast-ssd"));
    assert_eq!(
        s("kubernetes.hub_url").as_deref(),
        Some("http://prod-berth.platform.svc:80")
    );
    // berth reads each placement as the runtime's Placement (unknown keys refused).
    let gpu: Placement = toml_at(&config, "kubernetes.profiles.gpu")
        .clone()
        .try_into()
        .unwrap_or_else(|e| panic!("kubernetes.profiles.gpu is no Placement: {e}"));
    assert_eq!(gpu.gpus, 1);
    assert_eq!(
        gpu.image.as_deref(),
        Some("quay.io/jupyter/pytorch-notebook:cuda12-latest")
    );
    assert_eq!(gpu.node_selector["nvidia.com/gpu.present"], "true");
    assert_eq!(gpu.tolerations.len(), 2);
    assert_eq!(gpu.tolerations[1].toleration_seconds, Some(300));
    let profiles: BTreeSet<&String> = config["profiles"].as_table().unwrap().keys().collect();
    assert_eq!(
        profiles,
        BTreeSet::from([&"gpu".into(), &"small".into(), &"standard".into()])
    );
    assert_eq!(toml_at(&config, "profiles.gpu.cpu").as_float(), Some(8.0));
    assert_eq!(toml_at(&config, "profiles.small.cpu").as_float(), Some(0.5));
    assert_eq!(
        s("profiles.small.display_name").as_deref(),
        Some("Small (0.5 CPU, 2 GiB) \"try it\"")
    );
    assert_eq!(
        toml_at(&config, "profiles.small.egress").as_bool(),
        Some(false)
    );
    // `config` adds keys; the chart's own win.
    assert_eq!(
        toml_at(&config, "controller.lease_secs").as_integer(),
        Some(20)
    );
    assert_eq!(
        toml_at(&config, "controller.resync_secs").as_integer(),
        Some(60)
    );
    assert_eq!(toml_at(&config, "quota.max_cpu").as_float(), Some(16.0));
    assert_eq!(
        toml_at(&config, "quota.max_workspaces").as_integer(),
        Some(5)
    );

    let grants = check_rbac(&objs, "berth-operator-prod");
    let namespaces: BTreeSet<&str> = grants.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(namespaces, BTreeSet::from(["berth-workspaces", "platform"]));
    assert!(grants.contains(&grant("berth-workspaces", "", "pods", "create")));
    assert!(grants.contains(&grant("platform", "coordination.k8s.io", "leases", "get")));
    assert!(!grants.iter().any(|g| g.0 == "platform" && g.2 != "leases"));
    assert!(!grants
        .iter()
        .any(|g| g.0 == "berth-workspaces" && g.2 == "leases"));
    for binding in objs.iter().filter(|o| kind(o) == "RoleBinding") {
        let subject = &binding["subjects"][0];
        assert_eq!(subject["name"].as_str(), Some("berth-control-plane"));
        assert_eq!(subject["namespace"].as_str(), Some("platform"));
    }

    // The CRD helm installs from crds/ (which `helm template` leaves out).
    let crd = chart.join("crds/workspaces.berth.dev.yaml");
    assert_eq!(validate(&validator, &crd, &[]), 1);
}
