"""glibc's mmap threshold is fixed in the CLI's process (emulator/cli.py, fix_mmap_threshold).

Left dynamic, glibc raises the threshold to the size of each large block freed, so that the next
block of that size comes from the main heap: with retention on, the big dicts' tables are
reallocated at the same size every few virtual minutes and RSS moved in steps of a few MB over
an hour (bench/RESULTS.md, 'Retention'). Each probe runs in a process of its own: the setting is
process-wide and cannot be read back, only seen in where malloc puts a block.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from emulator import cli

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only"
)

# Frees a block of the size given and asks for another of the same size: whether the second one
# has a mapping of its own (mallinfo2's hblkhd counts the bytes in such mappings).
PROBE = """
import ctypes, sys

class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
SIZE = int(sys.argv[2])

def second_block_mapped():
    libc.free(libc.malloc(SIZE))
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(SIZE)
    mapped = libc.mallinfo2().hblkhd - before >= SIZE
    libc.free(block)
    return mapped

if sys.argv[1] == "cli":
    from emulator import cli

    async def serve(settings, scenario=None, database=None):
        print(second_block_mapped())

    cli.serve = serve
    cli.main(["--port", "0"])
else:
    print(second_block_mapped())
"""


def probe(mode: str, size: int = 8 << 20) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}  # glibc's own defaults
    done = subprocess.run([sys.executable, "-c", PROBE, mode, str(size)], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_glibc_left_alone_puts_the_second_large_block_in_its_heap() -> None:
    # What the CLI changes: without it, freeing the first block raised the threshold.
    assert probe("plain") == "False"


def test_the_cli_serves_with_large_blocks_in_mappings_of_their_own() -> None:
    assert probe("cli") == "True"


def test_a_threshold_set_in_the_environment_is_left_as_it_is() -> None:
    assert cli.fix_mmap_threshold({"MALLOC_MMAP_THRESHOLD_": "65536"}) is False
