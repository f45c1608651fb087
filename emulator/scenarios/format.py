"""Scenario files: what happens to each message, and how callbacks are delivered.

Scenarios are YAML (or JSON), validated strictly by these pydantic models: unknown keys
are errors, and every error names the file, the path inside it and what is wrong.
Keys are camelCase, like Bandwidth's own JSON.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from emulator.delivery.urls import check_callback_url
from emulator.messaging.errorcodes import lookup
from emulator.messaging.wire import E164, MAX_INBOUND_TEXT, MAX_MEDIA, MAX_MEDIA_URL
from emulator.scenarios.regex import compile_regex
from emulator.web.bodies import is_text

# Bounds on a scenario (docs/scenarios.md, 'Limits'): the largest scenario in the library is
# about 2 KB; these leave ample room and keep loading one within about a second.
MAX_SCENARIO_BYTES = 128 * 1024
MAX_ENTRIES = 1000  # rules, faults, applications, accounts, inbound, autoReplies: each
MAX_VALUES = 50_000
MAX_DEPTH = 32
# Recipients of one group message, as Bandwidth bounds a send (emulator.messaging.wire).
MAX_GROUP = 10

# startTime's range (docs/scenarios.md, 'Seed and start time'): POSIX time from its start, and ids of
# 13 digits of milliseconds (they last until 2286) with room to advance the clock.
EARLIEST_START = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_START = datetime(2200, 1, 1, tzinfo=UTC)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


# The longest duration anywhere in a scenario (docs/scenarios.md, 'Durations'): ten years, far
# beyond the 24 h retry window, and short enough that every planned time stays a timestamp.
MAX_DURATION = 3650 * 86400.0


def _duration(value: Any) -> Any:
    """Durations are seconds as a number, or a string such as ``500ms``, ``30s``, ``5m``, ``2h``, ``1d``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '2h'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration: use seconds (30) or a string like '500ms', '30s', '5m', '2h', '1d'")
    # YAML's .nan and .inf are floats: a NaN delay never falls due (and spun the scheduler),
    # an infinite one cannot be written as a timestamp.
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a duration: give a finite number of seconds")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION:
        raise ValueError(f"{value!r} is too long: a duration is at most 3650d (ten years)")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": MAX_DURATION},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"},
            ],
            "description": "Seconds (30), or a string such as '500ms', '30s', '5m', '2h', '1d'; at most 3650d.",
        }
    ),
]

StatusEvent = Literal["message-sending", "message-sent", "message-delivered", "message-failed", "message-read"]
# The channels of the multi-channel API (docs/multichannel.md).
Channel = Literal["RBM", "SMS", "MMS"]


class Model(BaseModel):
    # allow_inf_nan=False: no number in a scenario may be .nan or .inf (docs/scenarios.md, 'Durations').
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True, allow_inf_nan=False
    )


class Credentials(Model):
    username: str = Field(description="The Basic auth user name.")
    password: str = Field(description="The Basic auth password.")


class OAuthClient(Model):
    """An OAuth2 client of an account: what ``POST /api/v1/oauth2/token`` gives tokens to (docs/scenarios.md, 'OAuth2')."""

    client_id: str = Field(min_length=1, description="The client id (the token request's Basic user name).")
    client_secret: str = Field(description="The client secret (the token request's Basic password).")
    token_lifetime: Duration | None = Field(
        None, gt=0, description="This client's token lifetime (expires_in); default: oauth.tokenLifetime."
    )


class OAuth(Model):
    """How long OAuth2 access tokens live, and on which clock (docs/scenarios.md, 'OAuth2')."""

    token_lifetime: Duration = Field(3600.0, gt=0, description="expires_in of every token, in seconds (default 1 h).")
    token_clock: Literal["real", "virtual"] = Field(
        "real",
        description=(
            "real: a token expires after tokenLifetime of wall-clock time, as the SDK counts it, so advancing "
            "the virtual clock never expires it. virtual: it expires after tokenLifetime of virtual time."
        ),
    )


# Offsets from the first attempt. Bandwidth publishes only "retried over 24 hours"
# (docs/bandwidth-behaviour.md, 'Callback delivery and retries'): quick retries first, then backing off to hours.
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (0, 60, 300, 900, 3600, 7200, 14400, 28800, 57600, 86400)


class Application(Model):
    """A Bandwidth messaging application: where its callbacks go and how they are delivered.

    Delivery rules are described in docs/callbacks.md.
    """

    id: str = Field(description="The applicationId used in sends; '*' matches any application not listed.")
    status_callback_url: str | None = Field(None, description="Where outbound status events go (OutboundCallbackUrl).")
    inbound_callback_url: str | None = Field(None, description="Where message-received events go (InboundCallbackUrl).")
    callback_credentials: Credentials | None = Field(
        None,
        description="Basic credentials the emulator sends to your webhooks (OutboundCallbackCreds; also inbound unless overridden).",
    )
    inbound_callback_credentials: Credentials | None = Field(
        None, description="Credentials for message-received callbacks (InboundCallbackCreds), if they differ."
    )
    callback_auth: Literal["basic", "challenge"] = Field(
        "basic",
        description="basic: send credentials on every attempt; challenge: first send without, resend on 401 with WWW-Authenticate.",
    )
    numbers: list[str] = Field(default_factory=list, description="Phone numbers this application owns.")
    mms_delivery_receipts: bool = Field(True, description="MMS/group: message-sending then delivered/failed (today's accounts).")
    message_sent: bool = Field(False, description="Also emit the opt-in message-sent event.")
    callback_timeout: Duration = Field(10.0, gt=0, description="Seconds to wait for the webhook's answer (Bandwidth: 10 s).")
    retry_schedule: list[Duration] = Field(
        default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE),
        description="Attempt times as offsets from the first attempt: starts at 0, ascending.",
    )
    retry_window: Duration = Field(86400.0, gt=0, description="No attempt later than this after the first one.")
    redirects: Literal["failure", "success"] = Field("failure", description="Whether a 3xx answer counts as delivered.")
    ordering: Literal["independent", "hold"] = Field(
        "independent",
        description="hold: later events of a message and recipient wait until earlier ones are delivered or exhausted.",
    )
    duplicates: int = Field(
        0, ge=0, le=10, description="Deliver each delivered event this many extra times (at-least-once)."
    )

    @field_validator("status_callback_url", "inbound_callback_url")
    @classmethod
    def _callback_url(cls, url: str | None) -> str | None:
        # Refused at load rather than retried for 24 hours (docs/compatibility.md, 'What the emulator refuses').
        return url if url is None else check_callback_url(url)

    @field_validator("retry_schedule")
    @classmethod
    def _schedule_shape(cls, schedule: list[float]) -> list[float]:
        if not schedule or schedule[0] != 0:
            raise ValueError("the retry schedule starts with 0 (the first attempt)")
        for before, after in itertools.pairwise(schedule):
            if after <= before:
                raise ValueError(f"the retry schedule must be ascending: {after:g} s comes after {before:g} s")
        return schedule

    def credentials_for(self, event_type: str) -> Credentials | None:
        # Inbound events, RBM answers included, go to the inbound URL with the inbound credentials.
        if (
            event_type in ("message-received", "suggestion-response", "requested-location-response")
            and self.inbound_callback_credentials is not None
        ):
            return self.inbound_callback_credentials
        return self.callback_credentials


class EventStep(Model):
    """One event in a planned sequence."""

    event: StatusEvent = Field(description="The callback type to send.")
    after: Duration = Field(0.0, description="Delay after the message was accepted.")
    description: str | None = Field(
        None, description="The callback's description; by default the one Bandwidth documents for the event or error code."
    )
    error_code: int | None = Field(
        None,
        ge=1000,
        le=9999,
        validate_default=True,
        description="message-failed only: the Bandwidth error code (4xxx, 5xxx, 9xxx).",
    )
    carrier_name: str | None = Field(None, description="Optional carrierName on the callback, e.g. 'AT&T'.")

    @field_validator("error_code")
    @classmethod
    def _error_code_fits_event(cls, code: int | None, info: ValidationInfo) -> int | None:
        event = info.data.get("event")
        if event == "message-failed":
            if code is None:
                raise ValueError("message-failed needs an errorCode, e.g. 4720")
            if lookup(code) is None and not info.data.get("description"):
                raise ValueError(f"{code} is not a documented Bandwidth error code; give it a description")
        elif code is not None and event is not None:
            raise ValueError(f"only message-failed carries an errorCode, not {event}")
        return code


class Defaults(Model):
    """Event sequences used when nothing more specific applies."""

    sms: list[EventStep] = Field(
        default_factory=lambda: [EventStep(event="message-delivered", after=1.0)],
        description="SMS: message-delivered after 1 s.",
    )
    mms: list[EventStep] = Field(
        default_factory=lambda: [
            EventStep(event="message-sending", after=0.5),
            EventStep(event="message-delivered", after=2.0),
        ],
        description="MMS and group: message-sending after 0.5 s, message-delivered after 2 s.",
    )
    inbound_delay: Duration = Field(0.0, description="Delay between a simulated inbound message and its callback.")

    @model_validator(mode="after")
    def _no_read_receipts(self) -> Defaults:
        for key in ("sms", "mms"):
            if any(step.event == "message-read" for step in getattr(self, key)):
                raise ValueError(f"{key}: message-read is an RBM event; script it under rcs.events or a rule with channel: RBM")
        return self


# -- matching -----------------------------------------------------------------------------

_GLOB_CHARS = set("*?[")


class Pattern(Model):
    """How one field is matched. Give exactly one key."""

    exact: str | None = Field(None, description="The whole value, exactly.")
    prefix: str | None = Field(None, description="The value starts with this.")
    glob: str | None = Field(None, description="Shell-style wildcards: * any run, ? one character, [09] a set.")
    regex: str | None = Field(
        None,
        description="A regular expression (RE2 syntax: Python's without lookaround or backreferences), "
        "searched anywhere in the value (anchor with ^ and $).",
    )
    contains: str | None = Field(None, description="The value contains this substring.")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_regex(value)  # RE2: refuses what needs backtracking, with the reason
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Pattern:
        given = [k for k in ("exact", "prefix", "glob", "regex", "contains") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of exact, prefix, glob, regex, contains")
        return self


def _number_shorthand(value: Any) -> Any:
    # A plain string is the exact number, or a glob when it holds a wildcard:
    # E.164 numbers never contain * ? or [.
    if isinstance(value, str):
        return {"glob": value} if _GLOB_CHARS & set(value) else {"exact": value}
    return value


def _text_shorthand(value: Any) -> Any:
    if isinstance(value, str):
        return {"contains": value}
    return value


NumberPattern = Annotated[Pattern, BeforeValidator(_number_shorthand, json_schema_input_type=str | Pattern)]
TextPattern = Annotated[Pattern, BeforeValidator(_text_shorthand, json_schema_input_type=str | Pattern)]

Kind = Literal["sms", "mms", "group"]


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, (str, int, float)) and not isinstance(value, bool) else value


class Match(Model):
    """What a message must look like. Every key given must match; no keys matches everything."""

    to: NumberPattern | None = Field(
        None, description="A recipient. Rules apply per recipient; faults and auto-replies match if any recipient does."
    )
    from_: NumberPattern | None = Field(None, alias="from", description="The sender (your number).")
    text: TextPattern | None = Field(None, description="The message text; a plain string matches a substring.")
    tag: NumberPattern | None = Field(None, description="The tag given in the send.")
    kind: Annotated[list[Kind], BeforeValidator(_one_or_many, json_schema_input_type=Kind | list[Kind])] | None = Field(
        None, description="sms, mms (media, one recipient) or group (several recipients); one or a list."
    )
    application_id: NumberPattern | None = Field(None, description="The applicationId of the send.")
    account_id: NumberPattern | None = Field(None, description="The accountId in the URL.")
    channel: Annotated[list[Channel], BeforeValidator(_one_or_many, json_schema_input_type=Channel | list[Channel])] | None = Field(
        None,
        description=(
            "The channel a message goes out on: RBM, SMS or MMS; one or a list. A multi-channel message is matched "
            "once per channel it tries; a plain send is SMS (sms) or MMS (mms, group)."
        ),
    )

    def rbm_only(self) -> bool:
        return self.channel == ["RBM"]


class Rule(Model):
    """What happens to matching recipients. Rules are tried in order; the first match wins."""

    name: str | None = Field(None, description="A label for logs and documentation.")
    match: Match = Field(default_factory=Match, description="Which messages and recipients this rule is for.")
    events: list[EventStep] | None = Field(
        None, description="The exact sequence of status events, each with its delay after the send."
    )
    description: str | None = Field(
        None, description="With errorCode: the failed callback's description instead of the documented one."
    )
    error_code: int | None = Field(
        None,
        ge=1000,
        le=9999,
        description="Shorthand: the default sequence, ending in message-failed with this code.",
    )
    no_receipt: bool = Field(
        False,
        description=(
            "The carrier never returns a delivery receipt: message-sending (MMS/group, while the era has it), "
            "then message-failed 9902 when the delivery-receipt window closes."
        ),
    )
    carrier_name: str | None = Field(None, description="carrierName on every event of this rule that sets none.")
    read_after: Duration | None = Field(
        None,
        description="RBM (match.channel: RBM): the handset reads the message this long after it is delivered (message-read).",
    )

    @field_validator("error_code")
    @classmethod
    def _known_code(cls, code: int | None, info: ValidationInfo) -> int | None:
        if code is not None and lookup(code) is None and not info.data.get("description"):
            raise ValueError(f"{code} is not a documented Bandwidth error code; give it a description")
        return code

    @model_validator(mode="after")
    def _one_outcome(self) -> Rule:
        given = [
            name
            for name, present in (
                ("events", self.events is not None),
                ("errorCode", self.error_code is not None),
                ("noReceipt", self.no_receipt),
            )
            if present
        ]
        if len(given) != 1:
            raise ValueError(f"a rule needs exactly one outcome: events, errorCode or noReceipt (got {', '.join(given) or 'none'})")
        if self.events is not None and not self.events:
            raise ValueError("events must list at least one event (use noReceipt for a message that never gets one)")
        reads = self.read_after is not None or any(s.event == "message-read" for s in self.events or ())
        if reads and not self.match.rbm_only():
            raise ValueError("message-read and readAfter are RBM only: give the rule match.channel: RBM")
        return self


# -- accounts and faults ---------------------------------------------------------------------


class RateLimit(Model):
    """Bandwidth's per-account message queue: sends drain at a rate counted in segments.

    See docs/bandwidth-behaviour.md, 'Errors and rate limits'.
    """

    segments_per_minute: int = Field(60, gt=0, description="Allowed rate, in segments per minute (a 2-segment SMS counts 2).")
    queue: Duration = Field(
        900.0,
        gt=0,
        description="How much sending the queue holds, as time at the allowed rate (Bandwidth: 15 minutes).",
    )


class ListRateLimit(Model):
    """Bandwidth's limit on GET /messages: requests per window, per source IP (docs/scenarios.md, 'The listing rate limit')."""

    requests: int = Field(3500, gt=0, description="Requests allowed per window (Bandwidth: 3500).")
    window: Duration = Field(300.0, gt=0, description="The window, counted on the wall clock (Bandwidth: 5 minutes).")


class Retention(Model):
    """How much history the emulator keeps (docs/scenarios.md, 'Retention'); what is not set
    here comes from the scenario's retention, then --retain-messages and --retain-for."""

    messages: int | None = Field(
        None,
        ge=0,
        description=(
            "Keep at most this many messages per account, forgetting the oldest finished ones with their "
            "callbacks (never a message with a callback pending); 0: no limit."
        ),
    )
    for_: Duration | None = Field(
        None,
        alias="for",
        description="Forget a finished message this long (virtual time) after its last callback ended; 0: never.",
    )


class Account(Model):
    """A Bandwidth account (the accountId in the URL) and who may use it."""

    id: str = Field(description="The accountId; '*' stands for every account not listed.")
    credentials: list[Credentials] = Field(
        default_factory=list,
        description="API users of this account (Basic). With oauthClients and accessTokens all empty: anyone is accepted.",
    )
    oauth_clients: list[OAuthClient] = Field(
        default_factory=list, description="OAuth2 clients whose tokens may use this account."
    )
    access_tokens: list[str] = Field(
        default_factory=list, description="Fixed Bearer tokens this account accepts; they never expire."
    )

    @property
    def closed(self) -> bool:
        """Whether the account lists who may use it (then only those may)."""
        return bool(self.credentials or self.oauth_clients or self.access_tokens)
    rate_limit: RateLimit | None = Field(None, description="Reject sends with 429 when the account's queue is full.")
    retention: Retention | None = Field(
        None, description="This account's own retention: what it sets replaces the scenario's and the command line's."
    )


class Fault(Model):
    """Make our own API fail matching sends, as Bandwidth sometimes does."""

    match: Match = Field(default_factory=Match, description="Which sends this fault applies to.")
    status: Literal[429, 500, 503] = Field(description="429 (queue full), 500 or 503.")
    first: int | None = Field(None, gt=0, description="Fail only the first N matching sends.")
    every: int | None = Field(None, gt=0, description="Fail every k-th matching send (k, 2k, ...).")
    probability: float | None = Field(None, ge=0, le=1, description="Fail each matching send with this probability (seeded).")
    description: str | None = Field(None, description="The error body's description instead of the default one.")
    operation: Literal["createMessage", "listMessages"] = Field(
        "createMessage",
        description="Which API call fails: sends, or GET /messages (only match.accountId applies to it).",
    )
    retry_after: int = Field(
        300, ge=0, description="listMessages 429: the Retry-After header, in seconds (the spec's example: 300)."
    )

    @model_validator(mode="after")
    def _one_trigger(self) -> Fault:
        given = [k for k in ("first", "every", "probability") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one of first, every, probability (got {', '.join(given)})")
        return self


# -- inbound traffic -------------------------------------------------------------------------

# Inbound text and media are bounded as POST /_emulator/inbound bounds them (docs/scenarios.md,
# 'Limits'): a handset's longest message, as many media URLs as an MMS holds, each as long as a send takes.
MediaUrl = Annotated[str, Field(max_length=MAX_MEDIA_URL)]


class InboundTraffic(Model):
    """Messages that handsets send to your numbers, on a schedule of virtual time."""

    at: Annotated[list[Duration], BeforeValidator(_one_or_many, json_schema_input_type=Duration | list[Duration])] | None = Field(
        None, description="When, after the scenario starts: one time or a list of times."
    )
    every: Duration | None = Field(None, gt=0, description="Repeat at this interval.")
    start: Duration | None = Field(None, description="With every: when the first one arrives (default: one interval in).")
    count: int | None = Field(None, gt=0, description="With every: stop after this many (default: never stop).")
    from_: str | None = Field(None, alias="from", description="The handset's number; omitted: a random (seeded) number each time.")
    to: Annotated[list[str], BeforeValidator(_one_or_many, json_schema_input_type=str | list[str])] = Field(
        description="Your number(s) it is sent to; several make an inbound group message."
    )
    text: str | None = Field(
        None, max_length=MAX_INBOUND_TEXT, description="The text; omitted: a random (seeded) sentence."
    )
    media: list[MediaUrl] = Field(default_factory=list, max_length=MAX_MEDIA, description="Media URLs attached to the message.")
    application_id: str | None = Field(None, description="Which application receives it (default: the owner of the number).")
    account_id: str | None = Field(None, description="Which account it belongs to (default: the conversation's, or the default account).")

    @field_validator("from_", "to")
    @classmethod
    def _e164(cls, value: Any) -> Any:
        for number in [value] if isinstance(value, str) else value or []:
            if not E164.match(number):
                raise ValueError(f"{number!r} is not an E.164 number such as +15554443333")
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> InboundTraffic:
        if (self.at is None) == (self.every is None):
            raise ValueError("give exactly one of at (times) or every (an interval)")
        if self.every is None and (self.start is not None or self.count is not None):
            raise ValueError("start and count go with every")
        if not self.to:
            raise ValueError("to must name at least one of your numbers")
        if len(self.to) > MAX_GROUP or len(set(self.to)) != len(self.to):
            # As POST /_emulator/inbound: a group message has at most 10 distinct recipients.
            raise ValueError(f"to must list at most {MAX_GROUP} distinct numbers, as a group message may")
        return self


class Location(Model):
    """A handset's location, as RBM reports it (strings holding decimal degrees)."""

    latitude: float = Field(ge=-90, le=90, description="Degrees north, -90 to 90.")
    longitude: float = Field(ge=-180, le=180, description="Degrees east, -180 to 180.")


class AutoReply(Model):
    """When an outbound message to X matches, X texts back after a delay.

    For RBM messages (match.channel: RBM) the handset can instead tap a suggestion or share
    its location (docs/multichannel.md, 'Handset replies').
    """

    match: Match = Field(default_factory=Match, description="Which outbound messages get a reply; to is the handset that replies.")
    reply: str | None = Field(
        None,
        max_length=MAX_INBOUND_TEXT,
        description="The reply text; omitted: a random (seeded) sentence. {text} is the message replied to.",
    )
    media: list[MediaUrl] = Field(default_factory=list, max_length=MAX_MEDIA, description="Media URLs attached to the reply.")
    after: Duration = Field(5.0, description="Delay between the outbound message and the reply.")
    tap: str | None = Field(
        None,
        description="RBM: tap the suggestion with this text (suggestion-response; requested-location-response for a location request).",
    )
    location: Location | None = Field(None, description="RBM: share this location (requested-location-response).")

    @model_validator(mode="after")
    def _one_answer(self) -> AutoReply:
        given = [k for k in ("reply", "tap", "location") if getattr(self, k) is not None]
        if self.media:
            given.append("media")
        if self.media and self.match.rbm_only():
            raise ValueError("media replies are not emulated over RBM: give reply, tap or location")
        if (self.tap is not None or self.location is not None) and not self.match.rbm_only():
            raise ValueError("tap and location answer RBM messages: give the entry match.channel: RBM")
        if self.tap is not None and len(given) > 1 and given != ["tap", "location"]:
            raise ValueError(f"tap goes alone (or with location for a location request), not with {', '.join(given)}")
        if self.location is not None and self.tap is None and len(given) > 1:
            raise ValueError(f"location goes alone, not with {', '.join(g for g in given if g != 'location')}")
        return self


class Rcs(Model):
    """Which handsets take RBM, and what happens to RBM messages (docs/multichannel.md)."""

    capable: bool = Field(True, description="Whether a number not listed below is RCS-capable (default: every number is).")
    numbers: list[NumberPattern] = Field(default_factory=list, description="RCS-capable numbers: exact numbers or patterns.")
    not_capable: list[NumberPattern] = Field(
        default_factory=list, description="Numbers that are never RCS-capable: RBM falls back to the next channel at once."
    )
    events: list[EventStep] = Field(
        default_factory=lambda: [EventStep(event="message-delivered", after=1.0)],
        description="The RBM event sequence when no rule matches: message-delivered after 1 s.",
    )
    read_after: Duration | None = Field(
        None, description="The handset reads every delivered RBM message this long after delivery (message-read); default: never."
    )
    receipt_timeout: Duration = Field(
        300.0,
        gt=0,
        description="An RBM attempt without a delivery receipt expires after this long and the next channel is tried.",
    )


class Scenario(Model):
    """A bandwidth-emulator scenario: who may call, what happens to each message, and when."""

    model_config = ConfigDict(title="bandwidth-emulator scenario")

    name: str = Field("default", description="Shown by GET /_emulator/health and in logs.")
    description: str | None = Field(None, description="What this scenario is for.")
    seed: int | None = Field(
        None, description="Makes message ids, generated numbers and texts, and random fault choices repeatable."
    )
    start_time: datetime | None = Field(
        None,
        description=(
            "With --clock manual: the virtual time the emulator starts at (ISO 8601 with an offset). "
            "Message ids begin with the time, so with a seed they repeat exactly."
        ),
    )
    magic_numbers: bool = Field(True, description="+1555010EEEE recipients fail with error code EEEE.")
    group_invalid_number: Literal["correct", "legacy"] = Field(
        "correct",
        description=(
            "correct: exactly one callback per group recipient. legacy: an invalid group recipient gets "
            "message-failed, then message-delivered like everyone (Bandwidth's docs until 2020)."
        ),
    )
    era: Literal["auto", "2020-07-31", "2026-07-06", "2027-01-06"] = Field(
        "auto",
        description=(
            "Bandwidth's delivery behaviour: auto follows Bandwidth's timeline by each message's virtual send date; "
            "a date pins the era that began then (2026-07-06: 73 h receipt window; 2027-01-06: no message-sending)."
        ),
    )
    delivery_receipt_window: Duration | None = Field(
        None,
        gt=0,
        description="How long Bandwidth waits for a delivery receipt before 9902; default: the era's (2 h, 73 h from 2026-07-06).",
    )
    message_storage: bool = Field(True, description="false: GET /messages is unavailable, as in early Messaging 2.0.")
    list_rate_limit: ListRateLimit | None = Field(
        default_factory=ListRateLimit,
        description="GET /messages beyond this many requests per window from one address gets 429 + Retry-After; null: no limit.",
    )
    media_size_limit: int = Field(
        3_500_000,
        gt=0,
        description="Largest media file in bytes: 3.5 MB in today's docs, 3.75 MB (3750000) in older ones.",
    )
    defaults: Defaults = Field(default_factory=Defaults, description="Event sequences when no rule matches.")
    accounts: list[Account] = Field(
        default_factory=list,
        max_length=MAX_ENTRIES,
        description="Accounts with their API credentials and rate limits. None: any credentials work.",
    )
    oauth: OAuth = Field(default_factory=OAuth, description="Lifetime of OAuth2 access tokens.")
    applications: list[Application] = Field(
        default_factory=list,
        max_length=MAX_ENTRIES,
        description="Messaging applications: callback URLs, numbers and delivery switches.",
    )
    rules: list[Rule] = Field(
        default_factory=list,
        max_length=MAX_ENTRIES,
        description="Per-recipient outcomes; the first matching rule wins.",
    )
    faults: list[Fault] = Field(
        default_factory=list,
        max_length=MAX_ENTRIES,
        description="Errors our own API answers to matching sends.",
    )
    inbound: list[InboundTraffic] = Field(
        default_factory=list,
        max_length=MAX_ENTRIES,
        description="Scheduled messages from handsets to your numbers.",
    )
    auto_replies: list[AutoReply] = Field(
        default_factory=list,
        max_length=MAX_ENTRIES,
        description="Handsets that text back when you message them; the first matching entry answers.",
    )
    rcs: Rcs = Field(default_factory=Rcs, description="RCS capability of handsets and RBM outcomes (multi-channel API).")
    retention: Retention | None = Field(
        None,
        description="Forget finished messages by count per account or by age; default: --retain-messages and --retain-for.",
    )

    @field_validator("applications")
    @classmethod
    def _applications_distinct(cls, apps: list[Application]) -> list[Application]:
        ids: set[str] = set()
        owners: dict[str, str] = {}
        for index, app in enumerate(apps):
            if app.id in ids:
                raise ValueError(f"[{index}]: application {app.id!r} is listed twice")
            ids.add(app.id)
            if app.id == "*" and app.numbers:
                raise ValueError(f"[{index}].numbers: '*' cannot own numbers; list them under the application's own id")
            for number in app.numbers:
                if number in owners:
                    raise ValueError(f"[{index}].numbers: {number} is already owned by application {owners[number]!r}")
                owners[number] = app.id
        return apps

    @field_validator("accounts")
    @classmethod
    def _accounts_distinct(cls, accounts: list[Account]) -> list[Account]:
        seen: set[str] = set()
        for index, account in enumerate(accounts):
            if account.id in seen:
                raise ValueError(f"[{index}]: account {account.id!r} is listed twice")
            seen.add(account.id)
        return accounts

    @field_validator("start_time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2024-01-01T00:00:00Z")
        if value is not None and not EARLIEST_START <= value < LATEST_START:
            # Message ids begin with the time as 13 digits of milliseconds since 1970 and
            # timestamps are ISO 8601 UTC: before 1970 both came out malformed.
            raise ValueError("give a time from 1970-01-01T00:00:00Z to before 2200-01-01T00:00:00Z")
        return value

    def account(self, account_id: str) -> Account | None:
        wildcard = None
        for account in self.accounts:
            if account.id == account_id:
                return account
            if account.id == "*":
                wildcard = account
        return wildcard

    def application(self, application_id: str, fallback_url: str | None = None) -> Application:
        """The application's settings; callback URLs it does not set come from --callback-url."""
        found = None
        for app in self.applications:
            if app.id == application_id:
                found = app
                break
            if app.id == "*" and found is None:
                found = app.model_copy(update={"id": application_id})
        if found is None:
            return Application(id=application_id, status_callback_url=fallback_url, inbound_callback_url=fallback_url)
        missing = {
            key: fallback_url
            for key in ("status_callback_url", "inbound_callback_url")
            if getattr(found, key) is None and fallback_url is not None
        }
        return found.model_copy(update=missing) if missing else found

    def application_for_number(self, number: str) -> Application | None:
        for app in self.applications:
            if number in app.numbers:
                return app
        return None


class ScenarioError(Exception):
    """A scenario that does not validate; ``problems`` are (path, message) pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {path or '(top level)'}: {msg}" for path, msg in problems]
        super().__init__("\n".join(lines))


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            # Checks of defaulted fields report the Python name; show the file's key.
            key = part[:-1] if part in ("from_", "for_") else to_camel(str(part)) if "_" in str(part) else str(part)
            out += ("." if out else "") + key
    return out


# A list check may name the entry it is about: "[1].numbers: ..." extends the path.
_SUBPATH = re.compile(r"^((?:\[\d+\]|\.[A-Za-z]\w*)+): (.*)$", re.S)


def _problem(err: Any) -> tuple[str, str]:
    path = _path(err["loc"])
    # "Value error, ..." is pydantic's prefix for our own checks; the rest is the message.
    msg = str(err["msg"]).removeprefix("Value error, ")
    sub = _SUBPATH.match(msg)
    if sub:
        path, msg = path + sub.group(1), sub.group(2)
    return path, msg


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(source, [("", "a scenario must be a mapping of keys to values")])
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(err) for err in exc.errors()]
        raise ScenarioError(source, problems) from None


# libyaml's parser when PyYAML has it: three times faster, and it stops nesting at 1000 levels.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _check_loaded(data: Any, source: str) -> None:
    """Refuse what YAML can build but a scenario cannot hold: nesting deeper than any
    scenario key, lone UTF-16 surrogates (``"\\ud800"``, not Unicode text), and more values
    than a scenario of the documented size can have (aliases can repeat one list
    exponentially: "billion laughs"). Iterative, so nothing here can exhaust the stack."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            problem = f"too many values: a scenario holds at most {MAX_VALUES:,} (YAML aliases count each time they are used)"
            raise ScenarioError(source, [("", problem)])
        if isinstance(item, str):
            if not is_text(item):
                problem = f"the text {item[:40]!r} contains a lone UTF-16 surrogate, which is not a Unicode character"
                raise ScenarioError(source, [("", problem)])
        elif isinstance(item, (dict, list)):
            if depth >= MAX_DEPTH:
                raise ScenarioError(source, [("", f"nested more than {MAX_DEPTH} levels deep")])
            children = [v for kv in item.items() for v in kv] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def load_scenario_text(text: str, source: str = "<scenario>") -> Scenario:
    return parse_scenario(load_scenario_data(text, source), source)


def load_scenario_data(text: str, source: str = "<scenario>") -> Any:
    """The YAML (or JSON) of a scenario, or of a change to one, read within the limits, not yet
    validated as a scenario."""
    if len(text) > MAX_SCENARIO_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_SCENARIO_BYTES:
        raise ScenarioError(source, [("", f"too large: a scenario is at most {MAX_SCENARIO_BYTES:,} bytes")])
    try:
        data = yaml.load(text, Loader=_LOADER)  # JSON is YAML too
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError(source, [(where, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    except RecursionError:
        raise ScenarioError(source, [("", f"not valid YAML: nested more than {MAX_DEPTH} levels deep")]) from None
    except (ValueError, TypeError, OverflowError) as exc:
        # PyYAML parsed the text but could not build a value: a date such as 2024-13-45,
        # "!!int abc", an integer of thousands of digits.
        raise ScenarioError(source, [("", f"not valid YAML: a value cannot be built: {exc}")]) from None
    _check_loaded(data, source)
    return data


# The ready-made scenarios, shipped in the package (docs/scenarios.md, 'Ready-made scenarios').
LIBRARY = Path(__file__).resolve().parent / "library"
# Their JSON Schema, shipped beside them for editors (`bandwidth-emulator schema` prints it).
SCHEMA_FILE = Path(__file__).resolve().parent / "scenario.schema.json"


def library_names() -> list[str]:
    return sorted(p.stem for p in LIBRARY.glob("*.yaml"))


def library_path(reference: str | Path) -> Path | None:
    """The ready-made scenario a bare name such as ``carrier-failures`` (or
    ``carrier-failures.yaml``) means, or None for anything else."""
    name = str(reference)
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    path = LIBRARY / (name if name.endswith(".yaml") else name + ".yaml")
    return path if path.is_file() else None


def load_scenario_file(path: str | Path) -> Scenario:
    """A scenario from a file; a name that is no file but a ready-made scenario's loads that one."""
    return load_scenario_text(read_scenario_file(path), str(path))


def read_scenario_file(path: str | Path) -> str:
    """A scenario file's text, refused with a ScenarioError when it cannot be one. A name that
    is no file but a ready-made scenario's (e.g. carrier-failures) reads that one."""
    if not Path(path).exists():
        path = library_path(path) or path
    path = Path(path)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_SCENARIO_BYTES + 1)
    except OSError as exc:
        hint = f" (ready-made scenarios, by name: {', '.join(library_names())})" if "/" not in str(path) else ""
        raise ScenarioError(str(path), [("", f"cannot read file: {exc.strerror}{hint}")]) from None
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ScenarioError(str(path), [("", f"too large: a scenario is at most {MAX_SCENARIO_BYTES:,} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(str(path), [("", f"not UTF-8 text (byte {exc.start})")]) from None
    return text


# What tests and tools may give as a scenario: the object, a dict, YAML text (anything with
# a newline) or a file path.
ScenarioSource = Scenario | dict[str, Any] | str | Path | None


def scenario_source_text(source: str | Path, base: Path | None = None) -> tuple[str, str]:
    """YAML text as it is, or the text of the file at ``source`` (relative to ``base``);
    with the name errors give it."""
    if isinstance(source, str) and "\n" in source:
        return source, "<scenario text>"
    path = Path(source)
    # Relative to ``base`` (the test file's folder); a bare name that is no file there may
    # be a ready-made scenario, e.g. "carrier-failures".
    if base is not None and not path.is_absolute() and ((base / path).exists() or library_path(source) is None):
        path = base / path
    return read_scenario_file(path), str(path)


def load_scenario(source: ScenarioSource, base: Path | None = None) -> Scenario:
    """The one loader of every form a scenario is given in (the in-process emulator, the
    pytest plugin); None is the default scenario."""
    if source is None:
        return Scenario()
    if isinstance(source, Scenario):
        return source
    if isinstance(source, dict):
        return parse_scenario(source, "<scenario dict>")
    return load_scenario_text(*scenario_source_text(source, base))


def _title(key: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", key).capitalize()


def json_schema() -> str:
    """The JSON Schema of scenario files, for editors (yaml-language-server and friends)."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **Scenario.model_json_schema(by_alias=True)}
    # Titles from the keys, for every field: pydantic leaves out those of model-typed fields
    # and spells the others from the Python names.
    for definition in [schema, *schema.get("$defs", {}).values()]:
        for key, prop in definition.get("properties", {}).items():
            prop["title"] = _title(key)
    return json.dumps(schema, indent=2)
