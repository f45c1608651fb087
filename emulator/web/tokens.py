"""OAuth2 access tokens the emulator issued (docs/scenarios.md, 'OAuth2')."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Literal

from aiohttp import web


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """What a token stands for. Access is decided afresh on each call, against the scenario in force."""

    client_id: str
    client_secret: str
    clock: Literal["real", "virtual"]
    expires: float  # time.monotonic() for a real-clock token, virtual POSIX seconds otherwise

    def expired(self, virtual_now: float) -> bool:
        now = time.monotonic() if self.clock == "real" else virtual_now
        return now >= self.expires


class TokenStore:
    """The tokens issued since start-up (they are not kept in --db: docs/compatibility.md, 'OAuth2')."""

    # A client that asks for a token on every call must not grow memory without bound:
    # expired tokens are dropped as new ones are issued, and past this many the oldest go.
    MAX_TOKENS = 10_000

    def __init__(self) -> None:
        self._tokens: dict[str, IssuedToken] = {}

    def __len__(self) -> int:
        return len(self._tokens)

    def issue(self, client_id: str, client_secret: str, lifetime: float, clock: Literal["real", "virtual"], virtual_now: float) -> str:
        if len(self._tokens) >= self.MAX_TOKENS:
            self._tokens = {t: r for t, r in self._tokens.items() if not r.expired(virtual_now)}
            while len(self._tokens) >= self.MAX_TOKENS:
                del self._tokens[next(iter(self._tokens))]
        token = secrets.token_urlsafe(32)
        start = time.monotonic() if clock == "real" else virtual_now
        self._tokens[token] = IssuedToken(client_id, client_secret, clock, start + lifetime)
        return token

    def lookup(self, token: str, virtual_now: float) -> IssuedToken | None:
        """The token's record while it is valid; None when unknown or expired."""
        record = self._tokens.get(token)
        if record is None:
            return None
        if record.expired(virtual_now):
            del self._tokens[token]
            return None
        return record


TOKENS = web.AppKey("oauth_tokens", TokenStore)
