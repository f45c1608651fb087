"""Bandwidth's timeline: which delivery behaviour applies to a message, by its virtual send date.

Bandwidth changed its delivery callbacks on 2026-07-06 and again on 2027-01-06 (support article
"Changes to message delivery callbacks and DLR wait time", bandwidth.com/support, article
15606778; docs/scenarios.md, "Bandwidth's timeline"). The emulator follows that calendar by the
virtual time each message is accepted, unless the scenario pins an era. Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from emulator.scenarios.format import Scenario

EraName = Literal["2020-07-31", "2026-07-06", "2027-01-06"]

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Era:
    name: EraName
    starts: float  # POSIX seconds (UTC midnight of the date in the name)
    receipt_window: float  # seconds Bandwidth waits for a delivery receipt before 9902
    message_sending: bool  # whether MMS/group still get message-sending


def _midnight(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


# In time order. The first also covers anything earlier: the emulator does not go further back
# than MMS delivery receipts becoming the default (2020-07-31), which is an application switch.
ERAS: tuple[Era, ...] = (
    Era("2020-07-31", _midnight("2020-07-31"), 2 * HOUR, True),
    Era("2026-07-06", _midnight("2026-07-06"), 73 * HOUR, True),
    Era("2027-01-06", _midnight("2027-01-06"), 73 * HOUR, False),
)
_BY_NAME = {era.name: era for era in ERAS}


def era_on(t: float) -> Era:
    """Bandwidth's era on the date of POSIX time ``t``."""
    found = ERAS[0]
    for era in ERAS:
        if t >= era.starts:
            found = era
    return found


def era_for(scenario: Scenario, t: float) -> Era:
    """The era a message accepted at virtual time ``t`` gets under ``scenario``: its pinned era,
    or the calendar's, with the scenario's receipt window if it sets one."""
    era = era_on(t) if scenario.era == "auto" else _BY_NAME[scenario.era]
    if scenario.delivery_receipt_window is not None and scenario.delivery_receipt_window != era.receipt_window:
        era = Era(era.name, era.starts, scenario.delivery_receipt_window, era.message_sending)
    return era


def describe(scenario: Scenario, now: float) -> dict[str, object]:
    """The era in force now, for the health endpoint and the web UI."""
    era = era_for(scenario, now)
    following = next((e for e in ERAS if e.starts > now), None) if scenario.era == "auto" else None
    return {
        "era": era.name,
        "pinned": scenario.era != "auto",
        "deliveryReceiptWindow": era.receipt_window,
        "messageSending": era.message_sending,
        "next": {"era": following.name, "at": datetime.fromtimestamp(following.starts, UTC).isoformat().replace("+00:00", "Z")}
        if following is not None
        else None,
    }
