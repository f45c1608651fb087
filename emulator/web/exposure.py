"""Who may drive the emulator: the checks a careful local dev server makes (docs/security.md).

* ``Host``: only names that cannot be DNS-rebound to the emulator by a web page: localhost
  (and ``*.localhost``), names without a dot (Docker service names), any IP address, the
  name it was bound to, and the names given with ``--allowed-hosts``. A page on ``attacker.example`` whose name was re-pointed at 127.0.0.1
  sends ``Host: attacker.example`` and is refused (as Vite's ``server.allowedHosts`` does).
* Cross-origin state changes: a request that is not GET, HEAD or OPTIONS and that a browser
  marks as coming from another origin (``Sec-Fetch-Site: cross-site|same-site``, or an
  ``Origin`` other than the emulator's own) is refused, on every path. This covers the
  "simple" requests a page may send without a CORS preflight, ``text/plain`` form posts and
  ``fetch(..., {mode: "no-cors"})`` included. The SDKs and other server-side clients send
  neither header and are not affected.
* ``--control-token``: when set, the control API and the web page (not the Bandwidth API,
  which has its own credentials, nor ``/_emulator/health``) need it, as
  ``Authorization: Bearer TOKEN``, or the cookie the page gets by opening it once with
  ``?token=TOKEN`` (as Jupyter's token).
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiohttp import web
from yarl import URL

from emulator.web.errors import CONTROL, BandwidthError, ControlError, Handler

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_COOKIE = "bwe_control_token"
# The health check stays open: Docker's HEALTHCHECK and load balancers carry no token.
OPEN_PATHS = frozenset({f"{CONTROL}/health"})
UI_PAGES = frozenset({"/", f"{CONTROL}/ui"})
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "*"})


def host_name(host: str) -> str:
    """The name in a ``Host`` header, without its port, lower-case; IPv6 without brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") > 1:  # a bare IPv6 address (as given to --host), without a port
        return host
    name, _, port = host.rpartition(":")
    if name and port.isdigit():
        host = name
    return host.rstrip(".")


def is_loopback(bind: str) -> bool:
    """Whether an address to bind is reachable from this machine only."""
    name = host_name(bind)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Exposure:
    """The checks in force for one emulator (from ``--allowed-hosts`` and ``--control-token``)."""

    allowed_hosts: frozenset[str] = frozenset()
    any_host: bool = False
    control_token: str | None = None
    # Verdicts per Host header: clients send the same one on every request, and parsing an
    # IP address costs more than the rest of the check.
    _verdicts: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, bind: str, allowed_hosts: Iterable[str] = (), control_token: str | None = None) -> Exposure:
        names = {host_name(h) if not h.strip().startswith(".") else h.strip().lower() for h in allowed_hosts if h.strip()}
        any_host = "*" in names or "all" in names
        if bind.strip().lower() not in WILDCARD_BINDS:
            names.add(host_name(bind))
        return cls(frozenset(names - {"*", "all"}), any_host, control_token or None)

    # -- Host ------------------------------------------------------------------------------

    def host_allowed(self, host: str | None) -> bool:
        if host is None or self.any_host:
            return True  # no Host: not a browser (they always send one), so not a rebinding page
        verdict = self._verdicts.get(host)
        if verdict is None:
            if len(self._verdicts) >= 1024:
                self._verdicts.clear()
            verdict = self._verdicts[host] = self._decide_host(host)
        return verdict

    def _decide_host(self, host: str) -> bool:
        name = host_name(host)
        # A name without a dot (a Docker Compose service, a container) is not in public DNS,
        # so no page on the web can have it as its origin and rebind it.
        if "." not in name or name.endswith(".localhost") or _is_ip(name) or name in self.allowed_hosts:
            return True
        # A leading dot allows the name and its subdomains (".example.test"), as Vite's.
        return any(a.startswith(".") and (name == a[1:] or name.endswith(a)) for a in self.allowed_hosts)

    # -- Origin ----------------------------------------------------------------------------

    @staticmethod
    def cross_origin(request: web.BaseRequest) -> str | None:
        """Why this state-changing request is from another origin; None when it is not."""
        if request.method in SAFE_METHODS:
            return None
        site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
        if site in ("cross-site", "same-site"):
            return f"Sec-Fetch-Site: {site}"
        origin = request.headers.get("Origin")
        if origin is None:
            return None
        if origin.strip().lower() == "null":
            return "Origin: null"
        try:
            url = URL(origin.strip())
            # Our own origin in the page's scheme: behind a TLS proxy the page is https while
            # the emulator itself speaks http, and a port left out is the scheme's default.
            own = URL(f"{url.scheme}://{request.host}")
            same = bool(url.host) and (url.host, url.port) == (own.host, own.port)
        except (ValueError, TypeError):
            same = False
        return None if same else f"Origin: {origin[:100]}"

    # -- token -----------------------------------------------------------------------------

    def needs_token(self, path: str) -> bool:
        if self.control_token is None or path in OPEN_PATHS:
            return False
        return path in UI_PAGES or path == CONTROL or path.startswith(CONTROL + "/")

    def token_given(self, request: web.BaseRequest) -> bool:
        assert self.control_token is not None
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() in ("bearer", "token") and self._is_token(value.strip()):
            return True
        cookie = request.cookies.get(TOKEN_COOKIE)
        return cookie is not None and self._is_token(cookie)

    def _is_token(self, given: str) -> bool:
        assert self.control_token is not None
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.control_token.encode("utf-8", "replace"))

    def page_token(self, request: web.BaseRequest) -> bool:
        """``?token=TOKEN`` on the web page's address (it then sets the cookie)."""
        token = request.query.get("token")
        return self.control_token is not None and request.path in UI_PAGES and token is not None and self._is_token(token)


EXPOSURE = web.AppKey("exposure", Exposure)

# Types a browser would run, or show with script, if opened on the emulator's origin.
ACTIVE_TYPES = frozenset({
    "text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml", "text/xsl",
    "text/javascript", "application/javascript", "application/x-javascript", "application/ecmascript",
    "text/ecmascript", "text/css", "application/pdf", "multipart/x-mixed-replace", "application/wasm",
})
# Opened directly, a stored file is in a sandbox with a unique origin and may load nothing.
MEDIA_POLICY = "default-src 'none'; sandbox"


def stored_media_headers(content_type: str, media_id: str) -> dict[str, str]:
    """Headers for serving an uploaded file so that it can never run as a page on the
    emulator's origin (docs/security.md, 'Stored media'); its type stays as stored."""
    mime = content_type.split(";", 1)[0].strip().lower()
    active = mime in ACTIVE_TYPES or mime.endswith("+xml") or not mime
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", media_id.rsplit("/", 1)[-1])[:100] or "media"
    return {
        "Content-Security-Policy": MEDIA_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'{"attachment" if active else "inline"}; filename="{filename}"',
    }


def _refusal(request: web.Request, status: int, description: str) -> web.Response:
    path = request.path
    if path == CONTROL or path.startswith(CONTROL + "/") or path in UI_PAGES:
        type = "unauthorized" if status == 401 else "forbidden"
        response = ControlError(status, description, type=type).response()
    else:
        response = BandwidthError(status, "forbidden", description).response()
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="bandwidth-emulator control API"'
    return response


def checked(handler: Handler) -> Handler:
    """``handler``, behind the Host, Origin and token checks of the emulator's :class:`Exposure`."""

    @functools.wraps(handler)
    async def check(request: web.Request) -> web.StreamResponse:
        exposure = request.app[EXPOSURE]
        host = request.headers.get("Host")
        if not exposure.host_allowed(host):
            name = host_name(host or "")[:100]
            return _refusal(
                request,
                403,
                f"Host '{name}' is not allowed (a protection against DNS rebinding); to reach the emulator "
                f"by this name, start it with --allowed-hosts {name} or BWE_ALLOWED_HOSTS={name} (docs/security.md)",
            )
        reason = exposure.cross_origin(request)
        if reason is not None:
            return _refusal(
                request,
                403,
                f"cross-origin {request.method} refused ({reason}): a web page on another origin may not "
                "change the emulator's state (docs/security.md)",
            )
        if exposure.needs_token(request.path):
            if exposure.page_token(request):
                # Jupyter's way: the token in the address once, then a cookie, and an address
                # without the token (it would otherwise stay in the history and in screenshots).
                query = request.rel_url.query.copy()
                query.popall("token")
                response = web.Response(status=303, headers={"Location": str(request.rel_url.with_query(query))})
                response.set_cookie(TOKEN_COOKIE, exposure.control_token or "", httponly=True, samesite="Strict", path="/")
                return response
            if not exposure.token_given(request):
                return _refusal(
                    request,
                    401,
                    "this emulator needs its control token: send 'Authorization: Bearer TOKEN', or open the web "
                    "page once as /?token=TOKEN (docs/security.md)",
                )
        return await handler(request)

    return check
