"""Typed application keys: the only way handlers reach shared objects."""

from __future__ import annotations

from aiohttp import web

from emulator.config import Settings
from emulator.queries import Queries
from emulator.service import MessagingService

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", MessagingService)
QUERIES = web.AppKey("queries", Queries)
