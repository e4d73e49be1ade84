"""A non-editable install works: the wheel holds every file of the source packages, and runs from outside.

The expected contents are derived from the source tree (every file under the folders ``setup.py`` maps onto
``bazaar.*``), so a new data file that the packaging forgets fails here. The wheel is built once per run, from a
copy of the source tree (the build leaves nothing in the checkout); that takes ~10-30 s, and the test carries the
``packaging`` marker (``pytest -m packaging`` runs it alone; the default run, as in CI, includes it).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis"}


def _roots() -> dict[str, str]:
    """Source folder -> its folder in the wheel, as ``setup.py`` maps them (``ROOTS`` and ``bazaar_pkg``)."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    roots = next(ast.literal_eval(n.value) for n in ast.walk(tree)
                 if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "ROOTS" for t in n.targets))
    return {"bazaar_pkg": "bazaar", **{r: f"bazaar/{r}" for r in roots}}


def source_files() -> dict[str, Path]:
    """Every file the wheel must hold (wheel name -> source file): modules and data alike."""
    expected = {}
    for folder, target in _roots().items():
        for path in sorted((ROOT / folder).rglob("*")):
            rel = path.relative_to(ROOT / folder)
            if (not path.is_file() or path.suffix == ".pyc"
                    or any(p in SKIP_DIRS or p.startswith(".") for p in rel.parts)):
                continue
            expected[f"{target}/{rel.as_posix()}"] = path
    return expected


def _ignore(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n in SKIP_DIRS or n in {".git", ".venv", "build", "dist", "runs"}
            or n.endswith(".egg-info")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built by pip from a copy of the source tree."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=_ignore)
    out = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", "-w", str(out)],
                   check=True, timeout=600)
    (built,) = out.glob("bazaar-*.whl")
    return built


def test_every_source_file_is_in_the_wheel(wheel: Path) -> None:
    expected = source_files()
    data = {name for name in expected if not name.endswith(".py")}
    # the data the code loads at run time is among them (a glob that found nothing would prove nothing)
    assert {n for n in data if n.startswith("bazaar/mechanisms/ranet/weights/") and n.endswith(".npz")}
    assert {n for n in data if n.startswith("bazaar/deploy/scenarios/params/") and n.endswith(".toml")}
    assert {n for n in data if n.startswith("bazaar/deploy/scenarios/") and n.count("/") == 3}
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        missing = sorted(set(expected) - names)
        assert missing == [], f"not in the wheel: {missing}"
        for name in data:  # byte for byte (no LFS pointer, no stale copy)
            assert zf.read(name) == expected[name].read_bytes(), name
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: Apache-2.0" in meta.splitlines()
    requires = {line.split(":", 1)[1].strip().split(">")[0].split("=")[0].split(";")[0].strip()
                for line in meta.splitlines() if line.startswith("Requires-Dist:")}
    assert {"rich", "psutil"} <= requires  # the CLI's tables, progress and process checks


def test_license_is_an_spdx_string() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0"
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")[:200]


def _run_installed(site: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_wheel_runs_outside_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    where = _run_installed(site, elsewhere, "-c", "import bazaar.node; print(bazaar.node.__file__)")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(site), "the test must run the unpacked wheel"

    cli = ("-m", "bazaar.node.cli")
    auction = _run_installed(site, elsewhere, *cli, "solve", "tbcim-auction", "--sellers", "3", "--samples", "40",
                             "--regret-profiles", "4", "--json")
    assert auction.returncode == 0, auction.stderr  # the shipped RANet weights load
    assert json.loads(auction.stdout)["sellers"] == 3
    monotone = _run_installed(site, elsewhere, *cli, "solve", "tbcim-auction", "--sellers", "10", "--variant",
                              "monotone", "--samples", "20", "--regret-profiles", "0", "--json")
    assert monotone.returncode == 0, monotone.stderr  # the monotone variant's weights ship too
    hier = _run_installed(site, elsewhere, *cli, "solve", "hierarchical", "--params", "hierarchical-small", "--json")
    assert hier.returncode == 0, hier.stderr
    assert "welfare" in json.loads(hier.stdout)
    example = _run_installed(site, elsewhere, *cli, "solve", "collab-pricing", "--example")
    assert example.returncode == 0 and "[publishers]" in example.stdout
    version = _run_installed(site, elsewhere, *cli, "--version")
    assert version.returncode == 0 and version.stdout.startswith("bazaar ")
    table = _run_installed(site, elsewhere, *cli, "solve", "tbcim-stackelberg", "--params", "tbcim-stackelberg")
    assert table.returncode == 0 and "quantity" in table.stdout, table.stderr  # for people: a table
    nowhere = _run_installed(site, elsewhere, *cli, "net", "status", "--dir", "typo")
    assert nowhere.returncode == 2 and nowhere.stderr.startswith("error: no network in typo")
    scenarios = _run_installed(site, elsewhere, "-c", "from bazaar.deploy import shipped_scenarios\n"
                               "from bazaar.node.scenario import load_scenario\n"
                               "print(len([load_scenario(n) for n in shipped_scenarios()]))")
    assert scenarios.returncode == 0, scenarios.stderr  # with the parameter files they name
    assert int(scenarios.stdout) == len(list((ROOT / "deploy" / "scenarios").glob("*.toml")))
