"""The multi-channel domain: accept a send, plan its fallback and callbacks, and play the
handset's side of an RBM conversation (read, tap a suggestion, share a location, type).

It works on the messaging service's store, ids, scheduler and callback engine, so
multi-channel messages are listed, journaled, retried and persisted like every other
message (docs/multichannel.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator.delivery.clock import isoformat
from emulator.messaging.segments import count_segments
from emulator.multichannel.fallback import ChannelTry, plan_fallback, view
from emulator.multichannel.wire import SourceError, parse_request, suggestions_of
from emulator.scenarios.rules import Subject
from emulator.state.changes import Change
from emulator.state.models import Callback, Message, Recipients, RecipientStatus

if TYPE_CHECKING:
    from emulator.service import MessagingService


class HandsetError(Exception):
    """A handset action that cannot be done; ``status`` is the control API's answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# Where a handset that shares its location without saying where is: Bandwidth's own example
# (rbmLocationResponse in the API reference).
DEFAULT_LOCATION = ("37.7749", "-122.4194")


def _try_json(attempt: ChannelTry, message: Message, item_from: str, application_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "channel": attempt.channel,
        "from": item_from,
        "applicationId": application_id,
        "outcome": attempt.outcome,
        "start": isoformat(message.time + attempt.start),
        "end": isoformat(message.time + attempt.end),
    }
    if attempt.error_code is not None:
        out["errorCode"] = attempt.error_code
    return out


def send(service: MessagingService, account_id: str, body: object) -> Message | list[SourceError]:
    """Accept a multi-channel send (the 202 follows), or say what is wrong with it."""
    now = service.clock.now()
    request = parse_request(body, now)
    if isinstance(request, list):
        return request
    first = request.channels[0]
    # Raises SendRejected for a scripted fault or a full queue, as for plain sends.
    subject = Subject(
        account_id=account_id,
        application_id=first.application_id,
        from_=first.from_,
        to=(request.to,),
        text=first.content.get("text", "") if isinstance(first.content.get("text"), str) else "",
        tag=request.tag,
        kind="sms",
        channel=first.channel,
    )
    queued = service.faults.admit(subject, 1, now) if service.scenario.faults else service.faults.queue_wait(account_id, 1, now)
    message = Message(
        id=service._new_message_id(now),
        account_id=account_id,
        application_id=first.application_id,
        direction="out",
        from_=first.from_,
        to=(request.to,),
        owner=first.from_,
        time=now,
        segment_count=1,
        tag=request.tag,
        priority=request.priority,
        expiration=request.expiration,
        recipients=Recipients([RecipientStatus(to=request.to, updated_at=now)]),
        channel=first.channel,
        multichannel={"channelList": [item.to_json() for item in request.channels]},
    )
    applications = {item.application_id: service.application(item.application_id) for item in request.channels}
    plan = plan_fallback(message, request.channels, applications[first.application_id], applications, service.scenario)
    winner = request.channels[plan.winner]
    # The message as it went out: the winning channel's sender, application and content.
    sent = view(message, winner)
    segments = count_segments(sent.text, mms=winner.channel == "MMS") if winner.channel != "RBM" else None
    message.channel = winner.channel
    message.from_ = message.owner = winner.from_
    message.application_id = winner.application_id
    message.text = sent.text
    message.media = sent.media
    if segments is not None:
        message.segment_count = segments.segments
        message.encoding = segments.encoding
    assert message.multichannel is not None
    message.multichannel["attempts"] = [
        _try_json(t, message, request.channels[t.position].from_, request.channels[t.position].application_id)
        for t in plan.tries
    ]
    service.store.add_message(message)
    events, went_out = service.plan_status_callbacks(
        message,
        applications[winner.application_id],
        plan.events,
        expiration_at=request.expiration_at,
        now=now,
        queued=queued,
        channel=winner.channel,
    )
    if went_out and not any(e.type == "message-failed" for e in events):
        service.traffic.after_send(message)
    service.changes.bump(Change("message", message.account_id, message.id))
    return message


# -- the handset's side -------------------------------------------------------------------------


def _rbm_message(service: MessagingService, message_id: str) -> Message:
    message = service.store.get_message(message_id)
    if message is None:
        raise HandsetError(404, f"no message {message_id}")
    if message.direction != "out" or message.multichannel is None:
        raise HandsetError(409, f"message {message_id} is not an outbound multi-channel message")
    if message.channel != "RBM":
        raise HandsetError(
            409, f"message {message_id} went out as {message.channel}, not RBM: only RBM messages have suggestions"
        )
    status = message.recipients[message.to[0]].status
    if status != "DELIVERED":
        # The handset has nothing to read or tap until the message reaches it.
        raise HandsetError(409, f"message {message_id} has not reached the handset (status {status}): advance the clock first")
    return message


def read(service: MessagingService, message_id: str) -> Callback:
    """The handset reads an RBM message now: a message-read status callback."""
    message = _rbm_message(service, message_id)
    assert message.multichannel is not None
    if "readAt" in message.multichannel:
        raise HandsetError(409, f"message {message_id} was already read at {message.multichannel['readAt']}")
    now = service.clock.now()
    app = service.application(message.application_id)
    # Marked at once, so that a second read is refused before the callback fires.
    message.multichannel["readAt"] = isoformat(now)
    callback = service._plan_callback(
        message,
        app.status_callback_url,
        "message-read",
        message.to[0],
        now,
        len(service.store.callbacks_for_message(message.id)),
        description="Message read by recipient.",
        channel="RBM",
    )
    service.changes.bump(Change("callback", callback.account_id, message.id, callback.id))
    return callback


def find_suggestion(message: Message, text: str | None, postback_data: str | None) -> dict[str, Any]:
    assert message.multichannel is not None
    items = message.multichannel.get("channelList", [])
    content: dict[str, Any] = next((i["content"] for i in items if i.get("channel") == "RBM" and i.get("from") == message.from_), {})
    suggestions = suggestions_of(content)
    for suggestion in suggestions:
        if (text is not None and suggestion.get("text") == text) or (
            postback_data is not None and suggestion.get("postbackData") == postback_data
        ):
            return suggestion
    offered = ", ".join(repr(s.get("text")) for s in suggestions) or "none"
    wanted = repr(text) if text is not None else f"postbackData {postback_data!r}"
    raise HandsetError(400, f"message {message.id} offers no suggestion {wanted}; it offers: {offered}")


def reply(
    service: MessagingService,
    message_id: str,
    *,
    suggestion: str | None = None,
    postback_data: str | None = None,
    location: tuple[str, str] | None = None,
    text: str | None = None,
    delay: float = 0.0,
) -> Message:
    """The handset answers an RBM message: taps a suggestion, shares its location or types.

    Tapping a REQUEST_LOCATION suggestion shares the location (``location``, else Bandwidth's
    example location); every other tap is a ``suggestion-response`` with the suggestion's
    text, its postbackData and the id of the message it answers (pairedMessageId).
    """
    message = _rbm_message(service, message_id)
    details: dict[str, Any] = {}
    if suggestion is not None or postback_data is not None:
        chosen = find_suggestion(message, suggestion, postback_data)
        if chosen.get("type") == "REQUEST_LOCATION":
            latitude, longitude = location or DEFAULT_LOCATION
            kind, body_text = "requested-location-response", ""
            details["locationResponse"] = {"latitude": latitude, "longitude": longitude}
        else:
            kind, body_text = "suggestion-response", str(chosen.get("text", ""))
            details["suggestionResponse"] = {
                "text": body_text,
                "postbackData": chosen.get("postbackData"),
                "pairedMessageId": message.id,
            }
    elif location is not None:
        kind, body_text = "requested-location-response", ""
        details["locationResponse"] = {"latitude": location[0], "longitude": location[1]}
    elif text is not None:
        kind, body_text = "message-received", text
        details["content"] = {"text": text}
    else:
        raise HandsetError(400, "say what the handset does: suggestion (or postbackData), location, or text")
    return inbound(service, message, kind, body_text, details, delay)


def inbound(
    service: MessagingService, answered: Message, kind: str, text: str, details: dict[str, Any], delay: float = 0.0
) -> Message:
    """An RBM message from the handset to the agent that sent ``answered``."""
    now = service.clock.now()
    handset = answered.to[0]
    agent = answered.from_
    message = Message(
        id=service._new_message_id(now),
        account_id=answered.account_id,
        application_id=answered.application_id,
        direction="in",
        from_=handset,
        to=(agent,),
        owner=agent,
        time=now,
        segment_count=1,
        text=text,
        recipients=Recipients([RecipientStatus(to=agent, status="RECEIVED", updated_at=now)]),
        channel="RBM",
        multichannel=details,
    )
    service.store.add_message(message)
    app = service.application(answered.application_id)
    descriptions = {
        "message-received": "Incoming message received",
        "suggestion-response": "Suggestion response received",
        "requested-location-response": "Requested location response received",
    }
    service._plan_callback(
        message,
        app.inbound_callback_url,
        kind,
        agent,
        now + delay + service.scenario.defaults.inbound_delay,
        0,
        description=descriptions[kind],
        channel="RBM",
    )
    service.changes.bump(Change("message", message.account_id, message.id))
    return message
