"""Plain Kubernetes manifests for a network's Besu nodes, and kustomize overlays per platform.

``kubernetes/base`` holds everything that does not depend on the platform: the namespace, one
headless Service that gives every pod a stable DNS name, the RPC Service, and per node a
StatefulSet with its own PersistentVolumeClaim, ServiceAccount and Role (reading its own key
Secret and nothing else); ConfigMaps (genesis, config.toml per role, static nodes, allowlist),
a PodDisruptionBudget that never lets more than f validators be evicted at once, and
NetworkPolicies (p2p among the network's pods, RPC of the RPC tier only from labelled clients,
every other node's RPC only from the operator's tooling, metrics only from the monitoring
namespace).

``kubernetes/overlays/<platform>`` varies only the storage class, the secret back end (a
Kubernetes Secret, or a secret-store CSI volume backed by the cloud's secret manager) and how
the RPC tier is exposed. Keys never go into these folders: ``smartta network export-keys
--format kubernetes`` writes the Secrets under the git-ignored ``keys/``.

Decisions worth knowing:
- one StatefulSet per node (replicas 1): each pod needs its own key, and a pod cannot pick a
  Secret by its ordinal without reading every key;
- the headless Service publishes pods before they are ready: readiness needs peers, and peers
  need the DNS names (a chicken-and-egg that otherwise leaves a fresh network unready);
- probes send ``Host: localhost`` because Besu checks the Host header against its allowlist;
- a pod-template annotation carries the hash of the configuration, so applying a changed
  config rolls the pods.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import yaml

from chain.qbft.quorum import max_faulty
from node.network import besu
from node.network.besu import KUBERNETES, primary_role
from node.network.spec import NetworkSpec, NodeSpec

Manifest = dict[str, Any]

PLATFORMS = ("local", "bare", "aws", "azure", "gcp")
MONITORING_NAMESPACE = "monitoring"
OPERATOR_LABEL = "smartta.io/operator"
RPC_CLIENT_LABEL = "smartta.io/rpc-client"
BESU_UID = 1000
CONFIG_VOLUME, KEY_VOLUME, DATA_VOLUME = "config", "nodekey", "data"
KEY_VOLUME_INDEX = 1
"""Position of the key volume in the pod spec; the cloud overlays replace it by index."""


def labels(spec: NetworkSpec, component: str | None = None, node: str | None = None) -> dict[str, str]:
    out = {"app.kubernetes.io/part-of": spec.name, "app.kubernetes.io/name": "besu",
           "app.kubernetes.io/managed-by": "smartta"}
    if component:
        out["app.kubernetes.io/component"] = component
    if node:
        out["app.kubernetes.io/instance"] = node
    return out


def selector(spec: NetworkSpec, component: str | None = None, node: str | None = None) -> dict[str, str]:
    out = {"app.kubernetes.io/part-of": spec.name}
    if component:
        out["app.kubernetes.io/component"] = component
    if node:
        out["app.kubernetes.io/instance"] = node
    return out


def meta(spec: NetworkSpec, name: str, component: str | None = None,
         node: str | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": spec.namespace, "labels": labels(spec, component, node)}


def key_secret(spec: NetworkSpec, node: NodeSpec) -> str:
    return f"{spec.name}-{node.name}-key"


def role_configmap(spec: NetworkSpec, role: str) -> str:
    return f"{spec.name}-config-{role}"


def genesis_configmap(spec: NetworkSpec) -> str:
    return f"{spec.name}-genesis"


def peers_configmap(spec: NetworkSpec) -> str:
    return f"{spec.name}-peers"


# ---- resources --------------------------------------------------------------------------------

def namespace(spec: NetworkSpec) -> Manifest:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": spec.namespace, "labels": labels(spec)}}


def config_maps(spec: NetworkSpec, genesis_json: str, jwt_public_pem: str | None) -> list[Manifest]:
    out: list[Manifest] = [{
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(spec, genesis_configmap(spec)),
        "data": {"genesis.json": genesis_json},
    }]
    for role in besu.roles_present(spec):
        toml = besu.to_toml(besu.role_config(spec, role, KUBERNETES),
                            f"Besu {spec.besu_version} config of the {role} role, network {spec.name}\n"
                            f"{besu.GENERATED}")
        out.append({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": meta(spec, role_configmap(spec, role), role),
                    "data": {"config.toml": toml}})
    peers = {
        "static-nodes.json": json.dumps(besu.static_nodes(spec, KUBERNETES), indent=2) + "\n",
        "permissions_config.toml": besu.to_toml(besu.permissions(spec, KUBERNETES), besu.GENERATED),
    }
    if jwt_public_pem is not None and spec.rpc_auth == "jwt" and "rpc" in besu.roles_present(spec):
        peers["rpc-jwt-public.pem"] = jwt_public_pem
    out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(spec, peers_configmap(spec)),
                "data": peers})
    return out


def services(spec: NetworkSpec) -> list[Manifest]:
    ports = [
        {"name": "p2p-tcp", "port": besu.K8S_P2P_PORT, "protocol": "TCP"},
        {"name": "p2p-udp", "port": besu.K8S_P2P_PORT, "protocol": "UDP"},
        {"name": "json-rpc", "port": besu.K8S_RPC_HTTP_PORT, "protocol": "TCP"},
        {"name": "metrics", "port": besu.K8S_METRICS_PORT, "protocol": "TCP"},
    ]
    out: list[Manifest] = [{
        "apiVersion": "v1", "kind": "Service", "metadata": meta(spec, besu.headless_service(spec)),
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                 "selector": selector(spec), "ports": ports},
    }]
    if "rpc" in besu.roles_present(spec):
        out.append({
            "apiVersion": "v1", "kind": "Service", "metadata": meta(spec, besu.rpc_service(spec), "rpc"),
            "spec": {"type": "ClusterIP", "selector": selector(spec, "rpc"),
                     "sessionAffinity": "ClientIP",  # nonces and filters live on one node
                     "ports": [{"name": "json-rpc", "port": besu.K8S_RPC_HTTP_PORT, "protocol": "TCP"},
                               {"name": "ws", "port": besu.K8S_RPC_WS_PORT, "protocol": "TCP"}]},
        })
    return out


def rbac(spec: NetworkSpec, node: NodeSpec) -> list[Manifest]:
    """The node's identity: cloud secret stores bind to the ServiceAccount (IRSA, workload
    identity, Vault's Kubernetes auth), and the Role lets it read its own key Secret only."""
    role = primary_role(node)
    name = node.name
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(spec, name, role, name),
         "automountServiceAccountToken": False},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": meta(spec, f"{name}-key-reader", role, name),
         "rules": [{"apiGroups": [""], "resources": ["secrets"],
                    "resourceNames": [key_secret(spec, node)], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": meta(spec, f"{name}-key-reader", role, name),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{name}-key-reader"},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": spec.namespace}]},
    ]


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "json-rpc",
                        "httpHeaders": [{"name": "Host", "value": "localhost"}]},
            "periodSeconds": period, "timeoutSeconds": 5, "failureThreshold": failures}


def config_hash(spec: NetworkSpec, node: NodeSpec, config_maps_: Iterable[Manifest]) -> str:
    wanted = {genesis_configmap(spec), peers_configmap(spec), role_configmap(spec, primary_role(node))}
    blob = json.dumps([m["data"] for m in config_maps_ if m["metadata"]["name"] in wanted],
                      sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def statefulset(spec: NetworkSpec, node: NodeSpec, cfg_hash: str) -> Manifest:
    role = primary_role(node)
    k = spec.kubernetes
    min_peers = 1 if len(spec.nodes) > 1 else 0
    args = [
        f"--config-file={besu.CONFIG_DIR}/config.toml",
        "--p2p-host=$(POD_IP)",
        *(f"--{key}={_arg(value)}" for key, value in besu.node_options(spec, node, KUBERNETES).items()),
    ]
    pod_labels = labels(spec, role, node.name)
    container = {
        "name": "besu",
        "image": spec.besu_image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "env": [
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "BESU_OPTS", "value": f"-Xmx{k.java_heap}"},
        ],
        "ports": [
            {"name": "p2p-tcp", "containerPort": besu.K8S_P2P_PORT, "protocol": "TCP"},
            {"name": "p2p-udp", "containerPort": besu.K8S_P2P_PORT, "protocol": "UDP"},
            {"name": "json-rpc", "containerPort": besu.K8S_RPC_HTTP_PORT, "protocol": "TCP"},
            {"name": "ws", "containerPort": besu.K8S_RPC_WS_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": besu.K8S_METRICS_PORT, "protocol": "TCP"},
        ],
        "resources": {"requests": {"cpu": k.cpu_request, "memory": k.memory_request},
                      "limits": {"memory": k.memory_limit}},
        "volumeMounts": [
            {"name": CONFIG_VOLUME, "mountPath": besu.CONFIG_DIR, "readOnly": True},
            {"name": KEY_VOLUME, "mountPath": besu.KEY_DIR, "readOnly": True},
            {"name": DATA_VOLUME, "mountPath": besu.DATA_DIR},
        ],
        # A JVM and a FOREST database take a while to open; only then do liveness checks count.
        "startupProbe": _probe("/liveness", 10, 30),
        "livenessProbe": _probe("/liveness", 30, 3),
        "readinessProbe": _probe(f"/readiness?minPeers={min_peers}&maxBlocksBehind=2", 10, 3),
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                            "capabilities": {"drop": ["ALL"]}},
    }
    sources = [
        {"configMap": {"name": role_configmap(spec, role)}},
        {"configMap": {"name": genesis_configmap(spec)}},
        {"configMap": {"name": peers_configmap(spec)}},
    ]
    spread_selector = {"matchLabels": selector(spec, role)}
    pod_spec: dict[str, Any] = {
        "serviceAccountName": node.name,
        "automountServiceAccountToken": False,
        "securityContext": {"runAsUser": BESU_UID, "runAsGroup": BESU_UID, "fsGroup": BESU_UID,
                            "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "terminationGracePeriodSeconds": 60,
        "containers": [container],
        "volumes": [
            {"name": CONFIG_VOLUME, "projected": {"sources": sources}},
            {"name": KEY_VOLUME, "secret": {"secretName": key_secret(spec, node), "defaultMode": 0o440,
                                            "items": [{"key": "nodekey", "path": "nodekey"}]}},
        ],
        # Spread each role over zones and hosts, so one failure domain takes at most its share.
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
             "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": spread_selector},
            {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
             "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": spread_selector},
        ],
    }
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta(spec, node.name, role, node.name),
        "spec": {
            "serviceName": besu.headless_service(spec),
            "replicas": 1,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector(spec, role, node.name)},
            "template": {
                "metadata": {"labels": pod_labels,
                             "annotations": {"smartta.io/config-hash": cfg_hash,
                                             "prometheus.io/scrape": "true",
                                             "prometheus.io/port": str(besu.K8S_METRICS_PORT)}},
                "spec": pod_spec,
            },
            # Chain data outlives the pod and the StatefulSet: a validator's data is cheap to
            # re-sync, but deleting it by accident must never be one command away.
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "volumeClaimTemplates": [{
                "metadata": {"name": DATA_VOLUME, "labels": labels(spec, role, node.name)},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                         "resources": {"requests": {"storage": k.storage_size}}},
            }],
        },
    }


def _arg(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def disruption_budget(spec: NetworkSpec) -> Manifest:
    """Voluntary evictions (node drains, upgrades) may take at most f validators at a time."""
    n = len(spec.validators)
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": meta(spec, f"{spec.name}-validators", "validator"),
            "spec": {"minAvailable": n - max_faulty(n),
                     "selector": {"matchLabels": selector(spec, "validator")}}}


def network_policies(spec: NetworkSpec) -> list[Manifest]:
    def policy(name: str, pods: dict[str, str], ingress: list[dict[str, Any]]) -> Manifest:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": meta(spec, f"{spec.name}-{name}"),
                "spec": {"podSelector": {"matchLabels": pods}, "policyTypes": ["Ingress"],
                         "ingress": ingress}}

    def tcp(*ports: int) -> list[dict[str, Any]]:
        return [{"protocol": "TCP", "port": p} for p in ports]

    everyone = selector(spec)
    out = [
        policy("default-deny", everyone, []),
        policy("p2p", everyone, [{
            "from": [{"podSelector": {"matchLabels": everyone}}],
            "ports": [*tcp(besu.K8S_P2P_PORT), {"protocol": "UDP", "port": besu.K8S_P2P_PORT}]}]),
        policy("metrics", everyone, [{
            "from": [{"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": MONITORING_NAMESPACE}}}],
            "ports": tcp(besu.K8S_METRICS_PORT)}]),
        policy("operator-rpc", everyone, [{
            "from": [{"podSelector": {"matchLabels": {OPERATOR_LABEL: "true"}}}],
            "ports": tcp(besu.K8S_RPC_HTTP_PORT)}]),
    ]
    if "rpc" in besu.roles_present(spec):
        out.append(policy("rpc-clients", selector(spec, "rpc"), [{
            "from": [{"namespaceSelector": {},
                      "podSelector": {"matchLabels": {RPC_CLIENT_LABEL: "true"}}}],
            "ports": tcp(besu.K8S_RPC_HTTP_PORT, besu.K8S_RPC_WS_PORT)}]))
    return out


def base_resources(spec: NetworkSpec, genesis_json: str,
                   jwt_public_pem: str | None) -> dict[str, list[Manifest]]:
    """File name -> resources of ``kubernetes/base``."""
    cms = config_maps(spec, genesis_json, jwt_public_pem)
    nodes = spec.nodes
    return {
        "namespace.yaml": [namespace(spec)],
        "configmaps.yaml": cms,
        "services.yaml": services(spec),
        "rbac.yaml": [m for n in nodes for m in rbac(spec, n)],
        "statefulsets.yaml": [statefulset(spec, n, config_hash(spec, n, cms)) for n in nodes],
        "disruption.yaml": [disruption_budget(spec)],
        "networkpolicies.yaml": network_policies(spec),
    }


# ---- overlays ---------------------------------------------------------------------------------

STORAGE = {
    "local": ("standard", None),  # kind's default class
    "bare": ("local-storage", None),
    "aws": ("smartta-gp3", {"provisioner": "ebs.csi.aws.com", "parameters": {"type": "gp3"}}),
    "azure": ("smartta-premium", {"provisioner": "disk.csi.azure.com",
                                  "parameters": {"skuName": "Premium_LRS"}}),
    "gcp": ("smartta-balanced", {"provisioner": "pd.csi.storage.gke.io",
                                 "parameters": {"type": "pd-balanced"}}),
}
RPC_EXPOSURE = {
    "local": ("ClusterIP", {}),
    "bare": ("NodePort", {}),
    "aws": ("LoadBalancer", {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
                             "service.beta.kubernetes.io/aws-load-balancer-type": "external",
                             "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip"}),
    "azure": ("LoadBalancer", {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}),
    "gcp": ("LoadBalancer", {"networking.gke.io/load-balancer-type": "Internal"}),
}
PLACEHOLDERS = {
    "aws": {"ACCOUNT_ID": "the AWS account id", "REGION": "the AWS region"},
    "azure": {"KEYVAULT_NAME": "the Key Vault holding the keys", "TENANT_ID": "the Entra tenant id",
              "CLIENT_ID": "the workload identity's client id"},
    "gcp": {"PROJECT_ID": "the Google Cloud project id"},
}
VPC_CIDR_PLACEHOLDER = "10.0.0.0/8"


def _secret_provider_class(spec: NetworkSpec, node: NodeSpec, platform: str) -> Manifest:
    """A secrets-store CSI SecretProviderClass that mounts the node key as ``nodekey``."""
    secret_name = f"{spec.name}-{node.name}-nodekey"
    params: dict[str, str]
    if platform == "aws":
        params = {"objects": yaml.safe_dump([{"objectName": secret_name, "objectType": "secretsmanager",
                                              "objectAlias": "nodekey"}]),
                  "region": "REGION"}
    elif platform == "azure":
        params = {"keyvaultName": "KEYVAULT_NAME", "tenantId": "TENANT_ID", "clientID": "CLIENT_ID",
                  "objects": yaml.safe_dump({"array": [yaml.safe_dump(
                      {"objectName": secret_name, "objectType": "secret", "objectAlias": "nodekey"})]})}
    else:
        params = {"secrets": yaml.safe_dump([{
            "resourceName": f"projects/PROJECT_ID/secrets/{secret_name}/versions/latest",
            "path": "nodekey"}])}
    return {"apiVersion": "secrets-store.csi.x-k8s.io/v1", "kind": "SecretProviderClass",
            "metadata": meta(spec, key_secret(spec, node), primary_role(node), node.name),
            "spec": {"provider": platform, "parameters": params}}


def _service_account_annotation(spec: NetworkSpec, node: NodeSpec, platform: str) -> dict[str, str]:
    if platform == "aws":
        return {"eks.amazonaws.com/role-arn": f"arn:aws:iam::ACCOUNT_ID:role/{spec.name}-{node.name}"}
    if platform == "azure":
        return {"azure.workload.identity/client-id": "CLIENT_ID"}
    return {"iam.gke.io/gcp-service-account":
            f"{spec.name}-{node.name}@PROJECT_ID.iam.gserviceaccount.com"}


def overlay(spec: NetworkSpec, platform: str) -> dict[str, Any]:
    """Files of ``kubernetes/overlays/<platform>``: name -> YAML document(s)."""
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}; choose one of {', '.join(PLATFORMS)}")
    storage_class, provisioner = STORAGE[platform]
    patches: list[dict[str, Any]] = [{
        "target": {"kind": "StatefulSet", "labelSelector": f"app.kubernetes.io/part-of={spec.name}"},
        "patch": yaml.safe_dump([{"op": "replace",
                                  "path": "/spec/volumeClaimTemplates/0/spec/storageClassName",
                                  "value": storage_class}]),
    }]
    resources: list[str] = ["../../base"]
    files: dict[str, Any] = {}
    extra: list[Manifest] = []
    if provisioner is not None:
        extra.append({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                      "metadata": {"name": storage_class, "labels": labels(spec)},
                      "provisioner": provisioner["provisioner"], "parameters": provisioner["parameters"],
                      "reclaimPolicy": "Retain", "allowVolumeExpansion": True,
                      "volumeBindingMode": "WaitForFirstConsumer"})
    if platform in ("aws", "azure", "gcp"):
        for node in spec.nodes:
            extra.append(_secret_provider_class(spec, node, platform))
            pod_patch: list[dict[str, Any]] = [{
                "op": "replace", "path": f"/spec/template/spec/volumes/{KEY_VOLUME_INDEX}",
                "value": {"name": KEY_VOLUME, "csi": {
                    "driver": "secrets-store.csi.k8s.io", "readOnly": True,
                    "volumeAttributes": {"secretProviderClass": key_secret(spec, node)}}}}]
            if platform == "azure":
                pod_patch.append({"op": "add", "path": "/spec/template/metadata/labels/"
                                  "azure.workload.identity~1use", "value": "true"})
            patches.append({"target": {"kind": "StatefulSet", "name": node.name},
                            "patch": yaml.safe_dump(pod_patch)})
            patches.append({"target": {"kind": "ServiceAccount", "name": node.name},
                            "patch": yaml.safe_dump([{"op": "add", "path": "/metadata/annotations",
                                                      "value": _service_account_annotation(
                                                          spec, node, platform)}])})
    service_type, annotations = RPC_EXPOSURE[platform]
    if "rpc" in besu.roles_present(spec) and service_type != "ClusterIP":
        ops: list[dict[str, Any]] = [{"op": "replace", "path": "/spec/type", "value": service_type}]
        if annotations:
            ops.append({"op": "add", "path": "/metadata/annotations", "value": annotations})
        patches.append({"target": {"kind": "Service", "name": besu.rpc_service(spec)},
                        "patch": yaml.safe_dump(ops)})
        # Traffic through a load balancer or node port arrives from addresses outside the
        # cluster; allow the private network it comes from (set it to your VPC's range).
        extra.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                      "metadata": meta(spec, f"{spec.name}-rpc-from-network"),
                      "spec": {"podSelector": {"matchLabels": selector(spec, "rpc")},
                               "policyTypes": ["Ingress"],
                               "ingress": [{"from": [{"ipBlock": {"cidr": VPC_CIDR_PLACEHOLDER}}],
                                            "ports": [{"protocol": "TCP", "port": besu.K8S_RPC_HTTP_PORT},
                                                      {"protocol": "TCP", "port": besu.K8S_RPC_WS_PORT}]}]}})
    if extra:
        files["resources.yaml"] = extra
        resources.append("resources.yaml")
    files["kustomization.yaml"] = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                                   "resources": resources, "patches": patches}
    return files


def dump(docs: Manifest | list[Manifest], header: str) -> str:
    items = docs if isinstance(docs, list) else [docs]
    body = "---\n".join(yaml.safe_dump(d, sort_keys=False, width=120) for d in items)
    return "".join(f"# {line}\n" for line in header.splitlines()) + body


def files(spec: NetworkSpec, genesis_json: str, jwt_public_pem: str | None) -> dict[str, str]:
    header = besu.GENERATED
    base = base_resources(spec, genesis_json, jwt_public_pem)
    out = {f"kubernetes/base/{name}": dump(docs, header) for name, docs in base.items()}
    out["kubernetes/base/kustomization.yaml"] = dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
         "resources": list(base)}, header)
    for platform in PLATFORMS:
        for name, docs in overlay(spec, platform).items():
            note = header
            if platform in PLACEHOLDERS:
                note += "\nreplace before applying: " + "; ".join(
                    f"{k} ({v})" for k, v in PLACEHOLDERS[platform].items())
                note += f"; {VPC_CIDR_PLACEHOLDER} (the private range RPC clients come from)"
            out[f"kubernetes/overlays/{platform}/{name}"] = dump(docs, note)
    return out


def key_secret_manifest(spec: NetworkSpec, node: NodeSpec, secret: bytes) -> Manifest:
    """The Secret a node's StatefulSet mounts (local and bare overlays)."""
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": meta(spec, key_secret(spec, node), primary_role(node), node.name),
            "type": "Opaque", "stringData": {"nodekey": "0x" + secret.hex()}}
