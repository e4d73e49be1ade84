"""The round's joint-MILP reference optimum: solved off the round's critical path, in a short-lived child process,
once per distinct instance (ADR 0143).

The optimum is only a figure of the round's report (welfare gap against the joint MILP); nothing settled depends
on it. Solving it in the CCSP itself put HiGHS (scipy) in the node process for good (≈ 30 MB more peak RSS) and
its solve on the critical path between the offers and the upper result. A child process that imports numpy,
scipy and ``bazaar.mechanisms`` only starts at the clearing, runs beside the rest of the round and exits.

    refs = ReferenceSolver()
    pending = refs.start(ctx, instance)      # right after the clearing; never blocks
    optimum = await pending.result(60.0)     # when the report needs it (None: failed or timed out)
"""

from __future__ import annotations

import hashlib
import pickle
import sys
from collections import OrderedDict
from typing import Any

import trio

from bazaar.mechanisms import hierarchical as mech

from ...logs import Events
from .clearing import multi_instance, single_instance

_events = Events("hierarchical")
CACHE_SIZE = 64
"""Distinct instances whose optimum is kept (a round repeats its instance whenever the bids repeat)."""
MARKER = "BAZAAR-OPTIMUM "
"""The child's result line (HiGHS may print its own lines before it)."""
_CHILD = (
    "import pickle, sys\n"
    "from bazaar.mechanisms import hierarchical as mech\n"
    "inst = pickle.load(sys.stdin.buffer)\n"
    "if isinstance(inst, mech.MultiCcspInstance):\n"
    "    w = float(mech.multi_joint_milp(inst)[3]) if len(inst.demand) else 0.0\n"
    "else:\n"
    "    w = float(mech.joint_milp(inst).welfare)\n"
    f"sys.stdout.write('\\n{MARKER}' + repr(w) + '\\n')\n"
)


def parse_child_output(out: bytes) -> float:
    """The optimum from the child's standard output (its last marker line).

    Raises:
        ValueError: no marker line with a number.
    """
    for line in reversed(out.decode("utf-8", "replace").splitlines()):
        if line.startswith(MARKER):
            return float(line[len(MARKER):])
    raise ValueError("the reference solver printed no optimum")


async def solve_in_child(pickled: bytes, timeout: float) -> float:
    """Solve the joint MILP of the ``pickled`` instance in a child Python process; raises on failure or after
    ``timeout``."""
    with trio.fail_after(timeout):
        done = await trio.run_process([sys.executable, "-c", _CHILD], stdin=pickled,
                                      capture_stdout=True, capture_stderr=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the reference solver exited {done.returncode}: {done.stderr.decode()[-300:]}")
    return parse_child_output(done.stdout)


class PendingOptimum:
    """One instance's optimum, being solved (or already known)."""

    def __init__(self) -> None:
        self.value: float | None = None
        self.done = trio.Event()

    def set(self, value: float | None) -> None:
        """Record the outcome (None: the solve failed) and wake the waiters."""
        self.value = value
        self.done.set()

    async def result(self, timeout: float) -> float | None:
        """The optimum, waiting at most ``timeout`` seconds (None: failed, or not solved in time)."""
        with trio.move_on_after(timeout):
            await self.done.wait()
        return self.value


class ReferenceSolver:
    """Starts one child solve per distinct instance and remembers the last ``CACHE_SIZE`` optima."""

    def __init__(self, timeout_s: float = 120.0) -> None:
        self.timeout_s = timeout_s
        self.cache: OrderedDict[bytes, PendingOptimum] = OrderedDict()
        self.solves = 0
        """Child processes started (a cached instance starts none)."""

    def start(self, spawn: Any, instance: Any) -> PendingOptimum:
        """The optimum of ``instance``: from the cache, or a child solve started in ``spawn``'s nursery
        (``spawn(name, fn, *args)``, e.g. ``RoleContext.spawn``)."""
        pickled = pickle.dumps(instance)
        key = hashlib.sha256(pickled).digest()
        known = self.cache.get(key)
        if known is not None and not (known.done.is_set() and known.value is None):
            self.cache.move_to_end(key)
            return known
        pending = PendingOptimum()
        self.cache[key] = pending
        while len(self.cache) > CACHE_SIZE:
            self.cache.popitem(last=False)
        self.solves += 1
        spawn("reference-optimum", self._solve, pickled, pending)
        return pending

    async def _solve(self, pickled: bytes, pending: PendingOptimum) -> None:
        try:
            pending.set(await solve_in_child(pickled, self.timeout_s))
        except (OSError, RuntimeError, ValueError, trio.TooSlowError) as err:
            _events.warning("reference.failed", error=str(err)[:200])
            pending.set(None)
        finally:
            if not pending.done.is_set():  # cancelled (the node stops): nobody waits forever
                pending.set(None)


def reference_instance(p: dict[str, Any], book: list[Any], mesps: list[int]) -> mech.HierarchicalInstance | \
        mech.MultiCcspInstance:
    """The instance whose joint MILP is the round's reference (the market :func:`clear` cleared)."""
    if isinstance(p["ccsp_capacity"], list):
        return multi_instance(p, book, mesps)
    return single_instance(p, book, mesps)
