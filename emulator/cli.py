"""The ``bandwidth-emulator`` command: serve, validate, schema."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from emulator.config import Settings

if TYPE_CHECKING:  # the scenario models are imported only when a command needs them
    from emulator.scenarios.format import Scenario
    from emulator.state.persistence import Database

DESCRIPTION = """\
A local emulator of the Bandwidth Messaging v2 API. Send messages to
http://HOST:PORT/api/v2 exactly as to Bandwidth; the emulator answers 202 and plays back
the callbacks Bandwidth would send, retrying for 24 hours of virtual time.
Every option can also be set with an environment variable BWE_<NAME> (e.g. BWE_PORT)."""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"BWE_{name}", default)


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return number


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535")
    return number


def _callback_url(value: str) -> str:
    from emulator.delivery.urls import callback_url_problem

    problem = callback_url_problem(value)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{value!r} is not a callback URL: it {problem}")
    return value


def _add_serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="address to bind (default 127.0.0.1; env BWE_HOST)")
    parser.add_argument(
        "--port", type=_port, default=_env("PORT", "8080"), help="port (default 8080; 0 picks a free port; env BWE_PORT)"
    )
    parser.add_argument("--scenario", metavar="PATH", default=_env("SCENARIO"), help="scenario YAML file (env BWE_SCENARIO)")
    parser.add_argument(
        "--callback-url",
        metavar="URL",
        type=_callback_url,
        default=_env("CALLBACK_URL"),
        help=(
            "where callbacks go for any application the scenario does not name, or names without callback URLs: "
            "an absolute http:// or https:// URL (env BWE_CALLBACK_URL)"
        ),
    )
    parser.add_argument(
        "--clock",
        choices=["realtime", "manual"],
        default=_env("CLOCK", "realtime"),
        help="realtime (default), or manual: time stands still until POST /_emulator/clock/advance (env BWE_CLOCK)",
    )
    parser.add_argument(
        "--time-scale",
        type=_positive_float,
        metavar="FACTOR",
        default=_env("TIME_SCALE", "1"),
        help="realtime clock only: virtual seconds per real second (default 1; env BWE_TIME_SCALE)",
    )
    parser.add_argument(
        "--db",
        metavar="PATH",
        default=_env("DB"),
        help="persist state in this SQLite file (default: in memory; env BWE_DB)",
    )
    parser.add_argument(
        "--callback-client",
        choices=["builtin", "aiohttp"],
        default=_env("CALLBACK_CLIENT", "builtin"),
        help="HTTP client for callbacks to http:// webhooks: builtin, a lean HTTP/1.1 client (default), "
        "or aiohttp, the fallback if a webhook server disagrees with it; https always uses aiohttp "
        "(env BWE_CALLBACK_CLIENT)",
    )
    parser.add_argument(
        "--log-format", choices=["text", "json"], default=_env("LOG_FORMAT", "text"), help="log format on stderr (env BWE_LOG_FORMAT)"
    )
    parser.add_argument(
        "--allowed-hosts",
        metavar="NAMES",
        default=_env("ALLOWED_HOSTS"),
        help="Host names with dots to answer besides *.localhost, IP addresses and --host (names without a dot "
        "always are), comma-separated; .example.test allows subdomains, * any name (docs/security.md; env BWE_ALLOWED_HOSTS)",
    )
    parser.add_argument(
        "--control-token",
        metavar="TOKEN",
        default=_env("CONTROL_TOKEN"),
        help="require this token for the control API and the web page: 'Authorization: Bearer TOKEN', "
        "or open the page once as /?token=TOKEN (docs/security.md; env BWE_CONTROL_TOKEN)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bandwidth-emulator", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # One line per request is noise for a tool that takes thousands of them in a test run.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings(
        allowed_hosts=tuple(h.strip() for h in (args.allowed_hosts or "").split(",") if h.strip()),
        control_token=args.control_token or None,
        host=args.host,
        port=int(args.port),
        scenario=args.scenario,
        callback_url=args.callback_url,
        clock=args.clock,
        time_scale=float(args.time_scale),
        db=args.db,
        log_format=args.log_format,
        callback_client=args.callback_client,
    )


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
    from emulator.web.exposure import is_loopback
    from emulator.web.server import EmulatorRunner, quiet_accept_errors

    _raise_open_files_limit()
    quiet_accept_errors(asyncio.get_running_loop())
    app = create_app(settings, scenario=scenario, database=database)
    runner = EmulatorRunner(app, handle_signals=False, access_log=logging.getLogger("aiohttp.access"))
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
    setup_logging(args.log_format)
    settings = settings_from_args(args)
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
        with tuned_gc():
            asyncio.run(serve(settings, scenario, database))
    except DatabaseError as exc:  # in use, not a database, a row or table that cannot be read
        print(f"bandwidth-emulator: cannot use --db {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"bandwidth-emulator: cannot listen on {settings.host}:{settings.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0
