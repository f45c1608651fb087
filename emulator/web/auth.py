"""Authentication on the Bandwidth API: HTTP Basic, or an OAuth2 Bearer token.

Every Bandwidth endpoint calls :func:`authenticate`; how accounts, users, OAuth2 clients and
tokens are checked is in docs/scenarios.md, 'Accounts and credentials' and 'OAuth2'.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from emulator.keys import SERVICE
from emulator.scenarios.format import Account, Credentials, OAuthClient, Scenario
from emulator.web.errors import BandwidthError, forbidden, unauthorized
from emulator.web.tokens import TOKENS, IssuedToken


def parse_basic(header: str) -> tuple[str, str] | None:
    """(username, password) of a Basic Authorization header; None if it is not one."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, and a value that is not ASCII
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


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def listed_client(scenario: Scenario, client_id: str) -> list[OAuthClient]:
    """Every OAuth2 client entry of the scenario with this id."""
    return [c for a in scenario.accounts for c in a.oauth_clients if _same(c.client_id, client_id)]


def _client_listed(account: Account, token: IssuedToken) -> bool:
    return any(
        _same(c.client_id, token.client_id) and _same(c.client_secret, token.client_secret) for c in account.oauth_clients
    )


def _fixed_token_listed(account: Account, token: str) -> bool:
    return any(_same(t, token) for t in account.access_tokens)


def _access(scenario: Scenario, account_id: str, listed: Callable[[Account], bool]) -> int | None:
    """None when a caller that ``listed`` says belongs to an account may use ``account_id``; else 401 or 403.

    An account that lists who may use it (credentials, oauthClients, accessTokens) accepts only
    those (401 otherwise). A caller listed for another account is a real API user without access
    to this one: 403, as Bandwidth answers a user whose role does not cover the account.
    """
    account = scenario.account(account_id)
    if account is not None and account.closed:
        if listed(account):
            return None
    else:
        if not any(listed(a) for a in scenario.accounts if a.id != account_id):
            return None  # anyone may use an account that lists nobody
    others = [a for a in scenario.accounts if a.id not in (account_id, "*")]
    if any(listed(a) for a in others):
        return 403
    return 401


def check_access(scenario: Scenario, account_id: str, username: str, password: str) -> int | None:
    """None when these Basic credentials may use ``account_id``; else 401 or 403."""
    return _access(scenario, account_id, lambda a: _listed(a.credentials, username, password))


def check_token_access(scenario: Scenario, account_id: str, token: str, issued: IssuedToken | None) -> int | None:
    """None when this Bearer token may use ``account_id``; else 401 or 403.

    ``issued`` is the token's record when the emulator issued it (and it has not expired);
    otherwise only a fixed token of the scenario's ``accessTokens`` is valid.
    """
    if issued is not None:
        clients = listed_client(scenario, issued.client_id)
        if clients and not any(_same(c.client_secret, issued.client_secret) for c in clients):
            return 401  # the scenario in force gives this client another secret
        return _access(scenario, account_id, lambda a: _client_listed(a, issued))
    if not any(_fixed_token_listed(a, token) for a in scenario.accounts):
        return 401  # unknown or expired
    return _access(scenario, account_id, lambda a: _fixed_token_listed(a, token))


def parse_bearer(header: str) -> str | None:
    """The token of a Bearer Authorization header; None if it is not one."""
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        return None
    return value


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an Authorization header earns on one account: the caller's username when access
    is granted, else the status of the refusal."""

    username: str | None = None
    denied: Literal[401, 403] | None = None


UNAUTHORIZED = Verdict(denied=401)
FORBIDDEN = Verdict(denied=403)


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
        self._verdicts: dict[tuple[str, str], Verdict] = {}

    def verdict(self, scenario: Scenario, header: str, account_id: str) -> Verdict:
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
    def _decide(scenario: Scenario, header: str, account_id: str) -> Verdict:
        credentials = parse_basic(header)
        if credentials is None:
            return UNAUTHORIZED
        username, password = credentials
        denied = check_access(scenario, account_id, username, password)
        if denied == 403:
            return FORBIDDEN
        if denied is not None:
            return UNAUTHORIZED
        return Verdict(username=username)


AUTHENTICATOR = web.AppKey("authenticator", Authenticator)


def _bearer_unauthorized() -> BandwidthError:
    error = unauthorized()
    # RFC 6750 §3: the challenge names the scheme the client used.
    error.headers["WWW-Authenticate"] = 'Bearer realm="Bandwidth", error="invalid_token"'
    return error


def authenticate(request: web.Request, account_id: str) -> str:
    """Check the caller may use ``account_id``: Basic credentials or an OAuth2 Bearer token.

    Returns the Basic username, or the OAuth2 client id (a fixed token's caller is "").
    """
    header = request.headers.get("Authorization", "")
    service = request.app[SERVICE]
    token = parse_bearer(header)
    if token is not None:
        # Not memoised like Basic verdicts: a token's validity changes with time.
        issued = request.app[TOKENS].lookup(token, service.now())
        denied = check_token_access(service.scenario, account_id, token, issued)
        if denied == 403:
            raise forbidden()
        if denied is not None:
            raise _bearer_unauthorized()
        return issued.client_id if issued is not None else ""
    verdict = request.app[AUTHENTICATOR].verdict(service.scenario, header, account_id)
    if verdict.username is not None:
        return verdict.username
    if verdict.denied == 403:
        raise forbidden()
    raise unauthorized()
