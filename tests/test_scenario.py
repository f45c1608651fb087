"""The scenario format: loading, strict validation with path-qualified errors, the schema."""

from __future__ import annotations

import json

import pytest

from emulator.scenarios.format import (
    Scenario,
    ScenarioError,
    json_schema,
    load_scenario_file,
    load_scenario_text,
    parse_scenario,
)


def problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, "s.yaml")
    return info.value.problems


def test_empty_file_is_the_default_scenario():
    assert load_scenario_text("") == Scenario()
    assert load_scenario_text("{}") == Scenario()


@pytest.mark.parametrize(
    "value, seconds",
    [(30, 30.0), (1.5, 1.5), ("30", 30.0), ("500ms", 0.5), ("30s", 30.0), ("5m", 300.0), ("2h", 7200.0), ("1d", 86400.0)],
)
def test_durations(value, seconds):
    scenario = parse_scenario({"defaults": {"inboundDelay": value}})
    assert scenario.defaults.inbound_delay == seconds


@pytest.mark.parametrize("value", ["soon", "-5s", -1, True, "5 minutes"])
def test_bad_durations_are_named(value):
    found = problems(json.dumps({"defaults": {"inboundDelay": value}}))
    assert found[0][0] == "defaults.inboundDelay"


def test_error_path_points_into_lists_with_camel_case_keys():
    text = """
rules:
  - match: {to: "+15551230000"}
    errorCode: 4720
  - match: {kind: sms}
    events:
      - {event: message-sending, after: 1s}
  - match: {tag: x}
    events:
      - {event: message-failed, after: 30s, errorCode: 12}
"""
    assert problems(text) == [("rules[2].events[0].errorCode", "Input should be greater than or equal to 1000")]


def test_every_problem_is_reported_at_once():
    text = """
name: broken
magicNumbers: sometimes
groupInvalidNumber: quirky
rules:
  - match: {text: {regex: "("}}
    noReceipt: true
  - events:
      - {event: message-failed}
  - {}
unknownKey: 1
"""
    paths = [path for path, _ in problems(text)]
    assert paths == [
        "magicNumbers",
        "groupInvalidNumber",
        "rules[0].match.text.regex",
        "rules[1].events[0].errorCode",
        "rules[2]",
        "unknownKey",
    ]


@pytest.mark.parametrize(
    "step, message",
    [
        ({"event": "message-failed"}, "message-failed needs an errorCode, e.g. 4720"),
        ({"event": "message-delivered", "errorCode": 4720}, "only message-failed carries an errorCode, not message-delivered"),
        ({"event": "message-failed", "errorCode": 4999}, "4999 is not a documented Bandwidth error code; give it a description"),
    ],
)
def test_event_step_error_code_checks(step, message):
    found = problems(json.dumps({"rules": [{"events": [step]}]}))
    assert found == [("rules[0].events[0].errorCode", message)]


def test_undocumented_code_is_fine_with_a_description():
    scenario = parse_scenario(
        {
            "rules": [
                {"events": [{"event": "message-failed", "errorCode": 4999, "description": "made-up"}]},
                {"errorCode": 4998, "description": "x"},
            ]
        }
    )
    assert scenario.rules[0].events[0].error_code == 4999


def test_rule_needs_exactly_one_outcome():
    found = problems(json.dumps({"rules": [{"errorCode": 4720, "noReceipt": True}]}))
    assert found == [("rules[0]", "a rule needs exactly one outcome: events, errorCode or noReceipt (got errorCode, noReceipt)")]


def test_pattern_shorthands():
    scenario = parse_scenario(
        {
            "rules": [
                {"match": {"to": "+15551234567", "from": "+1555*", "text": "STOP", "kind": "mms"}, "noReceipt": True},
                {"match": {"to": {"regex": "^\\+44"}, "kind": ["sms", "group"]}, "errorCode": 4720},
            ]
        }
    )
    first, second = scenario.rules
    assert first.match.to.exact == "+15551234567"
    assert first.match.from_.glob == "+1555*"
    assert first.match.text.contains == "STOP"
    assert first.match.kind == ["mms"]
    assert second.match.to.regex == "^\\+44"
    assert second.match.kind == ["sms", "group"]


def test_pattern_takes_exactly_one_key():
    found = problems(json.dumps({"rules": [{"match": {"to": {"prefix": "+1", "glob": "*"}}, "noReceipt": True}]}))
    assert found == [("rules[0].match.to", "give exactly one of exact, prefix, glob, regex, contains")]


def test_fault_triggers_are_exclusive():
    found = problems(json.dumps({"faults": [{"status": 429, "first": 2, "every": 3}]}))
    assert found == [("faults[0]", "give at most one of first, every, probability (got first, every)")]
    assert problems(json.dumps({"faults": [{"status": 404}]}))[0][0] == "faults[0].status"


def test_inbound_needs_one_schedule_and_e164_numbers():
    found = problems(json.dumps({"inbound": [{"to": "+15554443333"}, {"to": "me", "at": 5}, {"to": "+15554443333", "at": 1, "count": 2}]}))
    assert found == [
        ("inbound[0]", "give exactly one of at (times) or every (an interval)"),
        ("inbound[1].to", "'me' is not an E.164 number such as +15554443333"),
        ("inbound[2]", "start and count go with every"),
    ]


def test_yaml_syntax_errors_give_a_line():
    found = problems("rules: [\n  - a\n")
    assert found[0][0].startswith("line ")
    assert "not valid YAML" in found[0][1]


def test_top_level_must_be_a_mapping():
    assert problems("- 1\n- 2\n") == [("", "a scenario must be a mapping of keys to values")]


def test_error_message_names_file_path_and_problem(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("rules:\n  - events: [{event: message-failed, errorCode: 1}]\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario_file(path)
    assert str(info.value) == f"{path}: rules[0].events[0].errorCode: Input should be greater than or equal to 1000"


def test_missing_file_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError) as info:
        load_scenario_file(tmp_path / "nope.yaml")
    assert "cannot read file" in str(info.value)


def test_json_schema_is_usable_by_editors():
    schema = json.loads(json_schema())
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["title"] == "bandwidth-emulator scenario"
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    for key in ("rules", "faults", "inbound", "autoReplies", "accounts", "applications", "groupInvalidNumber", "seed"):
        assert props[key]["description"], key
    # Every field of every definition explains itself.
    for name, definition in schema["$defs"].items():
        for field, spec in definition.get("properties", {}).items():
            assert spec.get("description"), f"{name}.{field} has no description"
            assert spec.get("title"), f"{name}.{field} has no title"
    # camelCase keys, and shorthand strings allowed where the format allows them.
    match = schema["$defs"]["Match"]["properties"]
    assert {"to", "from", "text", "tag", "kind", "applicationId", "accountId"} <= set(match)
    assert {"type": "string"} in match["to"]["anyOf"]
    duration = schema["$defs"]["EventStep"]["properties"]["after"]
    assert {t.get("type") for t in duration["anyOf"]} == {"number", "string"}


async def test_invalid_scenario_over_http_keeps_the_running_one(make_client):
    client = await make_client({"name": "running", "rules": [{"errorCode": 4720}]})
    resp = await client.put("/_emulator/scenario", data="name: new\nrules:\n  - events: [{event: message-failed}]\n")
    assert resp.status == 400
    assert await resp.json() == {
        "type": "invalid-request",
        "description": "invalid scenario; the running scenario stays in force",
        "details": [{"path": "rules[0].events[0].errorCode", "message": "message-failed needs an errorCode, e.g. 4720"}],
    }
    shown = await (await client.get("/_emulator/scenario")).json()
    assert shown["name"] == "running" and shown["rules"][0]["errorCode"] == 4720


def test_applications_and_accounts_are_listed_once_and_numbers_owned_once():
    found = problems(
        json.dumps(
            {
                "applications": [
                    {"id": "a", "numbers": ["+15554443333"]},
                    {"id": "b", "numbers": ["+15554443333"]},
                ],
                "accounts": [{"id": "1"}, {"id": "1"}],
            }
        )
    )
    assert found == [
        ("accounts[1]", "account '1' is listed twice"),
        ("applications[1].numbers", "+15554443333 is already owned by application 'a'"),
    ]
    assert problems(json.dumps({"applications": [{"id": "a"}, {"id": "a"}]})) == [
        ("applications[1]", "application 'a' is listed twice")
    ]
    assert problems(json.dumps({"applications": [{"id": "*", "numbers": ["+15554443333"]}]})) == [
        ("applications[0].numbers", "'*' cannot own numbers; list them under the application's own id")
    ]
