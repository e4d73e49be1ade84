"""``GET /final?height=H&wait=S``: a node answers as soon as ``H`` is final there (one request per node replaces
polling ``/status`` while a round finalizes, docs/adr/0149), after ``S`` seconds otherwise, and refuses bad
parameters with 400."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from bazaar.node.httpapi import HttpError, http_json
from bazaar.node.runtime import wait_final

from .harness import memory_net, small_scenario


async def test_final_answers_when_the_height_is_final_and_after_the_wait_otherwise(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        leader, other = nodes["cpp"], nodes["consumer-1"]
        target = other.chain.finalized_height + 1
        answers: list[dict[str, object]] = []

        async def ask() -> None:
            answers.append(await wait_final(other, {"height": str(target), "wait": "60"}))

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask)
                summary = await leader.engine.play()
        assert summary["final"] and summary["height"] >= target
        (answer,) = answers
        assert isinstance(answer["finalized"], int) and answer["finalized"] >= target
        assert isinstance(answer["final_at_ms"], int)  # the node's own stamp of that height
        with trio.fail_after(30):  # a height nobody reached: answered after the wait, not an error
            later = await wait_final(other, {"height": str(10**6), "wait": "0.2"})
        assert later["finalized"] < 10**6 and later["final_at_ms"] is None
        over_http = await http_json(other.http_port, "GET", f"/final?height={target}&wait=1", timeout=10)
        assert over_http["finalized"] >= target and over_http["final_at_ms"] == answer["final_at_ms"]


@pytest.mark.parametrize("query", [{}, {"height": "x"}, {"height": "1", "wait": "-1"}, {"height": "1", "wait": "61"},
                                   {"height": "-2"}])
async def test_bad_parameters_are_refused_with_400(query: dict[str, str], tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        with pytest.raises(HttpError) as err:
            await wait_final(nodes["consumer-0"], query)
        assert err.value.status == 400
