"""The joint-MILP reference of a hierarchical round: solved in a child process, once per distinct instance, and a
failed solve gives an unknown optimum (None), never a crash."""

from __future__ import annotations

import numpy as np
import pytest
import trio

from bazaar.mechanisms import hierarchical as mech
from bazaar.node.markets.hierarchical import reference as ref


def _instance(bid: float) -> mech.HierarchicalInstance:
    return mech.make_instance([1.0, 2.0], [bid, 4.0], np.array([2.0]), np.array([0.1]), 5.0, 1.0, 0.1, 0.1,
                              np.ones((2, 1), bool))


async def test_a_repeated_instance_is_solved_once_in_a_child_and_matches_the_in_process_optimum() -> None:
    solver = ref.ReferenceSolver(timeout_s=60.0)
    async with trio.open_nursery() as nursery:
        def spawn(name: str, fn, *args) -> None:  # type: ignore[no-untyped-def]
            nursery.start_soon(fn, *args)

        first = solver.start(spawn, _instance(3.0))
        again = solver.start(spawn, _instance(3.0))
        other = solver.start(spawn, _instance(5.0))
        assert again is first and solver.solves == 2
        assert await first.result(60.0) == pytest.approx(mech.joint_milp(_instance(3.0)).welfare, abs=1e-9)
        assert await other.result(60.0) == pytest.approx(mech.joint_milp(_instance(5.0)).welfare, abs=1e-9)


async def test_a_failed_child_gives_no_optimum_and_is_retried_next_time() -> None:
    solver = ref.ReferenceSolver(timeout_s=60.0)
    async with trio.open_nursery() as nursery:
        def spawn(name: str, fn, *args) -> None:  # type: ignore[no-untyped-def]
            nursery.start_soon(fn, *args)

        bad = solver.start(spawn, {"not": "an instance"})  # the child raises: exit status 1
        assert await bad.result(60.0) is None and bad.done.is_set()
        retry = solver.start(spawn, {"not": "an instance"})
        assert retry is not bad and solver.solves == 2
        assert await retry.result(60.0) is None


def test_the_child_output_is_read_from_its_marker_line() -> None:
    assert ref.parse_child_output(b"Running HiGHS 1.7\nsolved\n\nBAZAAR-OPTIMUM 6.25\n") == 6.25
    with pytest.raises(ValueError):
        ref.parse_child_output(b"Running HiGHS 1.7\n")
