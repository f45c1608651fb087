"""The media store's rules (docs/bandwidth-behaviour.md, 'Media'): per account, 48 h retention, size limit,
pages of 1000, and inbound MMS media kept under ``{messageId}/{n}/{filename}``.

Bytes live in :class:`~emulator.state.store.Store`; this module decides what may go in, what
has expired and which URLs point back at the emulator. Expiry is lazy: an item whose
48 virtual hours have passed is dropped the next time its account's media is touched,
so it vanishes exactly when the virtual clock says so, with no timer per file.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from emulator.delivery.clock import Clock
from emulator.messaging.wire import MAX_MEDIA, MAX_MEDIA_URL
from emulator.state.store import MediaItem, Store

# "Uploaded media is kept up to 48 hours" (docs media page; inbound: "download within 2 days").
RETENTION = 48 * 3600.0
# "At most 1000 items per call", then a Continuation-Token (docs/bandwidth-behaviour.md, 'Media').
PAGE_SIZE = 1000

# A media URL of ours: the emulator's own (any host, since it may be reached as
# 127.0.0.1, localhost or a container name) or Bandwidth's, which apps keep in their data.
_MEDIA_PATH = re.compile(r"^/api/v2/users/(?P<account>[^/]+)/media/(?P<media>.+)$")


class MediaTooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"The media file is {size} bytes; the limit is {limit} bytes per file")
        self.size = size
        self.limit = limit


class BadContinuationToken(ValueError):
    pass


@dataclass(frozen=True)
class InlineFile:
    """A file given inline to the control API's inbound endpoint."""

    content: bytes
    content_type: str
    filename: str | None = None


# Bounds on inline inbound files (docs/control-api.md, 'Inbound messages'): a file name as long
# as most file systems take, and a media type as long as RFC 6838 lets one be (127 + 1 + 127).
MAX_FILENAME = 255
MAX_CONTENT_TYPE = 255


def parse_inbound_media(entries: Any, size_limit: int | None = None) -> list[str | InlineFile]:
    """Inbound media: URLs, or ``{content (base64), contentType?, filename?}`` objects; as many
    as an MMS holds, each URL as long as a send's, each file at most ``size_limit`` bytes."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ValueError("'media' must be a list of URLs or {content, contentType, filename} objects")
    if len(entries) > MAX_MEDIA:
        raise ValueError(f"'media' may list at most {MAX_MEDIA} items, as an MMS may")
    out: list[str | InlineFile] = []
    for n, entry in enumerate(entries):
        if isinstance(entry, str):
            if len(entry) > MAX_MEDIA_URL:
                raise ValueError(f"media[{n}] is longer than {MAX_MEDIA_URL} characters, the longest media URL a send takes")
            out.append(entry)
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
            raise ValueError(f"media[{n}] must be a URL or an object with a base64 'content'")
        try:
            content = base64.b64decode(entry["content"], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"media[{n}].content is not valid base64") from None
        content_type = entry.get("contentType") or "application/octet-stream"
        filename = entry.get("filename")
        if not isinstance(content_type, str) or (filename is not None and not isinstance(filename, str)):
            raise ValueError(f"media[{n}]: 'contentType' and 'filename' must be strings")
        if filename is not None and (not filename or "/" in filename):
            raise ValueError(f"media[{n}].filename must be a plain file name without '/'")
        if filename is not None and len(filename) > MAX_FILENAME:
            raise ValueError(f"media[{n}].filename is longer than {MAX_FILENAME} characters")
        if len(content_type) > MAX_CONTENT_TYPE:
            raise ValueError(f"media[{n}].contentType is longer than {MAX_CONTENT_TYPE} characters")
        if size_limit is not None and len(content) > size_limit:
            raise ValueError(f"media[{n}] is {len(content)} bytes; the limit is {size_limit} bytes per file (mediaSizeLimit)")
        out.append(InlineFile(content, content_type, filename))
    return out


def own_media(url: str) -> tuple[str, str] | None:
    """``(accountId, mediaId)`` when ``url`` names a file in a media store like ours."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    match = _MEDIA_PATH.match(parts.path)
    if not match:
        return None
    return unquote(match.group("account")), unquote(match.group("media"))


def media_url(base_url: str, account_id: str, media_id: str) -> str:
    return f"{base_url.rstrip('/')}/api/v2/users/{quote(account_id, safe='')}/media/{quote(media_id, safe='/')}"


class MediaLibrary:
    def __init__(self, store: Store, clock: Clock, size_limit: Callable[[], int]) -> None:
        self.store = store
        self.clock = clock
        self.size_limit = size_limit

    def _expire(self, account_id: str) -> None:
        cutoff = self.clock.now() - RETENTION
        for item in self.store.media(account_id):
            if item.created_at <= cutoff:
                self.store.delete_media(account_id, item.media_id)

    def put(
        self, account_id: str, media_id: str, content: bytes, content_type: str, cache_control: str | None = None
    ) -> MediaItem:
        limit = self.size_limit()
        if len(content) > limit:
            raise MediaTooLarge(len(content), limit)
        self._expire(account_id)
        # Uploading to an existing name overwrites it, and its 48 hours start again.
        item = MediaItem(account_id, media_id, content, content_type, cache_control, self.clock.now())
        self.store.put_media(item)
        return item

    def get(self, account_id: str, media_id: str) -> MediaItem | None:
        self._expire(account_id)
        return self.store.get_media(account_id, media_id)

    def delete(self, account_id: str, media_id: str) -> bool:
        self._expire(account_id)
        return self.store.delete_media(account_id, media_id)

    def page(self, account_id: str, continuation_token: str | None) -> tuple[list[MediaItem], str | None]:
        """One page of the account's media, by name; the token is where the next page starts."""
        self._expire(account_id)
        items = sorted(self.store.media(account_id), key=lambda m: m.media_id)
        if continuation_token:
            after = _decode_token(continuation_token)
            items = [m for m in items if m.media_id > after]
        page = items[:PAGE_SIZE]
        token = _encode_token(page[-1].media_id) if len(items) > PAGE_SIZE else None
        return page, token

    # -- messages that carry media ---------------------------------------------------------

    def send_failure(self, account_id: str, urls: Sequence[str]) -> int | None:
        """The error code Bandwidth's fetch of a message's media would end in, or None.

        Only URLs into a media store like ours are checked; any other URL is accepted
        without being fetched (the emulator makes no outside requests). A file missing
        from the sender's account is 4410 (media-unavailable); files larger together than
        the media size limit are 4411 (media-size-limit, docs/bandwidth-behaviour.md, 'Media').
        """
        total = 0
        for url in urls:
            ours = own_media(url)
            if ours is None:
                continue
            owner, media_id = ours
            item = self.get(account_id, media_id) if owner == account_id else None
            if item is None:
                return 4410
            total += len(item.content)
        if total > self.size_limit():
            return 4411
        return None

    def size_of(self, account_id: str, urls: list[str]) -> int:
        """Bytes of the media a message carries, where the emulator holds them."""
        total = 0
        for url in urls:
            ours = own_media(url)
            if ours is not None:
                item = self.store.get_media(*ours)
                if item is not None:
                    total += len(item.content)
        return total

    def store_inbound(
        self, account_id: str, message_id: str, media: list[str | InlineFile], base_url: str | None
    ) -> list[str]:
        """Keep an inbound MMS's files as Bandwidth does, under ``{messageId}/{n}/{filename}``,
        and return the URLs its message-received callback carries.

        Files given inline, or by a URL into the emulator's own media store, are stored and
        served by the emulator; any other URL is passed through unchanged (never fetched).
        """
        urls: list[str] = []
        for n, entry in enumerate(media):
            if isinstance(entry, str):
                ours = own_media(entry)
                source = self.store.get_media(*ours) if ours else None
                if source is None or base_url is None:
                    urls.append(entry)
                    continue
                file = InlineFile(source.content, source.content_type, ours[1].rsplit("/", 1)[-1])  # type: ignore[index]
            else:
                file = entry
            if base_url is None:
                raise ValueError("inline inbound media needs the emulator's base URL")
            filename = file.filename or f"media{n}{mimetypes.guess_extension(file.content_type) or '.bin'}"
            media_id = f"{message_id}/{n}/{filename}"
            self.store.put_media(MediaItem(account_id, media_id, file.content, file.content_type, None, self.clock.now()))
            urls.append(media_url(base_url, account_id, media_id))
        return urls


def _encode_token(media_id: str) -> str:
    return base64.urlsafe_b64encode(f"after:{media_id}".encode()).decode()


def _decode_token(token: str) -> str:
    try:
        raw = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raw = ""
    prefix, sep, media_id = raw.partition(":")
    if prefix != "after" or not sep:
        raise BadContinuationToken(f"'{token}' is not a valid Continuation-Token: send back the one a list answer gave")
    return media_id
