"""The Dockerfile's own commands, run here: the dependency layer installs exactly the
package's dependencies, and the HEALTHCHECK follows BWE_PORT. (Building the image needs a
Docker daemon and a registry, which the test machines do not have.)"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

from emulator.testing.runner import BackgroundEmulator

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest))
    return found


def test_dependencies_are_installed_before_the_code_is_copied():
    steps = instructions()
    copies = [i for i, (k, _) in enumerate(steps) if k == "COPY"]
    assert steps[copies[0]] == ("COPY", "pyproject.toml ./")
    install_deps = next(i for i, (k, rest) in enumerate(steps) if k == "RUN" and "requirements.txt" in rest)
    copy_code = next(i for i, (k, rest) in enumerate(steps) if k == "COPY" and rest.startswith("emulator"))
    assert copies[0] < install_deps < copy_code
    assert "--no-deps" in next(rest for k, rest in steps[copy_code:] if k == "RUN")


def test_the_dependency_layer_lists_the_package_dependencies(tmp_path: Path):
    run = next(rest for k, rest in instructions() if k == "RUN" and "tomllib" in rest)
    command = shlex.split(run.split(">")[0])  # python -c "..."
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    out = subprocess.run([sys.executable, *command[1:]], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert out.splitlines() == expected


def test_data_volume_is_writable_by_the_emulator_user():
    steps = instructions()
    assert ("VOLUME", "/data") in steps
    assert any(k == "RUN" and "chown emulator /data" in rest for k, rest in steps)
    user = [rest for k, rest in steps if k == "USER"]
    assert user == ["emulator"]


def healthcheck_command() -> list[str]:
    [check] = [rest for k, rest in instructions() if k == "HEALTHCHECK"]
    return shlex.split(check.split(" CMD ", 1)[1])


def test_the_healthcheck_follows_bwe_port():
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    with BackgroundEmulator(clock="manual") as emu:
        port = emu.base_url.rsplit(":", 1)[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("BWE_")}
        healthy = subprocess.run([sys.executable, "-c", command[2]], env={**env, "BWE_PORT": port}, capture_output=True)
        assert healthy.returncode == 0, healthy.stderr
        # Another port: nothing answers there, the check fails.
        unhealthy = subprocess.run([sys.executable, "-c", command[2]], env={**env, "BWE_PORT": "1"}, capture_output=True)
        assert unhealthy.returncode != 0
