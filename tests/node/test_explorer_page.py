"""The explorer page, its JSON views, its event stream and ``/metrics`` on in-memory nodes (real HTTP on 127.0.0.1;
the browser test is test_explorer_browser.py)."""

from __future__ import annotations

import json
from pathlib import Path

import h11
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from bazaar.node.httpapi import HttpError, http_json, http_request
from bazaar.node.launcher import NetDir

from .harness import memory_net, small_scenario


async def _raw(port: int, data: bytes, timeout: float = 10) -> bytes:
    with trio.fail_after(timeout):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(data)
            buf = bytearray()
            while chunk := await stream.receive_some(65536):
                buf += chunk
    return bytes(buf)


class EventReader:
    """A minimal server-sent events client over h11 (the page's EventSource, in a test)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)
        self.buffer = b""
        self.status = 0
        self.headers: dict[str, str] = {}

    async def open(self) -> None:
        await self.stream.send_all(self.conn.send(h11.Request(method="GET", target="/events",
                                                              headers=[("Host", "127.0.0.1")])))
        await self.stream.send_all(self.conn.send(h11.EndOfMessage()))

    async def next_event(self) -> tuple[str, dict]:
        while b"\n\n" not in self.buffer:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                self.status = event.status_code
                self.headers = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                self.buffer += bytes(event.data)
            else:
                raise AssertionError(f"stream ended: {event}")
        block, self.buffer = self.buffer.split(b"\n\n", 1)
        fields = dict(line.split(": ", 1) for line in block.decode().splitlines() if not line.startswith(":"))
        if "event" not in fields:
            return await self.next_event()
        return fields["event"], json.loads(fields["data"])


async def test_page_views_events_and_metrics(tmp_path: Path) -> None:
    root = tmp_path / "net"
    async with memory_net(small_scenario(tmp_path), root) as nodes:
        cpp, consumer = nodes["cpp"], nodes["consumer-1"]
        token = NetDir(root).control_token()
        port = consumer.http_port

        status, headers, page = await http_request(port, "GET", "/")
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert b"/web/explorer.js" in page and "default-src 'self'" in headers["content-security-policy"]
        for path, kind in (("/web/explorer.js", "text/javascript"), ("/web/explorer.css", "text/css")):
            status, headers, body = await http_request(port, "GET", path)
            assert status == 200 and headers["content-type"].startswith(kind) and body

        with trio.fail_after(20):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            reader = EventReader(stream)
            await reader.open()
            with trio.fail_after(10):
                kind, first = await reader.next_event()
            assert reader.status == 200 and reader.headers["content-type"] == "text/event-stream"
            assert kind == "head" and first["height"] == consumer.chain.height
            with trio.fail_after(60):
                summary = await http_json(cpp.http_port, "POST", "/round", {}, token=token, timeout=60)
            assert summary["final"]
            with trio.fail_after(20):  # the stream reports the new block without being asked again
                while True:
                    kind, head = await reader.next_event()
                    if head["finalized"] >= summary["height"]:
                        break
            assert kind == "head" and head["height"] >= summary["height"]

        for node in nodes.values():  # read-only: every POST is a token-guarded local control
            posts = {path for method, path in node.http.routes if method == "POST"}
            assert posts == {path for _, path in node.http.control} <= {"/round", "/stop", "/partition", "/clock"}
            assert {method for method, _ in node.http.routes} == {"GET", "POST"}

        overview = await http_json(port, "GET", "/overview")
        assert overview["name"] == "consumer-1" and overview["market"] == "ai-bazaar" and overview["peers"] == 3

        listing = await http_json(port, "GET", "/blocks?limit=5")
        top = next(b for b in listing["blocks"] if b["height"] == summary["height"])
        assert top["proposer_name"] in nodes and top["final"]
        assert top["signers"] and set(top["signers"]) <= set(nodes)
        block = await http_json(port, "GET", f"/block?height={summary['height']}")
        assert set(block["certificate"]["signer_names"]) <= set(nodes)
        assert {t["sender_name"] for t in block["txs"]} <= set(nodes)

        accounts = await http_json(port, "GET", "/accounts")
        by_name = {a["name"]: a for a in accounts["accounts"]}
        assert set(nodes) <= set(by_name)
        state = consumer.chain.state
        assert by_name["cpp"]["balance_tokens"] == state.balance(cpp.key.public) / 1e6
        assert by_name["consumer-0"]["stake_tokens"] == 100.0  # the scenario's stake, in tokens
        held = sum(a["balance_tokens"] + a["stake_tokens"] + a["unbonding_tokens"] for a in accounts["accounts"])
        held += sum(e["amount_tokens"] for e in accounts["escrows"])
        assert held == pytest.approx(accounts["supply_tokens"]["total"])

        led = await http_json(cpp.http_port, "GET", "/rounds")
        assert led["leads"] and [c["header"] for c in led["columns"]][:2] == ["price", "p*"]
        row = led["rounds"][0]
        assert row["round"] == summary["round"] and row["reported"] and row["final"]
        assert row["cells"][0] == f"{summary['price']:.3f}" and row["phase"] == summary["phase"]
        seen = await http_json(port, "GET", "/rounds")
        assert not seen["leads"] and seen["leader"] == "cpp"
        assert seen["rounds"][0]["round"] == summary["round"] and summary["height"] in seen["rounds"][0]["heights"]
        assert seen["rounds"][0]["cells"] == ["-"] * len(seen["columns"])

        status, headers, text = await http_request(cpp.http_port, "GET", "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(text.decode())}
        value = {f.name: f.samples[0].value for f in families.values() if len(f.samples) == 1}
        assert value["bazaar_chain_height"] == cpp.chain.height
        assert value["bazaar_chain_finalized_height"] == cpp.chain.finalized_height
        assert value["bazaar_peers"] == 3 and "bazaar_mempool_transactions" in value
        assert value["process_resident_memory_bytes"] > 10e6
        received = {s.labels["type"]: s.value for s in families["bazaar_messages_received"].samples
                    if s.name.endswith("_total")}
        assert received["ai-bazaar/demand"] >= 1  # the consumers gossip their demands; blocks come pushed (ADR 0192)
        events = {s.labels["event"]: s.value for s in families["bazaar_transport_events"].samples
                  if s.name.endswith("_total")}
        assert events["requests_served"] >= 1  # the validators' votes come to the cpp, the aggregator (ADR 0189)
        sent = {s.labels["type"]: s.value for s in families["bazaar_messages_sent"].samples
                if s.name.endswith("_total")}
        assert sent["ai-bazaar/price"] >= 1
        latency = {s.name: s.value for s in families["bazaar_round_latency_seconds"].samples}
        assert latency["bazaar_round_latency_seconds_count"] == 1
        assert latency["bazaar_round_latency_seconds_sum"] == pytest.approx(summary["latency_ms"] / 1000)
        imports = {s.name: s.value for s in families["bazaar_block_import_seconds"].samples}
        assert imports["bazaar_block_import_seconds_count"] >= 1
        assert "bazaar_messages_rejected" in families
        info = families["bazaar_node_info"].samples[0].labels
        assert info["name"] == "cpp" and info["market"] == "ai-bazaar"


async def test_http_refusals(tmp_path: Path) -> None:
    """Bad requests get a status and a JSON error, never a dropped connection; other hosts and origins are
    refused; only GET and POST exist."""
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        port = nodes["consumer-0"].http_port
        answer = await _raw(port, b"GARBAGE\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 ")
        answer = await _raw(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: " + b"a" * 100_000 + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 431 ")
        answer = await _raw(port, b"POST /stop HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 999999\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 413 ")
        answer = await _raw(port, b"GET /status HTTP/1.1\r\nHost: evil.example\r\n\r\n")  # DNS rebinding
        assert answer.startswith(b"HTTP/1.1 403 ") and b"loopback only" in answer
        answer = await _raw(port, b"GET /status HTTP/1.1\r\nHost: localhost:1\r\nOrigin: http://evil.example\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 403 ")
        answer = await _raw(port, b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://127.0.0.1:9\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 ")
        answer = await _raw(port, b"GET /status HTTP/1.0\r\n\r\n")  # no Host: a local tool, allowed
        assert answer.startswith(b"HTTP/1.1 200 ")
        for method in ("PUT", "DELETE"):
            with pytest.raises(HttpError) as err:
                await http_json(port, method, "/status")
            assert err.value.status == 405
        with pytest.raises(HttpError) as err:
            await http_json(port, "GET", "/block?height=nope")
        assert err.value.status == 400
        answer = await _raw(port, b"", timeout=15)  # nothing sent at all: 408 after the request deadline (10 s)
        assert answer.startswith(b"HTTP/1.1 408 ")
