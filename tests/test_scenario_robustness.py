"""Scenarios: what validation refuses (non-finite numbers, times outside what ids and
timestamps can hold), and that whatever it accepts works end to end without a 5xx."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import ACCOUNT, AUTH, closed_port_url

from emulator.app import create_app
from emulator.config import Settings
from emulator.scenarios.format import ScenarioError, load_scenario_text, parse_scenario

NON_FINITE = [".nan", ".inf", "-.inf", ".NaN", "+.Inf"]

# Every duration, retry schedule, window and timeout of the format, as YAML with {} for the value.
DURATION_PLACES = {
    "applications[0].callbackTimeout": "applications: [{{id: a, callbackTimeout: {}}}]",
    "applications[0].retrySchedule[1]": "applications: [{{id: a, retrySchedule: [0, {}]}}]",
    "applications[0].retryWindow": "applications: [{{id: a, retryWindow: {}}}]",
    "rules[0].events[0].after": "rules: [{{events: [{{event: message-delivered, after: {}}}]}}]",
    "defaults.sms[0].after": "defaults: {{sms: [{{event: message-delivered, after: {}}}]}}",
    "defaults.inboundDelay": "defaults: {{inboundDelay: {}}}",
    "inbound[0].at[0]": "inbound: [{{to: '+15554443333', at: {}}}]",
    "inbound[0].every": "inbound: [{{to: '+15554443333', every: {}}}]",
    "inbound[0].start": "inbound: [{{to: '+15554443333', every: 60, start: {}}}]",
    "autoReplies[0].after": "autoReplies: [{{reply: hi, after: {}}}]",
    "accounts[0].rateLimit.queue": "accounts: [{{id: a, rateLimit: {{queue: {}}}}}]",
    "oauth.tokenLifetime": "oauth: {{tokenLifetime: {}}}",
    "rcs.receiptTimeout": "rcs: {{receiptTimeout: {}}}",
    "rcs.readAfter": "rcs: {{readAfter: {}}}",
    "faults[0].probability": "faults: [{{status: 500, probability: {}}}]",
}


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize("path", list(DURATION_PLACES))
def test_non_finite_numbers_are_refused_where_they_stand(path: str, value: str) -> None:
    text = DURATION_PLACES[path].format(value)
    with pytest.raises(ScenarioError) as caught:
        load_scenario_text(text, "s.yaml")
    assert any(where == path for where, _ in caught.value.problems), caught.value


@pytest.mark.parametrize("value", ["'" + "9" * 400 + "s'", "1.0e300", "36501d"])
def test_durations_beyond_ten_years_are_refused(value: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario_text(f"rules: [{{events: [{{event: message-delivered, after: {value}}}]}}]", "s.yaml")
    assert "rules[0].events[0].after" in str(caught.value)


@pytest.mark.parametrize(
    "start", ["1969-12-31T23:59:59Z", "1900-01-01T00:00:00+00:00", "0001-01-01T00:00:00Z", "2200-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]
)
def test_a_start_time_outside_what_ids_and_timestamps_hold_is_refused(start: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario_text(f"startTime: {start}", "s.yaml")
    assert "startTime" in str(caught.value)


@pytest.mark.parametrize("start", ["1970-01-01T00:00:00Z", "2199-12-31T23:59:59Z", "2024-06-01T12:00:00-07:00"])
def test_a_start_time_inside_the_range_is_accepted(start: str) -> None:
    assert load_scenario_text(f"startTime: {start}").start_time is not None


def test_validate_prints_the_file_path_problem_line_for_a_nan(tmp_path: Path) -> None:
    path = tmp_path / "nan.yaml"
    path.write_text("rules:\n  - events:\n      - event: message-delivered\n        after: .nan\n")
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "validate", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"{path}: rules[0].events[0].after: "), result.stderr
    assert "finite" in result.stderr and "Traceback" not in result.stderr


# -- any scenario that validates works end to end ------------------------------------------

NUMBER = "+15554443333"  # ours
HANDSETS = ["+15552221111", "+15552221112"]

good_durations = st.one_of(
    st.floats(min_value=0, max_value=7 * 86400, allow_nan=False),
    st.integers(min_value=0, max_value=3600).map(lambda n: f"{n}s"),
    st.sampled_from(["500ms", "5m", "2h", "1d", 0, 0.0]),
)
# Now and then a value validation must refuse: non-finite, or beyond what timestamps hold.
bad_durations = st.sampled_from([math.inf, -math.inf, math.nan, 1e300, "9" * 400 + "d"])
durations = st.integers(0, 24).flatmap(lambda n: bad_durations if n == 0 else good_durations)
positive = st.floats(min_value=0.001, max_value=3 * 86400)
status_events = st.sampled_from(["message-sending", "message-sent", "message-delivered", "message-failed"])
steps = st.lists(
    st.fixed_dictionaries({"event": status_events, "after": durations}).map(
        lambda step: {**step, "errorCode": 4720} if step["event"] == "message-failed" else step
    ),
    min_size=1,
    max_size=4,
)


def _schedule(offsets: list[float]) -> list[float]:
    return [0.0, *sorted({o for o in offsets if o > 0})]


applications = st.fixed_dictionaries(
    {"id": st.sampled_from(["app", "*"])},
    optional={
        "statusCallbackUrl": st.just("CALLBACK"),
        "inboundCallbackUrl": st.just("CALLBACK"),
        "callbackTimeout": positive,
        "retrySchedule": st.lists(st.floats(min_value=0, max_value=2 * 86400), max_size=6).map(_schedule),
        "retryWindow": positive,
        "redirects": st.sampled_from(["failure", "success"]),
        "ordering": st.sampled_from(["independent", "hold"]),
        "duplicates": st.integers(0, 3),
        "messageSent": st.booleans(),
        "mmsDeliveryReceipts": st.booleans(),
        "callbackAuth": st.sampled_from(["basic", "challenge"]),
        "callbackCredentials": st.just({"username": "u", "password": "p"}),
    },
).map(lambda app: {**app, "numbers": [NUMBER]} if app["id"] == "app" else app)
matches = st.fixed_dictionaries(
    {},
    optional={
        "to": st.sampled_from([*HANDSETS, "+1555*"]),
        "text": st.sampled_from(["hello", "STOP", ""]),
        "kind": st.sampled_from(["sms", "mms", "group", ["sms", "mms"]]),
    },
)
rules = st.one_of(
    st.fixed_dictionaries({"match": matches, "events": steps}),
    st.fixed_dictionaries({"match": matches, "errorCode": st.sampled_from([4432, 4720, 5620, 9902])}),
    st.fixed_dictionaries({"match": matches, "noReceipt": st.just(True)}),
)
faults = st.fixed_dictionaries(
    {"status": st.sampled_from([429, 500, 503])},
    optional={
        "match": matches,
        "first": st.integers(1, 3),
        "operation": st.sampled_from(["createMessage", "listMessages"]),
    },
)
inbound = st.one_of(
    st.fixed_dictionaries({"to": st.just(NUMBER), "at": st.lists(durations, min_size=1, max_size=3)}),
    st.fixed_dictionaries(
        {"to": st.just(NUMBER), "every": st.floats(min_value=3600, max_value=86400), "count": st.integers(1, 5)},
        optional={"start": durations},
    ),
)
auto_replies = st.fixed_dictionaries({"match": matches, "reply": st.text(max_size=20), "after": durations})
start_times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2199, 12, 30), timezones=st.just(UTC)
).map(lambda d: d.isoformat())
scenarios = st.fixed_dictionaries(
    {},
    optional={
        "seed": st.integers(0, 2**64),
        "startTime": start_times,
        "magicNumbers": st.booleans(),
        "groupInvalidNumber": st.sampled_from(["correct", "legacy"]),
        "messageStorage": st.booleans(),
        "defaults": st.fixed_dictionaries({}, optional={"sms": steps, "mms": steps, "inboundDelay": durations}),
        "applications": st.lists(applications, max_size=2, unique_by=lambda a: a["id"]),
        "rules": st.lists(rules, max_size=3),
        "faults": st.lists(faults, max_size=2),
        "inbound": st.lists(inbound, max_size=2),
        "autoReplies": st.lists(auto_replies, max_size=2),
        "accounts": st.lists(
            st.fixed_dictionaries(
                {"id": st.just(ACCOUNT)},
                optional={"rateLimit": st.fixed_dictionaries({}, optional={"segmentsPerMinute": st.integers(1, 600), "queue": positive})},
            ),
            max_size=1,
        ),
    },
)


def _with_url(value: Any, url: str) -> Any:
    if value == "CALLBACK":
        return url
    if isinstance(value, dict):
        return {k: _with_url(v, url) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_url(v, url) for v in value]
    return value


async def _use(data: dict[str, Any]) -> list[tuple[str, int]]:
    """Load the scenario and use it: sends, a day of virtual time, the lists, the journal."""
    url = closed_port_url()  # loopback, refused at once: every callback is retried for a day
    scenario = parse_scenario(_with_url(data, url))
    app = create_app(Settings(clock="manual", callback_url=url), scenario=scenario)
    answers: list[tuple[str, int]] = []
    async with TestClient(TestServer(app)) as client:

        async def call(method: str, path: str, **kwargs: Any) -> None:
            resp = await client.request(method, path, **kwargs)
            await resp.read()
            answers.append((f"{method} {path}", resp.status))

        for body in (
            {"applicationId": "app", "from": NUMBER, "to": [HANDSETS[0]], "text": "hello"},
            {"applicationId": "app", "from": NUMBER, "to": HANDSETS, "text": "STOP"},
            {"applicationId": "other", "from": NUMBER, "to": [HANDSETS[1]], "text": "x", "media": ["http://127.0.0.1:1/a.png"]},
        ):
            await call("POST", f"/api/v2/users/{ACCOUNT}/messages", json=body, headers=AUTH)
        await call("POST", "/_emulator/clock/advance", json={"seconds": 86400})
        await call("GET", f"/api/v2/users/{ACCOUNT}/messages", params={"messageDirection": "OUTBOUND"}, headers=AUTH)
        await call("GET", f"/api/v2/users/{ACCOUNT}/messages", params={"messageStatus": "DELIVERED"}, headers=AUTH)
        await call("GET", "/_emulator/messages")
        await call("GET", "/_emulator/callbacks")
        await call("GET", "/_emulator/health")
        await call("GET", "/")
    return answers


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios)
def test_any_scenario_that_validates_works_end_to_end(data: dict[str, Any]) -> None:
    try:
        parse_scenario(_with_url(data, "http://127.0.0.1:9/"))
    except ScenarioError:
        return  # refused with the usual line: nothing to use
    answers = asyncio.run(asyncio.wait_for(_use(data), 60))
    assert all(status < 500 for _, status in answers) or _only_scripted_faults(data, answers), answers


def _only_scripted_faults(data: dict[str, Any], answers: list[tuple[str, int]]) -> bool:
    # A scenario's faults make the Bandwidth API answer 500/503 on purpose; nothing else may.
    scripted = {f["status"] for f in data.get("faults", [])}
    return all(
        status < 500 or (status in scripted and path.split(" ")[1].startswith("/api/v2"))
        for path, status in answers
    )

