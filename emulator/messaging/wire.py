"""Bandwidth's wire formats: the send request, the Message body and callback events.

Request validation is hand-written rather than left to pydantic so that every problem
comes back as a Bandwidth ``fieldErrors`` entry naming the field, worded like Bandwidth's
own (``'+invalid' must be replaced with a valid E164 formatted telephone number``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any

from emulator.delivery.clock import isoformat, parse_isoformat
from emulator.state.models import Message

# The one E.164 pattern: a plus, a country code not starting with 0, at most 15 digits.
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
# Alphanumeric sender IDs (2026 spec): up to 11 of A-Z a-z 0-9 space - + _ &, at least one letter.
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 \-+_&]{1,11}$")

MAX_RECIPIENTS = 10
MAX_TEXT = 2048
MAX_TAG = 1024
MAX_MEDIA = 10
MAX_MEDIA_URL = 4096
# What a handset can send (docs/bandwidth-behaviour.md, 'Segments and size limits'): Bandwidth
# publishes no limit for inbound text, and passes on what the carrier delivers. The longest
# concatenated SMS has 255 parts (the 6-byte header of each part counts them in one byte,
# https://support.bandwidth.com/hc/en-us/articles/360010235373) of 153 GSM-7 characters; an
# MMS's text part, and an RBM answer typed on the handset, are held to the same bound.
MAX_INBOUND_TEXT = 255 * 153  # 39,015 characters
# A handset's address: an E.164 number has at most 16 characters, a short code 6, an
# alphanumeric sender 11; twice the longest leaves room for any test's own formats.
MAX_HANDSET = 32
# An account or application id given to the control API: Bandwidth's are 7 digits and a
# 36-character UUID; this leaves room for any test's own naming.
MAX_ID = 256


@dataclass(frozen=True)
class FieldError:
    field_name: str
    description: str

    def to_json(self) -> dict[str, str]:
        return {"fieldName": self.field_name, "description": self.description}


@dataclass(slots=True)
class SendRequest:
    application_id: str
    to: tuple[str, ...]
    from_: str
    text: str
    media: tuple[str, ...]
    tag: str | None
    priority: str
    expiration: str | None
    expiration_at: float | None


def _e164_error(field: str, value: Any) -> FieldError:
    return FieldError(field, f"'{value}' must be replaced with a valid E164 formatted telephone number")


def parse_send_request(body: Any, now: float) -> SendRequest | list[FieldError]:
    """Validate a MessageRequest; unknown fields are tolerated, as by Bandwidth."""
    if not isinstance(body, dict):
        return [FieldError("body", "The request body must be a JSON object")]
    errors: list[FieldError] = []

    application_id = body.get("applicationId")
    if application_id is None or application_id == "":
        errors.append(FieldError("applicationId", "'applicationId' must not be empty"))
    elif not isinstance(application_id, str):
        errors.append(FieldError("applicationId", "'applicationId' must be a string"))
    elif len(application_id) > MAX_ID:
        # Stored with every message: bounded like the ids the control API takes.
        errors.append(FieldError("applicationId", f"'applicationId' must be at most {MAX_ID} characters"))

    from_ = body.get("from")
    if from_ is None or from_ == "":
        errors.append(FieldError("from", "'from' must not be empty"))
    elif not isinstance(from_, str) or not (
        E164.match(from_) or (not from_.startswith("+") and ALPHANUMERIC_SENDER.match(from_))
    ):
        # Anything that starts with '+' is meant as a number (Bandwidth's own example
        # rejects '+invalid'), so only the rest may be an alphanumeric sender ID.
        errors.append(_e164_error("from", from_))

    to = body.get("to")
    if isinstance(to, str):  # the legacy API accepted one string (docs/bandwidth-behaviour.md, 'Sending')
        to = [to]
    recipients: list[str] = []
    if to is None or to == []:
        errors.append(FieldError("to", "'to' must contain at least one recipient"))
    elif not isinstance(to, list):
        errors.append(FieldError("to", "'to' must be an array of E164 telephone numbers"))
    else:
        for number in to:
            if not isinstance(number, str) or not E164.match(number):
                errors.append(_e164_error("to", number))
            else:
                recipients.append(number)
        if len(set(recipients)) != len(recipients):
            errors.append(FieldError("to", "'to' must not contain duplicate telephone numbers"))
        if len(to) > MAX_RECIPIENTS:
            errors.append(FieldError("to", f"'to' must not contain more than {MAX_RECIPIENTS} recipients"))

    text = body.get("text")
    if text is None:
        text = ""
    elif not isinstance(text, str):
        errors.append(FieldError("text", "'text' must be a string"))
        text = ""
    elif len(text) > MAX_TEXT:
        errors.append(FieldError("text", f"'text' must be at most {MAX_TEXT} characters"))

    media = body.get("media")
    if media is None:
        media = []
    elif not isinstance(media, list) or not all(isinstance(m, str) for m in media):
        errors.append(FieldError("media", "'media' must be an array of URLs"))
        media = []
    else:
        if len(media) > MAX_MEDIA:
            errors.append(FieldError("media", f"'media' must not contain more than {MAX_MEDIA} items"))
        for url in media:
            if len(url) > MAX_MEDIA_URL:
                errors.append(FieldError("media", f"a media URL must be at most {MAX_MEDIA_URL} characters"))
            elif not re.match(r"^https?://", url):
                errors.append(FieldError("media", f"'{url}' is not a valid http or https URL"))

    if not text and not media and not errors:
        errors.append(FieldError("text", "'text' or 'media' must be provided"))

    tag = body.get("tag")
    if tag is not None and not isinstance(tag, str):
        errors.append(FieldError("tag", "'tag' must be a string"))
        tag = None
    elif tag is not None and len(tag) > MAX_TAG:
        errors.append(FieldError("tag", f"'tag' must be at most {MAX_TAG} characters"))

    priority = body.get("priority")
    if priority is None:
        priority = "default"
    elif priority not in ("default", "high"):
        errors.append(FieldError("priority", f"'{priority}' is not a valid priority: use 'default' or 'high'"))

    expiration = body.get("expiration")
    expiration_at: float | None = None
    if expiration is not None:
        expiration_at = parse_isoformat(expiration)
        if expiration_at is None:
            errors.append(FieldError("expiration", f"'{expiration}' is not a valid RFC 3339 date-time"))
        elif expiration_at <= now:
            errors.append(FieldError("expiration", "'expiration' must be in the future"))

    if errors:
        return errors
    assert isinstance(application_id, str) and isinstance(from_, str)  # checked above
    return SendRequest(
        application_id=application_id,
        to=tuple(recipients),
        from_=from_,
        text=text,
        media=tuple(media),
        tag=tag,
        priority=priority,
        expiration=expiration,
        expiration_at=expiration_at,
    )


def message_fields(message: Message) -> dict[str, Any]:
    """The fields the 202 body and every callback's ``message`` object share."""
    return {
        "id": message.id,
        "owner": message.owner,
        "applicationId": message.application_id,
        "time": isoformat(message.time),
        "segmentCount": message.segment_count,
        "direction": message.direction,
        "to": list(message.to),
        "from": message.from_,
    }


def message_body(message: Message) -> dict[str, Any]:
    """The 202 body of a send (docs/bandwidth-behaviour.md, 'Sending')."""
    body = message_fields(message)
    body["text"] = message.text
    body["priority"] = message.priority
    if message.media:
        body["media"] = list(message.media)
    if message.tag is not None:
        body["tag"] = message.tag
    if message.expiration is not None:
        body["expiration"] = message.expiration
    return body


def message_body_json(message: Message) -> str:
    """``json.dumps(message_body(message))``, the same text written directly: the answer to
    every send, at a quarter of the cost (the fields and their order are message_body's)."""
    to = ", ".join(map(_json_string, message.to))
    text = (
        f'{{"id": {_json_string(message.id)}, "owner": {_json_string(message.owner)}, '
        f'"applicationId": {_json_string(message.application_id)}, "time": {_json_string(isoformat(message.time))}, '
        f'"segmentCount": {int(message.segment_count)}, "direction": {_json_string(message.direction)}, '
        f'"to": [{to}], "from": {_json_string(message.from_)}, '
        f'"text": {_json_string(message.text)}, "priority": {_json_string(message.priority)}'
    )
    if message.media:
        text += ', "media": [' + ", ".join(map(_json_string, message.media)) + "]"
    if message.tag is not None:
        text += f', "tag": {_json_string(message.tag)}'
    if message.expiration is not None:
        text += f', "expiration": {_json_string(message.expiration)}'
    return text + "}"


def callback_event(
    message: Message,
    *,
    type: str,
    to: str,
    time: float,
    description: str,
    error_code: int | None = None,
    carrier_name: str | None = None,
) -> dict[str, Any]:
    """One element of a callback array (docs/bandwidth-behaviour.md, 'Callbacks').

    Outbound events carry ``"text": ""`` and always ``tag`` (``""`` when unset) and ``media``
    on message-sending, so every SDK generation since 15.x can parse them (§13.2).
    """
    inner = message_fields(message)
    inner["text"] = message.text if message.direction == "in" else ""
    if message.direction == "out":
        inner["tag"] = message.tag if message.tag is not None else ""
        inner["priority"] = message.priority
        if message.media or type == "message-sending":
            inner["media"] = list(message.media)
    elif message.media:
        inner["media"] = list(message.media)
    event: dict[str, Any] = {
        "time": isoformat(time),
        "type": type,
        "to": to,
        "description": description,
        "message": inner,
    }
    if error_code is not None:
        event["errorCode"] = error_code
    if carrier_name is not None:
        event["carrierName"] = carrier_name
    return event
