"""Identifiers in Bandwidth's formats, from one seeded random source."""

from __future__ import annotations

import random
import string

_ALNUM = string.ascii_lowercase + string.digits


class IdFactory:
    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)

    def message_id(self, now: float) -> str:
        # 13-digit epoch milliseconds + 16 lowercase alphanumerics, as in every docs example
        # (e.g. 1589228074636lm4k2je7j7jklbn2; bandwidth-facts §1).
        return f"{int(now * 1000):013d}" + "".join(self.rng.choices(_ALNUM, k=16))

    def callback_id(self) -> str:
        return "cb-" + "".join(self.rng.choices(_ALNUM, k=16))
