"""Regular expressions in scenario rules, run by RE2: linear time in the text, whatever the
pattern, so no rule can hold the event loop by backtracking (docs/scenarios.md, 'Limits').

RE2 takes Python's syntax except what needs backtracking: lookaround (``(?=``, ``(?!``,
``(?<=``, ``(?<!``) and backreferences (``\\1``) are refused when the scenario is loaded,
with RE2's own reason. Its ``\\d``, ``\\w`` and ``\\b`` are ASCII.
"""

from __future__ import annotations

import functools
from typing import Any

import re2  # type: ignore[import-untyped]

_OPTIONS = re2.Options()
# RE2 would also log every refused pattern to stderr; the scenario error says it all.
_OPTIONS.log_errors = False


@functools.lru_cache(maxsize=4096)
def compile_regex(pattern: str) -> Any:
    """The compiled pattern; ValueError with RE2's reason if RE2 cannot run it."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(
            f"not a regular expression the emulator can run ({reason}); lookaround and backreferences are not supported"
        ) from None


def regex_search(pattern: str, text: str) -> bool:
    return compile_regex(pattern).search(text) is not None
