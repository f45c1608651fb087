"""Virtual time."""

from __future__ import annotations

import time

import pytest

from emulator.delivery.clock import ManualClock, RealtimeClock, isoformat


def test_manual_clock_stands_still_and_never_goes_back():
    clock = ManualClock(start=1000.0)
    assert clock.now() == 1000.0 and clock.manual
    clock.set(1500.5)
    assert clock.now() == 1500.5
    clock.set(1200.0)
    assert clock.now() == 1500.5
    assert clock.real_delay(10) == float("inf")


def test_realtime_clock_runs_at_its_scale(monkeypatch):
    wall = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: wall[0])
    clock = RealtimeClock(scale=3600.0, start=0.0)
    assert not clock.manual
    assert clock.now() == 0.0
    wall[0] += 24.0  # a day of virtual time in 24 real seconds
    assert clock.now() == pytest.approx(86400.0)
    assert clock.real_delay(86400) == pytest.approx(24.0)
    assert clock.real_delay(-5) == 0.0


def test_realtime_clock_refuses_a_non_positive_scale():
    with pytest.raises(ValueError):
        RealtimeClock(scale=0)


def test_isoformat_is_bandwidths_millisecond_utc_format():
    assert isoformat(0) == "1970-01-01T00:00:00.000Z"
    assert isoformat(1_700_000_000.1234) == "2023-11-14T22:13:20.123Z"
