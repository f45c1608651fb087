"""Scenario files: what happens to each message, and how callbacks are delivered.

Scenarios are YAML (or JSON), validated strictly by these pydantic models: unknown keys
are errors, and every error names the file, the path inside it and what is wrong.
Keys are camelCase, like Bandwidth's own JSON.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def _duration(value: Any) -> Any:
    """Durations are seconds as a number, or a string such as ``500ms``, ``30s``, ``5m``, ``2h``, ``1d``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '2h'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"{value!r} is not a duration: use seconds (30) or a string like '500ms', '30s', '5m', '2h', '1d'")


Duration = Annotated[float, BeforeValidator(_duration)]

StatusEvent = Literal["message-sending", "message-sent", "message-delivered", "message-failed"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True)


class Credentials(Model):
    username: str
    password: str


# Offsets from the first attempt. Bandwidth publishes only "retried over 24 hours"
# (bandwidth-facts §8.1): quick retries first, then backing off to hours.
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (0, 60, 300, 900, 3600, 7200, 14400, 28800, 57600, 86400)


class Application(Model):
    """A Bandwidth messaging application: where its callbacks go and how they are delivered."""

    id: str = Field(description="The applicationId used in sends; '*' matches any application not listed.")
    status_callback_url: str | None = Field(None, description="Where outbound status events go (OutboundCallbackUrl).")
    inbound_callback_url: str | None = Field(None, description="Where message-received events go (InboundCallbackUrl).")
    callback_credentials: Credentials | None = None
    callback_auth: Literal["basic", "challenge"] = Field(
        "basic",
        description="basic: send credentials on every attempt; challenge: first send without, resend on 401 with WWW-Authenticate.",
    )
    numbers: list[str] = Field(default_factory=list, description="Phone numbers this application owns.")
    mms_delivery_receipts: bool = Field(True, description="MMS/group: message-sending then delivered/failed (today's accounts).")
    message_sent: bool = Field(False, description="Also emit the opt-in message-sent event.")
    callback_timeout: Duration = Field(10.0, description="Seconds to wait for the webhook's answer (Bandwidth: 10 s).")
    retry_schedule: list[Duration] = Field(
        default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE),
        description="Attempt times as offsets from the first attempt.",
    )
    retry_window: Duration = Field(86400.0, description="No attempt later than this after the first one.")
    redirects: Literal["failure", "success"] = Field("failure", description="Whether a 3xx answer counts as delivered.")
    ordering: Literal["independent", "hold"] = Field(
        "independent",
        description="hold: later events of a message and recipient wait until earlier ones are delivered.",
    )
    duplicates: int = Field(0, ge=0, le=10, description="Deliver each event this many extra times (at-least-once).")


class EventStep(Model):
    """One event in a planned sequence."""

    event: StatusEvent
    after: Duration = Field(0.0, description="Delay after the message was accepted.")
    error_code: int | None = Field(None, ge=1000, le=9999)
    description: str | None = None
    carrier_name: str | None = None


class Defaults(Model):
    """Event sequences used when nothing more specific applies."""

    sms: list[EventStep] = Field(
        default_factory=lambda: [EventStep(event="message-delivered", after=1.0)],
    )
    mms: list[EventStep] = Field(
        default_factory=lambda: [
            EventStep(event="message-sending", after=0.5),
            EventStep(event="message-delivered", after=2.0),
        ],
    )
    inbound_delay: Duration = Field(0.0, description="Delay between a simulated inbound message and its callback.")


class Scenario(Model):
    name: str = "default"
    description: str | None = None
    seed: int | None = Field(None, description="Makes ids and random choices repeatable.")
    magic_numbers: bool = Field(True, description="+1555010EEEE recipients fail with error code EEEE.")
    group_invalid_number: Literal["correct", "legacy"] = Field(
        "correct",
        description="legacy: an invalid group recipient gets message-failed, then message-delivered like everyone (bandwidth-facts §12).",
    )
    message_storage: bool = Field(True, description="false: GET /messages is unavailable, as in early Messaging 2.0.")
    media_size_limit: int = Field(
        3_500_000,
        gt=0,
        description="Largest media file in bytes: 3.5 MB in today's docs, 3.75 MB (3750000) in older ones.",
    )
    defaults: Defaults = Field(default_factory=Defaults)
    applications: list[Application] = Field(default_factory=list)

    def application(self, application_id: str, fallback_url: str | None = None) -> Application:
        wildcard = None
        for app in self.applications:
            if app.id == application_id:
                return app
            if app.id == "*":
                wildcard = app
        if wildcard is not None:
            return wildcard.model_copy(update={"id": application_id})
        return Application(id=application_id, status_callback_url=fallback_url, inbound_callback_url=fallback_url)

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
            out += ("." if out else "") + str(part)
    return out


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(source, [("", "a scenario must be a mapping of keys to values")])
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = [(_path(err["loc"]), err["msg"]) for err in exc.errors()]
        raise ScenarioError(source, problems) from None


def load_scenario_text(text: str, source: str = "<scenario>") -> Scenario:
    try:
        data = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError(source, [(where, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    return parse_scenario(data, source)


def load_scenario_file(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(path), [("", f"cannot read file: {exc.strerror}")]) from None
    return load_scenario_text(text, str(path))


def json_schema() -> str:
    return json.dumps(Scenario.model_json_schema(by_alias=True), indent=2)
