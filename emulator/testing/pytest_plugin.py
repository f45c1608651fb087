"""The pytest plugin, registered through the ``pytest11`` entry point: installing the
package is all it takes.

Fixtures:

``bandwidth_emulator``
    A blocking :class:`emulator.testing.client.Client` for an emulator started once per session
    in-process (manual clock, 127.0.0.1, a free port), reset before each test: its
    account's messages and callbacks forgotten, the receiver cleared, the session's
    scenario back in force. ``@pytest.mark.bandwidth_scenario(...)`` sets a test's
    scenario (a file path relative to the test file, a dict, or YAML text), and so does
    parametrizing the fixture itself with ``indirect=True``.
``callback_receiver``
    A :class:`emulator.testing.receiver.CallbackReceiver`, cleared before each test. Every
    callback goes to it unless the scenario names another URL for the application.

Each pytest-xdist worker is its own process, so it gets its own emulator. With
``--bandwidth-emulator-url`` the tests use an emulator running elsewhere instead; each
worker then uses its own account, reset per test, and the scenario and clock are shared.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from emulator.config import DEFAULT_ACCOUNT

# Every pytest run of a project that has the package installed loads this module, so the
# emulator itself (aiohttp, pydantic, ...) is imported only once a fixture is used.
if TYPE_CHECKING:
    import concurrent.futures

    from emulator.scenarios.format import Scenario
    from emulator.testing.client import Client, LoopThread
    from emulator.testing.receiver import CallbackReceiver
    from emulator.testing.runner import BackgroundEmulator

MARKER = "bandwidth_scenario"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bandwidth-emulator")
    group.addoption(
        "--bandwidth-emulator-url",
        default=os.environ.get("BWE_TEST_URL"),
        help="use the emulator at this base URL instead of starting one in-process (env BWE_TEST_URL)",
    )
    group.addoption(
        "--bandwidth-control-token",
        default=os.environ.get("BWE_CONTROL_TOKEN"),
        help="the control token of the emulator at --bandwidth-emulator-url, if it has one (docs/security.md; env BWE_CONTROL_TOKEN)",
    )
    group.addoption(
        "--bandwidth-scenario",
        default=None,
        help="scenario file for the in-process emulator (default: the ini option bandwidth_scenario, else built-in)",
    )
    parser.addini("bandwidth_scenario", "scenario file for the in-process emulator, relative to the rootdir", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(scenario): the scenario for this test: a file path (relative to the test file), a dict, or YAML text",
    )


def worker_account() -> str:
    """A Bandwidth-looking account id of our own per xdist worker (gw0 -> 9910000, ...)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        return str(9910000 + int(worker[2:]))
    return DEFAULT_ACCOUNT


class EmulatorSession:
    """What lives for the whole session: the emulator (or a client of a remote one) and the receiver."""

    def __init__(self, config: pytest.Config) -> None:
        from emulator.scenarios.format import load_scenario
        from emulator.testing.receiver import CallbackReceiver

        self.remote_url: str | None = config.getoption("bandwidth_emulator_url")
        self.control_token: str | None = config.getoption("bandwidth_control_token") or None
        scenario = config.getoption("bandwidth_scenario") or config.getini("bandwidth_scenario") or None
        self.scenario = load_scenario(scenario, Path(config.rootpath)) if scenario and not self.remote_url else None
        self.receiver = CallbackReceiver()
        # In-process: the emulator (see the ``background`` property).
        self._background: BackgroundEmulator | None = None
        self.loop: LoopThread | None = None
        # In-process: the virtual time every test starts at (the session scenario's
        # startTime, else the moment the session's emulator started).
        self.start_time: float | None = None
        # In-process: the outcome of the running test's begin_test, collected by end_test.
        self.begun: concurrent.futures.Future[None] | None = None

    @property
    def in_process(self) -> bool:
        """Whether the emulator runs in this process (else it is at --bandwidth-emulator-url)."""
        return self._background is not None

    @property
    def background(self) -> BackgroundEmulator | None:
        """The in-process emulator, once the running test's start is done on its loop (see
        :meth:`begin_test`): code that reaches into it from the test's thread finds the test's
        fresh state, as it did when that start was waited for."""
        if self.begun is not None:
            import concurrent.futures

            concurrent.futures.wait([self.begun])
        return self._background

    def start(self) -> Client:
        from emulator.testing.client import Client, LoopThread
        from emulator.testing.runner import BackgroundEmulator

        if self.remote_url:
            self.loop = LoopThread("bandwidth-emulator-client")
            self.client = Client(
                self.remote_url, loop=self.loop, account_id=worker_account(), control_token=self.control_token
            )
        else:
            self._background = BackgroundEmulator(self.scenario, clock="manual", account_id=worker_account())
            self.client = self._background.start()
            self.loop = self._background.loop
        assert self.loop is not None
        self.loop.run(self.receiver.start())
        if self._background is not None and self._background.emulator is not None:
            emulator = self._background.emulator
            emulator.set_callback_url(self.receiver.url)
            self.default_scenario_model = emulator.service.scenario
            self.start_time = emulator.service.clock.now()
        else:
            self.default_scenario = self.client.scenario()
            self.default_callback_url = self.client.fallback_callback_url()
        return self.client

    def begin_test(self, scenario: Scenario | None) -> int:
        """In-process: forget the account's state, put the session's callback URL back, move
        the clock to the test's start and put the test's scenario (or the session's) in force;
        returns the internal error count before the test.

        That work is queued on the emulator's loop without waiting for it (a few microseconds
        there, against a round trip between threads here): the loop runs what is queued in
        order, before any request the test makes afterwards reaches it, its own client's calls
        and its application's HTTP requests alike. :meth:`end_test` collects the outcome."""
        import concurrent.futures

        from emulator.delivery.clock import ManualClock

        assert self._background is not None and self._background.emulator is not None
        assert self.loop is not None
        emulator = self._background.emulator
        wanted = scenario if scenario is not None else self.default_scenario_model
        start = wanted.start_time.timestamp() if wanted.start_time is not None else self.start_time
        receiver_url = self.receiver.url
        begun: concurrent.futures.Future[None] = concurrent.futures.Future()

        def begin() -> None:
            try:
                service = emulator.service
                service.reset(emulator.account_id)
                emulator.set_callback_url(receiver_url)
                clock = service.clock
                # Only with nothing pending anywhere: a callback of another account (sent by the
                # application under another account id) keeps the clock where it is.
                if start is not None and isinstance(clock, ManualClock) and service.callbacks.pending() == 0:
                    clock.move_to(start)
                # Also plans the scenario's inbound traffic from the test's start.
                service.replace_scenario(wanted)
            except BaseException as exc:
                begun.set_exception(exc)
            else:
                begun.set_result(None)

        # Read here without a hop: the previous test's work is over, and an int is set in one step.
        count = emulator.service.internal_errors.count
        self.loop.loop.call_soon_threadsafe(begin)
        self.begun = begun
        return count

    def end_test(self) -> None:
        """In-process: raise what went wrong in :meth:`begin_test`'s work, if anything (an
        emulator bug: that work does not fail on any input)."""
        begun, self.begun = self.begun, None
        if begun is not None:
            begun.result()

    def internal_error_count(self) -> int:
        """How many internal errors the emulator has had. In-process, read without a hop to its
        thread (an int, set in one step): most tests have none to report."""
        if self._background is None:
            count: int = _internal_errors(self.client)["count"]
            return count
        assert self._background.emulator is not None
        return self._background.emulator.service.internal_errors.count

    def internal_errors(self) -> dict[str, Any]:
        """The emulator's internal errors so far: ``{"count": N, "recent": [...]}``."""
        if self._background is None:
            return _internal_errors(self.client)
        assert self._background.emulator is not None
        emulator = self._background.emulator

        async def read() -> dict[str, Any]:
            return emulator.service.internal_errors.summary()

        summary: dict[str, Any] = self._background.run(read())
        return summary

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.run(self.receiver.stop())
        if self._background is not None:
            self._background.stop()
        elif self.loop is not None:
            self.client.close()
            self.loop.stop()


@pytest.fixture(scope="session")
def _bandwidth_emulator_session(pytestconfig: pytest.Config) -> Iterator[EmulatorSession]:
    """The session-wide emulator and receiver; use ``bandwidth_emulator`` in tests. The
    plugin's fixtures depend only on underscored names, so that a project's own fixture
    named like a public one (``callback_receiver``, say) replaces it without breaking them."""
    session = EmulatorSession(pytestconfig)
    try:
        session.start()
        yield session
    finally:
        session.stop()


@pytest.fixture(scope="session")
def bandwidth_emulator_session(_bandwidth_emulator_session: EmulatorSession) -> EmulatorSession:
    """The session-wide emulator and receiver (the earlier name, kept)."""
    return _bandwidth_emulator_session


def _requested_scenario(request: pytest.FixtureRequest) -> tuple[Any, str]:
    """The test's scenario: ``indirect`` parametrization of the fixture, else the marker."""
    if hasattr(request, "param"):
        return request.param, "bandwidth_emulator parameter"
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return None, ""
    if len(marker.args) != 1 or marker.kwargs:
        raise pytest.UsageError(f"@pytest.mark.{MARKER} takes one argument: a file path, a dict or YAML text")
    return marker.args[0], f"@pytest.mark.{MARKER}"


@pytest.fixture
def bandwidth_emulator(_bandwidth_emulator_session: EmulatorSession, request: pytest.FixtureRequest) -> Iterator[Client]:
    """A blocking client of the session's emulator, with this test's account reset."""
    from emulator.scenarios.format import ScenarioError, load_scenario

    session = _bandwidth_emulator_session
    client = session.client
    session.receiver.clear()
    scenario_source, source_name = _requested_scenario(request)
    scenario = None
    if scenario_source is not None:
        try:
            scenario = load_scenario(scenario_source, Path(request.path).parent)
        except (ScenarioError, OSError) as exc:
            pytest.fail(f"{source_name}: {exc}", pytrace=False)
    if session.in_process:
        errors_before = session.begin_test(scenario)
    else:
        if scenario is not None and scenario.start_time is not None:
            pytest.fail(
                f"{source_name}: startTime needs the in-process emulator; with --bandwidth-emulator-url "
                "the clock is shared by every test and worker, so a test cannot set it",
                pytrace=False,
            )
        client.reset()
        errors_before = _internal_errors(client)["count"]
        if scenario is not None:
            client.set_scenario(scenario)
    try:
        yield client
    finally:
        if not session.in_process:
            # The marker, or the test itself, may have replaced the scenario or the fallback
            # callback URL of the shared emulator: put the session's back. In-process, the next
            # test's start does it, with its reset.
            if client.scenario() != session.default_scenario:
                client.set_scenario(session.default_scenario)
            if client.fallback_callback_url() != session.default_callback_url:
                client.set_fallback_callback_url(session.default_callback_url)
        session.receiver.clear()
        session.end_test()
    # Like pytest-httpserver's check_handler_errors: a bug the emulator survived during the
    # test fails it, at teardown (docs/testing.md, 'Internal errors').
    if session.internal_error_count() > errors_before:
        errors = session.internal_errors()
        new = errors["recent"][-(errors["count"] - errors_before) :]
        lines = "\n".join(f"  {e['where']}: {e['error']}" for e in new)
        pytest.fail(
            f"the emulator had {errors['count'] - errors_before} internal error(s) during this test"
            f" (tracebacks in its log):\n{lines}",
            pytrace=False,
        )


def _internal_errors(client: Client) -> dict[str, Any]:
    found = client.health().get("internalErrors")
    return found if isinstance(found, dict) else {"count": 0, "recent": []}


@pytest.fixture
def bandwidth_callback_receiver(_bandwidth_emulator_session: EmulatorSession, bandwidth_emulator: Client) -> CallbackReceiver:
    """A real webhook on 127.0.0.1 recording every callback; ``.fail(n)``, ``.respond(status)``,
    ``.hang(n)`` change its answers. Cleared before each test (by ``bandwidth_emulator``,
    which it brings along)."""
    return _bandwidth_emulator_session.receiver


@pytest.fixture
def callback_receiver(bandwidth_callback_receiver: CallbackReceiver) -> CallbackReceiver:
    """``bandwidth_callback_receiver`` by its earlier name. A project's own fixture of this
    name takes its place in that project's tests, and the plugin does not mind."""
    return bandwidth_callback_receiver
