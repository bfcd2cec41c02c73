//! The deployment files — deploy/compose-cluster.yaml and deploy/k8s/ — checked against each other
//! and against the binary, without Docker or Kubernetes.
//!
//! Every name a file references (services, volumes, ConfigMaps, Secrets and their keys, ports,
//! selectors) must exist in the set; every Chorus process a file starts is run as
//! `chorus config check --json` with the configuration files, environment and arguments its
//! container gets (the Kubernetes channel node through its own start script), and what the binary
//! reports must agree with the file: probes and health checks on the ops listener's port, published
//! and container ports on the listeners, seeds on the nodes' fixed addresses, certificates among
//! those issued, store hosts among the services, environment variable names among those the binary
//! reads.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value, json};
use yaml_rust2::{Yaml, YamlLoader};

const CHORUS: &str = env!("CARGO_BIN_EXE_chorus");

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

// ---- YAML as JSON values ----

fn to_json(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Real(s) => json!(s.parse::<f64>().expect("a YAML float")),
        Yaml::Integer(i) => json!(i),
        Yaml::String(s) => json!(s),
        Yaml::Boolean(b) => json!(b),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Hash(hash) => Value::Object(
            hash.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) | Yaml::Real(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        other => panic!("unsupported YAML key {other:?}"),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Yaml::Null => Value::Null,
        Yaml::Alias(_) | Yaml::BadValue => panic!("unresolved YAML node {yaml:?}"),
    }
}

/// Every document of a YAML file (aliases resolved).
fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
        .iter()
        .map(to_json)
        .collect()
}

fn str_of(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| str_of(v).to_owned())
        .collect()
}

fn object(value: &Value) -> &Map<String, Value> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not a mapping: {value}"))
}

// ---- the binary ----

/// The `CHORUS_*` variables `chorus serve` reads, from its own help text, and `RUST_LOG`.
fn env_names_the_binary_reads() -> BTreeSet<String> {
    let mut names = BTreeSet::from(["RUST_LOG".to_owned()]);
    for args in [&["--help"][..], &["serve", "--help"]] {
        let out = Command::new(CHORUS).args(args).output().unwrap();
        assert!(out.status.success(), "chorus {args:?} failed");
        let help = String::from_utf8(out.stdout).unwrap();
        for part in help.split("[env: ").skip(1) {
            let end = part.find(['=', ']']).expect("an env annotation ends");
            names.insert(part[..end].to_owned());
        }
    }
    assert!(names.contains("CHORUS_NODE_ID") && names.contains("CHORUS_CONFIG"));
    names
}

/// Runs `program args` (a `chorus … config check --json` command line) with only `env` (and a
/// `PATH` that finds the binary as `chorus`); the summary it prints, or a panic with its errors.
fn config_check(
    what: &str,
    program: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
) -> Value {
    let bin_dir = Path::new(CHORUS).parent().unwrap();
    let out = Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
        .envs(env)
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{what}: `config check` refused the configuration:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{what}: summary: {e}"))
}

/// Replaces `serve` (and anything after it that is not a flag of serve) by `config check --json`,
/// and container paths of configuration files by the repository's files.
fn check_args(command: &[String], files: &BTreeMap<String, PathBuf>) -> Vec<String> {
    command
        .iter()
        .flat_map(|arg| {
            if arg == "serve" {
                vec!["config".to_owned(), "check".to_owned(), "--json".to_owned()]
            } else {
                vec![
                    files
                        .get(arg)
                        .map_or_else(|| arg.clone(), |p| p.display().to_string()),
                ]
            }
        })
        .collect()
}

fn addr(summary: &Value, key: &str) -> SocketAddr {
    str_of(&summary[key])
        .parse()
        .unwrap_or_else(|e| panic!("{key}: {e}"))
}

fn seeds(summary: &Value) -> BTreeMap<u64, SocketAddr> {
    object(&summary["seeds"])
        .iter()
        .map(|(id, a)| (id.parse().unwrap(), str_of(a).parse().unwrap()))
        .collect()
}

/// `scheme://[user[:***]@]host[:port]/…` → host.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host.split(':').next().unwrap()
}

/// Checks every certificate path of a summary: under `dir`, and among the `issued` file names.
fn assert_certificates(what: &str, summary: &Value, dir: &str, issued: &BTreeSet<String>) {
    for key in ["tls_ca", "tls_cert", "tls_key"] {
        let path = Path::new(str_of(&summary[key]));
        assert_eq!(
            path.parent().unwrap(),
            Path::new(dir),
            "{what}: {key} outside {dir}"
        );
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            issued.contains(name),
            "{what}: {key} {name} is not issued ({issued:?})"
        );
    }
}

/// Every store URL names a host among `hosts`.
fn assert_store_hosts(what: &str, summary: &Value, hosts: &BTreeSet<String>) {
    for (name, url) in object(&summary["stores"]) {
        let host = url_host(str_of(url));
        assert!(
            hosts.contains(host),
            "{what}: {name} names host {host:?}, not among {hosts:?}"
        );
    }
}

// ---- compose ----

/// `${NAME:-default}` → default: what compose substitutes when the variable is unset.
fn interpolate(value: &str) -> String {
    if let Some(inner) = value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
        let (_, default) = inner
            .split_once(":-")
            .unwrap_or_else(|| panic!("{value}: only ${{NAME:-default}} is understood here"));
        default.to_owned()
    } else {
        assert!(!value.contains('$'), "{value}: unexpected interpolation");
        value.to_owned()
    }
}

fn in_subnet(ip: Ipv4Addr, subnet: &str) -> bool {
    let (net, bits) = subnet.split_once('/').unwrap();
    let (net, bits): (Ipv4Addr, u32) = (net.parse().unwrap(), bits.parse().unwrap());
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

#[test]
fn compose_cluster_starts_processes_that_pass_config_check_and_agree_with_it() {
    let env_names = env_names_the_binary_reads();
    let compose = yaml_docs(&deploy_dir().join("compose-cluster.yaml")).remove(0);
    let services = object(&compose["services"]);
    let service_names: BTreeSet<String> = services.keys().cloned().collect();
    let volumes: BTreeSet<&String> = object(&compose["volumes"]).keys().collect();
    let subnet = str_of(&compose["networks"]["default"]["ipam"]["config"][0]["subnet"]);

    // The one-shot certificate service: its directory and what it issues.
    let certs = strings(&services["certs"]["command"]);
    let dir_at = certs.iter().position(|a| a == "--dir").unwrap();
    assert_eq!(certs[..dir_at], ["chorus", "cluster", "certs"]);
    let certs_dir = certs[dir_at + 1].clone();
    let mut issued = BTreeSet::from(["ca.pem".to_owned()]);
    for name in &certs[dir_at + 2..] {
        issued.extend([format!("{name}.pem"), format!("{name}.key")]);
    }

    let mut node_ids = BTreeSet::new();
    let mut shapes = BTreeSet::new();
    let mut seed_ids = None;
    let mut ops_ports = BTreeMap::new();
    for (name, service) in services {
        // References: dependencies, named volumes, bind-mounted files.
        if let Some(deps) = service.get("depends_on") {
            // Either a list of names or a mapping of names to conditions.
            let deps = match deps {
                Value::Array(_) => strings(deps),
                _ => object(deps).keys().cloned().collect(),
            };
            for dep in &deps {
                assert!(
                    service_names.contains(dep),
                    "{name} depends on unknown {dep}"
                );
            }
        }
        let mut files = BTreeMap::new();
        let mut mounts = BTreeMap::new();
        for volume in service.get("volumes").map(strings).unwrap_or_default() {
            let parts: Vec<&str> = volume.split(':').collect();
            let (source, target) = (parts[0], parts[1]);
            if source.starts_with("./") {
                let host = deploy_dir().join(source);
                assert!(
                    host.exists(),
                    "{name} mounts {source}, which does not exist"
                );
                files.insert(target.to_owned(), host);
            } else {
                assert!(
                    volumes.contains(&source.to_owned()),
                    "{name}: volume {source} undeclared"
                );
            }
            mounts.insert(source.to_owned(), target.to_owned());
        }
        let command = service.get("command").map(strings).unwrap_or_default();
        if command.first().map(String::as_str) != Some("chorus")
            || !command.contains(&"serve".into())
        {
            continue;
        }

        // The process as its container runs it.
        let env: BTreeMap<String, String> = service
            .get("environment")
            .map(object)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), interpolate(str_of(v))))
            .collect();
        for key in env.keys() {
            assert!(
                env_names.contains(key),
                "{name}: the binary does not read {key}"
            );
        }
        let args = check_args(&command[1..], &files);
        let summary = config_check(name, CHORUS, &args, &env);
        let what = name.as_str();
        assert!(
            !strings(&summary["roles"]).is_empty(),
            "{what}: not a cluster process"
        );

        // Health check and ports on the ops listener and the client listeners.
        let ops = addr(&summary, "ops_addr");
        assert!(
            ops.ip().is_unspecified(),
            "{what}: ops listener not reachable from outside"
        );
        let health = strings(&service["healthcheck"]["test"]).join(" ");
        assert!(
            health.contains(&format!("http://127.0.0.1:{}/readyz", ops.port())),
            "{what}: health check {health:?} does not ask /readyz on the ops port {}",
            ops.port()
        );
        let published: BTreeSet<u16> = strings(&service["ports"])
            .iter()
            .map(|p| p.rsplit(':').next().unwrap().parse().unwrap())
            .collect();
        ops_ports.insert(name.clone(), ops.port());
        let mut listeners = vec![ops.port()];
        for key in ["api_addr", "ws_addr"] {
            if !summary[key].is_null() {
                listeners.push(addr(&summary, key).port());
            }
        }
        for port in listeners {
            assert!(
                published.contains(&port),
                "{what}: port {port} not published"
            );
        }

        // Certificates from the shared volume, stores among the services.
        assert_eq!(
            mounts["cluster-certs"], certs_dir,
            "{what}: certificates volume"
        );
        assert_certificates(what, &summary, &certs_dir, &issued);
        assert_store_hosts(what, &summary, &service_names);

        // A channel node is reached at its seed address: its fixed address on the network.
        if let Some(id) = summary["node_id"].as_u64() {
            let ip: Ipv4Addr = str_of(&service["networks"]["default"]["ipv4_address"])
                .parse()
                .unwrap();
            assert!(in_subnet(ip, subnet), "{what}: {ip} outside {subnet}");
            let seed = seeds(&summary)[&id];
            assert_eq!(
                seed.ip(),
                ip,
                "{what}: seed {id} is not this node's address"
            );
            assert_eq!(
                seed.port(),
                addr(&summary, "listen").port(),
                "{what}: transport port"
            );
            assert!(node_ids.insert(id), "{what}: node id {id} used twice");
        }
        shapes.insert((
            summary["seeds"].to_string(),
            summary["shard_count"].clone().to_string(),
            summary["replication"].to_string(),
        ));
        seed_ids = Some(seeds(&summary));
    }
    assert_eq!(
        shapes.len(),
        1,
        "every process must name the same seeds and shards: {shapes:?}"
    );
    let seed_ids: BTreeSet<u64> = seed_ids.expect("a Chorus process").into_keys().collect();
    assert_eq!(
        node_ids, seed_ids,
        "every seed is a channel node of the file, and back"
    );
    assert_eq!(
        ops_ports.len(),
        5,
        "3 channel nodes and 2 gateways: {ops_ports:?}"
    );

    // Prometheus (profile `monitoring`) scrapes exactly those ops listeners.
    let prometheus = yaml_docs(&deploy_dir().join("prometheus/prometheus-cluster.yml")).remove(0);
    let mut scraped = BTreeMap::new();
    for group in prometheus["scrape_configs"][0]["static_configs"]
        .as_array()
        .unwrap()
    {
        for target in strings(&group["targets"]) {
            let (host, port) = target.split_once(':').unwrap();
            scraped.insert(host.to_owned(), port.parse::<u16>().unwrap());
        }
    }
    assert_eq!(scraped, ops_ports, "prometheus-cluster.yml targets");
}

// ---- Kubernetes ----

/// The set `kubectl apply -k deploy/k8s` would apply: the resources, and the ConfigMaps and
/// Secrets the generators make (name → key → the file it comes from, when it is in the
/// repository).
struct K8s {
    objects: Vec<Value>,
    config_maps: BTreeMap<String, BTreeMap<String, Option<PathBuf>>>,
    secrets: BTreeMap<String, BTreeMap<String, Option<String>>>,
}

impl K8s {
    fn load() -> Self {
        let root = deploy_dir().join("k8s");
        let kustomization = yaml_docs(&root.join("kustomization.yaml")).remove(0);
        let mut objects = Vec::new();
        for file in strings(&kustomization["resources"]) {
            objects.extend(
                yaml_docs(&root.join(&file))
                    .into_iter()
                    .filter(|d| !d.is_null()),
            );
        }
        let mut config_maps = BTreeMap::new();
        for generator in kustomization["configMapGenerator"].as_array().unwrap() {
            let keys = strings(&generator["files"])
                .into_iter()
                .map(|file| {
                    let path = root.join(&file);
                    assert!(path.exists(), "configMapGenerator: {file} missing");
                    (file.rsplit('/').next().unwrap().to_owned(), Some(path))
                })
                .collect();
            config_maps.insert(str_of(&generator["name"]).to_owned(), keys);
        }
        let mut secrets = BTreeMap::new();
        for generator in kustomization["secretGenerator"].as_array().unwrap() {
            let mut keys = BTreeMap::new();
            // The operator's secrets.env is not in the repository; its example names its keys.
            for env_file in generator.get("envs").map(strings).unwrap_or_default() {
                let example = root.join(format!("{env_file}.example"));
                let text = std::fs::read_to_string(&example)
                    .unwrap_or_else(|e| panic!("{}: {e}", example.display()));
                for line in text
                    .lines()
                    .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                {
                    let (key, value) = line.split_once('=').unwrap();
                    keys.insert(key.to_owned(), Some(value.to_owned()));
                }
            }
            // Certificates the operator makes with `chorus cluster certs`: names only.
            for file in generator.get("files").map(strings).unwrap_or_default() {
                keys.insert(file.rsplit('/').next().unwrap().to_owned(), None);
            }
            secrets.insert(str_of(&generator["name"]).to_owned(), keys);
        }
        K8s {
            objects,
            config_maps,
            secrets,
        }
    }

    fn of_kind(&self, kind: &str) -> impl Iterator<Item = &Value> {
        self.objects.iter().filter(move |o| o["kind"] == kind)
    }

    fn named(&self, kind: &str, name: &str) -> &Value {
        self.of_kind(kind)
            .find(|o| o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    fn workloads(&self) -> impl Iterator<Item = &Value> {
        self.objects
            .iter()
            .filter(|o| o["kind"] == "Deployment" || o["kind"] == "StatefulSet")
    }

    fn service_names(&self) -> BTreeSet<String> {
        self.of_kind("Service")
            .map(|s| str_of(&s["metadata"]["name"]).to_owned())
            .collect()
    }
}

fn name_of(object: &Value) -> &str {
    str_of(&object["metadata"]["name"])
}

fn labels_match(selector: &Value, labels: &Map<String, Value>) -> bool {
    object(selector)
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
}

/// The pod names a workload makes that a selector can name (StatefulSet pods only).
fn selects(selector: &Value, workload: &Value) -> bool {
    let mut labels = object(&workload["spec"]["template"]["metadata"]["labels"]).clone();
    let pod_name_key = "statefulset.kubernetes.io/pod-name";
    if let Some(pod) = selector.get(pod_name_key) {
        if workload["kind"] != "StatefulSet" {
            return false;
        }
        let replicas = workload["spec"]["replicas"].as_u64().unwrap();
        let ordinal: Option<u64> = str_of(pod)
            .strip_prefix(&format!("{}-", name_of(workload)))
            .and_then(|o| o.parse().ok());
        if ordinal.is_none_or(|o| o >= replicas) {
            return false;
        }
        labels.insert(pod_name_key.into(), pod.clone());
    }
    labels_match(selector, &labels)
}

fn container_port<'a>(container: &'a Value, port: &Value) -> &'a Value {
    container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| &p["name"] == port || &p["containerPort"] == port)
        .unwrap_or_else(|| panic!("container {} has no port {port}", container["name"]))
}

/// The environment of a container as the pod gets it: values, and Secret values from the example.
fn pod_env(k8s: &K8s, what: &str, container: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for var in container["env"].as_array().into_iter().flatten() {
        let name = str_of(&var["name"]).to_owned();
        let value = if let Some(value) = var.get("value") {
            str_of(value).to_owned()
        } else if let Some(secret) = var.pointer("/valueFrom/secretKeyRef") {
            let keys = k8s
                .secrets
                .get(str_of(&secret["name"]))
                .unwrap_or_else(|| panic!("{what}: {name} from unknown Secret {}", secret["name"]));
            keys.get(str_of(&secret["key"]))
                .unwrap_or_else(|| {
                    panic!(
                        "{what}: {name}: no key {} in {}",
                        secret["key"], secret["name"]
                    )
                })
                .clone()
                .unwrap_or_default()
        } else {
            panic!("{what}: {name} has neither value nor secretKeyRef")
        };
        env.insert(name, value);
    }
    env
}

#[test]
fn kubernetes_manifests_reference_what_exists_and_start_processes_that_pass_config_check() {
    let env_names = env_names_the_binary_reads();
    let k8s = K8s::load();
    let services = k8s.service_names();

    // Services select pods of a workload, on ports those pods declare.
    for service in k8s.of_kind("Service") {
        let name = name_of(service);
        let selector = &service["spec"]["selector"];
        let workload = k8s
            .workloads()
            .find(|w| selects(selector, w))
            .unwrap_or_else(|| panic!("Service {name} selects no pod"));
        let container = &workload["spec"]["template"]["spec"]["containers"][0];
        for port in service["spec"]["ports"].as_array().unwrap() {
            let target = container_port(container, &port["targetPort"]);
            let protocol = |v: &Value| v.as_str().unwrap_or("TCP").to_owned();
            assert_eq!(
                protocol(&port["protocol"]),
                protocol(&target["protocol"]),
                "{name}"
            );
        }
    }
    // Disruption budgets cover a workload; the channel nodes keep a majority.
    for pdb in k8s.of_kind("PodDisruptionBudget") {
        let selector = &pdb["spec"]["selector"]["matchLabels"];
        assert!(
            k8s.workloads().any(|w| selects(selector, w)),
            "{} selects nothing",
            name_of(pdb)
        );
    }
    assert_eq!(
        k8s.named("PodDisruptionBudget", "chorus-node")["spec"]["maxUnavailable"],
        1
    );
    // The Ingress reaches the gateways' Service on ports it has.
    for ingress in k8s.of_kind("Ingress") {
        for rule in ingress["spec"]["rules"].as_array().unwrap() {
            for path in rule["http"]["paths"].as_array().unwrap() {
                let backend = &path["backend"]["service"];
                let service = k8s.named("Service", str_of(&backend["name"]));
                let port = &backend["port"]["name"];
                assert!(
                    service["spec"]["ports"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| &p["name"] == port),
                    "Ingress backend port {port} not in the Service"
                );
            }
        }
    }
    let gateway_service = k8s.named("Service", "chorus-gateway");
    assert_eq!(gateway_service["spec"]["sessionAffinity"], "ClientIP");

    let mut seed_sets = BTreeSet::new();
    let mut summaries = Vec::new();
    for workload in k8s.workloads() {
        let name = name_of(workload);
        let spec = &workload["spec"];
        let pod = &spec["template"]["spec"];
        assert!(
            labels_match(
                &spec["selector"]["matchLabels"],
                object(&spec["template"]["metadata"]["labels"])
            ),
            "{name}: selector does not match its pods"
        );
        if workload["kind"] == "StatefulSet" {
            let peers = k8s.named("Service", str_of(&spec["serviceName"]));
            assert_eq!(
                peers["spec"]["clusterIP"], "None",
                "{name}: serviceName must be headless"
            );
        }
        // Volumes: ConfigMaps and Secrets that exist, mounts of volumes that exist.
        let mut volumes = BTreeMap::new();
        for volume in pod["volumes"].as_array().into_iter().flatten() {
            volumes.insert(str_of(&volume["name"]).to_owned(), volume.clone());
            if let Some(cm) = volume.get("configMap") {
                assert!(
                    k8s.config_maps.contains_key(str_of(&cm["name"])),
                    "{name}: ConfigMap {}",
                    cm["name"]
                );
            }
            if let Some(secret) = volume.get("secret") {
                let secret = str_of(&secret["secretName"]);
                assert!(k8s.secrets.contains_key(secret), "{name}: Secret {secret}");
            }
        }
        for claim in spec["volumeClaimTemplates"]
            .as_array()
            .into_iter()
            .flatten()
        {
            volumes.insert(name_of(claim).to_owned(), json!({"claim": true}));
        }
        for container in pod["containers"].as_array().unwrap() {
            let what = format!("{name}/{}", str_of(&container["name"]));
            let env = pod_env(&k8s, &what, container);
            let mut files = BTreeMap::new();
            let mut secret_dirs = BTreeMap::new();
            for mount in container["volumeMounts"].as_array().into_iter().flatten() {
                let volume = volumes
                    .get(str_of(&mount["name"]))
                    .unwrap_or_else(|| panic!("{what}: mounts unknown volume {}", mount["name"]));
                let target = str_of(&mount["mountPath"]).to_owned();
                if let Some(cm) = volume.get("configMap") {
                    let keys = &k8s.config_maps[str_of(&cm["name"])];
                    let key = str_of(&mount["subPath"]);
                    let file = keys
                        .get(key)
                        .unwrap_or_else(|| panic!("{what}: no key {key} in {}", cm["name"]));
                    files.insert(target.clone(), file.clone().unwrap());
                }
                if let Some(secret) = volume.get("secret") {
                    secret_dirs.insert(target, str_of(&secret["secretName"]).to_owned());
                }
            }
            if container["image"] != "chorus" {
                continue;
            }
            for key in env.keys() {
                assert!(
                    env_names.contains(key),
                    "{what}: the binary does not read {key}"
                );
            }
            // Probes on the ops listener: /livez restarts, /readyz routes.
            let ops = container_port(container, &json!("ops"))["containerPort"]
                .as_u64()
                .unwrap();
            for (probe, path) in [
                ("startupProbe", "/livez"),
                ("livenessProbe", "/livez"),
                ("readinessProbe", "/readyz"),
            ] {
                let get = &container[probe]["httpGet"];
                assert_eq!(get["path"], path, "{what}: {probe}");
                assert_eq!(
                    container_port(container, &get["port"])["containerPort"],
                    ops,
                    "{what}: {probe} port"
                );
            }
            // The configuration file the container reads is the ConfigMap's, mapped to the repo.
            let mut env = env;
            if let Some(config) = env.get_mut("CHORUS_CONFIG") {
                *config = files[config.as_str()].display().to_string();
            }
            let command = strings(&container["command"]);
            let args = container.get("args").map(strings).unwrap_or_default();
            let runs: Vec<(String, Vec<String>, Option<u64>)> = if command[0] == "/bin/sh" {
                // The StatefulSet's start script, once per pod: `sh -c SCRIPT NAME config check`.
                assert_eq!(args, ["serve"], "{what}: the script's arguments");
                let replicas = spec["replicas"].as_u64().unwrap();
                (0..replicas)
                    .map(|ordinal| {
                        let mut script = command[1..].to_vec();
                        script.extend(check_args(&args, &files));
                        ("sh".to_owned(), script, Some(ordinal))
                    })
                    .collect()
            } else {
                let mut all = command.clone();
                all.extend(args);
                assert_eq!(all[0], "chorus", "{what}: runs chorus");
                vec![("chorus".to_owned(), check_args(&all[1..], &files), None)]
            };
            for (program, args, ordinal) in runs {
                let mut env = env.clone();
                if let Some(ordinal) = ordinal {
                    env.insert("HOSTNAME".into(), format!("{name}-{ordinal}"));
                }
                let program = if program == "chorus" {
                    CHORUS.to_owned()
                } else {
                    program
                };
                let summary = config_check(&what, &program, &args, &env);
                assert_eq!(
                    addr(&summary, "ops_addr").port() as u64,
                    ops,
                    "{what}: ops port"
                );
                for (key, port) in [("api_addr", "rest"), ("ws_addr", "ws")] {
                    if !summary[key].is_null() {
                        let declared =
                            container_port(container, &json!(port))["containerPort"].clone();
                        assert_eq!(json!(addr(&summary, key).port()), declared, "{what}: {key}");
                    }
                }
                let tls_dir = Path::new(str_of(&summary["tls_ca"])).parent().unwrap();
                let secret = &secret_dirs[tls_dir.to_str().unwrap()];
                let issued = k8s.secrets[secret].keys().cloned().collect();
                assert_certificates(&what, &summary, tls_dir.to_str().unwrap(), &issued);
                assert_store_hosts(&what, &summary, &services);
                if let Some(ordinal) = ordinal {
                    // chorus-node-N is node N+1, reached at its own Service's fixed cluster IP,
                    // which selects exactly that pod and forwards to the transport port.
                    let id = summary["node_id"].as_u64().unwrap();
                    assert_eq!(id, ordinal + 1, "{what}: node id of pod {ordinal}");
                    let seed = seeds(&summary)[&id];
                    let own = k8s
                        .of_kind("Service")
                        .find(|s| s["spec"]["clusterIP"] == seed.ip().to_string())
                        .unwrap_or_else(|| {
                            panic!("{what}: no Service has the seed address {seed}")
                        });
                    assert_eq!(
                        own["spec"]["publishNotReadyAddresses"],
                        true,
                        "{}",
                        name_of(own)
                    );
                    assert_eq!(
                        own["spec"]["selector"]["statefulset.kubernetes.io/pod-name"],
                        format!("{name}-{ordinal}"),
                        "{}: selects another pod than node {id}",
                        name_of(own)
                    );
                    let port = &own["spec"]["ports"][0];
                    assert_eq!(port["port"], seed.port(), "{}: port", name_of(own));
                    let target = container_port(container, &port["targetPort"]);
                    assert_eq!(target["containerPort"], addr(&summary, "listen").port());
                    assert_eq!(target["protocol"], "UDP", "QUIC is UDP");
                }
                seed_sets.insert(summary["seeds"].to_string());
                summaries.push(summary);
            }
        }
    }
    assert_eq!(
        seed_sets.len(),
        1,
        "every process names the same seeds: {seed_sets:?}"
    );
    let nodes: BTreeSet<u64> = summaries
        .iter()
        .filter_map(|s| s["node_id"].as_u64())
        .collect();
    assert_eq!(
        nodes,
        seeds(&summaries[0]).into_keys().collect(),
        "every seed is a pod, and back"
    );
    assert!(
        summaries.iter().any(|s| !s["ws_addr"].is_null()),
        "a gateway runs"
    );
}

#[test]
fn config_check_refuses_a_cluster_process_without_its_shared_secret() {
    // The gateway's file alone (its secrets come from the environment): refused, saying why.
    let file = deploy_dir().join("cluster/gateway.toml");
    let out = Command::new(CHORUS)
        .args(["config", "check"])
        .arg(&file)
        .env_clear()
        .output()
        .unwrap();
    assert!(!out.status.success());
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(why.contains("jwt_secret must be set"), "{why}");
    assert!(why.contains("messages_url must be"), "{why}");
}
