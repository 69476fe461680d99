"""Generated Kubernetes manifests: valid against the API schemas (kubernetes-validate, strict),
overlays that build with kustomize and differ from the base only where a platform must, keys
readable only by their own node, at most f validators evictable, RPC reachable only where meant."""

from __future__ import annotations

import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from node.network import kubernetes
from node.network.spec import NetworkSpec

K8S_VERSIONS = ["1.30.0", "1.37.0"]
KUSTOMIZE = shutil.which("kubectl")
CRDS = {"SecretProviderClass"}


def _docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def _base(net) -> list[dict]:
    return [d for f in sorted((net / "kubernetes" / "base").glob("*.yaml")) if f.name != "kustomization.yaml"
            for d in _docs(f.read_text())]


def _validate(doc: dict, version: str) -> None:
    if doc["kind"] in CRDS:
        assert doc["apiVersion"] == "secrets-store.csi.x-k8s.io/v1"
        assert doc["spec"]["provider"] in ("aws", "azure", "gcp") and doc["spec"]["parameters"]
        return
    kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_base_manifest_validates_against_the_kubernetes_schema(net, version):
    docs = _base(net)
    assert {d["kind"] for d in docs} == {"Namespace", "ConfigMap", "Service", "ServiceAccount", "Role",
                                         "RoleBinding", "StatefulSet", "PodDisruptionBudget", "NetworkPolicy"}
    for doc in docs:
        _validate(doc, version)


def test_an_invalid_manifest_is_caught_by_the_schema_check(net):
    sts = next(d for d in _base(net) if d["kind"] == "StatefulSet")
    sts["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, "1.30.0", strict=True)
    sts["spec"]["replicas"] = 1
    sts["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, "1.30.0", strict=True)


def _build(path) -> list[dict]:
    out = subprocess.run([KUSTOMIZE, "kustomize", str(path)], capture_output=True, text=True, check=True)
    return _docs(out.stdout)


def _key(doc: dict) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def _diff(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            yield from _diff(a.get(k), b.get(k), f"{path}/{k}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _diff(x, y, f"{path}/{i}")
    elif a != b:
        yield path


ALLOWED = {
    "StatefulSet": ("/spec/volumeClaimTemplates/0/spec/storageClassName", "/spec/template/spec/volumes/1",
                    "/spec/template/metadata/labels/azure.workload.identity/use"),
    "ServiceAccount": ("/metadata/annotations",),
    "Service": ("/spec/type", "/metadata/annotations"),
}


@pytest.mark.skipif(KUSTOMIZE is None, reason="kubectl (for `kubectl kustomize`) is not installed")
@pytest.mark.parametrize("platform", kubernetes.PLATFORMS)
def test_each_overlay_builds_validates_and_changes_only_storage_secrets_and_exposure(net, platform):
    base = {_key(d): d for d in _build(net / "kubernetes" / "base")}
    built = _build(net / "kubernetes" / "overlays" / platform)
    for doc in built:
        _validate(doc, "1.30.0")
    changed = set()
    for doc in built:
        if _key(doc) not in base:
            assert doc["kind"] in {"StorageClass", "SecretProviderClass", "NetworkPolicy"}, _key(doc)
            continue
        for path in _diff(base[_key(doc)], doc):
            assert path.startswith(ALLOWED.get(doc["kind"], ("-",))), (platform, _key(doc), path)
            changed.add((doc["kind"], path.split("/")[-1]))
    assert {_key(d) for d in built} >= set(base)
    sts = [d for d in built if d["kind"] == "StatefulSet"]
    classes = {d["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] for d in sts}
    assert classes == {kubernetes.STORAGE[platform][0]}
    key_volumes = [d["spec"]["template"]["spec"]["volumes"][1] for d in sts]
    if platform in ("aws", "azure", "gcp"):
        assert all(v["csi"]["volumeAttributes"]["secretProviderClass"] ==
                   f"ta-net-{d['metadata']['name']}-key" for v, d in zip(key_volumes, sts, strict=True))
    else:
        assert all("secret" in v for v in key_volumes)
    rpc = next(d for d in built if _key(d) == ("Service", "ta-net-rpc"))
    assert rpc["spec"]["type"] == kubernetes.RPC_EXPOSURE[platform][0]


def test_each_node_runs_with_its_own_identity_and_reads_only_its_own_key(net):
    docs = _base(net)
    spec = NetworkSpec.load(net)
    for node in spec.nodes:
        role = next(d for d in docs if _key(d) == ("Role", f"{node.name}-key-reader"))
        assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"],
                                  "resourceNames": [f"ta-net-{node.name}-key"], "verbs": ["get"]}]
        sts = next(d for d in docs if _key(d) == ("StatefulSet", node.name))
        pod = sts["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == node.name and sts["spec"]["replicas"] == 1
        assert pod["volumes"][1]["secret"]["secretName"] == f"ta-net-{node.name}-key"
        assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "20Gi"


@pytest.mark.parametrize(("validators", "min_available"), [(4, 3), (5, 4), (7, 5), (10, 7)])
def test_disruption_budget_never_lets_more_than_f_validators_go(tmp_path, validators, min_available):
    from .netchain import make_network

    spec = make_network(tmp_path / "n", validators=validators, observers=0, rpc_node=False)
    pdb = kubernetes.disruption_budget(spec)
    assert pdb["spec"]["minAvailable"] == min_available
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "validator"


def test_network_policies_keep_validator_rpc_to_operators_and_metrics_to_monitoring(net):
    policies = {d["metadata"]["name"]: d["spec"] for d in _base(net) if d["kind"] == "NetworkPolicy"}
    assert policies["ta-net-default-deny"]["ingress"] == []
    rpc_ports = {8545, 8546}
    for spec in policies.values():
        everyone = spec["podSelector"]["matchLabels"] == {"app.kubernetes.io/part-of": "ta-net"}
        for rule in spec["ingress"]:
            ports = {p["port"] for p in rule["ports"]}
            if ports & rpc_ports and everyone:  # RPC on every node, validators included
                assert rule["from"] == [{"podSelector": {"matchLabels": {"smartta.io/operator": "true"}}}]
            if 9545 in ports:
                assert rule["from"][0]["namespaceSelector"]["matchLabels"] == {
                    "kubernetes.io/metadata.name": "monitoring"}
    rpc_tier = policies["ta-net-rpc-clients"]["podSelector"]["matchLabels"]
    assert rpc_tier["app.kubernetes.io/component"] == "rpc"


def test_probes_use_besus_health_endpoints_with_a_host_besu_allows(net):
    for sts in (d for d in _base(net) if d["kind"] == "StatefulSet"):
        c = sts["spec"]["template"]["spec"]["containers"][0]
        assert c["livenessProbe"]["httpGet"]["path"] == "/liveness"
        assert c["startupProbe"]["httpGet"]["path"] == "/liveness"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readiness?minPeers=1&maxBlocksBehind=2"
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert c[probe]["httpGet"]["httpHeaders"] == [{"name": "Host", "value": "localhost"}]
        assert "--host-allowlist=localhost," in " ".join(c["args"])


def test_headless_service_publishes_pods_before_they_are_ready(net):
    svc = next(d for d in _base(net) if _key(d) == ("Service", "ta-net-nodes"))
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
