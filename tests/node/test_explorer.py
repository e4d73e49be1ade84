"""The node's HTTP status and explorer endpoints (real HTTP on 127.0.0.1, in-memory nodes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from bazaar.node.httpapi import HttpError, http_json

from .harness import memory_net, small_scenario


async def test_status_and_explorer(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        cpp = nodes["cpp"]
        with trio.fail_after(30):
            summary = await cpp.engine.play()
        port = nodes["consumer-1"].http_port
        status = await http_json(port, "GET", "/status")
        assert status["name"] == "consumer-1" and status["height"] >= 1 and status["peers"] == 3
        listing = await http_json(port, "GET", "/blocks?limit=5")
        assert listing["blocks"][0]["height"] == summary["height"]
        block = await http_json(port, "GET", f"/block?height={summary['height']}")
        types = {t["type"] for t in block["txs"]}
        assert {"tx/escrow_lock", "tx/record", "tx/model_commit", "tx/escrow_release"} <= types
        assert block["consensus_rule"] == "pol"
        acct = await http_json(port, "GET", f"/account?key={cpp.key.public.hex()}")
        assert acct["balance"] > 0 and acct["nonce"] >= 1
        for path, code in (("/block?height=x", 400), ("/block?height=999", 400), ("/account?key=zz", 400),
                           ("/nope", 404)):
            with pytest.raises(HttpError) as err:
                await http_json(port, "GET", path)
            assert err.value.status == code
        with pytest.raises(HttpError) as err:
            await http_json(port, "POST", "/status", {"x": 1})
        assert err.value.status == 405
        with pytest.raises(HttpError) as err:  # only the leader runs rounds
            await http_json(port, "POST", "/round", {})
        assert err.value.status in (404, 405)
