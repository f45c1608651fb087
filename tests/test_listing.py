"""emulator/messaging/listing.py: the list-messages query, rows, filters, sort and pages, as
pure functions (the HTTP side is in test_api_list.py)."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.messaging.listing import (
    MAX_WINDOW,
    ListError,
    ListQuery,
    decode_page_token,
    encode_page_token,
    list_messages,
    parse_query,
    rows_for,
    search,
)
from emulator.state.models import Message, RecipientStatus

T0 = 1_767_322_800.0  # 2026-01-02T03:00:00Z


def message(id: str, *, to: tuple[str, ...] = ("+15552221111",), time: float = T0, **fields: Any) -> Message:
    fields.setdefault("direction", "out")
    return Message(
        id=id, account_id="9900000", application_id="app", from_=fields.pop("from_", "+15554443333"), to=to,
        owner=fields.pop("owner", "+15554443333"), time=time, segment_count=fields.pop("segment_count", 1), **fields,
    )  # fmt: skip


# -- rows ---------------------------------------------------------------------------------------


def test_a_group_message_is_one_row_per_recipient_with_its_own_status() -> None:
    m = message("m1", to=("+15552221111", "+15550104720"), text="héllo", media=("https://x/a.png",))
    m.recipients = {
        "+15552221111": RecipientStatus("+15552221111", "DELIVERED", carrier_name="Carrier"),
        "+15550104720": RecipientStatus("+15550104720", "FAILED", error_code=4720),
    }
    first, second = rows_for(m, seq=7, media_size=100)
    assert (first.destination_tn, first.message_status, first.error_code, first.carrier_name) == (
        "+15552221111", "DELIVERED", 0, "Carrier",
    )  # fmt: skip
    assert (second.destination_tn, second.message_status, second.error_code) == ("+15550104720", "FAILED", 4720)
    for row in (first, second):
        assert row.message_direction == "OUTBOUND" and row.message_type == "mms"
        assert row.recipient_count == 2 and row.attachment_count == 1 and row.seq == 7
        assert row.message_length == 5 and row.message_size == len("héllo".encode()) + 100


def test_an_inbound_message_is_one_row_to_the_number_that_received_it() -> None:
    m = message("m1", direction="in", from_="+15559998888", to=("+15554443333", "+15550000001"), owner="+15554443333")
    [row] = rows_for(m)
    assert (row.source_tn, row.destination_tn) == ("+15559998888", "+15554443333")
    assert row.message_status == "RECEIVED" and row.message_direction == "INBOUND"


def test_an_outbound_recipient_without_status_is_queued() -> None:
    [row] = rows_for(message("m1"))
    assert row.message_status == "QUEUED" and row.error_code == 0 and row.carrier_name is None


def test_a_row_in_json_has_every_field_and_never_the_text() -> None:
    [row] = rows_for(message("m1", text="secret"))
    body = row.to_json()
    assert body["receiveTime"] == "2026-01-02T03:00:00.000Z"
    assert body["campaignClass"] is None and body["campaignId"] is None
    assert "text" not in body and "secret" not in str(body)
    assert body["messageId"] == "m1" and body["messageLength"] == 6


# -- parsing the query --------------------------------------------------------------------------


def test_a_query_has_the_defaults_and_needs_one_parameter() -> None:
    assert parse_query({"limit": "100"}) == ListQuery()
    # "You must include at least one query parameter" (the spec's listMessages).
    with pytest.raises(ListError, match="At least one query parameter"):
        parse_query({})
    with pytest.raises(ListError):
        parse_query({"notInTheSpec": "x"})


def test_full_numbers_and_partial_numbers() -> None:
    query = parse_query({"sourceTn": "+15554443333,+15554443334", "destinationTn": "22211"})
    assert query.source_tn == ["+15554443333", "+15554443334"] and query.source_partial is None
    assert query.destination_tn is None and query.destination_partial == "22211"
    # An unencoded '+' arrives as a space: read as the '+' it was.
    assert parse_query({"sourceTn": " 15554443333"}).source_partial == "+15554443333"


@pytest.mark.parametrize(
    ("q", "problem"),
    [
        ({"sourceTn": "123"}, "'sourceTn' must be a full phone number or a partial one of at least 5 characters"),
        ({"sourceTn": "abcdef"}, "'sourceTn' must be a phone number"),
        ({"destinationTn": "+15554443333,12"}, "'12' is not one"),
        ({"destinationTn": ",".join(["+15554443333"] * 11)}, "at most 10 comma-separated"),
        ({"messageStatus": "delivered"}, "'delivered' is not a valid messageStatus"),
        ({"messageDirection": "out"}, "'out' is not a valid messageDirection"),
        ({"messageType": "fax"}, "'fax' is not a valid messageType"),
        ({"product": "NOPE"}, "'NOPE' is not a valid product"),
        ({"errorCode": "x"}, "'errorCode' must be an integer"),
        ({"fromDateTime": "yesterday"}, "'fromDateTime' must be an ISO 8601 date-time"),
        ({"fromDateTime": "2026-01-02T00:00:00Z", "toDateTime": "2026-01-01T00:00:00Z"}, "must not be after"),
        ({"fromBwLatency": "-1"}, "'fromBwLatency' must be at least 0"),
        ({"bwQueued": "yes"}, "'bwQueued' must be true or false"),
        ({"fromSegmentCount": "-2"}, "'fromSegmentCount' must be at least 0"),
        ({"sort": "text"}, "'text' is not a sortable field"),
        ({"sort": "receiveTime:up"}, "sort direction must be asc or desc, not 'up'"),
        ({"limit": "0"}, "'limit' must be at least 1"),
        ({"limit": str(MAX_WINDOW + 1)}, f"cannot be more than {MAX_WINDOW}"),
        ({"pageToken": "garbage!"}, "'garbage!' is not a valid pageToken"),
        ({"limitTotalCount": "maybe"}, "'limitTotalCount' must be true or false"),
    ],
)
def test_bad_parameters_are_explained(q: dict[str, str], problem: str) -> None:
    with pytest.raises(ListError) as refused:
        parse_query(q)
    assert problem in str(refused.value)


def test_times_without_an_offset_are_utc() -> None:
    query = parse_query({"fromDateTime": "2026-01-02T03:00:00", "toDateTime": "2026-01-02T03:00:01.000Z"})
    assert (query.from_time, query.to_time) == (T0, T0 + 1)


def test_sort_keys_and_page_tokens() -> None:
    query = parse_query({"sort": "sourceTn:desc, segmentCount", "pageToken": encode_page_token(40), "limit": "20"})
    assert query.sort == [("sourceTn", True), ("segmentCount", False)]
    assert (query.offset, query.limit) == (40, 20)


def test_page_tokens_round_trip_and_refuse_others() -> None:
    for offset in (0, 1, 99, 9999):
        assert decode_page_token(encode_page_token(offset)) == offset
    for bad in ("", "b2Zmc2V0Oi0x", "bm90aGluZzox"):  # "", "offset:-1", "nothing:1"
        with pytest.raises(ListError):
            decode_page_token(bad)


def test_filters_on_data_the_emulator_does_not_have_match_nothing() -> None:
    query = parse_query({"campaignId": "C1", "product": "P2P"})
    assert query.unmatchable == ["campaignId", "product"]
    assert search(rows_for(message("m1")), query).rows == []


# -- searching ----------------------------------------------------------------------------------


def rows(*messages: Message) -> list[Any]:
    return [row for seq, m in enumerate(messages) for row in rows_for(m, seq)]


def ids(page: Any) -> list[str]:
    return [r.message_id for r in page.rows]


def test_filters_combine() -> None:
    a = message("a", to=("+15552221111",), time=T0, text="x" * 200, segment_count=2)
    b = message("b", to=("+15553330000",), time=T0 + 10)
    c = message("c", direction="in", from_="+15552221111", to=("+15554443333",), time=T0 + 20)
    everything = rows(a, b, c)
    assert ids(search(everything, parse_query({"destinationTn": "+15552221111"}))) == ["a"]
    assert ids(search(everything, parse_query({"destinationTn": "15552221111,+15553330000"}))) == ["b", "a"]
    assert ids(search(everything, parse_query({"sourceTn": "22211"}))) == ["c"]
    assert ids(search(everything, parse_query({"messageDirection": "INBOUND"}))) == ["c"]
    assert ids(search(everything, parse_query({"fromSegmentCount": "2"}))) == ["a"]
    assert ids(search(everything, parse_query({"toMessageSize": "10"}))) == ["c", "b"]
    assert ids(search(everything, parse_query({"fromDateTime": "2026-01-02T03:00:05Z",
                                               "toDateTime": "2026-01-02T03:00:10Z"}))) == ["b"]  # fmt: skip
    assert ids(search(everything, parse_query({"messageId": "b", "messageStatus": "QUEUED"}))) == ["b"]
    assert ids(search(everything, parse_query({"messageId": "b", "messageStatus": "DELIVERED"}))) == []


def test_carrier_name_and_error_code() -> None:
    m = message("m", to=("+15552221111", "+15550104720"))
    m.recipients = {
        "+15552221111": RecipientStatus("+15552221111", "DELIVERED", carrier_name="T-Mobile"),
        "+15550104720": RecipientStatus("+15550104720", "FAILED", error_code=4720),
    }
    page = search(rows_for(m), parse_query({"carrierName": "t-mobile"}))
    assert [r.destination_tn for r in page.rows] == ["+15552221111"]
    page = search(rows_for(m), parse_query({"errorCode": "4720"}))
    assert [r.destination_tn for r in page.rows] == ["+15550104720"]


def test_newest_first_by_default_with_ties_in_creation_order() -> None:
    everything = rows(message("a", time=T0), message("b", time=T0), message("c", time=T0 + 1))
    assert ids(search(everything, parse_query({"limit": "100"}))) == ["c", "b", "a"]
    assert ids(search(everything, parse_query({"sort": "receiveTime:asc"}))) == ["a", "b", "c"]


def test_sort_by_several_keys_and_nulls_last() -> None:
    a = message("a", from_="+15550000002", segment_count=1)
    b = message("b", from_="+15550000001", segment_count=2)
    c = message("c", from_="+15550000001", segment_count=1)
    everything = rows(a, b, c)
    assert ids(search(everything, parse_query({"sort": "sourceTn,segmentCount:desc"}))) == ["b", "c", "a"]
    b.recipients = {"+15552221111": RecipientStatus("+15552221111", "DELIVERED", carrier_name="X")}
    with_carrier = rows(a, b, c)
    for direction in ("asc", "desc"):
        assert ids(search(with_carrier, parse_query({"sort": f"carrierName:{direction}"})))[0] == "b"


def test_pages_and_their_neighbours() -> None:
    everything = rows(*(message(f"m{i:02d}", time=T0 + i) for i in range(25)))
    first = search(everything, parse_query({"limit": "10", "sort": "receiveTime:asc"}))
    assert ids(first) == [f"m{i:02d}" for i in range(10)]
    assert (first.total_count, first.next_offset, first.prev_offset) == (25, 10, None)
    last = search(everything, ListQuery(sort=[("receiveTime", False)], offset=20, limit=10))
    assert ids(last) == [f"m{i:02d}" for i in range(20, 25)]
    assert (last.next_offset, last.prev_offset) == (None, 10)
    past = search(everything, ListQuery(offset=30, limit=10))
    assert (past.rows, past.total_count, past.next_offset, past.prev_offset) == ([], 25, None, 20)


def test_no_next_page_beyond_the_window_and_the_total_count_capped_on_request() -> None:
    everything = rows(*(message(f"m{i}") for i in range(MAX_WINDOW + 5)))
    page = search(everything, ListQuery(offset=MAX_WINDOW - 100, limit=100))
    assert page.next_offset is None and page.total_count == MAX_WINDOW + 5
    capped = search(everything, ListQuery(limit=100, limit_total_count=True))
    assert capped.total_count == MAX_WINDOW and capped.next_offset == 100


def test_list_messages_numbers_messages_by_time_and_sizes_known_media() -> None:
    late = message("late", time=T0 + 5, media=("https://x/a.png",))
    early = message("early", time=T0)
    page = list_messages([late, early], parse_query({"sort": "receiveTime:asc"}), media_size=lambda m: 1000)
    assert ids(page) == ["early", "late"]
    assert [r.seq for r in page.rows] == [0, 1]
    assert [r.message_size for r in page.rows] == [0, 1000]
