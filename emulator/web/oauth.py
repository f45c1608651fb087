"""OAuth2 client credentials: the token endpoint and the tokens it issued.

Bandwidth's APIs take an OAuth2 bearer token as well as Basic credentials; the SDKs fetch the
token from ``POST /api/v1/oauth2/token`` with the client id and secret as Basic credentials and
the form body ``grant_type=client_credentials`` (dev.bandwidth.com/docs/credentials, and
github.com/Bandwidth/python-sdk ``bandwidth/configuration.py``). How the emulator answers, and
how long its tokens live, is in docs/scenarios.md, 'OAuth2'.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs

from aiohttp import web

from emulator.keys import SERVICE
from emulator.scenarios.format import Scenario
from emulator.web.auth import listed_client, parse_basic
from emulator.web.tokens import TOKENS

TOKEN_PATH = "/api/v1/oauth2/token"

# RFC 6749 §5.1: token answers must not be cached.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    """RFC 6749 §5.2's error answer."""
    headers = dict(_NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="Bandwidth"'
    return web.json_response({"error": error, "error_description": description}, status=status, headers=headers)


def token_lifetime(scenario: Scenario, client_id: str, client_secret: str) -> float:
    for client in listed_client(scenario, client_id):
        if client.client_secret == client_secret and client.token_lifetime is not None:
            return client.token_lifetime
    return scenario.oauth.token_lifetime


async def issue_token(request: web.Request) -> web.Response:
    """``POST /api/v1/oauth2/token``: the client-credentials grant (RFC 6749 §4.4)."""
    content_type = request.content_type.lower()
    if content_type != "application/x-www-form-urlencoded":
        return _oauth_error(
            400, "invalid_request", f"Content-Type must be application/x-www-form-urlencoded, not '{content_type or 'none'}'"
        )
    try:
        form = parse_qs((await request.read()).decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return _oauth_error(400, "invalid_request", "the form body is not UTF-8")
    fields = {key: values[0] for key, values in form.items()}
    for key, values in form.items():
        if len(values) > 1:
            return _oauth_error(400, "invalid_request", f"the parameter {key} is given more than once")

    header = request.headers.get("Authorization", "")
    credentials = parse_basic(header) if header else None
    if header and credentials is None:
        return _oauth_error(401, "invalid_client", "the Authorization header is not Basic client_id:client_secret")
    if credentials is None and "client_id" in fields:
        # RFC 6749 §2.3.1 also allows the client credentials in the form body.
        credentials = fields["client_id"], fields.get("client_secret", "")
    if credentials is None or not credentials[0]:
        return _oauth_error(401, "invalid_client", "client authentication is required: Basic client_id:client_secret")

    grant_type = fields.get("grant_type")
    if grant_type is None:
        return _oauth_error(400, "invalid_request", "the parameter grant_type is missing")
    if grant_type != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported; use client_credentials")

    client_id, client_secret = credentials
    scenario = request.app[SERVICE].scenario
    listed = listed_client(scenario, client_id)
    # Any client gets a token unless the scenario lists its id (docs/scenarios.md, 'OAuth2').
    if listed and not any(secrets.compare_digest(c.client_secret.encode(), client_secret.encode()) for c in listed):
        return _oauth_error(401, "invalid_client", "client authentication failed")

    lifetime = token_lifetime(scenario, client_id, client_secret)
    token = request.app[TOKENS].issue(
        client_id, client_secret, lifetime, scenario.oauth.token_clock, request.app[SERVICE].now()
    )
    # expires_in is whole seconds; the SDK adds it to its own wall clock (python-sdk configuration.py).
    body = {"access_token": token, "token_type": "Bearer", "expires_in": max(1, int(lifetime))}
    return web.json_response(body, headers=_NO_STORE)

