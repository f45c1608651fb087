"""End to end: the real CLI on a free port, the official SDK, a real receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys

import aiohttp
from bandwidth import ApiClient, Configuration, MessagesApi
from bandwidth.models import Callback, MessageRequest, StatusCallback
from processes import EmulatorProcess
from support import SUITE_ERA, Receiver


def messages_api(emulator: EmulatorProcess) -> MessagesApi:
    cfg = Configuration(
        host=f"{emulator.base_url}/api/v2", ignore_operation_servers=True, username="user", password="pass"
    )
    return MessagesApi(ApiClient(cfg))


async def control(emulator: EmulatorProcess, method: str, path: str, **kwargs) -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, f"{emulator.base_url}/_emulator{path}", **kwargs) as resp:
            assert resp.status < 300, await resp.text()
            return await resp.json()


def parse_callbacks(receiver: Receiver) -> list[StatusCallback]:
    parsed = []
    for request in receiver.requests:
        assert isinstance(request["body"], list)
        for element in request["body"]:
            parsed.append(Callback.from_dict(element).actual_instance)
    return parsed


async def test_sdk_send_and_callbacks_with_manual_clock(start_cli, receiver, tmp_path):
    # The era pinned: a group gets message-sending only until 2027-01-06 (docs/scenarios.md).
    scenario = tmp_path / "era.yaml"
    scenario.write_text(f"era: '{SUITE_ERA}'\n", encoding="utf-8")
    emu = await asyncio.to_thread(
        start_cli, "--clock", "manual", "--callback-url", receiver.url, "--scenario", str(scenario)
    )
    api = messages_api(emu)
    request = MessageRequest(
        application_id="93de2206-9669-4e07-948d-329f4b722ee2",
        to=["+15552221111", "+15550104720"],
        var_from="+15554443333",
        text="hello group",
        tag="e2e",
    )
    message = await asyncio.to_thread(api.create_message, "9900000", request)
    assert message is not None, "create_message returned None: the status code was not 202"
    assert message.id and message.direction.value == "out"
    assert message.to == ["+15552221111", "+15550104720"]

    await control(emu, "POST", "/clock/advance", json={"seconds": 60})
    events = parse_callbacks(receiver)
    assert all(isinstance(e, StatusCallback) for e in events)
    by_recipient = {}
    for e in events:
        by_recipient.setdefault(e.to, []).append(e.type.value)
    assert by_recipient == {
        "+15552221111": ["message-sending", "message-delivered"],
        "+15550104720": ["message-sending", "message-failed"],
    }
    failed = next(e for e in events if e.type.value == "message-failed")
    assert failed.error_code == 4720
    assert failed.message.id == message.id and failed.message.tag == "e2e"

    journal = await control(emu, "GET", "/callbacks", params={"messageId": message.id})
    assert {c["state"] for c in journal["callbacks"]} == {"delivered"}


async def test_realtime_time_scale_delivers_without_advancing(start_cli, receiver):
    # 1 virtual second of delay at 100x passes in 10 ms; we wait on the receiver, not on time.
    emu = await asyncio.to_thread(start_cli, "--time-scale", "100", "--callback-url", receiver.url)
    api = messages_api(emu)
    request = MessageRequest(application_id="app", to=["+15552221111"], var_from="+15554443333", text="hi")
    message = await asyncio.to_thread(api.create_message, "9900000", request)
    events = await receiver.wait_for(1, timeout=10)
    [event] = [Callback.from_dict(e).actual_instance for e in events]
    assert event.type.value == "message-delivered" and event.message.id == message.id


async def test_health_and_sigterm(start_cli):
    emu = await asyncio.to_thread(start_cli, "--clock", "manual")
    health = await control(emu, "GET", "/health")
    assert health["status"] == "ok"
    assert await asyncio.to_thread(emu.stop, signal.SIGTERM) == 0


def test_help_lists_every_option():
    out = subprocess.run([sys.executable, "-m", "emulator", "--help"], capture_output=True, text=True, check=True, timeout=60).stdout
    for option in ("--host", "--port", "--scenario", "--callback-url", "--clock", "--time-scale", "--db", "--log-format"):
        assert option in out


def test_bad_option_value_is_a_clear_error():
    result = subprocess.run([sys.executable, "-m", "emulator", "--time-scale", "0"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--time-scale" in result.stderr and "Traceback" not in result.stderr


def test_schema_prints_json_schema():
    out = subprocess.run([sys.executable, "-m", "emulator", "schema"], capture_output=True, text=True, check=True, timeout=60).stdout
    schema = json.loads(out)
    assert "applications" in schema["properties"]


def test_sigterm_right_after_the_ready_line_is_a_clean_stop(tmp_path):
    # The signal arrives as the URL is printed (the earliest a supervisor can react to it).
    script = tmp_path / "term_on_ready.py"
    script.write_text(
        "import builtins, os, signal, sys\n"
        "from emulator.cli import main\n"
        "real_print = builtins.print\n"
        "def print_then_term(*args, **kwargs):\n"
        "    real_print(*args, **kwargs)\n"
        "    if 'serving http' in str(args[0]):\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "builtins.print = print_then_term\n"
        "sys.exit(main(['--port', '0', '--clock', 'manual']))\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "serving http://127.0.0.1:" in result.stdout
