"""How callback delivery is configured in a scenario's applications."""

from __future__ import annotations

import pytest

from emulator.scenarios.format import DEFAULT_RETRY_SCHEDULE, Application, ScenarioError, load_scenario_text

YAML = """
applications:
  - id: my-app
    statusCallbackUrl: http://127.0.0.1:9000/status
    inboundCallbackUrl: http://127.0.0.1:9000/inbound
    callbackCredentials: {username: bw, password: s3cret}
    callbackAuth: challenge
    callbackTimeout: 2s
    retrySchedule: [0, 30s, 5m, 1h, 12h, 24h]
    retryWindow: 1d
    redirects: success
    ordering: hold
    duplicates: 1
"""


def test_every_delivery_setting_from_yaml():
    app = load_scenario_text(YAML).applications[0]
    assert app.callback_timeout == 2.0
    assert app.retry_schedule == [0, 30, 300, 3600, 43200, 86400]
    assert app.retry_window == 86400
    assert (app.callback_auth, app.redirects, app.ordering, app.duplicates) == ("challenge", "success", "hold", 1)
    assert app.credentials_for("message-delivered").username == "bw"
    assert app.credentials_for("message-received").username == "bw"


def test_defaults_match_the_documentation():
    app = Application(id="x")
    assert app.callback_timeout == 10.0
    assert app.retry_window == 86400
    assert app.retry_schedule == list(DEFAULT_RETRY_SCHEDULE)
    # At least 8 attempts in the 24 hours, the last one after hour 12.
    assert len(app.retry_schedule) >= 8 and app.retry_schedule[-1] > 12 * 3600
    assert (app.redirects, app.ordering, app.duplicates, app.callback_auth) == ("failure", "independent", 0, "basic")


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("[]", "starts with 0"),
        ("[1m, 5m]", "starts with 0"),
        ("[0, 5m, 1m]", "ascending"),
        ("[0, 1m, 1m]", "ascending"),
        ("[0, soon]", "not a duration"),
    ],
)
def test_bad_retry_schedules_are_refused_with_their_path(schedule: str, message: str):
    with pytest.raises(ScenarioError) as caught:
        load_scenario_text(f"applications:\n  - id: a\n    retrySchedule: {schedule}\n", "s.yaml")
    text = str(caught.value)
    assert "s.yaml: applications[0].retrySchedule" in text and message in text


@pytest.mark.parametrize("field", ["callbackTimeout: 0", "retryWindow: 0", "duplicates: 11", "ordering: random",
                                   "redirects: follow", "callbackAuth: digest"])
def test_bad_delivery_settings_are_refused(field: str):
    with pytest.raises(ScenarioError) as caught:
        load_scenario_text(f"applications:\n  - id: a\n    {field}\n")
    assert "applications[0]." + field.split(":")[0] in str(caught.value)
