"""The command line: option order, environment variables, --version (docs in README.md)."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from emulator import __version__
from emulator.cli import OptionError, build_parser, main, settings_from_args


def settings(argv: list[str], env: dict[str, str] | None = None):
    return settings_from_args(build_parser().parse_args(argv), env or {})


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "18110", "--clock", "manual", "serve"],
        ["serve", "--port", "18110", "--clock", "manual"],
        ["--port", "18110", "serve", "--clock", "manual"],
        ["--port", "18110", "--clock", "manual"],
    ],
)
def test_options_work_before_or_after_serve(argv: list[str]) -> None:
    s = settings(argv)
    assert (s.port, s.clock) == (18110, "manual")


def test_defaults_without_options_or_environment() -> None:
    s = settings([])
    assert (s.host, s.port, s.clock, s.time_scale, s.log_format, s.log_level, s.access_log) == (
        "127.0.0.1", 8080, "realtime", 1.0, "text", "info", False
    )
    assert s.scenario is None and s.callback_url is None and s.db is None


def test_environment_fills_what_the_command_line_does_not_give() -> None:
    env = {"BWE_PORT": "9001", "BWE_CLOCK": "manual", "BWE_TIME_SCALE": "60", "BWE_LOG_FORMAT": "json",
           "BWE_LOG_LEVEL": "debug", "BWE_ACCESS_LOG": "yes", "BWE_CALLBACK_URL": "http://127.0.0.1:1/cb"}
    s = settings(["serve", "--port", "9002"], env)
    assert s.port == 9002  # the command line wins
    assert (s.clock, s.time_scale, s.log_format, s.log_level, s.access_log) == ("manual", 60.0, "json", "debug", True)
    assert s.callback_url == "http://127.0.0.1:1/cb"


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("BWE_CLOCK", "manaul", "choose from realtime, manual"),
        ("BWE_LOG_FORMAT", "xml", "choose from text, json"),
        ("BWE_LOG_LEVEL", "loud", "choose from debug, info, warning, error"),
        ("BWE_PORT", "80a", "is not a port number"),
        ("BWE_PORT", "70000", "between 0 and 65535"),
        ("BWE_TIME_SCALE", "0", "greater than 0"),
        ("BWE_TIME_SCALE", "nan", "greater than 0"),
        ("BWE_ACCESS_LOG", "maybe", "expected one of"),
    ],
)
def test_an_invalid_environment_value_is_refused_naming_the_variable(variable: str, value: str, said: str) -> None:
    with pytest.raises(OptionError) as caught:
        settings([], {variable: value})
    assert variable in str(caught.value) and repr(value) in str(caught.value) and said in str(caught.value)


def test_an_invalid_environment_value_is_ignored_when_the_option_is_given() -> None:
    assert settings(["--clock", "manual"], {"BWE_CLOCK": "manaul"}).clock == "manual"


def test_main_exits_2_naming_the_variable(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BWE_CLOCK", "manaul")
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", "0"])
    assert exited.value.code == 2
    assert "BWE_CLOCK='manaul'" in capsys.readouterr().err


def test_version_is_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"bandwidth-emulator {version('bandwidth-emulator')}"
    assert __version__ == version("bandwidth-emulator")


async def test_health_and_openapi_carry_the_version(client) -> None:
    health = await (await client.get("/_emulator/health")).json()
    spec = await (await client.get("/_emulator/openapi.json")).json()
    assert health["version"] == spec["info"]["version"] == version("bandwidth-emulator")
