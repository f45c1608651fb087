"""The application factory: wires clock, store, scheduler, dispatcher and routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from emulator.config import Settings
from emulator.delivery.clock import Clock, ManualClock, RealtimeClock
from emulator.delivery.dispatcher import Dispatcher
from emulator.keys import QUERIES, SERVICE, SETTINGS
from emulator.queries import Queries
from emulator.scenarios.format import Scenario, load_scenario_file
from emulator.service import MessagingService
from emulator.state.persistence import Database, end_request, request_changes
from emulator.state.retention import REALTIME_DEFAULT_MESSAGES, Policy
from emulator.web.auth import AUTHENTICATOR, Authenticator
from emulator.web.errors import REQUEST_SIZE_LIMIT, internal_error
from emulator.web.exposure import EXPOSURE, Exposure
from emulator.web.ratelimit import LIST_LIMITER, SlidingWindow
from emulator.web.routes import setup_routes
from emulator.web.tokens import TOKENS, TokenStore

log = logging.getLogger("emulator")

CLIENT_MAX_SIZE = REQUEST_SIZE_LIMIT


DATABASE = web.AppKey("database", Database)


def make_clock(settings: Settings, saved: float | None = None, start_time: float | None = None) -> Clock:
    """The clock; ``saved`` is where virtual time stopped in the --db file, if anywhere."""
    if settings.clock == "manual":
        # A restored clock carries on where it stopped; otherwise the scenario may pin the start.
        return ManualClock(saved if saved is not None else start_time)
    if settings.time_scale != 1:
        # A scaled clock's time is its own, not the wall clock's: it carries on too.
        return RealtimeClock(scale=settings.time_scale, start=saved)
    return RealtimeClock()


def retention_policy(settings: Settings) -> Policy:
    """What --retain-messages and --retain-for keep (README.md, "Retention"): by default
    everything with the manual clock (a test sees all it did), a bounded count with the
    realtime one (an all-day run or a load test does not grow for ever)."""
    messages = settings.retain_messages
    if messages is None:
        messages = 0 if settings.clock == "manual" else REALTIME_DEFAULT_MESSAGES
    return Policy(messages=messages, age=settings.retain_for)


def create_app(
    settings: Settings | None = None, *, scenario: Scenario | None = None, database: Database | None = None
) -> web.Application:
    """The application; ``database`` is ``settings.db`` already opened (the CLI opens it once,
    to hold its lock from the first check on), else it is opened here."""
    settings = settings or Settings()
    if scenario is None:
        scenario = load_scenario_file(settings.scenario) if settings.scenario else Scenario()
    if database is None and settings.db:
        database = Database(settings.db)
    service = MessagingService(
        clock=make_clock(
            settings,
            database.saved_clock() if database is not None else None,
            scenario.start_time.timestamp() if scenario.start_time is not None else None,
        ),
        scenario=scenario,
        callback_url=settings.callback_url,
        default_account=settings.default_account,
        dispatcher=Dispatcher(builtin_client=settings.callback_client == "builtin"),
        retention=retention_policy(settings),
    )
    # Errors are answered by a wrapper around each route (api/errors.py), not a middleware.
    middlewares = [_commit_middleware(database)] if database is not None else []
    app = web.Application(middlewares=middlewares, client_max_size=CLIENT_MAX_SIZE)
    app[SETTINGS] = settings
    if database is not None:
        app[DATABASE] = database
    app[SERVICE] = service
    app[QUERIES] = Queries(service)
    app[AUTHENTICATOR] = Authenticator()
    app[EXPOSURE] = Exposure.build(settings.host, settings.allowed_hosts, settings.control_token)
    app[TOKENS] = TokenStore()
    app[LIST_LIMITER] = SlidingWindow()
    setup_routes(app)
    app.on_shutdown.append(_stop_dispatching)
    app.on_shutdown.append(_wake_long_polls)
    app.cleanup_ctx.append(_lifetime)
    return app


async def _stop_dispatching(app: web.Application) -> None:
    # First thing on SIGTERM/Ctrl-C, before aiohttp waits for open requests: no webhook POST
    # starts after this, whatever is due (under a scaled clock many are, all the time).
    await app[SERVICE].scheduler.stop()


async def _wake_long_polls(app: web.Application) -> None:
    # Before aiohttp waits for the handlers still running: a long-poll answers with what it
    # has instead of holding Ctrl-C for up to its whole wait.
    app[SERVICE].close_waits()


def _commit_middleware(database: Database) -> Middleware:
    @web.middleware
    async def commit(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Whatever a request changed is on disk before its answer leaves: a 202 is a promise.
        # A read (health, lists, the web page) does not wait for the disk, so reads go on
        # while it is full.
        changes, token = request_changes()
        try:
            response = await handler(request)
        finally:
            end_request(token)
        if changes.state == "pending" and (changes.keys or request.method not in ("GET", "HEAD")):
            await database.committed()  # a clock advance may change no record, but the clock
        if changes.keys and changes.state != "committed":
            # Nothing was promised, and what the request created is forgotten: the client is
            # told it failed (README.md, "Durable state").
            return internal_error()
        return response

    return commit


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    service = app[SERVICE]
    database = app.get(DATABASE)
    if database is not None:
        resumed = database.attach(
            service.store, clock=service.clock, resume=service.callbacks.enqueue, forget=service.forget_callbacks
        )
        log.info("state loaded from %s: %d callbacks pending", database.path, resumed)
        service.retention.rescan()  # what the file holds beyond the policy goes now
    await service.start()
    yield
    # The server has stopped accepting by now; say what will not be delivered.
    await service.stop(log, kept_in=database.path if database is not None else None)
    if database is not None:
        database.close()
