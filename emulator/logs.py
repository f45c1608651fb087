"""The terminal log: one line per send, inbound message and callback attempt.

What a developer watches all day (docs/callbacks.md, 'The terminal log'). Each activity line
starts with the virtual time it happened at; with ``--log-format json`` the same facts are
fields of one JSON object per line (``event``, ``virtualTime``, ``messageId``, ...).
The lines are written only when the ``emulator.activity`` logger is enabled for INFO, so a
test process that does not show them pays one level check per event.

In the CLI, whose one handler is :class:`TerminalHandler`, an activity line skips the
``logging`` machinery (a ``LogRecord``, the caller lookup, the formatter, a write and a flush
per line): it is formatted here into the very text the formatter would give, and the lines of
one event-loop iteration are written together once it ends. Anything else that logs, or any
other handler (a test's ``caplog``), takes the ordinary path, which writes the waiting lines
first so that the order stays as it happened.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import IO, Any

from emulator.delivery.clock import isoformat
from emulator.state.models import Attempt, Callback, Message

activity = logging.getLogger("emulator.activity")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class TextFormatter(logging.Formatter):
    """Wall time and level, then the message; the logger's name only for lines that are
    not activity lines (those begin with their virtual time instead)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._activity = logging.Formatter("%(asctime)s %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if record.name == activity.name:
            return self._activity.format(record)
        return super().format(record)


class TerminalHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The CLI's handler: a ``StreamHandler`` that also takes activity lines already
    formatted (:func:`_emit`), keeps them until the end of the event-loop iteration, and then
    writes them with one write."""

    # Past this many waiting lines they are written at once, whatever the loop does.
    MAX_PENDING = 512

    def __init__(self, stream: IO[str], json_lines: bool) -> None:
        super().__init__(stream)
        self.json_lines = json_lines
        self.own_formatter = JsonFormatter() if json_lines else TextFormatter()
        self.setFormatter(self.own_formatter)
        self._pending: list[str] = []
        self._scheduled_on: asyncio.AbstractEventLoop | None = None
        # The wall time of the line, to the second, as the formatter writes it.
        self._second = -1
        self._stamp = ""

    def wall_time(self, now: float) -> str:
        """``asctime`` of a record created at ``now``: text ``2026-11-30 12:00:00,101``,
        JSON ``2026-11-30T12:00:00+0000`` (logging.Formatter.formatTime, local time)."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z" if self.json_lines else "%Y-%m-%d %H:%M:%S",
                                        time.localtime(now))
        if self.json_lines:
            return self._stamp
        return f"{self._stamp},{int((now - second) * 1000):03d}"

    def add_line(self, line: str) -> None:
        self._pending.append(line)
        if len(self._pending) >= self.MAX_PENDING:
            self.write_pending()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the event loop's thread: no iteration to wait for
            self.write_pending()
            return
        if self._scheduled_on is not loop:
            self._scheduled_on = loop
            loop.call_soon(self.write_pending)

    def write_pending(self) -> None:
        self._scheduled_on = None
        if not self._pending:
            return
        with self.lock:  # type: ignore[union-attr]
            lines, self._pending = self._pending, []
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except (OSError, ValueError):  # stderr closed or gone: as logging, carry on
                pass

    def emit(self, record: logging.LogRecord) -> None:
        if self._pending:
            self.write_pending()
        super().emit(record)

    def flush(self) -> None:
        self.write_pending()
        super().flush()


# The CLI's handler while it is the only one that activity lines reach; see _emit.
_terminal: TerminalHandler | None = None


def setup_logging(fmt: str, level: str = "info", *, access_log: bool = False) -> None:
    global _terminal
    handler = TerminalHandler(sys.stderr, fmt == "json")
    _terminal = handler
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
    # One line per request is noise for a tool that takes thousands of them in a test run:
    # shown only when asked for (--access-log).
    logging.getLogger("aiohttp.access").setLevel(logging.INFO if access_log else logging.WARNING)


def access_logger(enabled: bool) -> logging.Logger | None:
    """The logger aiohttp writes request lines to, or None (aiohttp then skips formatting them)."""
    return logging.getLogger("aiohttp.access") if enabled else None


_emulator_log = logging.getLogger("emulator")
_root = logging.getLogger()


def _emit(level: int, fields: dict[str, Any], text: str) -> None:
    """Log one activity line; the caller has checked that ``level`` is enabled."""
    terminal = _terminal
    if (
        terminal is not None
        # Only the terminal would see the record: no other handler, filter or logger in the way.
        and _root.handlers == [terminal]
        and not activity.handlers
        and not _emulator_log.handlers
        and not (activity.filters or _emulator_log.filters or _root.filters or terminal.filters)
        and activity.propagate
        and _emulator_log.propagate
        and level >= terminal.level
        and terminal.formatter is terminal.own_formatter
    ):
        # The text TextFormatter or JsonFormatter would give the record logging would make.
        message = f"[{fields['virtualTime']}] {text}"
        name = logging.getLevelName(level)
        stamp = terminal.wall_time(time.time())
        if terminal.json_lines:
            entry: dict[str, Any] = {"time": stamp, "level": name.lower(), "logger": activity.name, "message": message}
            entry.update(fields)
            terminal.add_line(json.dumps(entry) + terminal.terminator)
        else:
            terminal.add_line(f"{stamp} {name} {message}{terminal.terminator}")
        return
    activity.log(level, "[%s] %s", fields["virtualTime"], text, extra={"fields": fields})


def _recipients(to: tuple[str, ...]) -> str:
    return ", ".join(to) if len(to) <= 3 else f"{', '.join(to[:3])} and {len(to) - 3} more"


def _message_fields(event: str, message: Message) -> dict[str, Any]:
    return {
        "event": event,
        "virtualTime": isoformat(message.time),
        "messageId": message.id,
        "accountId": message.account_id,
        "applicationId": message.application_id,
        "from": message.from_,
        "to": list(message.to),
    }


def log_send(message: Message, callback_url: str | None) -> None:
    if not activity.isEnabledFor(logging.INFO):
        return
    fields = _message_fields("send", message)
    fields.update(segments=message.segment_count, tag=message.tag, url=callback_url)
    where = f"callbacks to {callback_url}" if callback_url else "no callback URL"
    segments = "1 segment" if message.segment_count == 1 else f"{message.segment_count} segments"
    _emit(
        logging.INFO,
        fields,
        f"sent {message.id} from {message.from_} to {_recipients(message.to)} ({message.kind}, {segments}); {where}",
    )


def log_inbound(message: Message, callback_url: str | None) -> None:
    if not activity.isEnabledFor(logging.INFO):
        return
    fields = _message_fields("inbound", message)
    fields.update(recipient=message.owner, url=callback_url)
    where = f"message-received to {callback_url}" if callback_url else "no callback URL"
    _emit(logging.INFO, fields, f"inbound {message.id} from {message.from_} to {message.owner}; {where}")


def log_attempt(callback: Callback, attempt: Attempt, outcome: str, next_at: float | None) -> None:
    """One POST of a callback. ``outcome``: retry, delivered, exhausted, challenged (a 401 that
    earns the resend with credentials), duplicate or replay."""
    if not activity.isEnabledFor(logging.INFO):
        return
    fields = {
        "event": "callback-attempt",
        "virtualTime": isoformat(attempt.time),
        "callbackId": callback.id,
        "messageId": callback.message_id,
        "type": callback.type,
        "recipient": callback.recipient,
        "url": callback.url,
        "status": attempt.status,
        "error": attempt.error,
        "attempt": attempt.number,
        "outcome": outcome,
        "state": callback.state,
        "nextAttemptAt": isoformat(next_at) if next_at is not None else None,
        "durationMs": attempt.duration_ms,
    }
    answer = str(attempt.status) if attempt.status is not None else (attempt.error or "no answer")
    if outcome == "retry" and next_at is not None:
        after = f"retry: next attempt at {isoformat(next_at)} (+{_duration(next_at - attempt.time)})"
    elif outcome == "exhausted":
        after = "exhausted: no attempt left in the retry window"
    elif outcome == "challenged":
        after = "challenged: resending with credentials"
    elif outcome == "replay":
        after = "replay (the scheduled attempts are unchanged)"
    else:
        after = outcome
    level = logging.INFO if outcome in ("delivered", "duplicate", "challenged", "replay") else logging.WARNING
    _emit(
        level,
        fields,
        f"callback {callback.type} for {callback.message_id} to {callback.recipient}: POST {callback.url} -> {answer} "
        f"(attempt {attempt.number}); {after}",
    )


def log_skipped(callback: Callback, at: float, first: bool) -> None:
    """A callback not sent: no URL. The first of an application's is a warning with the way out."""
    if not activity.isEnabledFor(logging.DEBUG if not first else logging.WARNING):
        return
    fields = {
        "event": "callback-skipped",
        "virtualTime": isoformat(at),
        "callbackId": callback.id,
        "messageId": callback.message_id,
        "type": callback.type,
        "recipient": callback.recipient,
        "applicationId": callback.application_id,
        "url": None,
    }
    if first:
        _emit(
            logging.WARNING,
            fields,
            f"callbacks of application {callback.application_id} are not sent: it has no callback URL. "
            "Start with --callback-url URL (or BWE_CALLBACK_URL), or give the application callback URLs "
            "in the scenario (docs/callbacks.md). Shown once per application.",
        )
    else:
        _emit(logging.DEBUG, fields, f"callback {callback.type} for {callback.message_id} to {callback.recipient}: skipped, no URL")


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:g}s"
    if seconds < 3600:
        return f"{seconds / 60:g}m"
    return f"{seconds / 3600:g}h"
