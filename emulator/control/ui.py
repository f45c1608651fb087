"""The web page at ``/``: a static page with vanilla JS that reads the control API.

No build step and no CDN, because the emulator often runs on a machine without internet
access. Everything the page shows comes from the control API; the few routes here only
serve the page itself, a change counter it polls, the active scenario as YAML, and stored
media as thumbnails.
"""

from __future__ import annotations

from importlib import resources

import yaml
from aiohttp import web

from emulator.keys import QUERIES, SERVICE
from emulator.queries import scenario_json
from emulator.web.errors import ControlError

# The page builds its DOM with textContent only; the policy is a second line of defence
# against message text (attacker-controlled) ever reaching the page as markup.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": PAGE_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The page is tiny and changes with the package: always revalidate.
    "Cache-Control": "no-cache",
}
ASSETS = {
    "app.js": "text/javascript",
    "style.css": "text/css",
}
# Shown inline as thumbnails. SVG is left out: it can carry script when opened directly.
INLINE_MEDIA = {"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"}


def _static(name: str) -> bytes:
    return resources.files("emulator.control").joinpath("static", name).read_bytes()


async def index(request: web.Request) -> web.Response:
    return web.Response(
        body=_static("index.html"), content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS
    )


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    content_type = ASSETS.get(name)
    if content_type is None:
        raise ControlError(404, f"no file {name!r} in the web page; it has {', '.join(ASSETS)}", type="not-found")
    return web.Response(body=_static(name), content_type=content_type, charset="utf-8", headers=SECURITY_HEADERS)


async def changes(request: web.Request) -> web.Response:
    """The emulator's change counter: the page re-reads the lists only when it moved."""
    return web.json_response({"version": request.app[QUERIES].version}, headers={"Cache-Control": "no-store"})


async def scenario_yaml(request: web.Request) -> web.Response:
    data = scenario_json(request.app[QUERIES].scenario())
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return web.Response(text=text, content_type="application/yaml", charset="utf-8", headers={"Cache-Control": "no-cache"})


async def media(request: web.Request) -> web.Response:
    """A stored media file, for thumbnails: an <img> cannot send the Basic credentials
    that ``/api/v2/users/{accountId}/media/{mediaId}`` requires."""
    account_id = request.match_info["accountId"]
    media_id = request.match_info["mediaId"]  # already decoded, %2F included
    item = request.app[SERVICE].media.get(account_id, media_id)
    if item is None:
        raise ControlError(404, f"no media {media_id!r} in account {account_id!r}", type="not-found")
    content_type = (item.content_type or "application/octet-stream").split(";")[0].strip().lower()
    headers = {
        "X-Content-Type-Options": "nosniff",
        # Uploaded content is the app's, not ours: never let it run as a page on this origin.
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "no-cache",
    }
    if content_type not in INLINE_MEDIA:
        filename = media_id.rsplit("/", 1)[-1].replace('"', "") or "media"
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        content_type = "application/octet-stream"
    return web.Response(body=item.content, content_type=content_type, headers=headers)
