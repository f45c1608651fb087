"""Runtime settings, filled from the CLI, ``BWE_*`` environment variables or code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEFAULT_ACCOUNT = "9900000"


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    scenario: str | None = None
    callback_url: str | None = None
    clock: Literal["realtime", "manual"] = "realtime"
    time_scale: float = 1.0
    db: str | None = None
    log_format: Literal["text", "json"] = "text"
    # Which HTTP client POSTs callbacks to plain-http webhooks: the emulator's own HTTP/1.1
    # client (fast), or aiohttp's (the fallback; https always uses aiohttp's). README, "Callbacks".
    callback_client: Literal["builtin", "aiohttp"] = "builtin"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False
    # Account used for simulated inbound messages that name none and match no conversation.
    default_account: str = DEFAULT_ACCOUNT
    # docs/security.md: Host names allowed besides localhost, IP addresses and --host; and
    # the token the control API and the web page then need (None: no token).
    allowed_hosts: tuple[str, ...] = ()
    control_token: str | None = None
    # README.md, "Retention": messages kept per account (None: 100,000 with the realtime clock,
    # every one with the manual clock; 0: every one) and virtual seconds kept after a message
    # finished (0: no limit).
    retain_messages: int | None = None
    retain_for: float = 0.0
