"""The tbcim FL task side by side with Flower: time per global round on Flower, on the Bazaar network and
offline (the floor), and the final accuracy of each.

    python benchmarks/bench_tbcim_flower.py [--epochs K] [--scenario NAME] [--json]

Needs the ``bench`` extra (``pip install -e '.[bench]'``: Flower, ``flwr``); without it the benchmark exits 2.

The same FL task three ways: the participating EDs (``run_task``'s workers: the auction winners' Stackelberg
participants) with their Dirichlet shards, local epochs ``local_epochs_of(C_i)``, lr, batch size, initial
model and K global epochs of the scenario's market; softmax regression on the digits.

(a) **Flower, deployment runtime**: one ``flower-superlink`` and one ``flower-supernode`` per participating ED,
    all on 127.0.0.1, and the app submitted with ``flwr run``. A ``NumPyClient`` whose ``fit()`` is
    ``ed_update`` (local training by ``local_delta``) and Flower's own ``FedAvg`` weighted by sample counts;
    the requester's held-out accuracy is Flower's centralized evaluation. A round is timed inside the
    ServerApp, from ``configure_fit`` to the end of the evaluation of the aggregated model.
    Why this mode: the deployment runtime runs every party as its own process talking over the network, as
    the Bazaar network does; it installs with ``flwr`` alone. The simulation engine needs ``flwr[simulation]``
    (Ray 2.55.1, pinned; not installed or tried here) and runs the clients as Ray actors of one driver.
    What a Flower round costs in this runtime, by Flower's design (flwr 1.42): every SuperNode starts a fresh
    ``flwr-clientapp`` process for every round (isolation ``subprocess``, the default), an idle SuperNode asks
    the SuperLink for work every 3 s and the ServerApp asks for the replies every 3 s (both fixed in the
    code), so rounds land near multiples of 3 s. The "(training)" column is the slowest client's ``fit``.
    Flower's telemetry and update check are switched off (``FLWR_TELEMETRY_ENABLED=0``,
    ``FLWR_DISABLE_UPDATE_CHECK=1``): nothing leaves the machine.
(b) **Bazaar network**: the scenario launched in a temporary directory (as bench_network.py does), one
    warm-up task (K rounds, see :func:`run_bazaar`), then task 2's K rounds with ``run_rounds``; an epoch's
    time is its ``latency_all_ms`` (round start -> the epoch's block final on every node). Its round 1 also
    runs the RANet auction and the ES-ED games: it is reported on its own. The other two runs use task 2's
    participants too (``run_task(cfg, 2)``).
(c) **Offline**: ``ed_update`` for every participant, ``aggregate`` and ``accuracy`` in one process, per epoch:
    the floor.

The p50/p95 are taken over epochs 2..K for all three (epoch 1 of each is shown on its own). Flower's FedAvg
averages the returned weights (``sum n_i w_i / N``) where the Bazaar contract adds the weighted updates
(``w + sum n_i delta_i / N``): the same number up to rounding, so the accuracies agree and the models differ
by ~1e-16 (printed). Nothing is asserted: this machine is shared and noisy; read the ratios of one run.

The module is also the Flower app: ``flwr run`` ships a copy of this file, and the ServerApp and ClientApp
processes load ``server_app`` and ``client_app`` from it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bazaar.mechanisms.tbcim.market import (
    MarketConfig,
    TaskData,
    accuracy,
    aggregate,
    ed_update,
    initial_model,
    local_epochs_of,
    run_task,
    task_data,
)

# Flower reports usage to its servers and checks for updates unless told not to: nothing leaves this machine
# (set before flwr is imported; the Flower processes started below inherit it).
os.environ.update({"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"})

try:
    from flwr.client import ClientApp, NumPyClient
    from flwr.common import Code, FitIns, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig
    from flwr.server.strategy import FedAvg

    HAVE_FLWR = True
except ImportError:  # the benchmark says so and exits 2; the classes below are then never instantiated
    HAVE_FLWR = False
    NumPyClient = FedAvg = object  # type: ignore[misc,assignment]

FLOWER_ENV = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
APP_MODULE = "bench_tbcim_flower"
BAZAAR_TASK = 2
"""The task compared: the network's second (its first is a warm-up, :func:`run_bazaar`)."""


# ----------------------------------------------------------------------------- the Flower glue
class TbcimClient(NumPyClient):  # type: ignore[misc,valid-type]
    """Edge device ``ed`` as a Flower client: ``fit`` is the market's ``ed_update`` from the global model."""

    def __init__(self, cfg: MarketConfig, data: TaskData, ed: int, compute: float) -> None:
        self.cfg, self.data, self.ed, self.compute = cfg, data, ed, compute
        self.samples = len(data.parts[ed])

    def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict]:
        """Local training for the global epoch ``config["epoch"]`` (0-based); returns the new local weights."""
        params = np.asarray(parameters[0], dtype=np.float64)
        t0 = time.perf_counter()
        delta = ed_update(self.cfg, self.data, self.ed, int(config["epoch"]), params, self.compute)
        return [params + delta], self.samples, {"ed": self.ed, "fit_s": time.perf_counter() - t0}


class TimedFedAvg(FedAvg):  # type: ignore[misc,valid-type]
    """Flower's FedAvg (weights = sample counts, all K participants every round), the requester's held-out
    accuracy as centralized evaluation, and the time of every round."""

    def __init__(self, cfg: MarketConfig, data: TaskData, n_clients: int, init: np.ndarray) -> None:
        super().__init__(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=n_clients,
                         min_evaluate_clients=0, min_available_clients=n_clients, accept_failures=False,
                         evaluate_fn=self._evaluate, on_fit_config_fn=fit_config,
                         initial_parameters=ndarrays_to_parameters([init]))
        self.cfg, self.data = cfg, data
        self.started: dict[int, float] = {}
        self.finished: dict[int, float] = {}
        self.accuracy: dict[int, float] = {}
        self.failures: dict[int, int] = {}
        self.fit_s: dict[int, float] = {}
        self.params = init
        self.on_round = None  # called with the round number once a round is complete (the app writes its file)

    def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
        self.started[server_round] = time.perf_counter()
        return super().configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(self, server_round: int, results: list, failures: list) -> Any:
        self.failures[server_round] = len(failures)
        self.fit_s[server_round] = max((float(res.metrics.get("fit_s", 0.0)) for _, res in results), default=0.0)
        return super().aggregate_fit(server_round, results, failures)

    def _evaluate(self, server_round: int, ndarrays: list[np.ndarray], config: dict[str, Any]) -> tuple[float, dict]:
        acc = accuracy(self.cfg, self.data, ndarrays[0])
        if server_round > 0:
            self.finished[server_round] = time.perf_counter()
            self.accuracy[server_round] = acc
            self.params = np.asarray(ndarrays[0], dtype=np.float64)
            if self.on_round is not None:
                self.on_round(server_round)
        return 1.0 - acc, {"accuracy": acc}

    def round_seconds(self) -> dict[int, float]:
        """Seconds of every completed round (``configure_fit`` -> aggregated model evaluated)."""
        return {r: self.finished[r] - self.started[r] for r in sorted(self.finished) if r in self.started}


def fit_config(server_round: int) -> dict[str, Any]:
    """What every client gets with a round: its global epoch (0-based; it seeds the local SGD)."""
    return {"epoch": server_round - 1}


def flower_round(strategy: TimedFedAvg, clients: Sequence[TbcimClient], params: np.ndarray,
                 server_round: int) -> np.ndarray:
    """One round through Flower's client and strategy objects in this process (no network): every client's
    ``fit`` behind Flower's ``Client`` wrapper, then the strategy's ``aggregate_fit``."""
    ins = FitIns(ndarrays_to_parameters([params]), fit_config(server_round))
    results = [(None, c.to_client().fit(ins)) for c in clients]
    for _, res in results:
        if res.status.code != Code.OK:
            raise RuntimeError(f"client fit failed: {res.status.message}")
    aggregated, _ = strategy.aggregate_fit(server_round, results, [])
    return np.asarray(parameters_to_ndarrays(aggregated)[0], dtype=np.float64)


def shard_data(cfg: MarketConfig, X: np.ndarray, y: np.ndarray, ed: int) -> TaskData:
    """A :class:`TaskData` holding only ED ``ed``'s shard (what a SuperNode has): enough for ``ed_update``."""
    empty = np.zeros(0, dtype=np.int64)
    parts = tuple(np.arange(len(y), dtype=np.int64) if i == ed else empty for i in range(cfg.n_eds))
    return TaskData(np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64), np.zeros((0, X.shape[1])),
                    empty, parts, np.full(10, 0.1))


def _client_fn(context: Any) -> Any:
    """The ClientApp on a SuperNode: ED, compute and shard file from ``--node-config``."""
    node, run = context.node_config, context.run_config
    cfg = pickle.loads(Path(str(run["market"])).read_bytes())
    ed = int(node["ed"])
    with np.load(str(node["shard"])) as z:
        data = shard_data(cfg, z["X"], z["y"], ed)
    return TbcimClient(cfg, data, ed, float(node["compute"])).to_client()


def _server_fn(context: Any) -> Any:
    """The ServerApp: FedAvg over the participating EDs for ``epochs`` rounds; writes ``out`` after each."""
    run = context.run_config
    cfg: MarketConfig = pickle.loads(Path(str(run["market"])).read_bytes())
    data = task_data(cfg)
    strategy = TimedFedAvg(cfg, data, int(run["clients"]), initial_model(cfg, data.X_train.shape[1]))
    out = Path(str(run["out"]))

    def write(server_round: int) -> None:
        if server_round == int(run["epochs"]):
            out.write_text(json.dumps({
                "round_s": strategy.round_seconds(), "accuracy": strategy.accuracy, "failures": strategy.failures,
                "fit_s": strategy.fit_s, "params": strategy.params.tolist()}))

    strategy.on_round = write
    return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=int(run["epochs"])))


if HAVE_FLWR:
    client_app = ClientApp(client_fn=_client_fn)
    server_app = ServerApp(server_fn=_server_fn)


# ----------------------------------------------------------------------------- (a) Flower deployment runtime
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(pred: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM the processes this benchmark started and what they started (SuperExec, app processes)."""
    family = [c for p in procs for c in _children(p.pid)]
    family += [g for c in list(family) for g in _children(c)]
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    end = time.monotonic() + 10
    for pid in family:
        while time.monotonic() < end:
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _app_pyproject(run_config: dict[str, Any]) -> str:
    conf = "\n".join(f"{k} = {json.dumps(v)}" for k, v in run_config.items())
    return f"""[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "tbcim-flower-bench"
version = "1.0.0"
description = "the tbcim FL task on Flower (Bazaar benchmark)"
dependencies = []

[tool.flwr.app]
publisher = "bazaar"

[tool.flwr.app.components]
serverapp = "{APP_MODULE}:server_app"
clientapp = "{APP_MODULE}:client_app"

[tool.flwr.app.config]
{conf}
"""


def run_flower(cfg: MarketConfig, data: TaskData, workers: dict[int, float], tmp: Path) -> dict[str, Any]:
    """SuperLink + one SuperNode per participant on 127.0.0.1, ``flwr run`` the app, stop everything."""
    home, app, logs = tmp / "flwr-home", tmp / "app", tmp / "logs"
    for d in (home, app, logs):
        d.mkdir(parents=True)
    market = tmp / "market.pkl"
    market.write_bytes(pickle.dumps(cfg))
    out = tmp / "flower.json"
    shutil.copy(Path(__file__), app / f"{APP_MODULE}.py")
    (app / "pyproject.toml").write_text(_app_pyproject(
        {"market": str(market), "out": str(out), "epochs": cfg.epochs, "clients": len(workers)}))
    port = _free_port()
    (home / "config.toml").write_text(f'[superlink]\ndefault = "bench"\n\n[superlink.bench]\n'
                                      f'address = "127.0.0.1:{port}"\ninsecure = true\n')
    env = {**os.environ, **FLOWER_ENV, "FLWR_HOME": str(home)}
    bindir = Path(sys.executable).parent
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(cmd: list[str], log: str) -> subprocess.Popen[bytes]:
        with (logs / log).open("wb") as fh:
            p = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=tmp)
        procs.append(p)
        return p

    res: dict[str, Any] = {}
    t0 = time.monotonic()
    try:
        spawn([str(bindir / "flower-superlink"), "--insecure", "--host", "127.0.0.1", "--port", str(port),
               "--disable-runtime-dependency-installation"], "superlink.log")
        _wait_for(lambda: "Uvicorn running" in (logs / "superlink.log").read_text(errors="replace"), 120,
                  "the SuperLink")
        for i, compute in sorted(workers.items()):
            shard = tmp / f"ed-{i}.npz"
            idx = data.parts[i]
            np.savez(shard, X=data.X_train[idx], y=data.y_train[idx])
            spawn([str(bindir / "flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{port}", "--host",
                   "127.0.0.1", "--port", str(_free_port()),
                   "--node-config", f'ed={i} compute={compute!r} shard="{shard}"'], f"supernode-{i}.log")
        _wait_for(lambda: (logs / "superlink.log").read_text(errors="replace").count("Activated node_id")
                  >= len(workers), 120, "the SuperNodes")
        res["up_s"] = time.monotonic() - t0
        t1 = time.monotonic()
        with (logs / "flwr-run.log").open("wb") as fh:
            run = subprocess.run([str(bindir / "flwr"), "run", str(app), "bench", "--stream"], env=env, cwd=tmp,
                                 stdout=fh, stderr=subprocess.STDOUT, timeout=120 + 60 * cfg.epochs)
        res["run_s"] = time.monotonic() - t1
        if run.returncode != 0 or not out.exists():
            tail = (logs / "flwr-run.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"flwr run failed (exit {run.returncode}):\n{tail}")
    finally:
        _stop(procs)
    doc = json.loads(out.read_text())
    res["round_s"] = [doc["round_s"][str(r)] for r in range(1, cfg.epochs + 1)]
    res["accuracy"] = [doc["accuracy"][str(r)] for r in range(1, cfg.epochs + 1)]
    res["failures"] = sum(doc["failures"].values())
    res["fit_s"] = [doc["fit_s"][str(r)] for r in range(1, cfg.epochs + 1)]
    res["params"] = np.asarray(doc["params"], dtype=np.float64)
    return res


# ----------------------------------------------------------------------------- (b) Bazaar network, (c) offline
def run_bazaar(scenario: Path) -> dict[str, Any]:
    """Launch the scenario's network in a temporary directory, run a warm-up task and then task 2 (timed),
    stop it.

    The warm-up task is there because a fresh network's first task pays every node's cold start: here the EDs'
    first reports (their shards are built on first use) miss ``report_s``, so no ES bids and task 1 has no
    winners; its remaining epochs then close at once. Task 2 is the one compared (its workers are
    ``run_task(cfg, 2)``'s).
    """
    from bazaar.node import launcher
    from bazaar.node.markets.tbcim.config import market_config
    from bazaar.node.rounds.driver import run_rounds
    from bazaar.node.scenario import load_scenario

    epochs = market_config(load_scenario(scenario)).epochs
    with tempfile.TemporaryDirectory(prefix="bench-tbcim-flower-net-") as tmp:
        root = Path(tmp) / "net"
        t0 = time.monotonic()
        launcher.net_up(scenario, root)
        up = time.monotonic() - t0
        try:
            warm = list(run_rounds(root, epochs))
            rounds = list(run_rounds(root, epochs))
        finally:
            launcher.net_down(root)
    lat = [r.get("latency_all_ms") for r in rounds]
    return {"up_s": up, "round_s": [None if x is None else x / 1000 for x in lat],
            "leader_s": [(r.get("latency_ms") or 0) / 1000 for r in rounds],
            "accuracy": [r.get("metrics", {}).get("accuracy") for r in rounds],
            "tasks": sorted({r.get("task") for r in rounds}),
            "warmup_winners": (warm[0].get("metrics", {}).get("winners") if warm else None),
            "final_everywhere": sum(1 for r in rounds if r.get("final_everywhere"))}


def run_offline(cfg: MarketConfig, data: TaskData, workers: dict[int, float]) -> dict[str, Any]:
    """The FL task in one process (the same loop the Flower run does, with the market's FedAvg contract)."""
    params = initial_model(cfg, data.X_train.shape[1])
    times, acc = [], []
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        deltas = [ed_update(cfg, data, i, epoch, params, workers[i]) for i in sorted(workers)]
        params = aggregate(params, deltas, [float(len(data.parts[i])) for i in sorted(workers)])
        acc.append(accuracy(cfg, data, params))
        times.append(time.perf_counter() - t0)
    return {"round_s": times, "accuracy": acc, "params": params}


# ----------------------------------------------------------------------------- the report
def percentile(xs: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ys = sorted(xs)
    return ys[min(len(ys) - 1, max(0, round(q * (len(ys) - 1))))]


def _scenario_with_epochs(name: str, epochs: int | None, tmp: Path) -> Path:
    from bazaar.node.scenario import load_scenario

    src = load_scenario(name).source
    if epochs is None:
        return src
    text = src.read_text()
    text = re.sub(r"(?m)^epochs\s*=\s*\d+", f"epochs = {epochs}", text)
    text = re.sub(r"(?m)^rounds\s*=\s*\d+", f"rounds = {epochs}", text)
    path = tmp / src.name
    path.write_text(text)
    return path


def measure(scenario_name: str, epochs: int | None) -> dict[str, Any]:
    """All three runs of the same task; the figures."""
    import flwr

    from bazaar.node.markets.tbcim.config import market_config
    from bazaar.node.scenario import load_scenario

    with tempfile.TemporaryDirectory(prefix="bench-tbcim-flower-") as tmpdir:
        tmp = Path(tmpdir)
        scenario = _scenario_with_epochs(scenario_name, epochs, tmp)
        sc = load_scenario(scenario)
        if sc.market_name != "tbcim":
            raise SystemExit(f"{scenario_name} is a {sc.market_name} scenario, not tbcim")
        cfg = market_config(sc).market
        task = run_task(cfg, BAZAAR_TASK)  # the workers, and the accuracy the network must reproduce
        workers = task.workers
        data = task_data(cfg)
        offline = run_offline(cfg, data, workers)
        flower = run_flower(cfg, data, workers, tmp / "flower")
        bazaar = run_bazaar(scenario)
    later = slice(1, None)
    f_lat, b_lat = flower["round_s"][later], [x for x in bazaar["round_s"][later] if x is not None]
    o_lat = offline["round_s"][later] or offline["round_s"]
    out: dict[str, Any] = {
        "epochs": cfg.epochs, "scenario": sc.name, "flwr_version": flwr.__version__,
        "flower_mode": f"deployment runtime: 1 SuperLink + {len(workers)} SuperNodes on 127.0.0.1 "
                       f"(isolation subprocess), app submitted with flwr run",
        "participants": [sc.names("ed")[i] for i in sorted(workers)],
        "local_epochs": {sc.names("ed")[i]: local_epochs_of(cfg, c) for i, c in sorted(workers.items())},
        "samples": {sc.names("ed")[i]: len(data.parts[i]) for i in sorted(workers)},
        "flower_round_s": flower["round_s"], "bazaar_epoch_s": bazaar["round_s"], "offline_epoch_all_s":
        offline["round_s"],
        "flower_round_p50_s": percentile(f_lat, 0.5) if f_lat else None,
        "flower_round_p95_s": percentile(f_lat, 0.95) if f_lat else None,
        "bazaar_epoch_p50_s": percentile(b_lat, 0.5) if b_lat else None,
        "bazaar_epoch_p95_s": percentile(b_lat, 0.95) if b_lat else None,
        "bazaar_round1_s": bazaar["round_s"][0], "flower_round1_s": flower["round_s"][0],
        "offline_epoch_s": statistics.median(o_lat),
        "flower_up_s": flower["up_s"], "flower_run_s": flower["run_s"], "bazaar_up_s": bazaar["up_s"],
        "bazaar_final_everywhere": bazaar["final_everywhere"], "flower_failures": flower["failures"],
        "bazaar_task": BAZAAR_TASK, "bazaar_tasks_seen": bazaar["tasks"],
        "bazaar_warmup_winners": bazaar["warmup_winners"], "flower_client_fit_s": flower["fit_s"],
        "flower_accuracy": flower["accuracy"][-1], "bazaar_accuracy": bazaar["accuracy"][-1],
        "offline_accuracy": offline["accuracy"][-1], "run_task_accuracy": task.accuracy[-1],
        "rejected_updates": len(task.rejected),
        "accuracy_flower_minus_offline": flower["accuracy"][-1] - offline["accuracy"][-1],
        "max_abs_param_diff_flower_offline": float(np.max(np.abs(flower["params"] - offline["params"]))),
        "flower_accuracy_per_epoch": flower["accuracy"], "bazaar_accuracy_per_epoch": bazaar["accuracy"],
        "offline_accuracy_per_epoch": offline["accuracy"],
    }
    p50b, p50f = out["bazaar_epoch_p50_s"], out["flower_round_p50_s"]
    out["ratio_bazaar_flower"] = p50b / p50f if p50b is not None and p50f else None
    out["ratio_bazaar_offline"] = p50b / out["offline_epoch_s"] if p50b is not None else None
    out["ratio_flower_offline"] = p50f / out["offline_epoch_s"] if p50f is not None else None
    return out


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--epochs", type=int, default=None, help="global epochs (default: the scenario's)")
    ap.add_argument("--scenario", default="tbcim-small", help="a tbcim scenario (shipped name or path)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not HAVE_FLWR:
        print("bench_tbcim_flower: Flower is not installed (pip install -e '.[bench]')", file=sys.stderr)
        sys.exit(2)
    if args.epochs is not None and args.epochs < 2:
        ap.error("--epochs must be at least 2 (epoch 1 is reported apart)")
    os.environ.update(FLOWER_ENV)
    out = measure(args.scenario, args.epochs)
    if args.json:
        print(json.dumps(out))
        return
    who = ", ".join(f"{ed} ({out['samples'][ed]} samples, {out['local_epochs'][ed]} local epochs)"
                    for ed in out["participants"])
    print(f"tbcim FL task ({out['scenario']}): {out['epochs']} global epochs, participants {who}")
    print(f"Flower {out['flwr_version']}, {out['flower_mode']}")
    print(f"{'epoch':>5} {'Flower [s]':>11} {'(training)':>11} {'Bazaar [s]':>11} {'offline [s]':>12} "
          f"{'acc Flower':>11} {'acc Bazaar':>11} {'acc offline':>12}")
    for k in range(out["epochs"]):
        print(f"{k + 1:>5} {_fmt(out['flower_round_s'][k]):>11} {_fmt(out['flower_client_fit_s'][k], '.3f'):>11} "
              f"{_fmt(out['bazaar_epoch_s'][k]):>11} "
              f"{_fmt(out['offline_epoch_all_s'][k], '.3f'):>12} "
              f"{_fmt(out['flower_accuracy_per_epoch'][k], '.4f'):>11} "
              f"{_fmt(out['bazaar_accuracy_per_epoch'][k], '.4f'):>11} "
              f"{_fmt(out['offline_accuracy_per_epoch'][k], '.4f'):>12}")
    print(f"epochs 2..{out['epochs']}: Flower round p50 {_fmt(out['flower_round_p50_s'])} s, p95 "
          f"{_fmt(out['flower_round_p95_s'])} s; Bazaar epoch p50 {_fmt(out['bazaar_epoch_p50_s'])} s, p95 "
          f"{_fmt(out['bazaar_epoch_p95_s'])} s; offline {_fmt(out['offline_epoch_s'], '.3f')} s")
    print(f"epoch 1: Bazaar {_fmt(out['bazaar_round1_s'])} s (with the RANet auction and the ES-ED games), "
          f"Flower {_fmt(out['flower_round1_s'])} s; (training): the slowest Flower client's ed_update")
    print(f"Bazaar: task {out['bazaar_task']} timed (rounds of tasks {out['bazaar_tasks_seen']}) after a warm-up task "
          f"(winners in its auction: {out['bazaar_warmup_winners']})")
    print(f"Bazaar/Flower {_fmt(out['ratio_bazaar_flower'])}x, "
          f"Bazaar/offline {_fmt(out['ratio_bazaar_offline'], '.0f')}x, "
          f"Flower/offline {_fmt(out['ratio_flower_offline'], '.0f')}x")
    print(f"start-up: Flower {out['flower_up_s']:.1f} s (SuperLink + SuperNodes), Bazaar {out['bazaar_up_s']:.1f} s "
          "(net up)")
    print(f"final accuracy: Flower {out['flower_accuracy']:.4f}, Bazaar {_fmt(out['bazaar_accuracy'], '.4f')}, offline "
          f"{out['offline_accuracy']:.4f} (Flower - offline {out['accuracy_flower_minus_offline']:+.2g}; largest "
          f"|parameter difference| {out['max_abs_param_diff_flower_offline']:.1e}); Flower client failures "
          f"{out['flower_failures']}, updates the filter rejected {out['rejected_updates']}")
    print(f"ledger: Bazaar settled {out['bazaar_final_everywhere']}/{out['epochs']} epochs in a block final on every "
          "node (finality certificate; the ESs re-executed FedAvg from the updates pulled by hash, fees paid); "
          "Flower settles nothing: the server's aggregate is taken on trust, nobody is paid")


if __name__ == "__main__":
    main()
