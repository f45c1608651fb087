"""A plain install works: build the wheel, install it into a fresh virtualenv, run example
tests there through the plugin's entry point.

Tests reach no network, so the new virtualenv gets its dependencies from this one — but
only the packages the *wheel's own* ``Requires-Dist`` (plus pytest) lead to, resolved from
their metadata, so a dependency missing from pyproject.toml fails here. Nothing else of this
environment (no editable install, no pytest-asyncio, no SDK) is visible to it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path, PurePosixPath

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["test_howto_send_and_assert_delivery.py", "test_howto_magic_failure.py", "test_howto_retrying_webhook.py",
            "test_howto_group_quirk.py"]  # fmt: skip


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def dependency_closure(requirements: list[str]) -> dict[str, metadata.Distribution]:
    found: dict[str, metadata.Distribution] = {}
    todo = list(requirements)
    while todo:
        requirement = Requirement(todo.pop())
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        dist = metadata.distribution(requirement.name)
        assert dist.version in requirement.specifier or not requirement.specifier, (requirement, dist.version)
        found[name] = dist
        todo.extend(dist.requires or [])
    return found


def link_distributions(dists: dict[str, metadata.Distribution], into: Path) -> None:
    into.mkdir()
    for dist in dists.values():
        base = Path(dist.locate_file(""))
        tops = {PurePosixPath(str(f)).parts[0] for f in dist.files or []}
        for top in tops - {"..", "__pycache__"}:
            target = into / top
            if not target.exists() and (base / top).exists():
                target.symlink_to(base / top)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    # Build from a copy, so the build leaves nothing in the working tree.
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "emulator", source / "emulator", ignore=shutil.ignore_patterns("__pycache__"))
    dist = work / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-index", "--no-build-isolation", "-w", dist, source],
        capture_output=True, text=True, timeout=240,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    # No deprecation banners from the build backend (the license as an SPDX string, ...).
    assert "Deprecat" not in build.stdout + build.stderr, build.stdout + build.stderr
    [wheel] = dist.glob("bandwidth_emulator-*.whl")

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [meta] = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata_ = Parser().parsestr(archive.read(meta).decode())
        requires = metadata_.get_all("Requires-Dist") or []
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert "[pytest11]" in archive.read(entry_points).decode()
        [license_file] = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert archive.read(license_file) == (ROOT / "LICENSE").read_bytes()
    assert "emulator/messaging/data/error_codes.json" in names
    # Packaging as the ecosystem expects (README.md, 'Install').
    assert metadata_["License-Expression"] == "MIT"
    assert not [c for c in metadata_.get_all("Classifier") or [] if c.startswith("License ::")]
    classifiers = set(metadata_.get_all("Classifier") or [])
    assert {"Framework :: Pytest", "Programming Language :: Python :: 3.11", "Typing :: Typed"} <= classifiers
    assert "emulator/py.typed" in names
    assert "emulator/scenarios/scenario.schema.json" in names
    shipped = {PurePosixPath(n).name for n in names if n.startswith("emulator/scenarios/library/") and n.endswith(".yaml")}
    assert shipped == {p.name for p in (ROOT / "emulator" / "scenarios" / "library").glob("*.yaml")}
    assert "carrier-failures.yaml" in shipped

    venv = work / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    runtime = [r for r in requires if "extra ==" not in r]
    link_distributions(dependency_closure([*runtime, "pytest"]), work / "deps")
    (site / "dependencies.pth").write_text(str(work / "deps") + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", wheel)
    run(sys.executable, "-m", "pip", "--python", python, "check")  # every declared dependency is there
    return python


def test_examples_pass_against_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    project = tmp_path / "users-project"
    project.mkdir()
    for name in EXAMPLES:
        shutil.copy(ROOT / "tests" / "examples" / name, project / name)
    (project / "test_environment.py").write_text(
        "import importlib.util, os, sys, emulator\n"
        "def test_the_wheel_is_what_runs():\n"
        "    assert emulator.__file__.startswith(sys.prefix), emulator.__file__\n"
        "    assert importlib.util.find_spec('pytest_asyncio') is None\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST", "VIRTUAL_ENV"))}
    out = run(installed, "-m", "pytest", "-q", "-p", "no:cacheprovider", project, cwd=project, env=env)
    assert "passed" in out and "failed" not in out and "error" not in out, out
    assert f"{len(EXAMPLES) * 2 + 1} passed" in out, out


def test_the_console_script_is_installed(installed: Path) -> None:
    out = run(installed.parent / "bandwidth-emulator", "--help")
    assert "--callback-url" in out


def test_the_web_page_ships_in_the_wheel(installed: Path, tmp_path: Path) -> None:
    code = (
        "from emulator.control.ui import ASSETS, _static\n"
        "assert b'/_emulator/ui/static/app.js' in _static('index.html')\n"
        "for name in ASSETS: assert _static(name), name\n"
        "import emulator; print(emulator.__file__)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST", "VIRTUAL_ENV"))}
    out = run(installed, "-c", code, cwd=tmp_path, env=env)
    assert out.startswith(str(installed.parent.parent)), out  # the wheel's copy, not this tree's


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST", "VIRTUAL_ENV", "BWE_"))}


def test_ready_made_scenarios_load_by_name_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    out = run(installed.parent / "bandwidth-emulator", "validate", "carrier-failures", "rate-limited.yaml",
              cwd=tmp_path, env=clean_env())
    assert out.count(": ok") == 2, out
    code = (
        "from emulator.scenarios.format import library_path\n"
        "from emulator.testing.runner import load_scenario\n"
        "print(load_scenario('flaky-webhook', __import__('pathlib').Path('.')).name)\n"
        "print(library_path('carrier-failures'))\n"
    )
    name, path = run(installed, "-c", code, cwd=tmp_path, env=clean_env()).split()
    assert name == "flaky-webhook"
    assert path.startswith(str(installed.parent.parent))  # the wheel's copy, not this tree's


def test_the_json_schema_ships_and_the_scenarios_point_at_it(installed: Path, tmp_path: Path) -> None:
    code = (
        "from emulator.scenarios.format import LIBRARY, SCHEMA_FILE\n"
        "print(SCHEMA_FILE)\n"
        "for p in sorted(LIBRARY.glob('*.yaml')):\n"
        "    assert p.read_text().splitlines()[0] == '# yaml-language-server: $schema=../scenario.schema.json', p\n"
        "    assert (p.parent / '../scenario.schema.json').resolve() == SCHEMA_FILE\n"
    )
    schema_file = Path(run(installed, "-c", code, cwd=tmp_path, env=clean_env()).strip())
    assert str(schema_file).startswith(str(installed.parent.parent))
    printed = run(installed.parent / "bandwidth-emulator", "schema", cwd=tmp_path, env=clean_env())
    assert schema_file.read_text(encoding="utf-8").strip() == printed.strip()


def test_the_client_is_typed_for_users_type_checkers(installed: Path, tmp_path: Path) -> None:
    code = "import importlib.resources as r; print(r.files('emulator').joinpath('py.typed').is_file())"
    assert run(installed, "-c", code, cwd=tmp_path, env=clean_env()).strip() == "True"
