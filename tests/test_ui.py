"""HTTP tests of the web page's routes: the page, its assets, the scenario as YAML, media thumbnails."""

from __future__ import annotations

import re
from importlib import resources

import pytest
import yaml
from support import advance, send

from emulator.control.ui import ASSETS
from emulator.keys import SERVICE

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x00" * 16


def static_text(name: str) -> str:
    return resources.files("emulator.control").joinpath("static", name).read_text(encoding="utf-8")


@pytest.mark.parametrize("path", ["/", "/_emulator/ui"])
async def test_page_is_served_at_root_and_under_control_prefix(client, path):
    resp = await client.get(path)
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert resp.charset == "utf-8"
    policy = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    html = await resp.text()
    assert "<title>Bandwidth emulator</title>" in html


async def test_every_asset_the_page_references_is_served(client):
    html = await (await client.get("/")).text()
    referenced = re.findall(r'(?:src|href)="(/_emulator/ui/static/[^"]+)"', html)
    assert sorted(referenced) == ["/_emulator/ui/static/app.js", "/_emulator/ui/static/style.css"]
    for path in referenced:
        resp = await client.get(path)
        assert resp.status == 200, path
        assert resp.content_type == ASSETS[path.rsplit("/", 1)[1]]
        assert "Content-Security-Policy" in resp.headers
        assert await resp.text() == static_text(path.rsplit("/", 1)[1])


@pytest.mark.parametrize("name", ["index.html", "nope.js", "..%2F..%2Fcli.py", "..%2Fapi%2Fui.py"])
async def test_unknown_assets_are_404(client, name):
    resp = await client.get(f"/_emulator/ui/static/{name}")
    assert resp.status == 404
    body = await resp.json()
    assert body["type"] == "not-found"
    assert "app.js, style.css" in body["description"]


async def test_posting_to_the_page_is_405(client):
    resp = await client.post("/", data="x")
    assert resp.status == 405
    assert (await resp.json())["type"] == "method-not-allowed"


def test_page_never_turns_data_into_markup():
    # Message text, tags and numbers come from the app under test: the page must build
    # its DOM from text nodes, and the security policy forbids inline script anyway.
    script = static_text("app.js")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    html = static_text("index.html")
    assert not re.search(r"<script(?![^>]*\ssrc=)", html), "inline script would be blocked by the policy"
    assert not re.search(r"\sstyle=|\son[a-z]+=", html), "inline styles and handlers would be blocked by the policy"


async def test_scenario_yaml_matches_the_active_scenario(client):
    resp = await client.get("/_emulator/ui/scenario.yaml")
    assert resp.status == 200
    assert resp.content_type == "application/yaml"
    as_json = await (await client.get("/_emulator/scenario")).json()
    assert yaml.safe_load(await resp.text()) == as_json

    put = await client.put("/_emulator/scenario", data="name: replaced\nmagicNumbers: false\n")
    assert put.status == 200
    replaced = yaml.safe_load(await (await client.get("/_emulator/ui/scenario.yaml")).text())
    assert replaced["name"] == "replaced" and replaced["magicNumbers"] is False


def _store_media(client, media_id: str, content: bytes, content_type: str, account: str = "9900000") -> None:
    client.app[SERVICE].media.put(account, media_id, content, content_type)


@pytest.mark.parametrize(
    "media_id, path", [("pic.png", "pic.png"), ("folder/pic.png", "folder/pic.png"), ("folder/pic.png", "folder%2Fpic.png")]
)
async def test_stored_images_are_served_for_thumbnails(client, media_id, path):
    _store_media(client, media_id, PNG, "image/png")
    resp = await client.get(f"/_emulator/ui/media/9900000/{path}")
    assert resp.status == 200
    assert resp.content_type == "image/png"
    assert await resp.read() == PNG
    assert "sandbox" in resp.headers["Content-Security-Policy"]
    assert "Content-Disposition" not in resp.headers


@pytest.mark.parametrize("content_type", ["text/html", "image/svg+xml", "application/javascript", ""])
async def test_other_media_is_only_offered_as_a_download(client, content_type):
    # Uploaded files are the app's: served inline on this origin, HTML or SVG could run script.
    _store_media(client, "page.html", b"<script>alert(1)</script>", content_type)
    resp = await client.get("/_emulator/ui/media/9900000/page.html")
    assert resp.status == 200
    assert resp.content_type == "application/octet-stream"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="page.html"'
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_media_of_another_account_or_unknown_is_404(client):
    _store_media(client, "pic.png", PNG, "image/png", account="1111111")
    resp = await client.get("/_emulator/ui/media/9900000/pic.png")
    assert resp.status == 404
    assert (await resp.json())["description"] == "no media 'pic.png' in account '9900000'"
    assert (await client.get("/_emulator/ui/media/1111111/other.png")).status == 404
    assert (await client.get("/_emulator/ui/media/1111111/pic.png")).status == 200


async def test_change_counter_moves_with_sends_attempts_and_resets(client, receiver):
    async def version() -> int:
        resp = await client.get("/_emulator/ui/changes")
        assert resp.status == 200
        return (await resp.json())["version"]

    start = await version()
    assert await version() == start  # reading changes nothing
    await send(client, {"applicationId": "a", "from": "+15554443333", "to": ["+15552221111"], "text": "hi"})
    after_send = await version()
    assert after_send > start
    await advance(client, 5)
    await receiver.wait_for(1)
    after_attempt = await version()
    assert after_attempt > after_send
    await client.post("/_emulator/reset")
    assert await version() > after_attempt
