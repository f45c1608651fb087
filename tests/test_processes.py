"""The tests' own process handling (tests/processes.py): a CLI that does not start is stopped,
and a test that leaves a process running fails the session."""

from __future__ import annotations

import os
import sys

import pytest
from processes import EmulatorDidNotStart, EmulatorProcess, live_descendants, running_cli

# A process that never prints anything, for the start-up timeout.
SILENT = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_a_start_up_timeout_stops_the_process() -> None:
    before = set(live_descendants())
    with pytest.raises(EmulatorDidNotStart, match=r"printed no URL within 0\.5 s"):
        EmulatorProcess.start(command=SILENT, ready_timeout=0.5)
    assert set(live_descendants()) <= before


def test_an_exit_before_the_url_is_reported_with_its_standard_error() -> None:
    command = [sys.executable, "-c", "import sys; sys.stderr.write('no way'); sys.exit(3)"]
    with pytest.raises(EmulatorDidNotStart, match=r"(?s)exited with status 3 before printing its URL.*no way"):
        EmulatorProcess.start(command=command)


def test_a_first_line_without_a_url_stops_the_process() -> None:
    before = set(live_descendants())
    command = [sys.executable, "-c", "import time; print('hello', flush=True); time.sleep(120)"]
    with pytest.raises(EmulatorDidNotStart, match="printed no base URL in its first line 'hello'"):
        EmulatorProcess.start(command=command)
    assert set(live_descendants()) <= before


def test_the_cli_is_stopped_when_the_block_ends_even_on_failure() -> None:
    with pytest.raises(RuntimeError), running_cli("--clock", "manual") as emulator:
        assert emulator.pid in live_descendants()
        raise RuntimeError("the test failed")
    assert emulator.returncode == 0  # SIGTERM: a clean stop
    assert emulator.pid not in live_descendants()


def test_a_test_that_leaves_a_process_running_fails_the_session(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("from processes import no_process_outlives_the_tests  # noqa: F401\n")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        f"""
        import subprocess

        def test_leaks(tmp_path):
            process = subprocess.Popen({SILENT!r})
            (tmp_path.parent / "pid").write_text(str(process.pid))
        """
    )
    result = pytester.runpytest_inprocess("--basetemp", str(pytester.path / "tmp"))
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*processes left running by the tests (now killed):*", "*pid *time.sleep(120)*"])
    pid = int((pytester.path / "tmp" / "pid").read_text())
    assert pid not in live_descendants()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped
