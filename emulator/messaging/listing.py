"""List messages (``GET /users/{accountId}/messages``): query parsing, filters, sort, pages.

Pure functions over the store's messages; no HTTP here. Bandwidth's list is metadata only
(never ``text``) and speaks in upper-case enums (``DELIVERED``, ``OUTBOUND``), unlike the
send API and callbacks (docs/bandwidth-behaviour.md, 'Listing messages').

A message is listed as one row per recipient (one per ``destinationTn``), the way
Bandwidth's message search reports a group message: each row has that recipient's own
status and error code. An inbound message is one row whose ``destinationTn`` is the number
that received it (the emulator already keeps one inbound message per owned number).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.delivery.clock import isoformat, parse_isoformat
from emulator.state.models import Message

MESSAGE_STATUSES = ("RECEIVED", "QUEUED", "SENDING", "SENT", "FAILED", "DELIVERED", "ACCEPTED", "UNDELIVERED")
DIRECTIONS = {"INBOUND": "in", "OUTBOUND": "out"}
MESSAGE_TYPES = ("sms", "mms", "rcs")
PRODUCTS = (
    "LOCAL_A2P", "P2P", "SHORT_CODE_REACH", "TOLL_FREE", "HOSTED_SHORT_CODE",
    "ALPHA_NUMERIC", "RBM_MEDIA", "RBM_RICH", "RBM_CONVERSATIONAL",
)
DEFAULT_LIMIT = 100
# "The sum of limit and after cannot be more than 10000" (spec, limit parameter).
MAX_WINDOW = 10_000
MAX_NUMBERS = 10
MIN_PARTIAL = 5

SORT_FIELDS = (
    "messageId", "accountId", "sourceTn", "destinationTn", "messageStatus", "messageDirection",
    "messageType", "segmentCount", "errorCode", "receiveTime", "carrierName", "messageSize",
    "messageLength", "attachmentCount", "recipientCount", "campaignClass", "campaignId",
)

_FULL_NUMBER = re.compile(r"^\+?\d{6,15}$")
_OFFSET = re.compile(r"[0-9]{1,9}")


class ListError(ValueError):
    """A bad query parameter: becomes a 400 in Bandwidth's shape."""


@functools.lru_cache(maxsize=4096)
def country_a3(number: str) -> str | None:
    """The ISO 3166-1 alpha-3 country of a phone number ("USA" for +1 numbers of the US), or
    None when it has none (a short code, an alphanumeric sender, a non-geographic number).

    The country comes from libphonenumber's metadata; a +1 number no NANP region claims (such
    as the fictional 555 numbers of tests) counts as the calling code's main region, the US.
    """
    # Imported on first use: libphonenumber's metadata costs about an eighth of the emulator's
    # import time, and only the list API's country fields need it (docs/testing.md, 'What a
    # test costs').
    import iso3166
    import phonenumbers

    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed) or phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    country = iso3166.countries_by_alpha2.get(region or "")
    return country.alpha3 if country is not None else None


@dataclass(frozen=True)
class ListRow:
    """One ``listMessageItem``."""

    message_id: str
    account_id: str
    source_tn: str
    destination_tn: str
    message_status: str
    message_direction: str
    message_type: str
    segment_count: int
    error_code: int
    receive_time: float
    carrier_name: str | None
    message_size: int
    message_length: int
    attachment_count: int
    recipient_count: int
    seq: int = 0

    @property
    def calling_number_country_a3(self) -> str | None:
        return country_a3(self.source_tn)

    @property
    def called_number_country_a3(self) -> str | None:
        return country_a3(self.destination_tn)

    def value(self, name: str) -> Any:
        """The value of one ``listMessageItem`` field, by its wire name (for sorting)."""
        attribute = _ATTRIBUTES[name]
        return None if attribute is None else getattr(self, attribute)

    def to_json(self) -> dict[str, Any]:
        # Never the text: Bandwidth does not store it (docs/bandwidth-behaviour.md, 'Sending' and 'Listing messages').
        body = {name: self.value(name) for name in _ATTRIBUTES}
        body["receiveTime"] = isoformat(self.receive_time)
        return body


# Wire name -> ListRow attribute; campaign fields are always null (no 10DLC campaigns here).
_ATTRIBUTES: dict[str, str | None] = {
    "messageId": "message_id",
    "accountId": "account_id",
    "sourceTn": "source_tn",
    "destinationTn": "destination_tn",
    "messageStatus": "message_status",
    "messageDirection": "message_direction",
    "messageType": "message_type",
    "segmentCount": "segment_count",
    "errorCode": "error_code",
    "receiveTime": "receive_time",
    "carrierName": "carrier_name",
    "messageSize": "message_size",
    "messageLength": "message_length",
    "attachmentCount": "attachment_count",
    "recipientCount": "recipient_count",
    "campaignClass": None,
    "campaignId": None,
    "callingNumberCountryA3": "calling_number_country_a3",
    "calledNumberCountryA3": "called_number_country_a3",
}


def rows_for(message: Message, seq: int = 0, media_size: int = 0) -> list[ListRow]:
    """The list rows of one message: one per recipient; ``media_size`` = bytes of known media."""
    # surrogatepass: a text stored before lone surrogates were refused (or read from an older
    # --db file) still lists, instead of failing the whole page.
    text_bytes = len(message.text.encode("utf-8", "surrogatepass"))
    rows = []
    recipients = [message.owner] if message.direction == "in" else list(message.to)
    for to in recipients:
        status = message.recipients.get(to)
        rows.append(
            ListRow(
                message_id=message.id,
                account_id=message.account_id,
                source_tn=message.from_,
                destination_tn=to,
                message_status=status.status if status else ("RECEIVED" if message.direction == "in" else "QUEUED"),
                message_direction="INBOUND" if message.direction == "in" else "OUTBOUND",
                message_type=message.message_type,
                segment_count=message.segment_count,
                # Bandwidth reports 0 for a message without error (docs example).
                error_code=(status.error_code if status and status.error_code is not None else 0),
                receive_time=message.time,
                carrier_name=status.carrier_name if status else None,
                message_size=text_bytes + media_size,
                message_length=len(message.text),
                attachment_count=len(message.media),
                recipient_count=len(message.to),
                seq=seq,
            )
        )
    return rows


@dataclass
class ListQuery:
    message_id: str | None = None
    source_tn: list[str] | None = None
    source_partial: str | None = None
    destination_tn: list[str] | None = None
    destination_partial: str | None = None
    message_status: str | None = None
    message_direction: str | None = None
    carrier_name: str | None = None
    message_type: str | None = None
    error_code: int | None = None
    from_time: float | None = None
    to_time: float | None = None
    calling_country: str | None = None
    called_country: str | None = None
    unmatchable: list[str] = field(default_factory=list)
    segment_range: tuple[int | None, int | None] = (None, None)
    size_range: tuple[int | None, int | None] = (None, None)
    sort: list[tuple[str, bool]] = field(default_factory=lambda: [("receiveTime", True)])
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    limit_total_count: bool = False


def _number(raw: str) -> str:
    # An unencoded '+' arrives as a space (form encoding); Bandwidth asks for %2B, but
    # being lenient here costs nothing and saves a confusing empty result.
    value = raw.strip()
    if raw.startswith(" ") and value[:1].isdigit():
        value = "+" + value
    return value


def _numbers(name: str, raw: str) -> tuple[list[str] | None, str | None]:
    """Full number(s) or one partial number (docs/bandwidth-behaviour.md, 'Listing messages')."""
    parts = [_number(p) for p in raw.split(",")]
    if len(parts) > 1:
        if len(parts) > MAX_NUMBERS:
            raise ListError(f"'{name}' accepts at most {MAX_NUMBERS} comma-separated phone numbers")
        for p in parts:
            if not _FULL_NUMBER.match(p):
                raise ListError(f"'{name}' must be a comma-separated list of full phone numbers; '{p}' is not one")
        return parts, None
    value = parts[0]
    if len(value) < MIN_PARTIAL:
        raise ListError(f"'{name}' must be a full phone number or a partial one of at least {MIN_PARTIAL} characters")
    if not re.fullmatch(r"\+?\d+", value):
        raise ListError(f"'{name}' must be a phone number (digits, optionally starting with +)")
    return None, value


def _int(name: str, raw: str, minimum: int | None = None) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ListError(f"'{name}' must be an integer") from None
    if minimum is not None and value < minimum:
        raise ListError(f"'{name}' must be at least {minimum}")
    return value


def _bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered not in ("true", "false"):
        raise ListError(f"'{name}' must be true or false")
    return lowered == "true"


def _time(name: str, raw: str) -> float:
    # Bandwidth's examples are UTC; a time without an offset is read as UTC.
    t = parse_isoformat(raw.strip(), naive_is_utc=True)
    if t is None:
        raise ListError(f"'{name}' must be an ISO 8601 date-time, e.g. 2022-09-14T18:20:16.000Z")
    return t


def _enum(name: str, raw: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if raw not in allowed:
        raise ListError(f"'{raw}' is not a valid {name}: use one of {', '.join(allowed)}")
    return raw


def _country(name: str, raw: str) -> str:
    value = raw.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise ListError(f"'{name}' must be an ISO 3166-1 alpha-3 country code, e.g. USA")
    return value


def _sort(raw: str) -> list[tuple[str, bool]]:
    keys = []
    for part in raw.split(","):
        name, _, direction = part.strip().partition(":")
        if name not in SORT_FIELDS:
            raise ListError(f"'{name}' is not a sortable field: use one of {', '.join(SORT_FIELDS)}")
        direction = direction.lower() or "asc"
        if direction not in ("asc", "desc"):
            raise ListError(f"sort direction must be asc or desc, not '{direction}'")
        keys.append((name, direction == "desc"))
    return keys


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def decode_page_token(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    prefix, _, number = raw.partition(":")
    # ASCII digits only (str.isdigit also takes '²'), and few enough to stay below the
    # window: a 5,000-digit number is not an offset.
    if prefix != "offset" or not _OFFSET.fullmatch(number):
        raise ListError(f"'{token}' is not a valid pageToken: pass back a token from pageInfo")
    return int(number)


# Every query parameter of listMessages in the current spec.
QUERY_PARAMETERS = (
    "messageId", "sourceTn", "destinationTn", "messageStatus", "messageDirection", "carrierName",
    "messageType", "errorCode", "fromDateTime", "toDateTime", "campaignId", "fromBwLatency",
    "bwQueued", "product", "location", "carrierQueued", "fromCarrierLatency",
    "callingNumberCountryA3", "calledNumberCountryA3", "fromSegmentCount", "toSegmentCount",
    "fromMessageSize", "toMessageSize", "sort", "pageToken", "limit", "limitTotalCount",
)


def parse_query(q: Mapping[str, str]) -> ListQuery:
    """Validate every query parameter of the current spec; unknown ones are ignored.

    "You must include at least one query parameter" (the spec's listMessages): a request with
    none of them is refused, as Bandwidth's production smoke tests expect.
    """
    if not any(name in q for name in QUERY_PARAMETERS):
        raise ListError(
            "At least one query parameter is required, e.g. messageDirection=OUTBOUND or "
            "fromDateTime=2026-01-01T00:00:00.000Z"
        )
    query = ListQuery()
    if "messageId" in q:
        query.message_id = q["messageId"]
    if "sourceTn" in q:
        query.source_tn, query.source_partial = _numbers("sourceTn", q["sourceTn"])
    if "destinationTn" in q:
        query.destination_tn, query.destination_partial = _numbers("destinationTn", q["destinationTn"])
    if "messageStatus" in q:
        query.message_status = _enum("messageStatus", q["messageStatus"], MESSAGE_STATUSES)
    if "messageDirection" in q:
        query.message_direction = _enum("messageDirection", q["messageDirection"], DIRECTIONS)
    if "carrierName" in q:
        query.carrier_name = q["carrierName"]
    if "messageType" in q:
        query.message_type = _enum("messageType", q["messageType"], MESSAGE_TYPES)
    if "errorCode" in q:
        query.error_code = _int("errorCode", q["errorCode"])
    if "fromDateTime" in q:
        query.from_time = _time("fromDateTime", q["fromDateTime"])
    if "toDateTime" in q:
        query.to_time = _time("toDateTime", q["toDateTime"])
    if query.from_time is not None and query.to_time is not None and query.from_time > query.to_time:
        raise ListError("'fromDateTime' must not be after 'toDateTime'")
    if "callingNumberCountryA3" in q:
        query.calling_country = _country("callingNumberCountryA3", q["callingNumberCountryA3"])
    if "calledNumberCountryA3" in q:
        query.called_country = _country("calledNumberCountryA3", q["calledNumberCountryA3"])
    # Fields the emulator has no data for (campaigns, products, locations):
    # a filter on them matches no message, as it would for messages without that data.
    for name in ("campaignId", "location"):
        if name in q:
            query.unmatchable.append(name)
    if "product" in q:
        _enum("product", q["product"], PRODUCTS)
        query.unmatchable.append("product")
    # Advanced Quality Metrics filters: validated, not applied (the emulator measures no latency).
    for name in ("fromBwLatency", "fromCarrierLatency"):
        if name in q:
            _int(name, q[name], minimum=0)
    for name in ("bwQueued", "carrierQueued"):
        if name in q:
            _bool(name, q[name])
    query.segment_range = (
        _int("fromSegmentCount", q["fromSegmentCount"], 0) if "fromSegmentCount" in q else None,
        _int("toSegmentCount", q["toSegmentCount"], 0) if "toSegmentCount" in q else None,
    )
    query.size_range = (
        _int("fromMessageSize", q["fromMessageSize"], 0) if "fromMessageSize" in q else None,
        _int("toMessageSize", q["toMessageSize"], 0) if "toMessageSize" in q else None,
    )
    if "sort" in q:
        query.sort = _sort(q["sort"])
    if "limit" in q:
        query.limit = _int("limit", q["limit"], minimum=1)
    if "pageToken" in q:
        query.offset = decode_page_token(q["pageToken"])
    if query.offset + query.limit > MAX_WINDOW:
        raise ListError(f"the sum of limit and the page offset cannot be more than {MAX_WINDOW}")
    if "limitTotalCount" in q:
        query.limit_total_count = _bool("limitTotalCount", q["limitTotalCount"])
    return query


def _in_range(value: int, bounds: tuple[int | None, int | None]) -> bool:
    low, high = bounds
    return (low is None or value >= low) and (high is None or value <= high)


def _number_matches(value: str, full: list[str] | None, partial: str | None) -> bool:
    if full is not None:
        return value in full or value.lstrip("+") in (n.lstrip("+") for n in full)
    if partial is not None:
        return partial in value
    return True


def matches(row: ListRow, query: ListQuery) -> bool:
    if query.unmatchable:
        return False
    if query.message_id is not None and row.message_id != query.message_id:
        return False
    if not _number_matches(row.source_tn, query.source_tn, query.source_partial):
        return False
    if not _number_matches(row.destination_tn, query.destination_tn, query.destination_partial):
        return False
    if query.message_status is not None and row.message_status != query.message_status:
        return False
    if query.message_direction is not None and row.message_direction != query.message_direction:
        return False
    if query.carrier_name is not None and (row.carrier_name or "").lower() != query.carrier_name.lower():
        return False
    if query.message_type is not None and row.message_type != query.message_type:
        return False
    if query.error_code is not None and row.error_code != query.error_code:
        return False
    if query.from_time is not None and row.receive_time < query.from_time:
        return False
    if query.to_time is not None and row.receive_time > query.to_time:
        return False
    if query.calling_country is not None and row.calling_number_country_a3 != query.calling_country:
        return False
    if query.called_country is not None and row.called_number_country_a3 != query.called_country:
        return False
    return _in_range(row.segment_count, query.segment_range) and _in_range(row.message_size, query.size_range)


@dataclass
class ListPage:
    rows: list[ListRow]
    total_count: int
    next_offset: int | None
    prev_offset: int | None


def search(rows: Iterable[ListRow], query: ListQuery) -> ListPage:
    found = [r for r in rows if matches(r, query)]
    # Ties keep creation order, newest first when the main key is descending (the default
    # receiveTime:desc lists the most recent message first, docs/bandwidth-behaviour.md, 'Listing messages').
    found.sort(key=lambda r: r.seq, reverse=query.sort[0][1])
    for name, descending in reversed(query.sort):
        # None sorts after every value in either direction.
        present = [r for r in found if r.value(name) is not None]
        absent = [r for r in found if r.value(name) is None]
        present.sort(key=lambda r: r.value(name), reverse=descending)
        found = present + absent
    total = len(found)
    page = found[query.offset : query.offset + query.limit]
    end = query.offset + len(page)
    next_offset = end if end < total and end + query.limit <= MAX_WINDOW else None
    prev_offset = max(0, query.offset - query.limit) if query.offset > 0 else None
    if query.limit_total_count:
        total = min(total, MAX_WINDOW)
    return ListPage(page, total, next_offset, prev_offset)


def list_messages(messages: Iterable[Message], query: ListQuery, media_size: Any = None) -> ListPage:
    """Search one account's messages; ``media_size(message)`` gives the bytes of its known media."""
    rows: list[ListRow] = []
    for seq, message in enumerate(sorted(messages, key=lambda m: m.time)):
        size = media_size(message) if media_size and message.media else 0
        rows.extend(rows_for(message, seq, size))
    return search(rows, query)
