"""Bandwidth messaging error codes (the callback ``errorCode`` field).

The table lives in ``emulator/data/error_codes.json`` and is a transcription of
every code in section 9 of the facts sheet (the 2023 ``errors.mdx`` list),
without the dropped/legacy codes mentioned at the end of that section.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from types import MappingProxyType

__all__ = [
    "ERROR_CODES",
    "INVALID_RECIPIENT_CODES",
    "ErrorCode",
    "callback_description",
    "detected_by_bandwidth",
    "lookup",
]


@dataclass(frozen=True)
class ErrorCode:
    code: int
    name: str  # machine name, e.g. "invalid-destination-address"
    description: str  # short human meaning from the docs table
    billable: bool
    # "bandwidth-client" | "carrier-client" | "bandwidth-service"
    # | "carrier-service" | "ambiguous" (one per table in facts sheet §9)
    category: str


def _load() -> Mapping[int, ErrorCode]:
    raw = json.loads(
        files("emulator.messaging").joinpath("data", "error_codes.json").read_text(encoding="utf-8")
    )
    table = {
        int(code): ErrorCode(
            code=int(code),
            name=entry["name"],
            description=entry["description"],
            billable=entry["billable"],
            category=entry["category"],
        )
        for code, entry in raw.items()
    }
    # Read-only so no caller can mutate the shared table.
    return MappingProxyType(table)


ERROR_CODES: Mapping[int, ErrorCode] = _load()

# Codes meaning "the To number itself is bad": malformed (4303), forbidden
# (4404), unallocated (4406), rejected by the carrier as an invalid
# destination (4720), or deactivated (4721). These are the "invalid-to-number"
# codes the group-message quirk in facts sheet §12 is about. Left out on
# purpose: 4408 (To number not set up on the *account*, which is a
# configuration problem) and 4482 (To number blacklisted: the number is valid
# but blocked by policy).
INVALID_RECIPIENT_CODES: frozenset[int] = frozenset({4303, 4404, 4406, 4720, 4721})

# Facts sheet §7.3/§7.4: the docs' group-MMS message-failed example carries
# errorCode 4432 with description "forbidden to country", not the machine
# name "rejected-forbidden-country". We reproduce the documented example.
_CALLBACK_DESCRIPTION_OVERRIDES: Mapping[int, str] = MappingProxyType(
    {4432: "forbidden to country"}
)


def detected_by_bandwidth(code: int | None) -> bool:
    """Whether Bandwidth finds this failure itself, rather than learning it from a carrier's
    delivery receipt: its own client and service errors (4xxx, 5xxx of its tables) and invalid
    destination numbers, which the group invalid-number quirk shows Bandwidth reporting without
    receipts (docs/scenarios.md, "MMS and group messages without delivery receipts")."""
    if code is None:
        return False
    if code in INVALID_RECIPIENT_CODES:
        return True
    entry = ERROR_CODES.get(code)
    return entry is not None and entry.category in ("bandwidth-client", "bandwidth-service")


def lookup(code: int) -> ErrorCode | None:
    """Return the documented entry for ``code``, or None if it is unknown."""
    return ERROR_CODES.get(code)


def callback_description(code: int) -> str:
    """Text for the ``description`` field of a ``message-failed`` callback.

    Bandwidth's failed callbacks carry the machine name (facts sheet §7.3:
    9902 -> "delivery-receipt-expired", 4405 -> "rejected-unallocated-from-number").
    """
    if code in _CALLBACK_DESCRIPTION_OVERRIDES:
        return _CALLBACK_DESCRIPTION_OVERRIDES[code]
    entry = ERROR_CODES.get(code)
    return entry.name if entry is not None else "unknown-error"
