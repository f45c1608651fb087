"""The JSON Schema shipped in the package is the one the scenario models give (docs/scenarios.md,
'Editor support (JSON Schema)'); regenerate it with
``bandwidth-emulator schema > emulator/scenarios/scenario.schema.json``."""

from __future__ import annotations

from emulator.scenarios.format import LIBRARY, SCHEMA_FILE, json_schema, library_names, library_path, load_scenario_file


def test_the_shipped_schema_is_up_to_date():
    assert SCHEMA_FILE.read_text(encoding="utf-8").strip() == json_schema().strip(), (
        "emulator/scenarios/scenario.schema.json is stale: bandwidth-emulator schema > emulator/scenarios/scenario.schema.json"
    )


def test_every_ready_made_scenario_points_editors_at_the_schema():
    for path in LIBRARY.glob("*.yaml"):
        assert path.read_text(encoding="utf-8").splitlines()[0] == "# yaml-language-server: $schema=../scenario.schema.json"


def test_names_resolve_to_the_library(tmp_path, monkeypatch):
    assert "carrier-failures" in library_names() and "default" in library_names()
    assert library_path("carrier-failures") == LIBRARY / "carrier-failures.yaml"
    assert library_path("messaging-2.0-early") == LIBRARY / "messaging-2.0-early.yaml"
    assert library_path("carrier-failures.yaml") == LIBRARY / "carrier-failures.yaml"
    assert library_path("nope") is None and library_path("./carrier-failures") is None
    assert library_path("x/carrier-failures") is None
    monkeypatch.chdir(tmp_path)
    assert load_scenario_file("carrier-failures").name == "carrier-failures"
    # A file of that name in the current folder comes first.
    (tmp_path / "carrier-failures").write_text("name: mine\n")
    assert load_scenario_file("carrier-failures").name == "mine"


def test_an_unknown_name_lists_the_ready_made_ones(tmp_path, monkeypatch):
    import pytest

    from emulator.scenarios.format import ScenarioError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScenarioError) as caught:
        load_scenario_file("carrier-failure")
    assert "carrier-failures" in str(caught.value) and "ready-made" in str(caught.value)
