"""bench_scale's plot input: every run line of earlier --json outputs, and one-line errors (no network started)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_scale.py"


def _runs() -> object:
    sys.path.insert(0, str(BENCH.parent))
    try:
        import bench_scale
    finally:
        sys.path.remove(str(BENCH.parent))
    return bench_scale._read_runs


def test_every_run_line_of_an_earlier_output_is_read_and_runs_without_latency_are_left_out(tmp_path: Path) -> None:
    out = tmp_path / "runs.json"
    rows = [{"nodes": 9, "latency_p50_s": 6.0}, {"nodes": 20, "latency_p50_s": None},
            {"nodes": 50, "latency_p50_s": 9.5}]
    out.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    read = _runs()
    assert [r["nodes"] for r in read([out])] == [9, 50]  # type: ignore[operator]


def test_plot_only_without_runs_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("not json\n{oops\n")
    proc = subprocess.run([sys.executable, str(BENCH), "--plot", str(tmp_path / "x.png"), "--add", str(bad),
                           "--plot-only"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("args", [["--plot-only"], ["--plot-only", "--plot", "x.png"]])
def test_plot_only_needs_a_plot_and_runs(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "needs --plot and --add" in proc.stderr
