"""HTTP Basic auth on the Bandwidth API."""

from __future__ import annotations

import base64
import binascii
import hmac

from aiohttp import web

from emulator.keys import SERVICE
from emulator.scenarios.format import Credentials, Scenario
from emulator.web.errors import forbidden, unauthorized


def parse_basic(header: str) -> tuple[str, str] | None:
    """(username, password) of a Basic Authorization header; None if it is not one."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        return None
    return username, password


def _listed(credentials: list[Credentials], username: str, password: str) -> bool:
    return any(
        hmac.compare_digest(c.username.encode(), username.encode())
        and hmac.compare_digest(c.password.encode(), password.encode())
        for c in credentials
    )


def check_access(scenario: Scenario, account_id: str, username: str, password: str) -> int | None:
    """None when the credentials may use ``account_id``; else 401 or 403.

    An account the scenario gives credentials accepts only those (401 otherwise).
    Credentials listed for another account are a real API user without access to this
    one: 403, as Bandwidth answers a user whose role does not cover the account.
    """
    account = scenario.account(account_id)
    if account is not None and account.credentials:
        if _listed(account.credentials, username, password):
            return None
    else:
        if not any(_listed(a.credentials, username, password) for a in scenario.accounts if a.id != account_id):
            return None  # any Basic credentials work on an account without listed users
    others = [a for a in scenario.accounts if a.id not in (account_id, "*")]
    if any(_listed(a.credentials, username, password) for a in others):
        return 403
    return 401


class Authenticator:
    """Answers "may these credentials use this account?", remembering each verdict.

    A verdict depends only on the Authorization header, the account and the scenario, so it
    is kept until the scenario changes; clients send the same header on every request.
    """

    # Enough for every account and user a scenario lists; a client sending ever-new headers
    # only empties the memory now and then.
    MAX_VERDICTS = 4096

    def __init__(self) -> None:
        self._scenario: Scenario | None = None
        self._verdicts: dict[tuple[str, str], str | int] = {}

    def verdict(self, scenario: Scenario, header: str, account_id: str) -> str | int:
        """The username when access is granted, else 401 or 403."""
        if scenario is not self._scenario:
            self._scenario = scenario
            self._verdicts.clear()
        key = (header, account_id)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._decide(scenario, header, account_id)
            if len(self._verdicts) >= self.MAX_VERDICTS:
                self._verdicts.clear()
            self._verdicts[key] = verdict
        return verdict

    @staticmethod
    def _decide(scenario: Scenario, header: str, account_id: str) -> str | int:
        credentials = parse_basic(header)
        if credentials is None:
            return 401
        username, password = credentials
        return check_access(scenario, account_id, username, password) or username


AUTHENTICATOR = web.AppKey("authenticator", Authenticator)


def authenticate(request: web.Request, account_id: str) -> str:
    """Check the caller may use ``account_id``; returns the username."""
    verdict = request.app[AUTHENTICATOR].verdict(
        request.app[SERVICE].scenario, request.headers.get("Authorization", ""), account_id
    )
    if verdict == 403:
        raise forbidden()
    if verdict == 401:
        raise unauthorized()
    return verdict  # type: ignore[return-value]
