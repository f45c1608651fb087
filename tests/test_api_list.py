"""GET /api/v2/users/{accountId}/messages: metadata, filters, sort, pages, errors."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from support import ACCOUNT, ANY_TIME, AUTH, advance, send

SMS = {"applicationId": "app-1", "to": ["+15552221111"], "from": "+15554443333", "text": "Hello World"}
URL = f"/api/v2/users/{ACCOUNT}/messages"


async def listing(client, account: str = ACCOUNT, **params):
    resp = await client.get(f"/api/v2/users/{account}/messages", params=params or ANY_TIME, headers=AUTH)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def sent(client, **overrides) -> str:
    resp = await send(client, dict(SMS, **overrides))
    assert resp.status == 202, await resp.text()
    return (await resp.json())["id"]


async def test_status_follows_the_callbacks_and_text_is_never_listed(client, receiver):
    sms_id = await sent(client)
    mms_id = await sent(client, media=["https://example.com/a.png"], to=["+15552221112"])
    rows = {r["messageId"]: r for r in (await listing(client))["messages"]}
    assert rows[sms_id]["messageStatus"] == "QUEUED" and rows[mms_id]["messageStatus"] == "QUEUED"
    await advance(client, 0.5)  # MMS: message-sending at 0.5 s
    rows = {r["messageId"]: r for r in (await listing(client))["messages"]}
    assert rows[mms_id]["messageStatus"] == "SENDING" and rows[sms_id]["messageStatus"] == "QUEUED"
    await advance(client, 5)
    body = await listing(client)
    rows = {r["messageId"]: r for r in body["messages"]}
    assert rows[sms_id]["messageStatus"] == rows[mms_id]["messageStatus"] == "DELIVERED"
    row = rows[sms_id]
    assert row == {
        "messageId": sms_id,
        "accountId": ACCOUNT,
        "sourceTn": "+15554443333",
        "destinationTn": "+15552221111",
        "messageStatus": "DELIVERED",
        "messageDirection": "OUTBOUND",
        "messageType": "sms",
        "segmentCount": 1,
        "errorCode": 0,
        "receiveTime": row["receiveTime"],
        "carrierName": None,
        "messageSize": len("Hello World"),
        "messageLength": len("Hello World"),
        "attachmentCount": 0,
        "recipientCount": 1,
        "campaignClass": None,
        "campaignId": None,
        "callingNumberCountryA3": "USA",
        "calledNumberCountryA3": "USA",
    }
    assert rows[mms_id]["messageType"] == "mms" and rows[mms_id]["attachmentCount"] == 1
    assert "text" not in str(body)
    assert body["totalCount"] == 2 and body["pageInfo"] == {}


async def test_failed_recipient_has_its_error_code_and_group_is_one_row_per_recipient(client):
    group_id = await sent(client, to=["+15552221111", "+15550104720"])
    await advance(client, 10)
    body = await listing(client, messageId=group_id)
    rows = {r["destinationTn"]: r for r in body["messages"]}
    assert body["totalCount"] == 2
    assert rows["+15552221111"]["messageStatus"] == "DELIVERED" and rows["+15552221111"]["errorCode"] == 0
    assert rows["+15550104720"]["messageStatus"] == "FAILED" and rows["+15550104720"]["errorCode"] == 4720
    assert {r["recipientCount"] for r in rows.values()} == {2}
    assert {r["messageType"] for r in rows.values()} == {"mms"}
    failed = await listing(client, messageStatus="FAILED", errorCode="4720")
    assert [r["destinationTn"] for r in failed["messages"]] == ["+15550104720"]


async def test_inbound_is_listed_as_received(client):
    resp = await client.post("/_emulator/inbound", json={"from": "+15557770000", "to": "+15554443333", "text": "hi"})
    assert resp.status == 201
    body = await listing(client, messageDirection="INBOUND")
    [row] = body["messages"]
    assert row["messageStatus"] == "RECEIVED" and row["messageDirection"] == "INBOUND"
    assert row["sourceTn"] == "+15557770000" and row["destinationTn"] == "+15554443333"
    assert (await listing(client, messageDirection="OUTBOUND"))["messages"] == []


async def test_number_filters_full_list_and_partial(client):
    a = await sent(client, to=["+15552220001"])
    b = await sent(client, to=["+15552220002"])
    c = await sent(client, to=["+15559990003"], **{"from": "+15554440000"})
    ids = lambda body: sorted(r["messageId"] for r in body["messages"])  # noqa: E731
    assert ids(await listing(client, destinationTn="+15552220001")) == [a]
    assert ids(await listing(client, destinationTn="+15552220001,+15559990003")) == sorted([a, c])
    assert ids(await listing(client, destinationTn="+1555222")) == sorted([a, b])
    assert ids(await listing(client, sourceTn="+15554440000")) == [c]
    # An unencoded '+' arrives as a space; it is read as the '+' that was meant.
    resp = await client.get(f"{URL}?sourceTn=+15554440000", headers=AUTH)
    assert ids(await resp.json()) == [c]


async def test_type_size_segment_and_date_filters(client):
    sms = await sent(client, text="x" * 200)  # 2 segments
    mms = await sent(client, media=["https://example.com/a.png"], text="hi")
    ids = lambda body: [r["messageId"] for r in body["messages"]]  # noqa: E731
    assert ids(await listing(client, messageType="mms")) == [mms]
    assert ids(await listing(client, fromSegmentCount="2")) == [sms]
    assert ids(await listing(client, toSegmentCount="1")) == [mms]
    assert ids(await listing(client, fromMessageSize="100")) == [sms]
    assert ids(await listing(client, toMessageSize="10")) == [mms]
    clock = await (await client.get("/_emulator/clock")).json()
    assert len(ids(await listing(client, fromDateTime=clock["now"]))) == 2
    assert ids(await listing(client, toDateTime="2000-01-01T00:00:00.000Z")) == []
    # Fields the emulator keeps no data for match nothing.
    assert ids(await listing(client, campaignId="CJEUMDK")) == []


async def test_sort_default_newest_first_and_explicit(client):
    first = await sent(client, to=["+15552220003"])
    await advance(client, 1)
    second = await sent(client, to=["+15552220001"])
    await advance(client, 1)
    third = await sent(client, to=["+15552220002"])
    ids = lambda body: [r["messageId"] for r in body["messages"]]  # noqa: E731
    assert ids(await listing(client)) == [third, second, first]
    assert ids(await listing(client, sort="receiveTime:asc")) == [first, second, third]
    assert ids(await listing(client, sort="destinationTn:desc")) == [first, third, second]
    assert ids(await listing(client, sort="destinationTn")) == [second, third, first]


async def test_paging_with_tokens_and_links(client):
    created = [await sent(client, to=[f"+1555222000{i}"]) for i in range(5)]
    seen = []
    body = await listing(client, limit="2", sort="receiveTime:asc")
    assert "prevPage" not in body["pageInfo"] and "prevPageToken" not in body["pageInfo"]
    while True:
        assert body["totalCount"] == 5
        seen += [r["messageId"] for r in body["messages"]]
        info = body["pageInfo"]
        if "nextPageToken" not in info:
            assert "nextPage" not in info
            break
        link = urlsplit(info["nextPage"])
        query = parse_qs(link.query)
        assert link.path == URL and query["pageToken"] == [info["nextPageToken"]]
        assert query["limit"] == ["2"] and query["sort"] == ["receiveTime:asc"]
        body = await listing(client, limit="2", sort="receiveTime:asc", pageToken=info["nextPageToken"])
        assert "prevPageToken" in body["pageInfo"]
    assert seen == created
    assert (await listing(client, limit="2", limitTotalCount="true"))["totalCount"] == 5


async def test_default_limit_is_100(client):
    for i in range(101):
        await sent(client, to=[f"+1555333{i:04d}"])
    body = await listing(client)
    assert len(body["messages"]) == 100 and body["totalCount"] == 101
    assert "nextPageToken" in body["pageInfo"]


async def test_accounts_are_isolated(client):
    await sent(client)
    assert (await listing(client, account="1111111"))["messages"] == []


@pytest.mark.parametrize(
    "params, word",
    [
        ({"messageStatus": "delivered"}, "messageStatus"),
        ({"messageDirection": "OUT"}, "messageDirection"),
        ({"messageType": "SMS"}, "messageType"),
        ({"errorCode": "abc"}, "errorCode"),
        ({"limit": "0"}, "limit"),
        ({"limit": "10001"}, "10000"),
        ({"limitTotalCount": "yes"}, "limitTotalCount"),
        ({"sourceTn": "+155"}, "sourceTn"),
        ({"destinationTn": ",".join(f"+1555000000{i}" for i in range(10)) + ",+15550000100"}, "at most 10"),
        ({"fromDateTime": "yesterday"}, "fromDateTime"),
        ({"sort": "text:asc"}, "sortable"),
        ({"sort": "receiveTime:up"}, "asc or desc"),
        ({"pageToken": "garbage"}, "pageToken"),
        ({"bwQueued": "maybe"}, "bwQueued"),
        ({"product": "CARRIER_PIGEON"}, "product"),
    ],
)
async def test_bad_parameters_are_400_in_bandwidths_shape(client, params, word):
    resp = await client.get(URL, params=params, headers=AUTH)
    assert resp.status == 400
    body = await resp.json()
    assert body["type"] == "request-validation" and word in body["description"]


async def test_list_needs_auth(client):
    resp = await client.get(URL)
    assert resp.status == 401
    assert (await resp.json())["type"] == "unauthorized"


async def test_message_storage_off_is_403(make_client):
    client = await make_client({"messageStorage": False})
    resp = await client.get(URL, params=ANY_TIME, headers=AUTH)
    assert resp.status == 403
    body = await resp.json()
    assert body["type"] == "forbidden" and body["description"].startswith("Access Denied")


async def test_wrong_method_is_405_with_allow(client):
    resp = await client.patch(URL, headers=AUTH)
    assert resp.status == 405
    assert (await resp.json())["type"] == "method-not-allowed"
    assert "GET" in resp.headers["Allow"] and "POST" in resp.headers["Allow"]


async def test_send_with_unacceptable_accept_is_406(client):
    resp = await client.post(URL, json=SMS, headers={**AUTH, "Accept": "text/html"})
    assert resp.status == 406
    assert (await resp.json())["type"] == "not-acceptable"
    ok = await client.post(URL, json=SMS, headers={**AUTH, "Accept": "application/json, text/plain, */*"})
    assert ok.status == 202


async def test_list_fault_429_with_retry_after(make_client):
    client = await make_client(
        {"faults": [{"operation": "listMessages", "status": 429, "first": 1, "retryAfter": 120}]}
    )
    await sent(client)  # sends are not affected by a listMessages fault
    resp = await client.get(URL, params=ANY_TIME, headers=AUTH)
    assert resp.status == 429 and resp.headers["Retry-After"] == "120"
    assert await resp.json() == {
        "type": "rate_limit_exceeded",
        "description": "Rate limit exceeded. Wait for Retry-After time before sending another request.",
    }
    assert (await client.get(URL, params=ANY_TIME, headers=AUTH)).status == 200  # only the first one


async def test_list_fault_matches_account_and_500(make_client):
    client = await make_client({"faults": [{"operation": "listMessages", "status": 500, "match": {"accountId": "1111111"}}]})
    assert (await client.get(URL, params=ANY_TIME, headers=AUTH)).status == 200
    resp = await client.get("/api/v2/users/1111111/messages", params=ANY_TIME, headers=AUTH)
    assert resp.status == 500 and (await resp.json())["type"] == "internal-server-error"
    assert "Retry-After" not in resp.headers


async def test_other_accounts_user_gets_403(make_client):
    client = await make_client(
        {"accounts": [{"id": ACCOUNT, "credentials": [{"username": "user", "password": "pass"}]},
                      {"id": "2222222", "credentials": [{"username": "other", "password": "secret"}]}]}
    )
    other = {"Authorization": "Basic b3RoZXI6c2VjcmV0"}  # other:secret
    resp = await client.get(URL, headers=other)
    assert resp.status == 403 and await resp.json() == {"type": "forbidden", "description": "Access Denied"}
    assert (await client.get(URL, params=ANY_TIME, headers=AUTH)).status == 200


# -- production's behaviour (Bandwidth's SDK smoke tests) ----------------------------------------


async def test_a_list_without_any_query_parameter_is_refused(client):
    resp = await client.get(URL, headers=AUTH)
    assert resp.status == 400
    body = await resp.json()
    assert body["type"] == "request-validation" and "query parameter" in body["description"]
    # An unknown parameter is not one of the spec's either.
    assert (await client.get(URL, params={"foo": "bar"}, headers=AUTH)).status == 400
    assert (await client.get(URL, params={"limit": "5"}, headers=AUTH)).status == 200


async def test_rows_carry_country_codes_and_filter_on_them(client):
    us = await sent(client, to=["+15552221111"])
    uk = await sent(client, to=["+442079460000"])
    ca = await sent(client, **{"from": "+16135550123", "to": ["+15552221112"]})
    rows = {m["messageId"]: m for m in (await listing(client))["messages"]}
    assert (rows[us]["callingNumberCountryA3"], rows[us]["calledNumberCountryA3"]) == ("USA", "USA")
    assert rows[uk]["calledNumberCountryA3"] == "GBR"
    assert rows[ca]["callingNumberCountryA3"] == "CAN"
    called_gb = await listing(client, calledNumberCountryA3="GBR")
    assert [m["messageId"] for m in called_gb["messages"]] == [uk]
    calling_us = await listing(client, callingNumberCountryA3="usa")
    assert {m["messageId"] for m in calling_us["messages"]} == {us, uk}
    both = await listing(client, callingNumberCountryA3="CAN", calledNumberCountryA3="USA")
    assert [m["messageId"] for m in both["messages"]] == [ca]
    resp = await client.get(URL, params={"calledNumberCountryA3": "US"}, headers=AUTH)
    assert resp.status == 400 and "alpha-3" in (await resp.json())["description"]


def test_country_of_numbers_that_have_none():
    from emulator.messaging.listing import country_a3

    assert country_a3("+15554443333") == "USA"  # a fictional 555 number: NANP's main region
    assert country_a3("12345") is None  # a short code
    assert country_a3("MyBrand") is None
    assert country_a3("+80012345678") is None  # non-geographic (international freephone)


async def test_listing_rate_limit_answers_429_with_retry_after(make_client, monkeypatch):
    from emulator.web import ratelimit

    now = [100.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    client = await make_client({"listRateLimit": {"requests": 3, "window": "5m"}})
    for _ in range(3):
        assert (await client.get(URL, params=ANY_TIME, headers=AUTH)).status == 200
        now[0] += 10
    resp = await client.get(URL, params=ANY_TIME, headers=AUTH)
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "270"  # the first request ages out at 100 + 300
    assert await resp.json() == {
        "type": "rate_limit_exceeded",
        "description": "Rate limit exceeded. Wait for Retry-After time before sending another request.",
    }
    # Sends are not limited by it.
    assert (await send(client, {"applicationId": "a", "from": "+15554443333", "to": ["+15552221111"], "text": "x"})).status == 202
    now[0] = 400.0
    assert (await client.get(URL, params=ANY_TIME, headers=AUTH)).status == 200


async def test_listing_rate_limit_is_bandwidths_by_default_and_can_be_switched_off(make_client, monkeypatch):
    from emulator.scenarios.format import Scenario

    limit = Scenario().list_rate_limit
    assert limit is not None and (limit.requests, limit.window) == (3500, 300.0)
    client = await make_client({"listRateLimit": None})
    from emulator.web.ratelimit import LIST_LIMITER

    def refuse(*args, **kwargs):
        raise AssertionError("no limit was asked for")

    monkeypatch.setattr(client.app[LIST_LIMITER], "admit", refuse)
    assert (await client.get(URL, params=ANY_TIME, headers=AUTH)).status == 200
