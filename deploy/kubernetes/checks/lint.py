"""The rules of this packaging that no generic scanner knows, checked on each rendered overlay.

    python lint.py RENDERED.yaml...

Each file is one `kubectl kustomize` output, i.e. one installation. What is checked: every
namespaced object is in the one namespace; the pod's hardening; probes and resources; secrets
mounted as group-readable files (0440) with an fsGroup; sled as one replica with Recreate on a
ReadWriteOnce claim and no PodDisruptionBudget, PostgreSQL as several replicas with one, a
password file and no password in the URL; the admin port on ClusterIP Services only and
behind a NetworkPolicy; Ingress, HTTPRoute and admin hosts that agree with the settings; the
tenant files (TOML) that the ConfigMap carries, and that every file they name is mounted;
Azure Workload Identity wired as the tenants' federated credentials expect.
"""

import os
import re
import sys
import tomllib
from urllib.parse import urlsplit

import yaml

CLUSTER_SCOPED = {"Namespace"}
RUN_AS_USER = 10001  # the image's user (Dockerfile)
SECRET_MODE = 0o440
WI_TOKEN = "/var/run/secrets/azure/tokens/azure-identity-token"
TRUE = {"true", "1", "yes", "on"}
TENANT_ID = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Fields of a tenant file that name files the shim reads.
FILE_FIELDS = {"secret_file", "certificate_file", "key_file", "assertion_file", "ca_file",
               "jwks_file", "cimd_extra_ca_file"}


class Lint:
    def __init__(self, path, docs):
        self.path = path
        self.docs = docs
        self.problems = []

    def error(self, what):
        self.problems.append(what)

    def find(self, kind, name=None):
        return [d for d in self.docs if d["kind"] == kind
                and (name is None or d["metadata"]["name"] == name)]

    def one(self, kind, name):
        found = self.find(kind, name)
        if len(found) != 1:
            self.error(f"expected one {kind} {name}, found {len(found)}")
            return None
        return found[0]



def admits_any_pod(rule):
    """Whether a NetworkPolicy ingress rule lets every pod of the cluster in: no `from`, an
    empty namespaceSelector (every namespace), or an ipBlock of everything."""
    peers = rule.get("from")
    if not peers:
        return True
    for peer in peers:
        selector = peer.get("namespaceSelector")
        if selector is not None and not selector.get("matchLabels") and not selector.get("matchExpressions"):
            return True
        if peer.get("ipBlock", {}).get("cidr") in ("0.0.0.0/0", "::/0"):
            return True
    return False

def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def file_paths(node, at=""):
    """(field path, file path) for every file-naming field anywhere in a tenant file."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{at}.{key}" if at else key
            if key in FILE_FIELDS and isinstance(value, str):
                yield here, value
            else:
                yield from file_paths(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from file_paths(value, f"{at}[{i}]")


def check(lint):
    docs = lint.docs
    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] not in CLUSTER_SCOPED}
    if None in namespaces:
        names = [f"{d['kind']}/{d['metadata']['name']}" for d in docs
                 if d["kind"] not in CLUSTER_SCOPED and not d["metadata"].get("namespace")]
        lint.error(f"objects without a namespace (set `namespace:` in the overlay): {names}")
    if len(namespaces - {None}) > 1:
        lint.error(f"objects in several namespaces: {sorted(namespaces - {None})}")
    namespace = next(iter(namespaces - {None}), None)

    deployment = lint.one("Deployment", "dcr-shim")
    if deployment is None:
        return
    pod_meta = deployment["spec"]["template"]["metadata"]
    pod = deployment["spec"]["template"]["spec"]
    pod_labels = pod_meta.get("labels", {})
    containers = pod["containers"]
    if len(containers) != 1:
        lint.error(f"the pod has {len(containers)} containers, expected the shim alone")
    shim = containers[0]

    # Hardening.
    psc = pod.get("securityContext", {})
    csc = shim.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True or psc.get("runAsUser") != RUN_AS_USER:
        lint.error(f"pod securityContext: runAsNonRoot true and runAsUser {RUN_AS_USER} expected")
    if not psc.get("fsGroup"):
        lint.error("pod securityContext.fsGroup is not set: the 0440 secret files need it")
    seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
    if seccomp != "RuntimeDefault":
        lint.error(f"seccompProfile {seccomp!r}, expected RuntimeDefault")
    if csc.get("readOnlyRootFilesystem") is not True:
        lint.error("container securityContext.readOnlyRootFilesystem is not true")
    if csc.get("allowPrivilegeEscalation") is not False:
        lint.error("container securityContext.allowPrivilegeEscalation is not false")
    if csc.get("capabilities", {}).get("drop") != ["ALL"] or csc.get("capabilities", {}).get("add"):
        lint.error("container capabilities: drop [ALL] and add none expected")
    if pod.get("automountServiceAccountToken") is not False:
        lint.error("pod automountServiceAccountToken is not false")
    account = lint.one("ServiceAccount", pod.get("serviceAccountName", "default"))
    if account is not None and account.get("automountServiceAccountToken") is not False:
        lint.error("ServiceAccount automountServiceAccountToken is not false")

    # Probes and resources.
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                        ("startupProbe", "/healthz")):
        got = shim.get(probe, {}).get("httpGet", {})
        if got.get("path") != path or got.get("port") != "http":
            lint.error(f"{probe}: httpGet {path} on port http expected, found {got}")
    resources = shim.get("resources", {})
    for part in ("requests", "limits"):
        for res in ("cpu", "memory"):
            if res not in resources.get(part, {}):
                lint.error(f"resources.{part}.{res} is not set")

    # Environment: the fixed env, then the settings ConfigMap (envFrom).
    env = {e["name"]: e.get("value") for e in shim.get("env", [])}
    settings = {}
    for source in shim.get("envFrom", []):
        name = source.get("configMapRef", {}).get("name")
        found = lint.find("ConfigMap", name)
        if not found:
            lint.error(f"envFrom names ConfigMap {name}, which the overlay does not render")
            continue
        settings.update(found[0].get("data", {}))
    for key in set(env) & set(settings):
        lint.error(f"{key} is both in the container's env and in the settings ConfigMap")
    setting = {**settings, **env}

    # Volumes and mounts.
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = shim.get("volumeMounts", [])
    for m in mounts:
        if m["name"] not in volumes:
            lint.error(f"mount {m['mountPath']} names volume {m['name']}, which does not exist")
        if "subPath" in m:
            lint.error(f"mount {m['mountPath']} uses subPath: updates of the Secret or "
                       "ConfigMap would never reach the file")

    def volume_at(path):
        """The volume (and its mount) whose mount path holds `path`."""
        best = None
        for m in mounts:
            root = m["mountPath"].rstrip("/") + "/"
            if (path + "/").startswith(root) and (best is None or len(root) > len(best[1]["mountPath"])):
                best = (volumes.get(m["name"], {}), m)
        return best

    for name, volume in volumes.items():
        if "secret" in volume and volume["secret"].get("defaultMode") != SECRET_MODE:
            lint.error(f"secret volume {name}: defaultMode {oct(volume['secret'].get('defaultMode', 0o644))}, expected 0440")
        if "secret" in volume and not any(m["name"] == name for m in mounts):
            lint.error(f"secret volume {name} is mounted nowhere")

    for key in ("DCR_SHIM_SECRET_FILE", "DCR_SHIM_ADMIN_TOKEN_FILE", "DCR_SHIM_STORE_PASSWORD_FILE"):
        path = setting.get(key)
        if path is None:
            continue
        holder = volume_at(path)
        if holder is None or "secret" not in holder[0]:
            lint.error(f"{key}={path} is not inside a mounted Secret")
    for key in ("DCR_SHIM_SECRET_FILE", "DCR_SHIM_ADMIN_LISTEN", "DCR_SHIM_ADMIN_TOKEN_FILE"):
        if not setting.get(key):
            lint.error(f"{key} is not set")
    if str(setting.get("DCR_SHIM_WATCH_TENANTS", "")).lower() not in TRUE:
        lint.error("DCR_SHIM_WATCH_TENANTS is not on: ConfigMap updates would wait for a restart")

    # The tenant files.
    tenants_dir = setting.get("DCR_SHIM_TENANTS", "")
    holder = volume_at(tenants_dir)
    if holder is None or "configMap" not in holder[0] or holder[1]["mountPath"].rstrip("/") != tenants_dir.rstrip("/"):
        lint.error(f"DCR_SHIM_TENANTS={tenants_dir} is not a ConfigMap mounted as that directory")
        tenant_files = {}
    else:
        cm = lint.find("ConfigMap", holder[0]["configMap"]["name"])
        if not cm:
            lint.error(f"the tenants ConfigMap {holder[0]['configMap']['name']} is not rendered")
            tenant_files = {}
        else:
            tenant_files = {k: v for k, v in cm[0].get("data", {}).items() if k.endswith(".toml")}
    if not tenant_files:
        lint.error("no tenant file (*.toml) in the tenants ConfigMap")
    workload_identity = pod_labels.get("azure.workload.identity/use") == "true"
    for file_name, text in tenant_files.items():
        tenant = file_name[: -len(".toml")]
        if not TENANT_ID.match(tenant):
            lint.error(f"tenant file {file_name}: {tenant!r} is not a valid tenant id")
        try:
            parsed = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            lint.error(f"tenant file {file_name}: not TOML: {e}")
            continue
        for field, path in file_paths(parsed):
            if workload_identity and path == WI_TOKEN:
                continue
            if volume_at(path) is None:
                lint.error(f"tenant file {file_name}: {field} = {path} is on no mounted volume")
        for i, app in enumerate(parsed.get("apps", [])):
            credential = app.get("credential", {})
            kind = credential.get("kind")
            if credential.get("secret_env") and credential["secret_env"] not in env:
                lint.error(f"tenant file {file_name}: apps[{i}] secret_env "
                           f"{credential['secret_env']} is not in the container's env")
            if kind == "federated" and credential.get("assertion_file") == WI_TOKEN and not workload_identity:
                lint.error(f"tenant file {file_name}: apps[{i}] reads the Workload Identity token, "
                           "but the pod lacks the label azure.workload.identity/use")
            if kind == "managed_identity" and workload_identity:
                lint.error(f"tenant file {file_name}: apps[{i}] is a managed_identity: on AKS it would "
                           "ask the node's IMDS, not Workload Identity; use kind = \"federated\" "
                           f"with assertion_file = \"{WI_TOKEN}\"")
    if workload_identity and account is not None:
        if not account["metadata"].get("annotations", {}).get("azure.workload.identity/client-id"):
            lint.error("Workload Identity: the ServiceAccount lacks azure.workload.identity/client-id")

    # The store: sled (one replica) or PostgreSQL (several).
    store = setting.get("DCR_SHIM_STORE", "")
    replicas = deployment["spec"].get("replicas", 1)
    budgets = [p for p in lint.find("PodDisruptionBudget")
               if selects(p["spec"].get("selector", {}).get("matchLabels"), pod_labels)]
    if store.startswith(("postgres://", "postgresql://")):
        url = urlsplit(store)
        if url.password is not None:
            lint.error("DCR_SHIM_STORE holds a password: use DCR_SHIM_STORE_PASSWORD_FILE")
        if not setting.get("DCR_SHIM_STORE_PASSWORD_FILE"):
            lint.error("PostgreSQL store without DCR_SHIM_STORE_PASSWORD_FILE")
        if replicas < 2:
            lint.error(f"PostgreSQL store with {replicas} replica(s): several expected")
        if len(budgets) != 1:
            lint.error(f"PostgreSQL store: one PodDisruptionBudget expected, found {len(budgets)}")
    else:
        if replicas != 1:
            lint.error(f"sled store with {replicas} replicas: sled is opened by one process")
        if deployment["spec"].get("strategy", {}).get("type") != "Recreate":
            lint.error("sled store: strategy Recreate expected (the old pod holds the store)")
        if budgets:
            lint.error("sled store: a PodDisruptionBudget on one replica only blocks node drains")
        data = volume_at(setting.get("DCR_SHIM_DATA_DIR", "/data"))
        claim = (data or ({}, None))[0].get("persistentVolumeClaim", {}).get("claimName")
        pvc = lint.find("PersistentVolumeClaim", claim) if claim else []
        if not pvc:
            lint.error("sled store: the data directory is not on a rendered PersistentVolumeClaim")
        elif pvc[0]["spec"].get("accessModes") != ["ReadWriteOnce"]:
            lint.error("sled store: the claim should be ReadWriteOnce")

    # Services and the admin port.
    ports = {p["name"]: p["containerPort"] for p in shim.get("ports", [])}
    if set(ports) != {"http", "admin"}:
        lint.error(f"container ports {sorted(ports)}, expected http and admin")
    listen = setting.get("DCR_SHIM_LISTEN", "")
    admin_listen = setting.get("DCR_SHIM_ADMIN_LISTEN", "")
    if not listen.endswith(f":{ports.get('http')}") or not admin_listen.endswith(f":{ports.get('admin')}"):
        lint.error(f"listen addresses {listen}, {admin_listen} do not match the container ports {ports}")
    for svc in lint.find("Service"):
        if not selects(svc["spec"].get("selector"), pod_labels):
            continue
        for port in svc["spec"]["ports"]:
            if port.get("targetPort") in ("admin", ports.get("admin")) and svc["spec"].get("type", "ClusterIP") != "ClusterIP":
                lint.error(f"Service {svc['metadata']['name']} exposes the admin port as {svc['spec']['type']}")
    public = lint.one("Service", "dcr-shim")
    admin = lint.one("Service", "dcr-shim-admin")
    policies = [p for p in lint.find("NetworkPolicy")
                if selects(p["spec"]["podSelector"].get("matchLabels"), pod_labels)]
    if not policies:
        lint.error("no NetworkPolicy selects the pods")
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            rule_ports = [p.get("port") for p in rule.get("ports", [])]
            if (not rule_ports or "admin" in rule_ports or ports.get("admin") in rule_ports) and not rule.get("from"):
                lint.error(f"NetworkPolicy {policy['metadata']['name']} admits anyone to the admin port")
            # Forwarded headers are trusted from a range of pods: only the proxy in front may
            # reach the public port, or any pod could name any client address.
            if (setting.get("DCR_SHIM_TRUSTED_PROXIES") and admits_any_pod(rule)
                    and (not rule_ports or "http" in rule_ports or ports.get("http") in rule_ports)):
                lint.error(f"NetworkPolicy {policy['metadata']['name']} admits any pod to the public "
                           "port while DCR_SHIM_TRUSTED_PROXIES trusts forwarded headers: admit "
                           "only the ingress controller's or gateway's namespace")

    # Host names.
    public_host = urlsplit(setting.get("DCR_SHIM_PUBLIC_URL", "")).hostname
    admin_hosts = {h.strip().lower() for h in setting.get("DCR_SHIM_ADMIN_HOSTS", "").split(",")}
    if namespace and f"dcr-shim-admin.{namespace}.svc" not in admin_hosts:
        lint.error(f"DCR_SHIM_ADMIN_HOSTS lacks dcr-shim-admin.{namespace}.svc (namespace changed?)")
    for ingress in lint.find("Ingress"):
        for rule in ingress["spec"].get("rules", []):
            backends = {p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
            if backends == {"dcr-shim"} and rule.get("host") != public_host:
                lint.error(f"Ingress {ingress['metadata']['name']}: host {rule.get('host')} is not "
                           f"DCR_SHIM_PUBLIC_URL's {public_host}")
            if backends == {"dcr-shim-admin"} and rule.get("host", "").lower() not in admin_hosts:
                lint.error(f"Ingress {ingress['metadata']['name']}: host {rule.get('host')} is not in "
                           "DCR_SHIM_ADMIN_HOSTS (the admin listener would answer 421)")
            if backends - {"dcr-shim", "dcr-shim-admin"} or len(backends) != 1:
                lint.error(f"Ingress {ingress['metadata']['name']}: unexpected backends {sorted(backends)}")
        if not ingress["spec"].get("tls"):
            lint.error(f"Ingress {ingress['metadata']['name']} has no TLS")
    for route in lint.find("HTTPRoute"):
        if route["spec"].get("hostnames") != [public_host]:
            lint.error(f"HTTPRoute {route['metadata']['name']}: hostnames {route['spec'].get('hostnames')} "
                       f"are not DCR_SHIM_PUBLIC_URL's {public_host}")
    for monitor in lint.find("ServiceMonitor"):
        if admin is None or not selects(monitor["spec"]["selector"].get("matchLabels"), admin["metadata"].get("labels", {})):
            lint.error(f"ServiceMonitor {monitor['metadata']['name']} does not select the admin Service")
        elif selects(monitor["spec"]["selector"].get("matchLabels"), (public or {}).get("metadata", {}).get("labels", {})):
            lint.error(f"ServiceMonitor {monitor['metadata']['name']} selects the public Service too")
        for endpoint in monitor["spec"]["endpoints"]:
            if endpoint.get("port") != "admin" or endpoint.get("path") != "/metrics":
                lint.error(f"ServiceMonitor {monitor['metadata']['name']}: scrape port admin, path /metrics")


def main():
    failed = 0
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        shown = os.path.basename(path)
        lint = Lint(shown, docs)
        check(lint)
        if lint.problems:
            failed += 1
            for problem in lint.problems:
                print(f"ERROR {shown}: {problem}")
        else:
            print(f"  {shown}: packaging rules hold")
    if failed:
        sys.exit(f"{failed} rendered overlay(s) break the packaging rules")


if __name__ == "__main__":
    main()
