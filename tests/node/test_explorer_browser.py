"""The explorer page in a real browser: headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by
selenium) opens the leader's page of a running in-memory test network, a round is played, and the page shows the
round's block, then its finality, without a reload. Skipped, with the reason, where the browser is absent.

Artefacts (git-ignored): ``test-artifacts/explorer.png`` (the screenshot) and ``test-artifacts/explorer-browser.json``
(the figures: page load time, time from a block's finality on the node to the page showing it), also printed.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from bazaar.node.httpapi import http_json
from bazaar.node.launcher import NetDir

from .harness import memory_net, small_scenario

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless Chromium is absent (Debian: apt-get install chromium chromium-driver)")


def _browser() -> Any:
    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1100", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


async def test_page_follows_new_blocks_in_a_browser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "net"
    async with memory_net(small_scenario(tmp_path), root) as nodes:
        cpp = nodes["cpp"]
        finality = cpp.chain.finality
        recorded = finality.on_final
        final_at: dict[int, float] = {}

        def on_final(height: int, block_hash: bytes) -> None:
            final_at.setdefault(height, time.time() * 1000)
            if recorded is not None:
                recorded(height, block_hash)

        finality.on_final = on_final
        token = NetDir(root).control_token()
        with trio.fail_after(120):  # the page loads a chain with a block, a round and its escrows settled
            await http_json(cpp.http_port, "POST", "/round", {}, token=token, timeout=120)
        url = f"http://127.0.0.1:{cpp.http_port}/"
        driver = await trio.to_thread.run_sync(_browser)
        try:
            def load() -> dict[str, Any]:
                driver.set_page_load_timeout(90)
                driver.get(url)
                WebDriverWait(driver, 90).until(lambda d: d.find_element(By.TAG_NAME, "body")
                                                .get_attribute("data-loaded-ms"))
                nav = driver.execute_script(
                    "const n = performance.getEntriesByType('navigation')[0];"
                    "return {load: n.loadEventEnd, dom: n.domContentLoadedEventEnd};")
                body = driver.find_element(By.TAG_NAME, "body")
                return {"load_event_ms": nav["load"], "dom_ms": nav["dom"],
                        "first_render_ms": float(body.get_attribute("data-loaded-ms")),
                        "height": int(body.get_attribute("data-height"))}

            loaded = await trio.to_thread.run_sync(load)
            assert loaded["height"] == cpp.chain.height
            name = await trio.to_thread.run_sync(lambda: driver.find_element(By.ID, "node-name").text)
            assert name == "cpp"

            with trio.fail_after(120):
                summary = await http_json(cpp.http_port, "POST", "/round", {}, token=token, timeout=120)
            assert summary["final"]
            height = summary["height"]
            assert height > loaded["height"]

            def shown_final() -> dict[str, Any]:
                WebDriverWait(driver, 90, poll_frequency=0.05).until(
                    lambda d: d.find_elements(By.CSS_SELECTOR, f"#block-{height}[data-final='1']"))
                WebDriverWait(driver, 60).until(
                    lambda d: d.find_elements(By.CSS_SELECTOR, f"#round-table tr[data-round='{summary['round']}']"))
                row = driver.find_element(By.ID, f"block-{height}")
                seen = driver.execute_script(f"return window.bazaarSeen[{height}];")
                reloaded = driver.execute_script("return performance.getEntriesByType('navigation').length;")
                return {"row": row.text, "seen": seen, "navigations": reloaded,
                        "round_row": driver.find_element(By.CSS_SELECTOR,
                                                         f"#round-table tr[data-round='{summary['round']}']").text,
                        "accounts": driver.find_element(By.ID, "account-table").text}

            shown = await trio.to_thread.run_sync(shown_final)
            assert shown["navigations"] == 1  # no reload: the same document followed the chain
            assert "final" in shown["row"] and cpp.name_of(cpp.chain.block(height).header.proposer) in shown["row"]
            assert f"{summary['price']:.3f}" in shown["round_row"]
            assert "consumer-0" in shown["accounts"] and "100.00" in shown["accounts"]  # names and tokens
            ARTIFACTS.mkdir(exist_ok=True)
            shot = tmp_path / "explorer.png"
            assert await trio.to_thread.run_sync(driver.save_screenshot, str(shot))
            shutil.copy(shot, ARTIFACTS / "explorer.png")
        finally:
            await trio.to_thread.run_sync(driver.quit)
    figures = {
        "page_load_event_ms": round(loaded["load_event_ms"], 1),
        "page_first_render_ms": round(loaded["first_render_ms"], 1),
        "final_to_shown_ms": round(shown["seen"]["final"] - final_at[height], 1),
        "block_height": height, "round_latency_ms": summary["latency_ms"],
    }
    (ARTIFACTS / "explorer-browser.json").write_text(json.dumps(figures, indent=1) + "\n")
    with capsys.disabled():
        print(f"\nexplorer browser figures: {json.dumps(figures)} (screenshot: {ARTIFACTS / 'explorer.png'})")
