"""The pytest plugin in a project's own suite: marker and per-test changes compose, fixture
names do not collide, every test starts at the same virtual time (docs/testing.md)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestDeprecationWarning")


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_marker_and_a_changed_callback_url_compose(inner):
    """The marker's scenario stays in force when the test points one application's callbacks
    at its own webhook (the way a downstream suite does it in a fixture)."""
    inner.makepyfile(
        """
        import http.server, json, threading
        import pytest

        @pytest.fixture
        def app_webhook(bandwidth_emulator):
            events = []

            class Hook(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    events.extend(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                    self.send_response(200)
                    self.end_headers()

                def log_message(self, *args):
                    pass

            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            bandwidth_emulator.set_application_callbacks("my-app", f"http://127.0.0.1:{server.server_address[1]}/hook")
            yield events
            server.shutdown()
            server.server_close()

        @pytest.mark.bandwidth_scenario({"rules": [{"match": {"to": "+15552221111"},
                                         "events": [{"event": "message-failed", "errorCode": 4720}]}]})
        def test_failure_reaches_my_webhook(bandwidth_emulator, app_webhook, bandwidth_callback_receiver):
            message = bandwidth_emulator.send(to="+15552221111", from_="+15554443333", text="hi", application_id="my-app")
            bandwidth_emulator.advance(5)
            bandwidth_emulator.assert_callbacks(message["id"], ["message-failed"])
            assert [e["type"] for e in app_webhook] == ["message-failed"]
            assert bandwidth_callback_receiver.requests == []
            scenario = bandwidth_emulator.scenario()
            assert scenario["rules"] and scenario["applications"][0]["id"] == "my-app"

        def test_the_next_test_has_the_session_scenario_again(bandwidth_emulator, bandwidth_callback_receiver):
            assert bandwidth_emulator.scenario().get("applications", []) == []
            message = bandwidth_emulator.send(to="+15552221111", from_="+15554443333", text="hi", application_id="my-app")
            bandwidth_emulator.advance(5)
            bandwidth_emulator.assert_callbacks(message["id"], ["message-delivered"])
            assert bandwidth_callback_receiver.types() == ["message-delivered"]
        """
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_the_fallback_callback_url_can_change_for_one_test(inner):
    inner.makepyfile(
        """
        def test_nowhere(bandwidth_emulator, bandwidth_callback_receiver):
            assert bandwidth_emulator.fallback_callback_url() == bandwidth_callback_receiver.url
            bandwidth_emulator.set_fallback_callback_url(None)
            message = bandwidth_emulator.send(to="+15552221111", from_="+15554443333", text="hi")
            bandwidth_emulator.advance(5)
            assert bandwidth_emulator.callbacks(message["id"])[0]["state"] == "skipped"

        def test_back_to_the_receiver(bandwidth_emulator, bandwidth_callback_receiver):
            assert bandwidth_emulator.fallback_callback_url() == bandwidth_callback_receiver.url
        """
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_a_project_fixture_named_callback_receiver_does_not_break_the_plugin(inner):
    inner.makeconftest(
        """
        import pytest

        @pytest.fixture
        def callback_receiver():
            return "my application's own webhook handler"
        """
    )
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("run", [1, 2])
        def test_mine(bandwidth_emulator, callback_receiver, bandwidth_callback_receiver, run):
            assert callback_receiver == "my application's own webhook handler"
            assert bandwidth_callback_receiver.requests == []  # cleared before each test
            bandwidth_emulator.send(to="+15552221111", from_="+15554443333", text="hi")
            bandwidth_emulator.advance(5)
            assert bandwidth_callback_receiver.types() == ["message-delivered"]
        """
    )
    result = inner.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)
    assert "error" not in result.stdout.str().lower().split("short test summary")[-1]


def test_every_test_starts_at_the_same_virtual_time(inner):
    inner.makepyfile(
        """
        import pytest
        STARTS = []

        @pytest.mark.parametrize("run", [1, 2, 3])
        def test_clock(bandwidth_emulator, run):
            STARTS.append(bandwidth_emulator.clock()["now"])
            bandwidth_emulator.send(to="+15552221111", from_="+15554443333", text="hi")
            bandwidth_emulator.advance(3600 * run)
            assert len(set(STARTS)) == 1, STARTS
        """
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


def test_a_marker_start_time_is_where_the_test_starts(inner):
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.bandwidth_scenario({"startTime": "2027-03-01T09:00:00Z"})
        def test_pinned(bandwidth_emulator):
            assert bandwidth_emulator.clock()["now"] == "2027-03-01T09:00:00.000Z"
            message = bandwidth_emulator.send(to="+15552221111", from_="+15554443333", text="hi")
            assert message["time"].startswith("2027-03-01T09:00:00")

        @pytest.mark.bandwidth_scenario({"startTime": "2020-01-01T00:00:00Z"})
        def test_earlier(bandwidth_emulator):
            assert bandwidth_emulator.clock()["now"] == "2020-01-01T00:00:00.000Z"

        def test_unpinned_is_back_at_the_session_start(bandwidth_emulator):
            assert not bandwidth_emulator.clock()["now"].startswith(("2027-03-01", "2020-01-01"))
        """
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


def test_a_marker_start_time_is_refused_against_a_shared_emulator(inner):
    from emulator.testing.runner import BackgroundEmulator

    inner.makepyfile(
        """
        import pytest

        @pytest.mark.bandwidth_scenario({"startTime": "2027-03-01T09:00:00Z"})
        def test_pinned(bandwidth_emulator):
            pass
        """
    )
    with BackgroundEmulator(clock="manual") as remote:
        result = inner.runpytest("--bandwidth-emulator-url", remote.base_url)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*startTime needs the in-process emulator*"])
