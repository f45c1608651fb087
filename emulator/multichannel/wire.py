"""The multi-channel API's wire formats: the request, its validation, the 202 envelope, the
error envelope and the callback events of RBM (docs/multichannel.md).

Validation is written out by hand, as for plain sends (emulator/messaging/wire.py), so that
every problem comes back as one entry of the multi-channel error envelope whose
``source.field`` names the field by its path, as in Bandwidth's own example
``channelList[0].from`` (https://dev.bandwidth.com/apis/messaging-apis/messaging/#tag/Multi-Channel).
The rules are those of the ``multiChannelMessageRequest`` schema of Bandwidth's OpenAPI
document (github.com/Bandwidth/api-specs); which ones are ours is said in
docs/multichannel.md, 'Validation'.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass, field
from typing import Any

from emulator.delivery.clock import isoformat, parse_isoformat
from emulator.messaging.wire import ALPHANUMERIC_SENDER, E164, MAX_ID, MAX_TAG, message_fields
from emulator.state.models import Callback, Message

CHANNELS = ("RBM", "SMS", "MMS")
MAX_CHANNELS = 4
MAX_SMS_TEXT = 2048
MAX_RBM_TEXT = 3270
MAX_SUGGESTIONS = 11
MAX_CARD_SUGGESTIONS = 4
MAX_CARD_TITLE = 200
MAX_CARD_DESCRIPTION = 2000
MIN_CAROUSEL_CARDS = 2
MAX_CAROUSEL_CARDS = 10
MAX_FILE_URL = 1000
MAX_MMS_MEDIA = 10
MAX_ACTION_TEXT = 25
MAX_POSTBACK = 2048
MAX_OPEN_URL = 2048
MAX_LOCATION_LABEL = 100
MAX_EVENT_TITLE = 100
MAX_EVENT_DESCRIPTION = 500

ACTION_TYPES = ("REPLY", "DIAL_PHONE", "SHOW_LOCATION", "CREATE_CALENDAR_EVENT", "OPEN_URL", "REQUEST_LOCATION")
HEIGHTS = ("SHORT", "MEDIUM", "TALL")
ORIENTATIONS = ("HORIZONTAL", "VERTICAL")
ALIGNMENTS = ("LEFT", "RIGHT")
CARD_WIDTHS = ("SMALL", "MEDIUM")
OPEN_URL_APPLICATIONS = ("BROWSER", "WEBVIEW")
WEBVIEW_MODES = ("FULL", "HALF", "TALL")

_HTTP_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)
_DOUBLE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class SourceError:
    """One entry of the error envelope's ``errors``: what is wrong, and where."""

    description: str
    field: str | None = None
    header: str | None = None
    parameter: str | None = None
    type: str = "request-validation"

    def to_json(self) -> dict[str, Any]:
        source = {
            key: value
            for key, value in (("parameter", self.parameter), ("field", self.field), ("header", self.header))
            if value is not None
        }
        return {"type": self.type, "description": self.description, "source": source}


def error_envelope(errors: list[SourceError]) -> dict[str, Any]:
    """``multiChannelError``: ``{links, data: null, errors}``."""
    return {"links": [], "data": None, "errors": [e.to_json() for e in errors]}


@dataclass(slots=True)
class ChannelItem:
    """One entry of ``channelList``, validated; ``content`` holds the known keys as sent."""

    channel: str
    from_: str
    application_id: str
    content: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        # multiChannelChannelListResponseObject: the request's item with its owner (= from).
        return {
            "from": self.from_,
            "applicationId": self.application_id,
            "channel": self.channel,
            "content": self.content,
            "owner": self.from_,
        }


@dataclass(slots=True)
class MultiChannelRequest:
    to: str
    channels: list[ChannelItem]
    tag: str | None = None
    priority: str = "default"
    expiration: str | None = None
    expiration_at: float | None = None
    errors: list[SourceError] = field(default_factory=list)


def parse_rfc3339(value: Any) -> float | None:
    """Seconds since the epoch of an RFC 3339 date-time (an offset is required), else None."""
    if not isinstance(value, str) or "T" not in value.upper():
        return None
    return parse_isoformat(value)


class _Checker:
    """Collects the problems of one request, each with its field path."""

    def __init__(self) -> None:
        self.errors: list[SourceError] = []

    def fail(self, path: str, description: str) -> None:
        self.errors.append(SourceError(description, field=path))

    def obj(self, value: Any, path: str) -> dict[str, Any] | None:
        if value is None:
            self.fail(path, f"The '{path}' field is required")
            return None
        if not isinstance(value, dict):
            self.fail(path, f"The '{path}' field must be an object")
            return None
        return value

    def _field(self, parent: dict[str, Any], key: str, path: str, *, required: bool, hint: str = "") -> tuple[str, Any]:
        """The field's path and value; a missing value is None, reported when required."""
        where = f"{path}.{key}" if path else key
        value = parent.get(key)
        if value is None and required:
            self.fail(where, f"The '{where}' field is required{hint}")
        return where, value

    def string(
        self, parent: dict[str, Any], key: str, path: str, *, required: bool, max_length: int | None = None,
        allow_empty: bool = False,
    ) -> str | None:
        where, value = self._field(parent, key, path, required=required)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(where, f"The '{where}' field must be a string")
            return None
        if not value and not allow_empty and required:
            self.fail(where, f"The '{where}' field must not be empty")
            return None
        if max_length is not None and len(value) > max_length:
            self.fail(where, f"The '{where}' field must be {max_length} characters or less (got {len(value)})")
            return None
        return value

    def enum(self, parent: dict[str, Any], key: str, path: str, allowed: tuple[str, ...], *, required: bool) -> str | None:
        where, value = self._field(parent, key, path, required=required, hint=f"; one of {', '.join(allowed)}")
        if value is None:
            return None
        if value not in allowed:
            self.fail(where, f"The '{where}' field must be one of {', '.join(allowed)} (got {_show(value)})")
            return None
        return str(value)

    def array(self, parent: dict[str, Any], key: str, path: str, *, required: bool) -> list[Any] | None:
        where, value = self._field(parent, key, path, required=required)
        if value is None:
            return None
        if not isinstance(value, list):
            self.fail(where, f"The '{where}' field must be an array")
            return None
        return value

    def url(self, parent: dict[str, Any], key: str, path: str, *, required: bool, max_length: int) -> str | None:
        value = self.string(parent, key, path, required=required, max_length=max_length)
        if value is not None and not _HTTP_URL.match(value):
            where = f"{path}.{key}"
            self.fail(where, f"The '{where}' field must be an http:// or https:// URL (got {_show(value)})")
            return None
        return value


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= 60 else text[:57] + "..."


def _file(check: _Checker, value: Any, path: str, *, thumbnail: bool, height: bool) -> dict[str, Any] | None:
    """rbmMessageContentFile (with ``height`` on a card) or mmsMessageContentFile."""
    obj = check.obj(value, path)
    if obj is None:
        return None
    out: dict[str, Any] = {}
    file_url = check.url(obj, "fileUrl", path, required=True, max_length=MAX_FILE_URL)
    if file_url is not None:
        out["fileUrl"] = file_url
    if thumbnail:
        thumb = check.url(obj, "thumbnailUrl", path, required=False, max_length=MAX_FILE_URL)
        if thumb is not None:
            out["thumbnailUrl"] = thumb
    if height:
        h = check.enum(obj, "height", path, HEIGHTS, required=True)
        if h is not None:
            out["height"] = h
    return out


def _coordinate(check: _Checker, obj: dict[str, Any], key: str, path: str, limit: float) -> str | None:
    value = check.string(obj, key, path, required=True)
    if value is None:
        return None
    where = f"{path}.{key}"
    number = float(value) if _DOUBLE.match(value.strip()) else math.nan
    if not math.isfinite(number) or not -limit <= number <= limit:
        check.fail(where, f"The '{where}' field must be a decimal number in the range [-{limit:.6f}, {limit:.6f}] (got {_show(value)})")
        return None
    return value


def _action(check: _Checker, value: Any, path: str) -> dict[str, Any] | None:
    """multiChannelAction: a suggested reply or action, by its ``type``."""
    obj = check.obj(value, path)
    if obj is None:
        return None
    kind = check.enum(obj, "type", path, ACTION_TYPES, required=True)
    out: dict[str, Any] = {}
    if kind is not None:
        out["type"] = kind
    text = check.string(obj, "text", path, required=True, max_length=MAX_ACTION_TEXT)
    if text is not None:
        out["text"] = text
    postback = check.string(obj, "postbackData", path, required=True, max_length=MAX_POSTBACK)
    if postback is not None:
        try:
            base64.b64decode(postback, validate=True)
        except (binascii.Error, ValueError):
            check.fail(f"{path}.postbackData", f"The '{path}.postbackData' field must be base64 encoded (got {_show(postback)})")
        else:
            out["postbackData"] = postback
    if kind == "DIAL_PHONE":
        number = check.string(obj, "phoneNumber", path, required=True)
        if number is not None:
            if E164.match(number):
                out["phoneNumber"] = number
            else:
                check.fail(f"{path}.phoneNumber", f"The '{path}.phoneNumber' field must be an E164 telephone number (got {_show(number)})")
    elif kind == "SHOW_LOCATION":
        for key, limit in (("latitude", 90.0), ("longitude", 180.0)):
            coordinate = _coordinate(check, obj, key, path, limit)
            if coordinate is not None:
                out[key] = coordinate
        label = check.string(obj, "label", path, required=False, max_length=MAX_LOCATION_LABEL)
        if label is not None:
            out["label"] = label
    elif kind == "CREATE_CALENDAR_EVENT":
        title = check.string(obj, "title", path, required=True, max_length=MAX_EVENT_TITLE)
        if title is not None:
            out["title"] = title
        times: dict[str, float] = {}
        for key in ("startTime", "endTime"):
            raw = obj.get(key)
            where = f"{path}.{key}"
            if raw is None:
                check.fail(where, f"The '{where}' field is required")
                continue
            at = parse_rfc3339(raw)
            if at is None:
                check.fail(where, f"The '{where}' field must be a valid RFC-3339 date-time, e.g. 2021-03-14T01:59:26Z (got {_show(raw)})")
                continue
            out[key] = raw
            times[key] = at
        if len(times) == 2 and times["endTime"] < times["startTime"]:
            check.fail(f"{path}.endTime", f"The '{path}.endTime' field must not be before '{path}.startTime'")
        description = check.string(obj, "description", path, required=False, max_length=MAX_EVENT_DESCRIPTION)
        if description is not None:
            out["description"] = description
    elif kind == "OPEN_URL":
        url = check.url(obj, "url", path, required=True, max_length=MAX_OPEN_URL)
        if url is not None:
            out["url"] = url
        application = check.enum(obj, "application", path, OPEN_URL_APPLICATIONS, required=False)
        if application is not None:
            out["application"] = application
        if obj.get("webviewViewMode") is not None:
            if application != "WEBVIEW":
                check.fail(
                    f"{path}.webviewViewMode",
                    f"The '{path}.webviewViewMode' field may be set only when 'application' is WEBVIEW",
                )
            else:
                mode = check.enum(obj, "webviewViewMode", path, WEBVIEW_MODES, required=True)
                if mode is not None:
                    out["webviewViewMode"] = mode
        elif application == "WEBVIEW":
            check.fail(f"{path}.webviewViewMode", f"The '{path}.webviewViewMode' field is required when 'application' is WEBVIEW")
    return out


def _suggestions(check: _Checker, parent: dict[str, Any], path: str, limit: int) -> list[dict[str, Any]] | None:
    items = check.array(parent, "suggestions", path, required=False)
    if items is None:
        return None
    where = f"{path}.suggestions"
    if len(items) > limit:
        check.fail(where, f"The '{where}' field must hold at most {limit} suggestions (got {len(items)})")
        return None
    out = []
    for i, item in enumerate(items):
        action = _action(check, item, f"{where}[{i}]")
        if action is not None:
            out.append(action)
    return out


def _card(check: _Checker, value: Any, path: str) -> dict[str, Any] | None:
    """rbmCardContent: at least one of title, description and media."""
    obj = check.obj(value, path)
    if obj is None:
        return None
    out: dict[str, Any] = {}
    title = check.string(obj, "title", path, required=False, max_length=MAX_CARD_TITLE)
    if title is not None:
        out["title"] = title
    description = check.string(obj, "description", path, required=False, max_length=MAX_CARD_DESCRIPTION)
    if description is not None:
        out["description"] = description
    if obj.get("media") is not None:
        media = _file(check, obj["media"], f"{path}.media", thumbnail=True, height=True)
        if media is not None:
            out["media"] = media
    if all(obj.get(k) is None for k in ("title", "description", "media")):
        check.fail(path, f"The '{path}' field must contain at least one of title, description or media")
    suggestions = _suggestions(check, obj, path, MAX_CARD_SUGGESTIONS)
    if suggestions is not None:
        out["suggestions"] = suggestions
    return out


# Which keys say which RBM content a channel carries (rbmMessageContentText, rbmMessageMedia,
# rbmStandaloneCard, rbmMessageCarouselCard: a oneOf, so exactly one may fit).
_RBM_SHAPES = {
    "text": ("text",),
    "media": ("media",),
    "standalone card": ("orientation", "cardContent", "thumbnailImageAlignment"),
    "carousel": ("cardWidth", "cardContents"),
}


def _rbm_content(check: _Checker, content: dict[str, Any], path: str) -> dict[str, Any]:
    shapes = [name for name, keys in _RBM_SHAPES.items() if any(content.get(k) is not None for k in keys)]
    if len(shapes) != 1:
        found = f"it has {' and '.join(shapes)}" if shapes else "it has none"
        check.fail(
            path,
            f"The '{path}' field must be exactly one of: text (text), media (media), a standalone card "
            f"(orientation, cardContent) or a carousel (cardWidth, cardContents); {found}",
        )
        return {}
    shape = shapes[0]
    out: dict[str, Any] = {}
    if shape == "text":
        text = check.string(content, "text", path, required=True, max_length=MAX_RBM_TEXT)
        if text is not None:
            out["text"] = text
    elif shape == "media":
        files = check.array(content, "media", path, required=True)
        if files is not None:
            if not files:
                check.fail(f"{path}.media", f"The '{path}.media' field must hold at least one file")
            out["media"] = [
                f for i, item in enumerate(files)
                if (f := _file(check, item, f"{path}.media[{i}]", thumbnail=True, height=False)) is not None
            ]
    elif shape == "standalone card":
        orientation = check.enum(content, "orientation", path, ORIENTATIONS, required=True)
        if orientation is not None:
            out["orientation"] = orientation
        alignment = check.enum(content, "thumbnailImageAlignment", path, ALIGNMENTS, required=orientation == "HORIZONTAL")
        if alignment is not None:
            out["thumbnailImageAlignment"] = alignment
        card = _card(check, content.get("cardContent"), f"{path}.cardContent")
        if card is not None:
            out["cardContent"] = card
    else:
        width = check.enum(content, "cardWidth", path, CARD_WIDTHS, required=True)
        if width is not None:
            out["cardWidth"] = width
        cards = check.array(content, "cardContents", path, required=True)
        if cards is not None:
            where = f"{path}.cardContents"
            if not MIN_CAROUSEL_CARDS <= len(cards) <= MAX_CAROUSEL_CARDS:
                check.fail(
                    where,
                    f"The '{where}' field must hold {MIN_CAROUSEL_CARDS} to {MAX_CAROUSEL_CARDS} cards (got {len(cards)})",
                )
            out["cardContents"] = [
                c for i, item in enumerate(cards) if (c := _card(check, item, f"{where}[{i}]")) is not None
            ]
    suggestions = _suggestions(check, content, path, MAX_SUGGESTIONS)
    if suggestions is not None:
        out["suggestions"] = suggestions
    return out


def _sms_content(check: _Checker, content: dict[str, Any], path: str) -> dict[str, Any]:
    text = check.string(content, "text", path, required=True, max_length=MAX_SMS_TEXT)
    return {"text": text} if text is not None else {}


def _mms_content(check: _Checker, content: dict[str, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    text = check.string(content, "text", path, required=False, max_length=MAX_SMS_TEXT, allow_empty=True)
    if text is not None:
        out["text"] = text
    files = check.array(content, "media", path, required=False)
    if files is not None:
        if len(files) > MAX_MMS_MEDIA:
            check.fail(f"{path}.media", f"The '{path}.media' field must hold at most {MAX_MMS_MEDIA} files (got {len(files)})")
        out["media"] = [
            f for i, item in enumerate(files)
            if (f := _file(check, item, f"{path}.media[{i}]", thumbnail=False, height=False)) is not None
        ]
    if not text and not files:
        check.fail(path, f"The '{path}' field must contain text or media")
    return out


def _item(check: _Checker, value: Any, path: str) -> ChannelItem | None:
    obj = check.obj(value, path)
    if obj is None:
        return None
    before = len(check.errors)
    channel = check.enum(obj, "channel", path, CHANNELS, required=True)
    from_ = check.string(obj, "from", path, required=True)
    if from_ is not None and channel in ("SMS", "MMS") and not (
        E164.match(from_) or (not from_.startswith("+") and ALPHANUMERIC_SENDER.match(from_))
    ):
        # Bandwidth's example error for this field (multiChannelBadRequestError).
        check.fail(f"{path}.from", f"The '{path}.from' field must contain exactly one telephone number")
    application_id = check.string(obj, "applicationId", path, required=True, max_length=MAX_ID)
    content_path = f"{path}.content"
    raw = check.obj(obj.get("content"), content_path)
    content: dict[str, Any] = {}
    if raw is not None and channel is not None:
        content = {"RBM": _rbm_content, "SMS": _sms_content, "MMS": _mms_content}[channel](check, raw, content_path)
    if len(check.errors) > before or channel is None or from_ is None or application_id is None:
        return None
    return ChannelItem(channel=channel, from_=from_, application_id=application_id, content=content)


def parse_request(body: Any, now: float) -> MultiChannelRequest | list[SourceError]:
    """Validate a ``multiChannelMessageRequest``; unknown fields are dropped."""
    check = _Checker()
    if not isinstance(body, dict):
        return [SourceError("The request body must be a JSON object")]
    to = body.get("to")
    if to is None:
        check.fail("to", "The 'to' field is required")
    elif not isinstance(to, str) or not E164.match(to):
        check.fail("to", f"The 'to' field must contain exactly one E164 telephone number (got {_show(to)})")
    items = check.array(body, "channelList", "", required=True)
    channels: list[ChannelItem] = []
    if items is not None:
        if not 1 <= len(items) <= MAX_CHANNELS:
            check.fail("channelList", f"The 'channelList' field must hold 1 to {MAX_CHANNELS} channels (got {len(items)})")
        else:
            for i, raw in enumerate(items):
                item = _item(check, raw, f"channelList[{i}]")
                if item is not None:
                    channels.append(item)
    tag = check.string(body, "tag", "", required=False, max_length=MAX_TAG, allow_empty=True)
    priority = check.enum(body, "priority", "", ("default", "high"), required=False) or "default"
    expiration = body.get("expiration")
    expiration_at = None
    if expiration is not None:
        expiration_at = parse_rfc3339(expiration)
        if expiration_at is None:
            check.fail("expiration", f"The 'expiration' field must be a valid RFC-3339 date-time (got {_show(expiration)})")
        elif expiration_at <= now:
            check.fail("expiration", "The 'expiration' field must be a date-time in the future")
    if check.errors:
        return check.errors
    assert isinstance(to, str)
    return MultiChannelRequest(
        to=to,
        channels=channels,
        tag=tag,
        priority=priority,
        expiration=expiration if isinstance(expiration, str) else None,
        expiration_at=expiration_at,
    )


# -- what the content says, for the store, the lists and the web page -------------------------


def summary_text(item: ChannelItem) -> str:
    """The plain text a channel's content carries (RBM cards: their titles and descriptions)."""
    content = item.content
    if "text" in content:
        return str(content["text"])
    cards = [content["cardContent"]] if "cardContent" in content else content.get("cardContents", [])
    parts = [str(card[key]) for card in cards for key in ("title", "description") if key in card]
    return "\n".join(parts)


def media_urls(item: ChannelItem) -> tuple[str, ...]:
    content = item.content
    files = list(content.get("media", []))
    for card in [content["cardContent"]] if "cardContent" in content else content.get("cardContents", []):
        if "media" in card:
            files.append(card["media"])
    return tuple(str(f["fileUrl"]) for f in files)


def suggestions_of(content: dict[str, Any]) -> list[dict[str, Any]]:
    """Every suggestion a handset shows for this content: the message's chips, then each card's."""
    out = list(content.get("suggestions", []))
    for card in [content["cardContent"]] if "cardContent" in content else content.get("cardContents", []):
        out.extend(card.get("suggestions", []))
    return out


# -- answers and events -------------------------------------------------------------------------


def response_body(message: Message) -> dict[str, Any]:
    """The 202's ``createMultiChannelMessageResponse``."""
    details = message.multichannel or {}
    data: dict[str, Any] = {
        "id": message.id,
        "time": isoformat(message.time),
        "direction": message.direction,
        "to": list(message.to),
        "channelList": details.get("channelList", []),
        "priority": message.priority,
    }
    if message.tag is not None:
        data["tag"] = message.tag
    if message.expiration is not None:
        data["expiration"] = message.expiration
    return {"links": [], "data": data, "errors": []}


INBOUND_TYPES = ("message-received", "suggestion-response", "requested-location-response")


def callback_event(message: Message, callback: Callback) -> dict[str, Any]:
    """One element of a multi-channel callback array: the spec's ``statusCallback`` or
    ``inboundCallback``, with the message's ``channel`` (docs/multichannel.md, 'Callbacks')."""
    details = message.multichannel or {}
    channel = callback.channel or message.channel
    inner = message_fields(message)
    inner["text"] = message.text if message.direction == "in" else ""
    if message.direction == "out":
        inner["tag"] = message.tag if message.tag is not None else ""
        inner["priority"] = message.priority
        if channel == "MMS" and message.media:
            inner["media"] = list(message.media)
    elif message.media:
        inner["media"] = list(message.media)
    if channel is not None:
        inner["channel"] = channel
    for key in ("content", "suggestionResponse", "locationResponse"):
        if message.direction == "in" and key in details:
            inner[key] = details[key]
    event: dict[str, Any] = {
        "time": isoformat(callback.planned_at),
        "type": callback.type,
        "to": callback.recipient,
        "description": callback.description,
        "message": inner,
    }
    if callback.type == "message-read":
        event["eventTime"] = isoformat(callback.planned_at)
    if callback.error_code is not None:
        event["errorCode"] = callback.error_code
    if callback.carrier_name is not None:
        event["carrierName"] = callback.carrier_name
    return event
