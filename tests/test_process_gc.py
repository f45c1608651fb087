"""The garbage collector's settings are the CLI process's business only.

An in-process emulator shares its process with someone's tests: it must leave the
collector as it found it, however many run and in whatever order they stop.
"""

from __future__ import annotations

import gc

import pytest

from emulator import cli
from emulator.config import Settings
from emulator.scenarios.format import Scenario
from emulator.testing.runner import Emulator


async def test_in_process_emulators_leave_the_collector_as_they_found_it() -> None:
    before = gc.get_threshold()
    hooks = list(gc.callbacks)
    first, second = Emulator(), Emulator()
    await first.start()
    await second.start()
    try:
        assert gc.get_threshold() == before
    finally:
        # Stopped in start order: with each one saving and restoring the thresholds, the
        # second would put back the first one's.
        await first.stop()
        await second.stop()
    assert gc.get_threshold() == before
    assert gc.callbacks == hooks


def test_the_cli_tunes_the_collector_while_it_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    before = gc.get_threshold()
    seen = []

    async def serve(settings: Settings, scenario: Scenario | None = None, database: object = None) -> None:
        seen.append((gc.get_threshold(), cli._freeze_survivors in gc.callbacks))

    monkeypatch.setattr(cli, "serve", serve)
    assert cli.main(["--port", "0"]) == 0
    assert seen == [(cli.GC_THRESHOLDS, True)]
    assert gc.get_threshold() == before
    assert cli._freeze_survivors not in gc.callbacks
