"""Identifiers in Bandwidth's formats, from one seeded random source."""

from __future__ import annotations

import random
import string

_ALNUM = string.ascii_lowercase + string.digits
# Maps each random byte to one of the 36 characters (a byte modulo 36): the whole id is made
# by one bytes.translate in C, a tenth of the cost of random.choices on the accept path.
_BYTE_TO_ALNUM = bytes(ord(_ALNUM[b % len(_ALNUM)]) for b in range(256))


class IdFactory:
    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)

    def message_id(self, now: float) -> str:
        # 13-digit epoch milliseconds + 16 lowercase alphanumerics, as in every docs example
        # (e.g. 1589228074636lm4k2je7j7jklbn2; docs/bandwidth-behaviour.md, 'Conventions').
        return f"{int(now * 1000):013d}" + self._suffix()

    def _suffix(self) -> str:
        return self.rng.randbytes(16).translate(_BYTE_TO_ALNUM).decode("ascii")
