"""HTTP Basic auth on the Bandwidth API."""

from __future__ import annotations

import base64
import binascii
import hmac

from aiohttp import web

from ..keys import SERVICE
from ..scenario import Credentials, Scenario
from .errors import forbidden, unauthorized


def basic_credentials(request: web.Request) -> tuple[str, str]:
    """The request's Basic credentials, or a 401 in Bandwidth's shape."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise unauthorized()
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized() from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise unauthorized()
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


def authenticate(request: web.Request, account_id: str) -> str:
    """Check the caller may use ``account_id``; returns the username."""
    username, password = basic_credentials(request)
    denied = check_access(request.app[SERVICE].scenario, account_id, username, password)
    if denied == 403:
        raise forbidden()
    if denied == 401:
        raise unauthorized()
    return username
