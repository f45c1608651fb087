"""Segment counting per facts sheet §10.1 (GSM-7 160/153, UCS-2 70/67)."""

from __future__ import annotations

import pytest

from emulator.messaging.segments import SegmentInfo, count_segments

EMOJI = "\U0001F600"  # 😀, outside the BMP: a UTF-16 surrogate pair


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", SegmentInfo("GSM-7", 0, 1), id="empty"),
        pytest.param("a" * 160, SegmentInfo("GSM-7", 160, 1), id="160-a"),
        pytest.param("a" * 161, SegmentInfo("GSM-7", 161, 2), id="161-a"),
        pytest.param("a" * 306, SegmentInfo("GSM-7", 306, 2), id="306-a"),
        pytest.param("a" * 307, SegmentInfo("GSM-7", 307, 3), id="307-a"),
        pytest.param("a" * 159 + "€", SegmentInfo("GSM-7", 161, 2), id="159-a-euro"),
        pytest.param("{" * 80, SegmentInfo("GSM-7", 160, 1), id="80-brace"),
        pytest.param("{" * 81, SegmentInfo("GSM-7", 162, 2), id="81-brace"),
        pytest.param("\f" * 80, SegmentInfo("GSM-7", 160, 1), id="80-formfeed"),
        pytest.param("^{}\\[~]|€", SegmentInfo("GSM-7", 18, 1), id="all-extension"),
        pytest.param("ж" * 70, SegmentInfo("UCS-2", 70, 1), id="70-zhe"),
        pytest.param("ж" * 71, SegmentInfo("UCS-2", 71, 2), id="71-zhe"),
        pytest.param("ж" * 134, SegmentInfo("UCS-2", 134, 2), id="134-zhe"),
        pytest.param("ж" * 135, SegmentInfo("UCS-2", 135, 3), id="135-zhe"),
        pytest.param(EMOJI * 35, SegmentInfo("UCS-2", 70, 1), id="35-emoji"),
        pytest.param(EMOJI * 36, SegmentInfo("UCS-2", 72, 2), id="36-emoji"),
        pytest.param("Hello " + EMOJI, SegmentInfo("UCS-2", 8, 1), id="gsm-plus-emoji"),
        pytest.param("a" * 100 + EMOJI, SegmentInfo("UCS-2", 102, 2), id="long-gsm-plus-emoji"),
        pytest.param("ç", SegmentInfo("UCS-2", 1, 1), id="lower-c-cedilla-not-gsm"),
        pytest.param("Ç", SegmentInfo("GSM-7", 1, 1), id="upper-c-cedilla-gsm"),
        pytest.param("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r",
                     SegmentInfo("GSM-7", 44, 1), id="gsm-specials"),
        pytest.param("`", SegmentInfo("UCS-2", 1, 1), id="backtick-not-gsm"),
    ],
)
def test_count_segments(text: str, expected: SegmentInfo) -> None:
    assert count_segments(text) == expected


def test_escape_pair_not_split_across_parts() -> None:
    # 152 + 2 + 152 = 306 septets: naive ceil(306/153) == 2, but the euro sign
    # cannot fit in part 1 (152 + 2 > 153), so greedy packing needs 3 parts.
    text = "a" * 152 + "€" + "a" * 152
    info = count_segments(text)
    assert info.units == 306
    assert -(-info.units // 153) == 2
    assert info.segments == 3


def test_surrogate_pair_not_split_across_parts() -> None:
    # 66 + 2 + 66 = 134 units: naive ceil(134/67) == 2, greedy needs 3.
    text = "ж" * 66 + EMOJI + "ж" * 66
    info = count_segments(text)
    assert info == SegmentInfo("UCS-2", 134, 3)


def test_mms_is_always_one_segment() -> None:
    assert count_segments("a" * 1000, mms=True) == SegmentInfo("GSM-7", 1000, 1)
    assert count_segments("ж" * 1000, mms=True) == SegmentInfo("UCS-2", 1000, 1)
