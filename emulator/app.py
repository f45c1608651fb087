"""The application factory: wires clock, store, scheduler, dispatcher and routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from .api.control import control_errors
from .api.errors import error_middleware
from .api.routes import setup_routes
from .clock import Clock, ManualClock, RealtimeClock
from .config import Settings
from .keys import SERVICE, SETTINGS
from .scenario import Scenario, load_scenario_file
from .service import MessagingService

log = logging.getLogger("emulator")

# Bodies above this are refused before they are read (media files are at most 3.5 MB).
CLIENT_MAX_SIZE = 8 * 1024 * 1024


def make_clock(settings: Settings) -> Clock:
    if settings.clock == "manual":
        return ManualClock()
    return RealtimeClock(scale=settings.time_scale)


def create_app(settings: Settings | None = None, *, scenario: Scenario | None = None) -> web.Application:
    settings = settings or Settings()
    if scenario is None:
        scenario = load_scenario_file(settings.scenario) if settings.scenario else Scenario()
    service = MessagingService(
        clock=make_clock(settings),
        scenario=scenario,
        callback_url=settings.callback_url,
        default_account=settings.default_account,
    )
    app = web.Application(middlewares=[error_middleware, control_errors], client_max_size=CLIENT_MAX_SIZE)
    app[SETTINGS] = settings
    app[SERVICE] = service
    setup_routes(app)
    app.cleanup_ctx.append(_lifetime)
    return app


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    service = app[SERVICE]
    await service.dispatcher.start()
    service.scheduler.start()
    yield
    pending = service.callbacks.pending()
    if pending:
        log.warning("stopping with %d callbacks still pending", pending)
    await service.scheduler.stop()
    await service.dispatcher.close()
