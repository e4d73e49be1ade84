"""deploy/Dockerfile, deploy/compose.yaml and deploy/k8s/ checked offline (no podman, no cluster needed).

The Kubernetes manifests go through kubernetes-validate's strict schemas; the compose file through
podman-compose's own parser (``podman-compose config``; where podman is absent, a stand-in that only answers
``podman --version`` lets it run, since ``config`` calls podman for nothing else). Both are then checked against
the scenario they deploy: one node service / pod per node, the addresses of the network bundle, persistent data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bazaar.node.config import load_node_config
from bazaar.node.hosts.container import (
    HTTP_PORT,
    LIBP2P_PORT,
    init_bundle,
    node_hosts,
    node_of_host,
    pod_name,
    prepare_node,
)
from bazaar.node.scenario import load_scenario

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SCENARIO = "ai-bazaar-small"  # what compose.yaml and deploy/k8s/ deploy


def _k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_every_manifest_passes_strict_schema_validation() -> None:
    docs = _k8s_docs()
    assert {d["kind"] for _, d in docs} == {"Service", "StatefulSet", "Job"}
    for name, doc in docs:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)  # raises on error
        assert name


def test_strict_validation_catches_a_misspelt_field() -> None:
    _, doc = next(d for d in _k8s_docs() if d[1]["kind"] == "StatefulSet")
    doc["spec"]["replica"] = doc["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_statefulsets_cover_the_scenario_with_stable_names_and_persistent_data(tmp_path: Path) -> None:
    docs = [d for _, d in _k8s_docs()]
    (service,) = [d for d in docs if d["kind"] == "Service"]
    assert service["spec"]["clusterIP"] == "None"  # headless: one DNS name per pod
    assert {p["port"] for p in service["spec"]["ports"]} == {LIBP2P_PORT, HTTP_PORT}
    sets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "StatefulSet"}
    roles = Counter(role for _, role in load_scenario(SCENARIO).nodes)
    assert {name: s["spec"]["replicas"] for name, s in sets.items()} == dict(roles)
    for s in sets.values():
        assert s["spec"]["serviceName"] == service["metadata"]["name"]
        labels = s["spec"]["template"]["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
        (claim,) = s["spec"]["volumeClaimTemplates"]
        (node,) = s["spec"]["template"]["spec"]["containers"]
        assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in node["volumeMounts"]
        assert node["args"][:1] == ["node"]
    # the bundle's address book names exactly the pods these StatefulSets make, behind that Service
    bundle = init_bundle(SCENARIO, tmp_path / "bundle", "k8s", service=service["metadata"]["name"])
    pods = {f"{name}-{i}" for name, s in sets.items() for i in range(s["spec"]["replicas"])}
    hosts = node_hosts(bundle)
    assert {h.split(".")[0] for h in hosts.values()} == pods
    assert all(h == f"{pod_name(n)}.bazaar-peers" for n, h in hosts.items())
    assert {node_of_host(p, list(hosts)) for p in pods} == set(hosts)
    (job,) = [d for d in docs if d["kind"] == "Job"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][:1] == ["rounds"]


def _compose_config(tmp_path: Path) -> dict[str, Any]:
    exe = shutil.which("podman-compose") or str(Path(sys.executable).with_name("podman-compose"))
    env = dict(os.environ)
    if shutil.which("podman") is None:
        stand_in = tmp_path / "bin" / "podman"
        stand_in.parent.mkdir()
        stand_in.write_text("#!/bin/sh\necho 'podman version 4.3.1'\n")
        stand_in.chmod(0o755)
        env["PATH"] = f"{stand_in.parent}:{env.get('PATH', '')}"
    done = subprocess.run([exe, "--profile", "rounds", "-f", str(DEPLOY / "compose.yaml"), "config"],
                          capture_output=True, text=True, timeout=60, env=env, check=False)
    assert done.returncode == 0, done.stderr
    return dict(yaml.safe_load(done.stdout))


def test_compose_file_runs_the_scenario_on_the_bundle_addresses(tmp_path: Path) -> None:
    config = _compose_config(tmp_path)
    services = config["services"]
    nodes = load_scenario(SCENARIO).nodes
    node_services = {n: s for n, s in services.items() if s.get("command", [None])[0] == "node"}
    assert set(node_services) == {n for n, _ in nodes}
    assert {"init", "rounds"} <= set(services)
    assert services["init"]["command"][services["init"]["command"].index("--scenario") + 1] == SCENARIO
    bundle = init_bundle(SCENARIO, tmp_path / "bundle", "compose")
    hosts = node_hosts(bundle)
    for name, role in nodes:
        svc = node_services[name]
        assert svc["networks"]["bazaar"]["ipv4_address"] == hosts[name]
        assert svc["labels"]["org.bazaar.role"] == role
        assert svc["depends_on"]["init"]["condition"] == "service_completed_successfully"
        data = [v for v in svc["volumes"] if v.endswith(":/data")]
        assert len(data) == 1 and data[0].split(":")[0] in config["volumes"]
    subnet = config["networks"]["bazaar"]["ipam"]["config"][0]["subnet"]
    assert all(h.startswith(subnet.rsplit(".", 1)[0] + ".") for h in hosts.values())
    assert set(services["rounds"]["depends_on"]) == {n for n, _ in nodes}


def test_dockerfile_base_is_overridable_and_the_entrypoint_exists() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert lines[0].startswith("ARG BASE_IMAGE=")
    assert sum(ln.startswith("FROM ${BASE_IMAGE}") for ln in lines) == 2
    assert 'ENTRYPOINT ["python", "-m", "bazaar.node.hosts.container"]' in lines
    assert any(ln.startswith("USER ") for ln in lines)


def test_a_node_data_folder_is_laid_out_from_the_bundle(tmp_path: Path) -> None:
    bundle = init_bundle(SCENARIO, tmp_path / "bundle", "compose")
    config = prepare_node(bundle, tmp_path / "data", "consumer-1")
    cfg = load_node_config(config)
    assert cfg.data_dir == tmp_path / "data" and cfg.listen == f"/ip4/0.0.0.0/tcp/{LIBP2P_PORT}"
    assert cfg.genesis == bundle / "genesis.json" and cfg.scenario == bundle / "scenario.toml"
    assert (tmp_path / "data" / "node.key").stat().st_mode & 0o077 == 0
    assert (tmp_path / "data" / "node.key").read_bytes() == (bundle / "nodes" / "consumer-1" / "node.key").read_bytes()
    assert {p.name for p in cfg.peers} == {n for n, _ in load_scenario(SCENARIO).nodes} - {"consumer-1"}
    key = (tmp_path / "data" / "node.key").read_bytes()
    prepare_node(bundle, tmp_path / "data", "consumer-1")  # a restart keeps the data folder's own key
    assert (tmp_path / "data" / "node.key").read_bytes() == key


def test_host_names_map_to_nodes() -> None:
    names = ["cpp", "consumer-0", "consumer-1"]
    assert pod_name("cpp") == "cpp-0" and pod_name("consumer-1") == "consumer-1"
    assert node_of_host("cpp-0", names) == "cpp" and node_of_host("consumer-1", names) == "consumer-1"
    with pytest.raises(ValueError, match="runs no node"):
        node_of_host("web-0", names)
