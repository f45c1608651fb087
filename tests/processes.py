"""Child processes in tests: the real CLI, started and always stopped, and the check that no
test leaves a process behind.

``EmulatorProcess.start`` runs ``bandwidth-emulator --port 0 ...`` (as ``python -m emulator``),
waits a bounded time for the line with its URL, and on every path that does not hand the
process over (start-up timeout, early exit, an exception) stops it and waits for it. Whoever
holds an ``EmulatorProcess`` stops it with ``stop()`` (SIGTERM, then SIGKILL if it does not
exit in time); the ``start_cli`` fixture in conftest.py and ``running_cli`` do that for them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import pytest

# Generous: on a loaded machine starting Python and importing aiohttp and pydantic takes seconds.
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
URL = re.compile(rb"http://127\.0\.0\.1:\d+")


class EmulatorDidNotStart(AssertionError):
    """The process did not print its URL in time, or exited first; it has been stopped."""


class EmulatorProcess:
    """A started process that printed its base URL on its first line of standard output."""

    def __init__(self, process: subprocess.Popen[bytes], base_url: str, stderr: IO[bytes]) -> None:
        self.process = process
        self.base_url = base_url
        self._stderr = stderr

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    @classmethod
    def start(
        cls,
        *args: str,
        env: dict[str, str] | None = None,
        ready_timeout: float = READY_TIMEOUT,
        command: Sequence[str] | None = None,
    ) -> EmulatorProcess:
        """Start ``python -m emulator --port 0 *args`` (or ``command``) and wait for its URL."""
        argv = list(command) if command is not None else [sys.executable, "-m", "emulator", "--port", "0", *args]
        # Standard error goes to a file: read at any time, and never a full pipe blocking the server.
        stderr = tempfile.NamedTemporaryFile(prefix="bwe-stderr-")  # noqa: SIM115 (closed by close())
        try:
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, env=env)
        except BaseException:
            stderr.close()
            raise
        try:
            line = _read_line(process, ready_timeout)
        except TimeoutError:
            problem = f"printed no URL within {ready_timeout:g} s"
        except EOFError:
            problem = f"exited with status {process.returncode} before printing its URL"
        except BaseException:
            _abandon(process, stderr)
            raise
        else:
            match = URL.search(line)
            if match is not None:
                return cls(process, match.group(0).decode(), stderr)
            problem = f"printed no base URL in its first line {line.decode(errors='replace')!r}"
        _stop(process, signal.SIGKILL, STOP_TIMEOUT)
        message = f"{' '.join(argv)}: {problem}\nstandard error:\n{_read(stderr)[-3000:]}"
        _abandon(process, stderr)
        raise EmulatorDidNotStart(message)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send ``sig`` unless it has exited; wait ``timeout`` s, then SIGKILL. Returns the exit status."""
        return _stop(self.process, sig, timeout)

    def kill(self) -> int:
        return _stop(self.process, signal.SIGKILL, STOP_TIMEOUT)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait for it to exit by itself (bounded); a process that does not is killed, and the test fails."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            _stop(self.process, signal.SIGKILL, STOP_TIMEOUT)
            raise AssertionError(f"pid {self.pid} did not exit within {timeout:g} s: killed") from None

    def stderr(self) -> str:
        """Everything it wrote on standard error so far."""
        return _read(self._stderr)

    def close(self) -> None:
        """Stop it (SIGTERM, then SIGKILL) if running, and release its files; safe to call twice."""
        try:
            self.stop()
        finally:
            _abandon(self.process, self._stderr)


@contextlib.contextmanager
def running_cli(*args: str, env: dict[str, str] | None = None) -> Iterator[EmulatorProcess]:
    """The CLI for the duration of a ``with`` block (for module-scoped fixtures)."""
    emulator = EmulatorProcess.start(*args, env=env)
    try:
        yield emulator
    finally:
        emulator.close()


def _read_line(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    """The first line of its standard output, waiting at most ``timeout`` seconds."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in line:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise TimeoutError
            chunk = os.read(fd, 4096)
            if not chunk:
                process.wait(STOP_TIMEOUT)
                raise EOFError
            line += chunk
    return line.split(b"\n", 1)[0]


def _stop(process: subprocess.Popen[bytes], sig: int, timeout: float) -> int:
    if process.poll() is None:
        try:
            process.send_signal(sig)
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
        except BaseException:
            process.kill()
            process.wait()
            raise
    return process.wait()


def _abandon(process: subprocess.Popen[bytes], stderr: IO[bytes]) -> None:
    """Stop a process that is not handed over, and close its files."""
    try:
        _stop(process, signal.SIGKILL, STOP_TIMEOUT)
    finally:
        if process.stdout is not None:
            process.stdout.close()
        stderr.close()


def _read(stderr: IO[bytes]) -> str:
    stderr.flush()
    return Path(stderr.name).read_text(errors="replace")


# -- no process outlives the tests -------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_tests() -> Iterator[None]:
    """Fails the session if a test left a child process (or an orphaned descendant) running;
    those are then killed. Imported by conftest.py; with pytest-xdist each worker checks its own."""
    before = set(live_descendants())
    yield
    leaked = {pid: cmd for pid, cmd in live_descendants().items() if pid not in before}
    if leaked:
        end_processes(list(leaked))
        shown = "\n".join(f"  pid {pid}: {cmd}" for pid, cmd in sorted(leaked.items()))
        pytest.fail(f"processes left running by the tests (now killed):\n{shown}", pytrace=False)


def become_subreaper() -> None:
    """Orphaned descendants (a grandchild whose parent exited) are re-parented to this process
    instead of init, so that ``live_descendants`` still sees them. Linux only; a no-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def live_descendants(pid: int | None = None) -> dict[int, str]:
    """Running (not zombie) descendants of ``pid`` (default: this process), with their command
    lines, read from /proc; empty where there is no /proc."""
    root = os.getpid() if pid is None else pid
    parents: dict[int, int] = {}
    states: dict[int, str] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # pid (comm) state ppid ...; comm may contain spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        states[int(entry)] = fields[0]
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                frontier.append(child)
                if states[child] != "Z":
                    found[child] = _cmdline(child)
    return found


def end_processes(pids: Sequence[int]) -> None:
    """SIGKILL each of them, and reap those that are our children."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"
