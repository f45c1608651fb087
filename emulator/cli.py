"""The ``bandwidth-emulator`` command: serve, validate, schema."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from emulator import __version__
from emulator.config import Settings
from emulator.logs import setup_logging

if TYPE_CHECKING:  # the scenario models are imported only when a command needs them
    from emulator.scenarios.format import Scenario
    from emulator.state.persistence import Database

DESCRIPTION = """\
A local emulator of the Bandwidth Messaging v2 API. Send messages to
http://HOST:PORT/api/v2 exactly as to Bandwidth; the emulator answers 202 and plays back
the callbacks Bandwidth would send, retrying for 24 hours of virtual time.
Every option can also be set with an environment variable BWE_<NAME> (e.g. BWE_PORT)."""


@dataclass(frozen=True)
class ServeOption:
    """One option of ``serve``: given on the command line (before or after ``serve``), else
    read from its environment variable, else its default. An environment value goes through
    the same checks as the option's, and is refused naming the variable."""

    flag: str
    help: str
    default: str | None = None
    type: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    switch: bool = False  # an on/off flag: no value on the command line; env 1/true/yes/on or 0/false/no/off

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def env(self) -> str:
        return "BWE_" + self.dest.upper()

    def convert(self, raw: str) -> Any:
        """The value of an environment variable or default; ValueError says what is wrong."""
        if self.switch:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("", "0", "false", "no", "off"):
                return False
            raise ValueError("expected one of 1, true, yes, on, 0, false, no, off")
        if self.choices is not None and raw not in self.choices:
            raise ValueError("choose from " + ", ".join(self.choices))
        if self.type is not None:
            try:
                return self.type(raw)
            except argparse.ArgumentTypeError as exc:
                raise ValueError(str(exc)) from None
        return raw


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError("must be a number greater than 0")
    return number


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535")
    return number


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def _duration(value: str) -> float:
    # The scenario format's durations (docs/scenarios.md, 'Durations'); imported here, not at
    # the top: the scenario models are not imported for --help.
    from emulator.scenarios.format import _duration as parse

    try:
        return float(parse(value))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _callback_url(value: str) -> str:
    from emulator.delivery.urls import callback_url_problem

    problem = callback_url_problem(value)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{value!r} is not a callback URL: it {problem}")
    return value


def _host_names(value: str) -> tuple[str, ...]:
    return tuple(h.strip() for h in value.split(",") if h.strip())


def _token(value: str) -> str | None:
    return value or None


LOG_LEVELS = ("debug", "info", "warning", "error")


def _library_names() -> list[str]:
    # Read from the folder: the scenario models (pydantic) are not imported for --help.
    return sorted(p.stem for p in (Path(__file__).resolve().parent / "scenarios" / "library").glob("*.yaml"))

SERVE_OPTIONS = (
    ServeOption("--host", "address to bind (default 127.0.0.1; env BWE_HOST)", "127.0.0.1"),
    ServeOption("--port", "port (default 8080; 0 picks a free port; env BWE_PORT)", "8080", type=_port),
    ServeOption(
        "--scenario",
        "scenario YAML file, or the name of a ready-made one: " + ", ".join(_library_names()) + " (env BWE_SCENARIO)",
        metavar="PATH|NAME",
    ),
    ServeOption(
        "--callback-url",
        "where callbacks go for any application the scenario does not name, or names without callback URLs: "
        "an absolute http:// or https:// URL (env BWE_CALLBACK_URL)",
        type=_callback_url,
        metavar="URL",
    ),
    ServeOption(
        "--clock",
        "realtime (default), or manual: time stands still until POST /_emulator/clock/advance (env BWE_CLOCK)",
        "realtime",
        choices=("realtime", "manual"),
    ),
    ServeOption(
        "--time-scale",
        "realtime clock only: virtual seconds per real second (default 1; env BWE_TIME_SCALE)",
        "1",
        type=_positive_float,
        metavar="FACTOR",
    ),
    ServeOption("--db", "persist state in this SQLite file (default: in memory; env BWE_DB)", metavar="PATH"),
    ServeOption(
        "--retain-messages",
        "keep at most N messages per account, forgetting the oldest finished ones with their callbacks "
        "(never one with a callback pending); 0 keeps every one. Default: every one with --clock manual "
        "(tests see all they did), 100000 with the realtime clock (an all-day run stays bounded); "
        "a scenario's retention overrides it (README.md, 'Retention'; env BWE_RETAIN_MESSAGES)",
        type=_count,
        metavar="N",
    ),
    ServeOption(
        "--retain-for",
        "forget a finished message this long after its last callback ended, in virtual time, e.g. 30m, "
        "24h, 7d; 0 (default) never; a scenario's retention overrides it (env BWE_RETAIN_FOR)",
        "0",
        type=_duration,
        metavar="DURATION",
    ),
    ServeOption(
        "--callback-client",
        "HTTP client for callbacks to http:// webhooks: builtin, a lean HTTP/1.1 client (default), "
        "or aiohttp, the fallback if a webhook server disagrees with it; https always uses aiohttp "
        "(env BWE_CALLBACK_CLIENT)",
        "builtin",
        choices=("builtin", "aiohttp"),
    ),
    ServeOption(
        "--log-format",
        "text (default) or json: one object per line with the same facts as fields (env BWE_LOG_FORMAT)",
        "text",
        choices=("text", "json"),
    ),
    ServeOption(
        "--log-level",
        "info (default): a line per send, inbound message and callback attempt; debug adds more; "
        "warning keeps only problems (env BWE_LOG_LEVEL)",
        "info",
        choices=LOG_LEVELS,
    ),
    ServeOption("--access-log", "also log one line per HTTP request received (env BWE_ACCESS_LOG=1)", switch=True),
    ServeOption(
        "--allowed-hosts",
        "Host names with dots to answer besides *.localhost, IP addresses and --host (names without a dot "
        "always are), comma-separated; .example.test allows subdomains, * any name (docs/security.md; env BWE_ALLOWED_HOSTS)",
        type=_host_names,
        metavar="NAMES",
    ),
    ServeOption(
        "--control-token",
        "require this token for the control API and the web page: 'Authorization: Bearer TOKEN', "
        "or open the page once as /?token=TOKEN (docs/security.md; env BWE_CONTROL_TOKEN)",
        type=_token,
        metavar="TOKEN",
    ),
)


class OptionError(Exception):
    """An environment variable holds a value its option refuses."""


def _add_serve_options(parser: argparse.ArgumentParser) -> None:
    # No defaults here (SUPPRESS): an option given on either side of `serve` is kept, and
    # the environment and the defaults are applied once, in settings_from_args.
    for option in SERVE_OPTIONS:
        if option.switch:
            parser.add_argument(option.flag, action="store_true", default=argparse.SUPPRESS, help=option.help)
        else:
            extra: dict[str, Any] = {"type": option.type} if option.type is not None else {}
            parser.add_argument(
                option.flag, choices=option.choices, metavar=option.metavar, default=argparse.SUPPRESS,
                help=option.help, **extra,
            )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bandwidth-emulator", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_serve_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the emulator (the default command)", description=DESCRIPTION,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_serve_options(serve)
    validate = sub.add_parser(
        "validate",
        help="check scenario files",
        description=(
            "Check scenario files. Prints 'FILE: ok' for each valid file, and 'FILE: PATH: PROBLEM' on stderr "
            "for every problem (e.g. rules[2].events[0].errorCode); exit 1 if any file is invalid. "
            "The format is described in docs/scenarios.md."
        ),
    )
    validate.add_argument("files", nargs="+", metavar="FILE")
    sub.add_parser(
        "schema",
        help="print the JSON Schema of the scenario format",
        description="Print the JSON Schema of the scenario format, for editors that autocomplete YAML.",
    )
    return parser


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the parsed command line, then ``BWE_*`` variables, then the defaults.

    Raises OptionError when a variable holds a value the option would refuse: a typo such
    as BWE_CLOCK=manaul must not quietly become the default."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for option in SERVE_OPTIONS:
        if option.dest in args:
            values[option.dest] = getattr(args, option.dest)
            continue
        raw = environ.get(option.env)
        if raw is not None:
            try:
                values[option.dest] = option.convert(raw)
            except ValueError as exc:
                raise OptionError(f"environment variable {option.env}={raw!r} is not valid for {option.flag}: {exc}") from None
        elif option.switch:
            values[option.dest] = False
        else:
            values[option.dest] = None if option.default is None else option.convert(option.default)
    values["allowed_hosts"] = values["allowed_hosts"] or ()
    return Settings(**values)


# The emulator holds many long-lived records (messages, callbacks, attempts) and its delivery
# path makes no reference cycles, yet with the default thresholds a retry storm spends a third
# of its time in full collections that find nothing. Collect less often (bench/retry_storm.py).
GC_THRESHOLDS = (2000, 20, 100)


@contextlib.contextmanager
def tuned_gc() -> Iterator[None]:
    """The garbage collector set for a process that is only the emulator: the CLI's.

    Process-wide, so never applied by an in-process emulator (emulator.testing.runner), which
    shares its process with someone's tests; restored on the way out.
    """
    defaults = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    gc.callbacks.append(_freeze_survivors)
    try:
        yield
    finally:
        gc.callbacks.remove(_freeze_survivors)
        gc.set_threshold(*defaults)


def _freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    # In the emulator's own process, what survives a full collection is almost all stored
    # records, which live until a reset and are then freed by reference counting. Moving them
    # out of the collector's sight keeps later full collections short: otherwise each one walks
    # every stored message (about 280 ms with 60,000 of them), holding up every callback.
    # Only in the CLI: inside someone's test process it would also pin their objects.
    if phase == "stop" and info.get("generation") == 2:
        gc.freeze()


# glibc's malloc gives a block of 128 KiB or more a mapping of its own, returned to the system
# when the block is freed, but each time such a block is freed it raises that threshold to the
# block's size (up to 32 MiB). The emulator's large blocks are the tables of its big dicts (the
# store's messages, the retention queue): with retention on they are reallocated, at the same
# size, every few virtual minutes, and once the threshold has risen they land in the main heap,
# where the allocations made between two reallocations leave the old table's place too
# fragmented to take the next one. RSS then moved in steps of a few MB for more than an hour
# before it levelled off (bench/RESULTS.md, 'Retention'). A fixed threshold keeps each large
# table in a mapping of its own, given back as a whole, and RSS flat. Fixed at 512 KiB rather
# than glibc's 128 KiB: asyncio reads a socket into a 256 KiB buffer, then shrinks it, on every
# read; a mapping for each of those (mmap, page faults, munmap) cost 8 us per callback.
M_MMAP_THRESHOLD = -3  # glibc's malloc.h
MMAP_THRESHOLD = 512 * 1024


def fix_mmap_threshold(environ: Mapping[str, str] = os.environ) -> bool:
    """Fix glibc's mmap threshold (see above), unless the environment sets it
    (``MALLOC_MMAP_THRESHOLD_``); whether it was set. Process-wide, so the CLI's only, like
    :func:`tuned_gc`; nothing to do with another C library (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in environ:
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None)  # the symbols of the process itself, its C library's among them
    except OSError:
        return False
    # glibc only: musl's mallopt does nothing.
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def _raise_open_files_limit() -> None:
    # Every client connection is a file descriptor: take all the process may have (the soft
    # limit is often 1024) so that many clients, or stalled ones, do not lock the others out
    # (docs/compatibility.md, 'What the emulator refuses'). The emulator's own process only.
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


async def serve(settings: Settings, scenario: Scenario | None = None, database: Database | None = None) -> None:
    from emulator.app import create_app
    from emulator.keys import SERVICE
    from emulator.logs import access_logger
    from emulator.web.exposure import is_loopback
    from emulator.web.server import EmulatorRunner, quiet_accept_errors

    _raise_open_files_limit()
    quiet_accept_errors(asyncio.get_running_loop())
    app = create_app(settings, scenario=scenario, database=database)
    runner = EmulatorRunner(app, handle_signals=False, access_log=access_logger(settings.access_log))
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    server = site._server
    sockets = server.sockets if isinstance(server, asyncio.Server) else []
    port = sockets[0].getsockname()[1] if sockets else settings.port
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    app[SERVICE].base_url = f"http://{host}:{port}"  # for the URLs of stored inbound media
    stop = asyncio.Event()
    scheduler = app[SERVICE].scheduler

    def on_signal() -> None:
        # No webhook POST starts after the signal, even before the shutdown gets its turn
        # (docs/callbacks.md, 'Time, scale and shutdown').
        scheduler.halt()
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    # Ready, and a SIGTERM from whoever read this line is a clean stop from now on.
    print(f"bandwidth-emulator serving http://{host}:{port} (Bandwidth API at http://{host}:{port}/api/v2)", flush=True)
    if not settings.control_token and not is_loopback(settings.host):
        logging.getLogger("emulator").warning(
            "listening on %s without --control-token: anyone who can reach this port can drive the control API "
            "(docs/security.md)",
            settings.host,
        )
    await stop.wait()
    logging.getLogger("emulator").info("shutting down")
    await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "validate":
        from emulator.scenarios.format import ScenarioError, load_scenario_file

        failed = 0
        for path in args.files:
            try:
                load_scenario_file(path)
            except ScenarioError as exc:
                failed += 1
                print(exc, file=sys.stderr)
            else:
                print(f"{path}: ok")
        return 1 if failed else 0
    if args.command == "schema":
        from emulator.scenarios.format import json_schema

        print(json_schema())
        return 0
    try:
        settings = settings_from_args(args)
    except OptionError as exc:
        parser.error(str(exc))
    setup_logging(settings.log_format, settings.log_level, access_log=settings.access_log)
    scenario = None
    if settings.scenario:
        from emulator.scenarios.format import ScenarioError, load_scenario_file

        try:
            scenario = load_scenario_file(settings.scenario)
        except ScenarioError as exc:
            print(exc, file=sys.stderr)
            return 2
    database = None
    from emulator.state.persistence import Database, DatabaseError

    try:
        if settings.db:
            # Opened once and held from here on: its lock is what keeps a second emulator
            # (started at the same moment) away from the file.
            database = Database(settings.db)
        fix_mmap_threshold()
        with tuned_gc():
            asyncio.run(serve(settings, scenario, database))
    except DatabaseError as exc:  # in use, not a database, a row or table that cannot be read
        print(f"bandwidth-emulator: cannot use --db {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"bandwidth-emulator: cannot listen on {settings.host}:{settings.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0
