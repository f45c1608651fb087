"""What a web page, a rebound DNS name or a stored file cannot do to the emulator, and the
control token (docs/security.md). The same in a real browser: tests/test_ui_browser.py."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from support import ACCOUNT, AUTH

from emulator.testing.client import AsyncClient, EmulatorError
from emulator.testing.runner import Emulator
from emulator.web.exposure import Exposure, host_name

SMS = {"applicationId": "app-1", "from": "+15554443333", "to": ["+15552221111"], "text": "hi"}
INBOUND = {"from": "+15552221111", "to": "+15554443333", "text": "STOP"}


# -- Host --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("LocalHost:8080", "localhost"),
        ("[::1]:8080", "::1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("a.test.", "a.test"),
    ],
)
def test_host_names_are_read_without_their_port(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    ("exposure", "allowed", "refused"),
    [
        (Exposure.build("127.0.0.1"), ["localhost:1", "app.localhost", "127.0.0.1:8080", "[::1]:8080", "10.0.0.7", None,
                                       "bandwidth:8080", "emulator"],
         ["evil.example", "evil.example:8080", "localhost.evil.example", "127.0.0.1.nip.io"]),
        (Exposure.build("0.0.0.0", ["emulator", ".example.test"]), ["emulator:8080", "example.test", "a.example.test"],
         ["emulator.evil", "example.test.evil"]),
        (Exposure.build("devbox.lan"), ["devbox.lan:8080"], ["other.lan"]),
        (Exposure.build("0.0.0.0", ["*"]), ["anything.example"], []),
    ],
)
def test_which_hosts_are_allowed(exposure: Exposure, allowed: list[str | None], refused: list[str]) -> None:
    assert [h for h in allowed if not exposure.host_allowed(h)] == []
    assert [h for h in refused if exposure.host_allowed(h)] == []


async def test_an_unknown_host_is_refused_on_every_path(client: TestClient) -> None:
    evil = {"Host": "rebound.example:8080"}
    resp = await client.get("/_emulator/scenario", headers=evil)
    assert resp.status == 403
    body = await resp.json()
    assert body["type"] == "forbidden" and "--allowed-hosts rebound.example" in body["description"]
    resp = await client.post(f"/api/v2/users/{ACCOUNT}/messages", json=SMS, headers={**AUTH, **evil})
    assert resp.status == 403 and (await resp.json())["type"] == "forbidden"
    assert (await client.get("/", headers=evil)).status == 403
    # The same requests by a name that cannot be rebound.
    for host in ("localhost", f"127.0.0.1:{client.port}"):
        assert (await client.get("/_emulator/scenario", headers={"Host": host})).status == 200


async def test_allowed_hosts_open_other_names(make_client: Any) -> None:
    client = await make_client(allowed_hosts=("emulator.internal",))
    assert (await client.get("/_emulator/health", headers={"Host": "emulator.internal:8080"})).status == 200
    assert (await client.get("/_emulator/health", headers={"Host": "other.internal:8080"})).status == 403


# -- cross-origin state changes ------------------------------------------------------------


def _other_origin(client: TestClient) -> dict[str, str]:
    return {"Origin": f"http://127.0.0.1:{client.port + 1 if client.port < 65535 else 1}"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://127.0.0.1:9"},
        {"Origin": "null"},
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # another port of the same host is the same site
        {"Origin": "http://127.0.0.1:9", "Content-Type": "text/plain"},  # a form post needs no preflight
    ],
)
async def test_a_cross_origin_page_cannot_change_state(client: TestClient, headers: dict[str, str]) -> None:
    clock = await (await client.get("/_emulator/clock")).json()
    attempts = [
        client.post("/_emulator/inbound", json=INBOUND, headers=headers),
        client.post("/_emulator/clock/advance", json={"seconds": 3600}, headers=headers),
        client.put("/_emulator/scenario", data="name: pwned\n", headers=headers),
        client.post("/_emulator/reset", headers=headers),
        client.post(f"/api/v2/users/{ACCOUNT}/messages", json=SMS, headers={**AUTH, **headers}),
        client.put(f"/api/v2/users/{ACCOUNT}/media/x.html", data=b"<script>", headers={**AUTH, **headers, "Content-Type": "text/html"}),
    ]
    for attempt in attempts:
        resp = await attempt
        assert resp.status == 403, await resp.text()
        body = await resp.json()
        assert body["type"] == "forbidden" and "cross-origin" in body["description"]
    assert (await (await client.get("/_emulator/messages")).json())["messages"] == []
    assert await (await client.get("/_emulator/clock")).json() == clock
    assert (await (await client.get("/_emulator/scenario")).json())["name"] == "default"
    assert (await client.get(f"/api/v2/users/{ACCOUNT}/media/x.html", headers=AUTH)).status == 404


async def test_same_origin_and_server_side_requests_still_work(client: TestClient) -> None:
    own = {"Origin": f"http://127.0.0.1:{client.port}", "Sec-Fetch-Site": "same-origin"}
    assert (await client.post("/_emulator/inbound", json=INBOUND, headers=own)).status == 201
    # A page's reads are not refused (the browser keeps the answer from another origin).
    assert (await client.get("/_emulator/messages", headers=_other_origin(client))).status == 200
    # SDKs and tools send no Origin at all.
    assert (await client.post(f"/api/v2/users/{ACCOUNT}/messages", json=SMS, headers=AUTH)).status == 202
    assert (await client.post("/_emulator/clock/advance", json={"seconds": 1})).status == 200


# -- stored media ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "attachment"),
    [
        ("text/html", True),
        ("text/html; charset=utf-8", True),
        ("image/svg+xml", True),
        ("application/xhtml+xml", True),
        ("text/xml", True),
        ("application/javascript", True),
        ("application/pdf", True),
        ("image/png", False),
        ("video/mp4", False),
        ("text/plain", False),
    ],
)
async def test_stored_media_never_runs_as_a_page(client: TestClient, content_type: str, attachment: bool) -> None:
    media_url = f"/api/v2/users/{ACCOUNT}/media/dir/planted"
    body = b"<html><script>fetch('/_emulator/scenario')</script></html>"
    resp = await client.put(media_url, data=body, headers={**AUTH, "Content-Type": content_type})
    assert resp.status == 204
    for url, headers in ((media_url, AUTH), (f"/_emulator/ui/media/{ACCOUNT}/dir/planted", {})):
        resp = await client.get(url, headers=headers)
        assert resp.status == 200
        assert await resp.read() == body
        assert "sandbox" in resp.headers["Content-Security-Policy"]
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        disposition = resp.headers.get("Content-Disposition", "")
        if attachment:
            assert disposition.startswith("attachment"), (url, disposition)
    # The Bandwidth route keeps the stored type: the SDKs read it.
    resp = await client.get(media_url, headers=AUTH)
    assert resp.headers["Content-Type"].startswith(content_type.split(";")[0])
    if not attachment:
        assert resp.headers["Content-Disposition"].startswith("inline")


# -- the control token -------------------------------------------------------------------------

TOKEN = "s3cret-token"


async def test_the_control_token_guards_the_control_api_and_page(make_client: Any) -> None:
    client = await make_client(control_token=TOKEN)
    for path in ("/_emulator/messages", "/_emulator/scenario", "/", "/_emulator/ui", "/_emulator/openapi.json",
                 "/_emulator/ui/static/app.js", "/_emulator/ui/changes"):
        resp = await client.get(path)
        assert resp.status == 401, path
        assert (await resp.json())["type"] == "unauthorized"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await client.get(path, headers={"Authorization": "Bearer wrong"})).status == 401
        assert (await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})).status == 200, path
    resp = await client.post("/_emulator/inbound", json=INBOUND)
    assert resp.status == 401
    resp = await client.post("/_emulator/inbound", json=INBOUND, headers={"Authorization": f"token {TOKEN}"})
    assert resp.status == 201
    # Open: the health check (Docker's HEALTHCHECK) and the Bandwidth API, which has its own credentials.
    assert (await client.get("/_emulator/health")).status == 200
    assert (await client.post(f"/api/v2/users/{ACCOUNT}/messages", json=SMS, headers=AUTH)).status == 202


async def test_the_page_takes_the_token_once_from_its_address(make_client: Any) -> None:
    client = await make_client(control_token=TOKEN)
    resp = await client.get("/", params={"token": "wrong"}, allow_redirects=False)
    assert resp.status == 401
    resp = await client.get("/", params={"token": TOKEN, "view": "messages"}, allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/?view=messages"
    cookie = resp.cookies["bwe_control_token"]
    assert cookie.value == TOKEN and cookie["httponly"] and cookie["samesite"] == "Strict"
    # The browser now carries the cookie: the page and its requests pass.
    resp = await client.get("/")
    assert resp.status == 200
    assert (await client.get("/_emulator/messages")).status == 200


async def test_the_python_client_passes_the_control_token() -> None:
    async with Emulator(control_token=TOKEN) as emulator:
        assert emulator.settings.control_token == TOKEN
        await emulator.inbound(from_="+15552221111", to="+15554443333", text="hi")  # the runner's client has it
        async with AsyncClient(emulator.base_url) as anonymous:
            with pytest.raises(EmulatorError) as exc:
                await anonymous.messages()
            assert exc.value.status == 401
        async with AsyncClient(emulator.base_url, control_token=TOKEN) as client:
            assert len(await client.messages()) == 1
            # Basic credentials still go to the Bandwidth API.
            message = await client.send(to="+15552221111", from_="+15554443333", text="hello")
            assert message["id"]


def test_the_token_is_never_shown_in_the_basic_header() -> None:
    # The control token and the Basic credentials are separate: one never replaces the other.
    client = AsyncClient("http://127.0.0.1:1", control_token=TOKEN, username="u", password="p")
    assert client._auth == {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}


def test_the_cli_takes_allowed_hosts_and_a_control_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from emulator.cli import build_parser, settings_from_args

    args = build_parser().parse_args(["--allowed-hosts", "emulator, .example.test", "--control-token", TOKEN])
    settings = settings_from_args(args)
    assert settings.allowed_hosts == ("emulator", ".example.test") and settings.control_token == TOKEN
    monkeypatch.setenv("BWE_ALLOWED_HOSTS", "emulator")
    monkeypatch.setenv("BWE_CONTROL_TOKEN", TOKEN)
    settings = settings_from_args(build_parser().parse_args([]))
    assert settings.allowed_hosts == ("emulator",) and settings.control_token == TOKEN
    help_text = build_parser().format_help()
    assert "--allowed-hosts" in help_text and "--control-token" in help_text


def test_the_pytest_plugin_passes_the_control_token(pytester: pytest.Pytester) -> None:
    from emulator.testing.runner import BackgroundEmulator

    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        def test_remote(bandwidth_emulator):
            bandwidth_emulator.inbound(from_="+15552221111", to="+15554443333", text="hi")
            assert len(bandwidth_emulator.messages()) == 1
        """
    )
    with BackgroundEmulator(clock="manual", control_token=TOKEN) as shared:
        url = shared.base_url
        refused = pytester.runpytest_inprocess("--bandwidth-emulator-url", url, "-p", "no:cacheprovider")
        refused.assert_outcomes(errors=1)
        result = pytester.runpytest_inprocess(
            "--bandwidth-emulator-url", url, "--bandwidth-control-token", TOKEN, "-p", "no:cacheprovider"
        )
        result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("bind", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("127.0.0.2", True), ("0.0.0.0", False), ("::", False),
     ("192.168.1.20", False), ("devbox.lan", False)],
)
def test_binding_beyond_loopback_is_recognised_for_the_warning(bind: str, loopback: bool) -> None:
    from emulator.web.exposure import is_loopback

    assert is_loopback(bind) is loopback
