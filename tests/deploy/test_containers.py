"""A network of containers (deploy/compose.yaml) settles rounds and agrees on its finalized head.

Opt-in: runs only with ``BAZAAR_CONTAINER_TESTS=1`` (building the image takes 2-10 minutes, more than the suite's
time budget allows) where podman and podman-compose are installed and the base image of deploy/build-base.sh
(``localhost/bazaar-base:bookworm``, debootstrap, a few minutes, cached) exists; skipped with the reason
otherwise. It builds the application image (deploy/build-image.sh, tag ``localhost/bazaar:test``), starts the
compose project under a name of its own, runs the ``rounds`` service (3 rounds at the leader, each final on every
node, one finalized hash everywhere), and always removes its containers, network and volumes
(``podman-compose down -v`` on that project only).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
BASE = "localhost/bazaar-base:bookworm"
IMAGE = "localhost/bazaar:test"

pytestmark = [pytest.mark.containers, pytest.mark.slow]


def _env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(DEPLOY / "containers.conf"), "BAZAAR_IMAGE": IMAGE}


def _why_not() -> str | None:
    if os.environ.get("BAZAAR_CONTAINER_TESTS") != "1":
        return "opt-in: BAZAAR_CONTAINER_TESTS=1 (builds the image, 2-10 minutes; docs/deploy.md)"
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install podman runc; docs/deploy.md)"
    if shutil.which("podman-compose") is None and not Path(sys.executable).with_name("podman-compose").exists():
        return "podman-compose is not installed (pip install -e '.[test]')"
    found = subprocess.run(["podman", "image", "exists", BASE], env=_env(), timeout=60, check=False)
    if found.returncode != 0:
        return f"no base image {BASE}: run deploy/build-base.sh to opt in (docs/deploy.md)"
    return None


def test_a_compose_network_settles_rounds_and_agrees() -> None:
    reason = _why_not()
    if reason is not None:
        pytest.skip(reason)
    compose = shutil.which("podman-compose") or str(Path(sys.executable).with_name("podman-compose"))
    build = subprocess.run([str(DEPLOY / "build-image.sh"), IMAGE], env=_env(), capture_output=True, text=True,
                           timeout=1800, check=False)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    project = ["-p", f"bazaar-test-{os.getpid()}", "-f", str(DEPLOY / "compose.yaml")]
    try:
        up = subprocess.run([compose, *project, "up", "-d"], env=_env(), capture_output=True, text=True,
                            timeout=1200, check=False)  # ~15 s per container start on this VM
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        rounds = subprocess.run([compose, *project, "--profile", "rounds", "run", "--rm", "rounds"], env=_env(),
                                capture_output=True, text=True, timeout=900, check=False)
        lines = [json.loads(ln) for ln in rounds.stdout.splitlines() if ln.startswith("{")]
        assert rounds.returncode == 0, rounds.stdout[-3000:] + rounds.stderr[-3000:]
        assert [ln["round"] for ln in lines if "round" in ln] == [1, 2, 3]
        assert all(ln["final"] for ln in lines if "round" in ln)
        verdict = lines[-1]
        assert verdict["agreement"] is True
        assert len(verdict["finalized"]) == 4 and len({tuple(v) for v in verdict["finalized"].values()}) == 1
    finally:
        subprocess.run([compose, *project, "--profile", "rounds", "down", "-v"], env=_env(), capture_output=True,
                       timeout=300, check=False)
