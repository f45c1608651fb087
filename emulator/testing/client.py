"""A Python client for the emulator: one method per control endpoint, plus the Bandwidth
calls a test needs (send a message, simulate an inbound one).

``AsyncClient`` is the implementation; ``Client`` is a small synchronous facade that runs
it on an event loop in a background thread, so it also works inside async tests without
blocking their loop's webhooks (the loop it blocks is not theirs).

Every method is scoped to the client's ``account_id`` unless told otherwise, so parallel
tests that each use their own account never see each other's messages.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp

from emulator.config import DEFAULT_ACCOUNT
from emulator.scenarios.format import Scenario, scenario_source_text
from emulator.testing import assertions

T = TypeVar("T")

DEFAULT_APPLICATION = "emulator-application"


class EmulatorError(Exception):
    """A non-2xx answer: ``type`` and ``description`` from the error body, ``status`` the HTTP status."""

    def __init__(self, status: int, body: Any, method: str, path: str) -> None:
        self.status = status
        self.body = body
        self.type = body.get("type") if isinstance(body, dict) else None
        self.description = body.get("description") if isinstance(body, dict) else None
        details = ""
        if isinstance(body, dict):
            extra = body.get("fieldErrors") or body.get("details")
            if extra:
                details = f"; {json.dumps(extra)}"
        summary = f"{self.type}: {self.description}" if self.type else str(body)[:500]
        super().__init__(f"{method} {path} answered {status}: {summary}{details}")


class WaitTimeout(AssertionError):
    """A long-poll wait ended before its condition held; the message shows what there was."""


def scenario_text(scenario: Scenario | dict[str, Any] | str | Path, base: Path | None = None) -> str:
    """A scenario as YAML/JSON text: a :class:`Scenario`, a dict, YAML text (anything with a
    newline) or a path to a file (relative to ``base``)."""
    if isinstance(scenario, Scenario):
        return json.dumps(scenario.model_dump(mode="json", by_alias=True, exclude_none=True))
    if isinstance(scenario, dict):
        return json.dumps(scenario)
    # Sent as it is: the emulator checks it, and answers what is wrong.
    return scenario_source_text(scenario, base)[0]


class AsyncClient:
    def __init__(
        self,
        base_url: str,
        *,
        account_id: str = DEFAULT_ACCOUNT,
        application_id: str = DEFAULT_APPLICATION,
        username: str = "user",
        password: str = "pass",
        timeout: float = 90.0,
        control_token: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Sent on control API calls when the emulator requires it (docs/security.md).
        self._control = {"Authorization": f"Bearer {control_token}"} if control_token else {}
        self.account_id = account_id
        self.application_id = application_id
        self._credentials = (username, password)
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._auth = {"Authorization": f"Basic {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def api_url(self) -> str:
        """The Bandwidth API base, as the SDKs want it (``http://HOST:PORT/api/v2``)."""
        return f"{self.base_url}/api/v2"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        data: str | bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = False,
    ) -> Any:
        """One HTTP call; the parsed JSON answer, or :class:`EmulatorError` when it is not 2xx."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        async with self._session.request(
            method,
            self.base_url + path,
            params=query,
            json=json_body,
            data=data,
            headers={**(headers or {}), **(self._auth if auth else self._control)},
        ) as response:
            raw = await response.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            if not 200 <= response.status < 300:
                raise EmulatorError(response.status, body, method, path)
            return body

    def _account(self, account_id: str | None, all_accounts: bool) -> str | None:
        return None if all_accounts else (account_id or self.account_id)

    # -- the Bandwidth API ----------------------------------------------------------------

    async def send(
        self,
        *,
        to: str | list[str],
        from_: str,
        text: str | None = None,
        media: list[str] | None = None,
        tag: str | None = None,
        application_id: str | None = None,
        priority: str | None = None,
        expiration: str | None = None,
        account_id: str | None = None,
    ) -> dict[str, Any]:
        """``POST /api/v2/users/{accountId}/messages``, as your application would; the 202 body."""
        body: dict[str, Any] = {
            "applicationId": application_id or self.application_id,
            "to": [to] if isinstance(to, str) else list(to),
            "from": from_,
        }
        for key, value in (("text", text), ("media", media), ("tag", tag), ("priority", priority), ("expiration", expiration)):
            if value is not None:
                body[key] = value
        return await self.request("POST", f"/api/v2/users/{account_id or self.account_id}/messages", json_body=body, auth=True)

    async def inbound(
        self,
        *,
        from_: str,
        to: str | list[str],
        text: str = "",
        media: list[str | dict[str, str]] | None = None,
        application_id: str | None = None,
        account_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """A handset texts ``to`` (``POST /_emulator/inbound``); the inbound messages created.
        ``media`` items are URLs, or files ``{"content": base64, "contentType", "filename"}``."""
        body: dict[str, Any] = {"from": from_, "to": to, "text": text, "accountId": account_id or self.account_id}
        if media is not None:
            body["media"] = media
        if application_id is not None:
            body["applicationId"] = application_id
        return (await self.request("POST", "/_emulator/inbound", json_body=body))["messages"]

    async def send_multichannel(
        self,
        *,
        to: str,
        channels: list[dict[str, Any]],
        tag: str | None = None,
        priority: str | None = None,
        expiration: str | None = None,
        account_id: str | None = None,
    ) -> dict[str, Any]:
        """``POST /api/v2/users/{accountId}/messages/multiChannel`` (docs/multichannel.md); the
        202's ``data``. ``channels`` are ``channelList`` entries; one without ``applicationId``
        gets the client's."""
        channel_list = [{"applicationId": self.application_id, **channel} for channel in channels]
        body: dict[str, Any] = {"to": to, "channelList": channel_list}
        for key, value in (("tag", tag), ("priority", priority), ("expiration", expiration)):
            if value is not None:
                body[key] = value
        path = f"/api/v2/users/{account_id or self.account_id}/messages/multiChannel"
        return (await self.request("POST", path, json_body=body, auth=True))["data"]

    # -- the handset's side of RBM ----------------------------------------------------------

    async def tap_suggestion(
        self,
        message_id: str,
        text: str | None = None,
        *,
        postback_data: str | None = None,
        location: tuple[float | str, float | str] | None = None,
    ) -> dict[str, Any]:
        """The handset taps the suggestion shown with ``text`` (or carrying ``postback_data``) on an
        RBM message: ``suggestion-response``, or ``requested-location-response`` with ``location``
        for a location request. The inbound message created."""
        body: dict[str, Any] = {}
        if text is not None:
            body["suggestion"] = text
        if postback_data is not None:
            body["postbackData"] = postback_data
        if location is not None:
            body["location"] = {"latitude": location[0], "longitude": location[1]}
        return await self._reply(message_id, body)

    async def share_location(self, message_id: str, latitude: float | str, longitude: float | str) -> dict[str, Any]:
        """The handset shares its location in answer to an RBM message (``requested-location-response``)."""
        return await self._reply(message_id, {"location": {"latitude": latitude, "longitude": longitude}})

    async def reply_rbm(self, message_id: str, text: str) -> dict[str, Any]:
        """The handset types ``text`` in answer to an RBM message (``message-received`` over RBM)."""
        return await self._reply(message_id, {"text": text})

    async def read_message(self, message_id: str) -> dict[str, Any]:
        """The handset reads an RBM message now (``message-read``); the callback planned."""
        return (await self.request("POST", f"/_emulator/messages/{message_id}/read"))["callback"]

    async def _reply(self, message_id: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.request("POST", f"/_emulator/messages/{message_id}/reply", json_body=body)
        return answer["messages"][0]

    # -- the control API ------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        return await self.request("GET", "/_emulator/health")

    async def messages(
        self,
        *,
        direction: str | None = None,
        from_: str | None = None,
        to: str | None = None,
        tag: str | None = None,
        account_id: str | None = None,
        all_accounts: bool = False,
    ) -> list[dict[str, Any]]:
        """Messages of this account (``GET /_emulator/messages``), oldest first."""
        params = {"accountId": self._account(account_id, all_accounts), "direction": direction, "from": from_, "to": to, "tag": tag}
        return (await self.request("GET", "/_emulator/messages", params=params))["messages"]

    async def message(self, message_id: str) -> dict[str, Any]:
        """One message with its callbacks and their attempts (``GET /_emulator/messages/{id}``)."""
        return await self.request("GET", f"/_emulator/messages/{message_id}")

    async def callbacks(
        self,
        message_id: str | None = None,
        *,
        type: str | None = None,
        state: str | None = None,
        recipient: str | None = None,
        account_id: str | None = None,
        all_accounts: bool = False,
    ) -> list[dict[str, Any]]:
        """The callback journal (``GET /_emulator/callbacks``), in planned order."""
        params = {
            "accountId": self._account(account_id, all_accounts),
            "messageId": message_id,
            "type": type,
            "state": state,
            "recipient": recipient,
        }
        return (await self.request("GET", "/_emulator/callbacks", params=params))["callbacks"]

    async def wait_for_callbacks(
        self,
        message_id: str | None = None,
        *,
        type: str | None = None,
        state: str | None = None,
        recipient: str | None = None,
        count: int = 1,
        timeout: float = 5.0,
        account_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Long-poll until at least ``count`` callbacks match; :class:`WaitTimeout` after
        ``timeout`` real seconds. For a realtime emulator: no sleeps in tests."""
        params = {
            "accountId": account_id or self.account_id,
            "messageId": message_id,
            "type": type,
            "state": state,
            "recipient": recipient,
        }
        return await self._long_poll(
            "/_emulator/callbacks", "callbacks", params, count, timeout,
            lambda c: f"{c['type']} to {c['recipient']}: {c['state']}",
        )

    async def wait_for_messages(
        self,
        *,
        direction: str | None = None,
        from_: str | None = None,
        to: str | None = None,
        tag: str | None = None,
        count: int = 1,
        timeout: float = 5.0,
        account_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Long-poll until at least ``count`` messages match, e.g. the reply your application
        sends when it gets an inbound message; :class:`WaitTimeout` after ``timeout``."""
        params = {
            "accountId": account_id or self.account_id,
            "direction": direction,
            "from": from_,
            "to": to,
            "tag": tag,
        }
        return await self._long_poll(
            "/_emulator/messages", "messages", params, count, timeout,
            lambda m: f"{m['direction']} {m['from']} -> {m['to']}: {m['text']!r}",
        )

    async def _long_poll(
        self,
        path: str,
        key: str,
        params: dict[str, Any],
        count: int,
        timeout: float,
        describe: Callable[[dict[str, Any]], str],
    ) -> list[dict[str, Any]]:
        """One long-poll; :class:`WaitTimeout` listing what did match when the condition did not hold."""
        body = await self.request("GET", path, params={**params, "wait": timeout, "count": count})
        if not body["conditionMet"]:
            wanted = ", ".join(f"{k}={v}" for k, v in params.items() if v is not None)
            found = "\n".join(f"  {describe(record)}" for record in body[key]) or "  (none)"
            noun = key[:-1]
            raise WaitTimeout(
                f"waited {timeout:g}s for {count} {noun}(s) with {wanted}; found {len(body[key])}:\n{found}"
            )
        return body[key]

    async def clock(self) -> dict[str, Any]:
        return await self.request("GET", "/_emulator/clock")

    async def advance(self, seconds: float) -> dict[str, Any]:
        """Manual clock: move virtual time forward, firing every callback and retry that falls
        due, in order; returns once all of them are done."""
        return await self.request("POST", "/_emulator/clock/advance", json_body={"seconds": seconds})

    async def reset(self, account_id: str | None = None, *, all_accounts: bool = False) -> dict[str, Any]:
        """Forget this account's messages, callbacks and media (or every account's)."""
        return await self.request("POST", "/_emulator/reset", params={"accountId": self._account(account_id, all_accounts)})

    async def scenario(self) -> dict[str, Any]:
        return await self.request("GET", "/_emulator/scenario")

    async def set_scenario(self, scenario: Scenario | dict[str, Any] | str | Path) -> dict[str, Any]:
        """Replace the active scenario: a :class:`Scenario`, a dict, YAML text or a file path."""
        return await self.request(
            "PUT", "/_emulator/scenario", data=scenario_text(scenario), headers={"Content-Type": "application/yaml"}
        )

    async def update_scenario(self, change: dict[str, Any] | str) -> dict[str, Any]:
        """Change part of the active scenario (a dict or YAML text), keeping the rest: objects
        merge key by key and ``applications`` by ``id``, e.g.
        ``update_scenario({"applications": [{"id": "my-app", "statusCallbackUrl": url}]})``."""
        data = change if isinstance(change, str) else json.dumps(change)
        content_type = "application/yaml" if isinstance(change, str) else "application/json"
        return await self.request("PATCH", "/_emulator/scenario", data=data, headers={"Content-Type": content_type})

    async def set_application_callbacks(
        self, application_id: str, url: str | None = None, *, status: str | None = None, inbound: str | None = None
    ) -> dict[str, Any]:
        """Point one application's callbacks at a URL (``url`` for both kinds, or ``status=`` and
        ``inbound=``), keeping the rest of the scenario."""
        application: dict[str, Any] = {"id": application_id}
        if status or url:
            application["statusCallbackUrl"] = status or url
        if inbound or url:
            application["inboundCallbackUrl"] = inbound or url
        return await self.update_scenario({"applications": [application]})

    async def fallback_callback_url(self) -> str | None:
        """Where callbacks go for applications without callback URLs of their own (``--callback-url``)."""
        url: str | None = (await self.request("GET", "/_emulator/callback-url"))["url"]
        return url

    async def set_fallback_callback_url(self, url: str | None) -> str | None:
        """Change the fallback callback URL (``--callback-url``); ``None``: none."""
        new: str | None = (await self.request("PUT", "/_emulator/callback-url", json_body={"url": url}))["url"]
        return new

    async def replay_callback(self, callback_id: str) -> dict[str, Any]:
        """Deliver one callback again now, journaled as a replay attempt; returns the callback."""
        return await self.request("POST", f"/_emulator/callbacks/{quote(callback_id, safe='')}/replay")

    async def openapi(self) -> dict[str, Any]:
        return await self.request("GET", "/_emulator/openapi.json")

    # -- assertions -----------------------------------------------------------------------

    async def assert_callbacks(self, message_id: str, expected: list[str], *, recipient: str | None = None) -> list[dict[str, Any]]:
        """The message's callbacks that happened, in order, are exactly ``expected`` (event types)."""
        __tracebackhide__ = True
        return assertions.check_callbacks(await self.message(message_id), expected, recipient=recipient)

    async def assert_attempts(
        self,
        message_id: str,
        expected: list[assertions.Outcome],
        *,
        type: str | None = None,
        recipient: str | None = None,
        state: str | None = None,
        offsets: list[float] | None = None,
    ) -> dict[str, Any]:
        """One callback's attempts came to ``expected`` (status codes or errors like ``"timeout"``)."""
        __tracebackhide__ = True
        message = await self.message(message_id)
        return assertions.check_attempts(message, expected, type=type, recipient=recipient, state=state, offsets=offsets)


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class LoopThread:
    """An event loop running in a daemon thread; ``run`` submits a coroutine and waits."""

    def __init__(self, name: str = "bandwidth-emulator") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        __tracebackhide__ = True
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class Client:
    """The synchronous facade: the same methods as :class:`AsyncClient`, blocking.

    It runs the async client on its own background loop (or on ``loop``, the emulator's,
    when the plugin created it), so calling it from an async test does not stall that
    test's event loop for longer than the call.
    """

    def __init__(self, base_url: str, *, loop: LoopThread | None = None, aio: AsyncClient | None = None, **options: Any) -> None:
        self._owns_loop = loop is None
        self._loop = loop or LoopThread("bandwidth-emulator-client")
        # ``aio``: the async client to run (an in-process Emulator is one), else a new one.
        self.aio = aio if aio is not None else AsyncClient(base_url, **options)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._loop.run(self.aio.close())
        if self._owns_loop:
            self._loop.stop()

    @property
    def base_url(self) -> str:
        return self.aio.base_url

    @property
    def api_url(self) -> str:
        return self.aio.api_url

    @property
    def account_id(self) -> str:
        return self.aio.account_id

    def async_client(self) -> AsyncClient:
        """A new :class:`AsyncClient` of the same emulator and account, for the caller's own
        event loop: use it in async tests whose webhook runs on the test's loop, which a
        blocking call would stall (``async with bandwidth_emulator.async_client() as emu``)."""
        aio = self.aio
        username, password = aio._credentials
        return AsyncClient(
            aio.base_url, account_id=aio.account_id, application_id=aio.application_id, username=username, password=password
        )

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        __tracebackhide__ = True
        return self._loop.run(coro)

    # -- the same methods as AsyncClient, blocking (tests/test_client.py checks the signatures match)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        data: str | bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = False,
    ) -> Any:
        """One HTTP call; the parsed JSON answer, or :class:`EmulatorError` when it is not 2xx."""
        __tracebackhide__ = True
        return self._run(
            self.aio.request(
                method,
                path,
                params=params,
                json_body=json_body,
                data=data,
                headers=headers,
                auth=auth,
            )
        )

    # -- the Bandwidth API ----------------------------------------------------------------

    def send(
        self,
        *,
        to: str | list[str],
        from_: str,
        text: str | None = None,
        media: list[str] | None = None,
        tag: str | None = None,
        application_id: str | None = None,
        priority: str | None = None,
        expiration: str | None = None,
        account_id: str | None = None,
    ) -> dict[str, Any]:
        """``POST /api/v2/users/{accountId}/messages``, as your application would; the 202 body."""
        __tracebackhide__ = True
        return self._run(
            self.aio.send(
                to=to,
                from_=from_,
                text=text,
                media=media,
                tag=tag,
                application_id=application_id,
                priority=priority,
                expiration=expiration,
                account_id=account_id,
            )
        )

    def inbound(
        self,
        *,
        from_: str,
        to: str | list[str],
        text: str = "",
        media: list[str | dict[str, str]] | None = None,
        application_id: str | None = None,
        account_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """A handset texts ``to`` (``POST /_emulator/inbound``); the inbound messages created.
        ``media`` items are URLs, or files ``{"content": base64, "contentType", "filename"}``."""
        __tracebackhide__ = True
        return self._run(
            self.aio.inbound(
                from_=from_,
                to=to,
                text=text,
                media=media,
                application_id=application_id,
                account_id=account_id,
            )
        )

    def send_multichannel(
        self,
        *,
        to: str,
        channels: list[dict[str, Any]],
        tag: str | None = None,
        priority: str | None = None,
        expiration: str | None = None,
        account_id: str | None = None,
    ) -> dict[str, Any]:
        """``POST /api/v2/users/{accountId}/messages/multiChannel`` (docs/multichannel.md); the
        202's ``data``. ``channels`` are ``channelList`` entries; one without ``applicationId``
        gets the client's."""
        __tracebackhide__ = True
        return self._run(
            self.aio.send_multichannel(
                to=to,
                channels=channels,
                tag=tag,
                priority=priority,
                expiration=expiration,
                account_id=account_id,
            )
        )

    # -- the handset's side of RBM ----------------------------------------------------------

    def tap_suggestion(
        self,
        message_id: str,
        text: str | None = None,
        *,
        postback_data: str | None = None,
        location: tuple[float | str, float | str] | None = None,
    ) -> dict[str, Any]:
        """The handset taps the suggestion shown with ``text`` (or carrying ``postback_data``) on an
        RBM message: ``suggestion-response``, or ``requested-location-response`` with ``location``
        for a location request. The inbound message created."""
        __tracebackhide__ = True
        return self._run(self.aio.tap_suggestion(message_id, text, postback_data=postback_data, location=location))

    def share_location(self, message_id: str, latitude: float | str, longitude: float | str) -> dict[str, Any]:
        """The handset shares its location in answer to an RBM message (``requested-location-response``)."""
        __tracebackhide__ = True
        return self._run(self.aio.share_location(message_id, latitude, longitude))

    def reply_rbm(self, message_id: str, text: str) -> dict[str, Any]:
        """The handset types ``text`` in answer to an RBM message (``message-received`` over RBM)."""
        __tracebackhide__ = True
        return self._run(self.aio.reply_rbm(message_id, text))

    def read_message(self, message_id: str) -> dict[str, Any]:
        """The handset reads an RBM message now (``message-read``); the callback planned."""
        __tracebackhide__ = True
        return self._run(self.aio.read_message(message_id))

    # -- the control API ------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        __tracebackhide__ = True
        return self._run(self.aio.health())

    def messages(
        self,
        *,
        direction: str | None = None,
        from_: str | None = None,
        to: str | None = None,
        tag: str | None = None,
        account_id: str | None = None,
        all_accounts: bool = False,
    ) -> list[dict[str, Any]]:
        """Messages of this account (``GET /_emulator/messages``), oldest first."""
        __tracebackhide__ = True
        return self._run(
            self.aio.messages(
                direction=direction,
                from_=from_,
                to=to,
                tag=tag,
                account_id=account_id,
                all_accounts=all_accounts,
            )
        )

    def message(self, message_id: str) -> dict[str, Any]:
        """One message with its callbacks and their attempts (``GET /_emulator/messages/{id}``)."""
        __tracebackhide__ = True
        return self._run(self.aio.message(message_id))

    def callbacks(
        self,
        message_id: str | None = None,
        *,
        type: str | None = None,
        state: str | None = None,
        recipient: str | None = None,
        account_id: str | None = None,
        all_accounts: bool = False,
    ) -> list[dict[str, Any]]:
        """The callback journal (``GET /_emulator/callbacks``), in planned order."""
        __tracebackhide__ = True
        return self._run(
            self.aio.callbacks(
                message_id,
                type=type,
                state=state,
                recipient=recipient,
                account_id=account_id,
                all_accounts=all_accounts,
            )
        )

    def wait_for_callbacks(
        self,
        message_id: str | None = None,
        *,
        type: str | None = None,
        state: str | None = None,
        recipient: str | None = None,
        count: int = 1,
        timeout: float = 5.0,
        account_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Long-poll until at least ``count`` callbacks match; :class:`WaitTimeout` after
        ``timeout`` real seconds. For a realtime emulator: no sleeps in tests."""
        __tracebackhide__ = True
        return self._run(
            self.aio.wait_for_callbacks(
                message_id,
                type=type,
                state=state,
                recipient=recipient,
                count=count,
                timeout=timeout,
                account_id=account_id,
            )
        )

    def wait_for_messages(
        self,
        *,
        direction: str | None = None,
        from_: str | None = None,
        to: str | None = None,
        tag: str | None = None,
        count: int = 1,
        timeout: float = 5.0,
        account_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Long-poll until at least ``count`` messages match, e.g. the reply your application
        sends when it gets an inbound message; :class:`WaitTimeout` after ``timeout``."""
        __tracebackhide__ = True
        return self._run(
            self.aio.wait_for_messages(
                direction=direction,
                from_=from_,
                to=to,
                tag=tag,
                count=count,
                timeout=timeout,
                account_id=account_id,
            )
        )

    def clock(self) -> dict[str, Any]:
        __tracebackhide__ = True
        return self._run(self.aio.clock())

    def advance(self, seconds: float) -> dict[str, Any]:
        """Manual clock: move virtual time forward, firing every callback and retry that falls
        due, in order; returns once all of them are done."""
        __tracebackhide__ = True
        return self._run(self.aio.advance(seconds))

    def reset(self, account_id: str | None = None, *, all_accounts: bool = False) -> dict[str, Any]:
        """Forget this account's messages, callbacks and media (or every account's)."""
        __tracebackhide__ = True
        return self._run(self.aio.reset(account_id, all_accounts=all_accounts))

    def scenario(self) -> dict[str, Any]:
        __tracebackhide__ = True
        return self._run(self.aio.scenario())

    def set_scenario(self, scenario: Scenario | dict[str, Any] | str | Path) -> dict[str, Any]:
        """Replace the active scenario: a :class:`Scenario`, a dict, YAML text or a file path."""
        __tracebackhide__ = True
        return self._run(self.aio.set_scenario(scenario))

    def update_scenario(self, change: dict[str, Any] | str) -> dict[str, Any]:
        """Change part of the active scenario (a dict or YAML text), keeping the rest: objects
        merge key by key and ``applications`` by ``id``, e.g.
        ``update_scenario({"applications": [{"id": "my-app", "statusCallbackUrl": url}]})``."""
        __tracebackhide__ = True
        return self._run(self.aio.update_scenario(change))

    def set_application_callbacks(
        self, application_id: str, url: str | None = None, *, status: str | None = None, inbound: str | None = None
    ) -> dict[str, Any]:
        """Point one application's callbacks at a URL (``url`` for both kinds, or ``status=`` and
        ``inbound=``), keeping the rest of the scenario."""
        __tracebackhide__ = True
        return self._run(self.aio.set_application_callbacks(application_id, url, status=status, inbound=inbound))

    def fallback_callback_url(self) -> str | None:
        """Where callbacks go for applications without callback URLs of their own (``--callback-url``)."""
        __tracebackhide__ = True
        return self._run(self.aio.fallback_callback_url())

    def set_fallback_callback_url(self, url: str | None) -> str | None:
        """Change the fallback callback URL (``--callback-url``); ``None``: none."""
        __tracebackhide__ = True
        return self._run(self.aio.set_fallback_callback_url(url))

    def replay_callback(self, callback_id: str) -> dict[str, Any]:
        """Deliver one callback again now, journaled as a replay attempt; returns the callback."""
        __tracebackhide__ = True
        return self._run(self.aio.replay_callback(callback_id))

    def openapi(self) -> dict[str, Any]:
        __tracebackhide__ = True
        return self._run(self.aio.openapi())

    # The assertions fetch through the loop, then check here, so a failure's traceback
    # points at the test, not at the background thread.

    def assert_callbacks(self, message_id: str, expected: list[str], *, recipient: str | None = None) -> list[dict[str, Any]]:
        """The message's callbacks that happened, in order, are exactly ``expected`` (event types)."""
        __tracebackhide__ = True
        return assertions.check_callbacks(self.message(message_id), expected, recipient=recipient)

    def assert_attempts(
        self,
        message_id: str,
        expected: list[assertions.Outcome],
        *,
        type: str | None = None,
        recipient: str | None = None,
        state: str | None = None,
        offsets: list[float] | None = None,
    ) -> dict[str, Any]:
        """One callback's attempts came to ``expected`` (status codes or errors like ``"timeout"``)."""
        __tracebackhide__ = True
        message = self.message(message_id)
        return assertions.check_attempts(message, expected, type=type, recipient=recipient, state=state, offsets=offsets)
