"""SMS segment counting (``segmentCount`` in the 202 response and callbacks).

Rules from facts sheet §10.1:
* GSM-7 if every character is in the GSM 03.38 default alphabet or its
  extension table, otherwise UCS-2.
* GSM-7: 160 septets in a single segment, 153 per part once concatenated
  (a 6-byte UDH takes the rest). Extension-table characters cost two septets
  (ESC + char) and a part boundary must not split that pair.
* UCS-2: 70 UTF-16 code units single, 67 per part; characters outside the
  BMP (e.g. emoji) are a surrogate pair (2 units) that must not be split.
* MMS always counts as one segment.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, NamedTuple

__all__ = ["SegmentInfo", "count_segments"]

# GSM 03.38 default alphabet (3GPP TS 23.038 §6.2.1), in code-point order
# 0x00..0x7F. 0x1B (ESC) is left out: it is the escape prefix, not a character.
_GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ" "ÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# GSM 03.38 extension table: each is sent as ESC + char, so costs 2 septets.
_GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

_GSM7: frozenset[str] = _GSM7_BASIC | _GSM7_EXTENSION

_GSM7_SINGLE, _GSM7_PART = 160, 153
_UCS2_SINGLE, _UCS2_PART = 70, 67


class SegmentInfo(NamedTuple):
    encoding: Literal["GSM-7", "UCS-2"]
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def _is_gsm7(text: str) -> bool:
    return _GSM7.issuperset(text)


def _pack(costs: Iterable[int], part_size: int) -> int:
    """Greedily fill parts of ``part_size`` without splitting a character.

    Plain division would undercount when a 2-unit character (escape pair or
    surrogate pair) straddles a boundary and has to move to the next part.
    """
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part_size:
            parts += 1
            used = 0
        used += cost
    return parts


def count_segments(text: str, *, mms: bool = False) -> SegmentInfo:
    """Count the SMS segments ``text`` needs (always 1 when ``mms`` is true)."""
    # Every send is counted on the accept path: the per-character costs are only listed when
    # a character costs two units, and only walked when the text needs more than one part.
    if _is_gsm7(text):
        encoding: Literal["GSM-7", "UCS-2"] = "GSM-7"
        plain = _GSM7_EXTENSION.isdisjoint(text)
        costs = None if plain else [2 if ch in _GSM7_EXTENSION else 1 for ch in text]
        single, part = _GSM7_SINGLE, _GSM7_PART
    else:
        encoding = "UCS-2"
        plain = text.isascii() or max(map(ord, text)) <= 0xFFFF
        costs = None if plain else [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        single, part = _UCS2_SINGLE, _UCS2_PART

    units = len(text) if costs is None else sum(costs)
    if mms or units <= single:
        # Empty text is still one (empty) segment; MMS is always one (§10.1).
        return SegmentInfo(encoding, units, 1)
    if costs is None:
        # Every character costs one unit: parts fill exactly.
        return SegmentInfo(encoding, units, -(-units // part))
    return SegmentInfo(encoding, units, _pack(costs, part))
