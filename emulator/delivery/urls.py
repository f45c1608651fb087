"""What a callback URL must be, checked where one enters: ``--callback-url`` and the
scenario's ``statusCallbackUrl``/``inboundCallbackUrl`` (docs/compatibility.md, 'What the emulator refuses').

Bandwidth takes only absolute ``http``/``https`` URLs for an application's callbacks
(https://dev.bandwidth.com/docs/messaging/applications/); anything else would be retried for
24 hours without ever reaching a webhook, so it is refused when it is given instead.
"""

from __future__ import annotations

import re

from yarl import URL

_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
# A host name's labels: letters, digits, hyphens (and underscores, which container and
# compose service names use); IP literals pass through yarl's own checks.
_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


# As long as the longest media URL a send takes (docs/bandwidth-behaviour.md, 'Sending'): a
# callback URL is stored and shown in every callback's journal entry.
MAX_URL = 4096


def callback_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a callback URL, or None when it can."""
    if not url:
        return "is empty"
    if len(url) > MAX_URL:
        return f"is longer than {MAX_URL} characters"
    if "://" not in url:
        return "must be an absolute http:// or https:// URL"
    if _SPACE_OR_CONTROL.search(url):
        return "contains a space or a control character"
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        return f"is not a valid URL ({exc})"
    if parsed.scheme not in ("http", "https") or not parsed.is_absolute():
        return "must be an absolute http:// or https:// URL"
    host = parsed.raw_host
    if not host:
        return "has no host"
    try:
        parsed.host  # noqa: B018 - decoding an internationalised name is the check
        port = parsed.port
    except (ValueError, UnicodeError) as exc:
        return f"has an invalid host ({exc})"
    if port is not None and not 1 <= port <= 65535:
        return "has an invalid port"
    if not host.startswith("[") and ":" not in host and not _is_ip(host):
        name = host.removesuffix(".")
        if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
            return f"has an invalid host name {host!r}"
    return None


def _is_ip(host: str) -> bool:
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)


def check_callback_url(url: str) -> str:
    """``url`` itself, or ValueError saying what is wrong with it."""
    problem = callback_url_problem(url)
    if problem is not None:
        raise ValueError(f"{url!r} is not a callback URL: it {problem}")
    return url
