"""Error-code table per facts sheet §9."""

from __future__ import annotations

import pytest

from emulator.messaging.errorcodes import (
    ERROR_CODES,
    INVALID_RECIPIENT_CODES,
    ErrorCode,
    callback_description,
    lookup,
)

# Every code in the five §9 tables (31 + 27 + 11 + 5 + 2).
ALL_CODES = {
    4001, 4301, 4302, 4303, 4350, 4360, 4401, 4403, 4404, 4405, 4406, 4407,
    4408, 4409, 4410, 4411, 4412, 4420, 4421, 4431, 4432, 4433, 4434, 4435,
    4451, 4452, 4470, 4481, 4482, 4492, 4493,
    4700, 4701, 4702, 4711, 4712, 4720, 4721, 4730, 4740, 4750, 4751, 4752,
    4753, 4770, 4771, 4772, 4773, 4774, 4775, 4780, 4781, 4785, 4790, 4791,
    4792, 4793, 4795,
    5100, 5101, 5106, 5111, 5201, 5211, 5220, 5231, 5500, 5501, 5999,
    5600, 5610, 5620, 5630, 5650,
    9902, 9999,
}  # fmt: skip

# Dropped/legacy codes listed at the end of §9 must not be present.
LEGACY_CODES = {4121, 5112, 5143, 5144, 5146, 5503, 5611}


def test_table_has_exactly_the_documented_codes() -> None:
    assert len(ALL_CODES) == 76
    assert set(ERROR_CODES) == ALL_CODES
    assert not LEGACY_CODES & set(ERROR_CODES)


@pytest.mark.parametrize(
    ("code", "name", "description", "billable", "category"),
    [
        (4001, "service-not-allowed",
         "Message was rejected for reasons other than those covered by other 4xxx codes",
         False, "bandwidth-client"),
        (4360, "message-not-sent-expiration-date-passed", "Message expired", False, "bandwidth-client"),
        (4405, "rejected-unallocated-from-number", "Unallocated from number", False, "bandwidth-client"),
        (4410, "media-unavailable", "Could not download media", False, "bandwidth-client"),
        (4411, "rejected-message-size-limit-exceeded", "Combined size of media too large", False,
         "bandwidth-client"),
        (4432, "rejected-forbidden-country", "Messaging to country forbidden", False, "bandwidth-client"),
        (4435, "forbidden-too-many-recipients", "Too Many Recipients", False, "bandwidth-client"),
        (4470, "rejected-spam-detected", "Rejected as SPAM", True, "bandwidth-client"),
        (4720, "invalid-destination-address", "Carrier Rejected as Invalid Destination Address", True,
         "carrier-client"),
        (4795, "tfn-not-verified", "Toll Free number is not verified", True, "carrier-client"),
        (5501, "message-send-failed", "General Message Send Failure", False, "bandwidth-service"),
        (5610, "submit_sm-or-submit_multi-failed", "Carrier Service Failure", True, "carrier-service"),
        (9902, "delivery-receipt-expired",
         "Timed out waiting for delivery receipt. The reason a delivery receipt was not received is not known.",
         True, "ambiguous"),
        (9999, "unknown-error",
         "Unknown error from downstream. Carrier reported a failure code that is unknown to Bandwidth.",
         True, "ambiguous"),
    ],
)
def test_spot_checks(code: int, name: str, description: str, billable: bool, category: str) -> None:
    assert lookup(code) == ErrorCode(code, name, description, billable, category)


def test_categories_follow_code_schema() -> None:
    # §9: second digit 7 = carrier-reported client error, 6 = carrier service failure.
    for code, entry in ERROR_CODES.items():
        expected = {
            "4": "carrier-client" if str(code)[1] == "7" else "bandwidth-client",
            "5": "carrier-service" if str(code)[1] == "6" else "bandwidth-service",
            "9": "ambiguous",
        }[str(code)[0]]
        assert entry.category == expected, code
        assert entry.code == code
        assert entry.name and entry.description


def test_lookup_unknown_is_none() -> None:
    assert lookup(1234) is None
    assert lookup(4121) is None


def test_callback_description() -> None:
    assert callback_description(9902) == "delivery-receipt-expired"
    assert callback_description(4405) == "rejected-unallocated-from-number"
    assert callback_description(4720) == "invalid-destination-address"
    assert callback_description(4432) == "forbidden to country"  # docs example
    assert callback_description(1234) == "unknown-error"


def test_invalid_recipient_codes() -> None:
    assert frozenset({4303, 4404, 4406, 4720, 4721}) == INVALID_RECIPIENT_CODES
    assert set(ERROR_CODES) >= INVALID_RECIPIENT_CODES


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        ERROR_CODES[1] = ERROR_CODES[4001]  # type: ignore[index]
