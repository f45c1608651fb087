"""Bandwidth's official Node SDKs (bandwidth-sdk 8.x and the legacy @bandwidth/messaging,
which validates responses at runtime) against a running emulator: send, list and media, and
a multi-channel RBM send with SMS fallback through bandwidth-sdk's MultiChannelApi.

Needs node and npm; the SDKs are installed into tests/node/node_modules (git-ignored) on
first use, or by ``make node-deps``. Skipped, with the reason, when node or npm is absent
or the install cannot reach the npm registry.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from support import Receiver

from emulator.app import create_app
from emulator.config import Settings

pytestmark = pytest.mark.node

NODE_DIR = Path(__file__).parent / "node"
ACCOUNT = "9900000"


@pytest.fixture(scope="module")
def node_sdk() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run Bandwidth's Node SDK; install Node.js 18+ to run this test")
    if not (NODE_DIR / "node_modules" / "bandwidth-sdk").is_dir() or not (
        NODE_DIR / "node_modules" / "@bandwidth" / "messaging"
    ).is_dir():
        result = subprocess.run(
            [npm, "ci" if (NODE_DIR / "package-lock.json").exists() else "install", "--no-audit", "--no-fund"],
            cwd=NODE_DIR, capture_output=True, text=True, timeout=300,
        )
        if result.returncode != 0:
            pytest.skip(f"could not install the Node SDKs from the npm registry: {result.stderr.strip()[-500:]}")
    return node


@pytest.fixture
async def base_url(receiver: Receiver) -> AsyncIterator[str]:
    runner = web.AppRunner(create_app(Settings(clock="manual", callback_url=receiver.url)), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    await runner.cleanup()


async def run_node(node: str, script: str, *args: str) -> Any:
    """Run one of tests/node's scripts; its standard output is JSON. Killed if it takes over 60 s."""
    process = await asyncio.create_subprocess_exec(
        node, str(NODE_DIR / script), *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:  # timed out, or the test was interrupted
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    return json.loads(stdout)


async def test_node_sdks_send_list_and_media(node_sdk: str, base_url: str, receiver: Receiver):
    out = await run_node(node_sdk, "sdk_check.js", base_url, ACCOUNT)

    assert out["create"]["status"] == 202
    message = out["create"]["data"]
    assert message["direction"] == "out" and message["tag"] == "node" and message["to"] == ["+15552221111"]

    assert out["list"]["status"] == 200
    [row] = out["list"]["data"]["messages"]
    assert row["messageId"] == message["id"] and row["messageStatus"] == "DELIVERED"
    assert out["list"]["data"]["pageInfo"] == {}
    assert out["listFiltered"]["data"]["totalCount"] == 1

    assert out["upload"]["status"] == 204
    assert out["get"] == {"status": 200, "contentType": "image/png", "cacheControl": "no-cache", "bytes": True}
    assert out["listMedia"]["status"] == 200
    [item] = out["listMedia"]["data"]
    assert item["mediaName"] == "dir/node.png" and item["contentLength"] == 12

    assert out["legacyList"]["status"] == 200
    assert [m["messageId"] for m in out["legacyList"]["data"]["messages"]] == [message["id"]]
    assert out["legacyUpload"] == {"status": 204}
    assert out["legacyListMedia"] == {"status": 200, "names": ["dir/node.png", "legacy.png"]}

    assert out["delete"]["status"] == 204
    assert out["deleteAgain"]["status"] == 204  # deleting twice succeeds, as Bandwidth's smoke test expects
    assert [e["type"] for e in receiver.events] == ["message-delivered"]


async def test_node_sdk_sends_rbm_with_fallback_and_gets_the_suggestion_response(
    node_sdk: str, base_url: str, receiver: Receiver
):
    out = await run_node(node_sdk, "multichannel_check.js", base_url, ACCOUNT)

    assert out["create"]["status"] == 202
    data = out["create"]["data"]["data"]
    assert data["tag"] == "node-rbm" and [c["owner"] for c in data["channelList"]] == ["BandwidthRBM", "+15554443333"]
    assert data["channelList"][0]["content"]["cardContent"]["title"] == "Table for two"

    assert out["invalid"]["status"] == 400
    assert [e["source"]["field"] for e in out["invalid"]["data"]["errors"]] == ["channelList"]

    events = {e["type"]: e for e in receiver.events}
    assert set(events) == {"message-delivered", "suggestion-response"}
    assert events["message-delivered"]["message"]["channel"] == "RBM"
    assert events["suggestion-response"]["message"]["suggestionResponse"] == {
        "text": "Confirm",
        "postbackData": "Y29uZmlybQ==",
        "pairedMessageId": data["id"],
    }
