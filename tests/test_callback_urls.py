"""Callback URLs are checked where they enter (docs/compatibility.md, 'What the emulator refuses'): the
CLI's --callback-url (and BWE_CALLBACK_URL), a scenario's statusCallbackUrl and
inboundCallbackUrl (file, PUT /_emulator/scenario) and the in-process runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.delivery.urls import callback_url_problem
from emulator.scenarios.format import ScenarioError, parse_scenario
from emulator.testing.client import EmulatorError
from emulator.testing.runner import Emulator

BAD = [
    "not a url",
    "not_a_url",
    "/callbacks",
    "//host/callbacks",
    "ftp://example.com/callbacks",
    "http://xn--/",
    "http:///callbacks",
    "http://127.0.0.1:99999/callbacks",
    "http://127.0.0.1:0/callbacks",
    "http://[::1/callbacks",
    "http://exa mple.com/",
    "http://example.com/\ncallbacks",
    "http://-bad-.example.com/",
    "http://a..b/",
    "http://ex%41mple.com/",
    "",
]
GOOD = [
    "http://127.0.0.1:8080/callbacks",
    "https://example.com/bandwidth/status?app=1",
    "http://user:secret@localhost:3000/hooks",
    "http://[::1]:8080/cb",
    "http://host.docker.internal:3000/webhooks/bandwidth",
    "http://my_app:8000/callbacks",
    "http://münchen.example/cb",
]


@pytest.mark.parametrize("url", BAD)
def test_bad_urls_are_refused_with_a_reason(url: str):
    problem = callback_url_problem(url)
    assert problem


@pytest.mark.parametrize("url", GOOD)
def test_webhook_urls_pass(url: str):
    assert callback_url_problem(url) is None


@pytest.mark.parametrize("key", ["statusCallbackUrl", "inboundCallbackUrl"])
def test_scenario_refuses_a_bad_callback_url_with_its_path(key: str):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({"applications": [{"id": "ok"}, {"id": "app", key: "not a url"}]}, "s.yml")
    assert caught.value.problems == [
        (f"applications[1].{key}", "'not a url' is not a callback URL: it must be an absolute http:// or https:// URL")
    ]


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **env},
    )


def test_cli_refuses_a_bad_callback_url_before_starting():
    result = run_cli("--callback-url", "not a url", "--port", "0")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        "bandwidth-emulator: error: argument --callback-url: 'not a url' is not a callback URL:"
        " it must be an absolute http:// or https:// URL"
    )
    assert "Traceback" not in result.stderr


def test_cli_refuses_a_bad_callback_url_from_the_environment():
    result = run_cli("--port", "0", BWE_CALLBACK_URL="http://xn--/")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'http://xn--/' is not a callback URL: it has an invalid host" in result.stderr.splitlines()[-1]


def test_validate_names_file_path_and_problem(tmp_path: Path):
    scenario = tmp_path / "bad.yml"
    scenario.write_text("applications:\n  - id: a\n    statusCallbackUrl: not a url\n")
    result = run_cli("validate", str(scenario))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{scenario}: applications[0].statusCallbackUrl: 'not a url' is not a callback URL" in result.stderr + result.stdout


async def test_scenario_put_refuses_a_bad_callback_url():
    async with Emulator() as emulator:
        with pytest.raises(EmulatorError) as caught:
            await emulator.request(
                "PUT", "/_emulator/scenario", data="applications:\n  - id: a\n    inboundCallbackUrl: ftp://x/\n",
                headers={"Content-Type": "application/yaml"},
            )
        assert caught.value.status == 400
        assert "applications[0].inboundCallbackUrl" in str(caught.value.body)
        assert "not a callback URL" in str(caught.value.body)
        with pytest.raises(ValueError, match="not a callback URL"):
            emulator.set_callback_url("not a url")
