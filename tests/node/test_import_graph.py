"""What a node process imports (docs/adr/0121): structural, not timed.

A node process imports the node entry and its market's role apps (what ``bazaar.node.forkserver`` pre-imports
for every market), then runs rounds. None of that may load scipy, scikit-learn, matplotlib, py-ecc (the
reference BLS backend) or torch: each costs tens of MB per process (a node may use 110 MB in all) and up to a
second of start-up CPU. The check runs in a fresh interpreter, so nothing the test process imported counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

HEAVY = ("scipy", "sklearn", "matplotlib", "py_ecc", "torch", "pydantic")
"""Modules no node process may import (pydantic comes only with py-ecc's eth-utils)."""

_SCRIPT = textwrap.dedent("""
    import json, sys
    import trio
    from bazaar.node.forkserver import preload
    preload(None)  # the node entry, the libp2p transport and every market's role apps
    after_import = sorted({m.split(".")[0] for m in sys.modules})
    sys.path.insert(0, sys.argv[1])
    from tests.node.harness import memory_net, small_scenario
    from pathlib import Path

    async def rounds():
        root = Path(sys.argv[2])
        async with memory_net(small_scenario(root), root / "net") as nodes:
            for _ in range(3):  # two equilibrium rounds (Stackelberg solve, PoL training), one learning round
                with trio.fail_after(60):
                    summary = await nodes["cpp"].engine.play()
                assert summary["final"], summary

    trio.run(rounds)
    print(json.dumps({"after_import": after_import,
                      "after_rounds": sorted({m.split(".")[0] for m in sys.modules})}))
""")


def test_a_node_process_imports_no_heavy_module(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(repo), str(tmp_path)], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    roots = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "libp2p" in roots["after_import"] and "bazaar" in roots["after_import"]  # the probe saw the node code
    for stage in ("after_import", "after_rounds"):
        loaded = sorted(set(HEAVY) & set(roots[stage]))
        assert not loaded, f"a node process imports {loaded} ({stage.replace('_', ' ')})"
