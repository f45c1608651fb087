"""The pytest plugin's cost, side by side with pytest-httpserver on the same machine.

    .venv/bin/python bench/plugin.py [--tests 200] [--rounds 5]

Writes three tiny test suites in a temporary folder and runs each with ``pytest`` in its own
process, every plugin auto-load switched off and only the one plugin under test loaded, so
that "bare pytest" is the same pytest in every row:

- bare: trivial tests (``assert True``), no plugin;
- pytest-httpserver: the application sends an SMS (``urllib``) to an ``httpserver`` stub that
  answers 202 with a Message body, and the test checks the answer: the usual way to fake the
  send, with no callback at all;
- emulator: the application sends the same SMS (``urllib``) to ``bandwidth_emulator.api_url``,
  the test advances the clock a second, the emulator POSTs ``message-delivered`` to the
  plugin's receiver, and ``assert_callbacks`` checks it: send + advance + callback + assertion.

Each suite runs with 1 and with N tests, ``rounds`` times, medians taken (``--baseline-source
DIR`` adds the emulator suite run with another version's package, in the same rounds). The per-test cost
is (time(N) - time(1)) / (N - 1); the start-up cost is time(1) less one per-test cost; the
overhead of a plugin is its start-up cost less bare pytest's. A last row runs the trivial
tests with the emulator plugin loaded but unused: what merely installing the package costs
every pytest run of a project.

As in a project's every run but its first, Python's bytecode caches are used: the runs go
without ``PYTHONDONTWRITEBYTECODE``, after one untimed run of each suite. With it set,
every run would compile the emulator's modules from source again.

It prints the per-test ratio and the start-up overhead against issue 17's targets (a test
at most half the pytest-httpserver test's cost, a start-up overhead of at most 0.3 s);
``--json`` prints the figures for bench/run.py (``--only plugin``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

PY = sys.executable

INI = "[pytest]\naddopts = -q -p no:cacheprovider\n"

BARE = """
def test_{i}():
    assert True
"""

SEND = '''
import json
import urllib.request

BODY = json.dumps({"applicationId": "bench", "from": "+15554443333", "to": ["+15552221111"], "text": "hi"}).encode()


def app_sends(api_url):
    """What the application under test does: POST a message, as it would to Bandwidth."""
    request = urllib.request.Request(
        api_url + "/users/9900000/messages", data=BODY, method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Basic dXNlcjpwYXNz"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 202
        return json.loads(response.read())
'''

HTTPSERVER = """
def test_{i}(httpserver):
    httpserver.expect_request("/api/v2/users/9900000/messages", method="POST").respond_with_json(
        {{"id": "1700000000000abc", "owner": "+15554443333", "to": ["+15552221111"], "text": "hi"}}, status=202
    )
    message = app_sends(httpserver.url_for("/api/v2"))
    assert message["id"] == "1700000000000abc"
"""

EMULATOR = """
def test_{i}(bandwidth_emulator):
    message = app_sends(bandwidth_emulator.api_url)
    bandwidth_emulator.advance(1)
    bandwidth_emulator.assert_callbacks(message["id"], ["message-delivered"])
"""

SUITES = {
    "bare pytest": ("", BARE, []),
    "pytest-httpserver": (SEND, HTTPSERVER, ["-p", "pytest_httpserver.pytest_plugin"]),
    "emulator plugin": (SEND, EMULATOR, ["-p", "emulator.testing.pytest_plugin"]),
    "emulator plugin loaded, unused": ("", BARE, ["-p", "emulator.testing.pytest_plugin"]),
}


def write_suite(folder: Path, header: str, test: str, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text(INI)
    body = textwrap.dedent(header) + "".join(textwrap.dedent(test).format(i=i) for i in range(count))
    (folder / "test_bench.py").write_text(body)


# Runs pytest with another copy of the emulator package first on the path (--emulator-source),
# ahead of the editable install's finder: to compare with an earlier version.
SOURCE_FIRST = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
    "sys.path.insert(0, sys.argv.pop(1)); import pytest; sys.exit(pytest.main(sys.argv[1:]))"
)


def run_once(folder: Path, plugin_args: list[str], count: int, source: str | None = None) -> tuple[float, float]:
    """Wall time and CPU time (user + system, every thread of the pytest process) of one run."""
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # see the docstring
    env.pop("PYTEST_ADDOPTS", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    python = [PY, "-c", SOURCE_FIRST, source] if source else [PY, "-m", "pytest"]
    result = subprocess.run(
        [*python, *plugin_args, str(folder)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=600,
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0 or f"{count} passed" not in result.stdout:
        raise SystemExit(f"the benchmark suite failed in {folder}:\n{result.stdout}\n{result.stderr}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


# Issue 17's targets: a test's cost at most half of the pytest-httpserver test's (which only
# stubs the send), and a start-up overhead over bare pytest of at most 0.3 s.
PER_TEST_TARGET = 0.5
STARTUP_TARGET = 0.3


BASELINE = "emulator plugin, baseline"


def measure(tests: int, rounds: int, source: str | None = None, baseline: str | None = None) -> dict[str, Any]:
    """Every suite with 1 and ``tests`` tests, ``rounds`` times; per suite and per clock (wall,
    cpu) the start-up and per-test seconds, from medians. With ``baseline`` (a folder holding
    another version's emulator/ package), the emulator suite runs with it too, in the same rounds."""
    suites = dict(SUITES)
    sources = {name: source if "emulator.testing.pytest_plugin" in args[2] else None for name, args in SUITES.items()}
    if baseline:
        suites[BASELINE] = SUITES["emulator plugin"]
        sources[BASELINE] = baseline
    load_before = os.getloadavg()[0]
    times: dict[tuple[str, int], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bwe-plugin-bench-") as tmp:
        folders = {}
        for name, (header, test, _) in suites.items():
            for count in (1, tests):
                folder = Path(tmp) / f"{name.replace(' ', '-').replace(',', '')}-{count}"
                write_suite(folder, header, test, count)
                folders[name, count] = folder
                times[name, count] = []
        # One untimed run of each first: the .pyc files are written, as in any project's
        # second run (see the docstring).
        for (name, count), folder in folders.items():
            if count == 1:
                run_once(folder, suites[name][2], count, sources[name])
        # Rounds interleave the suites, so that a busy moment on the machine hits all of them.
        for _ in range(rounds):
            for (name, count), folder in folders.items():
                times[name, count].append(run_once(folder, suites[name][2], count, sources[name]))
    result: dict[str, Any] = {"tests": tests, "rounds": rounds, "load": [load_before, os.getloadavg()[0]]}
    for column, clock in ((0, "wall"), (1, "cpu")):
        found: dict[str, dict[str, float]] = {}
        for name in suites:
            one = statistics.median(t[column] for t in times[name, 1])
            many = statistics.median(t[column] for t in times[name, tests])
            per_test = (many - one) / (tests - 1)
            found[name] = {"start": one - per_test, "per_test": per_test}
        bare = found["bare pytest"]["start"]
        for figures in found.values():
            figures["over_bare"] = figures["start"] - bare
        emulator, httpserver = found["emulator plugin"], found["pytest-httpserver"]
        result[clock] = {
            "suites": found,
            "per_test_ratio": emulator["per_test"] / httpserver["per_test"],
            "startup_overhead": emulator["over_bare"],
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=200, help="tests in the long run of each suite (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each, medians taken (default 5)")
    parser.add_argument(
        "--emulator-source",
        metavar="DIR",
        help="a folder holding another version's emulator/ package, used instead of this one "
        "(e.g. git archive REV emulator | tar -x -C DIR)",
    )
    parser.add_argument(
        "--baseline-source",
        metavar="DIR",
        help="also run the emulator suite with the emulator/ package in DIR, in the same rounds "
        "(a before/after comparison on a busy machine)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object (bench/run.py)")
    args = parser.parse_args()
    try:
        import pytest_httpserver  # noqa: F401
    except ImportError:
        raise SystemExit("pytest-httpserver is needed: .venv/bin/pip install -e '.[test]'") from None

    result = measure(args.tests, args.rounds, args.emulator_source, args.baseline_source)
    if args.json:
        print(json.dumps(result))
        return
    load_before, load_after = result["load"]
    print(
        f"pytest plugin benchmark: {args.tests} tests per long run, median of {args.rounds} "
        f"(Python {platform.python_version()}, {os.cpu_count()} cores, load {load_before:.1f} at the start, "
        f"{load_after:.1f} at the end)" + (f", emulator from {args.emulator_source}" if args.emulator_source else "")
    )
    for clock, label in (("wall", "wall time"), ("cpu", "CPU time (user + system of the pytest process)")):
        figures = result[clock]
        print()
        print(f"{label}:")
        print(f"  {'suite':34} {'start-up s':>10} {'over bare s':>11} {'per test ms':>11}")
        for name, suite in figures["suites"].items():
            print(f"  {name:34} {suite['start']:10.3f} {suite['over_bare']:11.3f} {suite['per_test'] * 1000:11.2f}")
        emulator, httpserver = figures["suites"]["emulator plugin"], figures["suites"]["pytest-httpserver"]
        overhead, ratio = figures["startup_overhead"], figures["per_test_ratio"]
        bare_test = figures["suites"]["bare pytest"]["per_test"]
        # On a busy machine a difference of medians can come out at or below zero: no verdict then.
        if emulator["per_test"] <= 0 or httpserver["per_test"] <= 0:
            verdict = "not measurable, the machine is too busy"
        else:
            verdict = "met" if ratio <= PER_TEST_TARGET else "not met"
        print(
            f"  emulator plugin start-up overhead over bare pytest: {overhead:.3f} s "
            f"(target <= {STARTUP_TARGET} s: {'met' if overhead <= STARTUP_TARGET else 'not met'})"
        )
        if BASELINE in figures["suites"]:
            before = figures["suites"][BASELINE]
            print(
                f"  against the baseline ({args.baseline_source}): start-up overhead {before['over_bare']:.3f} -> "
                f"{overhead:.3f} s, per test {before['per_test'] * 1000:.2f} -> {emulator['per_test'] * 1000:.2f} ms "
                f"(over bare pytest's per test: {(before['per_test'] - bare_test) * 1000:.2f} -> "
                f"{(emulator['per_test'] - bare_test) * 1000:.2f} ms)"
            )
        print(
            f"  per test: emulator {emulator['per_test'] * 1000:.2f} ms (send + advance + callback + assertion), "
            f"pytest-httpserver {httpserver['per_test'] * 1000:.2f} ms (stubbed send only): "
            f"ratio {ratio:.2f} (target <= {PER_TEST_TARGET}: {verdict})"
        )


if __name__ == "__main__":
    main()
